// examples/chat.cpp — a chat room over TCP: a Queue per client, a broadcaster, an
// Event for shutdown.
//
// Scenario (the classic asyncio chat server): clients connect to a room and send lines
// of text; everything anyone says is shown to everyone. The server side:
//   - per connection, a reader task that turns the client's lines into messages
//     for the room, and a writer task that sends the client whatever lands in its
//     own spindle::Queue<std::string> (its outbox) — a slow client delays nobody;
//   - one broadcaster task that takes the room's messages in order from the room's
//     queue and puts each into every member's outbox (joins are messages too, so
//     only the broadcaster ever touches the member list);
//   - a spindle::Event `closing`, set when the last client has said everything it
//     had to say: the room announces that it closes and shuts its queues down
//     (Python 3.13's Queue.shutdown) — the broadcaster drains what is left, each
//     writer drains its outbox and ends its stream, and every client reads to the
//     end of the stream.
// The clients follow a script and take turns: each speaks when it has heard the
// line before its own, so the conversation reads the same on every run.
//
// The pieces of <spindle/net.hpp> in use: bind / accept / connect, `read` in a line
// reader, `write_all`, and `shutdown_write()` for "I have nothing more to say" (the
// peer's read returns 0) while the other direction stays open.
//
// What to look for in the output: each client's screen starts at its own join, has
// every line of the conversation in the same order, and ends with the room closing.
// The screens are printed after everything finished, in a fixed order.
//
// Two workers and the real clock.
#include <spindle/net.hpp>
#include <spindle/spindle.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

using spindle::Task;
using spindle::net::TcpListener;
using spindle::net::TcpStream;

namespace {

const std::vector<std::string> kNames = {"alice", "bob", "carol"};

struct ScriptLine {
    std::size_t speaker;
    std::string text;
};
const std::vector<ScriptLine> kScript = {
    {0, "hi everyone"},        {1, "hey alice"}, {2, "hello both"}, {0, "shall we ship it?"},
    {1, "tests pass, ship it"}, {2, "shipped"},   {0, "bye!"},
};

// ---- lines over a stream

Task<void> send_line(TcpStream& conn, std::string line) {
    line += '\n';
    co_await conn.write_all(std::as_bytes(std::span(line.data(), line.size())));
}

// Splits what a stream delivers into lines.
class LineReader {
public:
    explicit LineReader(TcpStream& conn) : conn_(&conn) {}
    // The next line (without '\n'), or nothing at the end of the stream.
    Task<std::optional<std::string>> next() {
        for (;;) {
            if (const auto nl = buffered_.find('\n'); nl != std::string::npos) {
                std::string line = buffered_.substr(0, nl);
                buffered_.erase(0, nl + 1);
                co_return line;
            }
            std::array<std::byte, 1024> chunk{};
            const std::size_t n = co_await conn_->read(chunk);
            if (n == 0) co_return std::nullopt;
            buffered_.append(reinterpret_cast<const char*>(chunk.data()), n);
        }
    }

private:
    TcpStream* conn_;
    std::string buffered_;
};

// ---- the server

struct Member {
    std::string name;
    spindle::Queue<std::string> outbox;  // lines on their way to this client
};

struct RoomMessage {
    Member* joined = nullptr;  // a join, or
    std::string text;          // a line for everyone
};

struct Room {
    spindle::Queue<RoomMessage> inbox;  // everything said, in the order it is shown
    spindle::Event closing;             // set when every client stopped talking
    std::atomic<int> talking{static_cast<int>(kNames.size())};
    int messages = 0;    // broadcaster only
    int deliveries = 0;  // broadcaster only
    std::mutex owned_mx;
    std::vector<std::unique_ptr<Member>> owned;  // members live as long as the room

