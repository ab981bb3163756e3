// corio::async_generator<T> (include/corio/async_generator.hpp), asyncio's async generator:
// order, laziness, the end, exceptions, destruction and aclose, cancellation and timeouts of one
// step, one consumer at a time, references and move-only values, copies and moves, generators
// consuming generators (a chain 1,000 deep, through which values, an exception, a cancellation
// and a timeout pass), 1,000,000 yields on a flat stack, interleaving with another task,
// collect, the call graph and deadlock reports, and moving a generator. Every case checks that
// no frame is left allocated. CTest runs it once per backend (CORIO_BACKEND).
#include <corio/async_generator.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/debug_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/coro.hpp>
#include <corio/debug/call_graph.hpp>
#include <corio/debug/report_call_graphs.hpp>  // the call graph in the deadlock report
#include <corio/errors.hpp>
#include <corio/event_loop.hpp>
#include <corio/optional_ref.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/event.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::contains;
using corio_test::counted;
using corio_test::frame_leak_check;
using corio_test::record_on_destroy;
using corio_test::recorder;
using corio_test::stall_guard;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// --- the types -----------------------------------------------------------------------------

static_assert(std::is_same_v<corio::async_generator<int>::next_type, std::optional<int>>);
static_assert(std::is_same_v<corio::async_generator<int&>::next_type, corio::optional_ref<int>>);
static_assert(std::is_same_v<corio::async_generator<const std::string&>::next_type,
                             corio::optional_ref<const std::string>>);
static_assert(!std::is_copy_constructible_v<corio::async_generator<int>>);
static_assert(std::is_nothrow_move_constructible_v<corio::async_generator<int>>);
static_assert(std::is_nothrow_move_assignable_v<corio::async_generator<int>>);
static_assert(std::is_same_v<corio::collected_t<const std::string&>, std::vector<std::string>>);

template <class Generator, class V>
concept can_yield =
    requires(typename Generator::promise_type& p, V&& v) { p.yield_value(static_cast<V&&>(v)); };
// A move-only value is yielded with std::move; an lvalue would have to be copied.
static_assert(can_yield<corio::async_generator<std::unique_ptr<int>>, std::unique_ptr<int>&&>);
static_assert(!can_yield<corio::async_generator<std::unique_ptr<int>>, std::unique_ptr<int>&>);
// A generator of references refers to objects that outlive the step, never to a temporary.
static_assert(can_yield<corio::async_generator<int&>, int&>);
static_assert(!can_yield<corio::async_generator<int&>, int&&>);
static_assert(can_yield<corio::async_generator<const std::string&>, std::string&&>);

// --- helpers -------------------------------------------------------------------------------

// The line of `text` that contains `part`, or "".
std::string line_with(const std::string& text, const std::string& part) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (contains(line, part)) return line;
    }
    return {};
}

// "<this file>:<line>": how a dump names a suspension point of this file.
std::string site_of(unsigned line) { return std::string(__FILE__) + ':' + std::to_string(line); }

corio::async_generator<int> count_to(int n) {
    for (int i = 1; i <= n; ++i) co_yield i;
}

// Every value of `g`, then whether two more next() gave nothing.
corio::coro<std::vector<int>> drain(corio::async_generator<int>& g, bool& empty_twice_after) {
    std::vector<int> values;
    while (auto v = co_await g.next()) values.push_back(*v);
    const auto again = co_await g.next();
    const auto and_again = co_await g.next();
    empty_twice_after = !again && !and_again;
    co_return values;
}

corio::coro<std::vector<int>> drain_count_to(int n, bool& empty_twice_after) {
    auto g = count_to(n);
    co_return co_await drain(g, empty_twice_after);
}

// --- order, laziness, the end --------------------------------------------------------------

TEST_CASE("async_generator: yields its values in order, then nothing, and nothing again",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    bool empty_after = false;
    const std::vector<int> five = corio::run(drain_count_to(5, empty_after));
    const std::vector<int> expected{1, 2, 3, 4, 5};
    CHECK(five == expected);
    CHECK(empty_after);

    empty_after = false;
    const std::vector<int> none = corio::run(drain_count_to(0, empty_after));
    CHECK(none.empty());
    CHECK(empty_after);
}

corio::async_generator<int> recording_counter(recorder& rec, int n) {
    rec("body started");
    for (int i = 0; i < n; ++i) {
        rec("yield " + std::to_string(i));
        co_yield i;
        rec("resumed after " + std::to_string(i));
    }
    rec("body ended");
}

corio::coro<> laziness_main(recorder& rec) {
    auto g = recording_counter(rec, 2);
    rec("created");
    co_await corio::sleep(0ms);  // even a trip through the loop does not start it
    rec("after a trip through the loop");
    for (int i = 0; i < 3; ++i) {
        const auto v = co_await g.next();
        rec(v ? "got " + std::to_string(*v) : std::string("got the end"));
    }
}

TEST_CASE("async_generator: calling the function runs nothing; each next() runs one step",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    {
        auto never_started = recording_counter(rec, 1);
        CHECK(never_started);
    }
    CHECK(rec.events().empty());

    corio::run(laziness_main(rec));
    const std::vector<std::string> expected{"created",         "after a trip through the loop",
                                            "body started",    "yield 0",
                                            "got 0",           "resumed after 0",
                                            "yield 1",         "got 1",
                                            "resumed after 1", "body ended",
                                            "got the end"};
    CHECK(rec.events() == expected);
}

// --- exceptions ----------------------------------------------------------------------------

corio::async_generator<int> throw_before_yield() {
    throw test_error("before the first yield");
    co_yield 0;
}

corio::async_generator<int> throw_after_suspending() {
    co_await corio::sleep(1ms);
    throw test_error("after suspending");
    co_yield 0;
}

