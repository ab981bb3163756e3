#pragma once
/// \file
/// `corio::event_loop`: the reactor-independent event loop (ready queue, timers, the task
/// registry, thread-safe submission), and `basic_event_loop<Reactor>`, which plugs a reactor in.
/// What the loop holds is in impl/loop_nodes.hpp; how the other layers reach inside it, in
/// impl/loop_access.hpp (included at the end).

#include "corio/callback_handle.hpp"
#include "corio/coro.hpp"
#include "corio/detail/deadline.hpp"
#include "corio/detail/intrusive.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/detail/text.hpp"
#include "corio/detail/timer_heap.hpp"
#include "corio/impl/loop_nodes.hpp"
#include "corio/impl/readiness_watch.hpp"
#include "corio/impl/shard_port.hpp"
#include "corio/reactor/operation.hpp"
#include "corio/reactor/reactor.hpp"
#include "corio/task_options.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <poll.h>
#include <pthread.h>
#include <time.h>

namespace corio {

template <class T = void>
class task;
template <class T = void>
class future;
// The low-level socket operations' types (net/): named here, defined there.
class unique_fd;
class socket_address;

namespace detail {
template <class T>
class task_state;
struct loop_access;
}  // namespace detail

/// What the loop's exception handler is told: asyncio's context dict.
struct exception_context {
    std::string message;
    std::exception_ptr exception;
    /// The name of the task or future concerned, when there is one.
    std::string task_name;
};

/// The event loop: one per thread, driving tasks, callbacks, timers and I/O.
///
/// Not a template: it reaches its reactor through `any_reactor` (reactor/reactor.hpp), so that
/// the backend is chosen at run time; `basic_event_loop<Reactor>` owns the reactor. Except
/// `call_soon_threadsafe`, every member is called on the loop's own thread.
class event_loop {
public:
    using clock = detail::loop_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;
    using exception_handler = std::function<void(event_loop&, const exception_context&)>;

    /// How many ready callbacks may run between two polls of the reactor and the timers while
    /// callbacks keep becoming ready: the bound on how long I/O and timers can be starved.
    static constexpr unsigned poll_interval = 64;

    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;
    virtual ~event_loop() { unregister_live(); }

    /// The reactor's name: `"io_uring"` or `"epoll"`.
    [[nodiscard]] std::string_view backend_name() const noexcept { return io_.name(); }

    // -- Scheduling callbacks ------------------------------------------------------------

    /// Runs `fn(args...)` in the next iteration, after the callbacks already ready.
    template <class F, class... Args>
    callback_handle call_soon(F&& fn, Args&&... args) {
        if (debug_) [[unlikely]]
            check_thread("call_soon");
        auto* state = make_callback(std::forward<F>(fn), std::forward<Args>(args)...);
        ready_.push(state);
        return callback_handle(state);
    }

    /// Runs `fn(args...)` once `delay` has passed on the loop's clock: in the next iteration
    /// when it is zero or negative, never when it is `duration::max()` (of any unit; the sum
    /// saturates at `time_point::max()`).
    template <class Rep, class Period, class F, class... Args>
    timer_handle call_later(std::chrono::duration<Rep, Period> delay, F&& fn, Args&&... args) {
        return call_at(detail::saturating_add(time(), detail::to_loop_duration(delay)),
                       std::forward<F>(fn), std::forward<Args>(args)...);
    }

    /// Runs `fn(args...)` at `when` (a `time()` value): in the next iteration when it has passed,
    /// never when it is `time_point::max()`.
    template <class F, class... Args>
    timer_handle call_at(time_point when, F&& fn, Args&&... args) {
        if (debug_) [[unlikely]]
            check_thread("call_at");
        auto* state = make_callback(std::forward<F>(fn), std::forward<Args>(args)...);
        state->when_ = when;
        try {
            timers_.push(state, when);
        } catch (...) {
            state->release();
            throw;
        }
        return timer_handle(state);
    }

    /// Runs `fn()` on the loop; the one member safe to call from any thread. Wakes the loop if it
    /// is waiting for I/O.
    template <class F>
    void call_soon_threadsafe(F&& fn) {
        if (inbox_.post(std::forward<F>(fn))) io_.wake();
    }

    /// The loop's clock: `clock::now()`, or the virtual clock (see `set_virtual_time`).
    [[nodiscard]] time_point time() const noexcept {
        return virtual_time_ ? virtual_now_ : clock::now();
    }

    // -- Virtual time, for tests ---------------------------------------------------------

