#pragma once
/// \file
/// `corio::start_server` and `corio::start_unix_server` (asyncio's): accept connections and
/// run a handler task for each; `corio::server` to look at and stop them.
///
/// The accept loop is not a task (it does not show in `all_tasks()`): each listening socket
/// has one accept operation in flight, owned by the server, whose completions create the
/// connection tasks. It survives what a busy server meets: running out of descriptors or
/// memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`: it reports the first failure to the
/// loop's exception handler, waits 100 ms and tries again, so that pending clients are served
/// once descriptors free up), connections aborted before they were accepted, and network
/// errors the kernel passes on to `accept`.
///
/// Its coroutines that need no template parameter have one, defaulted (`template <class = void>`),
/// so that only a program that calls one compiles it (docs/architecture.md, "Compile time").

#include "corio/coro.hpp"
#include "corio/detail/fd.hpp"
#include "corio/detail/intrusive.hpp"
#include "corio/detail/unique_fd.hpp"
#include "corio/event_loop.hpp"
#include "corio/net/connection.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/socket_address.hpp"
#include "corio/net/stream.hpp"
#include "corio/net/tls_options.hpp"
#include "corio/reactor/operation.hpp"
#include "corio/sync/event.hpp"
#include "corio/task.hpp"

#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace corio {

/// Options of `start_server` and `start_unix_server`.
struct server_options {
    /// `listen()`'s backlog (asyncio's default, 100); also the most connections accepted in
    /// one go before other work gets a turn.
    int backlog = 100;
    /// The buffer limit of each connection's reader.
    std::size_t limit = default_stream_limit;
    /// SO_REUSEADDR (TCP; on by default, as asyncio on Unix).
    bool reuse_address = true;
    /// SO_REUSEPORT: several sockets (one loop per core) share the port.
    bool reuse_port = false;
    /// `AF_UNSPEC` (every address the host has), `AF_INET` or `AF_INET6`. TCP only.
    int family = AF_UNSPEC;
    /// TLS (asyncio's `ssl=`): `.tls = &ctx`, a `tls_context::server(cert, key)` that outlives
    /// the server. The handler runs once the connection's handshake is done; a failed one
    /// (or one that takes longer than `tls_handshake_timeout`) closes that connection and is
    /// reported to the loop's exception handler, and the server goes on serving.
    tls_context_ref tls{};
    std::chrono::nanoseconds tls_handshake_timeout = default_tls_handshake_timeout;
};

/// How long the accept loop waits after running out of descriptors or memory.
inline constexpr std::chrono::milliseconds accept_retry_delay{100};

