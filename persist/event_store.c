/* event_store.c - the change stream in <data-dir>/events.lmdb (contract in event_store.h).
 *
 * Layout (LMDB, one file with MDB_NOSUBDIR, "<path>-lock" beside it), five named databases:
 *   "events"  key: u64 seq, big-endian (so that LMDB's byte order is seq order); the seq of the
 *             one event, or of the first event of a run. The value is one of:
 *             - one event: i64 at_ms, little-endian, then the event's bytes as net/events.c lays
 *               them out (u8 format version, 1 or 2; u8 type; u8 sku_len, sku; u8 order_len,
 *               order; u8 customer_len, customer; then the event as one MessagePack map, whole in
 *               version 1, without the seq, at_ms and type pairs that key, at_ms and type give in
 *               version 2; both are read, the events of one store may be of both). Written before
 *               issue 20's runs; still read.
 *             - a run (written now): consecutive events of one transaction in one value of at
 *               most a page's payload (an LMDB overflow page holds it whole), one B-tree put for
 *               many events: i64 at_ms LE, the newest of its events (what retention compares);
 *               u8 0x80 (EVENT_STORE_RUN_MARK: an event's format version is below it); u16 count
 *               LE (>= 1); u64 last_seq LE (>= the key); then count events, each: uvarint seq
 *               minus the previous event's seq (the first: minus the key, so 0), signed varint
 *               (zigzag) at_ms minus the previous event's at_ms (the first: minus 0), uvarint
 *               len, then len bytes as a single event's bytes after its at_ms.
 *             A value shorter than 8 bytes, a run whose events overrun it, disagree with its
 *             count or last_seq, or whose seqs do not grow, is damage (ALLOT_ECORRUPT).
 *   "meta"    "last_lsn": u64 LE, every event of the records up to it is stored;
 *             "trimmed_seq": u64 LE, the highest seq retention removed (0: none);
 *             "bytes": u64 LE, the sum of the key and value sizes of "events";
 *             "count": u64 LE, the events stored; "ledger_count": u64 LE, the movements.
 *   "ledger_sku"   key: u8 sku_len, sku, u64 seq BE      value: a movement (below)
 *   "ledger_loc"   key: u8 sku_len, sku, u8 location_len, location, u64 seq BE
 *                  value: a movement
 *   "ledger_time"  key: u64 seq BE     value: i64 at_ms LE, u8 sku_len, sku, u8 location_len,
 *                  location (what trimming by age deletes from the two indices)
 *   A movement: i64 at_ms, i64 delta, i64 on_hand (all LE); u8 location_len, location;
 *   u8 reason_len, reason; u8 ref_len, ref.
 * The meta values change in the same transaction as the events they count.
 */
#include "event_store.h"

#include <assert.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/byte_order.h"
#include "core/errors.h"
#include "core/limits.h"
#include "fault.h"
#include "writeback.h"

#define EVENT_STORE_PATH_BYTES_MAX 1100
/* A run: its mark (the byte after at_ms), the bytes before its first event, the most events it
 * holds, and the most bytes an event adds beside its own (three varints of at most 10). */
#define EVENT_STORE_RUN_MARK         0x80
#define EVENT_STORE_RUN_HEADER_BYTES 19
#define EVENT_STORE_RUN_COUNT_MAX    UINT16_MAX
#define EVENT_STORE_RUN_EVENT_EXTRA  30
/* LMDB's page header: a value of up to a page less this fits one overflow page. */
#define EVENT_STORE_PAGE_HEADER_BYTES 16
/* The meta values, in the order of meta_names. */
#define EVENT_STORE_META_COUNT 5
static const char *const meta_names[EVENT_STORE_META_COUNT] = {"last_lsn", "trimmed_seq", "bytes",
                                                               "count", "ledger_count"};

/* The run being filled (the value's layout in the header comment; its header bytes are reserved
 * at the start of value and written when it is put). */
typedef struct event_store_run {
    uint8_t *value;
    size_t len, capacity;
    uint64_t first_seq, last_seq;
    int64_t last_at_ms, newest_at_ms;
    uint32_t count;
} event_store_run_t;

