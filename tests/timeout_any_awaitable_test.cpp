// The timeouts of include/corio/timeout.hpp on any awaitable, not only coros, tasks and futures:
// wait_for / wait_until / with_timeout / with_deadline around every corio awaiter (sleep, queue
// get / put / join, event wait, lock / semaphore acquire, condition wait, barrier wait, a stream
// readline, a process wait) timing out with nothing lost and completing in time with the right
// value; empty optionals and bools; deadlines already past; duration::max(); a cancellation from
// outside staying a cancelled_error; the task's cancelling() count left as it was; and another
// library's awaiters (resumed from a loop callback, from another thread, inline, by symmetric
// transfer; with and without await_cancel()) in wait_for, gather, create_task and shield, the
// code after them running as a corio task. CTest runs it once per backend (CORIO_BACKEND).
#include <corio/timeout.hpp>

#include "support/catch.hpp"
#include "support/io_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/event_loop.hpp>
#include <corio/gather.hpp>
#include <corio/net/stream.hpp>
#include <corio/run.hpp>
#include <corio/shield.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/barrier.hpp>
#include <corio/sync/condition.hpp>
#include <corio/sync/event.hpp>
#include <corio/sync/lock.hpp>
#include <corio/sync/queue.hpp>
#include <corio/sync/semaphore.hpp>
#include <corio/system/process.hpp>
#include <corio/system/unique_fd.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::check_syscall;
using corio_test::frame_leak_check;
using corio_test::stopwatch;

namespace {

using ms = std::chrono::milliseconds;

// --- plumbing ------------------------------------------------------------------------------

// Runs `main` on a new loop, failing with corio::timeout_error after `limit` rather than hanging.
void run_within(corio::coro<> main, std::chrono::seconds limit = 20s) {
    corio::run([](corio::coro<> main, std::chrono::seconds limit) -> corio::coro<> {
        co_await corio::wait_for(std::move(main), limit);
    }(std::move(main), limit));
}

// `co_await wait_for(awaitable, limit)`: whether it threw timeout_error (anything else passes).
template <class A>
corio::coro<bool> times_out(A awaitable, ms limit) {
    try {
        (void)co_await corio::wait_for(std::move(awaitable), limit);
    } catch (const corio::timeout_error&) {
        co_return true;
    }
    co_return false;
}

// As `times_out`, with a deadline: `wait_until(deadline, awaitable)`.
template <class A>
corio::coro<bool> times_out_at(corio::event_loop::time_point deadline, A awaitable) {
    try {
        (void)co_await corio::wait_until(deadline, std::move(awaitable));
    } catch (const corio::timeout_error&) {
        co_return true;
    }
    co_return false;
}

// After a timed-out wait: no cancellation request left on the task, which can go on waiting.
corio::coro<void> check_nothing_pending() {
    CHECK(corio::current_task().cancelling() == 0);
    bool cancelled = false;
    try {
        co_await corio::sleep(2ms);
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    CHECK_FALSE(cancelled);
    CHECK(corio::current_task().cancelling() == 0);
}

corio::coro<int> value_after(ms delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

// Holds `l` for `hold`, from a task of its own.
corio::coro<void> hold_lock(corio::lock& l, ms hold) {
    co_await l.acquire();
    co_await corio::sleep(hold);
    l.release();
}

// Acquires `l` and releases it; 1 once it had it.
corio::coro<int> take_lock_once(corio::lock& l) {
    co_await l.acquire();
    l.release();
    co_return 1;
}

// Waits on `c` (with its lock) until notified; 1 once back, lock released.
corio::coro<int> wait_notified(corio::condition& c) {
    co_await c.acquire();
    co_await c.wait();
    const bool held = c.locked();
    c.release();
    co_return held ? 1 : 0;
}

corio::coro<void> notify_after(corio::condition& c, ms delay) {
    co_await corio::sleep(delay);
    co_await c.acquire();
    c.notify();
    c.release();
}

struct fd_pair {
    corio::unique_fd a;
    corio::unique_fd b;
};

fd_pair nonblocking_pipe() {
    int fds[2];
    check_syscall(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2");
    return {corio::unique_fd(fds[0]), corio::unique_fd(fds[1])};
}

// A reader and the writer feeding it: over a Unix socketpair, or a pipe. `unused` keeps the
// socket halves the test does not use.
struct line_ends {
    corio::stream_reader reader;
    corio::stream_writer writer;
    std::vector<corio::stream_pair> unused;
};

line_ends socket_streams() {
    corio_test::socket_pair fds = corio_test::unix_pair();
    corio::stream_pair a = corio::detail::make_socket_streams(std::move(fds.a));
    corio::stream_pair b = corio::detail::make_socket_streams(std::move(fds.b));
    line_ends ends{b.reader, a.writer, {}};
    ends.unused.push_back(std::move(a));
    ends.unused.push_back(std::move(b));
    return ends;
}

line_ends pipe_streams() {
    fd_pair p = nonblocking_pipe();
    return {corio::detail::make_pipe_reader(std::move(p.a)),
            corio::detail::make_pipe_writer(std::move(p.b)),
            {}};
}

// --- another library's awaiters ------------------------------------------------------------

// Resumes the handle it is given from a loop callback after `delay`; gives `value`, counting
// in `*resumed` the times its result was asked for.
struct later_value {
    ms delay;
    int value;
    int* resumed = nullptr;

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const {
        (void)corio::get_running_loop().call_later(delay, [h] { h.resume(); });
    }
    int await_resume() const noexcept {
        if (resumed != nullptr) ++*resumed;
        return value;
    }
};

later_value later(ms delay, int value, int* resumed = nullptr) {
    return later_value{delay, value, resumed};
}

// Not an awaiter itself: `operator co_await` gives one.
struct deferred {
    ms delay;
    int value;
    later_value operator co_await() const { return later(delay, value); }
};

// Resumes its handle from a thread of its own after `delay`; the test joins `*worker`.
struct from_thread {
    std::thread* worker;
    ms delay;
    int value;

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const {
        *worker = std::thread([h, d = delay] {
            std::this_thread::sleep_for(d);
            h.resume();
        });
    }
    int await_resume() const noexcept { return value; }
};

// Resumes its handle inside await_suspend (as a library does that finds its result ready).
struct resumes_inline {
    int value;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { h.resume(); }
    int await_resume() const noexcept { return value; }
};

// `bool await_suspend` that decides not to suspend.
struct declines_to_suspend {
    int value;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<>) const noexcept { return false; }
    int await_resume() const noexcept { return value; }
};

// Symmetric transfer: `await_suspend` returns the handle it was given (resume it now).
struct transfers_back {
    int value;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) const noexcept { return h; }
    int await_resume() const noexcept { return value; }
};

// Resumes its handle after `delay`, or soon after `await_cancel()`; counts the await_cancel calls.
class cancellable_later {
public:
    cancellable_later(ms delay, int value, int& cancels) noexcept
        : delay_(delay), value_(value), cancels_(&cancels) {}

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        handle_ = h;
        timer_ = corio::get_running_loop().call_later(delay_, [this] { resume(); });
    }
    void await_cancel() {
        ++*cancels_;
        if (cancel_posted_) return;
        cancel_posted_ = true;
        timer_.cancel();
        (void)corio::get_running_loop().call_soon([this] { resume(); });
    }
    int await_resume() const noexcept { return value_; }

private:
    void resume() {
        if (std::coroutine_handle<> h = std::exchange(handle_, {})) h.resume();
    }

    ms delay_;
    int value_;
    int* cancels_;
    std::coroutine_handle<> handle_;
    corio::timer_handle timer_;
    bool cancel_posted_ = false;
};

// Not an awaiter: `operator co_await` gives a `cancellable_later`.
struct cancellable_deferred {
    ms delay;
    int value;
    int* cancels;
    cancellable_later operator co_await() const {
        return cancellable_later(delay, value, *cancels);
    }
};

// await_cancel() resumes the handle at once, from inside the cancellation.
class resumes_on_cancel {
public:
    explicit resumes_on_cancel(int value) noexcept : value_(value) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { handle_ = h; }
    void await_cancel() {
        if (std::coroutine_handle<> h = std::exchange(handle_, {})) h.resume();
    }
    int await_resume() const noexcept { return value_; }

private:
    int value_;
    std::coroutine_handle<> handle_;
};
struct resumes_on_cancel_source {
    int value;
    resumes_on_cancel operator co_await() const { return resumes_on_cancel(value); }
};

struct foreign_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Resumes from a loop callback, then throws from await_resume.
struct throws_on_resume {
    ms delay;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const {
        (void)corio::get_running_loop().call_later(delay, [h] { h.resume(); });
    }
    int await_resume() const { throw foreign_error("from await_resume"); }
};

// Gives a reference to a string it owns.
struct gives_reference {
    std::string text;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const {
        (void)corio::get_running_loop().call_soon([h] { h.resume(); });
    }
    const std::string& await_resume() const noexcept { return text; }
};

// Move-only, with a move-only result.
class move_only_box {
public:
    explicit move_only_box(int value) : box_(std::make_unique<int>(value)) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const {
        (void)corio::get_running_loop().call_later(2ms, [h] { h.resume(); });
    }
    std::unique_ptr<int> await_resume() noexcept { return std::move(box_); }

private:
    std::unique_ptr<int> box_;
};

// await_suspend refuses by throwing; counts await_cancel calls made on it once destroyed.
struct throws_on_suspend {
    int* cancelled_dead;
    bool live = true;
    throws_on_suspend(int* counter) noexcept : cancelled_dead(counter) {}
    throws_on_suspend(const throws_on_suspend& other) noexcept
        : cancelled_dead(other.cancelled_dead) {}
    ~throws_on_suspend() { live = false; }
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) const { throw foreign_error("refused"); }
    void await_cancel() {
        if (!live) ++*cancelled_dead;
    }
    void await_resume() const noexcept {}
};
struct throws_on_suspend_source {
    int* cancelled_dead;
    throws_on_suspend operator co_await() const { return throws_on_suspend(cancelled_dead); }
};