    Member& add_member(std::string name) {
        std::lock_guard lk(owned_mx);
        owned.push_back(std::make_unique<Member>());
        owned.back()->name = std::move(name);
        return *owned.back();
    }
};

Task<void> broadcaster(Room& room) {
    std::vector<Member*> members;  // only this task touches it
    for (;;) {
        RoomMessage m;
        try {
            m = co_await room.inbox.get();
        } catch (const spindle::QueueShutDown&) {
            break;  // shut down and drained
        }
        if (m.joined != nullptr) {
            members.push_back(m.joined);
            m.text = "* " + m.joined->name + " joined";
        }
        ++room.messages;
        for (Member* member : members) {
            member->outbox.put_nowait(m.text);
            ++room.deliveries;
        }
    }
    for (Member* member : members) member->outbox.shutdown();  // each writer drains, then ends
}

Task<void> writer(TcpStream& conn, Member& me) {
    for (;;) {
        std::string line;
        try {
            line = co_await me.outbox.get();
        } catch (const spindle::QueueShutDown&) {
            break;
        }
        co_await send_line(conn, std::move(line));
    }
    conn.shutdown_write();  // the client's read returns 0
}

// One connection: the first line is the client's name, every later one is said to the room.
Task<void> session(TcpStream conn, Room& room) {
    LineReader in(conn);
    const std::optional<std::string> name = co_await in.next();
    if (!name) co_return;
    Member& me = room.add_member(*name);
    auto out = spindle::spawn(writer(conn, me));
    room.inbox.put_nowait(RoomMessage{&me, {}});
    while (const std::optional<std::string> line = co_await in.next()) {
        room.inbox.put_nowait(RoomMessage{nullptr, "<" + me.name + "> " + *line});
    }
    // The client half-closed: it has nothing more to say.
    if (room.talking.fetch_sub(1) == 1) room.closing.set();
    co_await out;
}

Task<void> closer(Room& room) {
    co_await room.closing.wait();
    room.inbox.put_nowait(RoomMessage{nullptr, "* the room is closing"});
    room.inbox.shutdown();  // the broadcaster takes what is left, then stops
}

Task<void> serve(TcpListener& listener, Room& room) {
    std::vector<spindle::JoinHandle<void>> sessions;
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        TcpStream conn = co_await listener.accept();
        sessions.push_back(spindle::spawn(session(std::move(conn), room)));
    }
    for (auto& s : sessions) co_await s;
}

// ---- the clients

struct Screen {
    std::string name;
    std::vector<std::string> lines;
};

// The index of `me`'s first script line at or after `from` (kScript.size() if none).
std::size_t next_line_of(std::size_t me, std::size_t from) {
    while (from < kScript.size() && kScript[from].speaker != me) ++from;
    return from;
}

Task<Screen> client(std::uint16_t port, std::size_t me, spindle::Event& joined) {
    Screen screen{kNames[me], {}};
    TcpStream conn = co_await TcpStream::connect("127.0.0.1", port);
    co_await send_line(conn, kNames[me]);
    LineReader in(conn);
    const std::string own_join = "* " + kNames[me] + " joined";
    const std::string last_join = "* " + kNames.back() + " joined";
    bool everyone_in = false;
    std::size_t heard = 0;  // script lines heard so far
    std::size_t mine = next_line_of(me, 0);
    while (const std::optional<std::string> line = co_await in.next()) {
        screen.lines.push_back(*line);
        if (*line == own_join) joined.set();
        if (*line == last_join) everyone_in = true;
        if (!line->empty() && line->front() == '<') ++heard;
        // My turn: everyone is in and the line before mine has been heard.
        if (everyone_in && mine < kScript.size() && heard == mine) {
            co_await send_line(conn, kScript[mine].text);
            mine = next_line_of(me, mine + 1);
        }
        if (heard == kScript.size() && mine == kScript.size()) {
            conn.shutdown_write();  // nothing more to say; keep reading to the end
            mine = kScript.size() + 1;
        }
    }
    co_return screen;
}

Task<void> demo() {
    TcpListener listener = TcpListener::bind("127.0.0.1", 0);
    Room room;
    auto serving = spindle::spawn(serve(listener, room));
    auto broadcasting = spindle::spawn(broadcaster(room));
    auto closing = spindle::spawn(closer(room));

    // The clients join one after the other (each once the previous one is in).
    std::vector<spindle::Event> joined(kNames.size());
    std::vector<spindle::JoinHandle<Screen>> clients;
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        clients.push_back(spindle::spawn(client(listener.local_port(), i, joined[i])));
        co_await joined[i].wait();
    }
    std::vector<Screen> screens;
    for (auto& c : clients) screens.push_back(co_await std::move(c));
    co_await serving;
    co_await broadcasting;
    co_await closing;

    std::printf("chat room on 127.0.0.1: %zu clients, %zu scripted lines\n", kNames.size(), kScript.size());
    for (const Screen& s : screens) {
        std::printf("--- %s's screen ---\n", s.name.c_str());
        for (const std::string& line : s.lines) std::printf("%s\n", line.c_str());
    }
    std::printf("broadcaster: %d messages, %d deliveries\n", room.messages, room.deliveries);
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 2});
    return 0;
}
