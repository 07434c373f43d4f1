/* test_core_reserve.c - reservations and sourcing: the checkout scenarios and their edges. */
#include <malloc.h>

#include "core/pages.h"
#include "core/state_private.h"
#include "test_core_fixture.h"

static allot_state_t *st;

static void two_warehouses(void)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40, .priority = 1});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58, .priority = 0});
    fx_stock(st, "A", "W1", 4, 0);
    fx_stock(st, "A", "W2", 3, 0);
}

static void teardown(void)
{
    allot_state_destroy(st);
    st = NULL;
    fx_log_reset();
}

TestSuite(reserve, .fini = teardown);

Test(reserve, splits_by_priority_when_no_single_location_suffices, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 5}};
    allot_reserve_request_t req = fx_req("cart-1", lines, 1);
    req.policy = ALLOT_POLICY_PRIORITY;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    cr_assert_eq(fx_held_at(st, r, 0, "W2"), 3);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 2);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 5);
    cr_assert_eq(r->expires_at_ms, FX_T0 + 900 * 1000);
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 2);
    cr_assert_eq(fx_position(st, "A", "W2")->reserved, 3);
    cr_assert_eq(fx_avail(st, "A"), 2);
    fx_assert_replay_equal(st);
}

/* Whether p lies within the record r. */
static bool in_record(const allot_reservation_t *r, const void *p)
{
    return (const char *)p >= (const char *)r && (const char *)p < (const char *)(r + 1);
}

static int counting_sink(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    (void)type, (void)payload, (void)len;
    ++*(size_t *)ctx;
    return 0;
}

Test(reserve, one_line_holds_with_short_ids_allocate_nothing_beyond_their_tables,
     .init = two_warehouses)
{
    /* 1000 holds size the slab, heaps, id hash and dirty set for the next 20 (none of them
     * grows before 1024); then the heap's bytes in use must not move: no id copy, no block */
    size_t events = 0;
    allot_state_set_event_sink(st, counting_sink, &events);
    fx_stock(st, "A", "W1", 100000, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    char id[32];
    for (uint32_t i = 0; i < 1020; i++) {
        snprintf(id, sizeof(id), "c3f1a9e1b27d4c5a0-0-%06u",
                 i); /* 26 bytes, as allot-bench makes */
        allot_reserve_request_t req = fx_req(id, lines, 1);
        size_t before = mallinfo2().uordblks;
        cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0, "%s", fx_err.message);
        if (i >= 1000)
            cr_assert_eq(mallinfo2().uordblks, before, "hold %u: %zu bytes allocated", i,
                         mallinfo2().uordblks - before);
    }
    cr_assert_gt(events, 0, "the holds were emitted");
}

Test(reserve, a_one_line_hold_with_an_id_at_the_inline_limit_lives_in_its_record,
     .init = two_warehouses)
{
    char id[ALLOT_RESERVATION_ID_INLINE_BYTES + 1];
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    allot_line_input_t lines[] = {{S("A"), 1}};
    allot_reserve_request_t req = fx_req(id, lines, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    cr_assert(r->body_inline);
    cr_assert(in_record(r, allot_reservation_id(r).ptr), "the id is in the record");
    cr_assert_str_eq(allot_reservation_id(r).ptr, id);
    cr_assert(in_record(r, allot_reservation_lines(r)) &&
              in_record(r, allot_reservation_allocations(r)));
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 1);
    cr_assert_eq(allot_reservation_allocations(r)[0].qty, 1);
    /* the same after a replay and after a checkpoint's round trip */
    fx_assert_replay_equal(st);
    r = allot_reservation_find(st, S(id));
    cr_assert(r != NULL && r->body_inline);
    /* released: the tombstone keeps the id in its record, no block */
    cr_assert_eq(allot_reservation_release(st, S(id), FX_T0 + 1, &r, &fx_err), 0);
    cr_assert(!r->body_inline && r->body.other.block == NULL && allot_reservation_lines(r) == NULL);
    cr_assert_str_eq(allot_reservation_id(r).ptr, id);
    fx_assert_replay_equal(st);
}

Test(reserve, an_id_one_byte_over_the_inline_limit_goes_to_the_block_with_its_line,
     .init = two_warehouses)
{
    char id[ALLOT_RESERVATION_ID_INLINE_BYTES + 2];
    memset(id, 'o', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    allot_line_input_t lines[] = {{S("A"), 2}};
    allot_reserve_request_t req = fx_req(id, lines, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    cr_assert(!r->body_inline);
    cr_assert_eq(allot_reservation_id(r).ptr, r->body.other.block, "the id starts the block");
    cr_assert_str_eq(allot_reservation_id(r).ptr, id);
    cr_assert_eq(allot_reservation_id(r).len, ALLOT_RESERVATION_ID_INLINE_BYTES + 1);
    /* the lines start after the id, its NUL and the padding to 8 bytes */
    cr_assert_eq(allot_reservation_lines_at(ALLOT_RESERVATION_ID_INLINE_BYTES + 1) % 8, 0);
    cr_assert_gt(allot_reservation_lines_at(ALLOT_RESERVATION_ID_INLINE_BYTES + 1),
                 ALLOT_RESERVATION_ID_INLINE_BYTES + 1);
    cr_assert_eq((const char *)allot_reservation_lines(r),
                 r->body.other.block +
                     allot_reservation_lines_at(ALLOT_RESERVATION_ID_INLINE_BYTES + 1));
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 2);
    fx_assert_replay_equal(st);
    /* a replace keeps the id; released, the tombstone keeps it in a block of its own */
    req.replace = true;
    lines[0].qty = 3;
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 1, &r), 0, "%s", fx_err.message);
    cr_assert_str_eq(allot_reservation_id(r).ptr, id);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 3);
    cr_assert_eq(allot_reservation_release(st, S(id), FX_T0 + 2, &r, &fx_err), 0);
    cr_assert(r->body.other.block != NULL && allot_reservation_lines(r) == NULL);
    cr_assert_str_eq(allot_reservation_id(r).ptr, id);
    cr_assert_lt(malloc_usable_size(r->body.other.block), 64, "the tombstone's block is its id");
    fx_assert_replay_equal(st);
}

