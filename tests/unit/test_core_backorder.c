/* test_core_backorder.c - orders with backordered lines: order.create from a backorder hold,
 * what release, ship, deliver and cancel do with the units still waiting, the supplies' held,
 * the order record's version 1 format, and replay and checkpoints equal to the live state. */
#include <criterion/criterion.h>

#include "core/base/buffer.h"
#include "core/errors.h"
#include "core/order.h"
#include "core/sale.h"
#include "core/stream.h"
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

static void assert_id(allot_str_t s, const char *want)
{
    cr_assert(allot_str_equal(s, S(want)), "got %.*s, want %s", (int)s.len, s.ptr, want);
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

/* ---- receipts serve backorders --------------------------------------------------------------- */

static int receive_at(const char *id, int64_t qty, int64_t now_ms)
{
    allot_supply_view_t v;
    allot_error_detail_clear(&fx_err);
    return allot_supply_receive(st, S(id), qty > 0, qty, now_ms, &v, &fx_err);
}

/* Units the live hold's line 0 holds at a location, or on a supply. */
static int64_t hold_at(const char *id, const char *location)
{
    const allot_reservation_t *r = allot_reservation_find(st, S(id));
    cr_assert(r != NULL && allot_reservation_lines(r) != NULL, "hold %s is live", id);
    return fx_held_at(st, r, 0, location);
}

static int64_t hold_on(const char *id, const char *supply)
{
    const allot_reservation_t *r = allot_reservation_find(st, S(id));
    int64_t qty = 0;
    for (uint32_t k = 0; k < r->allocation_count; k++)
        if (allot_reservation_allocations(r)[k].location == ALLOT_LOCATION_SUPPLY &&
            allot_str_equal(
                allot_reservation_allocation_supply(r, &allot_reservation_allocations(r)[k]),
                S(supply)))
            qty += allot_reservation_allocations(r)[k].qty;
    return qty;
}

/* Units of A in the order's shipment `index` (0 when it has none). */
static int64_t shipped_in(const allot_order_view_t *v, uint32_t index)
{
    if (index >= v->shipment_count)
        return 0;
    const allot_event_shipment_t *s = &v->shipments[index];
    int64_t qty = 0;
    for (uint32_t k = 0; k < s->item_count; k++)
        qty += v->items[s->item_first + k].qty;
    return qty;
}

/* No stock; PO-1 brings 10 of A to W2 tomorrow. The live hold R-LIVE (2) is older than the
 * orders; order O-B (3) is created before O-A (3), whose ids sort the other way. */
static void orders_waiting(void)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58});
    put("PO-1", "A", "W2", 10, FX_T0 + DAY_MS);
    hold_a("R-LIVE", 2, NULL);
    hold_a("R-B", 3, NULL);
    hold_a("R-A", 3, NULL);
    order_step(order_from("O-B", "R-B", FX_T0 + 10, NULL));
    order_step(order_from("O-A", "R-A", FX_T0 + 20, NULL));
    cr_assert_eq(get("PO-1").held, 8);
}

