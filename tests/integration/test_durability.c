/* test_durability.c - the real allotd against disk failures, restarts and checkpoints: fsync
 * errors are fatal and nothing after them is acknowledged, a full disk refuses writes but
 * serves reads, SIGTERM and kill -9 keep every acknowledged write, server.checkpoint deletes
 * the covered WAL segments and recovery combines state.lmdb with the rest of the WAL. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static int64_t reply_int(const allot_reply_t *reply, const char *key)
{
    const msgpack_object *v = allot_object_map_get(&reply->result, key);
    cr_assert_not_null(v, "reply has no %s", key);
    cr_assert(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
              v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    return v->via.i64;
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

/* A write that must succeed; UNAVAILABLE/OVERLOADED are retried for up to 5 s. */
static void write_ok(allot_client_t *c, const char *method, const char *params)
{
    allot_reply_t r = {0};
    for (int i = 0; i < 250; i++) {
        harness_call_json(c, method, params, &r);
        if (!r.is_error ||
            (strcmp(r.code, "UNAVAILABLE") != 0 && strcmp(r.code, "OVERLOADED") != 0))
            break;
        sleep_ms(20);
    }
    cr_assert_not(r.is_error, "%s %s -> %s: %s", method, params, r.code, r.message);
    allot_reply_free(&r);
}

/* The setup every test uses: W1 with 1000 of A, one reservation of 3. */
static void seed(allot_client_t *c)
{
    write_ok(c, "location.put", "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4}");
    write_ok(c, "stock.set", "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":1000}");
    write_ok(c, "reserve", "{\"id\":\"cart-1\",\"lines\":[{\"sku\":\"A\",\"qty\":3}]}");
}

static int64_t on_hand_of(allot_client_t *c, const char *sku)
{
    char params[128];
    snprintf(params, sizeof(params), "{\"sku\":\"%s\"}", sku);
    allot_reply_t r = {0};
    harness_call_ok(c, "stock.get", params, &r);
    int64_t value = reply_int(&r, "on_hand");
    allot_reply_free(&r);
    return value;
}

static void assert_seed_present(allot_client_t *c, int64_t reserved)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "location.get", "{\"id\":\"W1\"}", &r);
    harness_call_ok(c, "reservation.get", "{\"id\":\"cart-1\"}", &r);
    const msgpack_object *state = allot_object_map_get(&r.result, "state");
    cr_assert(state != NULL && allot_object_str_equal(state, "active"));
    harness_call_ok(c, "stock.get", "{\"sku\":\"A\"}", &r);
    cr_assert_eq(reply_int(&r, "reserved"), reserved);
    allot_reply_free(&r);
}

typedef struct adjust_run {
    int sent;
    int ok;
    int unavailable;
    int overloaded;
    int other;
} adjust_run_t;

/* Pipeline `count` stock.adjust +1 of A@W1 with keys prefix-first.., read every reply. */
static adjust_run_t adjust_pipelined(allot_client_t *c, const char *prefix, int first, int count)
{
    adjust_run_t run = {0};
    char params[160];
    for (int i = 0; i < count; i++) {
        snprintf(params, sizeof(params),
                 "{\"sku\":\"A\",\"location\":\"W1\",\"delta\":1,\"key\":\"%s-%d\"}", prefix,
                 first + i);
        cr_assert_eq(allot_client_send_json(c, "stock.adjust", params, NULL), 0, "%s",
                     allot_client_last_error(c));
        run.sent++;
    }
    allot_reply_t r = {0};
    for (int i = 0; i < count; i++) {
        cr_assert_eq(allot_client_recv(c, &r), 0, "%s", allot_client_last_error(c));
        if (!r.is_error)
            run.ok++;
        else if (strcmp(r.code, "UNAVAILABLE") == 0)
            run.unavailable++;
        else if (strcmp(r.code, "OVERLOADED") == 0)
            run.overloaded++;
        else
            run.other++;
    }
    allot_reply_free(&r);
    return run;
}

/* Segment files (wal-<lsn>.log, not the spare) in DIR/wal. */
static int wal_segments(const harness_server_t *s)
{
    char path[400];
    harness_server_path(s, "wal", path, sizeof(path));
    DIR *d = opendir(path);
    cr_assert_not_null(d, "opendir %s", path);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, "wal-", 4) == 0 && strstr(e->d_name, ".log") != NULL)
            n++;
    closedir(d);
    return n;
}

