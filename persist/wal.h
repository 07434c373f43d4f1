/* wal.h - the write-ahead log: preallocated segment files and group commit on one writer
 * thread (wal_write.c), opened where replay found the log's end (wal_open.c). Replay, the
 * record format helpers and the format constants are persist/wal_read.h (included here); the
 * on-disk format is described byte by byte at the top of wal_format.c.
 *
 * Contract
 *  - Threads: wal_open, wal_append, wal_flush, wal_has_room, wal_writable, wal_room_check,
 *    wal_*_lsn, wal_truncate_before, wal_stats and wal_close are called from the libuv loop
 *    thread only. The WAL owns one writer thread (all record writes, fdatasyncs, segment
 *    allocation), one reaper thread (segment deletion, and the zeros written into segments
 *    before use: "Written before use" below) and one uv_poll_t on an eventfd through which the
 *    writer reports back (not a uv_async_t: see wal_loop_wake in wal_write.c).
 *  - Directory: config->dir is the WAL directory itself (the server passes "<data-dir>/wal");
 *    wal_open creates it (mode 0750) when its parent exists. The files are listed in
 *    persist/wal_read.h.
 *  - Appending: wal_append copies the record into the in-memory batch and returns its LSN
 *    (previous + 1); it never touches the disk. wal_flush (end of each loop iteration) hands the
 *    batch to the writer if the writer is idle; otherwise the batch keeps growing and is handed
 *    over as soon as the writer reports back (group commit: one write + one fdatasync per
 *    batch). Adaptive group commit (linger_us_max > 0, ALWAYS only): when a batch became durable,
 *    at least ALLOT_WAL_LINGER_ARRIVALS_MIN records were appended while it was being committed
 *    (from hand-over to the loop's durable report: the arrival rate says more are coming) and
 *    the next batch (those records) holds less than ALLOT_WAL_LINGER_BYTES (or half of
 *    batch_bytes_max), it is not handed over at once but waits for more records for as long as
 *    that commit took, at most linger_us_max; then it goes at the end of the iteration that
 *    reaches the deadline, or by a timer of the WAL's own (a timerfd the loop polls: to the
 *    microsecond, not libuv's whole milliseconds) when the loop has nothing else to do. Fewer
 * arrivals never linger: a lone writer that waits for each record to be durable before it appends
 * the next (one client, one request in flight), or a few such writers, never wait. Under a steady
 * stream of small writes from many clients each fdatasync, durable report and reply write then
 * covers more records; nothing is reported durable before its fdatasync either way. Callers must
 * check before each append; wal_room_check(bytes) says what to reply: ALLOT_EUNAVAILABLE  the WAL
 * failed or is closing, or the disk refused space (below); ALLOT_ETOO_LARGE    bytes >
 * wal_payload_bytes_max; ALLOT_EOVERLOADED   the batch buffer (batch_bytes_max) is full while the
 * writer is busy, or the record does not fit in the rest of the active segment and the next segment
 * is still being allocated: both pass by themselves; 0                   wal_has_room(bytes) is
 * true: wal_append will take the record. wal_append returns 0 (appends nothing) when wal_has_room
 * would have said false.
 *  - Space: a record is only accepted when its bytes are already allocated on disk: it fits in
 *    the rest of the active segment, or a preallocated spare segment exists. The writer
 *    allocates the next spare as soon as the previous one became the active segment, before it
 *    writes the next batch. When the allocation fails (ENOSPC, EDQUOT, ...) the disk is short:
 *    records that fit in the rest of the active segment are still accepted, the others are
 *    UNAVAILABLE, and wal_writable() is false once less than ALLOT_WAL_HEADROOM_BYTES is left
 *    there. The writer retries every allocate_retry_ms and writes resume by themselves once
 *    space is free. Waiting for a spare that is being allocated is never UNAVAILABLE. Never a
 *    crash.
 *  - Written before use: an allocated spare's blocks are unwritten extents, and an append into
 *    them makes the file system write extent metadata at each fdatasync (a second write and
 *    wait per group commit). So once a spare is allocated the reaper thread writes it full of
 *    zeros, a window of PERSIST_WRITEBACK_WINDOW_BYTES at a time, each written out and waited
 *    for before the next (persist/writeback.h: the writer's fdatasync never queues behind more
 *    than one window), then fsyncs it; appends to it are then overwrites of written blocks.
 *    The spare is needed when the active segment is full, so its fill keeps pace with the
 *    active segment: a window is filled only while it starts at most zero_lead_bytes beyond the
 *    writer's end in the active segment (with segments of different sizes, beyond as far from
 *    the spare's end as the active segment is from full; the reaper looks again every
 *    WAL_ZERO_PACE_POLL_MS, and serves a truncation asked for meanwhile first). A segment's
 *    zeros then go out over its life, not in the half second after each rollover. The fill
 *    uses the space the allocation already took (no new ENOSPC; the same disk usage) and is
 *    never waited for by a record: a spare is ready for the loop once allocated, as before.
 *    When the writer needs the spare before its fill is done, it stops the fill (waiting for at
 *    most the window in progress), takes it (counted in segments_unzeroed) and the reaper fills
 *    the rest of it above the writer, as it does for the segment wal_open begins or reopens:
 *    whole windows above the end of the writer's next write, which waits only when its write
 *    reaches the window being filled (one window at most). Windows whose blocks are already
 *    written (FIEMAP) are skipped, so a restart fills nothing twice. A fill that fails
 *    (zero_fill_failures) leaves the segment as allocated. A crash mid-fill leaves
 *    zeros or unwritten blocks, which both read as zeros: replay's torn-tail rules
 *    (persist/wal_read.h) see no difference.
 *  - Durability: durable_cb(wal, lsn, ctx) runs on the loop thread each time durable_lsn
 *    advances (monotonic). Before the writer reports records durable after an fdatasync, it
 *    records their LSN in the segment's header (the synced LSN, format in wal_format.c), so
 *    that replay tells damage to them from a torn write. Meaning by fsync_mode:
 *       ALWAYS   : records are durable once written and fdatasync'ed (default; replies wait).
 *       INTERVAL : durable once written to the kernel (pwrite returned) - survives kill -9 but
 *                  up to fsync_interval_ms of acknowledged writes may be lost on power loss;
 *                  the writer fdatasyncs at most every fsync_interval_ms.
 *       NONE     : durable once written to the kernel; records are never fdatasync'ed (only
 *                  a new segment's 32-byte header, once, before it is renamed into place).
 *    (INTERVAL/NONE ack after the write rather than at append so that a process crash never
 *    loses an acknowledged write; the extra latency is one pwrite to the page cache.)
 *  - Failure: a failed write or fdatasync is fatal: fatal_cb(wal, ALLOT_EIO, message, ctx) runs
 *    once on the loop thread, the records of that batch and everything after are never reported
 *    durable, wal_writable() is false from then on. The server logs and exits non-zero (after an
 *    fsync error the kernel may have dropped the dirty pages; retrying would lie).
 *  - Statistics: wal_stats (counters) and wal_histograms (a copy, under the writer's mutex:
 *    the duration of each fdatasync of records, whatever its fsync_mode asked it, and the
 *    records of each batch written, i.e. of one group commit) for server.stats and metrics.
 *  - Truncation: wal_truncate_before(lsn) asks the WAL's reaper thread to delete every segment
 *    whose records are all <= lsn (never the active segment); wal_close waits for it. Returns
 *    at once. Not the writer's job: unlinking a 64 MiB segment takes the file system tens of
 *    milliseconds (its blocks freed, discarded on a disk mounted with discard), and no group
 *    commit may wait for that. Nor may it wait behind a 64 MiB discard: the disk's cache flush
 *    that ends every fdatasync pays for a discard sent before it like for a write. So the
 *    reaper renames a segment out of the log (wal-deleting.tmp, then an fsync of the
 *    directory: from then on it is no part of the log, as if deleted), shrinks it
 *    WAL_SHRINK_STEP_BYTES at a time from its end (ftruncate, then fsync, which commits the
 *    freed blocks and their discard before the next step: segment_shrink_steps counts the
 *    steps), then unlinks it. A crash anywhere in between leaves the segment in the log whole
 *    or wal-deleting.tmp, which wal_open removes (records a checkpoint covers either way).
 *  - Close: wal_close hands over the last batch, waits for the writer to write (and, unless
 *    NONE, sync) it, joins the thread, reports the final durable_lsn via durable_cb (or the
 *    failure via fatal_cb), then uv_close()s its wake handle and its linger timer's poll. The
 *    wal_t is freed once both have closed, after which closed_cb(ctx) (may be NULL) runs; run
 *    the loop once more (uv_run) to let it happen; the loop then has no WAL handle left. No
 *    callback runs after closed_cb. Returns 0 or the fatal error.
 *  - wal_open(next_lsn) expects the log to end at next_lsn - 1 (run wal_replay first);
 *    otherwise ALLOT_EINVALID_ARGUMENT. With config->log_end (result->end of the replay just
 *    done) it takes the end of the newest segment and its torn tail from there instead of
 *    reading and checking that segment again; when log_end does not describe the newest
 *    segment present (first LSN or size differ) it reads the segment as without it. A log_end
 *    with cut set (accepted loss) is applied as described in wal_format.c (ACCEPTED LOSS);
 *    the log may then end below next_lsn - 1 (the checkpoint covers the rest). When the log has no
 *    version 2 segment to append to (an empty directory, a cut, a newest segment of version 1)
 *    wal_open begins one at next_lsn at once, with wal-end (on a full disk the first record
 *    does, as usual); otherwise it brings wal-end up to the newest segment.
 *  - Errors: 0 or negative ALLOT_E*: INVALID_ARGUMENT (bad config/arguments), NOMEM, IO
 *    (system call failed; message says which), CORRUPT (see persist/wal_read.h, replay).
 */
