// spindle::Queue, LifoQueue, PriorityQueue — every member, every error, the direct
// hand-off rules of DESIGN.md section 2, shutdown (Python 3.13), move-only items, and
// asyncio.Queue's traces at one worker where asyncio is already fair.
//
// Suites: SyncQueue (members, errors, hand-off, cancellation, shutdown, misuse),
// SyncQueueAsyncio (traces printed by CPython 3.11 for the program of the same name in
// tests/sync/asyncio_queue_reference.py), SyncQueueMulti (several workers, plain threads).
#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::JoinHandle;
using spindle::LifoQueue;
using spindle::PriorityQueue;
using spindle::Queue;
using spindle::QueueEmpty;
using spindle::QueueFull;
using spindle::QueueShutDown;
using spindle::Task;
using spindle::synctest::Eager;
using spindle::synctest::one_worker;
using spindle::synctest::Trace;

namespace {

template <class Q>
Task<void> get_traced(Q& q, Trace& T, std::string name) {
    try {
        auto v = co_await q.get();
        T(name + "=" + std::to_string(v));
    } catch (const CancelledError&) {
        T(name + "-cancelled");
        throw;
    } catch (const QueueShutDown&) {
        T(name + "-shutdown");
    }
}

Task<void> get_str(Queue<std::string>& q, Trace& T, std::string name) {
    try {
        std::string v = co_await q.get();
        T(name + "=" + v);
    } catch (const CancelledError&) {
        T(name + "-cancelled");
        throw;
    }
}

Task<void> put_traced(Queue<int>& q, Trace& T, int v) {
    try {
        co_await q.put(v);
        T(spindle::synctest::nm("p", v) + "+");
    } catch (const CancelledError&) {
        T(spindle::synctest::nm("p", v) + "-cancelled");
        throw;
    } catch (const QueueShutDown&) {
        T(spindle::synctest::nm("p", v) + "-shutdown");
    }
}

Eager get_outside_task(Queue<int>& q) { (void)co_await q.get(); }
Eager put_outside_task(Queue<int>& q) { co_await q.put(1); }

}  // namespace

// ───────────────────────────── members and errors ─────────────────────────────

TEST(SyncQueue, ConstructionAndSizes) {
    EXPECT_THROW(Queue<int>(-1), std::invalid_argument);
    Queue<int> unbounded;
    EXPECT_EQ(unbounded.maxsize(), 0U);
    EXPECT_FALSE(unbounded.full());
    for (int i = 0; i < 1000; ++i) unbounded.put_nowait(i);
    EXPECT_FALSE(unbounded.full());
    EXPECT_EQ(unbounded.qsize(), 1000U);

    Queue<int> q(2);
    EXPECT_EQ(q.maxsize(), 2U);
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.full());
    q.put_nowait(1);
    EXPECT_FALSE(q.empty());
    EXPECT_EQ(q.qsize(), 1U);
    q.put_nowait(2);
    EXPECT_TRUE(q.full());
    EXPECT_THROW(q.put_nowait(3), QueueFull);
    EXPECT_EQ(q.qsize(), 2U);  // the failed put changed nothing
    EXPECT_EQ(q.get_nowait(), 1);
    EXPECT_EQ(q.get_nowait(), 2);
    EXPECT_THROW((void)q.get_nowait(), QueueEmpty);
    EXPECT_TRUE(q.empty());
    q.put_nowait(4);  // still works after the errors
    EXPECT_EQ(q.get_nowait(), 4);
}

TEST(SyncQueue, OrderFifoLifoPriority) {
    Queue<int> f;
    LifoQueue<int> l;
    PriorityQueue<int> p;
    PriorityQueue<int, std::greater<>> pmax;
    for (int v : {3, 1, 4, 1, 5, 9, 2, 6}) {
        f.put_nowait(v);
        l.put_nowait(v);
        p.put_nowait(v);
        pmax.put_nowait(v);
    }
    std::vector<int> fo, lo, po, pm;
    while (!f.empty()) fo.push_back(f.get_nowait());
    while (!l.empty()) lo.push_back(l.get_nowait());
    while (!p.empty()) po.push_back(p.get_nowait());
    while (!pmax.empty()) pm.push_back(pmax.get_nowait());
    EXPECT_EQ(fo, (std::vector<int>{3, 1, 4, 1, 5, 9, 2, 6}));
    EXPECT_EQ(lo, (std::vector<int>{6, 2, 9, 5, 1, 4, 1, 3}));
    EXPECT_EQ(po, (std::vector<int>{1, 1, 2, 3, 4, 5, 6, 9}));
    EXPECT_EQ(pm, (std::vector<int>{9, 6, 5, 4, 3, 2, 1, 1}));
}

