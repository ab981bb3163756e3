// TLS (include/corio/tls.hpp, net/tls_context.hpp, net/tls_options.hpp): corio clients and
// servers with each other and with peers corio did not write (Python's ssl and asyncio,
// `openssl s_server` / `s_client`, curl). Echo and close_notify, certificate and host name
// verification (and the server serving on after a failed handshake), ALPN, TLS 1.2 and 1.3,
// start_tls both ways (corio and Python on the other end), 16 MiB each way at once, a plain-text
// client at a TLS port, a thousand handshakes without a descriptor more, a peer ending without
// close_notify, and handshakes cut short (cancelled, timed out) leaving nothing behind.
//
// The certificates are made at run time (`openssl req`) in a temporary directory, removed at
// exit; without an `openssl` program the cases are skipped, saying so, as are the Python ones
// without /usr/bin/python3 and the curl one without curl. CTest runs it once per backend.
#include <corio/tls.hpp>

#include "support/catch.hpp"
#include "support/io_helpers.hpp"
#include "support/python_peer.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/gather.hpp>
#include <corio/net/connection.hpp>
#include <corio/net/server.hpp>
#include <corio/net/stream.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/system/process.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::contains;
using corio_test::eventually;
using corio_test::exception_log;
using corio_test::frame_leak_check;
using corio_test::holds;
using corio_test::open_descriptors;
using corio_test::python_child;
using corio_test::stopwatch;
using corio_test::what_of;

namespace {

// --- programs and certificates --------------------------------------------------------------

// `name` found in PATH (as posix_spawnp and create_subprocess_exec look it up), or empty.
std::string find_program(const char* name) {
    const char* path = std::getenv("PATH");
    std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    while (!dirs.empty()) {
        const std::size_t colon = dirs.find(':');
        const std::string_view dir = dirs.substr(0, colon);
        dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
        if (dir.empty()) continue;
        std::string candidate = std::string(dir) + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
}

// Runs `argv` to its end, its output to /dev/null, outside any loop; its exit status (-1 if it
// could not be started or was killed).
int run_quietly(const std::vector<std::string>& argv_strings) {
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    std::vector<std::string> copies = argv_strings;
    std::vector<char*> argv;
    for (auto& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return -1;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The test certificates: self-signed, made once for the process in a temporary directory that
// goes at exit. cert.pem is for CN=localhost (SAN DNS:localhost, IP:127.0.0.1); wrong.pem is
// for CN=wrong.example (SAN DNS:wrong.example only).
class certificate_store {
public:
    certificate_store() {
        if (find_program("openssl").empty()) {
            missing = "no openssl program in PATH to make the test certificates";
            return;
        }
        char pattern[] = "/tmp/corio-tls-test-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) {
            error = std::string("mkdtemp: ") + std::strerror(errno);
            return;
        }
        dir = pattern;
        cert = dir + "/cert.pem";
        key = dir + "/key.pem";
        wrong_cert = dir + "/wrong.pem";
        wrong_key = dir + "/wrong-key.pem";
        if (!make("localhost", "DNS:localhost,IP:127.0.0.1", cert, key) ||
            !make("wrong.example", "DNS:wrong.example", wrong_cert, wrong_key)) {
            return;
        }
        ok = true;
    }
    certificate_store(const certificate_store&) = delete;
    certificate_store& operator=(const certificate_store&) = delete;
    ~certificate_store() {
        if (dir.empty()) return;
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }

    bool ok = false;
    std::string missing;  // why the cases are skipped
    std::string error;    // why they fail
    std::string dir, cert, key, wrong_cert, wrong_key;

private:
    bool make(const std::string& cn, const std::string& san, const std::string& cert_path,
              const std::string& key_path) {
        const std::vector<std::string> argv = {
            "openssl",  "req",       "-x509",   "-newkey",
            "rsa:2048", "-nodes",    "-keyout", key_path,
            "-out",     cert_path,   "-days",   "2",
            "-subj",    "/CN=" + cn, "-addext", "subjectAltName=" + san};
        const int status = run_quietly(argv);
        if (status != 0) {
            error = "openssl req for CN=" + cn + " exited with " + std::to_string(status);
            return false;
        }
        return true;
    }
};

const certificate_store& certs() {
    static const certificate_store store;
    return store;
}

#define REQUIRE_CERTS()                                                                            \
    do {                                                                                           \
        if (!certs().missing.empty()) CORIO_SKIP("TLS tests skipped: " << certs().missing);        \
        if (!certs().ok) FAIL("cannot make the test certificates: " << certs().error);             \
    } while (false)

corio::tls_context server_context() {
    return corio::tls_context::server(certs().cert, certs().key);
}

// A client context that trusts cert.pem (and the system's authorities).
corio::tls_context client_context() {
    corio::tls_context context = corio::tls_context::client();
    context.load_verify_locations(certs().cert);
    return context;
}

bool is_tls_version(const std::string& version) {
    return version == "TLSv1.2" || version == "TLSv1.3";
}

static_assert(std::is_base_of_v<std::runtime_error, corio::tls_error>);
static_assert(std::is_base_of_v<corio::tls_error, corio::tls_verify_error>);
static_assert(!std::is_base_of_v<corio::tls_error, corio::timeout_error>);

// --- plumbing ---------------------------------------------------------------------------------

// Runs `main` on a new loop, failing with corio::timeout_error after `limit` rather than hanging.
void run_within(corio::coro<> main, std::chrono::seconds limit = 30s) {
    corio::run([](corio::coro<> main, std::chrono::seconds limit) -> corio::coro<> {
        co_await corio::wait_for(std::move(main), limit);
    }(std::move(main), limit));
}

// The exception `awaitable` ends with (null when it succeeds); a cancellation goes through.
template <class A>
corio::coro<std::exception_ptr> failure_of(A awaitable) {
    std::exception_ptr error;
    try {
        (void)co_await std::move(awaitable);
    } catch (const corio::cancelled_error&) {
        throw;
    } catch (...) {
        error = std::current_exception();
    }
    co_return error;
}

std::string upper(std::string s) {
    for (char& c : s) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return s;
}

// How many of the loop's exception handler reports carry `message`.
std::size_t reports_of(const exception_log& log, std::string_view message) {
    std::size_t n = 0;
    for (const auto& c : log.contexts()) {
        if (c.message == message) ++n;
    }
    return n;
}

// Everything the log holds, for INFO.
std::string describe(const exception_log& log) {
    std::string text;
    for (const auto& c : log.contexts())
        text += "[" + c.message + ": " + what_of(c.exception) + "] ";
    return text;
}

// A port nobody listens on now (bound, read, closed).
std::uint16_t free_port() {
    corio::unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
    return ntohs(address.sin_port);
}

// Kills the child at the end of the scope unless it has exited (a failed check must not leave
// an openssl server behind); the process handle reaps it.
class kill_at_exit {
public:
    explicit kill_at_exit(const corio::process& p) noexcept : p_(&p) {}
    kill_at_exit(const kill_at_exit&) = delete;
    kill_at_exit& operator=(const kill_at_exit&) = delete;
    ~kill_at_exit() {
        try {
            if (*p_ && !p_->returncode()) p_->kill();
        } catch (...) {
        }
    }

private:
    const corio::process* p_;
};

// --- what a server saw ------------------------------------------------------------------------

struct connection_seen {
    std::string version;
    std::string alpn;
    std::string peer_subject;
    bool can_write_eof = true;
};

struct server_record {
    std::vector<connection_seen> connections;  // as each handler started
    int finished = 0;                          // handlers that ended
    int eof_seen = 0;                          // of which read the end of the stream
    int lines = 0;
    std::vector<std::string> errors;  // what a handler's read or write threw
};

connection_seen seen_by(const corio::stream_writer& writer) {
    return {writer.tls_version(), writer.alpn_protocol(), writer.peer_certificate_subject(),
            writer.can_write_eof()};
}

// Answers each line in upper case; "bye\n" (any case) is answered, then the server closes
// first.
corio::coro<> upper_echo(server_record* rec, corio::stream_reader reader,
                         corio::stream_writer writer) {
    rec->connections.push_back(seen_by(writer));
    try {
        for (;;) {
            const std::string line = co_await reader.readline();
            if (line.empty()) {
                ++rec->eof_seen;
                break;
            }
            ++rec->lines;
            writer.write(upper(line));
            co_await writer.drain();
            if (upper(line) == "BYE\n") break;
        }
    } catch (const std::exception& e) {
        rec->errors.emplace_back(e.what());
    }
    writer.close();
    ++rec->finished;
}

auto upper_echo_for(server_record& rec) {
    return [rec = &rec](corio::stream_reader r, corio::stream_writer w) {
        return upper_echo(rec, std::move(r), std::move(w));
    };
}

// The STARTTLS protocol: "STARTTLS\n" in plain, answered "OK\n", then TLS both ways and
// upper_echo; "STARTTLS-NOW\n" starts TLS without an answer (the client's handshake follows its
// line at once, so its first bytes may already be in the reader's buffer).
corio::coro<> starttls_server(const corio::tls_context* ctx, server_record* rec,
                              corio::stream_reader reader, corio::stream_writer writer) {
    const std::string hello = co_await reader.readline();
    if (hello != "STARTTLS\n" && hello != "STARTTLS-NOW\n") {
        rec->errors.push_back("plain line: " + hello);
        writer.close();
        ++rec->finished;
        co_return;
    }
    if (!writer.tls_version().empty() || !writer.can_write_eof()) {
        rec->errors.emplace_back("TLS before start_tls");
    }
    if (hello == "STARTTLS\n") writer.write("OK\n");  // sent before the handshake, in plain
    co_await writer.start_tls(*ctx);
    co_await upper_echo(rec, std::move(reader), std::move(writer));
}

// Sends `count` lines over a fresh TLS connection and checks their echo; how many came back.
corio::coro<int> tls_echo_client(std::uint16_t port, const corio::tls_context* ctx, int id,
                                 int count) {
    auto [reader, writer] = co_await corio::open_connection(
        "127.0.0.1", port, {.tls = ctx, .server_hostname = "localhost"});
    int ok = 0;
    for (int i = 0; i < count; ++i) {
        const std::string line = "client " + std::to_string(id) + " line " + std::to_string(i) +
                                 " " + std::string(static_cast<std::size_t>(i % 37), 'x') + "\n";
        writer.write(line);
        const std::string back = co_await reader.readline();
        if (back == upper(line)) ++ok;
    }
    writer.close();
    co_await writer.wait_closed();
    co_return ok;
}

// The "PORT n" line a Python server prints (or "SKIP ..." when it cannot run).
corio::coro<std::string> read_first_line(corio::stream_reader& out) {
    co_return co_await corio::wait_for(out.readline(), 20s);
}

std::uint16_t port_of(const std::string& line) {
    if (line.rfind("PORT ", 0) != 0) throw std::runtime_error("python server said: " + line);
    return static_cast<std::uint16_t>(std::stoi(line.substr(5)));
}

// --- 1. corio with corio ----------------------------------------------------------------------

TEST_CASE("tls: corio client and corio server echo lines; version, peer subject, close_notify "
          "both ways",
          "[tls]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    run_within([](exception_log& log) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        const corio::tls_context client_ctx = client_context();
        CHECK(server_ctx.is_server());
        CHECK_FALSE(client_ctx.is_server());
        server_record rec;
        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        std::string client_version;
        {
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("127.0.0.1", srv.port(),
                                       {.tls = &client_ctx, .server_hostname = "localhost"}),
                20s);
            client_version = writer.tls_version();
            CHECK(is_tls_version(client_version));
            CHECK(contains(writer.peer_certificate_subject(), "CN=localhost"));
            CHECK(writer.alpn_protocol().empty());
            CHECK_FALSE(writer.can_write_eof());
            // One at a time, then 300 pipelined, then one line longer than a TLS record.
            for (int i = 0; i < 50; ++i) {
                const std::string line = "line " + std::to_string(i) + " " +
                                         std::string(static_cast<std::size_t>(i * 7), 'a') + "\n";
                writer.write(line);
                const std::string back = co_await corio::wait_for(reader.readline(), 20s);
                REQUIRE(back == upper(line));
            }
            std::vector<std::string> burst;
            for (int i = 0; i < 300; ++i) burst.push_back("burst " + std::to_string(i) + "\n");
            writer.writelines(burst);
            co_await writer.drain();
            for (const auto& line : burst) {
                const std::string_view back = co_await corio::wait_for(reader.readline_view(), 20s);
                REQUIRE(back == upper(line));
            }
            const std::string long_line = std::string(40000, 'l') + "\n";
            writer.write(long_line);
            const std::string long_back = co_await corio::wait_for(reader.readline(), 20s);
            CHECK(long_back == upper(long_line));
            // The client ends first: its close_notify is the end of the server's reader.
            writer.close();
            co_await corio::wait_for(writer.wait_closed(), 20s);
        }
        const bool first_done = co_await eventually([&] { return rec.finished == 1; }, 20000ms);
        REQUIRE(first_done);
        CHECK(rec.eof_seen == 1);
        REQUIRE(rec.connections.size() == 1);
        CHECK(rec.connections[0].version == client_version);
        CHECK(rec.connections[0].peer_subject.empty());  // no client certificate asked for
        CHECK(rec.connections[0].alpn.empty());
        CHECK_FALSE(rec.connections[0].can_write_eof);
        CHECK(rec.lines == 50 + 300 + 1);
        // The server ends first: the client reads the answer, then the end (close_notify).
        {
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("127.0.0.1", srv.port(),
                                       {.tls = &client_ctx, .server_hostname = "localhost"}),
                20s);
            writer.write("BYE\n");
            const std::string bye = co_await corio::wait_for(reader.readline(), 20s);
            CHECK(bye == "BYE\n");
            const std::string rest = co_await corio::wait_for(reader.read(), 20s);
            CHECK(rest.empty());
            writer.close();
        }
        // No server_hostname: the host connected to is the name checked, here the certificate's
        // IP address SAN (127.0.0.1)...
        {
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("127.0.0.1", srv.port(), {.tls = &client_ctx}), 20s);
            writer.write("by address\n");
            const std::string back = co_await corio::wait_for(reader.readline(), 20s);
            CHECK(back == "BY ADDRESS\n");
            writer.close();
        }
        // ...or its DNS name, for a host name ("localhost" may be tried as ::1 first, where
        // nothing listens).
        {
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("localhost", srv.port(), {.tls = &client_ctx}), 20s);
            writer.write("by name\n");
            const std::string back = co_await corio::wait_for(reader.readline(), 20s);
            CHECK(back == "BY NAME\n");
            writer.close();
            co_await corio::wait_for(writer.wait_closed(), 20s);
        }
        const bool all_done = co_await eventually([&] { return rec.finished == 4; }, 20000ms);
        CHECK(all_done);
        CHECK(rec.errors.empty());
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

