// corio::future<T> (include/corio/future.hpp): creation, setting a result or an exception,
// states and accessors, several waiters, completion from callbacks, future<void>,
// cancellation, done callbacks and never-retrieved exceptions.
#include <corio/as_completed.hpp>
#include <corio/future.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/gather.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>
#include <corio/wait.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
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

static_assert(std::is_copy_constructible_v<corio::future<int>>);
static_assert(!std::is_convertible_v<corio::future<int>, bool>);
static_assert(
    std::is_same_v<
        decltype(std::declval<corio::future<std::string>&>().operator co_await().await_resume()),
        const std::string&>);
static_assert(
    std::is_same_v<
        decltype(std::declval<corio::future<std::string>>().operator co_await().await_resume()),
        std::string>);

corio::coro<void> states_main() {
    auto& loop = corio::get_running_loop();

    corio::future<int> f = loop.create_future<int>();
    CHECK(f);
    CHECK(&f.get_loop() == &loop);
    CHECK_FALSE(f.done());
    CHECK_FALSE(f.cancelled());
    CHECK_THROWS_AS(f.result(), corio::invalid_state_error);
    CHECK_THROWS_AS(f.exception(), corio::invalid_state_error);
    f.set_result(5);
    CHECK(f.done());
    CHECK_FALSE(f.cancelled());
    CHECK(f.result() == 5);
    CHECK(f.exception() == nullptr);
    const int awaited = co_await f;
    CHECK(awaited == 5);

    corio::future<int> failed = loop.create_future<int>();
    failed.set_exception(std::make_exception_ptr(test_error("bad")));
    CHECK(failed.done());
    CHECK_FALSE(failed.cancelled());
    CHECK_THROWS_AS(failed.result(), test_error);
    CHECK_THROWS_WITH(failed.result(), "bad");
    CHECK(corio_test::holds<test_error>(failed.exception()));

    corio::future<int> cancelled = loop.create_future<int>();
    CHECK(cancelled.cancel("no longer needed"));
    CHECK(cancelled.done());
    CHECK(cancelled.cancelled());
    CHECK_FALSE(cancelled.cancel());
    CHECK_THROWS_AS(cancelled.result(), corio::cancelled_error);
    CHECK_THROWS_AS(cancelled.exception(), corio::cancelled_error);
    try {
        (void)cancelled.result();
    } catch (const corio::cancelled_error& e) {
        CHECK(std::string(e.what()) == "no longer needed");
    }

    corio::future<int> empty;
    CHECK_FALSE(empty);
    corio::future<int> moved = std::move(f);
    CHECK_FALSE(f);  // NOLINT(bugprone-use-after-move): moved-from handles are empty
    CHECK(moved.result() == 5);
}

TEST_CASE("future: pending, finished, failed and cancelled states", "[future]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(states_main());
}

corio::coro<void> set_twice_main() {
    auto& loop = corio::get_running_loop();
    auto f = loop.create_future<int>();
    f.set_result(1);
    CHECK_THROWS_AS(f.set_result(2), corio::invalid_state_error);
    CHECK_THROWS_AS(f.set_exception(std::make_exception_ptr(test_error("x"))),
                    corio::invalid_state_error);
    CHECK(f.result() == 1);

    auto g = loop.create_future<int>();
    g.set_exception(std::make_exception_ptr(test_error("first")));
    CHECK_THROWS_AS(g.set_result(2), corio::invalid_state_error);
    CHECK_THROWS_AS(g.set_exception(std::make_exception_ptr(test_error("second"))),
                    corio::invalid_state_error);
    CHECK_THROWS_WITH(g.result(), "first");

    auto h = loop.create_future<>();
    h.cancel();
    CHECK_THROWS_AS(h.set_result(), corio::invalid_state_error);
    CHECK(h.cancelled());
    co_return;
}

TEST_CASE("future: setting a done future throws invalid_state_error", "[future]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(set_twice_main());
}

corio::coro<void> wait_and_record(corio::future<std::string> f, recorder& rec, int i) {
    const std::string& v = co_await f;
    rec(std::to_string(i) + " got " + v);
}

corio::coro<void> several_waiters_main(recorder& rec) {
    auto f = corio::get_running_loop().create_future<std::string>();
    std::vector<corio::task<>> waiters;
    for (int i = 0; i < 4; ++i) waiters.push_back(corio::create_task(wait_and_record(f, rec, i)));
    co_await corio::sleep(0ms);
    rec("all waiting");
    f.set_result("v");
    rec("set_result returned");  // waiters resume through the loop, not inline
    for (auto& w : waiters) co_await w;
}

