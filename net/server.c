/* server.c - allotd's loop: start-up (recovery: persist/recovery.h), listening, group-commit glue,
 * housekeeping, shutdown (checkpoints: checkpoint_driver.c). */
#include "server.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/reservation.h"
#include "core/sale.h"
#include "core/state.h"
#include "core/stream.h"
#include "events.h"
#include "log.h"
#include "persist/recovery.h"
#include "server_internal.h"

void server_config_defaults(server_config_t *config)
{
    memset(config, 0, sizeof(*config));
    snprintf(config->listen_host, sizeof(config->listen_host), "127.0.0.1");
    config->listen_port = ALLOT_LISTEN_PORT_DEFAULT;
    snprintf(config->data_dir, sizeof(config->data_dir), "./data");
    config->fsync_mode = WAL_FSYNC_ALWAYS;
    config->fsync_interval_ms = ALLOT_FSYNC_INTERVAL_MS_DEFAULT;
    config->wal_segment_bytes = ALLOT_WAL_SEGMENT_BYTES_DEFAULT;
    config->wal_linger_us = ALLOT_WAL_LINGER_US_DEFAULT;
    config->request_bytes_max = ALLOT_REQUEST_BYTES_MAX_DEFAULT;
    config->inflight_requests_max = ALLOT_INFLIGHT_REQUESTS_MAX_DEFAULT;
    config->output_bytes_max = ALLOT_OUTPUT_BYTES_MAX_DEFAULT;
    config->connections_max = ALLOT_CONNECTIONS_MAX_DEFAULT;
    config->buffer_bytes_max = ALLOT_BUFFER_BYTES_MAX_DEFAULT;
    config->idle_timeout_s = ALLOT_IDLE_TIMEOUT_S_DEFAULT;
    config->request_timeout_ms = ALLOT_REQUEST_TIMEOUT_MS_DEFAULT;
    config->auth_timeout_ms = ALLOT_AUTH_TIMEOUT_MS_DEFAULT;
    config->checkpoint_interval_s = ALLOT_CHECKPOINT_INTERVAL_S_DEFAULT;
    config->checkpoint_wal_bytes = ALLOT_CHECKPOINT_WAL_BYTES_DEFAULT;
    config->checkpoint_dirty_max = ALLOT_CHECKPOINT_DIRTY_MAX_DEFAULT;
    config->raft_election_timeout_ms = ALLOT_RAFT_ELECTION_TIMEOUT_MS_DEFAULT;
    config->raft_snapshot_entries = ALLOT_RAFT_SNAPSHOT_ENTRIES_DEFAULT;
    config->events_retention_s = ALLOT_EVENTS_RETENTION_S_DEFAULT;
    config->events_bytes_max = ALLOT_EVENTS_BYTES_MAX_DEFAULT;
    config->ledger_retention_days = ALLOT_LEDGER_RETENTION_DAYS_DEFAULT;
    config->http_connections_max = HTTP_CONNECTIONS_MAX_DEFAULT;
    config->http_timeout_s = HTTP_TIMEOUT_S_DEFAULT;
}

int64_t server_now_ms(server_t *server)
{
    if (!server->now_valid) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        server->now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        server->now_valid = true;
    }
    return server->now_ms;
}

struct events *server_events(struct server *server)
{
    return server->events;
}

uint64_t server_wal_lsn(const server_t *server)
{
    if (server->consensus != NULL)
        return consensus_last_lsn(server->consensus);
    return server->wal != NULL ? wal_last_lsn(server->wal) : 0;
}

uint64_t server_log_bytes(const server_t *server)
{
    if (server->wal == NULL)
        return 0; /* a group: raft's snapshots bound its log (--raft-snapshot-entries) */
    wal_stats_t stats;
    wal_stats(server->wal, &stats);
    return stats.bytes_written;
}

bool server_writes_allowed(const server_t *server, int *refused_error)
{
    *refused_error = ALLOT_EUNAVAILABLE;
    if (server->shutting_down || server->rebuild_requested)
        return false;
    if (server->consensus != NULL) {
        if (consensus_writable(server->consensus))
            return true;
        /* a leader whose barrier has not committed yet stays UNAVAILABLE for a moment */
        if (consensus_role(server->consensus) != CONSENSUS_LEADER)
            *refused_error = ALLOT_ENOT_LEADER;
        return false;
    }
    if (server->wal == NULL)
        return false;
    int rc = wal_room_check(server->wal, ALLOT_WAL_HEADROOM_BYTES);
    if (rc != 0)
        *refused_error = rc;
    return rc == 0;
}

