// examples/deadlock_dump.cpp — a stuck program that explains itself.
//
// Two tasks take the same two locks in opposite orders (the classic lock-order
// deadlock). With RuntimeOptions::deadlock_timeout set, block_on notices that every
// task has been parked for that long with nothing that could wake them, and throws
// spindle::DeadlockError whose what() lists every task and what it waits on.
//
// The locks live in bank()'s frame, so bank() must not finish before the tasks that
// use them: when spindle::run shuts down it cancels every task at once, and a
// TaskGroup's join() waits for every child even when it is cancelled. (Two plain
// `co_await t1; co_await t2;` would not: cancelled inside the first, bank() would
// leave — destroying the locks — while the second transfer still waits on one.)
#include <cstdio>

#include <spindle/spindle.hpp>

using namespace std::chrono_literals;

namespace {

spindle::Task<void> transfer(spindle::Lock& from, spindle::Lock& to, spindle::Event& have, spindle::Event& other) {
    auto first = co_await from.scoped();
    have.set();
    co_await other.wait();              // make sure the other task holds its first lock
    auto second = co_await to.scoped();  // ...and wait for it forever
}

spindle::Task<void> bank() {
    spindle::Lock alice;
    spindle::Lock bob;
    spindle::Event a_held;
    spindle::Event b_held;
    std::printf("lock alice at %p, lock bob at %p\n", static_cast<void*>(&alice), static_cast<void*>(&bob));
    spindle::TaskGroup group;
    group.spawn(transfer(alice, bob, a_held, b_held), "alice->bob");
    group.spawn(transfer(bob, alice, b_held, a_held), "bob->alice");
    co_await group.join();
}

}  // namespace

int main() {
    try {
        spindle::run(bank(), spindle::RuntimeOptions{.workers = 2, .deadlock_timeout = 200ms});
        std::printf("no deadlock?\n");
        return 1;
    } catch (const spindle::DeadlockError& e) {
        std::printf("%s", e.what());
        return 0;
    }
}
