/* ping_epoll.c - allot-ping-epoll: the floor a load client can cost, a minimal epoll client (one
 * thread, level-triggered, N connections x pipeline P) that sends one fixed, pre-encoded
 * MessagePack-RPC request over and over - [0, 0, "ping", [{}]] or a 1-SKU
 * [0, 0, "avail.get", [{"skus": [SKU]}]] - frames each reply just far enough to find its end and
 * its error slot, and answers each reply with one more request (one write per read). It reports
 * requests/s and its own CPU per request (getrusage) beside the server's (--server-pid), the
 * reference allot-bench's cost per request is held to (bench/ab-client.sh, docs/benchmarks.md).
 * It measures no latency. libc and core/limits.h only.
 *
 * Output: one line per measured quantity on stdout; with --json PATH also one JSON object:
 *   {"method": "ping", "connections": N, "pipeline": P, "elapsed_s": S, "requests": R,
 *    "errors": E, "throughput_per_s": R/S, "client_cpu_s": C, "server_cpu_s": V (-1 unknown)}
 * Exit status: 0; 1 when a connection failed or the server sent something that is not a reply
 * to the request; 64 for bad options. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/limits.h"

typedef struct ping_conn {
    int fd;
    uint32_t carry_len; /* the start of a reply cut by the last read */
    size_t owed_bytes;  /* requests' bytes not yet written */
    bool want_out;
    uint8_t carry[BENCH_PING_REPLY_BYTES_MAX];
} ping_conn_t;

typedef struct ping_run {
    const char *host, *port, *method, *sku, *json_path;
    uint32_t connections, pipeline;
    double duration_s, warmup_s;
    int server_pid;
    uint8_t request[BENCH_PING_REQUEST_BYTES_MAX];
    size_t request_bytes;
    uint8_t *requests; /* `pipeline` copies of the request back to back */
    uint64_t replies, errors;
    char why[128]; /* why the run stopped early */
    int epoll_fd;
    ping_conn_t *conns;
} ping_run_t;

static uint8_t read_buffer[BENCH_PING_REPLY_BYTES_MAX + ALLOT_READ_CHUNK_BYTES];

static void str_put(uint8_t **p, const char *s)
{
    size_t n = strlen(s); /* every string here is under 32 bytes: a fixstr */
    *(*p)++ = (uint8_t)(0xa0 | n);
    memcpy(*p, s, n);
    *p += n;
}

/* The one request, and `pipeline` copies of it. -1 for an unknown method or a SKU too long. */
static int request_encode(ping_run_t *run)
{
    if (strlen(run->sku) == 0 || strlen(run->sku) > 31)
        return -1;
    uint8_t *p = run->request;
    *p++ = 0x94; /* [0, msgid 0, method, params] */
    *p++ = 0x00;
    *p++ = 0x00;
    if (strcmp(run->method, "ping") == 0) {
        str_put(&p, "ping");
        *p++ = 0x91; /* [{}] */
        *p++ = 0x80;
    } else if (strcmp(run->method, "avail.get") == 0) {
        str_put(&p, "avail.get");
        *p++ = 0x91; /* [{"skus": [sku]}] */
        *p++ = 0x81;
        str_put(&p, "skus");
        *p++ = 0x91;
        str_put(&p, run->sku);
    } else
        return -1;
    run->request_bytes = (size_t)(p - run->request);
    run->requests = malloc(run->request_bytes * run->pipeline);
    if (run->requests == NULL)
        return -1;
    for (uint32_t i = 0; i < run->pipeline; i++)
        memcpy(run->requests + i * run->request_bytes, run->request, run->request_bytes);
    return 0;
}

