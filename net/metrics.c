/* metrics.c - per-method counters and histograms; server.stats and Prometheus rendering. */
#include "metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "command.h"
#include "core/errors.h"
#include "pack.h"

int metrics_init(metrics_t *m)
{
    *m = (metrics_t){0};
    m->method_count = command_count();
    m->methods = calloc(m->method_count, sizeof(method_metrics_t));
    if (m->methods == NULL)
        return -1;
    for (size_t i = 0; i < m->method_count; i++)
        histogram_reset(&m->methods[i].latency_us);
    histogram_reset(&m->wal_batch_us);
    histogram_reset(&m->loop_iteration_us);
    return 0;
}

void metrics_destroy(metrics_t *m)
{
    free(m->methods);
    m->methods = NULL;
}

void metrics_request_record(metrics_t *m, size_t index, int64_t latency_us, bool error)
{
    if (index >= m->method_count)
        return;
    method_metrics_t *method = &m->methods[index];
    method->calls++;
    method->errors += error;
    histogram_record(&method->latency_us, latency_us > 0 ? (uint64_t)latency_us : 0);
}

void metrics_requests_record(metrics_t *m, size_t index, int64_t latency_us, uint32_t calls,
                             uint32_t errors)
{
    if (index >= m->method_count)
        return;
    method_metrics_t *method = &m->methods[index];
    method->calls += calls;
    method->errors += errors;
    histogram_record_count(&method->latency_us, latency_us > 0 ? (uint64_t)latency_us : 0, calls);
}

void metrics_request_rejected(metrics_t *m, int error, bool closes)
{
    metrics_reject_t reason = error == ALLOT_EUNKNOWN_METHOD ? METRICS_REJECT_UNKNOWN_METHOD
                              : closes                       ? METRICS_REJECT_INVALID_ENVELOPE
                                                             : METRICS_REJECT_INVALID_PARAMS;
    m->requests_rejected[reason]++;
}

uint64_t metrics_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long long size_pages = 0, resident_pages = 0;
    int fields = fscanf(f, "%llu %llu", &size_pages, &resident_pages);
    fclose(f);
    return fields == 2 ? resident_pages * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static void pack_histogram(msgpack_packer *pk, const histogram_t *h)
{
    msgpack_pack_map(pk, 6);
    pack_key_int(pk, "count", (int64_t)h->count);
    pack_key_int(pk, "p50_us", (int64_t)histogram_percentile(h, 50));
    pack_key_int(pk, "p90_us", (int64_t)histogram_percentile(h, 90));
    pack_key_int(pk, "p99_us", (int64_t)histogram_percentile(h, 99));
    pack_key_int(pk, "p999_us", (int64_t)histogram_percentile(h, 99.9));
    pack_key_int(pk, "max_us", (int64_t)h->max);
}

/* A histogram of counts (no unit): the same shape as pack_histogram, keys without "_us". */
static void pack_count_histogram(msgpack_packer *pk, const histogram_t *h)
{
    msgpack_pack_map(pk, 6);
    pack_key_int(pk, "count", (int64_t)h->count);
    pack_key_int(pk, "p50", (int64_t)histogram_percentile(h, 50));
    pack_key_int(pk, "p90", (int64_t)histogram_percentile(h, 90));
    pack_key_int(pk, "p99", (int64_t)histogram_percentile(h, 99));
    pack_key_int(pk, "p999", (int64_t)histogram_percentile(h, 99.9));
    pack_key_int(pk, "max", (int64_t)h->max);
}

static void pack_methods(const metrics_t *m, msgpack_packer *pk)
{
    uint32_t used = 0;
    for (size_t i = 0; i < m->method_count; i++)
        used += m->methods[i].calls > 0;
    pack_cstr(pk, "methods");
    msgpack_pack_map(pk, used);
    for (size_t i = 0; i < m->method_count; i++) {
        const method_metrics_t *method = &m->methods[i];
        if (method->calls == 0)
            continue;
        pack_cstr(pk, command_at(i)->name);
        msgpack_pack_map(pk, 3);
        pack_key_int(pk, "calls", (int64_t)method->calls);
        pack_key_int(pk, "errors", (int64_t)method->errors);
        pack_cstr(pk, "latency");
        pack_histogram(pk, &method->latency_us);
    }
}

