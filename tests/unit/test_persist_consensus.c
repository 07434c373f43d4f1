/* test_persist_consensus.c - the group's log (persist/consensus.h) on the real libraft io in a
 * temporary directory: a one-member group (it elects itself at once), records proposed, committed,
 * replayed after a restart, snapshots taken as checkpoints, restored, and refused when the state
 * does not cover them; a leader whose barrier failed (persist/fault.h) issues another and
 * becomes writable in the same term. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/errors.h"
#include "persist/consensus.h"
#include "persist/fault.h"

#define RECORDS_MAX 4096

/* What the callbacks saw: the state machine of the test is the list of applied records. */
typedef struct fixture {
    uv_loop_t loop;
    consensus_t *c;
    uint64_t applied_lsns[RECORDS_MAX];
    uint8_t applied_types[RECORDS_MAX];
    size_t applied_count;
    uint64_t committed_lsn;
    uint64_t checkpoints_begun, checkpoint_lsn;
    bool lost, fatal, closed;
    char fatal_message[512];
    int barrier_failures;
    uint64_t barrier_failed_term;
    char barrier_message[512];
} fixture_t;

static int on_apply(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type, const uint8_t *payload,
                    size_t len)
{
    fixture_t *f = ctx;
    (void)time_ms;
    cr_assert_eq(len, 8, "payload of record %llu", (unsigned long long)lsn);
    uint64_t echoed;
    memcpy(&echoed, payload, sizeof(echoed));
    cr_assert_eq(echoed, lsn, "record %llu carries %llu", (unsigned long long)lsn,
                 (unsigned long long)echoed);
    cr_assert_lt(f->applied_count, RECORDS_MAX);
    f->applied_lsns[f->applied_count] = lsn;
    f->applied_types[f->applied_count++] = type;
    return 0;
}

static void on_committed(void *ctx, uint64_t lsn)
{
    fixture_t *f = ctx;
    cr_assert_geq(lsn, f->committed_lsn);
    f->committed_lsn = lsn;
}

static void on_lost(void *ctx, uint64_t first_lsn)
{
    (void)first_lsn;
    ((fixture_t *)ctx)->lost = true;
}

/* The checkpoint "commits" at once: the state of the test is in memory. */
static int on_checkpoint_begin(void *ctx, uint64_t *lsn)
{
    fixture_t *f = ctx;
    f->checkpoints_begun++;
    *lsn = consensus_last_lsn(f->c);
    f->checkpoint_lsn = *lsn;
    consensus_checkpoint_committed(f->c, *lsn);
    return 0;
}

static void on_fatal(void *ctx, const char *message)
{
    fixture_t *f = ctx;
    f->fatal = true;
    snprintf(f->fatal_message, sizeof(f->fatal_message), "%s", message);
}

static void on_barrier_failed(void *ctx, uint64_t term, const char *message)
{
    fixture_t *f = ctx;
    f->barrier_failures++;
    f->barrier_failed_term = term;
    snprintf(f->barrier_message, sizeof(f->barrier_message), "%s", message);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static char dir_template[] = "/tmp/allot-consensus-XXXXXX";
static char *dir;
static consensus_member_t member;

static int fixture_open(fixture_t *f, uint64_t applied_lsn, uint32_t snapshot_entries)
{
    memset(f, 0, sizeof(*f));
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    consensus_config_t config = {
        .dir = dir,
        .node_id = 1,
        .members = &member,
        .member_count = 1,
        .election_timeout_ms = 200,
        .heartbeat_ms = 20,
        .snapshot_entries = snapshot_entries,
        .trailing_entries = snapshot_entries,
        .applied_lsn = applied_lsn,
    };
    consensus_callbacks_t callbacks = {
        .ctx = f,
        .apply_cb = on_apply,
        .committed_cb = on_committed,
        .lost_cb = on_lost,
        .checkpoint_begin_cb = on_checkpoint_begin,
        .fatal_cb = on_fatal,
        .barrier_failed_cb = on_barrier_failed,
    };
    char message[256] = "";
    return consensus_open(&f->loop, &config, &callbacks, &f->c, message, sizeof(message));
}

/* Run the loop until `done` holds (or about five seconds passed). */
static bool run_until(fixture_t *f, bool (*done)(fixture_t *), int turns)
{
    for (int i = 0; i < turns && !done(f); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    return done(f);
}

static bool is_writable(fixture_t *f)
{
    return f->fatal || consensus_writable(f->c);
}

static bool is_closed(fixture_t *f)
{
    return f->closed;
}

static void on_closed(void *ctx)
{
    ((fixture_t *)ctx)->closed = true;
}

static void fixture_close(fixture_t *f)
{
    consensus_close(f->c, on_closed, f);
    cr_assert(run_until(f, is_closed, 5000));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&f->loop), 0);
}