Test(backorder, a_receipt_serves_orders_oldest_first_then_live_holds_then_stock,
     .init = orders_waiting, .fini = teardown)
{
    size_t written = fx_log.count;
    order_step(receive_at("PO-1", 4, FX_T0 + DAY_MS));
    cr_assert_eq(fx_log.count, written + 1, "one record");
    const allot_order_view_t *b = order("O-B");
    cr_assert_eq(b->shipment_count, 1);
    cr_assert_eq(shipped_in(b, 0), 3, "the oldest order in full");
    assert_id(b->shipments[0].location, "W2");
    cr_assert_eq(b->shipments[0].state, ALLOT_SHIPMENT_ALLOCATED);
    cr_assert_eq(b->backorder_count, 0);
    const allot_order_view_t *a = order("O-A");
    cr_assert_eq(shipped_in(a, 0), 1, "the next order gets what is left: a partial receipt");
    cr_assert_eq(backordered(a, 0, "PO-1"), 2);
    cr_assert_eq(hold_on("R-LIVE", "PO-1"), 2, "holds come after orders");
    cr_assert_eq(get("PO-1").held, 4);
    cr_assert_eq(fx_position(st, "A", "W2")->on_hand, 4);
    cr_assert_eq(fx_position(st, "A", "W2")->allocated, 4);
    cr_assert_eq(fx_avail(st, "A"), 0);

    order_step(receive_at("PO-1", 5, FX_T0 + DAY_MS + 1));
    a = order("O-A");
    cr_assert_eq(a->shipment_count, 2, "a second delivery is a second shipment");
    cr_assert_eq(shipped_in(a, 1), 2);
    cr_assert_eq(a->backorder_count, 0);
    cr_assert_eq(hold_on("R-LIVE", "PO-1"), 0);
    cr_assert_eq(hold_at("R-LIVE", "W2"), 2, "the live hold now holds stock at W2");
    cr_assert_eq(fx_position(st, "A", "W2")->reserved, 2);
    cr_assert_eq(get("PO-1").held, 0);
    cr_assert_eq(fx_avail(st, "A"), 1, "what is left is plain stock");
    order_step(receive_at("PO-1", 0, FX_T0 + DAY_MS + 2));
    cr_assert_eq(get("PO-1").state, ALLOT_SUPPLY_RECEIVED);
    cr_assert_eq(fx_avail(st, "A"), 2);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(backorder, a_receipt_turns_a_hold_into_stock_at_its_location_merged_with_what_it_held_there,
     .init = supplies, .fini = teardown)
{
    hold_a("R1", 7, NULL);                              /* 5 at W1, 2 on PO-EARLY (at W1) */
    order_step(receive_at("PO-EARLY", 4, FX_T0 + 100)); /* early */
    const allot_reservation_t *r = allot_reservation_find(st, S("R1"));
    cr_assert_eq(r->allocation_count, 1, "one allocation at W1");
    cr_assert_eq(hold_at("R1", "W1"), 7);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 7);
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 7);
    cr_assert_eq(fx_position(st, "A", "W1")->on_hand, 9);
    /* the order from it ships all seven from W1 */
    const allot_order_view_t *o;
    order_step(order_from("O1", "R1", FX_T0 + 200, &o));
    cr_assert_eq(o->backorder_count, 0);
    cr_assert_eq(shipped_in(o, 0), 7);
    /* releasing the rest of the supply's units gives plain stock */
    cr_assert_eq(fx_avail(st, "A"), 2);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(backorder, a_released_order_gets_a_released_shipment_and_is_delivered_once_all_arrived,
     .init = supplies, .fini = teardown)
{
    hold_a("R1", 8, NULL); /* 5 at W1, 3 on PO-EARLY */
    const allot_order_view_t *o;
    order_step(order_from("O1", "R1", FX_T0 + 1, &o));
    order_step(allot_order_pay(st, S("O1"), ALLOT_PAYMENT_CAPTURED, FX_T0 + 2, &o, &fx_err));
    order_step(allot_order_release(st, S("O1"), FX_T0 + 3, &o, &fx_err));
    order_step(allot_shipment_ship(st, S("O1"), S("S1"), S("T-1"), FX_T0 + 4, &o, &fx_err));
    order_step(allot_shipment_deliver(st, S("O1"), S("S1"), FX_T0 + 5, &o, &fx_err));
    cr_assert_eq(o->state, ALLOT_ORDER_PARTIALLY_SHIPPED);
    order_step(receive_at("PO-EARLY", 0, FX_T0 + DAY_MS));
    o = order("O1");
    cr_assert_eq(o->shipment_count, 2);
    cr_assert_eq(o->shipments[1].state, ALLOT_SHIPMENT_RELEASED, "ready to pick at once");
    cr_assert_eq(o->history[o->history_count - 1].event, ALLOT_ORDER_EVENT_RECEIVE);
    assert_id(o->history[o->history_count - 1].text, "PO-EARLY");
    order_step(
        allot_shipment_ship(st, S("O1"), S("S2"), S("T-2"), FX_T0 + DAY_MS + 1, &o, &fx_err));
    order_step(allot_shipment_deliver(st, S("O1"), S("S2"), FX_T0 + DAY_MS + 2, &o, &fx_err));
    cr_assert_eq(o->state, ALLOT_ORDER_DELIVERED);
    cr_assert_neq(o->ended_ms, 0);
    fx_assert_replay_equal(st);
}

