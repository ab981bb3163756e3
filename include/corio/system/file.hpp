#pragma once
/// \file
/// `corio::file`: asynchronous file I/O (beyond asyncio). Reads, writes and `fsync` go through
/// io_uring on the io_uring backend; on epoll, where a regular file is always "ready" and a
/// read would block the loop, they run on the loop's executor. Opening and closing run on the
/// executor on both backends.
///
/// Its coroutines that need no template parameter have one, defaulted (`template <class = void>`),
/// so that only a program that calls one compiles it (docs/architecture.md, "Compile time").

#include "corio/coro.hpp"
#include "corio/detail/fd.hpp"
#include "corio/detail/unique_fd.hpp"
#include "corio/event_loop.hpp"
#include "corio/executor.hpp"
#include "corio/future.hpp"
#include "corio/impl/future_state.hpp"
#include "corio/impl/io_awaiter.hpp"
#include "corio/impl/task_state.hpp"
#include "corio/reactor/operation.hpp"

#include <algorithm>
#include <cerrno>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace corio {

/// How `file::open` opens a file: flags combined with `|`. At least one of `read`, `write` or
/// `append` is needed. Python's modes, for comparison:
///
/// | Python | corio |
/// |---|---|
/// | `"r"` | `open_mode::read` |
/// | `"r+"` | `open_mode::read_write` |
/// | `"w"` | `open_mode::write \| open_mode::create \| open_mode::truncate` |
/// | `"w+"` | `open_mode::read_write \| open_mode::create \| open_mode::truncate` |
/// | `"a"` | `open_mode::append \| open_mode::create` |
/// | `"x"` | `open_mode::write \| open_mode::exclusive` |
enum class open_mode : unsigned {
    read = 1U << 0,   ///< reading allowed (`O_RDONLY`, or `O_RDWR` with `write`)
    write = 1U << 1,  ///< writing allowed (`O_WRONLY`, or `O_RDWR` with `read`)
    read_write = read | write,
    append = 1U << 2,     ///< implies `write`; every write goes to the end (`O_APPEND`)
    create = 1U << 3,     ///< create the file if missing (`O_CREAT`)
    truncate = 1U << 4,   ///< empty the file (`O_TRUNC`); needs `write` or `append`
    exclusive = 1U << 5,  ///< implies `create`; fail with `EEXIST` if the file exists (`O_EXCL`)
};

