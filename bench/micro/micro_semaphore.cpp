// spindle::Semaphore(2) vs std::counting_semaphore(2): `threads` tasks on `threads`
// workers (std: OS threads), each kOps times: acquire, `cs` ns of busy work, release.
#include <semaphore>

#include "micro_common.hpp"

namespace {
constexpr long kOps = 2'000;
constexpr long kPermits = 2;

template <class Sys>
void BM_Semaphore(benchmark::State& st) {
    const int threads = static_cast<int>(st.range(0));
    const long cs = st.range(1);
    std::atomic<long> done{0};
    if constexpr (std::is_same_v<Sys, micro::Spindle>) {
        spindle::Semaphore sem(kPermits);
        micro::spindle_batches(st, static_cast<std::size_t>(threads), threads, [&](int) -> spindle::Task<void> {
            for (long i = 0; i < kOps; ++i) {
                co_await sem.acquire();
                micro::delay_ns(cs);
                sem.release();
            }
            done.fetch_add(kOps, std::memory_order_relaxed);  // relaxed: read after the joins
        });
        if (sem.value() != kPermits) st.SkipWithError("permit lost");
    } else {
        std::counting_semaphore<> sem(kPermits);
        micro::ThreadPool pool(threads);
        for (auto _ : st)
            pool.run([&](int) {
                for (long i = 0; i < kOps; ++i) {
                    sem.acquire();
                    micro::delay_ns(cs);
                    sem.release();
                }
                done.fetch_add(kOps, std::memory_order_relaxed);  // relaxed: read after the joins
            });
    }
    if (done.load() != static_cast<long>(st.iterations()) * threads * kOps) st.SkipWithError("lost operations");
    micro::per_op(st, static_cast<double>(threads * kOps));
}

void Args(benchmark::internal::Benchmark* b) {
    for (int threads : {1, 2, 4})
        for (int cs : {0, 500}) b->Args({threads, cs});
    b->ArgNames({"threads", "cs_ns"})->UseRealTime()->MinTime(0.05);
}
}  // namespace

BENCHMARK_TEMPLATE(BM_Semaphore, micro::Spindle)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Semaphore, micro::Std)->Apply(Args);
BENCHMARK_MAIN();
