// corio::task<T> (include/corio/task.hpp): scheduling, concurrency, states and accessors,
// names, current_task/all_tasks, ownership, conversions, awaiting, done callbacks and the
// reporting of exceptions nobody retrieved.
#include <corio/task.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using corio_test::counted;
using corio_test::exception_log;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

static_assert(std::is_same_v<corio::task<>, corio::task<void>>);
static_assert(std::is_copy_constructible_v<corio::task<int>>);
static_assert(std::is_convertible_v<corio::task<int>, corio::task<>>);
static_assert(std::is_convertible_v<const corio::task<int>&, corio::task<>>);
static_assert(!std::is_convertible_v<corio::task<>, corio::task<int>>);
static_assert(!std::is_convertible_v<corio::task<int>, bool>);  // explicit operator bool
// An lvalue `co_await t` yields `const T&`; `co_await std::move(t)` yields `T`.
static_assert(
    std::is_same_v<
        decltype(std::declval<corio::task<std::string>&>().operator co_await().await_resume()),
        const std::string&>);
static_assert(std::is_same_v<
              decltype(std::declval<corio::task<std::string>>().operator co_await().await_resume()),
              std::string>);

std::vector<std::string> names_of(const std::vector<corio::task<>>& tasks) {
    std::vector<std::string> names;
    for (const auto& t : tasks) names.push_back(t.get_name());
    std::sort(names.begin(), names.end());
    return names;
}

corio::coro<void> noop() { co_return; }

corio::coro<int> return_value(int v) { co_return v; }

corio::coro<int> fail_after_yield(std::string message) {
    co_await corio::sleep(0ms);
    throw test_error(message);
    co_return 0;
}

corio::coro<void> fail_now(std::string message) {
    throw test_error(message);
    co_return;
}

corio::coro<void> sleep_long() { co_await corio::sleep(1h); }

corio::coro<int> wait_for(corio::future<int> f) { co_return co_await f; }

corio::coro<void> wait_for_void(corio::future<> f) { co_await f; }

// --- scheduling ---------------------------------------------------------------------------

corio::coro<void> record(recorder& rec, std::string event) {
    rec(std::move(event));
    co_return;
}

corio::coro<void> not_inline_main(recorder& rec) {
    auto t = corio::create_task(record(rec, "child ran"));
    rec("create_task returned");
    if (!t.done()) rec("child not done yet");
    co_await corio::sleep(0ms);
    rec("creator resumed");
    if (t.done()) rec("child done");
}

TEST_CASE("task: create_task schedules the task; it runs at the creator's next suspension",
          "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(not_inline_main(rec));
    const std::vector<std::string> expected{"create_task returned", "child not done yet",
                                            "child ran", "creator resumed", "child done"};
    CHECK(rec.events() == expected);
}

corio::coro<void> sleep_for(std::chrono::milliseconds d) { co_await corio::sleep(d); }

corio::coro<void> two_sleepers_main() {
    auto a = corio::create_task(sleep_for(100ms));
    auto b = corio::create_task(sleep_for(100ms));
    co_await a;
    co_await b;
}

TEST_CASE("task: two tasks sleeping 100 ms run concurrently", "[task][timing]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::stopwatch watch;
    corio::run(two_sleepers_main());
    const auto elapsed = watch.elapsed();
    CHECK(elapsed >= 100ms);
    CHECK(elapsed < 190ms);
}

corio::coro<void> empty_coro_main(recorder& rec) {
    try {
        corio::create_task(corio::coro<int>{});
        rec("empty coro accepted");
    } catch (const std::invalid_argument&) {
        rec("empty coro refused");
    }
    co_return;
}

TEST_CASE("task: create_task needs a running loop and a coro", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK_THROWS_AS(corio::create_task(noop()), std::runtime_error);  // no running loop
    recorder rec;
    corio::run(empty_coro_main(rec));
    const std::vector<std::string> expected{"empty coro refused"};
    CHECK(rec.events() == expected);
}

