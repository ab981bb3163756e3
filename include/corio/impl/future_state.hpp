#pragma once
/// \file
/// The shared state behind `future<T>` and `task<T>`: status, result or exception, and the
/// listeners (waiting tasks and done callbacks) told when it completes.

#include "corio/coro.hpp"
#include "corio/detail/frame_allocator.hpp"
#include "corio/detail/intrusive.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace corio::detail {

class future_state_base;
class task_state_base;

/// Someone to tell when a future completes: a task waiting in its frame, a done callback, a
/// combinator. `notify_(l, state, false)` discards it instead (the state is going away).
/// Notification unlinks the listener first, so it may destroy or relink itself; it must not
/// release a reference on any state (it may schedule work that does), except its own on a
/// task that notifies it, through `task_state_base::release_from_listener`.
///
/// Linked through `pprev_`, the link that points to it, so that it can unlink itself in O(1)
/// without knowing its list, whose head is then a single pointer (see `listener_list`).
struct listener {
    using notify_fn = void (*)(listener*, future_state_base&, bool run) noexcept;
    explicit listener(notify_fn notify) noexcept : notify_(notify) {}

    [[nodiscard]] bool linked() const noexcept { return pprev_ != nullptr; }

    void unlink() noexcept {
        if (pprev_ == nullptr) return;
        *pprev_ = next_;
        if (next_ != nullptr) next_->pprev_ = pprev_;
        next_ = nullptr;
        pprev_ = nullptr;
    }

    listener* next_ = nullptr;
    listener** pprev_ = nullptr;
    notify_fn notify_;
};

/// A future's listeners, in one pointer (every task and future has one). Listeners are added at
/// the front and told oldest first: `drain` reverses the chain once, when the future completes.
class listener_list {
public:
    listener_list() noexcept = default;
    listener_list(const listener_list&) = delete;
    listener_list& operator=(const listener_list&) = delete;

    [[nodiscard]] bool empty() const noexcept { return first_ == nullptr; }

    void push(listener* l) noexcept {
        l->next_ = first_;
        l->pprev_ = &first_;
        if (first_ != nullptr) first_->pprev_ = &l->next_;
        first_ = l;
    }

    /// Calls `f(l)` on each listener, newest first; `f` may unlink `l`.
    template <class F>
    void for_each(F&& f) {
        for (listener* l = first_; l != nullptr;) {
            listener* next = l->next_;
            f(l);
            l = next;
        }
    }

    /// Unlinks every listener, oldest first, and calls `f(l)` right after unlinking `l`. What
    /// `f` does to the other listeners (unlinking them) and to this list (adding to it) is safe.
    template <class F>
    [[gnu::always_inline]] void drain(F&& f) {
        while (listener* only = first_) {
            // One listener is the common case: the task or the combinator awaiting this one.
            if (only->next_ != nullptr) [[unlikely]] {
                drain_several(f);
                return;
            }
            only->unlink();
            f(only);
        }
    }

private:
    template <class F>
    [[gnu::noinline]] void drain_several(F& f) {
        while (first_ != nullptr) {
            // The chain moves to `oldest`, reversed, and relinked so that each node's `pprev_`
            // is right again.
            listener* oldest = nullptr;
            for (listener* l = std::exchange(first_, nullptr); l != nullptr;) {
                listener* next = l->next_;
                l->next_ = oldest;
                oldest = l;
                l = next;
            }
            oldest->pprev_ = &oldest;
            for (listener* l = oldest; l->next_ != nullptr; l = l->next_) {
                l->next_->pprev_ = &l->next_;
            }
            while (listener* l = oldest) {
                l->unlink();
                f(l);
            }
        }
    }

    listener* first_ = nullptr;
};

/// A done callback among the listeners: it has an id, for `remove_done_callback`. Every one
/// notifies through `callback_listener::notify`, which is how `remove_callback` tells them from
/// the other listeners (tasks waiting in their frames and combinators' slots, which thus carry
/// no id).
struct callback_listener : listener {
    callback_listener(notify_fn notify_callback, std::uint64_t id) noexcept
        : listener(&notify), notify_callback_(notify_callback), id_(id) {}

