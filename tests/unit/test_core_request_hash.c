/* test_core_request_hash.c - the idempotency hash is stored in event records: pin its encoding. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/base/request_hash.h"

/* FNV-1a 64, straight from its definition, over an explicit byte string. */
static uint64_t fnv1a(const unsigned char *bytes, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= bytes[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

Test(request_hash, is_fnv1a_over_little_endian_lengths_and_bytes)
{
    request_hash_t h = request_hash_start();
    request_hash_u64(&h, 2);
    request_hash_str(&h, ALLOT_STR_LITERAL("AB"));
    const unsigned char expected_bytes[] = {2, 0, 0, 0, 0, 0, 0, 0, /* u64 2 */
                                            2, 0, 0, 0, 0, 0, 0, 0, 'A', 'B'};
    cr_assert_eq(h.value, fnv1a(expected_bytes, sizeof(expected_bytes)));
    cr_assert_eq(request_hash_start().value, 0xcbf29ce484222325ull);
}

Test(request_hash, negative_zero_hashes_like_zero_and_other_values_differ)
{
    request_hash_t a = request_hash_start(), b = request_hash_start(), c = request_hash_start();
    request_hash_double(&a, 0.0);
    request_hash_double(&b, -0.0);
    request_hash_double(&c, 52.37);
    cr_assert_eq(a.value, b.value);
    cr_assert_neq(a.value, c.value);
}

/* The 8 little-endian bytes of value, hashed by the definition. */
static uint64_t fnv1a_u64(uint64_t start, uint64_t value)
{
    uint64_t h = start;
    for (int i = 0; i < 8; i++) {
        h ^= (value >> (8 * i)) & 0xffu;
        h *= 0x100000001b3ull;
    }
    return h;
}

Test(request_hash, integers_of_every_byte_length_hash_as_their_eight_bytes)
{
    /* the zero bytes above an integer's highest non-zero byte are hashed in one step: check it
     * at every length (0, each power of two, each all-ones), with and without zero bytes inside */
    uint64_t values[3 * 64 + 4] = {0, UINT64_MAX, 0x0100000000000001ull, 0x00ff0000ff000000ull};
    uint32_t n = 4;
    for (int bit = 0; bit < 64; bit++) {
        values[n++] = 1ull << bit;
        values[n++] = (bit == 63 ? UINT64_MAX : (1ull << (bit + 1)) - 1);
        values[n++] = (1ull << bit) | 1u;
    }
    uint64_t x = 0x9e3779b97f4a7c15ull; /* and random ones, from a fixed xorshift */
    for (uint32_t i = 0; i < n + 1000; i++) {
        uint64_t v = i < n ? values[i] : (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x >> (x % 64));
        uint64_t start = 0xcbf29ce484222325ull ^ (i * 0x5851f42d4c957f2dull);
        request_hash_t h = {start};
        request_hash_u64(&h, v);
        cr_assert_eq(h.value, fnv1a_u64(start, v), "value 0x%llx", (unsigned long long)v);
    }
}
