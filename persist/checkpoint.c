/* checkpoint.c - LMDB checkpoint store: layout, incremental writes, loading, writer thread.
 *
 * LMDB LAYOUT (format version 4). One LMDB environment opened with MDB_NOSUBDIR | MDB_NOTLS
 * (the loop thread reads archived orders while the checkpoint thread writes) | MDB_WRITEMAP
 * (below): the data file "<data-dir>/state.lmdb" and its lock file "<data-dir>/state.lmdb-lock"
 * (the lock file holds no data and may be deleted while no process has the store open). Integers
 * little-endian.
 *
 * MEMORY. Without MDB_WRITEMAP, LMDB copies every page a write transaction dirties into a
 * malloc'd buffer and, when the transaction ends, keeps those buffers on a free list of its own
 * until the environment closes: one checkpoint of 1M new holds pinned about 150 bytes a hold
 * for the life of the process. With MDB_WRITEMAP the pages are written in the shared file map
 * (page cache, which the kernel may reclaim once written) and nothing is malloc'd per page;
 * after each commit the map's pages are unmapped from the process (madvise MADV_DONTNEED: they
 * stay in the page cache, as pages written with pwrite do).
 * LMDB then sizes the file to the map (the file is as large as the map, 256 MiB at first, and
 * doubles with it), and every byte of the map is allocated on disk (fallocate) before a page can
 * be written there, so a full disk fails a map growth (the checkpoint fails and is kept, as any
 * failed write) instead of killing the process on a write into a hole. When the allocation
 * fails at open (a full disk, a file system without fallocate) the store is opened without
 * MDB_WRITEMAP. Durability is the same either way: a commit syncs the data pages (msync
 * MS_SYNC of the map, which is fdatasync of the file, instead of fdatasync after pwrite), then
 * writes the meta page and syncs it; MDB_NOSYNC, MDB_NOMETASYNC and MDB_MAPASYNC are never used.
 * With MDB_WRITEMAP the commit's msync writes the transaction's data pages out a window at a
 * time before the system call (persist/writeback.h, THE PACED MAP: at most
 * PERSIST_WRITEBACK_WINDOW_BYTES of them in the disk's queue at once, so the WAL's fdatasync
 * meanwhile never waits behind all of them). Not before the commit: LMDB's commit clears a flag
 * in every dirty page's header, which would dirty each page written out earlier again (each
 * page written twice, the second time all at once). LMDB's order (data pages synced, then the
 * meta page) is kept.
 * LMDB forbids processes with and without MDB_WRITEMAP writing one environment at the same
 * time: only allotd (or allot-datagen) writes a store, one at a time (the data directory's
 * lock), and whatever reads it beside them (allot-wal) opens it read-only.
 *
 * CHECKSUMS. LMDB checks nothing in its pages, so every value this store writes, in every named
 * database, ends in a 4-byte TRAILER: the CRC32C (persist/crc32c.h) of the record's key bytes
 * followed by the value's bytes before the trailer. A flipped bit anywhere in a key or a value,
 * or a value cut short, no longer matches its trailer.
 *
 * Named database "meta" (keys are ASCII without a terminating NUL; values: data + trailer):
 *     "format_version"  4 + 4 bytes  u32, CHECKPOINT_FORMAT_VERSION (4). Written when the store
 *                                is created. Older stores hold the u32 alone (4 bytes, no
 *                                trailer) and are rewritten when opened (below). Any other
 *                                version is refused (CORRUPT).
 *     "checkpoint_lsn"  8 + 4 bytes  u64, the WAL LSN the stored state covers: every event with
 *                                LSN <= checkpoint_lsn is reflected, none after it. Absent
 *                                (= 0) until the first checkpoint commits.
 *     "record_count"    8 + 4 bytes  u64, the number of records in "state", written by every
 *                                transaction that changes it. Loading counts the records it
 *                                reads against it: a damaged page that hides records (LMDB may
 *                                walk past a page of garbage without an error) is refused.
 *
 * Named database "state" (default LMDB key order: bytewise, shorter prefix first):
 *     key    1 byte kind + the object's id bytes (1..ALLOT_ID_BYTES_MAX), no terminator:
 *              0x01 location     id = location id
 *              0x02 SKU          id = SKU id; the value holds all of the SKU's positions
 *              0x03 reservation  id = reservation id (live holds and ended ones kept for
 *                                     idempotency)
 *              0x04 adjust key   id = the stock.adjust idempotency key
 *              0x05 order        id = order id; live orders and orders evicted from memory
 *                                (payload byte 1 = snapshot flags, bit 0 archived; core/order.h)
 *              0x06 consumer     id = the consumer's name (events.ack: its cursor)
 *              0x07 SKU settings id = SKU id (sku.put: low stock, limit, queue and its
 *                                     admission accounting)
 *              0x08 queue ticket id = the ticket (16 hex digits of its number, so key order is
 *                                     join order)
 *              0x09 supply       id = supply id (supply.put: open, received and cancelled
 *                                     supplies; core/supply.h)
 *              0x0a transit      id = the method ("ship"): its transit bands (transit.set)
 *              0x0b..0xff        reserved (later objects); kind 0x00 is invalid
 *     value  1 byte event type (core/event.h snapshot types: 16 location, 17 SKU,
 *            18 reservation, 19 adjust key, 20 supply, 21 transit, 33 consumer, 48 SKU settings,
 *            49 queue ticket;
 *            64.. orders) +
 *            the snapshot event payload exactly as core encodes it (starts with
 *            ALLOT_EVENT_FORMAT_VERSION) + the trailer; except a reservation's (HOLD RECORDS).
 *   An object that no longer exists has no key. Kinds sort so that loading in key order meets
 *   locations before the SKUs and reservations that refer to them.
 *
 * Named database "orders_by_customer" (since version 2; key format in persist/archive.h):
 *     key    u8 customer length C + customer (C bytes) + u64 big-endian (created_ms XOR 2^63)
 *            + order id bytes;  value: the trailer alone (4 bytes; empty before version 3)
 *   Exactly one entry per 0x05 record whose order has a customer, written and deleted in the
 *   same transaction as that record; a cursor walks one customer's orders in (created_ms, id)
 *   order, so order.list pages archived orders newest first without a scan.
 *
 * HOLD RECORDS (since version 4). Holds are most of a store's records, and a reservation
 * snapshot's payload repeats the id its key holds: it is stored without it. When the payload
 * holds, CHECKPOINT_HOLD_ID_OFFSET (10) bytes in (after its version byte, status byte and
 * ended_ms; core/reservation/reservation_codec.c), a u16 length and the id equal to the key's,
 * the value is
 *            1 byte type 18 | 0x80 (CHECKPOINT_TYPE_ID_IN_KEY) + the payload's first 10 bytes +
 *            the payload's bytes after the id + the trailer (over the key and these bytes),
 *   27 bytes less for an id of 25 bytes; loading puts the length and the key's id back before
 *   handing the payload to core. Any other reservation snapshot is stored as it is (type 18).
 *   Version 3 stores hold type 18 records only, which version 4 reads as they are.
 *
 * VALIDITY. A record of "state" is valid iff its key has 2..CHECKPOINT_KEY_BYTES_MAX bytes with
 * a nonzero kind, its value has at least 6 bytes (type, payload, trailer) and the trailer
 * matches; what the payload means is checked by core when it is applied
 * (allot_event_apply_encoded: ALLOT_ECORRUPT on anything that does not decode exactly). Loading
 * refuses the first record that is not valid, naming its number, kind and key, and refuses a
 * store whose record count differs from "record_count". Reading an archived order checks its
 * trailer and its index entry's. A store is consistent by construction: each checkpoint is ONE
 * LMDB write transaction holding its objects, the record count and the new checkpoint_lsn,
 * committed with LMDB's default durable sync (fsync of the data file) - after a crash LMDB shows
 * either the previous or the new checkpoint, never a mix.
 *
 * OLDER VERSIONS. Version 1 (no "orders_by_customer") and version 2 (no trailers, no
 * "record_count") stores are upgraded when opened, in the opening transaction (grown like any
 * write when the map fills): version 1 gets its index built from its 0x05 records; then every
 * value of every named database is rewritten with its trailer, the record count is written and
 * the version set to the current one (persist/checkpoint_upgrade.c). Nothing of the old values is
 * checked (they have no checksum); from then on everything is. The rewrite reads and writes the
 * whole store once, on the first start after the upgrade of the binary. A version 3 store only
 * gets its version set to 4 when opened (its records are valid version 4 records; holds written
 * from then on are stored without their id).
 *
 * A checkpoint writes only the objects dirtied since the previous one (puts and deletes of
 * single keys); a "full" batch (after an out-of-memory while serializing) first deletes every
 * record of "state" except orders (0x05) and then puts every object, in the same transaction.
 * Orders are never deleted by core; a full batch holds every order still in memory, so a stored
 * order it does not hold was evicted: it is kept (and flagged archived if its archived snapshot
 * was in a batch that was dropped), and the customer index is left as it is.
 *
 * ORDER OF WRITES. The entries of one transaction (every batch it writes; a full batch starts a
 * new run, after its wipe) are sorted by key, the entries of one key kept in the order they were
 * added, and written through one cursor: LMDB skips the search from the root when a key falls on
 * the cursor's page, and a key past every stored key is put with MDB_APPEND (its page is not
 * split in half). What the store holds afterwards is what writing the entries one after the
 * other gives.
 *
 * In-memory batch format (never on disk): chunks of entries back to back (an entry never spans
 * two chunks), each
 *     0  2  key bytes K          3  1  deleted (0/1)        8    K  key
 *     2  1  type                 4  4  payload bytes P      8+K  P  payload
 * type and payload are what the stored value will hold between its type byte and its trailer:
 * checkpoint_batch_add already leaves a hold's id out of its payload (HOLD RECORDS: type
 * 18 | CHECKPOINT_TYPE_ID_IN_KEY), so the loop copies no byte the writer would drop.
 */
