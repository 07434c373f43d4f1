/* test_checkpoint_slices.c - a checkpoint of a large dirty set is serialized in slices: pings on
 * another connection keep being answered meanwhile (their worst round trip is far below the time
 * the whole set takes to serialize), writes to objects not serialized yet go on and are
 * acknowledged, and after kill -9 every acknowledged write is there. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "harness_reply.h"

/* SKUs in the dirty set: large enough that serializing them all takes tens of milliseconds. */
#define SKUS           200000
#define PIPELINE_DEPTH 512 /* requests in flight per burst (below --inflight-max 1024) */
#define ON_HAND_SEEDED 5
#define ON_HAND_MOVED  7 /* written while the checkpoint is serialized */
#define ON_HAND_AFTER  9 /* written after it committed */

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* One request per SKU, pipelined in bursts of PIPELINE_DEPTH: params(sku) builds each request,
 * check(reply, sku) asserts on each reply. */
typedef void (*sku_params_fn)(char *params, size_t size, int sku, int64_t arg);
typedef void (*sku_check_fn)(const allot_reply_t *reply, int sku, int64_t arg);

static void for_every_sku_pipelined(allot_client_t *c, const char *method, sku_params_fn params,
                                    sku_check_fn check, int64_t arg)
{
    char buffer[128];
    allot_reply_t r = {0};
    for (int first = 0; first < SKUS; first += PIPELINE_DEPTH) {
        int n = SKUS - first < PIPELINE_DEPTH ? SKUS - first : PIPELINE_DEPTH;
        for (int i = 0; i < n; i++) {
            params(buffer, sizeof(buffer), first + i, arg);
            cr_assert_eq(allot_client_send_json(c, method, buffer, NULL), 0, "%s",
                         allot_client_last_error(c));
        }
        for (int i = 0; i < n; i++) {
            cr_assert_eq(allot_client_recv(c, &r), 0, "%s", allot_client_last_error(c));
            check(&r, first + i, arg);
        }
    }
    allot_reply_free(&r);
}

static void stock_set_params(char *params, size_t size, int sku, int64_t on_hand)
{
    snprintf(params, size, "{\"sku\":\"S%06d\",\"location\":\"W1\",\"on_hand\":%lld}", sku,
             (long long)on_hand);
}

static void stock_set_succeeded(const allot_reply_t *r, int sku, int64_t on_hand)
{
    (void)sku;
    (void)on_hand;
    cr_assert_not(r->is_error, "stock.set: %s %s", r->code, r->message);
}

/* stock.set of every SKU to on_hand, pipelined; every reply must be a success. */
static void stock_set_all(allot_client_t *c, int64_t on_hand)
{
    for_every_sku_pipelined(c, "stock.set", stock_set_params, stock_set_succeeded, on_hand);
}

/* ---- the pinger and the writer: threads with their own connection ---------------------------- */

#define PINGS_MAX (1u << 20)

typedef struct ping {
    uint64_t started_unix_us; /* CLOCK_REALTIME, to compare with the server's log */
    uint32_t rtt_us;
} ping_t;

typedef struct worker {
    pthread_t thread;
    allot_client_t *client;
    atomic_bool stop;
    atomic_int done; /* operations completed */
    ping_t *pings;   /* pinger: every round trip */
    int failures;
    char failure[256];
} worker_t;

static uint64_t unix_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void *pinger_main(void *arg)
{
    worker_t *w = arg;
    allot_reply_t r = {0};
    while (!atomic_load(&w->stop) && (uint32_t)atomic_load(&w->done) < PINGS_MAX) {
        uint64_t started_unix = unix_us(), started = now_us();
        if (allot_client_call_json(w->client, "ping", "{}", &r) != 0 || r.is_error) {
            w->failures++;
            snprintf(w->failure, sizeof(w->failure), "ping: %.200s",
                     allot_client_last_error(w->client));
            break;
        }
        w->pings[atomic_load(&w->done)] = (ping_t){started_unix, (uint32_t)(now_us() - started)};
        atomic_fetch_add(&w->done, 1);
    }
    allot_reply_free(&r);
    return NULL;
}

/* stock.set S(SKUS-1), S(SKUS-2), ... to ON_HAND_MOVED, one acknowledged write at a time: the
 * walk serializes the SKUs in the order they were dirtied, so these are still pending. */
