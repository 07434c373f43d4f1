/* fair.c - allot-bench --scenario flashsale --fair: a sale through the waiting room. Customers
 * join the hot SKU's queue (their ticket numbers are the join order), poll queue.status with
 * back-off, and once admitted try to take two units (refused: max_per_customer is 1) and then
 * one with their token. The report sets the order of admission against the order of joining,
 * the measured admission rate against the configured one, and the limit holding. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "client/client.h"

#define FAIR_TOKEN_TTL_S   300
#define FAIR_POLL_MIN_NS   (250ull * 1000 * 1000) /* the server admits every 250 ms */
#define FAIR_POLL_MAX_NS   (4000ull * 1000 * 1000)
#define FAIR_IDLE_SLEEP_NS (10ull * 1000 * 1000)

typedef struct fair_customer {
    uint64_t ticket;       /* the join order */
    int64_t admitted_ms;   /* from the token's expiry; 0 until admitted */
    uint64_t next_poll_ns; /* when to ask again */
    uint64_t backoff_ns;
    bool done, bought, limit_refused;
    char ticket_text[24];
} fair_customer_t;

typedef struct fair_run {
    const bench_config_t *config;
    char sku[64];
    fair_customer_t *customers;
    uint64_t polls;
    int64_t opened_ms;    /* wall clock when the real rate was set */
    pthread_mutex_t lock; /* polls, and the first error */
    char error[512];
} fair_run_t;

typedef struct fair_worker {
    fair_run_t *run;
    uint32_t first, step; /* customers first, first + step, ... */
    bool joining;         /* the first phase: join; the second: poll and buy */
    pthread_t thread;
} fair_worker_t;

static int64_t map_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = allot_object_map_get(map, key);
    if (v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)v->via.u64;
    return v != NULL && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? v->via.i64 : -1;
}

static bool map_str(const msgpack_object *map, const char *key, char *out, size_t bytes)
{
    const msgpack_object *v = allot_object_map_get(map, key);
    if (v == NULL || v->type != MSGPACK_OBJECT_STR || v->via.str.size >= bytes)
        return false;
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return true;
}

static void fair_fail(fair_run_t *run, const char *what, const allot_reply_t *r)
{
    pthread_mutex_lock(&run->lock);
    if (run->error[0] == '\0')
        snprintf(run->error, sizeof(run->error), "%s: %s %s", what, r ? r->code : "",
                 r ? r->message : "transport error");
    pthread_mutex_unlock(&run->lock);
}

static allot_client_t *fair_connect(const bench_config_t *config)
{
    allot_client_t *c = allot_client_create();
    if (c != NULL && allot_client_connect(c, config->host, config->port, 30000) != 0) {
        allot_client_close(c);
        c = NULL;
    }
    return c;
}

static bool fair_call(fair_run_t *run, allot_client_t *c, const char *method, const char *json,
                      allot_reply_t *r)
{
    if (allot_client_call_json(c, method, json, r) == 0)
        return true;
    fair_fail(run, method, NULL);
    return false;
}

static void fair_settings_json(const fair_run_t *run, uint32_t rate_per_s, char *json, size_t bytes)
{
    snprintf(json, bytes,
             "{\"sku\":\"%s\",\"max_per_customer\":1,\"queue\":{\"rate_per_s\":%u,"
             "\"token_ttl_s\":%d}}",
             run->sku, rate_per_s, FAIR_TOKEN_TTL_S);
}

/* The sale opens: the queue admits at the configured rate from now. */
static int fair_open(fair_run_t *run)
{
    allot_client_t *c = fair_connect(run->config);
    if (c == NULL)
        return -1;
    char json[512];
    fair_settings_json(run, run->config->queue_rate_per_s, json, sizeof(json));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    run->opened_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    allot_reply_t r = {0};
    int rc = fair_call(run, c, "sku.put", json, &r) && !r.is_error ? 0 : -1;
    if (rc != 0)
        fair_fail(run, "sku.put", &r);
    allot_reply_free(&r);
    allot_client_close(c);
    return rc;
}

static int fair_setup(fair_run_t *run)
{
    const bench_config_t *config = run->config;
    allot_client_t *c = fair_connect(config);
    if (c == NULL)
        return -1;
    snprintf(run->sku, sizeof(run->sku), "FAIR-%" PRIx64, config->run_nonce);
    char json[512];
    allot_reply_t r = {0};
    int rc = 0;
    const char *steps[3][2] = {{"location.put", NULL}, {"stock.set", NULL}, {"sku.put", NULL}};
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (i == 0)
            snprintf(json, sizeof(json),
                     "{\"id\":\"FAIR-LOC\",\"type\":\"warehouse\",\"lat\":50.1,\"lon\":8.7}");
        else if (i == 1)
            snprintf(json, sizeof(json),
                     "{\"sku\":\"%s\",\"location\":\"FAIR-LOC\",\"on_hand\":%" PRId64 "}", run->sku,
                     config->flash_units);
        else
            fair_settings_json(run, 1, json, sizeof(json)); /* the real rate once all joined */
        if (!fair_call(run, c, steps[i][0], json, &r) || r.is_error) {
            fair_fail(run, steps[i][0], &r);
            rc = -1;
        }
    }
    allot_reply_free(&r);
    allot_client_close(c);
    return rc;
}