// --- states and accessors -----------------------------------------------------------------

corio::coro<void> pending_state_main(recorder& rec) {
    auto f = corio::get_running_loop().create_future<int>();
    auto t = corio::create_task(wait_for(f));
    co_await corio::sleep(0ms);  // t now waits on f
    CHECK(t);
    CHECK_FALSE(t.done());
    CHECK_FALSE(t.cancelled());
    CHECK_THROWS_AS(t.result(), corio::invalid_state_error);
    CHECK_THROWS_AS(t.exception(), corio::invalid_state_error);
    CHECK(&t.get_loop() == &corio::get_running_loop());
    f.set_result(3);
    rec("awaited " + std::to_string(co_await t));
}

corio::coro<void> success_state_main() {
    auto t = corio::create_task(return_value(7));
    co_await t;
    CHECK(t.done());
    CHECK_FALSE(t.cancelled());
    CHECK(t.result() == 7);
    CHECK(t.exception() == nullptr);
    CHECK(t.result() == 7);  // as often as asked
}

corio::coro<void> failed_state_main(recorder& rec) {
    auto t = corio::create_task(fail_after_yield("boom"));
    try {
        co_await t;
    } catch (const test_error& e) {
        rec(std::string("await threw ") + e.what());
    }
    CHECK(t.done());
    CHECK_FALSE(t.cancelled());
    CHECK_THROWS_AS(t.result(), test_error);
    CHECK_THROWS_WITH(t.result(), "boom");
    const std::exception_ptr e = t.exception();
    CHECK(corio_test::holds<test_error>(e));
    CHECK(corio_test::what_of(e) == "boom");
}

corio::coro<void> cancelled_state_main(recorder& rec) {
    auto t = corio::create_task(sleep_long());
    co_await corio::sleep(0ms);
    CHECK(t.cancel());
    try {
        co_await t;
    } catch (const corio::cancelled_error&) {
        rec("await threw cancelled_error");
    }
    CHECK(t.done());
    CHECK(t.cancelled());
    CHECK_THROWS_AS(t.result(), corio::cancelled_error);
    CHECK_THROWS_AS(t.exception(), corio::cancelled_error);
}

TEST_CASE("task: every state and what each accessor returns or throws", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    SECTION("pending") {
        corio::run(pending_state_main(rec));
        const std::vector<std::string> expected{"awaited 3"};
        CHECK(rec.events() == expected);
    }
    SECTION("finished with a result") { corio::run(success_state_main()); }
    SECTION("finished with an exception") {
        corio::run(failed_state_main(rec));
        const std::vector<std::string> expected{"await threw boom"};
        CHECK(rec.events() == expected);
    }
    SECTION("cancelled") {
        corio::run(cancelled_state_main(rec));
        const std::vector<std::string> expected{"await threw cancelled_error"};
        CHECK(rec.events() == expected);
    }
    SECTION("empty handles") {
        corio::task<int> empty;
        CHECK_FALSE(empty);
        corio::task<> view;
        CHECK_FALSE(view);
    }
}

// --- names --------------------------------------------------------------------------------

corio::coro<void> names_main(std::vector<std::string>& names) {
    names.push_back(corio::current_task().get_name());
    auto a = corio::create_task(noop());
    auto b = corio::create_task(noop(), "worker");
    names.push_back(a.get_name());
    names.push_back(b.get_name());
    a.set_name("renamed");
    names.push_back(a.get_name());
    corio::current_task().set_name("main");
    names.push_back(corio::current_task().get_name());
    co_await a;
    co_await b;
}

corio::coro<void> numbering_main(std::vector<std::string>& names) {
    auto a = corio::create_task(noop());
    auto named = corio::create_task(noop(), "named");
    auto c = corio::create_task(noop());
    names.push_back(a.get_name());
    names.push_back(c.get_name());
    co_await a;
    co_await named;
    co_await c;
}

