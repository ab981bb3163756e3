#pragma once
/// \file
/// `corio::callback_handle` and `corio::timer_handle`: what `call_soon`, `call_later` and
/// `call_at` return (asyncio's `Handle` and `TimerHandle`).

#include "corio/detail/timer_heap.hpp"
#include "corio/impl/loop_nodes.hpp"

#include <utility>

namespace corio {

/// A callback scheduled with `call_soon` (asyncio's `Handle`). Copies share the callback.
class callback_handle {
public:
    callback_handle() noexcept = default;
    explicit callback_handle(detail::callback_state* state) noexcept : state_(state) {
        if (state_ != nullptr) state_->add_ref();
    }
    callback_handle(const callback_handle& other) noexcept : callback_handle(other.state_) {}
    callback_handle(callback_handle&& other) noexcept
        : state_(std::exchange(other.state_, nullptr)) {}
    callback_handle& operator=(callback_handle other) noexcept {
        std::swap(state_, other.state_);
        return *this;
    }
    ~callback_handle() {
        if (state_ != nullptr) state_->release();
    }

    explicit operator bool() const noexcept { return state_ != nullptr; }
    /// Withdraws the callback if it has not run yet. Call on the loop's thread.
    void cancel() noexcept {
        if (state_ != nullptr) state_->cancel();
    }
    [[nodiscard]] bool cancelled() const noexcept {
        return state_ != nullptr && state_->cancelled();
    }

protected:
    detail::callback_state* state_ = nullptr;
};

/// A callback scheduled with `call_later` or `call_at` (asyncio's `TimerHandle`).
class timer_handle : public callback_handle {
public:
    using callback_handle::callback_handle;
    /// When the callback is due, on the loop's clock.
    [[nodiscard]] detail::loop_clock::time_point when() const noexcept { return state_->when_; }
};

}  // namespace corio
