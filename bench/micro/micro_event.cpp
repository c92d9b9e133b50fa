// spindle::Event vs mutex + condition_variable + flag: per iteration a fresh event,
// `waiters` tasks wait on it while one more task sets it (some waiters park, some find
// it set); ns/op is per waiter. Workers: 2 (std: waiters + 1 OS threads). And an
// event's life without waiters (BM_EventLifetime: what the reclamation costs).
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

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

// A primitive's whole life on one thread, no waiter: construct, set, destroy (a future
// per request). spindle's destructor retires the event's waiter storage to the epoch
// reclamation (runtime/src/ebr.cpp), whose collector pays a membarrier per ~1,024
// retirements; `sibling` = 1 keeps another thread of the process running meanwhile (a
// busy worker), which makes the membarrier's IPIs cost (~20 us on the 2-core VM).
template <class Sys>
void BM_EventLifetime(benchmark::State& st) {
    std::atomic<bool> stop{false};
    std::thread sibling;
    if (st.range(0) != 0)
        sibling = std::thread([&] {
            // relaxed: a stop flag.
            while (!stop.load(std::memory_order_relaxed)) benchmark::DoNotOptimize(stop);
        });
    for (auto _ : st) {
        if constexpr (std::is_same_v<Sys, micro::Spindle>) {
            auto ev = std::make_unique<spindle::Event>();
            ev->set();
            benchmark::DoNotOptimize(ev.get());
        } else {
            auto ev = std::make_unique<StdEvent>();
            ev->set();
            benchmark::DoNotOptimize(ev.get());
        }
    }
    stop.store(true);
    if (sibling.joinable()) sibling.join();
}
}  // namespace

BENCHMARK_TEMPLATE(BM_EventBroadcast, micro::Spindle)->Apply(Args);
BENCHMARK_TEMPLATE(BM_EventBroadcast, micro::Std)->Apply(Args);
BENCHMARK_TEMPLATE(BM_EventLifetime, micro::Spindle)->Arg(0)->Arg(1)->ArgNames({"sibling"})->MinTime(0.2);
BENCHMARK_TEMPLATE(BM_EventLifetime, micro::Std)->Arg(0)->Arg(1)->ArgNames({"sibling"})->MinTime(0.2);
BENCHMARK_MAIN();
