#pragma once
/// \file
/// A per-thread recycling allocator for coroutine frames and task states.
///
/// Blocks up to 2 KiB are recycled by size class (8-byte steps): freeing pushes the block on a
/// thread-local free list, allocating pops it, so a coroutine call costs a few instructions
/// instead of a trip through malloc. A class with nothing to recycle carves its block from a
/// chunk of memory mapped for the purpose, so a block costs exactly its rounded size (malloc
/// adds an 8-byte header and rounds to 16: a 112-byte frame took 128 bytes). Larger blocks go
/// straight to `::operator new`.
///
/// Alignment: a coroutine frame is laid out for `new`'s alignment (16), so a plain `allocate`
/// rounds to 16 bytes; `allocate<8>`, for a class that needs no more (a task state), rounds to
/// 8. Sizes that are multiples of 16 are carved 16-aligned and the others from a region of their
/// own, so a size class never mixes alignments.
///
/// Chunks double from 128 KiB to 2 MiB, and the 2 MiB ones are faulted in when mapped. Memory is
/// kept for reuse, never returned to the system: a block freed on another thread joins that
/// thread's lists, and a thread that ends leaves its free blocks and unused space to a
/// process-wide depot, which other threads draw on before they map more.

#include "corio/config.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>

#include <sys/mman.h>

namespace corio::detail {

class frame_allocator {
public:
    static constexpr std::size_t granularity = 8;
    static constexpr std::size_t max_cached_size = 2048;
    static constexpr std::size_t class_count = max_cached_size / granularity;
    /// What a carving region takes from a chunk at a time.
    static constexpr std::size_t slice_bytes = std::size_t{64} << 10;
    static constexpr std::size_t first_chunk_bytes = std::size_t{128} << 10;
    static constexpr std::size_t last_chunk_bytes = std::size_t{2} << 20;

    /// A block of `size` bytes aligned to `Alignment` (8, or `new`'s 16).
    template <std::size_t Alignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__>
    [[nodiscard]] [[gnu::always_inline]] static void* allocate(std::size_t size) {
        static_assert(Alignment == 8 || Alignment == 16);
        if constexpr (!config::address_sanitizer) {
            if (size <= max_cached_size) {
                auto& s = state_;
                const std::size_t bytes = rounded<Alignment>(size);
                const std::size_t cls = bytes / granularity - 1;
                if (free_block* block = s.heads[cls]) [[likely]] {
                    s.heads[cls] = block->next;
                    s.cached_bytes -= bytes;
                    return block;
                }
                return carve(bytes);
            }
        }
        return allocate_from_system(size);
    }

    /// Frees a block from `allocate<Alignment>(size)`.
    template <std::size_t Alignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__>
    [[gnu::always_inline]] static void deallocate(void* p, std::size_t size) noexcept {
        if constexpr (!config::address_sanitizer) {
            if (size <= max_cached_size) {
                auto& s = state_;
                // The first block cached on this thread arranges for the cache to go to the
                // depot when the thread ends; after that, blocks go there one by one.
                const std::size_t bytes = rounded<Alignment>(size);
                if (!s.cleanup_registered) [[unlikely]] {
                    if (!register_cleanup()) {
                        auto* block = static_cast<free_block*>(p);
                        give_to_depot(bytes / granularity - 1, block, block);
                        return;
                    }
                }
                push(s, p, bytes);
                s.cached_bytes += bytes;
                return;
            }
        }
        deallocate_to_system(p, size);
    }

    /// Bytes of frames and states this thread allocated and did not free (with their size
    /// classes' rounding): a leak detector for tests, and what a benchmark's tasks hold. Counted
    /// from what the thread carved (or took from the depot or the system) less what its cache
    /// holds, so that recycling a block costs no counting. Negative on a thread that frees more
    /// than it allocated (blocks may be freed on another thread than their own).
    [[nodiscard]] static long live_bytes() noexcept {
        return static_cast<long>(state_.taken_bytes - state_.cached_bytes);
    }

private:
    struct free_block {
        free_block* next;
    };

    // Unused space to carve from: a slice of a chunk, or what is left of one.
    struct region {
        char* cursor;
        char* end;
        [[nodiscard]] std::size_t size() const noexcept {
            return static_cast<std::size_t>(end - cursor);
        }
    };

    // Trivially constructible and destructible, so that a thread_local access is a plain
    // %fs-relative load with no initialisation guard on the hot path.
    struct thread_state {
        free_block* heads[class_count];
        std::size_t cached_bytes;
        // Carved, or taken from the depot or the system, by this thread: it wraps below zero on
        // a thread that frees more than it allocated.
        std::size_t taken_bytes;
        region even;   // for sizes that are multiples of 16, 16-aligned
        region odd;    // for the others (8-aligned types)
        region chunk;  // what the thread's last chunk has not yet sliced out
        std::size_t next_chunk_bytes;
        bool cleanup_registered;
        bool ended;  // the thread's thread_local destructors are running
    };