corio::async_generator<int> throw_between_yields() {
    co_yield 1;
    co_await corio::sleep(0ms);
    throw test_error("between yields");
    co_yield 2;
}

// What each of `steps` next() of `g` gave.
corio::coro<> record_steps(corio::async_generator<int> g, int steps, recorder& rec) {
    for (int i = 0; i < steps; ++i) {
        try {
            const auto v = co_await g.next();
            rec(v ? "value " + std::to_string(*v) : std::string("end"));
        } catch (const test_error& e) {
            rec(std::string("test_error: ") + e.what());
        }
    }
}

TEST_CASE("async_generator: an exception of the body comes out of next(); then it has ended",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(record_steps(throw_before_yield(), 3, rec));
    const std::vector<std::string> before{"test_error: before the first yield", "end", "end"};
    CHECK(rec.events() == before);

    rec.clear();
    corio::run(record_steps(throw_after_suspending(), 2, rec));
    const std::vector<std::string> suspended{"test_error: after suspending", "end"};
    CHECK(rec.events() == suspended);

    rec.clear();
    corio::run(record_steps(throw_between_yields(), 4, rec));
    const std::vector<std::string> between{"value 1", "test_error: between yields", "end", "end"};
    CHECK(rec.events() == between);
}

// --- destruction and aclose ----------------------------------------------------------------

corio::async_generator<int> guarded_counter(recorder& rec, std::shared_ptr<int> token) {
    record_on_destroy guard(rec, "local destroyed");
    (void)token;
    for (int i = 1;; ++i) co_yield i;
}

corio::coro<> drop_at_yield_main(recorder& rec, std::shared_ptr<int> token) {
    const long holders = token.use_count();
    {
        auto g = guarded_counter(rec, token);
        const auto v = co_await g.next();
        rec("got " + std::to_string(v.value_or(-1)));
        rec("dropping");
    }
    rec("dropped");
    rec(token.use_count() == holders ? "parameter destroyed" : "parameter kept");
}

corio::coro<corio::async_generator<int>> started_generator(recorder& rec,
                                                           std::shared_ptr<int> token) {
    auto g = guarded_counter(rec, std::move(token));
    (void)co_await g.next();
    co_return g;
}

TEST_CASE("async_generator: destroying one suspended at a yield destroys its frame",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    auto token = std::make_shared<int>(0);
    corio::run(drop_at_yield_main(rec, token));
    const std::vector<std::string> expected{"got 1", "dropping", "local destroyed", "dropped",
                                            "parameter destroyed"};
    CHECK(rec.events() == expected);
    CHECK(token.use_count() == 1);

    // One that outlives its loop is destroyed afterwards without it.
    rec.clear();
    {
        corio::async_generator<int> outlived = corio::run(started_generator(rec, token));
        CHECK(outlived);
        CHECK(token.use_count() == 2);
        CHECK(rec.events().empty());
    }
    const std::vector<std::string> destroyed{"local destroyed"};
    CHECK(rec.events() == destroyed);
    CHECK(token.use_count() == 1);
}

TEST_CASE("async_generator: destroying one never started destroys its parameters",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    auto token = std::make_shared<int>(0);
    {
        auto g = guarded_counter(rec, token);
        CHECK(token.use_count() == 2);  // held by the frame
    }
    CHECK(token.use_count() == 1);
    CHECK(rec.events().empty());  // the body never ran, so it has no locals to destroy
}

corio::coro<> aclose_main(recorder& rec, std::shared_ptr<int> token) {
    const long holders = token.use_count();
    auto g = guarded_counter(rec, token);
    const auto first = co_await g.next();
    rec("got " + std::to_string(first.value_or(-1)));
    co_await g.aclose();
    rec("closed");
    rec(token.use_count() == holders ? "parameter destroyed" : "parameter kept");
    rec(g ? "still true" : "false once closed");
    const auto after = co_await g.next();
    const auto again = co_await g.next();
    rec(!after && !again ? "next() gives nothing" : "next() gave a value");
    co_await g.aclose();  // a second aclose has nothing left to do
    rec("closed again");

    // One never started, and one that has ended: nothing of theirs runs.
    auto unstarted = guarded_counter(rec, token);
    co_await unstarted.aclose();
    rec(token.use_count() == holders ? "unstarted closed" : "unstarted kept its parameter");
    auto ended = count_to(1);
    while (co_await ended.next()) {
    }
    co_await ended.aclose();
    const auto after_end = co_await ended.next();
    rec(after_end ? "ended gave a value" : "ended closed");
}

TEST_CASE("async_generator: aclose() destroys the frame at once; next() then gives nothing",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    auto token = std::make_shared<int>(0);
    corio::run(aclose_main(rec, token));
    const std::vector<std::string> expected{"got 1",
                                            "local destroyed",
                                            "closed",
                                            "parameter destroyed",
                                            "false once closed",
                                            "next() gives nothing",
                                            "closed again",
                                            "unstarted closed",
                                            "ended closed"};
    CHECK(rec.events() == expected);
    CHECK(token.use_count() == 1);
}

corio::async_generator<int> gated(corio::event& gate) {
    co_await gate.wait();
    co_yield 1;
    co_yield 2;
}

corio::coro<int> take_one(corio::async_generator<int>& g) {
    const auto v = co_await g.next();
    co_return v.value_or(-1);
}

corio::coro<> aclose_in_flight_main(recorder& rec) {
    corio::event gate;
    auto g = gated(gate);
    corio::task<int> consumer = corio::create_task(take_one(g), "consumer");
    co_await corio_test::yield(2);  // the consumer waits inside the body
    try {
        co_await g.aclose();
        rec("aclose allowed");
    } catch (const corio::invalid_state_error&) {
        rec("aclose refused");
    }
    gate.set();
    rec("consumer got " + std::to_string(co_await consumer));
    co_await g.aclose();  // between steps it is allowed
    rec(g ? "not closed" : "closed");
}

