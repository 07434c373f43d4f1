/* test_core_hash.c - index tables and the pages under large ones, haversine distances and UTF-8
 * checks of ids (the heap: test_core_heap.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/geo.h"
#include "core/base/hash.h"
#include "core/pages.h"
#include "core/common.h"
#include "core/errors.h"

static uint32_t keys[5000];

static uint32_t find(const allot_hash_t *t, uint32_t key)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(t, allot_hash_bytes(&key, sizeof(key)), &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(t, &probe)) != ALLOT_HASH_NONE)
        if (keys[i] == key)
            return i;
    return ALLOT_HASH_NONE;
}

Test(hash, insert_find_remove_keeps_every_other_key_reachable)
{
    allot_hash_t t;
    allot_hash_init(&t);
    for (uint32_t i = 0; i < 5000; i++) {
        keys[i] = i * 7919u;
        cr_assert_eq(allot_hash_insert(&t, allot_hash_bytes(&keys[i], 4), i), 0);
    }
    cr_assert_eq(t.count, 5000);
    for (uint32_t i = 0; i < 5000; i += 2)
        allot_hash_remove(&t, allot_hash_bytes(&keys[i], 4), i);
    for (uint32_t i = 0; i < 5000; i++)
        cr_assert_eq(find(&t, keys[i]), i % 2 ? i : ALLOT_HASH_NONE, "key %u", i);
    allot_hash_free(&t);
    cr_assert_eq(find(&t, 1), ALLOT_HASH_NONE, "an empty table finds nothing");
}

Test(hash, colliding_hashes_are_all_probed)
{
    allot_hash_t t;
    allot_hash_init(&t);
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_eq(allot_hash_insert(&t, 42, i), 0);
    allot_hash_remove(&t, 42, 50);
    allot_hash_probe_t probe;
    allot_hash_probe_start(&t, 42, &probe);
    uint32_t seen = 0, i;
    while ((i = allot_hash_probe_next(&t, &probe)) != ALLOT_HASH_NONE) {
        cr_assert_neq(i, 50);
        seen++;
    }
    cr_assert_eq(seen, 99);
    allot_hash_free(&t);
}

/* A cart id as allot-bench makes them: c<16 hex>-<worker>-<n>, a 20-byte prefix shared by all. */
static uint32_t cart_id(uint32_t n, char *id)
{
    return (uint32_t)snprintf(id, 32, "c3f1a9e1b27d4c5a0-3-%u", n);
}

static uint32_t cart_find(const allot_hash_t *t, uint32_t n, uint32_t *steps)
{
    char id[32];
    uint32_t len = cart_id(n, id);
    allot_hash_probe_t probe;
    allot_hash_probe_start(t, allot_hash_bytes(id, len), &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(t, &probe)) != ALLOT_HASH_NONE)
        if (i == n) /* item n is cart n */
            break;
    *steps = probe.steps;
    return i;
}

Test(hash, ids_with_a_long_shared_prefix_spread_and_survive_growth_past_huge_pages_and_deletes)
{
    /* 300k cart ids: the table grows from 16 slots through malloc'd blocks to mappings of whole
     * huge pages (2^19 slots, 4 MiB); a third are removed (backward shifts across the moves) and
     * put back; each is found by its own probe. Their spread: the mean probe of a present id at
     * load a is (1 + 1/(1 - a)) / 2 for a uniform hash; ids sharing 20 bytes must do as well. */
    enum { IDS = 300000 };
    allot_hash_t t;
    allot_hash_init(&t);
    char id[32];
    for (uint32_t n = 0; n < IDS; n++) {
        uint32_t len = cart_id(n, id);
        cr_assert_eq(allot_hash_insert(&t, allot_hash_bytes(id, len), n), 0);
    }
    cr_assert_geq((size_t)t.capacity * sizeof(*t.slots), 2 * ALLOT_PAGES_HUGE_BYTES);
    for (uint32_t n = 0; n < IDS; n += 3) {
        uint32_t len = cart_id(n, id);
        allot_hash_remove(&t, allot_hash_bytes(id, len), n);
    }
    uint32_t steps;
    for (uint32_t n = 0; n < IDS; n++)
        cr_assert_eq(cart_find(&t, n, &steps), n % 3 ? n : ALLOT_HASH_NONE, "id %u", n);
    for (uint32_t n = 0; n < IDS; n += 3) {
        uint32_t len = cart_id(n, id);
        cr_assert_eq(allot_hash_insert(&t, allot_hash_bytes(id, len), n), 0);
    }
    uint64_t total = 0;
    for (uint32_t n = 0; n < IDS; n++) {
        cr_assert_eq(cart_find(&t, n, &steps), n, "id %u", n);
        total += steps;
    }
    double load = (double)IDS / t.capacity, expected = (1 + 1 / (1 - load)) / 2;
    cr_assert_leq((double)total / IDS, 1.25 * expected, "mean probe %.3f at load %.2f",
                  (double)total / IDS, load);
    allot_hash_free(&t);
}

