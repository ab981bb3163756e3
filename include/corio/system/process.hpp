#pragma once
/// \file
/// Subprocesses (asyncio's `create_subprocess_exec`, `create_subprocess_shell` and `Process`).
///
/// A child is started with `posix_spawn` (glibc reports a failed `exec` back, so a missing
/// program is a `std::system_error` from `create_subprocess_exec`, not a child exiting 127) and
/// watched through a pidfd that the reactor polls: no SIGCHLD handler, so children that other
/// code of the program started are never reaped behind its back.
///
/// Its coroutines that need no template parameter have one, defaulted (`template <class = void>`),
/// so that only a program that calls one compiles it (docs/architecture.md, "Compile time").

#include "corio/coro.hpp"
#include "corio/detail/fd.hpp"
#include "corio/detail/os_thread.hpp"
#include "corio/detail/unique_fd.hpp"
#include "corio/event_loop.hpp"
#include "corio/gather.hpp"
#include "corio/impl/io_awaiter.hpp"
#include "corio/net/stream.hpp"
#include "corio/task.hpp"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;  // NOLINT: POSIX declares it nowhere

namespace corio {

/// Where a child's standard stream goes: `corio::inherit` (the parent's, the default),
/// `corio::pipe` (a pipe to the parent: `stdin_pipe()` and so on), `corio::devnull`,
/// `corio::stdout_` (stderr only: wherever stdout goes) or `corio::use_fd(fd)`.
struct stdio_redirect {
    enum class kind : std::uint8_t { inherit, pipe, devnull, stdout_, fd };
    kind how = kind::inherit;
    int fd = -1;  // with `kind::fd`
    friend constexpr bool operator==(const stdio_redirect&,
                                     const stdio_redirect&) noexcept = default;
};

/// The child shares the parent's stream (asyncio's `None`).
inline constexpr stdio_redirect inherit{stdio_redirect::kind::inherit};
/// A pipe between parent and child (asyncio's `PIPE`). Note that inside `namespace corio` this
/// hides POSIX `pipe()`: call `::pipe2` there.
inline constexpr stdio_redirect pipe{stdio_redirect::kind::pipe};
/// `/dev/null` (asyncio's `DEVNULL`).
inline constexpr stdio_redirect devnull{stdio_redirect::kind::devnull};
/// For `stderr_` only: the same as stdout (asyncio's `STDOUT`).
inline constexpr stdio_redirect stdout_{stdio_redirect::kind::stdout_};
/// A descriptor of the caller's (a file, a socket, one end of a pipe to another child): the
/// child gets a duplicate, the caller keeps `fd` open and owns it.
[[nodiscard]] constexpr stdio_redirect use_fd(int fd) noexcept {
    return {stdio_redirect::kind::fd, fd};
}

/// How `create_subprocess_exec` / `create_subprocess_shell` start a child. An aggregate, for
/// designated initializers: `{.stdout_ = corio::pipe, .stderr_ = corio::devnull}`.
///
/// The fields only look at what they are given (`cwd` a view, `env` a span): the child is
/// started during the call of `create_subprocess_exec`, so what they show must live until the
/// call returns, not longer. That keeps the type trivially destructible, which g++ 12 needs:
/// it destroys a never-constructed copy of a braced aggregate temporary that appears in a
/// `co_await` expression (so `co_await f({.name = std::string()})` frees garbage), and a type
/// with nothing to destroy is immune.
struct subprocess_options {
    stdio_redirect stdin_ = inherit;
    stdio_redirect stdout_ = inherit;
    stdio_redirect stderr_ = inherit;
    /// The child's working directory; empty: the parent's. A relative program path is looked
    /// up from there, as Python's `cwd` does.
    std::string_view cwd = {};
    /// The child's whole environment, as `"NAME=value"` strings (asyncio's `env`); empty
    /// optional: the parent's. `corio::current_environment()` is a copy of the parent's, to
    /// add to.
    std::optional<std::span<const std::string>> env = std::nullopt;
};

static_assert(std::is_trivially_destructible_v<subprocess_options>,
              "g++ 12 destroys braced aggregate temporaries in co_await expressions twice");

/// The parent's environment, as `"NAME=value"` strings (Python's `os.environ.copy()`).
template <class = void>
[[nodiscard]] inline std::vector<std::string> current_environment() {
    std::vector<std::string> result;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        result.emplace_back(*entry);
    }
    return result;
}

