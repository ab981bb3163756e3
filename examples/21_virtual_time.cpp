// 21_virtual_time: an hour of retries, tested in milliseconds.
//
// Beyond the note. Code that waits (retries with backoff, timeouts, leases, rate limits) is
// slow to test on a real clock, and flaky when a test shortens its delays. With
// `corio::run(main, {.virtual_time = true})` (Tokio's `time::pause`) the loop's clock stands
// still while any task can run and, when none can, jumps straight to the next timer: sleeps,
// `wait_for` timeouts and `call_later` all follow it, and `loop.time()` reads it, so each
// event happens at an exact, repeatable virtual time. `co_await corio::advance(d)` (Tokio's
// `time::advance`) moves the clock by hand and returns once the timers due have fired.
//
// The code under test retries a call with exponential backoff (1 s, 2 s, 4 s... at most
// 5 min), gives each attempt 30 s, and is itself given an hour. Three checks, each printing
// the virtual time of every event:
// 1. a service that fails twice, hangs once, fails again, then answers;
// 2. a service that never recovers: the caller gives up after exactly one hour;
// 3. by hand with `advance`: a cache entry that expires after 30 minutes idle.
// The whole run takes well under a second of real time (the example checks that).

#include <corio/corio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
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

// "t=  37.150 s": the virtual time since `start`.
std::string stamp(corio::event_loop::time_point start) {
    const std::chrono::duration<double> t = corio::get_running_loop().time() - start;
    char text[32];
    std::snprintf(text, sizeof text, "t=%8.3f s", t.count());
    return text;
}

// --- the code under test -------------------------------------------------------------------

// A remote service: each call takes 50 ms; the first `failures` calls fail, and call number
// `hangs_on` never answers (a stuck connection). `failures < 0`: it never recovers.
struct flaky_service {
    int failures = 0;
    int hangs_on = 0;
    int calls = 0;

    corio::coro<std::string> call() {
        ++calls;
        if (calls == hangs_on) co_await corio::sleep(24h);
        co_await corio::sleep(50ms);
        if (failures < 0 || failures-- > 0) throw std::runtime_error("503 Service Unavailable");
        co_return "42";
    }
};

// Calls `service` until it answers: each attempt within 30 s, then waits 1 s, 2 s, 4 s...
// (at most 5 minutes) before the next one. Prints each attempt when `verbose`.
corio::coro<std::string> call_with_retries(flaky_service& service, bool verbose) {
    const auto start = corio::get_running_loop().time();
    std::chrono::seconds backoff = 1s;
    for (int attempt = 1;; ++attempt) {
        std::string outcome;
        try {
            std::string answer = co_await corio::wait_for(service.call(), 30s);
            if (verbose) {
                std::cout << "  " << stamp(start) << "  attempt " << attempt << ": \"" << answer
                          << "\"\n";
            }
            co_return answer;
        } catch (const corio::timeout_error&) {
            outcome = "timed out after 30 s";
        } catch (const std::runtime_error& e) {
            outcome = std::string("failed (") + e.what() + ")";
        }
        if (verbose) {
            std::cout << "  " << stamp(start) << "  attempt " << attempt << ": " << outcome
                      << ", next in " << backoff.count() << " s\n";
        }
        co_await corio::sleep(backoff);
        backoff = std::min(backoff * 2, std::chrono::seconds(5min));
    }
}

// --- 1 and 2: the retries, on virtual time -------------------------------------------------

corio::coro<> recovers() {
    corio::event_loop& loop = corio::get_running_loop();
    const auto start = loop.time();
    flaky_service service{.failures = 3, .hangs_on = 3};
    const std::string answer = co_await corio::wait_for(call_with_retries(service, true), 1h);
    // 0.05 + 1 + 0.05 + 2 + 30 (the hung call) + 4 + 0.05 + 8 + 0.05 s, to the nanosecond.
    expect(answer == "42" && service.calls == 5, "the fifth call answers");
    expect(loop.time() - start == 45s + 200ms, "the answer comes at exactly t = 45.2 s");
}

corio::coro<> never_recovers() {
    corio::event_loop& loop = corio::get_running_loop();
    const auto start = loop.time();
    flaky_service service{.failures = -1};
    try {
        (void)co_await corio::wait_for(call_with_retries(service, false), 1h);
        expect(false, "a service that never answers cannot succeed");
    } catch (const corio::timeout_error&) {
        std::cout << "  " << stamp(start) << "  gave up after " << service.calls
                  << " attempts: corio::timeout_error\n";
    }
    expect(loop.time() - start == 1h, "the caller gives up at exactly one hour");
    // 1 + 2 + ... + 256 s of backoff, then every 5 min: the 20th attempt is the last.
    expect(service.calls == 20, "20 attempts in the hour");
}

// --- 3: stepping the clock by hand ---------------------------------------------------------

corio::coro<> expire_after(std::chrono::minutes idle, bool& expired) {
    co_await corio::sleep(idle);
    expired = true;
}

corio::coro<> cache_expiry() {
    const auto start = corio::get_running_loop().time();
    bool expired = false;
    corio::task<> entry = corio::create_task(expire_after(30min, expired), "cache-entry");
    co_await corio::sleep(0s);  // the entry starts: its 30 minutes count from now

    co_await corio::advance(29min);
    std::cout << "  " << stamp(start) << "  advance(29min): the entry is "
              << (expired ? "expired" : "still cached") << '\n';
    expect(!expired, "not expired after 29 minutes");

    co_await corio::advance(1min);
    std::cout << "  " << stamp(start) << "  advance(1min): the entry is "
              << (expired ? "expired" : "still cached") << '\n';
    expect(expired, "expired after 30 minutes, before advance() returns");
    co_await entry;
}

}  // namespace

int main() {
    const auto real_start = std::chrono::steady_clock::now();
    corio::run_options options;
    options.virtual_time = true;

    std::cout << "1. a service that fails twice, hangs once, fails again, then answers:\n";
    corio::run(recovers(), options);

    std::cout << "2. a service that never recovers, called within one hour:\n";
    corio::run(never_recovers(), options);

    std::cout << "3. advance() by hand: a cache entry that expires after 30 minutes idle:\n";
    corio::run(cache_expiry(), options);

    const auto real = std::chrono::steady_clock::now() - real_start;
    expect(real < 1s, "an hour and a half of virtual time takes well under a second");
    std::cout << "about 1.5 hours of virtual time in "
              << std::chrono::duration_cast<std::chrono::microseconds>(real).count()
              << " us of real time\n";
}