/* ---- growth: a migration in flight ------------------------------------------------------------
 */

/* A model of the table: which of MODEL_KEYS keys are present. Key k is item k; its hash is its
 * own, or (collide) shared by eight keys, so that clusters grow long and removals shift entries
 * across the migration's scanned run. */
enum { MODEL_KEYS = 1u << 17 };
static bool model_present[MODEL_KEYS];

static uint32_t model_hash(uint32_t key, bool collide)
{
    uint32_t hashed = collide ? key / 8 : key;
    return allot_hash_bytes(&hashed, sizeof(hashed));
}

/* Every candidate the probe for `key` yields, counting those that are the key itself. */
static uint32_t model_matches(const allot_hash_t *t, uint32_t key, bool collide)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(t, model_hash(key, collide), &probe);
    uint32_t matches = 0, i;
    while ((i = allot_hash_probe_next(t, &probe)) != ALLOT_HASH_NONE)
        matches += i == key;
    return matches;
}

static uint64_t model_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* `operations` random inserts, removes and lookups, biased to grow to most of the keys and
 * shrink again (keys 0..key_count-1), checking each lookup against the model; returns the
 * migrations seen. */
static uint32_t model_run(allot_hash_t *t, uint32_t key_count, uint32_t operations, bool collide,
                          uint64_t seed)
{
    uint64_t state = seed;
    uint32_t present = 0, migrations = 0;
    bool was_migrating = false;
    memset(model_present, 0, sizeof(model_present));
    for (uint32_t n = 0; n < operations; n++) {
        uint64_t r = model_random(&state);
        uint32_t key = (uint32_t)(r >> 20) % key_count;
        bool growing = (n / (operations / 4)) % 2 == 0; /* grow, shrink, grow, shrink */
        uint32_t action = (uint32_t)(r & 7);
        if (action < 3) {
            cr_assert_eq(model_matches(t, key, collide), model_present[key] ? 1u : 0u,
                         "key %u (present %d) after %u operations", key, model_present[key], n);
        } else if (!model_present[key] && (growing ? action < 7 : action < 5)) {
            cr_assert_eq(allot_hash_insert(t, model_hash(key, collide), key), 0);
            model_present[key] = true;
            present++;
        } else if (model_present[key]) {
            allot_hash_remove(t, model_hash(key, collide), key);
            model_present[key] = false;
            present--;
        }
        cr_assert_eq(t->count, present);
        migrations += allot_hash_migrating(t) && !was_migrating;
        was_migrating = allot_hash_migrating(t);
    }
    for (uint32_t key = 0; key < key_count; key++)
        cr_assert_eq(model_matches(t, key, collide), model_present[key] ? 1u : 0u, "key %u", key);
    return migrations;
}

Test(hash, random_inserts_removes_and_lookups_match_a_model_across_many_growths)
{
    /* three tables, each growing from 16 slots to 2^18 (14 growths) and shrinking twice */
    const uint64_t seeds[] = {0x9e3779b97f4a7c15ull, 42, 0xdeadbeefcafeull};
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        allot_hash_t t;
        allot_hash_init(&t);
        uint32_t migrations = model_run(&t, MODEL_KEYS, 1000000, false, seeds[s]);
        cr_assert_geq(migrations, 12, "seed %zu: %u", s, migrations);
        cr_assert_leq(t.migrate_slots_max, ALLOT_HASH_MIGRATE_SLOTS);
        allot_hash_free(&t);
    }
}

