#pragma once
/// \file
/// `corio::async_generator<T>`: asyncio's async generator (`async def` with `yield`), consumed
/// one `co_await g.next()` at a time (`async for`), and `collect` (`[x async for x in g]`).

#include "corio/coro.hpp"
#include "corio/detail/copyable.hpp"
#include "corio/errors.hpp"
#include "corio/optional_ref.hpp"

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio {

template <class T>
class async_generator;

namespace detail {

/// What `next()` gives: the value, or nothing at the end.
template <class T>
using next_result_t =
    std::conditional_t<std::is_reference_v<T>, optional_ref<std::remove_reference_t<T>>,
                       std::optional<T>>;

/// The promise of a generator's frame: a corio coroutine (its awaits are recorded and its
/// waits belong to the task that consumes it) that hands control back to its consumer at every
/// `co_yield` as a coroutine does at its end, so that a yield that did not suspend costs what
/// the return of an inline `co_await` costs.
///
/// A yielded value is not copied into the promise: `co_yield` keeps it alive (the
/// expression's temporaries last until the generator is resumed), and `next()` moves it (or
/// copies an lvalue) straight into its result.
template <class T>
class generator_promise : public coro_promise_base {
    using object = std::remove_reference_t<T>;

public:
    explicit generator_promise(site_record created = site_record::current()) noexcept
        : coro_promise_base(created, generator_tag{}) {}
    generator_promise(const generator_promise&) = delete;
    generator_promise& operator=(const generator_promise&) = delete;
    ~generator_promise() = default;

    async_generator<T> get_return_object() noexcept;

    /// A yield suspends the generator exactly as its end does: back to the consumer.
    using yield_awaiter = final_awaiter;

    yield_awaiter yield_value(object&& value) noexcept
        requires(!std::is_reference_v<T>)
    {
        value_ = std::addressof(value);
        copy_ = false;
        return {};
    }
    yield_awaiter yield_value(const object& value) noexcept
        requires(!std::is_reference_v<T> && copyable<T>)
    {
        value_ = const_cast<object*>(std::addressof(value));
        copy_ = true;
        return {};
    }
    yield_awaiter yield_value(object& value) noexcept
        requires std::is_reference_v<T>
    {
        value_ = std::addressof(value);
        return {};
    }

    void return_void() noexcept {}
    void unhandled_exception() noexcept { error_ = std::current_exception(); }

    // -- For `next()` ------------------------------------------------------------------------

    [[nodiscard]] bool in_flight() const noexcept { return in_flight_; }
    void set_in_flight() noexcept { in_flight_ = true; }

    /// What the step that just ended gave: the yielded value, the body's exception (rethrown),
    /// or nothing at the end.
    next_result_t<T> take_step() {
        in_flight_ = false;
        if (value_ != nullptr) [[likely]] {
            object* value = std::exchange(value_, nullptr);
            if constexpr (std::is_reference_v<T>) {
                return next_result_t<T>(*value);
            } else {
                if constexpr (copyable<T>) {
                    if (copy_) return next_result_t<T>(std::in_place, std::as_const(*value));
                }
                return next_result_t<T>(std::in_place, std::move(*value));
            }
        }
        if (error_) [[unlikely]]
            std::rethrow_exception(std::exchange(error_, nullptr));
        return next_result_t<T>();
    }

private:
    object* value_ = nullptr;
    std::exception_ptr error_;
    bool copy_ = false;
    bool in_flight_ = false;
};

/// The awaiter of `next()`: starts the generator's body (or resumes it after its `co_yield`)
/// as a nested call on behalf of the awaiting coroutine, exactly as `co_await` of a `coro`
/// does; what the body waits for meanwhile, the awaiting task waits for.
template <class T>
class generator_next {
    using handle = std::coroutine_handle<generator_promise<T>>;

public:
    using corio_native_awaiter = void;

    explicit generator_next(handle h) noexcept : handle_(h) {}

    bool await_ready() const {
        if (!handle_ || handle_.done()) return true;
        if (handle_.promise().in_flight()) [[unlikely]]
            throw_in_flight();
        return false;
    }
    template <class CallerPromise>
    bool await_suspend(std::coroutine_handle<CallerPromise> caller) noexcept {
        handle_.promise().set_in_flight();
        return handle_.promise().start(handle_, caller, coro_promise_base::findable<CallerPromise>);
    }
    next_result_t<T> await_resume() {
        if (!handle_) return next_result_t<T>();
        return handle_.promise().take_step();
    }

private:
    [[noreturn]] [[gnu::cold]] [[gnu::noinline]] static void throw_in_flight() {
        throw invalid_state_error("corio::async_generator: next() while another next() of the "
                                  "same generator is in flight (one consumer at a time)");
    }

    handle handle_;
};

}  // namespace detail

/// An async generator yielding `T`: asyncio's `async def` with `yield`.
///
/// - Lazy: calling the coroutine function allocates its frame (from the recycling frame
///   allocator) and runs nothing; each `co_await g.next()` runs the body up to its next
///   `co_yield` and gives the value (`std::optional<T>`, empty once the body has ended).
///   `async for x in g:` is `while (auto x = co_await g.next()) { use(*x); }`.
/// - The body may `co_await` anything a corio coroutine may. It runs as a nested call of the
///   coroutine awaiting `next()`, on behalf of its task: cancelling that task cancels what the
///   body awaits (`cancelled_error` is raised inside the body, and comes out of `next()` unless
///   the body handles it), `wait_for(g.next(), t)` bounds one step, and dumps of the task show
///   the generator's frame in its await chain.
/// - A `co_yield` that needs no suspension (the value is ready) returns to the consumer as the
///   end of an inline `co_await` does: no scheduling, no allocation, no copy of the value
///   beyond the one into `next()`'s result (an rvalue is moved, an lvalue copied).
/// - An exception escaping the body comes out of that `next()`; the generator has ended then.
/// - `async_generator<T&>` yields references: `next()` gives an `optional_ref<T>` to the
///   yielded object, valid until the next `next()`. Move-only `T` is yielded with `std::move`.
/// - One consumer at a time: a `next()` while another of the same generator is in flight
///   throws `invalid_state_error`, as asyncio's "already running".
/// - Destroying an unfinished generator destroys its frame, suspended at its `co_yield` (its
///   locals' destructors run); `co_await g.aclose()` does it explicitly. A generator cannot
///   await in its clean-up, unlike asyncio's `finally` after `aclose()`: C++ destructors do not
///   suspend.
template <class T>
class [[nodiscard]] async_generator {
    static_assert(!std::is_void_v<T>, "an async generator yields values: use coro<> for none");
    static_assert(!std::is_rvalue_reference_v<T>, "async_generator<T&&>: yield T or T&");

public:
    using promise_type = detail::generator_promise<T>;
    using value_type = T;
    /// What `co_await next()` gives.
    using next_type = detail::next_result_t<T>;

    async_generator() noexcept = default;
    async_generator(async_generator&& other) noexcept
        : handle_(std::exchange(other.handle_, {})), closed_(std::exchange(other.closed_, false)) {}
    async_generator& operator=(async_generator&& other) noexcept {
        if (this != &other) {
            destroy();
            handle_ = std::exchange(other.handle_, {});
            closed_ = std::exchange(other.closed_, false);
        }
        return *this;
    }
    async_generator(const async_generator&) = delete;
    async_generator& operator=(const async_generator&) = delete;
    ~async_generator() { destroy(); }

    /// False for an empty generator (default-constructed, moved from) and a closed one.
    explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

    /// The next value: `co_await g.next()` → `std::optional<T>` (`optional_ref` for `T&`),
    /// empty once the body has ended (and after `aclose()`). Throws `invalid_state_error` for
    /// an empty generator.
    [[nodiscard]] detail::generator_next<T> next() const {
        if (!handle_ && !closed_) [[unlikely]]
            throw invalid_state_error("next() of an empty corio::async_generator");
        return detail::generator_next<T>(handle_);
    }

    class close_awaiter {
    public:
        using corio_native_awaiter = void;
        explicit close_awaiter(async_generator& gen) noexcept : gen_(&gen) {}
        bool await_ready() const noexcept { return true; }
        void await_suspend(std::coroutine_handle<>) const noexcept {}
        void await_resume() const { gen_->close(); }

    private:
        async_generator* gen_;
    };

    /// asyncio's `aclose()`: `co_await g.aclose()` destroys the frame of an unfinished generator
    /// (its locals' destructors run), after which `next()` gives nothing. Throws
    /// `invalid_state_error` while a `next()` is in flight.
    [[nodiscard]] close_awaiter aclose() noexcept { return close_awaiter(*this); }

private:
    friend promise_type;
    explicit async_generator(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}

    void close() {
        if (!handle_) return;
        if (handle_.promise().in_flight()) {
            throw invalid_state_error("corio::async_generator: aclose() while a next() is in "
                                      "flight");
        }
        std::exchange(handle_, {}).destroy();
        closed_ = true;
    }

    void destroy() noexcept {
        if (handle_) handle_.destroy();
    }

    std::coroutine_handle<promise_type> handle_;
    bool closed_ = false;
};

/// What `collect` of an `async_generator<T>` gives: the values (copies of referenced ones).
template <class T>
using collected_t = std::vector<std::remove_cvref_t<T>>;

namespace detail {

template <class T>
async_generator<T> generator_promise<T>::get_return_object() noexcept {
    return async_generator<T>{std::coroutine_handle<generator_promise<T>>::from_promise(*this)};
}

template <class T>
coro<collected_t<T>> collect_from(async_generator<T>& gen) {
    collected_t<T> items;
    while (auto item = co_await gen.next()) {
        if constexpr (std::is_reference_v<T>) {
            items.push_back(*item);
        } else {
            items.push_back(std::move(*item));
        }
    }
    co_return items;
}

template <class T>
coro<collected_t<T>> collect_owned(async_generator<T> gen) {
    co_return co_await collect_from(gen);
}

}  // namespace detail

/// asyncio's `[x async for x in gen]`: every value the generator yields, in order, once it has
/// ended. `async_generator<T&>` gives copies of the referenced objects. An exception from the
/// generator comes out of the `co_await`, and what was collected is lost.
///
/// `collect(gen())` owns the generator; `collect(g)` consumes `g` in place (it must outlive
/// the `co_await`).
template <class T>
coro<collected_t<T>> collect(async_generator<T>&& gen) {
    return detail::collect_owned(std::move(gen));
}
template <class T>
coro<collected_t<T>> collect(async_generator<T>& gen) {
    return detail::collect_from(gen);
}

}  // namespace corio
