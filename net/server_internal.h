/* server_internal.h - the server's and connections' private state, shared by server.c and
 * connection.c only. Not part of any contract. */
#ifndef ALLOT_NET_SERVER_INTERNAL_H
#define ALLOT_NET_SERVER_INTERNAL_H

#include <msgpack.h>
#include <stddef.h>
#include <uv.h>

#include "auth.h"
#include "checkpoint_driver.h"
#include "client/frame.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "persist/archive.h"
#include "persist/checkpoint.h"
#include "persist/dirlock.h"
#include "persist/pages_warm.h"
#include "server.h"

struct allot_state;
typedef struct connection connection_t;

/* "[ipv6]:port" at most, with its NUL. */
#define CONNECTION_PEER_BYTES_MAX 56

/* A reply held until the WAL is durable up to `lsn`; its bytes end at `end` in conn->held. */
typedef struct held_reply {
    uint64_t lsn;
    size_t end;
    uint64_t started_ns;  /* when the batch that decoded the request began (latency metrics) */
    size_t command_index; /* SIZE_MAX: not counted */
    bool error;
} held_reply_t;

struct connection {
    uv_tcp_t handle;
    struct server *server;
    uint64_t id;
    connection_t *prev, *next;               /* all connections */
    connection_t *dirty_next;                /* connections with output to flush this iteration */
    connection_t *close_next;                /* closing: waiting in the close queue */
    connection_t *held_prev, *held_next;     /* connections with replies awaiting durability */
    connection_t *unauth_prev, *unauth_next; /* unauthenticated connections, oldest first */
    bool dirty, in_held_list, in_unauth_list, reading, closing, close_when_flushed, write_active;
    /* input: reads land in the loop's shared buffer (server_t.read_buffer); a connection keeps
     * only what was not consumed (a partial request, or requests left while reading is paused),
     * in a buffer sized to it; NULL when nothing is left */
    uint8_t *in;
    size_t in_size, in_capacity;
    frame_scanner_t scanner;
    uint64_t partial_since_ms; /* uv_now() when the unfinished request began; 0 when none */
    uint64_t last_read_ms;     /* uv_now() of the last bytes received (idle timeout) */
    bool timeout_deferred;     /* a deadline passed with bytes unread: judged again next tick */
    /* output */
    msgpack_sbuffer out;     /* replies ready to send */
    msgpack_sbuffer writing; /* bytes owned by the active uv_write */
    uv_write_t write_req;
    msgpack_sbuffer held;    /* WRITE replies waiting for durability, in LSN order */
    uint32_t deferred_count; /* replies a handler deferred (server.checkpoint) not sent yet */
    held_reply_t *held_replies;
    uint32_t held_head, held_count, held_capacity;
    auth_session_t auth;
    uint64_t accepted_ms;                 /* uv_now() at accept (authentication deadline) */
    char peer[CONNECTION_PEER_BYTES_MAX]; /* "ip:port" of the client, for log lines */
    /* a read waiting for min_index (at most one per connection; input pauses meanwhile) */
    uint8_t *waiting;
    size_t waiting_bytes;
    uint64_t waiting_index, waiting_deadline_ms; /* applied index awaited; uv_now() deadline */
    connection_t *wait_prev, *wait_next;         /* server_t.waiting */
    bool wait_over; /* dispatching a read whose wait is over (it is answered, not kept) */
};

/* The connection whose authentication state `session` is. */
static inline connection_t *connection_of_session(auth_session_t *session)
{
    return (connection_t *)(void *)((char *)session - offsetof(connection_t, auth));
}

