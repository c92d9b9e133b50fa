// spindle::net (DESIGN.md "Net", <spindle/net.hpp>): TCP echo at scale on one and two
// workers, cancel-safety of read / accept / readable (nothing lost after a timeout or a
// JoinHandle::cancel), the OS errors as std::system_error with their errno, misuse as
// std::logic_error, readiness of foreign fds (pipe, eventfd) written from plain threads,
// runtime shutdown with tasks parked on sockets, fd leaks, and virtual time with I/O.
//
// Nothing here sleeps to order events: tasks report through Events and joins, and with
// one worker "the other task is parked" follows from the FIFO ready queue. Where a
// plain thread sleeps, it plays a producer that is late; every assertion holds whatever
// the delay. Every wait that must end is bounded (kBound) so that a broken runtime
// fails the test instead of hanging it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

#include "co_test.hpp"

using namespace std::chrono_literals;
using spindle::CancelledError;
using spindle::JoinHandle;
using spindle::Task;
using spindle::TimeoutError;
using spindle::net::IncompleteReadError;
using spindle::net::TcpListener;
using spindle::net::TcpStream;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// Upper bound on a wait that must end: a failure instead of a hang. Never orders anything.
constexpr auto kBound = 20s;
constexpr std::uint32_t kSeed = 20240607;

static_assert(std::is_base_of_v<std::runtime_error, IncompleteReadError>);
static_assert(!std::is_copy_constructible_v<TcpStream> && std::is_nothrow_move_constructible_v<TcpStream>);
static_assert(!std::is_copy_constructible_v<TcpListener> && std::is_nothrow_move_constructible_v<TcpListener>);

// ---------------------------------------------------------------------------------
// Helpers

std::vector<std::byte> to_bytes(std::string_view s) {
    std::vector<std::byte> out(s.size());
    std::memcpy(out.data(), s.data(), s.size());
    return out;
}

std::string to_string(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::vector<std::byte> random_bytes(std::uint32_t seed, std::size_t n) {
    std::mt19937 rng(seed);
    std::vector<std::byte> out(n);
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const std::uint32_t v = rng();
        std::memcpy(out.data() + i, &v, 4);
    }
    for (; i < n; ++i) out[i] = static_cast<std::byte>(rng());
    return out;
}

// What a statement threw, for EXPECTs on the exact error.
struct Outcome {
    enum Kind { none, timeout, incomplete, system, invalid_argument, logic, other };
    Kind kind = none;
    int code = 0;  // errno, for `system`
    std::string what;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    static const char* const names[] = {"no exception",     "TimeoutError",     "IncompleteReadError", "std::system_error",
                                        "invalid_argument", "std::logic_error", "another std::exception"};
    os << names[o.kind];
    if (o.kind == Outcome::system) os << " (errno " << o.code << ": " << std::strerror(o.code) << ")";
    if (!o.what.empty()) os << " [" << o.what << "]";
    return os;
}

std::string describe(const Outcome& o) {
    std::ostringstream os;
    os << o;
    return os.str();
}

// Runs `stmt` (which may co_await) and stores what it threw in `out`. CancelledError is
// not caught (a cancellation is never swallowed).
#define NET_CAPTURE(out, stmt)                                                    \
    do {                                                                          \
        try {                                                                     \
            stmt;                                                                 \
            (out) = Outcome{};                                                    \
        } catch (const ::spindle::TimeoutError& e_) {                             \
            (out) = Outcome{Outcome::timeout, 0, e_.what()};                      \
        } catch (const ::spindle::net::IncompleteReadError& e_) {                 \
            (out) = Outcome{Outcome::incomplete, 0, e_.what()};                   \
        } catch (const std::system_error& e_) {                                   \
            (out) = Outcome{Outcome::system, e_.code().value(), e_.what()};       \
        } catch (const std::invalid_argument& e_) {                               \
            (out) = Outcome{Outcome::invalid_argument, 0, e_.what()};             \
        } catch (const std::logic_error& e_) {                                    \
            (out) = Outcome{Outcome::logic, 0, e_.what()};                        \
        } catch (const std::exception& e_) {                                      \
            (out) = Outcome{Outcome::other, 0, e_.what()};                        \
        }                                                                         \
    } while (0)

bool is_reset_or_pipe(const Outcome& o) {
    return o.kind == Outcome::system && (o.code == ECONNRESET || o.code == EPIPE);
}

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the soft limit now in force.
rlim_t raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
    }
    return rl.rlim_cur;
}

// Connections for the big echo: `wanted`, fewer under sanitizers, and as many as the fd
// limit allows (two fds per connection, plus a margin for the runtime and the test).
std::size_t connection_count(std::size_t wanted) {
    std::size_t n = kSanitized ? wanted / 10 : wanted;
    const rlim_t limit = raise_fd_limit();
    const std::size_t margin = 128;
    if (limit != RLIM_INFINITY && 2 * n + margin > limit) {
        n = limit > margin + 2 ? (static_cast<std::size_t>(limit) - margin) / 2 : 1;
        std::printf("RLIMIT_NOFILE is %llu: scaled down to %zu connections\n", static_cast<unsigned long long>(limit),
                    n);
    }
    return n;
}

// The open fds of this process: fd number -> what it points to.
std::map<int, std::string> open_fds() {
    std::map<int, std::string> out;
    std::vector<int> fds;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        fds.push_back(std::atoi(entry.path().filename().c_str()));
    }
    // The directory's own fd is closed by now and shows up as a dangling entry: skip it.
    for (int fd : fds) {
        std::error_code ec;
        auto target = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
        if (ec) continue;
        out[fd] = target.string();
    }
    return out;
}

std::string describe_fds(const std::map<int, std::string>& fds) {
    std::ostringstream os;
    for (const auto& [fd, what] : fds) os << "  " << fd << " -> " << what << "\n";
    return os.str();
}

// The peer's port of a connected socket (getpeername).
std::uint16_t peer_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

int local_family(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
    return ss.ss_family;
}

std::string local_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    if (ss.ss_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    return buf;
}

// Makes the next close() of `fd` send RST instead of FIN (SO_LINGER {1, 0}).
bool set_linger_reset(int fd) {
    linger lg{1, 0};
    return ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0;
}

// A count that plain threads wait on, with a bound and a stop token.
class Count {
public:
    void set(int v) {
        {
            std::lock_guard lk(mx_);
            v_ = v;
        }
        cv_.notify_all();
    }
    // True once the count reached `v`; false on stop or after kBound.
    bool wait_at_least(std::stop_token st, int v) {
        std::unique_lock lk(mx_);
        return cv_.wait_for(lk, st, kBound, [&] { return v_ >= v; });
    }

private:
    std::mutex mx_;
    std::condition_variable_any cv_;
    int v_ = 0;
};

// A pipe (both ends O_NONBLOCK | O_CLOEXEC), closed on destruction.
struct Pipe {
    int r = -1;
    int w = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
        r = fds[0];
        w = fds[1];
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    ~Pipe() {
        if (r >= 0) ::close(r);
        if (w >= 0) ::close(w);
    }
};

struct EventFd {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    EventFd() {
        if (fd < 0) throw std::system_error(errno, std::system_category(), "eventfd");
    }
    EventFd(const EventFd&) = delete;
    EventFd& operator=(const EventFd&) = delete;
    ~EventFd() { ::close(fd); }
};

// A connected pair: `client` connected to `listener`, `server` its accepted side.
struct Pair {
    TcpStream client;
    TcpStream server;
};

Task<Pair> connect_pair(TcpListener& listener, std::string host = "127.0.0.1") {
    TcpStream c = co_await TcpStream::connect(host, listener.local_port());
    TcpStream s = co_await spindle::wait_for(listener.accept(), kBound);
    co_return Pair{std::move(c), std::move(s)};
}

Task<void> write_task(TcpStream& s, std::span<const std::byte> data) { co_await s.write_all(data); }

