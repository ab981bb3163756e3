// 01_coroutines: coroutine functions, coroutine objects, and the loop that runs them.
//
// Retells the section "работа с корутинами" of the asyncio note (see examples/README.md):
// - `async def f()` is a function returning `corio::coro<T>` (a coroutine function);
// - calling it only makes the coroutine object: nothing of its body runs yet;
// - `corio::run(async_main())` is `asyncio.run(main())`: it starts a loop, runs the coroutine
//   to the end and closes the loop;
// - `co_await custom_coro()` is `await custom_coro()`: the body runs inline, in the caller;
// - `corio::get_running_loop()` is `asyncio.get_running_loop()`, and only works inside the loop.

#include <corio/core.hpp>

#include <iostream>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

bool custom_coro_started = false;

// async def custom_coro(): await asyncio.sleep(...); return 42
corio::coro<int> custom_coro() {
    custom_coro_started = true;
    co_await corio::sleep(10ms);
    std::cout << "custom_coro() finished\n";
    co_return 42;
}

// `main` is taken by C++ itself, so the coroutine that plays asyncio's main() gets another name.
corio::coro<> async_main() {
    std::cout << "async_main() runs; awaiting custom_coro()\n";
    const int answer = co_await custom_coro();
    std::cout << "custom_coro() returned " << answer << '\n';

    corio::event_loop& loop = corio::get_running_loop();
    std::cout << "running loop: backend=" << loop.backend_name() << " is_running=" << std::boolalpha
              << loop.is_running() << '\n';
}

}  // namespace

int main() {
    {
        // The coroutine object: its frame exists, its body has not started. Dropping it unawaited
        // just frees the frame (Python would warn "coroutine was never awaited").
        corio::coro<int> coroutine = custom_coro();
        expect(!custom_coro_started, "calling a coroutine function must not run its body");
        std::cout << "custom_coro() called: coroutine object made, body not started\n";
    }

    // No loop runs yet, so there is none to get (asyncio raises RuntimeError the same way).
    try {
        (void)corio::get_running_loop();
        expect(false, "get_running_loop() outside a loop must throw");
    } catch (const std::runtime_error& e) {
        std::cout << "get_running_loop() outside the loop throws: " << e.what() << '\n';
    }

    // asyncio.run(main()): called once, at the top of the program.
    corio::run(async_main());
    expect(custom_coro_started, "co_await must have run custom_coro()");
    std::cout << "corio::run() returned: the loop is closed\n";
}
