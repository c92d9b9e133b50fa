// examples/timeouts.cpp — don't wait forever: deadlines and cancellation.
//
// Scenario 1 (the tutorials' "use timeouts"): a task holds a Lock for 5 s (a slow
// operation). A client that cannot wait that long wraps its acquire in
// `spindle::wait_for(lock.acquire(), 1s)`: after 1 s the acquire is cancelled —
// it leaves the lock's queue, nothing is lost — and spindle::TimeoutError is
// thrown (asyncio.wait_for / TimeoutError). A second attempt with a longer
// deadline gets the lock when the holder releases it.
//
// Scenario 2 ("use cancel to stop tasks that would run forever"): a background
// poller loops forever. `handle.cancel()` delivers spindle::CancelledError at its
// current suspension point; the task may clean up, and must rethrow. Note that
// CancelledError is deliberately NOT a std::exception (like asyncio's, which is a
// BaseException), so a `catch (const std::exception&)` meant for ordinary errors
// cannot swallow the cancellation by accident.
//
// What to look for in the output: the timeout at 1000 ms while the lock stays held,
// the lock acquired at 5000 ms; the poller polls every second, is cancelled at
// 3500 ms, skips the std::exception handler, cleans up, and the handle reports
// cancelled() = true and a second cancel() = false (already done).
//
// One worker and the virtual clock: deterministic output, asyncio's interleaving.
#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>
#include <exception>

using namespace std::chrono_literals;

namespace {

std::chrono::nanoseconds start{};
long long ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now() - start).count();
}

spindle::Task<void> slow_holder(spindle::Lock& lock) {
    auto guard = co_await lock.scoped();
    std::printf("[%4lld ms] holder: got the lock, working for 5 s\n", ms());
    co_await spindle::sleep(5s);
    std::printf("[%4lld ms] holder: releasing\n", ms());
}

spindle::Task<void> impatient_client(spindle::Lock& lock) {
    try {
        co_await spindle::wait_for(lock.acquire(), 1s);
        lock.release();  // (had we got it in time)
    } catch (const spindle::TimeoutError&) {
        std::printf("[%4lld ms] client: gave up after 1 s (TimeoutError); locked() = %s\n", ms(),
                    lock.locked() ? "true" : "false");
    }
    co_await spindle::wait_for(lock.acquire(), 10s);  // a generous deadline this time
    std::printf("[%4lld ms] client: got the lock on the second try\n", ms());
    lock.release();
}

spindle::Task<void> poller() {
    try {
        for (int round = 1;; ++round) {
            co_await spindle::sleep(1s);
            std::printf("[%4lld ms] poller: poll #%d\n", ms(), round);
        }
    } catch (const std::exception& e) {  // ordinary errors only
        std::printf("poller: error %s\n", e.what());
    } catch (const spindle::CancelledError&) {
        std::printf("[%4lld ms] poller: cancelled, cleaning up\n", ms());
        throw;  // always rethrow a cancellation
    }
}

spindle::Task<void> demo() {
    std::printf("-- wait_for(lock.acquire(), 1s)\n");
    start = spindle::now();
    spindle::Lock lock;
    co_await spindle::gather(slow_holder(lock), impatient_client(lock));

    std::printf("-- cancelling a task that would run forever\n");
    start = spindle::now();
    auto handle = spindle::spawn(poller(), "poller");
    co_await spindle::sleep(3500ms);
    const bool requested = handle.cancel();
    std::printf("[%4lld ms] main: cancel() = %s\n", ms(), requested ? "true" : "false");
    try {
        co_await handle;
    } catch (const spindle::CancelledError&) {
        std::printf("[%4lld ms] main: the poller ended with CancelledError\n", ms());
    }
    std::printf("cancelled() = %s, second cancel() = %s\n", handle.cancelled() ? "true" : "false",
                handle.cancel() ? "true" : "false");
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 1, .virtual_time = true});
    return 0;
}
