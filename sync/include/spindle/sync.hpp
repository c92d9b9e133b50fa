// <spindle/sync.hpp> — the synchronization primitives of asyncio, safe across cores.
#pragma once

#include "spindle/runtime.hpp"
#include "spindle/sync/barrier.hpp"
#include "spindle/sync/condition.hpp"
#include "spindle/sync/event.hpp"
#include "spindle/sync/lock.hpp"
#include "spindle/sync/scoped.hpp"
#include "spindle/sync/queue.hpp"
#include "spindle/sync/semaphore.hpp"
