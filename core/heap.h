/* heap.h - an indexed binary min-heap of 32-bit item indices.
 *
 * Contract: the caller owns the items; the heap stores their indices and tells the caller where
 * each item sits (position_set_cb) so that it can be removed or re-keyed in O(log n) without a
 * search. Ordering is the caller's strict-weak `less_cb`; ties must be broken by the caller
 * (e.g. by id) for the order to be deterministic. allot_heap_reserve() makes the next `extra`
 * pushes infallible. Errors: ALLOT_ENOMEM. Internal to core/; libc only.
 */
#ifndef ALLOT_CORE_HEAP_H
#define ALLOT_CORE_HEAP_H

#include <stdbool.h>
#include <stdint.h>

typedef bool (*allot_heap_less_cb)(const void *ctx, uint32_t a, uint32_t b);
typedef void (*allot_heap_position_set_cb)(void *ctx, uint32_t item, uint32_t position);

typedef struct allot_heap {
    uint32_t *items;
    uint32_t count;
    uint32_t capacity;
    allot_heap_less_cb less;
    allot_heap_position_set_cb position_set;
    void *ctx;
} allot_heap_t;

void allot_heap_init(allot_heap_t *heap, allot_heap_less_cb less,
                     allot_heap_position_set_cb position_set, void *ctx);
void allot_heap_free(allot_heap_t *heap);
int allot_heap_reserve(allot_heap_t *heap, uint32_t extra);
int allot_heap_push(allot_heap_t *heap, uint32_t item);
/* The smallest item; the heap must not be empty. */
uint32_t allot_heap_top(const allot_heap_t *heap);
/* Remove the item at `position` (as reported by position_set_cb). */
void allot_heap_remove_at(allot_heap_t *heap, uint32_t position);
/* Restore order after the key of the item at `position` changed. */
void allot_heap_update_at(allot_heap_t *heap, uint32_t position);

#endif
