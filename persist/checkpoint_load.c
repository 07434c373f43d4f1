/* checkpoint_load.c - reading a checkpoint back at start-up: every record in key order, the
 * records of one kind built on two threads (contract in checkpoint.h; layout in checkpoint.c).
 *
 * The split kind is built from both ends at once: the loading thread walks it upwards from its
 * first key, a builder thread downwards from its last key (with its own read transaction on the
 * same snapshot: the same LMDB transaction id; if a writer committed in between, it builds
 * nothing). Each takes runs of up to SPLIT_RUN records: it reads a run, then, under the split's
 * mutex, cuts the run short at the other thread's frontier (the loader's highest claimed key,
 * the builder's lowest) and publishes its own. Where the two meet, each has claimed exactly the
 * records the other did not, so the kind divides itself by how fast each thread goes, whatever
 * its keys look like. The loading thread builds and installs its runs as it goes; then it joins
 * the builder and installs the builder's records, built highest key first, in reverse: every
 * install happens in key order.
 *
 * Built records: entry = { key, key_len, type } + item_bytes (rounded up to 8). Keys and
 * payloads point into the map; they stay valid after the builder ends its transaction because
 * the loading thread's transaction holds the same snapshot until the load ends.
 *
 * Checks. Every record's size and checksum trailer are checked where it is built or applied (on
 * both threads), before anything reads its payload; at the end the records loaded are counted
 * against the store's "record_count" (checkpoint.c), so that records a damaged page hides from
 * the walk are not missed silently.
 *
 * Errors. The loading thread stops at its first bad record, everything before it installed, and
 * the builder's records are dropped. The builder, meeting a bad record, drops what it has built
 * (all above that key: never to be installed) and goes on below it, keeping the lowest bad
 * record: so the load stops and reports where a one-thread load would, with the same number.
 */
#include <assert.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <ucontext.h>

#include "archive.h"
#include "checkpoint_private.h"
#include "core/byte_order.h"
#include "core/errors.h"
#include "core/event.h"
#include "core/state.h"

/* Records read, cut at the other thread's frontier and built as one claim. */
#define SPLIT_RUN 256u
/* Installs this far apart are prefetched (prefetch_cb) ahead of their own. */
#define SPLIT_PREFETCH_AHEAD 12u

typedef struct built_entry {
    const uint8_t *key;
    uint32_t key_len;
    uint8_t type;
} built_entry_t;

/* Why a record is bad. */
typedef enum bad_reason {
    BAD_REFUSED,   /* refused by build_cb or install_cb (or no memory) */
    BAD_MALFORMED, /* sizes (checkpoint.c, VALIDITY) */
    BAD_CHECKSUM,  /* the trailer does not match */
} bad_reason_t;

/* A bad record: what stopped (loader) or will stop (builder) the load. */
typedef struct bad_record {
    int rc; /* 0: none */
    bad_reason_t reason;
    const uint8_t *key;
    size_t key_len;
    size_t value_len;
    uint8_t type;
} bad_record_t;

/* Built records waiting for their install. */
typedef struct built_batch {
    const checkpoint_split_t *split;
    void *build_ctx;
    size_t entry_bytes;
    uint8_t *entries;
    size_t count;
    size_t capacity;
} built_batch_t;

/* A thread's frontier: the key it has claimed up (loader) or down (builder) to. Points into the
 * map (any length LMDB allows; a malformed key is refused only when built). */
typedef struct frontier {
    const uint8_t *key;
    size_t len; /* 0: nothing claimed yet */
} frontier_t;

/* A run of records read by one thread, in its walking order. */
typedef struct record_run {
    MDB_val keys[SPLIT_RUN];
    MDB_val values[SPLIT_RUN];
    size_t count;
    bool kind_ended; /* the walk left the kind (or the store) after these */
} record_run_t;

typedef struct split_builder {
    const checkpoint_split_t *split;
    void *ctx; /* install_cb's and discard_cb's */
    checkpoint_store_t *store;
    size_t snapshot; /* the loading thread's transaction id */
    pthread_mutex_t mutex;
    frontier_t loader_high; /* under mutex */
    frontier_t builder_low; /* under mutex */
    _Atomic bool stop;      /* the load failed: build no more */
    built_batch_t batch;    /* highest key first */
    bad_record_t bad;       /* the lowest bad record of the builder's part */
    bool same_snapshot;     /* false: built nothing; the loading thread loads the whole kind */
    record_run_t run;
    pthread_t thread;
} split_builder_t;

/* ---- records and their errors ------------------------------------------------------------ */

