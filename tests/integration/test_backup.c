/* test_backup.c - the documented backup procedure (docs/operations.md) restores a server. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void shell(const char *fmt, const char *a, const char *b)
{
    char command[1024];
    snprintf(command, sizeof(command), fmt, a, b);
    cr_assert_eq(system(command), 0, "%s", command);
}

static int64_t on_hand_of(allot_client_t *c, const char *sku)
{
    char params[128];
    snprintf(params, sizeof(params), "{\"sku\": \"%s\"}", sku);
    allot_reply_t reply = {0};
    harness_call_ok(c, "stock.get", params, &reply);
    int64_t on_hand = allot_object_map_get(&reply.result, "on_hand")->via.i64;
    allot_reply_free(&reply);
    return on_hand;
}

Test(backup, lmdb_copy_then_wal_segments_restore_every_write_before_the_copy)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "location.put",
                    "{\"id\": \"W1\", \"type\": \"warehouse\", \"lat\": 52.0, \"lon\": 4.0}",
                    &reply);
    harness_call_ok(c, "stock.set", "{\"sku\": \"A\", \"location\": \"W1\", \"on_hand\": 10}",
                    &reply);
    harness_call_ok(c, "server.checkpoint", "{}", &reply);
    /* after the checkpoint: only in the WAL */
    harness_call_ok(c, "stock.set", "{\"sku\": \"B\", \"location\": \"W1\", \"on_hand\": 7}",
                    &reply);
    harness_call_ok(c, "reserve", "{\"id\": \"cart-1\", \"lines\": [{\"sku\": \"A\", \"qty\": 3}]}",
                    &reply);

    char backup[] = "/tmp/allot-backup-XXXXXX";
    cr_assert_not_null(mkdtemp(backup));
    shell("mdb_copy -n %s/state.lmdb %s/state.lmdb", s->data_dir, backup);
    shell("mkdir -p %2$s/wal && cp %1$s/wal/wal-end %2$s/wal/ && cp %1$s/wal/wal-*.log %2$s/wal/",
          s->data_dir, backup);
    /* after the backup: must not appear in the restored server */
    harness_call_ok(c, "stock.set", "{\"sku\": \"C\", \"location\": \"W1\", \"on_hand\": 1}",
                    &reply);
    allot_client_close(c);
    harness_server_stop(s);

    const char *verify[] = {ALLOT_BUILD_DIR "/allot-wal", "verify", backup, NULL};
    char *out = NULL;
    cr_assert_eq(harness_run(verify, NULL, 10000, &out, NULL), 0, "%s", out);
    free(out);

    char args[128];
    snprintf(args, sizeof(args), "--data-dir %s", backup);
    harness_server_t *restored = harness_server_start(args);
    c = harness_connect(restored);
    cr_expect_eq(on_hand_of(c, "A"), 10);
    cr_expect_eq(on_hand_of(c, "B"), 7);
    harness_call_ok(c, "reservation.get", "{\"id\": \"cart-1\"}", &reply);
    harness_call_error(c, "stock.get", "{\"sku\": \"C\"}", "NOT_FOUND", &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(restored);
    harness_server_destroy(restored);
    harness_server_destroy(s);
    shell("rm -rf %s%s", backup, "");
}
