/* test_core_order.c - orders: state table, stock effects, reject, returns, replay, eviction. */
#include "test_core_fixture.h"

#include "core/base/buffer.h"
#include "core/order.h"

static allot_state_t *st;
static const allot_order_view_t *ov;

static allot_str_t E(void)
{
    return (allot_str_t){"", 0};
}

/* W1..W4 (priority 1..4); A: 5 at W1, W3, W4; B: 5 at W2. */
static void world(void)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 13.0, .priority = 1});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.0, .lon = 11.0, .priority = 2});
    fx_location(st, (fx_loc_t){.id = "W3", .lat = 50.0, .lon = 8.0, .priority = 3});
    fx_location(st, (fx_loc_t){.id = "W4", .lat = 53.5, .lon = 10.0, .priority = 4});
    fx_stock(st, "A", "W1", 5, 0);
    fx_stock(st, "A", "W3", 5, 0);
    fx_stock(st, "A", "W4", 5, 0);
    fx_stock(st, "B", "W2", 5, 0);
}

static void world_end(void)
{
    char msg[256];
    cr_assert_eq(allot_state_check_invariants(st, msg, sizeof(msg)), 0, "invariants: %s", msg);
    allot_state_destroy(st);
    fx_log_reset();
}

static allot_order_create_request_t lines_req(const char *id, const allot_line_input_t *lines,
                                              uint32_t n)
{
    allot_order_create_request_t r;
    memset(&r, 0, sizeof(r));
    r.id = S(id);
    r.customer = S("cust-1");
    r.reservation = E();
    r.lines = lines;
    r.line_count = n;
    r.location = r.address = r.instructions = E();
    return r;
}

static int create(const allot_order_create_request_t *req, int64_t now_ms)
{
    allot_error_detail_clear(&fx_err);
    return allot_order_create(st, req, now_ms, &ov, &fx_err);
}

/* Order "o1": A x1 from W1 (S1) and B x1 from W2 (S2). */
static void order_two_shipments(void)
{
    static const allot_line_input_t lines[] = {{{"A", 1}, 1}, {{"B", 1}, 1}};
    allot_order_create_request_t req = lines_req("o1", lines, 2);
    cr_assert_eq(create(&req, FX_T0), 0, "%s", fx_err.message);
    cr_assert_eq(ov->shipment_count, 2);
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        allot_error_detail_clear(&fx_err);                                                         \
        int rc_ = (call);                                                                          \
        cr_assert_eq(rc_, 0, "%s: %d %s", #call, rc_, fx_err.message);                             \
    } while (0)

static void drive_to(uint8_t target)
{
    order_two_shipments();
    int64_t t = FX_T0 + 1000;
    if (target == ALLOT_ORDER_CREATED)
        return;
    if (target == ALLOT_ORDER_ON_HOLD) {
        OK(allot_order_hold(st, S("o1"), S("fraud check"), t, &ov, &fx_err));
        return;
    }
    if (target == ALLOT_ORDER_CANCELLED) {
        OK(allot_order_cancel(st, S("o1"), S("changed mind"), t, &ov, &fx_err));
        return;
    }
    OK(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_AUTHORIZED, t, &ov, &fx_err));
    OK(allot_order_release(st, S("o1"), t, &ov, &fx_err));
    if (target == ALLOT_ORDER_RELEASED)
        return;
    OK(allot_shipment_ship(st, S("o1"), S("S1"), S("TRK1"), t, &ov, &fx_err));
    if (target == ALLOT_ORDER_PARTIALLY_SHIPPED)
        return;
    OK(allot_shipment_ship(st, S("o1"), S("S2"), E(), t, &ov, &fx_err));
    if (target == ALLOT_ORDER_SHIPPED)
        return;
    OK(allot_shipment_deliver(st, S("o1"), S("S1"), t, &ov, &fx_err));
    OK(allot_shipment_deliver(st, S("o1"), S("S2"), t, &ov, &fx_err));
}

/* Try `event` on order o1 (shipment S1 where one is needed). */
static int try_event(uint8_t event, int64_t now_ms)
{
    static const allot_line_input_t ret_lines[] = {{{"A", 1}, 1}};
    allot_error_detail_clear(&fx_err);
    allot_order_modify_request_t mod = {
        .id = S("o1"), .has_instructions = true, .instructions = S("leave at door")};
    allot_return_request_t ret = {S("r-x"), S("o1"), ret_lines, 1, E()};
    uint32_t index;
    allot_payment_t pay =
        ov->payment == ALLOT_PAYMENT_NONE ? ALLOT_PAYMENT_AUTHORIZED : ALLOT_PAYMENT_CAPTURED;
    switch (event) {
    case ALLOT_ORDER_EVENT_PAY:
        return allot_order_pay(st, S("o1"), pay, now_ms, &ov, &fx_err);
    case ALLOT_ORDER_EVENT_HOLD:
        return allot_order_hold(st, S("o1"), S("r"), now_ms, &ov, &fx_err);
    case ALLOT_ORDER_EVENT_UNHOLD:
        return allot_order_unhold(st, S("o1"), now_ms, &ov, &fx_err);
    case ALLOT_ORDER_EVENT_MODIFY:
        return allot_order_modify(st, &mod, now_ms, &ov, &fx_err);
    case ALLOT_ORDER_EVENT_RELEASE:
        return allot_order_release(st, S("o1"), now_ms, &ov, &fx_err);
    case ALLOT_ORDER_EVENT_CANCEL:
        return allot_order_cancel(st, S("o1"), E(), now_ms, &ov, &fx_err);
    case ALLOT_ORDER_EVENT_REJECT:
        return allot_shipment_reject(st, S("o1"), S("S1"), E(), now_ms, &ov, &fx_err);
    case ALLOT_ORDER_EVENT_SHIP:
        return allot_shipment_ship(st, S("o1"), S("S1"), E(), now_ms, &ov, &fx_err);
    case ALLOT_ORDER_EVENT_DELIVER:
        return allot_shipment_deliver(st, S("o1"), S("S1"), now_ms, &ov, &fx_err);
    case ALLOT_ORDER_EVENT_RETURN_CREATE:
        return allot_return_create(st, &ret, now_ms, &ov, &index, &fx_err);
    default:
        cr_assert_fail("no driver for event %u", event);
        return 0;
    }
}

