// echo_soak_server: an echo server for soak runs (scripts/soak.sh), against clients that
// churn and misbehave (scripts/soak_client.py): they reset connections, vanish with data in
// flight, read slowly so that the server's writes back up, connect and close at once.
//
//   echo_soak_server [port]      # 127.0.0.1; port 0 (the default): the kernel chooses
//   CORIO_BACKEND=epoll|io_uring echo_soak_server
//
// Standard output, one line each, flushed at once:
//   port <n>                                       first, once listening
//   stats seconds=<s> accepted=<n> open=<n> ...    every second (see print_counters)
//   final seconds=<s> ... signal=<SIGTERM|SIGINT>  after SIGTERM or SIGINT, once every
//                                                  handler has finished; then exit 0
// Each handler counts how its connection ended: cleanly, or by which error (ECONNRESET,
// EPIPE, another errno, or "unexplained": an exception an echo server has no business
// seeing, which soak.sh treats as a bug). What reaches the loop's exception handler counts as
// unexplained too, and is printed to stderr.
//
// SIGPIPE keeps its default disposition on purpose: corio promises that a reset peer gives
// EPIPE, never SIGPIPE (sockets send with MSG_NOSIGNAL), and a server that dies of SIGPIPE
// here is the failure soak.sh reports.

#include <corio/corio.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unistd.h>

using namespace std::chrono_literals;

namespace {

// How long the handlers have, after close(), to finish: past it the server has hung.
constexpr auto close_timeout = 10s;

// What the handlers and the loop's exception handler count. At namespace scope, because the
// exception handler is stored in the loop, which outlives the main task's frame.
struct soak_counters {
    std::uint64_t accepted = 0;
    std::uint64_t open = 0;
    std::uint64_t bytes = 0;
    std::uint64_t clean = 0;        // ended by the client's end of stream
    std::uint64_t cancelled = 0;    // cancelled by server.close()
    std::uint64_t reset = 0;        // ECONNRESET
    std::uint64_t pipe = 0;         // EPIPE
    std::uint64_t other = 0;        // any other std::system_error, or a corio stream error
    std::uint64_t unexplained = 0;  // anything else, and what reached the exception handler
    std::map<std::string, std::uint64_t> other_kinds;  // "other", by errno name or type
};

soak_counters counters;

void log_error(std::string_view what) { std::cerr << "echo_soak_server: " << what << std::endl; }

void count_errno(int error) {
    if (error == ECONNRESET) {
        ++counters.reset;
    } else if (error == EPIPE) {
        ++counters.pipe;
    } else {
        ++counters.other;
        ++counters.other_kinds[std::error_code(error, std::generic_category()).message()];
    }
}

void count_other(const char* kind) {
    ++counters.other;
    ++counters.other_kinds[kind];
}

void count_unexplained(std::string_view what) {
    ++counters.unexplained;
    log_error("unexplained: " + std::string(what));
}

// Keeps `open` right however the handler's frame ends, destroyed at loop close included.
struct open_connection {
    open_connection() noexcept {
        ++counters.accepted;
        ++counters.open;
    }
    open_connection(const open_connection&) = delete;
    open_connection& operator=(const open_connection&) = delete;
    ~open_connection() { --counters.open; }
};

// One connection: echoes every byte back until the client ends its side, with flow control
// (drain), so that a client that does not read stops the server reading from it.
corio::coro<> echo(corio::stream_reader reader, corio::stream_writer writer) {
    const open_connection guard;
    try {
        std::vector<char> buffer(64 * 1024);
        for (;;) {
            const std::size_t n = co_await reader.read_into(buffer);
            if (n == 0) break;
            writer.write(std::string_view(buffer.data(), n));
            counters.bytes += n;
            co_await writer.drain();
        }
        writer.close();
        co_await writer.wait_closed();
        ++counters.clean;
    } catch (const corio::cancelled_error&) {
        ++counters.cancelled;
        throw;
    } catch (const std::system_error& e) {
        count_errno(e.code().value());
    } catch (const corio::incomplete_read_error&) {
        count_other("incomplete_read_error");
    } catch (const corio::limit_overrun_error&) {
        count_other("limit_overrun_error");
    } catch (const std::exception& e) {
        count_unexplained(std::string("exception in a handler: ") + e.what());
    } catch (...) {
        count_unexplained("an exception of unknown type in a handler");
    }
}

// Not a coroutine lambda: the handler object lives in the server, and `echo` needs nothing of
// it, so no frame refers to a capture.
struct echo_handler {
    corio::coro<> operator()(corio::stream_reader reader, corio::stream_writer writer) const {
        return echo(std::move(reader), std::move(writer));
    }
};

void print_counters(const char* label, long seconds, const corio::server& server,
                    std::string_view extra = {}) {
    std::ostringstream line;
    // tasks: corio::all_tasks(), the handlers' tasks plus the main task and the ticker.
    line << label << " seconds=" << seconds << " accepted=" << counters.accepted
         << " open=" << counters.open << " connections=" << server.connection_count()
         << " tasks=" << corio::all_tasks().size() << " bytes=" << counters.bytes
         << " clean=" << counters.clean << " cancelled=" << counters.cancelled
         << " reset=" << counters.reset << " pipe=" << counters.pipe << " other=" << counters.other
         << " unexplained=" << counters.unexplained << extra;
    std::cout << line.str() << std::endl;
}

std::string other_kinds() {
    std::string text;
    for (const auto& [kind, count] : counters.other_kinds) {
        if (!text.empty()) text += ", ";
        text += kind + ": " + std::to_string(count);
    }
    return text;
}

// Prints the counters at each whole second since `start`, until cancelled.
corio::coro<> ticker(corio::event_loop::time_point start, corio::server server) {
    auto& loop = corio::get_running_loop();
    for (long second = 1;; ++second) {
        co_await corio::sleep(start + std::chrono::seconds(second) - loop.time());
        print_counters("stats", second, server);
    }
}

long seconds_since(corio::event_loop::time_point start) {
    const auto elapsed = corio::get_running_loop().time() - start;
    return static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(elapsed).count());
}

