/* wal.c - write-ahead log: segment files, record format, group commit writer thread, replay.
 *
 * ON-DISK FORMAT (version 1). All integers little-endian. CRC is CRC-32C (persist/crc32c.h).
 *
 * The WAL directory holds segment files named "wal-%016" PRIx64 ".log" after the LSN of their
 * first record (lowercase hex), plus at most one "wal-spare.tmp": the next segment, already
 * preallocated, which becomes "wal-<lsn>.log" (header written and fdatasync'ed, rename,
 * directory fsync) when the active segment is full. Every segment is preallocated to its final
 * size with fallocate(fd, 0, 0, bytes) (zero-filled; written zeros where the file system lacks
 * fallocate), so running out of disk shows when a segment is allocated, never mid-write, and
 * the unused tail of a segment reads as zeros.
 *
 * Segment header, 32 bytes at offset 0:
 *     0   8  magic "ALLOTWAL" (41 4C 4C 4F 54 57 41 4C)
 *     8   4  format version (1)
 *    12   4  header bytes (32)
 *    16   8  first LSN: LSN of the first record of this segment (= the file name)
 *    24   4  zero (reserved)
 *    28   4  CRC of bytes 0..27
 *
 * Records follow back to back from offset 32, unpadded:
 *     0   4  P = payload bytes, 0 <= P <= ALLOT_WAL_RECORD_BYTES_MAX
 *     4   8  LSN, >= 1, exactly one more than the previous record's (across segments too)
 *    12   8  time in ms since the Unix epoch (int64) when the loop produced the record
 *    20   1  type (owned by the caller: core's event record type)
 *    21   P  payload
 *  21+P   4  CRC of bytes 0 .. 20+P (header and payload)
 * A record is never split across segments: when it does not fit in the rest of the active
 * segment, the writer moves to the next segment and leaves the rest zero.
 *
 * VALIDITY. Reading a segment from offset 32 with the expected LSN E (the header's first LSN):
 *   - if the 12 bytes at the offset (length and LSN) are all zero, or fewer than 12 bytes are
 *     left and they are all zero: end of the records of this segment;
 *   - otherwise the record is valid iff its 21-byte header is inside the file, P is within the
 *     limit, the whole record is inside the file, LSN == E, and the CRC matches. Then E += 1.
 *   - anything else is a bad record.
 * Across segments: the first segment must start at or before the first LSN needed
 * (checkpoint LSN + 1) and each next segment's first LSN must equal the previous last LSN + 1.
 * A bad record is a TORN TAIL (cut off, not an error) only when it is in the newest segment and
 * no valid record with LSN E + 1 appears after it in that segment; so is a zero header followed
 * by nonzero bytes in the newest segment (pages of an unsynced write that reached the disk out
 * of order). A torn tail is zeroed by wal_open up to its last nonzero byte and appending
 * continues at its offset. Every other bad record, and every LSN gap, is corruption: start-up
 * stops with the file, offset and expected LSN. Consequence worth knowing: damage to the very
 * last record of the newest segment cannot be told from a torn write and is cut off.
 */
#include "wal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "crc32c.h"
#include "fault.h"

#define WAL_MAGIC                 "ALLOTWAL"
#define WAL_SPARE_NAME            "wal-spare.tmp"
#define WAL_SEGMENT_NAME_BYTES    24 /* "wal-" + 16 hex + ".log" */
#define WAL_ZERO_CHUNK_BYTES      (64u * 1024)
#define WAL_FSYNC_INTERVAL_MS_MAX 60000u

static const uint8_t wal_zeros[WAL_ZERO_CHUNK_BYTES];

/* ---- little-endian helpers ------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static bool bytes_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- records and segment headers ------------------------------------------------------- */

size_t wal_record_encode(uint8_t *out, size_t out_bytes, uint64_t lsn, int64_t time_ms,
                         uint8_t type, const void *payload, size_t len)
{
    assert(len <= ALLOT_WAL_RECORD_BYTES_MAX);
    assert(out_bytes >= len + WAL_RECORD_OVERHEAD_BYTES);
    assert(lsn >= 1);
    put_u32(out, (uint32_t)len);
    put_u64(out + 4, lsn);
    put_u64(out + 12, (uint64_t)time_ms);
    out[20] = type;
    if (len > 0)
        memcpy(out + WAL_RECORD_HEADER_BYTES, payload, len);
    uint32_t crc = crc32c_extend(0, out, WAL_RECORD_HEADER_BYTES + len);
    put_u32(out + WAL_RECORD_HEADER_BYTES + len, crc);
    return WAL_RECORD_OVERHEAD_BYTES + len;
}

int wal_record_decode(const uint8_t *buf, size_t bytes, wal_record_t *out, const char **reason)
{
    assert(buf != NULL || bytes == 0);
    *reason = NULL;
    if (bytes < 12)
        return bytes_all_zero(buf, bytes) ? 0
                                          : (*reason = "truncated record header", ALLOT_ECORRUPT);
    if (bytes_all_zero(buf, 12))
        return 0;
    if (bytes < WAL_RECORD_HEADER_BYTES)
        return *reason = "truncated record header", ALLOT_ECORRUPT;
    uint32_t payload_bytes = get_u32(buf);
    if (payload_bytes > ALLOT_WAL_RECORD_BYTES_MAX)
        return *reason = "record length over the limit", ALLOT_ECORRUPT;
    size_t record_bytes = (size_t)payload_bytes + WAL_RECORD_OVERHEAD_BYTES;
    if (record_bytes > bytes)
        return *reason = "record runs past the end of the segment", ALLOT_ECORRUPT;
    uint64_t lsn = get_u64(buf + 4);
    if (lsn == 0)
        return *reason = "record with LSN 0", ALLOT_ECORRUPT;
    uint32_t crc = crc32c_extend(0, buf, WAL_RECORD_HEADER_BYTES + payload_bytes);
    if (crc != get_u32(buf + WAL_RECORD_HEADER_BYTES + payload_bytes))
        return *reason = "checksum mismatch", ALLOT_ECORRUPT;
    *out = (wal_record_t){.lsn = lsn,
                          .time_ms = (int64_t)get_u64(buf + 12),
                          .type = buf[20],
                          .payload_bytes = payload_bytes,
                          .payload = buf + WAL_RECORD_HEADER_BYTES,
                          .record_bytes = (uint32_t)record_bytes};
    return 1;
}

