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
