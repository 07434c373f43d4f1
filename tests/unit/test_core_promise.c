/* test_core_promise.c - the delivery promise: a table of cases with exact instants (cutoffs, time
 * zones and both daylight-saving switches of Berlin and New York, weekends, holidays, processing
 * days, transit bands, same-day radius, pickup) evaluated against the system tz database through
 * net/zone.c; dates and cutoffs; location calendars in records (and the old format); transit
 * bands; the promise of a SKU across locations; replay and checkpoints. */
#include "core/promise.h"
#include "core/base/buffer.h"
#include "core/sale.h"
#include "net/zone.h"
#include "test_core_fixture.h"

/* The bands of the table: 1 = three bands, 2 = one band from the dispatch day on, 0 = none. */
static const allot_transit_t table_bands[] = {
    {0, {{0, 0, 0}}},
    {3, {{100.0, 1, 1}, {500.0, 1, 2}, {2000.0, 2, 4}}},
    {1, {{50.0, 0, 1}}},
};

typedef struct promise_case {
    const char *name;
    const char *timezone;
    const char *cutoff;
    int processing_days;
    unsigned work_days;
    const char *holidays; /* "YYYY-MM-DD" or "" */
    int method;
    int64_t ready_ms;
    bool incoming;
    bool has_ship_to;
    double distance_km;
    double same_day_radius_km;
    int bands;
    bool promised;
    int64_t order_by_ms;
    int64_t earliest_ms;
    int64_t latest_ms;
} promise_case_t;

/* Expected instants from `TZ=<zone> date -d '<local time>' +%s%3N` (the local time is shown
 * beside each; latest_ms is one ms before the local midnight that ends the last day). */
