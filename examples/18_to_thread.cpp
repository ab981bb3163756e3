// 18_to_thread: a CPU-bound job sent to a thread while the loop keeps ticking.
//
// Beyond the note. One loop runs on one thread: a coroutine that computes for a second without
// a `co_await` stops every other task for that second. `co_await corio::to_thread(fn, args...)`
// is asyncio's `await asyncio.to_thread(fn, *args)`: `fn(args...)` runs on a worker thread of
// the loop's executor (a pool it starts on first use), the awaiting task waits without blocking
// the loop, and the result (or the exception) comes back to it, on the loop's thread.
//
// Here the job counts the primes below 1,000,000 by trial division, while a heartbeat task
// prints every 20 ms. The heartbeat keeps beating during the count; counted inline (at the
// end, for comparison) it stops dead. The arguments are copied to the worker, as std::thread
// copies them: the job never sees a variable of the caller change or die.

#include <corio/corio.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

// Plain, blocking, CPU-bound C++: no coroutine in sight.
std::uint64_t count_primes(std::uint64_t limit) {
    std::uint64_t count = 0;
    for (std::uint64_t n = 2; n < limit; ++n) {
        bool prime = true;
        for (std::uint64_t d = 2; d * d <= n; ++d) {
            if (n % d == 0) {
                prime = false;
                break;
            }
        }
        if (prime) ++count;
    }
    return count;
}

// Prints a beat every 20 ms until cancelled; counts the beats.
corio::coro<> heartbeat(int& beats) {
    for (;;) {
        co_await corio::sleep(20ms);
        ++beats;
        std::cout << "  heartbeat " << beats << '\n';
    }
}

corio::coro<> async_main() {
    auto& loop = corio::get_running_loop();
    int beats = 0;
    corio::task<> heart = corio::create_task(heartbeat(beats));

    const std::uint64_t limit = 1'000'000;
    const auto loop_thread = std::this_thread::get_id();
    std::cout << "counting the primes below " << limit << " on a worker thread...\n";
    const auto start = loop.time();
    const std::uint64_t primes = co_await corio::to_thread(count_primes, limit);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(loop.time() - start);
    const int beats_during = beats;
    std::cout << primes << " primes, in " << took.count() << " ms; the heartbeat beat "
              << beats_during << " times meanwhile\n";
    expect(primes == 78'498, "there are 78,498 primes below 1,000,000");
    expect(std::this_thread::get_id() == loop_thread, "the task resumes on the loop's thread");
    // One beat per 20 ms is ideal; a loaded machine gives fewer, but never none.
    expect(took < 100ms || beats_during >= 2, "the loop keeps ticking while the job runs");

    // Exceptions cross back too.
    try {
        co_await corio::to_thread([] { throw std::runtime_error("no primes today"); });
        expect(false, "the exception is rethrown in the awaiting task");
    } catch (const std::runtime_error& e) {
        std::cout << "the job threw: " << e.what() << '\n';
    }

    // The same count inline, on the loop's thread: nothing else runs until it is done.
    std::cout << "now counting inline, on the loop's thread...\n";
    const int beats_before = beats;
    const auto inline_start = loop.time();
    const std::uint64_t again = count_primes(limit);
    const auto inline_took =
        std::chrono::duration_cast<std::chrono::milliseconds>(loop.time() - inline_start);
    std::cout << again << " primes, in " << inline_took.count() << " ms; the heartbeat beat "
              << beats - beats_before << " times meanwhile\n";
    expect(beats == beats_before, "a computing coroutine blocks the whole loop");

    heart.cancel();
    try {
        co_await heart;
    } catch (const corio::cancelled_error&) {
    }
}

}  // namespace

int main() { corio::run(async_main()); }
