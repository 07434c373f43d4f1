/* test_connection_bounds.c - what clients cannot make the real allotd hold or lose: memory per
 * connection and for unfinished requests, mass hang-ups, unauthenticated slots, token guessing,
 * oversized replies, and requests that arrived while the server was stopped. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---- raw sockets ----------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A TCP connection to 127.0.0.1:port from source address `from` (NULL: any), or -1. */
static int raw_connect_from(uint16_t port, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (from != NULL) {
        struct sockaddr_in source = {.sin_family = AF_INET};
        inet_pton(AF_INET, from, &source.sin_addr);
        if (bind(fd, (struct sockaddr *)&source, sizeof(source)) != 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    struct timeval timeout = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    return fd;
}

static int raw_connect(uint16_t port)
{
    int fd = raw_connect_from(port, NULL);
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    return fd;
}

/* Read what the server sends within timeout_ms into buf: bytes read (>0), 0 when it closed the
 * connection, -1 when nothing came. */
static ssize_t raw_wait(int fd, int timeout_ms, uint8_t *buf, size_t bytes)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return -1;
    ssize_t n = recv(fd, buf, bytes, 0);
    return n < 0 ? 0 : n; /* a reset counts as closed */
}

/* True when the server closed the connection within timeout_ms (whatever it sent before). */
static bool raw_closed_within(int fd, int timeout_ms)
{
    uint8_t buf[4096];
    int64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        ssize_t n = raw_wait(fd, 50, buf, sizeof(buf));
        if (n == 0)
            return true;
    }
    return false;
}

/* Under AddressSanitizer freed memory sits in a quarantine of up to 256 MiB and every block is
 * padded, so the server's RSS says little about what it keeps: the memory bounds are checked in
 * the plain build only (the behaviour around them in both). */
#ifdef __SANITIZE_ADDRESS__
#define RSS_BOUNDS_CHECKED false
#else
#define RSS_BOUNDS_CHECKED true
#endif

/* [0, 1, "ping", [{}]] */
static const uint8_t ping_request[] = {0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80};

static void ping_ok(allot_client_t *c)
{
    allot_reply_t reply = {0};
    harness_call_ok(c, "ping", "{}", &reply);
    cr_assert(allot_object_str_equal(&reply.result, "pong"));
    allot_reply_free(&reply);
}

/* Raise the open-file limit for `descriptors` (the server started afterwards inherits it), or
 * skip the test when the hard limit is too low. */
static void descriptors_allow(rlim_t descriptors)
{
    struct rlimit limit;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &limit), 0);
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < descriptors)
        cr_skip_test("the open-file hard limit (%llu) is below %llu",
                     (unsigned long long)limit.rlim_max, (unsigned long long)descriptors);
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= descriptors)
        return;
    limit.rlim_cur = descriptors;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &limit), 0);
}

/* The unsigned integer at map[section][key] of a reply's result (section NULL: at the top);
 * asserts it is there. */
static uint64_t stat_u64(const allot_reply_t *reply, const char *section, const char *key)
{
    const msgpack_object *map = &reply->result;
    if (section != NULL)
        map = allot_object_map_get(map, section);
    cr_assert_not_null(map, "no '%s' in the reply", section);
    const msgpack_object *value = allot_object_map_get(map, key);
    cr_assert_not_null(value, "no '%s' in the reply", key);
    cr_assert_eq(value->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "'%s' is not a count", key);
    return value->via.u64;
}

/* server.info's connection count, polled until it reaches `expected` (or 5 s passed). */
static uint64_t connections_wait_for(allot_client_t *c, uint64_t expected)
{
    allot_reply_t reply = {0};
    uint64_t connections = 0;
    for (int tries = 0; tries < 100; tries++) {
        harness_call_ok(c, "server.info", "{}", &reply);
        connections = stat_u64(&reply, NULL, "connections");
        if (connections == expected)
            break;
        usleep(50 * 1000);
    }
    allot_reply_free(&reply);
    return connections;
}

/* ---- item: memory per connection and for unfinished requests --------------------------------- */

