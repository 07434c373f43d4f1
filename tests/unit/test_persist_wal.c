/* test_persist_wal.c - WAL format, checksums, fault seam parsing, replay, torn tails told from
 * damage to synced records, missing segments (wal-end), version 1 logs, accepted loss, corruption
 * and truncation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "persist/crc32c.h"
#include "persist/fault.h"
#include "persist/wal.h"

#define RECORDS_MAX            512
#define PAYLOAD_TEST_BYTES_MAX 300

typedef struct test_record {
    uint64_t lsn;
    int64_t time_ms;
    uint8_t type;
    size_t len;
    uint8_t payload[PAYLOAD_TEST_BYTES_MAX];
} test_record_t;

typedef struct replay_log {
    size_t count;
    test_record_t records[RECORDS_MAX];
} replay_log_t;

static char tmp_root[64];
static char wal_dir[128];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void tmp_setup(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/allot-wal-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_root));
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", tmp_root);
}

static void tmp_teardown(void)
{
    persist_fault_clear_all();
    nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int collect_cb(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type,
                      const uint8_t *payload, size_t len)
{
    replay_log_t *log = ctx;
    cr_assert_lt(log->count, RECORDS_MAX);
    cr_assert_leq(len, PAYLOAD_TEST_BYTES_MAX);
    test_record_t *r = &log->records[log->count++];
    r->lsn = lsn;
    r->time_ms = time_ms;
    r->type = type;
    r->len = len;
    memcpy(r->payload, payload, len);
    return 0;
}

static void make_record(test_record_t *r, uint64_t lsn, size_t len)
{
    r->lsn = lsn;
    r->time_ms = 1700000000000LL + (int64_t)lsn * 7;
    r->type = (uint8_t)(lsn % 251);
    r->len = len;
    for (size_t i = 0; i < len; i++)
        r->payload[i] = (uint8_t)(lsn * 31 + i);
}

static void noop_durable_cb(wal_t *wal, uint64_t lsn, void *ctx)
{
    (void)wal, (void)lsn, (void)ctx;
}

/* Open a WAL at next_lsn, append records[0..count), close, and check the loop ends clean. */
static void write_records(uint64_t segment_bytes, uint64_t next_lsn, const test_record_t *records,
                          size_t count)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    wal_config_t config = {
        .dir = wal_dir, .fsync_mode = WAL_FSYNC_ALWAYS, .segment_bytes = segment_bytes};
    wal_t *wal = NULL;
    char message[WAL_MESSAGE_BYTES_MAX];
    int rc = wal_open(&loop, &config, next_lsn, &wal, noop_durable_cb, NULL, NULL, message,
                      sizeof message);
    cr_assert_eq(rc, 0, "wal_open: %d %s", rc, message);
    for (size_t i = 0; i < count; i++) {
        /* Tiny test segments fill before the writer has allocated the next spare: wait. */
        for (int spins = 0; !wal_has_room(wal, records[i].len); spins++) {
            cr_assert_lt(spins, 1000);
            wal_flush(wal);
            uv_run(&loop, UV_RUN_ONCE);
        }
        uint64_t lsn = wal_append(wal, records[i].type, records[i].time_ms, records[i].payload,
                                  records[i].len);
        cr_assert_eq(lsn, records[i].lsn);
        if (i % 7 == 6)
            wal_flush(wal);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    cr_assert_eq(wal_close(wal, NULL), 0);
    cr_assert_eq(wal_durable_lsn(wal), next_lsn + count - 1);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

static void make_records(test_record_t *records, size_t count, uint64_t first_lsn)
{
    for (size_t i = 0; i < count; i++)
        make_record(&records[i], first_lsn + i, (i * 37) % 200);
}

static void assert_records_equal(const test_record_t *got, const test_record_t *expected,
                                 size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const test_record_t *a = &got[i], *b = &expected[i];
        cr_assert_eq(a->lsn, b->lsn);
        cr_assert_eq(a->time_ms, b->time_ms);
        cr_assert_eq(a->type, b->type);
        cr_assert_eq(a->len, b->len);
        cr_assert_arr_eq(a->payload, b->payload, a->len);
    }
}

static void assert_replayed(const replay_log_t *log, const test_record_t *expected, size_t count)
{
    cr_assert_eq(log->count, count, "replayed %zu records, expected %zu", log->count, count);
    assert_records_equal(log->records, expected, count);
}

/* Sorted segment paths of wal_dir. */
static size_t list_segments(char paths[][160], size_t max)
{
    size_t n = 0;
    for (uint64_t lsn = 1; lsn < RECORDS_MAX * 2 && n < max; lsn++) {
        snprintf(paths[n], 160, "%s/wal-%016llx.log", wal_dir, (unsigned long long)lsn);
        if (access(paths[n], F_OK) == 0)
            n++;
    }
    return n;
}

static uint8_t *file_load(const char *path, size_t *bytes)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *bytes = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(*bytes);
    cr_assert_eq(fread(data, 1, *bytes, f), *bytes);
    fclose(f);
    return data;
}

static void file_store(const char *path, const uint8_t *data, size_t bytes)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, bytes, f), bytes);
    fclose(f);
}

/* Offsets of the records in a segment file (walking with the public decoder). */
static size_t record_offsets(const uint8_t *data, size_t bytes, uint64_t *offsets, size_t max)
{
    size_t n = 0;
    uint64_t off = WAL_SEGMENT_HEADER_BYTES;
    wal_record_t record;
    const char *reason;
    while (n < max && wal_record_decode(data + off, bytes - off, &record, &reason) == 1) {
        offsets[n++] = off;
        off += record.record_bytes;
    }
    return n;
}

/* The newest segment file in memory with its record offsets, for tests that damage it. */
typedef struct newest_segment {
    char path[160];
    uint8_t *data;
    size_t bytes;
    uint64_t offsets[64];
    size_t n; /* records found */
} newest_segment_t;

static void newest_segment_load(newest_segment_t *seg)
{
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    cr_assert_gt(segments, 0);
    snprintf(seg->path, sizeof seg->path, "%s", paths[segments - 1]);
    seg->data = file_load(seg->path, &seg->bytes);
    seg->n = record_offsets(seg->data, seg->bytes, seg->offsets, 64);
}

/* The segment header's synced LSN set back to `lsn` (checksum rewritten): what the header of
 * the newest segment says after a power failure cut the writer's last sync short, so that the
 * records after `lsn` may be a torn write. */
static void header_synced_set(uint8_t *data, uint64_t lsn)
{
    for (int i = 0; i < 8; i++)
        data[32 + i] = (uint8_t)(lsn >> (8 * i));
    uint32_t crc = crc32c_extend(0, data, 60);
    for (int i = 0; i < 4; i++)
        data[60 + i] = (uint8_t)(crc >> (8 * i));
}

/* Write the (damaged) bytes back and free them. */
static void newest_segment_store(newest_segment_t *seg)
{
    file_store(seg->path, seg->data, seg->bytes);
    free(seg->data);
    seg->data = NULL;
}

/* ---- checksums and record format ------------------------------------------------------- */

