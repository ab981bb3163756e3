// Synchronisation primitives (API.md section 5; lock.hpp, event.hpp, condition.hpp,
// semaphore.hpp, barrier.hpp, guard.hpp): each contract, FIFO fairness, and the cancellation
// races in which a waiter is cancelled in the same loop iteration that wakes it.
#include <corio/sync/lock.hpp>

#include "support/allocation_counter.hpp"
#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/test_helpers.hpp"

#include <corio/sync/barrier.hpp>
#include <corio/sync/condition.hpp>
#include <corio/sync/event.hpp>
#include <corio/sync/guard.hpp>
#include <corio/run.hpp>
#include <corio/sync/semaphore.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::run_test;
using corio_test::yield;
using corio_test::recorder;

namespace {

static_assert(!std::is_copy_constructible_v<corio::lock>);
static_assert(!std::is_move_constructible_v<corio::lock>);
static_assert(std::is_nothrow_move_constructible_v<corio::guard<corio::lock>>);
static_assert(!std::is_copy_constructible_v<corio::guard<corio::lock>>);
static_assert(std::is_base_of_v<std::runtime_error, corio::broken_barrier_error>);
static_assert(std::is_base_of_v<corio::semaphore, corio::bounded_semaphore>);

// Awaits every task, recording the cancelled ones as "<name> cancelled".
corio::coro<> settle(std::vector<corio::task<>>& tasks, recorder& rec) {
    for (auto& t : tasks) {
        try {
            co_await t;
        } catch (const corio::cancelled_error&) {
            if (corio::current_task().cancelling() > 0) throw;  // settle itself was cancelled
            rec(t.get_name() + " cancelled");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// lock

corio::coro<> take_lock(corio::lock& l, recorder& rec, std::string name, int hold = 1) {
    co_await l.acquire();
    rec(name);
    co_await yield(hold);
    l.release();
}

corio::coro<> lock_basics_main() {
    corio::lock l;
    CHECK_FALSE(l.locked());
    CHECK_THROWS_AS(l.release(), std::runtime_error);
    co_await l.acquire();
    CHECK(l.locked());
    l.release();
    CHECK_FALSE(l.locked());
    {
        auto g = co_await l.scoped();
        CHECK(l.locked());
        CHECK(g.owns_lock());
        CHECK(g.get() == &l);
        corio::guard<corio::lock> moved = std::move(g);
        CHECK_FALSE(g.owns_lock());
        CHECK(moved);
        CHECK(l.locked());
    }
    CHECK_FALSE(l.locked());
    {
        auto g = co_await l.scoped();
        g.unlock();
        CHECK_FALSE(l.locked());
        g.unlock();  // owns nothing: no effect
    }
    CHECK_FALSE(l.locked());
    // Released by the guard while an exception unwinds.
    try {
        auto g = co_await l.scoped();
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    CHECK_FALSE(l.locked());
    // Move-assigning a guard releases what it held.
    corio::lock other;
    auto g1 = co_await l.scoped();
    auto g2 = co_await other.scoped();
    g1 = std::move(g2);
    CHECK_FALSE(l.locked());
    CHECK(other.locked());
    CHECK(g1.get() == &other);
}

TEST_CASE("lock: acquire, release, locked and scoped guards", "[lock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(lock_basics_main());
}

corio::coro<> lock_fifo_main(recorder& rec) {
    corio::lock l;
    co_await l.acquire();
    std::vector<corio::task<>> tasks;
    for (int i = 0; i < 5; ++i) {
        // Appended, not `"w" + std::to_string(i)`: g++ 12 -O2 gives a false -Wrestrict on that
        // (GCC bug 105329).
        std::string name = "w";
        name += std::to_string(i);
        tasks.push_back(corio::create_task(take_lock(l, rec, std::move(name))));
    }
    co_await yield();  // all five now wait, in order
    l.release();       // handed to w0, which has not run yet
    CHECK(l.locked());
    // A newcomer does not barge ahead of the waiting tasks: it queues behind w4.
    tasks.push_back(corio::create_task(take_lock(l, rec, "late")));
    co_await l.acquire();
    rec("main again");
    l.release();
    co_await settle(tasks, rec);
    CHECK_FALSE(l.locked());
}

TEST_CASE("lock: FIFO fairness; a woken waiter keeps its turn, newcomers queue", "[lock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(lock_fifo_main(rec));
    const std::vector<std::string> expected{"w0", "w1", "w2", "w3", "w4", "main again", "late"};
    CHECK(rec.events() == expected);
}

corio::coro<> lock_cancel_waiting_main(recorder& rec) {
    corio::lock l;
    co_await l.acquire();
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b", "c"}) {
        tasks.push_back(corio::create_task(take_lock(l, rec, name), name));
    }
    co_await yield();
    tasks[1].cancel();
    co_await yield();  // b leaves the queue and ends
    CHECK(tasks[1].cancelled());
    CHECK(l.locked());
    l.release();
    co_await settle(tasks, rec);
    CHECK_FALSE(l.locked());
}

TEST_CASE("lock: a task cancelled while waiting leaves the queue holding nothing", "[lock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(lock_cancel_waiting_main(rec));
    const std::vector<std::string> expected{"a", "c", "b cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> lock_race_main(recorder& rec, bool with_next) {
    corio::lock l;
    co_await l.acquire();
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(take_lock(l, rec, "a"), "a"));
    if (with_next) tasks.push_back(corio::create_task(take_lock(l, rec, "b"), "b"));
    co_await yield();
    // The race: a is handed the lock, then cancelled before it runs, in one step of main.
    l.release();
    CHECK(tasks[0].cancel());
    co_await settle(tasks, rec);
    CHECK(tasks[0].cancelled());
    CHECK_FALSE(l.locked());  // never lost: b had it and released it, or it came back
    // And the lock still works.
    co_await l.acquire();
    l.release();
}

TEST_CASE("lock: a waiter cancelled after being handed the lock hands it on", "[lock][race]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    SECTION("to the next waiter") {
        run_test(lock_race_main(rec, true));
        const std::vector<std::string> expected{"b", "a cancelled"};
        CHECK(rec.events() == expected);
    }
    SECTION("or back to free when nobody waits") {
        run_test(lock_race_main(rec, false));
        const std::vector<std::string> expected{"a cancelled"};
        CHECK(rec.events() == expected);
    }
}

corio::coro<> acquire_with_pending_cancel(corio::lock& l, recorder& rec) {
    corio::current_task().cancel();  // pending: delivered at the next suspension
    co_await l.acquire();            // free: taken at once, as asyncio (no suspension)
    rec("took the free lock");
    l.release();
    co_await l.acquire();  // still free
    l.release();
    co_await corio::sleep(0s);  // a real suspension delivers it
    rec("not reached");
}

corio::coro<> acquire_contended_with_pending_cancel(corio::lock& l, recorder& rec) {
    corio::current_task().cancel();
    try {
        co_await l.acquire();
        rec("acquired");
    } catch (const corio::cancelled_error&) {
        rec("cancelled at once");
        throw;
    }
}

corio::coro<> lock_pending_cancel_main(recorder& rec) {
    corio::lock l;
    auto t1 = corio::create_task(acquire_with_pending_cancel(l, rec));
    std::vector<corio::task<>> tasks{t1};
    co_await settle(tasks, rec);
    co_await l.acquire();
    auto t2 = corio::create_task(acquire_contended_with_pending_cancel(l, rec));
    tasks.assign(1, t2);
    co_await settle(tasks, rec);
    CHECK(l.locked());
    l.release();
}

TEST_CASE("lock: a pending cancellation is delivered by a contended acquire only", "[lock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(lock_pending_cancel_main(rec));
    const std::vector<std::string> expected{"took the free lock", "Task-2 cancelled",
                                            "cancelled at once", "Task-3 cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> lock_uncancel_main(recorder& rec) {
    corio::lock l;
    co_await l.acquire();
    std::vector<corio::task<>> tasks{corio::create_task(take_lock(l, rec, "a"), "a")};
    co_await yield();
    tasks[0].cancel();    // withdraws a from the queue
    tasks[0].uncancel();  // ... and takes the request back before a runs
    co_await settle(tasks, rec);
    // a did not get the lock, so it could not return from acquire(): it was cancelled anyway.
    CHECK(tasks[0].cancelled());
    CHECK(l.locked());
    l.release();
    CHECK_FALSE(l.locked());
}

TEST_CASE("lock: a withdrawn waiter throws cancelled_error even if uncancelled", "[lock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(lock_uncancel_main(rec));
    const std::vector<std::string> expected{"a cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> hold_scoped_forever(corio::lock& l) {
    auto g = co_await l.scoped();
    co_await corio::sleep(1h);
}

corio::coro<> wait_scoped(corio::lock& l) {
    auto g = co_await l.scoped();
}

corio::coro<> lock_close_main(corio::lock& l) {
    co_await l.acquire();
    corio::create_task(hold_scoped_forever(l));
    corio::create_task(wait_scoped(l));
    co_await yield();
    l.release();  // handed to the first task, which runs once more before the loop stops
}

TEST_CASE("lock: frames destroyed by close() give the lock back", "[lock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::lock l;  // outlives the loop
    {
        auto loop = corio::new_event_loop();
        loop->run_until_complete(lock_close_main(l));
        CHECK(l.locked());  // held by the sleeping task; the other waits
        loop->close();      // the guard releases, the waiter granted it passes it on
    }
    CHECK_FALSE(l.locked());
}

corio::coro<> only_acquire(corio::lock& l, recorder& rec, std::string name) {
    co_await l.acquire();  // the lock is gone by the time this returns: never touched again
    rec(name + " acquired");
}

corio::coro<> lock_destroyed_main(recorder& rec, bool cancel) {
    std::vector<corio::task<>> tasks;
    // On the heap, so that AddressSanitizer sees any use after it is freed.
    auto l = std::make_unique<corio::lock>();
    co_await l->acquire();
    tasks.push_back(corio::create_task(only_acquire(*l, rec, "a"), "a"));
    co_await yield();
    l->release();  // handed to a, which runs after the lock is gone
    if (cancel) tasks[0].cancel();
    l.reset();
    co_await settle(tasks, rec);
}

TEST_CASE("lock: a waiter handed the lock survives the lock's destruction", "[lock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    SECTION("it returns from acquire()") {
        run_test(lock_destroyed_main(rec, false));
        const std::vector<std::string> expected{"a acquired"};
        CHECK(rec.events() == expected);
    }
    SECTION("cancelled meanwhile, it has nobody to hand the lock to") {
        run_test(lock_destroyed_main(rec, true));
        const std::vector<std::string> expected{"a cancelled"};
        CHECK(rec.events() == expected);
    }
}

// ---------------------------------------------------------------------------------------------
// event

corio::coro<> wait_event(corio::event& e, recorder& rec, std::string name) {
    co_await e.wait();
    rec(name);
}

corio::coro<> event_main(recorder& rec) {
    corio::event e;
    CHECK_FALSE(e.is_set());
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b", "c", "d"}) {
        tasks.push_back(corio::create_task(wait_event(e, rec, name), name));
    }
    co_await yield();
    tasks[1].cancel();  // b leaves while waiting
    co_await yield();
    rec("set");
    e.set();
    CHECK(e.is_set());
    e.set();  // already set: nothing
    e.clear();  // the woken tasks return anyway
    CHECK_FALSE(e.is_set());
    tasks[2].cancel();  // c: woken, then cancelled before it ran
    co_await settle(tasks, rec);
    // A set event lets wait() through at once, without suspending.
    e.set();
    bool other_ran = false;
    auto other = corio::create_task([](bool& ran) -> corio::coro<> {
        ran = true;
        co_return;
    }(other_ran));
    co_await e.wait();
    CHECK_FALSE(other_ran);
    co_await other;
}

TEST_CASE("event: set wakes every waiter in order; cancellation; clear", "[event]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(event_main(rec));
    // The cancelled tasks are recorded by settle() at the end, in task order.
    const std::vector<std::string> expected{"set", "a", "d", "b cancelled", "c cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> event_many_main(int n) {
    corio::event e;
    int woken = 0;
    std::vector<corio::task<>> tasks;
    tasks.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        tasks.push_back(corio::create_task([](corio::event& ev, int& count) -> corio::coro<> {
            co_await ev.wait();
            ++count;
        }(e, woken)));
    }
    co_await yield();
    e.set();
    for (auto& t : tasks) co_await t;
    CHECK(woken == n);
}

TEST_CASE("event: ten thousand waiters", "[event]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(event_many_main(10'000));
}

// ---------------------------------------------------------------------------------------------
// condition

corio::coro<> cond_waiter(corio::condition& c, recorder& rec, std::string name) {
    auto g = co_await c.scoped();
    try {
        co_await c.wait();
    } catch (const corio::cancelled_error&) {
        rec(name + " cancelled, holding the lock: " + (c.locked() ? "yes" : "no"));
        throw;
    }
    rec(name + " notified");
}

corio::coro<> condition_errors_main() {
    corio::condition c;
    CHECK_FALSE(c.locked());
    CHECK_THROWS_AS(c.notify(), std::runtime_error);
    CHECK_THROWS_AS(c.notify_all(), std::runtime_error);
    bool threw = false;
    try {
        co_await c.wait();
    } catch (const std::runtime_error&) {
        threw = true;
    }
    CHECK(threw);
    CHECK_THROWS_AS(c.release(), std::runtime_error);
    co_await c.acquire();
    c.notify();  // nobody waits: nothing happens
    c.notify_all();
    c.release();
}

TEST_CASE("condition: wait and notify need the lock", "[condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(condition_errors_main());
}

corio::coro<> condition_notify_main(recorder& rec) {
    corio::condition c;
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b", "c", "d", "e"}) {
        tasks.push_back(corio::create_task(cond_waiter(c, rec, name), name));
    }
    co_await yield();  // all five wait, having released the lock in turn
    CHECK_FALSE(c.locked());
    {
        auto g = co_await c.scoped();
        rec("notify(1)");
        c.notify();
        co_await yield(2);  // a cannot run: it needs the lock main holds
        rec("release");
    }
    co_await yield(2);
    {
        auto g = co_await c.scoped();
        rec("notify(2)");
        c.notify(2);
    }
    co_await yield(2);
    {
        auto g = co_await c.scoped();
        rec("notify_all");
        c.notify_all();
    }
    co_await settle(tasks, rec);
    CHECK_FALSE(c.locked());
}

TEST_CASE("condition: notify wakes the longest waiting, who re-acquire the lock in turn",
          "[condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(condition_notify_main(rec));
    const std::vector<std::string> expected{
        "notify(1)", "release",    "a notified", "notify(2)",  "b notified",
        "c notified", "notify_all", "d notified", "e notified"};
    CHECK(rec.events() == expected);
}

corio::coro<> condition_cancel_main(recorder& rec) {
    corio::condition c;
    std::vector<corio::task<>> tasks{corio::create_task(cond_waiter(c, rec, "w"), "w")};
    co_await yield();
    co_await c.acquire();
    tasks[0].cancel();  // w stops waiting, but must re-acquire the lock main holds
    co_await yield(3);
    CHECK_FALSE(tasks[0].done());
    rec("main releases");
    c.release();
    co_await settle(tasks, rec);
    CHECK_FALSE(c.locked());
}

TEST_CASE("condition: a cancelled wait re-acquires the lock before throwing", "[condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(condition_cancel_main(rec));
    const std::vector<std::string> expected{"main releases", "w cancelled, holding the lock: yes",
                                            "w cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> condition_race_main(recorder& rec) {
    corio::condition c;
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(cond_waiter(c, rec, "a"), "a"));
    tasks.push_back(corio::create_task(cond_waiter(c, rec, "b"), "b"));
    co_await yield();
    co_await c.acquire();
    c.notify(1);        // a is notified...
    tasks[0].cancel();  // ... and cancelled before it runs
    c.release();
    co_await settle(tasks, rec);  // b was notified in a's place: nobody else notifies it
}

TEST_CASE("condition: a notified waiter cancelled before it runs passes the notification on",
          "[condition][race]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(condition_race_main(rec));
    const std::vector<std::string> expected{"a cancelled, holding the lock: yes", "b notified",
                                            "a cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> wait_for_ready(corio::condition& c, const int& ready, recorder& rec) {
    auto g = co_await c.scoped();
    const bool ok = co_await c.wait_for([&] { return ready >= 3; });
    rec("ready = " + std::to_string(ready) + (ok ? " (true)" : " (false)"));
}

corio::coro<> condition_wait_for_main(recorder& rec) {
    corio::lock shared;
    corio::condition c(shared);
    corio::condition unrelated(shared);
    int ready = 0;
    std::vector<corio::task<>> tasks{corio::create_task(wait_for_ready(c, ready, rec))};
    co_await yield();
    for (int i = 0; i < 4; ++i) {
        auto g = co_await c.scoped();
        CHECK(unrelated.locked());  // one lock under both conditions
        ++ready;
        rec("ready " + std::to_string(ready));
        c.notify();
        g.unlock();
        co_await yield(2);
    }
    co_await settle(tasks, rec);
    // A true predicate returns at once, lock held, without waiting.
    auto g = co_await c.scoped();
    const int value = co_await c.wait_for([] { return 42; });
    CHECK(value == 42);
    CHECK(c.locked());
}

TEST_CASE("condition: wait_for re-checks its predicate after each notification; shared lock",
          "[condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(condition_wait_for_main(rec));
    const std::vector<std::string> expected{"ready 1", "ready 2", "ready 3", "ready = 3 (true)",
                                            "ready 4"};
    CHECK(rec.events() == expected);
}

// ---------------------------------------------------------------------------------------------
// semaphore and bounded_semaphore

corio::coro<> limited_worker(corio::semaphore& s, int& inside, int& peak, recorder& rec,
                             std::string name) {
    auto g = co_await s.scoped();
    rec(name);
    ++inside;
    peak = std::max(peak, inside);
    co_await yield(3);
    --inside;
}

corio::coro<> semaphore_limit_main(recorder& rec) {
    corio::semaphore s(2);
    CHECK(s.value() == 2);
    CHECK_FALSE(s.locked());
    int inside = 0;
    int peak = 0;
    std::vector<corio::task<>> tasks;
    for (int i = 0; i < 6; ++i) {
        tasks.push_back(
            corio::create_task(limited_worker(s, inside, peak, rec, "w" + std::to_string(i))));
    }
    co_await yield();
    CHECK(s.locked());
    CHECK(inside == 2);
    co_await settle(tasks, rec);
    CHECK(peak == 2);
    CHECK(s.value() == 2);
}

TEST_CASE("semaphore: at most value tasks inside, admitted first in first out", "[semaphore]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(semaphore_limit_main(rec));
    const std::vector<std::string> expected{"w0", "w1", "w2", "w3", "w4", "w5"};
    CHECK(rec.events() == expected);
}

corio::coro<> take_unit(corio::semaphore& s, recorder& rec, std::string name) {
    co_await s.acquire();
    rec(name);
}

corio::coro<> semaphore_fifo_main(recorder& rec) {
    corio::semaphore s(0);
    CHECK(s.locked());
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(take_unit(s, rec, "a"), "a"));
    tasks.push_back(corio::create_task(take_unit(s, rec, "b"), "b"));
    co_await yield();
    s.release();  // handed to a
    CHECK(s.value() == 0);
    CHECK(s.locked());
    tasks.push_back(corio::create_task(take_unit(s, rec, "c"), "c"));  // queues behind b
    co_await yield();
    s.release();
    s.release();
    co_await settle(tasks, rec);
    CHECK(s.value() == 0);
}

TEST_CASE("semaphore: a released unit goes to the longest waiting; newcomers queue",
          "[semaphore]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(semaphore_fifo_main(rec));
    const std::vector<std::string> expected{"a", "b", "c"};
    CHECK(rec.events() == expected);
}

corio::coro<> semaphore_race_main(recorder& rec) {
    corio::semaphore s(0);
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b", "c"}) {
        tasks.push_back(corio::create_task(take_unit(s, rec, name), name));
    }
    co_await yield();
    tasks[1].cancel();  // b leaves while waiting
    s.release();        // to a...
    tasks[0].cancel();  // ... cancelled before it runs: the unit goes to c
    co_await settle(tasks, rec);
    CHECK(s.value() == 0);
    // Cancelled after the unit was handed over, with nobody else waiting: back to the counter.
    tasks.assign(1, corio::create_task(take_unit(s, rec, "d"), "d"));
    co_await yield();
    s.release();
    tasks[0].cancel();
    co_await settle(tasks, rec);
    CHECK(s.value() == 1);
}

TEST_CASE("semaphore: a waiter cancelled after being handed a unit hands it on",
          "[semaphore][race]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(semaphore_race_main(rec));
    const std::vector<std::string> expected{"c", "a cancelled", "b cancelled", "d cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> bounded_main() {
    CHECK_THROWS_AS(corio::semaphore(-1), std::invalid_argument);
    CHECK_THROWS_AS(corio::bounded_semaphore(-1), std::invalid_argument);
    corio::semaphore plain(1);
    plain.release();  // unbounded: fine
    CHECK(plain.value() == 2);

    corio::bounded_semaphore s(2);
    CHECK_THROWS_AS(s.release(), std::logic_error);
    co_await s.acquire();
    {
        auto g = co_await s.scoped();
        CHECK(s.locked());
    }
    s.release();
    CHECK(s.value() == 2);
    CHECK_THROWS_AS(s.release(), std::logic_error);
    CHECK(s.value() == 2);

    corio::bounded_semaphore zero(0);
    CHECK_THROWS_AS(zero.release(), std::logic_error);
    // Released through a base reference, the bound still holds.
    corio::semaphore& base = s;
    CHECK_THROWS_AS(base.release(), std::logic_error);
}

TEST_CASE("bounded_semaphore: over-release throws std::logic_error; negative values refused",
          "[semaphore]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(bounded_main());
}

// ---------------------------------------------------------------------------------------------
// barrier

corio::coro<> at_barrier(corio::barrier& b, recorder& rec, std::string name) {
    try {
        const std::size_t index = co_await b.wait();
        rec(name + " passed as " + std::to_string(index));
    } catch (const corio::broken_barrier_error&) {
        rec(name + " broken");
    }
}

corio::coro<> barrier_main(recorder& rec) {
    CHECK_THROWS_AS(corio::barrier(0), std::invalid_argument);
    corio::barrier b(3);
    CHECK(b.parties() == 3);
    CHECK(b.n_waiting() == 0);
    CHECK_FALSE(b.broken());
    for (int round = 0; round < 2; ++round) {
        std::vector<corio::task<>> tasks;
        tasks.push_back(corio::create_task(at_barrier(b, rec, "a")));
        tasks.push_back(corio::create_task(at_barrier(b, rec, "b")));
        co_await yield();
        CHECK(b.n_waiting() == 2);
        // The last to arrive does not suspend: the others have not run yet when it returns.
        const std::size_t index = co_await b.wait();
        rec("main passed as " + std::to_string(index));
        CHECK(b.n_waiting() == 0);
        co_await settle(tasks, rec);
    }
    corio::barrier one(1);
    const std::size_t first = co_await one.wait();
    const std::size_t second = co_await one.wait();
    CHECK(first == 0);
    CHECK(second == 0);
}

TEST_CASE("barrier: arrival indices, the last one passes at once, reusable", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_main(rec));
    const std::vector<std::string> expected{"main passed as 2", "a passed as 0", "b passed as 1",
                                            "main passed as 2", "a passed as 0", "b passed as 1"};
    CHECK(rec.events() == expected);
}

corio::coro<> arrive_late(corio::barrier& b, recorder& rec, std::string name) {
    co_await yield(3);
    CHECK(b.n_waiting() == 1);
    co_await at_barrier(b, rec, std::move(name));
}

corio::coro<> barrier_drain_main(recorder& rec) {
    corio::barrier b(2);
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(at_barrier(b, rec, "a")));
    tasks.push_back(corio::create_task(arrive_late(b, rec, "d")));
    co_await yield();
    const std::size_t index = co_await b.wait();  // trips; a is released but has not left yet
    CHECK(index == 1);
    // Main comes back for the next round while the barrier drains: it waits for a to leave,
    // then arrives first; d trips that round.
    const std::size_t next = co_await b.wait();
    rec("main passed as " + std::to_string(next));
    co_await settle(tasks, rec);
}

