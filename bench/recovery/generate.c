/* generate.c - build a large data directory through core + persist, and recover it in-process.
 *
 * Generation (no network):
 *   1. locations and skus x locations positions through allot_stock_set on a fresh state; the
 *      event sink only numbers the records (they would be covered by the checkpoint, and the
 *      server deletes covered WAL segments, so writing them would not change what recovery
 *      reads);
 *   2. one full checkpoint: allot_state_snapshot_each -> checkpoint_store_write at LSN X (the
 *      number of records so far), timed: this is the full-checkpoint cost of the data set;
 *   3. a real wal_t (fsync none, default 64 MiB segments) opened at X + 1, and wal_records
 *      records after it, made by the real writers: 40% stock.adjust, 30% reserve (1 line, qty
 *      1, ttl 86400 s), 30% release of the oldest hold once live_holds are live (stock.adjust
 *      otherwise).
 * In-process recovery: the same calls as allotd's recover() (checkpoint_store_load with
 * allot_event_apply_encoded, allot_state_dirty_clear, wal_replay_preloaded (read-ahead started
 * before the LMDB load) with allot_event_apply_encoded),
 * preceded (split) by passes that only read (LMDB cursor walk; WAL read + CRC) and only decode,
 * so that the time can be attributed to I/O, decoding and applying.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/errors.h"
#include "core/event.h"
#include "core/inventory.h"
#include "core/reservation.h"
#include "core/state.h"
#include "persist/checkpoint.h"
#include "persist/wal.h"
#include "rb.h"

typedef struct gen {
    uv_loop_t loop;
    wal_t *wal;
    uint64_t lsn;
    int64_t now_ms;
    uint64_t durable_lsn;
    uint64_t payload_bytes;
} gen_t;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static int count_sink(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    (void)type, (void)payload;
    gen_t *g = ctx;
    g->lsn++;
    g->payload_bytes += len;
    return 0;
}

static int wal_sink(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    gen_t *g = ctx;
    uint64_t lsn = wal_append(g->wal, type, g->now_ms, payload, len);
    if (lsn == 0)
        return ALLOT_EOVERLOADED;
    g->lsn = lsn;
    g->payload_bytes += len;
    return 0;
}

static void on_durable(wal_t *wal, uint64_t lsn, void *ctx)
{
    (void)wal;
    ((gen_t *)ctx)->durable_lsn = lsn;
}

static void on_fatal(wal_t *wal, int error, const char *message, void *ctx)
{
    (void)wal, (void)ctx;
    fprintf(stderr, "generate: WAL failed: %s: %s\n", allot_error_code(error), message);
    exit(2);
}

static uint64_t dir_bytes(const char *path)
{
    char cmd[RB_PATH_BYTES + 32];
    snprintf(cmd, sizeof(cmd), "du -sb '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    unsigned long long bytes = 0;
    if (p != NULL) {
        if (fscanf(p, "%llu", &bytes) != 1)
            bytes = 0;
        pclose(p);
    }
    return bytes;
}

static uint64_t self_status_kib(const char *field)
{
    return rb_proc_status_kib(getpid(), field);
}

static double cpu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int check(int rc, const char *what, const allot_error_detail_t *detail)
{
    if (rc != 0)
        fprintf(stderr, "generate: %s: %s %s\n", what, allot_error_code(rc),
                detail != NULL ? detail->message : "");
    return rc;
}

int rb_generate(const rb_gen_config_t *cfg)
{
    char path[RB_PATH_BYTES + 32], wal_dir[RB_PATH_BYTES + 8], message[CHECKPOINT_MESSAGE_BYTES_MAX];
    if (mkdir(cfg->dir, 0750) != 0 && errno != EEXIST) {
        perror(cfg->dir);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/%s", cfg->dir, CHECKPOINT_FILE_NAME);
    snprintf(wal_dir, sizeof(wal_dir), "%s/wal", cfg->dir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "generate: %s exists; remove the directory first\n", path);
        return 1;
    }
    if (mkdir(wal_dir, 0750) != 0 && errno != EEXIST) {
        perror(wal_dir);
        return 1;
    }

    gen_t g = {0};
    g.now_ms = rb_wall_ms();
    allot_state_t *state = allot_state_create(NULL);
    if (state == NULL)
        return 1;
    allot_state_set_event_sink(state, count_sink, &g);
    allot_error_detail_t detail;

    /* 1. locations and positions */
    double t0 = rb_now_s();
    char loc_names[100][16];
    uint32_t locations = cfg->locations > 100 ? 100 : cfg->locations;
    for (uint32_t l = 0; l < locations; l++) {
        snprintf(loc_names[l], sizeof(loc_names[l]), RB_LOCATION_FMT, l);
        allot_location_input_t in;
        allot_location_input_defaults(&in);
        in.id = allot_str_from_cstr(loc_names[l]);
        in.lat = 40.0 + l * 0.1;
        in.lon = -74.0 + l * 0.1;
        const allot_location_t *out;
        if (check(allot_location_put(state, &in, &out, &detail), "location.put", &detail))
            return 1;
    }
    char sku_name[32];
    for (uint32_t s = 0; s < cfg->skus; s++) {
        snprintf(sku_name, sizeof(sku_name), RB_SKU_FMT, s);
        for (uint32_t l = 0; l < locations; l++) {
            allot_stock_set_input_t in = {
                .sku = allot_str_from_cstr(sku_name),
                .location = allot_str_from_cstr(loc_names[l]),
                .on_hand = 1000000,
            };
            allot_stock_result_t out;
            if (check(allot_stock_set(state, &in, &out, &detail), "stock.set", &detail))
                return 1;
        }
        if ((s + 1) % 100000 == 0) {
            printf("  positions: %u SKUs x %u locations (%.1f s)\n", s + 1, locations,
                   rb_now_s() - t0);
            fflush(stdout);
        }
    }
    double t_positions = rb_now_s() - t0;
    allot_state_counters_t counters;
    allot_state_counters_get(state, &counters);
    printf("positions built: %" PRIu64 " SKUs, %" PRIu64 " positions in %.2f s (%.0f stock.set/s, "
           "%" PRIu64 " event records, RSS %" PRIu64 " MiB)\n",
           counters.skus, counters.positions, t_positions,
           (double)counters.positions / t_positions, g.lsn, self_status_kib("VmRSS") / 1024);

    /* 2. one full checkpoint at LSN X */
    uint64_t checkpoint_lsn = g.lsn;
    checkpoint_store_t *store;
    if (checkpoint_store_open(path, 0, &store, message, sizeof(message)) != 0) {
        fprintf(stderr, "generate: open %s: %s\n", path, message);
        return 1;
    }
    t0 = rb_now_s();
    checkpoint_batch_t *batch = checkpoint_batch_create(true);
    if (batch == NULL || allot_state_snapshot_each(state, checkpoint_batch_snapshot_cb, batch) != 0 ||
        checkpoint_batch_failed(batch)) {
        fprintf(stderr, "generate: snapshot: out of memory\n");
        return 1;
    }
    double t_serialize = rb_now_s() - t0;
    size_t entries = checkpoint_batch_entries(batch), batch_bytes = checkpoint_batch_bytes(batch);
    t0 = rb_now_s();
    checkpoint_write_stats_t wstats = {0};
    if (checkpoint_store_write(store, &batch, 1, checkpoint_lsn, &wstats, message,
                               sizeof(message)) != 0) {
        fprintf(stderr, "generate: checkpoint write: %s\n", message);
        return 1;
    }
    double t_write = rb_now_s() - t0;
    checkpoint_batch_free(batch);
    checkpoint_store_close(store);
    allot_state_dirty_clear(state);
    struct stat st;
    uint64_t lmdb_bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    printf("RESULT full_checkpoint objects=%zu batch_bytes=%zu serialize_s=%.3f write_s=%.3f "
           "lsn=%" PRIu64 " lmdb_file_bytes=%" PRIu64 " map_grows=%" PRIu64 "\n",
           entries, batch_bytes, t_serialize, t_write, checkpoint_lsn, lmdb_bytes,
           wstats.map_grows);
    fflush(stdout);

    /* 3. the WAL after X */
    if (uv_loop_init(&g.loop) != 0)
        return 1;
    wal_config_t wcfg = {.dir = wal_dir, .fsync_mode = WAL_FSYNC_NONE};
    char wmsg[WAL_MESSAGE_BYTES_MAX];
    if (wal_open(&g.loop, &wcfg, checkpoint_lsn + 1, &g.wal, on_durable, on_fatal, &g, wmsg,
                 sizeof(wmsg)) != 0) {
        fprintf(stderr, "generate: wal_open: %s\n", wmsg);
        return 1;
    }
    allot_state_set_event_sink(state, wal_sink, &g);
    g.payload_bytes = 0;
    uint32_t fifo_cap = cfg->live_holds + 16;
    uint32_t *fifo = calloc(fifo_cap, sizeof(*fifo));
    uint32_t fifo_head = 0, fifo_len = 0, next_reservation = 0;
    uint64_t n_adjust = 0, n_reserve = 0, n_release = 0;
    int64_t base_ms = g.now_ms;
    t0 = rb_now_s();
    for (uint64_t i = 0; i < cfg->wal_records; i++) {
        while (!wal_has_room(g.wal, ALLOT_WAL_HEADROOM_BYTES)) {
            wal_flush(g.wal);
            uv_run(&g.loop, UV_RUN_ONCE);
        }
        g.now_ms = base_ms + (int64_t)(i / 1000);
        unsigned kind = (unsigned)(i % 10);
        uint32_t sku = (uint32_t)(rng_next() % cfg->skus);
        snprintf(sku_name, sizeof(sku_name), RB_SKU_FMT, sku);
        int rc;
        if (kind >= 4 && kind <= 6) {
            char id[32];
            uint32_t r = next_reservation++;
            snprintf(id, sizeof(id), "cart-%09u", r);
            allot_line_input_t line = {allot_str_from_cstr(sku_name), 1};
            allot_reserve_request_t req = {
                .id = allot_str_from_cstr(id),
                .lines = &line,
                .line_count = 1,
                .ttl_s = 86400,
                .method = ALLOT_METHOD_SHIP,
                .policy = ALLOT_POLICY_PRIORITY,
            };
            const allot_reservation_t *out;
            rc = check(allot_reserve(state, &req, g.now_ms, &out, &detail), "reserve", &detail);
            fifo[(fifo_head + fifo_len++) % fifo_cap] = r;
            n_reserve++;
        } else if (kind >= 7 && fifo_len > cfg->live_holds) {
            char id[32];
            snprintf(id, sizeof(id), "cart-%09u", fifo[fifo_head]);
            fifo_head = (fifo_head + 1) % fifo_cap;
            fifo_len--;
            const allot_reservation_t *out;
            rc = check(allot_reservation_release(state, allot_str_from_cstr(id), g.now_ms, &out,
                                                 &detail),
                       "release", &detail);
            n_release++;
        } else {
            allot_stock_adjust_input_t in = {
                .sku = allot_str_from_cstr(sku_name),
                .location = allot_str_from_cstr(loc_names[rng_next() % locations]),
                .delta = (i & 1) ? 1 : -1,
            };
            allot_stock_result_t out;
            rc = check(allot_stock_adjust(state, &in, g.now_ms, &out, &detail), "stock.adjust",
                       &detail);
            n_adjust++;
        }
        if (rc != 0)
            return 1;
        if ((i & 1023) == 1023) {
            wal_flush(g.wal);
            uv_run(&g.loop, UV_RUN_NOWAIT);
        }
        if ((i + 1) % 500000 == 0) {
            printf("  wal: %" PRIu64 " records (%.1f s)\n", i + 1, rb_now_s() - t0);
            fflush(stdout);
        }
    }
    uint64_t last_lsn = wal_last_lsn(g.wal);
    wal_close(g.wal, NULL);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_loop_close(&g.loop);
    double t_wal = rb_now_s() - t0;
    free(fifo);
    allot_state_counters_get(state, &counters);
    printf("RESULT wal records=%" PRIu64 " adjust=%" PRIu64 " reserve=%" PRIu64 " release=%" PRIu64
           " payload_bytes=%" PRIu64 " wal_dir_bytes=%" PRIu64 " first_lsn=%" PRIu64
           " last_lsn=%" PRIu64 " seconds=%.2f\n",
           cfg->wal_records, n_adjust, n_reserve, n_release, g.payload_bytes, dir_bytes(wal_dir),
           checkpoint_lsn + 1, last_lsn, t_wal);
    printf("RESULT state skus=%" PRIu64 " positions=%" PRIu64 " reservations=%" PRIu64
           " tombstones=%" PRIu64 " generator_rss_mib=%" PRIu64 "\n",
           counters.skus, counters.positions, counters.reservations, counters.tombstones,
           self_status_kib("VmHWM") / 1024);
    allot_state_destroy(state);
    return 0;
}

