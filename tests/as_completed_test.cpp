// corio::as_completed (include/corio/as_completed.hpp): completion order, already-done inputs
// first, the empty handle at the end, coros accepted, and what cancelling the consumer does.
#include <corio/as_completed.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using int_tasks = std::vector<corio::task<int>>;
using int_coros = std::vector<corio::coro<int>>;

static_assert(std::is_same_v<decltype(corio::as_completed(std::declval<int_coros>())),
                             corio::as_completed_iterator<corio::task<int>>>);
static_assert(std::is_same_v<decltype(corio::as_completed(std::declval<int_tasks&>())),
                             corio::as_completed_iterator<corio::task<int>>>);

corio::coro<int> value_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

corio::coro<int> fail_after(std::chrono::milliseconds delay, std::string message) {
    co_await corio::sleep(delay);
    throw test_error(message);
}

corio::coro<void> completion_order_main() {
    int_tasks tasks;
    tasks.push_back(corio::create_task(value_after(30ms, 0)));
    tasks.push_back(corio::create_task(value_after(5ms, 1)));
    tasks.push_back(corio::create_task(fail_after(20ms, "two")));
    tasks.push_back(corio::create_task(value_after(12ms, 3)));
    auto it = corio::as_completed(tasks);
    CHECK(it.remaining() == 4);
    std::vector<std::size_t> order;
    std::vector<int> values;
    while (corio::task<int> t = co_await it.next()) {
        CHECK(t.done());
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            if (t == tasks[i]) order.push_back(i);
        }
        try {
            values.push_back(co_await t);
        } catch (const test_error& e) {
            CHECK(std::string(e.what()) == "two");
            values.push_back(-1);
        }
    }
    const std::vector<std::size_t> expected_order{1, 3, 2, 0};
    CHECK(order == expected_order);
    const std::vector<int> expected_values{1, 3, -1, 0};
    CHECK(values == expected_values);
    CHECK(it.remaining() == 0);
}

corio::coro<void> already_done_main() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::task<int> finished = corio::create_task(value_after(0ms, 10));
    co_await finished;
    corio::future<int> pending_future = loop.create_future<int>();
    corio::future<int> done_future = loop.create_future<int>();
    done_future.set_result(20);

    // Tasks: the done one comes first although it is last in the input.
    int_tasks tasks{corio::create_task(value_after(10ms, 1)), finished};
    auto task_it = corio::as_completed(tasks);
    corio::task<int> first = co_await task_it.next();
    CHECK(first == finished);
    corio::task<int> second = co_await task_it.next();
    CHECK(second == tasks[0]);
    CHECK(second.result() == 1);
    const auto awaited_1 = co_await task_it.next();  // never co_await inside a Catch macro
    CHECK_FALSE(awaited_1);

    // Futures too.
    loop.call_later(5ms, [pending_future]() mutable { pending_future.set_result(30); });
    std::vector<corio::future<int>> futures{pending_future, done_future};
    auto future_it = corio::as_completed(futures);
    corio::future<int> f1 = co_await future_it.next();
    CHECK(f1 == done_future);
    corio::future<int> f2 = co_await future_it.next();
    CHECK(f2 == pending_future);
    CHECK(f2.result() == 30);
    const auto awaited_2 = co_await future_it.next();  // never co_await inside a Catch macro
    CHECK_FALSE(awaited_2);
}

corio::coro<void> end_main() {
    int_tasks tasks{corio::create_task(value_after(1ms, 1))};
    auto it = corio::as_completed(tasks);
    corio::task<int> t = co_await it.next();
    CHECK(static_cast<bool>(t));
    CHECK(it.remaining() == 0);
    // Past the end: an empty handle, again and again, at once.
    corio::task<int> end = co_await it.next();
    CHECK_FALSE(end);
    corio::task<int> end_again = co_await it.next();
    CHECK_FALSE(end_again);

    // Empty input: empty at once.
    int_tasks none;
    auto empty_it = corio::as_completed(none);
    CHECK(empty_it.remaining() == 0);
    corio::task<int> nothing = co_await empty_it.next();
    CHECK_FALSE(nothing);
}

corio::coro<void> coros_main() {
    int_coros coros;
    coros.push_back(value_after(20ms, 0));
    coros.push_back(value_after(2ms, 1));
    coros.push_back(value_after(10ms, 2));
    auto it = corio::as_completed(std::move(coros));
    // The coros became tasks at once.
    CHECK(corio::all_tasks().size() == 4);
    std::vector<int> values;
    while (auto t = co_await it.next()) values.push_back(t.result());
    const std::vector<int> expected{1, 2, 0};
    CHECK(values == expected);
}

corio::coro<void> consume(corio::as_completed_iterator<corio::task<int>>& it, recorder& rec) {
    try {
        while (auto t = co_await it.next()) rec("got " + std::to_string(t.result()));
        rec("consumer: end");
    } catch (const corio::cancelled_error&) {
        rec("consumer: cancelled_error");
        throw;
    }
}

corio::coro<void> cancel_consumer_main(recorder& rec) {
    int_tasks tasks;
    tasks.push_back(corio::create_task(value_after(2ms, 1)));
    tasks.push_back(corio::create_task(value_after(30ms, 2)));
    auto it = corio::as_completed(tasks);
    corio::task<> consumer = corio::create_task(consume(it, rec));
    co_await corio::sleep(10ms);
    CHECK(consumer.cancel());
    try {
        co_await consumer;
    } catch (const corio::cancelled_error&) {
    }
    // Only the wait was cancelled: the task runs on, and the iterator still hands it out.
    CHECK_FALSE(tasks[1].done());
    CHECK(tasks[1].cancelling() == 0);
    corio::task<int> last = co_await it.next();
    CHECK(last == tasks[1]);
    CHECK(last.result() == 2);
    CHECK_FALSE(last.cancelled());
}

}  // namespace

TEST_CASE("as_completed: tasks come out in completion order", "[as_completed]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(completion_order_main());
}

TEST_CASE("as_completed: what is done already comes first", "[as_completed]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(already_done_main());
}

TEST_CASE("as_completed: an empty handle marks the end", "[as_completed]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(end_main());
}

TEST_CASE("as_completed: coros are wrapped in tasks", "[as_completed]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(coros_main());
}

TEST_CASE("as_completed: cancelling the consumer cancels only its wait", "[as_completed][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancel_consumer_main(rec));
    const std::vector<std::string> expected{"got 1", "consumer: cancelled_error"};
    CHECK(rec.events() == expected);
}
