#pragma once
/// \file
/// The exceptions corio throws, mirroring asyncio's.

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corio {

/// Thrown out of the `co_await` a task is suspended at when the task is cancelled.
///
/// Deliberately *not* derived from `std::exception`, so that `catch (const std::exception&)`
/// does not swallow cancellation, just as asyncio's `CancelledError` is a `BaseException`.
/// `what()` is the message given to `cancel()` (empty by default).
class cancelled_error {
public:
    cancelled_error() = default;
    explicit cancelled_error(std::string message)
        : message_(message.empty() ? nullptr
                                   : std::make_shared<const std::string>(std::move(message))) {}

    [[nodiscard]] const char* what() const noexcept {
        return message_ ? message_->c_str() : "";
    }

private:
    // Shared so that copying the exception (std::exception_ptr, rethrow) never throws.
    std::shared_ptr<const std::string> message_;
};

/// An operation did not finish in the time it was given (asyncio's `TimeoutError`).
class timeout_error : public std::runtime_error {
public:
    timeout_error() : std::runtime_error("operation timed out") {}
    using std::runtime_error::runtime_error;
};

/// A future or task was used in a state that does not allow it, such as asking a pending task
/// for its result or setting the result of a done future (asyncio's `InvalidStateError`).
class invalid_state_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

/// Several exceptions raised together, as by a `task_group` in which more than one task failed
/// (asyncio's `ExceptionGroup`).
class exception_group : public std::exception {
public:
    exception_group(std::string message, std::vector<std::exception_ptr> exceptions)
        : message_(std::move(message)), exceptions_(std::move(exceptions)) {}

    [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }
    [[nodiscard]] const std::vector<std::exception_ptr>& exceptions() const noexcept {
        return exceptions_;
    }

private:
    std::string message_;
    std::vector<std::exception_ptr> exceptions_;
};

/// Nothing can run any more while tasks still wait: the loop would hang forever.
class deadlock_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

} // namespace corio
