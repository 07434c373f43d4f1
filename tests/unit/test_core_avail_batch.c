/* test_core_avail_batch.c - the batched, prefetching SKU lookup agrees with the one-by-one one. */
#include "test_core_fixture.h"

Test(avail_batch, find_many_agrees_with_find_for_present_missing_and_repeated_skus)
{
    allot_state_t *state = fx_state();
    fx_location(state, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 4.0});
    enum { PRESENT = 3000, ASKED = 1000 };
    char names[ASKED][16];
    for (int i = 0; i < PRESENT; i++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "SKU-%d", i);
        fx_stock(state, sku, "W1", i + 1, 0);
    }
    allot_str_t ids[ASKED];
    for (int i = 0; i < ASKED; i++) {
        /* every third one is missing; some repeat; the last group is partial */
        int n = i % 3 == 0 ? PRESENT + i : (i * 7) % PRESENT;
        snprintf(names[i], sizeof(names[i]), "SKU-%d", n);
        ids[i] = allot_str_from_cstr(names[i]);
    }
    uint32_t many[ASKED];
    allot_sku_index_find_many(state, ids, ASKED, many);
    for (int i = 0; i < ASKED; i++)
        cr_assert_eq(many[i], allot_sku_index_find(state, ids[i]), "sku %s", names[i]);
    allot_state_destroy(state);
}

Test(avail_batch, find_many_on_an_empty_state_finds_nothing)
{
    allot_state_t *state = fx_state();
    allot_str_t ids[2] = {ALLOT_STR_LITERAL("A"), ALLOT_STR_LITERAL("B")};
    uint32_t out[2] = {0, 0};
    allot_sku_index_find_many(state, ids, 2, out);
    cr_assert_eq(out[0], ALLOT_SKU_NONE);
    cr_assert_eq(out[1], ALLOT_SKU_NONE);
    allot_state_destroy(state);
}

/* The loading-ahead stages (allot_sku_prefetch_*, allot_reservation_prefetch_*): the record stage
 * names the SKU a lookup will find, an unknown id or an empty state names none, and running them
 * changes nothing (the state dumps the same). */
Test(avail_batch, prefetch_stages_name_the_sku_found_and_change_nothing)
{
    allot_state_t *state = fx_state();
    allot_str_t none[2] = {ALLOT_STR_LITERAL("A"), ALLOT_STR_LITERAL("")};
    for (int i = 0; i < 2; i++) {
        uint32_t hash = allot_sku_prefetch_slot(state, none[i]);
        cr_assert_eq(allot_sku_prefetch_record(state, hash), ALLOT_SKU_NONE);
        allot_sku_prefetch_positions(state, ALLOT_SKU_NONE);
        allot_reservation_prefetch_record(state, allot_reservation_prefetch_slot(state, none[i]));
    }
    fx_location(state, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 4.0});
    enum { PRESENT = 2000 };
    for (int i = 0; i < PRESENT; i++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "SKU-%d", i);
        fx_stock(state, sku, "W1", i + 1, 0);
    }
    allot_line_input_t lines[] = {{S("SKU-7"), 1}};
    allot_reserve_request_t req = fx_req("cart-1", lines, 1);
    cr_assert_eq(fx_reserve(state, &req, 1000, NULL), 0);
    char *before = fx_dump(state);
    for (int i = 0; i < PRESENT; i += 7) {
        char sku[16];
        snprintf(sku, sizeof(sku), "SKU-%d", i);
        allot_str_t id = allot_str_from_cstr(sku);
        uint32_t index = allot_sku_prefetch_record(state, allot_sku_prefetch_slot(state, id));
        cr_assert_eq(index, allot_sku_index_find(state, id), "sku %s", sku);
        allot_sku_prefetch_positions(state, index);
    }
    allot_reservation_prefetch_record(state, allot_reservation_prefetch_slot(state, S("cart-1")));
    allot_reservation_prefetch_record(state, allot_reservation_prefetch_slot(state, S("cart-2")));
    char *after = fx_dump(state);
    cr_assert_str_eq(after, before);
    free(before);
    free(after);
    allot_state_destroy(state);
}

/* Loading ahead is for tables that outgrow the caches: not for an empty or small catalogue, and
 * from ALLOT_PREFETCH_TABLE_BYTES_MIN of SKU index, records and positions on. */
Test(avail_batch, prefetch_pays_only_once_the_tables_outgrow_the_caches)
{
    allot_state_t *state = allot_state_create(NULL); /* no event log: more writes than it holds */
    cr_assert_not_null(state);
    cr_assert_not(allot_prefetch_pays(state));
    fx_location(state, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 4.0});
    /* each SKU takes at least its record and its one position */
    int most = 1 + (int)(ALLOT_PREFETCH_TABLE_BYTES_MIN / (sizeof(allot_sku_t) + 48));
    int skus = 0;
    for (int round = 0; round < 2; round++) {
        for (; skus <= most && (round == 0 ? skus < 1000 : !allot_prefetch_pays(state)); skus++) {
            char sku[16];
            snprintf(sku, sizeof(sku), "SKU-%d", skus);
            fx_stock(state, sku, "W1", 1, 0);
        }
        if (round == 0)
            cr_assert_not(allot_prefetch_pays(state), "1000 SKUs at one location fit the caches");
    }
    cr_assert(allot_prefetch_pays(state), "still not at %d SKUs", skus);
    allot_state_destroy(state);
}
