// spindle/sync/queue.hpp — asyncio.Queue, LifoQueue and PriorityQueue, safe across
// cores, with direct hand-off (DESIGN.md section 2, "Queue — the one deliberate
// departure, for fairness").
//
// ─────────────────────────────── Semantics ───────────────────────────────
// Python 3.13's asyncio.Queue, except that nobody can take what was handed to a
// waiter:
//   * put() with getters waiting hands the item to the longest-waiting live getter:
//     the getter is woken with an item reserved for it, and a newcomer's get() /
//     get_nowait() cannot take it (asyncio lets the newcomer take it and sends the
//     woken getter to the back of the line). Which stored item the woken getter
//     receives is decided when it resumes, in the queue's order (FIFO, LIFO,
//     lowest first) — at one worker exactly the item asyncio would give it.
//   * get() with items takes one and grants one slot of space to the longest
//     waiting putter; the slot stays reserved (full() counts it) until that putter
//     resumes and stores its item. A newcomer's put() cannot take that slot.
//   * A getter woken but cancelled before it resumed hands its reservation to the
//     next live getter, or leaves the item in the queue. A putter granted a slot but
//     cancelled before it resumed passes the slot to the next putter. A cancelled
//     put() never inserts; a cancelled get() never loses an item.
//   * qsize() counts the items a newcomer could take (stored items minus those
//     handed to woken getters); empty() is qsize() == 0, exactly when get_nowait()
//     raises QueueEmpty; full() is when stored items plus reserved slots reach
//     maxsize(), exactly when put_nowait() raises QueueFull. An item handed to a
//     woken getter keeps its slot until that getter resumes, so for that moment
//     full() can be true while qsize() < maxsize(). The queue never holds more than
//     maxsize() items.
//   * shutdown(immediate) is 3.13's: put()/put_nowait() raise QueueShutDown
//     afterwards; get() drains what is left, then raises QueueShutDown (at once with
//     immediate, which discards the items and counts them as done for join());
//     every waiting getter and putter is woken to re-check.
//   * task_done() more often than items were put: std::invalid_argument
//     (ValueError). join() waits until every item put was marked done.
//   * Negative maxsize: std::invalid_argument (asyncio treats it as unbounded; in C++
//     a negative size is a bug at the call). 0 = unbounded.
//   * Works for move-only T. If T's move (or copy, for a T whose move may throw) or
//     PriorityQueue's Compare throws inside the queue, the call fails with that
//     exception and the queue holds the same items as before. The last step of get(),
//     returning the item to the caller, is a move of T: if that throws, the item is
//     gone (as with std::queue's front() + pop()); T with a noexcept move avoids it.
//
// ─────────────────────────────── Design ───────────────────────────────
// Waiters park in two CQS waiter queues (runtime/detail/wait_queue.hpp) — the same
// lock-free, abortable engine as every other primitive: one for getters, one for
// putters. The items themselves live in an ordinary container (ring, vector, heap)
// guarded by a short spin lock (biased to the thread that takes it most:
// runtime/detail/biased_lock.hpp), as Go's channels guard their ring buffer: FIFO
// across producers needs one order, and a lock-free MPMC FIFO with priorities and
// LIFO is not worth its cost here. The lock is never held while a task is woken.
//
// State under the lock (core_):
//   n        items stored
//   r_get    items reserved for getters woken but not yet resumed      (r_get <= n)
//   r_put    slots reserved for putters woken but not yet resumed
//   live     per side: waiters queued, not cancelled, not yet granted
// Invariants (at every unlock, apart from grants in flight):
//   D1 n + r_put <= maxsize (bounded queues).
//   D2 live getters > 0 implies n == r_get; live putters > 0 implies n + r_put ==
//      maxsize. dispatch() restores it after every change: it reserves an item per
//      live getter it can serve, a slot per live putter, and the caller grants that
//      many cells (grant_first) after unlocking.
//   D3 Reservations are fungible: a grant scan takes the first waiting cells, which
//      may be waiters another granter reserved for, so a scan that comes up short
//      looks again while cells are being added. A scan that saw every cell and still
//      came up short proves that a counted waiter was cancelled and its
//      on_waiter_cancelled() (which takes it off live) has not run yet: the
//      reservation is undone and the count given back to live (the callback takes
//      it off); dispatch() runs again only if a waiter queued since the scan began
//      (it saw the reservation hide the item or slot), so a stale count costs one
//      scan per operation until the callback runs, never a spin.
//   D4 A waiter takes its cell (enqueue) and is counted in live in the same
//      critical section in which it saw nothing to take, so no grant can miss it.
// The counts are fungible: a getter woken by shutdown() holds no reservation, so it
// takes one only if it resumes while one is left over, and raises QueueShutDown
// otherwise.
//
// THREAD SAFETY: get/put/join inside a task; the rest from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>
#include <functional>
#include <optional>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "spindle/runtime/detail/biased_lock.hpp"
#include "spindle/runtime/detail/tsan.hpp"
#include "spindle/runtime/detail/wait_queue.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/sync/detail/sync_wait.hpp"
#include "spindle/sync/event.hpp"

