// The loop's executor (include/corio/executor.hpp): run_in_executor and to_thread. Results of
// every kind and exceptions come back to the awaiting task on the loop's thread; a future is
// shared by two awaiters; a task cancelled while its job runs leaves at once and the job's
// result is dropped on the loop's thread; a thousand jobs at once on a bounded pool; jobs that
// call back with call_soon_threadsafe; arguments copied; run() and close() wait for running
// jobs and leave no thread behind. The name holds "threadsafe": CI also runs it under
// ThreadSanitizer (`ctest -R threadsafe`). CTest runs it once per backend (CORIO_BACKEND).
#include <corio/executor.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/shield.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/event.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::stopwatch;

namespace {

// Waits (on the loop, polling) until `flag` is set, at most `limit`; false if it never was.
corio::coro<bool> wait_until(const std::atomic<bool>& flag,
                             std::chrono::milliseconds limit = 10'000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!flag.load()) {
        if (std::chrono::steady_clock::now() > deadline) co_return false;
        co_await corio::sleep(1ms);
    }
    co_return true;
}

// Blocks a worker until `release` is set, at most `limit` (so that a failed test cannot hang).
void block_until_for(const std::atomic<bool>& release, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!release.load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(200us);
    }
}

void block_until(const std::atomic<bool>& release) { block_until_for(release, 10s); }

// The number of threads of this process.
std::size_t thread_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/self/task")) {
        ++n;
    }
    return n;
}

// A move-only result that counts its live instances (the counter is atomic: a result is built
// on a worker and destroyed on the loop's thread).
class result_probe {
public:
    explicit result_probe(std::atomic<int>& alive, int value) : alive_(&alive), value_(value) {
        ++alive;
    }
    result_probe(result_probe&& other) noexcept
        : alive_(std::exchange(other.alive_, nullptr)), value_(other.value_) {}
    result_probe& operator=(result_probe&&) = delete;
    ~result_probe() {
        if (alive_ != nullptr) --*alive_;
    }
    [[nodiscard]] int value() const noexcept { return value_; }

private:
    std::atomic<int>* alive_;
    int value_;
};

struct custom_error : std::runtime_error {
    explicit custom_error(int c) : std::runtime_error("custom " + std::to_string(c)), code(c) {}
    int code;
};

int square(int x) { return x * x; }

// --- results -------------------------------------------------------------------------------

