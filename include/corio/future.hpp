#pragma once
/// \file
/// `corio::future<T>`: a result that some callback or other task will set (asyncio's `Future`).

#include "corio/detail/state_handle.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/future_state.hpp"
#include "corio/impl/task_state.hpp"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace corio {

/// Identifies a done callback, for `remove_done_callback`.
enum class callback_id : std::uint64_t {};

/// A handle to a result that is set later with `set_result` or `set_exception`, made by
/// `event_loop::create_future<T>()`.
///
/// - A cheap, copyable handle: copies share one reference-counted state, which lives as long as
///   a handle (or a waiter, or a scheduled callback) refers to it.
/// - `co_await f` suspends the awaiting task until the future is done, then yields `const T&`
///   (`co_await std::move(f)` moves the result out) or rethrows its exception. Any number of
///   tasks may wait on one future; they resume through the loop's ready queue, in the order
///   they started waiting.
/// - Cancelling a task that awaits a future cancels the future (asyncio's propagation); use
///   `shield` to prevent it.
/// - An exception set on a future and never retrieved (`result`, `exception` or `co_await`) is
///   reported through the loop's exception handler when the last handle goes.
template <class T>
class future : public detail::state_handle<detail::future_state<T>> {
    using state_type = detail::future_state<T>;
    using base = detail::state_handle<state_type>;

public:
    using value_type = T;

    future() noexcept = default;

    [[nodiscard]] bool done() const { return this->checked().done(); }
    [[nodiscard]] bool cancelled() const { return this->checked().cancelled(); }

    /// The result: throws `invalid_state_error` while pending, `cancelled_error` if cancelled,
    /// and the stored exception if there is one.
    decltype(auto) result() const {
        state_type& s = this->checked();
        s.check_result();
        if constexpr (!std::is_void_v<T>) return s.value_ref();
    }

    /// The stored exception (null if the future succeeded); throws like `result()` when
    /// pending or cancelled.
    [[nodiscard]] std::exception_ptr exception() const { return this->checked().exception(); }

    /// Completes the future as cancelled; false if it was already done.
    bool cancel(std::string message = {}) { return this->checked().cancel(message); }

    /// Sets the result and wakes the waiters; `invalid_state_error` if already done.
    template <class... Args>
        requires(std::is_void_v<T> ? sizeof...(Args) == 0 : sizeof...(Args) > 0)
    void set_result(Args&&... args) {
        this->checked().set_value(std::forward<Args>(args)...);
    }

    /// Sets the exception and wakes the waiters; `invalid_state_error` if already done.
    void set_exception(std::exception_ptr error) {
        this->checked().set_exception(std::move(error));
    }

    /// Calls `fn(const future<T>&)` through `call_soon` once the future is done (at once, if it
    /// already is).
    template <class F>
        requires std::is_invocable_v<F&, const future<T>&>
    callback_id add_done_callback(F&& fn) {
        return callback_id{
            detail::add_done_callback<future<T>>(this->checked(), std::forward<F>(fn))};
    }

    /// Removes a done callback that has not been scheduled yet: the number removed (0 or 1).
    std::size_t remove_done_callback(callback_id id) {
        return this->checked().remove_callback(static_cast<std::uint64_t>(id));
    }

    [[nodiscard]] event_loop& get_loop() const { return this->checked().loop(); }

    auto operator co_await() const& {
        return detail::future_awaiter<T, state_type,
                                      std::is_void_v<T> ? detail::result_mode::none
                                                        : detail::result_mode::reference>(
            this->checked());
    }
    auto operator co_await() && {
        return detail::future_awaiter<T, state_type,
                                      std::is_void_v<T> ? detail::result_mode::none
                                                        : detail::result_mode::move>(
            this->checked());
    }

private:
    friend struct detail::handle_access;
    friend class event_loop;
    explicit future(state_type* state) noexcept : base(state) {}
};

template <class T>
future<T> event_loop::create_future() {
    if (closed_) throw std::runtime_error("Event loop is closed");
    if (debug_) [[unlikely]]
        check_thread("create_future");
    auto* state = new detail::future_state<T>(*this);
    future<T> handle(state);
    state->release();  // the handle holds the only reference
    return handle;
}

}  // namespace corio
