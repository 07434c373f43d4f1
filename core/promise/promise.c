/* promise.c - the delivery promise of a location for a ready instant, and of a SKU (the rules are
 * in core/promise.h and docs/promise.md). Pure: no clock, no I/O, no allocation. */
#include <assert.h>
#include <string.h>

#include "core/inventory.h"
#include "core/promise.h"
#include "core/sale.h"
#include "core/state.h"

/* One location's days in its zone; `failed` once a step leaves the zone's span. */
typedef struct promise_days {
    const allot_calendar_t *calendar;
    const allot_zone_t *zone;
    bool failed;
} promise_days_t;

static bool days_holiday(const allot_calendar_t *c, int64_t date)
{
    uint32_t lo = 0, hi = c->holiday_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->holidays[mid] < date)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->holiday_count && c->holidays[lo] == date;
}

static bool days_work(const allot_calendar_t *c, int64_t date)
{
    return (c->work_days >> allot_date_weekday(date) & 1) != 0 && !days_holiday(c, date);
}

/* Transit counts business days: Monday..Friday that are not holidays of the location. */
static bool days_business(const allot_calendar_t *c, int64_t date)
{
    return allot_date_weekday(date) < 5 && !days_holiday(c, date);
}

static int64_t days_local_date(promise_days_t *d, int64_t utc_ms)
{
    int32_t offset_s = 0;
    if (!allot_zone_offset_at(d->zone, utc_ms, &offset_s))
        d->failed = true;
    int64_t local_ms = utc_ms + (int64_t)offset_s * 1000;
    return local_ms / ALLOT_MS_PER_DAY - (local_ms % ALLOT_MS_PER_DAY < 0);
}

/* The UTC instant of `minute` (after local midnight) on a local date. */
static int64_t days_instant(promise_days_t *d, int64_t date, int64_t minute)
{
    int64_t utc_ms = 0;
    if (!allot_zone_utc_of_local(d->zone, date * ALLOT_MS_PER_DAY + minute * 60000, &utc_ms))
        d->failed = true;
    return utc_ms;
}

/* The n-th day after `date` that passes `accept` (date itself when n is 0); *steps counts the
 * days looked at against the search bound. */
static int64_t days_advance(const allot_calendar_t *c, int64_t date, int64_t n,
                            bool (*accept)(const allot_calendar_t *, int64_t), int64_t *steps)
{
    while (n > 0 && *steps < ALLOT_PROMISE_SEARCH_DAYS_MAX) {
        date++;
        (*steps)++;
        if (accept(c, date))
            n--;
    }
    return date;
}

/* The band for the distance: the first covering it, without ship_to the last; NULL if none. */
static const allot_transit_band_t *promise_band(const allot_promise_input_t *in)
{
    if (in->transit == NULL || in->transit->band_count == 0)
        return NULL;
    if (!in->has_ship_to)
        return &in->transit->bands[in->transit->band_count - 1];
    for (uint32_t i = 0; i < in->transit->band_count; i++)
        if (in->distance_km <= in->transit->bands[i].max_km)
            return &in->transit->bands[i];
    return NULL;
}

bool allot_promise_compute(const allot_promise_input_t *in, allot_promise_t *out)
{
    assert(in->calendar != NULL && in->zone != NULL);
    const allot_calendar_t *c = in->calendar;
    promise_days_t d = {c, in->zone, false};
    int64_t today = days_local_date(&d, in->ready_ms);
    int64_t first = today, steps = 0;
    while (steps < ALLOT_PROMISE_SEARCH_DAYS_MAX && !d.failed &&
           !(days_work(c, first) && in->ready_ms < days_instant(&d, first, c->cutoff_minute))) {
        first++;
        steps++;
    }
    int64_t dispatch = days_advance(c, first, c->processing_days, days_work, &steps);
    int64_t from = dispatch, to = dispatch;
    if (in->method == ALLOT_METHOD_SAME_DAY) {
        if (in->incoming || !in->has_ship_to || !(in->same_day_radius_km > 0) ||
            in->distance_km > in->same_day_radius_km || dispatch != today)
            return false;
    } else if (in->method == ALLOT_METHOD_SHIP) {
        const allot_transit_band_t *band = promise_band(in);
        if (band == NULL)
            return false;
        from = days_advance(c, dispatch, band->min_days, days_business, &steps);
        to = days_advance(c, dispatch, band->max_days, days_business, &steps);
    } else if (in->method != ALLOT_METHOD_PICKUP) {
        return false;
    }
    if (steps >= ALLOT_PROMISE_SEARCH_DAYS_MAX)
        return false;
    out->order_by_ms = days_instant(&d, first, c->cutoff_minute);
    out->earliest_ms = days_instant(&d, from, 0);
    out->latest_ms = days_instant(&d, to + 1, 0) - 1;
    return !d.failed;
}

/* ---- the promise of a SKU -------------------------------------------------------------------- */

void allot_promise_query_init(allot_promise_query_t *query, const allot_avail_query_t *avail,
                              int64_t now_ms, allot_promise_memo_t *memo, void *zone_ctx,
                              allot_zone_lookup_cb zone_cb)
{
    *query = (allot_promise_query_t){avail, now_ms, memo, zone_ctx, zone_cb};
    if (memo != NULL)
        memset(memo->known, 0, sizeof(memo->known));
}

/* Is the location eligible for the query (avail.get's rule and its `location`)? */
static bool promise_eligible(const allot_state_t *state, const allot_avail_query_t *avail,
                             uint32_t location, double *distance_km)
{
    if (avail->location != ALLOT_LOCATION_NONE && location != avail->location)
        return false;
    return allot_avail_location_eligible(avail, allot_location_at(state, location), distance_km);
}

