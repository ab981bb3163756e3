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
    /// How deeply a trampoline lets `co_await`s of coroutines nest as plain calls before it
    /// takes over (see `coro_promise_base::start`).
    static constexpr unsigned max_inline_depth = 64;

    /// Resumes `h`, then every coroutine control is transferred to, until one suspends without
    /// naming a successor.
    static void run(std::coroutine_handle<> h) noexcept {
        const unsigned calls_left = inline_calls_left_;
        inline_calls_left_ = max_inline_depth;
        for (;;) {
            h.resume();
            void* next = next_;
            if (next == nullptr) break;
            next_ = nullptr;
            h = std::coroutine_handle<>::from_address(next);
        }
        inline_calls_left_ = calls_left;
    }

    /// Whether a trampoline is running on this thread.
    [[nodiscard]] static bool active() noexcept { return inline_calls_left_ <= max_inline_depth; }

    /// How many more nested calls this thread may make before deferring to the trampoline:
    /// `max_inline_depth` at the start of each resumption from a trampoline, practically
    /// unlimited (counting down from `~0u`) outside one, where there is nothing to defer to.
    /// The same counter tells whether a trampoline runs, so each check costs one load.
    [[nodiscard]] static unsigned& inline_calls_left() noexcept { return inline_calls_left_; }

    /// Has the running trampoline resume `h` next (the caller then suspends).
    static void defer(std::coroutine_handle<> h) noexcept { next_ = h.address(); }

    /// What an `await_suspend` returns to hand control to `h`.
    [[nodiscard]] static std::coroutine_handle<> transfer(std::coroutine_handle<> h) noexcept {
        if (active()) {
            next_ = h.address();
            return std::noop_coroutine();
        }
        return h;
    }

private:
    static inline thread_local constinit void* next_ = nullptr;
    static inline thread_local constinit unsigned inline_calls_left_ = ~0u;
};

}  // namespace corio::detail