TEST_CASE("executor: to_thread returns an int, a string, a move-only value and void",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<int> alive{0};
    corio_test::run_test([](std::atomic<int>& alive) -> corio::coro<> {
        const int i = co_await corio::to_thread([] { return 6 * 7; });
        CHECK(i == 42);
        const int s = co_await corio::to_thread(square, 9);  // a plain function and an argument
        CHECK(s == 81);

        const std::string text =
            co_await corio::to_thread([] { return std::string(100'000, 'x') + "end"; });
        CHECK(text.size() == 100'003);
        CHECK(text.substr(100'000) == "end");

        std::unique_ptr<int> owned =
            co_await corio::to_thread([] { return std::make_unique<int>(7); });
        REQUIRE(owned != nullptr);
        CHECK(*owned == 7);

        {
            result_probe probe =
                co_await corio::to_thread([&alive] { return result_probe(alive, 5); });
            CHECK(probe.value() == 5);
            CHECK(alive.load() == 1);  // moved along, never copied, one live object
        }
        CHECK(alive.load() == 0);

        std::atomic<bool> ran{false};
        co_await corio::to_thread([&ran] { ran = true; });
        CHECK(ran.load());

        // run_in_executor: the same, as a future.
        corio::future<int> f = corio::get_running_loop().run_in_executor([] { return 1; });
        const int one = co_await f;
        CHECK(one == 1);
        CHECK(f.done());
        CHECK(f.result() == 1);
    }(alive));
    CHECK(alive.load() == 0);
}

TEST_CASE("executor: jobs run on other threads, and the awaiting task resumes on the loop's",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        const auto loop_thread = std::this_thread::get_id();
        // Several jobs at once run on several workers (a fresh loop: no idle worker yet).
        std::atomic<int> running{0};
        std::atomic<int> peak{0};
        std::vector<corio::future<std::thread::id>> jobs;
        for (int i = 0; i < 4; ++i) {
            jobs.push_back(corio::to_thread([&running, &peak] {
                const int now = ++running;
                int seen = peak.load();
                while (now > seen && !peak.compare_exchange_weak(seen, now)) {
                }
                std::this_thread::sleep_for(30ms);
                --running;
                return std::this_thread::get_id();
            }));
        }
        for (auto& job : jobs) {
            const auto id = co_await job;
            CHECK(id != loop_thread);
        }
        CHECK(peak.load() >= 2);
        for (int i = 0; i < 20; ++i) {
            const auto worker =
                co_await corio::to_thread([] { return std::this_thread::get_id(); });
            CHECK(worker != loop_thread);
            CHECK(std::this_thread::get_id() == loop_thread);
        }
    }());
}

// --- exceptions ----------------------------------------------------------------------------

TEST_CASE("executor: exceptions thrown by a job reach the awaiting task, type and all",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        std::string message;
        try {
            (void)co_await corio::to_thread([]() -> int { throw std::runtime_error("boom"); });
        } catch (const std::runtime_error& e) {
            message = e.what();
        }
        CHECK(message == "boom");

        int code = 0;
        try {
            co_await corio::to_thread([] { throw custom_error(17); });  // a void job
        } catch (const custom_error& e) {
            code = e.code;
        }
        CHECK(code == 17);

        std::error_code error;
        try {
            co_await corio::to_thread(
                [] { throw std::system_error(ENOENT, std::generic_category(), "open"); });
        } catch (const std::system_error& e) {
            error = e.code();
        }
        CHECK(error == std::errc::no_such_file_or_directory);

        int thrown = 0;
        try {
            (void)co_await corio::to_thread([]() -> std::string { throw 42; });
        } catch (int value) {
            thrown = value;
        }
        CHECK(thrown == 42);

        // The future holds the exception too.
        auto f = corio::get_running_loop().run_in_executor(
            []() -> int { throw std::out_of_range("range"); });
        try {
            (void)co_await f;
        } catch (const std::out_of_range&) {
        }
        REQUIRE(f.done());
        CHECK(corio_test::holds<std::out_of_range>(f.exception()));

        // The loop goes on.
        const int after = co_await corio::to_thread([] { return 3; });
        CHECK(after == 3);
    }());
}

TEST_CASE("executor: a future from run_in_executor awaited by two tasks gives both the result",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        std::atomic<bool> release{false};
        corio::future<std::string> shared = loop.run_in_executor([&release] {
            block_until(release);
            return std::string("shared result");
        });
        auto waiter = [](corio::future<std::string> f) -> corio::coro<std::string> {
            const std::string& value = co_await f;  // an lvalue: a reference into the state
            co_return value;
        };
        auto a = corio::create_task(waiter(shared));
        auto b = corio::create_task(waiter(shared));
        co_await corio_test::yield(3);
        CHECK_FALSE(a.done());
        CHECK_FALSE(b.done());
        release = true;
        const std::string from_a = co_await a;
        const std::string from_b = co_await b;
        CHECK(from_a == "shared result");
        CHECK(from_b == "shared result");

        // And an exception, to both.
        corio::future<int> failing = loop.run_in_executor([]() -> int {
            std::this_thread::sleep_for(10ms);
            throw std::logic_error("for both");
        });
        auto catcher = [](corio::future<int> f) -> corio::coro<std::string> {
            try {
                (void)co_await f;
            } catch (const std::logic_error& e) {
                co_return e.what();
            }
            co_return "nothing thrown";
        };
        auto c = corio::create_task(catcher(failing));
        auto d = corio::create_task(catcher(failing));
        const std::string from_c = co_await c;
        const std::string from_d = co_await d;
        CHECK(from_c == "for both");
        CHECK(from_d == "for both");
    }());
}

// --- cancellation --------------------------------------------------------------------------