struct event_store {
    MDB_env *env;
    MDB_dbi events;
    MDB_dbi meta;
    MDB_dbi ledger_sku, ledger_loc, ledger_time;
    uint64_t ledger_count;
    MDB_txn *txn;           /* the write batch, NULL when none */
    MDB_cursor *put_cursor; /* the batch's appends to "events" (NULL: none yet) */
    event_store_run_t run;  /* the batch's events not yet put */
    size_t run_bytes_max;   /* a run's value fills at most one page */
    uint64_t last_lsn, trimmed_seq, bytes, count;
    uint64_t first_seq, last_seq;
    uint64_t meta_stored[EVENT_STORE_META_COUNT]; /* the meta values as committed */
    char message[256];
};

static int store_fail(event_store_t *store, const char *what, int mrc)
{
    snprintf(store->message, sizeof(store->message), "events.lmdb: %.160s: %.80s", what,
             mdb_strerror(mrc));
    return mrc == MDB_MAP_FULL ? ALLOT_EUNAVAILABLE : ALLOT_EIO;
}

const char *event_store_message(const event_store_t *store)
{
    return store->message;
}

static uint64_t meta_get(MDB_txn *txn, MDB_dbi meta, const char *name)
{
    MDB_val key = {strlen(name), (void *)name}, value;
    if (mdb_get(txn, meta, &key, &value) != 0 || value.mv_size != 8)
        return 0;
    return allot_u64_load_le(value.mv_data);
}

static int meta_put(MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t number)
{
    uint8_t bytes[8];
    allot_u64_store_le(bytes, number);
    MDB_val key = {strlen(name), (void *)name}, value = {8, bytes};
    return mdb_put(txn, meta, &key, &value, 0);
}

static uint64_t seq_of(const MDB_val *key)
{
    uint64_t seq = 0;
    for (size_t i = 0; i < 8 && i < key->mv_size; i++)
        seq = (seq << 8) | ((const uint8_t *)key->mv_data)[i];
    return seq;
}

static void seq_key(uint64_t seq, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)seq;
        seq >>= 8;
    }
}

/* ---- runs ---------------------------------------------------------------------------------- */

static size_t uvarint_put(uint8_t *p, uint64_t n)
{
    size_t i = 0;
    for (; n >= 0x80; n >>= 7)
        p[i++] = (uint8_t)(n | 0x80);
    p[i++] = (uint8_t)n;
    return i;
}

static bool uvarint_take(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t n = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        n |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *out = n;
            return true;
        }
    }
    return false;
}

/* One entry of "events" read event by event (the layouts in the header comment). */
typedef struct entry_walk {
    const uint8_t *p, *end;
    uint64_t seq, last_seq;
    int64_t at_ms;        /* the last event's, as the walk goes */
    int64_t newest_at_ms; /* the newest of its events (the value's first 8 bytes) */
    uint32_t count, left;
    bool run;
} entry_walk_t;

static int entry_open(const MDB_val *key, const MDB_val *value, entry_walk_t *w)
{
    if (value->mv_size < 8 || key->mv_size != 8)
        return ALLOT_ECORRUPT;
    const uint8_t *v = value->mv_data;
    int64_t at_ms = (int64_t)allot_u64_load_le(v);
    *w = (entry_walk_t){v + 8, v + value->mv_size, seq_of(key), seq_of(key), at_ms, at_ms, 1, 1,
                        false};
    if (value->mv_size == 8 || v[8] != EVENT_STORE_RUN_MARK)
        return 0;
    if (value->mv_size < EVENT_STORE_RUN_HEADER_BYTES)
        return ALLOT_ECORRUPT;
    w->run = true;
    w->count = w->left = (uint32_t)v[9] | (uint32_t)v[10] << 8;
    w->last_seq = allot_u64_load_le(v + 11);
    w->p = v + EVENT_STORE_RUN_HEADER_BYTES;
    w->at_ms = 0;
    return w->count > 0 && w->last_seq >= w->seq ? 0 : ALLOT_ECORRUPT;
}