static const allot_order_view_t *order_get(const char *id)
{
    const allot_order_view_t *v = NULL;
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_order_get(st, S(id), &v, &fx_err), 0, "%s", fx_err.message);
    return v;
}

/* The whole table: every forbidden cell refuses with INVALID_TRANSITION (state = current) and
 * changes nothing, except the no-op repeat of what produced the state, which succeeds without an
 * event. return.receive is left out: no return can exist in the states that forbid it. */
Test(order_table, every_forbidden_transition_is_refused_and_changes_nothing)
{
    uint32_t refused = 0, repeats = 0;
    for (uint8_t s = 0; s < ALLOT_ORDER_STATE_COUNT; s++) {
        for (uint8_t e = ALLOT_ORDER_EVENT_PAY; e < ALLOT_ORDER_EVENT_RETURN_RECEIVE; e++) {
            if (allot_order_next_state(s, e) != ALLOT_ORDER_NEXT_FORBIDDEN)
                continue;
            world();
            drive_to(s);
            ov = order_get("o1");
            cr_assert_eq(ov->state, s);
            bool shipment_event = e == ALLOT_ORDER_EVENT_SHIP || e == ALLOT_ORDER_EVENT_DELIVER ||
                                  e == ALLOT_ORDER_EVENT_REJECT;
            uint8_t s1 = ov->shipments[0].state;
            bool repeat = (!shipment_event && ov->entered_by == e && e != ALLOT_ORDER_EVENT_PAY) ||
                          (e == ALLOT_ORDER_EVENT_SHIP && s1 == ALLOT_SHIPMENT_SHIPPED) ||
                          (e == ALLOT_ORDER_EVENT_DELIVER && s1 == ALLOT_SHIPMENT_DELIVERED);
            char *before = fx_dump(st);
            size_t events = fx_log.count;
            int rc = try_event(e, FX_T0 + 5000);
            if (repeat) {
                cr_assert_eq(rc, 0, "%s in %s: repeat should succeed: %s",
                             allot_order_event_names[e], allot_order_state_names[s],
                             fx_err.message);
                repeats++;
            } else {
                cr_assert_eq(rc, ALLOT_EINVALID_TRANSITION, "%s in %s: got %d (%s)",
                             allot_order_event_names[e], allot_order_state_names[s], rc,
                             fx_err.message);
                cr_assert_not_null(fx_err.state);
                refused++;
            }
            if (!repeat && !shipment_event)
                cr_assert_str_eq(fx_err.state, allot_order_state_names[s]);
            char *after = fx_dump(st);
            cr_assert_str_eq(before, after, "%s in %s changed the state",
                             allot_order_event_names[e], allot_order_state_names[s]);
            cr_assert_eq(fx_log.count, events, "an event was emitted");
            free(before);
            free(after);
            world_end();
        }
    }
    cr_assert_gt(refused, 30);
    cr_assert_gt(repeats, 2);
}

Test(order_table, allowed_transitions_reach_the_next_state_in_the_table)
{
    static const uint8_t simple[] = {ALLOT_ORDER_EVENT_HOLD, ALLOT_ORDER_EVENT_UNHOLD,
                                     ALLOT_ORDER_EVENT_CANCEL, ALLOT_ORDER_EVENT_RELEASE};
    for (uint8_t s = 0; s <= ALLOT_ORDER_RELEASED; s++) {
        for (uint32_t i = 0; i < sizeof(simple); i++) {
            uint8_t next = allot_order_next_state(s, simple[i]);
            if (next >= ALLOT_ORDER_STATE_COUNT)
                continue;
            world();
            drive_to(s);
            if (simple[i] == ALLOT_ORDER_EVENT_RELEASE)
                OK(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_CAPTURED, FX_T0, &ov, &fx_err));
            cr_assert_eq(try_event(simple[i], FX_T0 + 7000), 0, "%s", fx_err.message);
            cr_assert_eq(ov->state, next, "%s from %s", allot_order_event_names[simple[i]],
                         allot_order_state_names[s]);
            cr_assert_eq(ov->history[ov->history_count - 1].event, simple[i]);
            world_end();
        }
    }
}

Test(order, release_needs_payment_and_no_hold)
{
    world();
    order_two_shipments();
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_order_release(st, S("o1"), FX_T0, &ov, &fx_err), ALLOT_EINVALID_TRANSITION);
    cr_assert_str_eq(fx_err.state, "created");
    OK(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_FAILED, FX_T0, &ov, &fx_err));
    cr_assert_eq(allot_order_release(st, S("o1"), FX_T0, &ov, &fx_err), ALLOT_EINVALID_TRANSITION);
    OK(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_AUTHORIZED, FX_T0, &ov, &fx_err));
    OK(allot_order_hold(st, S("o1"), S("manual review"), FX_T0, &ov, &fx_err));
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_order_release(st, S("o1"), FX_T0, &ov, &fx_err), ALLOT_EINVALID_TRANSITION);
    cr_assert_str_eq(fx_err.state, "on_hold");
    OK(allot_order_unhold(st, S("o1"), FX_T0, &ov, &fx_err));
    OK(allot_order_release(st, S("o1"), FX_T0, &ov, &fx_err));
    cr_assert_eq(ov->state, ALLOT_ORDER_RELEASED);
    cr_assert_eq(ov->shipments[0].state, ALLOT_SHIPMENT_RELEASED);
    size_t events = fx_log.count;
    OK(allot_order_release(st, S("o1"), FX_T0 + 1, &ov, &fx_err)); /* repeat: no-op */
    cr_assert_eq(fx_log.count, events);
    world_end();
}

