#!/usr/bin/env bash
# Builds every example in Release (build/examples) and runs them all in order.
#   bash scripts/examples.sh
# Warnings are shown, not fatal; CORIO_WERROR=1 makes them errors (as CI does).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

corio_install_deps

corio_banner "examples: configure (Release)"
corio_configure . build/examples -DCMAKE_BUILD_TYPE=Release \
    -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_BENCHMARKS=OFF -DCORIO_BUILD_EXAMPLES=ON
corio_banner "examples: build"
cmake --build build/examples
corio_banner "examples: run"
cmake --build build/examples --target run_examples
