// 11_async_generators: async generators, `async for`, and a time limit on every step.
//
// Beyond the note, from its own definition: a coroutine function is one that may contain
// `await`, `async for` and `async with`, and this is corio's `async for`. asyncio's async
// generator (`async def` with `yield`) is a function returning `corio::async_generator<T>`,
// which may both `co_await` and `co_yield`. It is lazy: calling it runs nothing, and each
// `co_await g.next()` runs the body up to its next `co_yield` and gives a `std::optional<T>`,
// empty once the body has ended:
//   - `async for x in gen():`     is `auto g = gen(); while (auto x = co_await g.next())`;
//   - `[x async for x in gen()]`  is `co_await corio::collect(gen())`;
//   - `await agen.aclose()`       is `co_await g.aclose()` (destroying `g` does the same): the
//                                 body ends where it yielded, and its locals are destroyed.
// `reader.lines()` is `async for line in reader`: the lines of a connection, each with its
// `\n`. `corio::wait_for(lines.next(), 100ms)` bounds one step: when no line comes in time, the
// cancellation is raised inside the generator, at the read it awaits, which ends the generator
// (as in asyncio), and `corio::timeout_error` comes out of the `co_await`. Here a tiny server
// sends three lines, starts a fourth and falls silent; its client stops at the silence.

#include <corio/corio.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

// Without its '\n', for printing.
std::string chomp(std::string line) {
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return line;
}

int pages_fetched = 0;

// A paginated fetch: each page is "fetched" (a sleep standing for the network) only when the
// consumer asks for an item past the previous page.
corio::async_generator<std::string> catalogue(int pages) {
    for (int page = 1; page <= pages; ++page) {
        co_await corio::sleep(10ms);
        ++pages_fetched;
        std::cout << "  (fetched page " << page << ")\n";
        for (int i = 1; i <= 2; ++i) {
            co_yield "item " + std::to_string(page) + "." + std::to_string(i);
        }
    }
}

corio::coro<> pure_generators() {
    auto items = catalogue(3);
    expect(pages_fetched == 0, "calling a generator function runs nothing yet");
    std::cout << "async for over catalogue(3), stopping after item 2.1:\n";
    while (auto item = co_await items.next()) {
        std::cout << "  got " << *item << '\n';
        if (*item == "item 2.1") break;
    }
    co_await items.aclose();  // the body ends at its co_yield: page 3 is never fetched
    expect(pages_fetched == 2, "a generator runs only as far as it is consumed");

    std::cout << "collect(catalogue(3)):\n";
    std::vector<std::string> all = co_await corio::collect(catalogue(3));
    std::cout << "  gave " << all.size() << " items, \"" << all.front() << "\" to \"" << all.back()
              << "\"\n";
    expect(all.size() == 6 && all.back() == "item 3.2", "collect takes every item, in order");
}

// The server: three lines 20 ms apart, the start of a fourth, then silence until the client
// hangs up.
corio::coro<> news(corio::stream_reader reader, corio::stream_writer writer) {
    static constexpr const char* lines[] = {"hello\n", "the weather is fine\n", "more soon\n"};
    for (const char* line : lines) {
        writer.write(line);
        co_await writer.drain();
        co_await corio::sleep(20ms);
    }
    writer.write("and then");  // never finished
    co_await writer.drain();
    const std::string rest = co_await reader.read();  // until the client closes its end
    expect(rest.empty(), "the client sends nothing");
    writer.close();
    co_await writer.wait_closed();
}

corio::coro<int> read_until_silence(std::uint16_t port) {
    auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port);
    corio::async_generator<std::string> lines = reader.lines();  // async for line in reader
    int received = 0;
    try {
        while (auto line = co_await corio::wait_for(lines.next(), 100ms)) {
            std::cout << "client: got \"" << chomp(*line) << "\"\n";
            ++received;
        }
        expect(false, "the lines ended before the silence");
    } catch (const corio::timeout_error&) {
        std::cout << "client: no line in 100 ms, the server fell silent: stop reading\n";
    }
    const auto after = co_await lines.next();  // nothing: the timeout ended the generator
    expect(!after, "the cancellation raised at the generator's read ends the generator");
    std::cout << "client: the generator has ended; the unfinished line's " << reader.buffered()
              << " bytes wait in the reader\n";
    expect(reader.buffered() == 8, "a cancelled readline keeps what it had read");
    writer.close();
    co_await writer.wait_closed();
    co_return received;
}

corio::coro<> async_main() {
    const auto start = corio::get_running_loop().time();
    co_await pure_generators();

    auto server = co_await corio::start_server(news, "127.0.0.1", 0);
    std::cout << "server on 127.0.0.1:" << server.port() << '\n';
    const int received = co_await read_until_silence(server.port());
    expect(received == 3, "the three whole lines came, each in time");
    server.close();
    co_await server.wait_closed();

    const auto elapsed = corio::get_running_loop().time() - start;
    expect(elapsed < 1s, "a silent server costs one timeout, not a hang");
}

}  // namespace

int main() { corio::run(async_main()); }
