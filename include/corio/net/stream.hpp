#pragma once
/// \file
/// Streams: `corio::stream_reader` and `corio::stream_writer` (asyncio's `StreamReader` and
/// `StreamWriter`) over a connected socket or a pipe, and the transport they share.
///
/// A reader and a writer are cheap, copyable handles to one reference-counted transport that
/// owns the descriptor, the reader's buffer and the writer's buffer:
///
/// - Reads go straight through the reactor (`recv` on sockets, `read` on pipes) into the
///   reader's buffer, which is reused from one read to the next (or straight into the caller's
///   memory for `read_into`, `readexactly_into` and big reads): a read allocates nothing but
///   the string it returns, and the `_view` / `_into` forms not even that.
/// - `write()` is not awaitable, as in asyncio: with nothing buffered it tries the syscall at
///   once; what the kernel does not take is buffered and flushed in the background by one
///   operation the transport owns (no task, no allocation per write beyond the buffer).
///   `co_await drain()` waits while the buffer is above its high-water mark.
/// - Errors: a reset peer gives `std::system_error` (`ECONNRESET`, `EPIPE`) on the next read,
///   write or drain, never SIGPIPE. Sockets send with `MSG_NOSIGNAL`; the first pipe writer
///   made in the process sets SIGPIPE to SIG_IGN if it still had its default disposition
///   (what CPython does at start-up), so that a pipe whose reader is gone gives `EPIPE` too.
/// - Lifetime: when the last reader or writer handle goes, the transport closes itself as
///   `close()` does (what is buffered is still sent, then the descriptor is closed). While
///   its background write is in flight it keeps itself alive, and deletes itself when that
///   completes (or when the loop closes and withdraws it).

