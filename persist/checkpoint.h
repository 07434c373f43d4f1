/* checkpoint.h - the LMDB checkpoint store (<data-dir>/state.lmdb) and the checkpoint writer
 * thread. The LMDB layout is described at the top of checkpoint.c.
 *
 * Contract
 *  - A checkpoint is the state as of one WAL LSN: every object (snapshot record from core:
 *    key = 1 kind byte + id bytes, value = 1 type byte + payload) plus that LSN. Recovery loads
 *    every record in key order (checkpoint_store_load) and replays the WAL after the LSN.
 *  - Batches: checkpoint_batch_t is an immutable-once-submitted buffer of (key, type, payload,
 *    deleted) entries (a hold's already without the id its key holds: its stored form, so
 *    checkpoint_batch_bytes counts what the loop copied), built on the loop thread by passing
 *    checkpoint_batch_snapshot_cb to allot_state_checkpoint_begin (core/state.h; serialized in
 *    slices, copy-on-write, so the callback also runs inside writers) or
 *    allot_state_snapshot_each_dirty, incremental, or allot_state_snapshot_each, full: the
 *    writer then drops every stored object first, except orders (kind 0x05): those not in the
 *    batch left memory, so they are kept and marked archived - see core/order.h). A failed append
 * (out of memory) marks the batch failed (checkpoint_batch_failed); such a batch must not be
 * submitted.
 *  - Store: checkpoint_store_open creates the file (and "<path>-lock") when missing, checks the
 *    format version and reads the checkpoint LSN. checkpoint_store_load and
 *    checkpoint_store_write are synchronous; one thread at a time may use a store (the server
 *    loads on the loop thread before serving, then hands the store to the writer thread, which
 *    owns it until checkpoint_writer_close). checkpoint_store_write writes the batches in order
 *    and the LSN in ONE transaction committed with LMDB's default durable sync; MDB_MAP_FULL is
 *    handled by doubling the map (up to CHECKPOINT_MAP_BYTES_MAX) and retrying the same
 *    transaction - an operating condition, never a crash. On any error nothing is committed.
 *  - Writer: checkpoint_writer_start starts one thread and one uv_async_t. The loop submits a
 *    batch with the LSN it covers (the caller must only submit once the WAL is durable up to
 *    that LSN). done_cb(writer, status, lsn, stats, message, ctx) runs on the loop thread when
 *    the transaction is committed (status 0) or failed. A failed checkpoint keeps its batches:
 *    the next submit writes them first, then the new batch, in one transaction (so no dirty
 *    entry is ever lost); checkpoint_writer_submit(writer, NULL, lsn) retries them alone. To
 *    bound memory during a long outage the caller may drop them and submit a full batch.
 *    Only one checkpoint is in flight: submit returns ALLOT_EOVERLOADED while busy.
 *    After a commit the writer thread itself frees the batches it wrote and runs the
 *    committed_cb set with checkpoint_writer_set_committed_cb (e.g. a sync the loop must not
 *    wait for), whose result done_cb gets as stats->committed_status: done_cb does no work
 *    proportional to the checkpoint on the loop. The thread runs CHECKPOINT_WRITER_NICE below
 *    the process's priority, so that where CPUs are short the loop is scheduled first, and
 *    yields the CPU every CHECKPOINT_WRITER_YIELD_ENTRIES entries it stores and every
 *    CHECKPOINT_WRITER_YIELD_REFS references it merges while sorting (persist/thread_priority.h:
 *    a nice level alone lets it finish slices of several ms while the woken loop waits), unless
 *    the loop says it is behind (checkpoint_writer_set_behind).
 *  - Close: checkpoint_writer_close waits for the checkpoint in flight (its done_cb still runs),
 *    joins the thread, uv_close()s the async handle and frees the writer and any kept batches
 *    in its close callback, then closed_cb(ctx) (may be NULL). The store is not closed.
 *  - Checksums: every stored value carries a CRC32C of its key and value (format version 3,
 *    layout in checkpoint.c); loading refuses a record that fails it, naming its number, kind
 *    and id, and a store whose walk reads fewer or more records than it says it holds; a
 *    checkpoint that would rewrite a damaged stored value fails instead. Version 1 and 2 stores
 *    (no checksums) are rewritten as version 3 by checkpoint_store_open.
 *  - Errors: 0 or negative ALLOT_E*: INVALID_ARGUMENT, NOMEM, IO (LMDB or a system call failed;
 *    the message says which), CORRUPT (unknown format version, a malformed stored record, a
 *    checksum that does not match, a record count that does not), OVERLOADED (writer busy).
 */