/* BAD_REFUSED when the record's sizes and trailer are right (its payload is for core to judge). */
static bad_reason_t record_check(const MDB_val *key, const MDB_val *value)
{
    const uint8_t *k = key->mv_data;
    if (key->mv_size < 2 || key->mv_size > CHECKPOINT_KEY_BYTES_MAX || k[0] == 0 ||
        value->mv_size < CHECKPOINT_VALUE_BYTES_MIN)
        return BAD_MALFORMED;
    return checkpoint_crc_matches(key, value) ? BAD_REFUSED : BAD_CHECKSUM;
}

/* The payload of a checked record: after the type byte, before the trailer. */
static size_t record_payload_len(const MDB_val *value)
{
    assert(value->mv_size >= CHECKPOINT_VALUE_BYTES_MIN);
    return value->mv_size - 1 - CHECKPOINT_CRC_BYTES;
}

static const char *kind_name(uint8_t kind)
{
    switch (kind) {
    case CHECKPOINT_KIND_LOCATION:
        return "location";
    case CHECKPOINT_KIND_SKU:
        return "SKU";
    case CHECKPOINT_KIND_RESERVATION:
        return "reservation";
    case CHECKPOINT_KIND_ADJUST_KEY:
        return "adjust key";
    case CHECKPOINT_KIND_ORDER:
        return "order";
    case CHECKPOINT_KIND_SETTINGS:
        return "SKU settings";
    case CHECKPOINT_KIND_TICKET:
        return "queue ticket";
    case CHECKPOINT_KIND_TRANSIT:
        return "transit bands";
    default:
        return "unknown kind";
    }
}

/* The id bytes of a key, printable: other bytes as \xNN, cut at out_bytes. */
static const char *id_printable(const uint8_t *key, size_t key_len, char *out, size_t out_bytes)
{
    size_t n = 0;
    for (size_t i = 1; i < key_len && n + 5 < out_bytes; i++) {
        uint8_t c = key[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, out_bytes - n, "\\x%02x", c);
    }
    out[n] = '\0';
    return out;
}

