// spindle::Queue<T> vs a std::mutex + 2 condition_variable ring buffer: `producers`
// tasks put kItems in total, one consumer gets them; capacity per argument. Spindle on
// 2 workers; std on producers + 1 OS threads. ns/op is per item. Built only when
// spindle/sync/queue.hpp exists (the Queue is being written on another branch).
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "micro_common.hpp"

#include "spindle/sync/queue.hpp"

namespace {
constexpr long kItems = 20'000;

struct StdQueue {
    std::mutex m;
    std::condition_variable not_full, not_empty;
    std::vector<std::uint64_t> buf;
    std::size_t head = 0, count = 0;
    explicit StdQueue(std::size_t cap) : buf(cap) {}
    void put(std::uint64_t v) {
        {
            std::unique_lock lk(m);
            not_full.wait(lk, [&] { return count < buf.size(); });
            buf[(head + count) % buf.size()] = v;
            ++count;
        }
        not_empty.notify_one();
    }
    std::uint64_t get() {
        std::uint64_t v = 0;
        {
            std::unique_lock lk(m);
            not_empty.wait(lk, [&] { return count > 0; });
            v = buf[head];
            head = (head + 1) % buf.size();
            --count;
        }
        not_full.notify_one();
        return v;
    }
};

template <class Sys>
void BM_QueueMpsc(benchmark::State& st) {
    const int producers = static_cast<int>(st.range(0));
    const auto cap = static_cast<std::ptrdiff_t>(st.range(1));
    const long per = kItems / producers;
    const auto n = static_cast<std::uint64_t>(per * producers);
    std::uint64_t sum = 0;
    if constexpr (std::is_same_v<Sys, micro::Spindle>) {
        spindle::Queue<std::uint64_t> q(cap);
        micro::spindle_batches(st, 2, producers + 1, [&](int i) -> spindle::Task<void> {
            if (i == producers) {
                for (std::uint64_t k = 0; k < n; ++k) {
                    const std::uint64_t v = co_await q.get();
                    sum += v;
                }
                co_return;
            }
            for (long k = 0; k < per; ++k) {
                auto item = static_cast<std::uint64_t>(i * per + k + 1);
                co_await q.put(std::move(item));
            }
        });
    } else {
        StdQueue q(static_cast<std::size_t>(cap));
        micro::ThreadPool pool(producers + 1);
        for (auto _ : st)
            pool.run([&](int i) {
                if (i == producers) {
                    for (std::uint64_t k = 0; k < n; ++k) sum += q.get();
                    return;
                }
                for (long k = 0; k < per; ++k) q.put(static_cast<std::uint64_t>(i * per + k + 1));
            });
    }
    if (sum != static_cast<std::uint64_t>(st.iterations()) * (n * (n + 1) / 2)) st.SkipWithError("wrong sum");
    micro::per_op(st, static_cast<double>(n));
}

void Args(benchmark::internal::Benchmark* b) {
    for (int p : {1, 4})
        for (int cap : {1, 1024}) b->Args({p, cap});
    b->ArgNames({"producers", "capacity"})->UseRealTime()->MinTime(0.05);
}
}  // namespace

BENCHMARK_TEMPLATE(BM_QueueMpsc, micro::Spindle)->Apply(Args);
BENCHMARK_TEMPLATE(BM_QueueMpsc, micro::Std)->Apply(Args);

BENCHMARK_MAIN();
