/* echo_epoll.c - allot-echo-epoll: the floor a ping can cost, a bare epoll server (one thread,
 * level-triggered, one read per ready socket, one write of every reply that read produced) that
 * answers each MessagePack-RPC ping, [0, msgid, "ping", [{}] or []], with the canned
 * [1, msgid, nil, "pong"] and does nothing else. bench/ab.sh runs it as side A against allotd
 * (docs/benchmarks.md, issue 20): it takes `--listen HOST:PORT` and ignores allotd's other options
 * (--data-dir, --fsync, --log-level and their values). Anything but a ping closes the connection.
 * libc and core/limits.h only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/limits.h"

typedef struct echo_conn {
    int fd;
    uint32_t in_len; /* the start of a request cut by the last read */
    uint32_t out_len;
    bool want_out; /* registered for EPOLLOUT: replies are left */
    uint8_t in[BENCH_ECHO_PING_BYTES_MAX];
    uint8_t out[BENCH_ECHO_OUT_BYTES_MAX];
} echo_conn_t;

static echo_conn_t *connections[BENCH_ECHO_CONNECTIONS_MAX];

/* The length of the ping at p[0, len): > 0, 0 when cut short, -1 when not a ping. The msgid's
 * bytes (its header included) are p[2, 2 + *msgid_bytes). */
static int ping_parse(const uint8_t *p, size_t len, size_t *msgid_bytes)
{
    static const uint8_t method[] = {0xa4, 'p', 'i', 'n', 'g'};
    if (len < 3)
        return 0;
    if (p[0] != 0x94 || p[1] != 0x00)
        return -1;
    size_t id = p[2] <= 0x7f ? 1 : p[2] == 0xcc ? 2 : p[2] == 0xcd ? 3 : p[2] == 0xce ? 5 : 0;
    if (id == 0)
        return -1;
    size_t at = 2 + id;
    if (len < at + sizeof(method) + 1)
        return 0;
    if (memcmp(p + at, method, sizeof(method)) != 0)
        return -1;
    at += sizeof(method);
    *msgid_bytes = id;
    if (p[at] == 0x90)
        return (int)(at + 1);
    if (p[at] != 0x91)
        return -1;
    if (len < at + 2)
        return 0;
    return p[at + 1] == 0x80 ? (int)(at + 2) : -1;
}

static void conn_close(int epoll_fd, echo_conn_t *c)
{
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    connections[c->fd] = NULL;
    free(c);
}

/* Answer every whole ping in data[0, len); returns the bytes used, or -1 to close. */
static long pings_answer(echo_conn_t *c, const uint8_t *data, size_t len)
{
    size_t used = 0;
    while (used < len) {
        size_t id = 0;
        int n = ping_parse(data + used, len - used, &id);
        /* a reply is no longer than its ping: 8 bytes and the msgid's */
        if (n < 0 || c->out_len + BENCH_ECHO_PING_BYTES_MAX > BENCH_ECHO_OUT_BYTES_MAX)
            return -1;
        if (n == 0)
            break;
        uint8_t *o = c->out + c->out_len;
        o[0] = 0x94;
        o[1] = 0x01;
        memcpy(o + 2, data + used + 2, id);
        memcpy(o + 2 + id, "\xc0\xa4pong", 6);
        c->out_len += (uint32_t)(8 + id);
        used += (size_t)n;
    }
    return (long)used;
}

/* Write what is pending; EPOLLOUT only while some is left. -1: close. */
static int conn_flush(int epoll_fd, echo_conn_t *c)
{
    if (c->out_len == 0 && !c->want_out)
        return 0;
    ssize_t n = write(c->fd, c->out, c->out_len);
    if (n < 0 && errno != EAGAIN)
        return -1;
    size_t sent = n > 0 ? (size_t)n : 0;
    memmove(c->out, c->out + sent, c->out_len - sent);
    c->out_len -= (uint32_t)sent;
    if (c->want_out == (c->out_len > 0))
        return 0;
    c->want_out = c->out_len > 0;
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.fd = c->fd};
    return epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static int conn_read(int epoll_fd, echo_conn_t *c)
{
    static uint8_t buffer[BENCH_ECHO_PING_BYTES_MAX + ALLOT_READ_CHUNK_BYTES];
    memcpy(buffer, c->in, c->in_len);
    ssize_t n = read(c->fd, buffer + c->in_len, ALLOT_READ_CHUNK_BYTES);
    if (n == 0 || (n < 0 && errno != EAGAIN))
        return -1;
    size_t len = c->in_len + (n > 0 ? (size_t)n : 0);
    long used = pings_answer(c, buffer, len);
    if (used < 0 || len - (size_t)used > BENCH_ECHO_PING_BYTES_MAX)
        return -1;
    c->in_len = (uint32_t)(len - (size_t)used);
    memcpy(c->in, buffer + used, c->in_len);
    return conn_flush(epoll_fd, c);
}

static void conn_accept(int epoll_fd, int listen_fd)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    echo_conn_t *c = fd < BENCH_ECHO_CONNECTIONS_MAX ? calloc(1, sizeof(*c)) : NULL;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (c == NULL || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c);
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    connections[fd] = c;
}

static int listen_on(const char *address)
{
    char host[64];
    unsigned port = 0;
    if (sscanf(address, "%63[^:]:%u", host, &port) != 2 || port == 0 || port > 65535)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 1024) != 0)
        return -1;
    return fd;
}

int main(int argc, char **argv)
{
    const char *address = "127.0.0.1:7411";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            address = argv[++i];
        else if (strcmp(argv[i], "--help") == 0) {
            printf("usage: allot-echo-epoll [--listen HOST:PORT] (allotd's other options are "
                   "ignored)\n");
            return 0;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int listen_fd = listen_on(address);
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
    if (listen_fd < 0 || epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
        fprintf(stderr, "allot-echo-epoll: cannot listen on %s: %s\n", address, strerror(errno));
        return 1;
    }
    struct epoll_event events[BENCH_EVENTS_MAX];
    for (;;) {
        int ready = epoll_wait(epoll_fd, events, BENCH_EVENTS_MAX, -1);
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                conn_accept(epoll_fd, listen_fd);
                continue;
            }
            echo_conn_t *c = connections[fd];
            if (c == NULL)
                continue;
            int rc = (events[i].events & EPOLLOUT) ? conn_flush(epoll_fd, c) : 0;
            if (rc == 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                rc = conn_read(epoll_fd, c);
            if (rc != 0)
                conn_close(epoll_fd, c);
        }
    }
}
