/* tls_echo_load: the load generator of the TLS echo benchmark.
 *
 * echo_load.c over TLS: opens N connections (default 50) to a TLS echo server, each an
 * OpenSSL client (TLS 1.3 only, OpenSSL's default cipher suites); each sends a message of S
 * bytes (default 64), waits for the whole echo, checks it, and sends the next, for D seconds
 * (default 5). One thread, epoll (level-triggered), non-blocking sockets; SSL_connect,
 * SSL_read and SSL_write are driven by SSL_ERROR_WANT_READ / SSL_ERROR_WANT_WRITE.
 *
 * The server's certificate is NOT verified (SSL_VERIFY_NONE): this is a benchmark on
 * loopback with a throwaway self-signed certificate, and verification would only add client
 * CPU to the handshakes, which are not timed anyway.
 *
 * Before the clock starts, every connection completes its handshake and one echo (which
 * also finishes the server's side of the handshake and delivers its session tickets), so
 * that only the steady echo traffic is timed. With -p <pid>, the CPU time of process <pid>
 * (the server: utime + stime from /proc/<pid>/stat, in clock ticks) is read when the clock
 * starts and when it stops, so that the server's handshakes are not counted either.
 * Prints one line:
 *
 *   requests=<n> seconds=<s> requests_per_second=<r> [server_ticks=<t>] protocol=<p> cipher=<c>
 *
 * and exits non-zero when a connection fails or an echo differs from what was sent.
 *
 *   tls_echo_load [-c connections] [-d seconds] [-s bytes] [-p server_pid] host port */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { max_size = 64 * 1024 };

enum phase { handshaking, echoing };

struct connection {
    int fd;
    SSL* ssl;
    enum phase phase;
    unsigned events;   /* the epoll interest: EPOLLIN or EPOLLOUT */
    int write_pending; /* an SSL_write of the current message asked to be repeated */
    int waiting;       /* a message is out and its echo not yet all received */
    size_t received;   /* bytes of the current echo received so far */
    unsigned long sequence;
    char sent[max_size];
    char echo[max_size];
};

static int epoll_fd;
static size_t message_size = 64;
static unsigned long long answered; /* echoes received whole, warm-up included */

static void die(const char* what) {
    perror(what);
    exit(1);
}

static void die_tls(const struct connection* c, const struct connection* all, const char* what,
                    int error) {
    fprintf(stderr, "tls_echo_load: connection %d: %s failed (SSL_get_error %d)\n", (int)(c - all),
            what, error);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* utime + stime of process pid in clock ticks (fields 14 and 15 of /proc/<pid>/stat, counted
 * after the ')' that ends the name, which may hold spaces), or -1. */
static long long cpu_ticks(int pid) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char* p = strrchr(text, ')');
    if (!p) return -1;
    unsigned long long utime = 0, stime = 0;
    /* After ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime stime. */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
        2) {
        return -1;
    }
    return (long long)(utime + stime);
}

static void usage(void) {
    fprintf(stderr, "usage: tls_echo_load [-c connections] [-d seconds] [-s bytes] "
                    "[-p server_pid] host port\n");
    exit(2);
}

static void want(struct connection* c, unsigned events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl");
    c->events = events;
}

/* Fills the next message of c (different for every message, so that a server echoing stale
 * bytes is caught). */
static void next_message(struct connection* c) {
    ++c->sequence;
    for (size_t i = 0; i < message_size; ++i) {
        c->sent[i] = (char)('a' + (c->sequence + i) % 26);
    }
    c->received = 0;
    c->waiting = 1;
    c->write_pending = 1;
}

/* Runs connection c as far as it goes without blocking: the handshake, the pending write of
 * the current message, the reads of its echo. When an echo is whole and `go_on` says so, the
 * next message is sent. Leaves the epoll interest at what OpenSSL waits for. */
static void run(struct connection* c, const struct connection* all, int go_on) {
    if (c->phase == handshaking) {
        int rc = SSL_connect(c->ssl);
        if (rc != 1) {
            int error = SSL_get_error(c->ssl, rc);
            if (error == SSL_ERROR_WANT_READ) {
                want(c, EPOLLIN);
                return;
            }
            if (error == SSL_ERROR_WANT_WRITE) {
                want(c, EPOLLOUT);
                return;
            }
            die_tls(c, all, "SSL_connect", error);
        }
        c->phase = echoing;
        want(c, EPOLLIN);
        return;
    }
    for (;;) {
        if (c->write_pending) {
            /* A repeated SSL_write must be given the same arguments. */
            int rc = SSL_write(c->ssl, c->sent, (int)message_size);
            if (rc <= 0) {
                int error = SSL_get_error(c->ssl, rc);
                if (error == SSL_ERROR_WANT_WRITE) {
                    want(c, EPOLLOUT);
                    return;
                }
                if (error == SSL_ERROR_WANT_READ) {
                    want(c, EPOLLIN);
                    return;
                }
                die_tls(c, all, "SSL_write", error);
            }
            c->write_pending = 0;
            /* The echo comes later: epoll says when, unless OpenSSL holds bytes already read
             * ahead (which epoll knows nothing of). Not reading now saves a read() that
             * would find nothing. */
            if (!SSL_has_pending(c->ssl)) {
                want(c, EPOLLIN);
                return;
            }
        }
        if (!c->waiting) {
            want(c, EPOLLIN);
            return;
        }
        int rc = SSL_read(c->ssl, c->echo + c->received, (int)(message_size - c->received));
        if (rc <= 0) {
            int error = SSL_get_error(c->ssl, rc);
            if (error == SSL_ERROR_WANT_READ) {
                want(c, EPOLLIN);
                return;
            }
            if (error == SSL_ERROR_WANT_WRITE) {
                want(c, EPOLLOUT);
                return;
            }
            if (error == SSL_ERROR_ZERO_RETURN) {
                fprintf(stderr, "tls_echo_load: connection %d: closed by the server\n",
                        (int)(c - all));
                exit(1);
            }
            die_tls(c, all, "SSL_read", error);
        }
        c->received += (size_t)rc;
        if (c->received < message_size) continue;
        if (memcmp(c->echo, c->sent, message_size) != 0) {
            fprintf(stderr, "tls_echo_load: connection %d: the echo differs from the message\n",
                    (int)(c - all));
            exit(1);
        }
        ++answered;
        c->waiting = 0;
        if (!go_on) {
            want(c, EPOLLIN);
            return;
        }
        next_message(c);
    }
}