Test(backorder, a_version_1_receipt_record_is_plain_stock_and_never_takes_held_units,
     .init = supplies, .fini = teardown)
{
    hold_a("R1", 12, NULL); /* 3 on PO-LATE: 7 free */
    allot_event_t event = {.type = ALLOT_EVENT_SUPPLY_RECEIVE};
    event.u.supply = (allot_event_supply_t){.id = S("PO-LATE"),
                                            .sku = S("A"),
                                            .location = S("W2"),
                                            .qty = 7,
                                            .on_hand_after = 7,
                                            .at_ms = FX_T0 + 5};
    allot_bytes_t bytes = {0};
    cr_assert_eq(allot_event_encode(&event, &bytes), 0);
    cr_assert_eq(allot_event_apply_encoded(st, event.type, bytes.data, bytes.len), 0);
    cr_assert_eq(get("PO-LATE").held, 3, "held units keep waiting");
    cr_assert_eq(hold_on("R1", "PO-LATE"), 3);
    cr_assert_eq(fx_position(st, "A", "W2")->on_hand, 7);
    assert_invariants();
    bytes.len = 0;
    event.u.supply.qty = 1;
    event.u.supply.on_hand_after = 8;
    cr_assert_eq(allot_event_encode(&event, &bytes), 0);
    cr_assert_eq(allot_event_apply_encoded(st, event.type, bytes.data, bytes.len), ALLOT_ECORRUPT,
                 "a version 1 receipt of held units does not fit");
    allot_bytes_free(&bytes);
}

static void on_change(void *ctx, uint64_t lsn, uint32_t index, const allot_change_t *c)
{
    (void)lsn;
    FILE *out = ctx;
    if (c->type == ALLOT_CHANGE_ORDER_CHANGED)
        fprintf(out, "%u order.changed %.*s %s->%s %s\n", index, (int)c->id.len, c->id.ptr, c->from,
                c->to, c->cause);
    else if (c->type == ALLOT_CHANGE_SHIPMENT_CHANGED)
        fprintf(out, "%u shipment.changed %.*s S%u@%.*s %s->%s\n", index, (int)c->order.len,
                c->order.ptr, c->shipment + 1, (int)c->location.len, c->location.ptr,
                c->from != NULL ? c->from : "nil", c->to);
    else if (c->type == ALLOT_CHANGE_SUPPLY_CHANGED)
        fprintf(out, "%u supply.changed %.*s received=%lld held=%lld %s\n", index, (int)c->id.len,
                c->id.ptr, (long long)c->received, (long long)c->held, c->cause);
    else if (c->type == ALLOT_CHANGE_STOCK_CHANGED)
        fprintf(out, "%u stock.changed %.*s@%.*s on_hand=%lld reserved=%lld allocated=%lld\n",
                index, (int)c->sku.len, c->sku.ptr, (int)c->location.len, c->location.ptr,
                (long long)c->on_hand, (long long)c->reserved, (long long)c->allocated);
}

Test(backorder, a_receipt_gives_order_and_shipment_changes_for_the_orders_it_serves,
     .init = orders_waiting, .fini = teardown)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    allot_state_set_change_observer(st, on_change, out);
    order_step(receive_at("PO-1", 4, FX_T0 + DAY_MS));
    order_step(receive_at("PO-1", 6, FX_T0 + DAY_MS + 1));
    fclose(out);
    const char *want = "0 supply.changed PO-1 received=4 held=4 supply.receive\n"
                       "1 order.changed O-B created->created supply.receive\n"
                       "2 shipment.changed O-B S1@W2 nil->allocated\n"
                       "3 order.changed O-A created->created supply.receive\n"
                       "4 shipment.changed O-A S1@W2 nil->allocated\n"
                       "5 stock.changed A@W2 on_hand=4 reserved=0 allocated=4\n"
                       "0 supply.changed PO-1 received=10 held=0 supply.receive\n"
                       "1 order.changed O-A created->created supply.receive\n"
                       "2 shipment.changed O-A S2@W2 nil->allocated\n"
                       "3 stock.changed A@W2 on_hand=10 reserved=2 allocated=6\n";
    cr_assert_str_eq(text, want);
    free(text);
}

