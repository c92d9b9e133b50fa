// net/src/net.cpp — spindle::net: TcpListener, TcpStream, readable/writable. Every
// waiting call follows the protocol of spindle/runtime/detail/io.hpp: read the
// readiness tick, try the system call, and wait for the tick to move only on EAGAIN.
//
// Closing (SocketCore, net.hpp). Another task may close() a socket while calls are
// in flight on it, on another worker: the call may be between its check and its
// system call, so the fd number must stay ours until it has left. Each call holds an
// entry in state_ (Guard) for its whole length, waits included; close() sets the
// closed bit (one CAS, with an entry of its own), and if calls are in flight it
// shuts the socket down (a parked recv/accept sees end of stream or an error at once)
// and wakes the waiters (IoWait checks the closed bit under the slot lock, so none
// can link itself after that wake); the last entry to leave deregisters and closes
// the fd. Calls re-check the bit before every system call and then throw
// std::logic_error.
#include "spindle/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "spindle/runtime/time.hpp"

namespace spindle::net {

namespace {

using spindle::detail::IoDir;
using spindle::detail::IoWait;
using spindle::detail::io_tick;

[[noreturn]] void throw_errno(int e, const std::string& what) {
    throw std::system_error(e, std::generic_category(), "spindle::net: " + what);
}

struct Address {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
};

Address parse(std::string_view host, std::uint16_t port) {
    std::string h(host);
    if (h == "localhost") h = "127.0.0.1";
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    Address a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.len = sizeof(sockaddr_in);
        a.family = AF_INET;
        return a;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a.len = sizeof(sockaddr_in6);
        a.family = AF_INET6;
        return a;
    }
    throw std::invalid_argument("spindle::net: \"" + h +
                                "\" is not a numeric IPv4/IPv6 address or \"localhost\" (resolve names with "
                                "spindle::to_thread and getaddrinfo)");
}

int new_socket(int family) {
    const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw_errno(errno, "socket");
    return fd;
}

std::uint16_t port_of(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw_errno(errno, "getsockname");
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

[[noreturn]] void throw_closed(const char* what) {
    throw std::logic_error(std::string("spindle::net: ") + what + " on a closed or moved-from socket");
}

bool would_block(int e) noexcept { return e == EAGAIN || e == EWOULDBLOCK; }

}  // namespace

// ───────────────────────── IncompleteReadError ─────────────────────────

IncompleteReadError::IncompleteReadError(std::vector<std::byte> partial, std::size_t expected)
    : std::runtime_error("spindle::net::IncompleteReadError: " + std::to_string(partial.size()) +
                         " bytes read on a total of " + std::to_string(expected) + " expected bytes"),
      partial_(std::move(partial)),
      expected_(expected) {}

// ───────────────────────── SocketCore ─────────────────────────

namespace detail {

SocketCore::SocketCore(SocketCore&& o) noexcept
    // relaxed (these three): moving a socket while calls are in flight is the caller's race.
    : fd_(o.fd_.exchange(-1, std::memory_order_relaxed)),
      state_(o.state_.exchange(0, std::memory_order_relaxed)),  // relaxed: as above
      reg_(std::move(o.reg_)) {}

SocketCore& SocketCore::operator=(SocketCore&& o) noexcept {
    if (this != &o) {
        close();
        // relaxed (these four): as in the move constructor.
        fd_.store(o.fd_.exchange(-1, std::memory_order_relaxed), std::memory_order_relaxed);
        state_.store(o.state_.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);  // relaxed: as above
        reg_ = std::move(o.reg_);
    }
    return *this;
}

bool SocketCore::enter() noexcept {
    // relaxed: the CAS validates.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    do {
        if ((s & 1U) != 0U || fd() < 0) return false;
        // acquire: the fd and registration stay ours until we leave (pairs with
        // leave()'s release); failure relaxed: re-validated.
    } while (!state_.compare_exchange_weak(s, s + 2, std::memory_order_acquire, std::memory_order_relaxed));
    return true;
}

void SocketCore::leave() noexcept {
    // acq_rel: the last one out (closed, no call left) sees every other call's use of
    // the fd before it releases it.
    if (state_.fetch_sub(2, std::memory_order_acq_rel) == 3) release();
}

void SocketCore::close() noexcept {
    // relaxed: the CAS validates.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    do {
        if ((s & 1U) != 0U) return;
        if (fd() < 0) return;  // never opened, or moved from
        // seq_cst: the Dekker pair with IoWait (closed bit, then the slot; see
        // register_once in runtime/src/io.cpp); the entry keeps the fd ours.
    } while (!state_.compare_exchange_weak(s, (s | 1U) + 2, std::memory_order_seq_cst, std::memory_order_relaxed));
    if ((s >> 1) != 0U) {
        // Calls in flight: stop the socket (recv returns 0, accept fails) and wake
        // the parked ones; each throws std::logic_error at its next check.
        (void)::shutdown(fd(), SHUT_RDWR);
        reg_.wake_all();
    }
    leave();
}