const char *server_leader_address(const server_t *server)
{
    const consensus_member_t *leader =
        server->consensus != NULL ? consensus_leader(server->consensus) : NULL;
    return leader != NULL ? leader->client_address : NULL;
}

void server_info_get(const server_t *server, int64_t now_ms, server_info_t *info)
{
    static const char *const fsync_names[] = {"always", "interval", "none"};
    info->version = ALLOT_VERSION;
    info->uptime_s = (now_ms - server->started_ms) / 1000;
    info->connections = server_connections_open(server);
    info->wal_lsn = server_wal_lsn(server);
    info->durable_lsn = server->durable_lsn;
    info->checkpoint_lsn = server->checkpoint_lsn;
    info->fsync = fsync_names[server->config.fsync_mode];
}

/* ---- the event sink: every state change is appended to the WAL before it is applied ------ */

int server_state_event_cb(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    server_t *server = ctx;
    if (server->consensus != NULL) { /* a group: the record goes into this iteration's entry */
        if (!consensus_writable(server->consensus))
            return ALLOT_EUNAVAILABLE;
        uint64_t lsn =
            consensus_append(server->consensus, type, server_now_ms(server), payload, len);
        if (lsn == 0)
            return ALLOT_ENOMEM;
        allot_state_record_set(server->state, lsn, server_now_ms(server)); /* core/stream.h */
        return 0;
    }
    int rc = wal_room_check(server->wal, len);
    if (rc != 0)
        return rc;
    uint64_t lsn = wal_append(server->wal, type, server_now_ms(server), payload, len);
    assert(lsn != 0);
    allot_state_record_set(server->state, lsn, server_now_ms(server)); /* core/stream.h */
    return lsn != 0 ? 0 : ALLOT_EOVERLOADED;
}

/* Records up to durable_lsn can no longer be lost (fsynced; in a group: committed on a
 * majority): send the replies held for them. */
void server_durable_advanced(server_t *server, uint64_t durable_lsn)
{
    assert(durable_lsn >= server->durable_lsn);
    server->durable_lsn = durable_lsn;
    uint64_t now_ns = uv_hrtime();
    if (server->wal_flush_ns != 0) {
        histogram_record(&server->metrics.wal_batch_us,
                         (int64_t)(now_ns - server->wal_flush_ns) / 1000);
        server->wal_flush_ns = server_wal_lsn(server) > durable_lsn ? now_ns : 0;
    }
    connection_t *next;
    for (connection_t *conn = server->held; conn != NULL; conn = next) {
        next = conn->held_next;
        connection_release_durable(conn, durable_lsn, now_ns);
    }
    connection_batch_end(server);                /* requests let in by the replies sent */
    events_durable(server->events, durable_lsn); /* stored, pushed, long polls answered */
    http_durable(server->http, durable_lsn);
    checkpoint_driver_durable(server);
}

static void on_durable(wal_t *wal, uint64_t durable_lsn, void *ctx)
{
    (void)wal;
    server_durable_advanced(ctx, durable_lsn);
}

static void on_wal_fatal(wal_t *wal, int error, const char *message, void *ctx)
{
    (void)wal;
    (void)ctx;
    log_event(LOG_ERROR, "wal_failed", LOG_STR("code", allot_error_code(error)),
              LOG_STR("message", message));
    /* The kernel may have dropped dirty pages: nothing after this point may be acknowledged.
     * Exit now; restart recovers from what is durable. */
    fflush(NULL);
    _exit(3);
}

/* ---- per-iteration work ---------------------------------------------------------------------- */

static void shutdown_begin(server_t *server, const char *reason);

/* The iteration that ends now: the time since the previous one ended, less what the loop spent
 * blocked in the poll meanwhile (timers, I/O and async callbacks, checkpoint slices, closes and
 * this check all count). */
static void iteration_record(server_t *server)
{
    uint64_t ended_ns = uv_hrtime();
    uint64_t idle_ns = uv_metrics_idle_time(server->loop);
    if (server->iteration_ended_ns != 0) {
        uint64_t wall_ns = ended_ns - server->iteration_ended_ns;
        uint64_t blocked_ns = idle_ns - server->iteration_idle_ns;
        uint64_t busy_ns = wall_ns > blocked_ns ? wall_ns - blocked_ns : 0;
        histogram_record(&server->metrics.loop_iteration_us, (int64_t)(busy_ns / 1000));
    }
    server->iteration_ended_ns = ended_ns;
    server->iteration_idle_ns = idle_ns;
}

