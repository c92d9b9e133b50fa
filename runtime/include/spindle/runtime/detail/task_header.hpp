// spindle/runtime/detail/task_header.hpp — the per-task control block and the park
// protocol every suspending awaiter uses. Shipped but internal: do not depend on it.
//
// ───────────────────────────── Overview ─────────────────────────────
// A spawned task is one coroutine frame. Its promise *is* its control block
// (TaskHeader is a base of the promise), so `spawn` costs exactly one allocation.
// Nested `Task`s awaited inside a spawned task carry an unused header; the cost is
// ~120 bytes per nested frame, paid to make spawn allocation-free beyond the frame.
//
// ───────────────────────── state_ (scheduling) ─────────────────────────
//   kNotified  the task is in a run queue, or must be re-queued when it stops running
//   kRunning   a worker is inside resume() of this task
//   kComplete  the root coroutine finished; its outcome is final
//   kCancelReq a cancellation is pending; consumed where it is delivered
//   kJoinLock  guards joiners_ (a bit lock taken only on join/complete, never on the
//              scheduling hot path)
//   kJoined    joiners_ has held a node at some unlock (set by that unlock, never
//              cleared): completion may skip the join lock only while it is clear
//   bits 8..31 the number of cancellation requests not withdrawn (CPython's
//              Task.cancelling()): cancel() adds one together with kCancelReq, a
//              wait_for timeout scope that fired withdraws its own (uncancel()), so a
//              scope can tell its own cancellation from anyone else's (modulo 2^24)
// Completion (complete_and_lock_joiners) sets kComplete in one CAS: without the lock
// when neither kJoinLock nor kJoined is set (nobody can be in joiners_: a node is
// added only under the lock, and the unlock that publishes it sets kJoined), else
// together with kJoinLock. So every joiner either finds kComplete under the lock (and
// does not register) or registers before completion and is notified.
// Invariants: a task is in at most one run queue (kNotified set by whoever enqueues
// it, cleared by the worker that dequeues it); only the worker holding kRunning may
// resume it; a wake that lands while kRunning is set only sets kNotified, and the
// running worker re-queues the task after resume() returns. So a task never runs on
// two workers, and a waker never resumes a task inline (DESIGN: "never resume inline").
//
// ───────────────────────── wait_ (the park protocol) ─────────────────────────
//   wait_ = epoch << 1 | armed
// A task about to suspend *arms* a wait: a fresh epoch with the armed bit, after
// storing resume_ and wait_node_. The token (the armed value) goes to every party
// that may end the wait: a timer, a joined task's completion, a waiter queue, a
// canceller. Ending the wait is a *claim*: CAS token -> token & ~armed. Exactly one
// claim succeeds per wait; the winner schedules the task (or, for a canceller,
// calls wait_node_->on_cancel, which decides). Stale tokens (a later epoch is armed,
// or the wait was already claimed) fail harmlessly, so a waker never needs the
// waiter to still exist — only the header, which the waker keeps alive by a ref or
// by a lock that the waiter must take before it can leave (see each structure).
// While a wait is armed and unclaimed the task cannot resume, so wait_node_ (in the
// awaiter, inside the frame) is valid for the claim winner.
// Sync-primitive waits (wait_queue.hpp) differ: their waker wins a CAS on the
// waiter's cell, not the claim, and schedules the task directly; the claim then
// only decides which canceller acts, and the canceller reaches the cell through
// wait_cell_ (never through the awaiter). The task disarms its wait when it resumes.
//
// Cancellation (Runtime::cancel path, JoinHandle::cancel):
//   1. fetch_or(kCancelReq)                    (seq_cst)
//   2. load wait_; if armed, claim it and call wait_node_->on_cancel()
// A suspending task does the mirror image: arm (seq_cst store), then load state_
// (seq_cst); if kCancelReq is set it claims its own wait and does not suspend.
// Dekker-style: with both sides seq_cst, at least one of them sees the other, so a
// cancellation is never lost between "checked the flag" and "went to sleep".
// The request is consumed (fetch_and) by the awaiter that delivers CancelledError,
// or by the join awaiter that forwards it to the joined task instead.
//
// ───────────────────────── Memory reclamation ─────────────────────────
// refs_ counts owners of the frame: the runtime (one ref until completion) and each
// JoinHandle. The frame is destroyed when refs_ reaches zero, which can only happen
// after completion.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>