static const promise_case_t cases[] = {
    {"berlin_before_cutoff_ships_next_business_day", "Europe/Berlin", "14:00", 0, 0x1F, "",
     ALLOT_METHOD_SHIP, 1780992000000LL /* 2026-06-09 10:00 */, false, true, 50, 0, 1, true,
     1781006400000LL /* 2026-06-09 14:00 */, 1781042400000LL /* 2026-06-10 00:00 */,
     1781128799999LL /* 2026-06-11 00:00 - 1 ms */},
    {"berlin_at_cutoff_counts_as_after", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1781006400000LL /* 2026-06-09 14:00 */, false, true, 50, 0, 1, true,
     1781092800000LL /* 2026-06-10 14:00 */, 1781128800000LL /* 2026-06-11 00:00 */,
     1781215199999LL /* 2026-06-12 00:00 - 1 ms */},
    {"berlin_one_ms_before_cutoff_is_today", "Europe/Berlin", "14:00", 0, 0x1F, "",
     ALLOT_METHOD_SHIP, 1781006399999LL /* 2026-06-09 13:59:59.999 */, false, true, 50, 0, 1, true,
     1781006400000LL /* 2026-06-09 14:00 */, 1781042400000LL /* 2026-06-10 00:00 */,
     1781128799999LL /* 2026-06-11 00:00 - 1 ms */},
    {"berlin_after_cutoff_dispatches_tomorrow", "Europe/Berlin", "14:00", 0, 0x1F, "",
     ALLOT_METHOD_SHIP, 1781010000000LL /* 2026-06-09 15:00 */, false, true, 50, 0, 1, true,
     1781092800000LL /* 2026-06-10 14:00 */, 1781128800000LL /* 2026-06-11 00:00 */,
     1781215199999LL /* 2026-06-12 00:00 - 1 ms */},
    {"berlin_friday_after_cutoff_monday_holiday", "Europe/Berlin", "14:00", 0, 0x1F, "2026-05-25",
     ALLOT_METHOD_SHIP, 1779454800000LL /* 2026-05-22 15:00 */, false, true, 300, 0, 1, true,
     1779796800000LL /* 2026-05-26 14:00 */, 1779832800000LL /* 2026-05-27 00:00 */,
     1780005599999LL /* 2026-05-29 00:00 - 1 ms */},
    {"berlin_saturday_waits_for_monday", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1781334000000LL /* 2026-06-13 09:00 */, false, true, 50, 0, 1, true,
     1781524800000LL /* 2026-06-15 14:00 */, 1781560800000LL /* 2026-06-16 00:00 */,
     1781647199999LL /* 2026-06-17 00:00 - 1 ms */},
    {"berlin_processing_two_days", "Europe/Berlin", "14:00", 2, 0x1F, "", ALLOT_METHOD_SHIP,
     1780992000000LL /* 2026-06-09 10:00 */, false, true, 50, 0, 1, true,
     1781006400000LL /* 2026-06-09 14:00 */, 1781215200000LL /* 2026-06-12 00:00 */,
     1781301599999LL /* 2026-06-13 00:00 - 1 ms */},
    {"berlin_processing_over_weekend", "Europe/Berlin", "14:00", 2, 0x1F, "", ALLOT_METHOD_SHIP,
     1781164800000LL /* 2026-06-11 10:00 */, false, true, 50, 0, 1, true,
     1781179200000LL /* 2026-06-11 14:00 */, 1781560800000LL /* 2026-06-16 00:00 */,
     1781647199999LL /* 2026-06-17 00:00 - 1 ms */},
    {"berlin_transit_skips_holiday_after_weekend", "Europe/Berlin", "14:00", 0, 0x1F, "2026-05-25",
     ALLOT_METHOD_SHIP, 1779436800000LL /* 2026-05-22 10:00 */, false, true, 50, 0, 1, true,
     1779451200000LL /* 2026-05-22 14:00 */, 1779746400000LL /* 2026-05-26 00:00 */,
     1779832799999LL /* 2026-05-27 00:00 - 1 ms */},
    {"band_edge_exactly_max_km_is_inside", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1780992000000LL /* 2026-06-09 10:00 */, false, true, 100, 0, 1, true,
     1781006400000LL /* 2026-06-09 14:00 */, 1781042400000LL /* 2026-06-10 00:00 */,
     1781128799999LL /* 2026-06-11 00:00 - 1 ms */},
    {"band_edge_just_past_max_km_takes_next_band", "Europe/Berlin", "14:00", 0, 0x1F, "",
     ALLOT_METHOD_SHIP, 1780992000000LL /* 2026-06-09 10:00 */, false, true, 100.001, 0, 1, true,
     1781006400000LL /* 2026-06-09 14:00 */, 1781042400000LL /* 2026-06-10 00:00 */,
     1781215199999LL /* 2026-06-12 00:00 - 1 ms */},
    {"farther_than_every_band_promises_nothing", "Europe/Berlin", "14:00", 0, 0x1F, "",
     ALLOT_METHOD_SHIP, 1780992000000LL /* 2026-06-09 10:00 */, false, true, 2500, 0, 1, false,
     0LL /* - */, 0LL /* - */, 0LL /* - - 1 ms */},
    {"no_ship_to_takes_the_widest_band", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1780992000000LL /* 2026-06-09 10:00 */, false, false, 0, 0, 1, true,
     1781006400000LL /* 2026-06-09 14:00 */, 1781128800000LL /* 2026-06-11 00:00 */,
     1781560799999LL /* 2026-06-16 00:00 - 1 ms */},
    {"no_bands_promise_nothing", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1780992000000LL /* 2026-06-09 10:00 */, false, true, 50, 0, 0, false, 0LL /* - */, 0LL /* - */,
     0LL /* - - 1 ms */},
    {"band_with_zero_min_days_starts_on_dispatch_day", "Europe/Berlin", "14:00", 0, 0x1F, "",
     ALLOT_METHOD_SHIP, 1780992000000LL /* 2026-06-09 10:00 */, false, true, 20, 0, 2, true,
     1781006400000LL /* 2026-06-09 14:00 */, 1780956000000LL /* 2026-06-09 00:00 */,
     1781128799999LL /* 2026-06-11 00:00 - 1 ms */},
    {"berlin_spring_cutoff_in_gap_moves_forward", "Europe/Berlin", "02:30", 0, 0x7F, "",
     ALLOT_METHOD_PICKUP, 1774746000000LL /* 2026-03-29 03:00 +0200 */, false, false, 0, 0, 0, true,
     1774747800000LL /* 2026-03-29 03:30 +0200 */, 1774738800000LL /* 2026-03-29 00:00 +0100 */,
     1774821599999LL /* 2026-03-30 00:00 +0200 - 1 ms */},
    {"berlin_spring_after_shifted_cutoff", "Europe/Berlin", "02:30", 0, 0x7F, "",
     ALLOT_METHOD_PICKUP, 1774748700000LL /* 2026-03-29 03:45 +0200 */, false, false, 0, 0, 0, true,
     1774830600000LL /* 2026-03-30 02:30 +0200 */, 1774821600000LL /* 2026-03-30 00:00 +0200 */,
     1774907999999LL /* 2026-03-31 00:00 +0200 - 1 ms */},
    {"berlin_fall_ambiguous_cutoff_takes_first", "Europe/Berlin", "02:30", 0, 0x7F, "",
     ALLOT_METHOD_PICKUP, 1792887300000LL /* 2026-10-25 02:15 +0200 */, false, false, 0, 0, 0, true,
     1792888200000LL /* 2026-10-25 02:30 +0200 */, 1792879200000LL /* 2026-10-25 00:00 +0200 */,
     1792969199999LL /* 2026-10-26 00:00 +0100 - 1 ms */},
    {"berlin_fall_between_the_two_cutoffs_is_after", "Europe/Berlin", "02:30", 0, 0x7F, "",
     ALLOT_METHOD_PICKUP, 1792889100000LL /* 2026-10-25 02:45 +0200 */, false, false, 0, 0, 0, true,
     1792978200000LL /* 2026-10-26 02:30 +0100 */, 1792969200000LL /* 2026-10-26 00:00 +0100 */,
     1793055599999LL /* 2026-10-27 00:00 +0100 - 1 ms */},
    {"berlin_ship_across_spring_switch", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1774602000000LL /* 2026-03-27 10:00 */, false, true, 50, 0, 1, true,
     1774616400000LL /* 2026-03-27 14:00 */, 1774821600000LL /* 2026-03-30 00:00 */,
     1774907999999LL /* 2026-03-31 00:00 - 1 ms */},
    {"berlin_ship_across_fall_switch", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1792742400000LL /* 2026-10-23 10:00 */, false, true, 300, 0, 1, true,
     1792756800000LL /* 2026-10-23 14:00 */, 1792969200000LL /* 2026-10-26 00:00 */,
     1793141999999LL /* 2026-10-28 00:00 - 1 ms */},
    {"new_york_spring_cutoff_in_gap_moves_forward", "America/New_York", "02:30", 0, 0x7F, "",
     ALLOT_METHOD_PICKUP, 1772953200000LL /* 2026-03-08 03:00 -0400 */, false, false, 0, 0, 0, true,
     1772955000000LL /* 2026-03-08 03:30 -0400 */, 1772946000000LL /* 2026-03-08 00:00 -0500 */,
     1773028799999LL /* 2026-03-09 00:00 -0400 - 1 ms */},
    {"new_york_spring_after_shifted_cutoff", "America/New_York", "02:30", 0, 0x7F, "",
     ALLOT_METHOD_PICKUP, 1772955060000LL /* 2026-03-08 03:31 -0400 */, false, false, 0, 0, 0, true,
     1773037800000LL /* 2026-03-09 02:30 -0400 */, 1773028800000LL /* 2026-03-09 00:00 -0400 */,
     1773115199999LL /* 2026-03-10 00:00 -0400 - 1 ms */},
    {"new_york_fall_ambiguous_cutoff_takes_first", "America/New_York", "01:30", 0, 0x7F, "",
     ALLOT_METHOD_PICKUP, 1793510100000LL /* 2026-11-01 01:15 -0400 */, false, false, 0, 0, 0, true,
     1793511000000LL /* 2026-11-01 01:30 -0400 */, 1793505600000LL /* 2026-11-01 00:00 -0400 */,
     1793595599999LL /* 2026-11-02 00:00 -0500 - 1 ms */},
    {"new_york_fall_second_pass_is_after_cutoff", "America/New_York", "01:30", 0, 0x7F, "",
     ALLOT_METHOD_PICKUP, 1793513700000LL /* 2026-11-01 01:15 -0500 */, false, false, 0, 0, 0, true,
     1793601000000LL /* 2026-11-02 01:30 -0500 */, 1793595600000LL /* 2026-11-02 00:00 -0500 */,
     1793681999999LL /* 2026-11-03 00:00 -0500 - 1 ms */},
    {"new_york_ship_friday_over_spring_switch", "America/New_York", "17:00", 0, 0x1F, "",
     ALLOT_METHOD_SHIP, 1772816400000LL /* 2026-03-06 12:00 */, false, true, 300, 0, 1, true,
     1772834400000LL /* 2026-03-06 17:00 */, 1773028800000LL /* 2026-03-09 00:00 */,
     1773201599999LL /* 2026-03-11 00:00 - 1 ms */},
    {"new_york_friday_after_cutoff_ships_monday", "America/New_York", "17:00", 0, 0x1F, "",
     ALLOT_METHOD_SHIP, 1793397600000LL /* 2026-10-30 18:00 */, false, true, 50, 0, 1, true,
     1793656800000LL /* 2026-11-02 17:00 */, 1793682000000LL /* 2026-11-03 00:00 */,
     1793768399999LL /* 2026-11-04 00:00 - 1 ms */},
    {"same_day_in_radius_before_cutoff", "Europe/Berlin", "14:00", 0, 0x1F, "",
     ALLOT_METHOD_SAME_DAY, 1780992000000LL /* 2026-06-09 10:00 */, false, true, 5, 20, 1, true,
     1781006400000LL /* 2026-06-09 14:00 */, 1780956000000LL /* 2026-06-09 00:00 */,
     1781042399999LL /* 2026-06-10 00:00 - 1 ms */},
    {"same_day_out_of_radius", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SAME_DAY,
     1780992000000LL /* 2026-06-09 10:00 */, false, true, 25, 20, 1, false, 0LL /* - */,
     0LL /* - */, 0LL /* - - 1 ms */},
    {"same_day_after_cutoff", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SAME_DAY,
     1781008200000LL /* 2026-06-09 14:30 */, false, true, 5, 20, 1, false, 0LL /* - */, 0LL /* - */,
     0LL /* - - 1 ms */},
    {"same_day_on_saturday", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SAME_DAY,
     1781337600000LL /* 2026-06-13 10:00 */, false, true, 5, 20, 1, false, 0LL /* - */, 0LL /* - */,
     0LL /* - - 1 ms */},
    {"same_day_not_from_incoming_supply", "Europe/Berlin", "14:00", 0, 0x1F, "",
     ALLOT_METHOD_SAME_DAY, 1780992000000LL /* 2026-06-09 10:00 */, true, true, 5, 20, 1, false,
     0LL /* - */, 0LL /* - */, 0LL /* - - 1 ms */},
    {"same_day_not_with_processing_days", "Europe/Berlin", "14:00", 1, 0x1F, "",
     ALLOT_METHOD_SAME_DAY, 1780992000000LL /* 2026-06-09 10:00 */, false, true, 5, 20, 1, false,
     0LL /* - */, 0LL /* - */, 0LL /* - - 1 ms */},
    {"pickup_today_before_cutoff", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_PICKUP,
     1780992000000LL /* 2026-06-09 10:00 */, false, true, 5, 0, 0, true,
     1781006400000LL /* 2026-06-09 14:00 */, 1780956000000LL /* 2026-06-09 00:00 */,
     1781042399999LL /* 2026-06-10 00:00 - 1 ms */},
    {"pickup_after_cutoff_next_work_day", "Europe/Berlin", "14:00", 0, 0x1F, "",
     ALLOT_METHOD_PICKUP, 1781010000000LL /* 2026-06-09 15:00 */, false, true, 5, 0, 0, true,
     1781092800000LL /* 2026-06-10 14:00 */, 1781042400000LL /* 2026-06-10 00:00 */,
     1781128799999LL /* 2026-06-11 00:00 - 1 ms */},
    {"pickup_processing_day_over_weekend", "Europe/Berlin", "14:00", 1, 0x1F, "",
     ALLOT_METHOD_PICKUP, 1781251200000LL /* 2026-06-12 10:00 */, false, true, 5, 0, 0, true,
     1781265600000LL /* 2026-06-12 14:00 */, 1781474400000LL /* 2026-06-15 00:00 */,
     1781560799999LL /* 2026-06-16 00:00 - 1 ms */},
    {"utc_default_cutoff_last_minute", "UTC", "23:59", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1780963139999LL /* 2026-06-08 23:58:59.999 */, false, true, 50, 0, 1, true,
     1780963140000LL /* 2026-06-08 23:59 */, 1780963200000LL /* 2026-06-09 00:00 */,
     1781049599999LL /* 2026-06-10 00:00 - 1 ms */},
    {"utc_default_cutoff_reached", "UTC", "23:59", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1780963140000LL /* 2026-06-08 23:59 */, false, true, 50, 0, 1, true,
     1781049540000LL /* 2026-06-09 23:59 */, 1781049600000LL /* 2026-06-10 00:00 */,
     1781135999999LL /* 2026-06-11 00:00 - 1 ms */},
    {"tokyo_friday_after_cutoff", "Asia/Tokyo", "12:00", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1781236800000LL /* 2026-06-12 13:00 */, false, true, 50, 0, 1, true,
     1781492400000LL /* 2026-06-15 12:00 */, 1781535600000LL /* 2026-06-16 00:00 */,
     1781621999999LL /* 2026-06-17 00:00 - 1 ms */},
    {"kolkata_half_hour_offset", "Asia/Kolkata", "10:00", 0, 0x1F, "", ALLOT_METHOD_PICKUP,
     1780889400000LL /* 2026-06-08 09:00 */, false, true, 1, 0, 0, true,
     1780893000000LL /* 2026-06-08 10:00 */, 1780857000000LL /* 2026-06-08 00:00 */,
     1780943399999LL /* 2026-06-09 00:00 - 1 ms */},
    {"saturday_work_day_transit_skips_sunday", "Europe/Berlin", "14:00", 0, 0x3F, "",
     ALLOT_METHOD_SHIP, 1781337600000LL /* 2026-06-13 10:00 */, false, true, 50, 0, 1, true,
     1781352000000LL /* 2026-06-13 14:00 */, 1781474400000LL /* 2026-06-15 00:00 */,
     1781560799999LL /* 2026-06-16 00:00 - 1 ms */},
    {"holiday_on_work_day_lengthens_processing", "Europe/Berlin", "14:00", 1, 0x1F, "2026-06-11",
     ALLOT_METHOD_SHIP, 1781078400000LL /* 2026-06-10 10:00 */, false, true, 50, 0, 1, true,
     1781092800000LL /* 2026-06-10 14:00 */, 1781474400000LL /* 2026-06-15 00:00 */,
     1781560799999LL /* 2026-06-16 00:00 - 1 ms */},
    {"incoming_eta_after_cutoff", "Europe/Berlin", "14:00", 0, 0x1F, "", ALLOT_METHOD_SHIP,
     1781100000000LL /* 2026-06-10 16:00 */, true, true, 50, 0, 1, true,
     1781179200000LL /* 2026-06-11 14:00 */, 1781215200000LL /* 2026-06-12 00:00 */,
     1781301599999LL /* 2026-06-13 00:00 - 1 ms */},
};

