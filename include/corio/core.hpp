#pragma once
/// \file
/// The core of corio, and all a program of coroutines and timers needs: coroutines and tasks,
/// futures, the event loop and `run`, `sleep`, the combinators (`gather`, `wait`,
/// `as_completed`, `race`, `wait_for` and the other timeouts, `shield`, `task_group`) and async
/// generators. A lighter include than <corio/corio.hpp>, which adds the network, files,
/// subprocesses, signals, the executor, the synchronisation primitives and the debug views.

#include "corio/as_completed.hpp"
#include "corio/async_generator.hpp"
#include "corio/coro.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/gather.hpp"
#include "corio/optional_ref.hpp"
#include "corio/outcome.hpp"
#include "corio/race.hpp"
#include "corio/run.hpp"
#include "corio/shield.hpp"
#include "corio/sleep.hpp"
#include "corio/task.hpp"
#include "corio/task_group.hpp"
#include "corio/task_options.hpp"
#include "corio/timeout.hpp"
#include "corio/wait.hpp"