    /// Switches the loop to a virtual clock (Tokio's `time::pause`): time stands still while
    /// anything can run, and jumps to the next timer when nothing can (no ready callback, no
    /// executor job in flight), so that an hour of timeouts takes microseconds. I/O still
    /// happens in real time. Only while the loop is not running and has no timer.
    void set_virtual_time(bool enabled) {
        if (running_) throw std::logic_error("set_virtual_time: the loop is running");
        if (!timers_.empty()) throw std::logic_error("set_virtual_time: timers are pending");
        if (enabled && !virtual_time_) virtual_now_ = clock::now();
        virtual_time_ = enabled;
    }
    [[nodiscard]] bool get_virtual_time() const noexcept { return virtual_time_; }
    [[deprecated(
        "use get_virtual_time(): a setting set with set_X is read with get_X")]] [[nodiscard]] bool
    virtual_time() const noexcept {
        return virtual_time_;
    }

    /// Moves the virtual clock `delta` forward and fires the timers due by then: what they
    /// wake is queued behind the callbacks already ready. `std::logic_error` unless the loop
    /// runs on virtual time.
    void advance_time(duration delta) {
        if (!virtual_time_) throw std::logic_error("advance_time: the loop is not on virtual time");
        if (delta < duration::zero()) throw std::invalid_argument("advance_time: negative delta");
        virtual_now_ = detail::saturating_add(virtual_now_, delta);
        fire_due_timers();
    }

    // -- Tasks and futures (defined in task.hpp and future.hpp) ----------------------------

    /// `where` is the caller's site, kept in debug mode for reports about the task. Two
    /// overloads, so that an unnamed task (the common case) builds no `std::string`; the
    /// unnamed one is always inlined (clang 14 would not, and pays its site in memory).
    template <class T>
    [[gnu::always_inline]] inline task<T>
    create_task(coro<T> body, detail::site_record where = detail::site_record::current());
    template <class T, class Name>
        requires std::is_constructible_v<std::string, Name&&>
    task<T> create_task(coro<T> body, Name&& name,
                        detail::site_record where = detail::site_record::current());
    // (The name is a template, never a `std::string` parameter: g++ 12 would convert a braced
    // `{.name = "x", .eager = true}` to a string and pick that overload.)
    template <class T>
    task<T> create_task(coro<T> body, task_options options,
                        detail::site_record where = detail::site_record::current());
    template <class T = void>
    future<T> create_future();

    // -- Low-level socket operations (defined in net/sock.hpp: include it to call them) -----
    //
    // On non-blocking descriptors; the buffers must stay alive until the operation is done.
    // Errors are `std::system_error`; cancellation withdraws the operation in the kernel.
    // Templates only to be compiled where called (docs/architecture.md, "Compile time").

    /// Receives at most `buffer.size()` bytes; returns how many (0 at end of stream).
    template <class = void>
    coro<std::size_t> sock_recv_into(int fd, std::span<std::byte> buffer);
    /// Receives at most `max_bytes` bytes (an empty string at end of stream).
    template <class = void>
    coro<std::string> sock_recv(int fd, std::size_t max_bytes);
    /// Sends all of `data` (several sends if need be). A closed peer is `std::system_error`
    /// (`EPIPE` or `ECONNRESET`), never SIGPIPE.
    template <class = void>
    coro<> sock_sendall(int fd, std::span<const std::byte> data);
    template <class = void>
    coro<> sock_sendall(int fd, std::string_view data);
    /// Accepts a connection: the new socket (non-blocking, close-on-exec) and the peer's address.
    template <class = void>
    coro<std::pair<unique_fd, socket_address>> sock_accept(int fd);
    /// Connects `fd` to `address`.
    template <class = void>
    coro<> sock_connect(int fd, socket_address address);

    // -- Outside the loop (defined in executor.hpp and signals.hpp) -------------------------

    /// Runs `fn()` on a worker thread of the loop's executor; the future (completed on the
    /// loop's thread) holds its result or its exception. Cancelling the future does not stop
    /// `fn`, whose result is then dropped.
    template <class F>
    future<std::invoke_result_t<std::decay_t<F>&>> run_in_executor(F&& fn);

    /// Calls `fn()` on the loop (never in signal context) each time the process receives
    /// `signo`; replaces an earlier handler of `signo`. Throws `std::invalid_argument` for
    /// signals that cannot be caught (SIGKILL, SIGSTOP) or are out of range.
    void add_signal_handler(int signo, std::function<void()> fn);
    /// Removes the handler of `signo` and restores what the process did before; false if there
    /// was none.
    bool remove_signal_handler(int signo);

