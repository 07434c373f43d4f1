/* consensus.h - the log of a group of allotd nodes: Canonical's raft library (libraft, raft_uv
 * with its TCP transport) in allotd's own loop, carrying Allot's event records. This is the one
 * module that knows the engine; the rest of the server sees appends, commits, roles and
 * checkpoints.
 *
 * Contract
 *  - Threads: everything is called on the loop thread, and every callback runs there, except
 *    checkpoint_wait_cb (a thread of libuv's pool, see Snapshots).
 *  - Records: in a group the raft log is the write-ahead log. The leader's event sink calls
 *    consensus_append for each record core emits; the records of one loop iteration become one
 *    raft entry at consensus_flush (group commit). Records get LSNs exactly as in the WAL: one
 *    counter, +1 per record, continued by each new leader from its applied state, so equal LSNs
 *    name equal records on every node. An entry is ENTRY_MAGIC, the format version, the first
 *    LSN and the record count, then the records in the WAL's record format (wal_format.c), padded
 *    to 8 bytes (the layout is documented at the top of consensus.c).
 *  - Apply: every node applies committed entries in log order. A record whose LSN the state
 *    already holds is skipped: the leader applied its own records when core decided them (core
 *    decides and applies in one step), and a node restarted from a checkpoint holds the records
 *    up to the checkpoint's LSN. Any other record goes to apply_cb. After each entry,
 *    committed_cb reports the highest LSN committed and applied: replies of writes up to it may
 *    be sent.
 *  - Leadership: writes are appended only by the leader, and only once consensus_writable() is
 *    true (a new leader first commits a barrier, so that its state holds every earlier entry).
 *    The barrier makes the node writable only in the term it was issued in. A leader that is not
 *    writable and has no barrier in flight issues one at every poll (once per loop iteration):
 *    a barrier refused by raft_barrier or reported failed by its callback (its entry could not
 *    be written) is tried again until one commits or leadership moves; barrier_failed_cb says so
 *    once per term. A leader that reported lost_cb issues none (it is rebuilding).
 *    A leader that steps down while records it applied are not committed cannot know whether
 *    they will commit: lost_cb reports it (the server rebuilds its state from what is durable).
 *  - Snapshots: a raft snapshot is the LMDB checkpoint. When libraft wants one, consensus asks
 *    checkpoint_begin_cb to start a checkpoint of the state as of now (ALLOT_EOVERLOADED: one is
 *    running, libraft asks again later), then waits on a pool thread (checkpoint_wait_cb) until a
 *    checkpoint covering the records of the snapshot's index has committed; only then does
 *    libraft store its snapshot (a small descriptor: format, LSN) and trim its log. At start-up
 *    libraft hands the descriptor to restore: the state (loaded from state.lmdb before
 *    consensus_open) must cover its LSN. A member that fell behind the leader's log (past the
 *    trailing entries) gets the snapshot with the state's image (the leader's image_cb copies
 *    state.lmdb on a pool thread); the member writes it to CONSENSUS_INSTALLED_NAME in the data
 *    directory before raft stores the descriptor, applies nothing more and reports installed_cb:
 *    its next start takes the image (persist/recovery.c). A descriptor the state does not cover
 *    and no image came with (state.lmdb lost or replaced) stops the node (fatal_cb) with a
 *    message naming what to do, rather than diverge.
 *  - Membership: a fresh group bootstraps from the configured members (every member gets the
 *    same list); consensus_member_add / _remove change it one node at a time through raft's
 *    configuration entries; consensus_transfer hands leadership over.
 *  - Errors: 0 or negative ALLOT_E*; `message` says what failed.
 */
#ifndef ALLOT_PERSIST_CONSENSUS_H
#define ALLOT_PERSIST_CONSENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/limits.h"

typedef struct consensus consensus_t;

/* In the data directory: the leader's state image a lagging member received, moved over
 * state.lmdb at its next start (persist/recovery.c). */
#define CONSENSUS_INSTALLED_NAME "state.lmdb.installed"

typedef enum consensus_role {
    CONSENSUS_FOLLOWER = 0,
    CONSENSUS_CANDIDATE,
    CONSENSUS_LEADER,
    CONSENSUS_STOPPED, /* closed, or failed */
} consensus_role_t;

typedef struct consensus_member {
    uint32_t id;                                  /* 1..ALLOT_NODE_ID_MAX */
    char raft_address[ALLOT_ADDRESS_BYTES_MAX];   /* "host:port" of its raft port */
    char client_address[ALLOT_ADDRESS_BYTES_MAX]; /* "host:port" clients connect to */
    bool voter; /* consensus_member_at: a voter (else catching up as a spare) */
} consensus_member_t;

