/* events.h - the change stream in the server: events derived from applied records, stored in
 * <data-dir>/events.lmdb once durable, read with filters and long polls, acknowledged by durable
 * consumers, pushed to subscribers; and the ledger of on_hand movements (docs/events.md).
 *
 * Contract
 *  - events_open before recovery: it opens the store and makes itself core's change observer
 *    (core/stream.h), so that replay derives the events of the records after the store's
 *    last_lsn again (those before it are stored already and skipped). events_recovered after
 *    recovery stores what replay derived. Live, each applied record's changes wait in memory
 *    until the WAL is durable up to its LSN (events_durable, from the WAL's durable callback):
 *    then they are stored in one LMDB transaction, pushed to subscribers and long polls are
 *    answered. Nothing a client has not been told is durable is ever readable. While no
 *    subscriber, long poll or listener waits, durable events wait in memory too (up to
 *    EVENTS_STORE_DEFER_BYTES_MAX, events.c) and go in one transaction for many group commits:
 *    at the next housekeeping tick, before any read (events_read, the ledger, events.ack,
 *    events.subscribe: what a client was told is durable is readable), before a checkpoint's
 *    batch goes to its writer (so the WAL that could derive them again is deleted only once
 *    they are stored and synced), and at close. A crash loses only what the WAL still holds.
 *  - seq = (lsn << ALLOT_EVENT_SEQ_INDEX_BITS) | index within the record (core/stream.h): the
 *    same on every node that applies the same log.
 *  - Reading (events_read): the store's B-tree is seeked at `after` and walked, at most
 *    ALLOT_EVENTS_READ_SCAN_MAX events per call, matching the filter; the loop never holds a lock
 *    a reader needs (LMDB MVCC). It is the one read the handlers and the HTTP layer (SSE) call:
 *    each_cb gets each matching event as one MessagePack map (the wire's event object).
 *    *next is the seq to pass as `after` next time (past everything examined, matched or not).
 *    ALLOT_EEXPIRED with *oldest when events after `after` were removed by retention.
 *  - Listeners: events_listen registers a callback run after each batch is stored (for the
 *    HTTP layer's server-sent events); at most EVENTS_LISTENERS_MAX.
 *  - Subscriptions and long polls belong to a connection: events_connection_closed drops them.
 *    A subscriber whose unsent output passes --output-bytes-max is disconnected with the log
 *    line `subscriber_cut`; the others and the loop are unaffected.
 *  - Retention: events_housekeeping (from the housekeeping timer) trims by age
 *    (--events-retention-s), size (--events-bytes-max) and the ledger's age
 *    (--ledger-retention-days), a bounded step at a time, answers long polls whose wait ended,
 *    and emits the EVENTS_TICK record when an avail.changed is owed.
 *  - events_flush: before WAL segments are deleted, the store is synced to disk; it runs on the
 *    checkpoint writer thread after each commit (the one function of this module another thread
 *    may call), so the loop never waits for the disk; events_checkpointed (loop) logs a failure.
 *  - Errors: ALLOT_E* codes with a detail (handlers), ALLOT_EIO from the store (logged).
 */
#ifndef ALLOT_NET_EVENTS_H
#define ALLOT_NET_EVENTS_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/limits.h"

struct server;
struct connection;
struct allot_state;
typedef struct events events_t;

#define EVENTS_LISTENERS_MAX 4

typedef struct events_config {
    int64_t retention_ms;
    uint64_t bytes_max;
    int64_t ledger_retention_ms;
} events_config_t;

/* What a read keeps: every field empty / 0 keeps everything. */
typedef struct events_filter {
    uint32_t types; /* bit (1 << type) per allot_change_type_t */
    allot_str_t sku;
    allot_str_t order;
    allot_str_t customer;
} events_filter_t;

int events_open(struct server *server, struct allot_state *state, const char *data_dir,
                const events_config_t *config, events_t **out);
/* After recovery: store what replay derived (recovered_lsn: the last record replayed).
 * log_follows: a group member, whose records after recovered_lsn come from the group's log
 * after the start (events the store holds beyond it are expected, not a loss). */
int events_recovered(events_t *events, uint64_t recovered_lsn, bool log_follows);
void events_close(events_t *events);

void events_durable(events_t *events, uint64_t durable_lsn);
/* Store now the durable events still in memory (events_durable lets them wait while nobody
 * waits for them). The checkpoint calls it before its batch goes to the writer. */
void events_store_durable(events_t *events);
void events_housekeeping(events_t *events, int64_t now_ms, uint64_t now_monotonic_ms);
/* Any thread: fdatasync of the store; 0 or an errno value (NULL events: 0). */
int events_flush(events_t *events);
/* Loop: the checkpoint committed and events_flush returned flush_status. */
void events_checkpointed(events_t *events, int flush_status);
void events_connection_closed(events_t *events, struct connection *conn);

typedef int (*events_each_cb)(void *ctx, uint64_t seq, const uint8_t *map, size_t len);
int events_read(events_t *events, uint64_t after, const events_filter_t *filter, uint32_t limit,
                events_each_cb each_cb, void *ctx, uint64_t *next, uint64_t *oldest);
/* The seq of the newest stored event (0 when none), the oldest retained. */
uint64_t events_last_seq(const events_t *events);
uint64_t events_first_seq(const events_t *events);

typedef void (*events_listener_cb)(void *ctx, uint64_t last_seq);
int events_listen(events_t *events, events_listener_cb cb, void *ctx);

/* Counters for server.info / metrics. */
typedef struct events_stats {
    uint64_t stored; /* events in the store */
    uint64_t bytes;  /* their size */
    uint64_t ledger; /* movements in the ledger */
    uint64_t last_seq;
    uint64_t first_seq;
    uint64_t subscriptions;
    uint64_t subscribers_cut;
    uint64_t waiters;
    uint64_t store_commits; /* LMDB transactions that stored events */
} events_stats_t;
void events_stats_get(const events_t *events, events_stats_t *out);

/* The handlers' side (net/handlers_events.c). */
struct command_call;
int events_handle_read(events_t *events, struct command_call *call);
int events_handle_subscribe(events_t *events, struct command_call *call);
int events_handle_unsubscribe(events_t *events, struct command_call *call);
int events_handle_ledger(events_t *events, struct command_call *call);

#endif