void SocketCore::release() noexcept {
    // Leaves the driver before the number can be reused; the close below takes the
    // socket (ours alone) out of the epoll set.
    reg_.reset(/*fd_closing=*/true);
    // relaxed: no call is in flight (state_ says so, acquired by leave()).
    const int fd = fd_.exchange(-1, std::memory_order_relaxed);
    if (fd >= 0) ::close(fd);
}

}  // namespace detail

namespace {

/// A call's entry in SocketCore::state_ (see "Closing").
class Guard {
public:
    Guard(detail::SocketCore& c, const char* what) : c_(c), what_(what) {
        if (!c.enter()) throw_closed(what);
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { c_.leave(); }
    /// The fd, or std::logic_error if the socket was closed since the call began.
    [[nodiscard]] int fd() const {
        // acquire: pairs with close()'s CAS.
        if ((c_.state_.load(std::memory_order_acquire) & 1U) != 0U) throw_closed(what_);
        return c_.fd();
    }

private:
    detail::SocketCore& c_;
    const char* what_;
};

}  // namespace

// ───────────────────────── TcpStream ─────────────────────────

TcpStream::TcpStream(int fd) {
    if (fd < 0) throw std::invalid_argument("spindle::net::TcpStream: negative fd");
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno(errno, "fcntl(O_NONBLOCK)");
    core_.fd_.store(fd, std::memory_order_relaxed);  // relaxed: not shared yet
}

TcpStream::TcpStream(TcpStream&& other) noexcept = default;
TcpStream& TcpStream::operator=(TcpStream&& other) noexcept = default;
TcpStream::~TcpStream() = default;

void TcpStream::close() noexcept { core_.close(); }

Task<TcpStream> TcpStream::connect(std::string_view host, std::uint16_t port) {
    const Address a = parse(host, port);
    TcpStream s;
    // `s` is ours alone until it is returned (no Guard: it would move with it).
    const int fd = new_socket(a.family);
    s.core_.fd_.store(fd, std::memory_order_relaxed);  // relaxed: not shared yet
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) == 0) co_return s;
    if (errno != EINPROGRESS) throw_errno(errno, "connect");
    for (;;) {
        const std::uint64_t tick = io_tick(s.core_.reg_, IoDir::write);
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) throw_errno(errno, "getsockopt(SO_ERROR)");
        if (err != 0 && err != EINPROGRESS) throw_errno(err, "connect");
        sockaddr_storage peer{};
        socklen_t plen = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) co_return s;
        if (errno != ENOTCONN) throw_errno(errno, "connect");
        co_await IoWait{s.core_.reg_, fd, IoDir::write, tick};
    }
}

Task<std::size_t> TcpStream::read(std::span<std::byte> buf) {
    const Guard g(core_, "read");
    for (;;) {
        const int fd = g.fd();
        if (buf.empty()) co_return 0;
        if (!spindle::detail::coop_consume()) co_await yield_now();  // a reader that never waits must not starve the others
        const std::uint64_t tick = io_tick(core_.reg_, IoDir::read);
        // A recv that returned fewer bytes than asked drained the socket; bytes that
        // came after it raised an edge, so while the tick has not moved since before
        // that recv there is nothing to read: wait without the recv that would only
        // say EAGAIN (one system call less per message in a request/response loop).
        // relaxed: a hint between this socket's reads; the tick protocol decides.
        // (Not once the peer hung up or an error came: end of stream or the error is
        // there to read without a new edge.)
        if (tick != 0 && core_.drained_tick_.load(std::memory_order_relaxed) == tick &&
            !spindle::detail::io_hung_up(core_.reg_)) {
            co_await IoWait{core_.reg_, fd, IoDir::read, tick, &core_.state_};
            continue;
        }
        const ssize_t n = ::recv(g.fd(), buf.data(), buf.size(), 0);
        const int e = errno;
        // A close() that came between the check and the recv shut the socket down:
        // its end of stream or error is close()'s, reported as such.
        if (n <= 0) (void)g.fd();
        // relaxed: as above.
        core_.drained_tick_.store(n > 0 && static_cast<std::size_t>(n) < buf.size() ? tick : UINT64_MAX,
                                  std::memory_order_relaxed);  // relaxed: as above
        if (n >= 0) co_return static_cast<std::size_t>(n);
        if (would_block(e)) co_await IoWait{core_.reg_, fd, IoDir::read, tick, &core_.state_};
        else if (e != EINTR) throw_errno(e, "read");
    }
}

Task<void> TcpStream::read_exact(std::span<std::byte> buf) {
    std::size_t got = 0;
    while (got < buf.size()) {
        const std::size_t n = co_await read(buf.subspan(got));
        if (n == 0) throw IncompleteReadError(std::vector<std::byte>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got)), buf.size());
        got += n;
    }
}

