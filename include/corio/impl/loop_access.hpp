#pragma once
/// \file
/// `detail::loop_access`, the loop's internals as the other layers of corio reach them, and the
/// members of the loop's nodes (impl/loop_nodes.hpp) that go through it. event_loop.hpp
/// includes this header at its end: everything here needs the whole loop.

#include "corio/detail/owned_ptr.hpp"
#include "corio/event_loop.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <utility>

namespace corio::detail {

/// The loop's internals, for the other layers of corio only.
struct loop_access {
    [[nodiscard]] static event_loop* running() noexcept { return event_loop::running_loop_; }
    static void schedule(event_loop& loop, ready_node* node) noexcept { loop.ready_.push(node); }
    static void schedule_task(event_loop& loop, ready_link* task) noexcept {
        loop.ready_.push_task(task);
    }
    static bool submit_io(event_loop& loop, io_operation& op) { return loop.io_.submit(op); }
    static void cancel_io(event_loop& loop, io_operation& op) noexcept { loop.io_.cancel(op); }
    static void forget_fd(event_loop& loop, int fd) noexcept { loop.io_.forget(fd); }
    static void add_timer(event_loop& loop, timer_node* node, event_loop::time_point when) {
        loop.timers_.push(node, when);
    }
    [[nodiscard]] static event_loop::time_point timer_deadline(const event_loop& loop,
                                                               const timer_node* node) noexcept {
        return loop.timers_.deadline(node);
    }
    static void remove_timer(event_loop& loop, timer_node* node) noexcept {
        if (node->queued()) loop.timers_.remove(node);
    }
    [[nodiscard]] static task_state_base*& current_task(event_loop& loop) noexcept {
        return loop.current_task_;
    }
    static void track(event_loop& loop, task_link* link, const task_hooks& hooks) noexcept {
        loop.task_hooks_ = &hooks;
        loop.task_step_ = hooks.step;
        loop.pending_tasks_.push_back(link);
    }
    /// `add_reader` for corio's own watches (see `readiness_watch::set_background`).
    static void add_background_reader(event_loop& loop, int fd, std::function<void()> callback) {
        loop.add_reader(fd, std::move(callback));
        loop.readers_.set_background(fd);
    }
    static void check_thread(const event_loop& loop, const char* what) {
        if (loop.debug_) [[unlikely]]
            loop.check_thread(what);
    }
    [[nodiscard]] static std::uint32_t next_task_id(event_loop& loop) noexcept {
        return ++loop.task_counter_;
    }
    [[nodiscard]] static std::uint64_t next_callback_id(event_loop& loop) noexcept {
        return ++loop.callback_counter_;
    }
    [[nodiscard]] static bool closed(const event_loop& loop) noexcept { return loop.closed_; }
    [[nodiscard]] static owned_ptr<loop_service>& service(event_loop& loop,
                                                          service_slot slot) noexcept {
        return loop.services_[static_cast<unsigned>(slot)];
    }
    /// Counts a source of work from outside the loop (a signal handler) in or out: while there
    /// is one, a loop with nothing else to do is waiting, not deadlocked.
    static void add_outside_work(event_loop& loop, std::ptrdiff_t delta) noexcept {
        loop.outside_work_ =
            static_cast<std::size_t>(static_cast<std::ptrdiff_t>(loop.outside_work_) + delta);
    }
    /// Counts one of corio's own operations that wakes no task (a reaper's poll) in or out:
    /// while only those are in flight, a loop whose tasks all wait is deadlocked.
    static void add_background_io(event_loop& loop, std::ptrdiff_t delta) noexcept {
        loop.background_io_ =
            static_cast<std::size_t>(static_cast<std::ptrdiff_t>(loop.background_io_) + delta);
    }
    /// Counts an executor job in or out: like outside work, and virtual time stands still
    /// while one runs.
    static void add_executor_job(event_loop& loop, std::ptrdiff_t delta) noexcept {
        loop.executor_jobs_ =
            static_cast<std::size_t>(static_cast<std::ptrdiff_t>(loop.executor_jobs_) + delta);
    }
    template <class F>
    static void for_each_pending_task(event_loop& loop, F&& f) {
        loop.pending_tasks_.for_each(std::forward<F>(f));
    }
    [[nodiscard]] static bool has_pending_tasks(const event_loop& loop) noexcept {
        return !loop.pending_tasks_.empty();
    }
    /// Makes `loop` one of `run_sharded`'s shards (null: no longer).
    static void set_shard_port(event_loop& loop, shard_port* port) noexcept { loop.port_ = port; }
    [[nodiscard]] static const shard_port* shard_port_of(const event_loop& loop) noexcept {
        return loop.port_;
    }
    /// Makes the loop's poll return promptly; from any thread.
    static void wake(event_loop& loop) noexcept { loop.io_.wake(); }
    /// Whether another thread's `call_soon_threadsafe` waits for `loop`; from any thread.
    [[nodiscard]] static bool inbox_pending(const event_loop& loop) noexcept {
        return loop.inbox_.pending();
    }
    /// Whether `loop` still exists on this thread.
    [[nodiscard]] static bool alive(const event_loop* loop) noexcept {
        for (const event_loop* p = event_loop::live_loops_; p != nullptr; p = p->next_live_) {
            if (p == loop) return true;
        }
        return false;
    }
};

inline void callback_state::cancel() noexcept {
    if (cancelled_) return;
    cancelled_ = true;
    if (queued()) {
        loop_access::remove_timer(*loop_, this);
        release();
    }
}

inline void callback_state::run_ready(ready_node* node, bool run) noexcept {
    auto* self = static_cast<callback_state*>(node);
    if (run && !self->cancelled_) {
        try {
            self->invoke();
        } catch (...) {
            self->loop_->call_exception_handler(
                exception_context{"Exception in callback", std::current_exception(), {}});
        }
    }
    self->release();
}

inline void callback_state::fire_timer(timer_node* node, bool fire) noexcept {
    auto* self = static_cast<callback_state*>(node);
    if (fire) {
        // The loop's reference moves from the timer heap to the ready queue.
        loop_access::schedule(*self->loop_, self);
    } else {
        self->release();
    }
}

inline void readiness_watch::start() {
    in_flight_ = true;
    if (loop_access::submit_io(*loop_, *this)) on_complete(this, result_);
}

inline bool readiness_watch::stop() noexcept {
    stopped_ = true;
    if (in_flight_) loop_access::cancel_io(*loop_, *this);
    return !in_flight_ && !queued_;
}

inline void readiness_watch::on_complete(io_operation* op, int result) noexcept {
    auto* self = static_cast<readiness_watch*>(op);
    self->in_flight_ = false;
    if (self->stopped_ || result == -ECANCELED) {
        self->settle();
        return;
    }
    // Any other result (ready, or an error such as POLLNVAL) is the callback's to look at.
    self->queued_ = true;
    loop_access::schedule(*self->loop_, self);
}

inline void readiness_watch::run_ready(ready_node* node, bool run) noexcept {
    auto* self = static_cast<readiness_watch*>(node);
    // `queued_` stays set while the callback runs, so that a callback removing its own watch
    // (asyncio's one-shot pattern) does not delete it under our feet.
    if (run && !self->stopped_) {
        try {
            self->callback_();
        } catch (...) {
            self->loop_->call_exception_handler(exception_context{
                "Exception in reader/writer callback", std::current_exception(), {}});
        }
    }
    self->queued_ = false;
    if (!self->stopped_ && run && !loop_access::closed(*self->loop_)) {
        try {
            self->start();  // level-triggered, as asyncio's readers: ready again, called again
        } catch (...) {
            self->loop_->call_exception_handler(exception_context{
                "Cannot watch a descriptor any more", std::current_exception(), {}});
        }
    }
    self->settle();
}

[[noreturn]] [[gnu::cold]] [[gnu::noinline]] inline void throw_no_running_loop() {
    throw std::runtime_error("no running event loop");
}

}  // namespace corio::detail

namespace corio {

inline event_loop& get_running_loop() {
    event_loop* loop = detail::loop_access::running();
    if (loop == nullptr) [[unlikely]]
        detail::throw_no_running_loop();
    return *loop;
}

}  // namespace corio
