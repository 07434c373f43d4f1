/* test_inventory.c - locations, stock counts and availability through the real allotd over TCP:
 * location.put/get/list, stock.set/adjust/get, avail.get for ship, same_day and pickup, detail
 * ordering, limits and argument validation. Nothing here depends on timing. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_reply.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static harness_server_t *srv;
static allot_client_t *cli;

static void up(void)
{
    harness_fixture_up(&srv, &cli);
}

static void down(void)
{
    harness_fixture_down(&srv, &cli);
}

TestSuite(inventory, .init = up, .fini = down);

/* Great-circle distance as docs/sourcing.md defines it (R = 6371.0088 km). */
static double haversine_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 2.0 * 6371.0088 * asin(sqrt(a));
}

/* Coordinates used below. */
#define BERLIN_LAT  52.52
#define BERLIN_LON  13.405
#define POTSDAM_LAT 52.39
#define POTSDAM_LON 13.06
#define HAMBURG_LAT 53.55
#define HAMBURG_LON 9.99
#define MUNICH_LAT  48.14
#define MUNICH_LON  11.58

/* ---- locations ------------------------------------------------------------------------------ */

Test(inventory, location_put_returns_the_record_with_defaults_and_upserts_the_whole_record)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "location.put",
                    harness_json("{'id':'W1','type':'warehouse','lat':52.5,'lon':13.25}"), &r);
    harness_expect_json_at(&r, "",
                           "{'id':'W1','type':'warehouse','lat':52.5,'lon':13.25,'priority':100,"
                           "'ship':true,'pickup':false,'same_day_radius_km':0.0,'daily_capacity':0,"
                           "'active':true,"
                           "'timezone':'UTC','cutoff':'23:59','processing_days':0,"
                           "'work_days':['mon','tue','wed','thu','fri'],'holidays':[]}");
    harness_call_ok(
        cli, "location.put",
        harness_json("{'id':'W1','type':'store','lat':-10,'lon':170.5,'priority':-3,"
                     "'ship':false,'pickup':true,'same_day_radius_km':12.5,'daily_capacity':7,"
                     "'active':false,'timezone':'Europe/Berlin','cutoff':'14:00',"
                     "'processing_days':1,'work_days':['sat','mon'],'holidays':['2026-12-25']}"),
        &r);
    harness_expect_json_at(
        &r, "",
        "{'id':'W1','type':'store','lat':-10.0,'lon':170.5,'priority':-3,"
        "'ship':false,'pickup':true,'same_day_radius_km':12.5,'daily_capacity':7,"
        "'active':false,'timezone':'Europe/Berlin','cutoff':'14:00','processing_days':1,"
        "'work_days':['mon','sat'],'holidays':['2026-12-25']}");
    /* Upsert again without the optional fields: they go back to their defaults. */
    harness_call_ok(cli, "location.put",
                    harness_json("{'id':'W1','type':'dc','lat':1.5,'lon':2.5}"), &r);
    harness_call_ok(cli, "location.get", harness_json("{'id':'W1'}"), &r);
    harness_expect_json_at(
        &r, "",
        "{'id':'W1','type':'dc','lat':1.5,'lon':2.5,'priority':100,'ship':true,"
        "'pickup':false,'same_day_radius_km':0.0,'daily_capacity':0,'active':true,"
        "'timezone':'UTC','cutoff':'23:59','processing_days':0,"
        "'work_days':['mon','tue','wed','thu','fri'],'holidays':[]}");
    allot_reply_free(&r);
}

Test(inventory, location_list_is_sorted_by_id_and_holds_each_location_once)
{
    harness_put_location(cli, "W2", "'type':'warehouse','lat':0,'lon':0");
    harness_put_location(cli, "P", "'type':'store','lat':0,'lon':0,'pickup':true");
    harness_put_location(cli, "W1", "'type':'partner','lat':0,'lon':0");
    harness_put_location(cli, "W2", "'type':'warehouse','lat':1,'lon':1,'priority':0");
    allot_reply_t r = {0};
    harness_call_ok(cli, "location.list", "{}", &r);
    cr_assert_eq(harness_reply_len(&r, "locations"), 3);
    harness_expect_str_at(&r, "locations.0.id", "P");
    harness_expect_str_at(&r, "locations.1.id", "W1");
    harness_expect_str_at(&r, "locations.2.id", "W2");
    harness_expect_str_at(&r, "locations.1.type", "partner");
    cr_expect_eq(harness_reply_int(&r, "locations.2.priority"), 0);
    harness_call_ok(cli, "server.info", "{}", &r);
    cr_expect_eq(harness_reply_int(&r, "locations"), 3);
    allot_reply_free(&r);
}

Test(inventory, location_list_of_an_empty_server_is_empty)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "location.list", "{}", &r);
    harness_expect_json_at(&r, "", "{'locations':[]}");
    allot_reply_free(&r);
}

