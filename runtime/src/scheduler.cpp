// runtime/src/scheduler.cpp — see scheduler.hpp for the design.
#include "scheduler.hpp"

#include "spindle/runtime/detail/ebr.hpp"
#include "spindle/runtime/detail/fault_injection.hpp"
#include "spindle/runtime/detail/wait_queue.hpp"
#include "spindle/runtime/time.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sstream>
#include <utility>

#if SPINDLE_USE_MIMALLOC
#include <mimalloc.h>
#endif

namespace spindle::detail {

constinit thread_local std::uint32_t tl_coop_budget = UINT32_MAX;
constinit thread_local bool tl_debug = false;

// Out of line on purpose (task_header.hpp, "thread-locals and coroutines that migrate").
bool coop_consume() noexcept {
    if (tl_coop_budget == 0) return false;
    --tl_coop_budget;
    return true;
}
bool coop_budget_left() noexcept { return tl_coop_budget != 0; }
unsigned coop_consume_and_debug() noexcept { return (coop_consume() ? kCoopTaken : 0U) | (tl_debug ? kCoopDebug : 0U); }
void note_lock_acquired() noexcept {
    if (tl_debug) [[unlikely]] debug_lock_acquired();
}
void note_lock_released() noexcept {
    if (tl_debug) [[unlikely]] debug_lock_released();
}

namespace {

thread_local Worker* tl_worker = nullptr;
thread_local TaskHeader* tl_task = nullptr;
thread_local bool tl_completed = false;
constexpr std::uint32_t kCoopBudget = 128;  // Tokio's default

// Debug mode: a task that runs longer than this without suspending is reported
// (asyncio's slow_callback_duration); tests lower it.
std::atomic<std::int64_t> g_slow_ns{100'000'000};
thread_local std::int64_t tl_slice_start = 0;  // debug mode: when the current resume began

std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string exception_text(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "a non-std::exception";
    }
}

constexpr std::uint32_t kInjectorEvery = 61;  // Go's fairness tick for the global queue
constexpr std::size_t kMaxWorkers = 1024;
// Stall monitor (see "Wake area" in scheduler.hpp): a task that has waited kStallNs in
// a wake area is rescued. The monitor looks every kMonitorNs, backing off to
// kMonitorBusyMaxNs while nothing stalls, and to kMonitorIdleMaxNs (then a futex
// sleep) while every worker is parked.
constexpr std::int64_t kStallNs = 250'000;
constexpr std::int64_t kMonitorNs = 250'000;
constexpr std::int64_t kMonitorBusyMaxNs = 1'000'000;
constexpr std::int64_t kMonitorIdleMaxNs = 4'000'000;

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::int64_t timeout_ns) noexcept {
    timespec ts{};
    timespec* tsp = nullptr;
    if (timeout_ns >= 0) {
        ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
        tsp = &ts;
    }
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>& word) noexcept {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

std::uint64_t xorshift(std::uint64_t& s) noexcept {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

bool is_cancelled_error(const std::exception_ptr& e) noexcept {
    if (!e) return false;
    try {
        std::rethrow_exception(e);
    } catch (const CancelledError&) {
        return true;
    } catch (...) {
        return false;
    }
}

}  // namespace

// ───────────────────────── TaskHeader ─────────────────────────

void WaitNode::on_cancel(TaskHeader& task) noexcept { task.schedule(); }

TaskHeader* current_task() noexcept { return tl_task; }

std::uint16_t current_worker_hint() noexcept {
    const Worker* w = tl_worker;
    return w == nullptr || w->index >= UINT16_MAX ? 0 : static_cast<std::uint16_t>(w->index + 1);
}

bool single_worker(const TaskHeader& t) noexcept { return t.sched_ == nullptr || t.sched_->worker_count() == 1; }

bool hand_over_self(TaskHeader& t, std::coroutine_handle<> h, std::uint16_t hint) noexcept {
    return t.sched_ != nullptr && t.sched_->hand_over_self(t, h, hint);
}

TaskHeader& require_task(const char* what) {
    if (tl_task == nullptr)
        throw std::logic_error(std::string("spindle: ") + what + " needs a running task (call it inside a spawned Task)");
    return *tl_task;
}

void TaskHeader::schedule() noexcept {
    // relaxed: the CAS below validates.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
        if ((s & (kNotified | kComplete)) != 0U) return;
        // Running elsewhere: leave a hint of the waking worker, so that the task's
        // worker hands it over instead of requeueing it at home.
        // relaxed: published by the CAS below (acq_rel) to run_task's fetch_sub.
        if ((s & kRunning) != 0U) wake_hint_.store(sched_->worker_hint(), std::memory_order_relaxed);
        // acq_rel: releases what the waker wrote (a grant) to the worker that will
        // run the task (its fetch_add in run_task acquires); acquires the task's own
        // writes before it suspended.
        if (state_.compare_exchange_weak(s, s | kNotified, std::memory_order_acq_rel, std::memory_order_relaxed)) {
            if ((s & kRunning) == 0U) sched_->wake(this);
            return;
        }
    }
}

namespace {
// JoinAwaiterBase::on_cancel's forwarding chain on this thread (await-cycle detection).
constexpr int kForwardMax = 64;
thread_local TaskHeader* tl_forwarding[kForwardMax];
thread_local int tl_forward_depth = 0;
thread_local TaskHeader* tl_cycle_back = nullptr;
}  // namespace

bool TaskHeader::cancel() noexcept { return request_cancel(false); }

bool TaskHeader::cancel_unless_pending() noexcept { return request_cancel(true); }

bool TaskHeader::request_cancel(bool unless_pending) noexcept {
    for (int i = 0; i < tl_forward_depth; ++i) {
        if (tl_forwarding[i] == this) tl_cycle_back = this;  // forwarded back to itself
    }
    // asyncio marks a task that returns with a cancellation still pending as
    // cancelled; that can only happen there when a task cancels itself, so that is
    // the only case we keep: a task cancelled by another core while it runs, which
    // then returns without suspending, keeps its result (its effects happened).
    if (tl_task == this) self_cancel_ = true;
    // One CAS sets kCancelReq and counts the request (bits 8..31, see the header);
    // nothing is counted for a completed task (nor, when asked, while one is pending).
    // relaxed: the CAS validates.
    std::uint32_t prev = state_.load(std::memory_order_relaxed);
    for (;;) {
        if ((prev & kComplete) != 0U) return false;
        if (unless_pending && (prev & kCancelReq) != 0U) return false;
        // seq_cst: Dekker pair with arm() + cancelled_while_arming() (see the header).
        if (state_.compare_exchange_weak(prev, (prev | kCancelReq) + kCancelOne, std::memory_order_seq_cst,
                                         std::memory_order_relaxed))  // failure relaxed: the loop re-validates
            break;
    }
    // seq_cst: must not be reordered before the CAS above.
    const std::uint64_t w = wait_.load(std::memory_order_seq_cst);
    if ((w & kArmed) != 0U && claim(w)) {
        // The token says what kind of wait we claimed. A sync wait's waker does not
        // claim, so the task may already be past it: only its cell (validated by
        // tag, under EBR) is touched, never wait_node_. A node wait's claim freezes
        // the task, so its wait_node_ is the one armed with `w`.
        if ((w & kSyncWait) != 0U) cancel_cell_wait(*this, w);
        else wait_node_->on_cancel(*this);
    }
    return true;
}

void TaskHeader::lock_joiners() noexcept {
    unsigned spins = 0;
    // relaxed: the CAS validates.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
        if ((s & kJoinLock) != 0U) {
            // The lock is held for a few instructions: spin briefly, then yield.
            if (++spins < 64) cpu_relax();
            else std::this_thread::yield();
            // relaxed: re-read before retrying the CAS.
            s = state_.load(std::memory_order_relaxed);
            continue;
        }
        // acquire: pairs with the release in unlock_joiners().
        if (state_.compare_exchange_weak(s, s | kJoinLock, std::memory_order_acquire, std::memory_order_relaxed))
            return;
    }
}

void TaskHeader::unlock_joiners() noexcept {
    // relaxed: kJoined changes only under the join lock, which we hold.
    if (joiners_ != nullptr && (state_.load(std::memory_order_relaxed) & kJoined) == 0U) {
        // One add clears kJoinLock (set) and sets kJoined (clear, the next bit up).
        // release: pairs with the acquire CASes in lock_joiners() and
        // complete_and_lock_joiners(); the latter must see kJoined and take the lock.
        state_.fetch_add(kJoined - kJoinLock, std::memory_order_release);
        return;
    }
    // release: pairs with the acquire CASes in lock_joiners() and complete_and_lock_joiners().
    state_.fetch_and(~kJoinLock, std::memory_order_release);
}

bool TaskHeader::complete_and_lock_joiners() noexcept {
    unsigned spins = 0;
    // relaxed: the CAS validates.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
        if ((s & kJoinLock) != 0U) {  // a joiner, a canceller's forward or a dump
            if (++spins < 64) cpu_relax();
            else std::this_thread::yield();
            // relaxed: re-read before retrying the CAS.
            s = state_.load(std::memory_order_relaxed);
            continue;
        }
        const bool joined = (s & kJoined) != 0U;
        // release: publishes the outcome to complete() readers and to a joiner whose
        // lock CAS reads this value. acquire (when locking): pairs with the release in
        // unlock_joiners(), so the joiners_ list it published is visible.
        if (state_.compare_exchange_weak(s, s | kComplete | (joined ? kJoinLock : 0U),
                                         // acq_rel / release: see above (unlock_joiners, complete())
                                         joined ? std::memory_order_acq_rel : std::memory_order_release,
                                         std::memory_order_relaxed))  // relaxed failure: the loop re-reads
            return joined;
    }
}

