/* avail.c - read paths over positions: availability per SKU and stock.get. No allocation. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/geo.h"
#include "core/inventory.h"
#include "core/inventory/inventory_private.h"
#include "core/state_private.h"

int allot_avail_prepare(const allot_state_t *state, const allot_avail_request_t *request,
                        allot_avail_query_t *query, allot_error_detail_t *detail)
{
    if ((unsigned)request->method >= ALLOT_METHOD_COUNT)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "method",
                               "method must be ship, same_day or pickup");
    if (request->has_ship_to && !(request->lat >= -90.0 && request->lat <= 90.0 &&
                                  request->lon >= -180.0 && request->lon <= 180.0))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "ship_to",
                               "ship_to needs lat -90..90 and lon -180..180");
    if (!(request->radius_km <= ALLOT_RADIUS_KM_MAX) || request->radius_km != request->radius_km)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "radius_km",
                               "radius_km must be 0..%.0f", ALLOT_RADIUS_KM_MAX);
    query->location = ALLOT_LOCATION_NONE;
    if (request->location.len > 0) {
        if (!allot_id_valid(request->location))
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "location",
                                   "location must be 1..128 bytes of UTF-8");
        query->location = allot_location_index_find(state, request->location);
        if (query->location == ALLOT_LOCATION_NONE)
            return allot_error_set(detail, ALLOT_ENOT_FOUND, "location", "location %s not found",
                                   allot_str_echo(request->location, &(allot_echo_t){0}));
    }
    if (request->method == ALLOT_METHOD_SAME_DAY && !request->has_ship_to)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "ship_to",
                               "same_day needs ship_to");
    if (request->method == ALLOT_METHOD_PICKUP && !request->has_ship_to &&
        query->location == ALLOT_LOCATION_NONE)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "ship_to",
                               "pickup needs ship_to or location");
    query->method = request->method;
    query->has_ship_to = request->has_ship_to;
    query->lat = request->lat;
    query->lon = request->lon;
    query->radius_km = request->radius_km > 0 ? request->radius_km : ALLOT_PICKUP_RADIUS_KM_DEFAULT;
    return 0;
}

bool allot_avail_location_eligible(const allot_avail_query_t *query,
                                   const allot_location_t *location, double *distance_km)
{
    *distance_km = 0.0;
    if (!location->active)
        return false;
    if (query->has_ship_to)
        *distance_km = allot_geo_distance_km(query->lat, query->lon, location->lat, location->lon);
    switch (query->method) {
    case ALLOT_METHOD_SHIP:
        return location->ship;
    case ALLOT_METHOD_SAME_DAY:
        return location->ship && location->same_day_radius_km > 0 &&
               *distance_km <= location->same_day_radius_km;
    case ALLOT_METHOD_PICKUP:
        if (!location->pickup)
            return false;
        /* an explicit location is "exactly location"; otherwise within radius_km of ship_to */
        return query->location != ALLOT_LOCATION_NONE || *distance_km <= query->radius_km;
    default:
        return false;
    }
}

static const allot_state_t *avail_sort_state;

static int avail_location_compare(const void *a, const void *b)
{
    const allot_avail_location_t *x = a, *y = b;
    const allot_location_t *lx = &avail_sort_state->locations[x->location];
    const allot_location_t *ly = &avail_sort_state->locations[y->location];
    if (x->distance_km != y->distance_km)
        return x->distance_km < y->distance_km ? -1 : 1;
    if (lx->priority != ly->priority)
        return lx->priority < ly->priority ? -1 : 1;
    return state_id_compare(lx->id, lx->id_len, ly->id, ly->id_len);
}

int64_t allot_avail_sku(const allot_state_t *state, const allot_avail_query_t *query,
                        allot_str_t sku_id, allot_avail_location_t *locations,
                        uint32_t locations_max, uint32_t *location_count)
{
    return allot_avail_sku_at(state, query, NULL, allot_sku_index_find(state, sku_id), locations,
                              locations_max, location_count);
}

