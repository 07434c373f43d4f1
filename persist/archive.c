/* archive.c - the order archive over state.lmdb: get by id, list by customer (newest first)
 * through the "orders_by_customer" index, and the index upkeep used by the checkpoint writer.
 * Format of the index in archive.h; the whole store layout at the top of checkpoint.c. */
#include "archive.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_private.h"
#include "core/errors.h"

#define ARCHIVE_ORDER_KIND 0x05u
#define ARCHIVE_TIME_BYTES 8u

struct archive {
    checkpoint_store_t *store;
    MDB_env *env;
    MDB_dbi state;
    MDB_dbi index;
    MDB_txn *txn;  /* read transaction, reset between calls (NULL until the first) */
    uint8_t *copy; /* archive_get's result */
    size_t copy_capacity;
};

static int mdb_to_allot(int mrc)
{
    if (mrc == MDB_NOTFOUND)
        return ALLOT_ENOT_FOUND;
    if (mrc == ENOMEM)
        return ALLOT_ENOMEM;
    return mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND ? ALLOT_ECORRUPT : ALLOT_EIO;
}

int archive_open(checkpoint_store_t *store, archive_t **out)
{
    assert(out != NULL);
    *out = NULL;
    if (store == NULL)
        return ALLOT_EINVALID_ARGUMENT;
    archive_t *archive = calloc(1, sizeof(*archive));
    if (archive == NULL)
        return ALLOT_ENOMEM;
    archive->store = store;
    archive->env = checkpoint_store_env(store);
    archive->state = checkpoint_store_state_dbi(store);
    archive->index = checkpoint_store_index_dbi(store);
    *out = archive;
    return 0;
}

void archive_close(archive_t *archive)
{
    if (archive == NULL)
        return;
    if (archive->txn != NULL)
        mdb_txn_abort(archive->txn);
    free(archive->copy);
    free(archive);
}

static int archive_hook_get(void *ctx, allot_str_t id, const uint8_t **payload, size_t *len)
{
    return archive_get(ctx, id, payload, len);
}

static int archive_hook_list(void *ctx, allot_str_t customer, int64_t before_created_ms,
                             allot_str_t before_id, uint32_t max,
                             allot_order_archive_each_cb each_cb, void *each_ctx)
{
    return archive_list(ctx, customer, before_created_ms, before_id, max, each_cb, each_ctx);
}

void archive_hook(archive_t *archive, allot_order_archive_t *hook)
{
    hook->get_cb = archive_hook_get;
    hook->list_cb = archive_hook_list;
    hook->ctx = archive;
}

/* Begin (or renew) the read transaction; holds the store's map lock until read_end. */
static int read_begin(archive_t *archive)
{
    checkpoint_store_map_lock(archive->store);
    int mrc = archive->txn == NULL ? mdb_txn_begin(archive->env, NULL, MDB_RDONLY, &archive->txn)
                                   : mdb_txn_renew(archive->txn);
    if (mrc != 0) {
        if (archive->txn != NULL)
            mdb_txn_abort(archive->txn);
        archive->txn = NULL;
        checkpoint_store_map_unlock(archive->store);
        return mdb_to_allot(mrc);
    }
    return 0;
}

static void read_end(archive_t *archive)
{
    mdb_txn_reset(archive->txn);
    checkpoint_store_map_unlock(archive->store);
}

/* The 0x05 record of order `id` in the read transaction: payload (no type byte). */
static int record_get(archive_t *archive, const char *id, size_t id_len, MDB_val *payload)
{
    uint8_t key_bytes[1 + ALLOT_ID_BYTES_MAX];
    if (id_len == 0 || id_len > ALLOT_ID_BYTES_MAX)
        return ALLOT_ENOT_FOUND;
    key_bytes[0] = ARCHIVE_ORDER_KIND;
    memcpy(key_bytes + 1, id, id_len);
    MDB_val key = {1 + id_len, key_bytes}, value;
    int mrc = mdb_get(archive->txn, archive->state, &key, &value);
    if (mrc != 0)
        return mdb_to_allot(mrc);
    const uint8_t *v = value.mv_data;
    if (value.mv_size < CHECKPOINT_VALUE_BYTES_MIN + 1 || v[0] != ALLOT_EVENT_ORDER_SNAPSHOT ||
        !checkpoint_crc_matches(&key, &value))
        return ALLOT_ECORRUPT;
    *payload = (MDB_val){value.mv_size - 1 - CHECKPOINT_CRC_BYTES, (void *)(v + 1)};
    return 0;
}

