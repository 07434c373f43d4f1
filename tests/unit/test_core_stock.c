/* test_core_stock.c - locations, stock.set / stock.adjust / stock.get and availability. */
#include "test_core_fixture.h"

static allot_state_t *st;

static void setup(void)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40, .priority = 1});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58, .priority = 0});
}

static void teardown(void)
{
    allot_state_destroy(st);
    fx_log_reset();
}

TestSuite(stock, .init = setup, .fini = teardown);
TestSuite(location, .init = setup, .fini = teardown);
TestSuite(avail, .init = setup, .fini = teardown);

Test(location, put_get_list_and_upsert)
{
    const allot_location_t *l = allot_location_find(st, S("W1"));
    cr_assert_not_null(l);
    cr_assert_eq(l->priority, 1);
    cr_assert(l->ship && l->active && !l->pickup);
    fx_location(st, (fx_loc_t){.id = "A0", .pickup = true, .type = ALLOT_LOCATION_STORE});
    fx_location(st, (fx_loc_t){.id = "W1", .priority = 7, .inactive = true});
    l = allot_location_find(st, S("W1"));
    cr_assert_eq(l->priority, 7);
    cr_assert_not(l->active);
    cr_assert_eq(allot_location_count(st), 3);
    uint32_t idx[8];
    cr_assert_eq(allot_location_list_sorted(st, idx, 8), 3);
    cr_assert_str_eq(allot_location_at(st, idx[0])->id, "A0");
    cr_assert_str_eq(allot_location_at(st, idx[1])->id, "W1");
    cr_assert_str_eq(allot_location_at(st, idx[2])->id, "W2");
    cr_assert_null(allot_location_find(st, S("nope")));
    fx_assert_replay_equal(st);
}

Test(location, invalid_fields_are_named)
{
    allot_location_input_t in;
    allot_location_input_defaults(&in);
    in.id = S("X");
    in.lat = 90.5;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "lat");
    in.lat = 0;
    in.lon = -180.01;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "lon");
    in.lon = 180;
    in.same_day_radius_km = -1;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "same_day_radius_km");
    in.same_day_radius_km = 0;
    in.daily_capacity = -1;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "daily_capacity");
    in.daily_capacity = 0;
    in.type = ALLOT_LOCATION_TYPE_COUNT;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "type");
    in.type = ALLOT_LOCATION_DC;
    in.id = S("");
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "id");
    in.id = S("X");
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), 0);
}

Test(stock, set_creates_positions_and_get_sums_them)
{
    fx_stock(st, "A", "W1", 10, 2);
    fx_stock(st, "A", "W2", 5, 0);
    allot_stock_summary_t sum;
    allot_position_view_t pos[4];
    cr_assert_eq(allot_stock_get(st, S("A"), &sum, pos, 4, &fx_err), 0);
    cr_assert_eq(sum.on_hand, 15);
    cr_assert_eq(sum.available, 13);
    cr_assert_eq(sum.position_count, 2);
    cr_assert(allot_str_equal(pos[0].location, S("W1")));
    cr_assert_eq(pos[0].safety_stock, 2);
    cr_assert_eq(pos[0].available, 8);
    cr_assert_eq(allot_stock_get(st, S("B"), &sum, pos, 4, &fx_err), ALLOT_ENOT_FOUND);
    allot_state_counters_t c;
    allot_state_counters_get(st, &c);
    cr_assert_eq(c.skus, 1);
    cr_assert_eq(c.positions, 2);
    cr_assert_eq(c.locations, 2);
}

Test(stock, set_keeps_safety_stock_when_absent)
{
    fx_stock(st, "A", "W1", 10, 3);
    allot_stock_set_input_t in = {S("A"), S("W1"), 20, false, 0, false, 0};
    allot_stock_result_t out;
    cr_assert_eq(allot_stock_set(st, &in, &out, &fx_err), 0);
    cr_assert_eq(out.position.safety_stock, 3);
    cr_assert_eq(out.position.available, 17);
}