TEST_CASE("async_generator: aclose() while a next() is in flight throws invalid_state_error",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::run_test(aclose_in_flight_main(rec));
    const std::vector<std::string> expected{"aclose refused", "consumer got 1", "closed"};
    CHECK(rec.events() == expected);
}

// --- cancellation --------------------------------------------------------------------------

enum class wait_kind { sleep, event };

corio::async_generator<int> waits_in_body(recorder& rec, corio::event& never_set, wait_kind kind) {
    record_on_destroy guard(rec, "generator local destroyed");
    co_yield 1;
    try {
        if (kind == wait_kind::sleep) {
            co_await corio::sleep(1h);
        } else {
            co_await never_set.wait();
        }
    } catch (const corio::cancelled_error& e) {
        rec(std::string("generator saw cancelled_error '") + e.what() + "'");
        throw;
    }
    co_yield 2;
}

corio::coro<> consume_until_cancelled(recorder& rec, corio::event& never_set, wait_kind kind) {
    auto g = waits_in_body(rec, never_set, kind);
    std::exception_ptr error;
    try {
        while (auto v = co_await g.next()) rec("consumer got " + std::to_string(*v));
    } catch (const corio::cancelled_error&) {
        rec("cancelled_error out of next()");
        error = std::current_exception();
    }
    const auto after = co_await g.next();  // no co_await in a handler: hence the exception_ptr
    rec(after ? "a value after the cancellation" : "nothing after the cancellation");
    if (error) std::rethrow_exception(error);
}

corio::coro<> cancel_consumer_main(recorder& rec, wait_kind kind) {
    corio::event never_set;
    corio::task<> consumer =
        corio::create_task(consume_until_cancelled(rec, never_set, kind), "consumer");
    co_await corio_test::yield(3);
    rec("cancelling");
    consumer.cancel("stop");
    try {
        co_await consumer;
        rec("consumer finished");
    } catch (const corio::cancelled_error&) {
        rec("consumer cancelled");
    }
    rec(consumer.cancelled() ? "task cancelled" : "task not cancelled");
}

TEST_CASE("async_generator: cancelling the consumer raises cancelled_error inside the body",
          "[async_generator][cancel]") {
    CORIO_REQUIRE_BACKEND();
    const wait_kind kind = GENERATE(wait_kind::sleep, wait_kind::event);
    INFO((kind == wait_kind::sleep ? "in sleep()" : "in event::wait()"));
    frame_leak_check leaks;
    recorder rec;
    corio_test::run_test(cancel_consumer_main(rec, kind));
    const std::vector<std::string> expected{"consumer got 1",
                                            "cancelling",
                                            "generator saw cancelled_error 'stop'",
                                            "generator local destroyed",
                                            "cancelled_error out of next()",
                                            "nothing after the cancellation",
                                            "consumer cancelled",
                                            "task cancelled"};
    CHECK(rec.events() == expected);
}

corio::async_generator<int> swallows_cancellation(recorder& rec) {
    try {
        co_await corio::sleep(1h);
    } catch (const corio::cancelled_error&) {
        rec("generator caught the cancellation");
    }
    co_yield 99;
    rec("resumed after 99");  // never: the consumer takes one value only
}

corio::coro<int> take_one_of_swallowing(recorder& rec) {
    auto g = swallows_cancellation(rec);
    const auto v = co_await g.next();
    co_return v.value_or(-1);
}

corio::coro<> swallow_main(recorder& rec) {
    corio::task<int> consumer = corio::create_task(take_one_of_swallowing(rec), "consumer");
    co_await corio_test::yield(2);
    consumer.cancel();
    try {
        rec("consumer returned " + std::to_string(co_await consumer));
    } catch (const corio::cancelled_error&) {
        rec("consumer cancelled");
    }
    rec(consumer.cancelled() ? "task cancelled" : "task not cancelled");
}

TEST_CASE("async_generator: a body that catches the cancellation and yields gives its value",
          "[async_generator][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::run_test(swallow_main(rec));
    const std::vector<std::string> expected{"generator caught the cancellation",
                                            "consumer returned 99", "task not cancelled"};
    CHECK(rec.events() == expected);
}

// --- wait_for on one step ------------------------------------------------------------------

corio::async_generator<int> one_then_stuck(recorder& rec, corio::event& never_set) {
    co_yield 1;
    try {
        co_await never_set.wait();
    } catch (const corio::cancelled_error&) {
        rec("generator saw the timeout's cancellation");
        throw;
    }
    co_yield 2;
}

corio::async_generator<int> slow_values(int n) {
    for (int i = 1; i <= n; ++i) {
        co_await corio::sleep(1ms);
        co_yield i;
    }
}

corio::async_generator<int> yields_when_timed_out(recorder& rec) {
    try {
        co_await corio::sleep(1h);
    } catch (const corio::cancelled_error&) {
        rec("generator caught the timeout's cancellation");
    }
    co_yield 42;
}

