#pragma once
/// \file
/// `detail::transport_ref`, a counted handle to a `stream_transport` (what readers and writers
/// hold), and the awaiter of `drain()` and `wait_closed()`.

#include "corio/impl/sync_waiter.hpp"
#include "corio/net/detail/stream_transport.hpp"

#include <coroutine>
#include <string>
#include <utility>

namespace corio::detail {

/// A counted reference to a transport.
class transport_ref {
public:
    transport_ref() noexcept = default;
    explicit transport_ref(stream_transport* t) noexcept : t_(t) {
        if (t_ != nullptr) t_->add_ref();
    }
    transport_ref(const transport_ref& other) noexcept : transport_ref(other.t_) {}
    transport_ref(transport_ref&& other) noexcept : t_(std::exchange(other.t_, nullptr)) {}
    transport_ref& operator=(transport_ref other) noexcept {
        std::swap(t_, other.t_);
        return *this;
    }
    ~transport_ref() {
        if (t_ != nullptr) t_->release();
    }

    [[nodiscard]] stream_transport* get() const noexcept { return t_; }
    stream_transport* operator->() const noexcept { return t_; }
    stream_transport& operator*() const noexcept { return *t_; }
    explicit operator bool() const noexcept { return t_ != nullptr; }

private:
    stream_transport* t_ = nullptr;
};

/// Waits until the writer may write again (`drain`) or until the transport is closed
/// (`wait_closed`). Lives in the waiting frame; keeps the transport alive meanwhile.
/// Cancellation leaves the wait and throws `cancelled_error`.
class stream_transport::wait_awaiter : public sync_waiter {
public:
    enum class what : unsigned char { drain, closed };

    wait_awaiter(transport_ref t, what w) noexcept
        : sync_waiter(sync_ops<&cancel>), t_(std::move(t)), what_(w) {}

    [[nodiscard]] bool await_ready() const {
        if (what_ == what::closed) return t_->life_ == lifecycle::released;
        if (t_->error_ != 0) t_->throw_error("drain");
        return t_->drain_ready();
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (bind(what_ == what::drain ? "corio::stream_writer::drain"
                                      : "corio::stream_writer::wait_closed")) {
            return false;
        }
        wait_in(what_ == what::drain ? t_->drain_waiters_ : t_->closed_waiters_, h);
        return true;
    }
    void await_resume() {
        if (task_ != nullptr) {
            if (!is(status::granted)) end_withdrawn();
            end_wait();
        }
        if (what_ == what::drain && t_->error_ != 0) t_->throw_error("drain");
    }

private:
    static bool cancel(cancellable_wait* w, const std::string&) {
        static_cast<wait_awaiter*>(w)->withdraw();
        return false;
    }

    transport_ref t_;
    what what_;
};

}  // namespace corio::detail
