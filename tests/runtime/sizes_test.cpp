// What a parked task costs (issue 18, memory_parked): the task header and the awaiters
// that live in a parked frame. Static asserts, so that a field added to any of them
// fails the build of this test instead of silently moving every parked frame up a
// mimalloc size class (a frame parked on an Event: 224 bytes = 16 of coroutine
// bookkeeping, the header, the promise's continuation, the parameters and the
// awaiter; 256 before 2026-12-04). The sizes are x86-64 / LP64 ones (the platform the
// project builds on); the test prints them.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <utility>

#include <spindle/spindle.hpp>

namespace {

using spindle::detail::SyncWait;
using spindle::detail::TaskHeader;
using spindle::detail::WaitPosition;

using EventWait = decltype(std::declval<spindle::Event&>().wait());
using LockAcquire = decltype(std::declval<spindle::Lock&>().acquire());
using SemaphoreAcquire = decltype(std::declval<spindle::Semaphore&>().acquire());
using QueueGet = decltype(std::declval<spindle::Queue<long>&>().get());
using JoinAwait = decltype(std::declval<spindle::JoinHandle<long>&>().operator co_await());

static_assert(sizeof(void*) != 8 || sizeof(TaskHeader) <= 120, "TaskHeader grew: every task's frame grows with it");
static_assert(sizeof(void*) != 8 || sizeof(WaitPosition) == 8, "a waiter's position is one cell pointer");
static_assert(sizeof(void*) != 8 || sizeof(SyncWait) <= 24, "SyncWait is in every waiting awaiter");
static_assert(sizeof(void*) != 8 || sizeof(EventWait) <= 32, "Event::wait()'s awaiter (memory_parked)");
static_assert(sizeof(void*) != 8 || sizeof(LockAcquire) <= 48, "Lock::acquire()'s awaiter");
static_assert(sizeof(void*) != 8 || sizeof(SemaphoreAcquire) <= 48, "Semaphore::acquire()'s awaiter");
static_assert(sizeof(void*) != 8 || sizeof(QueueGet) <= 48, "Queue<long>::get()'s awaiter");
static_assert(sizeof(void*) != 8 || sizeof(JoinAwait) <= 64, "a JoinHandle's awaiter");

TEST(Sizes, ParkedTaskPartsStayWithinTheirBudgets) {
    std::printf("TaskHeader %zu, WaitPosition %zu, SyncWait %zu, Event::wait %zu, Lock::acquire %zu, "
                "Semaphore::acquire %zu, Queue<long>::get %zu, JoinHandle await %zu bytes\n",
                sizeof(TaskHeader), sizeof(WaitPosition), sizeof(SyncWait), sizeof(EventWait), sizeof(LockAcquire),
                sizeof(SemaphoreAcquire), sizeof(QueueGet), sizeof(JoinAwait));
    // Event::wait()'s awaiter is its event pointer and its SyncWait, whose own spare
    // byte holds the awaiter's flag (no [[no_unique_address]] tail-padding tricks: see
    // sync_wait.hpp for the g++ 12 fault they met).
    EXPECT_EQ(sizeof(EventWait), sizeof(void*) + sizeof(SyncWait));
}

}  // namespace
