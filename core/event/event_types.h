/* event_types.h - event records as data: the type byte and each payload, the codec, the names,
 * and the two callbacks records travel through (the event sink, checkpoint records).
 *
 * Contract: part of core/event.h's contract (read that first), split out because the state's
 * layout (core/state_private.h) and every room's codec and apply include it: what is declared
 * here needs nothing but the bytes (no state). Types come from the one table, core/events.def.
 * The byte format: core/event/codec.c (every payload) and the owners' codec files (each type's
 * fields). Errors: ALLOT_ECORRUPT (decode), ALLOT_ENOMEM. libc only.
 */
#ifndef ALLOT_CORE_EVENT_TYPES_H
#define ALLOT_CORE_EVENT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/events.def"
#include "core/promise.h"

struct allot_state;
struct allot_reader;
typedef struct allot_bytes allot_bytes_t;

#define ALLOT_EVENT_FORMAT_VERSION 1
/* Type bytes are 1..ALLOT_EVENT_TYPE_LIMIT - 1; tables indexed by type have this many entries. */
#define ALLOT_EVENT_TYPE_LIMIT 128

#define ALLOT_EVENT_ENUM(number, NAME, ...) ALLOT_EVENT_##NAME = (number),
typedef enum allot_event_type { ALLOT_EVENT_TABLE(ALLOT_EVENT_ENUM) } allot_event_type_t;
#undef ALLOT_EVENT_ENUM

/* "location.put", ... from the table ("unknown" otherwise), for tools that print WAL records. */
const char *allot_event_type_name(uint8_t type);

typedef struct allot_event_location {
    allot_str_t id;
    uint8_t type;
    bool ship;
    bool pickup;
    bool active;
    double lat;
    double lon;
    int64_t priority;
    double same_day_radius_km;
    int64_t daily_capacity;
    int64_t capacity_day;   /* snapshot only */
    int64_t capacity_count; /* snapshot only */
    allot_calendar_t calendar;
} allot_event_location_t;

/* TRANSIT_SET and TRANSIT_SNAPSHOT: one method's bands (core/promise.h). */
typedef struct allot_event_transit {
    uint8_t method; /* allot_method_t */
    allot_transit_t transit;
} allot_event_transit_t;

typedef struct allot_event_stock_set {
    allot_str_t sku;
    allot_str_t location;
    int64_t on_hand;
    int64_t safety_stock;
    int64_t as_of_ms; /* the position's as_of_ms after the set (ALLOT_AS_OF_NONE = none) */
} allot_event_stock_set_t;

typedef struct allot_event_stock_adjust {
    allot_str_t sku;
    allot_str_t location;
    int64_t delta;
    int64_t on_hand_after;
    int64_t at_ms;
    allot_str_t key; /* len 0 = none */
} allot_event_stock_adjust_t;

typedef struct allot_event_allocation {
    allot_str_t location; /* supply: the supply's id (a backorder hold) */
    int64_t qty;
    bool supply;
} allot_event_allocation_t;

typedef struct allot_event_line {
    allot_str_t sku;
    int64_t qty_requested;
    uint32_t allocation_first;
    uint32_t allocation_count;
} allot_event_line_t;

/* create / replace (the new hold) / snapshot */
typedef struct allot_event_reservation {
    allot_str_t id;
    uint8_t status; /* snapshot only (create: active) */
    uint64_t request_hash;
    int64_t created_ms;
    int64_t expires_at_ms;
    int64_t ended_ms;     /* snapshot only */
    int64_t at_ms;        /* replace only: when the old hold was released */
    allot_str_t customer; /* len 0 = none */
    uint64_t ticket;      /* create / replace: the queue ticket whose token it uses; 0 = none */
    uint32_t line_count;
    allot_event_line_t lines[ALLOT_LINES_MAX];
    uint32_t allocation_count;
    allot_event_allocation_t *allocations;
} allot_event_reservation_t;

typedef struct allot_event_extend {
    allot_str_t id;
    int64_t expires_at_ms;
    int64_t at_ms;
} allot_event_extend_t;

typedef struct allot_event_release {
    allot_str_t id;
    uint8_t reason; /* allot_release_reason_t: released or expired */
    int64_t at_ms;
} allot_event_release_t;

typedef struct allot_event_position {
    allot_str_t location;
    int64_t on_hand;
    int64_t reserved;
    int64_t allocated;
    int64_t safety_stock;
    int64_t as_of_ms;
} allot_event_position_t;