Test(backorder, a_hold_served_by_a_receipt_keeps_its_customer_and_its_other_supplies,
     .init = supplies, .fini = teardown)
{
    hold_a("R1", 12, "alice"); /* 5 at W1, 4 on PO-EARLY, 3 on PO-LATE */
    order_step(receive_at("PO-EARLY", 4, FX_T0 + 100));
    const allot_reservation_t *r = allot_reservation_find(st, S("R1"));
    cr_assert_eq(r->customer_len, 5);
    cr_assert_eq(memcmp(allot_reservation_customer(r).ptr, "alice", 5), 0);
    cr_assert_eq(hold_at("R1", "W1"), 9);
    cr_assert_eq(hold_on("R1", "PO-LATE"), 3, "the other supply's units keep waiting");
    cr_assert_eq(hold_on("R1", "PO-EARLY"), 0);
    const allot_order_view_t *o;
    order_step(order_from("O1", "R1", FX_T0 + 200, &o));
    assert_id(o->customer, "alice");
    cr_assert_eq(shipped_in(o, 0), 9);
    cr_assert_eq(backordered(o, 0, "PO-LATE"), 3);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

/* An order spread over the most shipments an order may have, with one unit backordered. */
static void order_at_the_shipment_bound(void)
{
    st = fx_state();
    char id[16];
    for (int i = 0; i < ALLOT_ORDER_SHIPMENTS_MAX; i++) {
        snprintf(id, sizeof id, "L%d", i);
        fx_location(st, (fx_loc_t){.id = id, .lat = 50, .lon = 10 + i * 0.01});
        fx_stock(st, "A", id, 1, 0);
    }
    put("PO-1", "A", "L0", 4, FX_T0 + DAY_MS);
    hold_a("R-FULL", ALLOT_ORDER_SHIPMENTS_MAX + 1, NULL);
    order_step(order_from("O-FULL", "R-FULL", FX_T0 + 1, NULL));
    cr_assert_eq(order("O-FULL")->shipment_count, ALLOT_ORDER_SHIPMENTS_MAX);
    hold_a("R-NEXT", 1, NULL);
    order_step(order_from("O-NEXT", "R-NEXT", FX_T0 + 2, NULL));
}

Test(backorder, an_order_that_cannot_take_one_more_shipment_is_passed_over,
     .init = order_at_the_shipment_bound, .fini = teardown)
{
    order_step(receive_at("PO-1", 2, FX_T0 + 10));
    cr_assert_eq(backordered(order("O-FULL"), 0, "PO-1"), 1, "passed over");
    cr_assert_eq(order("O-NEXT")->backorder_count, 0, "the next order is served");
    cr_assert_eq(get("PO-1").held, 1);
    size_t written = fx_log.count;
    cr_assert_eq(receive_at("PO-1", 0, FX_T0 + 20), ALLOT_ETOO_LARGE,
                 "the last unit would leave it waiting on a received supply");
    cr_assert_eq(fx_log.count, written, "nothing written");
    cr_assert_eq(get("PO-1").received, 2);
    const allot_order_view_t *o;
    order_step(allot_order_cancel(st, S("O-FULL"), S(""), FX_T0 + 30, &o, &fx_err));
    order_step(receive_at("PO-1", 0, FX_T0 + 40));
    cr_assert_eq(get("PO-1").state, ALLOT_SUPPLY_RECEIVED);
    fx_assert_replay_equal(st);
}

/* ---- supply.cancel moves or releases the backorders on the supply -----------------------------
 */

static int cancel_at(const char *id, int64_t now_ms)
{
    allot_supply_view_t v;
    allot_error_detail_clear(&fx_err);
    return allot_supply_cancel(st, S(id), now_ms, &v, &fx_err);
}

Test(backorder, cancel_moves_an_orders_and_a_holds_backorders_to_the_earliest_other_supply_first,
     .init = supplies, .fini = teardown)
{
    hold_a("R0", 5, NULL);    /* the stock */
    hold_a("R1", 3, "alice"); /* 3 on PO-EARLY */
    order_step(order_from("O1", "R1", FX_T0 + 1, NULL));
    hold_a("R2", 1, NULL);                           /* the last unit of PO-EARLY, a live hold */
    put("PO-MID", "A", "W1", 2, FX_T0 + 2 * DAY_MS); /* between the two */
    cr_assert_eq(get("PO-EARLY").held, 4);
    size_t written = fx_log.count;
    order_step(cancel_at("PO-EARLY", FX_T0 + 100));
    cr_assert_eq(fx_log.count, written + 1, "one record");
    cr_assert_eq(get("PO-EARLY").state, ALLOT_SUPPLY_CANCELLED);
    cr_assert_eq(get("PO-EARLY").held, 0);
    cr_assert_eq(get("PO-MID").held, 2, "the earliest other supply first, to its qty");
    cr_assert_eq(get("PO-LATE").held, 2, "then the next");
    const allot_order_view_t *o = order("O1");
    cr_assert_eq(o->state, ALLOT_ORDER_CREATED);
    cr_assert_eq(o->lines[0].qty, 3, "nothing cancelled from the line");
    cr_assert_eq(backordered(o, 0, "PO-MID"), 2, "the order (older) moves first");
    cr_assert_eq(backordered(o, 0, "PO-LATE"), 1);
    cr_assert_eq(backordered(o, 0, "PO-EARLY"), 0);
    cr_assert_eq(hold_on("R2", "PO-LATE"), 1, "the hold moves to what is left");
    cr_assert_eq(hold_on("R2", "PO-EARLY"), 0);
    cr_assert_eq(allot_reservation_lines(allot_reservation_find(st, S("R2")))[0].qty_held, 1);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
    /* the moved units are served by their new supply */
    order_step(receive_at("PO-MID", 0, FX_T0 + 2 * DAY_MS));
    cr_assert_eq(shipped_in(order("O1"), 0), 2);
    cr_assert_eq(backordered(order("O1"), 0, "PO-LATE"), 1);
    fx_assert_replay_equal(st);
}

/* W1 has 1 of A, PO-1 brings 12 to W1 tomorrow. R-MIX holds the stock unit and 2 of PO-1; orders
 * O1 (3), O2 (2) and O3 (2), oldest first, and the live hold R-ONLY (2) wait on PO-1 alone; PO-2
 * (4, in two days, at W2) is open. Cancelling PO-1 moves O1's 3 and 1 of O2's to PO-2. */
static void more_backorders_than_room(void)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58});
    fx_stock(st, "A", "W1", 1, 0);
    put("PO-1", "A", "W1", 12, FX_T0 + DAY_MS);
    hold_a("R-MIX", 3, "bob");
    hold_a("R-O1", 3, NULL);
    hold_a("R-O2", 2, "carol");
    hold_a("R-O3", 2, NULL);
    hold_a("R-ONLY", 2, NULL);
    order_step(order_from("O1", "R-O1", FX_T0 + 10, NULL));
    order_step(order_from("O2", "R-O2", FX_T0 + 20, NULL));
    order_step(order_from("O3", "R-O3", FX_T0 + 30, NULL));
    put("PO-2", "A", "W2", 4, FX_T0 + 2 * DAY_MS);
    cr_assert_eq(get("PO-1").held, 11);
}

