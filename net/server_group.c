/* server_group.c - allotd as a member of a group: the engine's callbacks (persist/consensus.h),
 * its start, and what server.info and the metrics say about the group. */
#include <stdio.h>
#include <string.h>

#include "core/errors.h"
#include "core/event.h"
#include "core/state.h"
#include "core/stream.h"
#include "log.h"
#include "server_internal.h"

/* A committed record decided by another node (or by this one before a restart). */
static int on_group_apply(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type,
                          const uint8_t *payload, size_t len)
{
    server_t *server = ctx;
    /* the stream's seq and at_ms come from the record: the same on every member */
    allot_state_record_set(server->state, lsn, time_ms);
    int rc = allot_event_apply_encoded(server->state, type, payload, len);
    if (rc != 0)
        log_event(LOG_ERROR, "group_apply_failed", LOG_UINT("lsn", lsn), LOG_UINT("type", type),
                  LOG_STR("code", allot_error_code(rc)));
    return rc;
}

static void on_group_committed(void *ctx, uint64_t committed_lsn)
{
    server_durable_advanced(ctx, committed_lsn);
}

/* This node applied records as leader that may never commit: its state can no longer be trusted
 * to equal the group's. It stops serving and rebuilds from state.lmdb and the log (server_run
 * returns SERVER_STATUS_REBUILD at the end of this loop iteration). */
static void on_group_lost(void *ctx, uint64_t first_lsn)
{
    server_t *server = ctx;
    log_event(LOG_WARN, "leadership_lost", LOG_UINT("uncommitted_from_lsn", first_lsn),
              LOG_UINT("last_lsn", server_wal_lsn(server)),
              LOG_STR("message", "writes after this LSN may not commit: connections are closed "
                                 "and the state is rebuilt from state.lmdb and the group's log"));
    server->rebuild_requested = true;
}

/* This new leader's barrier failed: it refuses writes (UNAVAILABLE) until the barrier it issues
 * again commits. Once per term. */
static void on_group_barrier_failed(void *ctx, uint64_t term, const char *message)
{
    (void)ctx;
    log_event(LOG_WARN, "leader_barrier_failed", LOG_UINT("term", term),
              LOG_STR("message", message));
}

static int on_group_checkpoint_begin(void *ctx, uint64_t *lsn)
{
    return checkpoint_driver_begin(ctx, "raft_snapshot", lsn);
}

/* A pool thread: the state image a lagging member gets (the last committed checkpoint). */
static int on_group_image(void *ctx, int fd)
{
    server_t *server = ctx;
    char message[256];
    int rc = checkpoint_store_copy(server->checkpoint.store, fd, message, sizeof(message));
    if (rc != 0)
        log_event(LOG_ERROR, "snapshot_image_failed", LOG_STR("message", message));
    return rc;
}

/* The leader's image is in place: start again from it (server_run returns REBUILD). */
static void on_group_installed(void *ctx, uint64_t lsn)
{
    server_t *server = ctx;
    log_event(LOG_INFO, "snapshot_installed", LOG_UINT("lsn", lsn),
              LOG_UINT("state_lsn", server_wal_lsn(server)),
              LOG_STR("message", "this node lagged behind the leader's log: it starts again from "
                                 "the leader's state image"));
    server->rebuild_requested = true;
}

static void on_group_fatal(void *ctx, const char *message)
{
    (void)ctx;
    log_event(LOG_ERROR, "group_failed", LOG_STR("message", message));
    fflush(NULL);
    _exit(1);
}

