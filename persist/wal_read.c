/* wal_read.c - reading the WAL: segment files mapped and checked whole, replay, and the
 * read-ahead thread that checks the next segments while the checkpoint loads (format at the top
 * of wal_format.c). */
#include "wal_private.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/byte_order.h"
#include "core/errors.h"
#include "fault.h"

/* ---- reading a segment file ------------------------------------------------------------ */

/* Map a whole segment file read-only and fault every page in now (reading it from disk if
 * needed): no copy, and replay's thread takes no page fault later. NULL when any step fails
 * (a kernel before 5.14 lacks MADV_POPULATE_READ; an I/O error): the caller then reads the
 * file with pread, which reports errors as usual. The files are never truncated while mapped
 * (replay runs before wal_open; nothing else writes the directory). */
static uint8_t *wal_file_map(int fd, uint64_t bytes)
{
    void *map = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return NULL;
    (void)madvise(map, bytes, MADV_SEQUENTIAL); /* read-ahead for a cold cache */
    if (persist_map_populate(map, bytes) != 0) {
        munmap(map, bytes);
        return NULL;
    }
    return map;
}

/* Read the whole file at path: mapped (*mapped) or into a malloc'ed buffer. */
static int wal_file_read(const char *path, uint8_t **data, uint64_t *bytes, bool *mapped,
                         char *message, size_t message_bytes)
{
    *data = NULL;
    *mapped = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        wal_message_set(message, message_bytes, "wal: cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return ALLOT_EIO;
    }
    if (st.st_size < (off_t)WAL_SEGMENT_HEADER_BYTES || st.st_size > (off_t)WAL_SEGMENT_BYTES_MAX) {
        wal_message_set(message, message_bytes, "wal: %s has an impossible size (%lld bytes)", path,
                        (long long)st.st_size);
        close(fd);
        return ALLOT_ECORRUPT;
    }
    *bytes = (uint64_t)st.st_size;
    *data = wal_file_map(fd, *bytes);
    if (*data != NULL) {
        *mapped = true;
        close(fd);
        return 0;
    }
    *data = malloc(*bytes);
    if (*data == NULL) {
        close(fd);
        return ALLOT_ENOMEM;
    }
    uint64_t done = 0;
    while (done < *bytes) {
        ssize_t n = pread(fd, *data + done, *bytes - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            wal_message_set(message, message_bytes, "wal: cannot read %s at offset %" PRIu64 ": %s",
                            path, done, n < 0 ? strerror(errno) : "file shrank");
            free(*data);
            *data = NULL;
            close(fd);
            return ALLOT_EIO;
        }
        done += (uint64_t)n;
    }
    assert(done == *bytes);
    close(fd);
    return 0;
}

/* ---- checking one segment -------------------------------------------------------------- */

/* One past the last nonzero byte of data[from, to), or from when they are all zero. Looks at
 * 64 bytes per step: the unused tail of a segment is megabytes of zeros. */
static uint64_t wal_nonzero_end(const uint8_t *data, uint64_t from, uint64_t to)
{
    assert(from <= to);
    while (to - from >= 64) {
        uint64_t words[8];
        memcpy(words, data + to - 64, sizeof words);
        uint64_t any = 0;
        for (int i = 0; i < 8; i++)
            any |= words[i];
        if (any != 0)
            break;
        to -= 64;
    }
    while (to > from && data[to - 1] == 0)
        to--;
    return to;
}

/* True when a valid record with LSN lsn starts somewhere after offset `from`. */
static bool wal_scan_finds_record(const wal_scan_t *scan, uint64_t from, uint64_t lsn)
{
    uint8_t pattern[8];
    allot_u64_store_le(pattern, lsn);
    uint64_t pos = from + 1 + 4;
    while (pos + 8 <= scan->bytes) {
        const uint8_t *hit = memmem(scan->data + pos, scan->bytes - pos, pattern, 8);
        if (hit == NULL)
            return false;
        uint64_t start = (uint64_t)(hit - scan->data) - 4;
        wal_record_t record;
        const char *reason;
        if (wal_record_decode(scan->data + start, scan->bytes - start, &record, &reason) == 1 &&
            record.lsn == lsn)
            return true;
        pos = (uint64_t)(hit - scan->data) + 1;
    }
    return false;
}