#include "checkpoint.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "checkpoint_private.h"
#include "fault.h"
#include "thread_priority.h"
#include "writeback.h"
#include "core/byte_order.h"
#include "core/errors.h"
#include "core/event.h"
#include "core/pages.h"
#include "crc32c.h"

#define CHECKPOINT_ENTRY_HEADER_BYTES 8u
/* The stack of runs refs_sort keeps (their lengths grow about as Fibonacci numbers do from the
 * top down: 96 is more than any count of entries needs). */
#define CHECKPOINT_SORT_RUNS_MAX 96u
/* A batch grows by chunks (CHECKPOINT_BATCH_CHUNK_BYTES_MIN, each next one twice the previous,
 * up to _MAX, header included), never by copying what it holds: the loop appends to it in
 * slices, so a realloc of a large batch would be a stall. A chunk of ALLOT_PAGES_HUGE_BYTES or
 * more is a mapping of whole huge pages (core/pages.h): the loop's copies fault once per 2 MiB,
 * not once per 4 KiB; a smaller one comes from malloc. */
_Static_assert(CHECKPOINT_BATCH_CHUNK_BYTES_MAX % ALLOT_PAGES_HUGE_BYTES == 0,
               "the largest batch chunks are whole huge pages");

/* ---- batches ----------------------------------------------------------------------------- */

typedef struct batch_chunk {
    struct batch_chunk *next;
    size_t used;
    size_t capacity;
    uint8_t data[];
} batch_chunk_t;

_Static_assert(CHECKPOINT_BATCH_CHUNK_BYTES_MAX % ALLOT_PAGES_HUGE_BYTES == 0,
               "a chunk of the largest size is whole huge pages: a mapping of its own");
/* Blocks of the largest chunk size the spares may hold untouched (RESERVE below). */
#define SPARES_UNTOUCHED_MAX (CHECKPOINT_BATCH_SPARE_BYTES_MAX / CHECKPOINT_BATCH_CHUNK_BYTES_MAX)

/* The chunks of freed batches a writer keeps for its next batches (SPARE CHUNKS below). */
typedef struct batch_spares {
    pthread_mutex_t mutex; /* the loop takes and frees chunks, the writer thread frees them */
    batch_chunk_t *first;
    /* blocks of CHECKPOINT_BATCH_CHUNK_BYTES_MAX reserved for the next batches and never
     * written (not even a chunk header), so that their pages are faulted in off the loop */
    void *untouched[SPARES_UNTOUCHED_MAX];
    size_t untouched_count;
    size_t bytes;             /* the block bytes of the chunks and untouched blocks kept */
    size_t entry_bytes;       /* chunk bytes per entry of the last commit's batches (rounded up) */
    uint64_t chunks_reused;   /* chunks batches took from the spares, ever */
    uint64_t chunks_fresh;    /* chunks they allocated instead, or reserved, ever */
    uint64_t chunks_reserved; /* of chunks_fresh, the blocks reserved untouched, ever */
    size_t wanted; /* bytes the last reserve or fit asked for: a commit's trim keeps them */
} batch_spares_t;

struct checkpoint_batch {
    batch_chunk_t *first;
    batch_chunk_t *last;
    batch_spares_t *spares; /* where its chunks come from and go back to; NULL: malloc, free */
    /* its next chunk's block, allocated ahead (batch_ahead_alloc) and not written yet (not even
     * the chunk's header: the first write to a fresh page is what the ahead spares the loop) */
    void *ahead;
    size_t ahead_bytes;
    size_t bytes; /* entry bytes in all chunks */
    size_t entries;
    bool full;
    bool failed;
};

typedef struct batch_entry {
    const uint8_t *key;
    size_t key_len;
    uint8_t type;
    bool deleted;
    const uint8_t *payload;
    size_t payload_len;
} batch_entry_t;

checkpoint_batch_t *checkpoint_batch_create(bool full)
{
    checkpoint_batch_t *batch = calloc(1, sizeof(*batch));
    if (batch != NULL)
        batch->full = full;
    return batch;
}

/* ---- chunk memory ---------------------------------------------------------------------------- */

/* The bytes of the block a chunk is. */
static size_t chunk_block_bytes(const batch_chunk_t *chunk)
{
    return sizeof(*chunk) + chunk->capacity;
}

/* The chunk a block of block_bytes is, empty. */
static batch_chunk_t *chunk_init(void *block, size_t block_bytes)
{
    batch_chunk_t *chunk = block;
    *chunk = (batch_chunk_t){.capacity = block_bytes - sizeof(*chunk)};
    return chunk;
}

/* A chunk of block_bytes (header included; whole huge pages from ALLOT_PAGES_HUGE_BYTES on),
 * not touched yet: its pages are faulted in by the copies. NULL when out of memory. */
static batch_chunk_t *chunk_alloc(size_t block_bytes)
{
    if (block_bytes >= ALLOT_PAGES_HUGE_BYTES)
        block_bytes = (block_bytes + ALLOT_PAGES_HUGE_BYTES - 1) & ~(ALLOT_PAGES_HUGE_BYTES - 1);
    batch_chunk_t *chunk = block_bytes >= ALLOT_PAGES_HUGE_BYTES ? allot_pages_alloc(block_bytes)
                                                                 : malloc(block_bytes);
    return chunk != NULL ? chunk_init(chunk, block_bytes) : NULL;
}

static void chunk_free(batch_chunk_t *chunk)
{
    size_t block_bytes = chunk_block_bytes(chunk);
    if (block_bytes >= ALLOT_PAGES_HUGE_BYTES)
        allot_pages_free(chunk, block_bytes);
    else
        free(chunk);
}

/* ---- spare chunks ----------------------------------------------------------------------------
 * A batch's chunks are touched for the first time by the loop's copies: every page of a fresh
 * one is a page fault on the loop (one per 4 KiB of a malloc'd chunk, one per 2 MiB of a mapped
 * one), one batch after the other. A writer's batches (checkpoint_writer_batch_create) take
 * their chunks from the writer's spares first, and give them back when freed. MEMORY BOUND: the
 * spares hold at most CHECKPOINT_BATCH_SPARE_BYTES_MAX, and after a commit at most what that
 * commit's batches took (so memory follows the size of the checkpoints: a small one gives back
 * what a large one left); the loop keeps them while checkpoints follow each other, and trims
 * them to what the objects dirty by then would fill when no checkpoint is in sight
 * (checkpoint_writer_spares_fit: nothing dirty, nothing kept). AHEAD: a batch that takes the
 * last spare (or a fresh chunk) allocates its next chunk at once when that is a mapping, so the
 * server's page warmer (persist/pages_warm.h) faults it in while the loop still fills this one
 * (batch_ahead_alloc); it counts as fresh, and as the batch's own (batch_capacity).
 * RESERVE: the first checkpoint of a process, or the first after the spares were fitted to an
 * idle moment, finds too few spares, and its copies would fault fresh pages in on the loop, one
 * 2 MiB page after the other, in the middle of serving. While objects get dirty, the loop
 * therefore reserves what the next checkpoint will fill (checkpoint_writer_spares_reserve): blocks
 * of the largest chunk size, allocated and left untouched, so that the page warmer faults them in
 * during the seconds before that checkpoint. A batch takes a kept chunk first, then an untouched
 * block; trims free untouched blocks first. They count in the spares' bytes and bound. */

/* A kept chunk with room for need bytes (the first one that has it: they are mostly of the
 * maximum size), emptied, or NULL. */
