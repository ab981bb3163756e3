// corio::file (include/corio/system/file.hpp): round trips of 1 B to 64 MiB, read_at / write_at at
// offsets, reads at and past the end, the open modes (create, truncate, append, exclusive) and
// permissions, the forms a path and permissions may take (a NUL in a path refused), errors
// naming the path (a missing file, a directory, a closed file, the wrong direction), fsync,
// close and the destructor, descriptors never leaked, cancellation of a large read in flight, a
// loop closed under a read, and many concurrent reads. io_uring operations on the io_uring
// backend, the executor on epoll: CTest runs it once per backend (CORIO_BACKEND).
#include <corio/system/file.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/io_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/executor.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::first_difference;
using corio_test::frame_leak_check;
using corio_test::open_descriptors;
namespace fs = std::filesystem;
using corio::open_mode;

namespace {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at the end.
class temp_dir {
public:
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                              "/corio-file-test-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::system_error(errno, std::system_category(), "mkdtemp");
        }
        path_ = pattern;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;
        fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ignored);
        fs::remove_all(path_, ignored);
    }
    [[nodiscard]] fs::path operator/(const std::string& name) const { return path_ / name; }
    [[nodiscard]] const fs::path& path() const noexcept { return path_; }

private:
    fs::path path_;
};

// Bytes that depend on their position, so that data read from the wrong offset shows.
std::string pattern(std::size_t size, std::uint64_t seed = 0) {
    std::string data(size, '\0');
    std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 12345U;
    char* out = data.data();
    for (std::size_t i = 0; i < size; i += sizeof x) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        const std::uint64_t word = x ^ (x >> 29);
        std::memcpy(out + i, &word, std::min(sizeof word, size - i));
    }
    return data;
}

// One 64 MiB pattern for the whole run (it takes a while to make in a Debug build).
const std::string& big_pattern() {
    static const std::string data = pattern(std::size_t{64} << 20, 64);
    return data;
}