/* ---- in-process recovery ------------------------------------------------------------------ */

typedef struct inproc {
    allot_state_t *state;
    allot_event_scratch_t scratch;
    uint64_t bytes;
    uint64_t records;
    uint64_t by_type[256];
} inproc_t;

static int load_noop(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                     const uint8_t *payload, size_t payload_len)
{
    inproc_t *p = ctx;
    (void)key, (void)type, (void)payload;
    p->bytes += key_len + payload_len;
    p->records++;
    return 0;
}

static int load_decode(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                       const uint8_t *payload, size_t payload_len)
{
    inproc_t *p = ctx;
    (void)key, (void)key_len;
    allot_event_t event;
    return allot_event_decode(type, payload, payload_len, &p->scratch, &event);
}

static int load_apply(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                      const uint8_t *payload, size_t payload_len)
{
    (void)key, (void)key_len;
    return allot_event_apply_encoded(((inproc_t *)ctx)->state, type, payload, payload_len);
}

static int replay_noop(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type,
                       const uint8_t *payload, size_t len)
{
    inproc_t *p = ctx;
    (void)lsn, (void)time_ms, (void)payload;
    p->bytes += len;
    p->records++;
    p->by_type[type]++;
    return 0;
}

static int replay_decode(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type,
                         const uint8_t *payload, size_t len)
{
    (void)lsn, (void)time_ms;
    allot_event_t event;
    return allot_event_decode(type, payload, len, &((inproc_t *)ctx)->scratch, &event);
}