bool TaskHeader::add_joiner_locked(JoinNode* n) noexcept {
    // relaxed: our lock CAS read the newest state_, so a kComplete set without the
    // lock (complete_and_lock_joiners' fast path) is seen, and its outcome with it.
    if ((state_.load(std::memory_order_relaxed) & kComplete) != 0U) return false;
    n->prev = nullptr;
    n->next = joiners_;
    if (joiners_ != nullptr) joiners_->prev = n;
    joiners_ = n;
    return true;
}

void TaskHeader::remove_joiner_locked(JoinNode* n) noexcept {
    if (n->prev == nullptr && joiners_ != n) return;  // already taken by completion
    if (n->prev != nullptr) n->prev->next = n->next;
    else joiners_ = n->next;
    if (n->next != nullptr) n->next->prev = n->prev;
    n->prev = n->next = nullptr;
}

void TaskHeader::destroy_frame() noexcept {
    // relaxed: we are the last owner (refs_' acq_rel decrement ordered every store).
    if (debug_ && exception_ && !outcome_cancelled_ && !exception_observed_.load(std::memory_order_relaxed)) {
        try {
            std::fprintf(stderr,
                         "spindle debug: task %" PRIu64 " \"%s\" failed and its exception was never observed "
                         "(nobody awaited its JoinHandle): %s\n",
                         id_, task_display_name(*this).c_str(), exception_text(exception_).c_str());
        } catch (...) {  // NOLINT(bugprone-empty-catch): a diagnostic must not throw
        }
    }
    if (named_) std::free(const_cast<char*>(name_));
    root_.destroy();
}

namespace {
thread_local int tl_frame_fail_countdown = 0;  // fault_injection.hpp
}  // namespace

void fault::fail_frame_allocation_after(int n) noexcept { tl_frame_fail_countdown = n > 0 ? n : 0; }
int fault::frame_allocation_countdown() noexcept { return tl_frame_fail_countdown; }

// Frames come from mimalloc; sanitizer builds use the global operator new so that
// ASan/LSan track every frame.
void* allocate_frame(std::size_t n) {
    if (tl_frame_fail_countdown > 0 && --tl_frame_fail_countdown == 0) throw std::bad_alloc();
#if SPINDLE_USE_MIMALLOC
    void* p = mi_malloc(n);
    if (p == nullptr) throw std::bad_alloc();
    return p;
#else
    return ::operator new(n);
#endif
}
void deallocate_frame(void* p, std::size_t n) noexcept {
#if SPINDLE_USE_MIMALLOC
    mi_free_size(p, n);
#else
    ::operator delete(p, n);
#endif
}

void on_root_complete(TaskHeader& t) noexcept { t.sched_->on_complete(t); }

void spawn_root(Scheduler* s, TaskHeader& t, std::string_view name, CompletionHook* hook) {
    t.hook_ = hook;
    if (s == nullptr) {
        if (tl_worker == nullptr)
            throw std::logic_error("spindle::spawn called outside a task: there is no current runtime "
                                   "(use Runtime::spawn from plain threads)");
        s = tl_worker->sched;
    }
    s->spawn(t, name);
}

void wait_external(Scheduler& s, TaskHeader& t) { s.wait_external(t); }
void check_block_on(Scheduler& s) { s.check_not_own_worker("Runtime::block_on"); }

std::string task_display_name(const TaskHeader& t) {
    if (t.name_ != nullptr) return t.name_;
    return "task-" + std::to_string(t.id_);
}

std::int64_t now_ns(const TaskHeader& t) noexcept { return t.sched_->now_ns(); }
void add_timer(TaskHeader& t, TimerEntry& e) noexcept { t.sched_->add_timer(e); }
void remove_timer(TaskHeader& t, TimerEntry& e) noexcept { t.sched_->remove_timer(e); }
bool disarm_timeout(TaskHeader& t, TimeoutEntry& e) noexcept { return t.sched_->disarm_timeout(e); }
void submit_blocking(TaskHeader& t, BlockingJob* job) { t.sched_->submit_blocking(t, job); }

std::atomic<std::uint64_t>* TaskHeader::wait_while_inspected() noexcept {
    unsigned spins = 0;
    for (;;) {
        // acquire: pairs with the dumper's release store that removes the tag.
        std::atomic<std::uint64_t>* c = wait_cell_.load(std::memory_order_acquire);
        if ((reinterpret_cast<std::uintptr_t>(c) & kCellInspected) == 0U) return c;
        if (++spins < 64) cpu_relax();
        else std::this_thread::yield();
    }
}

void debug_lock_acquired() noexcept {
    if (tl_task != nullptr && tl_task->debug_locks_held_ < UINT16_MAX) ++tl_task->debug_locks_held_;
}
void debug_lock_released() noexcept {
    // A Lock has no owner: released by another task than the one that took it, the
    // count of the taker stays up (a false warning at its end, documented).
    if (tl_task != nullptr && tl_task->debug_locks_held_ > 0) --tl_task->debug_locks_held_;
}

std::chrono::nanoseconds set_slow_task_threshold(std::chrono::nanoseconds d) noexcept {
    // relaxed: a configuration value, read at the end of each slice in debug mode.
    return std::chrono::nanoseconds(g_slow_ns.exchange(d.count(), std::memory_order_relaxed));
}

// ───────────────────────── Join awaiter ─────────────────────────

bool JoinAwaiterBase::await_suspend(std::coroutine_handle<> h) {
    self = &require_task("co_await JoinHandle");
    if (self == target) throw std::logic_error("spindle: a task cannot await its own JoinHandle");
    notify = &JoinAwaiterBase::notify_joiner;
    target->lock_joiners();
    if (!target->add_joiner_locked(this)) {
        target->unlock_joiners();
        return false;  // completed meanwhile: no suspension, a pending cancel stays pending
    }
    const std::uint64_t tok = self->arm(this, h);
    token = tok;
    target->unlock_joiners();
    suspended = true;
    // A cancellation pending (or arriving now) is forwarded to the awaited task, as
    // asyncio does when a task with a pending cancel awaits a future; we keep waiting.
    if (self->cancelled_while_arming(tok)) on_cancel(*self);
    return true;
}

void JoinAwaiterBase::notify_joiner(JoinNode* n) noexcept {
    auto* a = static_cast<JoinAwaiterBase*>(n);
    if (a->self->claim(a->token)) a->self->schedule();
}

void JoinAwaiterBase::on_cancel(TaskHeader& task) noexcept {
    // We hold the claim, so the awaiting task is frozen and this awaiter is alive.
    // Forward the cancellation to the awaited task and keep waiting for it.
    task.consume_cancel();
    // The forward runs synchronously on this thread; if it comes back to `task`
    // (an await cycle: A awaits B awaits A), TaskHeader::cancel() notes it in
    // tl_cycle_back, and the cancellation is delivered to `task` below instead of
    // being forwarded round the cycle forever (which spun; asyncio recurses until
    // RecursionError). A cycle can never complete, so ending it is the only answer.
    const bool tracked = tl_forward_depth < kForwardMax;
    if (tracked) tl_forwarding[tl_forward_depth++] = &task;
    target->cancel();
    if (tracked) --tl_forward_depth;
    const bool cycled = tl_cycle_back == &task;
    if (cycled) tl_cycle_back = nullptr;
    target->lock_joiners();
    // relaxed: as in add_joiner_locked(): the lock CAS read the newest state_.
    if ((target->state_.load(std::memory_order_relaxed) & TaskHeader::kComplete) != 0U) {
        target->unlock_joiners();
        task.schedule();  // completion ran while we held the claim: wake it ourselves
        return;
    }
    const std::uint64_t tok = task.arm(this, task.resume_);
    token = tok;
    target->unlock_joiners();
    // From here the target may complete and the awaiter die: touch `this` again
    // only after winning a claim. A second cancel() that arrived while the wait was
    // disarmed left its flag set: forward it too (each forward re-arms) — unless it
    // came back round an await cycle: then leave the wait and deliver it.
    if (task.cancelled_while_arming(tok)) {
        if (!cycled) {
            on_cancel(task);
            return;
        }
        target->lock_joiners();
        target->remove_joiner_locked(this);
        target->unlock_joiners();
        task.schedule();  // finish_resume() throws CancelledError
    }
}

void JoinAwaiterBase::finish_resume() {
    if (suspended && self->consume_cancel()) throw CancelledError{};
}

// ───────────────────────── Scheduler ─────────────────────────

Scheduler::Scheduler(const RuntimeOptions& opts) : opts_(opts), epoch_(std::chrono::steady_clock::now()) {
    std::size_t n = opts_.workers;
    if (n == 0) n = std::max(1U, std::thread::hardware_concurrency());
    if (n > kMaxWorkers)
        throw std::invalid_argument("spindle: RuntimeOptions::workers = " + std::to_string(opts_.workers) +
                                    " is absurdly large (at most 1024)");
    if (opts_.deadlock_timeout.ms < 0) throw std::invalid_argument("spindle: RuntimeOptions::deadlock_timeout < 0");
    if (opts_.max_blocking_threads == 0) opts_.max_blocking_threads = 64;
    opts_.workers = n;
    if (const char* d = std::getenv("SPINDLE_DEBUG"); d != nullptr && std::strcmp(d, "1") == 0) opts_.debug = true;
    debug_ = opts_.debug;
    deadlock_ns_ = opts_.deadlock_timeout.ms * 1'000'000;
    single_ = (n == 1);
    shards_ = std::make_unique<RegistryShard[]>(n + 1);
    sleepers_.reserve(n);
    workers_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto w = std::make_unique<Worker>();
        w->sched = this;
        w->index = static_cast<std::uint32_t>(i);
        w->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
        workers_.push_back(std::move(w));
    }
    for (auto& w : workers_) {
        Worker* wp = w.get();
        wp->thread = std::thread([this, wp] { worker_main(*wp); });
    }
    if (!single_) {
        marks_ = std::make_unique<StallMark[]>(3 * n);  // wake area, inbox, run queue
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
}

