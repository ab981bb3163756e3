#pragma once
/// \file
/// `detail::shard_port`: what a loop of `run_sharded` (shard/) lends the loop, so that the loop
/// sends the messages its tasks queued for other shards before it waits, and takes in what
/// other shards sent it after each wait. The loop knows nothing else of shards.

#include <cstddef>

namespace corio::detail {

class shard_port {
public:
    shard_port(std::size_t index, std::size_t count) noexcept : index_(index), count_(count) {}
    shard_port(const shard_port&) = delete;
    shard_port& operator=(const shard_port&) = delete;

    /// Before each poll of the reactor: sends every batch queued since the last one, one
    /// wake-up per receiving shard. True when the poll must not block: messages already wait
    /// for this loop (sent by itself or announced by another shard), or mail flowed so
    /// recently that more is likely (`would_block`: the loop has nothing else to do).
    virtual bool flush(bool would_block) noexcept = 0;
    /// After each poll: delivers what other shards (and this one) sent, in the order each sent.
    virtual void receive() noexcept = 0;
    /// With deadlock detection on, after a flush that found nothing to do: the loop is about to
    /// sleep with no task ready, no timer, no I/O and no executor job, so that only another
    /// shard (or a thread's `call_soon_threadsafe`) could wake it. The next `receive` ends it.
    virtual void stuck() noexcept = 0;

    /// This shard's index, and how many shards the program runs.
    [[nodiscard]] std::size_t index() const noexcept { return index_; }
    [[nodiscard]] std::size_t count() const noexcept { return count_; }

    /// The calls of this shard's tasks waiting for another shard's answer. Each is also an
    /// executor job of the loop, so that virtual time stands still while it is away.
    [[nodiscard]] std::size_t calls_in_flight() const noexcept { return calls_in_flight_; }
    void add_call_in_flight(std::ptrdiff_t delta) noexcept {
        calls_in_flight_ =
            static_cast<std::size_t>(static_cast<std::ptrdiff_t>(calls_in_flight_) + delta);
    }

protected:
    ~shard_port() = default;

private:
    std::size_t index_;
    std::size_t count_;
    std::size_t calls_in_flight_ = 0;
};

}  // namespace corio::detail
