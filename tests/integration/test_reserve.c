/* test_reserve.c - checkout holds through the real allotd over TCP: sourcing policies, all or
 * nothing, partial holds, idempotency and replace, daily capacity, extend/release, TTL expiry,
 * argument validation, and survival of a clean restart and of kill -9.
 * Only the expiry tests depend on time (ttl_s 1, polled for up to 3 s). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

TestSuite(reserve, .init = up, .fini = down);

static int64_t reserved_total(const char *sku)
{
    return harness_stock_field(cli, sku, NULL, "reserved");
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The worked example of docs/sourcing.md: W1 (priority 1) A 4, B 5; W2 (priority 0) A 3. */
static void worked_example(void)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':52.5,'lon':13.4,'priority':1");
    harness_put_location(cli, "W2", "'type':'warehouse','lat':48.1,'lon':11.6,'priority':0");
    harness_set_stock(cli, "A", "W1", 4);
    harness_set_stock(cli, "B", "W1", 5);
    harness_set_stock(cli, "A", "W2", 3);
}

#define BERLIN "{'lat':52.52,'lon':13.405}"

/* ---- sourcing -------------------------------------------------------------------------------- */

Test(reserve, splits_by_priority_when_no_single_location_suffices)
{
    worked_example();
    allot_reply_t r = {0};
    int64_t before = wall_ms();
    harness_call_ok(
        cli, "reserve",
        harness_json("{'id':'cart-9','lines':[{'sku':'A','qty':5}],'policy':'priority'}"), &r);
    int64_t after = wall_ms();
    harness_expect_str_at(&r, "id", "cart-9");
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':5,'allocations':[{'location':'W2','qty':3},"
                           "{'location':'W1','qty':2}]}]");
    cr_expect_null(harness_reply_at(&r, "shortfalls"));
    int64_t expires = harness_reply_int(&r, "expires_at_ms");
    cr_expect(expires >= before + 900000 - 5 && expires <= after + 900000 + 5,
              "default ttl 900 s: expires_at_ms %lld not in [%lld, %lld]", (long long)expires,
              (long long)before + 900000, (long long)after + 900000);
    cr_expect_eq(harness_stock_field(cli, "A", "W1", "reserved"), 2);
    cr_expect_eq(harness_stock_field(cli, "A", "W2", "reserved"), 3);
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "available"), 2);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 1);
    allot_reply_free(&r);
}

Test(reserve, default_policy_fills_by_priority_when_no_single_location_suffices)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", harness_json("{'id':'c','lines':[{'sku':'A','qty':5}]}"), &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':5,'allocations':[{'location':'W2','qty':3},"
                           "{'location':'W1','qty':2}]}]");
    allot_reply_free(&r);
}

Test(reserve, fewest_splits_prefers_one_location_that_supplies_every_line_over_priority)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(
        cli, "reserve",
        harness_json("{'id':'one-box','lines':[{'sku':'A','qty':2},{'sku':'B','qty':2}]}"), &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':2,'allocations':[{'location':'W1','qty':2}]},"
                           "{'sku':'B','qty':2,'allocations':[{'location':'W1','qty':2}]}]");
    /* The same cart under policy priority takes A from W2: two shipments. */
    harness_call_ok(
        cli, "reserve",
        harness_json("{'id':'two-box','lines':[{'sku':'A','qty':2},{'sku':'B','qty':2}],"
                     "'policy':'priority'}"),
        &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':2,'allocations':[{'location':'W2','qty':2}]},"
                           "{'sku':'B','qty':2,'allocations':[{'location':'W1','qty':2}]}]");
    allot_reply_free(&r);
}

Test(reserve, fewest_splits_reuses_locations_already_chosen_for_the_request)
{
    /* No location has both lines in full, so lines are filled in order: B takes W1 (1) then W3
     * (2); A then prefers W1 (already chosen) over the better-priority W2. */
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0,'priority':1");
    harness_put_location(cli, "W2", "'type':'warehouse','lat':0,'lon':0,'priority':0");
    harness_put_location(cli, "W3", "'type':'warehouse','lat':0,'lon':0,'priority':2");
    harness_set_stock(cli, "A", "W1", 4);
    harness_set_stock(cli, "B", "W1", 1);
    harness_set_stock(cli, "A", "W2", 3);
    harness_set_stock(cli, "B", "W3", 5);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c','lines':[{'sku':'B','qty':3},{'sku':'A','qty':2}]}"),
                    &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'B','qty':3,'allocations':[{'location':'W1','qty':1},"
                           "{'location':'W3','qty':2}]},"
                           "{'sku':'A','qty':2,'allocations':[{'location':'W1','qty':2}]}]");
    allot_reply_free(&r);
}

Test(reserve, fewest_splits_breaks_priority_ties_by_distance_then_id)
{
    harness_put_location(cli, "HAM", "'type':'warehouse','lat':53.55,'lon':9.99,'priority':5");
    harness_put_location(cli, "POT", "'type':'warehouse','lat':52.39,'lon':13.06,'priority':5");
    harness_put_location(cli, "AAA", "'type':'warehouse','lat':53.55,'lon':9.99,'priority':5");
    harness_set_stock(cli, "A", "HAM", 10);
    harness_set_stock(cli, "A", "POT", 10);
    harness_set_stock(cli, "A", "AAA", 10);
    allot_reply_t r = {0};
    /* With ship_to Berlin, Potsdam is nearest. */
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':1}],'ship_to':" BERLIN "}"),
                    &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'POT','qty':1}]");
    /* Without ship_to distances tie: lowest id. */
    harness_call_ok(cli, "reserve", harness_json("{'id':'c2','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'AAA','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, nearest_policy_fills_by_distance_before_priority)
{
    harness_put_location(cli, "HAM", "'type':'warehouse','lat':53.55,'lon':9.99,'priority':0");
    harness_put_location(cli, "POT", "'type':'warehouse','lat':52.39,'lon':13.06,'priority':9");
    harness_set_stock(cli, "A", "HAM", 5);
    harness_set_stock(cli, "A", "POT", 5);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':7}],'policy':'nearest',"
                                 "'ship_to':" BERLIN "}"),
                    &r);
    harness_expect_json_at(&r, "lines.0.allocations",
                           "[{'location':'POT','qty':5},{'location':'HAM','qty':2}]");
    /* The default policy with the same ship_to still goes by priority first. */
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c2','lines':[{'sku':'A','qty':2}],'ship_to':" BERLIN "}"),
                    &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'HAM','qty':2}]");
    allot_reply_free(&r);
}

