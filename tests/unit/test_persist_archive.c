/* test_persist_archive.c - the order archive over state.lmdb: get and list (newest first, paged)
 * across live and evicted orders through core's API with the real archive, full checkpoints
 * keeping archived orders, the customer index on deletes, the version 1 -> 3 upgrade and damaged
 * order records and index entries. */
#include <lmdb.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_core_fixture.h"
#include "test_persist_store_fixture.h"

#include "core/errors.h"
#include "core/order.h"
#include "persist/archive.h"
#include "persist/checkpoint.h"

#define AGE_MS 1000
#define LATE   (FX_T0 + 10000000)

static char dir[64];
static char path[128];
static allot_state_t *st;
static checkpoint_store_t *store;
static archive_t *arch;
static uint64_t lsn;
static char message[CHECKPOINT_MESSAGE_BYTES_MAX];

static void store_open(void)
{
    allot_state_set_archive(st, NULL);
    archive_close(arch);
    arch = NULL;
    checkpoint_store_close(store);
    store = NULL;
    int rc = checkpoint_store_open(path, 0, &store, message, sizeof(message));
    cr_assert_eq(rc, 0, "open: %s", message);
    cr_assert_eq(archive_open(store, &arch), 0);
    allot_order_archive_t hook;
    archive_hook(arch, &hook);
    allot_state_set_archive(st, &hook);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/allot-arch-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, CHECKPOINT_FILE_NAME);
    lsn = 0;
    arch = NULL;
    store = NULL;
    allot_state_config_t config = {.orders_archive_age_ms = AGE_MS};
    st = fx_state_with(&config);
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 13.0, .priority = 1});
    fx_stock(st, "A", "W1", 100000, 0);
    store_open();
}

static void teardown(void)
{
    allot_state_set_archive(st, NULL);
    archive_close(arch);
    checkpoint_store_close(store);
    allot_state_destroy(st);
    fx_log_reset();
    char lock[160];
    snprintf(lock, sizeof(lock), "%s-lock", path);
    unlink(path);
    unlink(lock);
    rmdir(dir);
}

TestSuite(archive, .init = setup, .fini = teardown);

/* One checkpoint (incremental or full) of st, committed. */
static void checkpoint(bool full)
{
    checkpoint_batch_t *batch = checkpoint_batch_create(full);
    cr_assert_not_null(batch);
    int rc = full ? allot_state_snapshot_each(st, checkpoint_batch_snapshot_cb, batch)
                  : allot_state_snapshot_each_dirty(st, checkpoint_batch_snapshot_cb, batch);
    cr_assert_eq(rc, 0);
    if (full)
        allot_state_dirty_clear(st);
    rc = checkpoint_store_write(store, &batch, 1, ++lsn, NULL, message, sizeof(message));
    cr_assert_eq(rc, 0, "write: %s", message);
    checkpoint_batch_free(batch);
}

/* Order `id` of customer (1 unit of A) created at created_ms; ended (cancelled) when `end`. */
static void order(const char *id, const char *customer, int64_t created_ms, bool end)
{
    static const allot_line_input_t lines[] = {{{"A", 1}, 1}};
    allot_order_create_request_t req;
    memset(&req, 0, sizeof(req));
    req.id = S(id);
    req.customer = S(customer);
    req.lines = lines;
    req.line_count = 1;
    const allot_order_view_t *v;
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_order_create(st, &req, created_ms, &v, &fx_err), 0, "%s", fx_err.message);
    if (end)
        cr_assert_eq(allot_order_cancel(st, S(id), S("test"), created_ms + 1, &v, &fx_err), 0, "%s",
                     fx_err.message);
}

static uint64_t orders_in_memory(void)
{
    allot_state_counters_t counts;
    allot_state_counters_get(st, &counts);
    return counts.orders;
}

/* Customer c1: 12 orders, created in pairs at the same ms (ties broken by id), even ones
 * ended; c10 (a customer whose id extends c1's) and c2 have one each. Then evict. */
