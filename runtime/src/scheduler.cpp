// runtime/src/scheduler.cpp — the Scheduler's construction and teardown, and the
// public spindle::Runtime on top of it. scheduler.hpp maps the mechanisms to their
// files. Teardown order: shutdown() (every task cancelled and its frame released),
// then the stall monitor (it must not inject once the workers are gone), then the
// workers, then the blocking pool.
#include "scheduler_internal.hpp"

#include "io.hpp"

#include "spindle/runtime/time.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

namespace spindle::detail {

namespace {

constexpr std::size_t kMaxWorkers = 1024;

/// workers = 0: the CPUs this process may run on (its affinity mask, as Go's
/// GOMAXPROCS and Tokio's num_cpus count them: under `taskset -c 0` that is one),
/// else std::thread::hardware_concurrency().
std::size_t default_workers() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return static_cast<std::size_t>(n);
    }
    return std::max(1U, std::thread::hardware_concurrency());
}

}  // namespace

// ───────────────────────── Scheduler ─────────────────────────

Scheduler::Scheduler(const RuntimeOptions& opts) : opts_(opts), epoch_(std::chrono::steady_clock::now()) {
    std::size_t n = opts_.workers;
    if (n == 0) n = default_workers();
    if (n > kMaxWorkers)
        throw std::invalid_argument("spindle: RuntimeOptions::workers = " + std::to_string(opts_.workers) +
                                    " is absurdly large (at most 1024)");
    if (opts_.deadlock_timeout.ms < 0) throw std::invalid_argument("spindle: RuntimeOptions::deadlock_timeout < 0");
    if (opts_.idle_spin_us > 10'000)
        throw std::invalid_argument("spindle: RuntimeOptions::idle_spin_us = " + std::to_string(opts_.idle_spin_us) +
                                    " (at most 10000)");
    if (opts_.max_blocking_threads == 0) opts_.max_blocking_threads = 64;
    opts_.workers = n;
    if (const char* d = std::getenv("SPINDLE_DEBUG"); d != nullptr && std::strcmp(d, "1") == 0) opts_.debug = true;
    debug_ = opts_.debug;
    deadlock_ns_ = opts_.deadlock_timeout.ms * 1'000'000;
    single_ = (n == 1);
    shards_ = std::make_unique<RegistryShard[]>(n + 1);
    nshards_ = n + 1;
    sleepers_.reserve(n);
    workers_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto w = std::make_unique<Worker>();
        w->sched = this;
        w->index = static_cast<std::uint32_t>(i);
        w->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
        w->inline_joins_on = !single_ && !debug_;  // "Inline joins" in worker.cpp
        // Allocated here, not by the worker: a worker thread that allocates gets a
        // mimalloc heap of its own, and a second worker with a heap made spawn_join 3x
        // slower in most runs (its frees of the first worker's frames; measured, not
        // understood, as the monitor's in monitor.cpp).
        if (!single_) w->watch.assign(n, Worker::Watch{});
        workers_.push_back(std::move(w));
    }
    io_ = new IoDriver(this);  // the last thing that may throw before the threads start
    for (auto& w : workers_) {
        Worker* wp = w.get();
        wp->thread = std::thread([this, wp] { worker_main(*wp); });
    }
    if (!single_) {
        marks_ = std::make_unique<StallMark[]>(4 * n);  // wake area, inbox, run queue, spawn stack
        monitor_producer_ = std::make_unique<moodycamel::ProducerToken>(injector_);
        monitor_ = std::thread([this] { monitor_main(); });
    }
}

Scheduler::~Scheduler() {
    try {
        shutdown();
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
    }
    stop_.store(true);
    // The monitor first: it must not inject a rescued task once the workers are gone.
    if (monitor_.joinable()) {
        wake_monitor();
        monitor_.join();
    }
    for (auto& w : workers_) wake_worker(*w);
    for (auto& w : workers_)
        if (w->thread.joinable()) w->thread.join();
    {
        std::lock_guard lk(block_mx_);
        block_stop_ = true;
    }
    block_cv_.notify_all();
    for (auto& th : block_threads_) th.join();
    // Sockets that outlive the runtime keep the driver (closed) until they close.
    io_->release();
}

}  // namespace spindle::detail

// ───────────────────────── public Runtime ─────────────────────────

namespace spindle {

Runtime::Runtime(RuntimeOptions opts) : sched_(std::make_unique<detail::Scheduler>(opts)) {}
Runtime::~Runtime() = default;
void Runtime::shutdown() { sched_->shutdown(); }
std::string Runtime::dump() const { return sched_->dump(); }
RuntimeMetrics Runtime::metrics() const { return sched_->metrics(); }
std::size_t Runtime::workers() const noexcept { return sched_->worker_count(); }
const RuntimeOptions& Runtime::options() const noexcept { return sched_->options(); }

std::string current_task_name() {
    return detail::task_display_name(detail::require_task("spindle::current_task_name"));
}

std::chrono::nanoseconds now() {
    detail::TaskHeader* t = detail::current_task();
    if (t == nullptr || t->sched_ == nullptr) return std::chrono::nanoseconds(0);
    return std::chrono::nanoseconds(t->sched_->now_ns());
}

}  // namespace spindle