// Reads until the peer closes; everything that came.
Task<std::vector<std::byte>> read_to_end(TcpStream& s) {
    std::vector<std::byte> all;
    std::vector<std::byte> buf(16 * 1024);
    for (;;) {
        const std::size_t n = co_await s.read(buf);
        if (n == 0) break;
        all.insert(all.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    co_return all;
}

// ---------------------------------------------------------------------------------
// Echo server and client

struct ServerStats {
    std::atomic<int> errors{0};
    std::atomic<std::size_t> bytes{0};
    std::mutex mx;
    std::string first_error;
    void fail(const std::string& what) {
        if (errors.fetch_add(1) == 0) {
            std::lock_guard lk(mx);
            first_error = what;
        }
    }
};

// Echoes with read + write_all until read returns 0, then closes.
Task<void> echo_connection(TcpStream conn, ServerStats& stats) {
    // A coroutine's parameters live as long as its frame, which a JoinHandle may keep
    // after the body returned: a local closes the stream when the body ends.
    TcpStream s = std::move(conn);
    std::vector<std::byte> buf(64 * 1024);
    try {
        for (;;) {
            const std::size_t n = co_await s.read(buf);
            if (n == 0) break;
            co_await s.write_all(std::span<const std::byte>(buf.data(), n));
            stats.bytes.fetch_add(n);
        }
    } catch (const std::exception& e) {
        stats.fail(e.what());
    }
}

// Accepts `n` connections, a task each, and waits for all of them.
Task<void> echo_server(TcpListener& listener, std::size_t n, ServerStats& stats) {
    std::vector<JoinHandle<void>> conns;
    conns.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        TcpStream s = co_await listener.accept();
        conns.push_back(spindle::spawn(echo_connection(std::move(s), stats)));
    }
    for (auto& h : conns) co_await h;
}

struct ClientResult {
    bool ok = false;
    std::size_t size = 0;
    std::string error;
};

// Connects, writes `size` seeded random bytes from a concurrently spawned writer task
// while reading them back with read_exact, compares, closes.
Task<ClientResult> echo_client(std::string host, std::uint16_t port, std::size_t size, std::uint32_t seed) {
    ClientResult r;
    r.size = size;
    const std::vector<std::byte> data = random_bytes(seed, size);
    TcpStream s = co_await TcpStream::connect(host, port);
    auto writer = spindle::spawn(write_task(s, data));
    std::vector<std::byte> back(size);
    Outcome o;
    NET_CAPTURE(o, co_await s.read_exact(back));
    if (o.kind != Outcome::none) {
        r.error = "read_exact: " + describe(o);
        writer.cancel();
    }
    Outcome w;
    try {
        NET_CAPTURE(w, co_await writer);
    } catch (const CancelledError&) {
        // cancelled above, after read_exact failed
    }
    if (w.kind != Outcome::none && r.error.empty()) r.error = "write_all: " + describe(w);
    s.close();
    r.ok = r.error.empty() && back == data;
    if (r.error.empty() && !r.ok) r.error = "the echoed bytes differ";
    co_return r;
}

// Runs `n` echo clients of random sizes in [1, max_size] (the first two: 1 and max_size)
// against an echo server on `host`; checks every byte.
Task<void> echo_scenario(std::string host, std::size_t n, std::size_t max_size) {
    TcpListener listener = TcpListener::bind(host, 0, 4096);
    const std::uint16_t port = listener.local_port();
    SPINDLE_ASSERT_NE(port, 0);
    ServerStats stats;
    auto server = spindle::spawn(echo_server(listener, n, stats));

    std::mt19937 rng(kSeed);
    std::uniform_int_distribution<std::size_t> size_of(1, max_size);
    std::vector<Task<ClientResult>> clients;
    std::size_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t size = i == 0 ? 1 : i == 1 ? max_size : size_of(rng);
        total += size;
        clients.push_back(echo_client(host, port, size, static_cast<std::uint32_t>(rng())));
    }
    std::vector<ClientResult> results;
    Outcome o;
    NET_CAPTURE(o, results = co_await spindle::wait_for(spindle::gather(std::move(clients)), 100s));
    EXPECT_EQ(o.kind, Outcome::none) << "the clients: " << o;
    Outcome so;
    NET_CAPTURE(so, co_await spindle::wait_for(server, kBound));
    EXPECT_EQ(so.kind, Outcome::none) << "the server: " << so;

    std::size_t good = 0;
    int shown = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (results[i].ok) {
            ++good;
        } else if (shown++ < 5) {
            ADD_FAILURE() << "client " << i << " (" << results[i].size << " bytes): " << results[i].error;
        }
    }
    EXPECT_EQ(results.size(), n);
    EXPECT_EQ(good, n) << "connections whose echo matched";
    EXPECT_EQ(stats.errors.load(), 0) << "server errors, first: " << stats.first_error;
    EXPECT_EQ(stats.bytes.load(), total) << "bytes echoed by the server";
}

}  // namespace

// =================================================================================
// Echo

CO_TEST(NetEcho, RandomSizesThousandConnectionsTwoWorkers) {
    const std::size_t n = connection_count(1000);
    std::printf("echo: %zu concurrent connections, 1 B .. 256 KiB each, seed %u\n", n, kSeed);
    co_await echo_scenario("127.0.0.1", n, 256 * 1024);
}

CO_TEST_OPTS(NetEcho, OneWorker, (spindle::RuntimeOptions{.workers = 1})) {
    co_await echo_scenario("127.0.0.1", connection_count(200), 64 * 1024);
}

// Many small writes and reads on one connection, both directions at once (the writer
// and the reader are different tasks on the same stream), with TCP_NODELAY.
CO_TEST(NetEcho, FullDuplexSmallChunks) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    p.client.set_nodelay(true);
    p.server.set_nodelay(false);
    p.server.set_nodelay(true);
    ServerStats stats;
    auto echo = spindle::spawn(echo_connection(std::move(p.server), stats));
    const std::vector<std::byte> data = random_bytes(kSeed + 1, kSanitized ? 20000 : 200000);
    struct Local {
        static Task<void> dribble(TcpStream& s, std::span<const std::byte> d) {
            std::size_t off = 0;
            std::size_t chunk = 1;
            while (off < d.size()) {
                const std::size_t k = std::min(chunk, d.size() - off);
                co_await s.write_all(d.subspan(off, k));
                off += k;
                chunk = chunk % 997 + 1;
            }
            s.shutdown_write();
        }
    };
    auto writer = spindle::spawn(Local::dribble(p.client, data));
    std::vector<std::byte> back = co_await spindle::wait_for(read_to_end(p.client), kBound);
    co_await writer;
    co_await spindle::wait_for(echo, kBound);
    EXPECT_EQ(back.size(), data.size());
    EXPECT_TRUE(back == data) << "the echoed bytes differ";
    EXPECT_EQ(stats.errors.load(), 0) << stats.first_error;
}

// =================================================================================
// Cancel-safety

CO_TEST(NetCancel, TimedOutReadLosesNothing) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    std::vector<std::byte> buf(4096);
    Outcome o;
    NET_CAPTURE(o, (void)co_await spindle::wait_for(p.server.read(buf), 30ms));
    EXPECT_EQ(o.kind, Outcome::timeout) << o;
    // A second one, to be sure a timed-out read leaves the socket usable for waiting.
    NET_CAPTURE(o, (void)co_await spindle::wait_for(p.server.read(buf), 5ms));
    EXPECT_EQ(o.kind, Outcome::timeout) << o;

    const std::vector<std::byte> payload = random_bytes(kSeed + 2, 100000);
    auto writer = spindle::spawn(write_task(p.client, payload));
    std::vector<std::byte> got(payload.size());
    NET_CAPTURE(o, co_await spindle::wait_for(p.server.read_exact(got), kBound));
    CO_ASSERT_EQ(o.kind, Outcome::none) << o;
    co_await writer;
    EXPECT_TRUE(got == payload) << "bytes lost or reordered after a timed-out read";
    p.client.shutdown_write();
    const std::size_t n = co_await spindle::wait_for(p.server.read(buf), kBound);
    EXPECT_EQ(n, 0u) << "more bytes than were sent";
}

// One worker: when main resumes after `reading` is set, the reader is parked in read().
CO_TEST_OPTS(NetCancel, CancelledTaskBlockedInReadLosesNothing, (spindle::RuntimeOptions{.workers = 1})) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    spindle::Event reading;
    struct Local {
        static Task<std::size_t> reader(TcpStream& s, spindle::Event& ev) {
            std::vector<std::byte> b(4096);
            ev.set();
            co_return co_await s.read(b);
        }
    };
    auto h = spindle::spawn(Local::reader(p.server, reading));
    co_await reading.wait();
    EXPECT_FALSE(h.done());
    EXPECT_TRUE(h.cancel());
    bool cancelled = false;
    try {
        (void)co_await h;
    } catch (const CancelledError&) {
        cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(h.cancelled());

    const std::vector<std::byte> payload = random_bytes(kSeed + 3, 50000);
    auto writer = spindle::spawn(write_task(p.client, payload));
    std::vector<std::byte> got(payload.size());
    Outcome o;
    NET_CAPTURE(o, co_await spindle::wait_for(p.server.read_exact(got), kBound));
    CO_ASSERT_EQ(o.kind, Outcome::none) << o;
    co_await writer;
    EXPECT_TRUE(got == payload) << "bytes lost after a cancelled read";
}

