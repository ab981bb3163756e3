#pragma once
/// \file
/// `corio::gather`: run awaitables concurrently and collect their results (asyncio's `gather`).

#include "corio/detail/ranges.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/impl/awaitable.hpp"
#include "corio/impl/future_state.hpp"
#include "corio/outcome.hpp"

#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace corio {

/// The tag asking `gather` to return every child's `outcome` instead of propagating the first
/// exception (asyncio's `return_exceptions=True`).
struct return_exceptions_t {
    explicit return_exceptions_t() = default;
};
inline constexpr return_exceptions_t return_exceptions{};

namespace detail {

/// The state of a gather: a future that listens to each of its children.
/// A listener left on a child the gather no longer watches (the gather was dropped first): when
/// the child ends, its exception counts as seen, as asyncio's gather marks it. It holds no
/// reference, so nothing keeps anything alive.
struct orphaned_child : listener, recycled<> {
    orphaned_child() noexcept : listener(&notify) {}
    static void notify(listener* l, future_state_base& child, bool run) noexcept {
        if (run) (void)child.outcome_exception();
        delete static_cast<orphaned_child*>(l);
    }
};

/// The state of a gather: a future that listens to each of its children. `Derived` decides how
/// the children are held and collects their results: `collect(slot, notified)` when a child
/// succeeds (or ends at all, for `return_exceptions`), `let_go(slot, notified)` when one ends while
/// the gather is done or ends it with its exception; `notified` says whether the child is telling
/// its listeners (a child done before the gather saw it is not).
template <class R, class Derived>
class gather_state : public future_state<R> {
public:
    gather_state(event_loop& loop, bool return_exceptions)
        : future_state<R>(loop), return_exceptions_(return_exceptions) {}
    gather_state(const gather_state&) = delete;
    gather_state& operator=(const gather_state&) = delete;

    [[nodiscard]] const char* kind() const noexcept override { return "gather"; }
    void for_each_awaited(const std::function<void(const future_state_base&)>& fn) const override {
        for (const child_slot& slot : slots_) {
            if (slot.state != nullptr && !slot.state->done()) fn(*slot.state);
        }
    }

    /// Cancelling a gather cancels every child that is not done; the gather then ends cancelled
    /// once all of them have finished.
    bool cancel(const std::string& message) override {
        if (this->done()) return false;
        // Set first: a child may complete (and finish the gather) inside its own cancel().
        const bool was_requested = cancel_requested_;
        cancel_requested_ = true;
        cancel_message_ = message;
        bool any = false;
        for (child_slot& slot : slots_) {
            if (this->done()) break;
            if (slot.state != nullptr && slot.state->cancel(message)) any = true;
        }
        if (!any && !this->done()) cancel_requested_ = was_requested;
        return any;
    }

protected:
    struct child_slot : listener {
        child_slot(gather_state* owner, future_state_base* child) noexcept
            : listener(&notify), owner(owner), state(child) {}
        gather_state* owner;
        // Null once the derived class has let go of the child.
        future_state_base* state;
    };

    ~gather_state() override = default;

    // Listening to the children: `expect_children(n)`, then `listen` for each child in order as
    // it is made (one pass over a million new tasks, not two), then `all_listening()`.

    void expect_children(std::size_t count) { slots_.reserve(count); }

    void listen(future_state_base& child) {
        // The children point into slots_, which therefore never reallocates.
        if (slots_.size() == slots_.capacity()) {
            throw std::length_error("corio::gather: more children than expected");
        }
        child_slot& slot = slots_.emplace_back(this, &child);
        if (child.done()) {
            on_child_done(slot, false);  // may complete the gather at once (a failed child)
        } else {
            child.add_listener(&slot);
        }
    }

    void all_listening() {
        listening_ = true;
        if (!this->done() && finished_ == slots_.size()) finish();
    }

    [[nodiscard]] std::size_t index_of(const child_slot& slot) const noexcept {
        return static_cast<std::size_t>(&slot - slots_.data());
    }

    [[nodiscard]] std::vector<child_slot>& slots() noexcept { return slots_; }

    virtual R make_result() = 0;

    /// Stops listening to the children that are still running; must run while the derived
    /// class still holds them.
    void detach_children() noexcept {
        for (child_slot& slot : slots_) {
            if (!slot.linked()) continue;
            slot.unlink();
            try {
                slot.state->add_listener(new orphaned_child);
            } catch (...) {
            }
        }
    }

private:
    static void notify(listener* l, future_state_base&, bool run) noexcept {
        if (run) {
            auto* slot = static_cast<child_slot*>(l);
            slot->owner->on_child_done(*slot, true);
        }
    }

    Derived& derived() noexcept { return static_cast<Derived&>(*this); }

