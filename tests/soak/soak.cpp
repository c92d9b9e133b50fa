// tests/soak/soak.cpp — spindle_soak: the named stress shapes and soak mode (issue 6).
//
// For the scheduler and every primitive it runs five named shapes:
//   smoke     a few tasks, the basic operations
//   stampede  hundreds to thousands of tasks on one primitive
//   cancel    wait_for timeouts of 0-200 us and JoinHandle::cancel (from a task and from
//             a plain thread) racing the grants; for the runtime, also loops whose only
//             suspension point is the join of a child they spawn
//   xthread   plain std::threads making the documented any-thread calls (release, set,
//             put_nowait/get_nowait, cancel, Runtime::spawn) that wake parked tasks
//   shutdown  the Runtime shut down (shutdown(), or its destructor) while tasks are
//             parked on the primitive and others are running
// and, for the runtime only:
//   joins     random spawn trees joined in random orders (inline joins, chains detached
//             at every depth), whole trees cancelled by a task and a plain thread
// and, for the Condition only:
//   predcancel  tasks inside Condition::wait_for(pred), pred capturing a std::string,
//             cancelled by a task and by a plain thread; the Condition on a Lock that
//             others take directly; notifies by non-holders (the crash family of
//             /work/shared/repros; SOAK_PRED_STATS=1 prints where the cancels landed)
// After every shape the invariants are checked and the first violation ends the
// program (exit 1) with the shape, the primitive, the seed that reproduces it and,
// where tasks were left, Runtime::dump(). A watchdog thread aborts with
// Runtime::dump() when a shape runs past its time bound (a hang is a lost wake-up).
//
//   spindle_soak                       one round of every shape (seed 1)
//   spindle_soak --seconds 20          rounds with fresh seeds until 20 s have passed
//   spindle_soak --minutes 30          the same, a soak; one progress line per round
//   spindle_soak --only cancel,lock --seed 17    one shape, one primitive, one seed
//   options: --scale K (sizes; default SPINDLE_STRESS_SCALE), --workers N (default:
//   2..4 chosen by the seed), --limit S (per-shape watchdog bound, default 120 s,
//   x4 under sanitizers), --wait-for-victims (see g_victims_wait_for: reproduces a
//   lost cancellation in wait_for), --list
// Round r uses seed (--seed) + r; the failure message prints the exact command line
// that reruns the failing shape with its seed.
//
// Differential rounds: after each round's shapes, `tests/diff/gen_and_run.py check`
// (spindle vs CPython asyncio, one worker, virtual time) runs over --diff-count fresh
// seeds derived from the round's seed (10000000 + seed * count; round 0 also checks
// regressions.txt), one progress line a round; the first divergence stops the soak
// with the program, both traces and the commands that reproduce and shrink it. On by
// default when python3 is CPython 3.11 and spindle_diff_interp sits next to this binary
// (it is built with it) and no --only is given; --no-diff, --diff (fail if
// unavailable), --diff-bin PATH, --diff-script PATH, --python PATH.
#include <spindle/spindle.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using spindle::Barrier;
using spindle::BoundedSemaphore;
using spindle::CancelledError;
using spindle::Condition;
using spindle::Event;
using spindle::JoinHandle;
using spindle::Lock;
using spindle::Runtime;
using spindle::RuntimeOptions;
using spindle::Semaphore;
using spindle::Task;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#ifndef SPINDLE_STRESS_SCALE
#define SPINDLE_STRESS_SCALE 1
#endif
#ifndef SPINDLE_DIFF_SCRIPT  // set by tests/CMakeLists.txt
#define SPINDLE_DIFF_SCRIPT ""
#endif
#ifndef SPINDLE_DIFF_PYTHON
#define SPINDLE_DIFF_PYTHON "python3"
#endif

namespace {

// ───────────────────────────── helpers ─────────────────────────────

/// A tiny deterministic PRNG (xorshift64; one per task, no shared state).
struct Rng {
    std::uint64_t s;
    explicit Rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL + 1) {}
    std::uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    std::uint64_t below(std::uint64_t n) { return next() % n; }
    std::chrono::microseconds us(std::uint64_t max_incl) { return std::chrono::microseconds(below(max_incl + 1)); }
};

/// A plain std::thread that runs the jobs posted to it, in order: waking calls made
/// from outside the workers. The destructor runs what is left, then joins.
class Remote {
public:
    Remote() : t_([this] { loop(); }) {}
    Remote(const Remote&) = delete;
    Remote& operator=(const Remote&) = delete;
    ~Remote() { finish(); }
    /// Runs what is posted, then joins the thread. A Runtime must outlive every waking
    /// call made from a plain thread (the call may still be inside the scheduler after
    /// the woken task ran): shapes call this before their main task returns.
    void finish() {
        if (!t_.joinable()) return;
        post({});
        t_.join();
    }
    void post(std::function<void()> job) {  // an empty job stops the thread
        {
            std::lock_guard lk(m_);
            jobs_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

private:
    void loop() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lk(m_);
                cv_.wait(lk, [&] { return !jobs_.empty(); });
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            if (!job) return;
            job();
        }
    }
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::thread t_;
};

/// Aborts with Runtime::dump() when a shape runs past its bound.
class Watchdog {
public:
    Watchdog() : t_([this] { loop(); }) {}
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;
    ~Watchdog() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        t_.join();
    }
    void arm(std::string label, std::chrono::seconds limit) {
        {
            std::lock_guard lk(m_);
            label_ = std::move(label);
            limit_ = limit;
            deadline_ = std::chrono::steady_clock::now() + limit;
            armed_ = true;
        }
        cv_.notify_all();
    }
    /// The runtime to dump on a hang (nullptr: none). Cleared before a Runtime is
    /// destroyed; a dump in progress finishes first (it holds the mutex).
    void set_runtime(const Runtime* rt) {
        std::lock_guard lk(m_);
        rt_ = rt;
    }
    void set_phase(const char* phase) {
        std::lock_guard lk(m_);
        phase_ = phase;
    }
    void disarm() {
        std::lock_guard lk(m_);
        armed_ = false;
        rt_ = nullptr;
    }

private:
    void loop() {
        std::unique_lock lk(m_);
        while (!stop_) {
            if (!armed_) {
                cv_.wait(lk);
                continue;
            }
            const auto d = deadline_;
            cv_.wait_until(lk, d);
            if (stop_ || !armed_ || std::chrono::steady_clock::now() < deadline_) continue;
            std::string dump = rt_ != nullptr ? rt_->dump() : std::string("(no runtime to dump in this phase)\n");
            if (dump.size() > 8000) dump.resize(8000);
            std::fprintf(stderr,
                         "\n*** SOAK HANG: %s did not finish within %llds (phase: %s): a lost wake-up, a lost "
                         "cancellation or a deadlock.\n*** Runtime::dump() (first 8000 chars):\n%s\n",
                         label_.c_str(), static_cast<long long>(limit_.count()), phase_, dump.c_str());
            std::fflush(stderr);
            std::abort();
        }
    }
    std::mutex m_;
    std::condition_variable cv_;
    bool stop_ = false;
    bool armed_ = false;
    std::string label_;
    const char* phase_ = "";
    std::chrono::seconds limit_{0};
    std::chrono::steady_clock::time_point deadline_;
    const Runtime* rt_ = nullptr;
    std::thread t_;
};

Watchdog* g_dog = nullptr;

/// --wait-for-victims (default) / --no-wait-for-victims: in the cancel shapes, the
/// victims (tasks cancelled with JoinHandle::cancel) also acquire through
/// spindle::wait_for. Under CPython 3.11's rules (before issue 14) a victim looping on
/// wait_for(lock.acquire(), t) of a free Lock could never be cancelled and the shape
/// hung; wait_for now awaits in place (3.12's rules) and never swallows a cancellation.
bool g_victims_wait_for = true;

/// One shape run: its parameters and the violations it found.
struct Ctx {
    std::string shape;
    std::string prim;
    std::uint64_t seed = 1;
    double scale = 1;
    std::size_t workers = 2;
    std::mutex m;
    std::vector<std::string> violations;
    std::vector<JoinHandle<void>> handles;  // spawned by the main task; checked done at the end
    std::atomic<long> started{0};           // shutdown shapes: task bodies entered ...
    std::atomic<long> cleaned{0};           // ... and left (RAII), whatever the way out
    std::atomic<long> cleanups_spawned{0};  // shutdown shapes: cleanup children spawned by
    std::atomic<long> cleanups_ran{0};      // ... cancelled tasks, those that ran, and those
    std::atomic<long> cleanups_cancelled{0};  // ... cancelled before they ran (see rt_busy_forever)

    void fail(std::string what) {
        std::lock_guard lk(m);
        if (violations.size() < 16) violations.push_back(std::move(what));
    }
    [[nodiscard]] bool failed() {
        std::lock_guard lk(m);
        return !violations.empty();
    }
    /// `base` scaled by --scale, divided by 4 under sanitizers; at least `min`.
    [[nodiscard]] std::size_t n(std::size_t base, std::size_t min = 1) const {
        double v = static_cast<double>(base) * scale;
        if (kSanitized) v /= 4;
        return std::max(min, static_cast<std::size_t>(v));
    }
    [[nodiscard]] int ni(std::size_t base, std::size_t min = 1) const { return static_cast<int>(n(base, min)); }
};

