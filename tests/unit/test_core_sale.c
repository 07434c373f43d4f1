/* test_core_sale.c - SKU settings and flash-sale fairness: per-customer limits, the waiting room
 * (admission order and rate, tokens bound to customer and SKU, expiry), replay and checkpoints. */
#include "core/order.h"
#include "core/sale.h"
#include "test_core_fixture.h"

static allot_state_t *st;

static void teardown(void)
{
    allot_state_destroy(st);
    st = NULL;
    fx_log_reset();
}

static void one_warehouse(void)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W", .lat = 52.52, .lon = 13.40});
    fx_stock(st, "HOT", "W", 100, 0);
    fx_stock(st, "B", "W", 100, 0);
}

static void settings_put(const char *sku, int64_t max_per_customer, int64_t rate_per_s,
                         int64_t token_ttl_s, int64_t now_ms)
{
    allot_sku_settings_t s = {0, max_per_customer, rate_per_s > 0, rate_per_s, token_ttl_s};
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_sku_put(st, S(sku), &s, now_ms, &fx_err), 0, "%s", fx_err.message);
}

static int reserve_as(const char *id, const char *sku, int64_t qty, const char *customer,
                      const char *token, int64_t now_ms)
{
    allot_line_input_t lines[] = {{S(sku), qty}};
    allot_reserve_request_t req = fx_req(id, lines, 1);
    req.customer = customer ? S(customer) : (allot_str_t){"", 0};
    req.token = token ? S(token) : (allot_str_t){"", 0};
    return fx_reserve(st, &req, now_ms, NULL);
}

static int64_t held(const char *sku, const char *customer)
{
    return allot_customer_held(st, allot_sku_index_find(st, S(sku)), S(customer));
}

static void assert_invariants(void)
{
    char msg[256];
    cr_assert_eq(allot_state_check_invariants(st, msg, sizeof(msg)), 0, "%s", msg);
}

/* ---- a log without the fixture's bound, for the 10,000-customer queue ---------------------- */

typedef struct big_log {
    fx_event_t *events;
    size_t count, capacity;
} big_log_t;

static big_log_t big;

static int big_sink(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    (void)ctx;
    if (big.count == big.capacity) {
        big.capacity = big.capacity ? big.capacity * 2 : 4096;
        big.events = realloc(big.events, big.capacity * sizeof(*big.events));
        cr_assert_not_null(big.events);
    }
    fx_event_t *e = &big.events[big.count++];
    e->type = type;
    e->payload = malloc(len);
    memcpy(e->payload, payload, len);
    e->len = len;
    return 0;
}

static void assert_big_replay_equal(void)
{
    allot_state_t *replica = allot_state_create(NULL);
    for (size_t i = 0; i < fx_log.count; i++)
        cr_assert_eq(allot_event_apply_encoded(replica, fx_log.events[i].type,
                                               fx_log.events[i].payload, fx_log.events[i].len),
                     0);
    for (size_t i = 0; i < big.count; i++) {
        cr_assert_eq(allot_event_apply_encoded(replica, big.events[i].type, big.events[i].payload,
                                               big.events[i].len),
                     0, "record %zu", i);
        free(big.events[i].payload);
    }
    free(big.events);
    big = (big_log_t){0};
    char *a = fx_dump(st);
    char *b = fx_dump(replica);
    cr_assert_str_eq(a, b, "live and replayed states differ");
    free(a);
    free(b);
    allot_state_destroy(replica);
}

/* ---- settings ----------------------------------------------------------------------------- */

TestSuite(sku_settings, .fini = teardown);

