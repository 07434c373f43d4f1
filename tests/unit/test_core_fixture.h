/* test_core_fixture.h - helpers shared by the core unit tests: a recording event sink, builders
 * for locations/stock/reservations, and replay/checkpoint equivalence checks via the dump. */
#ifndef ALLOT_TEST_CORE_FIXTURE_H
#define ALLOT_TEST_CORE_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/inventory.h"
#include "core/reservation.h"
#include "core/state.h"

#define FX_T0         1700000000000LL /* 2023-11-14T22:13:20Z */
#define FX_EVENTS_MAX 4096

typedef struct fx_event {
    uint8_t type;
    uint8_t *payload;
    size_t len;
} fx_event_t;

typedef struct fx_log {
    fx_event_t events[FX_EVENTS_MAX];
    size_t count;
} fx_log_t;

static fx_log_t fx_log;
static allot_state_config_t fx_config;
static allot_error_detail_t fx_err;

static inline int fx_sink(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    fx_log_t *log = ctx;
    cr_assert_lt(log->count, FX_EVENTS_MAX);
    fx_event_t *e = &log->events[log->count++];
    e->type = type;
    e->payload = malloc(len);
    memcpy(e->payload, payload, len);
    e->len = len;
    return 0;
}

static inline void fx_log_reset(void)
{
    for (size_t i = 0; i < fx_log.count; i++)
        free(fx_log.events[i].payload);
    fx_log.count = 0;
}

static inline allot_state_t *fx_state_with(const allot_state_config_t *config)
{
    fx_log_reset();
    memset(&fx_config, 0, sizeof(fx_config));
    if (config != NULL)
        fx_config = *config;
    allot_state_t *state = allot_state_create(config);
    cr_assert_not_null(state);
    allot_state_set_event_sink(state, fx_sink, &fx_log);
    allot_error_detail_clear(&fx_err);
    return state;
}

static inline allot_state_t *fx_state(void)
{
    return fx_state_with(NULL);
}

static allot_str_t S(const char *s)
{
    return allot_str_from_cstr(s);
}

typedef struct fx_loc {
    const char *id;
    double lat, lon;
    int64_t priority;
    bool no_ship, pickup, inactive;
    double same_day_radius_km;
    int64_t daily_capacity;
    allot_location_type_t type;
} fx_loc_t;

static inline void fx_location(allot_state_t *state, fx_loc_t spec)
{
    allot_location_input_t in;
    allot_location_input_defaults(&in);
    in.id = S(spec.id);
    in.lat = spec.lat;
    in.lon = spec.lon;
    in.priority = spec.priority;
    in.ship = !spec.no_ship;
    in.pickup = spec.pickup;
    in.active = !spec.inactive;
    in.same_day_radius_km = spec.same_day_radius_km;
    in.daily_capacity = spec.daily_capacity;
    in.type = spec.type;
    int rc = allot_location_put(state, &in, NULL, &fx_err);
    cr_assert_eq(rc, 0, "location.put %s: %s", spec.id, fx_err.message);
}

static inline void fx_stock(allot_state_t *state, const char *sku, const char *loc, int64_t on_hand,
                            int64_t safety)
{
    allot_stock_set_input_t in = {S(sku), S(loc), on_hand, true, safety, false, 0};
    int rc = allot_stock_set(state, &in, NULL, &fx_err);
    cr_assert_eq(rc, 0, "stock.set %s@%s: %s", sku, loc, fx_err.message);
}

static inline allot_reserve_request_t fx_req(const char *id, const allot_line_input_t *lines,
                                             uint32_t n)
{
    allot_reserve_request_t r;
    memset(&r, 0, sizeof(r));
    r.id = S(id);
    r.lines = lines;
    r.line_count = n;
    r.ttl_s = ALLOT_RESERVATION_TTL_S_DEFAULT;
    r.method = ALLOT_METHOD_SHIP;
    r.policy = ALLOT_POLICY_FEWEST_SPLITS;
    r.location = (allot_str_t){"", 0};
    return r;
}

static inline int fx_reserve(allot_state_t *state, const allot_reserve_request_t *r, int64_t now_ms,
                             const allot_reservation_t **out)
{
    allot_error_detail_clear(&fx_err);
    const allot_reservation_t *dummy;
    return allot_reserve(state, r, now_ms, out ? out : &dummy, &fx_err);
}

