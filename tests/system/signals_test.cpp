// Signals (include/corio/system/signals.hpp): add_signal_handler / remove_signal_handler through
// the loop's signalfd (a signal sent to the process reaching its handler on the loop, replacing and
// removing handlers, the disposition and the thread's mask restored, a signal pending at
// removal dropped, a signal caught by a thread that does not block it forwarded, invalid
// signals), and corio::run's Ctrl-C handling (SIGINT cancelling the main task, a second SIGINT
// killing the process, in forked children so that the test runner is safe; the conditions under
// which run leaves SIGINT alone). CTest runs it once per backend (CORIO_BACKEND).
#include <corio/system/signals.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/event.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;

namespace {

// --- plumbing ------------------------------------------------------------------------------

struct sigaction disposition_of(int signo) {
    struct sigaction action{};
    ::sigaction(signo, nullptr, &action);
    return action;
}

bool has_handler(int signo, void (*handler)(int)) {
    const struct sigaction action = disposition_of(signo);
    return (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == handler;
}

bool blocked_in_this_thread(int signo) {
    sigset_t mask;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    return ::sigismember(&mask, signo) == 1;
}

// A plain C handler to tell "our disposition came back" from anything corio installs.
std::atomic<int> plain_handler_calls{0};
void plain_handler(int) { plain_handler_calls.fetch_add(1); }

// Installs `handler` for `signo` for the duration of a test case, and restores what was there.
class scoped_disposition {
public:
    scoped_disposition(int signo, void (*handler)(int)) : signo_(signo) {
        struct sigaction action{};
        action.sa_handler = handler;
        ::sigemptyset(&action.sa_mask);
        ::sigaction(signo, &action, &previous_);
    }
    scoped_disposition(const scoped_disposition&) = delete;
    scoped_disposition& operator=(const scoped_disposition&) = delete;
    ~scoped_disposition() { ::sigaction(signo_, &previous_, nullptr); }

private:
    int signo_;
    struct sigaction previous_{};
};

// Runs `body` in a forked child and returns its wait status; the child exits with what `body`
// returns (99 if it throws). Fails the test if the child takes more than 20 s.
int run_in_child(const std::function<int()>& body) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // As a program starts: SIGINT at its default (Catch2 installs a handler of its own).
        ::signal(SIGINT, SIG_DFL);
        int code = 99;
        try {
            code = body();
        } catch (...) {
        }
        ::_exit(code);
    }
    int status = 0;
    for (int waited_ms = 0;; waited_ms += 10) {
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) return status;
        if (waited_ms > 20'000) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            FAIL("the child did not finish within 20 s");
        }
        std::this_thread::sleep_for(10ms);
    }
}

void send_to_self(int signo) { ::kill(::getpid(), signo); }

corio::coro<> wait_event(corio::event& e) { co_await e.wait(); }

// --- add_signal_handler --------------------------------------------------------------------

TEST_CASE("signals: a signal sent to the process reaches its handler, on the loop", "[signals]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        corio::event received;
        int calls = 0;
        bool on_loop = false;
        loop.add_signal_handler(SIGUSR1, [&] {
            ++calls;
            on_loop = corio::detail::loop_access::running() == &loop;
            received.set();
        });
        CHECK(corio::detail::signal_handler_installed(loop, SIGUSR1));
        CHECK(blocked_in_this_thread(SIGUSR1));
        send_to_self(SIGUSR1);
        co_await corio::wait_for(wait_event(received), 5s);
        CHECK(calls == 1);
        CHECK(on_loop);

        // Again: the handler stays installed.
        received.clear();
        send_to_self(SIGUSR1);
        co_await corio::wait_for(wait_event(received), 5s);
        CHECK(calls == 2);
        CHECK(loop.remove_signal_handler(SIGUSR1));
        CHECK_FALSE(corio::detail::signal_handler_installed(loop, SIGUSR1));
    }());
}