TEST_CASE("barrier: tasks arriving while it drains wait for the next round", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_drain_main(rec));
    const std::vector<std::string> expected{"a passed as 0", "d passed as 1",
                                            "main passed as 0"};
    CHECK(rec.events() == expected);
}

corio::coro<> barrier_abort_reset_main(recorder& rec) {
    corio::barrier b(3);
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(at_barrier(b, rec, "a")));
    tasks.push_back(corio::create_task(at_barrier(b, rec, "b")));
    co_await yield();
    b.abort();
    CHECK(b.broken());
    CHECK(b.n_waiting() == 0);
    co_await settle(tasks, rec);
    bool threw = false;
    try {
        (void)co_await b.wait();
    } catch (const corio::broken_barrier_error&) {
        threw = true;
    }
    CHECK(threw);
    b.reset();
    CHECK_FALSE(b.broken());

    // reset() while tasks wait: they get broken_barrier_error; the barrier then fills again.
    tasks.assign(1, corio::create_task(at_barrier(b, rec, "c")));
    co_await yield();
    CHECK(b.n_waiting() == 1);
    b.reset();
    CHECK(b.n_waiting() == 0);
    CHECK_FALSE(b.broken());
    co_await settle(tasks, rec);
    tasks.assign(1, corio::create_task(at_barrier(b, rec, "d")));
    tasks.push_back(corio::create_task(at_barrier(b, rec, "e")));
    co_await yield();
    const std::size_t index = co_await b.wait();
    CHECK(index == 2);
    co_await settle(tasks, rec);
}