// Timeouts racing with arriving data: whatever the timing, every byte arrives once, in order.
CO_TEST(NetCancel, ReadTimeoutsRacingWithDataLoseNothing) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    const std::size_t chunks = kSanitized ? 300 : 2000;
    struct Local {
        // Sends `chunks` chunks of 1..4096 bytes, a running byte counter as contents,
        // pausing now and then like a slow producer.
        static Task<void> producer(TcpStream& s, std::size_t count) {
            std::mt19937 rng(kSeed + 4);
            std::uint8_t next = 0;
            for (std::size_t i = 0; i < count; ++i) {
                std::vector<std::byte> c(rng() % 4096 + 1);
                for (auto& b : c) b = static_cast<std::byte>(next++);
                co_await s.write_all(c);
                if (i % 8 == 0) co_await spindle::sleep(std::chrono::microseconds(rng() % 800));
            }
            s.shutdown_write();
        }
    };
    auto prod = spindle::spawn(Local::producer(p.client, chunks));
    std::mt19937 rng(kSeed + 5);
    std::vector<std::byte> buf(3000);
    std::size_t received = 0;
    std::size_t bad_at = SIZE_MAX;
    int timeouts = 0;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (;;) {
        if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << "no end of stream after 60 s; " << received << " bytes received";
            break;
        }
        std::size_t n = 0;
        try {
            n = co_await spindle::wait_for(p.server.read(buf), std::chrono::microseconds(rng() % 300));
        } catch (const TimeoutError&) {
            ++timeouts;
            continue;
        }
        if (n == 0) break;
        for (std::size_t i = 0; i < n; ++i) {
            if (buf[i] != static_cast<std::byte>(static_cast<std::uint8_t>(received + i)) && bad_at == SIZE_MAX)
                bad_at = received + i;
        }
        received += n;
    }
    co_await prod;
    EXPECT_EQ(bad_at, SIZE_MAX) << "a byte lost or repeated at offset " << bad_at;
    EXPECT_GT(timeouts, 0) << "no read timed out: the race was not exercised";
    std::printf("racing reads: %zu bytes, %d timed-out reads\n", received, timeouts);
    // The producer's total, recomputed.
    std::mt19937 again(kSeed + 4);
    std::size_t total = 0;
    for (std::size_t i = 0; i < chunks; ++i) {
        total += again() % 4096 + 1;
        if (i % 8 == 0) (void)again();
    }
    EXPECT_EQ(received, total);
}

CO_TEST(NetCancel, TimedOutAcceptLosesNoConnection) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Outcome o;
    NET_CAPTURE(o, (void)co_await spindle::wait_for(listener.accept(), 30ms));
    EXPECT_EQ(o.kind, Outcome::timeout) << o;

    TcpStream c = co_await TcpStream::connect("127.0.0.1", listener.local_port());
    TcpStream s;
    NET_CAPTURE(o, s = co_await spindle::wait_for(listener.accept(), kBound));
    CO_ASSERT_EQ(o.kind, Outcome::none) << "the connection made after the timed-out accept: " << o;
    EXPECT_EQ(peer_port(s.native_handle()), c.local_port()) << "accept returned another connection";
    const auto ping = to_bytes("ping");
    const auto pong = to_bytes("pong!");
    co_await c.write_all(ping);
    std::vector<std::byte> got(ping.size());
    co_await spindle::wait_for(s.read_exact(got), kBound);
    EXPECT_EQ(to_string(got), "ping");
    co_await s.write_all(pong);
    std::vector<std::byte> got2(pong.size());
    co_await spindle::wait_for(c.read_exact(got2), kBound);
    EXPECT_EQ(to_string(got2), "pong!");
}

CO_TEST_OPTS(NetCancel, CancelledTaskBlockedInAcceptLosesNoConnection, (spindle::RuntimeOptions{.workers = 1})) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    spindle::Event accepting;
    struct Local {
        static Task<TcpStream> acceptor(TcpListener& l, spindle::Event& ev) {
            ev.set();
            co_return co_await l.accept();
        }
    };
    auto h = spindle::spawn(Local::acceptor(listener, accepting));
    co_await accepting.wait();  // one worker: the acceptor is parked in accept()
    EXPECT_TRUE(h.cancel());
    bool cancelled = false;
    const auto copy = h;  // the rvalue await below consumes h
    try {
        (void)co_await std::move(h);
    } catch (const CancelledError&) {
        cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(copy.cancelled());

    TcpStream c = co_await TcpStream::connect("127.0.0.1", listener.local_port());
    TcpStream s = co_await spindle::wait_for(listener.accept(), kBound);
    EXPECT_EQ(peer_port(s.native_handle()), c.local_port());
    const auto hello = to_bytes("hello");
    co_await c.write_all(hello);
    std::vector<std::byte> got(hello.size());
    co_await spindle::wait_for(s.read_exact(got), kBound);
    EXPECT_EQ(to_string(got), "hello");
}

// Accepts under tiny timeouts while clients keep connecting: every connection is accepted once.
CO_TEST(NetCancel, AcceptTimeoutsRacingWithConnectsLoseNothing) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    const int k = kSanitized ? 40 : 200;
    std::vector<TcpStream> clients;  // kept open until the server read each index
    struct Local {
        static Task<void> connector(std::uint16_t port, int count, std::vector<TcpStream>& out) {
            std::mt19937 rng(kSeed + 6);
            for (int i = 0; i < count; ++i) {
                TcpStream c = co_await TcpStream::connect("127.0.0.1", port);
                std::uint32_t v = static_cast<std::uint32_t>(i);
                std::vector<std::byte> b(4);
                std::memcpy(b.data(), &v, 4);
                co_await c.write_all(b);
                out.push_back(std::move(c));
                if (i % 4 == 0) co_await spindle::sleep(std::chrono::microseconds(rng() % 500));
            }
        }
    };
    auto conn = spindle::spawn(Local::connector(listener.local_port(), k, clients));
    std::mt19937 rng(kSeed + 7);
    std::vector<TcpStream> accepted;
    int timeouts = 0;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (static_cast<int>(accepted.size()) < k) {
        if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << "only " << accepted.size() << " of " << k << " connections accepted after 60 s";
            break;
        }
        try {
            accepted.push_back(co_await spindle::wait_for(listener.accept(), std::chrono::microseconds(rng() % 300)));
        } catch (const TimeoutError&) {
            ++timeouts;
        }
    }
    co_await spindle::wait_for(conn, kBound);
    std::set<std::uint32_t> seen;
    for (auto& s : accepted) {
        std::vector<std::byte> b(4);
        co_await spindle::wait_for(s.read_exact(b), kBound);
        std::uint32_t v = 0;
        std::memcpy(&v, b.data(), 4);
        seen.insert(v);
    }
    EXPECT_EQ(static_cast<int>(seen.size()), k) << "an index twice or missing";
    if (!seen.empty()) {
        EXPECT_EQ(*seen.rbegin(), static_cast<std::uint32_t>(k - 1));
    }
    EXPECT_GT(timeouts, 0) << "no accept timed out: the race was not exercised";
    // Nothing more is pending.
    Outcome o;
    NET_CAPTURE(o, (void)co_await spindle::wait_for(listener.accept(), 20ms));
    EXPECT_EQ(o.kind, Outcome::timeout) << "an extra connection: " << o;
}

// A connect that cannot complete (the listener's accept queue is full, so the kernel
// drops the SYN and the client would retry after a second) times out and leaves no
// socket behind.
CO_TEST(NetCancel, TimedOutConnectLeavesNoSocket) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0, 1);
    std::vector<TcpStream> queued;  // never accepted: they fill the queue
    Outcome o;
    int attempts = 0;
    std::size_t fds_before = 0;
    std::size_t fds_after = 0;
    for (; attempts < 32; ++attempts) {
        fds_before = open_fds().size();
        TcpStream c;
        NET_CAPTURE(o, c = co_await spindle::wait_for(TcpStream::connect("127.0.0.1", listener.local_port()), 100ms));
        fds_after = open_fds().size();
        if (o.kind != Outcome::none) break;
        queued.push_back(std::move(c));
    }
    CO_ASSERT_EQ(o.kind, Outcome::timeout) << "after " << attempts << " connects: " << o;
    std::printf("connect %d timed out (the accept queue held %d)\n", attempts + 1, attempts);
    EXPECT_EQ(fds_after, fds_before) << "the timed-out connect left a socket open";
    // The queued connections are still there to accept.
    TcpStream s = co_await spindle::wait_for(listener.accept(), kBound);
    EXPECT_TRUE(s.is_open());
}

// =================================================================================
// OS errors

CO_TEST(NetErrors, ConnectToClosedPortIsRefused) {
    std::uint16_t port = 0;
    {
        TcpListener l = TcpListener::bind("127.0.0.1", 0);
        port = l.local_port();
        l.close();
        EXPECT_FALSE(l.is_open());
    }
    CO_ASSERT_TRUE(port != 0);
    Outcome o;
    NET_CAPTURE(o, (void)co_await spindle::wait_for(TcpStream::connect("127.0.0.1", port), kBound));
    EXPECT_EQ(o.kind, Outcome::system) << o;
    EXPECT_EQ(o.code, ECONNREFUSED) << o;
    // The std::error_code compares equal to the portable condition too.
    try {
        (void)co_await TcpStream::connect("127.0.0.1", port);
    } catch (const std::system_error& e) {
        EXPECT_TRUE(e.code() == std::errc::connection_refused) << e.code().category().name() << " " << e.code().value();
    }
}

