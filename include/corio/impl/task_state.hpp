#pragma once
/// \file
/// The state of a task: a future whose result comes from a coroutine body the loop steps.

#include "corio/coro.hpp"
#include "corio/detail/intrusive.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/detail/resumer.hpp"
#include "corio/detail/text.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/future_state.hpp"

#include <coroutine>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace corio::detail {

/// What a suspended task waits for, as a dump of the loop's tasks shows it.
struct wait_description {
    /// "sleep", "I/O recv on fd 7", "corio::lock::acquire"...
    std::string what;
    /// The future or task waited for, if the wait is on one.
    const future_state_base* awaits = nullptr;
};

/// The one wait a suspended task is in, registered by the awaiter that suspended it, so that
/// `cancel()` can withdraw it and a dump can say what the task waits for.
///
/// An awaiter passes its two hooks as `cancellable_wait(ops<&cancel, &describe>)`, where
/// `static bool cancel(cancellable_wait*, const std::string&)` and
/// `static void describe(const cancellable_wait*, wait_description&)`.
///
/// `cancel_wait(message)` withdraws the wait; it returns true when the wait itself delivers the
/// cancellation (a cancelled awaited future), false when the task must be woken with
/// `cancelled_error` (the hook then has made sure it is woken). A hook may be called more than
/// once for one wait (each `cancel()` calls it) and must tolerate that.
struct cancellable_wait {
    /// Every awaiter that registers a wait is one of corio's own (see `native_awaiter`).
    using corio_native_awaiter = void;
    using cancel_fn = bool (*)(cancellable_wait*, const std::string& message);
    using describe_fn = void (*)(const cancellable_wait*, wait_description&);
    using withdraw_fn = void (*)(cancellable_wait*);
    struct operations {
        cancel_fn cancel;
        describe_fn describe;
        /// Optional: stop waiting and wake the task at once (it then sees `cancelled_error`).
        /// Only waits on a future have it: what breaks a cycle of tasks awaiting each other.
        withdraw_fn withdraw;
    };
    /// One table per kind of awaiter: `cancellable_wait(ops<&cancel, &describe>)`.
    template <cancel_fn Cancel, describe_fn Describe, withdraw_fn Withdraw = nullptr>
    static constexpr operations ops{Cancel, Describe, Withdraw};

    explicit cancellable_wait(const operations& operations) noexcept : ops_(&operations) {}
    bool cancel_wait(const std::string& message) { return ops_->cancel(this, message); }
    void describe_wait(wait_description& description) const { ops_->describe(this, description); }

    const operations* ops_;
};

class task_state_base : public future_state_base, public ready_link, public task_link {
public:
    /// An unnamed task: as in asyncio, only these take a number (`Task-N`).
    explicit task_state_base(event_loop& loop)
        : future_state_base(loop), id_(loop_access::next_task_id(loop)) {}
    task_state_base(event_loop& loop, std::string&& name) : future_state_base(loop) {
        extras().name = std::move(name);
    }

    /// Takes over the body's frame, which will run at the task's first step.
    void adopt_body(std::coroutine_handle<> body) noexcept { body_ = body; }

    // -- For dumps of the loop's tasks (call_graph.hpp) --------------------------------------

    [[nodiscard]] const task_state_base* as_task() const noexcept override { return this; }
    [[nodiscard]] const char* kind() const noexcept override { return "task"; }
    /// The wait the task is suspended in (null while it runs, or in a wait with nothing to
    /// withdraw, such as `sleep(0)`).
    [[nodiscard]] const cancellable_wait* current_wait() const noexcept { return wait_; }
    /// Whether the body has started (a task not started yet has no await chain).
    [[nodiscard]] bool started() const noexcept { return static_cast<bool>(resume_at_); }
    /// Whether the task is in the ready queue.
    [[nodiscard]] bool scheduled() const noexcept { return scheduled_; }
    /// The body's promise, while the body exists: the top of the task's await chain.
    [[nodiscard]] virtual const coro_promise_base* body_promise() const noexcept = 0;
    /// The innermost coroutine of the task's await chain while the task is suspended in one of
    /// corio's waits (null otherwise): the chain goes up from it through `caller()`.
    [[nodiscard]] const coro_promise_base* innermost() const noexcept {
        if (!resumes_corio_coroutine_) return nullptr;
        return &std::coroutine_handle<coro_promise_base>::from_address(resume_at_.address())
                    .promise();
    }
    /// Where `create_task` was called, recorded in debug mode only.
    [[nodiscard]] await_site created_at() const noexcept {
        return extras_ ? extras_->created_at : await_site{};
    }
    void set_created_at(await_site where) { extras().created_at = where; }

