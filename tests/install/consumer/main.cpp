#include <spindle/spindle.hpp>

#include <cstdio>

spindle::Task<int> answer() {
    auto h = spindle::spawn([]() -> spindle::Task<int> { co_return 21; }());
    co_return 2 * co_await h;
}

int main() {
    const int v = spindle::run(answer(), {.workers = 2});
    std::printf("consumer: %d\n", v);
    return v == 42 ? 0 : 1;
}