static void *writer_main(void *arg)
{
    worker_t *w = arg;
    allot_reply_t r = {0};
    char params[128];
    while (!atomic_load(&w->stop) && atomic_load(&w->done) < SKUS / 2) {
        int sku = SKUS - 1 - atomic_load(&w->done);
        snprintf(params, sizeof(params), "{\"sku\":\"S%06d\",\"location\":\"W1\",\"on_hand\":%d}",
                 sku, ON_HAND_MOVED);
        if (allot_client_call_json(w->client, "stock.set", params, &r) != 0 || r.is_error) {
            w->failures++;
            snprintf(w->failure, sizeof(w->failure), "stock.set: %.200s",
                     r.is_error ? r.message : allot_client_last_error(w->client));
            break;
        }
        atomic_fetch_add(&w->done, 1);
    }
    allot_reply_free(&r);
    return NULL;
}

static void worker_start(worker_t *w, const harness_server_t *s, void *(*main_fn)(void *),
                         ping_t *pings)
{
    memset(w, 0, sizeof(*w));
    w->pings = pings;
    w->client = harness_connect(s);
    allot_client_set_timeout(w->client, 60000);
    cr_assert_eq(pthread_create(&w->thread, NULL, main_fn, w), 0);
}

static void worker_stop(worker_t *w)
{
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    allot_client_close(w->client);
    cr_assert_eq(w->failures, 0, "%s", w->failure);
}

