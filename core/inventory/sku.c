/* sku.c - SKU interning and positions: the inventory's records and their lookups. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory.h"
#include "core/inventory/inventory_private.h"
#include "core/reservation.h"

_Static_assert(sizeof(allot_sku_t) == 32, "two SKU records per cache line");
_Static_assert(ALLOT_SKU_ID_INLINE_MAX + 1 >= sizeof(const char *), "room for the arena pointer");

/* The SKU array is 64-byte aligned so that no record straddles two cache lines. */
#define SKU_ARRAY_ALIGN 64

static const char *sku_id_ptr(const allot_sku_t *sku)
{
    if (sku->id_len <= ALLOT_SKU_ID_INLINE_MAX)
        return sku->id_storage;
    const char *external;
    memcpy(&external, sku->id_storage, sizeof(external));
    return external;
}

static bool sku_id_equals(const allot_sku_t *sku, allot_str_t id)
{
    return sku->id_len == id.len && memcmp(sku_id_ptr(sku), id.ptr, id.len) == 0;
}

/* The SKU a writer resolved last when it has this id, else ALLOT_SKU_NONE: one reserve resolves
 * its SKU for sourcing, for its record's apply and for the change stream, and SKUs are never
 * removed, so the record's own id decides without hashing or probing. */
static uint32_t sku_recent(const allot_state_t *state, allot_str_t sku)
{
    uint32_t index = state->sku_recent;
    if (index < state->sku_count && sku_id_equals(&state->skus[index], sku))
        return index;
    return ALLOT_SKU_NONE;
}

uint32_t allot_sku_index_find(const allot_state_t *state, allot_str_t sku)
{
    uint32_t index = sku_recent(state, sku);
    if (index != ALLOT_SKU_NONE)
        return index;
    return inventory_sku_find_hashed(state, sku, allot_hash_bytes(sku.ptr, sku.len));
}

uint32_t inventory_sku_resolve(allot_state_t *state, allot_str_t sku)
{
    uint32_t index = allot_sku_index_find(state, sku);
    if (index != ALLOT_SKU_NONE)
        state->sku_recent = index;
    return index;
}

uint32_t inventory_sku_find_hashed(const allot_state_t *state, allot_str_t sku, uint32_t hash)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(&state->sku_index, hash, &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(&state->sku_index, &probe)) != ALLOT_HASH_NONE) {
        if (sku_id_equals(&state->skus[i], sku))
            return i;
    }
    return ALLOT_SKU_NONE;
}

/* SKUs resolved per group in allot_sku_index_find_many: enough misses in flight to cover memory
 * latency, few enough that the group's lines stay in L1. */
#define SKU_FIND_GROUP 16

static void sku_find_group(const allot_state_t *state, const allot_str_t *ids, uint32_t count,
                           uint32_t *out)
{
    uint32_t hashes[SKU_FIND_GROUP];
    for (uint32_t i = 0; i < count; i++) { /* 1: the hash slots */
        hashes[i] = allot_hash_bytes(ids[i].ptr, ids[i].len);
        allot_hash_prefetch(&state->sku_index, hashes[i]);
    }
    for (uint32_t i = 0; i < count; i++) { /* 2: the SKU records */
        uint32_t candidate = allot_hash_first(&state->sku_index, hashes[i]);
        out[i] = candidate == ALLOT_HASH_NONE ? ALLOT_SKU_NONE : candidate;
        if (out[i] != ALLOT_SKU_NONE)
            __builtin_prefetch(&state->skus[out[i]]);
    }
    for (uint32_t i = 0; i < count; i++) { /* 3: confirm (id in the record), prefetch positions */
        const allot_sku_t *s = out[i] == ALLOT_SKU_NONE ? NULL : &state->skus[out[i]];
        if (s != NULL && sku_id_equals(s, ids[i])) {
            __builtin_prefetch(s->positions);
            continue;
        }
        out[i] = s == NULL ? ALLOT_SKU_NONE : allot_sku_index_find(state, ids[i]);
    }
}

void allot_sku_index_find_many(const allot_state_t *state, const allot_str_t *ids, uint32_t count,
                               uint32_t *out)
{
    for (uint32_t first = 0; first < count; first += SKU_FIND_GROUP) {
        uint32_t n = count - first < SKU_FIND_GROUP ? count - first : SKU_FIND_GROUP;
        sku_find_group(state, ids + first, n, out + first);
    }
}

