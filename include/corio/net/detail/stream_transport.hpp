#pragma once
/// \file
/// `detail::stream_transport`, what a `stream_reader` and a `stream_writer` share (through a
/// `transport_ref`): the descriptor, the buffers, the background write, and their states.

#include "corio/coro.hpp"
#include "corio/detail/fd.hpp"
#include "corio/detail/frame_allocator.hpp"
#include "corio/detail/intrusive.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/detail/unique_fd.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/io_awaiter.hpp"
#include "corio/impl/sync_waiter.hpp"
#include "corio/net/detail/read_buffer.hpp"
#include "corio/net/detail/send_at_once.hpp"
#include "corio/net/detail/stream_filter.hpp"
#include "corio/net/socket_address.hpp"
#include "corio/reactor/operation.hpp"

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
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

namespace detail {

class transport_ref;

/// The descriptor behind a reader and a writer, their buffers, and the background write.
///
/// Two state machines say where it is; each moves only along the arrows written here.
///
/// `lifecycle`, which only moves forward (`advance`):
///   open -> closing      `close()`, `abort()`, a failure (`fail`), or `write_eof()` on a pipe:
///                        no more writes, reads end as at end of stream; what is buffered is
///                        still sent (not after `abort()` or a failure)
///   closing -> closed    the write side is idle (`finish_close`): no more reads or writes
///   closed -> released   no operation names the descriptor any more (`release_fd`): it is
///                        closed, and `wait_closed()` returns
///
/// `write_op`, the one write operation, on `inflight_[ioff_..]` (`write()` appends to
/// `pending_` meanwhile, so the memory the kernel reads from never moves):
///   idle -> in_flight    `start_write` submitted it
///   in_flight -> idle    it completed at once (`submit` returned true), or `submit` threw
///   in_flight -> queued  its completion came (`on_write_complete`); the result waits in the
///                        loop's ready queue, as completions only schedule
///   queued -> idle       `run_ready` took the result (and may start the next write)
///
/// Reading: at most one read is in progress (`reading_`), and `read_op_` points at its
/// operation while the kernel holds it. The transport deletes itself when no handle is left
/// (`refs_ == 0`) and its write operation is idle.
class stream_transport final : public io_operation, public ready_node, public recycled<> {
public:
    enum class lifecycle : unsigned char { open, closing, closed, released };
    enum class write_op : unsigned char { idle, in_flight, queued };
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

    [[nodiscard]] std::size_t buffered() const noexcept { return input_.size(); }
    [[nodiscard]] std::string_view view() const noexcept { return input_.view(); }
    void consume(std::size_t n) noexcept { input_.consume(n); }
    /// Whether a read is in progress (see `read_guard`).
    [[nodiscard]] bool reading() const noexcept { return reading_; }
    /// No more bytes will arrive: end of stream, or the transport is closing or closed.
    [[nodiscard]] bool input_ended() const noexcept { return eof_ || is_closing(); }
    [[nodiscard]] bool at_eof() const noexcept { return input_ended() && buffered() == 0; }
    /// Puts `data` (taken out earlier) back in front of what is buffered.
    void unread(std::string_view data) { input_.unread(data); }

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

    /// A `receive_op` gives the filter's plaintext, or the raw bytes (a handshake's input).
    enum class receive_mode : unsigned char { filtered, raw };

    /// One receive (recv on a socket, read on a pipe) into `[data, data + size)`, through the
    /// reactor. `co_await` yields the number of bytes (0 at end of stream, or when the
    /// transport was closed meanwhile), or throws the transport's error.
    ///
    /// With a filter (TLS), the bytes received go to the filter and the plaintext it gives
    /// comes into `[data, data + size)`: without suspending when the filter has some already,
    /// and receiving again (without waking the task) while a record is still incomplete.
    class receive_op : public io_awaiter {
    public:
        receive_op(stream_transport& t, char* data, std::size_t size,
                   receive_mode mode = receive_mode::filtered) noexcept
            : io_awaiter(t.is_socket() ? io_opcode::recv : io_opcode::read, t.fd_.get()), t_(&t) {
            owned_fd = true;
            if (t.filter_ && mode == receive_mode::filtered) {
                plain_ = data;
                plain_size_ = std::min(size, max_io);
                set_result_hook(&on_input);
            } else {
                buffer = data;
                length = std::min(size, max_io);
            }
        }
        receive_op(const receive_op&) = delete;
        receive_op& operator=(const receive_op&) = delete;
        ~receive_op() {
            if (t_->read_op_ == this) {
                t_->read_op_ = nullptr;
                if (t_->closed()) t_->release_fd();
            }
        }

