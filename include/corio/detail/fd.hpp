#pragma once
/// \file
/// A file descriptor owned by RAII, and errno-to-exception helpers.

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include <unistd.h>

namespace corio::detail {

[[noreturn]] inline void throw_errno(int error, const char* what) {
    throw std::system_error(error, std::system_category(), what);
}

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
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

} // namespace corio::detail
