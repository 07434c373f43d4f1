/* checkpoint.c - checkpoint records (snapshot event records), checkpoints serialized in slices. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/order/order_private.h"
#include "core/reservation/reservation_private.h"
#include "core/state_private.h"

typedef struct snapshot_out {
    allot_snapshot_cb cb;
    void *ctx;
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
} snapshot_out_t;

static void snapshot_hand(allot_state_t *state, snapshot_out_t *out, uint8_t kind, allot_str_t id,
                          uint8_t type)
{
    out->key[0] = kind;
    memcpy(out->key + 1, id.ptr, id.len);
    out->cb(out->ctx, out->key, 1u + id.len, type, state->snapshot_bytes.data,
            state->snapshot_bytes.len, false);
}

static int snapshot_location(allot_state_t *state, snapshot_out_t *out, uint32_t index)
{
    const allot_location_t *l = &state->locations[index];
    allot_event_t event = {.type = ALLOT_EVENT_LOCATION_SNAPSHOT};
    event.u.location = (allot_event_location_t){allot_location_id(l),
                                                l->type,
                                                l->ship,
                                                l->pickup,
                                                l->active,
                                                l->lat,
                                                l->lon,
                                                l->priority,
                                                l->same_day_radius_km,
                                                l->daily_capacity,
                                                l->capacity_day,
                                                l->capacity_count};
    state->snapshot_bytes.len = 0;
    int rc = allot_event_encode(&event, &state->snapshot_bytes);
    if (rc == 0)
        snapshot_hand(state, out, STATE_KEY_LOCATION, allot_location_id(l), event.type);
    return rc;
}

static int snapshot_sku(allot_state_t *state, snapshot_out_t *out, uint32_t index)
{
    const allot_sku_t *sku = &state->skus[index];
    if (sku->position_count > state->snapshot_position_capacity) {
        void *p = realloc(state->snapshot_positions,
                          sku->position_count * sizeof(allot_event_position_t));
        if (p == NULL)
            return ALLOT_ENOMEM;
        state->snapshot_positions = p;
        state->snapshot_position_capacity = sku->position_count;
    }
    for (uint32_t i = 0; i < sku->position_count; i++) {
        const allot_position_t *p = &sku->positions[i];
        state->snapshot_positions[i] =
            (allot_event_position_t){allot_location_id(&state->locations[p->location]),
                                     p->on_hand,
                                     p->reserved,
                                     p->allocated,
                                     p->safety_stock,
                                     p->as_of_ms};
    }
    allot_event_t event = {.type = ALLOT_EVENT_SKU_SNAPSHOT};
    event.u.sku_snapshot = (allot_event_sku_snapshot_t){allot_sku_id(sku), sku->position_count,
                                                        state->snapshot_positions};
    state->snapshot_bytes.len = 0;
    int rc = allot_event_encode(&event, &state->snapshot_bytes);
    if (rc == 0)
        snapshot_hand(state, out, STATE_KEY_SKU, allot_sku_id(sku), event.type);
    return rc;
}

static int snapshot_reservation(allot_state_t *state, snapshot_out_t *out, uint32_t slot)
{
    const allot_reservation_t *r = &state->reservations[slot];
    state->snapshot_bytes.len = 0;
    int rc = reservation_snapshot_take(state, slot, &state->snapshot_bytes);
    if (rc == 0)
        snapshot_hand(state, out, STATE_KEY_RESERVATION, (allot_str_t){r->id, r->id_len},
                      ALLOT_EVENT_RESERVATION_SNAPSHOT);
    return rc;
}

static int snapshot_adjust_key(allot_state_t *state, snapshot_out_t *out, uint32_t slot)
{
    const allot_adjust_key_t *k = &state->adjust_keys[slot];
    allot_event_t event = {.type = ALLOT_EVENT_ADJUST_KEY_SNAPSHOT};
    event.u.adjust_key =
        (allot_event_adjust_key_t){(allot_str_t){k->key, k->key_len},
                                   allot_sku_id(&state->skus[k->sku]),
                                   allot_location_id(&state->locations[k->location]),
                                   k->delta,
                                   k->at_ms,
                                   k->on_hand,
                                   k->reserved,
                                   k->allocated,
                                   k->safety_stock,
                                   k->available};
    state->snapshot_bytes.len = 0;
    int rc = allot_event_encode(&event, &state->snapshot_bytes);
    if (rc == 0)
        snapshot_hand(state, out, STATE_KEY_ADJUST_KEY, event.u.adjust_key.key, event.type);
    return rc;
}

static int snapshot_order(allot_state_t *state, snapshot_out_t *out, uint32_t slot)
{
    state->snapshot_bytes.len = 0;
    int rc = order_snapshot_take(state, slot, &state->snapshot_bytes);
    if (rc == 0)
        snapshot_hand(state, out, STATE_KEY_ORDER, state->orders[slot]->v.id,
                      ALLOT_EVENT_ORDER_SNAPSHOT);
    return rc;
}

/* Orders evicted since the last take: their archived snapshots (recorded by ORDER_EVICT). */
static void snapshot_archived(allot_state_t *state, snapshot_out_t *out)
{
    size_t off = 0;
    while (off < state->archived.len) {
        uint8_t id_len = state->archived.data[off];
        uint32_t len;
        memcpy(&len, state->archived.data + off + 1 + id_len, 4);
        out->key[0] = STATE_KEY_ORDER;
        memcpy(out->key + 1, state->archived.data + off + 1, id_len);
        out->cb(out->ctx, out->key, 1u + id_len, ALLOT_EVENT_ORDER_SNAPSHOT,
                state->archived.data + off + 5 + id_len, len, false);
        off += 5u + id_len + len;
    }
}