namespace spindle {

/// get_nowait() on an empty queue (asyncio.QueueEmpty).
struct QueueEmpty : std::runtime_error {
    QueueEmpty() : std::runtime_error("spindle::QueueEmpty: the queue is empty") {}
};
/// put_nowait() on a full queue (asyncio.QueueFull).
struct QueueFull : std::runtime_error {
    QueueFull() : std::runtime_error("spindle::QueueFull: the queue is full") {}
};
/// put after shutdown(), or get on a shut-down queue with nothing left (asyncio.QueueShutDown).
struct QueueShutDown : std::runtime_error {
    QueueShutDown() : std::runtime_error("spindle::QueueShutDown: the queue was shut down") {}
};

namespace detail {

/// The part of every queue that does not depend on T: counts, the lock, the two
/// waiter queues, join(). See the header comment for the invariants.
class QueueCore {
public:
    QueueCore(const QueueCore&) = delete;
    QueueCore& operator=(const QueueCore&) = delete;

    /// Items a get_nowait() could take now.
    [[nodiscard]] std::size_t qsize() const noexcept;
    [[nodiscard]] bool empty() const noexcept { return qsize() == 0; }
    [[nodiscard]] bool full() const noexcept;
    /// 0 = unbounded.
    [[nodiscard]] std::size_t maxsize() const noexcept { return maxsize_; }
    /// Marks one item done; std::invalid_argument if called more often than items were put.
    void task_done();
    /// `co_await q.join()` (JoinAwaiter): until task_done() was called for every item put.
    class JoinAwaiter {
    public:
        explicit JoinAwaiter(QueueCore& c) noexcept : c_(&c), w_(c.finished_) {}
        bool await_ready() const noexcept { return w_.await_ready(); }
        bool await_suspend(std::coroutine_handle<> h) { return w_.await_suspend(h); }
        /// Returns once task_done()'s critical section, which set the event, has
        /// ended (a lock and an unlock of the queue's lock): the joiner may then
        /// destroy the queue (tests/sync/lifetime_test.cpp), also when cancelled.
        /// True, as Event::wait().
        bool await_resume() {
            struct Handshake {
                QueueCore* c;
                ~Handshake() { Guard g(*c); }
            } hs{c_};
            return w_.await_resume();
        }

    private:
        QueueCore* c_;
        Event::WaitAwaiter w_;
    };
    JoinAwaiter join() noexcept { return JoinAwaiter(*this); }
    [[nodiscard]] bool is_shutdown() const noexcept;
    /// Waiters parked (approximate; diagnostics).
    [[nodiscard]] std::uint64_t approx_getters() const noexcept { return getters_.q.approx_size(); }
    [[nodiscard]] std::uint64_t approx_putters() const noexcept { return putters_.q.approx_size(); }
    /// The internal counts, for diagnostics: "stored=.. handed=.. slots_reserved=.. ...".
    [[nodiscard]] std::string debug_state() const;

protected:
    explicit QueueCore(std::ptrdiff_t maxsize);
    ~QueueCore();

