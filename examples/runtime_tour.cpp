// examples/runtime_tour.cpp — the runtime at work: spawn, join, gather, timeouts,
// cancellation and to_thread, with the virtual clock so it runs instantly.
#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

namespace {

spindle::Task<int> fetch(std::string what, std::chrono::milliseconds latency) {
    co_await spindle::sleep(latency);
    std::printf("[%5lld ms] %s fetched %s\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now()).count()),
                spindle::current_task_name().c_str(), what.c_str());
    co_return static_cast<int>(what.size());
}

spindle::Task<void> tour() {
    // 1. spawn + join: three requests run concurrently, so this takes 300 ms, not 600.
    auto a = spindle::spawn(fetch("users", 100ms), "users");
    auto b = spindle::spawn(fetch("orders", 200ms), "orders");
    auto c = spindle::spawn(fetch("stock", 300ms), "stock");
    int total = co_await a + co_await b + co_await c;
    std::printf("joined: %d bytes\n", total);

    // 2. gather: the same, as one expression.
    auto [x, y] = co_await spindle::gather(fetch("left", 50ms), fetch("right", 80ms));
    std::printf("gathered: %d + %d\n", x, y);

    // 3. wait_for: give up on a slow request; the request is cancelled.
    try {
        co_await spindle::wait_for(fetch("slow report", 10s), 1s);
    } catch (const spindle::TimeoutError& e) {
        std::printf("timed out: %s\n", e.what());
    }

    // 4. cancellation: a task stuck forever is cancelled from outside.
    auto stuck = spindle::spawn(fetch("never", 24h), "stuck");
    co_await spindle::sleep(10ms);
    stuck.cancel();
    try {
        co_await stuck;
    } catch (const spindle::CancelledError&) {
        std::printf("stuck task cancelled: %s\n", stuck.cancelled() ? "yes" : "no");
    }

    // 5. to_thread: blocking work off the workers.
    int sum = co_await spindle::to_thread([] {
        int s = 0;
        for (int i = 1; i <= 100; ++i) s += i;
        return s;
    });
    std::printf("to_thread computed %d\n", sum);
}

}  // namespace

int main() {
    spindle::run(tour(), {.workers = 2, .virtual_time = true});
    return 0;
}
