#pragma once
/// \file
/// The reference-counting part shared by the `future<T>` and `task<T>` handles.

#include "corio/errors.hpp"

#include <utility>

namespace corio::detail {

/// Holds one reference on a state. Copies share the state; a moved-from handle is empty.
template <class State>
class state_handle {
public:
    using shared_state = State;

    state_handle() noexcept = default;
    explicit state_handle(State* state) noexcept : state_(state) {
        if (state_ != nullptr) state_->add_ref();
    }
    state_handle(const state_handle& other) noexcept : state_handle(other.state_) {}
    state_handle(state_handle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
    state_handle& operator=(const state_handle& other) noexcept {
        state_handle copy(other);
        std::swap(state_, copy.state_);
        return *this;
    }
    state_handle& operator=(state_handle&& other) noexcept {
        state_handle moved(std::move(other));
        std::swap(state_, moved.state_);
        return *this;
    }
    ~state_handle() {
        if (state_ != nullptr) state_->release();
    }

    explicit operator bool() const noexcept { return state_ != nullptr; }

    friend bool operator==(const state_handle& a, const state_handle& b) noexcept {
        return a.state_ == b.state_;
    }

protected:
    State& checked() const {
        if (state_ == nullptr) throw invalid_state_error("use of an empty corio handle");
        return *state_;
    }

    State* state_ = nullptr;
};

}  // namespace corio::detail