namespace spindle::detail {

class Scheduler;
class TaskHeader;

/// Something a task waits on. Lives in an awaiter inside the suspended frame.
struct WaitNode {
    /// Called by a canceller that won the claim on this wait. The task is frozen
    /// (cannot resume) until this returns or schedules it. Default: schedule the
    /// task; its awaiter then delivers CancelledError in await_resume.
    virtual void on_cancel(TaskHeader& task) noexcept;

protected:
    ~WaitNode() = default;
};

/// Run by the worker just before it resumes the task (after a cooperative yield):
/// true = resume the coroutine now; false = the hook parked the task again (it is
/// treated as if the coroutine had suspended).
struct ResumeHook {
    virtual bool before_resume(TaskHeader& task) noexcept = 0;
    /// True for a cooperative yield (the task re-queued itself, leaving the hook: a
    /// budget rotation, not new work); false for a hook left by a wait that parked
    /// (Condition's wait), whose wake-up is new work.
    virtual bool rotation() const noexcept { return true; }

protected:
    ~ResumeHook() = default;
};

// ───────────────────── thread-locals and coroutines that migrate ─────────────────────
// A coroutine suspended on one worker may resume on another. Code inlined into a
// coroutine body (an awaiter's await_ready, Lock::release) must therefore never touch a
// thread-local directly: a compiler may compute the thread-local's address once and
// keep it across the suspension (a known class of coroutine miscompilations), and
// the resumed body would then read or write the previous worker's copy. So the
// thread-locals below are read and written only inside the library's own functions,
// which are never coroutines, through the out-of-line accessors that follow; the
// declarations are `constinit` (no dynamic initialization: no TLS wrapper call, whose
// weak-symbol test sanitizers flag). Regression: tests/runtime/migration_test.cpp.

/// Debug mode (RuntimeOptions::debug / SPINDLE_DEBUG=1) of the runtime whose worker
/// the calling thread is; false on every other thread. Library code only (see above).
extern constinit thread_local bool tl_debug;
/// Debug mode only: the current task took / gave back a Lock (a per-task count, so a
/// task that finishes still holding one can be reported).
void debug_lock_acquired() noexcept;
void debug_lock_released() noexcept;
/// debug_lock_acquired()/_released() when the calling worker is in debug mode; out of
/// line (inline Lock code calls it from coroutine bodies).
void note_lock_acquired() noexcept;
void note_lock_released() noexcept;

/// Cooperative budget (Tokio's coop): operations that complete without suspending
/// draw on it; when it is spent, the next one yields first, so a task that never
/// suspends cannot starve the others. Refilled each time a worker resumes a task;
/// unlimited with one worker (asyncio has no such thing, and one worker = asyncio).
/// Library code only (see above).
extern constinit thread_local std::uint32_t tl_coop_budget;
/// Draws one unit of the calling worker's budget; false when it is spent. Out of line:
/// awaiters call it from await_ready, inlined into coroutine bodies.
bool coop_consume() noexcept;
/// Whether the calling worker's budget has units left (out of line, as above).
bool coop_budget_left() noexcept;
/// coop_consume() and the debug flag in one out-of-line call (the Lock's await_ready,
/// which needs both): kCoopTaken if a unit was drawn, kCoopDebug in debug mode.
inline constexpr unsigned kCoopTaken = 1;
inline constexpr unsigned kCoopDebug = 2;
unsigned coop_consume_and_debug() noexcept;

/// A registration in a task's list of joiners (a task awaiting a JoinHandle, or a
/// thread in block_on). Lives in the joiner's awaiter; unlinked under kJoinLock.
struct JoinNode {
    JoinNode* next = nullptr;
    JoinNode* prev = nullptr;
    /// Called under the joined task's kJoinLock when it completes.
    void (*notify)(JoinNode*) noexcept = nullptr;
};

/// Called once when a spawned task completes, after its joiners were notified and
/// outside every lock (TaskGroup and gather use it).
struct CompletionHook {
    void (*on_done)(CompletionHook* self, TaskHeader& task) noexcept = nullptr;
};

class TaskHeader {
public:
    static constexpr std::uint32_t kNotified = 1U << 0;
    static constexpr std::uint32_t kRunning = 1U << 1;
    static constexpr std::uint32_t kComplete = 1U << 2;
    static constexpr std::uint32_t kCancelReq = 1U << 3;
    static constexpr std::uint32_t kJoinLock = 1U << 4;
    static constexpr std::uint32_t kJoined = 1U << 5;
    // wait_ = epoch << 2 | kSyncWait (a WaitQueue cell wait) | kArmed.
    static constexpr std::uint64_t kArmed = 1;
    static constexpr std::uint64_t kSyncWait = 2;
    static constexpr unsigned kEpochShift = 2;
    static_assert((kNotified | kRunning | kComplete | kCancelReq | kJoinLock | kJoined) == 0x3F,
                  "state bits must be distinct");
    static_assert(kJoined == 2 * kJoinLock, "unlock_joiners() moves kJoinLock to kJoined by one add");
    static constexpr unsigned kCancelCountShift = 8;
    static constexpr std::uint32_t kCancelOne = 1U << kCancelCountShift;
    static_assert(kCancelOne > 0x3F, "the cancel count lies above every state bit");

