/* event.c - one record at a time, as replay applies it (allot_event_apply, _apply_encoded). */
#include "core/event.h"

#include <assert.h>

#include "core/state_private.h"

int allot_event_apply(allot_state_t *state, const allot_event_t *event)
{
    return state_event_apply(state, event);
}

int allot_event_apply_encoded(allot_state_t *state, uint8_t type, const uint8_t *payload,
                              size_t len)
{
    assert(state != NULL);
    allot_event_t event;
    int rc = allot_event_decode(type, payload, len, &state->event_scratch, &event);
    return rc != 0 ? rc : state_event_apply(state, &event);
}
