// <spindle/net.hpp> — TCP sockets and fd readiness on spindle's I/O driver
// (DESIGN.md "Net"). Target spindle::net.
//
// Sockets are move-only RAII objects: destroying one closes it. They are created
// non-blocking and close-on-exec, and join the I/O driver of the runtime whose task
// first waits on them (a socket that never has to wait is never registered). Every
// call that waits tries the system call first and parks only on EAGAIN, so a read
// that finds bytes already there does not suspend.
//
// Cancel-safety (what a cancelled or timed-out call, e.g. under spindle::wait_for,
// leaves behind; Tokio's documentation is the model):
//
//   call                     cancel-safe   a cancelled call...
//   TcpListener::accept      yes           took no connection: the next accept gets it
//   TcpStream::connect       yes           leaves no socket (the half-open one is closed)
//   TcpStream::read          yes           consumed nothing: the next read gets every byte
//   TcpStream::read_exact    no            may have consumed a prefix (lost with the call)
//   TcpStream::write_all     no            may have sent a prefix
//   readable(fd), writable   yes           changed nothing
//
// Errors: std::system_error with the errno (ECONNREFUSED, ECONNRESET, EPIPE,
// EADDRINUSE, ...), IncompleteReadError from read_exact at end of stream, and
// std::logic_error on a closed or moved-from socket or a socket used by a task of
// another runtime than the one it joined. Writes never raise SIGPIPE.
//
// Threads: one socket may be read by one task and written by another at the same
// time; two tasks reading (or two writing) the same socket at once interleave their
// bytes as two threads would. close() from any task, on any worker, while other tasks
// are in calls on the socket shuts it down and wakes them; their calls throw
// std::logic_error, and the fd is released when the last of them has left (never
// while one could still use the number). Destroying a socket, or moving another into
// it, while calls are in flight on it is undefined, as for any object in use.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "spindle/runtime/detail/io.hpp"
#include "spindle/runtime/task.hpp"

/// TCP sockets and readiness of any non-blocking fd, driven by the runtime's I/O
/// driver (epoll): see <spindle/net.hpp> for cancel-safety and errors.
namespace spindle::net {

namespace detail {

/// A socket's fd, its registration with the I/O driver, and the calls in flight on it.
/// state_ = calls in flight << 1 | closed. Every call enters (fails with
/// std::logic_error once closed) and leaves; close() sets the closed bit, shuts the
/// socket down and wakes its waiters when calls are in flight, and the last of them
/// to leave releases the fd — so a close() from another task never makes a call in
/// flight use a closed (or reused) fd number. (net/src/net.cpp, "Closing".)
class SocketCore {
public:
    SocketCore() noexcept = default;
    explicit SocketCore(int fd) noexcept : fd_(fd) {}
    SocketCore(SocketCore&& o) noexcept;
    SocketCore& operator=(SocketCore&& o) noexcept;
    SocketCore(const SocketCore&) = delete;
    SocketCore& operator=(const SocketCore&) = delete;
    ~SocketCore() { close(); }

    void close() noexcept;
    [[nodiscard]] int fd() const noexcept {
        // relaxed: the value only changes when no call is in flight (release()).
        return fd_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] bool open() const noexcept {
        // acquire: pairs with close()'s CAS.
        return fd() >= 0 && (state_.load(std::memory_order_acquire) & 1U) == 0U;
    }
    /// A call starts: false once closed.
    bool enter() noexcept;
    /// A call ends; the last one after close() releases the fd.
    void leave() noexcept;

    std::atomic<int> fd_{-1};
    std::atomic<std::uint32_t> state_{0};
    // The read tick before the last recv that returned fewer bytes than asked (the
    // socket was drained then); UINT64_MAX: none. See TcpStream::read.
    std::atomic<std::uint64_t> drained_tick_{UINT64_MAX};
    spindle::detail::IoRegistration reg_;

private:
    void release() noexcept;
};

}  // namespace detail

/// TcpStream::read_exact reached the end of the stream before the buffer was full
/// (asyncio.IncompleteReadError). Holds the bytes that were received.
class IncompleteReadError : public std::runtime_error {
public:
    /// `partial`: the bytes received before the end of the stream; `expected`: the size asked for.
    IncompleteReadError(std::vector<std::byte> partial, std::size_t expected);
    /// The bytes received before the end of the stream (fewer than expected()).
    [[nodiscard]] const std::vector<std::byte>& partial() const noexcept { return partial_; }
    /// The number of bytes read_exact was asked for.
    [[nodiscard]] std::size_t expected() const noexcept { return expected_; }

private:
    std::vector<std::byte> partial_;
    std::size_t expected_;
};

/// A connected TCP socket (asyncio's StreamReader + StreamWriter, Tokio's TcpStream).
class TcpStream {
public:
    /// A closed stream (every call but close() and is_open() throws std::logic_error).
    TcpStream() noexcept = default;
    /// Adopts a connected socket `fd` (made non-blocking here); the stream owns it.
    explicit TcpStream(int fd);
    /// Takes over `other`'s socket; `other` is left closed.
    TcpStream(TcpStream&& other) noexcept;
    /// Closes this socket, then takes over `other`'s; `other` is left closed.
    TcpStream& operator=(TcpStream&& other) noexcept;
    TcpStream(const TcpStream&) = delete;
    TcpStream& operator=(const TcpStream&) = delete;
    /// Closes the socket (see close()).
    ~TcpStream();

