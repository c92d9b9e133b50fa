// tests/engine/queue_attack_test.cpp — targeted attacks on Queue / LifoQueue /
// PriorityQueue (label "stress"). Each test names the bug it aims at in the comment
// above it. Now regression tests: all three bugs were fixed after this review (take()
// moves T once, straight into the caller's object; the heap sifts by swaps and undoes
// them; shutdown() no longer resets counts that an in-flight grant gives back).
// Results of the review at d6669de, before the fixes (Release, TSan; 2-core machine):
//   ThrowingMoveOnGetNowaitLeavesQueueUnchanged        fails every run (item lost, n_ != container)
//   ThrowingMoveOnAwaitedGetLeavesQueueUnchanged       fails every run
//   ThrowingMoveInWokenGetterKeepsItem                 fails every run
//   ThrowingCompareOnPutLeavesPriorityQueueUnchanged   fails every run (item replaced by moved-from)
//   ThrowingCompareOnGetLeavesPriorityQueueUnchanged   fails every run (same, pop path)
//   ImmediateShutdownDuringShortGrantKeepsCountsSane   fails every run (10/10; first hit in round 1-19 of 30):
//                                                      r_get_ underflows to SIZE_MAX, qsize()==1 when empty
//   ShutdownDuringShortGrantLeavesNoPhantomGetter      fails every run: live_getters=1 with no getter
//   StormCancelTimeoutPlainThreadsExactlyOnce          passes (control)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "co_test.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::JoinHandle;
using spindle::LifoQueue;
using spindle::PriorityQueue;
using spindle::Queue;
using spindle::QueueShutDown;
using spindle::Runtime;
using spindle::RuntimeOptions;
using spindle::Task;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kSanDiv = 4;
#else
constexpr int kSanDiv = 1;
#endif

inline void relax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

template <class T>
bool wait_done(const JoinHandle<T>& h, std::chrono::milliseconds limit) {
    const auto t0 = std::chrono::steady_clock::now();
    while (!h.done()) {
        if (std::chrono::steady_clock::now() - t0 > limit) return false;
        std::this_thread::yield();
    }
    return true;
}

// ───────────── 1. A throwing move of T while taking an item ─────────────
// queue.hpp promises: "If T's move throws, the operation fails with that exception and
// the queue is unchanged." take_now() does `out.emplace(storage_.pop())`: pop() moves
// the item out of the container and erases it (move #1), then optional::emplace moves
// the returned temporary into `out` (move #2). If move #2 throws, the item is already
// gone from the container but taken_locked() never ran: the item is lost and n_ counts
// one item more than the container holds (the next pop of "the last item" pops an empty
// deque: undefined behaviour). Same in GetAwaiter::await_suspend/await_resume.
struct Bomb {
    static inline int countdown = -1;  // moves left before one throws; < 0: never
    std::string s;
    explicit Bomb(std::string v) : s(std::move(v)) {}
    static void tick() {
        if (countdown >= 0 && countdown-- == 0) throw std::runtime_error("Bomb: move throws");
    }
    Bomb(Bomb&& o) : s() {
        tick();
        s = std::move(o.s);
    }
    Bomb& operator=(Bomb&& o) {
        tick();
        s = std::move(o.s);
        return *this;
    }
    Bomb(const Bomb&) = delete;
    Bomb& operator=(const Bomb&) = delete;
};

template <class Q>
void throwing_move_on_get(const char* kind, const std::vector<std::string>& expect_order) {
    for (int k = 0; k < 6; ++k) {
        Q q;
        Bomb::countdown = -1;
        q.put_nowait(Bomb("a"));
        q.put_nowait(Bomb("b"));
        Bomb::countdown = k;  // the k-th move from now throws
        bool threw = false;
        std::string got;
        try {
            Bomb x = q.get_nowait();
            got = x.s;
        } catch (const std::runtime_error&) {
            threw = true;
        }
        Bomb::countdown = -1;
        if (!threw) {
            EXPECT_EQ(got, expect_order[0]) << kind << " k=" << k;
            continue;
        }
        // The get failed: the queue must be exactly as before.
        const std::size_t n = q.qsize();
        EXPECT_EQ(n, 2U) << kind << " k=" << k << ": " << q.debug_state();
        Bomb first = q.get_nowait();
        EXPECT_EQ(first.s, expect_order[0])
            << kind << " k=" << k << ": a get that failed with T's move exception lost an item ("
            << q.debug_state() << ")";
        if (first.s != expect_order[0]) return;  // the container is out of step with n_: stop before UB
        Bomb second = q.get_nowait();
        EXPECT_EQ(second.s, expect_order[1]) << kind << " k=" << k;
    }
}

