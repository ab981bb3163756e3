#pragma once
/// \file
/// `detail::copyable<T>`: whether copying a `T` compiles, for the results corio copies when
/// more than one handle holds them.

#include <type_traits>

namespace corio::detail {

/// `std::is_copy_constructible`, except that it also looks inside the standard containers,
/// whose copy constructors are declared whatever their elements: a
/// `std::vector<std::unique_ptr<int>>` claims to be copyable, and an `if constexpr` on that
/// claim instantiates a copy that does not compile.
template <class T>
inline constexpr bool copyable = std::is_copy_constructible_v<T>;

template <class T>
    requires requires {
        typename T::value_type;
        typename T::allocator_type;
    }
inline constexpr bool copyable<T> =
    std::is_copy_constructible_v<T> && copyable<std::remove_cv_t<typename T::value_type>>;

}  // namespace corio::detail