#define SOAK_CHECK(c, cond, msg)                                               \
    do {                                                                       \
        if (!(cond)) (c).fail(std::string("violated: " #cond " -- ") + (msg)); \
    } while (0)

std::string S(long long v) { return std::to_string(v); }

/// Counts a task body's exit, however it leaves (shutdown shapes).
struct Alive {
    Ctx* c;
    explicit Alive(Ctx& ctx) : c(&ctx) { c->started.fetch_add(1); }
    Alive(const Alive&) = delete;
    Alive& operator=(const Alive&) = delete;
    ~Alive() { c->cleaned.fetch_add(1); }
};

/// No task left: every handle the main task kept is done and the runtime lists no live task.
void check_quiescent(Ctx& c, const Runtime& rt, const char* when) {
    std::size_t not_done = 0;
    for (auto& h : c.handles) not_done += h.done() ? 0 : 1;
    std::string dump = rt.dump();
    if (not_done != 0 || !dump.empty()) {
        if (dump.size() > 6000) dump.resize(6000);
        c.fail(std::string("task(s) left unfinished ") + when + ": " + S(static_cast<long long>(not_done)) + " of " +
               S(static_cast<long long>(c.handles.size())) + " handles not done; Runtime::dump():\n" + dump);
    }
}

void check_handles_done(Ctx& c, const char* when) {
    std::size_t not_done = 0;
    for (auto& h : c.handles) not_done += h.done() ? 0 : 1;
    SOAK_CHECK(c, not_done == 0, S(static_cast<long long>(not_done)) + " handles not done " + when);
}

/// Runs make_body(rt) to completion on a fresh runtime, then checks that nothing is left.
template <class MakeBody>
void with_runtime(Ctx& c, MakeBody make_body) {
    Runtime rt(RuntimeOptions{.workers = c.workers});
    g_dog->set_runtime(&rt);
    g_dog->set_phase("block_on");
    try {
        rt.block_on(make_body(rt));
    } catch (const CancelledError&) {
        c.fail("the main task ended with CancelledError");
    } catch (const std::exception& e) {
        c.fail(std::string("an exception escaped the shape: ") + e.what());
    }
    check_quiescent(c, rt, "after the main task returned");
    g_dog->set_phase("shutdown of an idle runtime");
    rt.shutdown();
    g_dog->set_runtime(nullptr);
    g_dog->set_phase("destroying the runtime");
}

/// Shutdown while busy: make_body(rt) starts work and returns with tasks parked and
/// running; then the runtime is shut down (shutdown(), or straight to its
/// destructor, chosen by the seed). Every task must end; each body entered must leave.
template <class MakeBody>
void with_runtime_shutdown(Ctx& c, MakeBody make_body) {
    const bool via_shutdown = (c.seed % 2) == 0;
    {
        Runtime rt(RuntimeOptions{.workers = c.workers});
        g_dog->set_runtime(&rt);
        g_dog->set_phase("block_on (starting the work)");
        try {
            rt.block_on(make_body(rt));
        } catch (const CancelledError&) {
            c.fail("the main task ended with CancelledError");
        } catch (const std::exception& e) {
            c.fail(std::string("an exception escaped the shape: ") + e.what());
        }
        if (via_shutdown) {
            g_dog->set_phase("Runtime::shutdown() while busy");
            rt.shutdown();
            check_quiescent(c, rt, "after Runtime::shutdown()");
        }
        g_dog->set_runtime(nullptr);
        g_dog->set_phase(via_shutdown ? "destroying the runtime after shutdown()" : "~Runtime() while busy");
    }
    g_dog->set_phase("checks after the runtime is gone");
    check_handles_done(c, via_shutdown ? "after shutdown() and ~Runtime()" : "after ~Runtime()");
    SOAK_CHECK(c, c.started.load() == c.cleaned.load(),
               S(c.started.load()) + " task bodies entered, " + S(c.cleaned.load()) + " left");
    // A task cancelled by the shutdown may spawn a cleanup child and await it: the
    // child runs (asyncio.run's shutdown cancels only the tasks it found).
    SOAK_CHECK(c, c.cleanups_spawned.load() == c.cleanups_ran.load() + c.cleanups_cancelled.load() &&
                      2 * c.cleanups_ran.load() >= c.cleanups_spawned.load(),
               S(c.cleanups_spawned.load()) + " cleanup children spawned during shutdown, " +
                   S(c.cleanups_ran.load()) + " ran, " + S(c.cleanups_cancelled.load()) +
                   " cancelled before they ran (most must run)");
    c.handles.clear();
}

/// Waits for every handle; counts those that ended with CancelledError.
Task<long> join_all(std::vector<JoinHandle<void>>& hs) {
    long cancelled = 0;
    for (auto& h : hs) {
        try {
            co_await h;
        } catch (const CancelledError&) {
            ++cancelled;
        }
    }
    co_return cancelled;
}

/// Keeps a copy of every handle in the context (checked done at the end).
void keep(Ctx& c, const std::vector<JoinHandle<void>>& hs) {
    for (const auto& h : hs) c.handles.push_back(h);
}

/// Busy-waits a little (to land a call at a random moment). Not std::this_thread::yield:
/// with more workers than cores, each yield can give a busy worker a whole time slice.
void spin(std::uint64_t n) {
    std::atomic<std::uint64_t> i{0};
    // relaxed: a counter local to this thread; the atomic only keeps the loop from being removed.
    while (i.fetch_add(1, std::memory_order_relaxed) < n * 16) {
    }
}

/// A plain thread that cancels `victims` at random moments.
std::thread killer_thread(std::vector<JoinHandle<void>> victims, std::uint64_t seed) {
    return std::thread([victims = std::move(victims), seed]() mutable {
        Rng rng(seed);
        for (auto& h : victims) {
            spin(rng.below(300));
            (void)h.cancel();
        }
    });
}

/// A task that cancels `victims` after a random number of yields each.
Task<void> canceller(std::vector<JoinHandle<void>> victims, std::uint64_t seed) {
    Rng rng(seed);
    for (auto& h : victims) {
        for (std::uint64_t y = rng.below(6); y > 0; --y) co_await spindle::yield_now();
        (void)h.cancel();
    }
}

/// Splits victims: even ones cancelled by a task, odd ones by a plain thread; waits
/// for both; returns how many ended with CancelledError.
Task<long> cancel_and_join(std::vector<JoinHandle<void>> victims, std::uint64_t seed) {
    std::vector<JoinHandle<void>> even, odd;
    for (std::size_t i = 0; i < victims.size(); ++i) (i % 2 == 0 ? even : odd).push_back(victims[i]);
    std::thread killer = killer_thread(odd, seed + 1);
    auto k = spindle::spawn(canceller(even, seed + 2));
    co_await k;
    const long cancelled = co_await join_all(victims);
    killer.join();  // it has cancelled every odd victim: they all ended
    co_return cancelled;
}

// ───────────────────────────── scheduler ─────────────────────────────

Task<std::uint64_t> rt_value(std::uint64_t v, int yields) {
    for (int i = 0; i < yields; ++i) co_await spindle::yield_now();
    co_return v;
}

Task<std::uint64_t> rt_tree(int depth, std::uint64_t v) {
    if (depth == 0) co_return v;
    auto a = spindle::spawn(rt_tree(depth - 1, v * 2));
    auto b = spindle::spawn(rt_tree(depth - 1, v * 2 + 1));
    const std::uint64_t x = co_await a;
    const std::uint64_t y = co_await b;
    co_return x + y;
}

Task<void> rt_smoke(Ctx& c) {
    auto [a, b, d] = co_await spindle::gather(rt_value(1, 1), rt_value(2, 0), rt_value(3, 2));
    SOAK_CHECK(c, a + b + d == 6, "gather returned " + S(static_cast<long long>(a + b + d)));
    auto h = spindle::spawn(rt_value(40, 3));
    const std::uint64_t v = co_await h;
    SOAK_CHECK(c, v == 40, "join returned " + S(static_cast<long long>(v)));
    co_await spindle::sleep(200us);
    bool timed_out = false;
    try {
        co_await spindle::wait_for(spindle::sleep(1h), 1ms);
    } catch (const spindle::TimeoutError&) {
        timed_out = true;
    }
    SOAK_CHECK(c, timed_out, "wait_for(sleep(1h), 1ms) did not time out");
    auto blocking = [] { return 7; };
    const int t = co_await spindle::to_thread(blocking);
    SOAK_CHECK(c, t == 7, "to_thread returned " + S(t));
    const std::uint64_t tree = co_await rt_tree(4, 1);
    SOAK_CHECK(c, tree == 16 * 16 + (15 * 16) / 2, "spawn tree sum " + S(static_cast<long long>(tree)));
}

Task<void> rt_stampede(Ctx& c) {
    Rng rng(c.seed);
    const std::size_t n = c.n(20000, 100);
    std::vector<JoinHandle<std::uint64_t>> hs;
    hs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) hs.push_back(spindle::spawn(rt_value(i, static_cast<int>(rng.below(4)))));
    std::uint64_t sum = 0;
    for (auto& h : hs) {
        const std::uint64_t v = co_await h;
        sum += v;
    }
    SOAK_CHECK(c, sum == static_cast<std::uint64_t>(n) * (n - 1) / 2, "sum of " + S(static_cast<long long>(n)) + " tasks");
    const int depth = kSanitized ? 8 : 11;
    const std::uint64_t tree = co_await rt_tree(depth, 1);
    const std::uint64_t leaves = 1ULL << depth;
    SOAK_CHECK(c, tree == leaves * leaves + leaves * (leaves - 1) / 2, "spawn tree sum");
}

Task<std::uint64_t> rt_join_child(int kind, int depth) {
    if (kind == 1) co_await spindle::yield_now();
    if (kind == 2 && depth > 0) co_return 1 + co_await spindle::spawn(rt_join_child(depth % 3, depth - 1));
    co_return 1;
}

Task<void> rt_forever(int mode, std::uint64_t seed) {
    Rng rng(seed);
    for (;;) {
        if (mode == 0) co_await spindle::yield_now();
        else co_await spindle::sleep(rng.us(200));
    }
}

// A loop whose only suspension point is the join of a child it spawns: the cancel
// reaches it through that join, forwarded to a child still on the spawn stack, running
// inline, or running on another worker (stolen, or resumed there after a yield), which
// may finish without a suspension point and never observe it. Mode 0's children never
// suspend; mode 1's sometimes yield or spawn and join one level more. It swallows each
// CancelledError (counting it in `observed`) until the last of `rounds`. Found by CI
// (inline_join_test): such a loop lost an accepted cancel() when the other worker had
// started the child, and ran for ever.
Task<void> rt_join_looper(int mode, std::uint64_t seed, std::atomic<int>& observed, int rounds) {
    Rng rng(seed);
    observed.store(0);  // started: from -1 (a task cancelled before it starts never runs)
    for (;;) {
        try {
            if (mode == 0) (void)co_await spindle::spawn(rt_join_child(0, 0));
            else (void)co_await spindle::spawn(rt_join_child(static_cast<int>(rng.below(3)), 2));
        } catch (const CancelledError&) {
            if (observed.fetch_add(1) + 1 == rounds) throw;
        }
    }
}

Task<void> rt_finite(Ctx& c, std::uint64_t seed, std::atomic<long>& completed, std::atomic<long>& timeouts) {
    Rng rng(seed);
    for (int k = 0; k < 5; ++k) {
        try {
            co_await spindle::wait_for(spindle::sleep(rng.us(200)), rng.us(200));
        } catch (const spindle::TimeoutError&) {
            timeouts.fetch_add(1);
        }
    }
    (void)c;
    completed.fetch_add(1);
}

Task<void> rt_cancel(Ctx& c) {
    const int n = c.ni(1000, 10);
    std::vector<JoinHandle<void>> forever, finite;
    std::atomic<long> completed{0}, timeouts{0};
    Rng rng(c.seed);
    // Join loopers (rt_join_looper): a plain thread cancels each `rounds` times, one
    // request at a time, and waits until the looper has observed it: a request not
    // observed within the bound was lost. Few loopers, many rounds: each keeps a worker
    // busy, and the task canceller's yields below would each wait for all of them.
    const int n_loop = c.ni(8, 2);
    const int rounds = 20;
    std::vector<std::unique_ptr<std::atomic<int>>> observed;
    std::vector<JoinHandle<void>> loopers;
    for (int i = 0; i < n_loop; ++i) {
        observed.push_back(std::make_unique<std::atomic<int>>(-1));
        loopers.push_back(spindle::spawn(rt_join_looper(static_cast<int>(rng.below(2)), rng.next(), *observed.back(), rounds)));
    }
    keep(c, loopers);
    std::atomic<long> lost{0};
    std::thread loop_killer([&observed, &lost, rounds, victims = loopers, seed = c.seed + 7]() mutable {
        Rng r(seed);
        // Whether looper i counts k within the bound.
        const auto reaches = [&observed](std::size_t i, int k) {
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(kSanitized ? 20 : 5);
            while (observed[i]->load() < k && std::chrono::steady_clock::now() < until) std::this_thread::yield();
            return observed[i]->load() >= k;
        };
        for (std::size_t i = 0; i < victims.size(); ++i) {
            // Not before it started: a task cancelled before its first run never runs
            // (asyncio), and the looper would never count anything.
            (void)reaches(i, 0);
            for (int k = 1; k <= rounds; ++k) {
                spin(r.below(300));
                (void)victims[i].cancel();
                if (reaches(i, k)) continue;
                lost.fetch_add(1);  // reported below; ask again so that the looper ends
                while (observed[i]->load() < k && !victims[i].done()) {
                    (void)victims[i].cancel();
                    std::this_thread::yield();
                }
                if (victims[i].done()) break;
            }
        }
    });
    for (int i = 0; i < n; ++i) {
        forever.push_back(spindle::spawn(rt_forever(static_cast<int>(rng.below(2)), rng.next())));
        finite.push_back(spindle::spawn(rt_finite(c, rng.next(), completed, timeouts)));
    }
    keep(c, forever);
    keep(c, finite);
    // Half the finite ones are cancelled too, racing their completion.
    std::vector<JoinHandle<void>> racing;
    for (int i = 0; i < n; i += 2) racing.push_back(finite[static_cast<std::size_t>(i)]);
    std::thread racer = killer_thread(racing, c.seed + 5);
    const long cancelled = co_await cancel_and_join(forever, c.seed);
    const long fin_cancelled = co_await join_all(finite);
    const long loop_cancelled = co_await join_all(loopers);
    racer.join();
    loop_killer.join();
    SOAK_CHECK(c, cancelled == n, "only " + S(cancelled) + " of " + S(n) + " forever-tasks ended cancelled");
    SOAK_CHECK(c, lost.load() == 0, S(lost.load()) + " accepted cancel() of a join loop never reached it");
    SOAK_CHECK(c, loop_cancelled == n_loop, "only " + S(loop_cancelled) + " of " + S(n_loop) + " join loopers ended cancelled");
    SOAK_CHECK(c, completed.load() + fin_cancelled == n,
               S(completed.load()) + " completed + " + S(fin_cancelled) + " cancelled of " + S(n));
    long flag_mismatch = 0;
    for (auto& h : finite) flag_mismatch += h.done() ? 0 : 1;
    SOAK_CHECK(c, flag_mismatch == 0, "finite tasks not done after their join");
}

// Inline joins ("Inline joins" in runtime/src/worker.cpp): random spawn trees whose
// nodes spawn 1..3 children and await them in a random order (a child still on the
// spawn stack runs inline), suspending at random points first (a yield, a sleep, a
// shared Lock, a wait_for that may time out), so inline chains are detached at every
// depth; a task and a plain thread cancel whole trees meanwhile. Each node returns the
// size of its subtree: a tree that was not cancelled must return exactly the number of
// nodes that ran in it, and every tree must end (a level left unregistered at a detach
// never wakes: the shape hangs and its watchdog dumps the runtime).
Task<std::uint64_t> rt_join_node(int depth, std::uint64_t seed, Lock& lock, std::atomic<long>& ran) {
    Rng rng(seed);
    ran.fetch_add(1);
    switch (rng.below(6)) {
        case 0: co_await spindle::yield_now(); break;
        case 1: co_await spindle::sleep(rng.us(30)); break;
        case 2:
            co_await lock.acquire();
            lock.release();
            break;
        case 3:
            try {
                co_await spindle::wait_for(spindle::sleep(rng.us(40)), rng.us(40));
            } catch (const spindle::TimeoutError&) {
            }
            break;
        default: break;  // no suspension: the whole subtree may run inline
    }
    if (depth == 0) co_return 1;
    const std::size_t n = 1 + static_cast<std::size_t>(rng.below(3));
    std::vector<JoinHandle<std::uint64_t>> hs;
    for (std::size_t i = 0; i < n; ++i) hs.push_back(spindle::spawn(rt_join_node(depth - 1, rng.next(), lock, ran)));
    std::uint64_t sum = 1;
    std::exception_ptr failed;
    const std::size_t first = static_cast<std::size_t>(rng.below(n));  // the first joined: any of them
    for (std::size_t i = 0; i < n; ++i) {
        try {
            sum += co_await hs[(first + i) % n];
        } catch (const CancelledError&) {
            // Cancelled (forwarded to the child being awaited): cancel the others and
            // still join them all, so no node outlives its tree (they use `lock` and
            // `ran`, which the shape's frame owns).
            if (!failed) failed = std::current_exception();
            for (auto& h : hs) (void)h.cancel();
        }
    }
    if (failed) std::rethrow_exception(failed);
    co_return sum;
}

Task<void> rt_join_tree(int depth, std::uint64_t seed, Lock& lock, std::atomic<long>& ran, std::atomic<long>& bad) {
    const std::uint64_t v = co_await rt_join_node(depth, seed, lock, ran);
    if (static_cast<long>(v) != ran.load()) bad.fetch_add(1);
}

Task<void> rt_joins(Ctx& c) {
    Rng rng(c.seed);
    Lock lock;
    const int n = c.ni(60, 6);
    const int depth = kSanitized ? 4 : 6;
    std::vector<std::unique_ptr<std::atomic<long>>> ran;
    std::atomic<long> bad{0};
    std::vector<JoinHandle<void>> trees, victims_task, victims_thread;
    for (int i = 0; i < n; ++i) {
        ran.push_back(std::make_unique<std::atomic<long>>(0));
        trees.push_back(spindle::spawn(rt_join_tree(depth, rng.next(), lock, *ran.back(), bad)));
        if (i % 3 == 1) victims_task.push_back(trees.back());
        else if (i % 3 == 2) victims_thread.push_back(trees.back());
    }
    keep(c, trees);
    std::thread racer = killer_thread(victims_thread, c.seed + 11);
    co_await canceller(victims_task, c.seed + 12);
    long cancelled = 0;
    for (auto& h : trees) {
        try {
            co_await h;
        } catch (const CancelledError&) {
            ++cancelled;
        }
    }
    racer.join();
    SOAK_CHECK(c, bad.load() == 0, S(bad.load()) + " trees returned a size other than the nodes that ran");
    SOAK_CHECK(c, cancelled <= static_cast<long>(victims_task.size() + victims_thread.size()),
               S(cancelled) + " trees ended cancelled, more than were cancelled");
}

Task<void> rt_external(Semaphore& done, std::atomic<long>& ran, bool forever) {
    ran.fetch_add(1);
    if (forever) {
        for (;;) co_await spindle::sleep(50us);  // ends by the cancel() of its spawner thread
    }
    co_await spindle::yield_now();
    done.release();
}

Task<void> rt_xthread(Ctx& c, Runtime& rt) {
    // Plain threads spawn tasks with Runtime::spawn, cancel the looping ones with
    // JoinHandle::cancel, and say they are done with Event::set.
    Semaphore done(0);
    std::atomic<long> ran{0};
    std::atomic<long> finite{0};
    constexpr int kThreads = 3;
    const int per = c.ni(500, 5);
    std::vector<std::vector<JoinHandle<void>>> owned(kThreads), forever(kThreads);
    std::vector<std::unique_ptr<Event>> spawned;
    for (int t = 0; t < kThreads; ++t) spawned.push_back(std::make_unique<Event>());
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
        ts.emplace_back([&, t] {
            Rng rng(c.seed + static_cast<std::uint64_t>(t));
            const auto ti = static_cast<std::size_t>(t);
            for (int i = 0; i < per; ++i) {
                const bool loops = rng.below(4) == 0;
                auto h = rt.spawn(rt_external(done, ran, loops), "external");
                if (loops) {
                    (void)h.cancel();
                    forever[ti].push_back(h);
                } else {
                    finite.fetch_add(1);
                }
                owned[ti].push_back(std::move(h));
            }
            spawned[ti]->set();
        });
    for (auto& e : spawned) (void)co_await e->wait();
    for (auto& t : ts) t.join();  // they have finished: set() was their last call
    const long n_finite = finite.load();
    for (long i = 0; i < n_finite; ++i) co_await done.acquire();
    for (auto& v : owned) keep(c, v);
    const long cancelled = co_await join_all(c.handles);
    long forever_n = 0, forever_cancelled = 0;
    for (auto& v : forever)
        for (auto& h : v) {
            ++forever_n;
            forever_cancelled += h.cancelled() ? 1 : 0;
        }
    SOAK_CHECK(c, forever_cancelled == forever_n, S(forever_cancelled) + " of " + S(forever_n) + " cancelled loopers ended cancelled");
    SOAK_CHECK(c, cancelled == forever_n, S(cancelled) + " handles ended cancelled, " + S(forever_n) + " were cancelled");
    SOAK_CHECK(c, done.value() == 0, "done semaphore " + S(done.value()));
    SOAK_CHECK(c, ran.load() <= kThreads * per && ran.load() >= n_finite, "ran " + S(ran.load()));
}

Task<void> rt_cleanup(Ctx& c, bool& ran) {
    ran = true;
    c.cleanups_ran.fetch_add(1);
    co_return;
}

Task<void> rt_busy_forever(Ctx& c, int mode, std::uint64_t seed, JoinHandle<void> other) {
    Alive alive(c);
    Rng rng(seed);
    if (mode == 3) {
        // Parked until the shutdown cancels it; then it spawns a cleanup child and
        // awaits it (found in review: lazy listing first cancelled every such child).
        // The child runs — unless shutdown's 20 ms re-walk cancels this task again
        // while it awaits: the join forwards that cancellation to the child, which may
        // not have started yet (asyncio forwards a second cancel the same way). So:
        // every child either ran or ended cancelled, and most ran.
        bool cancelled = false;
        try {
            co_await spindle::sleep(1h);
        } catch (const CancelledError&) {
            cancelled = true;
        }
        if (cancelled) {
            c.cleanups_spawned.fetch_add(1);
            bool ran = false;
            auto h = spindle::spawn(rt_cleanup(c, ran));
            try {
                co_await h;
            } catch (const CancelledError&) {
            }
            if (!ran) {
                c.cleanups_cancelled.fetch_add(1);
                SOAK_CHECK(c, h.cancelled(), "a cleanup child that never ran did not end cancelled");
            }
            throw CancelledError{};
        }
        co_return;
    }
    if (mode == 2 && other.valid()) co_await other;  // parked on a JoinHandle
    for (std::uint64_t k = 0;; ++k) {
        if (mode == 0) co_await spindle::yield_now();
        else if (mode == 1) co_await spindle::sleep(rng.us(500));
        else co_await spindle::sleep(1h);
        if (mode == 0 && k % 64 == 0) {
            auto cheap = [] { return 1; };
            (void)co_await spindle::to_thread(cheap);
        }
    }
}

Task<void> rt_shutdown(Ctx& c) {
    Rng rng(c.seed);
    const int n = c.ni(400, 8);
    JoinHandle<void> prev;
    for (int i = 0; i < n; ++i) {
        auto h = spindle::spawn(rt_busy_forever(c, static_cast<int>(rng.below(4)), rng.next(), prev));
        prev = h;
        c.handles.push_back(std::move(h));
    }
    for (std::uint64_t y = rng.below(20); y > 0; --y) co_await spindle::yield_now();
    co_await spindle::sleep(rng.us(2000));
}

// ───────────────────────────── Lock ─────────────────────────────

struct Excl {
    std::atomic<int> inside{0};
    std::atomic<long> overlaps{0};      // a second task inside the critical section
    std::atomic<long> bad_releases{0};  // release() threw: the grant was given twice
    std::atomic<long> over_releases{0}; // BoundedSemaphore::release threw
    std::atomic<int> max_inside{0};
    std::atomic<long> entries{0};
    std::atomic<long> timeouts{0};
    long counter = 0;  // protected by the Lock only (TSan checks the happens-before)
};

void record_max(std::atomic<int>& mx, int v) {
    int m = mx.load();
    while (v > m && !mx.compare_exchange_weak(m, v)) {
    }
}

/// With the lock held. Returns false when cancelled at the yield (the lock is still ours).
Task<bool> lock_critical(Excl& x, bool yield) {
    if (x.inside.fetch_add(1) != 0) x.overlaps.fetch_add(1);
    const long v = x.counter;
    bool cancelled = false;
    if (yield) {
        try {
            co_await spindle::yield_now();
        } catch (const CancelledError&) {
            cancelled = true;
        }
    }
    x.counter = v + 1;
    x.entries.fetch_add(1);
    x.inside.fetch_sub(1);
    co_return !cancelled;
}

void lock_release(Lock& l, Excl& x) {
    try {
        l.release();
    } catch (const std::logic_error&) {
        x.bad_releases.fetch_add(1);
    }
}

/// mode 0: acquire; 1: scoped(); 2: wait_for(acquire, 0..200us) or acquire.
Task<void> lock_worker(Lock& l, Excl& x, std::uint64_t seed, long iters, int mode) {
    Rng rng(seed);
    for (long k = 0; k < iters; ++k) {
        const bool yield = rng.below(2) == 0;
        if (mode == 1) {
            auto g = co_await l.scoped();
            const bool ok = co_await lock_critical(x, yield);
            if (!ok) throw CancelledError{};  // the guard releases
            continue;
        }
        if (mode == 2 && rng.below(2) == 0) {
            try {
                co_await spindle::wait_for(l.acquire(), rng.us(200));
            } catch (const spindle::TimeoutError&) {
                x.timeouts.fetch_add(1);
                continue;
            }
        } else {
            co_await l.acquire();
        }
        const bool ok = co_await lock_critical(x, yield);
        lock_release(l, x);
        if (!ok) throw CancelledError{};
    }
}

Task<void> lock_final(Ctx& c, Lock& l, Excl& x) {
    co_await l.acquire();  // happens-after every critical section
    SOAK_CHECK(c, x.counter == x.entries.load(), "counter " + S(x.counter) + " != entries " + S(x.entries.load()));
    l.release();
    SOAK_CHECK(c, x.overlaps.load() == 0, S(x.overlaps.load()) + " times two tasks held the Lock at once");
    SOAK_CHECK(c, x.bad_releases.load() == 0, S(x.bad_releases.load()) + " holders found the Lock already released");
    SOAK_CHECK(c, !l.locked(), "Lock still locked at the end");
    SOAK_CHECK(c, l.approx_waiters() == 0, S(static_cast<long long>(l.approx_waiters())) + " waiters left");
    const bool took = l.try_acquire();
    SOAK_CHECK(c, took, "Lock not takeable at the end");
    if (took) l.release();
}

Task<void> lock_smoke(Ctx& c) {
    Lock l;
    Excl x;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 4; ++i) hs.push_back(spindle::spawn(lock_worker(l, x, c.seed + i, 100, i % 2)));
    keep(c, hs);
    const long cancelled = co_await join_all(hs);
    SOAK_CHECK(c, cancelled == 0, "cancelled " + S(cancelled));
    SOAK_CHECK(c, x.entries.load() == 400, "entries " + S(x.entries.load()));
    co_await lock_final(c, l, x);
}