static void world(void)
{
    char id[16];
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof(id), "o-%02d", i);
        order(id, "c1", FX_T0 + (i / 2) * 10, i % 2 == 0);
    }
    order("x-1", "c10", FX_T0 + 5, true);
    order("y-1", "c2", FX_T0 + 5, true);
    checkpoint(false);
    cr_assert_eq(allot_orders_evict_aged(st, LATE, ALLOT_ORDERS_EVICT_BATCH_MAX), 8);
    checkpoint(false); /* the archived snapshots */
    cr_assert_eq(orders_in_memory(), 6);
}

/* Every order of customer through allot_order_list pages of `limit`; ids into out. */
static int list_all(const char *customer, uint32_t limit, char out[][16], int max)
{
    int n = 0;
    char after[16] = "";
    for (;;) {
        allot_order_page_t page;
        allot_error_detail_clear(&fx_err);
        int rc = allot_order_list(st, S(customer), limit, S(after), &page, &fx_err);
        cr_assert_eq(rc, 0, "%s", fx_err.message);
        for (uint32_t i = 0; i < page.count; i++) {
            const allot_order_view_t *v = allot_order_page_at(st, &page, i);
            cr_assert_not_null(v);
            cr_assert_lt(n, max);
            snprintf(out[n++], 16, "%.*s", (int)v->id.len, v->id.ptr);
        }
        if (!page.more)
            return n;
        snprintf(after, sizeof(after), "%s", out[n - 1]);
    }
}

static void assert_c1_newest_first(void)
{
    char ids[16][16];
    for (uint32_t limit = 1; limit <= 5; limit += 2) {
        int n = list_all("c1", limit, ids, 16);
        cr_assert_eq(n, 12, "limit %u: %d orders", limit, n);
        for (int i = 0; i < 12; i++) {
            char expected[16];
            snprintf(expected, sizeof(expected), "o-%02d", 11 - i);
            cr_assert_str_eq(ids[i], expected, "limit %u, #%d", limit, i);
        }
    }
    cr_assert_eq(list_all("c10", 10, ids, 16), 1);
    cr_assert_str_eq(ids[0], "x-1");
    cr_assert_eq(list_all("nobody", 10, ids, 16), 0);
}

Test(archive, get_and_list_newest_first_across_live_and_archived_orders)
{
    world();
    const allot_order_view_t *v;
    cr_assert_eq(allot_order_get(st, S("o-04"), &v, &fx_err), 0, "%s", fx_err.message);
    cr_assert_eq(v->state, ALLOT_ORDER_CANCELLED);
    cr_assert(allot_str_equal(v->customer, S("c1")));
    cr_assert_eq(v->created_ms, FX_T0 + 20);
    cr_assert_eq(allot_order_get(st, S("o-05"), &v, &fx_err), 0, "live");
    cr_assert_eq(allot_order_get(st, S("nope"), &v, &fx_err), ALLOT_ENOT_FOUND);
    const uint8_t *payload;
    size_t len;
    cr_assert_eq(archive_get(arch, S("o-00"), &payload, &len), 0);
    cr_assert_eq(payload[1] & 1u, 1u, "stored archived");
    cr_assert_eq(archive_get(arch, S("nope"), &payload, &len), ALLOT_ENOT_FOUND);
    assert_c1_newest_first();
    /* an archived order cannot change; the same create is still idempotent */
    cr_assert_eq(allot_order_cancel(st, S("o-00"), S("again"), LATE, &v, &fx_err),
                 ALLOT_EINVALID_TRANSITION);
}

typedef struct seen {
    char ids[16][16];
    int n;
} seen_t;

static int collect(void *ctx, const uint8_t *payload, size_t len)
{
    seen_t *s = ctx;
    allot_event_scratch_t scratch = {0};
    allot_event_t e;
    cr_assert_eq(allot_event_decode(ALLOT_EVENT_ORDER_SNAPSHOT, payload, len, &scratch, &e), 0);
    snprintf(s->ids[s->n++], 16, "%.*s", (int)e.u.order.id.len, e.u.order.id.ptr);
    allot_event_scratch_free(&scratch);
    return s->n == 3; /* stop after three */
}

Test(archive, list_callback_starts_strictly_after_the_cursor_and_stops_on_request)
{
    world();
    seen_t s = {.n = 0};
    cr_assert_eq(archive_list(arch, S("c1"), FX_T0 + 20, S("o-05"), 100, collect, &s), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.ids[0], "o-04");
    cr_assert_str_eq(s.ids[1], "o-03");
    cr_assert_str_eq(s.ids[2], "o-02");
    s.n = 0;
    cr_assert_eq(archive_list(arch, S("c1"), 0, S(""), 2, collect, &s), 0);
    cr_assert_eq(s.n, 2, "max");
    cr_assert_str_eq(s.ids[0], "o-11");
}

