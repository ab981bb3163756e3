// What every benchmark of corio's needs: the backends this kernel allows, and a loop on one.
#pragma once

#include <corio/run.hpp>

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace corio_bench {

/// Each backend the kernel allows, with the suffix its benchmarks' names get ("/epoll",
/// "/io_uring"); io_uring is left out where the kernel forbids it.
inline std::vector<std::pair<std::string, corio::backend>> available_backends() {
    std::vector<std::pair<std::string, corio::backend>> backends{{"/epoll", corio::backend::epoll}};
    try {
        (void)corio::new_event_loop({.backend = corio::backend::io_uring});
        backends.emplace_back("/io_uring", corio::backend::io_uring);
    } catch (const std::system_error&) {
    }
    return backends;
}

/// A new loop on `backend`, whose name becomes the benchmark's label.
inline std::unique_ptr<corio::event_loop> make_loop(benchmark::State& state,
                                                    corio::backend backend) {
    auto loop = corio::new_event_loop({.backend = backend});
    state.SetLabel(std::string(loop->backend_name()));
    return loop;
}

}  // namespace corio_bench
