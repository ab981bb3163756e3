#pragma once
/// \file
/// What the combinators accept: coros, task and future handles, and any other awaitable, with
/// the value each gives.

#include "corio/coro.hpp"

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

namespace corio {

template <class T>
class task;
template <class T>
class future;

namespace detail {

template <class X>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<task<T>> = true;

template <class X>
inline constexpr bool is_future_v = false;
template <class T>
inline constexpr bool is_future_v<future<T>> = true;

template <class X>
inline constexpr bool is_coro_v = false;
template <class T>
inline constexpr bool is_coro_v<coro<T>> = true;

/// A task or a future handle.
template <class X>
concept future_handle = is_task_v<std::remove_cvref_t<X>> || is_future_v<std::remove_cvref_t<X>>;

/// An awaiter proper: what `co_await` drives once it has looked through `operator co_await`.
template <class A>
concept awaiter_object = requires(A& a, std::coroutine_handle<> h) {
    a.await_ready();
    a.await_suspend(h);
    a.await_resume();
};

/// Whatever `co_await x` accepts in a corio coroutine, `X` being how it is passed: an awaiter,
/// or something with a member or free `operator co_await` that gives one.
template <class X>
concept co_awaitable =
    awaiter_object<std::remove_reference_t<X>> ||
    (has_member_co_await<X> && awaiter_object<decltype(std::declval<X>().operator co_await())>) ||
    (has_free_co_await<X> && awaiter_object<decltype(operator co_await(std::declval<X>()))>);

/// What `co_await x` evaluates to, as a value a task can keep: references are decayed (a task
/// outlives the expression that referred).
template <class X>
using co_await_result_t =
    std::remove_cvref_t<decltype(get_awaiter(std::declval<X>()).await_resume())>;

/// What the combinators accept: a task, a future, a coro, or any other awaitable they can take
/// over (moved in, or copied from an lvalue that can be copied).
template <class X>
concept awaitable_arg =
    future_handle<X> || is_coro_v<std::remove_cvref_t<X>> ||
    (co_awaitable<std::remove_cvref_t<X>&&> &&
     (std::is_lvalue_reference_v<X> ? std::is_copy_constructible_v<std::remove_cvref_t<X>>
                                    : std::is_move_constructible_v<std::remove_cvref_t<X>>));

/// The value a combinator gets from `X`: the handle's or coro's `value_type`, else what
/// `co_await` gives.
template <class X, class Bare = std::remove_cvref_t<X>>
struct awaited_value {
    using type = co_await_result_t<Bare&&>;
};
template <class X, class Bare>
    requires(future_handle<Bare> || is_coro_v<Bare>)
struct awaited_value<X, Bare> {
    using type = typename Bare::value_type;
};
template <class X>
using awaited_value_t = typename awaited_value<X>::type;

/// A coroutine that awaits `awaitable` (taken over by value) and returns what it gives: how the
/// combinators run an awaiter that is not a coro, such as `q.get()`. A handle's result is
/// copied (others may hold the handle too).
template <class A>
coro<awaited_value_t<A>> await_in_coro(A awaitable) {
    if constexpr (std::is_void_v<awaited_value_t<A>>) {
        co_await std::move(awaitable);
    } else if constexpr (future_handle<A>) {
        co_return co_await awaitable;
    } else {
        co_return co_await std::move(awaitable);
    }
}

/// `x` as a coro to run inline: a coro as it is, any other awaitable wrapped.
template <awaitable_arg X>
auto as_coro(X&& x) {
    using bare = std::remove_cvref_t<X>;
    if constexpr (is_coro_v<bare>) {
        static_assert(!std::is_lvalue_reference_v<X>, "pass a coro by value (it is consumed)");
        return bare(std::move(x));
    } else {
        return await_in_coro<bare>(bare(std::forward<X>(x)));
    }
}

}  // namespace detail

}  // namespace corio
