#pragma once
/// \file
/// `corio::unique_fd`: a file descriptor that closes itself. On the ground floor, as the reactors
/// hold their descriptors in it; users include it as <corio/system/unique_fd.hpp>.

#include <utility>

#include <unistd.h>

namespace corio {

/// Owns a file descriptor (like `std::unique_ptr` owns memory): closes it when destroyed.
/// Movable, not copyable; `-1` is the empty value.
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    ~unique_fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// Gives the descriptor up without closing it.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    /// Closes the descriptor held (if any) and takes `fd`.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace corio
