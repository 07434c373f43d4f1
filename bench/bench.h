/* bench.h - allot-bench: configuration, sessions, connections and the target interface.
 *
 * Contract:
 *   - The engine (engine.c) runs `threads` workers; each owns a share of the connections, each
 *     connection has `pipeline` session slots, each slot at most one request in flight. A worker
 *     drives its connections with non-blocking sockets and epoll, nothing shared but atomics.
 *   - A session is one unit of work of a scenario (one browse request; one checkout: reserve ->
 *     order.create -> order.pay -> order.release, or reserve -> reservation.release). Scenario
 *     logic (scenario.c) says which op comes next; a target (target_allot.c, redis_target.c)
 *     packs an op into bytes and parses replies. The same sessions, connections and pipeline
 *     run against both targets.
 *   - Latency of a session's first op is measured from its intended start (open loop: the
 *     pacer's schedule; closed loop: when it was started), later ops from their send time, to
 *     when the read that brought the reply returned (one clock read per read, not per reply).
 *   - Errors: functions return 0 or -1 with a message in the caller's buffer / on stderr; the
 *     bench never asserts on what a server sends.
 */
#ifndef ALLOT_BENCH_BENCH_H
#define ALLOT_BENCH_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/histogram.h"
#include "core/limits.h"
#include "pacer.h"

/* The bench's bounds (BENCH_*: connections, pipeline, threads, batch sizes, reply size, drain
 * time) are in core/limits.h. An error code is kept in this many bytes. */
#define BENCH_CODE_BYTES 32
/* Exit status when the server refuses what the run asks for (avail.get's promise key). */
#define BENCH_EXIT_UNSUPPORTED 5

typedef enum {
    OP_AVAIL,
    OP_RESERVE,
    OP_ORDER_CREATE,
    OP_ORDER_PAY,
    OP_ORDER_RELEASE,
    OP_RELEASE,
    OP_STOCK_SET,
    OP_PING,
    OP_COUNT
} bench_op_t;

typedef enum {
    SCENARIO_BROWSE,
    SCENARIO_CHECKOUT,
    SCENARIO_FLASHSALE,
    SCENARIO_RESERVE,
    SCENARIO_MIXED,
    SCENARIO_PING,
    SCENARIO_LOAD,
    SCENARIO_COUNT
} bench_scenario_t;

typedef enum { TARGET_ALLOT, TARGET_REDIS } bench_target_kind_t;

extern const char *const bench_op_names[OP_COUNT];
extern const char *const bench_scenario_names[SCENARIO_COUNT];

typedef struct bench_config {
    bench_target_kind_t target;
    char host[BENCH_HOST_BYTES];
    uint16_t port;
    bench_scenario_t scenario;
    uint32_t mix_weights[SCENARIO_COUNT]; /* mixed: percent per session kind */
    uint32_t connections, pipeline, threads;
    double rate_per_s;       /* 0: closed loop */
    uint32_t send_window_us; /* open loop: requests due within this of a hand-out wait for the
                                next one (pacer_send_ns); 0: each goes out at its own time */
    double duration_s;       /* run length after warm-up */
    uint32_t timeline_ms;    /* > 0: count the measured replies per window of intended start */
    double warmup_s;         /* not recorded */
    uint64_t requests;       /* > 0: stop after this many sessions instead of a duration */
    /* data set */
    uint32_t skus, locations, sku_locations;
    int64_t on_hand;
    bool load; /* load the catalogue before the run */
    /* browse */
    uint32_t skus_per_request;
    bool detail;
    bool promise;   /* avail.get with promise: true (an allot target only) */
    bool redis_get; /* redis: avail:<sku> string keys too; browse of 1 SKU is GET avail:<sku> */
    /* checkout */
    uint32_t lines_min, lines_max;
    double release_ratio;
    bool no_orders; /* every cart: reserve then reservation.release (no order.* calls) */
    /* flashsale */
    int64_t flash_units;
    bool fair;                 /* flashsale through the waiting room (fair.c) */
    uint32_t customers;        /* fair: customers who join */
    uint32_t queue_rate_per_s; /* fair: the queue's admission rate */
    /* output */
    const char *json_path, *svg_path, *label;
    bool quiet, progress;
    int server_pid; /* > 0: report the server's CPU time over the run */
    uint64_t seed;
    uint64_t run_nonce; /* makes reservation / order ids unique across runs */
    /* --group: the members' client addresses. host/port become the leader's (found with
     * server.info before the run): every write and the catalogue load go there; browse
     * connections spread over every member (connection i to member i % group_count). */
    uint32_t group_count;
    char group_hosts[ALLOT_GROUP_MEMBERS_MAX][BENCH_HOST_BYTES];
    uint16_t group_ports[ALLOT_GROUP_MEMBERS_MAX];
} bench_config_t;

