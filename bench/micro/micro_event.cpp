// spindle::Event vs mutex + condition_variable + flag: per iteration a fresh event,
// `waiters` tasks wait on it while one more task sets it (some waiters park, some find
// it set); ns/op is per waiter. Workers: 2 (std: waiters + 1 OS threads).
#include <condition_variable>
#include <memory>
#include <mutex>

#include "micro_common.hpp"

namespace {
struct StdEvent {
    std::mutex m;
    std::condition_variable cv;
    bool set_ = false;
    void wait() {
        std::unique_lock lk(m);
        cv.wait(lk, [&] { return set_; });
    }
    void set() {
        {
            std::lock_guard g(m);
            set_ = true;
        }
        cv.notify_all();
    }
};

spindle::Task<void> waiter_or_setter(spindle::Event& ev, bool setter, std::atomic<long>& woke) {
    if (setter) {
        ev.set();
        co_return;
    }
    co_await ev.wait();
    woke.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after the joins
}

template <class Sys>
void BM_EventBroadcast(benchmark::State& st) {
    const int waiters = static_cast<int>(st.range(0));
    std::atomic<long> woke{0};
    if constexpr (std::is_same_v<Sys, micro::Spindle>) {
        std::vector<std::unique_ptr<spindle::Event>> evs;
        micro::spindle_batches(st, 2, waiters + 1, [&](int i) {
            // Called by the spawning task, in order: a fresh event per iteration.
            if (i == 0) evs.push_back(std::make_unique<spindle::Event>());
            return waiter_or_setter(*evs.back(), i == waiters, woke);
        });
    } else {
        micro::ThreadPool pool(waiters + 1);
        for (auto _ : st) {
            StdEvent ev;
            pool.run([&](int i) {
                if (i == waiters) return ev.set();
                ev.wait();
                woke.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after the joins
            });
        }
    }
    if (woke.load() != static_cast<long>(st.iterations()) * waiters) st.SkipWithError("a waiter did not wake");
    micro::per_op(st, static_cast<double>(waiters));
}

void Args(benchmark::internal::Benchmark* b) {
    for (int w : {1, 4, 16}) b->Arg(w);
    b->ArgNames({"waiters"})->UseRealTime()->MinTime(0.05);
}
}  // namespace

BENCHMARK_TEMPLATE(BM_EventBroadcast, micro::Spindle)->Apply(Args);
BENCHMARK_TEMPLATE(BM_EventBroadcast, micro::Std)->Apply(Args);
BENCHMARK_MAIN();
