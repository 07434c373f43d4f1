/* test_reserve.c - checkout holds through the real allotd over TCP: sourcing policies, all or
 * nothing, partial holds, idempotency and replace, daily capacity, extend/release, TTL expiry,
 * argument validation, and survival of a clean restart and of kill -9.
 * Only the expiry tests depend on time (ttl_s 1, polled for up to 3 s). */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static harness_server_t *srv;
static allot_client_t *cli;

static void up(void)
{
    srv = harness_server_start(NULL);
    cli = harness_connect(srv);
}

static void down(void)
{
    allot_client_close(cli);
    cli = NULL;
    if (srv != NULL && srv->pid != 0)
        harness_server_stop(srv); /* asserts a clean exit: no crash, no sanitizer report */
    harness_server_destroy(srv);
    srv = NULL;
}

TestSuite(reserve, .init = up, .fini = down);

#define JS_BYTES 65536

/* printf into a rotating buffer, then ' -> " so that JSON needs no escapes in C strings. */
static const char *js(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *js(const char *fmt, ...)
{
    static char buffers[4][JS_BYTES];
    static unsigned next;
    char *b = buffers[next++ % 4];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, JS_BYTES, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && n < JS_BYTES, "js: text too long");
    for (char *p = b; *p != '\0'; p++)
        if (*p == '\'')
            *p = '"';
    return b;
}

/* The object at a dotted path ("lines.0.allocations.1.qty") of the result (or of the error
 * map for an error reply); NULL when absent. "" is the whole result. */
static const msgpack_object *at(const allot_reply_t *r, const char *path)
{
    const msgpack_object *o = r->is_error ? &r->error : &r->result;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *seg = strtok_r(buf, ".", &save); seg != NULL; seg = strtok_r(NULL, ".", &save)) {
        if (o == NULL)
            return NULL;
        if (isdigit((unsigned char)seg[0])) {
            unsigned long i = strtoul(seg, NULL, 10);
            if (o->type != MSGPACK_OBJECT_ARRAY || i >= o->via.array.size)
                return NULL;
            o = &o->via.array.ptr[i];
        } else {
            o = allot_object_map_get(o, seg);
        }
    }
    return o;
}

static int64_t int_at(const allot_reply_t *r, const char *path)
{
    const msgpack_object *o = at(r, path);
    cr_assert_not_null(o, "no %s in reply", path);
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    cr_assert_eq(o->type, MSGPACK_OBJECT_NEGATIVE_INTEGER, "%s is not an integer", path);
    return o->via.i64;
}

static char *json_of(const msgpack_object *o)
{
    allot_reply_t fake = {.result = *o};
    return harness_reply_json(&fake);
}

/* The JSON rendering of the value at path equals expected (written with ' for "). */
static void expect_json_at(const allot_reply_t *r, const char *path, const char *expected)
{
    const msgpack_object *o = at(r, path);
    cr_assert_not_null(o, "no %s in reply", path);
    char *got = json_of(o);
    const char *want = js("%s", expected);
    cr_expect_str_eq(got, want, "%s:\n  got  %s\n  want %s", path, got, want);
    free(got);
}

static void expect_str_at(const allot_reply_t *r, const char *path, const char *expected)
{
    const msgpack_object *o = at(r, path);
    cr_assert_not_null(o, "no %s in reply", path);
    cr_expect(allot_object_str_equal(o, expected), "%s is not \"%s\"", path, expected);
}

/* An error whose "field" is `name` or whose message mentions it. */
static void expect_error_names(const allot_reply_t *r, const char *name)
{
    const msgpack_object *field = at(r, "field");
    bool named = strstr(r->message, name) != NULL;
    if (field != NULL && field->type == MSGPACK_OBJECT_STR)
        named = named || (field->via.str.size == strlen(name) &&
                          memcmp(field->via.str.ptr, name, field->via.str.size) == 0);
    cr_expect(named, "error does not name '%s': %s", name, r->message);
}

/* The whole reply (result or error) as JSON in buf. */
static const char *reply_text(const allot_reply_t *r, char *buf, size_t bytes)
{
    char *text = harness_reply_json(r);
    snprintf(buf, bytes, "%s", text);
    free(text);
    return buf;
}

static void put_location(const char *id, const char *rest)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "location.put", js("{'id':'%s',%s}", id, rest), &r);
    allot_reply_free(&r);
}

static void set_stock(const char *sku, const char *location, int64_t on_hand)
{
    allot_reply_t r = {0};
    harness_call_ok(
        cli, "stock.set",
        js("{'sku':'%s','location':'%s','on_hand':%lld}", sku, location, (long long)on_hand), &r);
    allot_reply_free(&r);
}

/* A field of the SKU's stock.get: the total when location is NULL, else of that position
 * (-1 when there is no such position). */
static int64_t stock_field(const char *sku, const char *location, const char *field)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "stock.get", js("{'sku':'%s'}", sku), &r);
    int64_t value = -1;
    if (location == NULL) {
        value = int_at(&r, field);
    } else {
        const msgpack_object *positions = at(&r, "positions");
        cr_assert_not_null(positions);
        for (uint32_t i = 0; i < positions->via.array.size; i++) {
            char path[64];
            snprintf(path, sizeof path, "positions.%u.location", i);
            if (allot_object_str_equal(at(&r, path), location)) {
                snprintf(path, sizeof path, "positions.%u.%s", i, field);
                value = int_at(&r, path);
            }
        }
    }
    allot_reply_free(&r);
    return value;
}

static int64_t reserved_total(const char *sku)
{
    return stock_field(sku, NULL, "reserved");
}

