#pragma once
/// \file
/// `corio::condition`: a condition variable for tasks (asyncio's `Condition`).

#include "corio/coro.hpp"
#include "corio/impl/sync_waiter.hpp"
#include "corio/sync/guard.hpp"
#include "corio/sync/lock.hpp"

#include <coroutine>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace corio {

/// A condition variable (asyncio's `Condition`): tasks holding its lock wait to be notified by
/// a task that changed some state, then re-check that state.
///
/// - The lock is the condition's own, or a `corio::lock` given to the constructor (several
///   conditions may share one lock). `acquire`, `release`, `locked` and `scoped` act on it.
/// - `wait()` must be called with the lock held (`std::runtime_error` otherwise): it releases
///   the lock, waits for a `notify`, and re-acquires the lock before returning, always, even
///   when it ends in an exception.
/// - Fair: `notify(n)` picks the `n` tasks that have waited longest; each then queues for the
///   lock (first in first out, behind tasks already waiting for it) and resumes once it holds
///   it, so a notified task is woken once, not once to be notified and again for the lock.
/// - Cancellation: a task cancelled while it waits stops waiting for a notification, but first
///   re-acquires the lock (waiting for it if need be: further cancellations meanwhile are
///   absorbed, as asyncio's retry loop does) and then throws `cancelled_error`. A task that had
///   been notified and is cancelled before it ran hands its notification on to the next waiter,
///   so that a `notify()` is never lost (asyncio 3.13 sends a spurious one instead).
/// - Not copyable or movable: waiters point into it. Destroyed while tasks wait on it, it
///   never wakes them, but they still respond to cancellation (as `corio::run` cancels what is
///   left on its way out); tasks it has already woken finish their `co_await` without touching
///   it again.
class condition {
public:
    class wait_awaiter;

    /// A condition with its own lock.
    condition() noexcept : lock_(&own_lock_) {}
    /// A condition over `l`, which must outlive it.
    explicit condition(corio::lock& l) noexcept : lock_(&l) {}
    condition(const condition&) = delete;
    condition& operator=(const condition&) = delete;
    ~condition() { detail::detach_all(waiters_); }

    /// `co_await c.acquire()`: acquires the underlying lock (see `corio::lock`).
    [[nodiscard]] lock::acquire_awaiter acquire() noexcept { return lock_->acquire(); }
    /// `auto guard = co_await c.scoped();`: acquires the underlying lock, released by the guard.
    [[nodiscard]] detail::scoped_awaiter<condition, lock::acquire_awaiter> scoped() noexcept {
        return {*this, *lock_};
    }
    /// Releases the underlying lock (`std::runtime_error` if it is not held).
    void release() { lock_->release(); }
    [[nodiscard]] bool locked() const noexcept { return lock_->locked(); }

    /// `co_await c.wait()`: releases the lock, waits until notified, re-acquires the lock.
    [[nodiscard]] wait_awaiter wait() noexcept;

    /// `co_await c.wait_for(pred)`: waits until `pred()` is true, checking it first and after
    /// each wake-up, with the lock held; returns the last value of `pred()`. A coroutine (its
    /// frame is the one allocation), so the predicate is kept by value.
    template <class Predicate>
        requires std::is_invocable_v<Predicate&>
    [[nodiscard]] coro<std::decay_t<std::invoke_result_t<Predicate&>>> wait_for(Predicate pred);

    /// Wakes up to `n` of the waiting tasks, longest waiting first. The lock must be held
    /// (`std::runtime_error` otherwise); the woken tasks resume once they hold it in turn.
    void notify(std::size_t n = 1);

    /// Wakes every waiting task (`std::runtime_error` if the lock is not held).
    void notify_all() { notify(std::numeric_limits<std::size_t>::max()); }

private:
    corio::lock own_lock_;
    corio::lock* lock_;
    detail::waiter_list waiters_;
};

/// The awaiter of `condition::wait()`, living in the waiting task's frame. It waits in two
/// places in turn: the condition's list, then the lock's queue.
class condition::wait_awaiter : public detail::sync_waiter {
public:
    explicit wait_awaiter(condition& c) noexcept
        : sync_waiter(sync_ops<&cancel>), condition_(&c), lock_(c.lock_) {}
    wait_awaiter(wait_awaiter&&) noexcept = default;  // until awaited, as every sync_waiter
    ~wait_awaiter() {
        // A frame destroyed while the lock was on its way to it (the loop closing): pass the
        // lock on.
        if (is(status::granted) && linked()) {
            unlink();
            lock_->release();
        }
    }

    [[nodiscard]] bool await_ready() const {
        if (!lock_->locked()) {
            throw std::runtime_error("corio::condition::wait: the lock is not acquired");
        }
        return false;
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        // Cancelled already: keep the lock, which wait() would have had to re-acquire anyway.
        if (bind("corio::condition::wait")) return false;
        lock_->release();
        wait_in(condition_->waiters_, h);
        return true;
    }

    void await_resume() {
        // Withdrawn: it never released the lock, or the condition is gone.
        if (!is(status::granted)) end_withdrawn();
        const bool attached = detach();
        // Notified, then cancelled before it ran: the notification goes to another waiter.
        if (notified_ && attached && cancel_pending()) condition_->notify(1);
        end_wait();
    }

private:
    friend class condition;

    // Leaves the condition's list for the lock's queue (or takes the lock, if free).
    void reacquire() noexcept {
        reacquiring_ = true;
        lock_->enqueue(*this);
    }

    static bool cancel(cancellable_wait* w, const std::string&) {
        auto* self = static_cast<wait_awaiter*>(w);
        if (!self->is(status::waiting)) return false;  // granted the lock: thrown on resuming
        if (!self->linked()) {
            // Detached: the condition or the lock is gone, so it can never be re-acquired.
            self->withdraw();
        } else if (!self->reacquiring_) {
            // Waiting for a notification: stop, but re-acquire the lock before throwing.
            self->reacquire();
        }
        // Already queued for the lock: the cancellation waits until it is held.
        return false;
    }

    condition* condition_;
    corio::lock* lock_;
    bool reacquiring_ = false;
    bool notified_ = false;
};

inline condition::wait_awaiter condition::wait() noexcept { return wait_awaiter(*this); }

// Defined after wait_awaiter, which it awaits, is complete.
template <class Predicate>
    requires std::is_invocable_v<Predicate&>
coro<std::decay_t<std::invoke_result_t<Predicate&>>> condition::wait_for(Predicate pred) {
    auto result = pred();
    while (!result) {
        co_await wait();
        result = pred();
    }
    co_return std::move(result);
}

inline void condition::notify(std::size_t n) {
    if (!lock_->locked()) {
        throw std::runtime_error("corio::condition::notify: the lock is not acquired");
    }
    for (; n > 0; --n) {
        auto* w = static_cast<wait_awaiter*>(waiters_.front());
        if (w == nullptr) break;
        w->notified_ = true;
        w->reacquire();
    }
}

}  // namespace corio
