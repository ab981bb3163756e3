#pragma once
/// \file
/// Readiness watches (`add_reader`, `add_writer`): a poll operation per watched descriptor,
/// submitted again after each callback until removed, and the set of them a loop keeps for
/// each direction. The members that go through the loop are in impl/loop_access.hpp.

#include "corio/detail/intrusive.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/reactor/operation.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

namespace corio {

class event_loop;

namespace detail {

/// A readiness callback registered with `add_reader` / `add_writer`: a poll operation that is
/// submitted again after each callback, until removed.
class readiness_watch : public io_operation, public ready_node {
public:
    readiness_watch(event_loop& loop, int descriptor, std::uint32_t events,
                    std::function<void()> callback)
        : ready_node(&run_ready), loop_(&loop), callback_(std::move(callback)) {
        opcode = io_opcode::poll;
        fd = descriptor;
        poll_events = events;
        complete_ = &on_complete;
    }
    readiness_watch(const readiness_watch&) = delete;
    readiness_watch& operator=(const readiness_watch&) = delete;

    void set_callback(std::function<void()> callback) { callback_ = std::move(callback); }
    /// A background watch (corio's own, e.g. a signalfd) does not count as something that could
    /// wake a task, for deadlock detection.
    void set_background(bool background) noexcept { background_ = background; }
    [[nodiscard]] bool background() const noexcept { return background_; }
    [[nodiscard]] bool in_flight() const noexcept { return in_flight_; }
    void start();
    /// Stops watching. Returns true if the watch may be deleted now; otherwise it deletes
    /// itself once its operation or its queued callback is done.
    bool stop() noexcept;

private:
    static void on_complete(io_operation* op, int result) noexcept;
    static void run_ready(ready_node* node, bool run) noexcept;
    void settle() noexcept {
        if (stopped_ && !in_flight_ && !queued_) delete this;
    }

    event_loop* loop_;
    std::function<void()> callback_;
    bool in_flight_ = false;
    bool queued_ = false;
    bool stopped_ = false;
    bool background_ = false;
};

/// The watches of one direction (reading or writing), by descriptor: at most one per descriptor.
class watch_set {
public:
    explicit watch_set(std::uint32_t events) noexcept : events_(events) {}
    watch_set(const watch_set&) = delete;
    watch_set& operator=(const watch_set&) = delete;
    // No destructor of its own: the loop's `close()` releases the watches while the reactor
    // their operations are in still exists.

    /// Watches `fd`, or gives its watch a new callback.
    void add(event_loop& loop, int fd, std::function<void()> callback) {
        if (fd < 0) throw std::invalid_argument("add_reader/add_writer: invalid file descriptor");
        if (readiness_watch* watch = find(fd)) {
            watch->set_callback(std::move(callback));
            return;
        }
        const auto index = static_cast<std::size_t>(fd);
        if (index >= by_fd_.size()) {
            // A new table rather than `resize`, whose inserting machinery every file compiles.
            std::vector<readiness_watch*> grown(std::max(index + 1, 2 * by_fd_.size()), nullptr);
            std::copy(by_fd_.begin(), by_fd_.end(), grown.begin());
            by_fd_.swap(grown);
        }
        auto watch = make_owned<readiness_watch>(loop, fd, events_, std::move(callback));
        by_fd_[index] = watch.get();
        try {
            watch->start();
        } catch (...) {
            by_fd_[index] = nullptr;
            throw;
        }
        (void)watch.release();  // owned through the table from now on
        ++count_;
    }

    /// Stops watching `fd`; false if it was not watched.
    bool remove(int fd) noexcept {
        readiness_watch* watch = find(fd);
        if (watch == nullptr) return false;
        by_fd_[static_cast<std::size_t>(fd)] = nullptr;
        --count_;
        if (watch->stop()) delete watch;
        return true;
    }

    /// Stops every watch (when the loop closes).
    void release_all() noexcept {
        for (readiness_watch*& watch : by_fd_) {
            if (watch != nullptr && watch->stop()) delete watch;
            watch = nullptr;
        }
        count_ = 0;
    }

    /// Marks the watch of `fd` as corio's own (see `readiness_watch::set_background`).
    void set_background(int fd) {
        readiness_watch* watch = find(fd);
        if (watch == nullptr) throw std::logic_error("set_background: descriptor not watched");
        watch->set_background(true);
    }

    /// How many of corio's own watches have their poll in flight.
    [[nodiscard]] std::size_t background_in_flight() const noexcept {
        std::size_t count = 0;
        if (count_ == 0) return count;
        for (const readiness_watch* watch : by_fd_) {
            if (watch != nullptr && watch->background() && watch->in_flight()) ++count;
        }
        return count;
    }

private:
    [[nodiscard]] readiness_watch* find(int fd) const noexcept {
        const auto index = static_cast<std::size_t>(fd);
        return index < by_fd_.size() ? by_fd_[index] : nullptr;
    }

    // Indexed by descriptor: descriptors are small and dense, the lowest free one is reused.
    std::vector<readiness_watch*> by_fd_;
    std::size_t count_ = 0;
    std::uint32_t events_;
};

}  // namespace detail

}  // namespace corio
