#pragma once
/// \file
/// `detail::os_condition` and `detail::start_os_thread`: a condition variable and threads on
/// pthreads, for the runtime's own threads (the executor's workers, a child reaper). `<thread>`
/// and `<condition_variable>` would do the same and cost every program that includes the
/// network, files or subprocesses a tenth of their compile.

#include "corio/detail/os_mutex.hpp"

#include <exception>
#include <functional>
#include <system_error>
#include <utility>

#include <pthread.h>
#include <signal.h>

namespace corio::detail {

/// A condition variable waited on with an `os_mutex`.
class os_condition {
public:
    os_condition() noexcept = default;
    os_condition(const os_condition&) = delete;
    os_condition& operator=(const os_condition&) = delete;
    ~os_condition() { ::pthread_cond_destroy(&condition_); }

    /// Unlocks `mutex` (held by the caller), sleeps until notified (or woken spuriously), and
    /// locks it again.
    void wait(os_mutex& mutex) noexcept { (void)::pthread_cond_wait(&condition_, mutex.native()); }
    void notify_one() noexcept { (void)::pthread_cond_signal(&condition_); }
    void notify_all() noexcept { (void)::pthread_cond_broadcast(&condition_); }

private:
    pthread_cond_t condition_ = PTHREAD_COND_INITIALIZER;
};

/// Starts a thread running `body`, with every signal blocked, so that signals meant for the
/// loop (its signalfd) never land on it. An exception escaping `body` terminates the program,
/// as with `std::thread`. Returns the thread, to be joined with `join_os_thread`, or detached
/// when `detached`. Throws `std::system_error` when no thread can be had.
inline pthread_t start_os_thread(std::function<void()> body, bool detached = false) {
    // Owned by hand, not by a std::unique_ptr: this header is in every program of sockets.
    struct launch {
        static void* run(void* arg) noexcept {
            auto* owned = static_cast<std::function<void()>*>(arg);
            (*owned)();  // noexcept: an escaping exception terminates
            delete owned;
            return nullptr;
        }
    };
    auto* owned = new std::function<void()>(std::move(body));
    sigset_t all;
    sigset_t previous;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous);  // the new thread inherits the mask
    pthread_t thread{};
    const int error = ::pthread_create(&thread, nullptr, &launch::run, owned);
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (error != 0) {
        delete owned;
        throw std::system_error(error, std::system_category(), "pthread_create");
    }
    if (detached) (void)::pthread_detach(thread);
    return thread;
}

/// Waits for a thread of `start_os_thread` to end.
inline void join_os_thread(pthread_t thread) noexcept { (void)::pthread_join(thread, nullptr); }

}  // namespace corio::detail