/// What `process::communicate` returns: everything the child wrote to each pipe (empty for a
/// stream that was not `corio::pipe`). Not named `stdout`/`stderr`, which are macros.
struct communicate_result {
    std::string out;
    std::string err;
};

namespace detail {

// `P_PIDFD` (Linux 5.4), spelled out for C libraries that do not name it yet.
inline constexpr idtype_t p_pidfd = static_cast<idtype_t>(3);

// asyncio's convention: the exit status, or minus the number of the signal that killed it.
[[nodiscard]] inline int returncode_of(const siginfo_t& info) noexcept {
    return info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
}

enum class reap_result { exited, running, error };

// Reaps the child of `pidfd` if it has exited, without blocking.
[[nodiscard]] inline reap_result try_reap(int pidfd, int& returncode) noexcept {
    siginfo_t info{};
    for (;;) {
        if (::waitid(p_pidfd, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG) == 0) break;
        if (errno == EINTR) continue;
        if (errno == ECHILD) {
            // Reaped by someone else (SIGCHLD ignored, a `waitpid(-1)` elsewhere): the status is
            // lost; asyncio reports 255 then.
            returncode = 255;
            return reap_result::exited;
        }
        return reap_result::error;
    }
    if (info.si_pid == 0) return reap_result::running;
    returncode = returncode_of(info);
    return reap_result::exited;
}

/// Reaps a child nobody waits for any more (its `process` was destroyed while it ran), so that
/// no zombie is left: a poll of its pidfd on the loop, which reaps it when it exits; if the loop
/// closes first (or is gone), a detached thread blocked in `waitid` takes over.
class child_reaper final : public io_operation {
public:
    static void start(event_loop* loop, unique_fd pidfd) noexcept {
        int status = 0;
        if (try_reap(pidfd.get(), status) != reap_result::running) return;
        if (!usable(loop)) {
            reap_on_thread(std::move(pidfd));
            return;
        }
        child_reaper* reaper = nullptr;
        try {
            reaper = new child_reaper(*loop, std::move(pidfd));
        } catch (...) {
            return;  // out of memory: the child stays a zombie until the program exits
        }
        reaper->watch();
    }

private:
    child_reaper(event_loop& loop, unique_fd pidfd) noexcept
        : loop_(&loop), pidfd_(std::move(pidfd)) {
        opcode = io_opcode::poll;
        fd = pidfd_.get();
        poll_events = POLLIN;
        complete_ = &on_complete;
    }

    [[nodiscard]] static bool usable(event_loop* loop) noexcept {
        return loop != nullptr && loop_access::alive(loop) && !loop_access::closed(*loop);
    }

    // Deletes `this` unless the poll is in flight.
    void watch() noexcept {
        for (;;) {
            int status = 0;
            const reap_result state = try_reap(pidfd_.get(), status);
            if (state == reap_result::exited) break;
            if (state == reap_result::error || !usable(loop_)) {
                reap_on_thread(std::move(pidfd_));
                break;
            }
            // The poll wakes no task: deadlock detection must not count it.
            loop_access::add_background_io(*loop_, 1);
            try {
                if (!loop_access::submit_io(*loop_, *this)) return;  // on_complete comes later
            } catch (...) {
                loop_access::add_background_io(*loop_, -1);
                reap_on_thread(std::move(pidfd_));
                break;
            }
            loop_access::add_background_io(*loop_, -1);
            if (result_ < 0) {
                reap_on_thread(std::move(pidfd_));
                break;
            }
        }
        delete this;
    }