// Synchronous helpers, outside the loop.
void write_file(const fs::path& path, const std::string& data) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    std::size_t done = 0;
    while (done < data.size()) {
        const auto n = ::write(fd, data.data() + done, data.size() - done);
        REQUIRE(n > 0);
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

std::string read_file(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    std::string data;
    char buffer[64 * 1024];
    for (;;) {
        const auto n = ::read(fd, buffer, sizeof buffer);
        REQUIRE(n >= 0);
        if (n == 0) break;
        data.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return data;
}

// The error code and message of what `body` throws (0 and "" if nothing).
struct caught {
    int code = 0;
    std::string what;
};

corio::coro<caught> error_of(corio::coro<> body) {
    caught c;
    try {
        co_await std::move(body);
    } catch (const std::system_error& e) {
        c.code = e.code().value();
        c.what = e.what();
    }
    co_return c;
}

corio::coro<> open_and_drop(fs::path path, open_mode mode) {
    corio::file f = co_await corio::file::open(std::move(path), mode);
}

// --- round trips ---------------------------------------------------------------------------

TEST_CASE("file: write_all then read_all and read_at give back 1 B, 4 KiB, 1 MiB and 64 MiB",
          "[file]") {
    CORIO_REQUIRE_BACKEND();
    const std::size_t size =
        GENERATE(std::size_t{1}, std::size_t{4096}, std::size_t{1} << 20, std::size_t{64} << 20);
    CAPTURE(size);
    frame_leak_check leaks;
    temp_dir dir;
    const std::string data = size == big_pattern().size() ? big_pattern() : pattern(size, size);
    corio_test::run_test([](fs::path path, const std::string& data) -> corio::coro<> {
        {
            corio::file out = co_await corio::file::open(
                path, open_mode::write | open_mode::create | open_mode::truncate);
            CHECK(out.is_open());
            co_await out.write_all(data);
            CHECK(out.size() == data.size());
            co_await out.close();
            CHECK_FALSE(out.is_open());
        }
        corio::file in = co_await corio::file::open(path);
        const std::string whole = co_await in.read_all();
        CHECK(whole.size() == data.size());
        CHECK(first_difference(whole, data) == -1);

        // The same, read_at in 1 MiB pieces into a buffer.
        std::string pieces;
        std::vector<std::byte> buffer(std::size_t{1} << 20);
        for (std::uint64_t offset = 0;;) {
            const std::size_t n = co_await in.read_at(offset, buffer);
            if (n == 0) break;
            pieces.append(reinterpret_cast<const char*>(buffer.data()), n);
            offset += n;
        }
        CHECK(first_difference(pieces, data) == -1);
        co_await in.close();
    }(dir / "data.bin", data));
    // And what is on disk is what was written.
    CHECK(first_difference(read_file(dir / "data.bin"), data) == -1);
}

TEST_CASE("file: read_at and write_at at offsets, strings and byte spans", "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    corio_test::run_test([](fs::path path) -> corio::coro<> {
        corio::file f = co_await corio::file::open(path, open_mode::read_write | open_mode::create);
        const std::size_t wrote = co_await f.write_at(100, "hello");
        CHECK(wrote == 5);
        CHECK(f.size() == 105);  // a hole of zeros before it
        const std::string hello = co_await f.read_at(100, 5);
        CHECK(hello == "hello");
        const std::string hole = co_await f.read_at(0, 100);
        CHECK(hole == std::string(100, '\0'));

        const std::byte bytes[] = {std::byte{1}, std::byte{2}, std::byte{3}};
        const std::size_t wrote_bytes = co_await f.write_at(101, std::span<const std::byte>(bytes));
        CHECK(wrote_bytes == 3);
        std::vector<std::byte> back(5);
        const std::size_t got = co_await f.read_at(100, back);
        CHECK(got == 5);
        CHECK(back[0] == std::byte{'h'});
        CHECK(back[1] == std::byte{1});
        CHECK(back[3] == std::byte{3});
        CHECK(back[4] == std::byte{'o'});

        // Positional operations leave the file position alone: write_all starts at 0.
        co_await f.write_all("AB");
        const std::string start = co_await f.read_at(0, 2);
        CHECK(start == "AB");
        co_await f.write_all("CD");  // right after the first
        const std::string more = co_await f.read_at(0, 4);
        CHECK(more == "ABCD");

        // Far offsets: a sparse file.
        const std::uint64_t far = std::uint64_t{1} << 32;  // 4 GiB
        const std::size_t wrote_far = co_await f.write_at(far, "far");
        CHECK(wrote_far == 3);
        CHECK(f.size() == far + 3);
        const std::string far_back = co_await f.read_at(far - 1, 10);
        CHECK(far_back == std::string("\0far", 4));

        // Empty operations transfer nothing.
        const std::size_t none = co_await f.write_at(0, std::string_view());
        CHECK(none == 0);
        const std::string nothing = co_await f.read_at(0, 0);
        CHECK(nothing.empty());
        co_await f.close();
    }(dir / "offsets.bin"));
}

TEST_CASE("file: reads at and past the end are short or empty", "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    write_file(dir / "ten", "0123456789");
    write_file(dir / "empty", "");
    corio_test::run_test([](fs::path ten, fs::path empty) -> corio::coro<> {
        corio::file f = co_await corio::file::open(ten);
        const std::string tail = co_await f.read_at(7, 100);
        CHECK(tail == "789");
        const std::string at_end = co_await f.read_at(10, 100);
        CHECK(at_end.empty());
        const std::string past = co_await f.read_at(1'000'000, 100);
        CHECK(past.empty());
        std::vector<std::byte> buffer(64);
        const std::size_t n = co_await f.read_at(8, buffer);
        CHECK(n == 2);
        const std::size_t zero = co_await f.read_at(50, buffer);
        CHECK(zero == 0);

        corio::file e = co_await corio::file::open(empty);
        const std::string all = co_await e.read_all();
        CHECK(all.empty());
        CHECK(e.size() == 0);

        // A file whose size fstat does not know (procfs says 0): read_all still reads it all.
        corio::file proc = co_await corio::file::open("/proc/self/status");
        const std::string status = co_await proc.read_all();
        CHECK(corio_test::contains(status, "Name:"));
        CHECK(corio_test::contains(status, "VmRSS"));
    }(dir / "ten", dir / "empty"));
}

// --- modes ---------------------------------------------------------------------------------

