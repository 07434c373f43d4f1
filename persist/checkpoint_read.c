/* checkpoint_read.c - reading a checkpoint store's values without writing: LMDB errors as ALLOT_E*
 * codes, the CRC32C trailers checked, meta values, and the checkpoint LSN of a store opened
 * read-only (what allot-wal links; the layout is at the top of checkpoint.c). */
#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive.h"
#include "checkpoint_private.h"
#include "core/byte_order.h"
#include "core/errors.h"
#include "crc32c.h"

int checkpoint_lmdb_error(int mdb_rc, const char *what, const char *path, char *message,
                          size_t message_bytes)
{
    if (mdb_rc == ARCHIVE_MDB_BAD_ORDER) {
        snprintf(message, message_bytes, "checkpoint: %s %s: an order record does not decode", what,
                 path);
        return ALLOT_ECORRUPT;
    }
    if (mdb_rc == CHECKPOINT_MDB_BAD_CHECKSUM) {
        snprintf(message, message_bytes,
                 "checkpoint: %s %s: a stored value fails its checksum (the file is damaged)", what,
                 path);
        return ALLOT_ECORRUPT;
    }
    if (message_bytes > 0)
        snprintf(message, message_bytes, "checkpoint: %s %s: %s", what, path, mdb_strerror(mdb_rc));
    if (mdb_rc == ENOMEM)
        return ALLOT_ENOMEM;
    if (mdb_rc == MDB_CORRUPTED || mdb_rc == MDB_INVALID || mdb_rc == MDB_VERSION_MISMATCH ||
        mdb_rc == MDB_PAGE_NOTFOUND || mdb_rc == MDB_INCOMPATIBLE)
        return ALLOT_ECORRUPT;
    return ALLOT_EIO;
}

/* ---- records stored without their id (format version 4) ---------------------------------- */

int checkpoint_record_payload(const MDB_val *key, const MDB_val *value, checkpoint_payload_t *buf,
                              uint8_t *type, const uint8_t **payload, size_t *payload_len)
{
    const uint8_t *k = key->mv_data, *v = value->mv_data;
    assert(key->mv_size >= 2 && value->mv_size >= CHECKPOINT_VALUE_BYTES_MIN);
    *type = v[0];
    *payload = v + 1;
    *payload_len = value->mv_size - 1 - CHECKPOINT_CRC_BYTES;
    if ((v[0] & CHECKPOINT_TYPE_ID_IN_KEY) == 0 || k[0] != CHECKPOINT_KIND_RESERVATION ||
        *payload_len < CHECKPOINT_HOLD_ID_OFFSET)
        return 0;
    size_t id_len = key->mv_size - 1, whole = *payload_len + 2 + id_len;
    if (whole > buf->capacity) {
        uint8_t *grown = realloc(buf->bytes, whole);
        if (grown == NULL)
            return ENOMEM;
        buf->bytes = grown;
        buf->capacity = whole;
    }
    memcpy(buf->bytes, v + 1, CHECKPOINT_HOLD_ID_OFFSET);
    allot_u16_store_le(buf->bytes + CHECKPOINT_HOLD_ID_OFFSET, (uint16_t)id_len);
    memcpy(buf->bytes + CHECKPOINT_HOLD_ID_OFFSET + 2, k + 1, id_len);
    memcpy(buf->bytes + CHECKPOINT_HOLD_ID_OFFSET + 2 + id_len, v + 1 + CHECKPOINT_HOLD_ID_OFFSET,
           *payload_len - CHECKPOINT_HOLD_ID_OFFSET);
    *type = (uint8_t)(v[0] & ~CHECKPOINT_TYPE_ID_IN_KEY);
    *payload = buf->bytes;
    *payload_len = whole;
    return 0;
}

void checkpoint_payload_free(checkpoint_payload_t *buf)
{
    free(buf->bytes);
    *buf = (checkpoint_payload_t){0};
}

/* ---- checksums and meta values ---------------------------------------------------------- */

uint32_t checkpoint_crc(const void *key, size_t key_len, const void *value, size_t value_len)
{
    return crc32c_extend(crc32c_extend(0, key, key_len), value, value_len);
}

bool checkpoint_crc_matches(const MDB_val *key, const MDB_val *value)
{
    if (value->mv_size < CHECKPOINT_CRC_BYTES)
        return false;
    size_t data_len = value->mv_size - CHECKPOINT_CRC_BYTES;
    const uint8_t *v = value->mv_data;
    return allot_u32_load_le(v + data_len) ==
           checkpoint_crc(key->mv_data, key->mv_size, v, data_len);
}

int checkpoint_meta_get(MDB_txn *txn, MDB_dbi meta, const char *name, void *out, size_t len)
{
    assert(len <= META_DATA_BYTES_MAX);
    MDB_val key = {strlen(name), (void *)name}, value;
    int mrc = mdb_get(txn, meta, &key, &value);
    if (mrc != 0)
        return mrc;
    if (value.mv_size != len + CHECKPOINT_CRC_BYTES || !checkpoint_crc_matches(&key, &value))
        return CHECKPOINT_MDB_BAD_CHECKSUM;
    memcpy(out, value.mv_data, len);
    return 0;
}

/* ---- the checkpoint LSN, read-only ------------------------------------------------------- */

/* checkpoint_lsn of a store of any version (versions 1 and 2 have no trailers). Returns an LMDB
 * code or CHECKPOINT_MDB_BAD_CHECKSUM. */
static int lsn_read_any_version(MDB_txn *txn, MDB_dbi meta, uint64_t *lsn)
{
    MDB_val key = {strlen(META_KEY_VERSION), META_KEY_VERSION}, value;
    int mrc = mdb_get(txn, meta, &key, &value);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return mrc;
    bool bare = mrc == 0 && value.mv_size == 4;
    uint8_t bytes[8];
    if (bare) {
        key = (MDB_val){strlen(META_KEY_LSN), META_KEY_LSN};
        mrc = mdb_get(txn, meta, &key, &value);
        if (mrc == 0 && value.mv_size != sizeof(bytes))
            mrc = CHECKPOINT_MDB_BAD_CHECKSUM;
        if (mrc == 0)
            memcpy(bytes, value.mv_data, sizeof(bytes));
    } else {
        mrc = checkpoint_meta_get(txn, meta, META_KEY_LSN, bytes, sizeof(bytes));
    }
    if (mrc == 0)
        *lsn = allot_u64_load_le(bytes);
    return mrc;
}

int checkpoint_store_read_lsn(const char *path, uint64_t *lsn, bool *exists, char *message,
                              size_t message_bytes)
{
    assert(path != NULL && lsn != NULL && exists != NULL);
    *lsn = 0;
    *exists = false;
    if (message_bytes > 0)
        message[0] = '\0';
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    *exists = true;
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    int mrc = mdb_env_create(&env);
    if (mrc != 0)
        return checkpoint_lmdb_error(mrc, "open", path, message, message_bytes);
    mdb_env_set_maxdbs(env, CHECKPOINT_DBS_MAX);
    mrc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0640);
    if (mrc == 0)
        mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (mrc == 0)
        mrc = lsn_read_any_version(txn, meta, lsn);
    int rc = 0;
    if (mrc == CHECKPOINT_MDB_BAD_CHECKSUM) {
        snprintf(message, message_bytes, "checkpoint: %s: bad checkpoint_lsn (fails its checksum)",
                 path);
        rc = ALLOT_ECORRUPT;
    } else if (mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = checkpoint_lmdb_error(mrc, "read", path, message, message_bytes);
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}