    static void on_complete(io_operation* op, int result) noexcept {
        auto* self = static_cast<child_reaper*>(op);
        loop_access::add_background_io(*self->loop_, -1);
        if (result < 0) {  // -ECANCELED: the loop is closing
            int status = 0;
            if (try_reap(self->pidfd_.get(), status) == reap_result::running) {
                reap_on_thread(std::move(self->pidfd_));
            }
            delete self;
            return;
        }
        self->watch();
    }

    static void reap_on_thread(unique_fd pidfd) noexcept {
        try {
            auto reaper = [fd = std::make_shared<unique_fd>(std::move(pidfd))] {
                siginfo_t info{};
                while (::waitid(p_pidfd, static_cast<id_t>(fd->get()), &info, WEXITED) != 0 &&
                       errno == EINTR) {
                }
            };
            (void)start_os_thread(std::move(reaper), /*detached=*/true);
        } catch (...) {
            // No thread to be had: the child stays a zombie until the program exits.
        }
    }

    event_loop* loop_;
    unique_fd pidfd_;
};

/// The state a `process` handle and the coroutines working on it (`wait`, `communicate`) share.
struct child_state {
    child_state(event_loop& loop, pid_t pid, unique_fd pidfd) noexcept
        : loop(&loop), pid(pid), pidfd(std::move(pidfd)) {}
    child_state(const child_state&) = delete;
    child_state& operator=(const child_state&) = delete;
    ~child_state() {
        // Never killed: as asyncio, a child outlives its `process` object; it is only reaped.
        if (!returncode && pidfd) child_reaper::start(loop, std::move(pidfd));
    }

    // True once the child is reaped (`returncode` set).
    bool poll() noexcept {
        if (returncode) return true;
        int status = 0;
        if (try_reap(pidfd.get(), status) != reap_result::exited) return false;
        returncode.emplace(status);
        return true;
    }

    event_loop* loop;
    pid_t pid;
    // Open as long as the state: a task may still poll it after another one reaped the child.
    unique_fd pidfd;
    std::optional<int> returncode;
    std::optional<stream_writer> in;
    std::optional<stream_reader> out;
    std::optional<stream_reader> err;
};

template <class = void>
inline coro<int> wait_for_exit(std::shared_ptr<child_state> child) {
    while (!child->poll()) {
        io_awaiter exited(io_opcode::poll, child->pidfd.get());
        exited.poll_events = POLLIN;
        check_result(co_await exited, "waiting for a child process");
    }
    co_return *child->returncode;
}

inline bool broken_pipe(const std::system_error& e) noexcept {
    return e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset;
}

// Writes `input` to the child's stdin and closes it. A child that exits without reading all of
// it is not an error (asyncio ignores BrokenPipeError and ConnectionResetError too).
template <class = void>
inline coro<> feed_stdin(std::shared_ptr<child_state> child, std::string input) {
    if (!child->in) co_return;
    stream_writer& writer = *child->in;
    try {
        if (!input.empty()) {
            writer.write(input);
            co_await writer.drain();
        }
    } catch (const std::system_error& e) {
        if (!broken_pipe(e)) throw;
    }
    writer.close();
    try {
        co_await writer.wait_closed();
        co_await writer.drain();  // throws if what close() still had to send was not all sent
    } catch (const std::system_error& e) {
        if (!broken_pipe(e)) throw;
    }
}

template <class = void>
inline coro<std::string> read_to_end(std::shared_ptr<child_state> child, bool from_stderr) {
    std::optional<stream_reader>& reader = from_stderr ? child->err : child->out;
    if (!reader) co_return std::string();
    co_return co_await reader->read();
}

template <class Lazy = void>
inline coro<communicate_result> communicate_with(std::shared_ptr<child_state> child,
                                                 std::string input) {
    if (!input.empty() && !child->in) {
        throw std::invalid_argument("communicate: input given, but stdin is not corio::pipe");
    }
    // The three at once: a child blocked writing a full stdout pipe while the parent still
    // writes its stdin (or the other way round) would deadlock.
    // The coroutines named with `Lazy`, so that the call is dependent: `gather`'s deduced
    // result type would otherwise be instantiated in every program that includes this header.
    auto results = co_await gather(feed_stdin<Lazy>(child, std::move(input)),
                                   read_to_end<Lazy>(child, false), read_to_end<Lazy>(child, true));
    co_await wait_for_exit(child);
    // A named result: g++ 12 mishandles braced aggregate temporaries in coroutines.
    communicate_result result;
    result.out = std::move(std::get<1>(results));
    result.err = std::move(std::get<2>(results));
    co_return result;
}

}  // namespace detail

