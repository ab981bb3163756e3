#pragma once
/// \file
/// A per-thread recycling allocator for coroutine frames and task states.
///
/// Frames are recycled by size class (8-byte steps up to 2 KiB): freeing pushes the block on
/// a thread-local free list, allocating pops it, so a coroutine call costs a few instructions
/// instead of a trip through malloc. Larger blocks go straight to `::operator new`.
/// Every block comes from `::operator new` on its own, so it has the alignment `new` gives
/// (16 bytes); 8-byte classes fit malloc's chunks (8 bytes of header, 16-byte steps), so that a
/// 120-byte task state takes a 128-byte chunk, not 144.
/// Blocks may be freed on another thread than the one that allocated them; they then join the
/// freeing thread's lists. Each thread's cache is returned to the system when the thread ends.

#include "corio/config.hpp"

#include <cstddef>
#include <new>

namespace corio::detail {

class frame_allocator {
public:
    static constexpr std::size_t granularity = 8;
    static constexpr std::size_t max_cached_size = 2048;
    static constexpr std::size_t class_count = max_cached_size / granularity;
    /// A thread keeps at most this much memory in its free lists: enough for a burst of a
    /// million tasks (about 250 MB of frames and states) to be recycled rather than go back
    /// to malloc, which would trim its heap and take page faults to grow it again (gather of
    /// a million coros: 210 ns per element with a 64 MiB cap, 128 ns with this one, g++ 12).
    static constexpr std::size_t max_cached_bytes = std::size_t{256} << 20;

    [[nodiscard]] [[gnu::always_inline]] static void* allocate(std::size_t size) {
        auto& s = state_;
        if constexpr (!config::address_sanitizer) {
            if (size <= max_cached_size) {
                const std::size_t cls = class_of(size);
                if (free_block* block = s.heads[cls]) [[likely]] {
                    s.heads[cls] = block->next;
                    s.cached_bytes -= rounded(size);
                    return block;
                }
                return allocate_from_system(rounded(size));
            }
        }
        return allocate_from_system(size);
    }

    [[gnu::always_inline]] static void deallocate(void* p, std::size_t size) noexcept {
        auto& s = state_;
        if constexpr (!config::address_sanitizer) {
            if (size <= max_cached_size) {
                const std::size_t cached = s.cached_bytes + rounded(size);
                if (cached <= max_cached_bytes) [[likely]] {
                    // The first block cached on this thread arranges for the cache to go when
                    // the thread does.
                    if (!s.cleanup_registered) [[unlikely]] register_cleanup();
                    const std::size_t cls = class_of(size);
                    auto* block = static_cast<free_block*>(p);
                    block->next = s.heads[cls];
                    s.heads[cls] = block;
                    s.cached_bytes = cached;
                    return;
                }
                deallocate_to_system(p, rounded(size));
                return;
            }
        }
        deallocate_to_system(p, size);
    }

    /// Bytes of frames and states allocated and not yet freed by this thread (with their size
    /// classes' rounding): a leak detector for tests. Counted from what the thread took from and
    /// gave back to the system, less what its cache holds, so that recycling a block costs no
    /// counting.
    [[nodiscard]] static long live_bytes() noexcept {
        return static_cast<long>(state_.system_bytes - state_.cached_bytes);
    }

    /// Returns this thread's cached blocks to the system.
    static void trim() noexcept {
        auto& s = state_;
        for (std::size_t cls = 0; cls < class_count; ++cls) {
            while (free_block* block = s.heads[cls]) {
                s.heads[cls] = block->next;
                ::operator delete(block);
            }
        }
        s.system_bytes -= s.cached_bytes;
        s.cached_bytes = 0;
    }

private:
    struct free_block {
        free_block* next;
    };

    // Trivially constructible and destructible, so that a thread_local access is a plain
    // %fs-relative load with no initialisation guard on the hot path.
    struct thread_state {
        free_block* heads[class_count];
        std::size_t cached_bytes;
        // Taken from the system less given back; wraps below zero on a thread that frees more
        // than it allocated (blocks may be freed on another thread than their own).
        std::size_t system_bytes;
        bool cleanup_registered;
    };

    struct cleanup {
        ~cleanup() {
            trim();
            // Frames freed later in this thread's teardown go straight back to the system.
            state_.cached_bytes = max_cached_bytes;
        }
    };

    static constexpr std::size_t class_of(std::size_t size) noexcept {
        return size == 0 ? 0 : (size - 1) / granularity;
    }
    static constexpr std::size_t rounded(std::size_t size) noexcept {
        return (class_of(size) + 1) * granularity;
    }

    [[gnu::noinline]] static void* allocate_from_system(std::size_t bytes) {
        void* p = ::operator new(bytes);
        state_.system_bytes += bytes;
        return p;
    }
    [[gnu::noinline]] static void deallocate_to_system(void* p, std::size_t bytes) noexcept {
        state_.system_bytes -= bytes;
        ::operator delete(p);
    }

    // Kept out of line: touching a thread_local with a destructor costs a guard check, paid
    // once per thread here rather than on every allocation.
    [[gnu::cold]] [[gnu::noinline]] static void register_cleanup() noexcept {
        state_.cleanup_registered = true;
        static thread_local cleanup on_thread_exit;
        (void)&on_thread_exit;
    }

    static inline thread_local constinit thread_state state_{};
};

/// Gives a class (a coroutine promise or a task state) the recycling allocator.
struct recycled {
    [[gnu::always_inline]] static void* operator new(std::size_t size) {
        return frame_allocator::allocate(size);
    }
    [[gnu::always_inline]] static void operator delete(void* p, std::size_t size) noexcept {
        frame_allocator::deallocate(p, size);
    }
};

} // namespace corio::detail
