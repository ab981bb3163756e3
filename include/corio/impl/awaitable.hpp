#pragma once
/// \file
/// What the combinators accept and how they read results: tasks and futures as they are,
/// coros and every other awaitable wrapped in tasks.

#include "corio/coro.hpp"
#include "corio/detail/copyable.hpp"
#include "corio/future.hpp"
#include "corio/impl/awaitable_traits.hpp"
#include "corio/impl/future_state.hpp"
#include "corio/impl/task_state.hpp"
#include "corio/outcome.hpp"
#include "corio/task.hpp"

#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace corio::detail {

/// Throws when `h` belongs to another loop than the running one: its completion would be
/// reported from that loop, maybe from another thread (asyncio: "attached to a different
/// loop"). An empty handle is left to the caller's own checks.
template <future_handle H>
void require_running_loop(const H& h, const char* who) {
    const future_state_base* state = handle_access::state(h);
    if (state != nullptr && &state->loop() != &get_running_loop()) {
        throw std::runtime_error(std::string(who) +
                                 ": a corio future or task attached to a different loop");
    }
}

/// A coro (or any other awaitable) becomes a task on the running loop; a handle is taken as it
/// is, if it is the running loop's.
template <awaitable_arg X>
auto ensure_future(X&& x) {
    using bare = std::remove_cvref_t<X>;
    if constexpr (future_handle<bare>) {
        require_running_loop(x, "corio combinator");
        return bare(std::forward<X>(x));
    } else {
        return create_task(as_coro(std::forward<X>(x)));
    }
}

template <class X>
using ensured_t = decltype(ensure_future(std::declval<X>()));

/// `T`, or `std::monostate` for `void`: what a tuple or vector can hold.
template <class T>
using storable_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// The state behind a handle of type `H`, with its type.
template <future_handle H>
auto& typed_state(future_state_base& base) noexcept {
    using T = typename H::value_type;
    if constexpr (is_task_v<H>) {
        return static_cast<task_state<T>&>(base);
    } else {
        return static_cast<future_state<T>&>(base);
    }
}

template <future_handle H>
future_state_base& base_state(const H& h) noexcept {
    return *handle_access::state(h);
}

/// The result of a done state behind a handle of type `H` (rethrowing its exception): moved out
/// when the caller holds the only reference or when it cannot be copied, copied otherwise.
template <future_handle H>
auto take_result(future_state_base& base) -> storable_t<typename H::value_type> {
    using T = typename H::value_type;
    base.check_result();
    if constexpr (std::is_void_v<T>) {
        return std::monostate{};
    } else {
        auto& state = typed_state<H>(base);
        if constexpr (copyable<T>) {
            if (!base.unique()) return state.value_ref();
        }
        return state.take_value();
    }
}

template <future_handle H>
auto take_result(const H& h) -> storable_t<typename H::value_type> {
    return take_result<H>(base_state(h));
}

/// The outcome of a done state behind a handle of type `H`, never throwing what it holds.
template <future_handle H>
auto take_outcome(future_state_base& base) -> outcome<typename H::value_type> {
    using T = typename H::value_type;
    if (std::exception_ptr error = base.outcome_exception()) {
        return outcome<T>(std::move(error));
    }
    if constexpr (std::is_void_v<T>) {
        return outcome<T>(std::in_place);
    } else {
        return outcome<T>(std::in_place, take_result<H>(base));
    }
}

template <future_handle H>
auto take_outcome(const H& h) -> outcome<typename H::value_type> {
    return take_outcome<H>(base_state(h));
}

}  // namespace corio::detail