Test(crc32c, matches_the_standard_check_value_in_hardware_and_software)
{
    cr_assert_eq(crc32c_extend(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(crc32c_extend_software(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(crc32c_extend(0, "", 0), 0u);
}

Test(crc32c, hardware_and_software_agree_on_every_length_and_alignment)
{
    uint8_t buf[1100];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t start = 0; start < 9; start++)
        for (size_t len = 0; len + start <= sizeof buf; len += 13) {
            uint32_t hw = crc32c_extend(0, buf + start, len);
            cr_assert_eq(hw, crc32c_extend_software(0, buf + start, len));
            uint32_t split = crc32c_extend(crc32c_extend(0, buf + start, len / 3),
                                           buf + start + len / 3, len - len / 3);
            cr_assert_eq(hw, split);
        }
}

Test(wal_record, round_trips_through_encode_and_decode)
{
    uint8_t buf[512];
    const char payload[] = "hold 3 of SKU-1 at LOC-7";
    size_t n = wal_record_encode(buf, sizeof buf, 42, -5, 9, payload, sizeof payload);
    cr_assert_eq(n, sizeof payload + WAL_RECORD_OVERHEAD_BYTES);
    wal_record_t record;
    const char *reason;
    cr_assert_eq(wal_record_decode(buf, n, &record, &reason), 1);
    cr_assert_eq(record.lsn, 42);
    cr_assert_eq(record.time_ms, -5);
    cr_assert_eq(record.type, 9);
    cr_assert_eq(record.payload_bytes, sizeof payload);
    cr_assert_eq(record.record_bytes, n);
    cr_assert_arr_eq(record.payload, payload, sizeof payload);
    n = wal_record_encode(buf, sizeof buf, 1, 0, 0, NULL, 0);
    cr_assert_eq(wal_record_decode(buf, n, &record, &reason), 1, "an empty payload is valid");
}

Test(wal_record, every_single_bit_flip_is_detected)
{
    uint8_t buf[128];
    size_t n = wal_record_encode(buf, sizeof buf, 7, 1234, 3, "abcdefgh", 8);
    for (size_t bit = 0; bit < n * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        wal_record_t record;
        const char *reason = NULL;
        cr_assert_eq(wal_record_decode(buf, n, &record, &reason), ALLOT_ECORRUPT, "bit %zu", bit);
        cr_assert_not_null(reason);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

Test(wal_record, zeros_mean_end_of_log_and_short_garbage_is_bad)
{
    uint8_t zeros[64] = {0};
    wal_record_t record;
    const char *reason;
    cr_assert_eq(wal_record_decode(zeros, sizeof zeros, &record, &reason), 0);
    cr_assert_eq(wal_record_decode(zeros, 5, &record, &reason), 0);
    uint8_t buf[64];
    size_t n = wal_record_encode(buf, sizeof buf, 3, 0, 1, "xyz", 3);
    for (size_t cut = 1; cut < n; cut++)
        cr_assert_eq(wal_record_decode(buf, cut, &record, &reason), ALLOT_ECORRUPT, "cut %zu", cut);
}

/* ---- fault seam ------------------------------------------------------------------------ */

Test(persist_fault, env_spec_fails_the_named_call_after_n_successes)
{
    setenv("ALLOT_FAULT", "fdatasync:EIO:after=2,fallocate:28", 1);
    cr_assert_eq(persist_fault_env_load(), 0);
    FILE *f = tmpfile();
    int fd = fileno(f);
    cr_assert_eq(persist_fdatasync(fd), 0);
    cr_assert_eq(persist_fdatasync(fd), 0);
    cr_assert_eq(persist_fdatasync(fd), -EIO);
    cr_assert_eq(persist_fdatasync(fd), -EIO, "a broken disk stays broken");
    cr_assert_eq(persist_fallocate(fd, 4096), -ENOSPC);
    cr_assert_eq(persist_pwrite_all(fd, "x", 1, 0), 0);
    cr_assert_eq(persist_fault_calls(PERSIST_FAULT_FDATASYNC), 4);
    persist_fault_clear_all();
    cr_assert_eq(persist_fdatasync(fd), 0);
    fclose(f);
}

Test(persist_fault, env_spec_with_times_fails_only_that_many_calls_then_succeeds_again)
{
    setenv("ALLOT_FAULT", "barrier:EIO:times=1,barrier_cb:ENOSPC:after=1:times=2", 1);
    cr_assert_eq(persist_fault_env_load(), 0);
    cr_assert_eq(persist_fault_hit(PERSIST_FAULT_BARRIER), EIO);
    cr_assert_eq(persist_fault_hit(PERSIST_FAULT_BARRIER), 0, "times=1: once only");
    cr_assert_eq(persist_fault_hit(PERSIST_FAULT_BARRIER_CB), 0, "after=1");
    cr_assert_eq(persist_fault_hit(PERSIST_FAULT_BARRIER_CB), ENOSPC);
    cr_assert_eq(persist_fault_hit(PERSIST_FAULT_BARRIER_CB), ENOSPC);
    cr_assert_eq(persist_fault_hit(PERSIST_FAULT_BARRIER_CB), 0, "times=2: twice only");
    cr_assert_eq(persist_fault_calls(PERSIST_FAULT_BARRIER_CB), 4);
}

Test(persist_fault, env_spec_with_zero_times_is_rejected)
{
    setenv("ALLOT_FAULT", "barrier:EIO:times=0", 1);
    cr_assert_eq(persist_fault_env_load(), ALLOT_EINVALID_ARGUMENT);
}

Test(persist_fault, env_spec_with_an_unknown_option_is_rejected)
{
    setenv("ALLOT_FAULT", "barrier:EIO:once=1", 1);
    cr_assert_eq(persist_fault_env_load(), ALLOT_EINVALID_ARGUMENT);
}

Test(persist_fault, malformed_env_spec_is_rejected)
{
    setenv("ALLOT_FAULT", "fsync:EIO", 1);
    cr_assert_eq(persist_fault_env_load(), ALLOT_EINVALID_ARGUMENT);
}

Test(persist_fault, fault_file_toggles_the_fault, .init = tmp_setup, .fini = tmp_teardown)
{
    char flag[128];
    snprintf(flag, sizeof flag, "%s/full", tmp_root);
    setenv("ALLOT_FAULT_FILE", flag, 1);
    unsetenv("ALLOT_FAULT");
    cr_assert_eq(persist_fault_env_load(), 0);
    FILE *f = tmpfile();
    cr_assert_eq(persist_fallocate(fileno(f), 4096), 0, "no file: no fault");
    fclose(fopen(flag, "w"));
    cr_assert_eq(persist_fallocate(fileno(f), 4096), -ENOSPC);
    unlink(flag);
    cr_assert_eq(persist_fallocate(fileno(f), 4096), 0);
    fclose(f);
}

/* ---- replay ---------------------------------------------------------------------------- */

static test_record_t records[RECORDS_MAX];

/* records[0..count) (LSNs from 1) written through a real WAL into 4 KiB segments: a log of many
 * segments from a few hundred records. */
static void write_log_in_small_segments(size_t count)
{
    make_records(records, count, 1);
    write_records(4096, 1, records, count);
}

static replay_log_t replayed;

Test(wal_replay, returns_records_appended_across_segments_in_order, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(300);
    char paths[64][160];
    cr_assert_gt(list_segments(paths, 64), 5, "small segments: the log rolled over");
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    int rc = wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message);
    cr_assert_eq(rc, 0, "%s", message);
    assert_replayed(&replayed, records, 300);
    cr_assert_eq(result.last_lsn, 300);
    cr_assert_eq(result.records_checked, 300);
    cr_assert_not(result.tail_truncated);
}

Test(wal_replay, skips_records_up_to_after_lsn_and_continues_appending, .init = tmp_setup,
     .fini = tmp_teardown)
{
    make_records(records, 200, 1);
    write_records(4096, 1, records, 120);
    write_records(4096, 121, records + 120, 80);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, 150, collect_cb, &replayed, &result, message, sizeof message),
                 0, "%s", message);
    assert_replayed(&replayed, records + 150, 50);
    cr_assert_eq(result.last_lsn, 200);
}

Test(wal_replay, empty_directory_is_an_empty_log, .init = tmp_setup, .fini = tmp_teardown)
{
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message),
                 0);
    cr_assert_eq(result.last_lsn, 0);
    cr_assert_eq(result.segments, 0);
    /* ...unless a checkpoint covers LSNs: the WAL never loses its newest segment by itself */
    cr_assert_eq(wal_replay(wal_dir, 17, collect_cb, &replayed, &result, message, sizeof message),
                 ALLOT_ECORRUPT);
    cr_assert(strstr(message, "the log was deleted") != NULL, "%s", message);
}

