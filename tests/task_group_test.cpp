// corio::task_group (include/corio/task_group.hpp): join waits for every task (also those
// created while joining), the first failure cancels the rest and is rethrown, several failures
// make an exception_group, cancelling the joiner, create_task after a failure, a group
// destroyed with pending tasks, cancel(), eager children, and children of other awaitables.
#include <corio/task_group.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/queue.hpp>
#include <corio/task.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>
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

/// Position of `event` in the recorded events (size() when absent).
std::size_t position(const recorder& rec, const std::string& event) {
    const auto& events = rec.events();
    return static_cast<std::size_t>(
        std::distance(events.begin(), std::find(events.begin(), events.end(), event)));
}

corio::coro<int> value_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

corio::coro<int> fail_after(std::chrono::milliseconds delay, std::string message) {
    co_await corio::sleep(delay);
    throw test_error(message);
}

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

/// Sleeps for long; when cancelled, cleans up for 10 ms, then ends cancelled.
corio::coro<void> slow_cleanup(recorder& rec, std::string name) {
    try {
        co_await corio::sleep(10s);
        rec(name + " finished");
        co_return;
    } catch (const corio::cancelled_error&) {
        rec(name + " cancelled");
    }
    co_await corio::sleep(10ms);
    rec(name + " cleanup done");
    throw corio::cancelled_error();
}

/// Sleeps for long; fails while handling its cancellation.
corio::coro<void> fail_on_cancel(recorder& rec, std::string message) {
    try {
        co_await corio::sleep(10s);
    } catch (const corio::cancelled_error&) {
        rec("fail_on_cancel cancelled");
        throw cleanup_error(message);
    }
}

corio::coro<void> late_task(recorder& rec) {
    co_await corio::sleep(15ms);
    rec("late done");
}

corio::coro<int> spawner(corio::task_group& group, recorder& rec) {
    co_await corio::sleep(5ms);
    group.create_task(late_task(rec));
    rec("spawned");
    co_return 2;
}

corio::coro<void> join_all_main(recorder& rec) {
    corio::task_group group;
    corio::task<int> a = group.create_task(value_after(2ms, 1));
    corio::task<int> b = group.create_task(spawner(group, rec), "spawner");
    CHECK(b.get_name() == "spawner");
    CHECK(group.size() == 2);
    co_await group.join();
    rec("joined");
    CHECK(group.size() == 0);
    CHECK(a.result() == 1);
    CHECK(b.result() == 2);
    const std::vector<std::string> expected{"spawned", "late done", "joined"};
    CHECK(rec.events() == expected);
    CHECK(corio::all_tasks().size() == 1);

    // An empty group joins at once.
    corio::task_group empty;
    co_await empty.join();
}

corio::coro<void> first_failure_main(recorder& rec) {
    corio::task_group group;
    corio::task<> slow = group.create_task(slow_cleanup(rec, "slow"));
    corio::task<int> other = group.create_task(sleeper(10s, rec, "other"));
    group.create_task(fail_after(5ms, "boom"));
    corio_test::stopwatch watch;
    try {
        co_await group.join();
        rec("join returned");
    } catch (const test_error& e) {
        rec(std::string("join threw ") + e.what());
    }
    CHECK(watch.elapsed() < 5s);
    CHECK(slow.cancelled());
    CHECK(other.cancelled());
    CHECK(group.size() == 0);
    // join rethrew only once every task had finished.
    CHECK(position(rec, "slow cleanup done") < position(rec, "join threw boom"));
    CHECK(rec.contains("other cancelled"));
    CHECK_FALSE(rec.contains("join returned"));
}

corio::coro<void> several_failures_main(recorder& rec, std::vector<std::string>& errors) {
    corio::task_group group;
    group.create_task(fail_on_cancel(rec, "cleanup failed"));
    corio::task<int> plain = group.create_task(sleeper(10s, rec, "plain"));
    group.create_task(fail_after(5ms, "first"));
    try {
        co_await group.join();
        rec("join returned");
    } catch (const corio::exception_group& group_error) {
        rec("join threw exception_group");
        for (const std::exception_ptr& e : group_error.exceptions()) {
            std::string kind = corio_test::holds<test_error>(e)      ? "test_error "
                               : corio_test::holds<cleanup_error>(e) ? "cleanup_error "
                                                                     : "other ";
            errors.push_back(kind + corio_test::what_of(e));
        }
    } catch (const std::exception& e) {
        rec(std::string("join threw a single error: ") + e.what());
    }
    // A task that was merely cancelled adds nothing to the group.
    CHECK(plain.cancelled());
}

