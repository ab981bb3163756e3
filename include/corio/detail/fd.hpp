#pragma once
/// \file
/// errno-to-exception helpers.

#include "corio/detail/unique_fd.hpp"

#include <system_error>

namespace corio::detail {

using corio::unique_fd;

[[noreturn]] inline void throw_errno(int error, const char* what) {
    throw std::system_error(error, std::system_category(), what);
}

/// Throws `std::system_error` for a negative (`-errno`) result; returns it otherwise.
inline int check_result(int result, const char* what) {
    if (result < 0) throw_errno(-result, what);
    return result;
}

}  // namespace corio::detail