TEST_CASE("executor: cancelling the task awaiting a running job: the task leaves at once, the "
          "job finishes, its result is dropped on the loop's thread, nothing leaks",
          "[executor][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<int> alive{0};
    std::atomic<bool> job_finished{false};
    corio_test::run_test(
        [](std::atomic<int>& alive, std::atomic<bool>& job_finished) -> corio::coro<> {
            std::atomic<bool> started{false};
            std::atomic<bool> release{false};
            auto job = [&alive, &started, &release, &job_finished] {
                started = true;
                block_until(release);
                job_finished = true;
                return result_probe(alive, 1);
            };
            auto waiter = corio::create_task([](decltype(job) job) -> corio::coro<int> {
                result_probe r = co_await corio::to_thread(std::move(job));
                co_return r.value();
            }(job));
            const bool job_started = co_await wait_until(started);
            REQUIRE(job_started);

            stopwatch cancel_time;
            waiter.cancel();
            bool cancelled = false;
            try {
                (void)co_await waiter;
            } catch (const corio::cancelled_error&) {
                cancelled = true;
            }
            CHECK(cancelled);
            CHECK(waiter.cancelled());
            CHECK(cancel_time.elapsed() < 5s);
            CHECK_FALSE(job_finished.load());  // the task did not wait for the job

            release = true;
            const bool finished = co_await wait_until(job_finished);
            CHECK(finished);
            // Its result arrives on the loop and is dropped there.
            const auto deadline = std::chrono::steady_clock::now() + 10s;
            while (alive.load() != 0 && std::chrono::steady_clock::now() < deadline) {
                co_await corio::sleep(1ms);
            }
            CHECK(alive.load() == 0);
        }(alive, job_finished));
    CHECK(job_finished.load());
    CHECK(alive.load() == 0);
}

TEST_CASE("executor: wait_for on a slow job times out, and the job still completes",
          "[executor][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<bool> finished{false};
    corio_test::run_test([](std::atomic<bool>& finished) -> corio::coro<> {
        bool timed_out = false;
        try {
            (void)co_await corio::wait_for(corio::to_thread([&finished] {
                                               std::this_thread::sleep_for(100ms);
                                               finished = true;
                                               return 1;
                                           }),
                                           10ms);
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        CHECK_FALSE(finished.load());
    }(finished));
    // run() waited for the job before closing the loop.
    CHECK(finished.load());
}

// --- many jobs -----------------------------------------------------------------------------

TEST_CASE("executor: 1000 concurrent jobs from 1000 tasks, on a bounded number of workers",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        std::atomic<int> running{0};
        std::atomic<int> peak{0};
        auto one = [](int i, std::atomic<int>& running,
                      std::atomic<int>& peak) -> corio::coro<long> {
            const long r = co_await corio::to_thread([i, &running, &peak] {
                const int now = ++running;
                int seen = peak.load();
                while (now > seen && !peak.compare_exchange_weak(seen, now)) {
                }
                if (i % 50 == 0) std::this_thread::sleep_for(1ms);
                --running;
                return static_cast<long>(i) * i;
            });
            co_return r;
        };
        std::vector<corio::task<long>> tasks;
        for (int i = 0; i < 1000; ++i) tasks.push_back(corio::create_task(one(i, running, peak)));
        long sum = 0;
        for (auto& t : tasks) sum += co_await t;
        CHECK(sum == 332'833'500L);  // the sum of i*i for i < 1000

        const std::size_t limit = corio::detail::thread_pool::default_workers();
        const std::size_t workers = corio::detail::executor_of(loop).workers();
        CAPTURE(limit, workers, peak.load());
        CHECK(workers >= 1);
        CHECK(workers <= limit);
        CHECK(static_cast<std::size_t>(peak.load()) <= limit);

        // Jobs that all block at once: never more running than the limit, all of them done.
        std::atomic<bool> release{false};
        running = 0;
        peak = 0;
        std::vector<corio::future<int>> blocked;
        for (int i = 0; i < 64; ++i) {
            blocked.push_back(corio::to_thread([&running, &peak, &release] {
                const int now = ++running;
                int seen = peak.load();
                while (now > seen && !peak.compare_exchange_weak(seen, now)) {
                }
                block_until(release);
                --running;
                return 1;
            }));
        }
        co_await corio::sleep(50ms);
        release = true;
        int done = 0;
        for (auto& f : blocked) done += co_await f;
        CHECK(done == 64);
        CHECK(static_cast<std::size_t>(peak.load()) <= limit);
        CHECK(corio::detail::executor_of(loop).workers() <= limit);
    }());
}

