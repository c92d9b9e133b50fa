// examples/event_bus.cpp — Event: one task signals, many wake up; and an event bus.
//
// Scenario 1 (the Event tutorials): two waiters block on `event.wait()`; a setter
// does some I/O for 2 s, then calls `event.set()`, which releases every waiter at
// once (in the order they started waiting). The flag stays set: a later wait()
// returns at once, until someone calls clear().
//
// Scenario 2 (the event-bus tutorial): a tiny publish/subscribe bus on top of
// Events. `on(name, callback)` is a long-running listener task: wait for the
// event named `name`, clear it, call the callback with the data, repeat.
// `trigger(name, data)` stores the data and sets the event. Listeners loop forever,
// so the program cancels them when it is done (the tutorial's advice: "remember to
// use cancel to terminate cyclic tasks").
//
// What to look for in the output: both waiters continue at 2000 ms, right after
// the setter; each trigger reaches only the listener of its name; the listeners
// end with a cancellation.
//
// One worker and the virtual clock: deterministic output, asyncio's interleaving.
#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>

using namespace std::chrono_literals;

namespace {

std::chrono::nanoseconds start{};
long long ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now() - start).count();
}

// ---- 1. two waiters, one setter
spindle::Task<void> waiter(spindle::Event& event, int id) {
    std::printf("[%4lld ms] waiter %d: waiting for the event\n", ms(), id);
    co_await event.wait();
    std::printf("[%4lld ms] waiter %d: event is set, continuing\n", ms(), id);
}

spindle::Task<void> setter(spindle::Event& event) {
    co_await spindle::sleep(2s);  // some I/O
    event.set();
    std::printf("[%4lld ms] setter: event has been set\n", ms());
}

// ---- 2. an event bus
class EventBus {
public:
    using Callback = std::function<void(const std::string&)>;

    // A listener: runs until cancelled.
    spindle::Task<void> on(std::string name, Callback callback) {
        Channel& ch = channel(name);
        for (;;) {
            co_await ch.event.wait();
            ch.event.clear();  // before the callback: a trigger meanwhile is kept
            callback(ch.data);
        }
    }

    void trigger(const std::string& name, std::string data) {
        Channel& ch = channel(name);
        ch.data = std::move(data);
        ch.event.set();
    }

private:
    struct Channel {
        spindle::Event event;
        std::string data;
    };
    Channel& channel(const std::string& name) {  // created on first use
        auto& slot = channels_[name];
        if (!slot) slot = std::make_unique<Channel>();
        return *slot;
    }
    std::map<std::string, std::unique_ptr<Channel>> channels_;
};

spindle::Task<void> demo() {
    start = spindle::now();
    std::printf("-- two waiters, one setter\n");
    spindle::Event event;
    co_await spindle::gather(waiter(event, 1), waiter(event, 2), setter(event));
    co_await event.wait();  // still set: returns at once
    std::printf("[%4lld ms] a late wait() returns at once: is_set() = %s\n", ms(),
                event.is_set() ? "true" : "false");

    std::printf("-- event bus\n");
    EventBus bus;
    auto logins = spindle::spawn(bus.on("login", [](const std::string& user) {
        std::printf("[%4lld ms] login handler: %s logged in\n", ms(), user.c_str());
    }), "login listener");
    auto orders = spindle::spawn(bus.on("order", [](const std::string& order) {
        std::printf("[%4lld ms] order handler: order %s placed\n", ms(), order.c_str());
    }), "order listener");
    co_await spindle::sleep(100ms);
    bus.trigger("login", "alice");
    co_await spindle::sleep(100ms);
    bus.trigger("order", "#1001");
    co_await spindle::sleep(100ms);
    bus.trigger("login", "bob");
    co_await spindle::sleep(100ms);

    logins.cancel();  // the listeners loop forever: stop them
    orders.cancel();
    for (auto* listener : {&logins, &orders}) {
        try {
            co_await *listener;
        } catch (const spindle::CancelledError&) {
            std::printf("[%4lld ms] %s cancelled\n", ms(), listener->name().c_str());
        }
    }
}

}  // namespace

int main() {
    spindle::run(demo(), {.workers = 1, .virtual_time = true});
    return 0;
}