Test(sku_settings, put_then_get_returns_every_field_and_unknown_skus_read_as_zeros,
     .init = one_warehouse)
{
    allot_sku_settings_t in = {7, 2, true, 50, 120};
    cr_assert_eq(allot_sku_put(st, S("HOT"), &in, FX_T0, &fx_err), 0);
    allot_sku_settings_t out;
    cr_assert_eq(allot_sku_get(st, S("HOT"), &out, &fx_err), 0);
    cr_assert(out.low_stock == 7 && out.max_per_customer == 2 && out.has_queue);
    cr_assert(out.queue_rate_per_s == 50 && out.queue_token_ttl_s == 120);
    cr_assert_eq(allot_sku_get(st, S("NEW"), &out, &fx_err), 0);
    cr_assert(out.low_stock == 0 && out.max_per_customer == 0 && !out.has_queue);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(sku_settings, out_of_range_values_are_refused_with_nothing_changed, .init = one_warehouse)
{
    size_t events = fx_log.count;
    allot_sku_settings_t bad[] = {
        {-1, 0, false, 0, 0}, {0, -1, false, 0, 0},
        {0, 0, true, 0, 60},  {0, 0, true, ALLOT_QUEUE_RATE_PER_S_MAX + 1, 60},
        {0, 0, true, 10, 0},  {0, 0, true, 10, ALLOT_QUEUE_TOKEN_TTL_S_MAX + 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(allot_sku_put(st, S("HOT"), &bad[i], FX_T0, &fx_err), ALLOT_EINVALID_ARGUMENT,
                     "case %zu", i);
    cr_assert_eq(allot_sku_put(st, S(""), &(allot_sku_settings_t){0}, FX_T0, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(fx_log.count, events);
}

/* ---- limits ------------------------------------------------------------------------------- */

TestSuite(customer_limit, .fini = teardown);

Test(customer_limit, holds_past_the_limit_are_refused_naming_sku_limit_and_held,
     .init = one_warehouse)
{
    settings_put("HOT", 2, 0, 0, FX_T0);
    cr_assert_eq(reserve_as("c1", "HOT", 1, "alice", NULL, FX_T0), 0);
    cr_assert_eq(reserve_as("c2", "HOT", 1, "alice", NULL, FX_T0), 0);
    size_t events = fx_log.count;
    cr_assert_eq(reserve_as("c3", "HOT", 1, "alice", NULL, FX_T0), ALLOT_ELIMIT_EXCEEDED);
    cr_assert(allot_str_equal(fx_err.limit_sku, S("HOT")));
    cr_assert_eq(fx_err.limit, 2);
    cr_assert_eq(fx_err.held, 2);
    cr_assert_eq(fx_log.count, events, "nothing changes");
    cr_assert_eq(reserve_as("c4", "HOT", 2, "bob", NULL, FX_T0), 0, "others are unaffected");
    cr_assert_eq(reserve_as("c5", "B", 50, "alice", NULL, FX_T0), 0, "other SKUs are unaffected");
    cr_assert_eq(reserve_as("c6", "HOT", 1, NULL, NULL, FX_T0), ALLOT_EINVALID_ARGUMENT,
                 "a limited SKU needs a customer");
    cr_assert_eq(held("HOT", "alice"), 2);
    cr_assert_eq(held("HOT", "bob"), 2);
    assert_invariants();
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(customer_limit, release_expiry_and_cancel_give_the_allowance_back, .init = one_warehouse)
{
    settings_put("HOT", 1, 0, 0, FX_T0);
    const allot_reservation_t *r;
    cr_assert_eq(reserve_as("c1", "HOT", 1, "alice", NULL, FX_T0), 0);
    cr_assert_eq(allot_reservation_release(st, S("c1"), FX_T0, &r, &fx_err), 0);
    cr_assert_eq(held("HOT", "alice"), 0);
    cr_assert_eq(reserve_as("c2", "HOT", 1, "alice", NULL, FX_T0), 0, "release gave it back");
    cr_assert_eq(allot_reservations_expire(st, FX_T0 + 901 * 1000, 100), 1);
    cr_assert_eq(held("HOT", "alice"), 0);
    int64_t t1 = FX_T0 + 902 * 1000;
    cr_assert_eq(reserve_as("c3", "HOT", 1, "alice", NULL, t1), 0, "expiry gave it back");
    allot_order_create_request_t order = {.id = S("o1"), .reservation = S("c3")};
    const allot_order_view_t *v;
    cr_assert_eq(allot_order_create(st, &order, t1, &v, &fx_err), 0, "%s", fx_err.message);
    cr_assert(allot_str_equal(v->customer, S("alice")), "the order takes the hold's customer");
    cr_assert_eq(held("HOT", "alice"), 1, "the order counts instead of the hold");
    cr_assert_eq(reserve_as("c4", "HOT", 1, "alice", NULL, t1), ALLOT_ELIMIT_EXCEEDED);
    cr_assert_eq(allot_order_cancel(st, S("o1"), S(""), t1, &v, &fx_err), 0, "%s", fx_err.message);
    cr_assert_eq(held("HOT", "alice"), 0);
    cr_assert_eq(reserve_as("c4", "HOT", 1, "alice", NULL, t1), 0, "cancel gave it back");
    assert_invariants();
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(customer_limit, orders_from_lines_count_and_are_refused_past_the_limit, .init = one_warehouse)
{
    settings_put("HOT", 3, 0, 0, FX_T0);
    allot_line_input_t lines[] = {{S("HOT"), 2}, {S("HOT"), 2}};
    allot_order_create_request_t order = {
        .id = S("o1"), .customer = S("alice"), .lines = lines, .line_count = 2};
    const allot_order_view_t *v;
    cr_assert_eq(allot_order_create(st, &order, FX_T0, &v, &fx_err), ALLOT_ELIMIT_EXCEEDED,
                 "two lines of one SKU add up");
    order.line_count = 1;
    cr_assert_eq(allot_order_create(st, &order, FX_T0, &v, &fx_err), 0, "%s", fx_err.message);
    cr_assert_eq(reserve_as("c1", "HOT", 2, "alice", NULL, FX_T0), ALLOT_ELIMIT_EXCEEDED);
    cr_assert_eq(reserve_as("c1", "HOT", 1, "alice", NULL, FX_T0), 0);
    assert_invariants();
    fx_assert_replay_equal(st);
}

Test(customer_limit, a_replace_counts_only_the_difference, .init = one_warehouse)
{
    settings_put("HOT", 2, 0, 0, FX_T0);
    cr_assert_eq(reserve_as("c1", "HOT", 2, "alice", NULL, FX_T0), 0);
    allot_line_input_t lines[] = {{S("HOT"), 1}};
    allot_reserve_request_t req = fx_req("c1", lines, 1);
    req.customer = S("alice");
    req.replace = true;
    cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0, "%s", fx_err.message);
    cr_assert_eq(held("HOT", "alice"), 1);
    assert_invariants();
    fx_assert_replay_equal(st);
}

/* ---- the waiting room ---------------------------------------------------------------------- */

TestSuite(queue, .fini = teardown);

#define CUSTOMERS 10000

static char customer_names[CUSTOMERS][16];
static uint64_t tickets[CUSTOMERS];

static const char *customer(uint32_t i)
{
    snprintf(customer_names[i], sizeof(customer_names[i]), "cust-%05u", (i * 7919u) % CUSTOMERS);
    return customer_names[i];
}

static void join_all(const char *sku, uint32_t n, int64_t now_ms)
{
    for (uint32_t i = 0; i < n; i++) {
        allot_ticket_view_t t;
        int rc = allot_queue_join(st, S(sku), S(customer(i)), now_ms, &t, &fx_err);
        cr_assert_eq(rc, 0, "join %u: %s", i, fx_err.message);
        cr_assert_eq(t.position, i + 1);
        tickets[i] = t.ticket;
    }
}

static allot_ticket_view_t status_of(uint64_t ticket, int64_t now_ms)
{
    char text[ALLOT_TOKEN_CHARS + 1];
    allot_ticket_format(ticket, text);
    allot_ticket_view_t t;
    cr_assert_eq(allot_queue_status(st, S(text), now_ms, &t, &fx_err), 0, "%s", fx_err.message);
    return t;
}

static const char *token_of(uint64_t ticket, int64_t now_ms, char *text)
{
    allot_ticket_view_t t = status_of(ticket, now_ms);
    cr_assert_eq(t.state, ALLOT_TICKET_ADMITTED);
    allot_token_format(t.ticket, t.secret, text);
    return text;
}

Test(queue, ten_thousand_customers_are_admitted_in_join_order_at_the_rate, .init = one_warehouse)
{
    const int64_t rate = 1000, tick_ms = 250;
    settings_put("HOT", 0, rate, 600, FX_T0);
    allot_state_set_event_sink(st, big_sink, NULL); /* after the fixture's records */
    join_all("HOT", CUSTOMERS, FX_T0);
    allot_ticket_view_t again;
    cr_assert_eq(allot_queue_join(st, S("HOT"), S(customer(17)), FX_T0, &again, &fx_err), 0);
    cr_assert_eq(again.ticket, tickets[17], "joining again returns the same ticket");
    cr_assert_eq(status_of(tickets[CUSTOMERS - 1], FX_T0).estimated_wait_ms,
                 CUSTOMERS * 1000 / rate);
    uint32_t admitted = 0;
    for (int64_t now = FX_T0 + tick_ms; admitted < CUSTOMERS; now += tick_ms) {
        uint32_t n = allot_queue_admit_due(st, now, (uint64_t)now * 31, 64);
        cr_assert_eq(n, rate * tick_ms / 1000, "a tick admits the rate's share");
        for (uint32_t i = admitted; i < admitted + n; i++)
            cr_assert_eq(status_of(tickets[i], now).state, ALLOT_TICKET_ADMITTED, "in join order");
        if (admitted + n < CUSTOMERS) {
            allot_ticket_view_t next = status_of(tickets[admitted + n], now);
            cr_assert_eq(next.state, ALLOT_TICKET_WAITING, "nobody jumps the queue");
            cr_assert_eq(next.position, 1);
        }
        admitted += n;
    }
    cr_assert_eq(allot_queue_admit_due(st, FX_T0 + 60000, 1, 64), 0, "nobody left");
    assert_big_replay_equal();
    fx_assert_checkpoint_round_trip(st);
}

Test(queue, a_token_works_once_for_its_customer_and_sku_only, .init = one_warehouse)
{
    settings_put("HOT", 0, 10, 60, FX_T0);
    settings_put("B", 0, 10, 60, FX_T0);
    join_all("HOT", 2, FX_T0);
    allot_ticket_view_t other;
    cr_assert_eq(allot_queue_join(st, S("B"), S(customer(0)), FX_T0, &other, &fx_err), 0);
    int64_t now = FX_T0 + 1000;
    cr_assert_eq(allot_queue_admit_due(st, now, 7, 64), 3);
    char token[ALLOT_TOKEN_CHARS + 1];
    token_of(tickets[0], now, token);
    cr_assert_eq(reserve_as("x1", "HOT", 1, customer(0), NULL, now), ALLOT_EQUEUED);
    cr_assert_geq(fx_err.retry_after_ms, ALLOT_QUEUE_RETRY_AFTER_MS_MIN);
    cr_assert_eq(reserve_as("x1", "HOT", 1, customer(1), token, now), ALLOT_EQUEUED,
                 "another customer's token");
    cr_assert_eq(reserve_as("x1", "B", 1, customer(0), token, now), ALLOT_EQUEUED,
                 "a token of another SKU");
    char forged[ALLOT_TOKEN_CHARS + 1];
    memcpy(forged, token, sizeof(forged));
    forged[ALLOT_TOKEN_CHARS - 1] = forged[ALLOT_TOKEN_CHARS - 1] == '0' ? '1' : '0';
    cr_assert_eq(reserve_as("x1", "HOT", 1, customer(0), forged, now), ALLOT_EQUEUED);
    cr_assert_eq(reserve_as("x1", "HOT", 1, customer(0), token, now), 0, "%s", fx_err.message);
    cr_assert_eq(status_of(tickets[0], now).state, ALLOT_TICKET_USED);
    cr_assert_eq(reserve_as("x1", "HOT", 1, customer(0), token, now), 0,
                 "a retried reserve stays idempotent");
    cr_assert_eq(reserve_as("x2", "HOT", 1, customer(0), token, now), ALLOT_EQUEUED,
                 "a used token does not work again");
    cr_assert_eq(reserve_as("x3", "B", 1, customer(1), NULL, now), ALLOT_EQUEUED,
                 "B has a queue of its own");
}

Test(queue, expired_tokens_refuse_and_joining_again_goes_to_the_back, .init = one_warehouse)
{
    settings_put("HOT", 0, 10, 5, FX_T0);
    join_all("HOT", 3, FX_T0);
    int64_t now = FX_T0 + 100;
    cr_assert_eq(allot_queue_admit_due(st, now, 7, 64), 1);
    char token[ALLOT_TOKEN_CHARS + 1];
    token_of(tickets[0], now, token);
    int64_t later = now + 5000;
    cr_assert_eq(status_of(tickets[0], later).state, ALLOT_TICKET_EXPIRED, "reads as expired");
    cr_assert_eq(reserve_as("x1", "HOT", 1, customer(0), token, later), ALLOT_EQUEUED);
    cr_assert_eq(allot_queue_expire_due(st, later, 100), 1);
    allot_ticket_view_t t;
    cr_assert_eq(allot_queue_join(st, S("HOT"), S(customer(0)), later, &t, &fx_err), 0);
    cr_assert_neq(t.ticket, tickets[0]);
    cr_assert_eq(t.state, ALLOT_TICKET_WAITING);
    uint32_t admitted_before = 0;
    for (uint32_t i = 1; i < 3; i++)
        admitted_before += status_of(tickets[i], later).state != ALLOT_TICKET_WAITING;
    cr_assert_eq(t.position, 3 - admitted_before, "at the back");
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(queue, removing_the_queue_drops_its_tickets_and_unqueues_the_sku, .init = one_warehouse)
{
    settings_put("HOT", 0, 10, 60, FX_T0);
    join_all("HOT", 5, FX_T0);
    settings_put("HOT", 0, 0, 0, FX_T0 + 1);
    cr_assert_eq(reserve_as("x1", "HOT", 1, NULL, NULL, FX_T0 + 2), 0);
    allot_ticket_view_t t;
    char text[ALLOT_TICKET_CHARS + 1];
    allot_ticket_format(tickets[0], text);
    cr_assert_eq(allot_queue_status(st, S(text), FX_T0, &t, &fx_err), ALLOT_ENOT_FOUND);
    fx_assert_replay_equal(st);
    fx_assert_checkpoint_round_trip(st);
}

Test(queue, with_limit_one_exactly_n_customers_get_one_unit_each_in_join_order)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W", .lat = 52.52, .lon = 13.40});
    const uint32_t units = 50, customers = 400;
    fx_stock(st, "HOT", "W", units, 0);
    settings_put("HOT", 1, 20, 60, FX_T0);
    join_all("HOT", customers, FX_T0);
    uint32_t sold = 0, next = 0;
    char id[32], token[ALLOT_TOKEN_CHARS + 1];
    for (int64_t now = FX_T0 + 250; next < customers; now += 250) {
        uint32_t n = allot_queue_admit_due(st, now, (uint64_t)now, 64);
        for (uint32_t i = next; i < next + n; i++) {
            token_of(tickets[i], now, token);
            snprintf(id, sizeof(id), "cart-%u", i);
            int rc = reserve_as(id, "HOT", 1, customer(i), token, now);
            if (rc == 0) {
                cr_assert_eq(i, sold, "units go in join order");
                sold++;
                snprintf(id, sizeof(id), "cart-%u-b", i); /* a second unit: over the limit */
                cr_assert_eq(reserve_as(id, "HOT", 1, customer(i), token, now), ALLOT_EQUEUED);
            } else {
                cr_assert_eq(rc, ALLOT_EINSUFFICIENT_STOCK);
                cr_assert_geq(i, units);
            }
        }
        next += n;
    }
    cr_assert_eq(sold, units, "exactly N sold");
    cr_assert_eq(fx_avail(st, "HOT"), 0);
    assert_invariants();
    fx_assert_replay_equal(st);
}

Test(queue, a_new_rate_counts_from_when_it_was_set_without_a_burst, .init = one_warehouse)
{
    settings_put("HOT", 0, 1, 60, FX_T0);
    join_all("HOT", 200, FX_T0);
    int64_t later = FX_T0 + 60 * 1000; /* nobody polled admission for a minute */
    settings_put("HOT", 0, 20, 60, later);
    cr_assert_eq(allot_queue_admit_due(st, later + 250, 1, 64), 5, "a quarter second at 20/s");
    cr_assert_eq(status_of(tickets[4], later + 250).state, ALLOT_TICKET_ADMITTED);
    cr_assert_eq(status_of(tickets[5], later + 250).position, 1, "tickets kept their places");
    fx_assert_replay_equal(st);
}

Test(customer_limit, a_request_over_the_limit_is_refused_before_sourcing, .init = one_warehouse)
{
    settings_put("HOT", 1, 0, 0, FX_T0);
    cr_assert_eq(reserve_as("c1", "HOT", 500, "alice", NULL, FX_T0), ALLOT_ELIMIT_EXCEEDED,
                 "not INSUFFICIENT_STOCK: the limit is what refuses it");
    cr_assert_eq(fx_err.held, 0);
}
