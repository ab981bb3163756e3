#pragma once
/// \file
/// `detail::read_buffer`: the bytes a stream reader has received and not yet handed out. A plain
/// value type, no socket in sight, so that its arithmetic is tested on its own
/// (tests/net/read_buffer_test.cpp).

#include "corio/detail/owned_ptr.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <utility>

namespace corio::detail {

/// One contiguous allocation holding `[begin, end)` of unread bytes, with free space before
/// (what reads consumed) and after (where the next receive lands).
///
/// Invariants: `begin_ <= end_ <= capacity_`; when everything was consumed, both indexes are 0,
/// so that the next receive lands at the start and the memory is reused, not grown.
class read_buffer {
public:
    /// The first allocation: the common small read fits, and a read of a whole socket buffer
    /// (Linux's default 128 KiB) grows it three times at most.
    static constexpr std::size_t initial_capacity = std::size_t{16} * 1024;

    read_buffer() noexcept = default;
    read_buffer(read_buffer&& other) noexcept
        : data_(std::move(other.data_)), capacity_(std::exchange(other.capacity_, 0)),
          begin_(std::exchange(other.begin_, 0)), end_(std::exchange(other.end_, 0)) {}
    read_buffer& operator=(read_buffer&& other) noexcept {
        read_buffer moved(std::move(other));
        std::swap(data_, moved.data_);
        std::swap(capacity_, moved.capacity_);
        std::swap(begin_, moved.begin_);
        std::swap(end_, moved.end_);
        return *this;
    }
    read_buffer(const read_buffer&) = delete;
    read_buffer& operator=(const read_buffer&) = delete;

    [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
    [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] std::string_view view() const noexcept {
        return {data_.get() + begin_, end_ - begin_};
    }

    /// Hands out the first `n` bytes (`n <= size()`).
    void consume(std::size_t n) noexcept {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }

    /// Puts `data` (taken out earlier) back in front of what is buffered.
    void unread(std::string_view data) {
        if (data.empty()) return;
        const std::size_t have = size();
        if (begin_ >= data.size()) {
            begin_ -= data.size();
            std::memcpy(data_.get() + begin_, data.data(), data.size());
            return;
        }
        const std::size_t total = data.size() + have;
        if (total <= capacity_) {
            std::memmove(data_.get() + data.size(), data_.get() + begin_, have);
            std::memcpy(data_.get(), data.data(), data.size());
        } else {
            owned_ptr<char[]> bigger(new char[total]);  // uninitialised: overwritten
            std::memcpy(bigger.get(), data.data(), data.size());
            if (have > 0) std::memcpy(bigger.get() + data.size(), data_.get() + begin_, have);
            data_ = std::move(bigger);
            capacity_ = total;
        }
        begin_ = 0;
        end_ = total;
    }

    /// Makes room after what is buffered for at least `room` more bytes and returns all the
    /// room there is. Slides the bytes to the front when that is enough; otherwise grows
    /// (doubling), to no more than `max_capacity` unless `room` needs it.
    [[nodiscard]] std::span<char>
    reserve(std::size_t room = 1,
            std::size_t max_capacity = std::numeric_limits<std::size_t>::max()) {
        make_room(room, max_capacity);
        return {data_.get() + end_, capacity_ - end_};
    }

    /// `n` bytes were received into the room `reserve` returned.
    void commit(std::size_t n) noexcept { end_ += n; }

private:
    void make_room(std::size_t room, std::size_t max_capacity) {
        if (begin_ == end_) begin_ = end_ = 0;
        const std::size_t tail = capacity_ - end_;
        // Enough room, and not a sliver at the end of a big buffer: receive there.
        if (data_ && tail >= room && tail >= capacity_ / 4) return;
        const std::size_t have = size();
        if (begin_ > 0 && capacity_ - have >= room) {
            std::memmove(data_.get(), data_.get() + begin_, have);
            begin_ = 0;
            end_ = have;
            return;
        }
        if (data_ && tail >= room) return;
        const std::size_t needed = have + room;
        std::size_t capacity = capacity_ == 0 ? initial_capacity : capacity_ * 2;
        capacity = std::min(capacity, std::max({max_capacity, needed, initial_capacity}));
        capacity = std::max(capacity, needed);
        owned_ptr<char[]> bigger(new char[capacity]);
        if (have > 0) std::memcpy(bigger.get(), data_.get() + begin_, have);
        data_ = std::move(bigger);
        capacity_ = capacity;
        begin_ = 0;
        end_ = have;
    }

    owned_ptr<char[]> data_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace corio::detail