TEST_CASE("signals: several signals, each to its own handler; a second add replaces", "[signals]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        corio::event both;
        corio_test::recorder rec;
        auto check_both = [&] {
            if (rec.contains("usr1") && rec.contains("usr2")) both.set();
        };
        loop.add_signal_handler(SIGUSR1, [&] {
            rec("old usr1");
            check_both();
        });
        loop.add_signal_handler(SIGUSR1, [&] {
            rec("usr1");
            check_both();
        });
        loop.add_signal_handler(SIGUSR2, [&] {
            rec("usr2");
            check_both();
        });
        send_to_self(SIGUSR1);
        send_to_self(SIGUSR2);
        co_await corio::wait_for(wait_event(both), 5s);
        CHECK_FALSE(rec.contains("old usr1"));
        CHECK(rec.events().size() == 2);
        CHECK(loop.remove_signal_handler(SIGUSR1));
        CHECK(loop.remove_signal_handler(SIGUSR2));
    }());
}

TEST_CASE("signals: remove_signal_handler restores the disposition and the thread's mask",
          "[signals]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    scoped_disposition plain(SIGUSR2, &plain_handler);
    REQUIRE_FALSE(blocked_in_this_thread(SIGUSR2));
    plain_handler_calls = 0;
    corio_test::run_test([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        int calls = 0;
        loop.add_signal_handler(SIGUSR2, [&] { ++calls; });
        CHECK_FALSE(has_handler(SIGUSR2, &plain_handler));
        CHECK(blocked_in_this_thread(SIGUSR2));
        CHECK(loop.remove_signal_handler(SIGUSR2));
        CHECK_FALSE(loop.remove_signal_handler(SIGUSR2));  // none any more
        CHECK(has_handler(SIGUSR2, &plain_handler));
        CHECK_FALSE(blocked_in_this_thread(SIGUSR2));
        // The signal is the program's own business again.
        send_to_self(SIGUSR2);
        CHECK(plain_handler_calls == 1);
        co_await corio::sleep(10ms);
        CHECK(calls == 0);
    }());
}

TEST_CASE("signals: a signal already blocked stays blocked after remove_signal_handler",
          "[signals]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    sigset_t only;
    ::sigemptyset(&only);
    ::sigaddset(&only, SIGUSR2);
    ::pthread_sigmask(SIG_BLOCK, &only, nullptr);
    corio_test::run_test([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        loop.add_signal_handler(SIGUSR2, [] {});
        CHECK(loop.remove_signal_handler(SIGUSR2));
        CHECK(blocked_in_this_thread(SIGUSR2));
        co_return;
    }());
    ::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
}

TEST_CASE("signals: closing the loop removes its handlers and restores everything", "[signals]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    scoped_disposition plain(SIGUSR1, &plain_handler);
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        loop.add_signal_handler(SIGUSR1, [] {});
        loop.add_signal_handler(SIGUSR2, [] {});
        CHECK(blocked_in_this_thread(SIGUSR1));
        co_return;  // no remove_signal_handler: run's close does it
    }());
    CHECK(has_handler(SIGUSR1, &plain_handler));
    CHECK(has_handler(SIGUSR2, SIG_DFL));
    CHECK_FALSE(blocked_in_this_thread(SIGUSR1));
    CHECK_FALSE(blocked_in_this_thread(SIGUSR2));
}

TEST_CASE("signals: a signal pending when its handler is removed is dropped, not delivered to "
          "the old disposition",
          "[signals]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    scoped_disposition plain(SIGUSR1, &plain_handler);
    plain_handler_calls = 0;
    corio_test::run_test([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        int calls = 0;
        loop.add_signal_handler(SIGUSR1, [&] { ++calls; });
        send_to_self(SIGUSR1);  // pending: the loop has not read it yet
        CHECK(loop.remove_signal_handler(SIGUSR1));
        co_await corio::sleep(10ms);
        CHECK(calls == 0);
    }());
    CHECK(plain_handler_calls == 0);
}

