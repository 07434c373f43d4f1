/* test_persist_wal_commit.c - the live WAL: group commit, durability reports, fsync failure,
 * disk-full handling, interval mode and a clean loop shutdown. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <ftw.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/limits.h"
#include "persist/fault.h"
#include "persist/wal.h"
#include "persist/wal_private.h" /* fill_bytes: what the loop has not handed over yet */

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

/* What the callbacks saw. */
typedef struct observed {
    uint64_t durable_calls;
    uint64_t durable_lsn;
    bool durable_went_backwards;
    uint64_t fatal_calls;
    int fatal_error;
    char fatal_message[WAL_MESSAGE_BYTES_MAX];
    uint64_t closed_calls;
} observed_t;

static observed_t seen;
static uv_loop_t loop;

static void durable_cb(wal_t *wal, uint64_t lsn, void *ctx)
{
    cr_assert_eq(ctx, &seen);
    if (lsn <= seen.durable_lsn)
        seen.durable_went_backwards = true;
    seen.durable_lsn = lsn;
    seen.durable_calls++;
    cr_assert_eq(wal_durable_lsn(wal), lsn);
}

static void fatal_cb(wal_t *wal, int error, const char *message, void *ctx)
{
    (void)wal, (void)ctx;
    seen.fatal_calls++;
    seen.fatal_error = error;
    snprintf(seen.fatal_message, sizeof seen.fatal_message, "%s", message);
}

static void closed_cb(void *ctx)
{
    cr_assert_eq(ctx, &seen);
    seen.closed_calls++;
}

static wal_t *open_wal(wal_config_t config, uint64_t next_lsn)
{
    config.dir = wal_dir;
    wal_t *wal = NULL;
    char message[WAL_MESSAGE_BYTES_MAX];
    int rc = wal_open(&loop, &config, next_lsn, &wal, durable_cb, fatal_cb, &seen, message,
                      sizeof message);
    cr_assert_eq(rc, 0, "wal_open: %s", message);
    return wal;
}

static void close_wal(wal_t *wal, int expected_rc)
{
    cr_assert_eq(wal_close(wal, closed_cb), expected_rc);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(seen.closed_calls, 1);
    cr_assert_eq(uv_loop_close(&loop), 0, "the loop closes with no handle left");
}

static void setup(void)
{
    tmp_setup();
    memset(&seen, 0, sizeof seen);
    cr_assert_eq(uv_loop_init(&loop), 0);
}

/* Replay the whole log in wal_dir (it must succeed) and say what it found. */
static wal_replay_result_t replay_whole_log(void)
{
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, 0, NULL, NULL, &result, message, sizeof message), 0, "%s",
                 message);
    return result;
}

/* The parent's side of a test that forks a child to stop mid-way: the durable LSN the child
 * wrote to the pipe before it stopped itself, once it exited with status 0. */
static uint64_t child_durable_lsn(pid_t child, int pipe_fds[2])
{
    close(pipe_fds[1]);
    uint64_t durable_lsn = 0;
    cr_assert_eq(read(pipe_fds[0], &durable_lsn, sizeof durable_lsn), sizeof durable_lsn);
    close(pipe_fds[0]);
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    return durable_lsn;
}

/* Run loop iterations until durable_lsn reaches lsn (or a fatal error). */
static void run_until_durable(wal_t *wal, uint64_t lsn)
{
    for (int i = 0; wal_durable_lsn(wal) < lsn && seen.fatal_calls == 0; i++) {
        cr_assert_lt(i, 100000);
        wal_flush(wal);
        uv_run(&loop, UV_RUN_ONCE);
    }
}

Test(wal_close, loop_closes_with_no_handles_after_close, .init = setup, .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 16}, 1);
    cr_assert(wal_writable(wal));
    cr_assert_eq(wal_append(wal, 1, 1000, "a", 1), 1);
    cr_assert_eq(wal_append(wal, 2, 1001, "bb", 2), 2);
    cr_assert_eq(wal_last_lsn(wal), 2);
    close_wal(wal, 0);
    cr_assert_eq(seen.durable_lsn, 2, "close flushes, syncs and reports the last batch");
    cr_assert_eq(seen.fatal_calls, 0);
}

/* The id of this process's thread named `name` (allotd names its threads at their start), or
 * 0 when none is, after waiting for it to appear. */
static pid_t thread_named(const char *name)
{
    for (int attempt = 0; attempt < 2000; attempt++) {
        DIR *tasks = opendir("/proc/self/task");
        cr_assert_not_null(tasks);
        pid_t found = 0;
        for (struct dirent *entry; found == 0 && (entry = readdir(tasks)) != NULL;) {
            char path[300], comm[32] = {0};
            snprintf(path, sizeof path, "/proc/self/task/%s/comm", entry->d_name);
            FILE *file = fopen(path, "r");
            if (file == NULL)
                continue;
            if (fgets(comm, sizeof comm, file) != NULL) {
                comm[strcspn(comm, "\n")] = '\0';
                if (strcmp(comm, name) == 0)
                    found = (pid_t)atoi(entry->d_name);
            }
            fclose(file);
        }
        closedir(tasks);
        if (found != 0)
            return found;
        usleep(1000);
    }
    return 0;
}

/* persist/thread_priority.h: the WAL's two threads are never lowered below the process, since
 * one waits for the other (the writer for the reaper's zero window in progress) and every reply
 * waits for the writer. */
Test(wal_threads, the_writer_and_the_reaper_run_at_the_process_priority, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 16}, 1);
    pid_t threads[] = {thread_named("allot-wal"), thread_named("allot-reap")};
    errno = 0;
    int process_nice = getpriority(PRIO_PROCESS, 0);
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        cr_assert_neq(threads[i], 0, "thread %zu is there and named", i);
        cr_assert_eq(sched_getscheduler(threads[i]), SCHED_OTHER, "thread %zu", i);
        errno = 0;
        cr_assert_eq(getpriority(PRIO_PROCESS, (id_t)threads[i]), process_nice, "thread %zu", i);
    }
    close_wal(wal, 0);
}

typedef struct producer {
    wal_t *wal;
    uv_idle_t idle;
    uint64_t records_left;
    uint64_t records_per_iteration;
} producer_t;

/* One loop iteration of a busy server: append some records, then flush at the end. */
static void producer_idle_cb(uv_idle_t *handle)
{
    producer_t *p = handle->data;
    char payload[64];
    for (uint64_t i = 0; i < p->records_per_iteration && p->records_left > 0; i++) {
        cr_assert(wal_has_room(p->wal, sizeof payload));
        memset(payload, (int)p->records_left, sizeof payload);
        cr_assert_neq(wal_append(p->wal, 7, 5, payload, sizeof payload), 0);
        p->records_left--;
    }
    wal_flush(p->wal);
    if (p->records_left == 0)
        uv_idle_stop(handle);
}