#ifndef ALLOT_PERSIST_CHECKPOINT_H
#define ALLOT_PERSIST_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/limits.h"

/* 2 added the customer index of orders (persist/archive.h), 3 a CRC32C trailer on every value
 * and the record count, 4 reservation records stored without the id their key holds; version 1
 * and 2 stores are rewritten as version 4 when opened, a version 3 store only gets the new
 * version (its records are valid version 4 records; layout and upgrade at the top of
 * checkpoint.c). */
#define CHECKPOINT_FORMAT_VERSION    4u
#define CHECKPOINT_FORMAT_VERSION_V3 3u
#define CHECKPOINT_FORMAT_VERSION_V2 2u
#define CHECKPOINT_FORMAT_VERSION_V1 1u
#define CHECKPOINT_FILE_NAME         "state.lmdb"
/* Limits (map size, key size, kept batches, paths): core/limits.h. */
#define CHECKPOINT_MESSAGE_BYTES_MAX 512u

/* Kinds (first key byte); they equal core's snapshot kinds. 0x05 and above: future objects. */
#define CHECKPOINT_KIND_LOCATION    0x01
#define CHECKPOINT_KIND_SKU         0x02
#define CHECKPOINT_KIND_RESERVATION 0x03
#define CHECKPOINT_KIND_ADJUST_KEY  0x04
#define CHECKPOINT_KIND_ORDER       0x05 /* archived ones are kept by full checkpoints */
#define CHECKPOINT_KIND_SETTINGS    0x07 /* SKU settings (sku.put) */
#define CHECKPOINT_KIND_TICKET      0x08 /* flash-sale queue tickets */
#define CHECKPOINT_KIND_TRANSIT     0x0a /* transit bands of a method (transit.set) */

/* ---- batches (loop thread) ------------------------------------------------------------- */
typedef struct checkpoint_batch checkpoint_batch_t;

/* NULL when out of memory. full: the batch holds every object (the writer drops the rest). */
checkpoint_batch_t *checkpoint_batch_create(bool full);
void checkpoint_batch_free(checkpoint_batch_t *batch);
/* An allot_snapshot_cb (core/state.h): ctx is the batch. */
void checkpoint_batch_snapshot_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                                  const uint8_t *payload, size_t payload_len, bool deleted);
/* 0 or ALLOT_ENOMEM / ALLOT_EINVALID_ARGUMENT (key too long or empty). */
int checkpoint_batch_add(checkpoint_batch_t *batch, const uint8_t *key, size_t key_len,
                         uint8_t type, const uint8_t *payload, size_t payload_len, bool deleted);
bool checkpoint_batch_failed(const checkpoint_batch_t *batch);
size_t checkpoint_batch_entries(const checkpoint_batch_t *batch);
size_t checkpoint_batch_bytes(const checkpoint_batch_t *batch);

/* ---- the store ------------------------------------------------------------------------- */
typedef struct checkpoint_store checkpoint_store_t;

typedef struct checkpoint_write_stats {
    uint64_t puts;    /* records written */
    uint64_t deletes; /* records deleted (present or not) */
    uint64_t map_grows;
    uint64_t map_bytes;   /* map size after the write */
    int committed_status; /* what the writer's committed_cb returned (0 without one) */
} checkpoint_write_stats_t;