#include "corio/coro.hpp"
#include "corio/detail/fd.hpp"
#include "corio/detail/frame_allocator.hpp"
#include "corio/detail/intrusive.hpp"
#include "corio/impl/io_awaiter.hpp"
#include "corio/impl/sync_waiter.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/reactor/operation.hpp"
#include "corio/net/socket_address.hpp"
#include "corio/detail/unique_fd.hpp"

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace corio {

/// The reader's default buffer limit (asyncio's `_DEFAULT_LIMIT`, 64 KiB): the longest line
/// `readline` and `readuntil` accept.
inline constexpr std::size_t default_stream_limit = std::size_t{64} * 1024;

/// The writer's default water marks: `drain()` waits once more than `high` bytes are
/// buffered, until no more than `low` are (asyncio's defaults).
inline constexpr std::size_t default_write_high_water = std::size_t{64} * 1024;
inline constexpr std::size_t default_write_low_water = std::size_t{16} * 1024;

class stream_reader;
class stream_writer;

namespace detail {

class transport_ref;

/// Sets SIGPIPE to SIG_IGN if it has its default disposition, once per process (CPython does
/// this at start-up). A handler the program installed itself, or SIG_IGN, is left alone.
inline void ignore_sigpipe_once() noexcept {
    static std::once_flag once;
    try {
        std::call_once(once, [] {
            struct sigaction current {};
            if (::sigaction(SIGPIPE, nullptr, &current) == 0 &&
                (current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL) {
                struct sigaction ignore {};
                ignore.sa_handler = SIG_IGN;
                ::sigemptyset(&ignore.sa_mask);
                ::sigaction(SIGPIPE, &ignore, nullptr);
            }
        });
    } catch (...) {
        // call_once only throws if the callable does; it does not.
    }
}

/// The descriptor behind a reader and a writer, their buffers, and the background write.
///
/// Invariants: at most one read is in progress (`reading_`), and `read_op_` points at its
/// operation while the kernel holds it. At most one write operation is in flight
/// (`write_in_flight_`, on `inflight_[ioff_..]`); `write()` appends to `pending_` meanwhile, so
/// the memory the kernel reads from never moves. `queued_`: the write's completion waits in
/// the loop's ready queue. The transport deletes itself when no handle is left (`refs_ == 0`)
/// and neither is set.
class stream_transport final : public io_operation, public ready_node, public recycled<> {
public:
    enum class kind : unsigned char { socket, pipe };

    stream_transport(event_loop& loop, unique_fd fd, kind k, std::size_t limit)
        : ready_node(&run_ready), loop_(&loop), fd_(std::move(fd)), kind_(k),
          limit_(std::clamp<std::size_t>(limit, 1, std::numeric_limits<std::size_t>::max() / 4)) {
        opcode = k == kind::socket ? io_opcode::send : io_opcode::write;
        owned_fd = true;
        complete_ = &on_write_complete;
        // The number is this stream's from now on, whatever it named before.
        loop_access::forget_fd(loop, fd_.get());
    }
    stream_transport(const stream_transport&) = delete;
    stream_transport& operator=(const stream_transport&) = delete;
    ~stream_transport() {
        detach_all(drain_waiters_);
        detach_all(closed_waiters_);
    }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ > 0) return;
        close();
        settle();
    }

    /// The most one operation reads or writes (results are `int`).
    static constexpr std::size_t max_io = std::size_t{1} << 30;

    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }
    [[nodiscard]] bool is_socket() const noexcept { return kind_ == kind::socket; }
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

    // -- Reading -----------------------------------------------------------------------------

    [[nodiscard]] std::size_t buffered() const noexcept { return rend_ - rbegin_; }
    [[nodiscard]] std::string_view view() const noexcept {
        return {rbuf_.get() + rbegin_, rend_ - rbegin_};
    }
    void consume(std::size_t n) noexcept {
        rbegin_ += n;
        if (rbegin_ == rend_) rbegin_ = rend_ = 0; // the next read lands at the start
    }
    /// No more bytes will arrive: end of stream, or the transport is closing or closed.
    [[nodiscard]] bool input_ended() const noexcept { return eof_ || closing_; }
    [[nodiscard]] bool at_eof() const noexcept { return input_ended() && buffered() == 0; }

    /// Puts `data` (taken out earlier) back in front of what is buffered.
    void unread(std::string_view data) {
        if (data.empty()) return;
        const std::size_t have = buffered();
        if (rbegin_ >= data.size()) {
            rbegin_ -= data.size();
            std::memcpy(rbuf_.get() + rbegin_, data.data(), data.size());
            return;
        }
        const std::size_t total = data.size() + have;
        if (total <= rcap_) {
            std::memmove(rbuf_.get() + data.size(), rbuf_.get() + rbegin_, have);
            std::memcpy(rbuf_.get(), data.data(), data.size());
        } else {
            auto bigger = std::make_unique_for_overwrite<char[]>(total);
            std::memcpy(bigger.get(), data.data(), data.size());
            if (have > 0) std::memcpy(bigger.get() + data.size(), rbuf_.get() + rbegin_, have);
            rbuf_ = std::move(bigger);
            rcap_ = total;
        }
        rbegin_ = 0;
        rend_ = total;
    }

    /// Marks a read in progress; a second concurrent one is refused (as asyncio refuses it).
    class read_guard {
    public:
        explicit read_guard(stream_transport& t) : t_(&t) {
            if (t.reading_) {
                throw invalid_state_error(
                    "corio::stream_reader: another task is already reading from this stream");
            }
            t.reading_ = true;
        }
        read_guard(const read_guard&) = delete;
        read_guard& operator=(const read_guard&) = delete;
        ~read_guard() { t_->reading_ = false; }

    private:
        stream_transport* t_;
    };

    /// One receive (recv on a socket, read on a pipe) into `[data, data + size)`, through the
    /// reactor. `co_await` yields the number of bytes (0 at end of stream, or when the
    /// transport was closed meanwhile), or throws the transport's error.
    class receive_op : public io_awaiter {
    public:
        receive_op(stream_transport& t, char* data, std::size_t size) noexcept
            : io_awaiter(t.is_socket() ? io_opcode::recv : io_opcode::read, t.fd_.get()), t_(&t) {
            owned_fd = true;
            buffer = data;
            length = std::min(size, max_io);
        }
        receive_op(const receive_op&) = delete;
        receive_op& operator=(const receive_op&) = delete;
        ~receive_op() {
            if (t_->read_op_ == this) {
                t_->read_op_ = nullptr;
                if (t_->closed_) t_->release_fd();
            }
        }

        // Nothing to receive: the transport failed, or no more bytes will come.
        [[nodiscard]] bool await_ready() noexcept {
            ended_ = t_->error_ != 0 || t_->input_ended();
            return ended_;
        }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            const bool suspended = io_awaiter::await_suspend(h);
            if (suspended) t_->read_op_ = this;
            return suspended;
        }
        std::size_t await_resume() {
            if (ended_) {
                if (t_->error_ != 0) t_->throw_error("recv");
                return 0;
            }
            t_->read_op_ = nullptr;
            if (t_->closed_) t_->release_fd(); // the close was waiting for this operation
            const int result = io_awaiter::await_resume(); // throws if the task was cancelled
            return t_->on_received(result);
        }

    private:
        stream_transport* t_;
        bool ended_ = false;
    };

    /// Makes room after what is buffered for at least `room` more bytes (the buffer grows to
    /// no more than `max_capacity` unless `room` needs it), and receives into it.
    receive_op fill(std::size_t room = 1,
                    std::size_t max_capacity = std::numeric_limits<std::size_t>::max()) {
        make_room(room, max_capacity);
        return receive_op(*this, rbuf_.get() + rend_, rcap_ - rend_);
    }

    /// Received `n` bytes into the buffer (after `fill`).
    void filled(std::size_t n) noexcept { rend_ += n; }

    // -- Writing ------------------------------------------------------------------------------

    [[nodiscard]] std::size_t write_buffer_size() const noexcept {
        return inflight_.size() - ioff_ + pending_.size();
    }
    [[nodiscard]] bool is_closing() const noexcept { return closing_; }
    [[nodiscard]] bool closed() const noexcept { return closed_; }
    [[nodiscard]] int error() const noexcept { return error_; }

    void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) {
        const std::size_t h = high.value_or(low ? std::max(*low * 4, default_write_high_water)
                                                : default_write_high_water);
        const std::size_t l = low.value_or(h / 4);
        if (l > h) {
            throw std::invalid_argument("set_write_buffer_limits: low must not exceed high");
        }
        high_water_ = h;
        low_water_ = l;
        update_pause();
    }
    [[nodiscard]] std::pair<std::size_t, std::size_t> write_buffer_limits() const noexcept {
        return {low_water_, high_water_};
    }

    void write(const char* data, std::size_t size) {
        check_writable();
        if (size == 0) return;
        if (write_buffer_size() == 0 && !write_in_flight_ && !queued_) {
            const long sent = send_now(data, size);
            if (sent < 0) {
                fail(static_cast<int>(-sent));
                throw_error(is_socket() ? "send" : "write");
            }
            data += sent;
            size -= static_cast<std::size_t>(sent);
            if (size == 0) return;
        }
        pending_.insert(pending_.end(), data, data + size);
        after_buffering();
    }

    /// Writes every piece with one `sendmsg` / `writev` when nothing is buffered.
    void write_pieces(std::span<const iovec> pieces) {
        check_writable();
        std::size_t total = 0;
        for (const iovec& v : pieces) total += v.iov_len;
        if (total == 0) return;
        std::size_t skip = 0;
        if (write_buffer_size() == 0 && !write_in_flight_ && !queued_) {
            const long sent = send_vector_now(pieces);
            if (sent < 0) {
                fail(static_cast<int>(-sent));
                throw_error(is_socket() ? "sendmsg" : "writev");
            }
            if (static_cast<std::size_t>(sent) == total) return;
            skip = static_cast<std::size_t>(sent);
        }
        pending_.reserve(pending_.size() + total - skip);
        for (const iovec& v : pieces) {
            const char* p = static_cast<const char*>(v.iov_base);
            std::size_t n = v.iov_len;
            const std::size_t drop = std::min(skip, n);
            skip -= drop;
            pending_.insert(pending_.end(), p + drop, p + n);
        }
        after_buffering();
    }

    /// asyncio's `transport.close()`: no more writes; what is buffered is still sent, then
    /// the descriptor is closed. A read in progress ends as at end of stream. Idempotent.
    void close() noexcept {
        if (closing_) return;
        closing_ = true;
        cancel_read();
        if (!write_busy()) finish_close();
    }

    /// asyncio's `transport.abort()`: closes at once, dropping what is buffered.
    void abort() noexcept {
        closing_ = true;
        cancel_read();
        drop_write_buffer();
        if (write_in_flight_) {
            aborting_ = true;
            if (loop_usable()) loop_access::cancel_io(*loop_, *this);
        }
        if (!write_busy()) finish_close();
    }

    /// Half-closes: once the buffer is flushed, shuts the socket down for writing (a pipe is
    /// closed). Writing afterwards is an error.
    void write_eof() {
        if (error_ != 0) throw_error("write_eof");
        if (closing_ || eof_requested_) return;
        eof_requested_ = true;
        if (!write_busy()) finish_eof();
    }

    [[noreturn]] void throw_error(const char* what) const {
        throw std::system_error(error_, std::system_category(), what);
    }

    [[nodiscard]] socket_address address(bool peer) const {
        std::optional<socket_address>& cached = peer ? peer_ : local_;
        if (!cached && is_socket() && fd_) {
            socket_address a;
            socklen_t length = socket_address::capacity();
            const int rc = peer ? ::getpeername(fd_.get(), a.data(), &length)
                                : ::getsockname(fd_.get(), a.data(), &length);
            if (rc == 0) {
                a.resize(length);
                cached = a;
            }
        }
        return cached.value_or(socket_address{});
    }

    /// The awaiter of `drain()` and `wait_closed()`: in the waiting frame, holding a reference.
    class wait_awaiter;

    bool drain_ready() const noexcept { return error_ != 0 || !paused_ || closed_; }

