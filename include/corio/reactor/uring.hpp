#pragma once
/// \file
/// `corio::uring_reactor`: the io_uring backend (only when corio is built with liburing).

#include "corio/config.hpp"

#if defined(CORIO_HAS_URING)

#include "corio/detail/fd.hpp"
#include "corio/reactor/operation.hpp"
#include "corio/reactor/reactor.hpp"

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace corio {

/// Each operation becomes one SQE; the loop's iteration submits them all and waits in a
/// single `io_uring_enter` (`io_uring_submit_and_wait_timeout`, which needs
/// `IORING_FEAT_EXT_ARG`, kernel 5.11), and completions are reaped in a batch. Cancelling
/// submits an `IORING_OP_ASYNC_CANCEL`; the operation still completes once, with
/// `-ECANCELED` or with its own result if it won the race. Cross-thread wake-ups arrive as
/// the completion of a read on an eventfd kept armed in the ring.
class uring_reactor {
public:
    explicit uring_reactor(unsigned entries = 256) {
        // Cooperative task running (kernel 5.19): completions are run when this thread next
        // enters the kernel (or peeks, which enters only when the kernel flags pending work),
        // instead of interrupting it with task work at every completion. On the echo benchmark
        // it takes server CPU per request from 6.9 to 6.3 us (bench/echo). Older kernels refuse
        // the flags: then without them.
        io_uring_params params{};
        params.flags = IORING_SETUP_CLAMP | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        int rc = ::io_uring_queue_init_params(entries, &ring_, &params);
        if (rc == -EINVAL) {
            params = io_uring_params{};
            params.flags = IORING_SETUP_CLAMP;
            rc = ::io_uring_queue_init_params(entries, &ring_, &params);
        }
        if (rc < 0) detail::throw_errno(-rc, "io_uring_queue_init");
        if ((params.features & IORING_FEAT_EXT_ARG) == 0) {
            // Without it a timed wait costs a timeout SQE and a second CQE per iteration.
            ::io_uring_queue_exit(&ring_);
            detail::throw_errno(ENOSYS, "io_uring without IORING_FEAT_EXT_ARG");
        }
        wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!wake_fd_) {
            ::io_uring_queue_exit(&ring_);
            detail::throw_errno(errno, "eventfd");
        }
    }
    uring_reactor(const uring_reactor&) = delete;
    uring_reactor& operator=(const uring_reactor&) = delete;
    ~uring_reactor() { ::io_uring_queue_exit(&ring_); }

    [[nodiscard]] static constexpr std::string_view name() noexcept { return "io_uring"; }

    /// Queues `op` for the next `io_uring_enter` and returns false, its completion comes from
    /// `poll`; returns true at once, with `-EBUSY`, only when the submission queue stays full.
    bool submit(io_operation& op) {
        io_uring_sqe* sqe = next_sqe();
        if (sqe == nullptr) {
            op.result_ = -EBUSY;
            return true;
        }
        switch (op.opcode) {
        case io_opcode::read:
            ::io_uring_prep_read(sqe, op.fd, op.buffer, static_cast<unsigned>(op.length),
                                 op.offset == io_operation::no_offset ? ~std::uint64_t{0}
                                                                      : op.offset);
            break;
        case io_opcode::write:
            ::io_uring_prep_write(sqe, op.fd, op.buffer, static_cast<unsigned>(op.length),
                                  op.offset == io_operation::no_offset ? ~std::uint64_t{0}
                                                                       : op.offset);
            break;
        case io_opcode::recv:
            ::io_uring_prep_recv(sqe, op.fd, op.buffer, op.length, op.flags);
            break;
        case io_opcode::send:
            ::io_uring_prep_send(sqe, op.fd, op.buffer, op.length, op.flags | MSG_NOSIGNAL);
            break;
        case io_opcode::accept:
            ::io_uring_prep_accept(sqe, op.fd, op.address, op.address_length,
                                   SOCK_CLOEXEC | SOCK_NONBLOCK);
            break;
        case io_opcode::connect:
            ::io_uring_prep_connect(sqe, op.fd, op.address, *op.address_length);
            break;
        case io_opcode::poll: ::io_uring_prep_poll_add(sqe, op.fd, op.poll_events); break;
        case io_opcode::recvmsg:
            ::io_uring_prep_recvmsg(sqe, op.fd, static_cast<msghdr*>(op.buffer),
                                    static_cast<unsigned>(op.flags));
            break;
        case io_opcode::sendmsg:
            ::io_uring_prep_sendmsg(sqe, op.fd, static_cast<const msghdr*>(op.buffer),
                                    static_cast<unsigned>(op.flags | MSG_NOSIGNAL));
            break;
        case io_opcode::fsync:
            ::io_uring_prep_fsync(sqe, op.fd,
                                  (op.flags & fsync_data_only) != 0 ? IORING_FSYNC_DATASYNC : 0U);
            break;
        }
        ::io_uring_sqe_set_data(sqe, &op);
        link_in_flight(op);
        return false;
    }

    /// Asks the kernel to withdraw `op`; it completes once, with `-ECANCELED` or its result.
    void cancel(io_operation& op) noexcept {
        if (op.reactor_state_ != in_flight) return;
        io_uring_sqe* sqe = next_sqe();
        if (sqe == nullptr) return;  // the ring is jammed; the operation completes on its own
        ::io_uring_prep_cancel(sqe, &op, 0);
        ::io_uring_sqe_set_data64(sqe, cancel_tag);
        op.reactor_state_ = cancelling;
    }

    /// Withdraws every operation in flight (when the loop closes).
    void cancel_all() noexcept {
        for (io_operation* op = in_flight_.front(); op != nullptr;
             op = operation_chain::next(*op)) {
            cancel(*op);
        }
    }

    /// Nothing to forget: each operation is a fresh SQE naming its descriptor, and the ring
    /// keeps no registration between operations.
    void forget(int /*fd*/) noexcept {}

    /// True when no operation is in flight.
    [[nodiscard]] bool idle() const noexcept { return in_flight_.empty(); }
    /// How many operations are in flight.
    [[nodiscard]] std::size_t in_flight_count() const noexcept { return in_flight_count_; }

    std::size_t poll(std::optional<std::chrono::nanoseconds> timeout) {
        if (!wake_armed_) arm_wake();
        int rc = 0;
        if (timeout && timeout->count() == 0) {
            // With cooperative task running, finished operations may wait for this thread to
            // enter the kernel: the kernel says so in the SQ ring's flags.
            const bool task_work = (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) != 0;
            if (task_work) {
                ++syscalls_;
                rc = ::io_uring_submit_and_get_events(&ring_);
            } else if (::io_uring_sq_ready(&ring_) > 0) {
                ++syscalls_;
                rc = ::io_uring_submit(&ring_);
            }
        } else {
            __kernel_timespec ts{};
            if (timeout) {
                ts.tv_sec = timeout->count() / 1'000'000'000;
                ts.tv_nsec = timeout->count() % 1'000'000'000;
            }
            io_uring_cqe* cqe = nullptr;
            ++syscalls_;
            rc = ::io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout ? &ts : nullptr,
                                                    nullptr);
        }
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            detail::throw_errno(-rc, "io_uring_enter");
        }
        return reap();
    }

    void wake() noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto written = ::write(wake_fd_.get(), &one, sizeof one);
    }

    /// Syscalls this reactor made (for benchmarks: syscalls per operation).
    [[nodiscard]] std::uint64_t syscalls() const noexcept { return syscalls_; }

