# shellcheck shell=bash
# Shared helpers for scripts/test.sh and scripts/examples.sh (sourced, not run).

# Debian packages the build, the tests, the examples and the benchmarks need.
CORIO_DEB_PACKAGES=(cmake ninja-build g++ clang clang-16 clang-19 pkg-config liburing-dev catch2 libbenchmark-dev python3
    curl wrk libasio-dev time clang-format-19 libssl-dev openssl)

corio_banner() {
    printf '\n==================== %s ====================\n' "$*"
}

corio_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# True when Debian package $1 is installed (not merely known to dpkg).
corio_deb_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

# Installs whichever of CORIO_DEB_PACKAGES is missing, when running as root on a system
# with apt-get; otherwise only says what is missing and carries on (the tools may come
# from elsewhere).
corio_install_deps() {
    if ! command -v dpkg >/dev/null 2>&1; then
        echo "corio: not a Debian system; make sure these are installed: ${CORIO_DEB_PACKAGES[*]}"
        return 0
    fi
    local missing=() pkg
    for pkg in "${CORIO_DEB_PACKAGES[@]}"; do
        corio_deb_installed "$pkg" || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "corio: missing packages: ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
        return 0
    fi
    corio_banner "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# Uses ccache when it is there; harmless when it is not.
corio_launcher_args() {
    if command -v ccache >/dev/null 2>&1; then
        printf '%s\n' "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
    fi
}

# -DCORIO_WERROR=ON when the environment says CORIO_WERROR=1 (scripts/test.sh and CI),
# -DCORIO_WERROR=OFF otherwise: a user's build shows warnings and never fails on one.
corio_werror_arg() {
    if [[ ${CORIO_WERROR:-0} == 1 ]]; then
        printf '%s\n' "-DCORIO_WERROR=ON"
    else
        printf '%s\n' "-DCORIO_WERROR=OFF"
    fi
}

# corio_configure <source-dir> <build-dir> [cmake args...]: configures a Ninja build (with
# warnings as errors or not, as corio_werror_arg says; an argument can still override it).
corio_configure() {
    local src=$1 dir=$2
    shift 2
    local launcher=()
    mapfile -t launcher < <(corio_launcher_args)
    cmake -S "$src" -B "$dir" -G Ninja "${launcher[@]}" "$(corio_werror_arg)" "$@"
}

# corio_readme_program <program.cpp> [<output.txt>]: writes the README's opening program (its
# first ```cpp block) and, when asked, the output it shows (the first ```text block after it).
corio_readme_program() {
    python3 - "$@" <<'PY'
import pathlib, re, sys
text = pathlib.Path("README.md").read_text(encoding="utf-8")
program = re.search(r"^```cpp\n(.*?)^```", text, re.S | re.M)
if not program:
    sys.exit("README.md: no ```cpp block")
pathlib.Path(sys.argv[1]).write_text(program.group(1), encoding="utf-8")
if len(sys.argv) > 2:
    output = re.compile(r"^```text\n(.*?)^```", re.S | re.M).search(text, program.end())
    if not output:
        sys.exit("README.md: no ```text block with the output after the opening program")
    pathlib.Path(sys.argv[2]).write_text(output.group(1), encoding="utf-8")
PY
}