TEST(QueueAttack, ThrowingMoveOnGetNowaitLeavesQueueUnchanged) {
    throwing_move_on_get<Queue<Bomb>>("Queue", {"a", "b"});
    throwing_move_on_get<LifoQueue<Bomb>>("LifoQueue", {"b", "a"});
}

// The same through co_await q.get() (await_ready -> take_now), one worker.
CO_TEST_OPTS(QueueAttack, ThrowingMoveOnAwaitedGetLeavesQueueUnchanged, (RuntimeOptions{.workers = 1})) {
    for (int k = 0; k < 6; ++k) {
        Queue<Bomb> q;
        Bomb::countdown = -1;
        q.put_nowait(Bomb("a"));
        q.put_nowait(Bomb("b"));
        Bomb::countdown = k;
        bool threw = false;
        try {
            Bomb x = co_await q.get();
            (void)x;
        } catch (const std::runtime_error&) {
            threw = true;
        }
        Bomb::countdown = -1;
        if (!threw) continue;
        Bomb first = q.get_nowait();
        const bool ok = first.s == "a";
        EXPECT_TRUE(ok) << "k=" << k << ": co_await q.get() failed with T's move exception and lost item \"a\" (got \""
                        << first.s << "\"; " << q.debug_state() << ")";
        if (!ok) co_return;
    }
}

// A waiting getter (queued path): GetAwaiter::await_resume does
// `v.emplace(q.storage_.pop())` after claim_item_locked(); its catch says "the item
// stays, free for the next getter" — but with a throwing second move it is gone.
CO_TEST_OPTS(QueueAttack, ThrowingMoveInWokenGetterKeepsItem, (RuntimeOptions{.workers = 1})) {
    for (int k = 0; k < 6; ++k) {
        Queue<Bomb> q;
        Bomb::countdown = -1;
        auto h = spindle::spawn([](Queue<Bomb>& qq) -> Task<std::string> {
            Bomb x = co_await qq.get();
            co_return x.s;
        }(q));
        co_await spindle::yield_now();  // the getter waits
        q.put_nowait(Bomb("a"));        // handed to it
        q.put_nowait(Bomb("b"));
        Bomb::countdown = k;
        bool threw = false;
        try {
            std::string s = co_await h;
            (void)s;
        } catch (const std::runtime_error&) {
            threw = true;
        }
        Bomb::countdown = -1;
        if (!threw) continue;
        const std::size_t n = q.qsize();
        EXPECT_EQ(n, 2U) << "k=" << k << ": " << q.debug_state();
        Bomb first = q.get_nowait();
        const bool ok = first.s == "a";
        EXPECT_TRUE(ok) << "k=" << k << ": a woken getter whose take failed with T's move exception lost item \"a\" (got \""
                        << first.s << "\"; " << q.debug_state() << ")";
        if (!ok) co_return;
    }
}

// ───────────── 2. A throwing Compare in PriorityQueue ─────────────
// HeapStorage::push catches an exception from std::push_heap and pops the back
// ("leave the queue as it was"). But push_heap sifts up by moving parents down into
// the hole: when Compare throws after the first step, the back slot holds a *parent*
// that was moved down, and the parent's old slot holds a moved-from value. pop_back()
// then destroys a real item and leaves a moved-from one in the heap. pop() has no
// handler at all: pop_heap throwing in __adjust_heap loses the last item (held in a
// local) and leaves the top at the back with a moved-from hole.
struct Fuse {
    static inline int countdown = -1;  // comparisons left before one throws
    bool operator()(const std::string& a, const std::string& b) const {
        if (countdown >= 0 && countdown-- == 0) throw std::runtime_error("Fuse: compare throws");
        return a < b;
    }
};

std::vector<std::string> drain(PriorityQueue<std::string, Fuse>& q) {
    std::vector<std::string> out;
    while (!q.empty()) out.push_back(q.get_nowait());
    return out;
}

