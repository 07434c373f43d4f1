/* checkpoint_upgrade.c - rewrite a format version 1 or 2 store as version 3 (layout and rules at
 * the top of checkpoint.c): a CRC32C trailer on every value, the record count, the version. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_private.h"
#include "core/byte_order.h"

/* The growing buffer a rewritten value is built in. */
typedef struct upgrade_buffer {
    uint8_t *bytes;
    size_t capacity;
} upgrade_buffer_t;

static int buffer_reserve(upgrade_buffer_t *b, size_t bytes)
{
    if (bytes <= b->capacity)
        return 0;
    uint8_t *grown = realloc(b->bytes, bytes);
    if (grown == NULL)
        return ENOMEM;
    b->bytes = grown;
    b->capacity = bytes;
    return 0;
}

/* Every value of dbi gets its trailer: the old value (kept whole when keep_value, dropped for
 * the index, whose values were empty) followed by the CRC of the key and that value. The key is
 * copied first: a value of another size is a delete and an insert, which moves the page's bytes
 * the cursor's key points into. Returns an LMDB code. */
static int upgrade_database(MDB_txn *txn, MDB_dbi dbi, bool keep_value, upgrade_buffer_t *b)
{
    MDB_cursor *cursor;
    int mrc = mdb_cursor_open(txn, dbi, &cursor);
    if (mrc != 0)
        return mrc;
    uint8_t key_copy[512]; /* LMDB's largest key (MDB_MAXKEYSIZE) is 511 bytes */
    MDB_val key, value;
    for (mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
        assert(key.mv_size <= sizeof(key_copy));
        size_t kept = keep_value ? value.mv_size : 0;
        if ((mrc = buffer_reserve(b, kept + CHECKPOINT_CRC_BYTES)) != 0)
            break;
        memcpy(key_copy, key.mv_data, key.mv_size);
        if (kept > 0)
            memcpy(b->bytes, value.mv_data, kept);
        checkpoint_crc_seal(key_copy, key.mv_size, b->bytes, kept + CHECKPOINT_CRC_BYTES);
        MDB_val copied = {key.mv_size, key_copy}, sealed = {kept + CHECKPOINT_CRC_BYTES, b->bytes};
        if ((mrc = mdb_cursor_put(cursor, &copied, &sealed, MDB_CURRENT)) != 0)
            break;
    }
    mdb_cursor_close(cursor);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* checkpoint_lsn (a bare u64, when present) with its trailer, the record count, the version. */
static int upgrade_meta(checkpoint_store_t *store, MDB_txn *txn)
{
    MDB_val key = {strlen(META_KEY_LSN), META_KEY_LSN}, value;
    int mrc = mdb_get(txn, store->meta, &key, &value);
    if (mrc == 0 && value.mv_size == 8) {
        uint8_t lsn[8];
        memcpy(lsn, value.mv_data, sizeof(lsn));
        mrc = checkpoint_meta_put(txn, store->meta, META_KEY_LSN, lsn, sizeof(lsn));
    } else if (mrc == 0) {
        mrc = CHECKPOINT_MDB_BAD_CHECKSUM; /* not a u64: refused as before the upgrade */
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return mrc;
    MDB_stat stat;
    if ((mrc = mdb_stat(txn, store->state, &stat)) != 0)
        return mrc;
    uint8_t records[8], version[4];
    allot_u64_store_le(records, stat.ms_entries);
    allot_u32_store_le(version, CHECKPOINT_FORMAT_VERSION);
    mrc = checkpoint_meta_put(txn, store->meta, META_KEY_RECORDS, records, sizeof(records));
    if (mrc == 0)
        mrc = checkpoint_meta_put(txn, store->meta, META_KEY_VERSION, version, sizeof(version));
    return mrc;
}

int checkpoint_upgrade(checkpoint_store_t *store, MDB_txn *txn)
{
    upgrade_buffer_t buffer = {0};
    int mrc = upgrade_database(txn, store->state, true, &buffer);
    if (mrc == 0)
        mrc = upgrade_database(txn, store->index, false, &buffer);
    free(buffer.bytes);
    if (mrc == 0)
        mrc = upgrade_meta(store, txn);
    return mrc;
}
