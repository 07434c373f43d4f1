/* wal_format.c - the WAL's on-disk format: records, segment headers, the log-end file and the
 * names of the files of a WAL directory (encode, decode, list; no thread, no write).
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
#include "wal_private.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/byte_order.h"
#include "core/errors.h"
#include "crc32c.h"

/* ---- helpers --------------------------------------------------------------------------- */

static bool bytes_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* An error message naming a file; a long path is cut short. */
__attribute__((format(printf, 3, 4))) void wal_message_set(char *message, size_t message_bytes,
                                                           const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(message, message_bytes, format, args);
    va_end(args);
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

/* A version 2 header. */
void wal_segment_header_encode(uint8_t out[WAL_SEGMENT_HEADER_BYTES], uint64_t first_lsn,
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
const char *wal_segment_header_check(const uint8_t *data, uint64_t bytes, uint64_t first_lsn,
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

void wal_end_encode(uint8_t out[WAL_END_FILE_BYTES], uint64_t newest_first_lsn)
{
    memset(out, 0, WAL_END_FILE_BYTES);
    memcpy(out, WAL_END_MAGIC, 8);
    allot_u32_store_le(out + 8, WAL_END_VERSION);
    allot_u64_store_le(out + 16, newest_first_lsn);
    allot_u32_store_le(out + 28, crc32c_extend(0, out, 28));
}

/* Read <dir>/wal-end: 1 with *lsn, 0 when there is none, ALLOT_ECORRUPT when it is damaged,
 * ALLOT_EIO when it cannot be read (message). */
int wal_end_read(const char *dir, uint64_t *lsn, char *message, size_t message_bytes)
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

/* ---- the files of a WAL directory ------------------------------------------------------ */

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
int wal_segments_list(const char *dir, wal_segment_entry_t **out, size_t *count, char *message,
                      size_t message_bytes)
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
void wal_segment_path(char path[WAL_PATH_BYTES_MAX], const char *dir, const char *name)
{
    int n = snprintf(path, WAL_PATH_BYTES_MAX, "%s/%s", dir, name);
    assert(n > 0 && n < (int)WAL_PATH_BYTES_MAX);
    (void)n;
}