typedef struct allot_event_sku_snapshot {
    allot_str_t sku;
    uint32_t position_count;
    allot_event_position_t *positions;
} allot_event_sku_snapshot_t;

typedef struct allot_event_adjust_key {
    allot_str_t key;
    allot_str_t sku;
    allot_str_t location;
    int64_t delta;
    int64_t at_ms;
    int64_t on_hand;
    int64_t reserved;
    int64_t allocated;
    int64_t safety_stock;
    int64_t available;
} allot_event_adjust_key_t;

/* ---- SKU settings and queues (core/sale.h) ---------------------------------------------- */
/* SKU_PUT and SKU_SETTINGS_SNAPSHOT (which adds the queue's accounting). */
typedef struct allot_event_sku_settings {
    allot_str_t sku;
    int64_t low_stock;
    int64_t max_per_customer;
    bool has_queue;
    int64_t rate_per_s;
    int64_t token_ttl_s;
    int64_t at_ms;            /* put only */
    int64_t admitted_upto_ms; /* snapshot only */
    uint64_t admitted_total;  /* snapshot only */
} allot_event_sku_settings_t;

typedef struct allot_event_queue_join {
    allot_str_t sku;
    allot_str_t customer;
    uint64_t ticket;
    int64_t at_ms;
} allot_event_queue_join_t;

typedef struct allot_event_queue_admit {
    allot_str_t sku;
    uint32_t count;
    uint64_t seed;
    int64_t at_ms;
    int64_t expires_at_ms;
    int64_t admitted_upto_ms;
} allot_event_queue_admit_t;

typedef struct allot_event_queue_expire {
    uint64_t ticket;
    int64_t at_ms;
} allot_event_queue_expire_t;

typedef struct allot_event_queue_ticket {
    uint64_t ticket;
    allot_str_t sku;
    allot_str_t customer;
    uint8_t state; /* allot_ticket_state_t */
    int64_t joined_ms;
    int64_t expires_at_ms;
    uint64_t secret;
} allot_event_queue_ticket_t;

/* ---- future supply (core/supply.h) ------------------------------------------------------- */
/* SUPPLY_PUT, SUPPLY_RECEIVE, SUPPLY_CANCEL and SUPPLY_SNAPSHOT. Fields unused by a type are
 * zero / empty (core/supply/supply_codec.c says which type carries which). */
typedef struct allot_event_supply {
    allot_str_t id;
    allot_str_t sku;       /* put, receive, snapshot */
    allot_str_t location;  /* put, receive, snapshot */
    int64_t qty;           /* put, snapshot: the total expected; receive: the units received */
    int64_t received;      /* snapshot */
    int64_t held;          /* snapshot: units backorder holds hold on it */
    int64_t eta_ms;        /* put, snapshot */
    int64_t on_hand_after; /* receive: the position's on_hand after it */
    int64_t at_ms;         /* put, receive, cancel; snapshot: when it last changed */
    uint8_t state;         /* snapshot: allot_supply_state_t */
    bool serves; /* receive (version 2): the units serve the supply's backorders first; cancel
                    (version 2): the backorders on it move or are released; put (version 2):
                    a delay, the backorders on it move to supply due before the new eta */
} allot_event_supply_t;

/* ---- orders (core/order.h) -------------------------------------------------------------- */
#define ALLOT_EVENT_SHIPMENT_NONE 0xFFFFu

typedef struct allot_event_item {
    allot_str_t sku;
    int64_t qty;
} allot_event_item_t;

typedef struct allot_event_shipment {
    allot_str_t location;
    allot_str_t tracking; /* len 0 = none */
    allot_str_t reason;   /* why it was rejected; len 0 = none */
    uint8_t state;        /* allot_shipment_state_t */
    uint32_t item_first;  /* into the order's items */
    uint32_t item_count;
} allot_event_shipment_t;

typedef struct allot_event_return {
    allot_str_t id;
    allot_str_t location; /* where it was received; len 0 = not yet */
    allot_str_t reason;   /* len 0 = none */
    allot_str_t label;
    uint64_t request_hash;
    int64_t created_ms;
    int64_t received_ms; /* 0 = not yet */
    uint8_t state;       /* allot_return_state_t */
    uint8_t disposition; /* allot_disposition_t */
    uint32_t item_first; /* into the order's items */
    uint32_t item_count;
} allot_event_return_t;

