/* drive.c - a pipelined load driver over liballot, in one thread multiplexed with poll().
 *
 * Every connection has `pipeline` slots; each slot has at most one request in flight and issues
 * its next request when the reply arrives (closed loop), or, when a rate is set, when the global
 * token bucket allows (so that a checkpoint run does not dirty more than it must). Latency is
 * measured per request from allot_client_send to the reply, in microseconds, into the current
 * phase. A probe connection pings once per millisecond (reads are answered without waiting for
 * the WAL, so a ping's round trip measures how long the loop took to get to it).
 */
#include <inttypes.h>
#include <msgpack.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "rb.h"

#define PHASES 3

typedef enum { W_RESERVE_RELEASE, W_ADJUST_SWEEP, W_SEED_SET } workload_t;
typedef enum { S_IDLE, S_PARKED, S_BUSY } slot_state_t;

typedef struct slot {
    uint32_t msgid;
    uint64_t sent_ns;
    uint32_t cart;
    uint8_t state;
    bool releasing; /* the request in flight is a release */
} slot_t;

typedef struct conn {
    allot_client_t *c;
    slot_t *slots;
    uint32_t busy;
    bool sent;
} conn_t;

typedef struct engine {
    conn_t *conns;
    uint32_t nconns, pipeline;
    workload_t workload;
    uint32_t skus, locations, hot_skus;
    uint64_t sweep_next, sweep_end, sweep_offset;
    uint32_t cart_next;
    uint32_t run_id;
    uint64_t rng;
    msgpack_sbuffer buf;
    int phase;
    bool stop;
    /* rate limit: requests/s (0 = closed loop) */
    double rate;
    double rate_t0;
    uint64_t issued;
    /* results */
    rb_samples_t lat[PHASES];
    rb_samples_t ping[PHASES];
    uint64_t done[PHASES], reserves[PHASES];
    double phase_t0[PHASES], phase_t1[PHASES];
    uint64_t errors;
    char first_error[320];
    /* probe and admin */
    allot_client_t *probe;
    bool probe_busy;
    uint64_t probe_sent_ns;
    allot_client_t *admin;
    bool admin_busy;
    uint32_t admin_msgid;
    uint64_t admin_sent_ns, admin_done_ns;
    bool admin_error;
    bool failed;
} engine_t;

static uint64_t rng_next(engine_t *e)
{
    uint64_t x = e->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return e->rng = x;
}

static allot_client_t *connect_client(uint16_t port)
{
    allot_client_t *c = allot_client_create();
    if (c == NULL)
        return NULL;
    if (allot_client_connect(c, "127.0.0.1", port, 60000) != 0) {
        fprintf(stderr, "drive: connect: %s\n", allot_client_last_error(c));
        allot_client_close(c);
        return NULL;
    }
    return c;
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pk_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    pk_str(pk, k);
    pk_str(pk, v);
}

static void pk_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    pk_str(pk, k);
    msgpack_pack_int64(pk, v);
}