namespace detail {

class server_state;

/// A counted reference to a server's state.
class server_ref {
public:
    server_ref() noexcept = default;
    explicit server_ref(server_state* s) noexcept;
    server_ref(const server_ref& other) noexcept : server_ref(other.s_) {}
    server_ref(server_ref&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
    server_ref& operator=(server_ref other) noexcept {
        std::swap(s_, other.s_);
        return *this;
    }
    ~server_ref();

    [[nodiscard]] server_state* get() const noexcept { return s_; }
    server_state* operator->() const noexcept { return s_; }
    server_state& operator*() const noexcept { return *s_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

private:
    server_state* s_ = nullptr;
};

/// What a server is, whatever its handler: listening sockets, each with its accept
/// operation, and the connection tasks.
///
/// Lifetime: counted references (the `server` handles, each connection task, each waiter,
/// a pending back-off timer), plus itself while an accept operation is in flight or its
/// completion queued. The state deletes itself when neither is left; so a server whose
/// handles were all dropped keeps serving (as in asyncio) until closed, or until the loop
/// closes and withdraws its accept operations.
class server_state {
public:
    /// One listening socket and its accept operation.
    class listener final : public io_operation, public ready_node {
    public:
        listener(server_state& owner, unique_fd sock, bool tcp)
            : ready_node(&run_ready), owner_(&owner), sock_(std::move(sock)), tcp_(tcp) {
            opcode = io_opcode::accept;
            complete_ = &on_complete;
            socklen_t length = socket_address::capacity();
            if (::getsockname(sock_.get(), local_.data(), &length) == 0) local_.resize(length);
        }
        listener(const listener&) = delete;
        listener& operator=(const listener&) = delete;

        [[nodiscard]] bool busy() const noexcept { return in_flight_ || queued_; }
        [[nodiscard]] const socket_address& local() const noexcept { return local_; }

        /// Accepts until the kernel has no connection ready (then waits with one operation
        /// in flight), at most a backlog's worth before letting other work run.
        void accept_more() noexcept {
            for (int i = 0; i < owner_->backlog_; ++i) {
                if (owner_->closed_ || !sock_ || busy()) return;
                peer_length_ = socket_address::capacity();
                fd = sock_.get();
                address = peer_.data();
                address_length = &peer_length_;
                in_flight_ = true;
                bool done = false;
                try {
                    done = loop_access::submit_io(*owner_->loop_, *this);
                } catch (...) {
                    // The reactor could not take it (an io_uring ring jammed): retry later.
                    in_flight_ = false;
                    back_off(EBUSY);
                    return;
                }
                if (!done) return;
                in_flight_ = false;
                if (!owner_->on_accepted(*this, result_)) return;
            }
            // A backlog accepted in one go: the rest in a later iteration.
            queued_ = true;
            result_ = -EAGAIN;
            loop_access::schedule(*owner_->loop_, this);
        }

        void stop() noexcept {
            if (in_flight_ && loop_access::alive(owner_->loop_)) {
                // The socket is closed when the accept completes: an io_uring SQE names it
                // by number and may not have been submitted yet. It stops listening now, so
                // that a client connecting meanwhile is refused rather than queued.
                (void)::shutdown(sock_.get(), SHUT_RDWR);
                loop_access::cancel_io(*owner_->loop_, *this);
                return;
            }
            sock_.reset();
        }

        /// Waits `accept_retry_delay`, then accepts again.
        void back_off(int error) noexcept {
            if (!owner_->resource_error_) {
                owner_->resource_error_ = true;
                owner_->report("socket.accept() out of system resource",
                               std::make_exception_ptr(
                                   std::system_error(error, std::system_category(), "accept")));
            }
            // No handle is kept (it would make a cycle with the reference the callback holds):
            // a timer firing after close() finds the server closed and does nothing.
            try {
                (void)owner_->loop_->call_later(
                    accept_retry_delay,
                    [ref = server_ref(owner_), self = this] { self->accept_more(); });
            } catch (...) {
                // Out of memory for the timer too: nothing more can be done for this socket.
            }
        }

    private:
        static void on_complete(io_operation* op, int) noexcept {
            auto* self = static_cast<listener*>(op);
            self->in_flight_ = false;
            self->queued_ = true;
            loop_access::schedule(*self->owner_->loop_, self);
        }

        static void run_ready(ready_node* node, bool run) noexcept {
            auto* self = static_cast<listener*>(node);
            server_state* owner = self->owner_;
            self->queued_ = false;
            ++owner->processing_;  // the state must outlive this, whatever is released in it
            if (run) {
                if (self->result_ == -EAGAIN || owner->on_accepted(*self, self->result_)) {
                    self->accept_more();
                }
            } else if (self->result_ >= 0) {
                ::close(self->result_);  // the loop is closing: nobody will serve it
            }
            if (owner->closed_ && !self->busy()) self->sock_.reset();
            --owner->processing_;
            owner->settle();
        }

        friend class server_state;

        server_state* owner_;
        unique_fd sock_;
        socket_address local_;
        socket_address peer_;
        socklen_t peer_length_ = 0;
        bool tcp_;
        bool in_flight_ = false;
        bool queued_ = false;
    };

    server_state(event_loop& loop, int backlog, std::size_t limit)
        : loop_(&loop), backlog_(backlog > 0 ? backlog : 1), limit_(limit) {}
    server_state(const server_state&) = delete;
    server_state& operator=(const server_state&) = delete;
    virtual ~server_state() {
        for (listener* l : listeners_) l->stop();
        unlink_path();
        for (listener* l : listeners_) delete l;
    }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        --refs_;
        settle();
    }

    void add_listener(unique_fd sock, bool tcp) {
        listeners_.reserve(listeners_.size() + 1);  // so that the push cannot leak the listener
        listeners_.push_back(new listener(*this, std::move(sock), tcp));
    }
    /// Remembers the Unix socket file to remove on close (if it is still ours then).
    void set_unix_path(std::string path) {
        struct stat st{};
        if (!path.empty() && path[0] != '\0' && ::stat(path.c_str(), &st) == 0) {
            path_ = std::move(path);
            path_dev_ = st.st_dev;
            path_ino_ = st.st_ino;
        }
    }

    void start() noexcept {
        for (listener* l : listeners_) l->accept_more();
    }

    /// Stops accepting, closes the listening sockets and cancels every connection task.
    void close() noexcept {
        if (closed_) return;
        closed_ = true;
        for (listener* l : listeners_) l->stop();
        unlink_path();
        // Cancelling only schedules; copies, so that a task ending meanwhile is harmless.
        std::vector<task<>> running;
        try {
            running.reserve(live_connections_);
            for (const task<>& t : connections_) {
                if (t) running.push_back(t);
            }
        } catch (...) {
        }
        for (auto& t : running) t.cancel();
        serving_.set();
        if (live_connections_ == 0) all_closed_.set();
    }

    [[nodiscard]] bool is_serving() const noexcept { return !closed_; }
    [[nodiscard]] std::vector<socket_address> addresses() const {
        std::vector<socket_address> result;
        for (const listener* l : listeners_) result.push_back(l->local());
        return result;
    }
    [[nodiscard]] std::size_t connection_count() const noexcept { return live_connections_; }
    [[nodiscard]] event_loop& loop() const noexcept { return *loop_; }
    [[nodiscard]] event& serving_done() noexcept { return serving_; }
    [[nodiscard]] event& all_closed() noexcept { return all_closed_; }

protected:
    /// Creates the task that serves `connection`, which holds `slot` in `connections_`.
    virtual task<> spawn(server_ref self, std::size_t slot, unique_fd connection) = 0;

    /// Called by the connection task as its frame goes. A slot whose task was never stored
    /// (`spawn` failed after making the frame) is `on_accepted`'s to give back.
    void connection_done(std::size_t slot) noexcept {
        if (!connections_[slot]) return;
        connections_[slot] = task<>();
        free_slots_.push_back(slot);  // never reallocates: see take_slot
        --live_connections_;
        if (closed_ && live_connections_ == 0) all_closed_.set();
    }

    void report(const char* message, std::exception_ptr error) const noexcept {
        if (loop_access::alive(loop_)) {
            loop_->call_exception_handler(exception_context{message, std::move(error), {}});
        }
    }

    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

private:
    friend class listener;

    // A free slot in `connections_`, its task empty. Growing both vectors together means that
    // giving a slot back (`connection_done`, noexcept) never allocates.
    std::size_t take_slot() {
        if (!free_slots_.empty()) {
            const std::size_t slot = free_slots_.back();
            free_slots_.pop_back();
            return slot;
        }
        free_slots_.reserve(connections_.size() + 1);
        connections_.emplace_back();
        return connections_.size() - 1;
    }

    // Deals with one accept result; false when the listener must stop (for now).
    bool on_accepted(listener& l, int result) noexcept {
        if (result >= 0) {
            unique_fd connection(result);
            resource_error_ = false;
            if (closed_) return false;
            if (l.tcp_) set_nodelay(connection.get());
            std::size_t slot = 0;
            try {
                slot = take_slot();
            } catch (...) {
                report("Cannot start a connection task", std::current_exception());
                return true;
            }
            try {
                connections_[slot] = spawn(server_ref(this), slot, std::move(connection));
                ++live_connections_;
            } catch (...) {
                free_slots_.push_back(slot);
                report("Cannot start a connection task", std::current_exception());
            }
            return true;
        }
        if (closed_) return false;  // withdrawn, or woken by the shutdown of close()
        switch (-result) {
        case ECANCELED: return false;  // closing
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM: l.back_off(-result); return false;
        case EAGAIN:
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            return true;  // this connection is gone (or never was); the next one may come
        default:
            report("Error on accept(); the server stops accepting on this socket",
                   std::make_exception_ptr(
                       std::system_error(-result, std::system_category(), "accept")));
            return false;
        }
    }

    void settle() noexcept {
        if (refs_ > 0 || processing_ > 0) return;
        for (const listener* l : listeners_) {
            if (l->busy()) return;
        }
        delete this;
    }

    void unlink_path() noexcept {
        if (path_.empty()) return;
        struct stat st{};
        if (::stat(path_.c_str(), &st) == 0 && st.st_dev == path_dev_ && st.st_ino == path_ino_) {
            ::unlink(path_.c_str());
        }
        path_.clear();
    }

    event_loop* loop_;
    std::size_t refs_ = 0;
    int processing_ = 0;
    int backlog_;
    std::size_t limit_;
    // Owned, deleted by the destructor: operations in flight point at them, so they never move
    // (held by plain pointers, as a std::unique_ptr of each would cost every program of
    // sockets its instantiation).
    std::vector<listener*> listeners_;
    // The connection tasks, by slot (an empty handle for a free slot), and the free slots:
    // a connection's slot is its ticket's, so that it leaves in constant time.
    std::vector<task<>> connections_;
    std::vector<std::size_t> free_slots_;  // capacity: connections_.size()
    std::size_t live_connections_ = 0;
    event serving_;
    event all_closed_;
    std::string path_;
    dev_t path_dev_ = 0;
    ino_t path_ino_ = 0;
    bool closed_ = false;
    bool resource_error_ = false;
};

inline server_ref::server_ref(server_state* s) noexcept : s_(s) {
    if (s_ != nullptr) s_->add_ref();
}
inline server_ref::~server_ref() {
    if (s_ != nullptr) s_->release();
}

/// What `start_server` requires of a handler: `handler(reader, writer)` is a `coro<void>`.
template <class Handler>
concept connection_handler =
    std::move_constructible<Handler> && std::invocable<Handler&, stream_reader, stream_writer> &&
    std::same_as<std::invoke_result_t<Handler&, stream_reader, stream_writer>, coro<void>>;

template <class Handler>
class server_state_of final : public server_state {
public:
    server_state_of(event_loop& loop, Handler handler, const server_options& options)
        : server_state(loop, options.backlog, options.limit), handler_(std::move(handler)),
          tls_(options.tls), tls_handshake_timeout_(options.tls_handshake_timeout) {}

private:
    task<> spawn(server_ref self, std::size_t slot, unique_fd connection) override {
        return loop().create_task(serve(ticket(std::move(self), slot), std::move(connection)));
    }