private:
    friend class wait_awaiter;

    static constexpr std::size_t initial_capacity = std::size_t{16} * 1024;

    [[nodiscard]] bool loop_usable() const noexcept {
        return loop_access::alive(loop_) && !loop_access::closed(*loop_);
    }
    [[nodiscard]] bool write_busy() const noexcept {
        return write_in_flight_ || queued_ || write_buffer_size() > 0;
    }

    void make_room(std::size_t room, std::size_t max_capacity) {
        if (rbegin_ == rend_) rbegin_ = rend_ = 0;
        const std::size_t tail = rcap_ - rend_;
        if (rbuf_ && tail >= room && tail >= rcap_ / 4) return;
        const std::size_t have = buffered();
        if (rbegin_ > 0 && rcap_ - have >= room) {
            std::memmove(rbuf_.get(), rbuf_.get() + rbegin_, have);
            rbegin_ = 0;
            rend_ = have;
            return;
        }
        if (rbuf_ && tail >= room) return;
        // Grow: double, but stay within `max_capacity` when the room asked for allows it.
        const std::size_t needed = have + room;
        std::size_t capacity = rcap_ == 0 ? initial_capacity : rcap_ * 2;
        capacity = std::min(capacity, std::max({max_capacity, needed, initial_capacity}));
        capacity = std::max(capacity, needed);
        auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
        if (have > 0) std::memcpy(bigger.get(), rbuf_.get() + rbegin_, have);
        rbuf_ = std::move(bigger);
        rcap_ = capacity;
        rbegin_ = 0;
        rend_ = have;
    }

    std::size_t on_received(int result) {
        if (result > 0) return static_cast<std::size_t>(result);
        if (result == 0) {
            eof_ = true;
            return 0;
        }
        if (result == -ECANCELED) {
            // Withdrawn by close() or by a failure of the transport, not by a cancellation of
            // the reading task (which io_awaiter turned into cancelled_error).
            if (error_ != 0) throw_error("recv");
            return 0;
        }
        fail(-result);
        throw_error(is_socket() ? "recv" : "read");
    }

    void cancel_read() noexcept {
        if (read_op_ != nullptr && loop_usable()) loop_access::cancel_io(*loop_, *read_op_);
    }

    void check_writable() const {
        if (error_ != 0) throw_error(is_socket() ? "send" : "write");
        if (closing_) throw invalid_state_error("corio::stream_writer: write() after close()");
        if (eof_requested_) {
            throw invalid_state_error("corio::stream_writer: write() after write_eof()");
        }
    }

    // The syscall, at once: bytes taken (0 if the kernel would block), or -errno.
    long send_now(const char* data, std::size_t size) const noexcept {
        size = std::min(size, max_io);
        for (;;) {
            const long n = is_socket() ? ::send(fd_.get(), data, size, MSG_NOSIGNAL | MSG_DONTWAIT)
                                       : ::write(fd_.get(), data, size);
            if (n >= 0) return n;
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -errno;
        }
    }

    long send_vector_now(std::span<const iovec> pieces) const noexcept {
        const std::size_t count = std::min<std::size_t>(pieces.size(), IOV_MAX);
        for (;;) {
            long n = 0;
            if (is_socket()) {
                msghdr message{};
                message.msg_iov = const_cast<iovec*>(pieces.data());
                message.msg_iovlen = count;
                n = ::sendmsg(fd_.get(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
            } else {
                n = ::writev(fd_.get(), pieces.data(), static_cast<int>(count));
            }
            if (n >= 0) return n;
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -errno;
        }
    }

    void after_buffering() {
        update_pause();
        if (!write_in_flight_ && !queued_) start_write();
    }

    void update_pause() noexcept {
        const std::size_t size = write_buffer_size();
        if (!paused_ && size > high_water_) {
            paused_ = true;
        } else if (paused_ && size <= low_water_) {
            paused_ = false;
            wake_all(drain_waiters_);
        }
    }

    // Hands the buffered bytes to the reactor; loops while they complete at once.
    void start_write() {
        for (;;) {
            if (inflight_.size() == ioff_) {
                inflight_.clear();
                ioff_ = 0;
                inflight_.swap(pending_);
            }
            if (inflight_.empty()) return;
            if (!loop_usable() || !fd_) {
                drop_write_buffer();
                if (error_ == 0) error_ = loop_usable() ? EBADF : ECANCELED;
                wake_all(drain_waiters_);
                return;
            }
            buffer = inflight_.data() + ioff_;
            length = std::min(inflight_.size() - ioff_, max_io);
            fd = fd_.get();
            write_in_flight_ = true;
            bool done = false;
            try {
                done = loop_access::submit_io(*loop_, *this);
            } catch (...) {
                write_in_flight_ = false;
                throw;
            }
            if (!done) return;
            write_in_flight_ = false;
            if (!take_write_result(result_)) return;
        }
    }

    // Accounts for a finished write; false when the transport failed.
    bool take_write_result(int result) noexcept {
        if (result < 0) {
            if (result == -ECANCELED && aborting_) {
                drop_write_buffer();
            } else if (result == -EAGAIN || result == -EINTR) {
                return true; // retried by the caller
            } else {
                fail(-result);
            }
            return false;
        }
        ioff_ += static_cast<std::size_t>(result);
        update_pause();
        return true;
    }

    static void on_write_complete(io_operation* op, int) noexcept {
        auto* self = static_cast<stream_transport*>(op);
        self->write_in_flight_ = false;
        self->queued_ = true;
        // Completions only schedule: the result is looked at from the ready queue.
        loop_access::schedule(*self->loop_, self);
    }

    static void run_ready(ready_node* node, bool run) noexcept {
        auto* self = static_cast<stream_transport*>(node);
        self->queued_ = false;
        if (!run) {
            // The loop is closing: nothing will be sent any more.
            self->drop_write_buffer();
            if (self->error_ == 0) self->error_ = ECANCELED;
            self->finish_close();
            self->settle();
            return;
        }
        const bool ok = self->take_write_result(self->result_);
        if (self->aborting_ || self->error_ != 0) {
            self->drop_write_buffer(); // even what the kernel did not take after all
        } else if (ok) {
            try {
                self->start_write();
            } catch (...) {
                // The reactor could not take the operation (an io_uring ring jammed).
                self->fail(EIO);
            }
        }
        if (!self->write_busy()) {
            if (self->closing_) {
                self->finish_close();
            } else if (self->eof_requested_) {
                self->finish_eof();
            }
        }
        if (self->closed_) self->release_fd();
        self->settle();
    }

    void drop_write_buffer() noexcept {
        // What the kernel may still read stays where it is until the operation completes.
        if (write_in_flight_) {
            pending_.clear();
        } else {
            inflight_.clear();
            pending_.clear();
            ioff_ = 0;
        }
        if (paused_) {
            paused_ = false;
            wake_all(drain_waiters_);
        }
    }

    // The transport failed (a reset peer...): every later call reports `error`.
    void fail(int error) noexcept {
        if (error_ == 0) error_ = error;
        closing_ = true;
        cancel_read();
        drop_write_buffer();
        wake_all(drain_waiters_);
        if (!write_busy()) finish_close();
    }

    void finish_eof() noexcept {
        if (eof_sent_) return;
        eof_sent_ = true;
        if (is_socket()) {
            if (fd_) ::shutdown(fd_.get(), SHUT_WR);
        } else {
            closing_ = true;
            finish_close();
        }
    }

    void finish_close() noexcept {
        if (closed_) return;
        closed_ = true;
        closing_ = true;
        wake_all(drain_waiters_);
        release_fd();
    }

    // Closes the descriptor once no operation refers to it any more: an io_uring SQE names
    // the descriptor by number, and may not be submitted yet; closed under it, the number
    // could be reused by another socket the operation would then read or write.
    void release_fd() noexcept {
        if (released_ || read_op_ != nullptr || write_in_flight_) return;
        released_ = true;
        if (loop_access::alive(loop_)) loop_access::forget_fd(*loop_, fd_.get());
        fd_.reset();
        wake_all(closed_waiters_);
    }

    static void wake_all(waiter_list& list) noexcept {
        while (sync_waiter* w = list.front()) w->wake(sync_waiter::status::granted);
    }

    void settle() noexcept {
        if (refs_ == 0 && !write_in_flight_ && !queued_) delete this;
    }

    event_loop* loop_;
    unique_fd fd_;
    std::size_t refs_ = 0;
    const kind kind_;

    // Reading.
    std::unique_ptr<char[]> rbuf_;
    std::size_t rcap_ = 0;
    std::size_t rbegin_ = 0;
    std::size_t rend_ = 0;
    std::size_t limit_;
    io_operation* read_op_ = nullptr;
    bool reading_ = false;
    bool eof_ = false;

    // Writing.
    std::vector<char> inflight_;
    std::size_t ioff_ = 0;
    std::vector<char> pending_;
    std::size_t high_water_ = default_write_high_water;
    std::size_t low_water_ = default_write_low_water;
    waiter_list drain_waiters_;
    waiter_list closed_waiters_;
    int error_ = 0;
    bool write_in_flight_ = false;
    bool queued_ = false;
    bool paused_ = false;
    bool closing_ = false;
    bool closed_ = false;   // logically: no more reads or writes
    bool released_ = false; // the descriptor is closed
    bool aborting_ = false;
    bool eof_requested_ = false;
    bool eof_sent_ = false;

    mutable std::optional<socket_address> peer_;
    mutable std::optional<socket_address> local_;
};

/// A counted reference to a transport.
class transport_ref {
public:
    transport_ref() noexcept = default;
    explicit transport_ref(stream_transport* t) noexcept : t_(t) {
        if (t_ != nullptr) t_->add_ref();
    }
    transport_ref(const transport_ref& other) noexcept : transport_ref(other.t_) {}
    transport_ref(transport_ref&& other) noexcept : t_(std::exchange(other.t_, nullptr)) {}
    transport_ref& operator=(transport_ref other) noexcept {
        std::swap(t_, other.t_);
        return *this;
    }
    ~transport_ref() {
        if (t_ != nullptr) t_->release();
    }

    [[nodiscard]] stream_transport* get() const noexcept { return t_; }
    stream_transport* operator->() const noexcept { return t_; }
    stream_transport& operator*() const noexcept { return *t_; }
    explicit operator bool() const noexcept { return t_ != nullptr; }

private:
    stream_transport* t_ = nullptr;
};

/// Waits until the writer may write again (`drain`) or until the transport is closed
/// (`wait_closed`). Lives in the waiting frame; keeps the transport alive meanwhile.
/// Cancellation leaves the wait and throws `cancelled_error`.
class stream_transport::wait_awaiter : public sync_waiter {
public:
    enum class what : unsigned char { drain, closed };

    wait_awaiter(transport_ref t, what w) noexcept
        : sync_waiter(sync_ops<&cancel>), t_(std::move(t)), what_(w) {}

    [[nodiscard]] bool await_ready() const {
        if (what_ == what::closed) return t_->released_;
        if (t_->error_ != 0) t_->throw_error("drain");
        return t_->drain_ready();
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (bind(what_ == what::drain ? "corio::stream_writer::drain"
                                      : "corio::stream_writer::wait_closed")) {
            return false;
        }
        wait_in(what_ == what::drain ? t_->drain_waiters_ : t_->closed_waiters_, h);
        return true;
    }
    void await_resume() {
        if (task_ != nullptr) {
            if (!is(status::granted)) end_withdrawn();
            end_wait();
        }
        if (what_ == what::drain && t_->error_ != 0) t_->throw_error("drain");
    }

private:
    static bool cancel(cancellable_wait* w, const std::string&) {
        static_cast<wait_awaiter*>(w)->withdraw();
        return false;
    }

    transport_ref t_;
    what what_;
};

/// The reading algorithms, each one coroutine frame; `ref` keeps the transport alive.
struct stream_reading {
    using transport = stream_transport;

    static coro<std::string> read(transport_ref ref, std::ptrdiff_t n) {
        transport& t = *ref;
        transport::read_guard guard(t);
        if (n == 0) co_return std::string();
        if (n < 0) {
            std::string out;
            co_await accumulate(t, out, std::numeric_limits<std::size_t>::max());
            co_return out;
        }
        const auto wanted = static_cast<std::size_t>(n);
        if (t.buffered() == 0 && !t.input_ended()) {
            if (wanted >= direct_threshold) {
                // Straight into the result; a huge `n` does not allocate more than one chunk.
                std::string out(std::min(wanted, max_chunk), '\0');
                const std::size_t got = co_await transport::receive_op(t, out.data(), out.size());
                out.resize(got);
                // A short message must not keep the whole chunk's memory with it.
                if (got < out.capacity() / 4) out.shrink_to_fit();
                co_return out;
            }
            const std::size_t got = co_await t.fill();
            t.filled(got);
        }
        const std::size_t take = std::min(wanted, t.buffered());
        std::string out(t.view().substr(0, take));
        t.consume(take);
        co_return out;
    }

    static coro<std::size_t> read_into(transport_ref ref, std::span<char> out) {
        transport& t = *ref;
        transport::read_guard guard(t);
        if (out.empty()) co_return 0;
        if (t.buffered() == 0) {
            co_return co_await transport::receive_op(t, out.data(), out.size());
        }
        const std::size_t take = std::min(out.size(), t.buffered());
        std::memcpy(out.data(), t.view().data(), take);
        t.consume(take);
        co_return take;
    }

    // Moves what is buffered to `out`, then receives straight into `out` until it holds
    // `wanted` bytes or the stream ends. `out` grows with what arrives (never by more than it
    // holds, plus 64 KiB), so that a peer announcing a huge length cannot make us allocate it.
    // On an exception (an error, a cancellation) the bytes go back to the reader's buffer.
    static coro<> accumulate(transport& t, std::string& out, std::size_t wanted) {
        const std::size_t first = std::min(wanted, t.buffered());
        out.assign(t.view().substr(0, first));
        t.consume(first);
        std::size_t have = out.size();
        try {
            while (have < wanted) {
                const std::size_t chunk =
                    std::min(wanted - have, std::max(std::size_t{64} * 1024, have));
                out.resize(have + chunk);
                const std::size_t got = co_await transport::receive_op(t, out.data() + have, chunk);
                if (got == 0) break;
                have += got;
            }
        } catch (...) {
            t.unread(std::string_view(out.data(), have)); // nothing received is lost
            throw;
        }
        out.resize(have);
    }

    // Fills `out` exactly; the bytes read before an end of stream are `have`.
    static coro<std::size_t> fill_exactly(transport& t, std::span<char> out) {
        std::size_t have = std::min(out.size(), t.buffered());
        if (have > 0) std::memcpy(out.data(), t.view().data(), have);
        t.consume(have);
        try {
            while (have < out.size()) {
                const std::size_t got =
                    co_await transport::receive_op(t, out.data() + have, out.size() - have);
                if (got == 0) break;
                have += got;
            }
        } catch (...) {
            t.unread(std::string_view(out.data(), have));
            throw;
        }
        co_return have;
    }

    static coro<std::string> readexactly(transport_ref ref, std::size_t n) {
        transport& t = *ref;
        transport::read_guard guard(t);
        if (t.buffered() < n && n <= t.limit() && !t.input_ended()) {
            // Small enough for the buffer: one receive may bring this and what follows.
            while (t.buffered() < n) {
                const std::size_t got = co_await t.fill(n - t.buffered());
                if (got == 0) break;
                t.filled(got);
            }
        }
        if (t.buffered() >= n) {
            std::string out(t.view().substr(0, n));
            t.consume(n);
            co_return out;
        }
        std::string out;
        co_await accumulate(t, out, n);
        if (out.size() < n) throw incomplete_read_error(std::move(out), n);
        co_return out;
    }

    static coro<> readexactly_into(transport_ref ref, std::span<char> out) {
        transport& t = *ref;
        transport::read_guard guard(t);
        const std::size_t have = co_await fill_exactly(t, out);
        if (have < out.size()) {
            throw incomplete_read_error(std::string(out.data(), have), out.size());
        }
    }

    /// readuntil (`line` false) and readline (`line` true), as asyncio's.
    template <class Result>
    static coro<Result> until(transport_ref ref, std::string separator, bool line) {
        transport& t = *ref;
        transport::read_guard guard(t);
        if (separator.empty()) {
            throw std::invalid_argument("readuntil: the separator must not be empty");
        }
        const std::size_t sep = separator.size();
        const std::size_t limit = t.limit();
        std::size_t from = 0;
        for (;;) {
            const std::string_view data = t.view();
            if (data.size() >= sep) {
                const std::size_t found = data.find(separator, from);
                if (found != std::string_view::npos) {
                    if (found > limit) {
                        // readline drops the overlong line; readuntil leaves it buffered.
                        if (line) t.consume(found + sep);
                        throw limit_overrun_error(
                            "Separator is found, but chunk is longer than limit", found);
                    }
                    t.consume(found + sep);
                    co_return Result(data.substr(0, found + sep));
                }
                from = data.size() + 1 - sep;
                if (from > limit) {
                    if (line) t.consume(data.size());
                    throw limit_overrun_error("Separator is not found, and chunk exceed the limit",
                                              from);
                }
            }
            if (t.input_ended()) {
                if (t.error() != 0) t.throw_error("recv"); // what is buffered stays for read()
                t.consume(data.size());
                if (line) co_return Result(data);
                throw incomplete_read_error(std::string(data), std::nullopt);
            }
            // The buffer needs no more than limit + separator bytes to decide.
            const std::size_t got = co_await t.fill(1, limit + sep);
            t.filled(got);
        }
    }

    // Reads of at least this size go straight into the result when nothing is buffered, one
    // receive of at most `max_chunk` bytes.
    static constexpr std::size_t direct_threshold = std::size_t{16} * 1024;
    static constexpr std::size_t max_chunk = std::size_t{256} * 1024;
};

} // namespace detail