TEST_CASE("barrier: abort breaks it, reset repairs it and releases the waiting", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_abort_reset_main(rec));
    const std::vector<std::string> expected{"a broken", "b broken", "c broken", "d passed as 0",
                                            "e passed as 1"};
    CHECK(rec.events() == expected);
}

corio::coro<> barrier_cancel_main(recorder& rec) {
    corio::barrier b(3);
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b"}) {
        tasks.push_back(corio::create_task(at_barrier(b, rec, name), name));
    }
    co_await yield();
    CHECK(b.n_waiting() == 2);
    tasks[0].cancel();  // a leaves: no longer counted
    CHECK(b.n_waiting() == 1);
    tasks.push_back(corio::create_task(at_barrier(b, rec, "c"), "c"));
    co_await yield();
    CHECK(b.n_waiting() == 2);
    std::size_t index = co_await b.wait();  // trips with b, c and main
    CHECK(index == 2);
    // Released, then cancelled before it runs: cancelled_error, and the barrier still drains.
    tasks[1].cancel();
    co_await settle(tasks, rec);
    CHECK(b.n_waiting() == 0);
    tasks.assign(1, corio::create_task(at_barrier(b, rec, "d")));
    tasks.push_back(corio::create_task(at_barrier(b, rec, "e")));
    co_await yield();
    index = co_await b.wait();
    CHECK(index == 2);
    co_await settle(tasks, rec);
}

