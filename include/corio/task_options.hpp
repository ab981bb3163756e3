#pragma once
/// \file
/// `corio::task_options`: how `create_task` starts a task (its name, and whether it starts
/// eagerly, as Python 3.12's `eager_start`).

#include <string_view>

namespace corio {

/// `create_task(body, {.name = "fetch", .eager = true})`.
///
/// Trivially copyable on purpose: g++ 12 copies a temporary argument of a call inside a
/// `co_await` expression byte by byte into the coroutine frame, which breaks a `std::string`
/// member (its short-string buffer points back at the first copy). A view is copied safely; the
/// task copies the name it views.
struct task_options {
    /// The task's name (copied by `create_task`); empty: `Task-N`, as in asyncio.
    std::string_view name{};  // (initialised, or g++ 12 warns of `{.eager = true}`)
    /// Runs the body at once, inside `create_task`, up to its first suspension (Python 3.12's
    /// eager tasks): a body that finishes without suspending is done when `create_task` returns
    /// and never goes through the ready queue. Only on the running loop: a task created on a loop
    /// that is not running starts when the loop runs, as any other.
    bool eager = false;
};

}  // namespace corio