TEST(SyncQueue, PriorityPairsLikeHeapq) {
    PriorityQueue<std::pair<int, std::string>> q;
    q.put_nowait({2, "b"});
    q.put_nowait({1, "z"});
    q.put_nowait({1, "a"});
    EXPECT_EQ(q.get_nowait().second, "a");
    EXPECT_EQ(q.get_nowait().second, "z");
    EXPECT_EQ(q.get_nowait().second, "b");
}

TEST(SyncQueue, TaskDoneTooOften) {
    Queue<int> q;
    EXPECT_THROW(q.task_done(), std::invalid_argument);
    q.put_nowait(1);
    (void)q.get_nowait();
    q.task_done();
    EXPECT_THROW(q.task_done(), std::invalid_argument);
    q.put_nowait(2);  // the queue still counts correctly afterwards
    q.task_done();
    EXPECT_THROW(q.task_done(), std::invalid_argument);
}

TEST(SyncQueue, WaitingCallsOutsideATaskThrowLogicError) {
    Queue<int> q(1);
    Eager g = get_outside_task(q);
    EXPECT_TRUE(g.finished());
    EXPECT_THROW(g.rethrow(), std::logic_error);
    q.put_nowait(1);  // full now
    Eager p = put_outside_task(q);
    EXPECT_TRUE(p.finished());
    EXPECT_THROW(p.rethrow(), std::logic_error);
    EXPECT_EQ(q.qsize(), 1U);  // the refused put inserted nothing
    // Calls that need not wait complete without a task, as Lock, Semaphore and Event
    // do (and asyncio's get() of a non-empty queue): only waiting needs one.
    Eager g2 = get_outside_task(q);
    EXPECT_TRUE(g2.finished());
    EXPECT_NO_THROW(g2.rethrow());
    EXPECT_EQ(q.qsize(), 0U);
    Eager p2 = put_outside_task(q);
    EXPECT_TRUE(p2.finished());
    EXPECT_NO_THROW(p2.rethrow());
    EXPECT_EQ(q.get_nowait(), 1);
}

CO_TEST_OPTS(SyncQueue, MoveOnlyItems, one_worker()) {
    Queue<std::unique_ptr<int>> q(1);
    auto consumer = spindle::spawn([](Queue<std::unique_ptr<int>>& q_) -> Task<int> {
        int sum = 0;
        for (int i = 0; i < 5; ++i) {
            std::unique_ptr<int> p = co_await q_.get();
            sum += *p;
        }
        co_return sum;
    }(q));
    for (int i = 1; i <= 5; ++i) co_await q.put(std::make_unique<int>(i));
    const int sum = co_await consumer;
    EXPECT_EQ(sum, 15);
    q.put_nowait(std::make_unique<int>(7));
    EXPECT_THROW(q.put_nowait(std::make_unique<int>(8)), QueueFull);
    auto last = q.get_nowait();
    EXPECT_EQ(*last, 7);
}

CO_TEST_OPTS(SyncQueue, JoinWaitsForEveryTaskDone, one_worker()) {
    Queue<int> q;
    co_await q.join();  // nothing put: returns at once
    q.put_nowait(1);
    q.put_nowait(2);
    bool joined = false;
    auto j = spindle::spawn([](Queue<int>& q_, bool& joined_) -> Task<void> {
        co_await q_.join();
        joined_ = true;
    }(q, joined));
    co_await spindle::yield_now();
    (void)q.get_nowait();
    q.task_done();
    co_await spindle::yield_now();
    EXPECT_FALSE(joined);
    (void)q.get_nowait();
    q.task_done();
    co_await j;
    EXPECT_TRUE(joined);
}