// --- talking back to the loop --------------------------------------------------------------

TEST_CASE("executor: a job that calls loop.call_soon_threadsafe itself", "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        const auto loop_thread = std::this_thread::get_id();
        corio::event progress;  // touched on the loop's thread only
        std::vector<int> steps;
        bool callbacks_on_loop_thread = true;
        const int result = co_await corio::to_thread([&] {
            for (int step = 1; step <= 3; ++step) {
                loop.call_soon_threadsafe([&, step] {
                    if (std::this_thread::get_id() != loop_thread) callbacks_on_loop_thread = false;
                    steps.push_back(step);
                    if (step == 3) progress.set();
                });
            }
            return 99;
        });
        CHECK(result == 99);
        // Posted before the job's result, so run before the task resumed (FIFO).
        std::vector<int> expected{1, 2, 3};
        CHECK(steps == expected);
        CHECK(progress.is_set());
        CHECK(callbacks_on_loop_thread);
    }());
}

// --- arguments -----------------------------------------------------------------------------

TEST_CASE("executor: to_thread copies its arguments (no dangling reference to the caller's "
          "variables or temporaries); std::ref passes a reference",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        std::atomic<bool> go{false};
        auto describe = [&go](const std::string& s, const std::vector<int>& v) {
            block_until(go);  // reads its arguments only after the caller changed its own
            return s + ":" + std::to_string(v.size());
        };
        corio::future<std::string> from_lvalues;
        corio::future<std::string> from_temporaries;
        {
            std::string text = "original";
            std::vector<int> numbers{1, 2, 3};
            from_lvalues = corio::to_thread(describe, text, numbers);
            from_temporaries =
                corio::to_thread(describe, std::string(1000, 't'), std::vector<int>(7));
            text = "changed";
            numbers.clear();
        }  // and destroyed
        go = true;
        const std::string a = co_await from_lvalues;
        const std::string b = co_await from_temporaries;
        CHECK(a == "original:3");
        CHECK(b == std::string(1000, 't') + ":7");

        // The function object is copied too.
        std::string suffix = "!";
        auto job = [suffix](int x) { return std::to_string(x) + suffix; };
        corio::future<std::string> f = corio::to_thread(job, 5);
        suffix = "?";
        const std::string c = co_await f;
        CHECK(c == "5!");

        // std::ref, as with std::thread: the job sees (and changes) the caller's variable.
        int counter = 10;
        co_await corio::to_thread([](int& n) { n += 5; }, std::ref(counter));
        CHECK(counter == 15);
    }());
}

// --- shutting down -------------------------------------------------------------------------

TEST_CASE("executor: corio::run returns only after running jobs finished, and leaves no worker "
          "thread behind",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::size_t threads_before = thread_count();
    std::atomic<int> finished{0};
    std::atomic<bool> delivered{false};
    corio::run([](std::atomic<int>& finished, std::atomic<bool>& delivered) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        // Fire and forget: nobody awaits these.
        for (int i = 0; i < 4; ++i) {
            (void)loop.run_in_executor([&finished] {
                std::this_thread::sleep_for(100ms);
                ++finished;
            });
        }
        // One awaited, to be sure the workers exist while main returns.
        co_await corio::to_thread([] {});
        CHECK(thread_count() > 1);
        auto f = loop.run_in_executor([&finished] {
            std::this_thread::sleep_for(150ms);
            ++finished;
            return 1;
        });
        (void)f.add_done_callback([&delivered](const corio::future<int>&) { delivered = true; });
        co_return;  // main ends while all five jobs still run
    }(finished, delivered));
    CHECK(finished.load() == 5);
    CHECK_FALSE(delivered.load());  // its result came after the loop stopped: dropped
    CHECK(thread_count() == threads_before);
}