int archive_get(archive_t *archive, allot_str_t id, const uint8_t **payload, size_t *len)
{
    assert(archive != NULL && payload != NULL && len != NULL);
    int rc = read_begin(archive);
    if (rc != 0)
        return rc;
    MDB_val found;
    rc = record_get(archive, id.ptr, id.len, &found);
    if (rc == 0 && found.mv_size > archive->copy_capacity) {
        uint8_t *grown = realloc(archive->copy, found.mv_size);
        if (grown == NULL)
            rc = ALLOT_ENOMEM;
        else {
            archive->copy = grown;
            archive->copy_capacity = found.mv_size;
        }
    }
    if (rc == 0) {
        memcpy(archive->copy, found.mv_data, found.mv_size);
        *payload = archive->copy;
        *len = found.mv_size;
    }
    read_end(archive);
    return rc;
}

static void put_time(uint8_t *p, int64_t ms)
{
    uint64_t v = (uint64_t)ms ^ (1ull << 63);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Prefix of a customer's index keys: u8 length + customer. Returns its length (0: bad id). */
static size_t index_prefix(allot_str_t customer, uint8_t *key)
{
    if (customer.len == 0 || customer.len > ALLOT_ID_BYTES_MAX)
        return 0;
    key[0] = (uint8_t)customer.len;
    memcpy(key + 1, customer.ptr, customer.len);
    return 1u + customer.len;
}

/* Position the cursor on the last index entry strictly before `seek`; false when none. */
static int cursor_before(MDB_cursor *cursor, const uint8_t *seek, size_t seek_len, MDB_val *key,
                         MDB_val *value)
{
    *key = (MDB_val){seek_len, (void *)seek};
    int mrc = mdb_cursor_get(cursor, key, value, MDB_SET_RANGE);
    if (mrc == 0)
        return mdb_cursor_get(cursor, key, value, MDB_PREV);
    if (mrc == MDB_NOTFOUND)
        return mdb_cursor_get(cursor, key, value, MDB_LAST);
    return mrc;
}

/* Walk the customer's entries backwards from the cursor; each one's record to each_cb. */
static int list_walk(archive_t *archive, MDB_cursor *cursor, const uint8_t *prefix,
                     size_t prefix_len, const uint8_t *seek, size_t seek_len, uint32_t max,
                     allot_order_archive_each_cb each_cb, void *each_ctx)
{
    MDB_val key, value;
    int mrc = cursor_before(cursor, seek, seek_len, &key, &value);
    for (uint32_t n = 0; mrc == 0 && n < max; n++) {
        if (key.mv_size <= prefix_len + ARCHIVE_TIME_BYTES ||
            memcmp(key.mv_data, prefix, prefix_len) != 0)
            return 0; /* another customer's entries: done */
        if (value.mv_size != CHECKPOINT_CRC_BYTES || !checkpoint_crc_matches(&key, &value))
            return ALLOT_ECORRUPT; /* a damaged index entry */
        const char *id = (const char *)key.mv_data + prefix_len + ARCHIVE_TIME_BYTES;
        MDB_val payload;
        int rc = record_get(archive, id, key.mv_size - prefix_len - ARCHIVE_TIME_BYTES, &payload);
        if (rc != 0)
            return rc == ALLOT_ENOT_FOUND ? ALLOT_ECORRUPT : rc; /* index without its order */
        if (each_cb(each_ctx, payload.mv_data, payload.mv_size) != 0)
            return 0;
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_PREV);
    }
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : mdb_to_allot(mrc);
}