/* Held quantity at a location for line i (0 if none). */
static inline int64_t fx_held_at(const allot_state_t *state, const allot_reservation_t *r,
                                 uint32_t line, const char *loc)
{
    const allot_reservation_line_t *l = &allot_reservation_lines(r)[line];
    int64_t qty = 0;
    for (uint32_t k = 0; k < l->allocation_count; k++) {
        const allot_reservation_allocation_t *a =
            &allot_reservation_allocations(r)[l->allocation_first + k];
        if (a->location == ALLOT_LOCATION_SUPPLY)
            continue; /* a backorder hold: on supply, not at a location */
        if (allot_str_equal(allot_location_id(allot_location_at(state, a->location)), S(loc)))
            qty += a->qty;
    }
    return qty;
}

static inline int64_t fx_avail(const allot_state_t *state, const char *sku)
{
    allot_avail_request_t req = {ALLOT_METHOD_SHIP, false, 0, 0, 0, {"", 0}};
    allot_avail_query_t q;
    cr_assert_eq(allot_avail_prepare(state, &req, &q, &fx_err), 0);
    return allot_avail_sku(state, &q, S(sku), NULL, 0, NULL);
}

static inline const allot_position_t *fx_position(const allot_state_t *state, const char *sku,
                                                  const char *loc)
{
    uint32_t s = allot_sku_index_find(state, S(sku));
    uint32_t l = allot_location_index_find(state, S(loc));
    if (s == UINT32_MAX || l == UINT32_MAX)
        return NULL;
    return allot_sku_position_find(allot_sku_at(state, s), l);
}

static inline char *fx_dump(const allot_state_t *state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_eq(allot_state_dump(state, f), 0);
    fclose(f);
    return text;
}

/* Apply every event recorded so far to a fresh state; dumps must be byte-identical. */
static inline void fx_assert_replay_equal(const allot_state_t *live)
{
    allot_state_t *replica = allot_state_create(&fx_config);
    for (size_t i = 0; i < fx_log.count; i++) {
        int rc = allot_event_apply_encoded(replica, fx_log.events[i].type, fx_log.events[i].payload,
                                           fx_log.events[i].len);
        cr_assert_eq(rc, 0, "replay of event %zu (type %u) failed: %d", i, fx_log.events[i].type,
                     rc);
    }
    char *a = fx_dump(live);
    char *b = fx_dump(replica);
    cr_assert_str_eq(a, b, "live and replayed states differ");
    free(a);
    free(b);
    allot_state_destroy(replica);
}

/* One record of a full checkpoint (fx_assert_checkpoint_round_trip). */
typedef struct fx_record {
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
    size_t key_len;
    uint8_t type;
    uint8_t *payload;
    size_t len;
} fx_record_t;

typedef struct fx_records {
    fx_record_t *items;
    size_t count, capacity;
} fx_records_t;

static inline void fx_record_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                                const uint8_t *payload, size_t len, bool deleted)
{
    fx_records_t *records = ctx;
    cr_assert(!deleted);
    if (records->count == records->capacity) {
        records->capacity = records->capacity ? 2 * records->capacity : 64;
        records->items = realloc(records->items, records->capacity * sizeof(fx_record_t));
        cr_assert_not_null(records->items);
    }
    fx_record_t *r = &records->items[records->count++];
    memcpy(r->key, key, key_len);
    r->key_len = key_len;
    r->type = type;
    r->payload = malloc(len);
    memcpy(r->payload, payload, len);
    r->len = len;
}

static inline int fx_record_compare(const void *a, const void *b)
{
    const fx_record_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Every record of a full checkpoint of live, applied in key order to a new state (as a restart
 * loads them): its invariants hold and the dumps are byte-identical. The caller owns it. */
static inline allot_state_t *fx_checkpoint_loaded(allot_state_t *live)
{
    fx_records_t records = {0};
    cr_assert_eq(allot_state_snapshot_each(live, fx_record_cb, &records), 0);
    qsort(records.items, records.count, sizeof(fx_record_t), fx_record_compare);
    allot_state_t *loaded = allot_state_create(NULL);
    for (size_t i = 0; i < records.count; i++) {
        fx_record_t *r = &records.items[i];
        int rc = allot_event_apply_encoded(loaded, r->type, r->payload, r->len);
        cr_assert_eq(rc, 0, "record %zu (type %u) refused: %d", i, r->type, rc);
        free(r->payload);
    }
    free(records.items);
    char msg[256];
    cr_assert_eq(allot_state_check_invariants(loaded, msg, sizeof(msg)), 0, "%s", msg);
    char *a = fx_dump(live);
    char *b = fx_dump(loaded);
    cr_assert_str_eq(a, b, "checkpoint and live state differ");
    free(a);
    free(b);
    return loaded;
}

static inline void fx_assert_checkpoint_round_trip(allot_state_t *live)
{
    allot_state_destroy(fx_checkpoint_loaded(live));
}

#endif
