/* hash.h - open-addressing index tables, a byte hash, and an append-only string arena.
 *
 * Contract: an allot_hash_t maps a 32-bit hash to 32-bit item indices; it never stores keys.
 * The caller owns the items and compares keys itself while probing:
 *     allot_hash_probe_t probe;
 *     allot_hash_probe_start(&table, hash, &probe);
 *     for (uint32_t i; (i = allot_hash_probe_next(&table, &probe)) != ALLOT_HASH_NONE;)
 *         if (key_of(i) equals key) return i;
 * Linear probing with backward-shift deletion (no tombstones). Growth is incremental: when an
 * insert would pass 70% load, a table of twice the room (or more) is allocated and becomes the
 * one inserts go to, and the old one stays beside it while each later insert and remove moves
 * at most ALLOT_HASH_MIGRATE_SLOTS of its slots across; probes look in the new table, then in
 * the old one. No insert or remove does work proportional to the table's size (a growth costs
 * one allocation, zeroed lazily by the kernel for large tables), and the migration always ends
 * before the new table needs to grow (see allot_hash_reserve). A table that would grow into a
 * mapping of huge pages allocates its next table ahead, at ALLOT_HASH_SPARE_LOAD_PERCENT load,
 * and grows into it at 70%: the allocation's pages are reported fresh (core/pages.h) and faulted
 * in off the loop meanwhile, so the migration's random writes find them there. Memory: the next
 * table (twice the current one) exists from 60% load on instead of from 70%; a reserve for more
 * than the spare can hold frees it and allocates the larger table itself. allot_hash_reserve()
 * makes the next `extra` inserts infallible. An allot_arena_t stores strings that live as long as
 * the arena (interned SKU ids). Errors: ALLOT_ENOMEM only. Internal to core/; libc and the
 * libxxhash header (inlined); not thread-safe.
 */
#ifndef ALLOT_CORE_HASH_H
#define ALLOT_CORE_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALLOT_HASH_NONE UINT32_MAX

/* Old slots one insert or remove examines (moving the occupied ones) while a migration runs.
 * A migration starts at load 0.7 of the old capacity C in a new table of at least 2C, so at
 * least 0.7C inserts come before the next growth; finding where to start and scanning take at
 * most 2C slots, so any value of 3 or more finishes in time. Each slot moved is one random
 * write into the new table. */
#define ALLOT_HASH_MIGRATE_SLOTS 8u

/* The load (percent of the capacity) at which a table whose next table would be a mapping of
 * huge pages (core/pages.h) allocates that next table ahead, so that it is faulted in off the
 * loop before the growth at 70% starts the migration's random writes into it. */
#define ALLOT_HASH_SPARE_LOAD_PERCENT 60u

typedef struct allot_hash {
    uint64_t *slots;   /* (hash << 32) | (index + 1); 0 = empty. Inserts go here. */
    uint32_t capacity; /* power of two, or 0 */
    uint32_t count;    /* entries in both tables */
    /* The table being migrated from (NULL when none). Its slots from migrate_start through
     * migrate_start + migrate_scanned - 1 (wrapping) are empty, scanned ones; migrate_start was
     * empty when the scan began, so no probe in the old table wraps across it. A probe whose
     * home lies in the scanned run starts right after it. */
    uint64_t *old_slots;
    uint32_t old_capacity;
    uint32_t old_count;
    uint32_t migrate_start;
    uint32_t migrate_scanned;   /* 0 while still looking for an empty slot to start at */
    uint32_t migrate_slots_max; /* the most old slots one call has examined (tests, stats) */
    /* The next table, allocated ahead (NULL when none): its capacity is twice the current one. */
    uint64_t *spare_slots;
} allot_hash_t;

typedef struct allot_hash_probe {
    uint32_t position;
    uint32_t hash;
    uint32_t steps; /* slots looked at, in both tables */
    bool in_old;    /* the new table is done; looking in the one being migrated from */
} allot_hash_probe_t;

/* 32-bit hash of bytes (XXH3-64 folded); stable across runs and platforms. In memory only:
 * nothing stores it, so it may change between versions. */
uint32_t allot_hash_bytes(const void *data, size_t len);

void allot_hash_init(allot_hash_t *table);
void allot_hash_free(allot_hash_t *table);

/* Make room so that `extra` more inserts cannot fail. When that needs a larger table while a
 * migration is still in flight (only a reserve for more than the new table's remaining room
 * can), the migration is finished first, in this call. */
int allot_hash_reserve(allot_hash_t *table, uint32_t extra);

/* Insert (hash, index); the caller guarantees the key is not present. Grows when needed and
 * moves a bounded share of a migration in flight. */
int allot_hash_insert(allot_hash_t *table, uint32_t hash, uint32_t index);

/* Remove (hash, index); it must be present. Also moves a bounded share of a migration. */
void allot_hash_remove(allot_hash_t *table, uint32_t hash, uint32_t index);

void allot_hash_probe_start(const allot_hash_t *table, uint32_t hash, allot_hash_probe_t *probe);

/* Next candidate index whose stored hash equals the probe's, or ALLOT_HASH_NONE. Each present
 * entry is a candidate exactly once (in whichever table holds it); the table must not change
 * while a probe runs. */
uint32_t allot_hash_probe_next(const allot_hash_t *table, allot_hash_probe_t *probe);

/* For lookups that load ahead of use (batches, replay): start loading the slot where a probe
 * for `hash` begins, and later take its first candidate (the likely hit; the caller still
 * compares keys, and a hash collision takes the full probe). */
void allot_hash_prefetch(const allot_hash_t *table, uint32_t hash);
uint32_t allot_hash_first(const allot_hash_t *table, uint32_t hash);

/* True while entries are still being moved from an old table (for tests and stats). */
bool allot_hash_migrating(const allot_hash_t *table);

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