std::int64_t Scheduler::now_ns() const noexcept {
    // acquire: pairs with the release store in advance_virtual_clock().
    if (opts_.virtual_time) return vclock_.load(std::memory_order_acquire);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - epoch_).count();
}

// ── spawning and queues ──

void Scheduler::spawn(TaskHeader& t, std::string_view name) {
    if (stop_.load()) throw std::logic_error("spindle: spawn on a runtime that has stopped");
    t.sched_ = this;
    t.debug_ = debug_;
    if (!name.empty()) {
        auto* p = static_cast<char*>(std::malloc(name.size() + 1));
        if (p == nullptr) throw std::bad_alloc();
        std::memcpy(p, name.data(), name.size());
        p[name.size()] = '\0';
        t.name_ = p;
        t.named_ = true;
    }
    registry_insert(t);
    Worker* w = tl_worker;
    // relaxed: metrics.
    if (w != nullptr && w->sched == this) bump(w->m_spawned);
    else m_external_spawns_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    // relaxed: the frame is published to the worker by the queue (release/acquire).
    t.state_.store(TaskHeader::kNotified, std::memory_order_relaxed);
    enqueue(&t);
}

void Scheduler::enqueue(TaskHeader* t) noexcept {
    Worker* w = tl_worker;
    if (w != nullptr && w->sched == this) {
        push_local(*w, t);
        if (!single_) notify_one();
    } else {
        inject(t);
    }
}

void Scheduler::wake(TaskHeader* t) noexcept {
    Worker* w = tl_worker;
    if (single_ || w == nullptr || w->sched != this) {
        enqueue(t);
        return;
    }
    // Full: the oldest woken task goes to the run queue, where idle workers may steal
    // it (a fan-out spreads). pop() finds nothing only if the monitor just emptied it.
    while (!w->woken.push(t)) {
        if (TaskHeader* old = w->woken.pop()) {
            push_local(*w, old);
            notify_one();
        }
    }
}

void Scheduler::push_local(Worker& w, TaskHeader* t) noexcept {
    if (single_) {
        if (!w.overflow.empty() || !w.queue.push(t)) w.overflow.push_back(t);
        return;
    }
    while (!w.queue.push(t)) {
        // Full: move the older half to the injector in one batch (one count update,
        // one notification), as Go's runqputslow does.
        std::array<TaskHeader*, LocalQueue::kCapacity / 2> batch{};
        const std::uint32_t n = w.queue.drain_half(batch.data());
        if (n == 0) continue;
        injector_.enqueue_bulk(batch.data(), n);
        // seq_cst: as in inject(): counted after the enqueue; Dekker with park().
        injected_.fetch_add(n, std::memory_order_seq_cst);
        notify_one();
    }
}

void Scheduler::inject(TaskHeader* t) noexcept {
    injector_.enqueue(t);
    // seq_cst: counted after the enqueue so a worker that sees the count can dequeue;
    // also the store half of the Dekker pair with park()'s re-check.
    injected_.fetch_add(1, std::memory_order_seq_cst);
    // relaxed: metrics.
    m_injections_.fetch_add(1, std::memory_order_relaxed);
    wake_for_injected();
}

void Scheduler::wake_for_injected() noexcept {
    // A wake from outside must get some worker going, even with one worker.
    // seq_cst: Dekker with park(): injected_ store above, idle_ load below.
    const std::uint64_t idle = idle_.load(std::memory_order_seq_cst);
    if (sleepers_of(idle) == 0) return;
    std::unique_lock lk(idle_mx_);
    if (sleepers_.empty()) return;
    Worker* s = take_sleeper();
    // seq_cst: keeps idle_ exact for the Dekker re-checks.
    idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
    lk.unlock();
    wake_worker(*s);
}

TaskHeader* Scheduler::pop_injector() noexcept {
    // seq_cst: cheap exit when empty; paired with inject()'s fetch_add.
    if (injected_.load(std::memory_order_seq_cst) <= 0) return nullptr;
    TaskHeader* t = nullptr;
    if (!injector_.try_dequeue(t)) return nullptr;
    // seq_cst: keeps the count exact for park()'s re-check.
    injected_.fetch_sub(1, std::memory_order_seq_cst);
    return t;
}

void Scheduler::notify_one() noexcept {
    // seq_cst fence: the store that published work (tail_ / injected_) must not be
    // reordered after the load of idle_ (Dekker with park()).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // relaxed: ordered by the fence above.
    const std::uint64_t idle = idle_.load(std::memory_order_relaxed);
    if (searchers_of(idle) != 0 || sleepers_of(idle) == 0) return;
    std::unique_lock lk(idle_mx_);
    // relaxed: re-read under the lock; every change to idle_ happens under idle_mx_.
    const std::uint64_t again = idle_.load(std::memory_order_relaxed);
    if (searchers_of(again) != 0 || sleepers_.empty()) return;
    Worker* s = take_sleeper();
    // The woken worker starts as a searcher, so concurrent notifiers do not wake more.
    // seq_cst: part of the Dekker protocol on idle_.
    idle_.fetch_add(kSearcherOne - kSleeperOne, std::memory_order_seq_cst);
    s->searching = true;  // s reads it after re-taking idle_mx_ in park()
    lk.unlock();
    wake_worker(*s);
}

Worker* Scheduler::take_sleeper() noexcept {
    // Prefer a sleeper that is not the timer owner, so the timer role stays put.
    auto it = sleepers_.end() - 1;
    if (*it == timer_owner_ && sleepers_.size() > 1) --it;
    Worker* s = *it;
    sleepers_.erase(it);
    s->sleeping = false;
    return s;
}

void Scheduler::wake_worker(Worker& w) noexcept {
    // release: pairs with the acquire load in park() after the futex returns.
    w.wake_word.store(1, std::memory_order_release);
    futex_wake(w.wake_word);
}

// ── the worker loop ──

void Scheduler::worker_main(Worker& w) {
    tl_worker = &w;
    tl_debug = debug_;
    while (!stop_.load(std::memory_order_relaxed)) {  // relaxed: re-checked under idle_mx_ in park
        TaskHeader* t = next_local(w);
        if (t == nullptr) t = search(w);
        if (t == nullptr) {
            park(w);
            continue;
        }
        run_task(w, t);
    }
    tl_worker = nullptr;
}

TaskHeader* Scheduler::next_local(Worker& w) noexcept {
    // First: the batch boundary fires timers, whose wakes may land in the wake area.
    if (w.batch_left == 0) batch_boundary(w);
    // Tasks handed over by other workers join the wake area (they were woken by a task
    // of this worker). One seq_cst load of a line that only changes on a hand-over.
    if (!single_ && w.inbox.maybe_nonempty()) drain_inbox(w);
    // The wake area first, but after 3 runs from it in a row the run queue's head
    // gets a turn (two tasks waking each other cannot starve the queue), and that
    // turn counts towards the batch even if the queue is empty (timers and the
    // injector are still looked at every few runs).
    if (w.woken_runs < 3) {
        if (TaskHeader* t = w.woken.pop()) {
            ++w.woken_runs;
            return t;
        }
    }
    w.woken_runs = 0;
    if (w.batch_left > 0) --w.batch_left;
    TaskHeader* t = w.queue.pop();
    if (t == nullptr && single_ && !w.overflow.empty()) {
        // Refill the ring from the overflow, oldest first (the ring is empty now).
        while (!w.overflow.empty() && w.queue.push(w.overflow.front())) w.overflow.pop_front();
        t = w.queue.pop();
    }
    if (t == nullptr && (t = w.woken.pop()) != nullptr) ++w.woken_runs;
    return t;
}

void Scheduler::batch_boundary(Worker& w) noexcept {
    fire_due_timers(w);
    if (single_) {
        // asyncio order: everything that arrived from outside joins the ready queue.
        while (TaskHeader* t = pop_injector()) push_local(w, t);
        w.batch_left = w.queue.approx_size() + static_cast<std::uint32_t>(w.overflow.size());
    } else {
        // Take a share of the global queue every batch (Go checks it every 61 ticks):
        // its fair share (count / workers + 1, Go's globrunqget), at least 8, at most
        // what fits in half our ring, in one bulk dequeue. (A wide wake — one set()
        // with 100k waiters — spills through the injector; one task per dequeue made
        // pop_injector 8% of event_broadcast's profile.)
        // seq_cst: the count a parking worker re-checks (see inject()).
        const std::int64_t queued = injected_.load(std::memory_order_seq_cst);
        if (queued > 0) {
            std::array<TaskHeader*, LocalQueue::kCapacity / 2> batch{};
            const std::uint32_t room = LocalQueue::kCapacity / 2 - std::min<std::uint32_t>(w.queue.approx_size(), LocalQueue::kCapacity / 2);
            const auto share = static_cast<std::uint32_t>(std::min<std::int64_t>(queued / static_cast<std::int64_t>(workers_.size()) + 1, LocalQueue::kCapacity / 2));
            const std::uint32_t want = std::min(room, std::max<std::uint32_t>(share, 8));
            const std::size_t got = want == 0 ? 0 : injector_.try_dequeue_bulk(batch.data(), want);
            if (got > 0) {
                // seq_cst: keeps the count exact for park()'s re-check.
                injected_.fetch_sub(static_cast<std::int64_t>(got), std::memory_order_seq_cst);
                for (std::size_t i = 0; i < got; ++i) push_local(w, batch[i]);
            }
        }
        w.batch_left = std::min<std::uint32_t>(w.queue.approx_size(), kInjectorEvery);
    }
    if (w.batch_left == 0) w.batch_left = 1;
}

