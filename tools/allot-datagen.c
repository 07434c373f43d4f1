/* allot-datagen.c - the durability benchmark's data set (docs/benchmarks-recovery.md): build a
 * large data directory through core + persist, and recover it in-process with recovery_run.
 *
 *   allot-datagen generate --dir D [--skus 1000000] [--locations 10] [--wal-records 5000000]
 *                              [--live-holds 100000]
 *   allot-datagen inproc   --dir D [--no-split]
 *
 * A developer tool, not installed (allot-recovery-bench runs it for its `generate` and `inproc`
 * steps). It is the one tool that writes a data directory through persist rather than through a
 * server (docs/architecture.md): it refuses a directory that already holds state.lmdb, and no
 * allotd may use the directory meanwhile.
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
 * In-process recovery: recovery_run (persist/recovery.h), the function allotd recovers with,
 * timed between its reports (checkpoint_loaded, recovered), preceded (split) by passes that only
 * read (LMDB cursor walk; WAL read + CRC) and only decode, so that the time can be attributed to
 * I/O, decoding and applying. Lines starting with "RESULT" are what the benchmark quotes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "persist/recovery.h"
#include "persist/wal.h"

#define DATAGEN_PATH_BYTES      1024
#define DATAGEN_LOCATIONS_MAX   100
#define DATAGEN_SKU_FORMAT      "SKU-%07u" /* the names allot-recovery-bench's drivers use */
#define DATAGEN_LOCATION_FORMAT "LOC-%02u"

typedef struct datagen_config {
    const char *dir;
    uint32_t skus;
    uint32_t locations;
    uint64_t wal_records;
    uint32_t live_holds; /* reservations left live at the end (FIFO window) */
    bool no_split;
} datagen_config_t;

