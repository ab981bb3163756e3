// Eager tasks (create_task with {.name = {}, .eager = true}, include/corio/task.hpp): the body runs
// inside create_task up to its first suspension; one that finishes (or fails) at once is done when
// create_task returns; current_task() while it runs; names; a loop that is not running starts
// it as any other; nested eager tasks; create_task of other awaitables (q.get(), sleep); and the
// name overloads.
#include <corio/task.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/queue.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

corio::coro<int> returns(recorder& rec, int value) {
    rec("body");
    co_return value;
}

corio::coro<int> throws(recorder& rec, std::string message) {
    rec("body");
    throw test_error(message);
    co_return 0;
}

corio::coro<int> suspends_once(recorder& rec) {
    rec("body start");
    co_await corio::sleep(1ms);
    rec("body end");
    co_return 3;
}

corio::coro<int> value_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

/// Records the name of the current task before and after suspending.
corio::coro<void> records_current(recorder& rec) {
    rec("current: " + corio::current_task().get_name());
    co_await corio::sleep(1ms);
    rec("current after sleep: " + corio::current_task().get_name());
}

bool only_current_task_left() {
    std::vector<corio::task<>> tasks = corio::all_tasks();
    return tasks.size() == 1 && tasks[0] == corio::current_task();
}

corio::coro<void> at_once_main(recorder& rec) {
    corio::event_loop& loop = corio::get_running_loop();
    bool soon_ran = false;
    loop.call_soon([&soon_ran] { soon_ran = true; });
    corio::task<int> t = corio::create_task(returns(rec, 5), {.name = {}, .eager = true});
    rec("after create_task");
    CHECK_FALSE(soon_ran);  // the body ran inline, not from the ready queue
    CHECK(t.done());
    CHECK_FALSE(t.cancelled());
    CHECK(t.result() == 5);
    const std::vector<std::string> expected{"body", "after create_task"};
    CHECK(rec.events() == expected);
    const int awaited = co_await t;
    CHECK(awaited == 5);
    rec.clear();

    // Not eager: the body has not run yet.
    corio::task<int> lazy = corio::create_task(returns(rec, 6));
    CHECK_FALSE(lazy.done());
    CHECK(rec.events().empty());
    const int lazy_value = co_await lazy;
    CHECK(lazy_value == 6);
    CHECK(soon_ran);

    // {.name = {}, .eager = false} is the default.
    corio::task<int> explicit_lazy =
        corio::create_task(value_after(0ms, 7), {.name = {}, .eager = false});
    CHECK_FALSE(explicit_lazy.done());
    const int explicit_value = co_await explicit_lazy;
    CHECK(explicit_value == 7);

    // Cancelling an eager task that already finished does nothing.
    corio::task<int> finished = corio::create_task(returns(rec, 8), {.name = {}, .eager = true});
    CHECK_FALSE(finished.cancel());
    CHECK(finished.result() == 8);
    CHECK(only_current_task_left());
}