Test(hash, colliding_hashes_match_a_model_while_migrations_shift_long_clusters)
{
    allot_hash_t t;
    allot_hash_init(&t);
    uint32_t migrations = model_run(&t, 1u << 15, 1000000, true, 12345);
    cr_assert_geq(migrations, 10, "%u", migrations);
    cr_assert_leq(t.migrate_slots_max, ALLOT_HASH_MIGRATE_SLOTS);
    allot_hash_free(&t);
}

/* Insert keys from t->count on (the table holds keys 0..count-1), at least up to `at_least`,
 * then until an insert starts a migration (the old table still holds all but a few slots);
 * returns the count. */
static uint32_t fill_until_migrating(allot_hash_t *t, uint32_t at_least)
{
    uint32_t key = t->count;
    bool started = false;
    while (key < at_least || !started) {
        bool was_migrating = allot_hash_migrating(t);
        cr_assert_eq(allot_hash_insert(t, model_hash(key, false), key), 0);
        started = !was_migrating && allot_hash_migrating(t);
        key++;
    }
    return key;
}

Test(hash, no_insert_or_remove_moves_more_than_the_bound_and_each_ends_before_the_next_growth)
{
    allot_hash_t t;
    allot_hash_init(&t);
    uint32_t key = 0, growths = 0;
    uint32_t capacity = 0;
    for (; key < 1500000; key++) {
        cr_assert_eq(allot_hash_insert(&t, model_hash(key, false), key), 0);
        if (t.capacity != capacity) {
            growths++;
            capacity = t.capacity;
        }
        cr_assert_leq(t.migrate_slots_max, ALLOT_HASH_MIGRATE_SLOTS, "after %u inserts", key);
    }
    cr_assert_geq(growths, 17, "16 slots to 2^22: %u", growths);
    /* removes share the work, and a table left alone mid-migration still finds everything */
    allot_hash_t u;
    allot_hash_init(&u);
    uint32_t filled = fill_until_migrating(&u, 200000);
    for (uint32_t k = 0; k < filled; k += 2)
        allot_hash_remove(&u, model_hash(k, false), k);
    cr_assert_leq(u.migrate_slots_max, ALLOT_HASH_MIGRATE_SLOTS);
    for (uint32_t k = 0; k < filled; k++)
        cr_assert_eq(model_matches(&u, k, false), k % 2, "key %u", k);
    allot_hash_free(&u);
    allot_hash_free(&t);
}

Test(hash, reserve_during_a_migration_makes_the_next_inserts_infallible)
{
    allot_hash_t t;
    allot_hash_init(&t);
    uint32_t filled = fill_until_migrating(&t, 100000);
    /* room the new table already has: nothing is allocated, the migration goes on */
    uint32_t capacity = t.capacity;
    uint32_t room = (uint32_t)((uint64_t)t.capacity * 7 / 10) - t.count;
    cr_assert_eq(allot_hash_reserve(&t, room), 0);
    cr_assert(allot_hash_migrating(&t));
    cr_assert_eq(t.capacity, capacity);
    for (uint32_t k = filled; k < filled + room; k++) {
        uint32_t before = t.capacity;
        cr_assert_eq(allot_hash_insert(&t, model_hash(k, false), k), 0);
        cr_assert_eq(t.capacity, before, "a reserved insert never allocates (key %u)", k);
    }
    filled += room;
    cr_assert_not(allot_hash_migrating(&t), "the migration ended before the next growth");
    /* more than the room: the next growth is allocated now, mid-migration or not */
    filled = fill_until_migrating(&t, filled);
    cr_assert(allot_hash_migrating(&t));
    cr_assert_eq(allot_hash_reserve(&t, 3 * t.capacity), 0);
    capacity = t.capacity;
    for (uint32_t k = filled; k < filled + 1000; k++)
        cr_assert_eq(allot_hash_insert(&t, model_hash(k, false), k), 0);
    cr_assert_eq(t.capacity, capacity);
    for (uint32_t k = 0; k < filled + 1000; k++)
        cr_assert_eq(model_matches(&t, k, false), 1, "key %u", k);
    allot_hash_free(&t);
}