/* Classify what stops the scan at end_offset: clean end, torn tail, or corruption. */
static int wal_scan_classify_end(wal_scan_t *scan, int decoded)
{
    uint64_t off = scan->end_offset;
    if (scan->last_lsn < scan->header.synced_lsn) { /* the expected LSN had been made durable */
        scan->reason = decoded == 0 ? "records up to the segment header's synced LSN are missing"
                                    : "damaged record at or before the segment header's synced "
                                      "LSN (it had been made durable)";
        return ALLOT_ECORRUPT;
    }
    uint64_t nonzero_end = wal_nonzero_end(scan->data, off, scan->bytes);
    if (decoded == 0 && nonzero_end == off)
        return 0;
    bool follows = wal_scan_finds_record(scan, off, scan->last_lsn + 2);
    if (decoded == 0 && !scan->is_last) {
        if (!follows)
            return 0; /* stray bytes in the unused tail of a full segment: harmless */
        scan->reason = "zeroed record followed by valid records";
        return ALLOT_ECORRUPT;
    }
    if (decoded < 0 && (!scan->is_last || follows))
        return ALLOT_ECORRUPT;
    assert(nonzero_end > off);
    scan->torn = true;
    scan->torn_bytes = nonzero_end - off;
    return 0;
}

/* Check every record of a segment (lengths, CRCs, LSN sequence) and classify its end. Calls
 * nothing: replay walks the records found valid afterwards (wal_segment_replay). */
static int wal_segment_scan(wal_scan_t *scan)
{
    assert(scan->bytes >= scan->header.header_bytes);
    uint64_t off = scan->header.header_bytes;
    uint64_t expected = scan->first_lsn;
    int decoded;
    for (;;) {
        wal_record_t record;
        decoded = wal_record_decode(scan->data + off, scan->bytes - off, &record, &scan->reason);
        if (decoded == 1 && record.lsn != expected) {
            decoded = ALLOT_ECORRUPT;
            scan->reason = "LSN out of sequence";
        }
        if (decoded != 1)
            break;
        assert(off + record.record_bytes <= scan->bytes);
        scan->records_checked++;
        off += record.record_bytes;
        expected++;
    }
    scan->end_offset = off;
    scan->last_lsn = expected - 1;
    return wal_scan_classify_end(scan, decoded);
}

void wal_loaded_free(wal_loaded_t *loaded)
{
    if (loaded->mapped && loaded->data != NULL)
        munmap(loaded->data, loaded->scan.bytes);
    else
        free(loaded->data);
    loaded->data = NULL;
    loaded->scan.data = NULL;
}

/* A header that looked bad, read and checked once more: a reader beside the server (allot-wal)
 * can catch the writer rewriting it in place. NULL when it is good now, else `problem`. */
static const char *wal_segment_header_reread(const char *path, uint64_t bytes, uint64_t first_lsn,
                                             wal_header_t *out, const char *problem)
{
    uint8_t header[WAL_SEGMENT_HEADER_BYTES];
    uint64_t n = bytes < sizeof header ? bytes : sizeof header;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool read_whole = fd >= 0 && pread(fd, header, n, 0) == (ssize_t)n;
    if (fd >= 0)
        close(fd);
    if (!read_whole || n < WAL_SEGMENT_HEADER_BYTES_V1)
        return problem;
    return wal_segment_header_check(header, n, first_lsn, out) == NULL ? NULL : problem;
}