TEST(QueueAttack, ThrowingCompareOnPutLeavesPriorityQueueUnchanged) {
    const std::vector<std::string> before{"b", "c", "d", "e", "f", "g", "h"};
    for (int k = 0; k < 8; ++k) {
        PriorityQueue<std::string, Fuse> q;
        Fuse::countdown = -1;
        for (const auto& s : before) q.put_nowait(s);
        Fuse::countdown = k;
        bool threw = false;
        try {
            q.put_nowait("a");
        } catch (const std::runtime_error&) {
            threw = true;
        }
        Fuse::countdown = -1;
        if (!threw) continue;
        const std::vector<std::string> after = drain(q);
        EXPECT_EQ(after, before) << "k=" << k << ": a put that failed with Compare's exception changed the queue";
        if (after != before) return;
    }
}

TEST(QueueAttack, ThrowingCompareOnGetLeavesPriorityQueueUnchanged) {
    const std::vector<std::string> before{"a", "b", "c", "d", "e", "f", "g", "h"};
    for (int k = 0; k < 12; ++k) {
        PriorityQueue<std::string, Fuse> q;
        Fuse::countdown = -1;
        for (const auto& s : before) q.put_nowait(s);
        Fuse::countdown = k;
        bool threw = false;
        std::string got;
        try {
            got = q.get_nowait();
        } catch (const std::runtime_error&) {
            threw = true;
        }
        Fuse::countdown = -1;
        if (!threw) continue;
        const std::vector<std::string> after = drain(q);
        EXPECT_EQ(after, before) << "k=" << k << ": a get that failed with Compare's exception changed the queue";
        if (after != before) return;
    }
}

// ───────────── 3. shutdown() inside a short grant scan (D3 give-back) ─────────────
// deliver(): a scan that comes up short gives the reservation back:
//     r_get_ -= missing; getters_.live += missing;
// on the theory (D3) that the cancelled waiter's on_waiter_cancelled() "is about to
// take the count off". But shutdown() zeroes live (and, immediate, r_get_ and n_)
// between the reservation and the give-back:
//   P  put_nowait: n=1, dispatch reserves for X (live 1->0, r_get 0->1), unlocks,
//      starts grant_first over the getter cells
//   C  X.cancel(): cell WAITING->CANCELLED, on_waiter_cancelled: live 0->-1
//   C  shutdown(immediate): n=0, r_get=0, live=0 (wake_all(-1) grants nothing)
//   P  scan finds X CANCELLED: short, enqueued() unchanged -> give-back:
//      r_get = 0-1 = SIZE_MAX, live = 0+1 = 1
// Afterwards an empty, shut-down queue reports qsize() == 1 (0 - SIZE_MAX) while
// get_nowait() raises QueueShutDown; a getter woken before and resuming now would
// claim_item_locked() (r_get_ > 0) and pop an empty deque. Non-immediate: a phantom
// live getter (live_getters=1 forever), which makes every later get reserve the next
// item for nobody (hidden from get_nowait until the futile scan gives it back).
//
// The window P needs is widened without hooks: with the one worker busy, the N-1
// cancelled getters cannot resume and remove their cells, so front_ stays at 0 and P's
// scan walks N cells before it reaches X; C reacts as soon as it sees "handed=1".
struct GetterTally {
    std::atomic<int> got{0};
    std::atomic<int> cancelled{0};
    std::atomic<int> shut{0};
};

Task<void> tally_getter(Queue<int>& q, GetterTally& t) {
    try {
        const int v = co_await q.get();
        (void)v;
        t.got.fetch_add(1);
    } catch (const CancelledError&) {
        t.cancelled.fetch_add(1);
    } catch (const QueueShutDown&) {
        t.shut.fetch_add(1);
    }
}

Task<void> blocker(std::atomic<bool>& started, std::atomic<bool>& release) {
    started.store(true);
    release.wait(false);  // blocks the worker thread without using a core (2-core machines)
    co_return;
}

struct Released {
    std::atomic<bool>& r;
    ~Released() {
        r.store(true);
        r.notify_all();
    }
};

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

