/* wal.c - write-ahead log: segment files, record format, group commit writer thread, replay.
 *
 * ON-DISK FORMAT (version 2; version 1 is still read). All integers little-endian. CRC is
 * CRC-32C (persist/crc32c.h).
 *
 * The WAL directory holds segment files named "wal-%016" PRIx64 ".log" after the LSN of their
 * first record (lowercase hex), at most one "wal-spare.tmp": the next segment, already
 * preallocated, which becomes "wal-<lsn>.log" (header written and fdatasync'ed, rename,
 * directory fsync) when the active segment is full, and the log-end file "wal-end". Every
 * segment is preallocated to its final size with fallocate(fd, 0, 0, bytes) (zero-filled;
 * written zeros where the file system lacks fallocate), so running out of disk shows when a
 * segment is allocated, never mid-write, and the unused tail of a segment reads as zeros.
 *
 * Segment header, 64 bytes at offset 0 (version 2):
 *     0   8  magic "ALLOTWAL" (41 4C 4C 4F 54 57 41 4C)
 *     8   4  format version (2)
 *    12   4  header bytes (64)
 *    16   8  first LSN: LSN of the first record of this segment (= the file name)
 *    24   8  segment bytes: the file's size as preallocated
 *    32   8  SYNCED LSN: every record of this segment with an LSN up to this one had been made
 *            durable (fdatasync) before this header was written; first LSN - 1 when none
 *    40  20  zero (reserved)
 *    60   4  CRC of bytes 0..59
 * The header is written whole when the segment is made, and again in place by the writer after
 * each fdatasync that made more of the segment's records durable (fsync always: after every
 * batch, before its records are reported durable; interval: after every interval sync; at the
 * switch to the next segment; never with fsync none), so the synced LSN only grows. The rewrite
 * is made durable by the segment's next fdatasync: after a power failure it may name the
 * previous sync's LSN, after a process crash the last one.
 * Version 1 headers are 32 bytes: magic, version (1), header bytes (32), first LSN, 4 zero
 * bytes, CRC of bytes 0..27; no segment bytes, no synced LSN (read as first LSN - 1).
 *
 * Records follow back to back from the end of the header, unpadded:
 *     0   4  P = payload bytes, 0 <= P <= ALLOT_WAL_RECORD_BYTES_MAX
 *     4   8  LSN, >= 1, exactly one more than the previous record's (across segments too)
 *    12   8  time in ms since the Unix epoch (int64) when the loop produced the record
 *    20   1  type (owned by the caller: core's event record type)
 *    21   P  payload
 *  21+P   4  CRC of bytes 0 .. 20+P (header and payload)
 * A record is never split across segments: when it does not fit in the rest of the active
 * segment, the writer moves to the next segment and leaves the rest zero.
 *
 * Log-end file "wal-end", 32 bytes, replaced atomically (written as "wal-end.tmp", fdatasync,
 * rename, directory fsync) each time a new segment has been renamed into place:
 *     0   8  magic "ALLOTEND"
 *     8   4  version (1)
 *    12   4  zero
 *    16   8  first LSN of the newest segment made: the log reached at least that segment
 *    24   4  zero
 *    28   4  CRC of bytes 0..27
 * Segments are deleted only by truncation, which never deletes the newest one, so the newest
 * segment present always starts at or after the LSN wal-end names. wal_open writes wal-end (and,
 * when the directory has no segment of version 2, a first segment at the next LSN), so from
 * the first start every log has both.
 *
 * VALIDITY. Reading a segment from the end of its header with the expected LSN E (the header's
 * first LSN):
 *   - if the 12 bytes at the offset (length and LSN) are all zero, or fewer than 12 bytes are
 *     left and they are all zero: end of the records of this segment;
 *   - otherwise the record is valid iff its 21-byte header is inside the file, P is within the
 *     limit, the whole record is inside the file, LSN == E, and the CRC matches. Then E += 1.
 *   - anything else is a bad record.
 * A segment is damaged (corruption, whatever follows) when its header is bad (magic, CRC,
 * version, header bytes, first LSN other than the file name's), when a version 2 file's size
 * differs from its segment bytes (truncated or extended), and when its records end - cleanly
 * or at a bad record - at an expected LSN E <= its synced LSN: records that were durable are
 * damaged or gone.
 * Across segments: the first segment must start at or before the first LSN needed
 * (checkpoint LSN + 1) and each next segment's first LSN must equal the previous last LSN + 1.
 * The newest segment present must start at or after the LSN wal-end names (else the newest
 * segments were deleted), wal-end must be present when the newest segment is of version 2 (it
 * is written before any such segment takes a record), and a log with no segment at all is
 * damaged when the checkpoint covers any LSN (truncation never deletes the newest segment).
 * A bad record is a TORN TAIL (cut off, not an error) only when it is in the newest segment,
 * its LSN E is above the segment's synced LSN (so it was never reported durable, when
 * fsync is always), and no valid record with LSN E + 1 appears after it in that segment; so is
 * a zero header followed by nonzero bytes in the newest segment past the synced LSN (pages of an
 * unsynced write that reached the disk out of order). A torn tail can only be the write in
 * flight when the process or the machine stopped: with fsync always, at most one batch. It is
 * zeroed by wal_open up to its last nonzero byte and appending continues at its offset. Every
 * other bad record, and every LSN gap, is corruption: start-up stops with the file, offset and
 * expected LSN. What cannot be told apart: damage confined to the records written after the
 * last sync the header records (fsync always: the last batch after a power failure, nothing
 * after a process crash; fsync interval: the records since the last interval sync; fsync none
 * and version 1 segments: the damaged record onwards when no record with the next LSN follows).
 *
 * ACCEPTED LOSS. With wal_preload_accept_loss (allotd --accept-data-loss), replay stops at the
 * first damage instead of failing: the records before it are replayed, result->loss_* names
 * the damage, and wal_open cuts the log there (log_end.cut): the damaged segment's tail is
 * zeroed and its header's synced LSN lowered to the cut (a segment whose header is damaged is
 * set aside whole), every later segment is renamed "<name>.discarded" (kept for inspection,
 * never read again), and appending starts in a new segment.
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

#include "core/buffer.h"
#include "core/errors.h"
#include "crc32c.h"
#include "fault.h"

#define WAL_MAGIC                 "ALLOTWAL"
#define WAL_END_MAGIC             "ALLOTEND"
#define WAL_END_VERSION           1u
#define WAL_END_TMP_NAME          "wal-end.tmp"
#define WAL_DISCARDED_SUFFIX      ".discarded"
#define WAL_SPARE_NAME            "wal-spare.tmp"
#define WAL_SEGMENT_NAME_BYTES    24 /* "wal-" + 16 hex + ".log" */
#define WAL_ZERO_CHUNK_BYTES      (64u * 1024)
#define WAL_FSYNC_INTERVAL_MS_MAX 60000u