    /// Calls `callback` (through the ready queue) whenever `fd` is readable, until
    /// `remove_reader(fd)`; replaces an earlier reader of `fd`.
    void add_reader(int fd, std::function<void()> callback);
    /// Stops watching `fd` for reading; false if it was not watched.
    bool remove_reader(int fd) noexcept;
    /// As `add_reader`, for writability.
    void add_writer(int fd, std::function<void()> callback);
    bool remove_writer(int fd) noexcept;

    // -- Running and stopping ------------------------------------------------------------

    /// Runs until `stop()` is called (one iteration at least: a `stop()` before lets the
    /// callbacks already ready run once).
    void run_forever() {
        enter();
        struct leave_guard {
            event_loop* loop;
            ~leave_guard() { loop->leave(); }
        } guard{this};
        // As asyncio: at least one iteration, even when stop() came first.
        for (;;) {
            run_once();
            if (stopping_) break;
        }
    }

    /// Runs `body` as a task until it is done; returns its result or rethrows its exception.
    template <class T>
    T run_until_complete(coro<T> body);
    /// Runs until `t` is done; returns its result or rethrows its exception.
    template <class T>
    T run_until_complete(task<T> t);

    /// Makes `run_forever` return after the current batch of callbacks.
    void stop() noexcept { stopping_ = true; }

    [[nodiscard]] bool is_running() const noexcept { return running_; }
    [[nodiscard]] bool is_closed() const noexcept { return closed_; }

    /// Destroys every pending task's frame (marking it cancelled) and every queued callback,
    /// then releases the loop's resources. Idempotent; refused while the loop runs.
    void close() {
        if (running_) throw std::runtime_error("Cannot close a running event loop");
        if (closed_) return;
        closed_ = true;
        // The executor's workers are joined before anything is torn down; the results they
        // posted are dropped with the thread-safe queue.
        for (auto& service : services_) {
            if (service) service->shutdown();
        }
        drain_io();
        abandon_everything();
        readers_.release_all();
        writers_.release_all();
    }

    // -- Errors and debugging ------------------------------------------------------------

    /// Replaces the handler of errors nobody else could see (an exception never retrieved,
    /// an exception escaping a callback). An empty function restores the default, which
    /// prints to stderr.
    void set_exception_handler(exception_handler handler) { handler_ = std::move(handler); }
    [[nodiscard]] const exception_handler& get_exception_handler() const noexcept {
        return handler_;
    }

    /// Calls the exception handler (or the default one if none is set, or if it throws).
    void call_exception_handler(const exception_context& context) noexcept {
        if (handler_) {
            try {
                handler_(*this, context);
                return;
            } catch (...) {
                default_exception_handler(exception_context{
                    "Unhandled error in exception handler", std::current_exception(), {}});
            }
        }
        default_exception_handler(context);
    }

    /// Prints `context` to stderr.
    static void default_exception_handler(const exception_context& context) noexcept {
        try {
            std::string text = detail::concat({"corio: ", context.message});
            if (!context.task_name.empty()) {
                text += " (task ";
                text += context.task_name;
                text += ')';
            }
            if (context.exception) {
                try {
                    std::rethrow_exception(context.exception);
                } catch (const std::exception& e) {
                    text += ": ";
                    text += e.what();
                } catch (...) {
                    text += ": unknown exception";
                }
            }
            text += '\n';
            std::fputs(text.c_str(), stderr);
            std::fflush(stderr);
        } catch (...) {
        }
    }

    /// asyncio's debug mode: slow callbacks and task steps reported, tasks' creation sites kept
    /// for reports, calls from the wrong thread refused, coroutines never awaited reported,
    /// deadlocks detected (unless `set_detect_deadlock(false)` came after). Leaving debug mode
    /// turns deadlock detection off again if debug mode is what turned it on.
    void set_debug(bool enabled) noexcept {
        debug_ = enabled;
        if (enabled && !detect_deadlock_) {
            detect_deadlock_ = true;
            deadlock_detection_from_debug_ = true;
        } else if (!enabled && deadlock_detection_from_debug_) {
            detect_deadlock_ = false;
            deadlock_detection_from_debug_ = false;
        }
    }
    [[nodiscard]] bool get_debug() const noexcept { return debug_; }