[[nodiscard]] constexpr open_mode operator|(open_mode a, open_mode b) noexcept {
    return static_cast<open_mode>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
[[nodiscard]] constexpr open_mode operator&(open_mode a, open_mode b) noexcept {
    return static_cast<open_mode>(static_cast<unsigned>(a) & static_cast<unsigned>(b));
}
constexpr open_mode& operator|=(open_mode& a, open_mode b) noexcept { return a = a | b; }

namespace detail {

/// The descriptor of an open file and its name (for error messages). Shared by the `file` and
/// by the operations in flight, so that the descriptor is never closed (and its number never
/// reused) under an operation that still uses it.
struct file_descriptor {
    file_descriptor(int descriptor, std::string path) noexcept
        : fd(descriptor), name(std::move(path)) {}
    file_descriptor(const file_descriptor&) = delete;
    file_descriptor& operator=(const file_descriptor&) = delete;
    ~file_descriptor() {
        if (fd >= 0) ::close(fd);
    }

    int fd;
    const std::string name;
};

using shared_file_descriptor = std::shared_ptr<file_descriptor>;

/// The most one read or write asks of the kernel (Linux's `MAX_RW_COUNT`, and what an io_uring
/// SQE's 32-bit length can hold).
inline constexpr std::size_t max_file_transfer = 0x7ffff000;
/// How much `read_all` and `write_all` move per operation: a cancellation waits at most one.
inline constexpr std::size_t file_chunk = std::size_t{8} << 20;

/// What `file::open` takes as a path: a string, or a `std::filesystem::path` (anything with a
/// `c_str()`), without <filesystem> for the programs that never name one.
template <class Path>
concept file_path =
    std::convertible_to<const Path&, std::string_view> || requires(const Path& path) {
        { path.c_str() } -> std::convertible_to<const char*>;
    };

/// What `file::open` takes as permissions: a number (0600) or `std::filesystem::perms`.
template <class Permissions>
concept file_permissions = std::is_integral_v<Permissions> || std::is_enum_v<Permissions>;

/// `path` as the string `open(2)` will be given.
template <file_path Path>
[[nodiscard]] std::string path_string(const Path& path) {
    if constexpr (std::convertible_to<const Path&, std::string_view>) {
        return std::string(std::string_view(path));
    } else if constexpr (requires { std::string_view(path.native()); }) {
        return std::string(std::string_view(path.native()));  // with any NUL, to be refused
    } else {
        return std::string(path.c_str());
    }
}

[[noreturn]] inline void throw_file_error(int error, std::string_view operation,
                                          std::string_view name) {
    std::string what(operation);
    what += " '";
    what += name;
    what += '\'';
    throw std::system_error(error, std::system_category(), what);
}

[[noreturn]] inline void throw_file_closed(std::string_view operation) {
    throw std::system_error(EBADF, std::system_category(),
                            "corio::file::" + std::string(operation) + ": the file is not open");
}

/// `open(2)` flags for `mode`; `std::invalid_argument` for a mode that makes no sense.
[[nodiscard]] inline int open_flags(open_mode mode) {
    auto has = [mode](open_mode flag) { return (mode & flag) == flag; };
    const bool reads = has(open_mode::read);
    const bool writes = has(open_mode::write) || has(open_mode::append);
    if (!reads && !writes) {
        throw std::invalid_argument("corio::file::open: the mode needs read, write or append");
    }
    if (has(open_mode::truncate) && !writes) {
        throw std::invalid_argument("corio::file::open: truncate needs write or append");
    }
    int flags = O_CLOEXEC | O_NOCTTY;
    flags |= reads && writes ? O_RDWR : writes ? O_WRONLY : O_RDONLY;
    if (has(open_mode::append)) flags |= O_APPEND;
    if (has(open_mode::create)) flags |= O_CREAT;
    if (has(open_mode::exclusive)) flags |= O_CREAT | O_EXCL;
    if (has(open_mode::truncate)) flags |= O_TRUNC;
    return flags;
}

/// Whether file operations on `loop` go to its reactor (io_uring) or to its executor.
[[nodiscard]] inline bool file_io_on_reactor(const event_loop& loop) noexcept {
    return loop.backend_name() == "io_uring";
}

/// Runs `fn()` on the running loop's executor and waits for it to finish, whatever happens:
/// `fn` may use memory of the awaiting frame (a read buffer), and a job that runs cannot be
/// stopped, so the awaiting task never leaves before it is done.
///
/// Cancellation therefore behaves as for an `io_awaiter` whose operation finished first: a task
/// cancelled while the job runs waits for it, gets its result (or its exception), and the
/// cancellation is delivered at the task's next suspension point; nothing the job did is lost.
/// A task already cancelled when it reaches the `co_await` throws `cancelled_error` at once,
/// and the job is never started. The loop closing joins the executor's workers before it
/// destroys any frame, so a frame never goes while its job runs.
///
/// NOTE: declare it as a named local (`executor_call job(fn); auto r = co_await job;`): g++ 12
/// destroys twice a temporary awaiter made by class template argument deduction or aggregate
/// initialisation inside a `co_await` expression, once the coroutine has suspended.
template <class F>
class executor_call : public listener, public cancellable_wait {
public:
    using result_type = std::invoke_result_t<F&>;

    explicit executor_call(F fn)
        : listener(&notify), cancellable_wait(ops<&cancel, &describe>), fn_(std::move(fn)) {}
    executor_call(const executor_call&) = delete;
    executor_call& operator=(const executor_call&) = delete;
    ~executor_call() { listener::unlink(); }

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        task_ = &task_state_base::current("corio executor call");
        if (task_->cancel_pending()) return false;  // await_resume throws; nothing started
        result_ = task_->loop().run_in_executor(std::move(fn_));
        handle_access::state(result_)->add_listener(this);
        task_->suspend(h, this);
        return true;
    }

    result_type await_resume() {
        if (!result_) {
            task_->end_wait();  // throws the pending cancellation
            throw cancelled_error();
        }
        task_->leave_wait();  // a cancellation that came meanwhile stays pending
        auto& state = *handle_access::state(result_);
        state.check_result();
        if constexpr (!std::is_void_v<result_type>) return state.take_value();
    }

private:
    static void notify(listener* l, future_state_base&, bool run) noexcept {
        if (run) static_cast<executor_call*>(l)->task_->schedule();
    }

    // The job cannot be withdrawn: the task stays suspended until it is done (see above).
    static bool cancel(cancellable_wait*, const std::string&) { return false; }

    static void describe(const cancellable_wait* w, wait_description& description) {
        description.what = "executor job";
        description.awaits = handle_access::state(static_cast<const executor_call*>(w)->result_);
    }

    F fn_;
    future<result_type> result_;
    task_state_base* task_ = nullptr;
};

/// One read or write of at most `length` bytes at `offset` (`io_operation::no_offset`: at the
/// descriptor's position): the bytes transferred. `EINTR` is retried.
template <class = void>
inline coro<std::size_t> file_transfer(shared_file_descriptor file, io_opcode opcode,
                                       std::byte* buffer, std::size_t length,
                                       std::uint64_t offset) {
    length = std::min(length, max_file_transfer);
    const char* const what = opcode == io_opcode::read ? "read" : "write";
    if (file_io_on_reactor(get_running_loop())) {
        io_awaiter op(opcode, file->fd);  // which retries EINTR itself
        op.buffer = buffer;
        op.length = length;
        op.offset = offset;
        const int result = co_await op;
        if (result < 0) throw_file_error(-result, what, file->name);
        co_return static_cast<std::size_t>(result);
    }
    // NOTE: a named local, not a temporary in the co_await (see executor_call).
    executor_call job([file, opcode, buffer, length, offset, what] {
        for (;;) {
            ssize_t n = 0;
            if (opcode == io_opcode::read) {
                n = offset == io_operation::no_offset
                        ? ::read(file->fd, buffer, length)
                        : ::pread(file->fd, buffer, length, static_cast<off_t>(offset));
            } else {
                n = offset == io_operation::no_offset
                        ? ::write(file->fd, buffer, length)
                        : ::pwrite(file->fd, buffer, length, static_cast<off_t>(offset));
            }
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno != EINTR) throw_file_error(errno, what, file->name);
        }
    });
    co_return co_await job;
}