Test(order, payment_captured_cannot_fail_later)
{
    world();
    order_two_shipments();
    OK(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_CAPTURED, FX_T0, &ov, &fx_err));
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_FAILED, FX_T0, &ov, &fx_err),
                 ALLOT_EINVALID_TRANSITION);
    OK(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_CAPTURED, FX_T0, &ov, &fx_err));
    world_end();
}

Test(order, modify_only_before_release)
{
    world();
    order_two_shipments();
    allot_order_modify_request_t mod = {.id = S("o1"),
                                        .has_instructions = true,
                                        .instructions = S("ring twice"),
                                        .has_method = true,
                                        .method = ALLOT_METHOD_SHIP};
    OK(allot_order_modify(st, &mod, FX_T0, &ov, &fx_err));
    cr_assert(allot_str_equal(ov->instructions, S("ring twice")));
    cr_assert_eq(ov->history[ov->history_count - 1].arg, ALLOT_ORDER_MODIFY_INSTRUCTIONS);
    OK(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_AUTHORIZED, FX_T0, &ov, &fx_err));
    OK(allot_order_release(st, S("o1"), FX_T0, &ov, &fx_err));
    mod.instructions = S("knock");
    char *before = fx_dump(st);
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_order_modify(st, &mod, FX_T0, &ov, &fx_err), ALLOT_EINVALID_TRANSITION);
    cr_assert_str_eq(fx_err.state, "released");
    char *after = fx_dump(st);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    world_end();
}

Test(order, cancel_after_a_shipment_shipped_is_refused)
{
    world();
    drive_to(ALLOT_ORDER_PARTIALLY_SHIPPED);
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_order_cancel(st, S("o1"), E(), FX_T0, &ov, &fx_err),
                 ALLOT_EINVALID_TRANSITION);
    cr_assert_str_eq(fx_err.state, "partially_shipped");
    world_end();
}

Test(order, cancel_before_shipping_returns_the_units)
{
    world();
    drive_to(ALLOT_ORDER_RELEASED);
    cr_assert_eq(fx_position(st, "A", "W1")->allocated, 1);
    cr_assert_eq(fx_avail(st, "A"), 14);
    OK(allot_order_cancel(st, S("o1"), S("customer asked"), FX_T0 + 9, &ov, &fx_err));
    cr_assert_eq(ov->state, ALLOT_ORDER_CANCELLED);
    cr_assert_eq(ov->shipments[0].state, ALLOT_SHIPMENT_CANCELLED);
    cr_assert_eq(fx_position(st, "A", "W1")->allocated, 0);
    cr_assert_eq(fx_position(st, "B", "W2")->allocated, 0);
    cr_assert_eq(fx_avail(st, "A"), 15);
    cr_assert_eq(ov->ended_ms, FX_T0 + 9);
    world_end();
}

Test(order, ship_lowers_on_hand_and_allocated_and_deliver_ends_it)
{
    world();
    drive_to(ALLOT_ORDER_PARTIALLY_SHIPPED);
    const allot_position_t *p = fx_position(st, "A", "W1");
    cr_assert_eq(p->on_hand, 4);
    cr_assert_eq(p->allocated, 0);
    cr_assert_eq(fx_position(st, "B", "W2")->allocated, 1);
    OK(allot_shipment_ship(st, S("o1"), S("S2"), S("TRK2"), FX_T0, &ov, &fx_err));
    cr_assert_eq(ov->state, ALLOT_ORDER_SHIPPED);
    OK(allot_shipment_deliver(st, S("o1"), S("S1"), FX_T0, &ov, &fx_err));
    cr_assert_eq(ov->state, ALLOT_ORDER_SHIPPED);
    OK(allot_shipment_deliver(st, S("o1"), S("S2"), FX_T0 + 3, &ov, &fx_err));
    cr_assert_eq(ov->state, ALLOT_ORDER_DELIVERED);
    cr_assert_eq(ov->ended_ms, FX_T0 + 3);
    cr_assert(allot_str_equal(ov->shipments[0].tracking, S("TRK1")));
    world_end();
}

Test(order, create_from_a_reservation_keeps_its_locations_and_consumes_it)
{
    world();
    static const allot_line_input_t lines[] = {{{"A", 1}, 7}};
    allot_reserve_request_t rr = fx_req("cart-1", lines, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &rr, FX_T0, &r), 0, "%s", fx_err.message);
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 5);
    cr_assert_eq(fx_position(st, "A", "W3")->reserved, 2);
    allot_order_create_request_t req = lines_req("o9", NULL, 0);
    req.reservation = S("cart-1");
    cr_assert_eq(create(&req, FX_T0 + 10), 0, "%s", fx_err.message);
    cr_assert_eq(ov->shipment_count, 2);
    cr_assert(allot_str_equal(ov->shipments[0].location, S("W1")));
    cr_assert_eq(ov->shipments[0].state, ALLOT_SHIPMENT_ALLOCATED);
    cr_assert(allot_str_equal(ov->history[0].text, S("cart-1")));
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 0);
    cr_assert_eq(fx_position(st, "A", "W1")->allocated, 5);
    cr_assert_eq(fx_position(st, "A", "W3")->allocated, 2);
    cr_assert_eq(allot_reservation_get(st, S("cart-1"), FX_T0 + 10, &r, &fx_err), ALLOT_ENOT_FOUND);
    size_t events = fx_log.count;
    cr_assert_eq(create(&req, FX_T0 + 20), 0, "same request again: %s", fx_err.message);
    cr_assert_eq(fx_log.count, events);
    req.customer = S("someone-else");
    cr_assert_eq(create(&req, FX_T0 + 20), ALLOT_ECONFLICT);
    world_end();
}