int server_group_start(server_t *server, uint64_t last_lsn)
{
    const server_config_t *config = &server->config;
    char dir[SERVER_PATH_BYTES_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/raft", config->data_dir);
    consensus_config_t group = {
        .dir = dir,
        .node_id = config->node_id,
        .members = config->members,
        .member_count = config->member_count,
        .election_timeout_ms = config->raft_election_timeout_ms,
        .heartbeat_ms = config->raft_election_timeout_ms / ALLOT_RAFT_HEARTBEAT_DIVISOR,
        .snapshot_entries = config->raft_snapshot_entries,
        .trailing_entries = config->raft_snapshot_entries * ALLOT_RAFT_TRAILING_FACTOR,
        .applied_lsn = last_lsn,
    };
    consensus_callbacks_t callbacks = {
        .ctx = server,
        .apply_cb = on_group_apply,
        .committed_cb = on_group_committed,
        .lost_cb = on_group_lost,
        .checkpoint_begin_cb = on_group_checkpoint_begin,
        .image_cb = on_group_image,
        .installed_cb = on_group_installed,
        .fatal_cb = on_group_fatal,
        .barrier_failed_cb = on_group_barrier_failed,
    };
    server->durable_lsn = last_lsn;
    char message[512];
    int rc = consensus_open(server->loop, &group, &callbacks, &server->consensus, message,
                            sizeof(message));
    if (rc != 0) {
        log_event(LOG_ERROR, "group_start_failed", LOG_STR("code", allot_error_code(rc)),
                  LOG_STR("message", message));
        return rc;
    }
    allot_state_set_event_sink(server->state, server_state_event_cb, server);
    log_event(LOG_INFO, "group_started", LOG_UINT("node_id", config->node_id),
              LOG_UINT("members", config->member_count), LOG_UINT("applied_lsn", last_lsn));
    return 0;
}

static const char *const role_names[] = {
    [CONSENSUS_FOLLOWER] = "follower",
    [CONSENSUS_CANDIDATE] = "candidate",
    [CONSENSUS_LEADER] = "leader",
    [CONSENSUS_STOPPED] = "stopped",
};

void server_group_info(const server_t *server, server_group_info_t *info)
{
    memset(info, 0, sizeof(*info));
    const consensus_t *c = server->consensus;
    if (c == NULL) {
        info->role = "standalone";
        return;
    }
    info->role = role_names[consensus_role(c)];
    info->node_id = server->config.node_id;
    info->leader = server_leader_address(server);
    info->commit_index = consensus_commit_index(c);
    info->applied_index = consensus_applied_index(c);
    info->term = consensus_term(c);
    info->leader_changes = consensus_leader_changes(c);
    const consensus_member_t *leader = consensus_leader(c);
    size_t count = consensus_member_count(c);
    for (size_t i = 0; i < count && info->member_count < ALLOT_GROUP_MEMBERS_MAX; i++) {
        consensus_member_t *m = &info->members[info->member_count];
        if (!consensus_member_at(c, i, m))
            break;
        info->member_roles[info->member_count++] = leader != NULL && leader->id == m->id ? "leader"
                                                   : m->id == server->config.node_id ? info->role
                                                   : m->voter                        ? "follower"
                                                                                     : "spare";
    }
    consensus_follower_lag(c, info->lag_entries, info->lag_ids, ALLOT_GROUP_MEMBERS_MAX,
                           &info->lag_count);
}

/* ---- cluster.* ------------------------------------------------------------------------------ */

int server_cluster_error(const server_t *server, int rc, allot_error_detail_t *error)
{
    if (server->consensus == NULL)
        return allot_error_set(error, ALLOT_EUNAVAILABLE, NULL,
                               "this node is standalone (started without --peer)");
    if (rc == ALLOT_ENOT_LEADER) {
        error->leader = server_leader_address(server);
        return allot_error_set(error, rc, NULL,
                               "membership and leadership changes go to the "
                               "leader");
    }
    if (rc == ALLOT_ENOT_FOUND)
        return allot_error_set(error, rc, "id", "no such member");
    if (rc == ALLOT_ECONFLICT)
        return allot_error_set(error, rc, "id", "that id or raft address is a member already");
    return allot_error_set(error, rc, NULL, "the group cannot change now (%s); retry",
                           allot_error_message(rc));
}

int server_cluster_transfer(server_t *server, uint32_t to_id)
{
    return server->consensus != NULL ? consensus_transfer(server->consensus, to_id)
                                     : ALLOT_EUNAVAILABLE;
}

int server_cluster_add(server_t *server, const consensus_member_t *member)
{
    if (server->consensus == NULL)
        return ALLOT_EUNAVAILABLE;
    int rc = consensus_member_add(server->consensus, member);
    if (rc == 0)
        log_event(LOG_INFO, "member_adding", LOG_UINT("id", member->id),
                  LOG_STR("raft", member->raft_address), LOG_STR("client", member->client_address));
    return rc;
}

int server_cluster_remove(server_t *server, uint32_t id)
{
    if (server->consensus == NULL)
        return ALLOT_EUNAVAILABLE;
    int rc = consensus_member_remove(server->consensus, id);
    if (rc == 0)
        log_event(LOG_INFO, "member_removing", LOG_UINT("id", id));
    return rc;
}
