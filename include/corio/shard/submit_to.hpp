#pragma once
/// \file
/// `corio::submit_to(shard, fn)`: runs `fn` on another shard's loop and gives its result back
/// on the caller's. Also `shard_id`, `this_shard()` and `shard_count()`.

#include "corio/coro.hpp"
#include "corio/detail/text.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/awaitable_traits.hpp"
#include "corio/impl/loop_access.hpp"
#include "corio/impl/task_state.hpp"
#include "corio/shard/detail/mailbox.hpp"
#include "corio/shard/detail/shard_group.hpp"
#include "corio/task.hpp"

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace corio {

/// A shard of `run_sharded`: an index from 0 to `shard_count() - 1`, converted to and from
/// `std::size_t` with `static_cast`.
enum class shard_id : std::size_t {};

/// The shard whose loop runs on this thread. `std::logic_error` outside `run_sharded`.
[[nodiscard]] inline shard_id this_shard() {
    if (detail::current_shard == nullptr) {
        throw std::logic_error("corio::this_shard() called outside run_sharded");
    }
    return shard_id{detail::current_shard->index()};
}

/// How many shards `run_sharded` runs; 0 outside it.
[[nodiscard]] inline std::size_t shard_count() noexcept {
    return detail::current_shard == nullptr ? 0 : detail::current_shard->count();
}

namespace detail {

/// A call to another shard: the part of `submit_to`'s awaiter that does not depend on the
/// function. It lives in the caller's frame and carries itself there and back:
///
/// - the caller sends `request_` to the target and waits;
/// - the target runs the function (or starts it as a task) and sends `request_` back as the
///   reply, the result stored beside it;
/// - a cancellation of the waiting task sends `cancel_` after it; the target cancels the
///   remote task (or skips a function not yet run) and sends `cancel_` back;
/// - the caller resumes once every message it sent has come back, and not before: until then
///   the target may still write into this frame.
///
/// Fields are touched by one thread at a time: the caller's until it sends, the target's until
/// it answers; the queues' release and acquire order the hand-overs.
class remote_call : public cancellable_wait {
public:
    remote_call(const remote_call&) = delete;
    remote_call& operator=(const remote_call&) = delete;

    [[nodiscard]] bool await_ready() const noexcept { return false; }

protected:
    // Starts the work on the target: runs the function and answers, or starts a task that will.
    using start_fn = void (*)(remote_call&) noexcept;

    explicit remote_call(std::size_t target) noexcept
        : cancellable_wait(ops<&cancel, &describe>), target_(target) {}
    // Movable until awaited, so that a combinator can take `submit_to(...)` by value.
    remote_call(remote_call&& other) noexcept : cancellable_wait(other), target_(other.target_) {}
    ~remote_call() = default;

    template <class Promise>
    bool send(std::coroutine_handle<Promise> h, start_fn start) {
        shard_context* here = current_shard;
        task_ = &task_state_base::current("corio::submit_to");
        if (here == nullptr || &here->loop() != &task_->loop()) {
            task_ = nullptr;
            throw std::logic_error("corio::submit_to awaited outside run_sharded's loops");
        }
        if (task_->cancel_pending()) return false;  // `await_resume` throws it
        origin_ = here->index();
        start_ = start;
        request_.call = this;
        request_.deliver = &deliver_request;
        awaiting_ = 1;
        // Like an executor job: the loop is waiting, not deadlocked, and virtual time stands
        // still until the answer comes.
        loop_access::add_executor_job(task_->loop(), 1);
        here->add_call_in_flight(1);
        here->send(target_, &request_);
        task_->suspend(h, this);
        return true;
    }

    /// For `await_resume`: ends the wait, throwing `cancelled_error` when the task was cancelled
    /// and the cancellation came too late for the remote work (whose result is dropped).
    void end_wait() {
        task_->end_wait();
        if (cancel_sent_ && !cancel_reached_) task_->throw_cancelled();
        if (error_) std::rethrow_exception(error_);
    }

    /// On the target: the result is in; sends the answer home.
    void reply() noexcept {
        remote_done_ = true;
        request_.deliver = &deliver_reply;
        current_shard->send(origin_, &request_);
    }

    /// On the target, as a remote task starts: whether it must not run the function after all
    /// (a cancellation came first), in which case its outcome is set.
    bool cancelled_before_start() noexcept {
        remote_started_ = true;
        if (!cancel_requested_.load(std::memory_order_acquire)) return false;
        cancelled_here();
        return true;
    }

    std::exception_ptr error_;                // the remote work's exception
    task_state_base* remote_task_ = nullptr;  // on the target, while it runs a coroutine

private:
    struct message : shard_message {
        remote_call* call = nullptr;
    };
    static remote_call& of(shard_message* m) noexcept { return *static_cast<message*>(m)->call; }

    static void deliver_request(shard_message* m) noexcept {
        remote_call& call = of(m);
        if (call.cancel_requested_.load(std::memory_order_acquire)) {
            call.cancelled_here();
            call.reply();
            return;
        }
        call.start_(call);
    }

    // The work is skipped: its outcome is the caller's cancellation.
    void cancelled_here() noexcept {
        cancel_reached_ = true;
        try {
            error_ = std::make_exception_ptr(cancelled_error(cancel_message_));
        } catch (...) {
            error_ = std::current_exception();
        }
    }

    static void deliver_cancel(shard_message* m) noexcept {
        remote_call& call = of(m);
        if (!call.remote_done_) {
            // Not started: the task sees the request as it starts, and skips the function.
            if (call.remote_task_ != nullptr && call.remote_started_) {
                try {
                    call.remote_task_->cancel(call.cancel_message_);
                } catch (...) {
                    // Out of memory for the message: the task is cancelled without it.
                    (void)call.remote_task_->cancel(std::string());
                }
            }
            call.cancel_reached_ = true;
        }
        call.cancel_.deliver = &deliver_answer;
        current_shard->send(call.origin_, &call.cancel_);
    }

    static void deliver_reply(shard_message* m) noexcept { of(m).answered(); }
    static void deliver_answer(shard_message* m) noexcept { of(m).answered(); }

    void answered() noexcept {
        if (--awaiting_ > 0) return;
        loop_access::add_executor_job(task_->loop(), -1);
        current_shard->add_call_in_flight(-1);
        task_->schedule();
    }

    static bool cancel(cancellable_wait* w, const std::string& text) {
        auto& call = static_cast<remote_call&>(*w);
        if (call.awaiting_ == 0) return false;  // answered: the task sees `cancelled_error`
        if (call.cancel_sent_) return true;     // the first request is on its way
        call.cancel_message_ = text;
        call.cancel_sent_ = true;
        call.cancel_requested_.store(true, std::memory_order_release);
        call.cancel_.call = &call;
        call.cancel_.deliver = &deliver_cancel;
        ++call.awaiting_;
        current_shard->send(call.target_, &call.cancel_);
        return true;
    }

    static void describe(const cancellable_wait* w, wait_description& description) {
        const auto& call = static_cast<const remote_call&>(*w);
        description.what = concat({"corio::submit_to(shard ", decimal(call.target_), ")",
                                   call.cancel_sent_ ? ", cancelling" : ", awaiting its answer"});
    }

    // The caller's.
    task_state_base* task_ = nullptr;
    std::size_t target_;
    std::size_t origin_ = 0;
    unsigned awaiting_ = 0;  // messages sent and not yet back
    bool cancel_sent_ = false;
    start_fn start_ = nullptr;
    message request_;
    message cancel_;
    // Written by the caller before the cancel leaves, read by the target.
    std::string cancel_message_;
    std::atomic<bool> cancel_requested_{false};
    // The target's, read by the caller once answered.
    bool cancel_reached_ = false;  // the cancellation reached the work before it was done
    bool remote_started_ = false;
    bool remote_done_ = false;
};

template <class R>
struct remote_result {
    using type = R;
};
template <class T>
struct remote_result<coro<T>> {
    using type = T;
};

/// `submit_to`'s awaiter: the function, the call, and room for the result.
template <class F>
class submit_awaiter : public remote_call {
    using returned = std::invoke_result_t<F&>;
    static constexpr bool runs_coroutine = is_coro_v<returned>;

public:
    using value_type = typename remote_result<returned>::type;
    static_assert(!std::is_reference_v<value_type>,
                  "corio::submit_to: the function must return a value, not a reference");

    submit_awaiter(std::size_t target, F fn) : remote_call(target), fn_(std::move(fn)) {}
    submit_awaiter(submit_awaiter&& other) noexcept(std::is_nothrow_move_constructible_v<F>)
        : remote_call(std::move(other)), fn_(std::move(other.fn_)) {}

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if constexpr (runs_coroutine) {
            return send(h, &start_task);
        } else {
            return send(h, &start_call);
        }
    }

    value_type await_resume() {
        end_wait();
        if constexpr (!std::is_void_v<value_type>) return std::move(*value_);
    }

private:
    static void start_call(remote_call& base) noexcept {
        auto& self = static_cast<submit_awaiter&>(base);
        try {
            if constexpr (std::is_void_v<value_type>) {
                std::invoke(self.fn_);
            } else {
                self.value_.emplace(std::invoke(self.fn_));
            }
        } catch (...) {
            self.error_ = std::current_exception();
        }
        self.reply();
    }

    static void start_task(remote_call& base) noexcept {
        auto& self = static_cast<submit_awaiter&>(base);
        try {
            task<> remote = current_shard->loop().create_task(run_remote(&self));
            self.remote_task_ = handle_access::state(remote);
        } catch (...) {
            self.error_ = std::current_exception();
            self.reply();
        }
    }

    // The remote task's body, on the target's loop.
    static coro<> run_remote(submit_awaiter* self) {
        if (!self->cancelled_before_start()) {
            try {
                if constexpr (std::is_void_v<value_type>) {
                    co_await std::invoke(self->fn_);
                } else {
                    value_type value = co_await std::invoke(self->fn_);
                    self->value_.emplace(std::move(value));
                }
            } catch (...) {
                self->error_ = std::current_exception();
            }
        }
        self->reply();
    }

    struct nothing {};
    F fn_;
    [[no_unique_address]] std::conditional_t<std::is_void_v<value_type>, nothing,
                                             std::optional<value_type>> value_;
};

}  // namespace detail