static void on_end_of_iteration(uv_check_t *check)
{
    server_t *server = check->data;
    if (server->wal_flush_ns == 0 && server_wal_lsn(server) > server->durable_lsn)
        server->wal_flush_ns = uv_hrtime();
    if (server->wal != NULL)
        wal_flush(server->wal);
    else if (server->consensus != NULL)
        consensus_flush(server->consensus); /* this iteration's records: one raft entry */
    if (server->rebuild_requested && !server->shutting_down)
        shutdown_begin(server, "leadership_lost");
    if (server->waiting != NULL && server->consensus != NULL) /* reads waiting for min_index */
        connection_waits_check(server, consensus_applied_index(server->consensus),
                               uv_now(server->loop));
    connection_t *conn = server->dirty;
    server->dirty = NULL;
    while (conn != NULL) {
        connection_t *next = conn->dirty_next;
        conn->dirty = false;
        conn->dirty_next = NULL;
        connection_flush(conn);
        conn = next;
    }
    connection_batch_end(server);
    server->now_valid = false;
    iteration_record(server);
}

static void expire_reservations(server_t *server)
{
    int64_t now_ms = server_now_ms(server);
    int refused;
    while (allot_reservation_next_expiry_ms(server->state) <= now_ms &&
           server_writes_allowed(server, &refused)) {
        if (allot_reservations_expire(server->state, now_ms, SERVER_EXPIRY_STEP_MAX) == 0)
            break;
    }
}

/* Flash-sale queues (core/sale.h): expire unused tokens, then admit what the rate allows. This
 * node's clock decides; the records carry the decision to every node that applies them. */
static void admit_queues(server_t *server)
{
    int64_t now_ms = server_now_ms(server);
    int refused;
    while (server_writes_allowed(server, &refused) &&
           allot_queue_expire_due(server->state, now_ms, SERVER_QUEUE_EXPIRY_STEP_MAX) ==
               SERVER_QUEUE_EXPIRY_STEP_MAX)
        ;
    if (!server_writes_allowed(server, &refused))
        return;
    uint64_t seed = 0; /* the tokens' secrets derive from it */
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    allot_queue_admit_due(server->state, now_ms, seed, SERVER_QUEUE_ADMIT_RECORDS_MAX);
}

static void on_housekeeping(uv_timer_t *timer)
{
    server_t *server = timer->data;
    expire_reservations(server);
    admit_queues(server);
    checkpoint_driver_tick(server);
    events_housekeeping(server->events, server_now_ms(server), uv_now(server->loop));
    if (++server->housekeeping_ticks % (1000 / SERVER_HOUSEKEEPING_PERIOD_MS) == 0) {
        server_ops_idempotency_watch(server); /* first: the line precedes the page counting it */
        server_ops_publish(server);
    }
    uint64_t now = uv_now(server->loop);
    connection_t *next;
    for (connection_t *conn = server->connections; conn != NULL; conn = next) {
        next = conn->next;
        connection_check_timeout(conn, now);
    }
    connection_check_auth_deadlines(server, now);
}

/* ---- connections ----------------------------------------------------------------------------- */

static void shutdown_finish(server_t *server);

void server_connection_closed(server_t *server, connection_t *conn)
{
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        server->connections = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    assert(server->connection_count > 0);
    server->connection_count--;
    if (server->shutting_down && server->connection_count == 0)
        shutdown_finish(server);
}

static void on_connection(uv_stream_t *listener, int status)
{
    server_t *server = listener->data;
    if (status < 0) {
        log_event(LOG_WARN, "accept_failed", LOG_STR("error", uv_strerror(status)));
        return;
    }
    connection_accept(server);
}

/* ---- shutdown ---------------------------------------------------------------------------------
 */

static void close_if_open(uv_handle_t *handle)
{
    if (handle->loop != NULL && !uv_is_closing(handle))
        uv_close(handle, NULL);
}

/* Connections are drained: take a final checkpoint (so the next start replays little), then
 * close everything. The loop keeps running (end_of_iteration flushes the WAL) until the final
 * checkpoint has committed or failed. */