corio::coro<> wait_for_main(recorder& rec, std::chrono::steady_clock::duration& timed_out_after) {
    corio::event never_set;
    auto stuck = one_then_stuck(rec, never_set);
    const auto first = co_await corio::wait_for(stuck.next(), 10s);
    rec("first " + std::to_string(first.value_or(-1)));
    const corio_test::stopwatch watch;
    try {
        (void)co_await corio::wait_for(stuck.next(), 20ms);
        rec("no timeout");
    } catch (const corio::timeout_error&) {
        rec("timeout_error");
    }
    timed_out_after = watch.elapsed();
    const auto after = co_await stuck.next();
    rec(after ? "a value after the timeout" : "ended by the timeout");
    rec("cancelling() " + std::to_string(corio::current_task().cancelling()));

    auto fast = slow_values(3);
    int sum = 0;
    while (auto v = co_await corio::wait_for(fast.next(), 10s)) sum += *v;
    rec("fast sum " + std::to_string(sum));

    // As wait_for of anything: what finishes despite the timeout's cancellation is its result.
    auto stubborn = yields_when_timed_out(rec);
    const auto caught = co_await corio::wait_for(stubborn.next(), 5ms);
    rec("stubborn gave " + std::to_string(caught.value_or(-1)));
    rec("cancelling() " + std::to_string(corio::current_task().cancelling()));
}

TEST_CASE("async_generator: wait_for(g.next(), t) bounds one step; a timeout ends the generator",
          "[async_generator][timeout]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    std::chrono::steady_clock::duration timed_out_after{};
    corio_test::run_test(wait_for_main(rec, timed_out_after));
    const std::vector<std::string> expected{"first 1",
                                            "generator saw the timeout's cancellation",
                                            "timeout_error",
                                            "ended by the timeout",
                                            "cancelling() 0",
                                            "fast sum 6",
                                            "generator caught the timeout's cancellation",
                                            "stubborn gave 42",
                                            "cancelling() 0"};
    CHECK(rec.events() == expected);
    CHECK(timed_out_after >= 15ms);
    CHECK(timed_out_after < 5s);
}

// --- one consumer at a time ----------------------------------------------------------------

corio::coro<> second_consumer(corio::async_generator<int>& g, recorder& rec) {
    try {
        (void)co_await g.next();
        rec("second next() allowed");
    } catch (const corio::invalid_state_error&) {
        rec("second next() refused");
    }
}

corio::coro<> two_consumers_main(recorder& rec) {
    corio::event gate;
    auto g = gated(gate);
    corio::task<int> first = corio::create_task(take_one(g), "first");
    co_await corio_test::yield(2);  // the first consumer waits inside the body
    corio::task<> second = corio::create_task(second_consumer(g, rec), "second");
    co_await second;
    gate.set();
    rec("first got " + std::to_string(co_await first));
    // The refused next() disturbed nothing: the generator goes on where it was.
    rec("then " + std::to_string(co_await take_one(g)));
    rec("then " + std::to_string(co_await take_one(g)));
}

TEST_CASE("async_generator: a second next() while one is in flight throws invalid_state_error",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::run_test(two_consumers_main(rec));
    const std::vector<std::string> expected{"second next() refused", "first got 1", "then 2",
                                            "then -1"};
    CHECK(rec.events() == expected);
}

// The body runs on behalf of whichever task awaits next(): it sees that task as current.
corio::async_generator<std::string> whose_steps(int n) {
    for (int i = 0; i < n; ++i) {
        co_await corio::sleep(0ms);
        co_yield corio::current_task().get_name();
    }
}

corio::coro<std::vector<std::string>> take_names(corio::async_generator<std::string>& g, int most) {
    std::vector<std::string> names;
    for (int i = 0; i < most; ++i) {
        auto v = co_await g.next();
        if (!v) break;
        names.push_back(std::move(*v));
    }
    co_return names;
}

corio::coro<std::vector<std::string>> sequential_consumers_main() {
    auto g = whose_steps(4);
    std::vector<std::string> names = co_await corio::create_task(take_names(g, 2), "first");
    const std::vector<std::string> rest = co_await corio::create_task(take_names(g, 5), "second");
    names.insert(names.end(), rest.begin(), rest.end());
    co_return names;
}

TEST_CASE("async_generator: consumed by one task, then by another", "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<std::string> names = corio::run(sequential_consumers_main());
    const std::vector<std::string> expected{"first", "first", "second", "second"};
    CHECK(names == expected);
}

// --- references and move-only values -------------------------------------------------------

corio::async_generator<int&> each_of(std::vector<int>& items, std::vector<int>& seen_after) {
    for (int& item : items) {
        co_await corio::sleep(0ms);
        co_yield item;
        seen_after.push_back(item);
    }
}

corio::coro<int> scale_in_place(std::vector<int>& items, std::vector<int>& seen_after) {
    auto g = each_of(items, seen_after);
    int same_objects = 0;
    std::size_t i = 0;
    while (auto ref = co_await g.next()) {
        if (&*ref == &items[i++]) ++same_objects;
        *ref *= 10;
    }
    co_return same_objects;
}

TEST_CASE("async_generator<T&>: the consumer gets the very objects and may modify them",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::vector<int> items{1, 2, 3};
    std::vector<int> seen_after;
    CHECK(corio::run(scale_in_place(items, seen_after)) == 3);
    const std::vector<int> scaled{10, 20, 30};
    CHECK(items == scaled);
    CHECK(seen_after == scaled);  // the body sees the change when it resumes
}

// Longer than any small-string buffer, so that a dangling reference would read freed memory.
std::string label(int i) { return std::string(40, static_cast<char>('a' + i)) + std::to_string(i); }

corio::async_generator<const std::string&> labels(int n) {
    for (int i = 0; i < n; ++i) {
        co_await corio::sleep(0ms);
        co_yield label(i);  // a temporary: it lives until the body resumes
    }
}

corio::coro<std::vector<std::string>> read_labels(int n) {
    auto g = labels(n);
    std::vector<std::string> out;
    while (auto ref = co_await g.next()) {
        co_await corio::sleep(0ms);  // still valid across the consumer's own suspension
        out.push_back(*ref);
    }
    co_return out;
}