// ───────────────────────────── hand-off (DESIGN §2) ─────────────────────────────

// A newcomer cannot take the item handed to a woken getter (asyncio lets it, and the
// woken getter queues again at the back: the deliberate departure).
CO_TEST_OPTS(SyncQueue, HandedItemCannotBeTakenByNewcomer, one_worker()) {
    Queue<int> q;
    Trace T;
    // The newcomer is queued (ready) before the getter is woken, so it runs first.
    auto g = spindle::spawn(get_traced(q, T, "g"));
    co_await spindle::yield_now();  // g waits
    auto newcomer = spindle::spawn([](Queue<int>& q_, Trace& T_) -> Task<void> {
        try {
            (void)q_.get_nowait();
            T_("newcomer-took");
        } catch (const QueueEmpty&) {
            T_("newcomer-empty");
        }
        co_return;
    }(q, T));
    q.put_nowait(7);
    T("size", q.qsize());  // handed to g: not available to anyone else
    T("empty", q.empty());
    co_await newcomer;
    co_await g;
    EXPECT_EQ(T.str(), "size=0 empty=1 newcomer-empty g=7");
}

// A slot freed by a get is reserved for the longest waiting putter: full() counts it,
// and a newcomer's put_nowait cannot take it.
CO_TEST_OPTS(SyncQueue, FreedSlotIsReservedForWaitingPutter, one_worker()) {
    Queue<int> q(1);
    Trace T;
    q.put_nowait(0);
    auto p = spindle::spawn(put_traced(q, T, 1));
    co_await spindle::yield_now();  // p waits
    T("got", q.get_nowait());       // frees the slot: reserved for p
    T("full", q.full());
    try {
        q.put_nowait(99);
        T("newcomer-put");
    } catch (const QueueFull&) {
        T("newcomer-full");
    }
    co_await p;
    T("got", q.get_nowait());
    EXPECT_EQ(T.str(), "got=0 full=1 newcomer-full p1+ got=1");
}

// ───────────────────────────── cancellation and timeouts ─────────────────────────────

CO_TEST_OPTS(SyncQueue, CancelledGetNeverLosesAnItem, one_worker()) {
    Queue<int> q;
    Trace T;
    auto a = spindle::spawn(get_traced(q, T, "a"));
    co_await spindle::yield_now();
    q.put_nowait(5);  // handed to a ...
    (void)a.cancel(); // ... which is cancelled before it resumes: the item stays
    const bool cancelled = co_await spindle::synctest::ended_cancelled(std::move(a));
    EXPECT_TRUE(cancelled);
    EXPECT_EQ(q.qsize(), 1U);
    EXPECT_EQ(q.get_nowait(), 5);
    EXPECT_EQ(T.str(), "a-cancelled");
}

CO_TEST_OPTS(SyncQueue, CancelledPutNeverInserts, one_worker()) {
    Queue<int> q(1);
    Trace T;
    q.put_nowait(0);
    auto p = spindle::spawn(put_traced(q, T, 1));
    co_await spindle::yield_now();  // p waits
    (void)p.cancel();
    const bool cancelled = co_await spindle::synctest::ended_cancelled(std::move(p));
    EXPECT_TRUE(cancelled);
    EXPECT_EQ(q.get_nowait(), 0);
    EXPECT_TRUE(q.empty());
    EXPECT_THROW((void)q.get_nowait(), QueueEmpty);
    // Woken (slot granted) but cancelled before it resumed: the slot is passed on.
    q.put_nowait(10);
    auto p2 = spindle::spawn(put_traced(q, T, 2));
    auto p3 = spindle::spawn(put_traced(q, T, 3));
    co_await spindle::yield_now();
    T("got", q.get_nowait());  // slot -> p2
    (void)p2.cancel();         // p2 passes it to p3
    const bool c2 = co_await spindle::synctest::ended_cancelled(std::move(p2));
    EXPECT_TRUE(c2);
    co_await p3;
    T("got", q.get_nowait());
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(T.str(), "p1-cancelled got=10 p2-cancelled p3+ got=3");
}

