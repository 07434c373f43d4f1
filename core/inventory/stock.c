/* stock.c - stock.set / stock.adjust, adjust-key idempotency, and the stock event apply. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory.h"
#include "core/state_private.h"

/* ---- adjust keys: slab + hash by key + min-heap by (at_ms, key) for eviction ---------------- */

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

static uint32_t adjust_key_find(const allot_state_t *state, allot_str_t key)
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

static int adjust_key_reserve(allot_state_t *state)
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

static void adjust_key_fill(allot_state_t *state, allot_adjust_key_t *k, const allot_event_t *event)
{
    const allot_event_adjust_key_t *snap = &event->u.adjust_key;
    const allot_event_stock_adjust_t *adj = &event->u.stock_adjust;
    bool is_snapshot = event->type == ALLOT_EVENT_ADJUST_KEY_SNAPSHOT;
    k->sku = state->prepared_sku; /* stock_apply_prepare found them */
    k->location = state->prepared_location;
    assert(k->sku != ALLOT_SKU_NONE && k->location != ALLOT_LOCATION_NONE);
    k->delta = is_snapshot ? snap->delta : adj->delta;
    k->at_ms = is_snapshot ? snap->at_ms : adj->at_ms;
    if (is_snapshot) {
        k->on_hand = snap->on_hand;
        k->reserved = snap->reserved;
        k->allocated = snap->allocated;
        k->safety_stock = snap->safety_stock;
        k->available = snap->available;
        return;
    }
    const allot_position_t *p = inventory_position_mut(state, k->sku, k->location);
    k->on_hand = p->on_hand;
    k->reserved = p->reserved;
    k->allocated = p->allocated;
    k->safety_stock = p->safety_stock;
    k->available = allot_position_available(p);
}

/* Remember (or, for snapshots, overwrite) a key. Infallible after stock_apply_prepare(). */
static void adjust_key_store(allot_state_t *state, allot_str_t key, const allot_event_t *event)
{
    uint32_t slot = adjust_key_find(state, key);
    if (slot != ALLOT_SLOT_NONE) {
        state_dirty_adjust_key(state, slot); /* before the change (checkpoint pre-image) */
        adjust_key_fill(state, &state->adjust_keys[slot], event);
        allot_heap_update_at(&state->adjust_key_heap, state->adjust_keys[slot].heap_position);
        return;
    }
    allot_adjust_key_t probe_key;
    adjust_key_fill(state, &probe_key, event);
    adjust_key_evict(state, probe_key.at_ms);
    assert(state->pending_key != NULL);
    slot = adjust_key_insert(state, key, state->pending_key);
    state->pending_key = NULL;
    allot_adjust_key_t *k = &state->adjust_keys[slot];
    adjust_key_fill(state, k, event);
    int rc = allot_heap_push(&state->adjust_key_heap, slot);
    assert(rc == 0);
    (void)rc;
    state_dirty_adjust_key(state, slot);
}

/* ---- stock.set --------------------------------------------------------------------------------
 */

static int stock_ids_check(allot_state_t *state, allot_str_t sku, allot_str_t location,
                           uint32_t *location_index, allot_error_detail_t *detail)
{
    if (!allot_id_valid(sku))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "sku",
                               "sku must be 1..128 bytes of UTF-8");
    if (!allot_id_valid(location))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "location",
                               "location must be 1..128 bytes of UTF-8");
    *location_index = allot_location_index_find(state, location);
    if (*location_index == ALLOT_LOCATION_NONE)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "location", "location %s not found",
                               allot_str_echo(location, &(allot_echo_t){0}));
    return 0;
}

static void stock_result_fill(allot_state_t *state, allot_str_t sku, uint32_t location,
                              allot_stock_result_t *out)
{
    if (out == NULL)
        return;
    uint32_t sku_index = allot_sku_index_find(state, sku);
    const allot_position_t *p =
        sku_index == ALLOT_SKU_NONE ? NULL : inventory_position_mut(state, sku_index, location);
    assert(p != NULL);
    inventory_position_view(state, sku_index, p, &out->position);
    out->stale = out->repeated = false;
}

