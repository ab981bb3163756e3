// The waiter every primitive is built from (include/corio/impl/sync_waiter.hpp), seen through
// lock, event, semaphore, barrier and condition at once: waiters of a destroyed primitive can
// still be cancelled, and waiting and waking allocate nothing.
#include <corio/sync/barrier.hpp>
#include <corio/sync/condition.hpp>
#include <corio/sync/event.hpp>
#include <corio/sync/lock.hpp>
#include <corio/sync/semaphore.hpp>

#include "support/allocation_counter.hpp"
#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/settle.hpp"
#include "support/test_helpers.hpp"

#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::recorder;
using corio_test::run_test;
using corio_test::settle;
using corio_test::yield;

namespace {

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

TEST_CASE("sync: waiters of a destroyed primitive can still be cancelled",
          "[lock][event]"
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

}  // namespace