/* Build the slot's next request into e->buf; returns the method. NULL: nothing to do. */
static const char *next_request(engine_t *e, slot_t *s)
{
    msgpack_packer pk;
    e->buf.size = 0;
    msgpack_packer_init(&pk, &e->buf, msgpack_sbuffer_write);
    char sku[32], loc[32], id[48];
    switch (e->workload) {
    case W_RESERVE_RELEASE:
        if (s->releasing) {
            snprintf(id, sizeof(id), "rb%08x-%u", e->run_id, s->cart);
            msgpack_pack_map(&pk, 1);
            pk_kv_str(&pk, "id", id);
            return "reservation.release";
        }
        s->cart = e->cart_next++;
        snprintf(id, sizeof(id), "rb%08x-%u", e->run_id, s->cart);
        snprintf(sku, sizeof(sku), RB_SKU_FMT, (unsigned)(rng_next(e) % e->hot_skus));
        msgpack_pack_map(&pk, 3);
        pk_kv_str(&pk, "id", id);
        pk_str(&pk, "lines");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 2);
        pk_kv_str(&pk, "sku", sku);
        pk_kv_int(&pk, "qty", 1);
        pk_kv_int(&pk, "ttl_s", 900);
        return "reserve";
    case W_ADJUST_SWEEP:
        if (e->sweep_next >= e->sweep_end)
            return NULL;
        snprintf(sku, sizeof(sku), RB_SKU_FMT,
                 (unsigned)((e->sweep_offset + e->sweep_next++) % e->skus));
        msgpack_pack_map(&pk, 3);
        pk_kv_str(&pk, "sku", sku);
        pk_kv_str(&pk, "location", "LOC-00");
        pk_kv_int(&pk, "delta", 1);
        return "stock.adjust";
    case W_SEED_SET: {
        if (e->sweep_next >= e->sweep_end)
            return NULL;
        uint64_t i = e->sweep_next++;
        snprintf(sku, sizeof(sku), RB_SKU_FMT, (unsigned)(i / e->locations));
        snprintf(loc, sizeof(loc), RB_LOCATION_FMT, (unsigned)(i % e->locations));
        msgpack_pack_map(&pk, 3);
        pk_kv_str(&pk, "sku", sku);
        pk_kv_str(&pk, "location", loc);
        pk_kv_int(&pk, "on_hand", 1000000000);
        return "stock.set";
    }
    }
    return NULL;
}

static bool token_available(engine_t *e)
{
    if (e->rate <= 0)
        return true;
    return (double)e->issued < (rb_now_s() - e->rate_t0) * e->rate;
}

static void slot_issue(engine_t *e, conn_t *cn, slot_t *s)
{
    if (e->stop) {
        s->state = S_IDLE;
        return;
    }
    if (!token_available(e)) {
        s->state = S_PARKED;
        return;
    }
    const char *method = next_request(e, s);
    if (method == NULL) {
        s->state = S_IDLE;
        return;
    }
    if (allot_client_send(cn->c, method, e->buf.data, e->buf.size, &s->msgid) != 0) {
        fprintf(stderr, "drive: send: %s\n", allot_client_last_error(cn->c));
        e->failed = true;
        s->state = S_IDLE;
        return;
    }
    e->issued++;
    s->sent_ns = rb_now_ns();
    s->state = S_BUSY;
    cn->busy++;
    cn->sent = true;
}

static void on_reply(engine_t *e, conn_t *cn, allot_reply_t *r)
{
    slot_t *s = NULL;
    for (uint32_t i = 0; i < e->pipeline; i++)
        if (cn->slots[i].state == S_BUSY && cn->slots[i].msgid == r->msgid) {
            s = &cn->slots[i];
            break;
        }
    if (s == NULL)
        return;
    uint64_t now = rb_now_ns();
    rb_samples_add(&e->lat[e->phase], (now - s->sent_ns) / 1000);
    e->done[e->phase]++;
    cn->busy--;
    s->state = S_IDLE;
    if (r->is_error) {
        if (e->errors++ == 0)
            snprintf(e->first_error, sizeof(e->first_error), "%s: %s", r->code, r->message);
        s->releasing = false;
    } else if (e->workload == W_RESERVE_RELEASE) {
        e->reserves[e->phase] += !s->releasing;
        s->releasing = !s->releasing;
    }
    slot_issue(e, cn, s);
}

static int engine_init(engine_t *e, uint16_t port, uint32_t nconns, uint32_t pipeline,
                       workload_t workload)
{
    memset(e, 0, sizeof(*e));
    e->nconns = nconns;
    e->pipeline = pipeline;
    e->workload = workload;
    e->run_id = (uint32_t)(rb_now_ns() ^ ((uint64_t)getpid() << 16));
    e->rng = 0x2545F4914F6CDD1Dull ^ e->run_id;
    msgpack_sbuffer_init(&e->buf);
    e->conns = calloc(nconns, sizeof(conn_t));
    if (e->conns == NULL)
        return -1;
    for (uint32_t i = 0; i < nconns; i++) {
        e->conns[i].c = connect_client(port);
        e->conns[i].slots = calloc(pipeline, sizeof(slot_t));
        if (e->conns[i].c == NULL || e->conns[i].slots == NULL)
            return -1;
        allot_client_set_timeout(e->conns[i].c, 120000);
    }
    return 0;
}

