/* test_persist_checkpoint.c - LMDB checkpoints: round trip, incremental writes, deletions, map
 * growth, format checks, checksums and damaged records, the upgrade of older stores and the
 * writer thread. */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test_core_fixture.h"
#include "test_persist_store_fixture.h"
#include "test_resident_pages.h"

#include "core/errors.h"
#include "core/pages.h"
#include "persist/checkpoint.h"
#include "persist/crc32c.h"
#include "persist/fault.h"
#include "persist/writeback.h"

static char dir[64];
static char path[128];
static allot_state_t *st;
static checkpoint_store_t *store;
static char message[CHECKPOINT_MESSAGE_BYTES_MAX];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/allot-ckpt-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, CHECKPOINT_FILE_NAME);
    st = NULL;
    store = NULL;
}

static void teardown(void)
{
    checkpoint_store_close(store);
    allot_state_destroy(st);
    fx_log_reset();
    char lock[160];
    snprintf(lock, sizeof(lock), "%s-lock", path);
    unlink(path);
    unlink(lock);
    rmdir(dir);
}

TestSuite(checkpoint, .init = setup, .fini = teardown);

static void store_open(uint64_t map_bytes)
{
    checkpoint_store_close(store);
    store = NULL;
    int rc = checkpoint_store_open(path, map_bytes, &store, message, sizeof(message));
    cr_assert_eq(rc, 0, "open: %s", message);
}

/* Serialize the dirty set into a batch (asserts it worked). */
static checkpoint_batch_t *dirty_batch(allot_state_t *state)
{
    checkpoint_batch_t *batch = checkpoint_batch_create(false);
    cr_assert_not_null(batch);
    cr_assert_eq(allot_state_snapshot_each_dirty(state, checkpoint_batch_snapshot_cb, batch), 0);
    cr_assert_not(checkpoint_batch_failed(batch));
    return batch;
}

static checkpoint_write_stats_t write_batch(checkpoint_batch_t *batch, uint64_t lsn)
{
    checkpoint_write_stats_t stats;
    int rc = checkpoint_store_write(store, &batch, 1, lsn, &stats, message, sizeof(message));
    cr_assert_eq(rc, 0, "write: %s", message);
    checkpoint_batch_free(batch);
    return stats;
}

static int apply_record(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                        const uint8_t *payload, size_t payload_len)
{
    (void)key;
    (void)key_len;
    return allot_event_apply_encoded(ctx, type, payload, payload_len);
}

static allot_state_t *load_into_fresh_state(bool two_threads, int expected_rc,
                                            checkpoint_load_stats_t *stats)
{
    allot_state_t *loaded = allot_state_create(&fx_config);
    cr_assert_not_null(loaded);
    *stats = (checkpoint_load_stats_t){0};
    int rc = two_threads
                 ? checkpoint_store_load_state(store, loaded, stats, message, sizeof(message))
                 : checkpoint_store_load(store, apply_record, loaded, &stats->records, message,
                                         sizeof(message));
    cr_assert_eq(rc, expected_rc, "two threads %d: %s", two_threads, message);
    return loaded;
}

/* Reopen the store, load it into a fresh state, both one record at a time and the way the
 * server does (checkpoint_store_load_state), and compare dumps with `live`. */
static void assert_reload_equal(const allot_state_t *live, uint64_t lsn, uint64_t map_bytes)
{
    store_open(map_bytes);
    cr_assert_eq(checkpoint_store_lsn(store), lsn);
    char *a = fx_dump(live);
    for (int two_threads = 0; two_threads <= 1; two_threads++) {
        checkpoint_load_stats_t stats;
        allot_state_t *loaded = load_into_fresh_state(two_threads, 0, &stats);
        allot_state_dirty_clear(loaded);
        cr_assert_eq(allot_state_dirty_count(loaded), 0);
        char *b = fx_dump(loaded);
        cr_assert_str_eq(a, b, "live and checkpointed states differ (two threads: %d)",
                         two_threads);
        free(b);
        allot_state_destroy(loaded);
    }
    free(a);
}

static void populate(allot_state_t *state)
{
    const allot_reservation_t *released;
    fx_location(state, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40, .priority = 1});
    fx_location(state, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58, .daily_capacity = 5});
    fx_location(
        state,
        (fx_loc_t){
            .id = "S1", .lat = 50.0, .lon = 8.0, .pickup = true, .type = ALLOT_LOCATION_STORE});
    fx_stock(state, "A", "W1", 10, 1);
    fx_stock(state, "A", "W2", 7, 0);
    fx_stock(state, "B", "S1", 3, 0);
    allot_line_input_t lines[] = {{S("A"), 12}, {S("B"), 1}};
    allot_reserve_request_t req = fx_req("cart-1", lines, 2);
    cr_assert_eq(fx_reserve(state, &req, FX_T0, NULL), 0, "%s", fx_err.message);
    req = fx_req("cart-2", lines, 1);
    req.lines = (allot_line_input_t[]){{S("A"), 1}};
    cr_assert_eq(fx_reserve(state, &req, FX_T0 + 1, NULL), 0, "%s", fx_err.message);
    cr_assert_eq(allot_reservation_release(state, S("cart-2"), FX_T0 + 2, &released, &fx_err), 0);
    allot_stock_adjust_input_t adj = {S("A"), S("W1"), 5, S("receipt-1")};
    cr_assert_eq(allot_stock_adjust(state, &adj, FX_T0 + 3, NULL, &fx_err), 0);
}

Test(checkpoint, round_trip_reproduces_the_state_byte_for_byte)
{
    st = fx_state();
    populate(st);
    store_open(0);
    cr_assert_eq(checkpoint_store_lsn(store), 0);
    checkpoint_write_stats_t stats = write_batch(dirty_batch(st), 42);
    /* 3 locations + 2 SKUs + 2 reservations + 1 adjust key */
    cr_assert_eq(stats.puts, 8);
    cr_assert_eq(stats.deletes, 0);
    cr_assert_eq(allot_state_dirty_count(st), 0);
    assert_reload_equal(st, 42, 0);
}

Test(checkpoint, incremental_checkpoint_writes_only_dirty_objects)
{
    st = fx_state();
    populate(st);
    store_open(0);
    write_batch(dirty_batch(st), 10);
    /* One SKU changes: only that SKU record is written. */
    fx_stock(st, "B", "S1", 9, 0);
    checkpoint_batch_t *batch = dirty_batch(st);
    cr_assert_eq(checkpoint_batch_entries(batch), 1);
    checkpoint_write_stats_t stats = write_batch(batch, 11);
    cr_assert_eq(stats.puts, 1);
    /* A reservation: the reservation, the SKU it holds and the location it holds at (core
     * marks the location too) - nothing else. */
    allot_line_input_t lines[] = {{S("A"), 2}};
    allot_reserve_request_t req = fx_req("cart-3", lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 10, NULL), 0, "%s", fx_err.message);
    stats = write_batch(dirty_batch(st), 12);
    cr_assert_eq(stats.puts, 3, "puts %llu", (unsigned long long)stats.puts);
    /* Nothing changed: an empty checkpoint still moves the LSN. */
    stats = write_batch(dirty_batch(st), 13);
    cr_assert_eq(stats.puts, 0);
    assert_reload_equal(st, 13, 0);
}

Test(checkpoint, deleted_objects_disappear_from_the_store)
{
    allot_state_config_t config = {.idempotency_entries_max = 1};
    st = fx_state_with(&config);
    const allot_reservation_t *released;
    fx_location(st, (fx_loc_t){.id = "W1"});
    fx_stock(st, "A", "W1", 100, 0);
    allot_stock_adjust_input_t adj = {S("A"), S("W1"), 1, S("k-1")};
    cr_assert_eq(allot_stock_adjust(st, &adj, FX_T0, NULL, &fx_err), 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    allot_reserve_request_t req = fx_req("r-1", lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0, "%s", fx_err.message);
    cr_assert_eq(allot_reservation_release(st, S("r-1"), FX_T0 + 1, &released, &fx_err), 0);
    store_open(0);
    write_batch(dirty_batch(st), 5);
    /* A second key and a second ended reservation evict the first ones (limit 1). */
    adj.key = S("k-2");
    cr_assert_eq(allot_stock_adjust(st, &adj, FX_T0 + 2, NULL, &fx_err), 0);
    req.id = S("r-2");
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 2, NULL), 0, "%s", fx_err.message);
    cr_assert_eq(allot_reservation_release(st, S("r-2"), FX_T0 + 3, &released, &fx_err), 0);
    checkpoint_write_stats_t stats = write_batch(dirty_batch(st), 9);
    cr_assert_eq(stats.deletes, 2, "deletes %llu", (unsigned long long)stats.deletes);
    assert_reload_equal(st, 9, 0);
    /* The store holds exactly: 1 location, 1 SKU, 1 reservation, 1 key. */
    allot_state_t *scratch = allot_state_create(&config);
    uint64_t records = 0;
    cr_assert_eq(
        checkpoint_store_load(store, apply_record, scratch, &records, message, sizeof(message)), 0);
    cr_assert_eq(records, 4);
    allot_state_destroy(scratch);
}

static int sink_discard(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    (void)ctx;
    (void)type;
    (void)payload;
    (void)len;
    return 0;
}

Test(checkpoint, map_full_grows_the_map_and_commits_everything)
{
    st = fx_state();
    allot_state_set_event_sink(st, sink_discard, NULL); /* too many events for the fixture log */
    char id[32];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof(id), "LOC-%04d", i);
        fx_location(st, (fx_loc_t){.id = id, .lat = i * 0.1, .lon = i * 0.2});
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof(id), "SKU-%05d", i);
        char loc[32];
        snprintf(loc, sizeof(loc), "LOC-%04d", i % 300);
        fx_stock(st, id, loc, i, 0);
        fx_stock(st, id, "LOC-0000", i + 1, 0);
    }
    store_open(64 * 1024);
    uint64_t map_before = checkpoint_store_map_bytes(store);
    checkpoint_write_stats_t stats = write_batch(dirty_batch(st), 3600);
    cr_assert_gt(stats.map_grows, 0);
    cr_assert_eq(stats.puts, 3300);
    cr_assert_gt(checkpoint_store_map_bytes(store), map_before);
    /* Reopening with a tiny map keeps the grown file readable. */
    assert_reload_equal(st, 3600, 64 * 1024);
}

