// bench/boost_fiber_workloads.cpp — system=boost_fiber: a "task" is a
// boost::fibers::fiber, scheduled by algo::work_stealing on --workers threads (the
// process's main thread plus workers-1 helpers), default suspend=false (idle workers
// spin), Boost's default 128 KiB fixedsize_stack, glibc malloc tuned so stacks are
// reused rather than mmap'd/munmap'd. Adapted from ../shared/peers/cpp/boost_fiber.cpp
// (same configuration, same scaled-down workloads). Every workload runs in its own
// forked process (Workload::isolate): work_stealing can be installed once per process,
// and its spinning workers must not steal CPU from the other systems' runs.
// Primitives: fibers::mutex, condition_variable, barrier, buffered_channel; Boost.Fiber
// has no semaphore, so one is made of fibers::mutex + condition_variable + count.
#include "workloads.hpp"

#if __has_include(<boost/fiber/all.hpp>) && !defined(SPINDLE_BENCH_NO_BOOST)
#include <boost/fiber/all.hpp>

#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>
#include <vector>

namespace bench {
namespace {

namespace bf = boost::fibers;

constexpr long kSpawnFibers = 100'000;     // spec 1,000,000: every live fiber faults in stack pages
constexpr long kParkedFibers = 50'000;     // spec 1,000,000: bytes/task is flat in n
constexpr long kPingpongRounds = 100'000;  // spec 500,000: both workers spin; a round trip can
                                           // cost a time slice when another process runs

void install_scheduler_only();
// Installs work_stealing on this (the main) thread and on workers-1 helper threads whose
// main fibers park until the process exits (_Exit in the forked child).
void install_scheduler_only() {
    const auto n = static_cast<std::uint32_t>(g_opt.workers);
    struct Parker {
        bf::mutex m;
        bf::condition_variable cv;
    };
    auto* parker = new Parker;  // lives until _Exit
    for (std::uint32_t i = 1; i < n; ++i)
        std::thread([n, parker] {
            bf::use_scheduling_algorithm<bf::algo::work_stealing>(n);
            std::unique_lock lk(parker->m);
            parker->cv.wait(lk, [] { return false; });
        }).detach();
    bf::use_scheduling_algorithm<bf::algo::work_stealing>(n);  // returns once all n joined
}
void install_scheduler() {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, -1);
    install_scheduler_only();
}

struct Event {
    bf::mutex m;
    bf::condition_variable cv;
    bf::condition_variable parked_cv;
    bool is_set = false;
    long parked = 0;
    long expect = 0;
    void wait() {
        std::unique_lock lk(m);
        if (++parked == expect) parked_cv.notify_one();
        cv.wait(lk, [&] { return is_set; });
    }
    void wait_all_parked() {
        std::unique_lock lk(m);
        parked_cv.wait(lk, [&] { return parked == expect; });
    }
    void set() {
        {
            std::lock_guard g(m);
            is_set = true;
        }
        cv.notify_all();
    }
};

struct Semaphore {
    bf::mutex m;
    bf::condition_variable cv;
    long count;
    explicit Semaphore(long c) : count(c) {}
    void acquire() {
        std::unique_lock lk(m);
        cv.wait(lk, [&] { return count > 0; });
        --count;
    }
    void release() {
        {
            std::lock_guard g(m);
            ++count;
        }
        cv.notify_one();
    }
};

template <class F>
void spawn_join(long n, F&& f) {
    std::vector<bf::fiber> fs;
    fs.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) fs.emplace_back([&f, i] { f(i); });
    for (auto& x : fs) x.join();
}

Result lock_uncontended() {
    const long n = S(10'000'000);
    bf::mutex m;
    long c = 0;
    auto t0 = clk::now();
    bf::fiber([&] {
        for (long i = 0; i < n; ++i) {
            m.lock();
            ++c;
            m.unlock();
        }
    }).join();
    Result r{ns_since(t0) / static_cast<double>(n), "primitive:fibers::mutex"};
    check(r, c == n, "boost lock_uncontended count");
    return r;
}

Result lock_contended(long tasks, long per_task) {
    bf::mutex m;
    long counter = 0;
    auto t0 = clk::now();
    spawn_join(tasks, [&](long) {
        for (long i = 0; i < per_task; ++i) {
            m.lock();
            counter += 1;
            m.unlock();
        }
    });
    Result r{ns_since(t0) / static_cast<double>(tasks * per_task), "primitive:fibers::mutex"};
    check(r, counter == tasks * per_task, "boost lock_contended counter");
    return r;
}

