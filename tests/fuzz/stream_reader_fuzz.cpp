// Fuzzes the stream reader (include/corio/net/stream.hpp; its algorithms are in
// net/detail/stream_reading.hpp, over the buffer of net/detail/read_buffer.hpp) against a model
// of asyncio's StreamReader. The input's bytes reach a real reader over a socketpair, cut into
// the chunks the input chooses; a reader with the limit the input chooses runs the reads the
// input lists, and every result, or exception, must be the model's. No byte may be lost or
// handed out twice: after the reads the stream is read to its end, and what the reads handed
// out, what readline dropped past the limit and that rest must be the input, in order.
//
// The input is a program, a newline and the bytes to send (all of it is the program when there
// is no newline). The program is letters, each with an optional decimal number n:
//   k<n>        the reader's limit (the last one counts; default_stream_limit without one)
//   c<n>        a chunk size; the sizes cycle over the bytes (one chunk without any; 0 is 1)
//   l  L        readline, readline_view
//   u<n> U<n>   readuntil, readuntil_view with separators[n % size]
//   x<n> X<n>   readexactly(n), readexactly_into a buffer of n bytes
//   r<n>  a     read(n), read() (to the end of the stream)
//   i<n>        read_into a buffer of n bytes
// Anything else is skipped, so that spaces make a seed readable: "k8 c3 l l u1 x5 r2".
#include <corio/errors.hpp>
#include <corio/event_loop.hpp>
#include <corio/net/stream.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/system/unique_fd.hpp>
#include <corio/task.hpp>

#include "fuzz_support.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;

// --- the program -----------------------------------------------------------------------------

enum class op_kind : char {
    readline,
    readline_view,
    readuntil,
    readuntil_view,
    readexactly,
    readexactly_into,
    read,
    read_all,
    read_into,
};

struct op {
    op_kind kind = op_kind::read;
    std::size_t n = 0;
    std::string_view separator;
};

// The separators `u` and `U` choose from; the empty one must be refused.
constexpr std::string_view separators[] = {"\n", "\r\n", "ab", "aba", "\n\n", "--", "", "0123"};

// Numbers saturate here, and a program has at most `max_ops` reads.
constexpr std::size_t max_number = std::size_t{1} << 20;
constexpr std::size_t max_ops = 200;
constexpr std::size_t max_chunk_sizes = 64;
// Invariant: the whole payload fits in the tail the reader's buffer always offers (it starts at
// read_buffer::initial_capacity, 16 KiB, and slides before offering less than a quarter), so a
// receive into the buffer takes all the socket holds: one chunk, or what a direct receive of an
// earlier read left of it. The reader then sees exactly the chunks the model is fed.
constexpr std::size_t max_payload = 4096;

struct program {
    std::size_t limit = corio::default_stream_limit;
    std::vector<std::size_t> chunk_sizes;
    std::vector<op> ops;
    std::string_view payload;
};

program parse(std::string_view input) {
    program p;
    const std::size_t newline = input.find('\n');
    std::string_view code = input.substr(0, newline);
    if (newline != std::string_view::npos) p.payload = input.substr(newline + 1);
    p.payload = p.payload.substr(0, max_payload);

    std::size_t i = 0;
    auto number = [&](std::size_t fallback) {
        if (i >= code.size() || code[i] < '0' || code[i] > '9') return fallback;
        std::size_t value = 0;
        while (i < code.size() && code[i] >= '0' && code[i] <= '9') {
            value = std::min(max_number, value * 10 + static_cast<std::size_t>(code[i] - '0'));
            ++i;
        }
        return value;
    };
    while (i < code.size()) {
        const char letter = code[i++];
        const std::size_t n = number(1);
        op o;
        o.n = n;
        switch (letter) {
        case 'k': p.limit = n; continue;
        case 'c':
            if (p.chunk_sizes.size() < max_chunk_sizes)
                p.chunk_sizes.push_back(std::max<std::size_t>(n, 1));
            continue;
        case 'l': o.kind = op_kind::readline; break;
        case 'L': o.kind = op_kind::readline_view; break;
        case 'u': o.kind = op_kind::readuntil; break;
        case 'U': o.kind = op_kind::readuntil_view; break;
        case 'x': o.kind = op_kind::readexactly; break;
        case 'X': o.kind = op_kind::readexactly_into; break;
        case 'r': o.kind = op_kind::read; break;
        case 'a': o.kind = op_kind::read_all; break;
        case 'i': o.kind = op_kind::read_into; break;
        default: continue;
        }
        if (o.kind == op_kind::readuntil || o.kind == op_kind::readuntil_view) {
            o.separator = separators[n % std::size(separators)];
        }
        if (p.ops.size() < max_ops) p.ops.push_back(o);
    }
    return p;
}

std::vector<std::string_view> cut(std::string_view payload, const std::vector<std::size_t>& sizes) {
    std::vector<std::string_view> chunks;
    for (std::size_t at = 0, k = 0; at < payload.size(); ++k) {
        const std::size_t size = sizes.empty() ? payload.size() : sizes[k % sizes.size()];
        chunks.push_back(payload.substr(at, size));
        at += chunks.back().size();
    }
    return chunks;
}

