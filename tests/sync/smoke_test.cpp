#include "co_test.hpp"

#include <string>
#include <vector>

using namespace std::chrono_literals;

CO_TEST_OPTS(SyncSmoke, LockFifoOneWorker, spindle::testing::one_worker_virtual()) {
    spindle::Lock lock;
    std::vector<int> order;
    co_await lock.acquire();
    std::vector<spindle::JoinHandle<void>> hs;
    for (int i = 0; i < 5; ++i)
        hs.push_back(spindle::spawn([](spindle::Lock& l, std::vector<int>& o, int me) -> spindle::Task<void> {
            auto g = co_await l.scoped();
            o.push_back(me);
            co_await spindle::yield_now();
        }(lock, order, i)));
    co_await spindle::yield_now();
    EXPECT_TRUE(lock.locked());
    lock.release();
    EXPECT_FALSE(lock.locked());  // reserved for the first waiter
    EXPECT_THROW(lock.release(), std::logic_error);
    for (auto& h : hs) co_await h;
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_FALSE(lock.locked());
}

CO_TEST(SyncSmoke, LockMutualExclusion) {
    spindle::Lock lock;
    long counter = 0;
    std::vector<spindle::JoinHandle<void>> hs;
    for (int i = 0; i < 64; ++i)
        hs.push_back(spindle::spawn([](spindle::Lock& l, long& c) -> spindle::Task<void> {
            for (int k = 0; k < 2000; ++k) {
                co_await l.acquire();
                long v = c;
                if (k % 7 == 0) co_await spindle::yield_now();
                c = v + 1;
                l.release();
            }
        }(lock, counter)));
    for (auto& h : hs) co_await h;
    EXPECT_EQ(counter, 64 * 2000);
}

CO_TEST(SyncSmoke, SemaphoreBoundAndTimeouts) {
    spindle::Semaphore sem(3);
    std::atomic<int> inside{0}, max_inside{0};
    std::atomic<long> timeouts{0};
    std::vector<spindle::JoinHandle<void>> hs;
    for (int i = 0; i < 200; ++i)
        hs.push_back(spindle::spawn([](spindle::Semaphore& s, std::atomic<int>& in, std::atomic<int>& mx,
                                       std::atomic<long>& to, int me) -> spindle::Task<void> {
            for (int k = 0; k < 50; ++k) {
                try {
                    co_await spindle::wait_for(s.acquire(), std::chrono::microseconds((me * 7 + k) % 200));
                } catch (const spindle::TimeoutError&) {
                    to.fetch_add(1);
                    continue;
                }
                int v = in.fetch_add(1) + 1;
                int m = mx.load();
                while (v > m && !mx.compare_exchange_weak(m, v)) {
                }
                co_await spindle::yield_now();
                in.fetch_sub(1);
                s.release();
            }
        }(sem, inside, max_inside, timeouts, i)));
    for (auto& h : hs) co_await h;
    EXPECT_LE(max_inside.load(), 3);
    EXPECT_EQ(sem.value(), 3);
    EXPECT_FALSE(sem.locked());
}

CO_TEST(SyncSmoke, EventFromPlainThread) {
    spindle::Event ev;
    std::atomic<int> woke{0};
    std::vector<spindle::JoinHandle<void>> hs;
    for (int i = 0; i < 2000; ++i)
        hs.push_back(spindle::spawn([](spindle::Event& e, std::atomic<int>& w) -> spindle::Task<void> {
            co_await e.wait();
            w.fetch_add(1);
        }(ev, woke)));
    std::thread t([&] { ev.set(); });
    for (auto& h : hs) co_await h;
    t.join();
    EXPECT_EQ(woke.load(), 2000);
}

CO_TEST_OPTS(SyncSmoke, ConditionAndBarrier, spindle::testing::one_worker_virtual()) {
    spindle::Condition cond;
    int resource = 0;
    auto waiter = spindle::spawn([](spindle::Condition& c, int& r) -> spindle::Task<int> {
        auto g = co_await c.scoped();
        co_return co_await c.wait_for([&] { return r == 3 ? r : 0; });
    }(cond, resource));
    for (int i = 0; i < 3; ++i) {
        co_await spindle::sleep(1ms);
        auto g = co_await cond.scoped();
        ++resource;
        cond.notify_all();
    }
    EXPECT_EQ(co_await waiter, 3);

    spindle::Barrier b(3);
    std::vector<spindle::JoinHandle<std::size_t>> ws;
    for (int i = 0; i < 3; ++i) ws.push_back(spindle::spawn(b.wait()));
    std::vector<std::size_t> idx;
    for (auto& w : ws) idx.push_back(co_await w);
    std::sort(idx.begin(), idx.end());
    EXPECT_EQ(idx, (std::vector<std::size_t>{0, 1, 2}));
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_FALSE(b.broken());
}