    /// The task behind a ready link the loop tagged as a task's.
    [[nodiscard]] static const task_state_base* from_ready_link(const ready_link* link) noexcept {
        return static_cast<const task_state_base*>(link);
    }

    /// The task running now on the running loop; throws `std::runtime_error` outside a task.
    [[nodiscard]] [[gnu::always_inline]] static task_state_base& current(const char* what) {
        event_loop* loop = loop_access::running();
        task_state_base* task = loop != nullptr ? loop_access::current_task(*loop) : nullptr;
        if (task == nullptr) {
            throw std::runtime_error(std::string(what) + " used outside a corio task");
        }
        return *task;
    }

    [[nodiscard]] std::string name() const {
        if (extras_ && !extras_->name.empty()) return extras_->name;
        return concat({"Task-", decimal(id_)});
    }
    void set_name(std::string name) { extras().name = std::move(name); }

    [[nodiscard]] unsigned cancelling() const noexcept { return cancel_requests_; }
    unsigned uncancel() noexcept {
        if (cancel_requests_ > 0) {
            --cancel_requests_;
            if (cancel_requests_ == 0) must_cancel_ = false;
        }
        return cancel_requests_;
    }

    /// asyncio's `Task.cancel`: asks the task to stop at its current (or next) suspension.
    bool cancel(const std::string& message) override {
        if (done()) return false;
        if (cancel_requests_ < max_cancel_requests) {
            ++cancel_requests_;
        }
        if (!message.empty() || extras_) extras().cancel_message = message;
        if (in_cancel_) {
            // Reached again through its own wait: tasks awaiting each other in a cycle. The
            // cycle ends here: this task stops waiting and sees `cancelled_error` at once.
            must_cancel_ = true;
            if (wait_ != nullptr && wait_->ops_->withdraw != nullptr) wait_->ops_->withdraw(wait_);
            return true;
        }
        // The wait stays registered (asyncio keeps `_fut_waiter`): an awaited task may ignore the
        // cancellation, and a second request must reach it too. Every hook tolerates being
        // called again.
        in_cancel_ = true;
        bool delivered = false;
        try {
            delivered = wait_ != nullptr && wait_->cancel_wait(message);
        } catch (...) {
            in_cancel_ = false;
            throw;
        }
        in_cancel_ = false;
        if (!delivered) must_cancel_ = true;
        return true;
    }

    // -- For awaiters ----------------------------------------------------------------------

    /// Whether a cancellation waits to be delivered at the next suspension point.
    [[nodiscard]] bool cancel_pending() const noexcept { return must_cancel_; }

    /// Called from `await_suspend`: the task suspends at `h`, in `wait` (null when nothing
    /// can be withdrawn, as in `sleep(0)`). Awaiters pass `h` with its promise type, which tells
    /// whether `h` is a corio coroutine, the innermost of the task's await chain.
    template <class Promise>
    void suspend(std::coroutine_handle<Promise> h, cancellable_wait* wait) noexcept {
        resume_at_ = h;
        wait_ = wait;
        resumes_corio_coroutine_ = coro_promise_base::findable<Promise>;
    }

    /// Called from `await_resume`: the wait is over; throws `cancelled_error` if the task was
    /// cancelled meanwhile.
    void end_wait() {
        wait_ = nullptr;
        if (must_cancel_) {
            must_cancel_ = false;
            throw_cancelled();
        }
    }

    /// Called from `await_resume` of a wait whose result must not be lost (an I/O operation that
    /// completed): the wait is over, and a pending cancellation stays pending for the next
    /// suspension point.
    void leave_wait() noexcept { wait_ = nullptr; }