/* ---- one customer's steps -------------------------------------------------------------------- */

static void fair_join(fair_run_t *run, allot_client_t *c, uint32_t i, allot_reply_t *r)
{
    fair_customer_t *k = &run->customers[i];
    char json[256];
    snprintf(json, sizeof(json), "{\"sku\":\"%s\",\"customer\":\"fair-%u\"}", run->sku, i);
    if (!fair_call(run, c, "queue.join", json, r) || r->is_error ||
        !map_str(&r->result, "ticket", k->ticket_text, sizeof(k->ticket_text))) {
        fair_fail(run, "queue.join", r);
        k->done = true;
        return;
    }
    k->ticket = strtoull(k->ticket_text, NULL, 16);
    k->backoff_ns = FAIR_POLL_MIN_NS;
}

/* Admitted: two units (LIMIT_EXCEEDED expected: the token is not used by a refusal), then one. */
static void fair_buy(fair_run_t *run, allot_client_t *c, uint32_t i, const char *token,
                     allot_reply_t *r)
{
    fair_customer_t *k = &run->customers[i];
    char json[512];
    for (int qty = 2; qty >= 1; qty--) {
        snprintf(json, sizeof(json),
                 "{\"id\":\"fair-%" PRIx64 "-%u-%d\",\"customer\":\"fair-%u\",\"token\":\"%s\","
                 "\"lines\":[{\"sku\":\"%s\",\"qty\":%d}]}",
                 run->config->run_nonce, i, qty, i, token, run->sku, qty);
        if (!fair_call(run, c, "reserve", json, r))
            return;
        if (qty == 2)
            k->limit_refused = r->is_error && strcmp(r->code, "LIMIT_EXCEEDED") == 0;
        else if (!r->is_error)
            k->bought = true;
        else if (strcmp(r->code, "INSUFFICIENT_STOCK") != 0)
            fair_fail(run, "reserve", r);
    }
}

static void fair_poll(fair_run_t *run, allot_client_t *c, uint32_t i, uint64_t now_ns,
                      allot_reply_t *r)
{
    fair_customer_t *k = &run->customers[i];
    char json[128], token[64];
    snprintf(json, sizeof(json), "{\"ticket\":\"%s\"}", k->ticket_text);
    if (!fair_call(run, c, "queue.status", json, r) || r->is_error) {
        fair_fail(run, "queue.status", r);
        k->done = true;
        return;
    }
    if (!map_str(&r->result, "token", token, sizeof(token))) {
        uint64_t wait_ns = (uint64_t)map_int(&r->result, "estimated_wait_ms") * 1000000u;
        uint64_t pause = wait_ns > k->backoff_ns ? wait_ns : k->backoff_ns;
        k->next_poll_ns = now_ns + (pause < FAIR_POLL_MAX_NS ? pause : FAIR_POLL_MAX_NS);
        k->backoff_ns = k->backoff_ns * 2 < FAIR_POLL_MAX_NS ? k->backoff_ns * 2 : FAIR_POLL_MAX_NS;
        return;
    }
    k->admitted_ms = map_int(&r->result, "expires_at_ms") - FAIR_TOKEN_TTL_S * 1000;
    fair_buy(run, c, i, token, r);
    k->done = true;
}

static void *fair_worker_main(void *arg)
{
    fair_worker_t *w = arg;
    fair_run_t *run = w->run;
    allot_client_t *c = fair_connect(run->config);
    allot_reply_t r = {0};
    if (c == NULL) {
        fair_fail(run, "connect", NULL);
        return NULL;
    }
    uint32_t n = run->config->customers, left = 0;
    for (uint32_t i = w->first; i < n; i += w->step, left++)
        if (w->joining)
            fair_join(run, c, i, &r);
    left = w->joining ? 0 : left;
    uint64_t polls = 0;
    while (left > 0 && run->error[0] == '\0') {
        uint64_t now = bench_now_ns();
        bool polled = false;
        left = 0;
        for (uint32_t i = w->first; i < n; i += w->step) {
            fair_customer_t *k = &run->customers[i];
            if (!k->done && k->next_poll_ns <= now) {
                fair_poll(run, c, i, now, &r);
                polls++;
                polled = true;
            }
            left += !k->done;
        }
        if (!polled)
            nanosleep(&(struct timespec){0, FAIR_IDLE_SLEEP_NS}, NULL);
    }
    pthread_mutex_lock(&run->lock);
    run->polls += polls;
    pthread_mutex_unlock(&run->lock);
    allot_reply_free(&r);
    allot_client_close(c);
    return NULL;
}

