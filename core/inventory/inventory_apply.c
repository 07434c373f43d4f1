/* inventory_apply.c - the one apply of inventory events: locations, stock, SKU and adjust-key
 * snapshots (prepare may fail and changes nothing; commit cannot fail). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory.h"
#include "core/inventory/inventory_private.h"

/* ---- locations ------------------------------------------------------------------------------ */

/* location.put and location.snapshot: an existing location is updated in place. */
int location_put_prepare(allot_state_t *state, const allot_event_location_t *e)
{
    int rc = state_dirty_reserve(state, 1, 0, 0, 0);
    if (rc != 0)
        return rc;
    if (allot_location_index_find(state, e->id) != ALLOT_LOCATION_NONE)
        return 0;
    if (state->location_count >= ALLOT_LOCATIONS_MAX)
        return ALLOT_ECORRUPT;
    if (state->location_count == state->location_capacity) {
        uint32_t capacity = state->location_capacity ? state->location_capacity * 2 : 16;
        allot_location_t *l = realloc(state->locations, capacity * sizeof(*l));
        if (l == NULL)
            return ALLOT_ENOMEM;
        uint32_t *stamps = realloc(state->location_stamp, capacity * sizeof(*stamps));
        if (stamps == NULL) {
            state->locations = l;
            return ALLOT_ENOMEM;
        }
        state->locations = l;
        state->location_stamp = stamps;
        state->location_capacity = capacity;
    }
    return allot_hash_reserve(&state->location_index, 1);
}

/* The location (created if new), marked dirty before it changes; the capacity count is kept. */
static allot_location_t *location_commit(allot_state_t *state, const allot_event_location_t *e)
{
    uint32_t index = allot_location_index_find(state, e->id);
    if (index == ALLOT_LOCATION_NONE) {
        index = state->location_count++;
        allot_location_t *l = &state->locations[index];
        memset(l, 0, sizeof(*l));
        memcpy(l->id, e->id.ptr, e->id.len);
        l->id_len = e->id.len;
        l->hash = allot_hash_bytes(e->id.ptr, e->id.len);
        state->location_stamp[index] = 0;
        int rc = allot_hash_insert(&state->location_index, l->hash, index);
        assert(rc == 0);
        (void)rc;
    }
    inventory_location_dirty(state, index); /* before the change (checkpoint pre-image) */
    allot_location_t *l = &state->locations[index];
    l->type = e->type;
    l->ship = e->ship;
    l->pickup = e->pickup;
    l->active = e->active;
    l->lat = e->lat;
    l->lon = e->lon;
    l->priority = e->priority;
    l->same_day_radius_km = e->same_day_radius_km;
    l->daily_capacity = e->daily_capacity;
    l->calendar = e->calendar;
    return l;
}

void location_put_commit(allot_state_t *state, const allot_event_location_t *e)
{
    location_commit(state, e);
}

void location_snapshot_commit(allot_state_t *state, const allot_event_location_t *e)
{
    allot_location_t *l = location_commit(state, e);
    l->capacity_day = e->capacity_day;
    l->capacity_count = e->capacity_count;
}

/* ---- stock ---------------------------------------------------------------------------------- */

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
static uint32_t snapshot_location_find(const allot_state_t *state, uint32_t *memo, uint32_t ordinal,
                                       allot_str_t id)
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
int sku_snapshot_positions(const allot_state_t *state, uint32_t *memo,
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

/* The SKU exists and a commit cannot fail: from here on, sku_positions_install. */
int sku_snapshot_make_room(allot_state_t *state, allot_str_t id, uint32_t hash, uint32_t *sku)
{
    int rc = inventory_sku_intern_hashed(state, id, hash, sku);
    return rc != 0 ? rc : state_dirty_reserve(state, 0, 1, 0, 0);
}

/* Positions first, then the SKU: the order of checks allot_sku_snapshot_build + install has. */
int sku_snapshot_prepare(allot_state_t *state, const allot_event_sku_snapshot_t *e)
{
    free(state->pending_positions);
    int rc =
        sku_snapshot_positions(state, state->snapshot_location_memo, e, &state->pending_positions);
    if (rc == 0)
        rc = sku_snapshot_make_room(state, e->sku, allot_hash_bytes(e->sku.ptr, e->sku.len),
                                    &state->prepared_sku);
    return rc;
}

int stock_set_prepare(allot_state_t *state, const allot_event_stock_set_t *e)
{
    return stock_prepare_position(state, e->sku, e->location);
}

int stock_adjust_prepare(allot_state_t *state, const allot_event_stock_adjust_t *e)
{
    int rc = stock_prepare_position(state, e->sku, e->location);
    return rc != 0 ? rc : stock_prepare_key(state, e->key, true);
}

int adjust_key_snapshot_prepare(allot_state_t *state, const allot_event_adjust_key_t *e)
{
    state->prepared_location = allot_location_index_find(state, e->location);
    if (state->prepared_location == ALLOT_LOCATION_NONE)
        return ALLOT_ECORRUPT;
    int rc = inventory_sku_intern(state, e->sku, &state->prepared_sku);
    return rc != 0 ? rc : stock_prepare_key(state, e->key, false);
}

/* The prepared positions (state->pending_positions) become those of the SKU at sku_index. */
void sku_positions_install(allot_state_t *state, uint32_t sku_index, uint32_t position_count)
{
    inventory_sku_dirty(state, sku_index); /* before the change (checkpoint pre-image) */
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

void sku_snapshot_commit(allot_state_t *state, const allot_event_sku_snapshot_t *e)
{
    sku_positions_install(state, state->prepared_sku, e->position_count);
}

/* The position stock_prepare_position found (inserted if new), marked dirty before it changes. */
static allot_position_t *stock_position_commit(allot_state_t *state)
{
    uint32_t sku = state->prepared_sku;
    inventory_sku_dirty(state, sku); /* before the change (checkpoint pre-image) */
    return inventory_position_upsert(state, sku, state->prepared_location);
}

void stock_set_commit(allot_state_t *state, const allot_event_stock_set_t *e)
{
    allot_position_t *p = stock_position_commit(state);
    p->on_hand = e->on_hand;
    p->safety_stock = e->safety_stock;
    p->as_of_ms = e->as_of_ms;
}

void stock_adjust_commit(allot_state_t *state, const allot_event_stock_adjust_t *e)
{
    allot_position_t *p = stock_position_commit(state);
    p->on_hand = e->on_hand_after;
    if (e->key.len == 0)
        return;
    allot_adjust_key_t values = {
        .delta = e->delta,
        .at_ms = e->at_ms,
        .on_hand = p->on_hand,
        .reserved = p->reserved,
        .allocated = p->allocated,
        .safety_stock = p->safety_stock,
        .available = allot_position_available(p),
    };
    adjust_key_store(state, e->key, &values);
}

void adjust_key_snapshot_commit(allot_state_t *state, const allot_event_adjust_key_t *e)
{
    allot_adjust_key_t values = {
        .delta = e->delta,
        .at_ms = e->at_ms,
        .on_hand = e->on_hand,
        .reserved = e->reserved,
        .allocated = e->allocated,
        .safety_stock = e->safety_stock,
        .available = e->available,
    };
    adjust_key_store(state, e->key, &values);
}