    struct Grants {
        std::int64_t getters = 0;
        std::int64_t putters = 0;
    };

    // The queue's lock: a biased spin lock (runtime/detail/biased_lock.hpp). The thread
    // that takes it most — the worker that runs the producers and the consumer, when a
    // wake stays next to its waker — takes it with plain stores; any other thread with an
    // exchange, and once per bias with a membarrier. Inline: the common path is a call
    // for the thread's id, a load, a store, a compiler fence and a load to take it, a
    // store to release it, in the user's code.
    class Guard {
    public:
        explicit Guard(const QueueCore& c) noexcept : c_(&c), owner_(c.lock_.lock()) {}
        ~Guard() { unlock(); }
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;
        void unlock() noexcept {
            if (c_ != nullptr) std::exchange(c_, nullptr)->lock_.unlock(owner_);
        }
        [[nodiscard]] bool locked() const noexcept { return c_ != nullptr; }

    private:
        const QueueCore* c_;
        bool owner_;  // lock()'s token for unlock()
    };

    // ── under the lock ──
    [[nodiscard]] bool can_take_locked() const noexcept { return n_ > r_get_; }
    [[nodiscard]] bool has_room_locked() const noexcept { return maxsize_ == 0 || n_ + r_put_ < maxsize_; }
    /// An item was stored: counts it for join().
    void stored_locked() noexcept;
    /// An item was taken out of storage.
    void taken_locked() noexcept { --n_; }
    /// A resumed getter: takes its reservation (or a left-over one). False: nothing
    /// for it (it was woken by shutdown()).
    bool claim_item_locked() noexcept;
    /// get() found an item on its fast path but takes it later (a T whose move may
    /// throw): held for it as for a woken getter.
    void claim_for_self_locked() noexcept { ++r_get_; }
    /// A getter woken but cancelled: its reservation goes back.
    void return_item_locked() noexcept {
        if (r_get_ > 0) --r_get_;
    }
    /// A resumed or cancelled putter gives up its slot reservation.
    void return_slot_locked() noexcept {
        if (r_put_ > 0) --r_put_;
    }
    /// shutdown(): marks the queue; `discarded` items were dropped (immediate).
    Grants shut_down_locked(std::size_t discarded) noexcept;
    [[nodiscard]] bool shut_locked() const noexcept { return lock_.spare != 0; }
    [[nodiscard]] std::size_t stored_locked_count() const noexcept { return n_; }
    /// D2: reserve for every live waiter that can be served. Inline: every put and get
    /// calls it, and nearly always nobody waits on the side it would serve.
    Grants dispatch_locked() noexcept {
        Grants g;
        if (live_get_ > 0 && n_ > r_get_) [[unlikely]] {
            const auto k = std::min<std::int64_t>(live_get_, static_cast<std::int64_t>(n_ - r_get_));
            live_get_ -= k;
            r_get_ += static_cast<std::size_t>(k);
            g.getters = k;
        }
        if (maxsize_ != 0 && live_put_ > 0 && n_ + r_put_ < maxsize_) [[unlikely]] {
            const auto k = std::min<std::int64_t>(live_put_, static_cast<std::int64_t>(maxsize_ - n_ - r_put_));
            live_put_ -= k;
            r_put_ += static_cast<std::size_t>(k);
            g.putters = k;
        }
        return g;
    }
    /// Takes a cell for the current task on one side and counts it (D4).
    WaitPosition enqueue_getter_locked() { return enqueue_locked(getters_); }
    WaitPosition enqueue_putter_locked() { return enqueue_locked(putters_); }