/* One slot's work. */
typedef struct session {
    uint8_t kind; /* bench_scenario_t */
    uint8_t op;   /* bench_op_t in flight or next */
    uint8_t lines;
    bool busy;                   /* a request is in flight */
    bool abandon;                /* checkout: release instead of ordering */
    bool recorded;               /* its first op started inside the measured window */
    bool first_op;               /* the op in flight is the session's first */
    uint16_t replies_left;       /* redis: replies still expected for this request */
    bool failed;                 /* redis: one of the replies was an error */
    char code[BENCH_CODE_BYTES]; /* first error code seen for the request in flight */
    uint32_t msgid;
    uint64_t cart;        /* unique per session within the run */
    uint64_t index;       /* load: which item */
    uint64_t intended_ns; /* when the request in flight should have started */
    uint64_t session_start_ns;
} session_t;

typedef struct byte_buffer {
    char *data;
    size_t len, cap, pos; /* pos: consumed prefix (input) */
} byte_buffer_t;

/* Room for `more` bytes after len: 0, or -1 when out of memory. The check is inline (a request
 * is packed with one per op); growing is byte_buffer_grow's. */
int byte_buffer_grow(byte_buffer_t *b, size_t more);
static inline int byte_buffer_reserve(byte_buffer_t *b, size_t more)
{
    return b->len + more <= b->cap ? 0 : byte_buffer_grow(b, more);
}
int byte_buffer_append(byte_buffer_t *b, const void *data, size_t len);
void byte_buffer_compact(byte_buffer_t *b);
void byte_buffer_free(byte_buffer_t *b);

typedef struct worker worker_t;

typedef struct conn {
    int fd;
    uint32_t id; /* global connection number */
    byte_buffer_t in, out;
    session_t *slots;
    uint32_t *free_slots; /* stack */
    uint32_t free_count;
    uint32_t *fifo; /* redis: slots in send order awaiting replies */
    uint32_t fifo_head, fifo_count;
    void *reader; /* redis: redisReader */
    bool refused; /* flashsale: got INSUFFICIENT_STOCK, starts nothing more */
    bool dead;    /* I/O error: no more work */
    bool write_blocked;
    bool queued; /* on its worker's list of connections with requests to send */
} conn_t;

/* Per-op results, merged over workers at the end. */
typedef struct op_stats {
    histogram_t latency_ns;
    uint64_t ok, errors;
    uint32_t code_count;
    char codes[BENCH_ERROR_CODES_MAX][BENCH_CODE_BYTES];
    uint64_t code_counts[BENCH_ERROR_CODES_MAX];
} op_stats_t;

typedef struct bench_run bench_run_t;

/* --timeline-ms: the measured requests whose intended start fell in one window, and how many of
 * them took over 5 and over 20 ms (the open loop's tail targets); at most
 * BENCH_TIMELINE_WINDOWS_MAX windows (the rest is not counted). */
#define BENCH_TIMELINE_WINDOWS_MAX 100000
typedef struct bench_timeline_window {
    uint64_t count, over_5ms, over_20ms, max_ns;
} bench_timeline_window_t;

struct worker {
    uint32_t index;
    bench_run_t *run;
    int epoll_fd;
    conn_t *conns;
    uint32_t conn_count;
    conn_t **queued; /* connections given requests since the last flush (conn_count slots) */
    uint32_t queued_count;
    bool filled; /* closed loop: every slot was given a session; replies start the next ones */
    uint32_t rr; /* open loop: the connection the next due requests go to */
    uint64_t last_send_ns; /* open loop: when due requests were last handed out (pacer_send_ns) */
    pacer_t pacer;
    uint64_t rng;
    uint64_t carts;
    op_stats_t stats[OP_COUNT];
    histogram_t session_ns; /* whole sessions of more than one request (bench_run_t) */
    /* open loop: how late each measured session was handed to a connection, from its intended
     * start (a client that falls behind adds this to every latency it reports) */
    histogram_t send_late_ns;
    uint64_t slot_waits; /* open loop: times a session was due and every slot was busy */
    bench_timeline_window_t *timeline; /* run->timeline_count windows, NULL: none */
    uint64_t first_start_ns, last_done_ns;
    uint64_t read_ns; /* the clock when the last read returned: the time of the replies it holds */
    _Atomic uint64_t completed; /* ops completed, for the progress line */
    _Atomic uint64_t failures;
    uint64_t flash_ok, flash_refused;
    uint32_t inflight; /* sessions with a request in flight */
    bool exhausted;    /* no more sessions will start (request budget, load done, refused) */
    _Atomic bool done;
    char error[256];
};

/* A target: packs ops and parses replies for one kind of server. */
typedef struct bench_target {
    const char *name;
    /* Append the request(s) for s->op to c->out; 0 or -1. Sets s->msgid / s->replies_left. */
    int (*pack)(worker_t *w, conn_t *c, uint32_t slot, session_t *s);
    /* Parse complete replies from c->in, calling engine_reply for each finished request.
     * 0, or -1 on a protocol error (message in w->error). */
    int (*parse)(worker_t *w, conn_t *c);
    int (*conn_init)(conn_t *c);
    void (*conn_free)(conn_t *c);
} bench_target_t;