namespace {
// Reads once; the errno of a std::system_error, -1 for end of stream, -2 for data,
// -3 for another exception.
Task<int> read_errno(TcpStream& s, spindle::Event* reading) {
    std::vector<std::byte> b(4096);
    if (reading != nullptr) reading->set();
    try {
        const std::size_t n = co_await s.read(b);
        co_return n == 0 ? -1 : -2;
    } catch (const std::system_error& e) {
        co_return e.code().value();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "read threw " << e.what();
        co_return -3;
    }
}

Task<void> expect_echo_works(TcpListener& listener, std::string host) {
    Pair p = co_await connect_pair(listener, host);
    ServerStats stats;
    auto echo = spindle::spawn(echo_connection(std::move(p.server), stats));
    const auto msg = to_bytes("still serving");
    co_await p.client.write_all(msg);
    p.client.shutdown_write();
    std::vector<std::byte> back = co_await spindle::wait_for(read_to_end(p.client), kBound);
    co_await spindle::wait_for(echo, kBound);
    EXPECT_EQ(to_string(back), "still serving");
    EXPECT_EQ(stats.errors.load(), 0) << stats.first_error;
}
}  // namespace

// One worker so that the first reader is parked in read() when the reset comes.
CO_TEST_OPTS(NetErrors, PeerResetThenRuntimeKeepsServing, (spindle::RuntimeOptions{.workers = 1})) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);

    // 1. The reset arrives while the server's read is parked.
    {
        Pair p = co_await connect_pair(listener);
        spindle::Event reading;
        auto h = spindle::spawn(read_errno(p.server, &reading));
        co_await reading.wait();
        CO_ASSERT_TRUE(set_linger_reset(p.client.native_handle()));
        p.client.close();
        const int err = co_await spindle::wait_for(h, kBound);
        EXPECT_EQ(err, ECONNRESET) << "parked read after a reset: " << std::strerror(err > 0 ? err : 0) << " (" << err
                                   << ")";
    }
    // 2. The reset arrived before the read.
    {
        Pair p = co_await connect_pair(listener);
        CO_ASSERT_TRUE(set_linger_reset(p.client.native_handle()));
        p.client.close();
        const int err = co_await spindle::wait_for(read_errno(p.server, nullptr), kBound);
        EXPECT_EQ(err, ECONNRESET) << "read after a reset: " << err;
    }
    // 3. write_all to a reset peer.
    {
        Pair p = co_await connect_pair(listener);
        CO_ASSERT_TRUE(set_linger_reset(p.client.native_handle()));
        p.client.close();
        const std::vector<std::byte> big(1 << 20, std::byte{7});
        Outcome o;
        NET_CAPTURE(o, co_await spindle::wait_for(p.server.write_all(big), kBound));
        EXPECT_TRUE(is_reset_or_pipe(o)) << "write_all after a reset: " << o;
    }
    // 4. The runtime keeps serving.
    co_await expect_echo_works(listener, "127.0.0.1");
}

// The same with two workers: the reset races with the read parking.
CO_TEST(NetErrors, PeerResetTwoWorkers) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    for (int round = 0; round < 20; ++round) {
        Pair p = co_await connect_pair(listener);
        spindle::Event reading;
        auto h = spindle::spawn(read_errno(p.server, &reading));
        co_await reading.wait();
        CO_ASSERT_TRUE(set_linger_reset(p.client.native_handle()));
        p.client.close();
        const int err = co_await spindle::wait_for(h, kBound);
        EXPECT_EQ(err, ECONNRESET) << "round " << round << ": " << err;
    }
    co_await expect_echo_works(listener, "127.0.0.1");
}

CO_TEST(NetErrors, WriteToClosedPeerIsAnErrorNotSigpipe) {
    struct sigaction old {};
    ::sigaction(SIGPIPE, nullptr, &old);
    std::printf("SIGPIPE disposition during the test: %s\n",
                old.sa_handler == SIG_DFL   ? "default (a SIGPIPE would kill the test)"
                : old.sa_handler == SIG_IGN ? "ignored (set by someone in this process)"
                                            : "a handler");
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    p.server.close();
    // The first write may succeed (the peer answers it with RST); a later one fails.
    const std::vector<std::byte> chunk(256 * 1024, std::byte{1});
    Outcome o;
    int writes = 0;
    for (; writes < 64; ++writes) {
        NET_CAPTURE(o, co_await spindle::wait_for(p.client.write_all(chunk), kBound));
        if (o.kind != Outcome::none) break;
    }
    EXPECT_TRUE(is_reset_or_pipe(o)) << "after " << writes << " writes: " << o;
    // And once more on the same stream: still an error, still no signal.
    NET_CAPTURE(o, co_await spindle::wait_for(p.client.write_all(chunk), kBound));
    EXPECT_TRUE(is_reset_or_pipe(o)) << "the next write_all: " << o;

    // A peer that half-closed first (shutdown_write), then closed.
    Pair q = co_await connect_pair(listener);
    q.server.shutdown_write();
    std::vector<std::byte> one(1);
    const std::size_t n = co_await spindle::wait_for(q.client.read(one), kBound);
    EXPECT_EQ(n, 0u) << "shutdown_write: the peer sees end of stream";
    q.server.close();
    for (writes = 0; writes < 64; ++writes) {
        NET_CAPTURE(o, co_await spindle::wait_for(q.client.write_all(chunk), kBound));
        if (o.kind != Outcome::none) break;
    }
    EXPECT_TRUE(is_reset_or_pipe(o)) << o;
}

TEST(NetErrors, BindToPortInUse) {
    TcpListener a = TcpListener::bind("127.0.0.1", 0);
    const std::uint16_t port = a.local_port();
    ASSERT_NE(port, 0);
    try {
        TcpListener b = TcpListener::bind("127.0.0.1", port);
        ADD_FAILURE() << "a second listener bound port " << port << " (fd " << b.native_handle() << ")";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
    }
    // Any address on the same port conflicts too.
    try {
        TcpListener b = TcpListener::bind("0.0.0.0", port);
        ADD_FAILURE() << "0.0.0.0 bound port " << port << " in use on 127.0.0.1";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
    }
    a.close();
    // Free again once closed.
    TcpListener c = TcpListener::bind("127.0.0.1", port);
    EXPECT_EQ(c.local_port(), port);
}

// SO_REUSEADDR: a port whose server side closed first (TIME_WAIT) can be bound again.
CO_TEST(NetErrors, RebindAfterServerClosedFirst) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    const std::uint16_t port = listener.local_port();
    {
        Pair p = co_await connect_pair(listener);
        p.server.close();  // active close: TIME_WAIT on the server's port
        std::vector<std::byte> b(16);
        EXPECT_EQ(co_await spindle::wait_for(p.client.read(b), kBound), 0u);
        p.client.close();
    }
    listener.close();
    Outcome o;
    TcpListener again;
    NET_CAPTURE(o, again = TcpListener::bind("127.0.0.1", port));
    EXPECT_EQ(o.kind, Outcome::none) << "rebinding port " << port << " with a TIME_WAIT connection: " << o;
}

// =================================================================================
// Misuse: closed and moved-from sockets are std::logic_error

