/* shared.c - what every room of core calls on the state (core/state_private.h): the dirty set,
 * the checkpoint's copy-on-write, idempotency ages, the order of ids. */
#include <assert.h>
#include <string.h>

#include "core/errors.h"
#include "core/state_private.h"

bool state_idempotency_aged(const allot_state_t *state, int64_t at_ms, int64_t key_ms)
{
    int64_t age_ms; /* record times are bounded (ALLOT_TIME_MS_MAX); this holds for any two */
    if (__builtin_sub_overflow(at_ms, key_ms, &age_ms))
        return at_ms > key_ms;
    return age_ms > state->config.idempotency_age_ms;
}

void state_idempotency_count_evicted(allot_state_t *state, int64_t at_ms, int64_t key_ms)
{
    if (!state_idempotency_aged(state, at_ms, key_ms))
        state->idempotency_evicted_early++;
}

int state_id_compare(const char *a, uint32_t a_len, const char *b, uint32_t b_len)
{
    uint32_t n = a_len < b_len ? a_len : b_len;
    int c = memcmp(a, b, n);
    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* ---- dirty set ------------------------------------------------------------------------------ */

#define DELETED_RECORD_BYTES_MAX (2u + ALLOT_ID_BYTES_MAX)

int state_dirty_reserve(allot_state_t *state, uint32_t locations, uint32_t skus,
                        uint32_t reservations, uint32_t adjust_keys)
{
    int rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_LOCATION], locations);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_SKU], skus);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_RESERVATION], reservations);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_ADJUST_KEY], adjust_keys);
    /* evictions an insert may cause (the count bound and the age clean-up together) */
    uint32_t deletions = (reservations + adjust_keys) * ALLOT_EVICTIONS_PER_INSERT_MAX;
    if (rc == 0)
        rc = allot_bytes_reserve(&state->deleted, deletions * DELETED_RECORD_BYTES_MAX);
    return rc;
}

void state_deleted_record(allot_state_t *state, uint8_t kind, const char *id, uint32_t len)
{
    assert(len >= 1 && len <= ALLOT_ID_BYTES_MAX);
    allot_bytes_put_u8(&state->deleted, kind);
    allot_bytes_put_u8(&state->deleted, (uint8_t)len);
    allot_bytes_put(&state->deleted, id, len);
}

/* ---- checkpoint records and copy-on-write --------------------------------------------------- */

int state_snapshot_hand(allot_state_t *state, uint8_t kind, uint32_t index, bool full,
                        allot_snapshot_cb cb, void *ctx)
{
    const state_kind_t *k = &state->kinds[kind];
    allot_str_t id;
    state->snapshot_bytes.len = 0;
    int rc = k->take(state, index, full, &state->snapshot_bytes, &id);
    if (rc != 0 || id.len == 0)
        return rc;
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
    key[0] = kind;
    memcpy(key + 1, id.ptr, id.len);
    cb(ctx, key, 1u + id.len, k->type, state->snapshot_bytes.data, state->snapshot_bytes.len,
       false);
    return 0;
}

/* Does the running checkpoint still owe a record of this object (its content when it began)? */
bool state_checkpoint_owes(const state_checkpoint_t *cp, uint8_t kind, uint32_t index,
                           uint8_t marks)
{
    if ((marks & cp->pending_bit) != 0)
        return true; /* dirty when it began, not serialized since */
    if (!cp->full || (marks & STATE_MARK_DONE) != 0 || index >= cp->ends[kind])
        return false;
    return kind > cp->kind || (kind == cp->kind && index >= cp->cursor); /* the walk is not past */
}

void state_checkpoint_record(allot_state_t *state, uint8_t kind, uint32_t index)
{
    state_checkpoint_t *cp = &state->checkpoint;
    if (cp->failed)
        return; /* once a record failed the batch is lost: skip the work */
    if (state_snapshot_hand(state, kind, index, cp->full, cp->snapshot_cb, cp->ctx) != 0)
        cp->failed = true;
}

void state_checkpoint_preimage(allot_state_t *state, uint8_t kind, uint32_t index)
{
    state_checkpoint_t *cp = &state->checkpoint;
    assert(cp->active);
    uint8_t *marks = state->kinds[kind].marks(state, index);
    if (marks == NULL || !state_checkpoint_owes(cp, kind, index, *marks))
        return;
    assert(!cp->full || index < cp->ends[kind]);
    state_checkpoint_record(state, kind, index); /* the object has not changed since it began */
    *marks &= (uint8_t)~cp->pending_bit;
    if (cp->full)
        *marks |= STATE_MARK_DONE; /* the walk clears it when it passes */
}

void state_checkpoint_born(allot_state_t *state, uint8_t kind, uint32_t index)
{
    state_checkpoint_t *cp = &state->checkpoint;
    if (!cp->active || !cp->full)
        return;
    uint8_t *marks = state->kinds[kind].marks(state, index);
    assert(marks != NULL && (*marks & cp->pending_bit) == 0);
    if (state_checkpoint_owes(cp, kind, index, 0))
        *marks |= STATE_MARK_DONE; /* ahead of the walk: not part of this checkpoint */
}
