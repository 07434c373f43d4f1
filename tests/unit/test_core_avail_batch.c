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