static batch_chunk_t *spares_take(batch_spares_t *spares, size_t need)
{
    pthread_mutex_lock(&spares->mutex);
    batch_chunk_t **at = &spares->first;
    while (*at != NULL && (*at)->capacity < need)
        at = &(*at)->next;
    batch_chunk_t *chunk = *at;
    void *untouched = NULL;
    if (chunk != NULL) {
        *at = chunk->next;
        spares->bytes -= chunk_block_bytes(chunk);
        spares->chunks_reused++;
    } else if (spares->untouched_count > 0 &&
               need <= CHECKPOINT_BATCH_CHUNK_BYTES_MAX - sizeof(batch_chunk_t)) {
        untouched = spares->untouched[--spares->untouched_count];
        spares->bytes -= CHECKPOINT_BATCH_CHUNK_BYTES_MAX;
        spares->chunks_reused++;
    }
    pthread_mutex_unlock(&spares->mutex);
    if (untouched != NULL)
        return chunk_init(untouched, CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
    if (chunk != NULL) {
        chunk->next = NULL;
        chunk->used = 0;
    }
    return chunk;
}

/* Keep the chunks of a list while the spares stay within bytes_max; free the others. */
static void spares_give(batch_spares_t *spares, batch_chunk_t *chunk, size_t bytes_max)
{
    pthread_mutex_lock(&spares->mutex);
    batch_chunk_t *next;
    for (; chunk != NULL; chunk = next) {
        next = chunk->next;
        if (spares->bytes + chunk_block_bytes(chunk) > bytes_max) {
            chunk_free(chunk);
            continue;
        }
        chunk->next = spares->first;
        spares->first = chunk;
        spares->bytes += chunk_block_bytes(chunk);
    }
    pthread_mutex_unlock(&spares->mutex);
}

/* Free kept chunks, untouched blocks first, until the spares hold at most bytes_max. */
static void spares_trim(batch_spares_t *spares, size_t bytes_max)
{
    pthread_mutex_lock(&spares->mutex);
    while (spares->untouched_count > 0 && spares->bytes > bytes_max) {
        allot_pages_free(spares->untouched[--spares->untouched_count],
                         CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
        spares->bytes -= CHECKPOINT_BATCH_CHUNK_BYTES_MAX;
    }
    while (spares->first != NULL && spares->bytes > bytes_max) {
        batch_chunk_t *chunk = spares->first;
        spares->first = chunk->next;
        spares->bytes -= chunk_block_bytes(chunk);
        chunk_free(chunk);
    }
    pthread_mutex_unlock(&spares->mutex);
}

/* After a commit: keep what its batches took, or what the loop reserved for the next
 * checkpoint if that is more. */
static void spares_trim_after_commit(batch_spares_t *spares, size_t committed_bytes)
{
    pthread_mutex_lock(&spares->mutex);
    size_t wanted = spares->wanted;
    pthread_mutex_unlock(&spares->mutex);
    spares_trim(spares, committed_bytes > wanted ? committed_bytes : wanted);
}

/* Remember the chunk bytes per entry of a commit's batches (kept when they held none). */
static void spares_measure(batch_spares_t *spares, size_t bytes, size_t entries)
{
    if (entries == 0)
        return;
    pthread_mutex_lock(&spares->mutex);
    spares->entry_bytes = (bytes + entries - 1) / entries;
    pthread_mutex_unlock(&spares->mutex);
}

/* The block bytes of a batch's chunks. */
static size_t batch_capacity(const checkpoint_batch_t *batch)
{
    size_t bytes = batch->ahead != NULL ? batch->ahead_bytes : 0;
    for (const batch_chunk_t *chunk = batch->first; chunk != NULL; chunk = chunk->next)
        bytes += chunk_block_bytes(chunk);
    return bytes;
}

void checkpoint_batch_free(checkpoint_batch_t *batch)
{
    if (batch == NULL)
        return;
    if (batch->spares != NULL) {
        spares_give(batch->spares, batch->first, CHECKPOINT_BATCH_SPARE_BYTES_MAX);
        if (batch->ahead != NULL)
            spares_give(batch->spares, chunk_init(batch->ahead, batch->ahead_bytes),
                        CHECKPOINT_BATCH_SPARE_BYTES_MAX);
    } else {
        batch_chunk_t *next;
        for (batch_chunk_t *chunk = batch->first; chunk != NULL; chunk = next) {
            next = chunk->next;
            chunk_free(chunk);
        }
    }
    free(batch);
}

/* The block bytes of the chunk that follows `last` (NULL: the first) in a batch holding
 * batch_bytes: twice the size of the last or as large as what the batch holds, whichever is
 * more (the last spare taken may be a small one), within the limits. */
static size_t chunk_next_bytes(const batch_chunk_t *last, size_t batch_bytes)
{
    size_t block_bytes =
        last == NULL ? CHECKPOINT_BATCH_CHUNK_BYTES_MIN : 2 * chunk_block_bytes(last);
    if (block_bytes < batch_bytes)
        block_bytes = batch_bytes;
    if (block_bytes > CHECKPOINT_BATCH_CHUNK_BYTES_MAX)
        block_bytes = CHECKPOINT_BATCH_CHUNK_BYTES_MAX;
    return block_bytes;
}

static void spares_count_fresh(batch_spares_t *spares)
{
    pthread_mutex_lock(&spares->mutex);
    spares->chunks_fresh++;
    pthread_mutex_unlock(&spares->mutex);
}

/* A batch that had to allocate a fresh chunk (the spares ran out: a checkpoint larger than the
 * last ones) allocates the one after it now, when that is a mapping: core/pages.h reports its
 * pages fresh, and the server faults them in off the loop (persist/pages_warm.h) while the loop
 * still fills this one, so the loop's copies reach fresh huge pages once per batch at most, not
 * once per 2 MiB. The batch holds it (batch->ahead) and gives it back with its chunks. Best
 * effort: without memory the next chunk is allocated when needed, as before. */
static void batch_ahead_alloc(checkpoint_batch_t *batch, const batch_chunk_t *chunk)
{
    size_t block_bytes = chunk_next_bytes(chunk, batch->bytes + chunk->capacity);
    if (batch->ahead != NULL || block_bytes < ALLOT_PAGES_HUGE_BYTES)
        return;
    block_bytes = (block_bytes + ALLOT_PAGES_HUGE_BYTES - 1) & ~(ALLOT_PAGES_HUGE_BYTES - 1);
    batch->ahead = allot_pages_alloc(block_bytes); /* untouched, reported fresh */
    batch->ahead_bytes = block_bytes;
    if (batch->ahead != NULL)
        spares_count_fresh(batch->spares);
}

/* The chunk allocated ahead when it has room for need bytes (taken), else NULL. */
static batch_chunk_t *batch_ahead_take(checkpoint_batch_t *batch, size_t need)
{
    if (batch->ahead == NULL || batch->ahead_bytes - sizeof(batch_chunk_t) < need)
        return NULL;
    batch_chunk_t *chunk = chunk_init(batch->ahead, batch->ahead_bytes);
    batch->ahead = NULL;
    return chunk;
}

/* A chunk for an entry of need bytes that does not fit in the last one: the one allocated
 * ahead, a spare, or a new one (chunk_next_bytes, or larger for a large entry); NULL when out of
 * memory. Past the spares (ahead or new), the next chunk is allocated ahead. */
static batch_chunk_t *batch_chunk_new(checkpoint_batch_t *batch, size_t need)
{
    batch_chunk_t *chunk = batch_ahead_take(batch, need);
    if (chunk == NULL && batch->spares != NULL) {
        chunk = spares_take(batch->spares, need);
        if (chunk != NULL)
            return chunk;
    }
    if (chunk == NULL) {
        size_t block_bytes = chunk_next_bytes(batch->last, batch->bytes);
        if (block_bytes < sizeof(*chunk) + need)
            block_bytes = sizeof(*chunk) + need;
        chunk = chunk_alloc(block_bytes);
        if (chunk != NULL && batch->spares != NULL)
            spares_count_fresh(batch->spares);
    }
    if (chunk != NULL && batch->spares != NULL)
        batch_ahead_alloc(batch, chunk);
    return chunk;
}

/* The bytes of a payload its stored value leaves out (HOLD RECORDS): a reservation snapshot's
 * id length and id, when the id is the key's; 0 when nothing is left out. */
static size_t hold_id_bytes(const uint8_t *key, size_t key_len, uint8_t type,
                            const uint8_t *payload, size_t payload_len)
{
    size_t id_len = key_len - 1;
    if (type != ALLOT_EVENT_RESERVATION_SNAPSHOT || key[0] != CHECKPOINT_KIND_RESERVATION ||
        payload_len < CHECKPOINT_HOLD_ID_OFFSET + 2 + id_len ||
        allot_u16_load_le(payload + CHECKPOINT_HOLD_ID_OFFSET) != id_len ||
        memcmp(payload + CHECKPOINT_HOLD_ID_OFFSET + 2, key + 1, id_len) != 0)
        return 0;
    return 2 + id_len;
}

/* The room for an entry of need bytes at the end of the batch (a new chunk when the last one
 * is full), or NULL when out of memory. */
static uint8_t *batch_room(checkpoint_batch_t *batch, size_t need)
{
    batch_chunk_t *last = batch->last;
    if (last == NULL || last->capacity - last->used < need) {
        batch_chunk_t *chunk = batch_chunk_new(batch, need);
        if (chunk == NULL)
            return NULL;
        if (last != NULL)
            last->next = chunk;
        else
            batch->first = chunk;
        batch->last = last = chunk;
    }
    uint8_t *p = last->data + last->used;
    last->used += need;
    batch->bytes += need;
    batch->entries++;
    return p;
}

int checkpoint_batch_add(checkpoint_batch_t *batch, const uint8_t *key, size_t key_len,
                         uint8_t type, const uint8_t *payload, size_t payload_len, bool deleted)
{
    assert(batch != NULL);
    if (key_len < 2 || key_len > CHECKPOINT_KEY_BYTES_MAX || key[0] == 0 ||
        payload_len > UINT32_MAX || (deleted && payload_len != 0)) {
        batch->failed = true;
        return ALLOT_EINVALID_ARGUMENT;
    }
    size_t left_out = hold_id_bytes(key, key_len, type, payload, payload_len);
    size_t stored_len = payload_len - left_out;
    uint8_t *p = batch_room(batch, CHECKPOINT_ENTRY_HEADER_BYTES + key_len + stored_len);
    if (p == NULL) {
        batch->failed = true;
        return ALLOT_ENOMEM;
    }
    allot_u16_store_le(p, (uint16_t)key_len);
    p[2] = left_out == 0 ? type : (uint8_t)(type | CHECKPOINT_TYPE_ID_IN_KEY);
    p[3] = deleted ? 1 : 0;
    allot_u32_store_le(p + 4, (uint32_t)stored_len);
    uint8_t *to = p + CHECKPOINT_ENTRY_HEADER_BYTES;
    memcpy(to, key, key_len);
    size_t head = left_out == 0 ? payload_len : CHECKPOINT_HOLD_ID_OFFSET;
    if (head > 0)
        memcpy(to + key_len, payload, head);
    if (stored_len > head)
        memcpy(to + key_len + head, payload + head + left_out, stored_len - head);
    return 0;
}

void checkpoint_batch_snapshot_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                                  const uint8_t *payload, size_t payload_len, bool deleted)
{
    checkpoint_batch_t *batch = ctx;
    if (!batch->failed)
        (void)checkpoint_batch_add(batch, key, key_len, type, payload, payload_len, deleted);
}

bool checkpoint_batch_failed(const checkpoint_batch_t *batch)
{
    return batch->failed;
}

size_t checkpoint_batch_entries(const checkpoint_batch_t *batch)
{
    return batch->entries;
}

size_t checkpoint_batch_bytes(const checkpoint_batch_t *batch)
{
    return batch->bytes;
}

/* Decode the entry that starts at p; returns its size. */
static size_t entry_decode(const uint8_t *p, batch_entry_t *entry)
{
    entry->key_len = allot_u16_load_le(p);
    entry->type = p[2];
    entry->deleted = p[3] != 0;
    entry->payload_len = allot_u32_load_le(p + 4);
    entry->key = p + CHECKPOINT_ENTRY_HEADER_BYTES;
    entry->payload = entry->key + entry->key_len;
    return CHECKPOINT_ENTRY_HEADER_BYTES + entry->key_len + entry->payload_len;
}

/* ---- checksums (checking them: checkpoint_read.c) ---------------------------------------- */

void checkpoint_crc_seal(const void *key, size_t key_len, uint8_t *value, size_t len)
{
    assert(len >= CHECKPOINT_CRC_BYTES);
    size_t data_len = len - CHECKPOINT_CRC_BYTES;
    allot_u32_store_le(value + data_len, checkpoint_crc(key, key_len, value, data_len));
}

int checkpoint_meta_put(MDB_txn *txn, MDB_dbi meta, const char *name, const void *data, size_t len)
{
    assert(len <= META_DATA_BYTES_MAX);
    uint8_t bytes[META_DATA_BYTES_MAX + CHECKPOINT_CRC_BYTES];
    memcpy(bytes, data, len);
    checkpoint_crc_seal(name, strlen(name), bytes, len + CHECKPOINT_CRC_BYTES);
    MDB_val key = {strlen(name), (void *)name}, value = {len + CHECKPOINT_CRC_BYTES, bytes};
    return mdb_put(txn, meta, &key, &value, 0);
}

/* ---- opening -------------------------------------------------------------------------------- */

/* A new store: the format version and a record count of 0. */
static int version_write(checkpoint_store_t *store, MDB_txn *txn, char *message,
                         size_t message_bytes)
{
    uint8_t version[4], records[8];
    allot_u32_store_le(version, CHECKPOINT_FORMAT_VERSION);
    allot_u64_store_le(records, 0);
    int mrc = checkpoint_meta_put(txn, store->meta, META_KEY_VERSION, version, sizeof(version));
    if (mrc == 0)
        mrc = checkpoint_meta_put(txn, store->meta, META_KEY_RECORDS, records, sizeof(records));
    return mrc == 0 ? 0
                    : checkpoint_lmdb_error(mrc, "write version to", store->path, message,
                                            message_bytes);
}

/* Version 1 -> 2: index every stored order by customer (persist/archive.h). The entries get
 * their version 3 trailer at once; the upgrade to 3 that follows writes it again. */
static int index_build(checkpoint_store_t *store, MDB_txn *txn, char *message, size_t message_bytes)
{
    MDB_cursor *cursor = NULL;
    int mrc = mdb_cursor_open(txn, store->state, &cursor);
    uint8_t first = CHECKPOINT_KIND_ORDER;
    MDB_val key = {1, &first}, value = {0, NULL};
    if (mrc == 0)
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    for (; mrc == 0; mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
        const uint8_t *k = key.mv_data, *v = value.mv_data;
        if (k[0] != CHECKPOINT_KIND_ORDER)
            break;
        mrc = value.mv_size < 2 ? ARCHIVE_MDB_BAD_ORDER
                                : archive_index_update(txn, store->index, v[0], v + 1,
                                                       value.mv_size - 1, true, &store->scratch);
        if (mrc != 0)
            break;
    }
    if (cursor != NULL)
        mdb_cursor_close(cursor);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return checkpoint_lmdb_error(mrc, "index the orders of", store->path, message,
                                     message_bytes);
    return 0;
}

/* Rewrite a version 1 or 2 store as the current version (checkpoint_upgrade.c); *map_full on
 * MDB_MAP_FULL. */
static int version_upgrade(checkpoint_store_t *store, MDB_txn *txn, uint32_t version,
                           bool *map_full, char *message, size_t message_bytes)
{
    int rc = version == CHECKPOINT_FORMAT_VERSION_V1
                 ? index_build(store, txn, message, message_bytes)
                 : 0;
    if (rc != 0)
        return rc;
    int mrc = checkpoint_upgrade(store, txn);
    if (mrc == 0) {
        store->upgraded_from = version;
        return 0;
    }
    *map_full = mrc == MDB_MAP_FULL;
    return checkpoint_lmdb_error(mrc, "upgrade the format of", store->path, message, message_bytes);
}

/* A version 3 store: its records need no rewrite, only the version does. */
static int version_mark_current(checkpoint_store_t *store, MDB_txn *txn, uint32_t from,
                                bool *map_full, char *message, size_t message_bytes)
{
    uint8_t version[4];
    allot_u32_store_le(version, CHECKPOINT_FORMAT_VERSION);
    int mrc = checkpoint_meta_put(txn, store->meta, META_KEY_VERSION, version, sizeof(version));
    *map_full = mrc == MDB_MAP_FULL;
    if (mrc != 0)
        return checkpoint_lmdb_error(mrc, "write version to", store->path, message, message_bytes);
    store->upgraded_from = from;
    return 0;
}

/* The stored format version: write it on a new store, upgrade versions 1 and 2 (a bare u32,
 * no trailer) and 3, refuse others. */
static int version_check(checkpoint_store_t *store, MDB_txn *txn, bool *created, bool *map_full,
                         char *message, size_t message_bytes)
{
    MDB_val key = {strlen(META_KEY_VERSION), META_KEY_VERSION}, value;
    int mrc = mdb_get(txn, store->meta, &key, &value);
    if (mrc == MDB_NOTFOUND) {
        MDB_stat stat;
        mdb_stat(txn, store->state, &stat);
        if (stat.ms_entries > 0) {
            snprintf(message, message_bytes, "checkpoint: %s holds records but no format version",
                     store->path);
            return ALLOT_ECORRUPT;
        }
        *created = true;
        return version_write(store, txn, message, message_bytes);
    }
    if (mrc != 0)
        return checkpoint_lmdb_error(mrc, "read version of", store->path, message, message_bytes);
    uint32_t version = 0;
    if (value.mv_size == 4)
        version = allot_u32_load_le(value.mv_data);
    else if (value.mv_size == 4 + CHECKPOINT_CRC_BYTES && checkpoint_crc_matches(&key, &value))
        version = allot_u32_load_le(value.mv_data);
    else
        return checkpoint_lmdb_error(CHECKPOINT_MDB_BAD_CHECKSUM, "read version of", store->path,
                                     message, message_bytes);
    bool bare = value.mv_size == 4; /* versions 1 and 2 */
    if (!bare && version == CHECKPOINT_FORMAT_VERSION)
        return 0;
    if (!bare && version == CHECKPOINT_FORMAT_VERSION_V3) /* its records are valid version 4 ones */
        return version_mark_current(store, txn, version, map_full, message, message_bytes);
    if (bare &&
        (version == CHECKPOINT_FORMAT_VERSION_V1 || version == CHECKPOINT_FORMAT_VERSION_V2))
        return version_upgrade(store, txn, version, map_full, message, message_bytes);
    snprintf(message, message_bytes,
             "checkpoint: %s has format version %" PRIu32 ", this build reads %u to %u",
             store->path, version, CHECKPOINT_FORMAT_VERSION_V1, CHECKPOINT_FORMAT_VERSION);
    return ALLOT_ECORRUPT;
}

/* Create the named databases and the version on a new store; check them on an old one (and
 * upgrade it: *map_full when the map must grow first). */
static int store_init_txn(checkpoint_store_t *store, bool *created, bool *map_full, char *message,
                          size_t message_bytes)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (mrc != 0)
        return checkpoint_lmdb_error(mrc, "begin", store->path, message, message_bytes);
    if ((mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &store->meta)) != 0 ||
        (mrc = mdb_dbi_open(txn, "state", MDB_CREATE, &store->state)) != 0 ||
        (mrc = mdb_dbi_open(txn, ARCHIVE_INDEX_DB_NAME, MDB_CREATE, &store->index)) != 0) {
        mdb_txn_abort(txn);
        return checkpoint_lmdb_error(mrc, "open databases of", store->path, message, message_bytes);
    }
    int rc = version_check(store, txn, created, map_full, message, message_bytes);
    if (rc == 0) {
        uint8_t lsn[8];
        mrc = checkpoint_meta_get(txn, store->meta, META_KEY_LSN, lsn, sizeof(lsn));
        if (mrc == 0) {
            store->lsn = allot_u64_load_le(lsn);
        } else if (mrc != MDB_NOTFOUND) {
            snprintf(message, message_bytes, "checkpoint: %s: bad checkpoint_lsn (%s)", store->path,
                     mrc == CHECKPOINT_MDB_BAD_CHECKSUM ? "fails its checksum" : mdb_strerror(mrc));
            rc = ALLOT_ECORRUPT;
        }
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    mrc = mdb_txn_commit(txn);
    return mrc == 0 ? 0 : checkpoint_lmdb_error(mrc, "commit", store->path, message, message_bytes);
}