typedef struct gen {
    const datagen_config_t *config;
    allot_state_t *state;
    uv_loop_t loop;
    wal_t *wal;
    uint64_t lsn;
    int64_t now_ms;
    uint64_t payload_bytes;
    char locations[DATAGEN_LOCATIONS_MAX][16];
    /* holds in the order they were made; the oldest is released first */
    uint32_t *fifo;
    uint32_t fifo_capacity, fifo_head, fifo_count, next_reservation;
    uint64_t adjusts, reserves, releases;
} gen_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* VmRSS / VmHWM of this process in KiB (0 when unreadable). */
static uint64_t self_status_kib(const char *field)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    size_t n = strlen(field);
    unsigned long long kib = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kib = strtoull(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

static uint64_t dir_bytes(const char *path)
{
    char cmd[DATAGEN_PATH_BYTES + 32];
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

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static int check(int rc, const char *what, const allot_error_detail_t *detail)
{
    if (rc != 0)
        fprintf(stderr, "allot-datagen: %s: %s %s\n", what, allot_error_code(rc),
                detail != NULL ? detail->message : "");
    return rc;
}

/* ---- generation ------------------------------------------------------------------------------ */

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

static void on_fatal(wal_t *wal, int error, const char *message, void *ctx)
{
    (void)wal, (void)ctx;
    fprintf(stderr, "allot-datagen: WAL failed: %s: %s\n", allot_error_code(error), message);
    exit(2);
}

/* 1. locations and skus x locations positions. */
static int generate_positions(gen_t *g)
{
    allot_error_detail_t detail;
    double t0 = now_s();
    uint32_t locations = g->config->locations;
    for (uint32_t l = 0; l < locations; l++) {
        snprintf(g->locations[l], sizeof(g->locations[l]), DATAGEN_LOCATION_FORMAT, l);
        allot_location_input_t in;
        allot_location_input_defaults(&in);
        in.id = allot_str_from_cstr(g->locations[l]);
        in.lat = 40.0 + l * 0.1;
        in.lon = -74.0 + l * 0.1;
        const allot_location_t *out;
        if (check(allot_location_put(g->state, &in, &out, &detail), "location.put", &detail))
            return 1;
    }
    char sku[32];
    for (uint32_t s = 0; s < g->config->skus; s++) {
        snprintf(sku, sizeof(sku), DATAGEN_SKU_FORMAT, s);
        for (uint32_t l = 0; l < locations; l++) {
            allot_stock_set_input_t in = {.sku = allot_str_from_cstr(sku),
                                          .location = allot_str_from_cstr(g->locations[l]),
                                          .on_hand = 1000000};
            allot_stock_result_t out;
            if (check(allot_stock_set(g->state, &in, &out, &detail), "stock.set", &detail))
                return 1;
        }
        if ((s + 1) % 100000 == 0)
            printf("  positions: %u SKUs x %u locations (%.1f s)\n", s + 1, locations,
                   now_s() - t0);
    }
    double seconds = now_s() - t0;
    allot_state_counters_t counters;
    allot_state_counters_get(g->state, &counters);
    printf("positions built: %" PRIu64 " SKUs, %" PRIu64 " positions in %.2f s (%.0f stock.set/s, "
           "%" PRIu64 " event records, RSS %" PRIu64 " MiB)\n",
           counters.skus, counters.positions, seconds, (double)counters.positions / seconds, g->lsn,
           self_status_kib("VmRSS") / 1024);
    return 0;
}

/* 2. one full checkpoint at LSN X = the records so far. */
static int generate_checkpoint(gen_t *g, const char *path)
{
    char message[CHECKPOINT_MESSAGE_BYTES_MAX];
    checkpoint_store_t *store;
    if (checkpoint_store_open(path, 0, &store, message, sizeof(message)) != 0) {
        fprintf(stderr, "allot-datagen: open %s: %s\n", path, message);
        return 1;
    }
    double t0 = now_s();
    checkpoint_batch_t *batch = checkpoint_batch_create(true);
    if (batch == NULL ||
        allot_state_snapshot_each(g->state, checkpoint_batch_snapshot_cb, batch) != 0 ||
        checkpoint_batch_failed(batch)) {
        fprintf(stderr, "allot-datagen: snapshot: out of memory\n");
        return 1;
    }
    double serialize_s = now_s() - t0;
    size_t entries = checkpoint_batch_entries(batch), batch_bytes = checkpoint_batch_bytes(batch);
    t0 = now_s();
    checkpoint_write_stats_t stats = {0};
    if (checkpoint_store_write(store, &batch, 1, g->lsn, &stats, message, sizeof(message)) != 0) {
        fprintf(stderr, "allot-datagen: checkpoint write: %s\n", message);
        return 1;
    }
    double write_s = now_s() - t0;
    checkpoint_batch_free(batch);
    checkpoint_store_close(store);
    allot_state_dirty_clear(g->state);
    struct stat st;
    uint64_t lmdb_bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    printf("RESULT full_checkpoint objects=%zu batch_bytes=%zu serialize_s=%.3f write_s=%.3f "
           "lsn=%" PRIu64 " lmdb_file_bytes=%" PRIu64 " map_grows=%" PRIu64 "\n",
           entries, batch_bytes, serialize_s, write_s, g->lsn, lmdb_bytes, stats.map_grows);
    return 0;
}

/* One WAL record of the mix: 40% stock.adjust, 30% reserve, 30% release of the oldest hold once
 * live_holds are live (stock.adjust otherwise). */
static int generate_record(gen_t *g, uint64_t i)
{
    allot_error_detail_t detail;
    unsigned kind = (unsigned)(i % 10);
    char sku[32], id[32];
    snprintf(sku, sizeof(sku), DATAGEN_SKU_FORMAT, (uint32_t)(rng_next() % g->config->skus));
    if (kind >= 4 && kind <= 6) {
        uint32_t r = g->next_reservation++;
        snprintf(id, sizeof(id), "cart-%09u", r);
        allot_line_input_t line = {allot_str_from_cstr(sku), 1};
        allot_reserve_request_t req = {.id = allot_str_from_cstr(id),
                                       .lines = &line,
                                       .line_count = 1,
                                       .ttl_s = 86400,
                                       .method = ALLOT_METHOD_SHIP,
                                       .policy = ALLOT_POLICY_PRIORITY};
        const allot_reservation_t *out;
        g->fifo[(g->fifo_head + g->fifo_count++) % g->fifo_capacity] = r;
        g->reserves++;
        return check(allot_reserve(g->state, &req, g->now_ms, &out, &detail), "reserve", &detail);
    }
    if (kind >= 7 && g->fifo_count > g->config->live_holds) {
        snprintf(id, sizeof(id), "cart-%09u", g->fifo[g->fifo_head]);
        g->fifo_head = (g->fifo_head + 1) % g->fifo_capacity;
        g->fifo_count--;
        g->releases++;
        const allot_reservation_t *out;
        return check(
            allot_reservation_release(g->state, allot_str_from_cstr(id), g->now_ms, &out, &detail),
            "release", &detail);
    }
    allot_stock_adjust_input_t in = {
        .sku = allot_str_from_cstr(sku),
        .location = allot_str_from_cstr(g->locations[rng_next() % g->config->locations]),
        .delta = (i & 1) ? 1 : -1,
    };
    allot_stock_result_t out;
    g->adjusts++;
    return check(allot_stock_adjust(g->state, &in, g->now_ms, &out, &detail), "stock.adjust",
                 &detail);
}

/* 3. the WAL after X, written by a real wal_t. */
static int generate_wal(gen_t *g, const char *wal_dir)
{
    uint64_t first_lsn = g->lsn + 1;
    wal_config_t config = {.dir = wal_dir, .fsync_mode = WAL_FSYNC_NONE};
    char message[WAL_MESSAGE_BYTES_MAX];
    if (uv_loop_init(&g->loop) != 0 || wal_open(&g->loop, &config, first_lsn, &g->wal, NULL,
                                                on_fatal, g, message, sizeof(message)) != 0) {
        fprintf(stderr, "allot-datagen: wal_open: %s\n", message);
        return 1;
    }
    allot_state_set_event_sink(g->state, wal_sink, g);
    g->payload_bytes = 0;
    g->fifo_capacity = g->config->live_holds + 16;
    g->fifo = calloc(g->fifo_capacity, sizeof(*g->fifo));
    int64_t base_ms = g->now_ms;
    double t0 = now_s();
    for (uint64_t i = 0; i < g->config->wal_records && g->fifo != NULL; i++) {
        while (!wal_has_room(g->wal, ALLOT_WAL_HEADROOM_BYTES)) {
            wal_flush(g->wal);
            uv_run(&g->loop, UV_RUN_ONCE);
        }
        g->now_ms = base_ms + (int64_t)(i / 1000);
        if (generate_record(g, i) != 0)
            return 1;
        if ((i & 1023) == 1023) {
            wal_flush(g->wal);
            uv_run(&g->loop, UV_RUN_NOWAIT);
        }
        if ((i + 1) % 500000 == 0)
            printf("  wal: %" PRIu64 " records (%.1f s)\n", i + 1, now_s() - t0);
    }
    uint64_t last_lsn = wal_last_lsn(g->wal);
    wal_close(g->wal, NULL);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    uv_loop_close(&g->loop);
    free(g->fifo);
    printf("RESULT wal records=%" PRIu64 " adjust=%" PRIu64 " reserve=%" PRIu64 " release=%" PRIu64
           " payload_bytes=%" PRIu64 " wal_dir_bytes=%" PRIu64 " first_lsn=%" PRIu64
           " last_lsn=%" PRIu64 " seconds=%.2f\n",
           g->config->wal_records, g->adjusts, g->reserves, g->releases, g->payload_bytes,
           dir_bytes(wal_dir), first_lsn, last_lsn, now_s() - t0);
    return 0;
}

static int generate(const datagen_config_t *config)
{
    char path[DATAGEN_PATH_BYTES + 32], wal_dir[DATAGEN_PATH_BYTES + 8];
    snprintf(path, sizeof(path), "%s/%s", config->dir, CHECKPOINT_FILE_NAME);
    snprintf(wal_dir, sizeof(wal_dir), "%s/wal", config->dir);
    if (mkdir(config->dir, 0750) != 0 && errno != EEXIST) {
        perror(config->dir);
        return 1;
    }
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "allot-datagen: %s exists; remove the directory first\n", path);
        return 1;
    }
    if (mkdir(wal_dir, 0750) != 0 && errno != EEXIST) {
        perror(wal_dir);
        return 1;
    }
    static gen_t g;
    g = (gen_t){.config = config, .now_ms = wall_ms()};
    g.state = allot_state_create(NULL);
    if (g.state == NULL)
        return 1;
    allot_state_set_event_sink(g.state, count_sink, &g);
    int rc = generate_positions(&g);
    if (rc == 0)
        rc = generate_checkpoint(&g, path);
    if (rc == 0)
        rc = generate_wal(&g, wal_dir);
    if (rc == 0) {
        allot_state_counters_t counters;
        allot_state_counters_get(g.state, &counters);
        printf("RESULT state skus=%" PRIu64 " positions=%" PRIu64 " reservations=%" PRIu64
               " tombstones=%" PRIu64 " generator_rss_mib=%" PRIu64 "\n",
               counters.skus, counters.positions, counters.reservations, counters.tombstones,
               self_status_kib("VmHWM") / 1024);
    }
    allot_state_destroy(g.state);
    return rc;
}