Test(bounds, two_thousand_connections_holding_one_byte_each_cost_little_memory, .timeout = 60)
{
    enum { CLIENTS = 2000 };
    descriptors_allow(2 * CLIENTS + 200);
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *witness = harness_connect(s);
    ping_ok(witness);
    long rss_before_kb = harness_server_rss_kb(s);
    static int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = raw_connect(s->port);
        cr_assert_eq(send(fds[i], ping_request, 1, MSG_NOSIGNAL), 1); /* the first byte only */
    }
    cr_assert_eq(connections_wait_for(witness, CLIENTS + 1), CLIENTS + 1);
    usleep(200 * 1000);
    ping_ok(witness);
    long rss_after_kb = harness_server_rss_kb(s);
    /* a 64 KiB read buffer per connection would be 125 MiB */
    cr_expect(!RSS_BOUNDS_CHECKED || rss_after_kb - rss_before_kb < 30 * 1024,
              "%d connections with one byte each grew RSS from %ld to %ld KiB", CLIENTS,
              rss_before_kb, rss_after_kb);
    /* and each of them can still finish its request */
    uint8_t buf[64];
    for (int i = 0; i < CLIENTS; i += 97) {
        cr_assert_eq(send(fds[i], ping_request + 1, sizeof(ping_request) - 1, MSG_NOSIGNAL),
                     (ssize_t)sizeof(ping_request) - 1);
        ssize_t n = raw_wait(fds[i], 5000, buf, sizeof(buf));
        cr_assert_gt(n, 0, "connection %d got no answer", i);
        cr_expect(memmem(buf, (size_t)n, "pong", 4) != NULL);
    }
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
    allot_client_close(witness);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* The head of [0, 7, "ping", [{"x": <str32 of body_bytes>}]]: the request is complete once
 * body_bytes more bytes follow (and then answered INVALID_ARGUMENT: "x" is not a key of ping). */
static size_t unfinished_request_head(uint8_t head[static 32], uint32_t body_bytes)
{
    const uint8_t start[] = {0x94, 0x00, 0x07, 0xa4, 'p', 'i', 'n',
                             'g',  0x91, 0x81, 0xa1, 'x', 0xdb};
    memcpy(head, start, sizeof(start));
    for (int i = 0; i < 4; i++)
        head[sizeof(start) + (size_t)i] = (uint8_t)(body_bytes >> (8 * (3 - i)));
    return sizeof(start) + 4;
}

/* Send all of bytes (blocking); false when the server closed the connection meanwhile. */
static bool send_all(int fd, const uint8_t *bytes, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, bytes, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        bytes += n;
        len -= (size_t)n;
    }
    return true;
}

Test(bounds, unfinished_requests_over_the_budget_cut_the_largest_and_others_are_served,
     .timeout = 60)
{
    /* unfinished requests may hold half of the 16 MiB budget; 24 clients try to hold ~19 MiB */
    enum { CLIENTS = 24, BODY_BYTES = 1000000 };
    harness_server_t *s = harness_server_start("--buffer-bytes-max 16777216");
    allot_client_t *witness = harness_connect(s);
    ping_ok(witness);
    long rss_before_kb = harness_server_rss_kb(s);
    uint8_t *filler = calloc(1, BODY_BYTES);
    memset(filler, 'a', BODY_BYTES);
    int fds[CLIENTS];
    size_t sent_bytes[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = raw_connect(s->port);
        uint8_t head[32];
        size_t head_bytes = unfinished_request_head(head, BODY_BYTES);
        sent_bytes[i] = 100000 + (size_t)i * 30000; /* client 0 holds the least */
        cr_assert(send_all(fds[i], head, head_bytes));
        send_all(fds[i], filler, sent_bytes[i]); /* may be cut meanwhile */
    }
    usleep(300 * 1000);
    /* a fresh client is served, not answered OVERLOADED */
    allot_client_t *fresh = harness_connect(s);
    ping_ok(fresh);
    ping_ok(witness);
    int cut = 0;
    for (int i = 0; i < CLIENTS; i++)
        cut += raw_closed_within(fds[i], 100);
    cr_expect_gt(cut, 0, "nobody was cut although the unfinished requests exceed the budget");
    cr_expect_lt(cut, CLIENTS, "everybody was cut, not only the largest");
    /* the smallest is never the largest: it is still connected, and once the others are gone
     * (so that it fits) its request is answered */
    for (int i = 1; i < CLIENTS; i++)
        close(fds[i]);
    usleep(100 * 1000);
    cr_assert(send_all(fds[0], filler, BODY_BYTES - sent_bytes[0]));
    uint8_t buf[512];
    ssize_t n = raw_wait(fds[0], 5000, buf, sizeof(buf));
    cr_assert_gt(n, 0, "the smallest unfinished request was cut or not answered");
    cr_expect(memmem(buf, (size_t)n, "INVALID_ARGUMENT", 16) != NULL);
    long rss_after_kb = harness_server_rss_kb(s);
    cr_expect(!RSS_BOUNDS_CHECKED || rss_after_kb - rss_before_kb < 24 * 1024,
              "RSS grew from %ld to %ld KiB", rss_before_kb, rss_after_kb);
    char *log = harness_server_log_read(s);
    cr_expect(strstr(log, "event=input_budget") != NULL);
    free(log);
    allot_reply_t reply = {0};
    harness_call_ok(witness, "server.stats", "{}", &reply);
    cr_expect_eq(stat_u64(&reply, "connections", "closed_by_budget"), (uint64_t)cut);
    allot_reply_free(&reply);
    close(fds[0]);
    free(filler);
    allot_client_close(fresh);
    allot_client_close(witness);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* Send a ping on fd and wait for its answer, sampling the server's RSS meanwhile (the peak goes
 * to *rss_peak_kb). Returns the latency in ms (asserts an answer within 10 s). */
