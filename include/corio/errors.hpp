#pragma once
/// \file
/// The exceptions corio throws, mirroring asyncio's.

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
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

    [[nodiscard]] const char* what() const noexcept { return message_ ? message_->c_str() : ""; }

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

/// The stream ended before `readexactly` or `readuntil` found what it wanted (asyncio's
/// `IncompleteReadError`). `partial()` holds the bytes read before the end, which the reader no
/// longer has; `expected()` is the size `readexactly` asked for (empty for `readuntil`).
class incomplete_read_error : public std::runtime_error {
public:
    incomplete_read_error(std::string partial, std::optional<std::size_t> expected)
        : std::runtime_error(describe(partial.size(), expected)),
          partial_(std::make_shared<const std::string>(std::move(partial))), expected_(expected) {}

    [[nodiscard]] const std::string& partial() const noexcept { return *partial_; }
    [[nodiscard]] std::optional<std::size_t> expected() const noexcept { return expected_; }

private:
    static std::string describe(std::size_t got, std::optional<std::size_t> expected) {
        return std::to_string(got) + " bytes read on a total of " +
               (expected ? std::to_string(*expected) : std::string("undefined")) +
               " expected bytes";
    }

    // Shared so that copying the exception never throws.
    std::shared_ptr<const std::string> partial_;
    std::optional<std::size_t> expected_;
};

/// `readuntil` or `readline` went past the reader's buffer limit before finding the separator
/// (asyncio's `LimitOverrunError`). `consumed()` is the number of bytes to consume to get past
/// the offending data, as asyncio reports it.
class limit_overrun_error : public std::runtime_error {
public:
    limit_overrun_error(const std::string& message, std::size_t consumed)
        : std::runtime_error(message), consumed_(consumed) {}

    [[nodiscard]] std::size_t consumed() const noexcept { return consumed_; }

private:
    std::size_t consumed_;
};

}  // namespace corio