    /// In debug mode, a callback or task step running longer than this is reported (asyncio's
    /// `slow_callback_duration`, 100 ms by default).
    void set_slow_callback_duration(duration limit) noexcept { slow_callback_duration_ = limit; }
    [[nodiscard]] duration get_slow_callback_duration() const noexcept {
        return slow_callback_duration_;
    }
    [[deprecated("use get_slow_callback_duration(): a setting set with set_X is read with "
                 "get_X")]] [[nodiscard]] duration
    slow_callback_duration() const noexcept {
        return slow_callback_duration_;
    }

    /// When on, a loop that has nothing to do and nothing that could wake it (no ready
    /// callback, timer, I/O, executor job or signal handler) while tasks still wait throws
    /// `deadlock_error` from `run_forever` / `run_until_complete`, naming the waiting tasks
    /// and what each waits on, instead of sleeping forever. Off by default outside debug mode:
    /// another thread may still complete a future through `call_soon_threadsafe`.
    void set_detect_deadlock(bool enabled) noexcept {
        detect_deadlock_ = enabled;
        deadlock_detection_from_debug_ = false;
    }
    [[nodiscard]] bool get_detect_deadlock() const noexcept { return detect_deadlock_; }

protected:
    /// `io` is the loop's reactor (see reactor/reactor.hpp); `basic_event_loop` owns it and
    /// binds it here before constructing it, and closes the loop before destroying it.
    explicit event_loop(any_reactor& io) noexcept : io_(io) { register_live(); }

private:
    friend struct detail::loop_access;
    friend class detail::callback_state;

    // Out of line, so that `create_task` stays small enough to inline.
    [[noreturn]] [[gnu::cold]] [[gnu::noinline]] void refuse_task() const {
        // Called when the loop is closed or the body empty.
        if (closed_) throw std::runtime_error("Event loop is closed");
        throw std::invalid_argument("create_task: empty coro");
    }

    // What both `create_task` overloads share, once the new task's state exists.
    template <class T>
    task<T> start_task(coro<T>& body, detail::task_state<T>* state,
                       const detail::site_record& where, bool eager = false);

    // The new state's one reference is the loop's; the returned handle takes another.
    template <class F, class... Args>
    detail::callback_state* make_callback(F&& fn, Args&&... args) {
        if (closed_) throw std::runtime_error("Event loop is closed");
        return new detail::callback_of<std::decay_t<F>, std::decay_t<Args>...>(
            *this, std::forward<F>(fn), std::forward<Args>(args)...);
    }

    void enter() {
        if (closed_) throw std::runtime_error("Event loop is closed");
        if (running_) throw std::runtime_error("This event loop is already running");
        if (running_loop_ != nullptr) {
            throw std::runtime_error("Cannot run the event loop while another loop is running");
        }
        running_ = true;
        running_loop_ = this;
        owner_thread_ = ::pthread_self();
        if (debug_) detail::never_awaited_reporter = &report_never_awaited;
    }

    void leave() noexcept {
        running_ = false;
        stopping_ = false;
        running_loop_ = nullptr;
        detail::never_awaited_reporter = nullptr;
    }

    [[gnu::cold]] void check_thread(const char* what) const {
        if (running_ && ::pthread_equal(::pthread_self(), owner_thread_) == 0) {
            throw std::runtime_error(std::string("Non-thread-safe operation ") + what +
                                     " invoked on an event loop other than the current one");
        }
    }

    // Whether anything could still make a task runnable: a timer, I/O in flight (readers and
    // writers are I/O) other than corio's own background watches (a signalfd), an executor
    // job, a signal handler, a call from another thread (other shards are the shard port's to
    // judge: the calls waiting for them are executor jobs only for virtual time's sake).
    [[nodiscard]] bool could_wake() const noexcept {
        const std::size_t shard_calls = port_ != nullptr ? port_->calls_in_flight() : 0;
        return !timers_.empty() || outside_work_ > 0 || executor_jobs_ > shard_calls ||
               inbox_.pending() ||
               io_.in_flight_count() > readers_.background_in_flight() +
                                           writers_.background_in_flight() + background_io_;
    }

    // Debug mode's reports (impl/loop_debug.hpp).
    static void report_never_awaited(const detail::coro_promise_base& promise) noexcept;
    [[noreturn]] [[gnu::cold]] void throw_deadlock();
    [[gnu::cold]] void run_batch_timed(detail::ready_queue& batch);
    void report_slow(const std::string& what, duration took) noexcept;