/// Reads from a connection or a pipe (asyncio's `StreamReader`).
///
/// A cheap handle: copies share one transport (and its buffer) with the `stream_writer` of
/// the same connection. Every read is a lazy `coro` to `co_await` in a task; one read at a
/// time per stream (a second concurrent one throws `invalid_state_error`). Bytes come back as
/// `std::string` (text protocols need no casts); the `_into` forms fill the caller's memory,
/// the `_view` forms return a view into the reader's buffer, valid until the next read.
///
/// Cancellation withdraws the receive in the kernel and throws `cancelled_error`; no byte
/// already received is lost (it stays buffered for the next read). End of stream: `read`
/// returns what there is (empty at the end), `readexactly` and `readuntil` throw
/// `incomplete_read_error` with the partial bytes. Errors (a reset peer) are
/// `std::system_error`, thrown once the bytes received before them have been read.
class stream_reader {
public:
    /// An empty reader (`explicit operator bool` is false).
    stream_reader() noexcept = default;
    explicit stream_reader(detail::transport_ref t) noexcept : t_(std::move(t)) {}

    explicit operator bool() const noexcept { return static_cast<bool>(t_); }

    /// Up to `n` bytes: what is buffered, else what one receive brings (an empty string only
    /// at end of stream). `n < 0` (the default) reads until end of stream.
    [[nodiscard]] coro<std::string> read(std::ptrdiff_t n = -1) const {
        return detail::stream_reading::read(t_, n);
    }
    /// Up to `buffer.size()` bytes into `buffer` (0 only at end of stream, or for an empty
    /// buffer); with nothing buffered, the kernel writes straight into `buffer`.
    [[nodiscard]] coro<std::size_t> read_into(std::span<char> buffer) const {
        return detail::stream_reading::read_into(t_, buffer);
    }
    [[nodiscard]] coro<std::size_t> read_into(std::span<std::byte> buffer) const {
        return read_into(std::span<char>(reinterpret_cast<char*>(buffer.data()), buffer.size()));
    }
    /// Exactly `n` bytes; at end of stream before that, throws `incomplete_read_error` holding
    /// the bytes read (which are consumed).
    [[nodiscard]] coro<std::string> readexactly(std::size_t n) const {
        return detail::stream_reading::readexactly(t_, n);
    }
    /// Fills `buffer` exactly (as `readexactly`).
    [[nodiscard]] coro<> readexactly_into(std::span<char> buffer) const {
        return detail::stream_reading::readexactly_into(t_, buffer);
    }
    [[nodiscard]] coro<> readexactly_into(std::span<std::byte> buffer) const {
        return readexactly_into(
            std::span<char>(reinterpret_cast<char*>(buffer.data()), buffer.size()));
    }
    /// The bytes up to and including `separator`. Past the limit without finding it, throws
    /// `limit_overrun_error` and leaves the data buffered; at end of stream, throws
    /// `incomplete_read_error` holding what was buffered (consumed).
    [[nodiscard]] coro<std::string> readuntil(std::string separator = "\n") const {
        return detail::stream_reading::until<std::string>(t_, std::move(separator), false);
    }
    /// As `readuntil`, as a view into the reader's buffer, valid until the next read.
    [[nodiscard]] coro<std::string_view> readuntil_view(std::string separator = "\n") const {
        return detail::stream_reading::until<std::string_view>(t_, std::move(separator), false);
    }
    /// One line, with its `\n`; at end of stream the last bytes without one, then empty
    /// strings. A line longer than the limit is dropped (up to its `\n` if it was seen) and
    /// `limit_overrun_error` thrown, so memory never grows past about the limit.
    [[nodiscard]] coro<std::string> readline() const {
        return detail::stream_reading::until<std::string>(t_, "\n", true);
    }
    /// As `readline`, as a view into the reader's buffer, valid until the next read.
    [[nodiscard]] coro<std::string_view> readline_view() const {
        return detail::stream_reading::until<std::string_view>(t_, "\n", true);
    }