static int64_t raw_ping_ms(int fd, const harness_server_t *s, long *rss_peak_kb)
{
    int64_t started = now_ms();
    cr_assert_eq(send(fd, ping_request, sizeof(ping_request), MSG_NOSIGNAL),
                 (ssize_t)sizeof(ping_request));
    uint8_t buf[64];
    ssize_t n;
    while ((n = raw_wait(fd, 2, buf, sizeof(buf))) < 0) {
        long rss_kb = harness_server_rss_kb(s);
        if (rss_kb > *rss_peak_kb)
            *rss_peak_kb = rss_kb;
        cr_assert_lt(now_ms() - started, 10000, "no answer to ping");
    }
    cr_assert_gt(n, 0, "the witness was disconnected");
    return now_ms() - started;
}

Test(bounds, five_thousand_clients_hanging_up_at_once_neither_stall_the_loop_nor_spike_memory,
     .timeout = 60)
{
    enum { CLIENTS = 5000 };
    descriptors_allow(2 * CLIENTS + 200);
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    static int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = raw_connect(s->port);
        if (i % 500 == 499)
            usleep(20 * 1000); /* let the accept queue drain */
    }
    cr_assert_eq(connections_wait_for(c, CLIENTS + 1), CLIENTS + 1);
    allot_client_close(c);
    int witness = raw_connect(s->port);
    long rss_peak_kb = harness_server_rss_kb(s), rss_before_kb = rss_peak_kb;
    raw_ping_ms(witness, s, &rss_peak_kb);
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
    int64_t latency_max_ms = 0;
    for (int64_t until = now_ms() + 1500; now_ms() < until;) {
        int64_t latency_ms = raw_ping_ms(witness, s, &rss_peak_kb);
        if (latency_ms > latency_max_ms)
            latency_max_ms = latency_ms;
    }
    /* a 64 KiB buffer allocated for each hang-up was ~300 MiB and a stall of 0.5-0.8 s */
    cr_expect(!RSS_BOUNDS_CHECKED || rss_peak_kb - rss_before_kb < 30 * 1024,
              "RSS peaked at %ld KiB from %ld KiB", rss_peak_kb, rss_before_kb);
    cr_expect_lt(latency_max_ms, 400, "a ping waited %lld ms while the clients hung up",
                 (long long)latency_max_ms);
    fprintf(stderr, "mass hang-up: slowest ping %lld ms, RSS %ld -> peak %ld KiB\n",
            (long long)latency_max_ms, rss_before_kb, rss_peak_kb);
    close(witness);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- item: replies over the output limit ----------------------------------------------------- */

