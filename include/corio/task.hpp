#pragma once
/// \file
/// `corio::task<T>`: a coroutine scheduled to run on its own (asyncio's `Task`), with
/// `create_task`, `current_task` and `all_tasks`.

#include "corio/coro.hpp"
#include "corio/detail/copyable.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/detail/state_handle.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/impl/awaitable_traits.hpp"
#include "corio/impl/task_reports.hpp"
#include "corio/impl/task_state.hpp"
#include "corio/task_options.hpp"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio {

/// A handle to a task: a `coro<T>` body that the loop runs on its own.
///
/// - Started soon: `create_task` schedules the body with `call_soon` (it does not run inline);
///   it runs whenever the creating task next suspends. With `{.eager = true}` the body runs at
///   once instead, inside `create_task`, up to its first suspension (Python 3.12's eager
///   tasks); one that finishes without suspending never goes through the ready queue.
/// - Ownership: a pending task is owned by its loop, so dropping every handle neither destroys
///   nor cancels it (fire and forget). Handles are cheap copies sharing one reference-counted
///   state; the body's frame is destroyed as soon as the body finishes, the state when the
///   last handle goes. When the loop closes, the frames of tasks still pending are destroyed
///   and the tasks marked cancelled.
/// - `co_await t` waits for the task and yields `const T&` (`co_await std::move(t)` moves the
///   result out), or rethrows its exception; cancelling the awaiting task cancels `t` too.
/// - `task<T>` converts to `task<>` (`task<void>`), a view of the same task whose result is
///   only a rethrow.
/// - An exception that nobody retrieved is reported through the loop's exception handler
///   ("Task exception was never retrieved") when the last handle goes.
template <class T>
class task : public detail::state_handle<detail::task_state_base> {
    using base = detail::state_handle<detail::task_state_base>;

public:
    using value_type = T;

    task() noexcept = default;

    /// A `task<>` view of any task.
    template <class U>
        requires(std::is_void_v<T> && !std::is_void_v<U>)
    task(const task<U>& other) noexcept : base(other.state_) {}  // NOLINT: implicit by design
    template <class U>
        requires(std::is_void_v<T> && !std::is_void_v<U>)
    task(task<U>&& other) noexcept : base() {  // NOLINT: implicit by design
        std::swap(this->state_, other.state_);
    }

    [[nodiscard]] bool done() const { return checked().done(); }
    [[nodiscard]] bool cancelled() const { return checked().cancelled(); }

    /// The result: throws `invalid_state_error` while pending, `cancelled_error` if cancelled,
    /// and the task's exception if it failed.
    decltype(auto) result() const {
        detail::task_state_base& s = checked();
        s.check_result();
        if constexpr (!std::is_void_v<T>) return typed(s).value_ref();
    }

    /// The task's exception (null if it succeeded); throws like `result()` when pending or
    /// cancelled.
    [[nodiscard]] std::exception_ptr exception() const { return checked().exception(); }

    /// Asks the task to stop: `cancelled_error(message)` is thrown out of the `co_await` it is
    /// suspended at (or its next one, if it is running or scheduled), and what it waits on is
    /// withdrawn at once. False if the task is already done.
    bool cancel(std::string message = {}) { return checked().cancel(message); }
    /// How many cancellation requests are pending (asyncio's `cancelling()`).
    [[nodiscard]] unsigned cancelling() const { return checked().cancelling(); }
    /// Takes one cancellation request back; returns how many remain.
    unsigned uncancel() { return checked().uncancel(); }

    /// The task's name: the one given to `create_task`, or `Task-N`.
    [[nodiscard]] std::string get_name() const { return checked().name(); }
    void set_name(std::string name) { checked().set_name(std::move(name)); }

    /// Calls `fn(const task<T>&)` through `call_soon` once the task is done (at once, if it
    /// already is).
    template <class F>
        requires std::is_invocable_v<F&, const task<T>&>
    callback_id add_done_callback(F&& fn) {
        return callback_id{detail::add_done_callback<task<T>>(checked(), std::forward<F>(fn))};
    }

    /// Removes a done callback that has not been scheduled yet: the number removed (0 or 1).
    std::size_t remove_done_callback(callback_id id) {
        return checked().remove_callback(static_cast<std::uint64_t>(id));
    }