void shutdown_in_short_scan(bool immediate, int rounds) {
    const int n = 100000 / kSanDiv;
    for (int round = 0; round < rounds; ++round) {
        Queue<int> q;
        GetterTally tally;
        std::atomic<bool> started{false};
        std::atomic<bool> release{false};
        {
            Runtime rt(RuntimeOptions{.workers = 1});
            Released rel{release};
            std::vector<JoinHandle<void>> hs;
            hs.reserve(static_cast<std::size_t>(n));
            for (int i = 0; i < n; ++i) hs.push_back(rt.spawn(tally_getter(q, tally)));
            const auto t0 = std::chrono::steady_clock::now();
            while (q.approx_getters() != static_cast<std::uint64_t>(n)) {
                ASSERT_LT(std::chrono::steady_clock::now() - t0, 30s) << "getters never parked";
                std::this_thread::yield();
            }
            auto hb = rt.spawn(blocker(started, release));
            while (!started.load()) std::this_thread::yield();
            // The worker is now busy: cancel all getters but the last (X).
            for (int i = 0; i + 1 < n; ++i) (void)hs[static_cast<std::size_t>(i)].cancel();
            ASSERT_TRUE(contains(q.debug_state(), "live_getters=1 ")) << q.debug_state();
            std::atomic<bool> c_ready{false};
            std::thread c([&] {
                c_ready.store(true);
                const auto t1 = std::chrono::steady_clock::now();
                while (!contains(q.debug_state(), "handed=1 ")) {
                    if (std::chrono::steady_clock::now() - t1 > 10s) break;
                    for (int k = 0; k < 100; ++k) relax();
                }
                const std::string seen = q.debug_state();
                (void)hs.back().cancel();
                const std::string after_cancel = q.debug_state();
                q.shutdown(immediate);
                if (std::getenv("QA_DEBUG")) std::printf("C saw [%s] after cancel [%s] after shutdown [%s]\n", seen.c_str(), after_cancel.c_str(), q.debug_state().c_str());
            });
            while (!c_ready.load()) std::this_thread::yield();
            if (std::getenv("QA_DEBUG")) std::printf("before put: approx_getters=%llu\n", (unsigned long long)q.approx_getters());
            const auto tp = std::chrono::steady_clock::now();
            q.put_nowait(7);  // P
            if (std::getenv("QA_DEBUG")) std::printf("P put took %lld us, state [%s]\n", (long long)std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - tp).count(), q.debug_state().c_str());
            c.join();
            release.store(true);
            release.notify_all();
            for (auto& h : hs) ASSERT_TRUE(wait_done(h, 30s)) << "a getter never finished";
            ASSERT_TRUE(wait_done(hb, 30s));
        }
        const std::string st = q.debug_state();
        EXPECT_EQ(tally.got.load(), 0) << st;
        EXPECT_EQ(tally.cancelled.load(), n) << st;
        const std::size_t size = q.qsize();
        if (immediate) {
            EXPECT_EQ(size, 0U) << "round " << round << ": shutdown(immediate) discarded everything, yet qsize() = "
                                << size << " (" << st << ")";
            EXPECT_TRUE(contains(st, "handed=0 ")) << "round " << round << ": " << st;
        } else {
            EXPECT_EQ(size, 1U) << "round " << round << ": " << st;
        }
        const bool phantom = !contains(st, "live_getters=0 ");
        EXPECT_FALSE(phantom) << "round " << round << ": no getter waits, yet the queue counts one as live (" << st << ")";
        if (!immediate && size == 1) {
            const int v = q.get_nowait();
            EXPECT_EQ(v, 7);
        }
        if (::testing::Test::HasFailure()) {
            std::printf("failed in round %d of %d\n", round + 1, rounds);
            return;
        }
    }
}

}  // namespace

TEST(QueueAttack, ImmediateShutdownDuringShortGrantKeepsCountsSane) { shutdown_in_short_scan(true, 30); }

TEST(QueueAttack, ShutdownDuringShortGrantLeavesNoPhantomGetter) { shutdown_in_short_scan(false, 30); }