TEST_CASE("async_generator<const T&>: a yielded temporary stays valid for the step",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<std::string> got = corio::run(read_labels(3));
    const std::vector<std::string> expected{label(0), label(1), label(2)};
    CHECK(got == expected);
    // collect copies the referenced objects.
    const std::vector<std::string> collected = corio::run(corio::collect(labels(3)));
    CHECK(collected == expected);
}

corio::async_generator<std::unique_ptr<int>> unique_values(int n) {
    for (int i = 0; i < n; ++i) {
        auto p = std::make_unique<int>(i);
        co_await corio::sleep(0ms);
        co_yield std::move(p);
    }
    co_yield std::make_unique<int>(100);
}

corio::coro<std::vector<int>> take_uniques() {
    auto g = unique_values(3);
    std::vector<int> values;
    while (auto v = co_await g.next()) {
        std::unique_ptr<int> owned = std::move(*v);
        values.push_back(owned ? *owned : -1);
    }
    co_return values;
}

corio::coro<std::vector<int>> collect_uniques() {
    const std::vector<std::unique_ptr<int>> collected = co_await corio::collect(unique_values(2));
    std::vector<int> values;
    for (const auto& p : collected) values.push_back(p ? *p : -1);
    co_return values;
}

// A vector of move-only values claims to be copyable (std::is_copy_constructible); corio::run
// and a generator of such vectors must still compile and move them.
corio::async_generator<std::vector<std::unique_ptr<int>>> batches() {
    std::vector<std::unique_ptr<int>> batch;
    batch.push_back(std::make_unique<int>(1));
    co_yield std::move(batch);
}

TEST_CASE("async_generator of a move-only type", "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<int> values = corio::run(take_uniques());
    const std::vector<int> expected{0, 1, 2, 100};
    CHECK(values == expected);
    const std::vector<int> expected_collected{0, 1, 100};
    CHECK(corio::run(collect_uniques()) == expected_collected);

    const std::vector<std::unique_ptr<int>> straight = corio::run(corio::collect(unique_values(1)));
    REQUIRE(straight.size() == 2);
    CHECK(*straight[0] == 0);
    CHECK(*straight[1] == 100);
    const auto collected_batches = corio::run(corio::collect(batches()));
    REQUIRE(collected_batches.size() == 1);
    REQUIRE(collected_batches[0].size() == 1);
    CHECK(*collected_batches[0][0] == 1);
}

// --- copies and moves ----------------------------------------------------------------------

struct copy_counts {
    int copies = 0;
    int moves = 0;
};

copy_counts counts_now() { return copy_counts{counted::copies(), counted::move_constructions}; }

corio::async_generator<counted> yields_lvalues(recorder& rec) {
    counted local(7);
    co_yield local;
    rec(local.value == 7 ? "local intact" : "local moved from");
    const counted fixed(8);
    co_yield fixed;
    rec(fixed.value == 8 ? "const local intact" : "const local changed");
}

corio::async_generator<counted> yields_rvalues() {
    co_yield counted(1);
    counted local(2);
    co_yield std::move(local);
}

// What the counters were right after each next() that gave a value; the consumer then moves
// the value out.
corio::coro<std::vector<copy_counts>> counts_per_step(corio::async_generator<counted> g,
                                                      std::vector<int>& values) {
    std::vector<copy_counts> steps;
    while (auto v = co_await g.next()) {
        steps.push_back(counts_now());
        counted taken = std::move(*v);
        values.push_back(taken.value);
    }
    co_return steps;
}

TEST_CASE("async_generator: an lvalue is copied into next()'s result, an rvalue moved",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    std::vector<int> values;
    counted::reset();
    const std::vector<copy_counts> lvalue_steps =
        corio::run(counts_per_step(yields_lvalues(rec), values));
    const std::vector<int> lvalue_values{7, 8};
    CHECK(values == lvalue_values);
    REQUIRE(lvalue_steps.size() == 2);
    CHECK(lvalue_steps[0].copies == 1);
    CHECK(lvalue_steps[0].moves == 0);
    CHECK(lvalue_steps[1].copies == 2);
    CHECK(lvalue_steps[1].moves == 1);  // the consumer's own move of the first value
    const std::vector<std::string> intact{"local intact", "const local intact"};
    CHECK(rec.events() == intact);
    CHECK(counted::alive() == 0);

    values.clear();
    counted::reset();
    const std::vector<copy_counts> rvalue_steps =
        corio::run(counts_per_step(yields_rvalues(), values));
    const std::vector<int> rvalue_values{1, 2};
    CHECK(values == rvalue_values);
    REQUIRE(rvalue_steps.size() == 2);
    CHECK(rvalue_steps[0].copies == 0);
    CHECK(rvalue_steps[0].moves == 1);
    CHECK(rvalue_steps[1].copies == 0);
    CHECK(rvalue_steps[1].moves == 3);  // one into each result, one by the consumer
    CHECK(counted::alive() == 0);
}

// --- generators consuming generators -------------------------------------------------------

corio::async_generator<int> ticking_count(int n) {
    for (int i = 1; i <= n; ++i) {
        co_await corio::sleep(0ms);
        co_yield i;
    }
}

corio::async_generator<int> squares_of(corio::async_generator<int> source) {
    while (auto v = co_await source.next()) co_yield *v** v;
}

corio::async_generator<int> evens_of(corio::async_generator<int> source) {
    while (auto v = co_await source.next()) {
        if (*v % 2 == 0) co_yield *v;
    }
}

TEST_CASE("async_generator: a generator consuming a generator", "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<int> squares = corio::run(corio::collect(squares_of(ticking_count(4))));
    const std::vector<int> expected{1, 4, 9, 16};
    CHECK(squares == expected);
    const std::vector<int> even_squares =
        corio::run(corio::collect(evens_of(squares_of(count_to(6)))));
    const std::vector<int> expected_evens{4, 16, 36};
    CHECK(even_squares == expected_evens);
}

