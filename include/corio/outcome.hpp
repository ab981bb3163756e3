#pragma once
/// \file
/// `corio::outcome<T>`: a value or an exception, as `gather(return_exceptions, ...)` returns
/// for each child.

#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace corio {

/// Either a `T` or the exception that prevented it (a `cancelled_error` for a cancelled child).
template <class T>
class outcome {
public:
    template <class... Args>
    explicit outcome(std::in_place_t, Args&&... args)
        : result_(std::in_place_index<0>, std::forward<Args>(args)...) {}
    explicit outcome(std::exception_ptr error) : result_(std::in_place_index<1>, std::move(error)) {
        if (!std::get<1>(result_)) throw std::invalid_argument("outcome: null exception");
    }

    [[nodiscard]] bool has_value() const noexcept { return result_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    /// The value; rethrows the exception if there is no value.
    [[nodiscard]] T& value() & {
        rethrow_if_error();
        return std::get<0>(result_);
    }
    [[nodiscard]] const T& value() const& {
        rethrow_if_error();
        return std::get<0>(result_);
    }
    [[nodiscard]] T&& value() && {
        rethrow_if_error();
        return std::get<0>(std::move(result_));
    }

    /// The exception; null when there is a value.
    [[nodiscard]] std::exception_ptr error() const noexcept {
        return has_value() ? nullptr : std::get<1>(result_);
    }

private:
    void rethrow_if_error() const {
        if (!has_value()) std::rethrow_exception(std::get<1>(result_));
    }

    std::variant<T, std::exception_ptr> result_;
};

/// The outcome of something that returns nothing: success, or an exception.
template <>
class outcome<void> {
public:
    explicit outcome(std::in_place_t) noexcept {}
    explicit outcome(std::exception_ptr error) : error_(std::move(error)) {
        if (!error_) throw std::invalid_argument("outcome: null exception");
    }

    [[nodiscard]] bool has_value() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return has_value(); }
    /// Rethrows the exception, if there is one.
    void value() const {
        if (error_) std::rethrow_exception(error_);
    }
    [[nodiscard]] std::exception_ptr error() const noexcept { return error_; }

private:
    std::exception_ptr error_;
};

}  // namespace corio