corio::coro<> barrier_destroyed_main(recorder& rec) {
    std::vector<corio::task<>> tasks;
    auto b = std::make_unique<corio::barrier>(3);  // on the heap: ASan sees a use after free
    tasks.push_back(corio::create_task(at_barrier(*b, rec, "a")));
    tasks.push_back(corio::create_task(at_barrier(*b, rec, "b")));
    co_await yield();
    const std::size_t index = co_await b->wait();  // trips: a and b released, not yet run
    CHECK(index == 2);
    b.reset();  // the barrier goes before they leave it
    co_await settle(tasks, rec);
}

TEST_CASE("barrier: released tasks survive the barrier's destruction", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_destroyed_main(rec));
    const std::vector<std::string> expected{"a passed as 0", "b passed as 1"};
    CHECK(rec.events() == expected);
}

TEST_CASE("barrier: a cancelled waiter leaves and stops counting", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_cancel_main(rec));
    // c arrives after a left, so it takes index 1 again (asyncio's count-based indices).
    const std::vector<std::string> expected{"a cancelled", "c passed as 1", "b cancelled",
                                            "d passed as 0", "e passed as 1"};
    CHECK(rec.events() == expected);
}

// ---------------------------------------------------------------------------------------------
// A primitive destroyed while tasks wait on it: they stay waiting, and cancelling them must not
// touch it. Everything is on the heap, so that AddressSanitizer sees any use after free.