TEST_CASE("executor: loop.close() waits for running jobs; a closed loop refuses new ones",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<bool> finished{false};
    {
        auto loop = corio::new_event_loop();
        // A task awaiting a job the loop never delivers: its frame is destroyed at close.
        auto waiting = loop->create_task([](std::atomic<bool>& finished) -> corio::coro<int> {
            co_return co_await corio::to_thread([&finished] {
                std::this_thread::sleep_for(100ms);
                finished = true;
                return 1;
            });
        }(finished));
        loop->run_until_complete([]() -> corio::coro<> { co_await corio::sleep(10ms); }());
        CHECK_FALSE(finished.load());
        loop->close();
        CHECK(finished.load());
        CHECK(waiting.cancelled());
        CHECK_THROWS_AS(loop->run_in_executor([] { return 1; }), std::runtime_error);
    }
}

TEST_CASE("executor: each loop has its own executor; the result goes back to the loop that "
          "asked",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    // Two loops on two threads, each using its executor at the same time.
    // (Catch2's macros are not thread-safe: the threads only record what they saw.)
    std::atomic<long> totals[2] = {0, 0};
    std::atomic<bool> wrong_thread{false};
    auto run_one = [&totals, &wrong_thread](int which) {
        corio::run([](std::atomic<long>& total, std::atomic<bool>& wrong_thread) -> corio::coro<> {
            const auto loop_thread = std::this_thread::get_id();
            for (int i = 0; i < 200; ++i) {
                const long v = co_await corio::to_thread([i] { return static_cast<long>(i); });
                if (std::this_thread::get_id() != loop_thread) wrong_thread = true;
                total += v;
            }
        }(totals[which], wrong_thread));
    };
    std::thread other(run_one, 1);
    run_one(0);
    other.join();
    CHECK(totals[0].load() == 19'900);
    CHECK(totals[1].load() == 19'900);
    CHECK_FALSE(wrong_thread.load());
}

// A job that throws corio::cancelled_error (e.g. a function that itself awaited something on
// another loop and was cancelled there). asyncio's to_thread raises CancelledError in the
// awaiting task; a future cannot hold a cancelled_error, so executor_job::deliver cancels the
// future instead (it once passed it to set_exception, which refused it: the awaiter hung).
TEST_CASE("executor: a job throwing cancelled_error cancels its future", "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::exception_log log;
    bool cancelled = false;
    bool timed_out = false;
    corio::run(
        [](corio_test::exception_log& log, bool& cancelled, bool& timed_out) -> corio::coro<> {
            log.install(corio::get_running_loop());
            auto f = corio::to_thread([] { throw corio::cancelled_error("from the job"); });
            try {
                co_await corio::wait_for(corio::shield(f), 2s);
            } catch (const corio::cancelled_error&) {
                cancelled = true;
            } catch (const corio::timeout_error&) {
                timed_out = true;
            }
            if (!f.done()) f.cancel();
        }(log, cancelled, timed_out));
    CHECK_FALSE(timed_out);
    CHECK(cancelled);
    CHECK(log.size() == 0);
}

// A burst of jobs submitted while k workers are idle must start new workers (up to
// max_workers), not queue behind those k: a job waiting for a later one (through a
// std::promise, a lock, a pipe) would otherwise wait forever although free worker slots remain.
// asyncio's ThreadPoolExecutor takes one idle slot per submission
// (`_idle_semaphore.acquire(timeout=0)`); thread_pool::submit promises each idle worker one job.
TEST_CASE("executor: two jobs submitted together while one worker is idle run at the same time",
          "[executor]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    bool second_seen = false;
    corio::run([](bool& second_seen) -> corio::coro<> {
        co_await corio::to_thread([] {});  // one worker, idle from now on
        co_await corio::sleep(20ms);
        std::atomic<bool> second_ran{false};
        // The first job waits (at most 2 s) for the second to start.
        auto first = corio::to_thread([&second_ran] {
            block_until_for(second_ran, 2s);
            return second_ran.load();
        });
        auto second = corio::to_thread([&second_ran] { second_ran = true; });
        second_seen = co_await first;
        co_await second;
    }(second_seen));
    CHECK(second_seen);
}

}  // namespace
