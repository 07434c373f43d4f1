/* test_pack.c - the allot target writes ping, avail.get and reserve byte by byte: exactly the
 * bytes msgpack-c packs for the same request, whatever the msgid's width and the request's shape;
 * cart ids are snprintf's. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

static msgpack_sbuffer sb;
static msgpack_packer pk;
static bench_config_t config;
static bench_run_t run;
static worker_t worker;
static conn_t conn;

static void begin(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    memset(&config, 0, sizeof(config));
    config.skus = 100000;
    config.skus_per_request = 1;
    run = (bench_run_t){.config = &config, .target = &bench_target_allot};
    worker = (worker_t){.run = &run, .rng = 12345};
    memset(&conn, 0, sizeof(conn));
}

static void end(void)
{
    msgpack_sbuffer_destroy(&sb);
    byte_buffer_free(&conn.out);
}

TestSuite(pack, .init = begin, .fini = end);

static void pack_str(const char *s)
{
    msgpack_pack_str_with_body(&pk, s, strlen(s));
}

/* [0, msgid, method, [{ with `fields` entries to follow */
static void expect_head(uint32_t msgid, const char *method, uint32_t fields)
{
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, msgid);
    pack_str(method);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, fields);
}

static void assert_packed_as_expected(const char *what)
{
    cr_assert_eq(conn.out.len, sb.size, "%s: %zu bytes packed, msgpack-c packs %zu", what,
                 conn.out.len, sb.size);
    cr_assert(memcmp(conn.out.data, sb.data, sb.size) == 0, "%s: the bytes differ", what);
}

Test(pack, ping_is_msgpack_c_s_bytes_for_every_msgid_width)
{
    /* the slot sits in the low 12 bits: the first msgid is 4096 + slot (uint16), later ones
     * grow; a msgid past 65535 takes the uint32 form */
    const uint32_t before[] = {0, 0x0000f000, 0x7fff0000, 0xfffff000};
    for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
        session_t s = {.op = OP_PING, .msgid = before[i]};
        conn.out.len = 0;
        sb.size = 0;
        cr_assert_eq(bench_target_allot.pack(&worker, &conn, 7, &s), 0);
        cr_assert_eq(s.msgid & 0xfffu, 7u, "the slot is the msgid's low bits");
        expect_head(s.msgid, "ping", 0);
        assert_packed_as_expected("ping");
    }
}

/* avail.get of `n` SKUs: the SKUs the worker's generator picks, in its order. */
static void check_avail(uint32_t n, bool detail, bool promise)
{
    config.skus_per_request = n;
    config.detail = detail;
    config.promise = promise;
    worker_t twin = worker; /* the same generator state: the same SKUs */
    uint32_t skus[BENCH_SKUS_PER_REQUEST_MAX];
    bench_random_skus(&twin, skus, n);
    session_t s = {.op = OP_AVAIL, .msgid = 0x12345000};
    conn.out.len = 0;
    sb.size = 0;
    cr_assert_eq(bench_target_allot.pack(&worker, &conn, 5, &s), 0);
    expect_head(s.msgid, "avail.get", 1 + (detail ? 1 : 0) + (promise ? 1 : 0));
    pack_str("skus");
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        bench_sku_name(skus[i], name, sizeof(name));
        pack_str(name);
    }
    if (detail) {
        pack_str("detail");
        msgpack_pack_true(&pk);
    }
    if (promise) {
        pack_str("promise");
        msgpack_pack_true(&pk);
    }
    assert_packed_as_expected("avail.get");
}

Test(pack, avail_get_is_msgpack_c_s_bytes_for_one_sku_a_listing_and_the_largest_request)
{
    check_avail(1, false, false);
    check_avail(15, true, false); /* the largest fixarray */
    check_avail(16, false, true); /* array16 */
    check_avail(20, true, true);
    check_avail(BENCH_SKUS_PER_REQUEST_MAX, true, true);
}

Test(pack, requests_are_appended_behind_what_is_still_unsent)
{
    session_t first = {.op = OP_PING}, second = {.op = OP_AVAIL};
    cr_assert_eq(bench_target_allot.pack(&worker, &conn, 1, &first), 0);
    size_t ping_bytes = conn.out.len;
    worker_t twin = worker;
    uint32_t sku;
    bench_random_skus(&twin, &sku, 1);
    cr_assert_eq(bench_target_allot.pack(&worker, &conn, 2, &second), 0);
    expect_head(first.msgid, "ping", 0);
    expect_head(second.msgid, "avail.get", 1);
    pack_str("skus");
    msgpack_pack_array(&pk, 1);
    char name[32];
    bench_sku_name(sku, name, sizeof(name));
    pack_str(name);
    cr_assert_gt(conn.out.len, ping_bytes);
    assert_packed_as_expected("ping then avail.get");
}

