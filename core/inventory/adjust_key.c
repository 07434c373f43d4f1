/* adjust_key.c - stock.adjust idempotency keys: slab, hash by key, min-heap by (at_ms, key) for
 * eviction by age and count. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory.h"
#include "core/inventory/inventory_private.h"

/* The heap entries hold (at_ms, first 20 key bytes); the key decides the rest. */
static void adjust_key_heap_key(const void *ctx, uint32_t item, allot_heap_entry_t *entry)
{
    const allot_state_t *state = ctx;
    const allot_adjust_key_t *k = &state->adjust_keys[item];
    entry->key_ms = k->at_ms;
    allot_heap_tie_set(entry, k->key, k->key_len);
}

static bool adjust_key_less(const void *ctx, uint32_t a, uint32_t b)
{
    const allot_state_t *state = ctx;
    const allot_adjust_key_t *x = &state->adjust_keys[a], *y = &state->adjust_keys[b];
    return state_id_compare(x->key, x->key_len, y->key, y->key_len) < 0;
}

static void adjust_key_position_set(void *ctx, uint32_t item, uint32_t position)
{
    allot_state_t *state = ctx;
    state->adjust_keys[item].heap_position = position;
}

int adjust_key_init(allot_state_t *state)
{
    allot_heap_init(&state->adjust_key_heap, adjust_key_heap_key, adjust_key_less,
                    adjust_key_position_set, state);
    state->adjust_key_free = ALLOT_SLOT_NONE;
    return 0;
}

void adjust_key_free_all(allot_state_t *state)
{
    for (uint32_t i = 0; i < state->adjust_key_slots; i++)
        if (state->adjust_keys[i].used)
            free(state->adjust_keys[i].key);
    free(state->adjust_keys);
    allot_hash_free(&state->adjust_key_index);
    allot_heap_free(&state->adjust_key_heap);
}

uint32_t adjust_key_find(const allot_state_t *state, allot_str_t key)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(&state->adjust_key_index, allot_hash_bytes(key.ptr, key.len), &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(&state->adjust_key_index, &probe)) != ALLOT_HASH_NONE) {
        const allot_adjust_key_t *k = &state->adjust_keys[i];
        if (k->key_len == key.len && memcmp(k->key, key.ptr, key.len) == 0)
            return i;
    }
    return ALLOT_SLOT_NONE;
}

int adjust_key_reserve(allot_state_t *state)
{
    if (state->adjust_key_free == ALLOT_SLOT_NONE &&
        state->adjust_key_slots == state->adjust_key_capacity) {
        uint32_t capacity = state->adjust_key_capacity ? state->adjust_key_capacity * 2 : 64;
        allot_adjust_key_t *k = realloc(state->adjust_keys, capacity * sizeof(*k));
        if (k == NULL)
            return ALLOT_ENOMEM;
        state->adjust_keys = k;
        state->adjust_key_capacity = capacity;
    }
    int rc = allot_hash_reserve(&state->adjust_key_index, 1);
    if (rc == 0)
        rc = allot_heap_reserve(&state->adjust_key_heap, 1);
    if (rc == 0)
        rc = state_dirty_reserve(state, 0, 1, 0, 1);
    return rc;
}

static void adjust_key_remove(allot_state_t *state, uint32_t slot)
{
    allot_adjust_key_t *k = &state->adjust_keys[slot];
    assert(k->used);
    state_touch(state, STATE_KEY_ADJUST_KEY, slot); /* a checkpoint may still need it */
    state_deleted_record(state, STATE_KEY_ADJUST_KEY, k->key, k->key_len);
    allot_hash_remove(&state->adjust_key_index, k->hash, slot);
    allot_heap_remove_at(&state->adjust_key_heap, k->heap_position);
    free(k->key);
    k->key = NULL;
    k->used = false;
    k->dirty = 0;
    k->heap_position = state->adjust_key_free;
    state->adjust_key_free = slot;
    state->adjust_key_count--;
}

/* Make room for one more key at at_ms: the count bound first, then aged-out keys, at most
 * ALLOT_EVICTIONS_PER_INSERT_MAX in all. The oldest at_ms is the heap's top key: no need to read
 * the key's record. */
static void adjust_key_evict(allot_state_t *state, int64_t at_ms)
{
    allot_heap_t *heap = &state->adjust_key_heap;
    uint32_t evictions = 0;
    for (; evictions < ALLOT_EVICTIONS_PER_INSERT_MAX &&
           state->adjust_key_count >= state->config.idempotency_entries_max;
         evictions++) {
        state_idempotency_count_evicted(state, at_ms, allot_heap_top_key_ms(heap));
        adjust_key_remove(state, allot_heap_top(heap));
    }
    for (; evictions < ALLOT_EVICTIONS_PER_INSERT_MAX && state->adjust_key_count > 0; evictions++) {
        if (!state_idempotency_aged(state, at_ms, allot_heap_top_key_ms(heap)))
            break;
        adjust_key_remove(state, allot_heap_top(heap));
    }
}

/* Infallible after adjust_key_reserve(); the key must not be present. */
static uint32_t adjust_key_insert(allot_state_t *state, allot_str_t key, char *copy)
{
    uint32_t slot = state->adjust_key_free;
    if (slot != ALLOT_SLOT_NONE)
        state->adjust_key_free = state->adjust_keys[slot].heap_position;
    else
        slot = state->adjust_key_slots++;
    allot_adjust_key_t *k = &state->adjust_keys[slot];
    memset(k, 0, sizeof(*k));
    k->key = copy;
    k->key_len = key.len;
    k->hash = allot_hash_bytes(key.ptr, key.len);
    k->used = true;
    state_checkpoint_born(state, STATE_KEY_ADJUST_KEY, slot);
    int rc = allot_hash_insert(&state->adjust_key_index, k->hash, slot);
    assert(rc == 0);
    (void)rc;
    state->adjust_key_count++;
    return slot;
}

/* The key's SKU and location are those the record's prepare found; the rest is `values`. */
static void adjust_key_fill(allot_state_t *state, allot_adjust_key_t *k,
                            const allot_adjust_key_t *values)
{
    k->sku = state->prepared_sku;
    k->location = state->prepared_location;
    assert(k->sku != ALLOT_SKU_NONE && k->location != ALLOT_LOCATION_NONE);
    k->delta = values->delta;
    k->at_ms = values->at_ms;
    k->on_hand = values->on_hand;
    k->reserved = values->reserved;
    k->allocated = values->allocated;
    k->safety_stock = values->safety_stock;
    k->available = values->available;
}

void adjust_key_store(allot_state_t *state, allot_str_t key, const allot_adjust_key_t *values)
{
    uint32_t slot = adjust_key_find(state, key);
    if (slot != ALLOT_SLOT_NONE) {
        adjust_key_dirty(state, slot); /* before the change (checkpoint pre-image) */
        adjust_key_fill(state, &state->adjust_keys[slot], values);
        allot_heap_update_at(&state->adjust_key_heap, state->adjust_keys[slot].heap_position);
        return;
    }
    adjust_key_evict(state, values->at_ms);
    assert(state->pending_key != NULL);
    slot = adjust_key_insert(state, key, state->pending_key);
    state->pending_key = NULL;
    allot_adjust_key_t *k = &state->adjust_keys[slot];
    adjust_key_fill(state, k, values);
    int rc = allot_heap_push(&state->adjust_key_heap, slot);
    assert(rc == 0);
    (void)rc;
    adjust_key_dirty(state, slot);
}
