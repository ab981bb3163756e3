#pragma once
/// \file
/// `corio::coro<T>`: the lazy coroutine type, asyncio's `async def`.

#include "corio/detail/await_site.hpp"
#include "corio/detail/frame_allocator.hpp"
#include "corio/detail/resumer.hpp"
#include "corio/errors.hpp"

#include <coroutine>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace corio {

template <class T = void>
class coro;

namespace detail {

/// An awaiter, awaited through a reference. `await_transform` hands the compiler a prvalue
/// always: g++ 12 copies (or fails to copy) an awaiter that `await_transform` returns by
/// reference.
template <class Awaiter>
class awaiter_ref {
public:
    explicit awaiter_ref(Awaiter& awaiter) noexcept : awaiter_(&awaiter) {}
    // Return types spelt out, so that asking for them of a non-awaiter is a substitution
    // failure, not an error (clang 14 substitutes return types before checking constraints).
    auto await_ready() -> decltype(std::declval<Awaiter&>().await_ready()) {
        return awaiter_->await_ready();
    }
    template <class Promise>
    auto await_suspend(std::coroutine_handle<Promise> h)
        -> decltype(std::declval<Awaiter&>().await_suspend(h)) {
        return awaiter_->await_suspend(h);
    }
    auto await_resume() -> decltype(std::declval<Awaiter&>().await_resume()) {
        return awaiter_->await_resume();
    }
    // Another library's way to be told of a cancellation (see impl/foreign_awaiter.hpp).
    void await_cancel()
        requires requires(Awaiter& a) { a.await_cancel(); }
    {
        awaiter_->await_cancel();
    }

private:
    Awaiter* awaiter_;
};

template <class A>
concept has_member_co_await = requires(A&& a) { static_cast<A&&>(a).operator co_await(); };
template <class A>
concept has_free_co_await = requires(A&& a) { operator co_await(static_cast<A&&>(a)); };

/// What `co_await a` would await without `await_transform`, as a prvalue.
template <class A>
decltype(auto) get_awaiter(A&& a) {
    if constexpr (has_member_co_await<A>) {
        return static_cast<A&&>(a).operator co_await();
    } else if constexpr (has_free_co_await<A>) {
        return operator co_await(static_cast<A&&>(a));
    } else {
        return awaiter_ref<std::remove_reference_t<A>>(a);
    }
}

/// corio's own awaiters say so (`using corio_native_awaiter = void;`): they tell the task
/// they suspend where they wait and how to withdraw (see `cancellable_wait`).
template <class A>
concept native_awaiter = requires { typename std::remove_cvref_t<A>::corio_native_awaiter; };

/// Another library's awaiter, as a corio coroutine awaits it (impl/foreign_awaiter.hpp, which
/// every header that runs tasks includes).
template <class Awaiter>
class foreign_awaiter;

/// What `co_await a` awaits in a corio coroutine: corio's own awaiters as they are, another
/// library's behind a `foreign_awaiter`.
template <class A>
decltype(auto) awaiter_for(A&& a) {
    using awaiter = decltype(get_awaiter(static_cast<A&&>(a)));
    if constexpr (native_awaiter<A> || native_awaiter<awaiter>) {
        return get_awaiter(static_cast<A&&>(a));
    } else {
        return foreign_awaiter<awaiter>(
            [&]() -> decltype(auto) { return get_awaiter(static_cast<A&&>(a)); });
    }
}

class coro_promise_base;

/// In debug mode, the running loop's report of a coroutine destroyed before it ever ran.
using never_awaited_fn = void (*)(const coro_promise_base&) noexcept;
inline thread_local constinit never_awaited_fn never_awaited_reporter = nullptr;

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

class coro_promise_base : public recycled<>, private await_site_record {
public:
    explicit coro_promise_base(site_record created) noexcept : await_site_record(created) {}

    std::suspend_always initial_suspend() noexcept { return {}; }

    /// Every `co_await` in a corio coroutine passes through here, unchanged: it records where
    /// the coroutine waits (one store), so that a dump of the loop's tasks can show each await
    /// chain (see debug/call_graph.hpp).
    template <class Awaitable>
    decltype(auto) await_transform(Awaitable&& awaitable,
                                   await_site_record::mark where = await_site_record::here()) {
        record(where);
        return awaiter_for(static_cast<Awaitable&&>(awaitable));
    }

    /// Where the coroutine last awaited (its suspension point while suspended); before its
    /// first `co_await`, where the coroutine is (what "never awaited" reports show).
    using await_site_record::site;

    /// Whether the coroutine was ever started (awaited, or made a task's body).
    [[nodiscard]] bool started() const noexcept { return link_ != nullptr; }

    /// The corio coroutine that awaits this one while this one is suspended (or waits for the
    /// trampoline), if there is one: null for a task's body, for a coroutine that completed
    /// without suspending, and for one awaited from a coroutine of another library.
    [[nodiscard]] const coro_promise_base* caller() const noexcept {
        if (mode_ != run_mode::resumed_later_by_coro) return nullptr;
        return &std::coroutine_handle<coro_promise_base>::from_address(link_).promise();
    }