    /// Consumes a pending cancellation (the caller delivers it some other way).
    [[nodiscard]] const std::string& take_pending_cancel() noexcept {
        must_cancel_ = false;
        return cancel_message();
    }

    [[nodiscard]] const std::string& cancel_message() const noexcept {
        static const std::string empty;
        return extras_ ? extras_->cancel_message : empty;
    }

    [[noreturn]] void throw_cancelled() const { throw cancelled_error(cancel_message()); }

    /// For a listener told of the task's completion: lets go of the listener's reference
    /// while it is notified (which no other release may do). The task is destroyed once every
    /// listener has been told, if that was the last reference.
    void release_from_listener() noexcept { --refs_; }

    /// Puts the task in the loop's ready queue (once: a task already queued stays where it is).
    void schedule() noexcept {
        if (scheduled_) return;
        scheduled_ = true;
        loop_access::schedule_task(*loop_, this);
    }

protected:
    [[nodiscard]] std::coroutine_handle<> body() const noexcept { return body_; }

    // Called when the body has finished and its result (or exception) has been taken.
    void finish_body(std::exception_ptr error) noexcept {
        body_ = nullptr;
        if (error) {
            exception_ = std::move(error);
            try {
                std::rethrow_exception(exception_);
            } catch (const cancelled_error&) {
                finish(future_status::cancelled);
                return;
            } catch (...) {
            }
            finish(future_status::finished);
        } else if (must_cancel_) {
            // Cancelled right before the body returned: asyncio still reports it cancelled.
            must_cancel_ = false;
            finish_cancelled_task();
        } else {
            finish(future_status::finished);
        }
    }

private:
    struct extra_fields {
        std::string name;
        std::string cancel_message;
        await_site created_at;
    };

    extra_fields& extras() {
        if (!extras_) extras_ = make_owned<extra_fields>();
        return *extras_;
    }

    void finish_cancelled_task() noexcept {
        list_node::unlink();
        finish_cancelled(cancel_message());
        release();  // the loop's reference
    }

    void finish(future_status status) noexcept {
        list_node::unlink();  // from the loop's pending tasks
        // When another reference is held, the loop's goes before the listeners are told, so that
        // a listener holding the only other one (a gather) may move the result out and let go of
        // it (`release_from_listener`). One place disposes of the state, which keeps this small
        // enough to be inlined.
        const bool only_the_loop = refs_ == 1;
        if (!only_the_loop) --refs_;
        complete(status);
        if (only_the_loop) --refs_;
        if (refs_ == 0) dispose();
    }

    void report_unretrieved() noexcept override {
        report(exception_context{concat({"Task exception was never retrieved", creation_note()}),
                                 exception_, name()});
    }

    // " (created at file:line in f)" when the creation site is known (debug mode).
    [[nodiscard]] std::string creation_note() const {
        const await_site site = created_at();
        if (!site.known()) return {};
        return concat({" (created at ", site.file, ":", decimal(site.line), ")"});
    }

public:
    /// The loop's way to run the task's next step (see `task_hooks`).
    static void step(ready_link* link, bool run) noexcept {
        auto* self = static_cast<task_state_base*>(link);
        self->scheduled_ = false;
        if (!run) return;  // the loop is closing and abandons the task itself
        std::coroutine_handle<> next = self->resume_at_;
        if (!next) {
            // The first step: the body starts, unless the task was cancelled before it ever ran
            // (asyncio throws into the coroutine before its first line: the body never runs).
            if (self->must_cancel_) {
                self->must_cancel_ = false;
                std::exchange(self->body_, nullptr).destroy();
                self->finish_cancelled_task();
                return;
            }
            next = self->body_;
        }
        // Until the task suspends again in one of corio's waits, its chain is unknown (it may
        // wait in another library's awaiter, which does not record it).
        self->resumes_corio_coroutine_ = false;
        event_loop& loop = *self->loop_;
        task_state_base*& current = loop_access::current_task(loop);
        task_state_base* const previous = std::exchange(current, self);
        // NOTE: the task may be gone when this returns (its body finished and nobody else
        // holds it), so nothing here touches `self` afterwards.
        resumer::run(next);
        current = previous;
    }