Task<void> lock_stampede(Ctx& c) {
    Lock l;
    Excl x;
    const int n = c.ni(3000, 50);
    std::vector<JoinHandle<void>> hs;
    hs.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) hs.push_back(spindle::spawn(lock_worker(l, x, c.seed * 131 + i, 10, i % 2)));
    keep(c, hs);
    (void)co_await join_all(hs);
    SOAK_CHECK(c, x.entries.load() == 10L * n, "entries " + S(x.entries.load()) + " of " + S(10L * n));
    co_await lock_final(c, l, x);
}

Task<void> lock_cancel(Ctx& c) {
    Lock l;
    Excl x;
    const int survivors_n = 12;
    const long survivor_iters = c.ni(150, 10);
    const int victims_n = c.ni(300, 8);
    std::vector<JoinHandle<void>> survivors, victims;
    for (int i = 0; i < survivors_n; ++i)
        survivors.push_back(spindle::spawn(lock_worker(l, x, c.seed * 7 + i, survivor_iters, i % 3)));
    for (int i = 0; i < victims_n; ++i)  // run until cancelled: a lost cancel() hangs
        victims.push_back(
            spindle::spawn(lock_worker(l, x, c.seed * 11 + i, std::numeric_limits<long>::max(),
                                       g_victims_wait_for ? i % 3 : i % 2)));
    keep(c, survivors);
    keep(c, victims);
    const long cancelled = co_await cancel_and_join(victims, c.seed);
    const long s_cancelled = co_await join_all(survivors);
    SOAK_CHECK(c, cancelled == victims_n, S(cancelled) + " of " + S(victims_n) + " victims ended cancelled");
    SOAK_CHECK(c, s_cancelled == 0, "a survivor ended cancelled");
    const long attempts = x.entries.load();
    SOAK_CHECK(c, attempts >= survivors_n * survivor_iters - x.timeouts.load(), "survivors did not finish");
    co_await lock_final(c, l, x);
}

Task<void> lock_via_remote(Lock& l, Excl& x, Remote& r, int iters) {
    for (int k = 0; k < iters; ++k) {
        co_await l.acquire();
        const bool ok = co_await lock_critical(x, false);
        (void)ok;
        r.post([&l, &x] { lock_release(l, x); });  // the next holder is woken from a plain thread
    }
}

Task<void> lock_xthread_body(Ctx& c, Lock& l, Excl& x, Remote& r1, Remote& r2, int n, int iters) {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < n; ++i) hs.push_back(spindle::spawn(lock_via_remote(l, x, i % 2 ? r1 : r2, iters)));
    keep(c, hs);
    (void)co_await join_all(hs);
    SOAK_CHECK(c, x.entries.load() == static_cast<long>(n) * iters, "entries " + S(x.entries.load()));
    co_await lock_final(c, l, x);  // its acquire waits for the last release by a plain thread
    r1.finish();
    r2.finish();
}

void lock_xthread(Ctx& c) {
    Lock l;
    Excl x;
    Remote r1, r2;
    const int n = c.ni(200, 4);
    const int iters = 20;
    with_runtime(c, [&](Runtime&) { return lock_xthread_body(c, l, x, r1, r2, n, iters); });
}

Task<void> lock_shutdown_worker(Ctx& c, Lock& l, Excl& x, std::uint64_t seed) {
    Alive alive(c);
    Rng rng(seed);
    for (;;) {
        if (rng.below(3) == 0) {
            auto g = co_await l.scoped();
            if (x.inside.fetch_add(1) != 0) x.overlaps.fetch_add(1);
            x.inside.fetch_sub(1);
            co_await spindle::sleep(rng.us(100));  // cancelled here: the guard releases
        } else {
            co_await lock_worker(l, x, rng.next(), 3, 2);
        }
    }
}

Task<void> lock_shutdown_body(Ctx& c, Lock& l, Excl& x) {
    Rng rng(c.seed);
    co_await l.acquire();  // some tasks park behind a held lock
    const int n = c.ni(300, 8);
    for (int i = 0; i < n; ++i) c.handles.push_back(spindle::spawn(lock_shutdown_worker(c, l, x, rng.next())));
    for (std::uint64_t y = rng.below(10); y > 0; --y) co_await spindle::yield_now();
    l.release();
    co_await spindle::sleep(rng.us(1500));
}

void lock_shutdown(Ctx& c) {
    Lock l;
    Excl x;
    with_runtime_shutdown(c, [&](Runtime&) { return lock_shutdown_body(c, l, x); });
    SOAK_CHECK(c, x.overlaps.load() == 0, "two holders at once");
    SOAK_CHECK(c, x.bad_releases.load() == 0, "a holder found the Lock already released");
    SOAK_CHECK(c, !l.locked(), "Lock left locked by the shutdown");
    SOAK_CHECK(c, l.approx_waiters() == 0, "waiters left");
    const bool took = l.try_acquire();
    SOAK_CHECK(c, took, "Lock not takeable after the shutdown");
    if (took) l.release();
}

// ───────────────────────────── Semaphore / BoundedSemaphore ─────────────────────────────

template <class Sem>
void sem_release(Sem& s, Excl& x) {
    try {
        s.release();
    } catch (const std::invalid_argument&) {
        x.over_releases.fetch_add(1);  // BoundedSemaphore: a permit was granted twice
    }
}

template <class Sem>
Task<void> sem_worker(Sem& s, Excl& x, std::uint64_t seed, long iters, bool timeouts) {
    Rng rng(seed);
    for (long k = 0; k < iters; ++k) {
        if (timeouts && rng.below(2) == 0) {
            try {
                co_await spindle::wait_for(s.acquire(), rng.us(200));
            } catch (const spindle::TimeoutError&) {
                x.timeouts.fetch_add(1);
                continue;
            }
        } else {
            co_await s.acquire();
        }
        record_max(x.max_inside, x.inside.fetch_add(1) + 1);
        x.entries.fetch_add(1);
        bool cancelled = false;
        if (rng.below(2) == 0) {
            try {
                co_await spindle::yield_now();
            } catch (const CancelledError&) {
                cancelled = true;
            }
        }
        x.inside.fetch_sub(1);
        sem_release(s, x);
        if (cancelled) throw CancelledError{};
    }
}

template <class Sem>
void sem_final_checks(Ctx& c, Sem& s, Excl& x, std::ptrdiff_t permits) {
    SOAK_CHECK(c, x.max_inside.load() <= permits,
               S(x.max_inside.load()) + " holders at once with " + S(permits) + " permits");
    SOAK_CHECK(c, x.over_releases.load() == 0,
               "BoundedSemaphore over-released " + S(x.over_releases.load()) + " times: a permit was doubled");
    SOAK_CHECK(c, s.value() == permits, "value() " + S(s.value()) + " != initial " + S(permits) + ": a permit was lost or doubled");
    SOAK_CHECK(c, s.approx_waiters() == 0, "waiters left");
    if (permits > 0) SOAK_CHECK(c, !s.locked(), "locked() with every permit free");
    std::ptrdiff_t took = 0;
    while (took <= permits && s.try_acquire()) ++took;
    SOAK_CHECK(c, took == permits, "try_acquire took " + S(took) + " of " + S(permits) + " permits");
    for (std::ptrdiff_t i = 0; i < took; ++i) sem_release(s, x);
}

template <class Sem>
Task<void> sem_run(Ctx& c, std::ptrdiff_t permits, int n, long iters, bool timeouts) {
    Sem s(permits);
    Excl x;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < n; ++i) hs.push_back(spindle::spawn(sem_worker(s, x, c.seed * 17 + i, iters, timeouts)));
    keep(c, hs);
    const long cancelled = co_await join_all(hs);
    SOAK_CHECK(c, cancelled == 0, "cancelled " + S(cancelled));
    SOAK_CHECK(c, x.entries.load() + x.timeouts.load() == n * iters, "entries + timeouts != attempts");
    if (n > permits && !timeouts) SOAK_CHECK(c, x.max_inside.load() >= 1, "nobody got in");
    sem_final_checks(c, s, x, permits);
}

template <class Sem>
Task<void> sem_smoke(Ctx& c) {
    co_await sem_run<Sem>(c, 2, 5, 20, false);
}

template <class Sem>
Task<void> sem_stampede(Ctx& c) {
    Rng rng(c.seed);
    const auto permits = static_cast<std::ptrdiff_t>(1 + rng.below(8));
    co_await sem_run<Sem>(c, permits, c.ni(2000, 50), 5, false);
}

template <class Sem>
Task<void> sem_cancel(Ctx& c) {
    Rng rng(c.seed);
    const auto permits = static_cast<std::ptrdiff_t>(1 + rng.below(3));
    Sem s(permits);
    Excl x;
    const int survivors_n = 10;
    const long survivor_iters = c.ni(150, 10);
    const int victims_n = c.ni(300, 8);
    std::vector<JoinHandle<void>> survivors, victims;
    for (int i = 0; i < survivors_n; ++i)
        survivors.push_back(spindle::spawn(sem_worker(s, x, c.seed * 5 + i, survivor_iters, true)));
    for (int i = 0; i < victims_n; ++i)
        victims.push_back(spindle::spawn(
            sem_worker(s, x, c.seed * 3 + i, std::numeric_limits<long>::max(), g_victims_wait_for && i % 2 == 0)));
    keep(c, survivors);
    keep(c, victims);
    const long cancelled = co_await cancel_and_join(victims, c.seed);
    const long s_cancelled = co_await join_all(survivors);
    SOAK_CHECK(c, cancelled == victims_n, S(cancelled) + " of " + S(victims_n) + " victims ended cancelled");
    SOAK_CHECK(c, s_cancelled == 0, "a survivor ended cancelled");
    SOAK_CHECK(c, x.inside.load() == 0, "inside " + S(x.inside.load()));
    sem_final_checks(c, s, x, permits);
}

