#pragma once
/// \file
/// Another library's awaiter inside a corio task: it gets a handle that wakes the task through
/// the loop, so the task resumes as a corio task whoever resumes it and from whatever thread.

#include "corio/coro.hpp"
#include "corio/detail/frame_allocator.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/loop_access.hpp"
#include "corio/impl/task_state.hpp"

#include <coroutine>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace corio::detail {

/// A coroutine that never finishes: each time it is resumed it schedules the task it wakes,
/// through the loop's thread-safe queue when resumed from elsewhere than the loop's thread.
class task_waker {
public:
    struct promise_type : recycled<> {
        task_state_base* task = nullptr;
        task_waker get_return_object() noexcept {
            return task_waker(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };

    task_waker() noexcept = default;
    task_waker(task_waker&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    task_waker& operator=(task_waker&& other) noexcept {
        std::swap(handle_, other.handle_);
        return *this;
    }
    ~task_waker() {
        if (handle_) handle_.destroy();
    }

    /// A waker of `task`: the handle to give another library's awaiter. A template, as `body`,
    /// only so that programs that await no other library's awaiter do not compile them.
    template <class = void>
    static task_waker make(task_state_base& task) {
        task_waker waker = body();
        waker.handle_.promise().task = &task;
        return waker;
    }
    [[nodiscard]] std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }

private:
    explicit task_waker(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}

    struct wake {
        bool await_ready() noexcept { return false; }
        void await_suspend(std::coroutine_handle<promise_type> self) noexcept {
            task_state_base* task = self.promise().task;
            if (loop_access::running() == &task->loop()) {
                task->schedule();
                return;
            }
            // Nothing to report a failure to on a foreign thread, and the task would never wake.
            try {
                task->loop().call_soon_threadsafe([task] { task->schedule(); });
            } catch (...) {
                std::terminate();
            }
        }
        void await_resume() noexcept {}
    };

    template <class = void>
    static task_waker body() {
        for (;;) co_await wake{};
    }

    std::coroutine_handle<promise_type> handle_;
};

/// An awaiter that can be told to stop early: `await_cancel()` makes it resume soon (it is
/// called on the loop's thread, maybe more than once for one wait).
template <class A>
concept cancellable_foreign_awaiter = requires(A& a) { a.await_cancel(); };

/// Another library's awaiter, awaited in a corio coroutine. In a task, the awaiter is given a
/// `task_waker`'s handle, never the coroutine's: the coroutine resumes from the loop, with the
/// task current, as after any of corio's waits. A cancellation of the task waits for the
/// awaiter to resume (corio cannot withdraw what it does not know) and is delivered then, its
/// result dropped; an awaiter with `await_cancel()` is told at once.
template <class Awaiter>
class foreign_awaiter : private cancellable_wait {
public:
    template <class Make>
    explicit foreign_awaiter(Make&& make) noexcept(noexcept(make()))
        : cancellable_wait(ops<&cancel, &describe>), inner_(make()) {}
    foreign_awaiter(const foreign_awaiter&) = delete;
    foreign_awaiter& operator=(const foreign_awaiter&) = delete;
    ~foreign_awaiter() { stop_counting(); }

    decltype(auto) await_ready() { return inner_.await_ready(); }

    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) {
        event_loop* loop = loop_access::running();
        task_ = loop != nullptr ? loop_access::current_task(*loop) : nullptr;
        if (task_ == nullptr) return suspend_outside_task(h);  // driven by someone else
        if (task_->cancel_pending()) return h;  // cancelled already: await_resume throws it
        waker_ = task_waker::make(*task_);
        task_->suspend(h, this);
        // Who resumes it is unknown (another thread, maybe): the loop is not deadlocked while
        // it waits, as debug mode's detector would otherwise conclude.
        loop_access::add_outside_work(task_->loop(), +1);
        counted_ = true;
        try {
            using result = decltype(inner_.await_suspend(waker_.handle()));
            if constexpr (std::is_void_v<result>) {
                inner_.await_suspend(waker_.handle());
            } else if constexpr (std::is_same_v<result, bool>) {
                if (!inner_.await_suspend(waker_.handle())) {
                    stop_counting();
                    task_->leave_wait();
                    return h;
                }
            } else {
                return inner_.await_suspend(waker_.handle());
            }
        } catch (...) {
            // Thrown out of the `co_await` (the coroutine goes on): no wait is left behind.
            stop_counting();
            task_->leave_wait();
            throw;
        }
        return std::noop_coroutine();
    }

    decltype(auto) await_resume() {
        stop_counting();
        if (task_ != nullptr) task_->end_wait();  // a cancellation requested meanwhile
        return inner_.await_resume();
    }

private:
    void stop_counting() noexcept {
        if (!counted_) return;
        counted_ = false;
        loop_access::add_outside_work(task_->loop(), -1);
    }

    template <class Promise>
    std::coroutine_handle<> suspend_outside_task(std::coroutine_handle<Promise> h) {
        using result = decltype(inner_.await_suspend(h));
        if constexpr (std::is_void_v<result>) {
            inner_.await_suspend(h);
            return std::noop_coroutine();
        } else if constexpr (std::is_same_v<result, bool>) {
            return inner_.await_suspend(h) ? std::coroutine_handle<>(std::noop_coroutine())
                                           : std::coroutine_handle<>(h);
        } else {
            return inner_.await_suspend(h);
        }
    }

    static bool cancel(cancellable_wait* wait, const std::string&) {
        if constexpr (cancellable_foreign_awaiter<Awaiter>) {
            static_cast<foreign_awaiter*>(wait)->inner_.await_cancel();
        }
        return false;  // delivered when the awaiter resumes
    }

    static void describe(const cancellable_wait*, wait_description& description) {
        description.what = "another library's awaiter";
    }

    Awaiter inner_;
    task_state_base* task_ = nullptr;
    task_waker waker_;
    bool counted_ = false;  // as outside work of the loop
};

}  // namespace corio::detail
