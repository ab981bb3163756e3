#pragma once
/// \file
/// `detail::os_mutex`: a plain pthread mutex, for the few locks of the runtime's core (the
/// loop's inbox of other threads' callbacks, the process-wide signal registry). `<mutex>`
/// would do the same and cost every user's compile of `<corio/core.hpp>` a tenth of it.

#include <pthread.h>

namespace corio::detail {

/// A mutex (BasicLockable, so `std::lock_guard` works where `<mutex>` is included anyway).
class os_mutex {
public:
    os_mutex() noexcept = default;
    os_mutex(const os_mutex&) = delete;
    os_mutex& operator=(const os_mutex&) = delete;
    ~os_mutex() { ::pthread_mutex_destroy(&mutex_); }

    // A default mutex fails only on misuse (EDEADLK is not reported for it), as std::mutex.
    void lock() noexcept { (void)::pthread_mutex_lock(&mutex_); }
    void unlock() noexcept { (void)::pthread_mutex_unlock(&mutex_); }
    /// For `os_condition`.
    [[nodiscard]] pthread_mutex_t* native() noexcept { return &mutex_; }

    /// Holds the mutex for its lifetime.
    class guard {
    public:
        explicit guard(os_mutex& mutex) noexcept : mutex_(mutex) { mutex_.lock(); }
        guard(const guard&) = delete;
        guard& operator=(const guard&) = delete;
        ~guard() { mutex_.unlock(); }

    private:
        os_mutex& mutex_;
    };

private:
    pthread_mutex_t mutex_ = PTHREAD_MUTEX_INITIALIZER;
};

}  // namespace corio::detail