/* The promise of one location for a ready instant (false: none). */
static bool promise_location(const allot_state_t *state, const allot_promise_query_t *q,
                             uint32_t location, double distance_km, int64_t ready_ms, bool incoming,
                             allot_promise_t *out)
{
    const allot_location_t *l = allot_location_at(state, location);
    const allot_zone_t *zone =
        q->zone_cb(q->zone_ctx, allot_calendar_timezone(&l->calendar), ready_ms);
    if (zone == NULL)
        return false;
    allot_promise_input_t in = {.calendar = &l->calendar,
                                .zone = zone,
                                .transit = allot_transit_get(state, q->avail->method),
                                .method = q->avail->method,
                                .ready_ms = ready_ms,
                                .incoming = incoming,
                                .has_ship_to = q->avail->has_ship_to,
                                .distance_km = distance_km,
                                .same_day_radius_km = l->same_day_radius_km};
    return allot_promise_compute(&in, out);
}

/* Eligibility and the on-hand promise of a location, from the memo when it knows them. */
static bool promise_on_hand(const allot_state_t *state, allot_promise_query_t *q, uint32_t location,
                            allot_promise_t *out)
{
    allot_promise_memo_t *m = q->memo;
    double distance_km;
    if (m == NULL || location >= ALLOT_PROMISE_MEMO_LOCATIONS)
        return promise_eligible(state, q->avail, location, &distance_km) &&
               promise_location(state, q, location, distance_km, q->now_ms, false, out);
    uint64_t bit = 1ull << (location % 64);
    uint32_t word = location / 64;
    if ((m->known[word] & bit) == 0) {
        bool eligible = promise_eligible(state, q->avail, location, &m->distance_km[location]);
        bool promised = eligible && promise_location(state, q, location, m->distance_km[location],
                                                     q->now_ms, false, &m->promises[location]);
        m->known[word] |= bit;
        m->eligible[word] = eligible ? m->eligible[word] | bit : m->eligible[word] & ~bit;
        m->promised[word] = promised ? m->promised[word] | bit : m->promised[word] & ~bit;
    }
    *out = m->promises[location];
    return (m->promised[word] & bit) != 0;
}

/* Is (promise a, location la) better than (b, lb): earliest, then latest, priority, id? */
static bool promise_better(const allot_state_t *state, const allot_promise_t *a, uint32_t la,
                           const allot_promise_t *b, uint32_t lb)
{
    if (a->earliest_ms != b->earliest_ms)
        return a->earliest_ms < b->earliest_ms;
    if (a->latest_ms != b->latest_ms)
        return a->latest_ms < b->latest_ms;
    const allot_location_t *x = allot_location_at(state, la), *y = allot_location_at(state, lb);
    if (x->priority != y->priority)
        return x->priority < y->priority;
    int cmp = memcmp(x->id, y->id, x->id_len < y->id_len ? x->id_len : y->id_len);
    return cmp != 0 ? cmp < 0 : x->id_len < y->id_len;
}

static void promise_offer(const allot_state_t *state, allot_promise_item_t *out, uint32_t location,
                          const allot_promise_t *promise)
{
    if (out->has_delivery &&
        !promise_better(state, promise, location, &out->delivery, out->location))
        return;
    out->has_delivery = true;
    out->location = location;
    out->delivery = *promise;
}

static bool promise_low(const allot_state_t *state, uint32_t sku_index, int64_t available)
{
    if (available <= 0 || sku_index == ALLOT_SKU_NONE || allot_sku_settings_count(state) == 0)
        return false;
    allot_sku_settings_t settings;
    allot_error_detail_t detail;
    if (allot_sku_get(state, allot_sku_id(allot_sku_at(state, sku_index)), &settings, &detail) != 0)
        return false;
    return settings.low_stock > 0 && available <= settings.low_stock;
}

void allot_promise_sku(const allot_state_t *state, allot_promise_query_t *q, uint32_t sku_index,
                       int64_t available, allot_promise_incoming_t *incoming,
                       uint32_t incoming_count, allot_promise_item_t *out)
{
    memset(out, 0, sizeof(*out));
    out->low = promise_low(state, sku_index, available);
    const allot_sku_t *sku = sku_index == ALLOT_SKU_NONE ? NULL : allot_sku_at(state, sku_index);
    for (uint32_t i = 0; available > 0 && sku != NULL && i < sku->position_count; i++) {
        const allot_position_t *p = &sku->positions[i];
        allot_promise_t promise;
        if (allot_position_available(p) <= 0 ||
            allot_location_at_capacity(allot_location_at(state, p->location), q->now_ms) ||
            !promise_on_hand(state, q, p->location, &promise))
            continue;
        promise_offer(state, out, p->location, &promise);
    }
    for (uint32_t i = 0; i < incoming_count; i++) {
        double distance_km;
        if (incoming[i].qty <= 0 ||
            !promise_eligible(state, q->avail, incoming[i].location, &distance_km))
            continue;
        incoming[out->incoming_count++] = incoming[i];
        /* a supply overdue but not received yet is ready no earlier than now */
        int64_t ready_ms = incoming[i].eta_ms > q->now_ms ? incoming[i].eta_ms : q->now_ms;
        allot_promise_t promise;
        if (available <= 0 &&
            promise_location(state, q, incoming[i].location, distance_km, ready_ms, true, &promise))
            promise_offer(state, out, incoming[i].location, &promise);
    }
}