#ifndef ALLOT_PERSIST_WAL_H
#define ALLOT_PERSIST_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/histogram.h"
#include "core/limits.h"
#include "wal_read.h"

typedef enum { WAL_FSYNC_ALWAYS, WAL_FSYNC_INTERVAL, WAL_FSYNC_NONE } wal_fsync_mode_t;

typedef struct wal_config {
    const char *dir; /* the WAL directory ("<data-dir>/wal") */
    wal_fsync_mode_t fsync_mode;
    uint32_t fsync_interval_ms;   /* INTERVAL only; 1..60000 */
    uint64_t segment_bytes;       /* 0: ALLOT_WAL_SEGMENT_BYTES_DEFAULT; WAL_SEGMENT_BYTES_MIN.. */
    uint64_t batch_bytes_max;     /* 0: ALLOT_WAL_BATCH_BYTES_MAX (tests use smaller) */
    uint32_t allocate_retry_ms;   /* 0: WAL_ALLOCATE_RETRY_MS_DEFAULT */
    uint32_t linger_us_max;       /* ALWAYS: adaptive group commit (contract); 0: none */
    uint64_t zero_lead_bytes;     /* 0: WAL_ZERO_LEAD_BYTES_DEFAULT ("Written before use") */
    const wal_log_end_t *log_end; /* NULL, or result->end of the replay of dir just done */
} wal_config_t;