TEST_CASE("tls: TLS 1.2 between corio peers (the client's maximum set through native_handle)",
          "[tls]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    run_within([](exception_log& log) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        corio::tls_context client_ctx = client_context();
        REQUIRE(SSL_CTX_set_max_proto_version(client_ctx.native_handle(), TLS1_2_VERSION) == 1);
        server_record rec;
        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        {
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("127.0.0.1", srv.port(),
                                       {.tls = &client_ctx, .server_hostname = "localhost"}),
                20s);
            CHECK(writer.tls_version() == "TLSv1.2");
            CHECK(contains(writer.peer_certificate_subject(), "CN=localhost"));
            for (int i = 0; i < 20; ++i) {
                const std::string line = "tls12 " + std::to_string(i) + "\n";
                writer.write(line);
                const std::string back = co_await corio::wait_for(reader.readline(), 20s);
                REQUIRE(back == upper(line));
            }
            writer.close();
            co_await corio::wait_for(writer.wait_closed(), 20s);
        }
        const bool done = co_await eventually([&] { return rec.finished == 1; }, 20000ms);
        REQUIRE(done);
        CHECK(rec.eof_seen == 1);
        REQUIRE(rec.connections.size() == 1);
        CHECK(rec.connections[0].version == "TLSv1.2");
        CHECK(rec.errors.empty());
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// --- contexts and the wire ------------------------------------------------------------------

TEST_CASE("tls: context errors are tls_error naming the file; bad names are invalid_argument",
          "[tls][context]") {
    REQUIRE_CERTS();
    const std::string missing = certs().dir + "/no-such.pem";
    const auto what_of_server = [](const std::string& cert, const std::string& key) {
        try {
            (void)corio::tls_context::server(cert, key);
        } catch (const corio::tls_error& e) {
            return std::string(e.what());
        }
        return std::string("<no tls_error>");
    };
    const std::string no_cert = what_of_server(missing, certs().key);
    INFO(no_cert);
    CHECK(contains(no_cert, missing));
    const std::string no_key = what_of_server(certs().cert, missing);
    INFO(no_key);
    CHECK(contains(no_key, missing));
    const std::string mismatch = what_of_server(certs().cert, certs().wrong_key);
    INFO(mismatch);
    CHECK(contains(mismatch, certs().wrong_key));
    // OpenSSL's own check ("key values mismatch"), or corio's ("does not match").
    CHECK((contains(mismatch, "mismatch") || contains(mismatch, "does not match")));
    corio::tls_context client = corio::tls_context::client();
    CHECK_THROWS_AS(client.load_verify_locations(missing), corio::tls_error);
    CHECK_NOTHROW(client.load_verify_locations(certs().dir));  // a directory: not hashed, but fine
    CHECK_THROWS_AS(corio::tls_host_name(std::string(254, 'h')), std::invalid_argument);
    CHECK_THROWS_AS(corio::tls_host_name(std::string("nul\0inside", 10)), std::invalid_argument);
    CHECK(corio::tls_host_name(std::string(253, 'h')).view().size() == 253);
    // Copies share one SSL_CTX.
    const corio::tls_context copy = client;
    CHECK(copy.native_handle() == client.native_handle());
}

// Copies what `from` reads to `to`, recording it, then half-closes `to`.
corio::coro<> pump(corio::stream_reader from, corio::stream_writer to, std::string* capture) {
    for (;;) {
        const std::string chunk = co_await from.read(65536);
        if (chunk.empty()) break;
        capture->append(chunk);
        to.write(chunk);
        co_await to.drain();
    }
    to.write_eof();
}

