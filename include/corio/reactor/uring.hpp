#pragma once
/// \file
/// `corio::uring_reactor`: the io_uring backend (only when corio is built with liburing).

#include "corio/config.hpp"

#if defined(CORIO_HAS_URING)

#include "corio/detail/fd.hpp"
#include "corio/reactor/reactor.hpp"

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace corio {

/// Submits and waits in one `io_uring_enter` per loop iteration and reaps completions in
/// batches. Cross-thread wake-ups arrive as the completion of a read on an eventfd that is
/// kept armed in the ring.
class uring_reactor {
public:
    explicit uring_reactor(unsigned entries = 256) {
        io_uring_params params{};
        params.flags = IORING_SETUP_CLAMP;
        if (const int rc = ::io_uring_queue_init_params(entries, &ring_, &params); rc < 0) {
            detail::throw_errno(-rc, "io_uring_queue_init");
        }
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

    std::size_t poll(std::optional<std::chrono::nanoseconds> timeout) {
        if (!wake_armed_) arm_wake();
        io_uring_cqe* cqe = nullptr;
        int rc = 0;
        if (timeout && timeout->count() == 0) {
            if (::io_uring_sq_ready(&ring_) > 0) rc = ::io_uring_submit(&ring_);
        } else {
            __kernel_timespec ts{};
            if (timeout) {
                ts.tv_sec = timeout->count() / 1'000'000'000;
                ts.tv_nsec = timeout->count() % 1'000'000'000;
            }
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

private:
    static constexpr std::uint64_t wake_tag = 1;

    void arm_wake() {
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
            if (cqe->user_data == wake_tag) {
                wake_armed_ = false;
            } else {
                ++completed;
            }
        }
        ::io_uring_cq_advance(&ring_, seen);
        return completed;
    }

    io_uring ring_{};
    detail::unique_fd wake_fd_;
    std::uint64_t wake_count_ = 0;
    bool wake_armed_ = false;
};

static_assert(reactor<uring_reactor>);

} // namespace corio

#endif
