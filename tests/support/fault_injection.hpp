// Fault injection through the reactor concept: `faulty_reactor<R>` wraps either backend and, by
// a seeded schedule, does to the loop what a kernel may do to it.
//
// - `fault_mode::transparent`: what a correct program never notices. Reads and writes cut
//   short, `EINTR` and `EAGAIN` instead of a result, completions held back a poll (so that
//   they arrive out of order), cancellations held back a poll (so that the operation often
//   completes first: the race of completion and cancellation, both ways). The stream, server,
//   datagram, subprocess and file tests run unchanged under it (CORIO_FAULT_SEED, below).
// - `fault_mode::hostile`: on top, hard errors in place of the operation (`ENOMEM`, `ENOBUFS`,
//   `ECONNRESET`, `EPIPE`, `EIO`) and submissions refused with `std::system_error`. A program sees
//   these as exceptions; tests/reliability/faults_test.cpp checks that they are clear ones and
//   that nothing hangs, leaks or loses a byte.
//
// An operation that gets an injected result never reaches the kernel, so no byte is consumed or
// produced behind the program's back. The schedule is a function of the seed and the sequence
// of operations, so that a failing seed replays (as far as real I/O timing repeats itself).
//
// CORIO_FAULT_SEED=<n> in the environment puts every loop `new_event_loop` (and `run`) makes
// in the test executable on a transparent `faulty_reactor`, each loop with its own seed
// derived from n and the loop's ordinal; the seed is printed first, statistics at exit.
#pragma once

#include <corio/event_loop.hpp>
#include <corio/reactor/epoll.hpp>
#include <corio/reactor/reactor.hpp>
#include <corio/reactor/uring.hpp>
#include <corio/run.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace corio_test {

enum class fault_mode { transparent, hostile };

/// What was injected, over every faulty reactor of the process.
struct fault_stats {
    std::atomic<std::uint64_t> operations{0};
    std::atomic<std::uint64_t> short_transfers{0};
    std::atomic<std::uint64_t> interrupted{0};  // EINTR
    std::atomic<std::uint64_t> would_block{0};  // EAGAIN
    std::atomic<std::uint64_t> delayed_completions{0};
    std::atomic<std::uint64_t> delayed_cancels{0};
    std::atomic<std::uint64_t> cancels_lost{0};  // an injected result won over a cancellation
    std::atomic<std::uint64_t> hard_errors{0};
    std::atomic<std::uint64_t> refused_submissions{0};

    [[nodiscard]] std::uint64_t injected() const noexcept {
        return short_transfers + interrupted + would_block + delayed_completions + delayed_cancels +
               cancels_lost + hard_errors + refused_submissions;
    }

    void print(std::FILE* out, const char* title) const {
        std::fprintf(out,
                     "%s: %llu operations, %llu faults injected (short %llu, EINTR %llu, "
                     "EAGAIN %llu, late completions %llu, late cancels %llu, cancels lost %llu, "
                     "hard errors %llu, refused submissions %llu)\n",
                     title, static_cast<unsigned long long>(operations.load()),
                     static_cast<unsigned long long>(injected()),
                     static_cast<unsigned long long>(short_transfers.load()),
                     static_cast<unsigned long long>(interrupted.load()),
                     static_cast<unsigned long long>(would_block.load()),
                     static_cast<unsigned long long>(delayed_completions.load()),
                     static_cast<unsigned long long>(delayed_cancels.load()),
                     static_cast<unsigned long long>(cancels_lost.load()),
                     static_cast<unsigned long long>(hard_errors.load()),
                     static_cast<unsigned long long>(refused_submissions.load()));
    }
};

inline fault_stats& process_fault_stats() {
    static fault_stats stats;
    return stats;
}

/// A reactor that forwards to `R` and injects faults on the way (see the top of this file).
/// Not a backend of its own: `name()` is `R`'s, so that a test asking for a backend gets it.
template <corio::reactor R>
class faulty_reactor {
public:
    template <class... Args>
    explicit faulty_reactor(std::uint64_t seed, fault_mode mode, Args&&... args)
        : inner_(std::forward<Args>(args)...), random_(seed), mode_(mode) {}

    faulty_reactor(const faulty_reactor&) = delete;
    faulty_reactor& operator=(const faulty_reactor&) = delete;

    static std::string_view name() noexcept { return R::name(); }