// --- what a read gives ------------------------------------------------------------------------

struct outcome {
    enum class kind : char { value, incomplete, overrun, invalid };
    kind what = kind::value;
    std::string bytes;                    // the value, or incomplete_read_error::partial()
    std::optional<std::size_t> expected;  // incomplete_read_error::expected()
    std::size_t consumed = 0;             // limit_overrun_error::consumed()
    friend bool operator==(const outcome&, const outcome&) = default;
};

outcome value(std::string_view bytes) { return {outcome::kind::value, std::string(bytes), {}, 0}; }

using corio_fuzz::escaped;

std::string describe(const outcome& o) {
    switch (o.what) {
    case outcome::kind::value: return "value \"" + escaped(o.bytes) + '"';
    case outcome::kind::incomplete:
        return "incomplete_read_error(partial \"" + escaped(o.bytes) + "\", expected " +
               (o.expected ? std::to_string(*o.expected) : std::string("none")) + ')';
    case outcome::kind::overrun:
        return "limit_overrun_error(consumed " + std::to_string(o.consumed) + ')';
    case outcome::kind::invalid: return "std::invalid_argument";
    }
    return "?";
}

[[noreturn]] void fail(const std::string& what) { corio_fuzz::fail("stream_reader_fuzz", what); }

// --- the model: asyncio's StreamReader, fed one chunk whenever it waits for data -----------------

// Written after CPython's Lib/asyncio/streams.py (readline, readuntil, readexactly, read), on
// the whole input: `pos_` is what was handed out or dropped, `fed_` what has arrived.
class model {
public:
    model(std::string_view data, const std::vector<std::string_view>& chunks, std::size_t limit)
        : data_(data), chunks_(chunks), limit_(std::max<std::size_t>(limit, 1)) {}

    // What `o` gives; `dropped()` is then what it discarded unread (readline past the limit).
    outcome run(const op& o) {
        dropped_ = {};
        switch (o.kind) {
        case op_kind::readline:
        case op_kind::readline_view: return readline();
        case op_kind::readuntil:
        case op_kind::readuntil_view: return readuntil(o.separator);
        case op_kind::readexactly:
        case op_kind::readexactly_into: return readexactly(o.n);
        case op_kind::read:
        case op_kind::read_into: return read(o.n);
        case op_kind::read_all: return read_all();
        }
        return {};
    }

    [[nodiscard]] std::string_view dropped() const noexcept { return dropped_; }
    // Everything not handed out yet, arrived or not.
    [[nodiscard]] std::string_view rest() const noexcept { return data_.substr(pos_); }

private:
    [[nodiscard]] std::string_view buffer() const noexcept {
        return data_.substr(pos_, fed_ - pos_);
    }
    void wait_for_data() {
        if (next_ < chunks_.size()) {
            fed_ += chunks_[next_++].size();
        } else {
            eof_ = true;
        }
    }
    std::string_view take(std::size_t n) {
        const std::string_view taken = buffer().substr(0, n);
        pos_ += taken.size();
        return taken;
    }

    outcome readline() {
        const outcome line = readuntil("\n");
        if (line.what == outcome::kind::incomplete) return value(line.bytes);
        if (line.what == outcome::kind::overrun) {
            // asyncio: drop the line through its separator if it is buffered, else the buffer.
            const std::string_view buffered = buffer();
            const std::size_t drop = buffered.substr(line.consumed).starts_with('\n')
                                         ? line.consumed + 1
                                         : buffered.size();
            dropped_ = take(drop);
        }
        return line;
    }

    outcome readuntil(std::string_view separator) {
        if (separator.empty()) return {outcome::kind::invalid, {}, {}, 0};
        const std::size_t seplen = separator.size();
        std::size_t offset = 0;
        std::size_t isep = 0;
        for (;;) {
            const std::string_view buffered = buffer();
            if (buffered.size() - offset >= seplen) {
                isep = buffered.find(separator, offset);
                if (isep != std::string_view::npos) break;
                offset = buffered.size() + 1 - seplen;
                if (offset > limit_) return {outcome::kind::overrun, {}, {}, offset};
            }
            if (eof_) {
                return {outcome::kind::incomplete, std::string(take(buffered.size())), std::nullopt,
                        0};
            }
            wait_for_data();
        }
        if (isep > limit_) return {outcome::kind::overrun, {}, {}, isep};
        return value(take(isep + seplen));
    }

    outcome readexactly(std::size_t n) {
        while (buffer().size() < n) {
            if (eof_) return {outcome::kind::incomplete, std::string(take(buffer().size())), n, 0};
            wait_for_data();
        }
        return value(take(n));
    }

    outcome read(std::size_t n) {
        if (n == 0) return value({});
        if (buffer().empty() && !eof_) wait_for_data();
        return value(take(n));
    }

    outcome read_all() {
        while (!eof_) wait_for_data();
        return value(take(buffer().size()));
    }