void allot_avail_memo_init(allot_avail_memo_t *memo)
{
    memset(memo->known, 0, sizeof(memo->known));
}

static bool avail_eligible(const allot_state_t *state, const allot_avail_query_t *query,
                           allot_avail_memo_t *memo, uint32_t location, double *distance_km)
{
    if (memo == NULL || location >= ALLOT_AVAIL_MEMO_LOCATIONS)
        return allot_avail_location_eligible(query, &state->locations[location], distance_km);
    uint64_t bit = 1ull << (location % 64);
    uint32_t word = location / 64;
    if ((memo->known[word] & bit) == 0) {
        bool eligible = allot_avail_location_eligible(query, &state->locations[location],
                                                      &memo->distance_km[location]);
        memo->known[word] |= bit;
        memo->eligible[word] = eligible ? memo->eligible[word] | bit : memo->eligible[word] & ~bit;
    }
    *distance_km = memo->distance_km[location];
    return (memo->eligible[word] & bit) != 0;
}

int64_t allot_avail_sku_at(const allot_state_t *state, const allot_avail_query_t *query,
                           allot_avail_memo_t *memo, uint32_t sku_index,
                           allot_avail_location_t *locations, uint32_t locations_max,
                           uint32_t *location_count)
{
    uint32_t written = 0;
    int64_t total = 0;
    const allot_sku_t *sku = sku_index == ALLOT_SKU_NONE ? NULL : &state->skus[sku_index];
    for (uint32_t i = 0; sku != NULL && i < sku->position_count; i++) {
        const allot_position_t *p = &sku->positions[i];
        if (query->location != ALLOT_LOCATION_NONE && p->location != query->location)
            continue;
        double distance_km;
        if (!avail_eligible(state, query, memo, p->location, &distance_km))
            continue;
        int64_t available = allot_position_available(p);
        if (query->method == ALLOT_METHOD_PICKUP)
            total = available > total ? available : total;
        else
            total += available;
        if (locations != NULL && written < locations_max)
            locations[written++] = (allot_avail_location_t){p->location, available, distance_km};
    }
    if (locations != NULL && written > 1) {
        avail_sort_state = state;
        qsort(locations, written, sizeof(*locations), avail_location_compare);
    }
    if (location_count != NULL)
        *location_count = written;
    return total;
}

static int position_view_compare(const void *a, const void *b)
{
    const allot_position_view_t *x = a, *y = b;
    return state_id_compare(x->location.ptr, x->location.len, y->location.ptr, y->location.len);
}

int allot_stock_get(const allot_state_t *state, allot_str_t sku_id, allot_stock_summary_t *summary,
                    allot_position_view_t *positions, uint32_t positions_max,
                    allot_error_detail_t *detail)
{
    assert(summary != NULL);
    if (!allot_id_valid(sku_id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "sku",
                               "sku must be 1..128 bytes of UTF-8");
    uint32_t sku_index = allot_sku_index_find(state, sku_id);
    if (sku_index == ALLOT_SKU_NONE || state->skus[sku_index].position_count == 0)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "sku", "sku %s not found",
                               allot_str_echo(sku_id, &(allot_echo_t){0}));
    const allot_sku_t *sku = &state->skus[sku_index];
    memset(summary, 0, sizeof(*summary));
    summary->sku = allot_sku_id(sku);
    summary->position_count = sku->position_count;
    uint32_t written = 0;
    for (uint32_t i = 0; i < sku->position_count; i++) {
        const allot_position_t *p = &sku->positions[i];
        summary->on_hand += p->on_hand;
        summary->reserved += p->reserved;
        summary->allocated += p->allocated;
        summary->available += allot_position_available(p);
        if (positions != NULL && written < positions_max)
            inventory_position_view(state, sku_index, p, &positions[written++]);
    }
    if (positions != NULL && written > 1)
        qsort(positions, written, sizeof(*positions), position_view_compare);
    return 0;
}
