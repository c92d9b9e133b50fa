// examples/producer_consumer.cpp — a Queue between a producer and two workers.
//
// Scenario (the Queue tutorial): a producer queues six jobs; two workers take them
// and spend 1 s on each. The queue is bounded (maxsize 2), so a producer faster
// than its workers is slowed down: `co_await q.put(job)` waits while the queue is
// full (backpressure) instead of letting it grow without limit. Each worker calls
// `q.task_done()` when it has finished a job, and `co_await q.join()` waits until
// every job put so far is done — not merely taken. Then `q.shutdown()` (Python
// 3.13's Queue.shutdown) tells the workers there will be no more work: their
// pending `get()` throws spindle::QueueShutDown and they leave their loop cleanly.
// At the end: the non-waiting calls, and a PriorityQueue, which hands out the
// lowest item first (LifoQueue hands out the newest).
//
// What to look for in the output: the producer gets two jobs ahead, then waits;
// jobs are taken in order, two at a time, one wave per second; join() returns at
// 3000 ms, when the last job is done; both workers stop by QueueShutDown.
//
// One worker and the virtual clock: deterministic output, asyncio's interleaving.
#include <spindle/spindle.hpp>
#include <spindle/sync/queue.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

namespace {

std::chrono::nanoseconds start{};
long long ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now() - start).count();
}

spindle::Task<void> producer(spindle::Queue<int>& q, int jobs) {
    for (int job = 1; job <= jobs; ++job) {
        co_await q.put(job);  // waits while the queue is full
        std::printf("[%4lld ms] producer: queued job %d\n", ms(), job);
    }
}

spindle::Task<void> worker(spindle::Queue<int>& q, std::string name) {
    try {
        for (;;) {
            const int job = co_await q.get();  // waits while the queue is empty
            std::printf("[%4lld ms] %s: working on job %d\n", ms(), name.c_str(), job);
            co_await spindle::sleep(1s);
            q.task_done();  // one job fully handled: join() counts these
        }
    } catch (const spindle::QueueShutDown&) {
        std::printf("[%4lld ms] %s: queue shut down, stopping\n", ms(), name.c_str());
    }
}

spindle::Task<void> demo() {
    start = spindle::now();
    spindle::Queue<int> q(2);  // at most two jobs waiting
    auto w1 = spindle::spawn(worker(q, "worker 1"));
    auto w2 = spindle::spawn(worker(q, "worker 2"));

    co_await producer(q, 6);
    std::printf("[%4lld ms] main: all jobs queued, waiting for them to be done\n", ms());
    co_await q.join();
    std::printf("[%4lld ms] main: join() returned, qsize() = %zu\n", ms(), static_cast<std::size_t>(q.qsize()));

    try {
        (void)q.get_nowait();  // never waits
    } catch (const spindle::QueueEmpty&) {
        std::printf("get_nowait() on an empty queue: QueueEmpty\n");
    }

    q.shutdown();  // no more work: the workers' get() throws QueueShutDown
    co_await w1;
    co_await w2;

    spindle::Queue<int> tiny(1);
    tiny.put_nowait(1);
    try {
        tiny.put_nowait(2);
    } catch (const spindle::QueueFull&) {
        std::printf("put_nowait() on a full queue: QueueFull (full() = %s)\n", tiny.full() ? "true" : "false");
    }

    spindle::PriorityQueue<int> urgent;  // lowest first
    for (int p : {3, 1, 2}) urgent.put_nowait(p);
    std::printf("PriorityQueue order:");
    while (!urgent.empty()) std::printf(" %d", urgent.get_nowait());
    std::printf("\n");
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 1, .virtual_time = true});
    return 0;
}
