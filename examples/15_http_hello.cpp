// 15_http_hello: a minimal HTTP/1.1 server ("hello, world") and a client, on corio streams.
//
// Beyond the note: a text protocol over `corio::start_server`, small enough to read, correct
// enough for curl and wrk. For each connection the handler task reads requests one after
// another (HTTP/1.1 keep-alive):
//
// - the request line and each header with `co_await reader.readline()`, until the empty line
//   that ends the head; anything that is not HTTP gets `400 Bad Request` and the connection is
//   closed; a line longer than the reader's limit (64 KiB) is `corio::limit_overrun_error`,
//   also a 400, and the memory it would take is never allocated;
// - a request body, if the request has a Content-Length, with `reader.readexactly(n)`;
// - the response: status line, headers (always a Content-Length, so that the connection can
//   carry the next request) and body, in one `writer.write`, then `co_await writer.drain()`.
//
// Run without arguments, it serves on a port the kernel chooses, fetches "/" from itself with a
// corio client (`open_connection`, a GET, the response parsed as curl would), prints the
// response, checks keep-alive and a 400, and exits. With `--port N` it serves for ever:
//
//   ./example_15_http_hello --port 8080 &
//   curl -i http://127.0.0.1:8080/
//   wrk -t1 -c50 -d5s http://127.0.0.1:8080/

#include <corio/corio.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

constexpr std::string_view hello_body = "Hello, world!\n";
constexpr std::size_t max_headers = 100;
constexpr std::size_t max_body = std::size_t{1} << 20;

// --- parsing -------------------------------------------------------------------------------

// A line without its "\r\n" (or a bare "\n", which HTTP tolerates).
std::string_view trim_eol(std::string_view line) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

std::string_view trim_spaces(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool icontains(std::string_view haystack, std::string_view needle) {
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
        if (iequals(haystack.substr(i, needle.size()), needle)) return true;
    }
    return false;
}

// RFC 9110 token characters (method and header names).
bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    });
}

struct request {
    std::string method;
    std::string target;
    bool http10 = false;
    bool keep_alive = true;
    std::size_t content_length = 0;
};

// "GET /path HTTP/1.1": false for anything else.
bool parse_request_line(std::string_view line, request& r) {
    const std::size_t a = line.find(' ');
    const std::size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    if (b == std::string_view::npos) return false;
    const std::string_view method = line.substr(0, a);
    const std::string_view target = line.substr(a + 1, b - a - 1);
    const std::string_view version = line.substr(b + 1);
    if (!is_token(method) || target.empty() || target.find(' ') != std::string_view::npos) {
        return false;
    }
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return false;
    r.method = method;
    r.target = target;
    r.http10 = version == "HTTP/1.0";
    r.keep_alive = !r.http10;  // HTTP/1.0 closes unless asked otherwise
    return true;
}

// "Name: value": false for anything else. Looks at Connection and Content-Length.
bool parse_header(std::string_view line, request& r) {
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return false;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim_spaces(line.substr(colon + 1));
    if (iequals(name, "Connection")) {
        if (icontains(value, "close")) r.keep_alive = false;
        if (icontains(value, "keep-alive")) r.keep_alive = true;
    } else if (iequals(name, "Content-Length")) {
        std::size_t n = 0;
        const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), n);
        const bool whole_number = error == std::errc{} && end == value.data() + value.size();
        if (!whole_number || n > max_body) return false;
        r.content_length = n;
    } else if (iequals(name, "Transfer-Encoding")) {
        return false;  // chunked request bodies: not in this example
    }
    return true;
}

// --- the server ----------------------------------------------------------------------------

std::string response(std::string_view status, std::string_view body, bool keep_alive, bool http10,
                     bool with_body = true) {
    std::string out;
    out.reserve(128 + body.size());
    out += http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    out += status;
    out += "\r\nServer: corio\r\nContent-Type: text/plain\r\nContent-Length: ";
    out += std::to_string(body.size());
    if (status.starts_with("405")) out += "\r\nAllow: GET, HEAD";  // RFC 9110 15.5.6
    if (!keep_alive) {
        out += "\r\nConnection: close";
    } else if (http10) {
        out += "\r\nConnection: keep-alive";
    }
    out += "\r\n\r\n";
    if (with_body) out += body;
    return out;
}

const std::string bad_request = response("400 Bad Request", "Bad Request\n", false, false);

// Reads one request head; nullopt at a clean end of stream (the client closed between
// requests). Throws std::invalid_argument for anything that is not HTTP.
corio::coro<std::optional<request>> read_head(corio::stream_reader& reader) {
    request r;
    std::string line = co_await reader.readline();
    while (line == "\r\n" || line == "\n") line = co_await reader.readline();  // RFC 9112 2.2
    if (line.empty()) co_return std::nullopt;
    if (!parse_request_line(trim_eol(line), r)) throw std::invalid_argument("request line");
    for (std::size_t count = 0;; ++count) {
        line = co_await reader.readline();
        const std::string_view header = trim_eol(line);
        if (header.empty()) {
            if (line.empty()) throw std::invalid_argument("end of stream inside the head");
            break;  // the empty line that ends the head
        }
        if (count == max_headers || !parse_header(header, r)) {
            throw std::invalid_argument("header");
        }
    }
    co_return r;
}