Test(inventory, location_get_of_an_unknown_id_is_not_found)
{
    allot_reply_t r = {0};
    harness_call_error(cli, "location.get", harness_json("{'id':'nowhere'}"), "NOT_FOUND", &r);
    allot_reply_free(&r);
}

Test(inventory, location_put_rejects_bad_fields_naming_them)
{
    static const struct {
        const char *params;
        const char *field;
    } cases[] = {
        {"{'id':'X','type':'castle','lat':0,'lon':0}", "type"},
        {"{'id':'X','type':'store','lat':90.5,'lon':0}", "lat"},
        {"{'id':'X','type':'store','lat':0,'lon':-180.5}", "lon"},
        {"{'id':'X','type':'store','lat':'52.5','lon':0}", "lat"},
        {"{'id':'X','type':'store','lon':0}", "lat"},
        {"{'id':'','type':'store','lat':0,'lon':0}", "id"},
        {"{'id':'X','type':'store','lat':0,'lon':0,'priority':2147483648}", "priority"},
        {"{'id':'X','type':'store','lat':0,'lon':0,'daily_capacity':-1}", "daily_capacity"},
        {"{'id':'X','type':'store','lat':0,'lon':0,'same_day_radius_km':-1}", "same_day_radius_km"},
        {"{'id':'X','type':'store','lat':0,'lon':0,'ship':1}", "ship"},
        {"{'id':'X','type':'store','lat':0,'lon':0,'colour':'red'}", "colour"},
    };
    allot_reply_t r = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness_call_error(cli, "location.put", harness_json("%s", cases[i].params),
                           "INVALID_ARGUMENT", &r);
        harness_expect_error_names(&r, cases[i].field);
    }
    harness_call_ok(cli, "location.list", "{}", &r);
    cr_expect_eq(harness_reply_len(&r, "locations"), 0, "a refused put created a location");
    /* The extremes are accepted. */
    harness_call_ok(
        cli, "location.put",
        harness_json("{'id':'X','type':'store','lat':-90,'lon':180,'priority':-2147483648,"
                     "'daily_capacity':2147483647,'same_day_radius_km':20038}"),
        &r);
    allot_reply_free(&r);
}

/* ---- stock ------------------------------------------------------------------------------------
 */

Test(inventory, stock_set_returns_the_position_and_stock_get_sums_positions_sorted_by_location)
{
    harness_put_location(cli, "W2", "'type':'warehouse','lat':0,'lon':0");
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_put_location(cli, "P", "'type':'store','lat':0,'lon':0");
    allot_reply_t r = {0};
    harness_call_ok(cli, "stock.set", harness_json("{'sku':'A','location':'W2','on_hand':3}"), &r);
    harness_expect_json_at(&r, "",
                           "{'sku':'A','location':'W2','on_hand':3,'reserved':0,'allocated':0,"
                           "'safety_stock':0,'available':3}");
    harness_set_stock(cli, "A", "W1", 4);
    harness_set_stock(cli, "A", "P", 5);
    harness_call_ok(cli, "stock.get", harness_json("{'sku':'A'}"), &r);
    harness_expect_json_at(
        &r, "",
        "{'sku':'A','on_hand':12,'reserved':0,'allocated':0,'available':12,"
        "'positions':["
        "{'location':'P','on_hand':5,'reserved':0,'allocated':0,'safety_stock':0,"
        "'available':5},"
        "{'location':'W1','on_hand':4,'reserved':0,'allocated':0,'safety_stock':0,"
        "'available':4},"
        "{'location':'W2','on_hand':3,'reserved':0,'allocated':0,'safety_stock':0,"
        "'available':3}]}");
    allot_reply_free(&r);
}

Test(inventory, stock_get_of_an_unknown_sku_is_not_found)
{
    allot_reply_t r = {0};
    harness_call_error(cli, "stock.get", harness_json("{'sku':'ghost'}"), "NOT_FOUND", &r);
    allot_reply_free(&r);
}

Test(inventory, stock_set_at_an_unknown_location_is_not_found_and_creates_nothing)
{
    allot_reply_t r = {0};
    harness_call_error(cli, "stock.set",
                       harness_json("{'sku':'A','location':'nowhere','on_hand':1}"), "NOT_FOUND",
                       &r);
    harness_expect_error_names(&r, "location");
    harness_call_error(cli, "stock.get", harness_json("{'sku':'A'}"), "NOT_FOUND", &r);
    allot_reply_free(&r);
}