TEST_CASE("file: create, truncate, exclusive and permissions", "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    const mode_t old_umask = ::umask(022);
    corio_test::run_test([](fs::path path) -> corio::coro<> {
        // Exclusive creation of a new file, with its permissions.
        {
            corio::file f =
                co_await corio::file::open(path, open_mode::write | open_mode::exclusive,
                                           fs::perms::owner_read | fs::perms::owner_write);
            co_await f.write_all("first");
        }  // closed by the destructor
        struct stat status{};
        REQUIRE(::stat(path.c_str(), &status) == 0);
        CHECK((status.st_mode & 0777) == 0600);

        // Exclusive creation of a file that exists: EEXIST, and the file is untouched.
        const caught exists =
            co_await error_of(open_and_drop(path, open_mode::write | open_mode::exclusive));
        CHECK(exists.code == EEXIST);
        CHECK(corio_test::contains(exists.what, path.string()));
        const std::string kept = read_file(path);
        CHECK(kept == "first");

        // Default permissions: 0666 less the umask (022).
        const fs::path other = path.parent_path() / "default-perms";
        co_await open_and_drop(other, open_mode::write | open_mode::create);
        REQUIRE(::stat(other.c_str(), &status) == 0);
        CHECK((status.st_mode & 0777) == 0644);

        // create on an existing file opens it as it is; truncate empties it.
        {
            corio::file f =
                co_await corio::file::open(path, open_mode::read_write | open_mode::create);
            const std::string content = co_await f.read_all();
            CHECK(content == "first");
        }
        {
            corio::file f =
                co_await corio::file::open(path, open_mode::write | open_mode::truncate);
            CHECK(f.size() == 0);
        }
        // Without create, a missing file is an error even for writing.
        const caught missing =
            co_await error_of(open_and_drop(path.parent_path() / "nope", open_mode::write));
        CHECK(missing.code == ENOENT);
    }(dir / "created"));
    ::umask(old_umask);
}

TEST_CASE("file: append mode writes at the end, whatever the offset", "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    write_file(dir / "log", "abc");
    corio_test::run_test([](fs::path path) -> corio::coro<> {
        {
            corio::file f = co_await corio::file::open(path, open_mode::append);
            co_await f.write_all("def");
            co_await f.write_all("ghi");
            // Linux appends even a positional write to a file opened with O_APPEND.
            const std::size_t n = co_await f.write_at(0, "X");
            CHECK(n == 1);
            co_await f.close();
        }
        {
            // Reading and appending; create makes no difference to an existing file.
            corio::file f = co_await corio::file::open(path, open_mode::read | open_mode::append |
                                                                 open_mode::create);
            co_await f.write_all("!");
            const std::string all = co_await f.read_all();
            CHECK(all == "abcdefghiX!");
        }
        const std::string on_disk = read_file(path);
        CHECK(on_disk == "abcdefghiX!");
    }(dir / "log"));
}

TEST_CASE("file: modes that make no sense are std::invalid_argument", "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    corio_test::run_test([](fs::path path) -> corio::coro<> {
        int invalid = 0;
        try {
            co_await open_and_drop(path, open_mode::create);  // neither read nor write
        } catch (const std::invalid_argument&) {
            ++invalid;
        }
        try {
            co_await open_and_drop(path, open_mode::read | open_mode::truncate);
        } catch (const std::invalid_argument&) {
            ++invalid;
        }
        CHECK(invalid == 2);
        CHECK_FALSE(fs::exists(path));  // nothing was created
    }(dir / "never"));
}

TEST_CASE("file: open takes a C string, a std::string, a string_view or a std::filesystem::path, "
          "and permissions as a number or std::filesystem::perms; a NUL in the path is refused",
          "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    const std::string base = dir.path().string();
    corio_test::run_test([](std::string base) -> corio::coro<> {
        const open_mode create = open_mode::write | open_mode::create;
        {
            std::string name = base + "/from-std-string";
            // The coro copies the path when it is made: the string may go before it runs.
            corio::coro<corio::file> opening = corio::file::open(name, create, 0600);
            name.assign(name.size(), 'x');
            corio::file f = co_await std::move(opening);
            CHECK(f.path() == base + "/from-std-string");
        }
        {
            const std::string name = base + "/from-c-string";
            corio::file f = co_await corio::file::open(
                name.c_str(), create, fs::perms::owner_read | fs::perms::owner_write);
            CHECK(f.path() == name);
        }
        {
            const std::string name = base + "/from-string-view";
            corio::file f = co_await corio::file::open(std::string_view(name), create);
            CHECK(f.path() == name);
        }
        {
            const fs::path name = fs::path(base) / "from-fs-path";
            corio::file f = co_await corio::file::open(name, create, fs::perms::owner_all);
            CHECK(f.path() == name.string());
        }
        struct stat status{};
        REQUIRE(::stat((base + "/from-std-string").c_str(), &status) == 0);
        CHECK((status.st_mode & 07777) == 0600);
        REQUIRE(::stat((base + "/from-c-string").c_str(), &status) == 0);
        CHECK((status.st_mode & 07777) == 0600);
        REQUIRE(::stat((base + "/from-fs-path").c_str(), &status) == 0);
        CHECK((status.st_mode & 0077) == 0);  // owner_all, less nothing the umask can add

        // "dir\0evil" would otherwise open "dir" (or create a file of the shorter name).
        const std::string with_nul = base + std::string("/short\0evil", 11);
        int refused = 0;
        try {
            (void)co_await corio::file::open(with_nul, create);
        } catch (const std::invalid_argument& e) {
            ++refused;
            CHECK(std::string_view(e.what()).find("NUL") != std::string_view::npos);
        }
        try {
            (void)co_await corio::file::open(fs::path(with_nul), create);
        } catch (const std::invalid_argument&) {
            ++refused;
        }
        CHECK(refused == 2);
        CHECK_FALSE(fs::exists(fs::path(base) / "short"));
    }(base));
}