typedef struct server {
    server_config_t config;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    uv_check_t end_of_iteration;
    uv_idle_t checkpoint_slicer; /* active while a checkpoint is serialized: one slice per turn */
    uv_timer_t housekeeping;     /* expiry, request timeouts, periodic checkpoints */
    uv_timer_t shutdown_deadline;
    uv_idle_t close_spreader; /* active while connections wait in the close queue */
    struct allot_state *state;
    dirlock_t *dir_lock;      /* <data-dir>/allotd.lock, held from start-up to exit */
    pages_warm_t *pages_warm; /* faults fresh table pages in off the loop (NULL: not running) */
    wal_t *wal;               /* standalone: the write-ahead log */
    consensus_t *consensus;   /* a member of a group: the group's log (persist/consensus.h) */
    bool rebuild_requested;   /* leadership lost with uncommitted records: stop, rebuild */
    bool stop_signalled;      /* SIGTERM/SIGINT: the process exits, even if a rebuild was asked */
    msgpack_zone zone;        /* decoded request objects; cleared after each request */
    /* zone's chunk list right after its last msgpack_zone_clear (head NULL: never cleared):
     * what undoes a request that used the first chunk only (request_zone_reset) */
    msgpack_zone_chunk_list zone_cleared;
    msgpack_sbuffer scratch; /* one reply being packed */
    /* emptied reply buffers of MSGPACK_SBUFFER_INIT_SIZE bytes, reused before malloc */
    char *reply_spares[ALLOT_REPLY_BUFFERS_SPARE_MAX];
    uint32_t reply_spare_count;
    connection_t *connections;
    connection_t *dirty;
    connection_t *held;
    connection_t *waiting; /* connections whose read waits for min_index */
    uint32_t waiting_count;
    uint32_t connection_count;                    /* including those closing */
    uint32_t connections_closing;                 /* closed, handle not released yet */
    connection_t *close_queue, *close_queue_last; /* handles still to close, oldest first */
    /* with authentication on: connections not authenticated yet, oldest first */
    connection_t *unauth_oldest, *unauth_newest;
    uint32_t unauth_count;
    uint64_t next_connection_id;
    uint64_t durable_lsn;
    uint64_t checkpoint_lsn;
    int64_t started_ms;
    int64_t now_ms;
    bool now_valid;
    bool shutting_down;
    int exit_status;
    uint64_t connections_refused;
    server_checkpoint_t checkpoint;
    auth_token_t auth;
    auth_peers_t *auth_peers; /* failures per client address; NULL without a token */
    log_limit_t auth_log;     /* auth_failed lines */
    log_limit_t unauth_log;   /* unauthenticated_evicted lines */
    metrics_t metrics;
    struct events *events; /* the change stream (net/events.h); NULL until opened */
    metrics_http_t *metrics_http;
    http_t *http;       /* the HTTP front door (--http); NULL without */
    char *metrics_text; /* METRICS_HTTP_TEXT_BYTES_MAX, rendered once a second */
    /* The loop's iterations are timed from one end of an iteration (uv_check) to the next,
     * less the time libuv spent blocked in the poll (uv_metrics_idle_time) meanwhile: every
     * callback of the iteration counts, whoever runs it. 0: no iteration ended yet. */
    uint64_t iteration_ended_ns;
    uint64_t iteration_idle_ns;
    /* Requests are timed per batch (the requests of one read, or those a durable report lets
     * in), not one by one: uv_hrtime() when the open batch began (0: none open), and the
     * requests it answered at once, recorded when it ends (connection_batch_end): how many,
     * and their runs of one method (calls, errors among them). */
    uint64_t batch_started_ns;
    uint32_t batch_reply_count;
    uint32_t batch_run_count;
    struct {
        uint32_t command_index;
        uint32_t calls, errors;
    } batch_runs[ALLOT_BATCH_REPLIES_MAX];
    uint64_t wal_flush_ns; /* uv_hrtime() of the first hand-over not yet durable */
    uint64_t housekeeping_ticks;
    uint64_t buffered_bytes; /* all connections' input capacity + pending reply bytes */
    uint64_t input_bytes;    /* the input part of buffered_bytes: unconsumed request bytes */
    /* lines of events a client can cause at will, at most LOG_LIMIT_LINES_PER_S each */
    log_limit_t input_cut_log, refused_log, bad_request_log, output_limit_log, timeout_log;
    uint8_t read_buffer[ALLOT_READ_CHUNK_BYTES]; /* every read lands here first */
    /* idempotency_evicted_early as of the last log line, and the uv_now() before which no
     * other line is written (server_ops_idempotency_watch) */
    uint64_t idempotency_early_logged;
    uint64_t idempotency_log_next_ms;
} server_t;

/* server_check.c: the listen address (an IP literal or localhost) as a socket address. */
int server_listen_address(const server_config_t *config, struct sockaddr_storage *address);

/* server.c */
int64_t server_now_ms(server_t *server);
/* The event sink (allot_state_set_event_sink): every record goes to the WAL or the group's log. */
int server_state_event_cb(void *ctx, uint8_t type, const uint8_t *payload, size_t len);
/* Records up to durable_lsn are durable (a group: committed): release the replies held. */
void server_durable_advanced(server_t *server, uint64_t durable_lsn);
/* Bytes written to the WAL since start (0 in a group): the checkpoint_wal_bytes trigger. */
uint64_t server_log_bytes(const server_t *server);
/* The leader's client address ("host:port"), or NULL (standalone, or no leader known). */
const char *server_leader_address(const server_t *server);

