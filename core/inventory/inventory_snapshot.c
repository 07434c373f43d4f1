/* inventory_snapshot.c - locations, SKUs (all positions) and adjust keys as checkpoint records
 * (the kinds LOCATION, SKU and ADJUST_KEY of core/events.def). */
#include <stdlib.h>

#include "core/inventory/inventory_private.h"

uint32_t location_snapshot_slots(const allot_state_t *state)
{
    return state->location_count;
}

uint8_t *location_snapshot_marks(allot_state_t *state, uint32_t index)
{
    return index < state->location_count ? &state->locations[index].dirty : NULL;
}

int location_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                           allot_str_t *id)
{
    (void)full;
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
                                                l->capacity_count,
                                                l->calendar};
    *id = allot_location_id(l);
    return allot_event_encode(&event, out);
}

uint32_t sku_snapshot_slots(const allot_state_t *state)
{
    return state->sku_count;
}

uint8_t *sku_snapshot_marks(allot_state_t *state, uint32_t index)
{
    return index < state->sku_count ? &state->skus[index].dirty : NULL;
}

/* A full checkpoint holds only SKUs with positions (an incremental one: every dirty SKU). */
int sku_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                      allot_str_t *id)
{
    const allot_sku_t *sku = &state->skus[index];
    *id = (allot_str_t){"", 0};
    if (full && sku->position_count == 0)
        return 0;
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
    *id = allot_sku_id(sku);
    return allot_event_encode(&event, out);
}

uint32_t adjust_key_snapshot_slots(const allot_state_t *state)
{
    return state->adjust_key_slots;
}

uint8_t *adjust_key_snapshot_marks(allot_state_t *state, uint32_t index)
{
    return index < state->adjust_key_slots && state->adjust_keys[index].used
               ? &state->adjust_keys[index].dirty
               : NULL;
}

int adjust_key_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                             allot_str_t *id)
{
    (void)full;
    const allot_adjust_key_t *k = &state->adjust_keys[index];
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
    *id = event.u.adjust_key.key;
    return allot_event_encode(&event, out);
}
