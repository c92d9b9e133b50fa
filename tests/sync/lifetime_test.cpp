// A primitive destroyed by the task it just released, while the releasing call may
// still be running on another thread: the one-shot signal of async code (a task owns
// an Event, a Semaphore or a Queue on its frame, hands it to a worker or a callback
// thread, waits, returns, and the frame goes away). The releasing call must touch
// nothing of the primitive once a waiter it lets go could have left
// (runtime/detail/wait_queue.hpp G4, G5). Under ASan a touch after that point is a
// heap-use-after-free; in Release these tests only prove that nothing hangs.
//
// Each test: a plain thread takes the primitive from a slot and makes the waking call
// (waking calls work from any thread); the task heap-allocates the primitive, puts it
// in the slot, waits, and deletes it at once. Many rounds race both ways of being
// released (asleep and granted, or finding the release before sleeping).
#include <atomic>
#include <cstdio>
#include <chrono>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "sync_test_util.hpp"

using spindle::Task;

namespace {

constexpr int kRounds = spindle::synctest::kSanitized ? 4000 : 40000;

/// The plain thread of every test here: takes a P* out of `slot` and calls `wake` on
/// it, until destroyed (it joins then). Declared after the Runtime, so that its last
/// waking call has returned before the Runtime is destroyed (README).
template <class P>
class SlotWaker {
public:
    explicit SlotWaker(std::function<void(P*)> wake)
        : wake_(std::move(wake)), thread_([this] {
              while (!stop_.load()) {
                  if (P* p = slot.exchange(nullptr)) wake_(p);
              }
          }) {}
    SlotWaker(const SlotWaker&) = delete;
    SlotWaker& operator=(const SlotWaker&) = delete;
    ~SlotWaker() {
        stop_.store(true);
        thread_.join();
    }
    std::atomic<P*> slot{nullptr};

private:
    std::function<void(P*)> wake_;
    std::atomic<bool> stop_{false};
    std::thread thread_;  // last: started once the members above exist
};

/// Runs `rounds` rounds on two workers: `wait_and_delete(slot)` is the task's side (it
/// must allocate, publish into the slot, wait and delete); `wake(p)` the thread's.
template <class P>
int race(const std::function<Task<void>(std::atomic<P*>&)>& wait_and_delete, const std::function<void(P*)>& wake) {
    spindle::Runtime rt(spindle::RuntimeOptions{.workers = 2});
    SlotWaker<P> waker(wake);
    const int done = rt.block_on([](std::atomic<P*>& sl, const std::function<Task<void>(std::atomic<P*>&)>& body,
                                    int n) -> Task<int> {
        int k = 0;
        for (; k < n; ++k) co_await body(sl);
        co_return k;
    }(waker.slot, wait_and_delete, kRounds));
    std::printf("[ rounds   ] %d\n", done);
    return done;
}

}  // namespace

TEST(SyncLifetime, EventDestroyedByItsWaiterWhileSetReturns) {
    const int done = race<spindle::Event>(
        [](std::atomic<spindle::Event*>& slot) -> Task<void> {
            auto* ev = new spindle::Event;
            slot.store(ev);
            co_await ev->wait();
            delete ev;
        },
        [](spindle::Event* ev) { ev->set(); });
    EXPECT_EQ(done, kRounds);
}

// Semaphore is not final (BoundedSemaphore derives from it): a box deletes it by its
// own type.
struct SemaphoreBox {
    spindle::Semaphore s{0};
};

TEST(SyncLifetime, SemaphoreDestroyedByItsAcquirerWhileReleaseReturns) {
    const int done = race<SemaphoreBox>(
        [](std::atomic<SemaphoreBox*>& slot) -> Task<void> {
            auto* box = new SemaphoreBox;
            slot.store(box);
            co_await box->s.acquire();
            delete box;
        },
        [](SemaphoreBox* box) { box->s.release(); });
    EXPECT_EQ(done, kRounds);
}

TEST(SyncLifetime, LockDestroyedByItsAcquirerWhileReleaseReturns) {
    const int done = race<spindle::Lock>(
        [](std::atomic<spindle::Lock*>& slot) -> Task<void> {
            auto* l = new spindle::Lock;
            co_await l->acquire();
            slot.store(l);           // the thread releases it (a Lock has no owner)
            co_await l->acquire();   // granted by that release
            l->release();
            delete l;
        },
        [](spindle::Lock* l) { l->release(); });
    EXPECT_EQ(done, kRounds);
}