Test(wal_open, refuses_a_next_lsn_that_does_not_follow_the_log, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(10);
    uv_loop_t loop;
    uv_loop_init(&loop);
    wal_config_t config = {.dir = wal_dir, .segment_bytes = 4096};
    wal_t *wal = NULL;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_open(&loop, &config, 13, &wal, NULL, NULL, NULL, message, sizeof message),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_null(wal);
    cr_assert_eq(uv_loop_close(&loop), 0, "a failed open leaves no handle");
}

/* Damage the last record of the newest segment from byte `cut` on (zeros or garbage), check
 * replay truncates it, then reopen, append one record and check it follows. */
static void torn_tail_case(const char *path, const uint8_t *pristine, size_t bytes,
                           uint64_t record_offset, size_t record_bytes, size_t cut, bool garbage,
                           size_t count)
{
    uint8_t *damaged = malloc(bytes);
    memcpy(damaged, pristine, bytes);
    size_t end = garbage ? record_offset + record_bytes + 16 : record_offset + record_bytes;
    for (size_t i = record_offset + cut; i < end && i < bytes; i++)
        damaged[i] = garbage ? (uint8_t)(0xA5 ^ i) : 0;
    header_synced_set(damaged, count - 1); /* the last record's write was never synced */
    file_store(path, damaged, bytes);
    free(damaged);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    memset(&replayed, 0, sizeof replayed);
    int rc = wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message);
    cr_assert_eq(rc, 0, "cut %zu garbage %d: %s", cut, garbage, message);
    assert_replayed(&replayed, records, count - 1);
    bool torn = cut > 0 || garbage;
    cr_assert_eq(result.tail_truncated, torn, "cut %zu garbage %d", cut, garbage);
    if (torn) {
        cr_assert_str_eq(result.tail_file, path);
        cr_assert_eq(result.tail_offset, record_offset);
    }
    test_record_t next;
    make_record(&next, count, cut % 100); /* no longer than the original: same segment */
    write_records(4096, count, &next, 1);
    memset(&replayed, 0, sizeof replayed);
    rc = wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message);
    cr_assert_eq(rc, 0, "after reopen, cut %zu: %s", cut, message);
    cr_assert_not(result.tail_truncated, "wal_open zeroed the torn bytes (cut %zu)", cut);
    cr_assert_eq(replayed.count, count);
    assert_records_equal(replayed.records, records, count - 1);
    assert_records_equal(&replayed.records[count - 1], &next, 1);
}

Test(wal_replay, torn_tail_at_every_byte_of_the_last_record_is_truncated, .init = tmp_setup,
     .fini = tmp_teardown, .timeout = 120)
{
    const size_t count = 70;
    make_records(records, count, 1);
    write_records(4096, 1, records, count);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    cr_assert_gt(segments, 1);
    const char *last = paths[segments - 1];
    size_t bytes;
    uint8_t *pristine = file_load(last, &bytes);
    uint64_t offsets[64];
    size_t n = record_offsets(pristine, bytes, offsets, 64);
    cr_assert_gt(n, 1);
    uint64_t record_offset = offsets[n - 1];
    size_t record_bytes = records[count - 1].len + WAL_RECORD_OVERHEAD_BYTES;
    for (size_t cut = 0; cut < record_bytes; cut++)
        for (int garbage = 0; garbage < 2; garbage++)
            torn_tail_case(last, pristine, bytes, record_offset, record_bytes, cut, garbage, count);
    free(pristine);
}

static void assert_corrupt_at(const char *path, uint64_t offset, uint64_t lsn)
{
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    memset(&replayed, 0, sizeof replayed);
    int rc = wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message);
    cr_assert_eq(rc, ALLOT_ECORRUPT, "rc %d", rc);
    char expected[64];
    cr_assert_not_null(strstr(message, path), "message names the file: %s", message);
    snprintf(expected, sizeof expected, "offset %llu ", (unsigned long long)offset);
    cr_assert_not_null(strstr(message, expected), "message names the offset: %s", message);
    snprintf(expected, sizeof expected, "LSN %llu ", (unsigned long long)lsn);
    cr_assert_not_null(strstr(message, expected), "message names the LSN: %s", message);
    cr_assert_str_eq(result.bad_file, path);
    cr_assert_eq(result.bad_offset, offset);
    cr_assert_eq(result.bad_lsn, lsn);
    cr_assert_eq(replayed.count, lsn - 1, "records before the damage were replayed");
}

/* Flip one bit at byte `delta` of record `index` of segment `segment`. */
static void flip_and_expect_corrupt(size_t segment, size_t index, size_t delta)
{
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    cr_assert_lt(segment, segments);
    size_t bytes;
    uint8_t *data = file_load(paths[segment], &bytes);
    uint64_t offsets[64];
    size_t n = record_offsets(data, bytes, offsets, 64);
    cr_assert_lt(index, n);
    wal_record_t record;
    const char *reason;
    cr_assert_eq(wal_record_decode(data + offsets[index], bytes - offsets[index], &record, &reason),
                 1);
    data[offsets[index] + delta] ^= 0x10;
    file_store(paths[segment], data, bytes);
    free(data);
    assert_corrupt_at(paths[segment], offsets[index], record.lsn);
}

Test(wal_replay, flipped_bit_in_an_earlier_segment_is_corruption, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(150);
    flip_and_expect_corrupt(2, 3, WAL_RECORD_HEADER_BYTES + 1);
}

Test(wal_replay, flipped_bit_mid_newest_segment_is_corruption_not_a_torn_tail, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(150);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    flip_and_expect_corrupt(segments - 1, 1, 2); /* in the length field */
}

Test(wal_replay, flipped_bit_in_the_lsn_of_a_newest_segment_record_is_corruption, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(150);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    flip_and_expect_corrupt(segments - 1, 0, 5);
}

Test(wal_replay, missing_middle_segment_is_an_lsn_gap, .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(150);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    cr_assert_gt(segments, 3);
    cr_assert_eq(unlink(paths[2]), 0);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message),
                 ALLOT_ECORRUPT);
    cr_assert_str_eq(result.bad_file, paths[3]);
    cr_assert_not_null(strstr(message, "LSN gap"), "%s", message);
}

/* ---- truncation ------------------------------------------------------------------------ */

