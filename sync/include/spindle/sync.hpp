// <spindle/sync.hpp> — the synchronization primitives (Lock, Semaphore, Event, ...).
// The primitives land with the sync issue; this header is their umbrella.
#pragma once

#include "spindle/runtime.hpp"