    /// True once end of stream was seen and nothing is left in the buffer.
    [[nodiscard]] bool at_eof() const noexcept { return t_->at_eof(); }
    /// Bytes received and not read yet.
    [[nodiscard]] std::size_t buffered() const noexcept { return t_->buffered(); }
    /// The buffer limit (see `readline`).
    [[nodiscard]] std::size_t limit() const noexcept { return t_->limit(); }
    /// The descriptor (-1 once the transport is closed).
    [[nodiscard]] int native_handle() const noexcept { return t_->native_handle(); }

private:
    detail::transport_ref t_;
};

/// Writes to a connection or a pipe (asyncio's `StreamWriter`).
///
/// A cheap handle: copies share the transport. `write` never suspends: it tries the syscall
/// at once and buffers what the kernel did not take, which the transport sends in the
/// background. `co_await drain()` is the flow control: it waits while more than the
/// high-water mark (64 KiB) is buffered, until it is back under the low-water mark (16 KiB).
///
/// Errors: once the connection failed (a reset peer: `ECONNRESET`, `EPIPE`), `write`,
/// `writelines`, `drain` and the reader's reads throw that `std::system_error`; writing after
/// `close()` or `write_eof()` throws `invalid_state_error`. When the last handle of the
/// transport goes, it closes as `close()` does.
class stream_writer {
public:
    /// An empty writer (`explicit operator bool` is false).
    stream_writer() noexcept = default;
    explicit stream_writer(detail::transport_ref t) noexcept : t_(std::move(t)) {}

