// corio::lock (include/corio/sync/lock.hpp) and the guard of its scoped() (sync/guard.hpp):
// the contract, FIFO fairness with no barging, and the cancellation races in which a waiter is
// cancelled in the same loop iteration that hands it the lock.
#include <corio/sync/lock.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/settle.hpp"
#include "support/test_helpers.hpp"

#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/guard.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::recorder;
using corio_test::run_test;
using corio_test::settle;
using corio_test::yield;

namespace {

static_assert(!std::is_copy_constructible_v<corio::lock>);
static_assert(!std::is_move_constructible_v<corio::lock>);
static_assert(std::is_nothrow_move_constructible_v<corio::guard<corio::lock>>);
static_assert(!std::is_copy_constructible_v<corio::guard<corio::lock>>);

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

corio::coro<> wait_scoped(corio::lock& l) { auto g = co_await l.scoped(); }

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

}  // namespace