Test(reserve, highest_stock_policy_fills_from_the_fullest_location_then_by_id)
{
    worked_example();
    harness_put_location(cli, "W0", "'type':'warehouse','lat':0,'lon':0,'priority':0");
    harness_set_stock(cli, "A", "W0", 3);
    allot_reply_t r = {0};
    /* W1 4 first, then W0 and W2 tie at 3: W0 by id. */
    harness_call_ok(
        cli, "reserve",
        harness_json("{'id':'c1','lines':[{'sku':'A','qty':5}],'policy':'highest_stock'}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations",
                           "[{'location':'W1','qty':4},{'location':'W0','qty':1}]");
    /* Now W2 has 3, W0 2, W1 0. */
    harness_call_ok(
        cli, "reserve",
        harness_json("{'id':'c2','lines':[{'sku':'A','qty':4}],'policy':'highest_stock'}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations",
                           "[{'location':'W2','qty':3},{'location':'W0','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, two_lines_of_the_same_sku_share_its_stock)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "A", "W1", 7);
    allot_reply_t r = {0};
    harness_call_error(
        cli, "reserve",
        harness_json("{'id':'c1','lines':[{'sku':'A','qty':4},{'sku':'A','qty':4}]}"),
        "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':4,'available':3}]");
    cr_expect_eq(reserved_total("A"), 0);
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c2','lines':[{'sku':'A','qty':4},{'sku':'A','qty':3}]}"),
                    &r);
    cr_expect_eq(reserved_total("A"), 7);
    allot_reply_free(&r);
}

Test(reserve, pickup_holds_everything_at_the_chosen_store_only)
{
    harness_put_location(cli, "W", "'type':'warehouse','lat':52.5,'lon':13.4,'priority':0");
    harness_put_location(cli, "P",
                         "'type':'store','lat':52.5,'lon':13.4,'priority':50,'pickup':true");
    harness_put_location(cli, "Q",
                         "'type':'store','lat':52.5,'lon':13.4,'priority':50,'pickup':true");
    harness_set_stock(cli, "A", "W", 100);
    harness_set_stock(cli, "A", "P", 5);
    harness_set_stock(cli, "A", "Q", 9);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c0','lines':[{'sku':'A','qty':6}],'method':'pickup',"
                                    "'location':'P'}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':6,'available':5}]");
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':5}],'method':'pickup',"
                                 "'location':'P'}"),
                    &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':5,'allocations':[{'location':'P','qty':5}]}]");
    cr_expect_eq(harness_stock_field(cli, "A", "P", "reserved"), 5);
    cr_expect_eq(harness_stock_field(cli, "A", "W", "reserved"), 0);
    cr_expect_eq(harness_stock_field(cli, "A", "Q", "reserved"), 0);
    cr_expect_eq(
        harness_avail_of(cli, harness_json("{'skus':['A'],'method':'pickup','location':'P'}")), 0);
    allot_reply_free(&r);
}

Test(reserve, pickup_needs_a_location_that_is_a_pickup_store)
{
    harness_put_location(cli, "W", "'type':'warehouse','lat':52.5,'lon':13.4");
    harness_set_stock(cli, "A", "W", 100);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c1','lines':[{'sku':'A','qty':1}],'method':'pickup'}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "location");
    /* W is not a pickup store: refused one way or another, and nothing is held. */
    harness_call_json(cli, "reserve",
                      harness_json("{'id':'c2','lines':[{'sku':'A','qty':1}],'method':'pickup',"
                                   "'location':'W'}"),
                      &r);
    cr_expect(r.is_error, "pickup at a non-pickup location was accepted");
    cr_expect_eq(reserved_total("A"), 0);
    allot_reply_free(&r);
}

Test(reserve, location_restricts_shipping_to_that_location)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':2}],'location':'W1'}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':2}]");
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c2','lines':[{'sku':'A','qty':4}],'location':'W2'}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':4,'available':3}]");
    harness_call_error(
        cli, "reserve",
        harness_json("{'id':'c3','lines':[{'sku':'A','qty':1}],'location':'nowhere'}"), "NOT_FOUND",
        &r);
    harness_expect_error_names(&r, "location");
    cr_expect_eq(reserved_total("A"), 2);
    allot_reply_free(&r);
}

Test(reserve, same_day_uses_only_locations_whose_radius_covers_ship_to)
{
    harness_put_location(cli, "POT",
                         "'type':'store','lat':52.39,'lon':13.06,'priority':5,"
                         "'same_day_radius_km':30");
    harness_put_location(cli, "HAM",
                         "'type':'warehouse','lat':53.55,'lon':9.99,'priority':0,"
                         "'same_day_radius_km':100");
    harness_set_stock(cli, "A", "POT", 2);
    harness_set_stock(cli, "A", "HAM", 50);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c0','lines':[{'sku':'A','qty':3}],'method':'same_day',"
                                    "'ship_to':" BERLIN "}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':3,'available':2}]");
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':2}],'method':'same_day',"
                                 "'ship_to':" BERLIN "}"),
                    &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'POT','qty':2}]");
    harness_call_error(
        cli, "reserve",
        harness_json("{'id':'c2','lines':[{'sku':'A','qty':1}],'method':'same_day'}"),
        "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "ship_to");
    allot_reply_free(&r);
}

/* ---- all or nothing, partial ----------------------------------------------------------------- */

