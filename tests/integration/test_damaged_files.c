/* test_damaged_files.c - the real allotd over a data directory damaged while it was stopped (or
 * behind its back): a flipped bit in state.lmdb, a page of garbage there, a deleted or damaged
 * WAL segment. Each time allotd either starts with every acknowledged write or refuses to
 * start with a message naming what is damaged; it never starts with less. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "persist/wal.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static void write_ok(allot_client_t *c, const char *method, const char *params)
{
    allot_reply_t reply = {0};
    harness_call_ok(c, method, params, &reply);
    allot_reply_free(&reply);
}

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

/* Pipelined stock.set of SKU-<i> for i in [first, first + count) at W1. */
static void skus_set(allot_client_t *c, int first, int count, int on_hand)
{
    char params[128];
    for (int i = first; i < first + count; i++) {
        snprintf(params, sizeof(params),
                 "{\"sku\":\"SKU-%06d\",\"location\":\"W1\",\"on_hand\":%d}", i, on_hand + i);
        cr_assert_eq(allot_client_send_json(c, "stock.set", params, NULL), 0);
    }
    allot_reply_t reply = {0};
    for (int i = 0; i < count; i++) {
        cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
        cr_assert_not(reply.is_error, "%s: %s", reply.code, reply.message);
    }
    allot_reply_free(&reply);
}

static uint8_t *file_load(const char *path, size_t *bytes)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *bytes = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(*bytes + 1);
    cr_assert_eq(fread(data, 1, *bytes, f), *bytes);
    fclose(f);
    return data;
}

static void file_write_at(const char *path, const void *data, size_t bytes, size_t offset)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fseek(f, (long)offset, SEEK_SET), 0);
    cr_assert_eq(fwrite(data, 1, bytes, f), bytes);
    fclose(f);
}

/* The start must fail: exit status 1 and `needle` in its log (the log is cleared first). */
static void assert_start_refused(harness_server_t *s, const char *needle)
{
    cr_assert_eq(truncate(s->log_path, 0), 0);
    cr_assert_not(harness_server_restart_try(s, 10000), "allotd started on a damaged directory");
    char *log = harness_server_log_read(s);
    cr_assert_eq(s->exit_status, 1, "exit status %d:\n%s", s->exit_status, log);
    cr_assert(strstr(log, "recovery_failed") != NULL && strstr(log, needle) != NULL,
              "the log does not say '%s':\n%s", needle, log);
    cr_assert(strstr(log, "event=listening") == NULL, "it listened:\n%s", log);
    free(log);
}