Result lock_across_await() {
    const long tasks = S(1'000), iters = 100;
    bf::mutex m;
    long counter = 0;
    auto t0 = clk::now();
    spawn_join(tasks, [&](long) {
        for (long i = 0; i < iters; ++i) {
            m.lock();
            boost::this_fiber::yield();
            counter += 1;
            m.unlock();
        }
    });
    Result r{ns_since(t0) / static_cast<double>(tasks * iters), "primitive:fibers::mutex,yield:this_fiber::yield"};
    check(r, counter == tasks * iters, "boost lock_across_await counter");
    return r;
}

Result semaphore_throttle() {
    const long tasks = S(10'000), iters = 20, permits = 8;
    Semaphore sem(permits);
    std::atomic<long> inside{0}, max_inside{0}, ops{0};
    auto t0 = clk::now();
    spawn_join(tasks, [&](long) {
        for (long i = 0; i < iters; ++i) {
            sem.acquire();
            // relaxed: counters only, read after the join.
            const long in = inside.fetch_add(1, std::memory_order_relaxed) + 1;
            long mx = max_inside.load(std::memory_order_relaxed);  // relaxed: as above
            while (in > mx && !max_inside.compare_exchange_weak(mx, in, std::memory_order_relaxed)) {
            }
            boost::this_fiber::yield();
            inside.fetch_sub(1, std::memory_order_relaxed);  // relaxed: as above
            ops.fetch_add(1, std::memory_order_relaxed);     // relaxed: as above
            sem.release();
        }
    });
    Result r{ns_since(t0) / static_cast<double>(tasks * iters),
             "primitive:semaphore_from_fibers::mutex+condition_variable,yield:this_fiber::yield"};
    check(r, ops.load() == tasks * iters, "boost semaphore_throttle ops");
    check(r, max_inside.load() <= permits, "boost semaphore_throttle permits exceeded");
    check(r, sem.count == permits, "boost semaphore_throttle permit lost");
    return r;
}

Result event_broadcast() {
    const long n = S(100'000);
    Event ev;
    ev.expect = n;
    std::atomic<long> resumed{0};
    clk::time_point t_last{};
    std::vector<bf::fiber> fs;
    fs.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i)
        fs.emplace_back([&] {
            ev.wait();
            // acq_rel: the last resumer's t_last is read after the join.
            if (resumed.fetch_add(1, std::memory_order_acq_rel) + 1 == n) t_last = clk::now();
        });
    ev.wait_all_parked();
    auto t0 = clk::now();
    ev.set();
    for (auto& f : fs) f.join();
    Result r{std::chrono::duration<double, std::nano>(t_last - t0).count() / static_cast<double>(n),
             "primitive:fibers::mutex+condition_variable+flag"};
    check(r, resumed.load() == n, "boost event_broadcast resumed");
    return r;
}

Result condition_pingpong() {
    const long rounds = S(kPingpongRounds);
    bf::mutex m;
    bf::condition_variable cv;
    int turn = 0;
    long turns[2] = {0, 0};
    auto t0 = clk::now();
    spawn_join(2, [&](long me) {
        for (long i = 0; i < rounds; ++i) {
            {
                std::unique_lock lk(m);
                cv.wait(lk, [&] { return turn == me; });
                turn = 1 - static_cast<int>(me);
                ++turns[me];
            }
            cv.notify_one();
        }
    });
    Result r{ns_since(t0) / static_cast<double>(rounds), "primitive:fibers::mutex+fibers::condition_variable"};
    add_scaled(r.extra, kPingpongRounds, 500'000);
    check(r, turns[0] == rounds && turns[1] == rounds, "boost condition_pingpong turns");
    return r;
}

Result barrier_rounds(long tasks) {
    const long rounds = S(10'000);
    bf::barrier b(static_cast<std::size_t>(tasks));
    std::atomic<long> leaders{0};
    auto t0 = clk::now();
    spawn_join(tasks, [&](long) {
        for (long i = 0; i < rounds; ++i)
            if (b.wait()) leaders.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after join
    });
    Result r{ns_since(t0) / static_cast<double>(rounds), "primitive:fibers::barrier"};
    check(r, leaders.load() == rounds, "boost barrier: one leader per round");
    return r;
}

Result queue_mpsc() {
    const long producers = 4, total = S(4'000'000, producers), per = total / producers;
    const auto n = static_cast<std::uint64_t>(per * producers);
    bf::buffered_channel<std::uint64_t> ch(1024);
    std::uint64_t sum = 0, got = 0;
    auto t0 = clk::now();
    bf::fiber consumer([&] {
        std::uint64_t s = 0, v = 0, k = 0;
        for (; k < n; ++k) {
            if (ch.pop(v) != bf::channel_op_status::success) break;
            s += v;
        }
        sum = s;
        got = k;
    });
    spawn_join(producers, [&](long p) {
        for (long i = 0; i < per; ++i) ch.push(static_cast<std::uint64_t>(p * per + i + 1));
    });
    consumer.join();
    Result r{ns_since(t0) / static_cast<double>(n),
             "primitive:fibers::buffered_channel,capacity:1024,usable_slots:1023"};
    check(r, got == n && queue_sum_ok(sum, n), "boost queue_mpsc sum");
    return r;
}

Result spawn_join_w() {
    const long n = S(kSpawnFibers);
    std::atomic<long> ran{0};
    auto t0 = clk::now();
    {
        std::vector<bf::fiber> fs;
        fs.reserve(static_cast<std::size_t>(n));
        // relaxed: a count read after the joins.
        for (long i = 0; i < n; ++i) fs.emplace_back([&] { ran.fetch_add(1, std::memory_order_relaxed); });
        for (auto& f : fs) f.join();
    }
    Result r{ns_since(t0) / static_cast<double>(n), "primitive:fibers::fiber+join,stack:128KiB"};
    add_scaled(r.extra, kSpawnFibers, 1'000'000);
    check(r, ran.load() == n, "boost spawn_join: every fiber ran");
    return r;
}

Result yield_many() {
    const long tasks = 200, yields = S(1'000);
    std::atomic<long> total{0};
    auto t0 = clk::now();
    spawn_join(tasks, [&](long) {
        long k = 0;
        for (long i = 0; i < yields; ++i) {
            boost::this_fiber::yield();
            ++k;
        }
        total.fetch_add(k, std::memory_order_relaxed);  // relaxed: read after the join
    });
    Result r{ns_since(t0) / static_cast<double>(tasks * yields), "primitive:this_fiber::yield"};
    check(r, total.load() == tasks * yields, "boost yield_many count");
    return r;
}

// Children start with launch::dispatch (depth-first, like the LIFO spawn of the others);
// launch::post runs the tree breadth-first with ~400k live fibers (see peers/cpp/README).
long fib_fibers(int n) {
    if (n < 2) return n;
    long a = 0, b = 0;
    bf::fiber f1(bf::launch::dispatch, [&] { a = fib_fibers(n - 1); });
    bf::fiber f2(bf::launch::dispatch, [&] { b = fib_fibers(n - 2); });
    f1.join();
    f2.join();
    return a + b;
}

Result fib_spawn() {
    const int n = g_opt.scale >= 1.0 ? 27 : 18;
    long v = 0;
    auto t0 = clk::now();
    bf::fiber([&] { v = fib_fibers(n); }).join();
    Result r{ns_since(t0) / 1e6, "launch:dispatch,stack:128KiB," + kv("n", static_cast<long>(n))};
    check(r, v == fib_ref(n), "boost fib value");
    return r;
}

Result memory_parked() {
    const long n = S(kParkedFibers);
    Event ev;
    ev.expect = n;
    std::vector<bf::fiber> fs;
    fs.reserve(static_cast<std::size_t>(n));
    const long before = vm_rss_bytes();
    for (long i = 0; i < n; ++i) fs.emplace_back([&] { ev.wait(); });
    ev.wait_all_parked();
    const long peak = vm_rss_bytes();
    ev.set();
    for (auto& f : fs) f.join();
    Result r{static_cast<double>(peak - before) / static_cast<double>(n),
             "primitive:fibers_on_condvar_event,stack:128KiB"};
    add_scaled(r.extra, kParkedFibers, 1'000'000);
    check(r, ev.parked == n, "boost memory_parked parked");
    return r;
}

Result fairness_64() {
    const long tasks = 64, total = S(2'000'000);
    bf::mutex m;
    long counter = 0;
    std::vector<long> mine(static_cast<std::size_t>(tasks), 0);
    Event start;
    start.expect = tasks;
    std::vector<bf::fiber> fs;
    fs.reserve(static_cast<std::size_t>(tasks));
    for (long t = 0; t < tasks; ++t)
        fs.emplace_back([&, t] {
            start.wait();
            long k = 0;
            for (;;) {
                m.lock();
                if (counter >= total) {
                    m.unlock();
                    break;
                }
                ++counter;
                m.unlock();
                ++k;
            }
            mine[static_cast<std::size_t>(t)] = k;
        });
    start.wait_all_parked();
    auto t0 = clk::now();
    start.set();
    for (auto& f : fs) f.join();
    const double ns = ns_since(t0);
    double idx = 0, mn = 0, mx = 0;
    jain(mine, idx, mn, mx);
    long sum = 0;
    for (long x : mine) sum += x;
    Result r{idx, "primitive:fibers::mutex," + kv("min_share", mn) + "," + kv("max_share", mx) + "," +
                      kv("ns_per_op", ns / static_cast<double>(total))};
    check(r, sum == total && counter == total, "boost fairness_64 total");
    return r;
}

}  // namespace

std::vector<Workload> boost_fiber_workloads() {
    const std::string sys = "boost_fiber";
    std::vector<Workload> ws = {
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
        {"spawn_join", sys, "ns/task", spawn_join_w},
        {"yield_many", sys, "ns/yield", yield_many},
        {"fib_spawn", sys, "ms", fib_spawn},
        {"memory_parked", sys, "bytes/task", memory_parked, true},
        {"fairness_64", sys, "jain", fairness_64},
    };
    for (auto& w : ws) {
        w.isolate = true;
        w.setup = install_scheduler;  // memory_parked (cold): a fresh process per run
    }
    return ws;
}

}  // namespace bench

#else
namespace bench {
std::vector<Workload> boost_fiber_workloads() { return {}; }
}  // namespace bench
#endif