void Scheduler::run_task(Worker& w, TaskHeader* t) noexcept {
    // A worker woken as a searcher that found work without searching (its wake
    // area, the injector at a batch boundary) stops counting as one, or every
    // later notify_one() would think someone is already looking.
    if (w.searching) stop_searching(w);
    // acquire: pairs with the acq_rel CAS in schedule() / the relaxed store in spawn
    // published by the queue; clears kNotified and sets kRunning in one step.
    const std::uint32_t prev =
        t->state_.fetch_add(TaskHeader::kRunning - TaskHeader::kNotified, std::memory_order_acquire);  // acquire: pairs with schedule()'s acq_rel CAS
    tl_task = t;
    tl_completed = false;
    if (!t->started_) {
        t->started_ = true;
        if ((prev & TaskHeader::kCancelReq) != 0U) {
            // Cancelled before it first ran: the body never runs (asyncio).
            t->exception_ = std::make_exception_ptr(CancelledError{});
            on_complete(*t);
            tl_task = nullptr;
            return;
        }
    }
    tl_coop_budget = single_ ? UINT32_MAX : kCoopBudget;
    ResumeHook* hook = t->resume_hook_;
    t->resume_hook_ = nullptr;
    if (hook == nullptr || hook->before_resume(*t)) {
        if (debug_) [[unlikely]] {
            tl_slice_start = steady_ns();
            t->resume_.resume();
            if (!tl_completed) debug_after_slice(*t, tl_slice_start);  // else on_complete did
            tl_slice_start = 0;
        } else {
            t->resume_.resume();
        }
    }
    tl_task = nullptr;
    if (tl_completed) return;  // the frame may be gone
    // A budget rotation (a primitive's cooperative yield, which leaves a resume hook:
    // Lock, Semaphore) is not new work: see "Yield" in scheduler.hpp. Read while we
    // still hold kRunning (nobody else can touch the task).
    const bool rotation = t->resume_hook_ != nullptr;
    // acq_rel: releases the task's writes to the next worker; observes a kNotified
    // set by a waker while we ran (the waker did not enqueue then).
    const std::uint32_t s = t->state_.fetch_sub(TaskHeader::kRunning, std::memory_order_acq_rel);
    if ((s & TaskHeader::kNotified) != 0U) {
        // Woken while it ran by a task on another worker: it joins its waker there
        // ("Migration to the waker" in scheduler.hpp).
        if (!single_) {
            // relaxed: published by the waker's CAS, acquired by the fetch_sub above.
            const std::uint16_t hint = t->wake_hint_.load(std::memory_order_relaxed);
            if (hint != 0) {
                t->wake_hint_.store(0, std::memory_order_relaxed);  // relaxed: a hint, reset by its reader
                if (hint - 1U != w.index && hint - 1U < workers_.size() && migrate(w, *workers_[hint - 1U], t)) return;
            }
        }
        // A yield, or woken while it ran: to the tail. Wake an idle worker only if the
        // queue holds another task too ("Yield" in scheduler.hpp).
        push_local(w, t);
        if (!single_ && !rotation && w.queue.approx_size() > 1) notify_one();
    }
}

std::uint16_t Scheduler::worker_hint() const noexcept {
    const Worker* w = tl_worker;
    if (w == nullptr || w->sched != this || w->index >= UINT16_MAX) return 0;
    return static_cast<std::uint16_t>(w->index + 1);
}

bool Scheduler::hand_over_self(TaskHeader& t, std::coroutine_handle<> h, std::uint16_t hint) noexcept {
    if (single_ || hint == 0) return false;
    const Worker* w = tl_worker;
    if (w == nullptr || w->sched != this || hint - 1U == w->index || hint - 1U >= workers_.size()) return false;
    // relaxed: a heuristic (migrate() re-checks; a parked target means we stay).
    if (workers_[hint - 1U]->parked.load(std::memory_order_relaxed)) return false;
    t.resume_ = h;
    // relaxed: published by the RMW below to run_task's fetch_sub (same thread here).
    t.wake_hint_.store(hint, std::memory_order_relaxed);
    // acq_rel: as schedule()'s CAS; the task is running, so this only marks it, and
    // run_task hands it over at the end of the slice (or requeues it here).
    t.state_.fetch_or(TaskHeader::kNotified, std::memory_order_acq_rel);
    return true;
}

bool Scheduler::migrate(Worker& from, Worker& to, TaskHeader* t) noexcept {
    // relaxed: a heuristic; a parked worker would have to be woken (microseconds on a
    // VM): the task then stays here. The exact check is the Dekker pair below.
    if (to.parked.load(std::memory_order_relaxed)) return false;
    if (!to.inbox.push(t)) return false;  // full: keep it
    bump(from.m_migrations);
    // seq_cst: the load half of the Dekker pair with park(): our push's claim (a
    // seq_cst RMW) precedes this load; park() stores `parked` before it re-reads the
    // inbox. Either it sees the task or we see it parked and wake it.
    if (to.parked.load(std::memory_order_seq_cst)) wake_parked(to);
    return true;
}

void Scheduler::drain_inbox(Worker& w) noexcept {
    while (TaskHeader* t = w.inbox.pop()) {
        if (!w.woken.push(t)) {
            push_local(w, t);
            notify_one();
        }
    }
}

void Scheduler::wake_parked(Worker& w) noexcept {
    std::unique_lock lk(idle_mx_);
    if (!w.sleeping) return;  // it left park() on its own (its re-check saw the task)
    w.sleeping = false;
    sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), &w));
    // seq_cst: keeps idle_ exact for the Dekker re-checks.
    idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
    lk.unlock();
    wake_worker(w);
}

bool Scheduler::start_searching(Worker& w) noexcept {
    if (w.searching) return true;
    // Limit searchers to half the workers (Tokio), so idle workers do not all spin.
    // relaxed: a heuristic; the exact protocol is on the RMW below.
    const std::uint64_t idle = idle_.load(std::memory_order_relaxed);
    if (2 * searchers_of(idle) >= workers_.size()) return false;
    // seq_cst: part of the Dekker protocol on idle_.
    idle_.fetch_add(kSearcherOne, std::memory_order_seq_cst);
    w.searching = true;
    return true;
}

void Scheduler::stop_searching(Worker& w) noexcept {
    if (!w.searching) return;
    w.searching = false;
    // seq_cst: part of the Dekker protocol on idle_.
    const std::uint64_t prev = idle_.fetch_sub(kSearcherOne, std::memory_order_seq_cst);
    // The last searcher found work: there may be more, so wake another to look.
    if (searchers_of(prev) == 1) notify_one();
}

TaskHeader* Scheduler::search(Worker& w) noexcept {
    if (TaskHeader* t = pop_injector()) {
        stop_searching(w);
        return t;
    }
    if (single_ || !start_searching(w)) return nullptr;
    const std::size_t n = workers_.size();
    for (int round = 0; round < 2; ++round) {
        const std::size_t start = xorshift(w.rng) % n;
        for (std::size_t i = 0; i < n; ++i) {
            Worker& v = *workers_[(start + i) % n];
            if (&v == &w) continue;
            if (TaskHeader* t = v.queue.steal_into(w.queue)) {
                // relaxed: metrics.
                bump(w.m_steals);
                stop_searching(w);
                return t;
            }
        }
        if (TaskHeader* t = pop_injector()) {
            stop_searching(w);
            return t;
        }
    }
    return nullptr;
}

bool Scheduler::work_available(const Worker& self) const noexcept {
    // seq_cst loads: the load half of the Dekker pairs (see notify_one / inject).
    if (injected_.load(std::memory_order_seq_cst) > 0) return true;
    for (const auto& w : workers_)
        // Every inbox, not only ours: a task handed to a worker that is parking (it
        // will see it, but is still in sleepers_) must keep the last worker from
        // advancing the virtual clock or checking for a deadlock meanwhile.
        if (w->queue.approx_size() > 0 || w->inbox.maybe_nonempty()) return true;
    if (!self.overflow.empty() || self.woken.approx_size() != 0) return true;
    if (!opts_.virtual_time && next_deadline_.load(std::memory_order_seq_cst) <= now_ns()) return true;
    return stop_.load(std::memory_order_seq_cst);
}