struct chain_counts {
    int destroyed = 0;
};

class count_on_destroy {
public:
    explicit count_on_destroy(chain_counts& counts) noexcept : counts_(&counts) {}
    count_on_destroy(const count_on_destroy&) = delete;
    count_on_destroy& operator=(const count_on_destroy&) = delete;
    ~count_on_destroy() { ++counts_->destroyed; }

private:
    chain_counts* counts_;
};

// Each level adds 1 to what the level below yields; the bottom sleeps every other value, so
// that the whole chain is suspended and resumed from the loop, as well as run inline.
corio::async_generator<int> chain(int depth, int n, chain_counts& counts) {
    count_on_destroy guard(counts);
    if (depth == 0) {
        for (int i = 0; i < n; ++i) {
            if (i % 2 == 1) co_await corio::sleep(0ms);
            co_yield i;
        }
        co_return;
    }
    auto below = chain(depth - 1, n, counts);
    while (auto v = co_await below.next()) co_yield *v + 1;
}

constexpr int chain_depth = 1000;

corio::coro<std::vector<int>> first_of_chain(int most, chain_counts& counts) {
    auto top = chain(chain_depth, 10, counts);
    std::vector<int> values;
    for (int i = 0; i < most; ++i) {
        const auto v = co_await top.next();
        if (!v) break;
        values.push_back(*v);
    }
    co_return values;
}

TEST_CASE("async_generator: a chain of 1,000 generators forwarding values keeps the stack flat",
          "[async_generator][stack]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    chain_counts counts;
    const std::vector<int> all = corio::run(corio::collect(chain(chain_depth, 10, counts)));
    std::vector<int> expected;
    for (int i = 0; i < 10; ++i) expected.push_back(i + chain_depth);
    CHECK(all == expected);
    CHECK(counts.destroyed == chain_depth + 1);

    // Dropped part-way, at a yield: every level is destroyed.
    counts.destroyed = 0;
    const std::vector<int> some = corio::run(first_of_chain(3, counts));
    const std::vector<int> expected_some{chain_depth, chain_depth + 1, chain_depth + 2};
    CHECK(some == expected_some);
    CHECK(counts.destroyed == chain_depth + 1);
}

enum class chain_bottom { throws, waits };

struct chain_probe {
    int destroyed = 0;
    bool bottom_saw_cancellation = false;
};

// Each level forwards what the level below yields; the bottom yields 0, then throws or waits
// for an hour.
corio::async_generator<int> failing_chain(int depth, chain_bottom bottom, chain_probe& probe) {
    struct on_destroy {
        chain_probe* probe;
        ~on_destroy() { ++probe->destroyed; }
    } guard{&probe};
    if (depth == 0) {
        co_yield 0;
        if (bottom == chain_bottom::throws) throw test_error("from the bottom");
        try {
            co_await corio::sleep(1h);
        } catch (const corio::cancelled_error&) {
            probe.bottom_saw_cancellation = true;
            throw;
        }
        co_yield 1;
        co_return;
    }
    auto below = failing_chain(depth - 1, bottom, probe);
    while (auto v = co_await below.next()) co_yield *v;
}

corio::coro<std::string> drain_failing_chain(chain_probe& probe) {
    auto top = failing_chain(chain_depth, chain_bottom::throws, probe);
    int values = 0;
    try {
        while (co_await top.next()) ++values;
    } catch (const test_error& e) {
        co_return std::to_string(values) + " value, then test_error: " + e.what();
    }
    co_return std::to_string(values) + " values, no exception";
}

corio::coro<int> drain_waiting_chain(chain_probe& probe) {
    auto top = failing_chain(chain_depth, chain_bottom::waits, probe);
    int values = 0;
    while (co_await top.next()) ++values;
    co_return values;
}

corio::coro<> cancel_chain_main(chain_probe& probe, recorder& rec) {
    corio::task<int> consumer = corio::create_task(drain_waiting_chain(probe), "consumer");
    co_await corio_test::yield(3);
    consumer.cancel();
    try {
        rec("consumer got " + std::to_string(co_await consumer));
    } catch (const corio::cancelled_error&) {
        rec("consumer cancelled");
    }
}

corio::coro<> time_out_chain_main(chain_probe& probe, recorder& rec) {
    auto top = failing_chain(chain_depth, chain_bottom::waits, probe);
    rec("first " + std::to_string((co_await top.next()).value_or(-1)));
    try {
        (void)co_await corio::wait_for(top.next(), 10ms);
        rec("no timeout");
    } catch (const corio::timeout_error&) {
        rec("timeout_error");
    }
    rec(std::to_string(probe.destroyed) + " levels ended");
    const auto after = co_await top.next();
    rec(after ? "a value after the timeout" : "nothing after the timeout");
}

TEST_CASE("async_generator: through a chain 1,000 deep, an exception, a cancellation and a "
          "timeout reach every level",
          "[async_generator][stack][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    {
        chain_probe probe;
        CHECK(corio::run(drain_failing_chain(probe)) ==
              "1 value, then test_error: from the bottom");
        CHECK(probe.destroyed == chain_depth + 1);
    }
    {
        chain_probe probe;
        recorder rec;
        corio_test::run_test(cancel_chain_main(probe, rec));
        const std::vector<std::string> expected{"consumer cancelled"};
        CHECK(rec.events() == expected);
        CHECK(probe.bottom_saw_cancellation);
        CHECK(probe.destroyed == chain_depth + 1);
    }
    {
        chain_probe probe;
        recorder rec;
        corio_test::run_test(time_out_chain_main(probe, rec));
        // The timeout's cancellation ended every level, each destroying its locals.
        const std::vector<std::string> expected{"first 0", "timeout_error",
                                                std::to_string(chain_depth + 1) + " levels ended",
                                                "nothing after the timeout"};
        CHECK(rec.events() == expected);
        CHECK(probe.bottom_saw_cancellation);
    }
}

