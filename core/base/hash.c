/* hash.c - linear-probing index tables with backward-shift deletion and incremental growth, and
 * a string arena. */
#include "core/base/hash.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/pages.h"
#include "core/errors.h"

/* XXH3 from libxxhash, compiled in (header-only mode): ids are hashed several times per
 * request and per replayed record; XXH3 reads 8-16 bytes per step where FNV-1a read one. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define HASH_CAPACITY_MIN 16u
#define ARENA_CHUNK_BYTES (64u * 1024)

struct allot_arena_chunk {
    allot_arena_chunk_t *next;
    char data[];
};

uint32_t allot_hash_bytes(const void *data, size_t len)
{
    uint64_t h = XXH3_64bits(data, len);
    return (uint32_t)(h ^ (h >> 32));
}

void allot_hash_init(allot_hash_t *table)
{
    *table = (allot_hash_t){0};
}

/* The bytes of the spare (next) table: twice the current one's. */
static size_t hash_spare_bytes(const allot_hash_t *table)
{
    return (size_t)table->capacity * 2 * sizeof(*table->slots);
}

static void hash_spare_drop(allot_hash_t *table)
{
    allot_pages_free(table->spare_slots, hash_spare_bytes(table));
    table->spare_slots = NULL;
}

void allot_hash_free(allot_hash_t *table)
{
    allot_pages_free(table->slots, (size_t)table->capacity * sizeof(*table->slots));
    allot_pages_free(table->old_slots, (size_t)table->old_capacity * sizeof(*table->old_slots));
    allot_pages_free(table->spare_slots, hash_spare_bytes(table));
    allot_hash_init(table);
}

bool allot_hash_migrating(const allot_hash_t *table)
{
    return table->old_slots != NULL;
}

static void hash_slot_place(uint64_t *slots, uint32_t capacity, uint64_t slot)
{
    uint32_t mask = capacity - 1;
    uint32_t position = (uint32_t)(slot >> 32) & mask;
    while (slots[position] != 0)
        position = (position + 1) & mask;
    slots[position] = slot;
}

/* Where a probe for `hash` starts in the old table: its home, or the first slot after the
 * scanned run when the home lies in it (the entries that belonged there are moved, and those of
 * that home still in the old table sit right after the run). */
static uint32_t hash_old_start(const allot_hash_t *table, uint32_t hash)
{
    uint32_t mask = table->old_capacity - 1;
    uint32_t home = hash & mask;
    if (((home - table->migrate_start) & mask) < table->migrate_scanned)
        return (table->migrate_start + table->migrate_scanned) & mask;
    return home;
}

static void hash_migration_end(allot_hash_t *table)
{
    assert(table->old_count == 0);
    allot_pages_free(table->old_slots, (size_t)table->old_capacity * sizeof(*table->old_slots));
    table->old_slots = NULL;
    table->old_capacity = 0;
    table->migrate_start = table->migrate_scanned = 0;
}

/* Examine up to `budget` old slots: first look for an empty one to start at (so no probe of
 * the old table wraps across the scan's start), then move each occupied slot to the new table
 * and leave it empty. Ends the migration when the old table is empty. */
static void hash_migrate(allot_hash_t *table, uint32_t budget)
{
    if (table->old_slots == NULL)
        return;
    uint32_t mask = table->old_capacity - 1;
    uint32_t examined = 0;
    while (examined < budget && table->old_count > 0) {
        examined++;
        if (table->migrate_scanned == 0 && table->old_slots[table->migrate_start] != 0) {
            table->migrate_start = (table->migrate_start + 1) & mask;
            continue;
        }
        assert(table->migrate_scanned < table->old_capacity);
        uint32_t position = (table->migrate_start + table->migrate_scanned) & mask;
        table->migrate_scanned++;
        uint64_t slot = table->old_slots[position];
        if (slot != 0) {
            hash_slot_place(table->slots, table->capacity, slot);
            table->old_slots[position] = 0;
            table->old_count--;
        }
    }
    if (examined > table->migrate_slots_max)
        table->migrate_slots_max = examined;
    if (table->old_count == 0)
        hash_migration_end(table);
}

/* Allocate a table of `capacity` slots and make it the one inserts go to; the current one, if
 * any, becomes the old table, emptied by later calls. No migration may be in flight. */