corio::coro<int> serve(std::uint16_t port) {
    auto& loop = corio::get_running_loop();
    loop.set_exception_handler([](corio::event_loop&, const corio::exception_context& context) {
        std::string what = context.message;
        if (!context.task_name.empty()) what += " (task " + context.task_name + ")";
        if (context.exception) {
            try {
                std::rethrow_exception(context.exception);
            } catch (const std::exception& e) {
                what += std::string(": ") + e.what();
            } catch (...) {
                what += ": an exception of unknown type";
            }
        }
        count_unexplained("loop exception handler: " + what);
    });

    corio::event stop;
    int stop_signal = 0;
    for (const int signo : {SIGTERM, SIGINT}) {
        loop.add_signal_handler(signo, [&stop, &stop_signal, signo] {
            if (stop_signal == 0) stop_signal = signo;
            stop.set();
        });
    }

    corio::server server = co_await corio::start_server(echo_handler{}, "127.0.0.1", port);
    std::cout << "port " << server.port() << std::endl;
    std::cerr << "echo_soak_server: backend " << loop.backend_name() << ", pid " << ::getpid()
              << std::endl;

    const auto start = loop.time();
    corio::task<> tick = corio::create_task(ticker(start, server), "ticker");
    co_await stop.wait();

    tick.cancel();
    try {
        co_await tick;
    } catch (const corio::cancelled_error&) {
    }
    server.close();
    bool hung = false;
    try {
        co_await corio::wait_for(server.wait_closed(), close_timeout);
    } catch (const corio::timeout_error&) {
        hung = true;
    }
    if (hung) {
        log_error("handlers still running " + std::to_string(close_timeout.count()) +
                  " s after close(): " + std::to_string(server.connection_count()) + " of them");
        std::cerr << corio::format_call_graph() << std::flush;
    }
    for (const int signo : {SIGTERM, SIGINT}) loop.remove_signal_handler(signo);

    print_counters("final", seconds_since(start), server,
                   " other_kinds={" + other_kinds() +
                       "} signal=" + (stop_signal == SIGTERM ? "SIGTERM" : "SIGINT"));
    co_return hung ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 2) {
        std::cerr << "usage: " << argv[0] << " [port]\n";
        return 2;
    }
    const long port = argc == 2 ? std::strtol(argv[1], nullptr, 10) : 0;
    if (port < 0 || port > 65535) {
        std::cerr << "echo_soak_server: bad port " << argv[1] << '\n';
        return 2;
    }
    try {
        return corio::run(serve(static_cast<std::uint16_t>(port)));
    } catch (const std::exception& e) {
        log_error(std::string("fatal: ") + e.what());
        return 1;
    }
}
