/* test_order_archive.c - orders that aged out of memory through the real allotd
 * (--orders-archive-age-s 1 --checkpoint-interval-s 1): server.info orders drops, order.get and
 * order.list (paged, newest first, live and archived merged) still serve them, also after
 * kill -9 and a restart. The measurement (100,000 orders, RSS, order.get latency from LMDB vs
 * memory) runs only with ALLOT_ARCHIVE_BENCH=1 and prints its numbers (docs/orders.md). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define ARCHIVE_ARGS "--orders-archive-age-s 1 --checkpoint-interval-s 1"
#define ENDED        40 /* orders delivered or cancelled, then archived */
#define LIVE         5  /* orders left open (stay in memory) */

static const msgpack_object *field(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = allot_object_map_get(map, key);
    cr_assert_not_null(v, "no %s in the reply", key);
    return v;
}

static void call_ok(allot_client_t *c, const char *method, const char *params)
{
    allot_reply_t r = {0};
    harness_call_ok(c, method, params, &r);
    allot_reply_free(&r);
}

static int64_t orders_in_memory(allot_client_t *c)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "server.info", "{}", &r);
    int64_t n = field(&r.result, "orders")->via.i64;
    allot_reply_free(&r);
    return n;
}

/* Poll server.info until orders == expected (15 s). */
static void wait_orders(allot_client_t *c, int64_t expected)
{
    int64_t n = -1;
    for (int i = 0; i < 300 && (n = orders_in_memory(c)) != expected; i++)
        usleep(50 * 1000);
    cr_assert_eq(n, expected, "orders in memory: %lld, expected %lld", (long long)n,
                 (long long)expected);
}

static void seed(allot_client_t *c, int64_t units)
{
    call_ok(c, "location.put",
            "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4,\"priority\":1}");
    char params[128];
    snprintf(params, sizeof(params), "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":%lld}",
             (long long)units);
    call_ok(c, "stock.set", params);
}

/* Order o-<i> of customer c-1: delivered when i % 3 != 0, else cancelled; open when live. */
static void order_lifecycle(allot_client_t *c, int i, bool live)
{
    char params[160];
    snprintf(params, sizeof(params),
             "{\"id\":\"o-%03d\",\"customer\":\"c-1\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}", i);
    call_ok(c, "order.create", params);
    if (live)
        return;
    if (i % 3 == 0) {
        snprintf(params, sizeof(params), "{\"id\":\"o-%03d\"}", i);
        call_ok(c, "order.cancel", params);
        return;
    }
    snprintf(params, sizeof(params), "{\"id\":\"o-%03d\",\"status\":\"captured\"}", i);
    call_ok(c, "order.pay", params);
    snprintf(params, sizeof(params), "{\"id\":\"o-%03d\"}", i);
    call_ok(c, "order.release", params);
    snprintf(params, sizeof(params), "{\"order\":\"o-%03d\",\"shipment\":\"S1\"}", i);
    call_ok(c, "shipment.ship", params);
    call_ok(c, "shipment.deliver", params);
}

/* order.get of every order; archived ones keep their state and history. */
static void assert_gets(allot_client_t *c)
{
    allot_reply_t r = {0};
    char params[64];
    for (int i = 0; i < ENDED + LIVE; i++) {
        snprintf(params, sizeof(params), "{\"id\":\"o-%03d\"}", i);
        harness_call_ok(c, "order.get", params, &r);
        const msgpack_object *state = field(&r.result, "state");
        const char *expected = i >= ENDED ? "created" : (i % 3 == 0 ? "cancelled" : "delivered");
        cr_assert(allot_object_str_equal(state, expected), "o-%03d is not %s", i, expected);
        uint32_t history = field(&r.result, "history")->via.array.size;
        cr_assert_eq(history, i >= ENDED ? 1u : (i % 3 == 0 ? 2u : 5u), "o-%03d history", i);
    }
    harness_call_error(c, "order.get", "{\"id\":\"o-999\"}", "NOT_FOUND", &r);
    allot_reply_free(&r);
}