template <class Sem>
Task<void> sem_via_remote(Sem& s, Excl& x, Remote& r, int iters) {
    for (int k = 0; k < iters; ++k) {
        co_await s.acquire();
        record_max(x.max_inside, x.inside.fetch_add(1) + 1);
        x.entries.fetch_add(1);
        x.inside.fetch_sub(1);
        r.post([&s, &x] { sem_release(s, x); });  // woken from a plain thread
    }
}

Task<void> sem_channel_taker(Semaphore& s, std::atomic<long>& got) {
    co_await s.acquire();
    got.fetch_add(1);
}

template <class Sem>
Task<void> sem_xthread_body(Ctx& c, Sem& s, Semaphore& channel, Excl& x, std::atomic<long>& got, Remote& r1, Remote& r2, std::ptrdiff_t permits, int n, int iters, std::thread& feeder) {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < n; ++i) hs.push_back(spindle::spawn(sem_via_remote(s, x, i % 2 ? r1 : r2, iters)));
    // A Semaphore(0) as a channel: a plain thread releases, parked tasks take.
    std::vector<JoinHandle<void>> takers;
    for (int i = 0; i < n; ++i) takers.push_back(spindle::spawn(sem_channel_taker(channel, got)));
    feeder = std::thread([&channel, n] {
        for (int i = 0; i < n; ++i) channel.release();
    });
    keep(c, hs);
    keep(c, takers);
    (void)co_await join_all(hs);
    (void)co_await join_all(takers);
    // Take every permit back: the last ones are released by the plain threads.
    for (std::ptrdiff_t i = 0; i < permits; ++i) co_await s.acquire();
    for (std::ptrdiff_t i = 0; i < permits; ++i) sem_release(s, x);
    r1.finish();  // the runtime must outlive the plain threads' release() calls
    r2.finish();
    feeder.join();
    SOAK_CHECK(c, x.entries.load() == static_cast<long>(n) * iters, "entries " + S(x.entries.load()));
    SOAK_CHECK(c, got.load() == n, "channel: " + S(got.load()) + " of " + S(n) + " takers got a permit");
    SOAK_CHECK(c, channel.value() == 0, "channel value " + S(channel.value()));
    sem_final_checks(c, s, x, permits);
}

template <class Sem>
void sem_xthread(Ctx& c) {
    Rng rng(c.seed);
    const auto permits = static_cast<std::ptrdiff_t>(1 + rng.below(4));
    Sem s(permits);
    Semaphore channel(0);
    Excl x;
    std::atomic<long> got{0};
    Remote r1, r2;
    const int n = c.ni(200, 4);
    const int iters = 20;
    std::thread feeder;
    with_runtime(c, [&](Runtime&) { return sem_xthread_body<Sem>(c, s, channel, x, got, r1, r2, permits, n, iters, feeder); });
    if (feeder.joinable()) feeder.join();  // only when the body failed early
}

template <class Sem>
Task<void> sem_shutdown_worker(Ctx& c, Sem& s, Excl& x, std::uint64_t seed) {
    Alive alive(c);
    Rng rng(seed);
    for (;;) {
        co_await sem_worker(s, x, rng.next(), 3, true);
        if (rng.below(4) == 0) {
            co_await s.acquire();
            x.inside.fetch_add(1);
            try {
                co_await spindle::sleep(rng.us(300));
            } catch (const CancelledError&) {
                x.inside.fetch_sub(1);
                sem_release(s, x);
                throw;
            }
            x.inside.fetch_sub(1);
            sem_release(s, x);
        }
    }
}

template <class Sem>
Task<void> sem_shutdown_body(Ctx& c, Sem& s, Excl& x) {
    Rng rng(c.seed + 1);
    const int n = c.ni(300, 8);
    for (int i = 0; i < n; ++i) c.handles.push_back(spindle::spawn(sem_shutdown_worker(c, s, x, rng.next())));
    for (std::uint64_t y = rng.below(10); y > 0; --y) co_await spindle::yield_now();
    co_await spindle::sleep(rng.us(1500));
}

template <class Sem>
void sem_shutdown(Ctx& c) {
    Rng rng(c.seed);
    const auto permits = static_cast<std::ptrdiff_t>(1 + rng.below(3));
    Sem s(permits);
    Excl x;
    with_runtime_shutdown(c, [&](Runtime&) { return sem_shutdown_body<Sem>(c, s, x); });
    SOAK_CHECK(c, x.inside.load() == 0, "inside " + S(x.inside.load()));
    sem_final_checks(c, s, x, permits);
}

// ───────────────────────────── Event ─────────────────────────────

Task<void> ev_waiter(Event& e, std::atomic<long>& woke) {
    const bool r = co_await e.wait();
    if (r) woke.fetch_add(1);
}

Task<void> ev_timed_waiter(Event& e, std::atomic<long>& woke, std::atomic<long>& timeouts, std::uint64_t seed) {
    Rng rng(seed);
    try {
        const bool r = co_await spindle::wait_for(e.wait(), rng.us(200));
        if (r) woke.fetch_add(1);
    } catch (const spindle::TimeoutError&) {
        timeouts.fetch_add(1);
    }
}

Task<void> ev_rounds(Ctx& c, int n, int rounds, bool from_thread) {
    // Declared before the Remote: a plain thread may still be inside set() when the
    // woken waiters finish, so the Events must outlive the thread (~Remote joins it).
    Event ev;
    Event cleared;
    Remote r;
    Rng rng(c.seed);
    for (int round = 0; round < rounds; ++round) {
        ev.clear();
        std::atomic<long> woke{0};
        std::vector<JoinHandle<void>> hs;
        hs.reserve(static_cast<std::size_t>(n));
        const bool all_queued_first = round % 2 == 0;
        for (int i = 0; i < n; ++i) hs.push_back(spindle::spawn(ev_waiter(ev, woke)));
        if (all_queued_first)
            while (ev.approx_waiters() < static_cast<std::uint64_t>(n)) co_await spindle::yield_now();
        SOAK_CHECK(c, !all_queued_first || woke.load() == 0, "woke before set()");
        if (from_thread) {
            r.post([&ev] { ev.set(); });
        } else {
            for (std::uint64_t y = rng.below(4); y > 0; --y) co_await spindle::yield_now();
            ev.set();
        }
        keep(c, hs);
        (void)co_await join_all(hs);
        SOAK_CHECK(c, woke.load() == n, "round " + S(round) + ": " + S(woke.load()) + " of " + S(n) + " woke");
        SOAK_CHECK(c, ev.approx_waiters() == 0, "waiters left after set()");
        SOAK_CHECK(c, ev.is_set(), "not set");
    }
    if (from_thread) {  // clear() and set() from a plain thread: a waiter parks on clear, wakes on set
        std::atomic<long> woke{0};
        r.post([&ev, &cleared] {
            ev.clear();
            cleared.set();
        });
        co_await cleared.wait();
        auto h = spindle::spawn(ev_waiter(ev, woke));
        while (ev.approx_waiters() < 1) co_await spindle::yield_now();
        r.post([&ev] { ev.set(); });
        co_await h;
        SOAK_CHECK(c, woke.load() == 1, "waiter after a remote clear/set did not wake");
    }
}

Task<void> ev_smoke(Ctx& c) { co_await ev_rounds(c, 3, 2, false); }
Task<void> ev_stampede(Ctx& c) { co_await ev_rounds(c, c.ni(5000, 50), 3, false); }
Task<void> ev_xthread(Ctx& c) { co_await ev_rounds(c, c.ni(2000, 20), 4, true); }

Task<void> ev_cancel(Ctx& c) {
    Rng rng(c.seed);
    // The Events outlive the setter thread (declared first, destroyed after ~Remote joins it).
    std::vector<std::unique_ptr<Event>> events;
    Remote setter;
    for (int round = 0; round < 4; ++round) {
        Event& ev = *events.emplace_back(std::make_unique<Event>());
        const int n = c.ni(900, 9);
        std::atomic<long> woke{0}, timeouts{0}, plain_woke{0};
        std::vector<JoinHandle<void>> plain, timed, victims;
        for (int i = 0; i < n; ++i) {
            if (i % 3 == 0) plain.push_back(spindle::spawn(ev_waiter(ev, plain_woke)));
            else if (i % 3 == 1) timed.push_back(spindle::spawn(ev_timed_waiter(ev, woke, timeouts, rng.next())));
            else victims.push_back(spindle::spawn(ev_waiter(ev, woke)));
        }
        keep(c, plain);
        keep(c, timed);
        keep(c, victims);
        const auto spins = rng.below(400);
        setter.post([&ev, spins] {
            spin(spins);
            ev.set();
        });
        const long cancelled = co_await cancel_and_join(victims, rng.next());
        (void)co_await join_all(timed);
        const long p_cancelled = co_await join_all(plain);
        SOAK_CHECK(c, p_cancelled == 0, "a plain waiter ended cancelled");
        SOAK_CHECK(c, plain_woke.load() == static_cast<long>(plain.size()),
                   "round " + S(round) + ": " + S(plain_woke.load()) + " of " + S(static_cast<long long>(plain.size())) +
                       " uncancelled waiters woke");
        SOAK_CHECK(c, woke.load() + timeouts.load() + cancelled == static_cast<long>(timed.size() + victims.size()),
                   "some waiter ended two ways or none");
        SOAK_CHECK(c, ev.approx_waiters() == 0, "waiters left");
        // the setter may still be spinning: wait for its set() before ev dies
        Event& flushed = *events.emplace_back(std::make_unique<Event>());
        setter.post([&flushed] { flushed.set(); });
        co_await flushed.wait();
    }
}

Task<void> ev_shutdown_worker(Ctx& c, Event& ev, Event& never, std::uint64_t seed) {
    Alive alive(c);
    Rng rng(seed);
    for (;;) {
        switch (rng.below(3)) {
            case 0: (void)co_await never.wait(); break;
            case 1: (void)co_await ev.wait(); co_await spindle::yield_now(); break;
            default:
                try {
                    (void)co_await spindle::wait_for(never.wait(), rng.us(200));
                } catch (const spindle::TimeoutError&) {
                }
        }
        if (rng.below(2) == 0) ev.clear();
        else ev.set();
    }
}

Task<void> ev_shutdown_body(Ctx& c, Event& ev, Event& never) {
    Rng rng(c.seed);
    const int n = c.ni(500, 8);
    for (int i = 0; i < n; ++i) c.handles.push_back(spindle::spawn(ev_shutdown_worker(c, ev, never, rng.next())));
    co_await spindle::sleep(rng.us(1500));
}

void ev_shutdown(Ctx& c) {
    Event ev, never;
    with_runtime_shutdown(c, [&](Runtime&) { return ev_shutdown_body(c, ev, never); });
    SOAK_CHECK(c, ev.approx_waiters() == 0 && never.approx_waiters() == 0, "waiters left on an Event");
    SOAK_CHECK(c, !never.is_set(), "never-set Event is set");
}

// ───────────────────────────── Condition ─────────────────────────────

/// Items (producer, seq) under the Condition's lock, and who consumed what.
struct CondState {
    CondState(int producers, int per_producer)
        : per(per_producer), seen(static_cast<std::size_t>(producers) * static_cast<std::size_t>(per_producer)) {}
    std::deque<std::pair<int, int>> items;  // under the lock
    bool closed = false;                    // under the lock
    int per;
    std::vector<std::atomic<int>> seen;
    std::atomic<long> consumed{0};
    std::atomic<long> produced{0};
    void record(std::pair<int, int> it) {
        seen[static_cast<std::size_t>(it.first) * static_cast<std::size_t>(per) + static_cast<std::size_t>(it.second)]
            .fetch_add(1);
        consumed.fetch_add(1);
    }
    [[nodiscard]] long bad(long produced_per_all = -1) const {
        long b = 0;
        for (const auto& s : seen) b += s.load() != 1 ? 1 : 0;
        (void)produced_per_all;
        return b;
    }
};

Task<void> cond_consumer(Condition& cv, CondState& st) {
    auto g = co_await cv.scoped();
    for (;;) {
        (void)co_await cv.wait_for([&] { return !st.items.empty() || st.closed; });
        if (st.items.empty()) co_return;  // closed and drained
        st.record(st.items.front());
        st.items.pop_front();
    }
}

Task<void> cond_producer(Condition& cv, CondState& st, int p, int per, std::uint64_t seed) {
    Rng rng(seed);
    for (int i = 0; i < per; ++i) {
        {
            auto g = co_await cv.scoped();
            st.items.emplace_back(p, i);
            st.produced.fetch_add(1);
            if (rng.below(8) == 0) cv.notify_all();
            else cv.notify(1 + rng.below(2));
        }
        if (rng.below(4) == 0) co_await spindle::yield_now();
    }
}

Task<void> cond_close(Condition& cv, CondState& st) {
    auto g = co_await cv.scoped();
    st.closed = true;
    cv.notify_all();
}

Task<void> cond_final(Ctx& c, Condition& cv, CondState& st, long expected) {
    auto g = co_await cv.scoped();
    SOAK_CHECK(c, st.consumed.load() == expected, S(st.consumed.load()) + " of " + S(expected) + " items consumed");
    SOAK_CHECK(c, st.bad() == 0, S(st.bad()) + " items consumed zero or two times");
    SOAK_CHECK(c, st.items.empty(), S(static_cast<long long>(st.items.size())) + " items left");
    SOAK_CHECK(c, cv.approx_waiters() == 0, "waiters left on the Condition");
}

Task<void> cond_run(Ctx& c, int producers, int per, int consumers, int victims_n) {
    Condition cv;
    CondState st(producers, per);
    std::vector<JoinHandle<void>> cs, vs, ps;
    for (int i = 0; i < consumers; ++i) cs.push_back(spindle::spawn(cond_consumer(cv, st)));
    for (int i = 0; i < victims_n; ++i) vs.push_back(spindle::spawn(cond_consumer(cv, st)));
    for (int p = 0; p < producers; ++p) ps.push_back(spindle::spawn(cond_producer(cv, st, p, per, c.seed + p)));
    keep(c, cs);
    keep(c, vs);
    keep(c, ps);
    long cancelled = 0;
    if (victims_n > 0) cancelled = co_await cancel_and_join(vs, c.seed);
    (void)co_await join_all(ps);
    co_await cond_close(cv, st);
    const long c_cancelled = co_await join_all(cs);
    (void)co_await join_all(vs);
    SOAK_CHECK(c, c_cancelled == 0, "a surviving consumer ended cancelled");
    SOAK_CHECK(c, cancelled == victims_n, S(cancelled) + " of " + S(victims_n) + " victims ended cancelled");
    co_await cond_final(c, cv, st, static_cast<long>(producers) * per);
    SOAK_CHECK(c, !cv.locked(), "Condition's lock left locked");
}

Task<void> cond_smoke(Ctx& c) { co_await cond_run(c, 2, 50, 2, 0); }
Task<void> cond_stampede(Ctx& c) { co_await cond_run(c, 4, c.ni(2000, 20), c.ni(300, 8), 0); }
Task<void> cond_cancel(Ctx& c) { co_await cond_run(c, 4, c.ni(1500, 20), 4, c.ni(60, 4)); }