corio::coro<void> join_in_task(recorder& rec) {
    corio::task_group group;
    group.create_task(slow_cleanup(rec, "a"));
    group.create_task(slow_cleanup(rec, "b"));
    try {
        co_await group.join();
        rec("join returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("join threw cancelled_error ") + e.what());
        throw;
    }
}

corio::coro<void> cancel_joiner_main(recorder& rec) {
    corio::task<> joiner = corio::create_task(join_in_task(rec));
    co_await corio::sleep(5ms);
    CHECK(joiner.cancel("stop"));
    try {
        co_await joiner;
        rec("main: joiner finished");
    } catch (const corio::cancelled_error&) {
        rec("main: joiner cancelled");
    }
    CHECK(joiner.cancelled());
    CHECK(corio::all_tasks().size() == 1);
}

corio::coro<void> create_after_failure_main(recorder& rec) {
    corio::task_group group;
    group.create_task(fail_after(1ms, "boom"));
    corio::task<> slow = group.create_task(slow_cleanup(rec, "slow"));
    co_await corio::sleep(5ms);  // the failure happened; the group is shutting down
    bool refused = false;
    try {
        group.create_task(value_after(1ms, 1));
    } catch (const std::runtime_error&) {
        refused = true;
    }
    CHECK(refused);
    try {
        co_await group.join();
    } catch (const test_error& e) {
        rec(std::string("join threw ") + e.what());
    }
    CHECK(slow.cancelled());

    // Once joined, a group takes no more tasks either.
    corio::task_group joined;
    joined.create_task(value_after(1ms, 1));
    co_await joined.join();
    bool refused_after_join = false;
    try {
        joined.create_task(value_after(1ms, 2));
    } catch (const std::runtime_error&) {
        refused_after_join = true;
    }
    CHECK(refused_after_join);
    CHECK(corio::all_tasks().size() == 1);
}

corio::coro<void> cancelled_member_main(recorder& rec) {
    corio::task_group group;
    corio::task<int> doomed = group.create_task(sleeper(10s, rec, "doomed"));
    corio::task<int> fine = group.create_task(sleeper(10ms, rec, "fine"));
    co_await corio::sleep(2ms);
    doomed.cancel();
    co_await group.join();  // a cancelled member is not a failure
    rec("joined");
    CHECK(doomed.cancelled());
    CHECK(fine.result() == 1);
}

corio::coro<void> destroyed_group_main(recorder& rec, corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    corio::task<int> orphan;
    {
        corio::task_group group;
        orphan = group.create_task(sleeper(10s, rec, "orphan"));
        group.create_task(sleeper(10s, rec, "unnamed orphan"));
        co_await corio::sleep(2ms);
        // Destroyed without join().
    }
    REQUIRE(log.size() == 1);
    CHECK(corio_test::contains(log.contexts()[0].message, "task_group destroyed"));
    try {
        co_await orphan;
        rec("orphan: no exception");
    } catch (const corio::cancelled_error&) {
        rec("orphan: cancelled_error");
    }
    CHECK(orphan.cancelled());
    co_await corio::sleep(1ms);
    CHECK(rec.contains("unnamed orphan cancelled"));
    CHECK(corio::all_tasks().size() == 1);
}

corio::coro<void> destroyed_before_start_main(recorder& rec, corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    {
        corio::task_group group;
        group.create_task(sleeper(10s, rec, "never started"));
    }
    CHECK(log.size() == 1);
    co_await corio::sleep(1ms);
    CHECK(corio::all_tasks().size() == 1);
}

corio::coro<void> destroyed_at_exit_main(recorder& rec, corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    corio::task_group group;
    group.create_task(sleeper(10s, rec, "left"));
    co_await corio::sleep(1ms);
    // main returns with the group unjoined: its destructor runs in the frame's destruction.
}

}  // namespace

TEST_CASE("task_group: join waits for every task, also those created while joining",
          "[task_group]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(join_all_main(rec));
}

TEST_CASE("task_group: the first failure cancels the others and join rethrows it", "[task_group]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(first_failure_main(rec));
}

TEST_CASE("task_group: several failures make an exception_group", "[task_group]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    std::vector<std::string> errors;
    corio::run(several_failures_main(rec, errors));
    CHECK(rec.contains("join threw exception_group"));
    const std::vector<std::string> expected{"test_error first", "cleanup_error cleanup failed"};
    CHECK(errors == expected);
}