corio::coro<void> throws_main(recorder& rec, corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    corio::task<int> t = corio::create_task(throws(rec, "eager boom"), {.name = {}, .eager = true});
    REQUIRE(t.done());
    CHECK_FALSE(t.cancelled());
    CHECK(corio_test::holds<test_error>(t.exception()));
    CHECK(corio_test::what_of(t.exception()) == "eager boom");
    bool rethrown = false;
    try {
        (void)co_await t;
    } catch (const test_error&) {
        rethrown = true;
    }
    CHECK(rethrown);
    t = corio::task<int>();
    CHECK(log.size() == 0);  // retrieved: nothing to report

    // Never retrieved: reported when the last handle goes, as for any task.
    {
        corio::task<int> dropped =
            corio::create_task(throws(rec, "dropped"), {.name = {}, .eager = true});
        CHECK(dropped.done());
    }
    REQUIRE(log.size() == 1);
    CHECK(corio_test::contains(log.contexts()[0].message, "never retrieved"));

    // A body that throws cancelled_error at once ends cancelled, as a lazy one would.
    corio::task<void> self_cancelled = corio::create_task(
        []() -> corio::coro<void> {
            throw corio::cancelled_error("by itself");
            co_return;
        }(),
        {.name = {}, .eager = true});
    CHECK(self_cancelled.done());
    CHECK(self_cancelled.cancelled());
    corio::task<void> lazy_self_cancelled = corio::create_task([]() -> corio::coro<void> {
        throw corio::cancelled_error("by itself");
        co_return;
    }());
    try {
        co_await lazy_self_cancelled;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(lazy_self_cancelled.cancelled() == self_cancelled.cancelled());
}

corio::coro<void> suspends_main(recorder& rec) {
    corio::task<int> t = corio::create_task(suspends_once(rec), {.name = {}, .eager = true});
    rec("after create_task");
    CHECK_FALSE(t.done());
    const int value = co_await t;
    CHECK(value == 3);
    const std::vector<std::string> expected{"body start", "after create_task", "body end"};
    CHECK(rec.events() == expected);

    // An eager task cancelled while suspended ends cancelled.
    rec.clear();
    corio::task<int> cancelled =
        corio::create_task(suspends_once(rec), {.name = {}, .eager = true});
    CHECK(cancelled.cancel());
    try {
        (void)co_await cancelled;
    } catch (const corio::cancelled_error&) {
        rec("cancelled");
    }
    CHECK(cancelled.cancelled());
    const std::vector<std::string> expected_cancelled{"body start", "cancelled"};
    CHECK(rec.events() == expected_cancelled);
    CHECK(only_current_task_left());
}

corio::coro<void> current_main(recorder& rec) {
    corio::current_task().set_name("main");
    corio::task<> t = corio::create_task(records_current(rec), {.name = "eager", .eager = true});
    rec("creator: " + corio::current_task().get_name());
    CHECK(t.get_name() == "eager");
    co_await t;
    const std::vector<std::string> expected{"current: eager", "creator: main",
                                            "current after sleep: eager"};
    CHECK(rec.events() == expected);

    // From a callback (no task current): the body sees its task, the callback none after.
    rec.clear();
    corio::task<> from_callback;
    bool none_after = false;
    corio::get_running_loop().call_soon([&] {
        from_callback = corio::create_task(records_current(rec), {.name = "cb", .eager = true});
        none_after = !corio::current_task();
    });
    co_await corio::sleep(0ms);
    REQUIRE(from_callback);
    CHECK(none_after);
    co_await from_callback;
    const std::vector<std::string> expected_cb{"current: cb", "current after sleep: cb"};
    CHECK(rec.events() == expected_cb);
}

corio::coro<void> names_main(recorder& rec) {
    corio::task<int> named = corio::create_task(suspends_once(rec), {.name = "x", .eager = true});
    CHECK(named.get_name() == "x");
    corio::task<int> done_named = corio::create_task(returns(rec, 1), {.name = "y", .eager = true});
    CHECK(done_named.done());
    CHECK(done_named.get_name() == "y");
    corio::task<int> unnamed = corio::create_task(returns(rec, 2), {.name = {}, .eager = true});
    CHECK(unnamed.get_name().rfind("Task-", 0) == 0);
    const int named_value = co_await named;
    CHECK(named_value == 3);
    CHECK(named.get_name() == "x");

    // The name overloads still work: a literal, a std::string (lvalue and rvalue), a view.
    corio::task<int> literal = corio::create_task(value_after(0ms, 1), "literal");
    const std::string lvalue = "lvalue";
    corio::task<int> from_lvalue = corio::create_task(value_after(0ms, 2), lvalue);
    corio::task<int> from_rvalue = corio::create_task(value_after(0ms, 3), std::string("rvalue"));
    corio::task<int> from_view = corio::create_task(value_after(0ms, 4), std::string_view("view"));
    corio::task<int> on_loop =
        corio::get_running_loop().create_task(value_after(0ms, 5), std::string("on loop"));
    CHECK(literal.get_name() == "literal");
    CHECK(from_lvalue.get_name() == "lvalue");
    CHECK(from_rvalue.get_name() == "rvalue");
    CHECK(from_view.get_name() == "view");
    CHECK(on_loop.get_name() == "on loop");
    CHECK_FALSE(literal.done());  // named, not eager
    int sum = co_await literal;
    sum += co_await from_lvalue;
    sum += co_await from_rvalue;
    sum += co_await from_view;
    sum += co_await on_loop;
    CHECK(sum == 15);
    // Options with the name only: not eager.
    corio::task<int> options_named = corio::create_task(value_after(0ms, 6), {.name = "opt"});
    CHECK(options_named.get_name() == "opt");
    CHECK_FALSE(options_named.done());
    const int options_value = co_await options_named;
    CHECK(options_value == 6);
}

corio::coro<void> inner(recorder& rec) {
    rec("inner start: " + corio::current_task().get_name());
    co_await corio::sleep(1ms);
    rec("inner end");
}

corio::coro<int> inner_at_once(recorder& rec) {
    rec("inner at once: " + corio::current_task().get_name());
    co_return 10;
}

corio::coro<int> outer(recorder& rec) {
    rec("outer start: " + corio::current_task().get_name());
    corio::task<int> at_once =
        corio::create_task(inner_at_once(rec), {.name = "inner at once", .eager = true});
    CHECK(at_once.done());
    rec("outer after at once: " + corio::current_task().get_name());
    corio::task<> suspended = corio::create_task(inner(rec), {.name = "inner", .eager = true});
    CHECK_FALSE(suspended.done());
    rec("outer after inner: " + corio::current_task().get_name());
    co_await suspended;
    rec("outer end");
    co_return at_once.result();
}

corio::coro<void> nested_main(recorder& rec) {
    corio::current_task().set_name("main");
    corio::task<int> t = corio::create_task(outer(rec), {.name = "outer", .eager = true});
    rec("main after create_task: " + corio::current_task().get_name());
    const int value = co_await t;
    CHECK(value == 10);
    const std::vector<std::string> expected{"outer start: outer",
                                            "inner at once: inner at once",
                                            "outer after at once: outer",
                                            "inner start: inner",
                                            "outer after inner: outer",
                                            "main after create_task: main",
                                            "inner end",
                                            "outer end"};
    CHECK(rec.events() == expected);
    CHECK(only_current_task_left());
}

corio::coro<void> awaitables_main() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::queue<int> q;

    // Lazy: the getter waits in a task of its own.
    corio::task<int> getter = corio::create_task(q.get());
    CHECK_FALSE(getter.done());
    loop.call_later(1ms, [&q] { q.put_nowait(1); });
    const int got = co_await getter;
    CHECK(got == 1);

    // Eager on a non-empty queue: done at once with the item.
    q.put_nowait(2);
    corio::task<int> ready = corio::create_task(q.get(), {.name = {}, .eager = true});
    CHECK(ready.done());
    CHECK(ready.result() == 2);
    CHECK(q.empty());

    // Lazy on a non-empty queue: the item is taken only when the task runs.
    q.put_nowait(3);
    corio::task<int> lazy_ready = corio::create_task(q.get());
    CHECK_FALSE(lazy_ready.done());
    CHECK(q.qsize() == 1);
    const int lazy_got = co_await lazy_ready;
    CHECK(lazy_got == 3);

    // Eager on an empty queue: already waiting when create_task returns, so it is the first
    // getter served.
    corio::task<int> first = corio::create_task(q.get(), {.name = "first", .eager = true});
    corio::task<int> second = corio::create_task(q.get(), "second");
    CHECK_FALSE(first.done());
    CHECK(first.get_name() == "first");
    CHECK(second.get_name() == "second");
    co_await corio::sleep(0ms);  // the lazy getter starts waiting too
    q.put_nowait(4);
    q.put_nowait(5);
    const int first_got = co_await first;
    const int second_got = co_await second;
    CHECK(first_got == 4);
    CHECK(second_got == 5);

    // Sleeps.
    corio_test::stopwatch watch;
    corio::task<void> eager_sleep =
        corio::create_task(corio::sleep(5ms), {.name = {}, .eager = true});
    corio::task<void> lazy_sleep = corio::create_task(corio::sleep(5ms));
    CHECK_FALSE(eager_sleep.done());
    CHECK_FALSE(lazy_sleep.done());
    co_await eager_sleep;
    co_await lazy_sleep;
    CHECK(watch.elapsed() >= 5ms);
    CHECK(watch.elapsed() < 5s);

    // An eager getter cancelled while waiting: an item put later stays in the queue.
    corio::task<int> cancelled = corio::create_task(q.get(), {.name = {}, .eager = true});
    CHECK(cancelled.cancel());
    try {
        (void)co_await cancelled;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(cancelled.cancelled());
    q.put_nowait(6);
    CHECK(q.qsize() == 1);
    CHECK(q.get_nowait() == 6);
    CHECK(only_current_task_left());
}

corio::coro<void> debug_main(recorder& rec) {
    CHECK(corio::get_running_loop().get_debug());
    co_await at_once_main(rec);
    rec.clear();
    co_await suspends_main(rec);
}

}  // namespace

