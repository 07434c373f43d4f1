/* wal_private.h - what the files of the WAL share (persist/wal_*.c only): format internals
 * (wal_format.c), reading and checking one segment (wal_read.c), and the live log's state,
 * written by wal_open.c and then shared by the loop thread and the writer thread (wal_write.c).
 * Not part of any contract: the contracts are persist/wal_read.h and persist/wal.h.
 */
#ifndef ALLOT_PERSIST_WAL_PRIVATE_H
#define ALLOT_PERSIST_WAL_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal.h"

#define WAL_MAGIC              "ALLOTWAL"
#define WAL_END_MAGIC          "ALLOTEND"
#define WAL_END_VERSION        1u
#define WAL_END_TMP_NAME       "wal-end.tmp"
#define WAL_DISCARDED_SUFFIX   ".discarded"
#define WAL_SPARE_NAME         "wal-spare.tmp"
#define WAL_DELETING_NAME      "wal-deleting.tmp" /* a segment being shrunk (wal_reap.c) */
#define WAL_SEGMENT_NAME_BYTES 24                 /* "wal-" + 16 hex + ".log" */

/* ---- format (wal_format.c) --------------------------------------------------------------- */

/* A segment header's fields (both versions). */
typedef struct wal_header {
    uint32_t version;
    uint32_t header_bytes;
    uint64_t first_lsn;
    uint64_t segment_bytes; /* version 1: 0 (not recorded) */
    uint64_t synced_lsn;    /* version 1: first_lsn - 1 */
} wal_header_t;

/* An error message naming a file; a long path is cut short. */
__attribute__((format(printf, 3, 4))) void wal_message_set(char *message, size_t message_bytes,
                                                           const char *format, ...);

/* A version 2 header. */
void wal_segment_header_encode(uint8_t out[WAL_SEGMENT_HEADER_BYTES], uint64_t first_lsn,
                               uint64_t segment_bytes, uint64_t synced_lsn);
/* Parse and check the header at the start of a file of `bytes` (at least
 * WAL_SEGMENT_HEADER_BYTES_V1). NULL when valid, else the reason. */
const char *wal_segment_header_check(const uint8_t *data, uint64_t bytes, uint64_t first_lsn,
                                     wal_header_t *out);

void wal_end_encode(uint8_t out[WAL_END_FILE_BYTES], uint64_t newest_first_lsn);
/* Read <dir>/wal-end: 1 with *lsn, 0 when there is none, ALLOT_ECORRUPT when it is damaged,
 * ALLOT_EIO when it cannot be read (message). */
int wal_end_read(const char *dir, uint64_t *lsn, char *message, size_t message_bytes);

typedef struct wal_segment_entry {
    uint64_t first_lsn;
    char name[WAL_SEGMENT_NAME_BYTES + 1];
} wal_segment_entry_t;

/* The segments of dir sorted by first LSN (*out malloc'ed, NULL when none). */
int wal_segments_list(const char *dir, wal_segment_entry_t **out, size_t *count, char *message,
                      size_t message_bytes);
/* path = "<dir>/<name>"; dir was checked to leave room for a segment name. */
void wal_segment_path(char path[WAL_PATH_BYTES_MAX], const char *dir, const char *name);

/* ---- one segment, read and checked (wal_read.c) ------------------------------------------ */

typedef struct wal_scan {
    const uint8_t *data; /* whole segment file */
    uint64_t bytes;
    uint64_t first_lsn;
    bool is_last;
    wal_header_t header; /* when !header_bad */
    bool header_bad;     /* the header is damaged: no record is read */
    /* out */
    uint64_t end_offset; /* just after the last valid record */
    uint64_t last_lsn;   /* first_lsn - 1 when no record */
    uint64_t records_checked;
    bool torn;
    uint64_t torn_bytes; /* from end_offset to the last nonzero byte, inclusive */
    const char *reason;  /* on ALLOT_ECORRUPT; the offset is end_offset, the LSN last_lsn+1 */
} wal_scan_t;

/* One segment file, read and checked, waiting to be replayed. */
typedef struct wal_loaded {
    uint8_t *data; /* the whole file; NULL when not read */
    bool mapped;   /* data is a mapping of scan.bytes (else malloc'ed) */
    int rc;        /* 0; ALLOT_ECORRUPT: where and why in scan; ALLOT_EIO/ENOMEM: message */
    wal_scan_t scan;
    char message[WAL_MESSAGE_BYTES_MAX];
} wal_loaded_t;