CO_TEST_OPTS(SyncQueue, WaitForGetTimesOutAndLosesNothing, one_worker()) {
    Queue<int> q;
    bool timed_out = false;
    try {
        (void)co_await spindle::wait_for(q.get(), 10ms);
    } catch (const spindle::TimeoutError&) {
        timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    q.put_nowait(3);
    EXPECT_EQ(q.qsize(), 1U);
    const int v = co_await q.get();
    EXPECT_EQ(v, 3);
    // A timed-out put inserts nothing.
    Queue<int> b(1);
    b.put_nowait(1);
    bool put_timed_out = false;
    try {
        co_await spindle::wait_for(b.put(2), 10ms);
    } catch (const spindle::TimeoutError&) {
        put_timed_out = true;
    }
    EXPECT_TRUE(put_timed_out);
    EXPECT_EQ(b.qsize(), 1U);
    EXPECT_EQ(b.get_nowait(), 1);
    EXPECT_TRUE(b.empty());
}

// ───────────────────────────── shutdown (Python 3.13) ─────────────────────────────

CO_TEST_OPTS(SyncQueue, ShutdownDrainsThenRaises, one_worker()) {
    Queue<int> q(2);
    Trace T;
    q.put_nowait(1);
    q.put_nowait(2);
    auto p = spindle::spawn(put_traced(q, T, 3));  // waits: full
    co_await spindle::yield_now();
    q.shutdown();
    EXPECT_TRUE(q.is_shutdown());
    co_await p;  // woken: raises QueueShutDown
    EXPECT_THROW(q.put_nowait(4), QueueShutDown);
    T("got", q.get_nowait());  // what is left can still be taken
    const int v = co_await q.get();
    T("got", v);
    EXPECT_THROW((void)q.get_nowait(), QueueShutDown);
    bool raised = false;
    try {
        (void)co_await q.get();
    } catch (const QueueShutDown&) {
        raised = true;
    }
    EXPECT_TRUE(raised);
    EXPECT_EQ(T.str(), "p3-shutdown got=1 got=2");
}

CO_TEST_OPTS(SyncQueue, ShutdownWakesWaitingGetters, one_worker()) {
    Queue<int> q;
    Trace T;
    auto a = spindle::spawn(get_traced(q, T, "a"));
    auto b = spindle::spawn(get_traced(q, T, "b"));
    co_await spindle::yield_now();
    q.shutdown();
    co_await a;
    co_await b;
    EXPECT_EQ(T.str(), "a-shutdown b-shutdown");
}

CO_TEST_OPTS(SyncQueue, ShutdownImmediateDiscardsAndReleasesJoin, one_worker()) {
    Queue<std::unique_ptr<int>> q;
    for (int i = 0; i < 3; ++i) q.put_nowait(std::make_unique<int>(i));
    (void)q.get_nowait();  // one taken, not yet done
    bool joined = false;
    auto j = spindle::spawn([](Queue<std::unique_ptr<int>>& q_, bool& joined_) -> Task<void> {
        co_await q_.join();
        joined_ = true;
    }(q, joined));
    co_await spindle::yield_now();
    q.shutdown(/*immediate=*/true);  // 2 discarded and counted done; 1 still unfinished
    co_await spindle::yield_now();
    EXPECT_FALSE(joined);
    EXPECT_TRUE(q.empty());
    EXPECT_THROW((void)q.get_nowait(), QueueShutDown);
    q.task_done();
    co_await j;
    EXPECT_TRUE(joined);
    EXPECT_THROW(q.task_done(), std::invalid_argument);
}

// An item handed to a woken getter is discarded by an immediate shutdown before the
// getter resumes: it raises QueueShutDown (asyncio: it finds the queue empty).
CO_TEST_OPTS(SyncQueue, ShutdownImmediateAfterHandOff, one_worker()) {
    Queue<int> q;
    Trace T;
    auto a = spindle::spawn(get_traced(q, T, "a"));
    co_await spindle::yield_now();
    q.put_nowait(1);
    q.shutdown(true);
    co_await a;
    EXPECT_EQ(T.str(), "a-shutdown");
}

// ───────────────────────────── asyncio traces (one worker) ─────────────────────────────

CO_TEST_OPTS(SyncQueueAsyncio, QueueGettersFifo, one_worker()) {
    Queue<int> q;
    Trace T;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 3; ++i) hs.push_back(spindle::spawn(get_traced(q, T, spindle::synctest::nm("g", i))));
    co_await spindle::yield_now();
    for (int i = 0; i < 3; ++i) {
        q.put_nowait(i + 1);
        T("put", i + 1);
    }
    for (auto& h : hs) co_await h;
    T("size", q.qsize());
    EXPECT_EQ(T.str(), "put=1 put=2 put=3 g0=1 g1=2 g2=3 size=0");
}

