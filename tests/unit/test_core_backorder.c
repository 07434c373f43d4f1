/* test_core_backorder.c - orders with backordered lines: order.create from a backorder hold,
 * what release, ship, deliver and cancel do with the units still waiting, the supplies' held,
 * the order record's version 1 format, and replay and checkpoints equal to the live state. */
#include <criterion/criterion.h>

#include "core/base/buffer.h"
#include "core/errors.h"
#include "core/order.h"
#include "core/sale.h"
#include "core/supply.h"
#include "test_core_fixture.h"

#define DAY_MS (24LL * 3600 * 1000)

static allot_state_t *st;

static void teardown(void)
{
    allot_state_destroy(st);
    st = NULL;
    fx_log_reset();
}

static void put(const char *id, const char *sku, const char *loc, int64_t qty, int64_t eta_ms)
{
    allot_supply_put_input_t in = {S(id), S(sku), S(loc), qty, eta_ms};
    allot_supply_view_t v;
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_supply_put(st, &in, FX_T0, &v, &fx_err), 0, "supply.put %s: %s", id,
                 fx_err.message);
}

static allot_supply_view_t get(const char *id)
{
    allot_supply_view_t v;
    cr_assert_eq(allot_supply_get(st, S(id), &v, &fx_err), 0, "%s", fx_err.message);
    return v;
}

static void assert_invariants(void)
{
    char msg[256];
    cr_assert_eq(allot_state_check_invariants(st, msg, sizeof(msg)), 0, "%s", msg);
}

static allot_line_input_t bo_lines[4];
static bool bo_flags[4];

/* A hold of qty units of A with backorder (of the customer, when given). */
static void hold_a(const char *id, int64_t qty, const char *customer)
{
    bo_lines[0] = (allot_line_input_t){S("A"), qty};
    bo_flags[0] = true;
    allot_reserve_request_t req = fx_req(id, bo_lines, 1);
    req.backorder = bo_flags;
    req.customer = customer != NULL ? S(customer) : (allot_str_t){"", 0};
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0, "reserve %s: %s", id, fx_err.message);
}

static int order_from(const char *id, const char *reservation, int64_t now_ms,
                      const allot_order_view_t **out)
{
    allot_order_create_request_t req = {.id = S(id), .reservation = S(reservation)};
    const allot_order_view_t *dummy;
    allot_error_detail_clear(&fx_err);
    return allot_order_create(st, &req, now_ms, out != NULL ? out : &dummy, &fx_err);
}

static const allot_order_view_t *order(const char *id)
{
    const allot_order_view_t *v;
    cr_assert_eq(allot_order_get(st, S(id), &v, &fx_err), 0, "%s", fx_err.message);
    return v;
}

/* Units of the order's line `line` waiting for the supply `supply` (any supply: NULL). */
static int64_t backordered(const allot_order_view_t *v, uint32_t line, const char *supply)
{
    int64_t qty = 0;
    for (uint32_t i = 0; i < v->backorder_count; i++)
        if (v->backorders[i].line == line &&
            (supply == NULL || allot_str_equal(v->backorders[i].supply, S(supply))))
            qty += v->backorders[i].qty;
    return qty;
}

static void order_step(int rc)
{
    cr_assert_eq(rc, 0, "%s", fx_err.message);
    assert_invariants();
}

/* W1 has 5 of A; PO-EARLY (4, tomorrow, at W1) and PO-LATE (10, in 3 days, at W2) are open. */
static void supplies(void)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58});
    fx_stock(st, "A", "W1", 5, 0);
    put("PO-LATE", "A", "W2", 10, FX_T0 + 3 * DAY_MS);
    put("PO-EARLY", "A", "W1", 4, FX_T0 + DAY_MS);
}

/* ---- order.create from a backorder hold ------------------------------------------------------ */