static const uint8_t wal_zeros[WAL_ZERO_CHUNK_BYTES];

/* ---- helpers --------------------------------------------------------------------------- */

static bool bytes_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
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
    allot_u32_store_le(out, (uint32_t)len);
    allot_u64_store_le(out + 4, lsn);
    allot_u64_store_le(out + 12, (uint64_t)time_ms);
    out[20] = type;
    if (len > 0)
        memcpy(out + WAL_RECORD_HEADER_BYTES, payload, len);
    uint32_t crc = crc32c_extend(0, out, WAL_RECORD_HEADER_BYTES + len);
    allot_u32_store_le(out + WAL_RECORD_HEADER_BYTES + len, crc);
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
    uint32_t payload_bytes = allot_u32_load_le(buf);
    if (payload_bytes > ALLOT_WAL_RECORD_BYTES_MAX)
        return *reason = "record length over the limit", ALLOT_ECORRUPT;
    size_t record_bytes = (size_t)payload_bytes + WAL_RECORD_OVERHEAD_BYTES;
    if (record_bytes > bytes)
        return *reason = "record runs past the end of the segment", ALLOT_ECORRUPT;
    uint64_t lsn = allot_u64_load_le(buf + 4);
    if (lsn == 0)
        return *reason = "record with LSN 0", ALLOT_ECORRUPT;
    uint32_t crc = crc32c_extend(0, buf, WAL_RECORD_HEADER_BYTES + payload_bytes);
    if (crc != allot_u32_load_le(buf + WAL_RECORD_HEADER_BYTES + payload_bytes))
        return *reason = "checksum mismatch", ALLOT_ECORRUPT;
    *out = (wal_record_t){.lsn = lsn,
                          .time_ms = (int64_t)allot_u64_load_le(buf + 12),
                          .type = buf[20],
                          .payload_bytes = payload_bytes,
                          .payload = buf + WAL_RECORD_HEADER_BYTES,
                          .record_bytes = (uint32_t)record_bytes};
    return 1;
}