/* Copy (cp -a) the data directory of s to `to`, or back. */
static void data_dir_copy(const char *from, const char *to)
{
    char command[700];
    snprintf(command, sizeof(command), "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    cr_assert_eq(system(command), 0, "%s", command);
}

/* ---- state.lmdb ------------------------------------------------------------------------------ */

/* Flip bit `bit` of the first copy of `pattern` in the value of key in the store at path (the
 * server is stopped: a raw LMDB write, as rot inside a page would leave it). */
static void store_value_flip(const char *path, const void *key_bytes, size_t key_len,
                             const void *pattern, size_t pattern_len, int bit)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi state;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "state", 0, &state), 0);
    MDB_val key = {key_len, (void *)key_bytes}, value;
    cr_assert_eq(mdb_get(txn, state, &key, &value), 0);
    uint8_t *copy = malloc(value.mv_size);
    memcpy(copy, value.mv_data, value.mv_size);
    uint8_t *at = memmem(copy, value.mv_size, pattern, pattern_len);
    cr_assert_not_null(at, "the pattern is not in the value");
    at[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    MDB_val damaged = {value.mv_size, copy};
    cr_assert_eq(mdb_put(txn, state, &key, &damaged, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(copy);
}

Test(damaged_files, a_flipped_bit_in_an_on_hand_value_of_state_lmdb_refuses_the_start)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    write_ok(c, "location.put", "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4}");
    write_ok(c, "stock.set", "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":4886718345}");
    skus_set(c, 0, 50, 10);
    allot_client_close(c);
    harness_server_stop(s); /* the final checkpoint holds A */
    char path[400];
    harness_server_path(s, "state.lmdb", path, sizeof(path));
    const uint8_t key[] = {0x02, 'A'};
    const uint8_t on_hand[8] = {0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0};    /* 4886718345, i64 LE */
    store_value_flip(path, key, sizeof(key), on_hand, sizeof(on_hand), 0); /* 4886718344 */
    assert_start_refused(s, "(kind 2 SKU, id 'A', value");
    harness_server_destroy(s);
}

Test(damaged_files, server_verify_checks_the_checksums_of_state_lmdb)
{
    harness_server_t *s =
        harness_server_start("--checkpoint-interval-s 0 --checkpoint-wal-bytes 0");
    allot_client_t *c = harness_connect(s);
    write_ok(c, "location.put", "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4}");
    write_ok(c, "stock.set", "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":4886718345}");
    skus_set(c, 0, 20, 10);
    write_ok(c, "server.checkpoint", "{}");
    allot_reply_t reply = {0};
    harness_call_ok(c, "server.verify", "{}", &reply);
    const msgpack_object *ok = allot_object_map_get(&reply.result, "ok");
    cr_assert(ok != NULL && ok->via.boolean);
    const msgpack_object *records = allot_object_map_get(&reply.result, "store_records");
    cr_assert(records != NULL && records->via.i64 == 22, "W1, A and 20 SKUs");
    /* Rot behind the running server's back (LMDB allows another process's write). */
    char path[400];
    harness_server_path(s, "state.lmdb", path, sizeof(path));
    const uint8_t key[] = {0x02, 'A'};
    const uint8_t on_hand[8] = {0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0};
    store_value_flip(path, key, sizeof(key), on_hand, sizeof(on_hand), 0);
    harness_call_ok(c, "server.verify", "{}", &reply);
    ok = allot_object_map_get(&reply.result, "ok");
    cr_assert(ok != NULL && !ok->via.boolean, "server.verify did not see the damage");
    const msgpack_object *violation = allot_object_map_get(&reply.result, "violation");
    cr_assert_not_null(violation);
    char text[600];
    snprintf(text, sizeof(text), "%.*s", (int)violation->via.str.size, violation->via.str.ptr);
    cr_assert(strstr(text, "fails its checksum") != NULL && strstr(text, "id 'A'") != NULL, "%s",
              text);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_kill9(s);
    harness_server_destroy(s);
}

/* Page-aligned offset of the first copy of text in the file. */
static size_t page_of(const char *path, const char *text)
{
    size_t bytes;
    uint8_t *data = file_load(path, &bytes);
    uint8_t *at = memmem(data, bytes, text, strlen(text));
    cr_assert_not_null(at, "%s not in %s", text, path);
    size_t page = (size_t)(at - data) / 4096 * 4096;
    free(data);
    return page;
}

Test(damaged_files, a_page_of_garbage_in_a_3000_sku_state_lmdb_refuses_the_start, .timeout = 120)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    write_ok(c, "location.put", "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4}");
    for (int first = 0; first < 3000; first += 500)
        skus_set(c, first, 500, 100);
    allot_client_close(c);
    harness_server_stop(s);
    char pristine[300], path[400];
    snprintf(pristine, sizeof(pristine), "%s.pristine", s->data_dir);
    data_dir_copy(s->data_dir, pristine);
    harness_server_path(s, "state.lmdb", path, sizeof(path));
    /* The pages holding the first, a middle and the last SKU, each filled with garbage (four
     * seeds). LMDB meets such a page in every way: it walks past records silently (the record
     * count catches that), returns garbage records (their checksums), reports MDB_CORRUPTED or
     * MDB_PAGE_NOTFOUND, fails an internal assertion or faults reading outside the data (both
     * reported as store_damaged); each time the start is refused with the reason in the log. */
    const char *where[] = {"SKU-000000", "SKU-001500", "SKU-002999"};
    uint8_t garbage[4096];
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        for (unsigned seed = 1; seed <= 4; seed++) {
            data_dir_copy(pristine, s->data_dir);
            srand(seed * 7919u + (unsigned)i);
            for (size_t k = 0; k < sizeof(garbage); k++)
                garbage[k] = (uint8_t)rand();
            file_write_at(path, garbage, sizeof(garbage), page_of(path, where[i]));
            cr_assert_eq(truncate(s->log_path, 0), 0);
            cr_assert_not(harness_server_restart_try(s, 10000),
                          "allotd started with a page of garbage over %s (seed %u)", where[i],
                          seed);
            char *log = harness_server_log_read(s);
            cr_assert(strstr(log, "event=listening") == NULL, "%s", log);
            cr_assert(s->exit_status == 1 && (strstr(log, "recovery_failed") != NULL ||
                                              strstr(log, "store_damaged") != NULL),
                      "exit %d without a reason:\n%s", s->exit_status, log);
            free(log);
        }
    }
    /* The undamaged copy still has every SKU. */
    data_dir_copy(pristine, s->data_dir);
    harness_server_restart(s);
    c = harness_connect(s);
    cr_assert_eq(on_hand_of(c, "SKU-002999"), 100 + 2999);
    allot_reply_t reply = {0};
    harness_call_ok(c, "server.info", "{}", &reply);
    cr_assert_eq(allot_object_map_get(&reply.result, "skus")->via.i64, 3000);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    char command[400];
    snprintf(command, sizeof(command), "rm -rf '%s'", pristine);
    cr_assert_eq(system(command), 0);
    harness_server_destroy(s);
}

