/* test_request_timing.c - what a pipelined burst of requests costs the server: it is timed per
 * batch, not one by one (a few clock reads, not three per request, and every request is still
 * counted in the per-method latency metrics; allotd runs under the clock-counting shim
 * preload/clock_count.c), and each request is framed and decoded in one pass (msgpack_unpack is
 * called only for the few requests a read cut in two; the shim preload/unpack_count.c). Requests
 * answered one at a time reuse the server's spare reply buffers, not a fresh 8 KiB buffer per
 * read (the shim preload/sbuffer_count.c). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "harness_reply.h"

#define BURST_REQUESTS 4000
/* msgids 256..4255: two bytes (0xcd) both ways, so every request is 12 bytes,
 * [0, msgid, "ping", [{}]], and every reply 11, [1, msgid, nil, "pong"]. */
#define MSGID_FIRST 256
#define PING_BYTES  12
#define PONG_BYTES  11

/* BURST_REQUESTS pings written at once; returns when every reply arrived. */
static void ping_burst(uint16_t port)
{
    static uint8_t burst[BURST_REQUESTS * PING_BYTES];
    static uint8_t replies[BURST_REQUESTS * PONG_BYTES];
    for (uint32_t i = 0; i < BURST_REQUESTS; i++) {
        uint32_t msgid = MSGID_FIRST + i;
        const uint8_t ping[PING_BYTES] = {
            0x94, 0x00, 0xcd, (uint8_t)(msgid >> 8), (uint8_t)msgid, 0xa4, 'p', 'i', 'n',
            'g',  0x91, 0x80};
        memcpy(burst + i * PING_BYTES, ping, PING_BYTES);
    }
    int fd = harness_socket_connect(port);
    for (size_t sent = 0; sent < sizeof(burst);) {
        ssize_t n = send(fd, burst + sent, sizeof(burst) - sent, 0);
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        sent += (size_t)n;
    }
    size_t got = 0;
    while (got < sizeof(replies)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_gt(poll(&p, 1, 10000), 0, "replies stopped after %zu of %zu bytes", got,
                     sizeof(replies));
        ssize_t n = recv(fd, replies + got, sizeof(replies) - got, 0);
        cr_assert_gt(n, 0, "the server closed after %zu of %zu reply bytes", got, sizeof(replies));
        got += (size_t)n;
    }
    cr_expect_eq(replies[sizeof(replies) - 1], 'g', "the last reply is a pong");
    close(fd);
}

static unsigned long long count_read(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "the shim wrote no count to %s", path);
    unsigned long long reads = 0;
    cr_assert_eq(fscanf(f, "%llu", &reads), 1);
    fclose(f);
    return reads;
}

/* Start allotd with the preload `shim`, which writes its count to a fresh file named by the
 * environment variable `count_variable`; the file's path goes to count_path (PATH_MAX). */
static harness_server_t *server_start_counted(const char *shim, const char *count_variable,
                                              char *count_path)
{
    strcpy(count_path, "/tmp/allot-count-XXXXXX");
    int fd = mkstemp(count_path);
    cr_assert_geq(fd, 0);
    close(fd);
    /* the shim is not instrumented: an ASan allotd must accept a library loaded before it */
    const char *asan = getenv("ASAN_OPTIONS");
    char asan_options[1024];
    snprintf(asan_options, sizeof(asan_options), "%s%sverify_asan_link_order=0",
             asan != NULL ? asan : "", asan != NULL && asan[0] != '\0' ? ":" : "");
    setenv("ALLOT_SAVED_ASAN_OPTIONS", asan != NULL ? asan : "", 1);
    setenv("ASAN_OPTIONS", asan_options, 1);
    setenv("LD_PRELOAD", shim, 1);
    setenv(count_variable, count_path, 1);
    harness_server_t *s = harness_server_start("--fsync none");
    unsetenv("LD_PRELOAD");
    unsetenv(count_variable);
    setenv("ASAN_OPTIONS", getenv("ALLOT_SAVED_ASAN_OPTIONS"), 1);
    return s;
}

/* The pipelined ping burst against s, every ping of it answered without an error (server.stats
 * before and after); *after holds the stats after it. */
static void ping_burst_answered(harness_server_t *s, allot_client_t *c, allot_reply_t *after,
                                int64_t *calls_before)
{
    harness_call_ok(c, "server.stats", "{}", after);
    const msgpack_object *before = harness_reply_at(after, "methods.ping.calls");
    *calls_before = before != NULL ? harness_reply_int(after, "methods.ping.calls") : 0;
    ping_burst(s->port);
    harness_call_ok(c, "server.stats", "{}", after);
    cr_expect_eq(harness_reply_int(after, "methods.ping.calls") - *calls_before, BURST_REQUESTS,
                 "every ping of the burst is answered and counted");
    cr_expect_eq(harness_reply_int(after, "methods.ping.errors"), 0);
}

