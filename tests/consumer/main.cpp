// The smallest corio program: used by tests/consumer, tests/subdirectory and the pkg-config
// check. `app io_uring` (or `app epoll`) asks for that backend explicitly, so that a build
// which lost CORIO_HAS_URING or -luring fails instead of falling back to epoll.
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
    corio::run_options options;
    if (argc > 1) {
        const std::string_view name = argv[1];
        options.backend = name == "io_uring" ? corio::backend::io_uring : corio::backend::epoll;
    }
    return corio::run(
        []() -> corio::coro<int> {
            co_await corio::sleep(std::chrono::milliseconds(1));
            std::printf("corio consumer: ran on %s\n",
                        std::string(corio::get_running_loop().backend_name()).c_str());
            co_return 0;
        }(),
        options);
}