Test(wal_group_commit, many_appends_cost_far_fewer_fdatasyncs_than_records, .init = setup,
     .fini = tmp_teardown)
{
    const uint64_t records = 5000;
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 8u << 20}, 1);
    uint64_t syncs_before = persist_fault_calls(PERSIST_FAULT_FDATASYNC);
    wal_stats_t stats_before;
    wal_stats(wal, &stats_before); /* the first segment and wal-end, made by wal_open */
    producer_t p = {.wal = wal, .records_left = records, .records_per_iteration = 3};
    uv_idle_init(&loop, &p.idle);
    p.idle.data = &p;
    uv_idle_start(&p.idle, producer_idle_cb);
    run_until_durable(wal, records);
    uv_close((uv_handle_t *)&p.idle, NULL);
    uint64_t syncs = persist_fault_calls(PERSIST_FAULT_FDATASYNC) - syncs_before;
    wal_stats_t stats;
    wal_stats(wal, &stats);
    cr_assert_eq(seen.durable_lsn, records);
    cr_assert_not(seen.durable_went_backwards, "durable_cb reports monotonically");
    cr_log_info("group commit: %llu fdatasyncs for %llu records", (unsigned long long)syncs,
                (unsigned long long)records);
    cr_assert_lt(syncs * 5, records, "%llu fdatasyncs for %llu records", (unsigned long long)syncs,
                 (unsigned long long)records);
    cr_assert_lt(seen.durable_calls, records);
    cr_assert_eq(stats.records_appended, records);
    cr_assert_eq(stats.fdatasyncs - stats_before.fdatasyncs, syncs);
    cr_assert_leq(stats.batches_written, syncs);
    close_wal(wal, 0);
    wal_replay_result_t result = replay_whole_log();
    cr_assert_eq(result.last_lsn, records);
}

Test(wal_group_commit, histograms_count_each_batch_its_records_and_each_records_fdatasync,
     .init = setup, .fini = tmp_teardown)
{
    const uint64_t records = 3000;
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 8u << 20}, 1);
    wal_stats_t stats_before;
    wal_stats(wal, &stats_before);
    wal_histograms_t *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    cr_assert(before != NULL && after != NULL);
    wal_histograms(wal, before);
    cr_assert_eq(before->batch_records.count, 0, "no batch was written by wal_open");
    producer_t p = {.wal = wal, .records_left = records, .records_per_iteration = 5};
    uv_idle_init(&loop, &p.idle);
    p.idle.data = &p;
    uv_idle_start(&p.idle, producer_idle_cb);
    run_until_durable(wal, records);
    uv_close((uv_handle_t *)&p.idle, NULL);
    wal_stats_t stats;
    wal_stats(wal, &stats);
    wal_histograms(wal, after);
    cr_assert_eq(after->batch_records.count, stats.batches_written);
    cr_assert_eq((uint64_t)after->batch_records.sum, records, "every record in one batch");
    cr_assert_gt(after->batch_records.max, 1, "group commit: some batch held several records");
    cr_assert_geq(after->batch_records.min, 1);
    /* one segment, no rollover: every fdatasync since the open was of records */
    cr_assert_eq(after->fdatasync_us.count - before->fdatasync_us.count,
                 stats.fdatasyncs - stats_before.fdatasyncs);
    cr_assert_geq(after->fdatasync_us.count, stats.batches_written, "fsync always: one a batch");
    close_wal(wal, 0);
    free(before);
    free(after);
}

Test(wal_group_commit, fsync_none_counts_batches_but_times_no_fdatasync, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal =
        open_wal((wal_config_t){.segment_bytes = 1 << 20, .fsync_mode = WAL_FSYNC_NONE}, 1);
    for (uint64_t lsn = 1; lsn <= 20; lsn++) {
        cr_assert_eq(wal_append(wal, 1, 0, "z", 1), lsn);
        run_until_durable(wal, lsn);
    }
    wal_histograms_t *h = malloc(sizeof *h);
    cr_assert_not_null(h);
    wal_histograms(wal, h);
    cr_assert_eq(h->batch_records.count, 20, "one record a batch: each waited for the last");
    cr_assert_eq(h->batch_records.max, 1);
    cr_assert_eq(h->fdatasync_us.count, 0);
    close_wal(wal, 0);
    free(h);
}

Test(wal_group_commit, batch_keeps_growing_while_the_writer_is_busy, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 20}, 1);
    uint64_t syncs_before = persist_fault_calls(PERSIST_FAULT_FDATASYNC);
    wal_append(wal, 1, 0, "x", 1);
    wal_flush(wal); /* batch 1 goes to the writer */
    for (int i = 0; i < 100; i++) {
        wal_append(wal, 1, 0, "y", 1);
        wal_flush(wal); /* writer busy or not: at most one more batch is in flight */
    }
    run_until_durable(wal, 101);
    cr_assert_leq(persist_fault_calls(PERSIST_FAULT_FDATASYNC) - syncs_before, 101);
    close_wal(wal, 0);
}

/* Wait until the zero fills wal_open asked for are done (persist/wal.h, "Written before use"):
 * the timing tests of the linger below measure the loop, not a fill's writes beside it. */
static void wait_for_fills(wal_t *wal)
{
    for (int i = 0;; i++) {
        pthread_mutex_lock(&wal->mutex);
        bool done = !atomic_load(&wal->active_zeroing) && wal->spare_zeroed;
        pthread_mutex_unlock(&wal->mutex);
        if (done)
            return;
        cr_assert_lt(i, 10000, "the fills did not end");
        usleep(1000);
    }
}

/* Adaptive group commit: the first batch goes at once and `arrivals` records are appended while
 * it is committed; the loop sees it durable no sooner than commit_us after handing it over.
 * Returns the last LSN appended. */
static uint64_t commit_with_arrivals(wal_t *wal, uint64_t commit_us, uint32_t arrivals)
{
    uint64_t first = wal_last_lsn(wal) + 1;
    uint64_t lsn = wal_append(wal, 1, 0, "a", 1);
    cr_assert_eq(lsn, first);
    wal_flush(wal);
    cr_assert_eq(wal->fill_bytes, 0, "the writer is idle and nothing lingers: it goes at once");
    for (uint32_t i = 0; i < arrivals; i++) /* no wal_flush: as if the writer were still busy */
        cr_assert_eq(wal_append(wal, 1, 0, "r", 1), ++lsn);
    usleep((useconds_t)commit_us);
    for (int i = 0; wal_durable_lsn(wal) < first; i++) { /* the report of the first commit */
        cr_assert_lt(i, 100000);
        uv_run(&loop, UV_RUN_ONCE);
    }
    return lsn;
}

/* As many arrivals during the first commit as start a linger: the next batch lingers at least
 * commit_us. */
static wal_t *open_lingering_wal(uint64_t commit_us)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 20, .linger_us_max = 60000000}, 1);
    wait_for_fills(wal);
    commit_with_arrivals(wal, commit_us, ALLOT_WAL_LINGER_ARRIVALS_MIN);
    cr_assert_gt(wal->fill_bytes, 0, "the arrivals linger");
    return wal;
}

