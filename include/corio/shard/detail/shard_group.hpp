#pragma once
/// \file
/// The shards of one `run_sharded` call: `shard_context`, the port each shard's loop sends and
/// receives mail through, and `shard_group`, which holds every shard's queues and doorbell and
/// sees the shards through their start, their mains and their shutdown.

#include "corio/detail/os_mutex.hpp"
#include "corio/detail/os_thread.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/detail/text.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/impl/loop_access.hpp"
#include "corio/impl/shard_port.hpp"
#include "corio/impl/task_reports.hpp"
#include "corio/impl/task_state.hpp"
#include "corio/shard/detail/mailbox.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

namespace corio::detail {

class shard_group;

/// One shard as the others and its own loop see it. Everything but the queues and doorbells
/// (which are the group's) is touched only on the shard's own thread, except where said.
class shard_context final : public shard_port {
public:
    shard_context(shard_group& group, std::size_t index, std::size_t count, bool poll_window)
        : shard_port(index, count), poll_window_(poll_window), group_(&group),
          outgoing_(new batch[count]()), dirty_(new std::size_t[count]()) {}

    [[nodiscard]] event_loop& loop() const noexcept { return *loop_; }

    /// Queues `message` for shard `to`; it leaves with the next flush, before the loop polls.
    void send(std::size_t to, shard_message* message) noexcept {
        batch& b = outgoing_[to];
        message->next = b.newest;
        b.newest = message;
        if (b.oldest == nullptr) {
            b.oldest = message;
            dirty_[dirty_count_++] = to;
        }
        mail_flowed_ = true;
    }

    /// How long a loop with nothing else to do keeps polling without waiting once mail has
    /// flowed: a wake-up through the kernel costs tens of microseconds (more in a VM), a poll
    /// that does not wait well under one, so a conversation between shards goes at the speed of
    /// memory instead; a quiet shard goes back to sleep after this long. Not when there are more
    /// shards than CPUs: a shard polling for an answer would keep the one that owes it from
    /// running.
    static constexpr std::chrono::microseconds poll_window{50};

    inline bool flush(bool would_block) noexcept override;
    inline void receive() noexcept override;
    inline void stuck() noexcept override;

private:
    friend class shard_group;

    // Before a poll that may block: tells the senders that they must wake this loop, then looks
    // for mail once more. False when some came (the poll must not block).
    inline bool going_to_sleep() noexcept;

    // What this shard has queued for one other since its last flush, newest first.
    struct batch {
        shard_message* newest = nullptr;
        shard_message* oldest = nullptr;
    };

    bool poll_window_;
    shard_group* group_;
    event_loop* loop_ = nullptr;
    owned_ptr<batch[]> outgoing_;
    owned_ptr<std::size_t[]> dirty_;  // the shards with a batch queued, each once
    std::size_t dirty_count_ = 0;
    bool mail_flowed_ = false;  // since the last poll that was allowed to wait
    std::chrono::steady_clock::time_point polling_until_{};

    // -- The shard's life (shard_group) ------------------------------------------------------
    task_state_base* main_ = nullptr;  // this shard's main, while it runs
    future<> all_mains_done_;          // set when every shard's main has returned
    bool idle_ = false;                // shutting down, and counted out of the group's busy shards
    bool stuck_ = false;               // counted in the group's stuck shards (deadlock detection)
    bool quiet_ = false;               // every shard is idle: the loop may close
};

/// Every shard of one `run_sharded` call.
///
/// Shutdown without a lost message: a shard counts itself out of `busy_` once its main is done
/// (every shard's, that is) and it has no task left, hence nothing in flight; it serves the
/// others while they finish. A shard waiting for an answer is never counted out, so `busy_` can
/// only reach zero when nothing is in flight anywhere, and then nothing can start again: every
/// shard may close. An idle shard that finds tasks again (a message started one) counts itself
/// back in, which can only happen while the sender, waiting, keeps `busy_` above zero.
class shard_group {
public:
    /// `poll_window`: see `shard_context::poll_window`.
    shard_group(std::size_t count, bool poll_window)
        : count_(count), queues_(new pair_queue[count * count]()),
          doorbells_(new shard_doorbell[count]()), busy_(count) {
        contexts_ = owned_ptr<owned_ptr<shard_context>[]>(new owned_ptr<shard_context>[count]());
        for (std::size_t i = 0; i < count; ++i) {
            contexts_[i] = make_owned<shard_context>(*this, i, count, poll_window);
        }
    }
    shard_group(const shard_group&) = delete;
    shard_group& operator=(const shard_group&) = delete;