    /// The loop's way to abandon a pending task when it closes (see `task_link`).
    static void abandon(task_link* link, bool release_reference) noexcept {
        auto* self = static_cast<task_state_base*>(link);
        if (release_reference) {
            self->release();
            return;
        }
        if (self->loop_->get_debug()) {
            try {
                self->report(exception_context{"Task was destroyed but it is pending!" +
                                                   self->creation_note(),
                                               nullptr, self->name()});
            } catch (...) {
            }
        }
        if (std::coroutine_handle<> body = std::exchange(self->body_, nullptr)) body.destroy();
        try {
            self->exception_ = std::make_exception_ptr(cancelled_error("event loop closed"));
        } catch (...) {
        }
        self->status_ = future_status::cancelled;
        self->listeners_.drain([self](listener* l) { l->notify_(l, *self, false); });
    }

private:
    std::coroutine_handle<> body_;
    // Where the task resumes; empty until its first step.
    std::coroutine_handle<> resume_at_;
    cancellable_wait* wait_ = nullptr;
    owned_ptr<extra_fields> extras_;
    std::uint32_t id_ = 0;
    // Cold fields share a byte, so that the state stays within 120 bytes and the hot flags
    // below are plain bytes (a bit field costs a read-modify-write on every store).
    static constexpr unsigned max_cancel_requests = 127;  // saturates: nobody nests that many
    std::uint8_t cancel_requests_ : 7 = 0;
    bool in_cancel_ : 1 = false;  // inside `cancel`, which may come back through a cycle of waits
    bool must_cancel_ = false;
    // Invariant: true exactly while the task's node is in the ready queue.
    bool scheduled_ = true;
    // Whether `resume_at_` is a corio coroutine that suspended in one of corio's waits since the
    // task last resumed: the innermost of the task's await chain (see `innermost()`).
    bool resumes_corio_coroutine_ = false;
};

template <class T>
class task_state final : public task_state_base, public value_slot<T> {
    static constexpr std::size_t alignment = alignof(task_state_base) >= alignof(value_slot<T>)
                                                 ? alignof(task_state_base)
                                                 : alignof(value_slot<T>);
    // Rounded to 8 bytes where `T` allows, not to `new`'s 16: a million 104-byte states of
    // sleeping tasks take 104 MB, not 112.
    static constexpr std::size_t allocation_alignment = alignment <= 8 ? 8 : 16;
    static_assert(alignment <= 16, "corio tasks support results aligned up to 16 bytes");

public:
    using task_state_base::task_state_base;

    static void* operator new(std::size_t size) {
        return frame_allocator::allocate<allocation_alignment>(size);
    }
    static void operator delete(void* p, std::size_t size) noexcept {
        frame_allocator::deallocate<allocation_alignment>(p, size);
    }

    [[nodiscard]] const coro_promise_base* body_promise() const noexcept override {
        if (!body()) return nullptr;
        return &std::coroutine_handle<coro_promise<T>>::from_address(body().address()).promise();
    }

private:
    void on_body_done(std::coroutine_handle<> body) noexcept override {
        auto handle = std::coroutine_handle<coro_promise<T>>::from_address(body.address());
        std::exception_ptr error = handle.promise().exception();
        if (!error) {
            if constexpr (!std::is_void_v<T>) {
                try {
                    if constexpr (std::is_reference_v<T>) {
                        T ref = handle.promise().take_result();
                        this->emplace_value(ref);
                    } else {
                        this->emplace_value(handle.promise().take_result());
                    }
                } catch (...) {
                    error = std::current_exception();
                }
            }
        }
        handle.destroy();
        finish_body(std::move(error));
    }
};

/// A done callback: scheduled through the ready queue when the state completes, and called
/// with a `Handle` (a `task<T>`, `task<>` or `future<T>`) to the state.
template <class Handle, class F>
class done_callback final : public callback_listener, public ready_node, public recycled<> {
public:
    template <class G>
    done_callback(std::uint64_t id, G&& fn)
        : callback_listener(&notify, id), ready_node(&run_ready), fn_(std::forward<G>(fn)) {}