Test(stock, older_as_of_is_stale_and_changes_nothing)
{
    allot_stock_set_input_t in = {S("A"), S("W1"), 10, false, 0, true, 2000};
    allot_stock_result_t out;
    cr_assert_eq(allot_stock_set(st, &in, &out, &fx_err), 0);
    cr_assert_not(out.stale);
    size_t events = fx_log.count;
    in.on_hand = 3;
    in.as_of_ms = 1999;
    cr_assert_eq(allot_stock_set(st, &in, &out, &fx_err), 0);
    cr_assert(out.stale);
    cr_assert_eq(out.position.on_hand, 10);
    cr_assert_eq(fx_log.count, events);
    in.as_of_ms = 2000; /* equal is not older */
    cr_assert_eq(allot_stock_set(st, &in, &out, &fx_err), 0);
    cr_assert_not(out.stale);
    cr_assert_eq(out.position.on_hand, 3);
    in.has_as_of_ms = false; /* no as_of: always applies, keeps the last as_of */
    in.on_hand = 4;
    cr_assert_eq(allot_stock_set(st, &in, &out, &fx_err), 0);
    cr_assert_eq(fx_position(st, "A", "W1")->as_of_ms, 2000);
    fx_assert_replay_equal(st);
}

Test(stock, adjust_with_a_repeated_key_applies_once)
{
    fx_stock(st, "A", "W1", 10, 0);
    allot_stock_adjust_input_t in = {S("A"), S("W1"), 5, S("receipt-1")};
    allot_stock_result_t out;
    cr_assert_eq(allot_stock_adjust(st, &in, FX_T0, &out, &fx_err), 0);
    cr_assert_eq(out.position.on_hand, 15);
    cr_assert_not(out.repeated);
    fx_stock(st, "A", "W1", 100, 0);
    cr_assert_eq(allot_stock_adjust(st, &in, FX_T0 + 1, &out, &fx_err), 0);
    cr_assert(out.repeated);
    cr_assert_eq(out.position.on_hand, 15, "the first result, unchanged");
    cr_assert_eq(fx_position(st, "A", "W1")->on_hand, 100);
    in.delta = 6;
    cr_assert_eq(allot_stock_adjust(st, &in, FX_T0 + 1, &out, &fx_err), ALLOT_ECONFLICT);
    cr_assert_str_eq(fx_err.field, "key");
    fx_assert_replay_equal(st);
}

Test(stock, adjust_may_not_go_below_zero)
{
    fx_stock(st, "A", "W1", 3, 0);
    allot_stock_adjust_input_t in = {S("A"), S("W1"), -4, {"", 0}};
    allot_stock_result_t out;
    cr_assert_eq(allot_stock_adjust(st, &in, FX_T0, &out, &fx_err), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfall_count, 1);
    cr_assert_eq(fx_err.shortfalls[0].available, 3);
    in.delta = -3;
    cr_assert_eq(allot_stock_adjust(st, &in, FX_T0, &out, &fx_err), 0);
    cr_assert_eq(out.position.on_hand, 0);
    in.sku = S("NEW");
    in.delta = -1;
    cr_assert_eq(allot_stock_adjust(st, &in, FX_T0, &out, &fx_err), ALLOT_EINSUFFICIENT_STOCK);
    in.delta = 2;
    cr_assert_eq(allot_stock_adjust(st, &in, FX_T0, &out, &fx_err), 0);
    cr_assert_eq(out.position.on_hand, 2);
}

