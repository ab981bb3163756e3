#pragma once
/// \file
/// The mail between shards: `shard_message`, a node living in the frame of the task that waits
/// for its answer; `pair_queue`, the queue of one ordered pair of shards; `shard_doorbell`, how a
/// shard learns that mail came.

#include <atomic>
#include <cstddef>

namespace corio {

class event_loop;

namespace detail {

/// One message from a shard to a shard (itself included). The node lives in the frame of the
/// task that waits for the answer, and is reused for the answer, so that sending allocates
/// nothing; `deliver` runs on the receiving shard's loop.
struct shard_message {
    shard_message* next = nullptr;
    void (*deliver)(shard_message*) noexcept = nullptr;
};

// A cache line, literally: `std::hardware_destructive_interference_size` makes g++ warn that it
// may differ between compilers, and every x86-64 and arm64 core this runs on has 64 bytes.
inline constexpr std::size_t shard_line = 64;

/// The queue from one shard to another: a stack onto which the sender pushes a whole batch with
/// one compare-exchange, newest message on top, and which the receiver empties with one
/// exchange and reads backwards, so that messages arrive in the order they were sent. Only
/// those two threads touch it: one producer, one consumer, no lock. Unbounded, as the messages
/// are nodes in the senders' frames: it never fills, and never allocates.
struct alignas(shard_line) pair_queue {
    std::atomic<shard_message*> newest{nullptr};
};

/// What other shards ring when they send a shard mail, and the loop they wake for it.
/// Invariant: while a sent batch has not been taken, `rung` is true or the sender is about to
/// ring; the receiver clears it before it takes the batches, so that anything sent later rings
/// (and wakes) again.
struct alignas(shard_line) shard_doorbell {
    std::atomic<bool> rung{false};
    /// Set by the receiver before a poll that may block, cleared after it: only then does a
    /// sender need to wake it.
    std::atomic<bool> sleeping{false};
    event_loop* loop = nullptr;  // set before any shard sends, read by the senders
};

}  // namespace detail

}  // namespace corio
