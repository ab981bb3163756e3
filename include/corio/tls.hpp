#pragma once
/// \file
/// TLS (asyncio's `ssl=`): `tls_context`, with `open_connection` / `start_server` /
/// `stream_writer::start_tls` to use it. Needs OpenSSL 3: link `corio::tls` (CMake), or add
/// `-lssl -lcrypto`. <corio/corio.hpp> includes it when `CORIO_HAS_TLS` is defined (as
/// `corio::tls` defines it).

#include "corio/net/connection.hpp"
#include "corio/net/server.hpp"
#include "corio/net/stream.hpp"
#include "corio/net/tls_context.hpp"
#include "corio/net/tls_options.hpp"