// Positional reads and writes go on after a short transfer: a regular file's only comes from a
// signal or a full disk, and the caller would otherwise lose the rest without knowing it.
template <class = void>
inline coro<std::size_t> file_transfer_all_at(shared_file_descriptor file, io_opcode opcode,
                                              std::byte* buffer, std::size_t length,
                                              std::uint64_t offset) {
    std::size_t done = 0;
    while (done < length) {
        const std::size_t n =
            co_await file_transfer(file, opcode, buffer + done, length - done, offset + done);
        if (n == 0) {
            if (opcode == io_opcode::read) break;        // the end of the file
            throw_file_error(EIO, "write", file->name);  // no progress: never loop forever
        }
        done += n;
    }
    co_return done;
}

template <class = void>
inline coro<std::size_t> file_read_at(shared_file_descriptor file, std::uint64_t offset,
                                      std::span<std::byte> buffer) {
    if (!file) throw_file_closed("read_at");
    if (buffer.empty()) co_return 0;
    co_return co_await file_transfer_all_at(std::move(file), io_opcode::read, buffer.data(),
                                            std::min(buffer.size(), max_file_transfer), offset);
}

template <class = void>
inline coro<std::string> file_read_string_at(shared_file_descriptor file, std::uint64_t offset,
                                             std::size_t count) {
    if (!file) throw_file_closed("read_at");
    std::string data(std::min(count, max_file_transfer), '\0');
    if (data.empty()) co_return data;
    const std::size_t n = co_await file_transfer_all_at(std::move(file), io_opcode::read,
                                                        reinterpret_cast<std::byte*>(data.data()),
                                                        data.size(), offset);
    data.resize(n);
    co_return data;
}

