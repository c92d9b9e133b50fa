// net/src/net.cpp — spindle::net: TcpListener, TcpStream, readable/writable. Every
// waiting call follows the protocol of spindle/runtime/detail/io.hpp: read the
// readiness tick, try the system call, and wait for the tick to move only on EAGAIN.
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

using detail::IoDir;
using detail::IoWait;
using detail::io_tick;

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

// ───────────────────────── TcpStream ─────────────────────────

TcpStream::TcpStream(int fd) : fd_(fd) {
    if (fd < 0) throw std::invalid_argument("spindle::net::TcpStream: negative fd");
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        fd_ = -1;
        throw_errno(errno, "fcntl(O_NONBLOCK)");
    }
}

TcpStream::TcpStream(TcpStream&& other) noexcept : fd_(std::exchange(other.fd_, -1)), reg_(std::move(other.reg_)) {}

TcpStream& TcpStream::operator=(TcpStream&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        reg_ = std::move(other.reg_);
    }
    return *this;
}

TcpStream::~TcpStream() { close(); }

void TcpStream::close() noexcept {
    if (fd_ < 0) return;
    const int fd = std::exchange(fd_, -1);
    reg_.reset();  // leaves epoll and wakes waiters (they find fd_ == -1) before the fd number can be reused
    ::close(fd);
}

int TcpStream::checked_fd(const char* what) const {
    if (fd_ < 0) throw_closed(what);
    return fd_;
}

Task<TcpStream> TcpStream::connect(std::string_view host, std::uint16_t port) {
    const Address a = parse(host, port);
    TcpStream s;
    s.fd_ = new_socket(a.family);
    if (::connect(s.fd_, reinterpret_cast<const sockaddr*>(&a.ss), a.len) == 0) co_return s;
    if (errno != EINPROGRESS) throw_errno(errno, "connect");
    for (;;) {
        const int fd = s.checked_fd("connect");
        const std::uint64_t tick = io_tick(s.reg_, IoDir::write);
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) throw_errno(errno, "getsockopt(SO_ERROR)");
        if (err != 0 && err != EINPROGRESS) throw_errno(err, "connect");
        sockaddr_storage peer{};
        socklen_t plen = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) co_return s;
        if (errno != ENOTCONN) throw_errno(errno, "connect");
        co_await IoWait{s.reg_, fd, IoDir::write, tick};
    }
}

Task<std::size_t> TcpStream::read(std::span<std::byte> buf) {
    for (;;) {
        const int fd = checked_fd("read");
        if (buf.empty()) co_return 0;
        if (!detail::coop_consume()) co_await yield_now();  // a reader that never waits must not starve the others
        const std::uint64_t tick = io_tick(reg_, IoDir::read);
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n >= 0) co_return static_cast<std::size_t>(n);
        const int e = errno;
        if (would_block(e)) co_await IoWait{reg_, fd, IoDir::read, tick};
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
    std::size_t off = 0;
    for (;;) {
        const int fd = checked_fd("write_all");
        if (off == buf.size()) co_return;
        if (!detail::coop_consume()) co_await yield_now();
        const std::uint64_t tick = io_tick(reg_, IoDir::write);
        const ssize_t n = ::send(fd, buf.data() + off, buf.size() - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        const int e = errno;
        if (would_block(e)) co_await IoWait{reg_, fd, IoDir::write, tick};
        else if (e != EINTR) throw_errno(e, "write_all");
    }
}

void TcpStream::shutdown_write() {
    if (::shutdown(checked_fd("shutdown_write"), SHUT_WR) != 0) throw_errno(errno, "shutdown_write");
}

void TcpStream::set_nodelay(bool on) {
    const int v = on ? 1 : 0;
    if (::setsockopt(checked_fd("set_nodelay"), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0)
        throw_errno(errno, "setsockopt(TCP_NODELAY)");
}

std::uint16_t TcpStream::local_port() const { return port_of(checked_fd("local_port")); }

// ───────────────────────── TcpListener ─────────────────────────

TcpListener::TcpListener(TcpListener&& other) noexcept : fd_(std::exchange(other.fd_, -1)), reg_(std::move(other.reg_)) {}

TcpListener& TcpListener::operator=(TcpListener&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        reg_ = std::move(other.reg_);
    }
    return *this;
}

TcpListener::~TcpListener() { close(); }

void TcpListener::close() noexcept {
    if (fd_ < 0) return;
    const int fd = std::exchange(fd_, -1);
    reg_.reset();
    ::close(fd);
}

TcpListener TcpListener::bind(std::string_view host, std::uint16_t port, int backlog) {
    const Address a = parse(host, port);
    TcpListener l;
    l.fd_ = new_socket(a.family);
    const int one = 1;
    if (::setsockopt(l.fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) throw_errno(errno, "setsockopt(SO_REUSEADDR)");
    if (::bind(l.fd_, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) throw_errno(errno, "bind " + std::string(host) + ":" + std::to_string(port));
    if (::listen(l.fd_, backlog) != 0) throw_errno(errno, "listen");
    return l;
}

Task<TcpStream> TcpListener::accept() {
    for (;;) {
        if (fd_ < 0) throw_closed("accept");
        const int fd = fd_;
        if (!detail::coop_consume()) co_await yield_now();
        const std::uint64_t tick = io_tick(reg_, IoDir::read);
        const int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            TcpStream s;
            s.fd_ = c;
            co_return s;
        }
        const int e = errno;
        if (would_block(e)) co_await IoWait{reg_, fd, IoDir::read, tick};
        else if (e != EINTR && e != ECONNABORTED) throw_errno(e, "accept");
    }
}

std::uint16_t TcpListener::local_port() const {
    if (fd_ < 0) throw_closed("local_port");
    return port_of(fd_);
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
    detail::IoRegistration reg;
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
        // Registration (at the first wait) reports the fd's state at that moment, so
        // readiness that came after the check above still bumps the tick.
        const std::uint64_t tick = io_tick(dup.reg, dir);
        co_await IoWait{dup.reg, dup.fd, dir, tick};
        if (ready_now(fd, events)) co_return;
    }
}

}  // namespace

Task<void> readable(int fd) { return wait_ready(fd, IoDir::read); }
Task<void> writable(int fd) { return wait_ready(fd, IoDir::write); }

}  // namespace spindle::net
