#pragma once
/// \file
/// The `corio::reactor` concept, the whole of what a backend offers the event loop, and
/// `any_reactor`, the same contract behind virtual functions, as the loop holds a reactor it
/// chose at run time. A third backend is written from this header alone.
///
/// A reactor is the loop's only contact with the kernel. It is completion-based (a proactor):
/// the loop hands it work that lives in the awaiting coroutine's frame and later learns the
/// result, as the kernel reports it (bytes, or `-errno`). Timers are not the reactor's
/// business: they live in the loop, which only tells the reactor how long it may wait.
///
/// A reactor `R` provides:
/// - `bool submit(io_operation& op)`: start `op` (see reactor/operation.hpp). Returns true if it
///   completed at once (`op.result_` holds the result; `complete_` will not be called), false
///   if its completion will come through `poll`. Throws `std::system_error` when the kernel
///   refuses the work (the caller still owns `op`).
/// - `void cancel(io_operation& op) noexcept`: withdraw an operation in flight. It still
///   completes exactly once: with `-ECANCELED`, or with its own result if it won the race.
/// - `void cancel_all() noexcept` and `bool idle() const noexcept`: withdraw everything, and
///   tell when no operation is in flight any more (the loop closes only then, so that no frame
///   is destroyed while the kernel still holds a pointer into it).
/// - `std::size_t in_flight_count() const noexcept`: how many operations are in flight,
///   completed but not yet delivered included (deadlock detection compares it with corio's
///   own background operations).
/// - `void forget(int fd) noexcept`: descriptor number `fd` is about to name another file
///   (see `io_operation::owned_fd`): drop whatever the reactor remembers about it. A reactor
///   that remembers nothing does nothing.
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
#include <utility>

namespace corio {

template <class R>
concept reactor =
    std::destructible<R> && requires(R& r, const R& cr, io_operation& op, int fd,
                                     std::optional<std::chrono::nanoseconds> timeout) {
        { r.submit(op) } -> std::same_as<bool>;
        { r.cancel(op) } noexcept;
        { r.cancel_all() } noexcept;
        { cr.idle() } noexcept -> std::same_as<bool>;
        { cr.in_flight_count() } noexcept -> std::same_as<std::size_t>;
        { r.forget(fd) } noexcept;
        { r.poll(timeout) } -> std::same_as<std::size_t>;
        { r.wake() } noexcept;
        { R::name() } noexcept -> std::convertible_to<std::string_view>;
    };

/// The `reactor` contract behind virtual functions, member for member: the event loop holds
/// one, so that the backend can be chosen at run time (`new_event_loop`, `CORIO_BACKEND`).
class any_reactor {
public:
    any_reactor(const any_reactor&) = delete;
    any_reactor& operator=(const any_reactor&) = delete;
    virtual ~any_reactor() = default;

    virtual bool submit(io_operation& op) = 0;
    virtual void cancel(io_operation& op) noexcept = 0;
    virtual void cancel_all() noexcept = 0;
    [[nodiscard]] virtual bool idle() const noexcept = 0;
    [[nodiscard]] virtual std::size_t in_flight_count() const noexcept = 0;
    virtual void forget(int fd) noexcept = 0;
    virtual std::size_t poll(std::optional<std::chrono::nanoseconds> timeout) = 0;
    virtual void wake() noexcept = 0;
    [[nodiscard]] virtual std::string_view name() const noexcept = 0;

protected:
    any_reactor() = default;
};

/// A `reactor` as an `any_reactor`: each member forwards to `R`'s.
template <reactor R>
class reactor_model final : public any_reactor {
public:
    template <class... Args>
    explicit reactor_model(Args&&... args) : reactor_(std::forward<Args>(args)...) {}

    [[nodiscard]] R& get() noexcept { return reactor_; }

    bool submit(io_operation& op) override { return reactor_.submit(op); }
    void cancel(io_operation& op) noexcept override { reactor_.cancel(op); }
    void cancel_all() noexcept override { reactor_.cancel_all(); }
    [[nodiscard]] bool idle() const noexcept override { return reactor_.idle(); }
    [[nodiscard]] std::size_t in_flight_count() const noexcept override {
        return reactor_.in_flight_count();
    }
    void forget(int fd) noexcept override { reactor_.forget(fd); }
    std::size_t poll(std::optional<std::chrono::nanoseconds> timeout) override {
        return reactor_.poll(timeout);
    }
    void wake() noexcept override { reactor_.wake(); }
    [[nodiscard]] std::string_view name() const noexcept override { return R::name(); }

private:
    R reactor_;
};

}  // namespace corio
