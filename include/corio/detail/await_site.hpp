#pragma once
/// \file
/// Where a coroutine waits: `await_site` (file, line, function), and `await_site_record`, the
/// one type that hides how each compiler lets a promise record it cheaply at every `co_await`.
/// The compiler feature tests of the await path are here and nowhere else.

#include "corio/detail/text.hpp"

#include <string>
#include <string_view>
#include <version>

#if defined(__cpp_lib_source_location)
#include <bit>
#include <source_location>
#include <type_traits>
#endif

namespace corio::detail {

/// Where a `co_await` is in the source, as the compiler's builtins tell it at the call site (g++
/// 12 and clang 14 both have them; clang 14 lacks `std::source_location`).
///
/// `coro_promise_base::site()` returns it; where the standard library has
/// `std::source_location` (g++), the promise stores only a pointer to the compiler's record.
struct await_site {
    const char* file = nullptr;
    const char* function = nullptr;
    unsigned line = 0;

    /// The caller's site, when used as a default argument: `await_site where = current()`.
    [[nodiscard]] static constexpr await_site
    current(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE(),
            const char* function = __builtin_FUNCTION()) noexcept {
        return {file, function, line};
    }
    [[nodiscard]] constexpr bool known() const noexcept { return file != nullptr && *file != '\0'; }
};

/// How a promise stores a site: one pointer to the compiler's static record where the standard
/// library has `std::source_location` (g++ 12), the three builtins' values otherwise (clang 14).
/// Either way `site_record::current()` as a default argument is the caller's site.
#if defined(__cpp_lib_source_location)
using site_record = std::source_location;
[[nodiscard]] inline await_site to_await_site(const std::source_location& where) noexcept {
    return {where.file_name(), where.function_name(), where.line()};
}
#else
using site_record = await_site;
[[nodiscard]] constexpr await_site to_await_site(const await_site& where) noexcept { return where; }
#endif

/// The function name a site records, made readable: g++ names the code of a coroutine after its
/// frame (`void f(f(int)::_Z1fi.Frame*)`); this gives back `f(int)`.
[[nodiscard]] inline std::string readable_function(const char* raw) {
    if (raw == nullptr) return "?";
    std::string_view name(raw);
    // The return type says nothing a reader needs: `corio::coro<int> f(int)` is `f(int)`, and
    // so is `corio::async_generator<int> f(int)`.
    if (name.starts_with("corio::coro<") || name.starts_with("corio::async_generator<")) {
        int depth = 0;
        for (std::size_t i = 0; i < name.size(); ++i) {
            if (name[i] == '<') {
                ++depth;
            } else if (name[i] == '>' && --depth == 0) {
                if (i + 1 < name.size() && name[i + 1] == ' ') name.remove_prefix(i + 2);
                break;
            }
        }
    }
    const std::size_t frame = name.find("::_Z");
    if (frame == std::string_view::npos || !name.ends_with(".Frame*)")) return std::string(name);
    // Walk back from "::_Z" to the parenthesis that opens the frame function's parameters.
    int depth = 0;
    for (std::size_t i = frame; i-- > 0;) {
        if (name[i] == ')') {
            ++depth;
        } else if (name[i] == '(') {
            if (depth == 0) return std::string(name.substr(i + 1, frame - i - 1));
            --depth;
        }
    }
    return std::string(name);
}

/// "file:line in function", or "" for an unknown site.
[[nodiscard]] inline std::string format_site(const await_site& site) {
    if (!site.known()) return {};
    return concat({site.file, ":", decimal(site.line), " in ", readable_function(site.function)});
}

/// What a coroutine's promise keeps of where it waits: its site as of its last `co_await`, or
/// its own definition's before the first. `await_transform` takes a `mark` as a default
/// argument, `here()`, which is the site of the `co_await` itself, and `record`s it.
///
/// - g++ 12 (libstdc++ with `__builtin_source_location`): a `mark` is the pointer to the
///   compiler's static record, and the record is that one pointer. NOTE: g++ keeps every
///   class-type temporary of a `co_await` expression in the coroutine frame, a
///   `std::source_location` argument too (8 bytes per `co_await` in the source), but not a
///   pointer; libstdc++'s `std::source_location` is that very pointer.
/// - another library with `std::source_location`: a `mark` is a `std::source_location`.
/// - clang 14 (no `std::source_location`): the file and function are the coroutine's own,
///   recorded at creation, and a `mark` is the line.
///
/// The record is a base class of the promise, not a member, so that the promise's next member
/// may sit in its tail padding (clang 14: three words of which the last is half used).
class await_site_record {
public:
#if defined(__cpp_lib_source_location) && defined(__GLIBCXX__) &&                                  \
    __has_builtin(__builtin_source_location)
    using mark = const void*;
    [[nodiscard]] static constexpr mark here(mark where = __builtin_source_location()) noexcept {
        return where;
    }
    explicit await_site_record(site_record created) noexcept : where_(created) {}
    void record(mark where) noexcept {
        static_assert(sizeof(where) == sizeof(site_record) &&
                      std::is_trivially_copyable_v<site_record>);
        where_ = std::bit_cast<site_record>(where);
    }
    [[nodiscard]] await_site site() const noexcept { return to_await_site(where_); }

private:
    site_record where_;
#elif defined(__cpp_lib_source_location)
    using mark = site_record;
    [[nodiscard]] static constexpr mark here(mark where = mark::current()) noexcept {
        return where;
    }
    explicit await_site_record(site_record created) noexcept : where_(created) {}
    void record(mark where) noexcept { where_ = where; }
    [[nodiscard]] await_site site() const noexcept { return to_await_site(where_); }

private:
    site_record where_;
#else
    using mark = unsigned;
    [[nodiscard]] static constexpr mark here(mark line = __builtin_LINE()) noexcept { return line; }
    explicit await_site_record(site_record created) noexcept
        : file_(created.file), function_(created.function), line_(created.line) {}
    void record(mark line) noexcept { line_ = line; }
    [[nodiscard]] await_site site() const noexcept { return {file_, function_, line_}; }

private:
    const char* file_;
    const char* function_;
    unsigned line_;
#endif
};

}  // namespace corio::detail
