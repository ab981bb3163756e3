#pragma once
/// \file
/// `corio::task_group`: structured concurrency (asyncio's `TaskGroup`).

#include "corio/coro.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/impl/awaitable.hpp"
#include "corio/impl/future_state.hpp"
#include "corio/task.hpp"
#include "corio/task_options.hpp"

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corio {

/// A set of tasks that are joined together:
///
/// ```
/// corio::task_group group;
/// group.create_task(fetch(a));
/// group.create_task(fetch(b));
/// co_await group.join();
/// ```
///
/// - `join()` waits for every task of the group, including tasks created while it waits.
/// - The first task to fail (with an exception other than `cancelled_error`) makes the group
///   cancel all its other tasks; `join()` then rethrows that exception once every task has
///   finished, or an `exception_group` of all of them when several failed.
/// - Cancelling the task that is in `join()` cancels every task of the group; `join()` waits for
///   them to finish and then rethrows the `cancelled_error`.
/// - `cancel()` cancels every task of the group; `join()` then ends with `cancelled_error`.
/// - After a failure, a `cancel()`, or once joined, `create_task` throws `std::runtime_error`.
/// - Destroying a group whose tasks are still pending is a programming error: it is reported
///   through the loop's exception handler and those tasks are cancelled (never undefined
///   behaviour: the loop still owns them).
class task_group {
public:
    task_group() = default;
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;

    ~task_group() {
        if (first_ == nullptr) return;
        const std::size_t pending = pending_;
        event_loop& loop = *loop_;
        while (member* m = first_) {
            m->unlink();
            detail::future_state_base* state = m->state;
            remove(m);
            try {
                state->cancel("task_group destroyed");
            } catch (...) {
            }
        }
        loop.call_exception_handler(exception_context{
            "task_group destroyed while " + std::to_string(pending) +
                " of its tasks were pending (they were cancelled); co_await join() first",
            nullptr,
            {}});
    }

    /// Creates a task of the group (see `corio::create_task`) from a coro or any other
    /// awaitable, unnamed, named (`create_task(c, "name")`) or with options
    /// (`create_task(c, {.name = "x", .eager = true})`).
    template <detail::awaitable_arg A>
    auto create_task(A&& body) {
        return create_task(std::forward<A>(body), task_options{});
    }
    template <detail::awaitable_arg A, class Name>
        requires std::is_constructible_v<std::string, Name&&>
    auto create_task(A&& body, Name&& name) {
        event_loop& loop = admit();
        auto m = detail::make_owned<member>(this);
        return join_group(
            loop.create_task(detail::as_coro(std::forward<A>(body)), std::forward<Name>(name)),
            std::move(m));
    }
    template <detail::awaitable_arg A>
    auto create_task(A&& body, task_options options) {
        event_loop& loop = admit();
        auto m = detail::make_owned<member>(this);
        return join_group(loop.create_task(detail::as_coro(std::forward<A>(body)), options),
                          std::move(m));
    }

    /// Cancels every task of the group (asyncio's `TaskGroup` has no public `cancel`; this is
    /// trio's `cancel_scope.cancel()`): `join()` then ends with `cancelled_error`, unless a task
    /// failed otherwise, and the group takes no new tasks. False if no task was pending.
    bool cancel(const std::string& message = {}) {
        const bool any = first_ != nullptr;
        cancelled_ = true;
        if (cancel_message_.empty()) cancel_message_ = message;
        abort_all(message);
        return any;
    }

    /// How many of the group's tasks are still pending.
    [[nodiscard]] std::size_t size() const noexcept { return pending_; }

    /// Waits for every task of the group; rethrows as described above.
    template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
    coro<> join() {
        std::exception_ptr cancelled;
        while (first_ != nullptr) {
            wakeup_ = get_running_loop().create_future<void>();
            try {
                co_await wakeup_;
            } catch (const cancelled_error&) {
                if (!cancelled) cancelled = std::current_exception();
                abort_all("task_group join cancelled");
            }
        }
        joined_ = true;
        if (errors_.size() == 1) std::rethrow_exception(errors_.front());
        if (!errors_.empty()) {
            throw exception_group("unhandled errors in a task_group", std::move(errors_));
        }
        if (cancelled) std::rethrow_exception(cancelled);
        if (cancelled_) throw cancelled_error(cancel_message_);
    }

private:
    struct member;

    // The running loop, once the group may take a new task on it.
    event_loop& admit() {
        if (aborting_ || joined_) {
            throw std::runtime_error(aborting_ ? "task_group is shutting down"
                                               : "task_group has been joined");
        }
        event_loop& loop = get_running_loop();
        if (loop_ != nullptr && loop_ != &loop) {
            throw std::runtime_error("task_group used from two event loops");
        }
        loop_ = &loop;
        return loop;
    }

    // Makes `t` a task of the group, listened to by `m` (made before the task, so that nothing
    // can fail once the task exists).
    template <class T>
    task<T> join_group(task<T> t, detail::owned_ptr<member> m) noexcept {
        detail::future_state_base* state = detail::handle_access::state(t);
        if (state->done()) {
            // An eager body that finished at once: a task of the group that has ended.
            on_task_done(*state);
            return t;
        }
        m->state = state;
        state->add_listener(m.get());
        add(m.release());
        if (aborting_) {
            // The group began shutting down during the eager first step (the body cancelled
            // the group, or made a sibling that failed at once): this task is one to stop too.
            try {
                (void)state->cancel(abort_message_);
            } catch (...) {
            }
        }
        return t;
    }

    // One per pending task: listens to it. Holds no reference, since the loop keeps a pending
    // task alive; it is deleted when the task completes. Members form a doubly linked list of
    // their own (a listener's links belong to the task's list of listeners).
    struct member : detail::listener {
        explicit member(task_group* group) noexcept : listener(&notify), group(group) {}
        task_group* group;
        detail::future_state_base* state = nullptr;
        member* prev = nullptr;
        member* next = nullptr;

        static void notify(detail::listener* l, detail::future_state_base& state,
                           bool run) noexcept {
            auto* self = static_cast<member*>(l);
            task_group* group = self->group;
            group->remove(self);
            if (run) group->on_task_done(state);
        }
    };

    void add(member* m) noexcept {
        m->next = first_;
        if (first_ != nullptr) first_->prev = m;
        first_ = m;
        ++pending_;
    }

    void remove(member* m) noexcept {
        (m->prev != nullptr ? m->prev->next : first_) = m->next;
        if (m->next != nullptr) m->next->prev = m->prev;
        --pending_;
        delete m;
    }

    void on_task_done(detail::future_state_base& state) noexcept {
        if (!state.cancelled()) {
            if (std::exception_ptr error = state.outcome_exception()) {
                try {
                    errors_.push_back(std::move(error));
                } catch (...) {
                }
                abort_all("task_group: another task failed");
            }
        }
        if (first_ == nullptr && wakeup_ && !wakeup_.done()) wakeup_.set_result();
    }

    void abort_all(const std::string& message) noexcept {
        aborting_ = true;
        try {
            abort_message_ = message;
        } catch (...) {
        }
        // Cancelling may complete tasks at once, which removes their members: step ahead first.
        for (member* m = first_; m != nullptr;) {
            member* next = m->next;
            try {
                m->state->cancel(message);
            } catch (...) {
            }
            m = next;
        }
    }

    member* first_ = nullptr;
    std::size_t pending_ = 0;
    std::vector<std::exception_ptr> errors_;
    future<void> wakeup_;
    event_loop* loop_ = nullptr;
    std::string cancel_message_;
    std::string abort_message_;  // what the tasks were cancelled with
    bool cancelled_ = false;     // by cancel()
    bool aborting_ = false;
    bool joined_ = false;
};

}  // namespace corio
