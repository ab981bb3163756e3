// Replaces the global operator new/delete to count this thread's allocations, so that a test
// can show that some path (waiting on a lock, a queue, ...) allocates nothing:
//
//     const long before = corio_test::allocations();
//     ... the path ...
//     const long allocated = corio_test::allocations() - before;  // read it before CHECK
//
// The replacement defines the global functions: include this header in exactly one translation
// unit of a test executable (every tests/**/*_test.cpp is one).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace corio_test::detail {
inline thread_local long allocation_count = 0;
}  // namespace corio_test::detail

namespace corio_test {
/// Calls to operator new on this thread so far.
[[nodiscard]] inline long allocations() noexcept { return detail::allocation_count; }
}  // namespace corio_test

// The whole unaligned family is replaced, so that no runtime's own version (AddressSanitizer
// brings one) is ever paired with these. noinline: once inlined, g++ pairs the `free` below
// with the `new` expression at each call site and warns (-Wmismatched-new-delete), although
// the pair is consistent.
[[gnu::noinline]] void* operator new(std::size_t size) {
    ++corio_test::detail::allocation_count;
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size) { return ::operator new(size); }
[[gnu::noinline]] void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    ++corio_test::detail::allocation_count;
    return std::malloc(size == 0 ? 1 : size);
}
[[gnu::noinline]] void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
    return ::operator new(size, tag);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