Test(hash, first_and_prefetch_find_keys_still_in_the_old_table)
{
    allot_hash_t t;
    allot_hash_init(&t);
    uint32_t filled = fill_until_migrating(&t, 100000);
    cr_assert_gt(t.old_count, filled / 2, "most keys are still in the old table");
    uint32_t found_first = 0;
    for (uint32_t k = 0; k < filled; k++) {
        uint32_t hash = model_hash(k, false);
        allot_hash_prefetch(&t, hash);
        uint32_t first = allot_hash_first(&t, hash);
        if (first != k) /* a collision of 32-bit hashes takes the full probe */
            cr_assert_eq(model_matches(&t, k, false), 1, "key %u", k);
        found_first += first == k;
    }
    cr_assert_gt(found_first, filled - 10, "%u of %u", found_first, filled);
    allot_hash_free(&t);
}

Test(hash, a_table_mid_migration_can_be_freed_and_used_again)
{
    allot_hash_t t;
    allot_hash_init(&t);
    fill_until_migrating(&t, 600000);
    cr_assert_gt(t.old_count, 0);
    allot_hash_free(&t); /* both tables; ASan's leak check would name a lost one */
    cr_assert_not(allot_hash_migrating(&t));
    cr_assert_eq(t.count, 0);
    cr_assert_eq(model_matches(&t, 1, false), 0);
    cr_assert_eq(allot_hash_insert(&t, model_hash(1, false), 1), 0);
    cr_assert_eq(model_matches(&t, 1, false), 1);
    allot_hash_free(&t);
}

Test(pages, blocks_keep_their_bytes_as_they_grow_and_shrink_across_the_huge_page_size)
{
    /* sizes in bytes, in turn: small (malloc), across the threshold both ways, and mapped blocks
     * moved by growing and shrinking */
    const size_t sizes[] = {0,
                            100,
                            ALLOT_PAGES_HUGE_BYTES - 1,
                            ALLOT_PAGES_HUGE_BYTES,
                            3 * ALLOT_PAGES_HUGE_BYTES + 5,
                            32 * ALLOT_PAGES_HUGE_BYTES,
                            3 * ALLOT_PAGES_HUGE_BYTES,
                            4096,
                            5 * ALLOT_PAGES_HUGE_BYTES};
    unsigned char *block = NULL;
    size_t bytes = 0;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        unsigned char *moved = allot_pages_resize(block, bytes, sizes[k], 0);
        cr_assert_not_null(moved, "size %zu", sizes[k]);
        size_t kept = bytes < sizes[k] ? bytes : sizes[k];
        for (size_t i = 0; i < kept; i += 997)
            cr_assert_eq(moved[i], (unsigned char)(i * 31 + k - 1), "byte %zu at size %zu", i,
                         sizes[k]);
        if (sizes[k] >= ALLOT_PAGES_HUGE_BYTES)
            cr_assert_eq((uintptr_t)moved % ALLOT_PAGES_HUGE_BYTES, 0, "a huge-page boundary");
        for (size_t i = 0; i < sizes[k]; i++)
            moved[i] = (unsigned char)(i * 31 + k);
        block = moved;
        bytes = sizes[k];
    }
    allot_pages_free(block, bytes);
    unsigned char *fresh = allot_pages_alloc(3 * ALLOT_PAGES_HUGE_BYTES);
    cr_assert_not_null(fresh);
    for (size_t i = 0; i < 3 * ALLOT_PAGES_HUGE_BYTES; i += 4096)
        cr_assert_eq(fresh[i], 0, "a new block is zeroed");
    allot_pages_free(fresh, 3 * ALLOT_PAGES_HUGE_BYTES);
}

/* What core/pages.h reported to the hooks, in order. */
typedef struct pages_report {
    char kind; /* 'f' fresh, 'r' retire */
    uintptr_t at;
    size_t bytes;
} pages_report_t;

static pages_report_t reports[64];
static size_t report_count;

static void report_fresh(void *ctx, void *at, size_t bytes)
{
    (void)ctx;
    cr_assert_lt(report_count, 64);
    reports[report_count++] = (pages_report_t){'f', (uintptr_t)at, bytes};
}

static void report_retire(void *ctx, void *at, size_t bytes)
{
    (void)ctx;
    cr_assert_lt(report_count, 64);
    reports[report_count++] = (pages_report_t){'r', (uintptr_t)at, bytes};
}