Test(order, create_from_lines_is_all_or_nothing)
{
    world();
    static const allot_line_input_t lines[] = {{{"A", 1}, 3}, {{"B", 1}, 6}};
    allot_order_create_request_t req = lines_req("o2", lines, 2);
    char *before = fx_dump(st);
    cr_assert_eq(create(&req, FX_T0), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfall_count, 1);
    char *after = fx_dump(st);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    world_end();
}

Test(order, reject_moves_the_allocation_to_the_next_location_by_policy)
{
    world();
    static const allot_line_input_t lines[] = {{{"A", 1}, 2}};
    allot_order_create_request_t req = lines_req("o3", lines, 1);
    req.policy = ALLOT_POLICY_PRIORITY;
    cr_assert_eq(create(&req, FX_T0), 0, "%s", fx_err.message);
    cr_assert(allot_str_equal(ov->shipments[0].location, S("W1")));
    OK(allot_shipment_reject(st, S("o3"), S("S1"), S("damaged shelf"), FX_T0 + 1, &ov, &fx_err));
    cr_assert_eq(ov->shipment_count, 2);
    cr_assert_eq(ov->shipments[0].state, ALLOT_SHIPMENT_REJECTED);
    cr_assert(allot_str_equal(ov->shipments[0].reason, S("damaged shelf")));
    cr_assert(allot_str_equal(ov->shipments[1].location, S("W3")));
    cr_assert_eq(fx_position(st, "A", "W1")->allocated, 0);
    cr_assert_eq(fx_position(st, "A", "W3")->allocated, 2);
    OK(allot_shipment_reject(st, S("o3"), S("S2"), E(), FX_T0 + 2, &ov, &fx_err));
    cr_assert(allot_str_equal(ov->shipments[2].location, S("W4")), "W1 stays excluded");
    cr_assert_eq(fx_position(st, "A", "W4")->allocated, 2);
    cr_assert_eq(fx_position(st, "A", "W3")->allocated, 0);
    char *before = fx_dump(st);
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_shipment_reject(st, S("o3"), S("S3"), E(), FX_T0 + 3, &ov, &fx_err),
                 ALLOT_EINSUFFICIENT_STOCK, "W1 and W3 rejected before");
    char *after = fx_dump(st);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    size_t events = fx_log.count;
    OK(allot_shipment_reject(st, S("o3"), S("S2"), E(), FX_T0 + 3, &ov, &fx_err)); /* repeat */
    cr_assert_eq(fx_log.count, events);
    world_end();
}

/* Four shipments fill the order's shipment array (capacity 4): the reject's new shipment makes it
 * grow while the rejected one is being read. */
Test(order, reject_of_an_order_whose_shipment_array_is_full_grows_it_safely)
{
    st = fx_state();
    const char *ids[] = {"L0", "L1", "L2", "L3", "L4"};
    for (int i = 0; i < 5; i++) {
        fx_location(st, (fx_loc_t){.id = ids[i], .lat = 50.0, .lon = 8.0, .priority = i});
        fx_stock(st, "X", ids[i], 1, 0);
    }
    static const allot_line_input_t lines[] = {{{"X", 1}, 4}};
    allot_order_create_request_t req = lines_req("o1", lines, 1);
    req.policy = ALLOT_POLICY_PRIORITY;
    cr_assert_eq(create(&req, FX_T0), 0, "%s", fx_err.message);
    cr_assert_eq(ov->shipment_count, 4);
    OK(allot_shipment_reject(st, S("o1"), S("S1"), S("no stock on the shelf"), FX_T0 + 1, &ov,
                             &fx_err));
    cr_assert_eq(ov->shipment_count, 5);
    cr_assert_eq(ov->shipments[0].state, ALLOT_SHIPMENT_REJECTED);
    cr_assert(allot_str_equal(ov->shipments[0].reason, S("no stock on the shelf")));
    cr_assert(allot_str_equal(ov->shipments[4].location, S("L4")));
    cr_assert_eq(ov->shipments[4].state, ALLOT_SHIPMENT_ALLOCATED, "in the rejected one's state");
    cr_assert_eq(fx_position(st, "X", "L0")->allocated, 0);
    cr_assert_eq(fx_position(st, "X", "L4")->allocated, 1);
    fx_assert_replay_equal(st);
    world_end();
}

/* order.create from a reservation ends it as a tombstone: the cap holds for those too, and a
 * release after many of them evicts no more than its prepare made room for. */
Test(order, orders_from_reservations_keep_the_tombstones_within_the_cap)
{
    allot_state_config_t config = {.idempotency_entries_max = 3};
    st = fx_state_with(&config);
    fx_location(st, (fx_loc_t){.id = "W1", .priority = 1});
    fx_stock(st, "A", "W1", 100, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    char id[ALLOT_ID_BYTES_MAX + 1], order_id[16];
    allot_state_counters_t c;
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "%0128d", i); /* deletion records as large as they get */
        allot_reserve_request_t res = fx_req(id, lines, 1);
        cr_assert_eq(fx_reserve(st, &res, FX_T0 + i, NULL), 0, "%s", fx_err.message);
        snprintf(order_id, sizeof(order_id), "o%d", i);
        allot_order_create_request_t req = lines_req(order_id, NULL, 0);
        req.reservation = S(id);
        cr_assert_eq(create(&req, FX_T0 + i), 0, "%s", fx_err.message);
        allot_state_counters_get(st, &c);
        cr_assert_leq(c.tombstones, 3);
    }
    allot_reserve_request_t res = fx_req("last", lines, 1);
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &res, FX_T0 + 10, NULL), 0);
    OK(allot_reservation_release(st, S("last"), FX_T0 + 10, &r, &fx_err));
    allot_state_counters_get(st, &c);
    cr_assert_eq(c.tombstones, 3);
    cr_assert_eq(c.idempotency_evicted_early, 6);
    fx_assert_replay_equal(st);
    world_end();
}

