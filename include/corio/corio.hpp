#pragma once
/// \file
/// Everything corio offers. Include this, or the one header of what you use.

#include "corio/as_completed.hpp"
#include "corio/config.hpp"
#include "corio/coro.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/gather.hpp"
#include "corio/outcome.hpp"
#include "corio/reactor/epoll.hpp"
#include "corio/reactor/reactor.hpp"
#include "corio/reactor/uring.hpp"
#include "corio/run.hpp"
#include "corio/shield.hpp"
#include "corio/sleep.hpp"
#include "corio/task.hpp"
#include "corio/task_group.hpp"
#include "corio/timeout.hpp"
#include "corio/wait.hpp"
