#pragma once
/// \file
/// The few range concepts the combinators take (`gather`, `wait`, `race` and `as_completed` of a
/// range, `stream_writer::writelines`), from <iterator>, which declares `std::ranges::begin`,
/// `end` and `size` too: <ranges>, all views, would cost every program of tasks a tenth of its
/// compile. Each means what its namesake in `std::ranges` means.

#include <iterator>
#include <utility>

namespace corio::detail {

template <class R>
using range_iterator_t = decltype(std::ranges::begin(std::declval<R&>()));

template <class R>
concept input_range = requires(R& range) {
    std::ranges::begin(range);
    std::ranges::end(range);
} && std::input_iterator<range_iterator_t<R>>;

template <class R>
concept forward_range = input_range<R> && std::forward_iterator<range_iterator_t<R>>;

template <class R>
concept sized_range = input_range<R> && requires(R& range) { std::ranges::size(range); };

template <input_range R>
using range_value_t = std::iter_value_t<range_iterator_t<R>>;

template <input_range R>
using range_reference_t = std::iter_reference_t<range_iterator_t<R>>;

}  // namespace corio::detail