    // ── park protocol (called by the task itself while it runs) ──

    /// The token the next arm() will return (sync waits install it in their cell
    /// before arming, so a canceller that claims the wait finds the cell ready).
    [[nodiscard]] std::uint64_t next_token(bool sync) const noexcept {
        // relaxed: only this task writes new epochs.
        const std::uint64_t epoch = (wait_.load(std::memory_order_relaxed) >> kEpochShift) + 1;
        return (epoch << kEpochShift) | (sync ? kSyncWait : 0) | kArmed;
    }

    /// Starts a new wait: returns its token. `h` is the coroutine to resume. A null
    /// `node` marks a sync (cell) wait: a canceller then goes through wait_cell_ and
    /// never touches wait_node_ (see cancel()).
    std::uint64_t arm(WaitNode* node, std::coroutine_handle<> h) noexcept {
        resume_ = h;
        wait_node_ = node;
        const std::uint64_t token = next_token(node == nullptr);
        // seq_cst: half of the Dekker pair with cancel() (flag store, then wait_ load).
        // It also publishes resume_/wait_node_ to the claim winner (its CAS acquires).
        wait_.store(token, std::memory_order_seq_cst);
        return token;
    }

    /// Ends the wait identified by `token` if nobody has; true for the one winner.
    bool claim(std::uint64_t token) noexcept {
        // acq_rel: acquires resume_/wait_node_ published by arm(); releases the
        // claimer's prior writes (e.g. a grant) to the task, which reads them after
        // the scheduler hands it over.
        return wait_.compare_exchange_strong(token, token & ~kArmed, std::memory_order_acq_rel,
                                             std::memory_order_relaxed);  // failure: nothing is read
    }

    /// The task leaves a sync (cell) wait, after clear_wait_cell(): clears kArmed. A
    /// store, not a claim: only this task arms, so a canceller's claim could only have
    /// cleared the same bit of the same token, and the value is the same whichever
    /// lands first; a canceller that won the claim finds wait_cell_ cleared, or a cell
    /// whose tag does not match (cancel_cell_wait), and its request stays pending for
    /// the next suspension point. (The CAS was one of a wait's dozen locked
    /// instructions.) Also right when the wait was never armed (a deposit).
    void disarm_sync_wait() noexcept {
        // relaxed: only this task writes new epochs.
        const std::uint64_t w = wait_.load(std::memory_order_relaxed);
        // release: pairs with the acquire of a dumper's or canceller's later load (the
        // task's writes before it left the wait); a claim CAS that fails on it reads
        // nothing.
        if ((w & kArmed) != 0U) wait_.store(w & ~kArmed, std::memory_order_release);
    }

    /// After arming: if a cancellation is pending, take the wait back and report
    /// that the task must not suspend (its await_resume will deliver it).
    bool cancelled_while_arming(std::uint64_t token) noexcept {
        // seq_cst: the other half of the Dekker pair with cancel().
        if ((state_.load(std::memory_order_seq_cst) & kCancelReq) != 0U) return claim(token);
        return false;
    }