    [[nodiscard]] event_loop& get_loop() const { return checked().loop(); }

    auto operator co_await() const& {
        if constexpr (std::is_void_v<T>) {
            return detail::future_awaiter<T, detail::task_state_base, detail::result_mode::none>(
                checked());
        } else {
            return detail::future_awaiter<T, detail::task_state<T>, detail::result_mode::reference>(
                typed(checked()));
        }
    }
    auto operator co_await() && {
        if constexpr (std::is_void_v<T>) {
            return detail::future_awaiter<T, detail::task_state_base, detail::result_mode::none>(
                checked());
        } else {
            return detail::future_awaiter<T, detail::task_state<T>, detail::result_mode::move>(
                typed(checked()));
        }
    }

private:
    template <class>
    friend class task;
    friend struct detail::handle_access;
    friend class event_loop;

    explicit task(detail::task_state_base* state) noexcept : base(state) {}

    static detail::task_state<T>& typed(detail::task_state_base& s) noexcept {
        return static_cast<detail::task_state<T>&>(s);
    }
};

template <class T>
task<T> event_loop::create_task(coro<T> body, detail::site_record where) {
    if (closed_ || !body) [[unlikely]]
        refuse_task();
    return start_task(body, new detail::task_state<T>(*this), where);
}

template <class T, class Name>
    requires std::is_constructible_v<std::string, Name&&>
task<T> event_loop::create_task(coro<T> body, Name&& name, detail::site_record where) {
    if (closed_ || !body) [[unlikely]]
        refuse_task();
    std::string text(std::forward<Name>(name));
    auto* state = text.empty() ? new detail::task_state<T>(*this)
                               : new detail::task_state<T>(*this, std::move(text));
    return start_task(body, state, where);
}

template <class T>
task<T> event_loop::create_task(coro<T> body, task_options options, detail::site_record where) {
    if (closed_ || !body) [[unlikely]]
        refuse_task();
    auto* state = options.name.empty()
                      ? new detail::task_state<T>(*this)
                      : new detail::task_state<T>(*this, std::string(options.name));
    return start_task(body, state, where, options.eager);
}

template <class T>
task<T> event_loop::start_task(coro<T>& body, detail::task_state<T>* state,
                               const detail::site_record& where, bool eager) {
    if (debug_) [[unlikely]] {
        detail::owned_ptr<detail::task_state<T>> owned(state);
        check_thread("create_task");
        owned->set_created_at(detail::to_await_site(where));
        (void)owned.release();
    }
    // Only now that nothing can throw does the task take the frame over.
    auto frame = body.release();
    state->adopt_body(frame);
    frame.promise().set_owner(state);
    detail::loop_access::track(*this, state, detail::task_layer_hooks);
    // The state's first reference is the loop's, held while the task is pending.
    if (eager && running_loop_ == this) [[unlikely]] {
        // The handle's reference first: a body that finishes now lets go of the loop's.
        task<T> handle(state);
        detail::task_state_base::step(state, true);
        return handle;
    }
    ready_.push_task(state);
    return task<T>(state);
}

template <class T>
T event_loop::run_until_complete(task<T> t) {
    if (!t) throw std::invalid_argument("run_until_complete: empty task");
    if (&t.get_loop() != this) {
        throw std::invalid_argument("run_until_complete: the task belongs to another loop");
    }
    if (!t.done()) {
        const callback_id id =
            t.add_done_callback([](const task<T>& done) { done.get_loop().stop(); });
        try {
            run_forever();
        } catch (...) {
            t.remove_done_callback(id);
            throw;
        }
        if (!t.done()) {
            t.remove_done_callback(id);
            throw std::runtime_error("Event loop stopped before the task completed");
        }
    }
    if constexpr (std::is_void_v<T>) {
        t.result();
    } else {
        // Moved out when nobody else holds the task (as in `run`), copied otherwise.
        auto& state = static_cast<detail::task_state<T>&>(*detail::handle_access::state(t));
        state.check_result();
        if constexpr (detail::copyable<T>) {
            if (!state.unique()) return state.value_ref();
        }
        return state.take_value();
    }
}