    // ── outside the lock ──
    /// Wakes the waiters dispatch_locked() reserved for (D3 on a miss). The test for
    /// "none" inline (the common case), the wakes out of line.
    void deliver(Grants g) noexcept {
        if ((g.getters | g.putters) != 0) [[unlikely]] deliver_slow(g);
    }
    void deliver_slow(Grants g) noexcept;
    /// Wakes the waiters shut_down_locked() counted (no reservations).
    void wake_all(Grants g) noexcept;
    WaitQueue& getter_queue() noexcept { return getters_.q; }
    WaitQueue& putter_queue() noexcept { return putters_.q; }

private:
    struct Side final : WaitQueueOwner {
        Side(QueueCore* c, std::int64_t* l, const char* k) : core(c), live(l), kind(k), q(this) {}
        void on_waiter_cancelled() noexcept override;
        /// Runtime::dump(): "Queue.get"/"Queue.put", the queue's address, the cells
        /// still in this side's waiter queue (lock-free snapshot; live is under the lock).
        [[nodiscard]] WaitDescription describe_wait(const WaitQueue& wq) const noexcept override {
            return WaitDescription{kind, core, wq.approx_size()};
        }
        QueueCore* const core;
        std::int64_t* const live;  // the core's count for this side
        const char* const kind;
        WaitQueue q;
    };
    WaitPosition enqueue_locked(Side& s);
    struct Shortfall {
        std::int64_t missing = 0;
        std::uint64_t seen = 0;  // the queue's enqueued() when the short scan began
    };
    /// grant_first(k) until k cells are granted or a scan that saw every cell came
    /// up short (D3).
    static Shortfall grant(Side& side, std::int64_t k) noexcept;

    // Cold: written at construction or rarely.
    const std::size_t maxsize_;
    Event finished_;  // set iff unfinished_ == 0 (changed under the lock)
    Side getters_{this, &live_get_, "Queue.get"};
    Side putters_{this, &live_put_, "Queue.put"};

    // Hot: the lock and everything it guards that every put/get touches, in one cache
    // line, so a hand-over between cores moves one line (plus the storage's). The
    // shutdown flag is the lock's spare byte (under the lock).
    alignas(64) BiasedLock lock_;
    std::size_t n_ = 0;           // under the lock: items stored
    std::size_t r_get_ = 0;       // under the lock: items handed to woken getters
    std::size_t r_put_ = 0;       // under the lock: slots reserved for woken putters
    std::size_t unfinished_ = 0;  // under the lock: put and not yet task_done()
    std::int64_t live_get_ = 0;   // under the lock: counted getters (< 0 for a moment, D3)
    std::int64_t live_put_ = 0;   // under the lock: counted putters (likewise)
};
static_assert(sizeof(BiasedLock) + 6 * sizeof(std::size_t) <= 64, "the hot line's layout");

/// Storage policies. push(v) stores v; take() moves the next item out (one move of
/// T, into the caller's object: the return value is elided).
/// Exception safety: if T's move (or, for a T whose move may throw, its copy) or the
/// Compare throws, the call throws and the container holds exactly the items it held
/// before (an item is erased only after it was moved out; the heap's sift steps are
/// swaps, undone on the way out).
template <class T>
struct FifoStorage {
    // A growable ring of raw slots, [head, head + size) modulo cap (a power of two):
    // four words, where a std::deque keeps ten, so a put or get that follows one on
    // another core misses on fewer cache lines.
    FifoStorage() = default;
    FifoStorage(FifoStorage&& o) noexcept
        : buf(std::exchange(o.buf, nullptr)),
          cap(std::exchange(o.cap, 0)),
          head(std::exchange(o.head, 0)),
          size(std::exchange(o.size, 0)) {}
    FifoStorage& operator=(FifoStorage&& o) noexcept {
        if (this != &o) {
            FifoStorage old(std::move(*this));
            buf = std::exchange(o.buf, nullptr);
            cap = std::exchange(o.cap, 0);
            head = std::exchange(o.head, 0);
            size = std::exchange(o.size, 0);
        }
        return *this;
    }
    FifoStorage(const FifoStorage&) = delete;
    FifoStorage& operator=(const FifoStorage&) = delete;
    ~FifoStorage() {
        for (std::size_t i = 0; i < size; ++i) slot(i)->~T();
        release(buf);
    }
    void push(T&& v) {
        if (size == cap) grow();
        ::new (static_cast<void*>(slot(size))) T(std::move(v));  // throws: nothing changed
        ++size;
    }
    T take() {
        T* p = slot(0);
        T v(std::move_if_noexcept(*p));  // throws: nothing changed
        p->~T();
        head = (head + 1) & (cap - 1);
        --size;
        return v;
    }

private:
    T* slot(std::size_t i) const noexcept { return buf + ((head + i) & (cap - 1)); }
    static T* acquire(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{alignof(T)}));
    }
    static void release(T* p) noexcept {
        if (p != nullptr) ::operator delete(p, std::align_val_t{alignof(T)});
    }
    void grow() {
        const std::size_t ncap = cap == 0 ? 16 : cap * 2;
        T* nbuf = acquire(ncap);
        std::size_t moved = 0;
        try {
            for (; moved < size; ++moved) ::new (static_cast<void*>(nbuf + moved)) T(std::move_if_noexcept(*slot(moved)));
        } catch (...) {  // only a T copied for a throwing move gets here: the old ring is intact
            for (std::size_t i = 0; i < moved; ++i) nbuf[i].~T();
            release(nbuf);
            throw;
        }
        for (std::size_t i = 0; i < size; ++i) slot(i)->~T();
        release(buf);
        buf = nbuf;
        cap = ncap;
        head = 0;
    }