    [[nodiscard]] std::size_t count() const noexcept { return count_; }
    [[nodiscard]] shard_context& context(std::size_t shard) noexcept { return *contexts_[shard]; }
    /// The queue that shard `from` sends shard `to` mail through.
    [[nodiscard]] pair_queue& queue(std::size_t to, std::size_t from) noexcept {
        return queues_[to * count_ + from];
    }
    [[nodiscard]] shard_doorbell& doorbell(std::size_t shard) noexcept { return doorbells_[shard]; }

    // -- Start: every shard's loop exists before any main runs ----------------------------

    /// Makes `loop` shard `shard`'s, on the shard's thread.
    void attach(std::size_t shard, event_loop& loop) {
        shard_context& c = context(shard);
        c.loop_ = &loop;
        doorbells_[shard].loop = &loop;
        c.all_mains_done_ = loop.create_future();
        loop_access::set_shard_port(loop, &c);
    }
    void detach(std::size_t shard) noexcept {
        shard_context& c = context(shard);
        c.main_ = nullptr;
        c.all_mains_done_ = {};
        if (c.loop_ != nullptr) loop_access::set_shard_port(*c.loop_, nullptr);
    }

    /// Called by each shard once its loop exists (`error` null) or could not be made, and for
    /// each shard whose thread could not be started: waits until every shard has arrived.
    /// False when one failed, in which case no shard runs.
    bool arrive(std::exception_ptr error, std::size_t shards = 1) {
        os_mutex::guard guard(mutex_);
        arrived_ += shards;
        if (error && !start_error_) start_error_ = std::move(error);
        if (arrived_ == count_) {
            started_.notify_all();
        } else {
            while (arrived_ < count_) started_.wait(mutex_);
        }
        return !start_error_;
    }
    [[nodiscard]] std::exception_ptr start_error() const noexcept { return start_error_; }

    /// Called by each shard once it is done (quiet): waits until every shard is. Only then may
    /// a shard close and destroy its loop, as another may still be inside a wake-up of it (an
    /// answer's, or the quiet message's, posted just before).
    void depart() {
        os_mutex::guard guard(mutex_);
        if (++departed_ == count_) {
            departed_all_.notify_all();
        } else {
            while (departed_ < count_) departed_all_.wait(mutex_);
        }
    }

    // -- The mains ------------------------------------------------------------------------

    /// Shard `shard`'s main while it runs (null once it is done), to be cancelled from others.
    void set_main(std::size_t shard, task_state_base* main) noexcept {
        context(shard).main_ = main;
    }

    /// Cancels every shard's main (from any shard's thread, or a signal's callback).
    void cancel_mains(const char* message) {
        for (std::size_t i = 0; i < count_; ++i) {
            post(
                *contexts_[i],
                [](shard_context& to, const char* text) {
                    if (to.main_ != nullptr) (void)to.main_->cancel(text);
                },
                message);
        }
    }

    /// Records how a shard's main ended: the first failure is what `run_sharded` throws, and
    /// cancels the other mains.
    void main_finished(std::exception_ptr error) {
        if (error && !failed_.exchange(true, std::memory_order_acq_rel)) {
            first_error_ = error;  // read after every thread is joined
            cancel_mains("another shard's main failed");
        }
        if (mains_running_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            for (std::size_t i = 0; i < count_; ++i) {
                shard_context* c = contexts_[i].get();
                post(*c, [](shard_context& to, const char*) { to.all_mains_done_.set_result(); });
            }
        }
    }
    [[nodiscard]] std::exception_ptr first_error() const noexcept { return first_error_; }
    [[nodiscard]] future<>& all_mains_done(std::size_t shard) noexcept {
        return context(shard).all_mains_done_;
    }

    // -- Shutdown (see the class comment) -----------------------------------------------------