// Awaits `awaitable` in the calling task and checks that what follows runs as that corio task,
// on the loop's thread, able to wait again.
template <class A>
corio::coro<int> await_as_task(A awaitable) {
    const corio::task<> me = corio::current_task();
    const std::thread::id thread = std::this_thread::get_id();
    const int value = co_await std::move(awaitable);
    CHECK(static_cast<bool>(corio::current_task()));
    CHECK(corio::current_task() == me);
    CHECK(std::this_thread::get_id() == thread);
    co_await corio::sleep(1ms);
    CHECK(corio::current_task() == me);
    co_return value;
}

// --- 1. every corio awaiter timing out, nothing lost ---------------------------------------

corio::coro<void> sleep_times_out() {
    stopwatch watch;
    const bool timed_out = co_await times_out(corio::sleep(10s), 20ms);
    CHECK(timed_out);
    CHECK(watch.elapsed() >= 15ms);
    CHECK(watch.elapsed() < 5s);
    co_await check_nothing_pending();
}

corio::coro<void> queue_get_times_out() {
    corio::queue<int> q;
    const bool timed_out = co_await times_out(q.get(), 20ms);
    CHECK(timed_out);
    co_await check_nothing_pending();
    // The getter that gave up is not in line: an item put goes to the next getter...
    corio::task<int> next = corio::create_task(q.get());
    co_await corio::sleep(2ms);
    q.put_nowait(1);
    const int got = co_await corio::wait_for(next, 2s);
    CHECK(got == 1);
    CHECK(q.empty());
    // ...or, with nobody waiting, stays in the queue.
    q.put_nowait(2);
    co_await corio::sleep(2ms);
    CHECK(q.qsize() == 1);
    CHECK(q.get_nowait() == 2);

    // An item put as the deadline passes (same deadline): timeout_error, and the item is kept.
    corio::event_loop& loop = corio::get_running_loop();
    const corio::event_loop::time_point deadline = loop.time() + 20ms;
    (void)loop.call_at(deadline, [&q] { q.put_nowait(3); });
    // Both are due in one pass over the timers, before the getter resumes: it times out, and an
    // item handed to it (were the put first) goes back.
    const bool timed_out_together = co_await times_out_at(deadline, q.get());
    CHECK(timed_out_together);
    co_await corio::sleep(2ms);
    CHECK(q.qsize() == 1);
    CHECK(q.get_nowait() == 3);
    CHECK(corio::current_task().cancelling() == 0);
}

corio::coro<void> queue_put_times_out() {
    corio::queue<int> q(1);
    q.put_nowait(1);
    const bool timed_out = co_await times_out(q.put(2), 20ms);
    CHECK(timed_out);
    co_await check_nothing_pending();
    CHECK(q.qsize() == 1);
    CHECK(q.get_nowait() == 1);
    co_await corio::sleep(2ms);
    CHECK(q.empty());  // 2 was never added, not even once there was room
    // No slot is kept for the putter that gave up: there is room for one, and one only.
    q.put_nowait(3);
    CHECK(q.full());
    CHECK(q.get_nowait() == 3);
}

