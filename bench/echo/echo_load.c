/* echo_load: the load generator of the echo benchmark.
 *
 * Opens N connections (default 50) to an echo server; each sends a message of S bytes
 * (default 64), waits for the whole echo, checks it, and sends the next, for D seconds
 * (default 5). One thread, epoll, non-blocking sockets; or, with -u, io_uring: each send and
 * each receive is a submission, and one io_uring_enter submits a batch and waits for the next
 * completions, instead of a recv and a send system call per message (where built with
 * liburing; exit status 77 when the kernel refuses io_uring). Prints one line:
 *
 *   requests=<n> seconds=<s> requests_per_second=<r> load_cpu_us=<u>
 *
 * (load_cpu_us: the CPU time, user and system, echo_load itself spent in microseconds)
 *
 * and exits non-zero when a connection fails or an echo differs from what was sent.
 *
 *   echo_load [-u] [-c connections] [-d seconds] [-s bytes] host port */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef ECHO_LOAD_URING
#include <liburing.h>
#endif

enum { max_size = 64 * 1024 };

struct connection {
    int fd;
    size_t received; /* bytes of the current echo received so far */
    unsigned long sequence;
    int send_pending; /* io_uring: the send of `sent` has not completed yet */
    int echoed;       /* io_uring: the whole echo of `sent` is in */
    char sent[max_size];
    char echo[max_size];
};

static void die(const char* what) {
    perror(what);
    exit(1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The CPU time this process has used, user and system, in microseconds. */
static double cpu_us(void) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) die("getrusage");
    return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 +
           (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

static void usage(void) {
    fprintf(stderr, "usage: echo_load [-u] [-c connections] [-d seconds] [-s bytes] host port\n");
    exit(2);
}

static void fill_next(struct connection* c, size_t size) {
    ++c->sequence;
    for (size_t i = 0; i < size; ++i) c->sent[i] = (char)('a' + (c->sequence + i) % 26);
    c->received = 0;
}

/* Whether the echo of c's message is whole and right (it says what is wrong when not). */
static int check_echo(const struct connection* c, const struct connection* all, size_t size) {
    if (memcmp(c->echo, c->sent, size) == 0) return 1;
    fprintf(stderr, "echo_load: connection %d: the echo differs from the message\n",
            (int)(c - all));
    return 0;
}

/* Fills the next message of c (different for every message, so that a server echoing
 * stale bytes is caught) and sends it whole: a 64-byte write to an idle socket never
 * comes out short, and a short one is an error here. */
static void send_next(struct connection* c, size_t size) {
    fill_next(c, size);
    ssize_t n = send(c->fd, c->sent, size, MSG_NOSIGNAL);
    if (n != (ssize_t)size) die("send (short or failed)");
}

/* The epoll client: a recv per readable connection, a send per echo received. */
static int run_epoll(struct connection* all, int connections, size_t size, double duration,
                     unsigned long long* requests, double* elapsed) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < connections; ++i) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &all[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, all[i].fd, &ev) != 0) die("epoll_ctl");
    }
    const double start = now();
    const double end = start + duration;
    for (int i = 0; i < connections; ++i) send_next(&all[i], size);

    struct epoll_event events[256];
    double t = start;
    while (t < end) {
        int ready = epoll_wait(ep, events, 256, 100);
        if (ready < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < ready; ++i) {
            struct connection* c = events[i].data.ptr;
            ssize_t n = recv(c->fd, c->echo + c->received, size - c->received, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
            if (n <= 0) {
                fprintf(stderr, "echo_load: connection %d: %s\n", (int)(c - all),
                        n == 0 ? "closed by the server" : strerror(errno));
                return 1;
            }
            c->received += (size_t)n;
            if (c->received < size) continue;
            if (!check_echo(c, all, size)) return 1;
            ++*requests;
            send_next(c, size);
        }
        t = now();
    }
    *elapsed = t - start;
    close(ep);
    return 0;
}

#ifdef ECHO_LOAD_URING
/* user_data of a submission: the connection's index, and whether it is its send. */
enum { is_send = 1 };

static struct io_uring_sqe* next_sqe(struct io_uring* ring) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (sqe == NULL) { /* the submission queue is full: hand it to the kernel first */
        int r = io_uring_submit(ring);
        if (r < 0) {
            fprintf(stderr, "echo_load: io_uring_submit: %s\n", strerror(-r));
            exit(1);
        }
        sqe = io_uring_get_sqe(ring);
        if (sqe == NULL) die("io_uring_get_sqe");
    }
    return sqe;
}

static void queue_recv(struct io_uring* ring, struct connection* c, struct connection* all,
                       size_t size) {
    struct io_uring_sqe* sqe = next_sqe(ring);
    io_uring_prep_recv(sqe, c->fd, c->echo + c->received, size - c->received, 0);
    io_uring_sqe_set_data64(sqe, (__u64)(c - all) << 1);
}