static void reports_start(void)
{
    report_count = 0;
    allot_pages_hooks_set(
        &(allot_pages_hooks_t){.fresh_cb = report_fresh, .retire_cb = report_retire});
}

static void report_assert(size_t i, char kind, const void *at, size_t bytes)
{
    cr_assert_lt(i, report_count, "report %zu of %zu", i, report_count);
    cr_assert_eq(reports[i].kind, kind, "report %zu", i);
    cr_assert_eq(reports[i].at, (uintptr_t)at, "report %zu", i);
    cr_assert_eq(reports[i].bytes, bytes, "report %zu", i);
}

Test(pages, mappings_report_their_fresh_part_and_are_retired_before_they_move_or_go)
{
    const size_t huge = ALLOT_PAGES_HUGE_BYTES;
    reports_start();
    void *small = allot_pages_alloc(4096); /* malloc: nothing reported */
    allot_pages_free(small, 4096);
    cr_assert_eq(report_count, 0);
    char *block = allot_pages_alloc(3 * huge - 100);
    cr_assert_not_null(block);
    report_assert(0, 'f', block, 3 * huge); /* whole huge pages */
    block[3 * huge - 101] = 1;
    /* a lead of part of a page: a page is reported when the fill comes within the lead of it,
     * not when the fill enters the page before it */
    const size_t lead = huge / 2;
    char *grown = allot_pages_resize(block, 3 * huge - 100, 9 * huge + 4100, lead);
    cr_assert_not_null(grown);
    report_assert(1, 'r', block, 3 * huge); /* before the move */
    /* from the base page the old size ends in (its huge page may not be faulted yet), a lead */
    report_assert(2, 'f', grown + 3 * huge - 4096, lead);
    cr_assert_eq(grown[3 * huge - 101], 1);
    char *same = allot_pages_resize(grown, 9 * huge + 4100, 9 * huge + 8000, lead);
    cr_assert_eq(same, grown);
    cr_assert_eq(report_count, 3, "no new pages, nothing reported");
    /* the fill coming within a lead of a huge page reports that page, inside the block only */
    const size_t bytes = 9 * huge + 8000;                                 /* mapped: 10 pages */
    allot_pages_filled(grown, bytes, lead, 5 * huge - 8, 5 * huge + 112); /* entering a page */
    cr_assert_eq(report_count, 3, "the next page is not within the lead yet");
    allot_pages_filled(grown, bytes, lead, 6 * huge - lead - 8, 6 * huge - lead + 112);
    report_assert(3, 'f', grown + 6 * huge, huge);
    allot_pages_filled(grown, bytes, lead, 6 * huge - lead + 112, 6 * huge - lead + 232);
    allot_pages_filled(grown, bytes, lead, 10 * huge - lead - 8, 10 * huge - lead + 112);
    cr_assert_eq(report_count, 4,
                 "no page newly within the lead, or a page past the block: nothing");
    allot_pages_free(grown, bytes);
    report_assert(4, 'r', grown, 10 * huge);
    cr_assert_eq(report_count, 5);
    allot_pages_hooks_set(NULL);
    block = allot_pages_alloc(3 * huge);
    allot_pages_free(block, 3 * huge);
    cr_assert_eq(report_count, 5, "no hooks, nothing reported");
}

