// examples/bounded_semaphore.cpp — BoundedSemaphore catches a release too many.
//
// Scenario (the semaphore tutorials): when acquire() and release() sit in different
// places (no `scoped()` guard to pair them), a bug can release twice. A plain
// Semaphore(2) accepts the extra release and silently becomes a Semaphore(3): the
// limit you relied on is gone. A BoundedSemaphore(2) refuses to go above its
// initial value and throws std::invalid_argument (asyncio's ValueError) at the
// faulty call, where the bug is.
//
// What to look for in the output: after the double release the plain semaphore
// lets three tasks in at once; the bounded one reports "released too many times"
// and keeps its value at 2.
//
// One worker and the virtual clock: deterministic output, asyncio's interleaving.
#include <spindle/spindle.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>

using namespace std::chrono_literals;

namespace {

int inside = 0;
int max_inside = 0;

spindle::Task<void> worker(spindle::Semaphore& sem) {
    co_await sem.acquire();
    max_inside = std::max(max_inside, ++inside);
    co_await spindle::sleep(1s);
    --inside;
    sem.release();
}

// The buggy pattern: one acquire, two releases.
void buggy_job(spindle::Semaphore& sem) {
    if (!sem.try_acquire()) return;
    sem.release();
    sem.release();  // oops: a second, stray release
}

spindle::Task<void> demo() {
    std::printf("-- Semaphore(2)\n");
    spindle::Semaphore plain(2);
    buggy_job(plain);
    std::printf("value after the stray release: %td\n", plain.value());
    co_await spindle::gather(worker(plain), worker(plain), worker(plain));
    std::printf("tasks inside at once: %d (the limit was 2)\n", max_inside);

    std::printf("-- BoundedSemaphore(2)\n");
    spindle::BoundedSemaphore bounded(2);
    try {
        buggy_job(bounded);  // BoundedSemaphore is a Semaphore
    } catch (const std::invalid_argument& e) {
        std::printf("safety triggered: %s\n", e.what());
    }
    std::printf("value: %td\n", bounded.value());
    max_inside = 0;
    co_await spindle::gather(worker(bounded), worker(bounded), worker(bounded));
    std::printf("tasks inside at once: %d\n", max_inside);
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 1, .virtual_time = true});
    return 0;
}
