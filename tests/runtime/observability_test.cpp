// Observability (DESIGN.md): task names, Runtime::dump(), deadlock detection,
// metrics, debug mode.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <spindle/spindle.hpp>

#include "co_test.hpp"

using namespace std::chrono_literals;
using spindle::Barrier;
using spindle::DeadlockError;
using spindle::Event;
using spindle::JoinHandle;
using spindle::Lock;
using spindle::Runtime;
using spindle::RuntimeOptions;
using spindle::Semaphore;
using spindle::Task;

namespace {

std::string addr(const void* p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", p);
    return buf;
}

/// The dump line of the task named `name` ("" when absent).
std::string line_of(const std::string& dump, const std::string& name) {
    const std::string key = "\"" + name + "\":";
    const auto at = dump.find(key);
    if (at == std::string::npos) return {};
    const auto begin = dump.rfind('\n', at);
    const auto end = dump.find('\n', at);
    return dump.substr(begin == std::string::npos ? 0 : begin + 1,
                       (end == std::string::npos ? dump.size() : end) - (begin == std::string::npos ? 0 : begin + 1));
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

RuntimeOptions virtual_deadlock(std::size_t workers = 1) {
    return RuntimeOptions{.workers = workers, .virtual_time = true, .deadlock_timeout = 1000};
}

Task<void> hold_forever(Lock& l, Event& holding) {
    auto guard = co_await l.scoped();
    holding.set();
    Event never;
    co_await never.wait();
}

Task<void> acquire_and_release(Lock& l) {
    co_await l.acquire();
    l.release();
}

Task<void> wait_event(Event& e) { co_await e.wait(); }

Task<void> sleep_for(std::chrono::milliseconds d) { co_await spindle::sleep(d); }

Task<int> returns_one() { co_return 1; }

}  // namespace

// ───────────────────────────── names ─────────────────────────────

TEST(Names, SpawnedNameAndGeneratedName) {
    struct Local {
        static Task<std::string> name() { co_return spindle::current_task_name(); }
        static Task<void> body() {
            auto named = spindle::spawn(name(), "fetcher");
            auto unnamed = spindle::spawn(name());
            const std::string a = co_await named;
            const std::string b = co_await unnamed;
            EXPECT_EQ(a, "fetcher");
            EXPECT_EQ(named.name(), "fetcher");
            EXPECT_EQ(b, "task-" + std::to_string(unnamed.id()));
            EXPECT_EQ(unnamed.name(), b);
            EXPECT_EQ(spindle::current_task_name(), "main");
        }
    };
    spindle::run(Local::body(), spindle::testing::one_worker_virtual());
    Runtime rt(RuntimeOptions{.workers = 1});
    auto h = rt.spawn(Local::name(), "from-outside");
    EXPECT_EQ(h.name(), "from-outside");
    EXPECT_EQ(rt.block_on([](JoinHandle<std::string> j) -> Task<std::string> { co_return co_await j; }(h)),
              "from-outside");
}

// ───────────────────────────── dump ─────────────────────────────

TEST(Dump, EveryStateAndPrimitive) {
    Runtime rt(spindle::testing::one_worker_virtual());
    struct Local {
        static Task<void> body(Runtime& r) {
            Lock lock;
            Event holding;
            Event never;
            Semaphore sem(0);
            Barrier barrier(3);
            auto holder = spindle::spawn(hold_forever(lock, holding), "holder");
            co_await holding.wait();
            auto waiter = spindle::spawn(acquire_and_release(lock), "lock-waiter");
            auto ev = spindle::spawn(wait_event(never), "event-waiter");
            auto sleeper = spindle::spawn(sleep_for(1500ms), "sleeper");
            auto sem_waiter = spindle::spawn([](Semaphore& s) -> Task<void> { co_await s.acquire(); }(sem), "sem");
            auto b1 = spindle::spawn([](Barrier& b) -> Task<void> { (void)co_await b.wait(); }(barrier), "party-1");
            auto b2 = spindle::spawn([](Barrier& b) -> Task<void> { (void)co_await b.wait(); }(barrier), "party-2");
            auto joiner = spindle::spawn([](JoinHandle<void> h) -> Task<void> { co_await h; }(ev), "joiner");
            auto ready = spindle::spawn(returns_one(), "not-yet-run");
            // Let everything park (one worker: they run in order before we resume).
            co_await spindle::yield_now();
            co_await spindle::yield_now();
            auto readier = spindle::spawn(returns_one(), "queued");
            const std::string d = r.dump();
            SCOPED_TRACE(d);
            EXPECT_TRUE(contains(line_of(d, "main"), "running"));
            EXPECT_TRUE(contains(line_of(d, "queued"), "ready"));
            EXPECT_TRUE(contains(line_of(d, "holder"), "parked on Event")) << "holder waits on its `never`";
            EXPECT_EQ(line_of(d, "lock-waiter").substr(line_of(d, "lock-waiter").find(':')),
                      ": parked on Lock " + addr(&lock) + " (1 waiter)");
            EXPECT_TRUE(contains(line_of(d, "event-waiter"), "parked on Event " + addr(&never) + " (1 waiter)"));
            EXPECT_TRUE(contains(line_of(d, "sleeper"), "sleeping until 1.500s"));
            EXPECT_TRUE(contains(line_of(d, "sem"), "parked on Semaphore " + addr(&sem) + " (1 waiter)"));
            EXPECT_TRUE(contains(line_of(d, "party-1"), "parked on Barrier " + addr(&barrier) + " (2 waiters)"));
            EXPECT_TRUE(contains(line_of(d, "party-2"), "parked on Barrier " + addr(&barrier) + " (2 waiters)"));
            EXPECT_TRUE(contains(line_of(d, "joiner"),
                                 "parked on JoinHandle of task " + std::to_string(ev.id()) + " \"event-waiter\""));
            EXPECT_TRUE(line_of(d, "not-yet-run").empty()) << "completed tasks are not listed";
            EXPECT_TRUE(contains(d, "task " + std::to_string(holder.id()) + " \"holder\": "));
            // Clean up, so the primitives die without waiters.
            never.set();
            sem.release();
            (void)co_await barrier.abort();
            holder.cancel();
            co_await joiner;
            co_await waiter;
            co_await sem_waiter;
            try {
                co_await b1;
            } catch (const spindle::BrokenBarrierError&) {
            }
            try {
                co_await b2;
            } catch (const spindle::BrokenBarrierError&) {
            }
            sleeper.cancel();
            (void)co_await readier;
            (void)co_await ready;
        }
    };
    rt.block_on(Local::body(rt));
}

TEST(Dump, UnnamedTasksAreListedOnceTheyHaveParked) {
    // The registry lists an unnamed task lazily, when its first slice ends without
    // completing ("Registry" in runtime/src/registry.cpp): before that, dump() counts
    // it on one line; after, it has its own line like any parked task.
    Runtime rt(spindle::testing::one_worker_virtual());
    rt.block_on([](Runtime& r) -> Task<void> {
        spindle::Event go;
        std::vector<JoinHandle<void>> hs;
        for (int i = 0; i < 3; ++i)
            hs.push_back(spindle::spawn([](spindle::Event& e) -> Task<void> { co_await e.wait(); }(go)));
        const std::string before = r.dump();
        EXPECT_TRUE(contains(before, "(+3 unnamed tasks not listed: queued before its first run, or running it)"))
            << before;
        EXPECT_TRUE(contains(line_of(before, "main"), "running")) << before;
        co_await spindle::yield_now();  // one worker: the three run and park before we resume
        const std::string after = r.dump();
        EXPECT_FALSE(contains(after, "not listed")) << after;
        for (auto& h : hs)
            EXPECT_TRUE(contains(line_of(after, "task-" + std::to_string(h.id())), "parked on Event " + addr(&go)))
                << after;
        go.set();
        for (auto& h : hs) co_await h;
        EXPECT_EQ(r.dump().find("task-"), std::string::npos) << "completed tasks leave the registry";
    }(rt));
}

TEST(Dump, EmptyAsSoonAsBlockOnReturns) {
    // block_on returns when the main task is complete, while its worker may still be
    // finishing it (releasing the frame). The dump must not count it any more: the
    // count of unlisted tasks is taken before joiners are told, not after the frame
    // is released (the soak caught "+1 unnamed task not listed" here).
    // More workers than cores: a worker preempted inside that window is what widens it.
    Runtime rt(RuntimeOptions{.workers = 4});
    for (int round = 0; round < 2000; ++round) {
        rt.block_on([]() -> Task<void> {
            auto a = spindle::spawn(returns_one());
            auto b = spindle::spawn(returns_one());
            (void)co_await a;
            (void)co_await b;
        }());
        const std::string d = rt.dump();
        ASSERT_TRUE(d.empty()) << "round " << round << ":\n" << d;
    }
}

// A wait_queue.hpp owner that does not override describe_wait (like a primitive
// written before dump existed) still shows up, generically.
namespace {
class Bare final : private spindle::detail::WaitQueueOwner {
public:
    Bare() : q_(this) {}
    struct Awaiter {
        Bare* b;
        spindle::detail::SyncWait w;
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) {
            w.self = &spindle::detail::waiting_task("Bare");
            w.pos = b->q_.enqueue();
            return w.park(b->q_, h);
        }
        void await_resume() {
            if (w.suspended) (void)w.finish(b->q_);
            else b->q_.remove(w.pos);
        }
    };
    Awaiter wait() { return Awaiter{this, {}}; }
    void wake() { (void)q_.grant_first(1); }

private:
    void on_waiter_cancelled() noexcept override {}
    spindle::detail::WaitQueue q_;
};
}  // namespace