TEST_CASE("task_group: cancelling the joiner cancels the tasks; join rethrows after them",
          "[task_group][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancel_joiner_main(rec));
    CHECK(rec.contains("a cancelled"));
    CHECK(rec.contains("b cancelled"));
    const std::size_t thrown = position(rec, "join threw cancelled_error stop");
    CHECK(thrown < rec.events().size());
    CHECK(position(rec, "a cleanup done") < thrown);
    CHECK(position(rec, "b cleanup done") < thrown);
    CHECK(thrown < position(rec, "main: joiner cancelled"));
    CHECK_FALSE(rec.contains("join returned"));
}

TEST_CASE("task_group: create_task after a failure or after join throws std::runtime_error",
          "[task_group]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(create_after_failure_main(rec));
    CHECK(rec.contains("join threw boom"));
}

TEST_CASE("task_group: a member cancelled from outside is not a failure", "[task_group]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancelled_member_main(rec));
    const std::vector<std::string> expected{"doomed cancelled", "fine finished", "joined"};
    CHECK(rec.events() == expected);
}

TEST_CASE("task_group: destroyed with pending tasks, it reports and cancels them", "[task_group]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::exception_log log;
    SECTION("tasks running") {
        corio::run(destroyed_group_main(rec, log));
        CHECK(rec.contains("orphan cancelled"));
        CHECK(rec.contains("orphan: cancelled_error"));
    }
    SECTION("tasks not started yet") {
        corio::run(destroyed_before_start_main(rec, log));
        CHECK(rec.events().empty());  // cancelled before their first step: the body never ran
    }
    SECTION("main returns with the group unjoined") {
        corio::run(destroyed_at_exit_main(rec, log));
        CHECK(log.size() == 1);
        CHECK(rec.contains("left cancelled"));
    }
}

// -- cancel(), eager children, other awaitables ---------------------------------------------

