/* test_core_event.c - event payloads: round trips, garbage, replay and checkpoint equivalence. */
#include "test_core_fixture.h"

#include "core/base/buffer.h"
#include "core/replay.h"

static allot_event_allocation_t sample_allocations[] = {
    {{"W1", 2}, 2, false}, {{"W2", 2}, 1, false}, {{"W1", 2}, 4, false}};
static allot_event_position_t sample_positions[] = {{{"W1", 2}, 10, 2, 1, 3, 1234},
                                                    {{"W2", 2}, 0, 0, 0, 0, INT64_MIN}};

static void sample_events(allot_event_t *events, size_t *count)
{
    size_t n = 0;
    allot_event_t *e = &events[n++];
    e->type = ALLOT_EVENT_LOCATION_PUT;
    e->u.location = (allot_event_location_t){S("W1"), 1,    true, true, false, 52.5, -13.25,
                                             -7,      12.5, 40,   0,    0,     {0}};
    allot_calendar_defaults(&e->u.location.calendar);
    e = &events[n++];
    *e = events[0];
    e->type = ALLOT_EVENT_LOCATION_SNAPSHOT;
    e->u.location.capacity_day = 19675;
    e->u.location.capacity_count = 3;
    e = &events[n++];
    e->type = ALLOT_EVENT_STOCK_SET;
    e->u.stock_set = (allot_event_stock_set_t){S("sku-1"), S("W1"), 10, 2, INT64_MIN};
    e = &events[n++];
    e->type = ALLOT_EVENT_STOCK_ADJUST;
    e->u.stock_adjust = (allot_event_stock_adjust_t){S("sku-1"), S("W1"), -3, 7, FX_T0, S("k")};
    for (int t = 0; t < 3; t++) {
        e = &events[n++];
        static const uint8_t types[] = {ALLOT_EVENT_RESERVATION_CREATE,
                                        ALLOT_EVENT_RESERVATION_REPLACE,
                                        ALLOT_EVENT_RESERVATION_SNAPSHOT};
        e->type = types[t];
        allot_event_reservation_t *r = &e->u.reservation;
        memset(r, 0, sizeof(*r));
        r->id = S("cart-9");
        r->status = 0;
        r->request_hash = 0x0123456789abcdefull;
        r->created_ms = FX_T0;
        r->expires_at_ms = FX_T0 + 900000;
        r->at_ms = t == 1 ? FX_T0 : 0;
        r->line_count = 2;
        r->lines[0] = (allot_event_line_t){S("sku-1"), 5, 0, 2};
        r->lines[1] = (allot_event_line_t){S("sku-2"), 4, 2, 1};
        r->allocation_count = 3;
        r->allocations = sample_allocations;
    }
    e = &events[n++];
    e->type = ALLOT_EVENT_RESERVATION_EXTEND;
    e->u.extend = (allot_event_extend_t){S("cart-9"), FX_T0 + 5, FX_T0 + 1};
    e = &events[n++];
    e->type = ALLOT_EVENT_RESERVATION_RELEASE;
    e->u.release = (allot_event_release_t){S("cart-9"), ALLOT_RELEASE_EXPIRED, FX_T0 + 2};
    e = &events[n++];
    e->type = ALLOT_EVENT_SKU_SNAPSHOT;
    e->u.sku_snapshot = (allot_event_sku_snapshot_t){S("sku-1"), 2, sample_positions};
    e = &events[n++];
    e->type = ALLOT_EVENT_ADJUST_KEY_SNAPSHOT;
    e->u.adjust_key =
        (allot_event_adjust_key_t){S("k"), S("sku-1"), S("W1"), 5, FX_T0, 10, 1, 2, 3, 4};
    *count = n;
}