static void wal_segment_header_encode(uint8_t out[WAL_SEGMENT_HEADER_BYTES], uint64_t first_lsn)
{
    memset(out, 0, WAL_SEGMENT_HEADER_BYTES);
    memcpy(out, WAL_MAGIC, 8);
    put_u32(out + 8, WAL_FORMAT_VERSION);
    put_u32(out + 12, WAL_SEGMENT_HEADER_BYTES);
    put_u64(out + 16, first_lsn);
    put_u32(out + 28, crc32c_extend(0, out, 28));
}

/* NULL when valid, else the reason. */
static const char *wal_segment_header_check(const uint8_t *header, uint64_t first_lsn)
{
    if (memcmp(header, WAL_MAGIC, 8) != 0)
        return "not a WAL segment (bad magic)";
    if (get_u32(header + 28) != crc32c_extend(0, header, 28))
        return "segment header checksum mismatch";
    if (get_u32(header + 8) != WAL_FORMAT_VERSION)
        return "unsupported segment format version";
    if (get_u32(header + 12) != WAL_SEGMENT_HEADER_BYTES)
        return "unexpected segment header size";
    if (get_u64(header + 16) != first_lsn)
        return "segment header first LSN differs from the file name";
    return NULL;
}

/* ---- directory listing and file reading ------------------------------------------------- */

typedef struct wal_segment_entry {
    uint64_t first_lsn;
    char name[WAL_SEGMENT_NAME_BYTES + 1];
} wal_segment_entry_t;

static bool wal_segment_name_parse(const char *name, uint64_t *first_lsn)
{
    if (strlen(name) != WAL_SEGMENT_NAME_BYTES || memcmp(name, "wal-", 4) != 0 ||
        memcmp(name + 20, ".log", 4) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        if (c >= '0' && c <= '9')
            v = (v << 4) | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = (v << 4) | (uint64_t)(c - 'a' + 10);
        else
            return false;
    }
    *first_lsn = v;
    return v >= 1;
}

static int wal_segment_entry_compare(const void *a, const void *b)
{
    uint64_t x = ((const wal_segment_entry_t *)a)->first_lsn;
    uint64_t y = ((const wal_segment_entry_t *)b)->first_lsn;
    return x < y ? -1 : x > y;
}

/* The segments of dir sorted by first LSN (*out malloc'ed, NULL when none). */
static int wal_segments_list(const char *dir, wal_segment_entry_t **out, size_t *count,
                             char *message, size_t message_bytes)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(message, message_bytes, "wal: cannot open directory %s: %s", dir, strerror(errno));
        return errno == ENOENT ? 0 : ALLOT_EIO;
    }
    size_t capacity = 0;
    int rc = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        uint64_t first_lsn;
        if (!wal_segment_name_parse(e->d_name, &first_lsn))
            continue;
        if (*count == WAL_SEGMENTS_MAX) {
            snprintf(message, message_bytes, "wal: more than %u segments in %s", WAL_SEGMENTS_MAX,
                     dir);
            rc = ALLOT_ECORRUPT;
            break;
        }
        if (*count == capacity) {
            capacity = capacity == 0 ? 16 : capacity * 2;
            wal_segment_entry_t *grown = realloc(*out, capacity * sizeof **out);
            if (grown == NULL) {
                rc = ALLOT_ENOMEM;
                break;
            }
            *out = grown;
        }
        (*out)[*count].first_lsn = first_lsn;
        memcpy((*out)[*count].name, e->d_name, WAL_SEGMENT_NAME_BYTES + 1);
        (*count)++;
    }
    closedir(d);
    if (rc == 0 && *count > 1)
        qsort(*out, *count, sizeof **out, wal_segment_entry_compare);
    return rc;
}

/* path = "<dir>/<name>"; dir was checked to leave room for a segment name. */
static void wal_segment_path(char path[WAL_PATH_BYTES_MAX], const char *dir, const char *name)
{
    int n = snprintf(path, WAL_PATH_BYTES_MAX, "%s/%s", dir, name);
    assert(n > 0 && n < (int)WAL_PATH_BYTES_MAX);
    (void)n;
}

/* An error message naming a file; a long path is cut short. */
__attribute__((format(printf, 3, 4))) static void
wal_message_set(char *message, size_t message_bytes, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(message, message_bytes, format, args);
    va_end(args);
}

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

typedef struct wal_scan {
    const uint8_t *data; /* whole segment file */
    uint64_t bytes;
    uint64_t first_lsn;
    bool is_last;
    /* out */
    uint64_t end_offset; /* just after the last valid record */
    uint64_t last_lsn;   /* first_lsn - 1 when no record */
    uint64_t records_checked;
    bool torn;
    uint64_t torn_bytes; /* from end_offset to the last nonzero byte, inclusive */
    const char *reason;  /* on ALLOT_ECORRUPT; the offset is end_offset, the LSN last_lsn+1 */
} wal_scan_t;

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
    put_u64(pattern, lsn);
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
    assert(scan->bytes >= WAL_SEGMENT_HEADER_BYTES);
    uint64_t off = WAL_SEGMENT_HEADER_BYTES;
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

/* One segment file, read and checked, waiting to be replayed. */
typedef struct wal_loaded {
    uint8_t *data; /* the whole file; NULL when not read */
    bool mapped;   /* data is a mapping of scan.bytes (else malloc'ed) */
    int rc;        /* 0; ALLOT_ECORRUPT: where and why in scan; ALLOT_EIO/ENOMEM: message */
    wal_scan_t scan;
    char message[WAL_MESSAGE_BYTES_MAX];
} wal_loaded_t;

static void wal_loaded_free(wal_loaded_t *loaded)
{
    if (loaded->mapped && loaded->data != NULL)
        munmap(loaded->data, loaded->scan.bytes);
    else
        free(loaded->data);
    loaded->data = NULL;
    loaded->scan.data = NULL;
}

/* Read, check the header of, and check every record of one segment file (the read-ahead
 * thread, or replay and wal_open themselves). The data is kept even when a record is bad:
 * the valid records before it are still replayed. */
static void wal_segment_load(const char *dir, const wal_segment_entry_t *segment, bool is_last,
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
    const char *header_problem = wal_segment_header_check(out->data, segment->first_lsn);
    if (header_problem != NULL) {
        out->scan.reason = header_problem;
        out->rc = ALLOT_ECORRUPT;
        return;
    }
    out->rc = wal_segment_scan(&out->scan);
    assert(out->scan.last_lsn + 1 - segment->first_lsn == out->scan.records_checked);
}