TEST(SyncLifetime, QueueDestroyedByItsGetterWhilePutNowaitReturns) {
    const int done = race<spindle::Queue<int>>(
        [](std::atomic<spindle::Queue<int>*>& slot) -> Task<void> {
            auto* q = new spindle::Queue<int>(1);
            slot.store(q);
            const int v = co_await q->get();
            EXPECT_EQ(v, 7);
            delete q;
        },
        [](spindle::Queue<int>* q) { q->put_nowait(7); });
    EXPECT_EQ(done, kRounds);
}

TEST(SyncLifetime, QueueDestroyedByItsJoinerWhileTaskDoneReturns) {
    const int done = race<spindle::Queue<int>>(
        [](std::atomic<spindle::Queue<int>*>& slot) -> Task<void> {
            auto* q = new spindle::Queue<int>();
            q->put_nowait(1);
            (void)q->get_nowait();
            slot.store(q);  // one unfinished item: the thread calls task_done()
            co_await q->join();
            delete q;
        },
        [](spindle::Queue<int>* q) { q->task_done(); });
    EXPECT_EQ(done, kRounds);
}

TEST(SyncLifetime, ConditionDestroyedByItsWaiterWhileNotifyAndReleaseReturn) {
    const int done = race<spindle::Condition>(
        [](std::atomic<spindle::Condition*>& slot) -> Task<void> {
            auto* c = new spindle::Condition;
            co_await c->acquire();
            slot.store(c);
            const bool r = co_await c->wait();  // releases the lock; the thread takes it
            EXPECT_TRUE(r);
            c->release();
            delete c;
        },
        [](spindle::Condition* c) {
            while (!c->lock().try_acquire()) std::this_thread::yield();  // after wait() released it
            c->notify();
            c->release();
        });
    EXPECT_EQ(done, kRounds);
}

// ───────────────────────── several waiters ─────────────────────────
// With several waiters only the last one to leave may destroy the primitive: each
// waiter counts itself out after its wait returns, and the one that brings the count
// to kWaiters deletes. The waking call that let that last waiter go (directly, or by
// a chain: a Semaphore waiter that resumes with permits free wakes the next one, a
// Lock holder hands over to the next) must touch nothing of the primitive after it.
// Rounds are bounded in number and in time (kMultiBudget), so a sanitizer build
// stays well under its ctest timeout.

namespace {

constexpr int kWaiters = 4;
constexpr int kMultiRounds = spindle::synctest::kSanitized ? 40000 : 200000;
constexpr auto kMultiBudget = std::chrono::milliseconds(spindle::synctest::kSanitized ? 2000 : 1000);

/// The primitive and the counters that die with it.
template <class P>
struct Shared {
    template <class... A>
    explicit Shared(A&&... a) : p(std::forward<A>(a)...) {}
    P p;
    std::atomic<int> ready{0};  // waiters about to wait (where the waker must know it)
    std::atomic<int> left{0};   // waiters whose wait returned; the last one deletes *this
};

template <class P>
using WaitFn = std::function<Task<void>(Shared<P>&)>;

template <class P>
Task<void> wait_then_leave(Shared<P>* s, const WaitFn<P>* wait, int n) {
    co_await (*wait)(*s);
    if (s->left.fetch_add(1) + 1 == n) delete s;  // the last one out
}

/// Rounds on two workers until kMultiRounds or kMultiBudget: the task makes a Shared
/// with `make()`, spawns `n` waiters running `wait` (then leaving as above),
/// publishes the Shared to a plain thread that calls `wake` on it, and joins the
/// waiters. With `wake` empty, the waiters release each other (Barrier). Returns the
/// rounds done (at least one).
template <class P>
int race_many(int n, const std::function<Shared<P>*()>& make, const WaitFn<P>& wait,
              const std::function<void(Shared<P>&)>& wake) {
    spindle::Runtime rt(spindle::RuntimeOptions{.workers = 2});
    SlotWaker<Shared<P>> waker([&wake](Shared<P>* s) {
        if (wake) wake(*s);
    });
    const auto deadline = std::chrono::steady_clock::now() + kMultiBudget;
    const int done = rt.block_on([](std::atomic<Shared<P>*>& sl, const std::function<Shared<P>*()>& mk,
                                    const WaitFn<P>& w, bool has_waker, int waiters,
                                    std::chrono::steady_clock::time_point until) -> Task<int> {
        int k = 0;
        for (; k < kMultiRounds && (k == 0 || std::chrono::steady_clock::now() < until); ++k) {
            Shared<P>* s = mk();
            std::vector<spindle::JoinHandle<void>> hs;
            hs.reserve(static_cast<std::size_t>(waiters));
            for (int i = 0; i < waiters; ++i) hs.push_back(spindle::spawn(wait_then_leave<P>(s, &w, waiters)));
            if (has_waker) sl.store(s);  // *s is not touched here after this
            for (auto& h : hs) co_await h;
        }
        co_return k;
    }(waker.slot, make, wait, static_cast<bool>(wake), n, deadline));
    std::printf("[ rounds   ] %d\n", done);
    return done;
}

}  // namespace

