// 24_sharded_cache: a key-value cache with one event loop per core, sharing nothing.
//
// Beyond the note, and beyond asyncio, which has one loop: Seastar's model. `corio::run_sharded(
// main, {.shards = N})` runs `main(shard_id)` on N loops, each on a thread of its own (pinned to
// a core), and returns their results in shard order. Each key lives on one shard, the hash of
// the key modulo `corio::shard_count()`, in a plain `std::unordered_map` that only that shard's
// thread touches: no locks. Every shard runs a TCP server on the same port (`.reuse_port =
// true`: the kernel spreads the connections over their sockets), and a connection on any shard
// reaches a key's owner with `co_await corio::submit_to(owner, fn)`, which runs `fn` on the
// owner's loop and brings its result back.
//
// The protocol, one request a line: `SET key value` (OK), `GET key` (VALUE value or NOT_FOUND),
// `DEL key` (DELETED or NOT_FOUND); a connection is greeted with the shard that serves it.
//
// Run without arguments, it starts 2 shards on a port the kernel chooses, connects to itself
// until it has a connection on each shard, sets keys through one shard's connection and reads
// them back through the other's, then closes every server; `run_sharded` returns once every
// shard's main has, and the program prints what each shard did. With `--port P [--shards N]`
// (N = 0, the default: one per core) it serves for ever, for `nc 127.0.0.1 P`; Ctrl-C stops it.

#include <corio/corio.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

std::string chomp(std::string line) {
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return line;
}

std::size_t index(corio::shard_id shard) { return static_cast<std::size_t>(shard); }

// What a shard owns. Each thread has its own `here`, and only that thread touches it.
struct shard_state {
    std::unordered_map<std::string, std::string> cache;  // the keys this shard owns
    corio::server* server = nullptr;                     // its server, while its main runs
    corio::event listening;                              // set once it listens
    int requests = 0;                                    // requests read on its connections
    int forwarded = 0;                                   // of which for another shard's keys
};
thread_local shard_state here;

// The one shard that holds `key`.
corio::shard_id owner_of(const std::string& key) {
    return corio::shard_id{std::hash<std::string>{}(key) % corio::shard_count()};
}

struct request {
    std::string verb, key, value;  // `verb` empty: not a request of the protocol
};

request parse(const std::string& line) {
    std::istringstream in(line);
    request r;
    in >> r.verb >> r.key;
    std::getline(in >> std::ws, r.value);  // the rest of the line
    const bool ok = !r.key.empty() &&
                    (r.verb == "SET" ? !r.value.empty()
                                     : (r.verb == "GET" || r.verb == "DEL") && r.value.empty());
    if (!ok) r.verb.clear();
    return r;
}

// Runs on the key's owner: `here.cache` is that shard's map.
std::string execute(const request& r) {
    if (r.verb == "SET") {
        here.cache[r.key] = r.value;
        return "OK";
    }
    const auto it = here.cache.find(r.key);
    if (it == here.cache.end()) return "NOT_FOUND";
    if (r.verb == "GET") return "VALUE " + it->second;
    here.cache.erase(it);
    return "DELETED";
}

// One task per connection, on the shard that accepted it.
corio::coro<> serve_connection(corio::stream_reader reader, corio::stream_writer writer) {
    writer.write("HELLO from shard " + std::to_string(index(corio::this_shard())) + "\n");
    for (;;) {
        const std::string line = co_await reader.readline();
        if (line.empty()) break;  // the client closed its end
        ++here.requests;
        const request r = parse(chomp(line));
        std::string answer;
        if (r.verb.empty()) {
            answer = "ERROR expected SET key value, GET key or DEL key";
        } else if (const corio::shard_id owner = owner_of(r.key); owner == corio::this_shard()) {
            answer = execute(r);  // our own key: no hop
        } else {
            ++here.forwarded;
            // Named first: g++ 12 mishandles a lambda's captures inside a co_await expression.
            auto on_owner = [r] { return execute(r); };
            answer = co_await corio::submit_to(owner, std::move(on_owner));
        }
        writer.write(answer + "\n");
        co_await writer.drain();
    }
    writer.close();
    co_await writer.wait_closed();
}

// Sent to a shard: waits until it listens, and says on which port.
corio::coro<std::uint16_t> port_when_listening() {
    co_await here.listening.wait();
    co_return here.server->port();
}

// The demo's client side (it runs on shard 0's loop, as any client could).
struct connection {
    corio::stream_reader reader;
    corio::stream_writer writer;
};

corio::coro<std::string> ask(connection& c, std::string request) {
    c.writer.write(request + "\n");
    co_await c.writer.drain();
    co_return chomp(co_await c.reader.readline());
}

// The kernel gives each new connection to one of the shards' sockets: connects until every
// shard has greeted one (`by_shard[k]` is served by shard k), closing the extra ones.
corio::coro<std::vector<std::optional<connection>>> connect_to_every_shard(std::uint16_t port) {
    std::vector<std::optional<connection>> by_shard(corio::shard_count());
    std::size_t missing = by_shard.size();
    for (int n = 1; missing > 0 && n <= 100; ++n) {
        auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port);
        const std::string hello = chomp(co_await reader.readline());
        expect(hello.starts_with("HELLO from shard "), "a connection is greeted by its shard");
        const std::size_t k = std::stoul(hello.substr(hello.rfind(' ') + 1));
        std::cout << "connection " << n << ": \"" << hello << '"'
                  << (by_shard[k] ? ", a second one there: closed\n" : "\n");
        if (!by_shard[k]) {
            by_shard[k] = connection{std::move(reader), std::move(writer)};
            --missing;
        } else {
            writer.close();  // that shard has one already
            co_await writer.wait_closed();
        }
    }
    expect(missing == 0, "connections land on every shard");
    co_return by_shard;
}

