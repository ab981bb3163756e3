// main() for the Catch2 v2 test executables, compiled once (Catch2 v3 brings its own).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