    // Takes the connection off the server's list when the task's frame goes: a parameter, so
    // that this also happens to a task cancelled before its body ever started.
    class ticket {
    public:
        ticket(server_ref state, std::size_t slot) noexcept
            : state_(std::move(state)), slot_(slot) {}
        ticket(ticket&& other) noexcept : state_(std::move(other.state_)), slot_(other.slot_) {}
        ticket(const ticket&) = delete;
        ticket& operator=(const ticket&) = delete;
        ticket& operator=(ticket&&) = delete;
        ~ticket() {
            if (state_) static_cast<server_state_of&>(*state_).connection_done(slot_);
        }
        [[nodiscard]] server_state_of& state() const noexcept {
            return static_cast<server_state_of&>(*state_);
        }

    private:
        server_ref state_;
        std::size_t slot_;
    };

    // One connection's task: the handler runs inline in it. Its exception goes to the loop's
    // exception handler (asyncio's "Unhandled exception in client_connected_cb"); the
    // connection is closed when the handler's reader and writer are gone.
    static coro<> serve(ticket self, unique_fd connection) {
        server_state_of& state = self.state();
        std::exception_ptr error;
        const char* failure = "TLS handshake failed";
        try {
            stream_pair streams = make_socket_streams(std::move(connection), state.limit());
            if (state.tls_) {
                start_tls_options tls_options;  // named: g++ 12 and braced temporaries
                tls_options.handshake_timeout = state.tls_handshake_timeout_;
                co_await streams.writer.start_tls_with(*state.tls_.engine(),
                                                       std::move(tls_options));
            }
            failure = "Unhandled exception in client_connected_cb";
            co_await std::invoke(state.handler_, std::move(streams.reader),
                                 std::move(streams.writer));
        } catch (const cancelled_error&) {
            throw;
        } catch (...) {
            error = std::current_exception();
        }
        if (error) {
            state.loop().call_exception_handler(
                exception_context{failure, error, current_task().get_name()});
        }
    }