/* Lines of a positions array prefetched (10 positions of 48 bytes: 8 lines). */
#define SKU_PREFETCH_LINES_MAX 8

void allot_sku_prefetch_positions(const allot_state_t *state, uint32_t sku_index)
{
    if (sku_index >= state->sku_count)
        return;
    const allot_sku_t *sku = &state->skus[sku_index];
    const char *p = (const char *)sku->positions;
    size_t bytes = (size_t)sku->position_count * sizeof(allot_position_t);
    if (bytes > 64u * SKU_PREFETCH_LINES_MAX)
        bytes = 64u * SKU_PREFETCH_LINES_MAX;
    for (size_t off = 0; off < bytes; off += 64)
        __builtin_prefetch(p + off);
    if (bytes > 0)
        __builtin_prefetch(p + bytes - 1); /* the array need not start on a line */
}

uint32_t allot_sku_prefetch_slot(const allot_state_t *state, allot_str_t sku)
{
    uint32_t hash = allot_hash_bytes(sku.ptr, sku.len);
    allot_hash_prefetch(&state->sku_index, hash);
    return hash;
}

uint32_t allot_sku_prefetch_record(const allot_state_t *state, uint32_t hash)
{
    uint32_t candidate = allot_hash_first(&state->sku_index, hash);
    if (candidate == ALLOT_HASH_NONE || candidate >= state->sku_count)
        return ALLOT_SKU_NONE;
    __builtin_prefetch(&state->skus[candidate]);
    return candidate;
}

bool allot_prefetch_pays(const allot_state_t *state)
{
    uint64_t bytes =
        (uint64_t)state->sku_index.capacity * sizeof(*state->sku_index.slots) +
        (uint64_t)state->sku_count * sizeof(allot_sku_t) +
        state->position_count * sizeof(allot_position_t) +
        (uint64_t)state->reservation_index.capacity * sizeof(*state->reservation_index.slots) +
        (uint64_t)state->reservation_slots * sizeof(*state->reservations);
    return bytes >= ALLOT_PREFETCH_TABLE_BYTES_MIN;
}

const allot_sku_t *allot_sku_at(const allot_state_t *state, uint32_t index)
{
    assert(index < state->sku_count);
    return &state->skus[index];
}

allot_sku_t *inventory_sku_mut(allot_state_t *state, uint32_t index)
{
    assert(index < state->sku_count);
    return &state->skus[index];
}

allot_str_t allot_sku_id(const allot_sku_t *sku)
{
    return (allot_str_t){sku_id_ptr(sku), sku->id_len};
}

/* Grow the SKU array to hold at least `wanted` records (64-byte aligned; doubles). */
static int sku_array_grow(allot_state_t *state, uint32_t wanted)
{
    if (wanted <= state->sku_capacity)
        return 0;
    uint32_t capacity = state->sku_capacity ? state->sku_capacity : 1024;
    while (capacity < wanted)
        capacity = capacity > UINT32_MAX / 2 ? UINT32_MAX : capacity * 2;
    allot_sku_t *skus = aligned_alloc(SKU_ARRAY_ALIGN, (size_t)capacity * sizeof(*skus));
    if (skus == NULL)
        return ALLOT_ENOMEM;
    if (state->sku_count > 0)
        memcpy(skus, state->skus, (size_t)state->sku_count * sizeof(*skus));
    free(state->skus);
    state->skus = skus;
    state->sku_capacity = capacity;
    return 0;
}

int inventory_sku_intern(allot_state_t *state, allot_str_t id, uint32_t *index)
{
    *index = sku_recent(state, id);
    if (*index != ALLOT_SKU_NONE)
        return 0;
    int rc = inventory_sku_intern_hashed(state, id, allot_hash_bytes(id.ptr, id.len), index);
    if (rc == 0)
        state->sku_recent = *index;
    return rc;
}

