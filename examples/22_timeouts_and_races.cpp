// 22_timeouts_and_races: give up on a wait in time, or let waits race and keep the first.
//
// Beyond the note, which stops at `wait`. Every combinator takes any awaitable, not only coros
// and tasks: `queue.get()`, `lock.acquire()`, `event.wait()`, `corio::sleep(d)`, a stream read,
// another library's awaiter. Here:
//
// - `co_await corio::wait_for(jobs.get(), 30ms)` is asyncio's `await asyncio.wait_for(q.get(),
//   0.03)`: after 30 ms the `get` is withdrawn and `corio::timeout_error` is thrown. A `get`
//   that timed out took no item: a job put afterwards stays in the queue for the next one;
// - `corio::with_timeout(d, aw)` (trio's `move_on_after`) gives a `std::optional`, empty on
//   timeout, and throws nothing; `corio::with_deadline(t, aw)` does the same against a point on
//   the loop's clock (`loop.time() + 90ms`), one deadline for a whole loop of `get`s;
// - `co_await corio::race(a, b)` (Tokio's `select!`) awaits both and keeps the first to finish:
//   a `std::variant` whose index says which one. Every loser is cancelled, and awaited, before
//   `race` returns: a download raced against a 50 ms timer, then two mirrors of one file;
// - `corio::create_task(c, {.eager = true})` (Python 3.12's eager tasks) runs the body at once,
//   inside `create_task`: a cache that answers without suspending is done before the call
//   returns, and in a race it wins before the download raced after it has even started.

#include <corio/corio.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
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

// Which downloads started, and which were cancelled.
struct journal {
    std::vector<std::string> started;
    std::vector<std::string> cancelled;

    [[nodiscard]] bool was_started(const std::string& from) const {
        return std::find(started.begin(), started.end(), from) != started.end();
    }
    [[nodiscard]] bool was_cancelled(const std::string& from) const {
        return std::find(cancelled.begin(), cancelled.end(), from) != cancelled.end();
    }
};

// Stands for a download from `from`, which takes `latency`. Says when it is cancelled.
corio::coro<std::string> download(std::string from, std::chrono::milliseconds latency,
                                  journal& log) {
    std::cout << "  " << from << ": downloading\n";
    log.started.push_back(from);
    try {
        co_await corio::sleep(latency);
    } catch (const corio::cancelled_error&) {
        std::cout << "  " << from << ": cancelled\n";
        log.cancelled.push_back(from);
        throw;  // a cancelled coroutine ends cancelled
    }
    co_return "the file, from " + from;
}

// Stands for a cache lookup that hits: it answers without ever suspending.
corio::coro<std::string> from_cache(std::string key) { co_return key + ", from the cache"; }

// Puts a reply every 30 ms, from 15 ms on.
corio::coro<> send_replies(corio::queue<std::string>& inbox, int count) {
    co_await corio::sleep(15ms);
    for (int i = 1; i <= count; ++i) {
        inbox.put_nowait("reply " + std::to_string(i));
        if (i < count) co_await corio::sleep(30ms);
    }
}

corio::coro<> wait_for_a_job() {
    corio::queue<std::string> jobs;
    try {
        const std::string job = co_await corio::wait_for(jobs.get(), 30ms);
        expect(false, "an empty queue gave \"" + job + "\"");
    } catch (const corio::timeout_error&) {
        std::cout << "wait_for(jobs.get(), 30ms): no job in 30 ms, corio::timeout_error\n";
    }
    jobs.put_nowait("job 1");  // handed to a waiting getter, if one were left
    expect(jobs.qsize() == 1, "the get that timed out is not waiting any more");
    const std::string job = co_await corio::wait_for(jobs.get(), 30ms);
    std::cout << "the job put afterwards stayed in the queue; the next get took \"" << job
              << "\"\n";
    expect(job == "job 1" && jobs.empty(), "the next get takes the job");
}

corio::coro<> give_up_quietly() {
    journal log;
    std::optional<std::string> page = co_await corio::with_timeout(20ms, download("slow", 1s, log));
    std::cout << "with_timeout(20ms, ...): " << (page ? *page : "an empty optional, no exception")
              << '\n';
    expect(!page && log.was_cancelled("slow"), "with_timeout gives up and cancels the download");
    page = co_await corio::with_timeout(100ms, download("fast", 5ms, log));
    std::cout << "with_timeout(100ms, ...): \"" << page.value_or("nothing") << "\"\n";
    expect(page == "the file, from fast", "a download in time gives its result");

    corio::queue<std::string> inbox;
    corio::task<> sender = corio::create_task(send_replies(inbox, 5), "sender");
    const auto deadline = corio::get_running_loop().time() + 90ms;
    std::vector<std::string> replies;
    while (auto reply = co_await corio::with_deadline(deadline, inbox.get())) {
        replies.push_back(std::move(*reply));
    }
    std::cout << "with_deadline(now + 90ms, inbox.get()) in a loop: " << replies.size()
              << " replies in time\n";
    co_await sender;
    std::cout << "  the " << inbox.qsize() << " late ones are still in the inbox\n";
    expect(replies.size() == 3 && inbox.qsize() == 2, "3 replies by the deadline, none lost");
}

corio::coro<> races() {
    journal log;
    std::cout << "race(download, sleep(50ms)):\n";
    auto first = co_await corio::race(download("slow server", 1s, log), corio::sleep(50ms));
    std::cout << "  the 50 ms timer won (index " << first.index() << ")\n";
    expect(first.index() == 1 && log.was_cancelled("slow server"),
           "the timer wins, and the download is cancelled before race returns");

    std::cout << "race of two mirrors:\n";
    auto winner =
        co_await corio::race(download("mirror-a", 40ms, log), download("mirror-b", 15ms, log));
    std::cout << "  mirror-b won (index " << winner.index() << "): \"" << std::get<1>(winner)
              << "\"\n";
    expect(winner.index() == 1 && log.was_cancelled("mirror-a"),
           "the faster mirror wins; the slower one is cancelled before race returns");
}

corio::coro<> eager_tasks() {
    journal log;
    corio::task<std::string> eager =
        corio::create_task(from_cache("logo.png"), {.name = "cache", .eager = true});
    corio::task<std::string> plain = corio::create_task(from_cache("logo.png"), "cache-plain");
    std::cout << "eager task: done inside create_task (\"" << eager.result() << "\")\n";
    std::cout << "plain task: done=" << std::boolalpha << plain.done()
              << ", it runs when this task next suspends\n";
    expect(eager.done() && !plain.done(), "only the eager task ran inside create_task");
    co_await plain;

    std::cout << "race(the cache, a download):\n";
    auto fastest = co_await corio::race(from_cache("logo.png"), download("origin", 30ms, log));
    std::cout << "  the cache won at once (index " << fastest.index()
              << "); the download never started\n";
    expect(fastest.index() == 0 && !log.was_started("origin"),
           "a ready argument wins before the ones after it start");
}

corio::coro<> async_main() {
    const auto start = corio::get_running_loop().time();
    co_await wait_for_a_job();
    co_await give_up_quietly();
    co_await races();
    co_await eager_tasks();
    const auto elapsed = corio::get_running_loop().time() - start;
    expect(elapsed < 1s, "nothing waited for the 1 s downloads");
}

}  // namespace

int main() { corio::run(async_main()); }