Test(reserve, a_hold_grown_from_one_line_to_several_by_replace_and_back, .init = two_warehouses)
{
    allot_line_input_t one[] = {{S("A"), 1}};
    allot_line_input_t three[] = {{S("A"), 2}, {S("B"), 1}, {S("C"), 1}};
    fx_stock(st, "B", "W1", 1, 0);
    fx_stock(st, "C", "W2", 1, 0);
    allot_reserve_request_t req = fx_req("cart-grow", one, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    cr_assert(r->body_inline);
    req = fx_req("cart-grow", three, 3);
    req.replace = true;
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 1, &r), 0, "%s", fx_err.message);
    cr_assert(!r->body_inline && r->line_count == 3);
    cr_assert(in_record(r, allot_reservation_id(r).ptr), "a short id stays in the record");
    cr_assert_str_eq(allot_reservation_id(r).ptr, "cart-grow");
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 2);
    cr_assert_eq(allot_reservation_lines(r)[1].qty_held, 1);
    cr_assert_eq(allot_reservation_lines(r)[2].qty_held, 1);
    fx_assert_replay_equal(st);
    r = allot_reservation_find(st, S("cart-grow"));
    req = fx_req("cart-grow", one, 1);
    req.replace = true;
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 2, &r), 0, "%s", fx_err.message);
    cr_assert(r->body_inline && r->line_count == 1);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 1);
    fx_assert_replay_equal(st);
}

Test(reserve, holds_read_the_same_after_the_slab_grows_under_them, .init = two_warehouses)
{
    /* a record's inline parts are found from the record, so they move with the slab; a long
     * id's block does not move: pointers into it stay valid across the growth */
    fx_stock(st, "A", "W1", 1000, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    allot_reserve_request_t req = fx_req("cart-first", lines, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    const char *long_id = "cart-second-with-an-id-longer-than-inline";
    req = fx_req(long_id, lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    const char *held_id = allot_reservation_id(r).ptr;
    const allot_reservation_line_t *held_lines = allot_reservation_lines(r);
    uint32_t capacity = st->reservation_capacity;
    char id[48];
    for (uint32_t i = 0; st->reservation_capacity == capacity; i++) {
        if (i % 3 == 0)
            snprintf(id, sizeof(id), "g-%u-with-an-id-longer-than-inline", i);
        else
            snprintf(id, sizeof(id), "g-%u", i);
        req = fx_req(id, lines, 1);
        cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    }
    cr_assert_str_eq(held_id, long_id);
    cr_assert_eq(held_lines[0].qty_held, 1);
    r = allot_reservation_find(st, S(long_id));
    cr_assert(r != NULL && allot_reservation_id(r).ptr == held_id);
    cr_assert_eq(allot_reservation_lines(r), held_lines);
    r = allot_reservation_find(st, S("cart-first"));
    cr_assert(r != NULL && in_record(r, allot_reservation_lines(r)));
    cr_assert_str_eq(allot_reservation_id(r).ptr, "cart-first");
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 1);
    fx_assert_replay_equal(st);
}

Test(reserve, a_slab_in_huge_pages_grows_a_lead_before_it_is_full, .init = two_warehouses)
{
    /* New records fill the slab in order: once it is a mapping of huge pages it grows while
     * ALLOT_PAGES_LEAD_ITEMS records are still free, so the next pages can be faulted in off
     * the loop before the fill reaches them (before: only when full). */
    fx_stock(st, "A", "W1", 1000000, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    const allot_reservation_t *r;
    char id[32];
    uint32_t i = 0, grown_at = 0, capacity = 0;
    while (grown_at == 0) {
        capacity = st->reservation_capacity;
        uint32_t slots = st->reservation_slots;
        snprintf(id, sizeof(id), "lead-%u", i++);
        allot_reserve_request_t req = fx_req(id, lines, 1);
        cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
        fx_log_reset(); /* the records are not looked at here */
        if (st->reservation_capacity != capacity &&
            (size_t)capacity * sizeof(allot_reservation_t) >= ALLOT_PAGES_HUGE_BYTES)
            grown_at = slots;
    }
    size_t lead = allot_pages_lead_items(capacity, sizeof(allot_reservation_t));
    cr_assert_gt(lead, 0);
    cr_assert_eq(grown_at + lead, capacity, "grew at %u of %u slots", grown_at, capacity);
    cr_assert_eq(st->reservation_capacity, 2 * capacity);
    r = allot_reservation_find(st, S("lead-0"));
    cr_assert(r != NULL && allot_reservation_lines(r)[0].qty_held == 1);
}

Test(reserve, fewest_splits_fills_chosen_locations_then_priority, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 5}};
    allot_reserve_request_t req = fx_req("cart-1", lines, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W2"), 3);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 2);
}

Test(reserve, pickup_holds_only_at_the_store, .init = two_warehouses)
{
    fx_location(st, (fx_loc_t){.id = "P",
                               .lat = 52.5,
                               .lon = 13.4,
                               .priority = 50,
                               .pickup = true,
                               .type = ALLOT_LOCATION_STORE});
    fx_stock(st, "A", "P", 5, 0);
    fx_stock(st, "A", "W1", 100, 0);
    allot_line_input_t lines[] = {{S("A"), 5}};
    allot_reserve_request_t req = fx_req("cart-p", lines, 1);
    req.method = ALLOT_METHOD_PICKUP;
    req.location = S("P");
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    cr_assert_eq(r->allocation_count, 1);
    cr_assert_eq(fx_held_at(st, r, 0, "P"), 5);
    /* one more unit is not available at P even though W1 has plenty */
    allot_line_input_t more[] = {{S("A"), 1}};
    allot_reserve_request_t req2 = fx_req("cart-p2", more, 1);
    req2.method = ALLOT_METHOD_PICKUP;
    req2.location = S("P");
    cr_assert_eq(fx_reserve(st, &req2, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
}

Test(reserve, pickup_requires_a_pickup_location, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 1}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    req.method = ALLOT_METHOD_PICKUP;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "location");
    req.location = S("W1");
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "location");
}

Test(reserve, other_carts_holds_are_not_available, .init = two_warehouses)
{
    fx_stock(st, "A", "W2", 0, 0);
    allot_line_input_t two[] = {{S("A"), 2}};
    allot_reserve_request_t req = fx_req("other", two, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0);
    cr_assert_eq(fx_avail(st, "A"), 2);
    allot_line_input_t three[] = {{S("A"), 3}};
    allot_reserve_request_t big = fx_req("mine", three, 1);
    size_t events = fx_log.count;
    cr_assert_eq(fx_reserve(st, &big, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfall_count, 1);
    cr_assert(allot_str_equal(fx_err.shortfalls[0].sku, S("A")));
    cr_assert_eq(fx_err.shortfalls[0].requested, 3);
    cr_assert_eq(fx_err.shortfalls[0].available, 2);
    cr_assert_eq(fx_log.count, events, "nothing emitted");
    cr_assert_null(allot_reservation_find(st, S("mine")));
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 2);
    allot_line_input_t exact[] = {{S("A"), 2}};
    allot_reserve_request_t ok = fx_req("mine", exact, 1);
    cr_assert_eq(fx_reserve(st, &ok, FX_T0, NULL), 0);
    cr_assert_eq(fx_avail(st, "A"), 0);
}

Test(reserve, two_short_lines_name_both_skus_and_hold_nothing, .init = two_warehouses)
{
    fx_stock(st, "B", "W1", 1, 0);
    allot_line_input_t lines[] = {{S("A"), 8}, {S("B"), 2}, {S("C"), 1}};
    allot_reserve_request_t req = fx_req("cart", lines, 2);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfall_count, 2);
    cr_assert(allot_str_equal(fx_err.shortfalls[0].sku, S("A")));
    cr_assert_eq(fx_err.shortfalls[0].available, 7);
    cr_assert(allot_str_equal(fx_err.shortfalls[1].sku, S("B")));
    cr_assert_eq(fx_err.shortfalls[1].available, 1);
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 0);
    cr_assert_eq(fx_position(st, "B", "W1")->reserved, 0);
    /* an unknown SKU is simply unavailable */
    req.line_count = 3;
    lines[0].qty = 1;
    lines[1].qty = 1;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfall_count, 1);
    cr_assert(allot_str_equal(fx_err.shortfalls[0].sku, S("C")));
}

