// examples/cache_stampede.cpp — many tasks want the same data: fetch it once.
//
// Scenario (the cache tutorial): five requests need the profile of user 42. Each
// first looks in a cache; on a miss it fetches from the (slow) website and fills
// the cache. Run concurrently, all five look before the first fetch has returned,
// all five miss, and the website is hit five times: a "cache stampede".
//
// The fix is double-checked locking with a spindle::Lock: check the cache without
// the lock (the fast path once it is filled); on a miss take the lock and check
// again, because another task may have filled the cache while this one waited for
// the lock. Only the first task fetches; the others wait, then hit the cache.
//
// What to look for in the output: "fetches: 5" without the lock, "fetches: 1" with
// it; tasks 1..4 report a hit *after waiting for the lock*, and a request arriving
// later hits the cache without touching the lock at all.
//
// One worker and the virtual clock: deterministic output, asyncio's interleaving.
#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct Cache {
    std::map<int, std::string> entries;
    int fetches = 0;  // how many times the website was hit
};

spindle::Task<std::string> fetch_from_website(Cache& cache, int user) {
    ++cache.fetches;
    co_await spindle::sleep(500ms);  // the slow remote request
    co_return "profile of user " + std::to_string(user);
}

// Check, then fetch: every task that looks during the fetch misses.
spindle::Task<std::string> get_naive(Cache& cache, int task, int user) {
    if (auto it = cache.entries.find(user); it != cache.entries.end()) co_return it->second;
    std::printf("task %d: cache miss, fetching\n", task);
    std::string data = co_await fetch_from_website(cache, user);
    cache.entries[user] = data;
    co_return data;
}

// Double-checked: a fast path without the lock, a second check under it.
spindle::Task<std::string> get_locked(Cache& cache, spindle::Lock& lock, int task, int user) {
    if (auto it = cache.entries.find(user); it != cache.entries.end()) {
        std::printf("task %d: cache hit (no lock taken)\n", task);
        co_return it->second;
    }
    auto guard = co_await lock.scoped();
    if (auto it = cache.entries.find(user); it != cache.entries.end()) {
        std::printf("task %d: cache hit after waiting for the lock\n", task);
        co_return it->second;
    }
    std::printf("task %d: cache miss, fetching\n", task);
    std::string data = co_await fetch_from_website(cache, user);
    cache.entries[user] = data;
    co_return data;
}

spindle::Task<void> demo() {
    std::printf("-- without a lock\n");
    Cache naive;
    std::vector<spindle::Task<std::string>> requests;
    for (int t = 0; t < 5; ++t) requests.push_back(get_naive(naive, t, 42));
    co_await spindle::gather(std::move(requests));
    std::printf("fetches: %d\n", naive.fetches);

    std::printf("-- with a Lock, double-checked\n");
    Cache cache;
    spindle::Lock lock;
    requests.clear();
    for (int t = 0; t < 5; ++t) requests.push_back(get_locked(cache, lock, t, 42));
    auto results = co_await spindle::gather(std::move(requests));
    std::printf("task 0 got \"%s\"\n", results[0].c_str());
    std::string late = co_await get_locked(cache, lock, 5, 42);  // the cache is warm now
    std::printf("task 5 got \"%s\"\n", late.c_str());
    std::printf("fetches: %d\n", cache.fetches);
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 1, .virtual_time = true});
    return 0;
}