static void (*_Atomic checkpoint_damage_cb)(const char *path, const char *message);

void checkpoint_set_damage_cb(void (*damage_cb)(const char *path, const char *message))
{
    checkpoint_damage_cb = damage_cb;
}

void checkpoint_damage_report(const char *path, const char *message)
{
    void (*damage_cb)(const char *, const char *) = checkpoint_damage_cb;
    if (damage_cb != NULL)
        damage_cb(path, message);
}

/* LMDB's assertion hook: it aborts the process when this returns. */
static void checkpoint_lmdb_assert(MDB_env *env, const char *message)
{
    const char *path = "state.lmdb";
    if (mdb_env_get_path(env, &path) != 0)
        path = "state.lmdb";
    checkpoint_damage_report(path, message);
}

/* With MDB_WRITEMAP, LMDB sizes the file to the map (a sparse file) and writes pages through
 * the map: a page written into a hole on a full disk would kill the process (SIGBUS). So every
 * byte of the map is allocated on disk first, or the map is not used for writing. 0 or -errno. */
static int store_map_reserve(checkpoint_store_t *store)
{
    if (!store->writemap)
        return 0;
    int fd;
    if (mdb_env_get_fd(store->env, &fd) != 0)
        return -EBADF;
    MDB_envinfo info;
    mdb_env_info(store->env, &info);
    return persist_fallocate(fd, info.me_mapsize);
}

