#pragma once
/// \file
/// Unix signals on the loop: `event_loop::add_signal_handler` / `remove_signal_handler`
/// (asyncio's, through a signalfd), and the Ctrl-C handling of `corio::run`.
///
/// How a handled signal reaches the loop: the loop's thread blocks it, and the loop's signalfd
/// (one per loop, its mask updated as handlers come and go) becomes readable when it is
/// pending; the loop reads it and calls the handler like any other callback. While a signal is
/// handled, its process-wide disposition is a tiny forwarding handler: a thread that does not
/// block the signal (a thread the program started itself) passes it on to the loop's thread
/// with `tgkill`, so the signal is neither lost, nor ignored, nor fatal. Removing the handler
/// (or closing the loop) restores the thread's mask and the disposition found before.

#include "corio/detail/fd.hpp"
#include "corio/detail/os_mutex.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/detail/unique_fd.hpp"
#include "corio/event_loop.hpp"
#include "corio/task.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace corio {

namespace detail {

[[nodiscard]] inline int current_thread_id() noexcept {
    return static_cast<int>(::syscall(SYS_gettid));
}

[[nodiscard]] inline bool in_main_thread() noexcept { return current_thread_id() == ::getpid(); }

/// Whether `signo` is a signal a handler may be installed for: 1 to 64, except SIGKILL and
/// SIGSTOP (which cannot be caught) and the real-time signals glibc keeps for itself
/// (32 and 33: thread cancellation, setxid).
[[nodiscard]] inline bool catchable_signal(int signo) noexcept {
    if (signo <= 0 || signo >= NSIG) return false;
    if (signo == SIGKILL || signo == SIGSTOP) return false;
    return signo < 32 || signo >= SIGRTMIN;
}

/// Per signal: the thread of the loop that handles it, where the forwarding handler sends it.
inline constinit std::atomic<int> signal_targets[NSIG]{};

/// The disposition of every handled signal. Runs in whichever thread the kernel picked: one
/// that does not block the signal, so never the loop's own (which blocks it); passes the
/// signal on to the loop's thread, where it stays pending until the signalfd reads it.
inline void forward_signal(int signo) noexcept {
    const int saved_errno = errno;
    const int target = signal_targets[signo].load(std::memory_order_relaxed);
    if (target > 0 && target != current_thread_id()) {
        ::syscall(SYS_tgkill, ::getpid(), target, signo);
    }
    errno = saved_errno;
}

/// The process-wide side of signal handling: which loops' threads handle each signal, and the
/// disposition to restore when the last of them stops.
class signal_registry {
public:
    static signal_registry& instance() {
        static signal_registry registry;
        return registry;
    }

    /// The thread `thread` starts handling `signo`: the first one installs the forwarder.
    void enter(int signo, int thread) {
        os_mutex::guard guard(mutex_);
        entry& e = entries_[signo];
        e.threads.push_back(thread);  // the one step that may throw: first
        if (e.threads.size() == 1) {
            struct sigaction action{};
            action.sa_handler = &forward_signal;
            ::sigfillset(&action.sa_mask);
            action.sa_flags = SA_RESTART;
            ::sigaction(signo, &action, &e.original);
        }
        signal_targets[signo].store(thread, std::memory_order_relaxed);
    }

    /// The thread `thread` (which blocks `signo`) stops handling it: the last one discards
    /// what is still pending and restores the original disposition. Returns false while
    /// other loops still handle `signo`.
    bool leave(int signo, int thread) noexcept {
        os_mutex::guard guard(mutex_);
        entry& e = entries_[signo];
        for (auto it = e.threads.begin(); it != e.threads.end(); ++it) {
            if (*it == thread) {
                e.threads.erase(it);
                break;
            }
        }
        if (!e.threads.empty()) {
            signal_targets[signo].store(e.threads.back(), std::memory_order_relaxed);
            return false;
        }
        signal_targets[signo].store(0, std::memory_order_relaxed);
        // A signal that arrived after the loop's last read belongs to the handler being
        // removed (asyncio drops it too); left pending, it would hit the old disposition.
        sigset_t only;
        ::sigemptyset(&only);
        ::sigaddset(&only, signo);
        const timespec now{0, 0};
        while (::sigtimedwait(&only, nullptr, &now) == signo) {
        }
        ::sigaction(signo, &e.original, nullptr);
        return true;
    }

private:
    struct entry {
        std::vector<int> threads;  // the latest last: the forwarding target
        struct sigaction original{};
    };

    signal_registry() = default;

