#pragma once
/// \file
/// The one place where corio looks at the platform and the build configuration: everything
/// else is written against the constants declared here, with `if constexpr`. The exceptions
/// are where a name may not exist at all: liburing's (reactor/uring.hpp, and run.hpp's choice
/// of it), a newer kernel's `MADV_POPULATE_WRITE` (detail/frame_allocator.hpp), and what the
/// compiler offers for recording an await's site (detail/await_site.hpp, its one type).

#if !defined(__linux__)
#error "corio needs Linux (epoll, eventfd; io_uring when available)"
#endif

#if defined(CORIO_HAS_URING) && defined(CORIO_NO_URING)
#undef CORIO_HAS_URING
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_ASAN 1
#endif
#endif

namespace corio::config {

/// True when corio was built against liburing (the io_uring reactor is available).
#if defined(CORIO_HAS_URING)
inline constexpr bool has_uring = true;
#else
inline constexpr bool has_uring = false;
#endif

/// True under AddressSanitizer: the frame allocator then hands every frame back to the
/// system at once, so that ASan sees each use after free.
#if defined(CORIO_ASAN)
inline constexpr bool address_sanitizer = true;
#else
inline constexpr bool address_sanitizer = false;
#endif

}  // namespace corio::config
