/* consumer.c - the stream's consumers: durable cursors set by events.ack records, their
 * checkpoint records, and the EVENTS_TICK record.
 *
 * Byte format, after the version byte and in the conventions of core/event/codec.c:
 *
 * 32 EVENTS_ACK          str consumer (an id); u64 seq; i64 at_ms
 * 33 CONSUMER_SNAPSHOT   as EVENTS_ACK (the cursor and when it was last acknowledged)
 * 34 EVENTS_TICK         i64 at_ms
 *
 * Consumers are few (ALLOT_EVENT_CONSUMERS_MAX) and acknowledged a few times a second each: a
 * slab searched in order; they are never deleted (a checkpoint slot is its index).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/stream/stream_private.h"

#define CONSUMER_EVENT_BYTES_MAX (2 + ALLOT_ID_BYTES_MAX + 16)

static uint32_t consumer_find(const stream_state_t *stream, allot_str_t name)
{
    for (uint32_t i = 0; i < stream->consumer_count; i++) {
        const stream_consumer_t *c = &stream->consumers[i];
        if (c->name_len == name.len && memcmp(c->name, name.ptr, name.len) == 0)
            return i;
    }
    return ALLOT_SLOT_NONE;
}

bool allot_consumer_get(const allot_state_t *state, allot_str_t name, uint64_t *seq)
{
    uint32_t i = consumer_find(state->stream, name);
    if (i == ALLOT_SLOT_NONE)
        return false;
    *seq = state->stream->consumers[i].seq;
    return true;
}

uint32_t allot_consumer_count(const allot_state_t *state)
{
    return state->stream->consumer_count;
}

int allot_consumer_ack(allot_state_t *state, allot_str_t name, uint64_t seq, int64_t now_ms,
                       uint64_t *cursor, allot_error_detail_t *detail)
{
    if (!allot_id_valid(name))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "consumer",
                               "consumer must be 1..%d bytes of UTF-8", ALLOT_ID_BYTES_MAX);
    stream_state_t *stream = state->stream;
    uint32_t i = consumer_find(stream, name);
    if (i != ALLOT_SLOT_NONE && stream->consumers[i].seq >= seq) {
        *cursor = stream->consumers[i].seq;
        return 0;
    }
    if (i == ALLOT_SLOT_NONE && stream->consumer_count >= ALLOT_EVENT_CONSUMERS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "consumer",
                               "at most %d consumers keep a cursor", ALLOT_EVENT_CONSUMERS_MAX);
    allot_event_t event = {.type = ALLOT_EVENT_EVENTS_ACK};
    event.u.consumer = (allot_event_consumer_t){name, seq, now_ms};
    int rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "%s", allot_error_message(rc));
    *cursor = seq;
    return 0;
}

/* ---- records -------------------------------------------------------------------------------- */

int consumer_encode(const allot_event_consumer_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, CONSUMER_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, e->name);
    allot_bytes_put_u64(out, e->seq);
    allot_bytes_put_i64(out, e->at_ms);
    return 0;
}

int consumer_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_consumer_t *e)
{
    (void)s;
    e->name = allot_reader_str(r);
    e->seq = allot_reader_u64(r);
    e->at_ms = allot_reader_i64(r);
    return allot_id_valid(e->name) && allot_event_time_ok(e->at_ms) ? 0 : ALLOT_ECORRUPT;
}

int consumer_prepare(allot_state_t *state, const allot_event_consumer_t *e)
{
    stream_state_t *stream = state->stream;
    if (consumer_find(stream, e->name) != ALLOT_SLOT_NONE)
        return allot_u32_vec_reserve(&state->dirty[STATE_KEY_CONSUMER], 1);
    if (stream->consumer_count >= ALLOT_EVENT_CONSUMERS_MAX)
        return ALLOT_ECORRUPT;
    if (stream->consumers == NULL) {
        stream->consumers = calloc(ALLOT_EVENT_CONSUMERS_MAX, sizeof(*stream->consumers));
        if (stream->consumers == NULL)
            return ALLOT_ENOMEM;
    }
    return allot_u32_vec_reserve(&state->dirty[STATE_KEY_CONSUMER], 1);
}

/* A cursor only moves forward; a snapshot (checkpoint load) sets it as stored. */
void consumer_commit(allot_state_t *state, const allot_event_consumer_t *e)
{
    stream_state_t *stream = state->stream;
    uint32_t i = consumer_find(stream, e->name);
    if (i == ALLOT_SLOT_NONE) {
        i = stream->consumer_count++;
        stream_consumer_t *c = &stream->consumers[i];
        memset(c, 0, sizeof(*c));
        memcpy(c->name, e->name.ptr, e->name.len);
        c->name_len = (uint8_t)e->name.len;
        state_checkpoint_born(state, STATE_KEY_CONSUMER, i);
    }
    stream_consumer_t *c = &stream->consumers[i];
    if (c->seq > e->seq)
        return;
    state_dirty_mark(state, STATE_KEY_CONSUMER, i, &c->dirty);
    c->seq = e->seq;
    c->at_ms = e->at_ms;
    if (e->at_ms > stream->clock_ms)
        stream->clock_ms = e->at_ms;
}

/* ---- checkpoint records --------------------------------------------------------------------- */

uint32_t consumer_snapshot_slots(const allot_state_t *state)
{
    return state->stream->consumer_count;
}

uint8_t *consumer_snapshot_marks(allot_state_t *state, uint32_t index)
{
    return index < state->stream->consumer_count ? &state->stream->consumers[index].dirty : NULL;
}

int consumer_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                           allot_str_t *id)
{
    (void)full;
    assert(index < state->stream->consumer_count);
    const stream_consumer_t *c = &state->stream->consumers[index];
    allot_event_t event = {.type = ALLOT_EVENT_CONSUMER_SNAPSHOT};
    event.u.consumer = (allot_event_consumer_t){{c->name, c->name_len}, c->seq, c->at_ms};
    int rc = allot_event_encode(&event, out);
    if (rc != 0)
        return rc;
    *id = (allot_str_t){c->name, c->name_len};
    return 0;
}

/* ---- dump ----------------------------------------------------------------------------------- */

static int consumer_name_compare(const void *a, const void *b)
{
    const stream_consumer_t *x = *(const stream_consumer_t *const *)a;
    const stream_consumer_t *y = *(const stream_consumer_t *const *)b;
    return state_id_compare(x->name, x->name_len, y->name, y->name_len);
}

void consumer_dump(const allot_state_t *state, FILE *out)
{
    const stream_state_t *stream = state->stream;
    const stream_consumer_t *sorted[ALLOT_EVENT_CONSUMERS_MAX];
    for (uint32_t i = 0; i < stream->consumer_count; i++)
        sorted[i] = &stream->consumers[i];
    qsort(sorted, stream->consumer_count, sizeof(sorted[0]), consumer_name_compare);
    for (uint32_t i = 0; i < stream->consumer_count; i++)
        fprintf(out, "consumer %.*s seq=%" PRIu64 " at_ms=%" PRId64 "\n", sorted[i]->name_len,
                sorted[i]->name, sorted[i]->seq, sorted[i]->at_ms);
}