static void wait_for_work(worker_t *w, int done)
{
    for (uint64_t started = now_us(); atomic_load(&w->done) < done;) {
        cr_assert_lt(now_us() - started, 10000000u, "a worker made no progress");
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
}

/* The last log line of `event` (NULL when none). */
static const char *log_line(const char *log, const char *event)
{
    char needle[96];
    snprintf(needle, sizeof(needle), "event=%s ", event);
    const char *line = NULL;
    for (const char *p = strstr(log, needle); p != NULL; p = strstr(p + 1, needle))
        line = p;
    while (line != NULL && line > log && line[-1] != '\n')
        line--;
    return line;
}

/* A number after " name=" in that line, or -1. */
static long long line_field(const char *line, const char *name)
{
    char needle[64];
    snprintf(needle, sizeof(needle), " %s=", name);
    const char *end = strchr(line, '\n');
    const char *field = strstr(line, needle);
    if (field == NULL || (end != NULL && field > end))
        return -1;
    return atoll(field + strlen(needle));
}

/* The line's "ts=YYYY-MM-DDTHH:MM:SS.mmmZ" in microseconds since the epoch. */
static uint64_t line_unix_us(const char *line)
{
    struct tm tm = {0};
    int ms = 0;
    cr_assert_eq(sscanf(line, "ts=%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms),
                 7, "log line without a timestamp: %.80s", line);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (uint64_t)timegm(&tm) * 1000000u + (uint64_t)ms * 1000u;
}

static void stock_get_params(char *params, size_t size, int sku, int64_t moved)
{
    (void)moved;
    snprintf(params, size, "{\"sku\":\"S%06d\"}", sku);
}

/* SKU 0 was written last, the `moved` highest during the checkpoint, the rest seeded. */
static void stock_get_as_acknowledged(const allot_reply_t *r, int sku, int64_t moved)
{
    int64_t expected = sku == 0              ? ON_HAND_AFTER
                       : sku >= SKUS - moved ? ON_HAND_MOVED
                                             : ON_HAND_SEEDED;
    cr_assert_not(r->is_error, "stock.get S%06d: %s", sku, r->message);
    cr_assert_eq(harness_reply_int(r, "on_hand"), expected, "S%06d after the restart", sku);
}

/* Every SKU reads as the writes acknowledged left it (pipelined stock.get). */
static void assert_every_write_present(allot_client_t *c, int moved)
{
    for_every_sku_pipelined(c, "stock.get", stock_get_params, stock_get_as_acknowledged, moved);
}

typedef struct measure {
    long long serialize_us; /* checkpoint begin to the batch complete (server's log) */
    long long slices;
    long long objects;
    uint32_t pings;      /* round trips that overlapped the serialization */
    uint32_t rtt_us_max; /* the worst of them */
    int moved;           /* writes acknowledged meanwhile */
    int64_t checkpoint_lsn;
} measure_t;

/* Dirty every SKU, then take a checkpoint while a pinger and a writer run on two other
 * connections; what the server's log and the round trips say about its serialization. */
static measure_t checkpoint_under_load(harness_server_t *s, allot_client_t *c, ping_t *pings)
{
    measure_t m = {0};
    allot_reply_t r = {0};
    stock_set_all(c, ON_HAND_SEEDED);
    worker_t pinger, writer;
    worker_start(&pinger, s, pinger_main, pings);
    worker_start(&writer, s, writer_main, NULL);
    wait_for_work(&pinger, 20);
    wait_for_work(&writer, 2);
    harness_call_ok(c, "server.checkpoint", "{}", &r);
    m.checkpoint_lsn = harness_reply_int(&r, "checkpoint_lsn");
    allot_reply_free(&r);
    worker_stop(&writer);
    worker_stop(&pinger);
    m.moved = atomic_load(&writer.done);

    char *log = harness_server_log_read(s);
    const char *begun = log_line(log, "checkpoint_start");
    const char *done = log_line(log, "checkpoint_serialized");
    cr_assert(begun != NULL && done != NULL, "checkpoint_start/_serialized not logged");
    m.serialize_us = line_field(done, "serialize_us");
    m.slices = line_field(done, "slices");
    m.objects = line_field(done, "objects");
    uint64_t from = line_unix_us(begun), to = line_unix_us(done) + 1000; /* ms resolution */
    free(log);
    for (int i = 0; i < atomic_load(&pinger.done); i++) {
        const ping_t *p = &pings[i];
        if (p->started_unix_us > to || p->started_unix_us + p->rtt_us < from)
            continue;
        m.pings++;
        if (p->rtt_us > m.rtt_us_max)
            m.rtt_us_max = p->rtt_us;
    }
    return m;
}

Test(checkpoint_slices, pings_are_answered_while_a_large_dirty_set_is_serialized, .timeout = 900)
{
    /* only server.checkpoint takes checkpoints here */
    harness_server_t *s = harness_server_start("--checkpoint-interval-s 0 --checkpoint-wal-bytes 0 "
                                               "--checkpoint-dirty-max 0 --log-level debug");
    allot_client_t *c = harness_connect(s);
    allot_client_set_timeout(c, 120000);
    allot_reply_t r = {0};
    harness_call_ok(c, "location.put", "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":1,\"lon\":1}",
                    &r);
    ping_t *pings = calloc(PINGS_MAX, sizeof(*pings));
    cr_assert_not_null(pings);
    /* The machine is shared and noisy: a thread may lose the CPU for a while. Serializing in one
     * go makes every attempt fail (the ping that waits for it waits about serialize_us); a few
     * attempts tell that apart from a scheduling hiccup. */
    measure_t m;
    bool responsive = false;
    for (int attempt = 1; attempt <= 3 && !responsive; attempt++) {
        m = checkpoint_under_load(s, c, pings);
        fprintf(stderr,
                "attempt %d: %d SKUs serialized in %lld us in %lld slices (%lld records); "
                "%d writes meanwhile; %u pings overlapped it, the slowest took %u us\n",
                attempt, SKUS, m.serialize_us, m.slices, m.objects, m.moved, m.pings, m.rtt_us_max);
        cr_assert_geq(m.objects, SKUS, "every SKU is in the checkpoint");
        cr_assert_gt(m.slices, SKUS / 2000 / 2, "serialized in slices, not in one go");
        cr_assert_gt(m.moved, 0, "writes were acknowledged while it was serialized");
        /* the loop kept answering: the worst ping is a small part of the whole serialization */
        responsive = m.pings >= 10 && (uint64_t)m.rtt_us_max * 4 < (uint64_t)m.serialize_us;
    }
    free(pings);
    cr_assert(responsive, "a ping waited %u us while serializing took %lld us", m.rtt_us_max,
              m.serialize_us);

    harness_call_ok(c, "stock.set", "{\"sku\":\"S000000\",\"location\":\"W1\",\"on_hand\":9}", &r);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_kill9(s);
    harness_server_restart(s);
    c = harness_connect(s);
    allot_client_set_timeout(c, 120000);
    harness_call_ok(c, "server.info", "{}", &r);
    cr_assert_eq(harness_reply_int(&r, "checkpoint_lsn"), m.checkpoint_lsn,
                 "recovery used the checkpoint");
    allot_reply_free(&r);
    assert_every_write_present(c, m.moved);
    allot_client_close(c);
    harness_server_destroy(s);
}