void Scheduler::park(Worker& w) {
    std::unique_lock lk(idle_mx_);
    if (w.searching) {
        w.searching = false;
        // seq_cst: part of the Dekker protocol on idle_.
        idle_.fetch_sub(kSearcherOne, std::memory_order_seq_cst);
    }
    if (work_available(w)) return;
    if (opts_.virtual_time && sleepers_.size() + 1 == workers_.size() &&
        blocking_running_.load(std::memory_order_seq_cst) == 0) {  // seq_cst: see blocking_done()
        // Everyone else sleeps and nothing can arrive but from outside: jump the clock.
        if (advance_virtual_clock()) {
            lk.unlock();
            fire_due_timers(w);
            return;
        }
        // The clock cannot move and nothing else can arrive but from outside: under
        // virtual time the deadlock check is immediate.
        if (deadlock_ns_ > 0) check_deadlock_locked();
    }
    w.sleeping = true;
    sleepers_.push_back(&w);
    // relaxed: the seq_cst RMW on idle_ below orders it before the futex wait.
    w.wake_word.store(0, std::memory_order_relaxed);
    // seq_cst: announce the sleeper before the re-checks (Dekker with producers, and
    // with add_timer's read of idle_ after it stores next_deadline_).
    idle_.fetch_add(kSleeperOne, std::memory_order_seq_cst);
    // seq_cst: the store half of the Dekker pair with migrate() (it claims an inbox
    // position, then reads `parked`); work_available() re-reads the inbox after it.
    w.parked.store(true, std::memory_order_seq_cst);
    // relaxed: metrics.
    bump(w.m_parks);
    std::int64_t timeout = -1;
    if (!opts_.virtual_time) {
        // seq_cst: read after the announcement above (Dekker with add_timer).
        const std::int64_t d = next_deadline_.load(std::memory_order_seq_cst);
        if (d != INT64_MAX && (timer_owner_ == nullptr || d < timer_owner_deadline_)) {
            timer_owner_ = &w;
            timer_owner_deadline_ = d;
            timeout = std::max<std::int64_t>(0, d - now_ns());
        }
    }
    // Real time: the last worker to park, with no timer pending, watches for a
    // deadlock (see "Deadlock detection" in scheduler.hpp).
    bool watch = false;
    std::uint64_t watch_sig = 0;
    std::int64_t watch_start = 0;
    if (deadlock_ns_ > 0 && !opts_.virtual_time && timeout < 0 && sleepers_.size() == workers_.size() &&
        ext_count_.load(std::memory_order_seq_cst) > 0 &&  // seq_cst: read once per park, not a hot path
        blocking_running_.load(std::memory_order_seq_cst) == 0 &&  // seq_cst: as above
        next_deadline_.load(std::memory_order_seq_cst) == INT64_MAX) {  // seq_cst: as above
        watch = true;
        watch_sig = park_signature_locked();
        watch_start = now_ns();
        timeout = deadlock_ns_;
    }
    lk.unlock();
    if (!work_available(w)) futex_wait(w.wake_word, 0, timeout);
    // relaxed: only a heuristic for migrate() from here on (its exact check is the
    // seq_cst pair above, and a stale `true` only makes it keep the task).
    w.parked.store(false, std::memory_order_relaxed);
    lk.lock();
    if (w.sleeping && watch && sleepers_.size() == workers_.size() && park_signature_locked() == watch_sig &&
        now_ns() - watch_start >= deadlock_ns_) {
        // Nobody woke us and no worker parked or was woken for deadlock_timeout: no
        // task ran in that time. The check validates what plain threads may be doing.
        check_deadlock_locked();
    }
    if (w.sleeping) {  // timed out or re-check found work: nobody took us off the list
        w.sleeping = false;
        sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), &w));
        // seq_cst: part of the Dekker protocol on idle_.
        idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
    } else {
        // relaxed: metrics.
        bump(w.m_unparks);
    }
    Worker* successor = nullptr;
    if (timer_owner_ == &w) {
        timer_owner_ = nullptr;
        // We leave while timers are pending: another sleeper must take the timer
        // role, or a due timer would wait for someone to finish running.
        // seq_cst: as in add_timer.
        if (!opts_.virtual_time && next_deadline_.load(std::memory_order_seq_cst) != INT64_MAX && !sleepers_.empty()) {
            successor = sleepers_.back();
            sleepers_.pop_back();
            successor->sleeping = false;
            // seq_cst: part of the Dekker protocol on idle_.
            idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
        }
    }
    lk.unlock();
    if (successor != nullptr) wake_worker(*successor);
    // seq_cst: Dekker with monitor_main(): our sleeper count left idle_ (an RMW, by us
    // or by our waker) before this load; the monitor stores monitor_idle_ before it
    // re-reads idle_. One of the two sees the other.
    if (monitor_idle_.load(std::memory_order_seq_cst) && monitor_idle_.exchange(false, std::memory_order_seq_cst))
        wake_monitor();
    if (!opts_.virtual_time) fire_due_timers(w);
}

// ── stall monitor ──

void Scheduler::wake_monitor() noexcept {
    monitor_word_.store(1);  // seq_cst: see monitor_main
    futex_wake(monitor_word_);
}

void Scheduler::monitor_main() {
    // No allocation on this thread (marks_ and monitor_producer_ were made by the
    // constructor): a malloc here gave the thread a mimalloc heap of its own, and that
    // alone slowed spawn_join by ~25% (measured, not understood).
    StallMark* const marks = marks_.get();
    std::int64_t period = kMonitorNs;
    while (!stop_.load()) {
        // seq_cst, as every store to the word: a wake (store 1) after this store is
        // seen by the futex; one before it is cut short by the period at worst.
        monitor_word_.store(0);
        futex_wait(monitor_word_, 0, period);
        if (stop_.load()) break;
        // seq_cst: Dekker with the end of park() (see there).
        if (sleepers_of(idle_.load(std::memory_order_seq_cst)) == workers_.size()) {
            // Every worker is parked: nothing can stall. Back off first (a runtime that
            // parks between short bursts would otherwise pay a futex wake per burst),
            // then sleep until a worker unparks.
            if (period < kMonitorIdleMaxNs) {
                period = std::min(2 * period, kMonitorIdleMaxNs);
                continue;
            }
            // The stores, then the re-checks, all seq_cst: a worker unparking or the
            // destructor (stop_, then wake_monitor) is seen here, or sees us.
            monitor_word_.store(0);
            monitor_idle_.store(true, std::memory_order_seq_cst);
            if (sleepers_of(idle_.load(std::memory_order_seq_cst)) == workers_.size() && !stop_.load())
                futex_wait(monitor_word_, 0, -1);
            monitor_idle_.store(false, std::memory_order_seq_cst);
            for (std::size_t i = 0; i < 3 * workers_.size(); ++i) marks[i].armed = false;  // start afresh
            period = kMonitorNs;
            continue;
        }
        period = monitor_round(marks) ? kMonitorNs : std::min(2 * period, kMonitorBusyMaxNs);
    }
}

namespace {
// Whether a task that was in the area at the mark is still there kStallNs later
// (then the mark is re-armed at the current tail).
template <class Area>
bool stalled(const Area& area, Scheduler::StallMark& m, std::int64_t now) noexcept {
    const std::uint32_t head = area.head_index();
    const std::uint32_t tail = area.tail_index();
    if (m.armed && static_cast<std::int32_t>(head - m.upto) < 0) {  // a marked task is still there
        if (now - m.at < kStallNs) return false;
        m.upto = tail;
        m.at = now;
        return true;
    }
    m.armed = tail != head;  // everything marked has left: mark what is there now
    m.upto = tail;
    m.at = now;
    return false;
}
}  // namespace

bool Scheduler::monitor_round(StallMark* marks) {
    // seq_cst: read once per round, not a hot path. Nobody idle: nothing to move.
    if (sleepers_of(idle_.load(std::memory_order_seq_cst)) == 0) return false;
    // Real time even under virtual time: a stall is a task not being run.
    const std::int64_t now = steady_ns();
    bool rescued = false;
    const std::size_t n = workers_.size();
    auto rescue = [&](auto& area) {
        // Counted before it leaves the area, so that a worker about to park (and
        // the virtual clock) never sees it nowhere: injected_ > 0 keeps them up.
        for (;;) {
            // seq_cst: the count a parking worker re-checks (see inject()).
            injected_.fetch_add(1, std::memory_order_seq_cst);
            TaskHeader* x = area.steal_one();
            if (x == nullptr) {
                // seq_cst: as above.
                injected_.fetch_sub(1, std::memory_order_seq_cst);
                break;
            }
            // The constructor's token: no allocation on the monitor's thread (while
            // the pre-allocated blocks last).
            injector_.enqueue(*monitor_producer_, x);
            wake_for_injected();
            // relaxed: a statistic.
            m_rescued_.fetch_add(1, std::memory_order_relaxed);
            rescued = true;
        }
    };
    for (std::size_t i = 0; i < n; ++i) {
        Worker& v = *workers_[i];
        if (stalled(v.woken, marks[i], now)) rescue(v.woken);
        if (stalled(v.inbox, marks[n + i], now)) rescue(v.inbox);
        // A run queue whose head has not moved for kStallNs while a worker sleeps:
        // its owner runs one long task and nobody was told (budget rotations do not
        // notify, see "Yield"). Wake an idle worker; it steals half the queue.
        if (stalled(v.queue, marks[2 * n + i], now)) {
            notify_one();
            rescued = true;
        }
    }
    return rescued;
}

// ── timers ──

namespace {
bool timer_less(const TimerEntry* a, const TimerEntry* b) noexcept {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}
}  // namespace