int archive_list(archive_t *archive, allot_str_t customer, int64_t before_created_ms,
                 allot_str_t before_id, uint32_t max, allot_order_archive_each_cb each_cb,
                 void *each_ctx)
{
    assert(archive != NULL && each_cb != NULL);
    uint8_t seek[ARCHIVE_INDEX_KEY_BYTES_MAX];
    size_t prefix_len = index_prefix(customer, seek);
    if (prefix_len == 0 || before_id.len > ALLOT_ID_BYTES_MAX)
        return ALLOT_EINVALID_ARGUMENT;
    size_t seek_len;
    if (before_id.len == 0) {
        /* above every entry of this customer: max time, then an id longer than any */
        memset(seek + prefix_len, 0xFF, ARCHIVE_TIME_BYTES + ALLOT_ID_BYTES_MAX + 1);
        seek_len = prefix_len + ARCHIVE_TIME_BYTES + ALLOT_ID_BYTES_MAX + 1;
    } else {
        put_time(seek + prefix_len, before_created_ms);
        memcpy(seek + prefix_len + ARCHIVE_TIME_BYTES, before_id.ptr, before_id.len);
        seek_len = prefix_len + ARCHIVE_TIME_BYTES + before_id.len;
    }
    int rc = read_begin(archive);
    if (rc != 0)
        return rc;
    MDB_cursor *cursor;
    int mrc = mdb_cursor_open(archive->txn, archive->index, &cursor);
    if (mrc == 0) {
        rc = list_walk(archive, cursor, seek, prefix_len, seek, seek_len, max, each_cb, each_ctx);
        mdb_cursor_close(cursor);
    } else {
        rc = mdb_to_allot(mrc);
    }
    read_end(archive);
    return rc;
}

/* ---- writer side ------------------------------------------------------------------------------
 */

int archive_index_key(const uint8_t *payload, size_t len, allot_event_scratch_t *scratch,
                      uint8_t *key, size_t *key_len)
{
    allot_event_t event;
    int rc = allot_event_decode(ALLOT_EVENT_ORDER_SNAPSHOT, payload, len, scratch, &event);
    if (rc != 0)
        return rc;
    const allot_event_order_t *o = &event.u.order;
    size_t prefix_len = index_prefix(o->customer, key);
    if (prefix_len == 0)
        return 0;
    if (o->id.len == 0 || o->id.len > ALLOT_ID_BYTES_MAX)
        return ALLOT_ECORRUPT;
    put_time(key + prefix_len, o->created_ms);
    memcpy(key + prefix_len + ARCHIVE_TIME_BYTES, o->id.ptr, o->id.len);
    *key_len = prefix_len + ARCHIVE_TIME_BYTES + o->id.len;
    return 1;
}

int archive_index_update(MDB_txn *txn, MDB_dbi index, uint8_t type, const uint8_t *payload,
                         size_t payload_len, bool put, allot_event_scratch_t *scratch)
{
    if (payload_len < 2 || type != ALLOT_EVENT_ORDER_SNAPSHOT)
        return ARCHIVE_MDB_BAD_ORDER;
    uint8_t key_bytes[ARCHIVE_INDEX_KEY_BYTES_MAX];
    size_t key_len = 0;
    int rc = archive_index_key(payload, payload_len, scratch, key_bytes, &key_len);
    if (rc == ALLOT_ENOMEM)
        return ENOMEM;
    if (rc < 0)
        return ARCHIVE_MDB_BAD_ORDER;
    if (rc == 0)
        return 0; /* no customer: not indexed */
    MDB_val key = {key_len, key_bytes};
    if (put) {
        uint8_t trailer[CHECKPOINT_CRC_BYTES]; /* the value is the trailer alone */
        checkpoint_crc_seal(key_bytes, key_len, trailer, sizeof(trailer));
        MDB_val value = {sizeof(trailer), trailer};
        return mdb_put(txn, index, &key, &value, 0);
    }
    int mrc = mdb_del(txn, index, &key, NULL);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}