Test(backorder, cancel_releases_what_cannot_move_oldest_keep_first,
     .init = more_backorders_than_room, .fini = teardown)
{
    order_step(cancel_at("PO-1", FX_T0 + 100));
    cr_assert_eq(get("PO-1").held, 0);
    cr_assert_eq(get("PO-2").held, 4, "the other supply takes what fits, no more");
    const allot_order_view_t *o = order("O1");
    cr_assert_eq(backordered(o, 0, "PO-2"), 3, "the oldest order moves in full");
    cr_assert_eq(o->lines[0].qty, 3);
    o = order("O2");
    cr_assert_eq(o->state, ALLOT_ORDER_CREATED, "still waiting for one unit");
    cr_assert_eq(backordered(o, 0, "PO-2"), 1);
    cr_assert_eq(o->lines[0].qty, 1, "the unit that could not move is cancelled from the line");
    o = order("O3");
    cr_assert_eq(o->state, ALLOT_ORDER_CANCELLED, "nothing left to ship: cancelled");
    cr_assert_eq(o->backorder_count, 0);
    cr_assert_eq(o->lines[0].qty, 2, "a cancelled order keeps its lines as ordered");
    cr_assert_eq(o->history[o->history_count - 1].event, ALLOT_ORDER_EVENT_CANCEL);
    assert_id(o->history[o->history_count - 1].text, "supply.cancelled");
    const allot_reservation_t *r = allot_reservation_find(st, S("R-MIX"));
    cr_assert_eq(r->status, ALLOT_RESERVATION_ACTIVE, "it still holds the stock unit");
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 1, "the line holds less");
    cr_assert_eq(hold_at("R-MIX", "W1"), 1);
    cr_assert_eq(hold_on("R-MIX", "PO-1"), 0);
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 1);
    cr_assert_eq(allot_reservation_find(st, S("R-ONLY"))->status, ALLOT_RESERVATION_RELEASED,
                 "a hold left holding nothing is released");
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(backorder, cancel_gives_the_customers_back_the_units_it_cancels,
     .init = more_backorders_than_room, .fini = teardown)
{
    allot_sku_settings_t settings = {.max_per_customer = 3};
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_sku_put(st, S("A"), &settings, FX_T0, &fx_err), 0, "%s", fx_err.message);
    order_step(cancel_at("PO-1", FX_T0 + 100));
    /* carol's order keeps 1 unit and bob's hold 1: each may hold 2 more */
    put("PO-3", "A", "W2", 10, FX_T0 + 5 * DAY_MS);
    hold_a("R-C2", 2, "carol");
    bo_lines[0] = (allot_line_input_t){S("A"), 3};
    allot_reserve_request_t req = fx_req("R-B2", bo_lines, 1);
    req.backorder = bo_flags;
    req.customer = S("bob");
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 200, NULL), ALLOT_ELIMIT_EXCEEDED);
    fx_assert_replay_equal(st);
}