/* With MDB_WRITEMAP, the commit's msync of the map goes out a window at a time
 * (persist/writeback.h, THE PACED MAP): registered after every open and resize of the map. */
static void store_map_pace(checkpoint_store_t *store)
{
    int fd;
    MDB_envinfo info;
    if (!store->writemap || mdb_env_get_fd(store->env, &fd) != 0)
        return;
    mdb_env_info(store->env, &info);
    (void)persist_writeback_map_set(fd, info.me_mapsize); /* none found: msync as always */
}

/* Grow (or shrink back) the map; with MDB_WRITEMAP, the new size is reserved on disk, else the
 * map is set back to old_bytes (no page may be written into a hole). An LMDB code (an errno
 * value for a failed reservation, e.g. ENOSPC). */
static int store_map_resize(checkpoint_store_t *store, uint64_t old_bytes, uint64_t new_bytes)
{
    checkpoint_store_map_lock(store); /* no reader's transaction is active meanwhile */
    int rc = mdb_env_set_mapsize(store->env, (size_t)new_bytes);
    if (rc == 0 && (rc = -store_map_reserve(store)) != 0)
        (void)mdb_env_set_mapsize(store->env, (size_t)old_bytes);
    store_map_pace(store); /* the map moved */
    checkpoint_store_map_unlock(store);
    return rc;
}

/* store_init_txn, again with a map twice as large each time an upgrade fills it. */
static int store_init(checkpoint_store_t *store, bool *created, char *message, size_t message_bytes)
{
    for (;;) {
        bool map_full = false;
        int rc = store_init_txn(store, created, &map_full, message, message_bytes);
        if (!map_full)
            return rc;
        MDB_envinfo info;
        mdb_env_info(store->env, &info);
        if (info.me_mapsize >= CHECKPOINT_MAP_BYTES_MAX)
            return rc;
        uint64_t grown = (uint64_t)info.me_mapsize * 2;
        int mrc =
            store_map_resize(store, info.me_mapsize,
                             grown < CHECKPOINT_MAP_BYTES_MAX ? grown : CHECKPOINT_MAP_BYTES_MAX);
        if (mrc != 0)
            return checkpoint_lmdb_error(mrc, "grow the map of", store->path, message,
                                         message_bytes);
    }
}

/* Create and open the environment; flags beyond the fixed ones: MDB_WRITEMAP or 0. */
static int store_env_open(checkpoint_store_t *store, const char *path, uint64_t map_bytes,
                          unsigned int flags)
{
    int mrc = mdb_env_create(&store->env);
    if (mrc == 0)
        mrc = mdb_env_set_assert(store->env, checkpoint_lmdb_assert);
    if (mrc == 0)
        mrc = mdb_env_set_maxdbs(store->env, CHECKPOINT_DBS_MAX);
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(store->env,
                                  map_bytes ? (size_t)map_bytes : CHECKPOINT_MAP_BYTES_DEFAULT);
    if (mrc == 0)
        mrc = mdb_env_open(store->env, path, MDB_NOSUBDIR | MDB_NOTLS | flags, 0640);
    store->writemap = mrc == 0 && (flags & MDB_WRITEMAP) != 0;
    if (mrc == 0 && store->writemap && store_map_reserve(store) != 0) {
        /* no room (or no fallocate) for the whole map: write through buffers instead */
        mdb_env_close(store->env);
        store->env = NULL;
        return store_env_open(store, path, map_bytes, 0);
    }
    return mrc;
}

int checkpoint_store_open(const char *path, uint64_t map_bytes, checkpoint_store_t **out,
                          char *message, size_t message_bytes)
{
    assert(out != NULL);
    *out = NULL;
    if (message_bytes > 0)
        message[0] = '\0';
    if (path == NULL || strlen(path) + 8 >= CHECKPOINT_PATH_BYTES_MAX ||
        map_bytes > CHECKPOINT_MAP_BYTES_MAX) {
        snprintf(message, message_bytes, "checkpoint: bad path or map size");
        return ALLOT_EINVALID_ARGUMENT;
    }
    checkpoint_store_t *store = calloc(1, sizeof(*store));
    if (store == NULL)
        return ALLOT_ENOMEM;
    if (pthread_mutex_init(&store->map_lock, NULL) != 0) {
        free(store);
        return ALLOT_ENOMEM;
    }
    atomic_init(&store->behind, false);
    snprintf(store->path, sizeof(store->path), "%s", path);
    struct stat st;
    bool existed = stat(path, &st) == 0;
    int mrc = store_env_open(store, path, map_bytes, MDB_WRITEMAP);
    int rc = 0;
    if (mrc != 0)
        rc = checkpoint_lmdb_error(mrc, "open", path, message, message_bytes);
    bool created = false;
    if (rc == 0)
        rc = store_init(store, &created, message, message_bytes);
    if (rc == 0 && !existed && persist_fsync_parent_dir(path) != 0) {
        snprintf(message, message_bytes, "checkpoint: fsync of the directory of %s: %s", path,
                 strerror(errno));
        rc = ALLOT_EIO;
    }
    if (rc != 0) {
        int fd;
        if (store->env != NULL && mdb_env_get_fd(store->env, &fd) == 0)
            persist_writeback_map_clear(fd); /* registered by a resize in store_init */
        if (store->env != NULL)
            mdb_env_close(store->env);
        allot_event_scratch_free(&store->scratch);
        pthread_mutex_destroy(&store->map_lock);
        free(store);
        return rc;
    }
    MDB_envinfo info;
    mdb_env_info(store->env, &info);
    store->map_bytes = info.me_mapsize;
    store_map_pace(store);
    *out = store;
    return 0;
}

void checkpoint_store_close(checkpoint_store_t *store)
{
    if (store == NULL)
        return;
    int fd;
    if (mdb_env_get_fd(store->env, &fd) == 0)
        persist_writeback_map_clear(fd);
    mdb_env_close(store->env);
    allot_event_scratch_free(&store->scratch);
    pthread_mutex_destroy(&store->map_lock);
    free(store);
}

uint64_t checkpoint_store_lsn(const checkpoint_store_t *store)
{
    return store->lsn;
}

uint32_t checkpoint_store_upgraded_from(const checkpoint_store_t *store)
{
    return store->upgraded_from;
}

uint64_t checkpoint_store_map_bytes(const checkpoint_store_t *store)
{
    return store->map_bytes;
}

struct MDB_env *checkpoint_store_env(checkpoint_store_t *store)
{
    return store->env;
}

unsigned int checkpoint_store_state_dbi(const checkpoint_store_t *store)
{
    return store->state;
}

unsigned int checkpoint_store_index_dbi(const checkpoint_store_t *store)
{
    return store->index;
}

void checkpoint_store_map_lock(checkpoint_store_t *store)
{
    pthread_mutex_lock(&store->map_lock);
}

void checkpoint_store_map_unlock(checkpoint_store_t *store)
{
    pthread_mutex_unlock(&store->map_lock);
}

/* A full batch replaces the stored objects: every record of kinds other than orders goes; order
 * records stay (the batch overwrites the live ones; the others left memory), and those not yet
 * flagged archived are flagged (their archived snapshot may have been in a dropped batch). */
