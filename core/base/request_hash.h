/* request_hash.h - the 64-bit hash that tells "same request" from "different request" for
 * idempotent writes (reserve, order.create).
 *
 * Contract: FNV-1a over a canonical byte form: integers as 8 little-endian bytes, strings as
 * their length then their bytes, doubles as their IEEE-754 bits with -0.0 folded into 0.0.
 * The value is stored in event records, so the encoding must never change (a new scheme needs
 * a new event format version). Internal to core/; libc only; no state.
 */
#ifndef ALLOT_CORE_REQUEST_HASH_H
#define ALLOT_CORE_REQUEST_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

#define REQUEST_HASH_SEED 0xcbf29ce484222325ull

typedef struct request_hash {
    uint64_t value;
} request_hash_t;

static inline request_hash_t request_hash_start(void)
{
    return (request_hash_t){REQUEST_HASH_SEED};
}

void request_hash_bytes(request_hash_t *hash, const void *data, size_t len);
void request_hash_u64(request_hash_t *hash, uint64_t value);
void request_hash_str(request_hash_t *hash, allot_str_t s);
void request_hash_double(request_hash_t *hash, double value);

#endif
