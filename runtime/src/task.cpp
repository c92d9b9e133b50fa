// runtime/src/task.cpp — a task's side of the scheduler: the TaskHeader methods
// (schedule, cancel, the join lock and the joiner list, frame allocation and
// destruction), the join awaiter (JoinAwaiterBase), and the thread-locals with their
// accessors (current_task, current_worker_hint, the coop budget, debug lock counts).
// The protocol on state_ and wait_ is documented in task_header.hpp.
//
// Invariants:
//   - schedule() hands a task to the scheduler once per kNotified: only the CAS that
//     sets kNotified on a task that is not running calls wake(); a task notified
//     while it runs is requeued or handed over by the worker that ends its slice
//     (run_task, "Migration to the waker" in worker.cpp).
//   - joiners_ is guarded by kJoinLock, a spin lock in state_; completion sets
//     kComplete, and takes the lock in the same CAS only if a joiner ever registered
//     (kJoined).
//   - only the winner of a claim touches a wait's node: a cancel that wins calls the
//     node's on_cancel, or for a sync wait touches only its cell (under EBR).
//   - the thread-locals of a worker (tl_worker, tl_task, tl_completed, tl_slice_start)
//     are defined here, once; the other files see them through scheduler_internal.hpp.
#include "scheduler_internal.hpp"

#include "spindle/runtime/detail/ebr.hpp"
#include "spindle/runtime/detail/fault_injection.hpp"
#include "spindle/runtime/detail/wait_queue.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#if SPINDLE_USE_MIMALLOC
#include <mimalloc.h>
#endif

