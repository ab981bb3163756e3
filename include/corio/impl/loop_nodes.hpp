#pragma once
/// \file
/// What the event loop holds and runs, apart from tasks: the pending-task link and the task
/// layer's hooks, `call_soon` callbacks, the inbox of other threads' callbacks, and the services a
/// higher layer lends it (readiness watches are in impl/readiness_watch.hpp). Their members that go
/// through the loop are in impl/loop_access.hpp.

#include "corio/detail/frame_allocator.hpp"
#include "corio/detail/intrusive.hpp"
#include "corio/detail/os_mutex.hpp"
#include "corio/detail/timer_heap.hpp"
#include "corio/reactor/operation.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace corio {

class event_loop;

namespace detail {

class task_state_base;

/// A pending task as the loop sees it: linked into the loop's list of pending tasks. When the
/// loop closes it abandons each through the function the task layer registered with the loop
/// (`loop_access::track`): `abandon(link, false)` destroys the task's frame and marks it
/// cancelled; `abandon(link, true)` then drops the loop's reference.
struct task_link : list_node {
    using abandon_fn = void (*)(task_link*, bool release) noexcept;
};

/// What the task layer lends the loop, registered with the first task (`loop_access::track`):
/// the loop knows tasks only as `task_link`s and ready links.
struct task_hooks {
    /// Runs a task's next step (`run` false: the loop closes, and abandons the task itself).
    void (*step)(ready_link*, bool run) noexcept;
    /// See `task_link`.
    task_link::abandon_fn abandon;
    /// One line per waiting task: what it waits for, for deadlock reports.
    std::string (*wait_summary)(event_loop&);
    /// "task 'name' (resumed at file:line in f)" for a task's ready link.
    std::string (*describe_step)(const ready_link*);
};

/// The call graph of a loop's pending tasks, each with its await chain, for deadlock reports
/// and `run`'s task dumps: lent to every loop of the program by the call-graph writer
/// (impl/call_graph_writer.hpp) when a file of the program includes
/// <corio/debug/report_call_graphs.hpp>. Formatting await chains is a large part of what a
/// file compiles and only these reports need it, so other programs do without it, and their
/// reports say how to get it.
inline constinit std::atomic<std::string (*)(event_loop&)> installed_call_graph{nullptr};

/// What the reports say in its place when no call-graph writer was lent.
inline constexpr const char* call_graph_hint =
    "(include <corio/debug/report_call_graphs.hpp> in one file of the program for each "
    "task's await chain)\n";

/// The shared state behind `callback_handle` and `timer_handle`.
/// Invariant: the loop holds one reference while the callback is queued (ready or timer).
class callback_state : public ready_node, public timer_node, public recycled<> {
public:
    explicit callback_state(event_loop& loop) noexcept
        : ready_node(&run_ready), timer_node(&fire_timer), loop_(&loop) {}
    callback_state(const callback_state&) = delete;
    callback_state& operator=(const callback_state&) = delete;
    virtual ~callback_state() = default;

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) delete this;
    }
    void cancel() noexcept;
    [[nodiscard]] bool cancelled() const noexcept { return cancelled_; }
    [[nodiscard]] event_loop& loop() const noexcept { return *loop_; }

    /// When a `call_at` callback is due (`timer_handle::when`).
    loop_clock::time_point when_{};

protected:
    virtual void invoke() = 0;

private:
    static void run_ready(ready_node* node, bool run) noexcept;
    static void fire_timer(timer_node* node, bool fire) noexcept;

    event_loop* loop_;
    int refs_ = 1;
    bool cancelled_ = false;
};

template <class F, class... Args>
class callback_of final : public callback_state {
public:
    template <class G, class... A>
    callback_of(event_loop& loop, G&& fn, A&&... args)
        : callback_state(loop), fn_(std::forward<G>(fn)), args_(std::forward<A>(args)...) {}

private:
    void invoke() override { std::apply(fn_, args_); }

    F fn_;
    std::tuple<Args...> args_;
};

/// Callbacks posted from other threads (`call_soon_threadsafe`), until the loop's thread takes
/// them. The one lock of the loop, held only to append or to swap the batch out.
class threadsafe_inbox {
public:
    /// Appends `fn`; true if the inbox was empty, so that the loop must be woken.
    template <class F>
    bool post(F&& fn) {
        {
            os_mutex::guard guard(mutex_);
            queue_.emplace_back(std::forward<F>(fn));
        }
        return !pending_.exchange(true, std::memory_order_acq_rel);
    }
    /// Whether something was posted since the last `take` (a cheap check on the loop's path).
    [[nodiscard]] bool pending() const noexcept { return pending_.load(std::memory_order_acquire); }
    /// Everything posted so far, in order.
    [[nodiscard]] std::vector<std::function<void()>> take() {
        pending_.store(false, std::memory_order_seq_cst);
        std::vector<std::function<void()>> batch;
        os_mutex::guard guard(mutex_);
        batch.swap(queue_);
        return batch;
    }
    void clear() noexcept {
        os_mutex::guard guard(mutex_);
        queue_.clear();
    }

private:
    os_mutex mutex_;
    std::vector<std::function<void()>> queue_;
    std::atomic<bool> pending_{false};
};

/// Something the loop owns for a higher layer (the executor, the signal handlers): created on
/// first use, shut down when the loop closes, before its tasks are abandoned.
class loop_service {
public:
    loop_service() = default;
    loop_service(const loop_service&) = delete;
    loop_service& operator=(const loop_service&) = delete;
    virtual ~loop_service() = default;
    /// Stops the service; called on the loop's thread, while the loop is not running.
    virtual void shutdown() noexcept = 0;
};

/// Where a loop keeps each kind of service.
enum class service_slot : unsigned { executor, signals, count };

}  // namespace detail

}  // namespace corio