/* order.list of c-1 in pages of 7: every order once, newest first (o-044 .. o-000). */
static void assert_list(allot_client_t *c)
{
    allot_reply_t r = {0};
    char params[128], after[32] = "";
    int n = 0;
    for (int page = 0; page < 20; page++) {
        if (after[0] == '\0')
            snprintf(params, sizeof(params), "{\"customer\":\"c-1\",\"limit\":7}");
        else
            snprintf(params, sizeof(params), "{\"customer\":\"c-1\",\"limit\":7,\"after\":\"%s\"}",
                     after);
        harness_call_ok(c, "order.list", params, &r);
        const msgpack_object *orders = field(&r.result, "orders");
        for (uint32_t i = 0; i < orders->via.array.size; i++) {
            const msgpack_object *id = field(&orders->via.array.ptr[i], "id");
            char expected[16];
            snprintf(expected, sizeof(expected), "o-%03d", ENDED + LIVE - 1 - n);
            cr_assert(allot_object_str_equal(id, expected), "#%d is not %s", n, expected);
            n++;
        }
        const msgpack_object *next = field(&r.result, "next_after");
        if (next->type == MSGPACK_OBJECT_NIL)
            break;
        snprintf(after, sizeof(after), "%.*s", (int)next->via.str.size, next->via.str.ptr);
    }
    cr_assert_eq(n, ENDED + LIVE);
    allot_reply_free(&r);
}