    explicit operator bool() const noexcept { return static_cast<bool>(t_); }

    /// Sends `data`, at once if the kernel takes it, else in the background.
    void write(std::string_view data) const { t_->write(data.data(), data.size()); }
    void write(std::span<const std::byte> data) const {
        t_->write(reinterpret_cast<const char*>(data.data()), data.size());
    }

    /// Writes every element of `lines` (strings, string views, byte spans...), in one
    /// syscall when nothing is buffered.
    template <std::ranges::input_range R>
    requires std::convertible_to<std::ranges::range_reference_t<R>, std::string_view> ||
        std::convertible_to<std::ranges::range_reference_t<R>, std::span<const std::byte>>
    void writelines(R&& lines) const {
        constexpr std::size_t batch = 64;
        iovec pieces[batch];
        std::size_t count = 0;
        auto flush = [&] {
            t_->write_pieces(std::span<const iovec>(pieces, count));
            count = 0;
        };
        for (auto&& line : lines) {
            if constexpr (std::convertible_to<std::ranges::range_reference_t<R>,
                                              std::string_view>) {
                const std::string_view s = line;
                pieces[count++] = iovec{const_cast<char*>(s.data()), s.size()};
            } else {
                const std::span<const std::byte> s = line;
                pieces[count++] = iovec{const_cast<std::byte*>(s.data()), s.size()};
            }
            if (count == batch) flush();
        }
        if (count > 0) flush();
    }