int allot_stock_set(allot_state_t *state, const allot_stock_set_input_t *in,
                    allot_stock_result_t *out, allot_error_detail_t *detail)
{
    uint32_t location;
    int rc = stock_ids_check(state, in->sku, in->location, &location, detail);
    if (rc != 0)
        return rc;
    if (in->on_hand < 0 || in->on_hand > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "on_hand",
                               "on_hand must be 0..%lld", (long long)ALLOT_QUANTITY_MAX);
    if (in->has_safety_stock && (in->safety_stock < 0 || in->safety_stock > ALLOT_QUANTITY_MAX))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "safety_stock",
                               "safety_stock must be 0..%lld", (long long)ALLOT_QUANTITY_MAX);
    if (in->has_as_of_ms && in->as_of_ms == ALLOT_AS_OF_NONE)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "as_of_ms", "as_of_ms too small");
    uint32_t sku = allot_sku_index_find(state, in->sku);
    const allot_position_t *p =
        sku == ALLOT_SKU_NONE ? NULL : inventory_position_mut(state, sku, location);
    if (p != NULL && in->has_as_of_ms && in->as_of_ms < p->as_of_ms) {
        stock_result_fill(state, in->sku, location, out);
        if (out != NULL)
            out->stale = true;
        return 0;
    }
    allot_event_t event = {.type = ALLOT_EVENT_STOCK_SET};
    allot_event_stock_set_t *e = &event.u.stock_set;
    e->sku = in->sku;
    e->location = in->location;
    e->on_hand = in->on_hand;
    e->safety_stock = in->has_safety_stock ? in->safety_stock : (p ? p->safety_stock : 0);
    e->as_of_ms = in->has_as_of_ms ? in->as_of_ms : (p ? p->as_of_ms : ALLOT_AS_OF_NONE);
    rc = allot_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    stock_result_fill(state, in->sku, location, out);
    return 0;
}

/* ---- stock.adjust -----------------------------------------------------------------------------
 */

static int stock_adjust_repeat(allot_state_t *state, const allot_stock_adjust_input_t *in,
                               uint32_t location, uint32_t slot, allot_stock_result_t *out,
                               allot_error_detail_t *detail)
{
    const allot_adjust_key_t *k = &state->adjust_keys[slot];
    allot_str_t sku = allot_sku_id(&state->skus[k->sku]);
    if (!allot_str_equal(sku, in->sku) || k->location != location || k->delta != in->delta)
        return allot_error_set(detail, ALLOT_ECONFLICT, "key",
                               "key %s was used for a different adjustment",
                               allot_str_echo(in->key, &(allot_echo_t){0}));
    if (out != NULL) {
        out->position = (allot_position_view_t){
            .sku = sku,
            .location = allot_location_id(&state->locations[location]),
            .on_hand = k->on_hand,
            .reserved = k->reserved,
            .allocated = k->allocated,
            .safety_stock = k->safety_stock,
            .available = k->available,
        };
        out->stale = false;
        out->repeated = true;
    }
    return 0;
}

static int stock_adjust_check(const allot_stock_adjust_input_t *in, allot_error_detail_t *detail)
{
    if (in->delta == 0 || in->delta < -ALLOT_QUANTITY_MAX || in->delta > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "delta",
                               "delta must be non-zero and at most %lld in size",
                               (long long)ALLOT_QUANTITY_MAX);
    if (in->key.len > 0 && !allot_id_valid(in->key))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "key",
                               "key must be 1..128 bytes of UTF-8");
    return 0;
}