Test(backorder, cancel_gives_order_changes_with_cause_supply_cancelled,
     .init = more_backorders_than_room, .fini = teardown)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    allot_state_set_change_observer(st, on_change, out);
    order_step(cancel_at("PO-1", FX_T0 + 100));
    fclose(out);
    const char *want = "0 supply.changed PO-1 received=0 held=0 supply.cancel\n"
                       "1 order.changed O1 created->created supply.cancelled\n"
                       "2 order.changed O2 created->created supply.cancelled\n"
                       "3 order.changed O3 created->cancelled supply.cancelled\n";
    cr_assert_str_eq(text, want);
    free(text);
}

Test(backorder, a_version_1_cancel_record_of_a_held_supply_does_not_fit, .init = supplies,
     .fini = teardown)
{
    hold_a("R1", 12, NULL); /* 3 on PO-LATE */
    allot_event_t event = {.type = ALLOT_EVENT_SUPPLY_CANCEL};
    event.u.supply = (allot_event_supply_t){.id = S("PO-LATE"), .at_ms = FX_T0 + 5};
    allot_bytes_t bytes = {0};
    cr_assert_eq(allot_event_encode(&event, &bytes), 0);
    cr_assert_eq(allot_event_apply_encoded(st, event.type, bytes.data, bytes.len), ALLOT_ECORRUPT,
                 "a plain cancel never drops held units");
    cr_assert_eq(get("PO-LATE").state, ALLOT_SUPPLY_OPEN);
    assert_invariants();
    allot_bytes_free(&bytes);
}

