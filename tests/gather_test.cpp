// corio::gather (include/corio/gather.hpp): results in argument order, coros/tasks/futures,
// void and move-only results, the range form (sized or not), concurrency, eagerness, the first
// exception (also from a child failed beforehand), return_exceptions, cancellation in both
// directions, and empty input.
#include <corio/gather.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/outcome.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <algorithm>
#include <chrono>
#include <forward_list>
#include <list>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
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

// --- compile-time shape of the results -----------------------------------------------------

using int_coros = std::vector<corio::coro<int>>;
using void_coros = std::vector<corio::coro<void>>;
using int_tasks = std::vector<corio::task<int>>;

static_assert(std::is_same_v<decltype(corio::gather(std::declval<corio::coro<int>>(),
                                                    std::declval<corio::task<std::string>&>(),
                                                    std::declval<corio::future<void>&>())),
                             corio::future<std::tuple<int, std::string, std::monostate>>>);
static_assert(std::is_same_v<decltype(corio::gather(std::declval<int_coros>())),
                             corio::future<std::vector<int>>>);
static_assert(std::is_same_v<decltype(corio::gather(std::declval<int_tasks&>())),
                             corio::future<std::vector<int>>>);
static_assert(
    std::is_same_v<decltype(corio::gather(std::declval<void_coros>())), corio::future<void>>);
static_assert(std::is_same_v<decltype(corio::gather(corio::return_exceptions,
                                                    std::declval<corio::coro<int>>(),
                                                    std::declval<corio::coro<void>>())),
                             corio::future<std::tuple<corio::outcome<int>, corio::outcome<void>>>>);
static_assert(
    std::is_same_v<decltype(corio::gather(corio::return_exceptions, std::declval<void_coros>())),
                   corio::future<std::vector<corio::outcome<void>>>>);
static_assert(
    std::is_same_v<decltype(corio::gather(std::declval<corio::coro<std::unique_ptr<int>>>())),
                   corio::future<std::tuple<std::unique_ptr<int>>>>);

// --- children --------------------------------------------------------------------------------

corio::coro<int> value_after(std::chrono::milliseconds delay, int value, recorder& rec) {
    co_await corio::sleep(delay);
    rec("done " + std::to_string(value));
    co_return value;
}

corio::coro<std::string> text_after(std::chrono::milliseconds delay, std::string text) {
    co_await corio::sleep(delay);
    co_return text;
}

corio::coro<int> plain_value_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

corio::coro<void> nothing_after(std::chrono::milliseconds delay, recorder& rec, std::string name) {
    co_await corio::sleep(delay);
    rec(std::move(name));
}

corio::coro<std::unique_ptr<int>> boxed_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return std::make_unique<int>(value);
}

corio::coro<int> fail_after(std::chrono::milliseconds delay, std::string message) {
    co_await corio::sleep(delay);
    throw test_error(message);
}

corio::coro<void> void_fail_after(std::chrono::milliseconds delay, std::string message) {
    co_await corio::sleep(delay);
    throw test_error(message);
}

corio::coro<int> record_start(recorder& rec, std::string name, int value) {
    rec(name + " started");
    co_await corio::sleep(1ms);
    rec(name + " finished");
    co_return value;
}

/// Sleeps (long); records whether it saw the cancellation.
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

corio::coro<void> void_sleeper(std::chrono::milliseconds delay, recorder& rec, std::string name) {
    try {
        co_await corio::sleep(delay);
    } catch (const corio::cancelled_error&) {
        rec(name + " cancelled");
        throw;
    }
    rec(name + " finished");
}

// --- test bodies -----------------------------------------------------------------------------

corio::coro<void> argument_order_main(recorder& rec) {
    // Completion order 2, 3, 1; results in argument order 1, 2, 3.
    auto [a, b, c] = co_await corio::gather(value_after(30ms, 1, rec), value_after(5ms, 2, rec),
                                            value_after(15ms, 3, rec));
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(c == 3);
    const std::vector<std::string> completion{"done 2", "done 3", "done 1"};
    CHECK(rec.events() == completion);
}