static void shutdown_finish(server_t *server)
{
    if (server->checkpoint.shutdown_phase != 0)
        return;
    /* A rebuild writes no final checkpoint: the state holds records that may never commit. */
    if (server->rebuild_requested || !checkpoint_driver_shutdown(server))
        server_shutdown_close_all(server); /* else after the final checkpoint (or its failure) */
}

void server_shutdown_close_all(server_t *server)
{
    if (server->checkpoint.shutdown_phase == 2)
        return;
    server->checkpoint.shutdown_phase = 2;
    checkpoint_driver_close(server);
    http_stop(server->http); /* frees itself once its handles closed */
    server->http = NULL;
    close_if_open((uv_handle_t *)&server->shutdown_deadline);
    close_if_open((uv_handle_t *)&server->housekeeping);
    close_if_open((uv_handle_t *)&server->sigint);
    close_if_open((uv_handle_t *)&server->sigterm);
    close_if_open((uv_handle_t *)&server->end_of_iteration);
    close_if_open((uv_handle_t *)&server->checkpoint_slicer);
    close_if_open((uv_handle_t *)&server->close_spreader); /* every connection is closed */
    if (server->wal != NULL) {
        wal_close(server->wal, NULL); /* writes and syncs the last batch; frees itself */
        server->wal = NULL;
    }
    if (server->consensus != NULL) {
        consensus_close(server->consensus, NULL, NULL); /* frees itself once its handles close */
        server->consensus = NULL;
    }
}

static void on_shutdown_deadline(uv_timer_t *timer)
{
    server_t *server = timer->data;
    log_event(LOG_WARN, "shutdown_forced", LOG_UINT("connections", server->connection_count));
    connection_t *next;
    for (connection_t *conn = server->connections; conn != NULL; conn = next) {
        next = conn->next;
        connection_close(conn);
    }
    /* A final checkpoint still waiting for the log to be durable up to its LSN may wait for ever
     * (a group member that lost its leadership meanwhile, a WAL that failed): drop it and close;
     * the log holds every record it would have covered. */
    if (server->checkpoint.shutdown_phase == 1 && server->checkpoint.pending != NULL)
        server_shutdown_close_all(server);
}