static wal_log_end_t wal_log_end_of(const wal_scan_t *scan)
{
    assert(scan->is_last);
    return (wal_log_end_t){.segment_first_lsn = scan->first_lsn,
                           .segment_bytes = scan->bytes,
                           .offset = scan->end_offset,
                           .torn_bytes = scan->torn ? scan->torn_bytes : 0,
                           .last_lsn = scan->last_lsn};
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
    uint64_t off = WAL_SEGMENT_HEADER_BYTES;
    uint64_t replayed = 0;
    for (uint64_t i = 0; i < scan->records_checked; i++) {
        const uint8_t *record = scan->data + off;
        uint64_t lsn = scan->first_lsn + i;
        uint32_t payload_bytes = get_u32(record);
        assert(get_u64(record + 4) == lsn);
        assert(off + payload_bytes + WAL_RECORD_OVERHEAD_BYTES <= scan->end_offset);
        result->records_checked++;
        if (lsn > args->after_lsn && args->record_cb != NULL) {
            int rc = args->record_cb(args->ctx, lsn, (int64_t)get_u64(record + 12), record[20],
                                     record + WAL_RECORD_HEADER_BYTES, payload_bytes);
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
    snprintf(message, message_bytes,
             "wal: bad record in %s at offset %" PRIu64 " (LSN %" PRIu64 " expected): %s", path,
             offset, lsn, reason);
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
    wal_loaded_t slots[WAL_PRELOAD_SEGMENTS_MAX];
};

/* True when every record of segment i is <= after_lsn: a later segment starts by after_lsn+1. */
static bool wal_segment_covered(const wal_preload_t *p, size_t i, uint64_t after_lsn)
{
    return i + 1 < p->count && p->segments[i + 1].first_lsn <= after_lsn + 1;
}

/* Segments the reader asks the kernel to read ahead of the one it loads (posix_fadvise
 * WILLNEED): after a while idle, part of the log may have left the page cache; this way the disk
 * reads them while earlier segments are checked and replayed. */
#define WAL_PRELOAD_ADVISE_AHEAD 8u

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
        p->list_rc = wal_segments_list(dir, &p->segments, &p->count, p->list_message,
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

/* Replay segment i taken from the preload; 0 (*last_lsn: its last valid LSN), a callback's
 * return, or ALLOT_E* (message). */
static int wal_replay_segment(wal_preload_t *p, size_t i, const wal_replay_args_t *args,
                              wal_replay_result_t *result, uint64_t *last_lsn, char *message,
                              size_t message_bytes)
{
    char path[WAL_PATH_BYTES_MAX];
    wal_segment_path(path, p->dir, p->segments[i].name);
    const wal_loaded_t *loaded = wal_preload_take(p, i);
    wal_replay_stop_t stop;
    int rc = wal_segment_replay(loaded, args, result, &stop);
    if (rc == ALLOT_ECORRUPT) /* the state refused a record: say which */
        return wal_replay_corrupt(result, path, stop.offset, stop.lsn, stop.reason, message,
                                  message_bytes);
    if (rc != 0)
        return rc;
    const wal_scan_t *scan = &loaded->scan;
    if (loaded->rc == ALLOT_ECORRUPT)
        return wal_replay_corrupt(result, path, scan->end_offset, scan->last_lsn + 1, scan->reason,
                                  message, message_bytes);
    if (loaded->rc < 0) {
        snprintf(message, message_bytes, "%s", loaded->message);
        return loaded->rc;
    }
    if (scan->is_last) {
        result->end = wal_log_end_of(scan);
        if (scan->torn) {
            result->tail_truncated = true;
            snprintf(result->tail_file, sizeof result->tail_file, "%s", path);
            result->tail_offset = scan->end_offset;
            result->tail_bytes = scan->torn_bytes;
        }
    }
    *last_lsn = scan->last_lsn;
    wal_preload_release(p, i);
    return 0;
}

static int wal_replay_segments(wal_preload_t *p, const wal_replay_args_t *args,
                               wal_replay_result_t *result, char *message, size_t message_bytes)
{
    char path[WAL_PATH_BYTES_MAX];
    const wal_segment_entry_t *segments = p->segments;
    uint64_t expected = segments[0].first_lsn;
    result->first_lsn = expected;
    if (expected > args->after_lsn + 1) {
        wal_segment_path(path, p->dir, segments[0].name);
        return wal_replay_corrupt(result, path, 0, args->after_lsn + 1,
                                  "the log starts after the first LSN needed", message,
                                  message_bytes);
    }
    for (size_t i = 0; i < p->count; i++) {
        if (segments[i].first_lsn != expected) {
            wal_segment_path(path, p->dir, segments[i].name);
            return wal_replay_corrupt(result, path, 0, expected,
                                      "LSN gap: segment does not start where the previous ended",
                                      message, message_bytes);
        }
        if (wal_segment_covered(p, i, args->after_lsn)) {
            wal_preload_release(p, i);
            expected = segments[i + 1].first_lsn; /* fully covered by the checkpoint */
            continue;
        }
        uint64_t last_lsn = 0;
        int rc = wal_replay_segment(p, i, args, result, &last_lsn, message, message_bytes);
        if (rc != 0)
            return rc;
        expected = last_lsn + 1;
    }
    result->last_lsn = expected - 1 > args->after_lsn ? expected - 1 : args->after_lsn;
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
    if (rc == 0 && preload->count > 0) {
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

/* ---- the live log: state shared by the loop thread and the writer thread ---------------- */

struct wal {
    uv_loop_t *loop;
    uv_async_t async; /* writer -> loop: batch done, durable advanced, spare ready, failure */
    char dir[WAL_PATH_BYTES_MAX];
    wal_fsync_mode_t fsync_mode;
    uint32_t fsync_interval_ms;
    uint32_t allocate_retry_ms;
    uint64_t segment_bytes;
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

    /* Written by the writer, read lock-free by the loop. */
    _Atomic uint64_t spares_created;
    _Atomic bool failed;
    _Atomic bool allocate_failing; /* the last attempt to allocate a spare failed (disk) */

    /* Under mutex. */
    pthread_mutex_t mutex;
    pthread_cond_t writer_cond; /* writer waits for work */
    pthread_cond_t done_cond;   /* wal_close waits for the batch in flight */
    uint8_t *flight;            /* the batch handed to the writer */
    size_t flight_bytes;
    uint64_t flight_last_lsn;
    bool flight_pending;
    bool truncate_pending;
    uint64_t truncate_lsn;
    bool stop;
    uint64_t durable_lsn_shared;
    int error;
    char error_message[WAL_MESSAGE_BYTES_MAX];
    wal_stats_t stats_shared;

    /* Writer thread only (and wal_open before the thread starts). */
    pthread_t thread;
    int dir_fd;
    int active_fd; /* -1: no segment yet; the first record rolls into the spare */
    uint64_t active_offset;
    uint64_t active_capacity;
    bool active_dirty; /* written since its last fdatasync */
    int spare_fd;
    uint64_t written_lsn;
    uint64_t next_sync_ms;
    uint64_t next_allocate_ms;
    wal_stats_t stats;
};

/* Writer: record a fatal failure (first one wins) and wake the loop. */
static void wal_writer_fail(wal_t *wal, int error, const char *what, int sys_error)
{
    pthread_mutex_lock(&wal->mutex);
    if (wal->error == 0) {
        wal->error = error;
        snprintf(wal->error_message, sizeof wal->error_message, "wal: %s: %s", what,
                 strerror(sys_error));
    }
    atomic_store(&wal->failed, true);
    pthread_mutex_unlock(&wal->mutex);
    uv_async_send(&wal->async);
}

static int wal_zero_range(int fd, uint64_t offset, uint64_t bytes)
{
    while (bytes > 0) {
        size_t n = bytes < WAL_ZERO_CHUNK_BYTES ? (size_t)bytes : WAL_ZERO_CHUNK_BYTES;
        int rc = persist_pwrite_all(fd, wal_zeros, n, offset);
        if (rc < 0)
            return rc;
        offset += n;
        bytes -= n;
    }
    return 0;
}

/* Allocate wal-spare.tmp at full size. 0 or -errno; on failure nothing is left behind. */
static int wal_spare_create(wal_t *wal)
{
    assert(wal->spare_fd < 0);
    int fd = openat(wal->dir_fd, WAL_SPARE_NAME, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = persist_fallocate(fd, wal->segment_bytes);
    if (rc == -EOPNOTSUPP)
        rc = wal_zero_range(fd, 0, wal->segment_bytes);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (rc == 0 && fsync(wal->dir_fd) != 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        unlinkat(wal->dir_fd, WAL_SPARE_NAME, 0);
        return rc;
    }
    wal->spare_fd = fd;
    wal->stats.segments_created++;
    return 0;
}

/* Try to allocate the spare; on failure schedule a retry. True when a spare now exists. */
static bool wal_spare_try(wal_t *wal)
{
    int rc = wal_spare_create(wal);
    wal->stats.allocate_error_last = rc;
    atomic_store(&wal->allocate_failing, rc < 0);
    if (rc < 0) {
        wal->stats.allocate_failures++;
        wal->next_allocate_ms = monotonic_ms() + wal->allocate_retry_ms;
        return false;
    }
    atomic_fetch_add(&wal->spares_created, 1);
    return true;
}

static int wal_writer_sync(wal_t *wal, int fd)
{
    assert(fd >= 0);
    wal->stats.fdatasyncs++;
    int rc = persist_fdatasync(fd);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, "fdatasync failed", -rc);
        return rc;
    }
    if (fd == wal->active_fd)
        wal->active_dirty = false;
    return 0;
}

/* Turn the spare into segment wal-<first_lsn>.log and make it the active segment. */
static int wal_writer_rollover(wal_t *wal, uint64_t first_lsn)
{
    if (wal->spare_fd < 0 && wal_spare_create(wal) < 0) {
        wal_writer_fail(wal, ALLOT_EIO, "no segment could be allocated at rollover", ENOSPC);
        return ALLOT_EIO;
    }
    uint8_t header[WAL_SEGMENT_HEADER_BYTES];
    wal_segment_header_encode(header, first_lsn);
    int rc = persist_pwrite_all(wal->spare_fd, header, sizeof header, 0);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, "segment header write failed", -rc);
        return ALLOT_EIO;
    }
    if (wal_writer_sync(wal, wal->spare_fd) < 0)
        return ALLOT_EIO;
    char name[WAL_SEGMENT_NAME_BYTES + 1];
    snprintf(name, sizeof name, "wal-%016" PRIx64 ".log", first_lsn);
    if (renameat(wal->dir_fd, WAL_SPARE_NAME, wal->dir_fd, name) != 0 || fsync(wal->dir_fd) != 0) {
        wal_writer_fail(wal, ALLOT_EIO, "segment rename failed", errno);
        return ALLOT_EIO;
    }
    if (wal->active_fd >= 0) {
        if (wal->active_dirty && wal->fsync_mode != WAL_FSYNC_NONE &&
            wal_writer_sync(wal, wal->active_fd) < 0)
            return ALLOT_EIO;
        close(wal->active_fd);
    }
    wal->active_fd = wal->spare_fd;
    wal->spare_fd = -1;
    wal->active_offset = WAL_SEGMENT_HEADER_BYTES;
    wal->active_capacity = wal->segment_bytes;
    wal->active_dirty = false;
    wal->next_allocate_ms = 0; /* allocate the next spare as soon as this batch is done */
    return 0;
}

static int wal_writer_write(wal_t *wal, const uint8_t *data, size_t bytes)
{
    if (bytes == 0)
        return 0;
    assert(wal->active_fd >= 0);
    assert(wal->active_offset + bytes <= wal->active_capacity);
    int rc = persist_pwrite_all(wal->active_fd, data, bytes, wal->active_offset);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, "write failed", -rc);
        return ALLOT_EIO;
    }
    wal->active_offset += bytes;
    wal->active_dirty = true;
    wal->stats.bytes_written += bytes;
    return 0;
}