static uint64_t be_read(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The bytes of one MessagePack object at p[0, len): > 0, 0 when cut short, -1 for 0xc1. A flat
 * walk: each header read once, a container's elements added to the objects still to skip. */
static long object_skip(const uint8_t *p, size_t len)
{
    static const uint8_t fixed[32] = {/* 0xc0..0xdf: bytes after the type byte, length-less */
                                      0, 0, 0, 0, 0, 0, 0, 0, 0,  0, 4, 8, 1, 2, 4, 8,
                                      1, 2, 4, 8, 2, 3, 5, 9, 17, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t length_bytes[32] = {/* 0xc0..0xdf: a length follows in this many bytes */
                                             0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 0, 0, 0, 0, 0, 0,
                                             0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 2, 4, 2, 4};
    size_t at = 0;
    uint64_t objects = 1;
    while (objects > 0) {
        if (at >= len)
            return 0;
        uint8_t b = p[at];
        objects--;
        uint64_t body = 0, head = 1;
        if (b <= 0x7f || b >= 0xe0)
            ;
        else if (b <= 0x8f)
            objects += 2u * (b & 0x0fu);
        else if (b <= 0x9f)
            objects += b & 0x0fu;
        else if (b <= 0xbf)
            body = b & 0x1fu;
        else if (b == 0xc1)
            return -1;
        else {
            int n = length_bytes[b - 0xc0];
            if (at + 1 + (size_t)n > len)
                return 0;
            uint64_t count = be_read(p + at + 1, n);
            head = 1u + (uint64_t)n;
            if (b >= 0xdc) /* array 16/32, map 16/32 */
                objects += b >= 0xde ? 2 * count : count;
            else if (n > 0) /* bin, str; ext also has its type byte */
                body = count + (b >= 0xc7 && b <= 0xc9 ? 1u : 0u);
            else
                body = fixed[b - 0xc0];
        }
        if (at + head + body > len)
            return 0;
        at += (size_t)(head + body);
    }
    return (long)at;
}

/* Count the whole replies in data[0, len); returns the bytes they span, -1 on a bad reply. A
 * reply to msgid 0 starts 0x94 0x01 0x00; nil in its error slot means success. */
static long replies_count(ping_run_t *run, const uint8_t *data, size_t len, uint32_t *count)
{
    size_t used = 0;
    *count = 0;
    while (used < len) {
        long n = object_skip(data + used, len - used);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        const uint8_t *r = data + used;
        if (n < 5 || r[0] != 0x94 || r[1] != 0x01 || r[2] != 0x00)
            return -1;
        run->errors += r[3] != 0xc0;
        used += (size_t)n;
        (*count)++;
    }
    return (long)used;
}

/* Write what is owed; the requests are identical, so the owed bytes are always the tail of the
 * `pipeline` copies. EPOLLOUT only while some are left. -1: the connection failed. */
static int conn_flush(ping_run_t *run, ping_conn_t *c)
{
    size_t all = run->request_bytes * run->pipeline;
    ssize_t n =
        c->owed_bytes ? write(c->fd, run->requests + all - c->owed_bytes, c->owed_bytes) : 0;
    if (n < 0 && errno != EAGAIN) {
        snprintf(run->why, sizeof(run->why), "write: %s", strerror(errno));
        return -1;
    }
    c->owed_bytes -= n > 0 ? (size_t)n : 0;
    if (c->want_out == (c->owed_bytes > 0))
        return 0;
    c->want_out = c->owed_bytes > 0;
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
    return epoll_ctl(run->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* One read; every whole reply counted and answered with the next request. */
static int conn_read(ping_run_t *run, ping_conn_t *c)
{
    memcpy(read_buffer, c->carry, c->carry_len);
    ssize_t n = read(c->fd, read_buffer + c->carry_len, ALLOT_READ_CHUNK_BYTES);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        snprintf(run->why, sizeof(run->why), "read: %s",
                 n == 0 ? "the server closed the connection" : strerror(errno));
        return -1;
    }
    size_t len = c->carry_len + (n > 0 ? (size_t)n : 0);
    uint32_t count;
    long used = replies_count(run, read_buffer, len, &count);
    if (used < 0 || len - (size_t)used > BENCH_PING_REPLY_BYTES_MAX) {
        if (used < 0)
            snprintf(run->why, sizeof(run->why), "not a reply to the request");
        else
            snprintf(run->why, sizeof(run->why), "a reply over %u bytes",
                     (unsigned)BENCH_PING_REPLY_BYTES_MAX);
        return -1;
    }
    c->carry_len = (uint32_t)(len - (size_t)used);
    memcpy(c->carry, read_buffer + used, c->carry_len);
    run->replies += count;
    c->owed_bytes += count * run->request_bytes;
    return conn_flush(run, c);
}

static int conn_open(ping_run_t *run, ping_conn_t *c)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(run->host, run->port, &hints, &res) != 0)
        return -1;
    c->fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = c->fd < 0 || connect(c->fd, res->ai_addr, res->ai_addrlen) != 0 ? -1 : 0;
    freeaddrinfo(res);
    int one = 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (rc != 0 || setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0 ||
        epoll_ctl(run->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return -1;
    c->owed_bytes = run->request_bytes * run->pipeline;
    return conn_flush(run, c);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* utime + stime of a process from /proc/PID/stat, -1 when unknown. */
static double process_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    if (f == NULL)
        return -1.0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long utime, stime;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1.0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

typedef struct ping_mark {
    double at_s, client_s, server_s;
    uint64_t replies, errors;
} ping_mark_t;

static ping_mark_t mark_take(const ping_run_t *run, double now)
{
    return (ping_mark_t){now, self_cpu_s(), process_cpu_s(run->server_pid), run->replies,
                         run->errors};
}

/* The loop: one clock read per wait; the window opens after the warm-up. -1: a connection. */
static int run_loop(ping_run_t *run, ping_mark_t *start, ping_mark_t *end)
{
    struct epoll_event events[BENCH_EVENTS_MAX];
    double begin = now_s(), open_at = begin + run->warmup_s;
    double close_at = open_at + run->duration_s;
    bool measuring = false;
    for (;;) {
        int ready = epoll_wait(run->epoll_fd, events, BENCH_EVENTS_MAX, 10);
        for (int i = 0; i < ready; i++) {
            ping_conn_t *c = events[i].data.ptr;
            int rc = (events[i].events & EPOLLOUT) ? conn_flush(run, c) : 0;
            if (rc == 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                rc = conn_read(run, c);
            if (rc != 0)
                return -1;
        }
        double now = now_s();
        if (!measuring && now >= open_at) {
            *start = mark_take(run, now);
            measuring = true;
        }
        if (measuring && now >= close_at) {
            *end = mark_take(run, now);
            return 0;
        }
    }
}

static void report(const ping_run_t *run, const ping_mark_t *start, const ping_mark_t *end)
{
    double elapsed_s = end->at_s - start->at_s, client_s = end->client_s - start->client_s;
    double server_s =
        start->server_s >= 0 && end->server_s >= 0 ? end->server_s - start->server_s : -1.0;
    uint64_t requests = end->replies - start->replies, errors = end->errors - start->errors;
    double per_request_us = requests ? 1e6 / (double)requests : 0.0;
    printf("allot-ping-epoll %s:%s  %s  %u connections x pipeline %u  measured %.2f s\n", run->host,
           run->port, run->method, run->connections, run->pipeline, elapsed_s);
    printf("%llu requests, %.0f per s, %llu errors\n", (unsigned long long)requests,
           (double)requests / elapsed_s, (unsigned long long)errors);
    if (server_s >= 0)
        printf("server CPU %.2f s (%.0f%% of one core): %.3f us per request\n", server_s,
               100.0 * server_s / elapsed_s, server_s * per_request_us);
    printf("client CPU %.2f s (%.0f%% of 1 thread): %.3f us per request\n", client_s,
           100.0 * client_s / elapsed_s, client_s * per_request_us);
    FILE *f = run->json_path ? fopen(run->json_path, "w") : NULL;
    if (f == NULL)
        return;
    fprintf(f,
            "{\"method\": \"%s\", \"connections\": %u, \"pipeline\": %u, \"elapsed_s\": %.3f, "
            "\"requests\": %llu, \"errors\": %llu, \"throughput_per_s\": %.1f, "
            "\"client_cpu_s\": %.3f, \"server_cpu_s\": %.3f}\n",
            run->method, run->connections, run->pipeline, elapsed_s, (unsigned long long)requests,
            (unsigned long long)errors, (double)requests / elapsed_s, client_s, server_s);
    fclose(f);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: allot-ping-epoll [--target HOST:PORT] [--method ping|avail.get]\n"
                 "       [--sku ID] [--connections N] [--pipeline P] [--duration S] [--warmup S]\n"
                 "       [--server-pid PID] [--json PATH]\n");
}

/* Options; -1 for a bad one. */
static int options_parse(ping_run_t *run, int argc, char **argv, char *target, size_t bytes)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            return -1;
        i++;
        if (strcmp(o, "--target") == 0)
            snprintf(target, bytes, "%s", v);
        else if (strcmp(o, "--method") == 0)
            run->method = v;
        else if (strcmp(o, "--sku") == 0)
            run->sku = v;
        else if (strcmp(o, "--connections") == 0)
            run->connections = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(o, "--pipeline") == 0)
            run->pipeline = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(o, "--duration") == 0)
            run->duration_s = strtod(v, NULL);
        else if (strcmp(o, "--warmup") == 0)
            run->warmup_s = strtod(v, NULL);
        else if (strcmp(o, "--server-pid") == 0)
            run->server_pid = atoi(v);
        else if (strcmp(o, "--json") == 0)
            run->json_path = v;
        else
            return -1;
    }
    char *colon = strrchr(target, ':');
    if (colon == NULL || run->connections == 0 || run->connections > BENCH_CONNECTIONS_MAX ||
        run->pipeline == 0 || run->pipeline > BENCH_PIPELINE_MAX || !(run->duration_s > 0) ||
        !(run->warmup_s >= 0))
        return -1;
    *colon = '\0';
    run->host = target;
    run->port = colon + 1;
    return request_encode(run);
}