/* ---- the WAL --------------------------------------------------------------------------------- */

/* Pipelined stock.adjust +1 of A@W1, keys prefix-first..; all must be acknowledged. */
static void adjusts(allot_client_t *c, const char *prefix, int first, int count)
{
    char params[160];
    for (int i = 0; i < count; i++) {
        snprintf(params, sizeof(params),
                 "{\"sku\":\"A\",\"location\":\"W1\",\"delta\":1,\"key\":\"%s-%d\"}", prefix,
                 first + i);
        cr_assert_eq(allot_client_send_json(c, "stock.adjust", params, NULL), 0);
    }
    allot_reply_t reply = {0};
    for (int i = 0; i < count; i++) {
        cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
        cr_assert_not(reply.is_error, "%s: %s", reply.code, reply.message);
    }
    allot_reply_free(&reply);
}

/* Segment paths of s's WAL, oldest first (at most max). */
static int segments_of(const harness_server_t *s, char (*paths)[400], int max)
{
    char dir[300];
    harness_server_path(s, "wal", dir, sizeof(dir));
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    cr_assert_geq(n, 0);
    int count = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (count < max && strlen(name) == 24 && strncmp(name, "wal-", 4) == 0 &&
            strcmp(name + 20, ".log") == 0)
            snprintf(paths[count++], 400, "%s/%.24s", dir, name);
        free(names[i]);
    }
    free(names);
    return count;
}

/* A server with 1 MiB segments, W1, A with 1000 on hand, then a checkpoint, then `count`
 * acknowledged adjusts of +1 (several segments), killed with SIGKILL: on_hand 1000 + count. */
static harness_server_t *wal_world(int count)
{
    harness_server_t *s = harness_server_start(
        "--wal-segment-bytes 1048576 --checkpoint-interval-s 0 --checkpoint-wal-bytes 0");
    allot_client_t *c = harness_connect(s);
    allot_client_set_timeout(c, 30000);
    write_ok(c, "location.put", "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4}");
    write_ok(c, "stock.set", "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":1000}");
    adjusts(c, "early", 0, 2000);
    write_ok(c, "server.checkpoint", "{}");
    for (int first = 0; first < count - 2000; first += 2000)
        adjusts(c, "late", first, count - 2000 - first < 2000 ? count - 2000 - first : 2000);
    cr_assert_eq(on_hand_of(c, "A"), 1000 + count);
    allot_client_close(c);
    harness_server_kill9(s);
    return s;
}

/* Start with --accept-data-loss (which must start and log the loss), check on_hand, stop, and
 * start once more without it (the log was made whole). */
static void accept_loss_and_restart(harness_server_t *s, int64_t on_hand_min, int64_t on_hand_max)
{
    char args[600];
    snprintf(args, sizeof(args),
             "--data-dir %s --wal-segment-bytes 1048576 --checkpoint-interval-s 0 "
             "--checkpoint-wal-bytes 0 --accept-data-loss",
             s->data_dir);
    harness_server_t *accepted = harness_server_start(args);
    char *log = harness_server_log_read(accepted);
    cr_assert(strstr(log, "wal_data_loss_accepted") != NULL, "%s", log);
    free(log);
    allot_client_t *c = harness_connect(accepted);
    int64_t on_hand = on_hand_of(c, "A");
    cr_assert(on_hand >= on_hand_min && on_hand <= on_hand_max, "on_hand %lld", (long long)on_hand);
    adjusts(c, "after-loss", 0, 100);
    allot_client_close(c);
    harness_server_kill9(accepted);
    harness_server_restart(accepted); /* no flag: the log is whole again */
    c = harness_connect(accepted);
    cr_assert_eq(on_hand_of(c, "A"), on_hand + 100);
    allot_client_close(c);
    harness_server_stop(accepted);
    harness_server_destroy(accepted); /* removes its own directory (its log), not s's */
}