Test(inventory, stock_set_with_an_older_as_of_is_ignored_and_says_stale)
{
    harness_put_location(cli, "W2", "'type':'warehouse','lat':0,'lon':0");
    allot_reply_t r = {0};
    harness_call_ok(cli, "stock.set",
                    harness_json("{'sku':'A','location':'W2','on_hand':3,'as_of_ms':100}"), &r);
    cr_expect_null(harness_reply_at(&r, "stale"), "a fresh set must not say stale");
    harness_call_ok(cli, "stock.set",
                    harness_json("{'sku':'A','location':'W2','on_hand':1,'as_of_ms':99}"), &r);
    harness_expect_json_at(&r, "",
                           "{'sku':'A','location':'W2','on_hand':3,'reserved':0,'allocated':0,"
                           "'safety_stock':0,'available':3,'stale':true}");
    cr_expect_eq(harness_stock_field(cli, "A", "W2", "on_hand"), 3);
    /* An equal as_of_ms applies. */
    harness_call_ok(cli, "stock.set",
                    harness_json("{'sku':'A','location':'W2','on_hand':6,'as_of_ms':100}"), &r);
    cr_expect_null(harness_reply_at(&r, "stale"));
    cr_expect_eq(harness_reply_int(&r, "on_hand"), 6);
    /* A stale set changes nothing, not even safety_stock. */
    harness_call_ok(
        cli, "stock.set",
        harness_json("{'sku':'A','location':'W2','on_hand':0,'safety_stock':2,'as_of_ms':50}"), &r);
    cr_expect_eq(harness_reply_int(&r, "on_hand"), 6);
    cr_expect_eq(harness_reply_int(&r, "safety_stock"), 0);
    cr_expect_eq(harness_stock_field(cli, "A", "W2", "safety_stock"), 0);
    /* A set without as_of_ms always applies; a later older as_of_ms is still stale. */
    harness_call_ok(cli, "stock.set", harness_json("{'sku':'A','location':'W2','on_hand':8}"), &r);
    cr_expect_eq(harness_reply_int(&r, "on_hand"), 8);
    harness_call_ok(cli, "stock.set",
                    harness_json("{'sku':'A','location':'W2','on_hand':1,'as_of_ms':99}"), &r);
    cr_expect_eq(harness_reply_int(&r, "on_hand"), 8);
    cr_expect_not_null(harness_reply_at(&r, "stale"));
    cr_expect_eq(harness_stock_field(cli, "A", "W2", "on_hand"), 8);
    allot_reply_free(&r);
}

