#pragma once
/// \file
/// Intrusive building blocks of the loop: nodes live inside the objects they link (a task
/// state, an awaiter in a coroutine frame), so that linking them allocates nothing.

#include <cstddef>

namespace corio::detail {

/// Something the loop can run once: a task step, a done callback, a `call_soon` handle.
/// `run_(node, false)` discards the node without running it (the loop is closing).
struct ready_node {
    using run_fn = void (*)(ready_node*, bool run) noexcept;

    explicit ready_node(run_fn run) noexcept : run_(run) {}

    ready_node* next_ = nullptr;
    run_fn run_;
};

/// A FIFO of ready nodes. A node is in at most one queue at a time.
class ready_queue {
public:
    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

    void push(ready_node* node) noexcept {
        node->next_ = nullptr;
        if (tail_ != nullptr) {
            tail_->next_ = node;
        } else {
            head_ = node;
        }
        tail_ = node;
    }

    [[nodiscard]] ready_node* pop() noexcept {
        ready_node* node = head_;
        if (node != nullptr) {
            head_ = node->next_;
            if (head_ == nullptr) tail_ = nullptr;
            node->next_ = nullptr;
        }
        return node;
    }

    /// Moves every node to `into` (which must be empty), leaving this queue empty.
    void take_all(ready_queue& into) noexcept {
        into.head_ = head_;
        into.tail_ = tail_;
        head_ = tail_ = nullptr;
    }

private:
    ready_node* head_ = nullptr;
    ready_node* tail_ = nullptr;
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

    [[nodiscard]] T* front() noexcept {
        return empty() ? nullptr : static_cast<T*>(head_.next_);
    }

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

} // namespace corio::detail
