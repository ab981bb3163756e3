// corio::race (include/corio/race.hpp): the first awaitable to finish wins (its value and index,
// or its exception), every loser is cancelled and awaited before race returns, a loser's
// exception is never reported, a ready awaiter wins at once and the later arguments never
// start, cancellation from outside and from a timeout, ranges, another library's awaiter, and
// queue getters that win or lose without losing an item.
#include <corio/race.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/event.hpp>
#include <corio/sync/queue.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct cleanup_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

corio::coro<int> value_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

corio::coro<std::string> text_after(std::chrono::milliseconds delay, std::string text) {
    co_await corio::sleep(delay);
    co_return text;
}

corio::coro<void> nothing_after(std::chrono::milliseconds delay) { co_await corio::sleep(delay); }

corio::coro<int> fail_after(std::chrono::milliseconds delay, std::string message) {
    co_await corio::sleep(delay);
    throw test_error(message);
}

corio::coro<int> fail_at_once(std::string message) {
    throw test_error(message);
    co_return 0;
}

/// Records that it started, then returns at once.
corio::coro<int> records_start(recorder& rec, std::string name) {
    rec(name + " started");
    co_return 1;
}

/// Sleeps for long; recording its cancellation.
corio::coro<int> sleeper(std::chrono::milliseconds delay, recorder& rec, std::string name) {
    try {
        co_await corio::sleep(delay);
    } catch (const corio::cancelled_error&) {
        rec(name + " cancelled");
        throw;
    }
    rec(name + " finished");
    co_return 1;
}

/// Sleeps for long; when cancelled, cleans up for 20 ms (another sleep), then ends cancelled.
corio::coro<int> slow_cleanup(recorder& rec, std::string name) {
    try {
        co_await corio::sleep(10s);
        rec(name + " finished");
        co_return 0;
    } catch (const corio::cancelled_error&) {
        rec(name + " cancelled");
    }
    co_await corio::sleep(20ms);
    rec(name + " cleanup done");
    throw corio::cancelled_error();
}

/// Sleeps for long; fails with another exception while handling its cancellation.
corio::coro<int> fail_on_cancel(recorder& rec, std::string message) {
    try {
        co_await corio::sleep(10s);
    } catch (const corio::cancelled_error&) {
        rec("fail_on_cancel cancelled");
        throw cleanup_error(message);
    }
    co_return 0;
}

/// Another library's awaiter: knows nothing of corio; a loop timer resumes the handle it gets.
struct timer_awaiter {
    std::chrono::milliseconds delay;
    int value;
    recorder* rec;

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const {
        recorder* r = rec;
        corio::get_running_loop().call_later(delay, [h, r] {
            (*r)("awaiter resumed");
            h.resume();
        });
    }
    int await_resume() const noexcept { return value; }
};

/// Another library's awaiter that can be told to stop early (`await_cancel`).
struct stoppable_awaiter {
    std::chrono::milliseconds delay;
    recorder* rec;
    std::coroutine_handle<> handle{};
    corio::timer_handle timer{};
    bool stopped = false;

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        handle = h;
        timer = corio::get_running_loop().call_later(delay, [this] { handle.resume(); });
    }
    void await_cancel() {
        if (stopped) return;
        stopped = true;
        (*rec)("await_cancel");
        timer.cancel();
        corio::get_running_loop().call_soon([this] { handle.resume(); });
    }
    int await_resume() const noexcept { return stopped ? -1 : 1; }
};

bool only_current_task_left() {
    std::vector<corio::task<>> tasks = corio::all_tasks();
    return tasks.size() == 1 && tasks[0] == corio::current_task();
}

// -- winner value and index ------------------------------------------------------------------