    /// Consumes a pending cancellation request; true if there was one.
    bool consume_cancel() noexcept {
        // Most calls find nothing: a load first, not a locked fetch_and on every resume.
        // A request it misses was made concurrently (linearized after the load) and is
        // delivered at the next suspension point (cancelled_while_arming's seq_cst
        // load); one made before a canceller won our wait is seen, because that win
        // happens before we run. acquire: pairs with the fetch_or in cancel().
        if ((state_.load(std::memory_order_acquire) & kCancelReq) == 0U) return false;
        // acq_rel: pairs with the fetch_or in cancel().
        return (state_.fetch_and(~kCancelReq, std::memory_order_acq_rel) & kCancelReq) != 0U;
    }
    [[nodiscard]] bool cancel_pending() const noexcept {
        // acquire: pairs with the fetch_or in cancel().
        return (state_.load(std::memory_order_acquire) & kCancelReq) != 0U;
    }
    [[nodiscard]] bool complete() const noexcept {
        // acquire: pairs with the release CAS in complete_and_lock_joiners(); the outcome
        // (value or exception) written before it is visible after this returns true.
        return (state_.load(std::memory_order_acquire) & kComplete) != 0U;
    }

    /// Requests cancellation (any thread): sets kCancelReq and counts the request.
    /// False if the task already completed.
    bool cancel() noexcept;
    /// cancel(), except that nothing happens (false) while a request is pending: a
    /// wait_for timer (its task was woken with that request and delivers it first).
    bool cancel_unless_pending() noexcept;
    /// The number of cancellation requests not withdrawn (24 bits, wrapping).
    [[nodiscard]] std::uint32_t cancel_requests() const noexcept {
        // acquire: pairs with cancel()'s CAS.
        return state_.load(std::memory_order_acquire) >> kCancelCountShift;
    }
    /// CPython's Task.uncancel(): withdraws one request made by cancel() (the caller
    /// made it: a fired timeout scope). Returns the count after it.
    std::uint32_t uncancel() noexcept {
        // acq_rel: orders against cancel()'s CAS (the count it reads is the newest).
        return (state_.fetch_sub(kCancelOne, std::memory_order_acq_rel) - kCancelOne) >> kCancelCountShift;
    }
    /// CPython 3.13's uncancel() side effect: clears a pending (undelivered) request
    /// when the count is `count` (no request came after the caller's check). True if
    /// one was cleared.
    bool withdraw_pending_cancel(std::uint32_t count) noexcept {
        // relaxed: the CAS validates.
        std::uint32_t s = state_.load(std::memory_order_relaxed);
        while ((s & kCancelReq) != 0U && (s >> kCancelCountShift) == (count & (UINT32_MAX >> kCancelCountShift))) {
            // acq_rel: pairs with cancel()'s CAS, as consume_cancel(); failure relaxed: the loop re-validates.
            if (state_.compare_exchange_weak(s, s & ~kCancelReq, std::memory_order_acq_rel, std::memory_order_relaxed))
                return true;
        }
        return false;
    }
    /// Makes the task runnable (the caller won a claim, or the task yields itself).
    void schedule() noexcept;

    // ── wait_cell_ (see the field) ──

    /// Set in wait_cell_ by Runtime::dump() while it reads the primitive the task
    /// waits on: the task cannot clear wait_cell_ (so cannot leave its wait, so the
    /// primitive stays alive) until the dumper puts the plain pointer back.
    static constexpr std::uintptr_t kCellInspected = 1;
    /// Set by the task itself when its cell lives in its own frame (a FrameCell,
    /// wait_queue.hpp), not in a WaitQueue segment: a canceller then holds the task
    /// inside its wait (kCellInspected) while it touches the cell, as a dumper does.
    static constexpr std::uintptr_t kFrameCell = 2;
    [[nodiscard]] static std::atomic<std::uint64_t>* untagged(std::atomic<std::uint64_t>* c) noexcept {
        return reinterpret_cast<std::atomic<std::uint64_t>*>(reinterpret_cast<std::uintptr_t>(c) &
                                                             ~(kCellInspected | kFrameCell));
    }
    /// The task leaves its sync wait: wait_cell_ = nullptr, after any dumper that is
    /// inspecting it has finished (it holds it for a few loads). Costs what the plain
    /// seq_cst store did (one locked instruction) when nobody dumps.
    void clear_wait_cell() noexcept {
        // relaxed: the CAS below validates (only this task stores non-null values).
        std::atomic<std::uint64_t>* c = wait_cell_.load(std::memory_order_relaxed);
        for (;;) {
            if (c == nullptr) return;
            if ((reinterpret_cast<std::uintptr_t>(c) & kCellInspected) != 0U) {
                c = wait_while_inspected();
                continue;
            }
            // seq_cst: as the store it replaces (wait_queue.hpp R4: before the cell can
            // be removed); failure: a dumper tagged it (re-read, relaxed: re-validated).
            if (wait_cell_.compare_exchange_strong(c, nullptr, std::memory_order_seq_cst,
                                                   std::memory_order_relaxed))  // failure: re-validated
                return;
        }
    }
    /// Spins (then yields) until no dumper holds wait_cell_; returns its value.
    std::atomic<std::uint64_t>* wait_while_inspected() noexcept;