corio::coro<void> queue_join_times_out() {
    corio::queue<int> q;
    q.put_nowait(1);
    const bool timed_out = co_await times_out(q.join(), 20ms);
    CHECK(timed_out);
    co_await check_nothing_pending();
    CHECK(q.qsize() == 1);
    corio::task<> joiner = corio::create_task(q.join());
    co_await corio::sleep(2ms);
    CHECK_FALSE(joiner.done());
    CHECK(q.get_nowait() == 1);
    q.task_done();
    co_await corio::wait_for(joiner, 2s);
    // Nothing unfinished: join completes at once.
    co_await corio::wait_for(q.join(), 0s);
}

corio::coro<void> event_wait_times_out() {
    corio::event e;
    const bool timed_out = co_await times_out(e.wait(), 20ms);
    CHECK(timed_out);
    co_await check_nothing_pending();
    CHECK_FALSE(e.is_set());
    corio::task<> waiter = corio::create_task(e.wait());
    co_await corio::sleep(2ms);
    CHECK_FALSE(waiter.done());
    e.set();
    co_await corio::wait_for(waiter, 2s);
    CHECK(e.is_set());
}

corio::coro<void> lock_acquire_times_out() {
    corio::lock l;
    corio::task<> holder = corio::create_task(hold_lock(l, 60ms));
    co_await corio::sleep(2ms);
    REQUIRE(l.locked());
    const bool timed_out = co_await times_out(l.acquire(), 20ms);
    CHECK(timed_out);
    co_await check_nothing_pending();
    CHECK(l.locked());  // the holder's
    co_await corio::wait_for(holder, 2s);
    CHECK_FALSE(l.locked());  // the acquire that timed out holds nothing
    // Nor is it in line: a waiter behind a release gets the lock.
    co_await l.acquire();
    corio::task<int> next = corio::create_task(take_lock_once(l));
    co_await corio::sleep(2ms);
    l.release();
    const int took = co_await corio::wait_for(next, 2s);
    CHECK(took == 1);
    CHECK_FALSE(l.locked());

    // The scoped form too: no guard, nothing held.
    co_await l.acquire();
    const bool scoped_timed_out = co_await times_out(l.scoped(), 20ms);
    CHECK(scoped_timed_out);
    l.release();
    CHECK_FALSE(l.locked());

    // Released as the deadline passes (same deadline): timeout_error, and the lock is free.
    corio::event_loop& loop = corio::get_running_loop();
    co_await l.acquire();
    const corio::event_loop::time_point deadline = loop.time() + 20ms;
    (void)loop.call_at(deadline, [&l] { l.release(); });
    // As for the queue: it times out, and a lock handed to it (were the release first) is freed.
    const bool together = co_await times_out_at(deadline, l.acquire());
    CHECK(together);
    co_await corio::sleep(2ms);
    CHECK_FALSE(l.locked());
    CHECK(corio::current_task().cancelling() == 0);
}

corio::coro<void> semaphore_acquire_times_out() {
    corio::semaphore s(1);
    co_await s.acquire();
    CHECK(s.value() == 0);
    const bool timed_out = co_await times_out(s.acquire(), 20ms);
    CHECK(timed_out);
    co_await check_nothing_pending();
    CHECK(s.value() == 0);
    // Not in line: the unit released goes to the next waiter...
    corio::task<> next = corio::create_task(s.acquire());
    co_await corio::sleep(2ms);
    s.release();
    co_await corio::wait_for(next, 2s);
    CHECK(s.value() == 0);
    // ...and back to the counter once that one releases: no unit lost or made up.
    s.release();
    CHECK(s.value() == 1);

    corio::bounded_semaphore b(1);
    co_await b.acquire();
    const bool bounded_timed_out = co_await times_out(b.acquire(), 20ms);
    CHECK(bounded_timed_out);
    b.release();
    CHECK(b.value() == 1);
    CHECK_THROWS_AS(b.release(), std::logic_error);  // the timed-out acquire holds no unit
}

corio::coro<void> condition_wait_times_out() {
    corio::condition c;
    co_await c.acquire();
    const bool timed_out = co_await times_out(c.wait(), 20ms);
    CHECK(timed_out);
    co_await check_nothing_pending();
    // As asyncio: the lock is re-acquired before the wait ends, timeout or not.
    CHECK(c.locked());
    c.release();
    CHECK_FALSE(c.locked());
    // Not registered any more: a notify(1) goes to the next waiter.
    corio::task<int> waiter = corio::create_task(wait_notified(c));
    co_await corio::sleep(2ms);
    co_await c.acquire();
    c.notify(1);
    c.release();
    const int woken = co_await corio::wait_for(waiter, 2s);
    CHECK(woken == 1);
    CHECK_FALSE(c.locked());
}

corio::coro<void> condition_wait_times_out_behind_holder() {
    // The lock is someone else's when the time is up: timeout_error only once it is re-acquired.
    corio::lock l;
    corio::condition c(l);
    co_await c.acquire();
    corio::task<> holder = corio::create_task(hold_lock(l, 80ms));  // runs once wait() releases
    stopwatch watch;
    const bool timed_out = co_await times_out(c.wait(), 20ms);
    CHECK(timed_out);
    CHECK(watch.elapsed() >= 70ms);
    CHECK(watch.elapsed() < 5s);
    CHECK(holder.done());
    CHECK(c.locked());
    c.release();
    CHECK_FALSE(l.locked());
    co_await check_nothing_pending();
}

corio::coro<void> barrier_wait_times_out() {
    corio::barrier b(3);
    corio::task<std::size_t> first = corio::create_task(b.wait());
    co_await corio::sleep(2ms);
    CHECK(b.n_waiting() == 1);
    const bool timed_out = co_await times_out(b.wait(), 20ms);
    CHECK(timed_out);
    co_await check_nothing_pending();
    // The task that gave up no longer counts as arrived.
    CHECK(b.n_waiting() == 1);
    CHECK(b.parties() == 3);
    CHECK_FALSE(b.broken());
    corio::task<std::size_t> second = corio::create_task(b.wait());
    co_await corio::sleep(2ms);
    CHECK(b.n_waiting() == 2);
    CHECK_FALSE(first.done());  // one more is needed
    const std::size_t third = co_await corio::wait_for(b.wait(), 2s);
    const std::size_t a = co_await corio::wait_for(first, 2s);
    const std::size_t s = co_await corio::wait_for(second, 2s);
    CHECK(a == 0);
    CHECK(s == 1);
    CHECK(third == 2);
    co_await corio::sleep(2ms);
    CHECK(b.n_waiting() == 0);
}

