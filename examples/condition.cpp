// examples/condition.cpp — Condition: a lock plus "wait until the state is right".
//
// Scenario 1 (the incrementer): waiters A and B hold the condition's lock and call
// `wait_for([&] { return resource == 3; })`, which releases the lock while they
// wait and re-checks the predicate after every notification. An incrementer bumps
// the shared value every 500 ms and calls notify_all() each time. The waiters
// start their (1 s) work only once it reaches 3 — and since they work while
// holding the lock, the incrementer has to wait for them before its next step.
//
// Scenario 2 (the set/process pipeline): five setters each want to publish one
// item into a single shared slot; five processors each consume one. A setter that
// finds the slot full sleeps 2 s and retries; when it fills the slot it calls
// notify(1), waking exactly one processor. A processor that finds the slot empty
// calls wait() in a loop (the classic `while (!ready) co_await cond.wait();`).
//
// What to look for in the output: A and B "see resource is 3" at 1500 ms and
// 2500 ms, and the incrementer resumes only at 3500 ms; in the pipeline every item
// is processed exactly once, one per 2 s round, each by one woken processor.
//
// One worker and the virtual clock: deterministic output, asyncio's interleaving.
#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::chrono::nanoseconds start{};
long long ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now() - start).count();
}

// ---- 1. the incrementer
spindle::Task<void> waiter(spindle::Condition& cond, const int& resource, const char* name) {
    auto guard = co_await cond.scoped();  // wait_for needs the lock
    std::printf("[%4lld ms] task %s is waiting for resource to reach 3...\n", ms(), name);
    co_await cond.wait_for([&] { return resource == 3; });
    std::printf("[%4lld ms] task %s sees resource is %d, starting work\n", ms(), name, resource);
    co_await spindle::sleep(1s);  // works while holding the lock
}

spindle::Task<void> incrementer(spindle::Condition& cond, int& resource) {
    for (int i = 0; i < 5; ++i) {
        co_await spindle::sleep(500ms);
        auto guard = co_await cond.scoped();
        ++resource;
        std::printf("[%4lld ms] incrementer: resource is now %d\n", ms(), resource);
        cond.notify_all();
    }
}

// ---- 2. the set/process pipeline
std::optional<int> slot;  // the shared item

spindle::Task<void> set_item(spindle::Condition& cond, int value) {
    while (slot) {
        std::printf("[%5lld ms] %s: slot is full, sleeping 2 s\n", ms(), spindle::current_task_name().c_str());
        co_await spindle::sleep(2s);
    }
    auto guard = co_await cond.scoped();
    slot = value;
    std::printf("[%5lld ms] %s: set item %d\n", ms(), spindle::current_task_name().c_str(), value);
    cond.notify(1);  // wake one processor
}

spindle::Task<void> process_item(spindle::Condition& cond) {
    auto guard = co_await cond.scoped();
    while (!slot) {
        std::printf("[%5lld ms] %s: slot is empty, waiting\n", ms(), spindle::current_task_name().c_str());
        co_await cond.wait();
    }
    std::printf("[%5lld ms] %s: processing item %d\n", ms(), spindle::current_task_name().c_str(), *slot);
    slot.reset();
}

spindle::Task<void> demo() {
    std::printf("-- wait_for(resource == 3)\n");
    start = spindle::now();
    spindle::Condition cond;
    int resource = 0;
    co_await spindle::gather(waiter(cond, resource, "A"), waiter(cond, resource, "B"),
                             incrementer(cond, resource));

    std::printf("-- set/process pipeline with notify(1)\n");
    start = spindle::now();
    spindle::Condition pipe;
    std::vector<spindle::JoinHandle<void>> tasks;
    const int values[] = {10, 4, 48, 40, 45};
    for (int i = 0; i < 5; ++i)
        tasks.push_back(spindle::spawn(set_item(pipe, values[i]), "SetItem" + std::to_string(i + 1)));
    for (int i = 0; i < 5; ++i)
        tasks.push_back(spindle::spawn(process_item(pipe), "ProcessItem" + std::to_string(i + 1)));
    for (auto& t : tasks) co_await t;
    std::printf("[%5lld ms] all items processed\n", ms());
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 1, .virtual_time = true});
    return 0;
}