/* Waits for events and runs their connections until done() says so or the clock reaches end. */
static void loop(struct connection* all, int go_on, int (*done)(void), double end) {
    struct epoll_event events[256];
    while (!done() && now() < end) {
        int ready = epoll_wait(epoll_fd, events, 256, 100);
        if (ready < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < ready; ++i) run(events[i].data.ptr, all, go_on);
    }
}

static int connection_count;
static int handshakes_done;
static struct connection* connections;

static int all_handshaken(void) {
    for (int i = handshakes_done; i < connection_count; ++i) {
        if (connections[i].phase != echoing) return 0;
        handshakes_done = i + 1;
    }
    return 1;
}

static int all_answered(void) { return answered >= (unsigned long long)connection_count; }

static int never(void) { return 0; }

int main(int argc, char** argv) {
    int count = 50;
    double duration = 5.0;
    int server_pid = 0;
    int opt;
    while ((opt = getopt(argc, argv, "c:d:s:p:")) != -1) {
        switch (opt) {
        case 'c': count = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 's': message_size = (size_t)atol(optarg); break;
        case 'p': server_pid = atoi(optarg); break;
        default: usage();
        }
    }
    if (argc - optind != 2 || count <= 0 || duration <= 0 || message_size == 0 ||
        message_size > max_size) {
        usage();
    }
    const char* host = argv[optind];
    int port = atoi(argv[optind + 1]);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
        fprintf(stderr, "tls_echo_load: %s is not an IPv4 address\n", host);
        return 2;
    }

    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* a benchmark: see the top */
    SSL_CTX_set_read_ahead(ctx, 1); /* one recv() per record, not one for the header */

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) die("epoll_create1");
    connection_count = count;
    connections = calloc((size_t)count, sizeof *connections);
    if (!connections) die("calloc");
    struct connection* all = connections;
    for (int i = 0; i < count; ++i) {
        struct connection* c = &all[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) die("socket");
        if (connect(c->fd, (struct sockaddr*)&address, sizeof address) != 0) die("connect");
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int flags = fcntl(c->fd, F_GETFL);
        if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) != 0) die("fcntl");
        c->ssl = SSL_new(ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
        SSL_set_connect_state(c->ssl);
        c->events = EPOLLOUT;
        struct epoll_event ev = {.events = c->events, .data.ptr = c};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
    }

    /* Untimed: every handshake, then one echo on every connection. */
    const double setup_limit = now() + 30.0;
    for (int i = 0; i < count; ++i) run(&all[i], all, 0);
    loop(all, 0, all_handshaken, setup_limit);
    if (!all_handshaken()) {
        fprintf(stderr, "tls_echo_load: the handshakes did not finish in 30 s\n");
        return 1;
    }
    for (int i = 0; i < count; ++i) {
        next_message(&all[i]);
        run(&all[i], all, 0);
    }
    loop(all, 0, all_answered, setup_limit);
    if (!all_answered()) {
        fprintf(stderr, "tls_echo_load: the first echoes did not come in 30 s\n");
        return 1;
    }

    /* Timed. */
    const long long ticks_before = server_pid > 0 ? cpu_ticks(server_pid) : -1;
    const unsigned long long untimed = answered;
    const double start = now();
    for (int i = 0; i < count; ++i) {
        next_message(&all[i]);
        run(&all[i], all, 1);
    }
    loop(all, 1, never, start + duration);
    const double elapsed = now() - start;
    const long long ticks_after = server_pid > 0 ? cpu_ticks(server_pid) : -1;
    const unsigned long long requests = answered - untimed;

    char protocol[32], cipher[64];
    snprintf(protocol, sizeof protocol, "%s", SSL_get_version(all[0].ssl));
    snprintf(cipher, sizeof cipher, "%s", SSL_get_cipher_name(all[0].ssl));
    for (int i = 0; i < count; ++i) {
        SSL_free(all[i].ssl); /* no close_notify: as echo_load, the connections just close */
        close(all[i].fd);
    }
    free(all);
    close(epoll_fd);
    SSL_CTX_free(ctx);

    if (requests == 0) {
        fprintf(stderr, "tls_echo_load: no request was answered\n");
        return 1;
    }
    printf("requests=%llu seconds=%.3f requests_per_second=%.0f", requests, elapsed,
           (double)requests / elapsed);
    if (server_pid > 0) {
        if (ticks_before < 0 || ticks_after < 0) {
            fprintf(stderr, "\ntls_echo_load: cannot read /proc/%d/stat\n", server_pid);
            return 1;
        }
        printf(" server_ticks=%lld", ticks_after - ticks_before);
    }
    printf(" protocol=%s cipher=%s\n", protocol, cipher);
    return 0;
}