static int hash_grow(allot_hash_t *table, uint32_t capacity)
{
    assert((capacity & (capacity - 1)) == 0);
    assert(capacity > table->count && table->old_slots == NULL);
    uint64_t *slots = NULL;
    if (table->spare_slots != NULL && capacity == 2 * (uint64_t)table->capacity)
        slots = table->spare_slots; /* allocated ahead, zeroed and (the server) faulted in */
    else
        hash_spare_drop(table);
    table->spare_slots = NULL;
    if (slots == NULL)
        slots = allot_pages_alloc((size_t)capacity * sizeof(*slots));
    if (slots == NULL)
        return ALLOT_ENOMEM;
    if (table->count > 0) {
        table->old_slots = table->slots;
        table->old_capacity = table->capacity;
        table->old_count = table->count;
        table->migrate_start = table->migrate_scanned = 0;
    } else {
        allot_pages_free(table->slots, (size_t)table->capacity * sizeof(*table->slots));
    }
    table->slots = slots;
    table->capacity = capacity;
    return 0;
}

/* From ALLOT_HASH_SPARE_LOAD_PERCENT on, allocate the next table ahead when it would be a
 * mapping (a small one comes from calloc and is cheap to touch). Best effort: without memory
 * the growth allocates it (and fails) as before. */
static void hash_spare_ahead(allot_hash_t *table, uint64_t needed)
{
    if (table->spare_slots != NULL || table->capacity == 0 ||
        hash_spare_bytes(table) < ALLOT_PAGES_HUGE_BYTES ||
        2 * (uint64_t)table->capacity > (1ull << 31) ||
        needed * 100 <= (uint64_t)table->capacity * ALLOT_HASH_SPARE_LOAD_PERCENT)
        return;
    table->spare_slots = allot_pages_alloc(hash_spare_bytes(table));
}

int allot_hash_reserve(allot_hash_t *table, uint32_t extra)
{
    uint64_t needed = (uint64_t)table->count + extra;
    uint64_t capacity = table->capacity ? table->capacity : HASH_CAPACITY_MIN;
    while (needed * 10 > capacity * 7)
        capacity *= 2;
    if (capacity > (1ull << 31))
        return ALLOT_ENOMEM;
    if (capacity == table->capacity) {
        hash_spare_ahead(table, needed);
        return 0;
    }
    /* Only a reserve beyond the new table's room gets here mid-migration (see
     * ALLOT_HASH_MIGRATE_SLOTS): finish it, one growth at a time. */
    if (table->old_slots != NULL)
        hash_migrate(table, UINT32_MAX);
    return hash_grow(table, (uint32_t)capacity);
}

int allot_hash_insert(allot_hash_t *table, uint32_t hash, uint32_t index)
{
    assert(index != ALLOT_HASH_NONE);
    int rc = allot_hash_reserve(table, 1);
    if (rc != 0)
        return rc;
    if (table->old_slots != NULL)
        hash_migrate(table, ALLOT_HASH_MIGRATE_SLOTS);
    hash_slot_place(table->slots, table->capacity, ((uint64_t)hash << 32) | (index + 1u));
    table->count++;
    return 0;
}

/* The position of `wanted` in slots probed from `start`, or ALLOT_HASH_NONE at an empty slot. */
static uint32_t hash_slot_find(const uint64_t *slots, uint32_t mask, uint32_t start,
                               uint64_t wanted)
{
    uint32_t position = start;
    while (slots[position] != wanted) {
        if (slots[position] == 0)
            return ALLOT_HASH_NONE;
        position = (position + 1) & mask;
    }
    return position;
}

/* Backward-shift deletion at `hole`: pull later entries of the cluster into the hole when their
 * probe start (from `start_of`: the home, or in the old table the home moved past the scanned
 * run) is not after it. Inlined into both callers, so the new table's loop has no branch on
 * `old`. */
static inline __attribute__((always_inline)) void
hash_slot_vacate(allot_hash_t *table, uint64_t *slots, uint32_t mask, uint32_t hole, bool old)
{
    uint32_t next = (hole + 1) & mask;
    while (slots[next] != 0) {
        uint32_t hash = (uint32_t)(slots[next] >> 32);
        uint32_t home = old ? hash_old_start(table, hash) : hash & mask;
        uint32_t distance_next = (next - home) & mask;
        uint32_t distance_hole = (hole - home) & mask;
        if (distance_hole <= distance_next) {
            slots[hole] = slots[next];
            hole = next;
        }
        next = (next + 1) & mask;
    }
    slots[hole] = 0;
}