        // Nothing to receive: the transport failed, or no more bytes will come; or the filter
        // has plaintext already.
        [[nodiscard]] bool await_ready() {
            ended_ = t_->error_ != 0 || t_->input_ended();
            if (plain_ == nullptr) return ended_;
            // What the filter holds comes first, even after an error or the end.
            const long got = t_->filter_->read(plain_, plain_size_);
            if (got > 0 || (!ended_ && got != stream_filter::need_input)) {
                ready_result_ = t_->filtered_result(got);
                return ready_ = true;
            }
            if (ended_) return true;
            const std::span<char> space = t_->filter_->input_space();
            buffer = space.data();
            length = std::min(space.size(), max_io);
            return false;
        }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            const bool suspended = io_awaiter::await_suspend(h);
            if (suspended) t_->read_op_ = this;
            return suspended;
        }
        std::size_t await_resume() {
            if (ready_) return t_->on_received(ready_result_);
            if (ended_) {
                if (t_->error_ != 0) t_->throw_error("recv");
                return 0;
            }
            t_->read_op_ = nullptr;
            if (t_->closed()) t_->release_fd();  // the close was waiting for this operation
            const int result = io_awaiter::await_resume();  // throws if the task was cancelled
            return t_->on_received(result);
        }

    private:
        // What arrived goes to the filter; true when it gave plaintext (or the end, or failed).
        static bool on_input(io_awaiter& op, int& result) noexcept {
            auto& self = static_cast<receive_op&>(op);
            stream_filter& filter = *self.t_->filter_;
            filter.input_received(static_cast<std::size_t>(result));
            const long got = filter.read(self.plain_, self.plain_size_);
            if (got != stream_filter::need_input) {
                result = self.t_->filtered_result(got);
                return true;
            }
            try {
                const std::span<char> space = filter.input_space();
                self.buffer = space.data();
                self.length = std::min(space.size(), max_io);
                return false;
            } catch (...) {
                result = -ENOMEM;
                return true;
            }
        }

        stream_transport* t_;
        char* plain_ = nullptr;
        std::size_t plain_size_ = 0;
        int ready_result_ = 0;
        bool ended_ = false;
        bool ready_ = false;
    };

    /// Makes room after what is buffered for at least `room` more bytes (the buffer grows to
    /// no more than `max_capacity` unless `room` needs it), and receives into it.
    receive_op fill(std::size_t room = 1,
                    std::size_t max_capacity = std::numeric_limits<std::size_t>::max()) {
        const std::span<char> space = input_.reserve(room, max_capacity);
        return receive_op(*this, space.data(), space.size());
    }

    /// Received `n` bytes into the buffer (after `fill`).
    void filled(std::size_t n) noexcept { input_.commit(n); }

    // -- Writing ------------------------------------------------------------------------------

