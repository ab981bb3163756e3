#pragma once
/// \file
/// The waiter every synchronisation primitive and queue is built from: an intrusive node in
/// the primitive's FIFO wait list that is also the waiting task's cancellable wait.

#include "corio/detail/intrusive.hpp"
#include "corio/impl/task_state.hpp"

#include <coroutine>
#include <cstdint>

namespace corio::detail {

/// A task waiting in a lock, semaphore, event, condition, barrier or queue.
///
/// It lives in the awaiter, hence in the waiting coroutine's frame: waiting allocates nothing.
/// Its life, as the primitive sees it:
///
/// - `waiting`: linked into the primitive's FIFO wait list; the task is suspended and this is
///   its cancellable wait.
/// - `granted`: the primitive gave it what it waited for (the lock, a unit, an item, a slot)
///   and scheduled the task. Where the gift must be handed back if the task never takes it
///   (cancelled before it runs, or its frame destroyed while the loop closes), the waiter stays
///   linked into a list of the primitive's until `await_resume`, so that the primitive is known
///   to be alive when the waiter settles.
/// - `denied`: woken with nothing (a queue shut down, a barrier broken or reset).
/// - `idle`: not waiting: never suspended, or withdrawn by a cancellation.
///
/// Every wake-up goes through the loop's ready queue: the primitive only ever schedules tasks,
/// never resumes one.
class sync_waiter : public list_node, public cancellable_wait {
public:
    enum class status : std::uint8_t { idle, waiting, granted, denied };

    // Dumps show the name given to `bind`.
    static void describe(const cancellable_wait* wait, wait_description& description) {
        description.what = static_cast<const sync_waiter*>(wait)->what_;
    }

    /// `Cancel` withdraws the waiter (see `withdraw`).
    template <cancel_fn Cancel>
    static constexpr operations sync_ops{Cancel, &describe, nullptr};

    explicit sync_waiter(const operations& operations) noexcept : cancellable_wait(operations) {}
    /// Movable until awaited, so that a combinator can take `q.get()` by value; a waiter is
    /// linked into lists by its address, so one that has been awaited must not move.
    sync_waiter(sync_waiter&& other) noexcept
        : list_node(), cancellable_wait(other), what_(other.what_) {}
    sync_waiter(const sync_waiter&) = delete;
    sync_waiter& operator=(const sync_waiter&) = delete;
    // The derived awaiter settles what it holds first; this only leaves whatever list it is in.
    ~sync_waiter() { list_node::unlink(); }

    [[nodiscard]] bool is(status s) const noexcept { return status_ == s; }

    /// For `await_suspend`: binds the waiter to the running task (`std::runtime_error` outside
    /// a task) and tells whether a cancellation is already pending, in which case the awaiter
    /// must not suspend (`await_resume` then throws it).
    [[nodiscard]] bool bind(const char* what) {
        task_ = &task_state_base::current(what);
        what_ = what;
        return task_->cancel_pending();
    }

    /// Links the waiter at the back of `list` and suspends the task at `h` in it.
    template <class Promise>
    void wait_in(intrusive_list<sync_waiter>& list, std::coroutine_handle<Promise> h) noexcept {
        status_ = status::waiting;
        list.push_back(this);
        task_->suspend(h, this);
    }

    /// Links the waiter at the back of `list` (still waiting), without touching the task: for a
    /// waiter that moves from one wait list to another (a condition's waiter re-acquiring).
    void requeue(intrusive_list<sync_waiter>& list) noexcept {
        list_node::unlink();
        status_ = status::waiting;
        list.push_back(this);
    }

    /// Wakes the task with `s`, leaving every list.
    void wake(status s) noexcept {
        list_node::unlink();
        status_ = s;
        task_->schedule();
    }

    /// Wakes the task with `s`, linking the waiter into `settle` until it resumes.
    void wake_into(intrusive_list<sync_waiter>& settle, status s) noexcept {
        list_node::unlink();
        status_ = s;
        settle.push_back(this);
        task_->schedule();
    }

    /// Wakes the task as granted, linking the waiter into `settle` until it resumes.
    void grant_into(intrusive_list<sync_waiter>& settle) noexcept {
        wake_into(settle, status::granted);
    }

    /// For `await_resume` of a granted waiter: leaves the list it was settled in and becomes
    /// idle. False when the primitive had already detached it (it was destroyed): the waiter
    /// must then not touch the primitive again.
    bool detach() noexcept {
        const bool attached = linked();
        list_node::unlink();
        status_ = status::idle;
        return attached;
    }

    /// For a cancel hook: takes a waiting waiter out of its list and schedules its task, which
    /// will then see `cancelled_error` (nothing happens in any other state). Returns whether it
    /// was still in the primitive's list: false when the primitive had detached it (it was
    /// destroyed), which the hook must then not touch.
    bool withdraw() noexcept {
        if (status_ != status::waiting) return false;
        const bool attached = linked();
        list_node::unlink();
        status_ = status::idle;
        task_->schedule();
        return attached;
    }

    /// Whether the task was cancelled while it waited (checked by a granted waiter before it
    /// takes what it was given: if so, it hands that on instead).
    [[nodiscard]] bool cancel_pending() const noexcept { return task_->cancel_pending(); }

    /// For `await_resume`: ends the wait; throws `cancelled_error` if the task was cancelled.
    void end_wait() const { task_->end_wait(); }

    /// For `await_resume` of a waiter withdrawn by a cancellation: always throws
    /// `cancelled_error`, even if `uncancel()` took the request back meanwhile, because the
    /// waiter did not get what it waited for (as asyncio, whose waiting future was cancelled).
    [[noreturn]] void end_withdrawn() const {
        task_->end_wait();
        task_->throw_cancelled();
    }

    /// Null when the awaiter completed without suspending (`await_ready` was true).
    task_state_base* task_ = nullptr;
    const char* what_ = "";
    status status_ = status::idle;
};

/// A FIFO list of waiters.
using waiter_list = intrusive_list<sync_waiter>;

/// Unlinks every waiter of `list`, as a primitive destroyed while tasks wait on it does: they
/// are never woken, but nothing points into the dead primitive any more.
inline void detach_all(waiter_list& list) noexcept {
    while (list.pop_front() != nullptr) {
    }
}

}  // namespace corio::detail
