#pragma once
/// \file
/// `detail::owned_ptr<T>`: the one owner of an object made with `new` (or of nothing), as
/// `std::unique_ptr<T>` with the default deleter, for the runtime's own objects; `T[]` owns an
/// array made with `new[]`. The same machine code; what differs is compile time: libstdc++'s
/// `unique_ptr` keeps its pointer in a `std::tuple`, which costs clang 14 some 15 ms to
/// instantiate per type, and every program of tasks would instantiate a dozen.

#include <concepts>
#include <cstddef>
#include <utility>

namespace corio::detail {

template <class T>
class owned_ptr {
public:
    owned_ptr() noexcept = default;
    owned_ptr(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor): as unique_ptr
    explicit owned_ptr(T* owned) noexcept : p_(owned) {}
    owned_ptr(owned_ptr&& other) noexcept : p_(other.release()) {}
    /// From the owner of a derived object (`T` has a virtual destructor then).
    template <class U>
        requires std::convertible_to<U*, T*>
    owned_ptr(owned_ptr<U>&& other) noexcept : p_(other.release()) {}  // NOLINT: as unique_ptr
    owned_ptr& operator=(owned_ptr&& other) noexcept {
        reset(other.release());
        return *this;
    }
    template <class U>
        requires std::convertible_to<U*, T*>
    owned_ptr& operator=(owned_ptr<U>&& other) noexcept {
        reset(other.release());
        return *this;
    }
    owned_ptr(const owned_ptr&) = delete;
    owned_ptr& operator=(const owned_ptr&) = delete;
    ~owned_ptr() { delete p_; }

    [[nodiscard]] T* get() const noexcept { return p_; }
    T& operator*() const noexcept { return *p_; }
    T* operator->() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

    /// Gives up ownership: the caller deletes what is returned.
    [[nodiscard]] T* release() noexcept { return std::exchange(p_, nullptr); }
    /// Owns `owned` instead, and deletes what was owned before (after the switch, as
    /// `unique_ptr::reset` does).
    void reset(T* owned = nullptr) noexcept { delete std::exchange(p_, owned); }

private:
    T* p_ = nullptr;
};

template <class T>
class owned_ptr<T[]> {
public:
    owned_ptr() noexcept = default;
    explicit owned_ptr(T* owned) noexcept : p_(owned) {}
    owned_ptr(owned_ptr&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
    owned_ptr& operator=(owned_ptr&& other) noexcept {
        delete[] std::exchange(p_, std::exchange(other.p_, nullptr));
        return *this;
    }
    owned_ptr(const owned_ptr&) = delete;
    owned_ptr& operator=(const owned_ptr&) = delete;
    ~owned_ptr() { delete[] p_; }

    [[nodiscard]] T* get() const noexcept { return p_; }
    T& operator[](std::size_t i) const noexcept { return p_[i]; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    T* p_ = nullptr;
};

/// `owned_ptr<T>(new T(args...))`.
template <class T, class... Args>
[[nodiscard]] owned_ptr<T> make_owned(Args&&... args) {
    return owned_ptr<T>(new T(std::forward<Args>(args)...));
}

}  // namespace corio::detail
