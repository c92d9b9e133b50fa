// bench/spindle_bench.cpp — the workloads of ../shared/WORKLOADS.md for system=spindle,
// and main(), which runs them beside the C++ baselines (std_thread_workloads.cpp,
// boost_fiber_workloads.cpp), alternating systems workload by workload. Prints one
// WORKLOADS.md line per (workload, system) (median of --runs); checks each result and
// exits 1 when a check fails.
#include <spindle/spindle.hpp>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <barrier>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "workloads.hpp"

#include "spindle/sync/queue.hpp"

#if __has_include(<mimalloc.h>)
#include <mimalloc.h>
#endif

using bench::Result;
using bench::S;

namespace {

spindle::RuntimeOptions opts() {
    spindle::RuntimeOptions o{.workers = bench::g_opt.workers};
    if (bench::g_opt.idle_spin_us >= 0) o.idle_spin_us = static_cast<std::uint32_t>(bench::g_opt.idle_spin_us);
    return o;
}

// spawn_join: spawn 1,000,000 empty tasks from one task, then await all.
template <class Body>
double timed_run(Body&& body);

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
    const double ns = timed_run(body);
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
    const double ns = timed_run(body);
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

Result fib_spawn();


// ───────────── synchronization workloads (spindle) ─────────────

void print_metrics(const char* what, const spindle::RuntimeMetrics& m) {
    std::fprintf(stderr, "  %s: spawned %llu steals %llu parks %llu unparks %llu injections %llu migrations %llu rescues %llu inline_joins %llu\n",
                 what, static_cast<unsigned long long>(m.tasks_spawned), static_cast<unsigned long long>(m.steals),
                 static_cast<unsigned long long>(m.parks), static_cast<unsigned long long>(m.unparks),
                 static_cast<unsigned long long>(m.injections), static_cast<unsigned long long>(m.migrations),
                 static_cast<unsigned long long>(m.stall_rescues), static_cast<unsigned long long>(m.inline_joins));
}

// The runtime of the run in progress, for the window hook (SPINDLE_BENCH_METRICS only).
spindle::Runtime* g_metrics_rt = nullptr;
spindle::RuntimeMetrics g_window_start;

// A workload that marks its timed window (bench::perf_window) gets a second line: the
// counters of the window alone, since the set-up may steal and park far more than the
// part that is timed (event_broadcast: ~25,000 steals in its spawn phase in some runs,
// under 10 in the window).
void window_metrics(bool on) {
    if (g_metrics_rt == nullptr) return;
    const spindle::RuntimeMetrics m = g_metrics_rt->metrics();
    if (on) {
        g_window_start = m;
        return;
    }
    const spindle::RuntimeMetrics& a = g_window_start;
    spindle::RuntimeMetrics d;
    d.tasks_spawned = m.tasks_spawned - a.tasks_spawned;
    d.steals = m.steals - a.steals;
    d.parks = m.parks - a.parks;
    d.unparks = m.unparks - a.unparks;
    d.injections = m.injections - a.injections;
    d.migrations = m.migrations - a.migrations;
    d.stall_rescues = m.stall_rescues - a.stall_rescues;
    d.inline_joins = m.inline_joins - a.inline_joins;
    print_metrics("window metrics", d);
}

template <class Body>
double timed_run(Body&& body) {  // declared above spawn_join
    // SPINDLE_BENCH_METRICS=1: the runtime's counters of each run on stderr (where the
    // steals, parks and hand-overs of a figure come from), and of its timed window when
    // the workload marks one (window_metrics).
    static const bool show = std::getenv("SPINDLE_BENCH_METRICS") != nullptr;
    if (!show) return spindle::run(body(), opts());
    double v = 0;
    spindle::RuntimeMetrics m;
    {
        spindle::Runtime rt(opts());
        g_metrics_rt = &rt;
        bench::g_window_hook = window_metrics;
        v = rt.block_on(body());
        m = rt.metrics();
        g_metrics_rt = nullptr;
    }
    print_metrics("metrics", m);
    return v;
}

// Timed inside the root task, as the peers do (TooManyCooks, oneTBB): starting and
// stopping the runtime's threads is not part of the figure.
Result fib_spawn() {
    const int n = bench::g_opt.scale >= 1.0 ? 27 : 20;
    long v = 0;
    const double ns = timed_run([&]() -> spindle::Task<double> {
        auto t0 = bench::clk::now();
        v = co_await fib(n);
        co_return bench::ns_since(t0);
    });
    Result r{ns / 1e6, "primitive:spawn+JoinHandle,n:" + std::to_string(n)};
    bench::check(r, v == bench::fib_ref(n), "fib value");
    return r;
}

Result lock_uncontended() {
    const long n = S(10'000'000);
    long c = 0;
    const double ns = timed_run([&]() -> spindle::Task<double> {
        spindle::Lock m;
        auto t0 = bench::clk::now();
        for (long i = 0; i < n; ++i) {
            co_await m.acquire();
            ++c;
            m.release();
        }
        co_return bench::ns_since(t0);
    });
    Result r{ns / static_cast<double>(n), "primitive:spindle::Lock"};
    bench::check(r, c == n, "lock_uncontended count");
    return r;
}

Result lock_contended(long tasks, long per_task) {
    long counter = 0;
    const double ns = timed_run([&]() -> spindle::Task<double> {
        spindle::Lock m;
        auto t0 = bench::clk::now();
        std::vector<spindle::JoinHandle<void>> hs;
        for (long t = 0; t < tasks; ++t)
            hs.push_back(spindle::spawn([](spindle::Lock& l, long& c, long k) -> spindle::Task<void> {
                for (long i = 0; i < k; ++i) {
                    co_await l.acquire();
                    c += 1;
                    l.release();
                }
            }(m, counter, per_task)));
        for (auto& h : hs) co_await h;
        co_return bench::ns_since(t0);
    });
    Result r{ns / static_cast<double>(tasks * per_task), "primitive:spindle::Lock"};
    bench::check(r, counter == tasks * per_task, "lock_contended counter");
    return r;
}

Result lock_across_await() {
    const long tasks = S(1'000), iters = 100;
    long counter = 0;
    const double ns = timed_run([&]() -> spindle::Task<double> {
        spindle::Lock m;
        auto t0 = bench::clk::now();
        std::vector<spindle::JoinHandle<void>> hs;
        for (long t = 0; t < tasks; ++t)
            hs.push_back(spindle::spawn([](spindle::Lock& l, long& c, long k) -> spindle::Task<void> {
                for (long i = 0; i < k; ++i) {
                    co_await l.acquire();
                    co_await spindle::yield_now();
                    c += 1;
                    l.release();
                }
            }(m, counter, iters)));
        for (auto& h : hs) co_await h;
        co_return bench::ns_since(t0);
    });
    Result r{ns / static_cast<double>(tasks * iters), "primitive:spindle::Lock,yield:yield_now"};
    bench::check(r, counter == tasks * iters, "lock_across_await counter");
    return r;
}

Result semaphore_throttle() {
    const long tasks = S(10'000), iters = 20, permits = 8;
    std::atomic<long> inside{0}, max_inside{0}, ops{0};
    long final_value = -1;
    const double ns = timed_run([&]() -> spindle::Task<double> {
        spindle::Semaphore sem(permits);
        auto t0 = bench::clk::now();
        std::vector<spindle::JoinHandle<void>> hs;
        hs.reserve(static_cast<std::size_t>(tasks));
        for (long t = 0; t < tasks; ++t)
            hs.push_back(spindle::spawn([](spindle::Semaphore& s, std::atomic<long>& in, std::atomic<long>& mx,
                                           std::atomic<long>& o, long k) -> spindle::Task<void> {
                for (long i = 0; i < k; ++i) {
                    co_await s.acquire();
                    // relaxed: counters checked after the join.
                    const long v = in.fetch_add(1, std::memory_order_relaxed) + 1;
                    long m = mx.load(std::memory_order_relaxed);  // relaxed: as above
                    while (v > m && !mx.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
                    }
                    co_await spindle::yield_now();
                    in.fetch_sub(1, std::memory_order_relaxed);  // relaxed: as above
                    o.fetch_add(1, std::memory_order_relaxed);   // relaxed: as above
                    s.release();
                }
            }(sem, inside, max_inside, ops, iters)));
        for (auto& h : hs) co_await h;
        const double d = bench::ns_since(t0);
        final_value = sem.value();
        co_return d;
    });
    Result r{ns / static_cast<double>(tasks * iters), "primitive:spindle::Semaphore,yield:yield_now"};
    bench::check(r, ops.load() == tasks * iters, "semaphore_throttle ops");
    bench::check(r, max_inside.load() <= permits, "semaphore_throttle permits exceeded");
    bench::check(r, final_value == permits, "semaphore_throttle permit lost");
    return r;
}

Result event_broadcast() {
    const long n = S(100'000);
    std::atomic<long> resumed{0};
    bench::clk::time_point t_last{};
    const double ns = timed_run([&]() -> spindle::Task<double> {
        spindle::Event ev;
        std::vector<spindle::JoinHandle<void>> hs;
        hs.reserve(static_cast<std::size_t>(n));
        for (long i = 0; i < n; ++i)
            hs.push_back(spindle::spawn([](spindle::Event& e, std::atomic<long>& r, long total,
                                           bench::clk::time_point& last) -> spindle::Task<void> {
                co_await e.wait();
                // acq_rel: the last resumer's time is read after the join.
                if (r.fetch_add(1, std::memory_order_acq_rel) + 1 == total) last = bench::clk::now();
            }(ev, resumed, n, t_last)));
        while (ev.approx_waiters() < static_cast<std::uint64_t>(n)) co_await spindle::yield_now();
        bench::perf_window(true);
        auto t0 = bench::clk::now();
        ev.set();
        for (auto& h : hs) co_await h;
        bench::perf_window(false);
        co_return std::chrono::duration<double, std::nano>(t_last - t0).count();
    });
    Result r{ns / static_cast<double>(n), "primitive:spindle::Event"};
    bench::check(r, resumed.load() == n, "event_broadcast resumed");
    return r;
}

Result condition_pingpong() {
    const long rounds = S(500'000);
    long turns[2] = {0, 0};
    const double ns = timed_run([&]() -> spindle::Task<double> {
        spindle::Condition cv;
        int turn = 0;
        auto t0 = bench::clk::now();
        auto player = [](spindle::Condition& c, int& tn, long& mine, int me, long k) -> spindle::Task<void> {
            for (long i = 0; i < k; ++i) {
                auto g = co_await c.scoped();
                co_await c.wait_for([&] { return tn == me; });
                tn = 1 - me;
                ++mine;
                c.notify();
            }
        };
        auto a = spindle::spawn(player(cv, turn, turns[0], 0, rounds));
        auto b = spindle::spawn(player(cv, turn, turns[1], 1, rounds));
        co_await a;
        co_await b;
        co_return bench::ns_since(t0);
    });
    Result r{ns / static_cast<double>(rounds), "primitive:spindle::Condition+Lock"};
    bench::check(r, turns[0] == rounds && turns[1] == rounds, "condition_pingpong turns");
    return r;
}

Result barrier_rounds(long tasks) {
    const long rounds = S(10'000);
    std::atomic<long> leaders{0};
    const double ns = timed_run([&]() -> spindle::Task<double> {
        spindle::Barrier b(static_cast<std::size_t>(tasks));
        auto t0 = bench::clk::now();
        std::vector<spindle::JoinHandle<void>> hs;
        for (long t = 0; t < tasks; ++t)
            hs.push_back(spindle::spawn([](spindle::Barrier& bar, std::atomic<long>& l, long k) -> spindle::Task<void> {
                for (long i = 0; i < k; ++i) {
                    const std::size_t index = co_await bar.wait();
                    if (index == 0) l.fetch_add(1, std::memory_order_relaxed);  // relaxed: checked after the join
                }
            }(b, leaders, rounds)));
        for (auto& h : hs) co_await h;
        co_return bench::ns_since(t0);
    });
    Result r{ns / static_cast<double>(rounds), "primitive:spindle::Barrier"};
    bench::check(r, leaders.load() == rounds, "barrier_rounds: one index 0 per round");
    return r;
}

Result fairness_64() {
    const long tasks = 64, total = S(2'000'000);
    std::vector<long> mine(static_cast<std::size_t>(tasks), 0);
    long counter = 0;
    timed_run([&]() -> spindle::Task<double> {
        spindle::Lock m;
        spindle::Event start;
        std::vector<spindle::JoinHandle<void>> hs;
        for (long t = 0; t < tasks; ++t)
            hs.push_back(spindle::spawn([](spindle::Lock& l, spindle::Event& st, long& c, long& k,
                                           long tot) -> spindle::Task<void> {
                co_await st.wait();
                for (;;) {
                    co_await l.acquire();
                    if (c >= tot) {
                        l.release();
                        break;
                    }
                    ++c;
                    l.release();
                    ++k;
                }
            }(m, start, counter, mine[static_cast<std::size_t>(t)], total)));
        while (start.approx_waiters() < static_cast<std::uint64_t>(tasks)) co_await spindle::yield_now();
        start.set();
        for (auto& h : hs) co_await h;
        co_return 0.0;
    });
    double idx = 0, mn = 0, mx = 0;
    bench::jain(mine, idx, mn, mx);
    Result r{idx, "primitive:spindle::Lock,min_share:" + bench::fmt(mn) + ",max_share:" + bench::fmt(mx)};
    bench::check(r, counter == total, "fairness_64 total");
    return r;
}

Result memory_parked() {
    const long n = S(1'000'000);
    long before = 0, peak = 0;
    std::atomic<long> woke{0};
    timed_run([&]() -> spindle::Task<double> {
        spindle::Event ev;
        std::vector<spindle::JoinHandle<void>> hs;
        hs.reserve(static_cast<std::size_t>(n));
#if __has_include(<mimalloc.h>)
        mi_collect(true);  // return pages an earlier run freed, or the delta reads low
#endif
        before = bench::vm_rss_bytes();
        for (long i = 0; i < n; ++i)
            hs.push_back(spindle::spawn([](spindle::Event& e, std::atomic<long>& w) -> spindle::Task<void> {
                co_await e.wait();
                w.fetch_add(1, std::memory_order_relaxed);  // relaxed: checked after the join
            }(ev, woke)));
        while (ev.approx_waiters() < static_cast<std::uint64_t>(n)) co_await spindle::yield_now();
        peak = bench::vm_rss_bytes();
        ev.set();
        for (auto& h : hs) co_await h;
        co_return 0.0;
    });
    Result r{static_cast<double>(peak - before) / static_cast<double>(n),
             "primitive:spindle::Event,includes:frame+JoinHandle_vector_8B"};
    bench::check(r, woke.load() == n, "memory_parked woke");
    return r;
}

// queue_mpsc: Queue(1024), 4 producers put 1..n, one consumer gets and sums them.
Result queue_mpsc() {
    const long producers = 4, total = S(4'000'000, producers), per = total / producers;
    const auto n = static_cast<std::uint64_t>(per * producers);
    std::uint64_t sum = 0, got = 0;
    const double ns = timed_run([&]() -> spindle::Task<double> {
        spindle::Queue<std::uint64_t> q(1024);
        auto t0 = bench::clk::now();
        auto consumer = spindle::spawn([](spindle::Queue<std::uint64_t>& qu, std::uint64_t k, std::uint64_t& s,
                                          std::uint64_t& g) -> spindle::Task<void> {
            for (std::uint64_t i = 0; i < k; ++i) {
                const std::uint64_t v = co_await qu.get();
                s += v;
                ++g;
            }
        }(q, n, sum, got));
        std::vector<spindle::JoinHandle<void>> ps;
        for (long p = 0; p < producers; ++p)
            ps.push_back(spindle::spawn([](spindle::Queue<std::uint64_t>& qu, long first, long k) -> spindle::Task<void> {
                for (long i = 0; i < k; ++i) {
                    auto item = static_cast<std::uint64_t>(first + i + 1);
                    co_await qu.put(std::move(item));
                }
            }(q, p * per, per)));
        for (auto& h : ps) co_await h;
        co_await consumer;
        co_return bench::ns_since(t0);
    });
    Result r{ns / static_cast<double>(n), "primitive:spindle::Queue,capacity:1024"};
    bench::check(r, got == n && bench::queue_sum_ok(sum, n), "queue_mpsc sum");
    return r;
}

}  // namespace

std::vector<bench::Workload> bench::spindle_workloads() {
    const std::string sys = "spindle";
    return {
        {"lock_uncontended", sys, "ns/op", lock_uncontended},
        {"lock_contended_2", sys, "ns/op", [] { return lock_contended(2, S(1'000'000)); }},
        {"lock_contended_64", sys, "ns/op", [] { return lock_contended(64, S(31'250)); }},
        {"lock_across_await", sys, "ns/op", lock_across_await},
        {"semaphore_throttle", sys, "ns/op", semaphore_throttle},
        {"event_broadcast", sys, "ns/waiter", event_broadcast},
        {"condition_pingpong", sys, "ns/roundtrip", condition_pingpong},
        {"barrier_rounds", sys, "ns/round", [] { return barrier_rounds(64); }},
        {"barrier_rounds_2", sys, "ns/round", [] { return barrier_rounds(2); }},
        {"queue_mpsc", sys, "ns/item", queue_mpsc},
        {"spawn_join", sys, "ns/task", spawn_join},
        {"yield_many", sys, "ns/yield", yield_many},
        {"fib_spawn", sys, "ms", fib_spawn},
        {"memory_parked", sys, "bytes/task", memory_parked, true},
        {"fairness_64", sys, "jain", fairness_64},
    };
}

int main(int argc, char** argv) {
    bench::parse_args(argc, argv);
    // The WORKLOADS.md order; within a workload the systems run one after another, so
    // that machine drift (other processes on the 2 cores) hits them alike.
    static const char* const kOrder[] = {
        "lock_uncontended",   "lock_contended_2", "lock_contended_64", "lock_across_await", "semaphore_throttle",
        "event_broadcast",    "condition_pingpong", "barrier_rounds",  "barrier_rounds_2",  "queue_mpsc",
        "spawn_join",         "yield_many",       "fib_spawn",         "memory_parked",     "fairness_64"};
    std::vector<std::vector<bench::Workload>> systems = {bench::spindle_workloads(), bench::std_thread_workloads(),
                                                         bench::boost_fiber_workloads()};
    std::vector<const bench::Workload*> plan;
    for (const char* name : kOrder)
        for (auto& sys : systems)
            for (auto& w : sys)
                if (w.name == name && bench::wanted(bench::g_opt.only, w.name) &&
                    bench::wanted(bench::g_opt.systems, w.system))
                    plan.push_back(&w);
    for (auto& o : bench::g_opt.only)
        if (std::find(std::begin(kOrder), std::end(kOrder), o) == std::end(kOrder)) {
            std::fprintf(stderr, "unknown workload %s (--list shows them)\n", o.c_str());
            return 2;
        }
    if (bench::g_opt.list) {
        for (auto* w : plan) std::printf("%s %s %s\n", w->name.c_str(), w->system.c_str(), w->unit.c_str());
        return 0;
    }
    std::size_t k = 0;
    for (auto* w : plan) {
        std::fprintf(stderr, "[%zu/%zu] %s system=%s\n", ++k, plan.size(), w->name.c_str(), w->system.c_str());
        bench::run_one(*w);
    }
    if (bench::g_failed) std::fprintf(stderr, "spindle_bench: a check FAILED (see CHECK FAILED above)\n");
    return bench::g_failed ? 1 : 0;
}
