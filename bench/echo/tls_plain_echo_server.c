/* tls_plain_echo_server: the reference the corio TLS echo server is measured against.
 *
 * plain_echo_server.c over TLS: a small plain C OpenSSL echo server on one thread, epoll,
 * level-triggered, non-blocking sockets; SSL_accept, SSL_read and SSL_write are driven by
 * SSL_ERROR_WANT_READ / SSL_ERROR_WANT_WRITE. It echoes what each SSL_read returns with one
 * SSL_write. Read-ahead is on, so that a record comes in with one read() rather than two
 * (its header, then the rest): with it, a 64-byte message costs one read() and one write(),
 * as in plain_echo_server.c, plus the record's decryption and encryption; nothing a
 * coroutine runtime could leave out. (Read-ahead may leave records buffered in OpenSSL
 * that epoll knows nothing of: SSL_has_pending says when to read on before waiting.)
 * The context is OpenSSL's default server context (TLS 1.2 at least, as corio's).
 *
 * It listens on 127.0.0.1:<port> (0, the default, lets the kernel choose), prints
 * "port <n>" on stdout once it listens, and runs until killed (SIGTERM/SIGINT).
 *
 *   tls_plain_echo_server <cert.pem> <key.pem> [port]
 *
 * Used by bench/echo/tls_echo_bench.sh with bench/echo/tls_echo_load.c as the load
 * generator. */
#define _GNU_SOURCE
#include <errno.h>
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
#include <unistd.h>

enum { buffer_size = 64 * 1024, max_events = 256 };

struct connection {
    int fd;
    SSL* ssl;
    int handshaken;
    unsigned events; /* the epoll interest: EPOLLIN or EPOLLOUT */
    /* An SSL_write that asked to be repeated (WANT_WRITE) keeps its bytes here: a repeated
     * SSL_write must be given the same ones. With 64-byte messages this never happens; it
     * is here so that the reference is correct. */
    char* pending;
    int pending_size;
};

static int epoll_fd;
static SSL_CTX* context;

static void die(const char* what) {
    perror(what);
    exit(1);
}

static void die_tls(const char* what) {
    fprintf(stderr, "tls_plain_echo_server: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void close_connection(struct connection* c) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    SSL_free(c->ssl);
    close(c->fd);
    free(c->pending);
    free(c);
}

/* Closes c; returns 0, for run's callers. */
static int closed(struct connection* c) {
    close_connection(c);
    return 0;
}

static void want(struct connection* c, unsigned events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl");
    c->events = events;
}

static void accept_all(int listener) {
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
        struct connection* c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd = fd;
        c->ssl = SSL_new(context);
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) die_tls("SSL_new");
        SSL_set_accept_state(c->ssl);
        c->events = EPOLLIN; /* the ClientHello */
        struct epoll_event ev = {.events = c->events, .data.ptr = c};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    }
}

/* What a failed SSL call on c means: 1 when it only waits for the socket (the interest is
 * then set to what it waits for), 0 when the connection is over (closed, failed). */
static int waits(struct connection* c, int rc) {
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ: want(c, EPOLLIN); return 1;
    case SSL_ERROR_WANT_WRITE: want(c, EPOLLOUT); return 1;
    default: ERR_clear_error(); return 0;
    }
}

/* Runs connection c as far as it goes without blocking: its handshake, the write that was
 * left to repeat, then each record read and echoed. Returns 0 when c was closed. */
static int run(struct connection* c) {
    static char buffer[buffer_size];
    if (!c->handshaken) {
        int rc = SSL_accept(c->ssl);
        if (rc != 1) return waits(c, rc) ? 1 : closed(c);
        c->handshaken = 1;
    }
    if (c->pending) {
        int rc = SSL_write(c->ssl, c->pending, c->pending_size);
        if (rc <= 0) return waits(c, rc) ? 1 : closed(c);
        free(c->pending);
        c->pending = NULL;
    }
    for (;;) {
        int n = SSL_read(c->ssl, buffer, (int)sizeof buffer);
        if (n <= 0) {
            /* close_notify is answered with one (as corio's writer.close() does; the peer's
             * answer to ours is not waited for); an end without one, or a failure: over. */
            if (SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN) (void)SSL_shutdown(c->ssl);
            return waits(c, n) ? 1 : closed(c);
        }
        int rc = SSL_write(c->ssl, buffer, n);
        if (rc <= 0) {
            if (!waits(c, rc)) return closed(c);
            c->pending = malloc((size_t)n);
            if (!c->pending) die("malloc");
            memcpy(c->pending, buffer, (size_t)n);
            c->pending_size = n;
            return 1;
        }
        /* Nothing buffered in OpenSSL: the next record, if any, is the socket's, and epoll
         * says when it comes. */
        if (!SSL_has_pending(c->ssl)) {
            want(c, EPOLLIN);
            return 1;
        }
    }
}

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: tls_plain_echo_server <cert.pem> <key.pem> [port]\n");
        return 2;
    }
    int port = argc > 3 ? atoi(argv[3]) : 0;
    signal(SIGPIPE, SIG_IGN);

    context = SSL_CTX_new(TLS_server_method());
    if (!context) die_tls("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_read_ahead(context, 1);
    if (SSL_CTX_use_certificate_chain_file(context, argv[1]) != 1) die_tls(argv[1]);
    if (SSL_CTX_use_PrivateKey_file(context, argv[2], SSL_FILETYPE_PEM) != 1) die_tls(argv[2]);
    if (SSL_CTX_check_private_key(context) != 1) die_tls("SSL_CTX_check_private_key");

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

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) die("epoll_create1");
    /* The listener is told apart by a null data.ptr. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &ev) != 0) die("epoll_ctl");

    struct epoll_event events[max_events];
    for (;;) {
        int ready = epoll_wait(epoll_fd, events, max_events, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < ready; ++i) {
            struct connection* c = events[i].data.ptr;
            if (!c) {
                accept_all(listener);
                continue;
            }
            run(c);
        }
    }
}