corio::coro<void> readline_times_out(bool pipe) {
    line_ends ends = pipe ? pipe_streams() : socket_streams();
    ends.writer.write("par");
    co_await corio::sleep(2ms);
    const bool timed_out = co_await times_out(ends.reader.readline(), 20ms);
    CHECK(timed_out);
    co_await check_nothing_pending();
    // The partial line read meanwhile is kept.
    ends.writer.write("tial\n");
    const std::string line = co_await corio::wait_for(ends.reader.readline(), 2s);
    CHECK(line == "partial\n");
    // And a timeout with nothing read at all.
    const bool empty_timed_out = co_await times_out(ends.reader.readline(), 20ms);
    CHECK(empty_timed_out);
    ends.writer.write("next\n");
    const std::string next = co_await corio::wait_for(ends.reader.readline(), 2s);
    CHECK(next == "next\n");
    ends.writer.close();
    co_await corio::wait_for(ends.writer.wait_closed(), 2s);
}

corio::coro<void> process_wait_times_out() {
    const std::vector<std::string> five{"5"};
    corio::process p = co_await corio::create_subprocess_exec("sleep", five);
    stopwatch watch;
    const bool timed_out = co_await times_out(p.wait(), 20ms);
    CHECK(timed_out);
    CHECK(watch.elapsed() < 4s);
    co_await check_nothing_pending();
    CHECK_FALSE(p.returncode().has_value());  // the child runs on
    p.kill();
    const int code = co_await corio::wait_for(p.wait(), 5s);
    CHECK(code == -SIGKILL);
    CHECK(p.returncode() == -SIGKILL);
    CHECK(watch.elapsed() < 4s);
}

// --- 2. the same awaiters in time ----------------------------------------------------------

corio::coro<void> sleep_in_time() {
    co_await corio::wait_for(corio::sleep(1ms), 5s);
    const bool finished = co_await corio::with_timeout(5s, corio::sleep(1ms));
    CHECK(finished);
    co_await check_nothing_pending();
}

corio::coro<void> queue_in_time() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::queue<int> q(1);
    q.put_nowait(1);
    const int ready = co_await corio::wait_for(q.get(), 5s);
    CHECK(ready == 1);
    (void)loop.call_later(5ms, [&q] { q.put_nowait(2); });
    const std::optional<int> later_item = co_await corio::with_timeout(5s, q.get());
    REQUIRE(later_item.has_value());
    CHECK(*later_item == 2);

    // put on a full queue, admitted once a getter makes room.
    q.put_nowait(3);
    (void)loop.call_later(5ms, [&q] { CHECK(q.get_nowait() == 3); });
    co_await corio::wait_for(q.put(4), 5s);
    CHECK(q.qsize() == 1);
    (void)loop.call_later(5ms, [&q] { CHECK(q.get_nowait() == 4); });
    const bool put_in_time = co_await corio::with_timeout(5s, q.put(5));
    CHECK(put_in_time);
    CHECK(q.qsize() == 1);
    CHECK(q.get_nowait() == 5);

    // join, once every item is done.
    for (int i = 0; i < 5; ++i) q.task_done();  // the five put so far
    q.put_nowait(6);
    (void)loop.call_later(5ms, [&q] {
        (void)q.get_nowait();
        q.task_done();
    });
    co_await corio::wait_for(q.join(), 5s);
    q.put_nowait(7);
    (void)loop.call_later(5ms, [&q] {
        (void)q.get_nowait();
        q.task_done();
    });
    const bool joined = co_await corio::with_timeout(5s, q.join());
    CHECK(joined);
    co_await check_nothing_pending();
}

corio::coro<void> event_in_time() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::event e;
    (void)loop.call_later(5ms, [&e] { e.set(); });
    co_await corio::wait_for(e.wait(), 5s);
    e.clear();
    (void)loop.call_later(5ms, [&e] { e.set(); });
    const bool set = co_await corio::with_timeout(5s, e.wait());
    CHECK(set);
    co_await check_nothing_pending();
}

corio::coro<void> lock_and_semaphore_in_time() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::lock l;
    co_await corio::wait_for(l.acquire(), 5s);  // free: at once
    CHECK(l.locked());
    (void)loop.call_later(5ms, [&l] { l.release(); });
    co_await corio::wait_for(l.acquire(), 5s);  // released to us
    CHECK(l.locked());
    (void)loop.call_later(5ms, [&l] { l.release(); });
    const bool acquired = co_await corio::with_timeout(5s, l.acquire());
    CHECK(acquired);
    CHECK(l.locked());
    l.release();
    {
        auto g = co_await corio::wait_for(l.scoped(), 5s);
        CHECK(g.owns_lock());
        CHECK(l.locked());
    }
    CHECK_FALSE(l.locked());
    {
        std::optional<corio::guard<corio::lock>> g = co_await corio::with_timeout(5s, l.scoped());
        REQUIRE(g.has_value());
        CHECK(g->owns_lock());
    }
    CHECK_FALSE(l.locked());

    corio::semaphore s(1);
    co_await corio::wait_for(s.acquire(), 5s);
    CHECK(s.value() == 0);
    (void)loop.call_later(5ms, [&s] { s.release(); });
    const bool got_unit = co_await corio::with_timeout(5s, s.acquire());
    CHECK(got_unit);
    CHECK(s.value() == 0);
    s.release();
    CHECK(s.value() == 1);
    co_await check_nothing_pending();
}

corio::coro<void> condition_in_time() {
    corio::condition c;
    co_await c.acquire();
    corio::task<> notifier = corio::create_task(notify_after(c, 5ms));
    co_await corio::wait_for(c.wait(), 5s);
    CHECK(c.locked());
    corio::task<> second = corio::create_task(notify_after(c, 5ms));
    const bool notified = co_await corio::with_timeout(5s, c.wait());
    CHECK(notified);
    CHECK(c.locked());
    c.release();
    co_await corio::wait_for(notifier, 5s);
    co_await corio::wait_for(second, 5s);
    CHECK_FALSE(c.locked());
    co_await check_nothing_pending();
}

corio::coro<void> barrier_in_time() {
    corio::barrier b(2);
    corio::task<std::size_t> other = corio::create_task(b.wait());
    co_await corio::sleep(2ms);  // it arrives first
    const std::size_t mine = co_await corio::wait_for(b.wait(), 5s);
    const std::size_t theirs = co_await corio::wait_for(other, 5s);
    CHECK(theirs == 0);
    CHECK(mine == 1);
    co_await corio::sleep(2ms);  // drained
    corio::task<std::size_t> again = corio::create_task(b.wait());
    co_await corio::sleep(2ms);
    const std::optional<std::size_t> index = co_await corio::with_timeout(5s, b.wait());
    REQUIRE(index.has_value());
    CHECK(*index == 1);
    const std::size_t again_index = co_await corio::wait_for(again, 5s);
    CHECK(again_index == 0);
    co_await check_nothing_pending();
}

