/* hash.c - linear-probing index tables with backward-shift deletion, and a string arena. */
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
    table->slots = NULL;
    table->capacity = 0;
    table->count = 0;
}

void allot_hash_free(allot_hash_t *table)
{
    allot_pages_free(table->slots, (size_t)table->capacity * sizeof(*table->slots));
    allot_hash_init(table);
}

static void hash_slot_place(uint64_t *slots, uint32_t capacity, uint64_t slot)
{
    uint32_t mask = capacity - 1;
    uint32_t position = (uint32_t)(slot >> 32) & mask;
    while (slots[position] != 0)
        position = (position + 1) & mask;
    slots[position] = slot;
}

static int hash_resize(allot_hash_t *table, uint32_t capacity)
{
    assert((capacity & (capacity - 1)) == 0);
    assert(capacity > table->count);
    uint64_t *slots = allot_pages_alloc((size_t)capacity * sizeof(*slots));
    if (slots == NULL)
        return ALLOT_ENOMEM;
    for (uint32_t i = 0; i < table->capacity; i++)
        if (table->slots[i] != 0)
            hash_slot_place(slots, capacity, table->slots[i]);
    allot_pages_free(table->slots, (size_t)table->capacity * sizeof(*table->slots));
    table->slots = slots;
    table->capacity = capacity;
    return 0;
}

int allot_hash_reserve(allot_hash_t *table, uint32_t extra)
{
    uint64_t needed = (uint64_t)table->count + extra;
    uint64_t capacity = table->capacity ? table->capacity : HASH_CAPACITY_MIN;
    while (needed * 10 > capacity * 7)
        capacity *= 2;
    if (capacity > (1ull << 31))
        return ALLOT_ENOMEM;
    if (capacity == table->capacity)
        return 0;
    return hash_resize(table, (uint32_t)capacity);
}

int allot_hash_insert(allot_hash_t *table, uint32_t hash, uint32_t index)
{
    assert(index != ALLOT_HASH_NONE);
    int rc = allot_hash_reserve(table, 1);
    if (rc != 0)
        return rc;
    hash_slot_place(table->slots, table->capacity, ((uint64_t)hash << 32) | (index + 1u));
    table->count++;
    return 0;
}

void allot_hash_remove(allot_hash_t *table, uint32_t hash, uint32_t index)
{
    uint32_t mask = table->capacity - 1;
    uint64_t wanted = ((uint64_t)hash << 32) | (index + 1u);
    uint32_t position = hash & mask;
    assert(table->capacity > 0);
    while (table->slots[position] != wanted) {
        assert(table->slots[position] != 0);
        position = (position + 1) & mask;
    }
    /* Backward-shift: pull later entries of the cluster into the hole when allowed. */
    uint32_t hole = position;
    uint32_t next = (hole + 1) & mask;
    while (table->slots[next] != 0) {
        uint32_t home = (uint32_t)(table->slots[next] >> 32) & mask;
        uint32_t distance_next = (next - home) & mask;
        uint32_t distance_hole = (hole - home) & mask;
        if (distance_hole <= distance_next) {
            table->slots[hole] = table->slots[next];
            hole = next;
        }
        next = (next + 1) & mask;
    }
    table->slots[hole] = 0;
    table->count--;
}

void allot_hash_probe_start(const allot_hash_t *table, uint32_t hash, allot_hash_probe_t *probe)
{
    probe->hash = hash;
    probe->position = table->capacity ? (hash & (table->capacity - 1)) : 0;
    probe->steps = 0;
}

uint32_t allot_hash_probe_next(const allot_hash_t *table, allot_hash_probe_t *probe)
{
    if (table->capacity == 0)
        return ALLOT_HASH_NONE;
    uint32_t mask = table->capacity - 1;
    while (probe->steps < table->capacity) {
        uint64_t slot = table->slots[probe->position];
        if (slot == 0)
            return ALLOT_HASH_NONE;
        probe->position = (probe->position + 1) & mask;
        probe->steps++;
        if ((uint32_t)(slot >> 32) == probe->hash)
            return (uint32_t)slot - 1u;
    }
    return ALLOT_HASH_NONE;
}

void allot_hash_prefetch(const allot_hash_t *table, uint32_t hash)
{
    if (table->capacity != 0)
        __builtin_prefetch(&table->slots[hash & (table->capacity - 1)]);
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