template <class T>
T event_loop::run_until_complete(coro<T> body) {
    task<T> t = create_task(std::move(body));
    return run_until_complete(std::move(t));
}

/// Prints `<task pending name='Task-2'>`, as asyncio's repr of a task (`finished`,
/// `cancelled`; `<task empty>` for an empty handle).
template <class T>
std::ostream& operator<<(std::ostream& out, const task<T>& t) {
    auto* state = detail::handle_access::state(t);
    if (state == nullptr) return out << "<task empty>";
    const char* status = state->status() == detail::future_status::pending     ? "pending"
                         : state->status() == detail::future_status::cancelled ? "cancelled"
                                                                               : "finished";
    return out << "<task " << status << " name='" << state->name() << "'>";
}

/// Wraps `body` in a task on the running loop and schedules it (asyncio's `create_task`).
/// Throws `std::runtime_error` when no loop runs in this thread.
template <class T>
[[gnu::always_inline]] inline task<T>
create_task(coro<T> body, detail::site_record where = detail::site_record::current()) {
    return get_running_loop().create_task(std::move(body), where);
}
/// As `create_task(body)`, naming the task.
template <class T, class Name>
    requires std::is_constructible_v<std::string, Name&&>
task<T> create_task(coro<T> body, Name&& name,
                    detail::site_record where = detail::site_record::current()) {
    return get_running_loop().create_task(std::move(body), std::forward<Name>(name), where);
}
/// As `create_task(body)`, with options: `create_task(body, {.name = "x", .eager = true})`.
template <class T>
task<T> create_task(coro<T> body, task_options options,
                    detail::site_record where = detail::site_record::current()) {
    return get_running_loop().create_task(std::move(body), options, where);
}

/// A task that awaits any other awaitable: `create_task(q.get())`, `create_task(sleep(1s))`,
/// another library's awaiter (taken over: moved in, or copied from an lvalue).
template <class A>
    requires(detail::awaitable_arg<A> && !detail::is_coro_v<std::remove_cvref_t<A>>)
task<detail::awaited_value_t<A>>
create_task(A&& awaitable, detail::site_record where = detail::site_record::current()) {
    return get_running_loop().create_task(detail::as_coro(std::forward<A>(awaitable)), where);
}
template <class A, class Name>
    requires(detail::awaitable_arg<A> && !detail::is_coro_v<std::remove_cvref_t<A>> &&
             std::is_constructible_v<std::string, Name &&>)
task<detail::awaited_value_t<A>>
create_task(A&& awaitable, Name&& name,
            detail::site_record where = detail::site_record::current()) {
    return get_running_loop().create_task(detail::as_coro(std::forward<A>(awaitable)),
                                          std::forward<Name>(name), where);
}
template <class A>
    requires(detail::awaitable_arg<A> && !detail::is_coro_v<std::remove_cvref_t<A>>)
task<detail::awaited_value_t<A>>
create_task(A&& awaitable, task_options options,
            detail::site_record where = detail::site_record::current()) {
    return get_running_loop().create_task(detail::as_coro(std::forward<A>(awaitable)), options,
                                          where);
}

/// The task running now; an empty handle outside a task.
[[nodiscard]] inline task<> current_task() noexcept {
    event_loop* loop = detail::loop_access::running();
    if (loop == nullptr) return {};
    return detail::handle_access::make<task<>>(detail::loop_access::current_task(*loop));
}

/// The running loop's tasks that are not done yet (asyncio's `all_tasks`).
[[nodiscard]] inline std::vector<task<>> all_tasks() {
    std::vector<task<>> tasks;
    detail::loop_access::for_each_pending_task(get_running_loop(), [&](detail::task_link* link) {
        tasks.push_back(
            detail::handle_access::make<task<>>(static_cast<detail::task_state_base*>(link)));
    });
    return tasks;
}

}  // namespace corio

/// Tasks hash by identity, so that they can be kept in unordered sets (asyncio's sets of tasks).
template <class T>
struct std::hash<corio::task<T>> {
    std::size_t operator()(const corio::task<T>& t) const noexcept {
        return std::hash<const void*>{}(corio::detail::handle_access::state(t));
    }
};
