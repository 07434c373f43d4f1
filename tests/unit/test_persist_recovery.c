/* test_persist_recovery.c - recovery_run (persist/recovery.h): a data directory written by a live
 * state (a checkpoint, then WAL records after it) comes back as that state, with the reports
 * allotd logs, in order; damage is refused or, with accept_data_loss, cut; nothing stays open
 * after a failure. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_core_fixture.h"

#include "core/errors.h"
#include "persist/checkpoint.h"
#include "persist/recovery.h"
#include "persist/wal.h"

#define REPORTS_MAX       16
#define REPORT_TEXT_BYTES 2048
#define SEGMENT_BYTES     (1u << 16)

static char data_dir[64];
static char wal_dir[96];
static char store_path[96];

/* What recovery reported: "level event key=value ..." per report. */
static char reports[REPORTS_MAX][REPORT_TEXT_BYTES];
static size_t report_count;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(data_dir, sizeof(data_dir), "/tmp/allot-recovery-test-XXXXXX");
    cr_assert_not_null(mkdtemp(data_dir));
    snprintf(wal_dir, sizeof(wal_dir), "%s/wal", data_dir);
    snprintf(store_path, sizeof(store_path), "%s/%s", data_dir, CHECKPOINT_FILE_NAME);
    cr_assert_eq(mkdir(wal_dir, 0750), 0);
    report_count = 0;
}

static void teardown(void)
{
    fx_log_reset();
    nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_report(void *ctx, recovery_level_t level, const char *event,
                      const recovery_field_t *fields, size_t count)
{
    static const char *const levels[] = {"info", "warn", "error"};
    cr_assert_eq(ctx, reports);
    cr_assert_lt(report_count, REPORTS_MAX);
    cr_assert_leq(count, RECOVERY_FIELDS_MAX);
    char *text = reports[report_count++];
    int n = snprintf(text, REPORT_TEXT_BYTES, "%s %s", levels[level], event);
    for (size_t i = 0; i < count; i++) {
        if (fields[i].kind == RECOVERY_FIELD_STR)
            n += snprintf(text + n, REPORT_TEXT_BYTES - n, " %s=%s", fields[i].key, fields[i].str);
        else
            n += snprintf(text + n, REPORT_TEXT_BYTES - n, " %s=%llu", fields[i].key,
                          (unsigned long long)fields[i].number);
    }
}

/* The report of `event` (NULL when there is none); *index gets its position. */
static const char *report_find(const char *event, size_t *index)
{
    for (size_t i = 0; i < report_count; i++) {
        const char *name = strchr(reports[i], ' ') + 1;
        if (strncmp(name, event, strlen(event)) == 0 && name[strlen(event)] == ' ') {
            if (index != NULL)
                *index = i;
            return reports[i];
        }
    }
    return NULL;
}

/* A live state whose first `checkpointed` events are in a checkpoint and the rest in the WAL
 * after it (one segment of SEGMENT_BYTES): 3 locations, 4 SKUs, then reservations and a release. */
static allot_state_t *live_state_written(size_t *checkpointed)
{
    allot_state_t *state = fx_state();
    fx_location(state, (fx_loc_t){.id = "AMS", .lat = 52.37, .lon = 4.89, .priority = 10});
    fx_location(state, (fx_loc_t){.id = "BER", .lat = 52.52, .lon = 13.40, .priority = 20});
    fx_location(state, (fx_loc_t){.id = "PAR", .lat = 48.86, .lon = 2.35, .priority = 30});
    const char *skus[] = {"MUG", "CUP", "HAT", "BAG"};
    for (size_t i = 0; i < 4; i++) {
        fx_stock(state, skus[i], "AMS", 10, 0);
        fx_stock(state, skus[i], "BER", 5, 1);
    }
    *checkpointed = fx_log.count;
    checkpoint_store_t *store;
    char message[CHECKPOINT_MESSAGE_BYTES_MAX];
    cr_assert_eq(checkpoint_store_open(store_path, 0, &store, message, sizeof(message)), 0, "%s",
                 message);
    checkpoint_batch_t *batch = checkpoint_batch_create(true);
    cr_assert_eq(allot_state_snapshot_each(state, checkpoint_batch_snapshot_cb, batch), 0);
    cr_assert_eq(
        checkpoint_store_write(store, &batch, 1, *checkpointed, NULL, message, sizeof(message)), 0,
        "%s", message);
    checkpoint_batch_free(batch);
    checkpoint_store_close(store);
    for (int i = 0; i < 6; i++) {
        char id[24]; /* "cart-" and any int: no truncation warning at any -O */
        snprintf(id, sizeof(id), "cart-%d", i);
        allot_line_input_t line = {S(skus[i % 4]), 2};
        allot_reserve_request_t req = fx_req(id, &line, 1);
        cr_assert_eq(fx_reserve(state, &req, FX_T0, NULL), 0, "%s", fx_err.message);
    }
    const allot_reservation_t *released;
    cr_assert_eq(allot_reservation_release(state, S("cart-0"), FX_T0, &released, &fx_err), 0);
    return state;
}

/* Write events [from, fx_log.count) as WAL records from LSN from + 1 into a new log, plus one
 * record of `extra_type` with `extra` as its payload when extra is not NULL. */
static void wal_write(size_t from, uint8_t extra_type, const char *extra)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    wal_t *wal;
    char message[WAL_MESSAGE_BYTES_MAX];
    wal_config_t config = {.dir = wal_dir, .segment_bytes = SEGMENT_BYTES};
    cr_assert_eq(
        wal_open(&loop, &config, from + 1, &wal, NULL, NULL, NULL, message, sizeof(message)), 0,
        "%s", message);
    for (size_t i = from; i < fx_log.count; i++)
        cr_assert_eq(wal_append(wal, fx_log.events[i].type, FX_T0, fx_log.events[i].payload,
                                fx_log.events[i].len),
                     i + 1);
    if (extra != NULL)
        cr_assert_neq(wal_append(wal, extra_type, FX_T0, extra, strlen(extra)), 0);
    cr_assert_eq(wal_close(wal, NULL), 0);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* The byte offset of record `lsn` in the log's only segment (first LSN `first`). */
static long record_offset(const uint8_t *segment, uint64_t first, uint64_t lsn)
{
    long offset = WAL_SEGMENT_HEADER_BYTES;
    for (uint64_t at = first; at < lsn; at++) {
        wal_record_t record;
        const char *reason;
        cr_assert_eq(wal_record_decode(segment + offset, SEGMENT_BYTES - offset, &record, &reason),
                     1);
        offset += record.record_bytes;
    }
    return offset;
}

/* Overwrite bytes of the log's only segment (first LSN `first`) at record `lsn` + skip. */
static void segment_damage(uint64_t first, uint64_t lsn, long skip, const char *bytes, size_t len)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/wal-%016llx.log", wal_dir, (unsigned long long)first);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "%s", path);
    uint8_t *segment = malloc(SEGMENT_BYTES);
    cr_assert_eq(fread(segment, 1, SEGMENT_BYTES, f), SEGMENT_BYTES);
    cr_assert_eq(fseek(f, record_offset(segment, first, lsn) + skip, SEEK_SET), 0);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
    free(segment);
}

