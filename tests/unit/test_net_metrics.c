/* test_net_metrics.c - server.stats latency percentiles come from the one histogram
 * (core/histogram.h) and hold its error bound. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>

#include "net/command.h"
#include "net/metrics.h"

/* map[key] of an unpacked map, or NULL. */
static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0)
            return &kv->val;
    }
    return NULL;
}

Test(metrics, server_stats_latency_percentiles_are_within_a_quarter_percent_of_the_exact_values)
{
    metrics_t m;
    cr_assert_eq(metrics_init(&m), 0);
    const command_t *ping = command_lookup("ping", 4);
    cr_assert_not_null(ping);
    /* 10.0 to 10.2 ms (a steady method): the percentiles must tell 10.1 from 10.2 ms */
    for (int round = 0; round < 100; round++)
        for (int64_t us = 10000; us < 10200; us++)
            metrics_request_record(&m, command_index(ping), us, false);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    metrics_gauges_t gauges = {0};
    metrics_pack(&m, &gauges, &pk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    cr_assert_eq(msgpack_unpack_next(&u, sbuf.data, sbuf.size, NULL), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *latency =
        map_get(map_get(map_get(&u.data, "methods"), "ping"), "latency");
    cr_assert_not_null(latency);
    const char *keys[] = {"p50_us", "p90_us", "p99_us", "p999_us"};
    const double exact[] = {10100, 10180, 10198, 10199};
    for (size_t i = 0; i < 4; i++) {
        const msgpack_object *v = map_get(latency, keys[i]);
        cr_assert_not_null(v, "%s", keys[i]);
        double got = (double)v->via.u64;
        cr_expect_leq(got > exact[i] ? got - exact[i] : exact[i] - got, exact[i] * 0.0025 + 1,
                      "%s: %g, exact %g", keys[i], got, exact[i]);
    }
    cr_expect_eq(map_get(latency, "max_us")->via.u64, 10199, "max is exact");
    cr_expect_eq(map_get(latency, "count")->via.u64, 20000);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sbuf);
    metrics_destroy(&m);
}

Test(metrics, a_run_of_requests_recorded_at_once_counts_as_each_one_recorded)
{
    metrics_t at_once, one_by_one;
    cr_assert_eq(metrics_init(&at_once), 0);
    cr_assert_eq(metrics_init(&one_by_one), 0);
    size_t ping = command_index(command_lookup("ping", 4));
    metrics_requests_record(&at_once, ping, 37, 16, 3);
    metrics_requests_record(&at_once, ping, -2, 2, 0);           /* a clock step back: 0 us */
    metrics_requests_record(&at_once, command_count(), 5, 4, 0); /* no such method: ignored */
    for (int i = 0; i < 16; i++)
        metrics_request_record(&one_by_one, ping, 37, i < 3);
    for (int i = 0; i < 2; i++)
        metrics_request_record(&one_by_one, ping, -2, false);
    const method_metrics_t *a = &at_once.methods[ping], *b = &one_by_one.methods[ping];
    cr_assert_eq(a->calls, 18);
    cr_assert_eq(a->calls, b->calls);
    cr_assert_eq(a->errors, b->errors);
    cr_assert_eq(a->latency_us.count, b->latency_us.count);
    cr_assert_eq(a->latency_us.min, b->latency_us.min);
    cr_assert_eq(a->latency_us.max, b->latency_us.max);
    cr_assert(memcmp(a->latency_us.buckets, b->latency_us.buckets, sizeof(a->latency_us.buckets)) ==
              0);
    metrics_destroy(&at_once);
    metrics_destroy(&one_by_one);
}