TEST(SyncLifetime, EventDestroyedByItsLastWaiterWhileSetReturns) {
    const int done = race_many<spindle::Event>(
        kWaiters, [] { return new Shared<spindle::Event>(); },
        [](Shared<spindle::Event>& s) -> Task<void> {
            const bool r = co_await s.p.wait();
            EXPECT_TRUE(r);
        },
        [](Shared<spindle::Event>& s) { s.p.set(); });
    EXPECT_GE(done, 1);
}

TEST(SyncLifetime, SemaphoreDestroyedByItsLastAcquirerWhileReleasesReturn) {
    // kWaiters releases, one at a time: a waiter granted by one release may resume
    // while the next release runs, see the permit free and wake the last waiter.
    const int done = race_many<spindle::Semaphore>(
        kWaiters, [] { return new Shared<spindle::Semaphore>(0); },
        [](Shared<spindle::Semaphore>& s) -> Task<void> { co_await s.p.acquire(); },
        [](Shared<spindle::Semaphore>& s) {
            for (int i = 0; i < kWaiters; ++i) s.p.release();
        });
    EXPECT_GE(done, 1);
}

TEST(SyncLifetime, BoundedSemaphoreDestroyedByItsLastAcquirerWhileReleasesReturn) {
    const int done = race_many<spindle::BoundedSemaphore>(
        kWaiters,
        [] {
            auto* s = new Shared<spindle::BoundedSemaphore>(kWaiters);
            for (int i = 0; i < kWaiters; ++i) EXPECT_TRUE(s->p.try_acquire());
            return s;
        },
        [](Shared<spindle::BoundedSemaphore>& s) -> Task<void> {
            co_await s.p.acquire();
        },
        [](Shared<spindle::BoundedSemaphore>& s) {
            for (int i = 0; i < kWaiters; ++i) s.p.release();
        });
    EXPECT_GE(done, 1);
}

TEST(SyncLifetime, LockDestroyedByItsLastAcquirerWhileReleaseReturns) {
    const int done = race_many<spindle::Lock>(
        kWaiters,
        [] {
            auto* s = new Shared<spindle::Lock>();
            EXPECT_TRUE(s->p.try_acquire());  // the thread releases it
            return s;
        },
        [](Shared<spindle::Lock>& s) -> Task<void> {
            co_await s.p.acquire();
            s.p.release();  // hands over to the next waiter
        },
        [](Shared<spindle::Lock>& s) { s.p.release(); });
    EXPECT_GE(done, 1);
}

TEST(SyncLifetime, ConditionDestroyedByItsLastWaiterWhileNotifyAllAndReleaseReturn) {
    const int done = race_many<spindle::Condition>(
        kWaiters, [] { return new Shared<spindle::Condition>(); },
        [](Shared<spindle::Condition>& s) -> Task<void> {
            co_await s.p.acquire();
            s.ready.fetch_add(1);  // under the lock: the thread's try_acquire follows our wait()'s release
            const bool r = co_await s.p.wait();
            EXPECT_TRUE(r);
            s.p.release();
        },
        [](Shared<spindle::Condition>& s) {
            // Every waiter counted itself under the lock, then queued in wait()
            // before releasing it: once we hold the lock with all counted, all wait.
            for (;;) {
                if (s.ready.load() == kWaiters && s.p.lock().try_acquire()) break;
                std::this_thread::yield();
            }
            s.p.notify_all();
            s.p.release();
        });
    EXPECT_GE(done, 1);
}

