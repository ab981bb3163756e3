#pragma once
/// \file
/// The writer of call graphs: every pending task of a loop, what it awaits and where. The loop's
/// deadlock reports and `run`'s task dumps show it once a translation unit of the program
/// includes this header (`detail::installed_call_graph`); debug/call_graph.hpp is the public
/// face (`format_call_graph`, `dump_tasks`).
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
#include "corio/impl/task_reports.hpp"
#include "corio/impl/task_state.hpp"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
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
            nodes_.push_back(
                {static_cast<const task_state_base*>(static_cast<task_state_base*>(link)), {}});
        });
        by_address_.reserve(nodes_.size());
        for (std::size_t i = 0; i < nodes_.size(); ++i) by_address_.emplace_back(nodes_[i].task, i);
        std::sort(by_address_.begin(), by_address_.end(), by_task);
        for (node& n : nodes_) {
            if (const cancellable_wait* wait = waiting_in(n.task)) {
                wait_description description;
                wait->describe_wait(description);
                if (description.awaits != nullptr) collect_tasks(*description.awaits, n.awaits);
            }
            for (const task_state_base* child : n.awaits) {
                if (node* awaited = find(child)) awaited->awaited = true;
            }
        }
    }

    /// The whole graph: one tree per task that no other task awaits, then whatever is left
    /// (tasks that await each other in a cycle).
    [[nodiscard]] std::string write() {
        std::string out = "corio: " + std::to_string(nodes_.size()) + " pending task" +
                          (nodes_.size() == 1 ? "" : "s") + " on the " +
                          std::string(loop_.backend_name()) + " loop\n";
        for (const node& n : nodes_) {
            if (!n.awaited) write_task(out, *n.task, 0);
        }
        for (const node& n : nodes_) {
            if (!n.shown) write_task(out, *n.task, 0);
        }
        return out;
    }

private:
    // A pending task, and the tasks its wait awaits (directly or through a gather...).
    struct node {
        const task_state_base* task;
        std::vector<const task_state_base*> awaits;
        bool awaited = false;  // by another pending task
        bool shown = false;
    };

    // Where each pending task's node is, to look tasks up by address.
    using address_entry = std::pair<const task_state_base*, std::size_t>;
    static bool by_task(const address_entry& a, const address_entry& b) noexcept {
        return std::less<>()(a.first, b.first);  // a total order, unlike `<` on pointers
    }

    // The node of a pending task; none for a task that is not pending.
    [[nodiscard]] node* find(const task_state_base* task) noexcept {
        const auto it = std::lower_bound(by_address_.begin(), by_address_.end(),
                                         address_entry(task, 0), by_task);
        if (it == by_address_.end() || it->first != task) return nullptr;
        return &nodes_[it->second];
    }

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
        return what_task_waits_for(task, current_);
    }

    void write_task(std::string& out, const task_state_base& task, std::size_t depth) {
        const std::string indent(depth * 4, ' ');
        out += indent + "* task '" + task.name() + "'";
        node* self = find(&task);
        if (self != nullptr && self->shown) {
            out += " (shown above)\n";
            return;
        }
        if (self != nullptr) self->shown = true;
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
        if (self == nullptr) return;
        for (const task_state_base* child : self->awaits) write_task(out, *child, depth + 1);
    }

    event_loop& loop_;
    const task_state_base* current_ = nullptr;
    std::vector<node> nodes_;                // in the loop's order of pending tasks
    std::vector<address_entry> by_address_;  // sorted by_task
};

/// The call graph of `loop` (which need not be running).
[[nodiscard]] inline std::string format_call_graph_of(event_loop& loop) {
    return call_graph_writer(loop).write();
}

// Lent to every loop (see `detail::installed_call_graph`) before `main` by every translation
// unit that includes this header (the store is idempotent); `format_call_graph()` lends it
// too, for a loop run before `main`.
inline void install_call_graph_writer() noexcept {
    installed_call_graph.store(&format_call_graph_of, std::memory_order_release);
}
inline const bool call_graph_writer_installed = (install_call_graph_writer(), true);

}  // namespace corio::detail
