#pragma once
/// \file
/// `corio::task_options`: how `create_task` starts a task (its name, and whether it starts
/// eagerly, as Python 3.12's `eager_start`).

#include <string>

namespace corio {

/// `create_task(body, {.name = "fetch", .eager = true})`.
struct task_options {
    /// The task's name; empty: `Task-N`, as in asyncio.
    std::string name;
    /// Runs the body at once, inside `create_task`, up to its first suspension (Python 3.12's
    /// eager tasks): a body that finishes without suspending is done when `create_task` returns
    /// and never goes through the ready queue. Only on the running loop: a task created on a loop
    /// that is not running starts when the loop runs, as any other.
    bool eager = false;
};

}  // namespace corio
