/* supply_snapshot.c - supplies as checkpoint records (the kind SUPPLY of core/events.def). */
#include <assert.h>

#include "core/supply/supply_private.h"

uint32_t supply_snapshot_slots(const allot_state_t *state)
{
    return state->supply->slots;
}

uint8_t *supply_snapshot_marks(allot_state_t *state, uint32_t index)
{
    supply_store_t *s = state->supply;
    return index < s->slots && s->supplies[index].used ? &s->supplies[index].dirty : NULL;
}

/* The key is the supply id (kind 9 sorts after the locations, which a supply needs). */
int supply_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                         allot_str_t *id)
{
    (void)full;
    assert(index < state->supply->slots && state->supply->supplies[index].used);
    const supply_t *x = &state->supply->supplies[index];
    allot_supply_view_t v;
    supply_view_fill(state, index, &v);
    *id = v.id;
    allot_event_t event = {.type = ALLOT_EVENT_SUPPLY_SNAPSHOT};
    event.u.supply = (allot_event_supply_t){.id = v.id,
                                            .sku = v.sku,
                                            .location = v.location,
                                            .qty = x->qty,
                                            .received = x->received,
                                            .held = x->held,
                                            .eta_ms = x->eta_ms,
                                            .at_ms = x->updated_ms,
                                            .state = x->state};
    return allot_event_encode(&event, out);
}
