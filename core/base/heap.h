/* heap.h - an indexed (4-ary) min-heap of 32-bit item indices, keyed inline.
 *
 * Contract: the caller owns the items; the heap stores, for each item, its index and a copy of
 * its ordering key (a 16-byte allot_heap_entry_t), so that sift-up and sift-down compare entries
 * without touching the items. The heap asks for an item's key (key_cb) when the item is pushed
 * and when allot_heap_update_at() says it changed; in between, the caller must not change the key
 * of an item in the heap. The heap tells the caller where each item sits (position_set_cb) so
 * that it can be removed or re-keyed in O(log n) without a search.
 *
 * Order: by key_ms, then tie (unsigned), then the caller's strict-weak tie_less_cb, which the
 * heap calls only for two entries whose key fields are both equal. So the caller's whole order
 * must refine the fields: if a's fields are below b's, a sorts before b. Ties must be broken by
 * the caller (e.g. by id) for the order to be deterministic: derive the tie field from the item's
 * persisted content, never from insertion order (a checkpoint load inserts in key order, not in
 * the live run's order). allot_heap_tie_set() stores the first 4 bytes of an id big-endian and
 * zero-padded, which sorts like state_id_compare() (memcmp, then the shorter first) wherever
 * those prefixes differ; ids sharing their first 4 bytes (or differing only by trailing NUL
 * bytes) go to tie_less_cb. An entry is 16 bytes (the key, the tie, the item): a heap of a
 * million items is 16 MB, and four children are 64 bytes. allot_heap_reserve() makes the next
 * `extra` pushes infallible; once the entries are a mapping of huge pages it grows
 * allot_pages_lead_items() before they are full, and pushes report their fill
 * (allot_pages_filled), so the pages ahead can be faulted in off the loop (core/pages.h).
 * Errors: ALLOT_ENOMEM. Internal to core/; libc only.
 */
#ifndef ALLOT_CORE_HEAP_H
#define ALLOT_CORE_HEAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct allot_heap_entry {
    int64_t key_ms; /* first key (e.g. expires_at_ms) */
    uint32_t tie;   /* then this: allot_heap_tie_set(), or the caller's own; 0 if unset */
    uint32_t item;  /* set by the heap */
} allot_heap_entry_t;

/* Fill entry->key_ms and (if it helps) entry->tie for item. */
typedef void (*allot_heap_key_cb)(const void *ctx, uint32_t item, allot_heap_entry_t *entry);
/* Order of two items whose entries have equal key_ms and tie. */
typedef bool (*allot_heap_tie_less_cb)(const void *ctx, uint32_t a, uint32_t b);
typedef void (*allot_heap_position_set_cb)(void *ctx, uint32_t item, uint32_t position);

typedef struct allot_heap {
    allot_heap_entry_t *entries;
    uint32_t count;
    uint32_t capacity;
    uint32_t count_high; /* the most entries since the last growth (fill reports, core/pages.h) */
    allot_heap_key_cb key;
    allot_heap_tie_less_cb tie_less;
    allot_heap_position_set_cb position_set;
    void *ctx;
} allot_heap_t;

void allot_heap_init(allot_heap_t *heap, allot_heap_key_cb key, allot_heap_tie_less_cb tie_less,
                     allot_heap_position_set_cb position_set, void *ctx);
void allot_heap_free(allot_heap_t *heap);
int allot_heap_reserve(allot_heap_t *heap, uint32_t extra);
int allot_heap_push(allot_heap_t *heap, uint32_t item);
/* The smallest item; the heap must not be empty. */
uint32_t allot_heap_top(const allot_heap_t *heap);
/* The smallest item's key_ms (as key_cb gave it), read from the heap itself; not empty. */
int64_t allot_heap_top_key_ms(const allot_heap_t *heap);
/* Remove the item at `position` (as reported by position_set_cb). */
void allot_heap_remove_at(allot_heap_t *heap, uint32_t position);
/* Re-read the key of the item at `position` (key_cb) and restore order. */
void allot_heap_update_at(allot_heap_t *heap, uint32_t position);
/* Set entry->tie to the first 4 bytes of id, big-endian, zero-padded. */
void allot_heap_tie_set(allot_heap_entry_t *entry, const char *id, uint32_t id_len);

#endif