Test(backorder, cancel_of_the_units_a_shipped_order_waits_for_leaves_it_shipped, .init = supplies,
     .fini = teardown)
{
    hold_a("R1", 8, NULL);  /* 5 at W1, 3 on PO-EARLY */
    hold_a("R2", 11, NULL); /* 1 on PO-EARLY, 10 on PO-LATE: no room left anywhere */
    const allot_order_view_t *o;
    order_step(order_from("O1", "R1", FX_T0 + 1, &o));
    order_step(allot_order_pay(st, S("O1"), ALLOT_PAYMENT_CAPTURED, FX_T0 + 2, &o, &fx_err));
    order_step(allot_order_release(st, S("O1"), FX_T0 + 3, &o, &fx_err));
    order_step(allot_shipment_ship(st, S("O1"), S("S1"), S("T-1"), FX_T0 + 4, &o, &fx_err));
    cr_assert_eq(o->state, ALLOT_ORDER_PARTIALLY_SHIPPED);
    order_step(cancel_at("PO-EARLY", FX_T0 + 100));
    o = order("O1");
    cr_assert_eq(o->lines[0].qty, 5, "the 3 units that could not move are cancelled");
    cr_assert_eq(o->backorder_count, 0);
    cr_assert_eq(o->state, ALLOT_ORDER_SHIPPED, "what is left has shipped");
    const allot_reservation_t *r = allot_reservation_find(st, S("R2"));
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 10);
    cr_assert_eq(hold_on("R2", "PO-LATE"), 10);
    cr_assert_eq(get("PO-LATE").held, 10);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

/* ---- a supply.put that delays a supply moves its backorders to supply due earlier ---------- */