Task<void> TcpStream::write_all(std::span<const std::byte> buf) {
    const Guard g(core_, "write_all");
    std::size_t off = 0;
    for (;;) {
        const int fd = g.fd();
        if (off == buf.size()) co_return;
        if (!spindle::detail::coop_consume()) co_await yield_now();
        const std::uint64_t tick = io_tick(core_.reg_, IoDir::write);
        const ssize_t n = ::send(g.fd(), buf.data() + off, buf.size() - off, MSG_NOSIGNAL);
        const int e = errno;
        if (n >= 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        (void)g.fd();  // an error caused by a concurrent close(): std::logic_error
        if (would_block(e)) co_await IoWait{core_.reg_, fd, IoDir::write, tick, &core_.state_};
        else if (e != EINTR) throw_errno(e, "write_all");
    }
}

void TcpStream::shutdown_write() {
    const Guard g(core_, "shutdown_write");
    if (::shutdown(g.fd(), SHUT_WR) != 0) throw_errno(errno, "shutdown_write");
}

void TcpStream::set_nodelay(bool on) {
    const Guard g(core_, "set_nodelay");
    const int v = on ? 1 : 0;
    if (::setsockopt(g.fd(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0) throw_errno(errno, "setsockopt(TCP_NODELAY)");
}

std::uint16_t TcpStream::local_port() const {
    const Guard g(const_cast<detail::SocketCore&>(core_), "local_port");
    return port_of(g.fd());
}

// ───────────────────────── TcpListener ─────────────────────────

TcpListener::TcpListener(TcpListener&& other) noexcept = default;
TcpListener& TcpListener::operator=(TcpListener&& other) noexcept = default;
TcpListener::~TcpListener() = default;

void TcpListener::close() noexcept { core_.close(); }

TcpListener TcpListener::bind(std::string_view host, std::uint16_t port, int backlog) {
    const Address a = parse(host, port);
    TcpListener l;
    const int fd = new_socket(a.family);
    l.core_.fd_.store(fd, std::memory_order_relaxed);  // relaxed: not shared yet
    const int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) throw_errno(errno, "setsockopt(SO_REUSEADDR)");
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) throw_errno(errno, "bind " + std::string(host) + ":" + std::to_string(port));
    if (::listen(fd, backlog) != 0) throw_errno(errno, "listen");
    return l;
}

Task<TcpStream> TcpListener::accept() {
    const Guard g(core_, "accept");
    for (;;) {
        const int fd = g.fd();
        if (!spindle::detail::coop_consume()) co_await yield_now();
        const std::uint64_t tick = io_tick(core_.reg_, IoDir::read);
        const int c = ::accept4(g.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        const int e = errno;
        if (c >= 0) {
            TcpStream s;
            s.core_.fd_.store(c, std::memory_order_relaxed);  // relaxed: not shared yet
            co_return s;
        }
        (void)g.fd();  // an error caused by a concurrent close(): std::logic_error
        if (would_block(e)) co_await IoWait{core_.reg_, fd, IoDir::read, tick, &core_.state_};
        else if (e != EINTR && e != ECONNABORTED) throw_errno(e, "accept");
    }
}

std::uint16_t TcpListener::local_port() const {
    const Guard g(const_cast<detail::SocketCore&>(core_), "local_port");
    return port_of(g.fd());
}

// ───────────────────────── readable / writable ─────────────────────────

namespace {

/// Whether `fd` is ready now (poll with no timeout); EBADF for a closed fd.
bool ready_now(int fd, short events) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, 0);
    if (r < 0) throw_errno(errno, "poll");
    if (r > 0 && (p.revents & POLLNVAL) != 0) throw_errno(EBADF, "readable/writable");
    return r > 0;
}

/// The caller's fd, registered through a duplicate: epoll keys a registration on the
/// (fd, open file) pair, so the duplicate never collides with a registration of the
/// fd itself (a TcpStream) or with another task waiting on the same fd.
struct DupRegistration {
    int fd = -1;
    spindle::detail::IoRegistration reg;
    explicit DupRegistration(int of) : fd(::fcntl(of, F_DUPFD_CLOEXEC, 0)) {
        if (fd < 0) throw_errno(errno, "fcntl(F_DUPFD_CLOEXEC)");
    }
    DupRegistration(const DupRegistration&) = delete;
    DupRegistration& operator=(const DupRegistration&) = delete;
    ~DupRegistration() {
        reg.reset();
        ::close(fd);
    }
};

Task<void> wait_ready(int fd, IoDir dir) {
    const short events = dir == IoDir::read ? POLLIN : POLLOUT;
    if (ready_now(fd, events)) co_return;
    DupRegistration dup(fd);
    for (;;) {
        // The protocol of detail/io.hpp: the tick before the check. (Registration, at
        // the first wait, reports the fd's state at that moment, so readiness that
        // came after the check above still bumps the tick.)
        const std::uint64_t tick = io_tick(dup.reg, dir);
        if (dup.reg.registered() && ready_now(fd, events)) co_return;
        co_await IoWait{dup.reg, dup.fd, dir, tick};
    }
}

}  // namespace

Task<void> readable(int fd) { return wait_ready(fd, IoDir::read); }
Task<void> writable(int fd) { return wait_ready(fd, IoDir::write); }

}  // namespace spindle::net
