/* supply_apply.c - the one apply of the future-supply records (prepare may fail and changes
 * nothing but SKU interning; commit cannot fail). */
#include <assert.h>

#include "core/inventory/inventory_private.h"
#include "core/supply/supply_private.h"

/* Room for a new supply of the SKU (index) within the bounds, evicting an ended one if they
 * are reached (supply_evictee); CORRUPT when every supply of the SKU is open. */
static int new_supply_prepare(allot_state_t *state, uint32_t sku)
{
    bool full;
    (void)supply_evictee(state, sku, &full);
    return full ? ALLOT_ECORRUPT : supply_add_reserve(state, sku);
}

/* A new supply: the evictee goes first (the same one live and on replay). */
static uint32_t new_supply_commit(allot_state_t *state, const allot_event_supply_t *e)
{
    bool full;
    uint32_t evictee = supply_evictee(state, state->prepared_sku, &full);
    assert(!full);
    if (evictee != ALLOT_SLOT_NONE)
        supply_evict(state, evictee);
    return supply_add(state, e->id, state->prepared_sku, state->prepared_location, e->qty,
                      e->eta_ms);
}

/* The location and SKU a put or snapshot names: the location must exist, the SKU is interned. */
static int ids_prepare(allot_state_t *state, const allot_event_supply_t *e, uint32_t *sku)
{
    state->prepared_location = allot_location_index_find(state, e->location);
    if (state->prepared_location == ALLOT_LOCATION_NONE)
        return ALLOT_ECORRUPT;
    int rc = inventory_sku_intern(state, e->sku, sku);
    state->prepared_sku = *sku;
    return rc;
}

int supply_put_prepare(allot_state_t *state, const allot_event_supply_t *e)
{
    uint32_t sku;
    int rc = ids_prepare(state, e, &sku);
    if (rc != 0)
        return rc;
    uint32_t slot = supply_find(state, e->id);
    if (slot == ALLOT_SLOT_NONE)
        return new_supply_prepare(state, sku);
    const supply_t *x = &state->supply->supplies[slot];
    if (x->sku != sku || x->state != ALLOT_SUPPLY_OPEN || e->qty < x->received + x->held ||
        (x->received > 0 && x->location != state->prepared_location))
        return ALLOT_ECORRUPT;
    return allot_u32_vec_reserve(&state->dirty[STATE_KEY_SUPPLY], 1);
}

void supply_put_commit(allot_state_t *state, const allot_event_supply_t *e)
{
    uint32_t slot = supply_find(state, e->id);
    if (slot == ALLOT_SLOT_NONE)
        slot = new_supply_commit(state, e);
    supply_dirty(state, slot); /* before the change (checkpoint pre-image) */
    supply_t *x = &state->supply->supplies[slot];
    x->qty = e->qty;
    x->location = state->prepared_location;
    x->updated_ms = e->at_ms;
    supply_eta_set(state, slot, e->eta_ms);
    if (x->received == x->qty)
        x->state = ALLOT_SUPPLY_RECEIVED; /* lowered to what arrived: nothing more comes */
}

int supply_receipt_prepare(allot_state_t *state, const allot_event_supply_t *e)
{
    uint32_t slot = supply_find(state, e->id);
    if (slot == ALLOT_SLOT_NONE)
        return ALLOT_ECORRUPT;
    const supply_t *x = &state->supply->supplies[slot];
    int64_t room = x->qty - x->received - (e->serves ? 0 : x->held);
    if (x->state != ALLOT_SUPPLY_OPEN || e->qty > room ||
        !allot_str_equal(allot_sku_id(allot_sku_at(state, x->sku)), e->sku) ||
        !allot_str_equal(allot_location_id(allot_location_at(state, x->location)), e->location))
        return ALLOT_ECORRUPT;
    int rc = inventory_position_reserve(state, x->sku, x->location);
    if (rc == 0)
        rc = state_dirty_reserve(state, 0, 1, 0, 0);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_SUPPLY], 1);
    return rc;
}

void supply_receipt_commit(allot_state_t *state, const allot_event_supply_t *e)
{
    uint32_t slot = supply_find(state, e->id);
    assert(slot != ALLOT_SLOT_NONE);
    supply_dirty(state, slot);
    supply_t *x = &state->supply->supplies[slot];
    x->received += e->qty;
    x->updated_ms = e->at_ms;
    if (x->received == x->qty)
        x->state = ALLOT_SUPPLY_RECEIVED;
    inventory_sku_dirty(state, x->sku); /* before the change (checkpoint pre-image) */
    allot_position_t *p = inventory_position_upsert(state, x->sku, x->location);
    p->on_hand = e->on_hand_after;
}

int supply_cancel_prepare(allot_state_t *state, const allot_event_supply_t *e)
{
    uint32_t slot = supply_find(state, e->id);
    if (slot == ALLOT_SLOT_NONE || state->supply->supplies[slot].state != ALLOT_SUPPLY_OPEN ||
        (!e->serves && state->supply->supplies[slot].held != 0))
        return ALLOT_ECORRUPT;
    return allot_u32_vec_reserve(&state->dirty[STATE_KEY_SUPPLY], 1);
}

void supply_cancel_commit(allot_state_t *state, const allot_event_supply_t *e)
{
    uint32_t slot = supply_find(state, e->id);
    assert(slot != ALLOT_SLOT_NONE);
    supply_dirty(state, slot);
    supply_t *x = &state->supply->supplies[slot];
    x->state = ALLOT_SUPPLY_CANCELLED;
    x->updated_ms = e->at_ms;
}

int supply_snapshot_prepare(allot_state_t *state, const allot_event_supply_t *e)
{
    uint32_t sku;
    int rc = ids_prepare(state, e, &sku);
    if (rc != 0)
        return rc;
    if (supply_find(state, e->id) != ALLOT_SLOT_NONE)
        return ALLOT_ECORRUPT;
    return new_supply_prepare(state, sku);
}

void supply_snapshot_commit(allot_state_t *state, const allot_event_supply_t *e)
{
    uint32_t slot = new_supply_commit(state, e);
    supply_t *x = &state->supply->supplies[slot];
    x->received = e->received;
    x->held = e->held; /* the holds' snapshots do not add to it (positions alike) */
    x->state = e->state;
    x->updated_ms = e->at_ms;
}
