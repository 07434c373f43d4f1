/* request_hash.c - FNV-1a over the canonical form of a request (see request_hash.h). */
#include "core/base/request_hash.h"

#include <string.h>

#define REQUEST_HASH_PRIME 0x100000001b3ull

void request_hash_bytes(request_hash_t *hash, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = hash->value; /* in a register: p may alias *hash */
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= REQUEST_HASH_PRIME;
    }
    hash->value = h;
}

/* FNV_PRIME^k: k zero bytes in a row are k multiplications by the prime (x ^ 0 == x). */
#define PRIME_2 (REQUEST_HASH_PRIME * REQUEST_HASH_PRIME)
#define PRIME_4 (PRIME_2 * PRIME_2)
static const uint64_t prime_powers[9] = {1u,
                                         REQUEST_HASH_PRIME,
                                         PRIME_2,
                                         PRIME_2 *REQUEST_HASH_PRIME,
                                         PRIME_4,
                                         PRIME_4 *REQUEST_HASH_PRIME,
                                         PRIME_4 *PRIME_2,
                                         PRIME_4 *PRIME_2 *REQUEST_HASH_PRIME,
                                         PRIME_4 *PRIME_4};

/* The same value as hashing the 8 little-endian bytes one by one: the low bytes up to the
 * highest non-zero one step by step, the zero bytes above it in one multiplication (a request's
 * integers are mostly counts and flags under 256: 1 step and 1 multiplication, not 8 steps). */
void request_hash_u64(request_hash_t *hash, uint64_t value)
{
    uint32_t zero_bytes = value == 0 ? 8 : (uint32_t)__builtin_clzll(value) / 8;
    uint64_t h = hash->value;
    for (uint32_t i = 0; i < 8 - zero_bytes; i++) {
        h ^= (value >> (8 * i)) & 0xffu;
        h *= REQUEST_HASH_PRIME;
    }
    hash->value = h * prime_powers[zero_bytes];
}

void request_hash_str(request_hash_t *hash, allot_str_t s)
{
    request_hash_u64(hash, s.len);
    request_hash_bytes(hash, s.ptr, s.len);
}

void request_hash_double(request_hash_t *hash, double value)
{
    uint64_t bits;
    if (value == 0.0)
        value = 0.0; /* -0.0 and 0.0 are the same place */
    memcpy(&bits, &value, sizeof(bits));
    request_hash_u64(hash, bits);
}