    /// Counts shard `shard`, which has no task left, out of the busy ones. True when it was the
    /// last: every other shard is then told to stop, and none may send again.
    bool settle(std::size_t shard) {
        shard_context& c = context(shard);
        c.idle_ = true;
        if (busy_.fetch_sub(1, std::memory_order_acq_rel) != 1) return false;
        for (std::size_t i = 0; i < count_; ++i) {
            if (i == shard) continue;
            shard_context* other = contexts_[i].get();
            post(*other, [](shard_context& to, const char*) {
                to.quiet_ = true;
                to.loop().stop();
            });
        }
        c.quiet_ = true;
        return true;
    }
    /// Whether an idle shard's loop stopped because every shard is idle (else it has tasks again).
    [[nodiscard]] bool quiet(std::size_t shard) noexcept { return context(shard).quiet_; }

    /// Counts an idle shard back in, unless every shard is already idle (then it must not send).
    bool wake_from_idle(shard_context& c) noexcept {
        std::size_t busy = busy_.load(std::memory_order_acquire);
        while (busy > 0) {
            if (busy_.compare_exchange_weak(busy, busy + 1, std::memory_order_acq_rel)) {
                c.idle_ = false;
                c.loop().stop();  // back to the shutdown's cancelling
                return true;
            }
        }
        return false;
    }

    // -- Deadlock detection (`detect_deadlock`, on in debug mode) -----------------------------
    //
    // A shard is stuck when only another shard could wake it (`shard_port::stuck`); the program
    // is deadlocked when every shard is stuck at once, with no mail and no call from another
    // thread on its way to any. The last shard to get stuck checks: it counts the stuck shards
    // in the low half of `stuck_` and every shard that came unstuck in the high half, so that a
    // shard that came unstuck and got stuck again while it looked is seen.