Test(inventory, stock_set_keeps_safety_stock_when_omitted_and_rejects_out_of_range_counts)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    allot_reply_t r = {0};
    harness_call_ok(cli, "stock.set",
                    harness_json("{'sku':'A','location':'W1','on_hand':10,'safety_stock':3}"), &r);
    harness_call_ok(cli, "stock.set", harness_json("{'sku':'A','location':'W1','on_hand':12}"), &r);
    cr_expect_eq(harness_reply_int(&r, "safety_stock"), 3);
    cr_expect_eq(harness_reply_int(&r, "available"), 9);
    harness_call_error(cli, "stock.set", harness_json("{'sku':'A','location':'W1','on_hand':-1}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "on_hand");
    harness_call_error(cli, "stock.set",
                       harness_json("{'sku':'A','location':'W1','on_hand':2199023255552}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "on_hand");
    harness_call_error(cli, "stock.set", harness_json("{'sku':'A','location':'W1','on_hand':'5'}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "on_hand");
    harness_call_error(cli, "stock.set",
                       harness_json("{'sku':'A','location':'W1','on_hand':1,'safety_stock':-1}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "safety_stock");
    cr_expect_eq(harness_stock_field(cli, "A", "W1", "on_hand"), 12);
    /* 2^40 is the largest count accepted. */
    harness_call_ok(cli, "stock.set",
                    harness_json("{'sku':'A','location':'W1','on_hand':1099511627776}"), &r);
    cr_expect_eq(harness_reply_int(&r, "on_hand"), (int64_t)1 << 40);
    allot_reply_free(&r);
}

Test(inventory, stock_adjust_with_a_repeated_key_is_applied_once)
{
    harness_put_location(cli, "P", "'type':'store','lat':0,'lon':0");
    allot_reply_t r = {0};
    const char *receipt = harness_json("{'sku':'A','location':'P','delta':5,'key':'receipt-7',"
                                       "'reason':'PO 81'}");
    char first_json[512], again_json[512];
    harness_call_ok(cli, "stock.adjust", receipt, &r);
    char *text = harness_reply_json(&r);
    snprintf(first_json, sizeof first_json, "%s", text);
    free(text);
    harness_expect_json_at(&r, "",
                           "{'sku':'A','location':'P','on_hand':5,'reserved':0,'allocated':0,"
                           "'safety_stock':0,'available':5}");
    harness_call_ok(cli, "stock.adjust", receipt, &r);
    text = harness_reply_json(&r);
    snprintf(again_json, sizeof again_json, "%s", text);
    free(text);
    cr_expect_str_eq(again_json, first_json);
    cr_expect_eq(harness_stock_field(cli, "A", "P", "on_hand"), 5);
    /* Without a key every adjust applies. */
    harness_call_ok(cli, "stock.adjust", harness_json("{'sku':'A','location':'P','delta':-2}"), &r);
    harness_call_ok(cli, "stock.adjust", harness_json("{'sku':'A','location':'P','delta':-2}"), &r);
    cr_expect_eq(harness_reply_int(&r, "on_hand"), 1);
    /* The same key for a different change is a conflict and changes nothing. */
    harness_call_error(cli, "stock.adjust",
                       harness_json("{'sku':'A','location':'P','delta':6,'key':'receipt-7'}"),
                       "CONFLICT", &r);
    cr_expect_eq(harness_stock_field(cli, "A", "P", "on_hand"), 1);
    allot_reply_free(&r);
}

Test(inventory, stock_adjust_below_zero_is_insufficient_stock_and_changes_nothing)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "A", "W1", 2);
    allot_reply_t r = {0};
    harness_call_error(cli, "stock.adjust", harness_json("{'sku':'A','location':'W1','delta':-3}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':3,'available':2}]");
    cr_expect_eq(harness_stock_field(cli, "A", "W1", "on_hand"), 2);
    /* Down to exactly zero is fine. */
    harness_call_ok(cli, "stock.adjust", harness_json("{'sku':'A','location':'W1','delta':-2}"),
                    &r);
    cr_expect_eq(harness_reply_int(&r, "on_hand"), 0);
    cr_expect_eq(harness_reply_int(&r, "available"), 0);
    allot_reply_free(&r);
}

Test(inventory, stock_adjust_rejects_zero_and_oversized_deltas)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    allot_reply_t r = {0};
    harness_call_error(cli, "stock.adjust", harness_json("{'sku':'A','location':'W1','delta':0}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "delta");
    harness_call_error(cli, "stock.adjust",
                       harness_json("{'sku':'A','location':'W1','delta':2199023255552}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "delta");
    harness_call_error(cli, "stock.adjust",
                       harness_json("{'sku':'A','location':'nowhere','delta':1}"), "NOT_FOUND", &r);
    /* on_hand never grows past 2^40 (refused, nothing changes). */
    harness_set_stock(cli, "A", "W1", ((int64_t)1 << 40) - 1);
    harness_call_ok(cli, "stock.adjust", harness_json("{'sku':'A','location':'W1','delta':1}"), &r);
    harness_call_json(cli, "stock.adjust", harness_json("{'sku':'A','location':'W1','delta':1}"),
                      &r);
    cr_expect(r.is_error, "on_hand went past 2^40");
    cr_expect_eq(harness_stock_field(cli, "A", "W1", "on_hand"), (int64_t)1 << 40);
    allot_reply_free(&r);
}

Test(inventory, safety_stock_is_not_available_to_avail_get_stock_get_or_reserve)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    allot_reply_t r = {0};
    harness_call_ok(cli, "stock.set",
                    harness_json("{'sku':'A','location':'W1','on_hand':10,'safety_stock':3}"), &r);
    cr_expect_eq(harness_reply_int(&r, "available"), 7);
    harness_call_ok(cli, "stock.get", harness_json("{'sku':'A'}"), &r);
    cr_expect_eq(harness_reply_int(&r, "available"), 7);
    cr_expect_eq(harness_reply_int(&r, "positions.0.available"), 7);
    cr_expect_eq(harness_reply_int(&r, "positions.0.safety_stock"), 3);
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 7);
    harness_call_error(cli, "reserve", harness_json("{'id':'c1','lines':[{'sku':'A','qty':8}]}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':8,'available':7}]");
    cr_expect_eq(harness_stock_field(cli, "A", "W1", "reserved"), 0);
    harness_call_ok(cli, "reserve", harness_json("{'id':'c2','lines':[{'sku':'A','qty':7}]}"), &r);
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 0);
    /* Safety stock larger than what is left never shows as negative availability. */
    harness_call_ok(cli, "stock.set", harness_json("{'sku':'A','location':'W1','on_hand':5}"), &r);
    cr_expect_eq(harness_reply_int(&r, "reserved"), 7);
    cr_expect_eq(harness_reply_int(&r, "available"), 0);
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 0);
    /* Releasing the over-hold brings back exactly on_hand - safety_stock. */
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'c2'}"), &r);
    cr_expect_eq(harness_stock_field(cli, "A", "W1", "reserved"), 0);
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 2);
    allot_reply_free(&r);
}

/* ---- availability ---------------------------------------------------------------------------- */

Test(inventory, avail_get_answers_in_request_order_and_unknown_skus_are_zero)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "A", "W1", 4);
    harness_set_stock(cli, "B", "W1", 9);
    allot_reply_t r = {0};
    harness_call_ok(cli, "avail.get", harness_json("{'skus':['B','nope','A','B']}"), &r);
    harness_expect_json_at(&r, "",
                           "{'items':[{'sku':'B','available':9},{'sku':'nope','available':0},"
                           "{'sku':'A','available':4},{'sku':'B','available':9}]}");
    harness_call_ok(cli, "avail.get", harness_json("{'skus':['nope'],'detail':true}"), &r);
    harness_expect_json_at(&r, "", "{'items':[{'sku':'nope','available':0,'locations':[]}]}");
    allot_reply_free(&r);
}

Test(inventory, avail_get_ship_sums_active_shipping_locations_only)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_put_location(cli, "W2", "'type':'warehouse','lat':0,'lon':0,'active':false");
    harness_put_location(cli, "S", "'type':'store','lat':0,'lon':0,'ship':false,'pickup':true");
    harness_set_stock(cli, "A", "W1", 4);
    harness_set_stock(cli, "A", "W2", 30);
    harness_set_stock(cli, "A", "S", 200);
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 4);
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A'],'method':'ship'}")), 4);
    /* Reactivating is an upsert of the whole record. */
    harness_put_location(cli, "W2", "'type':'warehouse','lat':0,'lon':0");
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 34);
    /* location restricts to that one location; stock.get still counts everything. */
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A'],'location':'W2'}")), 30);
    cr_expect_eq(harness_stock_field(cli, "A", "S", "available"), 200);
    allot_reply_t r = {0};
    harness_call_error(cli, "avail.get", harness_json("{'skus':['A'],'location':'nowhere'}"),
                       "NOT_FOUND", &r);
    allot_reply_free(&r);
}