/* The entry's next event: 1, 0 after its last, ALLOT_ECORRUPT. */
static int entry_next(entry_walk_t *w, uint64_t *seq, int64_t *at_ms, const uint8_t **bytes,
                      size_t *len)
{
    if (w->left == 0)
        return 0;
    w->left--;
    if (!w->run) {
        *seq = w->seq;
        *at_ms = w->at_ms;
        *bytes = w->p;
        *len = (size_t)(w->end - w->p);
        return 1;
    }
    uint64_t seq_step, at_step, n;
    bool first = w->left + 1 == w->count;
    if (!uvarint_take(&w->p, w->end, &seq_step) || !uvarint_take(&w->p, w->end, &at_step) ||
        !uvarint_take(&w->p, w->end, &n) || n > (uint64_t)(w->end - w->p) ||
        (seq_step == 0) != first || seq_step > w->last_seq - w->seq)
        return ALLOT_ECORRUPT;
    w->seq += seq_step;
    uint64_t at_delta = (at_step >> 1) ^ (0 - (at_step & 1)); /* zigzag */
    w->at_ms = (int64_t)((uint64_t)w->at_ms + at_delta);
    *seq = w->seq;
    *at_ms = w->at_ms;
    *bytes = w->p;
    *len = (size_t)n;
    w->p += n;
    if (w->left == 0 && (w->p != w->end || w->seq != w->last_seq))
        return ALLOT_ECORRUPT;
    return 1;
}

/* The last seq of an entry (its key when a single event); 0 when damaged. */
static uint64_t entry_last_seq(const MDB_val *key, const MDB_val *value)
{
    entry_walk_t w;
    return entry_open(key, value, &w) == 0 ? w.last_seq : 0;
}

/* Put the run being filled as one value (MDB_APPEND: its first seq is past every key). */
static int run_put(event_store_t *store)
{
    event_store_run_t *run = &store->run;
    assert(store->txn != NULL && run->count > 0 && run->len <= run->capacity);
    uint8_t *v = run->value;
    allot_u64_store_le(v, (uint64_t)run->newest_at_ms);
    v[8] = EVENT_STORE_RUN_MARK;
    v[9] = (uint8_t)run->count;
    v[10] = (uint8_t)(run->count >> 8);
    allot_u64_store_le(v + 11, run->last_seq);
    uint8_t key_bytes[8];
    seq_key(run->first_seq, key_bytes);
    MDB_val key = {8, key_bytes}, data = {run->len, NULL};
    /* one cursor for the batch: an append through it stays on the last page instead of walking
     * down from the root again as mdb_put's fresh cursor does */
    int mrc = store->put_cursor != NULL
                  ? 0
                  : mdb_cursor_open(store->txn, store->events, &store->put_cursor);
    if (mrc == 0)
        mrc = mdb_cursor_put(store->put_cursor, &key, &data, MDB_RESERVE | MDB_APPEND);
    if (mrc != 0)
        return store_fail(store, "put", mrc);
    memcpy(data.mv_data, v, run->len);
    store->bytes += 8 + run->len;
    run->count = 0;
    run->len = 0;
    return 0;
}

/* The varints that come before an event's bytes in run (the first event of a new run when run
 * is empty); their length. */
static size_t run_event_head(const event_store_run_t *run, uint64_t seq, int64_t at_ms, size_t len,
                             uint8_t head[EVENT_STORE_RUN_EVENT_EXTRA])
{
    bool fresh = run->count == 0;
    uint64_t at_delta = (uint64_t)at_ms - (fresh ? 0 : (uint64_t)run->last_at_ms);
    size_t n = uvarint_put(head, fresh ? 0 : seq - run->last_seq);
    n += uvarint_put(head + n, (at_delta << 1) ^ (0 - (at_delta >> 63))); /* zigzag */
    return n + uvarint_put(head + n, len);
}

/* Room for need more bytes in the run (a page's payload at least, so that one allocation serves
 * every run of events smaller than a page); false when memory ran out. */
static bool run_room(event_store_run_t *run, size_t need, size_t bytes_max)
{
    if (run->capacity - run->len >= need)
        return true;
    size_t capacity = run->len + need > bytes_max ? run->len + need : bytes_max;
    uint8_t *value = realloc(run->value, capacity);
    if (value == NULL)
        return false;
    run->value = value;
    run->capacity = capacity;
    return true;
}

/* The first and last seq stored (0 when empty). */
static int ends_read(event_store_t *store, MDB_txn *txn)
{
    MDB_cursor *cursor;
    int mrc = mdb_cursor_open(txn, store->events, &cursor);
    if (mrc != 0)
        return store_fail(store, "cursor", mrc);
    MDB_val key, value;
    store->first_seq = mdb_cursor_get(cursor, &key, &value, MDB_FIRST) == 0 ? seq_of(&key) : 0;
    store->last_seq =
        mdb_cursor_get(cursor, &key, &value, MDB_LAST) == 0 ? entry_last_seq(&key, &value) : 0;
    mdb_cursor_close(cursor);
    return 0;
}