/* Read, check the header of, and check every record of one segment file (the read-ahead
 * thread, or replay and wal_open themselves). The data is kept even when a record is bad:
 * the valid records before it are still replayed. */
void wal_segment_load(const char *dir, const wal_segment_entry_t *segment, bool is_last,
                      wal_loaded_t *out)
{
    char path[WAL_PATH_BYTES_MAX];
    wal_segment_path(path, dir, segment->name);
    *out = (wal_loaded_t){.scan = {.first_lsn = segment->first_lsn,
                                   .is_last = is_last,
                                   .last_lsn = segment->first_lsn - 1}};
    uint64_t bytes = 0;
    out->rc =
        wal_file_read(path, &out->data, &bytes, &out->mapped, out->message, sizeof out->message);
    if (out->rc == ALLOT_ECORRUPT)
        out->scan.reason = "segment file shorter than its header or over the size limit";
    if (out->rc < 0)
        return;
    out->scan.data = out->data;
    out->scan.bytes = bytes;
    const char *header_problem =
        wal_segment_header_check(out->data, bytes, segment->first_lsn, &out->scan.header);
    if (header_problem != NULL) /* the writer of a live log may have been rewriting it */
        header_problem = wal_segment_header_reread(path, bytes, segment->first_lsn,
                                                   &out->scan.header, header_problem);
    if (header_problem != NULL) {
        out->scan.reason = header_problem;
        out->scan.header_bad = true;
        out->rc = ALLOT_ECORRUPT;
        return;
    }
    out->rc = wal_segment_scan(&out->scan);
    assert(out->scan.last_lsn + 1 - segment->first_lsn == out->scan.records_checked);
    if (out->scan.header.version != WAL_FORMAT_VERSION_V1 &&
        bytes != out->scan.header.segment_bytes) {
        /* truncated or extended (what explains a bad record there best): the records found
         * are replayed, then it is damage */
        out->scan.reason = "segment file size differs from its header (truncated or extended)";
        out->scan.torn = false;
        out->rc = ALLOT_ECORRUPT;
    }
}

/* Where a segment's valid records end. */
wal_log_end_t wal_log_end_of(const wal_scan_t *scan)
{
    return (wal_log_end_t){.segment_first_lsn = scan->first_lsn,
                           .segment_bytes = scan->bytes,
                           .offset = scan->end_offset,
                           .torn_bytes = scan->torn ? scan->torn_bytes : 0,
                           .last_lsn = scan->last_lsn,
                           .synced_lsn = scan->header.synced_lsn,
                           .version = scan->header.version,
                           .header_damaged = scan->header_bad};
}

/* ---- replay ---------------------------------------------------------------------------- */

typedef struct wal_replay_args {
    uint64_t after_lsn;
    wal_record_cb record_cb;
    wal_segment_done_cb segment_done_cb;
    void *ctx;
} wal_replay_args_t;

/* Where replay stopped because a callback failed. */
typedef struct wal_replay_stop {
    uint64_t offset;
    uint64_t lsn;
    const char *reason;
} wal_replay_stop_t;

/* Pass the valid records of a loaded segment with LSN > after_lsn to record_cb, then call
 * segment_done_cb if any was. They were all checked by wal_segment_load: only the header
 * fields are read here. 0, or what a callback returned (*stop says where). */