TEST_CASE("task: names are Task-N per loop, or given, or set", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::vector<std::string> names;
    SECTION("default, given and set names") {
        corio::run(names_main(names));
        const std::vector<std::string> expected{"Task-1", "Task-2", "worker", "renamed", "main"};
        CHECK(names == expected);
        names.clear();
        // A new loop counts from 1 again.
        corio::run(names_main(names));
        CHECK(names == expected);
    }
    SECTION("a named task does not use up a number (as asyncio's counter)") {
        corio::run(numbering_main(names));
        const std::vector<std::string> expected{"Task-2", "Task-3"};
        CHECK(names == expected);
    }
}

// --- current_task and all_tasks -----------------------------------------------------------

corio::coro<void> store_current(corio::task<>& out) {
    co_await corio::sleep(0ms);
    out = corio::current_task();
}

corio::coro<void> current_task_main(recorder& rec) {
    corio::task<> self = corio::current_task();
    if (self && self.get_name() == "Task-1" && !self.done()) rec("main sees itself");
    corio::task<> seen;
    auto child = corio::create_task(store_current(seen));
    co_await child;
    if (seen == child) rec("child sees itself");
    if (corio::current_task() == self) rec("main still itself");

    auto& loop = corio::get_running_loop();
    auto f = loop.create_future<>();
    loop.call_soon([&rec, f]() mutable {
        rec(corio::current_task() ? "callback sees a task" : "callback sees no task");
        f.set_result();
    });
    child.add_done_callback([&rec](const corio::task<>&) {
        rec(corio::current_task() ? "done callback sees a task" : "done callback sees no task");
    });
    co_await f;
    co_await corio::sleep(0ms);
}

TEST_CASE("task: current_task is the running task, empty outside any task", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK_FALSE(corio::current_task());  // no loop at all
    recorder rec;
    corio::run(current_task_main(rec));
    const std::vector<std::string> expected{"main sees itself", "child sees itself",
                                            "main still itself", "callback sees no task",
                                            "done callback sees no task"};
    CHECK(rec.events() == expected);
    CHECK_FALSE(corio::current_task());
}

corio::coro<void> all_tasks_main(std::vector<std::vector<std::string>>& snapshots) {
    corio::current_task().set_name("main");
    auto f = corio::get_running_loop().create_future<>();
    auto a = corio::create_task(wait_for_void(f), "a");
    auto b = corio::create_task(noop(), "b");
    auto c = corio::create_task(sleep_long(), "c");
    snapshots.push_back(names_of(corio::all_tasks()));  // b has not run yet
    co_await corio::sleep(0ms);
    snapshots.push_back(names_of(corio::all_tasks()));  // b is done
    f.set_result();
    co_await a;
    snapshots.push_back(names_of(corio::all_tasks()));
    c.cancel();
    try {
        co_await c;
    } catch (const corio::cancelled_error&) {
    }
    snapshots.push_back(names_of(corio::all_tasks()));
    CHECK(b.done());
}

TEST_CASE("task: all_tasks lists exactly the tasks not done", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::vector<std::vector<std::string>> snapshots;
    corio::run(all_tasks_main(snapshots));
    const std::vector<std::vector<std::string>> expected{
        {"a", "b", "c", "main"}, {"a", "c", "main"}, {"c", "main"}, {"main"}};
    CHECK(snapshots == expected);
    CHECK_THROWS_AS(corio::all_tasks(), std::runtime_error);  // no running loop
}

// --- ownership ----------------------------------------------------------------------------

corio::coro<void> detached_worker(recorder& rec, corio::future<> done) {
    co_await corio::sleep(1ms);
    rec("worker slept");
    co_await corio::sleep(0ms);
    rec("worker finished");
    done.set_result();
}

corio::coro<void> detached_silent(recorder& rec) {
    co_await corio::sleep(2ms);
    rec("silent worker finished");
}