static void engine_free(engine_t *e)
{
    for (uint32_t i = 0; i < e->nconns; i++) {
        allot_client_close(e->conns[i].c);
        free(e->conns[i].slots);
    }
    free(e->conns);
    allot_client_close(e->probe);
    allot_client_close(e->admin);
    for (int p = 0; p < PHASES; p++) {
        rb_samples_free(&e->lat[p]);
        rb_samples_free(&e->ping[p]);
    }
    msgpack_sbuffer_destroy(&e->buf);
}

static void engine_start(engine_t *e)
{
    e->rate_t0 = e->phase_t0[0] = rb_now_s();
    for (uint32_t i = 0; i < e->nconns; i++) {
        for (uint32_t j = 0; j < e->pipeline; j++)
            slot_issue(e, &e->conns[i], &e->conns[i].slots[j]);
        if (e->conns[i].sent && allot_client_flush(e->conns[i].c) != 0)
            e->failed = true;
        e->conns[i].sent = false;
    }
}

static uint64_t engine_inflight(const engine_t *e)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < e->nconns; i++)
        n += e->conns[i].busy;
    return n;
}

static void engine_set_phase(engine_t *e, int phase)
{
    double now = rb_now_s();
    e->phase_t1[e->phase] = now;
    e->phase = phase;
    e->phase_t0[phase] = now;
}

static void drain_client(engine_t *e, conn_t *cn)
{
    allot_reply_t r = {0};
    do {
        if (allot_client_recv(cn->c, &r) != 0) {
            fprintf(stderr, "drive: recv: %s\n", allot_client_last_error(cn->c));
            e->failed = true;
            break;
        }
        on_reply(e, cn, &r);
    } while (cn->busy > 0 && allot_client_buffered_bytes(cn->c) > 0);
    allot_reply_free(&r);
}

/* One poll round (at most timeout_ms). */
static void engine_step(engine_t *e, int timeout_ms)
{
    struct pollfd fds[1100];
    uint32_t n = 0;
    uint32_t map[1100];
    for (uint32_t i = 0; i < e->nconns && n < 1024; i++)
        if (e->conns[i].busy > 0) {
            fds[n] = (struct pollfd){allot_client_fd(e->conns[i].c), POLLIN, 0};
            map[n++] = i;
        }
    int probe_at = -1, admin_at = -1;
    if (e->probe != NULL && e->probe_busy) {
        probe_at = (int)n;
        fds[n++] = (struct pollfd){allot_client_fd(e->probe), POLLIN, 0};
    }
    if (e->admin != NULL && e->admin_busy) {
        admin_at = (int)n;
        fds[n++] = (struct pollfd){allot_client_fd(e->admin), POLLIN, 0};
    }
    bool parked = e->rate > 0;
    if (poll(fds, n, (parked || e->probe != NULL) ? (timeout_ms < 1 ? timeout_ms : 1)
                                                   : timeout_ms) < 0)
        return;
    for (uint32_t k = 0; k < n; k++) {
        if ((int)k == probe_at || (int)k == admin_at || fds[k].revents == 0)
            continue;
        conn_t *cn = &e->conns[map[k]];
        drain_client(e, cn);
    }
    allot_reply_t r = {0};
    if (probe_at >= 0 && fds[probe_at].revents != 0) {
        if (allot_client_recv(e->probe, &r) == 0) {
            rb_samples_add(&e->ping[e->phase], (rb_now_ns() - e->probe_sent_ns) / 1000);
            e->probe_busy = false;
        } else
            e->failed = true;
    }
    if (admin_at >= 0 && fds[admin_at].revents != 0) {
        if (allot_client_recv(e->admin, &r) == 0 && r.msgid == e->admin_msgid) {
            e->admin_done_ns = rb_now_ns();
            e->admin_busy = false;
            if (r.is_error) {
                e->admin_error = true;
                fprintf(stderr, "drive: admin: %s %s\n", r.code, r.message);
            }
        }
    }
    allot_reply_free(&r);
    /* parked slots (rate limit) */
    if (parked && !e->stop)
        for (uint32_t i = 0; i < e->nconns; i++)
            for (uint32_t j = 0; j < e->pipeline && token_available(e); j++)
                if (e->conns[i].slots[j].state == S_PARKED)
                    slot_issue(e, &e->conns[i], &e->conns[i].slots[j]);
    for (uint32_t i = 0; i < e->nconns; i++)
        if (e->conns[i].sent) {
            if (allot_client_flush(e->conns[i].c) != 0)
                e->failed = true;
            e->conns[i].sent = false;
        }
    if (e->probe != NULL && !e->probe_busy && !e->stop &&
        rb_now_ns() - e->probe_sent_ns >= 1000000) {
        uint32_t id;
        e->probe_sent_ns = rb_now_ns();
        if (allot_client_send(e->probe, "ping", NULL, 0, &id) == 0 &&
            allot_client_flush(e->probe) == 0)
            e->probe_busy = true;
        else
            e->failed = true;
    }
}

