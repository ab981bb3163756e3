#pragma once
/// \file
/// Saturating arithmetic on the loop clock: every duration and time point a user passes (sleep,
/// wait_for, wait, call_later, call_at, advance_time) is converted and added here, so that
/// `duration::max()` of any unit means "never" and nothing wraps. `std::chrono` itself does not
/// saturate: `ceil<nanoseconds>(hours::max())` and `now + nanoseconds::max()` overflow into the
/// past, which fired a timer at once or froze the loop.

#include "corio/detail/timer_heap.hpp"

#include <chrono>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace corio::detail {

/// `d` on the loop clock, rounded up (a timer never fires early) and clamped to the clock's
/// range. A NaN (a floating-point duration) is a bad argument: `std::invalid_argument`.
template <class Rep, class Period>
[[nodiscard]] inline loop_clock::duration to_loop_duration(std::chrono::duration<Rep, Period> d) {
    using target = loop_clock::duration;
    if constexpr (std::is_same_v<std::chrono::duration<Rep, Period>, target>) {
        return d;
    } else {
        // In long double, which holds every value of either side without overflow, and exactly
        // where it matters: a 64-bit mantissa makes the conversion of an in-range count exact
        // when it is a whole number of nanoseconds, so rounding up never adds one too many.
        using wide = std::chrono::duration<long double, target::period>;
        const long double value = std::chrono::duration_cast<wide>(d).count();
        if (value != value) throw std::invalid_argument("corio: a duration is NaN");
        if (value >= static_cast<long double>(target::max().count())) return target::max();
        if (value <= static_cast<long double>(target::min().count())) return target::min();
        // Rounded up without <cmath> (a header every program would compile): truncation goes
        // toward zero, so only a positive value with a fraction needs one more.
        auto whole = static_cast<target::rep>(value);
        if (static_cast<long double>(whole) < value) ++whole;
        return target(whole);
    }
}

/// `from + delay`, clamped to the clock's range: `time_point::max()` for "never".
[[nodiscard]] constexpr loop_clock::time_point saturating_add(loop_clock::time_point from,
                                                              loop_clock::duration delay) noexcept {
    using rep = loop_clock::rep;
    const rep base = from.time_since_epoch().count();
    const rep step = delay.count();
    if (step > 0 && base > std::numeric_limits<rep>::max() - step) {
        return loop_clock::time_point::max();
    }
    if (step < 0 && base < std::numeric_limits<rep>::min() - step) {
        return loop_clock::time_point::min();
    }
    return from + delay;
}

/// How long from `now` until `deadline`: zero when it has passed, `duration::max()` at most.
[[nodiscard]] constexpr loop_clock::duration time_until(loop_clock::time_point deadline,
                                                        loop_clock::time_point now) noexcept {
    if (deadline <= now) return loop_clock::duration::zero();
    using rep = loop_clock::rep;
    const rep to = deadline.time_since_epoch().count();
    const rep at = now.time_since_epoch().count();
    // deadline > now, so the difference is positive; it overflows only when now is negative.
    if (at < 0 && to > std::numeric_limits<rep>::max() + at) return loop_clock::duration::max();
    return deadline - now;
}

}  // namespace corio::detail