/* A segment header's fields (both versions). */
typedef struct wal_header {
    uint32_t version;
    uint32_t header_bytes;
    uint64_t first_lsn;
    uint64_t segment_bytes; /* version 1: 0 (not recorded) */
    uint64_t synced_lsn;    /* version 1: first_lsn - 1 */
} wal_header_t;

/* A version 2 header. */
static void wal_segment_header_encode(uint8_t out[WAL_SEGMENT_HEADER_BYTES], uint64_t first_lsn,
                                      uint64_t segment_bytes, uint64_t synced_lsn)
{
    assert(synced_lsn + 1 >= first_lsn);
    memset(out, 0, WAL_SEGMENT_HEADER_BYTES);
    memcpy(out, WAL_MAGIC, 8);
    allot_u32_store_le(out + 8, WAL_FORMAT_VERSION);
    allot_u32_store_le(out + 12, WAL_SEGMENT_HEADER_BYTES);
    allot_u64_store_le(out + 16, first_lsn);
    allot_u64_store_le(out + 24, segment_bytes);
    allot_u64_store_le(out + 32, synced_lsn);
    allot_u32_store_le(out + 60, crc32c_extend(0, out, 60));
}

/* Parse and check the header at the start of a file of `bytes` (at least
 * WAL_SEGMENT_HEADER_BYTES_V1). NULL when valid, else the reason. */
static const char *wal_segment_header_check(const uint8_t *data, uint64_t bytes, uint64_t first_lsn,
                                            wal_header_t *out)
{
    assert(bytes >= WAL_SEGMENT_HEADER_BYTES_V1);
    if (memcmp(data, WAL_MAGIC, 8) != 0)
        return "not a WAL segment (bad magic)";
    uint32_t version = allot_u32_load_le(data + 8);
    if (version == WAL_FORMAT_VERSION_V1) {
        if (allot_u32_load_le(data + 28) != crc32c_extend(0, data, 28))
            return "segment header checksum mismatch";
        *out = (wal_header_t){version, WAL_SEGMENT_HEADER_BYTES_V1, allot_u64_load_le(data + 16), 0,
                              allot_u64_load_le(data + 16) - 1};
    } else {
        if (bytes < WAL_SEGMENT_HEADER_BYTES ||
            allot_u32_load_le(data + 60) != crc32c_extend(0, data, 60))
            return "segment header checksum mismatch";
        *out = (wal_header_t){version, WAL_SEGMENT_HEADER_BYTES, allot_u64_load_le(data + 16),
                              allot_u64_load_le(data + 24), allot_u64_load_le(data + 32)};
        if (version != WAL_FORMAT_VERSION)
            return "unsupported segment format version";
    }
    if (allot_u32_load_le(data + 12) != out->header_bytes)
        return "unexpected segment header size";
    if (out->first_lsn != first_lsn)
        return "segment header first LSN differs from the file name";
    if (out->synced_lsn + 1 < out->first_lsn)
        return "segment header synced LSN before its first LSN";
    return NULL;
}

/* ---- the log-end file ------------------------------------------------------------------ */

static void wal_end_encode(uint8_t out[WAL_END_FILE_BYTES], uint64_t newest_first_lsn)
{
    memset(out, 0, WAL_END_FILE_BYTES);
    memcpy(out, WAL_END_MAGIC, 8);
    allot_u32_store_le(out + 8, WAL_END_VERSION);
    allot_u64_store_le(out + 16, newest_first_lsn);
    allot_u32_store_le(out + 28, crc32c_extend(0, out, 28));
}

/* Read <dir>/wal-end: 1 with *lsn, 0 when there is none, ALLOT_ECORRUPT when it is damaged,
 * ALLOT_EIO when it cannot be read (message). */
