/* request_hash.c - FNV-1a over the canonical form of a request (see request_hash.h). */
#include "core/base/request_hash.h"

#include <string.h>

#include "core/base/buffer.h"

void request_hash_bytes(request_hash_t *hash, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        hash->value ^= p[i];
        hash->value *= 0x100000001b3ull;
    }
}

void request_hash_u64(request_hash_t *hash, uint64_t value)
{
    uint8_t raw[8];
    allot_u64_store_le(raw, value);
    request_hash_bytes(hash, raw, 8);
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