typedef struct consensus_callbacks {
    void *ctx;
    /* Apply one committed record this node's state does not hold yet. Nonzero stops the node. */
    int (*apply_cb)(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type, const uint8_t *payload,
                    size_t len);
    /* Records up to committed_lsn are committed and applied. */
    void (*committed_cb)(void *ctx, uint64_t committed_lsn);
    /* This node applied records (from first_lsn) as leader that may now never commit. */
    void (*lost_cb)(void *ctx, uint64_t first_lsn);
    /* Start a checkpoint of the state as of now; *lsn: the LSN it covers. ALLOT_EOVERLOADED when
     * one is running. */
    int (*checkpoint_begin_cb)(void *ctx, uint64_t *lsn);
    /* A pool thread, on the leader: write a compact copy of state.lmdb to fd (for a member that
     * lags behind the log). 0 or an ALLOT_E*. */
    int (*image_cb)(void *ctx, int fd);
    /* This member installed the leader's image (it covers lsn) for its next start: rebuild. */
    void (*installed_cb)(void *ctx, uint64_t lsn);
    /* The engine cannot go on (a refused snapshot, a failed disk): log and stop. */
    void (*fatal_cb)(void *ctx, const char *message);
    /* May be NULL. The barrier of this new leader failed (libraft's message); it is issued again
     * at the next poll. Called at most once per term. */
    void (*barrier_failed_cb)(void *ctx, uint64_t term, const char *message);
} consensus_callbacks_t;

typedef struct consensus_config {
    const char *dir; /* "<data-dir>/raft" (created if missing) */
    uint32_t node_id;
    const consensus_member_t *members; /* every voter, this node included */
    size_t member_count;
    uint32_t election_timeout_ms;
    uint32_t heartbeat_ms;
    uint32_t snapshot_entries; /* entries between snapshots (libraft's threshold) */
    uint32_t trailing_entries; /* entries kept behind a snapshot for slow followers */
    uint64_t applied_lsn;      /* the LSN the state holds (its checkpoint's) */
} consensus_config_t;

/* *out is set before the engine starts: callbacks may run inside consensus_open (a restarted lone
 * member applies its log there). On error *out is NULL again and nothing is left open once the
 * loop has run. */
int consensus_open(uv_loop_t *loop, const consensus_config_t *config,
                   const consensus_callbacks_t *callbacks, consensus_t **out, char *message,
                   size_t message_bytes);
/* Stop the engine; close_cb runs once its handles are closed (then consensus is freed). */
void consensus_close(consensus_t *c, void (*close_cb)(void *ctx), void *ctx);

/* Leader only, while consensus_writable(): add one record to this iteration's entry. Returns
 * its LSN, or 0 when memory ran out (nothing added). */
uint64_t consensus_append(consensus_t *c, uint8_t type, int64_t time_ms, const uint8_t *payload,
                          size_t len);
/* End of a loop iteration: propose the records appended since the last flush as one entry. */
void consensus_flush(consensus_t *c);
/* The LSN of the newest record this node's state holds (appended or applied). */
uint64_t consensus_last_lsn(const consensus_t *c);
/* A checkpoint committed: the state up to lsn is in state.lmdb (wakes a waiting snapshot). */
void consensus_checkpoint_committed(consensus_t *c, uint64_t lsn);
/* The checkpoint a snapshot waits for failed: that snapshot is given up (libraft retries). */
void consensus_checkpoint_failed(consensus_t *c);

consensus_role_t consensus_role(const consensus_t *c);
/* Leader, and its barrier has committed: writes may be appended. */
bool consensus_writable(const consensus_t *c);
/* The current leader's member entry, or NULL when none is known (an election). */
const consensus_member_t *consensus_leader(const consensus_t *c);
/* The members of the group's current configuration (raft's), with the client addresses this
 * node knows (from its --peer list or cluster.add; empty when unknown). */
size_t consensus_member_count(const consensus_t *c);
bool consensus_member_at(const consensus_t *c, size_t i, consensus_member_t *out);
uint64_t consensus_commit_index(const consensus_t *c);
uint64_t consensus_applied_index(const consensus_t *c);
uint64_t consensus_term(const consensus_t *c);
/* The raft index of the newest stored snapshot (0: none yet). */
uint64_t consensus_snapshot_index(const consensus_t *c);
/* Elections this node has seen won (leader changes), for metrics. */
uint64_t consensus_leader_changes(const consensus_t *c);
/* Entries each follower still lacks (leader only; 0 elsewhere): at most `count`, in member
 * order, *filled set to how many were written. */
void consensus_follower_lag(const consensus_t *c, uint64_t *lag, uint32_t *ids, size_t count,
                            size_t *filled);
/* Leader only (ALLOT_ENOT_LEADER elsewhere), one change at a time (ALLOT_EUNAVAILABLE while one
 * runs): add a member (it catches up as a spare, then becomes a voter), or remove one. Start the
 * new node with the group's --peer list (itself included) first. The client address is known on
 * the leader at once; other members know what their own --peer lists say. */
int consensus_member_add(consensus_t *c, const consensus_member_t *member);
int consensus_member_remove(consensus_t *c, uint32_t id);
/* Hand leadership to member `to_id` (0: the most up-to-date follower). ALLOT_ENOT_LEADER on a
 * follower, ALLOT_ENOT_FOUND for an unknown member. */
int consensus_transfer(consensus_t *c, uint32_t to_id);

#endif