corio::coro<void> fire_and_forget_main(recorder& rec) {
    auto done = corio::get_running_loop().create_future<>();
    corio::create_task(detached_worker(rec, done));  // the handle is dropped at once
    corio::create_task(detached_silent(rec));
    co_await done;
    co_await corio::sleep(20ms);
    rec(corio::all_tasks().size() == 1 ? "only main left" : "workers still pending");
}

TEST_CASE("task: a task whose handles were all dropped still runs to completion", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(fire_and_forget_main(rec));
    REQUIRE(rec.events().size() == 4);
    CHECK(rec.contains("worker slept"));
    CHECK(rec.contains("worker finished"));
    CHECK(rec.contains("silent worker finished"));
    CHECK(rec.events().back() == "only main left");
}

// --- conversion and awaiting --------------------------------------------------------------

corio::coro<void> conversion_main(recorder& rec) {
    corio::task<int> t = corio::create_task(return_value(5));
    corio::task<> view = t;
    CHECK(view == t);
    CHECK(view.get_name() == t.get_name());
    co_await view;
    CHECK(view.done());
    CHECK_NOTHROW(view.result());
    static_assert(std::is_void_v<decltype(view.result())>);
    CHECK(t.result() == 5);

    corio::task<> moved = std::move(t);
    CHECK_FALSE(t);  // NOLINT(bugprone-use-after-move): moved-from handles are empty
    CHECK(moved == view);

    corio::task<int> bad = corio::create_task(fail_after_yield("bad"));
    corio::task<> bad_view = bad;
    try {
        co_await bad_view;
        rec("no exception");
    } catch (const test_error& e) {
        rec(std::string("view rethrew ") + e.what());
    }
    CHECK_THROWS_AS(bad_view.result(), test_error);
    CHECK(corio_test::holds<test_error>(bad.exception()));
}

TEST_CASE("task: task<T> converts to task<> viewing the same task", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(conversion_main(rec));
    const std::vector<std::string> expected{"view rethrew bad"};
    CHECK(rec.events() == expected);
}

corio::coro<std::string> make_text() {
    co_await corio::sleep(0ms);
    co_return std::string(64, 'q');
}

corio::coro<std::unique_ptr<int>> make_unique_int(int v) {
    co_await corio::sleep(0ms);
    co_return std::make_unique<int>(v);
}

corio::coro<counted> make_counted(int v) {
    co_await corio::sleep(0ms);
    co_return counted{v};
}

corio::coro<void> await_results_main(recorder& rec) {
    auto text = corio::create_task(make_text());
    const std::string& r1 = co_await text;
    const std::string& r2 = co_await text;  // a done task can be awaited again
    if (&r1 == &text.result() && &r2 == &r1) rec("lvalue await refers to the stored result");

    auto owner = corio::create_task(make_unique_int(42));
    const std::unique_ptr<int>& peek = co_await owner;
    if (peek && *peek == 42) rec("peeked 42");
    std::unique_ptr<int> taken = co_await std::move(owner);
    if (taken && *taken == 42) rec("moved out 42");

    auto c = corio::create_task(make_counted(9));
    const counted& by_ref = co_await c;
    counted by_value = co_await std::move(c);
    if (by_ref.value == -1 && by_value.value == 9) rec("counted moved out");
}

TEST_CASE("task: co_await yields const T& on an lvalue and moves out of an rvalue", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    counted::reset();
    recorder rec;
    corio::run(await_results_main(rec));
    const std::vector<std::string> expected{"lvalue await refers to the stored result", "peeked 42",
                                            "moved out 42", "counted moved out"};
    CHECK(rec.events() == expected);
    CHECK(counted::copies() == 0);
    CHECK(counted::alive() == 0);
}

corio::coro<void> await_and_record(corio::task<int> t, recorder& rec, int i) {
    const int& v = co_await t;
    rec(std::to_string(i) + " got " + std::to_string(v));
}

