#pragma once
/// \file
/// The awaiter of one I/O operation: it lives in the coroutine frame, as does the operation.

#include "corio/event_loop.hpp"
#include "corio/impl/task_state.hpp"
#include "corio/reactor/operation.hpp"

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <poll.h>

namespace corio::detail {

/// Submits its operation to the running loop's reactor and suspends the task until it
/// completes; `co_await` yields the result (bytes, a descriptor, 0) or `-errno`.
///
/// A result that only says "try again" never reaches the caller: `EINTR` resubmits the
/// operation, and `EAGAIN` (io_uring gives it for a read on an `O_NONBLOCK` pipe) first waits
/// for the descriptor to be ready, then resubmits. Neither moved a byte, so retrying loses
/// nothing. `connect` is the exception: there they mean "in progress" and "no room in the
/// backlog", which the caller must see.
///
/// Cancellation withdraws the operation. Exactly one outcome wins, decided by the operation's
/// result: `-ECANCELED` throws `cancelled_error` here; any other result (the operation finished
/// first) is returned, and the cancellation is delivered at the task's next suspension point,
/// so that no byte read or written is lost.
class io_awaiter : public io_operation, public cancellable_wait, private ready_node {
public:
    io_awaiter(io_opcode code, int descriptor) noexcept
        : cancellable_wait(ops<&cancel, &describe>), ready_node(&run_retry) {
        opcode = code;
        fd = descriptor;
        complete_ = &on_complete;
    }
    io_awaiter(const io_awaiter&) = delete;
    io_awaiter& operator=(const io_awaiter&) = delete;

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        task_ = &task_state_base::current("corio I/O");
        if (task_->cancel_pending()) {
            result_ = -ECANCELED;
            return false;
        }
        withdrawn_ = false;
        if (submit_until_final()) return false;
        task_->suspend(h, this);
        return true;
    }

    int await_resume() {
        if (result_ == -ECANCELED) {
            task_->end_wait();
        } else {
            task_->leave_wait();
        }
        return result_;
    }

    /// Withdraws the operation while the task waits for it (as a cancellation of the task
    /// does, but without cancelling the task): it ends with `-ECANCELED` unless it finished
    /// first. For the owners of a descriptor that close it under a waiting reader.
    void withdraw() noexcept {
        withdrawn_ = true;
        // Between two tries the reactor holds nothing: `run_retry` delivers -ECANCELED.
        if (!retry_queued_) loop_access::cancel_io(task_->loop(), *this);
    }

protected:
    /// Looks at a result that is not an error (a filter of the bytes received: TLS): true when
    /// `result` (which it may change) is the caller's, false to submit the operation again
    /// (with the `buffer` and `length` it set). Runs from the ready queue, or at once in
    /// `await_suspend`, never inside the reactor's poll.
    using result_hook = bool (*)(io_awaiter& op, int& result) noexcept;
    void set_result_hook(result_hook hook) noexcept { hook_ = hook; }

private:
    enum class phase : std::uint8_t { operation, readiness };

    // Submits, and again while the result at once says "try again" (or the hook wants more).
    // True when `result_` is final; false when the completion will come through `on_complete`.
    bool submit_until_final() {
        try {
            while (loop_access::submit_io(task_->loop(), *this)) {
                if (is_final() && (hook_ == nullptr || result_ < 0 || hook_(*this, result_))) {
                    return true;
                }
            }
        } catch (...) {
            if (phase_ == phase::readiness) end_readiness_wait();
            throw;
        }
        return false;
    }

    // Looks at `result_`: true when it is the caller's; false when the operation is ready to
    // be submitted again (after EAGAIN, as a poll for readiness first).
    bool is_final() noexcept {
        if (phase_ == phase::readiness) {
            end_readiness_wait();
            // Ready, or the poll itself was interrupted: the operation again, which will give
            // the descriptor's error if that is what poll saw. Withdrawn or failed: final.
            return result_ < 0 && result_ != -EINTR && result_ != -EAGAIN;
        }
        if (opcode == io_opcode::connect) return true;
        if (result_ == -EINTR) return false;
        if (result_ != -EAGAIN) return true;
        if (opcode == io_opcode::poll) return false;
        retried_opcode_ = opcode;
        retried_events_ = poll_events;
        poll_events = wants_output(opcode) ? POLLOUT : POLLIN;
        opcode = io_opcode::poll;
        phase_ = phase::readiness;
        return false;
    }

    void end_readiness_wait() noexcept {
        opcode = retried_opcode_;
        poll_events = retried_events_;
        phase_ = phase::operation;
    }

    static bool wants_output(io_opcode code) noexcept {
        return code == io_opcode::write || code == io_opcode::send || code == io_opcode::sendmsg ||
               code == io_opcode::fsync;
    }

    static void on_complete(io_operation* op, int result) noexcept {
        auto* self = static_cast<io_awaiter*>(op);
        self->result_ = result;
        if (!self->is_final()) {
            if (!self->withdrawn_) {
                // Submitted again from the ready queue: completions only schedule.
                self->retry_queued_ = true;
                loop_access::schedule(self->task_->loop(), static_cast<ready_node*>(self));
                return;
            }
            self->result_ = -ECANCELED;  // nothing moved: the withdrawal wins
        } else if (self->hook_ != nullptr && self->result_ >= 0) {
            // Looked at from the ready queue, even when withdrawn: what arrived is not lost.
            self->hook_queued_ = true;
            self->retry_queued_ = true;
            loop_access::schedule(self->task_->loop(), static_cast<ready_node*>(self));
            return;
        }
        self->task_->schedule();
    }

    static void run_retry(ready_node* node, bool run) noexcept {
        auto* self = static_cast<io_awaiter*>(node);
        self->retry_queued_ = false;
        if (!run) return;  // the loop is closing, and abandons the waiting task
        if (std::exchange(self->hook_queued_, false) && self->hook_(*self, self->result_)) {
            self->task_->schedule();  // the hook made the result final
            return;
        }
        if (self->withdrawn_) {
            self->result_ = -ECANCELED;
        } else {
            try {
                if (!self->submit_until_final()) return;
            } catch (const std::system_error& e) {
                self->result_ = e.code().value() > 0 ? -e.code().value() : -EIO;
            } catch (...) {
                self->result_ = -ENOMEM;
            }
        }
        self->task_->schedule();
    }

    static bool cancel(cancellable_wait* wait, const std::string&) {
        static_cast<io_awaiter*>(wait)->withdraw();
        return false;
    }

    static void describe(const cancellable_wait* wait, wait_description& description) {
        const auto* self = static_cast<const io_awaiter*>(wait);
        description.what =
            std::string("I/O ") + opcode_name(self->opcode) + " on fd " + std::to_string(self->fd);
    }

    task_state_base* task_ = nullptr;
    phase phase_ = phase::operation;
    bool withdrawn_ = false;
    bool retry_queued_ = false;
    bool hook_queued_ = false;
    result_hook hook_ = nullptr;
    io_opcode retried_opcode_ = io_opcode::read;
    std::uint32_t retried_events_ = 0;
};

}  // namespace corio::detail
