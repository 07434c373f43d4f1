/* checkpoint_load.c - reading a checkpoint back at start-up: every record in key order, with one
 * kind's second half built on a second thread (contract in checkpoint.h; layout in checkpoint.c).
 *
 * The split. When the loading thread meets the first record of split->kind, it looks up the
 * kind's last key and takes as `from` the key halfway between the two (both read as big-endian
 * numbers, zero-padded to the longer). A builder thread opens its own read transaction on the
 * same snapshot (same LMDB transaction id; if a writer committed in between, it builds nothing
 * and the loading thread loads everything itself), walks the records of the kind from `from`
 * on and builds an item for each into a growing array:
 *
 *     entry = { const uint8_t *key; u32 key_len; u8 type } + item_bytes (rounded up to 8)
 *
 * Keys and payloads point into the map: they stay valid after the builder ends its transaction
 * because the loading thread's transaction holds the same snapshot until the load ends. The
 * loading thread loads the records before `from` one by one, and at the first key >= from (or of
 * a later kind, or at the end) joins the builder, installs its items in order and seeks past
 * the kind. The records are numbered as a one-thread load would number them, errors included.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_private.h"
#include "core/errors.h"
#include "core/event.h"
#include "core/state.h"

typedef struct built_entry {
    const uint8_t *key;
    uint32_t key_len;
    uint8_t type;
} built_entry_t;

/* Records of the split kind built and waiting for their install, in key order, and what
 * stopped the building (failed_*: the record after the last built one). */
typedef struct built_batch {
    const checkpoint_split_t *split;
    void *build_ctx;
    size_t entry_bytes;
    uint8_t *entries;
    size_t count;
    size_t capacity;
    int rc;         /* a build_cb error, or ALLOT_ECORRUPT */
    bool malformed; /* rc is for a malformed record */
    const uint8_t *failed_key;
    size_t failed_key_len;
    size_t failed_value_len;
    uint8_t failed_type;
} built_batch_t;

typedef struct split_builder {
    built_batch_t batch;
    checkpoint_store_t *store;
    size_t snapshot; /* the loading thread's transaction id */
    uint8_t from[CHECKPOINT_KEY_BYTES_MAX];
    size_t from_len;
    bool same_snapshot; /* false: built nothing; the loading thread loads the whole kind */
    int mdb_rc;         /* an LMDB error that stopped the walk */
    pthread_t thread;
} split_builder_t;

/* Installs this far apart are prefetched (prefetch_cb) ahead of their own. */
#define SPLIT_PREFETCH_AHEAD 12u
/* Records the loading thread builds before installing them. */
#define SPLIT_LOADER_BATCH 64u

/* ---- records and their errors ------------------------------------------------------------ */

static bool record_malformed(const MDB_val *key, const MDB_val *value)
{
    const uint8_t *k = key->mv_data;
    return key->mv_size < 2 || key->mv_size > CHECKPOINT_KEY_BYTES_MAX || k[0] == 0 ||
           value->mv_size < 2;
}

static int report_malformed(const checkpoint_store_t *store, uint64_t number, const uint8_t *key,
                            size_t key_len, size_t value_len, char *message, size_t message_bytes)
{
    snprintf(message, message_bytes,
             "checkpoint: %s: malformed record #%" PRIu64 " (key %zu bytes, kind %u, "
             "value %zu bytes)",
             store->path, number, key_len, key_len ? key[0] : 0, value_len);
    return ALLOT_ECORRUPT;
}

static int report_refused(const checkpoint_store_t *store, uint64_t number, const uint8_t *key,
                          size_t key_len, uint8_t type, int rc, char *message,
                          size_t message_bytes)
{
    snprintf(message, message_bytes,
             "checkpoint: %s: record #%" PRIu64 " (kind %u, type %u, id '%.*s') was "
             "refused: %s",
             store->path, number, key[0], type, (int)(key_len - 1), key + 1,
             allot_error_message(rc));
    return rc;
}