Test(reserve, another_carts_hold_is_not_available_and_a_larger_request_holds_nothing)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'other','lines':[{'sku':'A','qty':2}],'location':'W1'}"),
                    &r);
    harness_call_ok(cli, "avail.get", harness_json("{'skus':['A'],'detail':true}"), &r);
    harness_expect_json_at(&r, "",
                           "{'items':[{'sku':'A','available':5,'locations':["
                           "{'id':'W2','available':3},{'id':'W1','available':2}]}]}");
    harness_call_error(cli, "reserve", harness_json("{'id':'big','lines':[{'sku':'A','qty':6}]}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':6,'available':5}]");
    cr_expect_eq(harness_stock_field(cli, "A", "W1", "reserved"), 2);
    cr_expect_eq(harness_stock_field(cli, "A", "W2", "reserved"), 0);
    harness_call_error(cli, "reservation.get", harness_json("{'id':'big'}"), "NOT_FOUND", &r);
    /* The rest can be held in full. */
    harness_call_ok(cli, "reserve", harness_json("{'id':'rest','lines':[{'sku':'A','qty':5}]}"),
                    &r);
    harness_expect_json_at(&r, "lines.0.allocations",
                           "[{'location':'W2','qty':3},{'location':'W1','qty':2}]");
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "reserved"), 7);
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "available"), 0);
    allot_reply_free(&r);
}

Test(reserve, two_short_lines_fail_together_naming_both_skus_and_hold_nothing)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "A", "W1", 7);
    harness_set_stock(cli, "B", "W1", 1);
    harness_set_stock(cli, "C", "W1", 5);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c1','lines':[{'sku':'A','qty':10},{'sku':'C','qty':1},"
                                    "{'sku':'B','qty':3}]}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls",
                           "[{'sku':'A','requested':10,'available':7},"
                           "{'sku':'B','requested':3,'available':1}]");
    cr_expect_eq(reserved_total("A"), 0);
    cr_expect_eq(reserved_total("B"), 0);
    cr_expect_eq(reserved_total("C"), 0);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 0);
    allot_reply_free(&r);
}

Test(reserve, unknown_sku_cannot_be_held)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "A", "W1", 7);
    allot_reply_t r = {0};
    harness_call_error(
        cli, "reserve",
        harness_json("{'id':'c1','lines':[{'sku':'A','qty':1},{'sku':'ghost','qty':1}]}"),
        "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'ghost','requested':1,'available':0}]");
    cr_expect_eq(reserved_total("A"), 0);
    allot_reply_free(&r);
}

Test(reserve, partial_holds_what_it_can_and_lists_shortfalls)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "A", "W1", 3);
    harness_set_stock(cli, "B", "W1", 1);
    harness_set_stock(cli, "C", "W1", 9);
    allot_reply_t r = {0};
    const char *request = harness_json("{'id':'c1','partial':true,'lines':[{'sku':'A','qty':5},"
                                       "{'sku':'C','qty':2},{'sku':'B','qty':2}]}");
    char request_copy[512];
    snprintf(request_copy, sizeof request_copy, "%s", request);
    harness_call_ok(cli, "reserve", request_copy, &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':3,'allocations':[{'location':'W1','qty':3}]},"
                           "{'sku':'C','qty':2,'allocations':[{'location':'W1','qty':2}]},"
                           "{'sku':'B','qty':1,'allocations':[{'location':'W1','qty':1}]}]");
    harness_expect_json_at(&r, "shortfalls",
                           "[{'sku':'A','requested':5,'available':3},"
                           "{'sku':'B','requested':2,'available':1}]");
    char first[2048], again[2048];
    harness_reply_text(&r, first, sizeof first);
    cr_expect_eq(reserved_total("A"), 3);
    cr_expect_eq(reserved_total("B"), 1);
    cr_expect_eq(reserved_total("C"), 2);
    /* Idempotent, shortfalls included. */
    harness_call_ok(cli, "reserve", request_copy, &r);
    cr_expect_str_eq(harness_reply_text(&r, again, sizeof again), first);
    cr_expect_eq(reserved_total("A"), 3);
    /* reservation.get shows the same shortfalls. */
    harness_call_ok(cli, "reservation.get", harness_json("{'id':'c1'}"), &r);
    cr_expect_not_null(harness_reply_at(&r, "shortfalls"));
    /* Nothing at all left: still INSUFFICIENT_STOCK, even with partial. */
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c2','partial':true,'lines':[{'sku':'A','qty':1},"
                                    "{'sku':'B','qty':1}]}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls",
                           "[{'sku':'A','requested':1,'available':0},"
                           "{'sku':'B','requested':1,'available':0}]");
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 1);
    allot_reply_free(&r);
}

/* ---- idempotency and replace ----------------------------------------------------------------- */

Test(reserve, same_id_and_request_returns_the_same_reply_and_holds_once)
{
    worked_example();
    char request[256];
    snprintf(request, sizeof request, "%s",
             harness_json("{'id':'cart-1','lines':[{'sku':'A','qty':5}],'ttl_s':120}"));
    allot_reply_t r = {0};
    char first[1024], again[1024];
    harness_call_ok(cli, "reserve", request, &r);
    harness_reply_text(&r, first, sizeof first);
    sleep_ms(20); /* a re-computed expires_at_ms would now differ */
    harness_call_ok(cli, "reserve", request, &r);
    cr_expect_str_eq(harness_reply_text(&r, again, sizeof again), first);
    /* Key order in the request does not matter. */
    harness_call_ok(cli, "reserve",
                    harness_json("{'ttl_s':120,'lines':[{'qty':5,'sku':'A'}],'id':'cart-1'}"), &r);
    cr_expect_str_eq(harness_reply_text(&r, again, sizeof again), first);
    /* Pipelined duplicates on a second connection. */
    allot_client_t *other = harness_connect(srv);
    uint32_t ids[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(allot_client_send_json(other, "reserve", request, &ids[i]), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(allot_client_recv(other, &r), 0, "%s", allot_client_last_error(other));
        cr_assert_not(r.is_error, "%s %s", r.code, r.message);
        cr_expect_str_eq(harness_reply_text(&r, again, sizeof again), first);
    }
    allot_client_close(other);
    cr_expect_eq(reserved_total("A"), 5);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 1);
    allot_reply_free(&r);
}

