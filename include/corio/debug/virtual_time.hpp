#pragma once
/// \file
/// Stepping virtual time by hand (Tokio's `time::advance`), for tests run with
/// `run(main, {.virtual_time = true})` or `event_loop::set_virtual_time(true)`.

#include "corio/coro.hpp"
#include "corio/detail/deadline.hpp"
#include "corio/event_loop.hpp"
#include "corio/sleep.hpp"

#include <chrono>

namespace corio {

/// Moves the running loop's virtual clock `delta` forward and returns once every timer due by
/// then has fired and the tasks it woke have run a step. `std::logic_error` unless the loop
/// runs on virtual time.
template <class Rep, class Period>
coro<> advance(std::chrono::duration<Rep, Period> delta) {
    // The due timers fire at once, and the tasks they wake queue up ahead of this one.
    get_running_loop().advance_time(detail::to_loop_duration(delta));
    co_await sleep(std::chrono::seconds(0));
}

}  // namespace corio
