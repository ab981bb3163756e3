#pragma once
/// \file
/// `corio::coro<T>`: the lazy coroutine type, asyncio's `async def`.

#include "corio/detail/frame_allocator.hpp"
#include "corio/detail/resumer.hpp"
#include "corio/errors.hpp"

#include <coroutine>
#include <exception>
#include <memory>
#include <type_traits>
#include <new>
#include <utility>

namespace corio {

template <class T = void>
class coro;

namespace detail {

/// What a coroutine hands its finished frame to when it is the body of a task rather than
/// awaited by another coroutine. The task takes the result out and destroys the frame.
class coro_owner {
public:
    virtual void on_body_done(std::coroutine_handle<> body) noexcept = 0;

protected:
    coro_owner() = default;
    coro_owner(const coro_owner&) = default;
    coro_owner& operator=(const coro_owner&) = default;
    virtual ~coro_owner() = default;
};

class coro_promise_base : public recycled {
public:
    std::suspend_always initial_suspend() noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() noexcept { return false; }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
            coro_promise_base& promise = self.promise();
            switch (promise.mode_) {
            case run_mode::task_body:
                // The owner destroys the frame: nothing here may touch it afterwards.
                static_cast<coro_owner*>(promise.link_)->on_body_done(self);
                return std::noop_coroutine();
            case run_mode::inline_call:
                // Back into the awaiter's await_suspend, which continues the caller.
                promise.mode_ = run_mode::completed_inline;
                return std::noop_coroutine();
            default:
                return resumer::transfer(std::coroutine_handle<>::from_address(promise.link_));
            }
        }
        void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }

    /// Makes this coroutine the body of a task: `owner` gets the frame when it finishes.
    void set_owner(coro_owner* owner) noexcept {
        link_ = owner;
        mode_ = run_mode::task_body;
    }

    /// Starts this coroutine on behalf of `caller`; returns whether `caller` must suspend
    /// (false: the body already finished, continue the caller at once).
    ///
    /// NOTE: the body runs as a plain nested call while the nesting stays shallow, so a
    /// synchronously completing `co_await` costs one indirect call and no trip through the
    /// loop. Deeper than `max_inline_depth`, the body is handed to the loop's trampoline
    /// instead, so that deep recursion cannot overflow the stack in any build (see
    /// detail/resumer.hpp on why symmetric transfer alone does not guarantee that).
    bool start(std::coroutine_handle<> self, std::coroutine_handle<> caller) noexcept {
        link_ = caller.address();
        if (inline_depth_ < max_inline_depth || !resumer::active()) {
            mode_ = run_mode::inline_call;
            ++inline_depth_;
            self.resume();
            --inline_depth_;
            if (mode_ == run_mode::completed_inline) return false;
            mode_ = run_mode::resumed_later;
            return true;
        }
        mode_ = run_mode::resumed_later;
        resumer::defer(self);
        return true;
    }

private:
    enum class run_mode : unsigned char { resumed_later, inline_call, completed_inline, task_body };
    static constexpr unsigned max_inline_depth = 64;

    // The awaiting coroutine's address, or the owning task for a task body (`mode_` tells).
    void* link_ = nullptr;
    run_mode mode_ = run_mode::resumed_later;

    static inline thread_local constinit unsigned inline_depth_ = 0;
};

template <class T>
class coro_promise : public coro_promise_base {
    using stored = std::conditional_t<std::is_reference_v<T>, std::add_pointer_t<T>, T>;

public:
    coro_promise() noexcept {}
    coro_promise(const coro_promise&) = delete;
    coro_promise& operator=(const coro_promise&) = delete;
    ~coro_promise() {
        if (state_ == state::value) {
            value_.~stored();
        } else if (state_ == state::error) {
            error_.~exception_ptr();
        }
    }

    coro<T> get_return_object() noexcept;