    T* buf = nullptr;
    std::size_t cap = 0;
    std::size_t head = 0;
    std::size_t size = 0;
};
template <class T>
struct LifoStorage {
    std::vector<T> items;
    void push(T&& v) { items.push_back(std::move(v)); }
    T take() {
        T v(std::move_if_noexcept(items.back()));
        items.pop_back();
        return v;
    }
};
template <class T, class Compare>
struct HeapStorage {
    // A binary min-heap by Compare (heapq): items[0] is the lowest.
    std::vector<T> items;
    Compare comp;
    void push(T&& v) {
        items.push_back(std::move(v));
        const std::size_t leaf = items.size() - 1;
        std::size_t i = leaf;
        try {
            while (i > 0) {
                const std::size_t parent = (i - 1) / 2;
                if (!comp(items[i], items[parent])) break;
                using std::swap;
                swap(items[i], items[parent]);
                i = parent;
            }
        } catch (...) {
            sink_back(i, leaf);  // undo: the new item back down its path to the leaf
            items.pop_back();
            throw;
        }
    }
    T take() {
        using std::swap;
        const std::size_t last = items.size() - 1;
        if (last > 0) {
            swap(items[0], items[last]);
            // Sift the new root down within [0, last); the path is recorded to undo it.
            std::size_t path[64];
            std::size_t depth = 0;
            std::size_t i = 0;
            try {
                for (;;) {
                    std::size_t child = 2 * i + 1;
                    if (child >= last) break;
                    if (child + 1 < last && comp(items[child + 1], items[child])) ++child;
                    if (!comp(items[child], items[i])) break;
                    swap(items[i], items[child]);
                    path[depth++] = i;
                    i = child;
                }
            } catch (...) {
                while (depth > 0) {  // undo the swaps, deepest first
                    const std::size_t up = path[--depth];
                    swap(items[up], items[i]);
                    i = up;
                }
                swap(items[0], items[last]);
                throw;
            }
        }
        T v(std::move_if_noexcept(items[last]));
        items.pop_back();
        return v;
    }

private:
    // Moves the item at `i` back down to `leaf` along leaf's ancestors (undoes a sift-up).
    void sink_back(std::size_t i, std::size_t leaf) noexcept {
        using std::swap;
        while (i != leaf) {
            std::size_t child = leaf;  // the ancestor of leaf whose parent is i
            while ((child - 1) / 2 != i) child = (child - 1) / 2;
            swap(items[i], items[child]);
            i = child;
        }
    }
};

