// <spindle/spindle.hpp> — everything: the runtime and the synchronization primitives.
#pragma once

#include "spindle/runtime.hpp"
#include "spindle/sync.hpp"