static void shutdown_begin(server_t *server, const char *reason)
{
    if (server->shutting_down)
        return;
    server->shutting_down = true;
    log_event(LOG_INFO, "shutdown", LOG_STR("reason", reason),
              LOG_UINT("connections", server->connection_count));
    close_if_open((uv_handle_t *)&server->listener);
    http_quiesce(server->http);
    uv_timer_stop(&server->housekeeping);
    uv_timer_start(&server->shutdown_deadline, on_shutdown_deadline, SERVER_SHUTDOWN_GRACE_MS, 0);
    connection_t *next;
    for (connection_t *conn = server->connections; conn != NULL; conn = next) {
        next = conn->next;
        if (server->rebuild_requested)
            connection_close(conn); /* held replies may never commit: clients retry elsewhere */
        else
            connection_begin_shutdown(conn);
    }
    if (server->connection_count == 0)
        shutdown_finish(server);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    server_t *server = handle->data;
    server->stop_signalled = true;
    shutdown_begin(server, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- start-up ----------------------------------------------------------------------------------
 */

/* LMDB met a page it cannot read (checkpoint_set_damage_cb): say so, then stop as after a crash
 * (the WAL holds every acknowledged write; the next start refuses the damaged store). */
static void on_store_damaged(const char *path, const char *message)
{
    log_event(LOG_ERROR, "store_damaged", LOG_STR("path", path), LOG_STR("message", message),
              LOG_STR("hint", "state.lmdb is damaged (a page LMDB cannot read): restore "
                              "state.lmdb and wal/ from a backup"));
    fflush(NULL);
    _exit(1);
}

int server_store_verify(server_t *server, uint64_t *records, char *message, size_t message_bytes)
{
    *records = 0;
    if (server->checkpoint.store == NULL) {
        snprintf(message, message_bytes, "the store is closed (shutting down)");
        return ALLOT_EUNAVAILABLE;
    }
    return checkpoint_store_verify(server->checkpoint.store, records, message, message_bytes);
}

/* Recovery's reports (persist/recovery.h) as log lines. */
static void on_recovery_report(void *ctx, recovery_level_t level, const char *event,
                               const recovery_field_t *fields, size_t count)
{
    (void)ctx;
    static const log_level_t levels[] = {
        [RECOVERY_LEVEL_INFO] = LOG_INFO,
        [RECOVERY_LEVEL_WARN] = LOG_WARN,
        [RECOVERY_LEVEL_ERROR] = LOG_ERROR,
    };
    log_field_t lines[RECOVERY_FIELDS_MAX];
    assert(count <= RECOVERY_FIELDS_MAX && (size_t)level < sizeof(levels) / sizeof(levels[0]));
    for (size_t i = 0; i < count; i++)
        lines[i] = fields[i].kind == RECOVERY_FIELD_STR ? LOG_STR(fields[i].key, fields[i].str)
                                                        : LOG_UINT(fields[i].key, fields[i].number);
    log_fields(levels[level], event, lines, count);
}

/* Load the checkpoint and replay the WAL (persist/recovery.h); the store and the archive it
 * opened are the server's from here. */
static int recover(server_t *server, uint64_t *last_lsn, wal_log_end_t *log_end)
{
    checkpoint_set_damage_cb(on_store_damaged);
    recovery_config_t config = {
        .data_dir = server->config.data_dir,
        .accept_data_loss = server->config.accept_data_loss,
        .without_wal = server->config.member_count > 0,
        .log_cb = on_recovery_report,
    };
    recovery_result_t result;
    int rc = recovery_run(&config, server->state, &result);
    if (rc != 0)
        return rc;
    server->checkpoint.store = result.store;
    server->checkpoint.archive = result.archive;
    server->checkpoint_lsn = result.checkpoint_lsn;
    *last_lsn = result.last_lsn;
    *log_end = result.log_end; /* wal_open need not read the newest segment again */
    return 0;
}

/* Create the data directory if missing and lock it (persist/dirlock.h) before anything in it
 * is read or written: a second allotd on the same directory stops here. */
static int data_dir_prepare(server_t *server, char *wal_dir, size_t wal_dir_bytes)
{
    const server_config_t *config = &server->config;
    if (mkdir(config->data_dir, 0750) != 0 && errno != EEXIST) {
        log_event(LOG_ERROR, "data_dir_failed", LOG_STR("path", config->data_dir),
                  LOG_STR("error", strerror(errno)));
        return ALLOT_EIO;
    }
    char message[512];
    int rc = dirlock_acquire(config->data_dir, &server->dir_lock, message, sizeof(message));
    if (rc != 0) {
        log_event(LOG_ERROR, "data_dir_locked", LOG_STR("code", allot_error_code(rc)),
                  LOG_STR("message", message));
        return rc;
    }
    int n = snprintf(wal_dir, wal_dir_bytes, "%s/wal", config->data_dir);
    if (n < 0 || (size_t)n >= wal_dir_bytes)
        return ALLOT_EINVALID_ARGUMENT;
    if (mkdir(wal_dir, 0750) != 0 && errno != EEXIST) {
        log_event(LOG_ERROR, "data_dir_failed", LOG_STR("path", wal_dir),
                  LOG_STR("error", strerror(errno)));
        return ALLOT_EIO;
    }
    return 0;
}

/* From here the checkpoint thread owns the LMDB store. */
static int checkpoints_start(server_t *server)
{
    int rc = checkpoint_writer_start(server->loop, server->checkpoint.store,
                                     &server->checkpoint.writer, checkpoint_driver_done_cb, server);
    if (rc != 0) {
        log_event(LOG_ERROR, "checkpoint_start_failed", LOG_STR("code", allot_error_code(rc)));
        return rc;
    }
    checkpoint_writer_set_committed_cb(server->checkpoint.writer, checkpoint_driver_committed_cb,
                                       server);
    server->checkpoint.started_ms = uv_now(server->loop);
    return 0;
}

static int wal_start(server_t *server, const char *wal_dir, uint64_t last_lsn,
                     const wal_log_end_t *log_end)
{
    const server_config_t *config = &server->config;
    wal_config_t wal_config = {
        .dir = wal_dir,
        .fsync_mode = config->fsync_mode,
        .fsync_interval_ms = config->fsync_interval_ms,
        .segment_bytes = config->wal_segment_bytes,
        .linger_us_max = config->wal_linger_us, /* adaptive group commit, fsync always */
        .log_end = log_end,
    };
    char message[WAL_MESSAGE_BYTES_MAX];
    int rc = wal_open(server->loop, &wal_config, last_lsn + 1, &server->wal, on_durable,
                      on_wal_fatal, server, message, sizeof(message));
    if (rc != 0) {
        log_event(LOG_ERROR, "wal_open_failed", LOG_STR("code", allot_error_code(rc)),
                  LOG_UINT("checkpoint_lsn", server->checkpoint_lsn), LOG_STR("message", message));
        server->wal = NULL;
        return rc;
    }
    server->durable_lsn = last_lsn;
    allot_state_set_event_sink(server->state, server_state_event_cb, server);
    rc = checkpoints_start(server);
    if (rc != 0)
        return rc;
    if (config->fsync_mode == WAL_FSYNC_NONE)
        log_event(LOG_WARN, "fsync_disabled",
                  LOG_STR("message", "--fsync none: acknowledged writes can be lost on power "
                                     "failure; for benchmarks only"));
    return 0;
}

/* A member of a group: the group's log instead of the WAL (net/server_group.c). */
static int group_start(server_t *server, uint64_t last_lsn)
{
    int rc = server_group_start(server, last_lsn);
    return rc != 0 ? rc : checkpoints_start(server);
}

static void log_listening(server_t *server)
{
    struct sockaddr_storage bound;
    int bound_bytes = sizeof(bound);
    char host[64] = "?";
    int port = 0;
    if (uv_tcp_getsockname(&server->listener, (struct sockaddr *)&bound, &bound_bytes) == 0) {
        if (bound.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        }
    }
    char addr[96];
    snprintf(addr, sizeof(addr), "%s:%d", host, port);
    log_event(LOG_INFO, "listening", LOG_STR("addr", addr),
              LOG_STR("data_dir", server->config.data_dir),
              LOG_STR("fsync",
                      server->config.fsync_mode == WAL_FSYNC_ALWAYS
                          ? "always"
                          : (server->config.fsync_mode == WAL_FSYNC_NONE ? "none" : "interval")));
    if (!server->auth.required && strcmp(server->config.listen_host, "127.0.0.1") != 0 &&
        strcmp(server->config.listen_host, "localhost") != 0 &&
        strcmp(server->config.listen_host, "::1") != 0)
        log_event(LOG_WARN, "public_listen",
                  LOG_STR("message", "listening beyond loopback without authentication"));
}

static int listen_start(server_t *server)
{
    struct sockaddr_storage address;
    if (server_listen_address(&server->config, &address) != 0) {
        log_event(LOG_ERROR, "listen_failed", LOG_STR("host", server->config.listen_host),
                  LOG_STR("error", "not an IP address"));
        return ALLOT_EINVALID_ARGUMENT;
    }
    uv_tcp_init(server->loop, &server->listener);
    server->listener.data = server;
    int rc = uv_tcp_bind(&server->listener, (const struct sockaddr *)&address, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server->listener, SERVER_LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        log_event(LOG_ERROR, "listen_failed", LOG_STR("host", server->config.listen_host),
                  LOG_UINT("port", server->config.listen_port), LOG_STR("error", uv_strerror(rc)));
        return ALLOT_EIO;
    }
    log_listening(server);
    return 0;
}

static void handles_start(server_t *server)
{
    uv_signal_init(server->loop, &server->sigint);
    uv_signal_init(server->loop, &server->sigterm);
    server->sigint.data = server->sigterm.data = server;
    uv_signal_start(&server->sigint, on_signal, SIGINT);
    uv_signal_start(&server->sigterm, on_signal, SIGTERM);
    uv_check_init(server->loop, &server->end_of_iteration);
    server->end_of_iteration.data = server;
    uv_check_start(&server->end_of_iteration, on_end_of_iteration);
    uv_idle_init(server->loop, &server->checkpoint_slicer); /* started by checkpoint_driver.c */
    server->checkpoint_slicer.data = server;
    uv_timer_init(server->loop, &server->housekeeping);
    server->housekeeping.data = server;
    uv_timer_start(&server->housekeeping, on_housekeeping, SERVER_HOUSEKEEPING_PERIOD_MS,
                   SERVER_HOUSEKEEPING_PERIOD_MS);
    uv_timer_init(server->loop, &server->shutdown_deadline);
    server->shutdown_deadline.data = server;
    uv_idle_init(server->loop, &server->close_spreader); /* started by connection_close */
    server->close_spreader.data = server;
}

static void on_walk_report(uv_handle_t *handle, void *arg)
{
    (void)arg;
    log_event(LOG_ERROR, "handle_left_open", LOG_STR("type", uv_handle_type_name(handle->type)));
}

/* Close whatever start-up opened, run the loop dry, and report handles left behind. */
static int loop_finish(server_t *server)
{
    if (!server->shutting_down) {
        server->shutting_down = true;
        close_if_open((uv_handle_t *)&server->listener);
        shutdown_finish(server);
    }
    uv_run(server->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(server->loop);
    if (rc != 0) {
        uv_walk(server->loop, on_walk_report, NULL);
        return 1;
    }
    return 0;
}

static int server_start(server_t *server, char *wal_dir, size_t wal_dir_bytes)
{
    uint64_t last_lsn = 0;
    wal_log_end_t log_end = {0};
    server_check_t check;
    int rc = server_config_check(&server->config, &check);
    if (rc != 0) {
        log_event(LOG_ERROR, check.event, LOG_STR("message", check.message));
        return rc;
    }
    rc = data_dir_prepare(server, wal_dir, wal_dir_bytes);
    events_config_t events_config = {
        .retention_ms = (int64_t)server->config.events_retention_s * 1000,
        .bytes_max = server->config.events_bytes_max,
        .ledger_retention_ms = (int64_t)server->config.ledger_retention_days * 86400000,
    };
    if (rc == 0) /* before recovery: replay derives the events the store does not hold yet */
        rc = events_open(server, server->state, server->config.data_dir, &events_config,
                         &server->events);
    if (rc == 0)
        rc = recover(server, &last_lsn, &log_end);
    if (rc == 0)
        rc = events_recovered(server->events, last_lsn, server->config.member_count > 0);
    if (rc == 0 && server->config.member_count > 0)
        rc = group_start(server, last_lsn);
    else if (rc == 0)
        rc = wal_start(server, wal_dir, last_lsn, &log_end);
    if (rc == 0)
        rc = server_ops_start(server);
    if (rc != 0)
        return rc;
    handles_start(server);
    expire_reservations(server); /* those that expired while the server was down */
    rc = listen_start(server);
    return rc == 0 ? server_ops_http_start(server) : rc;
}

int server_run(const server_config_t *config)
{
    server_t *server = calloc(1, sizeof(*server));
    uv_loop_t loop;
    if (server == NULL || uv_loop_init(&loop) != 0) {
        free(server);
        return 1;
    }
    /* the time blocked in the poll, which loop_iteration leaves out (iteration_record) */
    if (uv_loop_configure(&loop, UV_METRICS_IDLE_TIME) != 0) {
        uv_loop_close(&loop);
        free(server);
        return 1;
    }
    server->config = *config;
    server->loop = &loop;
    server->started_ms = server_now_ms(server);
    allot_state_config_t state_config = {
        .orders_archive_age_ms = (int64_t)config->orders_archive_age_ms,
        .reservations_max = config->reservations_max,
        .idempotency_entries_max = config->idempotency_entries_max,
        .idempotency_age_ms = (int64_t)config->idempotency_age_s * 1000,
    };
    /* before any other thread runs: it installs core/pages.h's hooks */
    server->pages_warm = pages_warm_start();
    server->state = allot_state_create(&state_config);
    msgpack_zone_init(&server->zone, SERVER_ZONE_CHUNK_BYTES);
    msgpack_sbuffer_init(&server->scratch);
    log_event(LOG_INFO, "start", LOG_STR("version", ALLOT_VERSION), LOG_INT("pid", getpid()));

    char wal_dir[SERVER_PATH_BYTES_MAX + 8];
    int rc = server->state != NULL ? server_start(server, wal_dir, sizeof(wal_dir)) : ALLOT_ENOMEM;
    if (rc == 0)
        uv_run(server->loop, UV_RUN_DEFAULT);
    int status = loop_finish(server);
    if (rc != 0)
        status = 1;
    else if (server->rebuild_requested && !server->stop_signalled) /* told to stop: it stops */
        status = SERVER_STATUS_REBUILD;
    events_close(server->events); /* after the WAL's last durable report */
    msgpack_zone_destroy(&server->zone);
    msgpack_sbuffer_destroy(&server->scratch);
    connection_spares_free(server);
    allot_state_destroy(server->state);
    server_ops_stop(server);
    pages_warm_stop(server->pages_warm); /* every other thread is joined, every table freed */
    dirlock_release(server->dir_lock);   /* everything in the directory is closed */
    log_event(LOG_INFO, "stopped", LOG_INT("status", status));
    free(server);
    return status;
}