// ───────────── 4. Control storm: cancels, timeouts, plain threads, 2 workers ─────────────
// Bounded queue, producers/consumers as tasks (some through wait_for with tiny
// timeouts), a plain thread cancelling random tasks and doing put_nowait/get_nowait.
// Checks: every item is received at most once, sent == received + left over, and
// at rest the counts are back to zero (no reservation or live count leaks).
namespace {
struct Storm {
    explicit Storm(int ids) : seen(static_cast<std::size_t>(ids)) {}
    Queue<int> q{3};
    std::vector<std::atomic<int>> seen;
    std::atomic<long> sent{0};
    std::atomic<long> recv{0};
    std::atomic<long> dup{0};
    std::atomic<bool> stop{false};
    void got(int v) {
        if (seen[static_cast<std::size_t>(v)].fetch_add(1) != 0) dup.fetch_add(1);
        recv.fetch_add(1);
    }
};

Task<void> storm_producer(Storm& s, int base, int count) {
    for (int i = 0; i < count; ++i) {
        const int v = base + i;
        try {
            if (i % 3 == 0) {
                co_await spindle::wait_for(s.q.put(v), std::chrono::microseconds(1 + i % 7));
            } else {
                co_await s.q.put(v);
            }
            s.sent.fetch_add(1);
        } catch (const CancelledError&) {
        } catch (const spindle::TimeoutError&) {
        }
    }
}

Task<void> storm_consumer(Storm& s) {
    for (int i = 0; !s.stop.load(); ++i) {
        try {
            int v = -1;
            if (i % 2 == 0) {
                v = co_await spindle::wait_for(s.q.get(), std::chrono::microseconds(1 + i % 5));
            } else {
                v = co_await s.q.get();
            }
            s.got(v);
        } catch (const CancelledError&) {
        } catch (const spindle::TimeoutError&) {
        } catch (const QueueShutDown&) {
            co_return;
        }
    }
}
}  // namespace

TEST(QueueAttack, StormCancelTimeoutPlainThreadsExactlyOnce) {
    const int per = 6000 / kSanDiv;
    const int np = 4;
    for (int round = 0; round < 3; ++round) {
        Storm s(np * per + per);
        {
            Runtime rt(RuntimeOptions{.workers = 2});
            std::vector<JoinHandle<void>> prod, cons;
            for (int p = 0; p < np; ++p) prod.push_back(rt.spawn(storm_producer(s, p * per, per)));
            for (int c = 0; c < 4; ++c) cons.push_back(rt.spawn(storm_consumer(s)));
            std::atomic<bool> prod_done{false};
            std::thread t([&] {
                std::uint64_t x = 88172645463325252ULL + static_cast<std::uint64_t>(round);
                int next = np * per;
                while (!prod_done.load()) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if (x % 4 == 0) (void)prod[x / 4 % prod.size()].cancel();
                    else if (x % 4 == 1) (void)cons[x / 4 % cons.size()].cancel();
                    else if (x % 4 == 2 && next < np * per + per) {
                        try {
                            s.q.put_nowait(next);
                            ++next;
                            s.sent.fetch_add(1);
                        } catch (const spindle::QueueFull&) {
                        }
                    } else {
                        try {
                            s.got(s.q.get_nowait());
                        } catch (const spindle::QueueEmpty&) {
                        }
                    }
                    std::this_thread::yield();
                }
            });
            for (auto& h : prod) ASSERT_TRUE(wait_done(h, 60s)) << "a producer hangs: " << s.q.debug_state();
            prod_done.store(true);
            t.join();
            // Drain: consumers take what is left, then shutdown releases them.
            const auto t0 = std::chrono::steady_clock::now();
            while (!s.q.empty() && std::chrono::steady_clock::now() - t0 < 30s) std::this_thread::yield();
            s.stop.store(true);
            s.q.shutdown();
            for (auto& h : cons) ASSERT_TRUE(wait_done(h, 60s)) << "a consumer hangs: " << s.q.debug_state();
        }
        long left = 0;
        while (!s.q.empty()) {
            s.got(s.q.get_nowait());
            ++left;
        }
        EXPECT_EQ(s.dup.load(), 0) << "round " << round;
        EXPECT_EQ(s.sent.load(), s.recv.load()) << "round " << round << " (left over " << left << "): "
                                                << s.q.debug_state();
        const std::string st = s.q.debug_state();
        EXPECT_TRUE(contains(st, "stored=0 handed=0 slots_reserved=0 live_getters=0 live_putters=0 ")) << st;
        if (::testing::Test::HasFailure()) return;
    }
}
