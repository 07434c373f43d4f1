/* wal_read.h - reading the write-ahead log: replay at start-up (with a read-ahead thread), the
 * record format helpers, the files of a WAL directory. Nothing here writes: this is the side
 * allot-wal links (library allot_persist_read); appending is persist/wal.h. The on-disk format
 * is described byte by byte at the top of wal_format.c.
 *
 * Contract
 *  - Threads: wal_replay and the wal_record_* helpers are synchronous, touch no shared state and
 *    may be called anywhere. A wal_preload_t (read-ahead for replay, below) owns one reader
 *    thread; the preload functions are called from one thread (the one that started it).
 *  - Directory: the WAL directory is "<data-dir>/wal" (wal_open creates it). Segments are
 *    "wal-<first LSN as 16 hex digits>.log"; "wal-spare.tmp" is the preallocated next segment;
 *    "wal-end" names the newest segment made (so that a deleted newest segment is noticed);
 *    "<segment>.discarded" are segments set aside by an accepted loss (never read again).
 *  - Replay: wal_replay checks every record of the segments that hold LSNs > after_lsn (CRC,
 *    length, LSN exactly +1 across segments) and calls record_cb for each with LSN > after_lsn,
 *    in order. A torn record at the end of the newest segment (anything but a valid record
 *    that is not followed by a valid record with the next LSN, past the segment's synced LSN)
 *    is not an error: it is reported in result->tail_* and the next wal_open zeroes it and
 *    appends from there. A bad or missing record at or before a segment's synced LSN, a bad
 *    record anywhere else, a damaged segment header, a segment file of the wrong size, an LSN
 *    gap, a log that starts after after_lsn + 1, a newest segment older than the one wal-end
 *    names, no wal-end beside a version 2 segment, and no segment at all while after_lsn > 0
 *    are ALLOT_ECORRUPT with a message naming the file, the byte offset and the LSN expected
 *    there (the rules are in wal_format.c, VALIDITY). With wal_preload_accept_loss the first of
 *    these ends the log instead (result->data_loss; wal_open cuts it there). A nonzero return
 *    of record_cb stops replay and is returned. Every segment is checked whole before its first
 *    record goes to record_cb; on corruption record_cb still gets every valid record before
 *    the bad one and none after it. When record_cb returns ALLOT_ECORRUPT (the state refused
 *    the record) the message and result->bad_* name that record's file, offset and LSN (for
 *    segment_done_cb: the end of that segment). Segment files are mapped read-only and paged
 *    in when loaded (MADV_POPULATE_READ): no copy; where that fails they are read with pread,
 *    with the same results.
 *  - Read-ahead: wal_preload_start(dir, window) lists dir and starts a reader thread that reads
 *    the segments in order and checks each one completely (header, every record's length,
 *    CRC and LSN sequence, end-of-segment classification), so the caller can load the
 *    checkpoint meanwhile; wal_replay_preloaded then replays from those buffers, applying the
 *    same rules as wal_replay with the same results and messages, and skips the records
 *    <= after_lsn. Memory is bounded: at most `window` segments are held at once, counting
 *    the one being replayed; the reader waits (mutex + condition variable) while the window
 *    is full and never reads past it. Once after_lsn is known the reader skips segments wholly
 *    covered by it. A segment the reader could not read or found bad is reported by replay
 *    when replay reaches it, exactly as wal_replay would (a covered segment is never reported).
 *    wal_replay_preloaded always ends the preload: it stops and joins the reader and frees
 *    every buffer before returning, whatever it returns; wal_preload_cancel does the same
 *    without replaying (e.g. the checkpoint failed to load). The directory must not change
 *    between wal_preload_start and the end of replay (allotd writes nothing there before
 *    wal_open). If the thread cannot be started, replay reads the segments itself.
 *  - Errors: 0 or negative ALLOT_E*: INVALID_ARGUMENT (bad arguments), NOMEM, IO (a system call
 *    failed; message says which), CORRUPT (see replay).
 */
#ifndef ALLOT_PERSIST_WAL_READ_H
#define ALLOT_PERSIST_WAL_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

/* Format constants (see wal_format.c). Segments written now are of version 2; version 1 is
 * read. */
#define WAL_SEGMENT_HEADER_BYTES    64u
#define WAL_SEGMENT_HEADER_BYTES_V1 32u
#define WAL_RECORD_HEADER_BYTES     21u
#define WAL_RECORD_TRAILER_BYTES    4u
#define WAL_RECORD_OVERHEAD_BYTES   (WAL_RECORD_HEADER_BYTES + WAL_RECORD_TRAILER_BYTES)
#define WAL_FORMAT_VERSION          2u
#define WAL_FORMAT_VERSION_V1       1u
#define WAL_END_FILE_NAME           "wal-end"
#define WAL_END_FILE_BYTES          32u
/* Limits (segment sizes and count, the read-ahead window, paths): core/limits.h. */
#define WAL_MESSAGE_BYTES_MAX        512u

