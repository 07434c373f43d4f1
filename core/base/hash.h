/* hash.h - open-addressing index tables, a byte hash, and an append-only string arena.
 *
 * Contract: an allot_hash_t maps a 32-bit hash to 32-bit item indices; it never stores keys.
 * The caller owns the items and compares keys itself while probing:
 *     allot_hash_probe_t probe;
 *     allot_hash_probe_start(&table, hash, &probe);
 *     for (uint32_t i; (i = allot_hash_probe_next(&table, &probe)) != ALLOT_HASH_NONE;)
 *         if (key_of(i) equals key) return i;
 * Linear probing with backward-shift deletion (no tombstones); the table doubles at 70% load.
 * allot_hash_reserve() makes the next `extra` inserts infallible. An allot_arena_t stores
 * strings that live as long as the arena (interned SKU ids). Errors: ALLOT_ENOMEM only.
 * Internal to core/; libc and the libxxhash header (inlined); not thread-safe.
 */
#ifndef ALLOT_CORE_HASH_H
#define ALLOT_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define ALLOT_HASH_NONE UINT32_MAX

typedef struct allot_hash {
    uint64_t *slots;   /* (hash << 32) | (index + 1); 0 = empty */
    uint32_t capacity; /* power of two, or 0 */
    uint32_t count;
} allot_hash_t;

typedef struct allot_hash_probe {
    uint32_t position;
    uint32_t hash;
    uint32_t steps;
} allot_hash_probe_t;

/* 32-bit hash of bytes (XXH3-64 folded); stable across runs and platforms. In memory only:
 * nothing stores it, so it may change between versions. */
uint32_t allot_hash_bytes(const void *data, size_t len);

void allot_hash_init(allot_hash_t *table);
void allot_hash_free(allot_hash_t *table);

/* Make room so that `extra` more inserts cannot fail. */
int allot_hash_reserve(allot_hash_t *table, uint32_t extra);

/* Insert (hash, index); the caller guarantees the key is not present. Grows when needed. */
int allot_hash_insert(allot_hash_t *table, uint32_t hash, uint32_t index);

/* Remove (hash, index); it must be present. */
void allot_hash_remove(allot_hash_t *table, uint32_t hash, uint32_t index);

void allot_hash_probe_start(const allot_hash_t *table, uint32_t hash, allot_hash_probe_t *probe);

/* Next candidate index whose stored hash equals the probe's, or ALLOT_HASH_NONE. */
uint32_t allot_hash_probe_next(const allot_hash_t *table, allot_hash_probe_t *probe);

/* For lookups that load ahead of use (batches, replay): start loading the slot where a probe
 * for `hash` begins, and later take its first candidate (the likely hit; the caller still
 * compares keys, and a hash collision takes the full probe). */
void allot_hash_prefetch(const allot_hash_t *table, uint32_t hash);
uint32_t allot_hash_first(const allot_hash_t *table, uint32_t hash);

/* ---- string arena ---------------------------------------------------------------------------- */

typedef struct allot_arena_chunk allot_arena_chunk_t;

typedef struct allot_arena {
    allot_arena_chunk_t *head;
    size_t used;     /* bytes used in head */
    size_t capacity; /* bytes available in head */
} allot_arena_t;

void allot_arena_init(allot_arena_t *arena);
void allot_arena_free(allot_arena_t *arena);

/* Copy len bytes plus a NUL; NULL when out of memory. Stable until allot_arena_free. */
const char *allot_arena_copy(allot_arena_t *arena, const char *data, size_t len);

#endif