/* LMDB checks the structure of the pages it reads only with internal assertions, and a failed
 * one aborts the process; a damaged page can fail one. Before that abort, damage_cb(path,
 * message) runs on the thread that met it (process-wide, for every store opened after the call;
 * NULL: none), e.g. to report the damage and exit with a clear message instead. */
void checkpoint_set_damage_cb(void (*damage_cb)(const char *path, const char *message));

/* map_bytes: 0 = CHECKPOINT_MAP_BYTES_DEFAULT (an existing larger file keeps its size). */
int checkpoint_store_open(const char *path, uint64_t map_bytes, checkpoint_store_t **out,
                          char *message, size_t message_bytes);
void checkpoint_store_close(checkpoint_store_t *store);
/* Read-only (tools, e.g. allot-wal): the checkpoint LSN stored in path; 0 and *exists false
 * when there is no store. Creates nothing. */
int checkpoint_store_read_lsn(const char *path, uint64_t *lsn, bool *exists, char *message,
                              size_t message_bytes);
/* The LSN of the last committed checkpoint (0: none). */
uint64_t checkpoint_store_lsn(const checkpoint_store_t *store);
/* The format version checkpoint_store_open rewrote as the current one (1 or 2), 0 when the
 * store was current or new. */
uint32_t checkpoint_store_upgraded_from(const checkpoint_store_t *store);
uint64_t checkpoint_store_map_bytes(const checkpoint_store_t *store);

/* Concurrent readers (persist/archive.c, loop thread) while the writer thread owns the store:
 * the env is opened with MDB_NOTLS, so a reader may keep one read transaction and reset/renew
 * it. A reader holds the map lock while its transaction is active (between begin/renew and
 * reset); the writer takes it to resize the map (LMDB requires no active transaction then). */
struct MDB_env;
struct MDB_env *checkpoint_store_env(checkpoint_store_t *store);
unsigned int checkpoint_store_state_dbi(const checkpoint_store_t *store);
unsigned int checkpoint_store_index_dbi(const checkpoint_store_t *store);
void checkpoint_store_map_lock(checkpoint_store_t *store);
void checkpoint_store_map_unlock(checkpoint_store_t *store);

typedef int (*checkpoint_record_cb)(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                                    const uint8_t *payload, size_t payload_len);
/* Every stored record in key order; a nonzero return of record_cb stops and is returned.
 * *records_out (may be NULL) gets the count. The kernel is asked to read the file ahead
 * (posix_fadvise WILLNEED), as every page of it will be read. */
int checkpoint_store_load(checkpoint_store_t *store, checkpoint_record_cb record_cb, void *ctx,
                          uint64_t *records_out, char *message, size_t message_bytes);

/* A load on two threads (checkpoint_store_load_split): the records of one kind (SKUs: nearly
 * all of a large checkpoint) are built from both ends at once. When the load reaches that kind,
 * a second thread starts at its last key and works downwards while the loading thread works
 * upwards from its first; they meet wherever their speeds make them meet. Building a record is
 * build_cb(build ctx, ..., item) filling an item of item_bytes (builder_ctx on the second thread,
 * loader_ctx on the loading thread). install_cb(ctx, item) runs on the loading thread, in key
 * order, for every record of the kind (prefetch_cb, if not NULL, for an item a dozen installs
 * ahead of its install): the loading thread installs its own records as it goes, then the second
 * thread's; then the load goes on with the later kinds. build_cb runs next to install_cb calls
 * of the same kind only: it may read what records of earlier kinds set up, never what
 * install_cb changes. install_cb releases its item whatever it returns; discard_cb(ctx, item)
 * releases an item that will not be installed (on either thread: it must touch nothing else).
 * A bad record (malformed, or refused by build_cb or install_cb) stops the load with every
 * record before it installed and nothing after it, and is reported as record_cb's would be. */
typedef int (*checkpoint_build_cb)(void *build_ctx, const uint8_t *key, size_t key_len,
                                   uint8_t type, const uint8_t *payload, size_t payload_len,
                                   void *item);