corio::coro<void> winner_main() {
    corio_test::stopwatch watch;
    auto second = co_await corio::race(value_after(30ms, 1), text_after(1ms, "two"));
    static_assert(std::is_same_v<decltype(second), std::variant<int, std::string>>);
    REQUIRE(second.index() == 1);
    CHECK(std::get<1>(second) == "two");

    auto first = co_await corio::race(value_after(1ms, 1), text_after(10s, "two"));
    REQUIRE(first.index() == 0);
    CHECK(std::get<0>(first) == 1);
    CHECK(watch.elapsed() < 5s);  // the 10 s loser was cancelled, not waited for

    // A void winner is a monostate.
    auto nothing = co_await corio::race(value_after(10s, 1), nothing_after(1ms));
    static_assert(std::is_same_v<decltype(nothing), std::variant<int, std::monostate>>);
    CHECK(nothing.index() == 1);
    CHECK(std::holds_alternative<std::monostate>(nothing));

    // Three runners, the middle one wins.
    auto middle =
        co_await corio::race(value_after(10s, 1), value_after(2ms, 2), nothing_after(10s));
    REQUIRE(middle.index() == 1);
    CHECK(std::get<1>(middle) == 2);

    // One runner.
    auto alone = co_await corio::race(value_after(1ms, 5));
    static_assert(std::is_same_v<decltype(alone), std::variant<int>>);
    CHECK(std::get<0>(alone) == 5);

    // A move-only result.
    auto boxed = co_await corio::race(
        []() -> corio::coro<std::unique_ptr<int>> { co_return std::make_unique<int>(6); }(),
        value_after(10s, 1));
    REQUIRE(boxed.index() == 0);
    REQUIRE(std::get<0>(boxed) != nullptr);
    CHECK(*std::get<0>(boxed) == 6);

    CHECK(watch.elapsed() < 5s);
    CHECK(corio::current_task().cancelling() == 0);
    CHECK(only_current_task_left());
}

corio::coro<void> duplicate_types_main() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::queue<int> q1;
    corio::queue<int> q2;
    loop.call_later(2ms, [&q2] { q2.put_nowait(7); });
    auto got = co_await corio::race(q1.get(), q2.get());
    static_assert(std::is_same_v<decltype(got), std::variant<int, int>>);
    REQUIRE(got.index() == 1);
    CHECK(std::get<1>(got) == 7);
    CHECK(q2.empty());
    // The losing getter is gone from q1: an item put now stays there.
    q1.put_nowait(3);
    CHECK(q1.qsize() == 1);
    CHECK(q1.get_nowait() == 3);

    loop.call_later(2ms, [&q1] { q1.put_nowait(8); });
    auto other = co_await corio::race(q1.get(), q2.get());
    REQUIRE(other.index() == 0);
    CHECK(std::get<0>(other) == 8);
    CHECK(only_current_task_left());
}

// -- exceptions ------------------------------------------------------------------------------

corio::coro<void> winner_exception_main(recorder& rec) {
    corio::task<int> loser = corio::create_task(sleeper(10s, rec, "loser"));
    try {
        (void)co_await corio::race(fail_after(2ms, "boom"), loser, value_after(10s, 1));
        rec("race returned");
    } catch (const test_error& e) {
        rec(std::string("race threw ") + e.what());
    }
    CHECK(loser.done());
    CHECK(loser.cancelled());

    // A runner that fails at once (eagerly) wins at once too.
    try {
        (void)co_await corio::race(fail_at_once("at once"), value_after(10s, 1));
        rec("race returned");
    } catch (const test_error& e) {
        rec(std::string("race threw ") + e.what());
    }
    CHECK(only_current_task_left());
}

corio::coro<void> cleanup_before_return_main(recorder& rec) {
    corio_test::stopwatch watch;
    auto won =
        co_await corio::race(slow_cleanup(rec, "a"), value_after(2ms, 1), slow_cleanup(rec, "b"));
    rec("race returned");
    CHECK(won.index() == 1);
    // Both losers finished their cleanup (20 ms of sleep each) before race returned.
    CHECK(rec.contains("a cleanup done"));
    CHECK(rec.contains("b cleanup done"));
    CHECK(watch.elapsed() >= 20ms);
    CHECK(only_current_task_left());
}