TEST(SyncLifetime, BarrierDestroyedByItsLastPartyToLeave) {
    std::atomic<long> index_sum{0};
    const int done = race_many<spindle::Barrier>(
        kWaiters, [] { return new Shared<spindle::Barrier>(static_cast<std::size_t>(kWaiters)); },
        [&index_sum](Shared<spindle::Barrier>& s) -> Task<void> {
            const std::size_t i = co_await s.p.wait();
            index_sum.fetch_add(static_cast<long>(i));
        },
        {});
    EXPECT_GE(done, 1);
    EXPECT_EQ(index_sum.load(), static_cast<long>(done) * (kWaiters * (kWaiters - 1) / 2));  // 0..n-1 each round
}

TEST(SyncLifetime, BarrierDestroyedByItsLastPartyAfterAbort) {
    // kWaiters parties of a barrier for kWaiters + 1: a separate task aborts it, so
    // every party leaves with BrokenBarrierError (woken by abort(), or at once if it
    // arrives after it), and the last one to leave deletes it.
    std::atomic<int> broken{0};
    const int done = race_many<spindle::Barrier>(
        kWaiters + 1, [] { return new Shared<spindle::Barrier>(static_cast<std::size_t>(kWaiters + 1)); },
        [&broken](Shared<spindle::Barrier>& s) -> Task<void> {
            // The aborter is one of the waiters below (ready == 0 takes the role),
            // so it too counts itself out and only the last one deletes.
            if (s.ready.fetch_add(1) == 0) {
                co_await s.p.abort();
                co_return;
            }
            try {
                (void)co_await s.p.wait();
                ADD_FAILURE() << "a party of an aborted barrier passed";
            } catch (const spindle::BrokenBarrierError&) {
                broken.fetch_add(1);
            }
        },
        {});
    EXPECT_GE(done, 1);
    EXPECT_EQ(broken.load(), done * kWaiters);
}

TEST(SyncLifetime, QueueDestroyedByItsLastGetterWhilePutNowaitsReturn) {
    std::atomic<long> sum{0};
    const int done = race_many<spindle::Queue<int>>(
        kWaiters, [] { return new Shared<spindle::Queue<int>>(); },
        [&sum](Shared<spindle::Queue<int>>& s) -> Task<void> {
            const int v = co_await s.p.get();
            sum.fetch_add(v);
        },
        [](Shared<spindle::Queue<int>>& s) {
            for (int i = 1; i <= kWaiters; ++i) s.p.put_nowait(i);
        });
    EXPECT_GE(done, 1);
    EXPECT_EQ(sum.load(), static_cast<long>(done) * (kWaiters * (kWaiters + 1) / 2));
}

TEST(SyncLifetime, QueueDestroyedByItsLastJoinerWhileTaskDoneReturns) {
    const int done = race_many<spindle::Queue<int>>(
        kWaiters,
        [] {
            auto* s = new Shared<spindle::Queue<int>>();
            s->p.put_nowait(1);
            (void)s->p.get_nowait();  // one unfinished item: the thread calls task_done()
            return s;
        },
        [](Shared<spindle::Queue<int>>& s) -> Task<void> {
            const bool r = co_await s.p.join();
            EXPECT_TRUE(r);
        },
        [](Shared<spindle::Queue<int>>& s) { s.p.task_done(); });
    EXPECT_GE(done, 1);
}

TEST(SyncLifetime, QueueDestroyedByItsLastPutterWhileGetNowaitsReturn) {
    // A full queue of one slot: kWaiters putters wait for room; the thread takes
    // kWaiters items, each get_nowait() granting the slot to the next putter (the
    // last putter's item stays: destroying a queue that holds items is fine).
    std::atomic<long> got{0};
    const int done = race_many<spindle::Queue<int>>(
        kWaiters,
        [] {
            auto* s = new Shared<spindle::Queue<int>>(1);
            s->p.put_nowait(0);
            return s;
        },
        [](Shared<spindle::Queue<int>>& s) -> Task<void> { co_await s.p.put(1); },
        [&got](Shared<spindle::Queue<int>>& s) {
            for (int i = 0; i < kWaiters;) {
                try {
                    got.fetch_add(s.p.get_nowait());
                    ++i;
                } catch (const spindle::QueueEmpty&) {  // the next putter has not stored yet
                    std::this_thread::yield();
                }
            }
        });
    EXPECT_GE(done, 1);
    EXPECT_EQ(got.load(), static_cast<long>(done) * (kWaiters - 1));  // 0, then 1 per putter but the last
}