corio::coro<void> readline_in_time(bool pipe) {
    corio::event_loop& loop = corio::get_running_loop();
    line_ends ends = pipe ? pipe_streams() : socket_streams();
    corio::stream_writer writer = ends.writer;
    (void)loop.call_later(5ms, [writer]() mutable { writer.write("one\n"); });
    const std::string one = co_await corio::wait_for(ends.reader.readline(), 5s);
    CHECK(one == "one\n");
    (void)loop.call_later(5ms, [writer]() mutable { writer.write("two\n"); });
    const std::optional<std::string> two = co_await corio::with_timeout(5s, ends.reader.readline());
    REQUIRE(two.has_value());
    CHECK(*two == "two\n");
    ends.writer.write("three\n");
    const std::optional<std::string> three = co_await corio::with_timeout(5s, ends.reader.read(6));
    REQUIRE(three.has_value());
    CHECK(*three == "three\n");
    ends.writer.close();
    co_await corio::wait_for(ends.writer.wait_closed(), 5s);
    co_await check_nothing_pending();
}

corio::coro<void> process_in_time() {
    const std::vector<std::string> exit_three{"-c", "exit 3"};
    corio::process p = co_await corio::create_subprocess_exec("sh", exit_three);
    const int code = co_await corio::wait_for(p.wait(), 10s);
    CHECK(code == 3);
    corio::process t = co_await corio::create_subprocess_exec("true");
    const std::optional<int> t_code = co_await corio::with_timeout(10s, t.wait());
    REQUIRE(t_code.has_value());
    CHECK(*t_code == 0);
    co_await check_nothing_pending();
}

// --- 3. with_timeout / with_deadline / wait_until -------------------------------------------

corio::coro<void> optional_forms_main() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::queue<int> q;

    // Empty on timeout, nothing thrown; the queue keeps what comes later.
    stopwatch watch;
    const std::optional<int> none = co_await corio::with_timeout(20ms, q.get());
    CHECK_FALSE(none.has_value());
    CHECK(watch.elapsed() >= 15ms);
    CHECK(watch.elapsed() < 5s);
    co_await check_nothing_pending();
    q.put_nowait(1);
    CHECK(q.qsize() == 1);
    const std::optional<int> one = co_await corio::with_timeout(5s, q.get());
    CHECK(one == std::optional<int>(1));
    const std::optional<int> from_coro = co_await corio::with_timeout(5s, value_after(2ms, 2));
    CHECK(from_coro == std::optional<int>(2));
    const std::optional<int> coro_late = co_await corio::with_timeout(10ms, value_after(10s, 0));
    CHECK_FALSE(coro_late.has_value());

    // bool for void.
    const bool slept_out = co_await corio::with_timeout(20ms, corio::sleep(10s));
    CHECK_FALSE(slept_out);
    const bool slept = co_await corio::with_timeout(5s, corio::sleep(1ms));
    CHECK(slept);

    // with_deadline: the same on the loop's clock.
    const std::optional<int> deadline_none =
        co_await corio::with_deadline(loop.time() + 20ms, q.get());
    CHECK_FALSE(deadline_none.has_value());
    (void)loop.call_later(2ms, [&q] { q.put_nowait(3); });
    const std::optional<int> deadline_three =
        co_await corio::with_deadline(loop.time() + 5s, q.get());
    CHECK(deadline_three == std::optional<int>(3));
    corio::event e;
    const bool deadline_set = co_await corio::with_deadline(loop.time() + 20ms, e.wait());
    CHECK_FALSE(deadline_set);
    e.set();
    const bool deadline_set_now = co_await corio::with_deadline(loop.time() + 20ms, e.wait());
    CHECK(deadline_set_now);

    // wait_until: throws as wait_for.
    const bool until_timed_out = co_await times_out_at(loop.time() + 20ms, q.get());
    CHECK(until_timed_out);
    (void)loop.call_later(2ms, [&q] { q.put_nowait(4); });
    const int four = co_await corio::wait_until(loop.time() + 5s, q.get());
    CHECK(four == 4);
    CHECK(q.empty());
    co_await check_nothing_pending();
}

corio::coro<void> past_deadline_main() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::queue<int> q;
    corio::event e;
    corio::lock l;

    // A result ready at once goes through a deadline already past, in every form.
    q.put_nowait(1);
    const int a = co_await corio::wait_until(loop.time() - 1s, q.get());
    CHECK(a == 1);
    q.put_nowait(2);
    const std::optional<int> b = co_await corio::with_deadline(loop.time() - 1s, q.get());
    CHECK(b == std::optional<int>(2));
    q.put_nowait(3);
    const int c = co_await corio::wait_for(q.get(), 0s);
    CHECK(c == 3);
    q.put_nowait(4);
    const std::optional<int> d = co_await corio::with_timeout(-5ms, q.get());
    CHECK(d == std::optional<int>(4));
    e.set();
    const bool set = co_await corio::with_timeout(-1s, e.wait());
    CHECK(set);
    co_await corio::wait_until(loop.time() - 1s, l.acquire());  // free: at once
    CHECK(l.locked());
    l.release();
    co_await check_nothing_pending();

    // One that is not ready times out, at once, and takes nothing.
    stopwatch watch;
    const bool get_timed_out = co_await times_out_at(loop.time() - 1s, q.get());
    CHECK(get_timed_out);
    const std::optional<int> empty = co_await corio::with_deadline(loop.time() - 1s, q.get());
    CHECK_FALSE(empty.has_value());
    const bool slept = co_await corio::with_timeout(-1s, corio::sleep(1s));
    CHECK_FALSE(slept);
    const bool zero_timed_out = co_await times_out(corio::sleep(1s), 0ms);
    CHECK(zero_timed_out);
    CHECK(watch.elapsed() < 900ms);
    q.put_nowait(5);
    co_await corio::sleep(2ms);
    CHECK(q.qsize() == 1);
    co_await check_nothing_pending();
}