/// A child process (asyncio's `asyncio.subprocess.Process`), made by `create_subprocess_exec`
/// or `create_subprocess_shell`. A move-only handle; `wait()` and `communicate()` keep what
/// they need alive, so the handle may go while they run.
///
/// Destroying the handle of a child that still runs does not kill it (as in asyncio): the
/// child is reaped in the background when it exits (the loop polls its pidfd; once the loop is
/// closed, a thread waits for it), so no zombie is left behind. The pipes are closed.
class process {
public:
    /// An empty handle.
    process() noexcept = default;
    explicit process(std::shared_ptr<detail::child_state> state) noexcept
        : state_(std::move(state)) {}

    explicit operator bool() const noexcept { return state_ != nullptr; }

    [[nodiscard]] pid_t pid() const { return state().pid; }

    /// The exit status once the child has exited; minus the signal number if a signal killed
    /// it; empty while it runs. Looks without blocking (and reaps the child if it has exited,
    /// as Python's `Popen.poll`).
    [[nodiscard]] std::optional<int> returncode() const {
        detail::child_state& child = state();
        child.poll();
        return child.returncode;
    }

    /// The write end of the child's stdin (`.stdin_ = corio::pipe`); `std::logic_error`
    /// otherwise. Closing it (`close()`) is how the child sees the end of its input.
    [[nodiscard]] stream_writer& stdin_pipe() const {
        detail::child_state& child = state();
        if (!child.in) throw std::logic_error("process: stdin is not corio::pipe");
        return *child.in;
    }
    /// The read end of the child's stdout (`.stdout_ = corio::pipe`); `std::logic_error`
    /// otherwise.
    [[nodiscard]] stream_reader& stdout_pipe() const {
        detail::child_state& child = state();
        if (!child.out) throw std::logic_error("process: stdout is not corio::pipe");
        return *child.out;
    }
    /// The read end of the child's stderr (`.stderr_ = corio::pipe`); `std::logic_error`
    /// otherwise.
    [[nodiscard]] stream_reader& stderr_pipe() const {
        detail::child_state& child = state();
        if (!child.err) throw std::logic_error("process: stderr is not corio::pipe");
        return *child.err;
    }

    /// Waits until the child exits and returns `returncode()`. Lazy; any number of tasks may
    /// wait at once. Cancelling the wait leaves the child alone. If the child writes to a pipe
    /// nobody reads, it may block forever: read the pipes, or use `communicate`.
    template <class = void>
    [[nodiscard]] coro<int> wait() const {
        return detail::wait_for_exit(shared());
    }

    /// Writes `input` to stdin and closes it, reads stdout and stderr to their end, all at
    /// once (no deadlock, however much goes each way), then waits for the child to exit.
    /// Lazy. `std::invalid_argument` if `input` is not empty but stdin is not `corio::pipe`.
    /// Cancelled (say by `wait_for`), it stops reading and writing; the child runs on (what
    /// was read is lost), so that the usual reaction is `kill()` then `wait()`.
    template <class = void>
    [[nodiscard]] coro<communicate_result> communicate(std::string input = {}) const {
        return detail::communicate_with(shared(), std::move(input));
    }