Test(event, every_type_round_trips_byte_for_byte)
{
    static allot_event_t events[16];
    size_t count;
    sample_events(events, &count);
    cr_assert_eq(count, 11);
    for (size_t i = 0; i < count; i++) {
        allot_bytes_t a = {0}, b = {0};
        cr_assert_eq(allot_event_encode(&events[i], &a), 0);
        cr_assert_eq(a.data[0], ALLOT_EVENT_FORMAT_VERSION);
        allot_event_scratch_t scratch = {0};
        static allot_event_t decoded;
        int rc = allot_event_decode(events[i].type, a.data, a.len, &scratch, &decoded);
        cr_assert_eq(rc, 0, "type %u (%s) did not decode", events[i].type,
                     allot_event_type_name(events[i].type));
        cr_assert_eq(allot_event_encode(&decoded, &b), 0);
        cr_assert_eq(a.len, b.len);
        cr_assert_eq(memcmp(a.data, b.data, a.len), 0, "type %u differs", events[i].type);
        allot_bytes_free(&a);
        allot_bytes_free(&b);
        allot_event_scratch_free(&scratch);
    }
    /* spot-check decoded fields */
    allot_bytes_t bytes = {0};
    allot_event_scratch_t scratch = {0};
    static allot_event_t d;
    cr_assert_eq(allot_event_encode(&events[4], &bytes), 0);
    cr_assert_eq(allot_event_decode(events[4].type, bytes.data, bytes.len, &scratch, &d), 0);
    cr_assert_eq(d.u.reservation.line_count, 2);
    cr_assert_eq(d.u.reservation.allocation_count, 3);
    cr_assert(allot_str_equal(d.u.reservation.allocations[1].location, S("W2")));
    cr_assert_eq(d.u.reservation.allocations[2].qty, 4);
    cr_assert_eq(d.u.reservation.expires_at_ms, FX_T0 + 900000);
    allot_bytes_free(&bytes);
    allot_event_scratch_free(&scratch);
}

/* The rows of the event table, as a test sees them. */
typedef struct table_row {
    unsigned number;
    unsigned constant;
    const char *name;
} table_row_t;
#define TABLE_ROW(number, NAME, name, ...) {number, ALLOT_EVENT_##NAME, name},
static const table_row_t table_rows[] = {ALLOT_EVENT_TABLE(TABLE_ROW)};

Test(event_table, every_row_has_its_own_number_and_name_and_no_other_type_decodes)
{
    bool known[256] = {false};
    size_t rows = sizeof(table_rows) / sizeof(table_rows[0]);
    for (size_t i = 0; i < rows; i++) {
        const table_row_t *row = &table_rows[i];
        cr_assert_eq(row->number, row->constant);
        cr_assert(row->number >= 1 && row->number < ALLOT_EVENT_TYPE_LIMIT, "%s", row->name);
        cr_assert_not(known[row->number], "type %u twice", row->number);
        known[row->number] = true;
        cr_assert_str_eq(allot_event_type_name((uint8_t)row->number), row->name);
        for (size_t k = 0; k < i; k++)
            cr_assert_str_neq(table_rows[k].name, row->name);
    }
    static const uint8_t version_only[] = {ALLOT_EVENT_FORMAT_VERSION};
    allot_event_scratch_t scratch = {0};
    allot_event_t event;
    for (unsigned type = 0; type < 256; type++) {
        if (known[type])
            continue;
        cr_assert_str_eq(allot_event_type_name((uint8_t)type), "unknown");
        cr_assert_eq(allot_event_decode((uint8_t)type, version_only, 1, &scratch, &event),
                     ALLOT_ECORRUPT, "type %u", type);
    }
    allot_event_scratch_free(&scratch);
}

