#pragma once
/// \file
/// Include this in one file of a program to have every loop's deadlock reports
/// (`deadlock_error::what()`) and `run`'s `dump_on_signal` dumps show the call graph: each
/// pending task's await chain, `file:line in function` per suspension point, as
/// `format_call_graph()` writes it. Without it they name each waiting task and what it waits
/// for, and say how to get the rest.
///
/// It is a separate header, not part of <corio/corio.hpp>, because the file that includes it
/// compiles the whole call-graph writer (a large part of what `#include <corio/corio.hpp>`
/// takes to compile), which only these reports need. Once in a program is enough.

#include "corio/impl/call_graph_writer.hpp"

namespace corio::detail {

// Lent before `main`, during this file's dynamic initialisation.
inline const bool call_graph_writer_installed = (install_call_graph_writer(), true);

}  // namespace corio::detail