    /// Sends `signo` to the child (through its pidfd: never to another process that reused
    /// its pid). Does nothing once the child has been reaped (Python's `Popen` neither);
    /// `std::system_error` for other failures (`EINVAL`: not a signal).
    void send_signal(int signo) const {
        detail::child_state& child = state();
        if (child.returncode) return;
        if (::syscall(SYS_pidfd_send_signal, child.pidfd.get(), signo, nullptr, 0) != 0 &&
            errno != ESRCH) {
            detail::throw_errno(errno, "pidfd_send_signal");
        }
    }
    /// `send_signal(SIGTERM)`.
    void terminate() const { send_signal(SIGTERM); }
    /// `send_signal(SIGKILL)`.
    void kill() const { send_signal(SIGKILL); }

private:
    [[nodiscard]] detail::child_state& state() const {
        if (!state_) throw std::logic_error("empty corio::process");
        return *state_;
    }
    [[nodiscard]] std::shared_ptr<detail::child_state> shared() const {
        (void)state();
        return state_;
    }

    std::shared_ptr<detail::child_state> state_;
};

namespace detail {

// RAII for the posix_spawn structures.
class spawn_actions {
public:
    spawn_actions() {
        if (const int rc = ::posix_spawn_file_actions_init(&actions_); rc != 0) {
            throw_errno(rc, "posix_spawn_file_actions_init");
        }
    }
    spawn_actions(const spawn_actions&) = delete;
    spawn_actions& operator=(const spawn_actions&) = delete;
    ~spawn_actions() { ::posix_spawn_file_actions_destroy(&actions_); }