/// Runs `fn()` on shard `shard`'s loop (asyncio has no such thing: Seastar's `submit_to`) and
/// gives back its result, or rethrows its exception, on the caller's loop. `fn` returns a
/// value, or a `coro<T>`, which then runs there as a task and gives its `T`.
///
/// `fn` is moved into the awaiter, in the caller's frame, and called on the other shard's
/// thread: what it captures by reference must be safe to touch from there. Nothing is
/// allocated for a plain function; the call travels in per-pair queues, with one wake-up per
/// batch of calls. Submitting to one's own shard works too, through the same queue.
///
/// Cancelling the awaiting task cancels the remote work: a function not yet run is skipped, a
/// remote task is cancelled (and its outcome, as with an awaited task, is what the caller
/// sees). Either way the caller resumes only once the other shard has answered, so nothing of
/// the call outlives it. A cancellation that comes after the work is done is a
/// `cancelled_error` in the caller, and the result is dropped.
///
/// `std::invalid_argument` for a shard out of range, `std::logic_error` outside
/// `run_sharded`. With g++ 12, name a lambda that captures a `std::string` before the
/// `co_await` (README, "Compiler notes"): g++ 12 frees such a temporary's captures wrongly.
template <class F>
    requires std::invocable<std::decay_t<F>&>
[[nodiscard]] detail::submit_awaiter<std::decay_t<F>> submit_to(shard_id shard, F&& fn) {
    const auto index = static_cast<std::size_t>(shard);
    if (detail::current_shard == nullptr) {
        throw std::logic_error("corio::submit_to called outside run_sharded");
    }
    if (index >= detail::current_shard->count()) {
        throw std::invalid_argument(
            detail::concat({"corio::submit_to: no shard ", detail::decimal(index), " (there are ",
                            detail::decimal(detail::current_shard->count()), ")"}));
    }
    return detail::submit_awaiter<std::decay_t<F>>(index, std::forward<F>(fn));
}

}  // namespace corio