Test(checkpoint, first_checkpoint_of_an_empty_state_at_lsn_zero)
{
    st = fx_state();
    store_open(0);
    write_batch(dirty_batch(st), 0);
    assert_reload_equal(st, 0, 0);
}

Test(checkpoint, full_batch_replaces_every_stored_object)
{
    st = fx_state();
    populate(st);
    store_open(0);
    write_batch(dirty_batch(st), 20);
    /* A stale record that the full batch must remove. */
    checkpoint_batch_t *junk = checkpoint_batch_create(false);
    const uint8_t key[] = {CHECKPOINT_KIND_LOCATION, 'Z', 'Z'};
    cr_assert_eq(allot_state_snapshot_each(st, checkpoint_batch_snapshot_cb, junk), 0);
    const uint8_t payload[] = {1, 2, 3};
    cr_assert_eq(checkpoint_batch_add(junk, key, sizeof(key), ALLOT_EVENT_LOCATION_SNAPSHOT,
                                      payload, sizeof(payload), false),
                 0);
    write_batch(junk, 21);
    checkpoint_batch_t *full = checkpoint_batch_create(true);
    cr_assert_eq(allot_state_snapshot_each(st, checkpoint_batch_snapshot_cb, full), 0);
    write_batch(full, 22);
    assert_reload_equal(st, 22, 0);
}

Test(checkpoint, rejects_an_older_lsn_and_incomplete_batches)
{
    store_open(0);
    checkpoint_batch_t *batch = checkpoint_batch_create(false);
    write_batch(checkpoint_batch_create(false), 7);
    cr_assert_eq(checkpoint_store_write(store, &batch, 1, 6, NULL, message, sizeof(message)),
                 ALLOT_EINVALID_ARGUMENT);
    const uint8_t short_key[] = {CHECKPOINT_KIND_SKU};
    cr_assert_eq(checkpoint_batch_add(batch, short_key, 1, 17, NULL, 0, false),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert(checkpoint_batch_failed(batch));
    cr_assert_eq(checkpoint_store_write(store, &batch, 1, 8, NULL, message, sizeof(message)),
                 ALLOT_EINVALID_ARGUMENT);
    checkpoint_batch_free(batch);
    store_open(0);
    cr_assert_eq(checkpoint_store_lsn(store), 7);
}

/* Write to the store's file with LMDB itself, past the store's checks: close the store and
 * begin a write transaction on the named database; raw_write_end commits. */
static MDB_txn *raw_write_begin(MDB_env **env, const char *db_name, MDB_dbi *dbi)
{
    checkpoint_store_close(store);
    store = NULL;
    MDB_txn *txn;
    cr_assert_eq(mdb_env_create(env), 0);
    mdb_env_set_maxdbs(*env, 4);
    cr_assert_eq(mdb_env_open(*env, path, MDB_NOSUBDIR, 0640), 0);
    cr_assert_eq(mdb_txn_begin(*env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, db_name, 0, dbi), 0);
    return txn;
}

static void raw_write_end(MDB_env *env, MDB_txn *txn)
{
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* ---- reservation records without their id (format version 4) ------------------------------ */

#define HOLDS_MAX 8u

/* The reservations' snapshots as core hands them (kind 3 only). */
typedef struct hold_records {
    size_t count;
    uint8_t key[HOLDS_MAX][1 + ALLOT_ID_BYTES_MAX];
    size_t key_len[HOLDS_MAX];
    uint8_t type[HOLDS_MAX];
    uint8_t payload[HOLDS_MAX][1024];
    size_t payload_len[HOLDS_MAX];
} hold_records_t;

static void hold_collect(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                         const uint8_t *payload, size_t payload_len, bool deleted)
{
    hold_records_t *h = ctx;
    if (key[0] != CHECKPOINT_KIND_RESERVATION || deleted)
        return;
    cr_assert_lt(h->count, HOLDS_MAX);
    cr_assert_leq(payload_len, sizeof(h->payload[0]));
    memcpy(h->key[h->count], key, key_len);
    h->key_len[h->count] = key_len;
    h->type[h->count] = type;
    memcpy(h->payload[h->count], payload, payload_len);
    h->payload_len[h->count] = payload_len;
    h->count++;
}

static void holds_of(allot_state_t *state, hold_records_t *h)
{
    memset(h, 0, sizeof(*h));
    cr_assert_eq(allot_state_snapshot_each(state, hold_collect, h), 0);
    cr_assert_gt(h->count, 0);
}

/* A value sealed as format version 3 does (type, payload, CRC32C of key and both). */
static MDB_val sealed_value(uint8_t *out, const uint8_t *key, size_t key_len, uint8_t type,
                            const uint8_t *payload, size_t payload_len)
{
    out[0] = type;
    memcpy(out + 1, payload, payload_len);
    uint32_t crc = crc32c_extend(crc32c_extend(0, key, key_len), out, 1 + payload_len);
    memcpy(out + 1 + payload_len, &crc, 4); /* little-endian hosts only, as the store */
    return (MDB_val){1 + payload_len + 4, out};
}

/* A populated state, its holds' records (h), and a store that checkpointed them at LSN 42. */
static void holds_checkpointed(hold_records_t *h)
{
    st = fx_state();
    populate(st);
    holds_of(st, h);
    store_open(0);
    write_batch(dirty_batch(st), 42);
}

Test(checkpoint, a_reservation_record_is_stored_without_the_id_its_key_holds)
{
    hold_records_t h;
    holds_checkpointed(&h);
    MDB_txn *txn;
    cr_assert_eq(mdb_txn_begin(checkpoint_store_env(store), NULL, MDB_RDONLY, &txn), 0);
    for (size_t i = 0; i < h.count; i++) {
        MDB_val key = {h.key_len[i], h.key[i]}, value;
        cr_assert_eq(mdb_get(txn, checkpoint_store_state_dbi(store), &key, &value), 0);
        size_t id_len = h.key_len[i] - 1;
        /* type | 0x80, the payload less its 2-byte id length and id, the trailer */
        cr_assert_eq(value.mv_size, 1 + h.payload_len[i] - 2 - id_len + 4, "hold %zu: %zu bytes", i,
                     value.mv_size);
        cr_assert_eq(((const uint8_t *)value.mv_data)[0], h.type[i] | 0x80);
        cr_assert_null(memmem(value.mv_data, value.mv_size, h.key[i] + 1, id_len),
                       "the id is stored in the value too");
    }
    mdb_txn_abort(txn);
    assert_reload_equal(st, 42, 0);
}

Test(checkpoint, a_version_3_store_loads_gets_version_4_and_takes_both_kinds_of_hold_records)
{
    hold_records_t h;
    holds_checkpointed(&h);
    /* Make it the version 3 store an older allotd wrote: reservations with their id. */
    MDB_env *env;
    MDB_dbi state_dbi, meta;
    MDB_txn *txn = raw_write_begin(&env, "state", &state_dbi);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    uint8_t bytes[1 + 1024 + 4];
    for (size_t i = 0; i < h.count; i++) {
        MDB_val key = {h.key_len[i], h.key[i]};
        MDB_val value =
            sealed_value(bytes, h.key[i], h.key_len[i], h.type[i], h.payload[i], h.payload_len[i]);
        cr_assert_eq(mdb_put(txn, state_dbi, &key, &value, 0), 0);
    }
    uint8_t v3[8] = {3, 0, 0, 0}; /* u32 3 and its trailer */
    uint32_t crc = crc32c_extend(crc32c_extend(0, "format_version", 14), v3, 4);
    memcpy(v3 + 4, &crc, 4);
    MDB_val version_key = {14, "format_version"}, version = {8, v3};
    cr_assert_eq(mdb_put(txn, meta, &version_key, &version, 0), 0);
    raw_write_end(env, txn);
    assert_reload_equal(st, 42, 0); /* reopens it */
    cr_assert_eq(checkpoint_store_upgraded_from(store), 3);
    store_open(0);
    cr_assert_eq(checkpoint_store_upgraded_from(store), 0, "version 4 was not written");
    /* A later checkpoint writes a new hold and releases another (both without their id); the
     * released cart-2 keeps its version 3 record. Both kinds load. */
    allot_line_input_t lines[] = {{S("A"), 1}};
    allot_reserve_request_t req = fx_req("cart-3", lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 10, NULL), 0, "%s", fx_err.message);
    const allot_reservation_t *released;
    cr_assert_eq(allot_reservation_release(st, S("cart-1"), FX_T0 + 11, &released, &fx_err), 0);
    write_batch(dirty_batch(st), 43);
    assert_reload_equal(st, 43, 0);
}

Test(checkpoint, refuses_an_unknown_format_version)
{
    store_open(0);
    MDB_env *env;
    MDB_dbi meta;
    MDB_txn *txn = raw_write_begin(&env, "meta", &meta);
    uint8_t v5[4] = {5, 0, 0, 0};
    MDB_val key = {14, "format_version"}, value = {4, v5};
    cr_assert_eq(mdb_put(txn, meta, &key, &value, 0), 0);
    raw_write_end(env, txn);
    int rc = checkpoint_store_open(path, 0, &store, message, sizeof(message));
    cr_assert_eq(rc, ALLOT_ECORRUPT);
    cr_assert_null(store);
    cr_assert(strstr(message, "format version 5") != NULL, "%s", message);
}

Test(checkpoint, refuses_a_damaged_format_version_or_checkpoint_lsn)
{
    const char *names[] = {"format_version", "checkpoint_lsn", "record_count"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        store_open(0);
        write_batch(checkpoint_batch_create(false), 77);
        MDB_env *env;
        MDB_dbi meta;
        MDB_txn *txn = raw_write_begin(&env, "meta", &meta);
        MDB_val key = {strlen(names[i]), (void *)names[i]}, value;
        cr_assert_eq(mdb_get(txn, meta, &key, &value), 0);
        uint8_t copy[16];
        memcpy(copy, value.mv_data, value.mv_size);
        copy[1] ^= 0x10; /* a bit of the number, not of the trailer */
        MDB_val damaged = {value.mv_size, copy};
        cr_assert_eq(mdb_put(txn, meta, &key, &damaged, 0), 0);
        raw_write_end(env, txn);
        int rc = checkpoint_store_open(path, 0, &store, message, sizeof(message));
        if (i < 2) { /* read by the open */
            cr_assert_eq(rc, ALLOT_ECORRUPT, "%s", names[i]);
            cr_assert_null(store);
            cr_assert(strstr(message, i == 0 ? "fails its checksum" : "bad checkpoint_lsn") != NULL,
                      "%s", message);
        } else { /* read by the load */
            cr_assert_eq(rc, 0, "%s", message);
            st = allot_state_create(NULL);
            cr_assert_eq(checkpoint_store_load_state(store, st, NULL, message, sizeof(message)),
                         ALLOT_ECORRUPT);
            cr_assert(strstr(message, "record_count is damaged") != NULL, "%s", message);
        }
        teardown();
        setup();
    }
}

Test(checkpoint, load_stops_at_a_record_core_refuses)
{
    store_open(0);
    checkpoint_batch_t *batch = checkpoint_batch_create(false);
    const uint8_t key[] = {CHECKPOINT_KIND_LOCATION, 'X'};
    const uint8_t garbage[] = {0xff, 0xff};
    cr_assert_eq(checkpoint_batch_add(batch, key, sizeof(key), ALLOT_EVENT_LOCATION_SNAPSHOT,
                                      garbage, sizeof(garbage), false),
                 0);
    write_batch(batch, 1);
    st = allot_state_create(NULL);
    int rc = checkpoint_store_load(store, apply_record, st, NULL, message, sizeof(message));
    cr_assert_eq(rc, ALLOT_ECORRUPT);
    cr_assert(strstr(message, "id 'X'") != NULL, "%s", message);
}

/* ---- loading on two threads ------------------------------------------------------------- */

/* SKU ids spread over the key range like real ones: "SKU-000000".."SKU-<count-1>". */
static void sku_id(char *out, size_t size, uint32_t i)
{
    snprintf(out, size, "SKU-%06u", i);
}

/* A checkpoint of `count` SKUs at three locations (every seventh at one only), reservations and
 * an adjust key, written at LSN 1. */
static void write_large_checkpoint(uint32_t count)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40, .priority = 1});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58});
    fx_location(st, (fx_loc_t){.id = "W3", .lat = 50.0, .lon = 8.0});
    char id[32];
    for (uint32_t i = 0; i < count; i++) {
        sku_id(id, sizeof(id), i);
        fx_stock(st, id, "W2", 5 + i % 11, i % 3);
        if (i % 7 != 0) {
            fx_stock(st, id, "W3", 2, 0);
            fx_stock(st, id, "W1", 9, 1);
        }
        fx_log_reset(); /* the fixture's event log is bounded */
    }
    for (uint32_t i = 0; i < count; i += count / 8) {
        char cart[32];
        snprintf(cart, sizeof(cart), "cart-%u", i);
        sku_id(id, sizeof(id), i);
        allot_line_input_t line = {{id, strlen(id)}, 2};
        allot_reserve_request_t req = fx_req(cart, &line, 1);
        cr_assert_eq(fx_reserve(st, &req, FX_T0 + i, NULL), 0, "%s", fx_err.message);
    }
    allot_stock_adjust_input_t adj = {S("SKU-000001"), S("W2"), 5, S("receipt-1")};
    cr_assert_eq(allot_stock_adjust(st, &adj, FX_T0, NULL, &fx_err), 0);
    store_open(0);
    write_batch(dirty_batch(st), 1);
}

