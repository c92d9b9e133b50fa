// BiasedLock (spindle/runtime/detail/biased_lock.hpp): the Queue's spin lock, whose
// usual thread takes it with plain stores and whose other threads revoke that bias with
// a membarrier. Each test targets one invariant of its header, in both fence modes
// (membarrier, and the symmetric seq_cst fences used where membarrier is refused):
// the bias is armed only after kRebiasAfter acquisitions in a row (B4), another thread
// takes it away at once (B1's revocation), and under threads that keep arming and
// revoking it, no two holders are ever inside together (B1) and each holder sees the
// previous one's writes (B3): a plain counter loses no increment, and TSan/ASan see
// the plain data written from both sides (spindle's own TSan build leaves the lock's
// annotations out, so that TSan judges the lock's atomics alone).
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "cpu_pin.hpp"
#include "spindle/runtime/detail/biased_lock.hpp"

using spindle::detail::BiasedLock;

namespace {

// Both sides of a fence pair must run at once on two CPUs (cpu_pin.hpp).
struct PinGuard {
    cpu_set_t saved{};
    bool ok;
    explicit PinGuard(int n) : ok(pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0) {
        if (ok) ok = spindle::testing::pin_to_nth_cpu(n);
    }
    ~PinGuard() {
        if (ok) pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    }
};

class BiasedLockTest : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        if (GetParam() && !spindle::detail::biased_lock_asymmetric())
            GTEST_SKIP() << "membarrier is not available here";
    }
};

std::string mode_name(const ::testing::TestParamInfo<bool>& i) { return i.param ? "Membarrier" : "Symmetric"; }

}  // namespace

TEST_P(BiasedLockTest, AThreadBecomesTheOwnerOnlyAfterARunOfAcquisitions) {
    BiasedLock l(GetParam());
    for (unsigned i = 0; i + 1 < BiasedLock::kRebiasAfter; ++i) {
        const bool owner = l.lock();
        EXPECT_FALSE(owner);
        l.unlock(owner);
    }
    EXPECT_FALSE(l.biased_to_me()) << "armed one acquisition early";
    bool owner = l.lock();
    EXPECT_FALSE(owner) << "the arming acquisition is a shared one";
    l.unlock(owner);
    EXPECT_TRUE(l.biased_to_me());
    owner = l.lock();
    EXPECT_TRUE(owner) << "the owner path after the arming";
    l.unlock(owner);
}

TEST_P(BiasedLockTest, AnotherThreadTakesTheBiasAwayAndTheCountStartsAgain) {
    BiasedLock l(GetParam());
    for (unsigned i = 0; i < BiasedLock::kRebiasAfter; ++i) l.unlock(l.lock());
    ASSERT_TRUE(l.biased_to_me());
    bool other_owner = true;
    bool other_biased = true;
    std::thread([&] {
        other_owner = l.lock();
        l.unlock(other_owner);
        other_biased = l.biased_to_me();
    }).join();
    EXPECT_FALSE(other_owner) << "a non-owner never takes the owner path";
    EXPECT_FALSE(other_biased) << "one acquisition does not arm the bias";
    EXPECT_FALSE(l.biased_to_me()) << "the revocation un-armed it";
    bool owner = l.lock();
    EXPECT_FALSE(owner);
    l.unlock(owner);
    // The old owner starts a new run: armed again after kRebiasAfter in a row (one done).
    for (unsigned i = 1; i + 1 < BiasedLock::kRebiasAfter; ++i) l.unlock(l.lock());
    EXPECT_FALSE(l.biased_to_me());
    l.unlock(l.lock());
    EXPECT_TRUE(l.biased_to_me());
}

// Ids are never reused: an owner whose thread has exited is revoked by the next thread
// like a live one, and that thread does not inherit the owner path.
TEST_P(BiasedLockTest, AnOwnerThatExitedIsRevokedLikeAnyOther) {
    BiasedLock l(GetParam());
    std::uint64_t plain = 0;  // guarded by the lock; read after the joins
    bool armed = false;
    std::thread([&] {
        for (unsigned i = 0; i <= BiasedLock::kRebiasAfter; ++i) {
            const bool o = l.lock();
            ++plain;
            l.unlock(o);
        }
        armed = l.biased_to_me();
    }).join();
    ASSERT_TRUE(armed);
    EXPECT_FALSE(l.biased_to_me());
    bool owner = true;
    std::thread([&] {
        owner = l.lock();
        ++plain;
        l.unlock(owner);
    }).join();
    EXPECT_FALSE(owner) << "a new thread took the dead owner's path";
    EXPECT_EQ(plain, BiasedLock::kRebiasAfter + 2U);
}