TEST(Dump, OwnerWithoutDescriptionUsesTheDefault) {
    Runtime rt(spindle::testing::one_worker_virtual());
    struct Local {
        static Task<void> body(Runtime& r) {
            Bare bare;
            auto h = spindle::spawn([](Bare& b) -> Task<void> { co_await b.wait(); }(bare), "bare");
            co_await spindle::yield_now();
            const std::string d = r.dump();
            EXPECT_TRUE(contains(line_of(d, "bare"), "parked on WaitQueue 0x")) << d;
            EXPECT_TRUE(contains(line_of(d, "bare"), "(1 waiter)")) << d;
            bare.wake();
            co_await h;
        }
    };
    rt.block_on(Local::body(rt));
}

// dump() from a plain thread while tasks create, wait on and destroy primitives as
// fast as they can: no crash, no use-after-free (ASan), no race (TSan).
TEST(Dump, ConcurrentWithShortLivedPrimitives) {
    Runtime rt(RuntimeOptions{.workers = 2});
    std::atomic<bool> stop{false};
    std::atomic<int> dumps{0};
    std::thread dumper([&] {
        while (!stop.load()) {
            const std::string d = rt.dump();
            if (!d.empty()) dumps.fetch_add(1);  // empty before block_on's task starts
        }
    });
    struct Local {
        static Task<void> round(int i) {
            Event e;
            Lock l;
            Semaphore s(0);
            auto w1 = spindle::spawn(wait_event(e), "w1");
            auto w2 = spindle::spawn(acquire_and_release(l), "w2");
            auto w3 = spindle::spawn([](Semaphore& sem) -> Task<void> { co_await sem.acquire(); }(s), "w3");
            co_await l.acquire();
            if (i % 2 == 0) co_await spindle::yield_now();
            e.set();
            l.release();
            s.release();
            co_await w1;
            co_await w2;
            co_await w3;
        }  // the primitives die here, right after their waiters left
        static Task<void> body(std::atomic<int>& dumps) {
            int i = 0;
            // At least 300 rounds, and at least a few dumps interleaved with them.
            for (; i < 300 || (dumps.load() < 5 && i < 1'000'000); ++i) co_await round(i);
        }
    };
    rt.block_on(Local::body(dumps));
    stop.store(true);
    dumper.join();
    EXPECT_GE(dumps.load(), 5);
}