static int recover_into(allot_state_t *state, bool accept_data_loss, recovery_result_t *result)
{
    recovery_config_t config = {.data_dir = data_dir,
                                .accept_data_loss = accept_data_loss,
                                .log_cb = on_report,
                                .log_ctx = reports};
    return recovery_run(&config, state, result);
}

/* Nothing of a failed recovery stays open: the store opens again, and a second recovery of the
 * same directory fails the same way. */
static void assert_nothing_left_open(const recovery_result_t *result, int expected_rc)
{
    cr_assert_null(result->store);
    cr_assert_null(result->archive);
    allot_state_t *again = allot_state_create(NULL);
    recovery_result_t second;
    cr_assert_eq(recover_into(again, false, &second), expected_rc);
    allot_state_destroy(again);
}

Test(recovery, brings_back_the_checkpoint_and_the_wal_after_it, .init = setup, .fini = teardown)
{
    size_t checkpointed;
    allot_state_t *live = live_state_written(&checkpointed);
    wal_write(checkpointed, 0, NULL);
    allot_state_t *state = allot_state_create(NULL);
    recovery_result_t result;
    cr_assert_eq(recover_into(state, false, &result), 0);
    char *want = fx_dump(live), *got = fx_dump(state);
    cr_assert_str_eq(got, want, "the recovered state is the live one");
    cr_assert_eq(result.checkpoint_lsn, checkpointed);
    cr_assert_eq(result.last_lsn, fx_log.count);
    cr_assert_eq(result.records_replayed, fx_log.count - checkpointed);
    cr_assert_eq(result.log_end.last_lsn, fx_log.count, "where wal_open appends");
    cr_assert(!result.tail_truncated && !result.data_loss);
    cr_assert_not_null(result.store);
    cr_assert_not_null(result.archive);
    cr_assert_eq(report_count, 2, "checkpoint_loaded, recovered");
    char expected[512];
    snprintf(expected, sizeof(expected),
             "info checkpoint_loaded path=%s lsn=%zu records=", store_path, checkpointed);
    cr_assert(strncmp(reports[0], expected, strlen(expected)) == 0, "%s", reports[0]);
    snprintf(expected, sizeof(expected),
             "info recovered checkpoint_lsn=%zu replayed=%zu last_lsn=%zu", checkpointed,
             fx_log.count - checkpointed, fx_log.count);
    cr_assert_str_eq(reports[1], expected);
    recovery_close(state, &result);
    cr_assert_null(result.store);
    free(want);
    free(got);
    allot_state_destroy(state);
    allot_state_destroy(live);
}

