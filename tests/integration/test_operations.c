/* test_operations.c - what an operator relies on: token authentication, server.stats, the
 * Prometheus endpoint, config files and JSON logs, through the real allotd. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"
#include "harness.h"
#include "harness_reply.h"

#define TOKEN "correct-horse-battery-staple-42"

static void file_write(const char *path, const char *content, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(content, f);
    fclose(f);
    chmod(path, mode);
}

/* Fill the mkstemp template `path` (e.g. "/tmp/allot-token-XXXXXX") with a fresh file holding
 * content with this mode. The caller unlinks it. */
static void temp_file_write(char *path, const char *content, mode_t mode)
{
    int fd = mkstemp(path);
    close(fd);
    file_write(path, content, mode);
}

/* A server started with --auth-token-file path. */
static harness_server_t *start_with_token_file(const char *path)
{
    char args[128];
    snprintf(args, sizeof(args), "--auth-token-file %s", path);
    return harness_server_start(args);
}

/* A TCP connection to 127.0.0.1:port, or -1. */
static int raw_connect_loopback(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* GET path from 127.0.0.1:port; returns the whole response (malloc'ed). */
static char *http_get(uint16_t port, const char *path)
{
    int fd = raw_connect_loopback(port);
    cr_assert_geq(fd, 0);
    char request[256];
    int n = snprintf(request, sizeof(request), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    cr_assert_eq(send(fd, request, (size_t)n, 0), n);
    size_t cap = 1 << 20, used = 0;
    char *body = malloc(cap);
    ssize_t got;
    while ((got = recv(fd, body + used, cap - used - 1, 0)) > 0)
        used += (size_t)got;
    body[used] = '\0';
    close(fd);
    return body;
}

Test(operations, a_token_is_required_before_anything_but_ping_and_auth)
{
    char path[] = "/tmp/allot-token-XXXXXX";
    temp_file_write(path, TOKEN "\n", 0600);
    harness_server_t *s = start_with_token_file(path); /* the harness pings: allowed */
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_error(c, "server.info", "{}", "UNAUTHENTICATED", &reply);
    harness_call_error(c, "stock.get", "{\"sku\": \"A\"}", "UNAUTHENTICATED", &reply);
    harness_call_error(c, "auth", "{\"token\": \"not-the-token\"}", "UNAUTHENTICATED", &reply);
    harness_call_ok(c, "auth", "{\"token\": \"" TOKEN "\"}", &reply);
    harness_call_ok(c, "server.info", "{}", &reply);
    /* a fresh connection starts unauthenticated */
    allot_client_t *other = harness_connect(s);
    harness_call_error(other, "server.info", "{}", "UNAUTHENTICATED", &reply);
    allot_reply_free(&reply);
    allot_client_close(other);
    allot_client_close(c);
    char *log = harness_server_log_read(s);
    cr_expect(strstr(log, "event=auth_failed") != NULL);
    cr_expect(strstr(log, TOKEN) == NULL, "the token never appears in the log");
    free(log);
    harness_server_stop(s);
    harness_server_destroy(s);
    unlink(path);
}

Test(operations, repeated_wrong_tokens_make_the_connection_wait)
{
    char path[] = "/tmp/allot-token-XXXXXX";
    temp_file_write(path, TOKEN "\n", 0600);
    harness_server_t *s = start_with_token_file(path);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    for (int i = 0; i < 3; i++)
        harness_call_error(c, "auth", "{\"token\": \"guess-guess-guess\"}", "UNAUTHENTICATED",
                           &reply);
    /* backing off: even the right token is refused, unchecked, for a second */
    harness_call_error(c, "auth", "{\"token\": \"" TOKEN "\"}", "UNAUTHENTICATED", &reply);
    usleep(1100 * 1000);
    harness_call_ok(c, "auth", "{\"token\": \"" TOKEN "\"}", &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
    unlink(path);
}

Test(operations, a_token_file_readable_by_others_stops_start_up)
{
    char path[] = "/tmp/allot-token-XXXXXX";
    temp_file_write(path, TOKEN "\n", 0644);
    char dir[] = "/tmp/allot-ops-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *argv[] = {ALLOTD_PATH, "--listen",          "127.0.0.1:0", "--data-dir",
                          dir,         "--auth-token-file", path,          NULL};
    char *err = NULL;
    int status = harness_run(argv, NULL, 10000, NULL, &err);
    cr_expect_neq(status, 0);
    cr_expect(strstr(err, "chmod 600") != NULL, "%s", err);
    free(err);
    unlink(path);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(operations, server_stats_counts_calls_per_method_with_latency_percentiles)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    for (int i = 0; i < 50; i++)
        harness_call_ok(c, "ping", "{}", &reply);
    harness_call_error(c, "ping", "{\"bogus\": 1}", "INVALID_ARGUMENT", &reply);
    harness_call_ok(c, "server.stats", "{}", &reply);
    const msgpack_object *methods = allot_object_map_get(&reply.result, "methods");
    const msgpack_object *ping = allot_object_map_get(methods, "ping");
    cr_assert_not_null(ping);
    cr_expect_geq(allot_object_map_get(ping, "calls")->via.u64, 51);
    cr_expect_eq(allot_object_map_get(ping, "errors")->via.u64, 1);
    const msgpack_object *latency = allot_object_map_get(ping, "latency");
    cr_assert_not_null(allot_object_map_get(latency, "p99_us"));
    cr_assert_not_null(allot_object_map_get(&reply.result, "wal"));
    cr_assert_not_null(allot_object_map_get(&reply.result, "rss_bytes"));
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* wal.zeroed_bytes and friends: the spare segment is written full of zeros in the background. */
Test(operations, server_stats_shows_the_spare_wal_segment_written_full_of_zeros)
{
    harness_server_t *s = harness_server_start("--wal-segment-bytes 1048576");
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    for (int i = 0;; i++) {
        harness_call_ok(c, "server.stats", "{}", &reply);
        const msgpack_object *wal = allot_object_map_get(&reply.result, "wal");
        cr_assert_not_null(wal);
        const msgpack_object *zeroed = allot_object_map_get(wal, "zeroed_bytes");
        cr_assert_not_null(zeroed, "wal.zeroed_bytes");
        cr_assert_not_null(allot_object_map_get(wal, "zero_fill_failures"));
        cr_assert_not_null(allot_object_map_get(wal, "segments_unzeroed"));
        bool filled = zeroed->via.u64 >= 1048576;
        if (filled) {
            cr_expect_eq(allot_object_map_get(wal, "zero_fill_failures")->via.u64, 0);
            cr_expect_eq(allot_object_map_get(wal, "segments_unzeroed")->via.u64, 0);
        }
        allot_reply_free(&reply);
        if (filled)
            break;
        cr_assert_lt(i, 500, "the spare was not filled");
        usleep(10000);
    }
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* wal.segment_shrink_steps: a segment a checkpoint covers is shrunk in steps before it is
 * unlinked (persist/wal.h), and server.stats counts the steps. */
Test(operations, server_stats_counts_the_steps_a_deleted_wal_segment_was_shrunk_in)
{
    harness_server_t *s = harness_server_start(
        "--wal-segment-bytes 1048576 --checkpoint-interval-s 1 --checkpoint-wal-bytes 65536");
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_put_location(c, "W1", "'type':'warehouse','lat':1,'lon':1");
    char lines[4096] = "";
    for (int i = 0; i < 50; i++) {
        char sku[16];
        snprintf(sku, sizeof sku, "SKU-%02d", i);
        harness_set_stock(c, sku, "W1", 1000000);
        snprintf(lines + strlen(lines), sizeof lines - strlen(lines),
                 "%s{\"sku\": \"%s\", \"qty\": 1}", i ? ", " : "", sku);
    }
    cr_assert_eq(harness_server_stats_int(c, "wal.segment_shrink_steps"), 0);
    int rounds = 0;
    for (; harness_server_stats_int(c, "wal.segments_deleted") == 0; rounds++) {
        cr_assert_lt(rounds, 200, "no segment was deleted");
        for (int i = 0; i < 50; i++) {
            char params[4400];
            snprintf(params, sizeof params, "{\"id\": \"cart-%d-%d\", \"lines\": [%s]}", rounds, i,
                     lines);
            harness_call_ok(c, "reserve", params, &reply);
            snprintf(params, sizeof params, "{\"id\": \"cart-%d-%d\"}", rounds, i);
            harness_call_ok(c, "reservation.release", params, &reply);
        }
    }
    /* 1 MiB segments, shrunk WAL_SHRINK_STEP_BYTES at a time */
    cr_assert_geq(harness_server_stats_int(c, "wal.segment_shrink_steps"),
                  1048576 / WAL_SHRINK_STEP_BYTES);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(operations, prometheus_endpoint_serves_metrics_and_404_elsewhere)
{
    uint16_t port = harness_port_reserve();
    char args[64];
    snprintf(args, sizeof(args), "--metrics 127.0.0.1:%u", port);
    harness_server_t *s = harness_server_start(args);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "ping", "{}", &reply);
    usleep(1300 * 1000); /* the loop renders the text once a second */
    char *page = http_get(port, "/metrics");
    cr_expect(strstr(page, "200 OK") != NULL, "%.200s", page);
    cr_expect(strstr(page, "allot_requests_total{method=\"ping\"}") != NULL);
    cr_expect(strstr(page, "# TYPE allot_wal_durable_lsn gauge") != NULL);
    cr_expect(strstr(page, "allot_resident_memory_bytes") != NULL);
    free(page);
    char *missing = http_get(port, "/other");
    cr_expect(strstr(missing, "404") != NULL);
    free(missing);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

static uint64_t stats_evicted_early(allot_client_t *c)
{
    allot_reply_t reply = {0};
    harness_call_ok(c, "server.stats", "{}", &reply);
    const msgpack_object *v = allot_object_map_get(&reply.result, "idempotency_evicted_early");
    cr_assert_not_null(v, "server.stats has idempotency_evicted_early");
    uint64_t n = v->via.u64;
    allot_reply_free(&reply);
    return n;
}

static void keyed_adjusts(allot_client_t *c, int first, int count)
{
    allot_reply_t reply = {0};
    char params[128];
    for (int i = first; i < first + count; i++) {
        snprintf(params, sizeof(params),
                 "{\"sku\": \"A\", \"location\": \"W1\", \"delta\": 1, \"key\": \"k%d\"}", i);
        harness_call_ok(c, "stock.adjust", params, &reply);
    }
    allot_reply_free(&reply);
}

static int occurrences(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* The page once it holds `line` (the loop renders it once a second), or NULL after 10 s. */
static char *metrics_page_with(uint16_t port, const char *line)
{
    for (int i = 0; i < 100; i++) {
        char *page = http_get(port, "/metrics");
        if (strstr(page, line) != NULL)
            return page;
        free(page);
        usleep(100 * 1000);
    }
    return NULL;
}

/* --idempotency-entries-max 100 with 300 keyed adjusts inside the 24 h window: the cap evicts
 * 200 keys early. server.stats and Prometheus count them, and the log says so once (the line
 * is rate-limited: more early evictions within the minute add no line). */
Test(operations, the_idempotency_cap_evicting_inside_the_window_is_counted_and_logged,
     .timeout = 120)
{
    uint16_t port = harness_port_reserve();
    char args[96];
    snprintf(args, sizeof(args), "--idempotency-entries-max 100 --metrics 127.0.0.1:%u", port);
    harness_server_t *s = harness_server_start(args);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "location.put",
                    "{\"id\": \"W1\", \"type\": \"warehouse\", \"lat\": 1, \"lon\": 1}", &reply);
    cr_assert_eq(stats_evicted_early(c), 0);
    keyed_adjusts(c, 0, 300);
    cr_assert_eq(stats_evicted_early(c), 200);
    char *page = metrics_page_with(port, "allot_idempotency_evicted_early_total 200\n");
    cr_assert_not_null(page, "the Prometheus counter reaches 200");
    cr_expect(strstr(page, "# TYPE allot_idempotency_evicted_early_total counter") != NULL);
    free(page);
    /* the line is written by the same once-a-second tick that rendered the page */
    char *log = harness_server_log_read(s);
    cr_assert_eq(occurrences(log, "event=idempotency_evicted_early"), 1, "%s", log);
    cr_expect(strstr(log, "entries_max=100 window_s=86400") != NULL, "%s", log);
    free(log);
    /* what the shortened window means: a retry of k0 applies a second time */
    harness_call_ok(c, "stock.adjust",
                    "{\"sku\": \"A\", \"location\": \"W1\", \"delta\": 1, \"key\": \"k0\"}",
                    &reply);
    cr_expect_eq(allot_object_map_get(&reply.result, "on_hand")->via.i64, 301);
    keyed_adjusts(c, 300, 99);
    cr_assert_eq(stats_evicted_early(c), 300);
    page = metrics_page_with(port, "allot_idempotency_evicted_early_total 300\n");
    cr_assert_not_null(page);
    free(page);
    log = harness_server_log_read(s);
    cr_assert_eq(occurrences(log, "event=idempotency_evicted_early"), 1, "rate-limited: %s", log);
    free(log);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(operations, config_file_settings_apply_and_flags_override_them)
{
    char path[] = "/tmp/allot-conf-XXXXXX";
    temp_file_write(path,
                    "# allotd settings\nlisten = 127.0.0.1:7999\nfsync = interval:5\n"
                    "connections-max = 7\n",
                    0644);
    const char *argv[] = {ALLOTD_PATH,      "--config",       path, "--listen",
                          "127.0.0.1:8123", "--check-config", NULL};
    char *out = NULL;
    cr_assert_eq(harness_run(argv, NULL, 10000, &out, NULL), 0);
    cr_expect(strstr(out, "127.0.0.1:8123") != NULL, "flags override the file: %s", out);
    free(out);
    file_write(path, "listen = 127.0.0.1:7999\nno-such-setting = 1\n", 0644);
    const char *bad[] = {ALLOTD_PATH, "--config", path, "--check-config", NULL};
    char *err = NULL;
    cr_expect_eq(harness_run(bad, NULL, 10000, NULL, &err), 2);
    cr_expect(strstr(err, ":2") != NULL, "the error names the line: %s", err);
    free(err);
    unlink(path);
}

Test(operations, json_log_format_writes_one_object_per_line)
{
    harness_server_t *s = harness_server_start("--log-format json");
    harness_server_stop(s);
    char *log = harness_server_log_read(s);
    int lines = 0;
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        cr_expect_eq(line[0], '{', "%s", line);
        cr_expect(strstr(line, "\"event\":") != NULL, "%s", line);
        lines++;
    }
    cr_expect_geq(lines, 3);
    free(log);
    harness_server_destroy(s);
}

Test(operations, ten_thousand_connections_are_held_at_once, .timeout = 120)
{
    enum { HELD = 9999 }; /* + the witness = the default limit of 10,000 */
    /* the test and the server (which inherits the limit) each hold ~10,000 descriptors */
    struct rlimit limit;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &limit), 0);
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < HELD + 100)
        cr_skip_test("the open-file hard limit (%llu) is below 10,100",
                     (unsigned long long)limit.rlim_max);
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? 65536 : limit.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &limit), 0);
    harness_server_t *s = harness_server_start(NULL); /* inherits the raised limit */
    allot_client_t *witness = harness_connect(s);
    static int fds[HELD];
    for (int i = 0; i < HELD; i++) {
        fds[i] = raw_connect_loopback(s->port);
        cr_assert_geq(fds[i], 0, "connection %d failed", i);
        if (i % 500 == 499)
            usleep(20 * 1000); /* let the accept queue drain */
    }
    allot_reply_t reply = {0};
    uint64_t connections = 0;
    for (int tries = 0; tries < 100 && connections < HELD + 1; tries++) {
        harness_call_ok(witness, "server.info", "{}", &reply);
        connections = allot_object_map_get(&reply.result, "connections")->via.u64;
        if (connections < HELD + 1)
            usleep(50 * 1000);
    }
    cr_expect_eq(connections, HELD + 1);
    /* one more is over the limit: accepted and closed */
    int extra = raw_connect_loopback(s->port);
    char byte;
    cr_expect_eq(recv(extra, &byte, 1, 0), 0, "the 10,001st connection is closed");
    close(extra);
    long rss_kb = harness_server_rss_kb(s);
    cr_expect_lt(rss_kb, 512 * 1024, "10,000 idle connections cost %ld KiB", rss_kb);
    for (int i = 0; i < HELD; i++)
        close(fds[i]);
    allot_reply_free(&reply);
    allot_client_close(witness);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(operations, the_live_reservation_limit_is_an_operator_setting)
{
    harness_server_t *s = harness_server_start("--reservations-max 2");
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "location.put",
                    "{\"id\": \"W1\", \"type\": \"warehouse\", \"lat\": 1, \"lon\": 1}", &reply);
    harness_call_ok(c, "stock.set", "{\"sku\": \"A\", \"location\": \"W1\", \"on_hand\": 10}",
                    &reply);
    harness_call_ok(c, "reserve", "{\"id\": \"c1\", \"lines\": [{\"sku\": \"A\", \"qty\": 1}]}",
                    &reply);
    harness_call_ok(c, "reserve", "{\"id\": \"c2\", \"lines\": [{\"sku\": \"A\", \"qty\": 1}]}",
                    &reply);
    harness_call_error(c, "reserve", "{\"id\": \"c3\", \"lines\": [{\"sku\": \"A\", \"qty\": 1}]}",
                       "OVERLOADED", &reply);
    harness_call_ok(c, "reservation.release", "{\"id\": \"c1\"}", &reply);
    harness_call_ok(c, "reserve", "{\"id\": \"c3\", \"lines\": [{\"sku\": \"A\", \"qty\": 1}]}",
                    &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
