// One include for the tests, whichever Catch2 is installed: v3 (<catch2/catch_all.hpp>) or
// v2 (<catch2/catch.hpp>, Debian 12). The build says which one it links through
// CORIO_CATCH2_V3 / CORIO_CATCH2_V2; without either, the first header found wins.
//
// CORIO_SKIP(message) ends the current test case as skipped where Catch2 can (v3.3+), and
// as passed with a warning on v2, which cannot skip (e.g. when the kernel forbids io_uring).
#pragma once

#if defined(CORIO_CATCH2_V3) || (!defined(CORIO_CATCH2_V2) && __has_include(<catch2/catch_all.hpp>))
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

#if defined(SKIP)
#define CORIO_SKIP(message) SKIP(message)
#else
#define CORIO_SKIP(message)                                                                        \
    do {                                                                                           \
        WARN("skipped: " << message);                                                              \
        return;                                                                                    \
    } while (false)
#endif
