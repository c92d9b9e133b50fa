// runtime/src/io.cpp — the I/O driver (design and invariants: io.hpp) and the wait
// that spindle::net builds on (spindle/runtime/detail/io.hpp).
#include "io.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <stdexcept>
#include <system_error>

#include "scheduler_internal.hpp"
#include "spindle/runtime/errors.hpp"

namespace spindle::detail {

struct IoAccess {
    static IoDriver*& driver(IoRegistration& r) noexcept { return r.driver_; }
    static std::atomic<IoSlot*>& slot(IoRegistration& r) noexcept { return r.slot_; }
    static std::uint32_t& gen(IoRegistration& r) noexcept { return r.gen_; }
    static const IoSlot* slot(const IoRegistration& r) noexcept {
        // acquire: pairs with the release store in register_once().
        return r.slot_.load(std::memory_order_acquire);
    }
};

namespace {

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

void link(IoSlot& s, int d, IoWaiterNode& n) noexcept {
    n.prev = s.tail[d];
    n.next = nullptr;
    if (s.tail[d] != nullptr) s.tail[d]->next = &n;
    else s.head[d] = &n;
    s.tail[d] = &n;
    n.linked = true;
}

void unlink(IoSlot& s, int d, IoWaiterNode& n) noexcept {
    if (n.prev != nullptr) n.prev->next = n.next;
    else s.head[d] = n.next;
    if (n.next != nullptr) n.next->prev = n.prev;
    else s.tail[d] = n.prev;
    n.next = n.prev = nullptr;
    n.linked = false;
}

/// Schedules waiters whose waits were claimed under a slot lock (after it was
/// released), chained newest first through `next`: in the order they came.
void schedule_claimed(IoWaiterNode* claimed) noexcept {
    IoWaiterNode* fifo = nullptr;
    while (claimed != nullptr) {
        IoWaiterNode* n = claimed;
        claimed = n->next;
        n->next = fifo;
        fifo = n;
    }
    while (fifo != nullptr) {
        IoWaiterNode* n = fifo;
        fifo = n->next;
        n->next = nullptr;
        n->task->schedule();  // the node may die from here on
    }
}

}  // namespace

// ───────────────────────── IoDriver ─────────────────────────

IoDriver::IoDriver(Scheduler* sched) : sched_(sched), chunks_(new std::atomic<IoSlot*>[kMaxChunks]) {
    for (std::uint32_t i = 0; i < kMaxChunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);  // relaxed: not shared yet
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw_errno("spindle: epoll_create1");
    evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (evfd_ < 0) {
        const int e = errno;
        ::close(epfd_);
        throw std::system_error(e, std::generic_category(), "spindle: eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: drained by the poller that sees it
    ev.data.u64 = kWakeToken;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) != 0) {
        const int e = errno;
        ::close(evfd_);
        ::close(epfd_);
        throw std::system_error(e, std::generic_category(), "spindle: epoll_ctl(eventfd)");
    }
}

IoDriver::~IoDriver() {
    ::close(evfd_);
    ::close(epfd_);
    for (std::uint32_t i = 0; i < kMaxChunks; ++i)
        delete[] chunks_[i].load(std::memory_order_relaxed);  // relaxed: the last owner, after acq_rel release()
}

IoSlot* IoDriver::slot_at(std::uint32_t index) const noexcept {
    // acquire: pairs with the release store in attach() that published the chunk.
    IoSlot* chunk = chunks_[index >> kChunkBits].load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : &chunk[index & (kChunk - 1)];
}

IoSlot* IoDriver::attach(int fd, std::uint32_t* gen) {
    IoSlot* s = nullptr;
    {
        std::lock_guard lk(slab_mx_);
        if (!free_.empty()) {
            s = slot_at(free_.back());
            free_.pop_back();
        } else {
            const std::uint32_t index = next_index_;
            if ((index >> kChunkBits) >= kMaxChunks) throw std::system_error(EMFILE, std::generic_category(), "spindle: I/O driver full");
            // relaxed: only this thread (under slab_mx_) stores chunks.
            if (chunks_[index >> kChunkBits].load(std::memory_order_relaxed) == nullptr) {
                auto* chunk = new IoSlot[kChunk];
                for (std::uint32_t i = 0; i < kChunk; ++i) chunk[i].index = (index & ~(kChunk - 1)) + i;
                // release: pairs with slot_at()'s acquire (a poller reading a new slot).
                chunks_[index >> kChunkBits].store(chunk, std::memory_order_release);
            }
            ++next_index_;
            s = slot_at(index);
        }
    }
    std::uint32_t g = 0;
    {
        std::lock_guard lk(s->mx);
        g = s->gen;
        s->fd = fd;
        // relaxed: under s->mx (readers of a fresh generation take it or accept a stale value).
        s->ticks[0].store(0, std::memory_order_relaxed);
        s->ticks[1].store(0, std::memory_order_relaxed);  // relaxed: as above
        s->hup.store(false, std::memory_order_relaxed);   // relaxed: as above
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = (static_cast<std::uint64_t>(g) << 32) | s->index;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        const int e = errno;
        {
            std::lock_guard lk(s->mx);
            ++s->gen;
            s->fd = -1;
        }
        std::lock_guard lk(slab_mx_);
        free_.push_back(s->index);
        throw std::system_error(e, std::generic_category(), "spindle: epoll_ctl(ADD)");
    }
    // relaxed: a heuristic count (active()).
    registered_.fetch_add(1, std::memory_order_relaxed);
    *gen = g;
    return s;
}

void IoDriver::wake_waiters(IoSlot* s, std::uint32_t gen) noexcept { take_waiters(s, gen, Free::no); }

void IoDriver::detach(IoSlot* s, std::uint32_t gen, bool fd_closing) noexcept {
    if (!take_waiters(s, gen, fd_closing ? Free::keep_epoll : Free::yes)) return;
    // relaxed: as in attach().
    registered_.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard lk(slab_mx_);
    free_.push_back(s->index);
}

bool IoDriver::take_waiters(IoSlot* s, std::uint32_t gen, Free free_slot) noexcept {
    IoWaiterNode* claimed = nullptr;  // chained through `next` once unlinked
    {
        std::lock_guard lk(s->mx);
        if (s->gen != gen) return false;
        if (free_slot != Free::no) {
            // Free::keep_epoll: the caller closes the fd next, and closing the last
            // descriptor of a file removes it from every epoll set (what Asio does):
            // one system call less per connection. Events already queued for it carry
            // the old generation and are dropped by the poller.
            if (s->fd >= 0 && free_slot == Free::yes) (void)epoll_ctl(epfd_, EPOLL_CTL_DEL, s->fd, nullptr);
            ++s->gen;
            s->fd = -1;
        }
        for (int d = 0; d < 2; ++d) {
            while (IoWaiterNode* n = s->head[d]) {
                unlink(*s, d, *n);
                waiting_.fetch_sub(1);
                // The claim freezes the task, so the node (in its frame) and its header
                // stay valid after we unlock; a waiter that lost to a canceller is
                // resumed by the canceller, and finds itself unlinked.
                if (n->task->claim(n->token)) {
                    n->next = claimed;
                    claimed = n;
                }
            }
        }
    }
    schedule_claimed(claimed);
    return true;
}

int IoDriver::poll(std::vector<epoll_event>& out, std::int64_t timeout_ns) noexcept {
    if (out.empty()) out.resize(256);
    int n = -1;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
    static std::atomic<bool> no_pwait2{false};
    // relaxed: a cached capability probe.
    if (!no_pwait2.load(std::memory_order_relaxed)) {
        timespec ts = to_timespec(timeout_ns);
        n = epoll_pwait2(epfd_, out.data(), static_cast<int>(out.size()), timeout_ns >= 0 ? &ts : nullptr, nullptr);
        // Any error but EINTR (ENOSYS on an old kernel, EPERM from a seccomp filter
        // that does not know the call): use epoll_wait from now on.
        // relaxed: as above.
        if (n < 0 && errno != EINTR) no_pwait2.store(true, std::memory_order_relaxed);
        else if (n < 0) n = 0;
    }
#endif
    if (n < 0) {
        const int ms = timeout_ns < 0 ? -1 : static_cast<int>(std::min<std::int64_t>((timeout_ns + 999'999) / 1'000'000, INT32_MAX));
        n = epoll_wait(epfd_, out.data(), static_cast<int>(out.size()), ms);
        if (n < 0) n = 0;  // EINTR
    }
    // Drop the eventfd's event (and drain it), keep the others.
    int k = 0;
    for (int i = 0; i < n; ++i) {
        if (out[i].data.u64 == kWakeToken) {
            std::uint64_t v = 0;
            (void)!::read(evfd_, &v, sizeof v);
        } else {
            out[k++] = out[i];
        }
    }
    return k;
}

void IoDriver::dispatch(const epoll_event* ev, int n) noexcept {
    for (int i = 0; i < n; ++i) {
        const std::uint64_t data = ev[i].data.u64;
        IoSlot* s = slot_at(static_cast<std::uint32_t>(data));
        if (s == nullptr) continue;
        const std::uint32_t bits = ev[i].events;
        const bool rd = (bits & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) != 0U;
        const bool wr = (bits & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0U;
        IoWaiterNode* claimed = nullptr;  // chained through `next` once unlinked
        {
            std::lock_guard lk(s->mx);
            if (s->gen != static_cast<std::uint32_t>(data >> 32)) continue;  // stale: freed meanwhile
            // seq_cst: stored before the tick moves (io_read_closed readers load the
            // tick, then this flag).
            if ((bits & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0U) s->hup.store(true, std::memory_order_seq_cst);
            for (int d = 0; d < 2; ++d) {
                if (d == 0 ? !rd : !wr) continue;
                // seq_cst: read by waiters (io_tick, the check in await_suspend under mx).
                s->ticks[d].fetch_add(1, std::memory_order_seq_cst);
                while (IoWaiterNode* w = s->head[d]) {
                    unlink(*s, d, *w);
                    waiting_.fetch_sub(1);
                    // A won claim freezes the task: its node and header stay valid after
                    // we unlock. (Scheduled outside the slot lock: scheduling may take
                    // idle_mx_, under which a deadlock check reads the slots.)
                    if (w->task->claim(w->token)) {
                        w->next = claimed;
                        claimed = w;
                    }
                }
            }
        }
        schedule_claimed(claimed);
    }
}

void IoDriver::notify() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(evfd_, &one, sizeof one);
}

void IoDriver::collect_waiters(std::vector<WaitInfo>& out) const {
    std::lock_guard lk(slab_mx_);
    for (std::uint32_t i = 0; i < next_index_; ++i) {
        IoSlot* s = slot_at(i);
        std::lock_guard sl(s->mx);
        for (int d = 0; d < 2; ++d)
            for (const IoWaiterNode* n = s->head[d]; n != nullptr; n = n->next)
                out.push_back({n->task, s->fd, static_cast<IoDir>(d)});
    }
}

// ───────────────────────── the wait (detail/io.hpp) ─────────────────────────

namespace {
// Serializes first registrations (once per socket: cheap next to the epoll_ctl).
std::mutex g_register_mx;
}  // namespace

// Moving or resetting a registration while another task uses the socket is the
// caller's race (like destroying a socket in use): relaxed accesses below.
IoRegistration::IoRegistration(IoRegistration&& o) noexcept
    : driver_(std::exchange(o.driver_, nullptr)),
      slot_(o.slot_.exchange(nullptr, std::memory_order_relaxed)),  // relaxed: see above
      gen_(o.gen_) {}

IoRegistration& IoRegistration::operator=(IoRegistration&& o) noexcept {
    if (this != &o) {
        reset();
        driver_ = std::exchange(o.driver_, nullptr);
        // relaxed: see above.
        slot_.store(o.slot_.exchange(nullptr, std::memory_order_relaxed), std::memory_order_relaxed);
        gen_ = o.gen_;
    }
    return *this;
}

void IoRegistration::reset(bool fd_closing) noexcept {
    // acquire: pairs with the release store in register_once() (another task may have
    // registered the socket).
    IoSlot* s = slot_.load(std::memory_order_acquire);
    if (s == nullptr) return;
    driver_->detach(s, gen_, fd_closing);
    driver_->release();
    driver_ = nullptr;
    // relaxed: the socket is being closed; nobody else may use it from here on.
    slot_.store(nullptr, std::memory_order_relaxed);
}

void IoRegistration::wake_all() noexcept {
    // seq_cst: the load half of the Dekker pair in register_once().
    IoSlot* s = slot_.load(std::memory_order_seq_cst);
    if (s != nullptr) driver_->wake_waiters(s, gen_);
}

namespace {
void register_once(IoRegistration& reg, IoDriver* d, int fd) {
    std::lock_guard lk(g_register_mx);
    if (reg.registered()) return;
    std::uint32_t g = 0;
    IoSlot* s = d->attach(fd, &g);
    d->add_ref();
    IoAccess::driver(reg) = d;
    IoAccess::gen(reg) = g;
    // seq_cst: publishes driver_ and gen_ to registered()/IoAccess::slot() readers,
    // and is the store half of the Dekker pair with wake_all() (a closer sets its
    // closed bit, then reads slot_; the waiter stores slot_, then reads the bit).
    IoAccess::slot(reg).store(s, std::memory_order_seq_cst);
}
}  // namespace

std::uint64_t io_tick(const IoRegistration& reg, IoDir dir) noexcept {
    const IoSlot* s = IoAccess::slot(reg);
    // seq_cst: pairs with the driver's fetch_add (see the protocol in detail/io.hpp).
    return s == nullptr ? 0 : s->ticks[static_cast<int>(dir)].load(std::memory_order_seq_cst);
}

bool io_hung_up(const IoRegistration& reg) noexcept {
    const IoSlot* s = IoAccess::slot(reg);
    // seq_cst: pairs with the store in dispatch().
    return s == nullptr || s->hup.load(std::memory_order_seq_cst);
}

bool IoWait::await_ready() {
    TaskHeader& t = require_task("spindle::net (waiting on a socket)");
    IoDriver* d = t.sched_->io_driver();
    if (!reg->registered()) register_once(*reg, d, fd);
    if (IoAccess::driver(*reg) != d)
        throw std::logic_error("spindle::net: a socket is used by a task of another runtime than the one it joined");
    slot = const_cast<IoSlot*>(IoAccess::slot(std::as_const(*reg)));
    driver = d;
    node.task = &t;
    // seq_cst: see `closed` (detail/io.hpp).
    if (closed != nullptr && (closed->load(std::memory_order_seq_cst) & 1U) != 0U) return true;
    // seq_cst: as in io_tick().
    return slot->ticks[static_cast<int>(dir)].load(std::memory_order_seq_cst) != seen;
}

bool IoWait::await_suspend(std::coroutine_handle<> h) {
    TaskHeader& t = *node.task;
    armed = true;
    node.token = t.arm(this, h);
    const int d = static_cast<int>(dir);
    {
        std::lock_guard lk(slot->mx);
        // relaxed: under slot->mx, which the driver holds while it bumps the tick.
        if (slot->gen != IoAccess::gen(*reg) || slot->ticks[d].load(std::memory_order_relaxed) != seen ||
            // seq_cst: the Dekker pair with a closer (see register_once / wake_all).
            (closed != nullptr && (closed->load(std::memory_order_seq_cst) & 1U) != 0U)) {
            // Ready already (or the socket was closed): do not suspend, unless a
            // canceller claimed the wait first (it schedules us).
            return !t.claim(node.token);
        }
        link(*slot, d, node);
        driver->waiting_.fetch_add(1);
    }
    if (t.cancelled_while_arming(node.token)) t.schedule();  // back of the queue, as asyncio
    return true;
}

void IoWait::await_resume() {
    if (!armed) return;  // ready without suspending: not a suspension point
    {
        std::lock_guard lk(slot->mx);
        if (node.linked) {
            unlink(*slot, static_cast<int>(dir), node);
            driver->waiting_.fetch_sub(1);
        }
    }
    if (node.task->consume_cancel()) throw CancelledError{};
}

}  // namespace spindle::detail