Task<void> cond_relay(Condition& cv, CondState& st, spindle::Queue<std::pair<int, int>>& in, long n) {
    for (long k = 0; k < n; ++k) {
        auto it = co_await in.get();  // put_nowait by a plain thread wakes us
        auto g = co_await cv.scoped();
        st.items.push_back(it);
        st.produced.fetch_add(1);
        cv.notify(1);
    }
}

constexpr int kThreads = 2;  // cond_xthread: plain feeder threads

Task<void> cond_xthread_body(Ctx& c, Condition& cv, CondState& st, spindle::Queue<std::pair<int, int>>& in, int per, std::vector<std::thread>& ts) {
    std::vector<JoinHandle<void>> cs, vs;
    for (int i = 0; i < 4; ++i) cs.push_back(spindle::spawn(cond_consumer(cv, st)));
    for (int i = 0; i < 16; ++i) vs.push_back(spindle::spawn(cond_consumer(cv, st)));
    auto relay = spindle::spawn(cond_relay(cv, st, in, static_cast<long>(kThreads) * per));
    for (int t = 0; t < kThreads; ++t)
        ts.emplace_back([&in, t, per] {
            for (int i = 0; i < per; ++i) in.put_nowait({t, i});  // unbounded: never full
        });
    std::thread killer = killer_thread(vs, c.seed);
    keep(c, cs);
    keep(c, vs);
    c.handles.push_back(relay);
    co_await relay;
    for (auto& t : ts) t.join();  // done putting: the relay got every item
    (void)co_await join_all(vs);
    killer.join();
    co_await cond_close(cv, st);
    (void)co_await join_all(cs);
    co_await cond_final(c, cv, st, static_cast<long>(kThreads) * per);
    SOAK_CHECK(c, in.empty(), "relay queue not empty");
}

void cond_xthread(Ctx& c) {
    // Condition::notify needs the lock, so plain threads feed it through a Queue
    // (put_nowait) relayed by a task, and cancel waiting consumers (JoinHandle::cancel).
    Condition cv;
    const int per = c.ni(2000, 20);
    CondState st(kThreads, per);
    spindle::Queue<std::pair<int, int>> in;
    std::vector<std::thread> ts;
    with_runtime(c, [&](Runtime&) { return cond_xthread_body(c, cv, st, in, per, ts); });
    for (auto& t : ts)
        if (t.joinable()) t.join();  // only when the body failed early
}

// ─────────── Condition::wait_for cancelled, predicate capturing a std::string ───────────
//
// The shape of the crash repros in /work/shared/repros (tests/diff/regressions/repro_*):
// tasks inside Condition::wait_for(pred), where pred captures a std::string by copy,
// cancelled by a task and by a plain thread; the Condition is built on a Lock that other
// tasks also take directly; notify/notify_all by holders, and by tasks and a plain thread
// that do not hold the lock (std::logic_error when the lock is free at that moment, a
// wake-up when someone else holds it); survivors also wait under spindle::wait_for.
// The predicates are always written as a named lambda moved into wait_for: GCC 12.2
// miscompiles `co_await cv.wait_for([key, ...] { ... })` with a non-trivially-copyable
// capture written as a temporary inside the co_await (the capture is copy-constructed
// into a separate temporary, the closure gets a bitwise copy, both are destroyed).

constexpr std::uint64_t kPredKeys = 5;
constexpr const char* kPredKeyPrefix = "wait_for-cancel counter #";

/// A key long enough to live on the heap (a bad copy of it is a double free).
std::string pred_key(std::uint64_t i) { return kPredKeyPrefix + std::to_string(i) + " (a std::string on the heap)"; }

struct PredState {
    explicit PredState(Lock& l) : lock(l), cv(l) {}
    Lock& lock;
    Condition cv;
    std::map<std::string, long> counters;  // under the lock
    bool closed = false;                   // under the lock
    std::atomic<int> inside{0};            // tasks that believe they hold the lock
    std::atomic<long> overlaps{0};         // two of them at once
    std::atomic<long> corrupt{0};          // a predicate found its captured key changed
    std::atomic<long> unlocked_after_wait{0};  // wait_for ended without the lock held
    std::atomic<long> waits_ok{0};
    std::atomic<long> timeouts{0};
    std::atomic<long> cancelled_in_wait{0};  // CancelledError out of wait_for itself
    std::atomic<long> stranger_notifies{0};  // notifies by non-holders ...
    std::atomic<long> stranger_ok{0};        // ... that went through (someone held the lock)
    std::atomic<long> stranger_refused{0};   // ... that threw std::logic_error (the lock was free)
};

void pred_enter(PredState& s) {
    if (s.inside.fetch_add(1) != 0) s.overlaps.fetch_add(1);
}
void pred_leave(PredState& s) { s.inside.fetch_sub(1); }

/// Waits `iters` times (forever: a victim, ended by a cancel) for a counter to grow.
Task<void> pred_waiter(PredState& s, std::uint64_t seed, long iters, bool with_timeout) {
    Rng rng(seed);
    for (long k = 0; k < iters; ++k) {
        co_await s.cv.acquire();
        pred_enter(s);
        if (s.closed) {
            pred_leave(s);
            s.cv.release();
            co_return;
        }
        std::string key = pred_key(rng.below(kPredKeys));
        const std::size_t len = key.size();
        const long target = s.counters[key] + 1 + static_cast<long>(rng.below(2));
        // Named first, then moved into wait_for (never a temporary inside co_await: GCC 12).
        // It runs with the lock held by this task only: nobody else is inside.
        auto pred = [&s, key, len, target] {
            if (key.size() != len || key.rfind(kPredKeyPrefix, 0) != 0) s.corrupt.fetch_add(1);
            if (s.inside.load() != 0) s.overlaps.fetch_add(1);
            return s.closed || s.counters[key] >= target;
        };
        pred_leave(s);
        std::exception_ptr cancelled;
        try {
            if (with_timeout && rng.below(2) == 0) {
                auto waiting = s.cv.wait_for(std::move(pred));
                (void)co_await spindle::wait_for(std::move(waiting), rng.us(300));
            } else {
                (void)co_await s.cv.wait_for(std::move(pred));
            }
            s.waits_ok.fetch_add(1);
        } catch (const spindle::TimeoutError&) {
            s.timeouts.fetch_add(1);
        } catch (const CancelledError&) {
            s.cancelled_in_wait.fetch_add(1);
            cancelled = std::current_exception();
        }
        // However wait_for ended (value, timeout, cancellation), the lock is ours again.
        pred_enter(s);
        if (!s.lock.locked()) s.unlocked_after_wait.fetch_add(1);
        pred_leave(s);
        s.cv.release();
        if (cancelled) std::rethrow_exception(cancelled);
        if (rng.below(3) == 0) co_await spindle::yield_now();
    }
}

/// Holds the lock (through the Condition), bumps a counter, notifies.
Task<void> pred_notifier(PredState& s, std::uint64_t seed, long n) {
    Rng rng(seed);
    for (long i = 0; i < n; ++i) {
        {
            auto g = co_await s.cv.scoped();
            pred_enter(s);
            s.counters[pred_key(rng.below(kPredKeys))] += 1;
            pred_leave(s);
            if (rng.below(6) == 0) s.cv.notify_all();
            else s.cv.notify(1 + rng.below(2));
        }
        if (rng.below(3) == 0) co_await spindle::yield_now();
    }
}

/// Takes the Condition's Lock directly (not through the Condition).
Task<void> pred_locker(PredState& s, std::uint64_t seed, long n) {
    Rng rng(seed);
    for (long i = 0; i < n; ++i) {
        co_await s.lock.acquire();
        pred_enter(s);
        if (rng.below(2) == 0) co_await spindle::yield_now();  // holding the lock (never cancelled)
        pred_leave(s);
        s.lock.release();
        co_await spindle::sleep(rng.us(20));
    }
}

/// A notify by a non-holder: a wake-up if someone holds the lock, else std::logic_error.
void pred_stranger_notify(PredState& s, Rng& rng) {
    s.stranger_notifies.fetch_add(1);
    try {
        if (rng.below(4) == 0) s.cv.notify_all();
        else s.cv.notify(1);
        s.stranger_ok.fetch_add(1);
    } catch (const std::logic_error&) {
        s.stranger_refused.fetch_add(1);
    }
}

Task<void> pred_stranger(PredState& s, std::uint64_t seed, long n) {
    Rng rng(seed);
    for (long i = 0; i < n; ++i) {
        pred_stranger_notify(s, rng);
        if (rng.below(2) == 0) co_await spindle::yield_now();
        else co_await spindle::sleep(rng.us(30));
    }
}

Task<void> cond_pred_cancel(Ctx& c) {
    Lock l;
    PredState s(l);
    Rng rng(c.seed);
    const int survivors_n = c.ni(24, 4);
    const int victims_n = c.ni(200, 6);
    const long survivor_iters = c.ni(60, 4);
    const long notes = c.ni(1000, 30);
    std::vector<JoinHandle<void>> survivors, victims, others;
    for (int i = 0; i < survivors_n; ++i)
        survivors.push_back(spindle::spawn(pred_waiter(s, rng.next(), survivor_iters, i % 2 == 1)));
    for (int i = 0; i < victims_n; ++i)  // until cancelled: a lost cancel() hangs the shape
        victims.push_back(spindle::spawn(pred_waiter(s, rng.next(), std::numeric_limits<long>::max(), false)));
    for (int i = 0; i < 3; ++i) others.push_back(spindle::spawn(pred_notifier(s, rng.next(), notes)));
    for (int i = 0; i < 2; ++i) others.push_back(spindle::spawn(pred_locker(s, rng.next(), notes / 2)));
    for (int i = 0; i < 2; ++i) others.push_back(spindle::spawn(pred_stranger(s, rng.next(), notes / 2)));
    keep(c, survivors);
    keep(c, victims);
    keep(c, others);
    std::thread stranger([&s, n = notes / 2, seed = rng.next()] {  // a plain thread, no lock
        Rng r(seed);
        for (long i = 0; i < n; ++i) {
            pred_stranger_notify(s, r);
            spin(r.below(200));
        }
    });
    struct JoinAtExit {  // also when an exception leaves the shape early
        std::thread& t;
        ~JoinAtExit() {
            if (t.joinable()) t.join();
        }
    } join_stranger{stranger};
    co_await spindle::sleep(rng.us(300));  // let most victims get inside wait_for
    const long cancelled = co_await cancel_and_join(victims, c.seed);
    (void)co_await join_all(others);
    stranger.join();  // a waking call from a plain thread must end before the runtime does
    {
        auto g = co_await s.cv.scoped();
        s.closed = true;
        s.cv.notify_all();
    }
    const long survivors_cancelled = co_await join_all(survivors);
    SOAK_CHECK(c, cancelled == victims_n, S(cancelled) + " of " + S(victims_n) + " victims ended cancelled");
    SOAK_CHECK(c, survivors_cancelled == 0, S(survivors_cancelled) + " survivors ended cancelled");
    SOAK_CHECK(c, s.corrupt.load() == 0, S(s.corrupt.load()) + " predicate calls saw their captured std::string changed");
    SOAK_CHECK(c, s.overlaps.load() == 0, S(s.overlaps.load()) + " times two tasks held the Condition's Lock at once");
    SOAK_CHECK(c, s.unlocked_after_wait.load() == 0,
               S(s.unlocked_after_wait.load()) + " wait_for calls ended without the lock held");
    SOAK_CHECK(c, s.stranger_ok.load() + s.stranger_refused.load() == s.stranger_notifies.load(),
               "non-holder notifies: " + S(s.stranger_ok.load()) + " ok + " + S(s.stranger_refused.load()) +
                   " refused of " + S(s.stranger_notifies.load()));
    SOAK_CHECK(c, !l.locked(), "the Condition's Lock left locked");
    SOAK_CHECK(c, s.cv.approx_waiters() == 0, S(static_cast<long long>(s.cv.approx_waiters())) + " waiters left on the Condition");
    SOAK_CHECK(c, l.approx_waiters() == 0, S(static_cast<long long>(l.approx_waiters())) + " waiters left on the Lock");
    const bool took = l.try_acquire();
    SOAK_CHECK(c, took, "the Condition's Lock is not takeable at the end");
    if (took) l.release();
    if (std::getenv("SOAK_PRED_STATS") != nullptr)
        std::fprintf(stderr, "predcancel: waits ok %ld, timeouts %ld, cancelled inside wait_for %ld of %d victims, "
                     "non-holder notifies %ld (%ld went through, %ld refused)\n",
                     s.waits_ok.load(), s.timeouts.load(), s.cancelled_in_wait.load(), victims_n,
                     s.stranger_notifies.load(), s.stranger_ok.load(), s.stranger_refused.load());
}

Task<void> cond_shutdown_producer(Ctx& c, Condition& cv, CondState& st, int p, std::uint64_t seed) {
    Alive alive(c);
    Rng rng(seed);
    for (int i = 0; i < st.per; ++i) {
        {
            auto g = co_await cv.scoped();
            st.items.emplace_back(p, i);
            st.produced.fetch_add(1);
            cv.notify(1);
        }
        co_await spindle::sleep(rng.us(50));
    }
}

Task<void> cond_shutdown_consumer(Ctx& c, Condition& cv, CondState& st) {
    Alive alive(c);
    co_await cond_consumer(cv, st);
}

constexpr int kCondProducers = 4;  // cond_shutdown

Task<void> cond_shutdown_body(Ctx& c, Condition& cv, CondState& st) {
    Rng rng(c.seed);
    for (int i = 0; i < c.ni(200, 8); ++i) c.handles.push_back(spindle::spawn(cond_shutdown_consumer(c, cv, st)));
    for (int p = 0; p < kCondProducers; ++p)
        c.handles.push_back(spindle::spawn(cond_shutdown_producer(c, cv, st, p, rng.next())));
    co_await spindle::sleep(rng.us(2000));
}

void cond_shutdown(Ctx& c) {
    Condition cv;
    CondState st(kCondProducers, c.ni(100000, 1000));
    with_runtime_shutdown(c, [&](Runtime&) { return cond_shutdown_body(c, cv, st); });
    SOAK_CHECK(c, !cv.locked(), "Condition's lock left locked by the shutdown");
    SOAK_CHECK(c, cv.approx_waiters() == 0, "waiters left");
    const bool took = cv.lock().try_acquire();
    SOAK_CHECK(c, took, "the Condition's lock is not takeable after the shutdown");
    if (took) cv.release();
    // every produced item was consumed once or is still in the deque, never both
    for (const auto& it : st.items) st.record(it);
    long bad = 0;
    for (int p = 0; p < kCondProducers; ++p)
        for (int i = 0; i < st.per; ++i) {
            const int s = st.seen[static_cast<std::size_t>(p) * static_cast<std::size_t>(st.per) + static_cast<std::size_t>(i)].load();
            if (s > 1) ++bad;
        }
    SOAK_CHECK(c, bad == 0, S(bad) + " items consumed twice");
    SOAK_CHECK(c, st.consumed.load() == st.produced.load(),
               S(st.consumed.load()) + " consumed or left != " + S(st.produced.load()) + " produced");
}

// ───────────────────────────── Barrier ─────────────────────────────

