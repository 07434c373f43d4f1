/* test_wal_tool.c - allot-wal reads a real server's log: dump names each record's type from the
 * event table (core/events.def), verify accepts it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

Test(wal_tool, dump_names_every_record_by_its_type_from_the_event_table)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "location.put",
                    "{\"id\": \"W1\", \"type\": \"warehouse\", \"lat\": 52.0, \"lon\": 4.0}",
                    &reply);
    harness_call_ok(c, "stock.set", "{\"sku\": \"A\", \"location\": \"W1\", \"on_hand\": 10}",
                    &reply);
    harness_call_ok(c, "reserve", "{\"id\": \"cart-1\", \"lines\": [{\"sku\": \"A\", \"qty\": 3}]}",
                    &reply);
    harness_call_ok(c, "reservation.release", "{\"id\": \"cart-1\"}", &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);

    const char *dump[] = {ALLOT_BUILD_DIR "/allot-wal", "dump", s->data_dir, NULL};
    char *out = NULL;
    cr_assert_eq(harness_run(dump, NULL, 10000, &out, NULL), 0, "%s", out);
    const char *expected[] = {
        " type=1 name=location.put length=", " type=2 name=stock.set length=",
        " type=4 name=reservation.create length=", " type=6 name=reservation.release length="};
    const char *at = out;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const char *found = strstr(at, expected[i]);
        cr_assert_not_null(found, "no \"%s\" after the records before it in:\n%s", expected[i],
                           out);
        at = found + 1;
    }
    cr_expect_null(strstr(out, "name=unknown"), "%s", out);
    free(out);

    const char *verify[] = {ALLOT_BUILD_DIR "/allot-wal", "verify", s->data_dir, NULL};
    cr_assert_eq(harness_run(verify, NULL, 10000, &out, NULL), 0, "%s", out);
    free(out);
    harness_server_destroy(s);
}
