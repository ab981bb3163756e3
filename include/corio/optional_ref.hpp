#pragma once
/// \file
/// `corio::optional_ref<T>`: a reference or nothing, what `std::optional<T&>` would be (C++20
/// has none). What `async_generator<T&>::next()` returns.

#include <memory>
#include <optional>

namespace corio {

/// A reference to a `T`, or nothing: `std::optional`'s interface over a pointer that it never
/// owns. Copying it copies the reference, not the object.
template <class T>
class optional_ref {
public:
    using value_type = T;

    constexpr optional_ref() noexcept = default;
    constexpr optional_ref(std::nullopt_t) noexcept {}  // NOLINT: as std::optional
    constexpr optional_ref(T& value) noexcept           // NOLINT: as std::optional
        : value_(std::addressof(value)) {}

    [[nodiscard]] constexpr bool has_value() const noexcept { return value_ != nullptr; }
    constexpr explicit operator bool() const noexcept { return value_ != nullptr; }

    /// The referenced object; undefined when empty, as for `std::optional`.
    [[nodiscard]] constexpr T& operator*() const noexcept { return *value_; }
    [[nodiscard]] constexpr T* operator->() const noexcept { return value_; }
    /// The referenced object; throws `std::bad_optional_access` when empty.
    [[nodiscard]] constexpr T& value() const {
        if (value_ == nullptr) throw std::bad_optional_access();
        return *value_;
    }

    friend constexpr bool operator==(const optional_ref& ref, std::nullopt_t) noexcept {
        return ref.value_ == nullptr;
    }

private:
    T* value_ = nullptr;
};

}  // namespace corio