Test(request_timing, a_pipelined_burst_costs_a_few_clock_reads_and_every_request_is_counted)
{
    char count_path[PATH_MAX];
    harness_server_t *s =
        server_start_counted(ALLOT_CLOCK_COUNT_PATH, "ALLOT_CLOCK_COUNT_FILE", count_path);

    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    int64_t calls_before;
    ping_burst_answered(s, c, &reply, &calls_before);
    cr_expect_eq(harness_reply_int(&reply, "methods.ping.latency.count") - calls_before,
                 BURST_REQUESTS, "every ping of the burst has a latency");
    cr_expect_geq(harness_reply_int(&reply, "loop_iteration.count"), 1);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);

    /* Start-up, the timers and the shutdown read the clock some hundreds of times in all; three
     * reads per request would be 12000 for the burst alone. */
    unsigned long long reads = count_read(count_path);
    unlink(count_path);
    cr_expect_lt(reads, BURST_REQUESTS / 4, "%llu precise clock reads for %d pipelined pings",
                 reads, BURST_REQUESTS);
}

Test(request_decoding, a_pipelined_burst_is_decoded_in_one_pass_not_framed_then_unpacked)
{
    char count_path[PATH_MAX];
    harness_server_t *s =
        server_start_counted(ALLOT_UNPACK_COUNT_PATH, "ALLOT_UNPACK_COUNT_FILE", count_path);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    int64_t calls_before;
    ping_burst_answered(s, c, &reply, &calls_before);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);

    /* Only a request that a read cut in two is framed, then unpacked (a few for 48 KB of pings);
     * framing and then unpacking every request would be 4000. */
    unsigned long long unpacks = count_read(count_path);
    unlink(count_path);
    cr_expect_lt(unpacks, BURST_REQUESTS / 20, "%llu msgpack_unpack calls for %d pipelined pings",
                 unpacks, BURST_REQUESTS);
}

#define ROUND_TRIPS            2000
#define ROUND_TRIP_CONNECTIONS 4

/* ROUND_TRIPS pings over ROUND_TRIP_CONNECTIONS connections in turn, each answered before the
 * next is sent: every one is a read, and a reply, of its own. */
static void ping_round_trips(uint16_t port)
{
    int fds[ROUND_TRIP_CONNECTIONS];
    for (int c = 0; c < ROUND_TRIP_CONNECTIONS; c++)
        fds[c] = harness_socket_connect(port);
    for (uint32_t i = 0; i < ROUND_TRIPS; i++) {
        int fd = fds[i % ROUND_TRIP_CONNECTIONS];
        uint32_t msgid = MSGID_FIRST + i;
        const uint8_t ping[PING_BYTES] = {
            0x94, 0x00, 0xcd, (uint8_t)(msgid >> 8), (uint8_t)msgid, 0xa4, 'p', 'i', 'n',
            'g',  0x91, 0x80};
        cr_assert_eq(send(fd, ping, sizeof(ping), 0), (ssize_t)sizeof(ping));
        uint8_t pong[PONG_BYTES];
        for (size_t got = 0; got < sizeof(pong);) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            cr_assert_gt(poll(&p, 1, 10000), 0, "no reply to ping %u", i);
            ssize_t n = recv(fd, pong + got, sizeof(pong) - got, 0);
            cr_assert_gt(n, 0, "the server closed at ping %u", i);
            got += (size_t)n;
        }
        cr_assert_eq(((uint32_t)pong[3] << 8) | pong[4], msgid, "ping %u answered in turn", i);
    }
    for (int c = 0; c < ROUND_TRIP_CONNECTIONS; c++)
        close(fds[c]);
}

Test(reply_buffers, requests_answered_one_at_a_time_reuse_spare_reply_buffers)
{
    char count_path[PATH_MAX];
    harness_server_t *s =
        server_start_counted(ALLOT_SBUFFER_COUNT_PATH, "ALLOT_SBUFFER_COUNT_FILE", count_path);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "server.stats", "{}", &reply);
    const msgpack_object *before = harness_reply_at(&reply, "methods.ping.calls");
    int64_t calls_before = before != NULL ? harness_reply_int(&reply, "methods.ping.calls") : 0;
    ping_round_trips(s->port);
    harness_call_ok(c, "server.stats", "{}", &reply);
    cr_expect_eq(harness_reply_int(&reply, "methods.ping.calls") - calls_before, ROUND_TRIPS,
                 "every round trip is answered and counted");
    cr_expect_eq(harness_reply_int(&reply, "methods.ping.errors"), 0);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);

    /* Start-up and shutdown allocate some; a fresh reply buffer per read would be 2000. */
    unsigned long long fresh = count_read(count_path);
    unlink(count_path);
    cr_expect_lt(fresh, ROUND_TRIPS / 10, "%llu fresh 8 KiB buffers for %d round trips", fresh,
                 ROUND_TRIPS);
}