Test(wal_group_commit, a_small_batch_after_a_commit_lingers_then_goes_by_itself, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_lingering_wal(300000);
    uint64_t syncs_before = persist_fault_calls(PERSIST_FAULT_FDATASYNC);
    uint64_t lsn = 1 + ALLOT_WAL_LINGER_ARRIVALS_MIN;
    cr_assert_eq(wal_append(wal, 1, 0, "b", 1), ++lsn);
    wal_flush(wal);
    cr_assert_gt(wal->fill_bytes, 0, "the writer is idle, but the small batch waits for more");
    cr_assert_eq(wal_append(wal, 1, 0, "c", 1), ++lsn);
    wal_flush(wal);
    cr_assert_eq(wal_durable_lsn(wal), 1);
    for (int i = 0; wal_durable_lsn(wal) < lsn; i++) { /* no wal_flush: the WAL's timer sends it */
        cr_assert_lt(i, 100000);
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(persist_fault_calls(PERSIST_FAULT_FDATASYNC) - syncs_before, 1,
                 "the arrivals and the later records in one fdatasync");
    wal_histograms_t *h = malloc(sizeof *h);
    cr_assert_not_null(h);
    wal_histograms(wal, h);
    cr_assert_eq(h->batch_records.count, 2);
    cr_assert_eq(h->batch_records.max, ALLOT_WAL_LINGER_ARRIVALS_MIN + 2,
                 "the lingering batch held the arrivals and both later records");
    free(h);
    close_wal(wal, 0);
}

Test(wal_group_commit, a_lingering_batch_goes_at_once_when_it_reaches_the_linger_size,
     .init = setup, .fini = tmp_teardown)
{
    wal_t *wal = open_lingering_wal(300000);
    char payload[1000] = {0};
    uint64_t lsn = 1 + ALLOT_WAL_LINGER_ARRIVALS_MIN;
    while (wal->fill_bytes + sizeof payload + WAL_RECORD_OVERHEAD_BYTES < ALLOT_WAL_LINGER_BYTES) {
        cr_assert_eq(wal_append(wal, 1, 0, payload, sizeof payload), ++lsn);
        wal_flush(wal);
        cr_assert_gt(wal->fill_bytes, 0, "below the linger size the batch waits");
    }
    cr_assert_eq(wal_append(wal, 1, 0, payload, sizeof payload), ++lsn);
    wal_flush(wal);
    cr_assert_eq(wal->fill_bytes, 0, "at the linger size the batch goes without waiting");
    run_until_durable(wal, lsn);
    close_wal(wal, 0);
}

Test(wal_group_commit, close_sends_a_lingering_batch_and_leaves_no_handle, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_lingering_wal(300000);
    uint64_t lsn = 2 + ALLOT_WAL_LINGER_ARRIVALS_MIN;
    cr_assert_eq(wal_append(wal, 1, 0, "b", 1), lsn);
    wal_flush(wal);
    cr_assert_gt(wal->fill_bytes, 0);
    close_wal(wal, 0);
    cr_assert_eq(seen.durable_lsn, lsn, "close writes and syncs the lingering batch");
}

/* One client with one request in flight: each record is appended after the previous one became
 * durable. Its batch goes to the writer at the end of the iteration that appended it, however
 * long the commit before took. */
Test(wal_group_commit, a_lone_writer_waiting_for_each_record_never_lingers, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 20, .linger_us_max = 60000000}, 1);
    for (uint64_t lsn = 1; lsn <= 3; lsn++) {
        cr_assert_eq(wal_append(wal, 1, 0, "a", 1), lsn);
        wal_flush(wal);
        cr_assert_eq(wal->fill_bytes, 0, "record %" PRIu64 " goes at once", lsn);
        usleep(100000); /* a slow commit: a linger would last as long */
        run_until_durable(wal, lsn);
    }
    close_wal(wal, 0);
}

/* An idle loop ends a short linger when it is due, to the microsecond: a linger of at most 50 us
 * has ended 200 us later, every time (a uv_timer_t counts whole milliseconds of the loop's clock
 * and let it run on most times). A round whose linger already ended while the test waited for
 * the first commit's report (the test thread preempted for 50 us on a busy machine) shows
 * nothing and is not counted; 20 rounds that lingered are checked. */
Test(wal_group_commit, an_idle_loop_ends_a_short_linger_when_it_is_due, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 20, .linger_us_max = 50}, 1);
    wait_for_fills(wal);
    int lingered = 0;
    for (int round = 0; round < 400 && lingered < 20; round++) {
        uint64_t lsn = commit_with_arrivals(wal, 0, ALLOT_WAL_LINGER_ARRIVALS_MIN);
        if (wal->fill_bytes == 0) { /* it lingered and ended before this look */
            run_until_durable(wal, lsn);
            continue;
        }
        lingered++;
        usleep(200);
        uv_run(&loop, UV_RUN_NOWAIT);
        cr_assert_eq(wal->fill_bytes, 0, "round %d: the linger's end handed the batch over", round);
        run_until_durable(wal, lsn);
    }
    cr_assert_eq(lingered, 20, "only %d of the rounds lingered", lingered);
    close_wal(wal, 0);
}

/* A few clients, one request in flight each: fewer arrivals during a commit than start a linger,
 * so they go to the writer as soon as it is done. */
Test(wal_group_commit, fewer_arrivals_during_a_commit_than_the_minimum_go_at_once, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 20, .linger_us_max = 60000000}, 1);
    uint64_t lsn = commit_with_arrivals(wal, 100000, ALLOT_WAL_LINGER_ARRIVALS_MIN - 1);
    cr_assert_eq(wal->fill_bytes, 0, "handed over when the first commit was reported");
    run_until_durable(wal, lsn);
    cr_assert_eq(wal_append(wal, 1, 0, "b", 1), ++lsn);
    wal_flush(wal);
    cr_assert_eq(wal->fill_bytes, 0, "the next record goes at once too");
    run_until_durable(wal, lsn);
    close_wal(wal, 0);
}

Test(wal_group_commit, no_linger_without_fsync_always, .init = setup, .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 20,
                                         .fsync_mode = WAL_FSYNC_NONE,
                                         .linger_us_max = 60000000},
                          1);
    cr_assert_eq(wal_append(wal, 1, 0, "a", 1), 1);
    wal_flush(wal);
    usleep(100000);
    run_until_durable(wal, 1);
    cr_assert_eq(wal_append(wal, 1, 0, "b", 1), 2);
    wal_flush(wal);
    cr_assert_eq(wal->fill_bytes, 0, "acked at the write: nothing to gain by waiting");
    run_until_durable(wal, 2);
    close_wal(wal, 0);
}

/* Every sched_yield of this process, libuv's included (defined here, it is the one the shared
 * libraries call too). */
static atomic_ulong sched_yields;

int sched_yield(void)
{
    atomic_fetch_add(&sched_yields, 1);
    return (int)syscall(SYS_sched_yield);
}

/* allotd is run pinned to one CPU: the loop's wake-up then preempts the writer that woke it. A
 * uv_async_t made the loop spin and sched_yield until the preempted writer finished its send. */
Test(wal_wake, the_loop_never_yields_to_the_writer_that_woke_it_on_one_cpu, .init = setup,
     .fini = tmp_teardown)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0, "the writer thread inherits it");
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 20}, 1);
    unsigned long before = atomic_load(&sched_yields);
    for (uint64_t lsn = 1; lsn <= 300; lsn++) { /* each commit wakes a loop blocked in its poll */
        cr_assert_eq(wal_append(wal, 1, 0, "w", 1), lsn);
        run_until_durable(wal, lsn);
    }
    unsigned long yields = atomic_load(&sched_yields) - before;
    close_wal(wal, 0);
    cr_assert_eq(seen.durable_lsn, 300);
    cr_assert_eq(yields, 0, "the loop yielded %lu times in 300 commits", yields);
}