struct relay_record {
    std::string up;    // client to server, as sent on the wire
    std::string down;  // server to client
    bool done = false;
};

// A plain TCP relay to 127.0.0.1:`port` that records both directions.
corio::coro<> relay(relay_record* rec, std::uint16_t port, corio::stream_reader reader,
                    corio::stream_writer writer) {
    auto [up_reader, up_writer] = co_await corio::open_connection("127.0.0.1", port);
    (void)co_await corio::gather(pump(reader, up_writer, &rec->up),
                                 pump(up_reader, writer, &rec->down));
    up_writer.close();
    writer.close();
    rec->done = true;
}

TEST_CASE("tls: what goes on the wire is TLS records, not the plaintext (through a recording "
          "relay)",
          "[tls][wire]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    run_within([](exception_log& log) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        const corio::tls_context client_ctx = client_context();
        server_record rec;
        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        relay_record wire;
        corio::server relay_srv = co_await corio::start_server(
            [wire = &wire, port = srv.port()](corio::stream_reader r, corio::stream_writer w) {
                return relay(wire, port, std::move(r), std::move(w));
            },
            "127.0.0.1", 0);
        std::string secret;
        while (secret.size() < 50000) secret += "secret-plaintext-";
        secret += "\n";
        std::size_t plaintext = 0;
        {
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("127.0.0.1", relay_srv.port(),
                                       {.tls = &client_ctx, .server_hostname = "localhost"}),
                20s);
            for (int i = 0; i < 20; ++i) {
                writer.write(secret);
                plaintext += secret.size();
                const std::string back = co_await corio::wait_for(reader.readline(), 20s);
                REQUIRE(back == upper(secret));
            }
            writer.close();
            co_await corio::wait_for(writer.wait_closed(), 20s);
        }
        const bool done =
            co_await eventually([&] { return wire.done && rec.finished == 1; }, 20000ms);
        REQUIRE(done);
        CHECK(rec.eof_seen == 1);
        REQUIRE(wire.up.size() > plaintext);  // records, a handshake and close_notify
        REQUIRE(wire.down.size() > plaintext);
        CHECK(wire.up[0] == '\x16');  // a handshake record: the ClientHello
        CHECK(wire.down[0] == '\x16');
        CHECK_FALSE(contains(wire.up, "secret-plaintext-secret"));
        CHECK_FALSE(contains(wire.down, "SECRET-PLAINTEXT-SECRET"));
        relay_srv.close();
        srv.close();
        co_await corio::wait_for(relay_srv.wait_closed(), 5s);
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// --- 2. verification ------------------------------------------------------------------------

// What a TLS connection attempt to `port` ends with: null when it succeeds (then one line is
// exchanged and checked).
corio::coro<std::exception_ptr> try_connect(std::uint16_t port, const corio::tls_context* ctx,
                                            std::string server_hostname) {
    std::exception_ptr error;
    try {
        auto [reader, writer] = co_await corio::wait_for(
            corio::open_connection("127.0.0.1", port,
                                   {.tls = ctx, .server_hostname = server_hostname}),
            20s);
        writer.write("verified\n");
        const std::string back = co_await corio::wait_for(reader.readline(), 20s);
        CHECK(back == "VERIFIED\n");
        writer.close();
        co_await corio::wait_for(writer.wait_closed(), 20s);
    } catch (const corio::cancelled_error&) {
        throw;
    } catch (...) {
        error = std::current_exception();
    }
    co_return error;
}

long verify_result_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const corio::tls_verify_error& e) {
        return e.verify_result();
    } catch (...) {
        return -1;
    }
}

TEST_CASE("tls: verification failures are tls_verify_error; the server reports its failed "
          "handshakes and serves on",
          "[tls][verify]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    server_record rec;
    server_record wrong_rec;
    run_within([](exception_log& log, server_record& rec,
                  server_record& wrong_rec) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        const corio::tls_context wrong_server_ctx =
            corio::tls_context::server(certs().wrong_cert, certs().wrong_key);
        const corio::tls_context system_only = corio::tls_context::client();
        const corio::tls_context client_ctx = client_context();
        corio::tls_context wrong_client_ctx = corio::tls_context::client();
        wrong_client_ctx.load_verify_locations(certs().wrong_cert);

        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        corio::server wrong_srv = co_await corio::start_server(
            upper_echo_for(wrong_rec), "127.0.0.1", 0, {.tls = &wrong_server_ctx});

        // The system's trust store alone does not know the self-signed certificate.
        const std::exception_ptr untrusted =
            co_await try_connect(srv.port(), &system_only, "localhost");
        INFO("untrusted: " << what_of(untrusted));
        CHECK(holds<corio::tls_verify_error>(untrusted));
        CHECK(contains(what_of(untrusted), "certificate verify failed"));
        CHECK(contains(what_of(untrusted), "self-signed certificate"));
        CHECK(verify_result_of(untrusted) == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);

        // Trusted, but not for the name asked for.
        const std::exception_ptr misnamed =
            co_await try_connect(srv.port(), &client_ctx, "wrong.example");
        INFO("misnamed: " << what_of(misnamed));
        CHECK(holds<corio::tls_verify_error>(misnamed));
        CHECK(contains(what_of(misnamed), "certificate verify failed"));
        CHECK(verify_result_of(misnamed) == X509_V_ERR_HOSTNAME_MISMATCH);

        // A server whose (trusted) certificate is for wrong.example: refused for localhost and
        // for 127.0.0.1 (no IP address SAN), accepted for wrong.example.
        const std::exception_ptr wrong_for_localhost =
            co_await try_connect(wrong_srv.port(), &wrong_client_ctx, "localhost");
        INFO("wrong certificate for localhost: " << what_of(wrong_for_localhost));
        CHECK(holds<corio::tls_verify_error>(wrong_for_localhost));
        CHECK(verify_result_of(wrong_for_localhost) == X509_V_ERR_HOSTNAME_MISMATCH);
        const std::exception_ptr wrong_for_address =
            co_await try_connect(wrong_srv.port(), &wrong_client_ctx, "127.0.0.1");
        INFO("wrong certificate for 127.0.0.1: " << what_of(wrong_for_address));
        CHECK(holds<corio::tls_verify_error>(wrong_for_address));
        CHECK(verify_result_of(wrong_for_address) == X509_V_ERR_IP_ADDRESS_MISMATCH);
        const std::exception_ptr wrong_for_its_name =
            co_await try_connect(wrong_srv.port(), &wrong_client_ctx, "wrong.example");
        INFO("wrong certificate for wrong.example: " << what_of(wrong_for_its_name));
        CHECK_FALSE(wrong_for_its_name);

        // A client that checks nothing connects to either.
        corio::tls_context trusting = corio::tls_context::client();
        trusting.set_verify(corio::tls_verify::none);
        const std::exception_ptr unchecked =
            co_await try_connect(wrong_srv.port(), &trusting, "localhost");
        INFO("unverified: " << what_of(unchecked));
        CHECK_FALSE(unchecked);

        // The first server serves on: a good client, three times.
        for (int i = 0; i < 3; ++i) {
            const std::exception_ptr good =
                co_await try_connect(srv.port(), &client_ctx, "localhost");
            INFO("good client " << i << ": " << what_of(good));
            CHECK_FALSE(good);
        }
        // Each refused handshake was reported by its server.
        const bool reported = co_await eventually(
            [&] { return reports_of(log, "TLS handshake failed") >= 4; }, 10000ms);
        INFO(describe(log));
        CHECK(reported);
        const bool served = co_await eventually(
            [&] { return rec.finished == 3 && wrong_rec.finished == 2; }, 10000ms);
        CHECK(served);
        srv.close();
        wrong_srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
        co_await corio::wait_for(wrong_srv.wait_closed(), 5s);
    }(log, rec, wrong_rec));
    INFO(describe(log));
    CHECK(reports_of(log, "TLS handshake failed") == 4);
    CHECK(log.size() == 4);  // nothing else went wrong
    for (const auto& c : log.contexts()) {
        INFO(c.message << ": " << what_of(c.exception));
        CHECK(holds<corio::tls_error>(c.exception));
        CHECK_FALSE(c.task_name.empty());
    }
    // Handlers run only after a good handshake.
    CHECK(rec.connections.size() == 3);
    CHECK(wrong_rec.connections.size() == 2);
    CHECK(rec.errors.empty());
    CHECK(wrong_rec.errors.empty());
}

// --- 3. ALPN ----------------------------------------------------------------------------------