// ───────────────────────────── deadlock ─────────────────────────────

namespace {
Task<void> lock_order(Lock& first, Lock& second, Event& have, Event& other_has) {
    auto g1 = co_await first.scoped();
    have.set();
    co_await other_has.wait();
    auto g2 = co_await second.scoped();  // never
}
}  // namespace

struct LockOrder {
    Lock a, b;
    Event a_held, b_held;
    static Task<void> main(LockOrder& s) {
        auto t1 = spindle::spawn(lock_order(s.a, s.b, s.a_held, s.b_held), "philosopher-1");
        auto t2 = spindle::spawn(lock_order(s.b, s.a, s.b_held, s.a_held), "philosopher-2");
        co_await t1;
        co_await t2;
    }
};

void expect_lock_order_report(const std::string& what, const LockOrder& s) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(contains(what, "DeadlockError"));
    EXPECT_TRUE(contains(line_of(what, "philosopher-1"), "parked on Lock " + addr(&s.b) + " (1 waiter)"));
    EXPECT_TRUE(contains(line_of(what, "philosopher-2"), "parked on Lock " + addr(&s.a) + " (1 waiter)"));
    EXPECT_TRUE(contains(line_of(what, "main"), "parked on JoinHandle of task"));
    EXPECT_TRUE(contains(line_of(what, "main"), "\"philosopher-1\""));
}

