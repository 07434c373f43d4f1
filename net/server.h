/* server.h - the allotd server: one libuv loop owning all state, TCP connections, replies.
 *
 * Contract: server_run() opens the data directory (recovery: checkpoint + WAL replay), listens,
 * and runs the loop until SIGINT/SIGTERM, then stops accepting, answers what is in flight,
 * closes every handle and returns 0 (non-zero on a start-up failure or a fatal WAL error).
 * Per loop iteration: requests are decoded and dispatched as they arrive; reads are answered at
 * once; WRITE replies are held until their WAL records are durable; at the end of the iteration
 * the WAL batch is handed to the writer thread and every connection's replies are flushed once
 * (try-write first, then a queued write). Every per-connection buffer is bounded by the limits
 * in server_config_t (see core/limits.h for defaults).
 */
#ifndef ALLOT_NET_SERVER_H
#define ALLOT_NET_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "core/limits.h"
#include "persist/consensus.h"
#include "persist/wal.h"

typedef struct server_config {
    char listen_host[SERVER_HOST_BYTES_MAX];
    uint16_t listen_port;
    char data_dir[SERVER_PATH_BYTES_MAX];
    wal_fsync_mode_t fsync_mode;
    uint32_t fsync_interval_ms;
    uint64_t wal_segment_bytes;
    /* --fsync always: a small batch right after a commit that ALLOT_WAL_LINGER_ARRIVALS_MIN or more
     * records arrived during waits up to this long for more (adaptive group commit,
     * persist/wal.h; ALLOT_WAL_LINGER_US_DEFAULT; 0: off). */
    uint32_t wal_linger_us;
    uint32_t request_bytes_max;
    uint32_t inflight_requests_max;
    uint32_t output_bytes_max;
    uint32_t connections_max;
    uint64_t buffer_bytes_max;   /* all connections' buffers together; over it: OVERLOADED */
    uint32_t idle_timeout_s;     /* close a connection silent this long (0: never) */
    uint32_t request_timeout_ms; /* a request started but not finished within this: close */
    /* With --auth-token-file: a connection not authenticated within auth_timeout_ms is closed
     * (0: never); at most unauthenticated_connections_max are unauthenticated at once (0: a
     * tenth of connections_max), the oldest is closed to make room for a new one. */
    uint32_t auth_timeout_ms;
    uint32_t unauthenticated_connections_max;
    uint32_t checkpoint_interval_s;
    char auth_token_file[SERVER_PATH_BYTES_MAX]; /* empty: no authentication */
    char metrics_host[SERVER_HOST_BYTES_MAX];    /* empty: no Prometheus endpoint */
    uint16_t metrics_port;
    char http_host[SERVER_HOST_BYTES_MAX]; /* empty: no HTTP front door (net/http.h) */
    uint16_t http_port;
    uint32_t http_connections_max;
    uint32_t http_timeout_s; /* close an HTTP connection without progress this long */
    uint64_t checkpoint_wal_bytes;
    uint32_t checkpoint_dirty_max; /* checkpoint once this many objects changed (0: never) */
    /* Ended (delivered/cancelled) orders leave memory this long after they ended and are read
     * back from state.lmdb (0: core's default, 7 days). docs/orders.md "Archived orders". */
    uint64_t orders_archive_age_ms;
    uint32_t reservations_max;        /* live reservations (0: ALLOT_RESERVATIONS_MAX_DEFAULT) */
    uint32_t idempotency_entries_max; /* remembered reservation ids and adjust keys (0: default) */
    uint32_t idempotency_age_s;       /* how long they are remembered at least (0: default) */
    bool accept_data_loss; /* recovery cuts a damaged or incomplete WAL instead of refusing */
    /* A group (docs/operations.md, "A group of nodes"): member_count > 0 with --peer; node_id
     * is this node's. Without peers the node is standalone (the WAL, as always). */
    uint32_t node_id;
    consensus_member_t members[ALLOT_GROUP_MEMBERS_MAX];
    size_t member_count;
    uint32_t raft_election_timeout_ms;
    uint32_t raft_snapshot_entries;
    /* The change stream (net/events.h): events kept this long and at most this many bytes,
     * whichever comes first; the ledger's movements this many days. */
    uint32_t events_retention_s;
    uint64_t events_bytes_max;
    uint32_t ledger_retention_days;
} server_config_t;

/* Defaults for every field (listen 127.0.0.1:7411, data dir ./data, fsync always). */
void server_config_defaults(server_config_t *config);