corio::coro<void> no_timeout_main() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::queue<int> q;
    (void)loop.call_later(20ms, [&q] { q.put_nowait(1); });
    const int a = co_await corio::wait_for(q.get(), ms::max());
    CHECK(a == 1);
    (void)loop.call_later(5ms, [&q] { q.put_nowait(2); });
    const std::optional<int> b =
        co_await corio::with_timeout(std::chrono::nanoseconds::max(), q.get());
    CHECK(b == std::optional<int>(2));
    const int c = co_await corio::wait_for(value_after(5ms, 3), std::chrono::hours::max());
    CHECK(c == 3);
    (void)loop.call_later(5ms, [&q] { q.put_nowait(4); });
    const std::optional<int> d =
        co_await corio::with_deadline(corio::event_loop::time_point::max(), q.get());
    CHECK(d == std::optional<int>(4));
    co_await check_nothing_pending();
}

// The bodies of tasks cancelled from outside while they wait.
corio::coro<std::optional<int>> get_for_an_hour(corio::queue<int>& q) {
    co_return co_await corio::with_timeout(1h, q.get());
}
corio::coro<bool> acquire_until_later(corio::lock& l) {
    co_return co_await corio::with_deadline(corio::get_running_loop().time() + 1h, l.acquire());
}
corio::coro<int> wait_for_an_hour(corio::event& e) {
    co_await corio::wait_until(corio::get_running_loop().time() + 1h, e.wait());
    co_return 1;
}
corio::coro<bool> condition_wait_briefly(corio::condition& c) {
    co_await c.acquire();
    bool notified = false;
    try {
        notified = co_await corio::with_timeout(20ms, c.wait());
    } catch (const corio::cancelled_error&) {
        c.release();  // re-acquired on the way out, as always
        throw;
    }
    c.release();
    co_return notified;
}

// Awaits `t`, swallowing what it ends with.
template <class T>
corio::coro<void> settle(corio::task<T> t) {
    try {
        (void)co_await corio::wait_for(t, 5s);
    } catch (const corio::cancelled_error&) {
    }
}

corio::coro<void> outside_cancel_main() {
    corio::queue<int> q;
    corio::task<std::optional<int>> getter = corio::create_task(get_for_an_hour(q));
    co_await corio::sleep(5ms);
    getter.cancel();
    co_await settle(getter);
    CHECK(getter.cancelled());  // not an empty optional, not a timeout
    q.put_nowait(1);
    co_await corio::sleep(2ms);
    CHECK(q.qsize() == 1);  // the cancelled getter took nothing

    corio::lock l;
    co_await l.acquire();
    corio::task<bool> acquirer = corio::create_task(acquire_until_later(l));
    co_await corio::sleep(5ms);
    acquirer.cancel();
    co_await settle(acquirer);
    CHECK(acquirer.cancelled());
    l.release();
    CHECK_FALSE(l.locked());

    corio::event e;
    corio::task<int> waiter = corio::create_task(wait_for_an_hour(e));
    co_await corio::sleep(5ms);
    waiter.cancel();
    co_await settle(waiter);
    CHECK(waiter.cancelled());

    // The cancellation comes after the timer fired, while the wait is still finishing (the
    // condition re-acquiring a lock held elsewhere): still a cancellation, not a timeout.
    corio::lock shared;
    corio::condition c(shared);
    corio::task<bool> cond_waiter = corio::create_task(condition_wait_briefly(c));
    co_await corio::sleep(5ms);  // it waits, the lock released
    co_await shared.acquire();   // held across its timeout (at 20 ms)
    co_await corio::sleep(30ms);
    cond_waiter.cancel();
    co_await corio::sleep(5ms);
    CHECK_FALSE(cond_waiter.done());  // still re-acquiring
    shared.release();
    co_await settle(cond_waiter);
    CHECK(cond_waiter.cancelled());
    CHECK_FALSE(shared.locked());
    co_await check_nothing_pending();
}

// --- 4. another library's awaiters ---------------------------------------------------------

corio::coro<void> foreign_in_time_main() {
    // A plain awaiter resumed from a loop callback, awaited directly, then in wait_for.
    const int direct = co_await await_as_task(later(5ms, 1));
    CHECK(direct == 1);
    const int in_wait_for = co_await corio::wait_for(await_as_task(later(5ms, 2)), 5s);
    CHECK(in_wait_for == 2);
    const int plain_wait_for = co_await corio::wait_for(later(5ms, 3), 5s);
    CHECK(plain_wait_for == 3);
    CHECK(static_cast<bool>(corio::current_task()));
    const std::optional<int> optional = co_await corio::with_timeout(5s, later(5ms, 4));
    CHECK(optional == std::optional<int>(4));

    // operator co_await.
    const deferred def{5ms, 5};
    const int through_operator = co_await await_as_task(def);
    CHECK(through_operator == 5);
    const int operator_wait_for = co_await corio::wait_for(def, 5s);  // copied from an lvalue
    CHECK(operator_wait_for == 5);

    // Resumed inline, declining to suspend, transferring back.
    const int inline_value = co_await await_as_task(resumes_inline{6});
    CHECK(inline_value == 6);
    const int declined = co_await corio::wait_for(declines_to_suspend{7}, 5s);
    CHECK(declined == 7);
    const int transferred = co_await await_as_task(transfers_back{8});
    CHECK(transferred == 8);
    co_await check_nothing_pending();
}

corio::coro<void> foreign_thread_main() {
    for (int i = 0; i < 50; ++i) {
        std::thread worker;
        const int value = co_await await_as_task(from_thread{&worker, ms(i % 3), i});
        CHECK(value == i);
        worker.join();
    }
    std::thread worker;
    const int in_wait_for = co_await corio::wait_for(from_thread{&worker, 5ms, 99}, 5s);
    CHECK(in_wait_for == 99);
    worker.join();

    // Without await_cancel, the timeout is delivered when the thread resumes it.
    std::thread slow;
    stopwatch watch;
    const bool timed_out = co_await times_out(from_thread{&slow, 80ms, 0}, 10ms);
    CHECK(timed_out);
    CHECK(watch.elapsed() >= 70ms);
    CHECK(watch.elapsed() < 5s);
    slow.join();
    co_await check_nothing_pending();
}

corio::coro<void> foreign_timeout_main() {
    // Without await_cancel: the timeout waits for the awaiter to resume; its result is dropped.
    int resumed = 0;
    stopwatch watch;
    const bool timed_out = co_await times_out(later(100ms, 1, &resumed), 10ms);
    CHECK(timed_out);
    CHECK(watch.elapsed() >= 90ms);
    CHECK(watch.elapsed() < 5s);
    CHECK(resumed == 0);  // its result was never asked for
    co_await check_nothing_pending();

    const std::optional<int> empty = co_await corio::with_timeout(10ms, later(60ms, 2, &resumed));
    CHECK_FALSE(empty.has_value());
    CHECK(resumed == 0);

    // The timer and a cancellation from outside both before it resumes: cancelled_error.
    corio::task<int> both = corio::create_task(corio::wait_for(later(80ms, 3, &resumed), 10ms));
    co_await corio::sleep(30ms);
    both.cancel();
    co_await settle(both);
    CHECK(both.cancelled());
    co_await check_nothing_pending();
}