    // One iteration, as asyncio's `_run_once`: poll I/O and timers, then run the callbacks that
    // are ready now; those they make ready wait for the next iteration.
    [[gnu::always_inline]] void run_once() {
        const bool have_ready = !ready_.empty();
        if (!have_ready || ticks_since_poll_ >= poll_interval) poll_and_fire_timers(have_ready);
        detail::ready_queue batch;
        ready_.take_all(batch);
        if (debug_) [[unlikely]] {
            run_batch_timed(batch);
            return;
        }
        while (const detail::ready_item item = batch.pop()) {
            ++ticks_since_poll_;
            run_item(item, true);
        }
    }

    void run_item(detail::ready_item item, bool run) noexcept {
        if (item.task) {
            task_step_(item.link, run);
        } else {
            auto* node = static_cast<detail::ready_node*>(item.link);
            node->run_(node, run);
        }
    }

    void poll_and_fire_timers(bool have_ready) {
        std::optional<std::chrono::nanoseconds> timeout;
        bool may_jump = false;
        bool stuck = false;
        if (have_ready || stopping_) {
            timeout = std::chrono::nanoseconds{0};
        } else if (!timers_.empty()) {
            if (!virtual_time_) [[likely]] {
                timeout = detail::time_until(timers_.next_deadline(), time());
            } else if (executor_jobs_ == 0) {
                // Collect what I/O has to say, then jump if nothing can run.
                timeout = std::chrono::nanoseconds{0};
                may_jump = true;
            }
        } else if (detect_deadlock_ && (port_ != nullptr || !pending_tasks_.empty()) &&
                   !could_wake()) {
            // Only another shard could wake a shard: whether all are stuck is its group's call.
            if (port_ == nullptr) throw_deadlock();
            stuck = true;
        }
        if (port_ != nullptr) {
            if (port_->flush(timeout != std::chrono::nanoseconds{0})) {
                timeout = std::chrono::nanoseconds{0};
            } else if (stuck) {
                port_->stuck();
            }
        }
        io_.poll(timeout);
        ticks_since_poll_ = 0;
        if (port_ != nullptr) port_->receive();  // first: it ends being stuck, before the inbox
        drain_threadsafe();
        if (may_jump && ready_.empty() && !timers_.empty()) {
            virtual_now_ = std::max(virtual_now_, timers_.next_deadline());
        }
        fire_due_timers();
    }

    void fire_due_timers() noexcept {
        if (timers_.empty()) return;
        const time_point now = time();
        while (!timers_.empty() && timers_.next_deadline() <= now) {
            detail::timer_node* node = timers_.pop();
            node->fire_(node, true);
        }
    }

    void drain_threadsafe() {
        if (!inbox_.pending()) return;
        for (auto& fn : inbox_.take()) call_soon(std::move(fn));
    }

    // Withdraws every I/O operation and waits until the kernel holds none: only then may the
    // frames they live in be destroyed. Cancelled operations complete within a poll or two; one
    // that takes longer is reported once (the wait goes on, as giving up would let the kernel
    // write into freed frames), and so is each error a poll reports, rather than swallowed.
    void drain_io() noexcept {
        io_.cancel_all();
        const time_point started = clock::now();
        bool reported_slow = false;
        while (!io_.idle()) {
            try {
                io_.poll(std::chrono::milliseconds(10));
            } catch (...) {
                call_exception_handler(exception_context{
                    "close(): polling for cancelled I/O failed", std::current_exception(), {}});
                const timespec pause{0, 10 * 1000 * 1000};  // 10 ms
                ::nanosleep(&pause, nullptr);
            }
            if (!reported_slow && clock::now() - started >= std::chrono::seconds(1)) {
                reported_slow = true;
                call_exception_handler(exception_context{
                    "close(): " + std::to_string(io_.in_flight_count()) +
                        " I/O operation(s) still in flight 1 s after cancelling them; waiting",
                    nullptr,
                    {}});
            }
        }
    }

    void abandon_everything() noexcept {
        // Destroying a frame may unlink timers and waiters, and may make other tasks ready;
        // the loop keeps its reference on every pending task until all frames are gone, so
        // that queued task nodes stay valid while the ready queue is discarded.
        detail::intrusive_list<detail::task_link> abandoned;
        while (detail::task_link* link = pending_tasks_.pop_front()) {
            abandoned.push_back(link);
            task_hooks_->abandon(link, false);
        }
        while (const detail::ready_item item = ready_.pop()) run_item(item, false);
        while (!timers_.empty()) {
            detail::timer_node* node = timers_.pop();
            node->fire_(node, false);
        }
        timers_.shrink();
        while (detail::task_link* link = abandoned.pop_front()) task_hooks_->abandon(link, true);
        inbox_.clear();
    }