Test(inventory, avail_get_detail_without_ship_to_orders_by_priority_then_id)
{
    harness_put_location(cli, "W3", "'type':'warehouse','lat':10,'lon':10,'priority':1");
    harness_put_location(cli, "W1", "'type':'warehouse','lat':50,'lon':50,'priority':1");
    harness_put_location(cli, "W2", "'type':'warehouse','lat':0,'lon':0,'priority':0");
    harness_put_location(cli, "W0", "'type':'warehouse','lat':0,'lon':0,'priority':7");
    harness_set_stock(cli, "A", "W3", 1);
    harness_set_stock(cli, "A", "W1", 2);
    harness_set_stock(cli, "A", "W2", 3);
    harness_set_stock(cli, "A", "W0", 0); /* a position with nothing available is still listed */
    allot_reply_t r = {0};
    harness_call_ok(cli, "avail.get", harness_json("{'skus':['A'],'detail':true}"), &r);
    harness_expect_json_at(&r, "",
                           "{'items':[{'sku':'A','available':6,'locations':["
                           "{'id':'W2','available':3},{'id':'W1','available':2},"
                           "{'id':'W3','available':1},{'id':'W0','available':0}]}]}");
    allot_reply_free(&r);
}

Test(inventory, avail_get_detail_with_ship_to_lists_nearest_first_with_distances)
{
    /* Priorities deliberately disagree with distance. */
    harness_put_location(cli, "HAM",
                         harness_json("'type':'warehouse','lat':%g,'lon':%g,'priority':0",
                                      HAMBURG_LAT, HAMBURG_LON));
    harness_put_location(
        cli, "MUC",
        harness_json("'type':'warehouse','lat':%g,'lon':%g,'priority':1", MUNICH_LAT, MUNICH_LON));
    harness_put_location(
        cli, "POT",
        harness_json("'type':'store','lat':%g,'lon':%g,'priority':9", POTSDAM_LAT, POTSDAM_LON));
    harness_set_stock(cli, "A", "HAM", 5);
    harness_set_stock(cli, "A", "MUC", 7);
    harness_set_stock(cli, "A", "POT", 1);
    allot_reply_t r = {0};
    harness_call_ok(cli, "avail.get",
                    harness_json("{'skus':['A'],'detail':true,'ship_to':{'lat':%g,'lon':%g}}",
                                 BERLIN_LAT, BERLIN_LON),
                    &r);
    cr_expect_eq(harness_reply_int(&r, "items.0.available"), 13);
    cr_assert_eq(harness_reply_len(&r, "items.0.locations"), 3);
    harness_expect_str_at(&r, "items.0.locations.0.id", "POT");
    harness_expect_str_at(&r, "items.0.locations.1.id", "HAM");
    harness_expect_str_at(&r, "items.0.locations.2.id", "MUC");
    cr_expect_eq(harness_reply_int(&r, "items.0.locations.2.available"), 7);
    const double want[] = {
        haversine_km(BERLIN_LAT, BERLIN_LON, POTSDAM_LAT, POTSDAM_LON),
        haversine_km(BERLIN_LAT, BERLIN_LON, HAMBURG_LAT, HAMBURG_LON),
        haversine_km(BERLIN_LAT, BERLIN_LON, MUNICH_LAT, MUNICH_LON),
    };
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "items.0.locations.%d.distance_km", i);
        double got = harness_reply_num(&r, path);
        cr_expect(fabs(got - want[i]) < 0.01, "%s = %f, want %f", path, got, want[i]);
    }
    /* Without detail there is no locations list. */
    harness_call_ok(
        cli, "avail.get",
        harness_json("{'skus':['A'],'ship_to':{'lat':%g,'lon':%g}}", BERLIN_LAT, BERLIN_LON), &r);
    cr_expect_null(harness_reply_at(&r, "items.0.locations"));
    allot_reply_free(&r);
}