/* Write one batch: runs of records per segment, rolling over where a record does not fit. */
static int wal_writer_batch(wal_t *wal, const uint8_t *batch, size_t bytes, uint64_t last_lsn)
{
    size_t pos = 0;
    size_t run_start = 0;
    uint64_t run_end_offset = wal->active_offset;
    while (pos < bytes) {
        assert(pos + WAL_RECORD_OVERHEAD_BYTES <= bytes);
        size_t record_bytes = (size_t)get_u32(batch + pos) + WAL_RECORD_OVERHEAD_BYTES;
        assert(pos + record_bytes <= bytes);
        if (wal->active_fd < 0 || run_end_offset + record_bytes > wal->active_capacity) {
            if (wal_writer_write(wal, batch + run_start, pos - run_start) < 0 ||
                wal_writer_rollover(wal, get_u64(batch + pos + 4)) < 0)
                return ALLOT_EIO;
            run_start = pos;
            run_end_offset = wal->active_offset;
        }
        run_end_offset += record_bytes;
        pos += record_bytes;
    }
    if (wal_writer_write(wal, batch + run_start, pos - run_start) < 0)
        return ALLOT_EIO;
    assert(wal->active_offset == run_end_offset);
    if (wal->fsync_mode == WAL_FSYNC_ALWAYS && wal_writer_sync(wal, wal->active_fd) < 0)
        return ALLOT_EIO;
    wal->written_lsn = last_lsn;
    wal->stats.batches_written++;
    return 0;
}