    bool submit(corio::io_operation& op) {
        ++stats().operations;
        if (mode_ == fault_mode::hostile && chance(1, 100)) {
            ++stats().refused_submissions;
            throw std::system_error(ENOMEM, std::generic_category(), "submit (injected)");
        }
        if (std::optional<int> error = injected_error(op)) {
            // In place of the operation: the kernel never sees it.
            if (chance(1, 2)) {
                op.result_ = *error;
                return true;
            }
            records_[&op] = record{op.complete_, op.length, where::injected};
            injected_.push_back({&op, *error});
            return false;
        }
        const std::size_t length = op.length;
        if (is_transfer(op) && op.length > 1 && chance(1, 5)) {
            ++stats().short_transfers;
            op.length = 1 + static_cast<std::size_t>(random_() % (op.length - 1));
        }
        const corio::io_operation::complete_fn complete = op.complete_;
        op.complete_ = &on_inner_complete;
        records_[&op] = record{complete, length, where::inner};
        bool at_once = false;
        try {
            at_once = inner_.submit(op);
        } catch (...) {
            restore(op);
            throw;
        }
        if (at_once) restore(op);
        return at_once;
    }

    void cancel(corio::io_operation& op) noexcept {
        auto it = records_.find(&op);
        if (it == records_.end()) return;
        switch (it->second.at) {
        case where::inner:
            if (chance(1, 2)) {
                // Later: the operation has a poll's time to complete first.
                ++stats().delayed_cancels;
                late_cancels_.push_back(&op);
            } else {
                cancel_inner(op);
            }
            break;
        case where::injected:
            // Either outcome is one the kernel could give: the withdrawal, or the result
            // (the injected error) that got there first.
            for (auto& pending : injected_) {
                if (pending.op != &op) continue;
                if (chance(1, 2)) {
                    pending.result = -ECANCELED;
                } else {
                    ++stats().cancels_lost;
                }
            }
            break;
        case where::held: break;  // completed in the kernel: the result wins
        }
    }

    void cancel_all() noexcept {
        late_cancels_.clear();
        with_current([&] { inner_.cancel_all(); });
        for (auto& pending : injected_) pending.result = -ECANCELED;
    }

    [[nodiscard]] bool idle() const noexcept {
        return inner_.idle() && injected_.empty() && held_.empty();
    }
    [[nodiscard]] std::size_t in_flight_count() const noexcept {
        return inner_.in_flight_count() + injected_.size() + held_.size();
    }
    void forget(int fd) noexcept { inner_.forget(fd); }
    void wake() noexcept { inner_.wake(); }

    std::size_t poll(std::optional<std::chrono::nanoseconds> timeout) {
        for (corio::io_operation* op : std::exchange(late_cancels_, {})) {
            auto it = records_.find(op);
            if (it != records_.end() && it->second.at == where::inner) cancel_inner(*op);
        }
        // What was injected or held back before this poll is delivered by it; what the inner
        // reactor completes now may be held back to the next.
        std::vector<pending_result> due = std::exchange(injected_, {});
        for (auto& held : std::exchange(held_, {})) due.push_back(held);
        if (!due.empty()) timeout = std::chrono::nanoseconds{0};
        std::size_t delivered = 0;
        with_current([&] { delivered = inner_.poll(timeout); });
        for (const pending_result& pending : due) {
            deliver(*pending.op, pending.result);
            ++delivered;
        }
        return delivered;
    }

    [[nodiscard]] R& inner() noexcept { return inner_; }

private:
    enum class where : std::uint8_t { inner, injected, held };
    struct record {
        corio::io_operation::complete_fn complete;
        std::size_t length;
        where at;
    };
    struct pending_result {
        corio::io_operation* op;
        int result;
    };

    static fault_stats& stats() { return process_fault_stats(); }

    static bool is_transfer(const corio::io_operation& op) noexcept {
        switch (op.opcode) {
        case corio::io_opcode::read:
        case corio::io_opcode::write:
        case corio::io_opcode::recv:
        case corio::io_opcode::send: return true;
        default: return false;
        }
    }

    bool chance(unsigned in, unsigned of) { return random_() % of < in; }

    // An error to complete `op` with instead of running it, or none.
    std::optional<int> injected_error(const corio::io_operation& op) {
        using corio::io_opcode;
        // Errors that mean "try again": a correct caller retries (EINTR) or waits for
        // readiness and retries (EAGAIN). Never for fsync and connect, where they mean else.
        const bool retriable = op.opcode != io_opcode::fsync && op.opcode != io_opcode::connect &&
                               op.opcode != io_opcode::poll;
        if (retriable && chance(1, 20)) {
            ++stats().interrupted;
            return -EINTR;
        }
        // EAGAIN from a descriptor that polls (a socket, a pipe), not from a regular file.
        if (retriable && op.offset == corio::io_operation::no_offset && chance(1, 20)) {
            ++stats().would_block;
            return -EAGAIN;
        }
        if (mode_ != fault_mode::hostile || !chance(1, 25)) return std::nullopt;
        ++stats().hard_errors;
        switch (op.opcode) {
        case io_opcode::recv:
        case io_opcode::recvmsg: return chance(1, 2) ? -ECONNRESET : -ENOMEM;
        case io_opcode::send:
        case io_opcode::sendmsg: return chance(1, 2) ? -EPIPE : -ENOBUFS;
        // Not EPIPE for a write: on a pipe it means "the reader is gone", which a feeder such
        // as `communicate` rightly takes as the end of its job, not as an error.
        case io_opcode::write: return chance(1, 2) ? -EIO : -ENOMEM;
        default: return chance(1, 2) ? -ENOMEM : -ENOBUFS;
        }
    }