TEST(Deadlock, LockOrderVirtualTime) {
    LockOrder s;
    std::string what;
    try {
        spindle::run(LockOrder::main(s), virtual_deadlock());
        ADD_FAILURE() << "no DeadlockError";
    } catch (const DeadlockError& e) {
        what = e.what();
    }
    expect_lock_order_report(what, s);
    // run() cancelled both philosophers: the locks are free again.
    EXPECT_FALSE(s.a.locked());
    EXPECT_FALSE(s.b.locked());
}

TEST(Deadlock, LockOrderRealTimeTwoWorkers) {
    LockOrder s;
    Runtime rt(RuntimeOptions{.workers = 2, .deadlock_timeout = 50});
    std::string what;
    try {
        rt.block_on(LockOrder::main(s));
        ADD_FAILURE() << "no DeadlockError";
    } catch (const DeadlockError& e) {
        what = e.what();
    }
    expect_lock_order_report(what, s);
    EXPECT_TRUE(contains(what, "50 ms"));
    // The runtime is still usable, and its destructor cancels the deadlocked tasks.
    EXPECT_EQ(rt.block_on(returns_one()), 1);
}

TEST(Deadlock, ForgottenSet) {
    struct Local {
        static Task<void> main(Event& e) {
            auto h = spindle::spawn(wait_event(e), "consumer");
            co_await e.wait();
            co_await h;
        }
    };
    Event e;
    std::string what;
    try {
        spindle::run(Local::main(e), virtual_deadlock(2));
        ADD_FAILURE() << "no DeadlockError";
    } catch (const DeadlockError& x) {
        what = x.what();
    }
    SCOPED_TRACE(what);
    EXPECT_TRUE(contains(line_of(what, "main"), "parked on Event " + addr(&e) + " (2 waiters)"));
    EXPECT_TRUE(contains(line_of(what, "consumer"), "parked on Event " + addr(&e) + " (2 waiters)"));
}

TEST(Deadlock, BarrierShortOfParties) {
    struct Local {
        static Task<void> party(Barrier& b) { (void)co_await b.wait(); }
        static Task<void> main(Barrier& b) {
            auto p1 = spindle::spawn(party(b), "party-a");
            auto p2 = spindle::spawn(party(b), "party-b");
            co_await p1;
            co_await p2;
        }
    };
    Barrier b(3);
    std::string what;
    try {
        spindle::run(Local::main(b), virtual_deadlock());
        ADD_FAILURE() << "no DeadlockError";
    } catch (const DeadlockError& x) {
        what = x.what();
    }
    SCOPED_TRACE(what);
    EXPECT_TRUE(contains(line_of(what, "party-a"), "parked on Barrier " + addr(&b) + " (2 waiters)"));
    EXPECT_TRUE(contains(line_of(what, "party-b"), "parked on Barrier " + addr(&b) + " (2 waiters)"));
}