Test(reserve, same_id_with_a_different_request_is_a_conflict)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'cart-1','lines':[{'sku':'A','qty':2}],'ttl_s':120}"), &r);
    static const char *const different[] = {
        "{'id':'cart-1','lines':[{'sku':'A','qty':3}],'ttl_s':120}",
        "{'id':'cart-1','lines':[{'sku':'B','qty':2}],'ttl_s':120}",
        "{'id':'cart-1','lines':[{'sku':'A','qty':2},{'sku':'B','qty':1}],'ttl_s':120}",
        "{'id':'cart-1','lines':[{'sku':'A','qty':2}],'ttl_s':121}",
        "{'id':'cart-1','lines':[{'sku':'A','qty':2}],'ttl_s':120,'policy':'nearest'}",
        "{'id':'cart-1','lines':[{'sku':'A','qty':2}],'ttl_s':120,'location':'W1'}",
        "{'id':'cart-1','lines':[{'sku':'A','qty':2}],'ttl_s':120,'partial':true}",
    };
    for (size_t i = 0; i < sizeof different / sizeof different[0]; i++)
        harness_call_error(cli, "reserve", harness_json("%s", different[i]), "CONFLICT", &r);
    harness_call_ok(cli, "reservation.get", harness_json("{'id':'cart-1'}"), &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':2,'allocations':[{'location':'W2','qty':2}]}]");
    cr_expect_eq(reserved_total("A"), 2);
    cr_expect_eq(reserved_total("B"), 0);
    allot_reply_free(&r);
}

Test(reserve, replace_swaps_the_old_hold_for_the_new_one_atomically)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "A", "W1", 4);
    harness_set_stock(cli, "B", "W1", 5);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", harness_json("{'id':'cart','lines':[{'sku':'A','qty':3}]}"),
                    &r);
    /* Growing to 4 works only if the old hold's 3 count as available. */
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'cart','lines':[{'sku':'A','qty':4}],'replace':true}"), &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':4,'allocations':[{'location':'W1','qty':4}]}]");
    cr_expect_eq(reserved_total("A"), 4);
    /* A replacement that cannot be held leaves the old hold in place. */
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'cart','lines':[{'sku':'A','qty':5}],'replace':true}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':5,'available':4}]");
    harness_call_ok(cli, "reservation.get", harness_json("{'id':'cart'}"), &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':4,'allocations':[{'location':'W1','qty':4}]}]");
    cr_expect_eq(reserved_total("A"), 4);
    /* A changed cart: A gone, B 2. stock.get shows the new hold only. */
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'cart','lines':[{'sku':'B','qty':2}],'replace':true}"), &r);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'B','qty':2,'allocations':[{'location':'W1','qty':2}]}]");
    cr_expect_eq(reserved_total("A"), 0);
    cr_expect_eq(reserved_total("B"), 2);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 1);
    /* replace with the same request is the idempotent case: nothing changes. */
    char first[1024], again[1024];
    harness_reply_text(&r, first, sizeof first);
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'cart','lines':[{'sku':'B','qty':2}],'replace':true}"), &r);
    cr_expect_str_eq(harness_reply_text(&r, again, sizeof again), first);
    /* replace of an id that does not exist simply creates it. */
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'fresh','lines':[{'sku':'B','qty':1}],'replace':true}"),
                    &r);
    cr_expect_eq(reserved_total("B"), 3);
    allot_reply_free(&r);
}

/* ---- daily capacity -------------------------------------------------------------------------- */

/* W2 (first by priority, one shipment a day) and W1, each with 10 of A. */
static void two_warehouses_first_with_capacity_one(void)
{
    harness_put_location(cli, "W2",
                         "'type':'warehouse','lat':0,'lon':0,'priority':0,'daily_capacity':1");
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0,'priority':1");
    harness_set_stock(cli, "A", "W2", 10);
    harness_set_stock(cli, "A", "W1", 10);
}