TEST_CASE("tls: ALPN: the server's first protocol the client offers; none when no overlap",
          "[tls][alpn]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    run_within([](exception_log& log) -> corio::coro<> {
        log.install(corio::get_running_loop());
        corio::tls_context server_ctx = server_context();
        server_ctx.set_alpn({"h2", "http/1.1"});
        server_record rec;
        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        corio::tls_context http11 = client_context();
        http11.set_alpn({"http/1.1"});
        const corio::tls_context none = client_context();
        corio::tls_context both = client_context();
        both.set_alpn({"http/1.1", "h2"});  // the server's order wins
        corio::tls_context other = client_context();
        other.set_alpn({"spdy/3", "x-corio"});
        const std::vector<const corio::tls_context*> clients = {&http11, &none, &both, &other};
        std::vector<std::string> client_alpn;
        for (const corio::tls_context* ctx : clients) {
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("127.0.0.1", srv.port(),
                                       {.tls = ctx, .server_hostname = "localhost"}),
                20s);
            client_alpn.push_back(writer.alpn_protocol());
            writer.write("alpn\n");
            const std::string back = co_await corio::wait_for(reader.readline(), 20s);
            CHECK(back == "ALPN\n");
            writer.close();
            co_await corio::wait_for(writer.wait_closed(), 20s);
        }
        const std::vector<std::string> expected = {"http/1.1", "", "h2", ""};
        CHECK(client_alpn == expected);
        const bool done = co_await eventually([&] { return rec.finished == 4; }, 20000ms);
        REQUIRE(done);
        REQUIRE(rec.connections.size() == 4);
        std::vector<std::string> server_alpn;
        for (const auto& c : rec.connections) server_alpn.push_back(c.alpn);
        CHECK(server_alpn == expected);
        CHECK_THROWS_AS(http11.set_alpn({""}), std::invalid_argument);
        CHECK_THROWS_AS(http11.set_alpn({std::string(256, 'p')}), std::invalid_argument);
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// --- 4. start_tls -----------------------------------------------------------------------------

// The corio end of the STARTTLS exchange as a client: plain line, "OK\n", start_tls, echo.
corio::coro<> starttls_client(std::uint16_t port, const corio::tls_context* ctx, bool wait_ok) {
    auto [reader, writer] =
        co_await corio::wait_for(corio::open_connection("127.0.0.1", port), 20s);
    CHECK(writer.tls_version().empty());
    CHECK(writer.peer_certificate_subject().empty());
    CHECK(writer.can_write_eof());
    if (wait_ok) {
        writer.write("STARTTLS\n");
        const std::string ok = co_await corio::wait_for(reader.readline(), 20s);
        REQUIRE(ok == "OK\n");
    } else {
        writer.write("STARTTLS-NOW\n");  // the ClientHello follows at once
    }
    co_await corio::wait_for(writer.start_tls(*ctx, {.server_hostname = "localhost"}), 20s);
    CHECK(is_tls_version(writer.tls_version()));
    CHECK(contains(writer.peer_certificate_subject(), "CN=localhost"));
    CHECK_FALSE(writer.can_write_eof());
    for (int i = 0; i < 30; ++i) {
        const std::string line = "secret " + std::to_string(i) + "\n";
        writer.write(line);
        const std::string back = co_await corio::wait_for(reader.readline(), 20s);
        REQUIRE(back == upper(line));
    }
    // A stream is upgraded once.
    const std::exception_ptr again =
        co_await failure_of(writer.start_tls(*ctx, {.server_hostname = "localhost"}));
    INFO(what_of(again));
    CHECK(holds<corio::invalid_state_error>(again));
    writer.write("still fine\n");
    const std::string back = co_await corio::wait_for(reader.readline(), 20s);
    CHECK(back == "STILL FINE\n");
    writer.close();
    co_await corio::wait_for(writer.wait_closed(), 20s);
}

TEST_CASE("tls: start_tls upgrades a plain connection, corio at both ends", "[tls][starttls]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    run_within([](exception_log& log) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        const corio::tls_context client_ctx = client_context();
        server_record rec;
        corio::server srv = co_await corio::start_server(
            [ctx = &server_ctx, rec = &rec](corio::stream_reader r, corio::stream_writer w) {
                return starttls_server(ctx, rec, std::move(r), std::move(w));
            },
            "127.0.0.1", 0);  // a plain server
        co_await starttls_client(srv.port(), &client_ctx, true);
        co_await starttls_client(srv.port(), &client_ctx, false);
        // Two at once.
        (void)co_await corio::gather(starttls_client(srv.port(), &client_ctx, true),
                                     starttls_client(srv.port(), &client_ctx, false));
        const bool done = co_await eventually([&] { return rec.finished == 4; }, 20000ms);
        REQUIRE(done);
        CHECK(rec.eof_seen == 4);
        REQUIRE(rec.connections.size() == 4);
        for (const auto& c : rec.connections) {
            CHECK(is_tls_version(c.version));
            CHECK_FALSE(c.can_write_eof);
        }
        INFO(rec.errors.size() << " errors, first: "
                               << (rec.errors.empty() ? std::string() : rec.errors[0]));
        CHECK(rec.errors.empty());
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// A Python asyncio server for one connection: "STARTTLS\n" in plain, "OK\n", then
// StreamWriter.start_tls (Python 3.11+) and an upper-case echo until the end.
const char* const python_starttls_server = R"PY(
import asyncio, ssl, sys
if sys.version_info < (3, 11):
    print('SKIP Python', sys.version.split()[0], 'has no StreamWriter.start_tls', flush=True)
    sys.exit(0)
async def main(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    done = asyncio.Event()
    report = []
    async def handle(r, w):
        try:
            line = await r.readline()
            if line != b'STARTTLS\n':
                report.append('BAD ' + repr(line))
                return
            w.write(b'OK\n')
            await w.drain()
            await w.start_tls(ctx)
            report.append(w.get_extra_info('ssl_object').version())
            n = 0
            while True:
                line = await r.readline()
                if not line:
                    break
                n += 1
                w.write(line.upper())
                await w.drain()
            report.append(str(n))
            w.close()
            try:
                await w.wait_closed()
            except Exception as e:
                report.append('wait_closed ' + repr(e))
        except Exception as e:
            report.append('ERROR ' + repr(e))
        finally:
            done.set()
    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    print('PORT', server.sockets[0].getsockname()[1], flush=True)
    await asyncio.wait_for(done.wait(), 30)
    server.close()
    await server.wait_closed()
    print('DONE', ' '.join(report), flush=True)
asyncio.run(main(sys.argv[1], sys.argv[2]))
)PY";

// A Python asyncio client: "STARTTLS\n", "OK\n", StreamWriter.start_tls, lines echoed.
const char* const python_starttls_client = R"PY(
import asyncio, ssl, sys
if sys.version_info < (3, 11):
    print('SKIP Python', sys.version.split()[0], 'has no StreamWriter.start_tls', flush=True)
    sys.exit(0)
async def main(port, cafile):
    r, w = await asyncio.wait_for(asyncio.open_connection('127.0.0.1', port), 10)
    w.write(b'STARTTLS\n')
    await w.drain()
    ok = await asyncio.wait_for(r.readline(), 10)
    if ok != b'OK\n':
        print('BAD', ok, flush=True); sys.exit(1)
    ctx = ssl.create_default_context(cafile=cafile)
    await asyncio.wait_for(w.start_tls(ctx, server_hostname='localhost'), 10)
    version = w.get_extra_info('ssl_object').version()
    for i in range(40):
        line = f'python secret {i}\n'.encode()
        w.write(line)
        await w.drain()
        back = await asyncio.wait_for(r.readline(), 10)
        if back != line.upper():
            print('MISMATCH', i, back, flush=True); sys.exit(1)
    w.close()
    await w.wait_closed()
    print('OK', version, flush=True)
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
)PY";

TEST_CASE("tls: start_tls against Python asyncio's StreamWriter.start_tls, both ways",
          "[tls][starttls][interop]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    REQUIRE_PYTHON();
    frame_leak_check leaks;
    exception_log log;
    std::string skipped;
    run_within([](exception_log& log, std::string& skipped) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        const corio::tls_context client_ctx = client_context();
        // corio client, Python server.
        {
            python_child server(python_starttls_server, {certs().cert, certs().key});
            corio::stream_reader out = server.take_stdout();
            const std::string first = co_await read_first_line(out);
            if (first.rfind("SKIP", 0) == 0) {
                skipped = first;
                co_return;
            }
            const std::uint16_t port = port_of(first);
            auto [reader, writer] =
                co_await corio::wait_for(corio::open_connection("127.0.0.1", port), 20s);
            writer.write("STARTTLS\n");
            const std::string ok = co_await corio::wait_for(reader.readline(), 20s);
            REQUIRE(ok == "OK\n");
            co_await corio::wait_for(writer.start_tls(client_ctx, {.server_hostname = "localhost"}),
                                     20s);
            CHECK(is_tls_version(writer.tls_version()));
            CHECK(contains(writer.peer_certificate_subject(), "CN=localhost"));
            for (int i = 0; i < 40; ++i) {
                const std::string line = "to python " + std::to_string(i) + "\n";
                writer.write(line);
                const std::string back = co_await corio::wait_for(reader.readline(), 20s);
                REQUIRE(back == upper(line));
            }
            const std::string version = writer.tls_version();
            writer.close();
            co_await corio::wait_for(writer.wait_closed(), 20s);
            const std::string done = co_await corio::wait_for(out.readline(), 20s);
            CHECK(done == "DONE " + version + " 40\n");
            const int status = co_await server.wait();
            CHECK(status == 0);
        }
        // Python client, corio server.
        {
            server_record rec;
            corio::server srv = co_await corio::start_server(
                [ctx = &server_ctx, rec = &rec](corio::stream_reader r, corio::stream_writer w) {
                    return starttls_server(ctx, rec, std::move(r), std::move(w));
                },
                "127.0.0.1", 0);
            python_child client(python_starttls_client, {std::to_string(srv.port()), certs().cert});
            corio::stream_reader out = client.take_stdout();
            const std::string report = co_await corio::wait_for(out.readline(), 20s);
            INFO("python said: " << report);
            REQUIRE(report.rfind("OK TLSv1.", 0) == 0);
            const int status = co_await client.wait();
            CHECK(status == 0);
            const bool done = co_await eventually([&] { return rec.finished == 1; }, 20000ms);
            REQUIRE(done);
            CHECK(rec.eof_seen == 1);
            CHECK(rec.lines == 40);
            REQUIRE(rec.connections.size() == 1);
            CHECK(report == "OK " + rec.connections[0].version + "\n");
            CHECK(rec.errors.empty());
            srv.close();
            co_await corio::wait_for(srv.wait_closed(), 5s);
        }
    }(log, skipped));
    if (!skipped.empty()) CORIO_SKIP("start_tls with Python: " << skipped);
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// --- 5. bulk ----------------------------------------------------------------------------------