/* Read, check the header of, and check every record of one segment file (the read-ahead
 * thread, or replay and wal_open themselves). The data is kept even when a record is bad:
 * the valid records before it are still replayed. */
void wal_segment_load(const char *dir, const wal_segment_entry_t *segment, bool is_last,
                      wal_loaded_t *out);
void wal_loaded_free(wal_loaded_t *loaded);
/* Where a segment's valid records end. */
wal_log_end_t wal_log_end_of(const wal_scan_t *scan);

/* ---- the live log (wal_open.c, wal_write.c) ---------------------------------------------- */

struct wal {
    uv_loop_t *loop;
    uv_poll_t wake;        /* writer -> loop: batch done, durable advanced, spare ready, failure */
    int wake_fd;           /* the eventfd wake polls (wal_loop_wake in wal_write.c) */
    uv_poll_t linger_poll; /* linger_fd's expiry hands a lingering batch over (loop idle) */
    int linger_fd;         /* a timerfd: a linger's end to the microsecond (wal_linger_begin) */
    uint32_t handles_open; /* wake and linger_poll: the wal_t is freed when both closed */
    char dir[WAL_PATH_BYTES_MAX];
    wal_fsync_mode_t fsync_mode;
    uint32_t fsync_interval_ms;
    uint32_t allocate_retry_ms;
    uint64_t segment_bytes;
    uint64_t zero_lead_bytes; /* the spare's fill, ahead of the active segment's at most */
    uint64_t batch_bytes_max;
    size_t payload_bytes_max;
    wal_durable_cb durable_cb;
    wal_fatal_cb fatal_cb;
    void (*closed_cb)(void *ctx);
    void *ctx;

    /* Loop thread only. */
    uint8_t *fill; /* the batch being appended to */
    size_t fill_bytes;
    uint64_t last_lsn;
    uint64_t durable_lsn_reported;
    uint64_t records_appended;
    uint64_t place_offset; /* where the next record will land, mirrored from the writer's rule */
    uint64_t place_capacity;
    uint64_t spares_consumed;
    bool fatal_reported;
    bool closing;
    /* Adaptive group commit (wal.h): the hand-over of the batch in flight, the records appended
     * since (the arrivals during its commit), the end of the current linger (0: none), its
     * longest length and the size that ends it at once. */
    uint64_t handed_ns;
    uint32_t fill_records;
    uint64_t linger_until_ns;
    uint64_t linger_ns_max;
    size_t linger_bytes;
    bool handed; /* a batch was handed over and its end not seen yet */

    /* Written by the writer, read lock-free by the loop. */
    _Atomic uint64_t spares_created;
    _Atomic bool failed;
    _Atomic bool allocate_failing; /* the last attempt to allocate a spare failed (disk) */
    _Atomic bool wake_pending;     /* wake_fd written since the loop last read it */
    _Atomic bool active_zeroing;   /* a fill of the active segment is asked for or running */
    /* room left in the active segment (its capacity less the writer's end), after each write:
     * the spare's fill paces itself to it (wal_reap.c) */
    _Atomic uint64_t active_room;

    /* Under mutex. */
    pthread_mutex_t mutex;
    pthread_cond_t writer_cond; /* writer waits for work */
    pthread_cond_t done_cond;   /* wal_close waits for the batch in flight */
    pthread_cond_t reap_cond;   /* the reaper waits for a truncation, a zero fill or the stop */
    pthread_cond_t zero_cond;   /* the writer waits for the zero fill's window in progress */
    uint8_t *flight;            /* the batch handed to the writer */
    size_t flight_bytes;
    uint64_t flight_last_lsn;
    bool flight_pending;
    bool truncate_pending; /* for the reaper (wal_reap.c) */
    uint64_t truncate_lsn;
    uint64_t segments_deleted;     /* by the reaper */
    uint64_t segment_shrink_steps; /* by the reaper: its ftruncates of deleted segments */
    /* The zero fill (wal_reap.c) of the spare and of the active segment ahead of the writer:
     * the writer asks for each (its fd, a new request) and takes it back before it writes the
     * spare or leaves the active segment (wal_zero_stop). */
    int zero_fd;                  /* the spare to fill; -1: none (the writer took it) */
    uint64_t zero_request;        /* bumped by each request: a fill stops when not its own */
    bool zero_pending;            /* asked for, not begun */
    int zero_active_fd;           /* the active segment to fill above the writer; -1: none */
    uint64_t zero_active_request; /* as zero_request */
    bool zero_active_pending;
    uint64_t active_write_end; /* the writer's next write ends here: the fill stays above */
    bool zero_busy;            /* the reaper is writing a window of zeros (or the fsync) */
    bool zero_busy_active;     /* ... of the active segment, at zero_window_offset */
    uint64_t zero_window_offset;
    bool spare_zeroed;     /* the spare at zero_fd was filled and fsynced */
    uint64_t zeroed_bytes; /* by the reaper */
    uint64_t zero_fill_failures;
    bool stop;
    uint64_t durable_lsn_shared;
    int error;
    char error_message[WAL_MESSAGE_BYTES_MAX];
    wal_stats_t stats_shared;
    wal_histograms_t histograms; /* recorded by the writer, copied by wal_histograms */