/* Counts are per UTC day; a run across UTC midnight could see a reset between two reserves. */
Test(reserve, a_location_at_its_daily_capacity_is_skipped_until_a_hold_is_given_back)
{
    two_warehouses_first_with_capacity_one();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", harness_json("{'id':'c1','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':1}]");
    harness_call_ok(cli, "reserve", harness_json("{'id':'c2','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':1}]");
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c3','lines':[{'sku':'A','qty':1}],'location':'W2'}"),
                       "INSUFFICIENT_STOCK", &r);
    /* Releasing c1 on the same day gives the shipment back. */
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'c1'}"), &r);
    harness_call_ok(cli, "reserve", harness_json("{'id':'c4','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, replace_gives_back_daily_capacity_and_counts_survive_a_restart)
{
    two_warehouses_first_with_capacity_one();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", harness_json("{'id':'c1','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':1}]");
    /* The replaced hold's shipment is given back, so W2 is still a candidate. */
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':2}],'replace':true}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':2}]");
    harness_call_ok(cli, "reserve", harness_json("{'id':'c2','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':1}]");
    /* Replay arrives at the same count. */
    harness_server_restart(srv);
    allot_client_close(cli);
    cli = harness_connect(srv);
    harness_call_ok(cli, "reserve", harness_json("{'id':'c3','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':1}]");
    /* An upsert of the location keeps its counter. */
    harness_put_location(cli, "W2",
                         "'type':'warehouse','lat':0,'lon':0,'priority':0,'daily_capacity':1");
    harness_call_ok(cli, "reserve", harness_json("{'id':'c4','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':1}]");
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'c1'}"), &r);
    harness_call_ok(cli, "reserve", harness_json("{'id':'c5','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, a_split_reservation_counts_one_shipment_at_each_location)
{
    harness_put_location(cli, "W2",
                         "'type':'warehouse','lat':0,'lon':0,'priority':0,'daily_capacity':1");
    harness_put_location(cli, "W1",
                         "'type':'warehouse','lat':0,'lon':0,'priority':1,'daily_capacity':1");
    harness_put_location(cli, "W3", "'type':'warehouse','lat':0,'lon':0,'priority':2");
    harness_set_stock(cli, "A", "W2", 2);
    harness_set_stock(cli, "A", "W1", 2);
    harness_set_stock(cli, "A", "W3", 10);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':3}],'policy':'priority'}"),
                    &r);
    harness_expect_json_at(&r, "lines.0.allocations",
                           "[{'location':'W2','qty':2},{'location':'W1','qty':1}]");
    /* W1 still has 1 available but has used its one shipment today. */
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c2','lines':[{'sku':'A','qty':1}],'policy':'priority'}"),
                    &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W3','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, released_and_expired_ids_cannot_be_replaced)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", harness_json("{'id':'c1','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'c1'}"), &r);
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c1','lines':[{'sku':'A','qty':2}],'replace':true}"),
                       "CONFLICT", &r);
    cr_expect_eq(reserved_total("A"), 0);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 0);
    allot_reply_free(&r);
}

Test(reserve, an_inactive_location_is_not_a_candidate_but_its_holds_stay_until_released)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", harness_json("{'id':'c1','lines':[{'sku':'A','qty':3}]}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':3}]");
    harness_put_location(cli, "W1",
                         "'type':'warehouse','lat':52.5,'lon':13.4,'priority':1,'active':false");
    harness_call_error(cli, "reserve", harness_json("{'id':'c2','lines':[{'sku':'A','qty':1}]}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':1,'available':0}]");
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 0);
    /* Deactivating W2, which holds c1, keeps the hold; releasing returns it. */
    harness_put_location(cli, "W2",
                         "'type':'warehouse','lat':48.1,'lon':11.6,'priority':0,'active':false");
    cr_expect_eq(harness_stock_field(cli, "A", "W2", "reserved"), 3);
    harness_call_ok(cli, "reservation.get", harness_json("{'id':'c1'}"), &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':3}]");
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'c1'}"), &r);
    cr_expect_eq(harness_stock_field(cli, "A", "W2", "reserved"), 0);
    allot_reply_free(&r);
}

/* ---- get, extend, release -------------------------------------------------------------------- */

Test(reserve, extend_moves_expiry_from_now_and_may_shorten_it)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':1}],'ttl_s':60}"), &r);
    int64_t before = wall_ms();
    harness_call_ok(cli, "reservation.extend", harness_json("{'id':'c1','ttl_s':600}"), &r);
    int64_t after = wall_ms();
    harness_expect_str_at(&r, "state", "active");
    cr_expect_not_null(harness_reply_at(&r, "created_ms"));
    int64_t expires = harness_reply_int(&r, "expires_at_ms");
    cr_expect(expires >= before + 600000 - 5 && expires <= after + 600000 + 5, "expires_at_ms %lld",
              (long long)expires);
    harness_expect_json_at(&r, "lines",
                           "[{'sku':'A','qty':1,'allocations':[{'location':'W2','qty':1}]}]");
    harness_call_ok(cli, "reservation.extend", harness_json("{'id':'c1','ttl_s':30}"), &r);
    cr_expect_lt(harness_reply_int(&r, "expires_at_ms"), expires);
    int64_t shortened = harness_reply_int(&r, "expires_at_ms");
    harness_call_ok(cli, "reservation.get", harness_json("{'id':'c1'}"), &r);
    cr_expect_eq(harness_reply_int(&r, "expires_at_ms"), shortened);
    harness_call_error(cli, "reservation.extend", harness_json("{'id':'c1','ttl_s':0}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "ttl_s");
    harness_call_error(cli, "reservation.extend", harness_json("{'id':'c1','ttl_s':86401}"),
                       "INVALID_ARGUMENT", &r);
    harness_call_error(cli, "reservation.extend", harness_json("{'id':'c1'}"), "INVALID_ARGUMENT",
                       &r);
    harness_call_error(cli, "reservation.extend", harness_json("{'id':'nope','ttl_s':10}"),
                       "NOT_FOUND", &r);
    harness_call_ok(cli, "reservation.extend", harness_json("{'id':'c1','ttl_s':86400}"), &r);
    allot_reply_free(&r);
}

Test(reserve, release_returns_units_at_once_and_releasing_twice_is_fine)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", harness_json("{'id':'c1','lines':[{'sku':'A','qty':5}]}"), &r);
    int64_t expires = harness_reply_int(&r, "expires_at_ms");
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "available"), 2);
    harness_call_ok(cli, "reservation.get", harness_json("{'id':'c1'}"), &r);
    harness_expect_str_at(&r, "state", "active");
    int64_t created = harness_reply_int(&r, "created_ms");
    cr_expect_null(harness_reply_at(&r, "ended_ms"));
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'c1'}"), &r);
    harness_expect_str_at(&r, "id", "c1");
    harness_expect_str_at(&r, "state", "released");
    harness_expect_json_at(&r, "lines", "[]");
    cr_expect_eq(harness_reply_int(&r, "created_ms"), created);
    cr_expect_eq(harness_reply_int(&r, "expires_at_ms"), expires);
    cr_expect_geq(harness_reply_int(&r, "ended_ms"), created);
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "reserved"), 0);
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "available"), 7);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 0);
    char first[1024], again[1024];
    harness_reply_text(&r, first, sizeof first);
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'c1'}"), &r);
    cr_expect_str_eq(harness_reply_text(&r, again, sizeof again), first);
    harness_call_error(cli, "reservation.get", harness_json("{'id':'c1'}"), "NOT_FOUND", &r);
    cr_expect(strstr(r.message, "released") != NULL, "message: %s", r.message);
    harness_call_error(cli, "reservation.extend", harness_json("{'id':'c1','ttl_s':60}"),
                       "NOT_FOUND", &r);
    /* Ids are not reused. */
    harness_call_error(cli, "reserve", harness_json("{'id':'c1','lines':[{'sku':'A','qty':5}]}"),
                       "CONFLICT", &r);
    cr_expect_eq(harness_stock_field(cli, "A", NULL, "reserved"), 0);
    harness_call_error(cli, "reservation.release", harness_json("{'id':'never'}"), "NOT_FOUND", &r);
    harness_call_error(cli, "reservation.get", harness_json("{'id':'never'}"), "NOT_FOUND", &r);
    allot_reply_free(&r);
}

