// Queues (API.md section 5; queue.hpp): FIFO, priority and LIFO order, bounded put and get,
// fairness among waiters, task_done/join, Python 3.13's shutdown, move-only items, and the
// cancellation races: a cancelled put adds nothing, a getter cancelled after being handed an
// item hands it on.
#include <corio/sync/queue.hpp>

#include "support/allocation_counter.hpp"
#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/test_helpers.hpp"

#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::counted;
using corio_test::frame_leak_check;
using corio_test::recorder;
using corio_test::run_test;
using corio_test::yield;

namespace {

static_assert(std::is_base_of_v<std::runtime_error, corio::queue_empty>);
static_assert(std::is_base_of_v<std::runtime_error, corio::queue_full>);
static_assert(std::is_base_of_v<std::runtime_error, corio::queue_shutdown>);
static_assert(!std::is_copy_constructible_v<corio::queue<int>>);
static_assert(!std::is_move_constructible_v<corio::queue<int>>);

// Awaits every task, recording the cancelled ones as "<name> cancelled" and the ones that
// failed as "<name>: <what>".
corio::coro<> settle(std::vector<corio::task<>>& tasks, recorder& rec) {
    for (auto& t : tasks) {
        try {
            co_await t;
        } catch (const corio::cancelled_error&) {
            if (corio::current_task().cancelling() > 0) throw;  // settle itself was cancelled
            rec(t.get_name() + " cancelled");
        } catch (const std::exception& e) {
            rec(t.get_name() + ": " + e.what());
        }
    }
}

template <class Q>
corio::coro<> get_one(Q& q, recorder& rec, std::string name) {
    auto item = co_await q.get();
    rec(name + " got " + std::to_string(item));
}

template <class Q>
corio::coro<> put_one(Q& q, recorder& rec, std::string name, int item) {
    co_await q.put(item);
    rec(name + " put " + std::to_string(item));
}

template <class Q>
std::vector<int> drain(Q& q) {
    std::vector<int> items;
    while (!q.empty()) items.push_back(q.get_nowait());
    return items;
}

// ---------------------------------------------------------------------------------------------

corio::coro<> nowait_main() {
    corio::queue<int> q(2);
    CHECK(q.maxsize() == 2);
    CHECK(q.empty());
    CHECK_FALSE(q.full());
    CHECK(q.qsize() == 0);
    CHECK_THROWS_AS(q.get_nowait(), corio::queue_empty);
    q.put_nowait(1);
    const int two = 2;
    q.put_nowait(two);  // copied from an lvalue
    CHECK(q.full());
    CHECK(q.qsize() == 2);
    CHECK_THROWS_AS(q.put_nowait(3), corio::queue_full);
    CHECK(q.get_nowait() == 1);
    CHECK_FALSE(q.full());
    co_await q.put(3);  // room: completes at once
    const int second = co_await q.get();
    const int third = co_await q.get();
    CHECK(second == 2);
    CHECK(third == 3);
    CHECK(q.empty());

    corio::queue<int> unbounded;
    CHECK(unbounded.maxsize() == 0);
    for (int i = 0; i < 10'000; ++i) unbounded.put_nowait(i);
    CHECK_FALSE(unbounded.full());
    CHECK(unbounded.qsize() == 10'000);
    for (int i = 0; i < 10'000; ++i) REQUIRE(unbounded.get_nowait() == i);
}

TEST_CASE("queue: put_nowait, get_nowait, qsize, empty, full, maxsize", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(nowait_main());
}

corio::coro<> order_main() {
    corio::priority_queue<int> smallest;
    corio::priority_queue<int, std::greater<int>> largest;
    corio::lifo_queue<int> stack;
    for (int i : {5, 1, 4, 2, 3}) {
        smallest.put_nowait(i);
        largest.put_nowait(i);
        co_await stack.put(i);
    }
    const std::vector<int> ascending{1, 2, 3, 4, 5};
    const std::vector<int> descending{5, 4, 3, 2, 1};
    const std::vector<int> reversed{3, 2, 4, 1, 5};
    CHECK(drain(smallest) == ascending);
    CHECK(drain(largest) == descending);
    CHECK(drain(stack) == reversed);

    // asyncio's usual (priority, payload) pairs.
    corio::priority_queue<std::pair<int, std::string>> jobs;
    jobs.put_nowait({2, "write"});
    jobs.put_nowait({0, "read"});
    jobs.put_nowait({1, "parse"});
    auto job = co_await jobs.get();
    CHECK(job.second == "read");
    CHECK(jobs.get_nowait().second == "parse");
    CHECK(jobs.get_nowait().second == "write");
}

TEST_CASE("priority_queue hands out the smallest first, lifo_queue the newest", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(order_main());
}

corio::coro<> getters_fifo_main(recorder& rec) {
    corio::queue<int> q;
    std::vector<corio::task<>> tasks;
    for (const char* name : {"g0", "g1", "g2"}) {
        tasks.push_back(corio::create_task(get_one(q, rec, name)));
    }
    co_await yield();
    q.put_nowait(10);  // handed straight to g0
    CHECK(q.empty());
    CHECK(q.qsize() == 0);
    CHECK_THROWS_AS(q.get_nowait(), corio::queue_empty);  // nothing to barge in on
    co_await q.put(11);
    q.put_nowait(12);
    q.put_nowait(13);  // nobody waits for this one
    co_await settle(tasks, rec);
    CHECK(q.get_nowait() == 13);
}

TEST_CASE("queue: getters are served first in first out", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(getters_fifo_main(rec));
    const std::vector<std::string> expected{"g0 got 10", "g1 got 11", "g2 got 12"};
    CHECK(rec.events() == expected);
}

corio::coro<> putters_fifo_main(recorder& rec) {
    corio::queue<int> q(1);
    q.put_nowait(0);
    std::vector<corio::task<>> tasks;
    for (int i = 1; i <= 3; ++i) {
        tasks.push_back(corio::create_task(put_one(q, rec, "p" + std::to_string(i), i)));
    }
    co_await yield();
    CHECK(q.full());
    CHECK(q.get_nowait() == 0);  // p1 is admitted: its slot is promised
    CHECK(q.qsize() == 0);
    CHECK(q.full());
    CHECK_THROWS_AS(q.put_nowait(99), corio::queue_full);  // no barging
    for (int expected = 1; expected <= 3; ++expected) {
        const int item = co_await q.get();
        CHECK(item == expected);
    }
    co_await settle(tasks, rec);
    CHECK(q.empty());
    CHECK_FALSE(q.full());
}

TEST_CASE("queue: putters wait while it is full, and are admitted in order", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(putters_fifo_main(rec));
    const std::vector<std::string> expected{"p1 put 1", "p2 put 2", "p3 put 3"};
    CHECK(rec.events() == expected);
}

corio::coro<> handed_slot_main() {
    corio::queue<int> q(1);
    auto getter = corio::create_task(
        [](corio::queue<int>& queue) -> corio::coro<int> { co_return co_await queue.get(); }(q));
    co_await yield();
    q.put_nowait(1);  // handed to the getter, which has not run yet: its slot is still taken
    CHECK(q.qsize() == 0);
    CHECK(q.full());
    CHECK_THROWS_AS(q.put_nowait(2), corio::queue_full);
    const int got = co_await getter;
    CHECK(got == 1);
    CHECK_FALSE(q.full());
    q.put_nowait(2);
    CHECK(q.get_nowait() == 2);
}

TEST_CASE("queue: an item handed to a getter keeps its slot until the getter runs", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(handed_slot_main());
}

// ---------------------------------------------------------------------------------------------
// Cancellation

corio::coro<> cancel_put_main(recorder& rec) {
    corio::queue<int> q(1);
    q.put_nowait(0);
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(put_one(q, rec, "p1", 1), "p1"));
    tasks.push_back(corio::create_task(put_one(q, rec, "p2", 2), "p2"));
    tasks.push_back(corio::create_task(put_one(q, rec, "p3", 3), "p3"));
    co_await yield();
    tasks[1].cancel();  // p2 leaves while waiting: 2 is never added
    co_await yield();
    CHECK(q.get_nowait() == 0);  // p1 is admitted...
    tasks[0].cancel();           // ... and cancelled before it runs: its slot goes to p3
    co_await settle(tasks, rec);
    CHECK(q.qsize() == 1);
    CHECK(q.get_nowait() == 3);
    CHECK(q.empty());
    // Each successful put counts once: only 0 and 3 were put.
    q.task_done();
    q.task_done();
    CHECK_THROWS_AS(q.task_done(), std::logic_error);
}

TEST_CASE("queue: a cancelled put adds nothing; an admitted putter cancelled passes its slot on",
          "[queue][race]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(cancel_put_main(rec));
    const std::vector<std::string> expected{"p3 put 3", "p1 cancelled", "p2 cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> cancel_get_main(recorder& rec) {
    corio::queue<int> q;
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b", "c"}) {
        tasks.push_back(corio::create_task(get_one(q, rec, name), name));
    }
    co_await yield();
    tasks[1].cancel();  // b leaves while waiting
    q.put_nowait(1);    // handed to a...
    tasks[0].cancel();  // ... cancelled before it runs: 1 goes to c
    co_await settle(tasks, rec);
    CHECK(q.empty());

    // With nobody else waiting, the item goes back to the head of the queue.
    tasks.assign(1, corio::create_task(get_one(q, rec, "d"), "d"));
    co_await yield();
    q.put_nowait(2);  // handed to d
    q.put_nowait(3);  // queued
    tasks[0].cancel();
    co_await settle(tasks, rec);
    const std::vector<int> in_order{2, 3};
    CHECK(drain(q) == in_order);
}

TEST_CASE("queue: a getter cancelled after being handed an item hands it on", "[queue][race]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(cancel_get_main(rec));
    const std::vector<std::string> expected{"c got 1", "a cancelled", "b cancelled", "d cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> cancel_get_lifo_main(recorder& rec) {
    corio::lifo_queue<int> stack(2);
    corio::priority_queue<int> heap;
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(get_one(stack, rec, "s"), "s"));
    tasks.push_back(corio::create_task(get_one(heap, rec, "h"), "h"));
    co_await yield();
    stack.put_nowait(1);  // handed to s
    stack.put_nowait(2);
    CHECK(stack.full());  // 1 still holds its slot
    heap.put_nowait(5);   // handed to h
    heap.put_nowait(7);
    heap.put_nowait(3);
    tasks[0].cancel();
    tasks[1].cancel();
    co_await settle(tasks, rec);
    CHECK(stack.qsize() == 2);
    // 1 was put first: back at the bottom of the stack, under 2.
    const std::vector<int> stack_items{2, 1};
    const std::vector<int> heap_items{3, 5, 7};
    CHECK(drain(stack) == stack_items);
    CHECK(drain(heap) == heap_items);
}

TEST_CASE("lifo_queue and priority_queue: an item handed back keeps its place", "[queue][race]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(cancel_get_lifo_main(rec));
    const std::vector<std::string> expected{"s cancelled", "h cancelled"};
    CHECK(rec.events() == expected);
}

// ---------------------------------------------------------------------------------------------
// task_done and join

corio::coro<> worker(corio::queue<int>& q, recorder& rec, std::string name) {
    for (;;) {
        const int item = co_await q.get();
        co_await yield(item);
        rec(name + " done " + std::to_string(item));
        q.task_done();
    }
}

corio::coro<> join_main(recorder& rec) {
    corio::queue<int> q;
    co_await q.join();  // nothing unfinished: at once
    CHECK_THROWS_AS(q.task_done(), std::logic_error);
    auto w1 = corio::create_task(worker(q, rec, "w1"), "w1");
    auto w2 = corio::create_task(worker(q, rec, "w2"), "w2");
    for (int i : {3, 1, 2}) co_await q.put(i);
    co_await q.join();
    rec("joined");
    w1.cancel();
    w2.cancel();
    std::vector<corio::task<>> tasks{w1, w2};
    co_await settle(tasks, rec);
    CHECK_THROWS_AS(q.task_done(), std::logic_error);
}

TEST_CASE("queue: join waits for a task_done per item; too many task_done throw", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(join_main(rec));
    const std::vector<std::string> expected{"w2 done 1", "w1 done 3",    "w2 done 2",
                                            "joined",    "w1 cancelled", "w2 cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> cancel_join_main(recorder& rec) {
    corio::queue<int> q;
    q.put_nowait(1);
    std::vector<corio::task<>> tasks;
    for (const char* name : {"j1", "j2"}) {
        tasks.push_back(corio::create_task(
            [](corio::queue<int>& queue, recorder& r, std::string n) -> corio::coro<> {
                co_await queue.join();
                r(n + " joined");
            }(q, rec, name),
            name));
    }
    co_await yield();
    tasks[0].cancel();
    co_await yield();
    (void)q.get_nowait();
    q.task_done();
    co_await settle(tasks, rec);
}

TEST_CASE("queue: a cancelled join leaves, the others are released", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(cancel_join_main(rec));
    const std::vector<std::string> expected{"j1 cancelled", "j2 joined"};
    CHECK(rec.events() == expected);
}

// ---------------------------------------------------------------------------------------------
// shutdown

corio::coro<> shutdown_main(recorder& rec) {
    corio::queue<int> q(2);
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(get_one(q, rec, "early getter"), "early getter"));
    co_await yield();
    q.put_nowait(1);  // handed to the early getter
    co_await yield();
    q.put_nowait(2);
    q.put_nowait(3);
    tasks.push_back(corio::create_task(put_one(q, rec, "putter", 4), "putter"));
    co_await yield();
    CHECK(q.get_nowait() == 2);  // admits the putter
    co_await yield();            // which puts 4
    tasks.push_back(corio::create_task(put_one(q, rec, "blocked putter", 5), "blocked putter"));
    co_await yield();
    CHECK_FALSE(q.is_shutdown());
    q.shutdown();
    CHECK(q.is_shutdown());
    CHECK_THROWS_AS(q.put_nowait(6), corio::queue_shutdown);
    bool threw = false;
    try {
        co_await q.put(6);
    } catch (const corio::queue_shutdown&) {
        threw = true;
    }
    CHECK(threw);
    // What is queued can still be taken; then get() throws.
    const int three = co_await q.get();
    CHECK(three == 3);
    CHECK(q.get_nowait() == 4);
    CHECK_THROWS_AS(q.get_nowait(), corio::queue_shutdown);
    threw = false;
    try {
        (void)co_await q.get();
    } catch (const corio::queue_shutdown&) {
        threw = true;
    }
    CHECK(threw);
    co_await settle(tasks, rec);
}

TEST_CASE("queue: shutdown refuses puts, wakes blocked putters, lets getters drain",
          "[queue][shutdown]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(shutdown_main(rec));
    const std::vector<std::string> expected{"early getter got 1", "putter put 4",
                                            "blocked putter: the queue is shut down"};
    CHECK(rec.events() == expected);
}

corio::coro<> shutdown_immediate_main(recorder& rec) {
    corio::queue<int> q;
    std::vector<corio::task<>> tasks;
    q.put_nowait(1);
    q.put_nowait(2);
    (void)q.get_nowait();  // taken, not yet done
    auto joiner = corio::create_task(
        [](corio::queue<int>& queue, recorder& r) -> corio::coro<> {
            co_await queue.join();
            r("joined");
        }(q, rec),
        "joiner");
    co_await yield();
    CHECK_FALSE(joiner.done());
    q.shutdown(true);  // drops 2, counted done; 1 is still unfinished
    CHECK(q.empty());
    CHECK_THROWS_AS(q.get_nowait(), corio::queue_shutdown);
    co_await yield();
    CHECK_FALSE(joiner.done());
    q.task_done();  // 1 done: join returns
    co_await joiner;
    CHECK_THROWS_AS(q.task_done(), std::logic_error);

    // Getters waiting on an empty queue throw at shutdown.
    corio::queue<int> other;
    tasks.push_back(corio::create_task(get_one(other, rec, "waiting getter"), "waiting getter"));
    co_await yield();
    other.shutdown();
    co_await settle(tasks, rec);
}

corio::coro<> shutdown_admitted_main(recorder& rec) {
    corio::queue<int> q(1);
    q.put_nowait(0);
    std::vector<corio::task<>> tasks{corio::create_task(put_one(q, rec, "p", 1), "p")};
    co_await yield();
    CHECK(q.get_nowait() == 0);  // p is admitted, but has not run
    q.shutdown();                // p's put fails: its item is never added
    co_await settle(tasks, rec);
    CHECK(q.empty());
    CHECK_FALSE(q.full());
}

TEST_CASE("queue: shutdown refuses a putter admitted but not yet run", "[queue][shutdown]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(shutdown_admitted_main(rec));
    const std::vector<std::string> expected{"p: the queue is shut down"};
    CHECK(rec.events() == expected);
}

TEST_CASE("queue: shutdown(immediate) drops the items and releases join", "[queue][shutdown]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(shutdown_immediate_main(rec));
    const std::vector<std::string> expected{"joined", "waiting getter: the queue is shut down"};
    CHECK(rec.events() == expected);
}

corio::coro<> shutdown_handed_main(recorder& rec) {
    corio::queue<int> q;
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(get_one(q, rec, "a"), "a"));
    tasks.push_back(corio::create_task(get_one(q, rec, "b"), "b"));
    co_await yield();
    q.put_nowait(1);    // handed to a
    q.put_nowait(2);    // handed to b
    tasks[1].cancel();  // b will not take it: with the queue shut down at once, 2 is dropped
    q.shutdown(true);
    co_await settle(tasks, rec);
    CHECK(q.empty());
    q.task_done();  // a's item; b's was counted done when dropped
    CHECK_THROWS_AS(q.task_done(), std::logic_error);
}

TEST_CASE("queue: items already handed to getters survive shutdown(immediate)",
          "[queue][shutdown]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(shutdown_handed_main(rec));
    const std::vector<std::string> expected{"a got 1", "b cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> queue_destroyed_main(recorder& rec) {
    std::vector<corio::task<>> tasks;
    // On the heap, so that AddressSanitizer sees any use after they are freed.
    auto q1 = std::make_unique<corio::queue<int>>(1);
    tasks.push_back(corio::create_task(get_one(*q1, rec, "getter"), "getter"));
    co_await yield();
    q1->put_nowait(1);  // handed to the getter, which runs after the queue is gone
    q1.reset();
    auto q2 = std::make_unique<corio::queue<int>>(1);
    q2->put_nowait(0);
    tasks.push_back(corio::create_task(put_one(*q2, rec, "putter", 2), "putter"));
    co_await yield();
    CHECK(q2->get_nowait() == 0);  // admits the putter, which runs after the queue is gone
    q2.reset();
    co_await settle(tasks, rec);
}

TEST_CASE("queue: tasks handed an item or a slot survive the queue's destruction", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(queue_destroyed_main(rec));
    const std::vector<std::string> expected{"getter got 1", "putter: the queue was destroyed"};
    CHECK(rec.events() == expected);
}

corio::coro<> queue_destroyed_waiting_main(recorder& rec) {
    // On the heap, so that AddressSanitizer sees any use after they are freed.
    auto empty = std::make_unique<corio::queue<int>>();
    auto full = std::make_unique<corio::queue<int>>(1);
    full->put_nowait(0);
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(get_one(*empty, rec, "getter"), "getter"));
    tasks.push_back(corio::create_task(put_one(*full, rec, "putter", 1), "putter"));
    tasks.push_back(corio::create_task(
        [](corio::queue<int>& q) -> corio::coro<> { co_await q.join(); }(*full), "joiner"));
    co_await yield();
    empty.reset();
    full.reset();
    co_await yield();
    for (auto& t : tasks) CHECK_FALSE(t.done());  // nobody is woken
    for (auto& t : tasks) t.cancel();
    co_await settle(tasks, rec);
}

TEST_CASE("queue: waiters of a destroyed queue can still be cancelled", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(queue_destroyed_waiting_main(rec));
    const std::vector<std::string> expected{"getter cancelled", "putter cancelled",
                                            "joiner cancelled"};
    CHECK(rec.events() == expected);
}

// ---------------------------------------------------------------------------------------------
// Items: move-only, never copied, never lost

corio::coro<> move_only_main() {
    corio::queue<std::unique_ptr<int>> q(2);
    auto getter = corio::create_task(
        [](corio::queue<std::unique_ptr<int>>& queue) -> corio::coro<std::unique_ptr<int>> {
            co_return co_await queue.get();
        }(q));
    co_await yield();
    co_await q.put(std::make_unique<int>(1));  // handed to the getter
    q.put_nowait(std::make_unique<int>(2));
    std::unique_ptr<int> first = co_await std::move(getter);
    REQUIRE(first);
    CHECK(*first == 1);
    auto second = q.get_nowait();
    CHECK(*second == 2);

    corio::priority_queue<std::unique_ptr<int>, std::function<bool(const std::unique_ptr<int>&,
                                                                   const std::unique_ptr<int>&)>>
        by_value(0, [](const auto& a, const auto& b) { return *a < *b; });
    for (int i : {3, 1, 2}) by_value.put_nowait(std::make_unique<int>(i));
    CHECK(*by_value.get_nowait() == 1);
    auto two = co_await by_value.get();
    CHECK(*two == 2);
    corio::lifo_queue<std::unique_ptr<int>> stack;
    co_await stack.put(std::make_unique<int>(7));
    CHECK(*stack.get_nowait() == 7);
}

TEST_CASE("queue: move-only items", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(move_only_main());
}

corio::coro<> counted_main() {
    counted::reset();
    {
        corio::queue<counted> q(2);
        auto getter = corio::create_task([](corio::queue<counted>& queue) -> corio::coro<> {
            for (int i = 0; i < 4; ++i) {
                counted c = co_await queue.get();
                CHECK(c.value == i);
            }
        }(q));
        co_await yield();
        for (int i = 0; i < 4; ++i) co_await q.put(counted(i));
        co_await getter;
        q.put_nowait(counted(9));
        // Dropped with the queue.
    }
    CHECK(counted::copies() == 0);
    CHECK(counted::alive() == 0);
}

TEST_CASE("queue: items are moved, never copied, and all destroyed", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(counted_main());
}

corio::coro<> get_forever(corio::queue<int>& q) { (void)co_await q.get(); }

corio::coro<> put_late(corio::queue<int>& q) {
    co_await yield();
    q.put_nowait(1);  // handed to the first getter, which will never run
    q.put_nowait(2);  // and 2 to the second
    q.put_nowait(3);
}

corio::coro<> close_main(corio::queue<int>& q) {
    corio::create_task(get_forever(q));
    corio::create_task(get_forever(q));
    corio::create_task(put_late(q));
    // Main ends while put_late yields; put_late then runs in the loop's last iteration, in which
    // the getters are handed their items but cannot run any more.
    co_await yield();
}

TEST_CASE("queue: items handed to getters destroyed by close() go back, in order", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::queue<int> q;  // outlives the loop
    {
        auto loop = corio::new_event_loop();
        loop->run_until_complete(close_main(q));
        CHECK(q.qsize() == 1);
        loop->close();
    }
    const std::vector<int> items{1, 2, 3};
    CHECK(drain(q) == items);
}

corio::coro<> cancel_two_getters_main(recorder& rec) {
    corio::queue<int> q;
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b", "c"}) {
        tasks.push_back(corio::create_task(get_one(q, rec, name), name));
    }
    co_await yield();
    for (int i = 1; i <= 4; ++i) q.put_nowait(i);  // 1 to a, 2 to b, 3 to c, 4 queued
    tasks[1].cancel();
    tasks[0].cancel();
    co_await settle(tasks, rec);
    // Handed items stay in put order along the getters: c, the one left, ends with the oldest,
    // and the others come back in order, ahead of 4.
    const std::vector<int> items{2, 3, 4};
    CHECK(drain(q) == items);
}

TEST_CASE("queue: items handed back by several cancelled getters keep their order",
          "[queue][race]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(cancel_two_getters_main(rec));
    const std::vector<std::string> expected{"c got 1", "a cancelled", "b cancelled"};
    CHECK(rec.events() == expected);
}

// ---------------------------------------------------------------------------------------------
// No allocation per wait

corio::coro<> consume(corio::queue<int>& q, int n, long& allocated, long& sum) {
    const long before = corio_test::allocations();
    for (int i = 0; i < n; ++i) sum += co_await q.get();
    allocated = corio_test::allocations() - before;
}

corio::coro<> produce(corio::queue<int>& q, int n, long& allocated) {
    const long before = corio_test::allocations();
    for (int i = 0; i < n; ++i) {
        co_await q.put(i);
        co_await corio::sleep(0s);  // the consumer waits for every item
    }
    allocated = corio_test::allocations() - before;
}

corio::coro<> join_many(corio::queue<int>& q, int n, long& allocated) {
    const long before = corio_test::allocations();
    for (int i = 0; i < n; ++i) {
        q.put_nowait(i);
        co_await q.join();
    }
    allocated = corio_test::allocations() - before;
}

corio::coro<> finish_many(corio::queue<int>& q, int n) {
    for (int i = 0; i < n; ++i) {
        (void)co_await q.get();
        q.task_done();
    }
}

corio::coro<> no_allocation_main() {
    constexpr int n = 1000;
    corio::queue<int> q(1);
    long consumer = -1;
    long producer = -1;
    long sum = 0;
    auto c = corio::create_task(consume(q, n, consumer, sum));
    auto p = corio::create_task(produce(q, n, producer));
    co_await c;
    co_await p;
    CHECK(sum == long{n} * (n - 1) / 2);
    CHECK(consumer == 0);
    CHECK(producer == 0);

    long joiner = -1;
    corio::queue<int> jobs;                             // q has n unfinished items
    auto f = corio::create_task(finish_many(jobs, n));  // waits in get() first: no deque growth
    auto j = corio::create_task(join_many(jobs, n, joiner));
    co_await j;
    co_await f;
    CHECK(joiner == 0);
}

TEST_CASE("queue: waiting in get, put and join allocates nothing", "[queue]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(no_allocation_main());
}

}  // namespace
