/* apply.c - the one apply of event records, live (emit) and on replay: each type's owner
 * prepares (may fail, nothing changes), then commits (cannot fail); core/events.def says who. */
#include <assert.h>

#include "core/errors.h"
#include "core/state_private.h"
#include "core/stream/stream_private.h"

/* The owners' functions (each room's private header declares its own rows the same way). */
ALLOT_EVENT_TABLE(ALLOT_EVENT_DECLARE)

typedef struct event_apply {
    int (*prepare)(allot_state_t *state, const allot_event_t *event);
    void (*commit)(allot_state_t *state, const allot_event_t *event);
} event_apply_t;

/* Per row: adapters from the whole event to the owner's functions on its payload. */
#define EVENT_APPLY_ADAPTERS(number, NAME, name, member, payload, encode, decode, prepare, commit, \
                             ...)                                                                  \
    static int prepare_##NAME(allot_state_t *state, const allot_event_t *event)                    \
    {                                                                                              \
        return prepare(state, &event->u.member);                                                   \
    }                                                                                              \
    static void commit_##NAME(allot_state_t *state, const allot_event_t *event)                    \
    {                                                                                              \
        commit(state, &event->u.member);                                                           \
    }
ALLOT_EVENT_TABLE(EVENT_APPLY_ADAPTERS)

#define EVENT_APPLY_ROW(number, NAME, ...) [number] = {prepare_##NAME, commit_##NAME},
static const event_apply_t event_applies[ALLOT_EVENT_TYPE_LIMIT] = {
    ALLOT_EVENT_TABLE(EVENT_APPLY_ROW)};

/* The apply of a decoded event (decoding accepts only the types of the table). */
static const event_apply_t *event_apply_of(const allot_event_t *event)
{
    assert(event->type < ALLOT_EVENT_TYPE_LIMIT && event_applies[event->type].prepare != NULL);
    return &event_applies[event->type];
}

int state_event_apply(allot_state_t *state, const allot_event_t *event)
{
    assert(state != NULL && event != NULL);
    const event_apply_t *apply = event_apply_of(event);
    int rc = apply->prepare(state, event);
    if (rc != 0)
        return rc;
    stream_record_before(state, event);
    apply->commit(state, event);
    stream_record_after(state, event);
    return 0;
}

int state_event_emit(allot_state_t *state, const allot_event_t *event)
{
    assert(state != NULL && event != NULL);
    state->event_bytes.len = 0;
    int rc = allot_event_encode(event, &state->event_bytes);
    if (rc != 0)
        return rc;
    allot_event_t decoded;
    rc = allot_event_decode(event->type, state->event_bytes.data, state->event_bytes.len,
                            &state->event_scratch, &decoded);
    assert(rc != ALLOT_ECORRUPT && "live events always decode");
    if (rc != 0)
        return rc;
    const event_apply_t *apply = event_apply_of(&decoded);
    rc = apply->prepare(state, &decoded);
    if (rc != 0)
        return rc;
    if (state->sink != NULL) {
        rc = state->sink(state->sink_ctx, event->type, state->event_bytes.data,
                         state->event_bytes.len);
        if (rc != 0)
            return rc; /* prepare changed nothing observable: the event simply did not happen */
    }
    stream_record_before(state, &decoded);
    apply->commit(state, &decoded);
    stream_record_after(state, &decoded);
    return 0;
}
