// 09_gather_random: ten coroutines sleeping random times finish within the longest sleep.
//
// Retells the asyncio note's example of `gather(*[coro(i) for i in range(10)])`, each coroutine
// sleeping a random 1-5 s (here 100-500 ms). They all start together, so the whole gather takes
// about as long as the longest sleep, not the sum; they finish in the order of their sleeps, and
// gather still returns the results in the order of the coroutines.

#include <corio/core.hpp>

#include <chrono>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();
    throw std::logic_error("example broken: " + what);
}

corio::coro<int> coro(int number, std::chrono::milliseconds sleep_time) {
    co_await corio::sleep(sleep_time);
    std::cout << "number " << number << ", slept " << sleep_time.count() << " ms\n";
    co_return number;
}

corio::coro<> async_main() {
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> hundreds(1, 5);

    std::vector<corio::coro<int>> coros;
    for (int i = 0; i < 10; ++i) coros.push_back(coro(i, hundreds(random) * 100ms));

    const auto start = corio::get_running_loop().time();
    std::vector<int> numbers = co_await corio::gather(std::move(coros));
    const auto elapsed = corio::get_running_loop().time() - start;

    std::cout << "all ten done in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
              << " ms (the longest sleep is at most 500 ms)\n";
    for (int i = 0; i < 10; ++i) expect(numbers[static_cast<std::size_t>(i)] == i, "input order");
    expect(elapsed < 900ms, "the ten sleeps overlap");
}

}  // namespace

int main() { corio::run(async_main()); }