/* ---- expiry (timing: ttl_s 1, released within about 2 s, polled for up to 3 s) --------------- */

Test(reserve, a_hold_past_its_ttl_is_released_by_the_server_and_then_reads_expired)
{
    worked_example();
    allot_reply_t r = {0};
    int64_t start = wall_ms();
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':7}],'ttl_s':1}"), &r);
    int64_t expires = harness_reply_int(&r, "expires_at_ms");
    cr_expect(expires >= start + 1000 - 5 && expires <= wall_ms() + 1000 + 5);
    /* A long hold next to it must survive. */
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c2','lines':[{'sku':'B','qty':1}],'ttl_s':600}"), &r);
    /* And 300 short holds of C, pipelined, expire in the same window. */
    harness_set_stock(cli, "C", "W1", 1000);
    for (int i = 0; i < 300; i++) {
        uint32_t msgid;
        cr_assert_eq(
            allot_client_send_json(
                cli, "reserve",
                harness_json("{'id':'bulk-%d','lines':[{'sku':'C','qty':2}],'ttl_s':1}", i),
                &msgid),
            0);
    }
    for (int i = 0; i < 300; i++) {
        cr_assert_eq(allot_client_recv(cli, &r), 0, "%s", allot_client_last_error(cli));
        cr_assert_not(r.is_error, "%s %s", r.code, r.message);
    }
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 0);
    int64_t released_at = -1;
    while (wall_ms() - start < 3000) {
        if (reserved_total("A") == 0 && reserved_total("C") == 0) {
            released_at = wall_ms();
            break;
        }
        sleep_ms(50);
    }
    cr_assert_geq(released_at, 0, "the hold was not released within 3 s");
    cr_expect_geq(released_at, expires, "released before it expired");
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 7);
    harness_call_error(cli, "reservation.get", harness_json("{'id':'c1'}"), "EXPIRED", &r);
    harness_call_error(cli, "reservation.extend", harness_json("{'id':'c1','ttl_s':60}"), "EXPIRED",
                       &r);
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c1','lines':[{'sku':'A','qty':7}],'ttl_s':1}"),
                       "EXPIRED", &r);
    /* Releasing an expired hold is a success that says so. */
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'c1'}"), &r);
    harness_expect_str_at(&r, "state", "expired");
    harness_expect_json_at(&r, "lines", "[]");
    harness_call_error(cli, "reservation.get", harness_json("{'id':'bulk-299'}"), "EXPIRED", &r);
    cr_expect_eq(reserved_total("A"), 0);
    cr_expect_eq(reserved_total("B"), 1);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 1);
    allot_reply_free(&r);
}

/* ---- argument validation --------------------------------------------------------------------- */

Test(reserve, bad_quantities_ids_and_fields_are_invalid_arguments_naming_the_field)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "A", "W1", 10);
    static char long_id[130];
    memset(long_id, 'x', 129);
    static const struct {
        const char *params;
        const char *field;
    } cases[] = {
        {"{'id':'c','lines':[{'sku':'A','qty':0}]}", "qty"},
        {"{'id':'c','lines':[{'sku':'A','qty':-1}]}", "qty"},
        {"{'id':'c','lines':[{'sku':'A','qty':2199023255552}]}", "qty"},
        {"{'id':'c','lines':[{'sku':'A','qty':'1'}]}", "qty"},
        {"{'id':'c','lines':[{'sku':'A','qty':1.0}]}", "qty"},
        {"{'id':'c','lines':[{'sku':'A'}]}", "qty"},
        {"{'id':'c','lines':[{'qty':1}]}", "sku"},
        {"{'id':'c','lines':[{'sku':'','qty':1}]}", "sku"},
        {"{'id':'c','lines':[{'sku':'A','qty':1,'colour':'red'}]}", "colour"},
        {"{'id':'c','lines':[['A',1]]}", "lines"},
        {"{'id':'c','lines':[]}", "lines"},
        {"{'id':'c','lines':{'sku':'A','qty':1}}", "lines"},
        {"{'id':'c'}", "lines"},
        {"{'lines':[{'sku':'A','qty':1}]}", "id"},
        {"{'id':'','lines':[{'sku':'A','qty':1}]}", "id"},
        {"{'id':7,'lines':[{'sku':'A','qty':1}]}", "id"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'ttl_s':0}", "ttl_s"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'ttl_s':86401}", "ttl_s"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'policy':'cheapest'}", "policy"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'method':'drone'}", "method"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'partial':'yes'}", "partial"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'replace':1}", "replace"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'ship_to':{'lat':'52.5','lon':13}}", "lat"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'ship_to':{'lat':52.5,'lon':200}}", "lon"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'ship_to':{'lat':52,'lon':13,'zip':1}}", "zip"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'shopper':'bob'}", "shopper"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'customer':''}", "customer"},
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'token':7}", "token"},
    };
    allot_reply_t r = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness_call_error(cli, "reserve", harness_json("%s", cases[i].params), "INVALID_ARGUMENT",
                           &r);
        harness_expect_error_names(&r, cases[i].field);
    }
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'%s','lines':[{'sku':'A','qty':1}]}", long_id),
                       "INVALID_ARGUMENT", &r);
    harness_expect_error_names(&r, "id");
    cr_expect_eq(reserved_total("A"), 0, "a refused request held something");
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 0);
    /* The boundaries that are accepted: a 128-byte id, qty 2^40 (valid but not in stock),
     * ttl_s 1 and 86400, a UTF-8 id. */
    long_id[128] = '\0';
    harness_call_ok(
        cli, "reserve",
        harness_json("{'id':'%s','lines':[{'sku':'A','qty':1}],'ttl_s':86400}", long_id), &r);
    harness_expect_str_at(&r, "id", long_id);
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'c','lines':[{'sku':'A','qty':1099511627776}]}"),
                       "INSUFFICIENT_STOCK", &r);
    harness_expect_json_at(&r, "shortfalls",
                           "[{'sku':'A','requested':1099511627776,'available':9}]");
    harness_call_ok(
        cli, "reserve",
        harness_json("{'id':'Warenkorb-\xc3\xbc','lines':[{'sku':'A','qty':1}],'ttl_s':60}"), &r);
    harness_expect_str_at(&r, "id", "Warenkorb-\xc3\xbc");
    cr_expect_eq(reserved_total("A"), 2);
    allot_reply_free(&r);
}