corio::coro<void> many_awaiters_main(recorder& rec) {
    auto f = corio::get_running_loop().create_future<int>();
    auto shared = corio::create_task(wait_for(f));
    std::vector<corio::task<>> waiters;
    for (int i = 0; i < 5; ++i)
        waiters.push_back(corio::create_task(await_and_record(shared, rec, i)));
    co_await corio::sleep(0ms);
    co_await corio::sleep(0ms);
    rec("all waiting");
    f.set_result(9);
    for (auto& w : waiters) co_await w;
}

TEST_CASE("task: any number of tasks may await one task, resumed in order", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(many_awaiters_main(rec));
    const std::vector<std::string> expected{"all waiting", "0 got 9", "1 got 9",
                                            "2 got 9",     "3 got 9", "4 got 9"};
    CHECK(rec.events() == expected);
}

corio::coro<int> await_self(recorder& rec) {
    corio::task<> self = corio::current_task();
    try {
        co_await self;
        rec("awaited itself");
    } catch (const std::runtime_error&) {
        rec("refused with runtime_error");
    }
    co_await corio::sleep(0ms);  // and the task carries on normally
    co_return 1;
}

corio::coro<void> self_await_main(recorder& rec) {
    auto t = corio::create_task(await_self(rec));
    rec("result " + std::to_string(co_await t));
}

TEST_CASE("task: a task awaiting itself gets an exception", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(self_await_main(rec));
    const std::vector<std::string> expected{"refused with runtime_error", "result 1"};
    CHECK(rec.events() == expected);
}

// --- done callbacks -----------------------------------------------------------------------

corio::coro<void> schedule_then_finish(recorder& rec) {
    corio::get_running_loop().call_soon([&rec] { rec("call_soon from the body"); });
    rec("body done");
    co_return;
}

corio::coro<void> callbacks_order_main(recorder& rec) {
    auto t = corio::create_task(schedule_then_finish(rec));
    t.add_done_callback([&rec](const corio::task<>&) { rec("callback 1"); });
    t.add_done_callback([&rec](const corio::task<>&) { rec("callback 2"); });
    t.add_done_callback([&rec](const corio::task<>&) { rec("callback 3"); });
    rec("callbacks added");
    co_await corio::sleep(0ms);  // t finishes in this iteration; its callbacks are only queued
    rec("main resumed");
    co_await corio::sleep(0ms);
    rec("main resumed again");
}

TEST_CASE("task: done callbacks go through call_soon, in the order they were added",
          "[task][callbacks]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(callbacks_order_main(rec));
    const std::vector<std::string> expected{
        "callbacks added", "body done",  "main resumed", "call_soon from the body",
        "callback 1",      "callback 2", "callback 3",   "main resumed again"};
    CHECK(rec.events() == expected);
}

corio::coro<void> callback_types_main(recorder& rec) {
    corio::task<int> t = corio::create_task(return_value(3));
    t.add_done_callback([&rec, t](const auto& h) {
        static_assert(std::is_same_v<decltype(h), const corio::task<int>&>);
        if (h == t && h.done() && h.result() == 3) rec("typed handle");
    });
    corio::task<> view = t;
    view.add_done_callback([&rec, view](const auto& h) {
        static_assert(std::is_same_v<decltype(h), const corio::task<>&>);
        if (h == view && h.done()) rec("void view handle");
    });
    co_await t;
    co_await corio::sleep(0ms);
}

TEST_CASE("task: a done callback gets the handle type it was added through", "[task][callbacks]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(callback_types_main(rec));
    const std::vector<std::string> expected{"typed handle", "void view handle"};
    CHECK(rec.events() == expected);
}

