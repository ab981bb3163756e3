#pragma once
/// \file
/// `corio::epoll_reactor`: the reactor that works everywhere.

#include "corio/detail/fd.hpp"
#include "corio/reactor/reactor.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

namespace corio {

/// Waits with `epoll_pwait2` (nanosecond timeouts; `epoll_wait` rounding up to milliseconds
/// on kernels older than 5.11) and is woken through an eventfd.
class epoll_reactor {
public:
    epoll_reactor() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (!epoll_) detail::throw_errno(errno, "epoll_create1");
        wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!wake_fd_) detail::throw_errno(errno, "eventfd");
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.ptr = nullptr;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &event) != 0) {
            detail::throw_errno(errno, "epoll_ctl");
        }
    }

    [[nodiscard]] static constexpr std::string_view name() noexcept { return "epoll"; }

    std::size_t poll(std::optional<std::chrono::nanoseconds> timeout) {
        std::array<epoll_event, 128> events;
        const int n = wait(events.data(), static_cast<int>(events.size()), timeout);
        if (n < 0) {
            if (errno == EINTR) return 0;
            detail::throw_errno(errno, "epoll_wait");
        }
        std::size_t completed = 0;
        for (int i = 0; i < n; ++i) {
            if (events[static_cast<std::size_t>(i)].data.ptr == nullptr) {
                drain_wake();
            } else {
                ++completed;
            }
        }
        return completed;
    }

    void wake() noexcept {
        const std::uint64_t one = 1;
        // EAGAIN means the counter is saturated: the loop is already due to wake.
        [[maybe_unused]] const auto written = ::write(wake_fd_.get(), &one, sizeof one);
    }

private:
    int wait(epoll_event* events, int capacity, std::optional<std::chrono::nanoseconds> timeout) {
        if (timeout && timeout->count() == 0) {
            return ::epoll_wait(epoll_.get(), events, capacity, 0);
        }
        if (have_pwait2_) {
            timespec ts{};
            if (timeout) {
                ts.tv_sec = static_cast<time_t>(timeout->count() / 1'000'000'000);
                ts.tv_nsec = static_cast<long>(timeout->count() % 1'000'000'000);
            }
            const int n =
                ::epoll_pwait2(epoll_.get(), events, capacity, timeout ? &ts : nullptr, nullptr);
            if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return n;
            have_pwait2_ = false;
        }
        int ms = -1;
        if (timeout) {
            // Round up, so that a timer is never found not yet due when the wait ends.
            const auto rounded = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
            ms = rounded > 86'400'000 ? 86'400'000 : static_cast<int>(rounded);
        }
        return ::epoll_wait(epoll_.get(), events, capacity, ms);
    }

    void drain_wake() noexcept {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto read = ::read(wake_fd_.get(), &count, sizeof count);
    }

    detail::unique_fd epoll_;
    detail::unique_fd wake_fd_;
    bool have_pwait2_ = true;
};

static_assert(reactor<epoll_reactor>);

} // namespace corio
