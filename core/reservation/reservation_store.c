/* reservation_store.c - reservation records: slab, id hash, expiry and tombstone heaps, eviction
 * of tombstones, and their snapshots. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/pages.h"
#include "core/inventory/inventory_private.h"
#include "core/reservation/reservation_private.h"

_Static_assert(sizeof(allot_reservation_t) == 120,
               "a one-line hold with a short id is one 120-byte record (docs/benchmarks.md)");
_Static_assert(sizeof(allot_reservation_line_t) + sizeof(allot_reservation_allocation_t) == 48 &&
                   sizeof(allot_reservation_line_t) % 8 == 0,
               "an inline line is followed by its allocation, as in a block");

/* ---- heaps: live by (expires_at_ms, id), tombstones by (ended_ms, id) ---------------------- */

/* The heap entries hold (expires_at_ms or ended_ms, first 4 id bytes); the id decides the rest,
 * so equal deadlines go in id order, live, on replay and on every node of a group alike. */
static void expiry_key(const void *ctx, uint32_t item, allot_heap_entry_t *entry)
{
    const allot_state_t *state = ctx;
    const allot_reservation_t *r = &state->reservations[item];
    entry->key_ms = r->expires_at_ms;
    allot_str_t id = allot_reservation_id(r);
    allot_heap_tie_set(entry, id.ptr, id.len);
}

static void tombstone_key(const void *ctx, uint32_t item, allot_heap_entry_t *entry)
{
    const allot_state_t *state = ctx;
    const allot_reservation_t *r = &state->reservations[item];
    entry->key_ms = allot_reservation_ended_ms(r);
    allot_str_t id = allot_reservation_id(r);
    allot_heap_tie_set(entry, id.ptr, id.len);
}

static bool reservation_id_less(const void *ctx, uint32_t a, uint32_t b)
{
    const allot_state_t *state = ctx;
    allot_str_t x = allot_reservation_id(&state->reservations[a]);
    allot_str_t y = allot_reservation_id(&state->reservations[b]);
    return state_id_compare(x.ptr, x.len, y.ptr, y.len) < 0;
}

static void reservation_position_set(void *ctx, uint32_t item, uint32_t position)
{
    allot_state_t *state = ctx;
    state->reservations[item].heap_position = position;
}

int reservation_init(allot_state_t *state)
{
    allot_heap_init(&state->expiry_heap, expiry_key, reservation_id_less, reservation_position_set,
                    state);
    allot_heap_init(&state->tombstone_heap, tombstone_key, reservation_id_less,
                    reservation_position_set, state);
    state->reservation_free = ALLOT_SLOT_NONE;
    state->reservation_recent = ALLOT_SLOT_NONE;
    return 0;
}

void reservation_free_all(allot_state_t *state)
{
    for (uint32_t i = 0; i < state->reservation_slots; i++)
        if (state->reservations[i].used && !state->reservations[i].body_inline)
            free(state->reservations[i].body.other.block);
    allot_pages_free(state->reservations,
                     (size_t)state->reservation_capacity * sizeof(*state->reservations));
    allot_hash_free(&state->reservation_index);
    allot_heap_free(&state->expiry_heap);
    allot_heap_free(&state->tombstone_heap);
}

/* Is r the record of id? (A long id's bytes are in the block, which a record just taken may not
 * have yet.) */
static bool reservation_has_id(const allot_reservation_t *r, allot_str_t id)
{
    if (!r->used || r->id_len != id.len)
        return false;
    allot_str_t own = allot_reservation_id(r);
    return own.ptr != NULL && memcmp(own.ptr, id.ptr, id.len) == 0;
}

/* The slot last taken when it holds id, else ALLOT_SLOT_NONE: a new hold is looked up again by
 * its reserve and by the change stream right after its record is applied, and ids are unique, so
 * the record's own id decides without hashing or probing. */
static uint32_t reservation_slot_recent(const allot_state_t *state, allot_str_t id)
{
    uint32_t slot = state->reservation_recent;
    if (slot < state->reservation_slots && reservation_has_id(&state->reservations[slot], id))
        return slot;
    return ALLOT_SLOT_NONE;
}

static uint32_t reservation_slot_probe(const allot_state_t *state, allot_str_t id, uint32_t hash);

uint32_t reservation_slot_find(const allot_state_t *state, allot_str_t id)
{
    uint32_t slot = reservation_slot_recent(state, id);
    if (slot != ALLOT_SLOT_NONE)
        return slot;
    return reservation_slot_probe(state, id, allot_hash_bytes(id.ptr, id.len));
}

uint32_t reservation_slot_find_hashed(const allot_state_t *state, allot_str_t id, uint32_t hash)
{
    /* a new id's lookups (a miss each) skip the compare when the hashes differ */
    if (hash == state->reservation_recent_hash) {
        uint32_t slot = reservation_slot_recent(state, id);
        if (slot != ALLOT_SLOT_NONE)
            return slot;
    }
    return reservation_slot_probe(state, id, hash);
}

