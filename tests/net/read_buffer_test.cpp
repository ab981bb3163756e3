// The stream reader's buffer (include/corio/net/detail/read_buffer.hpp) as the value type it is:
// receiving into it, handing bytes out, putting them back, growing and sliding, with no socket.

#include <corio/net/detail/read_buffer.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace {

using corio::detail::read_buffer;

// Receives `bytes` as a socket would: into the room `reserve` offers, `commit`ting what fit.
std::size_t receive(read_buffer& buffer, std::string_view bytes, std::size_t room = 1) {
    const std::span<char> space = buffer.reserve(room);
    const std::size_t n = std::min(space.size(), bytes.size());
    std::memcpy(space.data(), bytes.data(), n);
    buffer.commit(n);
    return n;
}

}  // namespace

TEST_CASE("read_buffer: starts empty and allocates on the first reserve", "[read_buffer]") {
    read_buffer buffer;
    CHECK(buffer.empty());
    CHECK(buffer.size() == 0);
    CHECK(buffer.capacity() == 0);
    CHECK(buffer.view().empty());

    const std::span<char> space = buffer.reserve();
    CHECK(space.size() == read_buffer::initial_capacity);
    CHECK(buffer.capacity() == read_buffer::initial_capacity);
    CHECK(buffer.empty());
}

TEST_CASE("read_buffer: hands out what was received, in order", "[read_buffer]") {
    read_buffer buffer;
    CHECK(receive(buffer, "hello ") == 6);
    CHECK(receive(buffer, "world") == 5);
    CHECK(buffer.view() == "hello world");

    buffer.consume(6);
    CHECK(buffer.view() == "world");
    buffer.consume(5);
    CHECK(buffer.empty());
}

TEST_CASE("read_buffer: once drained, the next receive lands at the start", "[read_buffer]") {
    read_buffer buffer;
    receive(buffer, "abc");
    const char* start = buffer.view().data();
    buffer.consume(3);
    receive(buffer, "xyz");
    CHECK(buffer.view().data() == start);
    CHECK(buffer.capacity() == read_buffer::initial_capacity);
}

TEST_CASE("read_buffer: unread puts bytes back in front", "[read_buffer]") {
    read_buffer buffer;
    receive(buffer, "line one\nrest");

    SECTION("into the space consumed before them") {
        buffer.consume(9);
        buffer.unread("line one\n");
        CHECK(buffer.view() == "line one\nrest");
    }
    SECTION("sliding what is buffered when there is no space before it") {
        buffer.unread("<<");
        CHECK(buffer.view() == "<<line one\nrest");
    }
    SECTION("growing when the buffer cannot hold both") {
        const std::string big(read_buffer::initial_capacity, 'x');
        buffer.unread(big);
        CHECK(buffer.size() == big.size() + 13);
        CHECK(buffer.view().substr(0, big.size()) == big);
        CHECK(buffer.view().substr(big.size()) == "line one\nrest");
        CHECK(buffer.capacity() >= buffer.size());
    }
    SECTION("nothing, for nothing") {
        buffer.unread({});
        CHECK(buffer.view() == "line one\nrest");
    }
}

TEST_CASE("read_buffer: reserve slides the unread bytes forward before it grows", "[read_buffer]") {
    read_buffer buffer;
    const std::string full(read_buffer::initial_capacity, 'a');
    CHECK(receive(buffer, full) == full.size());
    buffer.consume(full.size() - 10);

    // 10 bytes left at the end of a full buffer: asking for room slides them to the front.
    const std::span<char> space = buffer.reserve(100);
    CHECK(buffer.capacity() == read_buffer::initial_capacity);
    CHECK(buffer.view() == std::string(10, 'a'));
    CHECK(space.size() == read_buffer::initial_capacity - 10);
}

TEST_CASE("read_buffer: grows by doubling, and as far as one reserve needs", "[read_buffer]") {
    read_buffer buffer;
    const std::string full(read_buffer::initial_capacity, 'b');
    receive(buffer, full);

    (void)buffer.reserve(1);
    CHECK(buffer.capacity() == 2 * read_buffer::initial_capacity);
    CHECK(buffer.view() == full);

    const std::size_t huge = 10 * read_buffer::initial_capacity;
    const std::span<char> space = buffer.reserve(huge);
    CHECK(space.size() >= huge);
    CHECK(buffer.view() == full);
}

TEST_CASE("read_buffer: max_capacity bounds growth unless the room asked for needs more",
          "[read_buffer]") {
    read_buffer buffer;
    const std::string full(read_buffer::initial_capacity, 'c');
    receive(buffer, full);

    (void)buffer.reserve(1, read_buffer::initial_capacity + 100);
    CHECK(buffer.capacity() == read_buffer::initial_capacity + 100);

    buffer.commit(100);
    (void)buffer.reserve(5000, 0);
    CHECK(buffer.capacity() == read_buffer::initial_capacity + 100 + 5000);
}

TEST_CASE("read_buffer: moves leave the source empty and usable", "[read_buffer]") {
    read_buffer a;
    receive(a, "payload");
    read_buffer b(std::move(a));
    CHECK(b.view() == "payload");
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): a moved-from buffer is empty
    CHECK(a.capacity() == 0);
    receive(a, "again");
    CHECK(a.view() == "again");

    a = std::move(b);
    CHECK(a.view() == "payload");
}

TEST_CASE("read_buffer: random receives, consumes and unreads keep the byte sequence",
          "[read_buffer]") {
    std::mt19937 random(20261202);
    read_buffer buffer;
    std::string model;  // what the buffer must hold
    std::uint64_t next = 0;
    auto fresh = [&next](std::size_t n) {
        std::string bytes(n, '\0');
        for (char& c : bytes) c = static_cast<char>('a' + next++ % 26);
        return bytes;
    };
    for (int step = 0; step < 5000; ++step) {
        switch (random() % 3) {
        case 0: {
            const std::string bytes = fresh(random() % 3000);
            const std::size_t n = receive(buffer, bytes, random() % 4000 + 1);
            model += bytes.substr(0, n);
            break;
        }
        case 1: {
            const std::size_t n = std::min<std::size_t>(random() % 3000, model.size());
            buffer.consume(n);
            model.erase(0, n);
            break;
        }
        default: {
            const std::string bytes = fresh(random() % 200);
            buffer.unread(bytes);
            model.insert(0, bytes);
            break;
        }
        }
        REQUIRE(buffer.view() == model);
    }
}