/* Where the records of the newest segment end, as replay found it (see wal_open). */
typedef struct wal_log_end {
    uint64_t segment_first_lsn; /* the newest segment's first LSN; 0: unknown (empty log) */
    uint64_t segment_bytes;     /* its file size */
    uint64_t offset;            /* just after its last valid record */
    uint64_t torn_bytes;        /* nonzero bytes from offset on (a torn tail), 0 when none */
    uint64_t last_lsn;          /* LSN of its last valid record (segment_first_lsn - 1: none) */
    uint64_t synced_lsn;        /* its header's synced LSN (version 1: segment_first_lsn - 1) */
    uint32_t version;           /* its format version */
    /* Accepted loss (wal_preload_accept_loss): the log ends here although more followed; wal_open
     * discards every later segment, seals this one at offset (segment_first_lsn 0: no segment
     * is kept; header_damaged: this one is set aside too) and starts a new segment. */
    bool cut;
    bool header_damaged;
} wal_log_end_t;

/* ---- replay (synchronous, before serving) ----------------------------------------------- */
typedef int (*wal_record_cb)(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type,
                             const uint8_t *payload, size_t len);
/* Runs after the last record of each segment went to record_cb, before that segment's buffer
 * is freed: the payload pointers record_cb received stay valid until it returns, so a caller
 * may hold several records (to prefetch ahead of applying them) and finish them here. A
 * nonzero return stops replay and is returned. */
typedef int (*wal_segment_done_cb)(void *ctx);

typedef struct wal_replay_result {
    uint32_t segments;         /* segment files found */
    uint64_t records_checked;  /* valid records read */
    uint64_t records_replayed; /* passed to record_cb (LSN > after_lsn) */
    uint64_t first_lsn;        /* first LSN present in the log (0: empty) */
    uint64_t last_lsn;         /* last valid LSN (after_lsn when the log holds nothing newer) */
    bool tail_truncated;       /* a torn tail follows last_lsn; wal_open will zero it */
    char tail_file[WAL_PATH_BYTES_MAX];
    uint64_t tail_offset; /* byte offset of the torn record in tail_file */
    uint64_t tail_bytes;  /* nonzero bytes from tail_offset on that wal_open zeroes */
    /* On ALLOT_ECORRUPT: where. */
    char bad_file[WAL_PATH_BYTES_MAX];
    uint64_t bad_offset;
    uint64_t bad_lsn; /* the LSN expected there */
    /* When replay returned 0: where the newest segment ends (for wal_config_t.log_end). */
    wal_log_end_t end;
    /* Accepted loss (wal_preload_accept_loss): replay returned 0 although the log is damaged or
     * incomplete; bad_* and loss_message say where and why (what the error would have been),
     * end.cut is set, and every record after bad_lsn - 1 is dropped by wal_open. */
    bool data_loss;
    char loss_message[WAL_MESSAGE_BYTES_MAX];
} wal_replay_result_t;

int wal_replay(const char *dir, uint64_t after_lsn, wal_record_cb record_cb, void *ctx,
               wal_replay_result_t *result, char *error_message, size_t error_message_bytes);
/* wal_replay with a segment_done_cb (may be NULL). */
int wal_replay_segmented(const char *dir, uint64_t after_lsn, wal_record_cb record_cb,
                         wal_segment_done_cb segment_done_cb, void *ctx,
                         wal_replay_result_t *result, char *error_message,
                         size_t error_message_bytes);

/* Read-ahead (see the contract): list dir and start the reader thread, holding at most
 * window_segments (1..WAL_PRELOAD_SEGMENTS_MAX) segments. 0, ALLOT_EINVALID_ARGUMENT (window)
 * or ALLOT_ENOMEM; a bad directory is reported by wal_replay_preloaded, as wal_replay would. */
typedef struct wal_preload wal_preload_t;
int wal_preload_start(const char *dir, uint32_t window_segments, wal_preload_t **out);
/* wal_replay_segmented of the preload's directory; ends the preload whatever it returns. */
int wal_replay_preloaded(wal_preload_t *preload, uint64_t after_lsn, wal_record_cb record_cb,
                         wal_segment_done_cb segment_done_cb, void *ctx,
                         wal_replay_result_t *result, char *error_message,
                         size_t error_message_bytes);
/* Stop and join the reader, free every buffer and the preload (NULL: nothing). */
void wal_preload_cancel(wal_preload_t *preload);
/* The operator accepts losing what follows damage (allotd --accept-data-loss): replay stops at
 * the first damage or gap instead of failing (see wal_replay_result_t.data_loss). A record that
 * record_cb refuses is still an error. Call before wal_replay_preloaded. */
void wal_preload_accept_loss(wal_preload_t *preload);

/* ---- record format helpers (tests, tools) ----------------------------------------------- */
typedef struct wal_record {
    uint64_t lsn;
    int64_t time_ms;
    uint8_t type;
    uint32_t payload_bytes;
    const uint8_t *payload; /* points into the decoded buffer */
    uint32_t record_bytes;  /* payload_bytes + WAL_RECORD_OVERHEAD_BYTES */
} wal_record_t;

/* Encode one record into out (out_bytes >= len + WAL_RECORD_OVERHEAD_BYTES); returns its size. */
size_t wal_record_encode(uint8_t *out, size_t out_bytes, uint64_t lsn, int64_t time_ms,
                         uint8_t type, const void *payload, size_t len);
/* Decode the record at buf: 1 = valid record in *out; 0 = end of log (zero header, or fewer than
 * a header's bytes left, all zero); ALLOT_ECORRUPT = bad record, *reason says why. Does not
 * check the LSN sequence (the caller does). */
int wal_record_decode(const uint8_t *buf, size_t bytes, wal_record_t *out, const char **reason);

#endif