// --- errors --------------------------------------------------------------------------------

TEST_CASE("file: errors are std::system_error naming the operation and the path", "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    write_file(dir / "readonly", "data");
    ::chmod((dir / "readonly").c_str(), 0444);
    fs::create_directory(dir / "subdir");
    corio_test::run_test([](fs::path base) -> corio::coro<> {
        // A missing file.
        const caught missing = co_await error_of(open_and_drop(base / "missing", open_mode::read));
        CHECK(missing.code == ENOENT);
        CHECK(corio_test::contains(missing.what, "open"));
        CHECK(corio_test::contains(missing.what, (base / "missing").string()));
        // In a missing directory, even with create.
        const caught no_dir = co_await error_of(
            open_and_drop(base / "no-such-dir" / "f", open_mode::write | open_mode::create));
        CHECK(no_dir.code == ENOENT);

        // A directory: EISDIR for writing (the kernel's answer, even to root) and for reading
        // (corio's, as Python's open).
        const caught dir_write =
            co_await error_of(open_and_drop(base / "subdir", open_mode::write));
        CHECK(dir_write.code == EISDIR);
        const caught dir_read = co_await error_of(open_and_drop(base / "subdir", open_mode::read));
        CHECK(dir_read.code == EISDIR);
        CHECK(corio_test::contains(dir_read.what, "subdir"));

        // Permission denied: a read-only file opened for writing (root may write anyway).
        if (::geteuid() != 0) {
            const caught denied =
                co_await error_of(open_and_drop(base / "readonly", open_mode::write));
            CHECK(denied.code == EACCES);
        }

        // Writing through a descriptor opened for reading, and the reverse: EBADF.
        corio::file reader = co_await corio::file::open(base / "readonly");
        const caught bad_write = co_await error_of(
            [](corio::file& f) -> corio::coro<> { (void)co_await f.write_at(0, "x"); }(reader));
        CHECK(bad_write.code == EBADF);
        CHECK(corio_test::contains(bad_write.what, "write"));
        CHECK(corio_test::contains(bad_write.what, "readonly"));
        const caught bad_write_all = co_await error_of(
            [](corio::file& f) -> corio::coro<> { co_await f.write_all("x"); }(reader));
        CHECK(bad_write_all.code == EBADF);

        corio::file writer =
            co_await corio::file::open(base / "write-only", open_mode::write | open_mode::create);
        const caught bad_read = co_await error_of(
            [](corio::file& f) -> corio::coro<> { (void)co_await f.read_all(); }(writer));
        CHECK(bad_read.code == EBADF);
        CHECK(corio_test::contains(bad_read.what, "read"));
    }(dir.path()));
}