struct BarrierLedger {
    BarrierLedger(std::size_t n_parties, std::size_t rounds) : parties(n_parties), seen(n_parties * rounds) {}
    std::size_t parties;
    std::vector<std::atomic<int>> seen;
    std::atomic<long> out_of_range{0};
    void record(std::size_t round, std::size_t idx) {
        if (idx >= parties) out_of_range.fetch_add(1);
        else seen[round * parties + idx].fetch_add(1);
    }
    void check(Ctx& c, std::size_t rounds) const {
        long bad = 0;
        std::string first;
        for (std::size_t r = 0; r < rounds; ++r)
            for (std::size_t i = 0; i < parties; ++i)
                if (seen[r * parties + i].load() != 1) {
                    if (bad++ == 0)
                        first = "round " + S(static_cast<long long>(r)) + " index " + S(static_cast<long long>(i)) +
                                " handed out " + S(seen[r * parties + i].load()) + " times";
                }
        SOAK_CHECK(c, bad == 0, S(bad) + " (round, index) pairs not handed out exactly once; first: " + first);
        SOAK_CHECK(c, out_of_range.load() == 0, "index out of range");
    }
};

Task<void> barrier_party(Barrier& b, BarrierLedger& L, std::size_t first_round, std::size_t rounds, std::uint64_t seed,
                         std::vector<std::unique_ptr<Event>>* gates) {
    Rng rng(seed);
    for (std::size_t r = first_round; r < first_round + rounds; ++r) {
        if (gates != nullptr) (void)co_await (*gates)[r]->wait();
        if (rng.below(3) == 0) co_await spindle::yield_now();
        const std::size_t idx = co_await b.wait();
        L.record(r, idx);
    }
}

Task<void> barrier_rounds(Ctx& c, std::size_t parties, std::size_t rounds) {
    Barrier b(parties);
    BarrierLedger L(parties, rounds);
    std::vector<JoinHandle<void>> hs;
    for (std::size_t p = 0; p < parties; ++p)
        hs.push_back(spindle::spawn(barrier_party(b, L, 0, rounds, c.seed * 13 + p, nullptr)));
    keep(c, hs);
    (void)co_await join_all(hs);
    L.check(c, rounds);
    SOAK_CHECK(c, b.n_waiting() == 0, "n_waiting " + S(static_cast<long long>(b.n_waiting())));
    SOAK_CHECK(c, !b.broken(), "broken");
}

Task<void> barrier_smoke(Ctx& c) { co_await barrier_rounds(c, 3, 5); }
Task<void> barrier_stampede(Ctx& c) {
    co_await barrier_rounds(c, std::min<std::size_t>(c.n(1000, 16), 4000), 3);
    co_await barrier_rounds(c, 8, c.n(300, 10));
}

Task<void> barrier_victim(Barrier& b, int mode, std::uint64_t seed, std::atomic<long>& timeouts,
                          std::atomic<long>& passed) {
    Rng rng(seed);
    if (mode == 0) {
        try {
            (void)co_await spindle::wait_for(b.wait(), rng.us(200));
            passed.fetch_add(1);
        } catch (const spindle::TimeoutError&) {
            timeouts.fetch_add(1);
        }
    } else {
        (void)co_await b.wait();
        passed.fetch_add(1);
    }
}

Task<void> barrier_cancel(Ctx& c) {
    // parties-1 can never fill the barrier: victims (timed out, or cancelled by a task
    // or a plain thread) join the waiting parties and leave; then two more parties fill it.
    Rng rng(c.seed);
    const std::size_t parties = 3 + rng.below(4);
    const std::size_t rounds = c.n(120, 4);
    Barrier b(parties);
    BarrierLedger L(parties, rounds);
    Remote remote;
    std::atomic<long> timeouts{0}, passed{0};
    long cancelled = 0;
    for (std::size_t r = 0; r < rounds; ++r) {
        std::vector<JoinHandle<void>> hs;
        for (std::size_t p = 0; p + 2 < parties; ++p)
            hs.push_back(spindle::spawn(barrier_party(b, L, r, 1, rng.next(), nullptr)));
        while (b.n_waiting() < parties - 2) co_await spindle::yield_now();
        const int mode = static_cast<int>(rng.below(3));
        auto v = spindle::spawn(barrier_victim(b, mode, rng.next(), timeouts, passed));
        c.handles.push_back(v);
        if (mode == 1) {
            for (std::uint64_t y = rng.below(4); y > 0; --y) co_await spindle::yield_now();
            (void)v.cancel();
        } else if (mode == 2) {
            remote.post([v]() mutable { (void)v.cancel(); });
        }
        try {
            co_await v;
        } catch (const CancelledError&) {
            ++cancelled;
        }
        SOAK_CHECK(c, b.n_waiting() == parties - 2,
                   "round " + S(static_cast<long long>(r)) + ": n_waiting " + S(static_cast<long long>(b.n_waiting())) +
                       " after the victim left, expected " + S(static_cast<long long>(parties - 2)));
        SOAK_CHECK(c, !b.broken(), "a victim leaving broke the barrier");
        for (int k = 0; k < 2; ++k) hs.push_back(spindle::spawn(barrier_party(b, L, r, 1, rng.next(), nullptr)));
        keep(c, hs);
        const long pc = co_await join_all(hs);
        SOAK_CHECK(c, pc == 0, "a party ended cancelled");
        if (c.failed()) break;
    }
    SOAK_CHECK(c, passed.load() == 0, S(passed.load()) + " victims passed a barrier that could not fill");
    L.check(c, c.failed() ? 0 : rounds);
    SOAK_CHECK(c, b.n_waiting() == 0, "n_waiting at the end");
}

Task<void> barrier_xthread(Ctx& c) {
    // Every round is opened by an Event set from a plain thread.
    Rng rng(c.seed);
    const std::size_t parties = 2 + rng.below(30);
    const std::size_t rounds = c.n(200, 4);
    Barrier b(parties);
    BarrierLedger L(parties, rounds);
    std::vector<std::unique_ptr<Event>> gates;
    for (std::size_t r = 0; r < rounds; ++r) gates.push_back(std::make_unique<Event>());
    std::vector<JoinHandle<void>> hs;
    for (std::size_t p = 0; p < parties; ++p)
        hs.push_back(spindle::spawn(barrier_party(b, L, 0, rounds, rng.next(), &gates)));
    keep(c, hs);
    {
        Remote remote;
        for (std::size_t r = 0; r < rounds; ++r) remote.post([&gates, r] { gates[r]->set(); });
        (void)co_await join_all(hs);
    }  // ~Remote joins (all its jobs ran: every party passed every gate)
    L.check(c, rounds);
    SOAK_CHECK(c, b.n_waiting() == 0, "n_waiting at the end");
    SOAK_CHECK(c, !b.broken(), "broken");
}

Task<void> barrier_shutdown_party(Ctx& c, Barrier& b, std::uint64_t seed) {
    Alive alive(c);
    Rng rng(seed);
    for (;;) {
        const std::size_t idx = co_await b.wait();
        if (idx >= b.parties()) c.fail("barrier index out of range");
        if (rng.below(2) == 0) co_await spindle::sleep(rng.us(100));
    }
}

Task<void> barrier_shutdown_body(Ctx& c, Barrier& full, Barrier& never, std::size_t parties) {
    Rng rng(c.seed + 3);
    for (std::size_t p = 0; p < parties; ++p) {
        c.handles.push_back(spindle::spawn(barrier_shutdown_party(c, full, rng.next())));  // rounds trip
        c.handles.push_back(spindle::spawn(barrier_shutdown_party(c, never, rng.next())));  // parked
    }
    co_await spindle::sleep(rng.us(2000));
}

void barrier_shutdown(Ctx& c) {
    Rng rng(c.seed);
    const std::size_t parties = 2 + rng.below(8);
    Barrier full(parties), never(parties + 1);
    with_runtime_shutdown(c, [&](Runtime&) { return barrier_shutdown_body(c, full, never, parties); });
    SOAK_CHECK(c, full.n_waiting() == 0, "n_waiting " + S(static_cast<long long>(full.n_waiting())));
    SOAK_CHECK(c, never.n_waiting() == 0, "n_waiting " + S(static_cast<long long>(never.n_waiting())));
    SOAK_CHECK(c, !never.broken(), "cancelled waiters broke a filling barrier");
}

// ───────────────────────────── Queue / LifoQueue / PriorityQueue ─────────────────────────────

using Item = std::pair<int, int>;  // (producer, sequence)

struct QueueLedger {
    QueueLedger(int producers, int per_producer)
        : per(per_producer),
          seen(static_cast<std::size_t>(producers) * static_cast<std::size_t>(per_producer)),
          puts(static_cast<std::size_t>(producers)) {}
    int per;
    std::vector<std::atomic<int>> seen;  // deliveries per item
    std::vector<std::atomic<int>> puts;  // items each producer has put (returned from put)
    std::atomic<long> delivered{0};
    std::atomic<long> out_of_order{0};
    std::atomic<long> foreign{0};
    void record(Item it) {
        if (it.first < 0 || static_cast<std::size_t>(it.first) >= puts.size() || it.second < 0 || it.second >= per) {
            foreign.fetch_add(1);
            return;
        }
        seen[static_cast<std::size_t>(it.first) * static_cast<std::size_t>(per) + static_cast<std::size_t>(it.second)].fetch_add(1);
        delivered.fetch_add(1);
    }
    /// Every item put was delivered exactly once; no item that was not put (a
    /// cancelled put) was delivered.
    void check(Ctx& c) const {
        long bad = 0;
        std::string first;
        for (std::size_t p = 0; p < puts.size(); ++p)
            for (int i = 0; i < per; ++i) {
                const int want = i < puts[p].load() ? 1 : 0;
                const int got = seen[p * static_cast<std::size_t>(per) + static_cast<std::size_t>(i)].load();
                if (got != want && bad++ == 0)
                    first = "item (" + S(static_cast<long long>(p)) + "," + S(i) + ") delivered " + S(got) +
                            " times, expected " + S(want);
            }
        SOAK_CHECK(c, bad == 0, S(bad) + " items not delivered exactly once (ledger); first: " + first);
        SOAK_CHECK(c, foreign.load() == 0, "an item never put came out");
        SOAK_CHECK(c, out_of_order.load() == 0, S(out_of_order.load()) + " FIFO items out of producer order");
    }
};

template <class Q>
constexpr bool kFifo = std::is_same_v<Q, spindle::Queue<Item>>;

/// mode 0: put; 1: wait_for(put, 0..200us) retried (a timed-out put inserts nothing); 2: victim (cancelled)
template <class Q>
Task<void> q_producer(Q& q, QueueLedger& L, int p, int count, int mode, std::uint64_t seed) {
    Rng rng(seed);
    for (int i = 0; i < count; ++i) {
        if (mode == 1 && rng.below(2) == 0) {
            for (;;) {
                try {
                    co_await spindle::wait_for(q.put({p, i}), rng.us(200));
                    break;
                } catch (const spindle::TimeoutError&) {
                }
            }
        } else {
            co_await q.put({p, i});
        }
        L.puts[static_cast<std::size_t>(p)].fetch_add(1);  // put returned: it is in
    }
}

template <class Q>
Task<void> q_consumer(Q& q, QueueLedger& L, bool impatient, bool task_done, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<int> last(L.puts.size(), -1);
    for (;;) {
        Item it;
        try {
            if (impatient && rng.below(2) == 0) {
                it = co_await spindle::wait_for(q.get(), rng.us(200));
            } else {
                it = co_await q.get();
            }
        } catch (const spindle::TimeoutError&) {
            continue;
        } catch (const spindle::QueueShutDown&) {
            co_return;
        }
        L.record(it);
        if (task_done) q.task_done();
        if constexpr (kFifo<Q>) {
            if (it.first >= 0 && static_cast<std::size_t>(it.first) < last.size()) {
                if (it.second <= last[static_cast<std::size_t>(it.first)]) L.out_of_order.fetch_add(1);
                last[static_cast<std::size_t>(it.first)] = it.second;
            }
        }
    }
}

template <class Q>
Task<void> q_one_get(Q& q, QueueLedger& L) {
    try {
        Item it = co_await q.get();
        L.record(it);
    } catch (const spindle::QueueShutDown&) {
    }
}

template <class Q>
void q_end_checks(Ctx& c, Q& q, QueueLedger& L) {
    L.check(c);
    SOAK_CHECK(c, q.empty(), "queue not empty: qsize " + S(static_cast<long long>(q.qsize())));
    SOAK_CHECK(c, q.approx_getters() == 0, "getters left");
    SOAK_CHECK(c, q.approx_putters() == 0, "putters left");
}

template <class Q>
Task<void> q_run(Ctx& c, std::ptrdiff_t maxsize, int producers, int per, int consumers, bool impatient,
                 bool with_join) {
    Q q(maxsize);
    QueueLedger L(producers, per);
    std::vector<JoinHandle<void>> ps, cs;
    for (int i = 0; i < consumers; ++i)
        cs.push_back(spindle::spawn(q_consumer(q, L, impatient && i != 0, with_join, c.seed * 3 + i)));
    for (int p = 0; p < producers; ++p)
        ps.push_back(spindle::spawn(q_producer(q, L, p, per, impatient && p % 2 == 0 ? 1 : 0, c.seed * 5 + p)));
    keep(c, ps);
    keep(c, cs);
    (void)co_await join_all(ps);
    if (with_join) {
        const bool r = co_await q.join();  // every item got task_done()
        (void)r;
        SOAK_CHECK(c, L.delivered.load() == static_cast<long>(producers) * per, "join() returned before every task_done");
    }
    q.shutdown();
    (void)co_await join_all(cs);
    SOAK_CHECK(c, L.delivered.load() == static_cast<long>(producers) * per,
               S(L.delivered.load()) + " of " + S(static_cast<long>(producers) * per) + " delivered");
    q_end_checks(c, q, L);
}

template <class Q>
Task<void> q_smoke(Ctx& c) {
    co_await q_run<Q>(c, 4, 2, 100, 2, false, true);
    // nowait calls
    Q q(2);
    q.put_nowait({0, 1});
    q.put_nowait({0, 0});
    bool full = false;
    try {
        q.put_nowait({0, 2});
    } catch (const spindle::QueueFull&) {
        full = true;
    }
    SOAK_CHECK(c, full, "put_nowait on a full queue did not raise QueueFull");
    const Item a = q.get_nowait();
    const Item b = q.get_nowait();
    SOAK_CHECK(c, a != b, "the same item twice");
    bool empty = false;
    try {
        (void)q.get_nowait();
    } catch (const spindle::QueueEmpty&) {
        empty = true;
    }
    SOAK_CHECK(c, empty, "get_nowait on an empty queue did not raise QueueEmpty");
}

template <class Q>
Task<void> q_stampede(Ctx& c) {
    co_await q_run<Q>(c, 8, 8, c.ni(3000, 20), 8, false, false);
    // getters parked on an empty queue, then the puts; putters parked on a full one, then the gets
    const int n = c.ni(1500, 10);
    {
        Q q;
        QueueLedger L(1, n);
        std::vector<JoinHandle<void>> gs;
        for (int i = 0; i < n; ++i) gs.push_back(spindle::spawn(q_one_get(q, L)));
        while (q.approx_getters() < static_cast<std::uint64_t>(n)) co_await spindle::yield_now();
        for (int i = 0; i < n; ++i) {
            co_await q.put({0, i});
            L.puts[0].fetch_add(1);
        }
        keep(c, gs);
        (void)co_await join_all(gs);
        q_end_checks(c, q, L);
    }
    {
        Q q(1);
        QueueLedger L(n, 1);
        std::vector<JoinHandle<void>> ps;
        for (int i = 0; i < n; ++i) ps.push_back(spindle::spawn(q_producer(q, L, i, 1, 0, 0)));
        while (q.approx_putters() + q.qsize() < static_cast<std::uint64_t>(n)) co_await spindle::yield_now();
        for (int i = 0; i < n; ++i) {
            const Item it = co_await q.get();
            L.record(it);
        }
        keep(c, ps);
        (void)co_await join_all(ps);
        q_end_checks(c, q, L);
    }
}