constexpr std::size_t bulk_size = std::size_t{16} << 20;
constexpr std::size_t client_offset = 0;   // where client-to-server bytes start in the pattern
constexpr std::size_t server_offset = 97;  // and server-to-client ones

// Byte i of the pattern, bulk_size + 128 of them.
const std::string& bulk_pattern() {
    static const std::string pattern = [] {
        std::string p(bulk_size + 128, '\0');
        for (std::size_t i = 0; i < p.size(); ++i) {
            p[i] = static_cast<char>((static_cast<std::uint32_t>(i) * 2654435761U) >> 24);
        }
        return p;
    }();
    return pattern;
}

// Writes the pattern from `offset`, bulk_size bytes, in chunks of varied sizes with drain().
corio::coro<std::size_t> send_pattern(corio::stream_writer writer, std::size_t offset) {
    const std::string& p = bulk_pattern();
    constexpr std::size_t chunks[] = {1, 1000, 16384, 16385, 65536, 100003, 262144, 1 << 20};
    std::size_t sent = 0;
    for (std::size_t i = 0; sent < bulk_size; ++i) {
        const std::size_t n = std::min(chunks[i % std::size(chunks)], bulk_size - sent);
        writer.write(std::string_view(p.data() + offset + sent, n));
        co_await writer.drain();
        sent += n;
    }
    co_return sent;
}

// Reads bulk_size bytes and checks them against the pattern from `offset`: the count of good
// bytes before the first bad one (or the end of the stream).
corio::coro<std::size_t> check_pattern(corio::stream_reader reader, std::size_t offset) {
    const std::string& p = bulk_pattern();
    std::vector<char> buffer(std::size_t{100} * 1024);
    constexpr std::size_t reads[] = {7, 4096, 16384, 65536, 100 * 1024};
    std::size_t good = 0;
    for (std::size_t i = 0; good < bulk_size; ++i) {
        const std::size_t want = std::min(reads[i % std::size(reads)], bulk_size - good);
        const std::size_t n = co_await reader.read_into(std::span<char>(buffer.data(), want));
        if (n == 0) break;
        const char* expected = p.data() + offset + good;
        if (std::memcmp(buffer.data(), expected, n) != 0) {
            std::size_t k = 0;
            while (buffer[k] == expected[k]) ++k;
            co_return good + k;
        }
        good += n;
    }
    co_return good;
}

struct bulk_result {
    std::size_t sent = 0;
    std::size_t checked = 0;
    std::string rest = "<not read>";
    bool done = false;
    std::string error;
};

corio::coro<> bulk_server(bulk_result* result, corio::stream_reader reader,
                          corio::stream_writer writer) {
    try {
        auto [sent, checked] = co_await corio::gather(send_pattern(writer, server_offset),
                                                      check_pattern(reader, client_offset));
        result->sent = sent;
        result->checked = checked;
        result->rest = co_await reader.read();  // then the client's close_notify
    } catch (const std::exception& e) {
        result->error = e.what();
    }
    writer.close();
    result->done = true;
}

TEST_CASE("tls: 16 MiB each way at once, byte-checked, corio client and server", "[tls][bulk]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    (void)bulk_pattern();
    run_within([](exception_log& log) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        const corio::tls_context client_ctx = client_context();
        bulk_result server_side;
        corio::server srv = co_await corio::start_server(
            [result = &server_side](corio::stream_reader r, corio::stream_writer w) {
                return bulk_server(result, std::move(r), std::move(w));
            },
            "127.0.0.1", 0, {.tls = &server_ctx});
        auto [reader, writer] = co_await corio::wait_for(
            corio::open_connection("127.0.0.1", srv.port(),
                                   {.tls = &client_ctx, .server_hostname = "localhost"}),
            20s);
        auto [sent, checked] =
            co_await corio::wait_for(corio::gather(send_pattern(writer, client_offset),
                                                   check_pattern(reader, server_offset)),
                                     25s);
        CHECK(sent == bulk_size);
        CHECK(checked == bulk_size);
        writer.close();
        co_await corio::wait_for(writer.wait_closed(), 20s);
        const bool done = co_await eventually([&] { return server_side.done; }, 20000ms);
        REQUIRE(done);
        CHECK(server_side.error.empty());
        CHECK(server_side.sent == bulk_size);
        CHECK(server_side.checked == bulk_size);
        CHECK(server_side.rest.empty());
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// A client that writes and closes at once, before the server has finished its side of the
// handshake (TLS 1.3: the server's session tickets then meet a closed socket): what it sent
// still reaches the handler, and no handshake failure is reported.
struct heard_record {
    std::size_t bytes = 0;
    bool done = false;
    std::string error;
};

corio::coro<> count_all(heard_record* rec, corio::stream_reader reader, corio::stream_writer) {
    try {
        const std::string all = co_await reader.read();
        rec->bytes = all.size();
    } catch (const std::exception& e) {
        rec->error = e.what();
    }
    rec->done = true;
}

TEST_CASE("tls: a client that writes and closes at once is heard in full", "[tls][close]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    run_within([](exception_log& log) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        const corio::tls_context client_ctx = client_context();
        for (int round = 0; round < 20; ++round) {
            heard_record heard;
            corio::server srv = co_await corio::start_server(
                [rec = &heard](corio::stream_reader r, corio::stream_writer w) {
                    return count_all(rec, std::move(r), std::move(w));
                },
                "127.0.0.1", 0, {.tls = &server_ctx});
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("127.0.0.1", srv.port(),
                                       {.tls = &client_ctx, .server_hostname = "localhost"}),
                20s);
            writer.write(std::string(32 * 1024, 'x'));
            writer.close();
            co_await corio::wait_for(writer.wait_closed(), 20s);
            const bool done = co_await eventually([&] { return heard.done; }, 20000ms);
            REQUIRE(done);
            INFO("round " << round << ": " << heard.error);
            CHECK(heard.error.empty());
            CHECK(heard.bytes == 32 * 1024);
            srv.close();
            co_await corio::wait_for(srv.wait_closed(), 5s);
        }
    }(log));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// --- 6. a plain-text client -------------------------------------------------------------------

// What a plain client sending an HTTP request to a TLS port reads back until the end: the
// bytes, then "<reset>" if the connection was reset.
corio::coro<std::string> plain_http_client(std::uint16_t port) {
    auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port);
    writer.write("GET / HTTP/1.0\r\n\r\n");
    std::string got;
    bool reset = false;
    try {
        got = co_await reader.read();
    } catch (const std::system_error& e) {
        if (e.code() != std::errc::connection_reset) throw;
        reset = true;
    }
    if (reset) got += "<reset>";
    co_return got;
}

TEST_CASE("tls: a plain-text client at a TLS port is closed and reported while TLS clients are "
          "served",
          "[tls][error]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    server_record rec;
    run_within([](exception_log& log, server_record& rec) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        const corio::tls_context client_ctx = client_context();
        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        const std::uint16_t port = srv.port();
        auto [plain, a, b, c] = co_await corio::wait_for(
            corio::gather(plain_http_client(port), tls_echo_client(port, &client_ctx, 1, 30),
                          tls_echo_client(port, &client_ctx, 2, 30),
                          tls_echo_client(port, &client_ctx, 3, 30)),
            20s);
        INFO("the plain client read: " << plain);
        CHECK_FALSE(contains(plain, "HTTP"));
        // Nothing but the end, a reset, or a TLS alert record (content type 21).
        CHECK((plain.empty() || plain == "<reset>" || plain[0] == '\x15'));
        CHECK(a == 30);
        CHECK(b == 30);
        CHECK(c == 30);
        const bool reported =
            co_await eventually([&] { return reports_of(log, "TLS handshake failed") == 1; });
        CHECK(reported);
        // And serving goes on.
        const int after = co_await corio::wait_for(tls_echo_client(port, &client_ctx, 4, 5), 20s);
        CHECK(after == 5);
        const bool done = co_await eventually([&] { return rec.finished == 4; }, 20000ms);
        CHECK(done);
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log, rec));
    INFO(describe(log));
    REQUIRE(log.size() == 1);
    CHECK(log.contexts()[0].message == "TLS handshake failed");
    CHECK(holds<corio::tls_error>(log.contexts()[0].exception));
    CHECK(contains(what_of(log.contexts()[0].exception), "http request"));
    CHECK(rec.connections.size() == 4);  // the TLS ones only
    CHECK(rec.errors.empty());
}