Test(wal_truncate_before, deletes_only_segments_fully_covered_by_the_checkpoint, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(200);
    char before[64][160];
    size_t count_before = list_segments(before, 64);
    cr_assert_gt(count_before, 4);
    uint64_t firsts[64];
    for (size_t i = 0; i < count_before; i++)
        firsts[i] = strtoull(strrchr(before[i], '-') + 1, NULL, 16);
    const uint64_t checkpoint_lsn = firsts[3]; /* segment 3 starts at the checkpoint: keep it */

    uv_loop_t loop;
    uv_loop_init(&loop);
    wal_config_t config = {.dir = wal_dir, .segment_bytes = 4096};
    wal_t *wal = NULL;
    cr_assert_eq(wal_open(&loop, &config, 201, &wal, NULL, NULL, NULL, NULL, 0), 0);
    cr_assert_eq(wal_truncate_before(wal, checkpoint_lsn), 0);
    wal_stats_t stats;
    cr_assert_eq(wal_close(wal, NULL), 0); /* waits for the reaper */
    wal_stats(wal, &stats);
    cr_assert_eq(stats.segments_deleted, 3);
    cr_assert_eq(stats.segment_shrink_steps, 3, "each shrunk (one step of a 4 KiB segment)");
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);

    char after[64][160];
    size_t count_after = list_segments(after, 64);
    cr_assert_eq(count_after, count_before - 3, "segments 0..2 end before %llu",
                 (unsigned long long)checkpoint_lsn);
    cr_assert_str_eq(after[0], before[3]);
    char deleting[200];
    snprintf(deleting, sizeof deleting, "%s/wal-deleting.tmp", wal_dir);
    cr_assert_eq(access(deleting, F_OK), -1, "nothing left of the shrunk segments");
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, checkpoint_lsn, collect_cb, &replayed, &result, message,
                            sizeof message),
                 0, "%s", message);
    assert_replayed(&replayed, records + checkpoint_lsn, 200 - checkpoint_lsn);
    cr_assert_eq(wal_replay(wal_dir, 0, NULL, NULL, &result, message, sizeof message),
                 ALLOT_ECORRUPT, "records 1.. are gone: replay from 0 must say so");
}

/* A crash while the reaper shrinks a deleted segment leaves it renamed out of the log and partly
 * shrunk (persist/wal.h, "Truncation"): replay never reads it and wal_open removes it. */
Test(wal_truncate_before, a_segment_left_mid_shrink_by_a_crash_is_removed_at_open,
     .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(200);
    char before[64][160];
    size_t count = list_segments(before, 64);
    cr_assert_gt(count, 4);
    const uint64_t checkpoint_lsn = strtoull(strrchr(before[1], '-') + 1, NULL, 16);
    char deleting[200];
    snprintf(deleting, sizeof deleting, "%s/wal-deleting.tmp", wal_dir);
    cr_assert_eq(rename(before[0], deleting), 0); /* as the reaper leaves it mid-shrink */
    cr_assert_eq(truncate(deleting, 1000), 0);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, checkpoint_lsn - 1, collect_cb, &replayed, &result, message,
                            sizeof message),
                 0, "%s", message);
    assert_replayed(&replayed, records + checkpoint_lsn - 1, 200 - (checkpoint_lsn - 1));
    uv_loop_t loop;
    uv_loop_init(&loop);
    wal_config_t config = {.dir = wal_dir, .segment_bytes = 4096};
    wal_t *wal = NULL;
    cr_assert_eq(wal_open(&loop, &config, 201, &wal, NULL, NULL, NULL, message, sizeof message), 0,
                 "%s", message);
    cr_assert_eq(access(deleting, F_OK), -1, "wal_open removed it");
    cr_assert_eq(wal_close(wal, NULL), 0);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    char after[64][160];
    cr_assert_eq(list_segments(after, 64), count - 1);
}

Test(wal_truncate_before, never_deletes_the_active_segment, .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(100);
    uv_loop_t loop;
    uv_loop_init(&loop);
    wal_config_t config = {.dir = wal_dir, .segment_bytes = 4096};
    wal_t *wal = NULL;
    cr_assert_eq(wal_open(&loop, &config, 101, &wal, NULL, NULL, NULL, NULL, 0), 0);
    cr_assert_eq(wal_truncate_before(wal, 100), 0);
    cr_assert_eq(wal_close(wal, NULL), 0);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    char after[64][160];
    cr_assert_eq(list_segments(after, 64), 1);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, 100, NULL, NULL, &result, message, sizeof message), 0);
    cr_assert_eq(result.last_lsn, 100);
}

Test(wal_replay, zeroed_hole_in_the_newest_segment_is_an_unsynced_tail_and_is_cut,
     .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(70);
    newest_segment_t seg;
    newest_segment_load(&seg);
    cr_assert_gt(seg.n, 2);
    memset(seg.data + seg.offsets[seg.n - 2], 0,
           12); /* pages of an unsynced write reached disk out of order */
    header_synced_set(seg.data, 68);
    newest_segment_store(&seg);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message), 0,
                 "%s", message);
    cr_assert(result.tail_truncated);
    cr_assert_eq(result.tail_offset, seg.offsets[seg.n - 2]);
    assert_replayed(&replayed, records, 68);
    write_records(4096, 69, records + 68, 2); /* zeroes the rest, appends 69 and 70 again */
    memset(&replayed, 0, sizeof replayed);
    cr_assert_eq(wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message), 0,
                 "%s", message);
    cr_assert_not(result.tail_truncated);
    assert_replayed(&replayed, records, 70);
}

/* ---- read-ahead (wal_preload_*) and wal_open's use of the replay result ------------------ */

static replay_log_t replayed_ahead;

static long threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "Threads: %ld", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* Replay with read-ahead; the reader gets `head_start_us` to fill its window first. */
static int replay_ahead(uint32_t window, useconds_t head_start_us, uint64_t after_lsn,
                        wal_record_cb record_cb, void *ctx, wal_replay_result_t *result,
                        char *message, size_t message_bytes)
{
    wal_preload_t *preload = NULL;
    cr_assert_eq(wal_preload_start(wal_dir, window, &preload), 0);
    cr_assert_not_null(preload);
    if (head_start_us > 0)
        usleep(head_start_us);
    return wal_replay_preloaded(preload, after_lsn, record_cb, NULL, ctx, result, message,
                                message_bytes);
}

static void assert_results_equal(const wal_replay_result_t *a, const wal_replay_result_t *b)
{
    cr_assert_eq(a->segments, b->segments);
    cr_assert_eq(a->records_checked, b->records_checked);
    cr_assert_eq(a->records_replayed, b->records_replayed);
    cr_assert_eq(a->first_lsn, b->first_lsn);
    cr_assert_eq(a->last_lsn, b->last_lsn);
    cr_assert_eq(a->tail_truncated, b->tail_truncated);
    cr_assert_str_eq(a->tail_file, b->tail_file);
    cr_assert_eq(a->tail_offset, b->tail_offset);
    cr_assert_eq(a->tail_bytes, b->tail_bytes);
    cr_assert_str_eq(a->bad_file, b->bad_file);
    cr_assert_eq(a->bad_offset, b->bad_offset);
    cr_assert_eq(a->bad_lsn, b->bad_lsn);
    cr_assert_eq(memcmp(&a->end, &b->end, sizeof a->end), 0);
}

/* wal_replay and every read-ahead window give the same rc, message, result and records. */
static void assert_replay_ahead_matches(uint64_t after_lsn, int rc_expected)
{
    static wal_replay_result_t plain, ahead;
    char message[WAL_MESSAGE_BYTES_MAX], message_ahead[WAL_MESSAGE_BYTES_MAX];
    memset(&replayed, 0, sizeof replayed);
    int rc = wal_replay(wal_dir, after_lsn, collect_cb, &replayed, &plain, message, sizeof message);
    cr_assert_eq(rc, rc_expected, "rc %d: %s", rc, message);
    for (uint32_t window = 1; window <= WAL_PRELOAD_SEGMENTS_MAX; window++)
        for (useconds_t head_start_us = 0; head_start_us <= 30000; head_start_us += 30000) {
            memset(&replayed_ahead, 0, sizeof replayed_ahead);
            rc = replay_ahead(window, head_start_us, after_lsn, collect_cb, &replayed_ahead, &ahead,
                              message_ahead, sizeof message_ahead);
            cr_assert_eq(rc, rc_expected, "window %u: rc %d: %s", window, rc, message_ahead);
            cr_assert_str_eq(message_ahead, message, "window %u", window);
            assert_results_equal(&ahead, &plain);
            assert_replayed(&replayed_ahead, replayed.records, replayed.count);
        }
}

