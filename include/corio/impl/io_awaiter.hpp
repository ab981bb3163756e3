#pragma once
/// \file
/// The awaiter of one I/O operation: it lives in the coroutine frame, as does the operation.

#include "corio/event_loop.hpp"
#include "corio/impl/task_state.hpp"
#include "corio/reactor/operation.hpp"

#include <cerrno>
#include <coroutine>
#include <string>
#include <string_view>

namespace corio::detail {

/// Submits its operation to the running loop's reactor and suspends the task until it
/// completes; `co_await` yields the result (bytes, a descriptor, 0) or `-errno`.
///
/// Cancellation withdraws the operation. Exactly one outcome wins, decided by the operation's
/// result: `-ECANCELED` throws `cancelled_error` here; any other result (the operation finished
/// first) is returned, and the cancellation is delivered at the task's next suspension point,
/// so that no byte read or written is lost.
class io_awaiter : public io_operation, public cancellable_wait {
public:
    io_awaiter(io_opcode code, int descriptor) noexcept
        : cancellable_wait(ops<&cancel, &describe>) {
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
        if (loop_access::submit_io(task_->loop(), *this)) return false;
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

private:
    static void on_complete(io_operation* op, int) noexcept {
        static_cast<io_awaiter*>(op)->task_->schedule();
    }

    static bool cancel(cancellable_wait* wait, const std::string&) {
        auto* self = static_cast<io_awaiter*>(wait);
        loop_access::cancel_io(self->task_->loop(), *self);
        return false;
    }

    static void describe(const cancellable_wait* wait, wait_description& description) {
        const auto* self = static_cast<const io_awaiter*>(wait);
        description.what =
            std::string("I/O ") + opcode_name(self->opcode) + " on fd " + std::to_string(self->fd);
    }

    task_state_base* task_ = nullptr;
};

}  // namespace corio::detail