/* Delete segments whose records are all <= lsn: those followed by a segment starting at or
 * before lsn + 1. The newest (active) segment is never deleted. */
static void wal_writer_truncate(wal_t *wal, uint64_t lsn)
{
    wal_segment_entry_t *segments = NULL;
    size_t count = 0;
    char message[WAL_MESSAGE_BYTES_MAX];
    if (wal_segments_list(wal->dir, &segments, &count, message, sizeof message) < 0) {
        free(segments);
        return;
    }
    size_t deleted = 0;
    for (size_t i = 0; i + 1 < count; i++) {
        if (segments[i + 1].first_lsn > lsn + 1)
            break;
        if (unlinkat(wal->dir_fd, segments[i].name, 0) == 0)
            deleted++;
    }
    if (deleted > 0)
        fsync(wal->dir_fd);
    wal->stats.segments_deleted += deleted;
    free(segments);
}

/* Writer, mutex held: make results visible to the loop. */
static void wal_writer_publish(wal_t *wal)
{
    if (wal->error == 0)
        wal->durable_lsn_shared = wal->written_lsn;
    wal->stats_shared = wal->stats;
}

/* Writer, mutex held: wait for work or the next timed duty (interval sync, allocation retry). */
static void wal_writer_wait(wal_t *wal)
{
    bool failed = atomic_load(&wal->failed);
    uint64_t deadline_ms = UINT64_MAX;
    if (!failed && wal->spare_fd < 0)
        deadline_ms = wal->next_allocate_ms;
    if (!failed && wal->fsync_mode == WAL_FSYNC_INTERVAL && wal->active_dirty &&
        wal->next_sync_ms < deadline_ms)
        deadline_ms = wal->next_sync_ms;
    if (deadline_ms == UINT64_MAX) {
        pthread_cond_wait(&wal->writer_cond, &wal->mutex);
        return;
    }
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&wal->writer_cond, &wal->mutex, &ts);
}

/* Writer, mutex held: the spare is missing and its allocation is due. */
static bool wal_writer_spare_due(const wal_t *wal, uint64_t now_ms)
{
    return !atomic_load(&wal->failed) && !wal->stop && wal->spare_fd < 0 &&
           now_ms >= wal->next_allocate_ms;
}

/* Writer, mutex held on entry and exit: do one duty if one is due. False when idle. The next
 * spare comes before the next batch: under a steady load a batch is always pending, and records
 * that do not fit in the rest of the active segment wait for the spare. */
static bool wal_writer_duty(wal_t *wal)
{
    bool failed = atomic_load(&wal->failed);
    uint64_t now_ms = monotonic_ms();
    if (wal_writer_spare_due(wal, now_ms)) {
        pthread_mutex_unlock(&wal->mutex);
        bool created = wal_spare_try(wal);
        pthread_mutex_lock(&wal->mutex);
        wal_writer_publish(wal);
        if (created)
            uv_async_send(&wal->async);
        return true;
    }
    if (wal->flight_pending) {
        if (!failed) {
            pthread_mutex_unlock(&wal->mutex);
            wal_writer_batch(wal, wal->flight, wal->flight_bytes, wal->flight_last_lsn);
            pthread_mutex_lock(&wal->mutex);
        }
        wal->flight_pending = false;
        wal_writer_publish(wal);
        pthread_cond_broadcast(&wal->done_cond);
        uv_async_send(&wal->async);
        return true;
    }
    if (wal->truncate_pending) {
        wal->truncate_pending = false;
        uint64_t lsn = wal->truncate_lsn;
        pthread_mutex_unlock(&wal->mutex);
        wal_writer_truncate(wal, lsn);
        pthread_mutex_lock(&wal->mutex);
        wal_writer_publish(wal);
        return true;
    }
    if (!failed && wal->fsync_mode == WAL_FSYNC_INTERVAL && wal->active_dirty &&
        now_ms >= wal->next_sync_ms) {
        pthread_mutex_unlock(&wal->mutex);
        wal_writer_sync(wal, wal->active_fd);
        wal->next_sync_ms = now_ms + wal->fsync_interval_ms;
        pthread_mutex_lock(&wal->mutex);
        wal_writer_publish(wal);
        return true;
    }
    return false;
}

static void *wal_writer_main(void *arg)
{
    wal_t *wal = arg;
    pthread_mutex_lock(&wal->mutex);
    for (;;) {
        if (wal_writer_duty(wal))
            continue;
        if (wal->stop)
            break;
        wal_writer_wait(wal);
    }
    pthread_mutex_unlock(&wal->mutex);
    if (!atomic_load(&wal->failed) && wal->fsync_mode != WAL_FSYNC_NONE && wal->active_dirty)
        wal_writer_sync(wal, wal->active_fd);
    pthread_mutex_lock(&wal->mutex);
    wal_writer_publish(wal);
    pthread_mutex_unlock(&wal->mutex);
    return NULL;
}

/* ---- loop thread ----------------------------------------------------------------------- */

static bool wal_spare_ready(const wal_t *wal)
{
    return atomic_load(&((wal_t *)wal)->spares_created) > wal->spares_consumed;
}

size_t wal_payload_bytes_max(const wal_t *wal)
{
    return wal->payload_bytes_max;
}

/* No spare is ready and the last attempt to allocate one failed: the disk refused space. */
static bool wal_disk_short(const wal_t *wal)
{
    return atomic_load(&((wal_t *)wal)->allocate_failing) && !wal_spare_ready(wal);
}