    // ── joiners (bit lock kJoinLock) ──
    void lock_joiners() noexcept;
    /// Releases the join lock; sets kJoined if joiners_ is not empty.
    void unlock_joiners() noexcept;
    /// The completing worker: sets kComplete (publishing the outcome). Returns true
    /// with the join lock held if a joiner may be registered (kJoined), false without
    /// it if none can be (joiners_ is then empty for good).
    bool complete_and_lock_joiners() noexcept;
    /// Under lock_joiners(): adds a node unless complete; false if complete.
    bool add_joiner_locked(JoinNode* n) noexcept;
    void remove_joiner_locked(JoinNode* n) noexcept;

    // ── references ──
    void add_ref() noexcept {
        // relaxed: a new reference is made from an existing one; no data is published.
        refs_.fetch_add(1, std::memory_order_relaxed);
    }
    void release() noexcept {
        // The last owner skips the locked decrement (libstdc++'s shared_ptr does the
        // same): a count of 1 read while we hold a reference means nobody else holds
        // one, and none can appear — references are made from existing ones. The two
        // exceptions see a reference still held: shutdown()'s walk of the registry finds
        // only listed tasks, which the runtime unlists (under the shard lock) before it
        // drops its own reference, and a TaskGroup's cancel_all() finds only children
        // whose completion hook (which takes the same mutex) has not run, which happens
        // before the runtime's drop; either add_ref is seen here. A fork-join's JoinHandle is
        // usually the last owner: one locked instruction less per task.
        // acquire: pairs with the release half of the other owners' fetch_sub (their
        // writes before they let go) — the last owner must see them before it destroys.
        // acq_rel (fetch_sub): as before, for the owners that are not last.
        if (refs_.load(std::memory_order_acquire) == 1 || refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            destroy_frame();
    }

    [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
    [[nodiscard]] const char* name() const noexcept { return name_; }
    [[nodiscard]] bool was_cancelled() const noexcept { return outcome_cancelled_; }

    // All fields below: written by the task's current owner (the spawning thread
    // before publication, then the worker holding kRunning), unless noted.
    std::atomic<std::uint32_t> state_{0};   // see above; any thread
    std::atomic<std::uint32_t> refs_{1};    // any owner
    std::atomic<std::uint64_t> wait_{0};    // task arms; claimers CAS
    WaitNode* wait_node_ = nullptr;         // task writes before arming; claim winner reads
    // A sync wait's cell (see wait_queue.hpp): set before arming, cleared by the task
    // (clear_wait_cell) when it resumes, before it removes the cell; read by a
    // canceller (pinned); tagged with kCellInspected by Runtime::dump() (pinned), and by
    // a canceller when the cell is a FrameCell in the task's own frame (kFrameCell).
    std::atomic<std::atomic<std::uint64_t>*> wait_cell_{nullptr};
    // The coroutine to resume: the task writes it before arming (spawn: the root frame);
    // the worker reads it. From the final suspension on, the root frame (destroy_frame).
    std::coroutine_handle<> resume_;
    Scheduler* sched_ = nullptr;            // set at spawn; null for a nested Task
    JoinNode* joiners_ = nullptr;           // under kJoinLock
    CompletionHook* hook_ = nullptr;        // set before the task is first queued
    ResumeHook* resume_hook_ = nullptr;     // task sets before yielding; worker takes it
    TaskHeader* reg_prev_ = nullptr;        // live-task registry (when listed_), under its shard lock
    TaskHeader* reg_next_ = nullptr;
    const char* name_ = nullptr;            // owned (malloc'd) when named_ is set
    std::exception_ptr exception_;          // outcome; written before kComplete
    std::uint64_t id_ = 0;
    // The tail is packed into 8 bytes: a frame that crosses a mimalloc size class
    // (256 -> 320 bytes) costs every parked task 64 bytes (memory_parked).
    std::uint16_t shard_ = 0;               // registry shard
    // One byte of flags, each written only by the task's current owner (the spawner
    // before publication, then the worker holding kRunning), so never concurrently.
    bool started_ : 1 = false;              // worker holding kRunning
    bool named_ : 1 = false;
    bool outcome_cancelled_ : 1 = false;    // written before kComplete
    bool self_cancel_ : 1 = false;          // cancel() called by the task itself
    bool debug_ : 1 = false;                // the runtime's debug mode, copied at spawn
    bool listed_ : 1 = false;               // in the registry (reg_prev_/reg_next_, shard_)
    bool spawned_in_shutdown_ : 1 = false;  // spawned while shutdown() ran: left to its walk
    // exception_ was rethrown to (or collected by) someone: a JoinHandle awaiter, a
    // block_on, gather/TaskGroup. Debug mode warns when a failed task's frame dies
    // without it (asyncio's "Task exception was never retrieved").
    mutable std::atomic<bool> exception_observed_{false};
    // Debug mode only: Locks this task acquired and has not released (the task itself).
    std::uint16_t debug_locks_held_ = 0;
    // The worker (index + 1; 0: none) whose task woke this one while it was running
    // elsewhere: written by schedule() before the CAS that sets kNotified (which
    // publishes it), read and reset by the worker that ran it (see "Migration to the
    // waker" in scheduler.hpp). A hint: a racing waker may overwrite it.
    std::atomic<std::uint16_t> wake_hint_{0};

private:
    bool request_cancel(bool unless_pending) noexcept;
    void destroy_frame() noexcept;
};

/// The task the calling thread is running, or null.
TaskHeader* current_task() noexcept;
/// True when `t`'s runtime has one worker (asyncio's exact interleaving applies).
bool single_worker(const TaskHeader& t) noexcept;
/// The calling thread's worker as a wake hint (index + 1), 0 on other threads.
std::uint16_t current_worker_hint() noexcept;
/// A primitive's home worker ("Home" in runtime/src/worker.cpp): `home` (a wake hint)
/// if it is a worker of the calling worker's runtime that is awake, else the calling
/// worker's hint (0 on other threads). What a primitive that moves its home stores.
std::uint16_t awake_home(std::uint16_t home) noexcept;
/// While alive, the tasks the calling worker wakes (a grant's schedule()) go to worker
/// `home` (a wake hint; 0 or the caller's own: no change) unless it has parked meanwhile.
/// Set around a grant by a primitive whose grants should gather on one worker.
class WakeHomeScope {
public:
    explicit WakeHomeScope(std::uint16_t home) noexcept;
    ~WakeHomeScope();
    WakeHomeScope(const WakeHomeScope&) = delete;
    WakeHomeScope& operator=(const WakeHomeScope&) = delete;

private:
    std::uint16_t saved_;
};
/// The running task `t`, about to suspend at `h` with nothing to wait for (it found
/// its grant deposited by worker `hint`), asks to resume on that worker instead of
/// going on here ("Migration to the waker" in runtime/src/scheduler.hpp). True: `t`
/// is marked to be handed over when its slice ends; suspend. False: go on here.
bool hand_over_self(TaskHeader& t, std::coroutine_handle<> h, std::uint16_t hint) noexcept;
/// Like current_task() but throws std::logic_error naming `what` when there is none.
TaskHeader& require_task(const char* what);
/// A yield (yield_now, sleep(0)) of the running task `t`: re-queued at the back when its
/// slice ends. On a worker outside an inline join it only marks `t` (Worker::self_yield),
/// and the slice's end makes Running -> Notified in one CAS (schedule() + end_slice's
/// fetch_sub were two locked instructions per yield); otherwise t.schedule().
void yield_self(TaskHeader& t) noexcept;

}  // namespace spindle::detail