struct bench_run {
    const bench_config_t *config;
    const bench_target_t *target;
    char hot_sku[64]; /* flashsale */
    char flash_location[32];
    worker_t *workers;
    uint32_t worker_count;
    _Atomic int phase; /* PHASE_* */
    _Atomic uint64_t sessions_started;
    _Atomic uint64_t load_next;
    _Atomic bool orders_unsupported;
    uint64_t load_total; /* load: items */
    uint64_t start_ns, measure_start_ns, measure_end_ns;
    /* results (after engine_run) */
    op_stats_t stats[OP_COUNT];
    /* whole sessions, first send to last reply. When every session of the scenario is one
     * request (sessions_single), each session's latency is its request's, so workers record it
     * once, in the op's histogram, and run_merge adds those into session_ns. */
    histogram_t session_ns;
    bool sessions_single;
    histogram_t send_late_ns;          /* open loop: merged worker_t.send_late_ns */
    uint64_t slot_waits;               /* open loop: summed worker_t.slot_waits */
    bench_timeline_window_t *timeline; /* merged; freed by bench_run_free */
    uint32_t timeline_count;
    int64_t measure_start_unix_ms; /* the wall clock when measuring began (timeline's origin) */
    uint64_t last_done_ns;
    double elapsed_s; /* measured window */
    uint64_t flash_ok, flash_refused;
    double server_cpu_s; /* -1 when unknown */
    double client_cpu_s; /* this process's CPU time over the same window, -1 when unknown */
    bool incomplete;     /* drained with requests still in flight, or I/O errors */
    char error[256];
};

enum { PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN, PHASE_EXIT };

/* engine.c */
uint64_t bench_now_ns(void);

/* allot-bench --scenario flashsale --fair (fair.c): the sale through the waiting room; prints
 * its report to out. 0 when every customer was admitted in join order, the first N bought and
 * the limit held; 1 on a setup error, 3 when a check failed. */
int fair_sale_run(const bench_config_t *config, FILE *out);
int engine_run(bench_run_t *run);
/* What engine_run left allocated in run (the timeline). */
void bench_run_free(bench_run_t *run);
/* Called by a target's parse when the request in flight on `slot` finished. */
void engine_reply(worker_t *w, conn_t *c, uint32_t slot, bool is_error, const char *code);
uint64_t bench_rng_next(uint64_t *state);
void bench_sku_name(uint32_t index, char *buf, size_t bytes);
void bench_location_name(uint32_t index, char *buf, size_t bytes);
/* A cart's (reservation's, order's) id: "c<run nonce, hex>-<worker>-<cart>", at most
 * BENCH_CART_NAME_BYTES - 1 characters; truncated to bytes - 1 as snprintf would. */
#define BENCH_CART_NAME_BYTES 64
void bench_cart_name(const bench_run_t *run, uint32_t worker, uint64_t cart, char *buf,
                     size_t bytes);
/* Position i of the catalogue: SKU i / sku_locations at its (i % sku_locations)-th location. */
void bench_position(const bench_config_t *config, uint64_t i, uint32_t *sku, uint32_t *location);
/* Distinct random SKU indices for one request. */
void bench_random_skus(worker_t *w, uint32_t *out, uint32_t n);

/* scenario.c */
/* Choose the session's kind and first op. */
void scenario_session_start(worker_t *w, session_t *s);
/* After the reply to s->op: true when another op follows (s->op updated). */
bool scenario_session_next(worker_t *w, session_t *s, bool is_error, const char *code);
bench_op_t scenario_primary_op(bench_scenario_t scenario);
/* True when every session of the scenario is one request (scenario_session_next never goes on). */
bool scenario_sessions_single(bench_scenario_t scenario);

/* Targets. */
extern const bench_target_t bench_target_allot;
extern const bench_target_t bench_target_redis;
bool bench_redis_available(void);

/* Setup and checks through a blocking client (target_allot.c, redis_target.c). */
int allot_setup_locations(const bench_config_t *config, char *error, size_t bytes);
int allot_setup_flash(bench_run_t *run, char *error, size_t bytes);
int allot_check_flash(bench_run_t *run, char *error, size_t bytes);
/* The catalogue is loaded (0, -1); with --promise also that the server accepts avail.get's
 * promise key (BENCH_EXIT_UNSUPPORTED, with the server's answer in error, when it refuses it). */
int allot_check_catalogue(const bench_config_t *config, char *error, size_t bytes);
int redis_setup(bench_run_t *run, char *error, size_t bytes);
int redis_check_flash(bench_run_t *run, char *error, size_t bytes);

/* report.c */
void report_text(const bench_run_t *run, FILE *out);
int report_json(const bench_run_t *run, const char *path);

/* svg.c: one curve per JSON result file. */
int svg_plot(const char *svg_path, const char *const *json_paths, int count, char *error,
             size_t bytes);

#endif