TEST(Deadlock, NoReportWhileSleeping) {
    struct Local {
        static Task<int> main() {
            co_await spindle::sleep(10s);
            auto h = spindle::spawn(sleep_for(5s), "sleeper");
            co_await h;
            co_return 7;
        }
    };
    EXPECT_EQ(spindle::run(Local::main(), virtual_deadlock()), 7);
    // Real time: a timer is pending the whole time, the timeout is far shorter.
    EXPECT_EQ(spindle::run([]() -> Task<int> {
                  co_await spindle::sleep(60ms);
                  co_return 8;
              }(),
                           RuntimeOptions{.workers = 1, .deadlock_timeout = 5}),
              8);
}

TEST(Deadlock, NoReportWhileToThreadRuns) {
    // The job takes much longer than the timeout; only the job can end the wait.
    auto busy = [] {
        const auto until = std::chrono::steady_clock::now() + 80ms;
        int spins = 0;
        while (std::chrono::steady_clock::now() < until) ++spins;
        return spins > 0 ? 3 : 4;
    };
    auto main = [&]() -> Task<int> { co_return co_await spindle::to_thread(busy); };
    EXPECT_EQ(spindle::run(main(), RuntimeOptions{.workers = 1, .deadlock_timeout = 5}), 3);
    EXPECT_EQ(spindle::run(main(), virtual_deadlock()), 3);
}

TEST(Deadlock, NoReportWhenWokenFromOutside) {
    // Real time: a plain thread sets the event once it sees the task parked.
    for (int round = 0; round < 50; ++round) {
        Runtime rt(RuntimeOptions{.workers = static_cast<std::size_t>(round % 2 + 1), .deadlock_timeout = 2000});
        Event e;
        std::thread setter([&] {
            while (!contains(line_of(rt.dump(), "main"), "parked on Event")) std::this_thread::yield();
            e.set();
        });
        EXPECT_NO_THROW(rt.block_on(wait_event(e)));
        setter.join();
    }
}

TEST(Deadlock, OffByDefault) {
    // Without deadlock_timeout an all-parked program is not reported (the test
    // ends it from outside).
    Runtime rt(spindle::testing::one_worker_virtual());
    Event e;
    std::thread setter([&] {
        while (!contains(line_of(rt.dump(), "main"), "parked on Event")) std::this_thread::yield();
        e.set();
    });
    EXPECT_NO_THROW(rt.block_on(wait_event(e)));
    setter.join();
}

// ───────────────────────────── metrics ─────────────────────────────