static int wal_segment_replay(const wal_loaded_t *loaded, const wal_replay_args_t *args,
                              wal_replay_result_t *result, wal_replay_stop_t *stop)
{
    const wal_scan_t *scan = &loaded->scan;
    uint64_t off = scan->header.header_bytes;
    uint64_t replayed = 0;
    for (uint64_t i = 0; i < scan->records_checked; i++) {
        const uint8_t *record = scan->data + off;
        uint64_t lsn = scan->first_lsn + i;
        uint32_t payload_bytes = allot_u32_load_le(record);
        assert(allot_u64_load_le(record + 4) == lsn);
        assert(off + payload_bytes + WAL_RECORD_OVERHEAD_BYTES <= scan->end_offset);
        result->records_checked++;
        if (lsn > args->after_lsn && args->record_cb != NULL) {
            int rc = args->record_cb(args->ctx, lsn, (int64_t)allot_u64_load_le(record + 12),
                                     record[20], record + WAL_RECORD_HEADER_BYTES, payload_bytes);
            if (rc != 0) {
                *stop = (wal_replay_stop_t){off, lsn, "record_cb could not apply the record"};
                return rc;
            }
            replayed++;
        }
        off += payload_bytes + WAL_RECORD_OVERHEAD_BYTES;
    }
    assert(off == scan->end_offset || scan->records_checked == 0);
    result->records_replayed += replayed;
    if (args->segment_done_cb == NULL || replayed == 0)
        return 0;
    *stop = (wal_replay_stop_t){scan->end_offset, scan->last_lsn + 1,
                                "segment_done_cb could not apply a record of this segment"};
    return args->segment_done_cb(args->ctx);
}

static int wal_replay_corrupt(wal_replay_result_t *result, const char *path, uint64_t offset,
                              uint64_t lsn, const char *reason, char *message, size_t message_bytes)
{
    snprintf(result->bad_file, sizeof result->bad_file, "%s", path);
    result->bad_offset = offset;
    result->bad_lsn = lsn;
    wal_message_set(message, message_bytes,
                    "wal: the log is damaged or incomplete at %s offset %" PRIu64 " (LSN %" PRIu64
                    " expected): %s",
                    path, offset, lsn, reason);
    return ALLOT_ECORRUPT;
}

/* ---- read-ahead: the segments replay will need, read and checked on a second thread ----- */

struct wal_preload {
    char dir[WAL_PATH_BYTES_MAX];
    wal_segment_entry_t *segments; /* sorted by first LSN; listed by wal_preload_start */
    size_t count;
    int list_rc; /* listing failure, reported by replay */
    char list_message[WAL_MESSAGE_BYTES_MAX];
    size_t window; /* segment i lives in slots[i % window] from loaded to released */
    bool threaded; /* false: replay loads each segment itself (wal_replay, or no thread) */
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* loaded or released advanced, or stop was set */
    /* Under mutex. The slot of a segment in [released, loaded) belongs to replay, the slot
     * of segment `loaded` to the reader while it reads; it publishes by advancing loaded. */
    size_t loaded;   /* segments [0, loaded) are in their slots (or were skipped: covered) */
    size_t released; /* segments [0, released) are done; their slots are free */
    bool stop;
    bool after_lsn_known;
    uint64_t after_lsn;
    int end_rc; /* wal-end, read before the listing: 1 (end_lsn), 0 absent, ALLOT_ECORRUPT */
    uint64_t end_lsn;
    bool accept_loss; /* wal_preload_accept_loss */
    wal_loaded_t slots[WAL_PRELOAD_SEGMENTS_MAX];
};

/* True when every record of segment i is <= after_lsn: a later segment starts by after_lsn+1. */
static bool wal_segment_covered(const wal_preload_t *p, size_t i, uint64_t after_lsn)
{
    return i + 1 < p->count && p->segments[i + 1].first_lsn <= after_lsn + 1;
}

/* The reader asks the kernel to read WAL_PRELOAD_ADVISE_AHEAD segments ahead of the one it
 * loads (posix_fadvise WILLNEED): after a while idle, part of the log may have left the page
 * cache; this way the disk reads them while earlier segments are checked and replayed. */