uint8_t allot_snapshot_type_of_kind(uint8_t kind)
{
    switch (kind) {
    case STATE_KEY_LOCATION:
        return ALLOT_EVENT_LOCATION_SNAPSHOT;
    case STATE_KEY_SKU:
        return ALLOT_EVENT_SKU_SNAPSHOT;
    case STATE_KEY_RESERVATION:
        return ALLOT_EVENT_RESERVATION_SNAPSHOT;
    case STATE_KEY_ADJUST_KEY:
        return ALLOT_EVENT_ADJUST_KEY_SNAPSHOT;
    case STATE_KEY_ORDER:
        return ALLOT_EVENT_ORDER_SNAPSHOT;
    default:
        return 0;
    }
}

static void snapshot_deletions(allot_state_t *state, snapshot_out_t *out)
{
    size_t off = 0;
    while (off < state->deleted.len) {
        uint8_t kind = state->deleted.data[off];
        uint8_t len = state->deleted.data[off + 1];
        out->key[0] = kind;
        memcpy(out->key + 1, state->deleted.data + off + 2, len);
        out->cb(out->ctx, out->key, 1u + len, allot_snapshot_type_of_kind(kind), NULL, 0, true);
        off += 2u + len;
    }
    state->deleted.len = 0;
}

/* ---- checkpoints serialized in slices ------------------------------------------------------- */

static allot_u32_vec_t *dirty_list(allot_state_t *state, uint8_t kind)
{
    switch (kind) {
    case STATE_KEY_LOCATION:
        return &state->dirty_locations;
    case STATE_KEY_SKU:
        return &state->dirty_skus;
    case STATE_KEY_RESERVATION:
        return &state->dirty_reservations;
    case STATE_KEY_ADJUST_KEY:
        return &state->dirty_adjust_keys;
    default:
        return &state->dirty_orders;
    }
}

/* The marks of the object of `kind` at `index`; NULL when there is none (a free slot). */
static uint8_t *checkpoint_marks(allot_state_t *state, uint8_t kind, uint32_t index)
{
    switch (kind) {
    case STATE_KEY_LOCATION:
        return index < state->location_count ? &state->locations[index].dirty : NULL;
    case STATE_KEY_SKU:
        return index < state->sku_count ? &state->skus[index].dirty : NULL;
    case STATE_KEY_RESERVATION:
        return index < state->reservation_slots && state->reservations[index].used
                   ? &state->reservations[index].dirty
                   : NULL;
    case STATE_KEY_ADJUST_KEY:
        return index < state->adjust_key_slots && state->adjust_keys[index].used
                   ? &state->adjust_keys[index].dirty
                   : NULL;
    default:
        return index < state->order_slots && state->orders[index] != NULL
                   ? &state->orders[index]->dirty
                   : NULL;
    }
}