/* ---- the report ------------------------------------------------------------------------------ */

static int ticket_compare(const void *a, const void *b)
{
    const fair_customer_t *x = a, *y = b;
    return (x->ticket > y->ticket) - (x->ticket < y->ticket);
}

static int fair_report(fair_run_t *run, double seconds, FILE *out)
{
    const bench_config_t *config = run->config;
    uint32_t n = config->customers;
    qsort(run->customers, n, sizeof(*run->customers), ticket_compare); /* join order */
    uint32_t admitted = 0, inversions = 0, bought = 0, out_of_order = 0, limit_refused = 0;
    uint32_t admitted_open = 0; /* after the sale opened at the configured rate */
    int64_t first_ms = INT64_MAX, last_ms = 0, latest_ms = 0;
    for (uint32_t i = 0; i < n; i++) {
        const fair_customer_t *k = &run->customers[i];
        if (k->admitted_ms <= 0)
            continue;
        admitted++;
        inversions += k->admitted_ms < latest_ms; /* admitted before someone who joined earlier */
        latest_ms = k->admitted_ms > latest_ms ? k->admitted_ms : latest_ms;
        if (k->admitted_ms >= run->opened_ms) {
            admitted_open++;
            first_ms = k->admitted_ms < first_ms ? k->admitted_ms : first_ms;
            last_ms = k->admitted_ms > last_ms ? k->admitted_ms : last_ms;
        }
        bought += k->bought;
        out_of_order += k->bought != (i < (uint64_t)config->flash_units);
        limit_refused += k->limit_refused;
    }
    double rate =
        last_ms > first_ms ? (admitted_open - 1) * 1000.0 / (double)(last_ms - first_ms) : 0;
    fprintf(
        out,
        "flashsale fair: %u customers joined, %u admitted in %.1f s (%" PRIu64 " polls)\n"
        "  admission: %u out of join order; %.1f admitted/s measured, %u/s configured\n"
        "  units: %" PRId64 ", bought: %u, buyers outside the first %" PRId64 " in join order: %u\n"
        "  limit 1: %u of %u admitted customers refused a second unit (LIMIT_EXCEEDED)\n",
        n, admitted, seconds, run->polls, inversions, rate, config->queue_rate_per_s,
        config->flash_units, bought, config->flash_units, out_of_order, limit_refused, admitted);
    /* buyers act when their poll sees the token: the order of buying within one admission batch
     * is the clients', so buyers outside the first N are shown, not failed */
    bool ok = run->error[0] == '\0' && admitted == n && inversions == 0 &&
              bought == (uint64_t)config->flash_units && limit_refused == admitted;
    fprintf(out, "flashsale fair: %s%s\n", ok ? "ok" : "FAILED", run->error[0] ? run->error : "");
    return ok ? 0 : 3;
}

int fair_sale_run(const bench_config_t *config, FILE *out)
{
    static fair_run_t run;
    memset(&run, 0, sizeof(run));
    run.config = config;
    pthread_mutex_init(&run.lock, NULL);
    run.customers = calloc(config->customers, sizeof(*run.customers));
    fair_worker_t workers[BENCH_THREADS_MAX];
    uint32_t threads = config->threads < config->customers ? config->threads : config->customers;
    int status = run.customers == NULL ? 1 : fair_setup(&run) != 0 ? 1 : 0;
    uint64_t t0 = bench_now_ns();
    for (int phase = 0; phase < 2 && status == 0; phase++) {
        if (phase == 1 && fair_open(&run) != 0)
            status = 1;
        t0 = phase == 1 ? bench_now_ns() : t0;
        uint32_t started = 0;
        for (uint32_t t = 0; status == 0 && t < threads; t++, started++) {
            workers[t] = (fair_worker_t){&run, t, threads, phase == 0, 0};
            if (pthread_create(&workers[t].thread, NULL, fair_worker_main, &workers[t]) != 0)
                status = 1;
        }
        for (uint32_t t = 0; t < started; t++)
            pthread_join(workers[t].thread, NULL);
        if (run.error[0] != '\0')
            status = 1;
    }
    if (status == 0)
        status = fair_report(&run, (double)(bench_now_ns() - t0) / 1e9, out);
    else
        fprintf(stderr, "allot-bench: flashsale fair: %s\n", run.error);
    free(run.customers);
    pthread_mutex_destroy(&run.lock);
    return status;
}