typedef int (*checkpoint_install_cb)(void *ctx, void *item);
typedef void (*checkpoint_item_cb)(void *ctx, void *item);
typedef struct checkpoint_split {
    uint8_t kind;
    size_t item_bytes;
    checkpoint_build_cb build_cb;
    void *builder_ctx; /* build_cb's context on the second thread */
    void *loader_ctx;  /* build_cb's context on the loading thread */
    checkpoint_item_cb prefetch_cb;
    checkpoint_install_cb install_cb;
    checkpoint_item_cb discard_cb;
} checkpoint_split_t;
typedef struct checkpoint_load_stats {
    uint64_t records;       /* loaded (the count checkpoint_store_load gives) */
    uint64_t second_thread; /* of them, built by the second thread */
} checkpoint_load_stats_t;
/* split NULL: checkpoint_store_load. stats (may be NULL) is filled on errors too. */
int checkpoint_store_load_split(checkpoint_store_t *store, checkpoint_record_cb record_cb,
                                const checkpoint_split_t *split, void *ctx,
                                checkpoint_load_stats_t *stats, char *message,
                                size_t message_bytes);
/* Load the store into an empty state (start-up): what applying every record in key order with
 * allot_event_apply_encoded gives, faster: SKU snapshots are built on two threads
 * (checkpoint_store_load_split, allot_sku_snapshot_build) and archived orders are not decoded
 * (they stay in the store; applying one keeps nothing in memory). A record whose type is not
 * its kind's snapshot type (allot_snapshot_type_of_kind) is refused: ALLOT_ECORRUPT. Errors
 * as checkpoint_store_load's. */
struct allot_state;
int checkpoint_store_load_state(checkpoint_store_t *store, struct allot_state *state,
                                checkpoint_load_stats_t *stats, char *message,
                                size_t message_bytes);
/* Check the last committed checkpoint without loading it: every record's size and checksum,
 * the record count, the index entries' checksums and the meta values, in one read transaction.
 * May run on the loop thread beside the writer thread (it takes the map lock, as archive
 * readers do). O(store size): for diagnostics (server.verify). 0 (*records: the records of
 * "state"), ALLOT_ECORRUPT with the first problem in message, named as loading would name it,
 * or ALLOT_EIO. */
int checkpoint_store_verify(checkpoint_store_t *store, uint64_t *records, char *message,
                            size_t message_bytes);
/* Write a compact copy of the last committed checkpoint (a whole LMDB file, what
 * CHECKPOINT_FILE_NAME holds) to fd, in one read transaction. Any thread, beside the writer thread
 * (it takes the map lock). 0 or ALLOT_EIO with message. */
int checkpoint_store_copy(checkpoint_store_t *store, int fd, char *message, size_t message_bytes);
/* One transaction: the batches in order, then the LSN. lsn must be >= the stored LSN. */
int checkpoint_store_write(checkpoint_store_t *store, checkpoint_batch_t *const *batches,
                           size_t batch_count, uint64_t lsn, checkpoint_write_stats_t *stats,
                           char *message, size_t message_bytes);

/* ---- the writer thread (loop thread API) ----------------------------------------------- */
typedef struct checkpoint_writer checkpoint_writer_t;

typedef void (*checkpoint_done_cb)(checkpoint_writer_t *writer, int status, uint64_t lsn,
                                   const checkpoint_write_stats_t *stats, const char *message,
                                   void *ctx);

int checkpoint_writer_start(uv_loop_t *loop, checkpoint_store_t *store, checkpoint_writer_t **out,
                            checkpoint_done_cb done_cb, void *ctx);
