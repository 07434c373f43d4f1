/* events_private.h - the change stream's state in the server, shared by net/events.c,
 * net/events_push.c and net/handlers_events.c only. Not part of any contract (events.h is). */
#ifndef ALLOT_NET_EVENTS_PRIVATE_H
#define ALLOT_NET_EVENTS_PRIVATE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/stream.h"
#include "events.h"
#include "log.h"

struct event_store;
struct connection;

/* A change waiting for its record to be durable; its bytes at offset in events->values. */
typedef struct pending_event {
    uint64_t seq;
    uint64_t lsn;
    int64_t at_ms;
    size_t offset;
    uint32_t len;
    uint8_t type;
} pending_event_t;

/* A movement of on_hand waiting likewise; its strings in events->strings. */
typedef struct pending_move {
    uint64_t seq;
    uint64_t lsn;
    int64_t at_ms;
    int64_t delta;
    int64_t on_hand;
    const char *reason;
    size_t sku, location, ref;
    uint8_t sku_len, location_len, ref_len;
} pending_move_t;

/* A filter whose strings live with it. */
typedef struct events_filter_copy {
    events_filter_t filter;
    char sku[ALLOT_ID_BYTES_MAX], order[ALLOT_ID_BYTES_MAX], customer[ALLOT_ID_BYTES_MAX];
} events_filter_copy_t;

/* A long poll: events.read that found nothing and waits. */
typedef struct events_waiter {
    struct connection *conn;
    uint32_t msgid;
    uint32_t limit;
    uint64_t after;
    uint64_t deadline_ms; /* uv_now() */
    events_filter_copy_t filter;
} events_waiter_t;

typedef struct events_subscription {
    uint64_t id;
    struct connection *conn; /* NULL: dropped, removed after the push in progress */
    uint32_t types;          /* bit per type; every bit when no types were given */
    uint32_t sku_count;      /* 0: every SKU */
    allot_str_t *skus;       /* sorted (bytes, then length); copies in sku_bytes */
    char *sku_bytes;
} events_subscription_t;

typedef struct events_listener {
    events_listener_cb cb;
    void *ctx;
} events_listener_t;

struct events {
    struct server *server;
    struct allot_state *state;
    struct event_store *store;
    events_config_t config;
    uint64_t skip_lsn;      /* records up to it have their events stored */
    uint64_t durable_lsn;   /* the last events_durable: pending events up to it may be stored */
    uint64_t store_commits; /* transactions that stored events (stats) */
    bool pushing_stored;    /* handing stored events to subscribers, long polls, listeners */
    bool replaying;
    msgpack_sbuffer values; /* pending events' bytes */
    pending_event_t *pending;
    uint32_t pending_count, pending_capacity;
    msgpack_sbuffer strings; /* pending movements' strings */
    pending_move_t *moves;
    uint32_t move_count, move_capacity;
    uint64_t lost; /* changes that could not be kept (out of memory) */
    log_limit_t store_log;
    /* long polls */
    events_waiter_t *waiters; /* ALLOT_EVENTS_WAITERS_MAX, allocated on first use */
    uint32_t waiter_count;
    /* subscriptions: all, and per type those that take it */
    events_subscription_t **subscriptions;
    uint32_t subscription_count, subscription_capacity;
    events_subscription_t **by_type[ALLOT_CHANGE_TYPE_LIMIT];
    uint32_t by_type_count[ALLOT_CHANGE_TYPE_LIMIT];
    bool pushing, dropped_during_push;
    uint64_t next_subscription_id;
    uint64_t subscribers_cut;
    msgpack_sbuffer notification; /* one event as a notification */
    msgpack_sbuffer read_map;     /* events.read: one event's whole map (a version 2 value) */
    events_listener_t listeners[EVENTS_LISTENERS_MAX];
    uint32_t listener_count;
    uint64_t trim_next_ms; /* uv_now() */
};

/* events.c */
/* Append the change's stored bytes (the layout in events.c's header comment) to out; false, out
 * as it was, when memory ran out. */
bool events_change_pack(msgpack_sbuffer *out, const allot_change_t *change);
/* Append the event's whole map as clients see it to out, from a stored value that
 * events_value_match accepted (value, and the map it found) with the event's seq and at_ms;
 * false, out as it was, when memory ran out. */
bool events_map_append(const uint8_t *value, const uint8_t *map, size_t map_len, uint64_t seq,
                       int64_t at_ms, msgpack_sbuffer *out);
int events_store_pending(events_t *events, uint64_t upto_lsn);
/* Park a read that found nothing until events come or wait_ms passes (conn's deferred_count
 * counts it). ALLOT_EOVERLOADED when ALLOT_EVENTS_WAITERS_MAX wait. */
int events_wait(events_t *events, struct connection *conn, uint32_t msgid, uint64_t after,
                const events_filter_t *filter, uint32_t limit, uint64_t wait_ms);
void events_waiters_wake(events_t *events);
/* Does the stored event (its bytes after at_ms) pass the filter? *map: its MessagePack map as
 * stored (events_map_append gives it whole). */
bool events_value_match(const uint8_t *value, size_t len, const events_filter_t *filter,
                        uint8_t *type, allot_str_t *sku, const uint8_t **map, size_t *map_len);

/* events_push.c */
void events_push(events_t *events, const pending_event_t *pending, uint32_t count);
void events_subscriptions_drop(events_t *events, struct connection *conn);
void events_subscriptions_free(events_t *events);
int events_subscribe(events_t *events, struct connection *conn, uint32_t types,
                     const allot_str_t *skus, uint32_t sku_count, uint64_t *id);
int events_unsubscribe(events_t *events, struct connection *conn, uint64_t id);

/* handlers_events.c: answer a waiter with what it finds now; waiter->conn is set to NULL once
 * answered (something matched, or its wait ended), else waiter->after moves past what it saw. */
void events_waiter_answer(events_t *events, events_waiter_t *waiter, bool final);

#endif