bool wal_writable(const wal_t *wal)
{
    if (atomic_load(&((wal_t *)wal)->failed) || wal->closing)
        return false;
    assert(wal->place_offset <= wal->place_capacity || wal->place_capacity == 0);
    uint64_t room =
        wal->place_capacity > wal->place_offset ? wal->place_capacity - wal->place_offset : 0;
    return !wal_disk_short(wal) || room >= ALLOT_WAL_HEADROOM_BYTES;
}

int wal_room_check(const wal_t *wal, size_t payload_bytes)
{
    if (!wal_writable(wal))
        return ALLOT_EUNAVAILABLE;
    if (payload_bytes > wal->payload_bytes_max)
        return ALLOT_ETOO_LARGE;
    if (wal_has_room(wal, payload_bytes))
        return 0;
    uint64_t record_bytes = payload_bytes + WAL_RECORD_OVERHEAD_BYTES;
    if (wal->fill_bytes + record_bytes > wal->batch_bytes_max)
        return ALLOT_EOVERLOADED; /* the batch drains by itself */
    return wal_disk_short(wal) ? ALLOT_EUNAVAILABLE : ALLOT_EOVERLOADED; /* else: spare pending */
}

bool wal_has_room(const wal_t *wal, size_t payload_bytes)
{
    if (atomic_load(&((wal_t *)wal)->failed) || wal->closing)
        return false;
    if (payload_bytes > wal->payload_bytes_max)
        return false;
    uint64_t record_bytes = payload_bytes + WAL_RECORD_OVERHEAD_BYTES;
    if (wal->fill_bytes + record_bytes > wal->batch_bytes_max)
        return false;
    return wal->place_offset + record_bytes <= wal->place_capacity || wal_spare_ready(wal);
}

uint64_t wal_append(wal_t *wal, uint8_t type, int64_t time_ms, const void *payload, size_t len)
{
    assert(payload != NULL || len == 0);
    if (!wal_has_room(wal, len))
        return 0;
    uint64_t record_bytes = len + WAL_RECORD_OVERHEAD_BYTES;
    if (wal->place_offset + record_bytes > wal->place_capacity) {
        assert(wal_spare_ready(wal));
        wal->spares_consumed++;
        wal->place_offset = WAL_SEGMENT_HEADER_BYTES;
        wal->place_capacity = wal->segment_bytes;
    }
    wal->place_offset += record_bytes;
    assert(wal->place_offset <= wal->place_capacity);
    uint64_t lsn = ++wal->last_lsn;
    size_t n =
        wal_record_encode(wal->fill + wal->fill_bytes, wal->batch_bytes_max - wal->fill_bytes, lsn,
                          time_ms, type, payload, len);
    assert(n == record_bytes);
    wal->fill_bytes += n;
    wal->records_appended++;
    return lsn;
}

/* Mutex held, writer idle: hand the fill buffer over. */
static void wal_hand_over(wal_t *wal)
{
    assert(!wal->flight_pending);
    assert(wal->fill_bytes > 0);
    uint8_t *spare_buffer = wal->flight;
    wal->flight = wal->fill;
    wal->flight_bytes = wal->fill_bytes;
    wal->flight_last_lsn = wal->last_lsn;
    wal->flight_pending = true;
    wal->fill = spare_buffer;
    wal->fill_bytes = 0;
    pthread_cond_signal(&wal->writer_cond);
}

void wal_flush(wal_t *wal)
{
    if (wal->fill_bytes == 0 || atomic_load(&wal->failed))
        return;
    pthread_mutex_lock(&wal->mutex);
    if (!wal->flight_pending)
        wal_hand_over(wal);
    pthread_mutex_unlock(&wal->mutex);
}

/* Deliver what the writer published: hand over the next batch, durable_cb, fatal_cb. */
static void wal_report(wal_t *wal)
{
    char message[WAL_MESSAGE_BYTES_MAX];
    pthread_mutex_lock(&wal->mutex);
    uint64_t durable_lsn = wal->durable_lsn_shared;
    int error = wal->error;
    memcpy(message, wal->error_message, sizeof message);
    if (error == 0 && !wal->closing && !wal->flight_pending && wal->fill_bytes > 0)
        wal_hand_over(wal);
    pthread_mutex_unlock(&wal->mutex);
    if (durable_lsn > wal->durable_lsn_reported) {
        assert(durable_lsn <= wal->last_lsn);
        wal->durable_lsn_reported = durable_lsn;
        if (wal->durable_cb != NULL)
            wal->durable_cb(wal, durable_lsn, wal->ctx);
    }
    if (error != 0 && !wal->fatal_reported) {
        wal->fatal_reported = true;
        if (wal->fatal_cb != NULL)
            wal->fatal_cb(wal, error, message, wal->ctx);
    }
}

static void wal_async_cb(uv_async_t *handle)
{
    wal_report(handle->data);
}

uint64_t wal_last_lsn(const wal_t *wal)
{
    return wal->last_lsn;
}

uint64_t wal_durable_lsn(const wal_t *wal)
{
    return wal->durable_lsn_reported;
}

int wal_truncate_before(wal_t *wal, uint64_t checkpoint_lsn)
{
    if (wal->closing)
        return ALLOT_EINVALID_ARGUMENT;
    pthread_mutex_lock(&wal->mutex);
    if (!wal->truncate_pending || checkpoint_lsn > wal->truncate_lsn)
        wal->truncate_lsn = checkpoint_lsn;
    wal->truncate_pending = true;
    pthread_cond_signal(&wal->writer_cond);
    pthread_mutex_unlock(&wal->mutex);
    return 0;
}

void wal_stats(const wal_t *wal, wal_stats_t *out)
{
    pthread_mutex_lock(&((wal_t *)wal)->mutex);
    *out = wal->stats_shared;
    pthread_mutex_unlock(&((wal_t *)wal)->mutex);
    out->records_appended = wal->records_appended;
}

static void wal_free(wal_t *wal)
{
    pthread_mutex_destroy(&wal->mutex);
    pthread_cond_destroy(&wal->writer_cond);
    pthread_cond_destroy(&wal->done_cond);
    free(wal->fill);
    free(wal->flight);
    free(wal);
}

static void wal_async_closed_cb(uv_handle_t *handle)
{
    wal_t *wal = handle->data;
    void (*closed_cb)(void *) = wal->closed_cb;
    void *ctx = wal->ctx;
    wal_free(wal);
    if (closed_cb != NULL)
        closed_cb(ctx);
}

