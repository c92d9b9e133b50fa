// bench/micro/micro_common.hpp — shared pieces of the Google Benchmark micro-benchmarks.
// Each primitive's file registers one benchmark template instantiated twice with
// BENCHMARK_TEMPLATE: <Spindle> (tasks on a spindle::Runtime) and <Std> (OS threads on
// the std primitive). One benchmark iteration = one batch: `threads` tasks (or threads)
// each doing kOps operations, started together and joined; the `per_op` counter is wall
// time per operation over all tasks. Arguments follow Abseil's mutex_benchmark.cc:
// thread (worker) counts and critical-section lengths in nanoseconds of busy work.
#pragma once

#include <benchmark/benchmark.h>

#include <barrier>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include <spindle/spindle.hpp>

namespace micro {

struct Spindle {};
struct Std {};

/// About `ns` nanoseconds of busy work (0 = none), like Abseil's DelayNs.
inline void delay_ns(long ns) {
    if (ns <= 0) return;
    const auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
    int x = 0;
    while (std::chrono::steady_clock::now() < end) benchmark::DoNotOptimize(++x);
}

/// `n` OS threads that run one batch per run() call; std::barrier start and finish lines.
class ThreadPool {
  public:
    explicit ThreadPool(int n) : start_(n + 1), done_(n + 1) {
        for (int i = 0; i < n; ++i)
            threads_.emplace_back([this, i] {
                for (;;) {
                    start_.arrive_and_wait();  // the barrier orders fn_/stop_ written before it
                    if (stop_) return;
                    fn_(i);
                    done_.arrive_and_wait();
                }
            });
    }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;
    ~ThreadPool() {
        stop_ = true;
        start_.arrive_and_wait();
        for (auto& t : threads_) t.join();
    }
    void run(std::function<void(int)> fn) {
        fn_ = std::move(fn);
        start_.arrive_and_wait();
        done_.arrive_and_wait();
    }

  private:
    std::barrier<> start_, done_;
    std::function<void(int)> fn_;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

/// Runs the benchmark loop inside a spindle runtime of `workers` workers; each iteration
/// spawns `tasks` tasks made by `make(i)` and joins them.
template <class Make>
void spindle_batches(benchmark::State& st, std::size_t workers, int tasks, Make make) {
    spindle::run(
        [&]() -> spindle::Task<void> {
            std::vector<spindle::JoinHandle<void>> hs;
            for (auto _ : st) {
                hs.clear();
                for (int i = 0; i < tasks; ++i) hs.push_back(spindle::spawn(make(i)));
                for (auto& h : hs) co_await h;
            }
        }(),
        spindle::RuntimeOptions{.workers = workers});
}

/// The per_op counter: wall seconds per operation (printed with an SI prefix, e.g. 21.4n).
inline void per_op(benchmark::State& st, double ops_per_iteration) {
    st.counters["per_op"] = benchmark::Counter(ops_per_iteration * static_cast<double>(st.iterations()),
                                              benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace micro
