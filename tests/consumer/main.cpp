// The smallest corio program: used by tests/consumer and tests/subdirectory.
#include <corio/corio.hpp>

#include <chrono>

int main() {
    return corio::run([]() -> corio::coro<int> {
        co_await corio::sleep(std::chrono::milliseconds(1));
        co_return 0;
    }());
}