corio::coro<void> mixed_main() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::task<std::string> t = corio::create_task(text_after(20ms, "task"));
    corio::future<double> f = loop.create_future<double>();
    loop.call_later(10ms, [f]() mutable { f.set_result(2.5); });
    // Completion order: the future (10 ms), the task (20 ms), the coro (30 ms).
    auto [i, s, d] = co_await corio::gather(plain_value_after(30ms, 7), t, f);
    CHECK(i == 7);
    CHECK(s == "task");
    CHECK(d == 2.5);
    // The task and the future the gather was given are the caller's handles, still usable.
    CHECK(t.done());
    CHECK(t.result() == "task");
    CHECK(f.result() == 2.5);

    // Already-done children are taken as they are; one task may be given twice.
    corio::future<int> ready = loop.create_future<int>();
    ready.set_result(11);
    auto [r, u, again] = co_await corio::gather(ready, t, t);
    CHECK(r == 11);
    CHECK(u == "task");
    CHECK(again == "task");
}

corio::coro<void> void_and_move_only_main(recorder& rec) {
    corio::future<void> fv = corio::get_running_loop().create_future<void>();
    corio::get_running_loop().call_later(5ms, [fv]() mutable { fv.set_result(); });
    corio::task<std::unique_ptr<int>> boxed_task = corio::create_task(boxed_after(10ms, 2));
    auto results = co_await corio::gather(nothing_after(15ms, rec, "void coro"),
                                          boxed_after(1ms, 1), fv, boxed_task,
                                          corio::create_task(nothing_after(2ms, rec, "void task")));
    static_assert(std::is_same_v<decltype(results),
                                 std::tuple<std::monostate, std::unique_ptr<int>, std::monostate,
                                            std::unique_ptr<int>, std::monostate>>);
    REQUIRE(std::get<1>(results) != nullptr);
    CHECK(*std::get<1>(results) == 1);
    REQUIRE(std::get<3>(results) != nullptr);
    CHECK(*std::get<3>(results) == 2);
    CHECK(rec.contains("void coro"));
    CHECK(rec.contains("void task"));
}

corio::coro<void> range_of_coros_main(recorder& rec) {
    int_coros coros;
    // Later inputs finish first.
    for (int i = 0; i < 5; ++i) {
        coros.push_back(value_after(std::chrono::milliseconds(5 * (5 - i)), i, rec));
    }
    std::vector<int> results = co_await corio::gather(std::move(coros));
    const std::vector<int> expected{0, 1, 2, 3, 4};
    CHECK(results == expected);
    const std::vector<std::string> completion{"done 4", "done 3", "done 2", "done 1", "done 0"};
    CHECK(rec.events() == completion);

    // An lvalue vector of coros is consumed as well.
    int_coros more;
    more.push_back(plain_value_after(2ms, 10));
    more.push_back(plain_value_after(1ms, 20));
    std::vector<int> more_results = co_await corio::gather(more);
    const std::vector<int> more_expected{10, 20};
    CHECK(more_results == more_expected);
}

corio::coro<void> range_of_tasks_main(recorder& rec) {
    int_tasks tasks;
    for (int i = 0; i < 4; ++i) {
        tasks.push_back(
            corio::create_task(value_after(std::chrono::milliseconds(4 * (4 - i)), i, rec)));
    }
    // An lvalue range: the caller keeps its handles.
    std::vector<int> results = co_await corio::gather(tasks);
    const std::vector<int> expected{0, 1, 2, 3};
    CHECK(results == expected);
    for (const auto& t : tasks) CHECK(t.done());
    CHECK(tasks[2].result() == 2);

    // Forwarded (moved) range of tasks.
    int_tasks moved;
    moved.push_back(corio::create_task(plain_value_after(3ms, 30)));
    moved.push_back(corio::create_task(plain_value_after(1ms, 31)));
    std::vector<int> moved_results = co_await corio::gather(std::move(moved));
    const std::vector<int> moved_expected{30, 31};
    CHECK(moved_results == moved_expected);
}

corio::coro<void> range_of_void_main(recorder& rec) {
    void_coros coros;
    coros.push_back(nothing_after(20ms, rec, "a"));
    coros.push_back(nothing_after(1ms, rec, "b"));
    coros.push_back(nothing_after(10ms, rec, "c"));
    corio::future<void> all = corio::gather(std::move(coros));
    co_await all;
    const std::vector<std::string> expected{"b", "c", "a"};
    CHECK(rec.events() == expected);

    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(nothing_after(2ms, rec, "t1")));
    tasks.push_back(corio::create_task(nothing_after(1ms, rec, "t2")));
    co_await corio::gather(tasks);
    CHECK(rec.contains("t1"));
    CHECK(rec.contains("t2"));
}

corio::coro<int> numbered_sleeper(int number, std::chrono::milliseconds delay) {
    co_await corio::sleep(delay);
    co_return number;
}