static void wal_segment_advise(const char *dir, const wal_segment_entry_t *segment)
{
    char path[WAL_PATH_BYTES_MAX];
    wal_segment_path(path, dir, segment->name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* best effort: the load reports what is wrong with it */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    close(fd);
}

/* The reader thread: load segments in order while the window has room. */
static void *wal_preload_main(void *arg)
{
    wal_preload_t *p = arg;
    pthread_setname_np(pthread_self(), "allot-preload"); /* its name in ps -L, perf, traces */
    for (size_t i = 0; i < p->count && i < WAL_PRELOAD_ADVISE_AHEAD; i++)
        wal_segment_advise(p->dir, &p->segments[i]);
    for (size_t i = 0; i < p->count; i++) {
        if (i + WAL_PRELOAD_ADVISE_AHEAD < p->count)
            wal_segment_advise(p->dir, &p->segments[i + WAL_PRELOAD_ADVISE_AHEAD]);
        pthread_mutex_lock(&p->mutex);
        while (!p->stop && i >= p->released + p->window)
            pthread_cond_wait(&p->cond, &p->mutex);
        bool stop = p->stop;
        bool covered = p->after_lsn_known && wal_segment_covered(p, i, p->after_lsn);
        pthread_mutex_unlock(&p->mutex);
        if (stop)
            break;
        wal_loaded_t *slot = &p->slots[i % p->window];
        if (covered)
            *slot = (wal_loaded_t){.rc = 0};
        else
            wal_segment_load(p->dir, &p->segments[i], i + 1 == p->count, slot);
        pthread_mutex_lock(&p->mutex);
        p->loaded = i + 1;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->mutex);
    }
    return NULL;
}

/* List dir; nothing is read yet. Listing errors are kept for replay to report. */
static int wal_preload_create(const char *dir, uint32_t window_segments, wal_preload_t **out)
{
    *out = NULL;
    if (dir == NULL || window_segments < 1 || window_segments > WAL_PRELOAD_SEGMENTS_MAX)
        return ALLOT_EINVALID_ARGUMENT;
    wal_preload_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ALLOT_ENOMEM;
    p->window = window_segments;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (strlen(dir) + WAL_SEGMENT_NAME_BYTES + 2 > WAL_PATH_BYTES_MAX) {
        p->list_rc = ALLOT_EINVALID_ARGUMENT;
        snprintf(p->list_message, sizeof p->list_message, "wal: directory path too long");
    } else {
        snprintf(p->dir, sizeof p->dir, "%s", dir);
        /* wal-end first: a segment made meanwhile (a live log) is then listed too */
        p->end_rc = wal_end_read(dir, &p->end_lsn, p->list_message, sizeof p->list_message);
        p->list_rc = p->end_rc == ALLOT_EIO
                         ? ALLOT_EIO
                         : wal_segments_list(dir, &p->segments, &p->count, p->list_message,
                                             sizeof p->list_message);
        if (p->list_rc == 0)
            p->list_message[0] = '\0'; /* a missing directory is an empty log */
    }
    *out = p;
    return 0;
}

int wal_preload_start(const char *dir, uint32_t window_segments, wal_preload_t **out)
{
    int rc = wal_preload_create(dir, window_segments, out);
    if (rc != 0)
        return rc;
    wal_preload_t *p = *out;
    if (p->list_rc == 0 && p->count > 0)
        p->threaded = pthread_create(&p->thread, NULL, wal_preload_main, p) == 0;
    return 0; /* without the thread replay reads each segment itself */
}

void wal_preload_accept_loss(wal_preload_t *p)
{
    p->accept_loss = true;
}

void wal_preload_cancel(wal_preload_t *p)
{
    if (p == NULL)
        return;
    if (p->threaded) {
        pthread_mutex_lock(&p->mutex);
        p->stop = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->mutex);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = p->released; i < p->loaded; i++)
        wal_loaded_free(&p->slots[i % p->window]);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->cond);
    free(p->segments);
    free(p);
}

