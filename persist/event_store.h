/* event_store.h - the change stream on disk: <data-dir>/events.lmdb, events by seq, the stream's
 * bookkeeping (the last LSN whose events it holds, what retention removed). Layout: the header
 * comment of persist/event_store.c.
 *
 * Contract
 *  - One thread uses a store (the loop): writes are batched into one transaction
 *    (event_store_begin, _put..., _commit); a batch's events go in runs, many consecutive events
 *    in one LMDB value of at most a page (one B-tree put and no key of its own per event),
 *    committed without fsync (MDB_NOSYNC: a process crash loses nothing, the OS writes it out);
 *    event_store_flush forces it to disk (written out a window at a time first, so the WAL's
 *    fdatasync meanwhile waits behind one window: persist/writeback.h; EVENT_STORE_FLUSH_WALKS
 *    walks, for what the loop commits meanwhile), and the server calls it
 *    before the WAL that could regenerate those events is deleted (after each checkpoint, on
 *    the checkpoint writer thread: the one call any thread may make beside the loop's use of
 *    the store), so that events lost by a power failure are derived again by replay.
 *  - Reads (event_store_scan) run in a read-only LMDB transaction: MVCC, no lock against the
 *    writer, cost proportional to what is scanned (a B-tree seek by seq, then a walk).
 *  - last_lsn: every event of every record up to it is stored; records after it give their
 *    events again on replay (the caller skips what the store already holds).
 *  - Retention (event_store_trim): the oldest events go while older than the age bound or the
 *    stream is larger than the byte bound, a run whole (once its newest event is older, or while
 *    the stream is over the bound), at most EVENT_STORE_TRIM_STEP_MAX events per call;
 *    trimmed_seq is the highest seq ever removed (a reader whose cursor is below it missed
 *    events: EXPIRED).
 *  - Ledger: every movement of on_hand (event_store_ledger_put, in a batch like events),
 *    indexed by SKU and by SKU and location, read newest first (event_store_ledger_read: a seek
 *    and a walk over what it returns, plus the movements newer than to_ms it skips); trimmed by
 *    age with the stream (ledger_retention_ms).
 *  - Errors: 0 or ALLOT_EIO (LMDB, with a message), ALLOT_ENOMEM, ALLOT_ECORRUPT (a damaged
 *    value), ALLOT_EUNAVAILABLE (the map is full).
 */
#ifndef ALLOT_PERSIST_EVENT_STORE_H
#define ALLOT_PERSIST_EVENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

typedef struct event_store event_store_t;

int event_store_open(const char *data_dir, event_store_t **out, char *message,
                     size_t message_bytes);
void event_store_close(event_store_t *store);

uint64_t event_store_last_lsn(const event_store_t *store);
uint64_t event_store_last_seq(const event_store_t *store);  /* 0: empty */
uint64_t event_store_first_seq(const event_store_t *store); /* 0: empty */
uint64_t event_store_trimmed_seq(const event_store_t *store);
uint64_t event_store_bytes(const event_store_t *store);
uint64_t event_store_count(const event_store_t *store);

int event_store_begin(event_store_t *store);
/* Seqs must grow across puts. value: the event's bytes (net/events.c lays them out). */
int event_store_put(event_store_t *store, uint64_t seq, int64_t at_ms, const void *value,
                    size_t len);
/* Commit the batch, recording that every event up to last_lsn is stored. */
int event_store_commit(event_store_t *store, uint64_t last_lsn);
void event_store_abort(event_store_t *store);
/* Force to disk what the committed transactions wrote (fdatasync of events.lmdb). Any thread,
 * while the loop uses the store: it changes nothing in the store (not its message either).
 * 0 or an errno value. */
int event_store_flush(event_store_t *store);

/* One movement of on_hand. */
typedef struct event_ledger_entry {
    uint64_t seq;
    int64_t at_ms;
    allot_str_t sku;
    allot_str_t location;
    int64_t delta;
    int64_t on_hand; /* after the movement */
    allot_str_t reason;
    allot_str_t ref; /* len 0: none */
} event_ledger_entry_t;

int event_store_ledger_put(event_store_t *store, const event_ledger_entry_t *entry);

/* The movements of sku (at location when location.len > 0) with seq < before, at_ms within
 * from_ms..to_ms, newest first, at most limit; each_cb's entry is valid during the call.
 * *more: another one follows. */
typedef void (*event_ledger_each_cb)(void *ctx, const event_ledger_entry_t *entry);
int event_store_ledger_read(event_store_t *store, allot_str_t sku, allot_str_t location,
                            uint64_t before, int64_t from_ms, int64_t to_ms, uint32_t limit,
                            event_ledger_each_cb each_cb, void *ctx, bool *more);
uint64_t event_store_ledger_count(const event_store_t *store);

/* Remove what retention no longer keeps (see the contract); *removed: how many events and
 * movements. */
int event_store_trim(event_store_t *store, int64_t now_ms, int64_t retention_ms, uint64_t bytes_max,
                     int64_t ledger_retention_ms, uint64_t *removed);

/* Call each_cb for the events with seq > after, in seq order, until it returns nonzero or
 * scan_max were seen. *last: the seq of the last event seen (after when none). */
typedef int (*event_store_each_cb)(void *ctx, uint64_t seq, int64_t at_ms, const uint8_t *value,
                                   size_t len);
int event_store_scan(event_store_t *store, uint64_t after, uint32_t scan_max,
                     event_store_each_cb each_cb, void *ctx, uint64_t *last);

/* The human message of the last error. */
const char *event_store_message(const event_store_t *store);

#endif