/* The checks start-up runs before it binds or opens anything, which --check-config runs alone:
 * the listen and metrics addresses, the auth token file (present, private, 16..512 bytes), and
 * the data directory, its wal/ and state.lmdb (usable by this user, or creatable). 0, or
 * ALLOT_EINVALID_ARGUMENT with `event` (the log event start-up writes, e.g. auth_config_failed)
 * and `message` set. */
typedef struct server_check {
    const char *event;
    char message[SERVER_PATH_BYTES_MAX + 256];
} server_check_t;

int server_config_check(const server_config_t *config, server_check_t *check);

/* Run until a shutdown signal. Returns the process exit status, or SERVER_STATUS_REBUILD: a
 * member of a group lost its leadership while holding records that may not commit, closed
 * everything and must be run again (its state is rebuilt from state.lmdb and the log). */
#define SERVER_STATUS_REBUILD 75
int server_run(const server_config_t *config);

struct server;

typedef struct server_info {
    const char *version;
    int64_t uptime_s;
    uint32_t connections;
    uint64_t wal_lsn;
    uint64_t durable_lsn;
    uint64_t checkpoint_lsn;
    const char *fsync;
} server_info_t;

void server_info_get(const struct server *server, int64_t now_ms, server_info_t *info);
/* The change stream (net/events.h): what its handlers and the HTTP layer read. */
struct events *server_events(struct server *server);

typedef struct server_group_info {
    const char *role; /* standalone | leader | follower | candidate | stopped */
    uint32_t node_id;
    const char *leader; /* client address, or NULL */
    uint64_t commit_index, applied_index, term, leader_changes;
    size_t member_count;
    consensus_member_t members[ALLOT_GROUP_MEMBERS_MAX];
    const char *member_roles[ALLOT_GROUP_MEMBERS_MAX];
    /* leader only: entries each follower lacks */
    size_t lag_count;
    uint32_t lag_ids[ALLOT_GROUP_MEMBERS_MAX];
    uint64_t lag_entries[ALLOT_GROUP_MEMBERS_MAX];
} server_group_info_t;
/* server.info's group part (role "standalone" and member_count 0 without a group). */
void server_group_info(const struct server *server, server_group_info_t *info);
struct allot_error_detail;
/* cluster.transfer / add / remove: 0, or an ALLOT_E* that server_cluster_error explains
 * (NOT_LEADER names the leader). */
int server_cluster_transfer(struct server *server, uint32_t to_id);
int server_cluster_add(struct server *server, const consensus_member_t *member);
int server_cluster_remove(struct server *server, uint32_t id);
int server_cluster_error(const struct server *server, int rc, struct allot_error_detail *error);

/* auth {token}: 0 when authenticated; ALLOT_EUNAUTHENTICATED otherwise, with error filled (the
 * message says when the attempt was refused unchecked and how long to wait; *close set when the
 * connection has failed too often and must be closed). Logs failures (rate-limited), naming the
 * peer. `session` is the connection's (net/auth.h). */
struct auth_session;
struct allot_error_detail;
int server_auth_attempt(struct server *server, struct auth_session *session, const char *token,
                        size_t token_len, bool *close, struct allot_error_detail *error);

/* server.verify: check state.lmdb's last checkpoint (persist/checkpoint.h,
 * checkpoint_store_verify): 0 with *records, ALLOT_ECORRUPT / ALLOT_EIO with message, or
 * ALLOT_EUNAVAILABLE when the store is not open (shutting down). */
int server_store_verify(struct server *server, uint64_t *records, char *message,
                        size_t message_bytes);

/* server.stats: pack the metrics map. */

void server_stats_pack(const struct server *server, msgpack_packer *pk);

struct connection;
struct http_exchange;
struct allot_error_detail;

/* server.checkpoint: start a checkpoint (or join the next one if one is running) and answer
 * [1, msgid, nil, {"checkpoint_lsn": N}] on conn (or to the HTTP request http) once it has
 * committed (an INTERNAL error reply if it fails; nothing when both are NULL or conn closes
 * first). Returns COMMAND_DEFERRED, or
 * ALLOT_EOVERLOADED (SERVER_CHECKPOINT_WAITERS_MAX waiting) / ALLOT_EUNAVAILABLE (shutting
 * down) with error filled. */
int server_checkpoint_request(struct server *server, struct connection *conn, uint32_t msgid,
                              struct http_exchange *http, struct allot_error_detail *error);

#endif