// --- 7. many handshakes -----------------------------------------------------------------------

// The resident set, in KiB (/proc/self/statm).
std::size_t resident_kib() {
    std::FILE* statm = std::fopen("/proc/self/statm", "r");
    if (statm == nullptr) return 0;
    unsigned long size = 0, resident = 0;
    const int got = std::fscanf(statm, "%lu %lu", &size, &resident);
    std::fclose(statm);
    return got == 2 ? resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 1024 : 0;
}

// ASan keeps freed memory in quarantine: the resident set grows there without a leak (which
// its leak check reports instead).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool resident_set_meaningful = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool resident_set_meaningful = false;
#else
constexpr bool resident_set_meaningful = true;
#endif
#else
constexpr bool resident_set_meaningful = true;
#endif

TEST_CASE("tls: 1,000 handshakes in turn leave no descriptor, frame or memory behind",
          "[tls][load]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    run_within(
        [](exception_log& log) -> corio::coro<> {
            log.install(corio::get_running_loop());
            const corio::tls_context server_ctx = server_context();
            const corio::tls_context client_ctx = client_context();
            server_record rec;
            corio::server srv = co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0,
                                                             {.tls = &server_ctx});
            const int warm =
                co_await corio::wait_for(tls_echo_client(srv.port(), &client_ctx, -1, 1), 20s);
            REQUIRE(warm == 1);
            const bool warm_done = co_await eventually([&] { return rec.finished == 1; });
            REQUIRE(warm_done);
            // A hundred more first, so that OpenSSL's and malloc's caches are warm.
            for (int i = 0; i < 100; ++i) {
                (void)co_await corio::wait_for(tls_echo_client(srv.port(), &client_ctx, -1, 1),
                                               20s);
            }
            const bool warmer = co_await eventually([&] { return rec.finished == 101; }, 20000ms);
            REQUIRE(warmer);
            const std::size_t resident_before = resident_kib();
            const std::size_t before = open_descriptors();
            constexpr int rounds = 1000;
            int good = 0;
            for (int i = 0; i < rounds; ++i) {
                good +=
                    co_await corio::wait_for(tls_echo_client(srv.port(), &client_ctx, i, 1), 20s);
            }
            CHECK(good == rounds);
            const bool all_done =
                co_await eventually([&] { return rec.finished == rounds + 101; }, 20000ms);
            CHECK(all_done);
            CHECK(rec.eof_seen == rounds + 101);
            const std::size_t resident_after = resident_kib();
            INFO("resident set before " << resident_before << " KiB, after " << resident_after
                                        << " KiB");
            // Generous: the record of each connection the test keeps is a few hundred bytes.
            if (resident_set_meaningful) CHECK(resident_after <= resident_before + 4096);
            const std::size_t after = open_descriptors();
            INFO("descriptors before " << before << ", after " << after);
            CHECK(after <= before + 2);
            CHECK(srv.connection_count() == 0);
            srv.close();
            co_await corio::wait_for(srv.wait_closed(), 5s);
        }(log),
        60s);
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// --- 8. Python's ssl as a client ------------------------------------------------------------

// A Python asyncio client with ssl.create_default_context(cafile=...): lines one at a time,
// pipelined, a long one; then, with the blocking ssl module and suppress_ragged_eofs=False,
// that the server's close is a close_notify (not a bare end), and that the server answers the
// client's close_notify (unwrap).
const char* const python_tls_client = R"PY(
import asyncio, socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
async def main():
    r, w = await asyncio.wait_for(
        asyncio.open_connection('127.0.0.1', port, ssl=ctx, server_hostname='localhost'), 10)
    version = w.get_extra_info('ssl_object').version()
    for i in range(100):
        line = f'line {i} ' + 'y' * (i % 61) + '\n'
        w.write(line.encode())
        await w.drain()
        back = await asyncio.wait_for(r.readline(), 10)
        if back != line.upper().encode():
            print('MISMATCH', i, back, flush=True); sys.exit(1)
    burst = [f'burst {i}\n'.encode() for i in range(300)]
    w.writelines(burst)
    await w.drain()
    for l in burst:
        back = await asyncio.wait_for(r.readline(), 10)
        if back != l.upper():
            print('MISMATCH burst', back, flush=True); sys.exit(1)
    big = b'z' * 50000 + b'\n'
    w.write(big)
    await w.drain()
    back = await asyncio.wait_for(r.readexactly(len(big)), 10)
    if back != big.upper():
        print('MISMATCH big', len(back), flush=True); sys.exit(1)
    w.close()
    await w.wait_closed()
    return version
version = asyncio.run(main())
# Python 3.10+ reads a bare end as the end unless told not to, as corio does.
strict = ssl.create_default_context(cafile=cafile)
strict.options &= ~getattr(ssl, 'OP_IGNORE_UNEXPECTED_EOF', 0)
def connect():
    raw = socket.create_connection(('127.0.0.1', port), timeout=10)
    return strict.wrap_socket(raw, server_hostname='localhost', suppress_ragged_eofs=False)
def read_until_end(s):
    data = b''
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
with connect() as s:
    s.sendall(b'bye\n')
    try:
        data = read_until_end(s)
    except ssl.SSLError as e:
        print('RAGGED EOF from the server', repr(e), flush=True); sys.exit(1)
    if data != b'BYE\n':
        print('MISMATCH bye', data, flush=True); sys.exit(1)
with connect() as s:
    s.sendall(b'ping\n')
    data = b''
    while not data.endswith(b'\n'):
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
    if data != b'PING\n':
        print('MISMATCH ping', data, flush=True); sys.exit(1)
    try:
        s.unwrap()
    except (ssl.SSLError, OSError) as e:
        print('UNWRAP', repr(e), flush=True); sys.exit(1)
print('OK', version, flush=True)
)PY";

TEST_CASE("tls: Python's ssl as a client of a corio TLS server; close_notify both ways",
          "[tls][interop]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    REQUIRE_PYTHON();
    frame_leak_check leaks;
    exception_log log;
    server_record rec;
    run_within([](exception_log& log, server_record& rec) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        python_child client(python_tls_client, {std::to_string(srv.port()), certs().cert});
        corio::stream_reader out = client.take_stdout();
        const std::string report = co_await corio::wait_for(out.readline(), 25s);
        INFO("python said: " << report);
        const int status = co_await client.wait();
        CHECK(status == 0);
        const bool done = co_await eventually([&] { return rec.finished == 3; }, 10000ms);
        CHECK(done);
        REQUIRE(rec.connections.size() == 3);
        CHECK(report == "OK " + rec.connections[0].version + "\n");
        CHECK(is_tls_version(rec.connections[0].version));
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log, rec));
    INFO(describe(log));
    CHECK(log.size() == 0);
    CHECK(rec.lines == 100 + 300 + 1 + 1 + 1);
    CHECK(rec.eof_seen == 2);  // the asyncio client's close and the unwrap
    CHECK(rec.errors.empty());
}

// --- 9. Python's ssl as a server --------------------------------------------------------------

// A Python asyncio TLS server for two connections: an upper-case echo (ALPN http/1.1), and,
// on "ABORT\n", some bytes then transport.abort(): the end of the TCP stream without
// close_notify.
const char* const python_tls_server = R"PY(
import asyncio, ssl, sys
async def main(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(['http/1.1'])
    connections = 0
    all_done = asyncio.Event()
    report = []
    async def handle(r, w):
        nonlocal connections
        try:
            n = 0
            while True:
                line = await r.readline()
                if not line:
                    break
                if line == b'ABORT\n':
                    w.write(b'partial 1\n')
                    w.write(b'q' * 30000 + b'\n')
                    await w.drain()
                    await asyncio.sleep(0.2)
                    w.transport.abort()
                    report.append('aborted')
                    return
                n += 1
                w.write(line.upper())
                await w.drain()
            ssl_object = w.get_extra_info('ssl_object')
            report.append(f'echoed {n} {ssl_object.selected_alpn_protocol()}')
            w.close()
            try:
                await w.wait_closed()
            except Exception as e:
                report.append('wait_closed ' + repr(e))
        except Exception as e:
            report.append('ERROR ' + repr(e))
        finally:
            connections += 1
            if connections == 2:
                all_done.set()
    server = await asyncio.start_server(handle, '127.0.0.1', 0, ssl=ctx)
    print('PORT', server.sockets[0].getsockname()[1], flush=True)
    await asyncio.wait_for(all_done.wait(), 30)
    server.close()
    await server.wait_closed()
    print('DONE', '; '.join(sorted(report)), flush=True)
asyncio.run(main(sys.argv[1], sys.argv[2]))
)PY";