corio::coro<void> user_task_loser_main(recorder& rec) {
    corio::event_loop& loop = corio::get_running_loop();
    corio::task<int> loser = corio::create_task(sleeper(10s, rec, "loser"));
    corio::future<int> pending = loop.create_future<int>();
    auto won = co_await corio::race(loser, pending, value_after(2ms, 2));
    REQUIRE(won.index() == 2);
    CHECK(std::get<2>(won) == 2);
    CHECK(loser.done());
    CHECK(loser.cancelled());
    CHECK(pending.done());
    CHECK(pending.cancelled());

    // A task that wins keeps its result in the caller's handle.
    corio::task<int> winner = corio::create_task(value_after(2ms, 3));
    auto again = co_await corio::race(winner, value_after(10s, 1));
    REQUIRE(again.index() == 0);
    CHECK(std::get<0>(again) == 3);
    CHECK(winner.result() == 3);

    // A future that is already done wins at once.
    corio::future<int> ready = loop.create_future<int>();
    ready.set_result(4);
    auto from_ready = co_await corio::race(value_after(10s, 1), ready);
    REQUIRE(from_ready.index() == 1);
    CHECK(std::get<1>(from_ready) == 4);
    CHECK(only_current_task_left());
}

corio::coro<void> loser_fails_main(recorder& rec, corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    auto won = co_await corio::race(fail_on_cancel(rec, "cleanup failed"), value_after(2ms, 1));
    CHECK(won.index() == 1);
    CHECK(rec.contains("fail_on_cancel cancelled"));
    CHECK(log.size() == 0);

    // A task the caller passed in, failing while cancelled: its handle still tells.
    corio::task<int> t = corio::create_task(fail_on_cancel(rec, "task cleanup failed"));
    auto again = co_await corio::race(t, value_after(2ms, 2));
    CHECK(again.index() == 1);
    REQUIRE(t.done());
    CHECK_FALSE(t.cancelled());
    CHECK(corio_test::holds<cleanup_error>(t.exception()));
    t = corio::task<int>();  // the last handle goes: still nothing reported

    // Plain cancelled losers and a losing failure after the winner's exception.
    try {
        (void)co_await corio::race(fail_after(2ms, "boom"), fail_on_cancel(rec, "after boom"),
                                   slow_cleanup(rec, "slow"));
    } catch (const test_error& e) {
        rec(std::string("race threw ") + e.what());
    }
    co_await corio::sleep(5ms);
    CHECK(log.size() == 0);
    CHECK(only_current_task_left());
}

// -- eager start -----------------------------------------------------------------------------

corio::coro<void> ready_getter_main(recorder& rec) {
    corio::event_loop& loop = corio::get_running_loop();
    corio::queue<int> q;
    q.put_nowait(5);
    loop.call_soon([&rec] { rec("call_soon ran"); });
    auto got = co_await corio::race(q.get(), records_start(rec, "coro"));
    rec("race returned");
    REQUIRE(got.index() == 0);
    CHECK(std::get<0>(got) == 5);
    CHECK(q.empty());
    // The coro never started, and the race did not go through the loop.
    const std::vector<std::string> expected{"race returned"};
    CHECK(rec.events() == expected);

    // A coro that finishes at once wins over the later arguments, which never start; a task
    // passed in after it is cancelled all the same.
    corio::task<int> later = corio::create_task(sleeper(10s, rec, "later task"));
    q.put_nowait(6);
    auto first = co_await corio::race(records_start(rec, "first"), q.get(), later,
                                      records_start(rec, "second"));
    REQUIRE(first.index() == 0);
    CHECK(std::get<0>(first) == 1);
    CHECK(q.qsize() == 1);  // the getter never started
    CHECK(rec.contains("first started"));
    CHECK_FALSE(rec.contains("second started"));
    CHECK(later.cancelled());
    CHECK_FALSE(rec.contains("later task cancelled"));  // cancelled before its first step
    co_await corio::sleep(1ms);
    CHECK(rec.contains("call_soon ran"));
    CHECK(only_current_task_left());
}

corio::coro<void> lazy_main(recorder& rec) {
    auto pending = corio::race(records_start(rec, "a"), records_start(rec, "b"));
    co_await corio::sleep(2ms);
    CHECK(rec.events().empty());
    auto won = co_await std::move(pending);
    CHECK(won.index() == 0);
    const std::vector<std::string> expected{"a started"};
    CHECK(rec.events() == expected);
}

// -- cancellation ----------------------------------------------------------------------------