    std::string_view data_;
    const std::vector<std::string_view>& chunks_;
    std::size_t limit_;
    std::size_t pos_ = 0;
    std::size_t fed_ = 0;
    std::size_t next_ = 0;
    bool eof_ = false;
    std::string_view dropped_;
};

// --- the real reader ---------------------------------------------------------------------------

std::size_t unread_bytes(int fd) {
    int n = 0;
    if (::ioctl(fd, FIONREAD, &n) != 0) fail("ioctl(FIONREAD) failed");
    return static_cast<std::size_t>(n);
}

// Sends each chunk once the reader has received everything sent before it, so that one receive
// never takes two chunks; then ends the stream.
corio::coro<> feed(int out, int reader_fd, const std::vector<std::string_view>& chunks) {
    for (const std::string_view chunk : chunks) {
        while (unread_bytes(reader_fd) > 0) co_await corio::sleep(0s);
        if (::write(out, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
            fail("write to the socketpair failed");
        }
    }
    ::shutdown(out, SHUT_WR);
}

corio::coro<outcome> perform(const corio::stream_reader& reader, const op& o) {
    outcome out;
    try {
        switch (o.kind) {
        case op_kind::readline: out.bytes = co_await reader.readline(); break;
        case op_kind::readline_view:
            out.bytes = std::string(co_await reader.readline_view());
            break;
        case op_kind::readuntil:
            out.bytes = co_await reader.readuntil(std::string(o.separator));
            break;
        case op_kind::readuntil_view:
            out.bytes = std::string(co_await reader.readuntil_view(std::string(o.separator)));
            break;
        case op_kind::readexactly: out.bytes = co_await reader.readexactly(o.n); break;
        case op_kind::readexactly_into: {
            std::string buffer(o.n, '\0');
            co_await reader.readexactly_into(std::span<char>(buffer.data(), buffer.size()));
            out.bytes = std::move(buffer);
            break;
        }
        case op_kind::read:
            out.bytes = co_await reader.read(static_cast<std::ptrdiff_t>(o.n));
            break;
        case op_kind::read_all: out.bytes = co_await reader.read(); break;
        case op_kind::read_into: {
            std::string buffer(o.n, '\0');
            const std::size_t got =
                co_await reader.read_into(std::span<char>(buffer.data(), buffer.size()));
            if (got > buffer.size()) fail("read_into reported more bytes than its buffer holds");
            buffer.resize(got);
            out.bytes = std::move(buffer);
            break;
        }
        }
    } catch (const corio::incomplete_read_error& e) {
        out.what = outcome::kind::incomplete;
        out.bytes = e.partial();
        out.expected = e.expected();
    } catch (const corio::limit_overrun_error& e) {
        out.what = outcome::kind::overrun;
        out.consumed = e.consumed();
    } catch (const std::invalid_argument&) {
        out.what = outcome::kind::invalid;
    }
    co_return out;
}

corio::coro<> exercise(const program& p, const std::vector<std::string_view>& chunks) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        fail("socketpair failed");
    }
    const corio::unique_fd ours(fds[0]);
    const corio::stream_reader reader =
        corio::detail::make_socket_streams(corio::unique_fd(fds[1]), p.limit).reader;
    auto feeding =
        corio::get_running_loop().create_task(feed(ours.get(), reader.native_handle(), chunks));

    model expected_reader(p.payload, chunks, p.limit);
    std::string transcript;  // handed out, or dropped by readline, in order
    for (std::size_t k = 0; k < p.ops.size(); ++k) {
        const op& o = p.ops[k];
        const outcome expected = expected_reader.run(o);
        const outcome actual = co_await perform(reader, o);
        if (actual != expected) {
            fail("read " + std::to_string(k) + " (limit " + std::to_string(p.limit) + "): got " +
                 describe(actual) + ", the model says " + describe(expected));
        }
        transcript += actual.bytes;
        transcript += expected_reader.dropped();
    }
    const std::string rest = co_await reader.read();
    if (rest != expected_reader.rest()) {
        fail("the rest of the stream is \"" + escaped(rest) + "\", the model says \"" +
             escaped(expected_reader.rest()) + '"');
    }
    co_await feeding;
    if (!reader.at_eof()) fail("not at_eof() after reading to the end");
    transcript += rest;
    if (transcript != p.payload) fail("bytes lost or handed out twice: " + escaped(transcript));
}

// One loop for every input: making one per input would cost more than most inputs do. epoll,
// unless CORIO_BACKEND says otherwise.
corio::event_loop& shared_loop() {
    static const std::unique_ptr<corio::event_loop> loop = corio::new_event_loop(
        {.backend = std::getenv("CORIO_BACKEND") != nullptr ? corio::backend::automatic
                                                            : corio::backend::epoll});
    return *loop;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const program p = parse(std::string_view(reinterpret_cast<const char*>(data), size));
    const std::vector<std::string_view> chunks = cut(p.payload, p.chunk_sizes);
    try {
        shared_loop().run_until_complete(exercise(p, chunks));
    } catch (const std::exception& e) {
        fail(std::string("unexpected exception: ") + e.what());
    }
    return 0;
}