static void engine_run_for(engine_t *e, double seconds)
{
    double end = rb_now_s() + seconds;
    while (!e->failed && rb_now_s() < end)
        engine_step(e, 5);
}

static void engine_drain(engine_t *e)
{
    e->stop = true;
    double end = rb_now_s() + 120;
    while (!e->failed && (engine_inflight(e) > 0 || e->probe_busy) && rb_now_s() < end)
        engine_step(e, 5);
}

/* ---- server.stats -------------------------------------------------------------------------- */

typedef struct stats {
    int64_t loop_count, loop_p99, loop_max;
    int64_t wal_batches, wal_fdatasyncs, wal_bytes;
    int64_t cp_count, cp_last_ms;
    int64_t rss;
} stats_t;

static int64_t get_int(const msgpack_object *map, const char *a, const char *b)
{
    const msgpack_object *o = allot_object_map_get(map, a);
    if (o != NULL && b != NULL)
        o = allot_object_map_get(o, b);
    if (o == NULL)
        return -1;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return -1;
}

static int stats_get(allot_client_t *c, stats_t *s)
{
    allot_reply_t r = {0};
    int rc = allot_client_call(c, "server.stats", NULL, 0, &r);
    if (rc != 0 || r.is_error) {
        fprintf(stderr, "drive: server.stats: %s\n",
                rc != 0 ? allot_client_last_error(c) : r.message);
        allot_reply_free(&r);
        return -1;
    }
    s->loop_count = get_int(&r.result, "loop_iteration", "count");
    s->loop_p99 = get_int(&r.result, "loop_iteration", "p99_us");
    s->loop_max = get_int(&r.result, "loop_iteration", "max_us");
    s->wal_batches = get_int(&r.result, "wal", "batches");
    s->wal_fdatasyncs = get_int(&r.result, "wal", "fdatasyncs");
    s->wal_bytes = get_int(&r.result, "wal", "bytes_written");
    s->cp_count = get_int(&r.result, "checkpoint", "count");
    s->cp_last_ms = get_int(&r.result, "checkpoint", "last_duration_ms");
    s->rss = get_int(&r.result, "rss_bytes", NULL);
    allot_reply_free(&r);
    return 0;
}

/* ---- seeding ---------------------------------------------------------------------------------- */

int rb_seed(uint16_t port, uint32_t skus, uint32_t locations)
{
    allot_client_t *c = connect_client(port);
    if (c == NULL)
        return -1;
    for (uint32_t l = 0; l < locations; l++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"id\": \"" RB_LOCATION_FMT "\", \"type\": \"warehouse\", \"lat\": 40.0, \"lon\": -74.0}",
                 l);
        allot_reply_t r = {0};
        if (allot_client_call_json(c, "location.put", json, &r) != 0 || r.is_error) {
            fprintf(stderr, "seed: location.put: %s\n", r.is_error ? r.message : "I/O");
            allot_reply_free(&r);
            allot_client_close(c);
            return -1;
        }
        allot_reply_free(&r);
    }
    allot_client_close(c);
    engine_t e;
    if (engine_init(&e, port, 4, 64, W_SEED_SET) != 0)
        return -1;
    e.skus = skus;
    e.locations = locations;
    e.sweep_end = (uint64_t)skus * locations;
    engine_start(&e);
    while (!e.failed && engine_inflight(&e) > 0)
        engine_step(&e, 100);
    int rc = e.failed || e.errors ? -1 : 0;
    if (e.errors)
        fprintf(stderr, "seed: %" PRIu64 " errors, first: %s\n", e.errors, e.first_error);
    engine_free(&e);
    return rc;
}

