// 19_files: writing a file and reading it back with corio::file.
//
// Beyond asyncio, whose file objects block the loop (aiofiles sends each call to a thread).
// `co_await corio::file::open(path, mode)` opens a file; `write_all` writes everything,
// `read_all` reads the whole file, `read_at` / `write_at` work at an offset, `fsync` flushes to
// the disk, and `co_await f.close()` closes it (the destructor closes it too, synchronously,
// if you forget). On the io_uring backend, reads and writes are io_uring operations; on epoll,
// which cannot wait for a regular file, they run on the loop's executor. Either way, the
// loop keeps running other tasks meanwhile: here a task counts its turns while the files work.
//
// The modes are flags: `open_mode::write | open_mode::create | open_mode::truncate` is Python's
// "w", `open_mode::append | open_mode::create` is "a", `open_mode::read` (the default) is "r".
// Errors are `std::system_error` naming the file. Everything happens in a temporary directory,
// removed at the end.

#include <corio/corio.hpp>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <system_error>

#include <unistd.h>

using namespace std::chrono_literals;
using corio::open_mode;

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

// Counts how often it gets a turn while the file work goes on.
corio::coro<> ticker(int& ticks) {
    for (;;) {
        co_await corio::sleep(0s);
        ++ticks;
    }
}

corio::coro<> async_main(std::filesystem::path dir) {
    int ticks = 0;
    corio::task<> other = corio::create_task(ticker(ticks));
    const std::filesystem::path path = dir / "notes.txt";

    // "w": create or empty the file, then write. Two write_all calls write one after the other.
    corio::file out = co_await corio::file::open(path, open_mode::write | open_mode::create |
                                                           open_mode::truncate);
    co_await out.write_all("first line\n");
    const std::string block(4 << 20, 'x');  // 4 MiB, in one call
    co_await out.write_all(block);
    co_await out.write_all("\nlast line\n");
    co_await out.fsync();  // on the disk now, not just in the page cache
    std::cout << "wrote " << out.size() << " bytes to notes.txt\n";
    co_await out.close();

    // "a": every write goes to the end.
    corio::file log = co_await corio::file::open(path, open_mode::append);
    co_await log.write_all("appended\n");
    co_await log.close();

    // "r": read it all back, then a piece at an offset.
    corio::file in = co_await corio::file::open(path);
    const std::string text = co_await in.read_all();
    std::cout << "read " << text.size() << " bytes back with read_all()\n";
    expect(text == "first line\n" + block + "\nlast line\nappended\n",
           "read back what was written");
    const std::string first = co_await in.read_at(0, 10);
    std::cout << "read_at(0, 10): \"" << first << "\"\n";
    expect(first == "first line", "read_at reads at an offset");
    const std::string past_end = co_await in.read_at(in.size() + 100, 10);
    expect(past_end.empty(), "a read past the end is empty");
    co_await in.close();

    // Errors name the file.
    try {
        corio::file missing = co_await corio::file::open(dir / "missing.txt");
        expect(false, "opening a missing file throws");
    } catch (const std::system_error& e) {
        std::cout << "open of a missing file: " << e.what() << '\n';
        expect(e.code() == std::errc::no_such_file_or_directory, "the error is ENOENT");
    }

    std::cout << "the other task had " << (ticks > 0 ? "its turns" : "no turn") << " meanwhile, on "
              << corio::get_running_loop().backend_name() << '\n';
    expect(ticks > 0, "the loop keeps running while files are read and written");
    other.cancel();
    try {
        co_await other;
    } catch (const corio::cancelled_error&) {
    }
}

}  // namespace

int main() {
    // A fresh temporary directory, removed at the end whatever happens.
    std::string name = (std::filesystem::temp_directory_path() / "corio-19-files-XXXXXX").string();
    if (::mkdtemp(name.data()) == nullptr) {
        throw std::system_error(errno, std::system_category(), "mkdtemp");
    }
    const std::filesystem::path dir = name;
    struct remover {
        std::filesystem::path dir;
        ~remover() {
            std::error_code ignored;
            std::filesystem::remove_all(dir, ignored);
        }
    } cleanup{dir};
    corio::run(async_main(dir));
    std::filesystem::remove_all(dir);
    expect(!std::filesystem::exists(dir), "the temporary directory is removed");
    std::cout << "temporary directory removed\n";
}