/// Queue<T>, LifoQueue<T>, PriorityQueue<T, C>: QueueCore + a storage policy.
template <class T, class Storage>
class BasicQueue : public QueueCore {
public:
    /// 0 = unbounded; std::invalid_argument if negative.
    explicit BasicQueue(std::ptrdiff_t maxsize = 0) : QueueCore(maxsize) {}

    class [[nodiscard]] GetAwaiter {
    public:
        explicit GetAwaiter(BasicQueue& q) noexcept : q_(&q) {}
        bool await_ready() {
            if (!coop_consume()) return false;  // budget spent: take, then yield
            return attempt();
        }
        bool await_suspend(std::coroutine_handle<> h) {
            if (!w_.queued) {
                w_.self = &waiting_task("Queue::get");
                if (attempt()) return yield_after(*w_.self, h);
            }
            return w_.park(q_->getter_queue(), h);
        }
        T await_resume() {
            BasicQueue& q = *q_;
            if (!w_.queued) {
                if constexpr (kMoveIsSafe) {
                    return std::move(*item_);
                } else {
                    Guard g(q);  // take the item claimed in take_now(): one move, into the caller
                    (void)q.claim_item_locked();
                    return q.take_and_finish(g);
                }
            }
            bool granted = true;
            if (w_.suspended) granted = w_.finish(q.getter_queue());
            else q.getter_queue().remove(w_.pos);  // a deposit: granted without suspending
            if (!granted) {
                (void)w_.self->consume_cancel();  // cancelled in the queue (already uncounted)
                throw CancelledError{};
            }
            const bool cancelled = w_.suspended && w_.self->consume_cancel();
            Guard g(q);
            if (cancelled) {
                // Woken but cancelled before it resumed: the item goes to the next getter.
                q.return_item_locked();
                const Grants gr = q.dispatch_locked();
                g.unlock();
                q.deliver(gr);
                throw CancelledError{};
            }
            if (!q.claim_item_locked()) throw QueueShutDown{};  // woken by shutdown()
            return q.take_and_finish(g);
        }

    private:
        // One lock acquisition either way: take an item now (true), or take a cell
        // (false; parked in await_suspend; a grant arriving in between leaves a
        // deposit there).
        // The task is looked up only when the get waits (or yields): an item taken at
        // once needs none, as asyncio's get() of a non-empty queue never touches the loop.
        bool attempt() {
            Guard g(*q_);
            if (q_->can_take_locked()) {
                take_now(g);
                return true;
            }
            if (q_->shut_locked()) throw QueueShutDown{};
            if (w_.self == nullptr) w_.self = &waiting_task("Queue::get");  // throws unlocked (the Guard)
            w_.pos = q_->enqueue_getter_locked();
            w_.queued = true;
            return false;
        }
        // A T whose move may throw is moved only once, straight into the caller's
        // object in await_resume; the fast path then just claims an item (as a woken
        // getter holds one) so that nobody else takes it in between.
        static constexpr bool kMoveIsSafe = std::is_nothrow_move_constructible_v<T>;
        void take_now(Guard& g) {
            if constexpr (kMoveIsSafe) {
                item_.emplace(q_->take_and_finish(g));
            } else {
                q_->claim_for_self_locked();
                g.unlock();
            }
        }

        BasicQueue* q_;
        std::optional<T> item_;
        SyncWait w_;  // w_.queued: took a cell
    };

