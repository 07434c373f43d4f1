/* stream_private.h - the change stream room's state and its functions that core/state/ and
 * core/event/apply.c call. Not part of any contract (core/stream.h is).
 */
#ifndef ALLOT_CORE_STREAM_PRIVATE_H
#define ALLOT_CORE_STREAM_PRIVATE_H

#include <stdio.h>

#include "core/state_private.h"
#include "core/stream.h"

/* One consumer's cursor. */
typedef struct stream_consumer {
    uint64_t seq;
    int64_t at_ms;
    uint8_t name_len;
    uint8_t dirty; /* checkpoint marks */
    char name[ALLOT_ID_BYTES_MAX + 1];
} stream_consumer_t;

/* A position before the record was committed. */
typedef struct stream_before {
    uint32_t sku;
    uint32_t location;
    int64_t on_hand, reserved, allocated, safety_stock;
} stream_before_t;

/* Coalescing memory of avail.changed, per SKU index. */
typedef struct stream_avail {
    int64_t emitted_ms; /* INT64_MIN: never */
    int64_t emitted;    /* the value the last avail.changed had */
    bool owed;
} stream_avail_t;

/* An order a receipt serves, before the record was committed (core/order/order_receipt.c). */
typedef struct stream_receipt_order {
    uint32_t slot;
    uint32_t shipment_count;
    uint8_t state;
} stream_receipt_order_t;
/* Orders of one receipt whose changes the stream derives (each gives two). */
#define STREAM_RECEIPT_ORDERS_MAX (ALLOT_CHANGES_PER_RECORD_MAX / 2)

/* A shipment before the record was committed. */
typedef struct stream_shipment_before {
    uint8_t state;
} stream_shipment_before_t;

typedef struct stream_state {
    allot_change_cb cb;
    void *ctx;
    uint64_t lsn;     /* of the record being applied */
    uint32_t index;   /* next change's index within it */
    int64_t clock_ms; /* the latest record time applied */
    uint64_t dropped;
    /* consumers */
    stream_consumer_t *consumers;
    uint32_t consumer_count;
    /* the record being applied: the SKUs it touches and their positions before */
    allot_str_t skus[2 * ALLOT_LINES_MAX];
    uint32_t sku_count;
    int64_t low_stock_before[2 * ALLOT_LINES_MAX]; /* per SKU above; -1: not captured */
    uint32_t sku_indices[2 * ALLOT_LINES_MAX];     /* per SKU above; ALLOT_SKU_NONE: none before */
    stream_before_t *before;
    uint32_t before_count, before_capacity;
    allot_change_line_t lines[ALLOT_LINES_MAX]; /* a hold's lines before a release */
    uint32_t line_count;
    allot_str_t hold_id; /* the hold those lines are of (copy in hold_id_bytes) */
    char hold_id_bytes[ALLOT_ID_BYTES_MAX];
    char line_sku_bytes[ALLOT_LINES_MAX][ALLOT_ID_BYTES_MAX];
    int64_t supply_eta_before; /* supply records: the supply's eta before (INT64_MIN: new) */
    uint8_t order_state;       /* the order's state before */
    bool order_known;
    uint32_t shipment_count;
    stream_shipment_before_t shipments[ALLOT_ORDER_SHIPMENTS_MAX];
    stream_receipt_order_t receipt_orders[STREAM_RECEIPT_ORDERS_MAX]; /* a receipt serves them */
    uint32_t receipt_order_count;
    /* avail.changed coalescing */
    stream_avail_t *avail;
    uint32_t avail_capacity;
    allot_u32_vec_t owed; /* SKU indices owed an avail.changed, oldest first */
    uint32_t owed_head;
} stream_state_t;

int stream_init(allot_state_t *state);
void stream_free_all(allot_state_t *state);

/* Around the commit of every applied record (core/event/apply.c): before captures what the
 * changes compare against, after derives and hands them to the observer. */
void stream_record_before(allot_state_t *state, const allot_event_t *event);
void stream_record_after(allot_state_t *state, const allot_event_t *event);

/* Every consumer's cursor as text sorted by name (allot_state_dump). */
void consumer_dump(const allot_state_t *state, FILE *out);

/* Consumers as checkpoint records (the kind CONSUMER of core/events.def). */
uint32_t consumer_snapshot_slots(const allot_state_t *state);
uint8_t *consumer_snapshot_marks(allot_state_t *state, uint32_t index);
int consumer_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                           allot_str_t *id);

ALLOT_EVENTS_STREAM(ALLOT_EVENT_DECLARE)

#endif