static int wal_end_read(const char *dir, uint64_t *lsn, char *message, size_t message_bytes)
{
    char path[WAL_PATH_BYTES_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, WAL_END_FILE_NAME);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    uint8_t bytes[WAL_END_FILE_BYTES + 1];
    ssize_t n = fd >= 0 ? pread(fd, bytes, sizeof bytes, 0) : -1;
    if (n < 0) {
        wal_message_set(message, message_bytes, "wal: cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return ALLOT_EIO;
    }
    close(fd);
    if (n != WAL_END_FILE_BYTES || memcmp(bytes, WAL_END_MAGIC, 8) != 0 ||
        allot_u32_load_le(bytes + 8) != WAL_END_VERSION ||
        allot_u32_load_le(bytes + 28) != crc32c_extend(0, bytes, 28) ||
        allot_u64_load_le(bytes + 16) == 0)
        return ALLOT_ECORRUPT;
    *lsn = allot_u64_load_le(bytes + 16);
    return 1;
}

/* Replace wal-end in the directory dir_fd atomically: the newest segment made starts at
 * newest_first_lsn (it is already renamed into place and its directory entry durable). 0 or
 * -errno. */
static int wal_end_write(int dir_fd, uint64_t newest_first_lsn)
{
    uint8_t bytes[WAL_END_FILE_BYTES];
    wal_end_encode(bytes, newest_first_lsn);
    int fd = openat(dir_fd, WAL_END_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = persist_pwrite_all(fd, bytes, sizeof bytes, 0);
    if (rc == 0)
        rc = persist_fdatasync(fd);
    close(fd);
    if (rc == 0 && renameat(dir_fd, WAL_END_TMP_NAME, dir_fd, WAL_END_FILE_NAME) != 0)
        rc = -errno;
    if (rc == 0 && fsync(dir_fd) != 0)
        rc = -errno;
    return rc;
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
static wal_log_end_t wal_log_end_of(const wal_scan_t *scan)
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
    bool active_dirty;        /* records written since its last fdatasync */
    bool active_v1;           /* an older segment: its header has no synced LSN to keep */
    bool active_header_dirty; /* its header was rewritten since its last fdatasync */
    uint64_t active_first_lsn;
    uint64_t active_last_lsn;   /* the last record written into it (first - 1: none) */
    uint64_t active_synced_lsn; /* what its header says (see the format) */
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

/* Writer: the active segment's records up to active_last_lsn were just made durable: say so in
 * its header (before they are reported durable; see the format). 0 or ALLOT_EIO (fatal). */
static int wal_writer_header_update(wal_t *wal)
{
    if (wal->active_v1 || wal->active_last_lsn <= wal->active_synced_lsn)
        return 0;
    uint8_t header[WAL_SEGMENT_HEADER_BYTES];
    wal_segment_header_encode(header, wal->active_first_lsn, wal->active_capacity,
                              wal->active_last_lsn);
    int rc = persist_pwrite_all(wal->active_fd, header, sizeof header, 0);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, "segment header write failed", -rc);
        return ALLOT_EIO;
    }
    wal->active_synced_lsn = wal->active_last_lsn;
    wal->active_header_dirty = true;
    return 0;
}

/* fdatasync fd; for the active segment, then record the synced LSN in its header. */
static int wal_writer_sync(wal_t *wal, int fd)
{
    assert(fd >= 0);
    wal->stats.fdatasyncs++;
    int rc = persist_fdatasync(fd);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, "fdatasync failed", -rc);
        return rc;
    }
    if (fd != wal->active_fd)
        return 0;
    wal->active_dirty = false;
    wal->active_header_dirty = false;
    return wal_writer_header_update(wal);
}

/* Make the spare (allocated now if there is none) segment wal-<first_lsn>.log: its header, the
 * rename, then wal-end. 0 or -errno with *what naming the step that failed. Touches nothing else:
 * the active segment is still the previous one. */
static int wal_segment_make(wal_t *wal, uint64_t first_lsn, const char **what)
{
    int rc = 0;
    *what = "no segment could be allocated";
    if (wal->spare_fd < 0 && (rc = wal_spare_create(wal)) < 0)
        return rc;
    uint8_t header[WAL_SEGMENT_HEADER_BYTES];
    wal_segment_header_encode(header, first_lsn, wal->segment_bytes, first_lsn - 1);
    *what = "segment header write failed";
    if ((rc = persist_pwrite_all(wal->spare_fd, header, sizeof header, 0)) < 0)
        return rc;
    *what = "fdatasync failed";
    wal->stats.fdatasyncs++;
    if ((rc = persist_fdatasync(wal->spare_fd)) < 0)
        return rc;
    char name[WAL_SEGMENT_NAME_BYTES + 1];
    snprintf(name, sizeof name, "wal-%016" PRIx64 ".log", first_lsn);
    *what = "segment rename failed";
    if (renameat(wal->dir_fd, WAL_SPARE_NAME, wal->dir_fd, name) != 0 || fsync(wal->dir_fd) != 0)
        return -errno;
    *what = "wal-end write failed";
    wal->stats.fdatasyncs++;
    return wal_end_write(wal->dir_fd, first_lsn);
}

