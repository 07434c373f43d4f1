/* checkpoint_private.h - what the files of the checkpoint store share (persist/ only). */
#ifndef ALLOT_PERSIST_CHECKPOINT_PRIVATE_H
#define ALLOT_PERSIST_CHECKPOINT_PRIVATE_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "checkpoint.h"
#include "core/event.h"

/* Named LMDB databases of a store: meta, state, orders_by_customer (and room for one more). */
#define CHECKPOINT_DBS_MAX 4
/* Largest meta value (before its trailer). */
#define META_DATA_BYTES_MAX 16u
/* Format version 3: every value ends in a CRC32C trailer (layout at the top of checkpoint.c). */
#define CHECKPOINT_CRC_BYTES 4u
/* Smallest value of "state": the type byte, at least one payload byte, the trailer. */
#define CHECKPOINT_VALUE_BYTES_MIN (2u + CHECKPOINT_CRC_BYTES)
#define META_KEY_VERSION           "format_version"
#define META_KEY_LSN               "checkpoint_lsn"
#define META_KEY_RECORDS           "record_count"
/* Format version 4: a value of "state" whose type byte has this bit set holds a reservation
 * snapshot (type | bit) whose payload was stored without its id, which is its key's: the id's
 * 2-byte length and bytes, CHECKPOINT_HOLD_ID_OFFSET bytes into the payload, are left out
 * (HOLD RECORDS at the top of checkpoint.c). Event types are below it. */
#define CHECKPOINT_TYPE_ID_IN_KEY 0x80u
/* Where a reservation snapshot's payload holds its id (u16 length, then the bytes): after the
 * version byte, the status byte and ended_ms (core/reservation/reservation_codec.c). */
#define CHECKPOINT_HOLD_ID_OFFSET 10u

/* A growable buffer for the payloads of records stored without their id. */
typedef struct checkpoint_payload {
    uint8_t *bytes;
    size_t capacity;
} checkpoint_payload_t;

/* The event type and payload of a "state" record whose sizes and trailer were checked: after
 * the type byte, before the trailer; a record stored without its id gets it back from the key,
 * the payload put together in buf (freed with checkpoint_payload_free). A bit-flagged record
 * that is not a reservation's, or too short to have held an id, is handed as it is stored (its
 * type then names no snapshot, which loading refuses). 0 or ENOMEM. */
int checkpoint_record_payload(const MDB_val *key, const MDB_val *value, checkpoint_payload_t *buf,
                              uint8_t *type, const uint8_t **payload, size_t *payload_len);
void checkpoint_payload_free(checkpoint_payload_t *buf);

/* Returned for a value whose trailer does not match (no LMDB code has this value). */
#define CHECKPOINT_MDB_BAD_CHECKSUM (-30001)

struct checkpoint_store {
    MDB_env *env;
    uint32_t upgraded_from; /* the format version an open rewrote, 0 when none */
    MDB_dbi meta;
    MDB_dbi state;
    MDB_dbi index;                 /* orders_by_customer (persist/archive.h) */
    pthread_mutex_t map_lock;      /* readers' transactions vs. map resizes */
    allot_event_scratch_t scratch; /* decoding orders for the index (the writing thread) */
    uint64_t lsn;
    uint64_t map_bytes;
    bool writemap; /* MDB_WRITEMAP, the whole map reserved on disk (checkpoint.c, MEMORY) */
    /* the writer is behind (checkpoint_writer_set_behind): its writes stop stepping aside */
    atomic_bool behind;
    char path[CHECKPOINT_PATH_BYTES_MAX];
};

/* An ALLOT_E* code for an LMDB error, with "checkpoint: <what> <path>: <reason>" in message
 * (checkpoint_read.c, as the checksum helpers and checkpoint_meta_get below). */
int checkpoint_lmdb_error(int mdb_rc, const char *what, const char *path, char *message,
                          size_t message_bytes);

/* Report damage through checkpoint_set_damage_cb's callback (nothing when none is set). */
void checkpoint_damage_report(const char *path, const char *message);

/* ---- checksums (format version 3) ----------------------------------------------------------- */

/* CRC32C of the key's bytes followed by the value's first value_len bytes. */
uint32_t checkpoint_crc(const void *key, size_t key_len, const void *value, size_t value_len);
/* The value (at least CHECKPOINT_CRC_BYTES long) ends in the CRC of the key and the rest. */
bool checkpoint_crc_matches(const MDB_val *key, const MDB_val *value);
/* Write that trailer into the last CHECKPOINT_CRC_BYTES of value (len bytes in all). */
void checkpoint_crc_seal(const void *key, size_t key_len, uint8_t *value, size_t len);
/* A meta value: data (len bytes, at most 16) and its trailer. Returns an LMDB code. */
int checkpoint_meta_put(MDB_txn *txn, MDB_dbi meta, const char *name, const void *data, size_t len);
/* Read a meta value of exactly len data bytes (at most 16) into out: 0, MDB_NOTFOUND,
 * CHECKPOINT_MDB_BAD_CHECKSUM (wrong size or trailer) or another LMDB code. */
int checkpoint_meta_get(MDB_txn *txn, MDB_dbi meta, const char *name, void *out, size_t len);
/* Rewrite a format version 1 or 2 store as version 3 in txn: a trailer on every value of
 * "state", "orders_by_customer" and "meta", and the record count (checkpoint_upgrade.c). Returns
 * an LMDB code (MDB_MAP_FULL: grow the map and try again in a new transaction). */
int checkpoint_upgrade(checkpoint_store_t *store, MDB_txn *txn);

#endif