Test(wal_fsync_failure, is_fatal_and_nothing_more_is_reported_durable, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 16}, 1);
    for (int i = 0; i < 10; i++)
        wal_append(wal, 1, 0, "ok", 2);
    run_until_durable(wal, 10);
    cr_assert_eq(seen.durable_lsn, 10);
    persist_fault_set(PERSIST_FAULT_FDATASYNC, EIO, 0);
    for (int i = 0; i < 10; i++)
        wal_append(wal, 1, 0, "lost", 4);
    wal_flush(wal);
    for (int i = 0; seen.fatal_calls == 0; i++) {
        cr_assert_lt(i, 1000);
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(seen.fatal_error, ALLOT_EIO);
    cr_assert_not_null(strstr(seen.fatal_message, "fdatasync"), "%s", seen.fatal_message);
    cr_assert_eq(wal_durable_lsn(wal), 10, "records of the failed batch are never durable");
    cr_assert_not(wal_writable(wal));
    cr_assert_not(wal_has_room(wal, 1));
    cr_assert_eq(wal_append(wal, 1, 0, "no", 2), 0, "nothing is appended after a failure");
    persist_fault_clear_all();
    close_wal(wal, ALLOT_EIO);
    cr_assert_eq(seen.durable_lsn, 10, "not even at close");
    cr_assert_eq(seen.fatal_calls, 1, "fatal_cb runs once");
}

Test(wal_fsync_failure, write_failure_is_fatal_too, .init = setup, .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 16}, 5);
    persist_fault_set(PERSIST_FAULT_WRITE, EIO, 0);
    cr_assert_eq(wal_append(wal, 1, 0, "x", 1), 5);
    wal_flush(wal);
    for (int i = 0; seen.fatal_calls == 0; i++) {
        cr_assert_lt(i, 1000);
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(wal_durable_lsn(wal), 4);
    close_wal(wal, ALLOT_EIO);
}

Test(wal_disk_full, fallocate_enospc_makes_the_wal_unwritable_until_space_returns, .init = setup,
     .fini = tmp_teardown)
{
    persist_fault_set(PERSIST_FAULT_FALLOCATE, ENOSPC, 0);
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 4096, .allocate_retry_ms = 10}, 1);
    cr_assert_not(wal_writable(wal), "no segment could be allocated");
    cr_assert_not(wal_has_room(wal, 10));
    cr_assert_eq(wal_append(wal, 1, 0, "x", 1), 0, "nothing appended, no LSN used");
    cr_assert_eq(wal_last_lsn(wal), 0);
    persist_fault_clear(PERSIST_FAULT_FALLOCATE);
    for (int i = 0; !wal_writable(wal); i++) {
        cr_assert_lt(i, 1000);
        uv_run(&loop, UV_RUN_ONCE); /* the writer's retry wakes the loop */
    }
    cr_assert_eq(wal_append(wal, 1, 0, "x", 1), 1);
    run_until_durable(wal, 1);
    wal_stats_t stats;
    wal_stats(wal, &stats);
    cr_assert_geq(stats.allocate_failures, 1);
    close_wal(wal, 0);
    cr_assert_eq(seen.fatal_calls, 0, "disk full is not fatal");
}

Test(wal_disk_full, a_full_disk_stops_writes_at_the_segment_end_without_failure, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 4096, .allocate_retry_ms = 10}, 1);
    persist_fault_set(PERSIST_FAULT_FALLOCATE, ENOSPC, 0);
    char payload[100] = {0};
    uint64_t appended = 0;
    for (int i = 0; i < 100 && wal_has_room(wal, sizeof payload); i++)
        appended = wal_append(wal, 1, 0, payload, sizeof payload);
    cr_assert_gt(appended, 20, "the spare segment made at open is used");
    cr_assert_lt(appended, 100, "then appends stop: no room for the next segment");
    /* The writer has not tried to allocate the next segment yet: waiting, not a disk problem. */
    cr_assert_eq(wal_room_check(wal, sizeof payload), ALLOT_EOVERLOADED);
    run_until_durable(wal, appended);
    for (int i = 0; wal_writable(wal); i++) { /* the writer's attempt fails (no wake-up) */
        cr_assert_lt(i, 5000);
        usleep(1000);
    }
    cr_assert_eq(wal_room_check(wal, sizeof payload), ALLOT_EUNAVAILABLE);
    persist_fault_clear(PERSIST_FAULT_FALLOCATE);
    for (int i = 0; !wal_has_room(wal, sizeof payload); i++) {
        cr_assert_lt(i, 1000);
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(wal_append(wal, 1, 0, payload, sizeof payload), appended + 1);
    run_until_durable(wal, appended + 1);
    close_wal(wal, 0);
    wal_replay_result_t result = replay_whole_log();
    cr_assert_eq(result.last_lsn, appended + 1);
}

Test(wal_disk_full, fault_file_from_the_environment_toggles_allocation, .init = setup,
     .fini = tmp_teardown)
{
    char flag[128];
    snprintf(flag, sizeof flag, "%s/disk-full", tmp_root);
    fclose(fopen(flag, "w"));
    setenv("ALLOT_FAULT_FILE", flag, 1);
    unsetenv("ALLOT_FAULT");
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 4096, .allocate_retry_ms = 10}, 1);
    cr_assert_not(wal_writable(wal));
    unlink(flag);
    for (int i = 0; !wal_writable(wal); i++) {
        cr_assert_lt(i, 1000);
        uv_run(&loop, UV_RUN_ONCE);
    }
    close_wal(wal, 0);
}

Test(wal_room_check, waiting_for_the_next_segment_is_overloaded_never_unavailable, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 8192}, 1);
    char payload[200] = {0};
    cr_assert(wal_writable(wal));
    cr_assert_eq(wal_room_check(wal, sizeof payload), 0);
    cr_assert_eq(wal_room_check(wal, wal_payload_bytes_max(wal) + 1), ALLOT_ETOO_LARGE);
    /* Fill the first segment without handing anything to the writer: its spare is in use and
     * the next one is not allocated yet (the writer allocates it after the switch). */
    uint64_t appended = 0;
    while (wal_has_room(wal, sizeof payload))
        appended = wal_append(wal, 1, 0, payload, sizeof payload);
    cr_assert_gt(appended, 10);
    cr_assert(wal_writable(wal), "a segment being allocated is not a disk problem");
    cr_assert_eq(wal_room_check(wal, sizeof payload), ALLOT_EOVERLOADED);
    cr_assert_eq(wal_room_check(wal, 1), 0, "a record that fits in the rest is still taken");
    cr_assert_eq(wal_append(wal, 1, 0, "x", 1), appended + 1);
    for (int i = 0; wal_room_check(wal, sizeof payload) != 0; i++) {
        cr_assert_lt(i, 1000);
        wal_flush(wal);
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(wal_append(wal, 1, 0, payload, sizeof payload), appended + 2);
    run_until_durable(wal, appended + 2);
    close_wal(wal, 0);
    cr_assert_eq(seen.fatal_calls, 0);
}

/* The synced LSN in the header of segment first_lsn (format: top of persist/wal_format.c). */
static uint64_t header_synced_lsn(uint64_t first_lsn)
{
    char path[200];
    snprintf(path, sizeof path, "%s/wal-%016llx.log", wal_dir, (unsigned long long)first_lsn);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    uint8_t header[WAL_SEGMENT_HEADER_BYTES];
    cr_assert_eq(fread(header, 1, sizeof header, f), sizeof header);
    fclose(f);
    uint64_t lsn = 0;
    for (int i = 7; i >= 0; i--)
        lsn = (lsn << 8) | header[32 + i];
    return lsn;
}