/* SKU names are written two digit pairs per half: every index the catalogue may have, up to
 * the largest (whose name keeps its last 8 digits, as bench_sku_name's does), in the same bytes. */
Test(pack, avail_get_sku_names_are_bench_sku_name_s_over_the_whole_index_range)
{
    config.skus = UINT32_MAX;
    for (int round = 0; round < 4; round++)
        check_avail(BENCH_SKUS_PER_REQUEST_MAX, false, false);
    config.skus = 100000000; /* 8 digits: the high half's top pair is 99 */
    check_avail(BENCH_SKUS_PER_REQUEST_MAX, false, false);
}

/* reserve of `lines` lines: random distinct SKUs, or the flash sale's hot SKU on each */
static void check_reserve(uint8_t lines, bool flash, uint64_t cart)
{
    worker_t twin = worker;
    uint32_t skus[BENCH_LINES_MAX];
    if (!flash)
        bench_random_skus(&twin, skus, lines);
    session_t s = {.op = OP_RESERVE,
                   .kind = flash ? SCENARIO_FLASHSALE : SCENARIO_RESERVE,
                   .lines = lines,
                   .cart = cart,
                   .msgid = 0x7000};
    conn.out.len = 0;
    sb.size = 0;
    cr_assert_eq(bench_target_allot.pack(&worker, &conn, 3, &s), 0);
    expect_head(s.msgid, "reserve", 2);
    char id[BENCH_CART_NAME_BYTES];
    bench_cart_name(&run, worker.index, cart, id, sizeof(id));
    pack_str("id");
    pack_str(id);
    pack_str("lines");
    msgpack_pack_array(&pk, lines);
    for (uint32_t i = 0; i < lines; i++) {
        char name[32];
        bench_sku_name(skus[i], name, sizeof(name));
        msgpack_pack_map(&pk, 2);
        pack_str("sku");
        pack_str(flash ? run.hot_sku : name);
        pack_str("qty");
        msgpack_pack_uint8(&pk, 1);
    }
    assert_packed_as_expected(flash ? "flash sale reserve" : "reserve");
}

Test(pack, reserve_is_msgpack_c_s_bytes_for_one_line_a_cart_and_the_largest_cart)
{
    config.run_nonce = 0x1234abcd5678ef90u;
    worker.index = 3;
    check_reserve(1, false, 0);
    check_reserve(5, false, 123456789);
    check_reserve(15, false, 7);                       /* the largest fixarray */
    check_reserve(16, false, 8);                       /* array16 */
    check_reserve(BENCH_LINES_MAX, false, UINT64_MAX); /* the longest id: str8 */
    snprintf(run.hot_sku, sizeof(run.hot_sku), "FLASH-%" PRIx64, config.run_nonce);
    check_reserve(1, true, 42);
    check_reserve(3, true, 43);
    memset(run.hot_sku, 'H', sizeof(run.hot_sku) - 1); /* a hot SKU of 63 bytes: str8 */
    run.hot_sku[sizeof(run.hot_sku) - 1] = '\0';
    check_reserve(2, true, 44);
}

/* bench_cart_name writes what snprintf's "c%" PRIx64 "-%u-%" PRIu64 writes, truncation included. */
Test(pack, cart_names_are_snprintf_s_for_every_width_and_buffer_size)
{
    const uint64_t nonces[] = {0, 1, 0xf, 0x10, 0x1234abcd5678ef90u, UINT64_MAX};
    const uint32_t workers[] = {0, 9, 10, 63, UINT32_MAX};
    const uint64_t carts[] = {0, 9, 10, 99999, 100000, UINT64_MAX};
    for (int n = 0; n < 6; n++)
        for (int k = 0; k < 5; k++)
            for (int c = 0; c < 6; c++) {
                config.run_nonce = nonces[n];
                char want[BENCH_CART_NAME_BYTES], got[BENCH_CART_NAME_BYTES];
                for (size_t bytes = 1; bytes <= sizeof(want); bytes += 7) {
                    snprintf(want, bytes, "c%" PRIx64 "-%u-%" PRIu64, nonces[n], workers[k],
                             carts[c]);
                    memset(got, 'x', sizeof(got));
                    bench_cart_name(&run, workers[k], carts[c], got, bytes);
                    cr_assert_str_eq(got, want, "%zu bytes", bytes);
                }
            }
}