static int replay_apply(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type,
                        const uint8_t *payload, size_t len)
{
    (void)lsn, (void)time_ms;
    return allot_event_apply_encoded(((inproc_t *)ctx)->state, type, payload, len);
}

static int store_pass(const char *path, checkpoint_record_cb cb, inproc_t *p, double *seconds,
                      uint64_t *lsn)
{
    char message[CHECKPOINT_MESSAGE_BYTES_MAX];
    checkpoint_store_t *store;
    double t0 = rb_now_s();
    uint64_t records = 0;
    int rc = checkpoint_store_open(path, 0, &store, message, sizeof(message));
    if (rc == 0) {
        rc = checkpoint_store_load(store, cb, p, &records, message, sizeof(message));
        *lsn = checkpoint_store_lsn(store);
        checkpoint_store_close(store);
    }
    *seconds = rb_now_s() - t0;
    if (rc != 0)
        fprintf(stderr, "inproc: %s: %s %s\n", path, allot_error_code(rc), message);
    return rc;
}

/* preload: NULL, or the read-ahead started before the LMDB load (as allotd's recover()). */
static int wal_pass(const char *wal_dir, wal_preload_t *preload, uint64_t after, wal_record_cb cb,
                    inproc_t *p, double *seconds, wal_replay_result_t *result)
{
    char message[WAL_MESSAGE_BYTES_MAX];
    double t0 = rb_now_s();
    int rc = preload != NULL ? wal_replay_preloaded(preload, after, cb, NULL, p, result, message,
                                                    sizeof(message))
                             : wal_replay(wal_dir, after, cb, p, result, message, sizeof(message));
    *seconds = rb_now_s() - t0;
    if (rc != 0)
        fprintf(stderr, "inproc: replay %s: %s %s\n", wal_dir, allot_error_code(rc), message);
    return rc;
}

