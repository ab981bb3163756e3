/* echo_load: the load generator of the echo benchmark.
 *
 * Opens N connections (default 50) to an echo server; each sends a message of S bytes
 * (default 64), waits for the whole echo, checks it, and sends the next, for D seconds
 * (default 5). One thread, epoll, non-blocking sockets. Prints one line:
 *
 *   requests=<n> seconds=<s> requests_per_second=<r>
 *
 * and exits non-zero when a connection fails or an echo differs from what was sent.
 *
 *   echo_load [-c connections] [-d seconds] [-s bytes] host port */
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { max_size = 64 * 1024 };

struct connection {
    int fd;
    size_t received; /* bytes of the current echo received so far */
    unsigned long sequence;
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

static void usage(void) {
    fprintf(stderr, "usage: echo_load [-c connections] [-d seconds] [-s bytes] host port\n");
    exit(2);
}

/* Fills the next message of c (different for every message, so that a server echoing
 * stale bytes is caught) and sends it whole: a 64-byte write to an idle socket never
 * comes out short, and a short one is an error here. */
static void send_next(struct connection* c, size_t size) {
    ++c->sequence;
    for (size_t i = 0; i < size; ++i) c->sent[i] = (char)('a' + (c->sequence + i) % 26);
    ssize_t n = send(c->fd, c->sent, size, MSG_NOSIGNAL);
    if (n != (ssize_t)size) die("send (short or failed)");
    c->received = 0;
}

int main(int argc, char** argv) {
    int connections = 50;
    double duration = 5.0;
    size_t size = 64;
    int opt;
    while ((opt = getopt(argc, argv, "c:d:s:")) != -1) {
        switch (opt) {
        case 'c': connections = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        default: usage();
        }
    }
    if (argc - optind != 2 || connections <= 0 || duration <= 0 || size == 0 || size > max_size) {
        usage();
    }
    const char* host = argv[optind];
    int port = atoi(argv[optind + 1]);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
        fprintf(stderr, "echo_load: %s is not an IPv4 address\n", host);
        return 2;
    }

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct connection* all = calloc((size_t)connections, sizeof *all);
    if (!all) die("calloc");
    for (int i = 0; i < connections; ++i) {
        struct connection* c = &all[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) die("socket");
        if (connect(c->fd, (struct sockaddr*)&address, sizeof address) != 0) die("connect");
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
    }

    unsigned long long requests = 0;
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
            if (memcmp(c->echo, c->sent, size) != 0) {
                fprintf(stderr, "echo_load: connection %d: the echo differs from the message\n",
                        (int)(c - all));
                return 1;
            }
            ++requests;
            send_next(c, size);
        }
        t = now();
    }
    const double elapsed = t - start;
    for (int i = 0; i < connections; ++i) close(all[i].fd);
    free(all);
    close(ep);

    if (requests == 0) {
        fprintf(stderr, "echo_load: no request was answered\n");
        return 1;
    }
    printf("requests=%llu seconds=%.3f requests_per_second=%.0f\n", requests, elapsed,
           (double)requests / elapsed);
    return 0;
}