static int store_load(event_store_t *store)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "events", MDB_CREATE, &store->events);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &store->meta);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "ledger_sku", MDB_CREATE, &store->ledger_sku);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "ledger_loc", MDB_CREATE, &store->ledger_loc);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "ledger_time", MDB_CREATE, &store->ledger_time);
    if (mrc != 0) {
        if (txn != NULL)
            mdb_txn_abort(txn);
        return store_fail(store, "open databases", mrc);
    }
    for (int i = 0; i < EVENT_STORE_META_COUNT; i++)
        store->meta_stored[i] = meta_get(txn, store->meta, meta_names[i]);
    store->last_lsn = store->meta_stored[0];
    store->trimmed_seq = store->meta_stored[1];
    store->bytes = store->meta_stored[2];
    store->count = store->meta_stored[3];
    store->ledger_count = store->meta_stored[4];
    int rc = ends_read(store, txn);
    mrc = mdb_txn_commit(txn);
    if (rc == 0 && mrc != 0)
        rc = store_fail(store, "commit", mrc);
    return rc;
}

int event_store_open(const char *data_dir, event_store_t **out, char *message, size_t message_bytes)
{
    *out = NULL;
    char path[EVENT_STORE_PATH_BYTES_MAX];
    int n = snprintf(path, sizeof(path), "%s/events.lmdb", data_dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ALLOT_EINVALID_ARGUMENT;
    event_store_t *store = calloc(1, sizeof(*store));
    if (store == NULL)
        return ALLOT_ENOMEM;
    int mrc = mdb_env_create(&store->env);
    if (mrc == 0)
        mrc = mdb_env_set_maxdbs(store->env, 5);
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(store->env, (size_t)EVENT_STORE_MAP_BYTES);
    if (mrc == 0)
        mrc = mdb_env_open(store->env, path, MDB_NOSUBDIR | MDB_NOTLS | MDB_NOSYNC, 0640);
    MDB_stat stat;
    if (mrc == 0)
        mrc = mdb_env_stat(store->env, &stat);
    int rc = mrc != 0 ? store_fail(store, path, mrc) : store_load(store);
    /* a run fills at most one (overflow) page: no page of a run is shared or half empty */
    size_t page_payload = mrc == 0 ? stat.ms_psize - EVENT_STORE_PAGE_HEADER_BYTES : 0;
    store->run_bytes_max =
        page_payload < EVENT_STORE_RUN_BYTES_MAX ? page_payload : EVENT_STORE_RUN_BYTES_MAX;
    if (rc != 0) {
        snprintf(message, message_bytes, "%s", store->message);
        event_store_close(store);
        return rc;
    }
    *out = store;
    return 0;
}

static void put_cursor_close(event_store_t *store)
{
    if (store->put_cursor != NULL)
        mdb_cursor_close(store->put_cursor);
    store->put_cursor = NULL;
}

void event_store_close(event_store_t *store)
{
    if (store == NULL)
        return;
    put_cursor_close(store);
    if (store->txn != NULL)
        mdb_txn_abort(store->txn);
    if (store->env != NULL)
        mdb_env_close(store->env);
    free(store->run.value);
    free(store);
}

uint64_t event_store_last_lsn(const event_store_t *store)
{
    return store->last_lsn;
}
uint64_t event_store_last_seq(const event_store_t *store)
{
    return store->last_seq;
}
uint64_t event_store_first_seq(const event_store_t *store)
{
    return store->first_seq;
}
uint64_t event_store_trimmed_seq(const event_store_t *store)
{
    return store->trimmed_seq;
}
uint64_t event_store_bytes(const event_store_t *store)
{
    return store->bytes;
}
uint64_t event_store_count(const event_store_t *store)
{
    return store->count;
}

int event_store_begin(event_store_t *store)
{
    assert(store->txn == NULL && store->run.count == 0);
    int mrc = mdb_txn_begin(store->env, NULL, 0, &store->txn);
    if (mrc != 0) {
        store->txn = NULL;
        return store_fail(store, "begin", mrc);
    }
    return 0;
}

int event_store_put(event_store_t *store, uint64_t seq, int64_t at_ms, const void *value,
                    size_t len)
{
    assert(store->txn != NULL && seq > store->last_seq);
    event_store_run_t *run = &store->run;
    /* the event's three varints, measured against the run it would join */
    uint8_t head[EVENT_STORE_RUN_EVENT_EXTRA];
    size_t head_len = run_event_head(run, seq, at_ms, len, head);
    if (run->count > 0 && (run->len + head_len + len > store->run_bytes_max ||
                           run->count == EVENT_STORE_RUN_COUNT_MAX)) {
        int rc = run_put(store);
        if (rc != 0)
            return rc;
        head_len = run_event_head(run, seq, at_ms, len, head);
    }
    size_t header = run->count == 0 ? EVENT_STORE_RUN_HEADER_BYTES : 0;
    if (!run_room(run, header + head_len + len, store->run_bytes_max)) {
        snprintf(store->message, sizeof(store->message), "events.lmdb: out of memory for a run");
        return ALLOT_ENOMEM;
    }
    if (run->count == 0)
        *run = (event_store_run_t){run->value, header, run->capacity, seq, seq, 0, at_ms, 0};
    memcpy(run->value + run->len, head, head_len);
    memcpy(run->value + run->len + head_len, value, len);
    run->len += head_len + len;
    run->last_seq = seq;
    run->last_at_ms = at_ms;
    if (at_ms > run->newest_at_ms)
        run->newest_at_ms = at_ms;
    run->count++;
    store->last_seq = seq;
    if (store->first_seq == 0)
        store->first_seq = seq;
    store->count++;
    return 0;
}

/* Put the meta values that differ from what is committed (trimmed_seq and ledger_count move
 * only now and then; a put is a B-tree walk); values[]: what they become once committed. */
static int meta_write(event_store_t *store, uint64_t values[EVENT_STORE_META_COUNT])
{
    values[0] = store->last_lsn;
    values[1] = store->trimmed_seq;
    values[2] = store->bytes;
    values[3] = store->count;
    values[4] = store->ledger_count;
    int mrc = 0;
    for (int i = 0; mrc == 0 && i < EVENT_STORE_META_COUNT; i++)
        if (values[i] != store->meta_stored[i])
            mrc = meta_put(store->txn, store->meta, meta_names[i], values[i]);
    return mrc;
}

int event_store_commit(event_store_t *store, uint64_t last_lsn)
{
    assert(store->txn != NULL);
    if (store->run.count > 0) {
        int rc = run_put(store);
        if (rc != 0) {
            event_store_abort(store);
            return rc;
        }
    }
    put_cursor_close(store);
    if (last_lsn > store->last_lsn)
        store->last_lsn = last_lsn;
    uint64_t values[EVENT_STORE_META_COUNT];
    int mrc = meta_write(store, values);
    if (mrc != 0) {
        event_store_abort(store);
        return store_fail(store, "meta", mrc);
    }
    mrc = mdb_txn_commit(store->txn);
    store->txn = NULL;
    if (mrc != 0) {
        store_load(store); /* back to what is stored */
        return store_fail(store, "commit", mrc);
    }
    memcpy(store->meta_stored, values, sizeof(values));
    return 0;
}

void event_store_abort(event_store_t *store)
{
    store->run.count = 0;
    store->run.len = 0;
    put_cursor_close(store);
    if (store->txn != NULL)
        mdb_txn_abort(store->txn);
    store->txn = NULL;
    store_load(store);
}

int event_store_flush(event_store_t *store)
{
    int fd;
    struct stat st;
    bool have_fd = mdb_env_get_fd(store->env, &fd) == 0;
    /* everything the loop committed since the last flush, a window at a time, so the WAL's
     * fdatasync meanwhile waits behind one window, not all of it (persist/writeback.h); again
     * for what the loop committed behind each walk (EVENT_STORE_FLUSH_WALKS) */
    for (int walk = 0; have_fd && walk < EVENT_STORE_FLUSH_WALKS && fstat(fd, &st) == 0; walk++)
        (void)persist_writeback_paced(fd, (uint64_t)st.st_size);
    int rc = mdb_env_sync(store->env, 1); /* the environment is not MDB_WRITEMAP: one fdatasync */
    /* the pages the loop's transactions read and wrote through the map since leave the RSS */
    if (rc == 0 && have_fd)
        (void)persist_file_map_release(fd);
    return rc;
}

/* Delete the oldest entries the bounds no longer keep (a run goes whole, once its newest event
 * is older than the cutoff or while the stream is over its bytes); *removed counts events. */
static int trim_walk(event_store_t *store, MDB_cursor *cursor, int64_t cutoff_ms,
                     uint64_t bytes_max, uint64_t *removed)
{
    MDB_val key, value;
    int mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    while (mrc == 0 && *removed < EVENT_STORE_TRIM_STEP_MAX) {
        entry_walk_t w;
        if (entry_open(&key, &value, &w) != 0)
            return ALLOT_ECORRUPT;
        if (w.newest_at_ms >= cutoff_ms && store->bytes <= bytes_max)
            break;
        if (*removed > 0 && *removed + w.count > EVENT_STORE_TRIM_STEP_MAX)
            break;
        size_t size = key.mv_size + value.mv_size;
        mrc = mdb_cursor_del(cursor, 0);
        if (mrc != 0)
            return store_fail(store, "trim", mrc);
        store->bytes -= size < store->bytes ? size : store->bytes;
        store->count -= w.count < store->count ? w.count : store->count;
        store->trimmed_seq = w.last_seq;
        *removed += w.count;
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_GET_CURRENT);
        if (mrc != 0)
            mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    return 0;
}

static int ledger_trim_walk(event_store_t *store, int64_t cutoff_ms, uint64_t *removed);

int event_store_trim(event_store_t *store, int64_t now_ms, int64_t retention_ms, uint64_t bytes_max,
                     int64_t ledger_retention_ms, uint64_t *removed)
{
    *removed = 0;
    if (store->count == 0 && store->ledger_count == 0)
        return 0;
    int rc = event_store_begin(store);
    if (rc != 0)
        return rc;
    MDB_cursor *cursor;
    int mrc = mdb_cursor_open(store->txn, store->events, &cursor);
    if (mrc != 0) {
        event_store_abort(store);
        return store_fail(store, "cursor", mrc);
    }
    rc = trim_walk(store, cursor, now_ms - retention_ms, bytes_max, removed);
    if (rc == 0)
        rc = ledger_trim_walk(store, now_ms - ledger_retention_ms, removed);
    if (rc == 0)
        rc = ends_read(store, store->txn);
    mdb_cursor_close(cursor);
    if (rc != 0 || *removed == 0) {
        event_store_abort(store);
        return rc;
    }
    return event_store_commit(store, store->last_lsn);
}

/* Put the cursor on the first entry holding a seq > after: the entry at or after after + 1, or
 * the run before it when that run reaches past after. */
static int scan_seek(MDB_cursor *cursor, uint64_t after, MDB_val *key, MDB_val *value)
{
    uint8_t key_bytes[8];
    seq_key(after == UINT64_MAX ? after : after + 1, key_bytes);
    *key = (MDB_val){8, key_bytes};
    int mrc = mdb_cursor_get(cursor, key, value, MDB_SET_RANGE);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return mrc;
    int back = mdb_cursor_get(cursor, key, value, mrc == 0 ? MDB_PREV : MDB_LAST);
    if (back == 0 && entry_last_seq(key, value) > after)
        return 0;
    *key = (MDB_val){8, key_bytes};
    return mdb_cursor_get(cursor, key, value, MDB_SET_RANGE);
}

int event_store_scan(event_store_t *store, uint64_t after, uint32_t scan_max,
                     event_store_each_cb each_cb, void *ctx, uint64_t *last)
{
    *last = after;
    if (store->last_seq <= after)
        return 0;
    MDB_txn *txn;
    int mrc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (mrc != 0)
        return store_fail(store, "read", mrc);
    MDB_cursor *cursor;
    mrc = mdb_cursor_open(txn, store->events, &cursor);
    if (mrc != 0) {
        mdb_txn_abort(txn);
        return store_fail(store, "cursor", mrc);
    }
    MDB_val key, value;
    int rc = 0;
    bool stop = false;
    uint32_t seen = 0;
    for (mrc = scan_seek(cursor, after, &key, &value); mrc == 0 && !stop && seen < scan_max;
         mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
        entry_walk_t w;
        rc = entry_open(&key, &value, &w);
        uint64_t seq;
        int64_t at_ms;
        const uint8_t *bytes;
        size_t len;
        int got;
        while (rc == 0 && !stop && seen < scan_max &&
               (got = entry_next(&w, &seq, &at_ms, &bytes, &len)) != 0) {
            if (got < 0)
                rc = got;
            else if (seq > after) {
                seen++;
                *last = seq;
                stop = each_cb(ctx, seq, at_ms, bytes, len) != 0;
            }
        }
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    return rc;
}

/* ---- the ledger ----------------------------------------------------------------------------- */

#define LEDGER_KEY_BYTES_MAX   (2 + 2 * ALLOT_ID_BYTES_MAX + 8)
#define LEDGER_VALUE_BYTES_MAX (24 + 3 + 3 * 255)

uint64_t event_store_ledger_count(const event_store_t *store)
{
    return store->ledger_count;
}

static size_t put_str(uint8_t *p, allot_str_t s)
{
    size_t len = s.len < 255 ? s.len : 255;
    p[0] = (uint8_t)len;
    if (len > 0)
        memcpy(p + 1, s.ptr, len);
    return 1 + len;
}

/* The key of sku (and location when with_location) at seq; its length. */
static size_t ledger_key(uint8_t *key, allot_str_t sku, allot_str_t location, bool with_location,
                         uint64_t seq)
{
    size_t n = put_str(key, sku);
    if (with_location)
        n += put_str(key + n, location);
    seq_key(seq, key + n);
    return n + 8;
}

int event_store_ledger_put(event_store_t *store, const event_ledger_entry_t *e)
{
    assert(store->txn != NULL);
    assert(e->sku.len <= ALLOT_ID_BYTES_MAX && e->location.len <= ALLOT_ID_BYTES_MAX);
    uint8_t value[LEDGER_VALUE_BYTES_MAX], key[LEDGER_KEY_BYTES_MAX];
    allot_u64_store_le(value, (uint64_t)e->at_ms);
    allot_u64_store_le(value + 8, (uint64_t)e->delta);
    allot_u64_store_le(value + 16, (uint64_t)e->on_hand);
    size_t n = 24 + put_str(value + 24, e->location);
    n += put_str(value + n, e->reason);
    n += put_str(value + n, e->ref);
    MDB_val data = {n, value};
    MDB_val k = {ledger_key(key, e->sku, e->location, false, e->seq), key};
    int mrc = mdb_put(store->txn, store->ledger_sku, &k, &data, 0);
    if (mrc == 0) {
        k.mv_size = ledger_key(key, e->sku, e->location, true, e->seq);
        mrc = mdb_put(store->txn, store->ledger_loc, &k, &data, 0);
    }
    if (mrc == 0) { /* what trimming needs: at_ms, sku, location */
        uint8_t time_value[8 + 2 + 2 * ALLOT_ID_BYTES_MAX], seq_bytes[8];
        allot_u64_store_le(time_value, (uint64_t)e->at_ms);
        size_t t = 8 + put_str(time_value + 8, e->sku);
        t += put_str(time_value + t, e->location);
        seq_key(e->seq, seq_bytes);
        MDB_val tk = {8, seq_bytes}, tv = {t, time_value};
        mrc = mdb_put(store->txn, store->ledger_time, &tk, &tv, MDB_APPEND);
    }
    if (mrc != 0)
        return store_fail(store, "ledger", mrc);
    store->ledger_count++;
    return 0;
}

static bool take_str(const uint8_t **p, const uint8_t *end, allot_str_t *out)
{
    if (*p >= end || (size_t)(end - *p) < 1u + (*p)[0])
        return false;
    *out = (allot_str_t){(const char *)*p + 1, (*p)[0]};
    *p += 1 + (*p)[0];
    return true;
}

static int ledger_decode(const MDB_val *key, const MDB_val *value, allot_str_t sku,
                         event_ledger_entry_t *e)
{
    if (value->mv_size < 24 || key->mv_size < 8)
        return ALLOT_ECORRUPT;
    const uint8_t *v = value->mv_data, *end = v + value->mv_size;
    e->seq = seq_of(&(MDB_val){8, (uint8_t *)key->mv_data + key->mv_size - 8});
    e->sku = sku;
    e->at_ms = (int64_t)allot_u64_load_le(v);
    e->delta = (int64_t)allot_u64_load_le(v + 8);
    e->on_hand = (int64_t)allot_u64_load_le(v + 16);
    const uint8_t *p = v + 24;
    bool ok = take_str(&p, end, &e->location) && take_str(&p, end, &e->reason) &&
              take_str(&p, end, &e->ref);
    return ok ? 0 : ALLOT_ECORRUPT;
}

/* Walk one index newest first from the cursor's position. */
static int ledger_walk(MDB_cursor *cursor, const uint8_t *prefix, size_t prefix_len,
                       allot_str_t sku, int64_t from_ms, int64_t to_ms, uint32_t limit,
                       event_ledger_each_cb each_cb, void *ctx, bool *more, int mrc)
{
    MDB_val key, value;
    uint32_t given = 0;
    if (mrc == 0)
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_GET_CURRENT);
    for (; mrc == 0; mrc = mdb_cursor_get(cursor, &key, &value, MDB_PREV)) {
        if (key.mv_size != prefix_len + 8 || memcmp(key.mv_data, prefix, prefix_len) != 0)
            break;
        event_ledger_entry_t e;
        if (ledger_decode(&key, &value, sku, &e) != 0)
            return ALLOT_ECORRUPT;
        if (e.at_ms > to_ms)
            continue;
        if (e.at_ms < from_ms)
            break;
        if (given == limit) {
            *more = true;
            break;
        }
        each_cb(ctx, &e);
        given++;
    }
    return 0;
}

int event_store_ledger_read(event_store_t *store, allot_str_t sku, allot_str_t location,
                            uint64_t before, int64_t from_ms, int64_t to_ms, uint32_t limit,
                            event_ledger_each_cb each_cb, void *ctx, bool *more)
{
    *more = false;
    bool with_location = location.len > 0;
    uint8_t key_bytes[LEDGER_KEY_BYTES_MAX];
    size_t key_len = ledger_key(key_bytes, sku, location, with_location, before);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (mrc != 0)
        return store_fail(store, "read", mrc);
    MDB_cursor *cursor;
    mrc = mdb_cursor_open(txn, with_location ? store->ledger_loc : store->ledger_sku, &cursor);
    if (mrc != 0) {
        mdb_txn_abort(txn);
        return store_fail(store, "cursor", mrc);
    }
    /* the first key >= (prefix, before), then one back: the newest with seq < before */
    MDB_val key = {key_len, key_bytes}, value;
    mrc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    if (mrc == 0)
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_PREV);
    else if (mrc == MDB_NOTFOUND)
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_LAST);
    int rc = ledger_walk(cursor, key_bytes, key_len - 8, sku, from_ms, to_ms, limit, each_cb, ctx,
                         more, mrc);
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    return rc;
}