/* Does the running checkpoint still owe a record of this object (its content when it began)? */
static bool checkpoint_owes(const state_checkpoint_t *cp, uint8_t kind, uint32_t index,
                            uint8_t marks)
{
    if ((marks & cp->pending_bit) != 0)
        return true; /* dirty when it began, not serialized since */
    if (!cp->full || (marks & STATE_MARK_DONE) != 0 || index >= cp->ends[kind])
        return false;
    return kind > cp->kind || (kind == cp->kind && index >= cp->cursor); /* the walk is not past */
}

/* Hand one object to the checkpoint. Once a record failed the batch is lost: skip the work. */
static void checkpoint_record(allot_state_t *state, uint8_t kind, uint32_t index)
{
    state_checkpoint_t *cp = &state->checkpoint;
    if (cp->failed)
        return;
    snapshot_out_t out = {.cb = cp->snapshot_cb, .ctx = cp->ctx};
    int rc;
    switch (kind) {
    case STATE_KEY_LOCATION:
        rc = snapshot_location(state, &out, index);
        break;
    case STATE_KEY_SKU: /* a full checkpoint holds SKUs with positions (as snapshot_each) */
        rc = cp->full && state->skus[index].position_count == 0 ? 0
                                                                : snapshot_sku(state, &out, index);
        break;
    case STATE_KEY_RESERVATION:
        rc = snapshot_reservation(state, &out, index);
        break;
    case STATE_KEY_ADJUST_KEY:
        rc = snapshot_adjust_key(state, &out, index);
        break;
    default:
        rc = snapshot_order(state, &out, index);
    }
    if (rc != 0)
        cp->failed = true;
}

void state_checkpoint_preimage(allot_state_t *state, uint8_t kind, uint32_t index)
{
    state_checkpoint_t *cp = &state->checkpoint;
    assert(cp->active);
    uint8_t *marks = checkpoint_marks(state, kind, index);
    if (marks == NULL || !checkpoint_owes(cp, kind, index, *marks))
        return;
    assert(!cp->full || index < cp->ends[kind]);
    checkpoint_record(state, kind, index); /* the object has not changed since it began */
    *marks &= (uint8_t)~cp->pending_bit;
    if (cp->full)
        *marks |= STATE_MARK_DONE; /* the walk clears it when it passes */
}

void state_checkpoint_born(allot_state_t *state, uint8_t kind, uint32_t index)
{
    state_checkpoint_t *cp = &state->checkpoint;
    if (!cp->active || !cp->full)
        return;
    uint8_t *marks = checkpoint_marks(state, kind, index);
    assert(marks != NULL && (*marks & cp->pending_bit) == 0);
    if (checkpoint_owes(cp, kind, index, 0))
        *marks |= STATE_MARK_DONE; /* ahead of the walk: not part of this checkpoint */
}

/* The walk reaches one object: hand it if still owed; either way it owes nothing any more. */
static void checkpoint_visit(allot_state_t *state, uint8_t kind, uint32_t index)
{
    state_checkpoint_t *cp = &state->checkpoint;
    uint8_t *marks = checkpoint_marks(state, kind, index);
    if (marks == NULL)
        return;
    if (checkpoint_owes(cp, kind, index, *marks))
        checkpoint_record(state, kind, index);
    *marks &= (uint8_t) ~(cp->pending_bit | STATE_MARK_DONE);
}