TEST_CASE("tls: a corio client of Python's ssl server; an end without close_notify reads as the "
          "end",
          "[tls][interop]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    REQUIRE_PYTHON();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        corio::tls_context client_ctx = client_context();
        client_ctx.set_alpn({"h2", "http/1.1"});
        python_child server(python_tls_server, {certs().cert, certs().key});
        corio::stream_reader out = server.take_stdout();
        const std::uint16_t port = port_of(co_await read_first_line(out));
        {
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("127.0.0.1", port,
                                       {.tls = &client_ctx, .server_hostname = "localhost"}),
                20s);
            CHECK(is_tls_version(writer.tls_version()));
            CHECK(writer.alpn_protocol() == "http/1.1");
            CHECK(contains(writer.peer_certificate_subject(), "CN=localhost"));
            for (int i = 0; i < 100; ++i) {
                const std::string line = "to python " + std::to_string(i) + " " +
                                         std::string(static_cast<std::size_t>(i * 13), 'w') + "\n";
                writer.write(line);
                const std::string back = co_await corio::wait_for(reader.readline(), 20s);
                REQUIRE(back == upper(line));
            }
            writer.close();
            co_await corio::wait_for(writer.wait_closed(), 20s);
        }
        {
            auto [reader, writer] = co_await corio::wait_for(
                corio::open_connection("127.0.0.1", port,
                                       {.tls = &client_ctx, .server_hostname = "localhost"}),
                20s);
            writer.write("ABORT\n");
            const std::string first = co_await corio::wait_for(reader.readline(), 20s);
            CHECK(first == "partial 1\n");
            std::string second;
            std::string rest = "<not read>";
            std::string error;
            try {
                second = co_await corio::wait_for(reader.readexactly(30001), 20s);
                rest = co_await corio::wait_for(reader.read(), 20s);
            } catch (const corio::timeout_error&) {
                throw;
            } catch (const std::exception& e) {
                error = e.what();
            }
            INFO("reading up to a bare end threw: " << error);
            CHECK(error.empty());
            CHECK(second == std::string(30000, 'q') + "\n");
            CHECK(rest.empty());
            writer.close();
        }
        const std::string done = co_await corio::wait_for(out.readline(), 20s);
        CHECK(done == "DONE aborted; echoed 100 http/1.1\n");
        const int status = co_await server.wait();
        CHECK(status == 0);
    }());
}

// --- 10. openssl s_server and s_client --------------------------------------------------------

// A TLS connection to `port` once something listens there (a program just started), trying
// again on ECONNREFUSED for up to 10 s.
corio::coro<corio::stream_pair> connect_when_listening(std::uint16_t port,
                                                       const corio::tls_context* ctx) {
    stopwatch watch;
    for (;;) {
        bool refused = false;
        try {
            co_return co_await corio::wait_for(
                corio::open_connection("127.0.0.1", port,
                                       {.tls = ctx, .server_hostname = "localhost"}),
                20s);
        } catch (const std::system_error& e) {
            if (e.code() != std::errc::connection_refused || watch.elapsed() > 10s) throw;
            refused = true;
        }
        if (refused) co_await corio::sleep(20ms);
    }
}

TEST_CASE("tls: a corio client of openssl s_server -www", "[tls][interop][openssl]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        const corio::tls_context client_ctx = client_context();
        const std::uint16_t port = free_port();
        std::vector<std::string> args = {
            "s_server",  "-accept",    "127.0.0.1:" + std::to_string(port),
            "-cert",     certs().cert, "-key",
            certs().key, "-www",       "-quiet"};
        corio::process server = co_await corio::create_subprocess_exec(
            "openssl", std::move(args), {.stdin_ = corio::devnull, .stdout_ = corio::devnull});
        kill_at_exit guard(server);
        for (int i = 0; i < 2; ++i) {
            auto [reader, writer] = co_await connect_when_listening(port, &client_ctx);
            CHECK(is_tls_version(writer.tls_version()));
            CHECK(contains(writer.peer_certificate_subject(), "CN=localhost"));
            writer.write("GET / HTTP/1.0\r\n\r\n");
            const std::string page = co_await corio::wait_for(reader.read(), 20s);
            INFO("s_server answered: " << page.substr(0, 200));
            CHECK(page.rfind("HTTP/1.0 200 ok", 0) == 0);
            CHECK(contains(page, "s_server"));
            writer.close();
            co_await corio::wait_for(writer.wait_closed(), 20s);
        }
        server.terminate();
        const int status = co_await corio::wait_for(server.wait(), 10s);
        CHECK((status == -SIGTERM || status == 0));
    }());
}