    void register_live() noexcept {
        next_live_ = live_loops_;
        live_loops_ = this;
    }
    void unregister_live() noexcept {
        for (event_loop** p = &live_loops_; *p != nullptr; p = &(*p)->next_live_) {
            if (*p == this) {
                *p = next_live_;
                return;
            }
        }
    }

    any_reactor& io_;
    detail::ready_queue ready_;
    detail::timer_heap timers_;
    unsigned ticks_since_poll_ = 0;
    bool running_ = false;
    bool stopping_ = false;
    bool closed_ = false;
    bool debug_ = false;
    bool detect_deadlock_ = false;
    bool deadlock_detection_from_debug_ = false;  // set_debug(true) turned it on
    bool virtual_time_ = false;
    time_point virtual_now_{};
    duration slow_callback_duration_ = std::chrono::milliseconds(100);
    pthread_t owner_thread_{};  // the thread running the loop, while it runs

    detail::task_state_base* current_task_ = nullptr;
    detail::intrusive_list<detail::task_link> pending_tasks_;
    const detail::task_hooks* task_hooks_ = nullptr;  // set with the first task
    // `task_hooks_->step`, one load nearer (every task step goes through it).
    void (*task_step_)(detail::ready_link*, bool run) noexcept = nullptr;
    std::uint32_t task_counter_ = 0;
    std::uint64_t callback_counter_ = 0;

    exception_handler handler_;
    detail::owned_ptr<detail::loop_service>
        services_[static_cast<unsigned>(detail::service_slot::count)];
    // Sources of work that may arrive from outside the loop (signal handlers...), and executor
    // jobs in flight (which also hold virtual time still).
    std::size_t outside_work_ = 0;
    // corio's own operations in flight that wake no task (a dropped child process's reaper).
    std::size_t background_io_ = 0;
    std::size_t executor_jobs_ = 0;
    detail::watch_set readers_{POLLIN};
    detail::watch_set writers_{POLLOUT};

    detail::threadsafe_inbox inbox_;
    // The loop's shard, when it is one of `run_sharded`'s.
    detail::shard_port* port_ = nullptr;

    event_loop* next_live_ = nullptr;

    static inline thread_local constinit event_loop* running_loop_ = nullptr;
    // The loops alive on this thread, so that a handle outliving its loop can tell.
    static inline thread_local constinit event_loop* live_loops_ = nullptr;
};

/// An event loop driving the reactor `Reactor`, chosen at compile time.
template <reactor Reactor>
class basic_event_loop final : public event_loop {
public:
    template <class... Args>
    explicit basic_event_loop(Args&&... args)
        : event_loop(reactor_), reactor_(std::forward<Args>(args)...) {}
    ~basic_event_loop() override {
        // Pending frames may hold operations the reactor still points at: destroy them first.
        close();
    }

    [[nodiscard]] Reactor& get_reactor() noexcept { return reactor_.get(); }

private:
    reactor_model<Reactor> reactor_;
};

/// Prints `<event_loop backend=epoll running=true closed=false debug=false>`.
inline std::ostream& operator<<(std::ostream& out, const event_loop& loop) {
    return out << "<event_loop backend=" << loop.backend_name()
               << " running=" << (loop.is_running() ? "true" : "false")
               << " closed=" << (loop.is_closed() ? "true" : "false")
               << " debug=" << (loop.get_debug() ? "true" : "false") << '>';
}

/// The loop running in this thread; throws `std::runtime_error` when none is.
[[nodiscard]] event_loop& get_running_loop();

inline void event_loop::add_reader(int fd, std::function<void()> callback) {
    if (closed_) throw std::runtime_error("Event loop is closed");
    if (debug_) [[unlikely]]
        check_thread("add_reader");
    readers_.add(*this, fd, std::move(callback));
}
inline bool event_loop::remove_reader(int fd) noexcept { return readers_.remove(fd); }
inline void event_loop::add_writer(int fd, std::function<void()> callback) {
    if (closed_) throw std::runtime_error("Event loop is closed");
    if (debug_) [[unlikely]]
        check_thread("add_writer");
    writers_.add(*this, fd, std::move(callback));
}
inline bool event_loop::remove_writer(int fd) noexcept { return writers_.remove(fd); }

}  // namespace corio

// What needs the whole loop: its nodes' members, the other layers' way in, debug reports.
#include "corio/impl/loop_access.hpp"
#include "corio/impl/loop_debug.hpp"