TEST_CASE("file: a closed file refuses every operation with EBADF; close is idempotent", "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    write_file(dir / "f", "content");
    corio_test::run_test([](fs::path path) -> corio::coro<> {
        corio::file f = co_await corio::file::open(path);
        co_await f.close();
        CHECK_FALSE(f.is_open());
        CHECK(f.native_handle() == -1);
        co_await f.close();  // again: nothing happens

        std::vector<caught> errors;
        errors.push_back(co_await error_of(
            [](corio::file& f) -> corio::coro<> { (void)co_await f.read_at(0, 1); }(f)));
        errors.push_back(co_await error_of([](corio::file& f) -> corio::coro<> {
            std::byte b[1];
            (void)co_await f.read_at(0, b);
        }(f)));
        errors.push_back(co_await error_of(
            [](corio::file& f) -> corio::coro<> { (void)co_await f.write_at(0, "x"); }(f)));
        errors.push_back(co_await error_of(
            [](corio::file& f) -> corio::coro<> { (void)co_await f.read_all(); }(f)));
        errors.push_back(co_await error_of(
            [](corio::file& f) -> corio::coro<> { co_await f.write_all("x"); }(f)));
        errors.push_back(
            co_await error_of([](corio::file& f) -> corio::coro<> { co_await f.fsync(); }(f)));
        errors.push_back(
            co_await error_of([](corio::file& f) -> corio::coro<> { co_await f.fdatasync(); }(f)));
        for (const auto& e : errors) {
            CAPTURE(e.what);
            CHECK(e.code == EBADF);
        }
        CHECK_THROWS_AS(f.size(), std::system_error);

        // A default-constructed file and a moved-from one are closed too.
        corio::file none;
        CHECK_FALSE(none.is_open());
        corio::file g = co_await corio::file::open(path);
        corio::file h = std::move(g);
        CHECK_FALSE(g.is_open());  // NOLINT: checking the moved-from state on purpose
        CHECK(h.is_open());
        CHECK(h.path() == path.string());
    }(dir / "f"));
}

// --- fsync, close, descriptors -------------------------------------------------------------

TEST_CASE("file: fsync and fdatasync", "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    corio_test::run_test([](fs::path path) -> corio::coro<> {
        corio::file f = co_await corio::file::open(path, open_mode::write | open_mode::create);
        const std::string data = pattern(100'000);
        co_await f.write_all(data);
        co_await f.fsync();
        co_await f.write_all("more");
        co_await f.fdatasync();
        co_await f.close();
        // fsync of a file opened only for reading works too.
        corio::file r = co_await corio::file::open(path);
        co_await r.fsync();
        CHECK(r.size() == 100'004);
    }(dir / "synced"));
}

TEST_CASE("file: descriptors are close-on-exec, closed by close() or the destructor, and never "
          "leaked by failed opens",
          "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    write_file(dir / "f", "x");
    fs::create_directory(dir / "d");
    const std::size_t before = open_descriptors();
    corio_test::run_test([](fs::path base) -> corio::coro<> {
        const std::size_t at_start = open_descriptors();
        int fd = -1;
        {
            corio::file f = co_await corio::file::open(base / "f");
            fd = f.native_handle();
            REQUIRE(fd >= 0);
            CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        }
        CHECK(open_descriptors() == at_start);  // the destructor closed it
        {
            corio::file f = co_await corio::file::open(base / "f");
            co_await f.close();
            CHECK(open_descriptors() == at_start);
        }
        for (int i = 0; i < 50; ++i) {
            (void)co_await error_of(open_and_drop(base / "missing", open_mode::read));
            (void)co_await error_of(open_and_drop(base / "d", open_mode::read));  // opened, refused
            (void)co_await error_of(
                open_and_drop(base / "f", open_mode::write | open_mode::exclusive));
        }
        CHECK(open_descriptors() == at_start);
        // A file moved onto another closes the other.
        corio::file a = co_await corio::file::open(base / "f");
        corio::file b = co_await corio::file::open(base / "f");
        CHECK(open_descriptors() == at_start + 2);
        a = std::move(b);
        CHECK(open_descriptors() == at_start + 1);
    }(dir.path()));
    // The executor's threads hold no descriptor; the loop's own are gone.
    CHECK(open_descriptors() == before);
}

TEST_CASE("file: closing a file while another task reads it: the read completes, then the "
          "descriptor is closed",
          "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    const std::string data = pattern(std::size_t{32} << 20, 7);
    write_file(dir / "big", data);
    const std::size_t before = open_descriptors();
    corio_test::run_test([](fs::path path, const std::string& data) -> corio::coro<> {
        corio::file f = co_await corio::file::open(path);
        auto reader = corio::create_task(f.read_all());
        co_await corio::sleep(0s);  // the read is in flight
        co_await f.close();         // the reader still holds the descriptor
        CHECK_FALSE(f.is_open());
        const std::string got = co_await reader;
        CHECK(first_difference(got, data) == -1);
    }(dir / "big", data));
    CHECK(open_descriptors() == before);
}