static void calendar_of(const promise_case_t *c, allot_calendar_t *cal)
{
    allot_calendar_defaults(cal);
    allot_str_t tz = S(c->timezone);
    memcpy(cal->timezone, tz.ptr, tz.len);
    cal->timezone[tz.len] = '\0';
    cal->timezone_len = (uint8_t)tz.len;
    cr_assert(allot_cutoff_parse(S(c->cutoff), &cal->cutoff_minute));
    cal->processing_days = (uint8_t)c->processing_days;
    cal->work_days = (uint8_t)c->work_days;
    if (c->holidays[0] != '\0') {
        cr_assert(allot_date_parse(S(c->holidays), &cal->holidays[0]));
        cal->holiday_count = 1;
    }
    cr_assert_eq(allot_calendar_check(cal, &fx_err), 0, "%s: %s", c->name, fx_err.message);
}

static bool case_run(const promise_case_t *c, zone_view_t *view, allot_promise_t *out)
{
    static allot_calendar_t cal;
    calendar_of(c, &cal);
    const allot_zone_t *zone = zone_lookup(view, S(c->timezone), c->ready_ms);
    cr_assert_not_null(zone, "%s: zone %s not resolved", c->name, c->timezone);
    allot_promise_input_t in = {.calendar = &cal,
                                .zone = zone,
                                .transit = c->bands > 0 ? &table_bands[c->bands] : NULL,
                                .method = c->method,
                                .ready_ms = c->ready_ms,
                                .incoming = c->incoming,
                                .has_ship_to = c->has_ship_to,
                                .distance_km = c->distance_km,
                                .same_day_radius_km = c->same_day_radius_km};
    return allot_promise_compute(&in, out);
}