    /// Connects to `host` (a numeric IPv4 or IPv6 address, or "localhost" =
    /// 127.0.0.1) on `port`. Cancel-safe. std::system_error on failure
    /// (ECONNREFUSED, ...); std::invalid_argument for a name that is not numeric
    /// (resolve it with spindle::to_thread and getaddrinfo first).
    static Task<TcpStream> connect(std::string_view host, std::uint16_t port);

    /// Waits until at least one byte can be read, reads up to buf.size() bytes and
    /// returns how many; 0 means the peer closed its side (or buf is empty).
    /// Cancel-safe: a cancelled read consumed nothing.
    Task<std::size_t> read(std::span<std::byte> buf);
    /// Reads exactly buf.size() bytes, or throws IncompleteReadError (holding what
    /// came) when the stream ends first. Not cancel-safe (a prefix may be consumed).
    Task<void> read_exact(std::span<std::byte> buf);
    /// Writes all of buf, waiting for room as needed. Not cancel-safe: a cancelled
    /// write_all may have sent a prefix. A closed peer: std::system_error (EPIPE or
    /// ECONNRESET), never SIGPIPE.
    Task<void> write_all(std::span<const std::byte> buf);

    /// Half-close: the peer's reads see end of stream; this side can still read.
    void shutdown_write();
    /// Closes the socket (idempotent). Calls in flight on it in other tasks are woken
    /// and throw std::logic_error; the fd is released when the last has left.
    void close() noexcept;
    /// TCP_NODELAY on (true) or off.
    void set_nodelay(bool on);
    /// The local port of the connection.
    [[nodiscard]] std::uint16_t local_port() const;
    /// The fd, or -1 when closed. The stream still owns it.
    [[nodiscard]] int native_handle() const noexcept { return core_.open() ? core_.fd() : -1; }
    /// False once closed or moved from.
    [[nodiscard]] bool is_open() const noexcept { return core_.open(); }

private:
    friend class TcpListener;
    detail::SocketCore core_;
};

/// A listening TCP socket (asyncio.start_server, Tokio's TcpListener).
class TcpListener {
public:
    /// A closed listener.
    TcpListener() noexcept = default;
    /// Takes over `other`'s socket; `other` is left closed.
    TcpListener(TcpListener&& other) noexcept;
    /// Closes this socket, then takes over `other`'s; `other` is left closed.
    TcpListener& operator=(TcpListener&& other) noexcept;
    TcpListener(const TcpListener&) = delete;
    TcpListener& operator=(const TcpListener&) = delete;
    /// Closes the socket.
    ~TcpListener();

    /// Binds and listens on `host` (numeric IPv4/IPv6 or "localhost" = 127.0.0.1)
    /// and `port` (0: any free port, see local_port()), with SO_REUSEADDR. Callable
    /// from any thread. std::system_error (EADDRINUSE, ...) on failure.
    static TcpListener bind(std::string_view host, std::uint16_t port, int backlog = 1024);
    /// Waits for a connection and returns it (non-blocking, close-on-exec).
    /// Cancel-safe: a cancelled accept takes no connection.
    Task<TcpStream> accept();
    /// The bound port.
    [[nodiscard]] std::uint16_t local_port() const;
    /// Closes the socket now (idempotent); a task waiting in accept() gets std::logic_error.
    void close() noexcept;
    /// The fd, or -1 when closed.
    [[nodiscard]] int native_handle() const noexcept { return core_.open() ? core_.fd() : -1; }
    /// False once closed or moved from.
    [[nodiscard]] bool is_open() const noexcept { return core_.open(); }

private:
    detail::SocketCore core_;
};

/// Waits until the non-blocking fd `fd`, which the caller owns and keeps open
/// meanwhile, is readable (or has hung up / failed). Any kind of fd epoll accepts:
/// a pipe, an eventfd, a foreign library's socket (asyncio's add_reader, Tokio's
/// AsyncFd). Cancel-safe. A regular file is always ready (poll(2) says so), so the
/// wait ends at once; std::system_error for a closed fd (EBADF) or one epoll refuses.
Task<void> readable(int fd);
/// As readable(), for writability.
Task<void> writable(int fd);

}  // namespace spindle::net
