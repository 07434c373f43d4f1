/* test_persist_store_fixture.h - rewrite a current (format version 3) state.lmdb the way an older
 * allotd wrote it, and damage records in place: for the upgrade and checksum tests. Raw LMDB
 * writes, as a damaged disk or an older binary would leave the file. */
#ifndef ALLOT_TEST_PERSIST_STORE_FIXTURE_H
#define ALLOT_TEST_PERSIST_STORE_FIXTURE_H

#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "persist/archive.h"
#include "persist/checkpoint.h"

#define SFX_TRAILER_BYTES 4u

/* Every value of dbi without its last 4 bytes (keep 0: empty values). */
static inline void sfx_values_strip(MDB_txn *txn, MDB_dbi dbi, bool keep)
{
    MDB_cursor *cursor;
    cr_assert_eq(mdb_cursor_open(txn, dbi, &cursor), 0);
    MDB_val key, value;
    uint8_t key_copy[512];
    for (int mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
        cr_assert_geq(value.mv_size, SFX_TRAILER_BYTES);
        size_t len = keep ? value.mv_size - SFX_TRAILER_BYTES : 0;
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, value.mv_data, len);
        memcpy(key_copy, key.mv_data, key.mv_size);
        MDB_val k = {key.mv_size, key_copy}, v = {len, copy};
        cr_assert_eq(mdb_cursor_put(cursor, &k, &v, MDB_CURRENT), 0);
        free(copy);
    }
    mdb_cursor_close(cursor);
}

/* Turn the store at env (a version 3 store, no transaction open) into a version 1 or 2 one. */
static inline void sfx_store_rewrite_as_version(MDB_env *env, uint32_t version)
{
    cr_assert(version == 1 || version == 2);
    MDB_txn *txn;
    MDB_dbi meta, state, index;
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    cr_assert_eq(mdb_dbi_open(txn, "state", 0, &state), 0);
    cr_assert_eq(mdb_dbi_open(txn, ARCHIVE_INDEX_DB_NAME, 0, &index), 0);
    sfx_values_strip(txn, state, true);
    if (version == 1)
        cr_assert_eq(mdb_drop(txn, index, 0), 0); /* emptied: version 1 had no index */
    else
        sfx_values_strip(txn, index, false);
    MDB_val key = {14, "checkpoint_lsn"}, value;
    if (mdb_get(txn, meta, &key, &value) == 0) {
        uint8_t lsn[8];
        memcpy(lsn, value.mv_data, sizeof(lsn));
        MDB_val bare = {sizeof(lsn), lsn};
        cr_assert_eq(mdb_put(txn, meta, &key, &bare, 0), 0);
    }
    key = (MDB_val){12, "record_count"};
    cr_assert_eq(mdb_del(txn, meta, &key, NULL), 0);
    uint8_t v[4] = {(uint8_t)version, 0, 0, 0};
    key = (MDB_val){14, "format_version"};
    value = (MDB_val){sizeof(v), v};
    cr_assert_eq(mdb_put(txn, meta, &key, &value, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
}

/* Open path (no store open on it) for raw writes; end with sfx_raw_end. */
static inline MDB_txn *sfx_raw_begin(const char *path, MDB_env **env, MDB_dbi *state)
{
    MDB_txn *txn;
    cr_assert_eq(mdb_env_create(env), 0);
    mdb_env_set_maxdbs(*env, 4);
    cr_assert_eq(mdb_env_open(*env, path, MDB_NOSUBDIR, 0640), 0);
    cr_assert_eq(mdb_txn_begin(*env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "state", 0, state), 0);
    return txn;
}

static inline void sfx_raw_end(MDB_env *env, MDB_txn *txn)
{
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Flip one bit of the value of `key` in place (bit counts from the value's first byte; or one of
 * its trailer), or cut the value to `cut_to` bytes (cut_to > 0), or flip a bit of the key itself
 * (key_bit >= 0: the record moves to the damaged key). LMDB itself stays consistent: only the
 * record changes, as when a bit rots inside a page. */
typedef struct sfx_damage {
    long value_bit;  /* -1: none */
    long key_bit;    /* -1: none */
    size_t cut_to;   /* 0: none */
    bool in_trailer; /* flip the lowest bit of the value's last byte */
} sfx_damage_t;

static inline void sfx_record_damage(const char *path, const uint8_t *key_bytes, size_t key_len,
                                     sfx_damage_t damage)
{
    MDB_env *env;
    MDB_dbi state;
    MDB_txn *txn = sfx_raw_begin(path, &env, &state);
    MDB_val key = {key_len, (void *)key_bytes}, value;
    cr_assert_eq(mdb_get(txn, state, &key, &value), 0, "no record to damage");
    uint8_t *copy = malloc(value.mv_size);
    memcpy(copy, value.mv_data, value.mv_size);
    size_t len = value.mv_size;
    if (damage.value_bit >= 0) {
        cr_assert_lt((size_t)damage.value_bit / 8, len);
        copy[damage.value_bit / 8] ^= (uint8_t)(1u << (damage.value_bit % 8));
    }
    if (damage.in_trailer)
        copy[len - 1] ^= 1u;
    if (damage.cut_to > 0)
        len = damage.cut_to;
    uint8_t moved[512];
    memcpy(moved, key_bytes, key_len);
    if (damage.key_bit >= 0) {
        cr_assert_lt((size_t)damage.key_bit / 8, key_len);
        moved[damage.key_bit / 8] ^= (uint8_t)(1u << (damage.key_bit % 8));
        cr_assert_eq(mdb_del(txn, state, &key, NULL), 0);
    }
    MDB_val k = {key_len, moved}, v = {len, copy};
    cr_assert_eq(mdb_put(txn, state, &k, &v, 0), 0);
    free(copy);
    sfx_raw_end(env, txn);
}

#endif