/* The segment just made (wal_segment_make) becomes the active one. */
static void wal_segment_switch(wal_t *wal, uint64_t first_lsn)
{
    assert(wal->spare_fd >= 0);
    wal->active_fd = wal->spare_fd;
    wal->spare_fd = -1;
    wal->active_offset = WAL_SEGMENT_HEADER_BYTES;
    wal->active_capacity = wal->segment_bytes;
    wal->active_dirty = false;
    wal->active_header_dirty = false;
    wal->active_v1 = false;
    wal->active_first_lsn = first_lsn;
    wal->active_last_lsn = wal->active_synced_lsn = first_lsn - 1;
    wal->next_allocate_ms = 0; /* allocate the next spare as soon as this batch is done */
}

/* Turn the spare into segment wal-<first_lsn>.log and make it the active segment; the previous
 * one (its records end at first_lsn - 1) is synced (unless fsync none) and closed. */
static int wal_writer_rollover(wal_t *wal, uint64_t first_lsn)
{
    const char *what;
    int rc = wal_segment_make(wal, first_lsn, &what);
    if (rc < 0) {
        wal_writer_fail(wal, ALLOT_EIO, what, -rc);
        return ALLOT_EIO;
    }
    if (wal->active_fd >= 0) {
        assert(wal->active_last_lsn < first_lsn);
        wal->active_last_lsn = first_lsn - 1; /* the batch's records before this one */
        if (wal->active_dirty && wal->fsync_mode != WAL_FSYNC_NONE &&
            wal_writer_sync(wal, wal->active_fd) < 0)
            return ALLOT_EIO;
        close(wal->active_fd);
    }
    wal_segment_switch(wal, first_lsn);
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
        size_t record_bytes = (size_t)allot_u32_load_le(batch + pos) + WAL_RECORD_OVERHEAD_BYTES;
        assert(pos + record_bytes <= bytes);
        if (wal->active_fd < 0 || run_end_offset + record_bytes > wal->active_capacity) {
            if (wal_writer_write(wal, batch + run_start, pos - run_start) < 0 ||
                wal_writer_rollover(wal, allot_u64_load_le(batch + pos + 4)) < 0)
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
    wal->active_last_lsn = last_lsn; /* the rest of the batch is in the active segment */
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
    /* a clean stop leaves the records and then the header that says so durable */
    for (int i = 0; i < 2 && !atomic_load(&wal->failed) && wal->fsync_mode != WAL_FSYNC_NONE &&
                    (wal->active_dirty || wal->active_header_dirty);
         i++)
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
        wal_message_set(message, message_bytes,
                        "wal: the log is damaged or incomplete at %s offset %" PRIu64
                        " (LSN %" PRIu64 " expected): %s",
                        path, loaded.scan.end_offset, loaded.scan.last_lsn + 1, loaded.scan.reason);
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
/* Accepted loss: zero the kept segment from the cut on, and make its header agree (synced LSN
 * at most the cut's last LSN, segment bytes the file's size: it may have been truncated). */
static int wal_segment_seal(const char *path, const wal_log_end_t *cut, char *message,
                            size_t message_bytes)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    int rc = fd >= 0 && fstat(fd, &st) == 0 ? 0 : -errno;
    uint64_t bytes = rc == 0 ? (uint64_t)st.st_size : 0;
    if (rc == 0 && bytes > cut->offset)
        rc = wal_zero_range(fd, cut->offset, bytes - cut->offset);
    if (rc == 0 && cut->version != WAL_FORMAT_VERSION_V1) {
        uint8_t header[WAL_SEGMENT_HEADER_BYTES];
        uint64_t synced = cut->synced_lsn < cut->last_lsn ? cut->synced_lsn : cut->last_lsn;
        wal_segment_header_encode(header, cut->segment_first_lsn, bytes, synced);
        rc = persist_pwrite_all(fd, header, sizeof header, 0);
    }
    if (rc == 0)
        rc = persist_fdatasync(fd);
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        snprintf(message, message_bytes, "wal: cannot cut %s: %s", path, strerror(-rc));
    return rc < 0 ? ALLOT_EIO : 0;
}

/* Accepted loss (log_end.cut): every segment after the cut one (and that one too when its
 * header is damaged; every one when the cut keeps none) is renamed <name>.discarded; the kept
 * one is sealed at the cut. The caller starts a new segment. */
static int wal_open_cut(wal_t *wal, const wal_log_end_t *cut, char *message, size_t message_bytes)
{
    wal_segment_entry_t *segments = NULL;
    size_t count = 0;
    int rc = wal_segments_list(wal->dir, &segments, &count, message, message_bytes);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        uint64_t first = segments[i].first_lsn;
        char path[WAL_PATH_BYTES_MAX], aside[WAL_PATH_BYTES_MAX + 16];
        wal_segment_path(path, wal->dir, segments[i].name);
        if (first < cut->segment_first_lsn)
            continue;
        if (first == cut->segment_first_lsn && !cut->header_damaged) {
            rc = wal_segment_seal(path, cut, message, message_bytes);
            continue;
        }
        snprintf(aside, sizeof aside, "%s%s", path, WAL_DISCARDED_SUFFIX);
        if (rename(path, aside) != 0) {
            snprintf(message, message_bytes, "wal: cannot set %s aside: %s", path, strerror(errno));
            rc = ALLOT_EIO;
        }
    }
    free(segments);
    if (rc == 0 && fsync(wal->dir_fd) != 0) {
        snprintf(message, message_bytes, "wal: fsync of %s: %s", wal->dir, strerror(errno));
        rc = ALLOT_EIO;
    }
    return rc;
}