Test(reserve, fewest_splits_prefers_one_location_that_supplies_every_line, .init = two_warehouses)
{
    fx_stock(st, "B", "W1", 5, 0); /* W1 has A and B; W2 (better priority) has only A */
    allot_line_input_t lines[] = {{S("A"), 2}, {S("B"), 2}};
    allot_reserve_request_t req = fx_req("cart", lines, 2);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(r->allocation_count, 2);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 2);
    cr_assert_eq(fx_held_at(st, r, 1, "W1"), 2);
    /* under "priority" the A line goes to W2 instead */
    allot_reserve_request_t by_priority = fx_req("cart2", lines, 2);
    by_priority.policy = ALLOT_POLICY_PRIORITY;
    cr_assert_eq(fx_reserve(st, &by_priority, FX_T0, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W2"), 2);
    cr_assert_eq(fx_held_at(st, r, 1, "W1"), 2);
    fx_assert_replay_equal(st);
}

Test(reserve, fewest_splits_fill_reuses_locations_already_chosen, .init = two_warehouses)
{
    fx_location(st, (fx_loc_t){.id = "W3", .priority = 0});
    fx_stock(st, "B", "W1", 2, 0);
    fx_stock(st, "B", "W3", 1, 0);
    fx_stock(st, "C", "W1", 1, 0);
    fx_stock(st, "C", "W3", 1, 0);
    /* no single location has 5 of A; line A goes W2 (priority 0, 3 units) then W1 */
    allot_line_input_t lines[] = {{S("A"), 5}, {S("B"), 2}, {S("C"), 1}};
    allot_reserve_request_t req = fx_req("cart", lines, 3);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    cr_assert_eq(fx_held_at(st, r, 0, "W2"), 3);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 2);
    cr_assert_eq(fx_held_at(st, r, 1, "W1"), 2);
    /* C: W1 was already chosen (for A), so it wins over W3 despite W3's better priority */
    cr_assert_eq(fx_held_at(st, r, 2, "W1"), 1);
}

Test(reserve, nearest_orders_by_distance_to_ship_to, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 4}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    req.policy = ALLOT_POLICY_NEAREST;
    req.has_ship_to = true;
    req.lat = 48.2; /* near Munich (W2) */
    req.lon = 11.6;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W2"), 3);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 1);
    allot_reserve_request_t berlin = fx_req("cart2", lines, 1);
    berlin.policy = ALLOT_POLICY_NEAREST;
    berlin.has_ship_to = true;
    berlin.lat = 52.5;
    berlin.lon = 13.4;
    lines[0].qty = 3;
    cr_assert_eq(fx_reserve(st, &berlin, FX_T0, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 3);
}

