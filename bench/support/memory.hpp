// What a benchmark's tasks and frames hold: malloc's bytes plus the frame allocator's.
#pragma once

#include <corio/detail/frame_allocator.hpp>

#include <malloc.h>

#include <cstddef>

namespace corio_bench {

/// Bytes in use on this thread's behalf: what malloc has handed out, from its heap and through
/// mmap (glibc serves large blocks, such as a vector of a million handles, with mmap, which
/// `uordblks` alone does not count), plus the blocks of frames and task states the frame
/// allocator handed out and were not freed (its own chunks are mapped apart from malloc).
///
/// NOTE: mallinfo2 walks malloc's free lists, which after a million frees takes milliseconds:
/// keep it out of timed sections.
inline long bytes_in_use() {
    const struct mallinfo2 info = ::mallinfo2();
    return static_cast<long>(info.uordblks + info.hblkhd) +
           corio::detail::frame_allocator::live_bytes();
}

}  // namespace corio_bench