corio::coro<> acquire_then_wait(corio::condition& c) {
    co_await c.acquire();
    co_await c.wait();
}

corio::coro<> destroyed_while_waiting_main(recorder& rec) {
    auto l = std::make_unique<corio::lock>();
    auto e = std::make_unique<corio::event>();
    auto s = std::make_unique<corio::semaphore>(0);
    auto b = std::make_unique<corio::barrier>(3);
    auto c1 = std::make_unique<corio::condition>();  // its waiter waits for a notification
    auto c2 = std::make_unique<corio::condition>();  // its waiter waits to re-acquire the lock
    co_await l->acquire();
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(
        [](corio::lock& lk) -> corio::coro<> { co_await lk.acquire(); }(*l), "lock"));
    tasks.push_back(corio::create_task(
        [](corio::event& ev) -> corio::coro<> { co_await ev.wait(); }(*e), "event"));
    tasks.push_back(corio::create_task(
        [](corio::semaphore& sem) -> corio::coro<> { co_await sem.acquire(); }(*s), "semaphore"));
    tasks.push_back(corio::create_task(
        [](corio::barrier& br) -> corio::coro<> { (void)co_await br.wait(); }(*b), "barrier"));
    tasks.push_back(corio::create_task(acquire_then_wait(*c1), "condition"));
    tasks.push_back(corio::create_task(acquire_then_wait(*c2), "condition lock"));
    co_await yield();
    co_await c2->acquire();
    c2->notify();  // its waiter now queues for the lock main holds
    l.reset();
    e.reset();
    s.reset();
    b.reset();
    c1.reset();
    c2.reset();
    co_await yield(2);
    for (auto& t : tasks) CHECK_FALSE(t.done());  // nobody is woken
    for (auto& t : tasks) t.cancel();
    co_await settle(tasks, rec);
}