Test(reserve, highest_stock_takes_the_fullest_location_first, .init = two_warehouses)
{
    fx_stock(st, "A", "W2", 9, 0);
    allot_line_input_t lines[] = {{S("A"), 10}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    req.policy = ALLOT_POLICY_HIGHEST_STOCK;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W2"), 9);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 1);
    cr_assert_eq(allot_reservation_allocations(r)[0].qty, 9, "W2 is first");
}

Test(reserve, same_day_uses_only_locations_within_their_radius)
{
    st = fx_state();
    fx_location(
        st, (fx_loc_t){
                .id = "NEAR", .lat = 52.52, .lon = 13.40, .priority = 5, .same_day_radius_km = 30});
    fx_location(
        st, (fx_loc_t){
                .id = "FAR", .lat = 48.14, .lon = 11.58, .priority = 0, .same_day_radius_km = 30});
    fx_location(st, (fx_loc_t){.id = "NONE", .lat = 52.52, .lon = 13.40, .priority = 0});
    fx_stock(st, "A", "NEAR", 2, 0);
    fx_stock(st, "A", "FAR", 10, 0);
    fx_stock(st, "A", "NONE", 10, 0);
    allot_line_input_t lines[] = {{S("A"), 2}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    req.method = ALLOT_METHOD_SAME_DAY;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "ship_to");
    req.has_ship_to = true;
    req.lat = 52.45;
    req.lon = 13.35;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "NEAR"), 2);
    allot_reserve_request_t more = fx_req("cart2", (allot_line_input_t[]){{S("A"), 1}}, 1);
    more.method = ALLOT_METHOD_SAME_DAY;
    more.has_ship_to = true;
    more.lat = 52.45;
    more.lon = 13.35;
    cr_assert_eq(fx_reserve(st, &more, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
}

Test(reserve, daily_capacity_skips_full_locations_and_gives_back_on_release)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .priority = 0, .daily_capacity = 1});
    fx_location(st, (fx_loc_t){.id = "W2", .priority = 1});
    fx_stock(st, "A", "W1", 10, 0);
    fx_stock(st, "A", "W2", 10, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    const allot_reservation_t *r;
    allot_reserve_request_t first = fx_req("c1", lines, 1);
    cr_assert_eq(fx_reserve(st, &first, FX_T0, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 1);
    allot_reserve_request_t second = fx_req("c2", lines, 1);
    cr_assert_eq(fx_reserve(st, &second, FX_T0, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W2"), 1, "W1 is at capacity today");
    /* release c1 on the same day: W1 has room again */
    cr_assert_eq(allot_reservation_release(st, S("c1"), FX_T0 + 1000, &r, &fx_err), 0);
    allot_reserve_request_t third = fx_req("c3", lines, 1);
    cr_assert_eq(fx_reserve(st, &third, FX_T0 + 2000, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 1);
    /* next UTC day: the count starts again */
    allot_reserve_request_t fourth = fx_req("c4", lines, 1);
    cr_assert_eq(fx_reserve(st, &fourth, FX_T0 + ALLOT_MS_PER_DAY, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 1);
    fx_assert_replay_equal(st);
}

Test(reserve, partial_holds_what_it_can_and_lists_shortfalls, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 10}, {S("Z"), 1}};
    allot_reserve_request_t req = fx_req("cart", lines, 2);
    req.partial = true;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0, "%s", fx_err.message);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 7);
    cr_assert_eq(allot_reservation_lines(r)[1].qty_held, 0);
    allot_shortfall_t sf[ALLOT_LINES_MAX];
    cr_assert_eq(allot_reservation_shortfalls(st, r, sf, ALLOT_LINES_MAX), 2);
    cr_assert_eq(sf[0].requested, 10);
    cr_assert_eq(sf[0].available, 7);
    cr_assert(allot_str_equal(sf[1].sku, S("Z")));
    /* nothing at all can be held -> INSUFFICIENT_STOCK even with partial */
    allot_line_input_t none[] = {{S("A"), 1}};
    allot_reserve_request_t req2 = fx_req("cart2", none, 1);
    req2.partial = true;
    cr_assert_eq(fx_reserve(st, &req2, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
    fx_assert_replay_equal(st);
}

Test(reserve, safety_stock_is_not_available, .init = two_warehouses)
{
    fx_stock(st, "S", "W1", 10, 3);
    cr_assert_eq(fx_avail(st, "S"), 7);
    allot_line_input_t eight[] = {{S("S"), 8}};
    allot_reserve_request_t req = fx_req("cart", eight, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfalls[0].available, 7);
    allot_line_input_t seven[] = {{S("S"), 7}};
    req = fx_req("cart", seven, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0);
    cr_assert_eq(fx_avail(st, "S"), 0);
}

Test(reserve, duplicate_sku_lines_do_not_double_count, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 4}, {S("A"), 4}};
    allot_reserve_request_t req = fx_req("cart", lines, 2);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
    lines[1].qty = 3;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 4);
    cr_assert_eq(fx_position(st, "A", "W2")->reserved, 3);
}

Test(reserve, inactive_and_non_shipping_locations_are_skipped, .init = two_warehouses)
{
    fx_location(
        st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40, .priority = 1, .inactive = true});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58, .no_ship = true});
    cr_assert_eq(fx_avail(st, "A"), 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
}

/* ---- expiry -----------------------------------------------------------------------------------
 */