static int report_checksum(const checkpoint_store_t *store, uint64_t number, const uint8_t *key,
                           size_t key_len, size_t value_len, char *message, size_t message_bytes)
{
    char id[CHECKPOINT_KEY_BYTES_MAX + 8];
    snprintf(message, message_bytes,
             "checkpoint: %s: record #%" PRIu64 " (kind %u %s, id '%s', value %zu bytes) fails "
             "its checksum: the file is damaged; restore state.lmdb and wal/ from a backup",
             store->path, number, key[0], kind_name(key[0]),
             id_printable(key, key_len, id, sizeof(id)), value_len);
    return ALLOT_ECORRUPT;
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

static int report_bad(const checkpoint_store_t *store, uint64_t number, const bad_record_t *bad,
                      char *message, size_t message_bytes)
{
    if (bad->reason == BAD_MALFORMED)
        return report_malformed(store, number, bad->key, bad->key_len, bad->value_len, message,
                                message_bytes);
    if (bad->reason == BAD_CHECKSUM)
        return report_checksum(store, number, bad->key, bad->key_len, bad->value_len, message,
                               message_bytes);
    return report_refused(store, number, bad->key, bad->key_len, bad->type, bad->rc, message,
                          message_bytes);
}

/* Bytewise, shorter prefix first: LMDB's default key order. */
static int key_compare(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

static bool key_is_kind(const MDB_val *key, uint8_t kind)
{
    return key->mv_size > 0 && ((const uint8_t *)key->mv_data)[0] == kind;
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
    size_t capacity = b->capacity ? b->capacity * 2 : SPLIT_RUN;
    uint8_t *entries = realloc(b->entries, capacity * b->entry_bytes);
    if (entries == NULL)
        return ALLOT_ENOMEM;
    b->entries = entries;
    b->capacity = capacity;
    return 0;
}

/* Build one record into the batch; false (and *bad filled) when it is bad. */
static bool batch_build(built_batch_t *b, const MDB_val *key, const MDB_val *value,
                        bad_record_t *bad)
{
    const uint8_t *k = key->mv_data, *v = value->mv_data;
    int rc;
    bad_reason_t reason = record_check(key, value);
    if (reason != BAD_REFUSED) {
        rc = ALLOT_ECORRUPT;
    } else if ((rc = batch_grow(b)) == 0) {
        built_entry_t *entry = batch_entry(b, b->count);
        /* as stored: only reservations are stored without their id, never the split kind */
        *entry = (built_entry_t){k, (uint32_t)key->mv_size, v[0]};
        rc = b->split->build_cb(b->build_ctx, k, key->mv_size, v[0], v + 1,
                                record_payload_len(value), entry_item(entry));
    }
    if (rc != 0) {
        *bad = (bad_record_t){rc,           reason,         k,
                              key->mv_size, value->mv_size, value->mv_size > 0 ? v[0] : 0};
        return false;
    }
    b->count++;
    return true;
}

static void batch_discard(built_batch_t *b, void *ctx)
{
    for (size_t i = 0; i < b->count; i++)
        b->split->discard_cb(ctx, entry_item(batch_entry(b, i)));
    b->count = 0;
}

/* The batch's i-th record in install order: first to last, or last to first (reverse). */
static built_entry_t *batch_entry_in_order(const built_batch_t *b, bool reverse, size_t i)
{
    return batch_entry(b, reverse ? b->count - 1 - i : i);
}

/* Install the batch's records in order (see batch_entry_in_order), numbering them from
 * *records on; on an error the rest are discarded. Empties the batch. */
static int batch_install(built_batch_t *b, bool reverse, const checkpoint_store_t *store,
                         void *ctx, uint64_t *records, char *message, size_t message_bytes)
{
    const checkpoint_split_t *split = b->split;
    int rc = 0;
    size_t done = 0;
    for (; done < b->count && rc == 0; done++) {
        size_t ahead = done + SPLIT_PREFETCH_AHEAD;
        if (split->prefetch_cb != NULL && ahead < b->count)
            split->prefetch_cb(ctx, entry_item(batch_entry_in_order(b, reverse, ahead)));
        built_entry_t *entry = batch_entry_in_order(b, reverse, done);
        rc = split->install_cb(ctx, entry_item(entry));
        if (rc != 0)
            report_refused(store, *records, entry->key, entry->key_len, entry->type, rc, message,
                           message_bytes);
        else
            (*records)++;
    }
    for (; done < b->count; done++) /* after an error: the ones not installed */
        split->discard_cb(ctx, entry_item(batch_entry_in_order(b, reverse, done)));
    b->count = 0;
    return rc;
}

/* ---- claiming runs ----------------------------------------------------------------------- */

/* Read up to SPLIT_RUN records of the kind from the cursor's record (key, value) on, in the
 * walk's direction; leaves the cursor on the last record read. */
static int run_read(MDB_cursor *cursor, uint8_t kind, MDB_cursor_op step, MDB_val key,
                    MDB_val value, record_run_t *run)
{
    run->count = 0;
    run->kind_ended = false;
    for (;;) {
        run->keys[run->count] = key;
        run->values[run->count] = value;
        if (++run->count == SPLIT_RUN)
            return 0;
        int mrc = mdb_cursor_get(cursor, &key, &value, step);
        if (mrc == MDB_NOTFOUND || (mrc == 0 && !key_is_kind(&key, kind))) {
            run->kind_ended = true;
            return 0;
        }
        if (mrc != 0)
            return mrc;
    }
}

static void frontier_set(frontier_t *f, const MDB_val *key)
{
    f->key = key->mv_data;
    f->len = key->mv_size;
}

/* How many of the run's records (in walking order) lie before the other thread's frontier;
 * upwards: keys below it, downwards: keys above it. */
static size_t run_cut(const record_run_t *run, const frontier_t *other, bool upwards)
{
    if (other->len == 0)
        return run->count;
    size_t cut = 0;
    while (cut < run->count) {
        int c = key_compare(run->keys[cut].mv_data, run->keys[cut].mv_size, other->key,
                            other->len);
        if (upwards ? c >= 0 : c <= 0)
            break;
        cut++;
    }
    return cut;
}

/* Claim the first records of the run: cut it at the other thread's frontier and move this
 * thread's there. True when the threads have met (nothing is left for this one after these). */
static bool run_claim(split_builder_t *b, record_run_t *run, bool upwards)
{
    pthread_mutex_lock(&b->mutex);
    frontier_t *mine = upwards ? &b->loader_high : &b->builder_low;
    const frontier_t *other = upwards ? &b->builder_low : &b->loader_high;
    size_t cut = run_cut(run, other, upwards);
    bool met = cut < run->count;
    run->count = cut;
    if (cut > 0)
        frontier_set(mine, &run->keys[cut - 1]);
    pthread_mutex_unlock(&b->mutex);
    return met;
}

/* ---- the builder thread ------------------------------------------------------------------ */

/* Build the builder's claimed run (highest key first). A bad record drops everything built so
 * far (all above it) and becomes the part's bad record; the walk goes on below it. */
static void builder_build_run(split_builder_t *b, const record_run_t *run)
{
    for (size_t i = 0; i < run->count; i++) {
        bad_record_t bad;
        if (!batch_build(&b->batch, &run->keys[i], &run->values[i], &bad)) {
            batch_discard(&b->batch, b->ctx);
            b->bad = bad;
        }
    }
}

/* Put the cursor on the kind's last record; false when the kind is empty or on an error. */
static bool builder_seek_last(const split_builder_t *b, MDB_cursor *cursor, MDB_val *key,
                              MDB_val *value)
{
    uint8_t kind = b->split->kind;
    uint8_t next_kind = (uint8_t)(kind + 1);
    *key = (MDB_val){1, &next_kind};
    int mrc = kind == UINT8_MAX ? MDB_NOTFOUND : mdb_cursor_get(cursor, key, value, MDB_SET_RANGE);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return false;
    mrc = mdb_cursor_get(cursor, key, value, mrc == 0 ? MDB_PREV : MDB_LAST);
    return mrc == 0 && key_is_kind(key, kind);
}

/* Claim and build runs downwards until the threads meet. An LMDB error just ends the walk:
 * every record below the builder's frontier is the loading thread's, which reads them itself
 * (and meets the same error if the store is damaged there). */
static void builder_walk(split_builder_t *b, MDB_cursor *cursor)
{
    MDB_val key, value;
    bool more = builder_seek_last(b, cursor, &key, &value);
    while (more && !atomic_load(&b->stop)) {
        if (run_read(cursor, b->split->kind, MDB_PREV, key, value, &b->run) != 0)
            return;
        bool met = run_claim(b, &b->run, false);
        builder_build_run(b, &b->run);
        if (met || b->run.kind_ended)
            return;
        more = mdb_cursor_get(cursor, &key, &value, MDB_PREV) == 0 && /* past the run */
               key_is_kind(&key, b->split->kind);
    }
}

static void *builder_main(void *arg)
{
    split_builder_t *b = arg;
    pthread_setname_np(pthread_self(), "allot-load"); /* its name in ps -L, perf, traces */
    MDB_txn *txn;
    MDB_cursor *cursor;
    if (mdb_txn_begin(b->store->env, NULL, MDB_RDONLY, &txn) != 0)
        return NULL; /* e.g. no reader slot: the loading thread loads the whole kind */
    b->same_snapshot = mdb_txn_id(txn) == b->snapshot;
    if (b->same_snapshot && mdb_cursor_open(txn, b->store->state, &cursor) == 0) {
        builder_walk(b, cursor);
        mdb_cursor_close(cursor);
    }
    mdb_txn_abort(txn); /* the loading thread's transaction keeps the snapshot's pages */
    return NULL;
}

/* ---- the loading thread's side ----------------------------------------------------------- */

static bool builder_start(split_builder_t *b, checkpoint_store_t *store,
                          const checkpoint_split_t *split, void *ctx, MDB_txn *txn)
{
    *b = (split_builder_t){.split = split, .ctx = ctx, .store = store,
                           .snapshot = mdb_txn_id(txn)};
    batch_init(&b->batch, split, split->builder_ctx);
    pthread_mutex_init(&b->mutex, NULL);
    if (pthread_create(&b->thread, NULL, builder_main, b) == 0)
        return true;
    pthread_mutex_destroy(&b->mutex);
    return false;
}

/* Join the builder; install its records in key order (install) or drop them. */
static int builder_finish(split_builder_t *b, bool install, void *ctx, uint64_t *records,
                          char *message, size_t message_bytes)
{
    atomic_store(&b->stop, !install);
    pthread_join(b->thread, NULL);
    pthread_mutex_destroy(&b->mutex);
    int rc = 0;
    if (install)
        rc = batch_install(&b->batch, true, b->store, ctx, records, message, message_bytes);
    if (rc == 0 && install && b->bad.rc != 0)
        rc = report_bad(b->store, *records, &b->bad, message, message_bytes);
    batch_discard(&b->batch, ctx);
    free(b->batch.entries);
    return rc;
}

typedef struct load_walk {
    checkpoint_store_t *store;
    checkpoint_record_cb record_cb;
    const checkpoint_split_t *split;
    void *ctx;
    uint64_t records;
    uint64_t second_thread;       /* records installed from the builder */
    checkpoint_payload_t payload; /* records stored without their id, put together */
    char *message;
    size_t message_bytes;
} load_walk_t;

/* One record through record_cb. */
static int walk_record(load_walk_t *w, const MDB_val *key, const MDB_val *value)
{
    const uint8_t *k = key->mv_data;
    bad_reason_t reason = record_check(key, value);
    if (reason == BAD_MALFORMED)
        return report_malformed(w->store, w->records, k, key->mv_size, value->mv_size,
                                w->message, w->message_bytes);
    if (reason == BAD_CHECKSUM)
        return report_checksum(w->store, w->records, k, key->mv_size, value->mv_size, w->message,
                               w->message_bytes);
    uint8_t type;
    const uint8_t *payload;
    size_t payload_len;
    int rc = checkpoint_record_payload(key, value, &w->payload, &type, &payload, &payload_len);
    if (rc != 0)
        return checkpoint_lmdb_error(rc, "read", w->store->path, w->message, w->message_bytes);
    rc = w->record_cb(w->ctx, k, key->mv_size, type, payload, payload_len);
    if (rc != 0)
        return report_refused(w->store, w->records, k, key->mv_size, type, rc, w->message,
                              w->message_bytes);
    w->records++;
    return 0;
}

/* Build and install the loading thread's claimed run, in key order. */
static int walk_install_run(load_walk_t *w, built_batch_t *batch, const record_run_t *run)
{
    bad_record_t bad = {0};
    for (size_t i = 0; i < run->count && bad.rc == 0; i++)
        batch_build(batch, &run->keys[i], &run->values[i], &bad);
    int rc = batch_install(batch, false, w->store, w->ctx, &w->records, w->message,
                           w->message_bytes);
    if (rc == 0 && bad.rc != 0)
        rc = report_bad(w->store, w->records, &bad, w->message, w->message_bytes);
    return rc;
}

/* The split kind, from its first record (key, value): upwards in runs while the builder comes
 * down, then the builder's records. Leaves the cursor before the next kind's first record. */
static int walk_split_kind(load_walk_t *w, MDB_txn *txn, MDB_cursor *cursor, MDB_val key,
                           MDB_val value)
{
    split_builder_t builder;
    bool builder_running = builder_start(&builder, w->store, w->split, w->ctx, txn);
    built_batch_t batch;
    batch_init(&batch, w->split, w->split->loader_ctx);
    record_run_t *run = malloc(sizeof(*run));
    int rc = 0;
    if (run == NULL) {
        snprintf(w->message, w->message_bytes, "checkpoint: %s: out of memory", w->store->path);
        rc = ALLOT_ENOMEM;
    }
    while (rc == 0) {
        int mrc = run_read(cursor, w->split->kind, MDB_NEXT, key, value, run);
        if (mrc != 0) {
            rc = checkpoint_lmdb_error(mrc, "read", w->store->path, w->message, w->message_bytes);
            break;
        }
        bool met = builder_running && run_claim(&builder, run, true);
        rc = walk_install_run(w, &batch, run);
        if (met || run->kind_ended || rc != 0)
            break;
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
        if (mrc == MDB_NOTFOUND || (mrc == 0 && !key_is_kind(&key, w->split->kind)))
            break;
        if (mrc != 0)
            rc = checkpoint_lmdb_error(mrc, "read", w->store->path, w->message, w->message_bytes);
    }
    free(run);
    free(batch.entries);
    if (builder_running) {
        uint64_t before = w->records;
        int finish_rc = builder_finish(&builder, rc == 0, w->ctx, &w->records, w->message,
                                       w->message_bytes);
        w->second_thread += w->records - before;
        if (rc == 0)
            rc = finish_rc;
    }
    return rc;
}

/* The record count the store says it holds (in the load's transaction). */
static int records_expected(const checkpoint_store_t *store, MDB_txn *txn, uint64_t *count,
                            char *message, size_t message_bytes)
{
    uint8_t bytes[8];
    int mrc = checkpoint_meta_get(txn, store->meta, META_KEY_RECORDS, bytes, sizeof(bytes));
    if (mrc == 0) {
        *count = allot_u64_load_le(bytes);
        return 0;
    }
    if (mrc == MDB_NOTFOUND || mrc == CHECKPOINT_MDB_BAD_CHECKSUM) {
        snprintf(message, message_bytes, "checkpoint: %s: the meta record %s is %s", store->path,
                 META_KEY_RECORDS, mrc == MDB_NOTFOUND ? "missing" : "damaged");
        return ALLOT_ECORRUPT;
    }
    return checkpoint_lmdb_error(mrc, "read", store->path, message, message_bytes);
}

/* Every record was loaded: as many as the store says it holds. */
static int records_counted(const checkpoint_store_t *store, uint64_t loaded, uint64_t expected,
                           char *message, size_t message_bytes)
{
    if (loaded == expected)
        return 0;
    snprintf(message, message_bytes,
             "checkpoint: %s: %" PRIu64 " records were read but the store holds %" PRIu64
             ": the file is damaged (a page of records is unreadable); restore state.lmdb and "
             "wal/ from a backup",
             store->path, loaded, expected);
    return ALLOT_ECORRUPT;
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

/* ---- faults on damaged pages ------------------------------------------------------------- */

/* LMDB follows the offsets, sizes and page numbers it reads without checking all of them, so a
 * page of garbage can make it (or the checksum of a value it returned) read outside the file's
 * pages or through a wild pointer: SIGBUS past the end of the file, SIGSEGV elsewhere. While a
 * load runs, such a fault is reported through checkpoint_set_damage_cb before the process dies
 * when it is one of these: an address from the map's start up to 4 GiB past its end (the
 * farthest a 32-bit size read from a page reaches), or an instruction of the LMDB library itself
 * (x86-64 and arm64; LMDB does not crash on pages it wrote). Any other fault goes to the handler
 * that was there before: a crash elsewhere stays a crash. One load at a time (start-up). */
#define LOAD_FAULT_REACH_BYTES (4ull << 30)

typedef struct address_range {
    uintptr_t low, high; /* [low, high); empty when equal */
} address_range_t;

static struct {
    address_range_t map;  /* state.lmdb's mapping and the reach past it */
    address_range_t code; /* the LMDB library's instructions */
    const char *path;
    struct sigaction previous[2]; /* SIGSEGV, SIGBUS */
} load_fault;

static bool range_holds(const address_range_t *range, uintptr_t at)
{
    return at >= range->low && at < range->high;
}

/* The instruction that faulted (0 where the platform is not known here). */
static uintptr_t fault_instruction(const void *context)
{
    const ucontext_t *uc = context;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

static void load_fault_on_signal(int signal_number, siginfo_t *info, void *context)
{
    uintptr_t at = (uintptr_t)info->si_addr;
    bool in_map = range_holds(&load_fault.map, at);
    if (in_map || range_holds(&load_fault.code, fault_instruction(context))) {
        char text[200];
        snprintf(text, sizeof(text), "%s %s %zu: a damaged page sent LMDB outside the data",
                 signal_number == SIGBUS ? "SIGBUS" : "SIGSEGV",
                 in_map ? "reading the map at offset" : "in LMDB reading address",
                 in_map ? (size_t)(at - load_fault.map.low) : (size_t)at);
        checkpoint_damage_report(load_fault.path, text);
    }
    /* not reported (or the report returned): the fault recurs under the previous handler */
    sigaction(signal_number, &load_fault.previous[signal_number == SIGBUS], NULL);
}

/* The mapping in /proc/self/maps that matches: file offset 0 of (device, inode), or the first
 * executable one of the file named path. Empty when none does. */
static address_range_t mapping_find(dev_t device, ino_t inode, const char *path)
{
    address_range_t found = {0, 0};
    FILE *maps = fopen("/proc/self/maps", "re");
    if (maps == NULL)
        return found;
    char line[768], name[512];
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long long start, end, offset, ino;
        unsigned dev_major, dev_minor;
        char perms[8];
        name[0] = '\0';
        if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %511s", &start, &end, perms, &offset,
                   &dev_major, &dev_minor, &ino, name) < 7)
            continue;
        bool match = path != NULL ? perms[2] == 'x' && strcmp(name, path) == 0
                                  : offset == 0 && ino == (unsigned long long)inode &&
                                        dev_major == major(device) && dev_minor == minor(device);
        if (match) {
            found = (address_range_t){(uintptr_t)start, (uintptr_t)end};
            break;
        }
    }
    fclose(maps);
    return found;
}

static void load_fault_catch(const checkpoint_store_t *store)
{
    int fd;
    struct stat file;
    load_fault.map = (address_range_t){0, 0};
    if (mdb_env_get_fd(store->env, &fd) == 0 && fstat(fd, &file) == 0)
        load_fault.map = mapping_find(file.st_dev, file.st_ino, NULL);
    if (load_fault.map.high > load_fault.map.low)
        load_fault.map.high += LOAD_FAULT_REACH_BYTES;
    Dl_info library;
    char resolved[PATH_MAX]; /* /proc/self/maps names the file itself, not a symlink */
    load_fault.code = (address_range_t){0, 0};
    if (dladdr((void *)mdb_cursor_get, &library) != 0 && library.dli_fname != NULL &&
        strstr(library.dli_fname, "lmdb") != NULL && realpath(library.dli_fname, resolved) != NULL)
        load_fault.code = mapping_find(0, 0, resolved);
    load_fault.path = store->path;
    struct sigaction action = {.sa_sigaction = load_fault_on_signal, .sa_flags = SA_SIGINFO};
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &load_fault.previous[0]);
    sigaction(SIGBUS, &action, &load_fault.previous[1]);
}