corio::coro<void> remove_callbacks_main(recorder& rec) {
    auto t = corio::create_task(noop());
    const corio::callback_id removed =
        t.add_done_callback([&rec](const corio::task<>&) { rec("removed callback ran"); });
    const corio::callback_id kept =
        t.add_done_callback([&rec](const corio::task<>&) { rec("kept callback ran"); });
    CHECK(t.remove_done_callback(removed) == 1);
    CHECK(t.remove_done_callback(removed) == 0);
    co_await corio::sleep(0ms);  // t is done, the kept callback queued
    CHECK(t.done());
    // Already scheduled: asyncio's remove_done_callback no longer sees it, and it still runs.
    CHECK(t.remove_done_callback(kept) == 0);
    rec("before callbacks ran");
    co_await corio::sleep(0ms);
}

TEST_CASE("task: remove_done_callback removes a callback once", "[task][callbacks]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(remove_callbacks_main(rec));
    const std::vector<std::string> expected{"before callbacks ran", "kept callback ran"};
    CHECK(rec.events() == expected);
}

corio::coro<void> callback_on_done_main(recorder& rec) {
    auto t = corio::create_task(return_value(1));
    co_await t;
    t.add_done_callback([&rec](const corio::task<int>& h) {
        rec("callback ran with " + std::to_string(h.result()));
    });
    rec("added to a done task");
    co_await corio::sleep(0ms);
    rec("after one iteration");
}

TEST_CASE("task: a callback added to a done task is scheduled at once, not called inline",
          "[task][callbacks]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(callback_on_done_main(rec));
    const std::vector<std::string> expected{"added to a done task", "callback ran with 1",
                                            "after one iteration"};
    CHECK(rec.events() == expected);
}

corio::coro<void> throwing_callback_main(exception_log& log, recorder& rec) {
    log.install(corio::get_running_loop());
    auto t = corio::create_task(return_value(2));
    t.add_done_callback([](const corio::task<int>&) { throw test_error("from a done callback"); });
    t.add_done_callback([&rec](const corio::task<int>&) { rec("next callback ran"); });
    co_await t;
    co_await corio::sleep(0ms);
    rec("loop carried on");
}

TEST_CASE("task: an exception escaping a done callback goes to the exception handler",
          "[task][callbacks][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    exception_log log;
    recorder rec;
    corio::run(throwing_callback_main(log, rec));
    const std::vector<std::string> expected{"next callback ran", "loop carried on"};
    CHECK(rec.events() == expected);
    REQUIRE(log.size() == 1);
    CHECK(corio_test::what_of(log.contexts()[0].exception) == "from a done callback");
}

// --- exceptions nobody retrieved ----------------------------------------------------------

corio::coro<void> unretrieved_main(exception_log& log, recorder& rec, std::string& held_name) {
    log.install(corio::get_running_loop());
    corio::create_task(fail_now("dropped at once"), "doomed");
    co_await corio::sleep(0ms);
    co_await corio::sleep(0ms);
    rec("reports after the dropped task failed: " + std::to_string(log.size()));
    {
        auto held = corio::create_task(fail_now("held"));
        held_name = held.get_name();
        co_await corio::sleep(0ms);
        co_await corio::sleep(0ms);
        rec("reports while a handle lives: " + std::to_string(log.size()));
    }
    rec("reports after the last handle went: " + std::to_string(log.size()));
}

TEST_CASE("task: an exception never retrieved is reported, with the task's name",
          "[task][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    exception_log log;
    recorder rec;
    std::string held_name;
    corio::run(unretrieved_main(log, rec, held_name));
    const std::vector<std::string> expected{"reports after the dropped task failed: 1",
                                            "reports while a handle lives: 1",
                                            "reports after the last handle went: 2"};
    CHECK(rec.events() == expected);
    REQUIRE(log.size() == 2);
    const auto& dropped = log.contexts()[0];
    CHECK(corio_test::contains(dropped.message, "never retrieved"));
    CHECK((corio_test::contains(dropped.task_name, "doomed") ||
           corio_test::contains(dropped.message, "doomed")));
    CHECK(corio_test::holds<test_error>(dropped.exception));
    CHECK(corio_test::what_of(dropped.exception) == "dropped at once");
    const auto& held = log.contexts()[1];
    CHECK(corio_test::contains(held.message, "never retrieved"));
    CHECK(corio_test::contains(held_name, "Task-"));
    CHECK((held.task_name == held_name || corio_test::contains(held.message, held_name)));
    CHECK(corio_test::what_of(held.exception) == "held");
}