typedef struct wal wal_t;

typedef void (*wal_durable_cb)(wal_t *wal, uint64_t durable_lsn, void *ctx);
typedef void (*wal_fatal_cb)(wal_t *wal, int error, const char *message, void *ctx);

/* Counters for `server.stats` and tests (snapshot, loop thread). */
typedef struct wal_stats {
    uint64_t records_appended;
    uint64_t batches_written;
    uint64_t bytes_written;
    uint64_t fdatasyncs;
    uint64_t segments_created; /* spare segments allocated */
    uint64_t segments_deleted;
    uint64_t segment_shrink_steps; /* ftruncates of deleted segments, WAL_SHRINK_STEP_BYTES each */
    uint64_t allocate_failures;
    int allocate_error_last;     /* -errno of the last failed allocation, 0 if the last succeeded */
    uint64_t zeroed_bytes;       /* zeros written into spares before use (the reaper's fill) */
    uint64_t zero_fill_failures; /* fills that failed (the spare is used as allocated) */
    uint64_t segments_unzeroed;  /* spares the writer took before their fill was done */
} wal_stats_t;

/* Distributions of the writer's work (`server.stats`, metrics; a copy, loop thread). */
typedef struct wal_histograms {
    histogram_t fdatasync_us;  /* each fdatasync of the active segment's records (microseconds) */
    histogram_t batch_records; /* records per batch written (one group commit) */
} wal_histograms_t;

/* Open for appending; the next record gets next_lsn (>= 1). On error nothing is left open and
 * no callback ever runs, except that a failure after the wake handle was initialised (the
 * linger timer's poll, thread creation) closes the handles: run the loop to let it finish.
 * message gets a reason (may be NULL). */
int wal_open(uv_loop_t *loop, const wal_config_t *config, uint64_t next_lsn, wal_t **out,
             wal_durable_cb durable_cb, wal_fatal_cb fatal_cb, void *ctx, char *message,
             size_t message_bytes);
uint64_t wal_append(wal_t *wal, uint8_t type, int64_t time_ms, const void *payload, size_t len);
void wal_flush(wal_t *wal);
bool wal_has_room(const wal_t *wal, size_t payload_bytes);
bool wal_writable(const wal_t *wal);
/* 0 or the error to reply for a record of payload_bytes (see the contract). */
int wal_room_check(const wal_t *wal, size_t payload_bytes);
size_t wal_payload_bytes_max(const wal_t *wal);
uint64_t wal_last_lsn(const wal_t *wal);
uint64_t wal_durable_lsn(const wal_t *wal);
int wal_truncate_before(wal_t *wal, uint64_t checkpoint_lsn);
void wal_stats(const wal_t *wal, wal_stats_t *out);
/* A copy of the writer's histograms (about 120 KiB: for stats and metrics, not per request). */
void wal_histograms(const wal_t *wal, wal_histograms_t *out);
int wal_close(wal_t *wal, void (*closed_cb)(void *ctx));

#endif