/* Propose `count` records (each carries its own LSN), one entry per `per_entry`, and wait until
 * all are committed. */
static uint64_t target_lsn;
static bool all_committed(fixture_t *f)
{
    return f->committed_lsn >= target_lsn;
}

static void propose(fixture_t *f, int count, int per_entry)
{
    for (int i = 0; i < count; i++) {
        uint64_t lsn = consensus_last_lsn(f->c) + 1;
        uint64_t appended = consensus_append(f->c, (uint8_t)(1 + i % 3), 1000 + i,
                                             (const uint8_t *)&lsn, sizeof(lsn));
        cr_assert_eq(appended, lsn);
        if ((i + 1) % per_entry == 0 || i + 1 == count)
            consensus_flush(f->c);
    }
    target_lsn = consensus_last_lsn(f->c);
    cr_assert(run_until(f, all_committed, 5000), "committed %llu of %llu",
              (unsigned long long)f->committed_lsn, (unsigned long long)target_lsn);
}

static bool snapshot_stored(fixture_t *f)
{
    return consensus_snapshot_index(f->c) > 0;
}

static void setup(void)
{
    dir = mkdtemp(dir_template);
    cr_assert_not_null(dir);
    memset(&member, 0, sizeof(member));
    member.id = 1;
    snprintf(member.raft_address, sizeof(member.raft_address), "127.0.0.1:%u", free_port());
    snprintf(member.client_address, sizeof(member.client_address), "127.0.0.1:7411");
}

static void teardown(void)
{
    char command[128];
    snprintf(command, sizeof(command), "rm -rf %s", dir);
    cr_assert_eq(system(command), 0);
    strcpy(dir_template, "/tmp/allot-consensus-XXXXXX");
}

TestSuite(persist_consensus, .init = setup, .fini = teardown);

Test(persist_consensus, own_records_commit_without_being_applied_twice_and_replay_after_restart)
{
    static fixture_t f;
    cr_assert_eq(fixture_open(&f, 0, 1024), 0);
    cr_assert(run_until(&f, is_writable, 5000), "a one-member group elects itself");
    cr_assert(!f.fatal);
    cr_assert_eq(consensus_role(f.c), CONSENSUS_LEADER);
    propose(&f, 100, 7);
    cr_assert_eq(f.applied_count, 0, "the leader's own records are in its state already");
    cr_assert_eq(f.committed_lsn, 100);
    cr_assert(!f.lost);
    fixture_close(&f);

    /* A restart with an empty state: raft's log replays every record, in order, once. */
    cr_assert_eq(fixture_open(&f, 0, 1024), 0);
    cr_assert(run_until(&f, is_writable, 5000));
    cr_assert_eq(f.applied_count, 100);
    for (size_t i = 0; i < f.applied_count; i++) {
        cr_assert_eq(f.applied_lsns[i], i + 1);
        cr_assert_eq(f.applied_types[i], 1 + i % 3);
    }
    /* New records continue the LSNs. */
    propose(&f, 5, 5);
    cr_assert_eq(f.committed_lsn, 105);
    fixture_close(&f);

    /* A restart whose state holds the first 60 (a checkpoint): only the rest is applied. */
    cr_assert_eq(fixture_open(&f, 60, 1024), 0);
    cr_assert(run_until(&f, is_writable, 5000));
    cr_assert_eq(f.applied_count, 45);
    cr_assert_eq(f.applied_lsns[0], 61);
    cr_assert_eq(f.applied_lsns[44], 105);
    fixture_close(&f);
}