/* Replay: segment i (the next one, in order, not covered), read and checked. */
static const wal_loaded_t *wal_preload_take(wal_preload_t *p, size_t i)
{
    assert(i == p->released);
    wal_loaded_t *slot = &p->slots[i % p->window];
    if (!p->threaded) {
        wal_segment_load(p->dir, &p->segments[i], i + 1 == p->count, slot);
        p->loaded = i + 1;
        return slot;
    }
    pthread_mutex_lock(&p->mutex);
    while (p->loaded <= i)
        pthread_cond_wait(&p->cond, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
    assert(slot->data != NULL || slot->rc != 0);
    return slot;
}

/* Replay: done with segment i; free its buffer and give its slot back to the reader. */
static void wal_preload_release(wal_preload_t *p, size_t i)
{
    assert(i == p->released);
    pthread_mutex_lock(&p->mutex);
    while (p->threaded && p->loaded <= i) /* a covered segment the reader had started */
        pthread_cond_wait(&p->cond, &p->mutex);
    if (p->loaded > i)
        wal_loaded_free(&p->slots[i % p->window]);
    p->released = i + 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mutex);
}

/* The operator accepts the loss (wal_preload_accept_loss): name the damage as the error would
 * have (bad_*, loss_message) and end the log at `end` (cut: wal_open drops what follows). */
static void wal_replay_accept(wal_replay_result_t *result, const char *path, uint64_t offset,
                              uint64_t lsn, const char *reason, wal_log_end_t end)
{
    wal_replay_corrupt(result, path, offset, lsn, reason, result->loss_message,
                       sizeof result->loss_message);
    result->data_loss = true;
    result->end = end;
    result->end.cut = true;
}

/* Replay segment i taken from the preload; 0 (*end: where its valid records end), a callback's
 * return, or ALLOT_E* (message). Damage in the segment is ALLOT_ECORRUPT, or with accepted loss
 * 0 with result->data_loss set (the log ends in this segment). */
static int wal_replay_segment(wal_preload_t *p, size_t i, const wal_replay_args_t *args,
                              wal_replay_result_t *result, wal_log_end_t *end, char *message,
                              size_t message_bytes)
{
    char path[WAL_PATH_BYTES_MAX];
    wal_segment_path(path, p->dir, p->segments[i].name);
    const wal_loaded_t *loaded = wal_preload_take(p, i);
    wal_replay_stop_t stop;
    int rc = wal_segment_replay(loaded, args, result, &stop);
    if (rc == ALLOT_ECORRUPT) /* the state refused a record: say which (never accepted) */
        return wal_replay_corrupt(result, path, stop.offset, stop.lsn, stop.reason, message,
                                  message_bytes);
    if (rc != 0)
        return rc;
    const wal_scan_t *scan = &loaded->scan;
    *end = wal_log_end_of(scan);
    if (loaded->rc == ALLOT_ECORRUPT && p->accept_loss) {
        wal_replay_accept(result, path, scan->end_offset, scan->last_lsn + 1, scan->reason, *end);
    } else if (loaded->rc == ALLOT_ECORRUPT) {
        return wal_replay_corrupt(result, path, scan->end_offset, scan->last_lsn + 1, scan->reason,
                                  message, message_bytes);
    } else if (loaded->rc < 0) {
        snprintf(message, message_bytes, "%s", loaded->message);
        return loaded->rc;
    } else if (scan->is_last) {
        result->end = *end;
        if (scan->torn) {
            result->tail_truncated = true;
            snprintf(result->tail_file, sizeof result->tail_file, "%s", path);
            result->tail_offset = scan->end_offset;
            result->tail_bytes = scan->torn_bytes;
        }
    }
    wal_preload_release(p, i);
    return 0;
}

/* Damage found before (or instead of) a segment: ALLOT_ECORRUPT naming file (a segment name
 * in dir), offset and LSN, or with accepted loss 0 and the log cut at `end`. */
