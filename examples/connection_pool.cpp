// examples/connection_pool.cpp — a Semaphore limits how many tasks use a resource.
//
// Scenario (the semaphore tutorials): a database allows two open connections, or a
// web API two concurrent requests on your plan. Five requests start at once; a
// spindle::Semaphore(2) lets two in, and the others queue (FIFO) until one of the
// two leaves. `co_await pool.scoped()` is asyncio's `async with semaphore:`.
//
// What to look for in the output: the requests go through in waves of two —
// 0 and 1 at 0 ms, 2 and 3 at 1000 ms, 4 at 2000 ms — never more than two inside
// at once, and the whole batch takes 3000 ms. "free" is `value()`: when a request
// leaves while others wait, its permit goes straight to the next in line, so the
// counter does not rise in between (asyncio behaves the same).
//
// One worker and the virtual clock: deterministic output, asyncio's interleaving.
#include <spindle/spindle.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::chrono::nanoseconds start{};
int inside = 0;      // requests holding a connection right now
int max_inside = 0;  // the most seen at once

long long ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now() - start).count();
}

spindle::Task<void> request(spindle::Semaphore& pool, int id) {
    auto connection = co_await pool.scoped();  // waits while both are taken
    max_inside = std::max(max_inside, ++inside);
    std::printf("[%4lld ms] request %d: connected (free: %td)\n", ms(), id, pool.value());
    co_await spindle::sleep(1s);  // the query
    std::printf("[%4lld ms] request %d: done, releasing\n", ms(), id);
    --inside;
}  // `connection` is released here

spindle::Task<void> demo() {
    spindle::Semaphore pool(2);
    start = spindle::now();
    std::vector<spindle::Task<void>> requests;
    for (int id = 0; id < 5; ++id) requests.push_back(request(pool, id));
    co_await spindle::gather(std::move(requests));
    std::printf("all done after %lld ms; at most %d at once; free: %td\n", ms(), max_inside,
                pool.value());
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 1, .virtual_time = true});
    return 0;
}