Test(backorder, an_order_from_a_backorder_hold_keeps_the_supply_units_backordered_on_its_line,
     .init = supplies, .fini = teardown)
{
    hold_a("R1", 12, NULL); /* 5 at W1, 4 on PO-EARLY, 3 on PO-LATE */
    const allot_order_view_t *o;
    order_step(order_from("O1", "R1", FX_T0 + 1, &o));
    cr_assert_eq(o->line_count, 1);
    cr_assert_eq(o->lines[0].qty, 12, "the line is the whole hold");
    cr_assert_eq(backordered(o, 0, NULL), 7);
    cr_assert_eq(backordered(o, 0, "PO-EARLY"), 4);
    cr_assert_eq(backordered(o, 0, "PO-LATE"), 3);
    cr_assert_eq(o->shipment_count, 1, "no shipment for backordered units");
    cr_assert_eq(o->items[o->shipments[0].item_first].qty, 5);
    cr_assert_eq(fx_position(st, "A", "W1")->allocated, 5);
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 0);
    cr_assert_eq(get("PO-EARLY").held, 4, "held now by the order");
    cr_assert_eq(get("PO-LATE").held, 3);
    cr_assert_eq(allot_reservation_find(st, S("R1"))->status, ALLOT_RESERVATION_RELEASED);
    /* the same request again is a retry; held does not move */
    size_t written = fx_log.count;
    order_step(order_from("O1", "R1", FX_T0 + 2, &o));
    cr_assert_eq(fx_log.count, written);
    cr_assert_eq(get("PO-LATE").held, 3);
    cr_assert_eq(order("O1")->backorder_count, 2);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(backorder, an_order_of_backordered_units_only_has_no_shipment_and_releases, .init = supplies,
     .fini = teardown)
{
    hold_a("R0", 5, NULL); /* takes the stock */
    hold_a("R1", 6, NULL); /* 4 on PO-EARLY, 2 on PO-LATE */
    const allot_order_view_t *o;
    order_step(order_from("O1", "R1", FX_T0 + 1, &o));
    cr_assert_eq(o->shipment_count, 0);
    cr_assert_eq(backordered(o, 0, NULL), 6);
    order_step(allot_order_pay(st, S("O1"), ALLOT_PAYMENT_AUTHORIZED, FX_T0 + 2, &o, &fx_err));
    order_step(allot_order_release(st, S("O1"), FX_T0 + 3, &o, &fx_err));
    cr_assert_eq(o->state, ALLOT_ORDER_RELEASED);
    cr_assert_eq(backordered(o, 0, NULL), 6, "release leaves backordered units waiting");
    fx_assert_replay_equal(st);
}

Test(backorder, shipped_and_delivered_shipments_leave_the_order_partially_shipped_while_waiting,
     .init = supplies, .fini = teardown)
{
    hold_a("R1", 8, NULL); /* 5 at W1, 3 on PO-EARLY */
    const allot_order_view_t *o;
    order_step(order_from("O1", "R1", FX_T0 + 1, &o));
    order_step(allot_order_pay(st, S("O1"), ALLOT_PAYMENT_CAPTURED, FX_T0 + 2, &o, &fx_err));
    order_step(allot_order_release(st, S("O1"), FX_T0 + 3, &o, &fx_err));
    order_step(allot_shipment_ship(st, S("O1"), S("S1"), S("T-1"), FX_T0 + 4, &o, &fx_err));
    cr_assert_eq(o->state, ALLOT_ORDER_PARTIALLY_SHIPPED, "its shipments shipped, not the order");
    order_step(allot_shipment_deliver(st, S("O1"), S("S1"), FX_T0 + 5, &o, &fx_err));
    cr_assert_eq(o->state, ALLOT_ORDER_PARTIALLY_SHIPPED, "never delivered while units wait");
    cr_assert_eq(o->ended_ms, 0);
    cr_assert_eq(backordered(o, 0, "PO-EARLY"), 3);
    cr_assert_eq(allot_order_cancel(st, S("O1"), S("late"), FX_T0 + 6, &o, &fx_err),
                 ALLOT_EINVALID_TRANSITION, "something shipped: no cancel");
    cr_assert_eq(get("PO-EARLY").held, 3);
    fx_assert_replay_equal(st);
}