Test(hash, a_table_growing_into_huge_pages_allocates_its_next_table_ahead_and_grows_into_it)
{
    /* From 2^17 slots on (1 MiB), the next table (2 MiB and more) is a mapping: it is allocated
     * (and reported fresh, to be faulted in off the loop) at 60% load, and the growth at 70%
     * takes it instead of allocating one then. */
    allot_hash_t t;
    allot_hash_init(&t);
    reports_start();
    uint32_t n = 0;
    while (t.spare_slots == NULL && n < (1u << 18)) {
        cr_assert_eq(allot_hash_insert(&t, allot_hash_bytes(&n, sizeof(n)), n), 0);
        n++;
    }
    uint32_t capacity = t.capacity;
    uint64_t *spare = t.spare_slots;
    cr_assert_not_null(spare, "no next table allocated ahead");
    cr_assert_eq(capacity, 1u << 17, "the first table whose next one is a mapping");
    cr_assert_eq(n, (uint64_t)capacity * ALLOT_HASH_SPARE_LOAD_PERCENT / 100 + 1);
    cr_assert_eq(reports[report_count - 1].kind, 'f');
    cr_assert_eq(reports[report_count - 1].at, (uintptr_t)spare, "reported fresh when allocated");
    while (t.capacity == capacity) {
        cr_assert_eq(t.spare_slots, spare, "kept until the growth");
        cr_assert_eq(allot_hash_insert(&t, allot_hash_bytes(&n, sizeof(n)), n), 0);
        n++;
    }
    cr_assert_eq(t.capacity, 2 * capacity);
    cr_assert_eq(t.slots, spare, "the growth took the table allocated ahead");
    cr_assert_null(t.spare_slots);
    for (uint32_t k = 0; k < n; k++) {
        allot_hash_probe_t probe;
        allot_hash_probe_start(&t, allot_hash_bytes(&k, sizeof(k)), &probe);
        uint32_t i;
        while ((i = allot_hash_probe_next(&t, &probe)) != ALLOT_HASH_NONE && i != k)
            ;
        cr_assert_eq(i, k, "key %u", k);
    }
    /* A reserve for more than the spare holds drops it and allocates the larger table. */
    while (t.spare_slots == NULL) {
        cr_assert_eq(allot_hash_insert(&t, allot_hash_bytes(&n, sizeof(n)), n), 0);
        n++;
    }
    cr_assert_eq(allot_hash_reserve(&t, 4 * t.capacity), 0);
    cr_assert_null(t.spare_slots);
    cr_assert_geq(t.capacity, 8 * capacity);
    allot_hash_free(&t);
    allot_pages_hooks_set(NULL);
}

Test(hash, arena_copies_are_stable_and_terminated)
{
    allot_arena_t arena;
    allot_arena_init(&arena);
    const char *first = allot_arena_copy(&arena, "abc", 3);
    for (int i = 0; i < 10000; i++)
        cr_assert_not_null(allot_arena_copy(&arena, "0123456789", 10));
    cr_assert_str_eq(first, "abc");
    allot_arena_free(&arena);
}

Test(geo, haversine_known_distances)
{
    cr_assert_float_eq(allot_geo_distance_km(0, 0, 0, 0), 0.0, 1e-9);
    /* Berlin - Munich ~ 504 km */
    double d = allot_geo_distance_km(52.5200, 13.4050, 48.1351, 11.5820);
    cr_assert(d > 500 && d < 508, "%f", d);
    /* quarter of a great circle */
    cr_assert_float_eq(allot_geo_distance_km(0, 0, 0, 90), 6371.0088 * M_PI / 2, 1e-6);
    cr_assert_float_eq(allot_geo_distance_km(90, 0, -90, 0), 6371.0088 * M_PI, 1e-6);
}

/* The UTF-8 check, with the bad bytes at every offset (the first eight-byte words take a
 * faster path for ASCII). */
Test(utf8, valid_and_invalid_sequences_at_every_offset)
{
    static const struct {
        const char *bytes;
        bool valid;
    } tails[] = {
        {"", true},
        {"\xc3\xa9", true},          /* e acute */
        {"\xe2\x82\xac", true},      /* euro sign */
        {"\xf0\x9f\x98\x80", true},  /* an emoji */
        {"\x80", false},             /* a lone continuation byte */
        {"\xc3", false},             /* cut short */
        {"\xc0\xaf", false},         /* overlong */
        {"\xe0\x80\xaf", false},     /* overlong */
        {"\xed\xa0\x80", false},     /* a surrogate */
        {"\xf4\x90\x80\x80", false}, /* above U+10FFFF */
        {"\xff", false},
    };
    char buffer[64];
    for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
        size_t tail_len = strlen(tails[t].bytes);
        for (size_t ascii = 0; ascii <= 24; ascii++) {
            for (size_t after = 0; after <= 9; after += 9) { /* ASCII after the tail, or none */
                memset(buffer, 'a', sizeof(buffer));
                memcpy(buffer + ascii, tails[t].bytes, tail_len);
                size_t len = ascii + tail_len + after;
                cr_assert_eq(allot_utf8_valid(buffer, len), tails[t].valid,
                             "tail %zu after %zu ASCII bytes, %zu after", t, ascii, after);
            }
        }
    }
}