corio::coro<> handle_http(corio::stream_reader reader, corio::stream_writer writer) {
    try {
        for (;;) {
            std::optional<request> r;
            bool bad = false;
            try {
                r = co_await read_head(reader);
            } catch (const std::invalid_argument&) {
                bad = true;  // not HTTP
            } catch (const corio::limit_overrun_error&) {
                bad = true;  // a line longer than the reader's limit
            }
            if (bad) {
                writer.write(bad_request);
                break;
            }
            if (!r) break;  // the client closed the connection between requests
            if (r->content_length > 0) {
                co_await reader.readexactly(r->content_length);  // read and ignored
            }
            const bool head = r->method == "HEAD";
            if (r->method != "GET" && !head) {
                writer.write(response("405 Method Not Allowed", "Method Not Allowed\n",
                                      r->keep_alive, r->http10));
            } else if (r->target != "/") {
                writer.write(
                    response("404 Not Found", "Not Found\n", r->keep_alive, r->http10, !head));
            } else {
                writer.write(response("200 OK", hello_body, r->keep_alive, r->http10, !head));
            }
            co_await writer.drain();
            if (!r->keep_alive) break;
        }
    } catch (const corio::incomplete_read_error&) {
        // The client went away in the middle of a request body.
    } catch (const std::system_error&) {
        // The client reset the connection.
    }
    writer.close();
}

// --- a client ------------------------------------------------------------------------------

struct http_response {
    std::string status_line;
    std::string head;  // status line and headers, as received
    std::string body;
};

// Reads one response as a client would: the head line by line, then Content-Length bytes.
corio::coro<http_response> read_response(corio::stream_reader& reader) {
    http_response r;
    const std::string status_line = co_await reader.readline();
    r.status_line = std::string(trim_eol(status_line));
    r.head = r.status_line + "\r\n";
    std::size_t length = 0;
    for (;;) {
        const std::string line = co_await reader.readline();
        const std::string_view header = trim_eol(line);
        if (header.empty()) break;
        r.head += line;
        const std::size_t colon = header.find(':');
        if (colon != std::string_view::npos && iequals(header.substr(0, colon), "Content-Length")) {
            const std::string_view value = trim_spaces(header.substr(colon + 1));
            std::from_chars(value.data(), value.data() + value.size(), length);
        }
    }
    r.body = co_await reader.readexactly(length);
    co_return r;
}

corio::coro<> fetch_from_self(std::uint16_t port) {
    const std::string host = "127.0.0.1:" + std::to_string(port);
    auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port);

    // GET / and print the response, as curl -i would.
    writer.write("GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: corio\r\n\r\n");
    co_await writer.drain();
    const http_response first = co_await read_response(reader);
    std::cout << "GET / ->\n" << first.head << '\n' << first.body;
    expect(first.status_line == "HTTP/1.1 200 OK", "GET / answers 200");
    expect(first.body == hello_body, "the body is the greeting, Content-Length long");

    // The same connection carries a second request (keep-alive); "Connection: close" ends it.
    writer.write("GET /missing HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
    co_await writer.drain();
    const http_response second = co_await read_response(reader);
    std::cout << "GET /missing on the same connection -> " << second.status_line << '\n';
    expect(second.status_line == "HTTP/1.1 404 Not Found", "an unknown path answers 404");
    const std::string rest = co_await reader.read();
    expect(rest.empty() && reader.at_eof(), "the server closes after Connection: close");
    std::cout << "then the server closed the connection, as asked\n";
    writer.close();

    // Something that is not HTTP.
    auto [bad_reader, bad_writer] = co_await corio::open_connection("127.0.0.1", port);
    bad_writer.write("hello, is this HTTP?\r\n\r\n");
    co_await bad_writer.drain();
    const http_response bad = co_await read_response(bad_reader);
    std::cout << "garbage -> " << bad.status_line << '\n';
    expect(bad.status_line == "HTTP/1.1 400 Bad Request", "garbage answers 400");
    bad_writer.close();
}

corio::coro<> demo() {
    auto server = co_await corio::start_server(handle_http, "127.0.0.1", 0);
    std::cout << "serving http://127.0.0.1:" << server.port() << "/\n";
    co_await fetch_from_self(server.port());
    server.close();
    co_await server.wait_closed();
    std::cout << "server closed\n";
}

corio::coro<> serve(std::uint16_t port) {
    auto server = co_await corio::start_server(handle_http, "127.0.0.1", port);
    std::cout << "serving http://127.0.0.1:" << server.port() << "/ (Ctrl-C stops)" << std::endl;
    co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--port") == 0) {
        try {
            corio::run(serve(static_cast<std::uint16_t>(std::atoi(argv[2]))));
        } catch (const corio::cancelled_error&) {
            std::cout << "stopped\n";  // Ctrl-C
        }
        return 0;
    }
    if (argc != 1) {
        std::cerr << "usage: " << argv[0] << " [--port N]\n";
        return 2;
    }
    corio::run(demo());
}