Test(promise_table, every_case_gives_exact_order_by_earliest_and_latest)
{
    static zone_view_t view;
    size_t n = sizeof(cases) / sizeof(cases[0]);
    cr_assert_geq(n, 30);
    for (size_t i = 0; i < n; i++) {
        const promise_case_t *c = &cases[i];
        allot_promise_t p = {0, 0, 0};
        bool promised = case_run(c, &view, &p);
        cr_assert_eq(promised, c->promised, "%s: promised %d, expected %d", c->name, promised,
                     c->promised);
        if (!promised)
            continue;
        cr_expect_eq(p.order_by_ms, c->order_by_ms, "%s: order_by_ms %lld, expected %lld", c->name,
                     (long long)p.order_by_ms, (long long)c->order_by_ms);
        cr_expect_eq(p.earliest_ms, c->earliest_ms, "%s: earliest_ms %lld, expected %lld", c->name,
                     (long long)p.earliest_ms, (long long)c->earliest_ms);
        cr_expect_eq(p.latest_ms, c->latest_ms, "%s: latest_ms %lld, expected %lld", c->name,
                     (long long)p.latest_ms, (long long)c->latest_ms);
    }
}

/* ---- zones from the tz database -------------------------------------------------------------- */

Test(zone, berlin_2026_has_both_switches_at_one_utc)
{
    static zone_view_t view;
    const allot_zone_t *z = zone_lookup(&view, S("Europe/Berlin"), 1781006400000LL);
    cr_assert_not_null(z);
    int found = 0;
    for (uint32_t i = 0; i < z->transition_count; i++) {
        if (z->transitions[i].at_ms == 1774746000000LL) /* 2026-03-29T01:00Z -> CEST */
            found += z->transitions[i].offset_s == 7200;
        if (z->transitions[i].at_ms == 1792890000000LL) /* 2026-10-25T01:00Z -> CET */
            found += z->transitions[i].offset_s == 3600;
    }
    cr_assert_eq(found, 2);
    int32_t offset = 0;
    cr_assert(allot_zone_offset_at(z, 1774745999999LL, &offset) && offset == 3600);
    cr_assert(allot_zone_offset_at(z, 1774746000000LL, &offset) && offset == 7200);
}

