// corio::coro<T>, the lazy coroutine (include/corio/coro.hpp): laziness, results of every
// kind, exceptions, nesting, stack depth, and frame ownership.
#include <corio/coro.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using corio_test::counted;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

static_assert(std::is_same_v<corio::coro<>, corio::coro<void>>);
static_assert(!std::is_copy_constructible_v<corio::coro<int>>);
static_assert(std::is_nothrow_move_constructible_v<corio::coro<int>>);

corio::coro<int> record_then_return(recorder& rec, int value) {
    rec("body " + std::to_string(value));
    co_return value;
}

corio::coro<void> laziness_main(recorder& rec) {
    auto c = record_then_return(rec, 1);
    rec("created");
    co_await corio::sleep(0ms);  // even a trip through the loop does not start it
    rec("yielded");
    const int v = co_await std::move(c);
    rec("got " + std::to_string(v));
}

TEST_CASE("coro: calling a coroutine function runs nothing until it is awaited", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    {
        auto never_awaited = record_then_return(rec, 0);
        CHECK(never_awaited);
    }
    CHECK(rec.events().empty());

    corio::run(laziness_main(rec));
    const std::vector<std::string> expected{"created", "yielded", "body 1", "got 1"};
    CHECK(rec.events() == expected);
}

corio::coro<int> answer() { co_return 42; }
corio::coro<std::string> long_text() {
    co_await corio::sleep(0ms);
    co_return std::string(100, 'x');  // beyond any small-string buffer
}
corio::coro<double> half(int n) { co_return n / 2.0; }

corio::coro<void> values_main(std::vector<std::string>& seen) {
    const int a = co_await answer();
    std::string s = co_await long_text();
    const double h = co_await half(3);
    seen.push_back(std::to_string(a));
    seen.push_back(s);
    seen.push_back(std::to_string(h));
}

TEST_CASE("coro: returns values to the awaiter", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::vector<std::string> seen;
    corio::run(values_main(seen));
    REQUIRE(seen.size() == 3);
    CHECK(seen[0] == "42");
    CHECK(seen[1] == std::string(100, 'x'));
    CHECK(seen[2] == std::to_string(1.5));
    CHECK(corio::run(answer()) == 42);
}

corio::coro<void> set_flag(bool& flag) {
    co_await corio::sleep(0ms);
    flag = true;
}

corio::coro<void> void_main(bool& flag, recorder& rec) {
    co_await set_flag(flag);
    rec(flag ? "flag set before the await ended" : "flag not set");
}

TEST_CASE("coro<void> completes and resumes its awaiter", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    bool flag = false;
    recorder rec;
    corio::run(void_main(flag, rec));
    const std::vector<std::string> expected{"flag set before the await ended"};
    CHECK(rec.events() == expected);
}

corio::coro<int&> pick(int& a, int& b, bool first) {
    co_await corio::sleep(0ms);
    if (first) co_return a;
    co_return b;
}

corio::coro<const std::string&> longer(const std::string& a, const std::string& b) {
    co_return a.size() >= b.size() ? a : b;
}

corio::coro<void> reference_main(int& x, int& y, const std::string& s1, const std::string& s2,
                                 recorder& rec) {
    int& r = co_await pick(x, y, false);
    if (&r == &y) rec("refers to y");
    r = 5;
    int& q = co_await pick(x, y, true);
    if (&q == &x) rec("refers to x");
    const std::string& l = co_await longer(s1, s2);
    if (&l == &s2) rec("refers to s2");
}

TEST_CASE("coro<T&> hands out a reference to the very object", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    int x = 1;
    int y = 2;
    const std::string s1 = "short";
    const std::string s2 = "much longer";
    recorder rec;
    corio::run(reference_main(x, y, s1, s2, rec));
    const std::vector<std::string> expected{"refers to y", "refers to x", "refers to s2"};
    CHECK(rec.events() == expected);
    CHECK(x == 1);
    CHECK(y == 5);
}

corio::coro<std::unique_ptr<int>> make_unique_later(int v) {
    co_await corio::sleep(0ms);
    auto p = std::make_unique<int>(v);
    co_return std::move(p);
}

corio::coro<std::unique_ptr<int>> pass_unique_on(int v) {
    std::unique_ptr<int> p = co_await make_unique_later(v);
    *p += 1;
    co_return std::move(p);
}