    class [[nodiscard]] PutAwaiter {
    public:
        PutAwaiter(BasicQueue& q, T&& v) : q_(&q), item_(std::move(v)) {}
        bool await_ready() {
            if (!coop_consume()) return false;  // budget spent: store, then yield
            return attempt();
        }
        bool await_suspend(std::coroutine_handle<> h) {
            if (!w_.queued) {
                w_.self = &waiting_task("Queue::put");
                if (attempt()) return yield_after(*w_.self, h);
            }
            return w_.park(q_->putter_queue(), h);
        }
        void await_resume() {
            if (!w_.queued) return;
            BasicQueue& q = *q_;
            bool granted = true;
            if (w_.suspended) granted = w_.finish(q.putter_queue());
            else q.putter_queue().remove(w_.pos);  // a deposit
            if (!granted) {
                (void)w_.self->consume_cancel();  // cancelled in the queue: never inserts
                throw CancelledError{};
            }
            const bool cancelled = w_.suspended && w_.self->consume_cancel();
            Guard g(q);
            if (cancelled || q.shut_locked()) {
                // The slot passes to the next putter (asyncio: wake the next putter).
                q.return_slot_locked();
                const Grants gr = q.dispatch_locked();
                g.unlock();
                q.deliver(gr);
                if (cancelled) throw CancelledError{};
                throw QueueShutDown{};
            }
            try {
                q.storage_.push(std::move(item_));
            } catch (...) {
                q.return_slot_locked();
                const Grants gr = q.dispatch_locked();
                g.unlock();
                q.deliver(gr);
                throw;
            }
            q.return_slot_locked();
            q.stored_locked();
            const Grants gr = q.dispatch_locked();
            g.unlock();
            q.deliver(gr);
        }

    private:
        // One lock acquisition either way: store the item now (true), or take a cell
        // (false; parked in await_suspend, as in GetAwaiter::attempt()).
        // The task is looked up only when the put waits (or yields), as in get().
        bool attempt() {
            Guard g(*q_);
            if (q_->store_locked(g, item_)) return true;
            if (w_.self == nullptr) w_.self = &waiting_task("Queue::put");  // throws unlocked (the Guard)
            w_.pos = q_->enqueue_putter_locked();
            w_.queued = true;
            return false;
        }

        BasicQueue* q_;
        T item_;
        SyncWait w_;  // w_.queued: took a cell
    };

    /// `T v = co_await q.get();` — waits for an item; QueueShutDown once shut down and drained.
    GetAwaiter get() noexcept { return GetAwaiter(*this); }
    /// `co_await q.put(std::move(v));` — waits for room; QueueShutDown after shutdown().
    PutAwaiter put(T v) { return PutAwaiter(*this, std::move(v)); }

    /// Takes an item now: QueueEmpty (or QueueShutDown once shut down) if none.
    T get_nowait() {
        Guard g(*this);
        if (!can_take_locked()) {
            if (shut_locked()) throw QueueShutDown{};
            throw QueueEmpty{};
        }
        return take_and_finish(g);
    }
    /// Stores an item now: QueueFull if full(), QueueShutDown after shutdown().
    void put_nowait(T v) {
        Guard g(*this);
        if (!store_locked(g, v)) throw QueueFull{};
    }

