// spindle/runtime/detail/io.hpp — what spindle::net needs from the runtime's I/O
// driver (runtime/src/io.cpp). Shipped but internal: do not depend on it.
//
// An fd joins a runtime's driver through an IoRegistration (held by the socket),
// lazily: the first wait registers it (epoll, edge-triggered, read and write at
// once). Each registration has, per direction, a readiness tick that the driver
// bumps on every event. The protocol of a waiting call (read, accept, ...):
//
//   tick = io_tick(reg, dir)          // before the system call
//   syscall -> EAGAIN
//   co_await IoWait{reg, fd, dir, tick}   // returns at once if the tick moved
//
// An event that arrives after the system call failed bumps the tick after it was
// read, so the wait either sees the new tick or is woken by it: no readiness is
// lost, and a wake-up may be spurious (the caller loops).
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>

#include "spindle/runtime/detail/task_header.hpp"

namespace spindle::detail {

class IoDriver;
struct IoSlot;

enum class IoDir : std::uint8_t { read = 0, write = 1 };

/// A socket's place in a runtime's I/O driver; empty until the first wait.
/// Move-only; reset() (or the destructor) deregisters.
class IoRegistration {
public:
    IoRegistration() noexcept = default;
    IoRegistration(IoRegistration&& o) noexcept;
    IoRegistration& operator=(IoRegistration&& o) noexcept;
    IoRegistration(const IoRegistration&) = delete;
    IoRegistration& operator=(const IoRegistration&) = delete;
    ~IoRegistration() { reset(); }

    /// Leaves the driver (before the fd is closed) and wakes every task still
    /// waiting on it (their calls then find the socket closed). Not concurrent with
    /// any other use of the registration. `fd_closing`: the caller closes the fd at
    /// once and owns its only descriptor, so the close itself takes it out of the
    /// epoll set (no EPOLL_CTL_DEL; a dup() made by a user keeps the file in the set
    /// until it is closed, its events ignored).
    void reset(bool fd_closing = false) noexcept;
    /// Wakes every task waiting on the fd now, leaving the registration in place
    /// (close() from another task; concurrent with waits, not with reset()).
    void wake_all() noexcept;
    [[nodiscard]] bool registered() const noexcept {
        // acquire: pairs with the release store that published driver_ and gen_.
        return slot_.load(std::memory_order_acquire) != nullptr;
    }

private:
    friend struct IoAccess;
    // Two tasks may make a socket's first waits at once (one reads, one writes): the
    // registration is made once, under a lock, and published by the release store of
    // slot_ after driver_ and gen_ (which never change while registered).
    IoDriver* driver_ = nullptr;  // holds a reference while registered
    std::atomic<IoSlot*> slot_{nullptr};
    std::uint32_t gen_ = 0;
};

/// The readiness tick of `dir` (0 before registration). Read it before the system
/// call whose EAGAIN the wait will follow.
std::uint64_t io_tick(const IoRegistration& reg, IoDir dir) noexcept;

/// Whether the driver has reported a hang-up, end of stream or an error for the fd
/// (or it is not registered): then a short read does not mean the socket is drained.
/// Read after io_tick().
bool io_hung_up(const IoRegistration& reg) noexcept;

/// A waiter in an IoSlot's list (inside IoWait).
struct IoWaiterNode {
    IoWaiterNode* next = nullptr;
    IoWaiterNode* prev = nullptr;
    TaskHeader* task = nullptr;
    std::uint64_t token = 0;
    bool linked = false;  // under the slot's lock
};

/// `co_await IoWait{...}`: waits until `dir`'s tick differs from `seen` (registering
/// `fd` first if needed). Cancel-safe; CancelledError on cancellation. Throws
/// std::logic_error when the registration belongs to another runtime.
/// `closed`, when given: a word whose bit 0 means the socket is being closed; the
/// wait then ends at once (checked under the slot's lock, so a close() that sets it
/// and then calls wake_all() never misses a waiter).
struct IoWait : WaitNode {
    IoWait(IoRegistration& r, int f, IoDir d, std::uint64_t s, const std::atomic<std::uint32_t>* c = nullptr) noexcept
        : reg(&r), fd(f), dir(d), seen(s), closed(c) {}
    IoRegistration* reg;
    int fd;
    IoDir dir;
    std::uint64_t seen;
    const std::atomic<std::uint32_t>* closed;
    IoWaiterNode node;
    IoSlot* slot = nullptr;      // set by await_ready
    IoDriver* driver = nullptr;  // set by await_ready
    bool armed = false;          // await_suspend ran (a suspension point)

    bool await_ready();
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume();
};

}  // namespace spindle::detail