Test(backorder, delay_moves_an_orders_and_a_holds_backorders_to_earlier_supply_with_room,
     .init = supplies, .fini = teardown)
{
    hold_a("R0", 5, NULL);    /* the stock */
    hold_a("R1", 3, "alice"); /* 3 on PO-EARLY */
    order_step(order_from("O1", "R1", FX_T0 + 1, NULL));
    hold_a("R2", 1, NULL);                           /* the last unit of PO-EARLY, a live hold */
    put("PO-MID", "A", "W1", 2, FX_T0 + 2 * DAY_MS); /* between the two */
    size_t written = fx_log.count;
    put("PO-EARLY", "A", "W1", 4, FX_T0 + 4 * DAY_MS); /* now after PO-LATE too */
    assert_invariants();
    cr_assert_eq(fx_log.count, written + 1, "one record");
    cr_assert_eq(get("PO-EARLY").state, ALLOT_SUPPLY_OPEN);
    cr_assert_eq(get("PO-EARLY").eta_ms, FX_T0 + 4 * DAY_MS);
    cr_assert_eq(get("PO-EARLY").held, 0, "everything found earlier supply");
    cr_assert_eq(get("PO-MID").held, 2, "the earliest first, to its qty");
    cr_assert_eq(get("PO-LATE").held, 2, "then the next");
    const allot_order_view_t *o = order("O1");
    cr_assert_eq(o->state, ALLOT_ORDER_CREATED);
    cr_assert_eq(o->lines[0].qty, 3);
    cr_assert_eq(backordered(o, 0, "PO-MID"), 2, "the order moves first");
    cr_assert_eq(backordered(o, 0, "PO-LATE"), 1);
    cr_assert_eq(backordered(o, 0, "PO-EARLY"), 0);
    cr_assert_eq(hold_on("R2", "PO-LATE"), 1, "the hold moves to what is left");
    cr_assert_eq(hold_on("R2", "PO-EARLY"), 0);
    cr_assert_eq(allot_reservation_lines(allot_reservation_find(st, S("R2")))[0].qty_held, 1);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(backorder, delay_moves_the_oldest_first_and_leaves_the_rest_on_the_delayed_supply,
     .init = more_backorders_than_room, .fini = teardown)
{
    put("PO-1", "A", "W1", 12, FX_T0 + 5 * DAY_MS);
    assert_invariants();
    cr_assert_eq(get("PO-2").held, 4, "the earlier supply takes what fits, no more");
    cr_assert_eq(get("PO-1").held, 7, "the rest stays on the delayed supply");
    const allot_order_view_t *o = order("O1");
    cr_assert_eq(backordered(o, 0, "PO-2"), 3, "the oldest order moves in full");
    o = order("O2");
    cr_assert_eq(backordered(o, 0, "PO-2"), 1);
    cr_assert_eq(backordered(o, 0, "PO-1"), 1, "nothing is released");
    cr_assert_eq(o->lines[0].qty, 2, "nothing is cancelled");
    o = order("O3");
    cr_assert_eq(o->state, ALLOT_ORDER_CREATED);
    cr_assert_eq(backordered(o, 0, "PO-1"), 2);
    cr_assert_eq(hold_on("R-MIX", "PO-1"), 2, "holds stay when orders took the room");
    cr_assert_eq(hold_at("R-MIX", "W1"), 1);
    cr_assert_eq(hold_on("R-ONLY", "PO-1"), 2);
    cr_assert_eq(allot_reservation_find(st, S("R-ONLY"))->status, ALLOT_RESERVATION_ACTIVE);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(backorder, delay_does_not_move_to_a_supply_due_after_the_new_eta,
     .init = more_backorders_than_room, .fini = teardown)
{
    put("PO-1", "A", "W1", 12, FX_T0 + 2 * DAY_MS); /* PO-2's eta: not earlier */
    assert_invariants();
    cr_assert_eq(get("PO-1").held, 11, "everything stays");
    cr_assert_eq(get("PO-2").held, 0);
    cr_assert_eq(backordered(order("O1"), 0, "PO-1"), 3);
    cr_assert_eq(hold_on("R-ONLY", "PO-1"), 2);
    put("PO-1", "A", "W1", 12, FX_T0 + DAY_MS); /* earlier again: nothing moves back */
    put("PO-1", "A", "W1", 12, FX_T0 + 2 * DAY_MS + 1);
    cr_assert_eq(get("PO-1").held, 7, "once later than PO-2 they move");
    cr_assert_eq(get("PO-2").held, 4);
    fx_assert_replay_equal(st);
}

Test(backorder, delay_gives_order_changes_with_cause_supply_delayed,
     .init = more_backorders_than_room, .fini = teardown)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    allot_state_set_change_observer(st, on_change, out);
    put("PO-1", "A", "W1", 12, FX_T0 + 5 * DAY_MS);
    fclose(out);
    const char *want = "0 supply.changed PO-1 received=0 held=7 supply.delayed\n"
                       "1 order.changed O1 created->created supply.delayed\n"
                       "2 order.changed O2 created->created supply.delayed\n"
                       "3 order.changed O3 created->created supply.delayed\n";
    cr_assert_str_eq(text, want);
    free(text);
}

Test(backorder, a_version_1_put_record_of_a_delay_moves_nothing, .init = more_backorders_than_room,
     .fini = teardown)
{
    allot_event_t event = {.type = ALLOT_EVENT_SUPPLY_PUT};
    event.u.supply = (allot_event_supply_t){.id = S("PO-1"),
                                            .sku = S("A"),
                                            .location = S("W1"),
                                            .qty = 12,
                                            .eta_ms = FX_T0 + 5 * DAY_MS,
                                            .at_ms = FX_T0 + 5};
    allot_bytes_t bytes = {0};
    cr_assert_eq(allot_event_encode(&event, &bytes), 0);
    cr_assert_eq(allot_event_apply_encoded(st, event.type, bytes.data, bytes.len), 0);
    cr_assert_eq(get("PO-1").eta_ms, FX_T0 + 5 * DAY_MS);
    cr_assert_eq(get("PO-1").held, 11, "a plain put keeps the backorders where they are");
    cr_assert_eq(get("PO-2").held, 0);
    assert_invariants();
    allot_bytes_free(&bytes);
}
