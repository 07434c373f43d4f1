/* server_ops.c - the server's operational surface: authentication, server.stats, Prometheus. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/state.h"
#include "events.h"
#include "log.h"
#include "server_internal.h"

/* One auth_failed line per failed check, at most LOG_LIMIT_LINES_PER_S a second. conn is NULL
 * for an HTTP client (connection 0, peer from the session). */
static void auth_failure_log(server_t *server, const connection_t *conn,
                             const auth_session_t *session, bool closing, int64_t now_ms)
{
    uint64_t suppressed;
    if (!server_log_allow(server, &server->auth_log, &suppressed)) {
        server->metrics.auth_log_suppressed++;
        return;
    }
    log_event(
        LOG_WARN, "auth_failed", LOG_STR("peer", conn ? conn->peer : session->http_peer),
        LOG_UINT("connection", conn ? conn->id : 0), LOG_BOOL("http", conn == NULL),
        LOG_UINT("failures", session->failures),
        LOG_UINT("peer_failures", auth_peer_failures(server->auth_peers, &session->peer, now_ms)),
        LOG_BOOL("closing", closing), LOG_UINT("suppressed", suppressed));
}

int server_auth_attempt(server_t *server, auth_session_t *session, const char *token,
                        size_t token_len, bool *close, allot_error_detail_t *error)
{
    *close = false;
    connection_t *conn = session->http_peer == NULL ? connection_of_session(session) : NULL;
    int64_t now_ms = (int64_t)uv_now(server->loop);
    int64_t retry_in_ms = 0;
    auth_result_t result = auth_attempt(&server->auth, server->auth_peers, session, token,
                                        token_len, now_ms, &retry_in_ms);
    if (result == AUTH_OK) {
        if (conn != NULL)
            connection_authenticated(conn);
        return 0;
    }
    if (result == AUTH_RATE_LIMITED) {
        server->metrics.auth_throttled++;
        return allot_error_set(error, ALLOT_EUNAUTHENTICATED, "token",
                               "too many failed attempts from this client; not checked, retry "
                               "in %lld ms",
                               (long long)retry_in_ms);
    }
    server->metrics.auth_failures++;
    *close = result == AUTH_CLOSE;
    auth_failure_log(server, conn, session, *close, now_ms);
    if (*close)
        return allot_error_set(error, ALLOT_EUNAUTHENTICATED, "token",
                               "too many failed attempts; closing");
    if (retry_in_ms > 0)
        return allot_error_set(error, ALLOT_EUNAUTHENTICATED, "token",
                               "authentication failed; the next attempt is checked in %lld ms",
                               (long long)retry_in_ms);
    return allot_error_set(error, ALLOT_EUNAUTHENTICATED, "token", "authentication failed");
}