corio::coro<int> race_and_record(recorder& rec, corio::task<int> inner) {
    try {
        auto won = co_await corio::race(slow_cleanup(rec, "a"), inner, slow_cleanup(rec, "b"));
        rec("race returned");
        co_return static_cast<int>(won.index());
    } catch (const corio::cancelled_error& e) {
        rec(std::string("race threw cancelled_error ") + e.what());
        throw;
    }
}

corio::coro<void> cancel_outside_main(recorder& rec) {
    corio::task<int> inner = corio::create_task(sleeper(10s, rec, "inner"));
    corio::task<int> outer = corio::create_task(race_and_record(rec, inner));
    co_await corio::sleep(5ms);
    CHECK(outer.cancel("stop"));
    try {
        (void)co_await outer;
        rec("main: outer finished");
    } catch (const corio::cancelled_error&) {
        rec("main: outer cancelled");
    }
    CHECK(outer.cancelled());
    CHECK(inner.cancelled());
    CHECK(only_current_task_left());
}

corio::coro<void> race_in_wait_for_main(recorder& rec) {
    corio::task<int> inner = corio::create_task(sleeper(10s, rec, "inner"));
    corio_test::stopwatch watch;
    try {
        (void)co_await corio::wait_for(
            corio::race(slow_cleanup(rec, "a"), inner, value_after(10s, 1)), 10ms);
        rec("no exception");
    } catch (const corio::timeout_error&) {
        rec("timeout_error");
    } catch (const corio::cancelled_error&) {
        rec("cancelled_error");
    }
    CHECK(watch.elapsed() >= 30ms);  // 10 ms, then 20 ms of a's cleanup
    CHECK(watch.elapsed() < 5s);
    CHECK(inner.cancelled());
    CHECK(corio::current_task().cancelling() == 0);
    CHECK(only_current_task_left());
    co_await corio::sleep(1ms);  // no stray cancellation
    rec("slept after");
}

// -- ranges ----------------------------------------------------------------------------------

corio::coro<void> range_main(recorder& rec) {
    std::vector<corio::coro<int>> coros;
    coros.push_back(value_after(30ms, 0));
    coros.push_back(value_after(1ms, 1));
    coros.push_back(value_after(20ms, 2));
    auto [index, value] = co_await corio::race(std::move(coros));
    CHECK(index == 1);
    CHECK(value == 1);

    std::vector<corio::task<int>> tasks;
    tasks.push_back(corio::create_task(sleeper(10s, rec, "t0")));
    tasks.push_back(corio::create_task(sleeper(10s, rec, "t1")));
    tasks.push_back(corio::create_task(value_after(2ms, 22)));
    auto [task_index, task_value] = co_await corio::race(tasks);
    CHECK(task_index == 2);
    CHECK(task_value == 22);
    CHECK(tasks[0].cancelled());
    CHECK(tasks[1].cancelled());
    CHECK(tasks[2].result() == 22);

    std::vector<corio::coro<void>> voids;
    voids.push_back(nothing_after(10s));
    voids.push_back(nothing_after(1ms));
    auto [void_index, none] = co_await corio::race(std::move(voids));
    static_assert(std::is_same_v<decltype(none), std::monostate>);
    CHECK(void_index == 1);

    // A failure wins as well.
    std::vector<corio::coro<int>> failing;
    failing.push_back(value_after(10s, 0));
    failing.push_back(fail_after(1ms, "range boom"));
    try {
        (void)co_await corio::race(std::move(failing));
        rec("range: no exception");
    } catch (const test_error& e) {
        rec(std::string("range threw ") + e.what());
    }

    bool refused = false;
    try {
        (void)co_await corio::race(std::vector<corio::coro<int>>{});
    } catch (const std::invalid_argument&) {
        refused = true;
    }
    CHECK(refused);
    std::vector<corio::task<int>> no_tasks;
    bool refused_tasks = false;
    try {
        (void)co_await corio::race(no_tasks);
    } catch (const std::invalid_argument&) {
        refused_tasks = true;
    }
    CHECK(refused_tasks);
    CHECK(only_current_task_left());
}

// -- another library's awaiter ---------------------------------------------------------------

