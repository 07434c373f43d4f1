/* test_promise.c - the delivery promise through the real allotd: location calendars and transit
 * bands are stored, shown and refused when bad; avail.get with promise: true answers low,
 * incoming and delivery, with delivery instants the test computes itself from the system tz
 * database (the server has no test clock: the expected values are worked out for the time just
 * before and just after the call, and the reply must match one of them); without promise the
 * reply is unchanged; kill -9 and a checkpoint keep calendars and bands. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness_reply.h"

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

TestSuite(promise, .init = up, .fini = down, .timeout = 60);

#define BERLIN_CALENDAR                                                                            \
    "'timezone':'Europe/Berlin','cutoff':'23:59','processing_days':0,"                             \
    "'work_days':['mon','tue','wed','thu','fri','sat','sun']"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Local midnight (plus minutes) of the Berlin date `days_ahead` after the date of at_ms, as UTC ms,
 * through libc with TZ set to the zone (this test process only). */
static int64_t berlin_instant(int64_t at_ms, int days_ahead, int minute)
{
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    time_t t = (time_t)(at_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_mday += days_ahead;
    tm.tm_hour = minute / 60;
    tm.tm_min = minute % 60;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    int64_t ms = (int64_t)mktime(&tm) * 1000;
    unsetenv("TZ");
    tzset();
    return ms;
}

/* The promise of the Berlin location below for an order at at_ms: every day works, cutoff 23:59,
 * no processing, transit 0 days: delivered the day it is ordered, or the next after 23:59. */
static void berlin_expected(int64_t at_ms, int64_t out[3])
{
    int64_t cutoff_today = berlin_instant(at_ms, 0, 23 * 60 + 59);
    int day = at_ms < cutoff_today ? 0 : 1;
    out[0] = berlin_instant(at_ms, day, 23 * 60 + 59);
    out[1] = berlin_instant(at_ms, day, 0);
    out[2] = berlin_instant(at_ms, day + 1, 0) - 1;
}

static void berlin_setup(void)
{
    harness_put_location(cli, "BER", "'type':'warehouse','lat':52.52,'lon':13.40," BERLIN_CALENDAR);
    harness_put_location(cli, "FAR", "'type':'warehouse','lat':40.71,'lon':-74.0");
    allot_reply_t r = {0};
    harness_call_ok(cli, "transit.set",
                    harness_json("{'method':'ship','bands':[{'max_km':500,'min_days':0,"
                                 "'max_days':0}]}"),
                    &r);
    allot_reply_free(&r);
}

Test(promise, avail_get_promise_gives_low_incoming_and_the_delivery_of_the_nearest_day)
{
    berlin_setup();
    harness_set_stock(cli, "S", "BER", 3);
    harness_set_stock(cli, "S", "FAR", 100); /* beyond every band from Berlin */
    harness_set_stock(cli, "FARONLY", "FAR", 100);
    allot_reply_t r = {0};
    harness_call_ok(cli, "sku.put", "{\"sku\":\"S\",\"low_stock\":5}", &r);
    allot_reply_free(&r);
    int64_t before = now_ms();
    harness_call_ok(cli, "avail.get",
                    harness_json("{'skus':['S','FARONLY','NONE'],'ship_to':{'lat':52.50,"
                                 "'lon':13.45},'promise':true}"),
                    &r);
    int64_t after = now_ms();
    harness_expect_json_at(&r, "items.0.available", "103");
    harness_expect_json_at(&r, "items.0.low", "false"); /* 103 > 5 */
    harness_expect_json_at(&r, "items.0.incoming", "[]");
    harness_expect_str_at(&r, "items.0.delivery.location", "BER");
    int64_t got[3] = {harness_reply_int(&r, "items.0.delivery.order_by_ms"),
                      harness_reply_int(&r, "items.0.delivery.earliest_ms"),
                      harness_reply_int(&r, "items.0.delivery.latest_ms")};
    int64_t a[3], b[3];
    berlin_expected(before, a);
    berlin_expected(after, b);
    cr_expect(memcmp(got, a, sizeof a) == 0 || memcmp(got, b, sizeof b) == 0,
              "delivery %lld %lld %lld, expected %lld %lld %lld", (long long)got[0],
              (long long)got[1], (long long)got[2], (long long)a[0], (long long)a[1],
              (long long)a[2]);
    cr_expect(got[0] > before && got[1] <= got[2] && got[2] - got[1] >= 23 * 3600000LL - 1);
    /* FAR is beyond every band: no promise; an unknown SKU has none either */
    cr_expect_null(harness_reply_at(&r, "items.1.delivery"));
    harness_expect_json_at(&r, "items.1.available", "100");
    cr_expect_null(harness_reply_at(&r, "items.2.delivery"));
    harness_expect_json_at(&r, "items.2.low", "false");
    allot_reply_free(&r);
    /* low: 0 < available <= low_stock */
    harness_set_stock(cli, "S", "FAR", 0);
    harness_call_ok(cli, "avail.get", "{\"skus\":[\"S\"],\"promise\":true}", &r);
    harness_expect_json_at(&r, "items.0.low", "true");
    allot_reply_free(&r);
}

Test(promise, without_promise_the_reply_is_as_before)
{
    berlin_setup();
    harness_set_stock(cli, "S", "BER", 3);
    allot_reply_t r = {0};
    harness_call_ok(cli, "avail.get", "{\"skus\":[\"S\",\"X\"]}", &r);
    harness_expect_json_at(&r, "",
                           "{'items':[{'sku':'S','available':3},{'sku':'X','available':0}]}");
    allot_reply_free(&r);
    harness_call_ok(cli, "avail.get", "{\"skus\":[\"S\"],\"promise\":false,\"detail\":true}", &r);
    harness_expect_json_at(&r, "",
                           "{'items':[{'sku':'S','available':3,'locations':[{'id':'BER',"
                           "'available':3}]}]}");
    allot_reply_free(&r);
}

Test(promise, location_calendar_is_shown_folded_and_defaults_are_shown_too)
{
    harness_put_location(cli, "B",
                         "'type':'store','lat':52.5,'lon':13.4,'timezone':'America/New_York',"
                         "'cutoff':'14:05','processing_days':2,'work_days':['wed','mon','wed'],"
                         "'holidays':['2026-12-25','2026-05-25','2026-12-25']");
    allot_reply_t r = {0};
    harness_call_ok(cli, "location.get", "{\"id\":\"B\"}", &r);
    harness_expect_str_at(&r, "timezone", "America/New_York");
    harness_expect_str_at(&r, "cutoff", "14:05");
    harness_expect_json_at(&r, "processing_days", "2");
    harness_expect_json_at(&r, "work_days", "['mon','wed']");
    harness_expect_json_at(&r, "holidays", "['2026-05-25','2026-12-25']");
    allot_reply_free(&r);
    harness_put_location(cli, "D", "'type':'store','lat':1,'lon':1");
    harness_call_ok(cli, "location.list", "{}", &r);
    harness_expect_str_at(&r, "locations.1.id", "D");
    harness_expect_str_at(&r, "locations.1.timezone", "UTC");
    harness_expect_str_at(&r, "locations.1.cutoff", "23:59");
    harness_expect_json_at(&r, "locations.1.work_days", "['mon','tue','wed','thu','fri']");
    harness_expect_json_at(&r, "locations.1.holidays", "[]");
    allot_reply_free(&r);
}

static void location_refused(const char *fields, const char *code, const char *field)
{
    allot_reply_t r = {0};
    harness_call_error(cli, "location.put",
                       harness_json("{'id':'BAD','type':'store','lat':1,'lon':1,%s}", fields), code,
                       &r);
    harness_expect_str_at(&r, "field", field);
    allot_reply_free(&r);
}

Test(promise, bad_calendars_and_bands_are_refused_with_nothing_changed)
{
    location_refused("'timezone':'Mars/Base'", "INVALID_ARGUMENT", "timezone");
    location_refused("'timezone':'../../etc/passwd'", "INVALID_ARGUMENT", "timezone");
    location_refused("'timezone':'/etc/localtime'", "INVALID_ARGUMENT", "timezone");
    location_refused("'cutoff':'24:00'", "INVALID_ARGUMENT", "cutoff");
    location_refused("'cutoff':'9:00'", "INVALID_ARGUMENT", "cutoff");
    location_refused("'holidays':['2026-02-30']", "INVALID_ARGUMENT", "holidays");
    location_refused("'work_days':[]", "INVALID_ARGUMENT", "work_days");
    location_refused("'work_days':['monday']", "INVALID_ARGUMENT", "work_days");
    location_refused("'processing_days':31", "INVALID_ARGUMENT", "processing_days");
    allot_reply_t r = {0};
    harness_call_error(cli, "location.get", "{\"id\":\"BAD\"}", "NOT_FOUND", &r);
    allot_reply_free(&r);

    char bands[4096] = "";
    size_t n = 0;
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(bands + n, sizeof bands - n,
                              "%s{'max_km':%d,'min_days':1,'max_days':2}", i ? "," : "",
                              10 * (i + 1));
    harness_call_error(cli, "transit.set", harness_json("{'method':'ship','bands':[%s]}", bands),
                       "TOO_LARGE", &r);
    harness_expect_str_at(&r, "field", "bands");
    allot_reply_free(&r);
    harness_call_error(cli, "transit.set",
                       harness_json("{'method':'ship','bands':[{'max_km':500,'min_days':1,"
                                    "'max_days':2},{'max_km':100,'min_days':1,'max_days':1}]}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_str_at(&r, "field", "bands");
    allot_reply_free(&r);
    harness_call_error(cli, "transit.set",
                       harness_json("{'method':'ship','bands':[{'max_km':100,'min_days':3,"
                                    "'max_days':2}]}"),
                       "INVALID_ARGUMENT", &r);
    allot_reply_free(&r);
    harness_call_error(cli, "transit.set",
                       harness_json("{'method':'same_day','bands':[{'max_km':10,'min_days':0,"
                                    "'max_days':0}]}"),
                       "INVALID_ARGUMENT", &r);
    harness_expect_str_at(&r, "field", "method");
    allot_reply_free(&r);
    harness_call_ok(cli, "transit.get", "{}", &r);
    harness_expect_json_at(&r, "", "{'methods':[]}");
    allot_reply_free(&r);
}

Test(promise, kill_9_keeps_calendars_and_bands_from_the_log_and_the_checkpoint)
{
    berlin_setup();
    allot_reply_t r = {0};
    harness_call_ok(cli, "server.checkpoint", "{}", &r);
    allot_reply_free(&r);
    /* after the checkpoint: a new calendar and new bands live only in the log */
    harness_put_location(cli, "NYC",
                         "'type':'store','lat':40.7,'lon':-74.0,'timezone':'America/New_York',"
                         "'cutoff':'17:30','holidays':['2026-11-26']");
    harness_call_ok(cli, "transit.set",
                    harness_json("{'method':'ship','bands':[{'max_km':100,'min_days':1,"
                                 "'max_days':1},{'max_km':800.5,'min_days':1,'max_days':3}]}"),
                    &r);
    allot_reply_free(&r);
    allot_client_close(cli);
    harness_server_kill9(srv);
    harness_server_restart(srv);
    cli = harness_connect(srv);
    harness_call_ok(cli, "location.get", "{\"id\":\"BER\"}", &r);
    harness_expect_str_at(&r, "timezone", "Europe/Berlin");
    harness_expect_json_at(&r, "work_days", "['mon','tue','wed','thu','fri','sat','sun']");
    allot_reply_free(&r);
    harness_call_ok(cli, "location.get", "{\"id\":\"NYC\"}", &r);
    harness_expect_str_at(&r, "timezone", "America/New_York");
    harness_expect_str_at(&r, "cutoff", "17:30");
    harness_expect_json_at(&r, "holidays", "['2026-11-26']");
    allot_reply_free(&r);
    harness_call_ok(cli, "transit.get", "{\"method\":\"ship\"}", &r);
    harness_expect_json_at(&r, "",
                           "{'method':'ship','bands':[{'max_km':100.0,'min_days':1,'max_days':1},"
                           "{'max_km':800.5,'min_days':1,'max_days':3}]}");
    allot_reply_free(&r);
    /* and once more from a checkpoint that holds them */
    harness_call_ok(cli, "server.checkpoint", "{}", &r);
    allot_reply_free(&r);
    allot_client_close(cli);
    harness_server_kill9(srv);
    harness_server_restart(srv);
    cli = harness_connect(srv);
    harness_call_ok(cli, "transit.get", "{}", &r);
    harness_expect_json_at(&r, "methods.0.bands.1.max_days", "3");
    allot_reply_free(&r);
    harness_call_ok(cli, "location.get", "{\"id\":\"NYC\"}", &r);
    harness_expect_str_at(&r, "cutoff", "17:30");
    allot_reply_free(&r);
}
