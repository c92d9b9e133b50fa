// <spindle/spindle.hpp> — everything: the runtime, the synchronization primitives and
// the network part (target spindle::spindle).
#pragma once

#include "spindle/net.hpp"
#include "spindle/runtime.hpp"
#include "spindle/sync.hpp"
