/* heap.c - indexed binary min-heap (sift up/down, position callbacks). */
#include "heap.h"

#include <assert.h>
#include <stdlib.h>

#include "errors.h"

void allot_heap_init(allot_heap_t *heap, allot_heap_less_cb less,
                     allot_heap_position_set_cb position_set, void *ctx)
{
    heap->items = NULL;
    heap->count = 0;
    heap->capacity = 0;
    heap->less = less;
    heap->position_set = position_set;
    heap->ctx = ctx;
}

void allot_heap_free(allot_heap_t *heap)
{
    free(heap->items);
    heap->items = NULL;
    heap->count = heap->capacity = 0;
}

int allot_heap_reserve(allot_heap_t *heap, uint32_t extra)
{
    uint64_t needed = (uint64_t)heap->count + extra;
    if (needed <= heap->capacity)
        return 0;
    uint64_t capacity = heap->capacity ? heap->capacity : 16;
    while (capacity < needed)
        capacity *= 2;
    if (capacity > UINT32_MAX)
        return ALLOT_ENOMEM;
    uint32_t *items = realloc(heap->items, capacity * sizeof(*items));
    if (items == NULL)
        return ALLOT_ENOMEM;
    heap->items = items;
    heap->capacity = (uint32_t)capacity;
    return 0;
}

static void heap_place(allot_heap_t *heap, uint32_t position, uint32_t item)
{
    heap->items[position] = item;
    heap->position_set(heap->ctx, item, position);
}

static uint32_t heap_sift_up(allot_heap_t *heap, uint32_t position)
{
    uint32_t item = heap->items[position];
    while (position > 0) {
        uint32_t parent = (position - 1) / 2;
        if (!heap->less(heap->ctx, item, heap->items[parent]))
            break;
        heap_place(heap, position, heap->items[parent]);
        position = parent;
    }
    heap_place(heap, position, item);
    return position;
}

static void heap_sift_down(allot_heap_t *heap, uint32_t position)
{
    uint32_t item = heap->items[position];
    for (;;) {
        uint32_t child = 2 * position + 1;
        if (child >= heap->count)
            break;
        if (child + 1 < heap->count &&
            heap->less(heap->ctx, heap->items[child + 1], heap->items[child]))
            child++;
        if (!heap->less(heap->ctx, heap->items[child], item))
            break;
        heap_place(heap, position, heap->items[child]);
        position = child;
    }
    heap_place(heap, position, item);
}

int allot_heap_push(allot_heap_t *heap, uint32_t item)
{
    int rc = allot_heap_reserve(heap, 1);
    if (rc != 0)
        return rc;
    heap->items[heap->count] = item;
    heap->count++;
    heap_sift_up(heap, heap->count - 1);
    return 0;
}

uint32_t allot_heap_top(const allot_heap_t *heap)
{
    assert(heap->count > 0);
    return heap->items[0];
}

void allot_heap_remove_at(allot_heap_t *heap, uint32_t position)
{
    assert(position < heap->count);
    heap->count--;
    if (position == heap->count)
        return;
    heap->items[position] = heap->items[heap->count];
    allot_heap_update_at(heap, position);
}

void allot_heap_update_at(allot_heap_t *heap, uint32_t position)
{
    assert(position < heap->count);
    if (heap_sift_up(heap, position) == position)
        heap_sift_down(heap, position);
}