corio::coro<void> seed_example_main(std::chrono::milliseconds& longest) {
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> ms(10, 50);
    int_coros coros;
    for (int i = 0; i < 10; ++i) {
        const std::chrono::milliseconds delay(ms(random));
        if (delay > longest) longest = delay;
        coros.push_back(numbered_sleeper(i, delay));
    }
    std::vector<int> numbers = co_await corio::gather(std::move(coros));
    const std::vector<int> expected{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    CHECK(numbers == expected);
}

corio::coro<void> eager_main(recorder& rec) {
    corio::future<std::tuple<int, int>> pending =
        corio::gather(record_start(rec, "a", 1), record_start(rec, "b", 2));
    rec("gather returned");
    // Not awaited yet: the children run as soon as this task suspends.
    co_await corio::sleep(20ms);
    CHECK(rec.contains("a finished"));
    CHECK(rec.contains("b finished"));
    CHECK(pending.done());
    rec("awaiting");
    auto [a, b] = co_await pending;
    CHECK(a == 1);
    CHECK(b == 2);
    const std::vector<std::string> expected{"gather returned", "a started",  "b started",
                                            "a finished",      "b finished", "awaiting"};
    CHECK(rec.events() == expected);
}

corio::coro<void> first_exception_main(recorder& rec) {
    corio::task<int> slow = corio::create_task(sleeper(40ms, rec, "slow"));
    corio::task<> slow_void = corio::create_task(void_sleeper(50ms, rec, "slow void"));
    // Held to the end, so that the gather still sees the second failure (see below for a
    // gather that is dropped).
    auto gathered =
        corio::gather(slow, fail_after(5ms, "first"), slow_void, fail_after(20ms, "second"));
    try {
        (void)co_await gathered;
        FAIL("gather did not throw");
    } catch (const test_error& e) {
        CHECK(std::string(e.what()) == "first");
    }
    // At once: the other children are still running, and not cancelled.
    CHECK_FALSE(slow.done());
    CHECK_FALSE(slow_void.done());
    CHECK(slow.cancelling() == 0);
    const auto awaited_1 = co_await slow;  // never co_await inside a Catch macro
    CHECK(awaited_1 == 1);
    co_await slow_void;
    CHECK_FALSE(slow.cancelled());
    CHECK_FALSE(slow_void.cancelled());
    CHECK(rec.contains("slow finished"));
    CHECK(rec.contains("slow void finished"));
    CHECK_FALSE(rec.contains("slow cancelled"));
}

corio::coro<void> later_failure_main(corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    corio::task<int> second = corio::create_task(fail_after(20ms, "second"));
    try {
        // The gather's future is a temporary: only the children outlive this statement.
        (void)co_await corio::gather(fail_after(5ms, "first"), second);
        FAIL("gather did not throw");
    } catch (const test_error& e) {
        CHECK(std::string(e.what()) == "first");
    }
    CHECK_FALSE(second.done());
    second = {};  // the loop holds the only reference now
    co_await corio::sleep(40ms);
}

corio::coro<void> never_completed_child_main() {
    // The gather fails at once; its future child is never completed and every handle to it
    // goes: nothing may stay allocated (nothing could ever complete it any more).
    corio::future<int> never = corio::get_running_loop().create_future<int>();
    try {
        (void)co_await corio::gather(fail_after(1ms, "boom"), never);
        FAIL("gather did not throw");
    } catch (const test_error&) {
    }
    never = {};
    co_await corio::sleep(1ms);
}

corio::coro<void> return_exceptions_main() {
    corio::task<int> doomed = corio::create_task(plain_value_after(1s, 0));
    corio::get_running_loop().call_later(5ms, [doomed]() mutable { doomed.cancel("stop"); });
    recorder rec;
    auto [ok, bad, nothing, failed_void, cancelled] = co_await corio::gather(
        corio::return_exceptions, plain_value_after(10ms, 42), fail_after(2ms, "boom"),
        nothing_after(1ms, rec, "void"), void_fail_after(3ms, "void boom"), doomed);
    static_assert(std::is_same_v<decltype(ok), corio::outcome<int>>);
    static_assert(std::is_same_v<decltype(nothing), corio::outcome<void>>);

    CHECK(ok.has_value());
    CHECK(static_cast<bool>(ok));
    CHECK(ok.value() == 42);
    CHECK(ok.error() == nullptr);

    CHECK_FALSE(bad.has_value());
    CHECK_FALSE(static_cast<bool>(bad));
    CHECK(corio_test::holds<test_error>(bad.error()));
    CHECK(corio_test::what_of(bad.error()) == "boom");
    CHECK_THROWS_AS(bad.value(), test_error);

    CHECK(nothing.has_value());
    CHECK(nothing.error() == nullptr);
    CHECK_NOTHROW(nothing.value());

    CHECK_FALSE(failed_void.has_value());
    CHECK(corio_test::what_of(failed_void.error()) == "void boom");
    CHECK_THROWS_AS(failed_void.value(), test_error);

    CHECK_FALSE(cancelled.has_value());
    CHECK(corio_test::holds<corio::cancelled_error>(cancelled.error()));
    CHECK_THROWS_AS(cancelled.value(), corio::cancelled_error);
    CHECK(doomed.cancelled());

    // The range form.
    int_coros coros;
    coros.push_back(plain_value_after(3ms, 1));
    coros.push_back(fail_after(1ms, "range boom"));
    coros.push_back(plain_value_after(2ms, 3));
    std::vector<corio::outcome<int>> outcomes =
        co_await corio::gather(corio::return_exceptions, std::move(coros));
    REQUIRE(outcomes.size() == 3);
    CHECK(outcomes[0].value() == 1);
    CHECK(corio_test::what_of(outcomes[1].error()) == "range boom");
    CHECK(outcomes[2].value() == 3);
}

corio::coro<void> await_and_record(corio::future<std::tuple<int, int, int>> gathered,
                                   recorder& rec) {
    try {
        (void)co_await gathered;
        rec("awaiter: no exception");
    } catch (const corio::cancelled_error&) {
        rec("awaiter: cancelled_error");
    }
}

corio::coro<void> await_outcomes_and_record(
    corio::future<std::tuple<corio::outcome<int>, corio::outcome<void>>> gathered, recorder& rec) {
    try {
        (void)co_await gathered;
        rec("awaiter: no exception");
    } catch (const corio::cancelled_error&) {
        rec("awaiter: cancelled_error");
    }
}

corio::coro<void> cancel_gather_main(recorder& rec) {
    corio::task<int> a = corio::create_task(sleeper(1s, rec, "a"));
    corio::future<int> f = corio::get_running_loop().create_future<int>();
    auto gathered = corio::gather(a, sleeper(1s, rec, "coro"), f);
    corio::task<> awaiter = corio::create_task(await_and_record(gathered, rec));
    co_await corio::sleep(5ms);
    CHECK(gathered.cancel("stop"));
    co_await corio::sleep(5ms);
    CHECK(gathered.done());
    CHECK(a.cancelled());
    CHECK(f.cancelled());
    co_await awaiter;
    CHECK(rec.contains("a cancelled"));
    CHECK(rec.contains("coro cancelled"));
    CHECK(rec.contains("awaiter: cancelled_error"));
    CHECK_THROWS_AS(gathered.result(), corio::cancelled_error);
    CHECK_FALSE(gathered.cancel());  // already done
}

corio::coro<void> cancel_gather_return_exceptions_main(recorder& rec) {
    corio::task<int> a = corio::create_task(sleeper(1s, rec, "a"));
    corio::task<> b = corio::create_task(void_sleeper(1s, rec, "b"));
    auto gathered = corio::gather(corio::return_exceptions, a, b);
    corio::task<> awaiter = corio::create_task(await_outcomes_and_record(gathered, rec));
    co_await corio::sleep(5ms);
    CHECK(gathered.cancel());
    co_await awaiter;
    CHECK(a.cancelled());
    CHECK(b.cancelled());
    CHECK(gathered.cancelled());
    CHECK(rec.contains("awaiter: cancelled_error"));
}

using future_outcomes = std::tuple<corio::outcome<int>, corio::outcome<void>>;

corio::coro<void> await_future_outcomes(corio::future<future_outcomes> gathered, recorder& rec) {
    try {
        (void)co_await gathered;
        rec("awaiter: no exception");
    } catch (const corio::cancelled_error&) {
        rec("awaiter: cancelled_error");
        throw;
    }
}

corio::coro<void> cancel_gather_of_futures_main(recorder& rec) {
    // Futures complete synchronously when cancelled: the gather must still end cancelled, as
    // asyncio's does (its _cancel_requested is set before any child's callback runs).
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> f1 = loop.create_future<int>();
    corio::future<void> f2 = loop.create_future<void>();
    auto gathered = corio::gather(corio::return_exceptions, f1, f2);
    corio::task<> awaiter = corio::create_task(await_future_outcomes(gathered, rec));
    co_await corio::sleep(1ms);
    CHECK(gathered.cancel());
    CHECK(f1.cancelled());
    CHECK(f2.cancelled());
    try {
        co_await awaiter;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(gathered.cancelled());
    CHECK(awaiter.cancelled());
}

corio::coro<void> cancel_task_awaiting_gather_of_futures_main(recorder& rec) {
    // The same, reached by cancelling the awaiting task: its cancellation must not be lost.
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> f1 = loop.create_future<int>();
    corio::future<void> f2 = loop.create_future<void>();
    corio::task<> awaiter = corio::create_task(
        await_future_outcomes(corio::gather(corio::return_exceptions, f1, f2), rec));
    co_await corio::sleep(1ms);
    CHECK(awaiter.cancel());
    try {
        co_await awaiter;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(f1.cancelled());
    CHECK(f2.cancelled());
    CHECK(awaiter.cancelled());
}

corio::coro<void> await_gather_of(corio::task<int> a, corio::task<> b, recorder& rec) {
    try {
        (void)co_await corio::gather(a, b, sleeper(1s, rec, "inner coro"));
        rec("awaiter: no exception");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("awaiter: cancelled_error ") + e.what());
        throw;
    }
}

corio::coro<void> cancel_awaiting_task_main(recorder& rec) {
    corio::task<int> a = corio::create_task(sleeper(1s, rec, "a"));
    corio::task<> b = corio::create_task(void_sleeper(1s, rec, "b"));
    corio::task<> awaiter = corio::create_task(await_gather_of(a, b, rec));
    co_await corio::sleep(5ms);
    CHECK(awaiter.cancel("bye"));
    try {
        co_await awaiter;
        FAIL("the awaiting task was not cancelled");
    } catch (const corio::cancelled_error&) {
    }
    CHECK(awaiter.cancelled());
    CHECK(a.cancelled());
    CHECK(b.cancelled());
    CHECK(rec.contains("a cancelled"));
    CHECK(rec.contains("b cancelled"));
    CHECK(rec.contains("inner coro cancelled"));
    CHECK_FALSE(rec.contains("awaiter: no exception"));
    CHECK(corio::all_tasks().size() == 1);
}

corio::coro<void> child_cancelled_main(recorder& rec) {
    corio::task<int> doomed = corio::create_task(sleeper(1s, rec, "doomed"));
    corio::task<int> other = corio::create_task(sleeper(30ms, rec, "other"));
    corio::get_running_loop().call_later(5ms, [doomed]() mutable { doomed.cancel(); });
    auto gathered = corio::gather(doomed, other);
    try {
        (void)co_await gathered;
        rec("main: no exception");
    } catch (const corio::cancelled_error&) {
        rec("main: cancelled_error");
    }
    // The awaiting task itself was not cancelled, and neither were the other children.
    CHECK(corio::current_task().cancelling() == 0);
    CHECK_FALSE(other.done());
    CHECK(other.cancelling() == 0);
    const auto awaited_2 = co_await other;  // never co_await inside a Catch macro
    CHECK(awaited_2 == 1);
    // corio's gather ends cancelled here (docs/asyncio-differences.md).
    CHECK(gathered.cancelled());
    const std::vector<std::string> expected{"doomed cancelled", "main: cancelled_error",
                                            "other finished"};
    CHECK(rec.events() == expected);
}

// A sized range other than a vector, and one with no size() (the gather collects it first).
corio::coro<void> other_ranges_main() {
    std::list<corio::coro<int>> listed;
    std::forward_list<corio::coro<int>> forward;
    for (int i = 0; i < 4; ++i) {
        listed.push_back(plain_value_after(std::chrono::milliseconds(4 - i), i));
    }
    for (int i = 3; i >= 0; --i) {  // push_front: the list reads 0, 1, 2, 3
        forward.push_front(plain_value_after(std::chrono::milliseconds(i), 10 + i));
    }
    static_assert(std::ranges::sized_range<decltype(listed)>);
    static_assert(!std::ranges::sized_range<decltype(forward)>);
    std::vector<int> from_list = co_await corio::gather(listed);
    std::vector<int> from_forward = co_await corio::gather(std::move(forward));
    CHECK(from_list == std::vector<int>{0, 1, 2, 3});
    CHECK(from_forward == std::vector<int>{10, 11, 12, 13});
    CHECK(std::all_of(listed.begin(), listed.end(), [](const auto& c) { return !c; }));

    auto& loop = corio::get_running_loop();
    std::list<corio::future<int>> futures;
    for (int i = 0; i < 3; ++i) futures.push_back(loop.create_future<int>());
    auto gathering = corio::gather(futures);
    int value = 100;
    for (auto& f : futures) f.set_result(value++);
    std::vector<int> from_futures = co_await gathering;
    CHECK(from_futures == std::vector<int>{100, 101, 102});
}

// A child that failed before the gather was made fails it at once; the children after it still
// become tasks and run.
corio::coro<void> already_failed_child_main(recorder& rec) {
    auto& loop = corio::get_running_loop();
    corio::future<int> failed = loop.create_future<int>();
    failed.set_exception(std::make_exception_ptr(test_error("before")));
    auto gathering = corio::gather(failed, record_start(rec, "after", 1));
    CHECK(gathering.done());
    std::string message;
    try {
        co_await gathering;
    } catch (const test_error& e) {
        message = e.what();
    }
    CHECK(message == "before");
    co_await corio::sleep(5ms);
    CHECK(rec.events() == std::vector<std::string>{"after started", "after finished"});

    std::vector<corio::future<int>> range;
    range.push_back(loop.create_future<int>());
    range.push_back(loop.create_future<int>());
    range[0].set_exception(std::make_exception_ptr(test_error("first")));
    auto range_gathering = corio::gather(range);
    CHECK(range_gathering.done());
    range[1].set_result(2);  // completes after the gather failed: nothing to report
    std::string range_message;
    try {
        co_await range_gathering;
    } catch (const test_error& e) {
        range_message = e.what();
    }
    CHECK(range_message == "first");
}

corio::coro<int> at_once(int value) { co_return value; }

corio::coro<corio_test::counted> counted_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return corio_test::counted(value);
}

/// A result with no default constructor (the range gather keeps it in an optional meanwhile).
struct labelled {
    explicit labelled(std::string text) : text(std::move(text)) {}
    std::string text;
};

corio::coro<labelled> labelled_after(std::chrono::milliseconds delay, std::string text) {
    co_await corio::sleep(delay);
    co_return labelled(std::move(text));
}

/// A result whose copies throw once `fail` is set.
struct fragile {
    static inline bool fail = false;
    explicit fragile(int v) noexcept : value(v) {}
    fragile(const fragile& other) : value(other.value) {
        if (fail) throw test_error("copy failed");
    }
    fragile(fragile&&) noexcept = default;
    fragile& operator=(const fragile&) = default;
    fragile& operator=(fragile&&) noexcept = default;
    ~fragile() = default;
    int value;
};

corio::coro<fragile> fragile_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return fragile(value);
}

