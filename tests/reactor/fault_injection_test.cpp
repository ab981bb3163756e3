// The property of the fault-injecting reactor's hostile mode (support/fault_injection.hpp):
// whatever the kernel may do to an operation (fail it with ENOMEM, ENOBUFS, ECONNRESET or EPIPE,
// refuse its submission, cut it short, interrupt it, deliver it late, cross it with its
// cancellation), a program sees a clear exception or a correct result. Never a hang, a crash,
// a byte lost or reordered, a leaked descriptor or a leaked frame.
//
// Each case runs its scenario under many seeds; a failure names its seed, and
// CORIO_HOSTILE_SEED=<n> runs that one alone. CTest runs it once per backend.
#include <corio/net/connection.hpp>
#include <corio/net/datagram.hpp>
#include <corio/net/server.hpp>
#include <corio/net/stream.hpp>
#include <corio/system/file.hpp>
#include <corio/system/process.hpp>

#include "support/catch.hpp"
#include "support/fault_injection.hpp"
#include "support/io_helpers.hpp"
#include "support/test_helpers.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using corio_test::fault_mode;
using corio_test::first_difference;
using corio_test::frame_leak_check;
using corio_test::open_descriptors;
using corio_test::random_bytes;

// Every loop `corio::run` makes while it lives is on a hostile faulty reactor with its seed.
class hostile_loops {
public:
    explicit hostile_loops(std::uint64_t seed) : previous_(corio::set_loop_factory(&make)) {
        seed_ = seed;
    }
    hostile_loops(const hostile_loops&) = delete;
    hostile_loops& operator=(const hostile_loops&) = delete;
    ~hostile_loops() { corio::set_loop_factory(previous_); }

private:
    static std::unique_ptr<corio::event_loop> make(corio::backend requested) {
        return corio_test::new_faulty_loop(requested == corio::backend::io_uring, seed_,
                                           fault_mode::hostile);
    }

    static inline std::uint64_t seed_ = 0;
    corio::loop_factory previous_;
};

std::vector<std::uint64_t> seeds(std::uint64_t count) {
    if (const char* one = std::getenv("CORIO_HOSTILE_SEED"); one != nullptr && *one != '\0') {
        return {std::strtoull(one, nullptr, 0)};
    }
    std::vector<std::uint64_t> all;
    for (std::uint64_t seed = 1; seed <= count; ++seed) all.push_back(seed);
    return all;
}

// How one run of a scenario ended. `what` is the exception's message, for the log.
struct ending {
    bool intact = false;
    std::string what;
};

// Runs `scenario` on a hostile loop with `seed`, within a deadline (a timeout is a hang); it
// must finish intact or with an exception a program can expect from I/O. Anything else fails
// the case, naming the seed.
template <class Scenario>
ending run_hostile(std::uint64_t seed, Scenario scenario) {
    hostile_loops loops(seed);
    ending end;
    try {
        corio::run([](Scenario scenario) -> corio::coro<> {
            co_await corio::wait_for(scenario(), 20s);
        }(scenario));
        end.intact = true;
    } catch (const corio::timeout_error&) {
        FAIL("seed " << seed << ": the scenario hung (no end within 20 s)");
    } catch (const std::system_error& e) {
        end.what = e.what();
    } catch (const corio::incomplete_read_error& e) {
        end.what = e.what();
    } catch (const corio::cancelled_error&) {
        FAIL("seed " << seed << ": cancelled_error escaped a scenario nobody cancelled");
    } catch (const std::exception& e) {
        FAIL("seed " << seed << ": an exception I/O does not explain: " << e.what());
    }
    return end;
}

template <class Scenario>
void check_under_faults(const char* name, std::uint64_t count, Scenario scenario) {
    const corio_test::fault_stats& stats = corio_test::process_fault_stats();
    const std::uint64_t operations_before = stats.operations;
    const std::uint64_t injected_before = stats.injected();
    const std::uint64_t hard_before = stats.hard_errors + stats.refused_submissions;
    int intact = 0;
    int failed = 0;
    for (const std::uint64_t seed : seeds(count)) {
        frame_leak_check leaks;
        const std::size_t descriptors = open_descriptors();
        const ending end = run_hostile(seed, [&scenario, seed] { return scenario(seed); });
        (end.intact ? intact : failed) += 1;
        INFO(name << ", seed " << seed << (end.intact ? ": intact" : ": failed with ") << end.what);
        // A child whose wait failed is reaped by a thread that holds its pidfd until it exits:
        // give it the time to.
        for (int i = 0; i < 300 && open_descriptors() != descriptors; ++i) {
            std::this_thread::sleep_for(10ms);
        }
        CHECK(open_descriptors() == descriptors);
    }
    std::printf("%s: %d seeds, %llu operations, %llu faults injected (%llu hard errors or "
                "refused submissions); %d runs intact, %d ended with an I/O error\n",
                name, intact + failed,
                static_cast<unsigned long long>(stats.operations - operations_before),
                static_cast<unsigned long long>(stats.injected() - injected_before),
                static_cast<unsigned long long>(stats.hard_errors + stats.refused_submissions -
                                                hard_before),
                intact, failed);
    // Hostile faults hit about one operation in twenty: runs that go through whole show that
    // the scenario survives what it did not fail of.
    CHECK(intact > 0);
}

// An echo server's handler: what it reads it writes back, until the end or an error.
corio::coro<> echo(corio::stream_reader reader, corio::stream_writer writer) {
    try {
        for (;;) {
            const std::string piece = co_await reader.read(64 * 1024);
            if (piece.empty()) break;
            writer.write(piece);
            co_await writer.drain();
        }
        writer.close();
        co_await writer.wait_closed();
    } catch (const std::system_error&) {
        writer.abort();
    }
}

