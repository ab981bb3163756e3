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

    /// This shard's index, and how many shards the program runs.
    [[nodiscard]] std::size_t index() const noexcept { return index_; }
    [[nodiscard]] std::size_t count() const noexcept { return count_; }

protected:
    ~shard_port() = default;

private:
    std::size_t index_;
    std::size_t count_;
};

}  // namespace corio::detail