Test(reserve, one_hundred_lines_are_accepted_and_one_hundred_and_one_are_too_large)
{
    harness_put_location(cli, "W1", "'type':'warehouse','lat':0,'lon':0");
    harness_set_stock(cli, "A", "W1", 1000);
    static char params[8192];
    size_t n = (size_t)snprintf(params, sizeof params, "{'id':'big','lines':[");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(params + n, sizeof params - n, "%s{'sku':'A','qty':1}", i ? "," : "");
    snprintf(params + n, sizeof params - n, "]}");
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve", harness_json("%s", params), "TOO_LARGE", &r);
    harness_expect_error_names(&r, "lines");
    cr_expect_eq(reserved_total("A"), 0);
    /* Drop the last line: cut at the last ",{". */
    char *last = NULL;
    for (char *p = strstr(params, ",{"); p != NULL; p = strstr(p + 1, ",{"))
        last = p;
    cr_assert_not_null(last);
    snprintf(last, sizeof params - (size_t)(last - params), "]}");
    harness_call_ok(cli, "reserve", harness_json("%s", params), &r);
    const msgpack_object *lines = harness_reply_at(&r, "lines");
    cr_assert_not_null(lines);
    cr_expect_eq(lines->via.array.size, 100);
    cr_expect_eq(reserved_total("A"), 100);
    allot_reply_free(&r);
}

/* ---- restarts -------------------------------------------------------------------------------- */

typedef struct snapshot {
    char held[2048];    /* reservation.get held */
    char stock_a[2048]; /* stock.get A */
    char stock_b[2048]; /* stock.get B */
    char repeat[2048];  /* the reply to repeating held's reserve */
} snapshot_t;

#define HELD_REQUEST "{'id':'held','lines':[{'sku':'A','qty':5},{'sku':'B','qty':1}]}"

static void take_snapshot(snapshot_t *s)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "reservation.get", harness_json("{'id':'held'}"), &r);
    harness_reply_text(&r, s->held, sizeof s->held);
    harness_call_ok(cli, "stock.get", harness_json("{'sku':'A'}"), &r);
    harness_reply_text(&r, s->stock_a, sizeof s->stock_a);
    harness_call_ok(cli, "stock.get", harness_json("{'sku':'B'}"), &r);
    harness_reply_text(&r, s->stock_b, sizeof s->stock_b);
    harness_call_ok(cli, "reserve", harness_json(HELD_REQUEST), &r);
    harness_reply_text(&r, s->repeat, sizeof s->repeat);
    allot_reply_free(&r);
}

/* held (split over W2 and W1), gone (released) and short (partial). */
static void make_holds(snapshot_t *before)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", harness_json(HELD_REQUEST), &r);
    harness_call_ok(cli, "reserve", harness_json("{'id':'gone','lines':[{'sku':'B','qty':1}]}"),
                    &r);
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'gone'}"), &r);
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'short','lines':[{'sku':'B','qty':9}],'partial':true}"),
                    &r);
    harness_call_ok(cli, "reservation.extend", harness_json("{'id':'held','ttl_s':3600}"), &r);
    allot_reply_free(&r);
    take_snapshot(before);
    cr_expect_eq(reserved_total("A"), 5);
    cr_expect_eq(reserved_total("B"), 5);
}

static void check_holds_after_restart(const snapshot_t *before)
{
    allot_client_close(cli);
    cli = harness_connect(srv);
    snapshot_t after;
    take_snapshot(&after);
    cr_expect_str_eq(after.held, before->held);
    cr_expect_str_eq(after.stock_a, before->stock_a);
    cr_expect_str_eq(after.stock_b, before->stock_b);
    cr_expect_str_eq(after.repeat, before->repeat);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reservation.get", harness_json("{'id':'short'}"), &r);
    harness_expect_json_at(&r, "shortfalls", "[{'sku':'B','requested':9,'available':4}]");
    harness_call_error(cli, "reservation.get", harness_json("{'id':'gone'}"), "NOT_FOUND", &r);
    harness_call_error(cli, "reserve", harness_json("{'id':'gone','lines':[{'sku':'B','qty':1}]}"),
                       "CONFLICT", &r);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 2);
    /* Still live: releasing gives the units back. */
    harness_call_ok(cli, "reservation.release", harness_json("{'id':'held'}"), &r);
    cr_expect_eq(reserved_total("A"), 0);
    cr_expect_eq(reserved_total("B"), 4);
    allot_reply_free(&r);
}

Test(reserve, holds_survive_a_clean_restart)
{
    snapshot_t before;
    make_holds(&before);
    harness_server_restart(srv);
    check_holds_after_restart(&before);
}

Test(reserve, acknowledged_holds_survive_kill_9)
{
    snapshot_t before;
    make_holds(&before);
    cr_expect_eq(harness_server_kill9(srv), 137);
    harness_server_restart(srv);
    check_holds_after_restart(&before);
}