/* "queues": [{sku, rate_per_s, token_ttl_s, waiting, tokens, tickets, admitted_total}] */
static void pack_queues(const metrics_gauges_t *g, msgpack_packer *pk)
{
    uint32_t n = g->queue_count < ALLOT_QUEUED_SKUS_MAX ? g->queue_count : ALLOT_QUEUED_SKUS_MAX;
    pack_cstr(pk, "queues");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        const allot_queue_view_t *q = &g->queues[i];
        msgpack_pack_map(pk, 7);
        pack_key_str(pk, "sku", q->sku);
        pack_key_int(pk, "rate_per_s", q->rate_per_s);
        pack_key_int(pk, "token_ttl_s", q->token_ttl_s);
        pack_key_int(pk, "waiting", q->waiting);
        pack_key_int(pk, "tokens", q->admitted);
        pack_key_int(pk, "tickets", q->tickets);
        pack_key_int(pk, "admitted_total", (int64_t)q->admitted_total);
    }
}

void metrics_pack(const metrics_t *m, const metrics_gauges_t *g, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 19);
    pack_queues(g, pk);
    pack_methods(m, pk);
    pack_cstr(pk, "connections");
    msgpack_pack_map(pk, 8);
    pack_key_int(pk, "current", g->connections);
    pack_key_int(pk, "accepted", (int64_t)m->connections_accepted);
    pack_key_int(pk, "refused", (int64_t)m->connections_refused);
    pack_key_int(pk, "closed_by_limit", (int64_t)m->connections_closed_by_limit);
    pack_key_int(pk, "closed_by_budget", (int64_t)m->connections_closed_by_budget);
    pack_key_int(pk, "unauthenticated", g->connections_unauthenticated);
    pack_key_int(pk, "auth_timeouts", (int64_t)m->connections_auth_timeout);
    pack_key_int(pk, "unauthenticated_evicted", (int64_t)m->connections_unauth_evicted);
    pack_cstr(pk, "auth");
    msgpack_pack_map(pk, 4);
    pack_key_int(pk, "failures", (int64_t)m->auth_failures);
    pack_key_int(pk, "throttled", (int64_t)m->auth_throttled);
    pack_key_int(pk, "log_lines_suppressed", (int64_t)m->auth_log_suppressed);
    pack_key_int(pk, "addresses_evicted", (int64_t)g->auth_peers_evicted);
    pack_cstr(pk, "wal");
    msgpack_pack_map(pk, 11);
    pack_key_int(pk, "lsn", (int64_t)g->wal_lsn);
    pack_key_int(pk, "durable_lsn", (int64_t)g->durable_lsn);
    pack_key_int(pk, "bytes_written", (int64_t)g->wal_bytes_written);
    pack_key_int(pk, "batches", (int64_t)g->wal_batches);
    pack_key_int(pk, "fdatasyncs", (int64_t)g->wal_fdatasyncs);
    pack_key_int(pk, "segments_deleted", (int64_t)g->wal_segments_deleted);
    pack_key_int(pk, "zeroed_bytes", (int64_t)g->wal_zeroed_bytes);
    pack_key_int(pk, "zero_fill_failures", (int64_t)g->wal_zero_fill_failures);
    pack_key_int(pk, "segments_unzeroed", (int64_t)g->wal_segments_unzeroed);
    pack_key_int(pk, "segment_shrink_steps", (int64_t)g->wal_segment_shrink_steps);
    pack_key_bool(pk, "writable", g->writes_allowed);
    pack_cstr(pk, "wal_commit_latency");
    pack_histogram(pk, &m->wal_batch_us);
    pack_cstr(pk, "wal_fdatasync");
    pack_histogram(pk, &g->wal_fdatasync_us);
    pack_cstr(pk, "wal_batch_records");
    pack_count_histogram(pk, &g->wal_batch_records);
    pack_cstr(pk, "loop_iteration");
    pack_histogram(pk, &m->loop_iteration_us);
    pack_cstr(pk, "checkpoint");
    msgpack_pack_map(pk, 5);
    pack_key_int(pk, "lsn", (int64_t)g->checkpoint_lsn);
    pack_key_int(pk, "count", (int64_t)g->checkpoints);
    pack_key_int(pk, "failures", (int64_t)g->checkpoint_failures);
    pack_key_int(pk, "last_duration_ms", g->checkpoint_last_ms);
    pack_key_int(pk, "spare_bytes", (int64_t)g->checkpoint_spare_bytes);
    pack_cstr(pk, "pages");
    msgpack_pack_map(pk, 3);
    pack_key_int(pk, "warmed_bytes", (int64_t)g->pages_warmed_bytes);
    pack_key_int(pk, "warm_ranges_dropped", (int64_t)g->pages_warm_ranges_dropped);
    pack_key_int(pk, "loop_minor_faults", (int64_t)g->loop_minor_faults);
    pack_cstr(pk, "events");
    msgpack_pack_map(pk, 1);
    pack_key_int(pk, "store_commits", (int64_t)g->events_store_commits);
    pack_cstr(pk, "buffers");
    msgpack_pack_map(pk, 3);
    pack_key_int(pk, "bytes", (int64_t)g->buffered_bytes);
    pack_key_int(pk, "input_bytes", (int64_t)g->input_bytes);
    pack_key_int(pk, "limit_bytes", (int64_t)g->buffer_bytes_max);
    pack_key_int(pk, "requests_malformed", (int64_t)m->requests_malformed);
    pack_key_int(pk, "requests_overloaded", (int64_t)m->requests_overloaded);
    pack_key_int(pk, "replies_too_large", (int64_t)m->replies_too_large);
    pack_key_int(pk, "idempotency_evicted_early", (int64_t)g->idempotency_evicted_early);
    pack_key_int(pk, "rss_bytes", (int64_t)metrics_rss_bytes());
    pack_key_int(pk, "uptime_s", g->uptime_s);
}

