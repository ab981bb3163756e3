// detail::frame_allocator (include/corio/detail/frame_allocator.hpp), run under TSan too:
// alignment by size class, recycling, the live-bytes count, blocks freed on another thread, and
// what an ended thread leaves to the others. Under ASan the allocator hands every block to the
// system, and only the count is checked.
#include <corio/detail/frame_allocator.hpp>

#include "support/catch.hpp"

#include <corio/config.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace {

using corio::detail::frame_allocator;

struct block {
    void* p;
    std::size_t size;
    bool aligned16;
};

block allocate(std::size_t size, bool aligned16) {
    void* p = aligned16 ? frame_allocator::allocate<16>(size) : frame_allocator::allocate<8>(size);
    return {p, size, aligned16};
}

void deallocate(const block& b) {
    if (b.aligned16) {
        frame_allocator::deallocate<16>(b.p, b.size);
    } else {
        frame_allocator::deallocate<8>(b.p, b.size);
    }
}

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

}  // namespace

TEST_CASE("frame_allocator: blocks are aligned as asked, whatever sizes come in between",
          "[frame_allocator]") {
    const long live_before = frame_allocator::live_bytes();
    std::vector<block> blocks;
    // Sizes of every remainder modulo 16, 8-aligned and 16-aligned requests interleaved, enough
    // to run through several regions.
    for (int round = 0; round < 400; ++round) {
        for (std::size_t size : {1, 8, 24, 40, 100, 120, 136, 200, 1000, 2048}) {
            blocks.push_back(allocate(size + static_cast<std::size_t>(round % 3), round % 2 == 0));
        }
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        const block& b = blocks[i];
        INFO("block " << i << " of " << b.size << " bytes, 16-aligned asked: " << b.aligned16);
        CHECK(address(b.p) % (b.aligned16 ? 16 : 8) == 0);
        std::memset(b.p, static_cast<int>(i % 251), b.size);
    }
    // No two blocks overlap: each still holds its own pattern.
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        const auto* bytes = static_cast<const unsigned char*>(blocks[i].p);
        const bool intact = std::all_of(bytes, bytes + blocks[i].size, [&](unsigned char c) {
            return c == static_cast<unsigned char>(i % 251);
        });
        CHECK(intact);
    }
    CHECK(frame_allocator::live_bytes() > live_before);
    for (const block& b : blocks) deallocate(b);
    CHECK(frame_allocator::live_bytes() == live_before);
}

TEST_CASE("frame_allocator: a freed block is the next one of its class, and counts no more",
          "[frame_allocator]") {
    const long live_before = frame_allocator::live_bytes();
    const block first = allocate(104, true);
    // Rounded to 16 (under ASan every block is the system's, of the size asked).
    const long first_bytes = corio::config::address_sanitizer ? 104 : 112;
    CHECK(frame_allocator::live_bytes() == live_before + first_bytes);
    deallocate(first);
    CHECK(frame_allocator::live_bytes() == live_before);
    const block again = allocate(112, true);  // the same class
    if constexpr (!corio::config::address_sanitizer) CHECK(again.p == first.p);
    deallocate(again);

    const block odd = allocate(104, false);
    CHECK(frame_allocator::live_bytes() == live_before + 104);  // rounded to 8
    deallocate(odd);
    const block large = allocate(5000, true);  // beyond the classes: the system's allocator
    CHECK(frame_allocator::live_bytes() == live_before + 5000);
    deallocate(large);
    CHECK(frame_allocator::live_bytes() == live_before);
}

TEST_CASE("frame_allocator: blocks freed on another thread serve that thread, then the next",
          "[frame_allocator]") {
    if constexpr (corio::config::address_sanitizer) return;
    // A size no other test uses, so that no thread has its class cached.
    constexpr std::size_t size = 1760;
    std::vector<block> blocks;
    for (int i = 0; i < 8; ++i) blocks.push_back(allocate(size, true));
    std::set<void*> addresses;
    for (const block& b : blocks) addresses.insert(b.p);

    long freer_live = 0;
    std::set<void*> reused_by_freer;
    std::thread freer([&] {
        for (const block& b : blocks) deallocate(b);
        freer_live = frame_allocator::live_bytes();
        // The freeing thread's own allocations of that class come from what it freed.
        const block b = allocate(size, true);
        reused_by_freer.insert(b.p);
        deallocate(b);
    });
    freer.join();
    CHECK(freer_live == -static_cast<long>(8 * size));
    CHECK(addresses.count(*reused_by_freer.begin()) == 1);

    // The freeing thread ended: its cache went to the depot, and a new thread draws on it.
    std::set<void*> drawn;
    long drawer_live = 0;
    std::thread drawer([&] {
        std::vector<block> mine;
        for (int i = 0; i < 8; ++i) mine.push_back(allocate(size, true));
        drawer_live = frame_allocator::live_bytes();
        for (const block& b : mine) drawn.insert(b.p);
        for (const block& b : mine) deallocate(b);
    });
    drawer.join();
    CHECK(drawer_live == static_cast<long>(8 * size));
    CHECK(drawn == addresses);
}

TEST_CASE("frame_allocator: the space an ended thread did not carve goes to the next thread",
          "[frame_allocator]") {
    if constexpr (corio::config::address_sanitizer) return;
    void* carved_by_first = nullptr;
    std::thread first([&] {
        const block b = allocate(48, true);
        carved_by_first = b.p;
        deallocate(b);
    });
    first.join();
    void* carved_by_second = nullptr;
    std::thread second([&] {
        const block b = allocate(64, true);  // another class: carved, from what `first` left
        carved_by_second = b.p;
        deallocate(b);
    });
    second.join();
    // `first` carved at the start of its first chunk; whatever of that chunk it left (its
    // region's rest, its unsliced part) is where `second` carves.
    const std::uintptr_t chunk = address(carved_by_first);
    CHECK(address(carved_by_second) > chunk);
    CHECK(address(carved_by_second) < chunk + frame_allocator::first_chunk_bytes);
}