corio::coro<int> unique_main() {
    std::unique_ptr<int> p = co_await pass_unique_on(41);
    co_return p ? *p : -1;
}

TEST_CASE("coro with a move-only result", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK(corio::run(unique_main()) == 42);
    std::unique_ptr<int> p = corio::run(make_unique_later(7));
    REQUIRE(p);
    CHECK(*p == 7);
}

corio::coro<int> throw_at_once() {
    throw test_error("at once");
    co_return 0;
}

corio::coro<int> throw_after_suspending() {
    co_await corio::sleep(1ms);
    throw test_error("after suspending");
    co_return 0;
}

corio::coro<int> pass_through(bool at_once) {
    const int v = at_once ? co_await throw_at_once() : co_await throw_after_suspending();
    co_return v + 1;  // never reached
}

corio::coro<void> throw_int() {
    co_await corio::sleep(0ms);
    throw 7;
}

corio::coro<void> exceptions_main(recorder& rec) {
    for (const bool at_once : {true, false}) {
        try {
            (void)co_await pass_through(at_once);
            rec("no exception");
        } catch (const test_error& e) {
            rec(std::string("test_error: ") + e.what());
        } catch (...) {
            rec("some other exception");
        }
    }
    try {
        co_await throw_int();
    } catch (int v) {
        rec("int " + std::to_string(v));
    }
    // The awaiting coroutine carries on normally afterwards.
    rec("answer " + std::to_string(co_await answer()));
}

TEST_CASE("coro: exceptions cross co_await with their type and message", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(exceptions_main(rec));
    const std::vector<std::string> expected{"test_error: at once", "test_error: after suspending",
                                            "int 7", "answer 42"};
    CHECK(rec.events() == expected);
}

corio::coro<int> level3(recorder& rec) {
    rec("3 in");
    co_await corio::sleep(1ms);
    rec("3 out");
    co_return 3;
}

corio::coro<int> level2(recorder& rec) {
    rec("2 in");
    const int v = co_await level3(rec);
    rec("2 out");
    co_return v * 10 + 2;
}

corio::coro<int> level1(recorder& rec) {
    rec("1 in");
    const int v = co_await level2(rec);
    rec("1 out");
    co_return v * 10 + 1;
}

TEST_CASE("coro: nested coros run inline, innermost first to finish", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    CHECK(corio::run(level1(rec)) == 321);
    const std::vector<std::string> expected{"1 in", "2 in", "3 in", "3 out", "2 out", "1 out"};
    CHECK(rec.events() == expected);
}

corio::coro<int> one() { co_return 1; }

corio::coro<long> sum_of_ones(int n) {
    long sum = 0;
    for (int i = 0; i < n; ++i) sum += co_await one();
    co_return sum;
}

TEST_CASE("coro: 100,000 sequential awaits of synchronous coros keep the stack flat",
          "[coro][stack]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK(corio::run(sum_of_ones(100'000)) == 100'000);
}

corio::coro<int> depth(int n) {
    if (n == 0) co_return 0;
    co_return 1 + co_await depth(n - 1);
}

corio::coro<int> depth_then_sleep(int n) {
    if (n == 0) {
        // The whole chain is suspended here and resumed from the loop.
        co_await corio::sleep(0ms);
        co_return 0;
    }
    co_return 1 + co_await depth_then_sleep(n - 1);
}