Test(inventory, avail_get_same_day_counts_locations_whose_radius_covers_ship_to)
{
    /* POT (27 km from Berlin) has a 30 km radius; HAM (255 km) only 100 km; MUC none. */
    harness_put_location(cli, "POT",
                         harness_json("'type':'store','lat':%g,'lon':%g,'same_day_radius_km':30",
                                      POTSDAM_LAT, POTSDAM_LON));
    harness_put_location(
        cli, "HAM",
        harness_json("'type':'warehouse','lat':%g,'lon':%g,'same_day_radius_km':100", HAMBURG_LAT,
                     HAMBURG_LON));
    harness_put_location(
        cli, "MUC", harness_json("'type':'warehouse','lat':%g,'lon':%g", MUNICH_LAT, MUNICH_LON));
    harness_set_stock(cli, "A", "POT", 2);
    harness_set_stock(cli, "A", "HAM", 5);
    harness_set_stock(cli, "A", "MUC", 7);
    char berlin[64];
    snprintf(berlin, sizeof berlin, "{\"lat\":%g,\"lon\":%g}", BERLIN_LAT, BERLIN_LON);
    allot_reply_t r = {0};
    harness_call_ok(
        cli, "avail.get",
        harness_json("{'skus':['A'],'method':'same_day','detail':true,'ship_to':%s}", berlin), &r);
    cr_expect_eq(harness_reply_int(&r, "items.0.available"), 2);
    cr_assert_eq(harness_reply_len(&r, "items.0.locations"), 1);
    harness_expect_str_at(&r, "items.0.locations.0.id", "POT");
    /* From Hamburg itself, HAM covers it and POT does not. */
    cr_expect_eq(
        harness_avail_of(
            cli, harness_json("{'skus':['A'],'method':'same_day','ship_to':{'lat':%g,'lon':%g}}",
                              HAMBURG_LAT, HAMBURG_LON)),
        5);
    /* Ship from Berlin sees everything. */
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A'],'ship_to':%s}", berlin)), 14);
    /* A same-day location that cannot ship is not eligible. */
    harness_put_location(cli, "POT",
                         harness_json("'type':'store','lat':%g,'lon':%g,'same_day_radius_km':30,"
                                      "'ship':false",
                                      POTSDAM_LAT, POTSDAM_LON));
    cr_expect_eq(harness_avail_of(
                     cli, harness_json("{'skus':['A'],'method':'same_day','ship_to':%s}", berlin)),
                 0);
    /* same_day needs ship_to. */
    harness_call_error(cli, "avail.get", harness_json("{'skus':['A'],'method':'same_day'}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "ship_to");
    allot_reply_free(&r);
}

Test(inventory, avail_get_pickup_searches_stores_in_radius_nearest_first_and_reports_the_best_one)
{
    /* Stores around Berlin; a warehouse right in Berlin that is not a pickup point. */
    harness_put_location(cli, "S-near", "'type':'store','lat':52.53,'lon':13.41,'pickup':true");
    harness_put_location(
        cli, "S-pots",
        harness_json("'type':'store','lat':%g,'lon':%g,'pickup':true", POTSDAM_LAT, POTSDAM_LON));
    harness_put_location(
        cli, "S-ham",
        harness_json("'type':'store','lat':%g,'lon':%g,'pickup':true", HAMBURG_LAT, HAMBURG_LON));
    harness_put_location(cli, "S-shut",
                         "'type':'store','lat':52.52,'lon':13.40,'pickup':true,'active':false");
    harness_put_location(
        cli, "W-ber", harness_json("'type':'warehouse','lat':%g,'lon':%g", BERLIN_LAT, BERLIN_LON));
    harness_set_stock(cli, "A", "S-near", 2);
    harness_set_stock(cli, "A", "S-pots", 5);
    harness_set_stock(cli, "A", "S-ham", 100);
    harness_set_stock(cli, "A", "S-shut", 50);
    harness_set_stock(cli, "A", "W-ber", 70);
    char berlin[64];
    snprintf(berlin, sizeof berlin, "{\"lat\":%g,\"lon\":%g}", BERLIN_LAT, BERLIN_LON);
    allot_reply_t r = {0};
    /* Default radius 50 km: S-near and S-pots; available is the best single store. */
    harness_call_ok(cli, "avail.get",
                    harness_json("{'skus':['A','B'],'method':'pickup','ship_to':%s}", berlin), &r);
    cr_expect_eq(harness_reply_int(&r, "items.0.available"), 5);
    cr_assert_eq(harness_reply_len(&r, "items.0.locations"), 2, "pickup always lists its stores");
    harness_expect_str_at(&r, "items.0.locations.0.id", "S-near");
    harness_expect_str_at(&r, "items.0.locations.1.id", "S-pots");
    cr_expect_eq(harness_reply_int(&r, "items.0.locations.0.available"), 2);
    cr_expect_not_null(harness_reply_at(&r, "items.0.locations.0.distance_km"));
    harness_expect_json_at(&r, "items.1", "{'sku':'B','available':0,'locations':[]}");
    /* A 10 km radius leaves only S-near. */
    harness_call_ok(
        cli, "avail.get",
        harness_json("{'skus':['A'],'method':'pickup','radius_km':10,'ship_to':%s}", berlin), &r);
    cr_expect_eq(harness_reply_int(&r, "items.0.available"), 2);
    cr_expect_eq(harness_reply_len(&r, "items.0.locations"), 1);
    /* 300 km reaches Hamburg. */
    cr_expect_eq(
        harness_avail_of(
            cli,
            harness_json("{'skus':['A'],'method':'pickup','radius_km':300,'ship_to':%s}", berlin)),
        100);
    /* Exactly one store by id. */
    harness_call_ok(cli, "avail.get",
                    harness_json("{'skus':['A'],'method':'pickup','location':'S-ham'}"), &r);
    harness_expect_json_at(&r, "",
                           "{'items':[{'sku':'A','available':100,"
                           "'locations':[{'id':'S-ham','available':100}]}]}");
    /* Pickup needs ship_to or location. */
    harness_call_error(cli, "avail.get", harness_json("{'skus':['A'],'method':'pickup'}"),
                       "INVALID_ARGUMENT", &r);
    allot_reply_free(&r);
}

Test(inventory, avail_get_takes_reservations_into_account)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0,'priority':1");
    harness_put_location(cli, "W2", "'type':'warehouse','lat':0,'lon':0,'priority':0");
    harness_set_stock(cli, "A", "W1", 4);
    harness_set_stock(cli, "A", "W2", 3);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':2}],'location':'W1'}"), &r);
    harness_call_ok(cli, "avail.get", harness_json("{'skus':['A'],'detail':true}"), &r);
    harness_expect_json_at(&r, "",
                           "{'items':[{'sku':'A','available':5,'locations':["
                           "{'id':'W2','available':3},{'id':'W1','available':2}]}]}");
    allot_reply_free(&r);
}

Test(inventory, avail_get_accepts_1000_skus_and_refuses_1001_as_too_large)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "sku-0999", "W1", 3);
    static char params[HARNESS_JSON_BYTES];
    size_t n = (size_t)snprintf(params, sizeof params, "{'skus':[");
    for (int i = 0; i < 1001; i++)
        n += (size_t)snprintf(params + n, sizeof params - n, "%s'sku-%04d'", i ? "," : "", i);
    snprintf(params + n, sizeof params - n, "]}");
    allot_reply_t r = {0};
    harness_call_error(cli, "avail.get", harness_json("%s", params), "TOO_LARGE", &r);
    harness_expect_error_names(&r, "skus");
    /* Drop the last SKU: 1000 is fine. */
    char *last = strrchr(params, ',');
    snprintf(last, sizeof params - (size_t)(last - params), "]}");
    harness_call_ok(cli, "avail.get", harness_json("%s", params), &r);
    cr_assert_eq(harness_reply_len(&r, "items"), 1000);
    harness_expect_json_at(&r, "items.999", "{'sku':'sku-0999','available':3}");
    harness_expect_json_at(&r, "items.0", "{'sku':'sku-0000','available':0}");
    allot_reply_free(&r);
}