Test(persist_consensus, snapshots_are_checkpoints_and_a_restart_restores_from_them)
{
    static fixture_t f;
    cr_assert_eq(fixture_open(&f, 0, ALLOT_RAFT_SNAPSHOT_ENTRIES_FLOOR), 0);
    cr_assert(run_until(&f, is_writable, 5000));
    propose(&f, 200, 2); /* 100 entries: several snapshots of 16 */
    cr_assert_gt(f.checkpoints_begun, 0, "raft asked for checkpoints");
    cr_assert(run_until(&f, snapshot_stored, 5000), "a snapshot is stored once its checkpoint is");
    uint64_t checkpointed = f.checkpoint_lsn;
    cr_assert_gt(checkpointed, 0);
    fixture_close(&f);

    /* The state loaded from that checkpoint: the snapshot is accepted and the log after it is
     * replayed; nothing at or before the checkpoint is applied again. */
    cr_assert_eq(fixture_open(&f, checkpointed, ALLOT_RAFT_SNAPSHOT_ENTRIES_FLOOR), 0);
    cr_assert(run_until(&f, is_writable, 5000));
    cr_assert(!f.fatal, "%s", f.fatal_message);
    cr_assert_eq(f.applied_count, 200 - checkpointed);
    if (f.applied_count > 0)
        cr_assert_eq(f.applied_lsns[0], checkpointed + 1);
    fixture_close(&f);

    /* A state older than the snapshot (state.lmdb lost or replaced): refused, never diverged. */
    int rc = fixture_open(&f, 0, ALLOT_RAFT_SNAPSHOT_ENTRIES_FLOOR);
    if (rc == 0) {
        run_until(&f, is_writable, 500);
        cr_assert(f.fatal, "a snapshot the state does not cover must stop the node");
        fixture_close(&f);
    } else {
        cr_assert(f.fatal);
        uv_run(&f.loop, UV_RUN_DEFAULT);
        uv_loop_close(&f.loop);
    }
    cr_assert_not_null(strstr(f.fatal_message, "newer than this node's state"), "%s",
                       f.fatal_message);
}

/* The leader's first barrier fails (`op`, once): it issues another at the next poll and becomes
 * writable in the same term, without an election; the failure is reported once, with libraft's
 * message. */
static void barrier_failure_recovers(persist_fault_op_t op, const char *what)
{
    static fixture_t f;
    persist_fault_set_times(op, EIO, 0, 1);
    cr_assert_eq(fixture_open(&f, 0, 1024), 0);
    cr_assert(run_until(&f, is_writable, 5000), "the leader never became writable");
    cr_assert(!f.fatal, "%s", f.fatal_message);
    cr_assert_eq(persist_fault_calls(op), 2, "one failed barrier, one that committed");
    cr_assert_eq(f.barrier_failures, 1);
    cr_assert_eq(f.barrier_failed_term, consensus_term(f.c), "the same term: no election");
    cr_assert_not_null(strstr(f.barrier_message, what), "%s", f.barrier_message);
    cr_assert_not_null(strstr(f.barrier_message, "I/O error"), "%s", f.barrier_message);
    propose(&f, 10, 3);
    cr_assert_eq(f.committed_lsn, 10);
    cr_assert(!f.lost);
    fixture_close(&f);
    persist_fault_clear_all();
}

Test(persist_consensus, leader_whose_barrier_is_refused_issues_another_and_becomes_writable)
{
    barrier_failure_recovers(PERSIST_FAULT_BARRIER, "raft_barrier");
}

Test(persist_consensus,
     leader_whose_barrier_fails_in_its_callback_issues_another_and_becomes_writable)
{
    barrier_failure_recovers(PERSIST_FAULT_BARRIER_CB, "barrier entry");
}