static int wal_replay_gap(wal_preload_t *p, const char *name, uint64_t offset, uint64_t lsn,
                          const char *reason, wal_log_end_t end, wal_replay_result_t *result,
                          char *message, size_t message_bytes)
{
    char path[WAL_PATH_BYTES_MAX];
    wal_segment_path(path, p->dir, name);
    if (!p->accept_loss)
        return wal_replay_corrupt(result, path, offset, lsn, reason, message, message_bytes);
    wal_replay_accept(result, path, offset, lsn, reason, end);
    return 0;
}

/* What is missing at the end of the log: the newest segment present is older than the one
 * wal-end names (newest segments deleted), or there is no segment although the checkpoint
 * covers LSNs or wal-end names one (the log deleted). NULL when nothing is; *name and *lsn
 * say what to report. */
static const char *wal_log_missing(const wal_preload_t *p, uint64_t after_lsn, char *name,
                                   uint64_t *lsn)
{
    if (p->end_rc == 1 && (p->count == 0 || p->segments[p->count - 1].first_lsn < p->end_lsn)) {
        snprintf(name, WAL_SEGMENT_NAME_BYTES + 1, "wal-%016" PRIx64 ".log", p->end_lsn);
        *lsn = p->end_lsn;
        return "the newest segment (named by wal-end) is missing: the log was deleted past "
               "this LSN";
    }
    if (p->count == 0 && after_lsn > 0) {
        snprintf(name, WAL_SEGMENT_NAME_BYTES + 1, "%s", WAL_END_FILE_NAME);
        *lsn = after_lsn + 1;
        return "no segment although the checkpoint covers LSNs: the log was deleted";
    }
    return NULL;
}

/* wal-end itself: required beside a version 2 newest segment (written before it took a
 * record), and never damaged. NULL when fine. */
static const char *wal_end_problem(const wal_preload_t *p, const wal_log_end_t *newest)
{
    if (p->end_rc == ALLOT_ECORRUPT)
        return "wal-end is damaged: cannot tell whether newer segments were deleted";
    if (p->end_rc == 0 && newest->version != WAL_FORMAT_VERSION_V1 && newest->version != 0)
        return "wal-end is missing: cannot tell whether newer segments were deleted";
    return NULL;
}

/* Before replaying: the end of the log is missing, or it starts after the first LSN needed.
 * Returns 0 to go on (*skip_all: accepted loss of every segment), or ALLOT_ECORRUPT. A missing
 * end with accepted loss is noted after replay (*end_missing). */
static int wal_replay_starts(wal_preload_t *p, const wal_replay_args_t *args,
                             wal_replay_result_t *result, bool *skip_all, const char **end_missing,
                             char *message, size_t message_bytes)
{
    char name[WAL_SEGMENT_NAME_BYTES + 1];
    uint64_t lsn = 0;
    const char *missing = wal_log_missing(p, args->after_lsn, name, &lsn);
    *skip_all = false;
    *end_missing = NULL;
    if (missing != NULL && (!p->accept_loss || p->count == 0)) {
        *skip_all = true;
        return wal_replay_gap(p, name, 0, lsn, missing, (wal_log_end_t){0}, result, message,
                              message_bytes);
    }
    *end_missing = missing;
    if (p->count == 0)
        return 0;
    result->first_lsn = p->segments[0].first_lsn;
    if (p->segments[0].first_lsn > args->after_lsn + 1) {
        *skip_all = true;
        return wal_replay_gap(p, p->segments[0].name, 0, args->after_lsn + 1,
                              "the log starts after the first LSN needed", (wal_log_end_t){0},
                              result, message, message_bytes);
    }
    return 0;
}

