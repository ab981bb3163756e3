#pragma once
/// \file
/// Intrusive building blocks of the loop: nodes live inside the objects they link (a task
/// state, an awaiter in a coroutine frame), so that linking them allocates nothing.

#include <cstddef>
#include <cstdint>
#include <utility>

namespace corio::detail {

/// A place in the ready queue: the link to the next one, which says whether that one is a task.
/// A task state is a bare `ready_link` (8 bytes in each of a million tasks); the loop steps it
/// through the task layer's one step function. Everything else the loop runs is a `ready_node`.
struct ready_link {
    std::uintptr_t next_ = 0;  // the next link's address, plus `task_tag` if it is a task
};

inline constexpr std::uintptr_t task_tag = 1;

/// Something the loop can run once, other than a task step: a done callback, a `call_soon`
/// handle. `run_(node, false)` discards the node without running it (the loop is closing).
struct ready_node : ready_link {
    using run_fn = void (*)(ready_node*, bool run) noexcept;

    explicit ready_node(run_fn run) noexcept : run_(run) {}

    run_fn run_;
};

/// What the ready queue hands out: a link, and whether it is a task's.
struct ready_item {
    ready_link* link;
    bool task;
    explicit operator bool() const noexcept { return link != nullptr; }
};

/// A FIFO of ready links. A link is in at most one queue at a time.
class ready_queue {
public:
    [[nodiscard]] bool empty() const noexcept { return head_ == 0; }

    void push(ready_node* node) noexcept { push_link(node, 0); }
    void push_task(ready_link* task) noexcept { push_link(task, task_tag); }

    [[nodiscard]] ready_item pop() noexcept {
        const std::uintptr_t tagged = head_;
        if (tagged == 0) return {nullptr, false};
        auto* link = reinterpret_cast<ready_link*>(tagged & ~task_tag);
        head_ = link->next_;
        if (head_ == 0) tail_ = nullptr;
        link->next_ = 0;
        return {link, (tagged & task_tag) != 0};
    }

    /// Moves every link to `into` (which must be empty), leaving this queue empty.
    void take_all(ready_queue& into) noexcept {
        into.head_ = head_;
        into.tail_ = tail_;
        head_ = 0;
        tail_ = nullptr;
    }

private:
    void push_link(ready_link* link, std::uintptr_t tag) noexcept {
        link->next_ = 0;
        const std::uintptr_t tagged = reinterpret_cast<std::uintptr_t>(link) | tag;
        if (tail_ != nullptr) {
            tail_->next_ = tagged;
        } else {
            head_ = tagged;
        }
        tail_ = link;
    }

    std::uintptr_t head_ = 0;  // tagged, as `ready_link::next_`
    ready_link* tail_ = nullptr;
};

/// A node of a circular doubly linked list with a sentinel; unlinking is O(1) and a node
/// knows whether it is linked.
struct list_node {
    list_node* prev_ = nullptr;
    list_node* next_ = nullptr;

    [[nodiscard]] bool linked() const noexcept { return next_ != nullptr; }

    void unlink() noexcept {
        if (next_ == nullptr) return;
        prev_->next_ = next_;
        next_->prev_ = prev_;
        prev_ = next_ = nullptr;
    }
};

/// A list of `T`, which derives from `list_node`. Iteration tolerates unlinking the current node
/// only through `pop_front`.
template <class T>
class intrusive_list {
public:
    intrusive_list() noexcept { head_.prev_ = head_.next_ = &head_; }
    intrusive_list(const intrusive_list&) = delete;
    intrusive_list& operator=(const intrusive_list&) = delete;

    [[nodiscard]] bool empty() const noexcept { return head_.next_ == &head_; }

    void push_back(T* item) noexcept {
        list_node* node = item;
        node->prev_ = head_.prev_;
        node->next_ = &head_;
        head_.prev_->next_ = node;
        head_.prev_ = node;
    }

    [[nodiscard]] T* front() noexcept { return empty() ? nullptr : static_cast<T*>(head_.next_); }

    [[nodiscard]] T* pop_front() noexcept {
        T* item = front();
        if (item != nullptr) static_cast<list_node*>(item)->unlink();
        return item;
    }

    template <class F>
    void for_each(F&& f) {
        for (list_node* n = head_.next_; n != &head_;) {
            list_node* next = n->next_;
            f(static_cast<T*>(n));
            n = next;
        }
    }

    [[nodiscard]] std::size_t size() const noexcept {
        std::size_t n = 0;
        for (const list_node* p = head_.next_; p != &head_; p = p->next_) ++n;
        return n;
    }

private:
    list_node head_;
};

/// A doubly linked list threaded through two pointer members of `T` (`Next`, `Prev`), null at
/// both ends. Unlike `intrusive_list` it has no sentinel, so it can be moved: a reactor keeps
/// one per descriptor in a vector that grows. An item is in at most one chain at a time;
/// moving a chain takes its items and leaves it empty.
template <class T, T* T::* Next, T* T::* Prev>
class chain {
public:
    chain() noexcept = default;
    chain(chain&& other) noexcept
        : first_(std::exchange(other.first_, nullptr)), last_(std::exchange(other.last_, nullptr)) {
    }
    chain& operator=(chain&& other) noexcept {
        first_ = std::exchange(other.first_, nullptr);
        last_ = std::exchange(other.last_, nullptr);
        return *this;
    }
    chain(const chain&) = delete;
    chain& operator=(const chain&) = delete;

    [[nodiscard]] bool empty() const noexcept { return first_ == nullptr; }
    [[nodiscard]] T* front() const noexcept { return first_; }
    /// The item after `item` in its chain, or null.
    [[nodiscard]] static T* next(const T& item) noexcept { return item.*Next; }

    void push_back(T& item) noexcept {
        item.*Next = nullptr;
        item.*Prev = last_;
        (last_ != nullptr ? last_->*Next : first_) = &item;
        last_ = &item;
    }

    void push_front(T& item) noexcept {
        item.*Prev = nullptr;
        item.*Next = first_;
        (first_ != nullptr ? first_->*Prev : last_) = &item;
        first_ = &item;
    }

    /// Unlinks `item`, which must be in this chain.
    void remove(T& item) noexcept {
        (item.*Prev != nullptr ? (item.*Prev)->*Next : first_) = item.*Next;
        (item.*Next != nullptr ? (item.*Next)->*Prev : last_) = item.*Prev;
        item.*Next = item.*Prev = nullptr;
    }

    [[nodiscard]] T* pop_front() noexcept {
        T* item = first_;
        if (item != nullptr) remove(*item);
        return item;
    }

    [[nodiscard]] std::size_t size() const noexcept {
        std::size_t n = 0;
        for (const T* p = first_; p != nullptr; p = p->*Next) ++n;
        return n;
    }

private:
    T* first_ = nullptr;
    T* last_ = nullptr;
};

}  // namespace corio::detail