Test(stock, invalid_inputs)
{
    allot_stock_set_input_t set = {S("A"), S("W9"), 1, false, 0, false, 0};
    cr_assert_eq(allot_stock_set(st, &set, NULL, &fx_err), ALLOT_ENOT_FOUND);
    cr_assert_str_eq(fx_err.field, "location");
    set.location = S("W1");
    set.on_hand = -1;
    cr_assert_eq(allot_stock_set(st, &set, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "on_hand");
    set.on_hand = ALLOT_QUANTITY_MAX + 1;
    cr_assert_eq(allot_stock_set(st, &set, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    set.on_hand = ALLOT_QUANTITY_MAX;
    set.has_safety_stock = true;
    set.safety_stock = -1;
    cr_assert_eq(allot_stock_set(st, &set, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "safety_stock");
    set.safety_stock = 0;
    cr_assert_eq(allot_stock_set(st, &set, NULL, &fx_err), 0);
    allot_stock_adjust_input_t adj = {S("A"), S("W1"), 1, {"", 0}};
    cr_assert_eq(allot_stock_adjust(st, &adj, FX_T0, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT,
                 "over QUANTITY_MAX");
    adj.delta = 0;
    cr_assert_eq(allot_stock_adjust(st, &adj, FX_T0, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "delta");
    adj.delta = -1;
    adj.sku = S("");
    cr_assert_eq(allot_stock_adjust(st, &adj, FX_T0, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "sku");
}

Test(avail, ship_sums_eligible_locations_with_detail_by_priority)
{
    fx_location(st, (fx_loc_t){.id = "OFF", .inactive = true});
    fx_stock(st, "A", "W1", 4, 0);
    fx_stock(st, "A", "W2", 3, 1);
    fx_stock(st, "A", "OFF", 50, 0);
    allot_avail_request_t req = {ALLOT_METHOD_SHIP, false, 0, 0, 0, {"", 0}};
    allot_avail_query_t q;
    cr_assert_eq(allot_avail_prepare(st, &req, &q, &fx_err), 0);
    allot_avail_location_t locs[8];
    uint32_t n;
    cr_assert_eq(allot_avail_sku(st, &q, S("A"), locs, 8, &n), 6);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(allot_location_at(st, locs[0].location)->id, "W2");
    cr_assert_eq(locs[0].available, 2);
    cr_assert_eq(allot_avail_sku(st, &q, S("unknown"), locs, 8, &n), 0);
    cr_assert_eq(n, 0);
}

Test(avail, nearest_first_with_ship_to)
{
    fx_stock(st, "A", "W1", 4, 0);
    fx_stock(st, "A", "W2", 3, 0);
    allot_avail_request_t req = {ALLOT_METHOD_SHIP, true, 52.4, 13.3, 0, {"", 0}};
    allot_avail_query_t q;
    cr_assert_eq(allot_avail_prepare(st, &req, &q, &fx_err), 0);
    allot_avail_location_t locs[8];
    uint32_t n;
    cr_assert_eq(allot_avail_sku(st, &q, S("A"), locs, 8, &n), 7);
    cr_assert_str_eq(allot_location_at(st, locs[0].location)->id, "W1");
    cr_assert(locs[0].distance_km < locs[1].distance_km);
    cr_assert(locs[1].distance_km > 400 && locs[1].distance_km < 600);
}

Test(avail, pickup_is_the_best_single_store_within_radius)
{
    fx_location(st, (fx_loc_t){.id = "S1", .lat = 52.50, .lon = 13.40, .pickup = true});
    fx_location(st, (fx_loc_t){.id = "S2", .lat = 52.53, .lon = 13.41, .pickup = true});
    fx_location(st, (fx_loc_t){.id = "S3", .lat = 48.14, .lon = 11.58, .pickup = true});
    fx_stock(st, "A", "S1", 2, 0);
    fx_stock(st, "A", "S2", 5, 0);
    fx_stock(st, "A", "S3", 9, 0);
    fx_stock(st, "A", "W1", 100, 0);
    allot_avail_request_t req = {ALLOT_METHOD_PICKUP, true, 52.52, 13.40, 0, {"", 0}};
    allot_avail_query_t q;
    cr_assert_eq(allot_avail_prepare(st, &req, &q, &fx_err), 0);
    allot_avail_location_t locs[8];
    uint32_t n;
    cr_assert_eq(allot_avail_sku(st, &q, S("A"), locs, 8, &n), 5);
    cr_assert_eq(n, 2);
    req.radius_km = 1000;
    cr_assert_eq(allot_avail_prepare(st, &req, &q, &fx_err), 0);
    cr_assert_eq(allot_avail_sku(st, &q, S("A"), locs, 8, &n), 9);
    allot_avail_request_t at = {ALLOT_METHOD_PICKUP, false, 0, 0, 0, S("S1")};
    cr_assert_eq(allot_avail_prepare(st, &at, &q, &fx_err), 0);
    cr_assert_eq(allot_avail_sku(st, &q, S("A"), locs, 8, &n), 2);
    allot_avail_request_t none = {ALLOT_METHOD_PICKUP, false, 0, 0, 0, {"", 0}};
    cr_assert_eq(allot_avail_prepare(st, &none, &q, &fx_err), ALLOT_EINVALID_ARGUMENT);
    allot_avail_request_t unknown = {ALLOT_METHOD_SHIP, false, 0, 0, 0, S("S9")};
    cr_assert_eq(allot_avail_prepare(st, &unknown, &q, &fx_err), ALLOT_ENOT_FOUND);
}

Test(avail, same_day_needs_ship_to_and_radius)
{
    fx_location(st, (fx_loc_t){.id = "SD", .lat = 52.52, .lon = 13.40, .same_day_radius_km = 20});
    fx_stock(st, "A", "SD", 4, 0);
    fx_stock(st, "A", "W1", 7, 0);
    allot_avail_request_t req = {ALLOT_METHOD_SAME_DAY, false, 0, 0, 0, {"", 0}};
    allot_avail_query_t q;
    cr_assert_eq(allot_avail_prepare(st, &req, &q, &fx_err), ALLOT_EINVALID_ARGUMENT);
    req.has_ship_to = true;
    req.lat = 52.6;
    req.lon = 13.4;
    cr_assert_eq(allot_avail_prepare(st, &req, &q, &fx_err), 0);
    cr_assert_eq(allot_avail_sku(st, &q, S("A"), NULL, 0, NULL), 4);
    req.lat = 53.0;
    cr_assert_eq(allot_avail_prepare(st, &req, &q, &fx_err), 0);
    cr_assert_eq(allot_avail_sku(st, &q, S("A"), NULL, 0, NULL), 0);
}

/* ---- idempotency memory bounded by count ----------------------------------------------------- */

static uint64_t evicted_early(const allot_state_t *state)
{
    allot_state_counters_t c;
    allot_state_counters_get(state, &c);
    return c.idempotency_evicted_early;
}

Test(idempotency, adjust_keys_the_cap_evicts_inside_the_window_are_counted)
{
    allot_state_config_t config = {.idempotency_entries_max = 100,
                                   .idempotency_age_ms = ALLOT_IDEMPOTENCY_AGE_MS_DEFAULT};
    allot_state_t *state = fx_state_with(&config);
    fx_location(state, (fx_loc_t){.id = "W1"});
    allot_stock_result_t out;
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        allot_stock_adjust_input_t in = {S("A"), S("W1"), 1, S(key)};
        cr_assert_eq(allot_stock_adjust(state, &in, FX_T0 + i * 1000, &out, &fx_err), 0);
    }
    allot_state_counters_t c;
    allot_state_counters_get(state, &c);
    cr_assert_eq(c.adjust_keys, 100);
    cr_assert_eq(c.idempotency_evicted_early, 200, "k0..k199 left inside their 24 h");
    /* the shortened window: a retry of k0 seconds later applies again */
    allot_stock_adjust_input_t retry = {S("A"), S("W1"), 1, S("k0")};
    cr_assert_eq(allot_stock_adjust(state, &retry, FX_T0 + 301000, &out, &fx_err), 0);
    cr_assert_not(out.repeated);
    cr_assert_eq(out.position.on_hand, 301);
    cr_assert_eq(evicted_early(state), 201);
    /* once the window has passed, what the cap evicts is not early */
    allot_stock_adjust_input_t late = {S("A"), S("W1"), 1, S("late")};
    int64_t after_window = FX_T0 + ALLOT_IDEMPOTENCY_AGE_MS_DEFAULT + 400000;
    cr_assert_eq(allot_stock_adjust(state, &late, after_window, &out, &fx_err), 0);
    cr_assert_eq(evicted_early(state), 201);
    fx_assert_replay_equal(state);
    allot_state_destroy(state);
    fx_log_reset();
}