TEST(Metrics, TimersStealsParksAndInjections) {
    {
        Runtime rt(spindle::testing::one_worker_virtual());
        rt.block_on([]() -> Task<void> {
            std::vector<JoinHandle<void>> hs;
            for (int i = 0; i < 5; ++i) hs.push_back(spindle::spawn(sleep_for(std::chrono::milliseconds(10 * i + 1))));
            for (auto& h : hs) co_await h;
        }());
        const auto m = rt.metrics();
        EXPECT_EQ(m.timers_fired, 5U);
        EXPECT_EQ(m.tasks_spawned, 6U);
        EXPECT_EQ(m.tasks_completed, 6U) << "counted before block_on returns";
        EXPECT_EQ(m.steals, 0U) << "one worker never steals";
    }
    {
        // B is queued on A's worker; A spins until B ran: only a steal can run it.
        Runtime rt(RuntimeOptions{.workers = 2});
        rt.block_on([]() -> Task<void> {
            std::atomic<bool> ran{false};
            auto b = spindle::spawn([](std::atomic<bool>& r) -> Task<void> {
                r.store(true);
                co_return;
            }(ran));
            const auto until = std::chrono::steady_clock::now() + 20s;
            while (!ran.load() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
            EXPECT_TRUE(ran.load());
            co_await b;
        }());
        EXPECT_GE(rt.metrics().steals, 1U);
    }
    {
        // A parked worker woken by a spawn from outside: a park, an unpark, an injection.
        Runtime rt(RuntimeOptions{.workers = 1});
        while (rt.metrics().parks == 0) std::this_thread::yield();  // the worker went idle
        const auto before = rt.metrics();
        EXPECT_EQ(rt.block_on(returns_one()), 1);
        const auto after = rt.metrics();
        EXPECT_EQ(after.injections - before.injections, 1U);
        EXPECT_GE(after.unparks - before.unparks, 1U);
    }
}

// ───────────────────────────── debug mode ─────────────────────────────

namespace {
struct SlowThreshold {
    explicit SlowThreshold(std::chrono::nanoseconds d) : old(spindle::detail::set_slow_task_threshold(d)) {}
    ~SlowThreshold() { spindle::detail::set_slow_task_threshold(old); }
    std::chrono::nanoseconds old;
};

void spin_for(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
}

Task<void> slow_then_fast() {
    spin_for(30ms);          // one slice of 30 ms
    co_await spindle::yield_now();
    co_return;               // a short slice
}

Task<void> forgets_release(Lock& l) {
    co_await l.acquire();
    co_return;
}

Task<int> fails() {
    co_await spindle::yield_now();
    throw std::runtime_error("boom 42");
}
}  // namespace

TEST(Debug, SlowTaskIsReported) {
    SlowThreshold th(10ms);
    testing::internal::CaptureStderr();
    spindle::run([]() -> Task<void> { co_await spindle::spawn(slow_then_fast(), "slowpoke"); }(),
                 RuntimeOptions{.workers = 1, .debug = true});
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(contains(err, "\"slowpoke\" ran for")) << err;
    EXPECT_TRUE(contains(err, "without suspending")) << err;
    EXPECT_FALSE(contains(err, "\"main\" ran for")) << err;
}

TEST(Debug, SlowTaskReportedAlsoWhenItsLastSliceIsSlow) {
    SlowThreshold th(10ms);
    testing::internal::CaptureStderr();
    spindle::run([]() -> Task<void> {
        co_await spindle::spawn([]() -> Task<void> {
            spin_for(30ms);
            co_return;
        }(), "one-slice");
    }(), RuntimeOptions{.workers = 1, .debug = true});
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(contains(err, "\"one-slice\" ran for")) << err;
}

TEST(Debug, LockHeldAtFinishIsReported) {
    Lock l;
    testing::internal::CaptureStderr();
    spindle::run([](Lock& lk) -> Task<void> {
        co_await spindle::spawn(forgets_release(lk), "forgetful");
        // A balanced user is not reported.
        co_await spindle::spawn([](Lock& x) -> Task<void> {
            x.release();  // frees what "forgetful" kept (no owner; not counted for us)
            co_await x.acquire();
            x.release();
            {
                auto g = co_await x.scoped();
            }
            if (x.try_acquire()) x.release();
        }(lk), "tidy");
    }(l), RuntimeOptions{.workers = 1, .virtual_time = true, .debug = true});
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(contains(err, "\"forgetful\" finished while still holding 1 Lock")) << err;
    EXPECT_FALSE(contains(err, "\"tidy\"")) << err;
}

TEST(Debug, UnobservedExceptionIsReported) {
    testing::internal::CaptureStderr();
    spindle::run([]() -> Task<void> {
        auto ignored = spindle::spawn(fails(), "ignored");
        auto observed = spindle::spawn(fails(), "observed");
        try {
            (void)co_await observed;
        } catch (const std::runtime_error&) {
        }
        // gather collects its children's failures.
        try {
            (void)co_await spindle::gather(fails(), fails());
        } catch (const std::runtime_error&) {
        }
        while (!ignored.done()) co_await spindle::yield_now();
    }(), RuntimeOptions{.workers = 1, .virtual_time = true, .debug = true});
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(contains(err, "\"ignored\" failed and its exception was never observed")) << err;
    EXPECT_TRUE(contains(err, "boom 42")) << err;
    EXPECT_FALSE(contains(err, "\"observed\"")) << err;
    EXPECT_EQ(err.find("never observed"), err.rfind("never observed")) << "only one report:\n" << err;
}

TEST(Debug, SilentWhenOff) {
    SlowThreshold th(1ms);
    Lock l;
    testing::internal::CaptureStderr();
    spindle::run([](Lock& lk) -> Task<void> {
        co_await spindle::spawn(slow_then_fast(), "slowpoke");
        co_await spindle::spawn(forgets_release(lk), "forgetful");
        auto ignored = spindle::spawn(fails(), "ignored");
        while (!ignored.done()) co_await spindle::yield_now();
    }(l), RuntimeOptions{.workers = 1});
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(err, "");
}