CO_TEST(NetMisuse, ClosedOrMovedFromSocketsAreLogicErrors) {
    std::vector<std::byte> buf(16);
    const std::vector<std::byte> data(16, std::byte{1});
    Outcome o;

    TcpStream none;
    EXPECT_FALSE(none.is_open());
    EXPECT_EQ(none.native_handle(), -1);
    NET_CAPTURE(o, (void)co_await none.read(buf));
    EXPECT_EQ(o.kind, Outcome::logic) << "read on a default-constructed stream: " << o;
    NET_CAPTURE(o, co_await none.read_exact(buf));
    EXPECT_EQ(o.kind, Outcome::logic) << "read_exact: " << o;
    NET_CAPTURE(o, co_await none.write_all(data));
    EXPECT_EQ(o.kind, Outcome::logic) << "write_all: " << o;
    NET_CAPTURE(o, none.shutdown_write());
    EXPECT_EQ(o.kind, Outcome::logic) << "shutdown_write: " << o;
    NET_CAPTURE(o, none.set_nodelay(true));
    EXPECT_EQ(o.kind, Outcome::logic) << "set_nodelay: " << o;
    NET_CAPTURE(o, (void)none.local_port());
    EXPECT_EQ(o.kind, Outcome::logic) << "local_port: " << o;
    none.close();  // idempotent, no throw
    EXPECT_FALSE(none.is_open());

    TcpListener closed_listener;
    NET_CAPTURE(o, (void)co_await closed_listener.accept());
    EXPECT_EQ(o.kind, Outcome::logic) << "accept on a default-constructed listener: " << o;

    TcpListener l1 = TcpListener::bind("127.0.0.1", 0);
    const std::uint16_t port = l1.local_port();
    TcpListener l2 = std::move(l1);
    EXPECT_FALSE(l1.is_open());  // NOLINT(bugprone-use-after-move): the point of the test
    EXPECT_EQ(l1.native_handle(), -1);
    EXPECT_TRUE(l2.is_open());
    EXPECT_EQ(l2.local_port(), port);
    NET_CAPTURE(o, (void)co_await l1.accept());
    EXPECT_EQ(o.kind, Outcome::logic) << "accept on a moved-from listener: " << o;
    NET_CAPTURE(o, (void)l1.local_port());
    EXPECT_EQ(o.kind, Outcome::logic) << "local_port on a moved-from listener: " << o;

    // The moved-to listener works; a moved-from stream is closed, the moved-to one works.
    Pair p = co_await connect_pair(l2);
    TcpStream moved = std::move(p.client);
    EXPECT_FALSE(p.client.is_open());
    NET_CAPTURE(o, (void)co_await p.client.read(buf));
    EXPECT_EQ(o.kind, Outcome::logic) << "read on a moved-from stream: " << o;
    NET_CAPTURE(o, co_await p.client.write_all(data));
    EXPECT_EQ(o.kind, Outcome::logic) << "write_all on a moved-from stream: " << o;
    co_await moved.write_all(data);
    std::vector<std::byte> got(data.size());
    co_await spindle::wait_for(p.server.read_exact(got), kBound);
    EXPECT_TRUE(got == data);

    // close(): idempotent, then logic_error.
    moved.close();
    moved.close();
    EXPECT_FALSE(moved.is_open());
    EXPECT_EQ(moved.native_handle(), -1);
    NET_CAPTURE(o, (void)co_await moved.read(buf));
    EXPECT_EQ(o.kind, Outcome::logic) << "read on a closed stream: " << o;
    // ... and the peer saw the close.
    EXPECT_EQ(co_await spindle::wait_for(p.server.read(buf), kBound), 0u);

    // Move-assigning over an open stream closes the old socket (its peer sees end of stream).
    Pair a = co_await connect_pair(l2);
    Pair b = co_await connect_pair(l2);
    a.client = std::move(b.client);
    EXPECT_EQ(co_await spindle::wait_for(a.server.read(buf), kBound), 0u) << "the overwritten stream was not closed";
    co_await a.client.write_all(data);  // now b's connection
    co_await spindle::wait_for(b.server.read_exact(got), kBound);
    EXPECT_TRUE(got == data);

    // A closed listener.
    l2.close();
    l2.close();
    NET_CAPTURE(o, (void)co_await l2.accept());
    EXPECT_EQ(o.kind, Outcome::logic) << "accept on a closed listener: " << o;
}

// One worker: the reader is parked in read() when close() runs.
CO_TEST_OPTS(NetMisuse, CloseWakesAParkedReaderWithLogicError, (spindle::RuntimeOptions{.workers = 1})) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    spindle::Event reading;
    struct Local {
        static Task<Outcome> reader(TcpStream& s, spindle::Event& ev) {
            std::vector<std::byte> b(64);
            Outcome o;
            ev.set();
            NET_CAPTURE(o, (void)co_await s.read(b));
            co_return o;
        }
        static Task<Outcome> acceptor(TcpListener& l, spindle::Event& ev) {
            Outcome o;
            ev.set();
            NET_CAPTURE(o, (void)co_await l.accept());
            co_return o;
        }
    };
    auto h = spindle::spawn(Local::reader(p.server, reading));
    co_await reading.wait();
    EXPECT_FALSE(h.done());
    p.server.close();
    Outcome o;
    Outcome r;
    NET_CAPTURE(o, r = co_await spindle::wait_for(h, 5s));
    EXPECT_EQ(o.kind, Outcome::none) << "joining the reader: " << o;
    EXPECT_EQ(r.kind, Outcome::logic) << "the read parked on a stream that was closed: " << r;
    // The peer sees the close.
    std::vector<std::byte> b(8);
    EXPECT_EQ(co_await spindle::wait_for(p.client.read(b), kBound), 0u);

    spindle::Event accepting;
    auto a = spindle::spawn(Local::acceptor(listener, accepting));
    co_await accepting.wait();
    listener.close();
    NET_CAPTURE(o, r = co_await spindle::wait_for(a, 5s));
    EXPECT_EQ(o.kind, Outcome::none) << "joining the acceptor: " << o;
    EXPECT_EQ(r.kind, Outcome::logic) << "the accept parked on a listener that was closed: " << r;
}

// With two workers, close() from a task while the reader parks (or is about to: the
// closer cannot tell, so close() must be safe against a read that is still running).
CO_TEST(NetMisuse, CloseWhileReadingTwoWorkers) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    for (int round = 0; round < 20; ++round) {
        Pair p = co_await connect_pair(listener);
        spindle::Event reading;
        struct Local {
            static Task<Outcome> reader(TcpStream& s, spindle::Event& ev) {
                std::vector<std::byte> b(64);
                Outcome o;
                ev.set();
                NET_CAPTURE(o, (void)co_await s.read(b));
                co_return o;
            }
        };
        auto h = spindle::spawn(Local::reader(p.server, reading));
        co_await reading.wait();
        p.server.close();
        Outcome o;
        Outcome r;
        NET_CAPTURE(o, r = co_await spindle::wait_for(h, 5s));
        EXPECT_EQ(o.kind, Outcome::none) << "round " << round << ", joining the reader: " << o;
        EXPECT_EQ(r.kind, Outcome::logic) << "round " << round << ": " << r;
    }
}

// =================================================================================
// readable() / writable() on fds the caller owns

CO_TEST(NetReadiness, PipeReadableFromPlainThread) {
    Pipe pipe;
    Count consumed;
    const int rounds = kSanitized ? 100 : 500;
    // The thread writes byte i once the task consumed byte i - 1: the task mostly
    // parks in readable() before the byte comes.
    std::jthread producer([&pipe, &consumed, rounds](std::stop_token st) {
        for (int i = 0; i < rounds; ++i) {
            if (!consumed.wait_at_least(st, i)) return;
            const auto b = static_cast<unsigned char>(i);
            if (::write(pipe.w, &b, 1) != 1) return;
        }
    });
    int bad = 0;
    for (int i = 0; i < rounds; ++i) {
        Outcome o;
        NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(pipe.r), kBound));
        CO_ASSERT_EQ(o.kind, Outcome::none) << "round " << i << ": " << o;
        unsigned char b = 0;
        const ssize_t n = ::read(pipe.r, &b, 1);
        if (n != 1 || b != static_cast<unsigned char>(i)) ++bad;
        CO_ASSERT_EQ(n, 1) << "readable() returned but nothing to read in round " << i;
        consumed.set(i + 1);
    }
    EXPECT_EQ(bad, 0);
}

CO_TEST(NetReadiness, EventFdReadableFromPlainThread) {
    EventFd efd;
    Count consumed;
    const int rounds = kSanitized ? 100 : 500;
    std::jthread producer([&efd, &consumed, rounds](std::stop_token st) {
        for (int i = 0; i < rounds; ++i) {
            if (!consumed.wait_at_least(st, i)) return;
            const std::uint64_t v = static_cast<std::uint64_t>(i) + 1;
            if (::write(efd.fd, &v, sizeof v) != sizeof v) return;
        }
    });
    for (int i = 0; i < rounds; ++i) {
        Outcome o;
        NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(efd.fd), kBound));
        CO_ASSERT_EQ(o.kind, Outcome::none) << "round " << i << ": " << o;
        std::uint64_t v = 0;
        const ssize_t n = ::read(efd.fd, &v, sizeof v);
        CO_ASSERT_EQ(n, static_cast<ssize_t>(sizeof v)) << "readable() returned but the eventfd is zero, round " << i;
        EXPECT_EQ(v, static_cast<std::uint64_t>(i) + 1);
        consumed.set(i + 1);
    }
}

