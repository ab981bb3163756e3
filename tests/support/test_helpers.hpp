// Helpers shared by corio's tests: a frame-leak guard, a `counted` value type (after
// cppcoro's), an event recorder, a stopwatch, a collector for the loop's exception handler,
// and a way to skip a case where the kernel refuses the backend CTest asked for.
#pragma once

#include "support/catch.hpp"
#include "support/fault_injection.hpp"

#include <corio/coro.hpp>
#include <corio/detail/frame_allocator.hpp>
#include <corio/errors.hpp>
#include <corio/event_loop.hpp>
#include <corio/run.hpp>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace corio_test {

/// Checks, when it goes out of scope, that every coroutine frame, task state, future state
/// and callback allocated meanwhile on this thread has been freed. Declare it first in a
/// test case, before any loop, task or handle, so that it is destroyed last.
class frame_leak_check {
public:
    frame_leak_check() noexcept
        : before_(corio::detail::frame_allocator::live_bytes()),
          exceptions_(std::uncaught_exceptions()) {}
    frame_leak_check(const frame_leak_check&) = delete;
    frame_leak_check& operator=(const frame_leak_check&) = delete;
    ~frame_leak_check() {
        // A failed REQUIRE unwinding through a running loop may legitimately leave frames
        // behind: only the first failure is worth reporting then.
        if (std::uncaught_exceptions() > exceptions_) return;
        const long after = corio::detail::frame_allocator::live_bytes();
        INFO("bytes of frames, task states and callbacks still allocated: " << (after - before_));
        CHECK(after == before_);
    }

private:
    long before_;
    int exceptions_;
};

/// A value that counts how it is constructed, copied, moved and destroyed, to check that the
/// runtime never copies a result and never leaks one. Call `counted::reset()` first.
struct counted {
    static inline int default_constructions = 0;
    static inline int value_constructions = 0;
    static inline int copy_constructions = 0;
    static inline int move_constructions = 0;
    static inline int copy_assignments = 0;
    static inline int move_assignments = 0;
    static inline int destructions = 0;

    static void reset() noexcept {
        default_constructions = value_constructions = copy_constructions = move_constructions =
            copy_assignments = move_assignments = destructions = 0;
    }
    [[nodiscard]] static int constructions() noexcept {
        return default_constructions + value_constructions + copy_constructions +
               move_constructions;
    }
    /// Objects alive now.
    [[nodiscard]] static int alive() noexcept { return constructions() - destructions; }
    [[nodiscard]] static int copies() noexcept { return copy_constructions + copy_assignments; }

    counted() noexcept { ++default_constructions; }
    explicit counted(int v) noexcept : value(v) { ++value_constructions; }
    counted(const counted& other) noexcept : value(other.value) { ++copy_constructions; }
    counted(counted&& other) noexcept : value(std::exchange(other.value, -1)) {
        ++move_constructions;
    }
    counted& operator=(const counted& other) noexcept {
        value = other.value;
        ++copy_assignments;
        return *this;
    }
    counted& operator=(counted&& other) noexcept {
        value = std::exchange(other.value, -1);
        ++move_assignments;
        return *this;
    }
    ~counted() { ++destructions; }

    /// -1 once moved from.
    int value = 0;
};

/// Records events in the order they happen; compare `events()` with a named
/// `std::vector<std::string>` (g++ 12 rejects a braced one next to a `co_await`).
class recorder {
public:
    void operator()(std::string event) { events_.push_back(std::move(event)); }
    [[nodiscard]] const std::vector<std::string>& events() const noexcept { return events_; }
    [[nodiscard]] bool contains(std::string_view event) const {
        for (const auto& e : events_) {
            if (e == event) return true;
        }
        return false;
    }
    void clear() noexcept { events_.clear(); }

private:
    std::vector<std::string> events_;
};

/// Records `event` when destroyed: put one in a coroutine frame to see when the frame goes.
class record_on_destroy {
public:
    record_on_destroy(recorder& rec, std::string event) : rec_(&rec), event_(std::move(event)) {}
    record_on_destroy(const record_on_destroy&) = delete;
    record_on_destroy& operator=(const record_on_destroy&) = delete;
    ~record_on_destroy() { (*rec_)(std::move(event_)); }

private:
    recorder* rec_;
    std::string event_;
};

/// Wall-clock time since construction.
class stopwatch {
public:
    using clock = std::chrono::steady_clock;
    [[nodiscard]] clock::duration elapsed() const noexcept { return clock::now() - start_; }

private:
    clock::time_point start_ = clock::now();
};

/// Collects what the loop's exception handler is told. Install it from inside the loop
/// (`log.install(corio::get_running_loop())`); it must outlive the loop's use of it.
class exception_log {
public:
    void install(corio::event_loop& loop) {
        loop.set_exception_handler(
            [this](corio::event_loop&, const corio::exception_context& context) {
                contexts_.push_back(context);
            });
    }
    [[nodiscard]] const std::vector<corio::exception_context>& contexts() const noexcept {
        return contexts_;
    }
    [[nodiscard]] std::size_t size() const noexcept { return contexts_.size(); }

private:
    std::vector<corio::exception_context> contexts_;
};

/// True when `error` holds an `E`.
template <class E>
[[nodiscard]] bool holds(const std::exception_ptr& error) {
    if (!error) return false;
    try {
        std::rethrow_exception(error);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

/// `what()` of the exception in `error` (a `std::exception` or a `corio::cancelled_error`).
[[nodiscard]] inline std::string what_of(const std::exception_ptr& error) {
    if (!error) return "<no exception>";
    try {
        std::rethrow_exception(error);
    } catch (const corio::cancelled_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "<unknown exception>";
    }
}

[[nodiscard]] inline bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

/// `CORIO_BACKEND` as CTest set it, or empty.
[[nodiscard]] inline std::string_view backend_from_env() {
    const char* value = std::getenv("CORIO_BACKEND");
    return value == nullptr ? std::string_view{} : std::string_view{value};
}

/// Whether a loop can be made on the backend the environment asks for (the kernel may forbid
/// io_uring, e.g. under a seccomp profile).
[[nodiscard]] inline bool backend_available() {
    static const bool available = [] {
        try {
            (void)corio::new_event_loop();
            return true;
        } catch (const std::system_error&) {
            return false;
        }
    }();
    return available;
}

}  // namespace corio_test

/// Skips the current test case when the kernel refuses the backend in `CORIO_BACKEND`.
#define CORIO_REQUIRE_BACKEND()                                                                    \
    do {                                                                                           \
        if (!::corio_test::backend_available()) {                                                  \
            CORIO_SKIP("the kernel refuses the backend CORIO_BACKEND="                             \
                       << ::corio_test::backend_from_env());                                       \
        }                                                                                          \
    } while (false)