TEST_CASE("eager task: a body that never suspends is done when create_task returns",
          "[task][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(at_once_main(rec));
}

TEST_CASE("eager task: a body that throws at once stores the exception in the task",
          "[task][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio_test::exception_log log;
    corio::run(throws_main(rec, log));
    CHECK(log.size() == 1);
}

TEST_CASE("eager task: the body runs up to its first suspension inside create_task",
          "[task][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(suspends_main(rec));
}

TEST_CASE("eager task: current_task() is the new task in its body, the creator's after",
          "[task][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(current_main(rec));
}

TEST_CASE("eager task: names, and the name overloads of create_task", "[task][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(names_main(rec));
}

TEST_CASE("eager task: on a loop that is not running it starts when the loop runs",
          "[task][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    {
        auto loop = corio::new_event_loop();
        corio::task<int> t = loop->create_task(suspends_once(rec), {.name = {}, .eager = true});
        CHECK(rec.events().empty());
        CHECK_FALSE(t.done());
        corio::task<int> at_once = loop->create_task(returns(rec, 4), {.name = "n", .eager = true});
        CHECK(rec.events().empty());
        CHECK_FALSE(at_once.done());
        CHECK(at_once.get_name() == "n");
        CHECK(loop->run_until_complete(t) == 3);
        CHECK(at_once.done());
        CHECK(at_once.result() == 4);
        const std::vector<std::string> expected{"body start", "body", "body end"};
        CHECK(rec.events() == expected);
        loop->close();
    }
}

TEST_CASE("eager task: an eager body creating eager tasks", "[task][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(nested_main(rec));
}

TEST_CASE("eager task: create_task of other awaitables (q.get(), sleep), eager or not",
          "[task][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio::run(awaitables_main());
}

TEST_CASE("eager task: in debug mode too", "[task][eager][debug]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(debug_main(rec), corio::run_options{.debug = true});
}
