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