corio::coro<void> foreign_cancel_main() {
    // With await_cancel: told at once, so wait_for times out on time.
    int cancels = 0;
    stopwatch watch;
    cancellable_later awaiter(2s, 1, cancels);
    const bool timed_out = co_await times_out(std::move(awaiter), 20ms);
    CHECK(timed_out);
    CHECK(watch.elapsed() < 1s);
    CHECK(cancels >= 1);
    co_await check_nothing_pending();
}

corio::coro<void> foreign_cancel_operator_main() {
    // The same, the awaiter coming from operator co_await.
    int cancels = 0;
    stopwatch watch;
    const bool timed_out = co_await times_out(cancellable_deferred{2s, 1, &cancels}, 20ms);
    CHECK(timed_out);
    CHECK(watch.elapsed() < 1s);
    CHECK(cancels >= 1);
    // In time, it is not told anything.
    cancels = 0;
    const int value = co_await corio::wait_for(cancellable_deferred{5ms, 2, &cancels}, 5s);
    CHECK(value == 2);
    CHECK(cancels == 0);
    co_await check_nothing_pending();
}

corio::coro<void> foreign_combinators_main() {
    // gather: a foreign awaiter next to a coro.
    auto [a, b] = co_await corio::gather(later(5ms, 1), value_after(2ms, 2));
    CHECK(a == 1);
    CHECK(b == 2);

    // create_task.
    corio::task<int> t = corio::create_task(later(5ms, 3));
    const int from_task = co_await corio::wait_for(t, 5s);
    CHECK(from_task == 3);
    CHECK(t.done());
    corio::task<int> checked = corio::create_task(await_as_task(later(5ms, 4)));
    const int checked_value = co_await corio::wait_for(checked, 5s);
    CHECK(checked_value == 4);

    // A task waiting in a foreign awaiter, cancelled: cancelled once the awaiter resumes.
    int resumed = 0;
    corio::task<int> cancelled = corio::create_task(later(30ms, 5, &resumed));
    co_await corio::sleep(5ms);
    cancelled.cancel();
    co_await settle(cancelled);
    CHECK(cancelled.cancelled());
    CHECK(resumed == 0);

    // shield: in time; and timed out from outside while the shielded awaiter runs on.
    const int shielded = co_await corio::shield(later(5ms, 6));
    CHECK(shielded == 6);
    stopwatch watch;
    const bool timed_out = co_await times_out(corio::shield(later(200ms, 7, &resumed)), 10ms);
    CHECK(timed_out);
    CHECK(resumed == 0);  // the shield's own future was cancelled, without waiting for it
    CHECK(watch.elapsed() < 1s);
    co_await corio::sleep(400ms);
    CHECK(resumed == 1);  // the shielded awaiter finished anyway

    // gather of a thread-resumed awaiter and a coro.
    std::thread worker;
    auto [c, d] = co_await corio::gather(from_thread{&worker, 5ms, 8}, value_after(1ms, 9));
    worker.join();
    CHECK(c == 8);
    CHECK(d == 9);
    co_await check_nothing_pending();
}

corio::coro<int> await_foreign_in_task(int value) {
    const int got = co_await await_as_task(later(2ms, value));
    co_return got;
}

corio::coro<void> foreign_edge_cases_main() {
    // await_resume's exception passes through wait_for and with_timeout as it is.
    bool thrown = false;
    try {
        (void)co_await corio::wait_for(throws_on_resume{2ms}, 5s);
    } catch (const foreign_error&) {
        thrown = true;
    }
    CHECK(thrown);
    thrown = false;
    try {
        (void)co_await corio::with_timeout(5s, throws_on_resume{2ms});
    } catch (const foreign_error&) {
        thrown = true;
    }
    CHECK(thrown);
    co_await check_nothing_pending();

    // A reference result is kept by value; a move-only awaiter and result go through.
    // (Named: g++ 12 mishandles a braced aggregate with a std::string inside a co_await.)
    gives_reference referring{"referred"};
    const std::string text = co_await corio::wait_for(std::move(referring), 5s);
    CHECK(text == "referred");
    move_only_box box(5);
    std::unique_ptr<int> boxed = co_await corio::wait_for(std::move(box), 5s);
    REQUIRE(boxed != nullptr);
    CHECK(*boxed == 5);
    move_only_box other_box(6);
    std::optional<std::unique_ptr<int>> maybe =
        co_await corio::with_timeout(5s, std::move(other_box));
    REQUIRE(maybe.has_value());
    REQUIRE(*maybe != nullptr);
    CHECK(**maybe == 6);

    // await_cancel resuming the handle from inside the cancellation: a prompt timeout.
    stopwatch watch;
    const bool timed_out = co_await times_out(resumes_on_cancel_source{1}, 20ms);
    CHECK(timed_out);
    CHECK(watch.elapsed() < 1s);
    co_await check_nothing_pending();

    // Nested timeouts around a foreign awaiter without await_cancel: the outer one fired first,
    // so the outer one times out (the inner sees the outer's request as from outside).
    watch = stopwatch();
    bool outer_timed_out = false;
    bool inner_timed_out = false;
    try {
        (void)co_await corio::wait_for(times_out(later(80ms, 0), 40ms), 10ms);
    } catch (const corio::timeout_error&) {
        outer_timed_out = true;
    } catch (const corio::cancelled_error&) {
        inner_timed_out = true;  // would be wrong: nobody cancelled from outside
    }
    CHECK(outer_timed_out);
    CHECK_FALSE(inner_timed_out);
    CHECK(watch.elapsed() >= 70ms);
    co_await check_nothing_pending();

    // An eager task whose body starts in a foreign awaiter: the waker wakes that task.
    corio::task<int> eager =
        corio::create_task(await_foreign_in_task(7), {.name = "eager", .eager = true});
    CHECK_FALSE(eager.done());
    const int eager_value = co_await corio::wait_for(eager, 5s);
    CHECK(eager_value == 7);
    corio::task<int> eager_direct =
        corio::create_task(later(2ms, 8), {.name = "eager direct", .eager = true});
    const int eager_direct_value = co_await corio::wait_for(eager_direct, 5s);
    CHECK(eager_direct_value == 8);
    corio::task<int> eager_inline =
        corio::create_task(resumes_inline{9}, {.name = "eager inline", .eager = true});
    const int eager_inline_value = co_await corio::wait_for(eager_inline, 5s);
    CHECK(eager_inline_value == 9);
    co_await check_nothing_pending();
}

