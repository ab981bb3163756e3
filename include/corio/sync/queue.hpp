#pragma once
/// \file
/// `corio::queue`, `corio::priority_queue`, `corio::lifo_queue`: queues between tasks
/// (asyncio's `Queue`, `PriorityQueue`, `LifoQueue`), with Python 3.13's `shutdown`.

#include "corio/impl/sync_waiter.hpp"

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio {

/// `get_nowait()` on an empty queue (asyncio's `QueueEmpty`).
class queue_empty : public std::runtime_error {
public:
    queue_empty() : std::runtime_error("the queue is empty") {}
    using std::runtime_error::runtime_error;
};

/// `put_nowait()` on a full queue (asyncio's `QueueFull`).
class queue_full : public std::runtime_error {
public:
    queue_full() : std::runtime_error("the queue is full") {}
    using std::runtime_error::runtime_error;
};

/// A `put` on a queue that was shut down, or a `get` on one shut down and empty (asyncio's
/// `QueueShutDown`, Python 3.13).
class queue_shutdown : public std::runtime_error {
public:
    queue_shutdown() : std::runtime_error("the queue is shut down") {}
    using std::runtime_error::runtime_error;
};

namespace detail {

/// First in, first out; or, with `LastInFirstOut`, last in, first out.
template <class T, bool LastInFirstOut = false>
class deque_store {
public:
    [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
    template <class U>
    void push(U&& item) {
        items_.push_back(std::forward<U>(item));
    }
    /// Puts back an item taken before every item now stored (for a LIFO: under them).
    void push_oldest(T&& item) { items_.push_front(std::move(item)); }
    [[nodiscard]] T pop() {
        if constexpr (LastInFirstOut) {
            T item = std::move(items_.back());
            items_.pop_back();
            return item;
        } else {
            T item = std::move(items_.front());
            items_.pop_front();
            return item;
        }
    }
    void clear() noexcept { items_.clear(); }

private:
    std::deque<T> items_;
};

template <class T>
using fifo_store = deque_store<T>;
template <class T>
using lifo_store = deque_store<T, true>;

/// Smallest first by `Compare` (a binary heap).
template <class T, class Compare>
class priority_store {
public:
    priority_store() = default;
    explicit priority_store(Compare compare) : compare_(std::move(compare)) {}

    [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }
    template <class U>
    void push(U&& item) {
        heap_.push_back(std::forward<U>(item));
        std::push_heap(heap_.begin(), heap_.end(), greater());
    }
    void push_oldest(T&& item) { push(std::move(item)); }
    [[nodiscard]] T pop() {
        std::pop_heap(heap_.begin(), heap_.end(), greater());
        T item = std::move(heap_.back());
        heap_.pop_back();
        return item;
    }
    void clear() noexcept { heap_.clear(); }

private:
    // The std heap algorithms keep the *largest* first; reversing the comparison keeps the
    // smallest first, as asyncio's heapq does.
    auto greater() {
        return [this](const T& a, const T& b) { return compare_(b, a); };
    }

    std::vector<T> heap_;
    [[no_unique_address]] Compare compare_;
};

}  // namespace detail

/// The queue behind `queue`, `priority_queue` and `lifo_queue`; `Store` decides the order.
///
/// - `co_await q.put(item)` adds an item, waiting while the queue is full (`maxsize` items;
///   `maxsize == 0`, the default, is unbounded); `co_await q.get()` removes and returns one,
///   waiting while the queue is empty. `put_nowait` / `get_nowait` never wait: they throw
///   `queue_full` / `queue_empty` instead. Items are moved, never copied (move-only types work).
/// - Fair, first in first out among waiters: a `put` that finds a task waiting in `get` hands
///   the item straight to the task that has waited longest; a `get` that frees a slot admits
///   the `put` that has waited longest, which keeps that slot until it runs. Tasks arriving
///   meanwhile queue behind the waiting ones. An item handed to a getter that has not run yet
///   is no longer counted by `qsize()`, but still occupies its slot (`full()` counts it), as a
///   slot promised to a woken putter does: `full()` is exactly "a `put` would have to wait".
/// - `task_done()` and `co_await join()`: every successful put counts as an unfinished task;
///   `task_done()` marks one finished (too many calls throw `std::logic_error`, asyncio's
///   `ValueError`), and `join()` waits until none is left.
/// - `shutdown(immediate = false)`, as Python 3.13: later `put`s throw `queue_shutdown`, and
///   so do the tasks waiting in `put`; `get` drains what is left, then throws
///   `queue_shutdown` (the tasks waiting in `get` at once, since the queue is empty).
///   `shutdown(true)` also drops the items still queued, counting each as done (which may
///   release `join()`), so that every `get` throws at once.
/// - Cancellation: a task cancelled while waiting in `put` leaves the queue untouched (its item
///   is never added); one cancelled after being admitted but before it ran hands its slot to
///   the next waiting putter. A getter cancelled after an item was handed to it, before it
///   ran, hands the item to the next waiting getter, or puts it back at the head of the queue:
///   no item is lost.
/// - No allocation per wait: every waiter lives in its awaiter, in the waiting frame; only the
///   store of queued items allocates.
/// - Not copyable or movable: waiters point into it. Destroyed while tasks wait on it, it
///   never wakes them, but they still respond to cancellation (as `corio::run` cancels what is
///   left on its way out); tasks it has already woken finish their `co_await` without touching
///   it again: a getter keeps the item handed to it, an admitted
///   putter throws `queue_shutdown` (there is nothing left to put into).
template <class T, class Store>
class basic_queue {
    static_assert(std::is_move_constructible_v<T>, "queue items must be movable");
    using status = detail::sync_waiter::status;

public:
    using value_type = T;
    class put_awaiter;
    class get_awaiter;
    class join_awaiter;

    /// A queue of at most `maxsize` items (0: unbounded).
    explicit basic_queue(std::size_t maxsize = 0) : maxsize_(maxsize) {}
    basic_queue(const basic_queue&) = delete;
    basic_queue& operator=(const basic_queue&) = delete;
    ~basic_queue() {
        detail::detach_all(getters_);
        detail::detach_all(given_);
        detail::detach_all(putters_);
        detail::detach_all(admitted_);
        detail::detach_all(joiners_);
    }

    /// `co_await q.put(item)`: adds `item`, waiting for a free slot if the queue is full.
    /// Throws `queue_shutdown` once the queue is shut down. The item is moved (or copied) into
    /// the awaiter first, so the argument may be a temporary.
    [[nodiscard]] put_awaiter put(T&& item) { return put_awaiter(*this, std::move(item)); }
    [[nodiscard]] put_awaiter put(const T& item) { return put_awaiter(*this, item); }

    /// `co_await q.get()`: removes and returns an item, waiting for one if the queue is empty.
    /// Throws `queue_shutdown` once the queue is shut down and empty.
    [[nodiscard]] get_awaiter get() noexcept { return get_awaiter(*this); }

    /// Adds `item` now: throws `queue_full` if a `put` would have to wait, `queue_shutdown` if
    /// the queue is shut down.
    void put_nowait(T&& item) { put_now(std::move(item)); }
    void put_nowait(const T& item) { put_now(item); }

    /// Removes and returns an item now: throws `queue_empty` if there is none
    /// (`queue_shutdown` if the queue is also shut down).
    [[nodiscard]] T get_nowait() {
        if (store_.empty()) {
            if (shutdown_) throw queue_shutdown();
            throw queue_empty();
        }
        return take();
    }

    /// Marks one item taken from the queue as processed; `join()` returns once every item put
    /// is. Throws `std::logic_error` if called more times than items were put.
    void task_done() {
        if (unfinished_ == 0) {
            throw std::logic_error("corio::queue::task_done() called too many times");
        }
        finish_one();
    }

    /// `co_await q.join()`: waits until every item put has been marked done by `task_done()`
    /// (at once if none is pending).
    [[nodiscard]] join_awaiter join() noexcept { return join_awaiter(*this); }

    /// Shuts the queue down (see the class comment): wakes every task waiting in `put` or
    /// `get` with `queue_shutdown`; with `immediate`, also drops the queued items.
    void shutdown(bool immediate = false) noexcept {
        shutdown_ = true;
        if (immediate) {
            immediate_ = true;
            const std::size_t dropped = store_.size();
            store_.clear();
            unfinished_ -= std::min(dropped, unfinished_);
            if (unfinished_ == 0) wake_joiners();
        }
        // Getters wait only on an empty queue: they all throw.
        while (detail::sync_waiter* w = getters_.front()) w->wake(status::denied);
        while (detail::sync_waiter* w = putters_.front()) w->wake(status::denied);
        while (detail::sync_waiter* w = admitted_.front()) w->wake(status::denied);
        admitted_count_ = 0;
    }

    /// Whether `shutdown()` was called.
    [[nodiscard]] bool is_shutdown() const noexcept { return shutdown_; }

    /// The number of items in the queue (not counting one already handed to a getter).
    [[nodiscard]] std::size_t qsize() const noexcept { return store_.size(); }
    /// Whether the queue holds no item (`get_nowait` would throw).
    [[nodiscard]] bool empty() const noexcept { return store_.empty(); }
    /// Whether a `put` would have to wait (`put_nowait` would throw `queue_full`): every slot is
    /// taken, or promised to a task that has not run yet. Never true for an unbounded queue.
    [[nodiscard]] bool full() const noexcept { return !has_room(); }
    /// The capacity given to the constructor (0: unbounded).
    [[nodiscard]] std::size_t maxsize() const noexcept { return maxsize_; }

protected:
    basic_queue(std::size_t maxsize, Store store) : store_(std::move(store)), maxsize_(maxsize) {}

private:
    // Invariant: while tasks wait in get(), the store is empty; while tasks wait in put(),
    // there is no room. Every place that adds an item or frees a slot restores this.
    [[nodiscard]] bool has_room() const noexcept {
        return maxsize_ == 0 || store_.size() + given_count_ + admitted_count_ < maxsize_;
    }

    // Adds an accepted item: to the longest-waiting getter, else to the store.
    template <class U>
    void deliver(U&& item) {
        if (auto* getter = static_cast<get_awaiter*>(getters_.front())) {
            getter->item_.emplace(std::forward<U>(item));
            getter->grant_into(given_);
            ++given_count_;
        } else {
            store_.push(std::forward<U>(item));
        }
        ++unfinished_;
    }

    template <class U>
    void put_now(U&& item) {
        if (shutdown_) throw queue_shutdown();
        if (!has_room()) throw queue_full();
        deliver(std::forward<U>(item));
    }

    [[nodiscard]] T take() {
        T item = store_.pop();
        admit_putters();
        return item;
    }

    // Admits waiting putters while there is room: each keeps its slot until it runs.
    void admit_putters() noexcept {
        while (has_room()) {
            detail::sync_waiter* putter = putters_.front();
            if (putter == nullptr) break;
            putter->grant_into(admitted_);
            ++admitted_count_;
        }
    }

    // `quitter`, a getter handed an item, will not take it (cancelled, or its frame destroyed):
    // the item goes to the next waiting getter, or back to the head of the queue (dropped and
    // counted done, once shut down with `immediate`).
    //
    // Invariant: the items of `given_` are in the order they were put, and all older than the
    // stored ones. To keep it, the getters handed an item after the quitter each take their
    // predecessor's, and the newest handed item is the one that moves on.
    void give_back(get_awaiter& quitter) {
        // The quitter's own slot carries the item along the line. It is engaged, and so is
        // every handed getter's: the values move through a plain `T`, never through a local
        // optional, which g++ -O2 cannot prove engaged (-Wmaybe-uninitialized).
        std::optional<T>& carry = quitter.item_;
        bool after = false;
        given_.for_each([&](detail::sync_waiter* w) {
            if (!after) {
                after = (w == &quitter);
                return;
            }
            std::optional<T>& slot = static_cast<get_awaiter*>(w)->item_;
            T newer(std::move(*slot));
            slot.emplace(std::move(*carry));
            carry.emplace(std::move(newer));
        });
        quitter.unlink();
        --given_count_;
        if (immediate_) {
            carry.reset();
            finish_one();
        } else if (auto* getter = static_cast<get_awaiter*>(getters_.front())) {
            getter->item_.emplace(std::move(*carry));
            carry.reset();
            getter->grant_into(given_);
            ++given_count_;
        } else {
            store_.push_oldest(std::move(*carry));
            carry.reset();
        }
    }

    void finish_one() noexcept {
        if (unfinished_ > 0 && --unfinished_ == 0) wake_joiners();
    }

    void wake_joiners() noexcept {
        while (detail::sync_waiter* w = joiners_.front()) w->wake(status::granted);
    }

    Store store_;
    std::size_t maxsize_;
    std::size_t unfinished_ = 0;
    std::size_t given_count_ = 0;     // items handed to getters that have not resumed
    std::size_t admitted_count_ = 0;  // slots promised to putters that have not resumed
    detail::waiter_list getters_;
    detail::waiter_list given_;
    detail::waiter_list putters_;
    detail::waiter_list admitted_;
    detail::waiter_list joiners_;
    bool shutdown_ = false;
    bool immediate_ = false;

public:
    /// The awaiter of `put()`: holds the item, in the putting task's frame, until it is added.
    class put_awaiter : public detail::sync_waiter {
    public:
        template <class U>
        put_awaiter(basic_queue& q, U&& item)
            : sync_waiter(sync_ops<&cancel>), queue_(&q), item_(std::forward<U>(item)) {}
        // Movable until awaited, as every sync_waiter.
        put_awaiter(put_awaiter&&) noexcept(std::is_nothrow_move_constructible_v<T>) = default;
        ~put_awaiter() {
            // A frame destroyed while admitted (the loop closing): its slot goes on.
            if (is(status::granted) && linked()) {
                unlink();
                --queue_->admitted_count_;
                queue_->admit_putters();
            }
        }

        [[nodiscard]] bool await_ready() {
            if (queue_->shutdown_) throw queue_shutdown();
            if (!queue_->has_room()) return false;
            queue_->deliver(std::move(item_));
            return true;
        }

        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            if (bind("corio::queue::put")) return false;
            wait_in(queue_->putters_, h);
            return true;
        }

        void await_resume() {
            if (task_ == nullptr) return;  // added in await_ready
            if (is(status::idle)) end_withdrawn();
            if (is(status::denied)) {
                end_wait();
                throw queue_shutdown();
            }
            if (!detach()) {
                // The queue was destroyed before this task ran: nothing to put into.
                end_wait();
                throw queue_shutdown("the queue was destroyed");
            }
            --queue_->admitted_count_;
            if (cancel_pending()) {
                // Admitted, then cancelled before it ran: the item stays out, the slot goes on.
                queue_->admit_putters();
                end_withdrawn();
            }
            end_wait();
            try {
                queue_->deliver(std::move(item_));
            } catch (...) {
                queue_->admit_putters();
                throw;
            }
        }

    private:
        static bool cancel(cancellable_wait* w, const std::string&) {
            static_cast<put_awaiter*>(w)->withdraw();
            return false;
        }

        basic_queue* queue_;
        T item_;
    };

    /// The awaiter of `get()`: receives the item, in the getting task's frame.
    class get_awaiter : public detail::sync_waiter {
    public:
        explicit get_awaiter(basic_queue& q) noexcept
            : sync_waiter(sync_ops<&cancel>), queue_(&q) {}
        get_awaiter(get_awaiter&&) noexcept = default;  // until awaited, as every sync_waiter
        ~get_awaiter() {
            // A frame destroyed while an item was on its way to it (the loop closing): the item
            // goes back, or is dropped if it cannot be stored.
            if (is(status::granted) && linked()) {
                try {
                    queue_->give_back(*this);
                } catch (...) {
                    // The item could not be stored: it goes with the frame.
                    if (linked()) {
                        unlink();
                        --queue_->given_count_;
                    }
                }
            }
        }

        [[nodiscard]] bool await_ready() const {
            if (!queue_->store_.empty()) return true;  // taken in await_resume
            if (queue_->shutdown_) throw queue_shutdown();
            return false;
        }

        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            if (bind("corio::queue::get")) return false;
            wait_in(queue_->getters_, h);
            return true;
        }

        T await_resume() {
            if (task_ == nullptr) return queue_->take();
            if (is(status::idle)) end_withdrawn();
            if (is(status::denied)) {
                end_wait();
                throw queue_shutdown();
            }
            if (!linked()) {
                // The queue was destroyed before this task ran: the item is this task's anyway.
                status_ = status::idle;
                end_wait();
                return std::move(*item_);
            }
            if (cancel_pending()) {
                // Handed an item, then cancelled before it ran: the item goes on.
                status_ = status::idle;
                queue_->give_back(*this);
                end_withdrawn();
            }
            (void)detach();
            --queue_->given_count_;
            end_wait();
            queue_->admit_putters();  // the item's slot is free now
            return std::move(*item_);
        }

    private:
        friend class basic_queue;

        static bool cancel(cancellable_wait* w, const std::string&) {
            static_cast<get_awaiter*>(w)->withdraw();
            return false;
        }

        basic_queue* queue_;
        std::optional<T> item_;
    };

    /// The awaiter of `join()`.
    class join_awaiter : public detail::sync_waiter {
    public:
        explicit join_awaiter(basic_queue& q) noexcept
            : sync_waiter(sync_ops<&cancel>), queue_(&q) {}

        [[nodiscard]] bool await_ready() const noexcept { return queue_->unfinished_ == 0; }

        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            if (bind("corio::queue::join")) return false;
            wait_in(queue_->joiners_, h);
            return true;
        }

        void await_resume() {
            if (task_ == nullptr) return;
            if (!is(status::granted)) end_withdrawn();
            end_wait();
        }

    private:
        static bool cancel(cancellable_wait* w, const std::string&) {
            static_cast<join_awaiter*>(w)->withdraw();
            return false;
        }

        basic_queue* queue_;
    };
};

/// A first-in-first-out queue of `T` between tasks (asyncio's `Queue`); see `basic_queue`.
template <class T>
class queue : public basic_queue<T, detail::fifo_store<T>> {
public:
    using basic_queue<T, detail::fifo_store<T>>::basic_queue;
};

/// A queue handing out the *smallest* item first by `Compare` (asyncio's `PriorityQueue`, and
/// the reverse of `std::priority_queue`); items of equal priority come out in no set order.
/// See `basic_queue`.
template <class T, class Compare = std::less<T>>
class priority_queue : public basic_queue<T, detail::priority_store<T, Compare>> {
    using base = basic_queue<T, detail::priority_store<T, Compare>>;

public:
    /// A queue of at most `maxsize` items (0: unbounded), ordered by `compare`.
    explicit priority_queue(std::size_t maxsize = 0, Compare compare = Compare())
        : base(maxsize, detail::priority_store<T, Compare>(std::move(compare))) {}
};

/// A last-in-first-out queue, a stack (asyncio's `LifoQueue`); see `basic_queue`.
template <class T>
class lifo_queue : public basic_queue<T, detail::lifo_store<T>> {
public:
    using basic_queue<T, detail::lifo_store<T>>::basic_queue;
};

}  // namespace corio