private:
    static constexpr std::uint64_t wake_tag = 1;
    static constexpr std::uint64_t cancel_tag = 2;
    static constexpr std::uint32_t idle_state = 0;
    static constexpr std::uint32_t in_flight = 1;
    static constexpr std::uint32_t cancelling = 2;

    io_uring_sqe* next_sqe() noexcept {
        io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
        if (sqe == nullptr) {
            // The submission queue is full: hand it to the kernel now and try again.
            ++syscalls_;
            ::io_uring_submit(&ring_);
            sqe = ::io_uring_get_sqe(&ring_);
        }
        return sqe;
    }

    void link_in_flight(io_operation& op) noexcept {
        op.reactor_state_ = in_flight;
        in_flight_.push_front(op);
        ++in_flight_count_;
    }

    void unlink_in_flight(io_operation& op) noexcept {
        in_flight_.remove(op);
        op.reactor_state_ = idle_state;
        --in_flight_count_;
    }

    void arm_wake() noexcept {
        io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
        if (sqe == nullptr) return;  // the ring is full; armed again on the next poll
        ::io_uring_prep_read(sqe, wake_fd_.get(), &wake_count_, sizeof wake_count_, 0);
        ::io_uring_sqe_set_data64(sqe, wake_tag);
        wake_armed_ = true;
    }

    std::size_t reap() noexcept {
        std::size_t completed = 0;
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++seen;
            const std::uint64_t data = cqe->user_data;
            if (data == wake_tag) {
                wake_armed_ = false;
            } else if (data != cancel_tag) {
                auto* op = reinterpret_cast<io_operation*>(static_cast<std::uintptr_t>(data));
                unlink_in_flight(*op);
                op->result_ = cqe->res;
                op->complete_(op, cqe->res);
                ++completed;
            }
        }
        ::io_uring_cq_advance(&ring_, seen);
        return completed;
    }

    io_uring ring_{};
    detail::unique_fd wake_fd_;
    operation_chain in_flight_;
    std::size_t in_flight_count_ = 0;
    std::uint64_t wake_count_ = 0;
    std::uint64_t syscalls_ = 0;
    bool wake_armed_ = false;
};

static_assert(reactor<uring_reactor>);

}  // namespace corio

#endif