    void on_child_done(child_slot& slot, bool notified) noexcept {
        ++finished_;
        future_state_base& child = *slot.state;
        if (this->done()) {
            (void)child.outcome_exception();  // the gather has already failed: mark it seen
            derived().let_go(slot, notified);
            return;
        }
        if (!return_exceptions_) {
            if (std::exception_ptr error = child.outcome_exception()) {
                // The first failure ends the gather at once; the other children run on.
                const future_status status =
                    child.cancelled() ? future_status::cancelled : future_status::finished;
                derived().let_go(slot, notified);
                this->complete_with(status, std::move(error));
                return;
            }
        }
        try {
            derived().collect(slot, notified);
        } catch (...) {
            derived().let_go(slot, notified);
            this->complete_with(future_status::finished, std::current_exception());
            return;
        }
        if (listening_ && finished_ == slots_.size()) finish();
    }

    void finish() noexcept {
        if (cancel_requested_) {
            this->finish_cancelled(cancel_message_);
            return;
        }
        try {
            if constexpr (std::is_void_v<R>) {
                make_result();
            } else {
                this->emplace_value(make_result());
            }
            this->complete(future_status::finished);
        } catch (...) {
            this->complete_with(future_status::finished, std::current_exception());
        }
    }

    std::vector<child_slot> slots_;
    std::size_t finished_ = 0;
    std::string cancel_message_;
    bool return_exceptions_;
    bool cancel_requested_ = false;
    bool listening_ = false;  // to every child: the gather may finish
};

template <bool ReturnExceptions, class H>
using gathered_t = std::conditional_t<ReturnExceptions, outcome<typename H::value_type>,
                                      storable_t<typename H::value_type>>;

template <bool ReturnExceptions, class H>
gathered_t<ReturnExceptions, H> gathered(future_state_base& child) {
    if constexpr (ReturnExceptions) {
        return take_outcome<H>(child);
    } else {
        return take_result<H>(child);
    }
}

/// A gather of a fixed list of children (`gather(a, b, c)`): their handles in a tuple, and the
/// results taken from them at the end.
template <bool ReturnExceptions, class... H>
class gather_tuple_state final : public gather_state<std::tuple<gathered_t<ReturnExceptions, H>...>,
                                                     gather_tuple_state<ReturnExceptions, H...>> {
    using result_type = std::tuple<gathered_t<ReturnExceptions, H>...>;
    using base = gather_state<result_type, gather_tuple_state>;
    friend base;

public:
    gather_tuple_state(event_loop& loop, std::tuple<H...> children)
        : base(loop, ReturnExceptions), children_(std::move(children)) {}
    ~gather_tuple_state() override { this->detach_children(); }

    void start() {
        this->expect_children(sizeof...(H));
        std::apply([&](const H&... h) { (this->listen(base_state(h)), ...); }, children_);
        this->all_listening();
    }

private:
    void collect(typename base::child_slot&, bool) noexcept {}
    void let_go(typename base::child_slot&, bool) noexcept {}

    result_type make_result() override {
        return std::apply(
            [](const H&... h) {
                return result_type{gathered<ReturnExceptions, H>(base_state(h))...};
            },
            children_);
    }

    std::tuple<H...> children_;
};

template <bool ReturnExceptions, class H>
using gathered_vector_t =
    std::conditional_t<!ReturnExceptions && std::is_void_v<typename H::value_type>, void,
                       std::vector<gathered_t<ReturnExceptions, H>>>;

/// A gather of a range of children: each slot holds a reference on its child. A child's result
/// is taken as soon as it ends, and a task is let go of at once, while it is still in the cache
/// (a million finished tasks are not kept for a second pass).
template <bool ReturnExceptions, class H>
class gather_range_state final : public gather_state<gathered_vector_t<ReturnExceptions, H>,
                                                     gather_range_state<ReturnExceptions, H>> {
    using result_type = gathered_vector_t<ReturnExceptions, H>;
    using base = gather_state<result_type, gather_range_state>;
    using child_slot = typename base::child_slot;
    friend base;
    using element = gathered_t<ReturnExceptions, H>;
    // Results land in their place in any order: straight in the final vector when an element
    // can be made empty and assigned, else each in an optional.
    static constexpr bool in_place = std::is_nothrow_default_constructible_v<element> &&
                                     std::is_nothrow_move_assignable_v<element>;
    using storage = std::conditional_t<in_place, element, std::optional<element>>;

public:
    /// A gather of `count` children, each given to `add` in order, then `start()`.
    gather_range_state(event_loop& loop, std::size_t count) : base(loop, ReturnExceptions) {
        this->expect_children(count);
        if constexpr (!std::is_void_v<result_type>) results_.resize(count);
    }
    ~gather_range_state() override {
        if (released_ == this->slots().size()) return;  // the common case: nothing to walk
        this->detach_children();
        for (child_slot& slot : this->slots()) {
            if (slot.state != nullptr) std::exchange(slot.state, nullptr)->release();
        }
    }

    void add(H child) {
        this->listen(base_state(child));
        // The slot has taken the handle's reference over (and may have let go of it already).
        (void)handle_access::release(child);
    }

    void start() { this->all_listening(); }

private:
    void collect(child_slot& slot, bool notified) {
        if constexpr (!std::is_void_v<result_type>) {
            results_[this->index_of(slot)] = gathered<ReturnExceptions, H>(*slot.state);
        }
        if constexpr (is_task_v<H>) let_go(slot, notified);
    }

    // A task notifying its listeners may be let go of at once; any other state is held until
    // the gather goes (it may be completing itself and must outlive that).
    void let_go(child_slot& slot, bool notified) noexcept {
        if constexpr (is_task_v<H>) {
            auto& task = static_cast<task_state_base&>(*std::exchange(slot.state, nullptr));
            ++released_;
            if (notified) {
                task.release_from_listener();
            } else {
                task.release();
            }
        } else if (!notified) {
            std::exchange(slot.state, nullptr)->release();
            ++released_;
        }
    }

    result_type make_result() override {
        if constexpr (std::is_void_v<result_type>) {
            return;
        } else if constexpr (in_place) {
            return std::move(results_);
        } else {
            result_type results;
            results.reserve(results_.size());
            for (storage& result : results_) results.push_back(std::move(*result));
            return results;
        }
    }

    struct no_results {};
    [[no_unique_address]] std::conditional_t<std::is_void_v<result_type>, no_results,
                                             std::vector<storage>> results_;
    std::size_t released_ = 0;  // children the slots no longer hold a reference on
};

template <bool ReturnExceptions, class... A>
auto gather_variadic(A&&... args) {
    // Braced initialisation runs left to right: coros become tasks in argument order.
    std::tuple<ensured_t<A>...> children{ensure_future(std::forward<A>(args))...};
    using state_type = gather_tuple_state<ReturnExceptions, ensured_t<A>...>;
    using result_type = std::tuple<gathered_t<ReturnExceptions, ensured_t<A>>...>;
    auto* state = new state_type(get_running_loop(), std::move(children));
    auto handle = handle_access::make<future<result_type>>(state);
    state->release();
    state->start();
    return handle;
}

template <bool ReturnExceptions, class R>
auto gather_range(R&& range) {
    using element = detail::range_value_t<R>;
    using handle_type = ensured_t<element>;
    using state_type = gather_range_state<ReturnExceptions, handle_type>;
    using result_type = gathered_vector_t<ReturnExceptions, handle_type>;
    auto make_child = [](auto&& item) {
        if constexpr (future_handle<element>) {
            return ensure_future(static_cast<decltype(item)>(item));
        } else {
            return ensure_future(std::move(item));  // a coro or an awaiter is consumed
        }
    };
    if constexpr (future_handle<element> && detail::forward_range<R>) {
        // Before the state listens to any: a foreign one would leave it half built.
        for (const auto& item : range) require_running_loop(item, "corio::gather");
    }
    if constexpr (detail::sized_range<R>) {
        // Each child is listened to as soon as it is made: one pass over the new tasks.
        auto* state = new state_type(get_running_loop(), std::ranges::size(range));
        auto handle = handle_access::make<future<result_type>>(state);
        state->release();
        for (auto&& item : range) state->add(make_child(static_cast<decltype(item)>(item)));
        state->start();
        return handle;
    } else {
        std::vector<handle_type> children;
        for (auto&& item : range) children.push_back(make_child(static_cast<decltype(item)>(item)));
        auto* state = new state_type(get_running_loop(), children.size());
        auto handle = handle_access::make<future<result_type>>(state);
        state->release();
        for (handle_type& child : children) state->add(std::move(child));
        state->start();
        return handle;
    }
}

template <class R>
concept awaitable_range = detail::input_range<R> && awaitable_arg<detail::range_value_t<R>>;

}  // namespace detail

