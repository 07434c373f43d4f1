/* test_checkpoint_spares.c - the memory of a checkpoint's batch is kept for the next one while
 * writes go on (server.stats checkpoint.spare_bytes), and given back once they stop. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <time.h>

#include "harness.h"
#include "harness_reply.h"

#define SKUS           20000 /* about 1 MB of SKU records in the batch: several chunks */
#define PIPELINE_DEPTH 512
/* The first chunk of a batch (CHECKPOINT_BATCH_CHUNK_BYTES_MIN): the spares fitted to one dirty
 * object keep less than that. */
#define FIRST_CHUNK_BYTES (64 * 1024)

static void stock_set_many(allot_client_t *c, int first, int count, int on_hand)
{
    char params[128];
    allot_reply_t r = {0};
    for (int done = 0; done < count; done += PIPELINE_DEPTH) {
        int n = count - done < PIPELINE_DEPTH ? count - done : PIPELINE_DEPTH;
        for (int i = 0; i < n; i++) {
            snprintf(params, sizeof(params),
                     "{\"sku\":\"S%06d\",\"location\":\"W1\",\"on_hand\":%d}", first + done + i,
                     on_hand);
            cr_assert_eq(allot_client_send_json(c, "stock.set", params, NULL), 0, "%s",
                         allot_client_last_error(c));
        }
        for (int i = 0; i < n; i++) {
            cr_assert_eq(allot_client_recv(c, &r), 0, "%s", allot_client_last_error(c));
            cr_assert_not(r.is_error, "stock.set: %s %s", r.code, r.message);
        }
    }
    allot_reply_free(&r);
}

Test(checkpoint_spares, a_batchs_memory_is_kept_while_writes_go_on_and_given_back_when_they_stop)
{
    /* only server.checkpoint takes checkpoints here */
    harness_server_t *s = harness_server_start("--checkpoint-interval-s 0 --checkpoint-wal-bytes 0 "
                                               "--checkpoint-dirty-max 0 --fsync none");
    allot_client_t *c = harness_connect(s);
    allot_reply_t r = {0};
    harness_put_location(c, "W1", "'type':'warehouse','lat':1,'lon':1");
    stock_set_many(c, 0, SKUS, 5);
    cr_assert_eq(harness_server_stats_int(c, "checkpoint.spare_bytes"), 0,
                 "nothing kept before the first checkpoint");
    /* A write in the same read as server.checkpoint: it is dirty when the checkpoint commits, as
     * writes are under load. The batch's chunks are kept for the next checkpoint (before: fitted
     * to the one dirty object, i.e. given back). */
    cr_assert_eq(allot_client_send_json(c, "server.checkpoint", "{}", NULL), 0);
    cr_assert_eq(allot_client_send_json(c, "stock.set",
                                        "{\"sku\":\"S000000\",\"location\":\"W1\",\"on_hand\":6}",
                                        NULL),
                 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(allot_client_recv(c, &r), 0, "%s", allot_client_last_error(c));
        cr_assert_not(r.is_error, "%s %s", r.code, r.message);
    }
    int64_t kept = harness_server_stats_int(c, "checkpoint.spare_bytes");
    cr_assert_geq(kept, SKUS * 20, "kept %lld bytes", (long long)kept);
    /* Writes stop: within a few seconds the spares are cut to what the one dirty object needs. */
    int64_t now_kept = kept;
    for (int i = 0; i < 200 && now_kept >= FIRST_CHUNK_BYTES; i++) {
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        now_kept = harness_server_stats_int(c, "checkpoint.spare_bytes");
    }
    cr_assert_lt(now_kept, FIRST_CHUNK_BYTES, "still %lld bytes kept", (long long)now_kept);
    /* A checkpoint with nothing dirty after it keeps nothing. */
    harness_call_ok(c, "server.checkpoint", "{}", &r);
    cr_assert_eq(harness_server_stats_int(c, "checkpoint.spare_bytes"), 0);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