/* Units of an order line still waiting for future supply (core/supply.h): held on the supply
 * `supply` (its held counts them) until it is received or the order ends. */
typedef struct allot_event_backorder {
    allot_str_t supply;
    int64_t qty;
    uint32_t line; /* index into the order's lines */
} allot_event_backorder_t;

typedef struct allot_event_history {
    int64_t at_ms;
    uint8_t event;     /* allot_order_event_t */
    uint8_t arg;       /* payment (pay), disposition (return.receive), field mask (modify) */
    uint16_t shipment; /* index, or ALLOT_EVENT_SHIPMENT_NONE */
    allot_str_t text;  /* reason / tracking / return id; len 0 = none */
} allot_event_history_t;

/* ORDER_CREATE and ORDER_SNAPSHOT: a whole order. Also the read-only view of an order that
 * core/order.h hands out (allot_order_view_t). */
typedef struct allot_event_order {
    allot_str_t id;
    allot_str_t customer;     /* len 0 = none */
    allot_str_t reservation;  /* create only: the consumed reservation; len 0 = from lines */
    allot_str_t location;     /* requested pickup/fixed location; len 0 = none */
    allot_str_t instructions; /* len 0 = none */
    allot_str_t address;      /* one MessagePack map, opaque; len 0 = none */
    uint64_t request_hash;
    int64_t created_ms;
    int64_t ended_ms;   /* when it became delivered/cancelled with no open return; 0 = not */
    uint8_t state;      /* allot_order_state_t */
    uint8_t payment;    /* allot_payment_t */
    uint8_t entered_by; /* allot_order_event_t that produced the current state */
    uint8_t method;     /* allot_method_t */
    uint8_t policy;     /* allot_policy_t */
    bool has_ship_to;
    bool archived; /* snapshot only: evicted from memory, kept in the checkpoint store */
    double lat;
    double lon;
    uint32_t line_count;
    uint32_t shipment_count;
    uint32_t item_count;
    uint32_t return_count;
    uint32_t history_count;
    uint32_t backorder_count;
    allot_event_item_t *lines;
    allot_event_shipment_t *shipments;
    allot_event_item_t *items; /* shipment and return items */
    allot_event_return_t *returns;
    allot_event_history_t *history;
    allot_event_backorder_t *backorders; /* by line, then in the hold's order (earliest eta) */
} allot_event_order_t;

/* Every other order event. Fields unused by a type are zero / empty. */
typedef struct allot_event_order_change {
    allot_str_t id; /* the order */
    int64_t at_ms;
    uint16_t shipment;        /* reject/ship/deliver: index; else ALLOT_EVENT_SHIPMENT_NONE */
    uint8_t arg;              /* pay: payment; modify: field mask; return.receive: disposition */
    uint8_t method;           /* modify (mask bit 2) */
    allot_str_t text;         /* hold/cancel/reject: reason; ship: tracking; return.*: return id */
    allot_str_t address;      /* modify (mask bit 0) */
    allot_str_t instructions; /* modify (mask bit 1) */
    allot_str_t location;     /* return.receive */
    /* reject: the new shipments; return.create: the return (its items in items) */
    uint32_t shipment_count;
    uint32_t item_count;
    allot_event_shipment_t *shipments;
    allot_event_item_t *items;
    allot_event_return_t ret;
} allot_event_order_change_t;

/* ---- the change stream (core/stream.h) ---------------------------------------------------- */
/* EVENTS_ACK and CONSUMER_SNAPSHOT: a consumer's acknowledged cursor. */
typedef struct allot_event_consumer {
    allot_str_t name;
    uint64_t seq;
    int64_t at_ms;
} allot_event_consumer_t;

/* EVENTS_TICK: time passed (coalesced avail.changed that came due). */
typedef struct allot_event_tick {
    int64_t at_ms;
} allot_event_tick_t;

typedef struct allot_event {
    uint8_t type;
    union {
        allot_event_location_t location;
        allot_event_stock_set_t stock_set;
        allot_event_stock_adjust_t stock_adjust;
        allot_event_reservation_t reservation;
        allot_event_extend_t extend;
        allot_event_release_t release;
        allot_event_sku_snapshot_t sku_snapshot;
        allot_event_adjust_key_t adjust_key;
        allot_event_order_t order;
        allot_event_order_change_t change;
        allot_event_consumer_t consumer;
        allot_event_tick_t tick;
        allot_event_sku_settings_t sku_settings;
        allot_event_queue_join_t queue_join;
        allot_event_queue_admit_t queue_admit;
        allot_event_queue_expire_t queue_expire;
        allot_event_queue_ticket_t queue_ticket;
        allot_event_transit_t transit;
        allot_event_supply_t supply;
    } u;
} allot_event_t;