namespace {

corio::coro<int> returns_at_once(recorder& rec, int value) {
    rec("at once");
    co_return value;
}

corio::coro<int> fails_at_once(recorder& rec, std::string message) {
    rec("fails at once");
    throw test_error(message);
    co_return 0;
}

template <class F>
bool throws_runtime_error(F&& f) {
    try {
        f();
    } catch (const std::runtime_error&) {
        return true;
    }
    return false;
}

corio::coro<void> cancel_pending_main(recorder& rec) {
    corio::task_group group;
    corio::task<int> a = group.create_task(sleeper(10s, rec, "a"));
    corio::task<> b = group.create_task(slow_cleanup(rec, "b"));
    co_await corio::sleep(2ms);
    CHECK(group.cancel("stop"));
    CHECK(group.cancel("second message"));  // still pending (b cleans up): true again
    corio_test::stopwatch watch;
    try {
        co_await group.join();
        rec("join returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("join threw cancelled_error ") + e.what());
    }
    CHECK(watch.elapsed() < 5s);
    CHECK(a.cancelled());
    CHECK(b.cancelled());
    CHECK(group.size() == 0);
    CHECK(corio::current_task().cancelling() == 0);  // the joiner itself was not cancelled
    CHECK(corio::all_tasks().size() == 1);
}

corio::coro<void> cancel_then_create_main(recorder& rec) {
    corio::task_group group;
    group.create_task(sleeper(10s, rec, "a"));
    CHECK(group.cancel());
    CHECK(throws_runtime_error([&] { group.create_task(value_after(1ms, 1)); }));
    corio::queue<int> q;
    CHECK(throws_runtime_error([&] { group.create_task(q.get()); }));
    CHECK(throws_runtime_error(
        [&] { group.create_task(returns_at_once(rec, 1), {.name = "late", .eager = true}); }));
    CHECK_FALSE(rec.contains("at once"));  // refused before the body could run
    bool cancelled = false;
    try {
        co_await group.join();
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    CHECK(corio::all_tasks().size() == 1);
}

corio::coro<void> cancel_after_failure_main(recorder& rec) {
    corio::task_group group;
    group.create_task(fail_after(1ms, "boom"));
    corio::task<> slow = group.create_task(slow_cleanup(rec, "slow"));
    co_await corio::sleep(5ms);  // failed; slow is still cleaning up
    (void)group.cancel("too late");
    try {
        co_await group.join();
        rec("join returned");
    } catch (const test_error& e) {
        rec(std::string("join threw ") + e.what());
    } catch (const corio::cancelled_error& e) {
        rec(std::string("join threw cancelled_error ") + e.what());
    }
    CHECK(slow.cancelled());

    // cancel() first, then a task fails while being cancelled: that failure is rethrown.
    corio::task_group second;
    second.create_task(fail_on_cancel(rec, "cleanup failed"));
    second.create_task(sleeper(10s, rec, "plain"));
    co_await corio::sleep(2ms);
    CHECK(second.cancel("stop"));
    try {
        co_await second.join();
        rec("second: join returned");
    } catch (const cleanup_error& e) {
        rec(std::string("second: join threw ") + e.what());
    } catch (const corio::cancelled_error& e) {
        rec(std::string("second: join threw cancelled_error ") + e.what());
    }
    CHECK(corio::all_tasks().size() == 1);
}

corio::coro<void> cancel_empty_main(recorder& rec) {
    corio::task_group group;
    CHECK_FALSE(group.cancel("nothing"));
    try {
        co_await group.join();
        rec("empty: join returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("empty: join threw cancelled_error ") + e.what());
    }

    // Every task already done: false as well, and join ends the same way.
    corio::task_group finished;
    corio::task<int> t = finished.create_task(value_after(1ms, 1));
    co_await corio::sleep(5ms);
    REQUIRE(t.done());
    CHECK_FALSE(finished.cancel("after the fact"));
    try {
        co_await finished.join();
        rec("finished: join returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("finished: join threw cancelled_error ") + e.what());
    }
    CHECK(t.result() == 1);  // the task itself was never cancelled
}

corio::coro<void> cancel_from_member(corio::task_group& group, recorder& rec) {
    co_await corio::sleep(2ms);
    group.cancel("from inside");
    rec("member called cancel");
    co_await corio::sleep(10s);
    rec("member slept");
}

corio::coro<void> cancel_from_member_main(recorder& rec) {
    corio::task_group group;
    corio::task<> member = group.create_task(cancel_from_member(group, rec));
    corio::task<int> other = group.create_task(sleeper(10s, rec, "other"));
    try {
        co_await group.join();
        rec("join returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("join threw cancelled_error ") + e.what());
    }
    CHECK(member.cancelled());
    CHECK(other.cancelled());
}

corio::coro<void> eager_done_main(recorder& rec, corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    corio::task_group group;
    corio::task<int> t = group.create_task(returns_at_once(rec, 5), {.name = "e", .eager = true});
    CHECK(rec.contains("at once"));
    CHECK(t.done());
    CHECK(t.result() == 5);
    CHECK(t.get_name() == "e");
    CHECK(group.size() == 0);
    corio::task<int> pending = group.create_task(value_after(2ms, 6), {.name = {}, .eager = true});
    CHECK_FALSE(pending.done());
    CHECK(group.size() == 1);
    co_await group.join();
    CHECK(pending.result() == 6);
    CHECK(log.size() == 0);
}

corio::coro<void> eager_fails_main(recorder& rec, corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    corio::task_group group;
    corio::task<int> other = group.create_task(sleeper(10s, rec, "other"));
    co_await corio::sleep(1ms);  // other is waiting
    corio::task<int> failed =
        group.create_task(fails_at_once(rec, "eager boom"), {.name = {}, .eager = true});
    CHECK(failed.done());
    CHECK(throws_runtime_error([&] { group.create_task(value_after(1ms, 1)); }));
    corio_test::stopwatch watch;
    try {
        co_await group.join();
        rec("join returned");
    } catch (const test_error& e) {
        rec(std::string("join threw ") + e.what());
    }
    CHECK(watch.elapsed() < 5s);
    CHECK(other.cancelled());
    failed = corio::task<int>();
    CHECK(log.size() == 0);  // the group retrieved the failure

    // Alone in its group.
    corio::task_group alone;
    (void)alone.create_task(fails_at_once(rec, "alone"), {.name = {}, .eager = true});
    try {
        co_await alone.join();
        rec("alone: join returned");
    } catch (const test_error& e) {
        rec(std::string("alone: join threw ") + e.what());
    }
    CHECK(log.size() == 0);
    CHECK(corio::all_tasks().size() == 1);
}

/// An eager child that, before its first suspension, makes a sibling fail at once.
corio::coro<void> spawns_failure(corio::task_group& group, recorder& rec) {
    group.create_task(fails_at_once(rec, "nested boom"), {.name = {}, .eager = true});
    try {
        co_await corio::sleep(3s);
        rec("spawner slept");
    } catch (const corio::cancelled_error&) {
        rec("spawner cancelled");
        throw;
    }
}

/// An eager child that cancels its group before its first suspension.
corio::coro<void> cancels_group(corio::task_group& group, recorder& rec) {
    group.cancel("eager cancel");
    try {
        co_await corio::sleep(3s);
        rec("canceller slept");
    } catch (const corio::cancelled_error&) {
        rec("canceller cancelled");
        throw;
    }
}

corio::coro<void> eager_aborts_main(recorder& rec) {
    corio::task_group group;
    corio_test::stopwatch watch;
    corio::task<> spawner =
        group.create_task(spawns_failure(group, rec), {.name = {}, .eager = true});
    try {
        co_await group.join();
        rec("join returned");
    } catch (const test_error& e) {
        rec(std::string("join threw ") + e.what());
    }
    CHECK(watch.elapsed() < 2s);  // the spawner was cancelled, not waited for
    CHECK(spawner.cancelled());

    corio::task_group cancelled;
    corio_test::stopwatch cancel_watch;
    corio::task<> canceller =
        cancelled.create_task(cancels_group(cancelled, rec), {.name = {}, .eager = true});
    try {
        co_await cancelled.join();
        rec("cancelled: join returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("cancelled: join threw cancelled_error ") + e.what());
    }
    CHECK(cancel_watch.elapsed() < 2s);
    CHECK(canceller.cancelled());
}

corio::coro<void> awaitable_member_main() {
    corio::task_group group;
    corio::queue<int> q;
    corio::task<int> getter = group.create_task(q.get());
    corio::task<int> named = group.create_task(q.get(), "named getter");
    CHECK(named.get_name() == "named getter");
    CHECK(group.size() == 2);
    corio::get_running_loop().call_later(2ms, [&q] {
        q.put_nowait(1);
        q.put_nowait(2);
    });
    corio::task<void> slept = group.create_task(corio::sleep(1ms));
    co_await group.join();
    CHECK(getter.result() + named.result() == 3);
    CHECK(slept.done());

    // Eager on a ready queue: done at once.
    corio::task_group ready;
    q.put_nowait(7);
    corio::task<int> at_once = ready.create_task(q.get(), {.name = {}, .eager = true});
    CHECK(at_once.done());
    CHECK(at_once.result() == 7);
    CHECK(ready.size() == 0);
    co_await ready.join();
}

}  // namespace

TEST_CASE("task_group: cancel() cancels the pending tasks; join throws cancelled_error",
          "[task_group][cancel]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(cancel_pending_main(rec));
    CHECK(rec.contains("a cancelled"));
    CHECK(rec.contains("b cancelled"));
    // The first message is kept; join threw only after b's cleanup.
    const std::size_t thrown = position(rec, "join threw cancelled_error stop");
    REQUIRE(thrown < rec.events().size());
    CHECK(position(rec, "b cleanup done") < thrown);
    CHECK_FALSE(rec.contains("join returned"));
}

TEST_CASE("task_group: after cancel(), create_task throws std::runtime_error",
          "[task_group][cancel]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(cancel_then_create_main(rec));
}

TEST_CASE("task_group: cancel() does not hide a failure: join rethrows it",
          "[task_group][cancel]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(cancel_after_failure_main(rec));
    CHECK(rec.contains("join threw boom"));
    CHECK(rec.contains("second: join threw cleanup failed"));
    CHECK(rec.contains("plain cancelled"));
}

TEST_CASE("task_group: cancel() with nothing pending returns false; join throws cancelled_error",
          "[task_group][cancel]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(cancel_empty_main(rec));
    const std::vector<std::string> expected{"empty: join threw cancelled_error nothing",
                                            "finished: join threw cancelled_error after the fact"};
    CHECK(rec.events() == expected);
}

TEST_CASE("task_group: cancel() from one of its tasks", "[task_group][cancel]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(cancel_from_member_main(rec));
    CHECK(rec.contains("member called cancel"));
    CHECK_FALSE(rec.contains("member slept"));
    CHECK(rec.contains("join threw cancelled_error from inside"));
}

TEST_CASE("task_group: an eager child that finishes at once counts as done",
          "[task_group][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio_test::exception_log log;
    corio::run(eager_done_main(rec, log));
}

TEST_CASE("task_group: an eager child that fails at once fails the group", "[task_group][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio_test::exception_log log;
    corio::run(eager_fails_main(rec, log));
    CHECK(rec.contains("other cancelled"));
    CHECK(rec.contains("join threw eager boom"));
    CHECK(rec.contains("alone: join threw alone"));
    CHECK(log.size() == 0);
}

// The child becomes a member only after its eager first step, so the abort_all() that step
// caused must still reach it.
TEST_CASE("task_group: an eager child whose first step aborts the group is cancelled too",
          "[task_group][eager]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    recorder rec;
    corio::run(eager_aborts_main(rec));
    CHECK(rec.contains("join threw nested boom"));
    CHECK(rec.contains("spawner cancelled"));
    CHECK(rec.contains("cancelled: join threw cancelled_error eager cancel"));
    CHECK(rec.contains("canceller cancelled"));
}

TEST_CASE("task_group: create_task of other awaitables (q.get(), sleep)", "[task_group]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio::run(awaitable_member_main());
}