Test(bounds, a_read_whose_reply_is_over_the_output_limit_gets_too_large_and_the_connection_stays)
{
    harness_server_t *s = harness_server_start("--output-bytes-max 4096");
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    char params[256];
    for (int i = 0; i < 60; i++) { /* location.list: ~100 bytes per location, ~6 KB in all */
        snprintf(params, sizeof(params),
                 "{\"id\": \"store-%02d\", \"type\": \"store\", \"lat\": 48.1, \"lon\": 11.5}", i);
        harness_call_ok(c, "location.put", params, &reply);
    }
    harness_call_error(c, "location.list", "{}", "TOO_LARGE", &reply);
    const msgpack_object *reply_bytes = allot_object_map_get(&reply.error, "reply_bytes");
    const msgpack_object *limit_bytes = allot_object_map_get(&reply.error, "limit_bytes");
    cr_assert_not_null(reply_bytes, "TOO_LARGE names the reply's size");
    cr_assert_not_null(limit_bytes, "TOO_LARGE names the limit");
    cr_expect_gt(reply_bytes->via.u64, 4096);
    cr_expect_eq(limit_bytes->via.u64, 4096);
    cr_expect(strstr(reply.message, "--output-bytes-max") != NULL, "%s", reply.message);
    /* the connection is still there and answers what fits */
    ping_ok(c);
    harness_call_ok(c, "location.get", "{\"id\": \"store-07\"}", &reply);
    harness_call_ok(c, "server.stats", "{}", &reply);
    cr_expect_eq(stat_u64(&reply, NULL, "replies_too_large"), 1);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(bounds, a_write_whose_reply_is_over_the_output_limit_is_still_answered)
{
    harness_server_t *s = harness_server_start("--output-bytes-max 4096");
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "location.put",
                    "{\"id\": \"W1\", \"type\": \"warehouse\", \"lat\": 1, \"lon\": 1}", &reply);
    char params[256];
    for (int i = 0; i < 100; i++) {
        snprintf(params, sizeof(params),
                 "{\"sku\": \"sku-with-a-long-name-%03d\", \"location\": \"W1\", \"on_hand\": 5}",
                 i);
        harness_call_ok(c, "stock.set", params, &reply);
    }
    /* 100 lines: the reply (~7 KB) is over the limit, and the hold is made */
    char *request = malloc(16384);
    size_t n = (size_t)snprintf(request, 16384, "{\"id\": \"cart-1\", \"lines\": [");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(request + n, 16384 - n,
                              "%s{\"sku\": \"sku-with-a-long-name-%03d\", \"qty\": 1}",
                              i ? ", " : "", i);
    snprintf(request + n, 16384 - n, "]}");
    harness_call_ok(c, "reserve", request, &reply);
    const msgpack_object *lines = allot_object_map_get(&reply.result, "lines");
    cr_assert_not_null(lines);
    cr_expect_eq(lines->via.array.size, 100);
    ping_ok(c);
    free(request);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- item: requests that arrived while the server was stopped -------------------------------- */

/* Stop the server, send `bytes` on fd while it is stopped for longer than its timeouts, let it go
 * on, and return what it answered within 3 s (asserts an answer, not a close). */
static ssize_t send_while_stopped(harness_server_t *s, int fd, const uint8_t *bytes, size_t len,
                                  int stopped_ms, uint8_t *buf, size_t buf_bytes)
{
    cr_assert_eq(kill(s->pid, SIGSTOP), 0);
    usleep(100 * 1000);
    cr_assert_eq(send(fd, bytes, len, MSG_NOSIGNAL), (ssize_t)len);
    usleep((useconds_t)stopped_ms * 1000);
    cr_assert_eq(kill(s->pid, SIGCONT), 0);
    ssize_t n = raw_wait(fd, 3000, buf, buf_bytes);
    cr_assert_neq(n, 0, "the connection was closed although the request had arrived");
    cr_assert_gt(n, 0, "no answer after the server went on");
    return n;
}

Test(bounds, a_request_finished_while_the_server_was_stopped_is_answered_not_timed_out)
{
    harness_server_t *s = harness_server_start("--request-timeout-ms 1000");
    int fd = raw_connect(s->port);
    cr_assert_eq(send(fd, ping_request, 5, MSG_NOSIGNAL), 5); /* half a request */
    usleep(200 * 1000);                                       /* read: the timeout runs */
    uint8_t buf[64];
    ssize_t n = send_while_stopped(s, fd, ping_request + 5, sizeof(ping_request) - 5, 2500, buf,
                                   sizeof(buf));
    cr_expect(memmem(buf, (size_t)n, "pong", 4) != NULL);
    /* a request really left unfinished is still closed after the timeout */
    cr_assert_eq(send(fd, ping_request, 5, MSG_NOSIGNAL), 5);
    cr_expect(raw_closed_within(fd, 3000), "a half-sent request was never timed out");
    close(fd);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(bounds, a_request_sent_while_the_server_was_stopped_is_answered_not_idled_out)
{
    harness_server_t *s = harness_server_start("--idle-timeout-s 1");
    int fd = raw_connect(s->port);
    uint8_t buf[64];
    cr_assert_eq(send(fd, ping_request, sizeof(ping_request), MSG_NOSIGNAL),
                 (ssize_t)sizeof(ping_request));
    cr_assert_gt(raw_wait(fd, 3000, buf, sizeof(buf)), 0); /* accepted and read */
    ssize_t n =
        send_while_stopped(s, fd, ping_request, sizeof(ping_request), 2500, buf, sizeof(buf));
    cr_expect(memmem(buf, (size_t)n, "pong", 4) != NULL);
    cr_expect(raw_closed_within(fd, 4000), "an idle connection was never closed");
    close(fd);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- items: unauthenticated slots and token guessing ----------------------------------------- */

#define TOKEN "correct-horse-battery-staple-42"

/* A server requiring TOKEN (its token file is removed when the test ends). extra may be "". */
static harness_server_t *start_with_token(char path[static 32], const char *extra)
{
    snprintf(path, 32, "/tmp/allot-token-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, TOKEN "\n", strlen(TOKEN) + 1), (ssize_t)strlen(TOKEN) + 1);
    close(fd);
    char args[256];
    snprintf(args, sizeof(args), "--auth-token-file %s %s", path, extra);
    return harness_server_start(args);
}

/* Send auth {token} on a raw connection and return the reply's bytes (NUL-terminated in buf);
 * 0 when the server closed the connection. */
static ssize_t raw_auth(int fd, const char *token, uint8_t *buf, size_t buf_bytes)
{
    uint8_t request[128];
    size_t len = strlen(token), n = 0;
    const uint8_t head[] = {0x94, 0x00, 0x05, 0xa4, 'a', 'u', 't', 'h', 0x91,
                            0x81, 0xa5, 't',  'o',  'k', 'e', 'n', 0xd9};
    memcpy(request, head, sizeof(head));
    n = sizeof(head);
    request[n++] = (uint8_t)len;
    memcpy(request + n, token, len);
    n += len;
    if (send(fd, request, n, MSG_NOSIGNAL) != (ssize_t)n)
        return 0;
    ssize_t got = raw_wait(fd, 5000, buf, buf_bytes - 1);
    cr_assert_neq(got, -1, "auth was not answered");
    buf[got > 0 ? got : 0] = '\0';
    return got;
}

static void authenticate(allot_client_t *c)
{
    allot_reply_t reply = {0};
    harness_call_ok(c, "auth", "{\"token\": \"" TOKEN "\"}", &reply);
    allot_reply_free(&reply);
}

Test(bounds, idle_unauthenticated_sockets_cannot_lock_out_an_authenticating_client)
{
    enum { IDLE = 50 };
    char path[32];
    harness_server_t *s = start_with_token(path, "--connections-max 50 --auth-timeout-ms 1000");
    allot_client_t *early = harness_connect(s); /* authenticated before the flood */
    authenticate(early);
    int fds[IDLE];
    for (int i = 0; i < IDLE; i++)
        fds[i] = raw_connect(s->port); /* never authenticate */
    usleep(100 * 1000);
    allot_client_t *late = harness_connect(s);
    authenticate(late);
    allot_reply_t reply = {0};
    harness_call_ok(late, "server.info", "{}", &reply);
    harness_call_ok(early, "server.info", "{}", &reply);
    /* none of the idle sockets outlives the authentication deadline */
    for (int i = 0; i < IDLE; i++)
        cr_expect(raw_closed_within(fds[i], 3000), "idle unauthenticated socket %d kept", i);
    harness_call_ok(late, "server.stats", "{}", &reply);
    cr_expect_eq(stat_u64(&reply, "connections", "unauthenticated"), 0);
    cr_expect_gt(stat_u64(&reply, "connections", "unauthenticated_evicted"), 0);
    cr_expect_gt(stat_u64(&reply, "connections", "auth_timeouts"), 0);
    ping_ok(early);
    allot_reply_free(&reply);
    char *log = harness_server_log_read(s);
    cr_expect(strstr(log, "event=unauthenticated_evicted") != NULL);
    cr_expect(strstr(log, "event=auth_timeout") != NULL);
    free(log);
    for (int i = 0; i < IDLE; i++)
        close(fds[i]);
    allot_client_close(early);
    allot_client_close(late);
    harness_server_stop(s);
    harness_server_destroy(s);
    unlink(path);
}

Test(bounds, the_unauthenticated_cap_closes_the_oldest_and_the_deadline_spares_the_authenticated)
{
    char path[32];
    harness_server_t *s =
        start_with_token(path, "--unauthenticated-connections-max 3 --auth-timeout-ms 800");
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = raw_connect(s->port);
        usleep(20 * 1000); /* accepted in this order */
    }
    cr_expect(raw_closed_within(fds[0], 500), "the oldest was not closed to make room");
    cr_expect(raw_closed_within(fds[1], 500), "the second oldest was not closed to make room");
    /* one that authenticates in time stays past the deadline */
    uint8_t buf[256];
    cr_assert_gt(raw_auth(fds[4], TOKEN, buf, sizeof(buf)), 0);
    cr_expect(strstr((char *)buf + 4, "authenticated") != NULL, "%s", buf + 4);
    cr_expect(raw_closed_within(fds[2], 3000), "an unauthenticated socket outlived the deadline");
    usleep(500 * 1000);
    cr_assert_eq(send(fds[4], ping_request, sizeof(ping_request), MSG_NOSIGNAL),
                 (ssize_t)sizeof(ping_request));
    ssize_t n = raw_wait(fds[4], 3000, buf, sizeof(buf));
    cr_expect_gt(n, 0, "the authenticated connection was closed");
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    harness_server_stop(s);
    harness_server_destroy(s);
    unlink(path);
}

/* Wrong guesses from `from` for duration_ms, on a fresh connection every third guess (as fast
 * as the server answers); counts the guesses the server checked ("authentication failed") and
 * those it refused unchecked. */
static void guess_for(uint16_t port, const char *from, int duration_ms, int *checked, int *refused)
{
    *checked = *refused = 0;
    uint8_t buf[512];
    int fd = -1, on_connection = 0;
    for (int64_t until = now_ms() + duration_ms; now_ms() < until;) {
        if (fd < 0 || on_connection == 3) {
            if (fd >= 0)
                close(fd);
            fd = raw_connect_from(port, from);
            cr_assert_geq(fd, 0, "connect from %s: %s", from, strerror(errno));
            on_connection = 0;
        }
        on_connection++;
        if (raw_auth(fd, "not-the-token-but-a-guess", buf, sizeof(buf)) <= 0) {
            close(fd);
            fd = -1;
            continue;
        }
        *checked += strstr((char *)buf + 4, "authentication failed") != NULL;
        *refused += strstr((char *)buf + 4, "not checked") != NULL;
    }
    if (fd >= 0)
        close(fd);
}

Test(bounds, a_guesser_reconnecting_is_throttled_per_address_and_the_right_token_elsewhere_works)
{
    char path[32];
    harness_server_t *s = start_with_token(path, "");
    int checked, refused;
    guess_for(s->port, "127.0.0.1", 1000, &checked, &refused);
    /* 3 free guesses, then 1 s of back-off for the address whatever the connection */
    cr_expect_leq(checked, 5, "%d guesses were checked in one second", checked);
    cr_expect_gt(refused, 50, "the guesser was not answered quickly (%d refusals)", refused);
    /* once a guess is checked, even the right token from that address waits (unchecked) */
    uint8_t buf[512];
    int same = raw_connect_from(s->port, "127.0.0.1");
    for (int tries = 0; tries < 100; tries++) {
        raw_auth(same, "not-the-token-but-a-guess", buf, sizeof(buf));
        if (strstr((char *)buf + 4, "authentication failed") != NULL)
            break;
        usleep(100 * 1000);
    }
    raw_auth(same, TOKEN, buf, sizeof(buf));
    cr_expect(strstr((char *)buf + 4, "not checked") != NULL, "%s", buf + 4);
    close(same);
    /* from another address it works at once */
    int other = raw_connect_from(s->port, "127.0.0.2");
    cr_assert_geq(other, 0, "cannot connect from 127.0.0.2: %s", strerror(errno));
    cr_assert_gt(raw_auth(other, TOKEN, buf, sizeof(buf)), 0);
    cr_expect(strstr((char *)buf + 4, "authenticated") != NULL, "%s", buf + 4);
    close(other);
    char *log = harness_server_log_read(s);
    int lines = 0;
    for (const char *p = log; (p = strstr(p, "event=auth_failed")) != NULL; p++)
        lines++;
    cr_expect_leq(lines, checked + 1, "one line per checked guess at most");
    cr_expect(strstr(log, "event=auth_failed peer=127.0.0.1:") != NULL, "the peer is named");
    free(log);
    harness_server_stop(s);
    harness_server_destroy(s);
    unlink(path);
}

Test(bounds, auth_failure_lines_are_rate_limited_and_say_how_many_were_left_out)
{
    char path[32];
    harness_server_t *s = start_with_token(path, "");
    uint8_t buf[512];
    char from[32];
    int failures = 0;
    int64_t started = now_ms();
    for (int host = 10; host < 50; host++) { /* 40 addresses x 3 free guesses, quickly */
        snprintf(from, sizeof(from), "127.0.0.%d", host);
        int fd = raw_connect_from(s->port, from);
        cr_assert_geq(fd, 0, "cannot connect from %s: %s", from, strerror(errno));
        for (int i = 0; i < 3; i++) {
            raw_auth(fd, "guess-guess-guess", buf, sizeof(buf));
            failures += strstr((char *)buf + 4, "authentication failed") != NULL;
        }
        close(fd);
    }
    int64_t elapsed_ms = now_ms() - started;
    cr_assert_eq(failures, 120);
    char *log = harness_server_log_read(s);
    int lines = 0;
    for (const char *p = log; (p = strstr(p, "event=auth_failed")) != NULL; p++)
        lines++;
    free(log);
    cr_expect_leq(lines, 10 * (elapsed_ms / 1000 + 2), "%d lines in %lld ms", lines,
                  (long long)elapsed_ms);
    /* the next line written says how many were left out */
    usleep(1100 * 1000);
    int fd = raw_connect_from(s->port, "127.0.0.60");
    raw_auth(fd, "guess-guess-guess", buf, sizeof(buf));
    close(fd);
    log = harness_server_log_read(s);
    cr_expect(strstr(log, "suppressed=0") != NULL);
    const char *last = NULL;
    for (const char *p = log; (p = strstr(p, "event=auth_failed")) != NULL; p++)
        last = p;
    cr_assert_not_null(last);
    cr_expect(strstr(last, "suppressed=0") == NULL, "the last line reports none left out: %.200s",
              last);
    free(log);
    allot_client_t *c = harness_connect(s);
    authenticate(c);
    allot_reply_t reply = {0};
    harness_call_ok(c, "server.stats", "{}", &reply);
    cr_expect_eq(stat_u64(&reply, "auth", "failures"), 121);
    cr_expect_eq(stat_u64(&reply, "auth", "log_lines_suppressed"), (uint64_t)(121 - (lines + 1)));
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
    unlink(path);
}

/* ---- log lines a client can cause at will ---------------------------------------------------- */

Test(bounds, garbage_from_many_connections_is_logged_at_most_ten_lines_a_second)
{
    harness_server_t *s = harness_server_start(NULL);
    const uint8_t garbage[] = {0xc1};
    int64_t started = now_ms();
    for (int i = 0; i < 200; i++) {
        int fd = raw_connect(s->port);
        cr_assert_eq(send(fd, garbage, sizeof(garbage), MSG_NOSIGNAL), 1);
        cr_assert(raw_closed_within(fd, 3000), "garbage did not close the connection");
        close(fd);
    }
    int64_t elapsed_ms = now_ms() - started;
    char *log = harness_server_log_read(s);
    int lines = 0;
    for (const char *p = log; (p = strstr(p, "event=bad_request")) != NULL; p++)
        lines++;
    cr_expect_gt(lines, 0);
    cr_expect_leq(lines, 10 * (elapsed_ms / 1000 + 2), "%d lines in %lld ms", lines,
                  (long long)elapsed_ms);
    free(log);
    harness_server_stop(s);
    harness_server_destroy(s);
}