    void dup2(int fd, int target) {
        check(::posix_spawn_file_actions_adddup2(&actions_, fd, target));
    }
    void open(int target, const char* path, int flags) {
        check(::posix_spawn_file_actions_addopen(&actions_, target, path, flags, 0));
    }
    void chdir(const char* path) { check(::posix_spawn_file_actions_addchdir_np(&actions_, path)); }
    [[nodiscard]] const posix_spawn_file_actions_t* get() const noexcept { return &actions_; }

private:
    static void check(int rc) {
        if (rc != 0) throw_errno(rc, "posix_spawn_file_actions");
    }
    posix_spawn_file_actions_t actions_;
};

class spawn_attributes {
public:
    spawn_attributes() {
        if (const int rc = ::posix_spawnattr_init(&attributes_); rc != 0) {
            throw_errno(rc, "posix_spawnattr_init");
        }
        // The child starts with no signal blocked (the loop's thread blocks the signals it
        // handles through its signalfd), and with SIGPIPE and SIGXFSZ at their defaults even
        // if this process ignores them, as Python's `restore_signals` does. Other ignored
        // signals stay ignored: that is how `nohup` and a shell's background jobs work.
        // Caught signals (corio's own handlers) are reset by `exec` anyway.
        sigset_t none;
        ::sigemptyset(&none);
        sigset_t defaults;
        ::sigemptyset(&defaults);
        ::sigaddset(&defaults, SIGPIPE);
        ::sigaddset(&defaults, SIGXFSZ);
        ::posix_spawnattr_setsigmask(&attributes_, &none);
        ::posix_spawnattr_setsigdefault(&attributes_, &defaults);
        ::posix_spawnattr_setflags(&attributes_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    spawn_attributes(const spawn_attributes&) = delete;
    spawn_attributes& operator=(const spawn_attributes&) = delete;
    ~spawn_attributes() { ::posix_spawnattr_destroy(&attributes_); }
    [[nodiscard]] const posix_spawnattr_t* get() const noexcept { return &attributes_; }

private:
    posix_spawnattr_t attributes_;
};

// A close-on-exec duplicate of `fd` numbered 3 or more, so that putting the child's streams in
// place (dup2 onto 0, 1, 2) never overwrites one that is still to be moved.
template <class = void>
[[nodiscard]] inline unique_fd high_duplicate(int fd, const char* what) {
    unique_fd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!copy) throw_errno(errno, what);
    return copy;
}

struct pipe_ends {
    unique_fd parent;
    unique_fd child;
};

// A pipe whose parent end is non-blocking (for the loop) and whose child end is blocking (as a
// program expects its standard streams); both close-on-exec, so that no other child inherits
// them.
template <class = void>
[[nodiscard]] inline pipe_ends make_child_pipe(bool child_reads) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
    unique_fd read_end(fds[0]);
    unique_fd write_end(fds[1]);
    pipe_ends ends{child_reads ? std::move(write_end) : std::move(read_end),
                   child_reads ? std::move(read_end) : std::move(write_end)};
    const int flags = ::fcntl(ends.parent.get(), F_GETFL);
    if (flags < 0 || ::fcntl(ends.parent.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
        throw_errno(errno, "fcntl");
    }
    if (ends.child.get() < 3) ends.child = high_duplicate(ends.child.get(), "fcntl");
    return ends;
}

struct stdio_setup {
    unique_fd parent_end;  // for `pipe`
    unique_fd child_end;   // for `pipe` and `use_fd`: closed in the parent after the spawn
};

template <class = void>
inline stdio_setup redirect_stream(spawn_actions& actions, const stdio_redirect& how, int target,
                                   const char* name) {
    stdio_setup setup;
    switch (how.how) {
    case stdio_redirect::kind::inherit: break;
    case stdio_redirect::kind::pipe: {
        pipe_ends ends = make_child_pipe(target == STDIN_FILENO);
        actions.dup2(ends.child.get(), target);
        setup.parent_end = std::move(ends.parent);
        setup.child_end = std::move(ends.child);
        break;
    }
    case stdio_redirect::kind::devnull:
        actions.open(target, "/dev/null", target == STDIN_FILENO ? O_RDONLY : O_WRONLY);
        break;
    case stdio_redirect::kind::stdout_:
        if (target != STDERR_FILENO) {
            throw std::invalid_argument(std::string("corio::stdout_ is for stderr_ only, not ") +
                                        name);
        }
        actions.dup2(STDOUT_FILENO, STDERR_FILENO);
        break;
    case stdio_redirect::kind::fd:
        if (how.fd < 0)
            throw std::invalid_argument(std::string("corio::use_fd: bad fd for ") + name);
        setup.child_end = high_duplicate(how.fd, "use_fd");
        actions.dup2(setup.child_end.get(), target);
        break;
    }
    return setup;
}

template <class = void>
inline coro<process> ready_process(process p) {
    co_return std::move(p);
}

template <class = void>
inline coro<process> failed_spawn(std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
    co_return process();
}

// posix_spawn takes C strings: one with a NUL inside would silently end there, and the child
// would run with other strings than the caller gave.
inline void check_no_nul(std::string_view s, const char* what) {
    if (s.find('\0') != std::string_view::npos) {
        throw std::invalid_argument(std::string("corio: a NUL in the ") + what +
                                    " of a subprocess");
    }
}

// Starts `argv` (`argv[0]` the program; `path` the file to run; looked up in PATH when
// `search_path`) and makes its `process`.
template <class = void>
inline process spawn(const std::string& path, bool search_path,
                     const std::vector<std::string>& argv, const subprocess_options& options,
                     const char* what) {
    event_loop& loop = get_running_loop();
    check_no_nul(path, "program");
    for (const std::string& arg : argv) check_no_nul(arg, "arguments");
    if (options.env) {
        for (const std::string& entry : *options.env) check_no_nul(entry, "environment");
    }
    check_no_nul(options.cwd, "working directory");
    spawn_actions actions;
    stdio_setup in = redirect_stream(actions, options.stdin_, STDIN_FILENO, "stdin_");
    stdio_setup out = redirect_stream(actions, options.stdout_, STDOUT_FILENO, "stdout_");
    stdio_setup err = redirect_stream(actions, options.stderr_, STDERR_FILENO, "stderr_");
    const std::string cwd(options.cwd);
    if (!cwd.empty()) actions.chdir(cwd.c_str());
    spawn_attributes attributes;

    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);