/* ---- Prometheus text ------------------------------------------------------------------------- */

typedef struct text {
    char *buf;
    size_t bytes, used;
} text_t;

__attribute__((format(printf, 2, 3))) static void text_add(text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->used < t->bytes ? t->bytes - t->used : 0;
    int n = vsnprintf(room ? t->buf + t->used : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->used += (size_t)n;
}

/* A summary of h's values divided by `divisor` (1e6: microseconds as seconds). */
static void render_summary_of(text_t *t, const char *name, const char *labels, const histogram_t *h,
                              double divisor)
{
    static const double quantiles[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < 4; i++)
        text_add(t, "%s{%s%squantile=\"%g\"} %.6f\n", name, labels, labels[0] ? "," : "",
                 quantiles[i], (double)histogram_percentile(h, quantiles[i] * 100) / divisor);
    text_add(t, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, (double)h->sum / divisor,
             name, labels, (unsigned long long)h->count);
}

static void render_summary(text_t *t, const char *name, const char *labels, const histogram_t *h)
{
    render_summary_of(t, name, labels, h, 1e6);
}

static void render_methods(text_t *t, const metrics_t *m)
{
    text_add(t, "# HELP allot_requests_total Requests answered, by method.\n"
                "# TYPE allot_requests_total counter\n");
    for (size_t i = 0; i < m->method_count; i++)
        text_add(t, "allot_requests_total{method=\"%s\"} %llu\n", command_at(i)->name,
                 (unsigned long long)m->methods[i].calls);
    text_add(t, "# HELP allot_request_errors_total Error replies, by method.\n"
                "# TYPE allot_request_errors_total counter\n");
    for (size_t i = 0; i < m->method_count; i++)
        text_add(t, "allot_request_errors_total{method=\"%s\"} %llu\n", command_at(i)->name,
                 (unsigned long long)m->methods[i].errors);
    text_add(t, "# HELP allot_request_latency_seconds Decode to reply ready (writes include "
                "fsync).\n# TYPE allot_request_latency_seconds summary\n");
    for (size_t i = 0; i < m->method_count; i++) {
        if (m->methods[i].calls == 0)
            continue;
        char labels[96];
        snprintf(labels, sizeof(labels), "method=\"%s\"", command_at(i)->name);
        render_summary(t, "allot_request_latency_seconds", labels, &m->methods[i].latency_us);
    }
}

static void render_gauge(text_t *t, const char *name, const char *type, const char *help,
                         unsigned long long value)
{
    text_add(t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, value);
}

/* A member of a group: raft's view (persist/consensus.h). */
static void render_group(text_t *t, const metrics_gauges_t *g)
{
    render_gauge(t, "allot_raft_leader", "gauge", "1 while this node leads its group.",
                 g->group_leader);
    render_gauge(t, "allot_raft_term", "gauge", "Current raft term.", g->raft_term);
    render_gauge(t, "allot_raft_commit_index", "gauge", "Highest raft index known committed.",
                 g->raft_commit_index);
    render_gauge(t, "allot_raft_applied_index", "gauge", "Highest raft index applied here.",
                 g->raft_applied_index);
    render_gauge(t, "allot_raft_leader_changes_total", "counter",
                 "Leader changes this node has seen (elections won by some member).",
                 g->raft_leader_changes);
    text_add(t, "# HELP allot_raft_follower_lag_entries Raft entries a follower lacks (on the "
                "leader).\n# TYPE allot_raft_follower_lag_entries gauge\n");
    for (size_t i = 0; i < g->follower_lag_count; i++)
        text_add(t, "allot_raft_follower_lag_entries{follower=\"%u\"} %llu\n", g->follower_ids[i],
                 (unsigned long long)g->follower_lag_entries[i]);
}

/* A SKU id as a Prometheus label value: backslash, quote and newline escaped. */
static void text_label(text_t *t, allot_str_t value)
{
    for (uint32_t i = 0; i < value.len; i++) {
        char c = value.ptr[i];
        if (c == '\\' || c == '"')
            text_add(t, "\\%c", c);
        else if (c == '\n')
            text_add(t, "\\n");
        else
            text_add(t, "%c", c);
    }
}

static void render_queue_family(text_t *t, const metrics_gauges_t *g, const char *name,
                                const char *type, const char *help, int field)
{
    text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    uint32_t n = g->queue_count < ALLOT_QUEUED_SKUS_MAX ? g->queue_count : ALLOT_QUEUED_SKUS_MAX;
    for (uint32_t i = 0; i < n; i++) {
        const allot_queue_view_t *q = &g->queues[i];
        unsigned long long v = field == 0   ? q->waiting
                               : field == 1 ? q->admitted
                               : field == 2 ? q->admitted_total
                                            : (unsigned long long)q->rate_per_s;
        text_add(t, "%s{sku=\"", name);
        text_label(t, q->sku);
        text_add(t, "\"} %llu\n", v);
    }
}

/* Flash-sale queues: length, live tokens, admissions (rate() of the counter is the admission
 * rate) and the configured rate, per queued SKU. */
static void render_queues(text_t *t, const metrics_gauges_t *g)
{
    render_queue_family(t, g, "allot_queue_waiting", "gauge",
                        "Tickets waiting in the queue of a SKU.", 0);
    render_queue_family(t, g, "allot_queue_tokens", "gauge",
                        "Admitted tickets holding an unused, unexpired token.", 1);
    render_queue_family(t, g, "allot_queue_admitted_total", "counter",
                        "Tickets admitted since the queue was set.", 2);
    render_queue_family(t, g, "allot_queue_rate_per_second", "gauge",
                        "Configured admission rate of the queue.", 3);
}

static void render_rejected(text_t *t, const metrics_t *m)
{
    static const char *const reasons[METRICS_REJECT_REASONS] = {"unknown_method", "invalid_params",
                                                                "invalid_envelope", "malformed"};
    text_add(t, "# HELP allot_requests_rejected_total Requests refused before any method ran, by "
                "reason.\n# TYPE allot_requests_rejected_total counter\n");
    for (int i = 0; i < METRICS_REJECT_REASONS; i++) {
        uint64_t n = m->requests_rejected[i];
        if (i == METRICS_REJECT_MALFORMED)
            n = m->requests_malformed; /* counted where the bytes are framed */
        text_add(t, "allot_requests_rejected_total{reason=\"%s\"} %llu\n", reasons[i],
                 (unsigned long long)n);
    }
}

/* The standard process metrics (as Prometheus client libraries export them), from /proc. */
static void render_process(text_t *t, const metrics_gauges_t *g)
{
    unsigned long utime = 0, stime = 0, vsize = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f != NULL) {
        /* fields 14, 15 (utime, stime in ticks) and 23 (vsize), after "pid (comm) " */
        int fields = fscanf(f,
                            "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
                            "%*d %*d %*d %*d %*d %*d %*u %lu",
                            &utime, &stime, &vsize);
        fclose(f);
        if (fields != 3)
            utime = stime = vsize = 0;
    }
    long ticks = sysconf(_SC_CLK_TCK);
    text_add(t,
             "# HELP process_cpu_seconds_total Total user and system CPU time in seconds.\n"
             "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n",
             ticks > 0 ? (double)(utime + stime) / (double)ticks : 0.0);
    render_gauge(t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                 metrics_rss_bytes());
    render_gauge(t, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                 vsize);
    unsigned long long fds = 0;
    DIR *dir = opendir("/proc/self/fd");
    for (struct dirent *e; dir != NULL && (e = readdir(dir)) != NULL;)
        fds += e->d_name[0] != '.';
    if (dir != NULL) {
        closedir(dir);
        fds--; /* the one opendir used */
    }
    render_gauge(t, "process_open_fds", "gauge", "Number of open file descriptors.", fds);
    struct rlimit limit;
    unsigned long long fds_max = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 0;
    render_gauge(t, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                 fds_max);
    text_add(t,
             "# HELP process_start_time_seconds Start time of the process since unix epoch in "
             "seconds.\n# TYPE process_start_time_seconds gauge\n"
             "process_start_time_seconds %.3f\n",
             (double)g->started_ms / 1000.0);
}