    // A region an ended thread left, kept in the region itself.
    struct spare_region {
        spare_region* next;
        char* end;
    };

    struct cleanup {
        ~cleanup() { leave_to_depot(); }
    };

    template <std::size_t Alignment>
    static constexpr std::size_t rounded(std::size_t size) noexcept {
        return size == 0 ? Alignment : (size + Alignment - 1) / Alignment * Alignment;
    }

    static void push(thread_state& s, void* p, std::size_t bytes) noexcept {
        const std::size_t cls = bytes / granularity - 1;
        auto* block = static_cast<free_block*>(p);
        block->next = s.heads[cls];
        s.heads[cls] = block;
    }

    [[gnu::noinline]] static void* carve(std::size_t bytes) {
        auto& s = state_;
        const bool depot_has_class =
            depot_heads_[bytes / granularity - 1].load(std::memory_order_relaxed) != nullptr;
        if (depot_has_class) [[unlikely]] {
            if (void* block = take_from_depot(bytes)) return block;
        }
        const bool even = bytes % 16 == 0;
        region& r = even ? s.even : s.odd;
        if (r.size() < bytes) refill(r, even);
        void* block = r.cursor;
        r.cursor += bytes;
        s.taken_bytes += bytes;
        return block;
    }

    // Gives `r` new space: a region an ended thread left, else a slice of this thread's chunk.
    [[gnu::cold]] static void refill(region& r, bool even) {
        auto& s = state_;
        if (!s.cleanup_registered) register_cleanup();
        recycle_tail(r, even);
        if (depot_regions_stocked_.load(std::memory_order_relaxed)) {
            const depot_lock lock;
            // A 16-aligned region serves either kind.
            spare_region*& spare = even || depot_odd_ == nullptr ? depot_even_ : depot_odd_;
            if (spare_region* taken = spare) {
                spare = taken->next;
                if (depot_even_ == nullptr && depot_odd_ == nullptr) {
                    depot_regions_stocked_.store(false, std::memory_order_relaxed);
                }
                r = {reinterpret_cast<char*>(taken), taken->end};
                return;
            }
        }
        if (s.chunk.size() < slice_bytes) s.chunk = map_chunk(s.next_chunk_bytes);
        r = {s.chunk.cursor, s.chunk.cursor + slice_bytes};
        s.chunk.cursor += slice_bytes;
    }

    // What is left of an exhausted region becomes a free block of its own size, where its
    // alignment suits that size's class.
    static void recycle_tail(region& r, bool even) noexcept {
        const std::size_t left = r.size();
        const bool aligned16 = reinterpret_cast<std::uintptr_t>(r.cursor) % 16 == 0;
        if (left >= granularity && (even || left % 16 != 0 || aligned16)) {
            auto& s = state_;
            push(s, r.cursor, left);
            s.taken_bytes += left;
            s.cached_bytes += left;
        }
        r = {};
    }

    // Maps the thread's next chunk: 128 KiB, doubling up to 2 MiB. A 2 MiB chunk is faulted in
    // at once (one call instead of 512 page faults: a million sleeping tasks were made in 115
    // ms instead of 140). Not huge pages: where the kernel must compact memory to find one,
    // the fault stalls (300-600 ms for the same million, on this VM's defaults).
    static region map_chunk(std::size_t& next_bytes) {
        const std::size_t bytes = next_bytes == 0 ? first_chunk_bytes : next_bytes;
        next_bytes = bytes < last_chunk_bytes ? bytes * 2 : last_chunk_bytes;
        void* p =
            ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
#if defined(MADV_POPULATE_WRITE)
        // Advice only (Linux 5.14): elsewhere the pages fault in as they are used.
        if (bytes == last_chunk_bytes) (void)::madvise(p, bytes, MADV_POPULATE_WRITE);
#endif
        auto* base = static_cast<char*>(p);
        return {base, base + bytes};
    }

    // Takes the depot's blocks of the class of `bytes` into this thread's list; returns one.
    [[gnu::cold]] static void* take_from_depot(std::size_t bytes) noexcept {
        const std::size_t cls = bytes / granularity - 1;
        free_block* taken = depot_heads_[cls].exchange(nullptr, std::memory_order_acquire);
        if (taken == nullptr) return nullptr;
        auto& s = state_;
        if (!s.cleanup_registered) register_cleanup();
        std::size_t count = 0;
        free_block* last = taken;
        for (free_block* b = taken; b != nullptr; b = b->next) {
            ++count;
            last = b;
        }
        last->next = s.heads[cls];
        s.heads[cls] = taken->next;
        s.taken_bytes += count * bytes;
        s.cached_bytes += (count - 1) * bytes;
        return taken;
    }

