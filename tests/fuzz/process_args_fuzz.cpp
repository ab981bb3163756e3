// Fuzzes how corio hands strings to a child (include/corio/system/process.hpp): the program,
// its arguments, its environment and its working directory, which `detail::spawn` turns into
// the C strings of posix_spawnp. There is no pure function to call (the argv and envp arrays
// are built inside `spawn`), so each input starts real children, small coreutils ones that
// write back what they were given:
//   /usr/bin/printf '%s\0' ARGS... end   writes each argument NUL-terminated, then "end"
//   /usr/bin/env -0                      writes each environment entry NUL-terminated
//
// The input is lines; a line is an argument, except
//   env:TEXT   an environment entry "FUZZ_TEXT" (the prefix keeps LD_PRELOAD and friends away
//              from the dynamic loader); with any, the child gets these and nothing else
//   cwd:PATH   the child's working directory
//   prog:TEXT  TEXT is appended to the program's path (a NUL there must be refused; anything
//              else names a program that does not exist; one that does is not run)
// Properties:
//   - a NUL inside the program, an argument, an environment entry or the directory is refused
//     with `std::invalid_argument` (the exception of "a bad option"), and no child starts: a C
//     string would silently end there, and the child would run with other strings than given;
//   - otherwise the child gets exactly the arguments and the environment given, in order;
//   - a program or a directory that cannot be used is `std::system_error`, exactly when the
//     file system says so; nothing else is thrown, nothing crashes.
#include <corio/event_loop.hpp>
#include <corio/run.hpp>
#include <corio/system/process.hpp>

#include "fuzz_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace {

// Few children per input, and small ones: the fuzzer spends its time in corio, not in exec.
constexpr std::size_t max_arguments = 64;
constexpr std::size_t max_environment = 32;

constexpr std::string_view printf_path = "/usr/bin/printf";
constexpr std::string_view env_path = "/usr/bin/env";

struct request {
    std::string program_suffix;
    std::vector<std::string> arguments;
    std::optional<std::vector<std::string>> environment;
    std::string cwd;
};

