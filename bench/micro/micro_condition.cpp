// spindle::Condition (+ its Lock) vs std::mutex + std::condition_variable: two tasks
// take turns (wait until turn == mine; flip; notify), kRounds round trips per iteration.
// Spindle on 1 and 2 workers; std on its 2 OS threads.
#include <condition_variable>
#include <mutex>

#include "micro_common.hpp"

namespace {
constexpr long kRounds = 1'000;

template <class Sys>
void BM_ConditionPingPong(benchmark::State& st) {
    long turns[2] = {0, 0};
    if constexpr (std::is_same_v<Sys, micro::Spindle>) {
        spindle::Condition cv;
        int turn = 0;
        micro::spindle_batches(st, static_cast<std::size_t>(st.range(0)), 2, [&](int me) -> spindle::Task<void> {
            for (long i = 0; i < kRounds; ++i) {
                auto g = co_await cv.scoped();
                co_await cv.wait_for([&] { return turn == me; });
                turn = 1 - me;
                ++turns[me];
                cv.notify();
            }
        });
    } else {
        std::mutex m;
        std::condition_variable cv;
        int turn = 0;
        micro::ThreadPool pool(2);
        for (auto _ : st)
            pool.run([&](int me) {
                for (long i = 0; i < kRounds; ++i) {
                    {
                        std::unique_lock lk(m);
                        cv.wait(lk, [&] { return turn == me; });
                        turn = 1 - me;
                        ++turns[me];
                    }
                    cv.notify_one();
                }
            });
    }
    const long want = static_cast<long>(st.iterations()) * kRounds;
    if (turns[0] != want || turns[1] != want) st.SkipWithError("turns lost");
    micro::per_op(st, static_cast<double>(kRounds));
}
}  // namespace

BENCHMARK_TEMPLATE(BM_ConditionPingPong, micro::Spindle)
    ->Arg(1)->Arg(2)->ArgNames({"workers"})->UseRealTime()->MinTime(0.05);
BENCHMARK_TEMPLATE(BM_ConditionPingPong, micro::Std)->Arg(2)->ArgNames({"threads"})->UseRealTime()->MinTime(0.05);
BENCHMARK_MAIN();
