/* supply_private.h - what the files of core/supply/ share (the supply records, the index by id
 * and each SKU's supplies in eta order), and what the rest of core calls on them: life cycle,
 * checkpoint records, dump and the invariants.
 *
 * Contract: included by the files of core/supply/, by core/state/ (life cycle, dump,
 * invariants), by core/reservation/ (the apply of backorder holds moves held) and by core/order/
 * (an order's backordered units move held); never outside core/. Functions named *_reserve may fail
 * with ALLOT_ENOMEM and make the matching infallible ones safe; the rest cannot fail. Everything
 * assumes validated input.
 */
#ifndef ALLOT_CORE_SUPPLY_PRIVATE_H
#define ALLOT_CORE_SUPPLY_PRIVATE_H

#include <stdio.h>

#include "core/supply.h"
#include "core/state_private.h"

/* One supply. Its slot does not change while it exists (an evicted supply frees it). */
typedef struct supply {
    int64_t qty;
    int64_t received;
    int64_t held;
    int64_t eta_ms;
    int64_t updated_ms; /* the time of the record that last changed it */
    uint32_t sku;       /* SKU index */
    uint32_t location;  /* location index */
    uint32_t hash;      /* of the id */
    uint32_t owner;     /* the slot of its SKU's list (supply_sku_t) */
    uint8_t state;      /* allot_supply_state_t */
    uint8_t id_len;
    uint8_t dirty; /* checkpoint marks (core/state_private.h) */
    bool used;     /* false: a free slot */
    char id[ALLOT_ID_BYTES_MAX + 1];
} supply_t;

/* One SKU's supplies: slots sorted by (eta_ms, id), whatever their state. */
typedef struct supply_sku {
    uint32_t sku;
    uint32_t hash;
    allot_u32_vec_t slots;
} supply_sku_t;

typedef struct supply_store {
    supply_t *supplies; /* by slot */
    uint32_t slots;     /* high-water mark of used slots */
    uint32_t capacity;
    uint32_t count; /* supplies (used slots) */
    allot_u32_vec_t free;
    allot_hash_t index; /* hash of the id -> slot */
    supply_sku_t *skus; /* by owner slot, never freed */
    uint32_t sku_count;
    uint32_t sku_capacity;
    allot_hash_t sku_index; /* hash of the SKU index -> owner slot */
} supply_store_t;

/* ---- life cycle and checkpoint records (supply_store.c, supply_snapshot.c) ---------------- */
int supply_init(allot_state_t *state);
void supply_free_all(allot_state_t *state);
uint32_t supply_snapshot_slots(const allot_state_t *state);
uint8_t *supply_snapshot_marks(allot_state_t *state, uint32_t index);
int supply_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                         allot_str_t *id);

/* ---- event records (supply_codec.c, supply_apply.c): the rows of core/events.def ---------- */
ALLOT_EVENTS_SUPPLY(ALLOT_EVENT_DECLARE)

/* ---- the writers' checks (supply.c) -------------------------------------------------------- */
/* INVALID_ARGUMENT naming field unless id is 1..128 bytes of UTF-8. */
int supply_id_check(allot_str_t id, const char *field, allot_error_detail_t *detail);
/* The supply named id (its slot), or NOT_FOUND. */
int supply_lookup(const allot_state_t *state, allot_str_t id, uint32_t *slot,
                  allot_error_detail_t *detail);
/* INVALID_TRANSITION: the supply is not open (its state named). */
int supply_not_open(const supply_t *x, allot_error_detail_t *detail);

/* ---- a receipt's own part (supply_apply.c) ------------------------------------------------- *
 * The apply of SUPPLY_RECEIVE is core/order/order_receipt.c's (its units serve the backorders of
 * orders and holds, rooms above this one): it calls these for the supply and its position. The
 * prepare checks the record against the supply (version 1: not past the units nothing holds) and
 * makes room; the commit counts the units received and sets the position's on_hand. */
int supply_receipt_prepare(allot_state_t *state, const allot_event_supply_t *e);
void supply_receipt_commit(allot_state_t *state, const allot_event_supply_t *e);
/* Likewise the apply of SUPPLY_CANCEL is core/order/order_displace.c's (the backorders on the
 * supply move or are released): the prepare checks the record against the supply (version 1:
 * nothing holds it) and makes room; the commit marks the supply cancelled. */
int supply_cancel_prepare(allot_state_t *state, const allot_event_supply_t *e);
void supply_cancel_commit(allot_state_t *state, const allot_event_supply_t *e);
/* And the apply of SUPPLY_PUT (a delay moves the backorders on the supply to supply due
 * earlier): the prepare checks the record and makes room; the commit creates or updates. */
int supply_put_prepare(allot_state_t *state, const allot_event_supply_t *e);
void supply_put_commit(allot_state_t *state, const allot_event_supply_t *e);

/* ---- the store (supply_store.c) ------------------------------------------------------------ */
/* The supply's slot, or ALLOT_SLOT_NONE. */
uint32_t supply_find(const allot_state_t *state, allot_str_t id);
/* The owner slot of the SKU's list (SKU index), or ALLOT_SLOT_NONE. */
uint32_t supply_sku_find(const allot_state_t *state, uint32_t sku);
/* The supply a new one of the SKU (index) evicts to stay within the bounds: when the SKU has
 * ALLOT_SUPPLIES_PER_SKU_MAX supplies, or the state ALLOT_SUPPLIES_MAX, its ended (received or
 * cancelled) supply that ended first (updated_ms, then id). ALLOT_SLOT_NONE when none needs to
 * go; *full set when one must but every supply of the SKU is open (TOO_LARGE). */
uint32_t supply_evictee(const allot_state_t *state, uint32_t sku, bool *full);
/* Room for one more supply of the SKU (index), and to evict one; then supply_evict and
 * supply_add are infallible. */
int supply_add_reserve(allot_state_t *state, uint32_t sku);
/* Delete the supply (recorded as deleted for the checkpoint); its slot is free. */
void supply_evict(allot_state_t *state, uint32_t slot);
/* A new open supply (id not present), placed in its SKU's eta order; marked dirty. */
uint32_t supply_add(allot_state_t *state, allot_str_t id, uint32_t sku, uint32_t location,
                    int64_t qty, int64_t eta_ms);
/* A supply's eta changed: move it to its place in its SKU's list. */
void supply_eta_set(allot_state_t *state, uint32_t slot, int64_t eta_ms);
/* Units an order's backorders take on (delta > 0) or give back to (delta < 0) the supply with
 * this id: its held moves (never below 0), marked dirty first; room made by the caller's prepare
 * (allot_u32_vec_reserve of the SUPPLY dirty vector). A supply that is gone changes nothing (only
 * after an inconsistent snapshot; never live). */
void supply_held_add(allot_state_t *state, allot_str_t id, int64_t delta);
/* The supply as get/list answer it. */
void supply_view_fill(const allot_state_t *state, uint32_t slot, allot_supply_view_t *out);
/* Mark before changing (core/state_private.h). */
static inline void supply_dirty(allot_state_t *state, uint32_t slot)
{
    state_dirty_mark(state, STATE_KEY_SUPPLY, slot, &state->supply->supplies[slot].dirty);
}

/* ---- text dump (supply_store.c): every supply by SKU in eta order ------------------------- */
int supply_dump(const allot_state_t *state, FILE *out);
/* ---- invariants (supply_store.c): counters and lists consistent; a message on failure ----- *
 * (that held is what the backorder holds on each supply sum to: core/state/invariants.c) */
int supply_check_invariants(const allot_state_t *state, char *msg, size_t msg_bytes);

#endif
