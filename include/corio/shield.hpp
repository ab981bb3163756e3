#pragma once
/// \file
/// `corio::shield`: protect an awaitable from the cancellation of its awaiter (asyncio's
/// `shield`).

#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/impl/awaitable.hpp"
#include "corio/task.hpp"

#include <type_traits>
#include <utility>

namespace corio {

/// Returns a future that completes as `awaitable` does, but whose cancellation (for instance
/// by cancelling the task that awaits it) does not reach `awaitable`: the shielded work runs on.
///
/// Eager: a coro, or any other awaitable that is not a task or future, is wrapped in a task at
/// once. The result is copied into the returned future
/// (moved, for a move-only type). Shielding a plain future does not keep it alive: keep a
/// handle to it (a task is kept by its loop).
template <detail::awaitable_arg A>
[[nodiscard]] auto shield(A&& awaitable) {
    auto inner = detail::ensure_future(std::forward<A>(awaitable));
    using H = decltype(inner);
    using T = typename H::value_type;
    future<T> outer = inner.get_loop().template create_future<T>();
    auto forward_outcome = [outer](const H& done) mutable {
        if (outer.done()) {
            // Nobody waits for it any more: mark its exception seen.
            (void)detail::base_state(done).outcome_exception();
            return;
        }
        if (done.cancelled()) {
            outer.cancel();
        } else if (std::exception_ptr error = done.exception()) {
            outer.set_exception(error);
        } else if constexpr (std::is_void_v<T>) {
            outer.set_result();
        } else {
            outer.set_result(detail::take_result(done));
        }
    };
    if (inner.done()) {
        forward_outcome(inner);
    } else {
        inner.add_done_callback(std::move(forward_outcome));
    }
    return outer;
}

}  // namespace corio