Test(order_archive, aged_orders_leave_memory_and_are_served_from_lmdb, .timeout = 120)
{
    harness_server_t *s = harness_server_start(ARCHIVE_ARGS);
    allot_client_t *c = harness_connect(s);
    seed(c, 1000);
    for (int i = 0; i < ENDED + LIVE; i++)
        order_lifecycle(c, i, i >= ENDED);
    wait_orders(c, LIVE);
    assert_gets(c);
    assert_list(c);
    /* an archived order is read-only; the same create is still an idempotent success */
    allot_reply_t r = {0};
    harness_call_error(c, "order.cancel", "{\"id\":\"o-001\"}", "INVALID_TRANSITION", &r);
    call_ok(c, "order.create",
            "{\"id\":\"o-001\",\"customer\":\"c-1\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}");
    harness_call_error(c, "order.create",
                       "{\"id\":\"o-001\",\"customer\":\"c-2\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}",
                       "CONFLICT", &r);
    allot_reply_free(&r);
    allot_client_close(c);

    harness_server_kill9(s);
    cr_assert(harness_server_restart_try(s, HARNESS_START_TIMEOUT_MS), "restart failed: %s",
              harness_server_log(s));
    c = harness_connect(s);
    cr_assert_eq(orders_in_memory(c), LIVE, "archived orders do not come back into memory");
    assert_gets(c);
    assert_list(c);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(order_archive, orders_evicted_just_before_kill9_are_not_lost, .timeout = 120)
{
    /* kill -9 right after eviction: the ORDER_EVICT records may be only in the WAL and the
     * archived snapshots not yet checkpointed; the orders must still be readable. */
    harness_server_t *s = harness_server_start(ARCHIVE_ARGS);
    allot_client_t *c = harness_connect(s);
    seed(c, 1000);
    for (int i = 0; i < ENDED + LIVE; i++)
        order_lifecycle(c, i, i >= ENDED);
    wait_orders(c, LIVE);
    allot_client_close(c);
    harness_server_kill9(s);
    cr_assert(harness_server_restart_try(s, HARNESS_START_TIMEOUT_MS), "restart failed: %s",
              harness_server_log(s));
    c = harness_connect(s);
    wait_orders(c, LIVE);
    assert_gets(c);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- measurement (ALLOT_ARCHIVE_BENCH=1) -------------------------------------------------------- */

#define BENCH_ORDERS 100000
#define BENCH_LIVE   5000 /* the last ones stay open */
#define BENCH_WINDOW 512
#define BENCH_GETS   20000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Pipelined: send one request per fn(i) in windows, then check every reply. */
static void pipeline(allot_client_t *c, int count, void (*fn)(allot_client_t *, int))
{
    for (int base = 0; base < count; base += BENCH_WINDOW) {
        int end = base + BENCH_WINDOW < count ? base + BENCH_WINDOW : count;
        int sent = 0;
        for (int i = base; i < end; i++, sent++)
            fn(c, i);
        for (int i = 0; i < sent; i++) {
            allot_reply_t r = {0};
            cr_assert_eq(allot_client_recv(c, &r), 0);
            cr_assert_not(r.is_error, "%s: %s", r.code, r.message);
            allot_reply_free(&r);
        }
    }
}

static void send_fmt(allot_client_t *c, const char *method, const char *fmt, int i)
{
    char params[160];
    snprintf(params, sizeof(params), fmt, i, i % 1000);
    uint32_t msgid;
    cr_assert_eq(allot_client_send_json(c, method, params, &msgid), 0);
}

static void bench_create(allot_client_t *c, int i)
{
    send_fmt(c, "order.create",
             "{\"id\":\"b-%06d\",\"customer\":\"cust-%d\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}", i);
}

static void bench_end(allot_client_t *c, int i)
{
    if (i >= BENCH_ORDERS - BENCH_LIVE) {
        send_fmt(c, "order.get", "{\"id\":\"b-%06d\"}", i);
        return;
    }
    if (i % 10 == 0) {
        send_fmt(c, "order.cancel", "{\"id\":\"b-%06d\"}", i);
        return;
    }
    send_fmt(c, "order.pay", "{\"id\":\"b-%06d\",\"status\":\"captured\"}", i);
    send_fmt(c, "order.release", "{\"id\":\"b-%06d\"}", i);
    send_fmt(c, "shipment.ship", "{\"order\":\"b-%06d\",\"shipment\":\"S1\"}", i);
    send_fmt(c, "shipment.deliver", "{\"order\":\"b-%06d\",\"shipment\":\"S1\"}", i);
}

/* Mean microseconds of sequential order.get over ids first..first+span-1. */
static double get_latency_us(allot_client_t *c, int first, int span)
{
    char params[64];
    double t0 = now_s();
    for (int k = 0; k < BENCH_GETS; k++) {
        snprintf(params, sizeof(params), "{\"id\":\"b-%06d\"}", first + (k * 7919) % span);
        allot_reply_t r = {0};
        harness_call_ok(c, "order.get", params, &r);
        allot_reply_free(&r);
    }
    return (now_s() - t0) * 1e6 / BENCH_GETS;
}

Test(order_archive, bench_100k_orders_rss_and_get_latency, .timeout = 900)
{
    if (getenv("ALLOT_ARCHIVE_BENCH") == NULL)
        cr_skip_test("set ALLOT_ARCHIVE_BENCH=1 to measure");
    harness_server_t *s =
        harness_server_start("--orders-archive-age-s 60 --checkpoint-interval-s 1 --fsync none");
    allot_client_t *c = harness_connect(s);
    seed(c, 1000000);
    long rss_start = harness_server_rss_kb(s);
    double t0 = now_s();
    pipeline(c, BENCH_ORDERS, bench_create);
    /* (the ended ones need 4 replies each: count requests, not orders) */
    for (int base = 0; base < BENCH_ORDERS; base += BENCH_WINDOW / 4) {
        int end = base + BENCH_WINDOW / 4 < BENCH_ORDERS ? base + BENCH_WINDOW / 4 : BENCH_ORDERS;
        int replies = 0;
        for (int i = base; i < end; i++) {
            bench_end(c, i);
            replies += (i >= BENCH_ORDERS - BENCH_LIVE || i % 10 == 0) ? 1 : 4;
        }
        for (int k = 0; k < replies; k++) {
            allot_reply_t r = {0};
            cr_assert_eq(allot_client_recv(c, &r), 0);
            cr_assert_not(r.is_error, "%s: %s", r.code, r.message);
            allot_reply_free(&r);
        }
    }
    double load_s = now_s() - t0;
    long rss_full = harness_server_rss_kb(s);
    int64_t in_memory_full = orders_in_memory(c);
    call_ok(c, "server.checkpoint", "{}"); /* measure on a quiet server */
    double live_us = get_latency_us(c, 0, BENCH_ORDERS - BENCH_LIVE); /* still in memory */
    t0 = now_s();
    for (int i = 0; i < 4000 && orders_in_memory(c) != BENCH_LIVE; i++)
        usleep(50 * 1000);
    double evict_s = now_s() - t0;
    cr_assert_eq(orders_in_memory(c), BENCH_LIVE);
    call_ok(c, "server.checkpoint", "{}");
    long rss_evicted = harness_server_rss_kb(s);
    double archived_us = get_latency_us(c, 0, BENCH_ORDERS - BENCH_LIVE);
    double live_after_us = get_latency_us(c, BENCH_ORDERS - BENCH_LIVE, BENCH_LIVE);
    char path[512];
    fprintf(stderr,
            "archive bench: orders=%d live=%d load_s=%.1f rss_start_kb=%ld rss_all_in_memory_kb=%ld"
            " (orders in memory %lld) eviction_wait_s=%.1f rss_after_eviction_kb=%ld"
            " order_get_memory_us=%.1f order_get_lmdb_us=%.1f order_get_live_after_us=%.1f"
            " state_lmdb=%s\n",
            BENCH_ORDERS, BENCH_LIVE, load_s, rss_start, rss_full, (long long)in_memory_full,
            evict_s, rss_evicted, live_us, archived_us, live_after_us,
            harness_server_path(s, "state.lmdb", path, sizeof(path)));
    cr_assert_lt(rss_evicted, rss_full, "RSS dropped");
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
