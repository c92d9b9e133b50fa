// bench/std_thread_workloads.cpp — system=std_thread: a "task" is an OS thread; the
// primitives are libstdc++'s std::mutex, std::counting_semaphore, std::condition_variable,
// std::barrier, and a mutex + 2 condvars bounded queue. Adapted from
// ../shared/peers/cpp/std_thread.cpp (same sizes, same scaled-down workloads).
// Timings of multi-task workloads include creating and joining the threads.
#include <atomic>
#include <barrier>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <semaphore>
#include <thread>
#include <vector>

#include "workloads.hpp"

namespace bench {
namespace {

// Where a workload asks for more OS threads (or more wall time) than is sensible, it runs
// smaller and its line carries scaled:<factor vs WORKLOADS.md> (see peers/cpp/README.md).
constexpr long kSemThreads = 200;         // spec 10,000: libstdc++ 12's counting_semaphore::release
                                          // wakes every waiter, cost grows ~N^2
constexpr long kEventThreads = 2'000;     // spec 100,000 (pid_max, ~0.2 ms per thread creation)
constexpr long kPingpongRounds = 50'000;  // spec 500,000 (each round trip is 2 futex wake-ups)
constexpr long kQueueItems = 1'000'000;   // spec 4,000,000
constexpr long kBarrierRounds64 = 2'000;  // spec 10,000
constexpr long kSpawnThreads = 2'000;     // spec 1,000,000
constexpr int kFibN = 15;                 // spec fib(27) needs ~635k threads: n/a, fib(15) in extra
constexpr long kParkedThreads = 2'000;    // spec 1,000,000

// One-shot event: mutex + condvar + flag, counting parked waiters so that the setter
// knows when every waiter is blocked.
struct Event {
    std::mutex m;
    std::condition_variable cv;
    std::condition_variable parked_cv;
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

template <class F>
void spawn_join(long n, F&& f) {
    std::vector<std::thread> ts;
    ts.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) ts.emplace_back([&f, i] { f(i); });
    for (auto& t : ts) t.join();
}

Result lock_uncontended() {
    const long n = S(10'000'000);
    std::mutex m;
    long c = 0;
    auto t0 = clk::now();
    for (long i = 0; i < n; ++i) {
        m.lock();
        ++c;
        m.unlock();
    }
    Result r{ns_since(t0) / static_cast<double>(n), "primitive:std::mutex"};
    check(r, c == n, "std lock_uncontended count");
    return r;
}

Result lock_contended(long tasks, long per_task) {
    std::mutex m;
    long counter = 0;
    auto t0 = clk::now();
    spawn_join(tasks, [&](long) {
        for (long i = 0; i < per_task; ++i) {
            m.lock();
            counter += 1;
            m.unlock();
        }
    });
    Result r{ns_since(t0) / static_cast<double>(tasks * per_task), "primitive:std::mutex"};
    check(r, counter == tasks * per_task, "std lock_contended counter");
    return r;
}

Result semaphore_throttle() {
    const long tasks = S(kSemThreads), iters = 20, permits = 8;
    std::counting_semaphore<> sem(permits);
    std::atomic<long> inside{0}, max_inside{0}, ops{0};
    auto t0 = clk::now();
    spawn_join(tasks, [&](long) {
        for (long i = 0; i < iters; ++i) {
            sem.acquire();
            // relaxed: counters only, read after the join (which orders them).
            const long in = inside.fetch_add(1, std::memory_order_relaxed) + 1;
            long mx = max_inside.load(std::memory_order_relaxed);  // relaxed: as above
            while (in > mx && !max_inside.compare_exchange_weak(mx, in, std::memory_order_relaxed)) {
            }
            std::this_thread::yield();
            inside.fetch_sub(1, std::memory_order_relaxed);  // relaxed: as above
            ops.fetch_add(1, std::memory_order_relaxed);     // relaxed: as above
            sem.release();
        }
    });
    Result r{ns_since(t0) / static_cast<double>(tasks * iters),
             "primitive:std::counting_semaphore,yield:std::this_thread::yield," + kv("threads", tasks) +
                 ",note:libstdcxx12_release_wakes_all_waiters"};
    add_scaled(r.extra, kSemThreads, 10'000);
    check(r, ops.load() == tasks * iters, "std semaphore_throttle ops");
    check(r, max_inside.load() <= permits, "std semaphore_throttle permits exceeded");
    return r;
}

Result event_broadcast() {
    const long n = S(kEventThreads);
    Event ev;
    ev.expect = n;
    std::atomic<long> resumed{0};
    clk::time_point t_last{};
    std::vector<std::thread> ts;
    ts.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i)
        ts.emplace_back([&] {
            ev.wait();
            // acq_rel: the last resumer's t_last is read by the main thread after join.
            if (resumed.fetch_add(1, std::memory_order_acq_rel) + 1 == n) t_last = clk::now();
        });
    ev.wait_all_parked();
    // The last waiter released the mutex inside cv.wait; let it reach futex_wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto t0 = clk::now();
    ev.set();
    for (auto& t : ts) t.join();
    Result r{std::chrono::duration<double, std::nano>(t_last - t0).count() / static_cast<double>(n),
             "primitive:std::mutex+condition_variable+flag," + kv("threads", n)};
    add_scaled(r.extra, kEventThreads, 100'000);
    check(r, resumed.load() == n, "std event_broadcast resumed");
    return r;
}

Result condition_pingpong() {
    const long rounds = S(kPingpongRounds);
    std::mutex m;
    std::condition_variable cv;
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
    Result r{ns_since(t0) / static_cast<double>(rounds), "primitive:std::mutex+std::condition_variable"};
    add_scaled(r.extra, kPingpongRounds, 500'000);
    check(r, turns[0] == rounds && turns[1] == rounds, "std condition_pingpong turns");
    return r;
}

Result barrier_rounds(long tasks) {
    const long spec = 10'000, full = tasks == 64 ? kBarrierRounds64 : spec, rounds = S(full);
    long phases = 0;
    auto on_done = [&]() noexcept { ++phases; };
    std::barrier<decltype(on_done)> b(tasks, on_done);
    auto t0 = clk::now();
    spawn_join(tasks, [&](long) {
        for (long i = 0; i < rounds; ++i) b.arrive_and_wait();
    });
    Result r{ns_since(t0) / static_cast<double>(rounds), "primitive:std::barrier"};
    add_scaled(r.extra, full, spec);
    check(r, phases == rounds, "std barrier phases");
    return r;
}

// Bounded queue: ring buffer + std::mutex + two condition variables.
template <class T>
struct BoundedQueue {
    std::mutex m;
    std::condition_variable not_full, not_empty;
    std::vector<T> buf;
    std::size_t head = 0, count = 0;
    explicit BoundedQueue(std::size_t cap) : buf(cap) {}
    void push(T v) {
        {
            std::unique_lock lk(m);
            not_full.wait(lk, [&] { return count < buf.size(); });
            buf[(head + count) % buf.size()] = v;
            ++count;
        }
        not_empty.notify_one();
    }
    T pop() {
        T v;
        {
            std::unique_lock lk(m);
            not_empty.wait(lk, [&] { return count > 0; });
            v = buf[head];
            head = (head + 1) % buf.size();
            --count;
        }
        not_full.notify_one();
        return v;
    }
};

Result queue_mpsc() {
    const long producers = 4, total = S(kQueueItems, producers), per = total / producers;
    const auto n = static_cast<std::uint64_t>(per * producers);
    BoundedQueue<std::uint64_t> q(1024);
    std::uint64_t sum = 0;
    auto t0 = clk::now();
    std::thread consumer([&] {
        std::uint64_t s = 0;
        for (std::uint64_t i = 0; i < n; ++i) s += q.pop();
        sum = s;
    });
    spawn_join(producers, [&](long p) {
        for (long i = 0; i < per; ++i) q.push(static_cast<std::uint64_t>(p * per + i + 1));
    });
    consumer.join();
    Result r{ns_since(t0) / static_cast<double>(n), "primitive:mutex+2condvar_ring,capacity:1024"};
    add_scaled(r.extra, kQueueItems, 4'000'000);
    check(r, queue_sum_ok(sum, n), "std queue_mpsc sum");
    return r;
}

Result spawn_join_w() {
    const long n = S(kSpawnThreads);
    std::atomic<long> ran{0};
    auto t0 = clk::now();
    {
        std::vector<std::thread> ts;
        ts.reserve(static_cast<std::size_t>(n));
        // relaxed: a count read after the joins.
        for (long i = 0; i < n; ++i) ts.emplace_back([&] { ran.fetch_add(1, std::memory_order_relaxed); });
        for (auto& t : ts) t.join();
    }
    Result r{ns_since(t0) / static_cast<double>(n), "primitive:std::thread_create+join," + kv("threads", n)};
    add_scaled(r.extra, kSpawnThreads, 1'000'000);
    check(r, ran.load() == n, "std spawn_join: every thread ran");
    return r;
}

Result yield_many() {
    const long tasks = 200, yields = S(1'000);
    std::atomic<long> total{0};
    auto t0 = clk::now();
    spawn_join(tasks, [&](long) {
        long k = 0;
        for (long i = 0; i < yields; ++i) {
            std::this_thread::yield();
            ++k;
        }
        total.fetch_add(k, std::memory_order_relaxed);  // relaxed: read after the join
    });
    Result r{ns_since(t0) / static_cast<double>(tasks * yields), "primitive:std::this_thread::yield"};
    check(r, total.load() == tasks * yields, "std yield_many count");
    return r;
}

long fib_threads(int n) {
    if (n < 2) return n;
    long a = 0, b = 0;
    std::thread t1([&] { a = fib_threads(n - 1); });
    std::thread t2([&] { b = fib_threads(n - 2); });
    t1.join();
    t2.join();
    return a + b;
}

Result fib_spawn() {
    // fib(27) would need ~635k threads: value n/a, fib(kFibN) measured in extra.
    const int n = g_opt.scale >= 1.0 ? kFibN : 10;
    auto t0 = clk::now();
    const long v = fib_threads(n);
    const double ms = ns_since(t0) / 1e6;
    const long calls = 2 * fib_ref(n + 1) - 1;
    Result r{NAN, "n_a:too_many_threads," + kv("measured_n", static_cast<long>(n)) + "," + kv("measured_ms", ms) +
                      "," + kv("ns_per_call", ms * 1e6 / static_cast<double>(calls))};
    check(r, v == fib_ref(n), "std fib value");
    return r;
}

Result memory_parked() {
    const long n = S(kParkedThreads);
    Event ev;
    ev.expect = n;
    std::vector<std::thread> ts;
    ts.reserve(static_cast<std::size_t>(n));
    const long before = vm_rss_bytes();
    for (long i = 0; i < n; ++i) ts.emplace_back([&] { ev.wait(); });
    ev.wait_all_parked();
    const long peak = vm_rss_bytes();
    ev.set();
    for (auto& t : ts) t.join();
    Result r{static_cast<double>(peak - before) / static_cast<double>(n),
             "primitive:std::thread_on_condvar_event," + kv("threads", n) +
                 ",note:VmRSS_excludes_kernel_stack_and_task_struct"};
    add_scaled(r.extra, kParkedThreads, 1'000'000);
    check(r, ev.parked == n, "std memory_parked parked");
    return r;
}

Result fairness_64() {
    const long tasks = 64, total = S(2'000'000);
    std::mutex m;
    long counter = 0;
    std::vector<long> mine(static_cast<std::size_t>(tasks), 0);
    Event start;
    start.expect = tasks;
    std::vector<std::thread> ts;
    ts.reserve(static_cast<std::size_t>(tasks));
    for (long t = 0; t < tasks; ++t)
        ts.emplace_back([&, t] {
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
    for (auto& t : ts) t.join();
    const double ns = ns_since(t0);
    double idx = 0, mn = 0, mx = 0;
    jain(mine, idx, mn, mx);
    long sum = 0;
    for (long x : mine) sum += x;
    Result r{idx, "primitive:std::mutex," + kv("min_share", mn) + "," + kv("max_share", mx) + "," +
                      kv("ns_per_op", ns / static_cast<double>(total))};
    check(r, sum == total && counter == total, "std fairness_64 total");
    return r;
}

}  // namespace

std::vector<Workload> std_thread_workloads() {
    const std::string sys = "std_thread";
    return {
        {"lock_uncontended", sys, "ns/op", lock_uncontended},
        {"lock_contended_2", sys, "ns/op", [] { return lock_contended(2, S(1'000'000)); }},
        {"lock_contended_64", sys, "ns/op", [] { return lock_contended(64, S(31'250)); }},
        {"lock_across_await", sys, "ns/op", {}, false, false, {}, "no_scheduler_yield_for_os_threads"},
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
}

}  // namespace bench
