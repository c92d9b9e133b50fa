// tests/support/cpu_pin.hpp — pinning a test's thread to one CPU of the process's mask.
// Tests of fence pairs need both sides running at once on two CPUs: time-sliced on one
// CPU, every switch is a full barrier and a broken fence goes unseen (found in review of
// the spawn stack: the unpinned test missed a removed heavy fence in 1 run of 3 under load).
#pragma once

#include <pthread.h>
#include <sched.h>

namespace spindle::testing {

/// Pins the calling thread to the n-th CPU of the process's mask; false (nothing
/// changed) with one CPU.
inline bool pin_to_nth_cpu(int n) {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (sched_getaffinity(0, sizeof mask, &mask) != 0 || CPU_COUNT(&mask) < 2) return false;
    for (int c = 0, k = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &mask) || k++ != n) continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
    }
    return false;
}

}  // namespace spindle::testing