// The client's half: sends `data` in uneven pieces while reading the echo back; what came
// back must be `data` (or, if the connection failed, a prefix of it).
corio::coro<> echo_round_trip(std::uint64_t seed) {
    corio::server srv = co_await corio::start_server(echo, "127.0.0.1", 0);
    const std::string data = random_bytes(192 * 1024 + seed % 4096, seed);
    std::string echoed;
    std::exception_ptr failure;
    try {
        auto [reader, writer] = co_await corio::open_connection("127.0.0.1", srv.port());
        auto sending = corio::create_task([](corio::stream_writer w, const std::string& data,
                                             std::uint64_t seed) -> corio::coro<> {
            std::size_t at = 0;
            while (at < data.size()) {
                const std::size_t piece = 1 + (seed * 7919 + at) % (48 * 1024);
                w.write(std::string_view(data).substr(at, piece));
                co_await w.drain();
                at += std::min(piece, data.size() - at);
            }
            w.write_eof();
        }(writer, data, seed));
        try {
            for (;;) {
                const std::string piece = co_await reader.read(32 * 1024);
                if (piece.empty()) break;
                echoed += piece;
            }
        } catch (...) {
            failure = std::current_exception();
        }
        writer.abort();
        try {
            co_await sending;
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
    } catch (...) {
        failure = std::current_exception();
    }
    srv.close();
    co_await srv.wait_closed();
    // No byte lost, reordered or made up: a prefix of what was sent, all of it if no error.
    CHECK(first_difference(echoed, data.substr(0, echoed.size())) == -1);
    if (failure) std::rethrow_exception(failure);
    CHECK(echoed.size() == data.size());
}

// Datagrams arrive whole or not at all (UDP may drop them; the kernel never cuts one).
corio::coro<> datagram_exchange(std::uint64_t seed) {
    corio::datagram_endpoint a = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
    corio::datagram_endpoint b = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
    const corio::socket_address to_a = a.local_address();
    std::vector<std::string> sent;
    for (int i = 0; i < 16; ++i) {
        sent.push_back(random_bytes(1 + (seed * 131 + static_cast<std::uint64_t>(i) * 977) % 1400,
                                    seed + static_cast<std::uint64_t>(i)));
        co_await b.send_to(sent.back(), to_a);
    }
    for (int i = 0; i < 16; ++i) {
        corio::datagram got;
        try {
            got = co_await corio::wait_for(a.recv_from(), 200ms);
        } catch (const corio::timeout_error&) {
            break;  // the rest was dropped, as UDP may (not a hang: nothing more was sent)
        }
        bool known = false;
        for (const std::string& s : sent) known = known || s == got.data;
        CHECK(known);
    }
}

// A file written and read back whole, or an error.
corio::coro<> file_round_trip(std::uint64_t seed, std::filesystem::path path) {
    const std::string data = random_bytes(3 * 1024 * 1024 + seed % 1000, seed);
    {
        corio::file out = co_await corio::file::open(
            path, corio::open_mode::write | corio::open_mode::create | corio::open_mode::truncate);
        co_await out.write_all(data);
        co_await out.close();
    }
    corio::file in = co_await corio::file::open(path);
    const std::string back = co_await in.read_all();
    CHECK(first_difference(back, data) == -1);
    const std::string middle = co_await in.read_at(12345, 100000);
    CHECK(middle == data.substr(12345, 100000));
    co_await in.close();
}

// `cat` echoes what it is fed: all of it, or an error; the child is reaped either way.
corio::coro<> subprocess_round_trip(std::uint64_t seed) {
    const std::string data = random_bytes(256 * 1024 + seed % 777, seed);
    corio::process p = co_await corio::create_subprocess_exec(
        "cat", {}, {.stdin_ = corio::pipe, .stdout_ = corio::pipe});
    std::exception_ptr failure;
    try {
        const corio::communicate_result result = co_await p.communicate(data);
        CHECK(first_difference(result.out, data.substr(0, result.out.size())) == -1);
        CHECK(result.out.size() == data.size());
    } catch (...) {
        failure = std::current_exception();
        p.kill();  // nothing if it has exited already; the wait below reaps it either way
    }
    (void)co_await p.wait();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace

TEST_CASE("hostile faults: an echo over TCP ends intact or with an I/O error", "[faults]") {
    CORIO_REQUIRE_BACKEND();
    check_under_faults("hostile echo", 40,
                       [](std::uint64_t seed) { return echo_round_trip(seed); });
}

TEST_CASE("hostile faults: datagrams arrive whole or not at all", "[faults]") {
    CORIO_REQUIRE_BACKEND();
    check_under_faults("hostile datagrams", 40,
                       [](std::uint64_t seed) { return datagram_exchange(seed); });
}

TEST_CASE("hostile faults: a file written and read back is whole or an error", "[faults]") {
    CORIO_REQUIRE_BACKEND();
    const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                       ("corio-hostile-" + std::to_string(::getpid()) + ".bin");
    check_under_faults("hostile files", 30,
                       [&path](std::uint64_t seed) { return file_round_trip(seed, path); });
    std::filesystem::remove(path);
}

TEST_CASE("hostile faults: a subprocess's pipes carry everything or fail, and it is reaped",
          "[faults]") {
    CORIO_REQUIRE_BACKEND();
    check_under_faults("hostile subprocesses", 20,
                       [](std::uint64_t seed) { return subprocess_round_trip(seed); });
}