template <class Q>
Task<void> q_cancel(Ctx& c) {
    constexpr int kProducers = 4;
    const int per = c.ni(3000, 20);
    const int victims_n = c.ni(600, 8);
    Q q(4);
    // Producers 0..3 normal/impatient; producers 4.. are victim putters, one item each.
    QueueLedger L(kProducers + victims_n, per);
    std::vector<JoinHandle<void>> ps, cs, victims;
    for (int i = 0; i < 4; ++i) cs.push_back(spindle::spawn(q_consumer(q, L, i != 0, false, c.seed * 3 + i)));
    for (int p = 0; p < kProducers; ++p)
        ps.push_back(spindle::spawn(q_producer(q, L, p, per, p % 2 == 0 ? 1 : 0, c.seed * 5 + p)));
    for (int v = 0; v < victims_n; ++v) {
        if (v % 2 == 0) victims.push_back(spindle::spawn(q_one_get(q, L)));
        else victims.push_back(spindle::spawn(q_producer(q, L, kProducers + v, 1, 0, 0)));
    }
    keep(c, ps);
    keep(c, cs);
    keep(c, victims);
    (void)co_await cancel_and_join(victims, c.seed);
    (void)co_await join_all(ps);
    q.shutdown();  // consumers drain what is left, then leave
    (void)co_await join_all(cs);
    q_end_checks(c, q, L);
}

constexpr int kTaskProducers = 3;  // q_xthread: producer tasks; the plain putter thread is the next id

template <class Q>
Task<void> q_xthread_body(Ctx& c, Q& q, QueueLedger& L, int per, std::thread& putter, std::thread& getter, Event& put_done, std::atomic<bool>& saw) {
    std::vector<JoinHandle<void>> ps, cs;
    for (int i = 0; i < 3; ++i) cs.push_back(spindle::spawn(q_consumer(q, L, i == 2, false, c.seed + i)));
    for (int p = 0; p < kTaskProducers; ++p)
        ps.push_back(spindle::spawn(q_producer(q, L, p, per, p == 0 ? 1 : 0, c.seed * 7 + p)));
    putter = std::thread([&q, &L, &put_done, per] {
        for (int i = 0; i < per;) {
            try {
                q.put_nowait({kTaskProducers, i});
                L.puts[kTaskProducers].fetch_add(1);
                ++i;
            } catch (const spindle::QueueFull&) {
                std::this_thread::yield();  // retry: the tasks are taking
            }
        }
        put_done.set();
    });
    getter = std::thread([&q, &L, &saw] {
        for (;;) {
            try {
                L.record(q.get_nowait());
            } catch (const spindle::QueueEmpty&) {
                std::this_thread::yield();
            } catch (const spindle::QueueShutDown&) {
                saw.store(true);
                return;
            }
        }
    });
    keep(c, ps);
    keep(c, cs);
    (void)co_await join_all(ps);
    (void)co_await put_done.wait();
    putter.join();  // set() was its last call
    q.shutdown();
    (void)co_await join_all(cs);
    getter.join();  // it leaves on QueueShutDown once the queue is shut down and empty
}

template <class Q>
void q_xthread(Ctx& c) {
    // A plain thread puts with put_nowait (retrying on QueueFull) and another takes with
    // get_nowait (retrying on QueueEmpty), racing tasks doing put/get on the same queue.
    const int per = c.ni(4000, 20);
    Q q(8);
    QueueLedger L(kTaskProducers + 1, per);
    std::atomic<bool> getter_saw_shutdown{false};
    std::thread putter, getter;
    Event put_done;  // set by the plain putter thread
    with_runtime(c, [&](Runtime&) { return q_xthread_body<Q>(c, q, L, per, putter, getter, put_done, getter_saw_shutdown); });
    if (putter.joinable()) putter.join();
    if (getter.joinable()) getter.join();
    SOAK_CHECK(c, getter_saw_shutdown.load(), "the plain getter thread did not see QueueShutDown");
    SOAK_CHECK(c, L.delivered.load() == static_cast<long>(kTaskProducers + 1) * per,
               S(L.delivered.load()) + " delivered");
    q_end_checks(c, q, L);
}

template <class Q>
Task<void> q_shutdown_producer(Ctx& c, Q& q, QueueLedger& L, int p, std::uint64_t seed) {
    Alive alive(c);
    Rng rng(seed);
    for (int i = 0; i < L.per; ++i) {
        if (rng.below(3) == 0) {
            try {
                co_await spindle::wait_for(q.put({p, i}), rng.us(200));
            } catch (const spindle::TimeoutError&) {
                --i;  // retry the same item: a timed-out put inserted nothing
                continue;
            }
        } else {
            co_await q.put({p, i});
        }
        L.puts[static_cast<std::size_t>(p)].fetch_add(1);
    }
    co_await spindle::sleep(1h);
}

template <class Q>
Task<void> q_shutdown_consumer(Ctx& c, Q& q, QueueLedger& L, std::uint64_t seed) {
    Alive alive(c);
    co_await q_consumer(q, L, true, false, seed);
}

constexpr int kQShutdownProducers = 6;

template <class Q>
Task<void> q_shutdown_body(Ctx& c, Q& q, QueueLedger& L) {
    Rng rng(c.seed);
    for (int i = 0; i < 3; ++i) c.handles.push_back(spindle::spawn(q_shutdown_consumer(c, q, L, rng.next())));
    for (int p = 0; p < kQShutdownProducers; ++p)
        c.handles.push_back(spindle::spawn(q_shutdown_producer(c, q, L, p, rng.next())));
    co_await spindle::sleep(rng.us(2000));
}

template <class Q>
void q_shutdown(Ctx& c) {
    Q q(static_cast<std::ptrdiff_t>(1 + c.seed % 8));
    QueueLedger L(kQShutdownProducers, c.ni(200000, 1000));
    with_runtime_shutdown(c, [&](Runtime&) { return q_shutdown_body<Q>(c, q, L); });
    // Drain what is left from this (plain) thread: then every item put was delivered once.
    while (!q.empty()) L.record(q.get_nowait());
    q_end_checks(c, q, L);
}

// ───────────────────────────── lifetime (every primitive) ─────────────────────────────
// Destroy-after-own-wait with several waiters (README: "destroying it as soon as your
// own wait returns is allowed"; tests/sync/lifetime_test.cpp has the fixed shapes):
// each round heap-allocates the primitive, spawns 2..5 waiters, hands it to a plain
// thread that makes the waking calls, and the last waiter whose wait returns deletes
// it. Under ASan a waking call that touches the primitive after it let the last
// waiter go is a heap-use-after-free; everywhere the counts below must add up.
// Bounded in time (kLifetimeBudget per primitive) as well as in rounds.

constexpr auto kLifetimeBudget = std::chrono::milliseconds(kSanitized ? 400 : 250);

template <class P>
struct LifeBox {
    template <class... A>
    explicit LifeBox(int n, A&&... a) : waiters(n), p(std::forward<A>(a)...) {}
    const int waiters;
    P p;
    std::atomic<int> ready{0};  // waiters about to wait (Condition: the waker needs all of them queued)
    std::atomic<int> left{0};   // waiters whose wait returned; the last deletes the box
};

template <class P, class Wait>
Task<void> life_waiter(LifeBox<P>* b, Wait* wait, std::atomic<long>* passed) {
    co_await (*wait)(*b);
    passed->fetch_add(1);
    // Read before the fetch_add: once it is done, the last waiter may delete the box.
    const int n = b->waiters;
    if (b->left.fetch_add(1) + 1 == n) delete b;  // the last one out
}

/// Rounds of `make(n)` / n waiters running `wait` / a thread running `wake` (none if
/// `wake` is null: the waiters release each other), until the rounds or the time run out.
template <class P, class Make, class Wait, class Wake>
void life_rounds(Ctx& c, Make make, Wait wait, Wake* wake) {
    Rng rng(c.seed);
    std::atomic<LifeBox<P>*> slot{nullptr};
    std::atomic<bool> stop{false};
    std::atomic<long> passed{0};
    long expected = 0;
    std::thread waker;
    if (wake != nullptr) {
        waker = std::thread([&] {
            while (!stop.load()) {
                if (LifeBox<P>* b = slot.exchange(nullptr)) (*wake)(*b);
            }
        });
    }
    const int rounds = c.ni(4000, 50);
    const auto until = std::chrono::steady_clock::now() + kLifetimeBudget;
    with_runtime(c, [&](Runtime&) -> Task<void> {
        return [](Rng& r, std::atomic<LifeBox<P>*>& sl, Make& mk, Wait& w, bool threaded, std::atomic<long>& pass,
                  long& exp, int n_rounds, std::chrono::steady_clock::time_point end, std::atomic<bool>& st,
                  std::thread& wk) -> Task<void> {
            for (int k = 0; k < n_rounds && (k == 0 || std::chrono::steady_clock::now() < end); ++k) {
                const int n = 2 + static_cast<int>(r.below(4));
                LifeBox<P>* b = mk(n);
                std::vector<JoinHandle<void>> hs;
                for (int i = 0; i < n; ++i) hs.push_back(spindle::spawn(life_waiter<P, Wait>(b, &w, &pass)));
                exp += n;
                if (threaded) sl.store(b);  // not touched here after this
                for (auto& h : hs) co_await h;
            }
            // The waker's last call may still be inside the scheduler (waking our last
            // waiter): join it while the Runtime lives (README: waking calls from plain
            // threads must have returned before the Runtime is destroyed).
            st.store(true);
            if (wk.joinable()) co_await spindle::to_thread([&wk] { wk.join(); });
        }(rng, slot, make, wait, wake != nullptr, passed, expected, rounds, until, stop, waker);
    });
    stop.store(true);
    if (waker.joinable()) waker.join();
    SOAK_CHECK(c, passed.load() == expected, S(passed.load()) + " of " + S(expected) + " waits returned");
}

void life_lock(Ctx& c) {
    auto wake = [](LifeBox<Lock>& b) { b.p.release(); };
    life_rounds<Lock>(
        c,
        [](int n) {
            auto* b = new LifeBox<Lock>(n);
            (void)b->p.try_acquire();  // fresh: always succeeds; the thread releases it
            return b;
        },
        [](LifeBox<Lock>& b) -> Task<void> {
            co_await b.p.acquire();
            b.p.release();  // hands over to the next waiter
        },
        &wake);
}

template <class Sem>
void life_sem(Ctx& c) {
    auto wake = [](LifeBox<Sem>& b) {
        const int n = b.waiters;  // read first: the last release may let the box be deleted
        for (int i = 0; i < n; ++i) b.p.release();
    };
    life_rounds<Sem>(
        c,
        [](int n) {
            auto* b = new LifeBox<Sem>(n, n);
            for (int i = 0; i < n; ++i) (void)b->p.try_acquire();  // all taken: the thread gives n back
            return b;
        },
        [](LifeBox<Sem>& b) -> Task<void> { co_await b.p.acquire(); }, &wake);
}

void life_event(Ctx& c) {
    auto wake = [](LifeBox<Event>& b) { b.p.set(); };
    life_rounds<Event>(
        c, [](int n) { return new LifeBox<Event>(n); },
        [](LifeBox<Event>& b) -> Task<void> { (void)co_await b.p.wait(); }, &wake);
}

void life_condition(Ctx& c) {
    auto wake = [](LifeBox<Condition>& b) {
        // Each waiter counted itself under the lock and queues before wait() releases it.
        while (b.ready.load() != b.waiters || !b.p.lock().try_acquire()) std::this_thread::yield();
        b.p.notify_all();
        b.p.release();
    };
    life_rounds<Condition>(
        c, [](int n) { return new LifeBox<Condition>(n); },
        [](LifeBox<Condition>& b) -> Task<void> {
            co_await b.p.acquire();
            b.ready.fetch_add(1);
            (void)co_await b.p.wait();
            b.p.release();
        },
        &wake);
}

void life_barrier(Ctx& c) {
    // The parties release each other; the last one to leave deletes.
    using Wake = void (*)(LifeBox<Barrier>&);
    life_rounds<Barrier>(
        c, [](int n) { return new LifeBox<Barrier>(n, static_cast<std::size_t>(n)); },
        [](LifeBox<Barrier>& b) -> Task<void> { (void)co_await b.p.wait(); }, static_cast<Wake*>(nullptr));
}

template <class Q>
void life_queue(Ctx& c) {
    auto wake = [](LifeBox<Q>& b) {
        const int n = b.waiters;  // read first: the last put may let the box be deleted
        for (int i = 0; i < n; ++i) b.p.put_nowait(Item{});
    };
    life_rounds<Q>(
        c, [](int n) { return new LifeBox<Q>(n); },
        [](LifeBox<Q>& b) -> Task<void> { (void)co_await b.p.get(); }, &wake);
}

// ───────────────────────────── registry and driver ─────────────────────────────

using ShapeFn = std::function<void(Ctx&)>;

struct Shape {
    const char* shape;
    const char* prim;
    ShapeFn fn;
};

/// A shape whose whole body is one task run by with_runtime.
template <Task<void> (*F)(Ctx&)>
ShapeFn in_task() {
    return [](Ctx& c) { with_runtime(c, [&c](Runtime&) { return F(c); }); };
}

