// spindle::Lock vs std::mutex: `threads` tasks on `threads` workers (std: OS threads),
// each kOps times: acquire, `cs` ns of busy work, counter += 1, release.
#include "micro_common.hpp"

namespace {
constexpr long kOps = 2'000;

template <class Sys>
void BM_Lock(benchmark::State& st) {
    const int threads = static_cast<int>(st.range(0));
    const long cs = st.range(1);
    long counter = 0;
    if constexpr (std::is_same_v<Sys, micro::Spindle>) {
        spindle::Lock m;
        micro::spindle_batches(st, static_cast<std::size_t>(threads), threads, [&](int) -> spindle::Task<void> {
            for (long i = 0; i < kOps; ++i) {
                co_await m.acquire();
                micro::delay_ns(cs);
                ++counter;
                m.release();
            }
        });
    } else {
        std::mutex m;
        micro::ThreadPool pool(threads);
        for (auto _ : st)
            pool.run([&](int) {
                for (long i = 0; i < kOps; ++i) {
                    m.lock();
                    micro::delay_ns(cs);
                    ++counter;
                    m.unlock();
                }
            });
    }
    if (counter != static_cast<long>(st.iterations()) * threads * kOps) st.SkipWithError("lost increments");
    micro::per_op(st, static_cast<double>(threads * kOps));
}

void Args(benchmark::internal::Benchmark* b) {
    for (int threads : {1, 2, 4})
        for (int cs : {0, 50, 500}) b->Args({threads, cs});
    b->ArgNames({"threads", "cs_ns"})->UseRealTime()->MinTime(0.05);
}
}  // namespace

BENCHMARK_TEMPLATE(BM_Lock, micro::Spindle)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Lock, micro::Std)->Apply(Args);
BENCHMARK_MAIN();