Test(recovery, creates_the_store_of_a_new_data_directory, .init = setup, .fini = teardown)
{
    allot_state_t *state = allot_state_create(NULL);
    recovery_result_t result;
    cr_assert_eq(recover_into(state, false, &result), 0);
    cr_assert_eq(access(store_path, F_OK), 0, "state.lmdb was created");
    cr_assert_eq(result.checkpoint_lsn, 0);
    cr_assert_eq(result.last_lsn, 0);
    cr_assert_eq(result.records_loaded, 0);
    cr_assert_eq(report_count, 2);
    cr_assert(strstr(reports[0], "info checkpoint_loaded ") == reports[0], "%s", reports[0]);
    cr_assert(strstr(reports[0], " lsn=0 records=0 second_thread=0") != NULL, "%s", reports[0]);
    cr_assert_str_eq(reports[1], "info recovered checkpoint_lsn=0 replayed=0 last_lsn=0");
    recovery_close(state, &result);
    allot_state_destroy(state);
}

Test(recovery, reports_a_torn_tail_and_leaves_it_to_wal_open, .init = setup, .fini = teardown)
{
    size_t checkpointed;
    allot_state_t *live = live_state_written(&checkpointed);
    wal_write(checkpointed, 0, NULL);
    segment_damage(checkpointed + 1, fx_log.count + 1, 0, "\x07\x07\x07\x07\x07\x07\x07", 7);
    allot_state_t *state = allot_state_create(NULL);
    recovery_result_t result;
    cr_assert_eq(recover_into(state, false, &result), 0);
    cr_assert(result.tail_truncated);
    cr_assert_eq(result.log_end.torn_bytes, 7);
    cr_assert_eq(result.last_lsn, fx_log.count);
    size_t torn, recovered;
    const char *line = report_find("wal_torn_tail", &torn);
    cr_assert_not_null(line);
    cr_assert(strncmp(line, "warn wal_torn_tail file=", 24) == 0, "%s", line);
    cr_assert(strstr(line, " bytes=7") != NULL, "%s", line);
    cr_assert_not_null(report_find("recovered", &recovered));
    cr_assert_lt(torn, recovered, "the torn tail is reported before recovered");
    char *want = fx_dump(live), *got = fx_dump(state);
    cr_assert_str_eq(got, want);
    free(want);
    free(got);
    recovery_close(state, &result);
    allot_state_destroy(state);
    allot_state_destroy(live);
}

Test(recovery, refuses_a_damaged_synced_record_naming_it_and_leaves_nothing_open, .init = setup,
     .fini = teardown)
{
    size_t checkpointed;
    allot_state_t *live = live_state_written(&checkpointed);
    wal_write(checkpointed, 0, NULL);
    uint64_t damaged = checkpointed + 3;
    segment_damage(checkpointed + 1, damaged, WAL_RECORD_HEADER_BYTES, "\xff", 1);
    allot_state_t *state = allot_state_create(NULL);
    recovery_result_t result;
    cr_assert_eq(recover_into(state, false, &result), ALLOT_ECORRUPT);
    const char *line = report_find("recovery_failed", NULL);
    cr_assert_not_null(line);
    char expected[128];
    snprintf(expected, sizeof(expected), "(LSN %llu expected)", (unsigned long long)damaged);
    cr_assert(strncmp(line, "error recovery_failed code=INTERNAL checkpoint_lsn=", 51) == 0, "%s",
              line);
    cr_assert(strstr(line, expected) != NULL, "%s", line);
    cr_assert(strstr(line, "hint=inspect with: allot-wal verify <data-dir>; restore") != NULL, "%s",
              line);
    cr_assert_null(report_find("recovered", NULL));
    assert_nothing_left_open(&result, ALLOT_ECORRUPT);
    allot_state_destroy(state);
    allot_state_destroy(live);
}

