// bench/spindle_bench.cpp — the workloads of ../shared/WORKLOADS.md for system=spindle.
// Prints one WORKLOADS.md line per workload (median of --runs); checks each result.
#include <spindle/spindle.hpp>

#include <atomic>
#include <vector>

#include "harness.hpp"

using bench::Result;
using bench::S;

namespace {

spindle::RuntimeOptions opts() { return spindle::RuntimeOptions{.workers = bench::g_opt.workers}; }

// spawn_join: spawn 1,000,000 empty tasks from one task, then await all.
Result spawn_join() {
    const long n = S(1'000'000);
    std::atomic<long> ran{0};
    auto body = [&]() -> spindle::Task<double> {
        auto t0 = bench::clk::now();
        std::vector<spindle::JoinHandle<void>> hs;
        hs.reserve(static_cast<std::size_t>(n));
        for (long i = 0; i < n; ++i)
            hs.push_back(spindle::spawn([](std::atomic<long>& r) -> spindle::Task<void> {
                r.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count checked after join
                co_return;
            }(ran)));
        for (auto& h : hs) co_await h;
        co_return bench::ns_since(t0);
    };
    const double ns = spindle::run(body(), opts());
    Result r{ns / static_cast<double>(n), "primitive:spawn+JoinHandle"};
    bench::check(r, ran.load() == n, "spawn_join: every task ran");
    return r;
}

// yield_many: 200 tasks, each yields 1,000 times.
Result yield_many() {
    const long tasks = 200, yields = S(1'000);
    std::atomic<long> total{0};
    auto body = [&]() -> spindle::Task<double> {
        auto t0 = bench::clk::now();
        std::vector<spindle::JoinHandle<void>> hs;
        for (long i = 0; i < tasks; ++i)
            hs.push_back(spindle::spawn([](long k, std::atomic<long>& tot) -> spindle::Task<void> {
                for (long j = 0; j < k; ++j) co_await spindle::yield_now();
                tot.fetch_add(k, std::memory_order_relaxed);  // relaxed: checked after join
            }(yields, total)));
        for (auto& h : hs) co_await h;
        co_return bench::ns_since(t0);
    };
    const double ns = spindle::run(body(), opts());
    Result r{ns / static_cast<double>(tasks * yields), "primitive:yield_now"};
    bench::check(r, total.load() == tasks * yields, "yield_many: yields");
    return r;
}

// fib_spawn: fib(27), each call n >= 2 spawns both children as tasks and joins them.
spindle::Task<long> fib(int n) {
    if (n < 2) co_return n;
    auto a = spindle::spawn(fib(n - 1));
    auto b = spindle::spawn(fib(n - 2));
    co_return co_await std::move(a) + co_await std::move(b);
}
long fib_ref(int n) { return n < 2 ? n : fib_ref(n - 1) + fib_ref(n - 2); }

Result fib_spawn() {
    const int n = bench::g_opt.scale >= 1.0 ? 27 : 20;
    auto t0 = bench::clk::now();
    const long v = spindle::run(fib(n), opts());
    Result r{bench::ns_since(t0) / 1e6, "primitive:spawn+JoinHandle,n:" + std::to_string(n)};
    bench::check(r, v == fib_ref(n), "fib value");
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    bench::parse_args(argc, argv);
    std::vector<bench::Workload> ws = {
        {"spawn_join", "spindle", "ns/task", spawn_join},
        {"yield_many", "spindle", "ns/yield", yield_many},
        {"fib_spawn", "spindle", "ms", fib_spawn},
    };
    for (auto& w : ws) {
        if (bench::g_opt.list) {
            std::printf("%s %s %s\n", w.name.c_str(), w.system.c_str(), w.unit.c_str());
            continue;
        }
        if (bench::wanted(bench::g_opt.only, w.name) && bench::wanted(bench::g_opt.systems, w.system))
            bench::run_one(w);
    }
    return bench::g_failed ? 1 : 0;
}