Test(order, reject_without_an_alternative_is_insufficient_stock_and_moves_nothing)
{
    world();
    static const allot_line_input_t lines[] = {{{"B", 1}, 2}};
    allot_order_create_request_t req = lines_req("o4", lines, 1);
    cr_assert_eq(create(&req, FX_T0), 0, "%s", fx_err.message);
    char *before = fx_dump(st);
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_shipment_reject(st, S("o4"), S("S1"), E(), FX_T0, &ov, &fx_err),
                 ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfall_count, 1);
    cr_assert_eq(fx_err.shortfalls[0].requested, 2);
    cr_assert_eq(fx_err.shortfalls[0].available, 0);
    char *after = fx_dump(st);
    cr_assert_str_eq(before, after);
    cr_assert(fx_position(st, "B", "W2")->allocated == 2);
    cr_assert(allot_location_find(st, S("W2"))->active, "exclusion is undone");
    free(before);
    free(after);
    world_end();
}

Test(order, returns_are_bounded_by_what_shipped)
{
    world();
    drive_to(ALLOT_ORDER_PARTIALLY_SHIPPED); /* A x1 shipped from W1, B not shipped */
    static const allot_line_input_t two_a[] = {{{"A", 1}, 2}};
    static const allot_line_input_t one_b[] = {{{"B", 1}, 1}};
    static const allot_line_input_t one_a[] = {{{"A", 1}, 1}};
    allot_return_request_t ret = {S("r1"), S("o1"), two_a, 1, E()};
    uint32_t index;
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_return_create(st, &ret, FX_T0, &ov, &index, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    ret.lines = one_b;
    cr_assert_eq(allot_return_create(st, &ret, FX_T0, &ov, &index, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    ret.lines = one_a;
    OK(allot_return_create(st, &ret, FX_T0, &ov, &index, &fx_err));
    cr_assert_eq(ov->returns[index].state, ALLOT_RETURN_REQUESTED);
    cr_assert_str_eq(allot_return_state_names[ov->returns[index].state], "requested");
    ret.id = S("r2");
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_return_create(st, &ret, FX_T0, &ov, &index, &fx_err),
                 ALLOT_EINVALID_ARGUMENT, "already being returned");
    ret.id = S("r1");
    OK(allot_return_create(st, &ret, FX_T0, &ov, &index, &fx_err)); /* idempotent */
    ret.reason = S("different");
    cr_assert_eq(allot_return_create(st, &ret, FX_T0, &ov, &index, &fx_err), ALLOT_ECONFLICT);
    world_end();
}

Test(order, return_receive_restock_adds_on_hand_and_damaged_does_not)
{
    world();
    drive_to(ALLOT_ORDER_DELIVERED);
    static const allot_line_input_t one_a[] = {{{"A", 1}, 1}};
    static const allot_line_input_t one_b[] = {{{"B", 1}, 1}};
    allot_return_request_t r1 = {S("r1"), S("o1"), one_a, 1, S("too small")};
    allot_return_request_t r2 = {S("r2"), S("o1"), one_b, 1, E()};
    uint32_t index;
    OK(allot_return_create(st, &r1, FX_T0, &ov, &index, &fx_err));
    cr_assert_eq(ov->ended_ms, 0, "an open return keeps the order in memory");
    OK(allot_return_create(st, &r2, FX_T0, &ov, &index, &fx_err));
    int64_t a_before = fx_position(st, "A", "W3")->on_hand;
    OK(allot_return_receive(st, S("r1"), S("W3"), ALLOT_DISPOSITION_RESTOCK, FX_T0 + 5, &ov, &index,
                            &fx_err));
    cr_assert_eq(ov->returns[index].state, ALLOT_RETURN_RECEIVED);
    cr_assert_eq(fx_position(st, "A", "W3")->on_hand, a_before + 1);
    OK(allot_return_receive(st, S("r1"), S("W3"), ALLOT_DISPOSITION_RESTOCK, FX_T0 + 6, &ov, &index,
                            &fx_err));
    cr_assert_eq(fx_position(st, "A", "W3")->on_hand, a_before + 1, "repeat is a no-op");
    int64_t b_before = fx_position(st, "B", "W2")->on_hand;
    OK(allot_return_receive(st, S("r2"), S("W2"), ALLOT_DISPOSITION_DAMAGED, FX_T0 + 7, &ov, &index,
                            &fx_err));
    cr_assert_eq(fx_position(st, "B", "W2")->on_hand, b_before);
    cr_assert_eq(ov->ended_ms, FX_T0 + 7);
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_return_receive(st, S("r2"), S("W2"), ALLOT_DISPOSITION_RESTOCK, FX_T0, &ov,
                                      &index, &fx_err),
                 ALLOT_EINVALID_TRANSITION);
    world_end();
}

/* Everything at once, then replay every recorded event into a fresh state. */
static void busy_scenario(void)
{
    world();
    drive_to(ALLOT_ORDER_DELIVERED);
    static const allot_line_input_t lines[] = {{{"A", 1}, 2}};
    allot_order_create_request_t req = lines_req("o5", lines, 1);
    req.address = S("\x81\xa4"
                    "city"
                    "\xa6"
                    "Berlin");
    req.instructions = S("gate code 12");
    cr_assert_eq(create(&req, FX_T0 + 100), 0, "%s", fx_err.message);
    OK(allot_shipment_reject(st, S("o5"), S("S1"), S("no staff"), FX_T0 + 101, &ov, &fx_err));
    OK(allot_order_hold(st, S("o5"), S("fraud"), FX_T0 + 102, &ov, &fx_err));
    OK(allot_order_cancel(st, S("o5"), S("fraud confirmed"), FX_T0 + 103, &ov, &fx_err));
    static const allot_line_input_t ret_lines[] = {{{"A", 1}, 1}};
    allot_return_request_t ret = {S("r1"), S("o1"), ret_lines, 1, E()};
    uint32_t index;
    OK(allot_return_create(st, &ret, FX_T0 + 104, &ov, &index, &fx_err));
    OK(allot_return_receive(st, S("r1"), S("W1"), ALLOT_DISPOSITION_RESTOCK, FX_T0 + 105, &ov,
                            &index, &fx_err));
}

static void replay_check(void)
{
    fx_assert_replay_equal(st);
}

static void store_discard_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                             const uint8_t *payload, size_t len, bool deleted)
{
    (void)ctx, (void)key, (void)key_len, (void)type, (void)payload, (void)len, (void)deleted;
}