void allot_state_checkpoint_begin(allot_state_t *state, bool full, allot_snapshot_cb snapshot_cb,
                                  void *ctx)
{
    state_checkpoint_t *cp = &state->checkpoint;
    assert(!cp->active && snapshot_cb != NULL);
    snapshot_out_t out = {.cb = snapshot_cb, .ctx = ctx};
    if (full)
        state->deleted.len = 0; /* a full checkpoint replaces every object the store holds */
    else
        snapshot_deletions(state, &out);
    snapshot_archived(state, &out);
    state->archived.len = 0;
    cp->snapshot_cb = snapshot_cb;
    cp->ctx = ctx;
    cp->full = full;
    cp->failed = false;
    /* The dirty set becomes the pending set: swap the meaning of the two generation bits and
     * the lists (O(1)); the new dirty set starts empty. */
    cp->pending_bit = state->dirty_bit;
    state->dirty_bit ^= STATE_MARK_GENERATION_A | STATE_MARK_GENERATION_B;
    for (uint8_t kind = STATE_KEY_LOCATION; kind <= STATE_KEY_ORDER; kind++) {
        allot_u32_vec_t *dirty = dirty_list(state, kind);
        allot_u32_vec_t emptied = cp->pending[kind];
        cp->pending[kind] = *dirty;
        *dirty = emptied;
        dirty->count = 0;
        if (full)
            cp->pending[kind].count = 0; /* the walk visits every slot and clears the marks */
    }
    cp->ends[STATE_KEY_LOCATION] = state->location_count;
    cp->ends[STATE_KEY_SKU] = state->sku_count;
    cp->ends[STATE_KEY_RESERVATION] = state->reservation_slots;
    cp->ends[STATE_KEY_ADJUST_KEY] = state->adjust_key_slots;
    cp->ends[STATE_KEY_ORDER] = state->order_slots;
    cp->kind = STATE_KEY_LOCATION;
    cp->cursor = 0;
    cp->active = true;
}

bool allot_state_checkpoint_step(allot_state_t *state, uint32_t objects_max)
{
    state_checkpoint_t *cp = &state->checkpoint;
    assert(cp->active);
    uint32_t visited = 0;
    for (; cp->kind <= STATE_KEY_ORDER; cp->kind++, cp->cursor = 0) {
        uint32_t end = cp->full ? cp->ends[cp->kind] : cp->pending[cp->kind].count;
        for (; cp->cursor < end; cp->cursor++) {
            if (visited++ == objects_max)
                return false;
            uint32_t index = cp->full ? cp->cursor : cp->pending[cp->kind].items[cp->cursor];
            checkpoint_visit(state, cp->kind, index);
        }
    }
    return true;
}

bool allot_state_checkpoint_active(const allot_state_t *state)
{
    return state->checkpoint.active;
}

int allot_state_checkpoint_end(allot_state_t *state)
{
    state_checkpoint_t *cp = &state->checkpoint;
    assert(cp->active && cp->kind > STATE_KEY_ORDER);
    cp->active = false;
    for (uint8_t kind = STATE_KEY_LOCATION; kind <= STATE_KEY_ORDER; kind++)
        cp->pending[kind].count = 0;
    return cp->failed ? ALLOT_ENOMEM : 0;
}

int allot_state_snapshot_each_dirty(allot_state_t *state, allot_snapshot_cb snapshot_cb, void *ctx)
{
    assert(state != NULL && snapshot_cb != NULL);
    allot_state_checkpoint_begin(state, false, snapshot_cb, ctx);
    while (!allot_state_checkpoint_step(state, UINT32_MAX))
        ;
    return allot_state_checkpoint_end(state);
}

int allot_state_snapshot_each(allot_state_t *state, allot_snapshot_cb snapshot_cb, void *ctx)
{
    assert(state != NULL && snapshot_cb != NULL && !state->checkpoint.active);
    snapshot_out_t out = {.cb = snapshot_cb, .ctx = ctx};
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < state->location_count; i++)
        rc = snapshot_location(state, &out, i);
    for (uint32_t i = 0; rc == 0 && i < state->sku_count; i++)
        if (state->skus[i].position_count > 0)
            rc = snapshot_sku(state, &out, i);
    for (uint32_t i = 0; rc == 0 && i < state->reservation_slots; i++)
        if (state->reservations[i].used)
            rc = snapshot_reservation(state, &out, i);
    for (uint32_t i = 0; rc == 0 && i < state->adjust_key_slots; i++)
        if (state->adjust_keys[i].used)
            rc = snapshot_adjust_key(state, &out, i);
    for (uint32_t i = 0; rc == 0 && i < state->order_slots; i++)
        if (state->orders[i] != NULL)
            rc = snapshot_order(state, &out, i);
    if (rc == 0)
        snapshot_archived(state, &out); /* kept until the dirty set is cleared */
    return rc;
}