    void cancel_inner(corio::io_operation& op) noexcept {
        with_current([&] { inner_.cancel(op); });
    }

    // The inner reactor calls completions only from its poll (and, defensively, cancel):
    // `current_` tells the trampoline whose operation it is.
    template <class F>
    void with_current(F&& f) {
        faulty_reactor* previous = std::exchange(current_, this);
        try {
            f();
        } catch (...) {
            current_ = previous;
            throw;
        }
        current_ = previous;
    }

    static void on_inner_complete(corio::io_operation* op, int result) noexcept {
        faulty_reactor* self = current_;
        if (self == nullptr) std::abort();  // a completion outside poll breaks the contract
        auto it = self->records_.find(op);
        if (it == self->records_.end()) std::abort();
        if (self->chance(1, 5)) {
            ++stats().delayed_completions;
            it->second.at = where::held;
            self->held_.push_back({op, result});
            return;
        }
        self->deliver(*op, result);
    }

    void restore(corio::io_operation& op) noexcept {
        auto it = records_.find(&op);
        op.complete_ = it->second.complete;
        op.length = it->second.length;
        records_.erase(it);
    }

    void deliver(corio::io_operation& op, int result) noexcept {
        const corio::io_operation::complete_fn complete = records_.find(&op)->second.complete;
        restore(op);
        op.result_ = result;
        complete(&op, result);
    }

    static inline thread_local faulty_reactor* current_ = nullptr;

    R inner_;
    std::mt19937_64 random_;
    fault_mode mode_;
    std::unordered_map<corio::io_operation*, record> records_;
    std::vector<pending_result> injected_;
    std::vector<pending_result> held_;
    std::vector<corio::io_operation*> late_cancels_;
};

/// A loop on `faulty_reactor<epoll_reactor>` or, with io_uring, `faulty_reactor<uring_reactor>`.
inline std::unique_ptr<corio::event_loop> new_faulty_loop(bool uring, std::uint64_t seed,
                                                          fault_mode mode) {
#if defined(CORIO_HAS_URING)
    if (uring) {
        return std::make_unique<corio::basic_event_loop<faulty_reactor<corio::uring_reactor>>>(
            seed, mode);
    }
#else
    if (uring) {
        throw std::system_error(ENOTSUP, std::generic_category(), "built without io_uring");
    }
#endif
    return std::make_unique<corio::basic_event_loop<faulty_reactor<corio::epoll_reactor>>>(seed,
                                                                                           mode);
}

/// The seed of the `ordinal`-th loop of a run with base seed `base` (splitmix64).
constexpr std::uint64_t derived_seed(std::uint64_t base, std::uint64_t ordinal) noexcept {
    std::uint64_t z = base + 0x9e3779b97f4a7c15ULL * (ordinal + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

namespace fault_detail {

inline std::uint64_t base_seed = 0;
inline std::atomic<std::uint64_t> loops_made{0};

inline std::unique_ptr<corio::event_loop> make_loop(corio::backend requested) {
    const std::uint64_t seed = derived_seed(base_seed, loops_made++);
    if (requested == corio::backend::epoll) {
        return new_faulty_loop(false, seed, fault_mode::transparent);
    }
    if (requested == corio::backend::io_uring || corio::config::has_uring) {
        try {
            return new_faulty_loop(true, seed, fault_mode::transparent);
        } catch (const std::system_error&) {
            if (requested == corio::backend::io_uring) throw;
        }
    }
    return new_faulty_loop(false, seed, fault_mode::transparent);
}

inline bool install_from_environment() {
    const char* value = std::getenv("CORIO_FAULT_SEED");
    if (value == nullptr || *value == '\0') return false;
    base_seed = std::strtoull(value, nullptr, 0);
    std::fprintf(stderr,
                 "corio_test: faults injected into every loop, CORIO_FAULT_SEED=%llu "
                 "(the same value replays them)\n",
                 static_cast<unsigned long long>(base_seed));
    corio::set_loop_factory(&make_loop);
    std::atexit([] {
        char title[96];
        std::snprintf(title, sizeof title, "corio_test: CORIO_FAULT_SEED=%llu, %llu loops",
                      static_cast<unsigned long long>(base_seed),
                      static_cast<unsigned long long>(loops_made.load()));
        process_fault_stats().print(stderr, title);
    });
    return true;
}

}  // namespace fault_detail

/// Installed before main(), in every test executable that includes this header.
inline const bool faults_from_environment = fault_detail::install_from_environment();

}  // namespace corio_test
