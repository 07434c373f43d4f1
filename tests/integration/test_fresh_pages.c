/* test_fresh_pages.c - the holds' table grows into huge pages that a thread of the server faults
 * in ahead of the loop, and server.stats says so. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <time.h>

#include "harness.h"
#include "harness_reply.h"

/* Enough holds for the slab of 120-byte records to pass 2 MiB: a mapping of huge pages. */
#define HOLDS 20000

Test(fresh_pages, a_growing_hold_table_is_faulted_in_off_the_loop_and_reported_in_stats)
{
    harness_server_t *s = harness_server_start("--fsync none");
    allot_client_t *c = harness_connect(s);
    allot_reply_t r = {0};
    harness_put_location(c, "W1", "'type':'warehouse','lat':52.0,'lon':4.0");
    harness_set_stock(c, "A", "W1", 1000000);
    cr_assert_geq(harness_server_stats_int(c, "pages.loop_minor_faults"), 1,
                  "the loop's own faults are counted");
    int64_t warmed_before = harness_server_stats_int(c, "pages.warmed_bytes");
    char params[96];
    for (int i = 0; i < HOLDS; i++) {
        snprintf(params, sizeof(params),
                 "{\"id\": \"h-%d\", \"lines\": [{\"sku\": \"A\", \"qty\": 1}]}", i);
        harness_call_ok(c, "reserve", params, &r);
    }
    /* the warmer runs while the loop waits: some idle moments are enough (a guard, not a time) */
    int64_t warmed = warmed_before;
    for (int i = 0; i < 400 && warmed < warmed_before + (2 << 20); i++) {
        nanosleep(&(struct timespec){0, 25 * 1000 * 1000}, NULL);
        warmed = harness_server_stats_int(c, "pages.warmed_bytes");
    }
    cr_assert_geq(warmed, warmed_before + (2 << 20), "warmed %lld bytes", (long long)warmed);
    cr_assert_eq(harness_server_stats_int(c, "pages.warm_ranges_dropped"), 0);
    harness_call_ok(c, "reservation.get", "{\"id\": \"h-0\"}", &r);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