// --- cancellation --------------------------------------------------------------------------

enum class read_kind { read_all, read_at_string, read_at_span };

const char* name_of(read_kind k) {
    switch (k) {
    case read_kind::read_all: return "read_all";
    case read_kind::read_at_string: return "read_at(offset, n)";
    case read_kind::read_at_span: return "read_at(offset, span)";
    }
    return "?";
}

corio::coro<std::size_t> big_read(corio::file& f, read_kind kind) {
    switch (kind) {
    case read_kind::read_all: {
        const std::string s = co_await f.read_all();
        co_return s.size();
    }
    case read_kind::read_at_string: {
        const std::string s = co_await f.read_at(0, std::size_t{64} << 20);
        co_return s.size();
    }
    case read_kind::read_at_span: {
        std::vector<std::byte> buffer(std::size_t{64} << 20);
        const std::size_t n = co_await f.read_at(0, buffer);
        co_return n;
    }
    }
    co_return 0;
}

TEST_CASE("file: cancelling a task in the middle of a 64 MiB read: no crash, no leak, the loop "
          "and the file keep working",
          "[file][cancel]") {
    CORIO_REQUIRE_BACKEND();
    const read_kind kind =
        GENERATE(read_kind::read_all, read_kind::read_at_string, read_kind::read_at_span);
    const int yields = GENERATE(0, 2);
    CAPTURE(name_of(kind), yields);
    frame_leak_check leaks;
    temp_dir dir;
    const std::string& data = big_pattern();
    write_file(dir / "big", data);
    const std::size_t before = open_descriptors();
    corio_test::run_test(
        [](fs::path path, const std::string& data, read_kind kind, int yields) -> corio::coro<> {
            corio::file f = co_await corio::file::open(path);
            auto reader = corio::create_task(big_read(f, kind));
            co_await corio_test::yield(yields);
            reader.cancel();
            bool cancelled = false;
            std::size_t size = 0;
            try {
                size = co_await reader;
            } catch (const corio::cancelled_error&) {
                cancelled = true;
            }
            // Either the cancellation won, or the read had already finished.
            CHECK((cancelled || size == data.size()));
            CHECK(reader.done());
            // The file and the loop are fine.
            const std::string again = co_await f.read_at(1000, 100);
            CHECK(again == data.substr(1000, 100));
            const std::string whole = co_await f.read_all();
            CHECK(first_difference(whole, data) == -1);
        }(dir / "big", data, kind, yields));
    CHECK(open_descriptors() == before);
}

TEST_CASE("file: wait_for around read_all of a large file: a timeout or the data, never a "
          "partial result",
          "[file][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    const std::string& data = big_pattern();
    write_file(dir / "big", data);
    corio_test::run_test([](fs::path path, const std::string& data) -> corio::coro<> {
        corio::file f = co_await corio::file::open(path);
        int timeouts = 0;
        int completions = 0;
        const std::chrono::microseconds limits[] = {0us, 100us, 1ms, 5ms, 20ms, 10s};
        for (const auto limit : limits) {
            try {
                const std::string got = co_await corio::wait_for(f.read_all(), limit);
                CHECK(first_difference(got, data) == -1);
                ++completions;
            } catch (const corio::timeout_error&) {
                ++timeouts;
            }
        }
        CHECK(completions >= 1);  // the 10 s one at least
        CHECK(timeouts + completions == 6);
    }(dir / "big", data));
}

TEST_CASE("file: a loop closed while a read is in flight waits for it before freeing anything",
          "[file][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    const std::string& data = big_pattern();
    write_file(dir / "big", data);
    const std::size_t before = open_descriptors();
    {
        auto loop = corio::new_event_loop();
        auto opened = loop->run_until_complete(corio::file::open(dir / "big"));
        auto reader = loop->create_task(big_read(opened, read_kind::read_at_span));
        loop->run_until_complete([]() -> corio::coro<> { co_await corio::sleep(1ms); }());
        loop->close();  // destroys the reader's frame (and its 64 MiB buffer) only when safe
        CHECK(reader.done());
        // An open still in flight when the loop closes: its descriptor is not leaked.
        auto loop2 = corio::new_event_loop();
        auto opening = loop2->create_task(corio::file::open(dir / "big"));
        loop2->run_until_complete([]() -> corio::coro<> { co_await corio::sleep(0s); }());
        loop2->close();
        CHECK(opening.done());
    }
    CHECK(open_descriptors() == before);
}