Test(backorder, cancel_gives_backordered_units_back_to_their_supplies_in_the_same_record,
     .init = supplies, .fini = teardown)
{
    hold_a("R1", 12, NULL);
    hold_a("R2", 2, NULL); /* on PO-LATE too */
    const allot_order_view_t *o;
    order_step(order_from("O1", "R1", FX_T0 + 1, &o));
    size_t written = fx_log.count;
    order_step(allot_order_cancel(st, S("O1"), S("changed mind"), FX_T0 + 2, &o, &fx_err));
    cr_assert_eq(fx_log.count, written + 1, "one record");
    cr_assert_eq(o->state, ALLOT_ORDER_CANCELLED);
    cr_assert_eq(o->backorder_count, 0, "nothing waits any more");
    cr_assert_eq(get("PO-EARLY").held, 0);
    cr_assert_eq(get("PO-LATE").held, 2, "only the other hold's units");
    cr_assert_eq(fx_position(st, "A", "W1")->allocated, 0);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(backorder, the_customer_limit_counts_backordered_units_of_orders, .init = supplies,
     .fini = teardown)
{
    allot_sku_settings_t settings = {.max_per_customer = 10};
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_sku_put(st, S("A"), &settings, FX_T0, &fx_err), 0, "%s", fx_err.message);
    hold_a("R1", 9, "alice"); /* 5 at W1, 4 on PO-EARLY */
    order_step(order_from("O1", "R1", FX_T0 + 1, NULL));
    bo_lines[0] = (allot_line_input_t){S("A"), 2};
    bo_flags[0] = true;
    allot_reserve_request_t req = fx_req("R2", bo_lines, 1);
    req.backorder = bo_flags;
    req.customer = S("alice");
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 2, NULL), ALLOT_ELIMIT_EXCEEDED,
                 "9 in the order, backordered ones included");
    assert_invariants();
}

/* ---- records -------------------------------------------------------------------------------- */

Test(backorder, an_order_record_of_version_1_decodes_with_no_backorders, .init = supplies,
     .fini = teardown)
{
    bo_lines[0] = (allot_line_input_t){S("A"), 2};
    allot_reserve_request_t req = fx_req("R1", bo_lines, 1);
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0, "%s", fx_err.message);
    order_step(order_from("O1", "R1", FX_T0 + 1, NULL));
    fx_event_t *e = &fx_log.events[fx_log.count - 1];
    cr_assert_eq(e->type, ALLOT_EVENT_ORDER_CREATE);
    /* version 2 ends with u8 version = 2, u16 backorder_count = 0: version 1 ends before them */
    cr_assert_eq(e->payload[e->len - 3], 2);
    cr_assert_eq(e->payload[e->len - 2] | e->payload[e->len - 1], 0);
    allot_state_t *replica = allot_state_create(&fx_config);
    for (size_t i = 0; i + 1 < fx_log.count; i++)
        cr_assert_eq(allot_event_apply_encoded(replica, fx_log.events[i].type,
                                               fx_log.events[i].payload, fx_log.events[i].len),
                     0);
    cr_assert_eq(allot_event_apply_encoded(replica, e->type, e->payload, e->len - 3), 0);
    char *a = fx_dump(st);
    char *b = fx_dump(replica);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    /* a version byte other than 2, or a count without its entries, is corrupt */
    allot_event_scratch_t scratch = {0};
    allot_event_t decoded;
    e->payload[e->len - 3] = 3;
    cr_assert_eq(allot_event_decode(e->type, e->payload, e->len, &scratch, &decoded),
                 ALLOT_ECORRUPT);
    e->payload[e->len - 3] = 2;
    e->payload[e->len - 2] = 1;
    cr_assert_eq(allot_event_decode(e->type, e->payload, e->len, &scratch, &decoded),
                 ALLOT_ECORRUPT);
    allot_event_scratch_free(&scratch);
    allot_state_destroy(replica);
}
