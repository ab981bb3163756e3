#pragma once
/// \file
/// `corio::event`: a flag tasks can wait for (asyncio's `Event`).

#include "corio/impl/sync_waiter.hpp"

#include <coroutine>
#include <string>

namespace corio {

/// A flag, initially clear, that tasks wait to see set (asyncio's `Event`).
///
/// - `set()` wakes every task waiting at that moment, in the order they started waiting (they
///   resume through the loop, after the caller of `set` suspends); `wait()` on a set event
///   completes at once, without suspending.
/// - A task woken by `set()` returns from `wait()` even if the event has been cleared again
///   before it ran, as in asyncio.
/// - Cancellation: a waiting task leaves the list and gets `cancelled_error`; a task cancelled
///   after `set()` woke it also gets `cancelled_error` (every waiter was woken: there is
///   nothing to hand on).
/// - Not copyable or movable: waiters point into it. Destroyed while tasks wait on it, it
///   never wakes them, but they still respond to cancellation (as `corio::run` cancels what is
///   left on its way out); tasks it has already woken finish their `co_await` without touching
///   it again.
class event {
public:
    class wait_awaiter;

    event() noexcept = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;
    ~event() { detail::detach_all(waiters_); }

    /// Sets the flag and wakes every waiting task (nothing happens if it is already set).
    void set() noexcept {
        if (set_) return;
        set_ = true;
        while (detail::sync_waiter* w = waiters_.front()) {
            w->wake(detail::sync_waiter::status::granted);
        }
    }

    /// Clears the flag: later `wait()`s suspend until the next `set()`.
    void clear() noexcept { set_ = false; }

    [[nodiscard]] bool is_set() const noexcept { return set_; }

    /// `co_await ev.wait()`: returns once the flag is set (at once if it is).
    [[nodiscard]] wait_awaiter wait() noexcept;

private:
    detail::waiter_list waiters_;
    bool set_ = false;
};

/// The awaiter of `event::wait()`, living in the waiting task's frame.
class event::wait_awaiter : public detail::sync_waiter {
public:
    explicit wait_awaiter(event& e) noexcept : sync_waiter(sync_ops<&cancel>), event_(&e) {}

    [[nodiscard]] bool await_ready() const noexcept { return event_->set_; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (bind("corio::event::wait")) return false;
        wait_in(event_->waiters_, h);
        return true;
    }

    void await_resume() {
        if (task_ == nullptr) return;
        if (!is(status::granted)) end_withdrawn();
        end_wait();
    }

private:
    static bool cancel(cancellable_wait* w, const std::string&) {
        static_cast<wait_awaiter*>(w)->withdraw();
        return false;
    }

    event* event_;
};

inline event::wait_awaiter event::wait() noexcept { return wait_awaiter(*this); }

}  // namespace corio
