/* transit.c - transit bands per method: transit.set, its record, apply and checkpoint record.
 *
 * Byte format of TRANSIT_SET (12) and TRANSIT_SNAPSHOT (21), after the version byte and in the
 * conventions of core/event/codec.c:
 *     str method       "ship" (the only method that takes bands)
 *     u8  band_count   0..ALLOT_TRANSIT_BANDS_MAX (16)
 *     band_count x { f64 max_km (0 < max_km <= 20038, strictly ascending);
 *                    u16 min_days; u16 max_days (0 <= min_days <= max_days <= 60) }
 * A record replaces the method's bands whole (0 bands: the method promises nothing).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/buffer.h"
#include "core/promise/promise_private.h"

int transit_init(allot_state_t *state)
{
    state->transit = calloc(1, sizeof(*state->transit));
    return state->transit == NULL ? ALLOT_ENOMEM : 0;
}

void transit_free_all(allot_state_t *state)
{
    free(state->transit);
    state->transit = NULL;
}

/* The bands' rules (transit.set checks them with a field to name, decode without). */
static int transit_bands_check(const allot_transit_band_t *bands, uint32_t count,
                               allot_error_detail_t *detail)
{
    if (count > ALLOT_TRANSIT_BANDS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "bands", "at most %d bands",
                               ALLOT_TRANSIT_BANDS_MAX);
    for (uint32_t i = 0; i < count; i++) {
        const allot_transit_band_t *b = &bands[i];
        if (!(b->max_km > 0.0 && b->max_km <= ALLOT_RADIUS_KM_MAX))
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "bands",
                                   "bands[%u].max_km must be above 0 and at most %.0f", i,
                                   ALLOT_RADIUS_KM_MAX);
        if (i > 0 && !(b->max_km > bands[i - 1].max_km))
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "bands",
                                   "bands must be sorted by max_km, each farther than the last");
        if (b->min_days < 0 || b->min_days > b->max_days || b->max_days > ALLOT_TRANSIT_DAYS_MAX)
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "bands",
                                   "bands[%u] needs 0 <= min_days <= max_days <= %d", i,
                                   ALLOT_TRANSIT_DAYS_MAX);
    }
    return 0;
}

int allot_transit_set(allot_state_t *state, int method, const allot_transit_band_t *bands,
                      uint32_t band_count, allot_error_detail_t *detail)
{
    assert(state != NULL && (bands != NULL || band_count == 0));
    if (method != ALLOT_METHOD_SHIP)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "method",
                               "only ship takes transit bands (same_day and pickup need none)");
    int rc = transit_bands_check(bands, band_count, detail);
    if (rc != 0)
        return rc;
    allot_event_t event = {.type = ALLOT_EVENT_TRANSIT_SET};
    event.u.transit.method = (uint8_t)method;
    event.u.transit.transit.band_count = band_count;
    if (band_count > 0)
        memcpy(event.u.transit.transit.bands, bands, band_count * sizeof(*bands));
    rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    return 0;
}

const allot_transit_t *allot_transit_get(const allot_state_t *state, int method)
{
    if (method < 0 || method >= ALLOT_METHOD_COUNT || !state->transit->set[method])
        return NULL;
    return &state->transit->methods[method];
}

/* ---- record -------------------------------------------------------------------------------- */

int transit_encode(const allot_event_transit_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, 16 + (size_t)e->transit.band_count * 12);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, allot_str_from_cstr(allot_method_names[e->method]));
    allot_bytes_put_u8(out, (uint8_t)e->transit.band_count);
    for (uint32_t i = 0; i < e->transit.band_count; i++) {
        allot_bytes_put_f64(out, e->transit.bands[i].max_km);
        allot_bytes_put_u16(out, (uint16_t)e->transit.bands[i].min_days);
        allot_bytes_put_u16(out, (uint16_t)e->transit.bands[i].max_days);
    }
    return 0;
}

int transit_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_transit_t *e)
{
    (void)s;
    allot_str_t method = allot_reader_str(r);
    e->method = ALLOT_METHOD_COUNT;
    for (uint8_t m = 0; m < ALLOT_METHOD_COUNT; m++)
        if (allot_str_equal(method, allot_str_from_cstr(allot_method_names[m])))
            e->method = m;
    e->transit.band_count = allot_reader_u8(r);
    if (r->failed || e->method != ALLOT_METHOD_SHIP ||
        e->transit.band_count > ALLOT_TRANSIT_BANDS_MAX)
        return ALLOT_ECORRUPT;
    for (uint32_t i = 0; i < e->transit.band_count; i++) {
        e->transit.bands[i].max_km = allot_reader_f64(r);
        e->transit.bands[i].min_days = allot_reader_u16(r);
        e->transit.bands[i].max_days = allot_reader_u16(r);
    }
    allot_error_detail_t detail;
    if (r->failed || transit_bands_check(e->transit.bands, e->transit.band_count, &detail) != 0)
        return ALLOT_ECORRUPT;
    return 0;
}

int transit_prepare(allot_state_t *state, const allot_event_transit_t *e)
{
    (void)e;
    return allot_u32_vec_reserve(&state->dirty[STATE_KEY_TRANSIT], 1);
}

void transit_commit(allot_state_t *state, const allot_event_transit_t *e)
{
    transit_store_t *t = state->transit;
    if (!t->set[e->method]) {
        t->set[e->method] = true;
        state_checkpoint_born(state, STATE_KEY_TRANSIT, e->method);
    }
    state_dirty_mark(state, STATE_KEY_TRANSIT, e->method, &t->dirty[e->method]);
    t->methods[e->method] = e->transit;
}

/* ---- checkpoint records -------------------------------------------------------------------- */

uint32_t transit_snapshot_slots(const allot_state_t *state)
{
    (void)state;
    return ALLOT_METHOD_COUNT;
}

uint8_t *transit_snapshot_marks(allot_state_t *state, uint32_t index)
{
    transit_store_t *t = state->transit;
    return index < ALLOT_METHOD_COUNT && t->set[index] ? &t->dirty[index] : NULL;
}

/* The key is the method's wire name. */
int transit_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                          allot_str_t *id)
{
    (void)full;
    assert(index < ALLOT_METHOD_COUNT && state->transit->set[index]);
    *id = allot_str_from_cstr(allot_method_names[index]);
    allot_event_t event = {.type = ALLOT_EVENT_TRANSIT_SNAPSHOT};
    event.u.transit.method = (uint8_t)index;
    event.u.transit.transit = state->transit->methods[index];
    return allot_event_encode(&event, out);
}

int transit_dump(const allot_state_t *state, FILE *out)
{
    for (uint32_t m = 0; m < ALLOT_METHOD_COUNT; m++) {
        if (!state->transit->set[m])
            continue;
        const allot_transit_t *t = &state->transit->methods[m];
        fprintf(out, "transit %s bands=%" PRIu32, allot_method_names[m], t->band_count);
        for (uint32_t i = 0; i < t->band_count; i++)
            fprintf(out, " %.17g:%" PRId32 "-%" PRId32, t->bands[i].max_km, t->bands[i].min_days,
                    t->bands[i].max_days);
        fputc('\n', out);
    }
    return 0;
}