    static void notify(listener* l, future_state_base& state, bool run) noexcept {
        static_cast<callback_listener*>(l)->notify_callback_(l, state, run);
    }
    [[nodiscard]] static bool has_id(const listener* l, std::uint64_t id) noexcept {
        return l->notify_ == &notify && static_cast<const callback_listener*>(l)->id_ == id;
    }

    notify_fn notify_callback_;
    std::uint64_t id_;
};

enum class future_status : std::uint8_t { pending, finished, cancelled };

class future_state_base : public coro_owner, public recycled<> {
public:
    explicit future_state_base(event_loop& loop) noexcept : loop_(&loop) {}
    future_state_base(const future_state_base&) = delete;
    future_state_base& operator=(const future_state_base&) = delete;

    ~future_state_base() override {
        listeners_.drain([this](listener* l) { l->notify_(l, *this, false); });
    }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) dispose();
    }

    [[nodiscard]] bool done() const noexcept { return status_ != future_status::pending; }
    /// Whether the caller's reference is the only one (its result may then be moved out).
    [[nodiscard]] bool unique() const noexcept { return refs_ == 1; }
    [[nodiscard]] bool cancelled() const noexcept { return status_ == future_status::cancelled; }
    [[nodiscard]] future_status status() const noexcept { return status_; }
    [[nodiscard]] event_loop& loop() const noexcept { return *loop_; }

    /// Throws what `result()` throws, except for the value: `invalid_state_error` while
    /// pending, `cancelled_error` if cancelled, the stored exception if any.
    void check_result() {
        if (status_ == future_status::pending) throw invalid_state_error("Result is not set.");
        retrieved_ = true;
        if (exception_) std::rethrow_exception(exception_);
        if (status_ == future_status::cancelled) throw cancelled_error();
    }

    /// asyncio's `exception()`: the stored exception (null when the future succeeded).
    [[nodiscard]] std::exception_ptr exception() {
        if (status_ == future_status::pending) {
            throw invalid_state_error("Exception is not set.");
        }
        if (status_ == future_status::cancelled) {
            if (exception_) std::rethrow_exception(exception_);
            throw cancelled_error();
        }
        retrieved_ = true;
        return exception_;
    }

    /// What ended the future, without throwing it: its exception, or the `cancelled_error` of a
    /// cancelled future; null while pending or after success. Marks the exception retrieved.
    [[nodiscard]] std::exception_ptr outcome_exception() noexcept {
        if (status_ == future_status::pending) return nullptr;
        retrieved_ = true;
        if (status_ == future_status::cancelled && !exception_) {
            try {
                return std::make_exception_ptr(cancelled_error());
            } catch (...) {
                return std::current_exception();
            }
        }
        return exception_;
    }

    // -- For dumps of the loop's tasks (call_graph.hpp) --------------------------------------

    /// The task behind this state, if it is one.
    [[nodiscard]] virtual const task_state_base* as_task() const noexcept { return nullptr; }
    /// What this state is, as dumps name it: "future", "gather"...
    [[nodiscard]] virtual const char* kind() const noexcept { return "future"; }
    /// Calls `fn` with each state this one waits for (a gather's children).
    virtual void for_each_awaited(const std::function<void(const future_state_base&)>& fn) const {
        (void)fn;
    }

    /// asyncio's `Future.cancel`: completes a pending future as cancelled. Tasks override it.
    virtual bool cancel(const std::string& message) {
        if (done()) return false;
        finish_cancelled(message);
        return true;
    }

    void set_exception(std::exception_ptr e) {
        if (!e) throw std::invalid_argument("set_exception: null exception");
        if (done()) throw invalid_state_error("set_exception: the future is already done");
        try {
            std::rethrow_exception(e);
        } catch (const cancelled_error&) {
            // As asyncio: a CancelledError is not a result a future can hold.
            throw std::invalid_argument(
                "set_exception: cancelled_error cannot be set; use cancel()");
        } catch (...) {
        }
        exception_ = std::move(e);
        complete(future_status::finished);
    }

    void add_listener(listener* l) noexcept { listeners_.push(l); }

    /// Removes done callbacks with `id`: 1 if one was removed, else 0.
    std::size_t remove_callback(std::uint64_t id) noexcept {
        std::size_t removed = 0;
        listeners_.for_each([&](listener* l) {
            if (removed == 0 && callback_listener::has_id(l, id)) {
                l->unlink();
                l->notify_(l, *this, false);
                removed = 1;
            }
        });
        return removed;
    }