void Scheduler::add_timer(TimerEntry& e) noexcept {
    bool new_top = false;
    {
        std::lock_guard lk(timer_mx_);
        e.seq = timer_seq_++;
        std::size_t i = heap_.size();
        heap_.push_back(&e);
        while (i > 0) {
            const std::size_t parent = (i - 1) / 2;
            if (!timer_less(heap_[i], heap_[parent])) break;
            std::swap(heap_[i], heap_[parent]);
            heap_[i]->index = static_cast<std::uint32_t>(i);
            i = parent;
        }
        heap_[i]->index = static_cast<std::uint32_t>(i);
        new_top = (i == 0);
        // seq_cst: Dekker with park()'s read of next_deadline_ after announcing itself.
        if (new_top) next_deadline_.store(e.deadline, std::memory_order_seq_cst);
    }
    if (new_top && !opts_.virtual_time) wake_timer_owner();
}

void Scheduler::wake_timer_owner() noexcept {
    // seq_cst: see add_timer.
    if (sleepers_of(idle_.load(std::memory_order_seq_cst)) == 0) return;
    std::unique_lock lk(idle_mx_);
    Worker* target = nullptr;
    if (timer_owner_ != nullptr) {
        if (timer_owner_deadline_ <= next_deadline_.load(std::memory_order_seq_cst)) return;  // seq_cst: as above
        target = timer_owner_;
    } else if (!sleepers_.empty()) {
        target = sleepers_.back();
    }
    if (target == nullptr) return;
    if (target->sleeping) {
        target->sleeping = false;
        sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), target));
        // seq_cst: part of the Dekker protocol on idle_.
        idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);
    }
    lk.unlock();
    wake_worker(*target);
}

namespace {
void heap_remove_at(std::vector<TimerEntry*>& heap, std::size_t i) noexcept {
    heap[i]->index = TimerEntry::kNotQueued;
    TimerEntry* last = heap.back();
    heap.pop_back();
    if (i == heap.size()) return;
    heap[i] = last;
    last->index = static_cast<std::uint32_t>(i);
    // sift up
    while (i > 0) {
        const std::size_t parent = (i - 1) / 2;
        if (!timer_less(heap[i], heap[parent])) break;
        std::swap(heap[i], heap[parent]);
        heap[i]->index = static_cast<std::uint32_t>(i);
        heap[parent]->index = static_cast<std::uint32_t>(parent);
        i = parent;
    }
    // sift down
    for (;;) {
        const std::size_t l = 2 * i + 1;
        const std::size_t r = l + 1;
        std::size_t m = i;
        if (l < heap.size() && timer_less(heap[l], heap[m])) m = l;
        if (r < heap.size() && timer_less(heap[r], heap[m])) m = r;
        if (m == i) break;
        std::swap(heap[i], heap[m]);
        heap[i]->index = static_cast<std::uint32_t>(i);
        heap[m]->index = static_cast<std::uint32_t>(m);
        i = m;
    }
}
}  // namespace

void Scheduler::remove_timer(TimerEntry& e) noexcept {
    std::lock_guard lk(timer_mx_);
    if (e.index == TimerEntry::kNotQueued) return;
    heap_remove_at(heap_, e.index);
    // seq_cst: see add_timer.
    next_deadline_.store(heap_.empty() ? INT64_MAX : heap_[0]->deadline, std::memory_order_seq_cst);
}

bool Scheduler::disarm_timeout(TimeoutEntry& e) noexcept {
    {
        std::lock_guard lk(timer_mx_);
        if (e.index != TimerEntry::kNotQueued) {
            heap_remove_at(heap_, e.index);
            // seq_cst: see add_timer.
            next_deadline_.store(heap_.empty() ? INT64_MAX : heap_[0]->deadline, std::memory_order_seq_cst);
            return false;
        }
    }
    // Fired: the firer set kFiring under timer_mx_ and is cancelling us outside it (a
    // few instructions, a wake at most). acquire: pairs with its release store.
    unsigned spins = 0;
    std::uint8_t st = 0;
    // acquire: pairs with fire_due_timers' release store of kFired/kFiredIdle.
    while ((st = e.fire_state.load(std::memory_order_acquire)) == TimeoutEntry::kFiring) {
        if (++spins < 64) cpu_relax();
        else std::this_thread::yield();
    }
    return st == TimeoutEntry::kFired;
}

std::int64_t Scheduler::earliest_deadline() const noexcept {
    std::lock_guard lk(timer_mx_);
    return heap_.empty() ? INT64_MAX : heap_[0]->deadline;
}

bool Scheduler::advance_virtual_clock() noexcept {
    const std::int64_t d = earliest_deadline();
    if (d == INT64_MAX) return false;
    // relaxed: only the last idle worker writes the clock, under idle_mx_.
    if (d > vclock_.load(std::memory_order_relaxed))
        // release: pairs with the acquire load in now_ns().
        vclock_.store(d, std::memory_order_release);
    return true;
}

void Scheduler::fire_due_timers(Worker& w) noexcept {
    // seq_cst: see add_timer.
    // (No clock read while no timer is pending: this runs at every batch boundary.)
    const std::int64_t next = next_deadline_.load(std::memory_order_seq_cst);
    if (next == INT64_MAX || next > now_ns()) return;
    std::vector<Worker::Fired>& fired = w.fired;
    {
        std::lock_guard lk(timer_mx_);
        const std::int64_t now = now_ns();
        while (!heap_.empty() && heap_[0]->deadline <= now) {
            TimerEntry* e = heap_[0];
            heap_remove_at(heap_, 0);
            // Still under timer_mx_: the awaiter cannot leave before we are done with e.
            // A won claim freezes the task until we schedule it, so its header stays
            // valid after we unlock. A TimeoutEntry stays alive until we store kFired
            // (disarm_timeout waits for it), and its task cannot complete before.
            if (e->cancels) {
                auto* te = static_cast<TimeoutEntry*>(e);
                // relaxed: disarm_timeout reads it only through the release/acquire
                // pair on kFired (it first finds the entry gone under timer_mx_).
                te->fire_state.store(TimeoutEntry::kFiring, std::memory_order_relaxed);
                fired.push_back({e->task, te});
            } else if (e->task->claim(e->token)) {
                fired.push_back({e->task, nullptr});
            }
        }
        // seq_cst: see add_timer.
        next_deadline_.store(heap_.empty() ? INT64_MAX : heap_[0]->deadline, std::memory_order_seq_cst);
    }
    // Outside timer_mx_: waking may take idle_mx_, and park() takes timer_mx_ under
    // idle_mx_ (one lock order: idle_mx_ before timer_mx_). Deadline order.
    for (const Worker::Fired& f : fired) {
        if (f.timeout == nullptr) {
            f.task->schedule();
            continue;
        }
        // In place, counted (the scope tells it from others) — unless a cancellation
        // is already pending: the task was woken with it and will deliver it first
        // (asyncio: its wake-up is queued before this timer's callback, so it leaves
        // the timeout block before the timer fires). Counting ours too would make one
        // CancelledError stand for two requests and turn the other one into a timeout.
        const bool counted = f.task->cancel_unless_pending();
        const std::uint8_t done = counted ? TimeoutEntry::kFired : TimeoutEntry::kFiredIdle;
        // release: pairs with disarm_timeout's acquire; our last touch of the entry.
        f.timeout->fire_state.store(done, std::memory_order_release);
    }
    // relaxed: metrics.
    bump(w.m_timers, fired.size());
    fired.clear();
}

// ── blocking pool ──

void Scheduler::submit_blocking(TaskHeader& t, BlockingJob* job) {
    // seq_cst: counted before the job can finish, so virtual time never jumps while
    // a job runs (park() reads it).
    blocking_running_.fetch_add(1, std::memory_order_seq_cst);
    std::unique_lock lk(block_mx_);
    try {
        blocking_tasks_.push_back(&t);
    } catch (...) {
        blocking_running_.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as above
        throw;
    }
    block_jobs_.push_back(job);
    if (block_idle_ == 0 && block_threads_.size() < opts_.max_blocking_threads) {
        try {
            block_threads_.emplace_back([this] { blocking_thread_main(); });
        } catch (...) {
            if (block_threads_.empty()) {
                block_jobs_.pop_back();
                blocking_tasks_.pop_back();
                blocking_running_.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as above
                throw;
            }
        }
    }
    lk.unlock();
    block_cv_.notify_one();
}

void Scheduler::blocking_done(TaskHeader& t) noexcept {
    {
        std::lock_guard lk(block_mx_);
        // The job still holds a ref on t. One entry per job: t may have another job now.
        auto it = std::find(blocking_tasks_.begin(), blocking_tasks_.end(), &t);
        if (it != blocking_tasks_.end()) blocking_tasks_.erase(it);
    }
    // seq_cst: the job's wake (an injection, counted in injected_) happened before;
    // a worker that sees 0 here also sees that injection.
    blocking_running_.fetch_sub(1, std::memory_order_seq_cst);
    // Under virtual time the last parked worker may be waiting for this to reach 0.
    if (opts_.virtual_time) {
        std::unique_lock lk(idle_mx_);
        if (sleepers_.size() != workers_.size()) return;  // someone is awake: it will see it
        Worker* s = sleepers_.back();
        sleepers_.pop_back();
        s->sleeping = false;
        idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);  // seq_cst: Dekker on idle_
        lk.unlock();
        wake_worker(*s);
    }
}

void Scheduler::blocking_thread_main() {
    std::unique_lock lk(block_mx_);
    for (;;) {
        while (block_jobs_.empty() && !block_stop_) {
            ++block_idle_;
            block_cv_.wait(lk);
            --block_idle_;
        }
        if (block_jobs_.empty()) return;
        BlockingJob* job = block_jobs_.front();
        block_jobs_.pop_front();
        lk.unlock();
        job->run();
        lk.lock();
    }
}