    /// Waits while the write buffer is above its high-water mark (at once, without
    /// suspending, when it is not); throws the transport's error if it has one.
    /// Cancellation leaves the wait (`cancelled_error`); the buffered bytes are still sent.
    [[nodiscard]] coro<> drain() const { return wait(t_, what::drain); }

    /// Closes the stream: no more writes; what is buffered is still sent, then the descriptor
    /// is closed. A read in progress returns as at end of stream. Idempotent.
    void close() const noexcept { t_->close(); }
    /// Closes at once, dropping what is buffered (asyncio's `transport.abort()`).
    void abort() const noexcept { t_->abort(); }
    /// Waits until the descriptor is closed (after `close()` has flushed the buffer, or after a
    /// failure). Never throws the transport's error (unlike asyncio): `drain` reports it.
    [[nodiscard]] coro<> wait_closed() const { return wait(t_, what::closed); }
    /// True once `close()` was called or the transport failed.
    [[nodiscard]] bool is_closing() const noexcept { return t_->is_closing(); }

    /// Whether `write_eof` is supported (always: sockets shut down, pipes close).
    [[nodiscard]] bool can_write_eof() const noexcept { return true; }
    /// Once the buffer is flushed, ends the stream for writing (`shutdown(SHUT_WR)` on a
    /// socket, closing a pipe); the reader keeps working.
    void write_eof() const { t_->write_eof(); }