corio::coro<> run_clients(std::uint16_t port) {
    auto by_shard = co_await connect_to_every_shard(port);
    connection& via0 = *by_shard[0];
    connection& via1 = *by_shard[1];
    const int keys = 20;
    for (int i = 0; i < keys; ++i) {
        const std::string key = "key-" + std::to_string(i);
        const std::string value = "value " + std::to_string(i);
        const std::string set = co_await ask(i % 2 == 0 ? via0 : via1, "SET " + key + " " + value);
        const std::string got = co_await ask(i % 2 == 0 ? via1 : via0, "GET " + key);
        expect(set == "OK" && got == "VALUE " + value, "a value set on one shard is read on any");
        if (i < 4) {
            std::cout << "SET " << key << " on shard " << i % 2 << ": " << set << "; GET on shard "
                      << 1 - i % 2 << ": " << got << " (" << key << " lives on shard "
                      << index(owner_of(key)) << ")\n";
        }
    }
    std::cout << keys << " keys set through one shard's connection, read back through the "
              << "other's: every value matches\n";
    const std::string deleted = co_await ask(via1, "DEL key-0");
    const std::string gone = co_await ask(via0, "GET key-0");
    expect(deleted == "DELETED" && gone == "NOT_FOUND", "DEL on one shard is seen on any");
    std::cout << "DEL key-0 on shard 1: " << deleted << "; GET key-0 on shard 0: " << gone << "\n";
    for (auto& c : by_shard) {
        c->writer.close();
        co_await c->writer.wait_closed();
    }
    for (std::size_t k = 0; k < corio::shard_count(); ++k) {
        co_await corio::submit_to(corio::shard_id{k}, [] { here.server->close(); });
    }
    std::cout << "every shard's server closed\n";
}

struct shard_report {
    int requests = 0;
    int forwarded = 0;
    std::size_t keys = 0;
};

// Every shard's main.
corio::coro<shard_report> shard_main(corio::shard_id me, std::uint16_t port, bool demo) {
    if (port == 0 && me != corio::shard_id{0}) {
        // Port 0: shard 0's server gets one from the kernel; the others ask shard 0 which.
        port = co_await corio::submit_to(corio::shard_id{0}, port_when_listening);
    }
    const corio::server_options options{.reuse_port = true};  // one port, a socket per shard
    corio::server server =
        co_await corio::start_server(serve_connection, "127.0.0.1", port, options);
    here.server = &server;
    here.listening.set();
    if (me == corio::shard_id{0}) {
        for (std::size_t k = 0; k < corio::shard_count(); ++k) {
            const std::uint16_t theirs =
                co_await corio::submit_to(corio::shard_id{k}, port_when_listening);
            expect(theirs == server.port(), "every shard listens on the same port");
        }
        std::cout << corio::shard_count() << " shards listen on 127.0.0.1:" << server.port()
                  << ", a socket each (SO_REUSEPORT)" << (demo ? "\n" : "; Ctrl-C stops\n")
                  << std::flush;
        if (demo) co_await run_clients(server.port());  // closes every shard's server
    }
    co_await server.serve_forever();  // until closed, or Ctrl-C
    here.server = nullptr;
    co_return shard_report{here.requests, here.forwarded, here.cache.size()};
}

}  // namespace

int main(int argc, char** argv) {
    if ((argc == 3 || argc == 5) && std::strcmp(argv[1], "--port") == 0 &&
        (argc == 3 || std::strcmp(argv[3], "--shards") == 0)) {
        const auto port = static_cast<std::uint16_t>(std::atoi(argv[2]));
        const std::size_t shards = argc == 5 ? std::strtoul(argv[4], nullptr, 10) : 0;
        try {
            corio::run_sharded([port](corio::shard_id me) { return shard_main(me, port, false); },
                               {.shards = shards, .pin = true});
        } catch (const corio::cancelled_error&) {
            std::cout << "stopped\n";  // Ctrl-C
        }
        return 0;
    }
    if (argc != 1) {
        std::cerr << "usage: " << argv[0] << " [--port P [--shards N]]\n";
        return 2;
    }
    const std::vector<shard_report> reports = corio::run_sharded(
        [](corio::shard_id me) { return shard_main(me, 0, true); }, {.shards = 2, .pin = true});
    std::size_t keys = 0;
    for (std::size_t k = 0; k < reports.size(); ++k) {
        const shard_report& r = reports[k];
        std::cout << "shard " << k << ": " << r.requests << " requests on its connections, "
                  << r.forwarded << " of them sent to the other shard; owns " << r.keys
                  << " keys\n";
        expect(r.requests > 0 && r.forwarded > 0 && r.keys > 0,
               "every shard serves requests, forwards some, and owns keys");
        keys += r.keys;
    }
    expect(keys == 19, "each of the 19 keys left lives on exactly one shard");
}
