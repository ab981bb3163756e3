#pragma once
/// \file
/// `corio::race`: the first awaitable to finish wins, and every loser is cancelled and awaited
/// before the race returns (Tokio's `select!`, Asio's `||`, trio's "cancel the rest").

#include "corio/coro.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/detail/ranges.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/awaitable.hpp"
#include "corio/impl/future_state.hpp"
#include "corio/impl/task_state.hpp"
#include "corio/task.hpp"
#include "corio/task_options.hpp"

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace corio {

namespace detail {

class race_track;

/// One runner of a race: holds a reference on its child (a task or future) and listens to it.
class race_entrant : public listener {
public:
    race_entrant() noexcept : listener(&notify) {}
    race_entrant(const race_entrant&) = delete;
    race_entrant& operator=(const race_entrant&) = delete;
    ~race_entrant() {
        listener::unlink();
        if (state_ != nullptr) state_->release();
    }

    /// The child, once entered (null for one that never ran: the race was won before it).
    [[nodiscard]] future_state_base* state() const noexcept { return state_; }

private:
    friend class race_track;
    static void notify(listener* l, future_state_base&, bool run) noexcept;

    future_state_base* state_ = nullptr;
    race_track* track_ = nullptr;
    std::size_t index_ = 0;
};

/// The race's bookkeeping, in its frame, and the one awaiter it suspends in: first until a
/// child finishes (a cancellation of the racing task wakes it), then until every child has
/// finished (a cancellation then stays pending: the losers are being cancelled anyway).
class race_track : public cancellable_wait {
public:
    static constexpr std::size_t none = std::numeric_limits<std::size_t>::max();

    explicit race_track(std::span<race_entrant> entrants) noexcept
        : cancellable_wait(ops<&cancel, &describe>), entrants_(entrants) {}
    race_track(const race_track&) = delete;
    race_track& operator=(const race_track&) = delete;

    /// Enters child `index` (taking a reference on it); one already done wins, if none has.
    void enter(std::size_t index, future_state_base& child) noexcept {
        race_entrant& entrant = entrants_[index];
        child.add_ref();
        entrant.state_ = &child;
        entrant.track_ = this;
        entrant.index_ = index;
        ++entered_;
        if (child.done()) {
            finished(index);
        } else {
            child.add_listener(&entrant);
        }
    }

    [[nodiscard]] bool decided() const noexcept { return winner_ != none; }
    [[nodiscard]] std::size_t winner() const noexcept { return winner_; }

    /// `co_await track.first_finished()`: until a child finishes; `cancelled_error` if the
    /// racing task is cancelled first.
    race_track& first_finished() noexcept {
        settling_ = false;
        return *this;
    }
    /// `co_await track.all_finished()`: until every child entered has finished.
    race_track& all_finished() noexcept {
        settling_ = true;
        return *this;
    }

    /// Cancels every child that is not done (the losers, once there is a winner).
    void cancel_unfinished(const std::string& message) noexcept {
        for (race_entrant& entrant : entrants_) {
            if (entrant.state_ == nullptr || entrant.state_->done()) continue;
            try {
                (void)entrant.state_->cancel(message);
            } catch (...) {
                // It stays pending and is awaited as it is.
            }
        }
    }

    /// Lets go of every child, so that the winner's result is moved out of it when the race
    /// holds its only other handle.
    void release_children() noexcept {
        for (race_entrant& entrant : entrants_) {
            entrant.listener::unlink();
            if (entrant.state_ != nullptr) std::exchange(entrant.state_, nullptr)->release();
        }
    }

    /// Marks the exceptions of every child but the one returned from as seen, so that a loser
    /// cancelled (or failing while cancelled) is not reported as never retrieved.
    void mark_seen(std::size_t except) noexcept {
        for (race_entrant& entrant : entrants_) {
            if (entrant.state_ == nullptr || entrant.index_ == except) continue;
            if (entrant.state_->done()) (void)entrant.state_->outcome_exception();
        }
    }

    [[nodiscard]] bool await_ready() const noexcept {
        return settling_ ? finished_ == entered_ : decided();
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        task_ = &task_state_base::current("corio::race");
        if (!settling_ && task_->cancel_pending()) return false;
        waiting_ = true;
        task_->suspend(h, this);
        return true;
    }

    void await_resume() {
        waiting_ = false;
        if (task_ == nullptr) return;
        if (settling_) {
            task_->leave_wait();
        } else {
            task_->end_wait();
        }
    }

private:
    friend class race_entrant;

    void finished(std::size_t index) noexcept {
        ++finished_;
        if (winner_ == none) winner_ = index;
        if (waiting_ && await_ready()) wake();
    }

    void wake() noexcept {
        waiting_ = false;
        task_->schedule();
    }

    static bool cancel(cancellable_wait* wait, const std::string&) {
        auto* self = static_cast<race_track*>(wait);
        if (!self->settling_ && self->waiting_) self->wake();
        return false;
    }

    static void describe(const cancellable_wait* wait, wait_description& description) {
        const auto* self = static_cast<const race_track*>(wait);
        description.what = self->settling_ ? "corio::race, cancelling the losers" : "corio::race";
    }

    std::span<race_entrant> entrants_;
    task_state_base* task_ = nullptr;
    std::size_t entered_ = 0;
    std::size_t finished_ = 0;
    std::size_t winner_ = none;
    bool settling_ = false;
    bool waiting_ = false;
};

inline void race_entrant::notify(listener* l, future_state_base&, bool run) noexcept {
    if (!run) return;  // the loop is closing
    auto* self = static_cast<race_entrant*>(l);
    self->track_->finished(self->index_);
}

inline constexpr const char* race_lost = "corio::race: another awaitable finished first";

/// Drops an argument that never ran because the race was won before its turn: a coro goes
/// without a "never awaited" report, any other awaiter simply with the frame.
template <class A>
void drop_unstarted(A& awaitable) noexcept {
    if constexpr (is_coro_v<A>) {
        if (auto frame = awaitable.release()) frame.destroy();
    }
}

/// Makes argument `index` a child and enters it: a handle as it is, anything else as an eager
/// task (a ready one wins without a trip through the loop, and the rest then never start).
template <class A, class Handle>
void enter_child(race_track& track, std::size_t index, A& awaitable, Handle& child) {
    if constexpr (future_handle<A>) {
        require_running_loop(awaitable, "corio::race");
        if (!awaitable) throw std::invalid_argument("corio::race: an empty task or future");
        child = awaitable;
    } else {
        if (track.decided()) {
            drop_unstarted(awaitable);
            return;
        }
        child = get_running_loop().create_task(as_coro(std::move(awaitable)),
                                               task_options{.name = {}, .eager = true});
    }
    track.enter(index, base_state(child));
}

/// The race once every child is entered (or entering failed with `failure`): waits for a winner,
/// cancels and awaits the losers. Returns the winner's index; rethrows a cancellation of the
/// racing task, or the failure, once every child has finished.
template <class = void>  // compiled only where a race is (docs/architecture.md, "Compile time")
inline coro<std::size_t> run_race(race_track& track, std::exception_ptr failure) {
    if (!failure && !track.decided()) {
        try {
            co_await track.first_finished();
        } catch (const cancelled_error&) {
            failure = std::current_exception();
        }
    }
    track.cancel_unfinished(race_lost);
    co_await track.all_finished();
    if (failure) {
        track.mark_seen(race_track::none);
        std::rethrow_exception(failure);
    }
    track.mark_seen(track.winner());
    track.release_children();
    co_return track.winner();
}

template <class... A>
using race_result_t = std::variant<storable_t<awaited_value_t<A>>...>;

template <class... A>
coro<race_result_t<A...>> race_variadic(A... awaitables) {
    std::array<race_entrant, sizeof...(A)> entrants;
    race_track track(entrants);
    std::tuple<ensured_t<A>...> children;
    std::exception_ptr failure;
    try {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (enter_child(track, I, awaitables, std::get<I>(children)), ...);
        }(std::index_sequence_for<A...>{});
    } catch (...) {
        failure = std::current_exception();
    }
    const std::size_t winner = co_await run_race(track, std::move(failure));
    std::optional<race_result_t<A...>> result;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((winner == I
              ? (void)result.emplace(std::in_place_index<I>, take_result(std::get<I>(children)))
              : void()),
         ...);
    }(std::index_sequence_for<A...>{});
    co_return std::move(*result);
}

