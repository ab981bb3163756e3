#pragma once
/// \file
/// `corio::unique_fd`: a file descriptor that closes itself (defined on the ground floor, in
/// detail/unique_fd.hpp, because the reactors below everything else own descriptors too).

#include "corio/detail/unique_fd.hpp"
