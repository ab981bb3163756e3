#pragma once
/// \file
/// Readiness watches (`add_reader`, `add_writer`): a poll operation per watched descriptor,
/// submitted again after each callback until removed, and the set of them a loop keeps for
/// each direction. The members that go through the loop are in impl/loop_access.hpp.

#include "corio/detail/intrusive.hpp"
#include "corio/reactor/operation.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <unordered_map>
#include <utility>

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
        if (auto it = watches_.find(fd); it != watches_.end()) {
            it->second->set_callback(std::move(callback));
            return;
        }
        auto watch = std::make_unique<readiness_watch>(loop, fd, events_, std::move(callback));
        watches_.emplace(fd, watch.get());
        try {
            watch->start();
        } catch (...) {
            watches_.erase(fd);
            throw;
        }
        (void)watch.release();  // owned through the map from now on
    }

    /// Stops watching `fd`; false if it was not watched.
    bool remove(int fd) noexcept {
        auto it = watches_.find(fd);
        if (it == watches_.end()) return false;
        readiness_watch* watch = it->second;
        watches_.erase(it);
        if (watch->stop()) delete watch;
        return true;
    }

    /// Stops every watch (when the loop closes).
    void release_all() noexcept {
        for (auto& [fd, watch] : watches_) {
            if (watch->stop()) delete watch;
        }
        watches_.clear();
    }

    /// Marks the watch of `fd` as corio's own (see `readiness_watch::set_background`).
    void set_background(int fd) { watches_.at(fd)->set_background(true); }

    /// How many of corio's own watches have their poll in flight.
    [[nodiscard]] std::size_t background_in_flight() const noexcept {
        std::size_t count = 0;
        for (const auto& entry : watches_) {
            if (entry.second->background() && entry.second->in_flight()) ++count;
        }
        return count;
    }

private:
    std::unordered_map<int, readiness_watch*> watches_;
    std::uint32_t events_;
};

}  // namespace detail

}  // namespace corio