Test(inventory, avail_get_rejects_bad_arguments_naming_them)
{
    static const struct {
        const char *params;
        const char *code;
        const char *field;
    } cases[] = {
        {"{'skus':[]}", "INVALID_ARGUMENT", "skus"},
        {"{}", "INVALID_ARGUMENT", "skus"},
        {"{'skus':'A'}", "INVALID_ARGUMENT", "skus"},
        {"{'skus':[7]}", "INVALID_ARGUMENT", "skus"},
        {"{'skus':['']}", "INVALID_ARGUMENT", "skus"},
        {"{'skus':['A'],'method':'drone'}", "INVALID_ARGUMENT", "method"},
        {"{'skus':['A'],'ship_to':{'lat':'52.5','lon':13}}", "INVALID_ARGUMENT", "lat"},
        {"{'skus':['A'],'ship_to':{'lat':52.5}}", "INVALID_ARGUMENT", "lon"},
        {"{'skus':['A'],'ship_to':{'lat':95,'lon':13}}", "INVALID_ARGUMENT", "lat"},
        {"{'skus':['A'],'ship_to':{'lat':52,'lon':13,'alt':3}}", "INVALID_ARGUMENT", "alt"},
        {"{'skus':['A'],'ship_to':[52,13]}", "INVALID_ARGUMENT", "ship_to"},
        {"{'skus':['A'],'detail':'yes'}", "INVALID_ARGUMENT", "detail"},
        {"{'skus':['A'],'radius_km':-5,'method':'pickup','ship_to':{'lat':0,'lon':0}}",
         "INVALID_ARGUMENT", "radius_km"},
        {"{'skus':['A'],'sku':'A'}", "INVALID_ARGUMENT", "sku"},
    };
    allot_reply_t r = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness_call_error(cli, "avail.get", harness_json("%s", cases[i].params), cases[i].code,
                           &r);
        harness_expect_error_names(&r, cases[i].field);
    }
    /* Coordinates may be integers, float32 or float64: ints were used above; float64 here. */
    harness_call_ok(cli, "avail.get",
                    harness_json("{'skus':['A'],'ship_to':{'lat':52.5,'lon':-0.25}}"), &r);
    allot_reply_free(&r);
}