    /// The peer's address (empty for a pipe, or when unknown).
    [[nodiscard]] socket_address peername() const { return t_->address(true); }
    /// The local address (empty for a pipe, or when unknown).
    [[nodiscard]] socket_address sockname() const { return t_->address(false); }

    /// Bytes buffered and not yet taken by the kernel (asyncio's `get_write_buffer_size`).
    [[nodiscard]] std::size_t write_buffer_size() const noexcept { return t_->write_buffer_size(); }
    /// asyncio's `set_write_buffer_limits(high, low)`: the water marks of `drain`. With only
    /// `high`, `low` is a quarter of it.
    void set_write_buffer_limits(std::optional<std::size_t> high,
                                 std::optional<std::size_t> low = std::nullopt) const {
        t_->set_write_buffer_limits(high, low);
    }
    /// `{low, high}`, as asyncio's `get_write_buffer_limits`.
    [[nodiscard]] std::pair<std::size_t, std::size_t> write_buffer_limits() const noexcept {
        return t_->write_buffer_limits();
    }
    /// The descriptor (-1 once closed).
    [[nodiscard]] int native_handle() const noexcept { return t_->native_handle(); }

private:
    using what = detail::stream_transport::wait_awaiter::what;

    static coro<> wait(detail::transport_ref t, what w) {
        co_await detail::stream_transport::wait_awaiter(std::move(t), w);
    }

    detail::transport_ref t_;
};

/// A connection's two ends: `auto [reader, writer] = co_await corio::open_connection(...)`.
struct stream_pair {
    stream_reader reader;
    stream_writer writer;
};

namespace detail {

/// A reader and a writer over a connected, non-blocking, close-on-exec socket, on the running
/// loop (`std::runtime_error` without one).
[[nodiscard]] inline stream_pair make_socket_streams(unique_fd socket,
                                                     std::size_t limit = default_stream_limit) {
    event_loop& loop = get_running_loop();
    transport_ref t(
        new stream_transport(loop, std::move(socket), stream_transport::kind::socket, limit));
    return stream_pair{stream_reader(t), stream_writer(t)};
}

/// A reader over the read end of a pipe (non-blocking and close-on-exec already), on the
/// running loop. Reads use `io_opcode::read`.
[[nodiscard]] inline stream_reader make_pipe_reader(unique_fd fd,
                                                    std::size_t limit = default_stream_limit) {
    event_loop& loop = get_running_loop();
    return stream_reader(transport_ref(
        new stream_transport(loop, std::move(fd), stream_transport::kind::pipe, limit)));
}

/// A writer over the write end of a pipe (non-blocking and close-on-exec already), on the
/// running loop. Writes use `io_opcode::write`. The first call in the process sets SIGPIPE
/// to SIG_IGN if it had its default disposition, so that writing to a pipe whose reader is
/// gone throws `std::system_error(EPIPE)` instead of killing the process.
[[nodiscard]] inline stream_writer make_pipe_writer(unique_fd fd) {
    ignore_sigpipe_once();
    event_loop& loop = get_running_loop();
    return stream_writer(transport_ref(new stream_transport(
        loop, std::move(fd), stream_transport::kind::pipe, default_stream_limit)));
}

} // namespace detail

} // namespace corio