Test(wal_group_commit, each_batch_is_recorded_as_synced_in_the_header_before_it_is_durable,
     .init = setup, .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 20}, 1);
    cr_assert_eq(header_synced_lsn(1), 0, "a new segment: nothing synced");
    for (uint64_t lsn = 1; lsn <= 30; lsn++) {
        wal_append(wal, 1, 0, "a", 1);
        run_until_durable(wal, lsn);
        cr_assert_geq(header_synced_lsn(1), lsn, "reported durable only once in the header");
    }
    close_wal(wal, 0);
}

Test(wal_fsync_interval, acks_after_the_write_and_syncs_on_the_interval, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 1 << 20,
                                         .fsync_mode = WAL_FSYNC_INTERVAL,
                                         .fsync_interval_ms = 20},
                          1);
    uint64_t syncs_before = persist_fault_calls(PERSIST_FAULT_FDATASYNC);
    for (int round = 0; round < 50; round++) {
        wal_append(wal, 1, 0, "i", 1);
        run_until_durable(wal, wal_last_lsn(wal));
    }
    cr_assert_eq(seen.durable_lsn, 50);
    cr_assert_lt(persist_fault_calls(PERSIST_FAULT_FDATASYNC) - syncs_before, 50);
    usleep(60 * 1000);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_geq(persist_fault_calls(PERSIST_FAULT_FDATASYNC) - syncs_before, 1,
                  "the writer syncs every interval");
    cr_assert_eq(header_synced_lsn(1), 50, "the interval sync is recorded in the header");
    close_wal(wal, 0);
}

Test(wal_fsync_none, never_syncs, .init = setup, .fini = tmp_teardown)
{
    wal_t *wal =
        open_wal((wal_config_t){.segment_bytes = 1 << 16, .fsync_mode = WAL_FSYNC_NONE}, 1);
    uint64_t syncs_before = persist_fault_calls(PERSIST_FAULT_FDATASYNC);
    for (int i = 0; i < 20; i++)
        wal_append(wal, 1, 0, "n", 1);
    run_until_durable(wal, 20);
    close_wal(wal, 0);
    cr_assert_leq(persist_fault_calls(PERSIST_FAULT_FDATASYNC) - syncs_before, 1,
                  "only the new segment's header is synced, once");
    cr_assert_eq(header_synced_lsn(1), 0, "nothing is ever synced");
}

Test(wal_has_room, a_full_batch_refuses_more_until_the_writer_takes_it, .init = setup,
     .fini = tmp_teardown)
{
    const uint64_t segment_bytes = 1 << 16;
    const uint64_t batch_bytes_max = segment_bytes - WAL_SEGMENT_HEADER_BYTES; /* the minimum */
    wal_t *wal = open_wal(
        (wal_config_t){.segment_bytes = segment_bytes, .batch_bytes_max = batch_bytes_max}, 1);
    cr_assert_eq(wal_payload_bytes_max(wal), batch_bytes_max - WAL_RECORD_OVERHEAD_BYTES);
    wal_append(wal, 1, 0, "first", 5);
    run_until_durable(wal, 1);
    for (int i = 0; !wal_writable(wal); i++) { /* until the next spare is allocated */
        cr_assert_lt(i, 1000);
        uv_run(&loop, UV_RUN_ONCE);
    }
    char payload[1000] = {0};
    uint64_t appended = 0;
    while (wal_has_room(wal, sizeof payload))
        appended = wal_append(wal, 1, 0, payload, sizeof payload);
    cr_assert_eq(appended - 1, batch_bytes_max / (sizeof payload + WAL_RECORD_OVERHEAD_BYTES));
    cr_assert(wal_writable(wal), "a full batch is OVERLOADED, not UNAVAILABLE");
    cr_assert_not(wal_has_room(wal, sizeof payload));
    cr_assert_not(wal_has_room(wal, wal_payload_bytes_max(wal) + 1), "over the record limit");
    run_until_durable(wal, appended);
    cr_assert(wal_has_room(wal, sizeof payload));
    close_wal(wal, 0);
}

Test(wal_open, continues_after_the_last_record_of_the_previous_run, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 4096}, 1);
    for (int i = 0; i < 3; i++)
        wal_append(wal, 1, 0, "first", 5);
    close_wal(wal, 0);
    memset(&seen, 0, sizeof seen);
    cr_assert_eq(uv_loop_init(&loop), 0);
    wal = open_wal((wal_config_t){.segment_bytes = 4096}, 4);
    cr_assert_eq(wal_durable_lsn(wal), 3);
    cr_assert_eq(wal_append(wal, 1, 0, "second", 6), 4);
    close_wal(wal, 0);
    wal_replay_result_t result = replay_whole_log();
    cr_assert_eq(result.last_lsn, 4);
    cr_assert_eq(result.segments, 1, "appending continued in the same segment");
}

/* Every renameat of this process (defined here, it is the one persist/'s calls resolve to):
 * while the gate is closed, the deletion of a segment, which begins by renaming "wal-0..." out
 * of the log (persist/wal.h, "Truncation"), waits inside it, as a file system freeing a large
 * segment's blocks does. */
static atomic_bool unlink_gate_closed;
static atomic_ulong segment_unlinks_waiting;

int renameat(int old_dir_fd, const char *old_path, int new_dir_fd, const char *new_path)
{
    if (strncmp(old_path, "wal-0", 5) == 0 && atomic_load(&unlink_gate_closed)) {
        atomic_fetch_add(&segment_unlinks_waiting, 1);
        while (atomic_load(&unlink_gate_closed))
            usleep(1000);
        atomic_fetch_sub(&segment_unlinks_waiting, 1);
    }
    return (int)syscall(SYS_renameat2, old_dir_fd, old_path, new_dir_fd, new_path, 0);
}

static size_t segment_files(void)
{
    DIR *dir = opendir(wal_dir);
    cr_assert_not_null(dir);
    size_t count = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        count += strncmp(e->d_name, "wal-0", 5) == 0;
    closedir(dir);
    return count;
}

static void tick_cb(uv_timer_t *timer)
{
    (*(int *)timer->data)++; /* and wakes the loop: a writer that never reports cannot hang */
}

/* run_until_durable, giving up after 500 ticks of 10 ms. */
static bool durable_within_5s(wal_t *wal, uint64_t lsn)
{
    int ticks = 0;
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    tick.data = &ticks;
    uv_timer_start(&tick, tick_cb, 10, 10);
    while (ticks < 500 && wal_durable_lsn(wal) < lsn && seen.fatal_calls == 0) {
        wal_flush(wal);
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return wal_durable_lsn(wal) >= lsn;
}

/* A checkpoint's truncation deletes segments while group commits go on: a deletion that takes
 * long (here: forever, until the gate opens) holds no record back. */
Test(wal_truncate_before, commits_go_on_while_a_covered_segment_is_being_deleted, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = 4096}, 1);
    char payload[200] = {0};
    uint64_t lsn = 0;
    while (segment_files() < 4) { /* small segments: a few records each */
        lsn = wal_append(wal, 1, 0, payload, sizeof payload);
        cr_assert_gt(lsn, 0);
        run_until_durable(wal, lsn);
    }
    atomic_store(&unlink_gate_closed, true);
    cr_assert_eq(wal_truncate_before(wal, lsn), 0);
    for (int i = 0; atomic_load(&segment_unlinks_waiting) == 0; i++) {
        cr_assert_lt(i, 5000, "no segment deletion started");
        usleep(1000);
    }
    for (int i = 0; i < 50; i++) { /* records keep becoming durable meanwhile */
        uint64_t next = wal_append(wal, 1, 0, payload, sizeof payload);
        cr_assert_eq(next, lsn + 1);
        lsn = next;
        if (!durable_within_5s(wal, lsn)) {
            atomic_store(&unlink_gate_closed, false); /* let the writer finish and close */
            cr_assert_fail("record %llu waited for the deletion", (unsigned long long)lsn);
        }
    }
    cr_assert_eq(atomic_load(&segment_unlinks_waiting), 1, "the deletion is still waiting");
    atomic_store(&unlink_gate_closed, false);
    close_wal(wal, 0); /* waits for the deletions */
    cr_assert_lt(segment_files(), 4, "the covered segments are gone");
}

