// bench/workloads.hpp — the three systems spindle_bench runs side by side. Each list
// holds one bench::Workload per WORKLOADS.md workload (in any order); main() interleaves
// them workload by workload.
#pragma once

#include <cstdint>
#include <vector>

#include "harness.hpp"

namespace bench {

std::vector<Workload> spindle_workloads();
std::vector<Workload> std_thread_workloads();
std::vector<Workload> boost_fiber_workloads();  // empty when built without Boost.Fiber

/// queue_mpsc: 4 producers put 1..n (each a contiguous slice), one consumer sums.
inline bool queue_sum_ok(std::uint64_t sum, std::uint64_t n) { return sum == n * (n + 1) / 2; }
inline long fib_ref(int n) { return n < 2 ? n : fib_ref(n - 1) + fib_ref(n - 2); }

}  // namespace bench
