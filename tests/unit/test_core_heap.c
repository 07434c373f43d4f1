/* test_core_heap.c - the indexed heap with inline keys against a reference sort. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/heap.h"
#include "core/pages.h"
#include "core/state_private.h"

#define ITEMS_MAX    600u
#define ID_BYTES_MAX 128u

typedef struct item {
    int64_t key_ms;
    char id[ID_BYTES_MAX];
    uint32_t id_len;
    uint32_t position;
    bool in_heap;
} item_t;

static item_t items[ITEMS_MAX];
static uint64_t tie_less_calls;

static void item_key(const void *ctx, uint32_t item, allot_heap_entry_t *entry)
{
    (void)ctx;
    entry->key_ms = items[item].key_ms;
    allot_heap_tie_set(entry, items[item].id, items[item].id_len);
}

static int item_compare(uint32_t a, uint32_t b)
{
    const item_t *x = &items[a], *y = &items[b];
    if (x->key_ms != y->key_ms)
        return x->key_ms < y->key_ms ? -1 : 1;
    return state_id_compare(x->id, x->id_len, y->id, y->id_len);
}

/* The heap must ask only when the inline fields cannot tell the two apart. */
static bool item_tie_less(const void *ctx, uint32_t a, uint32_t b)
{
    (void)ctx;
    allot_heap_entry_t x = {0}, y = {0};
    item_key(NULL, a, &x);
    item_key(NULL, b, &y);
    cr_assert(x.key_ms == y.key_ms && x.tie == y.tie,
              "tie_less_cb called for entries the inline fields order");
    tie_less_calls++;
    return state_id_compare(items[a].id, items[a].id_len, items[b].id, items[b].id_len) < 0;
}

static void item_position_set(void *ctx, uint32_t item, uint32_t position)
{
    (void)ctx;
    items[item].position = position;
}

/* Unique ids that share 20-, 16-, 8- and 4-byte prefixes, are prefixes of each other, or differ
 * only by trailing NUL bytes (which the zero-padded inline prefix cannot see). */
static void item_id_make(uint32_t i, char *id, uint32_t *id_len)
{
    static const char shared_20[] = "cart-000000000000000";
    uint32_t n = i / 7;
    switch (i % 7) {
    case 0:
        *id_len = (uint32_t)sprintf(id, "%s%05u", shared_20, i);
        break;
    case 1:
        *id_len = (uint32_t)sprintf(id, "cart-000%u", i);
        break;
    case 2:
        *id_len = (uint32_t)sprintf(id, "cart-00000000000%u", i);
        break;
    case 3:
        *id_len = (uint32_t)sprintf(id, "%u", i);
        break;
    case 4:
        *id_len = n + 1;
        memset(id, 'x', *id_len);
        break;
    case 5:
        *id_len = n + 2;
        memset(id, 0, *id_len);
        memcpy(id, "ab", 2);
        break;
    default: /* the 21st byte is the NUL */
        *id_len = 21 + (uint32_t)sprintf(id + 21, "%u", i);
        memcpy(id, shared_20, 21);
        break;
    }
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t key_random(void)
{
    switch (rng_next() % 16) {
    case 0:
        return INT64_MIN;
    case 1:
        return INT64_MAX;
    case 2:
        return -1 - (int64_t)(rng_next() % 3);
    default:
        return (int64_t)(rng_next() % 4); /* mostly ties */
    }
}

static void items_setup(uint32_t count, uint64_t seed)
{
    rng_state = seed;
    tie_less_calls = 0;
    for (uint32_t i = 0; i < count; i++) {
        items[i] = (item_t){.key_ms = key_random()};
        item_id_make(i, items[i].id, &items[i].id_len);
    }
}

/* The smallest item in the heap by the reference order, or UINT32_MAX. */
static uint32_t reference_min(uint32_t count)
{
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < count; i++)
        if (items[i].in_heap && (best == UINT32_MAX || item_compare(i, best) < 0))
            best = i;
    return best;
}

static void heap_check(const allot_heap_t *h, uint32_t count)
{
    uint32_t in_heap = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (!items[i].in_heap)
            continue;
        in_heap++;
        cr_assert_lt(items[i].position, h->count);
        cr_assert_eq(h->entries[items[i].position].item, i, "back-link of item %u", i);
    }
    cr_assert_eq(in_heap, h->count);
    if (h->count > 0)
        cr_assert_eq(allot_heap_top(h), reference_min(count));
}