TEST_CASE("future: several tasks await one future and resume in order", "[future]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(several_waiters_main(rec));
    const std::vector<std::string> expected{
        "all waiting", "set_result returned", "0 got v", "1 got v", "2 got v", "3 got v"};
    CHECK(rec.events() == expected);
}

corio::coro<void> failing_waiter(corio::future<int> f, recorder& rec, int i) {
    try {
        (void)co_await f;
    } catch (const test_error& e) {
        rec(std::to_string(i) + " caught " + e.what());
    }
}

corio::coro<void> exception_to_waiters_main(recorder& rec) {
    auto f = corio::get_running_loop().create_future<int>();
    auto a = corio::create_task(failing_waiter(f, rec, 0));
    auto b = corio::create_task(failing_waiter(f, rec, 1));
    co_await corio::sleep(0ms);
    f.set_exception(std::make_exception_ptr(test_error("shared failure")));
    co_await a;
    co_await b;
}

TEST_CASE("future: an exception reaches every waiter", "[future]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(exception_to_waiters_main(rec));
    const std::vector<std::string> expected{"0 caught shared failure", "1 caught shared failure"};
    CHECK(rec.events() == expected);
}

corio::coro<void> callbacks_complete_main(recorder& rec) {
    auto& loop = corio::get_running_loop();
    auto soon = loop.create_future<int>();
    loop.call_soon([soon]() mutable { soon.set_result(1); });
    rec("call_soon: " + std::to_string(co_await soon));

    auto later = loop.create_future<int>();
    const auto start = loop.time();
    loop.call_later(20ms, [later]() mutable { later.set_result(2); });
    rec("call_later: " + std::to_string(co_await later));
    const auto waited = loop.time() - start;
    CHECK(waited >= 20ms);
    CHECK(waited < 1s);

    auto at = loop.create_future<>();
    loop.call_at(loop.time() + 5ms, [at]() mutable { at.set_result(); });
    co_await at;
    rec("call_at: done");

    auto failed = loop.create_future<int>();
    loop.call_soon(
        [failed]() mutable { failed.set_exception(std::make_exception_ptr(test_error("cb"))); });
    try {
        (void)co_await failed;
    } catch (const test_error& e) {
        rec(std::string("call_soon exception: ") + e.what());
    }
}

TEST_CASE("future: completed by call_soon, call_later and call_at callbacks", "[future]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(callbacks_complete_main(rec));
    const std::vector<std::string> expected{"call_soon: 1", "call_later: 2", "call_at: done",
                                            "call_soon exception: cb"};
    CHECK(rec.events() == expected);
}

corio::coro<void> void_future_main(recorder& rec) {
    auto& loop = corio::get_running_loop();
    corio::future<> f = loop.create_future();
    static_assert(std::is_same_v<decltype(f), corio::future<void>>);
    CHECK_THROWS_AS(f.result(), corio::invalid_state_error);
    loop.call_soon([f]() mutable { f.set_result(); });
    co_await f;
    rec("void future done");
    CHECK(f.done());
    CHECK_NOTHROW(f.result());
    static_assert(std::is_void_v<decltype(f.result())>);
    CHECK(f.exception() == nullptr);

    corio::future<> g = loop.create_future<>();
    g.set_exception(std::make_exception_ptr(test_error("void failure")));
    try {
        co_await g;
    } catch (const test_error& e) {
        rec(std::string("void future threw ") + e.what());
    }
}

TEST_CASE("future<void>: set_result() with no value", "[future]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(void_future_main(rec));
    const std::vector<std::string> expected{"void future done", "void future threw void failure"};
    CHECK(rec.events() == expected);
}

corio::coro<void> cancelled_waiter(corio::future<int> f, recorder& rec, int i) {
    try {
        (void)co_await f;
        rec(std::to_string(i) + " got a value");
    } catch (const corio::cancelled_error& e) {
        rec(std::to_string(i) + " cancelled: " + e.what());
    }
}

corio::coro<void> cancel_wakes_main(recorder& rec) {
    auto f = corio::get_running_loop().create_future<int>();
    auto a = corio::create_task(cancelled_waiter(f, rec, 0));
    auto b = corio::create_task(cancelled_waiter(f, rec, 1));
    co_await corio::sleep(0ms);
    CHECK(f.cancel("gone"));
    CHECK(f.cancelled());
    co_await a;
    co_await b;
    // The waiters caught it: their tasks finished normally.
    CHECK_FALSE(a.cancelled());
    CHECK_FALSE(b.cancelled());
}

TEST_CASE("future: cancelling a future wakes its waiters with cancelled_error", "[future]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancel_wakes_main(rec));
    const std::vector<std::string> expected{"0 cancelled: gone", "1 cancelled: gone"};
    CHECK(rec.events() == expected);
}