Test(reserve, ttl_expiry_releases_units_then_reads_expired, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 5}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    req.ttl_s = 60;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    int64_t expires = r->expires_at_ms;
    cr_assert_eq(expires, FX_T0 + 60000);
    cr_assert_eq(allot_reservation_next_expiry_ms(st), expires);
    cr_assert_eq(allot_reservations_expire(st, expires - 1, 100), 0);
    cr_assert_eq(allot_reservation_get(st, S("cart"), expires - 1, &r, &fx_err), 0);
    /* past expiry but before the timer: reads as EXPIRED already */
    cr_assert_eq(allot_reservation_get(st, S("cart"), expires, &r, &fx_err), ALLOT_EEXPIRED);
    cr_assert_eq(allot_reservations_expire(st, expires, 100), 1);
    cr_assert_eq(allot_reservation_next_expiry_ms(st), INT64_MAX);
    cr_assert_eq(fx_avail(st, "A"), 7);
    cr_assert_eq(allot_reservation_get(st, S("cart"), expires + 1, &r, &fx_err), ALLOT_EEXPIRED);
    cr_assert_eq(allot_reservation_extend(st, S("cart"), 60, expires + 1, &r, &fx_err),
                 ALLOT_EEXPIRED);
    cr_assert_eq(fx_reserve(st, &req, expires + 1, NULL), ALLOT_EEXPIRED);
    cr_assert_eq(allot_reservation_release(st, S("cart"), expires + 1, &r, &fx_err), 0);
    cr_assert_eq(r->status, ALLOT_RESERVATION_EXPIRED);
    allot_state_counters_t c;
    allot_state_counters_get(st, &c);
    cr_assert_eq(c.reservations, 0);
    cr_assert_eq(c.tombstones, 1);
    fx_assert_replay_equal(st);
}

Test(reserve, expire_goes_earliest_first_and_respects_max, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 1}};
    const char *ids[] = {"c", "a", "b"};
    int64_t ttls[] = {30, 10, 20};
    for (int i = 0; i < 3; i++) {
        allot_reserve_request_t req = fx_req(ids[i], lines, 1);
        req.ttl_s = ttls[i];
        cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0);
    }
    cr_assert_eq(allot_reservation_next_expiry_ms(st), FX_T0 + 10000);
    cr_assert_eq(allot_reservations_expire(st, FX_T0 + 60000, 2), 2);
    cr_assert_eq(allot_reservation_find(st, S("a"))->status, ALLOT_RESERVATION_EXPIRED);
    cr_assert_eq(allot_reservation_find(st, S("b"))->status, ALLOT_RESERVATION_EXPIRED);
    cr_assert_eq(allot_reservation_find(st, S("c"))->status, ALLOT_RESERVATION_ACTIVE);
    cr_assert_eq(allot_reservations_expire(st, FX_T0 + 60000, 2), 1);
}

Test(reserve, equal_deadlines_past_the_heap_tie_bytes_expire_in_id_order, .init = two_warehouses)
{
    /* the heap keeps 4 id bytes; ids sharing them (one long, in its block) go by the whole id,
     * live and in a state loaded from a checkpoint (which inserts them in another order) */
    allot_line_input_t lines[] = {{S("A"), 1}};
    const char *made[] = {"cart-9", "cart-10", "cart-2", "cart-1-with-an-id-longer-than-31-bytes"};
    const char *expected[] = {"cart-1-with-an-id-longer-than-31-bytes", "cart-10", "cart-2",
                              "cart-9"};
    for (int i = 0; i < 4; i++) {
        allot_reserve_request_t req = fx_req(made[i], lines, 1);
        cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0, "%s", fx_err.message);
    }
    allot_state_t *loaded = fx_checkpoint_loaded(st);
    allot_state_t *states[] = {st, loaded};
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 4; i++) {
            cr_assert_eq(allot_reservations_expire(states[s], FX_T0 + 3600 * 1000, 1), 1);
            for (int k = 0; k < 4; k++)
                cr_assert_eq(allot_reservation_find(states[s], S(expected[k]))->status,
                             k <= i ? ALLOT_RESERVATION_EXPIRED : ALLOT_RESERVATION_ACTIVE,
                             "state %d, after %d expiries: %s", s, i + 1, expected[k]);
        }
    }
    allot_state_destroy(loaded);
    fx_assert_replay_equal(st);
}

Test(reserve, extend_moves_expiry, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 1}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    req.ttl_s = 10;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(allot_reservation_extend(st, S("cart"), 100, FX_T0 + 5000, &r, &fx_err), 0);
    cr_assert_eq(r->expires_at_ms, FX_T0 + 105000);
    cr_assert_eq(allot_reservation_next_expiry_ms(st), FX_T0 + 105000);
    cr_assert_eq(allot_reservation_extend(st, S("cart"), 0, FX_T0, &r, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "ttl_s");
    cr_assert_eq(allot_reservation_extend(st, S("nope"), 10, FX_T0, &r, &fx_err), ALLOT_ENOT_FOUND);
    /* same request after extend: same reply, the extended expiry */
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 6000, &r), 0);
    cr_assert_eq(r->expires_at_ms, FX_T0 + 105000);
    fx_assert_replay_equal(st);
}

/* ---- idempotency and replace -------------------------------------------------------------- */

Test(reserve, same_id_same_request_is_held_once, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 2}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    int64_t expires = r->expires_at_ms;
    size_t events = fx_log.count;
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 5000, &r), 0);
    cr_assert_eq(r->expires_at_ms, expires);
    cr_assert_eq(fx_log.count, events, "no new event");
    cr_assert_eq(fx_avail(st, "A"), 5);
    /* replace:true with the same request is also just the same reply */
    req.replace = true;
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 5000, &r), 0);
    cr_assert_eq(fx_log.count, events);
}