void server_metrics_gauges(const server_t *server, metrics_gauges_t *g)
{
    memset(g, 0, sizeof(*g));
    histogram_reset(&g->wal_fdatasync_us);
    histogram_reset(&g->wal_batch_records);
    allot_state_counters_t counts;
    allot_state_counters_get(server->state, &counts);
    g->connections = server_connections_open(server);
    g->connections_unauthenticated = server->unauth_count;
    g->auth_peers_evicted = auth_peers_evicted(server->auth_peers);
    g->buffered_bytes = server->buffered_bytes;
    g->buffer_bytes_max = server->config.buffer_bytes_max;
    g->input_bytes = server->input_bytes;
    g->skus = counts.skus;
    g->positions = counts.positions;
    g->locations = counts.locations;
    g->reservations = counts.reservations;
    g->orders = counts.orders;
    g->idempotency_evicted_early = counts.idempotency_evicted_early;
    g->wal_lsn = server_wal_lsn(server);
    g->durable_lsn = server->durable_lsn;
    g->checkpoint_lsn = server->checkpoint_lsn;
    if (server->wal != NULL) {
        wal_stats_t stats;
        wal_stats(server->wal, &stats);
        g->wal_bytes_written = stats.bytes_written;
        g->wal_fdatasyncs = stats.fdatasyncs;
        g->wal_batches = stats.batches_written;
        g->wal_segments_deleted = stats.segments_deleted;
        g->wal_zeroed_bytes = stats.zeroed_bytes;
        g->wal_zero_fill_failures = stats.zero_fill_failures;
        g->wal_segments_unzeroed = stats.segments_unzeroed;
        g->wal_segment_shrink_steps = stats.segment_shrink_steps;
        wal_histograms_t histograms;
        wal_histograms(server->wal, &histograms);
        g->wal_fdatasync_us = histograms.fdatasync_us;
        g->wal_batch_records = histograms.batch_records;
    }
    if (server->consensus != NULL) {
        server_group_info_t group;
        server_group_info(server, &group);
        g->in_group = true;
        g->group_leader = strcmp(group.role, "leader") == 0;
        g->raft_term = group.term;
        g->raft_commit_index = group.commit_index;
        g->raft_applied_index = group.applied_index;
        g->raft_leader_changes = group.leader_changes;
        g->follower_lag_count = group.lag_count;
        memcpy(g->follower_ids, group.lag_ids, sizeof(g->follower_ids));
        memcpy(g->follower_lag_entries, group.lag_entries, sizeof(g->follower_lag_entries));
    }
    g->checkpoints = server->checkpoint.completed;
    events_stats_t events;
    events_stats_get(server->events, &events);
    g->events_store_commits = events.store_commits;
    g->checkpoint_failures = server->checkpoint.failed;
    g->checkpoint_last_ms = server->checkpoint.last_duration_ms;
    g->checkpoint_spare_bytes = server->checkpoint.writer != NULL
                                    ? checkpoint_writer_spare_bytes(server->checkpoint.writer)
                                    : 0;
    pages_warm_stats_t warm = pages_warm_stats(server->pages_warm);
    g->pages_warmed_bytes = warm.bytes_warmed;
    g->pages_warm_ranges_dropped = warm.ranges_dropped;
    struct rusage usage; /* the loop's own thread: this runs on it */
    g->loop_minor_faults = getrusage(RUSAGE_THREAD, &usage) == 0 ? (uint64_t)usage.ru_minflt : 0;
    g->uptime_s = (server->now_ms - server->started_ms) / 1000;
    g->started_ms = server->started_ms;
    int refused;
    g->writes_allowed = server_writes_allowed(server, &refused);
    /* a follower (or a leader still committing its barrier) serves reads: healthy */
    g->healthy =
        g->writes_allowed || (g->in_group && !server->shutting_down && !server->rebuild_requested &&
                              (refused == ALLOT_ENOT_LEADER || refused == ALLOT_EUNAVAILABLE));
    g->queue_count = allot_queue_list(server->state, g->queues, ALLOT_QUEUED_SKUS_MAX);
    g->health_problem = g->healthy                     ? NULL
                        : server->shutting_down        ? "shutting down"
                        : refused == ALLOT_EOVERLOADED ? "writes refused: the WAL is saturated"
                                                       : "writes refused: the WAL cannot "
                                                         "allocate disk space";
}

void server_stats_pack(const server_t *server, msgpack_packer *pk)
{
    metrics_gauges_t gauges;
    server_metrics_gauges(server, &gauges);
    metrics_pack(&server->metrics, &gauges, pk);
}

static int server_ops_metrics_start(server_t *server);

int server_ops_start(server_t *server)
{
    char error[512];
    if (server->config.auth_token_file[0] != '\0' &&
        auth_token_load(&server->auth, server->config.auth_token_file, error, sizeof(error)) != 0) {
        log_event(LOG_ERROR, "auth_config_failed", LOG_STR("message", error));
        return ALLOT_EINVALID_ARGUMENT;
    }
    if (server->auth.required) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
            seed = uv_hrtime() ^ (uint64_t)getpid() << 32;
        server->auth_peers = auth_peers_create(seed);
        if (server->auth_peers == NULL)
            return ALLOT_ENOMEM;
    }
    if (metrics_init(&server->metrics) != 0)
        return ALLOT_ENOMEM;
    if (server->config.metrics_host[0] == '\0')
        return 0;
    return server_ops_metrics_start(server);
}