corio::coro<void> foreign_throwing_suspend_main() {
    // await_suspend throwing: the exception reaches the task, and the task's wait is over (a
    // cancellation later must not reach the destroyed awaiter).
    int cancelled_dead = 0;
    bool thrown = false;
    try {
        co_await throws_on_suspend_source{&cancelled_dead};
    } catch (const foreign_error&) {
        thrown = true;
    }
    CHECK(thrown);
    (void)corio::current_task().cancel();
    CHECK(cancelled_dead == 0);
    bool cancelled = false;
    try {
        co_await corio::sleep(1ms);
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    (void)corio::current_task().uncancel();
}

// --- 5. the cancelling() count -------------------------------------------------------------

corio::coro<void> cancelling_count_main() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::queue<int> q;
    corio::task<> me = corio::current_task();
    CHECK(me.cancelling() == 0);
    const bool a = co_await times_out(q.get(), 10ms);
    CHECK(a);
    CHECK(me.cancelling() == 0);
    const std::optional<int> b = co_await corio::with_timeout(10ms, q.get());
    CHECK_FALSE(b.has_value());
    CHECK(me.cancelling() == 0);
    const bool c = co_await times_out_at(loop.time() + 10ms, corio::sleep(1s));
    CHECK(c);
    CHECK(me.cancelling() == 0);
    const bool d = co_await corio::with_deadline(loop.time() + 10ms, corio::sleep(1s));
    CHECK_FALSE(d);
    CHECK(me.cancelling() == 0);
    const bool e = co_await times_out(later(30ms, 0), 10ms);
    CHECK(e);
    CHECK(me.cancelling() == 0);
    co_await check_nothing_pending();

    // A count already above zero (a cancellation caught, not uncancelled) stays as it was.
    me.cancel();
    bool caught = false;
    try {
        co_await corio::sleep(1s);
    } catch (const corio::cancelled_error&) {
        caught = true;
    }
    CHECK(caught);
    CHECK(me.cancelling() == 1);
    const std::optional<int> f = co_await corio::with_timeout(10ms, q.get());
    CHECK_FALSE(f.has_value());
    CHECK(me.cancelling() == 1);
    const bool g = co_await times_out(q.get(), 10ms);
    CHECK(g);
    CHECK(me.cancelling() == 1);
    (void)me.uncancel();
    CHECK(me.cancelling() == 0);
}

}  // namespace

TEST_CASE("timeout_any: every corio awaiter times out in wait_for and loses nothing",
          "[timeout_any][wait_for]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    SECTION("sleep") { run_within(sleep_times_out()); }
    SECTION("queue get") { run_within(queue_get_times_out()); }
    SECTION("queue put on a full queue") { run_within(queue_put_times_out()); }
    SECTION("queue join") { run_within(queue_join_times_out()); }
    SECTION("event wait") { run_within(event_wait_times_out()); }
    SECTION("lock acquire") { run_within(lock_acquire_times_out()); }
    SECTION("semaphore acquire") { run_within(semaphore_acquire_times_out()); }
    SECTION("condition wait") { run_within(condition_wait_times_out()); }
    SECTION("condition wait, the lock held elsewhere at the timeout") {
        run_within(condition_wait_times_out_behind_holder());
    }
    SECTION("barrier wait") { run_within(barrier_wait_times_out()); }
    SECTION("stream readline on a socketpair") { run_within(readline_times_out(false)); }
    SECTION("stream readline on a pipe") { run_within(readline_times_out(true)); }
    SECTION("process wait") { run_within(process_wait_times_out()); }
}

TEST_CASE("timeout_any: the same awaiters in time through wait_for and with_timeout",
          "[timeout_any][wait_for][with_timeout]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    SECTION("sleep") { run_within(sleep_in_time()); }
    SECTION("queue get, put, join") { run_within(queue_in_time()); }
    SECTION("event wait") { run_within(event_in_time()); }
    SECTION("lock and semaphore acquire") { run_within(lock_and_semaphore_in_time()); }
    SECTION("condition wait") { run_within(condition_in_time()); }
    SECTION("barrier wait") { run_within(barrier_in_time()); }
    SECTION("stream readline on a socketpair") { run_within(readline_in_time(false)); }
    SECTION("stream readline on a pipe") { run_within(readline_in_time(true)); }
    SECTION("process wait") { run_within(process_in_time()); }
}

TEST_CASE("timeout_any: with_timeout / with_deadline give an empty optional or false; "
          "wait_until throws",
          "[timeout_any][with_timeout]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(optional_forms_main());
}

TEST_CASE("timeout_any: a deadline already past lets a ready result through, times out the rest",
          "[timeout_any][deadline]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(past_deadline_main());
}

TEST_CASE("timeout_any: duration::max() and time_point::max() mean no timeout",
          "[timeout_any][deadline]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(no_timeout_main());
}

TEST_CASE("timeout_any: a cancellation from outside stays a cancelled_error",
          "[timeout_any][cancel]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(outside_cancel_main());
}

TEST_CASE("timeout_any: another library's awaiters resume as a corio task",
          "[timeout_any][foreign]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(foreign_in_time_main());
}

TEST_CASE("timeout_any: another library's awaiter resumed from another thread",
          "[timeout_any][foreign][thread]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(foreign_thread_main());
}

TEST_CASE("timeout_any: a foreign awaiter without await_cancel times out when it resumes",
          "[timeout_any][foreign][wait_for]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(foreign_timeout_main());
}

TEST_CASE("timeout_any: a foreign awaiter with await_cancel times out on time",
          "[timeout_any][foreign][wait_for]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    SECTION("a plain awaiter") { run_within(foreign_cancel_main()); }
    SECTION("an awaiter from operator co_await") { run_within(foreign_cancel_operator_main()); }
}

TEST_CASE("timeout_any: foreign awaiters in gather, create_task and shield",
          "[timeout_any][foreign]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(foreign_combinators_main());
}

TEST_CASE("timeout_any: foreign awaiters that throw, give references or move-only values, resume "
          "inside await_cancel, nest, start eager tasks",
          "[timeout_any][foreign]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(foreign_edge_cases_main());
}

TEST_CASE("timeout_any: a foreign awaiter whose await_suspend throws leaves no wait behind",
          "[timeout_any][foreign]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(foreign_throwing_suspend_main());
}

TEST_CASE("timeout_any: a timed-out wait leaves the task's cancelling() count as it was",
          "[timeout_any][cancel]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    run_within(cancelling_count_main());
}