int rb_inproc(const char *dir, bool split)
{
    char path[RB_PATH_BYTES + 32], wal_dir[RB_PATH_BYTES + 8];
    snprintf(path, sizeof(path), "%s/%s", dir, CHECKPOINT_FILE_NAME);
    snprintf(wal_dir, sizeof(wal_dir), "%s/wal", dir);
    inproc_t p = {0};
    static wal_replay_result_t result;
    uint64_t lsn = 0;
    double s;
    if (split) {
        if (store_pass(path, load_noop, &p, &s, &lsn) != 0)
            return 1;
        printf("RESULT inproc lmdb_read records=%" PRIu64 " bytes=%" PRIu64
               " seconds=%.3f (%.0f MB/s)\n",
               p.records, p.bytes, s, (double)p.bytes / s / 1e6);
        if (store_pass(path, load_decode, &p, &s, &lsn) != 0)
            return 1;
        printf("RESULT inproc lmdb_read_decode seconds=%.3f\n", s);
        memset(p.by_type, 0, sizeof(p.by_type));
        p.records = p.bytes = 0;
        if (wal_pass(wal_dir, NULL, lsn, replay_noop, &p, &s, &result) != 0)
            return 1;
        printf("RESULT inproc wal_read_crc records=%" PRIu64 " payload_bytes=%" PRIu64
               " segments=%u seconds=%.3f\n",
               p.records, p.bytes, result.segments, s);
        for (unsigned t = 0; t < 256; t++)
            if (p.by_type[t] != 0)
                printf("  wal type %-22s %" PRIu64 "\n", allot_event_type_name((uint8_t)t),
                       p.by_type[t]);
        if (wal_pass(wal_dir, NULL, lsn, replay_decode, &p, &s, &result) != 0)
            return 1;
        printf("RESULT inproc wal_read_crc_decode seconds=%.3f\n", s);
    }
    p.state = allot_state_create(NULL);
    if (p.state == NULL)
        return 1;
    double t_all = rb_now_s();
    double t_load, t_replay;
    double c0 = cpu_now_s();
    wal_preload_t *preload = NULL; /* reads and checks the WAL while LMDB loads */
    if (wal_preload_start(wal_dir, WAL_PRELOAD_SEGMENTS_DEFAULT, &preload) != 0)
        return 1;
    if (store_pass(path, load_apply, &p, &t_load, &lsn) != 0) {
        wal_preload_cancel(preload);
        return 1;
    }
    allot_state_dirty_clear(p.state);
    double c1 = cpu_now_s();
    if (wal_pass(wal_dir, preload, lsn, replay_apply, &p, &t_replay, &result) != 0)
        return 1;
    double c2 = cpu_now_s();
    double total = rb_now_s() - t_all;
    allot_state_counters_t c;
    allot_state_counters_get(p.state, &c);
    printf("RESULT inproc recover lmdb_load_apply_s=%.3f wal_replay_apply_s=%.3f total_s=%.3f "
           "lmdb_load_cpu_s=%.3f wal_replay_cpu_s=%.3f replayed=%" PRIu64 " checkpoint_lsn=%" PRIu64 " last_lsn=%" PRIu64 " skus=%" PRIu64
           " positions=%" PRIu64 " reservations=%" PRIu64 " tombstones=%" PRIu64
           " rss_mib=%" PRIu64 " hwm_mib=%" PRIu64 "\n",
           t_load, t_replay, total, c1 - c0, c2 - c1, result.records_replayed, lsn, result.last_lsn, c.skus,
           c.positions, c.reservations, c.tombstones, self_status_kib("VmRSS") / 1024,
           self_status_kib("VmHWM") / 1024);
    char msg[256];
    double t0 = rb_now_s();
    int rc = allot_state_check_invariants(p.state, msg, sizeof(msg));
    printf("RESULT inproc invariants=%s seconds=%.3f%s%s\n", rc == 0 ? "ok" : "VIOLATED",
           rb_now_s() - t0, rc == 0 ? "" : " ", rc == 0 ? "" : msg);
    allot_state_destroy(p.state);
    allot_event_scratch_free(&p.scratch);
    return rc == 0 ? 0 : 1;
}