/* LMDB without MDB_WRITEMAP copies every page a write dirties into a malloc'd buffer and keeps
 * them all on its own free list until the environment closes: a checkpoint of N new records
 * would pin their pages on the heap for the life of the process. */
Test(checkpoint, a_large_checkpoint_leaves_no_page_buffers_on_the_heap)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40, .priority = 1});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58});
    char id[32];
    for (uint32_t i = 0; i < 40000; i++) {
        sku_id(id, sizeof(id), i);
        fx_stock(st, id, "W1", 5 + i % 11, 0);
        fx_stock(st, id, "W2", 2, 0);
        fx_log_reset(); /* the fixture's event log is bounded */
    }
    store_open(0);
    checkpoint_batch_t *batch = dirty_batch(st);
    size_t batch_bytes = checkpoint_batch_bytes(batch);
    struct mallinfo2 before = mallinfo2();
    checkpoint_write_stats_t stats;
    int rc = checkpoint_store_write(store, &batch, 1, 1, &stats, message, sizeof(message));
    cr_assert_eq(rc, 0, "write: %s", message);
    struct mallinfo2 after = mallinfo2();
    checkpoint_batch_free(batch);
    cr_assert_eq(stats.puts, 40002);
    if (before.uordblks == 0)
        return; /* a sanitizer's allocator: glibc's counts are not kept */
    size_t kept = after.uordblks > before.uordblks ? after.uordblks - before.uordblks : 0;
    cr_assert_lt(kept, batch_bytes / 8,
                 "%zu bytes stay allocated after writing a batch of %zu bytes", kept, batch_bytes);
    assert_reload_equal(st, 1, 0);
}

/* This process's bytes of file pages dirtied so far (/proc/self/io write_bytes: counted each
 * time a clean page is dirtied), or 0 without the kernel's per-task I/O accounting. */
static uint64_t process_write_bytes(void)
{
    FILE *io = fopen("/proc/self/io", "r");
    if (io == NULL)
        return 0;
    char line[128];
    unsigned long long bytes = 0;
    while (fgets(line, sizeof line, io) != NULL)
        if (sscanf(line, "write_bytes: %llu", &bytes) == 1)
            break;
    fclose(io);
    return bytes;
}

/* The bytes of the pages the store's file uses (the file itself is as large as the map). */
static uint64_t store_used_bytes(void)
{
    MDB_env *env;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0640), 0);
    MDB_envinfo info;
    mdb_env_info(env, &info);
    MDB_stat env_stat;
    cr_assert_eq(mdb_env_stat(env, &env_stat), 0);
    mdb_env_close(env);
    return ((uint64_t)info.me_last_pgno + 1) * env_stat.ms_psize;
}

/* LMDB's commit (MDB_WRITEMAP) clears a flag in the header of every page the transaction
 * dirtied, then msyncs the map: pages written out before the commit would be dirtied, and
 * written, a second time, all at once. The write-out runs inside the commit's msync instead
 * (persist/writeback.h, THE PACED MAP): each page is dirtied once and written once. */
Test(checkpoint, a_checkpoint_dirties_each_page_once_and_its_commit_msync_is_paced)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40, .priority = 1});
    char id[32];
    for (uint32_t i = 0; i < 40000; i++) {
        sku_id(id, sizeof(id), i);
        fx_stock(st, id, "W1", 5 + i % 11, 0);
        fx_log_reset(); /* the fixture's event log is bounded */
    }
    store_open(0);
    checkpoint_batch_t *batch = dirty_batch(st);
    uint64_t syncs_before = persist_writeback_map_syncs();
    uint64_t dirtied_before = process_write_bytes();
    write_batch(batch, 1);
    uint64_t dirtied = process_write_bytes() - dirtied_before;
    cr_assert_geq(persist_writeback_map_syncs() - syncs_before, 1, "the commit's msync is paced");
    checkpoint_store_close(store);
    store = NULL;
    uint64_t used = store_used_bytes();
    if (dirtied_before == 0 && dirtied == 0)
        cr_skip_test("no per-task I/O accounting in this kernel");
    cr_assert_gt(used, 2u << 20, "%" PRIu64 " in use, %" PRIu64 " dirtied", used, dirtied);
    cr_assert_lt(dirtied, used + used / 4, "%" PRIu64 " bytes dirtied for %" PRIu64 " in use",
                 dirtied, used);
}

/* A full batch of every object of state. */
static checkpoint_batch_t *every_object_batch(allot_state_t *state)
{
    checkpoint_batch_t *batch = checkpoint_batch_create(true);
    cr_assert_not_null(batch);
    cr_assert_eq(allot_state_snapshot_each(state, checkpoint_batch_snapshot_cb, batch), 0);
    return batch;
}

/* The map is written through only once it is allocated on disk (a page written into a hole of
 * a full disk would kill the process): no room at open opens the store the other way; no room
 * to grow the map fails that checkpoint, and the next one, with room, writes it all. */
Test(checkpoint, a_map_that_cannot_be_allocated_on_disk_fails_cleanly)
{
    write_large_checkpoint(3000); /* st holds it; the store is open with the default map */
    checkpoint_store_close(store);
    store = NULL;
    unlink(path);
    persist_fault_set(PERSIST_FAULT_FALLOCATE, ENOSPC, 0);
    store_open(0);
    write_batch(every_object_batch(st), 1);
    persist_fault_clear_all();
    assert_reload_equal(st, 1, 0);
    /* a map just large enough for an empty store, then a disk too full to grow it */
    checkpoint_store_close(store);
    store = NULL;
    unlink(path);
    store_open(64 * 1024);
    uint64_t map_before = checkpoint_store_map_bytes(store);
    persist_fault_set(PERSIST_FAULT_FALLOCATE, ENOSPC, 0);
    checkpoint_batch_t *batch = every_object_batch(st);
    checkpoint_write_stats_t stats;
    int rc = checkpoint_store_write(store, &batch, 1, 2, &stats, message, sizeof(message));
    cr_assert_eq(rc, ALLOT_EIO);
    cr_assert(strstr(message, "No space left on device") != NULL, "%s", message);
    cr_assert_eq(checkpoint_store_lsn(store), 0);
    cr_assert_eq(checkpoint_store_map_bytes(store), map_before);
    persist_fault_clear_all();
    rc = checkpoint_store_write(store, &batch, 1, 2, &stats, message, sizeof(message));
    cr_assert_eq(rc, 0, "%s", message);
    checkpoint_batch_free(batch);
    assert_reload_equal(st, 2, 0);
}

/* Put one raw record (type byte + payload) under a SKU key. */
static void put_sku_record(uint32_t i, uint8_t type, const uint8_t *payload, size_t len)
{
    uint8_t key[40] = {CHECKPOINT_KIND_SKU};
    sku_id((char *)key + 1, sizeof(key) - 1, i);
    checkpoint_batch_t *batch = checkpoint_batch_create(false);
    cr_assert_eq(
        checkpoint_batch_add(batch, key, 1 + strlen((char *)key + 1), type, payload, len, false),
        0);
    write_batch(batch, 2);
}

