#pragma once
/// \file
/// `corio::as_completed`: take tasks in the order they finish (asyncio's `as_completed`).

#include "corio/coro.hpp"
#include "corio/detail/ranges.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/impl/awaitable.hpp"
#include "corio/impl/future_state.hpp"

#include <cstddef>
#include <deque>
#include <utility>
#include <vector>

namespace corio {

/// Hands out the tasks (or futures) it was given as they complete: `co_await it.next()` is the
/// next one done (waiting if none is yet), and an empty handle once all have been handed out.
///
/// Not movable: it listens to every task from where it lives. Destroying it stops listening;
/// the tasks run on. Cancelling the task waiting in `next()` cancels only that wait.
template <class H>
class as_completed_iterator {
public:
    explicit as_completed_iterator(std::vector<H> handles) : handles_(std::move(handles)) {
        for (const H& h : handles_) detail::require_running_loop(h, "corio::as_completed");
        slots_.reserve(handles_.size());
        for (std::size_t i = 0; i < handles_.size(); ++i) {
            slots_.emplace_back(this, i);
            detail::future_state_base& state = detail::base_state(handles_[i]);
            if (state.done()) {
                done_.push_back(i);
            } else {
                state.add_listener(&slots_.back());
            }
        }
    }
    as_completed_iterator(const as_completed_iterator&) = delete;
    as_completed_iterator& operator=(const as_completed_iterator&) = delete;
    ~as_completed_iterator() {
        for (slot& s : slots_) s.unlink();
    }

    /// How many have not been handed out yet.
    [[nodiscard]] std::size_t remaining() const noexcept { return handles_.size() - handed_out_; }

    /// The next handle to complete, or an empty handle when none is left.
    coro<H> next() {
        if (done_.empty() && remaining() > 0) {
            wakeup_ = get_running_loop().template create_future<void>();
            co_await wakeup_;
        }
        if (done_.empty()) co_return H{};
        const std::size_t index = done_.front();
        done_.pop_front();
        ++handed_out_;
        co_return handles_[index];
    }

private:
    struct slot : detail::listener {
        slot(as_completed_iterator* owner, std::size_t index) noexcept
            : listener(&notify), owner(owner), index(index) {}
        as_completed_iterator* owner;
        std::size_t index;
    };

    static void notify(detail::listener* l, detail::future_state_base&, bool run) noexcept {
        if (!run) return;
        auto* s = static_cast<slot*>(l);
        as_completed_iterator& self = *s->owner;
        try {
            self.done_.push_back(s->index);
        } catch (...) {
            return;  // out of memory: this one is never handed out
        }
        if (self.wakeup_ && !self.wakeup_.done()) self.wakeup_.set_result();
    }

    std::vector<H> handles_;
    std::vector<slot> slots_;
    std::deque<std::size_t> done_;
    future<void> wakeup_;
    std::size_t handed_out_ = 0;
};

namespace detail {
template <class R>
concept as_completed_range = detail::input_range<R> && awaitable_arg<detail::range_value_t<R>>;
}  // namespace detail

/// Iterates over `awaitables` (tasks, futures, or coros, which become tasks at once) in the
/// order they complete. See `as_completed_iterator`.
template <detail::as_completed_range R>
[[nodiscard]] auto as_completed(R&& awaitables) {
    using element = detail::range_value_t<R>;
    using handle_type = detail::ensured_t<element>;
    std::vector<handle_type> handles;
    for (auto&& item : awaitables) {
        if constexpr (detail::is_coro_v<element>) {
            handles.push_back(detail::ensure_future(std::move(item)));
        } else {
            handles.push_back(item);
        }
    }
    return as_completed_iterator<handle_type>(std::move(handles));
}

}  // namespace corio