CO_TEST_OPTS(SyncQueueAsyncio, QueuePuttersFifo, one_worker()) {
    Queue<int> q(1);
    Trace T;
    q.put_nowait(0);
    std::vector<JoinHandle<void>> hs;
    for (int i = 1; i <= 3; ++i) hs.push_back(spindle::spawn(put_traced(q, T, i)));
    co_await spindle::yield_now();
    T("full", q.full());
    for (int i = 0; i < 4; ++i) {
        const int v = co_await q.get();
        T("got", v);
    }
    for (auto& h : hs) co_await h;
    T("size", q.qsize());
    EXPECT_EQ(T.str(), "full=1 got=0 p1+ got=1 p2+ got=2 p3+ got=3 size=0");
}

CO_TEST_OPTS(SyncQueueAsyncio, QueueJoin, one_worker()) {
    Queue<int> q;
    Trace T;
    auto w = spindle::spawn([](Queue<int>& q_, Trace& T_) -> Task<void> {
        for (;;) {
            const int v = co_await q_.get();
            co_await spindle::sleep(10ms);
            T_("done", v);
            q_.task_done();
        }
    }(q, T));
    for (int i = 0; i < 3; ++i) co_await q.put(i);
    co_await q.join();
    T("joined");
    (void)w.cancel();
    const bool c = co_await spindle::synctest::ended_cancelled(std::move(w));
    if (c) T("worker-cancelled");
    EXPECT_EQ(T.str(), "done=0 done=1 done=2 joined worker-cancelled");
}

CO_TEST_OPTS(SyncQueueAsyncio, QueueCancelWokenGetter, one_worker()) {
    Queue<std::string> q;
    Trace T;
    auto a = spindle::spawn(get_str(q, T, "a"));
    auto b = spindle::spawn(get_str(q, T, "b"));
    co_await spindle::yield_now();
    q.put_nowait("x");
    (void)a.cancel();
    (void)co_await spindle::synctest::ended_cancelled(std::move(a));
    co_await b;
    T("size", q.qsize());
    EXPECT_EQ(T.str(), "a-cancelled b=x size=0");
}

CO_TEST_OPTS(SyncQueueAsyncio, QueueCancelWaitingPutter, one_worker()) {
    Queue<std::string> q(1);
    Trace T;
    q.put_nowait("a");
    auto p = [](Queue<std::string>& q_, Trace& T_, std::string v_) -> Task<void> {
        try {
            co_await q_.put(v_);
        } catch (const CancelledError&) {
            T_(v_ + "-cancelled");
            throw;
        }
        T_(v_ + "+");
    };
    auto b = spindle::spawn(p(q, T, "b"));
    auto c = spindle::spawn(p(q, T, "c"));
    co_await spindle::yield_now();
    (void)b.cancel();
    co_await spindle::yield_now();
    T("got", q.get_nowait());
    co_await spindle::yield_now();
    T("got", q.get_nowait());
    (void)co_await spindle::synctest::ended_cancelled(std::move(b));
    co_await c;
    T("size", q.qsize());
    EXPECT_EQ(T.str(), "b-cancelled got=a c+ got=c size=0");
}

CO_TEST_OPTS(SyncQueueAsyncio, QueueLifoPriority, one_worker()) {
    LifoQueue<int> lq;
    PriorityQueue<int> pq;
    Trace T;
    for (int v : {3, 1, 2}) {
        lq.put_nowait(v);
        pq.put_nowait(v);
    }
    std::string l, p;
    for (int i = 0; i < 3; ++i) l += std::to_string(lq.get_nowait());
    for (int i = 0; i < 3; ++i) p += std::to_string(pq.get_nowait());
    T("lifo", l);
    T("prio", p);
    EXPECT_EQ(T.str(), "lifo=213 prio=123");
    co_return;
}