int wal_close(wal_t *wal, void (*closed_cb)(void *ctx))
{
    assert(!wal->closing);
    wal->closing = true;
    wal->closed_cb = closed_cb;
    pthread_mutex_lock(&wal->mutex);
    while (wal->flight_pending)
        pthread_cond_wait(&wal->done_cond, &wal->mutex);
    if (wal->fill_bytes > 0 && !atomic_load(&wal->failed))
        wal_hand_over(wal);
    wal->stop = true;
    pthread_cond_signal(&wal->writer_cond);
    pthread_mutex_unlock(&wal->mutex);
    pthread_join(wal->thread, NULL);
    wal_report(wal);
    if (wal->active_fd >= 0)
        close(wal->active_fd);
    if (wal->spare_fd >= 0)
        close(wal->spare_fd);
    close(wal->dir_fd);
    int error = wal->error;
    uv_close((uv_handle_t *)&wal->async, wal_async_closed_cb);
    return error;
}

/* ---- opening --------------------------------------------------------------------------- */

static int wal_config_apply(wal_t *wal, const wal_config_t *config, char *message,
                            size_t message_bytes)
{
    if (config->dir == NULL || config->dir[0] == '\0' ||
        strlen(config->dir) + WAL_SEGMENT_NAME_BYTES + 2 > WAL_PATH_BYTES_MAX)
        return snprintf(message, message_bytes, "wal: dir missing or too long"),
               ALLOT_EINVALID_ARGUMENT;
    if (config->fsync_mode != WAL_FSYNC_ALWAYS && config->fsync_mode != WAL_FSYNC_INTERVAL &&
        config->fsync_mode != WAL_FSYNC_NONE)
        return snprintf(message, message_bytes, "wal: bad fsync mode"), ALLOT_EINVALID_ARGUMENT;
    if (config->fsync_mode == WAL_FSYNC_INTERVAL &&
        (config->fsync_interval_ms < 1 || config->fsync_interval_ms > WAL_FSYNC_INTERVAL_MS_MAX))
        return snprintf(message, message_bytes, "wal: fsync interval must be 1..%u ms",
                        WAL_FSYNC_INTERVAL_MS_MAX),
               ALLOT_EINVALID_ARGUMENT;
    snprintf(wal->dir, sizeof wal->dir, "%s", config->dir);
    wal->fsync_mode = config->fsync_mode;
    wal->fsync_interval_ms = config->fsync_interval_ms;
    wal->segment_bytes =
        config->segment_bytes ? config->segment_bytes : ALLOT_WAL_SEGMENT_BYTES_DEFAULT;
    wal->batch_bytes_max =
        config->batch_bytes_max ? config->batch_bytes_max : ALLOT_WAL_BATCH_BYTES_MAX;
    wal->allocate_retry_ms =
        config->allocate_retry_ms ? config->allocate_retry_ms : WAL_ALLOCATE_RETRY_MS_DEFAULT;
    if (wal->segment_bytes < WAL_SEGMENT_BYTES_MIN || wal->segment_bytes > WAL_SEGMENT_BYTES_MAX)
        return snprintf(message, message_bytes, "wal: segment size must be %u..%llu bytes",
                        WAL_SEGMENT_BYTES_MIN, (unsigned long long)WAL_SEGMENT_BYTES_MAX),
               ALLOT_EINVALID_ARGUMENT;
    uint64_t fit = wal->segment_bytes - WAL_SEGMENT_HEADER_BYTES - WAL_RECORD_OVERHEAD_BYTES;
    wal->payload_bytes_max = fit < ALLOT_WAL_RECORD_BYTES_MAX ? fit : ALLOT_WAL_RECORD_BYTES_MAX;
    if (wal->batch_bytes_max < wal->payload_bytes_max + WAL_RECORD_OVERHEAD_BYTES ||
        wal->batch_bytes_max > ALLOT_WAL_BATCH_BYTES_MAX)
        return snprintf(message, message_bytes,
                        "wal: batch size must hold one largest record and be at most %u bytes",
                        ALLOT_WAL_BATCH_BYTES_MAX),
               ALLOT_EINVALID_ARGUMENT;
    return 0;
}

/* Create the WAL directory if missing (and make its entry durable), open it. */
static int wal_dir_open(wal_t *wal, char *message, size_t message_bytes)
{
    if (mkdir(wal->dir, 0750) == 0) {
        char parent[WAL_PATH_BYTES_MAX];
        snprintf(parent, sizeof parent, "%s", wal->dir);
        char *slash = strrchr(parent, '/');
        if (slash == parent)
            slash[1] = '\0';
        else if (slash != NULL)
            *slash = '\0';
        else
            snprintf(parent, sizeof parent, ".");
        int parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd >= 0) {
            fsync(parent_fd);
            close(parent_fd);
        }
    } else if (errno != EEXIST) {
        snprintf(message, message_bytes, "wal: cannot create %s: %s", wal->dir, strerror(errno));
        return ALLOT_EIO;
    }
    wal->dir_fd = open(wal->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (wal->dir_fd < 0) {
        snprintf(message, message_bytes, "wal: cannot open %s: %s", wal->dir, strerror(errno));
        return ALLOT_EIO;
    }
    if (unlinkat(wal->dir_fd, WAL_SPARE_NAME, 0) != 0 && errno != ENOENT) {
        snprintf(message, message_bytes, "wal: cannot remove stale spare in %s: %s", wal->dir,
                 strerror(errno));
        return ALLOT_EIO;
    }
    return 0;
}

/* Zero a torn tail (offset, bytes) and make that durable. */
static int wal_tail_zero(int fd, const wal_log_end_t *end, const char *path, char *message,
                         size_t message_bytes)
{
    assert(end->offset + end->torn_bytes <= end->segment_bytes);
    int rc = wal_zero_range(fd, end->offset, end->torn_bytes);
    if (rc == 0)
        rc = persist_fdatasync(fd);
    if (rc < 0) {
        snprintf(message, message_bytes, "wal: cannot zero the torn tail of %s: %s", path,
                 strerror(-rc));
        return ALLOT_EIO;
    }
    return 0;
}