size_t metrics_render_prometheus(const metrics_t *m, const metrics_gauges_t *g, char *buf,
                                 size_t buf_bytes)
{
    text_t t = {buf, buf_bytes, 0};
    render_methods(&t, m);
    text_add(&t, "# HELP allot_wal_commit_seconds WAL batch hand-over to durable.\n"
                 "# TYPE allot_wal_commit_seconds summary\n");
    render_summary(&t, "allot_wal_commit_seconds", "", &m->wal_batch_us);
    text_add(&t, "# HELP allot_wal_fdatasync_seconds Each fdatasync of WAL records.\n"
                 "# TYPE allot_wal_fdatasync_seconds summary\n");
    render_summary(&t, "allot_wal_fdatasync_seconds", "", &g->wal_fdatasync_us);
    text_add(&t, "# HELP allot_wal_batch_records Records per WAL group commit.\n"
                 "# TYPE allot_wal_batch_records summary\n");
    render_summary_of(&t, "allot_wal_batch_records", "", &g->wal_batch_records, 1.0);
    render_gauge(&t, "allot_connections", "gauge", "Open client connections.", g->connections);
    render_gauge(&t, "allot_connections_accepted_total", "counter", "Connections accepted.",
                 m->connections_accepted);
    render_gauge(&t, "allot_connections_refused_total", "counter",
                 "Connections refused over the limit.", m->connections_refused);
    render_gauge(&t, "allot_connections_closed_by_budget_total", "counter",
                 "Connections closed for holding the largest unfinished requests over the budget.",
                 m->connections_closed_by_budget);
    render_gauge(&t, "allot_connections_unauthenticated", "gauge",
                 "Connections not authenticated yet (with a token).",
                 g->connections_unauthenticated);
    render_gauge(&t, "allot_connections_auth_timeout_total", "counter",
                 "Connections closed for not authenticating within --auth-timeout-ms.",
                 m->connections_auth_timeout);
    render_gauge(&t, "allot_connections_unauthenticated_evicted_total", "counter",
                 "Oldest unauthenticated connections closed to make room for new ones.",
                 m->connections_unauth_evicted);
    render_gauge(&t, "allot_auth_failures_total", "counter", "Wrong tokens checked.",
                 m->auth_failures);
    render_gauge(&t, "allot_auth_throttled_total", "counter",
                 "auth attempts refused unchecked while their connection or address backs off.",
                 m->auth_throttled);
    render_gauge(&t, "allot_auth_log_lines_suppressed_total", "counter",
                 "auth_failed log lines left out by the rate limit.", m->auth_log_suppressed);
    render_gauge(&t, "allot_buffered_bytes", "gauge",
                 "Request and reply bytes held for all connections (--buffer-bytes-max).",
                 g->buffered_bytes);
    render_gauge(&t, "allot_input_buffered_bytes", "gauge",
                 "The part of allot_buffered_bytes held for unfinished requests.", g->input_bytes);
    render_gauge(&t, "allot_replies_too_large_total", "counter",
                 "Reads answered TOO_LARGE: their reply was over --output-bytes-max.",
                 m->replies_too_large);
    render_gauge(&t, "allot_skus", "gauge", "SKUs with stock positions.", g->skus);
    render_gauge(&t, "allot_positions", "gauge", "Stock positions.", g->positions);
    render_gauge(&t, "allot_locations", "gauge", "Locations.", g->locations);
    render_gauge(&t, "allot_reservations", "gauge", "Live reservations.", g->reservations);
    render_gauge(&t, "allot_orders", "gauge", "Orders in memory.", g->orders);
    render_gauge(&t, "allot_wal_lsn", "gauge", "Last WAL record appended.", g->wal_lsn);
    render_gauge(&t, "allot_wal_durable_lsn", "gauge", "Last durable WAL record.", g->durable_lsn);
    render_gauge(&t, "allot_checkpoint_lsn", "gauge", "LSN covered by the last checkpoint.",
                 g->checkpoint_lsn);
    render_gauge(&t, "allot_wal_bytes_written_total", "counter", "WAL bytes written.",
                 g->wal_bytes_written);
    render_gauge(&t, "allot_wal_fdatasyncs_total", "counter", "WAL fdatasync calls.",
                 g->wal_fdatasyncs);
    render_gauge(&t, "allot_checkpoints_total", "counter", "Checkpoints committed.",
                 g->checkpoints);
    render_gauge(&t, "allot_writes_allowed", "gauge", "1 when writes are accepted.",
                 g->writes_allowed);
    render_gauge(&t, "allot_idempotency_evicted_early_total", "counter",
                 "Ended reservation ids and stock.adjust keys evicted by the entry cap while still "
                 "inside the idempotency window.",
                 g->idempotency_evicted_early);
    render_gauge(&t, "allot_resident_memory_bytes", "gauge", "Resident set size.",
                 metrics_rss_bytes());
    render_gauge(&t, "allot_uptime_seconds", "gauge", "Seconds since start.",
                 (unsigned long long)g->uptime_s);
    render_gauge(&t, "allot_checkpoint_failures_total", "counter", "Checkpoints that failed.",
                 g->checkpoint_failures);
    render_gauge(&t, "allot_healthy", "gauge", "1 while GET /health answers 200.", g->healthy);
    if (g->in_group)
        render_group(&t, g);
    render_queues(&t, g);
    render_rejected(&t, m);
    render_process(&t, g);
    return t.used;
}