static int wipe_for_full(checkpoint_store_t *store, MDB_txn *txn)
{
    MDB_cursor *cursor;
    int mrc = mdb_cursor_open(txn, store->state, &cursor);
    if (mrc != 0)
        return mrc;
    MDB_val key, value;
    uint8_t *copy = NULL;
    uint8_t gone[CHECKPOINT_KEY_BYTES_MAX];
    mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    while (mrc == 0) {
        const uint8_t *k = key.mv_data, *v = value.mv_data;
        if (key.mv_size < 1 || key.mv_size > sizeof(gone) || k[0] != CHECKPOINT_KIND_ORDER) {
            /* delete, then seek the next key (not relying on where a delete leaves a cursor) */
            size_t gone_len = key.mv_size < sizeof(gone) ? key.mv_size : sizeof(gone);
            memcpy(gone, k, gone_len);
            if ((mrc = mdb_cursor_del(cursor, 0)) != 0)
                break;
            key = (MDB_val){gone_len, gone};
            mrc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
            continue;
        }
        if (!checkpoint_crc_matches(&key, &value)) {
            mrc = CHECKPOINT_MDB_BAD_CHECKSUM; /* never re-seal a damaged value */
            break;
        }
        if (value.mv_size >= CHECKPOINT_VALUE_BYTES_MIN + 1 && v[0] == ALLOT_EVENT_ORDER_SNAPSHOT &&
            (v[2] & 1u) == 0) {
            uint8_t *grown = realloc(copy, value.mv_size);
            if (grown == NULL) {
                mrc = ENOMEM;
                break;
            }
            copy = grown;
            memcpy(copy, v, value.mv_size);
            copy[2] |= 1u; /* payload byte 1: snapshot flags, bit 0 archived */
            checkpoint_crc_seal(key.mv_data, key.mv_size, copy, value.mv_size);
            MDB_val flagged = {value.mv_size, copy};
            if ((mrc = mdb_cursor_put(cursor, &key, &flagged, MDB_CURRENT)) != 0)
                break;
        }
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    free(copy);
    mdb_cursor_close(cursor);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* ---- writing: the entries of a transaction's batches in key order -------------------------- */

/* One entry of the batches a transaction writes: its chunk, numbered across the batches in
 * their order, and its offset in that chunk. */
typedef struct entry_ref {
    uint32_t chunk;
    uint32_t offset;
} entry_ref_t;

/* What one run of batches (a full batch starts a new run) writes, in key order. */
typedef struct write_plan {
    const batch_chunk_t **chunks;
    size_t chunk_count;
    entry_ref_t *refs;
    size_t ref_count;
} write_plan_t;

/* LMDB's default key order (bytewise, a shorter prefix first); the entries of one key in the
 * order they were added, so the last one decides, as when the batches are written in order. */
static int entry_ref_compare(const void *a, const void *b, void *ctx)
{
    const batch_chunk_t *const *chunks = ctx;
    const entry_ref_t *x = a, *y = b;
    const uint8_t *p = chunks[x->chunk]->data + x->offset;
    const uint8_t *q = chunks[y->chunk]->data + y->offset;
    size_t p_len = allot_u16_load_le(p), q_len = allot_u16_load_le(q);
    int diff = memcmp(p + CHECKPOINT_ENTRY_HEADER_BYTES, q + CHECKPOINT_ENTRY_HEADER_BYTES,
                      p_len < q_len ? p_len : q_len);
    if (diff != 0)
        return diff;
    if (p_len != q_len)
        return p_len < q_len ? -1 : 1;
    if (x->chunk != y->chunk)
        return x->chunk < y->chunk ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void write_plan_free(write_plan_t *plan)
{
    free(plan->chunks);
    free(plan->refs);
    *plan = (write_plan_t){0};
}

/* persist_thread_step_aside, unless the writer is behind (checkpoint_writer_set_behind). */
static void store_step_aside(const checkpoint_store_t *store, size_t done, size_t every)
{
    if (!atomic_load_explicit(&store->behind, memory_order_relaxed))
        persist_thread_step_aside(done, every);
}

/* Merge the sorted runs refs[0..mid) and refs[mid..end) through tmp (room for the shorter),
 * stepping aside for the loop every CHECKPOINT_WRITER_YIELD_REFS references (the merges of a
 * large batch take tens of ms). */
static void refs_merge(const checkpoint_store_t *store, entry_ref_t *refs, size_t mid, size_t end,
                       entry_ref_t *tmp, const batch_chunk_t **chunks)
{
    if (entry_ref_compare(&refs[mid - 1], &refs[mid], chunks) < 0)
        return;             /* already in order */
    if (mid <= end - mid) { /* the left run is the shorter: merge forwards */
        memcpy(tmp, refs, mid * sizeof(*tmp));
        size_t i = 0, j = mid, k = 0;
        while (i < mid && j < end) {
            store_step_aside(store, k, CHECKPOINT_WRITER_YIELD_REFS);
            refs[k++] = entry_ref_compare(&tmp[i], &refs[j], chunks) < 0 ? tmp[i++] : refs[j++];
        }
        memcpy(refs + k, tmp + i, (mid - i) * sizeof(*tmp));
        return;
    }
    size_t right = end - mid; /* the right run is the shorter: merge backwards */
    memcpy(tmp, refs + mid, right * sizeof(*tmp));
    size_t i = mid, j = right, k = end;
    while (i > 0 && j > 0) {
        store_step_aside(store, end - k, CHECKPOINT_WRITER_YIELD_REFS);
        refs[--k] = entry_ref_compare(&refs[i - 1], &tmp[j - 1], chunks) > 0 ? refs[--i] : tmp[--j];
    }
    memcpy(refs + k - j, tmp, j * sizeof(*tmp));
}

/* Sort refs by entry_ref_compare, in time proportional to n times the log of the number of
 * ascending runs it finds (a batch is mostly in creation order, often close to key order): runs
 * on a stack, merged as in TimSort so that merges stay balanced. 0 or ENOMEM. */
static int refs_sort(const checkpoint_store_t *store, entry_ref_t *refs, size_t n,
                     const batch_chunk_t **chunks)
{
    size_t run_starts[CHECKPOINT_SORT_RUNS_MAX + 1], runs = 0;
    entry_ref_t *tmp = NULL;
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && entry_ref_compare(&refs[end - 1], &refs[end], chunks) < 0)
            end++;
        if (start == 0 && end == n)
            break; /* sorted */
        if (tmp == NULL && (tmp = malloc((n / 2 + 1) * sizeof(*tmp))) == NULL)
            return ENOMEM;
        run_starts[runs++] = start;
        /* Merge the top runs while their lengths do not shrink fast enough down the stack
         * (A > B + C and B > C, lengths A B C from the bottom up), which keeps merges balanced
         * and the stack short; a full stack merges too. */
        for (;;) {
            size_t c = end - run_starts[runs - 1];
            size_t b = runs >= 2 ? run_starts[runs - 1] - run_starts[runs - 2] : SIZE_MAX;
            size_t a = runs >= 3 ? run_starts[runs - 2] - run_starts[runs - 3] : SIZE_MAX;
            if (runs < 2 || (b > c && (runs < 3 || a > b + c) && runs < CHECKPOINT_SORT_RUNS_MAX))
                break;
            size_t lo = run_starts[runs - 2];
            refs_merge(store, refs + lo, run_starts[runs - 1] - lo, end - lo, tmp, chunks);
            runs--;
        }
        start = end;
    }
    for (; runs >= 2; runs--) { /* what is left, from the top */
        size_t lo = run_starts[runs - 2];
        refs_merge(store, refs + lo, run_starts[runs - 1] - lo, n - lo, tmp, chunks);
    }
    free(tmp);
    return 0;
}

/* Every entry of batches[0..count) (NULL ones skipped), sorted by key. 0 or ENOMEM. */
static int write_plan_build(const checkpoint_store_t *store, write_plan_t *plan,
                            checkpoint_batch_t *const *batches, size_t count)
{
    *plan = (write_plan_t){0};
    size_t chunks = 0, entries = 0;
    for (size_t i = 0; i < count; i++)
        for (const batch_chunk_t *c = batches[i] ? batches[i]->first : NULL; c; c = c->next)
            chunks++;
    for (size_t i = 0; i < count; i++)
        entries += batches[i] != NULL ? batches[i]->entries : 0;
    if (entries == 0)
        return 0;
    plan->chunks = malloc(chunks * sizeof(*plan->chunks));
    plan->refs = malloc(entries * sizeof(*plan->refs));
    if (plan->chunks == NULL || plan->refs == NULL || chunks > UINT32_MAX) {
        write_plan_free(plan);
        return ENOMEM;
    }
    for (size_t i = 0; i < count; i++)
        for (const batch_chunk_t *c = batches[i] ? batches[i]->first : NULL; c; c = c->next) {
            plan->chunks[plan->chunk_count] = c;
            batch_entry_t e;
            for (size_t off = 0; off < c->used; off += entry_decode(c->data + off, &e)) {
                assert(off <= UINT32_MAX && plan->ref_count < entries);
                plan->refs[plan->ref_count++] =
                    (entry_ref_t){(uint32_t)plan->chunk_count, (uint32_t)off};
            }
            plan->chunk_count++;
        }
    assert(plan->ref_count == entries);
    int rc = refs_sort(store, plan->refs, plan->ref_count, plan->chunks);
    if (rc != 0)
        write_plan_free(plan);
    return rc;
}

/* One deletion at the state cursor; an order's index entry goes with it. */
static int entry_delete(checkpoint_store_t *store, MDB_txn *txn, MDB_cursor *cursor, MDB_val *key)
{
    const uint8_t *k = key->mv_data;
    MDB_val old;
    int mrc = mdb_cursor_get(cursor, key, &old, MDB_SET);
    if (mrc != 0)
        return mrc == MDB_NOTFOUND ? 0 : mrc;
    if (k[0] == CHECKPOINT_KIND_ORDER) {
        const uint8_t *v = old.mv_data;
        if (old.mv_size < CHECKPOINT_VALUE_BYTES_MIN)
            mrc = ARCHIVE_MDB_BAD_ORDER;
        else if (!checkpoint_crc_matches(key, &old))
            mrc = CHECKPOINT_MDB_BAD_CHECKSUM;
        else
            mrc = archive_index_update(txn, store->index, v[0], v + 1,
                                       old.mv_size - 1 - CHECKPOINT_CRC_BYTES, false,
                                       &store->scratch);
    }
    return mrc != 0 ? mrc : mdb_cursor_del(cursor, 0);
}

/* One put at the state cursor, appended (MDB_APPEND: no search, and the page it fills is not
 * split in half) when the key is past every stored key. */
static int entry_put(checkpoint_store_t *store, MDB_txn *txn, MDB_cursor *cursor,
                     const batch_entry_t *e, bool append)
{
    MDB_val key = {e->key_len, (void *)e->key};
    MDB_val value = {1 + e->payload_len + CHECKPOINT_CRC_BYTES, NULL};
    int mrc = mdb_cursor_put(cursor, &key, &value, MDB_RESERVE | (append ? MDB_APPEND : 0));
    if (mrc == 0) {                 /* filled before the next update, as MDB_RESERVE requires */
        uint8_t *v = value.mv_data; /* the entry is in its stored form (checkpoint_batch_add) */
        v[0] = e->type;
        memcpy(v + 1, e->payload, e->payload_len);
        checkpoint_crc_seal(e->key, e->key_len, v, value.mv_size);
    }
    if (mrc == 0 && e->key[0] == CHECKPOINT_KIND_ORDER)
        mrc = archive_index_update(txn, store->index, e->type, e->payload, e->payload_len, true,
                                   &store->scratch);
    return mrc;
}

/* The largest stored key (*last, *last_len; 0: the store is empty), or false when it does not
 * fit the buffer (then nothing is appended). */
static bool last_key_get(MDB_cursor *cursor, uint8_t *last, size_t *last_len, int *mrc)
{
    MDB_val key, value;
    *last_len = 0;
    *mrc = mdb_cursor_get(cursor, &key, &value, MDB_LAST);
    if (*mrc == MDB_NOTFOUND)
        *mrc = 0;
    else if (*mrc == 0 && key.mv_size <= CHECKPOINT_KEY_BYTES_MAX) {
        memcpy(last, key.mv_data, key.mv_size);
        *last_len = key.mv_size;
    } else
        return false;
    return true;
}

/* The plan's entries in key order through one cursor: after the first, most puts land on the
 * page the previous one left the cursor on, and LMDB skips the search from the root. Steps
 * aside for the loop every CHECKPOINT_WRITER_YIELD_ENTRIES entries. */
static int write_plan_apply(checkpoint_store_t *store, MDB_txn *txn, const write_plan_t *plan,
                            checkpoint_write_stats_t *stats, const char **what)
{
    MDB_cursor *cursor = NULL;
    int mrc = mdb_cursor_open(txn, store->state, &cursor);
    uint8_t last[CHECKPOINT_KEY_BYTES_MAX];
    size_t last_len = 0;
    bool appending = mrc == 0 && last_key_get(cursor, last, &last_len, &mrc);
    *what = "write to";
    for (size_t i = 0; mrc == 0 && i < plan->ref_count; i++) {
        store_step_aside(store, i, CHECKPOINT_WRITER_YIELD_ENTRIES);
        batch_entry_t e;
        (void)entry_decode(plan->chunks[plan->refs[i].chunk]->data + plan->refs[i].offset, &e);
        MDB_val key = {e.key_len, (void *)e.key}, last_key = {last_len, last};
        if (e.deleted) {
            *what = "delete from";
            if ((mrc = entry_delete(store, txn, cursor, &key)) == 0)
                stats->deletes++;
            continue;
        }
        bool append =
            appending && (last_len == 0 || mdb_cmp(txn, store->state, &key, &last_key) > 0);
        *what = "write to";
        if ((mrc = entry_put(store, txn, cursor, &e, append)) != 0)
            break;
        stats->puts++;
        if (append) { /* a deletion may only make the stored last key smaller: still past it */
            memcpy(last, e.key, e.key_len);
            last_len = e.key_len;
        }
    }
    if (cursor != NULL)
        mdb_cursor_close(cursor);
    return mrc;
}

/* batches[0..count), of which only the first may be full: wipe for it, then every entry in key
 * order. */
static int write_run(checkpoint_store_t *store, MDB_txn *txn, checkpoint_batch_t *const *batches,
                     size_t count, checkpoint_write_stats_t *stats, const char **what)
{
    int mrc;
    if (batches[0] != NULL && batches[0]->full && (mrc = wipe_for_full(store, txn)) != 0) {
        *what = "empty the state of";
        return mrc;
    }
    write_plan_t plan;
    if ((mrc = write_plan_build(store, &plan, batches, count)) != 0) {
        *what = "sort the batches for";
        return mrc;
    }
    mrc = write_plan_apply(store, txn, &plan, stats, what);
    write_plan_free(&plan);
    return mrc;
}

/* One attempt: every batch and the LSN in one transaction. Returns an LMDB code. */
static int write_txn(checkpoint_store_t *store, checkpoint_batch_t *const *batches,
                     size_t batch_count, uint64_t lsn, checkpoint_write_stats_t *stats,
                     const char **what)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(store->env, NULL, 0, &txn);
    if (mrc != 0) {
        *what = "begin write of";
        return mrc;
    }
    /* A full batch drops what the batches before it wrote: each run starts at one. */
    for (size_t start = 0, end; mrc == 0 && start < batch_count; start = end) {
        for (end = start + 1; end < batch_count; end++)
            if (batches[end] != NULL && batches[end]->full)
                break;
        mrc = write_run(store, txn, batches + start, end - start, stats, what);
    }
    MDB_stat stat;
    if (mrc == 0 && (mrc = mdb_stat(txn, store->state, &stat)) == 0) {
        uint8_t bytes[8];
        allot_u64_store_le(bytes, stat.ms_entries);
        mrc = checkpoint_meta_put(txn, store->meta, META_KEY_RECORDS, bytes, sizeof(bytes));
        *what = "write record_count to";
    }
    if (mrc == 0) {
        uint8_t bytes[8];
        allot_u64_store_le(bytes, lsn);
        mrc = checkpoint_meta_put(txn, store->meta, META_KEY_LSN, bytes, sizeof(bytes));
        *what = "write checkpoint_lsn to";
    }
    if (mrc != 0) {
        mdb_txn_abort(txn);
        return mrc;
    }
    *what = "commit";           /* its msync goes out paced (store_map_pace) */
    return mdb_txn_commit(txn); /* frees the txn whatever happens */
}

