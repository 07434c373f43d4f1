/* metrics.h - server counters and latency histograms, for `server.stats` and Prometheus.
 *
 * Contract: the loop thread records into metrics_t (no locks): per method the calls, errors and
 * a latency histogram in microseconds measured from when the batch of requests holding the
 * request (the requests of one read) began to be dispatched to when its reply was ready to send:
 * the end of that batch for a reply sent at once, the durable report that released it for a
 * write (so it includes waiting for fsync); the clock is read once per batch, not per request
 * (net/connection.c). Per WAL batch the time from hand-over to durable; connection and byte
 * counters. metrics_pack writes the
 * `server.stats` map; metrics_render_prometheus writes the text exposition format (0.0.4):
 * allot_* metrics (names and types pass `promtool check metrics`) and the standard process_*
 * ones (CPU, memory, file descriptors, start time) read from /proc.
 * The HTTP endpoint (metrics_http.h) serves a copy rendered by the loop, never this struct.
 */
#ifndef ALLOT_NET_METRICS_H
#define ALLOT_NET_METRICS_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

#include "core/histogram.h"
#include "core/limits.h"
#include "core/sale.h"

typedef struct method_metrics {
    uint64_t calls;
    uint64_t errors;
    histogram_t latency_us;
} method_metrics_t;

/* Values owned elsewhere, read when rendering. */
typedef struct metrics_gauges {
    uint32_t connections;
    uint32_t connections_unauthenticated;      /* with a token: not authenticated yet */
    uint64_t auth_peers_evicted;               /* addresses evicted from the failure table */
    uint64_t buffered_bytes, buffer_bytes_max; /* all connections' buffers and their budget */
    uint64_t input_bytes;                      /* the part held for unfinished requests */
    uint64_t skus, positions, locations, reservations, orders;
    uint64_t wal_lsn, durable_lsn, checkpoint_lsn;
    uint64_t wal_bytes_written, wal_fdatasyncs, wal_batches, wal_segments_deleted;
    /* the spare's zero fill (persist/wal.h, "Written before use") */
    uint64_t wal_zeroed_bytes, wal_zero_fill_failures, wal_segments_unzeroed;
    uint64_t wal_segment_shrink_steps;
    histogram_t wal_fdatasync_us;  /* each fdatasync of records (persist/wal.h, wal_histograms) */
    histogram_t wal_batch_records; /* records per group commit */
    uint64_t checkpoints, checkpoint_failures;
    uint64_t events_store_commits; /* LMDB transactions that stored events (net/events.h) */
    /* ended reservation ids and adjust keys the entry cap evicted inside the window (core) */
    uint64_t idempotency_evicted_early;
    int64_t checkpoint_last_ms;      /* duration of the last checkpoint */
    uint64_t checkpoint_spare_bytes; /* batch chunks kept for the next checkpoint */
    /* fresh table pages faulted in off the loop (persist/pages_warm.h), and the loop thread's
     * own minor page faults (getrusage RUSAGE_THREAD, read on the loop) */
    uint64_t pages_warmed_bytes, pages_warm_ranges_dropped, loop_minor_faults;
    int64_t uptime_s;
    int64_t started_ms; /* wall-clock ms when the process started serving */
    bool writes_allowed;
    /* a member of a group (else none of these is rendered) */
    bool in_group, group_leader;
    uint64_t raft_term, raft_commit_index, raft_applied_index, raft_leader_changes;
    size_t follower_lag_count; /* leader only: entries each follower lacks */
    uint32_t follower_ids[ALLOT_GROUP_MEMBERS_MAX];
    uint64_t follower_lag_entries[ALLOT_GROUP_MEMBERS_MAX];
    bool healthy;               /* what GET /health says (writes accepted) */
    const char *health_problem; /* why not, when not healthy */
    uint32_t queue_count;       /* flash-sale queues (core/sale.h), SKU ids valid until the */
    allot_queue_view_t queues[ALLOT_QUEUED_SKUS_MAX]; /* next write to the state */
} metrics_gauges_t;

/* Requests refused before any method ran, by reason (allot_requests_rejected_total). */
typedef enum metrics_reject {
    METRICS_REJECT_UNKNOWN_METHOD = 0, /* no such method */
    METRICS_REJECT_INVALID_PARAMS,     /* params not [map] (nor []) */
    METRICS_REJECT_INVALID_ENVELOPE,   /* decoded, but not a MessagePack-RPC request: closed */
    METRICS_REJECT_MALFORMED,          /* not MessagePack, too large or too deep: closed */
    METRICS_REJECT_REASONS,
} metrics_reject_t;

typedef struct metrics {
    method_metrics_t *methods; /* one per command_table row, same order */
    size_t method_count;
    histogram_t wal_batch_us; /* hand-over to durable, per durable report */
    histogram_t loop_iteration_us;
    uint64_t connections_accepted, connections_refused, connections_closed_by_limit;
    uint64_t connections_closed_by_budget; /* held the largest unfinished requests over budget */
    uint64_t connections_auth_timeout;     /* not authenticated within --auth-timeout-ms */
    uint64_t connections_unauth_evicted;   /* oldest unauthenticated, closed to make room */
    uint64_t auth_failures;                /* wrong tokens checked */
    uint64_t auth_throttled;               /* attempts refused unchecked (back-off) */
    uint64_t auth_log_suppressed;          /* auth_failed lines left out (rate limit) */
    uint64_t requests_malformed, requests_overloaded, bytes_in, bytes_out;
    uint64_t replies_too_large; /* reads answered TOO_LARGE: the reply was over the limit */
    uint64_t requests_rejected[METRICS_REJECT_REASONS];
} metrics_t;

int metrics_init(metrics_t *m);
void metrics_destroy(metrics_t *m);

/* Record one answered request of command `index` (command_index()). */
void metrics_request_record(metrics_t *m, size_t index, int64_t latency_us, bool error);
/* Record `calls` answered requests of command `index` with the same latency, `errors` of them
 * errors (as many metrics_request_record calls would). */
void metrics_requests_record(metrics_t *m, size_t index, int64_t latency_us, uint32_t calls,
                             uint32_t errors);

/* Record a request refused before a method ran: the dispatcher's error for a request whose method
 * is unknown (command_index SIZE_MAX), and whether the connection closes for it. */
void metrics_request_rejected(metrics_t *m, int error, bool closes);

/* server.stats: {"methods": {name: {calls, errors, p50_us, p99_us, p999_us, max_us}}, ...}. */
void metrics_pack(const metrics_t *m, const metrics_gauges_t *g, msgpack_packer *pk);

/* Prometheus text into buf; returns the bytes needed (may exceed buf_bytes: then truncated). */
size_t metrics_render_prometheus(const metrics_t *m, const metrics_gauges_t *g, char *buf,
                                 size_t buf_bytes);

/* Resident memory of this process in bytes (from /proc/self/statm; 0 if unknown). */
uint64_t metrics_rss_bytes(void);

#endif