static int load_all(checkpoint_store_t *store, checkpoint_record_cb record_cb,
                    const checkpoint_split_t *split, void *ctx, checkpoint_load_stats_t *stats,
                    char *message, size_t message_bytes);

static void load_fault_release(void)
{
    sigaction(SIGSEGV, &load_fault.previous[0], NULL);
    sigaction(SIGBUS, &load_fault.previous[1], NULL);
}

int checkpoint_store_load_split(checkpoint_store_t *store, checkpoint_record_cb record_cb,
                                const checkpoint_split_t *split, void *ctx,
                                checkpoint_load_stats_t *stats, char *message,
                                size_t message_bytes)
{
    assert(store != NULL && record_cb != NULL);
    load_fault_catch(store);
    int rc = load_all(store, record_cb, split, ctx, stats, message, message_bytes);
    load_fault_release();
    return rc;
}

/* checkpoint_store_load_split's walk. */
static int load_all(checkpoint_store_t *store, checkpoint_record_cb record_cb,
                    const checkpoint_split_t *split, void *ctx, checkpoint_load_stats_t *stats,
                    char *message, size_t message_bytes)
{
    if (message_bytes > 0)
        message[0] = '\0';
    int fd; /* every page will be read: have the kernel read the file ahead, in the background */
    if (mdb_env_get_fd(store->env, &fd) == 0)
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
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
                     .message = message, .message_bytes = message_bytes};
    uint64_t expected = 0;
    int rc = records_expected(store, txn, &expected, message, message_bytes);
    MDB_val key, value;
    mrc = rc == 0 ? mdb_cursor_get(cursor, &key, &value, MDB_FIRST) : MDB_NOTFOUND;
    while (mrc == 0 && rc == 0) {
        if (split == NULL || !key_is_kind(&key, split->kind)) {
            rc = walk_record(&w, &key, &value);
            if (rc == 0) /* not past a bad record: its page may be garbage */
                mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
            continue;
        }
        rc = walk_split_kind(&w, txn, cursor, key, value);
        uint8_t next_kind = (uint8_t)(split->kind + 1); /* then the first key past the kind */
        key = (MDB_val){1, &next_kind};
        mrc = split->kind == UINT8_MAX || rc != 0
                  ? MDB_NOTFOUND
                  : mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    }
    if (rc == 0 && mrc != MDB_NOTFOUND)
        rc = checkpoint_lmdb_error(mrc, "read", store->path, message, message_bytes);
    if (rc == 0)
        rc = records_counted(store, w.records, expected, message, message_bytes);
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    checkpoint_payload_free(&w.payload);
    if (stats != NULL)
        *stats = (checkpoint_load_stats_t){w.records, w.second_thread};
    return rc;
}