// ── completion, registry, external waiting, shutdown ──

void SpinLock::lock() noexcept {
    unsigned spins = 0;
    for (;;) {
        // acquire: pairs with the release store in unlock().
        if (!locked_.exchange(true, std::memory_order_acquire)) return;
        // relaxed: wait for the lock to look free before trying again (TTAS).
        while (locked_.load(std::memory_order_relaxed)) {
            if (++spins < 128) cpu_relax();
            else std::this_thread::yield();
        }
    }
}

void Scheduler::registry_insert(TaskHeader& t) noexcept {
    Worker* w = tl_worker;
    const std::size_t shard = (w != nullptr && w->sched == this) ? w->index : workers_.size();
    t.shard_ = static_cast<std::uint16_t>(shard);
    RegistryShard& s = shards_[shard];
    std::lock_guard lk(s.mx);
    t.id_ = (++s.next_id) * (workers_.size() + 1) + shard;
    t.reg_prev_ = nullptr;
    t.reg_next_ = s.head;
    if (s.head != nullptr) s.head->reg_prev_ = &t;
    s.head = &t;
    s.spawned.fetch_add(1);  // seq_cst: live_count()'s argument runs in the total order
}

void Scheduler::registry_remove(TaskHeader& t) noexcept {
    RegistryShard& s = shards_[t.shard_];
    std::lock_guard lk(s.mx);
    if (t.reg_prev_ != nullptr) t.reg_prev_->reg_next_ = t.reg_next_;
    else s.head = t.reg_next_;
    if (t.reg_next_ != nullptr) t.reg_next_->reg_prev_ = t.reg_prev_;
}

void Scheduler::registry_done(std::size_t shard) noexcept {
    // seq_cst (a release too): after the task's frame was released, so shutdown()
    // that reads 0 (its loads acquire) sees every frame destroyed.
    shards_[shard].done.fetch_add(1);
}

std::size_t Scheduler::live_count() const noexcept {
    // The shards cannot be read at one instant, and a task may be spawned into a shard
    // already read (its parent finishing in a shard read later): a per-shard live
    // count could sum to 0 with that child alive. So the counts are monotonic and
    // every `done` is read before any `spawned` (all seq_cst, so in one total order):
    // done_sum <= (all done at the end of the first pass) <= (all spawned then) <=
    // spawned_sum, so equal sums mean that at that moment no task was alive.
    std::uint64_t done = 0, spawned = 0;
    for (std::size_t i = 0; i <= workers_.size(); ++i) done += shards_[i].done.load();
    for (std::size_t i = 0; i <= workers_.size(); ++i) spawned += shards_[i].spawned.load();
    return static_cast<std::size_t>(spawned - done);
}

void Scheduler::on_complete(TaskHeader& t) noexcept {
    // asyncio: a task that cancelled itself and returns without suspending again
    // ends cancelled ("cancelled right before coro stops"); see cancel().
    if (!t.exception_ && t.self_cancel_ && t.cancel_pending()) t.exception_ = std::make_exception_ptr(CancelledError{});
    t.outcome_cancelled_ = is_cancelled_error(t.exception_);
    if (debug_) [[unlikely]] {
        if (tl_slice_start != 0) debug_after_slice(t, tl_slice_start);
        if (t.debug_locks_held_ > 0)
            std::fprintf(stderr,
                         "spindle debug: task %" PRIu64 " \"%s\" finished while still holding %u Lock(s) it "
                         "acquired (a Lock has no owner: nobody else will release it unless your code does)\n",
                         t.id_, task_display_name(t).c_str(), t.debug_locks_held_);
    }
    // Counted before the joiners are told, so a block_on that returns sees it.
    if (Worker* w = tl_worker; w != nullptr && w->sched == this)
        // A statistic; the joiner's wake (release/acquire) carries it.
        bump(w->m_completed);
    registry_remove(t);
    // Sets kComplete; takes the join lock only if a joiner ever registered (a task
    // that finishes before anyone awaits it costs one CAS here, not three RMWs).
    if (t.complete_and_lock_joiners()) {
        // The list is newest-first; asyncio runs done-callbacks first-come first, so
        // reverse it before notifying.
        JoinNode* fifo = nullptr;
        for (JoinNode* n = t.joiners_; n != nullptr;) {
            JoinNode* next = n->next;
            n->next = fifo;
            fifo = n;
            n = next;
        }
        for (JoinNode* n = fifo; n != nullptr;) {
            JoinNode* next = n->next;  // read before notify: the node may die after it
            n->prev = n->next = nullptr;
            n->notify(n);
            n = next;
        }
        t.joiners_ = nullptr;
        t.unlock_joiners();
    }
    tl_completed = true;
    if (CompletionHook* h = t.hook_) h->on_done(h, t);
    const std::size_t shard = t.shard_;
    t.release();  // may destroy the frame: t is not touched after this
    registry_done(shard);
    // relaxed: only set while shutdown() waits; a missed notify costs one 20 ms poll.
    if (shutting_down_.load(std::memory_order_relaxed)) {
        std::lock_guard lk(live_mx_);
        live_cv_.notify_all();
    }
}

namespace {
void external_join_notify(JoinNode* n) noexcept {
    auto* self = static_cast<ExternalJoin*>(n);
    // release: pairs with the acquire load in wait_external.
    self->done.fetch_or(ExternalJoin::kCompleted, std::memory_order_release);
    futex_wake(self->done);
}
}  // namespace

void Scheduler::wait_external(TaskHeader& t) {
    check_not_own_worker("Runtime::block_on");
    ExternalJoin node;
    node.notify = &external_join_notify;
    t.lock_joiners();
    const bool added = t.add_joiner_locked(&node);
    t.unlock_joiners();
    if (!added) return;
    if (deadlock_ns_ > 0) {
        {
            std::lock_guard lk(ext_mx_);
            ext_waiters_.push_back(&node);
            // seq_cst: park() reads it without ext_mx_.
            ext_count_.fetch_add(1, std::memory_order_seq_cst);
        }
        // Every worker may have gone idle (and checked) before we registered.
        poke_idle_worker();
    }
    // acquire: pairs with the release RMWs in external_join_notify / report_deadlock.
    while (node.done.load(std::memory_order_acquire) == 0) futex_wait(node.done, 0, -1);
    if (deadlock_ns_ > 0) {
        std::lock_guard lk(ext_mx_);
        auto it = std::find(ext_waiters_.begin(), ext_waiters_.end(), &node);
        if (it != ext_waiters_.end()) {
            ext_waiters_.erase(it);
            ext_count_.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as above
        }
    }
    // The completing worker may still be inside unlock_joiners() of t, but no longer
    // touches the node after notify's store... except futex_wake on node.done.
    // Take the joiners lock once so that call has returned before `node` dies; after
    // a deadlock report the node is still linked: unlink it.
    t.lock_joiners();
    t.remove_joiner_locked(&node);
    t.unlock_joiners();
    // acquire: as above.
    const std::uint32_t done = node.done.load(std::memory_order_acquire);
    if ((done & ExternalJoin::kCompleted) == 0U) throw DeadlockError(node.deadlock);
}

void Scheduler::poke_idle_worker() noexcept {
    std::unique_lock lk(idle_mx_);
    if (sleepers_.size() != workers_.size()) return;  // someone is awake: it will park and check
    Worker* s = take_sleeper();
    idle_.fetch_sub(kSleeperOne, std::memory_order_seq_cst);  // seq_cst: Dekker on idle_
    lk.unlock();
    wake_worker(*s);
}

void Scheduler::debug_after_slice(TaskHeader& t, std::int64_t start_ns) noexcept {
    const std::int64_t ran = steady_ns() - start_ns;
    // relaxed: a configuration value.
    if (ran <= g_slow_ns.load(std::memory_order_relaxed)) return;
    try {
        std::fprintf(stderr, "spindle debug: task %" PRIu64 " \"%s\" ran for %.1f ms without suspending\n", t.id_,
                     task_display_name(t).c_str(), static_cast<double>(ran) / 1e6);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a diagnostic must not throw
    }
}

void Scheduler::check_not_own_worker(const char* what) const {
    if (tl_worker != nullptr && tl_worker->sched == this)
        throw std::logic_error(std::string("spindle: ") + what +
                               " called from one of the runtime's own workers (it would wait for itself)");
}

void Scheduler::shutdown() {
    check_not_own_worker("Runtime shutdown");
    shutting_down_.store(true);
    for (;;) {
        std::vector<TaskHeader*> live;
        for (std::size_t i = 0; i <= workers_.size(); ++i) {
            std::lock_guard lk(shards_[i].mx);
            for (TaskHeader* t = shards_[i].head; t != nullptr; t = t->reg_next_) {
                t->add_ref();
                live.push_back(t);
            }
        }
        for (TaskHeader* t : live) {
            t->cancel();
            t->release();
        }
        // Done when every task has completed *and* released its frame (the count
        // drops after the frame is gone, the list entry before). Re-cancel
        // stragglers (spawned during shutdown, or that swallowed the cancellation)
        // every 20 ms.
        std::unique_lock lk(live_mx_);
        if (live_cv_.wait_for(lk, std::chrono::milliseconds(20), [this] { return live_count() == 0; })) break;
    }
    shutting_down_.store(false);
}

namespace {
std::string fmt_time(std::int64_t ns) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.3fs", static_cast<double>(ns) / 1e9);
    return buf;
}
std::string fmt_ptr(const void* p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", p);
    return buf;
}
}  // namespace