Test(order_replay, replay_including_evictions_matches_live)
{
    busy_scenario();
    int64_t late = FX_T0 + ALLOT_ORDERS_ARCHIVE_AGE_MS_DEFAULT + 1000;
    cr_assert_eq(allot_orders_evict_aged(st, late, 10), 0, "dirty orders stay");
    cr_assert_eq(allot_state_snapshot_each_dirty(st, store_discard_cb, NULL), 0);
    cr_assert_eq(allot_orders_evict_aged(st, late, 10), 2, "o1 delivered, o5 cancelled");
    replay_check();
    world_end();
}

Test(order_replay, replay_including_orders_matches_live)
{
    busy_scenario();
    replay_check();
    world_end();
}

/* ---- checkpoints and eviction --------------------------------------------------------------- */

#define STORE_MAX 64

typedef struct store_entry {
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
    size_t key_len;
    uint8_t type;
    uint8_t *payload;
    size_t len;
} store_entry_t;

static store_entry_t store[STORE_MAX];
static size_t store_count;

static void store_put_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                         const uint8_t *payload, size_t len, bool deleted)
{
    (void)ctx;
    size_t i = 0;
    while (i < store_count &&
           !(store[i].key_len == key_len && memcmp(store[i].key, key, key_len) == 0))
        i++;
    if (deleted) {
        if (i < store_count) {
            free(store[i].payload);
            store[i] = store[--store_count];
        }
        return;
    }
    if (i == store_count) {
        cr_assert_lt(store_count, STORE_MAX);
        store_count++;
    } else {
        free(store[i].payload);
    }
    memcpy(store[i].key, key, key_len);
    store[i].key_len = key_len;
    store[i].type = type;
    store[i].payload = malloc(len);
    memcpy(store[i].payload, payload, len);
    store[i].len = len;
}

static int store_entry_compare(const void *a, const void *b)
{
    const store_entry_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static void store_reset(void)
{
    for (size_t i = 0; i < store_count; i++)
        free(store[i].payload);
    store_count = 0;
}

static allot_state_t *store_load(void)
{
    qsort(store, store_count, sizeof(store[0]), store_entry_compare);
    allot_state_t *loaded = allot_state_create(&fx_config);
    for (size_t i = 0; i < store_count; i++)
        cr_assert_eq(
            allot_event_apply_encoded(loaded, store[i].type, store[i].payload, store[i].len), 0,
            "load of record %zu failed", i);
    allot_state_dirty_clear(loaded);
    return loaded;
}

/* The stub archive: the stored 0x05 records. */
static int stub_get(void *ctx, allot_str_t id, const uint8_t **payload, size_t *len)
{
    (void)ctx;
    for (size_t i = 0; i < store_count; i++) {
        if (store[i].key[0] == 5 && store[i].key_len == 1u + id.len &&
            memcmp(store[i].key + 1, id.ptr, id.len) == 0) {
            *payload = store[i].payload;
            *len = store[i].len;
            return 0;
        }
    }
    return ALLOT_ENOT_FOUND;
}

static int stub_list(void *ctx, allot_str_t customer, int64_t before_ms, allot_str_t before_id,
                     uint32_t max, allot_order_archive_each_cb each_cb, void *each_ctx)
{
    (void)ctx;
    (void)before_ms;
    (void)before_id; /* the stub hands everything; core filters and sorts (tests only) */
    allot_event_scratch_t scratch = {0};
    uint32_t n = 0;
    for (size_t i = 0; i < store_count && n < max; i++) {
        allot_event_t e;
        if (store[i].key[0] != 5 ||
            allot_event_decode(store[i].type, store[i].payload, store[i].len, &scratch, &e) != 0)
            continue;
        if (!allot_str_equal(e.u.order.customer, customer))
            continue;
        n++;
        if (each_cb(each_ctx, store[i].payload, store[i].len) != 0)
            break;
    }
    allot_event_scratch_free(&scratch);
    return 0;
}

Test(order_checkpoint, loading_the_snapshot_records_gives_the_same_state)
{
    busy_scenario();
    store_reset();
    cr_assert_eq(allot_state_snapshot_each_dirty(st, store_put_cb, NULL), 0);
    allot_state_t *loaded = store_load();
    char *a = fx_dump(st), *b = fx_dump(loaded);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    allot_state_destroy(loaded);
    store_reset();
    world_end();
}

Test(order_checkpoint, aged_orders_leave_memory_and_stay_readable_through_the_archive)
{
    allot_state_config_t config = {.orders_archive_age_ms = 1000};
    st = fx_state_with(&config);
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 13.0, .priority = 1});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.0, .lon = 11.0, .priority = 2});
    fx_stock(st, "A", "W1", 5, 0);
    fx_stock(st, "B", "W2", 5, 0);
    drive_to(ALLOT_ORDER_DELIVERED);
    static const allot_line_input_t lines[] = {{{"A", 1}, 1}};
    allot_order_create_request_t req = lines_req("o7", lines, 1);
    cr_assert_eq(create(&req, FX_T0 + 50), 0, "%s", fx_err.message);
    int64_t late = FX_T0 + 1000000;
    cr_assert_eq(allot_orders_evict_aged(st, late, 10), 0, "dirty: not checkpointed yet");
    store_reset();
    cr_assert_eq(allot_state_snapshot_each_dirty(st, store_put_cb, NULL), 0);
    cr_assert_eq(allot_orders_evict_aged(st, FX_T0 + 1500, 10), 0, "too young");
    cr_assert_eq(allot_orders_evict_aged(st, late, 10), 1);
    allot_state_counters_t counts;
    allot_state_counters_get(st, &counts);
    cr_assert_eq(counts.orders, 1);
    const allot_order_view_t *v;
    cr_assert_eq(allot_order_get(st, S("o1"), &v, &fx_err), ALLOT_ENOT_FOUND, "no archive yet");
    cr_assert_eq(allot_state_dirty_count(st), 1, "the archived record awaits the checkpoint");
    cr_assert_eq(allot_state_snapshot_each_dirty(st, store_put_cb, NULL), 0);
    allot_order_archive_t archive = {stub_get, stub_list, NULL};
    allot_state_set_archive(st, &archive);
    v = order_get("o1");
    cr_assert_eq(v->state, ALLOT_ORDER_DELIVERED);
    cr_assert_gt(v->history_count, 5);
    allot_order_page_t page;
    cr_assert_eq(allot_order_list(st, S("cust-1"), 10, E(), &page, &fx_err), 0, "%s",
                 fx_err.message);
    cr_assert_eq(page.count, 2);
    cr_assert(allot_str_equal(allot_order_page_at(st, &page, 0)->id, S("o7")), "newest first");
    cr_assert(allot_str_equal(allot_order_page_at(st, &page, 1)->id, S("o1")));
    cr_assert_eq(create(&(allot_order_create_request_t){0}, late), ALLOT_EINVALID_ARGUMENT);
    static const allot_line_input_t two[] = {{{"A", 1}, 1}, {{"B", 1}, 1}};
    allot_order_create_request_t again = lines_req("o1", two, 2);
    cr_assert_eq(create(&again, late), 0, "archived id, same request: %s", fx_err.message);
    again.customer = S("x");
    cr_assert_eq(create(&again, late), ALLOT_ECONFLICT);
    allot_state_t *loaded = store_load();
    allot_state_counters_get(loaded, &counts);
    cr_assert_eq(counts.orders, 1, "archived records load as nothing");
    allot_state_destroy(loaded);
    replay_check();
    store_reset();
    world_end();
}