template <class = void>
inline coro<std::size_t> file_write_at(shared_file_descriptor file, std::uint64_t offset,
                                       std::span<const std::byte> data) {
    if (!file) throw_file_closed("write_at");
    if (data.empty()) co_return 0;
    co_return co_await file_transfer_all_at(std::move(file), io_opcode::write,
                                            const_cast<std::byte*>(data.data()),
                                            std::min(data.size(), max_file_transfer), offset);
}

[[nodiscard]] inline std::uint64_t file_size(const file_descriptor& file) {
    struct stat status{};
    if (::fstat(file.fd, &status) != 0) throw_file_error(errno, "fstat", file.name);
    return static_cast<std::uint64_t>(status.st_size);
}

template <class = void>
inline coro<std::string> file_read_all(shared_file_descriptor file) {
    if (!file) throw_file_closed("read_all");
    // One byte more than the size, so that the read that finds the end is a short one; a file
    // that grows meanwhile (or reports no size, as /proc files) grows the buffer.
    std::string data(static_cast<std::size_t>(file_size(*file)) + 1, '\0');
    std::size_t filled = 0;
    for (;;) {
        if (filled == data.size()) data.resize(std::max<std::size_t>(2 * data.size(), 64 * 1024));
        const std::size_t n = co_await file_transfer(
            file, io_opcode::read, reinterpret_cast<std::byte*>(data.data()) + filled,
            std::min(data.size() - filled, file_chunk), filled);
        if (n == 0) break;
        filled += n;
    }
    data.resize(filled);
    co_return data;
}

template <class = void>
inline coro<> file_write_all(shared_file_descriptor file, std::span<const std::byte> data) {
    if (!file) throw_file_closed("write_all");
    while (!data.empty()) {
        const std::size_t n =
            co_await file_transfer(file, io_opcode::write, const_cast<std::byte*>(data.data()),
                                   std::min(data.size(), file_chunk), io_operation::no_offset);
        if (n == 0) throw_file_error(EIO, "write", file->name);  // no progress: never loop forever
        data = data.subspan(n);
    }
}

template <class = void>
inline coro<> file_sync(shared_file_descriptor file, bool data_only) {
    const char* const what = data_only ? "fdatasync" : "fsync";
    if (!file) throw_file_closed(what);
    if (file_io_on_reactor(get_running_loop())) {
        io_awaiter op(io_opcode::fsync, file->fd);
        op.flags = data_only ? fsync_data_only : 0;
        const int result = co_await op;
        if (result < 0) throw_file_error(-result, what, file->name);
        co_return;
    }
    executor_call job([file, data_only, what] {
        const int rc = data_only ? ::fdatasync(file->fd) : ::fsync(file->fd);
        if (rc != 0) throw_file_error(errno, what, file->name);
    });
    co_await job;
}

template <class = void>
inline coro<> file_close(shared_file_descriptor file) {
    // An operation still in flight (in another task) holds the descriptor: it is closed when
    // that operation ends.
    if (!file || file.use_count() > 1) co_return;
    // The job owns the descriptor: if it never runs (the task was cancelled first), the
    // descriptor is closed synchronously when the job is dropped.
    executor_call job([file = std::move(file)] {
        const int fd = std::exchange(file->fd, -1);
        // Linux frees the descriptor even when close fails with EINTR: never retry.
        if (::close(fd) != 0 && errno != EINTR) throw_file_error(errno, "close", file->name);
    });
    co_await job;
}

}  // namespace detail

