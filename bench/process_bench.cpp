// Benchmarks of subprocesses (include/corio/system/process.hpp): spawn + wait of /bin/true, one at
// a time and 16 at once, and spawn + communicate of `echo` through a pipe; items_per_second is
// children per second. The loop runs on the backend CORIO_BACKEND names (io_uring when the
// kernel allows it, by default); the backend's name is in the label. A blocking posix_spawn +
// waitpid loop without corio is the baseline: the cost of the kernel's fork and exec, which
// dominate.

#include <corio/corio.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>

extern char** environ;  // NOLINT: POSIX declares it nowhere

namespace {

std::unique_ptr<corio::event_loop> make_loop(benchmark::State& state) {
    auto loop = corio::new_event_loop();
    state.SetLabel(std::string(loop->backend_name()));
    return loop;
}

corio::coro<> spawn_and_wait(const std::string& program) {
    corio::process p = co_await corio::create_subprocess_exec(program);
    const int code = co_await p.wait();
    if (code != 0) throw std::runtime_error(program + " failed");
}

corio::coro<> one_at_a_time(benchmark::State& state) {
    const std::string program = "/bin/true";
    for (auto _ : state) co_await spawn_and_wait(program);
}

// spawn + wait of /bin/true, one child at a time.
void spawn_wait_true(benchmark::State& state) {
    auto loop = make_loop(state);
    loop->run_until_complete(one_at_a_time(state));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(spawn_wait_true)->UseRealTime()->Unit(benchmark::kMicrosecond);

corio::coro<> batches(benchmark::State& state, int batch) {
    const std::string program = "/bin/true";
    for (auto _ : state) {
        std::vector<corio::coro<>> children;
        children.reserve(static_cast<std::size_t>(batch));
        for (int i = 0; i < batch; ++i) children.push_back(spawn_and_wait(program));
        co_await corio::gather(std::move(children));
    }
}

// spawn + wait of /bin/true, `batch` children running at once.
void spawn_wait_true_concurrent(benchmark::State& state) {
    auto loop = make_loop(state);
    const auto batch = static_cast<int>(state.range(0));
    loop->run_until_complete(batches(state, batch));
    state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(spawn_wait_true_concurrent)->Arg(16)->UseRealTime()->Unit(benchmark::kMicrosecond);

corio::coro<> echoes(benchmark::State& state) {
    const std::vector<std::string> args{"hello"};
    for (auto _ : state) {
        corio::process p =
            co_await corio::create_subprocess_exec("/bin/echo", args, {.stdout_ = corio::pipe});
        corio::communicate_result r = co_await p.communicate();
        if (r.out != "hello\n") throw std::runtime_error("echo said " + r.out);
    }
}

// spawn of /bin/echo with its stdout piped, read to the end, then wait.
void spawn_communicate_echo(benchmark::State& state) {
    auto loop = make_loop(state);
    loop->run_until_complete(echoes(state));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(spawn_communicate_echo)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The baseline: posix_spawn + a blocking waitpid, no loop.
void spawn_wait_true_blocking_baseline(benchmark::State& state) {
    char program[] = "/bin/true";
    char* argv[] = {program, nullptr};
    for (auto _ : state) {
        pid_t pid = -1;
        if (const int rc = ::posix_spawn(&pid, program, nullptr, nullptr, argv, environ); rc != 0) {
            throw std::system_error(rc, std::system_category(), "posix_spawn");
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
    }
    state.SetLabel("no loop");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(spawn_wait_true_blocking_baseline)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