Test(order_list, pages_newest_first_with_an_after_cursor)
{
    world();
    static const allot_line_input_t lines[] = {{{"A", 1}, 1}};
    const char *ids[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) {
        allot_order_create_request_t req = lines_req(ids[i], lines, 1);
        cr_assert_eq(create(&req, FX_T0 + (i < 3 ? i : 3)), 0, "%s", fx_err.message);
    }
    allot_order_page_t page;
    OK(allot_order_list(st, S("cust-1"), 2, E(), &page, &fx_err));
    cr_assert_eq(page.count, 2);
    cr_assert(page.more);
    cr_assert(allot_str_equal(allot_order_page_at(st, &page, 0)->id, S("e")));
    cr_assert(allot_str_equal(allot_order_page_at(st, &page, 1)->id, S("d")));
    OK(allot_order_list(st, S("cust-1"), 2, S("d"), &page, &fx_err));
    cr_assert(allot_str_equal(allot_order_page_at(st, &page, 0)->id, S("c")));
    cr_assert(allot_str_equal(allot_order_page_at(st, &page, 1)->id, S("b")));
    OK(allot_order_list(st, S("cust-1"), 2, S("b"), &page, &fx_err));
    cr_assert_eq(page.count, 1);
    cr_assert(!page.more);
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_order_list(st, S("cust-1"), 2, S("zz"), &page, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    OK(allot_order_list(st, S("nobody"), 2, E(), &page, &fx_err));
    cr_assert_eq(page.count, 0);
    world_end();
}

Test(order_invariants, a_wrong_allocated_count_is_reported)
{
    world();
    order_two_shipments();
    char msg[256];
    cr_assert_eq(allot_state_check_invariants(st, msg, sizeof(msg)), 0, "%s", msg);
    allot_event_position_t positions[] = {{S("W1"), 5, 0, 3, 0, ALLOT_AS_OF_NONE},
                                          {S("W3"), 5, 0, 0, 0, ALLOT_AS_OF_NONE},
                                          {S("W4"), 5, 0, 0, 0, ALLOT_AS_OF_NONE}};
    allot_event_t e = {.type = ALLOT_EVENT_SKU_SNAPSHOT};
    e.u.sku_snapshot = (allot_event_sku_snapshot_t){S("A"), 3, positions};
    allot_bytes_t bytes = {0};
    cr_assert_eq(allot_event_encode(&e, &bytes), 0);
    cr_assert_eq(allot_event_apply_encoded(st, e.type, bytes.data, bytes.len), 0);
    allot_bytes_free(&bytes);
    cr_assert_eq(allot_state_check_invariants(st, msg, sizeof(msg)), ALLOT_ECORRUPT);
    cr_assert(strstr(msg, "allocated 3") != NULL, "%s", msg);
    allot_state_destroy(st);
    fx_log_reset();
}

static int order_record_decode(const allot_event_t *e)
{
    allot_bytes_t bytes = {0};
    cr_assert_eq(allot_event_encode(e, &bytes), 0);
    allot_event_scratch_t scratch = {0};
    static allot_event_t decoded;
    int rc = allot_event_decode(e->type, bytes.data, bytes.len, &scratch, &decoded);
    allot_event_scratch_free(&scratch);
    allot_bytes_free(&bytes);
    return rc;
}

Test(order_event, times_outside_0_to_year_9999_are_corrupt)
{
    world();
    drive_to(ALLOT_ORDER_DELIVERED);
    static const allot_line_input_t ret_lines[] = {{{"A", 1}, 1}};
    allot_return_request_t ret = {S("r-1"), S("o1"), ret_lines, 1, E()};
    uint32_t index;
    OK(allot_return_create(st, &ret, FX_T0 + 2000, &ov, &index, &fx_err));
    static allot_event_history_t history[ALLOT_ORDER_HISTORY_MAX];
    static allot_event_return_t returns[ALLOT_ORDER_RETURNS_MAX];
    allot_event_t snap = {.type = ALLOT_EVENT_ORDER_SNAPSHOT};
    snap.u.order = *ov;
    memcpy(history, ov->history, ov->history_count * sizeof(*history));
    memcpy(returns, ov->returns, ov->return_count * sizeof(*returns));
    snap.u.order.history = history;
    snap.u.order.returns = returns;
    snap.u.order.ended_ms = FX_T0 + 3000;
    allot_event_t change = {.type = ALLOT_EVENT_ORDER_HOLD};
    change.u.change = (allot_event_order_change_t){
        .id = S("o1"), .at_ms = FX_T0, .shipment = ALLOT_EVENT_SHIPMENT_NONE};
    change.u.change.text = change.u.change.address = change.u.change.instructions = E();
    change.u.change.location = E();
    int64_t *fields[] = {&snap.u.order.created_ms, &snap.u.order.ended_ms,  &history[1].at_ms,
                         &returns[0].created_ms,   &returns[0].received_ms, &change.u.change.at_ms};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const allot_event_t *e = i == 5 ? &change : &snap;
        int64_t saved = *fields[i];
        cr_assert_eq(order_record_decode(e), 0, "field %zu as it is", i);
        const int64_t bad[] = {-1, ALLOT_TIME_MS_MAX + 1, INT64_MIN, INT64_MAX};
        for (size_t k = 0; k < 4; k++) {
            *fields[i] = bad[k];
            cr_assert_eq(order_record_decode(e), ALLOT_ECORRUPT, "field %zu = %lld decoded", i,
                         (long long)bad[k]);
        }
        *fields[i] = ALLOT_TIME_MS_MAX;
        cr_assert_eq(order_record_decode(e), 0, "field %zu at the maximum", i);
        *fields[i] = saved;
    }
    world_end();
}