Test(reserve, same_id_different_request_conflicts, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 2}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0);
    allot_line_input_t other[] = {{S("A"), 3}};
    allot_reserve_request_t req2 = fx_req("cart", other, 1);
    cr_assert_eq(fx_reserve(st, &req2, FX_T0, NULL), ALLOT_ECONFLICT);
    req.ttl_s = 60; /* a different ttl is a different request too */
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_ECONFLICT);
    cr_assert_eq(fx_avail(st, "A"), 5);
}

Test(reserve, replace_swaps_atomically_and_a_failing_replace_keeps_the_old, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 6}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(fx_avail(st, "A"), 1);
    /* 7 needs the old hold's 6 units plus the 1 free one */
    allot_line_input_t seven[] = {{S("A"), 7}};
    allot_reserve_request_t bigger = fx_req("cart", seven, 1);
    bigger.replace = true;
    cr_assert_eq(fx_reserve(st, &bigger, FX_T0 + 1000, &r), 0, "%s", fx_err.message);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 7);
    cr_assert_eq(r->created_ms, FX_T0 + 1000);
    cr_assert_eq(fx_avail(st, "A"), 0);
    allot_state_counters_t c;
    allot_state_counters_get(st, &c);
    cr_assert_eq(c.reservations, 1);
    /* 8 cannot be held: the 7 stay */
    allot_line_input_t eight[] = {{S("A"), 8}};
    allot_reserve_request_t too_big = fx_req("cart", eight, 1);
    too_big.replace = true;
    size_t events = fx_log.count;
    cr_assert_eq(fx_reserve(st, &too_big, FX_T0 + 2000, &r), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_log.count, events);
    r = allot_reservation_find(st, S("cart"));
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 7);
    cr_assert_eq(fx_position(st, "A", "W1")->reserved + fx_position(st, "A", "W2")->reserved, 7);
    /* a smaller cart gives units back */
    allot_line_input_t one[] = {{S("A"), 1}};
    allot_reserve_request_t smaller = fx_req("cart", one, 1);
    smaller.replace = true;
    cr_assert_eq(fx_reserve(st, &smaller, FX_T0 + 3000, &r), 0);
    cr_assert_eq(fx_avail(st, "A"), 6);
    fx_assert_replay_equal(st);
}

Test(reserve, released_ids_are_tombstoned, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 2}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(allot_reservation_release(st, S("cart"), FX_T0 + 1, &r, &fx_err), 0);
    cr_assert_eq(r->status, ALLOT_RESERVATION_RELEASED);
    cr_assert_eq(fx_avail(st, "A"), 7);
    size_t events = fx_log.count;
    cr_assert_eq(allot_reservation_release(st, S("cart"), FX_T0 + 2, &r, &fx_err), 0);
    cr_assert_eq(fx_log.count, events, "idempotent release emits nothing");
    cr_assert_eq(allot_reservation_get(st, S("cart"), FX_T0 + 3, &r, &fx_err), ALLOT_ENOT_FOUND);
    cr_assert(strstr(fx_err.message, "released") != NULL, "%s", fx_err.message);
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 4, NULL), ALLOT_ECONFLICT);
    cr_assert_eq(allot_reservation_release(st, S("never"), FX_T0, &r, &fx_err), ALLOT_ENOT_FOUND);
}

/* A state keeping at most entries_max tombstones (for 1,000,000 ms), W1 with 100 of A. */
static allot_state_t *tombstone_capped_state(uint32_t entries_max)
{
    allot_state_config_t config = {.idempotency_entries_max = entries_max,
                                   .idempotency_age_ms = 1000000};
    allot_state_t *state = fx_state_with(&config);
    fx_location(state, (fx_loc_t){.id = "W1"});
    fx_stock(state, "A", "W1", 100, 0);
    return state;
}

Test(reserve, tombstones_are_bounded_oldest_first)
{
    st = tombstone_capped_state(2);
    allot_line_input_t lines[] = {{S("A"), 1}};
    const allot_reservation_t *r;
    const char *ids[] = {"r1", "r2", "r3"};
    for (int i = 0; i < 3; i++) {
        allot_reserve_request_t req = fx_req(ids[i], lines, 1);
        cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0);
        cr_assert_eq(allot_reservation_release(st, S(ids[i]), FX_T0 + i, &r, &fx_err), 0);
    }
    cr_assert_null(allot_reservation_find(st, S("r1")), "oldest tombstone evicted");
    cr_assert_not_null(allot_reservation_find(st, S("r2")));
    cr_assert_not_null(allot_reservation_find(st, S("r3")));
    /* age: a release long after evicts aged tombstones */
    allot_reserve_request_t req = fx_req("r4", lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 5000000, NULL), 0);
    cr_assert_eq(allot_reservation_release(st, S("r4"), FX_T0 + 5000000, &r, &fx_err), 0);
    cr_assert_null(allot_reservation_find(st, S("r2")));
    cr_assert_null(allot_reservation_find(st, S("r3")));
    fx_assert_replay_equal(st);
}

/* A find first compares the slot last taken (its own id decides): a dropped or reused slot must
 * never answer for the id it held before. */