template <class E>
coro<std::pair<std::size_t, storable_t<awaited_value_t<E>>>> race_range(std::vector<E> awaitables) {
    if (awaitables.empty()) throw std::invalid_argument("corio::race of no awaitables");
    const std::size_t count = awaitables.size();
    owned_ptr<race_entrant[]> entrants(new race_entrant[count]());
    race_track track(std::span<race_entrant>(entrants.get(), count));
    std::vector<ensured_t<E>> children(count);
    std::exception_ptr failure;
    try {
        for (std::size_t i = 0; i < count; ++i) {
            enter_child(track, i, awaitables[i], children[i]);
        }
    } catch (...) {
        failure = std::current_exception();
    }
    const std::size_t winner = co_await run_race(track, std::move(failure));
    co_return std::pair<std::size_t, storable_t<awaited_value_t<E>>>(winner,
                                                                     take_result(children[winner]));
}

template <class R>
concept race_range_arg = detail::input_range<R> && awaitable_arg<detail::range_value_t<R>>;

}  // namespace detail

/// Awaits every awaitable concurrently; the first to *finish* wins: `race` returns a
/// `std::variant` whose index is the winner's position and whose value is its result
/// (`std::monostate` for `void`), or rethrows the winner's exception.
///
/// - Anything awaitable: coros and awaiters (`q.get()`, `sleep(d)`, another library's) become
///   eager tasks, in argument order, when the race is awaited; one that finishes at once wins
///   and the arguments after it never start. Tasks and futures are raced as they are.
/// - Every loser (a task or future passed in too) is cancelled, and awaited: when `race`
///   returns, nothing it started still runs. A loser's exception, its cancellation included,
///   is not reported as never retrieved. A loser that finished in the same loop iteration as the
///   winner (before it could be cancelled) has its result dropped: where that must not happen,
///   use `wait(tasks, return_when::first_completed)`, which cancels nothing.
/// - Cancelling the racing task cancels every child; `race` rethrows `cancelled_error` once they
///   have all finished.
template <detail::awaitable_arg... A>
    requires(sizeof...(A) > 0)
[[nodiscard]] auto race(A&&... awaitables) {
    static_assert(
        (!(detail::is_coro_v<std::remove_cvref_t<A>> && std::is_lvalue_reference_v<A>) && ...),
        "pass a coro by value (it is consumed)");
    return detail::race_variadic<std::remove_cvref_t<A>...>(
        std::remove_cvref_t<A>(std::forward<A>(awaitables))...);
}

/// `race` of a range of awaitables (all of one type): a `std::pair` of the winner's index and
/// its result. Throws `std::invalid_argument` for an empty range. Coros and other awaiters in
/// the range are consumed (moved out); handles are copied.
template <detail::race_range_arg R>
[[nodiscard]] auto race(R&& awaitables) {
    using element = detail::range_value_t<R>;
    std::vector<element> items;
    if constexpr (detail::sized_range<R>) items.reserve(std::ranges::size(awaitables));
    for (auto&& item : awaitables) {
        if constexpr (detail::future_handle<element>) {
            items.push_back(item);
        } else {
            items.push_back(std::move(item));
        }
    }
    return detail::race_range<element>(std::move(items));
}

}  // namespace corio
