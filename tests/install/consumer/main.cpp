#include <spindle/spindle.hpp>

#include <cstdio>

static_assert(SPINDLE_VERSION_MAJOR >= 0 && SPINDLE_VERSION == SPINDLE_VERSION_MAJOR * 10000 + SPINDLE_VERSION_MINOR * 100 + SPINDLE_VERSION_PATCH,
              "<spindle/version.hpp> comes with the umbrella header");

spindle::Task<int> answer() {
    auto h = spindle::spawn([]() -> spindle::Task<int> { co_return 21; }());
    co_return 2 * co_await h;
}

int main() {
    const int v = spindle::run(answer(), {.workers = 2});
    std::printf("consumer (spindle %s): %d\n", SPINDLE_VERSION_STRING, v);
    return v == 42 ? 0 : 1;
}