/* Bytewise, shorter prefix first: LMDB's default key order. */
static int key_compare(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* ---- batches of built records ------------------------------------------------------------ */

static void batch_init(built_batch_t *b, const checkpoint_split_t *split, void *build_ctx)
{
    *b = (built_batch_t){.split = split, .build_ctx = build_ctx};
    b->entry_bytes = sizeof(built_entry_t) + ((split->item_bytes + 7) & ~(size_t)7);
}

static built_entry_t *batch_entry(const built_batch_t *b, size_t index)
{
    return (built_entry_t *)(b->entries + index * b->entry_bytes);
}

static void *entry_item(built_entry_t *entry)
{
    return entry + 1;
}

static int batch_grow(built_batch_t *b)
{
    if (b->count < b->capacity)
        return 0;
    size_t capacity = b->capacity ? b->capacity * 2 : SPLIT_LOADER_BATCH;
    uint8_t *entries = realloc(b->entries, capacity * b->entry_bytes);
    if (entries == NULL)
        return ALLOT_ENOMEM;
    b->entries = entries;
    b->capacity = capacity;
    return 0;
}

/* Build one record; false stops the building (b->rc and failed_* say why). */
static bool batch_build(built_batch_t *b, const MDB_val *key, const MDB_val *value)
{
    const uint8_t *k = key->mv_data, *v = value->mv_data;
    if (record_malformed(key, value)) {
        b->rc = ALLOT_ECORRUPT;
        b->malformed = true;
    } else if ((b->rc = batch_grow(b)) == 0) {
        built_entry_t *entry = batch_entry(b, b->count);
        *entry = (built_entry_t){k, (uint32_t)key->mv_size, v[0]};
        b->rc = b->split->build_cb(b->build_ctx, k, key->mv_size, v[0], v + 1,
                                   value->mv_size - 1, entry_item(entry));
    }
    if (b->rc != 0) {
        b->failed_key = k;
        b->failed_key_len = key->mv_size;
        b->failed_value_len = value->mv_size;
        b->failed_type = value->mv_size > 0 ? v[0] : 0;
        return false;
    }
    b->count++;
    return true;
}

static void batch_discard(built_batch_t *b, void *ctx, size_t from_index)
{
    for (size_t i = from_index; i < b->count; i++)
        b->split->discard_cb(ctx, entry_item(batch_entry(b, i)));
    b->count = 0;
}

/* Install the built records in order, then report what stopped the building, if anything; the
 * records are numbered from *records on, as a one-thread load numbers them. Empties the batch. */
static int batch_install(built_batch_t *b, const checkpoint_store_t *store, void *ctx,
                         uint64_t *records, char *message, size_t message_bytes)
{
    const checkpoint_split_t *split = b->split;
    for (size_t i = 0; i < b->count; i++) {
        if (split->prefetch_cb != NULL && i + SPLIT_PREFETCH_AHEAD < b->count)
            split->prefetch_cb(ctx, entry_item(batch_entry(b, i + SPLIT_PREFETCH_AHEAD)));
        built_entry_t *entry = batch_entry(b, i);
        int rc = split->install_cb(ctx, entry_item(entry));
        if (rc != 0) {
            batch_discard(b, ctx, i + 1);
            return report_refused(store, *records, entry->key, entry->key_len, entry->type, rc,
                                  message, message_bytes);
        }
        (*records)++;
    }
    b->count = 0;
    if (b->rc != 0 && b->malformed)
        return report_malformed(store, *records, b->failed_key, b->failed_key_len,
                                b->failed_value_len, message, message_bytes);
    if (b->rc != 0)
        return report_refused(store, *records, b->failed_key, b->failed_key_len, b->failed_type,
                              b->rc, message, message_bytes);
    return 0;
}

/* ---- the builder thread ------------------------------------------------------------------ */

static void *builder_main(void *arg)
{
    split_builder_t *b = arg;
    MDB_txn *txn;
    MDB_cursor *cursor;
    b->mdb_rc = mdb_txn_begin(b->store->env, NULL, MDB_RDONLY, &txn);
    if (b->mdb_rc != 0)
        return NULL;
    b->same_snapshot = mdb_txn_id(txn) == b->snapshot;
    if (b->same_snapshot && (b->mdb_rc = mdb_cursor_open(txn, b->store->state, &cursor)) == 0) {
        uint8_t kind = b->batch.split->kind;
        MDB_val key = {b->from_len, b->from}, value;
        int mrc;
        for (mrc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
             mrc == 0 && key.mv_size > 0 && ((const uint8_t *)key.mv_data)[0] == kind;
             mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
            if (!batch_build(&b->batch, &key, &value))
                break;
        }
        if (mrc != 0 && mrc != MDB_NOTFOUND)
            b->mdb_rc = mrc;
        mdb_cursor_close(cursor);
    }
    mdb_txn_abort(txn); /* the loading thread's transaction keeps the snapshot's pages */
    return NULL;
}

/* ---- the loading thread's side ----------------------------------------------------------- */

/* `from` = (first + last) / 2, both read as big-endian numbers zero-padded to the longer. */
static void split_midpoint(const uint8_t *first, size_t first_len, const uint8_t *last,
                           size_t last_len, uint8_t *mid, size_t *mid_len)
{
    size_t len = first_len > last_len ? first_len : last_len;
    unsigned carry = 0;
    for (size_t i = len; i-- > 0;) { /* sum, least significant byte first */
        unsigned sum = carry + (i < first_len ? first[i] : 0) + (i < last_len ? last[i] : 0);
        mid[i] = (uint8_t)sum;
        carry = sum >> 8;
    }
    for (size_t i = 0; i < len; i++) { /* halve, most significant byte first */
        unsigned value = carry << 8 | mid[i];
        mid[i] = (uint8_t)(value >> 1);
        carry = value & 1;
    }
    *mid_len = len;
}

/* The kind's last key (0 when it cannot be found). */
static size_t kind_last_key(MDB_txn *txn, MDB_dbi dbi, uint8_t kind, const uint8_t **out)
{
    MDB_cursor *cursor;
    if (mdb_cursor_open(txn, dbi, &cursor) != 0)
        return 0;
    uint8_t next_kind = (uint8_t)(kind + 1);
    MDB_val key = {1, &next_kind}, value;
    int mrc = kind == UINT8_MAX ? MDB_NOTFOUND : mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    mrc = mdb_cursor_get(cursor, &key, &value, mrc == 0 ? MDB_PREV : MDB_LAST);
    mdb_cursor_close(cursor);
    if (mrc != 0 || key.mv_size == 0 || ((const uint8_t *)key.mv_data)[0] != kind)
        return 0;
    *out = key.mv_data;
    return key.mv_size;
}

/* Start the builder on the second half of the kind whose first record is `first`; false when
 * there is nothing to split (one record) or no thread. */
static bool split_start(split_builder_t *b, checkpoint_store_t *store,
                        const checkpoint_split_t *split, MDB_txn *txn, const MDB_val *first)
{
    const uint8_t *last;
    size_t last_len = kind_last_key(txn, store->state, split->kind, &last);
    if (last_len == 0 || key_compare(first->mv_data, first->mv_size, last, last_len) >= 0)
        return false;
    *b = (split_builder_t){.store = store, .snapshot = mdb_txn_id(txn)};
    batch_init(&b->batch, split, split->builder_ctx);
    split_midpoint(first->mv_data, first->mv_size, last, last_len, b->from, &b->from_len);
    if (pthread_create(&b->thread, NULL, builder_main, b) != 0)
        return false;
    return true;
}

/* Has the loading thread reached the builder's part? */
static bool split_reached(const split_builder_t *b, const MDB_val *key)
{
    const uint8_t *k = key->mv_data;
    return key->mv_size == 0 || k[0] != b->batch.split->kind ||
           key_compare(k, key->mv_size, b->from, b->from_len) >= 0;
}

/* Join the builder; install its records (install) or drop them. */
static int split_finish(split_builder_t *b, bool install, void *ctx, uint64_t *records,
                        char *message, size_t message_bytes)
{
    pthread_join(b->thread, NULL);
    int rc = 0;
    if (install && b->same_snapshot)
        rc = batch_install(&b->batch, b->store, ctx, records, message, message_bytes);
    batch_discard(&b->batch, ctx, 0);
    if (rc == 0 && install && b->mdb_rc != 0)
        rc = checkpoint_lmdb_error(b->mdb_rc, "read", b->store->path, message, message_bytes);
    free(b->batch.entries);
    b->batch.entries = NULL;
    return rc;
}

/* The loading thread's own walk through the records: one at a time through record_cb, except
 * the first half of the split kind, built and installed in batches while the builder runs. */
typedef struct load_walk {
    checkpoint_store_t *store;
    checkpoint_record_cb record_cb;
    const checkpoint_split_t *split;
    void *ctx;
    uint64_t records;
    uint64_t second_thread; /* records installed from the builder */
    bool split_pending;  /* the split kind is still ahead */
    bool split_running;  /* the builder runs; records before its `from` go to `batch` */
    split_builder_t builder;
    built_batch_t batch; /* the loading thread's own built records */
    char *message;
    size_t message_bytes;
} load_walk_t;

static int walk_flush(load_walk_t *w)
{
    return batch_install(&w->batch, w->store, w->ctx, &w->records, w->message, w->message_bytes);
}

/* The builder's part reached (or the load ends): install the loading thread's batch, then the
 * builder's records. A failed load drops them (install false). */
static int walk_split_end(load_walk_t *w, bool install)
{
    w->split_running = false;
    int rc = install ? walk_flush(w) : 0;
    batch_discard(&w->batch, w->ctx, 0);
    uint64_t before = w->records;
    int finish_rc = split_finish(&w->builder, install && rc == 0, w->ctx, &w->records,
                                 w->message, w->message_bytes);
    w->second_thread += w->records - before;
    return rc != 0 ? rc : finish_rc;
}

/* One record of the loading thread's part. */
static int walk_record(load_walk_t *w, const MDB_val *key, const MDB_val *value)
{
    if (w->split_running) { /* the split kind, before the builder's part */
        if (!batch_build(&w->batch, key, value) || w->batch.count == SPLIT_LOADER_BATCH)
            return walk_flush(w);
        return 0;
    }
    const uint8_t *k = key->mv_data, *v = value->mv_data;
    if (record_malformed(key, value))
        return report_malformed(w->store, w->records, k, key->mv_size, value->mv_size,
                                w->message, w->message_bytes);
    int rc = w->record_cb(w->ctx, k, key->mv_size, v[0], v + 1, value->mv_size - 1);
    if (rc != 0)
        return report_refused(w->store, w->records, k, key->mv_size, v[0], rc, w->message,
                              w->message_bytes);
    w->records++;
    return 0;
}

/* Before loading `key`: start the split at its kind's first record, end it at the builder's
 * part (and then seek past the kind: *seek). */
static int walk_split_step(load_walk_t *w, MDB_txn *txn, const MDB_val *key, bool *seek)
{
    const uint8_t *k = key->mv_data;
    *seek = false;
    if (w->split_pending && key->mv_size > 0 && k[0] >= w->split->kind) {
        w->split_pending = false;
        w->split_running = k[0] == w->split->kind &&
                           split_start(&w->builder, w->store, w->split, txn, key);
        if (w->split_running)
            batch_init(&w->batch, w->split, w->split->loader_ctx);
    }
    if (!w->split_running || !split_reached(&w->builder, key))
        return 0;
    int rc = walk_split_end(w, true);
    *seek = rc == 0 && w->builder.same_snapshot && key->mv_size > 0 && k[0] == w->split->kind;
    return rc;
}

int checkpoint_store_load(checkpoint_store_t *store, checkpoint_record_cb record_cb, void *ctx,
                          uint64_t *records_out, char *message, size_t message_bytes)
{
    checkpoint_load_stats_t stats;
    int rc = checkpoint_store_load_split(store, record_cb, NULL, ctx, &stats, message,
                                         message_bytes);
    if (records_out != NULL)
        *records_out = stats.records;
    return rc;
}

int checkpoint_store_load_split(checkpoint_store_t *store, checkpoint_record_cb record_cb,
                                const checkpoint_split_t *split, void *ctx,
                                checkpoint_load_stats_t *stats, char *message,
                                size_t message_bytes)
{
    assert(store != NULL && record_cb != NULL);
    if (stats != NULL)
        *stats = (checkpoint_load_stats_t){0};
    if (message_bytes > 0)
        message[0] = '\0';
    MDB_txn *txn;
    MDB_cursor *cursor;
    int mrc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (mrc != 0)
        return checkpoint_lmdb_error(mrc, "begin read of", store->path, message, message_bytes);
    mrc = mdb_cursor_open(txn, store->state, &cursor);
    if (mrc != 0) {
        mdb_txn_abort(txn);
        return checkpoint_lmdb_error(mrc, "cursor on", store->path, message, message_bytes);
    }
    load_walk_t w = {.store = store, .record_cb = record_cb, .split = split, .ctx = ctx,
                     .split_pending = split != NULL, .message = message,
                     .message_bytes = message_bytes};
    int rc = 0;
    MDB_val key, value;
    for (mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
        bool seek;
        rc = walk_split_step(&w, txn, &key, &seek);
        if (rc == 0 && seek) { /* past the builder's part: the first key of a later kind */
            uint8_t next_kind = (uint8_t)(split->kind + 1);
            key = (MDB_val){1, &next_kind};
            mrc = split->kind == UINT8_MAX ? MDB_NOTFOUND
                                           : mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
            if (mrc != 0)
                break;
            rc = walk_split_step(&w, txn, &key, &seek);
        }
        if (rc == 0)
            rc = walk_record(&w, &key, &value);
    }
    if (w.split_running) { /* the kind ends the store, or an error stopped the load */
        int end_rc = walk_split_end(&w, rc == 0 && mrc == MDB_NOTFOUND);
        if (rc == 0)
            rc = end_rc;
    }
    free(w.batch.entries);
    if (rc == 0 && mrc != MDB_NOTFOUND)
        rc = checkpoint_lmdb_error(mrc, "read", store->path, message, message_bytes);
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    if (stats != NULL)
        *stats = (checkpoint_load_stats_t){w.records, w.second_thread};
    return rc;
}

/* ---- loading into a state (core) -------------------------------------------------------- */

static int load_record(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                       const uint8_t *payload, size_t payload_len)
{
    (void)key;
    (void)key_len;
    /* archived orders stay in the store (applying one keeps nothing anyway): skip decoding */
    if (type == ALLOT_EVENT_ORDER_SNAPSHOT && payload_len >= 2 && (payload[1] & 1u) != 0)
        return 0;
    return allot_event_apply_encoded(ctx, type, payload, payload_len);
}

/* SKU snapshots, nearly all of a large checkpoint, are built on two threads (core/event.h,
 * allot_sku_snapshot_build) and installed on this one in key order. */
typedef struct sku_load_item {
    allot_sku_build_t build;
    bool raw; /* not a SKU snapshot: applied whole at install, as a one-thread load would */
    uint8_t type;
    const uint8_t *payload;
    size_t len;
} sku_load_item_t;

typedef struct sku_load_builder {
    const allot_state_t *state;
    allot_sku_builder_t builder;
} sku_load_builder_t;

static int sku_load_build(void *build_ctx, const uint8_t *key, size_t key_len, uint8_t type,
                          const uint8_t *payload, size_t payload_len, void *item)
{
    (void)key;
    (void)key_len;
    sku_load_builder_t *b = build_ctx;
    sku_load_item_t *it = item;
    *it = (sku_load_item_t){.raw = type != ALLOT_EVENT_SKU_SNAPSHOT, .type = type,
                            .payload = payload, .len = payload_len};
    return it->raw ? 0
                   : allot_sku_snapshot_build(b->state, &b->builder, type, payload, payload_len,
                                              &it->build);
}

static int sku_load_install(void *ctx, void *item)
{
    sku_load_item_t *it = item;
    if (it->raw)
        return allot_event_apply_encoded(ctx, it->type, it->payload, it->len);
    return allot_sku_snapshot_install(ctx, &it->build);
}

static void sku_load_prefetch(void *ctx, void *item)
{
    const sku_load_item_t *it = item;
    if (!it->raw)
        allot_sku_snapshot_prefetch(ctx, &it->build);
}

static void sku_load_discard(void *ctx, void *item)
{
    (void)ctx;
    allot_sku_snapshot_discard(&((sku_load_item_t *)item)->build);
}

int checkpoint_store_load_state(checkpoint_store_t *store, struct allot_state *state,
                                checkpoint_load_stats_t *stats, char *message,
                                size_t message_bytes)
{
    sku_load_builder_t builders[2] = {{.state = state}, {.state = state}};
    allot_sku_builder_init(&builders[0].builder);
    allot_sku_builder_init(&builders[1].builder);
    const checkpoint_split_t split = {.kind = CHECKPOINT_KIND_SKU,
                                      .item_bytes = sizeof(sku_load_item_t),
                                      .build_cb = sku_load_build,
                                      .builder_ctx = &builders[0],
                                      .loader_ctx = &builders[1],
                                      .prefetch_cb = sku_load_prefetch,
                                      .install_cb = sku_load_install,
                                      .discard_cb = sku_load_discard};
    int rc = checkpoint_store_load_split(store, load_record, &split, state, stats, message,
                                         message_bytes);
    allot_sku_builder_free(&builders[0].builder);
    allot_sku_builder_free(&builders[1].builder);
    return rc;
}
