#pragma once
/// \file
/// The writer of call graphs: every pending task of a loop, what it awaits and where. The loop
/// itself needs it for its deadlock reports (through `task_layer_hooks`); debug/call_graph.hpp
/// is the public face (`format_call_graph`, `dump_tasks`).
///
/// A task's await chain is read from its coroutine frames: each corio coroutine records where
/// it last awaited (`coro_promise_base::await_transform`); the task records its innermost
/// coroutine when it suspends in one of corio's waits, and the chain goes up from there through
/// each coroutine's caller. The innermost wait says what it is
/// (`cancellable_wait::describe_wait`). Tasks awaited by other tasks,
/// directly or through a `gather`, are shown under the task that awaits them.

#include "corio/coro.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/future_state.hpp"
#include "corio/impl/task_state.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace corio::detail {

/// The await chain of a suspended task, outermost (its body) first. Only the body when the task
/// waits in another library's awaiter, which does not tell corio where it suspended.
[[nodiscard]] inline std::vector<const coro_promise_base*>
await_chain(const task_state_base& task) {
    std::vector<const coro_promise_base*> chain;
    for (const coro_promise_base* frame = task.innermost(); frame != nullptr;
         frame = frame->caller()) {
        chain.push_back(frame);
    }
    if (chain.empty()) {
        if (const coro_promise_base* body = task.body_promise()) chain.push_back(body);
    }
    return {chain.rbegin(), chain.rend()};
}

/// Writes the call graph of one loop's pending tasks.
class call_graph_writer {
public:
    explicit call_graph_writer(event_loop& loop) : loop_(loop) {
        current_ = loop_access::current_task(loop);
        loop_access::for_each_pending_task(loop, [&](task_link* link) {
            tasks_.push_back(
                static_cast<const task_state_base*>(static_cast<task_state_base*>(link)));
        });
        for (const task_state_base* task : tasks_) {
            std::vector<const task_state_base*>& awaited = awaits_[task];
            if (const cancellable_wait* wait = waiting_in(task)) {
                wait_description description;
                wait->describe_wait(description);
                if (description.awaits != nullptr) collect_tasks(*description.awaits, awaited);
            }
            for (const task_state_base* child : awaited) awaited_by_.insert(child);
        }
    }

    /// The whole graph: one tree per task that no other task awaits, then whatever is left
    /// (tasks that await each other in a cycle).
    [[nodiscard]] std::string write() {
        std::string out = "corio: " + std::to_string(tasks_.size()) + " pending task" +
                          (tasks_.size() == 1 ? "" : "s") + " on the " +
                          std::string(loop_.backend_name()) + " loop\n";
        for (const task_state_base* task : tasks_) {
            if (!awaited_by_.contains(task)) write_task(out, *task, 0);
        }
        for (const task_state_base* task : tasks_) {
            if (!shown_.contains(task)) write_task(out, *task, 0);
        }
        return out;
    }

    /// One line per waiting task: "Task 'a' awaits task 'b'", for deadlock reports.
    [[nodiscard]] std::string summary() const {
        std::string out;
        for (const task_state_base* task : tasks_) {
            out += "  task '" + task->name() + "' " + what_it_waits_for(*task) + '\n';
        }
        return out;
    }

private:
    // The wait of a suspended task; none for the running one, whose frames are in motion.
    [[nodiscard]] const cancellable_wait* waiting_in(const task_state_base* task) const noexcept {
        return task == current_ ? nullptr : task->current_wait();
    }

    static void collect_tasks(const future_state_base& state,
                              std::vector<const task_state_base*>& out) {
        if (const task_state_base* task = state.as_task()) {
            out.push_back(task);
            return;
        }
        state.for_each_awaited([&](const future_state_base& child) { collect_tasks(child, out); });
    }

    [[nodiscard]] std::string what_it_waits_for(const task_state_base& task) const {
        if (&task == current_) return "is running";
        const cancellable_wait* wait = waiting_in(&task);
        if (wait == nullptr) {
            if (!task.started()) return "has not started";
            return task.scheduled() ? "is ready to run" : "waits on something corio cannot see";
        }
        wait_description description;
        wait->describe_wait(description);
        if (description.awaits == nullptr) return "waits in " + description.what;
        return "awaits " + describe_state(*description.awaits);
    }

    [[nodiscard]] static std::string describe_state(const future_state_base& state) {
        if (const task_state_base* task = state.as_task()) return "task '" + task->name() + "'";
        std::size_t children = 0;
        state.for_each_awaited([&](const future_state_base&) { ++children; });
        std::string text = state.kind();
        if (children > 0)
            text += " of " + std::to_string(children) + " pending";
        else if (text == "future")
            text = "a future";
        return text;
    }

    void write_task(std::string& out, const task_state_base& task, std::size_t depth) {
        const std::string indent(depth * 4, ' ');
        out += indent + "* task '" + task.name() + "'";
        if (!shown_.insert(&task).second) {
            out += " (shown above)\n";
            return;
        }
        out += '\n';
        const std::string inner = indent + "    ";
        if (&task != current_ && task.started()) {
            for (const coro_promise_base* frame : await_chain(task)) {
                const std::string site = format_site(frame->site());
                if (site.empty()) continue;
                out += inner + "at " + site;
                out += frame->is_generator() ? " (async generator)\n" : "\n";
            }
        } else if (!task.started()) {
            const std::string site = format_site(task.created_at());
            if (!site.empty()) out += inner + "created at " + site + '\n';
        }
        out += inner + what_it_waits_for(task) + '\n';
        for (const task_state_base* child : awaits_[&task]) write_task(out, *child, depth + 1);
    }

    event_loop& loop_;
    const task_state_base* current_ = nullptr;
    std::vector<const task_state_base*> tasks_;
    std::unordered_map<const task_state_base*, std::vector<const task_state_base*>> awaits_;
    std::unordered_set<const task_state_base*> awaited_by_;
    std::unordered_set<const task_state_base*> shown_;
};

/// The call graph of `loop` (which need not be running).
[[nodiscard]] inline std::string format_call_graph_of(event_loop& loop) {
    return call_graph_writer(loop).write();
}

/// One line per pending task of `loop`: what it waits for.
[[nodiscard]] inline std::string wait_summary_of(event_loop& loop) {
    return call_graph_writer(loop).summary();
}

/// "task 'name' (resumed at file:line in f)" for a task's ready link.
[[nodiscard]] inline std::string describe_step(const ready_link* link) {
    const task_state_base* task = task_state_base::from_ready_link(link);
    std::string text = "task '" + task->name() + "'";
    const coro_promise_base* innermost = nullptr;
    if (task->started()) {
        innermost = task->innermost() != nullptr ? task->innermost() : task->body_promise();
    }
    const std::string site =
        innermost != nullptr ? format_site(innermost->site()) : format_site(task->created_at());
    if (!site.empty()) text += (task->started() ? " (resumed at " : " (created at ") + site + ')';
    return text;
}

/// What the task layer lends every loop (see `detail::task_hooks`).
inline constexpr task_hooks task_layer_hooks{&task_state_base::step, &task_state_base::abandon,
                                             &format_call_graph_of, &wait_summary_of,
                                             &describe_step};

}  // namespace corio::detail
