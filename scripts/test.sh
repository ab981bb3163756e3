#!/usr/bin/env bash
# Builds and runs the whole test suite, as CI does:
#   first the documentation (the README's commands are .ci/run's, its program compiles with a
#   plain g++ line and prints what it says, the examples' READMEs show code of the examples)
#   and the house (the layering of include/, clang-format);
#   then clang++ Release, clang++-16 Debug and clang++-19 Release (the tests), g++ Debug with
#   ASan+UBSan, g++ TSan (thread-safety tests only),
#   g++ Debug without liburing, all -Werror: each configured, built and tested with
#   ctest (every test on every backend; in clang-release and gcc-asan the I/O tests again
#   under injected faults);
#   after them header self-containment, the examples (and curl against the HTTP one), the
#   benchmarks and the echo benchmark (briefly), the fuzzers (briefly), a half-minute soak per
#   backend, corio used through find_package, pkg-config (installed) and add_subdirectory,
#   and the compile time of the README program.
#
#   bash scripts/test.sh                     # everything
#   CORIO_TEST_QUICK=1 bash scripts/test.sh  # g++ Debug build + ctest only
#   CORIO_WERROR=0 bash scripts/test.sh      # warnings not fatal (they are by default here)
#
# Build trees go to build/ci-<name> and are reused by the next run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# The project's own discipline: every warning of every build here is an error.
export CORIO_WERROR=${CORIO_WERROR:-1}

corio_install_deps