corio::coro<void> range_results_main() {
    // Coros: the gather holds the only reference on each child, whose result is moved.
    corio_test::counted::reset();
    std::vector<corio::coro<corio_test::counted>> coros;
    for (int i = 0; i < 4; ++i) {
        coros.push_back(counted_after(std::chrono::milliseconds(2 * (4 - i)), i));
    }
    std::vector<corio_test::counted> results = co_await corio::gather(std::move(coros));
    REQUIRE(results.size() == 4);
    for (int i = 0; i < 4; ++i) CHECK(results[static_cast<std::size_t>(i)].value == i);
    CHECK(corio_test::counted::copies() == 0);

    // Tasks the caller holds too: their results are copied, and stay in the tasks.
    corio_test::counted::reset();
    std::vector<corio::task<corio_test::counted>> tasks;
    for (int i = 0; i < 3; ++i) {
        tasks.push_back(corio::create_task(counted_after(std::chrono::milliseconds(3 - i), i)));
    }
    std::vector<corio_test::counted> copied = co_await corio::gather(tasks);
    REQUIRE(copied.size() == 3);
    CHECK(corio_test::counted::copies() == 3);
    for (int i = 0; i < 3; ++i) {
        CHECK(copied[static_cast<std::size_t>(i)].value == i);
        CHECK(tasks[static_cast<std::size_t>(i)].result().value == i);
    }

    // No default constructor.
    std::vector<corio::coro<labelled>> labels;
    labels.push_back(labelled_after(3ms, "a"));
    labels.push_back(labelled_after(1ms, "b"));
    std::vector<labelled> texts = co_await corio::gather(std::move(labels));
    REQUIRE(texts.size() == 2);
    CHECK(texts[0].text == "a");
    CHECK(texts[1].text == "b");

    // Move-only results and failures, as outcomes.
    std::vector<corio::coro<std::unique_ptr<int>>> boxes;
    boxes.push_back(boxed_after(3ms, 1));
    boxes.push_back([]() -> corio::coro<std::unique_ptr<int>> {
        co_await corio::sleep(1ms);
        throw test_error("no box");
    }());
    boxes.push_back(boxed_after(2ms, 3));
    std::vector<corio::outcome<std::unique_ptr<int>>> outcomes =
        co_await corio::gather(corio::return_exceptions, std::move(boxes));
    REQUIRE(outcomes.size() == 3);
    REQUIRE(outcomes[0].has_value());
    CHECK(*outcomes[0].value() == 1);
    CHECK_FALSE(outcomes[1].has_value());
    CHECK_THROWS_AS(outcomes[1].value(), test_error);
    REQUIRE(outcomes[2].has_value());
    CHECK(*outcomes[2].value() == 3);
}

