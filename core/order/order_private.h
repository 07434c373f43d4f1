/* order_private.h - what the files of core/order/ share (an order's storage, the indexes, the
 * apply's helpers), and what the rest of core calls on orders (life cycle, codec, apply,
 * checkpoint records, dump).
 *
 * Contract: included by the files of core/order/, and by core/state/ for the functions of the
 * first section (life cycle, checkpoint records, dump); never outside core/. Functions named
 * *_reserve may fail with ALLOT_ENOMEM and make the matching infallible ones safe;
 * order_text_copy and the *_copy helpers return {NULL, 0} / false when out of memory (they run
 * in prepare steps only).
 */
#ifndef ALLOT_CORE_ORDER_PRIVATE_H
#define ALLOT_CORE_ORDER_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/order/order_types.h"
#include "core/state_private.h"

/* Stable string storage of one order: chunks that never move (order_store.c). */
typedef struct order_text_chunk order_text_chunk_t;

/* One order in memory: `v` is its whole content (strings in `text`, arrays owned). */
typedef struct allot_order {
    allot_event_order_t v;
    order_text_chunk_t *text;
    uint32_t hash;
    uint32_t slot;
    uint32_t heap_position; /* ended heap, when in_heap */
    uint32_t line_capacity;
    uint32_t shipment_capacity;
    uint32_t item_capacity;
    uint32_t return_capacity;
    uint32_t history_capacity;
    uint32_t backorder_capacity;
    bool in_heap;
    uint8_t dirty; /* checkpoint marks (STATE_MARK_*) */
} allot_order_t;

typedef struct order_customer {
    char *id; /* NULL when the slot is free */
    uint32_t id_len;
    uint32_t hash;
    allot_u32_vec_t orders; /* order slots */
} order_customer_t;

/* ---- what core/state/ calls ------------------------------------------------------------------ */
int order_init(allot_state_t *state);
void order_free_all(allot_state_t *state);
uint32_t order_slot_find(const allot_state_t *state, allot_str_t id);
/* Orders as checkpoint records (the kind ORDER of core/events.def). */
uint32_t order_snapshot_slots(const allot_state_t *state);
uint8_t *order_snapshot_marks(allot_state_t *state, uint32_t index);
int order_snapshot_take(allot_state_t *state, uint32_t slot, bool full, allot_bytes_t *out,
                        allot_str_t *id);
/* Every order in memory, as text sorted by id (order_dump.c). */
void order_dump(const allot_state_t *state, FILE *out);

/* ---- event records (order_codec.c, order_apply.c): the rows of core/events.def ----------- */
ALLOT_EVENTS_ORDER(ALLOT_EVENT_DECLARE)

/* Mark an order changed, before changing it (core/state_private.h). */
static inline void order_dirty_mark(allot_state_t *state, uint32_t slot)
{
    state_dirty_mark(state, STATE_KEY_ORDER, slot, &state->orders[slot]->dirty);
}

/* ---- within the room ----------------------------------------------------------------------- */
/* storage of one order (order_store.c) */
allot_order_t *order_alloc(void);
void order_release(allot_order_t *order);
allot_str_t order_text_copy(allot_order_t *order, allot_str_t s);
/* Room for this many more shipments, items, returns and history entries. */
int order_room(allot_order_t *order, uint32_t shipments, uint32_t items, uint32_t returns,
               uint32_t history);
bool order_shipment_copy(allot_order_t *o, allot_event_shipment_t *dst,
                         const allot_event_shipment_t *src);
bool order_return_copy(allot_order_t *o, allot_event_return_t *dst,
                       const allot_event_return_t *src);
int order_build(const allot_event_order_t *src, uint32_t history_extra, allot_order_t **out);

/* indexes (order_store.c) */
uint32_t order_return_find(const allot_state_t *state, allot_str_t id, uint32_t *index);
uint32_t order_customer_find(const allot_state_t *state, allot_str_t customer);
int order_insert_reserve(allot_state_t *state, allot_str_t customer, uint32_t returns);
int order_remove_reserve(allot_state_t *state);
uint32_t order_insert(allot_state_t *state, allot_order_t *order);
void order_remove(allot_state_t *state, uint32_t slot);
bool order_is_ended(const allot_event_order_t *v);
void order_ended_update(allot_state_t *state, uint32_t slot);
int order_archived_append(allot_state_t *state, uint32_t slot);