// --- what a body may await -----------------------------------------------------------------

corio::coro<int> plus_one_later(int v) {
    co_await corio::sleep(0ms);
    co_return v + 1;
}

corio::coro<bool> runs_in(corio::task<> expected) {
    co_await corio::sleep(0ms);
    co_return corio::current_task() == expected;
}

corio::async_generator<int> awaits_coro_and_task(corio::task<> consumer) {
    const int from_coro = co_await plus_one_later(1);
    co_yield from_coro;
    corio::task<int> helper = corio::create_task(plus_one_later(10), "helper");
    const int from_task = co_await helper;
    co_yield from_task;
    // A coro awaited by the body runs inline too, in the consumer's task.
    const bool same_task = co_await runs_in(consumer);
    co_yield same_task ? 1 : 0;
}

corio::coro<std::vector<int>> awaits_others_main() {
    co_return co_await corio::collect(awaits_coro_and_task(corio::current_task()));
}

TEST_CASE("async_generator: the body co_awaits a coro and a task", "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<int> values = corio::run(awaits_others_main());
    const std::vector<int> expected{2, 11, 1};
    CHECK(values == expected);
}

// --- many values without suspension --------------------------------------------------------

struct stack_span {
    std::uintptr_t lowest = UINTPTR_MAX;
    std::uintptr_t highest = 0;
    void note(std::uintptr_t address) noexcept {
        if (address < lowest) lowest = address;
        if (address > highest) highest = address;
    }
};

corio::async_generator<long> naturals(long n, stack_span& span) {
    for (long i = 0; i < n; ++i) {
        span.note(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)));
        co_yield i;
    }
}

corio::coro<long> sum_of_naturals(long n, stack_span& span) {
    auto g = naturals(n, span);
    long sum = 0;
    while (auto v = co_await g.next()) sum += *v;
    co_return sum;
}

TEST_CASE("async_generator: 1,000,000 yields that never suspend keep the stack flat",
          "[async_generator][stack]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr long n = 1'000'000;
    stack_span span;
    CHECK(corio::run(sum_of_naturals(n, span)) == n * (n - 1) / 2);
    // Every step runs the body at the same depth of the stack.
    CHECK(span.highest - span.lowest < 4096);
}

// --- interleaving with another task --------------------------------------------------------

corio::async_generator<int> ticks(recorder& rec, int n) {
    for (int i = 0; i < n; ++i) {
        co_await corio::sleep(0ms);
        rec("generator " + std::to_string(i));
        co_yield i;
    }
}

corio::coro<> other_ticks(recorder& rec, int n) {
    for (int i = 0; i < n; ++i) {
        rec("other " + std::to_string(i));
        co_await corio::sleep(0ms);
    }
}

corio::coro<> interleave_main(recorder& rec) {
    corio::task<> other = corio::create_task(other_ticks(rec, 3), "other");
    auto g = ticks(rec, 3);
    while (auto v = co_await g.next()) rec("got " + std::to_string(*v));
    co_await other;
}

TEST_CASE("async_generator: a body's sleep(0) lets another task run between steps",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::run_test(interleave_main(rec));
    const std::vector<std::string> expected{"other 0", "generator 0", "got 0",
                                            "other 1", "generator 1", "got 1",
                                            "other 2", "generator 2", "got 2"};
    CHECK(rec.events() == expected);
}

// --- collect -------------------------------------------------------------------------------

corio::async_generator<int> nothing() { co_return; }

corio::async_generator<int> two_then_throw() {
    co_yield 1;
    co_await corio::sleep(0ms);
    co_yield 2;
    throw test_error("collected nothing");
}

corio::coro<std::vector<int>> collect_rest(int skip, std::vector<int>& rest, bool& empty_after) {
    auto g = ticking_count(5);
    std::vector<int> skipped;
    for (int i = 0; i < skip; ++i) skipped.push_back((co_await g.next()).value_or(-1));
    rest = co_await corio::collect(g);  // in place: g is consumed
    empty_after = !(co_await g.next());
    co_return skipped;
}

corio::coro<std::string> collect_throwing() {
    try {
        const std::vector<int> values = co_await corio::collect(two_then_throw());
        co_return "collected " + std::to_string(values.size());
    } catch (const test_error& e) {
        co_return std::string("test_error: ") + e.what();
    }
}

TEST_CASE("async_generator: collect gives every value, of an rvalue and in place of an lvalue",
          "[async_generator][collect]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<int> all = corio::run(corio::collect(ticking_count(4)));
    const std::vector<int> expected_all{1, 2, 3, 4};
    CHECK(all == expected_all);

    std::vector<int> rest;
    bool empty_after = false;
    const std::vector<int> skipped = corio::run(collect_rest(2, rest, empty_after));
    const std::vector<int> expected_skipped{1, 2};
    const std::vector<int> expected_rest{3, 4, 5};
    CHECK(skipped == expected_skipped);
    CHECK(rest == expected_rest);
    CHECK(empty_after);

    CHECK(corio::run(corio::collect(nothing())).empty());
}

TEST_CASE("async_generator: collect of a throwing generator propagates the exception",
          "[async_generator][collect]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK(corio::run(collect_throwing()) == "test_error: collected nothing");
    CHECK_THROWS_AS(corio::run(corio::collect(throw_before_yield())), test_error);
}

// --- the call graph and deadlock reports ---------------------------------------------------

struct dump_sites {
    unsigned generator = 0;
    unsigned consumer = 0;
    unsigned deadlocked = 0;
} sites;