static uint32_t reservation_slot_probe(const allot_state_t *state, allot_str_t id, uint32_t hash)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(&state->reservation_index, hash, &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(&state->reservation_index, &probe)) != ALLOT_HASH_NONE) {
        const allot_reservation_t *r = &state->reservations[i];
        if (r->id_len == id.len && memcmp(allot_reservation_id(r).ptr, id.ptr, id.len) == 0)
            return i;
    }
    return ALLOT_SLOT_NONE;
}

/* ---- slab ------------------------------------------------------------------------------------ */

int reservation_slot_reserve(allot_state_t *state)
{
    /* new slots are taken in order: grow a lead ahead of the end (core/pages.h) */
    size_t lead = allot_pages_lead_items(state->reservation_capacity, sizeof(*state->reservations));
    bool full = state->reservation_free == ALLOT_SLOT_NONE &&
                state->reservation_slots == state->reservation_capacity;
    if (full || (lead > 0 && state->reservation_slots + lead >= state->reservation_capacity)) {
        uint32_t capacity = state->reservation_capacity ? state->reservation_capacity * 2 : 64;
        allot_reservation_t *r =
            allot_pages_resize(state->reservations, state->reservation_capacity * sizeof(*r),
                               capacity * sizeof(*r), allot_pages_lead_bytes(sizeof(*r)));
        if (r == NULL && full)
            return ALLOT_ENOMEM;
        if (r != NULL) {
            state->reservations = r;
            state->reservation_capacity = capacity;
        }
    }
    int rc = allot_hash_reserve(&state->reservation_index, 1);
    if (rc == 0)
        rc = allot_heap_reserve(&state->expiry_heap, 1);
    if (rc == 0)
        rc = allot_heap_reserve(&state->tombstone_heap, 1);
    return rc;
}

uint32_t reservation_slot_take(allot_state_t *state, allot_str_t id)
{
    return reservation_slot_take_hashed(state, id, allot_hash_bytes(id.ptr, id.len));
}

uint32_t reservation_slot_take_hashed(allot_state_t *state, allot_str_t id, uint32_t hash)
{
    assert(id.len > 0 && id.len <= ALLOT_ID_BYTES_MAX);
    uint32_t slot = state->reservation_free;
    if (slot != ALLOT_SLOT_NONE)
        state->reservation_free = state->reservations[slot].heap_position;
    else {
        slot = state->reservation_slots++;
        allot_pages_filled(state->reservations,
                           (size_t)state->reservation_capacity * sizeof(allot_reservation_t),
                           allot_pages_lead_bytes(sizeof(allot_reservation_t)),
                           (size_t)slot * sizeof(allot_reservation_t),
                           (size_t)(slot + 1) * sizeof(allot_reservation_t));
    }
    allot_reservation_t *r = &state->reservations[slot];
    memset(r, 0, sizeof(*r));
    r->id_len = (uint8_t)id.len;
    if (id.len <= ALLOT_RESERVATION_ID_INLINE_BYTES)
        memcpy(r->id_inline, id.ptr, id.len); /* NUL-terminated by the memset */
    r->used = true;
    state->reservation_recent = slot;
    state->reservation_recent_hash = hash;
    state_checkpoint_born(state, STATE_KEY_RESERVATION, slot);
    int rc = allot_hash_insert(&state->reservation_index, hash, slot);
    assert(rc == 0);
    (void)rc;
    return slot;
}

/* Forget a record entirely (it must be out of both heaps). */
void reservation_slot_drop(allot_state_t *state, uint32_t slot, bool record_deletion)
{
    allot_reservation_t *r = &state->reservations[slot];
    assert(r->used);
    state_touch(state, STATE_KEY_RESERVATION, slot); /* a checkpoint may still need it */
    allot_str_t id = allot_reservation_id(r);
    if (record_deletion)
        state_deleted_record(state, STATE_KEY_RESERVATION, id.ptr, id.len);
    allot_hash_remove(&state->reservation_index, allot_hash_bytes(id.ptr, id.len), slot);
    if (!r->body_inline)
        free(r->body.other.block);
    memset(r, 0, sizeof(*r));
    r->heap_position = state->reservation_free;
    state->reservation_free = slot;
}

bool reservation_body_fits_inline(const allot_event_reservation_t *e)
{
    return e->line_count == 1 && e->allocation_count == 1 && e->customer.len == 0 &&
           !e->allocations[0].supply && e->id.len <= ALLOT_RESERVATION_ID_INLINE_BYTES;
}