/* server_group.c: a member of a group (config.member_count > 0). */
int server_group_start(server_t *server, uint64_t last_lsn);
/* Close the checkpoint machinery (checkpoint_driver_close), every handle and the WAL: the end of
 * shutdown (once; later calls do nothing). */
void server_shutdown_close_all(server_t *server);
void server_connection_closed(server_t *server, connection_t *conn);
bool server_writes_allowed(const server_t *server, int *refused_error);
void server_metrics_gauges(const server_t *server, metrics_gauges_t *gauges);

/* Global budget for connection buffers (--buffer-bytes-max): over it, new requests are
 * answered OVERLOADED instead of run, so the process does not grow with what clients send. */
static inline void server_buffered_add(server_t *server, size_t bytes)
{
    server->buffered_bytes += bytes;
}

static inline void server_buffered_sub(server_t *server, size_t bytes)
{
    server->buffered_bytes -= bytes < server->buffered_bytes ? bytes : server->buffered_bytes;
}

static inline bool server_buffered_over_budget(const server_t *server)
{
    return server->buffered_bytes > server->config.buffer_bytes_max;
}

/* May a line of a client-caused event be written now (*suppressed: the lines left out before)? */
static inline bool server_log_allow(server_t *server, log_limit_t *limit, uint64_t *suppressed)
{
    return log_limit_allow(limit, (int64_t)uv_now(server->loop), LOG_LIMIT_LINES_PER_S, suppressed);
}

/* Connections not closing (what the limit and server.info count). */
static inline uint32_t server_connections_open(const server_t *server)
{
    return server->connection_count - server->connections_closing;
}

/* With authentication on, at most this many connections may be unauthenticated at once
 * (--unauthenticated-connections-max; by default a tenth of --connections-max). */
static inline uint32_t server_unauthenticated_max(const server_t *server)
{
    uint32_t max = server->config.unauthenticated_connections_max;
    if (max == 0)
        max = server->config.connections_max / ALLOT_UNAUTHENTICATED_CONNECTIONS_DIVISOR;
    return max > 0 ? max : 1;
}

/* server_ops.c: authentication token and metrics endpoint (start-up), publishing, teardown. */
int server_ops_start(server_t *server);
int server_ops_http_start(server_t *server);
void server_ops_publish(server_t *server);
/* Once a second: log idempotency_evicted_early (rate-limited) when the count has grown. */
void server_ops_idempotency_watch(server_t *server);
void server_ops_stop(server_t *server);
uint64_t server_wal_lsn(const server_t *server);

/* connection.c */
void connection_accept(server_t *server);
/* Free the spare reply buffers (at exit, once every connection is closed). */
void connection_spares_free(server_t *server);
void connection_flush(connection_t *conn);
/* Send the held replies durable up to durable_lsn; now_ns: uv_hrtime() of the report. */
void connection_release_durable(connection_t *conn, uint64_t durable_lsn, uint64_t now_ns);
/* The clock of the open request batch (opened, with one clock read, when none is). */
uint64_t connection_batch_started_ns(server_t *server);
/* End the open batch (if any): one clock read records every request it answered at once and
 * counts its time in the loop iteration's busy time. */
void connection_batch_end(server_t *server);
/* Reads waiting for min_index: dispatch those whose index is applied, answer those whose wait is
 * over (UNAVAILABLE). Called when entries are applied and from housekeeping. */
void connection_waits_check(server_t *server, uint64_t applied_index, uint64_t now_monotonic_ms);
void connection_close(connection_t *conn);
void connection_begin_shutdown(connection_t *conn);
bool connection_idle(const connection_t *conn);
void connection_check_timeout(connection_t *conn, uint64_t now_monotonic_ms);
/* With authentication on: close connections unauthenticated for --auth-timeout-ms. */
void connection_check_auth_deadlines(server_t *server, uint64_t now_monotonic_ms);
/* The connection authenticated: it no longer counts against the unauthenticated cap. */
void connection_authenticated(connection_t *conn);
/* Send a reply a handler deferred (bytes are one whole response); ends one deferred_count. */
void connection_reply_deferred(connection_t *conn, const char *bytes, size_t len);
/* Queue a notification (net/events_push.c checked the output limit). */
void connection_notify(connection_t *conn, const char *bytes, size_t len);

/* checkpoint_driver.c: forget the deferred replies owed to a connection that is closing, or to
 * an HTTP request answered otherwise (shutting down). */
void server_deferred_drop(server_t *server, connection_t *conn);
void server_deferred_drop_http(server_t *server, http_exchange_t *http);

#endif