Test(zone, names_are_checked_before_the_database_is_asked)
{
    cr_assert(zone_exists(S("Europe/Berlin")));
    cr_assert(zone_exists(S("America/New_York")));
    cr_assert(zone_exists(S("UTC")));
    cr_assert_not(zone_exists(S("Mars/Base")));
    cr_assert_not(zone_exists(S("Europe")));        /* a directory */
    cr_assert_not(zone_exists(S("zone.tab")));      /* not a TZif file (and a '.') */
    cr_assert_not(zone_exists(S("../etc/passwd"))); /* no ".." */
    cr_assert_not(zone_exists(S("/etc/localtime")));
    cr_assert_not(zone_exists(S("Europe//Berlin")));
    cr_assert_not(zone_exists(S("Europe/Berlin ")));
    cr_assert_not(zone_exists(S("")));
    static zone_view_t view;
    cr_assert_null(zone_lookup(&view, S("Mars/Base"), 1781006400000LL));
}

Test(zone, tables_in_use_are_read_once_however_many_zones_alternate)
{
    static const char *const zones[] = {"Europe/Berlin",    "America/New_York", "Asia/Tokyo",
                                        "Europe/Paris",     "America/Chicago",  "Europe/London",
                                        "Australia/Sydney", "Asia/Kolkata",     "America/Denver",
                                        "Africa/Cairo",     "Europe/Moscow",    "Pacific/Auckland"};
    static zone_view_t view;
    zone_cache_clear();
    for (int round = 0; round < 3; round++) {
        uint64_t built = zone_tables_built();
        for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
            cr_assert_not_null(zone_lookup(&view, S(zones[i]), 1781006400000LL));
        /* 12 zones x 5 years; the first round reads them, the others none */
        cr_assert_eq(zone_tables_built() - built, round == 0 ? 60u : 0u, "round %d", round);
    }
}

Test(zone, a_fixed_offset_has_no_gaps_and_no_folds)
{
    allot_zone_t z;
    allot_zone_fixed(&z, -3600);
    int64_t utc = 0;
    cr_assert(allot_zone_utc_of_local(&z, 1000, &utc));
    cr_assert_eq(utc, 3601000);
}

/* ---- dates, cutoffs and calendars ------------------------------------------------------------ */

Test(calendar, dates_parse_only_when_they_exist)
{
    int32_t d = 0;
    cr_assert(allot_date_parse(S("2026-05-25"), &d));
    cr_assert_eq(d, 20598);
    cr_assert_eq(allot_date_weekday(d), 0); /* a Monday */
    char text[11];
    allot_date_format(d, text);
    cr_assert_str_eq(text, "2026-05-25");
    cr_assert(allot_date_parse(S("2028-02-29"), &d));
    cr_assert_not(allot_date_parse(S("2026-02-30"), &d));
    cr_assert_not(allot_date_parse(S("2026-02-29"), &d));
    cr_assert_not(allot_date_parse(S("2026-13-01"), &d));
    cr_assert_not(allot_date_parse(S("2026-1-01"), &d));
    cr_assert_not(allot_date_parse(S("1969-12-31"), &d));
    cr_assert_not(allot_date_parse(S("2026-05-25T"), &d));
}

Test(calendar, cutoffs_are_hh_mm_up_to_23_59)
{
    uint16_t m = 0;
    cr_assert(allot_cutoff_parse(S("00:00"), &m) && m == 0);
    cr_assert(allot_cutoff_parse(S("23:59"), &m) && m == 1439);
    cr_assert_not(allot_cutoff_parse(S("24:00"), &m));
    cr_assert_not(allot_cutoff_parse(S("12:60"), &m));
    cr_assert_not(allot_cutoff_parse(S("9:00"), &m));
    char text[6];
    allot_cutoff_format(14 * 60 + 5, text);
    cr_assert_str_eq(text, "14:05");
}

Test(calendar, holidays_fold_duplicates_in_date_order)
{
    int32_t dates[] = {20600, 20598, 20600, 20599, 20598};
    cr_assert_eq(allot_holidays_fold(dates, 5), 3);
    cr_assert(dates[0] == 20598 && dates[1] == 20599 && dates[2] == 20600);
}

/* ---- location calendars in records ------------------------------------------------------------
 */

