/* location.c - locations: lookups and reads, and location.put (checks, then one event). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory.h"
#include "core/inventory/inventory_private.h"

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
    allot_calendar_defaults(&input->calendar);
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

static bool location_id_equals(const allot_location_t *location, allot_str_t id)
{
    return location->id_len == id.len && memcmp(location->id, id.ptr, id.len) == 0;
}

uint32_t allot_location_index_find(const allot_state_t *state, allot_str_t id)
{
    /* A new hold's record names the location its reserve just planned (state->location_recent):
     * the location's own id decides without hashing or probing. */
    uint32_t recent = state->location_recent;
    if (recent < state->location_count && location_id_equals(&state->locations[recent], id))
        return recent;
    uint32_t hash = allot_hash_bytes(id.ptr, id.len);
    allot_hash_probe_t probe;
    allot_hash_probe_start(&state->location_index, hash, &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(&state->location_index, &probe)) != ALLOT_HASH_NONE) {
        if (location_id_equals(&state->locations[i], id))
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
    return inventory_location_at(state, index);
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
    return allot_calendar_check(&in->calendar, detail);
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
    e->calendar = input->calendar;
    rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    if (out != NULL)
        *out = allot_location_find(state, input->id);
    return 0;
}