TEST_CASE("sync: waiters of a destroyed primitive can still be cancelled", "[lock][event]"
          "[semaphore][barrier][condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(destroyed_while_waiting_main(rec));
    const std::vector<std::string> expected{"lock cancelled",      "event cancelled",
                                            "semaphore cancelled", "barrier cancelled",
                                            "condition cancelled", "condition lock cancelled"};
    CHECK(rec.events() == expected);
}

// ---------------------------------------------------------------------------------------------
// No allocation per wait

constexpr int rounds = 1000;

corio::coro<> lock_ping(corio::lock& l, long& allocated) {
    const long before = corio_test::allocations();
    for (int i = 0; i < rounds; ++i) {
        co_await l.acquire();
        co_await corio::sleep(0s);
        l.release();
    }
    allocated = corio_test::allocations() - before;
}

corio::coro<> event_ping(corio::event& mine, corio::event& theirs, bool first, long& allocated) {
    const long before = corio_test::allocations();
    for (int i = 0; i < rounds; ++i) {
        if (first) theirs.set();
        co_await mine.wait();
        mine.clear();
        if (!first) theirs.set();
    }
    allocated = corio_test::allocations() - before;
}

corio::coro<> semaphore_ping(corio::semaphore& mine, corio::semaphore& theirs, long& allocated) {
    const long before = corio_test::allocations();
    for (int i = 0; i < rounds; ++i) {
        theirs.release();
        co_await mine.acquire();
    }
    allocated = corio_test::allocations() - before;
}