/* Type bytes are in every WAL record and checkpoint value: they never change meaning. */
Test(event_table, the_numbers_of_the_recorded_types_are_stable)
{
    static const table_row_t recorded[] = {
        {1, 0, "location.put"},         {2, 0, "stock.set"},
        {3, 0, "stock.adjust"},         {4, 0, "reservation.create"},
        {5, 0, "reservation.extend"},   {6, 0, "reservation.release"},
        {7, 0, "reservation.replace"},  {16, 0, "location.snapshot"},
        {17, 0, "sku.snapshot"},        {18, 0, "reservation.snapshot"},
        {19, 0, "adjust_key.snapshot"}, {64, 0, "order.create"},
        {65, 0, "order.pay"},           {66, 0, "order.hold"},
        {67, 0, "order.unhold"},        {68, 0, "order.modify"},
        {69, 0, "order.release"},       {70, 0, "order.cancel"},
        {71, 0, "shipment.reject"},     {72, 0, "shipment.ship"},
        {73, 0, "shipment.deliver"},    {74, 0, "return.create"},
        {75, 0, "return.receive"},      {76, 0, "order.evict"},
        {80, 0, "order.snapshot"},      {8, 0, "supply.put"},
        {9, 0, "supply.receive"},       {10, 0, "supply.cancel"},
        {20, 0, "supply.snapshot"},
    };
    for (size_t i = 0; i < sizeof(recorded) / sizeof(recorded[0]); i++)
        cr_expect_str_eq(allot_event_type_name((uint8_t)recorded[i].number), recorded[i].name);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

Test(event, truncated_and_garbage_payloads_are_corrupt_without_crashing)
{
    static allot_event_t events[16];
    size_t count;
    sample_events(events, &count);
    allot_state_t *state = allot_state_create(NULL);
    for (size_t i = 0; i < count; i++) {
        allot_bytes_t a = {0};
        cr_assert_eq(allot_event_encode(&events[i], &a), 0);
        /* a location record cut right before its calendar is a whole version 1 payload */
        size_t location_v1_len = 0;
        if (events[i].type == ALLOT_EVENT_LOCATION_PUT ||
            events[i].type == ALLOT_EVENT_LOCATION_SNAPSHOT) {
            const allot_calendar_t *c = &events[i].u.location.calendar;
            location_v1_len = a.len - (8u + c->timezone_len + 8u * c->holiday_count);
        }
        for (size_t len = 0; len < a.len; len++)
            if (len != location_v1_len)
                cr_assert_eq(allot_event_apply_encoded(state, events[i].type, a.data, len),
                             ALLOT_ECORRUPT, "type %u truncated to %zu", events[i].type, len);
        uint8_t *longer = malloc(a.len + 1);
        memcpy(longer, a.data, a.len);
        longer[a.len] = 0;
        cr_assert_eq(allot_event_apply_encoded(state, events[i].type, longer, a.len + 1),
                     ALLOT_ECORRUPT, "trailing byte");
        longer[0] = 2; /* unknown version */
        cr_assert_eq(allot_event_apply_encoded(state, events[i].type, longer, a.len),
                     ALLOT_ECORRUPT);
        for (int round = 0; round < 2000; round++) {
            memcpy(longer, a.data, a.len);
            for (int flips = 1 + (int)(rng() % 4); flips > 0; flips--)
                longer[rng() % a.len] = (uint8_t)rng();
            (void)allot_event_apply_encoded(state, events[i].type, longer, a.len);
        }
        free(longer);
        allot_bytes_free(&a);
    }
    uint8_t noise[512];
    for (int round = 0; round < 20000; round++) {
        size_t len = rng() % sizeof(noise);
        for (size_t k = 0; k < len; k++)
            noise[k] = (uint8_t)rng();
        noise[0] = rng() % 8 ? ALLOT_EVENT_FORMAT_VERSION : noise[0];
        (void)allot_event_apply_encoded(state, (uint8_t)(rng() % 24), noise, len);
    }
    cr_assert_eq(allot_event_apply_encoded(state, 99, NULL, 0), ALLOT_ECORRUPT);
    cr_assert_eq(allot_event_apply_encoded(state, ALLOT_EVENT_STOCK_SET, NULL, 0), ALLOT_ECORRUPT);
    allot_state_destroy(state);
}

/* Encode events[i], decode it: 0 or the decoder's error. */
static int encode_decode(const allot_event_t *event)
{
    allot_bytes_t bytes = {0};
    cr_assert_eq(allot_event_encode(event, &bytes), 0);
    allot_event_scratch_t scratch = {0};
    static allot_event_t decoded;
    int rc = allot_event_decode(event->type, bytes.data, bytes.len, &scratch, &decoded);
    allot_event_scratch_free(&scratch);
    allot_bytes_free(&bytes);
    return rc;
}

Test(event, times_and_counts_out_of_range_are_corrupt)
{
    static allot_event_t events[16];
    size_t count;
    sample_events(events, &count);
    int64_t day_max = allot_day_from_ms(ALLOT_TIME_MS_MAX);
    const struct {
        size_t event;
        int64_t *field;
        int64_t good_max, bad_low, bad_high;
    } cases[] = {
        {1, &events[1].u.location.capacity_day, day_max, -1, day_max + 1},
        {1, &events[1].u.location.capacity_count, ALLOT_CAPACITY_COUNT_MAX, -1,
         ALLOT_CAPACITY_COUNT_MAX + 1},
        {3, &events[3].u.stock_adjust.at_ms, ALLOT_TIME_MS_MAX, -1, ALLOT_TIME_MS_MAX + 1},
        {4, &events[4].u.reservation.created_ms, ALLOT_TIME_MS_MAX, -1, ALLOT_TIME_MS_MAX + 1},
        {4, &events[4].u.reservation.expires_at_ms, ALLOT_TIME_MS_MAX, -1, ALLOT_TIME_MS_MAX + 1},
        {5, &events[5].u.reservation.at_ms, ALLOT_TIME_MS_MAX, -1, ALLOT_TIME_MS_MAX + 1},
        {6, &events[6].u.reservation.ended_ms, ALLOT_TIME_MS_MAX, -1, ALLOT_TIME_MS_MAX + 1},
        {7, &events[7].u.extend.expires_at_ms, ALLOT_TIME_MS_MAX, -1, ALLOT_TIME_MS_MAX + 1},
        {7, &events[7].u.extend.at_ms, ALLOT_TIME_MS_MAX, -1, ALLOT_TIME_MS_MAX + 1},
        {8, &events[8].u.release.at_ms, ALLOT_TIME_MS_MAX, -1, ALLOT_TIME_MS_MAX + 1},
        {10, &events[10].u.adjust_key.at_ms, ALLOT_TIME_MS_MAX, -1, ALLOT_TIME_MS_MAX + 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const allot_event_t *e = &events[cases[i].event];
        int64_t saved = *cases[i].field;
        const int64_t bad[] = {
            cases[i].bad_low,       cases[i].bad_high,    INT64_MIN, INT64_MAX, INT64_MIN + 1,
            -9007303708194701312LL, 7060550205596237823LL};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            *cases[i].field = bad[k];
            cr_assert_eq(encode_decode(e), ALLOT_ECORRUPT, "case %zu (%s) with %lld decoded", i,
                         allot_event_type_name(e->type), (long long)bad[k]);
        }
        *cases[i].field = 0;
        cr_assert_eq(encode_decode(e), 0, "case %zu with 0", i);
        *cases[i].field = cases[i].good_max;
        cr_assert_eq(encode_decode(e), 0, "case %zu with its maximum", i);
        *cases[i].field = saved;
    }
}

static int apply_event(allot_state_t *state, const allot_event_t *event)
{
    allot_bytes_t bytes = {0};
    cr_assert_eq(allot_event_encode(event, &bytes), 0);
    int rc = allot_event_apply_encoded(state, event->type, bytes.data, bytes.len);
    allot_bytes_free(&bytes);
    return rc;
}

/* The records a 15-second fuzz run found: an adjust key stamped near INT64_MAX, then one near
 * INT64_MIN, made the age eviction subtract them (signed overflow); likewise for tombstones. */
Test(event, records_stamped_near_the_int64_limits_are_refused_before_any_arithmetic)
{
    allot_state_config_t config = {.idempotency_entries_max = 8};
    allot_state_t *state = allot_state_create(&config);
    static allot_event_t events[16];
    size_t count;
    sample_events(events, &count);
    cr_assert_eq(apply_event(state, &events[0]), 0); /* location W1 */
    allot_event_t adjust = events[3];
    adjust.u.stock_adjust.delta = 5;
    adjust.u.stock_adjust.on_hand_after = 5;
    adjust.u.stock_adjust.at_ms = FX_T0;
    /* a tombstone (t0) and a live hold (t1) on sku-1 at W1 */
    allot_event_t hold = {.type = ALLOT_EVENT_RESERVATION_CREATE};
    static allot_event_allocation_t one_at_w1[] = {{{"W1", 2}, 1, false}};
    hold.u.reservation = (allot_event_reservation_t){.id = S("t0"),
                                                     .created_ms = FX_T0,
                                                     .expires_at_ms = FX_T0 + 60000,
                                                     .line_count = 1,
                                                     .allocation_count = 1,
                                                     .allocations = one_at_w1};
    hold.u.reservation.lines[0] = (allot_event_line_t){S("sku-1"), 1, 0, 1};
    allot_event_t release = {.type = ALLOT_EVENT_RESERVATION_RELEASE};
    release.u.release = (allot_event_release_t){S("t0"), ALLOT_RELEASE_RELEASED, FX_T0};
    adjust.u.stock_adjust.key = S("k0");
    cr_assert_eq(apply_event(state, &adjust), 0);
    cr_assert_eq(apply_event(state, &hold), 0);
    cr_assert_eq(apply_event(state, &release), 0);
    hold.u.reservation.id = release.u.release.id = S("t1");
    cr_assert_eq(apply_event(state, &hold), 0);
    char *before = fx_dump(state);
    const int64_t stamps[] = {7060550205596237823LL, -9007303708194701312LL, INT64_MAX, INT64_MIN};
    const char *keys[] = {"k1", "k2", "k3", "k4"};
    for (int i = 0; i < 4; i++) {
        adjust.u.stock_adjust.at_ms = stamps[i];
        adjust.u.stock_adjust.key = S(keys[i]);
        cr_assert_eq(apply_event(state, &adjust), ALLOT_ECORRUPT, "adjust at %lld",
                     (long long)stamps[i]);
        release.u.release.at_ms = stamps[i];
        cr_assert_eq(apply_event(state, &release), ALLOT_ECORRUPT, "release at %lld",
                     (long long)stamps[i]);
    }
    char *after = fx_dump(state);
    cr_assert_str_eq(before, after, "nothing changed");
    free(before);
    free(after);
    allot_state_destroy(state);
}

Test(event, apply_refers_only_to_existing_objects)
{
    allot_state_t *state = allot_state_create(NULL);
    static allot_event_t events[16];
    size_t count;
    sample_events(events, &count);
    allot_bytes_t a = {0};
    cr_assert_eq(allot_event_encode(&events[2], &a), 0); /* stock.set at W1, unknown */
    cr_assert_eq(allot_event_apply_encoded(state, events[2].type, a.data, a.len), ALLOT_ECORRUPT);
    a.len = 0;
    cr_assert_eq(allot_event_encode(&events[7], &a), 0); /* extend of an unknown id */
    cr_assert_eq(allot_event_apply_encoded(state, events[7].type, a.data, a.len), ALLOT_ECORRUPT);
    a.len = 0;
    cr_assert_eq(allot_event_encode(&events[0], &a), 0); /* location.put W1 */
    cr_assert_eq(allot_event_apply_encoded(state, events[0].type, a.data, a.len), 0);
    cr_assert_not_null(allot_location_find(state, S("W1")));
    allot_bytes_free(&a);
    allot_state_destroy(state);
}

/* ---- replay and checkpoints -------------------------------------------------------------- */

static const char *const loc_ids[] = {"W1", "W2", "S1", "S2", "DC"};
/* "F..." is longer than ALLOT_SKU_ID_INLINE_MAX: kept in the arena, not in the SKU record */
static const char *const sku_ids[] = {"A", "B", "C", "D", "E", "F-a-sku-id-longer-than-inline"};
static const char *const cart_ids[] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"};

static void random_locations(allot_state_t *state)
{
    for (int i = 0; i < 5; i++)
        fx_location(state, (fx_loc_t){.id = loc_ids[i],
                                      .lat = 48 + i,
                                      .lon = 11 + i * 0.5,
                                      .priority = (int64_t)(rng() % 3),
                                      .pickup = i >= 2,
                                      .same_day_radius_km = i == 1 ? 300 : 0,
                                      .daily_capacity = i == 4 ? 3 : 0});
}

static void random_reserve(allot_state_t *state, int64_t now_ms)
{
    allot_line_input_t lines[3];
    uint32_t n = 1 + rng() % 3;
    for (uint32_t k = 0; k < n; k++)
        lines[k] = (allot_line_input_t){S(sku_ids[rng() % 6]), 1 + rng() % 6};
    allot_reserve_request_t req = fx_req(cart_ids[rng() % 8], lines, n);
    req.ttl_s = 1 + rng() % 120;
    req.policy = (allot_policy_t)(rng() % ALLOT_POLICY_COUNT);
    req.partial = rng() % 3 == 0;
    req.replace = rng() % 2 == 0;
    req.has_ship_to = rng() % 2 == 0;
    req.lat = 49.5;
    req.lon = 12;
    if (rng() % 5 == 0) {
        req.method = ALLOT_METHOD_PICKUP;
        req.location = S(loc_ids[2 + rng() % 2]);
    }
    (void)fx_reserve(state, &req, now_ms, NULL);
}

static void random_step(allot_state_t *state, int64_t now_ms)
{
    const allot_reservation_t *r;
    allot_stock_result_t out;
    uint32_t op = rng() % 10;
    const char *sku = sku_ids[rng() % 6], *loc = loc_ids[rng() % 5];
    if (op == 0) {
        allot_stock_set_input_t in = {S(sku),
                                      S(loc),
                                      rng() % 20,
                                      rng() % 2,
                                      rng() % 3,
                                      rng() % 2,
                                      now_ms - (int64_t)(rng() % 5000)};
        (void)allot_stock_set(state, &in, &out, &fx_err);
    } else if (op == 1) {
        char key[16];
        snprintf(key, sizeof(key), "k%u", rng() % 12);
        allot_stock_adjust_input_t in = {S(sku), S(loc), (int64_t)(rng() % 9) - 3,
                                         rng() % 2 ? S(key) : (allot_str_t){"", 0}};
        if (in.delta != 0)
            (void)allot_stock_adjust(state, &in, now_ms, &out, &fx_err);
    } else if (op <= 5) {
        random_reserve(state, now_ms);
    } else if (op == 6) {
        (void)allot_reservation_release(state, S(cart_ids[rng() % 8]), now_ms, &r, &fx_err);
    } else if (op == 7) {
        (void)allot_reservation_extend(state, S(cart_ids[rng() % 8]), 1 + rng() % 60, now_ms, &r,
                                       &fx_err);
    } else if (op == 8) {
        (void)allot_reservations_expire(state, now_ms, 1 + rng() % 3);
    } else if (rng() % 4 == 0) {
        fx_location(state, (fx_loc_t){.id = loc,
                                      .lat = 50,
                                      .lon = 10,
                                      .priority = 1,
                                      .inactive = rng() % 3 == 0,
                                      .daily_capacity = 2});
    }
}

static void random_history(allot_state_t *state, int steps)
{
    random_locations(state);
    for (int i = 0; i < 10; i++)
        fx_stock(state, sku_ids[i % 6], loc_ids[i % 5], 10, 0);
    int64_t now_ms = FX_T0;
    for (int i = 0; i < steps; i++) {
        now_ms += rng() % 20000;
        if (i == steps / 2)
            now_ms += ALLOT_MS_PER_DAY; /* cross a UTC day */
        random_step(state, now_ms);
    }
}

Test(event, replaying_the_recorded_events_rebuilds_the_same_state)
{
    allot_state_config_t config = {.idempotency_entries_max = 5, .idempotency_age_ms = 600000};
    allot_state_t *state = fx_state_with(&config);
    random_history(state, 1500);
    allot_state_counters_t c;
    allot_state_counters_get(state, &c);
    cr_assert_gt(fx_log.count, 500, "the history did things (%zu events)", fx_log.count);
    fx_assert_replay_equal(state);
    allot_state_destroy(state);
    fx_log_reset();
}

static void assert_same_dump(const allot_state_t *a, const allot_state_t *b)
{
    char *x = fx_dump(a), *y = fx_dump(b);
    cr_assert_str_eq(x, y);
    free(x);
    free(y);
}

/* The whole log through the prefetching replayer (core/replay.h), as recovery does it. */
static allot_state_t *replay_log_windowed(size_t count, uint64_t *failed_lsn, int *rc_out)
{
    allot_state_t *replica = allot_state_create(&fx_config);
    allot_replay_t *replay = allot_replay_create(replica);
    cr_assert_not_null(replay);
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = allot_replay_push(replay, i + 1, fx_log.events[i].type, fx_log.events[i].payload,
                               fx_log.events[i].len);
    if (rc == 0)
        rc = allot_replay_finish(replay);
    *failed_lsn = allot_replay_failed_lsn(replay);
    *rc_out = rc;
    cr_assert_eq(allot_replay_applied(replay), rc == 0 ? count : *failed_lsn - 1);
    allot_replay_destroy(replay);
    return replica;
}

Test(event, the_prefetching_replayer_rebuilds_the_same_state)
{
    allot_state_config_t config = {.idempotency_entries_max = 5, .idempotency_age_ms = 600000};
    allot_state_t *state = fx_state_with(&config);
    random_history(state, 3000);
    uint64_t failed_lsn;
    int rc;
    allot_state_t *replica = replay_log_windowed(fx_log.count, &failed_lsn, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(failed_lsn, 0);
    assert_same_dump(state, replica);
    allot_state_destroy(replica);
    allot_state_destroy(state);
    fx_log_reset();
}

Test(event, the_replayer_stops_at_a_bad_record_with_everything_before_it_applied)
{
    allot_state_t *state = fx_state();
    random_history(state, 400);
    size_t bad = fx_log.count / 2 + 3;     /* well past the first window */
    fx_log.events[bad].payload[0] ^= 0xff; /* wrong format version: does not decode */
    uint64_t failed_lsn;
    int rc;
    allot_state_t *replica = replay_log_windowed(fx_log.count, &failed_lsn, &rc);
    cr_assert_eq(rc, ALLOT_ECORRUPT);
    cr_assert_eq(failed_lsn, bad + 1, "lsn %llu", (unsigned long long)failed_lsn);
    allot_state_t *prefix = allot_state_create(&fx_config);
    for (size_t i = 0; i < bad; i++)
        cr_assert_eq(allot_event_apply_encoded(prefix, fx_log.events[i].type,
                                               fx_log.events[i].payload, fx_log.events[i].len),
                     0);
    assert_same_dump(prefix, replica); /* the state before the bad record */
    allot_state_destroy(prefix);
    allot_state_destroy(replica);
    allot_state_destroy(state);
    fx_log_reset();
}

/* A tiny key-value store standing in for LMDB. */
typedef struct kv_entry {
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
    size_t key_len;
    uint8_t type;
    uint8_t *value;
    size_t len;
} kv_entry_t;

typedef struct kv_store {
    kv_entry_t entries[1024];
    size_t count;
    size_t deletions;
} kv_store_t;

static void kv_put(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                   const uint8_t *payload, size_t len, bool deleted)
{
    kv_store_t *kv = ctx;
    size_t i = 0;
    while (i < kv->count &&
           !(kv->entries[i].key_len == key_len && memcmp(kv->entries[i].key, key, key_len) == 0))
        i++;
    if (deleted) {
        kv->deletions++;
        if (i < kv->count) {
            free(kv->entries[i].value);
            kv->entries[i] = kv->entries[--kv->count];
        }
        return;
    }
    if (i == kv->count) {
        cr_assert_lt(kv->count, 1024);
        kv->count++;
    } else {
        free(kv->entries[i].value);
    }
    kv_entry_t *e = &kv->entries[i];
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->type = type;
    e->value = malloc(len);
    memcpy(e->value, payload, len);
    e->len = len;
}

static int kv_compare(const void *a, const void *b)
{
    const kv_entry_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static allot_state_t *kv_load(kv_store_t *kv, const allot_state_config_t *config)
{
    qsort(kv->entries, kv->count, sizeof(kv_entry_t), kv_compare); /* LMDB key order */
    allot_state_t *state = allot_state_create(config);
    for (size_t i = 0; i < kv->count; i++)
        cr_assert_eq(allot_event_apply_encoded(state, kv->entries[i].type, kv->entries[i].value,
                                               kv->entries[i].len),
                     0, "checkpoint record %zu", i);
    allot_state_dirty_clear(state);
    return state;
}

static void kv_free(kv_store_t *kv)
{
    for (size_t i = 0; i < kv->count; i++)
        free(kv->entries[i].value);
    kv->count = 0;
}

Test(event, dirty_checkpoints_plus_wal_tail_rebuild_the_same_state)
{
    static kv_store_t kv;
    allot_state_config_t config = {.idempotency_entries_max = 4, .idempotency_age_ms = 300000};
    allot_state_t *state = fx_state_with(&config);
    random_locations(state);
    int64_t now_ms = FX_T0;
    size_t checkpoint_event = 0;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 150; i++) {
            now_ms += rng() % 20000;
            random_step(state, now_ms);
        }
        cr_assert_eq(allot_state_snapshot_each_dirty(state, kv_put, &kv), 0);
        cr_assert_eq(allot_state_dirty_count(state), 0);
        checkpoint_event = fx_log.count;
    }
    cr_assert_gt(kv.deletions, 0, "tombstone evictions reached the store");
    /* a WAL tail after the last checkpoint */
    for (int i = 0; i < 100; i++) {
        now_ms += rng() % 20000;
        random_step(state, now_ms);
    }
    allot_state_t *loaded = kv_load(&kv, &config);
    for (size_t i = checkpoint_event; i < fx_log.count; i++)
        cr_assert_eq(allot_event_apply_encoded(loaded, fx_log.events[i].type,
                                               fx_log.events[i].payload, fx_log.events[i].len),
                     0);
    assert_same_dump(state, loaded);
    /* a full snapshot of the live state loads to the same state too */
    kv_free(&kv);
    cr_assert_eq(allot_state_snapshot_each(state, kv_put, &kv), 0);
    allot_state_t *full = kv_load(&kv, &config);
    assert_same_dump(state, full);
    kv_free(&kv);
    allot_state_destroy(full);
    allot_state_destroy(loaded);
    allot_state_destroy(state);
    fx_log_reset();
}

Test(event, dirty_set_tracks_only_what_changed)
{
    allot_state_t *state = fx_state();
    fx_location(state, (fx_loc_t){.id = "W1"});
    fx_location(state, (fx_loc_t){.id = "W2"});
    fx_stock(state, "A", "W1", 5, 0);
    fx_stock(state, "B", "W1", 5, 0);
    allot_state_dirty_clear(state);
    cr_assert_eq(allot_state_dirty_count(state), 0);
    fx_stock(state, "A", "W2", 5, 0);
    fx_stock(state, "A", "W1", 6, 0);
    cr_assert_eq(allot_state_dirty_count(state), 1, "one SKU record");
    allot_line_input_t lines[] = {{S("B"), 1}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    cr_assert_eq(fx_reserve(state, &req, FX_T0, NULL), 0);
    /* SKU B, reservation cart, location W1 (its daily counter) */
    cr_assert_eq(allot_state_dirty_count(state), 4);
    allot_state_destroy(state);
    fx_log_reset();
}
