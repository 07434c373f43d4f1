/* archive.h - orders that left memory, read back from the LMDB checkpoint store: the archive hook
 * of core/order.h (get by id, list by customer) and the customer index that the checkpoint
 * writer maintains for it.
 *
 * Contract
 *  - Reader (loop thread): archive_open(store) gives an archive over <data-dir>/state.lmdb;
 *    archive_hook() fills the allot_order_archive_t that core takes (allot_state_set_archive).
 *    Every call is one short LMDB read transaction (begun once, then mdb_txn_reset/renew), so
 *    reads see the last committed checkpoint and may run while the checkpoint thread writes
 *    (LMDB: one writer and any number of readers; the env is opened with MDB_NOTLS). The store
 *    must outlive the archive; close the archive first (and unhook it from core).
 *  - archive_get(id): the stored ORDER_SNAPSHOT payload (no type byte) of order `id`, archived
 *    or not, copied into the archive's buffer (valid until the next call into the archive).
 *    0, ALLOT_ENOT_FOUND, ALLOT_EIO (LMDB failed), ALLOT_ECORRUPT (the record is not an order
 *    snapshot, or fails its checksum), ALLOT_ENOMEM.
 *  - archive_list(customer, before_ms, before_id, max, each_cb): the stored orders of customer
 *    newest first by (created_ms desc, id desc; ids bytewise, shorter first on a tied prefix),
 *    strictly after the cursor (before_id.len == 0: from the newest); each_cb(each_ctx, payload,
 *    len) at most max times (payload valid during the call only); stops when it returns
 *    nonzero. Cost: one index seek plus one index step and one record lookup per order - no
 *    scan. 0, ALLOT_EIO, ALLOT_ECORRUPT (an index entry without its order record, or one of them
 *    fails its checksum).
 *  - Customer index (named LMDB database ARCHIVE_INDEX_DB_NAME, since format version 2):
 *      key   u8 customer length C | customer (C bytes) | u64 big-endian (created_ms XOR 2^63) |
 *            order id bytes;  value: the CRC32C trailer of the key (4 bytes; empty in version 2).
 *    One entry per 0x05 order record whose order has a customer. Keys of one customer sort by
 *    (created_ms, id) ascending in LMDB's default order, so a cursor walks them in time order.
 *    The writer side below keeps it in the same transaction as the 0x05 records (customer and
 *    created_ms of an order never change, so a put of an existing order adds nothing new).
 */
#ifndef ALLOT_PERSIST_ARCHIVE_H
#define ALLOT_PERSIST_ARCHIVE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/event.h"
#include "core/order.h"
#include "persist/checkpoint.h"

#define ARCHIVE_INDEX_DB_NAME "orders_by_customer"
/* u8 length + customer + 8 bytes time + id (ids are at most ALLOT_ID_BYTES_MAX bytes). */
#define ARCHIVE_INDEX_KEY_BYTES_MAX (1u + ALLOT_ID_BYTES_MAX + 8u + ALLOT_ID_BYTES_MAX + 1u)

/* ---- reader (loop thread) ------------------------------------------------------------------ */
typedef struct archive archive_t;

/* 0 or ALLOT_ENOMEM / ALLOT_EINVALID_ARGUMENT (store NULL). */
int archive_open(checkpoint_store_t *store, archive_t **out);
void archive_close(archive_t *archive); /* NULL is fine */
/* The hook for allot_state_set_archive (ctx = archive). */
void archive_hook(archive_t *archive, allot_order_archive_t *hook);

int archive_get(archive_t *archive, allot_str_t id, const uint8_t **payload, size_t *len);
int archive_list(archive_t *archive, allot_str_t customer, int64_t before_created_ms,
                 allot_str_t before_id, uint32_t max, allot_order_archive_each_cb each_cb,
                 void *each_ctx);

/* ---- writer side (persist/checkpoint.c, inside its write transaction) ---------------------- */

/* Index key of the ORDER_SNAPSHOT payload (no type byte) into key (ARCHIVE_INDEX_KEY_BYTES_MAX
 * bytes). 1 and *key_len set; 0 when the order has no customer (no entry); ALLOT_ECORRUPT when
 * the payload does not decode; ALLOT_ENOMEM. scratch is the caller's (core/event.h). */
int archive_index_key(const uint8_t *payload, size_t len, allot_event_scratch_t *scratch,
                      uint8_t *key, size_t *key_len);

/* The 0x05 record (type + payload) was put (put true) or deleted: add or remove its index
 * entry in txn. Returns an LMDB code (0 on success; ENOMEM), or ARCHIVE_MDB_BAD_ORDER when the
 * record is not a decodable order snapshot (no LMDB code has this value). */
#define ARCHIVE_MDB_BAD_ORDER (-30000)
int archive_index_update(MDB_txn *txn, MDB_dbi index, uint8_t type, const uint8_t *payload,
                         size_t payload_len, bool put, allot_event_scratch_t *scratch);

#endif