    Handler handler_;
    tls_context_ref tls_;
    std::chrono::nanoseconds tls_handshake_timeout_;
};

/// `address` (IPv4 or IPv6) with another port.
[[nodiscard]] inline socket_address with_port(socket_address address, std::uint16_t port) noexcept {
    if (address.family() == AF_INET) {
        reinterpret_cast<sockaddr_in*>(address.data())->sin_port = htons(port);
    } else if (address.family() == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(address.data())->sin6_port = htons(port);
    }
    return address;
}

/// A listening socket, bound and listening.
[[nodiscard]] inline unique_fd listen_on(const socket_address& address,
                                         const server_options& options) {
    const int family = address.family();
    unique_fd sock = open_socket(family, SOCK_STREAM, 0);
    const int one = 1;
    if (family != AF_UNIX && options.reuse_address) {
        if (::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
            throw_errno(errno, "setsockopt(SO_REUSEADDR)");
        }
    }
    if (options.reuse_port) {
        if (::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
            throw_errno(errno, "setsockopt(SO_REUSEPORT)");
        }
    }
    if (family == AF_INET6) {
        // One socket per family, as asyncio: "::" does not also take IPv4.
        (void)::setsockopt(sock.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (::bind(sock.get(), address.data(), address.size()) != 0) {
        const int error = errno;
        throw std::system_error(error, std::system_category(), "bind to " + address.to_string());
    }
    if (::listen(sock.get(), options.backlog) != 0) throw_errno(errno, "listen");
    return sock;
}

}  // namespace detail

/// A running server (asyncio's `Server`): a cheap, copyable handle.
///
/// Dropping every handle does not stop the server (as in asyncio, the loop keeps it
/// serving); `close()` does, and the loop closing does.
class server {
public:
    /// An empty handle (`explicit operator bool` is false).
    server() noexcept = default;
    explicit server(detail::server_ref state) noexcept : state_(std::move(state)) {}

    explicit operator bool() const noexcept { return static_cast<bool>(state_); }

    /// The port of the first listening socket (the one the kernel chose for port 0); 0 for a
    /// Unix socket.
    [[nodiscard]] std::uint16_t port() const {
        const auto addresses = state_->addresses();
        return addresses.empty() ? 0 : addresses.front().port();
    }
    /// The addresses of the listening sockets (asyncio's `Server.sockets`).
    [[nodiscard]] std::vector<socket_address> sockets() const { return state_->addresses(); }
    /// True until `close()`.
    [[nodiscard]] bool is_serving() const noexcept { return state_->is_serving(); }
    /// Connection tasks still running.
    [[nodiscard]] std::size_t connection_count() const noexcept {
        return state_->connection_count();
    }
    [[nodiscard]] event_loop& get_loop() const noexcept { return state_->loop(); }

    /// Stops accepting and closes the listening sockets (a Unix socket's file is removed),
    /// and cancels every connection task. Idempotent.
    void close() const noexcept { state_->close(); }

    /// Waits until the server is closed and every connection task has ended.
    template <class = void>
    [[nodiscard]] coro<> wait_closed() const {
        return wait_closed_of(state_);
    }

    /// Serves until the server is closed (then returns) or the awaiting task is cancelled
    /// (then closes the server, waits for it, and rethrows `cancelled_error`), as asyncio's.
    template <class = void>
    [[nodiscard]] coro<> serve_forever() const {
        return serve_forever_of(state_);
    }

private:
    template <class = void>
    static coro<> wait_closed_of(detail::server_ref state) {
        co_await state->all_closed().wait();
    }

    template <class = void>
    static coro<> serve_forever_of(detail::server_ref state) {
        std::exception_ptr cancelled;
        try {
            co_await state->serving_done().wait();
        } catch (const cancelled_error&) {
            cancelled = std::current_exception();
        }
        if (cancelled) {
            state->close();
            co_await state->all_closed().wait();
            std::rethrow_exception(cancelled);
        }
    }

    detail::server_ref state_;
};

/// Listens on `host`:`port` (TCP) and runs `handler(reader, writer)` in a new task for each
/// connection (asyncio's `start_server`): `auto srv = co_await corio::start_server(echo, "", 0);`
///
/// - `host`: an empty string (or `"0.0.0.0"` / `"::"`) listens on every interface (one socket
///   per address family); a name is resolved off the loop and every address it has is bound.
///   `port` 0 lets the kernel choose (`server.port()`); several sockets then share it.
/// - `handler` is a callable taking `(corio::stream_reader, corio::stream_writer)` and
///   returning `corio::coro<void>`; it is stored in the server (so its captures live as long),
///   and each connection runs it in its own task. An exception escaping it goes to the loop's
///   exception handler; the connection is closed when the handler's reader and writer are
///   gone.
/// - Lazy (a `coro`); the server accepts as soon as it is returned. Errors binding or
///   listening are `std::system_error` (nothing stays open then).
template <class Handler>
    requires detail::connection_handler<std::decay_t<Handler>>
[[nodiscard]] coro<server> start_server(Handler handler, std::string host, std::uint16_t port,
                                        server_options options = {}) {
    resolve_options hints;
    hints.family = options.family;
    hints.socktype = SOCK_STREAM;
    hints.flags = AI_PASSIVE;
    const std::vector<address_info> addresses = co_await getaddrinfo(host, port, hints);
    event_loop& loop = get_running_loop();
    detail::server_ref state(
        new detail::server_state_of<std::decay_t<Handler>>(loop, std::move(handler), options));
    std::uint16_t chosen = port;
    bool bound_any = false;
    for (const address_info& info : addresses) {
        socket_address address = info.address;
        if (port == 0 && chosen != 0) {
            // Every socket on the port the kernel gave the first, when it is free.
            try {
                state->add_listener(detail::listen_on(detail::with_port(address, chosen), options),
                                    true);
                bound_any = true;
                continue;
            } catch (const std::system_error&) {
                // Taken for this family: let the kernel choose another.
            }
        }
        try {
            state->add_listener(detail::listen_on(address, options), true);
        } catch (const std::system_error& e) {
            // An empty host also asks for IPv6, which the machine may not have.
            if (host.empty() && address.family() == AF_INET6 &&
                (e.code().value() == EAFNOSUPPORT || e.code().value() == EADDRNOTAVAIL)) {
                continue;
            }
            throw;
        }
        bound_any = true;
        if (chosen == 0) chosen = state->addresses().back().port();
    }
    if (!bound_any) throw std::system_error(EADDRNOTAVAIL, std::system_category(), "bind " + host);
    state->start();
    co_return server(std::move(state));
}

/// Listens on the Unix domain socket `path` (a stale socket file there is replaced; a
/// leading '\0' names an abstract socket) and serves each connection as `start_server` does
/// (asyncio's `start_unix_server`). Closing the server removes the file.
template <class Handler>
    requires detail::connection_handler<std::decay_t<Handler>>
[[nodiscard]] coro<server> start_unix_server(Handler handler, std::string path,
                                             server_options options = {}) {
    const socket_address address = socket_address::unix_path(path);
    if (!path.empty() && path[0] != '\0') {
        struct stat st{};
        if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
    }
    event_loop& loop = get_running_loop();
    detail::server_ref state(
        new detail::server_state_of<std::decay_t<Handler>>(loop, std::move(handler), options));
    state->add_listener(detail::listen_on(address, options), false);
    state->set_unix_path(path);
    state->start();
    co_return server(std::move(state));
}

}  // namespace corio
