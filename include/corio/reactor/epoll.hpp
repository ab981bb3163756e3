#pragma once
/// \file
/// `corio::epoll_reactor`: the reactor that works everywhere.

#include "corio/detail/fd.hpp"
#include "corio/reactor/operation.hpp"
#include "corio/reactor/reactor.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

namespace corio {

/// A proactor on top of epoll: an operation is tried at once; if the kernel says `EAGAIN`, it
/// waits for readiness and is retried then.
///
/// Two kinds of registration. A descriptor corio owns (`io_operation::owned_fd`: a stream's, a
/// server's) is registered once, edge-triggered, at its first wait, and stays so until
/// `forget(fd)`, with what the edges said about it (see `submit`). Any other descriptor gets a
/// one-shot registration per wait, re-armed (`EPOLL_CTL_MOD`, or `ADD` when the kernel does not
/// know it) for the next, so that one closed and reused behind the reactor's back is registered
/// again rather than waited on forever. Cross-thread wake-ups come through an eventfd, and a
/// wait with a timeout through a timerfd.
///
/// NOTE: a timeout given to `epoll_wait` (or `epoll_pwait2`) ends up to the thread's timer slack
/// late, 50 µs by default: `sleep(100us)` took 172 µs (`sleep_latency`; io_uring 122 µs). A
/// timerfd's expiry has no slack, so a wait with a timeout arms it (one `timerfd_settime`) and
/// waits without a timeout: 130 µs.
class epoll_reactor {
public:
    epoll_reactor() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (!epoll_) detail::throw_errno(errno, "epoll_create1");
        wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!wake_fd_) detail::throw_errno(errno, "eventfd");
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u64 = wake_tag;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &event) != 0) {
            detail::throw_errno(errno, "epoll_ctl");
        }
        timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
        if (!timer_fd_) detail::throw_errno(errno, "timerfd_create");
        // Edge-triggered: each expiry wakes one wait, and nothing needs to read the timer.
        event.events = EPOLLIN | EPOLLET;
        event.data.u64 = timer_tag;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timer_fd_.get(), &event) != 0) {
            detail::throw_errno(errno, "epoll_ctl");
        }
    }
    epoll_reactor(const epoll_reactor&) = delete;
    epoll_reactor& operator=(const epoll_reactor&) = delete;

    [[nodiscard]] static constexpr std::string_view name() noexcept { return "epoll"; }

    /// Starts `op`. Returns true if it completed at once (`op.result_` holds the result and
    /// `complete_` will not be called), false if it waits for readiness.
    ///
    /// A descriptor corio owns (`io_operation::owned_fd`) stays registered, edge-triggered, from
    /// its first wait until `forget(fd)`: its waits cost no `epoll_ctl`, and the reactor
    /// remembers whether it is known to be drained (no data) or full (no room), so that an
    /// operation that would only fail with EAGAIN goes straight to waiting. Other descriptors get
    /// a one-shot registration per wait, so that a descriptor closed and reused behind the
    /// reactor's back still works.
    bool submit(io_operation& op) {
        if (op.fd < 0) {
            op.result_ = -EBADF;
            return true;
        }
        const fd_state* known = state_if_any(op.fd);
        const bool persistent = known != nullptr && known->persistent;
        if (op.opcode != io_opcode::poll || persistent) {
            if (!(persistent && !known->ready_for(op))) {
                const int result = perform(op);
                if (result != -EAGAIN && result != -EWOULDBLOCK) {
                    note_result(op, result);
                    op.result_ = result;
                    return true;
                }
                if (persistent) state_of(op.fd).set_ready(op, false);
            }
        }
        fd_state& state = state_of(op.fd);
        append(state, op);
        if (state.persistent) return false;  // the registration stands
        if (op.owned_fd) state.persistent = true;
        arm(op.fd, state);
        return false;
    }

    /// Forgets what the reactor knows of descriptor `fd` (its registration, its readiness):
    /// corio's code calls it when it adopts a descriptor and before it closes one, since the
    /// number may then name another file. Operations still waiting on `fd` keep it as it is.
    void forget(int fd) noexcept {
        if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
        fd_state& state = fds_[static_cast<std::size_t>(fd)];
        if (state.waiting.empty()) state = fd_state{};
    }

    /// Withdraws `op` if it still waits: it then completes with `-ECANCELED`. An operation that
    /// already completed keeps its result. Either way `complete_` is called once.
    void cancel(io_operation& op) noexcept {
        if (op.reactor_state_ != waiting) return;
        unlink(state_of_existing(op.fd), op);
        finish(op, -ECANCELED);
    }

    /// Withdraws every waiting operation (when the loop closes).
    void cancel_all() noexcept {
        for (std::size_t fd = 0; fd < fds_.size(); ++fd) {
            while (io_operation* op = fds_[fd].waiting.front()) {
                unlink(fds_[fd], *op);
                finish(*op, -ECANCELED);
            }
        }
    }

    /// True when no operation is in flight or awaiting its completion call.
    [[nodiscard]] bool idle() const noexcept { return waiting_ == 0 && completed_.empty(); }
    /// How many operations are in flight (waiting, or completed and not yet delivered).
    [[nodiscard]] std::size_t in_flight_count() const noexcept {
        return waiting_ + completed_.size();
    }

    std::size_t poll(std::optional<std::chrono::nanoseconds> timeout) {
        if (!completed_.empty()) {
            timeout = std::chrono::nanoseconds{0};
        } else if (waiting_ == 0 && timeout && timeout->count() == 0) {
            // A look with no operation waiting: nothing it could find is needed now (the
            // eventfd and the timerfd matter only to a wait that blocks, and edges of idle
            // descriptors stay queued in the kernel until an operation waits). No syscall, as
            // io_uring's look at its completion ring: `sleep0_switch` 11.7 -> 9.2 ns (g++),
            // `create_task_await` 46 -> 41 ns (one `epoll_wait` saved every 64 steps).
            return 0;
        }
        std::array<epoll_event, 256> events;
        const int n = wait(events.data(), static_cast<int>(events.size()), timeout);
        if (n < 0 && errno != EINTR) detail::throw_errno(errno, "epoll_wait");
        for (int i = 0; i < n; ++i) {
            const epoll_event& event = events[static_cast<std::size_t>(i)];
            if (event.data.u64 == wake_tag) {
                drain_wake();
            } else if (event.data.u64 == timer_tag) {
                // The timeout: the loop fires its timers.
            } else {
                on_ready(static_cast<int>(event.data.u64), event.events);
            }
        }
        return deliver_completed();
    }

    void wake() noexcept {
        const std::uint64_t one = 1;
        // EAGAIN means the counter is saturated: the loop is already due to wake.
        [[maybe_unused]] const auto written = ::write(wake_fd_.get(), &one, sizeof one);
    }

    /// Syscalls this reactor made (for benchmarks: syscalls per operation).
    [[nodiscard]] std::uint64_t syscalls() const noexcept { return syscalls_; }