// The mechanism under the epoll backend's file operations (detail::executor_call), tested with
// a job that blocks until told: a job that runs is never abandoned.
TEST_CASE("file: a task cancelled while its executor call runs waits for it, gets its result, "
          "and is cancelled at its next suspension point; one cancelled before never starts it",
          "[file][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        std::atomic<bool> started{false};
        std::atomic<bool> release{false};
        int seen = -1;
        bool reached_after = false;
        auto body = [](std::atomic<bool>& started, std::atomic<bool>& release, int& seen,
                       bool& reached_after) -> corio::coro<> {
            corio::detail::executor_call call([&started, &release] {
                started = true;
                const auto deadline = std::chrono::steady_clock::now() + 10s;
                while (!release.load() && std::chrono::steady_clock::now() < deadline) {
                    std::this_thread::sleep_for(100us);
                }
                return 7;
            });
            seen = co_await call;
            co_await corio::sleep(0s);  // the cancellation is delivered here
            reached_after = true;
        };
        auto t = corio::create_task(body(started, release, seen, reached_after));
        while (!started.load()) co_await corio::sleep(1ms);
        t.cancel();
        co_await corio::sleep(20ms);
        CHECK_FALSE(t.done());  // still waiting for its job
        release = true;
        bool cancelled = false;
        try {
            co_await t;
        } catch (const corio::cancelled_error&) {
            cancelled = true;
        }
        CHECK(cancelled);
        CHECK(seen == 7);  // the job's result was not lost
        CHECK_FALSE(reached_after);

        // Cancelled before it reaches the call: the job never runs.
        std::atomic<bool> ran{false};
        auto never = corio::create_task([](std::atomic<bool>& ran) -> corio::coro<> {
            corio::detail::executor_call call([&ran] { ran = true; });
            co_await call;
        }(ran));
        never.cancel();
        bool never_cancelled = false;
        try {
            co_await never;
        } catch (const corio::cancelled_error&) {
            never_cancelled = true;
        }
        CHECK(never_cancelled);
        co_await corio::to_thread([] {});  // let a worker run anything queued
        CHECK_FALSE(ran.load());
    }());
}

// --- concurrency ---------------------------------------------------------------------------

corio::coro<std::string> read_range(const corio::file& f, std::uint64_t offset, std::size_t n) {
    std::string s = co_await f.read_at(offset, n);
    co_return s;
}

TEST_CASE("file: 200 concurrent reads of one file, and concurrent writers to disjoint ranges",
          "[file]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    temp_dir dir;
    constexpr std::size_t chunk = 64 * 1024;
    constexpr int readers = 200;
    const std::string data = pattern(chunk * readers, 11);
    write_file(dir / "shared", data);
    corio_test::run_test([](fs::path base, const std::string& data) -> corio::coro<> {
        corio::file f = co_await corio::file::open(base / "shared");
        std::vector<corio::task<std::string>> tasks;
        for (int i = readers - 1; i >= 0; --i) {
            tasks.push_back(
                corio::create_task(read_range(f, static_cast<std::uint64_t>(i) * chunk, chunk)));
        }
        int wrong = 0;
        for (int i = 0; i < readers; ++i) {
            const std::string got = co_await tasks[static_cast<std::size_t>(i)];
            const std::size_t offset = static_cast<std::size_t>(readers - 1 - i) * chunk;
            if (got != data.substr(offset, chunk)) ++wrong;
        }
        CHECK(wrong == 0);

        // Writers: 64 tasks each write their own 16 KiB at their own offset.
        corio::file out = co_await corio::file::open(base / "assembled",
                                                     open_mode::read_write | open_mode::create);
        std::vector<corio::task<std::size_t>> writers;
        constexpr std::size_t piece = 16 * 1024;
        for (std::size_t i = 0; i < 64; ++i) {
            writers.push_back(
                corio::create_task([](const corio::file& out, std::uint64_t offset,
                                      std::string_view bytes) -> corio::coro<std::size_t> {
                    co_return co_await out.write_at(offset, bytes);
                }(out, i * piece, std::string_view(data).substr(i * piece, piece))));
        }
        std::size_t written = 0;
        for (auto& w : writers) written += co_await w;
        CHECK(written == 64 * piece);
        const std::string assembled = co_await out.read_all();
        CHECK(first_difference(assembled, data.substr(0, 64 * piece)) == -1);
    }(dir.path(), data));
}

}  // namespace