static int sort_compare(const void *a, const void *b)
{
    return item_compare(*(const uint32_t *)a, *(const uint32_t *)b);
}

/* Pop everything; the sequence must be the reference sort of what was left. */
static void heap_drain_sorted(allot_heap_t *h, uint32_t count)
{
    uint32_t expected[ITEMS_MAX], n = 0;
    for (uint32_t i = 0; i < count; i++)
        if (items[i].in_heap)
            expected[n++] = i;
    qsort(expected, n, sizeof(expected[0]), sort_compare);
    for (uint32_t k = 0; k < n; k++) {
        cr_assert_eq(allot_heap_top(h), expected[k], "pop %u of %u", k, n);
        items[expected[k]].in_heap = false;
        allot_heap_remove_at(h, 0);
    }
    cr_assert_eq(h->count, 0);
}

static uint32_t item_random(uint32_t count, bool in_heap)
{
    for (;;) {
        uint32_t i = (uint32_t)(rng_next() % count);
        if (items[i].in_heap == in_heap)
            return i;
    }
}

static void heap_random_ops(allot_heap_t *h, uint32_t count, uint32_t ops)
{
    for (uint32_t op = 0; op < ops; op++) {
        uint32_t roll = (uint32_t)(rng_next() % 8), i;
        if (h->count == 0 || (roll < 3 && h->count < count)) {
            i = item_random(count, false);
            items[i].key_ms = key_random();
            cr_assert_eq(allot_heap_push(h, i), 0);
            items[i].in_heap = true;
        } else if (roll < 5) {
            i = item_random(count, true);
            items[i].key_ms = key_random();
            allot_heap_update_at(h, items[i].position);
        } else if (roll < 7) {
            i = item_random(count, true);
            allot_heap_remove_at(h, items[i].position);
            items[i].in_heap = false;
        } else {
            i = allot_heap_top(h);
            cr_assert_eq(i, reference_min(count));
            allot_heap_remove_at(h, 0);
            items[i].in_heap = false;
        }
        heap_check(h, count);
    }
}

Test(heap, random_push_pop_update_remove_matches_a_reference_sort_with_ties)
{
    static const uint32_t sizes[] = {1, 2, 3, 17, 64, ITEMS_MAX};
    for (uint32_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint32_t count = sizes[s];
        items_setup(count, 0x9e3779b97f4a7c15u + s);
        allot_heap_t h;
        allot_heap_init(&h, item_key, item_tie_less, item_position_set, NULL);
        heap_random_ops(&h, count, 20 * count + 200);
        heap_drain_sorted(&h, count);
        allot_heap_free(&h);
    }
    cr_assert_gt(tie_less_calls, 0, "ids sharing their 4-byte prefix reach tie_less_cb");
}