/* Growable arrays that decoded variable-length parts point into. */
typedef struct allot_event_scratch {
    allot_event_allocation_t *allocations;
    uint32_t allocation_capacity;
    allot_event_position_t *positions;
    uint32_t position_capacity;
    /* orders */
    allot_event_item_t *items;
    uint32_t item_capacity;
    allot_event_shipment_t *shipments;
    uint32_t shipment_capacity;
    allot_event_return_t *returns;
    uint32_t return_capacity;
    allot_event_history_t *history;
    uint32_t history_capacity;
    allot_event_backorder_t *backorders;
    uint32_t backorder_capacity;
} allot_event_scratch_t;

void allot_event_scratch_free(allot_event_scratch_t *scratch);

/* Receives every event record after it was checked and before it is applied. Returns 0, or a
 * negative ALLOT_E* (e.g. the log has no room) to refuse it: the event is then not applied and
 * the writer that emitted it returns that error with nothing changed. */
typedef int (*allot_event_sink_cb)(void *ctx, uint8_t type, const uint8_t *payload,
                                   size_t payload_len);

/* One checkpoint record. deleted: the object is gone (payload NULL, len 0; type says which
 * kind of snapshot the key held). */
typedef void (*allot_snapshot_cb)(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                                  const uint8_t *payload, size_t payload_len, bool deleted);

/* Append the payload of `event` (its version byte, then its owner's encoding) to out (out->len
 * is not reset). ALLOT_ENOMEM on failure, with out->len unchanged. */
int allot_event_encode(const allot_event_t *event, allot_bytes_t *out);

/* Decode a payload of `type`; string views point into payload, arrays into scratch.
 * ALLOT_ECORRUPT when it does not decode exactly (or the type is unknown), ALLOT_ENOMEM. */
int allot_event_decode(uint8_t type, const uint8_t *payload, size_t len,
                       allot_event_scratch_t *scratch, allot_event_t *event);

/* A time a record may hold (ms since the epoch): ALLOT_TIME_MS_MIN..ALLOT_TIME_MS_MAX. Decoders
 * refuse every other value of a time field as corrupt. */
bool allot_event_time_ok(int64_t ms);

/* Quantities a record may hold: 0..ALLOT_QUANTITY_MAX (on_hand, reserved, ...), and the amount
 * of a line or an allocation, 1..ALLOT_QUANTITY_MAX. */
static inline bool allot_event_quantity_ok(int64_t v)
{
    return v >= 0 && v <= ALLOT_QUANTITY_MAX;
}

static inline bool allot_event_amount_ok(int64_t v)
{
    return v >= 1 && v <= ALLOT_QUANTITY_MAX;
}

/* The owner's functions of a row of core/events.def, declared: a room's private header expands
 * its section with this (ALLOT_EVENTS_INVENTORY(ALLOT_EVENT_DECLARE)), so that its definitions
 * are checked against the signatures the dispatchers call them with. */
#define ALLOT_EVENT_DECLARE(number, NAME, name, member, payload, encode, decode, prepare, commit,  \
                            lookup)                                                                \
    int encode(const payload *e, allot_bytes_t *out);                                              \
    int decode(struct allot_reader *r, allot_event_scratch_t *s, payload *e);                      \
    int prepare(struct allot_state *state, const payload *e);                                      \
    void commit(struct allot_state *state, const payload *e);

/* The builder and the built record of allot_sku_snapshot_build / _install (core/event.h). */
#define ALLOT_SKU_BUILDER_MEMO 64

typedef struct allot_sku_builder {
    allot_event_scratch_t scratch;
    uint32_t location_memo[ALLOT_SKU_BUILDER_MEMO]; /* location index last found per ordinal */
} allot_sku_builder_t;

typedef struct allot_sku_build {
    allot_str_t sku;
    uint32_t sku_hash;
    uint32_t position_count;
    struct allot_position *positions; /* NULL when none */
} allot_sku_build_t;

#endif