Test(reserve, an_evicted_id_is_not_found_through_the_slot_it_last_had)
{
    st = tombstone_capped_state(1);
    allot_line_input_t lines[] = {{S("A"), 1}};
    const allot_reservation_t *r;
    const char *ids[] = {"r0", "r1"};
    for (int i = 0; i < 2; i++) {
        allot_reserve_request_t req = fx_req(ids[i], lines, 1);
        cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0);
    }
    /* r1's slot was taken last; its tombstone is evicted by r0's release (one tombstone kept) */
    cr_assert_eq(allot_reservation_release(st, S("r1"), FX_T0 + 1, &r, &fx_err), 0);
    cr_assert_eq(allot_reservation_release(st, S("r0"), FX_T0 + 2, &r, &fx_err), 0);
    cr_assert_null(allot_reservation_find(st, S("r1")));
    cr_assert_eq(allot_reservation_get(st, S("r1"), FX_T0 + 3, &r, &fx_err), ALLOT_ENOT_FOUND);
    /* the freed slot goes to a new id of the same length: r1 is still not found, r2 is */
    allot_reserve_request_t req = fx_req("r2", lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 4, &r), 0);
    cr_assert_null(allot_reservation_find(st, S("r1")));
    const allot_reservation_t *found = allot_reservation_find(st, S("r2"));
    cr_assert_eq(found, r);
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 5, &r), 0, "same request: the same hold");
    cr_assert_eq(r, found);
    cr_assert_eq(fx_avail(st, "A"), 99);
    fx_assert_replay_equal(st);
}

static uint64_t evicted_early(const allot_state_t *state)
{
    allot_state_counters_t c;
    allot_state_counters_get(state, &c);
    return c.idempotency_evicted_early;
}

Test(reserve, tombstones_the_cap_evicts_inside_the_window_are_counted)
{
    st = tombstone_capped_state(2);
    allot_line_input_t lines[] = {{S("A"), 1}};
    const allot_reservation_t *r;
    const char *ids[] = {"r1", "r2", "r3", "r4"};
    for (int i = 0; i < 4; i++) {
        allot_reserve_request_t req = fx_req(ids[i], lines, 1);
        cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0);
        cr_assert_eq(allot_reservation_release(st, S(ids[i]), FX_T0 + i, &r, &fx_err), 0);
    }
    cr_assert_eq(evicted_early(st), 2, "r1 and r2, well inside the window");
    allot_reserve_request_t req = fx_req("r5", lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 5000000, NULL), 0);
    cr_assert_eq(allot_reservation_release(st, S("r5"), FX_T0 + 5000000, &r, &fx_err), 0);
    cr_assert_eq(evicted_early(st), 2, "r3 was past the window when the cap evicted it");
    fx_assert_replay_equal(st);
}

/* An id of 128 bytes: the deletion records evictions write are as large as they get. */
static const char *long_id(char *buf, int i)
{
    snprintf(buf, ALLOT_ID_BYTES_MAX + 1, "%0128d", i);
    return buf;
}

/* A checkpoint record goes to the fixture's log (key order does not matter here). */
static void record_snapshot_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                               const uint8_t *payload, size_t len, bool deleted)
{
    (void)key;
    (void)key_len;
    cr_assert_not(deleted);
    fx_sink(ctx, type, payload, len);
}

/* A checkpoint of 60 tombstones loaded under a cap of 5 (a restart with a lower
 * --idempotency-entries-max): each release evicts a few (within the room its prepare made for
 * deletion records) until the count is down to the cap, then holds it there. */
Test(reserve, a_cap_lowered_at_restart_is_reached_a_few_evictions_per_release)
{
    allot_state_config_t wide = {.idempotency_entries_max = 1000, .idempotency_age_ms = 1000000};
    allot_state_t *before = fx_state_with(&wide);
    fx_location(before, (fx_loc_t){.id = "W1"});
    fx_stock(before, "A", "W1", 100, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    const allot_reservation_t *r;
    char id[ALLOT_ID_BYTES_MAX + 1];
    for (int i = 0; i < 60; i++) {
        allot_reserve_request_t req = fx_req(long_id(id, i), lines, 1);
        cr_assert_eq(fx_reserve(before, &req, FX_T0, NULL), 0);
        cr_assert_eq(allot_reservation_release(before, S(id), FX_T0 + i, &r, &fx_err), 0);
    }
    allot_state_config_t narrow = {.idempotency_entries_max = 5, .idempotency_age_ms = 1000000};
    st = allot_state_create(&narrow);
    fx_log_reset();
    cr_assert_eq(allot_state_snapshot_each(before, record_snapshot_cb, &fx_log), 0);
    for (size_t i = 0; i < fx_log.count; i++)
        cr_assert_eq(allot_event_apply_encoded(st, fx_log.events[i].type, fx_log.events[i].payload,
                                               fx_log.events[i].len),
                     0);
    allot_state_destroy(before);
    fx_log_reset();
    allot_state_dirty_clear(st);
    allot_state_counters_t c;
    allot_state_counters_get(st, &c);
    cr_assert_eq(c.tombstones, 60);
    uint64_t previous = c.tombstones;
    for (int i = 100; i < 140; i++) {
        allot_reserve_request_t req = fx_req(long_id(id, i), lines, 1);
        cr_assert_eq(fx_reserve(st, &req, FX_T0 + 100, NULL), 0);
        cr_assert_eq(allot_reservation_release(st, S(id), FX_T0 + 100, &r, &fx_err), 0);
        allot_state_counters_get(st, &c);
        cr_assert(c.tombstones == 5 || c.tombstones == previous - 2, "%llu after %llu",
                  (unsigned long long)c.tombstones, (unsigned long long)previous);
        previous = c.tombstones;
    }
    cr_assert_eq(c.tombstones, 5);
    cr_assert_not_null(allot_reservation_find(st, S(long_id(id, 139))));
    cr_assert_null(allot_reservation_find(st, S(long_id(id, 59))));
}

Test(reserve, live_reservations_are_bounded)
{
    allot_state_config_t config = {.reservations_max = 1};
    st = fx_state_with(&config);
    fx_location(st, (fx_loc_t){.id = "W1"});
    fx_stock(st, "A", "W1", 100, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    allot_reserve_request_t a = fx_req("a", lines, 1), b = fx_req("b", lines, 1);
    cr_assert_eq(fx_reserve(st, &a, FX_T0, NULL), 0);
    cr_assert_eq(fx_reserve(st, &b, FX_T0, NULL), ALLOT_EOVERLOADED);
}

/* ---- invalid input -------------------------------------------------------------------------- */

Test(reserve, invalid_inputs_change_nothing, .init = two_warehouses)
{
    size_t events = fx_log.count;
    allot_line_input_t lines[ALLOT_LINES_MAX + 1];
    for (int i = 0; i <= ALLOT_LINES_MAX; i++)
        lines[i] = (allot_line_input_t){S("A"), 1};
    allot_reserve_request_t req = fx_req("cart", lines, ALLOT_LINES_MAX + 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_ETOO_LARGE);
    cr_assert_str_eq(fx_err.field, "lines");
    req.line_count = 0;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    req.line_count = 1;
    int64_t bad_qty[] = {0, -1, ALLOT_QUANTITY_MAX + 1};
    for (int i = 0; i < 3; i++) {
        lines[0].qty = bad_qty[i];
        cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
        cr_assert_str_eq(fx_err.field, "qty");
    }
    lines[0].qty = 1;
    req.ttl_s = 0;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    req.ttl_s = ALLOT_RESERVATION_TTL_S_MAX + 1;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    req.ttl_s = ALLOT_RESERVATION_TTL_S_MAX;
    req.id = S("");
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "id");
    char long_id[ALLOT_ID_BYTES_MAX + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[ALLOT_ID_BYTES_MAX + 1] = '\0';
    req.id = S(long_id);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    req.id = S("cart");
    lines[0].sku = S("");
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "sku");
    lines[0].sku = (allot_str_t){"\xff", 1};
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    lines[0].sku = S("A");
    req.location = S("nowhere");
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_ENOT_FOUND);
    cr_assert_str_eq(fx_err.field, "location");
    req.location = S("");
    req.has_ship_to = true;
    req.lat = 91;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(fx_log.count, events);
    /* the boundary values are accepted */
    req.has_ship_to = false;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0);
}