Test(heap, pop_order_does_not_depend_on_push_order)
{
    uint32_t count = ITEMS_MAX;
    items_setup(count, 42);
    uint32_t first[ITEMS_MAX], order[ITEMS_MAX];
    for (uint32_t round = 0; round < 3; round++) {
        for (uint32_t i = 0; i < count; i++)
            order[i] = round == 1 ? count - 1 - i : i;
        for (uint32_t i = count - 1; round == 2 && i > 0; i--) {
            uint32_t j = (uint32_t)(rng_next() % (i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        allot_heap_t h;
        allot_heap_init(&h, item_key, item_tie_less, item_position_set, NULL);
        cr_assert_eq(allot_heap_reserve(&h, count), 0);
        for (uint32_t i = 0; i < count; i++)
            cr_assert_eq(allot_heap_push(&h, order[i]), 0);
        for (uint32_t k = 0; k < count; k++) {
            uint32_t top = allot_heap_top(&h);
            if (round == 0)
                first[k] = top;
            cr_assert_eq(top, first[k], "round %u pop %u", round, k);
            allot_heap_remove_at(&h, 0);
        }
        allot_heap_free(&h);
    }
}

Test(heap, inline_tie_sorts_like_state_id_compare_where_it_differs)
{
    uint32_t count = ITEMS_MAX, undecided = 0;
    items_setup(count, 7);
    for (uint32_t a = 0; a < count; a++) {
        for (uint32_t b = 0; b < count; b++) {
            allot_heap_entry_t x = {0}, y = {0};
            allot_heap_tie_set(&x, items[a].id, items[a].id_len);
            allot_heap_tie_set(&y, items[b].id, items[b].id_len);
            int c = state_id_compare(items[a].id, items[a].id_len, items[b].id, items[b].id_len);
            if (x.tie == y.tie) {
                undecided++;
                continue;
            }
            cr_assert_eq(x.tie < y.tie, c < 0, "ids %u and %u", a, b);
        }
    }
    cr_assert_gt(undecided, count, "some pairs share the whole inline prefix");
    allot_heap_entry_t e = {0};
    allot_heap_tie_set(&e, "abcdefghijklmnopqrstuvwxyz", 26);
    cr_assert_eq(e.tie, 0x61626364u);
    allot_heap_tie_set(&e, "ab", 2);
    cr_assert_eq(e.tie, 0x61620000u);
    allot_heap_tie_set(&e, "abcd", 4);
    cr_assert_eq(e.tie, 0x61626364u);
    allot_heap_tie_set(&e, NULL, 0);
    cr_assert_eq(e.tie, 0);
}

static int64_t prio[64];
static uint32_t where[64];

static void prio_key(const void *ctx, uint32_t item, allot_heap_entry_t *entry)
{
    (void)ctx;
    entry->key_ms = prio[item];
    entry->tie = item;
}

static bool prio_tie_less(const void *ctx, uint32_t a, uint32_t b)
{
    (void)ctx;
    return a < b;
}

static void prio_position_set(void *ctx, uint32_t item, uint32_t position)
{
    (void)ctx;
    where[item] = position;
}

Test(heap, pops_in_order_with_removals_and_updates)
{
    allot_heap_t h;
    allot_heap_init(&h, prio_key, prio_tie_less, prio_position_set, NULL);
    for (uint32_t i = 0; i < 64; i++) {
        prio[i] = (i * 37) % 64;
        cr_assert_eq(allot_heap_push(&h, i), 0);
    }
    allot_heap_remove_at(&h, where[10]);
    prio[20] = -1;
    allot_heap_update_at(&h, where[20]);
    cr_assert_eq(allot_heap_top(&h), 20);
    int64_t last = -2;
    uint32_t popped = 0;
    while (h.count > 0) {
        uint32_t top = allot_heap_top(&h);
        cr_assert_neq(top, 10);
        cr_assert_geq(prio[top], last);
        last = prio[top];
        allot_heap_remove_at(&h, 0);
        popped++;
    }
    cr_assert_eq(popped, 63);
    allot_heap_free(&h);
}

/* Items keyed by their own index, for heaps larger than items[]. */
static void index_key(const void *ctx, uint32_t item, allot_heap_entry_t *entry)
{
    (void)ctx;
    entry->key_ms = item;
}

static bool index_tie_less(const void *ctx, uint32_t a, uint32_t b)
{
    (void)ctx;
    return a < b;
}

static void index_position_set(void *ctx, uint32_t item, uint32_t position)
{
    (void)ctx;
    (void)item;
    (void)position;
}

Test(heap, a_heap_in_huge_pages_grows_a_lead_before_it_is_full)
{
    /* Pushes fill the entries in order: once they are a mapping of huge pages the heap grows
     * while ALLOT_PAGES_LEAD_ITEMS entries are still free, so the next pages can be faulted in
     * off the loop before pushes reach them (before: only when full). A reserve for what fits
     * needs no growth below that. */
    allot_heap_t h;
    allot_heap_init(&h, index_key, index_tie_less, index_position_set, NULL);
    uint32_t grown_at = 0, capacity = 0;
    for (uint32_t item = 0; grown_at == 0; item++) {
        capacity = h.capacity;
        uint32_t count = h.count;
        cr_assert_eq(allot_heap_push(&h, item), 0);
        if (h.capacity != capacity &&
            (size_t)capacity * sizeof(allot_heap_entry_t) >= ALLOT_PAGES_HUGE_BYTES)
            grown_at = count;
    }
    size_t lead = allot_pages_lead_items(capacity, sizeof(allot_heap_entry_t));
    cr_assert_gt(lead, 0);
    cr_assert_eq(grown_at + lead, capacity, "grew at %u of %u entries", grown_at, capacity);
    cr_assert_eq(h.capacity, 2 * capacity);
    for (uint32_t i = 0; i <= grown_at; i++) {
        cr_assert_eq(allot_heap_top(&h), i);
        allot_heap_remove_at(&h, 0);
    }
    allot_heap_free(&h);
}