    os_mutex mutex_;
    entry entries_[NSIG];
};

/// The signal handlers of one loop: a loop service owning the loop's signalfd.
class signal_service final : public loop_service {
public:
    explicit signal_service(event_loop& loop) noexcept : loop_(loop) { ::sigemptyset(&mask_); }
    ~signal_service() override { shutdown(); }

    /// `wakes_tasks`: whether the handler counts as something that may wake a task, for
    /// deadlock detection (a user's handler does; corio's own task dump does not).
    void add(int signo, std::function<void()> fn, bool wakes_tasks = true) {
        auto callback = std::make_shared<std::function<void()>>(std::move(fn));
        if (handler* h = find(signo)) {
            h->callback = std::move(callback);
            if (h->wakes_tasks != wakes_tasks) {
                loop_access::add_outside_work(loop_, wakes_tasks ? +1 : -1);
                h->wakes_tasks = wakes_tasks;
            }
            return;
        }
        handler& h = handlers_[signo];
        h = handler{std::move(callback), false, wakes_tasks};
        ++count_;
        sigset_t mask = mask_;
        ::sigaddset(&mask, signo);
        try {
            update_descriptor(mask);
            signal_registry::instance().enter(signo, thread_);
        } catch (...) {
            h = handler{};
            if (--count_ == 0) {
                close_descriptor();
            } else {
                (void)::signalfd(fd_.get(), &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
            }
            throw;
        }
        // Blocked in the loop's thread, the signal stays pending for the signalfd.
        sigset_t previous;
        sigset_t only;
        ::sigemptyset(&only);
        ::sigaddset(&only, signo);
        ::pthread_sigmask(SIG_BLOCK, &only, &previous);
        h.was_blocked = ::sigismember(&previous, signo) == 1;
        mask_ = mask;
        if (wakes_tasks) loop_access::add_outside_work(loop_, +1);
    }

    bool remove(int signo) noexcept {
        handler* h = find(signo);
        if (h == nullptr) return false;
        const bool was_blocked = h->was_blocked;
        const bool wakes_tasks = h->wakes_tasks;
        *h = handler{};
        ::sigdelset(&mask_, signo);
        if (--count_ == 0) {
            close_descriptor();
        } else {
            // Narrowing the mask of an existing signalfd cannot fail for a valid one.
            (void)::signalfd(fd_.get(), &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
        }
        signal_registry::instance().leave(signo, thread_);
        if (!was_blocked) {
            sigset_t only;
            ::sigemptyset(&only);
            ::sigaddset(&only, signo);
            ::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
        }
        if (wakes_tasks) loop_access::add_outside_work(loop_, -1);
        return true;
    }

    [[nodiscard]] bool installed(int signo) const noexcept {
        return signo > 0 && signo < NSIG && handlers_[signo].callback != nullptr;
    }

    void shutdown() noexcept override {
        for (int signo = 1; signo < NSIG && count_ > 0; ++signo) remove(signo);
    }

private:
    struct handler {
        // Shared, so that a handler that replaces or removes itself keeps running. Empty: no
        // handler for this signal.
        std::shared_ptr<std::function<void()>> callback;
        bool was_blocked = false;
        bool wakes_tasks = false;
    };

    [[nodiscard]] handler* find(int signo) noexcept {
        if (signo <= 0 || signo >= NSIG) return nullptr;
        handler& h = handlers_[signo];
        return h.callback != nullptr ? &h : nullptr;
    }

    void update_descriptor(const sigset_t& mask) {
        if (fd_) {
            if (::signalfd(fd_.get(), &mask, SFD_NONBLOCK | SFD_CLOEXEC) < 0) {
                throw_errno(errno, "signalfd");
            }
            return;
        }
        unique_fd fd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
        if (!fd) throw_errno(errno, "signalfd");
        // A background watch: the handlers, not the descriptor, are what may wake tasks.
        loop_access::add_background_reader(loop_, fd.get(), [this] { dispatch(); });
        fd_ = std::move(fd);
        thread_ = current_thread_id();
    }

    void close_descriptor() noexcept {
        if (!fd_) return;
        loop_.remove_reader(fd_.get());
        fd_.reset();
    }

    // The signalfd is readable: calls the handler of each signal read, on the loop.
    void dispatch() {
        signalfd_siginfo infos[16];
        for (;;) {
            const int fd = fd_.get();
            if (fd < 0) return;  // a handler removed the last handler
            const ssize_t n = ::read(fd, infos, sizeof infos);
            if (n <= 0) return;  // EAGAIN: all read
            const auto count = static_cast<std::size_t>(n) / sizeof(signalfd_siginfo);
            for (std::size_t i = 0; i < count; ++i) {
                const handler* h = find(static_cast<int>(infos[i].ssi_signo));
                if (h == nullptr) continue;  // removed by an earlier handler
                const std::shared_ptr<std::function<void()>> callback = h->callback;
                try {
                    (*callback)();
                } catch (...) {
                    loop_.call_exception_handler(exception_context{
                        "Exception in signal handler", std::current_exception(), {}});
                }
            }
            if (count < std::size(infos)) return;
        }
    }

    event_loop& loop_;
    unique_fd fd_;
    sigset_t mask_;
    int thread_ = 0;          // the loop's thread, which blocks the handled signals
    handler handlers_[NSIG];  // by signal number
    int count_ = 0;           // of installed handlers
};

[[nodiscard]] inline signal_service* find_signal_service(event_loop& loop) noexcept {
    return static_cast<signal_service*>(loop_access::service(loop, service_slot::signals).get());
}

/// `add_signal_handler` for corio's own handlers that never wake a task (the task dump), so
/// that they do not hide a deadlock. A later `add_signal_handler` of the same signal replaces it
/// and counts again.
inline void add_quiet_signal_handler(event_loop& loop, int signo, std::function<void()> fn);

/// Whether `loop` has a handler for `signo` (installed with `add_signal_handler`).
[[nodiscard]] inline bool signal_handler_installed(event_loop& loop, int signo) noexcept {
    signal_service* service = find_signal_service(loop);
    return service != nullptr && service->installed(signo);
}

}  // namespace detail

/// Calls `fn()` on the loop each time the process receives `signo` (asyncio's
/// `add_signal_handler`); replaces an earlier handler of `signo` on this loop.
///
/// `fn` runs as a callback of the loop, never in signal context, so it may do anything a
/// callback may (create tasks, cancel them, stop the loop); an exception escaping it goes to
/// the loop's exception handler. Signals of one kind that arrive before the loop reads them
/// are merged, as the kernel merges pending signals. While the handler is installed the
/// signal is blocked in the loop's thread (children spawned by corio get an empty mask).
/// Unlike asyncio, any thread's loop may handle signals; a signal sent to the process goes to
/// one of the loops that handle it.
/// Throws `std::invalid_argument` for SIGKILL, SIGSTOP, glibc's reserved real-time signals
/// and numbers out of range; `std::runtime_error` when the loop is closed.
inline void event_loop::add_signal_handler(int signo, std::function<void()> fn) {
    if (!detail::catchable_signal(signo)) {
        throw std::invalid_argument("add_signal_handler: signal " + std::to_string(signo) +
                                    " cannot be handled");
    }
    if (!fn) throw std::invalid_argument("add_signal_handler: empty function");
    if (closed_) throw std::runtime_error("Event loop is closed");
    detail::loop_access::check_thread(*this, "add_signal_handler");
    auto& slot = detail::loop_access::service(*this, detail::service_slot::signals);
    if (!slot) slot = detail::make_owned<detail::signal_service>(*this);
    static_cast<detail::signal_service&>(*slot).add(signo, std::move(fn));
}

/// Removes the handler of `signo` (asyncio's `remove_signal_handler`): the signal's
/// disposition and the loop thread's mask are what they were before, and an instance of the
/// signal still pending for the loop is dropped. False if no handler was installed.
/// Throws `std::invalid_argument` for numbers out of range.
inline bool event_loop::remove_signal_handler(int signo) {
    if (signo <= 0 || signo >= NSIG) {
        throw std::invalid_argument("remove_signal_handler: invalid signal " +
                                    std::to_string(signo));
    }
    detail::signal_service* service = detail::find_signal_service(*this);
    return service != nullptr && service->remove(signo);
}

namespace detail {

inline void add_quiet_signal_handler(event_loop& loop, int signo, std::function<void()> fn) {
    if (!catchable_signal(signo)) {
        throw std::invalid_argument("signal " + std::to_string(signo) + " cannot be handled");
    }
    if (loop_access::closed(loop)) throw std::runtime_error("Event loop is closed");
    auto& slot = loop_access::service(loop, service_slot::signals);
    if (!slot) slot = make_owned<signal_service>(loop);
    static_cast<signal_service&>(*slot).add(signo, std::move(fn), false);
}

// The Ctrl-C handling of `corio::run` (asyncio.Runner's `_on_sigint`). A real signal handler,
// not the signalfd: a second Ctrl-C must work even when the loop is stuck in a callback, and
// SIGINT must not stay blocked for processes spawned by other means than corio.
inline constinit std::atomic<int> sigint_wake_fd{-1};
inline constinit std::atomic<unsigned> sigint_count{0};

// Makes the process do what it would have done without corio: die of SIGINT.
inline void die_of_sigint() noexcept {
    struct sigaction action{};
    action.sa_handler = SIG_DFL;
    ::sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    // Delivered (and fatal) as soon as the running handler returns.
    ::raise(SIGINT);
}

inline void on_sigint(int) noexcept {
    const int saved_errno = errno;
    const int fd = sigint_wake_fd.load(std::memory_order_relaxed);
    if (fd >= 0 && sigint_count.fetch_add(1, std::memory_order_relaxed) == 0) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto written = ::write(fd, &one, sizeof one);
    } else {
        // The second Ctrl-C, or one after `run` (our handler came back from a signal handler
        // of the loop's that was restored late).
        die_of_sigint();
    }
    errno = saved_errno;
}

/// While alive, SIGINT cancels the main task of `corio::run` (made by
/// `cancel_main_on_sigint`); a second SIGINT kills the process as SIGINT's default does.
class sigint_guard {
public:
    sigint_guard(event_loop& loop, std::function<void()> on_interrupt_action)
        : loop_(&loop), on_interrupt_(std::move(on_interrupt_action)) {
        unique_fd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!fd) throw_errno(errno, "eventfd");
        loop_access::add_background_reader(loop, fd.get(), [this] { on_interrupt(); });
        fd_ = std::move(fd);
        sigint_count.store(0, std::memory_order_relaxed);
        sigint_wake_fd.store(fd_.get(), std::memory_order_relaxed);
        struct sigaction action{};
        action.sa_handler = &on_sigint;
        ::sigemptyset(&action.sa_mask);
        action.sa_flags = SA_RESTART;
        ::sigaction(SIGINT, &action, &previous_);
        // Ours, left behind by an earlier `run` (see `cancel_main_on_sigint`): the default.
        if ((previous_.sa_flags & SA_SIGINFO) == 0 && previous_.sa_handler == &on_sigint) {
            previous_.sa_handler = SIG_DFL;
        }
    }
    sigint_guard(const sigint_guard&) = delete;
    sigint_guard& operator=(const sigint_guard&) = delete;
    ~sigint_guard() {
        // Restored only if still ours, as asyncio does: a handler installed meanwhile stays.
        struct sigaction current{};
        ::sigaction(SIGINT, nullptr, &current);
        if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == &on_sigint) {
            ::sigaction(SIGINT, &previous_, nullptr);
        }
        sigint_wake_fd.store(-1, std::memory_order_relaxed);
        if (!loop_access::closed(*loop_)) loop_->remove_reader(fd_.get());
    }

private:
    void on_interrupt() {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto n = ::read(fd_.get(), &count, sizeof count);
        on_interrupt_();
    }