std::vector<Shape> all_shapes() {
    using Q = spindle::Queue<Item>;
    using LQ = spindle::LifoQueue<Item>;
    using PQ = spindle::PriorityQueue<Item>;
    std::vector<Shape> v;
    v.push_back({"smoke", "runtime", in_task<rt_smoke>()});
    v.push_back({"stampede", "runtime", in_task<rt_stampede>()});
    v.push_back({"cancel", "runtime", in_task<rt_cancel>()});
    v.push_back({"xthread", "runtime",
                 [](Ctx& c) { with_runtime(c, [&c](Runtime& rt) { return rt_xthread(c, rt); }); }});
    v.push_back({"shutdown", "runtime",
                 [](Ctx& c) { with_runtime_shutdown(c, [&c](Runtime&) { return rt_shutdown(c); }); }});
    v.push_back({"joins", "runtime", in_task<rt_joins>()});

    v.push_back({"smoke", "lock", in_task<lock_smoke>()});
    v.push_back({"stampede", "lock", in_task<lock_stampede>()});
    v.push_back({"cancel", "lock", in_task<lock_cancel>()});
    v.push_back({"xthread", "lock", lock_xthread});
    v.push_back({"shutdown", "lock", lock_shutdown});

    v.push_back({"smoke", "semaphore", in_task<sem_smoke<Semaphore>>()});
    v.push_back({"stampede", "semaphore", in_task<sem_stampede<Semaphore>>()});
    v.push_back({"cancel", "semaphore", in_task<sem_cancel<Semaphore>>()});
    v.push_back({"xthread", "semaphore", sem_xthread<Semaphore>});
    v.push_back({"shutdown", "semaphore", sem_shutdown<Semaphore>});

    v.push_back({"smoke", "bounded_semaphore", in_task<sem_smoke<BoundedSemaphore>>()});
    v.push_back({"stampede", "bounded_semaphore", in_task<sem_stampede<BoundedSemaphore>>()});
    v.push_back({"cancel", "bounded_semaphore", in_task<sem_cancel<BoundedSemaphore>>()});
    v.push_back({"xthread", "bounded_semaphore", sem_xthread<BoundedSemaphore>});
    v.push_back({"shutdown", "bounded_semaphore", sem_shutdown<BoundedSemaphore>});

    v.push_back({"smoke", "event", in_task<ev_smoke>()});
    v.push_back({"stampede", "event", in_task<ev_stampede>()});
    v.push_back({"cancel", "event", in_task<ev_cancel>()});
    v.push_back({"xthread", "event", in_task<ev_xthread>()});
    v.push_back({"shutdown", "event", ev_shutdown});

    v.push_back({"smoke", "condition", in_task<cond_smoke>()});
    v.push_back({"stampede", "condition", in_task<cond_stampede>()});
    v.push_back({"cancel", "condition", in_task<cond_cancel>()});
    v.push_back({"xthread", "condition", cond_xthread});
    v.push_back({"shutdown", "condition", cond_shutdown});
    v.push_back({"predcancel", "condition", in_task<cond_pred_cancel>()});

    v.push_back({"smoke", "barrier", in_task<barrier_smoke>()});
    v.push_back({"stampede", "barrier", in_task<barrier_stampede>()});
    v.push_back({"cancel", "barrier", in_task<barrier_cancel>()});
    v.push_back({"xthread", "barrier", in_task<barrier_xthread>()});
    v.push_back({"shutdown", "barrier", barrier_shutdown});

    v.push_back({"smoke", "queue", in_task<q_smoke<Q>>()});
    v.push_back({"stampede", "queue", in_task<q_stampede<Q>>()});
    v.push_back({"cancel", "queue", in_task<q_cancel<Q>>()});
    v.push_back({"xthread", "queue", q_xthread<Q>});
    v.push_back({"shutdown", "queue", q_shutdown<Q>});

    v.push_back({"smoke", "lifo_queue", in_task<q_smoke<LQ>>()});
    v.push_back({"stampede", "lifo_queue", in_task<q_stampede<LQ>>()});
    v.push_back({"cancel", "lifo_queue", in_task<q_cancel<LQ>>()});
    v.push_back({"xthread", "lifo_queue", q_xthread<LQ>});
    v.push_back({"shutdown", "lifo_queue", q_shutdown<LQ>});

    v.push_back({"smoke", "priority_queue", in_task<q_smoke<PQ>>()});
    v.push_back({"stampede", "priority_queue", in_task<q_stampede<PQ>>()});
    v.push_back({"cancel", "priority_queue", in_task<q_cancel<PQ>>()});
    v.push_back({"xthread", "priority_queue", q_xthread<PQ>});
    v.push_back({"shutdown", "priority_queue", q_shutdown<PQ>});

    v.push_back({"lifetime", "lock", life_lock});
    v.push_back({"lifetime", "semaphore", life_sem<Semaphore>});
    v.push_back({"lifetime", "bounded_semaphore", life_sem<BoundedSemaphore>});
    v.push_back({"lifetime", "event", life_event});
    v.push_back({"lifetime", "condition", life_condition});
    v.push_back({"lifetime", "barrier", life_barrier});
    v.push_back({"lifetime", "queue", life_queue<Q>});
    v.push_back({"lifetime", "lifo_queue", life_queue<LQ>});
    v.push_back({"lifetime", "priority_queue", life_queue<PQ>});
    return v;
}

struct Options {
    double seconds = 0;  // 0: one round
    std::string only_shape;
    std::string only_prim;
    std::uint64_t seed = 1;
    double scale = SPINDLE_STRESS_SCALE;
    bool scale_given = false;
    std::size_t workers = 0;  // 0: 2..4 by seed
    long limit_s = 120;
    // Differential rounds (tests/diff): -1 auto (on when everything is found and no
    // --only was given), 0 off (--no-diff), 1 on (--diff: an error if not found).
    int diff = -1;
    std::string diff_bin;                         // default: spindle_diff_interp next to this binary
    std::string diff_script = SPINDLE_DIFF_SCRIPT;  // tests/diff/gen_and_run.py of the source tree
    std::string python = SPINDLE_DIFF_PYTHON;
    long diff_count = kSanitized ? 25 : 100;      // seeds a round
};

[[noreturn]] void usage(const char* msg) {
    std::fprintf(stderr,
                 "spindle_soak: %s\n"
                 "usage: spindle_soak [--minutes M | --seconds S] [--only shape[,primitive]] [--seed N]\n"
                 "                    [--scale K] [--workers N] [--limit SECONDS] [--wait-for-victims] [--list]\n"
                 "                    [--diff | --no-diff] [--diff-count N] [--diff-bin PATH] [--diff-script PATH]\n"
                 "                    [--python PATH]\n"
                 "shapes: smoke stampede cancel xthread shutdown lifetime (predcancel: condition only; joins: runtime only); primitives:\n"
                 "runtime lock semaphore "
                 "bounded_semaphore event condition barrier queue lifo_queue priority_queue ('all' or empty: all)\n",
                 msg);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    bool listed = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value for " + a).c_str());
            return argv[++i];
        };
        try {
            if (a == "--minutes") o.seconds = std::stod(value()) * 60;
            else if (a == "--seconds") o.seconds = std::stod(value());
            else if (a == "--seed") o.seed = std::stoull(value());
            else if (a == "--scale") {
                o.scale = std::stod(value());
                o.scale_given = true;
            }
            else if (a == "--workers") o.workers = std::stoul(value());
            else if (a == "--limit") o.limit_s = std::stol(value());
            else if (a == "--diff") o.diff = 1;
            else if (a == "--no-diff") o.diff = 0;
            else if (a == "--diff-bin") o.diff_bin = value();
            else if (a == "--diff-script") o.diff_script = value();
            else if (a == "--diff-count") o.diff_count = std::stol(value());
            else if (a == "--python") o.python = value();
            else if (a == "--wait-for-victims") g_victims_wait_for = true;
            else if (a == "--no-wait-for-victims") g_victims_wait_for = false;
            else if (a == "--only") {
                const std::string v = value();
                const auto comma = v.find(',');
                o.only_shape = v.substr(0, comma);
                o.only_prim = comma == std::string::npos ? std::string() : v.substr(comma + 1);
                if (o.only_shape == "all" || o.only_shape == "*") o.only_shape.clear();
                if (o.only_prim == "all" || o.only_prim == "*") o.only_prim.clear();
            } else if (a == "--list") {
                for (const auto& s : all_shapes()) std::printf("%s,%s\n", s.shape, s.prim);
                listed = true;
            } else if (a == "--help" || a == "-h") {
                usage("named stress shapes and soak mode");
            } else {
                usage(("unknown option " + a).c_str());
            }
        } catch (const std::logic_error&) {
            usage(("bad value for " + a).c_str());
        }
    }
    if (listed) std::exit(0);
    if (o.scale <= 0 || o.seconds < 0 || o.limit_s <= 0 || o.workers > 1024 || o.diff_count <= 0)
        usage("bad option value");
    return o;
}

// ───────────── differential rounds: tests/diff/gen_and_run.py check ─────────────

std::string shell_quote(const std::string& v) {
    std::string q = "'";
    for (const char ch : v) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return q + "'";
}

/// The folder of this executable ("" if unknown).
std::string self_dir() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : exe.parent_path().string();
}

struct Captured {
    int rc = -1;  // exit status; 128 + signal when killed
    std::string out;  // stdout and stderr
};

Captured run_capture(const std::string& cmd) {
    Captured r;
    FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
    if (f == nullptr) {
        r.out = "popen failed: " + cmd;
        return r;
    }
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) r.out.append(buf, n);
    const int st = ::pclose(f);
    r.rc = st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return r;
}

/// The line of `out` that starts with `prefix`, without the prefix ("" if none).
std::string line_after(const std::string& out, const std::string& prefix) {
    for (std::size_t at = 0; at < out.size();) {
        const std::size_t end = std::min(out.find('\n', at), out.size());
        if (out.compare(at, prefix.size(), prefix) == 0) return out.substr(at + prefix.size(), end - at - prefix.size());
        at = end + 1;
    }
    return {};
}

/// Between the rounds of shapes: gen_and_run.py check over a fresh seed range derived
/// from the round's seed (the regressions too, in round 0), stopping at the first
/// divergence. Off when python3 (3.11), the script or the interpreter is missing.
class DiffRounds {
public:
    /// Decides on/off; prints why when it is off by default in a soak.
    explicit DiffRounds(Options& o) : o_(o) {
        if (o.diff == 0) return;
        if (o.diff_bin.empty()) o.diff_bin = self_dir() + "/spindle_diff_interp";
        std::string why;
        if (o.diff_script.empty() || ::access(o.diff_script.c_str(), R_OK) != 0)
            why = "no gen_and_run.py at '" + o.diff_script + "' (--diff-script)";
        else if (::access(o.diff_bin.c_str(), X_OK) != 0)
            why = "no spindle_diff_interp at '" + o.diff_bin + "' (build it, or --diff-bin)";
        else if (std::system((shell_quote(o.python) +
                              " -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1")
                                 .c_str()) != 0)
            why = "'" + o.python + "' is not CPython 3.11 (--python)";
        const bool only = !o.only_shape.empty() || !o.only_prim.empty();
        if (!why.empty()) {
            if (o.diff == 1) usage(("--diff: " + why).c_str());
            if (!only) std::printf("spindle_soak: differential rounds off: %s\n", why.c_str());
            return;
        }
        on_ = o.diff == 1 || !only;
        if (!on_) return;
        // The ctest long-mode knob would multiply every round's seeds: rounds set their own count.
        ::unsetenv("SPINDLE_DIFF_COUNT");
        std::printf("spindle_soak: differential rounds on: %ld seeds a round (%s check --bin %s)\n", o.diff_count,
                    o.diff_script.c_str(), o.diff_bin.c_str());
    }
    [[nodiscard]] bool on() const { return on_; }

    /// Runs the round's seeds; false (after printing the divergence and how to
    /// reproduce it) on a divergence or an error.
    bool run(std::uint64_t round, std::uint64_t seed, Watchdog& dog, std::chrono::seconds limit, double& took) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto n = static_cast<std::uint64_t>(o_.diff_count);
        const std::uint64_t start = kSeedBase + seed * n;
        const std::string script = shell_quote(o_.python) + " " + shell_quote(o_.diff_script);
        const std::string bin = " --bin " + shell_quote(o_.diff_bin);
        const std::string cmd = script + " check --count " + std::to_string(n) + " --start " + std::to_string(start) +
                                " --fail-fast" + bin + (round == 0 ? "" : " --no-regressions");
        const std::string range = "seeds " + std::to_string(start) + ".." + std::to_string(start + n - 1);
        dog.arm("the differential check of round " + std::to_string(round) + " (" + range + ")",
                limit + std::chrono::seconds(o_.diff_count));
        dog.set_phase("gen_and_run.py check");
        const Captured r = run_capture(cmd);
        dog.disarm();
        took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const std::string summary = line_after(r.out, "diff.asyncio: ");
        if (r.rc == 0 && !summary.empty()) {
            std::printf("soak round %llu diff: %s%s: %s (%.2fs)\n", static_cast<unsigned long long>(round),
                        range.c_str(), round == 0 ? " + regressions.txt" : "", summary.c_str(), took);
            std::fflush(stdout);
            return true;
        }
        std::fflush(stdout);
        std::fprintf(stderr, "%s\n*** SOAK FAILURE in the differential check of round %llu (%s): exit %d\n",
                     r.out.c_str(), static_cast<unsigned long long>(round), range.c_str(), r.rc);
        std::string first = line_after(r.out, "diverging: ");  // "seed N" or a program file
        if (first.rfind("seed ", 0) == 0) first = first.substr(5);
        first = first.substr(0, first.find(' '));
        if (!first.empty()) {
            std::fprintf(stderr, "*** reproduce: %s check %s%s\n*** shrink:    %s minimize %s%s\n", script.c_str(),
                         shell_quote(first).c_str(), bin.c_str(), script.c_str(), shell_quote(first).c_str(),
                         bin.c_str());
        }
        std::fprintf(stderr, "*** the whole round: %s\n", cmd.c_str());
        return false;
    }

private:
    static constexpr std::uint64_t kSeedBase = 10000000;  // above the seeds ctest and people use
    Options& o_;
    bool on_ = false;
};

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    if (!o.scale_given) {  // the environment overrides the build's SPINDLE_STRESS_SCALE
        if (const char* e = std::getenv("SPINDLE_STRESS_SCALE"); e != nullptr && *e != '\0') o.scale = std::atof(e);
        if (o.scale <= 0) o.scale = 1;
    }
    std::vector<Shape> shapes;
    for (auto& s : all_shapes())
        if ((o.only_shape.empty() || o.only_shape == s.shape) && (o.only_prim.empty() || o.only_prim == s.prim))
            shapes.push_back(std::move(s));
    if (shapes.empty()) usage("--only matches no shape (see --list)");
    Watchdog dog;
    g_dog = &dog;
    DiffRounds diff(o);
    const auto limit = std::chrono::seconds(o.limit_s * (kSanitized ? 4 : 1));
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    long total = 0;
    for (std::uint64_t round = 0;; ++round) {
        const std::uint64_t seed = o.seed + round;
        const std::size_t workers = o.workers != 0 ? o.workers : 2 + static_cast<std::size_t>(seed % 3);
        const double r0 = elapsed();
        double slowest = 0;
        std::string slowest_name;
        for (const auto& s : shapes) {
            const double s0 = elapsed();
            Ctx c;
            c.shape = s.shape;
            c.prim = s.prim;
            c.seed = seed;
            c.scale = o.scale;
            c.workers = workers;
            const std::string label = std::string(s.shape) + "," + s.prim + " (seed " + std::to_string(seed) +
                                      ", workers " + std::to_string(workers) + ", scale " + std::to_string(o.scale) + ")";
            dog.arm(label, limit);
            dog.set_phase("setting up");
            try {
                s.fn(c);
            } catch (const CancelledError&) {
                c.fail("CancelledError escaped the shape");
            } catch (const std::exception& e) {
                c.fail(std::string("exception escaped the shape: ") + e.what());
            }
            dog.disarm();
            ++total;
            if (elapsed() - s0 > slowest) {
                slowest = elapsed() - s0;
                slowest_name = std::string(s.shape) + "," + s.prim;
            }
            if (c.failed()) {
                std::fprintf(stderr, "\n*** SOAK FAILURE in shape %s\n", label.c_str());
                for (const auto& v : c.violations) std::fprintf(stderr, "*** %s\n", v.c_str());
                std::fprintf(stderr,
                             "*** reproduce: spindle_soak --only %s,%s --seed %llu --workers %zu --scale %g\n"
                             "*** (%ld shapes passed before it, %.1fs)\n",
                             s.shape, s.prim, static_cast<unsigned long long>(seed), workers, o.scale, total - 1,
                             elapsed());
                return 1;
            }
        }
        std::printf("soak round %llu: seed %llu, workers %zu, %zu shapes ok in %.2fs (slowest %s %.2fs; total %ld shapes, "
                    "%.1fs of %.0fs)\n",
                    static_cast<unsigned long long>(round), static_cast<unsigned long long>(seed), workers,
                    shapes.size(), elapsed() - r0, slowest_name.c_str(), slowest, total, elapsed(), o.seconds);
        std::fflush(stdout);
        double diff_took = 0;
        if (diff.on() && !diff.run(round, seed, dog, limit, diff_took)) return 1;
        if (elapsed() >= o.seconds) break;
    }
    std::printf("spindle_soak: OK, %ld shapes, no violation\n", total);
    return 0;
}