static int64_t server_info_int(allot_client_t *c, const char *key)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "server.info", "{}", &r);
    int64_t v = reply_int(&r, key);
    allot_reply_free(&r);
    return v;
}

static int64_t checkpoint_now(allot_client_t *c)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "server.checkpoint", "{}", &r);
    int64_t lsn = reply_int(&r, "checkpoint_lsn");
    allot_reply_free(&r);
    return lsn;
}

/* ---- fsync failure ------------------------------------------------------------------------- */

Test(durability, fdatasync_failure_is_fatal_and_nothing_after_it_is_acknowledged, .timeout = 120)
{
    setenv("ALLOT_FAULT", "fdatasync:EIO:after=12", 1);
    harness_server_t *s = harness_server_start(NULL);
    unsetenv("ALLOT_FAULT");
    allot_client_t *c = harness_connect(s);
    allot_client_set_timeout(c, 10000);
    seed(c);
    /* One write per fdatasync until the disk "fails". */
    int acked = 0, sent = 0;
    char params[160];
    allot_reply_t r = {0};
    for (int i = 0; i < 200; i++) {
        snprintf(params, sizeof(params),
                 "{\"sku\":\"A\",\"location\":\"W1\",\"delta\":1,\"key\":\"f-%d\"}", i);
        sent++;
        if (allot_client_call_json(c, "stock.adjust", params, &r) != 0)
            break;
        cr_assert_not(r.is_error, "write %d: %s %s", i, r.code, r.message);
        acked++;
    }
    allot_reply_free(&r);
    cr_assert_lt(acked, 200, "the injected fdatasync failure never happened");
    int status = harness_server_stop_unchecked(s); /* already exiting */
    cr_assert_neq(status, 0, "allotd must exit non-zero after an fsync failure");
    char *log = harness_server_log_read(s);
    cr_assert(strstr(log, "wal_failed") != NULL, "no wal_failed in the log:\n%s", log);
    free(log);
    allot_client_close(c);

    harness_server_restart(s);
    c = harness_connect(s);
    assert_seed_present(c, 3);
    int64_t applied = on_hand_of(c, "A") - 1000;
    /* Every acknowledged write survived; the one in the failed batch may or may not have
     * reached the disk (never acknowledged), nothing later was even accepted. */
    cr_assert(applied >= acked && applied <= sent, "applied %lld acked %d sent %d",
              (long long)applied, acked, sent);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- full disk ----------------------------------------------------------------------------- */

Test(durability, full_disk_refuses_writes_serves_reads_and_recovers_by_itself, .timeout = 180)
{
    char fault_file[64];
    snprintf(fault_file, sizeof(fault_file), "/tmp/allot-full-%d", (int)getpid());
    unlink(fault_file);
    setenv("ALLOT_FAULT_FILE", fault_file, 1);
    harness_server_t *s = harness_server_start("--wal-segment-bytes 1048576");
    unsetenv("ALLOT_FAULT_FILE");
    allot_client_t *c = harness_connect(s);
    allot_client_set_timeout(c, 20000);
    seed(c);
    FILE *f = fopen(fault_file, "w");
    cr_assert_not_null(f);
    fclose(f);
    /* Fill the active segment and the spare: no new segment can be allocated. */
    int ok = 0, next = 0;
    bool refused = false;
    for (int round = 0; round < 60 && !refused; round++) {
        adjust_run_t run = adjust_pipelined(c, "d", next, 1000);
        next += run.sent;
        ok += run.ok;
        cr_assert_eq(run.other, 0);
        /* refused for good: the last writes of a whole batch were refused */
        refused = run.unavailable > 0 && run.ok < run.sent / 2;
    }
    cr_assert(refused, "writes were never refused with the disk full");
    allot_reply_t r = {0};
    harness_call_error(c, "stock.adjust",
                       "{\"sku\":\"A\",\"location\":\"W1\",\"delta\":1,\"key\":\"x\"}",
                       "UNAVAILABLE", &r);
    /* Reads are still served. */
    cr_assert_eq(on_hand_of(c, "A"), 1000 + ok);
    harness_call_ok(c, "ping", "{}", &r);
    /* Free the disk: writes resume on their own. */
    unlink(fault_file);
    bool resumed = false;
    for (int i = 0; i < 100 && !resumed; i++) {
        harness_call_json(c, "stock.adjust",
                          "{\"sku\":\"A\",\"location\":\"W1\",\"delta\":1,\"key\":\"after\"}", &r);
        resumed = !r.is_error;
        if (!resumed) {
            cr_assert_str_eq(r.code, "UNAVAILABLE");
            sleep_ms(100);
        }
    }
    cr_assert(resumed, "writes did not resume after the disk was freed");
    ok++;
    allot_reply_free(&r);
    cr_assert_eq(on_hand_of(c, "A"), 1000 + ok);
    allot_client_close(c);
    harness_server_kill9(s);
    harness_server_restart(s);
    c = harness_connect(s);
    assert_seed_present(c, 3);
    cr_assert_eq(on_hand_of(c, "A"), 1000 + ok);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- small segments on a disk with room ------------------------------------------------------ */

Test(durability, small_segments_on_a_disk_with_room_refuse_no_write, .timeout = 180)
{
    /* 40,000 pipelined adjusts fill several 1 MiB segments; after each switch the next spare
     * is still being allocated. A record that fits in the rest of the active segment is never
     * refused (it was UNAVAILABLE unless there was room for a whole segment's worth). */
    harness_server_t *s = harness_server_start(
        "--wal-segment-bytes 1048576 --checkpoint-interval-s 0 --checkpoint-wal-bytes 0");
    allot_client_t *c = harness_connect(s);
    allot_client_set_timeout(c, 30000);
    seed(c);
    adjust_run_t total = {0};
    for (int round = 0; round < 20; round++) {
        adjust_run_t run = adjust_pipelined(c, "s", round * 2000, 2000);
        total.ok += run.ok;
        total.unavailable += run.unavailable;
        total.overloaded += run.overloaded;
        total.other += run.other;
    }
    cr_assert_eq(total.unavailable + total.overloaded + total.other, 0,
                 "%d UNAVAILABLE, %d OVERLOADED, %d other of 40000", total.unavailable,
                 total.overloaded, total.other);
    cr_assert_geq(wal_segments(s), 3, "the writes crossed several segments: %d", wal_segments(s));
    cr_assert_eq(on_hand_of(c, "A"), 1000 + 40000);
    allot_client_close(c);
    harness_server_kill9(s);
    harness_server_restart(s);
    c = harness_connect(s);
    cr_assert_eq(on_hand_of(c, "A"), 1000 + 40000);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

/* ---- restarts and checkpoints ---------------------------------------------------------------- */

Test(durability, sigterm_restart_keeps_everything_and_replays_nothing)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    seed(c);
    adjust_run_t run = adjust_pipelined(c, "t", 0, 500);
    cr_assert_eq(run.ok, 500, "default segments: no write is refused");
    allot_client_close(c);
    harness_server_restart(s); /* SIGTERM: final checkpoint, then stop */
    c = harness_connect(s);
    assert_seed_present(c, 3);
    cr_assert_eq(on_hand_of(c, "A"), 1500);
    /* The final checkpoint covered the whole log. */
    cr_assert_eq(server_info_int(c, "checkpoint_lsn"), server_info_int(c, "wal_lsn"));
    char *log = harness_server_log_read(s);
    cr_assert(strstr(log, "replayed=0") != NULL, "expected nothing to replay:\n%s", log);
    free(log);
    /* A repeated key after the restart is still recognised. */
    allot_reply_t r = {0};
    harness_call_ok(c, "stock.adjust",
                    "{\"sku\":\"A\",\"location\":\"W1\",\"delta\":1,\"key\":\"t-7\"}", &r);
    allot_reply_free(&r);
    cr_assert_eq(on_hand_of(c, "A"), 1500);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(durability, first_checkpoint_of_an_empty_server)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    cr_assert_eq(checkpoint_now(c), 0);
    char path[400];
    struct stat st;
    cr_assert_eq(stat(harness_server_path(s, "state.lmdb", path, sizeof(path)), &st), 0);
    allot_client_close(c);
    harness_server_kill9(s);
    harness_server_restart(s);
    c = harness_connect(s);
    seed(c);
    cr_assert_gt(checkpoint_now(c), 0);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(durability, checkpoint_deletes_covered_segments_and_recovery_uses_both, .timeout = 240)
{
    harness_server_t *s = harness_server_start(
        "--wal-segment-bytes 1048576 --checkpoint-interval-s 0 --checkpoint-wal-bytes 0");
    allot_client_t *c = harness_connect(s);
    allot_client_set_timeout(c, 30000);
    seed(c);
    int next = 0, applied = 0;
    while (wal_segments(s) < 4) {
        adjust_run_t run = adjust_pipelined(c, "c", next, 2000);
        cr_assert_eq(run.other, 0);
        applied += run.ok;
        next += run.sent;
        cr_assert_lt(next, 400000, "the WAL does not grow");
    }
    int64_t wal_lsn = server_info_int(c, "wal_lsn");
    int64_t lsn = checkpoint_now(c);
    cr_assert_eq(lsn, wal_lsn, "the checkpoint covers every acknowledged write");
    cr_assert_eq(server_info_int(c, "checkpoint_lsn"), lsn);
    /* Truncation runs on the WAL thread before its next batch. */
    for (int i = 0; i < 100 && wal_segments(s) > 1; i++) {
        applied += adjust_pipelined(c, "n", next++, 1).ok;
        sleep_ms(20);
    }
    cr_assert_eq(wal_segments(s), 1, "covered segments were not deleted");
    /* More writes after the checkpoint, then a crash: LMDB + WAL replay restore both. */
    adjust_run_t run = adjust_pipelined(c, "p", 0, 3000);
    cr_assert_eq(run.other, 0);
    applied += run.ok;
    int64_t expected = on_hand_of(c, "A");
    cr_assert_eq(expected, 1000 + applied);
    write_ok(c, "reserve", "{\"id\":\"cart-2\",\"lines\":[{\"sku\":\"A\",\"qty\":2}]}");
    allot_reply_t r = {0};
    allot_client_close(c);
    harness_server_kill9(s);
    harness_server_restart(s);
    c = harness_connect(s);
    assert_seed_present(c, 5);
    cr_assert_eq(on_hand_of(c, "A"), expected);
    harness_call_ok(c, "reservation.get", "{\"id\":\"cart-2\"}", &r);
    allot_reply_free(&r);
    char *log = harness_server_log_read(s);
    char needle[64];
    snprintf(needle, sizeof(needle), "checkpoint_loaded");
    cr_assert(strstr(log, needle) != NULL);
    free(log);
    allot_client_close(c);

    /* Without state.lmdb, the remaining WAL starts after LSN 1: refuse to start, clearly. */
    harness_server_stop(s);
    char path[400];
    cr_assert_eq(unlink(harness_server_path(s, "state.lmdb", path, sizeof(path))), 0);
    cr_assert_not(harness_server_restart_try(s, 10000), "started without the checkpoint");
    cr_assert_neq(s->exit_status, 0);
    log = harness_server_log_read(s);
    cr_assert(strstr(log, "the log starts after the first LSN needed") != NULL, "log:\n%s", log);
    free(log);
    harness_server_destroy(s);
}

/* Poll server.info until checkpoint_lsn >= lsn (true) or timeout_ms passes. */
static bool checkpoint_reaches(allot_client_t *c, int64_t lsn, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (server_info_int(c, "checkpoint_lsn") >= lsn)
            return true;
        sleep_ms(50);
    }
    return false;
}

Test(durability, checkpoints_run_by_themselves_by_wal_bytes_and_by_time, .timeout = 120)
{
    harness_server_t *s =
        harness_server_start("--checkpoint-interval-s 0 --checkpoint-wal-bytes 65536");
    allot_client_t *c = harness_connect(s);
    seed(c);
    cr_assert_eq(server_info_int(c, "checkpoint_lsn"), 0);
    adjust_pipelined(c, "b", 0, 2000); /* well over 64 KiB of WAL */
    cr_assert(checkpoint_reaches(c, 1000, 5000), "no checkpoint after 64 KiB of WAL");
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);

    s = harness_server_start("--checkpoint-interval-s 1 --checkpoint-wal-bytes 0");
    c = harness_connect(s);
    seed(c);
    int64_t lsn = server_info_int(c, "wal_lsn");
    cr_assert(checkpoint_reaches(c, lsn, 5000), "no checkpoint within the interval");
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
