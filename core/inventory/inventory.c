/* inventory.c - locations, SKU interning, positions, and the location event apply. */
#include "core/inventory.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/geo.h"
#include "core/state_private.h"

const char *const allot_location_type_names[] = {"warehouse", "store", "dc", "partner", NULL};
const char *const allot_method_names[] = {"ship", "same_day", "pickup", NULL};

void allot_location_input_defaults(allot_location_input_t *input)
{
    memset(input, 0, sizeof(*input));
    input->type = ALLOT_LOCATION_WAREHOUSE;
    input->priority = ALLOT_PRIORITY_DEFAULT;
    input->ship = true;
    input->pickup = false;
    input->active = true;
}

int64_t allot_day_from_ms(int64_t ms)
{
    int64_t day = ms / ALLOT_MS_PER_DAY;
    if (ms % ALLOT_MS_PER_DAY < 0)
        day--;
    return day;
}

allot_str_t allot_location_id(const allot_location_t *location)
{
    return (allot_str_t){location->id, location->id_len};
}

uint32_t allot_location_index_find(const allot_state_t *state, allot_str_t id)
{
    uint32_t hash = allot_hash_bytes(id.ptr, id.len);
    allot_hash_probe_t probe;
    allot_hash_probe_start(&state->location_index, hash, &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(&state->location_index, &probe)) != ALLOT_HASH_NONE) {
        const allot_location_t *l = &state->locations[i];
        if (l->id_len == id.len && memcmp(l->id, id.ptr, id.len) == 0)
            return i;
    }
    return ALLOT_LOCATION_NONE;
}

const allot_location_t *allot_location_find(const allot_state_t *state, allot_str_t id)
{
    uint32_t i = allot_location_index_find(state, id);
    return i == ALLOT_LOCATION_NONE ? NULL : &state->locations[i];
}

uint32_t allot_location_count(const allot_state_t *state)
{
    return state->location_count;
}

const allot_location_t *allot_location_at(const allot_state_t *state, uint32_t index)
{
    assert(index < state->location_count);
    return &state->locations[index];
}

bool allot_location_at_capacity(const allot_location_t *location, int64_t now_ms)
{
    if (location->daily_capacity == 0)
        return false;
    if (location->capacity_day != allot_day_from_ms(now_ms))
        return false;
    return location->capacity_count >= location->daily_capacity;
}

static const allot_state_t *sort_state; /* qsort has no context; core is single-threaded */

static int location_index_compare(const void *a, const void *b)
{
    const allot_location_t *la = &sort_state->locations[*(const uint32_t *)a];
    const allot_location_t *lb = &sort_state->locations[*(const uint32_t *)b];
    return state_id_compare(la->id, la->id_len, lb->id, lb->id_len);
}

uint32_t allot_location_list_sorted(const allot_state_t *state, uint32_t *indices,
                                    uint32_t indices_max)
{
    uint32_t n = state->location_count;
    for (uint32_t i = 0; i < n && i < indices_max; i++)
        indices[i] = i;
    if (n > indices_max)
        n = indices_max;
    sort_state = state;
    if (n > 1)
        qsort(indices, n, sizeof(*indices), location_index_compare);
    return n;
}

/* ---- location.put ---------------------------------------------------------------------------- */

static int location_input_check(const allot_location_input_t *in, allot_error_detail_t *detail)
{
    if (!allot_id_valid(in->id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "id",
                               "id must be 1..128 bytes of UTF-8");
    if ((unsigned)in->type >= ALLOT_LOCATION_TYPE_COUNT)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "type",
                               "type must be warehouse, store, dc or partner");
    if (!(in->lat >= -90.0 && in->lat <= 90.0))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "lat", "lat must be -90..90");
    if (!(in->lon >= -180.0 && in->lon <= 180.0))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "lon", "lon must be -180..180");
    if (in->priority < ALLOT_PRIORITY_MIN || in->priority > ALLOT_PRIORITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "priority",
                               "priority must fit in 32 bits");
    if (!(in->same_day_radius_km >= 0.0 && in->same_day_radius_km <= ALLOT_RADIUS_KM_MAX))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "same_day_radius_km",
                               "same_day_radius_km must be 0..%.0f", ALLOT_RADIUS_KM_MAX);
    if (in->daily_capacity < 0 || in->daily_capacity > ALLOT_DAILY_CAPACITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "daily_capacity",
                               "daily_capacity must be 0..%lld",
                               (long long)ALLOT_DAILY_CAPACITY_MAX);
    return 0;
}

int allot_location_put(allot_state_t *state, const allot_location_input_t *input,
                       const allot_location_t **out, allot_error_detail_t *detail)
{
    assert(state != NULL && input != NULL);
    int rc = location_input_check(input, detail);
    if (rc != 0)
        return rc;
    uint32_t index = allot_location_index_find(state, input->id);
    if (index == ALLOT_LOCATION_NONE && state->location_count >= ALLOT_LOCATIONS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "id", "at most %u locations",
                               (unsigned)ALLOT_LOCATIONS_MAX);
    allot_event_t event = {.type = ALLOT_EVENT_LOCATION_PUT};
    allot_event_location_t *e = &event.u.location;
    e->id = input->id;
    e->type = (uint8_t)input->type;
    e->ship = input->ship;
    e->pickup = input->pickup;
    e->active = input->active;
    e->lat = input->lat;
    e->lon = input->lon;
    e->priority = input->priority;
    e->same_day_radius_km = input->same_day_radius_km;
    e->daily_capacity = input->daily_capacity;
    rc = allot_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    if (out != NULL)
        *out = allot_location_find(state, input->id);
    return 0;
}

/* ---- location apply ------------------------------------------------------------------------- */

int inventory_apply_prepare(allot_state_t *state, const allot_event_t *event)
{
    const allot_event_location_t *e = &event->u.location;
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

void inventory_apply_commit(allot_state_t *state, const allot_event_t *event)
{
    const allot_event_location_t *e = &event->u.location;
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
    state_dirty_location(state, index); /* before the change (checkpoint pre-image) */
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
    if (event->type == ALLOT_EVENT_LOCATION_SNAPSHOT) {
        l->capacity_day = e->capacity_day;
        l->capacity_count = e->capacity_count;
    }
}

/* ---- SKUs and positions --------------------------------------------------------------------- */

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

uint32_t allot_sku_index_find(const allot_state_t *state, allot_str_t sku)
{
    return inventory_sku_find_hashed(state, sku, allot_hash_bytes(sku.ptr, sku.len));
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

void allot_sku_index_find_many(const allot_state_t *state, const allot_str_t *ids,
                               uint32_t count, uint32_t *out)
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
    return inventory_sku_intern_hashed(state, id, allot_hash_bytes(id.ptr, id.len), index);
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