    [[nodiscard]] std::size_t write_buffer_size() const noexcept {
        return inflight_.size() - ioff_ + pending_.size();
    }
    [[nodiscard]] bool is_closing() const noexcept { return life_ >= lifecycle::closing; }
    /// No more reads or writes (the descriptor may still wait for an operation to end).
    [[nodiscard]] bool closed() const noexcept { return life_ >= lifecycle::closed; }
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
        if (filter_) {
            if (!filter_->write(data, size)) throw_filter_error("send");
            if (error_ != 0) throw_error("send");  // the peer went while this was sent
            return;
        }
        write_bytes(data, size);
    }

    /// The filter's output, sent as `write` sends; dropped once the transport is closing (but
    /// `close_notify`, written before `close` moves on) or failed. A peer that went does not
    /// fail the session (OpenSSL would refuse what it sent before: a TLS 1.3 client that sends
    /// and closes before the server's tickets are written); the transport's error says it.
    bool write_filtered(const char* data, std::size_t size) noexcept {
        if (error_ != 0 || is_closing() || size == 0) return true;
        try {
            write_bytes(data, size);
            return true;
        } catch (const std::system_error&) {
            return true;  // the transport failed, and says so
        } catch (...) {
            fail(ENOMEM);
            return false;
        }
    }

    /// The filter (TLS) the transport's bytes go through from now on; bytes received and not
    /// read yet go to it first.
    void attach_filter(owned_ptr<stream_filter> filter) {
        if (input_.size() > 0) {
            filter->input_unread(input_.view());
            input_.consume(input_.size());
        }
        filter_ = std::move(filter);
    }
    [[nodiscard]] stream_filter* filter() const noexcept { return filter_.get(); }

    /// The filter's failure (`tls_error`), or the transport's own.
    [[noreturn]] void throw_filter_error(const char* what) {
        if (error_ == 0) {
            filter_failed_ = true;
            fail(EPROTO);
        }
        throw_error(what);
    }

