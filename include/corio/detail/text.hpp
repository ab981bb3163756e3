#pragma once
/// \file
/// Building the runtime's messages (reports, error texts) with little code: `concat` joins
/// string views into one string, sized once, and `decimal` writes a number without a string
/// of its own. A chain of `operator+` compiles, at every use, to one allocation and one
/// exception cleanup per `+`; in a header-only library every program compiles every message.

#include <charconv>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace corio::detail {

/// `parts`, joined.
[[nodiscard]] [[gnu::noinline]] inline std::string
concat(std::initializer_list<std::string_view> parts) {
    std::size_t size = 0;
    for (const std::string_view part : parts) size += part.size();
    std::string text;
    text.reserve(size);
    for (const std::string_view part : parts) text.append(part);
    return text;
}

/// A number in decimal, viewed as a `std::string_view` (valid while the object lives).
class decimal {
public:
    explicit decimal(unsigned long long value) noexcept {
        size_ = static_cast<std::size_t>(
            std::to_chars(digits_, digits_ + sizeof digits_, value).ptr - digits_);
    }
    // NOLINTNEXTLINE(google-explicit-constructor): a part of `concat` like any other.
    operator std::string_view() const noexcept { return {digits_, size_}; }

private:
    char digits_[20];  // 2^64 - 1 has 20 digits
    std::size_t size_;
};

}  // namespace corio::detail