corio::coro<void> move_out_main(recorder& rec) {
    auto& loop = corio::get_running_loop();
    auto text = loop.create_future<std::string>();
    text.set_result(std::string(50, 't'));
    const std::string& ref = co_await text;
    if (&ref == &text.result()) rec("lvalue await refers to the stored value");

    auto owner = loop.create_future<std::unique_ptr<int>>();
    loop.call_soon([owner]() mutable { owner.set_result(std::make_unique<int>(8)); });
    std::unique_ptr<int> p = co_await std::move(owner);
    if (p && *p == 8) rec("moved out 8");

    auto c = loop.create_future<counted>();
    c.set_result(counted{4});
    counted v = co_await std::move(c);
    if (v.value == 4) rec("counted 4");
}

TEST_CASE("future: co_await yields const T& on an lvalue, moves out of an rvalue", "[future]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    counted::reset();
    recorder rec;
    corio::run(move_out_main(rec));
    const std::vector<std::string> expected{"lvalue await refers to the stored value",
                                            "moved out 8", "counted 4"};
    CHECK(rec.events() == expected);
    CHECK(counted::copies() == 0);
    CHECK(counted::alive() == 0);
}

corio::coro<void> future_callbacks_main(recorder& rec) {
    auto& loop = corio::get_running_loop();
    auto f = loop.create_future<int>();
    f.add_done_callback([&rec, f](const auto& h) {
        static_assert(std::is_same_v<decltype(h), const corio::future<int>&>);
        if (h == f) rec("callback 1 got " + std::to_string(h.result()));
    });
    const corio::callback_id removed =
        f.add_done_callback([&rec](const corio::future<int>&) { rec("removed callback ran"); });
    f.add_done_callback([&rec](const corio::future<int>&) { rec("callback 3"); });
    CHECK(f.remove_done_callback(removed) == 1);
    CHECK(f.remove_done_callback(removed) == 0);
    f.set_result(6);
    rec("set_result returned");
    co_await corio::sleep(0ms);
    f.add_done_callback([&rec](const corio::future<int>&) { rec("added when done"); });
    rec("added to the done future");
    co_await corio::sleep(0ms);
}

corio::coro<int> await_future(corio::future<int> f, recorder& rec) {
    const int value = co_await f;
    rec("awaiter got " + std::to_string(value));
    co_return value;
}

// Tasks awaiting a future and a gather listening to it are listeners too, without an id:
// removing a callback leaves them alone, whatever the ids.
corio::coro<void> remove_among_other_listeners_main(recorder& rec) {
    auto& loop = corio::get_running_loop();
    auto f = loop.create_future<int>();
    corio::task<int> first = corio::create_task(await_future(f, rec));
    co_await corio::sleep(0ms);  // `first` now waits on f
    const corio::callback_id removed =
        f.add_done_callback([&rec](const corio::future<int>&) { rec("removed callback ran"); });
    auto gathering = corio::gather(f);
    corio::task<int> second = corio::create_task(await_future(f, rec));
    co_await corio::sleep(0ms);
    f.add_done_callback([&rec](const corio::future<int>&) { rec("kept callback ran"); });
    CHECK(f.remove_done_callback(removed) == 1);
    CHECK(f.remove_done_callback(removed) == 0);
    CHECK(f.remove_done_callback(corio::callback_id{0}) == 0);
    f.set_result(9);
    const std::tuple<int> gathered = co_await gathering;
    const int a = co_await first;
    const int b = co_await second;
    CHECK(std::get<0>(gathered) == 9);
    CHECK(a == 9);
    CHECK(b == 9);
    co_await corio::sleep(0ms);
}

TEST_CASE("future: removing a done callback leaves awaiting tasks and gathers alone",
          "[future][callbacks]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(remove_among_other_listeners_main(rec));
    const std::vector<std::string> expected{"awaiter got 9", "awaiter got 9", "kept callback ran"};
    CHECK(rec.events() == expected);
}

TEST_CASE("future: done callbacks run through the loop, in order, and can be removed",
          "[future][callbacks]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(future_callbacks_main(rec));
    const std::vector<std::string> expected{"set_result returned", "callback 1 got 6", "callback 3",
                                            "added to the done future", "added when done"};
    CHECK(rec.events() == expected);
}

corio::coro<void> future_unretrieved_main(exception_log& log, recorder& rec) {
    auto& loop = corio::get_running_loop();
    log.install(loop);
    {
        auto f = loop.create_future<int>();
        f.set_exception(std::make_exception_ptr(test_error("nobody looked")));
    }
    rec("reports after dropping an unretrieved future: " + std::to_string(log.size()));
    {
        auto f = loop.create_future<int>();
        f.set_exception(std::make_exception_ptr(test_error("looked at")));
        CHECK(f.exception() != nullptr);
    }
    rec("reports after dropping a retrieved one: " + std::to_string(log.size()));
    co_return;
}