namespace spindle::detail {

constinit thread_local std::uint32_t tl_coop_budget = UINT32_MAX;
constinit thread_local bool tl_debug = false;

constinit thread_local Worker* tl_worker = nullptr;
constinit thread_local TaskHeader* tl_task = nullptr;
constinit thread_local bool tl_completed = false;
constinit thread_local std::int64_t tl_slice_start = 0;  // debug mode: when the current resume began
constinit thread_local std::uint16_t tl_wake_home = 0;    // WakeHomeScope ("Home" in worker.cpp)

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

std::string exception_text(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "a non-std::exception";
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

std::uint16_t awake_home(std::uint16_t home) noexcept {
    const Worker* w = tl_worker;
    if (w == nullptr || w->index >= UINT16_MAX) return 0;
    if (home != 0 && w->sched->worker_awake(home - 1U)) return home;
    return static_cast<std::uint16_t>(w->index + 1);
}

WakeHomeScope::WakeHomeScope(std::uint16_t home) noexcept : saved_(tl_wake_home) { tl_wake_home = home; }
WakeHomeScope::~WakeHomeScope() { tl_wake_home = saved_; }

bool single_worker(const TaskHeader& t) noexcept { return t.sched_ == nullptr || t.sched_->worker_count() == 1; }

bool hand_over_self(TaskHeader& t, std::coroutine_handle<> h, std::uint16_t hint) noexcept {
    return t.sched_ != nullptr && t.sched_->hand_over_self(t, h, hint);
}

TaskHeader& require_task(const char* what) {
    if (tl_task == nullptr)
        throw std::logic_error(std::string("spindle: ") + what + " needs a running task (call it inside a spawned Task)");
    return *tl_task;
}

// TaskHeader::schedule() is in worker.cpp, next to Scheduler::wake() (one call
// inlined into the other: it runs on every wake).

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
    tsan_acquire(this);  // the task's last slice and every owner's release (scheduler_internal.hpp)
    // relaxed: we are the last owner (release()'s acquire, of the count or the decrement, ordered every store).
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
    resume_.destroy();  // the root frame: set at spawn, and again by the final suspension
}

namespace {
thread_local int tl_frame_fail_countdown = 0;  // fault_injection.hpp
}  // namespace

void fault::fail_frame_allocation_after(int n) noexcept { tl_frame_fail_countdown = n > 0 ? n : 0; }
int fault::frame_allocation_countdown() noexcept { return tl_frame_fail_countdown; }

// Frames come from mimalloc; sanitizer builds use the global operator new so that
// ASan/LSan track every frame.
// Frames come from mimalloc (SPINDLE_USE_MIMALLOC) unless a sanitizer must see them:
// when this library is compiled with one (kLibrarySanitized), or when a user's
// translation unit compiled with one registered itself (use_global_allocator(),
// called from task.hpp at static initialization). TSan and ASan intercept only the
// global allocator: a frame freed on one worker and reused by mimalloc on another
// looks like a race (TSan) or escapes poisoning (ASan). A frame allocated by mimalloc
// before a late registration is still freed by mimalloc (mi_is_in_heap_region).
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kLibrarySanitized = true;
#else
constexpr bool kLibrarySanitized = false;
#endif

namespace {
// relaxed everywhere: set once at static initialization (before any runtime starts)
// and never cleared; deallocate_frame copes with frames from before the switch.
std::atomic<bool> g_global_frames{kLibrarySanitized};
}  // namespace

void use_global_allocator() noexcept {
    g_global_frames.store(true, std::memory_order_relaxed);  // relaxed: see above
}
bool frames_from_global_allocator() noexcept {
    return g_global_frames.load(std::memory_order_relaxed);  // relaxed: see above
}

#if SPINDLE_USE_MIMALLOC
namespace {
// Frame recycler: a per-thread LIFO cache of freed frames by size (32-byte classes up
// to 1 KiB, at most kPerClass each). A frame freed on a worker is handed to the next
// frame of its class allocated there while still in cache: mimalloc alone reuses a
// page's freed blocks only once its free list runs dry, so a spawn touched a
// different (cold) block each time (fib_spawn: mi_malloc ~17% of the profile).
// Requests are rounded up to the class (mimalloc's own bins at these sizes are
// multiples of 32 from 128 bytes, so a frame's memory does not grow). Only in
// mimalloc mode: frames from the global allocator (sanitizers) are never cached,
// so ASan still sees every free. A thread's cache is freed when the thread exits.
struct FrameCache {
    static constexpr std::size_t kGrain = 32;
    static constexpr std::size_t kClasses = 32;  // up to 1024 bytes
    static constexpr std::uint32_t kPerClass = 64;
    struct Node {
        Node* next;
    };
    Node* head[kClasses] = {};
    std::uint32_t count[kClasses] = {};
    FrameCache() = default;
    FrameCache(const FrameCache&) = delete;
    FrameCache& operator=(const FrameCache&) = delete;
    ~FrameCache() {
        for (Node*& h : head)
            while (h != nullptr) mi_free(std::exchange(h, h->next));
    }
    static std::size_t class_of(std::size_t n) noexcept { return (n + kGrain - 1) / kGrain - 1; }
};
thread_local FrameCache tl_frame_cache;
}  // namespace
#endif

void* allocate_frame(std::size_t n) {
    if (tl_frame_fail_countdown > 0 && --tl_frame_fail_countdown == 0) throw std::bad_alloc();
#if SPINDLE_USE_MIMALLOC
    if (!g_global_frames.load(std::memory_order_relaxed)) {  // relaxed: see above
        const std::size_t c = FrameCache::class_of(n);
        if (c < FrameCache::kClasses) {
            FrameCache& fc = tl_frame_cache;
            if (FrameCache::Node* b = fc.head[c]) {
                fc.head[c] = b->next;
                --fc.count[c];
                return b;
            }
            n = (c + 1) * FrameCache::kGrain;
        }
        void* p = mi_malloc(n);
        if (p == nullptr) throw std::bad_alloc();
        return p;
    }
#endif
    return ::operator new(n);
}
void deallocate_frame(void* p, std::size_t n) noexcept {
#if SPINDLE_USE_MIMALLOC
    // relaxed: see above.
    if (!g_global_frames.load(std::memory_order_relaxed)) {
        const std::size_t c = FrameCache::class_of(n);
        if (c < FrameCache::kClasses) {
            FrameCache& fc = tl_frame_cache;
            if (fc.count[c] < FrameCache::kPerClass) {
                fc.head[c] = ::new (p) FrameCache::Node{fc.head[c]};
                ++fc.count[c];
                return;
            }
            mi_free(p);
            return;
        }
        mi_free_size(p, n);
        return;
    }
    if (mi_is_in_heap_region(p)) {
        // Allocated before a sanitized translation unit switched frames to the global
        // allocator (rounded to its class then: mi_free, not the sized form).
        mi_free(p);
        return;
    }
#endif
    ::operator delete(p, n);
}

std::string task_display_name(const TaskHeader& t) {
    if (t.name_ != nullptr) return t.name_;
    return "task-" + std::to_string(t.id_);
}

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

// ───────────────────────── Join awaiter ─────────────────────────

bool JoinAwaiterBase::park_on_target(std::coroutine_handle<> h) noexcept {
    target->lock_joiners();
    if (!target->add_joiner_locked(this)) {
        target->unlock_joiners();
        return false;
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

std::coroutine_handle<> JoinAwaiterBase::await_suspend(std::coroutine_handle<> h) {
    self = &require_task("co_await JoinHandle");
    if (self == target) throw std::logic_error("spindle: a task cannot await its own JoinHandle");
    notify = &JoinAwaiterBase::notify_joiner;
    if (Worker* w = tl_worker; w != nullptr && w->inline_joins_on && w->sched == target->sched_) {
        if (std::coroutine_handle<> run = w->sched->join_inline(*w, *this, h)) return run;
    }
    if (!park_on_target(h)) return h;  // completed meanwhile: no suspension, a pending cancel stays pending
    return std::noop_coroutine();
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
    forwarded = target->cancel() ? 1 : 2;
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

void JoinAwaiterBase::finish_resume_slow() {
    // A load before the RMW: nearly every join resumes with no cancellation pending,
    // and one that lands after the load is delivered at the next suspension point,
    // as if it had landed after the RMW.
    if (suspended && self->cancel_pending() && self->consume_cancel()) throw CancelledError{};
    // A forward the awaited task never observed (see `forwarded`): it ended with a
    // request still pending. One that observed it consumed it (a catch that returns a
    // value keeps that value, as in asyncio), and one cancelled before it first ran
    // ends with its own CancelledError, which await_resume() rethrows. The flag cannot
    // tell our request from a later one (review): a target that observed ours,
    // swallowed it and returned with another one pending also cancels us. That errs the
    // safe way (only for an awaiter whose own cancel() was accepted) and is asyncio's
    // outcome too, where a task that returns with a cancellation pending ends
    // cancelled; a count of delivered requests would be needed to do better.
    if (forwarded == 2 || (forwarded == 1 && target->cancel_pending() && !target->was_cancelled())) [[unlikely]]
        throw CancelledError{};
}

}  // namespace spindle::detail
