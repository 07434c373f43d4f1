/* test_server_protocol.c - the real allotd over TCP: envelope, pipelining, concurrency, hostile
 * input, slow readers, limits and clean shutdown. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* ---- raw sockets, for bytes no well-behaved client would send ------------------------------ */

/* Wait until the server answers something or closes: returns bytes read (>0), 0 on close,
 * -1 on timeout. */
static ssize_t raw_wait(int fd, int timeout_ms, uint8_t *buf, size_t bytes)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int ready = poll(&p, 1, timeout_ms);
    if (ready <= 0)
        return -1;
    ssize_t n = recv(fd, buf, bytes, 0);
    return n < 0 ? 0 : n; /* a reset counts as closed */
}

/* Read until EOF (or error); true when the server closed within timeout_ms. */
static bool raw_closed_within(int fd, int timeout_ms)
{
    uint8_t buf[4096];
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        ssize_t n = raw_wait(fd, 50, buf, sizeof(buf));
        if (n == 0)
            return true;
    }
    return false;
}

/* A server.info request; its reply is ~200 bytes. */
static const uint8_t info_request[] = {0x94, 0x00, 0x01, 0xab, 's', 'e', 'r',  'v', 'e',
                                       'r',  '.',  'i',  'n',  'f', 'o', 0x91, 0x80};
#define INFO_BATCH_BYTES (sizeof(info_request) * 256)

/* A client that asks and never reads: a raw connection with a 4 KiB receive buffer, and batch
 * filled with 256 server.info requests to send on it again and again. */