    /// Python 3.13's Queue.shutdown (see the header comment).
    void shutdown(bool immediate = false) {
        Storage dropped;  // destroyed outside the lock (an item's destructor may do anything)
        Guard g(*this);
        std::size_t discarded = 0;
        if (immediate) {
            discarded = stored_locked_count();
            std::swap(dropped, storage_);
        }
        const Grants gr = shut_down_locked(discarded);
        g.unlock();
        wake_all(gr);
    }

private:
    // Fast paths shared by the awaiters' await_ready and the *_nowait calls.
    /// Under the lock, with an item available to the caller: takes it (one move of
    /// T), dispatches, unlocks and wakes. If T's move throws, the item stays and the
    /// queue is as before.
    T take_and_finish(Guard& g) {
        // Dispatch, unlock and wake on the way out, whether the take worked or threw
        // (then the item is still stored and free for a getter). No try block around
        // `v`: the return value is elided into the caller's object.
        struct Finish {
            BasicQueue& q;
            Guard& g;
            ~Finish() {
                const Grants gr = q.dispatch_locked();
                g.unlock();
                q.deliver(gr);
            }
        } finish{*this, g};
        T v = storage_.take();
        taken_locked();
        return v;
    }
    /// Under the lock: QueueShutDown after shutdown(); stores `v` if there is room
    /// (then dispatches, unlocks and wakes) and returns true; else false, still locked.
    bool store_locked(Guard& g, T& v) {
        if (shut_locked()) throw QueueShutDown{};
        if (!has_room_locked()) return false;
        storage_.push(std::move(v));
        stored_locked();
        const Grants gr = dispatch_locked();
        g.unlock();
        deliver(gr);
        return true;
    }
    /// After completing without waiting in await_suspend (the budget was spent):
    /// yield to the back of the ready queue; the result is already in the awaiter.
    static bool yield_after(TaskHeader& self, std::coroutine_handle<> h) noexcept {
        if (coop_budget_left()) return false;
        self.resume_ = h;
        self.schedule();
        return true;
    }

    Storage storage_;  // under the lock
};

}  // namespace detail

/// FIFO queue (asyncio.Queue), safe across cores.
///
/// Fairer than asyncio's, by direct hand-off: an item put while getters wait goes to
/// the longest-waiting getter, and a slot freed while putters wait is reserved for the
/// longest-waiting putter; a newcomer can take neither. Works for move-only T. The
/// members, shared by LifoQueue and PriorityQueue (they live in an internal base
/// class, so they are listed here):
/// - `Queue<T> q(maxsize = 0)`: 0 = unbounded; std::invalid_argument if negative.
/// - `co_await q.put(std::move(v))`: waits for room; QueueShutDown after shutdown().
///   A cancelled put() never inserts.
/// - `T v = co_await q.get()`: waits for an item; QueueShutDown once shut down and
///   drained. A cancelled get() never loses an item.
/// - `q.put_nowait(v)`: QueueFull if full(), QueueShutDown after shutdown().
/// - `q.get_nowait()`: QueueEmpty if empty(), QueueShutDown once shut down and drained.
/// - `q.task_done()` marks an item done (std::invalid_argument if called more often
///   than items were put); `co_await q.join()` waits until every item put was done.
/// - `qsize()`: the items a get_nowait() could take now; `empty()`: qsize() == 0;
///   `full()`: stored items plus slots reserved for woken putters reach `maxsize()`
///   (never when unbounded).
/// - `q.shutdown(immediate = false)` (Python 3.13): later puts raise QueueShutDown,
///   gets drain what is left and then raise it (at once with `immediate`, which
///   discards the items and counts them done for join()); every waiter is woken.
///   `is_shutdown()` tells.
/// - Diagnostics: `approx_getters()`, `approx_putters()` (approximate), `debug_state()`.
///
/// get()/put()/join() inside a task; the rest from any thread. The exact rules open
/// the source of spindle/sync/queue.hpp.
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoStorage<T>> {
public:
    using detail::BasicQueue<T, detail::FifoStorage<T>>::BasicQueue;
};

/// LIFO queue (asyncio.LifoQueue): the most recently put item first. The members
/// and rules are Queue's.
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoStorage<T>> {
public:
    using detail::BasicQueue<T, detail::LifoStorage<T>>::BasicQueue;
};

/// Priority queue (asyncio.PriorityQueue): the lowest item by Compare first. The
/// members and rules are Queue's.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::HeapStorage<T, Compare>> {
public:
    using detail::BasicQueue<T, detail::HeapStorage<T, Compare>>::BasicQueue;
};

}  // namespace spindle