/// An open file, read and written asynchronously at explicit offsets (beyond asyncio, whose
/// file objects block the loop).
///
/// - I/O: on the io_uring backend, reads, writes and `fsync` are io_uring operations; on epoll
///   (or any other reactor) they run on the loop's executor (`run_in_executor`), since epoll
///   cannot wait for a regular file. `open` and `close` run on the executor on both backends.
///   The backend is that of the loop running when an operation starts: a `file` is not tied to
///   a loop.
/// - Errors are `std::system_error` whose `what()` names the operation and the path (`read
///   '/tmp/data': Is a directory`); an operation on a closed file throws one with `EBADF`.
/// - Buffers: a buffer given to an operation must stay alive until its `co_await` returns.
/// - Cancellation: an operation that the kernel or a worker thread has started is never
///   abandoned (it may be writing into your buffer). A task cancelled meanwhile waits for it and
///   gets its result; the cancellation is delivered at the task's next suspension point (in
///   `read_all` and `write_all`, before the next chunk of at most 8 MiB), so nothing read or
///   written is lost. io_uring may still withdraw an operation that has not started: the
///   `co_await` then throws `cancelled_error`.
/// - Lifetime: movable, not copyable. `close()` closes the file and reports errors; the
///   destructor closes it synchronously if `close()` was not awaited. An operation in flight
///   (in another task) keeps the descriptor open until it ends, so closing or destroying a
///   `file` never lets an operation touch another file that reused its descriptor number.
/// - Descriptors are opened with `O_CLOEXEC`: child processes never inherit them.
class file {
public:
    /// Permissions of a file that `open` creates when none are given: `rw-rw-rw-` (0666), less
    /// the process's umask, as `open(2)` and Python's `open` do.
    static constexpr mode_t default_permissions = 0666;

    /// A closed file.
    file() noexcept = default;
    file(file&&) noexcept = default;
    /// Closes the file held (synchronously, if this is its last owner) and takes `other`'s.
    file& operator=(file&&) noexcept = default;
    file(const file&) = delete;
    file& operator=(const file&) = delete;
    ~file() = default;

    /// Opens `path` (`co_await corio::file::open("data.bin", corio::open_mode::read)`), on the
    /// running loop's executor. `path` is a string (`const char*`, `std::string`...) or a
    /// `std::filesystem::path`; `permissions` (a number such as 0600, or `std::filesystem::perms`)
    /// apply to a file that `create` or `exclusive` creates, less the umask. A directory cannot
    /// be opened (`EISDIR`, for reading too, as Python's `open`). Throws `std::system_error`
    /// (`ENOENT`, `EACCES`, `EEXIST`, `EISDIR`, ...) naming the path; `std::invalid_argument`
    /// for a path with a NUL in it, for a mode without read, write or append, or with truncate
    /// but without write or append. Lazy, as every `coro`.
    template <detail::file_path Path, detail::file_permissions Permissions = mode_t>
    static coro<file> open(const Path& path, open_mode mode = open_mode::read,
                           Permissions permissions = default_permissions) {
        // The path is copied now: the coroutine may start after the caller's string is gone.
        return open_named(detail::path_string(path), mode, static_cast<mode_t>(permissions));
    }

    /// Whether the file is open (false once `close()` was called, and for a moved-from file).
    [[nodiscard]] bool is_open() const noexcept { return file_ != nullptr; }
    /// The descriptor, or -1 when closed. It stays the file's: do not close it.
    [[nodiscard]] int native_handle() const noexcept { return file_ ? file_->fd : -1; }
    /// The path given to `open` (empty when closed).
    [[nodiscard]] std::string_view path() const noexcept {
        return file_ ? std::string_view(file_->name) : std::string_view();
    }