/* ---- throughput ------------------------------------------------------------------------------- */

int rb_throughput(uint16_t port, pid_t server_pid, uint32_t conns, uint32_t pipeline,
                  double seconds, uint32_t skus, const char *label)
{
    engine_t e;
    allot_client_t *admin = connect_client(port);
    if (admin == NULL || engine_init(&e, port, conns, pipeline, W_RESERVE_RELEASE) != 0)
        return -1;
    e.skus = e.hot_skus = skus;
    stats_t s0, s1;
    engine_start(&e);
    engine_run_for(&e, 1.0); /* warm-up, phase 0 */
    stats_get(admin, &s0);
    double cpu_server0 = rb_proc_cpu_s(server_pid), cpu_self0 = rb_proc_cpu_s(getpid());
    engine_set_phase(&e, 1);
    engine_run_for(&e, seconds);
    engine_set_phase(&e, 2);
    double cpu_server = rb_proc_cpu_s(server_pid) - cpu_server0;
    double cpu_self = rb_proc_cpu_s(getpid()) - cpu_self0;
    stats_get(admin, &s1);
    engine_drain(&e);
    double dt = e.phase_t1[1] - e.phase_t0[1];
    rb_samples_t *l = &e.lat[1];
    uint64_t batches = (uint64_t)(s1.wal_batches - s0.wal_batches);
    uint64_t syncs = (uint64_t)(s1.wal_fdatasyncs - s0.wal_fdatasyncs);
    printf("RESULT throughput mode=%s conns=%u pipeline=%u seconds=%.1f requests=%" PRIu64
           " requests_per_s=%.0f reserves_per_s=%.0f p50_us=%u p99_us=%u p999_us=%u max_us=%u "
           "errors=%" PRIu64 " wal_batches=%" PRIu64 " fdatasyncs=%" PRIu64
           " records_per_batch=%.1f wal_bytes_per_s=%.0f allotd_cpu=%.0f%% driver_cpu=%.0f%%\n",
           label, conns, pipeline, dt, e.done[1], (double)e.done[1] / dt,
           (double)e.reserves[1] / dt, rb_samples_pct(l, 50), rb_samples_pct(l, 99),
           rb_samples_pct(l, 99.9), rb_samples_pct(l, 100), e.errors, batches, syncs,
           batches ? (double)e.done[1] / (double)batches : 0.0,
           (double)(s1.wal_bytes - s0.wal_bytes) / dt, 100 * cpu_server / dt, 100 * cpu_self / dt);
    if (e.errors)
        printf("  first error: %s\n", e.first_error);
    int rc = e.failed ? -1 : 0;
    engine_free(&e);
    allot_client_close(admin);
    return rc;
}

/* ---- checkpoint cost and loop stall ------------------------------------------------------------ */

static void print_phase(engine_t *e, int p, const char *name)
{
    double dt = e->phase_t1[p] - e->phase_t0[p];
    printf("    %-7s %5.2f s  writes %6" PRIu64 " (%6.0f/s) p50 %6u p99 %7u max %7u us | "
           "ping n=%5zu p50 %6u p99 %7u max %7u us\n",
           name, dt, e->done[p], dt > 0 ? (double)e->done[p] / dt : 0.0,
           rb_samples_pct(&e->lat[p], 50), rb_samples_pct(&e->lat[p], 99),
           rb_samples_pct(&e->lat[p], 100), e->ping[p].n, rb_samples_pct(&e->ping[p], 50),
           rb_samples_pct(&e->ping[p], 99), rb_samples_pct(&e->ping[p], 100));
}