static allot_state_t *st;

static void teardown(void)
{
    allot_state_destroy(st);
    st = NULL;
    fx_log_reset();
}

static void berlin_calendar(allot_calendar_t *c)
{
    allot_calendar_defaults(c);
    memcpy(c->timezone, "Europe/Berlin", 14);
    c->timezone_len = 13;
    c->cutoff_minute = 14 * 60;
    c->processing_days = 1;
    c->work_days = 0x3F;
    c->holidays[0] = 20598;
    c->holidays[1] = 20600;
    c->holiday_count = 2;
}

static void location_with(const char *id, double lat, double lon, int64_t priority,
                          const allot_calendar_t *c)
{
    allot_location_input_t in;
    allot_location_input_defaults(&in);
    in.id = S(id);
    in.lat = lat;
    in.lon = lon;
    in.priority = priority;
    in.same_day_radius_km = 30;
    if (c != NULL)
        in.calendar = *c;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), 0, "%s", fx_err.message);
}

Test(location_calendar, put_keeps_the_calendar_and_replay_and_checkpoint_agree, .fini = teardown)
{
    st = fx_state();
    allot_calendar_t c;
    berlin_calendar(&c);
    location_with("B", 52.52, 13.40, 100, &c);
    location_with("U", 40.0, -74.0, 100, NULL);
    const allot_location_t *l = allot_location_find(st, S("B"));
    cr_assert_str_eq(l->calendar.timezone, "Europe/Berlin");
    cr_assert(l->calendar.cutoff_minute == 840 && l->calendar.processing_days == 1);
    cr_assert(l->calendar.work_days == 0x3F && l->calendar.holiday_count == 2);
    cr_assert_str_eq(allot_location_find(st, S("U"))->calendar.timezone, "UTC");
    fx_assert_replay_equal(st);
    char *dump = fx_dump(st);
    cr_assert_not_null(strstr(dump,
                              "calendar timezone=Europe/Berlin cutoff=14:00 processing_days=1 "
                              "work_days=63 holidays=2026-05-25,2026-05-27"));
    free(dump);
}

Test(location_calendar, bad_calendars_are_refused_naming_the_field, .fini = teardown)
{
    st = fx_state();
    allot_calendar_t c;
    berlin_calendar(&c);
    c.work_days = 0;
    allot_location_input_t in;
    allot_location_input_defaults(&in);
    in.id = S("X");
    in.calendar = c;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "work_days");
    berlin_calendar(&in.calendar);
    in.calendar.cutoff_minute = 1440;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "cutoff");
    berlin_calendar(&in.calendar);
    memcpy(in.calendar.timezone, "../x", 5);
    in.calendar.timezone_len = 4;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "timezone");
    berlin_calendar(&in.calendar);
    in.calendar.holidays[1] = in.calendar.holidays[0]; /* not folded */
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "holidays");
    berlin_calendar(&in.calendar);
    in.calendar.processing_days = ALLOT_PROCESSING_DAYS_MAX + 1;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "processing_days");
    cr_assert_eq(fx_log.count, 0);
    cr_assert_eq(allot_location_count(st), 0);
}

/* A location.put and a location.snapshot written before calendars existed (location payload
 * version 1: the record ends after daily_capacity / capacity_count). */
static void put_v1_fields(allot_bytes_t *b, const char *id)
{
    allot_bytes_reserve(b, 256);
    allot_bytes_put_u8(b, ALLOT_EVENT_FORMAT_VERSION);
    allot_bytes_put_str(b, S(id));
    allot_bytes_put_u8(b, 1);     /* store */
    allot_bytes_put_u8(b, 1 | 4); /* ship, active */
    allot_bytes_put_f64(b, 52.5);
    allot_bytes_put_f64(b, 13.4);
    allot_bytes_put_i64(b, 7);
    allot_bytes_put_f64(b, 12.5);
    allot_bytes_put_i64(b, 40);
}

Test(location_calendar, records_of_the_old_format_decode_with_the_default_calendar,
     .fini = teardown)
{
    st = fx_state();
    allot_bytes_t put = {0}, snapshot = {0};
    put_v1_fields(&put, "OLD");
    put_v1_fields(&snapshot, "SNAP");
    allot_bytes_put_i64(&snapshot, 19675);
    allot_bytes_put_i64(&snapshot, 3);
    cr_assert_eq(allot_event_apply_encoded(st, ALLOT_EVENT_LOCATION_PUT, put.data, put.len), 0);
    cr_assert_eq(
        allot_event_apply_encoded(st, ALLOT_EVENT_LOCATION_SNAPSHOT, snapshot.data, snapshot.len),
        0);
    const char *ids[] = {"OLD", "SNAP"};
    for (int i = 0; i < 2; i++) {
        const allot_location_t *l = allot_location_find(st, S(ids[i]));
        cr_assert_not_null(l);
        cr_assert_eq(l->priority, 7);
        cr_assert_str_eq(l->calendar.timezone, "UTC");
        cr_assert_eq(l->calendar.cutoff_minute, 23 * 60 + 59);
        cr_assert_eq(l->calendar.processing_days, 0);
        cr_assert_eq(l->calendar.work_days, 0x1F);
        cr_assert_eq(l->calendar.holiday_count, 0);
    }
    cr_assert_eq(allot_location_find(st, S("SNAP"))->capacity_count, 3);
    /* a calendar of another version is corrupt */
    allot_bytes_put_u8(&put, 3);
    cr_assert_eq(allot_event_apply_encoded(st, ALLOT_EVENT_LOCATION_PUT, put.data, put.len),
                 ALLOT_ECORRUPT);
    allot_bytes_free(&put);
    allot_bytes_free(&snapshot);
}