/* ---- verifying a stored checkpoint ------------------------------------------------------- */

/* Every record of "state": sizes and trailer (what loading checks before core sees a record),
 * then the count. */
static int verify_state(const checkpoint_store_t *store, MDB_txn *txn, uint64_t *records,
                        char *message, size_t message_bytes)
{
    uint64_t expected = 0;
    int rc = records_expected(store, txn, &expected, message, message_bytes);
    MDB_cursor *cursor;
    int mrc = rc == 0 ? mdb_cursor_open(txn, store->state, &cursor) : 0;
    if (rc != 0 || mrc != 0)
        return rc != 0
                   ? rc
                   : checkpoint_lmdb_error(mrc, "cursor on", store->path, message, message_bytes);
    MDB_val key, value;
    for (mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
        bad_reason_t reason = record_check(&key, &value);
        if (reason == BAD_MALFORMED)
            rc = report_malformed(store, *records, key.mv_data, key.mv_size, value.mv_size, message,
                                  message_bytes);
        else if (reason == BAD_CHECKSUM)
            rc = report_checksum(store, *records, key.mv_data, key.mv_size, value.mv_size, message,
                                 message_bytes);
        else
            (*records)++;
    }
    mdb_cursor_close(cursor);
    if (rc == 0 && mrc != MDB_NOTFOUND)
        rc = checkpoint_lmdb_error(mrc, "read", store->path, message, message_bytes);
    return rc == 0 ? records_counted(store, *records, expected, message, message_bytes) : rc;
}

