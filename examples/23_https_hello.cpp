// 23_https_hello: example 15's "Hello, world!" over HTTPS, and a TLS client that fetches it.
//
// Beyond the note: asyncio's `ssl=`. TLS in corio is a context and one option:
//
// - `corio::tls_context::server(cert, key)` holds the server's certificate chain and key;
//   `corio::start_server(handler, host, port, {.tls = &ctx})` runs the handshake on each
//   connection before the handler sees it. The handler reads and writes plaintext with the
//   same `stream_reader` / `stream_writer` as in example 15; `writer.close()` sends TLS's
//   close_notify. A client that fails its handshake (a plain-text one, one that distrusts the
//   certificate) is closed and reported to the loop's exception handler; the others are served.
// - `corio::tls_context::client()` trusts the system's authorities and checks the server's
//   certificate against the host name; `load_verify_locations(path)` adds the authorities in a
//   file (here the self-signed certificate itself). `corio::open_connection(host, port,
//   {.tls = &ctx})` returns once the handshake is done; `writer.tls_version()` and
//   `writer.peer_certificate_subject()` say what was agreed.
//
// Run without arguments, it makes a throwaway self-signed certificate for "localhost" with
// `openssl req` (in a temporary directory, removed at the end), serves on a port the kernel
// chooses, fetches "/" with a corio TLS client, then with `curl --cacert` when curl is
// installed, and exits. With `--cert C --key K --port N` it serves for ever:
//
//   ./example_23_https_hello --cert cert.pem --key key.pem --port 8443 &
//   curl --cacert cert.pem https://localhost:8443/

#include <corio/corio.hpp>
#include <corio/tls.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

constexpr std::string_view hello_body = "Hello, world!\n";

// One request per connection (HTTP/1.0 style): the head up to its empty line, then the answer
// and close() (which sends close_notify before the socket closes).
corio::coro<> handle_https(corio::stream_reader reader, corio::stream_writer writer) {
    const std::string request_line = co_await reader.readline();
    for (;;) {
        const std::string header = co_await reader.readline();
        if (header.empty() || header == "\r\n" || header == "\n") break;
    }
    std::string response;
    if (request_line.starts_with("GET ")) {
        response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                   std::to_string(hello_body.size()) + "\r\nConnection: close\r\n\r\n";
        response += hello_body;
    } else {
        response = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    }
    writer.write(response);
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
}

// The TLS client: GET / from localhost:port, trusting `ca_file`.
corio::coro<std::string> fetch(std::uint16_t port, const std::string& ca_file) {
    corio::tls_context client = corio::tls_context::client();
    client.load_verify_locations(ca_file);
    auto [reader, writer] = co_await corio::open_connection("localhost", port, {.tls = &client});
    std::cout << "client: " << writer.tls_version() << ", server certificate "
              << writer.peer_certificate_subject() << "\n";
    writer.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    co_await writer.drain();
    std::string response = co_await reader.read();  // up to the end: the server closes
    writer.close();
    co_return response;
}

// A program's standard output, and whether it exited 0.
corio::coro<std::pair<bool, std::string>> output_of(std::string program,
                                                    std::vector<std::string> args) {
    corio::process child = co_await corio::create_subprocess_exec(
        program, args, {.stdout_ = corio::pipe, .stderr_ = corio::devnull});
    corio::communicate_result result = co_await child.communicate();
    const int code = co_await child.wait();
    co_return std::pair<bool, std::string>{code == 0, std::move(result.out)};
}

bool installed(const char* program) {
    const char* path = std::getenv("PATH");
    std::string_view dirs = path != nullptr ? path : "/usr/bin:/bin";
    while (!dirs.empty()) {
        const std::size_t colon = dirs.find(':');
        const std::string dir(dirs.substr(0, colon));
        if (::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
        dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    }
    return false;
}

corio::coro<> demo() {
    expect(installed("openssl"), "the openssl program makes the certificate");
    std::string dir = "/tmp/corio-https-XXXXXX";
    expect(::mkdtemp(dir.data()) != nullptr, "a temporary directory");
    const std::string cert = dir + "/cert.pem";
    const std::string key = dir + "/key.pem";
    struct remove_at_exit {
        std::string dir;
        ~remove_at_exit() {
            std::error_code ignored;
            std::filesystem::remove_all(dir, ignored);
        }
    } cleanup{dir};

    // Named: g++ 12 cannot build a braced list inside a co_await expression.
    std::vector<std::string> req{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"};
    req.insert(req.end(), {"-keyout", key, "-out", cert, "-subj", "/CN=localhost"});
    req.insert(req.end(), {"-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"});
    auto [made, ignored] = co_await output_of("openssl", std::move(req));
    expect(made, "openssl req makes a self-signed certificate");
    std::cout << "made a self-signed certificate for localhost\n";

    corio::tls_context tls = corio::tls_context::server(cert, key);
    auto server = co_await corio::start_server(handle_https, "127.0.0.1", 0, {.tls = &tls});
    std::cout << "serving https://localhost:" << server.port() << "/\n";

    const std::string response = co_await fetch(server.port(), cert);
    expect(response.starts_with("HTTP/1.1 200 OK\r\n"), "the status line");
    expect(response.ends_with("\r\n\r\n" + std::string(hello_body)), "the body");
    std::cout << "client: " << response.substr(0, response.find("\r\n")) << ", body "
              << response.substr(response.size() - hello_body.size());

    if (installed("curl")) {
        const std::string url = "https://localhost:" + std::to_string(server.port()) + "/";
        std::vector<std::string> get{"-s", "--cacert", cert, url};
        auto [ok, body] = co_await output_of("curl", std::move(get));
        expect(ok && body == hello_body, "curl --cacert fetches the page");
        std::cout << "curl --cacert: " << body;
    } else {
        std::cout << "(curl is not installed: not asked)\n";
    }

    server.close();
    co_await server.wait_closed();
    std::cout << "server closed\n";
}

corio::coro<> serve(std::string cert, std::string key, std::uint16_t port) {
    corio::tls_context tls = corio::tls_context::server(cert, key);
    auto server = co_await corio::start_server(handle_https, "0.0.0.0", port, {.tls = &tls});
    std::cout << "serving https://localhost:" << server.port() << "/ (Ctrl-C stops)" << std::endl;
    co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 7 && std::strcmp(argv[1], "--cert") == 0 && std::strcmp(argv[3], "--key") == 0 &&
        std::strcmp(argv[5], "--port") == 0) {
        try {
            corio::run(serve(argv[2], argv[4], static_cast<std::uint16_t>(std::atoi(argv[6]))));
        } catch (const corio::cancelled_error&) {
            std::cout << "stopped\n";  // Ctrl-C
        }
        return 0;
    }
    if (argc != 1) {
        std::cerr << "usage: " << argv[0] << " [--cert cert.pem --key key.pem --port N]\n";
        return 2;
    }
    corio::run(demo());
    return 0;
}