    void stuck(shard_context& c) noexcept {
        if (c.stuck_) return;
        c.stuck_ = true;
        const std::uint64_t seen = stuck_.fetch_add(1) + 1;
        if ((seen & 0xffff'ffffU) != count_) return;
        // Reported while the mains run; on the way out, leftovers are cancelled instead.
        if (mains_running_.load() == 0) return;
        for (std::size_t i = 0; i < count_; ++i) {
            if (doorbells_[i].rung.load() || loop_access::inbox_pending(contexts_[i]->loop())) {
                return;
            }
        }
        if (stuck_.load() != seen || deadlocked_.exchange(true)) return;
        // Each shard describes its own tasks, on its own thread; the last to do so ends the run.
        for (std::size_t i = 0; i < count_; ++i) {
            shard_context* other = contexts_[i].get();
            post(*other, [](shard_context& to, const char*) { to.group_->report_deadlock(to); });
        }
    }
    void unstuck(shard_context& c) noexcept {
        c.stuck_ = false;
        stuck_.fetch_add((std::uint64_t{1} << 32) - 1);  // one fewer stuck, one more unstuck
    }

private:
    // Runs `fn(to)` on `to`'s loop. Every message of the group's goes through this one lambda
    // type: each type would cost the compile its own `std::function`.
    static void post(shard_context& to, void (*fn)(shard_context&, const char*),
                     const char* text = nullptr) {
        shard_context* target = &to;
        to.loop().call_soon_threadsafe([target, fn, text] { fn(*target, text); });
    }

    void report_deadlock(shard_context& c) {
        std::string part = concat({"shard ", decimal(c.index()), ":\n", wait_summary_of(c.loop())});
        if (const auto call_graph = installed_call_graph.load(std::memory_order_acquire)) {
            part += call_graph(c.loop());
        }
        bool complete = false;
        {
            os_mutex::guard guard(mutex_);
            deadlock_report_ += part;
            complete = ++deadlock_reports_ == count_;
        }
        if (!complete) return;
        if (!failed_.exchange(true, std::memory_order_acq_rel)) {
            std::string message = concat(
                {"deadlock: every shard waits, and nothing (timer, I/O, executor job, signal "
                 "handler, another shard) can wake one:\n",
                 deadlock_report_});
            if (installed_call_graph.load(std::memory_order_acquire) == nullptr) {
                message += call_graph_hint;
            }
            first_error_ = std::make_exception_ptr(deadlock_error(message));
        }
        cancel_mains("deadlock");
    }

    std::size_t count_;
    owned_ptr<pair_queue[]> queues_;  // queues_[to * count_ + from]
    owned_ptr<shard_doorbell[]> doorbells_;
    owned_ptr<owned_ptr<shard_context>[]> contexts_;

    os_mutex mutex_;
    os_condition started_;
    std::size_t arrived_ = 0;
    std::exception_ptr start_error_;
    os_condition departed_all_;
    std::size_t departed_ = 0;

    std::atomic<bool> failed_{false};
    std::exception_ptr first_error_;
    std::atomic<std::size_t> mains_running_{count_};
    alignas(shard_line) std::atomic<std::size_t> busy_;

    std::atomic<std::uint64_t> stuck_{0};
    std::atomic<bool> deadlocked_{false};
    std::string deadlock_report_;  // under mutex_
    std::size_t deadlock_reports_ = 0;
};

/// The shard whose loop runs on this thread, if any.
inline constinit thread_local shard_context* current_shard = nullptr;

inline bool shard_context::flush(bool would_block) noexcept {
    if (dirty_count_ > 0) {
        if (idle_ && loop_access::has_pending_tasks(*loop_) && !group_->wake_from_idle(*this)) {
            // Every shard is idle and about to close: what a straggler queued stays unsent,
            // and its task is abandoned with the loop.
            return !would_block || !going_to_sleep();
        }
        for (std::size_t i = 0; i < dirty_count_; ++i) {
            const std::size_t to = dirty_[i];
            batch& b = outgoing_[to];
            pair_queue& q = group_->queue(to, index());
            shard_message* top = q.newest.load(std::memory_order_relaxed);
            do {
                b.oldest->next = top;
            } while (!q.newest.compare_exchange_weak(top, b.newest, std::memory_order_release,
                                                     std::memory_order_relaxed));
            b = {};
            shard_doorbell& bell = group_->doorbell(to);
            // One wake-up per batch, and only for a receiver that sleeps: none when it has not
            // yet taken the last batch, or is awake and will look before it sleeps (a receiver
            // says it sleeps, then looks at `rung`; a sender rings, then looks at `sleeping`:
            // one of the two sees the other).
            if (!bell.rung.exchange(true) && to != index() && bell.sleeping.load()) {
                loop_access::wake(*bell.loop);
            }
        }
        dirty_count_ = 0;
    } else if (idle_ && loop_access::has_pending_tasks(*loop_)) {
        (void)group_->wake_from_idle(*this);
    }
    if (group_->doorbell(index()).rung.load(std::memory_order_relaxed)) return true;
    if (!would_block) return false;
    if (poll_window_) {
        const auto now = std::chrono::steady_clock::now();
        if (mail_flowed_) {
            mail_flowed_ = false;
            polling_until_ = now + poll_window;
        }
        if (now < polling_until_) return true;
    }
    return !going_to_sleep();
}

inline bool shard_context::going_to_sleep() noexcept {
    shard_doorbell& bell = group_->doorbell(index());
    bell.sleeping.store(true);
    if (!bell.rung.load()) return true;
    bell.sleeping.store(false, std::memory_order_relaxed);
    return false;  // mail came meanwhile
}

inline void shard_context::stuck() noexcept { group_->stuck(*this); }

inline void shard_context::receive() noexcept {
    if (stuck_) group_->unstuck(*this);
    shard_doorbell& bell = group_->doorbell(index());
    if (bell.sleeping.load(std::memory_order_relaxed)) {
        bell.sleeping.store(false, std::memory_order_relaxed);
    }
    if (!bell.rung.load(std::memory_order_relaxed)) return;
    // Cleared before the queues are read, and by an exchange: it reads the senders' rings, so
    // that their batches are visible below; a batch sent after it rings again.
    bell.rung.exchange(false, std::memory_order_acq_rel);
    for (std::size_t from = 0; from < count(); ++from) {
        pair_queue& q = group_->queue(index(), from);
        if (q.newest.load(std::memory_order_relaxed) == nullptr) continue;
        shard_message* m = q.newest.exchange(nullptr, std::memory_order_acquire);
        shard_message* oldest = nullptr;
        while (m != nullptr) {
            shard_message* next = m->next;
            m->next = oldest;
            oldest = m;
            m = next;
        }
        while (oldest != nullptr) {
            mail_flowed_ = true;
            shard_message* next = oldest->next;  // `deliver` may send the node on
            oldest->deliver(oldest);
            oldest = next;
        }
    }
}

}  // namespace corio::detail