Test(recovery, with_accept_data_loss_cuts_the_log_at_the_damage, .init = setup, .fini = teardown)
{
    size_t checkpointed;
    allot_state_t *live = live_state_written(&checkpointed);
    wal_write(checkpointed, 0, NULL);
    uint64_t damaged = checkpointed + 3;
    segment_damage(checkpointed + 1, damaged, WAL_RECORD_HEADER_BYTES, "\xff", 1);
    allot_state_t *state = allot_state_create(NULL);
    recovery_result_t result;
    cr_assert_eq(recover_into(state, true, &result), 0);
    cr_assert(result.data_loss);
    cr_assert(result.log_end.cut, "wal_open drops what follows");
    cr_assert_eq(result.last_lsn, damaged - 1);
    cr_assert_eq(result.records_replayed, 2);
    cr_assert_eq(report_count, 4);
    cr_assert(strncmp(reports[0], "warn accept_data_loss message=--accept-data-loss: ", 50) == 0,
              "%s", reports[0]);
    cr_assert(strncmp(reports[1], "info checkpoint_loaded ", 23) == 0, "%s", reports[1]);
    char expected[64];
    snprintf(expected, sizeof(expected), " lsn=%llu message=", (unsigned long long)damaged);
    cr_assert(strncmp(reports[2], "error wal_data_loss_accepted file=", 34) == 0, "%s", reports[2]);
    cr_assert(strstr(reports[2], expected) != NULL, "%s", reports[2]);
    snprintf(expected, sizeof(expected),
             "info recovered checkpoint_lsn=%zu replayed=2 last_lsn=%llu", checkpointed,
             (unsigned long long)damaged - 1);
    cr_assert_str_eq(reports[3], expected);
    recovery_close(state, &result);
    allot_state_destroy(state);
    allot_state_destroy(live);
}

Test(recovery, names_the_lsn_of_a_record_the_state_refuses, .init = setup, .fini = teardown)
{
    size_t checkpointed;
    allot_state_t *live = live_state_written(&checkpointed);
    /* a well-formed WAL record (valid CRC) whose payload core cannot apply */
    wal_write(checkpointed, fx_log.events[0].type, "garbage");
    allot_state_t *state = allot_state_create(NULL);
    recovery_result_t result;
    cr_assert_eq(recover_into(state, false, &result), ALLOT_ECORRUPT);
    const char *line = report_find("recovery_failed", NULL);
    cr_assert_not_null(line);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "error recovery_failed code=INTERNAL lsn=%zu message=the WAL record with this LSN "
             "does not apply to the state hint=inspect with: allot-wal dump <data-dir>",
             fx_log.count + 1);
    cr_assert_str_eq(line, expected);
    assert_nothing_left_open(&result, ALLOT_ECORRUPT);
    allot_state_destroy(state);
    allot_state_destroy(live);
}

Test(recovery, refuses_a_data_directory_path_too_long, .init = setup, .fini = teardown)
{
    char *long_dir = malloc(WAL_PATH_BYTES_MAX + 1);
    memset(long_dir, 'd', WAL_PATH_BYTES_MAX);
    long_dir[WAL_PATH_BYTES_MAX] = '\0';
    recovery_config_t config = {.data_dir = long_dir, .log_cb = on_report, .log_ctx = reports};
    allot_state_t *state = allot_state_create(NULL);
    recovery_result_t result;
    cr_assert_eq(recovery_run(&config, state, &result), ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(report_count, 1);
    cr_assert_str_eq(reports[0], "error recovery_failed code=INVALID_ARGUMENT message=the data "
                                 "directory path is too long");
    cr_assert_null(result.store);
    allot_state_destroy(state);
    free(long_dir);
}