protected:
    // Completes the future and tells every listener, in the order they were added.
    void complete(future_status status) noexcept {
        status_ = status;
        listeners_.drain([this](listener* l) { l->notify_(l, *this, true); });
    }

    // Completes the future with `error` as what ended it (a `cancelled_error` for `cancelled`).
    void complete_with(future_status status, std::exception_ptr error) noexcept {
        exception_ = std::move(error);
        complete(status);
    }

    void finish_cancelled(const std::string& message) noexcept {
        try {
            exception_ = std::make_exception_ptr(cancelled_error(message));
        } catch (...) {
            exception_ = nullptr;  // check_result() still throws a (message-less) cancelled_error
        }
        complete(future_status::cancelled);
    }

    void mark_retrieved() noexcept { retrieved_ = true; }

    // Destroys the state, whose last reference is gone.
    void dispose() noexcept {
        if (status_ == future_status::finished && exception_ && !retrieved_) report_unretrieved();
        delete this;
    }

    virtual void report_unretrieved() noexcept {
        report(exception_context{"Future exception was never retrieved", exception_, {}});
    }

    void report(const exception_context& context) noexcept {
        if (loop_access::alive(loop_)) {
            loop_->call_exception_handler(context);
        } else {
            event_loop::default_exception_handler(context);
        }
    }

    event_loop* loop_;
    std::exception_ptr exception_;
    listener_list listeners_;
    int refs_ = 1;
    future_status status_ = future_status::pending;
    bool retrieved_ = false;
};

/// The value half of a state: `std::optional` of `T` (a pointer for references; nothing for
/// `void`).
template <class T>
class value_slot {
    using stored = std::conditional_t<std::is_reference_v<T>, std::add_pointer_t<T>, T>;

public:
    template <class... Args>
    void emplace_value(Args&&... args) {
        if constexpr (std::is_reference_v<T>) {
            value_.emplace(std::addressof(args)...);
        } else {
            value_.emplace(std::forward<Args>(args)...);
        }
    }
    /// `const T&`; for a reference type `T`, the reference itself (`const T&` collapses to it).
    [[nodiscard]] std::conditional_t<std::is_reference_v<T>, T, const T&>
    value_ref() const noexcept {
        if constexpr (std::is_reference_v<T>) {
            return **value_;
        } else {
            return *value_;
        }
    }
    [[nodiscard]] T take_value() {
        if constexpr (std::is_reference_v<T>) {
            return static_cast<T>(**value_);
        } else {
            return std::move(*value_);
        }
    }

private:
    std::optional<stored> value_;
};

template <>
class value_slot<void> {};

/// A plain future's state (combinators derive from it to override `cancel`).
template <class T>
class future_state : public future_state_base, public value_slot<T> {
public:
    using future_state_base::future_state_base;

    template <class... Args>
    void set_value(Args&&... args) {
        if (done()) throw invalid_state_error("set_result: the future is already done");
        if constexpr (!std::is_void_v<T>) this->emplace_value(std::forward<Args>(args)...);
        complete(future_status::finished);
    }

private:
    void on_body_done(std::coroutine_handle<>) noexcept override {}
};

/// For the handle classes: a handle holding a reference on a state.
struct handle_access {
    template <class Handle, class State>
    [[nodiscard]] static Handle make(State* state) noexcept {
        return Handle(static_cast<typename Handle::shared_state*>(state));
    }
    template <class Handle>
    [[nodiscard]] static auto* state(const Handle& h) noexcept {
        return h.state_;
    }
    /// Empties the handle without releasing its reference, which the caller takes over.
    template <class Handle>
    static auto* release(Handle& h) noexcept {
        return std::exchange(h.state_, nullptr);
    }
};

}  // namespace corio::detail
