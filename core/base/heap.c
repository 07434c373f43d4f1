/* heap.c - indexed 4-ary min-heap with inline keys (sift up/down, position callbacks).
 *
 * Four children per node (the children of i are 4i+1 .. 4i+4, 64 bytes of entries): half
 * the depth of a binary heap, so a removal moves half as many entries and makes half as many
 * position_set calls, each of which writes to an item somewhere in the caller's memory. */
#include "core/base/heap.h"

#include <assert.h>
#include <stdlib.h>

#include "core/pages.h"
#include "core/errors.h"

_Static_assert(sizeof(allot_heap_entry_t) == 16, "key_ms, 4 tie bytes and the item index");

void allot_heap_init(allot_heap_t *heap, allot_heap_key_cb key, allot_heap_tie_less_cb tie_less,
                     allot_heap_position_set_cb position_set, void *ctx)
{
    assert(key != NULL && tie_less != NULL && position_set != NULL);
    heap->entries = NULL;
    heap->count = 0;
    heap->capacity = 0;
    heap->count_high = 0;
    heap->key = key;
    heap->tie_less = tie_less;
    heap->position_set = position_set;
    heap->ctx = ctx;
}

void allot_heap_free(allot_heap_t *heap)
{
    allot_pages_free(heap->entries, (size_t)heap->capacity * sizeof(*heap->entries));
    heap->entries = NULL;
    heap->count = heap->capacity = heap->count_high = 0;
}

int allot_heap_reserve(allot_heap_t *heap, uint32_t extra)
{
    uint64_t needed = (uint64_t)heap->count + extra;
    /* pushes fill the entries in order: grow a lead ahead of the end (core/pages.h); a growth
     * that fails before the room is gone fails nothing */
    uint64_t wanted = needed + allot_pages_lead_items(heap->capacity, sizeof(*heap->entries));
    if (wanted <= heap->capacity)
        return 0;
    uint64_t capacity = heap->capacity ? heap->capacity : 16;
    while (capacity < wanted)
        capacity *= 2;
    if (capacity > UINT32_MAX)
        return needed <= heap->capacity ? 0 : ALLOT_ENOMEM;
    allot_heap_entry_t *entries =
        allot_pages_resize(heap->entries, (size_t)heap->capacity * sizeof(*entries),
                           capacity * sizeof(*entries), allot_pages_lead_bytes(sizeof(*entries)));
    if (entries == NULL)
        return needed <= heap->capacity ? 0 : ALLOT_ENOMEM;
    heap->entries = entries;
    heap->capacity = (uint32_t)capacity;
    heap->count_high = heap->count;
    return 0;
}

static bool heap_less(const allot_heap_t *heap, const allot_heap_entry_t *a,
                      const allot_heap_entry_t *b)
{
    if (a->key_ms != b->key_ms)
        return a->key_ms < b->key_ms;
    if (a->tie != b->tie)
        return a->tie < b->tie;
    return heap->tie_less(heap->ctx, a->item, b->item);
}

static void heap_place(allot_heap_t *heap, uint32_t position, const allot_heap_entry_t *entry)
{
    heap->entries[position] = *entry;
    heap->position_set(heap->ctx, entry->item, position);
}

#define HEAP_ARITY 4u

static uint32_t heap_sift_up(allot_heap_t *heap, uint32_t position)
{
    allot_heap_entry_t entry = heap->entries[position];
    while (position > 0) {
        uint32_t parent = (position - 1) / HEAP_ARITY;
        if (!heap_less(heap, &entry, &heap->entries[parent]))
            break;
        heap_place(heap, position, &heap->entries[parent]);
        position = parent;
    }
    heap_place(heap, position, &entry);
    return position;
}

static void heap_sift_down(allot_heap_t *heap, uint32_t position)
{
    allot_heap_entry_t entry = heap->entries[position];
    for (;;) {
        uint64_t first = (uint64_t)HEAP_ARITY * position + 1;
        if (first >= heap->count)
            break;
        uint32_t child = (uint32_t)first;
        uint32_t end =
            heap->count - first < HEAP_ARITY ? heap->count : (uint32_t)first + HEAP_ARITY;
        for (uint32_t c = child + 1; c < end; c++)
            if (heap_less(heap, &heap->entries[c], &heap->entries[child]))
                child = c;
        if (!heap_less(heap, &heap->entries[child], &entry))
            break;
        heap_place(heap, position, &heap->entries[child]);
        position = child;
    }
    heap_place(heap, position, &entry);
}

static void heap_key_read(const allot_heap_t *heap, uint32_t item, allot_heap_entry_t *entry)
{
    *entry = (allot_heap_entry_t){0};
    heap->key(heap->ctx, item, entry);
    entry->item = item;
}

static void heap_order_restore(allot_heap_t *heap, uint32_t position)
{
    if (heap_sift_up(heap, position) == position)
        heap_sift_down(heap, position);
}

int allot_heap_push(allot_heap_t *heap, uint32_t item)
{
    int rc = allot_heap_reserve(heap, 1);
    if (rc != 0)
        return rc;
    heap_key_read(heap, item, &heap->entries[heap->count]);
    heap->count++;
    if (heap->count > heap->count_high) { /* entries fill in order: keep the window ahead */
        allot_pages_filled(heap->entries, (size_t)heap->capacity * sizeof(*heap->entries),
                           allot_pages_lead_bytes(sizeof(*heap->entries)),
                           (size_t)heap->count_high * sizeof(*heap->entries),
                           (size_t)heap->count * sizeof(*heap->entries));
        heap->count_high = heap->count;
    }
    heap_sift_up(heap, heap->count - 1);
    return 0;
}

uint32_t allot_heap_top(const allot_heap_t *heap)
{
    assert(heap->count > 0);
    return heap->entries[0].item;
}

int64_t allot_heap_top_key_ms(const allot_heap_t *heap)
{
    assert(heap->count > 0);
    return heap->entries[0].key_ms;
}

void allot_heap_remove_at(allot_heap_t *heap, uint32_t position)
{
    assert(position < heap->count);
    heap->count--;
    if (position == heap->count)
        return;
    heap->entries[position] = heap->entries[heap->count];
    heap_order_restore(heap, position);
}

void allot_heap_update_at(allot_heap_t *heap, uint32_t position)
{
    assert(position < heap->count);
    heap_key_read(heap, heap->entries[position].item, &heap->entries[position]);
    heap_order_restore(heap, position);
}

void allot_heap_tie_set(allot_heap_entry_t *entry, const char *id, uint32_t id_len)
{
    const uint8_t *b = (const uint8_t *)id;
    uint32_t word = 0;
    for (uint32_t i = 0; i < 4; i++)
        word = word << 8 | (i < id_len ? b[i] : 0u);
    entry->tie = word;
}
