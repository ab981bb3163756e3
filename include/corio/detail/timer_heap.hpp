#pragma once
/// \file
/// The loop's timers: a 4-ary min-heap of (deadline, node) pairs. Nodes live in their owners
/// (a sleeping task's awaiter, a `call_later` handle) and remember their heap slot, so that
/// cancelling a timer is O(log n) and allocates nothing. Deadlines are kept beside the node
/// pointers so that sifting compares without touching the nodes.

#include <chrono>
#include <cstddef>
#include <limits>
#include <vector>

namespace corio::detail {

/// The one clock of corio: every deadline, timeout and `time()` is on it. Public as
/// `event_loop::clock` (the loop may run it virtually, see `event_loop::set_virtual_time`).
using loop_clock = std::chrono::steady_clock;

/// `fire_(node, false)` discards a timer without firing it (the loop is closing).
/// The deadline is kept in the heap only (see `timer_heap::deadline`): 16 bytes per node, in
/// every sleeping task's frame.
struct timer_node {
    using fire_fn = void (*)(timer_node*, bool fire) noexcept;
    static constexpr std::size_t not_queued = std::numeric_limits<std::size_t>::max();
    /// Not queued either: a mark the node's owner may set (`sleep` marks a withdrawn timer).
    static constexpr std::size_t marked = not_queued - 1;

    explicit timer_node(fire_fn fire) noexcept : fire_(fire) {}

    [[nodiscard]] bool queued() const noexcept { return heap_index_ < marked; }

    std::size_t heap_index_ = not_queued;
    fire_fn fire_;
};

class timer_heap {
public:
    [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
    [[nodiscard]] loop_clock::time_point next_deadline() const noexcept {
        return entries_.front().when;
    }
    [[nodiscard]] timer_node* top() const noexcept { return entries_.front().node; }

    void push(timer_node* node, loop_clock::time_point when) {
        entries_.push_back({when, node});
        sift_up(entries_.size() - 1);
    }

    /// The deadline of a queued node.
    [[nodiscard]] loop_clock::time_point deadline(const timer_node* node) const noexcept {
        return entries_[node->heap_index_].when;
    }

    void remove(timer_node* node) noexcept {
        const std::size_t i = node->heap_index_;
        node->heap_index_ = timer_node::not_queued;
        const std::size_t last = entries_.size() - 1;
        if (i != last) {
            entries_[i] = entries_[last];
            entries_.pop_back();
            entries_[i].node->heap_index_ = i;
            if (i > 0 && entries_[i].when < entries_[parent(i)].when) {
                sift_up(i);
            } else {
                sift_down(i);
            }
        } else {
            entries_.pop_back();
        }
    }

    timer_node* pop() noexcept {
        timer_node* node = entries_.front().node;
        remove(node);
        return node;
    }

    /// Returns the memory of an empty heap (after a burst of a million timers, say).
    void shrink() {
        // Swapped with an empty vector rather than shrink_to_fit, which would compile the moving
        // reallocation into every file for the one case that moves nothing.
        if (entries_.empty()) std::vector<entry>().swap(entries_);
    }

private:
    struct entry {
        loop_clock::time_point when;
        timer_node* node;
    };

    static constexpr std::size_t arity = 4;
    static constexpr std::size_t parent(std::size_t i) noexcept { return (i - 1) / arity; }

    void sift_up(std::size_t i) noexcept {
        const entry moving = entries_[i];
        while (i > 0) {
            const std::size_t p = parent(i);
            if (!(moving.when < entries_[p].when)) break;
            entries_[i] = entries_[p];
            entries_[i].node->heap_index_ = i;
            i = p;
        }
        entries_[i] = moving;
        moving.node->heap_index_ = i;
    }

    void sift_down(std::size_t i) noexcept {
        const entry moving = entries_[i];
        const std::size_t n = entries_.size();
        for (;;) {
            const std::size_t first = i * arity + 1;
            if (first >= n) break;
            std::size_t best = first;
            const std::size_t end = first + arity < n ? first + arity : n;
            for (std::size_t c = first + 1; c < end; ++c) {
                if (entries_[c].when < entries_[best].when) best = c;
            }
            if (!(entries_[best].when < moving.when)) break;
            entries_[i] = entries_[best];
            entries_[i].node->heap_index_ = i;
            i = best;
        }
        entries_[i] = moving;
        moving.node->heap_index_ = i;
    }

    std::vector<entry> entries_;
};

}  // namespace corio::detail