corio::coro<void> foreign_main(recorder& rec) {
    auto won = co_await corio::race(timer_awaiter{2ms, 7, &rec}, value_after(10s, 1));
    REQUIRE(won.index() == 0);
    CHECK(std::get<0>(won) == 7);
    CHECK(rec.contains("awaiter resumed"));
    rec.clear();

    // Losing, it cannot be withdrawn: the cancellation is delivered when it resumes, and race
    // waits for that.
    corio_test::stopwatch watch;
    auto lost = co_await corio::race(timer_awaiter{30ms, 7, &rec}, value_after(1ms, 1));
    rec("race returned");
    REQUIRE(lost.index() == 1);
    CHECK(std::get<1>(lost) == 1);
    CHECK(watch.elapsed() >= 30ms);
    const std::vector<std::string> expected{"awaiter resumed", "race returned"};
    CHECK(rec.events() == expected);
    CHECK(only_current_task_left());
}

corio::coro<void> stoppable_foreign_main(recorder& rec) {
    // One with await_cancel() is told at once and race does not wait for its timer.
    corio_test::stopwatch stop_watch;
    auto stopped = co_await corio::race(stoppable_awaiter{3s, &rec}, value_after(1ms, 2));
    REQUIRE(stopped.index() == 1);
    CHECK(std::get<1>(stopped) == 2);
    CHECK(stop_watch.elapsed() < 2s);
    CHECK(rec.contains("await_cancel"));
    CHECK(only_current_task_left());
}

corio::coro<corio_test::counted> counted_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return corio_test::counted(value);
}

corio::coro<void> counted_main() {
    auto won = co_await corio::race(counted_after(1ms, 1), counted_after(10s, 2));
    REQUIRE(won.index() == 0);
    CHECK(std::get<0>(won).value == 1);
    CHECK(corio_test::counted::copies() == 0);
    std::vector<corio::coro<corio_test::counted>> range;
    range.push_back(counted_after(10s, 3));
    range.push_back(counted_after(1ms, 4));
    auto [index, value] = co_await corio::race(std::move(range));
    CHECK(index == 1);
    CHECK(value.value == 4);
    CHECK(corio_test::counted::copies() == 0);
}

// -- queue getters ---------------------------------------------------------------------------

corio::coro<void> getter_wins_main() {
    corio::queue<int> q;
    corio::get_running_loop().call_later(2ms, [&q] { q.put_nowait(9); });
    corio_test::stopwatch watch;
    auto got = co_await corio::race(q.get(), corio::sleep(10s));
    REQUIRE(got.index() == 0);
    CHECK(std::get<0>(got) == 9);
    CHECK(watch.elapsed() < 5s);  // the sleep was cancelled
    CHECK(q.empty());
    CHECK(only_current_task_left());
}

corio::coro<void> getter_loses_main() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::queue<int> q;
    auto slept = co_await corio::race(q.get(), corio::sleep(2ms));
    CHECK(slept.index() == 1);
    q.put_nowait(4);  // no getter left to take it
    CHECK(q.qsize() == 1);
    CHECK(q.get_nowait() == 4);

    // The item arrives after the winner finished but before race could cancel the getter: it is
    // handed to the getter, which gives it back when it sees its cancellation.
    corio::event ev;
    loop.call_later(2ms, [&] {
        ev.set();
        loop.call_soon([&q] { q.put_nowait(5); });
    });
    auto woken = co_await corio::race(q.get(), ev.wait());
    CHECK(woken.index() == 1);
    REQUIRE(q.qsize() == 1);
    CHECK(q.get_nowait() == 5);

    // An item put later still waits in the queue.
    loop.call_later(20ms, [&q] { q.put_nowait(6); });
    auto again = co_await corio::race(q.get(), corio::sleep(1ms));
    CHECK(again.index() == 1);
    co_await corio::sleep(40ms);
    REQUIRE(q.qsize() == 1);
    CHECK(q.get_nowait() == 6);
    CHECK(only_current_task_left());
}

}  // namespace

TEST_CASE("race: the first to finish wins, with its value and index", "[race]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio::run(winner_main());
}

