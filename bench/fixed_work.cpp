// Fixed work for instruction counts: the hot paths the debugging hooks touch, run a fixed
// number of times so that callgrind's totals compare across builds (timings on a shared VM do
// not). Not a google benchmark, and not run by CI:
//
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null build/bench/fixed_work await 1000000
//
// Total instructions / 1000000 = instructions per `co_await` of a trivial coro; `task N`
// spawns and awaits N trivial tasks, `switch N` yields N times with `sleep(0s)`.

#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

corio::coro<int> leaf(int x) { co_return x + 1; }

corio::coro<long> awaits(int n) {
    long sum = 0;
    for (int i = 0; i < n; ++i) sum += co_await leaf(i);
    co_return sum;
}

corio::coro<long> spawns(int n) {
    long sum = 0;
    corio::event_loop& loop = corio::get_running_loop();
    for (int i = 0; i < n; ++i) {
        auto t = loop.create_task(leaf(i));
        sum += co_await t;
    }
    co_return sum;
}

corio::coro<long> switches(int n) {
    for (int i = 0; i < n; ++i) co_await corio::sleep(std::chrono::seconds(0));
    co_return n;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string_view what = argc > 1 ? argv[1] : "await";
    const int n = argc > 2 ? std::atoi(argv[2]) : 1000000;
    long result = 0;
    if (what == "await") {
        result = corio::run(awaits(n));
    } else if (what == "task") {
        result = corio::run(spawns(n));
    } else if (what == "switch") {
        result = corio::run(switches(n));
    } else {
        std::fprintf(stderr, "usage: fixed_work await|task|switch [count]\n");
        return 2;
    }
    std::printf("%ld\n", result);
}