    event_loop* loop_;
    std::function<void()> on_interrupt_;
    unique_fd fd_;
    struct sigaction previous_{};
};

/// asyncio.Runner's condition for taking over Ctrl-C: in the process's main thread, while
/// SIGINT does what it does by default and the loop has no handler of its own for it.
/// Returns a guard making SIGINT call `on_interrupt` on the loop while it lives, or nothing.
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
[[nodiscard]] owned_ptr<sigint_guard> interrupt_on_sigint(event_loop& loop,
                                                          std::function<void()> on_interrupt) {
    if (!in_main_thread() || signal_handler_installed(loop, SIGINT)) return nullptr;
    struct sigaction current{};
    if (::sigaction(SIGINT, nullptr, &current) != 0) return nullptr;
    if (sigint_wake_fd.load(std::memory_order_relaxed) >= 0) return nullptr;  // taken
    // Our own handler, idle, counts as the default: a signal handler of the loop's that was
    // still installed when an earlier `run` returned restored it late (it dies of SIGINT).
    const bool at_default = (current.sa_flags & SA_SIGINFO) == 0 &&
                            (current.sa_handler == SIG_DFL || current.sa_handler == &on_sigint);
    if (!at_default) return nullptr;
    return make_owned<sigint_guard>(loop, std::move(on_interrupt));
}

/// Makes SIGINT cancel `main` while `run` runs it (see `interrupt_on_sigint`).
template <class T>
[[nodiscard]] owned_ptr<sigint_guard> cancel_main_on_sigint(event_loop& loop, const task<T>& main) {
    // The task is alive while the loop runs it (`run` holds a handle).
    task_state_base* state = handle_access::state(main);
    return interrupt_on_sigint(loop, [state] {
        if (!state->done()) state->cancel("SIGINT");
    });
}

}  // namespace detail

}  // namespace corio
