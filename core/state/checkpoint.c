/* checkpoint.c - checkpoints serialized in slices, and the dirty set seen from outside (contract
 * in core/state.h); what each kind's records are comes from ALLOT_SNAPSHOT_KINDS. */
#include <assert.h>
#include <string.h>

#include "core/errors.h"
#include "core/state.h"
#include "core/state_private.h"

/* The archived snapshots of orders evicted since the last take: [u8 id_len][id][u32 len][payload]
 * each, written by ORDER_EVICT's prepare (core/order/order_store.c). */
static void snapshot_archived(allot_state_t *state, allot_snapshot_cb cb, void *ctx)
{
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
    size_t off = 0;
    while (off < state->archived.len) {
        uint8_t id_len = state->archived.data[off];
        uint32_t len;
        memcpy(&len, state->archived.data + off + 1 + id_len, 4);
        key[0] = STATE_KEY_ORDER;
        memcpy(key + 1, state->archived.data + off + 1, id_len);
        cb(ctx, key, 1u + id_len, ALLOT_EVENT_ORDER_SNAPSHOT,
           state->archived.data + off + 5 + id_len, len, false);
        off += 5u + id_len + len;
    }
}

static size_t archived_count(const allot_state_t *state)
{
    size_t n = 0;
    for (size_t off = 0; off < state->archived.len; n++) {
        uint32_t len = 0;
        size_t at = off + 1 + state->archived.data[off];
        memcpy(&len, state->archived.data + at, 4);
        off = at + 4 + len;
    }
    return n;
}

uint8_t allot_snapshot_type_of_kind(uint8_t kind)
{
#define KIND_TYPE(kind, NAME, TYPE, ...) [kind] = ALLOT_EVENT_##TYPE,
    static const uint8_t types[STATE_KEY_LIMIT] = {ALLOT_SNAPSHOT_KINDS(KIND_TYPE)};
#undef KIND_TYPE
    return kind < STATE_KEY_LIMIT ? types[kind] : 0;
}

/* Deleted objects: [u8 kind][u8 len][id] each (state_deleted_record). */
static void snapshot_deletions(allot_state_t *state, allot_snapshot_cb cb, void *ctx)
{
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
    size_t off = 0;
    while (off < state->deleted.len) {
        uint8_t kind = state->deleted.data[off];
        uint8_t len = state->deleted.data[off + 1];
        key[0] = kind;
        memcpy(key + 1, state->deleted.data + off + 2, len);
        cb(ctx, key, 1u + len, allot_snapshot_type_of_kind(kind), NULL, 0, true);
        off += 2u + len;
    }
    state->deleted.len = 0;
}

/* ---- checkpoints serialized in slices ------------------------------------------------------- */

/* The walk reaches one object: hand it if still owed; either way it owes nothing any more. */
static void checkpoint_visit(allot_state_t *state, uint8_t kind, uint32_t index)
{
    state_checkpoint_t *cp = &state->checkpoint;
    uint8_t *marks = state->kinds[kind].marks(state, index);
    if (marks == NULL)
        return;
    if (state_checkpoint_owes(cp, kind, index, *marks))
        state_checkpoint_record(state, kind, index);
    *marks &= (uint8_t) ~(cp->pending_bit | STATE_MARK_DONE);
}

void allot_state_checkpoint_begin(allot_state_t *state, bool full, allot_snapshot_cb snapshot_cb,
                                  void *ctx)
{
    state_checkpoint_t *cp = &state->checkpoint;
    assert(!cp->active && snapshot_cb != NULL);
    if (full)
        state->deleted.len = 0; /* a full checkpoint replaces every object the store holds */
    else
        snapshot_deletions(state, snapshot_cb, ctx);
    snapshot_archived(state, snapshot_cb, ctx);
    state->archived.len = 0;
    cp->snapshot_cb = snapshot_cb;
    cp->ctx = ctx;
    cp->full = full;
    cp->failed = false;
    /* The dirty set becomes the pending set: swap the meaning of the two generation bits and
     * the lists (O(1)); the new dirty set starts empty. */
    cp->pending_bit = state->dirty_bit;
    state->dirty_bit ^= STATE_MARK_GENERATION_A | STATE_MARK_GENERATION_B;
    for (uint8_t kind = 1; kind < STATE_KEY_LIMIT; kind++) {
        allot_u32_vec_t *dirty = &state->dirty[kind];
        allot_u32_vec_t emptied = cp->pending[kind];
        cp->pending[kind] = *dirty;
        *dirty = emptied;
        dirty->count = 0;
        if (full)
            cp->pending[kind].count = 0; /* the walk visits every slot and clears the marks */
        cp->ends[kind] = state->kinds[kind].slots != NULL ? state->kinds[kind].slots(state) : 0;
    }
    cp->kind = 1;
    cp->cursor = 0;
    cp->active = true;
}

bool allot_state_checkpoint_step(allot_state_t *state, uint32_t objects_max)
{
    state_checkpoint_t *cp = &state->checkpoint;
    assert(cp->active);
    uint32_t visited = 0;
    for (; cp->kind < STATE_KEY_LIMIT; cp->kind++, cp->cursor = 0) {
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
    assert(cp->active && cp->kind == STATE_KEY_LIMIT);
    cp->active = false;
    for (uint8_t kind = 1; kind < STATE_KEY_LIMIT; kind++) {
        cp->pending[kind].count = 0;
        if (cp->pending[kind].capacity > ALLOT_CHECKPOINT_PENDING_KEPT_MAX)
            allot_u32_vec_free(&cp->pending[kind]); /* 4 bytes an object of a burst, for good */
    }
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
    int rc = 0;
    for (uint8_t kind = 1; rc == 0 && kind < STATE_KEY_LIMIT; kind++) {
        const state_kind_t *k = &state->kinds[kind];
        uint32_t slots = k->slots != NULL ? k->slots(state) : 0; /* NULL: no such kind */
        for (uint32_t i = 0; rc == 0 && i < slots; i++)
            if (k->marks(state, i) != NULL)
                rc = state_snapshot_hand(state, kind, i, true, snapshot_cb, ctx);
    }
    if (rc == 0)
        snapshot_archived(state, snapshot_cb, ctx); /* kept until the dirty set is cleared */
    return rc;
}

/* ---- the dirty set -------------------------------------------------------------------------- */

size_t allot_state_dirty_count(const allot_state_t *state)
{
    size_t count = archived_count(state);
    for (size_t off = 0; off < state->deleted.len; off += 2u + state->deleted.data[off + 1])
        count++;
    for (uint8_t kind = 1; kind < STATE_KEY_LIMIT; kind++)
        count += state->dirty[kind].count;
    return count;
}

void allot_state_dirty_clear(allot_state_t *state)
{
    uint8_t keep = (uint8_t)~state->dirty_bit;
    for (uint8_t kind = 1; kind < STATE_KEY_LIMIT; kind++) {
        allot_u32_vec_t *dirty = &state->dirty[kind];
        for (uint32_t i = 0; i < dirty->count; i++) {
            uint8_t *marks = state->kinds[kind].marks(state, dirty->items[i]);
            if (marks != NULL)
                *marks &= keep;
        }
        dirty->count = 0;
    }
    state->deleted.len = 0;
    state->archived.len = 0;
}
