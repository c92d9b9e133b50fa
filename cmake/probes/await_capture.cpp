// Probe (spindle's CMake package and build): does this compiler miscompile a lambda
// with a by-copy capture that is not trivially copyable, written as a temporary inside
// a co_await expression? GCC 12 (seen with Debian's 12.2) copy-constructs the capture
// into a separate temporary, fills the closure with a bitwise copy and destroys both:
// with a std::string that is a bad free or a double free (../shared/repros, issue 14).
// Counts constructions and destructions of a tracked capture instead of crashing.
// Exit 0: correct; exit 1: the compiler has the bug.
#include <coroutine>
#include <cstdio>
#include <utility>

namespace {
int g_live = 0;  // constructed minus destroyed Tracked objects
struct Tracked {
    Tracked() noexcept { ++g_live; }
    Tracked(const Tracked&) noexcept { ++g_live; }
    Tracked(Tracked&&) noexcept { ++g_live; }
    ~Tracked() { --g_live; }
};
struct Co {
    struct promise_type {
        Co get_return_object() { return Co{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept {}
    };
    explicit Co(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    Co(Co&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    ~Co() {
        if (h_) h_.destroy();
    }
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept { return h_; }
    void await_resume() const noexcept {}
    std::coroutine_handle<promise_type> h_;
};
template <class F>
Co take(F f) {
    f();
    co_return;
}
Co outer() {
    Tracked t;
    co_await take([t] { (void)t; });  // the pattern: a capturing lambda inside co_await
}
}  // namespace

int main() {
    {
        Co c = outer();
        c.h_.resume();
        c.h_.resume();  // take() finished: back in outer, which runs to its end
    }
    if (g_live != 0) {
        std::printf("capture destroyed %d more times than constructed\n", -g_live);
        return 1;
    }
    return 0;
}