/* Delete the movements older than cutoff_ms from the three indices. */
static int ledger_trim_walk(event_store_t *store, int64_t cutoff_ms, uint64_t *removed)
{
    MDB_cursor *cursor;
    int mrc = mdb_cursor_open(store->txn, store->ledger_time, &cursor);
    if (mrc != 0)
        return store_fail(store, "cursor", mrc);
    MDB_val key, value;
    int rc = 0;
    mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    while (mrc == 0 && *removed < EVENT_STORE_TRIM_STEP_MAX) {
        const uint8_t *v = value.mv_data, *end = v + value.mv_size, *p = v + 8;
        allot_str_t sku, location;
        if (value.mv_size < 8 || !take_str(&p, end, &sku) || !take_str(&p, end, &location)) {
            rc = ALLOT_ECORRUPT;
            break;
        }
        if ((int64_t)allot_u64_load_le(v) >= cutoff_ms)
            break;
        uint64_t seq = seq_of(&key);
        uint8_t k[LEDGER_KEY_BYTES_MAX];
        MDB_val sk = {ledger_key(k, sku, location, false, seq), k};
        mdb_del(store->txn, store->ledger_sku, &sk, NULL);
        sk.mv_size = ledger_key(k, sku, location, true, seq);
        mdb_del(store->txn, store->ledger_loc, &sk, NULL);
        mrc = mdb_cursor_del(cursor, 0);
        if (mrc != 0) {
            rc = store_fail(store, "trim", mrc);
            break;
        }
        store->ledger_count -= store->ledger_count > 0;
        (*removed)++;
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_GET_CURRENT);
    }
    mdb_cursor_close(cursor);
    return rc;
}