static int wal_replay_segments(wal_preload_t *p, const wal_replay_args_t *args,
                               wal_replay_result_t *result, char *message, size_t message_bytes)
{
    bool skip_all;
    const char *end_missing;
    int rc = wal_replay_starts(p, args, result, &skip_all, &end_missing, message, message_bytes);
    if (rc != 0 || skip_all)
        return rc;
    const wal_segment_entry_t *segments = p->segments;
    uint64_t expected = p->count > 0 ? segments[0].first_lsn : args->after_lsn + 1;
    wal_log_end_t end = {0};
    for (size_t i = 0; i < p->count && !result->data_loss; i++) {
        if (segments[i].first_lsn != expected) /* end: the previous (replayed) segment's */
            return wal_replay_gap(p, segments[i].name, 0, expected,
                                  "LSN gap: segment does not start where the previous ended", end,
                                  result, message, message_bytes);
        if (wal_segment_covered(p, i, args->after_lsn)) {
            wal_preload_release(p, i);
            expected = segments[i + 1].first_lsn; /* fully covered by the checkpoint */
            continue;
        }
        rc = wal_replay_segment(p, i, args, result, &end, message, message_bytes);
        if (rc != 0)
            return rc;
        expected = end.last_lsn + 1;
    }
    result->last_lsn = expected - 1 > args->after_lsn ? expected - 1 : args->after_lsn;
    if (result->data_loss)
        return 0;
    char path[WAL_PATH_BYTES_MAX];
    const char *problem = end_missing != NULL ? end_missing : wal_end_problem(p, &end);
    if (problem == NULL)
        return 0;
    wal_segment_path(path, p->dir, WAL_END_FILE_NAME);
    if (!p->accept_loss)
        return wal_replay_corrupt(result, path, 0, expected, problem, message, message_bytes);
    wal_replay_accept(result, path, 0, expected, problem, end);
    return 0;
}

int wal_replay_preloaded(wal_preload_t *preload, uint64_t after_lsn, wal_record_cb record_cb,
                         wal_segment_done_cb segment_done_cb, void *ctx,
                         wal_replay_result_t *result, char *error_message,
                         size_t error_message_bytes)
{
    assert(preload != NULL && result != NULL);
    assert(error_message != NULL || error_message_bytes == 0);
    memset(result, 0, sizeof *result);
    result->last_lsn = after_lsn;
    pthread_mutex_lock(&preload->mutex);
    preload->after_lsn = after_lsn; /* from now on the reader skips covered segments */
    preload->after_lsn_known = true;
    pthread_mutex_unlock(&preload->mutex);
    if (error_message_bytes > 0)
        snprintf(error_message, error_message_bytes, "%s", preload->list_message);
    result->segments = (uint32_t)preload->count;
    int rc = preload->list_rc;
    if (rc == 0) {
        wal_replay_args_t args = {.after_lsn = after_lsn,
                                  .record_cb = record_cb,
                                  .segment_done_cb = segment_done_cb,
                                  .ctx = ctx};
        rc = wal_replay_segments(preload, &args, result, error_message, error_message_bytes);
    }
    wal_preload_cancel(preload);
    return rc;
}

int wal_replay(const char *dir, uint64_t after_lsn, wal_record_cb record_cb, void *ctx,
               wal_replay_result_t *result, char *error_message, size_t error_message_bytes)
{
    return wal_replay_segmented(dir, after_lsn, record_cb, NULL, ctx, result, error_message,
                                error_message_bytes);
}

int wal_replay_segmented(const char *dir, uint64_t after_lsn, wal_record_cb record_cb,
                         wal_segment_done_cb segment_done_cb, void *ctx,
                         wal_replay_result_t *result, char *error_message,
                         size_t error_message_bytes)
{
    assert(dir != NULL && result != NULL);
    wal_preload_t *preload = NULL; /* no thread: each segment is read when replay reaches it */
    int rc = wal_preload_create(dir, 1, &preload);
    if (rc != 0) {
        memset(result, 0, sizeof *result);
        result->last_lsn = after_lsn;
        if (error_message_bytes > 0)
            error_message[0] = '\0';
        return rc;
    }
    return wal_replay_preloaded(preload, after_lsn, record_cb, segment_done_cb, ctx, result,
                                error_message, error_message_bytes);
}