/* ---- transit bands --------------------------------------------------------------------------- */

Test(transit, set_replaces_the_bands_and_replay_and_checkpoint_agree, .fini = teardown)
{
    st = fx_state();
    cr_assert_null(allot_transit_get(st, ALLOT_METHOD_SHIP));
    allot_transit_band_t bands[] = {{100, 1, 1}, {500, 1, 2}, {2000, 2, 4}};
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, bands, 3, &fx_err), 0);
    cr_assert_eq(allot_transit_get(st, ALLOT_METHOD_SHIP)->band_count, 3);
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, bands + 1, 1, &fx_err), 0);
    const allot_transit_t *t = allot_transit_get(st, ALLOT_METHOD_SHIP);
    cr_assert(t->band_count == 1 && t->bands[0].max_km == 500 && t->bands[0].max_days == 2);
    cr_assert_eq(fx_log.events[1].type, ALLOT_EVENT_TRANSIT_SET);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, NULL, 0, &fx_err), 0);
    cr_assert_eq(allot_transit_get(st, ALLOT_METHOD_SHIP)->band_count, 0);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(transit, bad_bands_and_methods_without_bands_are_refused, .fini = teardown)
{
    st = fx_state();
    allot_transit_band_t ok[] = {{100, 1, 1}};
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SAME_DAY, ok, 1, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "method");
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_PICKUP, ok, 1, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    allot_transit_band_t unsorted[] = {{500, 1, 2}, {100, 1, 1}};
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, unsorted, 2, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "bands");
    allot_transit_band_t same[] = {{100, 1, 2}, {100, 1, 1}};
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, same, 2, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    allot_transit_band_t inverted[] = {{100, 3, 2}};
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, inverted, 1, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    allot_transit_band_t too_long[] = {{100, 1, ALLOT_TRANSIT_DAYS_MAX + 1}};
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, too_long, 1, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    allot_transit_band_t zero[] = {{0, 1, 1}};
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, zero, 1, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    static allot_transit_band_t many[ALLOT_TRANSIT_BANDS_MAX + 1];
    for (int i = 0; i <= ALLOT_TRANSIT_BANDS_MAX; i++)
        many[i] = (allot_transit_band_t){10.0 * (i + 1), 1, 1};
    cr_assert_eq(
        allot_transit_set(st, ALLOT_METHOD_SHIP, many, ALLOT_TRANSIT_BANDS_MAX + 1, &fx_err),
        ALLOT_ETOO_LARGE);
    cr_assert_eq(fx_log.count, 0);
    cr_assert_null(allot_transit_get(st, ALLOT_METHOD_SHIP));
}

/* ---- the promise of a SKU ------------------------------------------------------------------- */

#define TUE_10_BERLIN 1780992000000LL /* 2026-06-09 10:00 CEST, a Tuesday */

static void two_warehouses(void)
{
    st = fx_state();
    allot_transit_band_t bands[] = {{100, 1, 1}, {500, 1, 2}, {2000, 2, 4}};
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, bands, 3, &fx_err), 0);
    allot_calendar_t c;
    allot_calendar_defaults(&c);
    memcpy(c.timezone, "Europe/Berlin", 14);
    c.timezone_len = 13;
    c.cutoff_minute = 14 * 60;
    location_with("BER", 52.52, 13.40, 100, &c);  /* in Berlin */
    location_with("HAM", 53.55, 9.99, 50, NULL);  /* Hamburg, ~255 km, UTC calendar */
    location_with("BER2", 52.52, 13.40, 100, &c); /* as BER */
}

static allot_promise_item_t sku_promise(const char *sku, int method, bool ship_to,
                                        allot_promise_incoming_t *incoming, uint32_t count)
{
    static allot_promise_memo_t memo;
    static zone_view_t view;
    allot_avail_request_t req = {
        .method = method, .has_ship_to = ship_to, .lat = 52.52, .lon = 13.40, .location = {"", 0}};
    allot_avail_query_t query;
    cr_assert_eq(allot_avail_prepare(st, &req, &query, &fx_err), 0, "%s", fx_err.message);
    allot_promise_query_t pq;
    allot_promise_query_init(&pq, &query, TUE_10_BERLIN, &memo, &view, zone_lookup);
    uint32_t index = allot_sku_index_find(st, S(sku));
    int64_t available = allot_avail_sku_at(st, &query, NULL, index, NULL, 0, &(uint32_t){0});
    allot_promise_item_t item;
    allot_promise_sku(st, &pq, index, available, incoming, count, &item);
    return item;
}

Test(promise_sku, the_earliest_location_wins_then_priority_then_id, .init = two_warehouses,
     .fini = teardown)
{
    fx_stock(st, "S", "HAM", 5, 0);
    fx_stock(st, "S", "BER2", 5, 0);
    fx_stock(st, "S", "BER", 5, 0);
    allot_promise_item_t item = sku_promise("S", ALLOT_METHOD_SHIP, true, NULL, 0);
    cr_assert(item.has_delivery);
    /* BER and BER2: Wednesday in Berlin, which begins two hours before HAM's UTC Wednesday */
    cr_assert_str_eq(allot_location_at(st, item.location)->id, "BER");
    cr_assert_eq(item.delivery.order_by_ms, 1781006400000LL); /* 2026-06-09 14:00 CEST */
    cr_assert_eq(item.delivery.earliest_ms, 1781042400000LL); /* 2026-06-10 00:00 CEST */
    cr_assert_eq(item.delivery.latest_ms, 1781128799999LL);
    fx_stock(st, "S", "BER", 0, 0);
    item = sku_promise("S", ALLOT_METHOD_SHIP, true, NULL, 0);
    cr_assert_str_eq(allot_location_at(st, item.location)->id, "BER2");
    fx_stock(st, "S", "BER2", 0, 0);
    item = sku_promise("S", ALLOT_METHOD_SHIP, true, NULL, 0);
    cr_assert_str_eq(allot_location_at(st, item.location)->id, "HAM");
    cr_assert_eq(item.delivery.earliest_ms, 1781049600000LL); /* 2026-06-10 00:00 UTC */
    cr_assert_eq(item.delivery.latest_ms, 1781222399999LL);   /* end of 2026-06-11 UTC */
}

