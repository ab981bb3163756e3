// The choice of backend (include/corio/run.hpp): backend_name() follows run_options::backend
// and CORIO_BACKEND, an unknown CORIO_BACKEND is refused, and the automatic choice falls back
// to epoll, silently and at once, when a seccomp filter forbids io_uring_setup (checked in a
// forked child, which reports through its exit code), while io_uring asked for by name is then
// a std::system_error. io_uring-specific checks are skipped where the kernel forbids io_uring
// to the whole test process.
#include <corio/run.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/config.hpp>
#include <corio/net/sock.hpp>
#include <corio/reactor/epoll.hpp>
#include <corio/reactor/uring.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;

namespace {

// Whether this process may use io_uring at all (the kernel or a container may forbid it).
bool uring_allowed() {
#if defined(CORIO_HAS_URING)
    static const bool allowed = [] {
        try {
            corio::uring_reactor probe;
            return true;
        } catch (const std::system_error&) {
            return false;
        }
    }();
    return allowed;
#else
    return false;
#endif
}

#define REQUIRE_URING_ALLOWED()                                                                    \
    do {                                                                                           \
        if (!uring_allowed()) {                                                                    \
            CORIO_SKIP("io_uring is not available to this process (not built in, or the kernel "   \
                       "refuses it)");                                                             \
        }                                                                                          \
    } while (false)

// Sets (or, with nullptr, unsets) CORIO_BACKEND for a scope; puts back what CTest set.
class backend_env {
public:
    explicit backend_env(const char* value) {
        if (const char* old = std::getenv("CORIO_BACKEND")) saved_ = old;
        if (value == nullptr) {
            ::unsetenv("CORIO_BACKEND");
        } else {
            ::setenv("CORIO_BACKEND", value, 1);
        }
    }
    backend_env(const backend_env&) = delete;
    backend_env& operator=(const backend_env&) = delete;
    ~backend_env() {
        if (saved_) {
            ::setenv("CORIO_BACKEND", saved_->c_str(), 1);
        } else {
            ::unsetenv("CORIO_BACKEND");
        }
    }

private:
    std::optional<std::string> saved_;
};

corio::coro<std::string> name_in_loop() {
    co_await corio::sleep(0ms);
    co_return std::string(corio::get_running_loop().backend_name());
}

std::string run_on(corio::backend b) { return corio::run(name_in_loop(), {.backend = b}); }

// --- run_options::backend ------------------------------------------------------------------

TEST_CASE("backend: run_options::backend = epoll gives epoll, whatever CORIO_BACKEND says",
          "[backend]") {
    frame_leak_check leaks;
    const char* env = GENERATE(as<const char*>{}, nullptr, "", "epoll", "io_uring", "automatic",
                               "no-such-backend");
    CAPTURE(env == nullptr ? "<unset>" : env);
    backend_env scoped(env);
    CHECK(run_on(corio::backend::epoll) == "epoll");
    CHECK(corio::new_event_loop({.backend = corio::backend::epoll})->backend_name() == "epoll");
}

TEST_CASE("backend: run_options::backend = io_uring gives io_uring, whatever CORIO_BACKEND says",
          "[backend][io_uring]") {
    REQUIRE_URING_ALLOWED();
    frame_leak_check leaks;
    const char* env = GENERATE(as<const char*>{}, nullptr, "epoll", "io_uring", "bogus");
    CAPTURE(env == nullptr ? "<unset>" : env);
    backend_env scoped(env);
    CHECK(run_on(corio::backend::io_uring) == "io_uring");
    CHECK(corio::new_event_loop({.backend = corio::backend::io_uring})->backend_name() ==
          "io_uring");
}

TEST_CASE("backend: io_uring asked for by name where it cannot be had is a std::system_error",
          "[backend]") {
    if (uring_allowed()) CORIO_SKIP("io_uring works here; the seccomp test below covers this");
    frame_leak_check leaks;
    backend_env scoped(nullptr);
    CHECK_THROWS_AS(run_on(corio::backend::io_uring), std::system_error);
    CHECK_THROWS_AS(corio::new_event_loop({.backend = corio::backend::io_uring}),
                    std::system_error);
    // ... while the automatic choice falls back.
    CHECK(run_on(corio::backend::automatic) == "epoll");
}

// --- CORIO_BACKEND -------------------------------------------------------------------------

TEST_CASE("backend: CORIO_BACKEND=epoll overrides the automatic choice", "[backend]") {
    frame_leak_check leaks;
    backend_env scoped("epoll");
    CHECK(run_on(corio::backend::automatic) == "epoll");
    CHECK(corio::new_event_loop()->backend_name() == "epoll");
}

TEST_CASE("backend: CORIO_BACKEND=io_uring overrides the automatic choice", "[backend][io_uring]") {
    REQUIRE_URING_ALLOWED();
    frame_leak_check leaks;
    backend_env scoped("io_uring");
    CHECK(run_on(corio::backend::automatic) == "io_uring");
    CHECK(corio::new_event_loop()->backend_name() == "io_uring");
}

TEST_CASE("backend: unset, empty or 'automatic' CORIO_BACKEND: io_uring when allowed, else epoll",
          "[backend]") {
    frame_leak_check leaks;
    const char* env = GENERATE(as<const char*>{}, nullptr, "", "automatic");
    CAPTURE(env == nullptr ? "<unset>" : env);
    backend_env scoped(env);
    const std::string expected = uring_allowed() ? "io_uring" : "epoll";
    CHECK(run_on(corio::backend::automatic) == expected);
    CHECK(corio::new_event_loop()->backend_name() == expected);
}

TEST_CASE("backend: an unknown CORIO_BACKEND is refused, naming the value", "[backend]") {
    frame_leak_check leaks;
    const char* env = GENERATE("kqueue", "EPOLL", "io-uring", " epoll");
    CAPTURE(env);
    backend_env scoped(env);
    bool thrown = false;
    try {
        (void)corio::run(name_in_loop());  // the coroutine is destroyed unrun: no leak
    } catch (const std::invalid_argument& e) {
        thrown = true;
        CHECK(corio_test::contains(e.what(), env));
    }
    CHECK(thrown);
    CHECK_THROWS_AS(corio::new_event_loop(), std::invalid_argument);
    CHECK_FALSE(corio::current_task());
}

TEST_CASE("backend: the two reactors can be named directly, as basic_event_loop<R>", "[backend]") {
    frame_leak_check leaks;
    {
        corio::basic_event_loop<corio::epoll_reactor> loop;
        CHECK(loop.backend_name() == "epoll");
        CHECK(loop.run_until_complete(name_in_loop()) == "epoll");
    }
#if defined(CORIO_HAS_URING)
    if (uring_allowed()) {
        corio::basic_event_loop<corio::uring_reactor> loop;
        CHECK(loop.backend_name() == "io_uring");
        CHECK(loop.run_until_complete(name_in_loop()) == "io_uring");
    }
#endif
}

// --- the fallback under seccomp ------------------------------------------------------------

#if defined(__x86_64__)
constexpr std::uint32_t this_audit_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t this_audit_arch = AUDIT_ARCH_AARCH64;
#else
constexpr std::uint32_t this_audit_arch = 0;  // the seccomp test is skipped
#endif

// What the child reports: 0 for success, else the first check that failed.
enum child_status : int {
    child_ok = 0,
    no_new_privs_failed = 10,
    seccomp_install_failed = 11,
    filter_not_effective = 12,
    automatic_threw = 20,
    automatic_not_epoll = 21,
    automatic_loop_failed = 22,
    automatic_too_slow = 23,
    run_automatic_not_epoll = 24,
    uring_by_name_did_not_throw = 30,
    uring_by_name_threw_other = 31,
    uring_by_name_not_eperm = 32,
    env_uring_did_not_throw = 40,
    env_epoll_not_epoll = 41,
    reactor_constructed = 50,
    unexpected_exception = 60,
};

const char* describe(int status) {
    switch (status) {
    case child_ok: return "ok";
    case no_new_privs_failed: return "prctl(PR_SET_NO_NEW_PRIVS) failed";
    case seccomp_install_failed: return "installing the seccomp filter failed";
    case filter_not_effective: return "io_uring_setup did not fail with EPERM under the filter";
    case automatic_threw: return "new_event_loop() (automatic) threw instead of falling back";
    case automatic_not_epoll: return "new_event_loop() (automatic) did not give epoll";
    case automatic_loop_failed: return "the fallback loop could not run sleep and socket I/O";
    case automatic_too_slow: return "the fallback took longer than 1 s";
    case run_automatic_not_epoll: return "corio::run (automatic) did not report epoll";
    case uring_by_name_did_not_throw: return "backend::io_uring did not throw";
    case uring_by_name_threw_other:
        return "backend::io_uring threw something else than std::system_error";
    case uring_by_name_not_eperm: return "backend::io_uring's std::system_error is not EPERM";
    case env_uring_did_not_throw: return "CORIO_BACKEND=io_uring silently fell back";
    case env_epoll_not_epoll: return "CORIO_BACKEND=epoll did not give epoll";
    case reactor_constructed: return "corio::uring_reactor was constructed under the filter";
    case unexpected_exception: return "unexpected exception";
    default: return "unknown status";
    }
}

// Makes io_uring_setup fail with EPERM (as Docker's default profile does); allows everything
// else. A syscall made under another architecture's convention kills the process.
bool forbid_io_uring_setup() {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, this_audit_arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{};
    program.len = static_cast<unsigned short>(sizeof filter / sizeof filter[0]);
    program.filter = filter;
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
#if defined(SYS_seccomp)
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0) return true;
#endif
    return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) == 0;
}