static int dirty_skus(uint16_t port, uint32_t skus, uint64_t offset, uint32_t n)
{
    engine_t e;
    if (engine_init(&e, port, 4, 64, W_ADJUST_SWEEP) != 0)
        return -1;
    e.skus = skus;
    e.sweep_offset = offset;
    e.sweep_end = n;
    double t0 = rb_now_s();
    engine_start(&e);
    while (!e.failed && engine_inflight(&e) > 0)
        engine_step(&e, 100);
    double dt = rb_now_s() - t0;
    printf("  dirtied %u SKUs with stock.adjust in %.1f s (%.0f/s, errors %" PRIu64 ")\n", n, dt,
           n / dt, e.errors);
    int rc = e.failed ? -1 : 0;
    engine_free(&e);
    return rc;
}

int rb_checkpoint_runs(uint16_t port, const char *log_path, uint32_t skus, const uint32_t *dirty,
                       size_t dirty_count, uint32_t load_rate)
{
    uint64_t offset = 0;
    allot_client_t *admin_stats = connect_client(port);
    if (admin_stats == NULL)
        return -1;
    allot_client_set_timeout(admin_stats, 600000);
    for (size_t k = 0; k < dirty_count; k++) {
        if (dirty[k] > 0) {
            if (dirty_skus(port, skus, offset, dirty[k]) != 0)
                return -1;
            offset += dirty[k];
        }
        engine_t e;
        if (engine_init(&e, port, 4, 4, W_RESERVE_RELEASE) != 0)
            return -1;
        e.skus = skus;
        e.hot_skus = 1000; /* the background load dirties at most 1000 SKUs (+ its holds) */
        e.rate = load_rate;
        e.probe = connect_client(port);
        e.admin = connect_client(port);
        if (e.probe == NULL || e.admin == NULL)
            return -1;
        allot_client_set_timeout(e.admin, 600000);
        stats_t s0, s1;
        stats_get(admin_stats, &s0);
        engine_start(&e);
        engine_run_for(&e, 2.0); /* phase 0: before */
        engine_set_phase(&e, 1);
        e.admin_sent_ns = rb_now_ns();
        if (allot_client_send(e.admin, "server.checkpoint", NULL, 0, &e.admin_msgid) != 0 ||
            allot_client_flush(e.admin) != 0)
            return -1;
        e.admin_busy = true;
        while (!e.failed && e.admin_busy)
            engine_step(&e, 5);
        engine_set_phase(&e, 2);
        engine_run_for(&e, 2.0); /* phase 2: after */
        engine_drain(&e);
        e.phase_t1[2] = rb_now_s();
        stats_get(admin_stats, &s1);
        char start_line[2400] = "", done_line[2400] = "";
        rb_log_event_ms(log_path, "checkpoint_start", start_line, sizeof(start_line), true);
        int64_t done_ms = rb_log_event_ms(log_path, "checkpoint", done_line, sizeof(done_line),
                                          true);
        (void)done_ms;
        double call_s = (double)(e.admin_done_ns - e.admin_sent_ns) / 1e9;
        printf("RESULT checkpoint dirty_requested=%u objects=%lld batch_bytes=%lld puts=%lld "
               "call_s=%.3f last_duration_ms=%" PRId64 " loop_max_before_us=%" PRId64
               " loop_max_after_us=%" PRId64 " loop_p99_cumulative_us=%" PRId64
               " during_write_max_us=%u during_ping_max_us=%u during_ping_p99_us=%u "
               "before_ping_p99_us=%u errors=%" PRIu64 "\n",
               dirty[k], rb_log_field(start_line, "objects"), rb_log_field(start_line, "bytes"),
               rb_log_field(done_line, "puts"), call_s, s1.cp_last_ms, s0.loop_max, s1.loop_max,
               s1.loop_p99, rb_samples_pct(&e.lat[1], 100), rb_samples_pct(&e.ping[1], 100),
               rb_samples_pct(&e.ping[1], 99), rb_samples_pct(&e.ping[0], 99), e.errors);
        print_phase(&e, 0, "before");
        print_phase(&e, 1, "during");
        print_phase(&e, 2, "after");
        if (e.errors)
            printf("  first error: %s\n", e.first_error);
        fflush(stdout);
        bool failed = e.failed || e.admin_error;
        engine_free(&e);
        if (failed)
            return -1;
    }
    allot_client_close(admin_stats);
    return 0;
}