static int raw_connect_non_reader(uint16_t port, uint8_t batch[static INFO_BATCH_BYTES])
{
    int fd = harness_socket_connect(port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    for (size_t i = 0; i < 256; i++)
        memcpy(batch + i * sizeof(info_request), info_request, sizeof(info_request));
    return fd;
}

static void ping_ok(allot_client_t *c)
{
    allot_reply_t reply = {0};
    harness_call_ok(c, "ping", "{}", &reply);
    cr_assert(allot_object_str_equal(&reply.result, "pong"));
    allot_reply_free(&reply);
}

/* ---- envelope and dispatch ------------------------------------------------------------------ */

Test(server, ping_and_server_info_answer)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    ping_ok(c);
    allot_reply_t reply = {0};
    harness_call_ok(c, "server.info", "{}", &reply);
    const char *keys[] = {"version", "uptime_s", "connections", "skus", "positions",
                          "locations", "reservations", "orders", "wal_lsn", "durable_lsn",
                          "checkpoint_lsn", "fsync"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_expect_not_null(allot_object_map_get(&reply.result, keys[i]), "missing %s", keys[i]);
    cr_expect(allot_object_str_equal(allot_object_map_get(&reply.result, "fsync"), "always"));
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(server, unknown_method_unknown_key_and_bad_params_are_errors_on_a_live_connection)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_error(c, "no.such.method", "{}", "UNKNOWN_METHOD", &reply);
    harness_call_error(c, "ping", "{\"colour\": 1}", "INVALID_ARGUMENT", &reply);
    cr_expect(strstr(reply.message, "colour") != NULL, "message names the key: %s",
              reply.message);
    /* params that are not [map]: [0, 9, "ping", [1]] */
    const uint8_t bad_params[] = {0x94, 0x00, 0x09, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x01};
    cr_assert_eq(allot_client_send_raw(c, bad_params, sizeof(bad_params)), 0);
    cr_assert_eq(allot_client_recv(c, &reply), 0);
    cr_expect_eq(reply.msgid, 9);
    cr_expect_str_eq(reply.code, "INVALID_ARGUMENT");
    ping_ok(c); /* the connection is still usable */
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(server, ten_thousand_pipelined_pings_are_answered_with_their_msgids)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    enum { PINGS = 10000 };
    static bool seen[PINGS + 1];
    uint32_t first = 0, msgid = 0;
    for (int i = 0; i < PINGS; i++) {
        cr_assert_eq(allot_client_send(c, "ping", NULL, 0, &msgid), 0);
        if (i == 0)
            first = msgid;
    }
    cr_assert_eq(allot_client_flush(c), 0);
    allot_reply_t reply = {0};
    for (int i = 0; i < PINGS; i++) {
        cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
        cr_assert_not(reply.is_error);
        uint32_t index = reply.msgid - first;
        cr_assert_lt(index, (uint32_t)PINGS);
        cr_assert_not(seen[index], "msgid %u answered twice", reply.msgid);
        seen[index] = true;
    }
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(server, two_hundred_concurrent_connections_are_served)
{
    harness_server_t *s = harness_server_start(NULL);
    enum { CLIENTS = 200 };
    allot_client_t *clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = harness_connect(s);
    uint32_t msgids[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cr_assert_eq(allot_client_send(clients[i], "ping", NULL, 0, &msgids[i]), 0);
        cr_assert_eq(allot_client_flush(clients[i]), 0);
    }
    allot_reply_t reply = {0};
    for (int i = 0; i < CLIENTS; i++) {
        cr_assert_eq(allot_client_recv(clients[i], &reply), 0);
        cr_assert_eq(reply.msgid, msgids[i]);
    }
    harness_call_ok(clients[0], "server.info", "{}", &reply);
    const msgpack_object *connections = allot_object_map_get(&reply.result, "connections");
    cr_assert_not_null(connections);
    cr_expect_geq(connections->via.u64, (uint64_t)CLIENTS);
    allot_reply_free(&reply);
    for (int i = 0; i < CLIENTS; i++)
        allot_client_close(clients[i]);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- hostile input --------------------------------------------------------------------------- */

typedef struct hostile {
    const char *name;
    uint8_t bytes[48];
    size_t len;
} hostile_t;

static const hostile_t hostile_inputs[] = {
    {"array32 of 4G elements", {0xdd, 0xff, 0x00, 0x00, 0x00}, 5},
    {"array16 of 65535", {0xdc, 0xff, 0xff}, 3},
    {"str32 of 2 MiB without body", {0x94, 0x00, 0x01, 0xdb, 0x00, 0x20, 0x00, 0x00}, 8},
    {"bin32 of 4 GiB", {0x94, 0x00, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff}, 8},
    {"ext32 of 4 GiB", {0x94, 0x00, 0x01, 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, 9},
    {"map32 of 4G pairs in params", {0x94, 0x00, 0x01, 0xa1, 'p', 0x91, 0xdf, 0xff, 0xff, 0xff,
                                     0xff}, 11},
    {"never-used byte", {0xc1}, 1},
    {"top-level map", {0x81, 0xa1, 'a', 0x01}, 4},
    {"top-level integer", {0x05}, 1},
    {"top-level nil", {0xc0}, 1},
    {"response sent to server", {0x94, 0x01, 0x01, 0xc0, 0xc0}, 5},
    {"message type 7", {0x94, 0x07, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80}, 10},
    {"negative msgid", {0x94, 0x00, 0xff, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80}, 10},
    {"msgid is a float", {0x94, 0x00, 0xca, 0, 0, 0, 0, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x80},
     14},
    {"msgid over uint32", {0x94, 0x00, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0xa1, 'p', 0x91, 0x80},
     15},
    {"method is an integer", {0x94, 0x00, 0x01, 0x07, 0x91, 0x80}, 6},
    {"method is empty", {0x94, 0x00, 0x01, 0xa0, 0x91, 0x80}, 6},
    {"params is a map", {0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x80}, 9},
    {"params holds an integer", {0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x01}, 10},
    {"params holds two maps", {0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x92, 0x80, 0x80},
     11},
    {"params map with integer key",
     {0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x81, 0x01, 0x02}, 12},
    {"truncated request then silence", {0x94, 0x00, 0x01, 0xa4, 'p', 'i'}, 6},
    {"envelope header only then silence", {0x94, 0x00, 0x01}, 3},
    {"wrong envelope length", {0x93, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g'}, 8},
    {"notification with bad params then garbage", {0x93, 0x02, 0xa1, 'x', 0x01, 0xc1}, 6},
};

static void hostile_send_and_expect_answer_or_close(harness_server_t *s, const uint8_t *bytes,
                                                    size_t len, const char *name)
{
    int fd = harness_socket_connect(s->port);
    ssize_t sent = send(fd, bytes, len, MSG_NOSIGNAL);
    cr_assert_eq(sent, (ssize_t)len, "%s: send", name);
    uint8_t buf[4096];
    ssize_t n = raw_wait(fd, 3000, buf, sizeof(buf));
    cr_assert_neq(n, -1, "%s: neither answered nor closed within 3 s", name);
    if (n > 0)
        cr_expect_eq(buf[0], 0x94, "%s: an answer is a response array", name);
    close(fd);
}

Test(server, hostile_inputs_are_answered_or_closed_and_others_keep_being_served)
{
    harness_server_t *s = harness_server_start("--request-timeout-ms 500");
    allot_client_t *witness = harness_connect(s);
    ping_ok(witness);
    long rss_before_kb = harness_server_rss_kb(s);
    size_t count = sizeof(hostile_inputs) / sizeof(hostile_inputs[0]);
    for (size_t i = 0; i < count; i++) {
        hostile_send_and_expect_answer_or_close(s, hostile_inputs[i].bytes, hostile_inputs[i].len,
                                                hostile_inputs[i].name);
        ping_ok(witness);
    }
    /* 100-deep nesting */
    uint8_t deep[3 + 100];
    memcpy(deep, (uint8_t[]){0x94, 0x00, 0x01}, 3);
    memset(deep + 3, 0x91, 100);
    hostile_send_and_expect_answer_or_close(s, deep, sizeof(deep), "100-deep nesting");
    /* random bytes, several seeds */
    srand(12345);
    for (int round = 0; round < 20; round++) {
        uint8_t noise[4096];
        for (size_t i = 0; i < sizeof(noise); i++)
            noise[i] = (uint8_t)rand();
        hostile_send_and_expect_answer_or_close(s, noise, sizeof(noise), "random bytes");
        ping_ok(witness);
    }
    /* a request over the 1 MiB limit with a readable msgid gets TOO_LARGE, then close */
    size_t big_len = (1u << 20) + 64;
    uint8_t *big = malloc(big_len);
    memcpy(big, (uint8_t[]){0x94, 0x00, 0x2a, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x81, 0xa1, 'x',
                            0xdb, 0x00, 0x10, 0x00, 0x10},
           17);
    memset(big + 17, 'a', big_len - 17);
    int fd = harness_socket_connect(s->port);
    uint8_t reply[512];
    send(fd, big, 64, MSG_NOSIGNAL);
    ssize_t n = raw_wait(fd, 3000, reply, sizeof(reply));
    cr_assert_gt(n, 0, "an oversized request is answered");
    cr_expect(memmem(reply, (size_t)n, "TOO_LARGE", 9) != NULL);
    cr_expect(raw_closed_within(fd, 3000), "and then closed");
    close(fd);
    free(big);
    ping_ok(witness);
    long rss_after_kb = harness_server_rss_kb(s);
    cr_expect_lt(rss_after_kb - rss_before_kb, 64 * 1024, "RSS grew from %ld to %ld KiB",
                 rss_before_kb, rss_after_kb);
    allot_client_close(witness);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- slow readers, limits, shutdown ---------------------------------------------------------- */

Test(server, a_client_that_never_reads_is_cut_off_and_others_are_unaffected)
{
    harness_server_t *s = harness_server_start("--output-bytes-max 65536");
    allot_client_t *witness = harness_connect(s);
    /* server.info replies are ~200 bytes; send requests until the server hangs up */
    uint8_t batch[INFO_BATCH_BYTES];
    int fd = raw_connect_non_reader(s->port, batch);
    bool cut_off = false;
    for (int round = 0; round < 20000 && !cut_off; round++) {
        if (send(fd, batch, sizeof(batch), MSG_NOSIGNAL) < 0)
            cut_off = true;
        if (round % 64 == 0)
            ping_ok(witness);
    }
    cr_assert(cut_off, "the server never disconnected a client that does not read");
    close(fd);
    ping_ok(witness);
    char *log = harness_server_log_read(s);
    cr_expect(strstr(log, "event=output_limit") != NULL);
    free(log);
    allot_client_close(witness);
    harness_server_stop(s);
    harness_server_destroy(s);
}

enum { BACKLOG_CONNECTIONS = 8, BACKLOG_PINGS = 4000, BACKLOG_MSGID_FIRST = 256 };

/* BACKLOG_PINGS pings (msgids BACKLOG_MSGID_FIRST.., two bytes each way: 12-byte requests,
 * 11-byte replies) written on every connection before any reply is read, so that each one's
 * replies outgrow its 4 KiB receive buffer (partial writes, replies queued behind them); then
 * the replies of all connections are read as they come and must be whole and in order. */
static void pings_behind_a_backlog(const int *fds)
{
    static uint8_t requests[BACKLOG_PINGS * 12];
    static uint8_t replies[BACKLOG_CONNECTIONS][BACKLOG_PINGS * 11];
    for (uint32_t i = 0; i < BACKLOG_PINGS; i++) {
        uint32_t msgid = BACKLOG_MSGID_FIRST + i;
        const uint8_t ping[12] = {
            0x94, 0x00, 0xcd, (uint8_t)(msgid >> 8), (uint8_t)msgid, 0xa4, 'p', 'i', 'n',
            'g',  0x91, 0x80};
        memcpy(requests + i * 12, ping, 12);
    }
    for (int c = 0; c < BACKLOG_CONNECTIONS; c++)
        cr_assert_eq(send(fds[c], requests, sizeof(requests), MSG_NOSIGNAL),
                     (ssize_t)sizeof(requests), "connection %d: send: %s", c, strerror(errno));
    size_t got[BACKLOG_CONNECTIONS] = {0}, done = 0;
    while (done < BACKLOG_CONNECTIONS) {
        struct pollfd p[BACKLOG_CONNECTIONS];
        for (int c = 0; c < BACKLOG_CONNECTIONS; c++)
            p[c] =
                (struct pollfd){.fd = got[c] < sizeof(replies[c]) ? fds[c] : -1, .events = POLLIN};
        cr_assert_gt(poll(p, BACKLOG_CONNECTIONS, 20000), 0, "replies stopped coming");
        for (int c = 0; c < BACKLOG_CONNECTIONS; c++) {
            if (!(p[c].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(fds[c], replies[c] + got[c], sizeof(replies[c]) - got[c], 0);
            cr_assert_gt(n, 0, "connection %d closed after %zu reply bytes", c, got[c]);
            got[c] += (size_t)n;
            done += got[c] == sizeof(replies[c]);
        }
    }
    for (int c = 0; c < BACKLOG_CONNECTIONS; c++)
        for (uint32_t i = 0; i < BACKLOG_PINGS; i++) {
            const uint8_t *r = replies[c] + i * 11;
            cr_assert(r[0] == 0x94 && r[1] == 0x01 && r[2] == 0xcd && r[5] == 0xc0 &&
                          memcmp(r + 6, "\xa4pong", 5) == 0,
                      "connection %d, reply %u is not a whole pong", c, i);
            cr_assert_eq(((uint32_t)r[3] << 8) | r[4], BACKLOG_MSGID_FIRST + i,
                         "connection %d, reply %u", c, i);
        }
}

Test(server, replies_outgrowing_slow_sockets_arrive_whole_and_in_order_and_a_non_reader_is_cut)
{
    harness_server_t *s = harness_server_start("--output-bytes-max 65536");
    int fds[BACKLOG_CONNECTIONS];
    for (int c = 0; c < BACKLOG_CONNECTIONS; c++) {
        fds[c] = harness_socket_connect(s->port);
        int small = 4096;
        setsockopt(fds[c], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
    /* twice: the second round's replies go into buffers the first round's left behind */
    pings_behind_a_backlog(fds);
    pings_behind_a_backlog(fds);
    uint8_t batch[INFO_BATCH_BYTES];
    int non_reader = raw_connect_non_reader(s->port, batch);
    bool cut_off = false;
    for (int round = 0; round < 20000 && !cut_off; round++)
        cut_off = send(non_reader, batch, sizeof(batch), MSG_NOSIGNAL) < 0;
    cr_assert(cut_off, "the output limit still cuts off a client that does not read");
    close(non_reader);
    pings_behind_a_backlog(fds); /* and the others are served as before */
    for (int c = 0; c < BACKLOG_CONNECTIONS; c++)
        close(fds[c]);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(server, connections_over_the_limit_are_accepted_then_closed_with_a_log_line)
{
    harness_server_t *s = harness_server_start("--connections-max 3");
    allot_client_t *a = harness_connect(s), *b = harness_connect(s), *c = harness_connect(s);
    int fd = harness_socket_connect(s->port);
    cr_expect(raw_closed_within(fd, 3000), "the fourth connection is closed");
    close(fd);
    ping_ok(a);
    allot_client_close(c);
    usleep(100 * 1000);
    allot_client_t *d = harness_connect(s); /* room again */
    ping_ok(d);
    char *log = harness_server_log_read(s);
    cr_expect(strstr(log, "event=connection_limit") != NULL);
    free(log);
    allot_client_close(a);
    allot_client_close(b);
    allot_client_close(d);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(server, sigterm_answers_in_flight_closes_every_handle_and_exits_zero)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    uint32_t msgid;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(allot_client_send(c, "ping", NULL, 0, &msgid), 0);
    cr_assert_eq(allot_client_flush(c), 0);
    allot_reply_t reply = {0};
    cr_assert_eq(allot_client_recv(c, &reply), 0);
    cr_assert_eq(harness_server_stop(s), 0); /* exit status 0 only if no handle was left */
    char *log = harness_server_log_read(s);
    cr_expect(strstr(log, "event=shutdown reason=SIGTERM") != NULL);
    cr_expect(strstr(log, "event=handle_left_open") == NULL);
    cr_expect(strstr(log, "event=stopped status=0") != NULL);
    free(log);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_destroy(s);
}

Test(server, an_idle_connection_is_closed_after_the_idle_timeout)
{
    harness_server_t *s = harness_server_start("--idle-timeout-s 1");
    int fd = harness_socket_connect(s->port);
    cr_expect(raw_closed_within(fd, 4000), "an idle connection is closed");
    close(fd);
    char *log = harness_server_log_read(s);
    cr_expect(strstr(log, "event=idle_timeout") != NULL);
    free(log);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(server, over_the_global_buffer_budget_new_requests_are_overloaded_until_it_drains)
{
    harness_server_t *s = harness_server_start("--buffer-bytes-max 1048576");
    allot_client_t *witness = harness_connect(s);
    ping_ok(witness);
    uint8_t batch[INFO_BATCH_BYTES];
    int hog = raw_connect_non_reader(s->port, batch);
    allot_reply_t reply = {0};
    bool overloaded = false;
    for (int round = 0; round < 4000 && !overloaded; round++) {
        if (send(hog, batch, sizeof(batch), MSG_NOSIGNAL) < 0)
            break;
        if (round % 16 == 15) {
            harness_call_json(witness, "ping", "{}", &reply);
            overloaded = reply.is_error && strcmp(reply.code, "OVERLOADED") == 0;
        }
    }
    cr_assert(overloaded, "a reader-less client filled the budget but requests still ran");
    close(hog); /* its buffers are released */
    bool recovered = false;
    for (int i = 0; i < 100 && !recovered; i++) {
        harness_call_json(witness, "ping", "{}", &reply);
        recovered = !reply.is_error;
        if (!recovered)
            usleep(20 * 1000);
    }
    cr_expect(recovered, "requests run again once the budget has room");
    allot_reply_free(&reply);
    allot_client_close(witness);
    harness_server_stop(s);
    harness_server_destroy(s);
}