void reservation_body_end(allot_reservation_t *r)
{
    uint32_t id_at = allot_reservation_lines_at(r->id_len); /* a long id's bytes, 0 for a short */
    if (r->body_inline) {
        r->body_inline = false;
        r->body.other.block = NULL;
        r->body.other.ended_ms = 0;
    } else if (id_at == 0) {
        free(r->body.other.block);
        r->body.other.block = NULL;
    } else if (r->line_count > 0) { /* keep the id, give back the rest (the shrink keeps it) */
        char *block = realloc(r->body.other.block, id_at);
        if (block != NULL)
            r->body.other.block = block;
    }
    r->customer_len = 0;
    r->line_count = 0;
    r->allocation_count = 0;
}

static void tombstone_drop_top(allot_state_t *state)
{
    uint32_t top = allot_heap_top(&state->tombstone_heap);
    allot_heap_remove_at(&state->tombstone_heap, 0);
    reservation_slot_drop(state, top, true);
    state->reservation_tombstones--;
}

/* Make room for one more tombstone at at_ms: the count bound first, then aged-out ones, at most
 * ALLOT_EVICTIONS_PER_INSERT_MAX in all. The oldest ended_ms is the heap's top key: no need to
 * read the record to know. */
void reservation_tombstone_evict(allot_state_t *state, int64_t at_ms)
{
    const allot_heap_t *heap = &state->tombstone_heap;
    uint32_t evictions = 0;
    for (; evictions < ALLOT_EVICTIONS_PER_INSERT_MAX && state->reservation_tombstones > 0 &&
           state->reservation_tombstones >= state->config.idempotency_entries_max;
         evictions++) {
        state_idempotency_count_evicted(state, at_ms, allot_heap_top_key_ms(heap));
        tombstone_drop_top(state);
    }
    for (; evictions < ALLOT_EVICTIONS_PER_INSERT_MAX && state->reservation_tombstones > 0;
         evictions++) {
        if (!state_idempotency_aged(state, at_ms, allot_heap_top_key_ms(heap)))
            break;
        tombstone_drop_top(state);
    }
}

/* ---- snapshots --------------------------------------------------------------------------------
 */

int reservation_build_reserve(allot_state_t *state, uint32_t allocations)
{
    if (allocations <= state->build_allocation_capacity)
        return 0;
    void *p = realloc(state->build_allocations, allocations * sizeof(allot_event_allocation_t));
    if (p == NULL)
        return ALLOT_ENOMEM;
    state->build_allocations = p;
    state->build_allocation_capacity = allocations;
    return 0;
}

uint32_t reservation_snapshot_slots(const allot_state_t *state)
{
    return state->reservation_slots;
}

uint8_t *reservation_snapshot_marks(allot_state_t *state, uint32_t index)
{
    return index < state->reservation_slots && state->reservations[index].used
               ? &state->reservations[index].dirty
               : NULL;
}

int reservation_snapshot_take(allot_state_t *state, uint32_t slot, bool full, allot_bytes_t *out,
                              allot_str_t *id)
{
    (void)full;
    const allot_reservation_t *r = &state->reservations[slot];
    assert(r->used);
    *id = allot_reservation_id(r);
    int rc = reservation_build_reserve(state, r->allocation_count);
    if (rc != 0)
        return rc;
    allot_event_t event; /* not zeroed whole (3.3 KB): every field the encoding reads is set */
    event.type = ALLOT_EVENT_RESERVATION_SNAPSHOT;
    allot_event_reservation_t *e = &event.u.reservation;
    e->id = *id;
    e->at_ms = 0;
    e->ticket = 0;
    e->status = r->status;
    e->request_hash = r->request_hash;
    e->created_ms = r->created_ms;
    e->expires_at_ms = r->expires_at_ms;
    e->ended_ms = allot_reservation_ended_ms(r);
    e->customer = allot_reservation_customer(r);
    e->line_count = r->line_count;
    e->allocation_count = r->allocation_count;
    e->allocations = state->build_allocations;
    const allot_reservation_line_t *lines = allot_reservation_lines(r);
    const allot_reservation_allocation_t *allocations = allot_reservation_allocations(r);
    for (uint32_t i = 0; i < r->line_count; i++) {
        const allot_reservation_line_t *line = &lines[i];
        e->lines[i] =
            (allot_event_line_t){allot_sku_id(&state->skus[line->sku]), line->qty_requested,
                                 line->allocation_first, line->allocation_count};
    }
    for (uint32_t k = 0; k < r->allocation_count; k++) {
        const allot_reservation_allocation_t *a = &allocations[k];
        bool supply = a->location == ALLOT_LOCATION_SUPPLY;
        allot_str_t at = supply ? allot_reservation_allocation_supply(r, a)
                                : allot_location_id(&state->locations[a->location]);
        e->allocations[k] = (allot_event_allocation_t){at, a->qty, supply};
    }
    return allot_event_encode(&event, out);
}