/* ---- the spare's zero fill (persist/wal.h, "Written before use") ------------------------- */

/* A gate in front of a system call the tests hold up: while *allowed is 0 the caller waits
 * here (counted in *waiting); each caller let through uses one; -1: no gate. */
static void gate_pass(atomic_long *allowed, atomic_ulong *waiting)
{
    if (atomic_load(allowed) < 0)
        return;
    atomic_fetch_add(waiting, 1);
    for (;;) {
        long left = atomic_load(allowed);
        if (left < 0 || (left > 0 && atomic_compare_exchange_weak(allowed, &left, left - 1)))
            break;
        usleep(1000);
    }
    atomic_fetch_sub(waiting, 1);
}

/* The fill writes its windows out with sync_file_range (nothing else in this file's WAL does):
 * while fill_windows_allowed is 0, a window waits here, as a slow disk would make it; each
 * window let through uses one. -1: no gate. */
static atomic_long fill_windows_allowed = -1;
static atomic_ulong fill_windows_waiting;

int sync_file_range(int fd, off64_t offset, off64_t bytes, unsigned int flags)
{
    gate_pass(&fill_windows_allowed, &fill_windows_waiting);
    return (int)syscall(SYS_sync_file_range, fd, offset, bytes, flags);
}

#define FILL_SEGMENT_BYTES (1u << 20) /* four windows of zeros */

static void fill_gate_open(void)
{
    atomic_store(&fill_windows_allowed, -1);
}

static bool spare_zeroed(wal_t *wal)
{
    pthread_mutex_lock(&wal->mutex);
    bool zeroed = wal->spare_zeroed;
    pthread_mutex_unlock(&wal->mutex);
    return zeroed;
}

static void wait_for_fill_window(void)
{
    for (int i = 0; atomic_load(&fill_windows_waiting) == 0; i++) {
        cr_assert_lt(i, 5000, "no window of zeros was written");
        usleep(1000);
    }
}

/* Append records of `payload_bytes` until the log has `files` segments, each batch durable. */
static uint64_t append_until_segments(wal_t *wal, size_t files, size_t payload_bytes)
{
    static char payload[8192];
    cr_assert_leq(payload_bytes, sizeof payload);
    uint64_t lsn = wal_last_lsn(wal);
    for (int i = 0; segment_files() < files; i++) {
        cr_assert_lt(i, 100000);
        while (wal_has_room(wal, payload_bytes) && wal->fill_bytes < 256 * 1024)
            lsn = wal_append(wal, 1, 0, payload, payload_bytes);
        run_until_durable(wal, lsn);
    }
    return lsn;
}

/* The extents of path's first `bytes` (FIEMAP after a sync); free() it. */
static struct fiemap *extents_read(const char *path, uint64_t bytes)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "%s", path);
    enum { EXTENTS_MAX = 64 };
    struct fiemap *map = calloc(1, sizeof(*map) + EXTENTS_MAX * sizeof(struct fiemap_extent));
    cr_assert_not_null(map);
    *map = (struct fiemap){.fm_start = 0,
                           .fm_length = bytes,
                           .fm_flags = FIEMAP_FLAG_SYNC,
                           .fm_extent_count = EXTENTS_MAX};
    cr_assert_eq(ioctl(fd, FS_IOC_FIEMAP, map), 0, "FIEMAP: %s", strerror(errno));
    close(fd);
    return map;
}

/* The extents of the file at path: no unwritten one, no hole from 0 to bytes. */
static void assert_fully_written(const char *path, uint64_t bytes)
{
    struct fiemap *map = extents_read(path, bytes);
    uint64_t covered = 0;
    for (uint32_t i = 0; i < map->fm_mapped_extents; i++) {
        const struct fiemap_extent *e = &map->fm_extents[i];
        cr_assert_eq(e->fe_logical, covered, "a hole at %llu", (unsigned long long)covered);
        cr_assert_eq(e->fe_flags & FIEMAP_EXTENT_UNWRITTEN, 0, "the extent at %llu is unwritten",
                     (unsigned long long)e->fe_logical);
        covered = e->fe_logical + e->fe_length;
    }
    free(map);
    cr_assert_geq(covered, bytes, "blocks end at %llu", (unsigned long long)covered);
}

static void newest_segment_path(char path[512])
{
    DIR *dir = opendir(wal_dir);
    cr_assert_not_null(dir);
    char newest[256] = "";
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        if (strncmp(e->d_name, "wal-0", 5) == 0 && strcmp(e->d_name, newest) > 0)
            memcpy(newest, e->d_name, strlen(e->d_name) + 1);
    closedir(dir);
    cr_assert_neq(newest[0], '\0');
    snprintf(path, 512, "%s/%s", wal_dir, newest);
}

/* Bytes of path in written extents from its start, up to bytes (FIEMAP after a sync). */
static uint64_t written_bytes(const char *path, uint64_t bytes)
{
    struct fiemap *map = extents_read(path, bytes);
    uint64_t written = 0;
    for (uint32_t i = 0; i < map->fm_mapped_extents; i++)
        if ((map->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN) == 0)
            written += map->fm_extents[i].fe_length;
    free(map);
    return written < bytes ? written : bytes;
}

/* Wait (at most 10 s) until the spare holds at least `bytes` of written blocks, then 200 ms more
 * (time for a fill that would go further to do so); returns what it holds then. */
static uint64_t spare_written_settled(uint64_t bytes)
{
    char spare[512];
    snprintf(spare, sizeof spare, "%s/%s", wal_dir, WAL_SPARE_NAME);
    for (int i = 0; written_bytes(spare, FILL_SEGMENT_BYTES) < bytes; i++) {
        cr_assert_lt(i, 1000, "the spare's fill did not reach %llu bytes",
                     (unsigned long long)bytes);
        usleep(10000);
    }
    usleep(200000);
    return written_bytes(spare, FILL_SEGMENT_BYTES);
}

/* Records of payload_bytes, appended and made durable, until the writer's end in the active
 * segment is at least `end`. Returns the last LSN. */
static uint64_t append_until_active_end(wal_t *wal, uint64_t end, size_t payload_bytes)
{
    static char payload[4096];
    cr_assert_leq(payload_bytes, sizeof payload);
    uint64_t lsn = wal_last_lsn(wal);
    while (FILL_SEGMENT_BYTES - atomic_load(&wal->active_room) < end) {
        lsn = wal_append(wal, 1, 0, payload, payload_bytes);
        wal_flush(wal);
        run_until_durable(wal, lsn);
    }
    return lsn;
}

