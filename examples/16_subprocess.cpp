// 16_subprocess: running other programs, reading their output, feeding their input.
//
// Beyond the note. asyncio's `create_subprocess_exec` starts a program without a shell and
// hands back a `Process`; corio's is the same:
//
// - `co_await corio::create_subprocess_exec(program, args, options)` starts `program` with its
//   arguments (no shell: `$HOME` or `*` reach it as they are) and yields a `corio::process`;
//   `options` says where its stdin, stdout and stderr go (`corio::pipe`, `corio::devnull`,
//   `corio::stdout_` for stderr, or the parent's by default);
// - `p.stdout_pipe()` is a `corio::stream_reader` over the pipe: read a line as it comes, or
//   everything up to the end;
// - `co_await p.communicate(input)` writes `input` to stdin, reads stdout and stderr to their
//   end, all at once (no deadlock however much goes each way), and waits for the exit;
// - `co_await p.wait()` is the exit code; a child killed by a signal gives minus the signal's
//   number (here a `sleep` killed after a timeout);
// - a program that does not exist is a `std::system_error` at once, not a child exiting 127.
//
// The children run concurrently with the loop: the loop waits for them through the reactor,
// like for any other I/O.

#include <corio/corio.hpp>

#include <chrono>
#include <csignal>
#include <iostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

// A program's output, line by line, as it comes.
corio::coro<> list_lines() {
    const std::vector<std::string> args{"-c", "for i in 1 2 3; do echo line $i; done; exit 3"};
    corio::process p = co_await corio::create_subprocess_exec("sh", args, {.stdout_ = corio::pipe});
    int lines = 0;
    for (;;) {
        std::string line = co_await p.stdout_pipe().readline();
        if (line.empty()) break;  // end of the output
        std::cout << "  read: " << line;
        ++lines;
    }
    const int code = co_await p.wait();
    std::cout << "sh (pid " << p.pid() << ") exited with " << code << '\n';
    expect(lines == 3 && code == 3, "three lines, then exit code 3");
}

// Input in, output out: sort some words with sort(1).
corio::coro<> sort_words() {
    corio::process sort = co_await corio::create_subprocess_exec(
        "sort", {}, {.stdin_ = corio::pipe, .stdout_ = corio::pipe});
    auto [out, err] = co_await sort.communicate("pear\napple\nfig\n");
    std::cout << "sort says:\n" << out;
    expect(out == "apple\nfig\npear\n", "sort sorts");
    expect(sort.returncode() == 0, "sort succeeds");
}

// A child that takes too long: a timeout, then kill.
corio::coro<> too_slow() {
    const std::vector<std::string> args{"10"};
    corio::process sleeper = co_await corio::create_subprocess_exec("sleep", args);
    try {
        co_await corio::wait_for(sleeper.wait(), 100ms);
    } catch (const corio::timeout_error&) {
        std::cout << "sleep 10 is too slow: killed\n";
        sleeper.kill();
    }
    const int code = co_await sleeper.wait();
    std::cout << "its return code: " << code << " (minus SIGKILL)\n";
    expect(code == -SIGKILL, "a killed child's return code is minus the signal's number");
}

corio::coro<> async_main() {
    co_await list_lines();
    co_await sort_words();
    co_await too_slow();

    try {
        (void)co_await corio::create_subprocess_exec("no-such-program-here");
        expect(false, "a missing program is an error");
    } catch (const std::system_error& e) {
        std::cout << "a missing program: " << e.what() << '\n';
        expect(e.code() == std::errc::no_such_file_or_directory, "ENOENT");
    }
}

}  // namespace

int main() { corio::run(async_main()); }