/* ---- memory latency ------------------------------------------------------------------------ */

/* ns per step of wall time and (*cpu_ns) of CPU time (the machine is shared). */
static double chase(uint32_t *next, uint64_t steps, double *cpu_ns)
{
    uint32_t i = 0;
    double t0 = rb_now_s(), c0 = cpu_now_s();
    for (uint64_t k = 0; k < steps; k++)
        i = next[i];
    double dt = rb_now_s() - t0;
    *cpu_ns = (cpu_now_s() - c0) / (double)steps * 1e9;
    if (i == UINT32_MAX) /* keep the loop */
        printf("%u\n", i);
    return dt / (double)steps * 1e9;
}

int rb_memlat(uint32_t mib)
{
    size_t n = (size_t)mib * 1024 * 1024 / sizeof(uint32_t);
    for (int huge = 0; huge < 2; huge++) {
        size_t bytes = n * sizeof(uint32_t);
        uint32_t *next = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                              -1, 0);
        if (next == MAP_FAILED)
            return 1;
        madvise(next, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        /* one random cycle through every element (Sattolo) */
        for (size_t i = 0; i < n; i++)
            next[i] = (uint32_t)i;
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(rng_next() % i);
            uint32_t t = next[i];
            next[i] = next[j];
            next[j] = t;
        }
        double cpu_ns;
        double ns = chase(next, 20000000, &cpu_ns);
        printf("RESULT memlat mib=%u pages=%s ns_per_dependent_read=%.1f (cpu %.1f)\n", mib,
               huge ? "huge(madvise)" : "4k", ns, cpu_ns);
        munmap(next, bytes);
    }
    return 0;
}