/* ---- in-process recovery ----------------------------------------------------------------------
 */

typedef struct inproc {
    allot_event_scratch_t scratch;
    uint64_t bytes;
    uint64_t records;
    uint64_t by_type[256];
    /* recovery_run's reports: when (monotonic, CPU) the load and the replay ended */
    double loaded_s, loaded_cpu_s, recovered_s, recovered_cpu_s;
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

static int store_pass(const char *path, checkpoint_record_cb cb, inproc_t *p, double *seconds,
                      uint64_t *lsn)
{
    char message[CHECKPOINT_MESSAGE_BYTES_MAX];
    checkpoint_store_t *store;
    double t0 = now_s();
    uint64_t records = 0;
    int rc = checkpoint_store_open(path, 0, &store, message, sizeof(message));
    if (rc == 0) {
        rc = checkpoint_store_load(store, cb, p, &records, message, sizeof(message));
        *lsn = checkpoint_store_lsn(store);
        checkpoint_store_close(store);
    }
    *seconds = now_s() - t0;
    if (rc != 0)
        fprintf(stderr, "allot-datagen: %s: %s %s\n", path, allot_error_code(rc), message);
    return rc;
}

static int wal_pass(const char *wal_dir, uint64_t after, wal_record_cb cb, inproc_t *p,
                    double *seconds, wal_replay_result_t *result)
{
    char message[WAL_MESSAGE_BYTES_MAX];
    double t0 = now_s();
    int rc = wal_replay(wal_dir, after, cb, p, result, message, sizeof(message));
    *seconds = now_s() - t0;
    if (rc != 0)
        fprintf(stderr, "allot-datagen: replay %s: %s %s\n", wal_dir, allot_error_code(rc),
                message);
    return rc;
}

/* Read-only and decode-only passes over the store and the WAL. */
static int inproc_split(const char *dir, inproc_t *p)
{
    char path[DATAGEN_PATH_BYTES + 32], wal_dir[DATAGEN_PATH_BYTES + 8];
    snprintf(path, sizeof(path), "%s/%s", dir, CHECKPOINT_FILE_NAME);
    snprintf(wal_dir, sizeof(wal_dir), "%s/wal", dir);
    static wal_replay_result_t result;
    uint64_t lsn = 0;
    double s;
    if (store_pass(path, load_noop, p, &s, &lsn) != 0)
        return 1;
    printf("RESULT inproc lmdb_read records=%" PRIu64 " bytes=%" PRIu64
           " seconds=%.3f (%.0f MB/s)\n",
           p->records, p->bytes, s, (double)p->bytes / s / 1e6);
    if (store_pass(path, load_decode, p, &s, &lsn) != 0)
        return 1;
    printf("RESULT inproc lmdb_read_decode seconds=%.3f\n", s);
    memset(p->by_type, 0, sizeof(p->by_type));
    p->records = p->bytes = 0;
    if (wal_pass(wal_dir, lsn, replay_noop, p, &s, &result) != 0)
        return 1;
    printf("RESULT inproc wal_read_crc records=%" PRIu64 " payload_bytes=%" PRIu64
           " segments=%u seconds=%.3f\n",
           p->records, p->bytes, result.segments, s);
    for (unsigned t = 0; t < 256; t++)
        if (p->by_type[t] != 0)
            printf("  wal type %-22s %" PRIu64 "\n", allot_event_type_name((uint8_t)t),
                   p->by_type[t]);
    if (wal_pass(wal_dir, lsn, replay_decode, p, &s, &result) != 0)
        return 1;
    printf("RESULT inproc wal_read_crc_decode seconds=%.3f\n", s);
    return 0;
}

/* recovery_run's reports: the end of each phase, and every problem on stderr. */
static void on_recovery_report(void *ctx, recovery_level_t level, const char *event,
                               const recovery_field_t *fields, size_t count)
{
    inproc_t *p = ctx;
    if (strcmp(event, "checkpoint_loaded") == 0) {
        p->loaded_s = now_s();
        p->loaded_cpu_s = cpu_now_s();
    } else if (strcmp(event, "recovered") == 0) {
        p->recovered_s = now_s();
        p->recovered_cpu_s = cpu_now_s();
    }
    if (level == RECOVERY_LEVEL_INFO)
        return;
    fprintf(stderr, "allot-datagen: %s", event);
    for (size_t i = 0; i < count; i++) {
        if (fields[i].kind == RECOVERY_FIELD_STR)
            fprintf(stderr, " %s=\"%s\"", fields[i].key, fields[i].str);
        else
            fprintf(stderr, " %s=%" PRIu64, fields[i].key, fields[i].number);
    }
    fputc('\n', stderr);
}

/* The recovery allotd runs, timed per phase, then the state's invariants checked. */
static int inproc(const datagen_config_t *config)
{
    inproc_t p = {0};
    if (!config->no_split && inproc_split(config->dir, &p) != 0)
        return 1;
    allot_state_t *state = allot_state_create(NULL);
    if (state == NULL)
        return 1;
    recovery_config_t recovery = {
        .data_dir = config->dir, .log_cb = on_recovery_report, .log_ctx = &p};
    recovery_result_t result;
    double t0 = now_s(), c0 = cpu_now_s();
    if (recovery_run(&recovery, state, &result) != 0)
        return 1;
    double total = now_s() - t0;
    allot_state_counters_t c;
    allot_state_counters_get(state, &c);
    printf("RESULT inproc recover lmdb_load_apply_s=%.3f wal_replay_apply_s=%.3f total_s=%.3f "
           "lmdb_load_cpu_s=%.3f wal_replay_cpu_s=%.3f replayed=%" PRIu64 " checkpoint_lsn=%" PRIu64
           " last_lsn=%" PRIu64 " skus=%" PRIu64 " positions=%" PRIu64 " reservations=%" PRIu64
           " tombstones=%" PRIu64 " rss_mib=%" PRIu64 " hwm_mib=%" PRIu64 "\n",
           p.loaded_s - t0, p.recovered_s - p.loaded_s, total, p.loaded_cpu_s - c0,
           p.recovered_cpu_s - p.loaded_cpu_s, result.records_replayed, result.checkpoint_lsn,
           result.last_lsn, c.skus, c.positions, c.reservations, c.tombstones,
           self_status_kib("VmRSS") / 1024, self_status_kib("VmHWM") / 1024);
    recovery_close(state, &result);
    char message[256];
    t0 = now_s();
    int rc = allot_state_check_invariants(state, message, sizeof(message));
    printf("RESULT inproc invariants=%s seconds=%.3f%s%s\n", rc == 0 ? "ok" : "VIOLATED",
           now_s() - t0, rc == 0 ? "" : " ", rc == 0 ? "" : message);
    allot_state_destroy(state);
    allot_event_scratch_free(&p.scratch);
    return rc == 0 ? 0 : 1;
}

/* ---- command line -----------------------------------------------------------------------------
 */

static int usage(void)
{
    fprintf(stderr,
            "usage: allot-datagen generate --dir D [--skus N] [--locations N (1..%u)] "
            "[--wal-records N] [--live-holds N]\n"
            "       allot-datagen inproc --dir D [--no-split]\n"
            "(see the top of tools/allot-datagen.c)\n",
            DATAGEN_LOCATIONS_MAX);
    return 2;
}

static int parse(int argc, char **argv, datagen_config_t *c)
{
    *c = (datagen_config_t){
        .skus = 1000000, .locations = 10, .wal_records = 5000000, .live_holds = 100000};
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(o, name) == 0 && v != NULL && ++i)
        if (OPT("--dir"))
            c->dir = v;
        else if (OPT("--skus"))
            c->skus = (uint32_t)strtoul(v, NULL, 10);
        else if (OPT("--locations"))
            c->locations = (uint32_t)strtoul(v, NULL, 10);
        else if (OPT("--wal-records"))
            c->wal_records = strtoull(v, NULL, 10);
        else if (OPT("--live-holds"))
            c->live_holds = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(o, "--no-split") == 0)
            c->no_split = true;
        else {
            fprintf(stderr, "allot-datagen: unknown or incomplete option: %s\n", o);
            return -1;
        }
#undef OPT
    }
    if (c->dir == NULL || strlen(c->dir) >= DATAGEN_PATH_BYTES || c->skus == 0 ||
        c->locations == 0 || c->locations > DATAGEN_LOCATIONS_MAX) {
        fprintf(stderr, "allot-datagen: --dir is required; --skus >= 1; --locations 1..%u\n",
                DATAGEN_LOCATIONS_MAX);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    datagen_config_t config;
    if (argc < 2 || parse(argc, argv, &config) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "generate") == 0)
        return generate(&config) == 0 ? 0 : 1;
    if (strcmp(argv[1], "inproc") == 0)
        return inproc(&config) == 0 ? 0 : 1;
    return usage();
}