/* Every entry of the customer index holds its trailer alone. */
static int verify_index(const checkpoint_store_t *store, MDB_txn *txn, char *message,
                        size_t message_bytes)
{
    MDB_cursor *cursor;
    int mrc = mdb_cursor_open(txn, store->index, &cursor);
    if (mrc != 0)
        return checkpoint_lmdb_error(mrc, "cursor on", store->path, message, message_bytes);
    MDB_val key, value;
    uint64_t number = 0;
    for (mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT), number++)
        if (value.mv_size != CHECKPOINT_CRC_BYTES || !checkpoint_crc_matches(&key, &value))
            break;
    mdb_cursor_close(cursor);
    if (mrc == 0) {
        snprintf(message, message_bytes,
                 "checkpoint: %s: entry #%" PRIu64 " of %s (key %zu bytes) fails its checksum",
                 store->path, number, ARCHIVE_INDEX_DB_NAME, key.mv_size);
        return ALLOT_ECORRUPT;
    }
    return mrc == MDB_NOTFOUND
               ? 0
               : checkpoint_lmdb_error(mrc, "read", store->path, message, message_bytes);
}

int checkpoint_store_verify(checkpoint_store_t *store, uint64_t *records, char *message,
                            size_t message_bytes)
{
    assert(store != NULL && records != NULL);
    *records = 0;
    if (message_bytes > 0)
        message[0] = '\0';
    checkpoint_store_map_lock(store); /* beside the writer thread, as archive readers are */
    MDB_txn *txn;
    int mrc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    int rc = 0;
    if (mrc != 0) {
        rc = checkpoint_lmdb_error(mrc, "begin read of", store->path, message, message_bytes);
    } else {
        uint8_t lsn[8];
        mrc = checkpoint_meta_get(txn, store->meta, META_KEY_LSN, lsn, sizeof(lsn));
        if (mrc != 0 && mrc != MDB_NOTFOUND)
            rc = checkpoint_lmdb_error(mrc, "read checkpoint_lsn of", store->path, message,
                                       message_bytes);
        if (rc == 0)
            rc = verify_state(store, txn, records, message, message_bytes);
        if (rc == 0)
            rc = verify_index(store, txn, message, message_bytes);
        mdb_txn_abort(txn);
    }
    checkpoint_store_map_unlock(store);
    return rc;
}