Test(promise_sku, equal_promises_go_to_the_lower_priority, .init = two_warehouses, .fini = teardown)
{
    location_with("BER0", 52.52, 13.40, 10, &allot_location_find(st, S("BER"))->calendar);
    fx_stock(st, "S", "BER", 5, 0);
    fx_stock(st, "S", "BER0", 5, 0);
    allot_promise_item_t item = sku_promise("S", ALLOT_METHOD_SHIP, true, NULL, 0);
    cr_assert_str_eq(allot_location_at(st, item.location)->id, "BER0");
}

Test(promise_sku, low_is_set_only_between_zero_and_low_stock, .init = two_warehouses,
     .fini = teardown)
{
    allot_sku_settings_t settings = {.low_stock = 5};
    cr_assert_eq(allot_sku_put(st, S("S"), &settings, TUE_10_BERLIN, &fx_err), 0);
    fx_stock(st, "S", "BER", 3, 0);
    cr_assert(sku_promise("S", ALLOT_METHOD_SHIP, true, NULL, 0).low);
    fx_stock(st, "S", "BER", 5, 0);
    cr_assert(sku_promise("S", ALLOT_METHOD_SHIP, true, NULL, 0).low);
    fx_stock(st, "S", "BER", 6, 0);
    cr_assert_not(sku_promise("S", ALLOT_METHOD_SHIP, true, NULL, 0).low);
    fx_stock(st, "S", "BER", 0, 0);
    cr_assert_not(sku_promise("S", ALLOT_METHOD_SHIP, true, NULL, 0).low);
    fx_stock(st, "T", "BER", 1, 0); /* no settings */
    cr_assert_not(sku_promise("T", ALLOT_METHOD_SHIP, true, NULL, 0).low);
}

Test(promise_sku, incoming_supply_promises_only_when_nothing_is_on_hand, .init = two_warehouses,
     .fini = teardown)
{
    allot_location_input_t in;
    allot_location_input_defaults(&in);
    in.id = S("NOSHIP");
    in.ship = false;
    cr_assert_eq(allot_location_put(st, &in, NULL, &fx_err), 0);
    uint32_t ber = allot_location_index_find(st, S("BER"));
    uint32_t noship = allot_location_index_find(st, S("NOSHIP"));
    /* Friday 2026-06-12 10:00 CEST at BER; an earlier one where nothing ships from */
    allot_promise_incoming_t incoming[] = {{1781164800000LL - 86400000LL, 50, noship},
                                           {1781251200000LL, 20, ber}};
    allot_promise_item_t item = sku_promise("N", ALLOT_METHOD_SHIP, true, incoming, 2);
    cr_assert_eq(item.incoming_count, 1);
    cr_assert_eq(incoming[0].eta_ms, 1781251200000LL);
    cr_assert_eq(incoming[0].qty, 20);
    cr_assert(item.has_delivery);
    cr_assert_eq(item.location, ber);
    cr_assert_eq(item.delivery.order_by_ms, 1781265600000LL); /* Fri 2026-06-12 14:00 CEST */
    cr_assert_eq(item.delivery.earliest_ms, 1781474400000LL); /* Mon 2026-06-15 00:00 CEST */
    cr_assert_eq(item.delivery.latest_ms, 1781560799999LL);   /* end of Mon 2026-06-15 */
    /* with stock on hand the incoming supply is listed but does not promise */
    fx_stock(st, "N", "HAM", 1, 0);
    allot_promise_incoming_t again[] = {{1781251200000LL, 20, ber}};
    item = sku_promise("N", ALLOT_METHOD_SHIP, true, again, 1);
    cr_assert_eq(item.incoming_count, 1);
    cr_assert_str_eq(allot_location_at(st, item.location)->id, "HAM");
    /* same_day never promises from incoming supply */
    fx_stock(st, "N", "HAM", 0, 0);
    item = sku_promise("N", ALLOT_METHOD_SAME_DAY, true, again, 1);
    cr_assert_not(item.has_delivery);
}

Test(promise_sku, nothing_to_promise_leaves_delivery_absent, .init = two_warehouses,
     .fini = teardown)
{
    allot_promise_item_t item = sku_promise("UNKNOWN", ALLOT_METHOD_SHIP, true, NULL, 0);
    cr_assert_not(item.has_delivery);
    cr_assert_not(item.low);
    fx_stock(st, "S", "BER", 5, 0);
    cr_assert_eq(allot_transit_set(st, ALLOT_METHOD_SHIP, NULL, 0, &fx_err), 0);
    cr_assert_not(sku_promise("S", ALLOT_METHOD_SHIP, true, NULL, 0).has_delivery);
    /* pickup needs no bands: BER has no pickup, so nothing */
    cr_assert_not(sku_promise("S", ALLOT_METHOD_PICKUP, true, NULL, 0).has_delivery);
}