/* The spare is needed when the active segment is full: its fill keeps at most zero_lead_bytes
 * beyond the writer's end in the active segment, and goes on as the writer does. */
Test(wal_zero_fill, the_spare_is_filled_no_further_ahead_of_the_writer_than_the_lead, .init = setup,
     .fini = tmp_teardown)
{
    const uint64_t window = PERSIST_WRITEBACK_WINDOW_BYTES;
    wal_t *wal =
        open_wal((wal_config_t){.segment_bytes = FILL_SEGMENT_BYTES, .zero_lead_bytes = window}, 1);
    /* the writer's end is the header: the windows starting at 0 and at one window, no more */
    cr_assert_eq(spare_written_settled(2 * window), 2 * window, "the fill went past the lead");
    cr_assert(!spare_zeroed(wal));
    /* the writer past one window: the window at two */
    append_until_active_end(wal, window + 1, 1000);
    cr_assert_eq(spare_written_settled(3 * window), 3 * window, "the fill went past the lead");
    cr_assert(!spare_zeroed(wal));
    /* past two: the last window, then the fill is done */
    uint64_t lsn = append_until_active_end(wal, 2 * window + 1, 1000);
    cr_assert_eq(spare_written_settled(4 * window), 4 * window);
    for (int i = 0; !spare_zeroed(wal); i++) {
        cr_assert_lt(i, 10000, "the spare's fill did not end");
        usleep(1000);
    }
    close_wal(wal, 0);
    wal_replay_result_t result = replay_whole_log();
    cr_assert_eq(result.last_lsn, lsn);
}

Test(wal_zero_fill, the_segment_the_writer_takes_next_has_no_unwritten_blocks_and_no_holes,
     .init = setup, .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = FILL_SEGMENT_BYTES}, 1);
    for (int i = 0; !spare_zeroed(wal); i++) {
        cr_assert_lt(i, 10000, "the spare was not filled");
        usleep(1000);
    }
    uint64_t lsn = append_until_segments(wal, 2, 4000);
    char path[512];
    newest_segment_path(path);
    assert_fully_written(path, FILL_SEGMENT_BYTES);
    wal_stats_t stats;
    wal_stats(wal, &stats);
    cr_assert_eq(stats.segments_unzeroed, 0);
    cr_assert_geq(stats.zeroed_bytes, FILL_SEGMENT_BYTES);
    cr_assert_eq(stats.zero_fill_failures, 0);
    close_wal(wal, 0);
    wal_replay_result_t result = replay_whole_log();
    cr_assert_eq(result.last_lsn, lsn);
}

/* A fill held up by a slow disk (its window waits in the gate) holds no record back. */
Test(wal_zero_fill, commits_go_on_while_the_spare_is_being_filled, .init = setup,
     .fini = tmp_teardown)
{
    atomic_store(&fill_windows_allowed, 0);
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = FILL_SEGMENT_BYTES}, 1);
    wait_for_fill_window();
    char payload[200] = {0};
    for (uint64_t lsn = 1; lsn <= 50; lsn++) {
        cr_assert_eq(wal_append(wal, 1, 0, payload, sizeof payload), lsn);
        if (!durable_within_5s(wal, lsn)) {
            fill_gate_open();
            cr_assert_fail("record %llu waited for the fill", (unsigned long long)lsn);
        }
    }
    cr_assert_eq(atomic_load(&fill_windows_waiting), 1, "the fill is still waiting");
    fill_gate_open();
    close_wal(wal, 0);
}

/* The writer needs the spare before its fill is done: it waits for the window in progress, no
 * more, takes the spare, and the rest of it is filled above what the writer writes. */
Test(wal_zero_fill, the_writer_takes_an_unfinished_spare_after_the_window_in_progress,
     .init = setup, .fini = tmp_teardown)
{
    const uint64_t window = PERSIST_WRITEBACK_WINDOW_BYTES;
    atomic_store(&fill_windows_allowed, 3); /* the first segment's three windows above the header */
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = FILL_SEGMENT_BYTES}, 1);
    wal_stats_t stats;
    for (int i = 0;; i++) { /* then the spare's first window waits */
        wal_stats(wal, &stats);
        if (stats.zeroed_bytes == 3 * window && atomic_load(&fill_windows_waiting) == 1)
            break;
        cr_assert_lt(i, 5000, "the first segment was not filled");
        usleep(1000);
    }
    char payload[4000] = {0};
    uint64_t lsn = 0;
    while (wal->spares_consumed == 0) /* one record into the spare: the batch rolls over */
        lsn = wal_append(wal, 1, 0, payload, sizeof payload);
    wal_flush(wal);
    for (int i = 0;; i++) { /* the writer took the spare back and waits for the window */
        pthread_mutex_lock(&wal->mutex);
        bool taken = wal->zero_fd < 0;
        pthread_mutex_unlock(&wal->mutex);
        if (taken)
            break;
        cr_assert_lt(i, 5000, "the writer did not stop the fill");
        usleep(1000);
    }
    atomic_store(&fill_windows_allowed, 1); /* that window only */
    run_until_durable(wal, lsn);
    for (int i = 0; atomic_load(&fill_windows_waiting) == 0; i++) {
        cr_assert_lt(i, 5000, "the rest of the segment taken is not being filled");
        usleep(1000);
    }
    wal_stats(wal, &stats);
    cr_assert_eq(stats.segments_unzeroed, 1);
    cr_assert_eq(stats.zeroed_bytes, 4 * window, "one window of the spare, not more");
    fill_gate_open();
    close_wal(wal, 0);
    wal_replay_result_t result = replay_whole_log();
    cr_assert_eq(result.last_lsn, lsn);
}

/* The first segment of a start is filled above the writer; a restart fills no block twice. */
Test(wal_zero_fill, the_first_segment_is_filled_above_the_writer_and_never_twice, .init = setup,
     .fini = tmp_teardown)
{
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = FILL_SEGMENT_BYTES}, 1);
    char payload[300] = {0};
    for (uint64_t lsn = 1; lsn <= 20; lsn++) {
        cr_assert_eq(wal_append(wal, 1, 0, payload, sizeof payload), lsn);
        run_until_durable(wal, lsn);
    }
    wal_stats_t stats;
    wait_for_fills(wal);
    wal_stats(wal, &stats);
    const uint64_t window = PERSIST_WRITEBACK_WINDOW_BYTES;
    cr_assert_eq(stats.zeroed_bytes, FILL_SEGMENT_BYTES - window + FILL_SEGMENT_BYTES,
                 "the first segment above its first window, and the spare");
    close_wal(wal, 0);
    char path[512];
    newest_segment_path(path);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    uint8_t buffer[4096];
    cr_assert_eq(pread(fd, buffer, sizeof buffer, (off_t)window), (ssize_t)sizeof buffer);
    close(fd);
    for (size_t i = 0; i < sizeof buffer; i++)
        cr_assert_eq(buffer[i], 0);

    wal_replay_result_t result = replay_whole_log();
    cr_assert_eq(uv_loop_init(&loop), 0);
    seen.closed_calls = 0;
    wal = open_wal((wal_config_t){.segment_bytes = FILL_SEGMENT_BYTES, .log_end = &result.end},
                   result.last_lsn + 1);
    wait_for_fills(wal);
    wal_stats(wal, &stats);
    cr_assert_eq(stats.zeroed_bytes, FILL_SEGMENT_BYTES, "only the new spare: the segment was");
    close_wal(wal, 0);
}