/* Where the newest segment's records end, by reading and checking it (no replay result). */
static int wal_log_end_scan(const char *dir, const wal_segment_entry_t *newest, wal_log_end_t *end,
                            const char *path, char *message, size_t message_bytes)
{
    wal_loaded_t loaded;
    wal_segment_load(dir, newest, true, &loaded);
    int rc = loaded.rc;
    if (rc == ALLOT_ECORRUPT)
        snprintf(message, message_bytes,
                 "wal: bad record in %s at offset %" PRIu64 " (LSN %" PRIu64 " expected): %s", path,
                 loaded.scan.end_offset, loaded.scan.last_lsn + 1, loaded.scan.reason);
    else if (rc < 0)
        snprintf(message, message_bytes, "%s", loaded.message);
    else
        *end = wal_log_end_of(&loaded.scan);
    wal_loaded_free(&loaded);
    return rc;
}

/* Open the newest segment for writing if `known` (a replay's result->end) describes it: same
 * first LSN and size. -1 otherwise (the caller reads the segment itself). */
static int wal_log_end_open_known(const char *path, uint64_t first_lsn, const wal_log_end_t *known)
{
    if (known == NULL || known->segment_first_lsn != first_lsn)
        return -1;
    assert(known->offset <= known->segment_bytes);
    assert(known->offset + known->torn_bytes <= known->segment_bytes);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || (uint64_t)st.st_size != known->segment_bytes)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Find where the log ends and make the newest segment the active one. */
static int wal_open_tail(wal_t *wal, const wal_log_end_t *known, uint64_t next_lsn, char *message,
                         size_t message_bytes)
{
    wal_segment_entry_t *segments = NULL;
    size_t count = 0;
    int rc = wal_segments_list(wal->dir, &segments, &count, message, message_bytes);
    if (rc < 0 || count == 0) {
        free(segments);
        return rc;
    }
    char path[WAL_PATH_BYTES_MAX];
    wal_segment_path(path, wal->dir, segments[count - 1].name);
    wal_log_end_t end = {0};
    int fd = wal_log_end_open_known(path, segments[count - 1].first_lsn, known);
    if (fd >= 0)
        end = *known;
    else
        rc = wal_log_end_scan(wal->dir, &segments[count - 1], &end, path, message, message_bytes);
    free(segments);
    if (rc < 0)
        return rc;
    if (end.last_lsn + 1 != next_lsn) {
        snprintf(message, message_bytes,
                 "wal: the log ends at LSN %" PRIu64
                 " but appending was asked to start at %" PRIu64,
                 end.last_lsn, next_lsn);
        if (fd >= 0)
            close(fd);
        return ALLOT_EINVALID_ARGUMENT;
    }
    if (fd < 0 && (fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
        snprintf(message, message_bytes, "wal: cannot open %s: %s", path, strerror(errno));
        return ALLOT_EIO;
    }
    if (end.torn_bytes > 0 && wal_tail_zero(fd, &end, path, message, message_bytes) < 0) {
        close(fd);
        return ALLOT_EIO;
    }
    wal->active_fd = fd;
    wal->active_offset = end.offset;
    wal->active_capacity = end.segment_bytes;
    return 0;
}

static int wal_threads_start(wal_t *wal, char *message, size_t message_bytes)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&wal->mutex, NULL);
    pthread_cond_init(&wal->writer_cond, &attr);
    pthread_cond_init(&wal->done_cond, NULL);
    pthread_condattr_destroy(&attr);
    int rc = uv_async_init(wal->loop, &wal->async, wal_async_cb);
    if (rc < 0) {
        snprintf(message, message_bytes, "wal: uv_async_init: %s", uv_strerror(rc));
        wal_free(wal);
        return ALLOT_EIO;
    }
    wal->async.data = wal;
    rc = pthread_create(&wal->thread, NULL, wal_writer_main, wal);
    if (rc != 0) {
        snprintf(message, message_bytes, "wal: cannot start the writer thread: %s", strerror(rc));
        wal->closed_cb = NULL;
        uv_close((uv_handle_t *)&wal->async, wal_async_closed_cb);
        return ALLOT_EIO;
    }
    return 0;
}

static void wal_open_abort(wal_t *wal)
{
    if (wal->active_fd >= 0)
        close(wal->active_fd);
    if (wal->spare_fd >= 0) {
        close(wal->spare_fd);
        unlinkat(wal->dir_fd, WAL_SPARE_NAME, 0);
    }
    if (wal->dir_fd >= 0)
        close(wal->dir_fd);
    free(wal->fill);
    free(wal->flight);
    free(wal);
}

int wal_open(uv_loop_t *loop, const wal_config_t *config, uint64_t next_lsn, wal_t **out,
             wal_durable_cb durable_cb, wal_fatal_cb fatal_cb, void *ctx, char *message,
             size_t message_bytes)
{
    char scratch[WAL_MESSAGE_BYTES_MAX];
    if (message == NULL || message_bytes == 0) {
        message = scratch;
        message_bytes = sizeof scratch;
    }
    message[0] = '\0';
    *out = NULL;
    if (loop == NULL || config == NULL || next_lsn == 0)
        return ALLOT_EINVALID_ARGUMENT;
    int rc = persist_fault_env_load();
    if (rc < 0)
        return snprintf(message, message_bytes, "wal: malformed ALLOT_FAULT"), rc;
    wal_t *wal = calloc(1, sizeof *wal);
    if (wal == NULL)
        return ALLOT_ENOMEM;
    *wal = (wal_t){.loop = loop,
                   .durable_cb = durable_cb,
                   .fatal_cb = fatal_cb,
                   .ctx = ctx,
                   .dir_fd = -1,
                   .active_fd = -1,
                   .spare_fd = -1,
                   .last_lsn = next_lsn - 1,
                   .durable_lsn_reported = next_lsn - 1};
    wal->written_lsn = wal->durable_lsn_shared = next_lsn - 1;
    rc = wal_config_apply(wal, config, message, message_bytes);
    if (rc == 0)
        rc = wal_dir_open(wal, message, message_bytes);
    if (rc == 0)
        rc = wal_open_tail(wal, config->log_end, next_lsn, message, message_bytes);
    if (rc == 0 && ((wal->fill = malloc(wal->batch_bytes_max)) == NULL ||
                    (wal->flight = malloc(wal->batch_bytes_max)) == NULL))
        rc = ALLOT_ENOMEM;
    if (rc < 0) {
        wal_open_abort(wal);
        return rc;
    }
    wal_spare_try(wal); /* failure is not fatal: not writable until the writer's retry works */
    wal->place_offset = wal->active_offset;
    wal->place_capacity = wal->active_capacity;
    wal->stats_shared = wal->stats;
    rc = wal_threads_start(wal, message, message_bytes);
    if (rc < 0)
        return rc;
    *out = wal;
    return 0;
}