corio::coro<void> retrieved_main(exception_log& log) {
    log.install(corio::get_running_loop());
    {
        auto t = corio::create_task(fail_now("via exception()"));
        co_await corio::sleep(0ms);
        CHECK(t.exception() != nullptr);
    }
    {
        auto t = corio::create_task(fail_now("via result()"));
        co_await corio::sleep(0ms);
        CHECK_THROWS_AS(t.result(), test_error);
    }
    {
        auto t = corio::create_task(fail_now("via co_await"));
        try {
            co_await t;
        } catch (const test_error&) {
        }
    }
    {
        corio::task<int> t = corio::create_task(fail_after_yield("via a task<> view"));
        corio::task<> view = t;
        try {
            co_await view;
        } catch (const test_error&) {
        }
    }
    {
        auto t = corio::create_task(sleep_long());
        co_await corio::sleep(0ms);
        t.cancel();  // a cancelled task has no exception to report
        co_await corio::sleep(0ms);
        CHECK(t.cancelled());
    }
    co_await corio::sleep(0ms);
}

TEST_CASE("task: an exception that was retrieved is not reported", "[task][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    exception_log log;
    corio::run(retrieved_main(log));
    CHECK(log.size() == 0);
    for (const auto& c : log.contexts()) {
        FAIL_CHECK("reported: " << c.message << " / " << c.task_name << " / "
                                << corio_test::what_of(c.exception));
    }
}

// --- reference results -----------------------------------------------------------------

int referenced_value = 1;

corio::coro<int&> reference_to_global() { co_return referenced_value; }

corio::coro<int> reference_main() {
    corio::task<int&> t = corio::create_task(reference_to_global());
    int& through_await = co_await t;
    CHECK(&through_await == &referenced_value);
    int& through_result = t.result();
    CHECK(&through_result == &referenced_value);
    through_await = 5;
    co_return referenced_value;
}

TEST_CASE("task: a task<T&> hands out the reference itself", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    referenced_value = 1;
    CHECK(corio::run(reference_main()) == 5);
    int& from_run = corio::run(reference_to_global());
    CHECK(&from_run == &referenced_value);
}

// Task states are rounded to 8 bytes where the result allows, and to 16 where it needs that.
struct alignas(16) aligned_result {
    double value;
};

corio::coro<aligned_result> make_aligned(double value) {
    co_await corio::sleep(0ms);
    co_return aligned_result{value};
}

corio::coro<bool> aligned_results_main() {
    std::vector<corio::task<aligned_result>> aligned;
    std::vector<corio::task<int>> small;  // interleaved states of other sizes
    for (int i = 0; i < 50; ++i) {
        aligned.push_back(corio::create_task(make_aligned(i)));
        small.push_back(corio::create_task(return_value(i)));
    }
    bool ok = true;
    for (std::size_t i = 0; i < aligned.size(); ++i) {
        co_await aligned[i];
        const aligned_result& result = aligned[i].result();
        ok = ok && reinterpret_cast<std::uintptr_t>(&result) % 16 == 0;
        ok = ok && result.value == static_cast<double>(i);
        const int small_result = co_await small[i];
        ok = ok && small_result == static_cast<int>(i);
    }
    co_return ok;
}

TEST_CASE("task: a 16-aligned result is stored aligned", "[task]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK(corio::run(aligned_results_main()));
}

}  // namespace