CO_TEST(NetReadiness, PipeWritableAfterAThreadDrainsIt) {
    Pipe pipe;
    // Fill the pipe.
    std::vector<char> chunk(65536, 'x');
    std::size_t filled = 0;
    for (;;) {
        const ssize_t n = ::write(pipe.w, chunk.data(), chunk.size());
        if (n > 0) {
            filled += static_cast<std::size_t>(n);
            continue;
        }
        CO_ASSERT_TRUE(n < 0 && errno == EAGAIN);
        break;
    }
    CO_ASSERT_TRUE(filled > 0);
    Outcome o;
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::writable(pipe.w), 30ms));
    EXPECT_EQ(o.kind, Outcome::timeout) << "writable() on a full pipe: " << o;

    std::atomic<std::size_t> drained{0};
    std::jthread drainer([&pipe, &drained] {
        std::this_thread::sleep_for(10ms);  // a late consumer
        std::vector<char> b(65536);
        for (;;) {
            const ssize_t n = ::read(pipe.r, b.data(), b.size());
            if (n <= 0) break;
            drained.fetch_add(static_cast<std::size_t>(n));
        }
    });
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::writable(pipe.w), kBound));
    CO_ASSERT_EQ(o.kind, Outcome::none) << "writable() after the drain: " << o;
    const char c = 'y';
    EXPECT_EQ(::write(pipe.w, &c, 1), 1) << "writable() returned but the write failed: " << std::strerror(errno);
    drainer.join();
    EXPECT_GT(drained.load(), 0u);
}

CO_TEST(NetReadiness, ReadableTimesOutThenStillWorks) {
    Pipe pipe;
    Outcome o;
    const auto t0 = std::chrono::steady_clock::now();
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(pipe.r), 30ms));
    EXPECT_EQ(o.kind, Outcome::timeout) << o;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms) << "timed out early";
    // Cancel-safe: a second wait still works, and sees data written afterwards.
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(pipe.r), 5ms));
    EXPECT_EQ(o.kind, Outcome::timeout) << o;
    const char c = 'z';
    CO_ASSERT_EQ(::write(pipe.w, &c, 1), 1);
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(pipe.r), kBound));
    EXPECT_EQ(o.kind, Outcome::none) << o;
    char got = 0;
    EXPECT_EQ(::read(pipe.r, &got, 1), 1);
    EXPECT_EQ(got, 'z');
    // Already readable: returns.
    CO_ASSERT_EQ(::write(pipe.w, &c, 1), 1);
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(pipe.r), kBound));
    EXPECT_EQ(o.kind, Outcome::none) << o;
    // A hang-up counts as readable (read returns 0).
    ::close(pipe.w);
    pipe.w = -1;
    EXPECT_EQ(::read(pipe.r, &got, 1), 1);
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(pipe.r), kBound));
    EXPECT_EQ(o.kind, Outcome::none) << "readable() after the writer hung up: " << o;
    EXPECT_EQ(::read(pipe.r, &got, 1), 0);
}

// A regular file is always ready (poll(2) says so, and epoll would refuse it): the
// wait ends at once. A closed fd is a std::system_error (EBADF), not a hang.
CO_TEST(NetReadiness, RegularFileIsReadyAndAClosedFdIsASystemError) {
    char path[] = "/tmp/spindle_net_test_XXXXXX";
    const int fd = ::mkstemp(path);
    CO_ASSERT_TRUE(fd >= 0);
    ::unlink(path);
    Outcome o;
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(fd), 2s));
    EXPECT_EQ(o.kind, Outcome::none) << "readable() on a regular file: " << o;
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::writable(fd), 2s));
    EXPECT_EQ(o.kind, Outcome::none) << "writable() on a regular file: " << o;
    ::close(fd);
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(fd), 2s));
    EXPECT_EQ(o.kind, Outcome::system) << "readable() on a closed fd: " << o;
    EXPECT_EQ(o.code, EBADF) << o;
}

// Two workers; the worker that polls wakes for one socket and runs a long computation
// (no suspension); the other worker sleeps. Readiness of a second socket must still be
// collected (the stall monitor hands the poller's role to the sleeping worker): its
// reader runs long before the computation ends. (Regression: nobody polled, and the
// reader waited for the whole computation.)
CO_TEST(NetReadiness, SocketsArePolledWhileThePollerRunsALongTask) {
    Pipe a;
    Pipe b;
    std::atomic<bool> b_read{false};
    auto reader = spindle::spawn([](int fd, std::atomic<bool>* done) -> Task<void> {
        co_await spindle::net::readable(fd);
        done->store(true);
    }(b.r, &b_read));
    std::thread producer([&] {
        // A producer's delay (not synchronization): by then both workers are idle, one
        // of them in epoll_wait, which the write wakes to run this task.
        std::this_thread::sleep_for(20ms);
        const char c = 'x';
        (void)!::write(a.w, &c, 1);  // wakes the computation below
    });
    co_await spindle::net::readable(a.r);
    producer.join();
    const char c = 'y';
    CO_ASSERT_EQ(::write(b.w, &c, 1), 1);  // the computation's own input for the reader
    // The long computation: spins (never suspends) until the reader has run, or 2 s.
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (!b_read.load() && std::chrono::steady_clock::now() < until) {
    }
    EXPECT_TRUE(b_read.load()) << "the other socket's reader did not run while this task computed";
    co_await reader;
}