static int count_kind(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                      const uint8_t *payload, size_t payload_len)
{
    (void)key_len, (void)type, (void)payload, (void)payload_len;
    uint64_t *counts = ctx;
    counts[key[0]]++;
    return 0;
}

static int apply_record(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                        const uint8_t *payload, size_t payload_len)
{
    (void)key, (void)key_len;
    return allot_event_apply_encoded(ctx, type, payload, payload_len);
}

static uint64_t index_entries(void)
{
    MDB_txn *txn;
    MDB_stat stat;
    cr_assert_eq(mdb_txn_begin(checkpoint_store_env(store), NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_stat(txn, checkpoint_store_index_dbi(store), &stat), 0);
    mdb_txn_abort(txn);
    return stat.ms_entries;
}

Test(archive, full_checkpoint_keeps_archived_orders_and_drops_stale_objects)
{
    world();
    checkpoint_batch_t *batch = checkpoint_batch_create(false);
    const uint8_t stale[] = {CHECKPOINT_KIND_ADJUST_KEY, 'z'};
    const uint8_t junk[] = {1, 2};
    cr_assert_eq(checkpoint_batch_add(batch, stale, sizeof(stale), ALLOT_EVENT_ADJUST_KEY_SNAPSHOT,
                                      junk, sizeof(junk), false),
                 0);
    cr_assert_eq(checkpoint_store_write(store, &batch, 1, ++lsn, NULL, message, sizeof(message)),
                 0);
    checkpoint_batch_free(batch);
    checkpoint(true);
    store_open();
    uint64_t counts[256] = {0};
    cr_assert_eq(checkpoint_store_load(store, count_kind, counts, NULL, message, sizeof(message)),
                 0, "%s", message);
    cr_assert_eq(counts[CHECKPOINT_KIND_ADJUST_KEY], 0, "the stale record is gone");
    cr_assert_eq(counts[CHECKPOINT_KIND_ORDER], 14, "every order is still stored");
    cr_assert_eq(index_entries(), 14);
    assert_c1_newest_first();
}

Test(archive, full_checkpoint_flags_evicted_orders_whose_archived_snapshot_was_lost)
{
    char id[16];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "o-%02d", i);
        order(id, "c1", FX_T0 + i, true);
    }
    checkpoint(false);
    cr_assert_eq(allot_orders_evict_aged(st, LATE, 100), 4);
    /* the batch with the archived snapshots fails and is dropped: a full checkpoint follows */
    checkpoint_batch_t *lost = checkpoint_batch_create(false);
    cr_assert_eq(allot_state_snapshot_each_dirty(st, checkpoint_batch_snapshot_cb, lost), 0);
    checkpoint_batch_free(lost);
    checkpoint(true);
    const uint8_t *payload;
    size_t len;
    cr_assert_eq(archive_get(arch, S("o-02"), &payload, &len), 0, "kept");
    cr_assert_eq(payload[1] & 1u, 1u, "and flagged archived");
    allot_state_t *loaded = allot_state_create(&fx_config);
    cr_assert_eq(checkpoint_store_load(store, apply_record, loaded, NULL, message, sizeof(message)),
                 0, "%s", message);
    allot_state_counters_t counts;
    allot_state_counters_get(loaded, &counts);
    cr_assert_eq(counts.orders, 0, "evicted orders load as nothing");
    allot_state_destroy(loaded);
    char ids[8][16];
    cr_assert_eq(list_all("c1", 2, ids, 8), 4);
}

