/* test_events_format.c - the events store across its value formats through the real allotd:
 * events written now (format 2: the map without the pairs the store's key and time give, many
 * events in one stored run) read exactly as the same events stored by the previous version
 * (format 1: the whole map, one stored value per event), in one stream with both; and events
 * stored later than their records still there after kill -9. */
#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_reply.h"
#include "net/events_private.h"
#include "persist/event_store.h"

static void call_ok(allot_client_t *c, const char *method, const char *params)
{
    allot_reply_t r = {0};
    harness_call_ok(c, method, params, &r);
    allot_reply_free(&r);
}

/* Every event, as JSON text, and the reply's next. */
static char *stream_text(allot_client_t *c)
{
    allot_reply_t r = {0};
    harness_call_ok(c, "events.read", "{\"limit\":1000}", &r);
    char *text = harness_object_json(harness_reply_at(&r, "events"));
    allot_reply_free(&r);
    return text;
}

/* A workload that gives every kind of event a standalone server derives from requests. */
static void workload(allot_client_t *c, const char *tag)
{
    char params[512];
    snprintf(params, sizeof(params),
             "{\"id\":\"h-%s\",\"lines\":[{\"sku\":\"A\",\"qty\":2},{\"sku\":\"B\",\"qty\":1}]}",
             tag);
    call_ok(c, "reserve", params);
    snprintf(params, sizeof(params),
             "{\"id\":\"o-%s\",\"reservation\":\"h-%s\",\"customer\":"
             "\"cust-%s\"}",
             tag, tag, tag);
    call_ok(c, "order.create", params);
    snprintf(params, sizeof(params), "{\"id\":\"x-%s\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}",
             tag);
    call_ok(c, "reserve", params);
    snprintf(params, sizeof(params), "{\"id\":\"x-%s\"}", tag);
    call_ok(c, "reservation.release", params);
    call_ok(c, "stock.adjust", "{\"sku\":\"B\",\"location\":\"W1\",\"delta\":-1,\"key\":\"k\"}");
}

/* Every event of a stopped server's store, read through the store. */
typedef struct stored_events {
    msgpack_sbuffer bytes; /* each event: u64 seq, i64 at_ms, u32 len, its bytes */
    uint32_t count;
} stored_events_t;

static int stored_each(void *ctx, uint64_t seq, int64_t at_ms, const uint8_t *value, size_t len)
{
    stored_events_t *all = ctx;
    uint32_t len32 = (uint32_t)len;
    msgpack_sbuffer_write(&all->bytes, (const char *)&seq, 8);
    msgpack_sbuffer_write(&all->bytes, (const char *)&at_ms, 8);
    msgpack_sbuffer_write(&all->bytes, (const char *)&len32, 4);
    msgpack_sbuffer_write(&all->bytes, (const char *)value, len);
    all->count++;
    return 0;
}

/* The entries of the stopped server's "events" database. */
static size_t store_entries(const char *path)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat stat;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 5), 0);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "events", 0, &dbi), 0);
    cr_assert_eq(mdb_stat(txn, dbi, &stat), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return stat.ms_entries;
}

/* Rewrite the stopped server's events.lmdb as the version before issue 20 stored it: one value
 * per event (i64 at_ms, then format 1: the whole map); the count of events that were in the
 * current format. */
static uint32_t store_rewrite_as_previous(const harness_server_t *s, uint32_t *total)
{
    char path[512], data_dir[512];
    harness_server_path(s, "events.lmdb", path, sizeof(path));
    harness_server_path(s, "", data_dir, sizeof(data_dir));
    stored_events_t all = {.count = 0};
    msgpack_sbuffer_init(&all.bytes);
    event_store_t *store;
    char message[256];
    cr_assert_eq(event_store_open(data_dir, &store, message, sizeof(message)), 0, "%s", message);
    uint64_t last;
    cr_assert_eq(event_store_scan(store, 0, UINT32_MAX, stored_each, &all, &last), 0);
    event_store_close(store);
    cr_assert_lt(store_entries(path), all.count, "the server stores events in runs");
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 5), 0);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "events", 0, &dbi), 0);
    cr_assert_eq(mdb_drop(txn, dbi, 0), 0);
    static const events_filter_t everything = {0};
    msgpack_sbuffer value;
    msgpack_sbuffer_init(&value);
    uint32_t current = 0;
    const char *p = all.bytes.data;
    for (uint32_t i = 0; i < all.count; i++) {
        uint64_t seq;
        int64_t at_ms;
        uint32_t len;
        memcpy(&seq, p, 8);
        memcpy(&at_ms, p + 8, 8); /* little-endian, as this machine */
        memcpy(&len, p + 16, 4);
        const uint8_t *v = (const uint8_t *)p + 20, *map;
        p += 20 + len;
        size_t map_len;
        uint8_t type;
        allot_str_t sku;
        cr_assert(events_value_match(v, len, &everything, &type, &sku, &map, &map_len));
        current += v[0] == 2;
        value.size = 0;
        msgpack_sbuffer_write(&value, (const char *)&at_ms, 8);
        msgpack_sbuffer_write(&value, "\x01", 1);
        msgpack_sbuffer_write(&value, (const char *)v + 1, (size_t)(map - v) - 1);
        cr_assert(events_map_append(v, map, map_len, seq, at_ms, &value));
        uint8_t key_bytes[8];
        for (int b = 0; b < 8; b++)
            key_bytes[b] = (uint8_t)(seq >> (56 - 8 * b));
        MDB_val key = {8, key_bytes}, data = {value.size, value.data};
        cr_assert_eq(mdb_put(txn, dbi, &key, &data, MDB_APPEND), 0);
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    msgpack_sbuffer_destroy(&value);
    msgpack_sbuffer_destroy(&all.bytes);
    *total = all.count;
    return current;
}

Test(events_format, a_stream_stored_by_the_previous_version_reads_the_same_beside_new_events,
     .timeout = 60)
{
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    harness_put_location(c, "W1", "'type':'warehouse','lat':52.5,'lon':13.4,'priority':1");
    harness_set_stock(c, "A", "W1", 10);
    harness_set_stock(c, "B", "W1", 10);
    workload(c, "1");
    char *before = stream_text(c);
    allot_client_close(c);
    cr_assert_eq(harness_server_stop(s), 0);
    uint32_t total;
    uint32_t current = store_rewrite_as_previous(s, &total);
    cr_assert_gt(total, 10);
    cr_assert_eq(current, total, "the server stores the current format");
    harness_server_restart(s);
    c = harness_connect(s);
    char *after = stream_text(c);
    cr_assert_str_eq(after, before, "format 1 values read as the format 2 values did");
    workload(c, "2"); /* now both formats in one stream */
    char *both = stream_text(c);
    cr_assert(strncmp(both, before, strlen(before) - 1) == 0, "%s\n%s", before, both);
    cr_assert_gt(strlen(both), strlen(before) + 200);
    cr_assert(strstr(both + strlen(before) - 1, "\"id\":\"o-2\"") != NULL, "%s", both);
    free(before);
    free(after);
    free(both);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