Test(damaged_files, a_deleted_newest_wal_segment_refuses_the_start, .timeout = 120)
{
    harness_server_t *s = wal_world(40000);
    char paths[64][400];
    int n = segments_of(s, paths, 64);
    cr_assert_geq(n, 3, "the writes span several segments");
    cr_assert_eq(unlink(paths[n - 1]), 0);
    const char *name = strrchr(paths[n - 1], '/') + 1;
    assert_start_refused(s, name);
    assert_start_refused(s, "is missing");
    accept_loss_and_restart(s, 1000 + 2000, 1000 + 40000 - 1);
    harness_server_destroy(s);
}

Test(damaged_files, a_wal_whose_segments_were_all_deleted_refuses_the_start, .timeout = 120)
{
    /* Before the first checkpoint: only wal-end says there was a log. */
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    write_ok(c, "location.put", "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4}");
    write_ok(c, "stock.set", "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":1000}");
    adjusts(c, "k", 0, 500);
    allot_client_close(c);
    harness_server_kill9(s);
    char paths[64][400];
    int n = segments_of(s, paths, 64);
    for (int i = 0; i < n; i++)
        cr_assert_eq(unlink(paths[i]), 0);
    assert_start_refused(s, "is missing");
    harness_server_destroy(s);

    /* After checkpoints, the whole wal/ directory gone: the checkpoint says records existed. */
    s = wal_world(6000);
    char command[600];
    snprintf(command, sizeof(command), "rm -rf '%s/wal'", s->data_dir);
    cr_assert_eq(system(command), 0);
    assert_start_refused(s, "the log was deleted");
    accept_loss_and_restart(s, 1000 + 2000, 1000 + 2000);
    harness_server_destroy(s);
}

/* The end of the valid records of a segment file (they start after the header, whose size is
 * at byte 12). */
static uint64_t records_end(const uint8_t *data, size_t bytes, uint64_t *last_lsn)
{
    uint64_t off = data[12];
    wal_record_t record;
    const char *reason;
    while (wal_record_decode(data + off, bytes - off, &record, &reason) == 1) {
        *last_lsn = record.lsn;
        off += record.record_bytes;
    }
    return off;
}

Test(damaged_files, a_zeroed_block_a_third_into_the_newest_wal_segment_refuses_the_start,
     .timeout = 120)
{
    harness_server_t *s = wal_world(30000);
    char paths[64][400];
    int n = segments_of(s, paths, 64);
    size_t bytes;
    uint8_t *data = file_load(paths[n - 1], &bytes);
    uint64_t last_lsn = 0;
    uint64_t end = records_end(data, bytes, &last_lsn);
    cr_assert_gt(end, 3 * 4096, "the newest segment holds a few blocks of records");
    uint64_t hole = (end / 3) & ~4095ull;
    static const uint8_t zeros[4096];
    file_write_at(paths[n - 1], zeros, sizeof(zeros), hole);
    free(data);
    assert_start_refused(s, strrchr(paths[n - 1], '/') + 1);
    assert_start_refused(s, "synced LSN");
    accept_loss_and_restart(s, 1000 + 2000, 1000 + 30000 - 1);
    harness_server_destroy(s);
}

Test(damaged_files, a_genuine_torn_tail_still_recovers_every_acknowledged_write, .timeout = 120)
{
    harness_server_t *s = wal_world(6000);
    char paths[64][400];
    int n = segments_of(s, paths, 64);
    size_t bytes;
    uint8_t *data = file_load(paths[n - 1], &bytes);
    uint64_t last_lsn = 0;
    uint64_t end = records_end(data, bytes, &last_lsn);
    /* The write in flight at the crash: the first 30 bytes of a record with the next LSN. */
    uint8_t torn[30] = {40, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        torn[4 + i] = (uint8_t)((last_lsn + 1) >> (8 * i));
    memset(torn + 12, 0x5A, sizeof(torn) - 12);
    file_write_at(paths[n - 1], torn, sizeof(torn), end);
    free(data);
    cr_assert_eq(truncate(s->log_path, 0), 0);
    harness_server_restart(s);
    char *log = harness_server_log_read(s);
    cr_assert(strstr(log, "wal_torn_tail") != NULL, "%s", log);
    free(log);
    allot_client_t *c = harness_connect(s);
    cr_assert_eq(on_hand_of(c, "A"), 1000 + 6000);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