/* Connect, run, report: the exit status. */
static int run_execute(ping_run_t *run)
{
    run->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    run->conns = calloc(run->connections, sizeof(*run->conns));
    if (run->epoll_fd < 0 || run->conns == NULL)
        return 1;
    for (uint32_t i = 0; i < run->connections; i++)
        run->conns[i].fd = -1;
    for (uint32_t i = 0; i < run->connections; i++)
        if (conn_open(run, &run->conns[i]) != 0) {
            fprintf(stderr, "allot-ping-epoll: connection %u to %s:%s: %s\n", i, run->host,
                    run->port, strerror(errno));
            return 1;
        }
    ping_mark_t start, end;
    if (run_loop(run, &start, &end) != 0) {
        fprintf(stderr, "allot-ping-epoll: %s\n", run->why[0] ? run->why : "epoll failed");
        return 1;
    }
    report(run, &start, &end);
    return 0;
}

static void run_close(ping_run_t *run)
{
    for (uint32_t i = 0; run->conns != NULL && i < run->connections; i++)
        if (run->conns[i].fd >= 0)
            close(run->conns[i].fd);
    if (run->epoll_fd >= 0)
        close(run->epoll_fd);
    free(run->conns);
    free(run->requests);
}

int main(int argc, char **argv)
{
    static char target[BENCH_HOST_BYTES] = "127.0.0.1:7411";
    ping_run_t run = {.method = "ping",
                      .sku = "S00000000",
                      .connections = 50,
                      .pipeline = 16,
                      .duration_s = 5,
                      .warmup_s = 1,
                      .epoll_fd = -1};
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (options_parse(&run, argc, argv, target, sizeof(target)) != 0) {
        usage(stderr);
        free(run.requests);
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    int status = run_execute(&run);
    run_close(&run);
    return status;
}