// An owner that takes the lock without pause on one CPU, and a revoker on the other
// that strikes as soon as the owner has taken the owner path again (so each
// revocation meets an owner that is inside or entering), for a bounded time. A holder
// checks that no one else entered while it was inside (an occupant word written and
// re-read with plain relaxed accesses, no RMW that would fence; now and then a long
// stay), and increments plain counters: a broken B1 shows as an intruder or a lost
// increment, a broken B3 as a race under TSan/ASan.
TEST_P(BiasedLockTest, NoTwoHoldersWhileTheBiasIsRevokedAgainAndAgain) {
    using clk = std::chrono::steady_clock;
    const auto budget = std::chrono::milliseconds(static_cast<long>(300 * SPINDLE_STRESS_SCALE));
    BiasedLock l(GetParam());
    std::uint64_t counter = 0;  // plain: guarded by the lock
    std::uint64_t mirror = 0;   // plain: always equal to counter outside the lock
    std::atomic<int> occupant{0};
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> owner_entries{0};  // the owner's owner-path acquisitions
    std::atomic<std::uint64_t> intruders{0}, total{0}, revocations{0};
    std::atomic<int> ready{0};

    auto critical = [&](int id, unsigned i) -> std::uint64_t {
        std::uint64_t bad = 0;
        // relaxed (occupant, here and below): a probe ordered by the lock under test,
        // deliberately without an RMW or fence of its own.
        occupant.store(id, std::memory_order_relaxed);
        if (counter != mirror) ++bad;
        ++counter;
        const int stay = (i % 64 == 0) ? 2000 : 4;
        for (int spin = 0; spin < stay; ++spin) {
            if (occupant.load(std::memory_order_relaxed) != id) ++bad;  // relaxed: as above
        }
        ++mirror;
        occupant.store(0, std::memory_order_relaxed);  // relaxed: as above
        return bad;
    };
    std::thread owner([&] {
        PinGuard pin(0);
        ready.fetch_add(1);
        while (ready.load() < 2) std::this_thread::yield();
        std::uint64_t mine = 0, bad = 0;
        for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {  // relaxed: a stop flag, joined after
            const bool o = l.lock();
            bad += critical(1, i);
            l.unlock(o);
            // relaxed: a signal for the revoker to strike; no data.
            if (o) owner_entries.fetch_add(1, std::memory_order_relaxed);
            ++mine;
        }
        intruders.fetch_add(bad);
        total.fetch_add(mine);
    });
    std::thread revoker([&] {
        PinGuard pin(1);
        ready.fetch_add(1);
        while (ready.load() < 2) std::this_thread::yield();
        std::uint64_t mine = 0, bad = 0, seen = 0;
        for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {  // relaxed: a stop flag, joined after
            // relaxed: as above.
            const std::uint64_t e = owner_entries.load(std::memory_order_relaxed);
            if (e == seen) {
                std::this_thread::yield();
                continue;
            }
            seen = e;
            const bool o = l.lock();
            bad += critical(2, i);
            l.unlock(o);
            if (!o) revocations.fetch_add(1);
            ++mine;
        }
        intruders.fetch_add(bad);
        total.fetch_add(mine);
    });
    const auto t0 = clk::now();
    while (clk::now() - t0 < budget) std::this_thread::yield();
    stop.store(true);
    owner.join();
    revoker.join();
    EXPECT_EQ(intruders.load(), 0U);
    EXPECT_EQ(counter, total.load()) << "an increment was lost: two holders at once";
    EXPECT_EQ(counter, mirror);
    EXPECT_GT(owner_entries.load(), 10U) << "the owner path hardly ran";
    EXPECT_GT(revocations.load(), 10U) << "hardly any revocation: the test proved nothing";
    std::printf("owner-path entries %llu, revocations %llu, acquisitions %llu\n",
                static_cast<unsigned long long>(owner_entries.load()),
                static_cast<unsigned long long>(revocations.load()), static_cast<unsigned long long>(total.load()));
}

INSTANTIATE_TEST_SUITE_P(Modes, BiasedLockTest, ::testing::Values(true, false), mode_name);
