// Benchmarks of corio::file (include/corio/system/file.hpp): the read throughput of a 64 MiB file
// read with read_at in 64 KiB and in 1 MiB chunks (one reader, and eight readers splitting the file
// between them), with read_all, and the write throughput of 64 MiB written with write_at. On
// io_uring these are io_uring reads and writes; on epoll they run on the executor. The file
// sits in the page cache (written just before), so this measures corio's path to the kernel,
// not the disk. Each runs on both backends; the backend's name is in the label.

#include <corio/corio.hpp>

#include "support/backends.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

constexpr std::size_t file_size = std::size_t{64} << 20;

// A temporary directory holding the 64 MiB file to read, removed when the program ends.
class bench_files {
public:
    bench_files() {
        std::string name =
            (std::filesystem::temp_directory_path() / "corio-file-bench-XXXXXX").string();
        if (::mkdtemp(name.data()) == nullptr) {
            throw std::system_error(errno, std::system_category(), "mkdtemp");
        }
        dir_ = name;
        const std::string data(file_size, 'r');
        const int fd = ::open(input().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw std::system_error(errno, std::system_category(), "open");
        std::size_t done = 0;
        while (done < data.size()) {
            const auto n = ::write(fd, data.data() + done, data.size() - done);
            if (n <= 0) {
                ::close(fd);
                throw std::system_error(errno, std::system_category(), "write");
            }
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
    }
    bench_files(const bench_files&) = delete;
    bench_files& operator=(const bench_files&) = delete;
    ~bench_files() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    [[nodiscard]] std::filesystem::path input() const { return dir_ / "input.bin"; }
    [[nodiscard]] std::filesystem::path output() const { return dir_ / "output.bin"; }

    static bench_files& get() {
        static bench_files files;
        return files;
    }

private:
    std::filesystem::path dir_;
};

// Reads [begin, end) of `f` with read_at, `chunk` bytes at a time, into its own buffer.
corio::coro<std::size_t> read_range(const corio::file& f, std::uint64_t begin, std::uint64_t end,
                                    std::size_t chunk) {
    std::vector<std::byte> buffer(chunk);
    std::size_t total = 0;
    for (std::uint64_t offset = begin; offset < end;) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, end - offset));
        const std::size_t n = co_await f.read_at(offset, std::span(buffer).first(want));
        if (n == 0) break;
        offset += n;
        total += n;
    }
    co_return total;
}

corio::coro<> read_whole_file(benchmark::State& state, std::size_t chunk, int readers) {
    corio::file f = co_await corio::file::open(bench_files::get().input());
    for (auto _ : state) {
        std::vector<corio::task<std::size_t>> tasks;
        const std::uint64_t share = file_size / static_cast<std::uint64_t>(readers);
        for (int r = 0; r < readers; ++r) {
            const std::uint64_t begin = share * static_cast<std::uint64_t>(r);
            const std::uint64_t end = r + 1 == readers ? file_size : begin + share;
            tasks.push_back(corio::create_task(read_range(f, begin, end, chunk)));
        }
        std::size_t total = 0;
        for (auto& t : tasks) total += co_await t;
        if (total != file_size) state.SkipWithError("short read");
    }
    co_await f.close();
}

// The whole 64 MiB file per iteration, in `chunk`-byte read_at calls, by `readers` tasks.
void file_read(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    const auto chunk = static_cast<std::size_t>(state.range(0));
    const auto readers = static_cast<int>(state.range(1));
    loop->run_until_complete(read_whole_file(state, chunk, readers));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(file_size));
}

corio::coro<> read_all_repeatedly(benchmark::State& state) {
    corio::file f = co_await corio::file::open(bench_files::get().input());
    for (auto _ : state) {
        const std::string data = co_await f.read_all();
        if (data.size() != file_size) state.SkipWithError("short read");
        benchmark::DoNotOptimize(data.data());
    }
    co_await f.close();
}

// read_all() of the 64 MiB file (8 MiB reads into a string it allocates).
void file_read_all(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(read_all_repeatedly(state));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(file_size));
}

corio::coro<> write_whole_file(benchmark::State& state, std::size_t chunk) {
    using corio::open_mode;
    corio::file f = co_await corio::file::open(
        bench_files::get().output(), open_mode::write | open_mode::create | open_mode::truncate);
    const std::string block(chunk, 'w');
    for (auto _ : state) {
        for (std::uint64_t offset = 0; offset < file_size;) {
            const std::size_t n = co_await f.write_at(offset, block);
            offset += n;
        }
    }
    co_await f.close();
}

// The whole 64 MiB file per iteration (overwritten in place), in `chunk`-byte write_at calls.
void file_write(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(write_whole_file(state, static_cast<std::size_t>(state.range(0))));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(file_size));
}

void register_all() {
    for (const auto& [name, backend_of_entry] : corio_bench::available_backends()) {
        const corio::backend backend = backend_of_entry;  // clang 14 cannot capture a binding
        const std::string& suffix = name;
        benchmark::RegisterBenchmark(("file_read" + suffix).c_str(), file_read, backend)
            ->ArgNames({"chunk", "readers"})
            ->Args({64 << 10, 1})
            ->Args({1 << 20, 1})
            ->Args({64 << 10, 8})
            ->Args({1 << 20, 8})
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("file_read_all" + suffix).c_str(), file_read_all, backend)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("file_write" + suffix).c_str(), file_write, backend)
            ->ArgName("chunk")
            ->Arg(64 << 10)
            ->Arg(1 << 20)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
}

const int registered = (register_all(), 0);

}  // namespace