Test(inventory, avail_get_accepts_float32_coordinates)
{
    harness_put_location(cli, "S", "'type':'store','lat':52.53,'lon':13.41,'pickup':true");
    harness_set_stock(cli, "A", "S", 4);
    /* {"skus": ["A"], "method": "pickup", "ship_to": {"lat": 52.5f, "lon": 13.5f}} */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "skus", 4);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str_with_body(&pk, "A", 1);
    msgpack_pack_str_with_body(&pk, "method", 6);
    msgpack_pack_str_with_body(&pk, "pickup", 6);
    msgpack_pack_str_with_body(&pk, "ship_to", 7);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "lat", 3);
    msgpack_pack_float(&pk, 52.5f);
    msgpack_pack_str_with_body(&pk, "lon", 3);
    msgpack_pack_float(&pk, 13.5f);
    allot_reply_t r = {0};
    cr_assert_eq(allot_client_call(cli, "avail.get", sb.data, sb.size, &r), 0);
    cr_assert_not(r.is_error, "%s %s", r.code, r.message);
    cr_expect_eq(harness_reply_int(&r, "items.0.available"), 4);
    double d = harness_reply_num(&r, "items.0.locations.0.distance_km");
    double want = haversine_km(52.5, 13.5, 52.53, 13.41);
    cr_expect(fabs(d - want) < 0.01, "distance %f, want %f", d, want);
    msgpack_sbuffer_destroy(&sb);
    allot_reply_free(&r);
}

Test(inventory, stock_adjust_keys_and_as_of_survive_kill_9)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0,'priority':3");
    allot_reply_t r = {0};
    harness_call_ok(cli, "stock.set",
                    harness_json("{'sku':'A','location':'W1','on_hand':10,"
                                 "'safety_stock':2,'as_of_ms':100}"),
                    &r);
    harness_call_ok(cli, "stock.adjust",
                    harness_json("{'sku':'A','location':'W1','delta':5,'key':'k1'}"), &r);
    harness_server_kill9(srv);
    harness_server_restart(srv);
    allot_client_close(cli);
    cli = harness_connect(srv);
    harness_call_ok(cli, "stock.get", harness_json("{'sku':'A'}"), &r);
    harness_expect_json_at(&r, "",
                           "{'sku':'A','on_hand':15,'reserved':0,'allocated':0,'available':13,"
                           "'positions':[{'location':'W1','on_hand':15,'reserved':0,'allocated':0,"
                           "'safety_stock':2,'available':13}]}");
    harness_call_ok(cli, "stock.adjust",
                    harness_json("{'sku':'A','location':'W1','delta':5,'key':'k1'}"), &r);
    cr_expect_eq(harness_reply_int(&r, "on_hand"), 15);
    harness_call_ok(cli, "stock.set",
                    harness_json("{'sku':'A','location':'W1','on_hand':1,'as_of_ms':99}"), &r);
    cr_expect_not_null(harness_reply_at(&r, "stale"));
    cr_expect_eq(harness_stock_field(cli, "A", "W1", "on_hand"), 15);
    harness_call_ok(cli, "location.get", harness_json("{'id':'W1'}"), &r);
    cr_expect_eq(harness_reply_int(&r, "priority"), 3);
    allot_reply_free(&r);
}