CO_TEST_OPTS(SyncQueueAsyncio, QueueTimeoutGet, one_worker()) {
    Queue<std::string> q;
    Trace T;
    auto late = spindle::spawn([](Queue<std::string>& q_) -> Task<void> {
        co_await spindle::sleep(20ms);
        q_.put_nowait("late");
    }(q));
    try {
        (void)co_await spindle::wait_for(q.get(), 10ms);
    } catch (const spindle::TimeoutError&) {
        T("timeout");
    }
    co_await late;
    T("size", q.qsize());
    std::string v = co_await q.get();
    T("got", v);
    EXPECT_EQ(T.str(), "timeout size=1 got=late");
}

// ───────────────────────────── several workers, plain threads ─────────────────────────────

// Several producers on 2 workers: each consumer sees each producer's items in order,
// every item exactly once.
CO_TEST(SyncQueueMulti, PerProducerOrderAndExactlyOnce) {
    constexpr int kProducers = 4;
    const int per = static_cast<int>(spindle::synctest::stress_size(20000));
    Queue<std::pair<int, int>> q(64);
    std::vector<JoinHandle<void>> ps;
    for (int p = 0; p < kProducers; ++p)
        ps.push_back(spindle::spawn([](Queue<std::pair<int, int>>& q_, int p_, int per_) -> Task<void> {
            for (int i = 0; i < per_; ++i) co_await q_.put({p_, i});
        }(q, p, per)));
    auto consumer = [](Queue<std::pair<int, int>>& q_, int n_) -> Task<std::vector<std::pair<int, int>>> {
        std::vector<std::pair<int, int>> got;
        got.reserve(static_cast<std::size_t>(n_));
        for (int i = 0; i < n_; ++i) {
            auto v = co_await q_.get();
            got.push_back(v);
        }
        co_return got;
    };
    const int total = kProducers * per;
    auto c1 = spindle::spawn(consumer(q, total / 2));
    auto c2 = spindle::spawn(consumer(q, total - total / 2));
    for (auto& p : ps) co_await p;
    auto g1 = co_await c1;
    auto g2 = co_await c2;
    std::vector<int> count(static_cast<std::size_t>(kProducers) * static_cast<std::size_t>(per), 0);
    for (const auto* g : {&g1, &g2}) {
        std::vector<int> last(kProducers, -1);
        for (auto [p, i] : *g) {
            EXPECT_GT(i, last[static_cast<std::size_t>(p)]) << "producer " << p << " out of order";
            last[static_cast<std::size_t>(p)] = i;
            ++count[static_cast<std::size_t>(p * per + i)];
        }
    }
    EXPECT_TRUE(std::all_of(count.begin(), count.end(), [](int c) { return c == 1; }));
    EXPECT_TRUE(q.empty());
}

// Plain threads put_nowait/get_nowait while tasks put and get: nothing lost or doubled.
TEST(SyncQueueMulti, PlainThreadsAndTasks) {
    const int n = static_cast<int>(spindle::synctest::stress_size(20000));
    Queue<int> q(16);
    std::atomic<long long> got_sum{0};
    std::atomic<int> got_n{0};
    spindle::Runtime rt(spindle::RuntimeOptions{.workers = 2});
    auto consumer = rt.spawn([](Queue<int>& qq, std::atomic<long long>& sum, std::atomic<int>& cnt,
                                int count) -> Task<void> {
        for (int i = 0; i < count; ++i) {
            const int v = co_await qq.get();
            sum += v;
            ++cnt;
        }
    }(q, got_sum, got_n, n));
    std::thread producer([&] {
        int i = 0;
        while (i < n) {
            try {
                q.put_nowait(i + 1);
                ++i;
            } catch (const QueueFull&) {
                std::this_thread::yield();
            }
        }
    });
    producer.join();
    rt.block_on([](JoinHandle<void> h_) -> Task<void> { co_await h_; }(std::move(consumer)));
    EXPECT_EQ(got_n.load(), n);
    EXPECT_EQ(got_sum.load(), static_cast<long long>(n) * (n + 1) / 2);
    EXPECT_TRUE(q.empty());
}