corio::async_generator<int> stuck_in_body(corio::event& gate) {
    co_yield 1;
    sites.generator = __LINE__ + 1;
    co_await gate.wait();
    co_yield 2;
}

corio::coro<int> sum_of_stuck(corio::async_generator<int>& g) {
    int sum = 0;
    sites.consumer = __LINE__ + 1;
    while (auto v = co_await g.next()) sum += *v;
    co_return sum;
}

corio::coro<int> call_graph_main(std::string& graph) {
    corio::event gate;
    auto g = stuck_in_body(gate);
    corio::task<int> consumer = corio::create_task(sum_of_stuck(g), "consumer");
    co_await corio_test::yield(3);
    graph = corio::format_call_graph();
    gate.set();
    co_return co_await consumer;
}

TEST_CASE("async_generator: the call graph shows a task suspended inside a generator's body",
          "[async_generator][debug]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::string graph;
    CHECK(corio::run(call_graph_main(graph)) == 3);
    INFO(graph);
    CHECK(contains(graph, "* task 'consumer'"));
    const std::string consumer_line = line_with(graph, site_of(sites.consumer) + " in ");
    const std::string generator_line = line_with(graph, site_of(sites.generator) + " in ");
    CHECK(contains(consumer_line, "sum_of_stuck"));
    CHECK_FALSE(contains(consumer_line, "(async generator)"));
    CHECK(contains(generator_line, "stuck_in_body"));
    CHECK(generator_line.ends_with(" (async generator)"));
    // Outermost first, then what the generator waits in.
    const std::size_t consumer_at = graph.find(consumer_line);
    const std::size_t generator_at = graph.find(generator_line);
    const std::size_t waits_at = graph.find("waits in corio::event::wait", generator_at);
    CHECK(consumer_at < generator_at);
    CHECK(waits_at != std::string::npos);
}

corio::async_generator<int> never_set_in_body() {
    corio::event never_set;
    sites.deadlocked = __LINE__ + 1;
    co_await never_set.wait();
    co_yield 1;
}

corio::coro<> deadlocked_consumer() {
    stall_guard guard(corio::get_running_loop());
    auto g = never_set_in_body();
    (void)co_await g.next();
}

TEST_CASE("async_generator: a deadlock report names the generator the task waits in",
          "[async_generator][debug][deadlock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run_options options;
    options.debug = true;  // turns deadlock detection on
    std::string report;
    try {
        corio::run(deadlocked_consumer(), options);
    } catch (const corio::deadlock_error& e) {
        report = e.what();
    }
    INFO(report);
    REQUIRE(!report.empty());
    const std::string generator_line = line_with(report, site_of(sites.deadlocked) + " in ");
    CHECK(contains(generator_line, "never_set_in_body"));
    CHECK(generator_line.ends_with(" (async generator)"));
    CHECK(contains(report, "waits in corio::event::wait"));
}

// --- moving a generator --------------------------------------------------------------------

TEST_CASE("async_generator: next() of an empty or moved-from generator throws",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::async_generator<int> empty;
    CHECK_FALSE(empty);
    CHECK_THROWS_AS(empty.next(), corio::invalid_state_error);

    auto source = count_to(2);
    auto target = std::move(source);
    CHECK_FALSE(source);  // NOLINT(bugprone-use-after-move): what a moved-from one does
    CHECK(target);
    CHECK_THROWS_AS(source.next(), corio::invalid_state_error);  // NOLINT(bugprone-use-after-move)
}

corio::coro<> closed_then_moved_main() {
    auto closed = count_to(2);
    co_await closed.aclose();
    CHECK_FALSE((co_await closed.next()).has_value());  // closed: nothing more, no error
    auto target = std::move(closed);
    CHECK_FALSE((co_await target.next()).has_value());           // the closed state moved with it
    CHECK_THROWS_AS(closed.next(), corio::invalid_state_error);  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("async_generator: a closed generator moved from is empty, not closed",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(closed_then_moved_main());
}

corio::coro<> moved_from_main(recorder& rec) {
    auto source = count_to(2);
    (void)co_await source.next();
    auto target = std::move(source);
    try {
        (void)co_await source.next();  // NOLINT(bugprone-use-after-move): the point of it
        rec("moved-from next() allowed");
    } catch (const corio::invalid_state_error&) {
        rec("moved-from next() refused");
    }
    rec("target then " + std::to_string((co_await target.next()).value_or(-1)));
}

TEST_CASE("async_generator: co_await of a moved-from generator's next() throws",
          "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(moved_from_main(rec));
    const std::vector<std::string> expected{"moved-from next() refused", "target then 2"};
    CHECK(rec.events() == expected);
}

corio::coro<std::vector<int>> move_between_steps_main(recorder& rec) {
    std::vector<int> values;
    auto first = ticking_count(4);
    values.push_back((co_await first.next()).value_or(-1));
    corio::async_generator<int> second(std::move(first));
    values.push_back((co_await second.next()).value_or(-1));
    auto token = std::make_shared<int>(0);
    corio::async_generator<int> third = guarded_counter(rec, token);
    (void)co_await third.next();
    third = std::move(second);  // destroys the generator third held, suspended at a yield
    rec(token.use_count() == 1 ? "replaced generator destroyed" : "replaced generator kept");
    while (auto v = co_await third.next()) values.push_back(*v);
    co_return values;
}

TEST_CASE("async_generator: moved between steps, it carries on where it was", "[async_generator]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    const std::vector<int> values = corio::run(move_between_steps_main(rec));
    const std::vector<int> expected{1, 2, 3, 4};
    CHECK(values == expected);
    const std::vector<std::string> destroyed{"local destroyed", "replaced generator destroyed"};
    CHECK(rec.events() == destroyed);
}

}  // namespace