Test(wal_preload, replays_many_small_segments_exactly_like_wal_replay, .init = tmp_setup,
     .fini = tmp_teardown, .timeout = 60)
{
    write_log_in_small_segments(500);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    cr_assert_gt(segments, 2 * WAL_PRELOAD_SEGMENTS_MAX, "more segments than any window");
    assert_replay_ahead_matches(0, 0);
    cr_assert_eq(replayed_ahead.count, 500);
    assert_replay_ahead_matches(150, 0);
    /* most segments covered: the reader skips those it has not read when after_lsn is set */
    assert_replay_ahead_matches(480, 0);
    cr_assert_eq(replayed_ahead.count, 20);
}

Test(wal_preload, corruption_in_a_later_segment_is_reported_like_wal_replay, .init = tmp_setup,
     .fini = tmp_teardown, .timeout = 60)
{
    write_log_in_small_segments(500);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    cr_assert_gt(segments, 9);
    /* beyond every window: the reader finds it while earlier segments are replayed */
    flip_and_expect_corrupt(8, 2, WAL_RECORD_HEADER_BYTES + 1);
    assert_replay_ahead_matches(0, ALLOT_ECORRUPT);
    cr_assert_lt(replayed_ahead.count, 500, "no record after the bad one");
    /* inside the window: found before replay starts, still reported only when reached */
    flip_and_expect_corrupt(1, 0, 5);
    assert_replay_ahead_matches(0, ALLOT_ECORRUPT);
}

Test(wal_preload, corruption_in_a_segment_covered_by_the_checkpoint_is_not_reported,
     .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(300);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    cr_assert_gt(segments, 4);
    size_t bytes;
    uint8_t *data = file_load(paths[1], &bytes);
    data[WAL_SEGMENT_HEADER_BYTES + 30] ^= 0x01;
    file_store(paths[1], data, bytes);
    free(data);
    uint64_t covered_lsn = strtoull(strrchr(paths[3], '-') + 1, NULL, 16) - 1;
    assert_replay_ahead_matches(covered_lsn, 0); /* the reader reads it first: replay ignores */
    cr_assert_eq(replayed_ahead.count, 300 - covered_lsn);
}

Test(wal_preload, torn_tail_is_reported_like_wal_replay, .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(200);
    newest_segment_t seg;
    newest_segment_load(&seg);
    cr_assert_gt(seg.n, 1);
    seg.data[seg.offsets[seg.n - 1] + WAL_RECORD_HEADER_BYTES] ^= 0x40;
    header_synced_set(seg.data, 199);
    newest_segment_store(&seg);
    assert_replay_ahead_matches(0, 0);
    cr_assert_eq(replayed_ahead.count, 199);
}

/* Segments are mapped; where that fails (kernel before 5.14, I/O error while faulting pages
 * in) they are read with pread, with the same result. */
static void assert_pread_matches_mapped(int rc_expected)
{
    static replay_log_t mapped;
    static wal_replay_result_t mapped_result;
    char mapped_message[WAL_MESSAGE_BYTES_MAX];
    persist_fault_clear(PERSIST_FAULT_MAP);
    memset(&mapped, 0, sizeof mapped);
    cr_assert_eq(wal_replay(wal_dir, 0, collect_cb, &mapped, &mapped_result, mapped_message,
                            sizeof mapped_message),
                 rc_expected);
    uint64_t calls = persist_fault_calls(PERSIST_FAULT_MAP);
    persist_fault_set(PERSIST_FAULT_MAP, EINVAL, 0);
    assert_replay_ahead_matches(0, rc_expected); /* leaves the pread replay in `replayed` */
    cr_assert_gt(persist_fault_calls(PERSIST_FAULT_MAP), calls, "mapping was tried");
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    memset(&replayed, 0, sizeof replayed);
    cr_assert_eq(wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message),
                 rc_expected);
    cr_assert_str_eq(message, mapped_message);
    assert_results_equal(&result, &mapped_result);
    assert_replayed(&replayed, mapped.records, mapped.count);
    persist_fault_clear(PERSIST_FAULT_MAP);
}

Test(wal_replay, reads_segments_with_pread_where_they_cannot_be_mapped, .init = tmp_setup,
     .fini = tmp_teardown, .timeout = 60)
{
    write_log_in_small_segments(500);
    assert_pread_matches_mapped(0);
    cr_assert_eq(replayed.count, 500);
    flip_and_expect_corrupt(8, 2, WAL_RECORD_HEADER_BYTES + 1);
    assert_pread_matches_mapped(ALLOT_ECORRUPT);
}

static int stop_at_200_cb(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type,
                          const uint8_t *payload, size_t len)
{
    if (lsn == 200)
        return *(int *)ctx;
    return collect_cb(&replayed_ahead, lsn, time_ms, type, payload, len);
}

Test(wal_preload, record_cb_error_stops_replay_and_joins_the_reader, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(500);
    long threads_before = threads_now();
    wal_preload_t *preload = NULL;
    cr_assert_eq(wal_preload_start(wal_dir, 2, &preload), 0);
    usleep(20000);
    cr_assert_eq(threads_now(), threads_before + 1, "the reader waits: its window is full");
    int stop_rc = 42;
    memset(&replayed_ahead, 0, sizeof replayed_ahead);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay_preloaded(preload, 0, stop_at_200_cb, NULL, &stop_rc, &result, message,
                                      sizeof message),
                 42);
    cr_assert_eq(threads_now(), threads_before, "the reader was joined");
    assert_replayed(&replayed_ahead, records, 199);
}

Test(wal_preload, a_record_the_state_refuses_is_named_by_file_offset_and_lsn, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(300);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    size_t i = segments - 1;
    while (strtoull(strrchr(paths[i], '-') + 1, NULL, 16) > 200)
        i--;
    uint64_t first_lsn = strtoull(strrchr(paths[i], '-') + 1, NULL, 16);
    size_t bytes;
    uint8_t *data = file_load(paths[i], &bytes);
    uint64_t offsets[64];
    cr_assert_gt(record_offsets(data, bytes, offsets, 64), 200 - first_lsn);
    free(data);
    int stop_rc = ALLOT_ECORRUPT;
    wal_replay_result_t plain, ahead;
    char message[WAL_MESSAGE_BYTES_MAX], message_ahead[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, 0, stop_at_200_cb, &stop_rc, &plain, message, sizeof message),
                 ALLOT_ECORRUPT);
    cr_assert_str_eq(plain.bad_file, paths[i]);
    cr_assert_eq(plain.bad_offset, offsets[200 - first_lsn]);
    cr_assert_eq(plain.bad_lsn, 200);
    cr_assert_not_null(strstr(message, "could not apply"), "%s", message);
    cr_assert_eq(replay_ahead(3, 20000, 0, stop_at_200_cb, &stop_rc, &ahead, message_ahead,
                              sizeof message_ahead),
                 ALLOT_ECORRUPT);
    cr_assert_str_eq(message_ahead, message);
    assert_results_equal(&ahead, &plain);
}