/* Orders add to allocated without a check against on_hand (a record is a fact): past 2^40 the
 * next order record on that position is refused, so no series of records can overflow it. */
Test(order_event, an_order_on_a_position_allocated_past_the_range_is_corrupt)
{
    world();
    order_two_shipments();
    allot_event_scratch_t scratch = {0};
    allot_event_t create;
    const fx_event_t *recorded = &fx_log.events[fx_log.count - 1];
    cr_assert_eq(
        allot_event_decode(recorded->type, recorded->payload, recorded->len, &scratch, &create), 0);
    allot_event_position_t full[] = {{S("W1"), 5, 0, ALLOT_QUANTITY_MAX, 0, ALLOT_AS_OF_NONE}};
    allot_event_t snapshot = {.type = ALLOT_EVENT_SKU_SNAPSHOT};
    snapshot.u.sku_snapshot = (allot_event_sku_snapshot_t){S("A"), 1, full};
    allot_bytes_t bytes = {0};
    cr_assert_eq(allot_event_encode(&snapshot, &bytes), 0);
    cr_assert_eq(allot_event_apply_encoded(st, snapshot.type, bytes.data, bytes.len), 0);
    const char *ids[] = {"o2", "o3"};
    for (int i = 0; i < 2; i++) {
        create.u.order.id = S(ids[i]);
        bytes.len = 0;
        cr_assert_eq(allot_event_encode(&create, &bytes), 0);
        cr_assert_eq(allot_event_apply_encoded(st, create.type, bytes.data, bytes.len),
                     i == 0 ? 0 : ALLOT_ECORRUPT, "order %s", ids[i]);
    }
    cr_assert_eq(fx_position(st, "A", "W1")->allocated, ALLOT_QUANTITY_MAX + 1);
    const allot_order_view_t *v;
    cr_assert_eq(allot_order_get(st, S("o3"), &v, &fx_err), ALLOT_ENOT_FOUND);
    allot_bytes_free(&bytes);
    allot_event_scratch_free(&scratch);
    allot_state_destroy(st);
    fx_log_reset();
}

Test(order_event, garbage_order_records_are_corrupt_and_change_nothing)
{
    world();
    order_two_shipments();
    char *before = fx_dump(st);
    const fx_event_t *create_event = &fx_log.events[fx_log.count - 1];
    cr_assert_eq(create_event->type, ALLOT_EVENT_ORDER_CREATE);
    for (size_t cut = 0; cut < create_event->len; cut += 7)
        cr_assert_eq(allot_event_apply_encoded(st, create_event->type, create_event->payload, cut),
                     ALLOT_ECORRUPT);
    cr_assert_eq(
        allot_event_apply_encoded(st, create_event->type, create_event->payload, create_event->len),
        ALLOT_ECORRUPT, "the id exists");
    allot_bytes_t b = {0};
    allot_event_t e = {.type = ALLOT_EVENT_ORDER_EVICT};
    e.u.change = (allot_event_order_change_t){
        .id = S("o1"), .at_ms = FX_T0, .shipment = ALLOT_EVENT_SHIPMENT_NONE};
    e.u.change.text = E();
    cr_assert_eq(allot_event_encode(&e, &b), 0);
    cr_assert_eq(allot_event_apply_encoded(st, e.type, b.data, b.len), ALLOT_ECORRUPT,
                 "a live order cannot be evicted");
    allot_bytes_free(&b);
    char *after = fx_dump(st);
    cr_assert_str_eq(before, after);
    cr_assert_str_eq(allot_event_type_name(ALLOT_EVENT_SHIPMENT_REJECT), "shipment.reject");
    free(before);
    free(after);
    world_end();
}
