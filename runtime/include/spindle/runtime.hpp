// <spindle/runtime.hpp> — the runtime part of spindle.
#pragma once

#include "spindle/version.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/gather.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/runtime/to_thread.hpp"
