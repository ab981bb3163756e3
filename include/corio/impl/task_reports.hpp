#pragma once
/// \file
/// What the loop's reports say of a task: what it waits for (deadlock reports, task dumps) and
/// which step of it ran (debug mode's slow-step reports). Lent to every loop with the task
/// layer's hooks (`task_layer_hooks`). The full call graph, with each task's await chain, is
/// impl/call_graph_writer.hpp's, which only programs that include it compile.

#include "corio/coro.hpp"
#include "corio/detail/await_site.hpp"
#include "corio/detail/text.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/future_state.hpp"
#include "corio/impl/task_state.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace corio::detail {

/// "task 'b'", or "gather of 2 pending" for a combinator's state.
[[nodiscard]] inline std::string describe_awaited(const future_state_base& state) {
    if (const task_state_base* task = state.as_task()) return concat({"task '", task->name(), "'"});
    std::size_t children = 0;
    state.for_each_awaited([&](const future_state_base&) { ++children; });
    const std::string_view kind = state.kind();
    if (children > 0) return concat({kind, " of ", decimal(children), " pending"});
    return std::string(kind == "future" ? "a future" : kind);
}

/// "awaits task 'b'", "waits in sleep(...)", "is running" (`task` is `current`, the task whose
/// frames are in motion)...
[[nodiscard]] inline std::string what_task_waits_for(const task_state_base& task,
                                                     const task_state_base* current) {
    if (&task == current) return "is running";
    const cancellable_wait* wait = task.current_wait();
    if (wait == nullptr) {
        if (!task.started()) return "has not started";
        return task.scheduled() ? "is ready to run" : "waits on something corio cannot see";
    }
    wait_description description;
    wait->describe_wait(description);
    if (description.awaits == nullptr) return concat({"waits in ", description.what});
    return concat({"awaits ", describe_awaited(*description.awaits)});
}

/// " of shard 1 (of 4)" for a loop of `run_sharded`, else nothing.
[[nodiscard]] inline std::string shard_of(const event_loop& loop) {
    const shard_port* port = loop_access::shard_port_of(loop);
    if (port == nullptr) return {};
    return concat({" of shard ", decimal(port->index()), " (of ", decimal(port->count()), ")"});
}

/// One line per pending task of `loop`: "  task 'a' awaits task 'b'".
[[nodiscard]] inline std::string wait_summary_of(event_loop& loop) {
    const task_state_base* current = loop_access::current_task(loop);
    std::string out;
    loop_access::for_each_pending_task(loop, [&](task_link* link) {
        const auto& task =
            *static_cast<const task_state_base*>(static_cast<task_state_base*>(link));
        out += concat({"  task '", task.name(), "' ", what_task_waits_for(task, current), "\n"});
    });
    return out;
}

/// "task 'name' (resumed at file:line in f)" for a task's ready link.
[[nodiscard]] inline std::string describe_step(const ready_link* link) {
    const task_state_base* task = task_state_base::from_ready_link(link);
    const coro_promise_base* innermost = nullptr;
    if (task->started()) {
        innermost = task->innermost() != nullptr ? task->innermost() : task->body_promise();
    }
    const std::string site =
        innermost != nullptr ? format_site(innermost->site()) : format_site(task->created_at());
    if (site.empty()) return concat({"task '", task->name(), "'"});
    return concat(
        {"task '", task->name(), task->started() ? "' (resumed at " : "' (created at ", site, ")"});
}

/// What the task layer lends every loop (see `detail::task_hooks`).
inline constexpr task_hooks task_layer_hooks{&task_state_base::step, &task_state_base::abandon,
                                             &wait_summary_of, &describe_step};

}  // namespace corio::detail