std::string Scheduler::dump() const { return snapshot(nullptr, nullptr); }

std::string Scheduler::snapshot(bool* stable_out, std::size_t* live_out) const {
    bool stable = true;
    // 1. Timers: (task, deadline), under timer_mx_ (entries die only after leaving
    //    the heap under it; we keep pointers only to compare).
    // A wait_for timeout (TimeoutEntry) is kept apart from a sleep's timer: it annotates
    // whatever the task waits on.
    std::vector<std::pair<const TaskHeader*, std::int64_t>> timers;
    std::vector<std::pair<const TaskHeader*, std::int64_t>> timeouts;
    {
        std::lock_guard lk(timer_mx_);
        timers.reserve(heap_.size());
        for (const TimerEntry* e : heap_) (e->cancels ? timeouts : timers).emplace_back(e->task, e->deadline);
    }
    if (!timers.empty() || !timeouts.empty()) stable = false;
    // 2. to_thread jobs running.
    std::vector<const TaskHeader*> blocking;
    {
        std::lock_guard lk(const_cast<std::mutex&>(block_mx_));
        blocking.assign(blocking_tasks_.begin(), blocking_tasks_.end());
    }
    if (!blocking.empty()) stable = false;
    // 3. Every registry shard, held together: no task can leave the registry (so none
    //    can complete and free its frame) while we look at it, and none can join it.
    std::vector<std::unique_lock<SpinLock>> held;
    held.reserve(workers_.size() + 1);
    for (std::size_t i = 0; i <= workers_.size(); ++i) held.emplace_back(shards_[i].mx);
    // 4. Joins: who awaits whose JoinHandle. A join node is unlinked under the joined
    //    task's kJoinLock before its awaiter can leave, so under that lock it is alive.
    struct Join {
        const TaskHeader* waiter;
        std::uint64_t target_id;
        std::string target_name;
    };
    std::vector<Join> joins;
    for (std::size_t i = 0; i <= workers_.size(); ++i) {
        for (TaskHeader* t = shards_[i].head; t != nullptr; t = t->reg_next_) {
            t->lock_joiners();
            for (JoinNode* n = t->joiners_; n != nullptr; n = n->next) {
                const TaskHeader* waiter = nullptr;
                if (n->notify == &JoinAwaiterBase::notify_joiner) waiter = static_cast<JoinAwaiterBase*>(n)->self;
                if (waiter != nullptr) joins.push_back({waiter, t->id_, task_display_name(*t)});
            }
            t->unlock_joiners();
        }
    }
    // 5. One line per task, by id.
    std::vector<std::pair<std::uint64_t, std::string>> lines;
    std::size_t live = 0;
    const std::int64_t now = now_ns();
    for (std::size_t i = 0; i <= workers_.size(); ++i) {
        for (TaskHeader* t = shards_[i].head; t != nullptr; t = t->reg_next_) {
            ++live;
            // seq_cst: with the re-reads below, brackets the cell read (see scheduler.hpp).
            const std::uint32_t s1 = t->state_.load(std::memory_order_seq_cst);
            const std::uint64_t w1 = t->wait_.load(std::memory_order_seq_cst);  // seq_cst: as above
            std::string line = "task " + std::to_string(t->id_) + " \"" + task_display_name(*t) + "\": ";
            bool parked = false;
            if ((s1 & TaskHeader::kRunning) != 0U) {
                line += "running";
            } else if ((s1 & TaskHeader::kNotified) != 0U) {
                line += "ready";
            } else {
                parked = true;
                WaitDescription d;
                std::uint64_t cell_value = 0;
                const Join* join = nullptr;
                for (const Join& j : joins)
                    if (j.waiter == t) join = &j;
                std::int64_t deadline = -1;
                for (const auto& [task, dl] : timers)
                    if (task == t) deadline = dl;
                std::int64_t timeout = -1;  // the earliest of its wait_for deadlines
                for (const auto& [task, dl] : timeouts)
                    if (task == t && (timeout < 0 || dl < timeout)) timeout = dl;
                const bool in_thread = std::find(blocking.begin(), blocking.end(), t) != blocking.end();
                if (describe_cell_wait(*t, d, cell_value)) {
                    const std::uint64_t n = d.waiters;
                    line += std::string("parked on ") + d.kind + " " + fmt_ptr(d.address) + " (" + std::to_string(n) +
                            (n == 1 ? " waiter)" : " waiters)");
                    if (!cell::is_waiting(cell_value) || cell::task_of(cell_value) != t) {
                        line += ", being woken";
                        stable = false;
                    }
                } else if (join != nullptr) {
                    line += "parked on JoinHandle of task " + std::to_string(join->target_id) + " \"" +
                            join->target_name + "\"";
                } else if (deadline >= 0) {
                    line += "sleeping until " + fmt_time(deadline) + " (now " + fmt_time(now) + ")";
                } else if (in_thread) {
                    line += "parked on to_thread (a blocking job is running)";
                } else if ((w1 & TaskHeader::kSyncWait) != 0U) {
                    line += "parked on a primitive (leaving it)";
                } else {
                    line += "parked (gather, TaskGroup or another wait)";
                }
                if (timeout >= 0) line += " (wait_for, times out at " + fmt_time(timeout) + ")";
                // seq_cst: the second read of the bracket.
                const std::uint32_t s2 = t->state_.load(std::memory_order_seq_cst);
                const std::uint64_t w2 = t->wait_.load(std::memory_order_seq_cst);  // seq_cst: as above
                if (s1 != s2 || w1 != w2 || (w1 & TaskHeader::kArmed) == 0U ||
                    (s1 & (TaskHeader::kCancelReq | TaskHeader::kComplete)) != 0U)
                    stable = false;  // a wake, a cancellation or a new wait in flight
            }
            if (!parked) stable = false;
            lines.emplace_back(t->id_, std::move(line));
        }
    }
    held.clear();
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (auto& [id, l] : lines) {
        out += l;
        out += '\n';
    }
    if (stable_out != nullptr) *stable_out = stable;
    if (live_out != nullptr) *live_out = live;
    return out;
}

std::uint64_t Scheduler::park_signature_locked() const noexcept {
    std::uint64_t sig = 0;
    // relaxed: every write of these counters happens under idle_mx_, which we hold.
    for (const auto& w : workers_)
        sig += w->m_parks.load(std::memory_order_relaxed) + w->m_unparks.load(std::memory_order_relaxed);  // relaxed: as above
    return sig;
}

void Scheduler::check_deadlock_locked() {
    // seq_cst (these loads): the load halves of the Dekker pairs with inject(),
    // submit_blocking() and add_timer(); read before and after the snapshot.
    auto quiet = [this] {
        return ext_count_.load(std::memory_order_seq_cst) > 0 && injected_.load(std::memory_order_seq_cst) == 0 &&
               blocking_running_.load(std::memory_order_seq_cst) == 0 &&  // seq_cst: as above
               next_deadline_.load(std::memory_order_seq_cst) == INT64_MAX;  // seq_cst: as above
    };
    if (!quiet()) return;
    bool stable = false;
    std::size_t live = 0;
    try {
        std::string text = snapshot(&stable, &live);
        if (!stable || live == 0 || !quiet()) return;
        report_deadlock(text);
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory: no report this time
    }
}

void Scheduler::report_deadlock(const std::string& dump) {
    std::string msg = "spindle::DeadlockError: every task is parked";
    if (opts_.virtual_time) msg += " (virtual time: the clock cannot move)";
    else msg += " and has been for " + std::to_string(opts_.deadlock_timeout.ms) + " ms";
    msg += ", with no timer pending, no to_thread job running and nothing queued from outside. Tasks:\n";
    msg += dump;
    std::lock_guard lk(ext_mx_);
    for (ExternalJoin* e : ext_waiters_) {
        e->deadlock = msg;
        // release: pairs with the acquire loads in wait_external (the message).
        e->done.fetch_or(ExternalJoin::kDeadlock, std::memory_order_release);
        futex_wake(e->done);  // the node stays alive: its thread unregisters under ext_mx_ first
    }
    ext_waiters_.clear();
    // seq_cst: park() reads it without ext_mx_.
    ext_count_.store(0, std::memory_order_seq_cst);
}

RuntimeMetrics Scheduler::metrics() const {
    RuntimeMetrics m;
    for (const auto& w : workers_) {
        // relaxed: counters are independent and read as a snapshot.
        m.steals += w->m_steals.load(std::memory_order_relaxed);
        m.parks += w->m_parks.load(std::memory_order_relaxed);  // relaxed: a statistic
        m.unparks += w->m_unparks.load(std::memory_order_relaxed);
        m.timers_fired += w->m_timers.load(std::memory_order_relaxed);  // relaxed: a statistic
        m.migrations += w->m_migrations.load(std::memory_order_relaxed);  // relaxed: a statistic
        m.tasks_spawned += w->m_spawned.load(std::memory_order_relaxed);
        m.tasks_completed += w->m_completed.load(std::memory_order_relaxed);  // relaxed: a statistic
    }
    // relaxed: a snapshot.
    m.injections = m_injections_.load(std::memory_order_relaxed);
    m.tasks_spawned += m_external_spawns_.load(std::memory_order_relaxed);  // relaxed: a statistic
    m.stall_rescues = m_rescued_.load(std::memory_order_relaxed);  // relaxed: a statistic
    m.workers = workers_.size();
    return m;
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

namespace spindle::detail {
void blocking_done(TaskHeader& t) noexcept { t.sched_->blocking_done(t); }
}  // namespace spindle::detail
