/* test_loop_stalls.c - what the loop thread must never wait for, and that it is seen when it does
 * (allotd runs under the shim preload/loop_stall.c): a checkpoint leaves every disk sync to
 * other threads (the events store's sync included), and loop_iteration in server.stats counts a
 * stall in any callback of the loop, not only in request handling. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "harness_reply.h"

/* Start allotd under the shim with one more variable of it set (name=value). */
static harness_server_t *start_under_shim(const char *name, const char *value)
{
    /* the shim is not instrumented: an ASan allotd must accept a library loaded before it */
    const char *asan = getenv("ASAN_OPTIONS");
    char saved[1024], options[1100];
    snprintf(saved, sizeof(saved), "%s", asan != NULL ? asan : "");
    snprintf(options, sizeof(options), "%s%sverify_asan_link_order=0", saved,
             saved[0] != '\0' ? ":" : "");
    setenv("ASAN_OPTIONS", options, 1);
    setenv("LD_PRELOAD", ALLOT_LOOP_STALL_PATH, 1);
    setenv(name, value, 1);
    harness_server_t *s = harness_server_start("--fsync always");
    unsetenv(name);
    unsetenv("LD_PRELOAD");
    setenv("ASAN_OPTIONS", saved, 1);
    return s;
}

static unsigned long long loop_syncs_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0; /* none yet */
    unsigned long long count = 0;
    cr_assert_eq(fscanf(f, "%llu", &count), 1);
    fclose(f);
    return count;
}

static void holds_make(allot_client_t *c, int first, int count)
{
    char params[160];
    allot_reply_t r = {0};
    for (int i = first; i < first + count; i++) {
        snprintf(params, sizeof(params),
                 "{\"id\":\"cart-%d\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}", i);
        harness_call_ok(c, "reserve", params, &r);
    }
    allot_reply_free(&r);
}

Test(loop_stalls, a_checkpoint_leaves_every_disk_sync_to_other_threads)
{
    char sync_path[] = "/tmp/allot-loop-syncs-XXXXXX";
    int fd = mkstemp(sync_path);
    cr_assert_geq(fd, 0);
    close(fd);
    harness_server_t *s = start_under_shim("ALLOT_LOOP_SYNC_FILE", sync_path);
    allot_client_t *c = harness_connect(s);
    allot_reply_t r = {0};
    harness_call_ok(c, "location.put",
                    "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4}", &r);
    harness_call_ok(c, "stock.set", "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":1000}", &r);
    holds_make(c, 0, 50); /* durable writes, and their events in events.lmdb */
    unsigned long long at_start = loop_syncs_read(sync_path);
    for (int round = 0; round < 3; round++) {
        harness_call_ok(c, "server.checkpoint", "{}", &r);
        holds_make(c, 100 * (round + 1), 20);
    }
    harness_call_ok(c, "server.stats", "{}", &r);
    cr_assert_geq(harness_reply_int(&r, "checkpoint.count"), 3, "three checkpoints committed");
    cr_expect_eq(loop_syncs_read(sync_path), at_start,
                 "the loop thread synced to disk %llu times during three checkpoints",
                 loop_syncs_read(sync_path) - at_start);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_stop(s);
    /* the events of the holds were made durable by the writer thread: they are all there */
    harness_server_restart(s);
    c = harness_connect(s);
    harness_call_ok(c, "server.info", "{}", &r);
    cr_expect_eq(harness_reply_int(&r, "reservations"), 110);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_destroy(s);
    unlink(sync_path);
}

Test(loop_stalls, loop_iteration_counts_a_stall_in_any_loop_callback)
{
    /* every accept on the loop thread takes 300 ms longer: the iteration that accepts a client
     * lasts that long, though no request is being handled then */
    harness_server_t *s = start_under_shim("ALLOT_LOOP_ACCEPT_DELAY_MS", "300");
    allot_client_t *c = harness_connect(s);
    allot_reply_t r = {0};
    harness_call_ok(c, "server.stats", "{}", &r);
    int64_t max_us = harness_reply_int(&r, "loop_iteration.max_us");
    cr_expect_geq(max_us, 300000, "the slowest loop iteration: %lld us", (long long)max_us);
    allot_reply_free(&r);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