corio::coro<void> result_copy_fails_main() {
    std::vector<corio::task<fragile>> tasks;
    tasks.push_back(corio::create_task(fragile_after(1ms, 1)));
    tasks.push_back(corio::create_task(fragile_after(5ms, 2)));
    // The caller holds the tasks too: their results must be copied, and the first copy throws.
    fragile::fail = true;
    auto gathering = corio::gather(tasks);
    std::string message;
    try {
        (void)co_await gathering;
    } catch (const test_error& e) {
        message = e.what();
    }
    fragile::fail = false;
    CHECK(message == "copy failed");
    // The other child runs on; both keep their results.
    co_await tasks[1];
    CHECK(tasks[0].result().value == 1);
    CHECK(tasks[1].result().value == 2);
}

corio::coro<void> lets_go_of_finished_children_main() {
    constexpr long children = 50;
    // What one quick child costs in frames, allocated the way the gather's are.
    long frame = corio::detail::frame_allocator::live_bytes();
    {
        corio::coro<int> probe = at_once(0);
        frame = corio::detail::frame_allocator::live_bytes() - frame;
    }
    const auto state = static_cast<long>(sizeof(corio::detail::task_state<int>));

    std::vector<corio::coro<int>> coros;
    coros.push_back(plain_value_after(200ms, -1));
    for (int i = 1; i < children; ++i) coros.push_back(at_once(i));
    auto gathering = corio::gather(std::move(coros));
    const long started = corio::detail::frame_allocator::live_bytes();
    co_await corio::sleep(0ms);  // every quick child runs to its end
    const long midway = corio::detail::frame_allocator::live_bytes();
    INFO("frame " << frame << " bytes, task state " << state << " bytes, freed " << started - midway
                  << " bytes");
    // Each finished child has given back its frame and its task state, not only its frame.
    CHECK(started - midway >= (children - 1) * (frame + state));
    CHECK_FALSE(gathering.done());
    gathering.cancel();
    bool cancelled = false;
    try {
        (void)co_await gathering;
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
}

corio::coro<void> dropped_range_main() {
    std::vector<corio::coro<int>> coros;
    for (int i = 0; i < 3; ++i) coros.push_back(plain_value_after(std::chrono::milliseconds(i), i));
    {
        // Nobody awaits or holds it: the children run on and are freed as they finish.
        auto dropped = corio::gather(std::move(coros));
    }
    std::vector<corio::coro<int>> failing;
    failing.push_back(fail_after(1ms, "unseen"));
    failing.push_back(plain_value_after(2ms, 1));
    {
        auto dropped = corio::gather(std::move(failing));
    }
    co_await corio::sleep(10ms);
}

corio::coro<void> nested_cancel_main() {
    corio::event_loop& loop = corio::get_running_loop();
    // Gathers of futures inside a gather that holds the only references on them: cancelling
    // the outer one completes each inner one inside its own cancel().
    std::vector<corio::future<int>> futures;
    std::vector<corio::future<std::vector<int>>> inner;
    for (int i = 0; i < 3; ++i) {
        futures.push_back(loop.create_future<int>());
        futures.push_back(loop.create_future<int>());
        std::vector<corio::future<int>> pair{futures[futures.size() - 2], futures.back()};
        inner.push_back(corio::gather(std::move(pair)));
    }
    futures.clear();  // the inner gathers hold the only references now
    auto outer = corio::gather(std::move(inner));
    CHECK(outer.cancel());
    CHECK(outer.done());
    CHECK(outer.cancelled());
    co_await corio::sleep(0ms);
}

corio::coro<void> empty_main() {
    std::vector<int> none = co_await corio::gather(int_coros{});
    CHECK(none.empty());
    int_tasks no_tasks;
    std::vector<int> none_either = co_await corio::gather(no_tasks);
    CHECK(none_either.empty());
    co_await corio::gather(void_coros{});
    std::vector<corio::outcome<int>> no_outcomes =
        co_await corio::gather(corio::return_exceptions, int_coros{});
    CHECK(no_outcomes.empty());
    // An empty gather is done at once.
    auto pending = corio::gather(int_coros{});
    CHECK(pending.done());
    std::tuple<> nothing = co_await corio::gather();
    (void)nothing;
}

}  // namespace