/* Both ways of loading give the same result, record count, message and state (also after an
 * error: the records before the bad one applied, nothing after it), SKUs numbered alike. (How
 * many records the second thread builds depends on timing; the tests of the split itself,
 * below, make it take part.) */
static void assert_loads_agree(int expected_rc)
{
    checkpoint_load_stats_t one_stats, two_stats;
    allot_state_t *one = load_into_fresh_state(false, expected_rc, &one_stats);
    char one_message[sizeof(message)];
    snprintf(one_message, sizeof(one_message), "%s", message);
    allot_state_t *two = load_into_fresh_state(true, expected_rc, &two_stats);
    cr_assert_str_eq(message, one_message);
    cr_assert_eq(two_stats.records, one_stats.records);
    char *one_dump = fx_dump(one), *two_dump = fx_dump(two);
    cr_assert_str_eq(two_dump, one_dump, "the loaded states differ");
    char id[32];
    for (uint32_t i = 0; i < 3000; i += 499) {
        sku_id(id, sizeof(id), i);
        allot_str_t sku = {id, strlen(id)};
        cr_assert_eq(allot_sku_index_find(two, sku), allot_sku_index_find(one, sku), "%s", id);
    }
    free(one_dump);
    free(two_dump);
    allot_state_destroy(one);
    allot_state_destroy(two);
}

Test(checkpoint, two_thread_load_of_many_skus_equals_the_one_thread_load)
{
    write_large_checkpoint(3000);
    assert_loads_agree(0);
    assert_reload_equal(st, 1, 0);
}

Test(checkpoint, two_thread_load_reports_a_bad_sku_record_as_the_one_thread_load_does)
{
    const uint8_t garbage[] = {ALLOT_EVENT_FORMAT_VERSION, 0xff, 0xff};
    const uint32_t where[] = {0, 1500, 2999}; /* the loader's half, the middle, the builder's */
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        for (int malformed = 0; malformed <= 1; malformed++) {
            write_large_checkpoint(3000);
            if (malformed) /* a value of the type byte alone */
                put_sku_record(where[i], ALLOT_EVENT_SKU_SNAPSHOT, NULL, 0);
            else
                put_sku_record(where[i], ALLOT_EVENT_SKU_SNAPSHOT, garbage, sizeof(garbage));
            assert_loads_agree(ALLOT_ECORRUPT);
            const char *expected = malformed ? "malformed record" : "was refused";
            cr_assert(strstr(message, expected) != NULL, "%s", message);
            teardown(); /* a fresh store for the next case */
            setup();
        }
    }
}

/* The raw key of SKU i. */
static size_t sku_key(uint8_t *key, uint32_t i)
{
    key[0] = CHECKPOINT_KIND_SKU;
    sku_id((char *)key + 1, 32, i);
    return 1 + strlen((char *)key + 1);
}

/* A checkpoint of 3000 SKUs whose SKU i is damaged as `damage` says, reopened: both ways of
 * loading refuse it alike. */
static void assert_damage_refused(uint32_t i, sfx_damage_t damage, const char *expected)
{
    write_large_checkpoint(3000);
    checkpoint_store_close(store);
    store = NULL;
    uint8_t key[40];
    size_t key_len = sku_key(key, i);
    sfx_record_damage(path, key, key_len, damage);
    store_open(0);
    assert_loads_agree(ALLOT_ECORRUPT);
    cr_assert(strstr(message, expected) != NULL, "SKU %u: %s", i, message);
    teardown();
    setup();
}

Test(checkpoint, a_flipped_bit_in_a_value_is_refused_naming_the_kind_and_key)
{
    const uint32_t where[] = {0, 1500, 2999}; /* the loader's half, the middle, the builder's */
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        char expected[96];
        snprintf(expected, sizeof(expected), "(kind 2 SKU, id 'SKU-%06u',", where[i]);
        for (long bit = 0; bit < 8 * 24; bit += 37) /* the type and payload bytes */
            assert_damage_refused(where[i], (sfx_damage_t){bit, -1, 0, false}, expected);
        assert_damage_refused(where[i], (sfx_damage_t){-1, -1, 0, true}, expected);
        cr_assert(strstr(message, "fails its checksum") != NULL, "%s", message);
    }
}

Test(checkpoint, a_flipped_bit_in_a_key_is_refused_naming_the_damaged_key)
{
    /* 0x40 in the last id byte: '0' becomes 'p', a key no other record has */
    assert_damage_refused(1500, (sfx_damage_t){-1, 8 * 10 + 6, 0, false},
                          "(kind 2 SKU, id 'SKU-00150p',");
    cr_assert(strstr(message, "fails its checksum") != NULL, "%s", message);
    /* the kind byte itself: 0x02 becomes 0x03, the record now sorts among the reservations */
    assert_damage_refused(2000, (sfx_damage_t){-1, 0, 0, false},
                          "(kind 3 reservation, id 'SKU-002000',");
}

Test(checkpoint, a_truncated_value_is_refused)
{
    assert_damage_refused(700, (sfx_damage_t){-1, -1, 12, false}, "fails its checksum");
    assert_damage_refused(2700, (sfx_damage_t){-1, -1, 5, false}, "malformed record");
}

Test(checkpoint, a_record_missing_from_the_walk_is_refused)
{
    /* What a page of garbage can do: LMDB walks past records without an error. Here the record
     * is deleted behind the store's back: the count no longer matches. */
    write_large_checkpoint(3000);
    checkpoint_store_close(store);
    store = NULL;
    MDB_env *env;
    MDB_dbi state_dbi;
    MDB_txn *txn = sfx_raw_begin(path, &env, &state_dbi);
    uint8_t key[40];
    MDB_val k = {sku_key(key, 1234), key};
    cr_assert_eq(mdb_del(txn, state_dbi, &k, NULL), 0);
    sfx_raw_end(env, txn);
    store_open(0);
    assert_loads_agree(ALLOT_ECORRUPT);
    cr_assert(strstr(message, "records were read but the store holds") != NULL, "%s", message);
}

Test(checkpoint, a_version_2_store_is_rewritten_with_checksums_on_open)
{
    write_large_checkpoint(3000);
    checkpoint_store_close(store);
    store = NULL;
    MDB_env *env;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR, 0640), 0);
    sfx_store_rewrite_as_version(env, 2);
    mdb_env_close(env);
    store_open(0);
    cr_assert_eq(checkpoint_store_upgraded_from(store), 2);
    assert_reload_equal(st, 1, 0); /* the same state, from version 3 records now */
    cr_assert_eq(checkpoint_store_upgraded_from(store), 0, "upgraded once");
    checkpoint_store_close(store);
    store = NULL;
    uint8_t key[40];
    size_t key_len = sku_key(key, 42);
    sfx_record_damage(path, key, key_len, (sfx_damage_t){20, -1, 0, false});
    store_open(0);
    checkpoint_load_stats_t stats;
    allot_state_destroy(load_into_fresh_state(true, ALLOT_ECORRUPT, &stats));
    cr_assert(strstr(message, "id 'SKU-000042'") != NULL, "checksums after the upgrade: %s",
              message);
}

Test(checkpoint, a_version_2_store_that_fills_the_map_is_upgraded_in_a_grown_map)
{
    write_large_checkpoint(3000);
    checkpoint_store_close(store);
    store = NULL;
    MDB_env *env;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR, 0640), 0);
    sfx_store_rewrite_as_version(env, 2);
    MDB_envinfo info;
    mdb_env_info(env, &info);
    MDB_stat env_stat;
    cr_assert_eq(mdb_env_stat(env, &env_stat), 0);
    mdb_env_close(env);
    /* a map just the size of the pages in use (the file may be larger: with MDB_WRITEMAP it is
     * as large as the map was): the rewrite needs more and grows it */
    uint64_t used_bytes = ((uint64_t)info.me_last_pgno + 1) * env_stat.ms_psize;
    store_open(used_bytes);
    cr_assert_eq(checkpoint_store_upgraded_from(store), 2);
    cr_assert_gt(checkpoint_store_map_bytes(store), used_bytes);
    assert_reload_equal(st, 1, 0);
}

Test(checkpoint, load_refuses_a_record_of_another_type_under_a_sku_key)
{
    const uint32_t where[] = {0, 2990}; /* the loader's end, the builder's end */
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        write_large_checkpoint(3000);
        /* a location.put: applied whole it would change the locations the builder reads */
        allot_state_t *scratch = fx_state();
        fx_location(scratch, (fx_loc_t){.id = "W9", .lat = 1.0, .lon = 2.0});
        cr_assert_eq(fx_log.count, 1);
        put_sku_record(where[i], fx_log.events[0].type, fx_log.events[0].payload,
                       fx_log.events[0].len);
        allot_state_destroy(scratch);
        checkpoint_load_stats_t stats;
        allot_state_t *loaded = load_into_fresh_state(true, ALLOT_ECORRUPT, &stats);
        char expected[64];
        snprintf(expected, sizeof(expected), "record #%u (kind 2, type 1, id 'SKU-%06u')",
                 3 + where[i], where[i]);
        cr_assert(strstr(message, expected) != NULL, "%s", message);
        cr_assert_eq(stats.records, 3 + where[i]);
        allot_state_destroy(loaded);
        teardown();
        setup();
    }
}

/* The split itself, with callbacks that record what happens: the loading thread's builds wait
 * until the second thread has built `builder_min` records, so that both take part whatever the
 * timing, and a build or install refuses the record with key id `refuse` (or none). */
typedef struct split_probe {
    _Atomic uint64_t built_by_builder;
    uint64_t builder_min;
    const char *refuse;
    bool refuse_at_install;
    uint64_t installed; /* then the key ids, in install order */
    char (*ids)[16];
} split_probe_t;

typedef struct split_probe_item {
    char id[16];
} split_probe_item_t;

static split_probe_t probe;

static bool probe_refuses(const uint8_t *key, size_t key_len)
{
    return probe.refuse != NULL && key_len - 1 == strlen(probe.refuse) &&
           memcmp(key + 1, probe.refuse, key_len - 1) == 0;
}