int allot_stock_adjust(allot_state_t *state, const allot_stock_adjust_input_t *in, int64_t now_ms,
                       allot_stock_result_t *out, allot_error_detail_t *detail)
{
    uint32_t location;
    int rc = stock_ids_check(state, in->sku, in->location, &location, detail);
    if (rc == 0)
        rc = stock_adjust_check(in, detail);
    if (rc != 0)
        return rc;
    uint32_t slot = in->key.len > 0 ? adjust_key_find(state, in->key) : ALLOT_SLOT_NONE;
    if (slot != ALLOT_SLOT_NONE)
        return stock_adjust_repeat(state, in, location, slot, out, detail);
    uint32_t sku = allot_sku_index_find(state, in->sku);
    const allot_position_t *p =
        sku == ALLOT_SKU_NONE ? NULL : inventory_position_mut(state, sku, location);
    int64_t on_hand = p ? p->on_hand : 0;
    if (on_hand + in->delta < 0) {
        detail->shortfall_count = 1;
        detail->shortfalls[0] = (allot_shortfall_t){in->sku, -in->delta, on_hand};
        return allot_error_set(detail, ALLOT_EINSUFFICIENT_STOCK, "delta",
                               "on_hand %lld cannot drop by %lld", (long long)on_hand,
                               (long long)-in->delta);
    }
    if (on_hand + in->delta > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "delta",
                               "on_hand would exceed %lld", (long long)ALLOT_QUANTITY_MAX);
    allot_event_t event = {.type = ALLOT_EVENT_STOCK_ADJUST};
    event.u.stock_adjust = (allot_event_stock_adjust_t){
        in->sku, in->location, in->delta, on_hand + in->delta, now_ms, in->key};
    rc = allot_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    stock_result_fill(state, in->sku, location, out);
    return 0;
}

/* ---- apply ------------------------------------------------------------------------------------
 */

static int stock_prepare_position(allot_state_t *state, allot_str_t sku_id, allot_str_t location)
{
    uint32_t l = allot_location_index_find(state, location);
    if (l == ALLOT_LOCATION_NONE)
        return ALLOT_ECORRUPT;
    uint32_t sku;
    int rc = inventory_sku_intern(state, sku_id, &sku);
    if (rc == 0)
        rc = inventory_position_reserve(state, sku, l);
    if (rc == 0)
        rc = state_dirty_reserve(state, 0, 1, 0, 0);
    state->prepared_sku = sku;
    state->prepared_location = l;
    return rc;
}

static int stock_prepare_key(allot_state_t *state, allot_str_t key, bool must_be_new)
{
    if (key.len == 0)
        return 0;
    if (adjust_key_find(state, key) != ALLOT_SLOT_NONE)
        return must_be_new ? ALLOT_ECORRUPT : 0;
    int rc = adjust_key_reserve(state);
    if (rc != 0)
        return rc;
    if (state->pending_key == NULL)
        state->pending_key = malloc(ALLOT_ID_BYTES_MAX + 1);
    if (state->pending_key == NULL)
        return ALLOT_ENOMEM;
    memcpy(state->pending_key, key.ptr, key.len);
    state->pending_key[key.len] = '\0';
    return 0;
}

static int position_location_compare(const void *a, const void *b)
{
    uint32_t x = ((const allot_position_t *)a)->location;
    uint32_t y = ((const allot_position_t *)b)->location;
    return x < y ? -1 : x > y;
}

/* A checkpoint load resolves the same few location ids, in the same order, SKU after SKU: try
 * the location found at this ordinal last time (a byte compare) before hashing. */
static uint32_t snapshot_location_find(const allot_state_t *state, uint32_t *memo,
                                       uint32_t ordinal, allot_str_t id)
{
    if (ordinal >= ALLOT_SKU_BUILDER_MEMO)
        return allot_location_index_find(state, id);
    uint32_t guess = memo[ordinal];
    if (guess < state->location_count && state->locations[guess].id_len == id.len &&
        memcmp(state->locations[guess].id, id.ptr, id.len) == 0)
        return guess;
    uint32_t found = allot_location_index_find(state, id);
    memo[ordinal] = found;
    return found;
}