    /* Set by wal_open, joined by wal_close. */
    pthread_t reaper;
    bool reaper_started;

    /* Writer thread only (and wal_open before the thread starts). */
    pthread_t thread;
    int dir_fd;
    int active_fd; /* -1: no segment yet; the first record rolls into the spare */
    uint64_t active_offset;
    uint64_t active_capacity;
    bool active_dirty;        /* records written since its last fdatasync */
    bool active_v1;           /* an older segment: its header has no synced LSN to keep */
    bool active_header_dirty; /* its header was rewritten since its last fdatasync */
    uint64_t active_first_lsn;
    uint64_t active_last_lsn;   /* the last record written into it (first - 1: none) */
    uint64_t active_synced_lsn; /* what its header says (see the format) */
    int spare_fd;
    bool spare_written; /* the spare's blocks were written at creation (no fallocate) */
    uint64_t written_lsn;
    uint64_t next_sync_ms;
    uint64_t next_allocate_ms;
    wal_stats_t stats;
};

/* Write `bytes` zeros at offset. 0 or -errno. */
int wal_zero_range(int fd, uint64_t offset, uint64_t bytes);
/* WAL_ZERO_CHUNK_BYTES of zeros, the source of every write of zeros (wal_write.c, wal_reap.c). */
extern const uint8_t wal_zeros[WAL_ZERO_CHUNK_BYTES];
/* Try to allocate the spare; on failure schedule a retry. True when a spare now exists. */
bool wal_spare_try(wal_t *wal);
/* Ask the reaper to fill the spare just allocated with zeros (mutex held, or the threads not
 * started yet). */
void wal_spare_zero_request(wal_t *wal);
/* Ask the reaper to fill the active segment with zeros above what the writer wrote (mutex held,
 * or the threads not started yet; the caller signals reap_cond). */
void wal_active_zero_request(wal_t *wal);
/* Replace wal-end in the directory dir_fd atomically: the newest segment made starts at
 * newest_first_lsn (it is already renamed into place and its directory entry durable). 0 or
 * -errno. */
int wal_end_write(int dir_fd, uint64_t newest_first_lsn);
/* Make the spare (allocated now if there is none) segment wal-<first_lsn>.log: its header, the
 * rename, then wal-end. 0 or -errno with *what naming the step that failed. Touches nothing else:
 * the active segment is still the previous one. */
int wal_segment_make(wal_t *wal, uint64_t first_lsn, const char **what);
/* The segment just made (wal_segment_make) becomes the active one. */
void wal_segment_switch(wal_t *wal, uint64_t first_lsn);
/* The writer thread's body (arg: the wal_t). */
void *wal_writer_main(void *arg);
/* The reaper thread's body (arg: the wal_t): deletes the segments a checkpoint covers
 * (wal_truncate_before) and fills the spare with zeros (wal_spare_zero_request), both off the
 * writer thread; after wal->stop it does the truncation pending, abandons a fill, and returns. */
void *wal_reaper_main(void *arg);
/* The wake handle's callback (loop thread): deliver what the writer published. */
void wal_wake_cb(uv_poll_t *handle, int status, int events);
/* Free the wal_t and its buffers (its threads and handle are gone). */
void wal_free(wal_t *wal);
/* The close callback of the wake handle and the linger timer: the last one frees the wal_t,
 * then runs closed_cb. */
void wal_handle_closed_cb(uv_handle_t *handle);
/* The linger timer's callback (loop thread): the lingering batch goes now. */
void wal_linger_cb(uv_poll_t *handle, int status, int events);

#endif
