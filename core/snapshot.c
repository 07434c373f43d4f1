/* snapshot.c - checkpoint records: each dirty (or every) object as a snapshot event record. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "state_private.h"

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
    int rc = reservation_snapshot_encode(state, slot, &state->snapshot_bytes);
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
    int rc = order_snapshot_encode(state, slot, &state->snapshot_bytes);
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

static uint8_t snapshot_type_of_kind(uint8_t kind)
{
    switch (kind) {
    case STATE_KEY_LOCATION:
        return ALLOT_EVENT_LOCATION_SNAPSHOT;
    case STATE_KEY_SKU:
        return ALLOT_EVENT_SKU_SNAPSHOT;
    case STATE_KEY_RESERVATION:
        return ALLOT_EVENT_RESERVATION_SNAPSHOT;
    default:
        return ALLOT_EVENT_ADJUST_KEY_SNAPSHOT;
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
        out->cb(out->ctx, out->key, 1u + len, snapshot_type_of_kind(kind), NULL, 0, true);
        off += 2u + len;
    }
    state->deleted.len = 0;
}

int allot_state_snapshot_each_dirty(allot_state_t *state, allot_snapshot_cb snapshot_cb, void *ctx)
{
    assert(state != NULL && snapshot_cb != NULL);
    snapshot_out_t out = {.cb = snapshot_cb, .ctx = ctx};
    snapshot_deletions(state, &out);
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < state->dirty_locations.count; i++) {
        uint32_t index = state->dirty_locations.items[i];
        if (state->locations[index].dirty && (rc = snapshot_location(state, &out, index)) == 0)
            state->locations[index].dirty = false;
    }
    for (uint32_t i = 0; rc == 0 && i < state->dirty_skus.count; i++) {
        uint32_t index = state->dirty_skus.items[i];
        if (state->skus[index].dirty && (rc = snapshot_sku(state, &out, index)) == 0)
            state->skus[index].dirty = 0;
    }
    for (uint32_t i = 0; rc == 0 && i < state->dirty_reservations.count; i++) {
        uint32_t slot = state->dirty_reservations.items[i];
        allot_reservation_t *r = &state->reservations[slot];
        if (r->used && r->dirty && (rc = snapshot_reservation(state, &out, slot)) == 0)
            state->reservations[slot].dirty = false;
    }
    for (uint32_t i = 0; rc == 0 && i < state->dirty_adjust_keys.count; i++) {
        uint32_t slot = state->dirty_adjust_keys.items[i];
        allot_adjust_key_t *k = &state->adjust_keys[slot];
        if (k->used && k->dirty && (rc = snapshot_adjust_key(state, &out, slot)) == 0)
            k->dirty = false;
    }
    for (uint32_t i = 0; rc == 0 && i < state->dirty_orders.count; i++) {
        uint32_t slot = state->dirty_orders.items[i];
        allot_order_t *o = state->orders[slot];
        if (o != NULL && o->dirty && (rc = snapshot_order(state, &out, slot)) == 0)
            o->dirty = false;
    }
    if (rc == 0) {
        snapshot_archived(state, &out);
        state->archived.len = 0;
    }
    if (rc != 0)
        return rc; /* handed objects are clean; the rest stay dirty for the next call */
    allot_state_dirty_clear(state);
    return 0;
}

int allot_state_snapshot_each(allot_state_t *state, allot_snapshot_cb snapshot_cb, void *ctx)
{
    assert(state != NULL && snapshot_cb != NULL);
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
