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
#include <functional>
#include <thread>

#include "sync_test_util.hpp"

using spindle::Task;

namespace {

constexpr int kRounds = spindle::synctest::kSanitized ? 4000 : 40000;

/// Runs `rounds` rounds on two workers: `wait_and_delete(slot)` is the task's side (it
/// must allocate, publish into the slot, wait and delete); `wake(p)` the thread's.
template <class P>
int race(const std::function<Task<void>(std::atomic<P*>&)>& wait_and_delete, const std::function<void(P*)>& wake) {
    spindle::Runtime rt(spindle::RuntimeOptions{.workers = 2});
    std::atomic<P*> slot{nullptr};
    std::atomic<bool> stop{false};
    std::thread waker([&] {
        while (!stop.load()) {
            if (P* p = slot.exchange(nullptr)) wake(p);
        }
    });
    const int done = rt.block_on([](std::atomic<P*>& sl, const std::function<Task<void>(std::atomic<P*>&)>& body,
                                    int n) -> Task<int> {
        int k = 0;
        for (; k < n; ++k) co_await body(sl);
        co_return k;
    }(slot, wait_and_delete, kRounds));
    stop.store(true);
    waker.join();
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
