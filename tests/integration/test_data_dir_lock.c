/* test_data_dir_lock.c - one allotd per data directory: a second one on the same --data-dir
 * exits at once naming the first, which keeps serving with its data intact; the read-only WAL
 * inspector and --check-config still work while the server runs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int64_t on_hand_of(allot_client_t *c, const char *sku)
{
    char params[128];
    snprintf(params, sizeof(params), "{\"sku\":\"%s\"}", sku);
    allot_reply_t reply = {0};
    harness_call_ok(c, "stock.get", params, &reply);
    const msgpack_object *v = allot_object_map_get(&reply.result, "on_hand");
    cr_assert_not_null(v);
    int64_t on_hand = v->via.i64;
    allot_reply_free(&reply);
    return on_hand;
}

static void adjust(allot_client_t *c, const char *key)
{
    char params[160];
    snprintf(params, sizeof(params),
             "{\"sku\":\"A\",\"location\":\"W1\",\"delta\":1,\"key\":\"%s\"}", key);
    allot_reply_t reply = {0};
    harness_call_ok(c, "stock.adjust", params, &reply);
    allot_reply_free(&reply);
}

Test(data_dir_lock, second_server_on_the_same_directory_exits_naming_the_first_one, .timeout = 60)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "location.put",
                    "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4}", &reply);
    harness_call_ok(c, "stock.set", "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":100}", &reply);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        adjust(c, key);
    }

    /* A second server on the same directory (another port) refuses to start. */
    const char *second[] = {ALLOTD_PATH,  "--listen",  "127.0.0.1:0",
                            "--data-dir", s->data_dir, NULL};
    char *out = NULL, *err = NULL;
    int status = harness_run(second, NULL, 10000, &out, &err);
    cr_assert_eq(status, 1, "the second server exited with %d:\n%s%s", status, out, err);
    char pid_text[64];
    snprintf(pid_text, sizeof(pid_text), "in use by pid %d", (int)s->pid);
    cr_assert(strstr(err, "data_dir_locked") != NULL && strstr(err, pid_text) != NULL,
              "the refusal does not name pid %d:\n%s", (int)s->pid, err);
    cr_assert(strstr(err, "recovered") == NULL && strstr(err, "listening") == NULL,
              "the second server went on:\n%s", err);
    free(out);
    free(err);

    /* Checking the configuration and inspecting the WAL take no lock. */
    const char *check[] = {ALLOTD_PATH, "--data-dir", s->data_dir, "--check-config", NULL};
    cr_assert_eq(harness_run(check, NULL, 10000, NULL, NULL), 0);
    const char *verify[] = {ALLOT_BUILD_DIR "/allot-wal", "verify", s->data_dir, NULL};
    status = harness_run(verify, NULL, 10000, &out, &err);
    cr_assert_eq(status, 0, "allot-wal verify beside a running server: %s%s", out, err);
    free(out);
    free(err);

    /* The first server kept serving and writing; everything survives its restart. */
    adjust(c, "after");
    cr_assert_eq(on_hand_of(c, "A"), 121);
    allot_client_close(c);
    harness_server_restart(s);
    c = harness_connect(s);
    cr_assert_eq(on_hand_of(c, "A"), 121);
    harness_call_ok(c, "server.verify", "{}", &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}

Test(data_dir_lock, the_lock_goes_with_a_killed_server, .timeout = 60)
{
    harness_server_t *s = harness_server_start(NULL);
    harness_server_kill9(s);
    /* No stale lock: the kernel dropped it with the process. */
    harness_server_restart(s);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "ping", "{}", &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