    /// Schedules the callback for a state that is already done.
    void schedule_for(future_state_base& state) noexcept {
        state.add_ref();
        state_ = &state;
        loop_access::schedule(state.loop(), this);
    }

private:
    static void notify(listener* l, future_state_base& state, bool run) noexcept {
        auto* self = static_cast<done_callback*>(l);
        if (run) {
            self->schedule_for(state);
        } else {
            delete self;
        }
    }

    static void run_ready(ready_node* node, bool run) noexcept {
        auto* self = static_cast<done_callback*>(node);
        future_state_base* state = self->state_;
        if (run) {
            try {
                auto handle = handle_access::make<Handle>(state);
                self->fn_(std::as_const(handle));
            } catch (...) {
                state->loop().call_exception_handler(
                    exception_context{"Exception in done callback", std::current_exception(), {}});
            }
        }
        delete self;
        state->release();
    }

    F fn_;
    future_state_base* state_ = nullptr;
};

template <class Handle, class F>
std::uint64_t add_done_callback(future_state_base& state, F&& fn) {
    const std::uint64_t id = loop_access::next_callback_id(state.loop());
    auto* callback = new done_callback<Handle, std::decay_t<F>>(id, std::forward<F>(fn));
    if (state.done()) {
        callback->schedule_for(state);
    } else {
        state.add_listener(callback);
    }
    return id;
}

/// How `co_await` hands out a state's result.
enum class result_mode : std::uint8_t {
    none,       ///< only rethrow (a `task<>` view)
    reference,  ///< `const T&`, for an lvalue handle
    move,       ///< `T`, moved out, for an rvalue handle
};

/// Waits for a future or task to complete, in the awaiting task's frame.
/// Cancelling the waiting task cancels the awaited state too (asyncio's propagation), and the
/// waiter then sees the awaited state's outcome.
template <class T, class State, result_mode Mode>
class future_awaiter : public listener, public cancellable_wait {
public:
    explicit future_awaiter(State& state) noexcept
        : listener(&notify), cancellable_wait(ops<&cancel, &describe, &withdraw>), state_(&state) {}
    future_awaiter(const future_awaiter&) = delete;
    future_awaiter& operator=(const future_awaiter&) = delete;
    ~future_awaiter() { listener::unlink(); }

    [[nodiscard]] bool await_ready() const noexcept { return state_->done(); }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        task_ = &task_state_base::current("co_await of a corio future or task");
        if (static_cast<future_state_base*>(task_) == state_) {
            throw std::runtime_error("a task cannot await itself");
        }
        if (&state_->loop() != &task_->loop()) {
            // Its completion would wake this task from another loop, maybe another thread (as
            // asyncio says, "attached to a different loop").
            throw std::runtime_error(
                "co_await of a corio future or task attached to a different loop");
        }
        state_->add_listener(this);
        if (task_->cancel_pending()) {
            // Cancelled while running: pass it on to what we are about to wait for.
            if (state_->cancel(task_->cancel_message())) {
                (void)task_->take_pending_cancel();
            } else {
                listener::unlink();
                return false;
            }
        }
        task_->suspend(h, this);
        return true;
    }

    decltype(auto) await_resume() {
        if (task_ != nullptr) task_->end_wait();
        state_->check_result();
        if constexpr (Mode == result_mode::reference) {
            return state_->value_ref();
        } else if constexpr (Mode == result_mode::move) {
            return state_->take_value();
        }
    }

private:
    static void notify(listener* l, future_state_base&, bool run) noexcept {
        if (run) static_cast<future_awaiter*>(l)->task_->schedule();
    }

    static bool cancel(cancellable_wait* w, const std::string& message) {
        return static_cast<future_awaiter*>(w)->state_->cancel(message);
    }

    static void describe(const cancellable_wait* w, wait_description& description) {
        description.awaits = static_cast<const future_awaiter*>(w)->state_;
    }

    static void withdraw(cancellable_wait* w) {
        auto* self = static_cast<future_awaiter*>(w);
        if (!self->linked()) return;  // already notified: the task is scheduled
        self->listener::unlink();
        self->task_->schedule();
    }

    State* state_;
    task_state_base* task_ = nullptr;
};

}  // namespace corio::detail

// Needs the whole task state.
#include "corio/impl/foreign_awaiter.hpp"  // IWYU pragma: export