/* The positions of a decoded snapshot, sorted by location (NULL when it has none). Reads only
 * the state's locations. */
static int sku_snapshot_positions(const allot_state_t *state, uint32_t *memo,
                                  const allot_event_sku_snapshot_t *e, allot_position_t **out)
{
    *out = NULL;
    if (e->position_count == 0)
        return 0;
    allot_position_t *positions = calloc(e->position_count, sizeof(*positions));
    if (positions == NULL)
        return ALLOT_ENOMEM;
    for (uint32_t i = 0; i < e->position_count; i++) {
        const allot_event_position_t *src = &e->positions[i];
        uint32_t l = snapshot_location_find(state, memo, i, src->location);
        if (l == ALLOT_LOCATION_NONE) {
            free(positions);
            return ALLOT_ECORRUPT;
        }
        positions[i] = (allot_position_t){
            src->on_hand, src->reserved, src->allocated, src->safety_stock, src->as_of_ms, l, 0};
    }
    /* indices may differ from the writer's (checkpoint load order): sort, refuse duplicates */
    bool sorted = true;
    for (uint32_t i = 1; i < e->position_count && sorted; i++)
        sorted = positions[i - 1].location < positions[i].location;
    if (!sorted)
        qsort(positions, e->position_count, sizeof(*positions), position_location_compare);
    for (uint32_t i = 1; i < e->position_count; i++) {
        if (positions[i].location == positions[i - 1].location) {
            free(positions);
            return ALLOT_ECORRUPT;
        }
    }
    *out = positions;
    return 0;
}

/* The SKU exists and a commit cannot fail: from here on, sku_snapshot_commit. */
static int sku_snapshot_make_room(allot_state_t *state, allot_str_t id, uint32_t hash,
                                  uint32_t *sku)
{
    int rc = inventory_sku_intern_hashed(state, id, hash, sku);
    return rc != 0 ? rc : state_dirty_reserve(state, 0, 1, 0, 0);
}

/* Positions first, then the SKU: the order of checks allot_sku_snapshot_build + install has. */
static int sku_snapshot_prepare(allot_state_t *state, const allot_event_sku_snapshot_t *e)
{
    free(state->pending_positions);
    int rc = sku_snapshot_positions(state, state->snapshot_location_memo, e,
                                    &state->pending_positions);
    if (rc == 0)
        rc = sku_snapshot_make_room(state, e->sku, allot_hash_bytes(e->sku.ptr, e->sku.len),
                                    &state->prepared_sku);
    return rc;
}

int stock_apply_prepare(allot_state_t *state, const allot_event_t *event)
{
    int rc;
    switch (event->type) {
    case ALLOT_EVENT_STOCK_SET:
        return stock_prepare_position(state, event->u.stock_set.sku, event->u.stock_set.location);
    case ALLOT_EVENT_STOCK_ADJUST:
        rc = stock_prepare_position(state, event->u.stock_adjust.sku,
                                    event->u.stock_adjust.location);
        return rc != 0 ? rc : stock_prepare_key(state, event->u.stock_adjust.key, true);
    case ALLOT_EVENT_SKU_SNAPSHOT:
        return sku_snapshot_prepare(state, &event->u.sku_snapshot);
    case ALLOT_EVENT_ADJUST_KEY_SNAPSHOT:
        state->prepared_location = allot_location_index_find(state, event->u.adjust_key.location);
        if (state->prepared_location == ALLOT_LOCATION_NONE)
            return ALLOT_ECORRUPT;
        rc = inventory_sku_intern(state, event->u.adjust_key.sku, &state->prepared_sku);
        return rc != 0 ? rc : stock_prepare_key(state, event->u.adjust_key.key, false);
    default:
        return ALLOT_ECORRUPT;
    }
}

