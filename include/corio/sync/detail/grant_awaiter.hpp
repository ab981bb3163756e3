#pragma once
/// \file
/// The awaiter of `acquire()` on a lock or a semaphore: it takes a free unit at once, or waits
/// in the owner's queue until one is handed to it.

#include "corio/impl/sync_waiter.hpp"

#include <coroutine>
#include <string>

namespace corio::detail {

/// Waits in `Owner`'s queue, in the acquiring task's frame. `Owner` (a `lock` or a
/// `semaphore`) befriends it and provides `try_take()` (take a free unit, if any),
/// `waiting_` (its FIFO of waiters), `release()` (hand a unit on) and `acquire_name`.
///
/// A unit handed to a task that is cancelled before it runs, or whose frame is destroyed
/// first (the loop closing), is handed on: nothing is lost.
template <class Owner>
class grant_awaiter : public sync_waiter {
public:
    explicit grant_awaiter(Owner& owner) noexcept
        : sync_waiter(sync_ops<&cancel>), owner_(&owner) {}
    grant_awaiter(grant_awaiter&&) noexcept = default;  // until awaited, as every sync_waiter
    grant_awaiter(const grant_awaiter&) = delete;
    grant_awaiter& operator=(const grant_awaiter&) = delete;
    ~grant_awaiter() {
        if (is(status::granted) && linked()) {
            unlink();
            owner_->release();
        }
    }

    [[nodiscard]] bool await_ready() noexcept { return owner_->try_take(); }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (bind(Owner::acquire_name)) return false;
        wait_in(owner_->waiting_, h);
        return true;
    }

    void await_resume() {
        if (task_ == nullptr) return;  // took a free unit in await_ready
        if (!is(status::granted)) end_withdrawn();
        const bool attached = detach();
        // asyncio's race: handed a unit, then cancelled before it ran. Hand it on.
        if (cancel_pending()) {
            if (attached) owner_->release();
            end_withdrawn();
        }
        end_wait();
    }

private:
    static bool cancel(cancellable_wait* w, const std::string&) {
        static_cast<grant_awaiter*>(w)->withdraw();
        return false;
    }

    Owner* owner_;
};

}  // namespace corio::detail