TEST_CASE("signals: a signal caught by a thread that does not block it is forwarded to the "
          "loop",
          "[signals]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::run_test([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        corio::event received;
        loop.add_signal_handler(SIGUSR1, [&] { received.set(); });
        // The new thread inherits the loop thread's mask: it unblocks SIGUSR1 and raises it in
        // itself, so the kernel can only deliver it there, to corio's forwarding handler.
        std::thread other([] {
            sigset_t only;
            ::sigemptyset(&only);
            ::sigaddset(&only, SIGUSR1);
            ::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
            ::raise(SIGUSR1);
        });
        other.join();
        co_await corio::wait_for(wait_event(received), 5s);
        CHECK(received.is_set());
        CHECK(loop.remove_signal_handler(SIGUSR1));
    }());
}

TEST_CASE("signals: a handler may remove itself; an exception escaping it goes to the loop's "
          "exception handler",
          "[signals]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::exception_log log;
    corio_test::run_test([](corio_test::exception_log& log) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        log.install(loop);
        corio::event done;
        loop.add_signal_handler(SIGUSR1, [&] {
            CHECK(corio::get_running_loop().remove_signal_handler(SIGUSR1));
            done.set();
            throw std::runtime_error("from the handler");
        });
        send_to_self(SIGUSR1);
        co_await corio::wait_for(wait_event(done), 5s);
        co_await corio::sleep(1ms);
        CHECK_FALSE(corio::detail::signal_handler_installed(loop, SIGUSR1));
    }(log));
    REQUIRE(log.size() == 1);
    CHECK(log.contexts()[0].message == "Exception in signal handler");
    CHECK(corio_test::what_of(log.contexts()[0].exception) == "from the handler");
    CHECK(has_handler(SIGUSR1, SIG_DFL));
}

TEST_CASE("signals: signals that cannot be handled are std::invalid_argument", "[signals]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    auto loop = corio::new_event_loop();
    for (int signo : {0, -1, SIGKILL, SIGSTOP, 32, 33, NSIG, 1000}) {
        CAPTURE(signo);
        CHECK_THROWS_AS(loop->add_signal_handler(signo, [] {}), std::invalid_argument);
    }
    CHECK_THROWS_AS(loop->add_signal_handler(SIGUSR1, std::function<void()>{}),
                    std::invalid_argument);
    CHECK_THROWS_AS(loop->remove_signal_handler(0), std::invalid_argument);
    CHECK_THROWS_AS(loop->remove_signal_handler(NSIG), std::invalid_argument);
    CHECK_FALSE(loop->remove_signal_handler(SIGKILL));
    CHECK_FALSE(loop->remove_signal_handler(SIGUSR1));
    // Real-time signals are fine.
    loop->add_signal_handler(SIGRTMIN, [] {});
    CHECK(loop->remove_signal_handler(SIGRTMIN));
    loop->close();
    CHECK_THROWS_AS(loop->add_signal_handler(SIGUSR1, [] {}), std::runtime_error);
}

// --- corio::run and SIGINT ------------------------------------------------------------------

TEST_CASE("run: SIGINT cancels the main task, which cleans up; run throws cancelled_error and "
          "restores SIGINT's default",
          "[signals][run]") {
    CORIO_REQUIRE_BACKEND();
    const int status = run_in_child([] {
        bool cleaned_up = false;
        bool installed = false;
        try {
            corio::run([](bool& cleaned_up, bool& installed) -> corio::coro<> {
                installed = !has_handler(SIGINT, SIG_DFL);
                auto& loop = corio::get_running_loop();
                loop.call_later(20ms, [] { send_to_self(SIGINT); });
                try {
                    co_await corio::sleep(10s);
                } catch (const corio::cancelled_error&) {
                    cleaned_up = true;
                    throw;
                }
            }(cleaned_up, installed));
            return 1;  // run returned normally
        } catch (const corio::cancelled_error& e) {
            if (!installed) return 2;
            if (!cleaned_up) return 3;
            if (std::string(e.what()) != "SIGINT") return 4;
            if (!has_handler(SIGINT, SIG_DFL)) return 5;
            return 0;
        }
    });
    INFO("wait status " << status);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("run: a second SIGINT while the main task is being cancelled kills the process",
          "[signals][run]") {
    CORIO_REQUIRE_BACKEND();
    const int status = run_in_child([] {
        corio::run([]() -> corio::coro<> {
            send_to_self(SIGINT);
            bool cancelled = false;
            try {
                co_await corio::sleep(10s);
            } catch (const corio::cancelled_error&) {
                cancelled = true;
            }
            if (cancelled) {
                // A slow clean-up, and the user presses Ctrl-C again.
                send_to_self(SIGINT);
                co_await corio::sleep(10s);
            }
        }());
        return 1;
    });
    INFO("wait status " << status);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGINT);
}

