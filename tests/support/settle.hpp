// Awaiting a set of tasks to the end, for the tests of the synchronisation primitives: a task
// cancelled while it waits is part of what they check, so it is recorded, not rethrown.
#pragma once

#include "support/test_helpers.hpp"

#include <corio/coro.hpp>
#include <corio/errors.hpp>
#include <corio/task.hpp>

#include <vector>

namespace corio_test {

/// Awaits every task, recording the cancelled ones as "<name> cancelled".
inline corio::coro<> settle(std::vector<corio::task<>>& tasks, recorder& rec) {
    for (auto& t : tasks) {
        try {
            co_await t;
        } catch (const corio::cancelled_error&) {
            if (corio::current_task().cancelling() > 0) throw;  // settle itself was cancelled
            rec(t.get_name() + " cancelled");
        }
    }
}

}  // namespace corio_test