TEST_CASE("future: an exception never retrieved is reported when the last handle goes",
          "[future][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    exception_log log;
    recorder rec;
    corio::run(future_unretrieved_main(log, rec));
    const std::vector<std::string> expected{"reports after dropping an unretrieved future: 1",
                                            "reports after dropping a retrieved one: 1"};
    CHECK(rec.events() == expected);
    REQUIRE(log.size() == 1);
    CHECK(corio_test::contains(log.contexts()[0].message, "never retrieved"));
    CHECK(corio_test::what_of(log.contexts()[0].exception) == "nobody looked");
}

corio::coro<int> wait_for_loop_future(corio::future<int> f) { co_return co_await f; }

TEST_CASE("future: made by a loop before it runs, set by a callback", "[future]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    auto loop = corio::new_event_loop();
    auto f = loop->create_future<int>();
    loop->call_soon([f]() mutable { f.set_result(11); });
    CHECK(loop->run_until_complete(wait_for_loop_future(f)) == 11);
    CHECK(f.result() == 11);
}

// The list behind every future's listeners (detail/future_state.hpp): one pointer, newest in
// front, drained oldest first, with listeners unlinking themselves and others at any time.
struct test_listener : corio::detail::listener {
    explicit test_listener(int id) noexcept : listener(&ignore), id_(id) {}
    // `drain` hands each listener to the test's function, which does the telling.
    static void ignore(listener*, corio::detail::future_state_base&, bool) noexcept {}
    int id_;
    test_listener* unlink_when_told = nullptr;
    test_listener* push_when_told = nullptr;
};

TEST_CASE("future: listeners are told oldest first, whatever unlinks meanwhile", "[future]") {
    corio::detail::listener_list list;
    std::vector<int> log;
    std::vector<test_listener> listeners;
    listeners.reserve(6);
    for (int id = 0; id < 6; ++id) listeners.emplace_back(id);
    for (int id = 0; id < 5; ++id) list.push(&listeners[static_cast<std::size_t>(id)]);
    CHECK_FALSE(list.empty());

    listeners[1].unlink();  // leaves from the middle, knowing no list
    CHECK_FALSE(listeners[1].linked());
    listeners[4].unlink();                          // the newest, at the front
    listeners[0].unlink_when_told = &listeners[3];  // a later one, while draining
    listeners[2].push_when_told = &listeners[5];    // a new one, while draining

    list.drain([&](corio::detail::listener* l) {
        auto* self = static_cast<test_listener*>(l);
        CHECK_FALSE(self->linked());
        log.push_back(self->id_);
        if (self->unlink_when_told != nullptr) self->unlink_when_told->unlink();
        if (self->push_when_told != nullptr) list.push(self->push_when_told);
    });
    CHECK(log == std::vector<int>{0, 2, 5});
    CHECK(list.empty());
    for (const auto& l : listeners) CHECK_FALSE(l.linked());
}

TEST_CASE("future: awaiting a future or task of another loop throws at once", "[future]") {
    frame_leak_check leaks;
    auto other = corio::new_event_loop();
    auto foreign = other->create_future<int>();
    auto foreign_task = other->create_task([]() -> corio::coro<int> { co_return 3; }());
    const auto started = std::chrono::steady_clock::now();
    corio::run([&]() -> corio::coro<> {
        // asyncio: "attached to a different loop". Waiting would never end (nothing here sets
        // it), or wake this task from the other loop's thread.
        std::string what;
        try {
            co_await foreign;
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        CHECK(what.find("different loop") != std::string::npos);
        what.clear();
        try {
            (void)co_await foreign_task;
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        CHECK(what.find("different loop") != std::string::npos);
        // A wait_for around it fails as fast, not after its timeout.
        CHECK_THROWS_AS(co_await corio::wait_for(foreign, 10s), std::runtime_error);
        // And so do the combinators that listen to it, before they listen to anything.
        auto mine = corio::get_running_loop().create_future<int>();
        CHECK_THROWS_AS(co_await corio::gather(mine, foreign), std::runtime_error);
        std::vector<corio::future<int>> both{mine, foreign};
        CHECK_THROWS_AS(co_await corio::gather(both), std::runtime_error);
        CHECK_THROWS_AS(co_await corio::wait(both), std::runtime_error);
        CHECK_THROWS_AS(corio::as_completed(both), std::runtime_error);
        mine.set_result(2);
        CHECK(co_await mine == 2);
        // The awaiting task is fine afterwards.
        co_await corio::sleep(1ms);
    }());
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    foreign.set_result(1);
    CHECK(other->run_until_complete(foreign_task) == 3);
    CHECK(foreign.result() == 1);
    other->close();
}

}  // namespace