TEST_CASE("run: a SIGINT handler of the program's own takes precedence over run's",
          "[signals][run]") {
    CORIO_REQUIRE_BACKEND();
    const int status = run_in_child([] {
        const int result = corio::run([]() -> corio::coro<int> {
            auto& loop = corio::get_running_loop();
            corio::event interrupted;
            loop.add_signal_handler(SIGINT, [&] { interrupted.set(); });
            send_to_self(SIGINT);
            co_await corio::wait_for(wait_event(interrupted), 5s);
            loop.remove_signal_handler(SIGINT);
            // run's own handling is back.
            if (has_handler(SIGINT, SIG_DFL)) co_return 10;
            co_return 0;
        }());
        if (!has_handler(SIGINT, SIG_DFL)) return 11;
        return result;
    });
    INFO("wait status " << status);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("run: a SIGINT handler left installed by the program does not disable the next run's "
          "Ctrl-C handling",
          "[signals][run]") {
    CORIO_REQUIRE_BACKEND();
    const int status = run_in_child([] {
        corio::run([]() -> corio::coro<> {
            corio::get_running_loop().add_signal_handler(SIGINT, [] {});
            co_return;  // never removed: the loop's close restores run's handler, late
        }());
        try {
            corio::run([]() -> corio::coro<> {
                send_to_self(SIGINT);
                co_await corio::sleep(10s);
            }());
            return 1;
        } catch (const corio::cancelled_error&) {
        }
        return has_handler(SIGINT, SIG_DFL) ? 0 : 2;
    });
    INFO("wait status " << status);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("run: leaves SIGINT alone outside the main thread and when it is not at its default",
          "[signals][run]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    // As a program starts (Catch2 installs a SIGINT handler of its own while a test runs).
    scoped_disposition at_default(SIGINT, SIG_DFL);
    SECTION("not the main thread") {
        bool untouched = false;
        std::thread other([&] {
            corio::run([](bool& untouched) -> corio::coro<> {
                untouched = has_handler(SIGINT, SIG_DFL);
                co_return;
            }(untouched));
        });
        other.join();
        CHECK(untouched);
    }
    SECTION("SIGINT ignored") {
        scoped_disposition ignored(SIGINT, SIG_IGN);
        bool untouched = false;
        corio::run([](bool& untouched) -> corio::coro<> {
            untouched = has_handler(SIGINT, SIG_IGN);
            co_return;
        }(untouched));
        CHECK(untouched);
        CHECK(has_handler(SIGINT, SIG_IGN));
    }
    SECTION("the main thread, SIGINT at its default: taken, then given back") {
        bool taken = false;
        corio::run([](bool& taken) -> corio::coro<> {
            taken = !has_handler(SIGINT, SIG_DFL);
            co_return;
        }(taken));
        CHECK(taken);
        CHECK(has_handler(SIGINT, SIG_DFL));
    }
}

TEST_CASE("run: a main task that ends while SIGINT is pending is not disturbed", "[signals][run]") {
    CORIO_REQUIRE_BACKEND();
    const int status = run_in_child([] {
        // The interrupt arrives, the task finishes before the loop reads it: run returns.
        const int value = corio::run([]() -> corio::coro<int> {
            send_to_self(SIGINT);
            co_return 7;
        }());
        return value == 7 && has_handler(SIGINT, SIG_DFL) ? 0 : 1;
    });
    INFO("wait status " << status);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace
