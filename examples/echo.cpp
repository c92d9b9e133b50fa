// examples/echo.cpp — a TCP echo server that serves at most three connections at once.
//
// Scenario (the asyncio tutorials' connection limit, here with real sockets): an
// echo server — asyncio's `start_server` with a handler that reads a request and
// writes it back — must not serve more than three clients at a time (a database
// behind it, a memory budget). Eight clients connect at once. The accept loop takes
// a permit of a spindle::Semaphore(3) before it accepts, and each connection's task
// gives it back when it is done; the clients beyond the cap wait in the kernel's
// listen queue until a permit frees up. Each request costs 100 ms of work.
//
// The pieces of <spindle/net.hpp> in use: `TcpListener::bind("127.0.0.1", 0)` (port 0:
// any free port, read back with local_port()), `co_await listener.accept()`,
// `co_await TcpStream::connect(host, port)`, `read` until it returns 0 (the peer's
// `shutdown_write()`, asyncio's `write_eof`), and `write_all`.
//
// What to look for in the output: every client gets its own message back, and the
// server never had more than three connections inside at once — and did reach three.
// The output is printed after every client finished, in client order, so it is the
// same on every run even though the workers interleave differently each time.
//
// Two workers and the real clock.
#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using spindle::Task;
using spindle::net::TcpListener;
using spindle::net::TcpStream;

namespace {

constexpr int kClients = 8;
constexpr int kLimit = 3;

struct Server {
    spindle::Semaphore slots{kLimit};  // connections the server may serve at once
    std::atomic<int> inside{0};        // connections being served right now
    std::atomic<int> max_inside{0};    // the most at once
    std::atomic<int> served{0};
};

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

// Reads until the peer shuts its side down.
Task<std::string> read_all(TcpStream& conn) {
    std::string all;
    std::vector<std::byte> buf(4096);
    for (;;) {
        const std::size_t n = co_await conn.read(buf);
        if (n == 0) break;
        all.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    co_return all;
}

// One connection: read the request, work on it, echo it back. The accept loop took a
// permit for this connection; the guard gives it back when the handler ends.
Task<void> handle(TcpStream conn, Server& server) {
    struct Inside {
        Server& s;
        ~Inside() {
            s.inside.fetch_sub(1);  // no longer inside, then the permit goes back
            s.slots.release();
        }
    } guard{server};
    const int now = server.inside.fetch_add(1) + 1;
    int seen = server.max_inside.load();
    while (now > seen && !server.max_inside.compare_exchange_weak(seen, now)) {
    }
    const std::string request = co_await read_all(conn);
    co_await spindle::sleep(100ms);  // the work of a request
    co_await conn.write_all(bytes_of(request));
    conn.close();
    server.served.fetch_add(1);
}

// Serves `count` connections, at most kLimit at once.
Task<void> serve(TcpListener& listener, Server& server, int count) {
    std::vector<spindle::JoinHandle<void>> handlers;
    for (int i = 0; i < count; ++i) {
        co_await server.slots.acquire();  // async with semaphore: (released by the handler)
        TcpStream conn = co_await listener.accept();
        handlers.push_back(spindle::spawn(handle(std::move(conn), server)));
    }
    for (auto& h : handlers) co_await h;
}

Task<std::string> client(std::uint16_t port, int id) {
    TcpStream conn = co_await TcpStream::connect("127.0.0.1", port);
    const std::string message = "hello from client " + std::to_string(id);
    co_await conn.write_all(bytes_of(message));
    conn.shutdown_write();  // the whole request is sent
    co_return co_await read_all(conn);
}

Task<void> demo() {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Server server;
    std::printf("echo server on 127.0.0.1, at most %d connections at once; %d clients\n", kLimit, kClients);
    auto serving = spindle::spawn(serve(listener, server, kClients));

    std::vector<Task<std::string>> clients;
    for (int id = 0; id < kClients; ++id) clients.push_back(client(listener.local_port(), id));
    const std::vector<std::string> replies = co_await spindle::gather(std::move(clients));
    co_await serving;

    for (int id = 0; id < kClients; ++id) {
        std::printf("client %d: got back \"%s\"\n", id, replies[static_cast<std::size_t>(id)].c_str());
    }
    std::printf("served %d connections, at most %d at once (limit %d); free permits: %td\n", server.served.load(),
                server.max_inside.load(), kLimit, server.slots.value());
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 2});
    return 0;
}
