// examples/lost_update.cpp — why async code needs a Lock, even on a single thread.
//
// Scenario (the credit/debit tutorial): credit() and debit() each read a shared
// balance, await some I/O, then write back what they read +1 or -1. The await
// between the read and the write is a switch point: while credit waits, debit reads
// the same stale balance, and whichever writes last overwrites the other — a "lost
// update". Guarding read-await-write with a spindle::Lock (asyncio's `async with
// lock:`) makes the two run one after the other.
//
// What to look for in the output:
//   - without the lock both tasks read 0, and the final balance is -1, not 0;
//     it takes 1000 ms (the two I/O waits overlap);
//   - with the lock debit reads 1 (credit's write), the final balance is 0,
//     and it takes 2000 ms: correctness costs the concurrency of that section.
//
// One worker and the virtual clock: the program interleaves exactly as asyncio
// would and prints the same lines on every run, instantly.
#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

namespace {

int balance = 0;  // the shared resource (one worker: one thread touches it)

long long elapsed_ms(std::chrono::nanoseconds since) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now() - since).count();
}

// Read, await I/O, write back: correct alone, a race when run concurrently.
spindle::Task<void> update(const char* who, int delta) {
    const int current = balance;  // 1. read
    std::printf("%s read: %d\n", who, current);
    co_await spindle::sleep(1s);  // 2. I/O: other tasks run meanwhile
    balance = current + delta;    // 3. write, based on the value read before
    std::printf("%s wrote: %d\n", who, balance);
}

// The same update inside the lock: `async with lock:`.
spindle::Task<void> locked_update(spindle::Lock& lock, const char* who, int delta) {
    auto guard = co_await lock.scoped();  // released when guard goes out of scope
    co_await update(who, delta);
}

spindle::Task<int> demo() {
    std::printf("-- without a lock\n");
    balance = 0;
    auto start = spindle::now();
    co_await spindle::gather(update("credit", +1), update("debit", -1));
    std::printf("final balance: %d (took %lld ms)\n", balance, elapsed_ms(start));
    const bool lost = balance != 0;
    std::printf("an update was lost: %s\n", lost ? "yes" : "no");

    std::printf("-- with spindle::Lock\n");
    spindle::Lock lock;
    balance = 0;
    start = spindle::now();
    co_await spindle::gather(locked_update(lock, "credit", +1), locked_update(lock, "debit", -1));
    std::printf("final balance: %d (took %lld ms)\n", balance, elapsed_ms(start));

    co_return (lost && balance == 0) ? 0 : 1;  // 0: both lessons shown
}

}  // namespace

int main() {
    return spindle::run(demo(), {.workers = 1, .virtual_time = true});
}