/* writers' shared helpers (order.c) */
/* The live order with this id, or NOT_FOUND (field "id" or `field`). */
int order_live_find(allot_state_t *state, allot_str_t id, const char *field, uint32_t *slot,
                    allot_error_detail_t *detail);
/* Check `event` against the state table. 1: a no-op repeat (success, nothing to emit); 0: go on;
 * else INVALID_TRANSITION with detail->state set. */
int order_transition_check(const allot_event_order_t *v, uint8_t event,
                           allot_error_detail_t *detail);
int order_change_emit(allot_state_t *state, uint8_t type, const allot_event_order_change_t *c,
                      allot_error_detail_t *detail);
/* Room for building a live event with this many shipments and items. */
int order_build_reserve(allot_state_t *state, uint32_t shipments, uint32_t items);
/* INVALID_ARGUMENT unless s is at most ALLOT_TEXT_BYTES_MAX bytes of UTF-8. */
int order_text_check(allot_str_t s, const char *field, allot_error_detail_t *detail);

/* ---- receipts (order_receipt.c): a supply.receive serves the supply's backorders ---------- */
/* One order or hold a receipt serves, in the order served. */
typedef struct receipt_served {
    uint32_t slot;             /* the order's or the hold's */
    uint32_t allocation_count; /* holds: allocations of the new block */
    int64_t qty;               /* units served */
    allot_str_t location;      /* orders: the supply's location id, copied into the order */
    allot_str_t supply;        /* orders: the supply's id, copied into the order (history) */
    void *block;               /* holds: the new block (reservation_receipt_prepare) */
} receipt_served_t;

/* What a receipt serves: orders with backorders on the supply oldest first (created_ms, then
 * id), then live holds with backorder allocations on it oldest first (created_ms, then id), up to
 * min(qty, held); an order that cannot take one more shipment (ALLOT_ORDER_SHIPMENTS_MAX,
 * ALLOT_ORDER_ITEMS_MAX) is passed over. */
typedef struct order_receipt {
    receipt_served_t *orders;
    uint32_t order_count, order_capacity;
    receipt_served_t *holds;
    uint32_t hold_count, hold_capacity;
    int64_t served;   /* units served in all */
    int64_t unserved; /* held units the receipt passed over although it covered them */
} order_receipt_t;

/* The plan of receiving qty units of the supply at slot (state->receipt, reset first); with
 * `room`, also room for every change (the apply's prepare). 0, ALLOT_ENOMEM. */
int order_receipt_plan(allot_state_t *state, uint32_t supply_slot, int64_t qty, bool room);
void order_receipt_free(allot_state_t *state);
/* order_apply.c: the order of `served` takes its units as a new shipment at the supply's
 * location; its backorders on `supply` shrink by them (room made by order_receipt_plan). */
void order_receipt_serve(allot_state_t *state, const receipt_served_t *served, allot_str_t supply,
                         int64_t at_ms);
/* Every order and live hold waiting on `supply` into the plan, oldest first (qty = what waits). */
int order_receipt_collect(allot_state_t *state, order_receipt_t *plan, allot_str_t supply);
/* Empty the plan (the blocks it still owns are freed). */
void order_receipt_reset(order_receipt_t *plan);

/* ---- supply cancels (order_displace.c): the backorders on a cancelled supply move ---------- *
 * Its plan is the receipt's (state->receipt): orders and holds waiting on the supply, oldest
 * first; an order's entry has its new backorders in block (allocation_count of them), the units
 * it loses in qty and the cancel reason (copied into the order) in supply; a hold's entry has
 * its new block, and the units it releases in qty. */
/* order_apply.c: the order takes its new backorders; the units that could not move are cancelled
 * from its lines (a line left with none goes), or, when nothing is left to ship, the order is
 * cancelled as order.cancel would (its history says so with the reason); a released order that
 * no longer waits takes the state its shipments give (shipped, delivered). */
void order_displace_apply(allot_state_t *state, receipt_served_t *served, int64_t at_ms);

/* One sourced allocation: units of a SKU (index) at a location (index). */
typedef struct order_alloc {
    uint32_t sku;
    uint32_t location;
    int64_t qty;
} order_alloc_t;
/* One shipment per distinct location (first-seen order), items contiguous, built into the
 * state's build arrays and pointed to by e->shipments/items (TOO_LARGE over the bounds). */
int order_shipments_build(allot_state_t *state, const order_alloc_t *allocs, uint32_t n,
                          allot_event_order_t *e, allot_error_detail_t *detail);

#endif