void allot_hash_remove(allot_hash_t *table, uint32_t hash, uint32_t index)
{
    uint64_t wanted = ((uint64_t)hash << 32) | (index + 1u);
    assert(table->capacity > 0 && table->count > 0);
    uint32_t mask = table->capacity - 1;
    uint32_t position = hash_slot_find(table->slots, mask, hash & mask, wanted);
    if (position != ALLOT_HASH_NONE) {
        hash_slot_vacate(table, table->slots, mask, position, false);
    } else {
        assert(table->old_slots != NULL);
        uint32_t old_mask = table->old_capacity - 1;
        position = hash_slot_find(table->old_slots, old_mask, hash_old_start(table, hash), wanted);
        assert(position != ALLOT_HASH_NONE);
        hash_slot_vacate(table, table->old_slots, old_mask, position, true);
        table->old_count--;
    }
    table->count--;
    if (table->old_slots != NULL)
        hash_migrate(table, ALLOT_HASH_MIGRATE_SLOTS);
}

void allot_hash_probe_start(const allot_hash_t *table, uint32_t hash, allot_hash_probe_t *probe)
{
    probe->hash = hash;
    probe->position = table->capacity ? (hash & (table->capacity - 1)) : 0;
    probe->steps = 0;
    probe->in_old = false;
}

/* The next slot of `slots` from the probe's position holding its hash, or ALLOT_HASH_NONE at an
 * empty slot. */
static uint32_t hash_slots_next(const uint64_t *slots, uint32_t capacity, allot_hash_probe_t *probe)
{
    uint32_t mask = capacity - 1;
    for (uint32_t looked = 0; looked < capacity; looked++) { /* never full: ends at an empty */
        uint64_t slot = slots[probe->position];
        if (slot == 0)
            return ALLOT_HASH_NONE;
        probe->position = (probe->position + 1) & mask;
        probe->steps++;
        if ((uint32_t)(slot >> 32) == probe->hash)
            return (uint32_t)slot - 1u;
    }
    return ALLOT_HASH_NONE;
}

uint32_t allot_hash_probe_next(const allot_hash_t *table, allot_hash_probe_t *probe)
{
    if (!probe->in_old) {
        if (table->capacity == 0)
            return ALLOT_HASH_NONE;
        uint32_t index = hash_slots_next(table->slots, table->capacity, probe);
        if (index != ALLOT_HASH_NONE || table->old_slots == NULL)
            return index;
        probe->in_old = true;
        probe->position = hash_old_start(table, probe->hash);
    }
    return hash_slots_next(table->old_slots, table->old_capacity, probe);
}

void allot_hash_prefetch(const allot_hash_t *table, uint32_t hash)
{
    if (table->capacity != 0)
        __builtin_prefetch(&table->slots[hash & (table->capacity - 1)]);
    if (table->old_slots != NULL)
        __builtin_prefetch(&table->old_slots[hash_old_start(table, hash)]);
}

uint32_t allot_hash_first(const allot_hash_t *table, uint32_t hash)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(table, hash, &probe);
    return allot_hash_probe_next(table, &probe);
}

void allot_arena_init(allot_arena_t *arena)
{
    arena->head = NULL;
    arena->used = 0;
    arena->capacity = 0;
}

void allot_arena_free(allot_arena_t *arena)
{
    allot_arena_chunk_t *chunk = arena->head;
    while (chunk != NULL) {
        allot_arena_chunk_t *next = chunk->next;
        free(chunk);
        chunk = next;
    }
    allot_arena_init(arena);
}

const char *allot_arena_copy(allot_arena_t *arena, const char *data, size_t len)
{
    assert(len < ARENA_CHUNK_BYTES);
    if (arena->head == NULL || arena->used + len + 1 > arena->capacity) {
        allot_arena_chunk_t *chunk = malloc(sizeof(*chunk) + ARENA_CHUNK_BYTES);
        if (chunk == NULL)
            return NULL;
        chunk->next = arena->head;
        arena->head = chunk;
        arena->used = 0;
        arena->capacity = ARENA_CHUNK_BYTES;
    }
    char *out = arena->head->data + arena->used;
    memcpy(out, data, len);
    out[len] = '\0';
    arena->used += len + 1;
    return out;
}
