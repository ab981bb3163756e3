#pragma once
/// \file
/// The trampoline that resumes coroutines for the loop.
///
/// NOTE: symmetric transfer (returning the next coroutine from `await_suspend`) only keeps the
/// stack flat when the compiler turns the resumption into a tail call. Clang always does; g++
/// 12 does at plain -O2 but not at -O0/-O1 or under ASan, where a loop of 100,000 synchronously
/// completing `co_await`s overflows the stack. So corio's awaiters hand the next coroutine to
/// this trampoline instead, which resumes it from a loop: the stack stays flat in every build,
/// for loops of awaits and for deep recursion alike, at the cost of one return to the loop per
/// transfer. Outside a trampoline (a coroutine resumed by foreign code) `transfer` falls back
/// to plain symmetric transfer.

#include <coroutine>

namespace corio::detail {

class resumer {
public:
    /// Resumes `h`, then every coroutine control is transferred to, until one suspends without
    /// naming a successor.
    static void run(std::coroutine_handle<> h) noexcept {
        const bool was_active = active_;
        active_ = true;
        for (;;) {
            h.resume();
            void* next = next_;
            if (next == nullptr) break;
            next_ = nullptr;
            h = std::coroutine_handle<>::from_address(next);
        }
        active_ = was_active;
    }

    /// Whether a trampoline is running on this thread.
    [[nodiscard]] static bool active() noexcept { return active_; }

    /// Has the running trampoline resume `h` next (the caller then suspends).
    static void defer(std::coroutine_handle<> h) noexcept { next_ = h.address(); }

    /// What an `await_suspend` returns to hand control to `h`.
    [[nodiscard]] static std::coroutine_handle<> transfer(std::coroutine_handle<> h) noexcept {
        if (active_) {
            next_ = h.address();
            return std::noop_coroutine();
        }
        return h;
    }

private:
    static inline thread_local constinit void* next_ = nullptr;
    static inline thread_local constinit bool active_ = false;
};

} // namespace corio::detail