/* Timing: ttl_s 1, and the server is down for longer than that. */
Test(reserve, a_hold_that_expired_while_the_server_was_down_is_released_after_restart)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c1','lines':[{'sku':'A','qty':7}],'ttl_s':1}"), &r);
    int64_t expires = harness_reply_int(&r, "expires_at_ms");
    harness_call_ok(cli, "reserve",
                    harness_json("{'id':'c2','lines':[{'sku':'B','qty':2}],'ttl_s':600}"), &r);
    allot_reply_free(&r);
    harness_server_kill9(srv);
    while (wall_ms() <= expires + 50)
        sleep_ms(50);
    harness_server_restart(srv);
    allot_client_close(cli);
    cli = harness_connect(srv);
    int64_t deadline = wall_ms() + 3000;
    while (reserved_total("A") != 0 && wall_ms() < deadline)
        sleep_ms(50);
    cr_expect_eq(reserved_total("A"), 0);
    harness_call_error(cli, "reservation.get", harness_json("{'id':'c1'}"), "EXPIRED", &r);
    cr_expect_eq(reserved_total("B"), 2);
    cr_expect_eq(harness_avail_of(cli, harness_json("{'skus':['A']}")), 7);
    allot_reply_free(&r);
}

/* ---- the reply's bytes ----------------------------------------------------------------------- */

/* The keys of the map at path, in the order they came, are `keys` (comma-separated). */
static void expect_keys_in_order(const allot_reply_t *r, const char *path, const char *keys)
{
    const msgpack_object *o = harness_reply_at(r, path);
    cr_assert(o != NULL && o->type == MSGPACK_OBJECT_MAP, "%s is a map", path);
    char seen[256] = "";
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        cr_assert_eq(k->type, MSGPACK_OBJECT_STR);
        snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s%.*s", i ? "," : "",
                 (int)k->via.str.size, k->via.str.ptr);
    }
    cr_expect_str_eq(seen, keys, "keys of %s", path);
}

/* The reply's frame is byte for byte what msgpack-c packs for the object it decodes to (each
 * header and integer in its shortest form), with the keys in the documented order. */
static void expect_reserve_reply_bytes(const char *params, uint32_t lines, uint32_t allocations)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", harness_json("%s", params), &r);
    msgpack_sbuffer packed;
    msgpack_sbuffer_init(&packed);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &packed, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, r.unpacked_private.data); /* the whole frame the client decoded */
    cr_expect(memcmp(packed.data, r.bytes_private, packed.size) == 0,
              "%s: the reply is not msgpack-c's bytes", params);
    msgpack_sbuffer_destroy(&packed);
    bool shortfalls = harness_reply_at(&r, "shortfalls") != NULL;
    expect_keys_in_order(
        &r, "", shortfalls ? "id,expires_at_ms,lines,shortfalls" : "id,expires_at_ms,lines");
    cr_expect_eq(harness_reply_len(&r, "lines"), lines);
    uint32_t seen = 0;
    for (uint32_t i = 0; i < lines; i++) {
        char path[64];
        snprintf(path, sizeof(path), "lines.%u", i);
        expect_keys_in_order(&r, path, "sku,qty,allocations");
        snprintf(path, sizeof(path), "lines.%u.allocations", i);
        uint32_t n = (uint32_t)harness_reply_len(&r, path);
        for (uint32_t k = 0; k < n; k++, seen++) {
            snprintf(path, sizeof(path), "lines.%u.allocations.%u", i, k);
            expect_keys_in_order(&r, path, "location,qty");
        }
    }
    cr_expect_eq(seen, allocations, "%s: allocations", params);
    allot_reply_free(&r);
}

Test(reserve, replies_are_msgpack_cs_bytes_for_short_and_long_ids_large_counts_and_many_lines)
{
    /* a reserve's reply is written in one piece from pre-encoded keys: check its bytes at each
     * size class of string (under 32 bytes, 32 to 255), integer (under 128, 8, 16 and 32 bits)
     * and array (under 16 items, 16 or more), and the replies still packed piece by piece */
    harness_put_location(cli, "W1", "'type':'warehouse','lat':52.5,'lon':13.4,'priority':1");
    harness_put_location(cli, "W-a-location-id-of-forty-bytes-exactly-x",
                         "'type':'warehouse','lat':48.1,'lon':11.6,'priority':0");
    harness_set_stock(cli, "A", "W1", 100000);
    harness_set_stock(cli, "A", "W-a-location-id-of-forty-bytes-exactly-x", 70);
    harness_set_stock(cli, "S-a-sku-id-of-thirty-two-bytes-x", "W1", 300);
    expect_reserve_reply_bytes("{'id':'c1','lines':[{'sku':'A','qty':1}]}", 1, 1);
    expect_reserve_reply_bytes("{'id':'c1','lines':[{'sku':'A','qty':1}]}", 1, 1); /* replay */
    expect_reserve_reply_bytes("{'id':'c-an-id-of-thirty-one-bytes-x','lines':[{'sku':'A','qty':"
                               "127},{'sku':'S-a-sku-id-of-thirty-two-bytes-x','qty':128}]}",
                               2, 2);
    char long_id[129];
    memset(long_id, 'x', 128);
    long_id[128] = '\0';
    expect_reserve_reply_bytes(
        harness_json("{'id':'%s','lines':[{'sku':'A','qty':256},{'sku':'A','qty':65536}]}",
                     long_id),
        2, 2);
    harness_set_stock(cli, "B", "W1", 3);
    harness_set_stock(cli, "B", "W-a-location-id-of-forty-bytes-exactly-x", 3);
    expect_reserve_reply_bytes("{'id':'c-split','lines':[{'sku':'B','qty':5},{'sku':'A','qty':1}]}",
                               2, 3);
    char many[2048] = "{'id':'c-seventeen-lines','lines':[";
    for (int i = 0; i < 17; i++)
        strcat(many, i ? ",{'sku':'A','qty':1}" : "{'sku':'A','qty':1}");
    strcat(many, "]}");
    expect_reserve_reply_bytes(many, 17, 17);
    expect_reserve_reply_bytes("{'id':'c-partial','lines':[{'sku':'S-a-sku-id-of-thirty-two-bytes-"
                               "x','qty':400}],'partial':true}",
                               1, 1); /* with shortfalls: packed piece by piece */
}