Test(wal_preload, cancel_without_replay_joins_the_reader_and_frees_every_buffer, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(300);
    long threads_before = threads_now();
    for (uint32_t window = 1; window <= WAL_PRELOAD_SEGMENTS_MAX; window++) {
        wal_preload_t *preload = NULL;
        cr_assert_eq(wal_preload_start(wal_dir, window, &preload), 0);
        usleep(window * 5000); /* sometimes mid-read, sometimes waiting on a full window */
        wal_preload_cancel(preload);
        cr_assert_eq(threads_now(), threads_before);
    }
    wal_preload_cancel(NULL);
    wal_preload_t *preload = NULL;
    cr_assert_eq(wal_preload_start(wal_dir, 0, &preload), ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(wal_preload_start(wal_dir, WAL_PRELOAD_SEGMENTS_MAX + 1, &preload),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_null(preload);
}

Test(wal_preload, missing_directory_is_an_empty_log, .init = tmp_setup, .fini = tmp_teardown)
{
    long threads_before = threads_now();
    wal_preload_t *preload = NULL;
    cr_assert_eq(wal_preload_start(wal_dir, 2, &preload), 0);
    cr_assert_eq(threads_now(), threads_before, "nothing to read: no thread");
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay_preloaded(preload, 0, collect_cb, NULL, &replayed, &result, message,
                                      sizeof message),
                 0, "%s", message);
    cr_assert_eq(result.last_lsn, 0);
    cr_assert_eq(result.segments, 0);
    cr_assert_eq(result.end.segment_first_lsn, 0);
}

Test(wal_replay, stray_bytes_anywhere_in_the_zeroed_rest_of_the_newest_segment_are_a_torn_tail,
     .init = tmp_setup, .fini = tmp_teardown)
{
    make_records(records, 40, 1);
    write_records(1u << 16, 1, records, 40);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    cr_assert_eq(segments, 1);
    size_t bytes;
    uint8_t *data = file_load(paths[0], &bytes);
    uint64_t offsets[64];
    size_t n = record_offsets(data, bytes, offsets, 64);
    cr_assert_eq(n, 40);
    uint64_t end = offsets[n - 1] + records[n - 1].len + WAL_RECORD_OVERHEAD_BYTES;
    const uint64_t at[] = {end + 1,    end + 12,   end + 63,   end + 64,  end + 65, end + 1000,
                           bytes - 65, bytes - 64, bytes - 63, bytes - 2, bytes - 1};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        data[at[k]] = 0x5A;
        file_store(paths[0], data, bytes);
        data[at[k]] = 0;
        wal_replay_result_t result;
        char message[WAL_MESSAGE_BYTES_MAX];
        memset(&replayed, 0, sizeof replayed);
        cr_assert_eq(
            wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message), 0,
            "%s", message);
        assert_replayed(&replayed, records, 40);
        cr_assert(result.tail_truncated, "stray byte at %llu", (unsigned long long)at[k]);
        cr_assert_eq(result.tail_offset, end);
        cr_assert_eq(result.tail_bytes, at[k] + 1 - end, "stray byte at %llu",
                     (unsigned long long)at[k]);
        cr_assert_eq(result.end.torn_bytes, result.tail_bytes);
        cr_assert_eq(result.end.offset, end);
    }
    free(data);
    make_record(&records[40], 41, 10);
    write_records(1u << 16, 41, &records[40], 1); /* wal_open zeroes the stray byte */
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    memset(&replayed, 0, sizeof replayed);
    cr_assert_eq(wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message),
                 0);
    cr_assert_not(result.tail_truncated);
    assert_replayed(&replayed, records, 41);
}

/* wal_open with config.log_end = &result.end: continue after the last record, zero the torn
 * tail the replay found. */
static wal_t *open_with_log_end(uv_loop_t *loop, const wal_log_end_t *log_end, uint64_t next_lsn,
                                int rc_expected)
{
    wal_config_t config = {.dir = wal_dir, .segment_bytes = 4096, .log_end = log_end};
    wal_t *wal = NULL;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_open(loop, &config, next_lsn, &wal, NULL, NULL, NULL, message, sizeof message),
                 rc_expected, "%s", message);
    return wal;
}

static void append_close(uv_loop_t *loop, wal_t *wal, const test_record_t *r)
{
    cr_assert_eq(wal_append(wal, r->type, r->time_ms, r->payload, r->len), r->lsn);
    cr_assert_eq(wal_close(wal, NULL), 0);
    cr_assert_eq(uv_run(loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(loop), 0);
}

Test(wal_open, takes_the_end_of_the_log_and_its_torn_tail_from_the_replay_result, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(70);
    newest_segment_t seg;
    newest_segment_load(&seg);
    seg.data[seg.offsets[seg.n - 1] + 3] = 0x77; /* the last record's length: torn */
    header_synced_set(seg.data, 69);
    newest_segment_store(&seg);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(replay_ahead(2, 0, 0, NULL, NULL, &result, message, sizeof message), 0);
    cr_assert(result.tail_truncated);
    cr_assert_eq(result.last_lsn, 69);
    cr_assert_eq(result.end.offset, seg.offsets[seg.n - 1]);
    cr_assert_eq(result.end.torn_bytes, result.tail_bytes);
    cr_assert_eq(result.end.segment_bytes, seg.bytes);
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_null(open_with_log_end(&loop, &result.end, 71, ALLOT_EINVALID_ARGUMENT));
    wal_t *wal = open_with_log_end(&loop, &result.end, 70, 0);
    make_record(&records[69], 70, 3);
    append_close(&loop, wal, &records[69]);
    memset(&replayed, 0, sizeof replayed);
    cr_assert_eq(wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message), 0,
                 "%s", message);
    cr_assert_not(result.tail_truncated, "wal_open zeroed the torn tail");
    assert_replayed(&replayed, records, 70);
}

Test(wal_open, trusts_a_matching_log_end_without_reading_the_segment_and_checks_a_stale_one,
     .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(70);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, 0, NULL, NULL, &result, message, sizeof message), 0);
    cr_assert_eq(result.end.last_lsn, 70);
    /* A log_end for another segment (or size) is not used: wal_open reads the segment. */
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    wal_log_end_t stale = result.end;
    stale.segment_first_lsn = 1;
    stale.last_lsn = 12;
    cr_assert_null(open_with_log_end(&loop, &stale, 13, ALLOT_EINVALID_ARGUMENT));
    stale = result.end;
    stale.segment_bytes = 8192;
    stale.last_lsn = 12;
    cr_assert_null(open_with_log_end(&loop, &stale, 13, ALLOT_EINVALID_ARGUMENT));
    /* A matching one is taken as is: here it claims record 70 is a torn tail, which a
     * reading wal_open would refuse (the log ends at 70); wal_open zeroes it instead. */
    newest_segment_t seg;
    newest_segment_load(&seg);
    free(seg.data);
    wal_log_end_t claimed = result.end;
    claimed.last_lsn = 69;
    claimed.offset = seg.offsets[seg.n - 1];
    claimed.torn_bytes = result.end.offset - seg.offsets[seg.n - 1];
    wal_t *wal = open_with_log_end(&loop, &claimed, 70, 0);
    make_record(&records[69], 70, 5);
    append_close(&loop, wal, &records[69]);
    memset(&replayed, 0, sizeof replayed);
    cr_assert_eq(wal_replay(wal_dir, 0, collect_cb, &replayed, &result, message, sizeof message), 0,
                 "%s", message);
    assert_replayed(&replayed, records, 70);
}

/* ---- damage the header's synced LSN exposes, missing segments, accepted loss (version 2) --- */

/* Replay (no read-ahead) expecting rc; the message in `message`. */
static int replay_expect(uint64_t after_lsn, int rc_expected, wal_replay_result_t *result,
                         char *message)
{
    memset(&replayed, 0, sizeof replayed);
    int rc = wal_replay(wal_dir, after_lsn, collect_cb, &replayed, result, message,
                        WAL_MESSAGE_BYTES_MAX);
    cr_assert_eq(rc, rc_expected, "rc %d: %s", rc, message);
    return rc;
}