/// Runs the awaitables concurrently and returns a future of all their results, in argument
/// order (`std::monostate` for `void`).
///
/// - Eager, as asyncio's: coros and other awaitables (`q.get()`, `sleep(d)`, another library's
///   awaiter) are wrapped in tasks at once (in argument order), tasks and futures are taken as
///   they are; the work runs whether or not the result is awaited.
/// - The first exception (or cancellation) of a child ends the gather at once with it; the
///   other children keep running.
/// - Cancelling the gather (or the task awaiting it) cancels every child that is not done; the
///   gather ends cancelled once they have all finished.
template <detail::awaitable_arg... A>
[[nodiscard]] auto gather(A&&... awaitables) {
    return detail::gather_variadic<false>(std::forward<A>(awaitables)...);
}

/// As `gather(awaitables...)`, but each result is an `outcome<T>` holding the value or the
/// exception: the gather itself only fails if it is cancelled.
template <detail::awaitable_arg... A>
[[nodiscard]] auto gather(return_exceptions_t, A&&... awaitables) {
    return detail::gather_variadic<true>(std::forward<A>(awaitables)...);
}

/// Gathers a range of awaitables (coros, tasks, futures, awaiters) into a `std::vector` of their
/// results, in input order (a `future<void>` when they return nothing). Coros and awaiters in the
/// range are consumed.
template <detail::awaitable_range R>
[[nodiscard]] auto gather(R&& awaitables) {
    return detail::gather_range<false>(std::forward<R>(awaitables));
}

/// As `gather(range)`, with a vector of `outcome<T>`.
template <detail::awaitable_range R>
[[nodiscard]] auto gather(return_exceptions_t, R&& awaitables) {
    return detail::gather_range<true>(std::forward<R>(awaitables));
}

}  // namespace corio
