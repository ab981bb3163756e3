#pragma once
/// \file
/// `corio::guard`: what `co_await x.scoped()` returns, the RAII form of asyncio's
/// `async with lock:`.

#include <utility>

namespace corio {

/// Ownership of something acquired (a `lock`, a `condition`'s lock, a `semaphore` unit),
/// released when the guard is destroyed: `auto guard = co_await lock.scoped();`.
///
/// Movable, not copyable, like `std::unique_lock`; a moved-from guard owns nothing. Releasing
/// is synchronous (it never suspends), so the guard works in any scope, including while an
/// exception or a `cancelled_error` unwinds it. The releasable thing must outlive the guard.
template <class Releasable>
class guard {
public:
    /// A guard owning nothing.
    guard() noexcept = default;
    /// Adopts `r`, which the caller has acquired.
    explicit guard(Releasable& r) noexcept : owned_(&r) {}

    guard(guard&& other) noexcept : owned_(std::exchange(other.owned_, nullptr)) {}
    guard& operator=(guard&& other) noexcept {
        if (this != &other) {
            unlock();
            owned_ = std::exchange(other.owned_, nullptr);
        }
        return *this;
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;

    /// Releases what it owns. Noexcept: if it was already released behind the guard's back,
    /// the release throws and the program terminates, as any exception out of a destructor.
    ~guard() { unlock(); }

    /// Whether the guard still owns what it acquired.
    [[nodiscard]] bool owns_lock() const noexcept { return owned_ != nullptr; }
    explicit operator bool() const noexcept { return owns_lock(); }

    /// Releases now, ahead of the guard's destruction (nothing happens if it owns nothing).
    void unlock() {
        if (Releasable* r = std::exchange(owned_, nullptr)) r->release();
    }

    /// What the guard owns, or null.
    [[nodiscard]] Releasable* get() const noexcept { return owned_; }

private:
    Releasable* owned_ = nullptr;
};

namespace detail {

/// The awaiter of `scoped()`: acquires as `Awaiter` does, then hands the ownership to a
/// `guard<Owner>`. Cancellation behaves as the plain acquisition's: no guard, nothing held.
template <class Owner, class Awaiter>
class scoped_awaiter : public Awaiter {
public:
    template <class Source>
    scoped_awaiter(Owner& owner, Source& source) noexcept : Awaiter(source), owner_(&owner) {}

    [[nodiscard]] guard<Owner> await_resume() {
        Awaiter::await_resume();
        return guard<Owner>(*owner_);
    }

private:
    Owner* owner_;
};

}  // namespace detail

}  // namespace corio