TEST_CASE("coro: recursion 10,000 deep does not overflow the stack", "[coro][stack]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK(corio::run(depth(10'000)) == 10'000);
    CHECK(corio::run(depth_then_sleep(10'000)) == 10'000);
}

corio::coro<void> takes_counted(counted c, recorder& rec) {
    rec("body ran with " + std::to_string(c.value));
    co_return;
}

corio::coro<void> drop_unstarted_main(recorder& rec) {
    {
        auto c = takes_counted(counted{1}, rec);
        rec(counted::alive() == 1 ? "parameter kept in the frame" : "parameter not in the frame");
    }
    rec(counted::alive() == 0 ? "parameter destroyed with the frame" : "parameter leaked");
    co_await corio::sleep(0ms);
}

TEST_CASE("coro: a dropped unstarted coro is destroyed with its parameters", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    counted::reset();
    recorder rec;
    {
        // Outside any loop, too.
        auto c = takes_counted(counted{0}, rec);
    }
    CHECK(counted::alive() == 0);
    corio::run(drop_unstarted_main(rec));
    const std::vector<std::string> expected{"parameter kept in the frame",
                                            "parameter destroyed with the frame"};
    CHECK(rec.events() == expected);
    CHECK(counted::alive() == 0);
    CHECK(counted::copies() == 0);
}

corio::coro<counted> make_counted(int v) {
    co_await corio::sleep(0ms);
    co_return counted{v};
}

corio::coro<counted> forward_counted(int v) { co_return co_await make_counted(v); }

corio::coro<int> counted_main() {
    counted a = co_await make_counted(1);
    counted b = co_await forward_counted(2);
    co_return a.value * 10 + b.value;
}

TEST_CASE("coro: results are moved, never copied, and none leak", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    counted::reset();
    CHECK(corio::run(counted_main()) == 12);
    CHECK(counted::copies() == 0);
    CHECK(counted::alive() == 0);
    CHECK(counted::value_constructions == 2);
}

corio::coro<void> param_in_frame(std::shared_ptr<recorder> rec) {
    (*rec)("body");
    co_return;
}

corio::coro<void> frame_destroyed_main(recorder& rec) {
    auto probe = std::make_shared<recorder>();
    co_await param_in_frame(probe);
    // The frame, and the shared_ptr copy it held, are gone once the await expression ended.
    rec(probe.use_count() == 1 ? "frame destroyed" : "frame still alive");
}

TEST_CASE("coro: the frame is destroyed when the awaiting expression ends", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(frame_destroyed_main(rec));
    const std::vector<std::string> expected{"frame destroyed"};
    CHECK(rec.events() == expected);
}

corio::coro<void> await_twice_main(recorder& rec) {
    auto c = answer();
    rec("first " + std::to_string(co_await c));
    try {
        (void)co_await c;
        rec("second await allowed");
    } catch (const corio::invalid_state_error&) {
        rec("second await refused");
    }
    corio::coro<int> empty;
    if (!empty) rec("empty is false");
    try {
        (void)co_await std::move(empty);
        rec("empty await allowed");
    } catch (const corio::invalid_state_error&) {
        rec("empty await refused");
    }
    auto moved_from = answer();
    auto moved_to = std::move(moved_from);
    if (!moved_from && moved_to) rec("moved-from is empty");
}

TEST_CASE("coro: awaited once; empty coros refuse to be awaited", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(await_twice_main(rec));
    const std::vector<std::string> expected{"first 42", "second await refused", "empty is false",
                                            "empty await refused", "moved-from is empty"};
    CHECK(rec.events() == expected);
}

corio::coro<corio::task<>> inner_current_task() {
    co_await corio::sleep(0ms);
    co_return corio::current_task();
}

corio::coro<corio::task<>> middle_current_task() { co_return co_await inner_current_task(); }

corio::coro<bool> same_task_main() {
    corio::task<> outer = corio::current_task();
    corio::task<> inner = co_await middle_current_task();
    co_return outer&& inner == outer;
}

TEST_CASE("coro: an awaited coro runs inside the awaiting task", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK(corio::run(same_task_main()));
}

// A frame holding a 16-aligned object across a suspension: frames are allocated for `new`'s
// alignment, whatever the sizes of the blocks around them.
struct alignas(16) sixteen_aligned {
    unsigned char bytes[16];
};

corio::coro<std::uintptr_t> aligned_local_across_sleep(int extra) {
    sixteen_aligned local{};
    local.bytes[0] = static_cast<unsigned char>(extra);
    co_await corio::sleep(0ms);
    co_return reinterpret_cast<std::uintptr_t>(&local) % alignof(sixteen_aligned) + local.bytes[0] -
        static_cast<unsigned char>(extra);
}

corio::coro<bool> all_locals_aligned() {
    std::vector<corio::task<std::uintptr_t>> tasks;
    for (int i = 0; i < 100; ++i)
        tasks.push_back(corio::create_task(aligned_local_across_sleep(i)));
    bool aligned = true;
    for (auto& t : tasks) aligned = aligned && (co_await t) == 0;
    co_return aligned;
}

TEST_CASE("coro: a 16-aligned local stays aligned in the frame", "[coro]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK(corio::run(all_locals_aligned()));
}

}  // namespace
