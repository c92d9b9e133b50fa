// examples/barrier.cpp — Barrier: tasks meet at a gate; abort() breaks it.
//
// Scenario 1 (the Barrier tutorial): three workers prepare (1 s of I/O), then wait
// at a spindle::Barrier(3). Nobody passes until all three have arrived; then all
// pass together. `co_await barrier.wait()` returns each task's arrival index
// 0..2 (asyncio's too), handy to pick one task for a once-per-round job.
//
// Scenario 2: only two of three workers ever arrive — the third crashed. Rather
// than letting them wait forever, a supervisor calls `co_await barrier.abort()`:
// the barrier is broken, every task waiting on it gets spindle::BrokenBarrierError
// (asyncio.BrokenBarrierError), and so does every later wait().
//
// What to look for in the output: "passed" lines only after the third "waiting"
// line, the last arrival (C, index 2) passing first as in asyncio; after abort()
// the two waiting workers and a latecomer all report a broken barrier.
//
// One worker and the virtual clock: deterministic output, asyncio's interleaving.
#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

namespace {

std::chrono::nanoseconds start{};
long long ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now() - start).count();
}

spindle::Task<void> worker(spindle::Barrier& gate, const char* name) {
    std::printf("[%4lld ms] worker %s is preparing\n", ms(), name);
    co_await spindle::sleep(1s);  // some I/O
    std::printf("[%4lld ms] worker %s is waiting at the barrier\n", ms(), name);
    try {
        const std::size_t index = co_await gate.wait();
        std::printf("[%4lld ms] worker %s passed the barrier (arrival index %zu)\n", ms(), name, index);
    } catch (const spindle::BrokenBarrierError&) {
        std::printf("[%4lld ms] worker %s: the barrier is broken\n", ms(), name);
    }
}

spindle::Task<void> supervisor(spindle::Barrier& gate) {
    co_await spindle::sleep(5s);  // the third worker never came
    std::printf("[%4lld ms] supervisor: %zu of %zu arrived, aborting\n", ms(), gate.n_waiting(),
                gate.parties());
    co_await gate.abort();
}

spindle::Task<void> demo() {
    std::printf("-- three workers meet at Barrier(3)\n");
    start = spindle::now();
    spindle::Barrier gate(3);
    co_await spindle::gather(worker(gate, "A"), worker(gate, "B"), worker(gate, "C"));

    std::printf("-- only two arrive: abort()\n");
    start = spindle::now();
    spindle::Barrier broken_gate(3);
    co_await spindle::gather(worker(broken_gate, "A"), worker(broken_gate, "B"), supervisor(broken_gate));
    std::printf("[%4lld ms] broken() = %s\n", ms(), broken_gate.broken() ? "true" : "false");
    co_await worker(broken_gate, "latecomer");
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 1, .virtual_time = true});
    return 0;
}