corio::coro<bool> sleep_and_talk() {
    auto& loop = corio::get_running_loop();
    co_await corio::sleep(1ms);
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        co_return false;
    }
    corio::unique_fd a(fds[0]);
    corio::unique_fd b(fds[1]);
    auto receiver = corio::create_task(loop.sock_recv(b.get(), 16));
    co_await loop.sock_sendall(a.get(), std::string_view("fallback"));
    const std::string got = co_await std::move(receiver);
    co_return got == "fallback" && loop.backend_name() == "epoll";
}

// The child's whole life: never returns.
[[noreturn]] void seccomp_child(bool uring_was_allowed) {
    int status = child_ok;
    try {
        status = [&]() -> int {
            if (!forbid_io_uring_setup()) {
                return errno == EINVAL || errno == EACCES ? seccomp_install_failed
                                                          : no_new_privs_failed;
            }
            {
                // The filter works: the raw syscall is refused.
                unsigned char params[120] = {};
                errno = 0;
                const long rc = ::syscall(__NR_io_uring_setup, 4, params);
                if (rc >= 0) ::close(static_cast<int>(rc));
                if (rc >= 0 || errno != EPERM) return filter_not_effective;
            }
            ::unsetenv("CORIO_BACKEND");

            // automatic: epoll, silently and at once.
            const auto started = std::chrono::steady_clock::now();
            std::unique_ptr<corio::event_loop> loop;
            try {
                loop = corio::new_event_loop();
            } catch (...) {
                return automatic_threw;
            }
            if (std::chrono::steady_clock::now() - started > 1s) return automatic_too_slow;
            if (loop->backend_name() != "epoll") return automatic_not_epoll;
            if (!loop->run_until_complete(sleep_and_talk())) return automatic_loop_failed;
            loop.reset();
            if (corio::run(name_in_loop()) != "epoll") return run_automatic_not_epoll;
            if (!corio::run(sleep_and_talk(), {.backend = corio::backend::automatic})) {
                return automatic_loop_failed;
            }

            // io_uring by name: an error, never a substitute.
            try {
                (void)corio::run(name_in_loop(), {.backend = corio::backend::io_uring});
                return uring_by_name_did_not_throw;
            } catch (const std::system_error& e) {
                // Built with liburing and allowed before the filter: the filter's EPERM.
                if (corio::config::has_uring && uring_was_allowed && e.code().value() != EPERM) {
                    return uring_by_name_not_eperm;
                }
            } catch (...) {
                return uring_by_name_threw_other;
            }
            {
                ::setenv("CORIO_BACKEND", "io_uring", 1);
                bool threw = false;
                try {
                    (void)corio::new_event_loop();
                } catch (const std::system_error&) {
                    threw = true;
                }
                if (!threw) return env_uring_did_not_throw;
                ::setenv("CORIO_BACKEND", "epoll", 1);
                if (corio::run(name_in_loop()) != "epoll") return env_epoll_not_epoll;
                ::unsetenv("CORIO_BACKEND");
            }
#if defined(CORIO_HAS_URING)
            try {
                corio::uring_reactor reactor;
                return reactor_constructed;
            } catch (const std::system_error&) {
            }
#endif
            return child_ok;
        }();
    } catch (...) {
        status = unexpected_exception;
    }
    ::_exit(status);
}

TEST_CASE("backend: under a seccomp filter that forbids io_uring_setup, automatic falls back to "
          "epoll and io_uring by name throws",
          "[backend][seccomp]") {
    if (this_audit_arch == 0) CORIO_SKIP("no seccomp filter written for this architecture");
    const bool uring_was_allowed = uring_allowed();
    if (!uring_was_allowed) {
        WARN("io_uring is forbidden to the whole process already: the child checks the "
             "fallback, not that the filter caused it");
    }
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) seccomp_child(uring_was_allowed);

    int wait_status = 0;
    pid_t waited = -1;
    do {
        waited = ::waitpid(child, &wait_status, 0);
    } while (waited < 0 && errno == EINTR);
    REQUIRE(waited == child);
    INFO("child wait status " << wait_status);
    REQUIRE(WIFEXITED(wait_status));
    const int status = WEXITSTATUS(wait_status);
    INFO("child reported " << status << ": " << describe(status));
    if (status == no_new_privs_failed || status == seccomp_install_failed) {
        CORIO_SKIP("this process may not install a seccomp filter: " << describe(status));
    }
    CHECK(status == child_ok);
}

}  // namespace