static int64_t avail_of(const char *params_json)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "avail.get", params_json, &r);
    int64_t v = int_at(&r, "items.0.available");
    allot_reply_free(&r);
    return v;
}

static int64_t server_reservations(void)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "server.info", "{}", &r);
    int64_t n = int_at(&r, "reservations");
    allot_reply_free(&r);
    return n;
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
    put_location("W1", "'type':'warehouse','lat':52.5,'lon':13.4,'priority':1");
    put_location("W2", "'type':'warehouse','lat':48.1,'lon':11.6,'priority':0");
    set_stock("A", "W1", 4);
    set_stock("B", "W1", 5);
    set_stock("A", "W2", 3);
}

#define BERLIN "{'lat':52.52,'lon':13.405}"

/* ---- sourcing -------------------------------------------------------------------------------- */

Test(reserve, splits_by_priority_when_no_single_location_suffices)
{
    worked_example();
    allot_reply_t r = {0};
    int64_t before = wall_ms();
    harness_call_ok(cli, "reserve",
                    js("{'id':'cart-9','lines':[{'sku':'A','qty':5}],'policy':'priority'}"), &r);
    int64_t after = wall_ms();
    expect_str_at(&r, "id", "cart-9");
    expect_json_at(&r, "lines",
                   "[{'sku':'A','qty':5,'allocations':[{'location':'W2','qty':3},"
                   "{'location':'W1','qty':2}]}]");
    cr_expect_null(at(&r, "shortfalls"));
    int64_t expires = int_at(&r, "expires_at_ms");
    cr_expect(expires >= before + 900000 - 5 && expires <= after + 900000 + 5,
              "default ttl 900 s: expires_at_ms %lld not in [%lld, %lld]", (long long)expires,
              (long long)before + 900000, (long long)after + 900000);
    cr_expect_eq(stock_field("A", "W1", "reserved"), 2);
    cr_expect_eq(stock_field("A", "W2", "reserved"), 3);
    cr_expect_eq(stock_field("A", NULL, "available"), 2);
    cr_expect_eq(server_reservations(), 1);
    allot_reply_free(&r);
}

Test(reserve, default_policy_fills_by_priority_when_no_single_location_suffices)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js("{'id':'c','lines':[{'sku':'A','qty':5}]}"), &r);
    expect_json_at(&r, "lines",
                   "[{'sku':'A','qty':5,'allocations':[{'location':'W2','qty':3},"
                   "{'location':'W1','qty':2}]}]");
    allot_reply_free(&r);
}

Test(reserve, fewest_splits_prefers_one_location_that_supplies_every_line_over_priority)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    js("{'id':'one-box','lines':[{'sku':'A','qty':2},{'sku':'B','qty':2}]}"), &r);
    expect_json_at(&r, "lines",
                   "[{'sku':'A','qty':2,'allocations':[{'location':'W1','qty':2}]},"
                   "{'sku':'B','qty':2,'allocations':[{'location':'W1','qty':2}]}]");
    /* The same cart under policy priority takes A from W2: two shipments. */
    harness_call_ok(cli, "reserve",
                    js("{'id':'two-box','lines':[{'sku':'A','qty':2},{'sku':'B','qty':2}],"
                       "'policy':'priority'}"),
                    &r);
    expect_json_at(&r, "lines",
                   "[{'sku':'A','qty':2,'allocations':[{'location':'W2','qty':2}]},"
                   "{'sku':'B','qty':2,'allocations':[{'location':'W1','qty':2}]}]");
    allot_reply_free(&r);
}

Test(reserve, fewest_splits_reuses_locations_already_chosen_for_the_request)
{
    /* No location has both lines in full, so lines are filled in order: B takes W1 (1) then W3
     * (2); A then prefers W1 (already chosen) over the better-priority W2. */
    put_location("W1", "'type':'warehouse','lat':0,'lon':0,'priority':1");
    put_location("W2", "'type':'warehouse','lat':0,'lon':0,'priority':0");
    put_location("W3", "'type':'warehouse','lat':0,'lon':0,'priority':2");
    set_stock("A", "W1", 4);
    set_stock("B", "W1", 1);
    set_stock("A", "W2", 3);
    set_stock("B", "W3", 5);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    js("{'id':'c','lines':[{'sku':'B','qty':3},{'sku':'A','qty':2}]}"), &r);
    expect_json_at(&r, "lines",
                   "[{'sku':'B','qty':3,'allocations':[{'location':'W1','qty':1},"
                   "{'location':'W3','qty':2}]},"
                   "{'sku':'A','qty':2,'allocations':[{'location':'W1','qty':2}]}]");
    allot_reply_free(&r);
}