    /// Reads `buffer.size()` bytes at `offset` (`pread`, again after a short read): the number
    /// read, fewer only at the end of the file (0 at or past it), or above 2 GiB (the kernel's
    /// limit per call). Does not move the file position.
    template <class = void>
    coro<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> buffer) const {
        return detail::file_read_at(file_, offset, buffer);
    }
    /// Reads at most `count` bytes at `offset` into a string (shorter only at the end of the
    /// file, or above 2 GiB).
    template <class = void>
    coro<std::string> read_at(std::uint64_t offset, std::size_t count) const {
        return detail::file_read_string_at(file_, offset, count);
    }

    /// Writes `data` at `offset` (`pwrite`, again after a short write, so that a signal or a
    /// full disk never drops the rest silently): the number of bytes written, `data.size()` up
    /// to 2 GiB (the kernel's limit per call). Does not move the file position. In append mode
    /// Linux writes at the end, whatever `offset` says.
    template <class = void>
    coro<std::size_t> write_at(std::uint64_t offset, std::span<const std::byte> data) const {
        return detail::file_write_at(file_, offset, data);
    }
    template <class = void>
    coro<std::size_t> write_at(std::uint64_t offset, std::string_view data) const {
        return detail::file_write_at(file_, offset, std::as_bytes(std::span(data)));
    }

    /// The whole file, from offset 0 to its end, whatever its size (in reads of at most 8 MiB).
    template <class = void>
    coro<std::string> read_all() const {
        return detail::file_read_all(file_);
    }

    /// Writes all of `data` at the file position (the end, in append mode), as successive
    /// `write`s would, retrying after short writes; the position moves past it. Two `write_all`
    /// in a row write one after the other. (The `_at` operations leave the position alone.)
    template <class = void>
    coro<> write_all(std::span<const std::byte> data) const {
        return detail::file_write_all(file_, data);
    }
    template <class = void>
    coro<> write_all(std::string_view data) const {
        return detail::file_write_all(file_, std::as_bytes(std::span(data)));
    }

    /// Flushes the file's data and metadata to the device (`fsync`).
    template <class = void>
    coro<> fsync() const {
        return detail::file_sync(file_, false);
    }
    /// Flushes the data, and only the metadata needed to read it back (`fdatasync`).
    template <class = void>
    coro<> fdatasync() const {
        return detail::file_sync(file_, true);
    }

    /// The file's size now (`fstat`, a quick synchronous call).
    [[nodiscard]] std::uint64_t size() const {
        if (!file_) detail::throw_file_closed("size");
        return detail::file_size(*file_);
    }

    /// Closes the file (on the executor) and reports an error of `close(2)` (as `EIO` from a
    /// network file system). The file is closed as soon as `close()` is called, even if the
    /// result is never awaited; closing a closed file does nothing. If another task's operation
    /// is still in flight, the descriptor is closed when that operation ends.
    template <class = void>
    coro<> close() {
        return detail::file_close(std::move(file_));
    }

private:
    template <class = void>
    static coro<file> open_named(std::string name, open_mode mode, mode_t permissions) {
        if (name.find('\0') != std::string::npos) {
            throw std::invalid_argument("corio::file::open: a NUL in the path");
        }
        const int flags = detail::open_flags(mode);
        const mode_t mode_bits = permissions & 07777;
        // The job returns a unique_fd: if its result is dropped (the loop closed before it was
        // delivered), the descriptor is closed, never leaked.
        detail::executor_call job([name, flags, mode_bits] {
            int descriptor = -1;
            do {
                descriptor = ::open(name.c_str(), flags, mode_bits);
            } while (descriptor < 0 && errno == EINTR);
            if (descriptor < 0) detail::throw_file_error(errno, "open", name);
            unique_fd owned(descriptor);
            struct stat status{};
            if (::fstat(descriptor, &status) != 0) detail::throw_file_error(errno, "fstat", name);
            if (S_ISDIR(status.st_mode)) detail::throw_file_error(EISDIR, "open", name);
            return owned;
        });
        unique_fd fd = co_await job;
        auto shared = std::make_shared<detail::file_descriptor>(-1, std::move(name));
        shared->fd = fd.release();
        co_return file(std::move(shared));
    }

    explicit file(detail::shared_file_descriptor descriptor) noexcept
        : file_(std::move(descriptor)) {}

    detail::shared_file_descriptor file_;
};

}  // namespace corio