static int probe_build(void *build_ctx, const uint8_t *key, size_t key_len, uint8_t type,
                       const uint8_t *payload, size_t payload_len, void *item)
{
    (void)type;
    (void)payload;
    (void)payload_len;
    bool on_builder = build_ctx == &probe.builder_min; /* loader_ctx is &probe.refuse */
    for (int waited = 0;
         !on_builder && atomic_load(&probe.built_by_builder) < probe.builder_min && waited < 10000;
         waited++)
        usleep(1000);
    snprintf(((split_probe_item_t *)item)->id, 16, "%.*s", (int)key_len - 1, key + 1);
    if (!probe.refuse_at_install && probe_refuses(key, key_len))
        return ALLOT_ECORRUPT;
    if (on_builder)
        atomic_fetch_add(&probe.built_by_builder, 1);
    return 0;
}

static int probe_install(void *ctx, void *item)
{
    (void)ctx;
    const char *id = ((split_probe_item_t *)item)->id;
    if (probe.refuse_at_install && probe.refuse != NULL && strcmp(id, probe.refuse) == 0)
        return ALLOT_ENOMEM;
    snprintf(probe.ids[probe.installed++], 16, "%s", id);
    return 0;
}

static void probe_discard(void *ctx, void *item)
{
    (void)ctx;
    (void)item;
}

/* The one-thread reference: record_cb refuses as the split's callbacks do. */
static int probe_record(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                        const uint8_t *payload, size_t payload_len)
{
    (void)ctx;
    (void)type;
    (void)payload;
    (void)payload_len;
    if (probe_refuses(key, key_len))
        return probe.refuse_at_install ? ALLOT_ENOMEM : ALLOT_ECORRUPT;
    snprintf(probe.ids[probe.installed++], 16, "%.*s", (int)key_len - 1, key + 1);
    return 0;
}

/* Load with the probe's split (and, for reference, one record at a time): the same result,
 * message, count and records in the same order; the second thread built at least builder_min. */
static void assert_split_agrees(int expected_rc, uint64_t builder_min)
{
    const checkpoint_split_t split = {.kind = CHECKPOINT_KIND_SKU,
                                      .item_bytes = sizeof(split_probe_item_t),
                                      .build_cb = probe_build,
                                      .builder_ctx = &probe.builder_min,
                                      .loader_ctx = &probe.refuse,
                                      .install_cb = probe_install,
                                      .discard_cb = probe_discard};
    char(*reference)[16] = calloc(8192, 16);
    probe.ids = reference;
    probe.installed = 0;
    uint64_t one_records = 0;
    cr_assert_eq(
        checkpoint_store_load(store, probe_record, NULL, &one_records, message, sizeof(message)),
        expected_rc, "%s", message);
    uint64_t reference_count = probe.installed;
    char one_message[sizeof(message)];
    snprintf(one_message, sizeof(one_message), "%s", message);

    probe.ids = calloc(8192, 16);
    probe.installed = 0;
    atomic_store(&probe.built_by_builder, 0);
    probe.builder_min = builder_min;
    checkpoint_load_stats_t stats;
    cr_assert_eq(checkpoint_store_load_split(store, probe_record, &split, NULL, &stats, message,
                                             sizeof(message)),
                 expected_rc, "%s", message);
    cr_assert_str_eq(message, one_message);
    cr_assert_eq(stats.records, one_records);
    cr_assert_eq(probe.installed, reference_count);
    for (uint64_t i = 0; i < reference_count; i++)
        cr_assert_str_eq(probe.ids[i], reference[i], "record %" PRIu64, i);
    cr_assert_geq(atomic_load(&probe.built_by_builder), builder_min, "refuse %s at install %d",
                  probe.refuse ? probe.refuse : "-", probe.refuse_at_install);
    free(probe.ids);
    free(reference);
}

Test(checkpoint, split_load_installs_both_threads_records_in_key_order)
{
    write_large_checkpoint(3000);
    probe.refuse = NULL;
    assert_split_agrees(0, 1000);
}

Test(checkpoint, split_load_stops_at_the_first_bad_record_in_key_order)
{
    write_large_checkpoint(3000);
    const char *bad[] = {"SKU-000000", "SKU-001000", "SKU-002998", "SKU-002999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int at_install = 0; at_install <= 1; at_install++) {
            probe.refuse = bad[i];
            probe.refuse_at_install = at_install;
            /* the builder takes part, but (from the top) only reaches low keys when the loader
             * has not */
            assert_split_agrees(at_install ? ALLOT_ENOMEM : ALLOT_ECORRUPT, 100);
        }
    }
    probe.refuse = NULL;
}

/* Put SKU records with keys of key_len bytes straight into LMDB (the store refuses such keys). */
static void put_raw_records(uint32_t count, size_t key_len)
{
    MDB_env *env;
    MDB_dbi state_dbi;
    MDB_txn *txn = raw_write_begin(&env, "state", &state_dbi);
    uint8_t key[511], value[2] = {ALLOT_EVENT_SKU_SNAPSHOT, ALLOT_EVENT_FORMAT_VERSION};
    for (uint32_t i = 0; i < count; i++) {
        memset(key, 'x', sizeof(key));
        key[0] = CHECKPOINT_KIND_SKU;
        char id[16];
        snprintf(id, sizeof(id), "SKU-9%06u", i % 1000000);
        memcpy(key + 1, id, strlen(id));
        MDB_val k = {key_len, key}, v = {sizeof(value), value};
        cr_assert_eq(mdb_put(txn, state_dbi, &k, &v, 0), 0);
    }
    raw_write_end(env, txn);
    store_open(0);
}

Test(checkpoint, split_load_reports_overlong_keys_as_malformed)
{
    write_large_checkpoint(3000);
    put_raw_records(300, 300); /* above every SKU-0..., where the builder starts */
    probe.refuse = NULL;
    assert_split_agrees(ALLOT_ECORRUPT, 100);
    cr_assert(strstr(message, "malformed record #3003 (key 300 bytes") != NULL, "%s", message);
}

/* ---- the writer thread ------------------------------------------------------------------- */

typedef struct done_log {
    int calls;
    int status;
    uint64_t lsn;
    uint64_t puts;
    int committed_status;
    int closed;
} done_log_t;

static void on_done(checkpoint_writer_t *writer, int status, uint64_t lsn,
                    const checkpoint_write_stats_t *stats, const char *msg, void *ctx)
{
    (void)writer;
    (void)msg;
    done_log_t *log = ctx;
    log->calls++;
    log->status = status;
    log->lsn = lsn;
    log->puts = stats->puts;
    log->committed_status = stats->committed_status;
}

static void on_closed(void *ctx)
{
    ((done_log_t *)ctx)->closed++;
}

static void run_until(uv_loop_t *loop, const int *counter, int value)
{
    for (int i = 0; i < 10000 && *counter < value; i++)
        uv_run(loop, UV_RUN_ONCE);
    cr_assert_eq(*counter, value);
}

/* A checkpoint writer of `store` reporting to log, started on a new loop. */
static checkpoint_writer_t *writer_started(uv_loop_t *loop, done_log_t *log)
{
    cr_assert_eq(uv_loop_init(loop), 0);
    checkpoint_writer_t *writer;
    cr_assert_eq(checkpoint_writer_start(loop, store, &writer, on_done, log), 0);
    return writer;
}

