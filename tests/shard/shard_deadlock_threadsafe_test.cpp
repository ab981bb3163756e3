// Deadlock detection across shards (shard/detail/shard_group.hpp): with `detect_deadlock` (on
// in debug mode) `run_sharded` ends with `deadlock_error` when every shard waits and only
// another shard could wake one, naming each shard's waiting tasks and what they wait on (a
// call to another shard included); the mains are cancelled, so nothing is left behind. No false
// report while calls go back and forth, while a shard sleeps on a timer, or while the other
// shards wait for a busy one; and none when detection is off. CTest runs it once per backend
// (CORIO_BACKEND); CI's ThreadSanitizer stage runs it too.
#include "support/catch.hpp"

#include <corio/debug/report_call_graphs.hpp>  // the call graph in the reports
#include <corio/errors.hpp>
#include <corio/shard/run_sharded.hpp>
#include <corio/shard/submit_to.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/event.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

corio::shard_options with_detection(std::size_t shards) {
    corio::shard_options options;
    options.shards = shards;
    options.loop.detect_deadlock = true;
    return options;
}

std::size_t index_of(corio::shard_id shard) { return static_cast<std::size_t>(shard); }

}  // namespace

TEST_CASE("every shard waiting on another is a deadlock_error naming them all",
          "[shard][deadlock]") {
    std::atomic<bool> remote_cancelled{false};
    std::string report;
    try {
        corio::run_sharded(
            [&](corio::shard_id id) -> corio::coro<> {
                if (index_of(id) != 0) co_return;  // shard 1 serves, and waits for shard 0
                co_await corio::submit_to(corio::shard_id{1}, [&]() -> corio::coro<> {
                    corio::event never;
                    try {
                        co_await never.wait();
                    } catch (const corio::cancelled_error&) {
                        remote_cancelled = true;
                        throw;
                    }
                });
            },
            with_detection(2));
        FAIL("run_sharded returned");
    } catch (const corio::deadlock_error& e) {
        report = e.what();
    }
    CHECK(report.find("every shard waits") != std::string::npos);
    CHECK(report.find("shard 0:") != std::string::npos);
    CHECK(report.find("shard 1:") != std::string::npos);
    CHECK(report.find("waits in corio::submit_to(shard 1), awaiting its answer") !=
          std::string::npos);
    CHECK(report.find("waits in corio::event::wait") != std::string::npos);
    CHECK(report.find("of shard 1 (of 2)") != std::string::npos);  // the call graph's title
    // The mains were cancelled, and the cancellation crossed to the remote task.
    CHECK(remote_cancelled);
}

TEST_CASE("three shards in a cycle of calls are a deadlock too", "[shard][deadlock]") {
    // Shard i calls shard i+1, whose function waits for an event nobody sets.
    CHECK_THROWS_AS(corio::run_sharded(
                        [](corio::shard_id id) -> corio::coro<> {
                            const std::size_t next = (index_of(id) + 1) % corio::shard_count();
                            co_await corio::submit_to(corio::shard_id{next}, []() -> corio::coro<> {
                                corio::event never;
                                co_await never.wait();
                            });
                        },
                        with_detection(3)),
                    corio::deadlock_error);
}

TEST_CASE("no deadlock is reported while shards work, sleep or wait for a busy one",
          "[shard][deadlock]") {
    auto results = corio::run_sharded(
        [](corio::shard_id id) -> corio::coro<int> {
            const corio::shard_id other{(index_of(id) + 1) % corio::shard_count()};
            int total = 0;
            for (int i = 0; i < 20'000; ++i)
                total += co_await corio::submit_to(other, [] { return 1; });
            for (int i = 0; i < 100; ++i) {
                total += co_await corio::submit_to(other, []() -> corio::coro<int> {
                    co_await corio::sleep(0s);
                    co_return 1;
                });
            }
            // One shard waits on a timer, the other for its answer: a wait, not a deadlock.
            if (index_of(id) == 0) {
                total += co_await corio::submit_to(other, []() -> corio::coro<int> {
                    co_await corio::sleep(30ms);
                    co_return 1;
                });
            }
            // Shard 1 finishes first and waits for shard 0's main (busy on a thread's sleep).
            if (index_of(id) == 0) std::this_thread::sleep_for(20ms);
            co_return total;
        },
        with_detection(2));
    REQUIRE(results.size() == 2);
    CHECK(results[0] == 20'101);
    CHECK(results[1] == 20'100);
}

TEST_CASE("with detection off a shard deadlock is not reported", "[shard][deadlock]") {
    // Only another thread can end this wait, as far as the shards know: with detection off
    // it is a wait like any other, ended when the thread sets the event.
    std::thread waker;
    corio::run_sharded(
        [&](corio::shard_id id) -> corio::coro<> {
            if (index_of(id) != 0) co_return;
            co_await corio::submit_to(corio::shard_id{1}, [&]() -> corio::coro<> {
                corio::event later;
                corio::event_loop* loop = &corio::get_running_loop();
                waker = std::thread([&later, loop] {
                    std::this_thread::sleep_for(50ms);
                    loop->call_soon_threadsafe([&later] { later.set(); });
                });
                co_await later.wait();
                // Joined here, while the loop lives: the thread may still be inside its wake-up.
                waker.join();
            });
        },
        {.shards = 2, .loop = {.detect_deadlock = false}});
    CHECK_FALSE(waker.joinable());
}
