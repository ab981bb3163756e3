#pragma once
/// \file
/// Seeing inside a running program: `format_call_graph()` and `dump_tasks()` show every pending
/// task of the loop, what it awaits and where (asyncio 3.14's `format_call_graph`, for all
/// tasks). How the graph is read from the coroutine frames: impl/call_graph_writer.hpp.
///
/// The loop's deadlock reports and `run`'s `dump_on_signal` dumps show the same graph in a
/// program one of whose files includes <corio/debug/report_call_graphs.hpp>; otherwise they
/// name each waiting task and what it waits for.

#include "corio/event_loop.hpp"
#include "corio/impl/call_graph_writer.hpp"

#include <cstdio>
#include <ostream>
#include <string>

namespace corio {

/// Every pending task of the running loop, with its name, its await chain (`file:line in
/// function` per suspension point, outermost first) and what it waits for; tasks awaited by
/// another task (directly or through `gather`) appear under it. Throws `std::runtime_error`
/// when no loop runs.
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
[[nodiscard]] inline std::string format_call_graph() {
    return detail::format_call_graph_of(get_running_loop());
}

/// Writes `format_call_graph()` to `out`.
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
inline void dump_tasks(std::ostream& out) {
    out << format_call_graph() << std::flush;
}

/// Writes `format_call_graph()` to stderr (without <iostream>, which would be every user's).
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
inline void dump_tasks() {
    const std::string graph = format_call_graph();
    std::fputs(graph.c_str(), stderr);
    std::fflush(stderr);
}

}  // namespace corio