    // Hands a chain of free blocks of class `cls` to the depot. Lock-free: takers take a
    // whole list at once, so a push cannot be confused by a block that left and came back.
    static void give_to_depot(std::size_t cls, free_block* first, free_block* last) noexcept {
        free_block* head = depot_heads_[cls].load(std::memory_order_relaxed);
        do {
            last->next = head;
        } while (!depot_heads_[cls].compare_exchange_weak(head, first, std::memory_order_release,
                                                          std::memory_order_relaxed));
    }

    // `r` holds at least `max_cached_size` bytes, so that any block fits in it.
    static void give_region_to_depot(region r, bool even) noexcept {
        auto* spare = ::new (static_cast<void*>(r.cursor)) spare_region{nullptr, r.end};
        const depot_lock lock;
        spare_region*& list = even ? depot_even_ : depot_odd_;
        spare->next = list;
        list = spare;
        depot_regions_stocked_.store(true, std::memory_order_relaxed);
    }

    // At the end of a thread: its free blocks and the space it has not carved go to the depot.
    // A block freed on the thread afterwards (by a later thread_local's destructor) goes to the
    // depot alone (see `register_cleanup`).
    static void leave_to_depot() noexcept {
        auto& s = state_;
        for (region* r : {&s.even, &s.odd}) {
            if (r->size() >= max_cached_size) {
                give_region_to_depot(*r, r == &s.even);
            } else {
                recycle_tail(*r, r == &s.even);
            }
        }
        for (std::size_t cls = 0; cls < class_count; ++cls) {
            free_block* first = s.heads[cls];
            if (first == nullptr) continue;
            free_block* last = first;
            while (last->next != nullptr) last = last->next;
            give_to_depot(cls, first, last);
            s.heads[cls] = nullptr;
        }
        // Whole slices of the chunk suit either kind of region.
        while (s.chunk.size() >= slice_bytes) {
            give_region_to_depot({s.chunk.cursor, s.chunk.cursor + slice_bytes}, true);
            s.chunk.cursor += slice_bytes;
        }
        s.even = s.odd = s.chunk = {};
        s.cached_bytes = 0;
        s.cleanup_registered = false;
        s.ended = true;
    }

    static void* allocate_from_system(std::size_t bytes) {
        void* p = ::operator new(bytes);
        state_.taken_bytes += bytes;
        return p;
    }
    static void deallocate_to_system(void* p, std::size_t bytes) noexcept {
        state_.taken_bytes -= bytes;
        ::operator delete(p);
    }

    // Kept out of line: touching a thread_local with a destructor costs a guard check, paid
    // once per thread here rather than on every allocation. False once the thread has ended.
    [[gnu::cold]] [[gnu::noinline]] static bool register_cleanup() noexcept {
        if (state_.ended) return false;
        state_.cleanup_registered = true;
        static thread_local cleanup on_thread_exit;
        (void)&on_thread_exit;
        return true;
    }

    // The depot's regions are rarely touched (a thread ends, a region runs out): a spin lock,
    // which unlike `std::mutex` is trivially destructible, so that the depot outlives every
    // thread and static destructor.
    class depot_lock {
    public:
        depot_lock() noexcept {
            while (depot_locked_.exchange(true, std::memory_order_acquire)) {
                while (depot_locked_.load(std::memory_order_relaxed)) {
                }
            }
        }
        depot_lock(const depot_lock&) = delete;
        depot_lock& operator=(const depot_lock&) = delete;
        ~depot_lock() { depot_locked_.store(false, std::memory_order_release); }
    };

    static inline thread_local constinit thread_state state_{};

    // What ended threads left: free blocks by class, and regions to carve from (`even` ones
    // 16-aligned).
    static inline constinit std::atomic<free_block*> depot_heads_[class_count]{};
    static inline constinit std::atomic<bool> depot_locked_{false};
    static inline constinit std::atomic<bool> depot_regions_stocked_{false};
    static inline constinit spare_region* depot_even_ = nullptr;
    static inline constinit spare_region* depot_odd_ = nullptr;
};

/// Gives a class (a coroutine promise or a task state) the recycling allocator. `Alignment` is
/// what the class needs: 16 (`new`'s) for a promise, whose frame the compiler lays out for
/// that; 8 is enough for most other classes and saves up to 8 bytes each.
template <std::size_t Alignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__>
struct recycled {
    [[gnu::always_inline]] static void* operator new(std::size_t size) {
        return frame_allocator::allocate<Alignment>(size);
    }
    [[gnu::always_inline]] static void operator delete(void* p, std::size_t size) noexcept {
        frame_allocator::deallocate<Alignment>(p, size);
    }
};

}  // namespace corio::detail