int checkpoint_store_write(checkpoint_store_t *store, checkpoint_batch_t *const *batches,
                           size_t batch_count, uint64_t lsn, checkpoint_write_stats_t *stats,
                           char *message, size_t message_bytes)
{
    assert(store != NULL && (batches != NULL || batch_count == 0));
    checkpoint_write_stats_t local;
    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    if (message_bytes > 0)
        message[0] = '\0';
    if (lsn < store->lsn) {
        snprintf(message, message_bytes,
                 "checkpoint: LSN %" PRIu64 " is older than the stored %" PRIu64, lsn, store->lsn);
        return ALLOT_EINVALID_ARGUMENT;
    }
    for (size_t i = 0; i < batch_count; i++)
        if (batches[i] != NULL && batches[i]->failed) {
            snprintf(message, message_bytes, "checkpoint: batch %zu is incomplete", i);
            return ALLOT_EINVALID_ARGUMENT;
        }
    for (;;) {
        const char *what = "write";
        uint64_t grows = stats->map_grows;
        memset(stats, 0, sizeof(*stats));
        stats->map_grows = grows;
        int mrc = write_txn(store, batches, batch_count, lsn, stats, &what);
        if (mrc == 0)
            break;
        if (mrc != MDB_MAP_FULL || store->map_bytes >= CHECKPOINT_MAP_BYTES_MAX)
            return checkpoint_lmdb_error(mrc, what, store->path, message, message_bytes);
        /* No transaction of this process is active: the map may be resized. */
        uint64_t grown = store->map_bytes * 2;
        if (grown > CHECKPOINT_MAP_BYTES_MAX)
            grown = CHECKPOINT_MAP_BYTES_MAX;
        mrc = store_map_resize(store, store->map_bytes, grown);
        if (mrc != 0)
            return checkpoint_lmdb_error(mrc, "grow the map of", store->path, message,
                                         message_bytes);
        store->map_bytes = grown;
        stats->map_grows++;
    }
    store->lsn = lsn;
    MDB_envinfo info;
    mdb_env_info(store->env, &info);
    store->map_bytes = info.me_mapsize;
    stats->map_bytes = store->map_bytes;
    /* The pages this write touched stay mapped into the process (RSS) though they are clean in
     * the page cache now (the commit synced them): unmap them; a later read maps them again
     * from the page cache. Nothing is lost either way (a shared file mapping). */
    int fd;
    if (store->writemap && mdb_env_get_fd(store->env, &fd) == 0)
        (void)persist_file_map_release(fd);
    return 0;
}

/* ---- the writer thread ------------------------------------------------------------------- */

struct checkpoint_writer {
    uv_loop_t *loop;
    uv_async_t async;
    checkpoint_store_t *store;
    checkpoint_done_cb done_cb;
    void (*closed_cb)(void *ctx);
    void *ctx;
    int (*committed_cb)(void *ctx); /* set while idle; run on the thread after a commit */
    void *committed_ctx;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    batch_spares_t spares; /* the chunks of its freed batches (SPARE CHUNKS) */
    /* Owned by the loop while idle, by the thread while a job is in flight. */
    checkpoint_batch_t **batches;
    size_t batch_count;
    size_t batch_capacity;
    uint64_t lsn;
    /* Loop thread only. */
    bool in_flight;
    bool closing;
    /* Under mutex. */
    bool job;
    bool done;
    bool stop;
    int status;
    checkpoint_write_stats_t stats;
    char message[CHECKPOINT_MESSAGE_BYTES_MAX];
};

static void batches_free(checkpoint_writer_t *writer);

static void *writer_main(void *arg)
{
    checkpoint_writer_t *writer = arg;
    /* below the loop: where the CPUs are short, the loop is scheduled first and the checkpoint
     * takes longer (what it writes and how it syncs do not change) */
    persist_thread_nice(CHECKPOINT_WRITER_NICE);
    pthread_setname_np(pthread_self(), "allot-ckpt"); /* its name in ps -L, perf, traces */
    pthread_mutex_lock(&writer->mutex);
    for (;;) {
        while (!writer->job && !writer->stop)
            pthread_cond_wait(&writer->cond, &writer->mutex);
        if (!writer->job)
            break; /* stop, nothing in flight */
        pthread_mutex_unlock(&writer->mutex);
        checkpoint_write_stats_t stats;
        char message[CHECKPOINT_MESSAGE_BYTES_MAX];
        int status = checkpoint_store_write(writer->store, writer->batches, writer->batch_count,
                                            writer->lsn, &stats, message, sizeof(message));
        if (status == 0) { /* committed: this thread frees them (a failure keeps them) */
            size_t committed_bytes = 0, committed_entries = 0;
            for (size_t i = 0; i < writer->batch_count; i++) {
                committed_bytes += batch_capacity(writer->batches[i]);
                committed_entries += writer->batches[i]->entries;
            }
            batches_free(writer);
            spares_trim_after_commit(&writer->spares, committed_bytes);
            spares_measure(&writer->spares, committed_bytes, committed_entries);
            if (writer->committed_cb != NULL)
                stats.committed_status = writer->committed_cb(writer->committed_ctx);
        }
        pthread_mutex_lock(&writer->mutex);
        writer->job = false;
        writer->done = true;
        writer->status = status;
        writer->stats = stats;
        memcpy(writer->message, message, sizeof(message));
        uv_async_send(&writer->async);
    }
    pthread_mutex_unlock(&writer->mutex);
    return NULL;
}