Test(checkpoint, writer_thread_commits_reports_and_keeps_failed_batches)
{
    st = fx_state();
    populate(st);
    store_open(0);
    uv_loop_t loop;
    done_log_t log = {0};
    checkpoint_writer_t *writer = writer_started(&loop, &log);
    cr_assert_eq(checkpoint_writer_submit(writer, dirty_batch(st), 30), 0);
    cr_assert(checkpoint_writer_busy(writer));
    checkpoint_batch_t *extra = checkpoint_batch_create(false);
    cr_assert_eq(checkpoint_writer_submit(writer, extra, 31), ALLOT_EOVERLOADED);
    checkpoint_batch_free(extra);
    run_until(&loop, &log.calls, 1);
    cr_assert_eq(log.status, 0);
    cr_assert_eq(log.lsn, 30);
    cr_assert_eq(log.puts, 8);
    /* A failing checkpoint (LSN going backwards) keeps its batch... */
    fx_stock(st, "B", "S1", 4, 0);
    cr_assert_eq(checkpoint_writer_submit(writer, dirty_batch(st), 29), 0);
    run_until(&loop, &log.calls, 2);
    cr_assert_eq(log.status, ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(checkpoint_writer_kept(writer), 1);
    cr_assert_gt(checkpoint_writer_kept_bytes(writer), 0);
    /* ...and the next one writes it before its own batch. */
    fx_stock(st, "A", "W2", 1, 0);
    cr_assert_eq(checkpoint_writer_submit(writer, dirty_batch(st), 33), 0);
    run_until(&loop, &log.calls, 3);
    cr_assert_eq(log.status, 0);
    cr_assert_eq(log.puts, 2);
    cr_assert_eq(checkpoint_writer_kept(writer), 0);
    /* Close with a checkpoint in flight: it is finished and reported first. */
    cr_assert_eq(checkpoint_writer_submit(writer, NULL, 34), 0);
    checkpoint_writer_close(writer, on_closed);
    cr_assert_eq(log.calls, 4);
    cr_assert_eq(log.status, 0);
    run_until(&loop, &log.closed, 1);
    cr_assert_eq(uv_run(&loop, UV_RUN_NOWAIT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
    assert_reload_equal(st, 34, 0);
}

Test(checkpoint, dropped_batches_are_replaced_by_a_full_checkpoint)
{
    st = fx_state();
    populate(st);
    store_open(0);
    uv_loop_t loop;
    done_log_t log = {0};
    checkpoint_writer_t *writer = writer_started(&loop, &log);
    write_batch(checkpoint_batch_create(false), 50); /* the store is ahead: the next fails */
    cr_assert_eq(checkpoint_writer_submit(writer, dirty_batch(st), 40), 0);
    run_until(&loop, &log.calls, 1);
    cr_assert_neq(log.status, 0);
    checkpoint_writer_drop_kept(writer);
    cr_assert_eq(checkpoint_writer_kept(writer), 0);
    checkpoint_batch_t *full = checkpoint_batch_create(true);
    cr_assert_eq(allot_state_snapshot_each(st, checkpoint_batch_snapshot_cb, full), 0);
    cr_assert_eq(checkpoint_writer_submit(writer, full, 60), 0);
    run_until(&loop, &log.calls, 2);
    cr_assert_eq(log.status, 0);
    cr_assert_eq(log.puts, 8);
    checkpoint_writer_close(writer, on_closed);
    run_until(&loop, &log.closed, 1);
    cr_assert_eq(uv_loop_close(&loop), 0);
    assert_reload_equal(st, 60, 0);
}

/* What committed_cb saw, on the writer thread. */
typedef struct committed_log {
    int calls;
    int done_calls_then; /* done_cb calls when committed_cb ran */
    const done_log_t *done;
    pid_t tid;
    int nice;
    uint64_t stored_lsn;
    int status; /* what it returns */
} committed_log_t;

static int on_committed(void *ctx)
{
    committed_log_t *log = ctx;
    log->calls++;
    log->done_calls_then = log->done->calls;
    log->tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    log->nice = getpriority(PRIO_PROCESS, (id_t)log->tid);
    log->stored_lsn = checkpoint_store_lsn(store);
    return log->status;
}

Test(checkpoint, writer_thread_runs_committed_cb_after_each_commit_below_the_loops_priority)
{
    st = fx_state();
    populate(st);
    store_open(0);
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    done_log_t log = {0};
    committed_log_t committed = {.done = &log, .status = EIO};
    checkpoint_writer_t *writer;
    cr_assert_eq(checkpoint_writer_start(&loop, store, &writer, on_done, &log), 0);
    checkpoint_writer_set_committed_cb(writer, on_committed, &committed);
    cr_assert_eq(checkpoint_writer_submit(writer, dirty_batch(st), 30), 0);
    run_until(&loop, &log.calls, 1);
    cr_assert_eq(log.status, 0);
    /* after the commit, before done_cb, on the writer thread, its result handed to done_cb */
    cr_assert_eq(committed.calls, 1);
    cr_assert_eq(committed.stored_lsn, 30);
    cr_assert_eq(committed.done_calls_then, 0);
    cr_assert_neq(committed.tid, (pid_t)syscall(SYS_gettid));
    cr_assert_eq(log.committed_status, EIO, "done_cb gets committed_cb's status");
    cr_assert_eq(checkpoint_writer_kept(writer), 0);
    errno = 0;
    int loop_nice = getpriority(PRIO_PROCESS, 0);
    cr_assert_eq(committed.nice,
                 loop_nice + CHECKPOINT_WRITER_NICE > 19 ? 19 : loop_nice + CHECKPOINT_WRITER_NICE,
                 "the writer runs at nice %d, the loop at %d", committed.nice, loop_nice);
    /* a failed write does not run it */
    committed.status = 0;
    cr_assert_eq(checkpoint_writer_submit(writer, dirty_batch(st), 29), 0);
    run_until(&loop, &log.calls, 2);
    cr_assert_neq(log.status, 0);
    cr_assert_eq(committed.calls, 1);
    checkpoint_writer_drop_kept(writer);
    checkpoint_writer_close(writer, on_closed);
    run_until(&loop, &log.closed, 1);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(checkpoint, read_lsn_reads_without_creating_anything)
{
    uint64_t lsn = 99;
    bool exists = true;
    cr_assert_eq(checkpoint_store_read_lsn(path, &lsn, &exists, message, sizeof(message)), 0);
    cr_assert_not(exists);
    cr_assert_eq(lsn, 0);
    cr_assert_neq(access(path, F_OK), 0, "read_lsn created the store");
    store_open(0);
    write_batch(checkpoint_batch_create(false), 1234);
    cr_assert_eq(checkpoint_store_read_lsn(path, &lsn, &exists, message, sizeof(message)), 0, "%s",
                 message);
    cr_assert(exists);
    cr_assert_eq(lsn, 1234);
}

/* ---- the order a checkpoint writes its entries in ------------------------------------------ */

#define ORDER_KEYS_MAX 40000u

/* What the entries added so far leave for each key: the version of its last put, 0 when it is
 * absent (never put, or deleted last). */
static uint32_t order_model[ORDER_KEYS_MAX];

/* Key i: a reservation key "r-<i>", i zero-padded to 6 digits. */
static size_t order_key(uint8_t *key, uint32_t i)
{
    key[0] = CHECKPOINT_KIND_RESERVATION;
    return 1 + (size_t)snprintf((char *)key + 1, 16, "r-%06u", i);
}

/* Put (version > 0) or delete (version 0) key i; the payload holds i and the version. */
static void order_add(checkpoint_batch_t *batch, uint32_t i, uint32_t version)
{
    uint8_t key[32], payload[100] = {0};
    size_t key_len = order_key(key, i);
    memcpy(payload, &i, 4);
    memcpy(payload + 4, &version, 4);
    int rc = version > 0
                 ? checkpoint_batch_add(batch, key, key_len, 18, payload, sizeof(payload), false)
                 : checkpoint_batch_add(batch, key, key_len, 18, NULL, 0, true);
    cr_assert_eq(rc, 0);
    order_model[i] = version;
}

/* 0..n-1 in a fixed scrambled order (the same every run). */
static void order_shuffle(uint32_t *items, uint32_t n, uint32_t first)
{
    for (uint32_t i = 0; i < n; i++)
        items[i] = first + i;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint32_t i = n - 1; i > 0; i--) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t j = (uint32_t)((x >> 33) % (i + 1));
        uint32_t t = items[i];
        items[i] = items[j];
        items[j] = t;
    }
}

typedef struct order_seen {
    uint32_t records;
    uint32_t previous; /* the last key read + 1 (keys arrive in key order) */
    uint32_t version[ORDER_KEYS_MAX];
} order_seen_t;

static int order_collect(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                         const uint8_t *payload, size_t payload_len)
{
    order_seen_t *seen = ctx;
    uint32_t i, version;
    cr_assert_eq(type, 18);
    cr_assert_eq(payload_len, 100);
    memcpy(&i, payload, 4);
    memcpy(&version, payload + 4, 4);
    uint8_t expected[32];
    cr_assert_eq(key_len, order_key(expected, i));
    cr_assert_eq(memcmp(key, expected, key_len), 0, "the value of another key");
    cr_assert_geq(i + 1, seen->previous + 1, "keys out of order");
    seen->previous = i + 1;
    seen->version[i] = version;
    seen->records++;
    return 0;
}

/* The store holds exactly what order_model says. */
static void order_assert_stored(void)
{
    static order_seen_t seen;
    memset(&seen, 0, sizeof(seen));
    uint64_t records = 0;
    cr_assert_eq(
        checkpoint_store_load(store, order_collect, &seen, &records, message, sizeof(message)), 0,
        "%s", message);
    uint32_t expected = 0;
    for (uint32_t i = 0; i < ORDER_KEYS_MAX; i++) {
        cr_assert_eq(seen.version[i], order_model[i], "key %u: version %u, expected %u", i,
                     seen.version[i], order_model[i]);
        expected += order_model[i] > 0;
    }
    cr_assert_eq(seen.records, expected);
    cr_assert_eq(records, expected);
}

Test(checkpoint, entries_in_any_order_leave_what_the_last_entry_of_each_key_says)
{
    memset(order_model, 0, sizeof(order_model));
    static uint32_t items[3000];
    store_open(0);
    checkpoint_batch_t *batches[2] = {checkpoint_batch_create(false),
                                      checkpoint_batch_create(false)};
    /* The first batch puts 3000 keys in a scrambled order and deletes every third again. */
    order_shuffle(items, 3000, 0);
    for (uint32_t n = 0; n < 3000; n++)
        order_add(batches[0], items[n], 1);
    for (uint32_t n = 0; n < 3000; n++)
        if (items[n] % 3 == 0)
            order_add(batches[0], items[n], 0);
    /* The second (written in the same transaction, as a kept batch and the next one are) puts
     * every fifth again, deletes every seventh, puts some deleted ones back and puts new keys
     * twice. */
    for (uint32_t n = 0; n < 3000; n++) {
        uint32_t i = items[n];
        if (i % 5 == 0)
            order_add(batches[1], i, 2);
        if (i % 7 == 0)
            order_add(batches[1], i, 0);
        if (i % 21 == 0)
            order_add(batches[1], i, 3);
    }
    for (uint32_t i = 3999; i >= 3000; i--) {
        order_add(batches[1], i, 4);
        order_add(batches[1], i, 5);
    }
    checkpoint_write_stats_t stats;
    size_t entries = checkpoint_batch_entries(batches[0]) + checkpoint_batch_entries(batches[1]);
    cr_assert_eq(checkpoint_store_write(store, batches, 2, 5, &stats, message, sizeof(message)), 0,
                 "%s", message);
    cr_assert_eq(stats.puts + stats.deletes, entries);
    checkpoint_batch_free(batches[0]);
    checkpoint_batch_free(batches[1]);
    order_assert_stored();
    /* A later checkpoint changes keys among the stored ones, deletes and adds. */
    checkpoint_batch_t *batch = checkpoint_batch_create(false);
    for (uint32_t n = 0; n < 3000; n += 2)
        order_add(batch, items[n], items[n] % 4 == 0 ? 0 : 6);
    for (uint32_t i = 4000; i < 4100; i++)
        order_add(batch, 8099 - i, 7);
    write_batch(batch, 6);
    order_assert_stored();
    store_open(0);
    order_assert_stored();
}

/* The share of the state database's leaf pages its records fill (LMDB's node: an 8-byte
 * header, the key and the value, rounded to even, plus a 2-byte slot). */
static double order_leaf_fill(size_t key_len, size_t value_len)
{
    MDB_txn *txn;
    MDB_stat stat;
    MDB_env *env = checkpoint_store_env(store);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_stat(txn, checkpoint_store_state_dbi(store), &stat), 0);
    mdb_txn_abort(txn);
    size_t node = ((8 + key_len + value_len + 1) & ~(size_t)1) + 2;
    return (double)(stat.ms_entries * node) / ((double)stat.ms_leaf_pages * (stat.ms_psize - 16));
}

Test(checkpoint, new_keys_past_the_stored_ones_fill_their_pages_in_any_batch_order)
{
    memset(order_model, 0, sizeof(order_model));
    static uint32_t items[20000];
    store_open(0);
    uint8_t key[32];
    size_t key_len = order_key(key, 0), value_len = 1 + 100 + 4;
    /* Keys in a scrambled order, past every stored one: written in key order and appended, the
     * pages fill up instead of being split in half (about 69% full for inserts in random
     * order). */
    for (uint32_t round = 0; round < 2; round++) {
        order_shuffle(items, 20000, round * 20000);
        checkpoint_batch_t *batch = checkpoint_batch_create(false);
        for (uint32_t n = 0; n < 20000; n++)
            order_add(batch, items[n], 1);
        write_batch(batch, 1 + round);
        double fill = order_leaf_fill(key_len, value_len);
        cr_assert_geq(fill, 0.9, "round %u: leaf pages %.0f%% full", round, fill * 100);
    }
    order_assert_stored();
}

/* A writer's batch of keys [first, first + n) at version (through the writer's spares), committed
 * at lsn; returns the chunk bytes the spares held while it was being filled. */
static size_t spares_batch_commit(uv_loop_t *loop, checkpoint_writer_t *writer, done_log_t *log,
                                  uint32_t first, uint32_t n, uint32_t version, uint64_t lsn)
{
    checkpoint_batch_t *batch = checkpoint_writer_batch_create(writer, false);
    cr_assert_not_null(batch);
    for (uint32_t i = first; i < first + n; i++)
        order_add(batch, i, version);
    size_t spare_bytes = checkpoint_writer_spare_bytes(writer);
    int calls = log->calls;
    cr_assert_eq(checkpoint_writer_submit(writer, batch, lsn), 0);
    run_until(loop, &log->calls, calls + 1);
    cr_assert_eq(log->status, 0);
    return spare_bytes;
}

Test(checkpoint, a_writers_next_batches_fill_the_chunks_its_committed_batches_freed)
{
    memset(order_model, 0, sizeof(order_model));
    store_open(0);
    uv_loop_t loop;
    done_log_t log = {0};
    checkpoint_writer_t *writer = writer_started(&loop, &log);
    cr_assert_eq(checkpoint_writer_spare_bytes(writer), 0);
    /* 40000 entries of 117 bytes: about 4.7 MB in chunks of 64 KiB doubling up to 4 MiB */
    spares_batch_commit(&loop, writer, &log, 0, ORDER_KEYS_MAX, 1, 1);
    size_t after_large = checkpoint_writer_spare_bytes(writer);
    cr_assert_geq(after_large, (size_t)ORDER_KEYS_MAX * 117, "kept %zu bytes", after_large);
    cr_assert_leq(after_large, CHECKPOINT_BATCH_SPARE_BYTES_MAX);
    /* A smaller batch fills a kept chunk (the spares shrink by it while it is filled), and its
     * commit leaves no more kept than it took: a small checkpoint gives back what a large left. */
    size_t while_small = spares_batch_commit(&loop, writer, &log, 0, 5000, 2, 2);
    cr_assert_lt(while_small, after_large, "the batch took no kept chunk");
    size_t after_small = checkpoint_writer_spare_bytes(writer);
    cr_assert_gt(after_small, 0);
    cr_assert_leq(after_small, after_large - while_small, "kept %zu bytes", after_small);
    /* Reused chunks hold what was added last, nothing of what they held before. */
    for (uint32_t i = 0; i < 3; i++)
        spares_batch_commit(&loop, writer, &log, i * 7000, 9000, 3 + i, 3 + i);
    order_assert_stored();
    /* A batch freed without being submitted gives its chunks back too. */
    checkpoint_batch_t *dropped = checkpoint_writer_batch_create(writer, false);
    size_t before_drop = checkpoint_writer_spare_bytes(writer);
    uint32_t stored = order_model[1];
    order_add(dropped, 1, 9);
    order_model[1] = stored; /* not written */
    cr_assert_lt(checkpoint_writer_spare_bytes(writer), before_drop);
    checkpoint_batch_free(dropped);
    cr_assert_eq(checkpoint_writer_spare_bytes(writer), before_drop);
    /* Fitted to what is dirty: 1000 more entries of 117 bytes keep one chunk at most; nothing
     * dirty, nothing kept. */
    checkpoint_writer_spares_fit(writer, 1000);
    cr_assert_leq(checkpoint_writer_spare_bytes(writer), CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
    checkpoint_writer_spares_fit(writer, 0);
    cr_assert_eq(checkpoint_writer_spare_bytes(writer), 0);
    checkpoint_writer_close(writer, on_closed); /* frees the spares (ASan: nothing leaks) */
    run_until(&loop, &log.closed, 1);
    cr_assert_eq(uv_loop_close(&loop), 0);
    order_assert_stored();
}

Test(checkpoint, the_loop_copies_a_hold_into_its_batch_without_the_id_its_key_holds)
{
    st = fx_state();
    populate(st);
    static hold_records_t h;
    holds_of(st, &h);
    checkpoint_batch_t *batch = checkpoint_batch_create(false);
    size_t expected = 0;
    for (size_t i = 0; i < h.count; i++) {
        cr_assert_eq(checkpoint_batch_add(batch, h.key[i], h.key_len[i], h.type[i], h.payload[i],
                                          h.payload_len[i], false),
                     0);
        /* the entry header, the key, the payload less its 2-byte id length and id */
        expected += 8 + h.key_len[i] + h.payload_len[i] - 2 - (h.key_len[i] - 1);
    }
    cr_assert_eq(checkpoint_batch_bytes(batch), expected);
    /* Under another key the payload's id is not the key's: copied whole. */
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
    memcpy(key, h.key[0], h.key_len[0]);
    key[h.key_len[0] - 1] ^= 1;
    cr_assert_eq(checkpoint_batch_add(batch, key, h.key_len[0], h.type[0], h.payload[0],
                                      h.payload_len[0], false),
                 0);
    cr_assert_eq(checkpoint_batch_bytes(batch), expected + 8 + h.key_len[0] + h.payload_len[0]);
    checkpoint_batch_free(batch);
}

/* n entries of payload_bytes each under transit keys (the writer stores them as they are). */
static void large_entries_add(checkpoint_batch_t *batch, uint32_t n, size_t payload_bytes)
{
    static uint8_t payload[64 * 1024];
    cr_assert_leq(payload_bytes, sizeof(payload));
    for (uint32_t i = 0; i < n; i++) {
        uint8_t key[16] = {CHECKPOINT_KIND_TRANSIT};
        size_t key_len = 1 + (size_t)snprintf((char *)key + 1, 12, "m-%06u", i);
        memcpy(payload, &i, sizeof(i));
        cr_assert_eq(checkpoint_batch_add(batch, key, key_len, 21, payload, payload_bytes, false),
                     0);
    }
}

static void large_batch_commit(uv_loop_t *loop, checkpoint_writer_t *writer, done_log_t *log,
                               uint32_t n, uint64_t lsn)
{
    checkpoint_batch_t *batch = checkpoint_writer_batch_create(writer, false);
    cr_assert_not_null(batch);
    large_entries_add(batch, n, 60000);
    int calls = log->calls;
    cr_assert_eq(checkpoint_writer_submit(writer, batch, lsn), 0);
    run_until(loop, &log->calls, calls + 1);
    cr_assert_eq(log->status, 0);
}

Test(checkpoint, a_writers_next_checkpoints_copy_into_its_chunks_and_keep_no_more_than_the_bound)
{
    store_open(512ull << 20);
    uv_loop_t loop;
    done_log_t log = {0};
    checkpoint_writer_t *writer = writer_started(&loop, &log);
    /* The first checkpoint's chunks are fresh; the next ones of the same size take their chunks
     * from the spares, and allocate none. */
    large_batch_commit(&loop, writer, &log, 200, 1); /* 12 MB */
    checkpoint_spare_stats_t first;
    checkpoint_writer_spare_stats(writer, &first);
    cr_assert_gt(first.chunks_fresh, 0);
    cr_assert_eq(first.chunks_reused, 0);
    cr_assert_geq(first.bytes, 200 * 60000);
    checkpoint_spare_stats_t last = first;
    for (uint64_t lsn = 2; lsn <= 4; lsn++) {
        large_batch_commit(&loop, writer, &log, 200, lsn);
        checkpoint_spare_stats_t next;
        checkpoint_writer_spare_stats(writer, &next);
        cr_assert_eq(next.chunks_fresh, first.chunks_fresh, "checkpoint %" PRIu64, lsn);
        cr_assert_gt(next.chunks_reused, last.chunks_reused, "checkpoint %" PRIu64, lsn);
        /* kept: what the batch took (the largest chunks first), no more than before */
        cr_assert_geq(next.bytes, 200 * 60000);
        cr_assert_leq(next.bytes, last.bytes);
        last = next;
    }
    /* A larger one takes the spares, then fresh chunks of the largest size: 8 MB more than the
     * spares hold take 3 chunks at most (not a new run of small ones doubling from 64 KiB), and
     * the one after the last is allocated ahead (to be faulted in off the loop): 4. */
    large_batch_commit(&loop, writer, &log, 340, 5); /* 20 MB */
    checkpoint_spare_stats_t larger;
    checkpoint_writer_spare_stats(writer, &larger);
    cr_assert_leq(larger.chunks_fresh - first.chunks_fresh, 4, "%" PRIu64 " fresh chunks",
                  larger.chunks_fresh - first.chunks_fresh);
    /* A checkpoint larger than the bound: the spares keep the bound at most. */
    large_batch_commit(&loop, writer, &log, 1300, 6); /* 78 MB */
    size_t kept = checkpoint_writer_spare_bytes(writer);
    cr_assert_leq(kept, CHECKPOINT_BATCH_SPARE_BYTES_MAX);
    cr_assert_geq(kept, CHECKPOINT_BATCH_SPARE_BYTES_MAX - CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
    checkpoint_writer_close(writer, on_closed); /* frees the spares (ASan: nothing leaks) */
    run_until(&loop, &log.closed, 1);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* The mappings core/pages.h reported fresh (persist/pages_warm.c faults them in): where, and
 * their sizes; fresh_count counts them all. */
#define FRESH_KEPT_MAX 64
static void *fresh_at[FRESH_KEPT_MAX];
static size_t fresh_bytes[FRESH_KEPT_MAX];
static size_t fresh_count;

static void fresh_record(void *ctx, void *at, size_t bytes)
{
    (void)ctx;
    if (fresh_count < FRESH_KEPT_MAX) {
        fresh_at[fresh_count] = at;
        fresh_bytes[fresh_count] = bytes;
    }
    fresh_count++;
}

Test(checkpoint, a_batch_past_the_spares_allocates_its_next_chunk_ahead_to_be_faulted_in)
{
    store_open(512ull << 20);
    uv_loop_t loop;
    done_log_t log = {0};
    checkpoint_writer_t *writer = writer_started(&loop, &log);
    allot_pages_hooks_set(&(allot_pages_hooks_t){.fresh_cb = fresh_record});
    checkpoint_batch_t *batch = checkpoint_writer_batch_create(writer, false);
    cr_assert_not_null(batch);
    /* no spares: chunks of 64 KiB doubling; the one that takes 1 MiB (malloc) allocates the next
     * (2 MiB, the first mapping) ahead, before anything is copied into it */
    while (fresh_count == 0)
        large_entries_add(batch, 1, 60000);
    cr_assert_eq(fresh_count, 1);
    cr_assert_eq(fresh_bytes[0], ALLOT_PAGES_HUGE_BYTES);
    size_t held = checkpoint_batch_bytes(batch); /* 16 entries: the 1 MiB chunk holds one */
    cr_assert_lt(held, ALLOT_PAGES_HUGE_BYTES / 2 + 64 * 1024, "reported at %zu bytes", held);
    /* the next entry past the 1 MiB chunk takes the one allocated ahead, and allocates the one
     * after that (4 MiB): only that one is new */
    checkpoint_spare_stats_t before;
    checkpoint_writer_spare_stats(writer, &before);
    while (fresh_count == 1)
        large_entries_add(batch, 1, 60000);
    cr_assert_eq(fresh_count, 2);
    cr_assert_eq(fresh_bytes[1], CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
    checkpoint_spare_stats_t after;
    checkpoint_writer_spare_stats(writer, &after);
    cr_assert_eq(after.chunks_fresh, before.chunks_fresh + 1, "only the next one ahead is new");
    allot_pages_hooks_set(NULL);
    int calls = log.calls;
    cr_assert_eq(checkpoint_writer_submit(writer, batch, 1), 0);
    run_until(&loop, &log.calls, calls + 1);
    cr_assert_eq(log.status, 0);
    checkpoint_writer_close(writer, on_closed); /* the chunk ahead is freed too (ASan) */
    run_until(&loop, &log.closed, 1);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* The bytes of this process's mappings the kernel may back with transparent huge pages. */
static size_t thp_eligible_bytes(void)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert_not_null(f);
    char line[256];
    size_t size_kb = 0, eligible = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t kb;
        int flag;
        if (sscanf(line, "Size: %zu kB", &kb) == 1)
            size_kb = kb;
        else if (sscanf(line, "THPeligible: %d", &flag) == 1 && flag == 1)
            eligible += size_kb * 1024;
    }
    fclose(f);
    return eligible;
}

static bool thp_available(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char mode[128] = {0};
    bool available =
        f != NULL && fgets(mode, sizeof(mode), f) != NULL && strstr(mode, "[never]") == NULL;
    if (f != NULL)
        fclose(f);
    return available;
}

Test(checkpoint, a_batchs_large_chunks_are_memory_the_kernel_may_back_with_huge_pages)
{
    if (!thp_available())
        cr_skip_test("no transparent huge pages on this machine");
    size_t before = thp_eligible_bytes();
    checkpoint_batch_t *batch = checkpoint_batch_create(false);
    large_entries_add(batch, 150, 60000); /* 9 MB: chunks of 64 KiB doubling to 4 MiB */
    size_t after = thp_eligible_bytes();
    cr_assert_geq(after, before + CHECKPOINT_BATCH_CHUNK_BYTES_MAX,
                  "%zu eligible bytes, %zu before", after, before);
    checkpoint_batch_free(batch);
}

Test(checkpoint, the_loop_reserves_untouched_chunks_for_what_is_dirty_and_the_next_batch_fills_them)
{
    store_open(512ull << 20);
    uv_loop_t loop;
    done_log_t log = {0};
    checkpoint_writer_t *writer = writer_started(&loop, &log);
    fresh_count = 0;
    allot_pages_hooks_set(&(allot_pages_hooks_t){.fresh_cb = fresh_record});
    /* Before any commit an entry is taken to fill CHECKPOINT_BATCH_ENTRY_BYTES_GUESS bytes:
     * 100000 dirty objects want 12.8 MB, i.e. 3 whole chunks of the largest size. */
    size_t want = 100000u * CHECKPOINT_BATCH_ENTRY_BYTES_GUESS;
    checkpoint_writer_spares_reserve(writer, 100000);
    checkpoint_spare_stats_t reserved;
    checkpoint_writer_spare_stats(writer, &reserved);
    size_t chunks = want / CHECKPOINT_BATCH_CHUNK_BYTES_MAX;
    cr_assert_eq(reserved.chunks_reserved, chunks);
    cr_assert_eq(reserved.chunks_fresh, chunks);
    cr_assert_eq(reserved.bytes, chunks * CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
    /* reported fresh, and untouched: not even a chunk header was written into them */
    cr_assert_eq(fresh_count, chunks);
    for (size_t i = 0; i < chunks; i++) {
        cr_assert_eq(fresh_bytes[i], CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
        cr_assert_eq(test_resident_pages(fresh_at[i], fresh_bytes[i]), 0, "block %zu", i);
    }
    /* Asked again for as much: nothing more. Asked for more than the bound: a few chunks per
     * call, up to the bound and no further. */
    checkpoint_writer_spares_reserve(writer, 100000);
    cr_assert_eq(checkpoint_writer_spare_bytes(writer), reserved.bytes);
    checkpoint_writer_spares_reserve(writer, SIZE_MAX / 2);
    cr_assert_eq(checkpoint_writer_spare_bytes(writer),
                 reserved.bytes +
                     CHECKPOINT_SPARES_RESERVE_STEP_CHUNKS * CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
    for (int i = 0; i < 64; i++)
        checkpoint_writer_spares_reserve(writer, SIZE_MAX / 2);
    cr_assert_eq(checkpoint_writer_spare_bytes(writer), CHECKPOINT_BATCH_SPARE_BYTES_MAX);
    checkpoint_spare_stats_t full;
    checkpoint_writer_spare_stats(writer, &full);
    allot_pages_hooks_set(NULL);
    /* A 20 MB batch fills reserved chunks only: none is allocated while it is built. */
    checkpoint_batch_t *batch = checkpoint_writer_batch_create(writer, false);
    cr_assert_not_null(batch);
    large_entries_add(batch, 340, 60000);
    checkpoint_spare_stats_t filled;
    checkpoint_writer_spare_stats(writer, &filled);
    cr_assert_eq(filled.chunks_fresh, full.chunks_fresh, "%" PRIu64 " fresh chunks",
                 filled.chunks_fresh - full.chunks_fresh);
    cr_assert_gt(filled.chunks_reused, full.chunks_reused);
    int calls = log.calls;
    cr_assert_eq(checkpoint_writer_submit(writer, batch, 1), 0);
    run_until(&loop, &log.calls, calls + 1);
    cr_assert_eq(log.status, 0);
    /* The commit keeps what the last reserve asked for (the bound), not only what it took. */
    cr_assert_eq(checkpoint_writer_spare_bytes(writer), CHECKPOINT_BATCH_SPARE_BYTES_MAX);
    /* Idle with nothing dirty: nothing kept, reserved chunks included. */
    checkpoint_writer_spares_fit(writer, 0);
    cr_assert_eq(checkpoint_writer_spare_bytes(writer), 0);
    checkpoint_writer_close(writer, on_closed); /* ASan: nothing leaks */
    run_until(&loop, &log.closed, 1);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* The writer's yields (persist_thread_step_aside): this test binary's own sched_yield, counting
 * the calls of the writer thread (named allot-ckpt) only. */
static atomic_uint yields;

int sched_yield(void)
{
    char name[16] = "";
    if (pthread_getname_np(pthread_self(), name, sizeof name) == 0 &&
        strcmp(name, "allot-ckpt") == 0)
        atomic_fetch_add(&yields, 1);
    return 0;
}

/* A batch of 20000 keys "<prefix>-NNNNNN" added in reverse key order, committed at lsn through
 * writer; returns the writer thread's yields meanwhile. */
static unsigned reverse_batch_commit_yields(uv_loop_t *loop, checkpoint_writer_t *writer,
                                            done_log_t *log, char prefix, uint64_t lsn)
{
    checkpoint_batch_t *batch = checkpoint_writer_batch_create(writer, false);
    cr_assert_not_null(batch);
    for (uint32_t i = 20000; i-- > 0;) {
        uint8_t key[16] = {CHECKPOINT_KIND_TRANSIT};
        size_t key_len = 1 + (size_t)snprintf((char *)key + 1, 12, "%c-%06u", prefix, i);
        cr_assert_eq(checkpoint_batch_add(batch, key, key_len, 21, key, key_len, false), 0);
    }
    unsigned before = atomic_load(&yields);
    int calls = log->calls;
    cr_assert_eq(checkpoint_writer_submit(writer, batch, lsn), 0);
    run_until(loop, &log->calls, calls + 1);
    cr_assert_eq(log->status, 0);
    return atomic_load(&yields) - before;
}

Test(checkpoint, the_writer_steps_aside_while_it_sorts_and_stores_a_large_batch_unless_behind)
{
    store_open(512ull << 20);
    uv_loop_t loop;
    done_log_t log = {0};
    checkpoint_writer_t *writer = writer_started(&loop, &log);
    /* 20000 entries added in reverse key order: one long merge, then 20000 puts */
    unsigned stepped = reverse_batch_commit_yields(&loop, writer, &log, 'y', 1);
    cr_assert_geq(stepped, 20000 / CHECKPOINT_WRITER_YIELD_ENTRIES, "%u yields", stepped);
    /* Behind (the next checkpoint due while this one is in flight): no stepping aside. */
    checkpoint_writer_set_behind(writer, true);
    stepped = reverse_batch_commit_yields(&loop, writer, &log, 'z', 2);
    cr_assert_lt(stepped, 20000 / CHECKPOINT_WRITER_YIELD_ENTRIES / 4, "%u yields", stepped);
    checkpoint_writer_close(writer, on_closed);
    run_until(&loop, &log.closed, 1);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