corio::coro<> condition_ping(corio::condition& c, int& turn, int me, long& allocated) {
    const long before = corio_test::allocations();
    for (int i = 0; i < rounds; ++i) {
        co_await c.acquire();
        while (turn != me) co_await c.wait();
        turn = 1 - me;
        c.notify();
        c.release();
    }
    allocated = corio_test::allocations() - before;
}

corio::coro<> no_allocation_main() {
    long a = -1;
    long b = -1;
    corio::lock l;
    auto t1 = corio::create_task(lock_ping(l, a));
    auto t2 = corio::create_task(lock_ping(l, b));
    co_await t1;
    co_await t2;
    CHECK(a == 0);
    CHECK(b == 0);

    corio::event e1;
    corio::event e2;
    t1 = corio::create_task(event_ping(e1, e2, true, a));
    t2 = corio::create_task(event_ping(e2, e1, false, b));
    co_await t1;
    co_await t2;
    CHECK(a == 0);
    CHECK(b == 0);

    corio::semaphore s1(0);
    corio::semaphore s2(0);
    t1 = corio::create_task(semaphore_ping(s1, s2, a));
    t2 = corio::create_task(semaphore_ping(s2, s1, b));
    co_await t1;
    co_await t2;
    CHECK(a == 0);
    CHECK(b == 0);

    corio::condition c;
    int turn = 0;
    t1 = corio::create_task(condition_ping(c, turn, 0, a));
    t2 = corio::create_task(condition_ping(c, turn, 1, b));
    co_await t1;
    co_await t2;
    CHECK(a == 0);
    CHECK(b == 0);
}

TEST_CASE("sync: waiting and waking allocate nothing", "[lock][event][semaphore][condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(no_allocation_main());
}

} // namespace
