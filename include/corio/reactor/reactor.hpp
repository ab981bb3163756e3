#pragma once
/// \file
/// The `corio::reactor` concept: what a backend offers the event loop.
///
/// A reactor is the loop's only contact with the kernel. It is completion-based (a proactor):
/// the loop hands it work that lives in the awaiting coroutine's frame and later learns the
/// result, as the kernel reports it (bytes, or `-errno`). Timers are not the reactor's
/// business: they live in the loop, which only tells the reactor how long it may wait.
///
/// A reactor `R` provides:
/// - `bool submit(io_operation& op)`: start `op` (see reactor/operation.hpp). Returns true if it
///   completed at once (`op.result_` holds the result; `complete_` will not be called), false
///   if its completion will come through `poll`.
/// - `void cancel(io_operation& op) noexcept`: withdraw an operation in flight. It still
///   completes exactly once: with `-ECANCELED`, or with its own result if it won the race.
/// - `void cancel_all() noexcept` and `bool idle() const noexcept`: withdraw everything, and
///   tell when no operation is in flight any more (the loop closes only then, so that no frame
///   is destroyed while the kernel still holds a pointer into it).
/// - `std::size_t poll(std::optional<std::chrono::nanoseconds> timeout)`: wait for at most
///   `timeout` (forever when empty, not at all when zero) until something completes or `wake()`
///   is called, then run the completion functions of whatever completed and return how many
///   ran. Completion functions only schedule work on the loop: no coroutine is ever resumed
///   from inside `poll`. Interrupted waits (`EINTR`) return 0.
/// - `void wake() noexcept`: make a concurrent or the next `poll` return promptly; callable from
///   any thread.
/// - `static std::string_view name() noexcept`: the backend's name, as `backend_name()` shows it.
///
/// Construction acquires the kernel resources and throws `std::system_error` when the kernel
/// refuses them (the loop then falls back to another backend if it was free to choose).

#include "corio/reactor/operation.hpp"

#include <chrono>
#include <concepts>
#include <cstddef>
#include <optional>
#include <string_view>

namespace corio {

template <class R>
concept reactor =
    std::destructible<R> && requires(R& r, const R& cr, io_operation& op,
                                     std::optional<std::chrono::nanoseconds> timeout) {
        { r.submit(op) } -> std::same_as<bool>;
        { r.cancel(op) } noexcept;
        { r.cancel_all() } noexcept;
        { cr.idle() } noexcept -> std::same_as<bool>;
        { r.poll(timeout) } -> std::same_as<std::size_t>;
        { r.wake() } noexcept;
        { R::name() } noexcept -> std::convertible_to<std::string_view>;
    };

} // namespace corio