request parse(std::string_view input) {
    request r;
    if (input.empty()) return r;
    for (;;) {
        const std::size_t newline = input.find('\n');
        const std::string_view line = input.substr(0, newline);
        if (line.starts_with("env:")) {
            if (!r.environment) r.environment.emplace();
            if (r.environment->size() < max_environment) {
                r.environment->push_back("FUZZ_" + std::string(line.substr(4)));
            }
        } else if (line.starts_with("cwd:")) {
            r.cwd = line.substr(4);
        } else if (line.starts_with("prog:")) {
            r.program_suffix = line.substr(5);
        } else if (r.arguments.size() < max_arguments) {
            r.arguments.emplace_back(line);
        }
        if (newline == std::string_view::npos) return r;
        input.remove_prefix(newline + 1);
    }
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

using corio_fuzz::escaped;

[[noreturn]] void fail(const std::string& what) { corio_fuzz::fail("process_args_fuzz", what); }

// What a child wrote as NUL-terminated strings, one string each.
std::vector<std::string> split_nul_terminated(std::string_view output) {
    std::vector<std::string> parts;
    while (!output.empty()) {
        const std::size_t nul = output.find('\0');
        if (nul == std::string_view::npos)
            fail("child output not NUL-terminated: " + escaped(output));
        parts.emplace_back(output.substr(0, nul));
        output.remove_prefix(nul + 1);
    }
    return parts;
}

// Whether the child may start in `cwd`, as chdir would say.
bool usable_directory(const std::string& cwd) {
    if (cwd.empty()) return true;
    struct stat info{};
    return ::stat(cwd.c_str(), &info) == 0 && S_ISDIR(info.st_mode) &&
           ::access(cwd.c_str(), X_OK) == 0;
}

struct run_result {
    enum class kind : char { ran, invalid_argument, system_error } what = kind::ran;
    int returncode = 0;
    corio::communicate_result output;
};

corio::coro<run_result> run(std::string program, std::vector<std::string> args,
                            corio::subprocess_options options) {
    run_result result;
    try {
        corio::process child =
            co_await corio::create_subprocess_exec(std::move(program), std::move(args), options);
        result.output = co_await child.communicate();
        result.returncode = co_await child.wait();
    } catch (const std::invalid_argument&) {
        result.what = run_result::kind::invalid_argument;
    } catch (const std::system_error&) {
        result.what = run_result::kind::system_error;
    }
    co_return result;
}

corio::event_loop& shared_loop() {
    static const std::unique_ptr<corio::event_loop> loop =
        corio::new_event_loop({.backend = corio::backend::epoll});
    return *loop;
}

// Starts `program` with `args` as `r` says and checks how it went; the child's output when it
// ran (and was the program asked for).
std::optional<std::string> start(const request& r, std::string_view program,
                                 std::vector<std::string> args) {
    const std::string path = std::string(program) + r.program_suffix;
    corio::subprocess_options options;
    options.stdout_ = corio::pipe;
    options.stderr_ = corio::pipe;
    options.cwd = r.cwd;
    if (r.environment) options.env = std::span<const std::string>(*r.environment);

    bool invalid = has_nul(path) || has_nul(r.cwd);
    for (const std::string& a : args) invalid = invalid || has_nul(a);
    if (r.environment) {
        for (const std::string& e : *r.environment) invalid = invalid || has_nul(e);
    }
    // A suffix that names a file that exists (/usr/bin/env + "subst") would run a program this
    // fuzzer knows nothing about: not that.
    if (!r.program_suffix.empty() && !has_nul(path) && ::access(path.c_str(), F_OK) == 0) {
        return std::nullopt;
    }
    const run_result result = shared_loop().run_until_complete(run(path, args, options));
    const std::string what = "'" + escaped(path) + "' in '" + escaped(r.cwd) + "'";
    if (invalid) {
        if (result.what != run_result::kind::invalid_argument) {
            fail(what +
                 ": strings with a NUL in them were not refused with std::invalid_argument (" +
                 (result.what == run_result::kind::ran ? "the child ran" : "std::system_error") +
                 ')');
        }
        return std::nullopt;
    }
    if (result.what == run_result::kind::invalid_argument)
        fail(what + ": std::invalid_argument without a NUL");
    // Only the program asked for exists; a suffix names a file that does not.
    const bool runnable = r.program_suffix.empty() && usable_directory(r.cwd);
    if (result.what == run_result::kind::system_error) {
        if (runnable) fail(what + ": std::system_error for a program that can run");
        return std::nullopt;
    }
    if (!runnable) fail(what + ": started, but the program or the directory is not usable");
    if (result.returncode != 0 || !result.output.err.empty()) {
        fail(what + ": the child failed (" + std::to_string(result.returncode) +
             "): " + escaped(result.output.err));
    }
    return result.output.out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const request r = parse(std::string_view(reinterpret_cast<const char*>(data), size));
    try {
        std::vector<std::string> args;
        args.reserve(r.arguments.size() + 2);
        args.emplace_back("%s\\0");
        args.insert(args.end(), r.arguments.begin(), r.arguments.end());
        args.emplace_back("end");
        if (const std::optional<std::string> out = start(r, printf_path, args)) {
            std::vector<std::string> expected = r.arguments;
            expected.emplace_back("end");
            if (split_nul_terminated(*out) != expected) {
                fail("argv did not round-trip: the child wrote " + escaped(*out));
            }
        }
        if (r.environment) {
            if (const std::optional<std::string> out = start(r, env_path, {"-0"})) {
                if (split_nul_terminated(*out) != *r.environment) {
                    fail("the environment did not round-trip: the child wrote " + escaped(*out));
                }
            }
        }
    } catch (const std::exception& e) {
        fail(std::string("unexpected exception: ") + e.what());
    }
    return 0;
}
