// bench/echo.cpp — spindle_echo: the TCP echo server of ../shared/peers/net (the
// contract in its README): listens on 127.0.0.1, port 0; prints the port as the first
// stdout line; echoes every byte of every connection (a task per connection, 64 KiB
// reads, TCP_NODELAY) until SIGTERM, which it receives through a signalfd that a task
// awaits with spindle::net::readable — the way to plug any fd into the runtime.
//
//   spindle_echo [--workers N]     (default: hardware concurrency, as Tokio and Go)
//                [--idle-spin-us US] (RuntimeOptions::idle_spin_us; default 50)
//   SPINDLE_ECHO_METRICS=1         the runtime's counters on stderr at SIGTERM
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <spindle/spindle.hpp>

namespace {

spindle::Task<void> serve(spindle::net::TcpStream s) {
    try {
        s.set_nodelay(true);
        // Not zero-filled (as the Asio and epoll peers): 64 KiB of memset per
        // connection is ~2% of a churned connection's cost.
        constexpr std::size_t kBuf = 64 * 1024;
        const std::unique_ptr<std::byte[]> buf(new std::byte[kBuf]);
        for (;;) {
            const std::size_t n = co_await s.read(std::span<std::byte>(buf.get(), kBuf));
            if (n == 0) break;
            co_await s.write_all(std::span<const std::byte>(buf.get(), n));
        }
    } catch (const std::system_error&) {  // reset by the peer: the connection ends
    }
}

spindle::Task<void> accept_loop(spindle::net::TcpListener& l) {
    for (;;) {
        bool failed = false;
        try {
            spindle::spawn(serve(co_await l.accept()));
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "spindle_echo: accept: %s\n", e.what());
            failed = true;
        }
        if (failed) co_await spindle::sleep(std::chrono::milliseconds(10));  // EMFILE: let connections close
    }
}

spindle::Task<void> server(int sigfd) {
    auto l = spindle::net::TcpListener::bind("127.0.0.1", 0);
    std::printf("%u\n", static_cast<unsigned>(l.local_port()));
    std::fflush(stdout);
    auto acceptor = spindle::spawn(accept_loop(l));
    co_await spindle::net::readable(sigfd);  // SIGTERM
    acceptor.cancel();
    try {
        co_await acceptor;
    } catch (const spindle::CancelledError&) {
    }
}

}  // namespace

int main(int argc, char** argv) {
    spindle::RuntimeOptions opts;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            opts.workers = static_cast<std::size_t>(std::strtoul(argv[++i], nullptr, 10));
        } else if (std::strcmp(argv[i], "--idle-spin-us") == 0 && i + 1 < argc) {
            opts.idle_spin_us = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
        } else {
            std::fprintf(stderr, "usage: spindle_echo [--workers N] [--idle-spin-us US]\n");
            return 2;
        }
    }
    // SIGTERM and SIGINT arrive through a signalfd: blocked in every thread (the
    // runtime's threads inherit this mask).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    const int sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0) {
        std::perror("signalfd");
        return 1;
    }
    {
        spindle::Runtime rt(opts);
        rt.block_on(server(sigfd));
        // SPINDLE_ECHO_METRICS=1: the runtime's counters on stderr at SIGTERM (where the
        // parks, wakes and steals of a figure come from).
        if (std::getenv("SPINDLE_ECHO_METRICS") != nullptr) {
            const spindle::RuntimeMetrics m = rt.metrics();
            std::fprintf(stderr,
                         "spindle_echo metrics: workers %zu spawned %llu steals %llu parks %llu unparks %llu "
                         "injections %llu migrations %llu rescues %llu idle_spins %llu idle_spin_hits %llu\n",
                         m.workers, static_cast<unsigned long long>(m.tasks_spawned),
                         static_cast<unsigned long long>(m.steals), static_cast<unsigned long long>(m.parks),
                         static_cast<unsigned long long>(m.unparks), static_cast<unsigned long long>(m.injections),
                         static_cast<unsigned long long>(m.migrations),
                         static_cast<unsigned long long>(m.stall_rescues),
                         static_cast<unsigned long long>(m.idle_spins),
                         static_cast<unsigned long long>(m.idle_spin_hits));
        }
    }
    ::close(sigfd);
    return 0;
}
