/* test_core_hash.c - index tables, haversine distances and UTF-8 checks of ids (the heap:
 * test_core_heap.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/geo.h"
#include "core/base/hash.h"
#include "core/common.h"
#include "core/errors.h"

static uint32_t keys[5000];

static uint32_t find(const allot_hash_t *t, uint32_t key)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(t, allot_hash_bytes(&key, sizeof(key)), &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(t, &probe)) != ALLOT_HASH_NONE)
        if (keys[i] == key)
            return i;
    return ALLOT_HASH_NONE;
}

Test(hash, insert_find_remove_keeps_every_other_key_reachable)
{
    allot_hash_t t;
    allot_hash_init(&t);
    for (uint32_t i = 0; i < 5000; i++) {
        keys[i] = i * 7919u;
        cr_assert_eq(allot_hash_insert(&t, allot_hash_bytes(&keys[i], 4), i), 0);
    }
    cr_assert_eq(t.count, 5000);
    for (uint32_t i = 0; i < 5000; i += 2)
        allot_hash_remove(&t, allot_hash_bytes(&keys[i], 4), i);
    for (uint32_t i = 0; i < 5000; i++)
        cr_assert_eq(find(&t, keys[i]), i % 2 ? i : ALLOT_HASH_NONE, "key %u", i);
    allot_hash_free(&t);
    cr_assert_eq(find(&t, 1), ALLOT_HASH_NONE, "an empty table finds nothing");
}

Test(hash, colliding_hashes_are_all_probed)
{
    allot_hash_t t;
    allot_hash_init(&t);
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_eq(allot_hash_insert(&t, 42, i), 0);
    allot_hash_remove(&t, 42, 50);
    allot_hash_probe_t probe;
    allot_hash_probe_start(&t, 42, &probe);
    uint32_t seen = 0, i;
    while ((i = allot_hash_probe_next(&t, &probe)) != ALLOT_HASH_NONE) {
        cr_assert_neq(i, 50);
        seen++;
    }
    cr_assert_eq(seen, 99);
    allot_hash_free(&t);
}

Test(hash, arena_copies_are_stable_and_terminated)
{
    allot_arena_t arena;
    allot_arena_init(&arena);
    const char *first = allot_arena_copy(&arena, "abc", 3);
    for (int i = 0; i < 10000; i++)
        cr_assert_not_null(allot_arena_copy(&arena, "0123456789", 10));
    cr_assert_str_eq(first, "abc");
    allot_arena_free(&arena);
}

Test(geo, haversine_known_distances)
{
    cr_assert_float_eq(allot_geo_distance_km(0, 0, 0, 0), 0.0, 1e-9);
    /* Berlin - Munich ~ 504 km */
    double d = allot_geo_distance_km(52.5200, 13.4050, 48.1351, 11.5820);
    cr_assert(d > 500 && d < 508, "%f", d);
    /* quarter of a great circle */
    cr_assert_float_eq(allot_geo_distance_km(0, 0, 0, 90), 6371.0088 * M_PI / 2, 1e-6);
    cr_assert_float_eq(allot_geo_distance_km(90, 0, -90, 0), 6371.0088 * M_PI, 1e-6);
}

/* The UTF-8 check, with the bad bytes at every offset (the first eight-byte words take a
 * faster path for ASCII). */
Test(utf8, valid_and_invalid_sequences_at_every_offset)
{
    static const struct {
        const char *bytes;
        bool valid;
    } tails[] = {
        {"", true},
        {"\xc3\xa9", true},            /* e acute */
        {"\xe2\x82\xac", true},        /* euro sign */
        {"\xf0\x9f\x98\x80", true},    /* an emoji */
        {"\x80", false},                /* a lone continuation byte */
        {"\xc3", false},                /* cut short */
        {"\xc0\xaf", false},            /* overlong */
        {"\xe0\x80\xaf", false},        /* overlong */
        {"\xed\xa0\x80", false},        /* a surrogate */
        {"\xf4\x90\x80\x80", false},    /* above U+10FFFF */
        {"\xff", false},
    };
    char buffer[64];
    for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
        size_t tail_len = strlen(tails[t].bytes);
        for (size_t ascii = 0; ascii <= 24; ascii++) {
            for (size_t after = 0; after <= 9; after += 9) { /* ASCII after the tail, or none */
                memset(buffer, 'a', sizeof(buffer));
                memcpy(buffer + ascii, tails[t].bytes, tail_len);
                size_t len = ascii + tail_len + after;
                cr_assert_eq(allot_utf8_valid(buffer, len), tails[t].valid,
                             "tail %zu after %zu ASCII bytes, %zu after", t, ascii, after);
            }
        }
    }
}
