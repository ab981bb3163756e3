#pragma once
/// \file
/// The loop's executor (asyncio's default `ThreadPoolExecutor`): `run_in_executor`, `to_thread`.

#include "corio/detail/os_mutex.hpp"
#include "corio/detail/os_thread.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"

#include <algorithm>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <pthread.h>
#include <unistd.h>

namespace corio {

namespace detail {

/// A pool of worker threads, started as jobs arrive (up to `max_workers`) and joined by
/// `shutdown`, which first lets every queued job run (asyncio's `shutdown_default_executor`).
/// Workers block every signal, so that signals meant for the loop (signalfd) reach it.
class thread_pool final : public loop_service {
public:
    explicit thread_pool(std::size_t max_workers)
        : max_workers_(std::max<std::size_t>(1, max_workers)) {}
    ~thread_pool() override { shutdown(); }

    /// asyncio's default: min(32, cores + 4).
    [[nodiscard]] static std::size_t default_workers() noexcept {
        const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
        return std::min<std::size_t>(32, static_cast<std::size_t>(std::max(1L, cores)) + 4);
    }

    /// Queues `job`. Thread-safe; throws `std::runtime_error` after `shutdown`.
    void submit(std::function<void()> job) {
        {
            const os_mutex::guard hold(mutex_);
            if (stopping_) throw std::runtime_error("the executor is shut down");
            jobs_.push_back(std::move(job));
            // Each idle worker is promised one job: a burst of jobs starts new workers (up to
            // the maximum) rather than queueing behind a single idle one, as Python's pool does.
            if (idle_ <= promised_ && workers_.size() < max_workers_) {
                start_worker();
                return;
            }
            if (idle_ > promised_) ++promised_;
        }
        wake_.notify_one();
    }

    void shutdown() noexcept override {
        std::vector<pthread_t> workers;
        {
            const os_mutex::guard hold(mutex_);
            stopping_ = true;
            workers.swap(workers_);
        }
        wake_.notify_all();
        for (const pthread_t worker : workers) join_os_thread(worker);
    }

    [[nodiscard]] std::size_t workers() const {
        const os_mutex::guard hold(mutex_);
        return workers_.size();
    }

private:
    // Called with the mutex held.
    void start_worker() {
        try {
            workers_.reserve(workers_.size() + 1);  // so that a started worker is always kept
            workers_.push_back(start_os_thread([this] { work(); }));
        } catch (...) {
            if (!workers_.empty()) return;  // the running workers will take the job
            jobs_.pop_back();
            throw;
        }
    }

    void work() {
        mutex_.lock();
        for (;;) {
            if (jobs_.empty()) {
                if (stopping_) break;
                ++idle_;
                while (!stopping_ && jobs_.empty()) wake_.wait(mutex_);
                --idle_;
                continue;
            }
            std::function<void()> job = std::move(jobs_.front());
            jobs_.pop_front();
            if (promised_ > 0) --promised_;  // whoever takes it, that job's promise is kept
            mutex_.unlock();
            job();  // never throws: jobs catch what they run
            job = nullptr;
            mutex_.lock();
        }
        mutex_.unlock();
    }

    const std::size_t max_workers_;
    mutable os_mutex mutex_;
    os_condition wake_;
    std::deque<std::function<void()>> jobs_;
    std::vector<pthread_t> workers_;
    std::size_t idle_ = 0;
    std::size_t promised_ = 0;  // queued jobs counted on an idle worker (at most idle_)
    bool stopping_ = false;
};

[[nodiscard]] inline thread_pool& executor_of(event_loop& loop) {
    auto& slot = loop_access::service(loop, service_slot::executor);
    if (!slot) {
        if (loop_access::closed(loop)) throw std::runtime_error("Event loop is closed");
        slot = make_owned<thread_pool>(thread_pool::default_workers());
    }
    return static_cast<thread_pool&>(*slot);
}

/// One `run_in_executor` call. Its `future` handle is only ever touched on the loop's thread:
/// the job is created there, its last owner (the callback posted back with
/// `call_soon_threadsafe`, run or discarded by the loop) is destroyed there too.
template <class F, class R>
struct executor_job {
    executor_job(event_loop& loop, future<R> result, F fn)
        : loop(&loop), result(std::move(result)), fn(std::move(fn)) {}

    void run() noexcept {
        try {
            if constexpr (std::is_void_v<R>) {
                fn();
                value.emplace();
            } else {
                value.emplace(fn());
            }
        } catch (...) {
            error = std::current_exception();
        }
    }

    // On the loop's thread.
    void deliver() {
        if (result.done()) return;  // cancelled meanwhile
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const cancelled_error& cancelled) {
                // A future cannot hold a cancelled_error: it is cancelled instead, so that the
                // awaiting task sees cancelled_error, as asyncio's sees CancelledError.
                result.cancel(cancelled.what());
                return;
            } catch (...) {
            }
            result.set_exception(error);
        } else if constexpr (std::is_void_v<R>) {
            result.set_result();
        } else {
            result.set_result(std::move(*value));
        }
    }

    event_loop* loop;
    future<R> result;
    F fn;
    std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> value;
    std::exception_ptr error;
};

}  // namespace detail

template <class F>
future<std::invoke_result_t<std::decay_t<F>&>> event_loop::run_in_executor(F&& fn) {
    using result_type = std::invoke_result_t<std::decay_t<F>&>;
    using job_type = detail::executor_job<std::decay_t<F>, result_type>;
    detail::thread_pool& pool = detail::executor_of(*this);
    future<result_type> result = create_future<result_type>();
    auto job = std::make_shared<job_type>(*this, result, std::forward<F>(fn));
    detail::loop_access::add_executor_job(*this, +1);
    try {
        pool.submit([job]() mutable {
            job->run();
            // The worker gives its reference away, so that the job dies on the loop's thread.
            event_loop& loop = *job->loop;
            loop.call_soon_threadsafe([job = std::move(job)] {
                detail::loop_access::add_executor_job(*job->loop, -1);
                job->deliver();
            });
        });
    } catch (...) {
        detail::loop_access::add_executor_job(*this, -1);
        throw;
    }
    return result;
}

/// Runs `fn(args...)` on a worker thread of the running loop's executor and waits for it
/// (asyncio's `to_thread`): `co_await corio::to_thread(parse, text)`. The arguments are
/// copied (or moved) to the worker and passed on as rvalues (`std::ref` for a reference);
/// results and exceptions come back to the awaiting task.
template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
[[nodiscard]] auto to_thread(F&& fn, Args&&... args) {
    return get_running_loop().run_in_executor(
        [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable {
            // Called once: the arguments are handed over, so move-only ones work.
            return std::invoke(std::move(fn), std::move(args)...);
        });
}

}  // namespace corio