/* --http HOST:PORT (net/http.h): after the handles, so it runs in the loop. */
int server_ops_http_start(server_t *server)
{
    if (server->config.http_host[0] == '\0')
        return 0;
    char error[256];
    server->http = http_start(server, server->config.http_host, server->config.http_port, error,
                              sizeof(error));
    if (server->http == NULL) {
        log_event(LOG_ERROR, "http_listen_failed", LOG_STR("host", server->config.http_host),
                  LOG_UINT("port", server->config.http_port), LOG_STR("message", error));
        return ALLOT_EIO;
    }
    log_event(LOG_INFO, "http_listening", LOG_STR("host", server->config.http_host),
              LOG_UINT("port", server->config.http_port),
              LOG_STR("paths", "POST /v1/METHOD, GET /v1/openapi.json /v1/events /healthz "
                               "/readyz /"));
    return 0;
}

static int server_ops_metrics_start(server_t *server)
{
    char error[512];
    server->metrics_text = malloc(METRICS_HTTP_TEXT_BYTES_MAX);
    server->metrics_http =
        server->metrics_text == NULL
            ? NULL
            : metrics_http_start(server->config.metrics_host, server->config.metrics_port, error,
                                 sizeof(error));
    if (server->metrics_http == NULL) {
        log_event(LOG_ERROR, "metrics_listen_failed", LOG_STR("host", server->config.metrics_host),
                  LOG_UINT("port", server->config.metrics_port), LOG_STR("message", error));
        return ALLOT_EIO;
    }
    log_event(LOG_INFO, "metrics_listening", LOG_STR("host", server->config.metrics_host),
              LOG_UINT("port", server->config.metrics_port), LOG_STR("paths", "/metrics /health"));
    server_ops_publish(server);
    return 0;
}

void server_ops_publish(server_t *server)
{
    if (server->metrics_http == NULL)
        return;
    metrics_gauges_t gauges;
    server_metrics_gauges(server, &gauges);
    size_t len = metrics_render_prometheus(&server->metrics, &gauges, server->metrics_text,
                                           METRICS_HTTP_TEXT_BYTES_MAX);
    if (len > METRICS_HTTP_TEXT_BYTES_MAX)
        len = METRICS_HTTP_TEXT_BYTES_MAX;
    metrics_http_publish(server->metrics_http, server->metrics_text, len, gauges.health_problem);
}

/* At most one idempotency_evicted_early line per SERVER_IDEMPOTENCY_LOG_INTERVAL_MS; the next
 * line counts every eviction since the previous one. */
void server_ops_idempotency_watch(server_t *server)
{
    allot_state_counters_t counts;
    allot_state_counters_get(server->state, &counts);
    uint64_t evicted = counts.idempotency_evicted_early - server->idempotency_early_logged;
    uint64_t now_ms = uv_now(server->loop);
    if (evicted == 0 || now_ms < server->idempotency_log_next_ms)
        return;
    const server_config_t *config = &server->config;
    unsigned entries_max = config->idempotency_entries_max ? config->idempotency_entries_max
                                                           : ALLOT_IDEMPOTENCY_ENTRIES_MAX_DEFAULT;
    long long window_s = config->idempotency_age_s ? config->idempotency_age_s
                                                   : ALLOT_IDEMPOTENCY_AGE_MS_DEFAULT / 1000;
    log_event(LOG_WARN, "idempotency_evicted_early", LOG_UINT("evicted", evicted),
              LOG_UINT("total", counts.idempotency_evicted_early),
              LOG_UINT("entries_max", entries_max), LOG_INT("window_s", window_s),
              LOG_STR("hint", "raise --idempotency-entries-max to peak keyed writes per second x "
                              "window_s"));
    server->idempotency_early_logged = counts.idempotency_evicted_early;
    server->idempotency_log_next_ms = now_ms + SERVER_IDEMPOTENCY_LOG_INTERVAL_MS;
}

void server_ops_stop(server_t *server)
{
    metrics_http_stop(server->metrics_http);
    server->metrics_http = NULL;
    free(server->metrics_text);
    server->metrics_text = NULL;
    metrics_destroy(&server->metrics);
    memset(&server->auth, 0, sizeof(server->auth));
    auth_peers_destroy(server->auth_peers);
    server->auth_peers = NULL;
}