/* A batch (checkpoint_batch_create) whose chunks come from the writer's spares, the chunks of
 * its batches freed before, and go back to them when it is freed: where checkpoints follow each
 * other, the loop copies into pages already faulted in instead of fresh ones (a fresh chunk of
 * 2 MiB or more is whole huge pages, core/pages.h: one fault per 2 MiB). Memory bound: after a
 * commit the spares keep at most the chunk bytes of the batches it wrote, and never more than
 * CHECKPOINT_BATCH_SPARE_BYTES_MAX. A batch that takes the last spare allocates its next chunk
 * (when 2 MiB or more) into the spares right away, so it can be faulted in off the loop
 * (persist/pages_warm.h) before the loop copies into it. checkpoint_writer_spares_fit gives back
 * what no checkpoint in sight needs, checkpoint_writer_close frees them. Such a batch must be
 * submitted or freed before the writer is closed. NULL when out of memory. */
checkpoint_batch_t *checkpoint_writer_batch_create(checkpoint_writer_t *writer, bool full);
/* Loop thread, idle: keep at most the chunks that `entries` entries the size of the last
 * commit's would fill (e.g. the objects dirty once writes have stopped; 0 frees every kept
 * chunk), so memory is kept for a checkpoint in sight only. */
void checkpoint_writer_spares_fit(checkpoint_writer_t *writer, size_t entries);
/* Loop thread, while objects get dirty: make the spares hold what `entries` entries the size of
 * the last commit's (CHECKPOINT_BATCH_ENTRY_BYTES_GUESS before any commit) will fill, within the
 * bound, adding at most CHECKPOINT_SPARES_RESERVE_STEP_CHUNKS blocks of the largest chunk size
 * per call. The blocks are left untouched (core/pages.h reports them fresh), so that the page
 * warmer faults them in before the checkpoint copies into them; a commit's trim keeps what the
 * last call asked for. Best effort: without memory it stops. */
void checkpoint_writer_spares_reserve(checkpoint_writer_t *writer, size_t entries);
/* Loop thread: the writer is behind (the next checkpoint is due while one is still in flight):
 * it stops stepping aside (CHECKPOINT_WRITER_YIELD_ENTRIES) until told it is not, so that a loop
 * kept busy cannot make checkpoints later and larger one after the other. */
void checkpoint_writer_set_behind(checkpoint_writer_t *writer, bool behind);
/* The chunk bytes (whole blocks, headers included) the writer keeps for its next batches (any
 * thread). */
size_t checkpoint_writer_spare_bytes(checkpoint_writer_t *writer);
typedef struct checkpoint_spare_stats {
    size_t bytes;             /* checkpoint_writer_spare_bytes */
    uint64_t chunks_reused;   /* chunks the writer's batches took from the spares, ever */
    uint64_t chunks_fresh;    /* chunks allocated because no spare was left (or ahead), ever */
    uint64_t chunks_reserved; /* of chunks_fresh, reserved by checkpoint_writer_spares_reserve */
} checkpoint_spare_stats_t;
void checkpoint_writer_spare_stats(checkpoint_writer_t *writer, checkpoint_spare_stats_t *out);
/* Takes ownership of batch (may be NULL: retry the kept batches / write the LSN alone). On
 * error the batch is still owned by the caller. */
int checkpoint_writer_submit(checkpoint_writer_t *writer, checkpoint_batch_t *batch, uint64_t lsn);
/* Loop thread, while no checkpoint is in flight: committed_cb(ctx) runs on the writer thread after
 * each commit, before done_cb is scheduled; it returns 0 or an errno value. NULL: none. */
void checkpoint_writer_set_committed_cb(checkpoint_writer_t *writer, int (*committed_cb)(void *ctx),
                                        void *ctx);
bool checkpoint_writer_busy(const checkpoint_writer_t *writer);
/* Batches of failed checkpoints kept for the next submit (0 while one is in flight), and
 * their bytes. */
size_t checkpoint_writer_kept(const checkpoint_writer_t *writer);
size_t checkpoint_writer_kept_bytes(const checkpoint_writer_t *writer);
/* Free the kept batches (idle only): the caller's next batch must then be a full one. */
void checkpoint_writer_drop_kept(checkpoint_writer_t *writer);
void checkpoint_writer_close(checkpoint_writer_t *writer, void (*closed_cb)(void *ctx));

#endif