Test(reserve, fewest_splits_breaks_priority_ties_by_distance_then_id)
{
    put_location("HAM", "'type':'warehouse','lat':53.55,'lon':9.99,'priority':5");
    put_location("POT", "'type':'warehouse','lat':52.39,'lon':13.06,'priority':5");
    put_location("AAA", "'type':'warehouse','lat':53.55,'lon':9.99,'priority':5");
    set_stock("A", "HAM", 10);
    set_stock("A", "POT", 10);
    set_stock("A", "AAA", 10);
    allot_reply_t r = {0};
    /* With ship_to Berlin, Potsdam is nearest. */
    harness_call_ok(cli, "reserve",
                    js("{'id':'c1','lines':[{'sku':'A','qty':1}],'ship_to':" BERLIN "}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'POT','qty':1}]");
    /* Without ship_to distances tie: lowest id. */
    harness_call_ok(cli, "reserve", js("{'id':'c2','lines':[{'sku':'A','qty':1}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'AAA','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, nearest_policy_fills_by_distance_before_priority)
{
    put_location("HAM", "'type':'warehouse','lat':53.55,'lon':9.99,'priority':0");
    put_location("POT", "'type':'warehouse','lat':52.39,'lon':13.06,'priority':9");
    set_stock("A", "HAM", 5);
    set_stock("A", "POT", 5);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    js("{'id':'c1','lines':[{'sku':'A','qty':7}],'policy':'nearest',"
                       "'ship_to':" BERLIN "}"),
                    &r);
    expect_json_at(&r, "lines.0.allocations",
                   "[{'location':'POT','qty':5},{'location':'HAM','qty':2}]");
    /* The default policy with the same ship_to still goes by priority first. */
    harness_call_ok(cli, "reserve",
                    js("{'id':'c2','lines':[{'sku':'A','qty':2}],'ship_to':" BERLIN "}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'HAM','qty':2}]");
    allot_reply_free(&r);
}

Test(reserve, highest_stock_policy_fills_from_the_fullest_location_then_by_id)
{
    worked_example();
    put_location("W0", "'type':'warehouse','lat':0,'lon':0,'priority':0");
    set_stock("A", "W0", 3);
    allot_reply_t r = {0};
    /* W1 4 first, then W0 and W2 tie at 3: W0 by id. */
    harness_call_ok(cli, "reserve",
                    js("{'id':'c1','lines':[{'sku':'A','qty':5}],'policy':'highest_stock'}"), &r);
    expect_json_at(&r, "lines.0.allocations",
                   "[{'location':'W1','qty':4},{'location':'W0','qty':1}]");
    /* Now W2 has 3, W0 2, W1 0. */
    harness_call_ok(cli, "reserve",
                    js("{'id':'c2','lines':[{'sku':'A','qty':4}],'policy':'highest_stock'}"), &r);
    expect_json_at(&r, "lines.0.allocations",
                   "[{'location':'W2','qty':3},{'location':'W0','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, two_lines_of_the_same_sku_share_its_stock)
{
    put_location("W1", "'type':'warehouse','lat':0,'lon':0");
    set_stock("A", "W1", 7);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       js("{'id':'c1','lines':[{'sku':'A','qty':4},{'sku':'A','qty':4}]}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':4,'available':3}]");
    cr_expect_eq(reserved_total("A"), 0);
    harness_call_ok(cli, "reserve",
                    js("{'id':'c2','lines':[{'sku':'A','qty':4},{'sku':'A','qty':3}]}"), &r);
    cr_expect_eq(reserved_total("A"), 7);
    allot_reply_free(&r);
}

Test(reserve, pickup_holds_everything_at_the_chosen_store_only)
{
    put_location("W", "'type':'warehouse','lat':52.5,'lon':13.4,'priority':0");
    put_location("P", "'type':'store','lat':52.5,'lon':13.4,'priority':50,'pickup':true");
    put_location("Q", "'type':'store','lat':52.5,'lon':13.4,'priority':50,'pickup':true");
    set_stock("A", "W", 100);
    set_stock("A", "P", 5);
    set_stock("A", "Q", 9);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       js("{'id':'c0','lines':[{'sku':'A','qty':6}],'method':'pickup',"
                          "'location':'P'}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':6,'available':5}]");
    harness_call_ok(cli, "reserve",
                    js("{'id':'c1','lines':[{'sku':'A','qty':5}],'method':'pickup',"
                       "'location':'P'}"),
                    &r);
    expect_json_at(&r, "lines", "[{'sku':'A','qty':5,'allocations':[{'location':'P','qty':5}]}]");
    cr_expect_eq(stock_field("A", "P", "reserved"), 5);
    cr_expect_eq(stock_field("A", "W", "reserved"), 0);
    cr_expect_eq(stock_field("A", "Q", "reserved"), 0);
    cr_expect_eq(avail_of(js("{'skus':['A'],'method':'pickup','location':'P'}")), 0);
    allot_reply_free(&r);
}

Test(reserve, pickup_needs_a_location_that_is_a_pickup_store)
{
    put_location("W", "'type':'warehouse','lat':52.5,'lon':13.4");
    set_stock("A", "W", 100);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       js("{'id':'c1','lines':[{'sku':'A','qty':1}],'method':'pickup'}"),
                       "INVALID_ARGUMENT", &r);
    expect_error_names(&r, "location");
    /* W is not a pickup store: refused one way or another, and nothing is held. */
    harness_call_json(cli, "reserve",
                      js("{'id':'c2','lines':[{'sku':'A','qty':1}],'method':'pickup',"
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
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':2}],'location':'W1'}"),
                    &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':2}]");
    harness_call_error(cli, "reserve",
                       js("{'id':'c2','lines':[{'sku':'A','qty':4}],'location':'W2'}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':4,'available':3}]");
    harness_call_error(cli, "reserve",
                       js("{'id':'c3','lines':[{'sku':'A','qty':1}],'location':'nowhere'}"),
                       "NOT_FOUND", &r);
    expect_error_names(&r, "location");
    cr_expect_eq(reserved_total("A"), 2);
    allot_reply_free(&r);
}

Test(reserve, same_day_uses_only_locations_whose_radius_covers_ship_to)
{
    put_location("POT", "'type':'store','lat':52.39,'lon':13.06,'priority':5,"
                        "'same_day_radius_km':30");
    put_location("HAM", "'type':'warehouse','lat':53.55,'lon':9.99,'priority':0,"
                        "'same_day_radius_km':100");
    set_stock("A", "POT", 2);
    set_stock("A", "HAM", 50);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       js("{'id':'c0','lines':[{'sku':'A','qty':3}],'method':'same_day',"
                          "'ship_to':" BERLIN "}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':3,'available':2}]");
    harness_call_ok(cli, "reserve",
                    js("{'id':'c1','lines':[{'sku':'A','qty':2}],'method':'same_day',"
                       "'ship_to':" BERLIN "}"),
                    &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'POT','qty':2}]");
    harness_call_error(cli, "reserve",
                       js("{'id':'c2','lines':[{'sku':'A','qty':1}],'method':'same_day'}"),
                       "INVALID_ARGUMENT", &r);
    expect_error_names(&r, "ship_to");
    allot_reply_free(&r);
}

/* ---- all or nothing, partial ----------------------------------------------------------------- */

Test(reserve, another_carts_hold_is_not_available_and_a_larger_request_holds_nothing)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    js("{'id':'other','lines':[{'sku':'A','qty':2}],'location':'W1'}"), &r);
    harness_call_ok(cli, "avail.get", js("{'skus':['A'],'detail':true}"), &r);
    expect_json_at(&r, "",
                   "{'items':[{'sku':'A','available':5,'locations':["
                   "{'id':'W2','available':3},{'id':'W1','available':2}]}]}");
    harness_call_error(cli, "reserve", js("{'id':'big','lines':[{'sku':'A','qty':6}]}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':6,'available':5}]");
    cr_expect_eq(stock_field("A", "W1", "reserved"), 2);
    cr_expect_eq(stock_field("A", "W2", "reserved"), 0);
    harness_call_error(cli, "reservation.get", js("{'id':'big'}"), "NOT_FOUND", &r);
    /* The rest can be held in full. */
    harness_call_ok(cli, "reserve", js("{'id':'rest','lines':[{'sku':'A','qty':5}]}"), &r);
    expect_json_at(&r, "lines.0.allocations",
                   "[{'location':'W2','qty':3},{'location':'W1','qty':2}]");
    cr_expect_eq(stock_field("A", NULL, "reserved"), 7);
    cr_expect_eq(stock_field("A", NULL, "available"), 0);
    allot_reply_free(&r);
}

Test(reserve, two_short_lines_fail_together_naming_both_skus_and_hold_nothing)
{
    put_location("W1", "'type':'warehouse','lat':0,'lon':0");
    set_stock("A", "W1", 7);
    set_stock("B", "W1", 1);
    set_stock("C", "W1", 5);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       js("{'id':'c1','lines':[{'sku':'A','qty':10},{'sku':'C','qty':1},"
                          "{'sku':'B','qty':3}]}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls",
                   "[{'sku':'A','requested':10,'available':7},"
                   "{'sku':'B','requested':3,'available':1}]");
    cr_expect_eq(reserved_total("A"), 0);
    cr_expect_eq(reserved_total("B"), 0);
    cr_expect_eq(reserved_total("C"), 0);
    cr_expect_eq(server_reservations(), 0);
    allot_reply_free(&r);
}

Test(reserve, unknown_sku_cannot_be_held)
{
    put_location("W1", "'type':'warehouse','lat':0,'lon':0");
    set_stock("A", "W1", 7);
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       js("{'id':'c1','lines':[{'sku':'A','qty':1},{'sku':'ghost','qty':1}]}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'ghost','requested':1,'available':0}]");
    cr_expect_eq(reserved_total("A"), 0);
    allot_reply_free(&r);
}

Test(reserve, partial_holds_what_it_can_and_lists_shortfalls)
{
    put_location("W1", "'type':'warehouse','lat':0,'lon':0");
    set_stock("A", "W1", 3);
    set_stock("B", "W1", 1);
    set_stock("C", "W1", 9);
    allot_reply_t r = {0};
    const char *request = js("{'id':'c1','partial':true,'lines':[{'sku':'A','qty':5},"
                             "{'sku':'C','qty':2},{'sku':'B','qty':2}]}");
    char request_copy[512];
    snprintf(request_copy, sizeof request_copy, "%s", request);
    harness_call_ok(cli, "reserve", request_copy, &r);
    expect_json_at(&r, "lines",
                   "[{'sku':'A','qty':3,'allocations':[{'location':'W1','qty':3}]},"
                   "{'sku':'C','qty':2,'allocations':[{'location':'W1','qty':2}]},"
                   "{'sku':'B','qty':1,'allocations':[{'location':'W1','qty':1}]}]");
    expect_json_at(&r, "shortfalls",
                   "[{'sku':'A','requested':5,'available':3},"
                   "{'sku':'B','requested':2,'available':1}]");
    char first[2048], again[2048];
    reply_text(&r, first, sizeof first);
    cr_expect_eq(reserved_total("A"), 3);
    cr_expect_eq(reserved_total("B"), 1);
    cr_expect_eq(reserved_total("C"), 2);
    /* Idempotent, shortfalls included. */
    harness_call_ok(cli, "reserve", request_copy, &r);
    cr_expect_str_eq(reply_text(&r, again, sizeof again), first);
    cr_expect_eq(reserved_total("A"), 3);
    /* reservation.get shows the same shortfalls. */
    harness_call_ok(cli, "reservation.get", js("{'id':'c1'}"), &r);
    cr_expect_not_null(at(&r, "shortfalls"));
    /* Nothing at all left: still INSUFFICIENT_STOCK, even with partial. */
    harness_call_error(cli, "reserve",
                       js("{'id':'c2','partial':true,'lines':[{'sku':'A','qty':1},"
                          "{'sku':'B','qty':1}]}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls",
                   "[{'sku':'A','requested':1,'available':0},"
                   "{'sku':'B','requested':1,'available':0}]");
    cr_expect_eq(server_reservations(), 1);
    allot_reply_free(&r);
}

/* ---- idempotency and replace ----------------------------------------------------------------- */

Test(reserve, same_id_and_request_returns_the_same_reply_and_holds_once)
{
    worked_example();
    char request[256];
    snprintf(request, sizeof request, "%s",
             js("{'id':'cart-1','lines':[{'sku':'A','qty':5}],'ttl_s':120}"));
    allot_reply_t r = {0};
    char first[1024], again[1024];
    harness_call_ok(cli, "reserve", request, &r);
    reply_text(&r, first, sizeof first);
    sleep_ms(20); /* a re-computed expires_at_ms would now differ */
    harness_call_ok(cli, "reserve", request, &r);
    cr_expect_str_eq(reply_text(&r, again, sizeof again), first);
    /* Key order in the request does not matter. */
    harness_call_ok(cli, "reserve", js("{'ttl_s':120,'lines':[{'qty':5,'sku':'A'}],'id':'cart-1'}"),
                    &r);
    cr_expect_str_eq(reply_text(&r, again, sizeof again), first);
    /* Pipelined duplicates on a second connection. */
    allot_client_t *other = harness_connect(srv);
    uint32_t ids[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(allot_client_send_json(other, "reserve", request, &ids[i]), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(allot_client_recv(other, &r), 0, "%s", allot_client_last_error(other));
        cr_assert_not(r.is_error, "%s %s", r.code, r.message);
        cr_expect_str_eq(reply_text(&r, again, sizeof again), first);
    }
    allot_client_close(other);
    cr_expect_eq(reserved_total("A"), 5);
    cr_expect_eq(server_reservations(), 1);
    allot_reply_free(&r);
}

Test(reserve, same_id_with_a_different_request_is_a_conflict)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js("{'id':'cart-1','lines':[{'sku':'A','qty':2}],'ttl_s':120}"),
                    &r);
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
        harness_call_error(cli, "reserve", js("%s", different[i]), "CONFLICT", &r);
    harness_call_ok(cli, "reservation.get", js("{'id':'cart-1'}"), &r);
    expect_json_at(&r, "lines", "[{'sku':'A','qty':2,'allocations':[{'location':'W2','qty':2}]}]");
    cr_expect_eq(reserved_total("A"), 2);
    cr_expect_eq(reserved_total("B"), 0);
    allot_reply_free(&r);
}

Test(reserve, replace_swaps_the_old_hold_for_the_new_one_atomically)
{
    put_location("W1", "'type':'warehouse','lat':0,'lon':0");
    set_stock("A", "W1", 4);
    set_stock("B", "W1", 5);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js("{'id':'cart','lines':[{'sku':'A','qty':3}]}"), &r);
    /* Growing to 4 works only if the old hold's 3 count as available. */
    harness_call_ok(cli, "reserve",
                    js("{'id':'cart','lines':[{'sku':'A','qty':4}],'replace':true}"), &r);
    expect_json_at(&r, "lines", "[{'sku':'A','qty':4,'allocations':[{'location':'W1','qty':4}]}]");
    cr_expect_eq(reserved_total("A"), 4);
    /* A replacement that cannot be held leaves the old hold in place. */
    harness_call_error(cli, "reserve",
                       js("{'id':'cart','lines':[{'sku':'A','qty':5}],'replace':true}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':5,'available':4}]");
    harness_call_ok(cli, "reservation.get", js("{'id':'cart'}"), &r);
    expect_json_at(&r, "lines", "[{'sku':'A','qty':4,'allocations':[{'location':'W1','qty':4}]}]");
    cr_expect_eq(reserved_total("A"), 4);
    /* A changed cart: A gone, B 2. stock.get shows the new hold only. */
    harness_call_ok(cli, "reserve",
                    js("{'id':'cart','lines':[{'sku':'B','qty':2}],'replace':true}"), &r);
    expect_json_at(&r, "lines", "[{'sku':'B','qty':2,'allocations':[{'location':'W1','qty':2}]}]");
    cr_expect_eq(reserved_total("A"), 0);
    cr_expect_eq(reserved_total("B"), 2);
    cr_expect_eq(server_reservations(), 1);
    /* replace with the same request is the idempotent case: nothing changes. */
    char first[1024], again[1024];
    reply_text(&r, first, sizeof first);
    harness_call_ok(cli, "reserve",
                    js("{'id':'cart','lines':[{'sku':'B','qty':2}],'replace':true}"), &r);
    cr_expect_str_eq(reply_text(&r, again, sizeof again), first);
    /* replace of an id that does not exist simply creates it. */
    harness_call_ok(cli, "reserve",
                    js("{'id':'fresh','lines':[{'sku':'B','qty':1}],'replace':true}"), &r);
    cr_expect_eq(reserved_total("B"), 3);
    allot_reply_free(&r);
}

/* ---- daily capacity -------------------------------------------------------------------------- */

/* Counts are per UTC day; a run across UTC midnight could see a reset between two reserves. */
Test(reserve, a_location_at_its_daily_capacity_is_skipped_until_a_hold_is_given_back)
{
    put_location("W2", "'type':'warehouse','lat':0,'lon':0,'priority':0,'daily_capacity':1");
    put_location("W1", "'type':'warehouse','lat':0,'lon':0,'priority':1");
    set_stock("A", "W2", 10);
    set_stock("A", "W1", 10);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':1}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':1}]");
    harness_call_ok(cli, "reserve", js("{'id':'c2','lines':[{'sku':'A','qty':1}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':1}]");
    harness_call_error(cli, "reserve",
                       js("{'id':'c3','lines':[{'sku':'A','qty':1}],'location':'W2'}"),
                       "INSUFFICIENT_STOCK", &r);
    /* Releasing c1 on the same day gives the shipment back. */
    harness_call_ok(cli, "reservation.release", js("{'id':'c1'}"), &r);
    harness_call_ok(cli, "reserve", js("{'id':'c4','lines':[{'sku':'A','qty':1}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, replace_gives_back_daily_capacity_and_counts_survive_a_restart)
{
    put_location("W2", "'type':'warehouse','lat':0,'lon':0,'priority':0,'daily_capacity':1");
    put_location("W1", "'type':'warehouse','lat':0,'lon':0,'priority':1");
    set_stock("A", "W2", 10);
    set_stock("A", "W1", 10);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':1}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':1}]");
    /* The replaced hold's shipment is given back, so W2 is still a candidate. */
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':2}],'replace':true}"),
                    &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':2}]");
    harness_call_ok(cli, "reserve", js("{'id':'c2','lines':[{'sku':'A','qty':1}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':1}]");
    /* Replay arrives at the same count. */
    harness_server_restart(srv);
    allot_client_close(cli);
    cli = harness_connect(srv);
    harness_call_ok(cli, "reserve", js("{'id':'c3','lines':[{'sku':'A','qty':1}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':1}]");
    /* An upsert of the location keeps its counter. */
    put_location("W2", "'type':'warehouse','lat':0,'lon':0,'priority':0,'daily_capacity':1");
    harness_call_ok(cli, "reserve", js("{'id':'c4','lines':[{'sku':'A','qty':1}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':1}]");
    harness_call_ok(cli, "reservation.release", js("{'id':'c1'}"), &r);
    harness_call_ok(cli, "reserve", js("{'id':'c5','lines':[{'sku':'A','qty':1}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, a_split_reservation_counts_one_shipment_at_each_location)
{
    put_location("W2", "'type':'warehouse','lat':0,'lon':0,'priority':0,'daily_capacity':1");
    put_location("W1", "'type':'warehouse','lat':0,'lon':0,'priority':1,'daily_capacity':1");
    put_location("W3", "'type':'warehouse','lat':0,'lon':0,'priority':2");
    set_stock("A", "W2", 2);
    set_stock("A", "W1", 2);
    set_stock("A", "W3", 10);
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    js("{'id':'c1','lines':[{'sku':'A','qty':3}],'policy':'priority'}"), &r);
    expect_json_at(&r, "lines.0.allocations",
                   "[{'location':'W2','qty':2},{'location':'W1','qty':1}]");
    /* W1 still has 1 available but has used its one shipment today. */
    harness_call_ok(cli, "reserve",
                    js("{'id':'c2','lines':[{'sku':'A','qty':1}],'policy':'priority'}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W3','qty':1}]");
    allot_reply_free(&r);
}

Test(reserve, released_and_expired_ids_cannot_be_replaced)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':1}]}"), &r);
    harness_call_ok(cli, "reservation.release", js("{'id':'c1'}"), &r);
    harness_call_error(cli, "reserve",
                       js("{'id':'c1','lines':[{'sku':'A','qty':2}],'replace':true}"), "CONFLICT",
                       &r);
    cr_expect_eq(reserved_total("A"), 0);
    cr_expect_eq(server_reservations(), 0);
    allot_reply_free(&r);
}

Test(reserve, an_inactive_location_is_not_a_candidate_but_its_holds_stay_until_released)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':3}]}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':3}]");
    put_location("W1", "'type':'warehouse','lat':52.5,'lon':13.4,'priority':1,'active':false");
    harness_call_error(cli, "reserve", js("{'id':'c2','lines':[{'sku':'A','qty':1}]}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':1,'available':0}]");
    cr_expect_eq(avail_of(js("{'skus':['A']}")), 0);
    /* Deactivating W2, which holds c1, keeps the hold; releasing returns it. */
    put_location("W2", "'type':'warehouse','lat':48.1,'lon':11.6,'priority':0,'active':false");
    cr_expect_eq(stock_field("A", "W2", "reserved"), 3);
    harness_call_ok(cli, "reservation.get", js("{'id':'c1'}"), &r);
    expect_json_at(&r, "lines.0.allocations", "[{'location':'W2','qty':3}]");
    harness_call_ok(cli, "reservation.release", js("{'id':'c1'}"), &r);
    cr_expect_eq(stock_field("A", "W2", "reserved"), 0);
    allot_reply_free(&r);
}

/* ---- get, extend, release -------------------------------------------------------------------- */

Test(reserve, extend_moves_expiry_from_now_and_may_shorten_it)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':1}],'ttl_s':60}"), &r);
    int64_t before = wall_ms();
    harness_call_ok(cli, "reservation.extend", js("{'id':'c1','ttl_s':600}"), &r);
    int64_t after = wall_ms();
    expect_str_at(&r, "state", "active");
    cr_expect_not_null(at(&r, "created_ms"));
    int64_t expires = int_at(&r, "expires_at_ms");
    cr_expect(expires >= before + 600000 - 5 && expires <= after + 600000 + 5, "expires_at_ms %lld",
              (long long)expires);
    expect_json_at(&r, "lines", "[{'sku':'A','qty':1,'allocations':[{'location':'W2','qty':1}]}]");
    harness_call_ok(cli, "reservation.extend", js("{'id':'c1','ttl_s':30}"), &r);
    cr_expect_lt(int_at(&r, "expires_at_ms"), expires);
    int64_t shortened = int_at(&r, "expires_at_ms");
    harness_call_ok(cli, "reservation.get", js("{'id':'c1'}"), &r);
    cr_expect_eq(int_at(&r, "expires_at_ms"), shortened);
    harness_call_error(cli, "reservation.extend", js("{'id':'c1','ttl_s':0}"), "INVALID_ARGUMENT",
                       &r);
    expect_error_names(&r, "ttl_s");
    harness_call_error(cli, "reservation.extend", js("{'id':'c1','ttl_s':86401}"),
                       "INVALID_ARGUMENT", &r);
    harness_call_error(cli, "reservation.extend", js("{'id':'c1'}"), "INVALID_ARGUMENT", &r);
    harness_call_error(cli, "reservation.extend", js("{'id':'nope','ttl_s':10}"), "NOT_FOUND", &r);
    harness_call_ok(cli, "reservation.extend", js("{'id':'c1','ttl_s':86400}"), &r);
    allot_reply_free(&r);
}

Test(reserve, release_returns_units_at_once_and_releasing_twice_is_fine)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':5}]}"), &r);
    int64_t expires = int_at(&r, "expires_at_ms");
    cr_expect_eq(stock_field("A", NULL, "available"), 2);
    harness_call_ok(cli, "reservation.get", js("{'id':'c1'}"), &r);
    expect_str_at(&r, "state", "active");
    int64_t created = int_at(&r, "created_ms");
    cr_expect_null(at(&r, "ended_ms"));
    harness_call_ok(cli, "reservation.release", js("{'id':'c1'}"), &r);
    expect_str_at(&r, "id", "c1");
    expect_str_at(&r, "state", "released");
    expect_json_at(&r, "lines", "[]");
    cr_expect_eq(int_at(&r, "created_ms"), created);
    cr_expect_eq(int_at(&r, "expires_at_ms"), expires);
    cr_expect_geq(int_at(&r, "ended_ms"), created);
    cr_expect_eq(stock_field("A", NULL, "reserved"), 0);
    cr_expect_eq(stock_field("A", NULL, "available"), 7);
    cr_expect_eq(server_reservations(), 0);
    char first[1024], again[1024];
    reply_text(&r, first, sizeof first);
    harness_call_ok(cli, "reservation.release", js("{'id':'c1'}"), &r);
    cr_expect_str_eq(reply_text(&r, again, sizeof again), first);
    harness_call_error(cli, "reservation.get", js("{'id':'c1'}"), "NOT_FOUND", &r);
    cr_expect(strstr(r.message, "released") != NULL, "message: %s", r.message);
    harness_call_error(cli, "reservation.extend", js("{'id':'c1','ttl_s':60}"), "NOT_FOUND", &r);
    /* Ids are not reused. */
    harness_call_error(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':5}]}"), "CONFLICT",
                       &r);
    cr_expect_eq(stock_field("A", NULL, "reserved"), 0);
    harness_call_error(cli, "reservation.release", js("{'id':'never'}"), "NOT_FOUND", &r);
    harness_call_error(cli, "reservation.get", js("{'id':'never'}"), "NOT_FOUND", &r);
    allot_reply_free(&r);
}

/* ---- expiry (timing: ttl_s 1, released within about 2 s, polled for up to 3 s) --------------- */

Test(reserve, a_hold_past_its_ttl_is_released_by_the_server_and_then_reads_expired)
{
    worked_example();
    allot_reply_t r = {0};
    int64_t start = wall_ms();
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':7}],'ttl_s':1}"), &r);
    int64_t expires = int_at(&r, "expires_at_ms");
    cr_expect(expires >= start + 1000 - 5 && expires <= wall_ms() + 1000 + 5);
    /* A long hold next to it must survive. */
    harness_call_ok(cli, "reserve", js("{'id':'c2','lines':[{'sku':'B','qty':1}],'ttl_s':600}"),
                    &r);
    /* And 300 short holds of C, pipelined, expire in the same window. */
    set_stock("C", "W1", 1000);
    for (int i = 0; i < 300; i++) {
        uint32_t msgid;
        cr_assert_eq(allot_client_send_json(
                         cli, "reserve",
                         js("{'id':'bulk-%d','lines':[{'sku':'C','qty':2}],'ttl_s':1}", i), &msgid),
                     0);
    }
    for (int i = 0; i < 300; i++) {
        cr_assert_eq(allot_client_recv(cli, &r), 0, "%s", allot_client_last_error(cli));
        cr_assert_not(r.is_error, "%s %s", r.code, r.message);
    }
    cr_expect_eq(avail_of(js("{'skus':['A']}")), 0);
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
    cr_expect_eq(avail_of(js("{'skus':['A']}")), 7);
    harness_call_error(cli, "reservation.get", js("{'id':'c1'}"), "EXPIRED", &r);
    harness_call_error(cli, "reservation.extend", js("{'id':'c1','ttl_s':60}"), "EXPIRED", &r);
    harness_call_error(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':7}],'ttl_s':1}"),
                       "EXPIRED", &r);
    /* Releasing an expired hold is a success that says so. */
    harness_call_ok(cli, "reservation.release", js("{'id':'c1'}"), &r);
    expect_str_at(&r, "state", "expired");
    expect_json_at(&r, "lines", "[]");
    harness_call_error(cli, "reservation.get", js("{'id':'bulk-299'}"), "EXPIRED", &r);
    cr_expect_eq(reserved_total("A"), 0);
    cr_expect_eq(reserved_total("B"), 1);
    cr_expect_eq(server_reservations(), 1);
    allot_reply_free(&r);
}

/* ---- argument validation --------------------------------------------------------------------- */

Test(reserve, bad_quantities_ids_and_fields_are_invalid_arguments_naming_the_field)
{
    put_location("W1", "'type':'warehouse','lat':0,'lon':0");
    set_stock("A", "W1", 10);
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
        {"{'id':'c','lines':[{'sku':'A','qty':1}],'customer':'bob'}", "customer"},
    };
    allot_reply_t r = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness_call_error(cli, "reserve", js("%s", cases[i].params), "INVALID_ARGUMENT", &r);
        expect_error_names(&r, cases[i].field);
    }
    harness_call_error(cli, "reserve", js("{'id':'%s','lines':[{'sku':'A','qty':1}]}", long_id),
                       "INVALID_ARGUMENT", &r);
    expect_error_names(&r, "id");
    cr_expect_eq(reserved_total("A"), 0, "a refused request held something");
    cr_expect_eq(server_reservations(), 0);
    /* The boundaries that are accepted: a 128-byte id, qty 2^40 (valid but not in stock),
     * ttl_s 1 and 86400, a UTF-8 id. */
    long_id[128] = '\0';
    harness_call_ok(cli, "reserve",
                    js("{'id':'%s','lines':[{'sku':'A','qty':1}],'ttl_s':86400}", long_id), &r);
    expect_str_at(&r, "id", long_id);
    harness_call_error(cli, "reserve", js("{'id':'c','lines':[{'sku':'A','qty':1099511627776}]}"),
                       "INSUFFICIENT_STOCK", &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'A','requested':1099511627776,'available':9}]");
    harness_call_ok(cli, "reserve",
                    js("{'id':'Warenkorb-\xc3\xbc','lines':[{'sku':'A','qty':1}],'ttl_s':60}"), &r);
    expect_str_at(&r, "id", "Warenkorb-\xc3\xbc");
    cr_expect_eq(reserved_total("A"), 2);
    allot_reply_free(&r);
}

Test(reserve, one_hundred_lines_are_accepted_and_one_hundred_and_one_are_too_large)
{
    put_location("W1", "'type':'warehouse','lat':0,'lon':0");
    set_stock("A", "W1", 1000);
    static char params[8192];
    size_t n = (size_t)snprintf(params, sizeof params, "{'id':'big','lines':[");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(params + n, sizeof params - n, "%s{'sku':'A','qty':1}", i ? "," : "");
    snprintf(params + n, sizeof params - n, "]}");
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve", js("%s", params), "TOO_LARGE", &r);
    expect_error_names(&r, "lines");
    cr_expect_eq(reserved_total("A"), 0);
    /* Drop the last line: cut at the last ",{". */
    char *last = NULL;
    for (char *p = strstr(params, ",{"); p != NULL; p = strstr(p + 1, ",{"))
        last = p;
    cr_assert_not_null(last);
    snprintf(last, sizeof params - (size_t)(last - params), "]}");
    harness_call_ok(cli, "reserve", js("%s", params), &r);
    const msgpack_object *lines = at(&r, "lines");
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
    harness_call_ok(cli, "reservation.get", js("{'id':'held'}"), &r);
    reply_text(&r, s->held, sizeof s->held);
    harness_call_ok(cli, "stock.get", js("{'sku':'A'}"), &r);
    reply_text(&r, s->stock_a, sizeof s->stock_a);
    harness_call_ok(cli, "stock.get", js("{'sku':'B'}"), &r);
    reply_text(&r, s->stock_b, sizeof s->stock_b);
    harness_call_ok(cli, "reserve", js(HELD_REQUEST), &r);
    reply_text(&r, s->repeat, sizeof s->repeat);
    allot_reply_free(&r);
}

/* held (split over W2 and W1), gone (released) and short (partial). */
static void make_holds(snapshot_t *before)
{
    worked_example();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", js(HELD_REQUEST), &r);
    harness_call_ok(cli, "reserve", js("{'id':'gone','lines':[{'sku':'B','qty':1}]}"), &r);
    harness_call_ok(cli, "reservation.release", js("{'id':'gone'}"), &r);
    harness_call_ok(cli, "reserve",
                    js("{'id':'short','lines':[{'sku':'B','qty':9}],'partial':true}"), &r);
    harness_call_ok(cli, "reservation.extend", js("{'id':'held','ttl_s':3600}"), &r);
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
    harness_call_ok(cli, "reservation.get", js("{'id':'short'}"), &r);
    expect_json_at(&r, "shortfalls", "[{'sku':'B','requested':9,'available':4}]");
    harness_call_error(cli, "reservation.get", js("{'id':'gone'}"), "NOT_FOUND", &r);
    harness_call_error(cli, "reserve", js("{'id':'gone','lines':[{'sku':'B','qty':1}]}"),
                       "CONFLICT", &r);
    cr_expect_eq(server_reservations(), 2);
    /* Still live: releasing gives the units back. */
    harness_call_ok(cli, "reservation.release", js("{'id':'held'}"), &r);
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
    harness_call_ok(cli, "reserve", js("{'id':'c1','lines':[{'sku':'A','qty':7}],'ttl_s':1}"), &r);
    int64_t expires = int_at(&r, "expires_at_ms");
    harness_call_ok(cli, "reserve", js("{'id':'c2','lines':[{'sku':'B','qty':2}],'ttl_s':600}"),
                    &r);
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
    harness_call_error(cli, "reservation.get", js("{'id':'c1'}"), "EXPIRED", &r);
    cr_expect_eq(reserved_total("B"), 2);
    cr_expect_eq(avail_of(js("{'skus':['A']}")), 7);
    allot_reply_free(&r);
}