Test(wal_zero_fill, a_failed_fill_is_counted_and_the_spare_is_used_as_allocated, .init = setup,
     .fini = tmp_teardown)
{
    persist_fault_set(PERSIST_FAULT_ZERO_FILL, EIO, 0);
    wal_t *wal = open_wal((wal_config_t){.segment_bytes = FILL_SEGMENT_BYTES}, 1);
    wal_stats_t stats;
    for (int i = 0;; i++) { /* the first segment's fill and the spare's */
        wal_stats(wal, &stats);
        if (stats.zero_fill_failures >= 2)
            break;
        cr_assert_lt(i, 5000, "the fill did not fail");
        usleep(1000);
    }
    uint64_t lsn = append_until_segments(wal, 2, 4000);
    persist_fault_clear(PERSIST_FAULT_ZERO_FILL);
    wal_stats(wal, &stats);
    cr_assert_geq(stats.zero_fill_failures, 2);
    cr_assert_eq(stats.zeroed_bytes, 0);
    cr_assert_eq(stats.segments_unzeroed, 1);
    close_wal(wal, 0);
    cr_assert_eq(seen.fatal_calls, 0, "a failed fill is not fatal");
    wal_replay_result_t result = replay_whole_log();
    cr_assert_eq(result.last_lsn, lsn);
}

/* A crash (the process gone at once) while a window of zeros is being written: the durable
 * records replay, and the next run replaces the half-filled spare. */
Test(wal_zero_fill, a_crash_mid_fill_loses_no_durable_record, .init = setup, .fini = tmp_teardown)
{
    int pipe_fds[2];
    cr_assert_eq(pipe(pipe_fds), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) { /* no Criterion assertion here: report through the pipe and the status */
        atomic_store(&fill_windows_allowed, 1); /* the second window never ends */
        wal_config_t config = {.dir = wal_dir, .segment_bytes = FILL_SEGMENT_BYTES};
        wal_t *wal = NULL;
        if (wal_open(&loop, &config, 1, &wal, NULL, NULL, NULL, NULL, 0) != 0)
            _exit(2);
        char payload[300] = {0};
        uint64_t lsn = 0;
        for (int i = 0; i < 200; i++)
            lsn = wal_append(wal, 1, 0, payload, sizeof payload);
        for (int i = 0; wal_durable_lsn(wal) < lsn && i < 100000; i++) {
            wal_flush(wal);
            uv_run(&loop, UV_RUN_ONCE);
        }
        for (int i = 0; atomic_load(&fill_windows_waiting) == 0; i++)
            if (i == 5000)
                _exit(4); /* no fill */
            else
                usleep(1000);
        ssize_t n = write(pipe_fds[1], &lsn, sizeof lsn);
        _exit(n == sizeof lsn && wal_durable_lsn(wal) == lsn ? 0 : 3);
    }
    uint64_t durable_lsn = child_durable_lsn(child, pipe_fds);
    cr_assert_eq(durable_lsn, 200);
    wal_replay_result_t result = replay_whole_log();
    cr_assert_eq(result.last_lsn, durable_lsn);
    wal_t *wal =
        open_wal((wal_config_t){.segment_bytes = FILL_SEGMENT_BYTES, .log_end = &result.end},
                 durable_lsn + 1);
    cr_assert_eq(wal_append(wal, 1, 0, "x", 1), durable_lsn + 1);
    run_until_durable(wal, durable_lsn + 1);
    close_wal(wal, 0);
}

/* ---- a deleted segment shrunk in steps (persist/wal.h, "Truncation") ------------------- */

/* Every ftruncate of this process (only the reaper's shrink of a deleted segment calls it in
 * these tests): while shrink_steps_allowed is 0, a step waits here; each step let through uses
 * one. -1: no gate. */
static atomic_long shrink_steps_allowed = -1;
static atomic_ulong shrink_steps_waiting;

int ftruncate(int fd, off_t length)
{
    gate_pass(&shrink_steps_allowed, &shrink_steps_waiting);
    return (int)syscall(SYS_ftruncate, fd, length);
}

#define SHRINK_SEGMENT_BYTES (3u * WAL_SHRINK_STEP_BYTES) /* three steps */

/* A crash (the process gone at once) between two steps of a deleted segment's shrink: every
 * durable record the checkpoint does not cover replays, the half-shrunk segment is no part of
 * the log, and the next run removes it and appends on. */
Test(wal_truncate_before, a_crash_mid_shrink_loses_no_durable_record, .init = setup,
     .fini = tmp_teardown)
{
    int pipe_fds[2];
    cr_assert_eq(pipe(pipe_fds), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) { /* no Criterion assertion here: report through the pipe and the status */
        wal_config_t config = {.dir = wal_dir, .segment_bytes = SHRINK_SEGMENT_BYTES};
        wal_t *wal = NULL;
        if (wal_open(&loop, &config, 1, &wal, NULL, NULL, NULL, NULL, 0) != 0)
            _exit(2);
        static char payload[4000];
        uint64_t lsn = 0;
        while (segment_files() < 3) {
            for (int i = 0; i < 64 && wal_has_room(wal, sizeof payload); i++)
                lsn = wal_append(wal, 1, 0, payload, sizeof payload);
            for (int i = 0; wal_durable_lsn(wal) < lsn && i < 100000; i++) {
                wal_flush(wal);
                uv_run(&loop, UV_RUN_ONCE);
            }
        }
        atomic_store(&shrink_steps_allowed, 1); /* the second step never ends */
        if (wal_truncate_before(wal, lsn) != 0)
            _exit(3);
        for (int i = 0; atomic_load(&shrink_steps_waiting) == 0; i++)
            if (i == 5000)
                _exit(4); /* no shrink */
            else
                usleep(1000);
        ssize_t n = write(pipe_fds[1], &lsn, sizeof lsn);
        _exit(n == sizeof lsn && wal_durable_lsn(wal) == lsn ? 0 : 5);
    }
    uint64_t durable_lsn = child_durable_lsn(child, pipe_fds);
    char deleting[512];
    snprintf(deleting, sizeof deleting, "%s/wal-deleting.tmp", wal_dir);
    struct stat st;
    cr_assert_eq(stat(deleting, &st), 0, "the crash came mid-shrink");
    cr_assert_eq((uint64_t)st.st_size, SHRINK_SEGMENT_BYTES - WAL_SHRINK_STEP_BYTES);
    wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    cr_assert_eq(wal_replay(wal_dir, durable_lsn, NULL, NULL, &result, message, sizeof message), 0,
                 "%s", message);
    cr_assert_eq(result.last_lsn, durable_lsn);
    wal_t *wal =
        open_wal((wal_config_t){.segment_bytes = SHRINK_SEGMENT_BYTES, .log_end = &result.end},
                 durable_lsn + 1);
    cr_assert_eq(stat(deleting, &st), -1, "wal_open removed it");
    cr_assert_eq(wal_append(wal, 1, 0, "x", 1), durable_lsn + 1);
    run_until_durable(wal, durable_lsn + 1);
    close_wal(wal, 0);
}