TEST_CASE("gather: results come in argument order whatever the completion order", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(argument_order_main(rec));
}

TEST_CASE("gather: coros, tasks and futures mixed", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(mixed_main());
}

TEST_CASE("gather: void children give std::monostate, move-only results are moved out",
          "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(void_and_move_only_main(rec));
}

TEST_CASE("gather: a vector of coros gives a vector of results in input order", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(range_of_coros_main(rec));
}

TEST_CASE("gather: a vector of tasks gives a vector of results in input order", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(range_of_tasks_main(rec));
}

TEST_CASE("gather: a range of void children gives a future<void>", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(range_of_void_main(rec));
}

TEST_CASE("gather: ten coroutines sleeping 10-50 ms run concurrently (the seed's example)",
          "[gather][timing]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::chrono::milliseconds longest{0};
    corio_test::stopwatch watch;
    corio::run(seed_example_main(longest));
    const auto elapsed = watch.elapsed();
    INFO("longest sleep " << longest.count() << " ms, elapsed "
                          << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                          << " ms");
    CHECK(elapsed >= longest);
    // Run one after another they would take the sum (at least 100 ms).
    CHECK(elapsed < longest + 80ms);
}

TEST_CASE("gather: is eager, its children run before it is awaited", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(eager_main(rec));
}