/* Queues c's next message and the receive of its echo. */
static void queue_next(struct io_uring* ring, struct connection* c, struct connection* all,
                       size_t size) {
    fill_next(c, size);
    c->send_pending = 1;
    c->echoed = 0;
    struct io_uring_sqe* sqe = next_sqe(ring);
    io_uring_prep_send(sqe, c->fd, c->sent, size, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ((__u64)(c - all) << 1) | is_send);
    queue_recv(ring, c, all, size);
}

/* The io_uring client: the same conversation, each send and receive a submission. The next
 * message of a connection leaves once its echo is in and its send has completed (the buffer
 * is the kernel's until then). */
static int run_uring(struct connection* all, int connections, size_t size, double duration,
                     unsigned long long* requests, double* elapsed) {
    struct io_uring ring;
    /* At most a send and a receive in flight per connection. Completions are run when the
     * loop waits for them, not whenever the kernel likes (where the kernel can). */
    const unsigned entries = (unsigned)(2 * connections);
    int r = io_uring_queue_init(entries, &ring,
                                IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
    if (r == -EINVAL) r = io_uring_queue_init(entries, &ring, IORING_SETUP_COOP_TASKRUN);
    if (r == -EINVAL) r = io_uring_queue_init(entries, &ring, 0);
    if (r < 0) {
        fprintf(stderr, "echo_load: io_uring unavailable: %s\n", strerror(-r));
        exit(77);
    }
    const double start = now();
    const double end = start + duration;
    for (int i = 0; i < connections; ++i) queue_next(&ring, &all[i], all, size);

    double t = start;
    while (t < end) {
        struct io_uring_cqe* cqe;
        struct __kernel_timespec wait = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        r = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &wait, NULL);
        if (r < 0 && r != -ETIME && r != -EINTR) {
            fprintf(stderr, "echo_load: io_uring_submit_and_wait_timeout: %s\n", strerror(-r));
            return 1;
        }
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            struct connection* c = &all[cqe->user_data >> 1];
            if (cqe->user_data & is_send) {
                if (cqe->res != (int)size) {
                    fprintf(stderr, "echo_load: connection %d: send: %s\n", (int)(c - all),
                            cqe->res < 0 ? strerror(-cqe->res) : "short");
                    return 1;
                }
                c->send_pending = 0;
            } else {
                if (cqe->res <= 0) {
                    fprintf(stderr, "echo_load: connection %d: %s\n", (int)(c - all),
                            cqe->res == 0 ? "closed by the server" : strerror(-cqe->res));
                    return 1;
                }
                c->received += (size_t)cqe->res;
                if (c->received < size) {
                    queue_recv(&ring, c, all, size);
                    continue;
                }
                if (!check_echo(c, all, size)) return 1;
                ++*requests;
                c->echoed = 1;
            }
            if (c->echoed && !c->send_pending) queue_next(&ring, c, all, size);
        }
        io_uring_cq_advance(&ring, seen);
        t = now();
    }
    *elapsed = t - start;
    io_uring_queue_exit(&ring);
    return 0;
}
#endif

int main(int argc, char** argv) {
    int connections = 50;
    double duration = 5.0;
    size_t size = 64;
    int use_uring = 0;
    int opt;
    while ((opt = getopt(argc, argv, "uc:d:s:")) != -1) {
        switch (opt) {
        case 'u': use_uring = 1; break;
        case 'c': connections = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        default: usage();
        }
    }
    if (argc - optind != 2 || connections <= 0 || duration <= 0 || size == 0 || size > max_size) {
        usage();
    }
#ifndef ECHO_LOAD_URING
    if (use_uring) {
        fprintf(stderr, "echo_load: built without liburing: no -u\n");
        return 77;
    }
#endif
    const char* host = argv[optind];
    int port = atoi(argv[optind + 1]);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
        fprintf(stderr, "echo_load: %s is not an IPv4 address\n", host);
        return 2;
    }

    struct connection* all = calloc((size_t)connections, sizeof *all);
    if (!all) die("calloc");
    for (int i = 0; i < connections; ++i) {
        struct connection* c = &all[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) die("socket");
        if (connect(c->fd, (struct sockaddr*)&address, sizeof address) != 0) die("connect");
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }

    unsigned long long requests = 0;
    double elapsed = 0;
    const double cpu_before = cpu_us();
    int failed;
#ifdef ECHO_LOAD_URING
    if (use_uring) {
        failed = run_uring(all, connections, size, duration, &requests, &elapsed);
    } else
#endif
    {
        failed = run_epoll(all, connections, size, duration, &requests, &elapsed);
    }
    if (failed) return 1;
    const double cpu_used = cpu_us() - cpu_before;
    for (int i = 0; i < connections; ++i) close(all[i].fd);
    free(all);

    if (requests == 0) {
        fprintf(stderr, "echo_load: no request was answered\n");
        return 1;
    }
    printf("requests=%llu seconds=%.3f requests_per_second=%.0f load_cpu_us=%.0f\n", requests,
           elapsed, (double)requests / elapsed, cpu_used);
    return 0;
}