/* The prepared positions (state->pending_positions) become those of the SKU at sku_index. */
static void sku_snapshot_commit(allot_state_t *state, uint32_t sku_index, uint32_t position_count)
{
    state_dirty_sku(state, sku_index); /* before the change (checkpoint pre-image) */
    allot_sku_t *sku = inventory_sku_mut(state, sku_index);
    state->position_count -= sku->position_count;
    if (sku->position_count > 0)
        state->skus_stocked--;
    free(sku->positions);
    sku->positions = state->pending_positions;
    sku->position_count = sku->position_capacity = (uint16_t)position_count;
    state->pending_positions = NULL;
    state->position_count += sku->position_count;
    if (sku->position_count > 0)
        state->skus_stocked++;
}

void allot_sku_builder_init(allot_sku_builder_t *builder)
{
    memset(builder, 0, sizeof(*builder));
}

void allot_sku_builder_free(allot_sku_builder_t *builder)
{
    allot_event_scratch_free(&builder->scratch);
}

int allot_sku_snapshot_build(const allot_state_t *state, allot_sku_builder_t *builder,
                             uint8_t type, const uint8_t *payload, size_t len,
                             allot_sku_build_t *out)
{
    *out = (allot_sku_build_t){0};
    if (type != ALLOT_EVENT_SKU_SNAPSHOT)
        return ALLOT_ECORRUPT;
    allot_event_t event;
    int rc = allot_event_decode(type, payload, len, &builder->scratch, &event);
    if (rc == 0)
        rc = sku_snapshot_positions(state, builder->location_memo, &event.u.sku_snapshot,
                                    &out->positions);
    if (rc != 0)
        return rc;
    out->sku = event.u.sku_snapshot.sku;
    out->sku_hash = allot_hash_bytes(out->sku.ptr, out->sku.len);
    out->position_count = event.u.sku_snapshot.position_count;
    return 0;
}

void allot_sku_snapshot_prefetch(const allot_state_t *state, const allot_sku_build_t *build)
{
    allot_hash_prefetch(&state->sku_index, build->sku_hash);
}

void allot_sku_snapshot_discard(allot_sku_build_t *build)
{
    free(build->positions);
    build->positions = NULL;
}

int allot_sku_snapshot_install(allot_state_t *state, allot_sku_build_t *build)
{
    uint32_t sku;
    int rc = sku_snapshot_make_room(state, build->sku, build->sku_hash, &sku);
    if (rc != 0) {
        allot_sku_snapshot_discard(build);
        return rc;
    }
    free(state->pending_positions);
    state->pending_positions = build->positions;
    build->positions = NULL;
    sku_snapshot_commit(state, sku, build->position_count);
    return 0;
}

void stock_apply_commit(allot_state_t *state, const allot_event_t *event)
{
    if (event->type == ALLOT_EVENT_SKU_SNAPSHOT) {
        sku_snapshot_commit(state, state->prepared_sku, event->u.sku_snapshot.position_count);
        return;
    }
    if (event->type == ALLOT_EVENT_ADJUST_KEY_SNAPSHOT) {
        adjust_key_store(state, event->u.adjust_key.key, event);
        return;
    }
    bool is_set = event->type == ALLOT_EVENT_STOCK_SET;
    uint32_t sku = state->prepared_sku; /* stock_prepare_position found them */
    state_dirty_sku(state, sku);        /* before the change (checkpoint pre-image) */
    allot_position_t *p = inventory_position_upsert(state, sku, state->prepared_location);
    if (is_set) {
        p->on_hand = event->u.stock_set.on_hand;
        p->safety_stock = event->u.stock_set.safety_stock;
        p->as_of_ms = event->u.stock_set.as_of_ms;
    } else {
        p->on_hand = event->u.stock_adjust.on_hand_after;
    }
    if (!is_set && event->u.stock_adjust.key.len > 0)
        adjust_key_store(state, event->u.stock_adjust.key, event);
}