// Idle spinning ("Idle spinning" in runtime/src/idle.cpp): a task and a plain thread
// play ping-pong over two pipes. Between a ping and its pong the task's worker has
// nothing to do; spinning, it polls the driver without blocking and runs the task when
// the pong lands, without sleeping (no futex or eventfd wake-up per round). S5: the
// other worker, parking meanwhile, does not block in epoll_wait and take the pong.
TEST(NetReadiness, AWorkerSpinningForWorkCollectsReadinessWithoutSleeping) {
    Pipe ping;
    Pipe pong;
    constexpr int kRounds = 100;
    const char* spin_env = std::getenv("SPINDLE_TEST_IDLE_SPIN_US");  // 0: see the parks without it
    spindle::Runtime rt(spindle::RuntimeOptions{
        .workers = 2, .idle_spin_us = spin_env != nullptr ? static_cast<std::uint32_t>(std::atoi(spin_env)) : 10'000U});
    std::thread echo([&] {
        for (int i = 0; i < kRounds; ++i) {
            pollfd p{ping.r, POLLIN, 0};
            if (::poll(&p, 1, 10'000) != 1) return;  // the test's own failure shows below
            char c = 0;
            if (::read(ping.r, &c, 1) != 1) return;
            // The peer's think time (not synchronization: the rounds complete without
            // it): long enough that the task is parked on the pong and its worker idle
            // when the pong lands, short beside the 10 ms spin.
            const auto until = std::chrono::steady_clock::now() + 200us;
            while (std::chrono::steady_clock::now() < until) {
            }
            if (::write(pong.w, &c, 1) != 1) return;
        }
    });
    const int rounds = rt.block_on([](int ping_w, int pong_r) -> Task<int> {
        int n = 0;
        for (int i = 0; i < kRounds; ++i) {
            const char c = static_cast<char>('a' + i % 26);
            if (::write(ping_w, &c, 1) != 1) break;
            char got = 0;
            for (;;) {
                const ssize_t r = ::read(pong_r, &got, 1);
                if (r == 1) break;
                co_await spindle::wait_for(spindle::net::readable(pong_r), 10s);
            }
            if (got == c) ++n;
        }
        co_return n;
    }(ping.w, pong.r));
    echo.join();
    EXPECT_EQ(rounds, kRounds);
    const auto m = rt.metrics();
    // Without spinning (SPINDLE_TEST_IDLE_SPIN_US=0) every round parks a worker: parks ~
    // kRounds, no hits. (How many spins hit varies with the machine's load: 12-99 in
    // 100 rounds measured. The parks stayed at 1-2 either way.)
    EXPECT_LT(m.parks, static_cast<std::uint64_t>(kRounds / 4));
    EXPECT_GT(m.idle_spin_hits, 0U)
        << "spins " << m.idle_spins << ", parks " << m.parks << ", unparks " << m.unparks << ", steals " << m.steals
        << ", injections " << m.injections << ", migrations " << m.migrations
        << ": most pongs should find the worker spinning";
    EXPECT_LE(m.idle_spin_hits, m.idle_spins);
}

// Two tasks wait on one pipe; a plain thread writes one byte at a time and waits until
// somebody consumed it. Every byte must wake a consumer (a wake that found the byte
// already taken must not leave the other waiter parked past the next one).
CO_TEST(NetReadiness, TwoConsumersOfOnePipeSeeEveryByte) {
    Pipe pipe;
    constexpr int kBytes = 200;
    std::atomic<int> consumed{0};
    auto consumer = [](int fd, std::atomic<int>* n) -> Task<void> {
        while (n->load() < kBytes) {
            co_await spindle::wait_for(spindle::net::readable(fd), 10s);
            char c = 0;
            if (::read(fd, &c, 1) == 1) n->fetch_add(1);
        }
    };
    auto c1 = spindle::spawn(consumer(pipe.r, &consumed));
    auto c2 = spindle::spawn(consumer(pipe.r, &consumed));
    std::thread producer([&] {
        for (int i = 0; i < kBytes; ++i) {
            const char c = 'z';
            (void)!::write(pipe.w, &c, 1);
            while (consumed.load() <= i) std::this_thread::yield();
        }
        // Both consumers may wait for a byte that never comes: wake the other one.
        const char c = 'e';
        (void)!::write(pipe.w, &c, 1);
    });
    co_await spindle::wait_for(std::move(c1), 20s);
    co_await spindle::wait_for(std::move(c2), 20s);
    producer.join();
    EXPECT_GE(consumed.load(), kBytes);
}

// =================================================================================
// read_exact

CO_TEST(NetReadExact, EndOfStreamThrowsIncompleteReadErrorWithThePartialBytes) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    const auto hello = to_bytes("hello");
    co_await p.client.write_all(hello);
    p.client.shutdown_write();
    std::vector<std::byte> buf(10);
    bool caught = false;
    try {
        co_await spindle::wait_for(p.server.read_exact(buf), kBound);
    } catch (const IncompleteReadError& e) {
        caught = true;
        EXPECT_EQ(e.partial().size(), 5u);
        EXPECT_EQ(to_string(e.partial()), "hello");
        EXPECT_EQ(e.expected(), 10u);
        EXPECT_NE(std::string(e.what()), "");
    }
    EXPECT_TRUE(caught) << "read_exact at end of stream";
    // At end of stream with nothing: empty partial; caught as a std::runtime_error too.
    std::vector<std::byte> four(4);
    caught = false;
    try {
        co_await spindle::wait_for(p.server.read_exact(four), kBound);
    } catch (const std::runtime_error& e) {
        const auto* ire = dynamic_cast<const IncompleteReadError*>(&e);
        CO_ASSERT_TRUE(ire != nullptr) << e.what();
        caught = true;
        EXPECT_TRUE(ire->partial().empty());
        EXPECT_EQ(ire->expected(), 4u);
    }
    EXPECT_TRUE(caught);
    // The other direction still works after the half-close.
    co_await p.server.write_all(hello);
    std::vector<std::byte> back(5);
    co_await spindle::wait_for(p.client.read_exact(back), kBound);
    EXPECT_EQ(to_string(back), "hello");
}

CO_TEST(NetReadExact, AssemblesManyWritesAndEmptyBuffers) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    std::vector<std::byte> empty;
    // An empty buffer: read returns 0 at once, read_exact and write_all do nothing.
    EXPECT_EQ(co_await spindle::wait_for(p.server.read(empty), kBound), 0u);
    co_await spindle::wait_for(p.server.read_exact(empty), kBound);
    co_await p.client.write_all(empty);
    struct Local {
        static Task<void> pieces(TcpStream& s) {
            for (int i = 0; i < 10; ++i) {
                const auto piece = to_bytes(std::string(1, static_cast<char>('a' + i)));
                co_await s.write_all(piece);
                co_await spindle::yield_now();
            }
        }
    };
    auto w = spindle::spawn(Local::pieces(p.client));
    std::vector<std::byte> all(10);
    co_await spindle::wait_for(p.server.read_exact(all), kBound);
    co_await w;
    EXPECT_EQ(to_string(all), "abcdefghij");
}

// =================================================================================
// Addresses

namespace {
Task<void> echo_once(TcpListener& listener, std::string host, int expect_family) {
    Pair p = co_await connect_pair(listener, host);
    EXPECT_EQ(local_family(p.client.native_handle()), expect_family);
    EXPECT_EQ(local_family(p.server.native_handle()), expect_family);
    EXPECT_EQ(peer_port(p.client.native_handle()), listener.local_port());
    EXPECT_EQ(peer_port(p.server.native_handle()), p.client.local_port());
    ServerStats stats;
    auto echo = spindle::spawn(echo_connection(std::move(p.server), stats));
    const auto msg = random_bytes(kSeed + 8, 70000);
    auto w = spindle::spawn(write_task(p.client, msg));
    std::vector<std::byte> back(msg.size());
    co_await spindle::wait_for(p.client.read_exact(back), kBound);
    co_await w;
    p.client.close();
    co_await spindle::wait_for(echo, kBound);
    EXPECT_TRUE(back == msg);
    EXPECT_EQ(stats.errors.load(), 0) << stats.first_error;
}
}  // namespace

TEST(NetAddress, Ipv6LoopbackEcho) {
    TcpListener listener;
    try {
        listener = TcpListener::bind("::1", 0);
    } catch (const std::system_error& e) {
        if (e.code().value() == EADDRNOTAVAIL || e.code().value() == EAFNOSUPPORT)
            GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
        throw;
    }
    EXPECT_EQ(local_family(listener.native_handle()), AF_INET6);
    EXPECT_EQ(local_address(listener.native_handle()), "::1");
    spindle::testing::run_test("NetAddress.Ipv6LoopbackEcho", echo_once(listener, "::1", AF_INET6),
                               spindle::RuntimeOptions{.workers = 2});
}

TEST(NetAddress, LocalhostForBindAndConnect) {
    TcpListener listener = TcpListener::bind("localhost", 0);
    EXPECT_EQ(local_family(listener.native_handle()), AF_INET);
    EXPECT_EQ(local_address(listener.native_handle()), "127.0.0.1");
    spindle::testing::run_test("NetAddress.LocalhostForBindAndConnect", echo_once(listener, "localhost", AF_INET),
                               spindle::RuntimeOptions{.workers = 2});
}

TEST(NetAddress, WildcardBindAcceptsLoopback) {
    TcpListener listener = TcpListener::bind("0.0.0.0", 0);
    EXPECT_EQ(local_address(listener.native_handle()), "0.0.0.0");
    spindle::testing::run_test("NetAddress.WildcardBindAcceptsLoopback", echo_once(listener, "127.0.0.1", AF_INET),
                               spindle::RuntimeOptions{.workers = 2});
}

CO_TEST(NetAddress, NonNumericNamesAreInvalidArguments) {
    Outcome o;
    NET_CAPTURE(o, (void)co_await TcpStream::connect("example.invalid", 80));
    EXPECT_EQ(o.kind, Outcome::invalid_argument) << "connect(\"example.invalid\"): " << o;
    NET_CAPTURE(o, (void)TcpListener::bind("example.invalid", 0));
    EXPECT_EQ(o.kind, Outcome::invalid_argument) << "bind(\"example.invalid\"): " << o;
    NET_CAPTURE(o, (void)co_await TcpStream::connect("127.0.0.1.evil", 80));
    EXPECT_EQ(o.kind, Outcome::invalid_argument) << "connect(\"127.0.0.1.evil\"): " << o;
}

// =================================================================================
// Shutdown and fd leaks

namespace {

// Creates and destroys a runtime that made a connection, so that whatever the library
// sets up once per process exists before the fds are counted.
void warm_up() {
    spindle::run(
        []() -> Task<void> {
            TcpListener l = TcpListener::bind("127.0.0.1", 0);
            Pair p = co_await connect_pair(l);
            p.client.close();
            std::vector<std::byte> b(4);
            (void)co_await spindle::wait_for(p.server.read(b), kBound);
        }(),
        {.workers = 2});
}

// Aborts the process, naming `what`, unless disarmed within `bound` (a hang fails fast).
class Watchdog {
public:
    Watchdog(std::string what, std::chrono::seconds bound)
        : thread_([what = std::move(what), bound](std::stop_token st) {
              std::mutex mx;
              std::condition_variable_any cv;
              std::unique_lock lk(mx);
              if (!cv.wait_for(lk, st, bound, [] { return false; }) && !st.stop_requested()) {
                  std::fprintf(stderr, "\n%s did not finish within %llds (a hang)\n", what.c_str(),
                               static_cast<long long>(bound.count()));
                  std::fflush(stderr);
                  std::abort();
              }
          }) {}

private:
    std::jthread thread_;
};

struct ParkedShared {
    std::atomic<int> parked{0};
    int target = 0;
    spindle::Event all_parked;
    void arrived() {
        if (parked.fetch_add(1) + 1 == target) all_parked.set();
    }
};

Task<void> read_forever(TcpStream conn, ParkedShared& sh) {
    TcpStream s = std::move(conn);
    std::vector<std::byte> b(256);
    sh.arrived();
    for (;;) {
        if (co_await s.read(b) == 0) co_return;
    }
}

Task<void> accept_forever(TcpListener l, ParkedShared& sh) {
    for (;;) {
        TcpStream s = co_await l.accept();
        (void)spindle::spawn(read_forever(std::move(s), sh));
    }
}

Task<void> client_forever(std::uint16_t port, ParkedShared& sh) {
    TcpStream s = co_await TcpStream::connect("127.0.0.1", port);
    co_await read_forever(std::move(s), sh);
}

Task<void> readable_forever(int fd, ParkedShared& sh) {
    sh.arrived();
    for (;;) co_await spindle::net::readable(fd);
}

Task<void> start_clients(std::uint16_t port, int k, ParkedShared& sh) {
    for (int i = 0; i < k; ++i) (void)spindle::spawn(client_forever(port, sh));
    co_await spindle::wait_for(sh.all_parked.wait(), kBound);
}

}  // namespace

TEST(NetShutdown, RuntimeDestroyedWithTasksParkedOnSockets) {
    warm_up();
    const auto before = open_fds();
    {
        Pipe pipe;  // outlives the runtime: its fds are the test's
        ParkedShared sh;
        const int k = 50;
        sh.target = 2 * k + 1;  // server-side readers, client-side readers, the pipe waiter
        Watchdog dog("NetShutdown.RuntimeDestroyedWithTasksParkedOnSockets", 60s);
        {
            spindle::Runtime rt({.workers = 2});
            TcpListener listener = TcpListener::bind("127.0.0.1", 0);
            const std::uint16_t port = listener.local_port();
            (void)rt.spawn(accept_forever(std::move(listener), sh), "acceptor");
            (void)rt.spawn(readable_forever(pipe.r, sh), "pipe-waiter");
            try {
                rt.block_on(start_clients(port, k, sh));
            } catch (const std::exception& e) {
                ADD_FAILURE() << "the tasks did not all report: " << e.what() << "; " << sh.parked.load() << " of "
                              << sh.target;
            }
            EXPECT_EQ(sh.parked.load(), sh.target);
        }  // the runtime is destroyed with 2k + 2 tasks parked on sockets and a pipe
    }
    const auto after = open_fds();
    EXPECT_EQ(after.size(), before.size()) << "before:\n" << describe_fds(before) << "after:\n" << describe_fds(after);
}

// A socket used (registered) in a runtime may outlive it: destroying it afterwards is
// fine, and a task of another runtime using it gets std::logic_error.
TEST(NetShutdown, SocketOutlivesItsRuntime) {
    warm_up();
    const auto before = open_fds();
    {
        TcpStream client;
        TcpStream server;
        TcpListener listener = TcpListener::bind("127.0.0.1", 0);
        {
            spindle::Runtime rt({.workers = 1});
            Pair p = rt.block_on([](TcpListener& l) -> Task<Pair> {
                Pair q = co_await connect_pair(l);
                // Make the server side wait once (and so join this runtime's driver).
                struct Local {
                    static Task<std::size_t> reader(TcpStream& s) {
                        std::vector<std::byte> b(8);
                        co_return co_await s.read(b);
                    }
                };
                auto h = spindle::spawn(Local::reader(q.server));
                co_await spindle::yield_now();  // one worker: the reader parks
                const auto x = to_bytes("x");
                co_await q.client.write_all(x);
                EXPECT_EQ(co_await spindle::wait_for(h, kBound), 1u);
                co_return std::move(q);
            }(listener));
            client = std::move(p.client);
            server = std::move(p.server);
        }
        EXPECT_TRUE(client.is_open());
        EXPECT_TRUE(server.is_open());
        {
            spindle::Runtime other({.workers = 1});
            const Outcome o = other.block_on([](TcpStream& s) -> Task<Outcome> {
                std::vector<std::byte> b(8);
                Outcome r;
                NET_CAPTURE(r, (void)co_await spindle::wait_for(s.read(b), 2s));
                co_return r;
            }(server));
            EXPECT_EQ(o.kind, Outcome::logic) << "a read that must wait, on a socket of a destroyed runtime: " << o;
        }
    }
    const auto after = open_fds();
    EXPECT_EQ(after.size(), before.size()) << "before:\n" << describe_fds(before) << "after:\n" << describe_fds(after);
}

namespace {
// Everything that opens a socket, once, including the error paths.
Task<void> fd_scenario() {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    co_await echo_scenario("127.0.0.1", 50, 20000);
    Pair p = co_await connect_pair(listener);
    std::vector<std::byte> b(16);
    Outcome o;
    NET_CAPTURE(o, (void)co_await spindle::wait_for(p.server.read(b), 5ms));  // timed-out read
    EXPECT_EQ(o.kind, Outcome::timeout);
    NET_CAPTURE(o, (void)co_await spindle::wait_for(listener.accept(), 5ms));  // timed-out accept
    EXPECT_EQ(o.kind, Outcome::timeout);
    p.client.close();
    NET_CAPTURE(o, co_await spindle::wait_for(p.server.read_exact(b), kBound));  // IncompleteReadError
    EXPECT_EQ(o.kind, Outcome::incomplete) << o;
    std::uint16_t closed_port = 0;
    {
        TcpListener l2 = TcpListener::bind("127.0.0.1", 0);
        closed_port = l2.local_port();
    }
    NET_CAPTURE(o, (void)co_await TcpStream::connect("127.0.0.1", closed_port));  // refused
    EXPECT_EQ(o.kind, Outcome::system) << o;
    NET_CAPTURE(o, (void)TcpListener::bind("127.0.0.1", listener.local_port()));  // in use
    EXPECT_EQ(o.kind, Outcome::system) << o;
    NET_CAPTURE(o, (void)co_await TcpStream::connect("example.invalid", 1));
    EXPECT_EQ(o.kind, Outcome::invalid_argument) << o;
    // A reset connection.
    Pair r = co_await connect_pair(listener);
    (void)set_linger_reset(r.client.native_handle());
    r.client.close();
    NET_CAPTURE(o, (void)co_await spindle::wait_for(r.server.read(b), kBound));
    EXPECT_TRUE(is_reset_or_pipe(o)) << o;
    // readable() timed out on a pipe.
    Pipe pipe;
    NET_CAPTURE(o, co_await spindle::wait_for(spindle::net::readable(pipe.r), 5ms));
    EXPECT_EQ(o.kind, Outcome::timeout);
    // A connect cancelled at once (cancel-safe: no half-open socket left), on a listener
    // of its own (its connection may wait in that listener's queue).
    TcpListener l3 = TcpListener::bind("127.0.0.1", 0);
    NET_CAPTURE(o, (void)co_await spindle::wait_for(TcpStream::connect("127.0.0.1", l3.local_port()), 0ms));
    std::printf("connect under a zero timeout: %s\n", describe(o).c_str());
}
}  // namespace

TEST(NetShutdown, NoFdLeaks) {
    warm_up();
    const auto before = open_fds();
    spindle::testing::run_test("NetShutdown.NoFdLeaks", fd_scenario(), spindle::RuntimeOptions{.workers = 2});
    const auto after = open_fds();
    EXPECT_EQ(after.size(), before.size()) << "before:\n" << describe_fds(before) << "after:\n" << describe_fds(after);
}

// =================================================================================
// Virtual time: the clock may jump (after a short real-time grace) while tasks wait on
// I/O, but data that does come is delivered.

CO_TEST_OPTS(NetVirtualTime, ReadWithNoDataTimesOut, (spindle::RuntimeOptions{.workers = 1, .virtual_time = true})) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    std::vector<std::byte> b(16);
    const auto v0 = spindle::now();
    const auto r0 = std::chrono::steady_clock::now();
    Outcome o;
    NET_CAPTURE(o, (void)co_await spindle::wait_for(p.server.read(b), 5s));
    const auto real = std::chrono::steady_clock::now() - r0;
    EXPECT_EQ(o.kind, Outcome::timeout) << o;
    EXPECT_GE(spindle::now() - v0, 5s) << "the virtual clock did not reach the deadline";
    EXPECT_LT(real, 4s) << "virtual time did not jump: the timeout took "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(real).count() << " ms of real time";
    // The socket still works after the timed-out read.
    const auto hi = to_bytes("hi");
    co_await p.client.write_all(hi);
    std::vector<std::byte> got(2);
    co_await spindle::wait_for(p.server.read_exact(got), 5s);
    EXPECT_EQ(to_string(got), "hi");
}

CO_TEST_OPTS(NetVirtualTime, DataFromAPlainThreadArrivesBeforeTheTimeout,
             (spindle::RuntimeOptions{.workers = 1, .virtual_time = true})) {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Pair p = co_await connect_pair(listener);
    const int fd = p.client.native_handle();
    std::jthread producer([fd] {
        std::this_thread::sleep_for(5ms);  // a producer that takes 5 ms of real time
        const char msg[] = "from a thread";
        (void)::send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
    });
    std::vector<std::byte> b(64);
    Outcome o;
    std::size_t n = 0;
    NET_CAPTURE(o, n = co_await spindle::wait_for(p.server.read(b), 5s));
    producer.join();
    EXPECT_EQ(o.kind, Outcome::none) << "the data came after 20 ms of real time: " << o;
    EXPECT_EQ(to_string(std::span<const std::byte>(b.data(), n)).substr(0, 4), "from");
    // The rest (if it came in two pieces).
    std::string all = to_string(std::span<const std::byte>(b.data(), n));
    while (all.size() < 13 && o.kind == Outcome::none) {
        NET_CAPTURE(o, n = co_await spindle::wait_for(p.server.read(b), 5s));
        if (o.kind == Outcome::none) all += to_string(std::span<const std::byte>(b.data(), n));
    }
    EXPECT_EQ(all, "from a thread");
}