STAGES=()
tmp=""
on_exit() {
    local rc=$?
    if [[ -n $tmp ]]; then
        rm -rf "$tmp"
    fi
    if [[ $rc -ne 0 && ${#STAGES[@]} -gt 0 ]]; then
        printf '\ncorio: FAILED (exit %s) in stage: %s\n' "$rc" "${STAGES[-1]}" >&2
    fi
}
trap on_exit EXIT

stage_started=0
stage() {
    stage_done
    STAGES+=("$*")
    stage_started=$SECONDS
    corio_banner "$*"
}
STAGE_TIMES=()
stage_done() {
    if [[ ${#STAGES[@]} -gt ${#STAGE_TIMES[@]} ]]; then
        STAGE_TIMES+=("$((SECONDS - stage_started))")
    fi
}
summary() {
    stage_done
    corio_banner "summary"
    local i
    for i in "${!STAGES[@]}"; do
        printf '  ok %5ss  %s\n' "${STAGE_TIMES[$i]}" "${STAGES[$i]}"
    done
}

# build_and_test <name> [cmake args...]: configure build/ci-<name>, build it, run ctest.
build_and_test() {
    local name=$1
    shift
    local dir="build/ci-$name"
    stage "$name: configure"
    corio_configure . "$dir" "$@"
    stage "$name: build"
    cmake --build "$dir"
    stage "$name: test"
    ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2
}

# The documentation first: quick, and what a new user meets before any test.
stage "README: .ci/run runs the README's two commands as the README spells them"
bash scripts/check_readme_commands.sh
stage "docs: every C++ block of the examples' READMEs is code of an example"
python3 scripts/check_docs.py
stage "README program: a plain compiler line builds it; it prints what the README says"
bash scripts/check_readme_program.sh g++ clang++

stage "house: which folder of include/ includes which, and no header over 700 lines"
python3 scripts/check_layering.py
stage "house: include/ tests/ examples/ bench/ formatted as .clang-format says"
bash scripts/check_format.sh

# The quick run is g++ Debug alone, everything built and tested. In the full suite the tests
# are built with g++ Debug twice anyway, with -Werror like every build here: in gcc-asan (which
# also builds and runs the examples) and in gcc-no-uring (no sanitizer; epoll). So gcc-debug is
# only configured there: its build tree checks that each header compiles on its own and is
# what the consumer projects install.
if [[ ${CORIO_TEST_QUICK:-0} == 1 ]]; then
    build_and_test gcc-debug -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug
    summary
    echo "CORIO_TEST_QUICK=1: g++ Debug only; run without it for the full suite."
    exit 0
fi
stage "gcc-debug: configure (the headers' checks and the install; tests in gcc-asan, gcc-no-uring)"
corio_configure . build/ci-gcc-debug -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug \
    -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF -DCORIO_BUILD_BENCHMARKS=OFF

# Both builds below also run the I/O tests under injected faults (tests/CMakeLists.txt,
# CORIO_TEST_FAULT_SEEDS), each with its own seeds; a failure names its seed.
build_and_test clang-release -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release \
    -DCORIO_TEST_FAULT_SEEDS="1;2"

# The newer clangs of Debian 12 (README: "clang 14/16/19"), the tests alone: clang 16 in Debug,
# clang 19 in Release, so that each compiler meets both optimisation levels between them and the
# clang 14 build above.
build_and_test clang16-debug -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_BUILD_TYPE=Debug \
    -DCORIO_BUILD_EXAMPLES=OFF -DCORIO_BUILD_BENCHMARKS=OFF
build_and_test clang19-release -DCMAKE_CXX_COMPILER=clang++-19 -DCMAKE_BUILD_TYPE=Release \
    -DCORIO_BUILD_EXAMPLES=OFF -DCORIO_BUILD_BENCHMARKS=OFF

# with_sanitizer_options <command...>: runs it with the sanitizers' run-time options.
with_sanitizer_options() {
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$@"
}

# The benchmarks are built with g++ in gcc-no-uring below (run, briefly, from clang-release):
# instrumented, they would cost this build more than any other target.
with_sanitizer_options build_and_test gcc-asan -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug \
    -DCORIO_SANITIZE=address,undefined -DCORIO_TEST_FAULT_SEEDS="3" -DCORIO_BUILD_BENCHMARKS=OFF

# ThreadSanitizer, on the thread-safety tests only (tests/*threadsafe*_test.cpp and
# tests/<folder>/*threadsafe*_test.cpp, `ctest -R threadsafe`): only those targets are built. On kernels with more ASLR entropy than TSan
# expects (vm.mmap_rnd_bits above 28), TSan binaries die at start-up with "unexpected memory
# mapping": the tests then run with address randomisation off (setarch -R).
stage "tsan: configure"
corio_configure . build/ci-tsan -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug \
    -DCORIO_SANITIZE=thread
stage "tsan: build (thread-safety tests)"
tsan_targets=()
for source in tests/*threadsafe*_test.cpp tests/*/*threadsafe*_test.cpp; do
    [[ -e $source ]] || continue
    # The target's name, as tests/CMakeLists.txt makes it: <folder>_<name>, or the name alone
    # at the top or when it already starts with its folder's.
    name=$(basename "$source" .cpp)
    folder=$(basename "$(dirname "$source")")
    if [[ $folder != tests && $name != "${folder}_"* ]]; then name="${folder}_${name}"; fi
    tsan_targets+=("$name")
done
[[ ${#tsan_targets[@]} -gt 0 ]] || corio_die "no tests/*threadsafe*_test.cpp for the tsan stage"
cmake --build build/ci-tsan --target "${tsan_targets[@]}"
stage "tsan: test (ctest -R threadsafe)"
tsan_run=()
tsan_probe=$("build/ci-tsan/tests/${tsan_targets[0]}" --list-tests 2>&1 >/dev/null || true)
if [[ $tsan_probe == *"unexpected memory mapping"* ]]; then
    echo "corio: TSan cannot map its shadow memory with ASLR on here; running with setarch -R"
    tsan_run=(setarch "$(uname -m)" -R)
fi
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    "${tsan_run[@]}" ctest --test-dir build/ci-tsan -R threadsafe --output-on-failure \
    --no-tests=error -j2

build_and_test gcc-no-uring -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug -DCORIO_NO_URING=ON \
    -DCORIO_BUILD_EXAMPLES=OFF

stage "headers: each one compiles on its own (with io_uring)"
cmake --build build/ci-gcc-debug --target all_verify_interface_header_sets
# Without liburing, only the headers that test CORIO_HAS_URING differ; each of them (and
# corio.hpp, which includes them all) compiles on its own with the no-uring build's flags.
stage "headers: those that differ without liburing compile on their own (epoll only)"
for header in $(grep -rl CORIO_HAS_URING include/corio) include/corio/corio.hpp; do
    echo "${header#include/}"
    printf '#include <%s>\n' "${header#include/}" |
        g++ -std=c++20 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -Iinclude -x c++ -
done

# Under ASan and UBSan, so that an example that leaks or misbehaves fails here.
stage "examples (gcc-asan)"
with_sanitizer_options cmake --build build/ci-gcc-asan --target run_examples

stage "examples: curl against 15_http_hello (gcc-asan)"
with_sanitizer_options bash scripts/check_http_example.sh \
    build/ci-gcc-asan/examples/example_15_http_hello

stage "benchmarks, briefly (clang-release)"
cmake --build build/ci-clang-release --target run_benchmarks_briefly

stage "echo benchmark, briefly (clang-release): plain C epoll vs corio on both backends"
cmake --build build/ci-clang-release --target run_echo_benchmark_briefly

stage "TLS echo benchmark, briefly (clang-release): plain C OpenSSL vs corio on both backends"
cmake --build build/ci-clang-release --target run_tls_echo_benchmark_briefly

stage "fuzzers, briefly (clang++ libFuzzer, ASan+UBSan): each for 10 s over its corpus"
CORIO_FUZZ_SECONDS=10 bash scripts/fuzz.sh

stage "soak: an echo server under churning clients, half a minute per backend"
bash scripts/soak.sh 0.5

tmp=$(mktemp -d)

for variant in gcc-debug gcc-no-uring; do
    stage "install ($variant) and build tests/consumer with find_package"
    cmake --install "build/ci-$variant" --prefix "$tmp/$variant"
    corio_configure tests/consumer "build/ci-consumer-$variant" \
        -DCMAKE_PREFIX_PATH="$tmp/$variant" -DCMAKE_BUILD_TYPE=Debug
    cmake --build "build/ci-consumer-$variant"
    "build/ci-consumer-$variant/app"
    # corio::corio never links OpenSSL; corio::tls does, when the install has TLS.
    if ldd "build/ci-consumer-$variant/app" | grep -q libssl; then
        corio_die "tests/consumer's app (corio::corio) links libssl"
    fi
    if [[ -e /usr/include/openssl/ssl.h ]]; then
        [[ -x "build/ci-consumer-$variant/tls_app" ]] ||
            corio_die "OpenSSL is installed, but the install has no corio::tls"
        "build/ci-consumer-$variant/tls_app"
    fi

    # The same program without CMake, through the installed corio.pc: with io_uring when
    # the install has it (the app then asks for io_uring explicitly, so a lost -luring or
    # CORIO_HAS_URING fails here), epoll otherwise.
    stage "install ($variant): tests/consumer with a plain g++ line and pkg-config"
    expected_backend=io_uring
    [[ $variant == *no-uring* ]] && expected_backend=epoll
    pc_file=$(find "$tmp/$variant" -name corio.pc -print -quit)
    [[ -n $pc_file ]] || corio_die "cmake --install put no corio.pc under $tmp/$variant"
    pc_flags=$(PKG_CONFIG_PATH="$(dirname "$pc_file")" pkg-config --cflags --libs corio)
    echo "pkg-config --cflags --libs corio: $pc_flags"
    # shellcheck disable=SC2086 # pkg-config's output is a list of flags
    g++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -Werror tests/consumer/main.cpp \
        -o "$tmp/pkg-config-app" $pc_flags
    "$tmp/pkg-config-app" "$expected_backend"
done

# The Debian package, installed as a user would: apt-get installs it (and what it depends
# on), the consumer project finds it in /usr, and it is removed again.
stage "Debian package: cpack -G DEB makes libcorio-dev; apt-get installs it; tests/consumer builds against it"
(cd build/ci-gcc-debug && cpack -G DEB -B "$tmp/deb")
deb=$(find "$tmp/deb" -maxdepth 1 -name 'libcorio-dev_*.deb' -print -quit)
[[ -n $deb ]] || corio_die "cpack made no libcorio-dev_*.deb"
dpkg-deb --info "$deb"
if [[ $(id -u) -ne 0 ]]; then
    echo "corio: not root, so the package is not installed (CI runs this stage as root)"
elif dpkg -s libcorio-dev > /dev/null 2>&1; then
    corio_die "libcorio-dev is installed already: remove it first (apt-get remove libcorio-dev)"
else
    apt-get install -y -q "$deb"
    corio_configure tests/consumer build/ci-consumer-deb -DCMAKE_BUILD_TYPE=Debug \
        -Dcorio_DIR=/usr/lib/cmake/corio
    cmake --build build/ci-consumer-deb
    build/ci-consumer-deb/app
    [[ ! -e /usr/include/openssl/ssl.h ]] || build/ci-consumer-deb/tls_app
    # shellcheck disable=SC2046 # pkg-config's output is a list of flags
    g++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -Werror tests/consumer/main.cpp \
        -o "$tmp/deb-pkg-config-app" $(pkg-config --cflags --libs corio)
    "$tmp/deb-pkg-config-app" io_uring
    apt-get remove -y -q libcorio-dev
fi

stage "tests/subdirectory: corio through add_subdirectory"
corio_configure tests/subdirectory build/ci-subdirectory -DCMAKE_BUILD_TYPE=Debug
cmake --build build/ci-subdirectory
build/ci-subdirectory/app

stage "compile time: the README program, <corio/core.hpp> and <corio/corio.hpp>, next to <asio.hpp>"
# Best of 3: the ceilings are ratios to asio's time, and a single run on a loaded machine swings.
bash scripts/compile_time.sh 3

summary
echo "corio: every stage passed."