private:
    static constexpr std::uint64_t wake_tag = ~std::uint64_t{0};
    static constexpr std::uint64_t timer_tag = ~std::uint64_t{1};
    static constexpr std::uint32_t idle_state = 0;
    static constexpr std::uint32_t waiting = 1;
    static constexpr std::uint32_t completed = 2;
    // The connect already started; completion is read from SO_ERROR.
    static constexpr int connect_in_progress = 1;

    struct fd_state {
        operation_chain waiting;
        bool registered = false;
        // Registered edge-triggered for good (an owned descriptor), with what the edges said:
        // false once an operation found it drained (or full).
        bool persistent = false;
        bool readable = true;
        bool writable = true;
        // The peer hung up or the socket failed: no edge will come again, and every operation
        // must be tried (it finds end of stream or the error).
        bool read_hung_up = false;
        bool write_hung_up = false;

        [[nodiscard]] bool ready_for(const io_operation& op) const noexcept {
            return (interest_of(op) & EPOLLIN) != 0 ? readable || read_hung_up
                                                    : writable || write_hung_up;
        }
        void set_ready(const io_operation& op, bool ready) noexcept {
            ((interest_of(op) & EPOLLIN) != 0 ? readable : writable) = ready;
        }
    };

    fd_state& state_of(int fd) {
        const auto index = static_cast<std::size_t>(fd);
        if (index >= fds_.size()) fds_.resize(index + 1);
        return fds_[index];
    }
    fd_state& state_of_existing(int fd) noexcept { return fds_[static_cast<std::size_t>(fd)]; }

    void append(fd_state& state, io_operation& op) noexcept {
        state.waiting.push_back(op);
        op.reactor_state_ = waiting;
        ++waiting_;
    }

    void unlink(fd_state& state, io_operation& op) noexcept {
        state.waiting.remove(op);
        op.reactor_state_ = idle_state;
        --waiting_;
    }

    // Queues the completion for the next delivery: completions are never called from `submit`
    // or `cancel`, where the caller may be in the middle of something.
    void finish(io_operation& op, int result) noexcept {
        op.result_ = result;
        op.reactor_state_ = completed;
        completed_.push_back(op);
    }

    std::size_t deliver_completed() noexcept {
        // What completed up to now: completions that these calls cause wait for the next poll.
        std::size_t delivered = 0;
        operation_chain batch = std::move(completed_);
        while (io_operation* op = batch.pop_front()) {
            op->reactor_state_ = idle_state;
            op->complete_(op, op->result_);
            ++delivered;
        }
        return delivered;
    }

    static std::uint32_t interest_of(const io_operation& op) noexcept {
        switch (op.opcode) {
        case io_opcode::read:
        case io_opcode::recv:
        case io_opcode::recvmsg:
        case io_opcode::accept: return EPOLLIN;
        case io_opcode::write:
        case io_opcode::send:
        case io_opcode::sendmsg:
        case io_opcode::connect: return EPOLLOUT;
        case io_opcode::fsync: return 0;
        case io_opcode::poll: return op.poll_events & (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP);
        }
        return 0;
    }

    // Arms a one-shot registration for what the waiters of `fd` need.
    void arm(int fd, fd_state& state) {
        std::uint32_t interest = 0;
        for (io_operation* op = state.waiting.front(); op != nullptr;
             op = operation_chain::next(*op)) {
            interest |= interest_of(*op);
        }
        epoll_event event{};
        event.events =
            state.persistent ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : interest | EPOLLONESHOT;
        event.data.u64 = static_cast<std::uint64_t>(fd);
        ++syscalls_;
        int rc =
            ::epoll_ctl(epoll_.get(), state.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event);
        if (rc != 0 && (errno == ENOENT || errno == EEXIST)) {
            // The kernel forgot the descriptor (closed and reused) or knew it already.
            ++syscalls_;
            rc = ::epoll_ctl(epoll_.get(), errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd,
                             &event);
        }
        if (rc == 0) {
            state.registered = true;
            return;
        }
        // EPERM: a regular file or directory, always "ready"; anything else is the waiters'
        // error (EBADF...).
        const int error = errno;
        state.persistent = false;
        while (io_operation* op = state.waiting.front()) {
            unlink(state, *op);
            if (error == EPERM) {
                finish(*op, op->opcode == io_opcode::poll ? static_cast<int>(interest_of(*op))
                                                          : perform(*op));
            } else {
                finish(*op, -error);
            }
        }
    }

    void on_ready(int fd, std::uint32_t events) {
        if (static_cast<std::size_t>(fd) >= fds_.size()) return;
        fd_state& state = fds_[static_cast<std::size_t>(fd)];
        if (state.persistent) {
            if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) state.readable = true;
            if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) state.writable = true;
            if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) state.read_hung_up = true;
            if ((events & (EPOLLHUP | EPOLLERR)) != 0) state.write_hung_up = true;
        }
        for (io_operation* op = state.waiting.front(); op != nullptr;) {
            io_operation* next = operation_chain::next(*op);
            const std::uint32_t interest = interest_of(*op);
            if ((events & (interest | EPOLLERR | EPOLLHUP)) != 0) {
                const int result = op->opcode == io_opcode::poll
                                       ? static_cast<int>(events & (interest | EPOLLERR | EPOLLHUP))
                                       : perform(*op);
                if (result != -EAGAIN && result != -EWOULDBLOCK) {
                    note_result(*op, result);
                    unlink(state, *op);
                    finish(*op, result);
                } else if (state.persistent) {
                    state.set_ready(*op, false);
                }
            }
            op = next;
        }
        if (!state.waiting.empty() && !state.persistent) arm(fd, state);
    }

    [[nodiscard]] const fd_state* state_if_any(int fd) const noexcept {
        const auto index = static_cast<std::size_t>(fd);
        return index < fds_.size() ? &fds_[index] : nullptr;
    }
    [[nodiscard]] fd_state* state_if_any(int fd) noexcept {
        const auto index = static_cast<std::size_t>(fd);
        return index < fds_.size() ? &fds_[index] : nullptr;
    }

    // What a result says about the descriptor: a short read from an owned descriptor almost
    // always drained it (if more arrives, its edge says so); a descriptor `accept` just made
    // is new, whatever its number named before.
    void note_result(const io_operation& op, int result) noexcept {
        if (result < 0) return;
        if (op.opcode == io_opcode::accept) {
            forget(result);
            return;
        }
        if ((op.opcode == io_opcode::recv || op.opcode == io_opcode::read) &&
            static_cast<std::size_t>(result) < op.length) {
            if (fd_state* state = state_if_any(op.fd); state != nullptr && state->persistent) {
                state->readable = false;
            }
        }
    }

    // The syscall an operation stands for: its result, or -errno.
    int perform(io_operation& op) noexcept {
        for (;;) {
            ++syscalls_;
            long rc = 0;
            switch (op.opcode) {
            case io_opcode::read:
                rc = op.offset == io_operation::no_offset
                         ? ::read(op.fd, op.buffer, op.length)
                         : ::pread(op.fd, op.buffer, op.length, static_cast<off_t>(op.offset));
                break;
            case io_opcode::write:
                rc = op.offset == io_operation::no_offset
                         ? ::write(op.fd, op.buffer, op.length)
                         : ::pwrite(op.fd, op.buffer, op.length, static_cast<off_t>(op.offset));
                break;
            case io_opcode::recv: rc = ::recv(op.fd, op.buffer, op.length, op.flags); break;
            case io_opcode::send:
                rc = ::send(op.fd, op.buffer, op.length, op.flags | MSG_NOSIGNAL);
                break;
            case io_opcode::recvmsg:
                rc = ::recvmsg(op.fd, static_cast<msghdr*>(op.buffer), op.flags);
                break;
            case io_opcode::sendmsg:
                rc = ::sendmsg(op.fd, static_cast<const msghdr*>(op.buffer),
                               op.flags | MSG_NOSIGNAL);
                break;
            case io_opcode::fsync:
                rc = (op.flags & fsync_data_only) != 0 ? ::fdatasync(op.fd) : ::fsync(op.fd);
                break;
            case io_opcode::accept:
                rc = ::accept4(op.fd, op.address, op.address_length, SOCK_CLOEXEC | SOCK_NONBLOCK);
                break;
            case io_opcode::connect:
                if (op.reactor_state_ == waiting || op.result_ == connect_in_progress) {
                    int error = 0;
                    socklen_t length = sizeof error;
                    if (::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
                        return -errno;
                    }
                    return error == 0 ? 0 : -error;
                }
                rc = ::connect(op.fd, op.address, *op.address_length);
                if (rc != 0 && errno == EINPROGRESS) {
                    op.result_ = connect_in_progress;
                    return -EAGAIN;
                }
                break;
            case io_opcode::poll: {
                pollfd descriptor{op.fd, static_cast<short>(op.poll_events), 0};
                rc = ::poll(&descriptor, 1, 0);
                if (rc > 0) rc = descriptor.revents;
                if (rc == 0) return -EAGAIN;
                break;
            }
            }
            if (rc >= 0) return static_cast<int>(rc);
            if (errno != EINTR) return -errno;
        }
    }

    int wait(epoll_event* events, int capacity, std::optional<std::chrono::nanoseconds> timeout) {
        ++syscalls_;
        if (timeout && timeout->count() <= 0)
            return ::epoll_wait(epoll_.get(), events, capacity, 0);
        if (timeout) {
            // A timer armed for an earlier wait that ended on I/O is simply re-armed; one left
            // armed before a wait without a timeout wakes it once, for nothing.
            itimerspec expiry{};
            expiry.it_value.tv_sec = static_cast<time_t>(timeout->count() / 1'000'000'000);
            expiry.it_value.tv_nsec = static_cast<long>(timeout->count() % 1'000'000'000);
            ++syscalls_;
            if (::timerfd_settime(timer_fd_.get(), 0, &expiry, nullptr) != 0) {
                detail::throw_errno(errno, "timerfd_settime");
            }
        }
        return ::epoll_wait(epoll_.get(), events, capacity, -1);
    }

    void drain_wake() noexcept {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto read = ::read(wake_fd_.get(), &count, sizeof count);
    }

    detail::unique_fd epoll_;
    detail::unique_fd wake_fd_;
    detail::unique_fd timer_fd_;
    std::vector<fd_state> fds_;
    operation_chain completed_;
    std::size_t waiting_ = 0;
    std::uint64_t syscalls_ = 0;
};

static_assert(reactor<epoll_reactor>);

}  // namespace corio
