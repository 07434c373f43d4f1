/* reservation_private.h - what the files of core/reservation/ share: the records' slab, index and
 * heaps, the apply, and the consumption of a hold by order.create.
 *
 * Contract: included by the files of core/reservation/, by core/order/ (order.create consumes a
 * hold) and by core/state/ (life cycle); never outside core/. Everything here assumes the caller
 * already validated its input. Functions named *_reserve or *_prepare may fail (ALLOT_ENOMEM; a
 * prepare also ALLOT_ECORRUPT for a record that does not fit the state) and make the matching
 * infallible ones safe.
 */
#ifndef ALLOT_CORE_RESERVATION_PRIVATE_H
#define ALLOT_CORE_RESERVATION_PRIVATE_H

#include "core/reservation.h"
#include "core/state_private.h"

/* ---- records (reservation_store.c) --------------------------------------------------------- */
int reservation_init(allot_state_t *state);
void reservation_free_all(allot_state_t *state);
/* The slot of the reservation (live or tombstone) with this id, or ALLOT_SLOT_NONE. */
uint32_t reservation_slot_find(const allot_state_t *state, allot_str_t id);
/* The same, for hash == allot_hash_bytes(id): a caller that prefetched the id's slot
 * (reservation_slot_prefetch) hashes the id once. */
uint32_t reservation_slot_find_hashed(const allot_state_t *state, allot_str_t id, uint32_t hash);
/* Start loading the id hash's slot for `hash`: a new id's lookup misses the cache in a table of
 * millions of slots, and the load can overlap the work before the lookup. */
static inline void reservation_slot_prefetch(const allot_state_t *state, uint32_t hash)
{
    allot_hash_prefetch(&state->reservation_index, hash);
}
/* Room for one more record: a slot, its id hash and a place in either heap. New slots are taken
 * in order: once the slab is a mapping of huge pages it grows allot_pages_lead_items() before it
 * is full, and taking a new slot reports the fill (core/pages.h), so the pages ahead of it can be
 * faulted in off the loop. */
int reservation_slot_reserve(allot_state_t *state);
/* A new record for `id` (a short id is copied into it; a long one comes with its block). */
uint32_t reservation_slot_take(allot_state_t *state, allot_str_t id);
/* The same, for hash == allot_hash_bytes(id). */
uint32_t reservation_slot_take_hashed(allot_state_t *state, allot_str_t id, uint32_t hash);
/* Whether a hold with these parts keeps them all in its record (core/reservation.h). */
bool reservation_body_fits_inline(const allot_event_reservation_t *e);
/* A live hold's lines, for the apply that fills them in. */
static inline allot_reservation_line_t *reservation_lines_mut(allot_reservation_t *r)
{
    return (allot_reservation_line_t *)allot_reservation_lines(r);
}
static inline allot_reservation_allocation_t *reservation_allocations_mut(allot_reservation_t *r)
{
    return (allot_reservation_allocation_t *)allot_reservation_allocations(r);
}
/* End a hold's body (a tombstone keeps only its id); forget the block too (drop). */
void reservation_body_end(allot_reservation_t *r);
/* Forget a record entirely (it must be out of both heaps); record_deletion: for the checkpoint. */
void reservation_slot_drop(allot_state_t *state, uint32_t slot, bool record_deletion);
/* Make room for one more tombstone at at_ms: the count bound first, then aged-out ones, at most
 * ALLOT_EVICTIONS_PER_INSERT_MAX in all. */
void reservation_tombstone_evict(allot_state_t *state, int64_t at_ms);
/* Make room for building a live reservation event with this many allocations. */
int reservation_build_reserve(allot_state_t *state, uint32_t allocations);
/* Reservation records as checkpoint records (the kind RESERVATION of core/events.def). */
uint32_t reservation_snapshot_slots(const allot_state_t *state);
uint8_t *reservation_snapshot_marks(allot_state_t *state, uint32_t index);
int reservation_snapshot_take(allot_state_t *state, uint32_t slot, bool full, allot_bytes_t *out,
                              allot_str_t *id);
/* Mark a reservation changed, before changing it (core/state_private.h). */
static inline void reservation_dirty(allot_state_t *state, uint32_t slot)
{
    state_dirty_mark(state, STATE_KEY_RESERVATION, slot, &state->reservations[slot].dirty);
}

/* ---- event records (reservation_codec.c, reservation_apply.c): rows of core/events.def ---- */
ALLOT_EVENTS_RESERVATION(ALLOT_EVENT_DECLARE)

/* ---- consume (reservation_apply.c) --------------------------------------------------------- */
/* order.create from a reservation: check that `id` is a live hold (CORRUPT otherwise) and make
 * room; then consume it: its reserved units are released (they become the order's allocated
 * ones), it ends as released at at_ms, its daily-capacity count is kept. */
int reservation_consume_prepare(allot_state_t *state, allot_str_t id);
void reservation_consume_commit(allot_state_t *state, allot_str_t id, int64_t at_ms);

/* ---- receipts (reservation_apply.c; core/order/order_receipt.c applies supply.receive) ----- */
/* A receipt of the supply `supply` (received at `location`, an index) serves qty units of the
 * live hold at slot: its backorder allocations on that supply, in the hold's order, give them
 * up, and they become held at the location on the same line (added to the line's allocation
 * there, if it has one; allocations left with 0 units go). Builds the hold's new block, in the
 * layout the hold has (*block, with *allocation_count allocations); ALLOT_ENOMEM. The caller
 * makes room for the dirty marks of the commit (the hold, its SKU, the location). */
int reservation_receipt_prepare(allot_state_t *state, uint32_t slot, allot_str_t supply,
                                uint32_t location, int64_t qty, void **block,
                                uint32_t *allocation_count);
/* Install it: position (sku, location).reserved grows by qty (the position exists: the receipt
 * put its units there), the old block goes; a location the hold did not hold at before counts one
 * shipment of daily capacity when at_ms is on the UTC day of created_ms (as releasing it that
 * day gives back). The supply's held is the caller's to lower. */
void reservation_receipt_commit(allot_state_t *state, uint32_t slot, void *block,
                                uint32_t allocation_count, uint32_t sku, uint32_t location,
                                int64_t qty, int64_t at_ms);

/* ---- supply cancels (reservation_apply.c; core/order/order_displace.c applies supply.cancel) *
 * The open supplies the units of a cancelled supply move to, in the order they take them. */
typedef struct reservation_targets {
    allot_str_t ids[ALLOT_SUPPLIES_PER_SKU_MAX];
    uint32_t count;
} reservation_targets_t;
/* The live hold at slot gives up its backorder allocations on `supply`: line by line, in the
 * hold's order, the units go to the targets in turn within free_qty[] (consumed: what is left
 * for the next hold), merged into the line's allocation on a target if it has one; the rest is
 * released (*released; the line holds less, a line at 0 holds nothing), or, when released is
 * NULL (a supply delay), stays on `supply`. Builds the hold's new
 * block (*block, *allocation_count) and makes room for the commit; ALLOT_ENOMEM. */
int reservation_displace_prepare(allot_state_t *state, uint32_t slot, allot_str_t supply,
                                 const reservation_targets_t *targets, int64_t *free_qty,
                                 void **block, uint32_t *allocation_count, int64_t *released);
/* Install it: the supplies' held and the customer's units follow; a hold left holding nothing is
 * released as by reservation.release (a tombstone; the block is freed). */
void reservation_displace_commit(allot_state_t *state, uint32_t slot, void *block,
                                 uint32_t allocation_count, int64_t at_ms);

#endif
