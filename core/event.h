/* event.h - event records: every change to the state, as facts that replay re-applies.
 *
 * Contract: a write in core/ decides, then emits event records; replay (persist/) hands the
 * same bytes to allot_event_apply_encoded(), which decodes them and runs the ONE apply function
 * used live. Apply never re-decides (sourcing results are inside the event). The byte format is
 * documented in core/event.c; every payload starts with ALLOT_EVENT_FORMAT_VERSION.
 * Decoding bounds-checks everything: a payload that does not decode exactly (wrong version,
 * truncated, trailing bytes, bad id, out-of-range value, unknown location/reservation it
 * refers to) -> ALLOT_ECORRUPT with nothing changed. Apply is two-phase internally: a prepare
 * step that may fail (CORRUPT/NOMEM, nothing changed) and an infallible commit, so that live
 * emission calls the event sink only for events that will be applied.
 * Snapshot types describe one whole object (checkpoints): applying them replaces the object.
 * Types 64 and above are reserved for orders. libc only.
 */
#ifndef ALLOT_CORE_EVENT_H
#define ALLOT_CORE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

struct allot_state;

#define ALLOT_EVENT_FORMAT_VERSION 1

typedef enum allot_event_type {
    ALLOT_EVENT_LOCATION_PUT = 1,
    ALLOT_EVENT_STOCK_SET = 2,
    ALLOT_EVENT_STOCK_ADJUST = 3,
    ALLOT_EVENT_RESERVATION_CREATE = 4,
    ALLOT_EVENT_RESERVATION_EXTEND = 5,
    ALLOT_EVENT_RESERVATION_RELEASE = 6,
    ALLOT_EVENT_RESERVATION_REPLACE = 7,
    ALLOT_EVENT_LOCATION_SNAPSHOT = 16,
    ALLOT_EVENT_SKU_SNAPSHOT = 17,
    ALLOT_EVENT_RESERVATION_SNAPSHOT = 18,
    ALLOT_EVENT_ADJUST_KEY_SNAPSHOT = 19,
    ALLOT_EVENT_ORDER_FIRST = 64, /* 64..127 reserved for orders */
} allot_event_type_t;

/* "location.put", ... ("unknown" otherwise), for tools that print WAL records. */
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
} allot_event_location_t;

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
    allot_str_t location;
    int64_t qty;
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
    int64_t ended_ms; /* snapshot only */
    int64_t at_ms;    /* replace only: when the old hold was released */
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
    } u;
} allot_event_t;

/* Growable arrays that decoded variable-length parts point into. */
typedef struct allot_event_scratch {
    allot_event_allocation_t *allocations;
    uint32_t allocation_capacity;
    allot_event_position_t *positions;
    uint32_t position_capacity;
} allot_event_scratch_t;

void allot_event_scratch_free(allot_event_scratch_t *scratch);

typedef struct allot_bytes allot_bytes_t;

/* Append the payload of `event` to out (out->len is not reset). ALLOT_ENOMEM on failure. */
int allot_event_encode(const allot_event_t *event, allot_bytes_t *out);

/* Decode a payload of `type`; string views point into payload, arrays into scratch.
 * ALLOT_ECORRUPT when it does not decode exactly, ALLOT_ENOMEM. */
int allot_event_decode(uint8_t type, const uint8_t *payload, size_t len,
                       allot_event_scratch_t *scratch, allot_event_t *event);

/* Replay: decode and apply one record. ALLOT_ECORRUPT (nothing changed) for garbage. */
int allot_event_apply_encoded(struct allot_state *state, uint8_t type, const uint8_t *payload,
                              size_t len);

/* Live path: encode, prepare, hand the bytes to the sink, commit. */
int allot_event_emit(struct allot_state *state, const allot_event_t *event);

#endif
