#pragma once
/// \file
/// The writer of call graphs: every pending task of a loop, what it awaits and where.
/// debug/call_graph.hpp is its public face (`format_call_graph`, `dump_tasks`); the loop's
/// deadlock reports and `run`'s task dumps show it once a file of the program includes
/// debug/report_call_graphs.hpp (`detail::installed_call_graph`).
///
/// A task's await chain is read from its coroutine frames: each corio coroutine records where
/// it last awaited (`coro_promise_base::await_transform`); the task records its innermost
/// coroutine when it suspends in one of corio's waits, and the chain goes up from there through
/// each coroutine's caller. The innermost wait says what it is
/// (`cancellable_wait::describe_wait`). Tasks awaited by other tasks,
/// directly or through a `gather`, are shown under the task that awaits them.

#include "corio/coro.hpp"
#include "corio/detail/text.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/future_state.hpp"
#include "corio/impl/task_reports.hpp"
#include "corio/impl/task_state.hpp"

#include <cstddef>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace corio::detail {

/// Writes the call graph of one loop's pending tasks.
///
/// Written for little code, as a program that has it in its reports compiles all of it: texts
/// appended part by part, and the index of tasks by address sorted and searched by `qsort` and
/// `bsearch` rather than by templates. A template itself, so that a file that includes it
/// without formatting a graph compiles none of it (docs/architecture.md, "Compile time").
template <class = void>
class call_graph_writer {
public:
    explicit call_graph_writer(event_loop& loop) : loop_(loop) {
        current_ = loop_access::current_task(loop);
        loop_access::for_each_pending_task(loop, [&](task_link* link) {
            nodes_.push_back(
                {static_cast<const task_state_base*>(static_cast<task_state_base*>(link)), {}});
        });
        by_address_.reserve(nodes_.size());
        for (std::size_t i = 0; i < nodes_.size(); ++i) by_address_.push_back({nodes_[i].task, i});
        if (!by_address_.empty()) {
            std::qsort(by_address_.data(), by_address_.size(), sizeof(address_entry), by_task);
        }
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
        std::string out = concat({"corio: ", decimal(nodes_.size()), " pending task",
                                  nodes_.size() == 1 ? "" : "s", " on the ", loop_.backend_name(),
                                  " loop", shard_of(loop_), "\n"});
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
    struct address_entry {
        const task_state_base* task;
        std::size_t index;
    };
    static int by_task(const void* a, const void* b) noexcept {
        // A total order, unlike `<` on pointers to unrelated objects.
        const std::less<const task_state_base*> less;
        const auto* x = static_cast<const address_entry*>(a)->task;
        const auto* y = static_cast<const address_entry*>(b)->task;
        return less(x, y) ? -1 : less(y, x) ? 1 : 0;
    }

    // The node of a pending task; none for a task that is not pending.
    [[nodiscard]] node* find(const task_state_base* task) noexcept {
        if (by_address_.empty()) return nullptr;
        const address_entry key{task, 0};
        const void* found = std::bsearch(&key, by_address_.data(), by_address_.size(),
                                         sizeof(address_entry), by_task);
        return found == nullptr ? nullptr
                                : &nodes_[static_cast<const address_entry*>(found)->index];
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

    // The frames `task` is suspended in, outermost (its body) first: each coroutine's caller is
    // the next one out. Only the body when the task waits in another library's awaiter, which
    // does not tell corio where it suspended.
    static void collect_frames(const task_state_base& task,
                               std::vector<const coro_promise_base*>& innermost_first) {
        for (const coro_promise_base* frame = task.innermost(); frame != nullptr;
             frame = frame->caller()) {
            innermost_first.push_back(frame);
        }
        if (innermost_first.empty()) {
            if (const coro_promise_base* body = task.body_promise())
                innermost_first.push_back(body);
        }
    }

    void write_task(std::string& out, const task_state_base& task, std::size_t depth) {
        out.append(depth * 4, ' ');
        out += "* task '";
        out += task.name();
        out += '\'';
        node* self = find(&task);
        if (self != nullptr && self->shown) {
            out += " (shown above)\n";
            return;
        }
        if (self != nullptr) self->shown = true;
        out += '\n';
        const std::size_t inner = depth * 4 + 4;
        if (&task != current_ && task.started()) {
            frames_.clear();
            collect_frames(task, frames_);
            for (std::size_t i = frames_.size(); i-- > 0;) {
                const std::string site = format_site(frames_[i]->site());
                if (site.empty()) continue;
                out.append(inner, ' ');
                out += "at ";
                out += site;
                out += frames_[i]->is_generator() ? " (async generator)\n" : "\n";
            }
        } else if (!task.started()) {
            const std::string site = format_site(task.created_at());
            if (!site.empty()) {
                out.append(inner, ' ');
                out += "created at ";
                out += site;
                out += '\n';
            }
        }
        out.append(inner, ' ');
        out += what_task_waits_for(task, current_);
        out += '\n';
        if (self == nullptr) return;
        for (const task_state_base* child : self->awaits) write_task(out, *child, depth + 1);
    }

    event_loop& loop_;
    const task_state_base* current_ = nullptr;
    std::vector<node> nodes_;                       // in the loop's order of pending tasks
    std::vector<address_entry> by_address_;         // sorted by_task
    std::vector<const coro_promise_base*> frames_;  // write_task's, reused
};

/// The call graph of `loop` (which need not be running).
template <class Lazy = void>  // compiled only where called (docs/architecture.md, "Compile time")
[[nodiscard]] inline std::string format_call_graph_of(event_loop& loop) {
    return call_graph_writer<Lazy>(loop).write();
}

/// Lends the writer to every loop's deadlock reports and task dumps
/// (`detail::installed_call_graph`; the store is idempotent). Done before `main` by the
/// translation unit that includes <corio/debug/report_call_graphs.hpp>.
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
inline void install_call_graph_writer() noexcept {
    installed_call_graph.store(&format_call_graph_of<>, std::memory_order_release);
}

}  // namespace corio::detail