TEST_CASE("tls: openssl s_client (TLS 1.3 and 1.2, ALPN) as a client of a corio echo server",
          "[tls][interop][openssl]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    server_record rec;
    run_within([](exception_log& log, server_record& rec) -> corio::coro<> {
        log.install(corio::get_running_loop());
        corio::tls_context server_ctx = server_context();
        server_ctx.set_alpn({"h2", "http/1.1"});
        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        const std::vector<std::string> versions = {"-tls1_3", "-tls1_2"};
        for (const std::string& version : versions) {
            std::vector<std::string> args = {"s_client",
                                             "-connect",
                                             "127.0.0.1:" + std::to_string(srv.port()),
                                             "-servername",
                                             "localhost",
                                             "-verify_hostname",
                                             "localhost",
                                             "-CAfile",
                                             certs().cert,
                                             "-verify_return_error",
                                             "-alpn",
                                             "http/1.1",
                                             version,
                                             "-quiet"};
            corio::process client = co_await corio::create_subprocess_exec(
                "openssl", std::move(args),
                {.stdin_ = corio::pipe, .stdout_ = corio::pipe, .stderr_ = corio::pipe});
            kill_at_exit guard(client);
            // -quiet implies -ign_eof: s_client runs on after its input ends, until the server
            // closes (after "bye").
            const corio::communicate_result result =
                co_await corio::wait_for(client.communicate("hello from s_client\nbye\n"), 20s);
            const int status = co_await corio::wait_for(client.wait(), 10s);
            INFO("s_client " << version << " stderr: " << result.err);
            CHECK(result.out == "HELLO FROM S_CLIENT\nBYE\n");
            CHECK(status == 0);
        }
        const bool done = co_await eventually([&] { return rec.finished == 2; }, 10000ms);
        CHECK(done);
        REQUIRE(rec.connections.size() == 2);
        CHECK(rec.connections[0].version == "TLSv1.3");
        CHECK(rec.connections[1].version == "TLSv1.2");
        CHECK(rec.connections[0].alpn == "http/1.1");
        CHECK(rec.connections[1].alpn == "http/1.1");
        CHECK(rec.errors.empty());
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log, rec));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// --- 11. curl ---------------------------------------------------------------------------------

// Reads `out` line by line until `wanted` (a whole line) comes; false at the end first.
corio::coro<bool> read_until_line(corio::stream_reader& out, std::string wanted,
                                  std::string* seen) {
    for (;;) {
        const std::string line = co_await out.readline();
        if (line.empty()) co_return false;
        *seen += line;
        if (line == wanted) co_return true;
    }
}

TEST_CASE("tls: a TLS 1.3 key update from openssl s_client, answered by the corio server",
          "[tls][interop][openssl]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    server_record rec;
    run_within([](exception_log& log, server_record& rec) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        // Interactive (no -quiet), so that a line "K" is s_client's command: a key update that
        // asks the server for one too, which the server's read must answer with a write.
        std::vector<std::string> args = {"s_client",
                                         "-connect",
                                         "127.0.0.1:" + std::to_string(srv.port()),
                                         "-servername",
                                         "localhost",
                                         "-CAfile",
                                         certs().cert,
                                         "-verify_return_error",
                                         "-tls1_3"};
        corio::process client = co_await corio::create_subprocess_exec(
            "openssl", std::move(args),
            {.stdin_ = corio::pipe, .stdout_ = corio::pipe, .stderr_ = corio::pipe});
        kill_at_exit guard(client);
        corio::stream_writer& in = client.stdin_pipe();
        corio::stream_reader& out = client.stdout_pipe();
        std::string seen;
        in.write("before\n");
        co_await in.drain();
        const bool before = co_await corio::wait_for(read_until_line(out, "BEFORE\n", &seen), 20s);
        REQUIRE(before);
        for (int update = 0; update < 3; ++update) {
            in.write("K\n");  // alone: s_client drops the rest of a read that starts with it
            co_await in.drain();
            co_await corio::sleep(200ms);
            const std::string line = "after " + std::to_string(update) + "\n";
            in.write(line);
            co_await in.drain();
            const bool after =
                co_await corio::wait_for(read_until_line(out, upper(line), &seen), 20s);
            INFO("s_client printed: " << seen);
            REQUIRE(after);
        }
        in.write("bye\n");
        co_await in.drain();
        const bool bye = co_await corio::wait_for(read_until_line(out, "BYE\n", &seen), 20s);
        CHECK(bye);
        in.close();
        (void)co_await corio::wait_for(client.wait(), 10s);
        // s_client says so on stderr, once per "K".
        const std::string err = co_await corio::wait_for(client.stderr_pipe().read(), 10s);
        INFO("s_client printed: " << seen << "\nand on stderr: " << err);
        CHECK(err.find("KEYUPDATE") != std::string::npos);
        const bool done = co_await eventually([&] { return rec.finished == 1; }, 10000ms);
        CHECK(done);
        CHECK(rec.errors.empty());
        CHECK(rec.lines == 5);
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log, rec));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

corio::coro<> hello_http(server_record* rec, corio::stream_reader reader,
                         corio::stream_writer writer) {
    rec->connections.push_back(seen_by(writer));
    try {
        const std::string request = co_await reader.readuntil("\r\n\r\n");
        if (request.rfind("GET / HTTP/1.1\r\n", 0) != 0) rec->errors.push_back(request);
        writer.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        co_await writer.drain();
    } catch (const std::exception& e) {
        rec->errors.emplace_back(e.what());
    }
    writer.close();
    ++rec->finished;
}

TEST_CASE("tls: curl fetches a page from a corio TLS server", "[tls][interop][curl]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    if (find_program("curl").empty()) CORIO_SKIP("no curl program in PATH");
    frame_leak_check leaks;
    exception_log log;
    server_record rec;
    run_within([](exception_log& log, server_record& rec) -> corio::coro<> {
        log.install(corio::get_running_loop());
        corio::tls_context server_ctx = server_context();
        server_ctx.set_alpn({"http/1.1"});
        corio::server srv = co_await corio::start_server(
            [rec = &rec](corio::stream_reader r, corio::stream_writer w) {
                return hello_http(rec, std::move(r), std::move(w));
            },
            "127.0.0.1", 0, {.tls = &server_ctx});
        const std::string port = std::to_string(srv.port());
        std::vector<std::string> args = {"-s",
                                         "-S",
                                         "--max-time",
                                         "15",
                                         "--cacert",
                                         certs().cert,
                                         "--resolve",
                                         "localhost:" + port + ":127.0.0.1",
                                         "https://localhost:" + port + "/"};
        corio::process curl = co_await corio::create_subprocess_exec(
            "curl", std::move(args),
            {.stdin_ = corio::devnull, .stdout_ = corio::pipe, .stderr_ = corio::pipe});
        kill_at_exit guard(curl);
        const corio::communicate_result result = co_await corio::wait_for(curl.communicate(), 20s);
        const int status = co_await corio::wait_for(curl.wait(), 10s);
        INFO("curl stderr: " << result.err);
        CHECK(result.out == "hello");
        CHECK(status == 0);
        const bool done = co_await eventually([&] { return rec.finished == 1; }, 10000ms);
        CHECK(done);
        REQUIRE(rec.connections.size() == 1);
        CHECK(is_tls_version(rec.connections[0].version));
        CHECK(rec.connections[0].alpn == "http/1.1");
        CHECK(rec.errors.empty());
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }(log, rec));
    INFO(describe(log));
    CHECK(log.size() == 0);
}

// --- 12. handshakes cut short -----------------------------------------------------------------

// A plain handler that never answers: it reads until the end (the client's ClientHello, then
// nothing).
corio::coro<> silent(server_record* rec, corio::stream_reader reader, corio::stream_writer writer) {
    rec->connections.push_back(seen_by(writer));
    try {
        (void)co_await reader.read();
        ++rec->eof_seen;
    } catch (const std::exception& e) {
        rec->errors.emplace_back(e.what());
    }
    writer.close();
    ++rec->finished;
}

corio::coro<std::exception_ptr> cut_short_handshake(std::uint16_t port,
                                                    const corio::tls_context* ctx) {
    co_return co_await failure_of(corio::wait_for(
        corio::open_connection("127.0.0.1", port, {.tls = ctx, .server_hostname = "localhost"}),
        200ms));
}

TEST_CASE("tls: a handshake cancelled or past its time limit on the client leaves nothing behind",
          "[tls][cancel]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        const corio::tls_context client_ctx = client_context();
        server_record rec;
        corio::server srv = co_await corio::start_server(
            [rec = &rec](corio::stream_reader r, corio::stream_writer w) {
                return silent(rec, std::move(r), std::move(w));
            },
            "127.0.0.1", 0);  // no TLS: the ClientHello is never answered
        // Once before counting, for whatever the first connection sets up for good.
        const std::exception_ptr warm = co_await cut_short_handshake(srv.port(), &client_ctx);
        INFO(what_of(warm));
        REQUIRE(holds<corio::timeout_error>(warm));
        const bool warm_done = co_await eventually([&] { return rec.finished == 1; });
        REQUIRE(warm_done);
        const std::size_t before = open_descriptors();

        int timeouts = 0;
        stopwatch watch;
        for (int i = 0; i < 5; ++i) {
            const std::exception_ptr e = co_await cut_short_handshake(srv.port(), &client_ctx);
            if (holds<corio::timeout_error>(e)) ++timeouts;
        }
        CHECK(timeouts == 5);
        CHECK(watch.elapsed() >= 5 * 150ms);
        CHECK(watch.elapsed() < 10s);
        // Twenty at once.
        std::vector<corio::coro<std::exception_ptr>> attempts;
        for (int i = 0; i < 20; ++i)
            attempts.push_back(cut_short_handshake(srv.port(), &client_ctx));
        const std::vector<std::exception_ptr> results =
            co_await corio::wait_for(corio::gather(std::move(attempts)), 10s);
        int concurrent_timeouts = 0;
        for (const auto& e : results) {
            if (holds<corio::timeout_error>(e)) ++concurrent_timeouts;
        }
        CHECK(concurrent_timeouts == 20);
        // The client's own handshake time limit.
        stopwatch limited;
        const std::exception_ptr own = co_await failure_of(
            corio::wait_for(corio::open_connection("127.0.0.1", srv.port(),
                                                   {.tls = &client_ctx,
                                                    .server_hostname = "localhost",
                                                    .tls_handshake_timeout = 300ms}),
                            10s));
        INFO("tls_handshake_timeout: " << what_of(own));
        CHECK(holds<corio::timeout_error>(own));
        CHECK(limited.elapsed() >= 250ms);
        CHECK(limited.elapsed() < 5s);
        // Every abandoned connection was closed: the server read its end.
        const bool all_done = co_await eventually([&] { return rec.finished == 27; }, 10000ms);
        CHECK(all_done);
        CHECK(rec.eof_seen == 27);
        const std::size_t after = open_descriptors();
        INFO("descriptors before " << before << ", after " << after);
        CHECK(after <= before + 2);
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }());
}

TEST_CASE("tls: a server's tls_handshake_timeout closes a client that never starts; close() "
          "cancels handshakes in progress",
          "[tls][cancel]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_CERTS();
    frame_leak_check leaks;
    exception_log log;
    server_record rec;
    run_within([](exception_log& log, server_record& rec) -> corio::coro<> {
        log.install(corio::get_running_loop());
        const corio::tls_context server_ctx = server_context();
        const corio::tls_context client_ctx = client_context();
        corio::server srv =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0,
                                         {.tls = &server_ctx, .tls_handshake_timeout = 300ms});
        {
            auto [reader, writer] =
                co_await corio::wait_for(corio::open_connection("127.0.0.1", srv.port()), 20s);
            stopwatch watch;
            std::string got = "<not read>";
            try {
                got = co_await corio::wait_for(reader.read(), 10s);
            } catch (const std::system_error& e) {
                got = std::string("<") + e.what() + ">";
            }
            CHECK(got.empty());
            CHECK(watch.elapsed() >= 250ms);
            CHECK(watch.elapsed() < 5s);
            writer.close();
        }
        const bool reported = co_await eventually(
            [&] { return reports_of(log, "TLS handshake failed") == 1; }, 5000ms);
        CHECK(reported);
        // A good client is still served, well within the limit.
        const int good =
            co_await corio::wait_for(tls_echo_client(srv.port(), &client_ctx, 1, 3), 20s);
        CHECK(good == 3);
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);

        // A server with the default (60 s) limit, closed while clients sit in their handshake.
        corio::server patient =
            co_await corio::start_server(upper_echo_for(rec), "127.0.0.1", 0, {.tls = &server_ctx});
        std::vector<corio::stream_pair> silent_clients;
        for (int i = 0; i < 3; ++i) {
            silent_clients.push_back(
                co_await corio::wait_for(corio::open_connection("127.0.0.1", patient.port()), 20s));
        }
        const bool accepted =
            co_await eventually([&] { return patient.connection_count() == 3; }, 5000ms);
        CHECK(accepted);
        stopwatch closing;
        patient.close();
        co_await corio::wait_for(patient.wait_closed(), 5s);
        CHECK(closing.elapsed() < 5s);
        CHECK(patient.connection_count() == 0);
        for (auto& c : silent_clients) {
            std::string got = "<not read>";
            try {
                got = co_await corio::wait_for(c.reader.read(), 5s);
            } catch (const std::system_error& e) {
                got = std::string("<") + e.what() + ">";
            }
            CHECK(got.empty());
        }
    }(log, rec));
    INFO(describe(log));
    REQUIRE(log.size() == 1);  // the cancelled handshakes are not failures
    CHECK(log.contexts()[0].message == "TLS handshake failed");
    CHECK(holds<corio::timeout_error>(log.contexts()[0].exception));
    CHECK(rec.connections.size() == 1);  // the good client's only
    CHECK(rec.errors.empty());
}

}  // namespace