TEST_CASE("race: of two awaitables of one type, the index tells which won", "[race]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio::run(duplicate_types_main());
}

TEST_CASE("race: the winner's exception is rethrown and the losers cancelled", "[race]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(winner_exception_main(rec));
    CHECK(rec.contains("loser cancelled"));
    const std::vector<std::string> expected{"loser cancelled", "race threw boom",
                                            "race threw at once"};
    CHECK(rec.events() == expected);
}

TEST_CASE("race: every loser has finished its cleanup when race returns", "[race][timing]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(cleanup_before_return_main(rec));
    REQUIRE(rec.events().size() == 5);
    CHECK(rec.events().back() == "race returned");
}

TEST_CASE("race: a task or future passed in that loses ends cancelled", "[race]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(user_task_loser_main(rec));
    CHECK(rec.contains("loser cancelled"));
}

TEST_CASE("race: a loser failing while cancelled is not reported to the exception handler",
          "[race]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio_test::exception_log log;
    corio::run(loser_fails_main(rec, log));
    CHECK(rec.contains("race threw boom"));
    CHECK(log.size() == 0);
}

TEST_CASE("race: a ready awaiter wins at once; the later coros never start", "[race][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    SECTION("normal mode") { corio::run(ready_getter_main(rec)); }
    SECTION("debug mode: no report of the coros that never ran") {
        corio_test::exception_log log;
        corio::run(
            [](recorder& r, corio_test::exception_log& l) -> corio::coro<void> {
                l.install(corio::get_running_loop());
                co_await ready_getter_main(r);
            }(rec, log),
            corio::run_options{.debug = true});
        CHECK(log.size() == 0);
    }
}

TEST_CASE("race: nothing starts until the race is awaited", "[race]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(lazy_main(rec));
}

TEST_CASE("race: cancelling the racing task cancels every child, then race rethrows",
          "[race][cancel]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(cancel_outside_main(rec));
    CHECK(rec.contains("a cleanup done"));
    CHECK(rec.contains("b cleanup done"));
    CHECK(rec.contains("inner cancelled"));
    CHECK(rec.contains("race threw cancelled_error stop"));
    CHECK_FALSE(rec.contains("race returned"));
    REQUIRE(rec.events().size() >= 2);
    CHECK(rec.events().back() == "main: outer cancelled");
    CHECK(rec.events()[rec.events().size() - 2] == "race threw cancelled_error stop");
}

TEST_CASE("race: inside wait_for, a timeout cancels the children and gives timeout_error",
          "[race][cancel][timing]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(race_in_wait_for_main(rec));
    CHECK(rec.contains("inner cancelled"));
    CHECK(rec.contains("a cleanup done"));
    const std::vector<std::string> tail{"timeout_error", "slept after"};
    REQUIRE(rec.events().size() >= 2);
    CHECK(std::vector<std::string>(rec.events().end() - 2, rec.events().end()) == tail);
}

TEST_CASE("race: a range gives the winner's index and value; an empty range throws",
          "[race][range]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(range_main(rec));
    CHECK(rec.contains("t0 cancelled"));
    CHECK(rec.contains("t1 cancelled"));
    CHECK(rec.contains("range threw range boom"));
}

TEST_CASE("race: another library's awaiter, winning and losing", "[race][foreign]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(foreign_main(rec));
}

// A plain awaiter reaches foreign_awaiter through detail::awaiter_ref, which must pass
// await_cancel() on.
TEST_CASE("race: another library's awaiter with await_cancel() is told at once when it loses",
          "[race][foreign]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(stoppable_foreign_main(rec));
}

// The race lets go of its entrants' references first, so that take_result sees the
// winner's state unshared and moves a copyable result out (as gather does).
TEST_CASE("race: the winner's result is moved, never copied", "[race]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio_test::counted::reset();
    corio::run(counted_main());
    CHECK(corio_test::counted::copies() == 0);
    CHECK(corio_test::counted::alive() == 0);
}

TEST_CASE("race: a getter that wins takes the item and the sleep is cancelled", "[race][queue]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio::run(getter_wins_main());
}

TEST_CASE("race: a getter that loses leaves the item in the queue", "[race][queue]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio::run(getter_loses_main());
}