private:
    void write_bytes(const char* data, std::size_t size) {
        if (write_buffer_size() == 0 && write_ == write_op::idle) {
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

public:
    /// Writes every piece with one `sendmsg` / `writev` when nothing is buffered.
    void write_pieces(std::span<const iovec> pieces) {
        check_writable();
        std::size_t total = 0;
        for (const iovec& v : pieces) total += v.iov_len;
        if (total == 0) return;
        if (filter_) {
            // Joined, so that small pieces make one record rather than one each.
            std::string joined;
            joined.reserve(total);
            for (const iovec& v : pieces)
                joined.append(static_cast<const char*>(v.iov_base), v.iov_len);
            write(joined.data(), joined.size());
            return;
        }
        std::size_t skip = 0;
        if (write_buffer_size() == 0 && write_ == write_op::idle) {
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
        if (is_closing()) return;
        if (filter_ && error_ == 0) filter_->close();  // close_notify, ahead of the end
        advance(lifecycle::closing);
        cancel_read();
        if (!write_busy()) finish_close();
    }

    /// asyncio's `transport.abort()`: closes at once, dropping what is buffered.
    void abort() noexcept {
        advance(lifecycle::closing);
        cancel_read();
        drop_write_buffer();
        if (write_ == write_op::in_flight) {
            aborting_ = true;
            if (loop_usable()) loop_access::cancel_io(*loop_, *this);
        }
        if (!write_busy()) finish_close();
    }

    /// Half-closes: once the buffer is flushed, shuts the socket down for writing (a pipe is
    /// closed). Writing afterwards is an error.
    void write_eof() {
        if (error_ != 0) throw_error("write_eof");
        if (filter_) throw invalid_state_error("corio::stream_writer: write_eof() on a TLS stream");
        if (is_closing() || eof_requested_) return;
        eof_requested_ = true;
        if (!write_busy()) finish_eof();
    }

    [[noreturn]] void throw_error(const char* what) const {
        if (filter_failed_) filter_->throw_error();
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

    bool drain_ready() const noexcept { return error_ != 0 || !paused_ || closed(); }

private:
    friend class wait_awaiter;

    [[nodiscard]] bool loop_usable() const noexcept {
        return loop_access::alive(loop_) && !loop_access::closed(*loop_);
    }
    [[nodiscard]] bool write_busy() const noexcept {
        return write_ != write_op::idle || write_buffer_size() > 0;
    }

    // A filter's `read` as a receive's result; a failure is -EPROTO (the filter's error).
    int filtered_result(long got) noexcept {
        if (got >= 0) return static_cast<int>(got);
        filter_failed_ = error_ == 0;
        return -EPROTO;
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
        if (read_op_ != nullptr && loop_usable()) read_op_->withdraw();
    }

    void check_writable() const {
        if (error_ != 0) throw_error(is_socket() ? "send" : "write");
        if (is_closing()) throw invalid_state_error("corio::stream_writer: write() after close()");
        if (eof_requested_) {
            throw invalid_state_error("corio::stream_writer: write() after write_eof()");
        }
    }

    long send_now(const char* data, std::size_t size) const noexcept {
        return send_at_once(fd_.get(), is_socket(), data, std::min(size, max_io));
    }
    long send_vector_now(std::span<const iovec> pieces) const noexcept {
        return send_vector_at_once(fd_.get(), is_socket(), pieces);
    }

    void after_buffering() {
        update_pause();
        if (write_ == write_op::idle) start_write();
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
            write_ = write_op::in_flight;
            bool done = false;
            try {
                done = loop_access::submit_io(*loop_, *this);
            } catch (...) {
                write_ = write_op::idle;
                throw;
            }
            if (!done) return;
            write_ = write_op::idle;
            if (!take_write_result(result_)) return;
        }
    }

    // Accounts for a finished write; false when the transport failed.
    bool take_write_result(int result) noexcept {
        if (result < 0) {
            if (result == -ECANCELED && aborting_) {
                drop_write_buffer();
            } else if (result == -EAGAIN || result == -EINTR) {
                return true;  // retried by the caller
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
        self->write_ = write_op::queued;
        // Completions only schedule: the result is looked at from the ready queue.
        loop_access::schedule(*self->loop_, self);
    }

    static void run_ready(ready_node* node, bool run) noexcept {
        auto* self = static_cast<stream_transport*>(node);
        self->write_ = write_op::idle;
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
            self->drop_write_buffer();  // even what the kernel did not take after all
        } else if (ok) {
            try {
                self->start_write();
            } catch (...) {
                // The reactor could not take the operation (an io_uring ring jammed).
                self->fail(EIO);
            }
        }
        if (!self->write_busy()) {
            if (self->is_closing()) {
                self->finish_close();
            } else if (self->eof_requested_) {
                self->finish_eof();
            }
        }
        if (self->closed()) self->release_fd();
        self->settle();
    }

    void drop_write_buffer() noexcept {
        // What the kernel may still read stays where it is until the operation completes.
        if (write_ == write_op::in_flight) {
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
        advance(lifecycle::closing);
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
            advance(lifecycle::closing);
            finish_close();
        }
    }

    void finish_close() noexcept {
        if (closed()) return;
        advance(lifecycle::closed);
        wake_all(drain_waiters_);
        release_fd();
    }

    // Closes the descriptor once no operation refers to it any more: an io_uring SQE names
    // the descriptor by number, and may not be submitted yet; closed under it, the number
    // could be reused by another socket the operation would then read or write.
    void release_fd() noexcept {
        if (life_ == lifecycle::released || read_op_ != nullptr || write_ == write_op::in_flight) {
            return;
        }
        advance(lifecycle::released);
        if (loop_access::alive(loop_)) loop_access::forget_fd(*loop_, fd_.get());
        fd_.reset();
        wake_all(closed_waiters_);
    }

    static void wake_all(waiter_list& list) noexcept {
        while (sync_waiter* w = list.front()) w->wake(sync_waiter::status::granted);
    }

    void advance(lifecycle to) noexcept {
        if (life_ < to) life_ = to;
    }

    void settle() noexcept {
        if (refs_ == 0 && write_ == write_op::idle) delete this;
    }

    event_loop* loop_;
    unique_fd fd_;
    std::size_t refs_ = 0;
    const kind kind_;

    // Reading.
    read_buffer input_;
    std::size_t limit_;
    io_awaiter* read_op_ = nullptr;
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
    write_op write_ = write_op::idle;
    bool paused_ = false;
    lifecycle life_ = lifecycle::open;
    bool aborting_ = false;
    bool eof_requested_ = false;
    bool eof_sent_ = false;

    owned_ptr<stream_filter> filter_;
    bool filter_failed_ = false;

    mutable std::optional<socket_address> peer_;
    mutable std::optional<socket_address> local_;
};

}  // namespace detail

}  // namespace corio
