// 08_gather: run several coroutines at once and collect their results.
//
// Retells the asyncio note's `asyncio.gather()` section: two coroutines sleeping 1 s and 0.9 s
// (here 100 ms and 90 ms) gathered in one `co_await`. `corio::gather(a, b)` is
// `asyncio.gather(a, b)`: it wraps each coroutine in a task at once, so they run concurrently,
// and gives back their results in argument order (a `std::tuple`), whatever order they finish
// in. The note's `gather(*[coro1(), coro2()])` is the range form: `gather(std::move(vector))`.

#include <corio/core.hpp>

#include <chrono>
#include <iostream>
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

corio::coro<std::string> coro1() {
    co_await corio::sleep(100ms);
    std::cout << "coro1 finished\n";
    co_return "one";
}

corio::coro<std::string> coro2() {
    co_await corio::sleep(90ms);
    std::cout << "coro2 finished\n";  // printed first: it sleeps less
    co_return "two";
}

corio::coro<> async_main() {
    const auto start = corio::get_running_loop().time();

    // Both run concurrently; the results come back in argument order.
    auto [first, second] = co_await corio::gather(coro1(), coro2());
    std::cout << "gather gave: " << first << ", " << second << '\n';
    expect(first == "one" && second == "two", "results in argument order");

    // The unpacked-list form: a vector of coroutines gives a vector of results.
    std::vector<corio::coro<std::string>> coros;
    coros.push_back(coro1());
    coros.push_back(coro2());
    std::vector<std::string> results = co_await corio::gather(std::move(coros));
    std::cout << "gather of a vector gave " << results.size() << " results\n";

    const auto elapsed = corio::get_running_loop().time() - start;
    std::cout << "both gathers took "
              << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
              << " ms: each one waits for its slowest coroutine, not for the sum\n";
    expect(elapsed < 350ms, "gathered coroutines overlap");
}

}  // namespace

int main() { corio::run(async_main()); }