/* Make the newest segment (version 2) the active one, where replay found its end. */
static void wal_active_set(wal_t *wal, int fd, const wal_log_end_t *end)
{
    wal->active_fd = fd;
    wal->active_offset = end->offset;
    wal->active_capacity = end->segment_bytes;
    wal->active_first_lsn = end->segment_first_lsn;
    wal->active_last_lsn = end->last_lsn;
    wal->active_synced_lsn = end->synced_lsn;
    wal->active_v1 = end->version == WAL_FORMAT_VERSION_V1;
    if (wal->active_v1) /* never appended to: wal_open begins a version 2 segment */
        wal->active_capacity = wal->active_offset;
}

static int wal_open_tail(wal_t *wal, const wal_log_end_t *known, uint64_t next_lsn, char *message,
                         size_t message_bytes)
{
    if (known != NULL && known->cut) {
        if (known->last_lsn + 1 > next_lsn) {
            snprintf(message, message_bytes,
                     "wal: the log is cut at LSN %" PRIu64 " but appending was asked to start "
                     "at %" PRIu64,
                     known->last_lsn, next_lsn);
            return ALLOT_EINVALID_ARGUMENT;
        }
        return wal_open_cut(wal, known, message, message_bytes); /* no active segment */
    }
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
    wal_active_set(wal, fd, &end);
    return 0;
}

/* After the tail is open: a log with no segment of version 2 to append to (empty, cut, or its
 * newest segment older) begins one at next_lsn now, so that wal-end and a segment exist from
 * the first start (a full disk leaves that to the first record, as it would); otherwise wal-end
 * is brought up to the newest segment (a crash can fall between a segment's rename and
 * wal-end's). 0 or ALLOT_EIO. */
static int wal_open_segment(wal_t *wal, uint64_t next_lsn, char *message, size_t message_bytes)
{
    const char *what = NULL;
    int rc = 0;
    if (wal->active_fd < 0 || wal->active_v1) {
        rc = wal_segment_make(wal, next_lsn, &what);
        if (rc == 0) {
            if (wal->active_fd >= 0)
                close(wal->active_fd); /* nothing was written to it */
            wal_segment_switch(wal, next_lsn);
        } else if (wal->spare_fd < 0) {
            rc = 0; /* no space for a segment: not writable until there is (wal_spare_try) */
        }
    } else {
        uint64_t named = 0;
        char scratch[WAL_MESSAGE_BYTES_MAX];
        if (wal_end_read(wal->dir, &named, scratch, sizeof scratch) != 1 ||
            named != wal->active_first_lsn) {
            what = "wal-end write failed";
            wal->stats.fdatasyncs++;
            rc = wal_end_write(wal->dir_fd, wal->active_first_lsn);
        }
    }
    if (rc < 0)
        snprintf(message, message_bytes, "wal: %s in %s: %s", what, wal->dir, strerror(-rc));
    return rc < 0 ? ALLOT_EIO : 0;
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
    if (rc == 0)
        rc = wal_open_segment(wal, next_lsn, message, message_bytes);
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
