// 12_producer_consumer: a crawler-like pipeline with a queue, a semaphore and join().
//
// The shape of most asyncio programs that do real work: one task produces jobs, a pool of
// workers consumes them, and something bounds how much happens at once. Here:
//
// - a producer reads a (simulated) sitemap and puts each URL in a bounded `corio::queue`: when
//   the queue holds 4 URLs, `co_await queue.put(url)` waits until a worker takes one
//   (backpressure: the producer never runs far ahead of the workers);
// - five workers take URLs with `co_await queue.get()`, "fetch" each (a sleep standing for the
//   network), and call `queue.task_done()`;
// - a `corio::semaphore` of 3 keeps at most three fetches in flight, however many workers
//   there are (be polite to the server); `co_await semaphore.scoped()` is asyncio's
//   `async with semaphore:`, releasing the unit when the guard goes out of scope;
// - `co_await queue.join()` returns once every URL put has been marked done, and then
//   `queue.shutdown()` (Python 3.13) wakes the idle workers with `corio::queue_shutdown`, so
//   they end cleanly instead of being cancelled.

#include <corio/corio.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <set>
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

constexpr int url_count = 20;
constexpr std::size_t queue_size = 4;
constexpr int worker_count = 5;
constexpr int max_fetches = 3;

struct crawl_stats {
    std::set<std::string> fetched;
    int fetching = 0;        // fetches in flight now
    int peak_fetching = 0;   // the most ever in flight at once
    int producer_waits = 0;  // puts that found the queue full
    std::size_t peak_queued = 0;
};

corio::coro<> read_sitemap(corio::queue<std::string>& urls, crawl_stats& stats) {
    for (int i = 0; i < url_count; ++i) {
        std::string url = "https://example.org/page/" + std::to_string(i);
        if (urls.full()) ++stats.producer_waits;
        co_await urls.put(std::move(url));  // waits while 4 URLs are pending
        stats.peak_queued = std::max(stats.peak_queued, urls.qsize());
    }
    std::cout << "producer: all " << url_count << " URLs queued (waited for room "
              << stats.producer_waits << " times)\n";
}

// Stands for an HTTP GET: 10, 15 or 20 ms, depending on the page.
corio::coro<> fetch(const std::string& url) {
    const int digit = url.back() - '0';
    co_await corio::sleep(std::chrono::milliseconds(10 + 5 * (digit % 3)));
}

corio::coro<> worker(int id, corio::queue<std::string>& urls, corio::semaphore& connections,
                     crawl_stats& stats) {
    int done = 0;
    try {
        for (;;) {
            const std::string url = co_await urls.get();
            {
                auto connection = co_await connections.scoped();  // at most 3 at once
                ++stats.fetching;
                stats.peak_fetching = std::max(stats.peak_fetching, stats.fetching);
                co_await fetch(url);
                --stats.fetching;
            }
            expect(stats.fetched.insert(url).second, "each URL is fetched once");
            ++done;
            urls.task_done();
        }
    } catch (const corio::queue_shutdown&) {
        // The queue was shut down and is empty: the crawl is over.
    }
    std::cout << "worker " << id << ": fetched " << done << " pages, stops\n";
}

corio::coro<> async_main() {
    const auto start = corio::get_running_loop().time();
    corio::queue<std::string> urls(queue_size);
    corio::semaphore connections(max_fetches);
    crawl_stats stats;

    std::vector<corio::task<>> workers;
    for (int id = 1; id <= worker_count; ++id) {
        workers.push_back(corio::create_task(worker(id, urls, connections, stats)));
    }
    co_await read_sitemap(urls, stats);

    co_await urls.join();  // every URL put has been marked done by task_done()
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        corio::get_running_loop().time() - start);
    std::cout << "join(): " << stats.fetched.size() << " pages in " << elapsed.count()
              << " ms, at most " << stats.peak_fetching << " fetches at once\n";

    urls.shutdown();  // wakes the idle workers with queue_shutdown
    for (auto& w : workers) co_await w;

    expect(stats.fetched.size() == url_count, "every URL is fetched");
    expect(stats.peak_fetching == max_fetches, "the semaphore allows exactly 3 fetches at once");
    expect(stats.peak_queued <= queue_size, "the queue never holds more than its maxsize");
    expect(stats.producer_waits > 0, "the producer waits when the queue is full");
    // 290 ms of fetches, three at a time: at least 97 ms, far from 290 ms one by one.
    expect(elapsed >= 90ms && elapsed < 1s, "the fetches overlap, three at a time");
    std::cout << "all workers stopped\n";
}

}  // namespace

int main() { corio::run(async_main()); }