Test(reserve, explicit_location_restricts_shipping, .init = two_warehouses)
{
    allot_line_input_t lines[] = {{S("A"), 4}};
    allot_reserve_request_t req = fx_req("cart", lines, 1);
    req.location = S("W2");
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), ALLOT_EINSUFFICIENT_STOCK);
    lines[0].qty = 3;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, &r), 0);
    cr_assert_eq(fx_held_at(st, r, 0, "W2"), 3);
}

Test(reserve, two_hundred_thousand_holds_outgrow_the_huge_page_tables_and_stay_found_and_expire,
     .init = two_warehouses)
{
    /* the slab (120 bytes a hold), the id hash (8 bytes a slot) and the expiry heap (16 bytes an
     * entry) become mappings of whole 2 MiB pages past ALLOT_PAGES_HUGE_BYTES and grow by moving
     * their pages: every hold must stay where its id says, with its bytes, across each move */
    enum { HOLDS = 200000 };
    size_t events = 0;
    allot_state_set_event_sink(st, counting_sink, &events);
    fx_stock(st, "A", "W1", HOLDS, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    char id[32];
    for (uint32_t i = 0; i < HOLDS; i++) {
        snprintf(id, sizeof(id), "c3f1a9e1b27d4c5a0-0-%u", i); /* a shared 21-byte prefix */
        allot_reserve_request_t req = fx_req(id, lines, 1);
        req.ttl_s = 60 * (1 + i % 7); /* expiry order is not the order of the slab */
        cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0, "hold %u: %s", i, fx_err.message);
    }
    cr_assert_eq(fx_avail(st, "A"), 3, "W2's 3 units are left");
    for (uint32_t i = 0; i < HOLDS; i++) {
        snprintf(id, sizeof(id), "c3f1a9e1b27d4c5a0-0-%u", i);
        const allot_reservation_t *r = allot_reservation_find(st, S(id));
        cr_assert_not_null(r, "hold %u", i);
        cr_assert_str_eq(allot_reservation_id(r).ptr, id);
        cr_assert_eq(r->expires_at_ms, FX_T0 + 60000 * (1 + i % 7));
        cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 1);
    }
    for (uint32_t i = 0; i < HOLDS; i += 5) { /* tombstones: the second heap grows too */
        snprintf(id, sizeof(id), "c3f1a9e1b27d4c5a0-0-%u", i);
        const allot_reservation_t *released;
        cr_assert_eq(allot_reservation_release(st, S(id), FX_T0, &released, &fx_err), 0, "%s",
                     fx_err.message);
    }
    /* the ttls' seven deadlines come in order: each expires exactly its holds */
    uint32_t expired = 0;
    for (uint32_t k = 1; k <= 7; k++) {
        uint32_t due = 0;
        for (uint32_t i = 0; i < HOLDS; i++)
            due += i % 5 != 0 && 1 + i % 7 == k;
        cr_assert_eq(allot_reservations_expire(st, FX_T0 + 60000 * k, UINT32_MAX), due,
                     "deadline %u", k);
        expired += due;
    }
    cr_assert_eq(expired + HOLDS / 5, HOLDS);
    cr_assert_eq(fx_avail(st, "A"), HOLDS + 3, "every unit is back");
    cr_assert_gt(events, HOLDS, "the holds were emitted");
}
