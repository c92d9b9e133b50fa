// spindle::Barrier vs std::barrier: `parties` tasks, kRounds rounds per iteration.
// Spindle on 2 workers; std on `parties` OS threads. ns/op is per round.
#include <barrier>

#include "micro_common.hpp"

namespace {
constexpr long kRounds = 200;

template <class Sys>
void BM_Barrier(benchmark::State& st) {
    const int parties = static_cast<int>(st.range(0));
    std::atomic<long> leaders{0};
    if constexpr (std::is_same_v<Sys, micro::Spindle>) {
        spindle::Barrier b(static_cast<std::size_t>(parties));
        micro::spindle_batches(st, 2, parties, [&](int) -> spindle::Task<void> {
            for (long i = 0; i < kRounds; ++i) {
                const std::size_t index = co_await b.wait();
                if (index == 0) leaders.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after joins
            }
        });
    } else {
        auto on_done = [&]() noexcept { leaders.fetch_add(1, std::memory_order_relaxed); };  // relaxed: as above
        std::barrier<decltype(on_done)> b(parties, on_done);
        micro::ThreadPool pool(parties);
        for (auto _ : st)
            pool.run([&](int) {
                for (long i = 0; i < kRounds; ++i) b.arrive_and_wait();
            });
    }
    if (leaders.load() != static_cast<long>(st.iterations()) * kRounds) st.SkipWithError("rounds lost");
    micro::per_op(st, static_cast<double>(kRounds));
}

void Args(benchmark::internal::Benchmark* b) {
    for (int p : {2, 4, 16}) b->Arg(p);
    b->ArgNames({"parties"})->UseRealTime()->MinTime(0.05);
}
}  // namespace

BENCHMARK_TEMPLATE(BM_Barrier, micro::Spindle)->Apply(Args);
BENCHMARK_TEMPLATE(BM_Barrier, micro::Std)->Apply(Args);
BENCHMARK_MAIN();