Test(wal_replay, damage_to_a_synced_last_record_is_corruption_not_a_torn_tail, .init = tmp_setup,
     .fini = tmp_teardown)
{
    /* The same damage the torn-tail test cuts off, but the header says the record was synced
     * (it was acknowledged): cutting it would lose an acknowledged write. */
    write_log_in_small_segments(70);
    newest_segment_t seg;
    newest_segment_load(&seg);
    uint64_t offset = seg.offsets[seg.n - 1];
    seg.data[offset + WAL_RECORD_HEADER_BYTES + 1] ^= 0x08;
    newest_segment_store(&seg);
    assert_corrupt_at(seg.path, offset, 70);
    static wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    replay_expect(0, ALLOT_ECORRUPT, &result, message);
    cr_assert(strstr(message, "synced LSN") != NULL, "%s", message);
}

Test(wal_replay, a_zeroed_block_a_third_into_the_newest_segment_is_corruption, .init = tmp_setup,
     .fini = tmp_teardown)
{
    make_records(records, 400, 1);
    write_records(1u << 20, 1, records, 400); /* one segment, about 40 KiB of records */
    newest_segment_t seg;
    newest_segment_load(&seg);
    cr_assert_eq(seg.n, 64, "record_offsets stops at 64");
    uint64_t end = WAL_SEGMENT_HEADER_BYTES;
    wal_record_t record;
    const char *reason;
    while (wal_record_decode(seg.data + end, seg.bytes - end, &record, &reason) == 1)
        end += record.record_bytes;
    uint64_t hole = (WAL_SEGMENT_HEADER_BYTES + (end - WAL_SEGMENT_HEADER_BYTES) / 3) & ~4095ull;
    memset(seg.data + hole, 0, 4096);
    newest_segment_store(&seg);
    static wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    replay_expect(0, ALLOT_ECORRUPT, &result, message);
    cr_assert_str_eq(result.bad_file, seg.path);
    cr_assert_lt(result.bad_lsn, 200, "the damage is named where it starts: %s", message);
    cr_assert_eq(replayed.count, result.bad_lsn - 1, "records before it were replayed");
}

Test(wal_replay, records_missing_up_to_the_synced_lsn_are_corruption, .init = tmp_setup,
     .fini = tmp_teardown)
{
    /* The last records zeroed cleanly (no stray byte): the segment just ends early. */
    write_log_in_small_segments(70);
    newest_segment_t seg;
    newest_segment_load(&seg);
    uint64_t from = seg.offsets[seg.n - 2];
    memset(seg.data + from, 0, seg.bytes - from);
    newest_segment_store(&seg);
    assert_corrupt_at(seg.path, from, 69);
}

Test(wal_replay, a_truncated_segment_is_corruption, .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(150);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    for (size_t k = 0; k < 2; k++) { /* the newest, then a middle one */
        const char *path = paths[k == 0 ? segments - 1 : segments / 2];
        size_t bytes;
        uint8_t *data = file_load(path, &bytes);
        cr_assert_eq(truncate(path, (off_t)(bytes - 1024)), 0);
        static wal_replay_result_t result;
        char message[WAL_MESSAGE_BYTES_MAX];
        replay_expect(0, ALLOT_ECORRUPT, &result, message);
        cr_assert_str_eq(result.bad_file, path);
        cr_assert(strstr(message, "truncated") != NULL, "%s", message);
        FILE *f = fopen(path, "wb"); /* restore it */
        cr_assert_eq(fwrite(data, 1, bytes, f), bytes);
        fclose(f);
        free(data);
        replay_expect(0, 0, &result, message);
    }
}

/* Remove the newest `count` segments (0: all). */
static void segments_delete_newest(size_t count)
{
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    size_t from = count == 0 ? 0 : segments - count;
    for (size_t i = from; i < segments; i++)
        cr_assert_eq(unlink(paths[i]), 0);
}

Test(wal_replay, a_deleted_newest_segment_is_missing_not_the_end_of_the_log, .init = tmp_setup,
     .fini = tmp_teardown)
{
    for (size_t deleted = 1; deleted <= 2; deleted++) {
        write_log_in_small_segments(150);
        char paths[64][160];
        size_t segments = list_segments(paths, 64);
        segments_delete_newest(deleted);
        static wal_replay_result_t result;
        char message[WAL_MESSAGE_BYTES_MAX];
        replay_expect(0, ALLOT_ECORRUPT, &result, message);
        cr_assert_str_eq(result.bad_file, paths[segments - 1], "names the newest: %s", message);
        cr_assert(strstr(message, "missing") != NULL, "%s", message);
        tmp_teardown();
        tmp_setup();
    }
}

Test(wal_replay, a_log_whose_every_segment_was_deleted_is_missing, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(40);
    segments_delete_newest(0);
    static wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    replay_expect(0, ALLOT_ECORRUPT, &result, message); /* no checkpoint yet: wal-end tells */
    cr_assert(strstr(message, "missing") != NULL, "%s", message);
    char path[200];
    snprintf(path, sizeof path, "%s/%s", wal_dir, WAL_END_FILE_NAME);
    cr_assert_eq(unlink(path), 0);
    replay_expect(0, 0, &result, message); /* nothing says a log existed: a new data dir */
    replay_expect(12, ALLOT_ECORRUPT, &result, message); /* the checkpoint says it did */
}

Test(wal_replay, a_missing_or_damaged_wal_end_beside_version_2_segments_is_corruption,
     .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(40);
    char path[200];
    snprintf(path, sizeof path, "%s/%s", wal_dir, WAL_END_FILE_NAME);
    size_t bytes;
    uint8_t *data = file_load(path, &bytes);
    cr_assert_eq(bytes, WAL_END_FILE_BYTES);
    data[17] ^= 0x01;
    file_store(path, data, bytes);
    static wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    replay_expect(0, ALLOT_ECORRUPT, &result, message);
    cr_assert(strstr(message, "wal-end is damaged") != NULL, "%s", message);
    cr_assert_eq(unlink(path), 0);
    replay_expect(0, ALLOT_ECORRUPT, &result, message);
    cr_assert(strstr(message, "wal-end is missing") != NULL, "%s", message);
    free(data);
}

Test(wal_open, an_empty_directory_gets_its_first_segment_and_wal_end_at_once, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_records(4096, 33, NULL, 0); /* after a checkpoint at 32, say */
    char path[200];
    snprintf(path, sizeof path, "%s/wal-%016x.log", wal_dir, 33u);
    cr_assert_eq(access(path, F_OK), 0, "the first segment");
    snprintf(path, sizeof path, "%s/%s", wal_dir, WAL_END_FILE_NAME);
    cr_assert_eq(access(path, F_OK), 0, "wal-end");
    static wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    replay_expect(32, 0, &result, message);
    cr_assert_eq(result.last_lsn, 32);
}

/* A version 1 log (as an older allotd wrote it): count records in 4096-byte segments. */
static void write_v1_log(size_t count)
{
    cr_assert_eq(mkdir(wal_dir, 0750), 0);
    make_records(records, count, 1);
    size_t i = 0;
    while (i < count) {
        uint8_t segment[4096] = {0};
        memcpy(segment, "ALLOTWAL", 8);
        segment[8] = 1;
        segment[12] = 32;
        for (int b = 0; b < 8; b++)
            segment[16 + b] = (uint8_t)(records[i].lsn >> (8 * b));
        uint32_t crc = crc32c_extend(0, segment, 28);
        for (int b = 0; b < 4; b++)
            segment[28 + b] = (uint8_t)(crc >> (8 * b));
        char path[200];
        snprintf(path, sizeof path, "%s/wal-%016llx.log", wal_dir,
                 (unsigned long long)records[i].lsn);
        size_t off = WAL_SEGMENT_HEADER_BYTES_V1;
        while (i < count && off + records[i].len + WAL_RECORD_OVERHEAD_BYTES <= sizeof segment) {
            off += wal_record_encode(segment + off, sizeof segment - off, records[i].lsn,
                                     records[i].time_ms, records[i].type, records[i].payload,
                                     records[i].len);
            i++;
        }
        FILE *f = fopen(path, "wb");
        cr_assert_eq(fwrite(segment, 1, sizeof segment, f), sizeof segment);
        fclose(f);
    }
}