Test(archive, customer_index_follows_deletes)
{
    world();
    cr_assert_eq(index_entries(), 14);
    checkpoint_batch_t *batch = checkpoint_batch_create(false);
    const uint8_t key[] = {CHECKPOINT_KIND_ORDER, 'o', '-', '0', '0'};
    cr_assert_eq(
        checkpoint_batch_add(batch, key, sizeof(key), ALLOT_EVENT_ORDER_SNAPSHOT, NULL, 0, true),
        0);
    cr_assert_eq(checkpoint_store_write(store, &batch, 1, ++lsn, NULL, message, sizeof(message)), 0,
                 "%s", message);
    checkpoint_batch_free(batch);
    cr_assert_eq(index_entries(), 13);
    seen_t s = {.n = 0};
    cr_assert_eq(archive_list(arch, S("c1"), FX_T0, S("o-01"), 100, collect, &s), 0);
    cr_assert_eq(s.n, 0, "o-00 left the index with its record");
    const uint8_t *payload;
    size_t len;
    cr_assert_eq(archive_get(arch, S("o-00"), &payload, &len), ALLOT_ENOT_FOUND);
}

Test(archive, a_version_1_store_is_upgraded_and_indexed_on_open)
{
    world();
    allot_state_set_archive(st, NULL);
    archive_close(arch);
    arch = NULL;
    sfx_store_rewrite_as_version(checkpoint_store_env(store), 1);
    cr_assert_eq(index_entries(), 0);
    store_open();
    cr_assert_eq(index_entries(), 14);
    cr_assert_eq(checkpoint_store_upgraded_from(store), 1);
    assert_c1_newest_first();
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_val key = {14, "format_version"}, value;
    cr_assert_eq(mdb_txn_begin(checkpoint_store_env(store), NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    cr_assert_eq(mdb_get(txn, meta, &key, &value), 0);
    cr_assert_eq(((const uint8_t *)value.mv_data)[0], CHECKPOINT_FORMAT_VERSION);
    mdb_txn_abort(txn);
}

static void store_close(void)
{
    allot_state_set_archive(st, NULL);
    archive_close(arch);
    arch = NULL;
    checkpoint_store_close(store);
    store = NULL;
}

Test(archive, a_damaged_order_record_is_corrupt_never_a_wrong_order)
{
    world();
    store_close();
    const uint8_t key[] = {CHECKPOINT_KIND_ORDER, 'o', '-', '0', '0'};
    sfx_record_damage(path, key, sizeof(key), (sfx_damage_t){8 * 12 + 3, -1, 0, false});
    store_open();
    const uint8_t *payload;
    size_t len;
    cr_assert_eq(archive_get(arch, S("o-00"), &payload, &len), ALLOT_ECORRUPT);
    cr_assert_eq(archive_get(arch, S("o-02"), &payload, &len), 0, "the others are intact");
    seen_t s = {.n = 0};
    cr_assert_eq(archive_list(arch, S("c1"), FX_T0 + 10, S("o-02"), 100, collect, &s),
                 ALLOT_ECORRUPT, "the walk reaches o-00");
}

Test(archive, a_damaged_index_entry_is_corrupt)
{
    world();
    store_close();
    MDB_env *env;
    MDB_dbi state_dbi, index_dbi;
    MDB_txn *txn = sfx_raw_begin(path, &env, &state_dbi);
    cr_assert_eq(mdb_dbi_open(txn, ARCHIVE_INDEX_DB_NAME, 0, &index_dbi), 0);
    MDB_cursor *cursor;
    cr_assert_eq(mdb_cursor_open(txn, index_dbi, &cursor), 0);
    MDB_val key, value;
    cr_assert_eq(mdb_cursor_get(cursor, &key, &value, MDB_LAST), 0); /* c10's x-1 (length 3) */
    uint8_t copy[4];
    cr_assert_eq(value.mv_size, sizeof(copy), "every entry holds its trailer");
    memcpy(copy, value.mv_data, sizeof(copy));
    copy[2] ^= 0x20;
    MDB_val damaged = {sizeof(copy), copy};
    cr_assert_eq(mdb_cursor_put(cursor, &key, &damaged, MDB_CURRENT), 0);
    mdb_cursor_close(cursor);
    sfx_raw_end(env, txn);
    store_open();
    seen_t s = {.n = 0};
    cr_assert_eq(archive_list(arch, S("c10"), 0, S(""), 10, collect, &s), ALLOT_ECORRUPT);
    cr_assert_eq(s.n, 0);
    s.n = 0;
    cr_assert_eq(archive_list(arch, S("c2"), 0, S(""), 10, collect, &s), 0, "other entries");
    cr_assert_eq(s.n, 1);
}