static void batches_free(checkpoint_writer_t *writer)
{
    for (size_t i = 0; i < writer->batch_count; i++)
        checkpoint_batch_free(writer->batches[i]);
    writer->batch_count = 0;
}

/* Loop thread: report a finished job, if any. */
static void writer_report(checkpoint_writer_t *writer)
{
    pthread_mutex_lock(&writer->mutex);
    bool done = writer->done;
    writer->done = false;
    int status = writer->status;
    checkpoint_write_stats_t stats = writer->stats;
    char message[CHECKPOINT_MESSAGE_BYTES_MAX];
    memcpy(message, writer->message, sizeof(message));
    pthread_mutex_unlock(&writer->mutex);
    if (!done)
        return;
    assert(writer->in_flight);
    writer->in_flight = false;
    assert(status != 0 || writer->batch_count == 0); /* freed by the thread once committed */
    writer->done_cb(writer, status, writer->lsn, &stats, message, writer->ctx);
}

static void on_writer_async(uv_async_t *async)
{
    writer_report(async->data);
}

size_t checkpoint_writer_kept_bytes(const checkpoint_writer_t *writer)
{
    size_t bytes = 0;
    for (size_t i = 0; !writer->in_flight && i < writer->batch_count; i++)
        bytes += writer->batches[i]->bytes;
    return bytes;
}

void checkpoint_writer_drop_kept(checkpoint_writer_t *writer)
{
    assert(!writer->in_flight);
    batches_free(writer);
}

static void on_writer_closed(uv_handle_t *handle)
{
    checkpoint_writer_t *writer = handle->data;
    void (*closed_cb)(void *) = writer->closed_cb;
    void *ctx = writer->ctx;
    batches_free(writer);
    free(writer->batches);
    spares_trim(&writer->spares, 0);
    pthread_mutex_destroy(&writer->spares.mutex);
    pthread_cond_destroy(&writer->cond);
    pthread_mutex_destroy(&writer->mutex);
    free(writer);
    if (closed_cb != NULL)
        closed_cb(ctx);
}

int checkpoint_writer_start(uv_loop_t *loop, checkpoint_store_t *store, checkpoint_writer_t **out,
                            checkpoint_done_cb done_cb, void *ctx)
{
    assert(out != NULL);
    *out = NULL;
    if (loop == NULL || store == NULL || done_cb == NULL)
        return ALLOT_EINVALID_ARGUMENT;
    checkpoint_writer_t *writer = calloc(1, sizeof(*writer));
    if (writer == NULL)
        return ALLOT_ENOMEM;
    writer->loop = loop;
    writer->store = store;
    writer->done_cb = done_cb;
    writer->ctx = ctx;
    if (pthread_mutex_init(&writer->mutex, NULL) != 0) {
        free(writer);
        return ALLOT_ENOMEM;
    }
    if (pthread_mutex_init(&writer->spares.mutex, NULL) != 0) {
        pthread_mutex_destroy(&writer->mutex);
        free(writer);
        return ALLOT_ENOMEM;
    }
    if (pthread_cond_init(&writer->cond, NULL) != 0 ||
        uv_async_init(loop, &writer->async, on_writer_async) != 0) {
        pthread_mutex_destroy(&writer->spares.mutex);
        pthread_mutex_destroy(&writer->mutex);
        free(writer);
        return ALLOT_ENOMEM;
    }
    writer->async.data = writer;
    if (pthread_create(&writer->thread, NULL, writer_main, writer) != 0) {
        /* The async handle is initialised: it is closed and the writer freed in its close
         * callback (closed_cb is NULL: nothing is reported). */
        writer->closing = true;
        uv_close((uv_handle_t *)&writer->async, on_writer_closed);
        return ALLOT_EIO;
    }
    *out = writer;
    return 0;
}

checkpoint_batch_t *checkpoint_writer_batch_create(checkpoint_writer_t *writer, bool full)
{
    assert(writer != NULL && !writer->closing);
    checkpoint_batch_t *batch = checkpoint_batch_create(full);
    if (batch != NULL)
        batch->spares = &writer->spares;
    return batch;
}

/* The chunk bytes that `entries` entries the size of the last commit's (a guess before any)
 * fill, at most CHECKPOINT_BATCH_SPARE_BYTES_MAX. Mutex held. */
static size_t spares_bytes_for(const batch_spares_t *spares, size_t entries)
{
    size_t entry_bytes =
        spares->entry_bytes > 0 ? spares->entry_bytes : CHECKPOINT_BATCH_ENTRY_BYTES_GUESS;
    if (entries > CHECKPOINT_BATCH_SPARE_BYTES_MAX / entry_bytes)
        return CHECKPOINT_BATCH_SPARE_BYTES_MAX;
    return entries * entry_bytes;
}

void checkpoint_writer_spares_fit(checkpoint_writer_t *writer, size_t entries)
{
    pthread_mutex_lock(&writer->spares.mutex);
    size_t bytes_max = spares_bytes_for(&writer->spares, entries);
    writer->spares.wanted = bytes_max;
    pthread_mutex_unlock(&writer->spares.mutex);
    spares_trim(&writer->spares, bytes_max);
}

void checkpoint_writer_spares_reserve(checkpoint_writer_t *writer, size_t entries)
{
    batch_spares_t *spares = &writer->spares;
    for (size_t step = 0; step < CHECKPOINT_SPARES_RESERVE_STEP_CHUNKS; step++) {
        pthread_mutex_lock(&spares->mutex);
        spares->wanted = spares_bytes_for(spares, entries);
        bool short_of = spares->bytes + CHECKPOINT_BATCH_CHUNK_BYTES_MAX <= spares->wanted &&
                        spares->untouched_count < SPARES_UNTOUCHED_MAX;
        pthread_mutex_unlock(&spares->mutex);
        if (!short_of)
            return;
        /* allocated outside the mutex; untouched, reported fresh (core/pages.h) */
        void *block = allot_pages_alloc(CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
        if (block == NULL)
            return; /* best effort: the checkpoint allocates what it lacks, as without */
        pthread_mutex_lock(&spares->mutex);
        bool kept =
            spares->untouched_count < SPARES_UNTOUCHED_MAX &&
            spares->bytes + CHECKPOINT_BATCH_CHUNK_BYTES_MAX <= CHECKPOINT_BATCH_SPARE_BYTES_MAX;
        if (kept) {
            spares->untouched[spares->untouched_count++] = block;
            spares->bytes += CHECKPOINT_BATCH_CHUNK_BYTES_MAX;
            spares->chunks_fresh++;
            spares->chunks_reserved++;
        }
        pthread_mutex_unlock(&spares->mutex);
        if (!kept) {
            allot_pages_free(block, CHECKPOINT_BATCH_CHUNK_BYTES_MAX);
            return;
        }
    }
}

void checkpoint_writer_set_behind(checkpoint_writer_t *writer, bool behind)
{
    atomic_store_explicit(&writer->store->behind, behind, memory_order_relaxed);
}

size_t checkpoint_writer_spare_bytes(checkpoint_writer_t *writer)
{
    checkpoint_spare_stats_t stats;
    checkpoint_writer_spare_stats(writer, &stats);
    return stats.bytes;
}

void checkpoint_writer_spare_stats(checkpoint_writer_t *writer, checkpoint_spare_stats_t *out)
{
    pthread_mutex_lock(&writer->spares.mutex);
    *out = (checkpoint_spare_stats_t){.bytes = writer->spares.bytes,
                                      .chunks_reused = writer->spares.chunks_reused,
                                      .chunks_fresh = writer->spares.chunks_fresh,
                                      .chunks_reserved = writer->spares.chunks_reserved};
    pthread_mutex_unlock(&writer->spares.mutex);
}

int checkpoint_writer_submit(checkpoint_writer_t *writer, checkpoint_batch_t *batch, uint64_t lsn)
{
    assert(writer != NULL);
    if (writer->in_flight || writer->closing)
        return ALLOT_EOVERLOADED;
    if (batch != NULL && batch->failed)
        return ALLOT_EINVALID_ARGUMENT;
    if (batch != NULL && writer->batch_count == writer->batch_capacity) {
        size_t capacity = writer->batch_capacity ? writer->batch_capacity * 2 : 4;
        checkpoint_batch_t **grown = realloc(writer->batches, capacity * sizeof(*grown));
        if (grown == NULL)
            return ALLOT_ENOMEM;
        writer->batches = grown;
        writer->batch_capacity = capacity;
    }
    if (batch != NULL)
        writer->batches[writer->batch_count++] = batch;
    writer->lsn = lsn;
    writer->in_flight = true;
    pthread_mutex_lock(&writer->mutex);
    writer->job = true;
    pthread_cond_signal(&writer->cond);
    pthread_mutex_unlock(&writer->mutex);
    return 0;
}

void checkpoint_writer_set_committed_cb(checkpoint_writer_t *writer, int (*committed_cb)(void *ctx),
                                        void *ctx)
{
    assert(writer != NULL && !writer->in_flight);
    writer->committed_cb = committed_cb;
    writer->committed_ctx = ctx;
}

bool checkpoint_writer_busy(const checkpoint_writer_t *writer)
{
    return writer->in_flight;
}

size_t checkpoint_writer_kept(const checkpoint_writer_t *writer)
{
    return writer->in_flight ? 0 : writer->batch_count;
}

void checkpoint_writer_close(checkpoint_writer_t *writer, void (*closed_cb)(void *ctx))
{
    assert(writer != NULL && !writer->closing);
    writer->closed_cb = closed_cb;
    pthread_mutex_lock(&writer->mutex);
    writer->stop = true;
    pthread_cond_signal(&writer->cond);
    pthread_mutex_unlock(&writer->mutex);
    pthread_join(writer->thread, NULL); /* finishes the job in flight first */
    writer->closing = true;             /* done_cb may not submit again */
    writer_report(writer);
    uv_close((uv_handle_t *)&writer->async, on_writer_closed);
}