Test(wal_replay, a_version_1_log_is_read_and_continued_in_version_2_segments, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_v1_log(60);
    static wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    replay_expect(0, 0, &result, message);
    assert_replayed(&replayed, records, 60);
    cr_assert_eq(result.end.version, 1);
    char v1_newest[64][160];
    size_t v1_segments = list_segments(v1_newest, 64);
    /* A torn tail of a version 1 segment is cut as before (it has no synced LSN). */
    newest_segment_t seg;
    seg.data = NULL;
    snprintf(seg.path, sizeof seg.path, "%s", v1_newest[v1_segments - 1]);
    seg.data = file_load(seg.path, &seg.bytes);
    uint64_t off = WAL_SEGMENT_HEADER_BYTES_V1, last = off;
    wal_record_t record;
    const char *reason;
    while (wal_record_decode(seg.data + off, seg.bytes - off, &record, &reason) == 1) {
        last = off;
        off += record.record_bytes;
    }
    seg.data[last + 2] = 0x66;
    newest_segment_store(&seg);
    replay_expect(0, 0, &result, message);
    cr_assert(result.tail_truncated);
    assert_replayed(&replayed, records, 59);
    /* Appending goes on in a new version 2 segment; the old one is left as it was. */
    write_records(4096, 60, &records[59], 1);
    char paths[64][160];
    cr_assert_eq(list_segments(paths, 64), v1_segments + 1);
    size_t bytes;
    uint8_t *data = file_load(paths[v1_segments], &bytes);
    cr_assert_eq(data[8], WAL_FORMAT_VERSION);
    free(data);
    replay_expect(0, 0, &result, message);
    assert_replayed(&replayed, records, 60);
    cr_assert_eq(result.end.version, WAL_FORMAT_VERSION);
}

/* Replay with accepted loss (read-ahead, as allotd does). */
static int replay_accepting(uint64_t after_lsn, wal_replay_result_t *result, char *message)
{
    wal_preload_t *preload = NULL;
    cr_assert_eq(wal_preload_start(wal_dir, 2, &preload), 0);
    wal_preload_accept_loss(preload);
    memset(&replayed, 0, sizeof replayed);
    return wal_replay_preloaded(preload, after_lsn, collect_cb, NULL, &replayed, result, message,
                                WAL_MESSAGE_BYTES_MAX);
}

/* Open at result->end (as allotd does after replay), append the records [from, from + count)
 * as LSNs result->last_lsn + 1.., close. */
static void open_cut_append(const wal_replay_result_t *result, test_record_t *appended,
                            size_t count)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    wal_t *wal = open_with_log_end(&loop, &result->end, result->last_lsn + 1, 0);
    for (size_t i = 0; i < count; i++) {
        make_record(&appended[i], result->last_lsn + 1 + i, 20 + i);
        for (int spins = 0; !wal_has_room(wal, appended[i].len); spins++) {
            cr_assert_lt(spins, 1000);
            wal_flush(wal);
            uv_run(&loop, UV_RUN_ONCE);
        }
        cr_assert_eq(wal_append(wal, appended[i].type, appended[i].time_ms, appended[i].payload,
                                appended[i].len),
                     appended[i].lsn);
    }
    cr_assert_eq(wal_close(wal, NULL), 0);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

static int discarded_files(void)
{
    DIR *d = opendir(wal_dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strstr(e->d_name, ".discarded") != NULL;
    closedir(d);
    return n;
}

Test(wal_replay, accepted_loss_cuts_the_log_at_the_damage_and_appending_continues,
     .init = tmp_setup, .fini = tmp_teardown)
{
    write_log_in_small_segments(150);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    flip_and_expect_corrupt(3, 2, WAL_RECORD_HEADER_BYTES + 1);
    static wal_replay_result_t strict, accepted;
    char message[WAL_MESSAGE_BYTES_MAX], strict_message[WAL_MESSAGE_BYTES_MAX];
    replay_expect(0, ALLOT_ECORRUPT, &strict, strict_message);
    cr_assert_eq(replay_accepting(0, &accepted, message), 0, "%s", message);
    cr_assert(accepted.data_loss);
    cr_assert_str_eq(accepted.loss_message, strict_message, "the same words");
    cr_assert_str_eq(accepted.bad_file, strict.bad_file);
    cr_assert_eq(accepted.bad_lsn, strict.bad_lsn);
    cr_assert_eq(accepted.last_lsn, strict.bad_lsn - 1);
    cr_assert_eq(replayed.count, strict.bad_lsn - 1);
    test_record_t appended[5];
    open_cut_append(&accepted, appended, 5);
    cr_assert_eq(discarded_files(), (int)(segments - 4), "the segments after the cut one");
    static wal_replay_result_t after;
    replay_expect(0, 0, &after, message);
    cr_assert_not(after.tail_truncated);
    cr_assert_eq(replayed.count, strict.bad_lsn - 1 + 5);
    assert_records_equal(replayed.records, records, strict.bad_lsn - 1);
    assert_records_equal(&replayed.records[strict.bad_lsn - 1], appended, 5);
}

Test(wal_replay, accepted_loss_of_deleted_segments_goes_on_from_what_is_left, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(150);
    segments_delete_newest(2);
    static wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    replay_expect(0, ALLOT_ECORRUPT, &result, message);
    cr_assert_eq(replay_accepting(0, &result, message), 0, "%s", message);
    cr_assert(result.data_loss);
    cr_assert(strstr(result.loss_message, "missing") != NULL, "%s", result.loss_message);
    uint64_t left = result.last_lsn;
    cr_assert_lt(left, 150);
    cr_assert_eq(replayed.count, left);
    test_record_t appended[3];
    open_cut_append(&result, appended, 3);
    replay_expect(0, 0, &result, message);
    cr_assert_eq(replayed.count, left + 3);
    assert_records_equal(replayed.records, records, left);
    assert_records_equal(&replayed.records[left], appended, 3);

    /* Every segment gone while a checkpoint covers LSN left + 3: start after it. */
    segments_delete_newest(0);
    replay_expect(left + 3, ALLOT_ECORRUPT, &result, message);
    cr_assert_eq(replay_accepting(left + 3, &result, message), 0, "%s", message);
    cr_assert(result.data_loss);
    cr_assert_eq(result.last_lsn, left + 3);
    open_cut_append(&result, appended, 2);
    replay_expect(left + 3, 0, &result, message);
    assert_replayed(&replayed, appended, 2);
}

Test(wal_replay, accepted_loss_sets_aside_a_segment_whose_header_is_damaged, .init = tmp_setup,
     .fini = tmp_teardown)
{
    write_log_in_small_segments(150);
    char paths[64][160];
    size_t segments = list_segments(paths, 64);
    size_t bytes;
    uint8_t *data = file_load(paths[4], &bytes);
    data[20] ^= 0x01; /* the first LSN, under the header's checksum */
    file_store(paths[4], data, bytes);
    free(data);
    static wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(replay_accepting(0, &result, message), 0, "%s", message);
    cr_assert(result.data_loss && result.end.header_damaged);
    cr_assert_str_eq(result.bad_file, paths[4]);
    test_record_t appended[2];
    open_cut_append(&result, appended, 2);
    cr_assert_eq(discarded_files(), (int)(segments - 4), "the damaged one and every later one");
    replay_expect(0, 0, &result, message);
    cr_assert_eq(replayed.count, result.last_lsn);
}