int inventory_sku_intern_hashed(allot_state_t *state, allot_str_t id, uint32_t hash,
                                uint32_t *index)
{
    assert(id.len >= 1 && id.len <= ALLOT_ID_BYTES_MAX);
    *index = inventory_sku_find_hashed(state, id, hash);
    if (*index != ALLOT_SKU_NONE)
        return 0;
    if (state->sku_count >= ALLOT_SKUS_MAX)
        return ALLOT_ENOMEM;
    if (sku_array_grow(state, state->sku_count + 1) != 0)
        return ALLOT_ENOMEM;
    if (allot_hash_reserve(&state->sku_index, 1) != 0)
        return ALLOT_ENOMEM;
    const char *copy = NULL;
    if (id.len > ALLOT_SKU_ID_INLINE_MAX &&
        (copy = allot_arena_copy(&state->sku_ids, id.ptr, id.len)) == NULL)
        return ALLOT_ENOMEM;
    *index = state->sku_count++;
    allot_sku_t *s = &state->skus[*index];
    memset(s, 0, sizeof(*s));
    s->id_len = (uint8_t)id.len;
    if (copy == NULL)
        memcpy(s->id_storage, id.ptr, id.len); /* NUL from the memset */
    else
        memcpy(s->id_storage, &copy, sizeof(copy));
    int rc = allot_hash_insert(&state->sku_index, hash, *index);
    assert(rc == 0);
    return rc;
}

/* Index of the first position with location >= wanted. A SKU stocked at every location holds
 * location i at index i: that guess is checked first (one cache line instead of a search). */
static uint32_t position_lower_bound(const allot_sku_t *sku, uint32_t location)
{
    if (location < sku->position_count && sku->positions[location].location == location)
        return location; /* locations are unique and sorted: nothing before it is >= */
    uint32_t lo = 0, hi = sku->position_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sku->positions[mid].location < location)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const allot_position_t *allot_sku_position_find(const allot_sku_t *sku, uint32_t location)
{
    uint32_t i = position_lower_bound(sku, location);
    if (i < sku->position_count && sku->positions[i].location == location)
        return &sku->positions[i];
    return NULL;
}

allot_position_t *inventory_position_mut(allot_state_t *state, uint32_t sku, uint32_t location)
{
    return (allot_position_t *)allot_sku_position_find(inventory_sku_mut(state, sku), location);
}

int inventory_position_reserve(allot_state_t *state, uint32_t sku_index, uint32_t location)
{
    allot_sku_t *sku = inventory_sku_mut(state, sku_index);
    if (allot_sku_position_find(sku, location) != NULL)
        return 0;
    if (sku->position_count < sku->position_capacity)
        return 0;
    if (sku->position_capacity == UINT16_MAX)
        return ALLOT_ENOMEM;
    /* grow by ~25%: 1, 2, 3, 4, 6, 8, 11, ... keeps slack small for 10-location catalogues */
    uint32_t capacity = sku->position_capacity + sku->position_capacity / 4 + 1;
    if (capacity > UINT16_MAX)
        capacity = UINT16_MAX;
    allot_position_t *p = realloc(sku->positions, capacity * sizeof(*p));
    if (p == NULL)
        return ALLOT_ENOMEM;
    sku->positions = p;
    sku->position_capacity = (uint16_t)capacity;
    return 0;
}

allot_position_t *inventory_position_upsert(allot_state_t *state, uint32_t sku_index,
                                            uint32_t location)
{
    allot_sku_t *sku = inventory_sku_mut(state, sku_index);
    uint32_t i = position_lower_bound(sku, location);
    if (i < sku->position_count && sku->positions[i].location == location)
        return &sku->positions[i];
    assert(sku->position_count < sku->position_capacity);
    memmove(&sku->positions[i + 1], &sku->positions[i],
            (sku->position_count - i) * sizeof(*sku->positions));
    allot_position_t *p = &sku->positions[i];
    memset(p, 0, sizeof(*p));
    p->location = location;
    p->as_of_ms = ALLOT_AS_OF_NONE;
    if (sku->position_count == 0)
        state->skus_stocked++;
    sku->position_count++;
    state->position_count++;
    return p;
}

int64_t allot_position_available(const allot_position_t *p)
{
    int64_t available = p->on_hand - p->reserved - p->allocated - p->safety_stock;
    return available > 0 ? available : 0;
}

void inventory_position_view(const allot_state_t *state, uint32_t sku,
                             const allot_position_t *position, allot_position_view_t *view)
{
    view->sku = allot_sku_id(&state->skus[sku]);
    view->location = allot_location_id(&state->locations[position->location]);
    view->on_hand = position->on_hand;
    view->reserved = position->reserved;
    view->allocated = position->allocated;
    view->safety_stock = position->safety_stock;
    view->available = allot_position_available(position);
}