    template <class U = T>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        if constexpr (std::is_reference_v<T>) {
            T ref = static_cast<U&&>(value);
            ::new (static_cast<void*>(std::addressof(value_))) stored(std::addressof(ref));
        } else {
            ::new (static_cast<void*>(std::addressof(value_))) stored(static_cast<U&&>(value));
        }
        state_ = state::value;
    }
    void unhandled_exception() noexcept {
        ::new (static_cast<void*>(std::addressof(error_))) std::exception_ptr(std::current_exception());
        state_ = state::error;
    }

    /// The result, moved out (or the exception, rethrown).
    T take_result() {
        if (state_ == state::error) [[unlikely]] std::rethrow_exception(error_);
        if constexpr (std::is_reference_v<T>) {
            return static_cast<T>(*value_);
        } else {
            return std::move(value_);
        }
    }
    [[nodiscard]] std::exception_ptr exception() const noexcept {
        return state_ == state::error ? error_ : nullptr;
    }

private:
    enum class state : unsigned char { empty, value, error };
    union {
        stored value_;
        std::exception_ptr error_;
    };
    state state_ = state::empty;
};

template <>
class coro_promise<void> : public coro_promise_base {
public:
    coro<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }
    void take_result() {
        if (exception_) std::rethrow_exception(exception_);
    }
    [[nodiscard]] std::exception_ptr exception() const noexcept { return exception_; }

private:
    std::exception_ptr exception_;
};

} // namespace detail

/// A lazy coroutine returning `T`: asyncio's `async def f() -> T`.
///
/// - Lazy: calling the coroutine function allocates its frame (from the recycling frame
///   allocator) and runs nothing; the body starts when the `coro` is awaited or handed to
///   `create_task`.
/// - Ownership: the `coro` owns its frame until then, and destroys it (unstarted) if it is
///   dropped. `co_await` runs the body inline in the awaiting task, with no scheduling and no
///   allocation beyond the frame; the frame is destroyed when the awaiting expression ends.
/// - A body that completes without suspending returns to its awaiter like a function call;
///   one that suspended resumes its awaiter through the loop's trampoline. Neither loops of
///   synchronous `co_await`s nor deep recursion grow the stack without bound, in any build.
/// - Exceptions escape through the `co_await`; cancellation reaches the innermost awaiter,
///   because an inline body waits on behalf of the task that awaits it.
/// - A `coro` is awaited once: a second `co_await` throws `invalid_state_error`.
template <class T>
class [[nodiscard]] coro {
public:
    using promise_type = detail::coro_promise<T>;
    using value_type = T;

    coro() noexcept = default;
    coro(coro&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    coro& operator=(coro&& other) noexcept {
        if (this != &other) {
            destroy();
            handle_ = std::exchange(other.handle_, {});
        }
        return *this;
    }
    coro(const coro&) = delete;
    coro& operator=(const coro&) = delete;
    ~coro() { destroy(); }

    /// False for an empty `coro` (default-constructed, moved from, or handed to a task).
    explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

    class awaiter {
    public:
        explicit awaiter(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> caller) noexcept {
            return handle_.promise().start(handle_, caller);
        }
        T await_resume() { return handle_.promise().take_result(); }

    private:
        std::coroutine_handle<promise_type> handle_;
    };

    awaiter operator co_await() && { return awaiter{checked_handle()}; }
    awaiter operator co_await() & { return awaiter{checked_handle()}; }

    /// Gives up ownership of the frame (for the runtime's task machinery).
    [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept {
        return std::exchange(handle_, {});
    }

private:
    friend promise_type;
    explicit coro(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}

    std::coroutine_handle<promise_type> checked_handle() const {
        if (!handle_) throw invalid_state_error("co_await of an empty corio::coro");
        if (handle_.done()) throw invalid_state_error("corio::coro awaited twice");
        return handle_;
    }

    void destroy() noexcept {
        if (handle_) handle_.destroy();
    }

    std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <class T>
coro<T> coro_promise<T>::get_return_object() noexcept {
    return coro<T>{std::coroutine_handle<coro_promise<T>>::from_promise(*this)};
}

inline coro<void> coro_promise<void>::get_return_object() noexcept {
    return coro<void>{std::coroutine_handle<coro_promise<void>>::from_promise(*this)};
}

} // namespace detail

} // namespace corio