// The queue's lock is biased (runtime/detail/biased_lock.hpp): a thread that takes it
// kRebiasAfter times in a row takes it with plain stores from then on, until another
// thread revokes that. Here the bias moves both ways while the other side runs: a task
// puts in bursts longer than kRebiasAfter (so its worker arms the bias) while a plain
// thread drains with get_nowait (revoking it); then the plain thread puts in such bursts
// while a task gets. One producer each way, so every item must arrive once, in order.
TEST(SyncQueueMulti, TheLockBiasMovesBetweenAWorkerAndAPlainThread) {
    constexpr int kBurst = spindle::detail::BiasedLock::kRebiasAfter + 1000;
    const int bursts = static_cast<int>(std::max<std::size_t>(3, spindle::synctest::stress_size(12)));
    const int n = kBurst * bursts;
    spindle::Runtime rt(spindle::RuntimeOptions{.workers = 1});
    Queue<int> q;  // unbounded: puts never wait, so bursts run in one slice
    // 1. The worker produces, a plain thread consumes.
    {
        std::vector<int> got;
        got.reserve(static_cast<std::size_t>(n));
        std::thread consumer([&] {
            while (static_cast<int>(got.size()) < n) {
                try {
                    got.push_back(q.get_nowait());
                } catch (const QueueEmpty&) {
                    std::this_thread::yield();
                }
            }
        });
        rt.block_on([](Queue<int>& q_, int bursts_, int burst_) -> Task<void> {
            int v = 0;
            for (int b = 0; b < bursts_; ++b) {
                for (int i = 0; i < burst_; ++i) co_await q_.put(++v);
                co_await spindle::yield_now();
            }
        }(q, bursts, kBurst));
        consumer.join();
        ASSERT_EQ(static_cast<int>(got.size()), n);
        for (int i = 0; i < n; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], i + 1) << "at " << i;
        EXPECT_TRUE(q.empty());
    }
    // 2. A plain thread produces, a task consumes.
    {
        std::thread producer([&] {
            int v = 0;
            for (int b = 0; b < bursts; ++b) {
                for (int i = 0; i < kBurst; ++i) q.put_nowait(++v);
                std::this_thread::yield();
            }
        });
        const long long bad = rt.block_on([](Queue<int>& q_, int n_) -> Task<long long> {
            long long mismatches = 0;
            for (int i = 0; i < n_; ++i)
                if (co_await q_.get() != i + 1) ++mismatches;
            co_return mismatches;
        }(q, n));
        producer.join();
        EXPECT_EQ(bad, 0);
        EXPECT_TRUE(q.empty());
    }
}

// Runtime::dump() names what a task waits on: "Queue.get" / "Queue.put" and the queue.
TEST(SyncQueue, DumpShowsQueueWaits) {
    spindle::Runtime rt(spindle::RuntimeOptions{.workers = 1});
    Queue<int> empty;
    Queue<int> full(1);
    full.put_nowait(0);
    auto g = rt.spawn([](Queue<int>& q) -> Task<void> { (void)co_await q.get(); }(empty), "getter");
    auto p = rt.spawn([](Queue<int>& q) -> Task<void> { co_await q.put(1); }(full), "putter");
    // Both tasks ran up to their waits once this one, queued after them, has run.
    rt.block_on([]() -> Task<void> { co_return; }());
    const std::string dump = rt.dump();
    EXPECT_NE(dump.find("\"getter\": parked on Queue.get"), std::string::npos) << dump;
    EXPECT_NE(dump.find("\"putter\": parked on Queue.put"), std::string::npos) << dump;
    empty.put_nowait(7);
    (void)full.get_nowait();
    rt.block_on([](JoinHandle<void> a, JoinHandle<void> b) -> Task<void> {
        co_await a;
        co_await b;
    }(std::move(g), std::move(p)));
    EXPECT_EQ(full.get_nowait(), 1);
    EXPECT_TRUE(empty.empty());
}