TEST_CASE("gather: the first exception propagates at once; the other children run on", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(first_exception_main(rec));
}

TEST_CASE("gather: a child failing after the gather failed is not reported as never retrieved",
          "[gather]") {
    // asyncio's gather marks the exceptions of children that fail after it is done as
    // retrieved (its done callbacks keep the outer future alive), whether or not anyone still
    // holds the gather.
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::exception_log log;
    corio::run(later_failure_main(log));
    for (const auto& context : log.contexts()) {
        INFO(context.message << " / " << context.task_name << " / "
                             << corio_test::what_of(context.exception));
        CHECK(false);
    }
    CHECK(log.size() == 0);
}

TEST_CASE("gather: a dropped gather with a child never completed leaks nothing", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(never_completed_child_main());
}

TEST_CASE("gather: return_exceptions gives an outcome per child", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(return_exceptions_main());
}

TEST_CASE("gather: cancelling the gather cancels every child", "[gather][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    SECTION("without return_exceptions") { corio::run(cancel_gather_main(rec)); }
    SECTION("with return_exceptions") { corio::run(cancel_gather_return_exceptions_main(rec)); }
}

TEST_CASE("gather: cancelling a return_exceptions gather of futures ends it cancelled",
          "[gather][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    SECTION("cancelling the gather") { corio::run(cancel_gather_of_futures_main(rec)); }
    SECTION("cancelling the task that awaits it") {
        corio::run(cancel_task_awaiting_gather_of_futures_main(rec));
    }
    const std::vector<std::string> expected{"awaiter: cancelled_error"};
    CHECK(rec.events() == expected);
}

TEST_CASE("gather: cancelling the task that awaits a gather cancels the children",
          "[gather][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancel_awaiting_task_main(rec));
}

TEST_CASE("gather: a child cancelled from outside fails the gather, not the other children",
          "[gather][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(child_cancelled_main(rec));
}

TEST_CASE("gather: a list and a forward_list (no size) of coros, a list of futures", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(other_ranges_main());
}

TEST_CASE("gather: a child failed before the gather fails it at once, the others still run",
          "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(already_failed_child_main(rec));
}

TEST_CASE("gather: empty input completes at once", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(empty_main());
}

TEST_CASE("gather: a range takes each result as its child ends, moved or copied as it must",
          "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(range_results_main());
}

TEST_CASE("gather: a result whose copy throws fails the gather with that exception", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(result_copy_fails_main());
}

TEST_CASE("gather: a range lets go of each finished task at once", "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(lets_go_of_finished_children_main());
}

TEST_CASE("gather: a dropped range gather leaks nothing when its children finish later",
          "[gather]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(dropped_range_main());
}

TEST_CASE("gather: cancelling a gather of gathers that end inside their own cancel",
          "[gather][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(nested_cancel_main());
}
