/* plain_echo_server: the reference the corio echo server is measured against.
 *
 * A plain C TCP echo server on one thread: epoll, level-triggered, non-blocking sockets,
 * one read() and one write() per message; nothing a coroutine runtime could leave out.
 * It listens on 127.0.0.1:<port> (0, the default, lets the kernel choose), prints
 * "port <n>" on stdout once it listens, and runs until killed (SIGTERM/SIGINT).
 *
 *   plain_echo_server [port]
 *
 * Used by bench/echo/echo_bench.sh with bench/echo/echo_load.c as the load generator. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { buffer_size = 64 * 1024, max_events = 256 };

/* A connection whose last write was short keeps the rest here and waits for EPOLLOUT.
 * With 64-byte messages this never happens; it is here so that the reference is correct. */
struct pending {
    char* data;
    size_t size;
};

static struct pending* pendings;
static size_t pending_count;

static void die(const char* what) {
    perror(what);
    exit(1);
}

static struct pending* pending_of(int fd) {
    if ((size_t)fd >= pending_count) {
        size_t count = pending_count ? pending_count : 1024;
        while (count <= (size_t)fd) count *= 2;
        struct pending* grown = realloc(pendings, count * sizeof *grown);
        if (!grown) die("realloc");
        memset(grown + pending_count, 0, (count - pending_count) * sizeof *grown);
        pendings = grown;
        pending_count = count;
    }
    return &pendings[fd];
}

static void close_connection(int ep, int fd) {
    struct pending* p = pending_of(fd);
    free(p->data);
    p->data = NULL;
    p->size = 0;
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

static void watch(int ep, int op, int fd, unsigned events) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(ep, op, fd, &ev) != 0) die("epoll_ctl");
}

static void accept_all(int ep, int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) return; /* retried on the next event */
            die("accept4");
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as corio does */
        watch(ep, EPOLL_CTL_ADD, fd, EPOLLIN);
    }
}

/* Writes what it can of data; keeps the rest and switches the interest to EPOLLOUT.
 * Returns 0, or -1 when the connection has gone. */
static int write_or_keep(int ep, int fd, const char* data, size_t size) {
    ssize_t n = write(fd, data, size);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        n = 0;
    }
    if ((size_t)n == size) return 0;
    struct pending* p = pending_of(fd);
    p->data = malloc(size - (size_t)n);
    if (!p->data) die("malloc");
    memcpy(p->data, data + n, size - (size_t)n);
    p->size = size - (size_t)n;
    watch(ep, EPOLL_CTL_MOD, fd, EPOLLOUT);
    return 0;
}

static void on_writable(int ep, int fd) {
    struct pending* p = pending_of(fd);
    ssize_t n = write(fd, p->data, p->size);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        close_connection(ep, fd);
        return;
    }
    if ((size_t)n < p->size) {
        memmove(p->data, p->data + n, p->size - (size_t)n);
        p->size -= (size_t)n;
        return;
    }
    free(p->data);
    p->data = NULL;
    p->size = 0;
    watch(ep, EPOLL_CTL_MOD, fd, EPOLLIN);
}

int main(int argc, char** argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener < 0) die("socket");
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_port = htons((unsigned short)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0) die("bind");
    if (listen(listener, SOMAXCONN) != 0) die("listen");
    socklen_t length = sizeof address;
    if (getsockname(listener, (struct sockaddr*)&address, &length) != 0) die("getsockname");
    printf("port %d\n", ntohs(address.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    watch(ep, EPOLL_CTL_ADD, listener, EPOLLIN);

    static char buffer[buffer_size];
    struct epoll_event events[max_events];
    for (;;) {
        int ready = epoll_wait(ep, events, max_events, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < ready; ++i) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                accept_all(ep, listener);
                continue;
            }
            if (pending_of(fd)->size > 0) {
                on_writable(ep, fd);
                continue;
            }
            ssize_t n = read(fd, buffer, sizeof buffer);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
            if (n <= 0 || write_or_keep(ep, fd, buffer, (size_t)n) != 0) {
                close_connection(ep, fd);
            }
        }
    }
}
