#pragma once
/// \file
/// `corio::lock`: mutual exclusion between tasks (asyncio's `Lock`).

#include "corio/impl/sync_waiter.hpp"
#include "corio/sync/detail/grant_awaiter.hpp"
#include "corio/sync/guard.hpp"

#include <coroutine>
#include <stdexcept>
#include <string>

namespace corio {

class condition;

/// A mutual-exclusion lock for tasks of one loop (asyncio's `Lock`): `co_await l.acquire()`
/// ... `l.release()`, or `auto guard = co_await l.scoped();`.
///
/// - Fair, first in first out: `release()` hands the lock straight to the task that has waited
///   longest, which keeps its turn until it runs; a task arriving meanwhile queues behind the
///   waiting ones instead of barging ahead. So `locked()` stays true across such a hand-over
///   (asyncio reports false until the woken task runs; see docs/asyncio-differences.md).
/// - Acquiring a free lock completes at once, without suspending (and, as in asyncio, without
///   looking at a pending cancellation).
/// - Cancellation: a task cancelled while it waits leaves the queue and gets `cancelled_error`,
///   holding nothing. A task cancelled after the lock was handed to it, but before it ran, hands
///   the lock on to the next waiter (or frees it) before `cancelled_error` is thrown: the lock
///   is never lost.
/// - The lock is not owned by a task: any task (or callback) may release it, as in asyncio.
/// - Not copyable or movable: waiters point into it. Destroyed while tasks wait on it, it
///   never wakes them, but they still respond to cancellation (as `corio::run` cancels what is
///   left on its way out); tasks it has already woken finish their `co_await` without touching
///   it again.
class lock {
public:
    using acquire_awaiter = detail::grant_awaiter<lock>;

    lock() noexcept = default;
    lock(const lock&) = delete;
    lock& operator=(const lock&) = delete;
    ~lock() {
        detail::detach_all(waiting_);
        detail::detach_all(granted_);
    }

    /// `co_await l.acquire()`: waits until the lock is free and takes it.
    [[nodiscard]] acquire_awaiter acquire() noexcept;

    /// `auto guard = co_await l.scoped();`: acquires the lock, and returns a `guard` that
    /// releases it when it goes out of scope.
    [[nodiscard]] detail::scoped_awaiter<lock, acquire_awaiter> scoped() noexcept;

    /// Releases the lock: the first waiting task gets it, else it becomes free.
    /// Throws `std::runtime_error` if the lock is not held (as asyncio's `RuntimeError`).
    void release() {
        if (!locked_) throw std::runtime_error("corio::lock::release: the lock is not acquired");
        if (detail::sync_waiter* next = waiting_.front()) {
            // Invariant: while tasks wait, the lock is held; it passes from hand to hand.
            next->grant_into(granted_);
        } else {
            locked_ = false;
        }
    }

    /// Whether the lock is held (or handed to a task that has not run yet).
    [[nodiscard]] bool locked() const noexcept { return locked_; }

private:
    friend class condition;

    // Takes the lock for `w` at once if it is free, else queues `w`: a condition's waiter
    // re-acquiring on its task's behalf.
    void enqueue(detail::sync_waiter& w) noexcept {
        if (!locked_) {
            locked_ = true;
            w.grant_into(granted_);
        } else {
            w.requeue(waiting_);
        }
    }

    friend detail::grant_awaiter<lock>;
    static constexpr const char* acquire_name = "corio::lock::acquire";
    bool try_take() noexcept {
        if (locked_) return false;
        locked_ = true;
        return true;
    }

    detail::waiter_list waiting_;
    // Waiters handed the lock that have not resumed yet (at most one).
    detail::waiter_list granted_;
    bool locked_ = false;
};

inline lock::acquire_awaiter lock::acquire() noexcept { return acquire_awaiter(*this); }

inline detail::scoped_awaiter<lock, lock::acquire_awaiter> lock::scoped() noexcept {
    return {*this, *this};
}

}  // namespace corio