    std::vector<char*> env;
    char** envp = environ;
    if (options.env) {
        env.reserve(options.env->size() + 1);
        for (const std::string& entry : *options.env)
            env.push_back(const_cast<char*>(entry.c_str()));
        env.push_back(nullptr);
        envp = env.data();
    }

    pid_t pid = -1;
    const int rc =
        search_path
            ? ::posix_spawnp(&pid, path.c_str(), actions.get(), attributes.get(), args.data(), envp)
            : ::posix_spawn(&pid, path.c_str(), actions.get(), attributes.get(), args.data(), envp);
    if (rc != 0) {
        throw std::system_error(rc, std::system_category(), std::string(what) + ": " + path);
    }

    // The child cannot be reaped by anyone but us before this (it is ours, and corio installs
    // no SIGCHLD handler), so the pid still names it.
    unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) {
        const int error = errno;
        ::kill(pid, SIGKILL);  // a child we could never wait for
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        throw_errno(error, "pidfd_open");
    }
    auto state = std::make_shared<child_state>(loop, pid, std::move(pidfd));
    if (in.parent_end) state->in.emplace(make_pipe_writer(std::move(in.parent_end)));
    if (out.parent_end) state->out.emplace(make_pipe_reader(std::move(out.parent_end)));
    if (err.parent_end) state->err.emplace(make_pipe_reader(std::move(err.parent_end)));
    return process(std::move(state));
}

}  // namespace detail

/// Starts `program` with `args` (without the program's name), no shell involved (asyncio's
/// `create_subprocess_exec`): `auto p = co_await corio::create_subprocess_exec("ls", args);`.
///
/// A `program` without a slash is looked up in the parent's PATH. The child is started at
/// once, during the call (on the running loop; `std::runtime_error` if there is none), and
/// `co_await` yields its `process` (so `options` need only live until the call returns). The
/// child gets an empty signal mask and none of the loop's descriptors (all of corio's are
/// close-on-exec). A program that cannot be run (missing, not executable, a bad `cwd`) is
/// `std::system_error` with the `errno` of the failed `exec` (`ENOENT`, `EACCES`...), thrown at
/// the `co_await`; a bad option, or a NUL in `program`, `args`, `env` or `cwd`, is
/// `std::invalid_argument`.
template <class = void>
[[nodiscard]] inline coro<process> create_subprocess_exec(std::string program,
                                                          std::vector<std::string> args = {},
                                                          subprocess_options options = {}) {
    try {
        args.insert(args.begin(), program);
        return detail::ready_process(
            detail::spawn(program, true, args, options, "create_subprocess_exec"));
    } catch (...) {
        return detail::failed_spawn(std::current_exception());
    }
}

/// Runs `command` through `/bin/sh -c` (asyncio's `create_subprocess_shell`), with the same
/// options as `create_subprocess_exec`, started at once too. Quoting what goes into `command` is
/// the caller's job; a command that is not found is the shell's business (`returncode()` 127).
template <class = void>
[[nodiscard]] inline coro<process> create_subprocess_shell(std::string command,
                                                           subprocess_options options = {}) {
    try {
        std::vector<std::string> args;
        args.reserve(3);
        args.emplace_back("/bin/sh");
        args.emplace_back("-c");
        args.push_back(std::move(command));
        return detail::ready_process(
            detail::spawn("/bin/sh", false, args, options, "create_subprocess_shell"));
    } catch (...) {
        return detail::failed_spawn(std::current_exception());
    }
}

}  // namespace corio