    /// Whether `Promise` is a corio coroutine's promise that `caller()` can find again from its
    /// frame's address: it sits right after the frame's two function pointers.
    /// (False for `void`, the promise of a type-erased handle.)
    template <class Promise>
    static constexpr bool findable = [] {
        if constexpr (std::is_base_of_v<coro_promise_base, Promise>) {
            return alignof(Promise) <= 2 * sizeof(void*);
        } else {
            return false;
        }
    }();

    /// Where control goes when this coroutine suspends for good (its end) or until it is
    /// started again (an async generator's `co_yield`), as what `await_suspend` returns: back
    /// into `start` when the body runs as a nested call, else to the caller through the
    /// trampoline; a task body's frame goes to its owner.
    template <class Promise>
    static std::coroutine_handle<> hand_back(std::coroutine_handle<Promise> self) noexcept {
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
        default: return resumer::transfer(std::coroutine_handle<>::from_address(promise.link_));
        }
    }

    struct final_awaiter {
        bool await_ready() noexcept { return false; }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
            return hand_back(self);
        }
        void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }

    /// Whether this is an async generator's frame (dumps of await chains say so).
    [[nodiscard]] bool is_generator() const noexcept { return generator_; }

    /// Makes this coroutine the body of a task: `owner` gets the frame when it finishes.
    void set_owner(coro_owner* owner) noexcept {
        link_ = owner;
        mode_ = run_mode::task_body;
    }

    /// Starts this coroutine on behalf of `caller`; returns whether `caller` must suspend
    /// (false: the body already finished, continue the caller at once). `caller_is_corio`: the
    /// caller's promise is `findable` (see `caller()`).
    ///
    /// NOTE: the body runs as a plain nested call while the nesting stays shallow, so a
    /// synchronously completing `co_await` costs one indirect call and no trip through the
    /// loop. Deeper than `resumer::max_inline_depth`, the body is handed to the loop's trampoline
    /// instead, so that deep recursion cannot overflow the stack in any build (see
    /// detail/resumer.hpp on why symmetric transfer alone does not guarantee that).
    bool start(std::coroutine_handle<> self, std::coroutine_handle<> caller,
               bool caller_is_corio) noexcept {
        link_ = caller.address();
        unsigned& calls_left = resumer::inline_calls_left();
        if (calls_left != 0) [[likely]] {
            mode_ = run_mode::inline_call;
            --calls_left;
            self.resume();
            ++calls_left;
            if (mode_ == run_mode::completed_inline) return false;
        } else {
            resumer::defer(self);
        }
        // This coroutine suspended (or waits for the trampoline): it resumes its caller when it
        // finishes, and until then a dump of the await chain goes up through it to the caller.
        mode_ = caller_is_corio ? run_mode::resumed_later_by_coro : run_mode::resumed_later;
        return true;
    }

private:
    enum class run_mode : unsigned char {
        resumed_later,
        resumed_later_by_coro,  // and the caller's promise is a `coro_promise_base`
        inline_call,
        completed_inline,
        task_body
    };

protected:
    struct generator_tag {};
    coro_promise_base(site_record created, generator_tag) noexcept
        : await_site_record(created), generator_(true) {}

private:
    // First, so that they may sit in the tail padding of the site record (clang 14).
    run_mode mode_ = run_mode::resumed_later;
    bool generator_ = false;
    // The awaiting coroutine's address, or the owning task for a task body (`mode_` tells).
    void* link_ = nullptr;
};

template <class T>
class coro_promise : public coro_promise_base {
    using stored = std::conditional_t<std::is_reference_v<T>, std::add_pointer_t<T>, T>;

public:
    // The default argument is the coroutine's own site (its definition), as the compiler
    // constructs the promise there.
    explicit coro_promise(site_record created = site_record::current()) noexcept
        : coro_promise_base(created) {}
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
        ::new (static_cast<void*>(std::addressof(error_)))
            std::exception_ptr(std::current_exception());
        state_ = state::error;
    }

    /// The result, moved out (or the exception, rethrown).
    T take_result() {
        if (state_ == state::error) [[unlikely]]
            std::rethrow_exception(error_);
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
    explicit coro_promise(site_record created = site_record::current()) noexcept
        : coro_promise_base(created) {}
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

}  // namespace detail

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
        using corio_native_awaiter = void;
        explicit awaiter(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
        bool await_ready() const noexcept { return false; }
        template <class CallerPromise>
        bool await_suspend(std::coroutine_handle<CallerPromise> caller) noexcept {
            return handle_.promise().start(handle_, caller,
                                           detail::coro_promise_base::findable<CallerPromise>);
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
    friend class detail::coro_promise_base;
    explicit coro(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}

    std::coroutine_handle<promise_type> checked_handle() const {
        if (!handle_ || handle_.done()) [[unlikely]]
            throw_not_awaitable();
        return handle_;
    }

    [[noreturn]] [[gnu::cold]] [[gnu::noinline]] void throw_not_awaitable() const {
        if (!handle_) throw invalid_state_error("co_await of an empty corio::coro");
        throw invalid_state_error("corio::coro awaited twice");
    }

    void destroy() noexcept {
        if (handle_) {
            if (!handle_.promise().started()) [[unlikely]]
                report_never_awaited();
            handle_.destroy();
        }
    }

    [[gnu::cold]] [[gnu::noinline]] void report_never_awaited() const noexcept {
        if (detail::never_awaited_reporter != nullptr) {
            detail::never_awaited_reporter(handle_.promise());
        }
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

}  // namespace detail

}  // namespace corio