/* ---- loading into a state (core) -------------------------------------------------------- */

/* Every record holds its kind's snapshot type (core/state.h): anything else under a key is
 * refused, whichever thread meets it. */
static int load_record(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                       const uint8_t *payload, size_t payload_len)
{
    (void)key_len;
    if (type != allot_snapshot_type_of_kind(key[0]))
        return ALLOT_ECORRUPT;
    /* archived orders stay in the store (applying one keeps nothing anyway): skip decoding */
    if (type == ALLOT_EVENT_ORDER_SNAPSHOT && payload_len >= 2 && (payload[1] & 1u) != 0)
        return 0;
    return allot_event_apply_encoded(ctx, type, payload, payload_len);
}

/* SKU snapshots, nearly all of a large checkpoint, are built on two threads (core/event.h,
 * allot_sku_snapshot_build: ALLOT_ECORRUPT for any other type) and installed on this one in
 * key order. */
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
    return allot_sku_snapshot_build(b->state, &b->builder, type, payload, payload_len, item);
}

static int sku_load_install(void *ctx, void *item)
{
    return allot_sku_snapshot_install(ctx, item);
}

static void sku_load_prefetch(void *ctx, void *item)
{
    allot_sku_snapshot_prefetch(ctx, item);
}

static void sku_load_discard(void *ctx, void *item)
{
    (void)ctx;
    allot_sku_snapshot_discard(item);
}

int checkpoint_store_load_state(checkpoint_store_t *store, struct allot_state *state,
                                checkpoint_load_stats_t *stats, char *message,
                                size_t message_bytes)
{
    sku_load_builder_t builders[2] = {{.state = state}, {.state = state}};
    allot_sku_builder_init(&builders[0].builder);
    allot_sku_builder_init(&builders[1].builder);
    const checkpoint_split_t split = {.kind = CHECKPOINT_KIND_SKU,
                                      .item_bytes = sizeof(allot_sku_build_t),
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

int checkpoint_store_copy(checkpoint_store_t *store, int fd, char *message, size_t message_bytes)
{
    checkpoint_store_map_lock(store); /* beside the writer thread, as archive readers are */
    int mrc = mdb_env_copyfd2(store->env, fd, MDB_CP_COMPACT);
    checkpoint_store_map_unlock(store);
    return mrc == 0 ? 0 : checkpoint_lmdb_error(mrc, "copy", store->path, message, message_bytes);
}
