/* test_core_supply.c - future supply: put (upsert rules, bounds), receive as a stock movement
 * (partial, the rest by default), cancel, the incoming supply a page can promise, the change
 * stream's supply.changed, backorder holds on open supply, and replay and checkpoints equal to
 * the live state. */
#include <criterion/criterion.h>

#include "core/base/buffer.h"
#include "core/errors.h"
#include "core/order.h"
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

static void two_warehouses(void)
{
    st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.52, .lon = 13.40});
    fx_location(st, (fx_loc_t){.id = "W2", .lat = 48.14, .lon = 11.58});
    fx_stock(st, "A", "W1", 5, 0);
}

static int put_at(const char *id, const char *sku, const char *loc, int64_t qty, int64_t eta_ms,
                  allot_supply_view_t *out)
{
    allot_supply_put_input_t in = {S(id), S(sku), S(loc), qty, eta_ms};
    allot_supply_view_t dummy;
    allot_error_detail_clear(&fx_err);
    return allot_supply_put(st, &in, FX_T0, out != NULL ? out : &dummy, &fx_err);
}

static void put(const char *id, const char *sku, const char *loc, int64_t qty, int64_t eta_ms)
{
    cr_assert_eq(put_at(id, sku, loc, qty, eta_ms, NULL), 0, "supply.put %s: %s", id,
                 fx_err.message);
}

static int receive(const char *id, bool has_qty, int64_t qty, allot_supply_view_t *out)
{
    allot_supply_view_t dummy;
    allot_error_detail_clear(&fx_err);
    return allot_supply_receive(st, S(id), has_qty, qty, FX_T0 + 1000, out ? out : &dummy, &fx_err);
}

static int cancel(const char *id, allot_supply_view_t *out)
{
    allot_supply_view_t dummy;
    allot_error_detail_clear(&fx_err);
    return allot_supply_cancel(st, S(id), FX_T0 + 2000, out ? out : &dummy, &fx_err);
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

/* ---- put ------------------------------------------------------------------------------------ */

Test(supply, put_creates_an_open_supply_and_list_orders_by_eta_then_id, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-3", "A", "W1", 10, FX_T0 + 3 * DAY_MS);
    put("PO-2", "A", "W2", 20, FX_T0 + 1 * DAY_MS);
    put("PO-1", "A", "W1", 30, FX_T0 + 3 * DAY_MS);
    put("PO-X", "B", "W1", 40, FX_T0);
    allot_supply_view_t v[8];
    cr_assert_eq(allot_supply_list(st, S("A"), v, 8), 3);
    assert_id(v[0].id, "PO-2");
    assert_id(v[1].id, "PO-1");
    assert_id(v[2].id, "PO-3");
    assert_id(v[0].location, "W2");
    cr_assert_eq(v[0].qty, 20);
    cr_assert_eq(v[0].received, 0);
    cr_assert_eq(v[0].held, 0);
    cr_assert_eq(v[0].eta_ms, FX_T0 + DAY_MS);
    cr_assert_eq(v[0].state, ALLOT_SUPPLY_OPEN);
    cr_assert_eq(allot_supply_list(st, S("NONE"), v, 8), 0);
    cr_assert_eq(allot_supply_list(st, S("A"), v, 1), 3, "the count, whatever fits");
    assert_id(v[0].id, "PO-2");
    /* a delay moves it behind the others */
    put("PO-2", "A", "W2", 20, FX_T0 + 9 * DAY_MS);
    cr_assert_eq(allot_supply_list(st, S("A"), v, 8), 3);
    assert_id(v[0].id, "PO-1");
    assert_id(v[2].id, "PO-2");
    assert_invariants();
}

Test(supply, put_refuses_bad_input_with_nothing_changed, .init = two_warehouses, .fini = teardown)
{
    size_t records = fx_log.count;
    cr_assert_eq(put_at("PO-1", "A", "NOWHERE", 10, FX_T0, NULL), ALLOT_ENOT_FOUND);
    cr_assert_str_eq(fx_err.field, "location");
    cr_assert_eq(put_at("PO-1", "A", "W1", 0, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "qty");
    cr_assert_eq(put_at("PO-1", "A", "W1", ALLOT_QUANTITY_MAX + 1, FX_T0, NULL),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(put_at("PO-1", "A", "W1", 1, ALLOT_TIME_MS_MAX + 1, NULL),
                 ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "eta_ms");
    cr_assert_eq(put_at("PO-1", "A", "W1", 1, -1, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(put_at("", "A", "W1", 1, FX_T0, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "id");
    cr_assert_eq(fx_log.count, records, "no record for a refused put");
    cr_assert_eq(allot_supply_count(st), 0);
}

Test(supply, put_of_the_same_values_again_writes_no_record, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    size_t records = fx_log.count;
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    cr_assert_eq(fx_log.count, records);
    put("PO-1", "A", "W1", 12, FX_T0 + DAY_MS);
    cr_assert_eq(fx_log.count, records + 1);
    cr_assert_eq(get("PO-1").qty, 12);
}

Test(supply, put_keeps_the_sku_and_the_location_of_received_units, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    cr_assert_eq(put_at("PO-1", "B", "W1", 10, FX_T0 + DAY_MS, NULL), ALLOT_ECONFLICT);
    cr_assert_str_eq(fx_err.field, "sku");
    put("PO-1", "A", "W2", 10, FX_T0 + DAY_MS); /* nothing arrived yet: it may be redirected */
    assert_id(get("PO-1").location, "W2");
    cr_assert_eq(receive("PO-1", true, 4, NULL), 0, "%s", fx_err.message);
    cr_assert_eq(put_at("PO-1", "A", "W1", 10, FX_T0 + DAY_MS, NULL), ALLOT_ECONFLICT);
    cr_assert_str_eq(fx_err.field, "location");
    assert_invariants();
}

Test(supply, lowering_qty_stops_at_what_was_received_and_there_ends_it, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    cr_assert_eq(receive("PO-1", true, 6, NULL), 0, "%s", fx_err.message);
    cr_assert_eq(put_at("PO-1", "A", "W1", 5, FX_T0 + DAY_MS, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_str_eq(fx_err.field, "qty");
    cr_assert_eq(get("PO-1").qty, 10);
    allot_supply_view_t v;
    cr_assert_eq(put_at("PO-1", "A", "W1", 6, FX_T0 + DAY_MS, &v), 0, "%s", fx_err.message);
    cr_assert_eq(v.state, ALLOT_SUPPLY_RECEIVED);
    cr_assert_eq(v.qty, 6);
    assert_invariants();
}

Test(supply, put_on_an_ended_supply_is_an_invalid_transition, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-R", "A", "W1", 3, FX_T0 + DAY_MS);
    put("PO-C", "A", "W1", 3, FX_T0 + DAY_MS);
    cr_assert_eq(receive("PO-R", false, 0, NULL), 0, "%s", fx_err.message);
    cr_assert_eq(cancel("PO-C", NULL), 0, "%s", fx_err.message);
    cr_assert_eq(put_at("PO-R", "A", "W1", 9, FX_T0 + DAY_MS, NULL), ALLOT_EINVALID_TRANSITION);
    cr_assert_eq(put_at("PO-C", "A", "W1", 9, FX_T0 + DAY_MS, NULL), ALLOT_EINVALID_TRANSITION);
}

Test(supply, a_sku_holds_at_most_its_bound_of_supplies, .init = two_warehouses, .fini = teardown)
{
    char id[32];
    for (uint32_t i = 0; i < ALLOT_SUPPLIES_PER_SKU_MAX; i++) {
        snprintf(id, sizeof(id), "PO-%u", i);
        put(id, "A", "W1", 1, FX_T0 + i);
    }
    cr_assert_eq(put_at("PO-over", "A", "W1", 1, FX_T0, NULL), ALLOT_ETOO_LARGE);
    cr_assert_str_eq(fx_err.field, "sku");
    put("PO-other", "B", "W1", 1, FX_T0); /* another SKU has room */
    put("PO-0", "A", "W1", 2, FX_T0);     /* changing one that exists needs none */
    assert_invariants();
}

Test(supply, a_new_supply_past_the_bound_evicts_the_one_that_ended_first, .init = two_warehouses,
     .fini = teardown)
{
    char id[32];
    for (uint32_t i = 0; i < ALLOT_SUPPLIES_PER_SKU_MAX; i++) {
        snprintf(id, sizeof(id), "PO-%u", i);
        put(id, "A", "W1", 1, FX_T0 + i);
    }
    cr_assert_eq(cancel("PO-7", NULL), 0);            /* ended at FX_T0 + 2000 */
    cr_assert_eq(receive("PO-9", false, 0, NULL), 0); /* ended at FX_T0 + 1000: first */
    put("PO-new", "A", "W1", 1, FX_T0);
    allot_supply_view_t v;
    cr_assert_eq(allot_supply_get(st, S("PO-9"), &v, &fx_err), ALLOT_ENOT_FOUND, "evicted");
    cr_assert_eq(allot_supply_get(st, S("PO-7"), &v, &fx_err), 0, "kept");
    cr_assert_eq(fx_position(st, "A", "W1")->on_hand, 6, "what it received stays on hand");
    put("PO-new2", "A", "W1", 1, FX_T0);
    cr_assert_eq(allot_supply_get(st, S("PO-7"), &v, &fx_err), ALLOT_ENOT_FOUND);
    cr_assert_eq(put_at("PO-new3", "A", "W1", 1, FX_T0, NULL), ALLOT_ETOO_LARGE, "all open");
    allot_supply_view_t views[ALLOT_SUPPLIES_PER_SKU_MAX];
    cr_assert_eq(allot_supply_list(st, S("A"), views, ALLOT_SUPPLIES_PER_SKU_MAX),
                 ALLOT_SUPPLIES_PER_SKU_MAX);
    assert_invariants();
    fx_assert_replay_equal(st);
}

/* ---- receive -------------------------------------------------------------------------------- */

Test(supply, receive_moves_units_into_on_hand_at_the_supply_location, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    put("PO-2", "NEW", "W2", 4, FX_T0 + DAY_MS);
    int64_t before = fx_avail(st, "A");
    allot_supply_view_t v;
    cr_assert_eq(receive("PO-1", true, 3, &v), 0, "%s", fx_err.message);
    cr_assert_eq(v.received, 3);
    cr_assert_eq(v.state, ALLOT_SUPPLY_OPEN);
    cr_assert_eq(fx_position(st, "A", "W1")->on_hand, 8);
    cr_assert_eq(fx_avail(st, "A"), before + 3);
    cr_assert_eq(receive("PO-2", false, 0, &v), 0, "%s", fx_err.message);
    cr_assert_eq(v.state, ALLOT_SUPPLY_RECEIVED);
    cr_assert_not_null(fx_position(st, "NEW", "W2"), "a receipt creates the position");
    cr_assert_eq(fx_position(st, "NEW", "W2")->on_hand, 4);
    assert_invariants();
}

Test(supply, partial_receipts_then_the_rest_by_default_make_it_received, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    cr_assert_eq(receive("PO-1", true, 4, NULL), 0);
    cr_assert_eq(receive("PO-1", true, 7, NULL), ALLOT_EINVALID_ARGUMENT, "more than the rest");
    cr_assert_str_eq(fx_err.field, "qty");
    cr_assert_eq(receive("PO-1", true, 0, NULL), ALLOT_EINVALID_ARGUMENT);
    allot_supply_view_t v;
    cr_assert_eq(receive("PO-1", false, 0, &v), 0, "%s", fx_err.message);
    cr_assert_eq(v.received, 10);
    cr_assert_eq(v.state, ALLOT_SUPPLY_RECEIVED);
    cr_assert_eq(fx_position(st, "A", "W1")->on_hand, 15);
    cr_assert_eq(receive("PO-1", false, 0, NULL), ALLOT_EINVALID_TRANSITION, "a retry");
    cr_assert_eq(fx_position(st, "A", "W1")->on_hand, 15, "a retry receives nothing twice");
    cr_assert_eq(receive("PO-none", false, 0, NULL), ALLOT_ENOT_FOUND);
    assert_invariants();
}

Test(supply, receive_refuses_on_hand_past_the_quantity_bound, .init = two_warehouses,
     .fini = teardown)
{
    fx_stock(st, "A", "W1", ALLOT_QUANTITY_MAX - 2, 0);
    put("PO-1", "A", "W1", 5, FX_T0 + DAY_MS);
    size_t records = fx_log.count;
    cr_assert_eq(receive("PO-1", true, 3, NULL), ALLOT_EINVALID_ARGUMENT);
    cr_assert_eq(fx_log.count, records);
    cr_assert_eq(receive("PO-1", true, 2, NULL), 0, "%s", fx_err.message);
}

/* ---- cancel --------------------------------------------------------------------------------- */

Test(supply, cancel_keeps_received_units_on_hand_and_ends_the_rest, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    cr_assert_eq(receive("PO-1", true, 4, NULL), 0);
    allot_supply_view_t v;
    cr_assert_eq(cancel("PO-1", &v), 0, "%s", fx_err.message);
    cr_assert_eq(v.state, ALLOT_SUPPLY_CANCELLED);
    cr_assert_eq(v.received, 4);
    cr_assert_eq(fx_position(st, "A", "W1")->on_hand, 9);
    size_t records = fx_log.count;
    cr_assert_eq(cancel("PO-1", &v), 0, "cancelling again succeeds");
    cr_assert_eq(fx_log.count, records, "and writes nothing");
    cr_assert_eq(receive("PO-1", false, 0, NULL), ALLOT_EINVALID_TRANSITION);
    put("PO-2", "A", "W1", 1, FX_T0);
    cr_assert_eq(receive("PO-2", false, 0, NULL), 0);
    cr_assert_eq(cancel("PO-2", NULL), ALLOT_EINVALID_TRANSITION, "a received supply");
    assert_invariants();
}

/* ---- incoming ------------------------------------------------------------------------------- */

Test(supply, incoming_is_open_unreceived_supply_earliest_first, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-late", "A", "W1", 10, FX_T0 + 5 * DAY_MS);
    put("PO-b", "A", "W2", 7, FX_T0 + 2 * DAY_MS);
    put("PO-a", "A", "W1", 3, FX_T0 + 2 * DAY_MS);
    put("PO-gone", "A", "W1", 3, FX_T0 + DAY_MS);
    put("PO-done", "A", "W1", 3, FX_T0 + DAY_MS);
    cr_assert_eq(cancel("PO-gone", NULL), 0);
    cr_assert_eq(receive("PO-done", false, 0, NULL), 0);
    cr_assert_eq(receive("PO-late", true, 4, NULL), 0);
    uint32_t sku = allot_sku_index_find(st, S("A"));
    allot_supply_incoming_t in[8];
    cr_assert_eq(allot_supply_incoming(st, sku, in, 8), 3);
    cr_assert_eq(in[0].eta_ms, FX_T0 + 2 * DAY_MS);
    cr_assert_eq(in[0].qty, 3, "PO-a before PO-b at the same eta");
    cr_assert_eq(in[0].location, allot_location_index_find(st, S("W1")));
    cr_assert_eq(in[1].qty, 7);
    cr_assert_eq(in[1].location, allot_location_index_find(st, S("W2")));
    cr_assert_eq(in[2].qty, 6, "what is not received yet");
    cr_assert_eq(in[2].eta_ms, FX_T0 + 5 * DAY_MS);
    cr_assert_neq(in[0].supply, in[1].supply);
    cr_assert_eq(allot_supply_incoming(st, sku, in, 2), 2, "the earliest that fit");
    cr_assert_eq(in[1].qty, 7);
    cr_assert_eq(allot_supply_incoming(st, allot_sku_index_find(st, S("B")), in, 8), 0);
}

/* ---- change stream -------------------------------------------------------------------------- */

typedef struct seen {
    char *text;
    size_t len;
    FILE *out;
} seen_t;

static void on_change(void *ctx, uint64_t lsn, uint32_t index, const allot_change_t *c)
{
    (void)lsn;
    seen_t *s = ctx;
    if (c->type == ALLOT_CHANGE_SUPPLY_CHANGED)
        fprintf(s->out,
                "%u supply.changed %.*s %.*s@%.*s qty=%lld received=%lld held=%lld "
                "eta=%lld %s %s\n",
                index, (int)c->id.len, c->id.ptr, (int)c->sku.len, c->sku.ptr, (int)c->location.len,
                c->location.ptr, (long long)c->qty, (long long)c->received, (long long)c->held,
                (long long)(c->eta_ms - FX_T0), c->state, c->cause);
    else if (c->type == ALLOT_CHANGE_STOCK_CHANGED)
        fprintf(s->out, "%u stock.changed %.*s@%.*s on_hand=%lld delta=%lld %s %.*s\n", index,
                (int)c->sku.len, c->sku.ptr, (int)c->location.len, c->location.ptr,
                (long long)c->on_hand, (long long)c->on_hand_delta, c->reason, (int)c->ref.len,
                c->ref.ptr);
}

Test(supply, each_record_gives_supply_changed_and_a_receipt_a_ledger_movement,
     .init = two_warehouses, .fini = teardown)
{
    seen_t s = {0};
    s.out = open_memstream(&s.text, &s.len);
    allot_state_set_change_observer(st, on_change, &s);
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    put("PO-1", "A", "W1", 10, FX_T0 + 3 * DAY_MS);
    put("PO-1", "A", "W1", 10, FX_T0 + 2 * DAY_MS);
    cr_assert_eq(receive("PO-1", true, 4, NULL), 0);
    cr_assert_eq(cancel("PO-1", NULL), 0);
    fclose(s.out);
    const char *want =
        "0 supply.changed PO-1 A@W1 qty=10 received=0 held=0 eta=86400000 open supply.put\n"
        "0 supply.changed PO-1 A@W1 qty=10 received=0 held=0 eta=259200000 open supply.delayed\n"
        "0 supply.changed PO-1 A@W1 qty=10 received=0 held=0 eta=172800000 open supply.put\n"
        "0 supply.changed PO-1 A@W1 qty=10 received=4 held=0 eta=172800000 open supply.receive\n"
        "1 stock.changed A@W1 on_hand=9 delta=4 supply.receive PO-1\n"
        "0 supply.changed PO-1 A@W1 qty=10 received=4 held=0 eta=172800000 cancelled "
        "supply.cancel\n";
    cr_assert_str_eq(s.text, want);
    free(s.text);
}

/* ---- records ------------------------------------------------------------------------------ */

Test(supply, every_record_round_trips_and_a_bad_field_is_corrupt)
{
    allot_event_t events[4] = {{.type = ALLOT_EVENT_SUPPLY_PUT},
                               {.type = ALLOT_EVENT_SUPPLY_RECEIVE},
                               {.type = ALLOT_EVENT_SUPPLY_CANCEL},
                               {.type = ALLOT_EVENT_SUPPLY_SNAPSHOT}};
    events[0].u.supply =
        (allot_event_supply_t){S("PO-1"), S("A"), S("W1"), 10, 0, 0, FX_T0, 0, FX_T0, 0, false};
    events[1].u.supply =
        (allot_event_supply_t){S("PO-1"), S("A"), S("W1"), 4, 0, 0, 0, 9, FX_T0, 0, true};
    events[2].u.supply = (allot_event_supply_t){.id = S("PO-1"), .at_ms = FX_T0};
    events[3].u.supply =
        (allot_event_supply_t){S("PO-1"), S("A"), S("W1"), 10, 4, 0, FX_T0, 0, FX_T0, 2, false};
    for (int i = 0; i < 4; i++) {
        allot_bytes_t a = {0}, b = {0};
        allot_event_scratch_t scratch = {0};
        allot_event_t decoded;
        cr_assert_eq(allot_event_encode(&events[i], &a), 0);
        cr_assert_eq(allot_event_decode(events[i].type, a.data, a.len, &scratch, &decoded), 0, "%s",
                     allot_event_type_name(events[i].type));
        cr_assert_eq(allot_event_encode(&decoded, &b), 0);
        cr_assert_eq(a.len, b.len);
        cr_assert_eq(memcmp(a.data, b.data, a.len), 0);
        allot_bytes_free(&a);
        allot_bytes_free(&b);
    }
    allot_event_t bad[4] = {events[0], events[1], events[3], events[3]};
    bad[0].u.supply.qty = 0;           /* a supply of nothing */
    bad[1].u.supply.on_hand_after = 3; /* less on hand than it received */
    bad[2].u.supply.received = 11;     /* more than the supply */
    bad[3].u.supply.state = ALLOT_SUPPLY_STATE_COUNT;
    for (int i = 0; i < 4; i++) {
        allot_bytes_t a = {0};
        allot_event_scratch_t scratch = {0};
        allot_event_t decoded;
        cr_assert_eq(allot_event_encode(&bad[i], &a), 0);
        cr_assert_eq(allot_event_decode(bad[i].type, a.data, a.len, &scratch, &decoded),
                     ALLOT_ECORRUPT, "bad record %d", i);
        allot_bytes_free(&a);
    }
}

/* ---- replay and checkpoints --------------------------------------------------------------- */

static void assert_checkpoint_round_trip(void)
{
    allot_state_t *loaded = fx_checkpoint_loaded(st);
    char *a = fx_dump(loaded);
    cr_assert_not_null(strstr(a, "supply PO-1 sku=A location=W1 qty=10 received=4"), "%s", a);
    free(a);
    /* the loaded state goes on like the live one */
    allot_supply_view_t v;
    cr_assert_eq(allot_supply_receive(loaded, S("PO-1"), false, 0, FX_T0, &v, &fx_err), 0, "%s",
                 fx_err.message);
    cr_assert_eq(v.state, ALLOT_SUPPLY_RECEIVED);
    allot_supply_incoming_t in[4];
    cr_assert_eq(allot_supply_incoming(loaded, allot_sku_index_find(loaded, S("A")), in, 4), 1);
    allot_state_destroy(loaded);
}

Test(supply, replay_and_a_checkpoint_give_the_live_state, .init = two_warehouses, .fini = teardown)
{
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    put("PO-2", "A", "W2", 5, FX_T0 + 2 * DAY_MS);
    put("PO-3", "A", "W2", 5, FX_T0 + 3 * DAY_MS);
    put("PO-4", "B", "W2", 8, FX_T0 + DAY_MS);
    put("PO-2", "A", "W1", 6, FX_T0 + 4 * DAY_MS);
    cr_assert_eq(receive("PO-1", true, 4, NULL), 0);
    cr_assert_eq(receive("PO-4", false, 0, NULL), 0);
    cr_assert_eq(cancel("PO-3", NULL), 0);
    assert_invariants();
    fx_assert_replay_equal(st);
    assert_checkpoint_round_trip();
}

Test(supply, a_record_that_does_not_fit_the_state_is_refused_on_replay, .init = two_warehouses,
     .fini = teardown)
{
    put("PO-1", "A", "W1", 10, FX_T0 + DAY_MS);
    cr_assert_eq(receive("PO-1", true, 10, NULL), 0);
    /* the receive record applied to a state where the supply is already received */
    fx_event_t *e = &fx_log.events[fx_log.count - 1];
    cr_assert_eq(e->type, ALLOT_EVENT_SUPPLY_RECEIVE);
    cr_assert_eq(allot_event_apply_encoded(st, e->type, e->payload, e->len), ALLOT_ECORRUPT);
    cr_assert_eq(fx_position(st, "A", "W1")->on_hand, 15);
    assert_invariants();
}

/* ---- backorder holds ------------------------------------------------------------------------ */

static allot_line_input_t bo_lines[4];
static bool bo_flags[4];

/* A hold of qty units of A (backorder as given), partial as given. */
static int hold_a(const char *id, int64_t qty, bool backorder, bool partial,
                  const allot_reservation_t **out)
{
    bo_lines[0] = (allot_line_input_t){S("A"), qty};
    bo_flags[0] = backorder;
    allot_reserve_request_t req = fx_req(id, bo_lines, 1);
    req.backorder = bo_flags;
    req.partial = partial;
    return fx_reserve(st, &req, FX_T0, out);
}

/* Units line 0 of r holds on the supply `id`. */
static int64_t held_on(const allot_reservation_t *r, const char *id)
{
    int64_t qty = 0;
    const allot_reservation_line_t *line = &allot_reservation_lines(r)[0];
    for (uint32_t k = 0; k < line->allocation_count; k++) {
        const allot_reservation_allocation_t *a =
            &allot_reservation_allocations(r)[line->allocation_first + k];
        if (a->location == ALLOT_LOCATION_SUPPLY &&
            allot_str_equal(allot_reservation_allocation_supply(r, a), S(id)))
            qty += a->qty;
    }
    return qty;
}

/* W1 has 5 of A; PO-LATE (10, in 3 days) and PO-EARLY (4, tomorrow) are open; PO-GONE was
 * cancelled and PO-B is another SKU's. */
static void backorder_supplies(void)
{
    two_warehouses();
    put("PO-LATE", "A", "W2", 10, FX_T0 + 3 * DAY_MS);
    put("PO-EARLY", "A", "W1", 4, FX_T0 + DAY_MS);
    put("PO-GONE", "A", "W1", 50, FX_T0);
    cr_assert_eq(cancel("PO-GONE", NULL), 0);
    put("PO-B", "B", "W1", 50, FX_T0);
}

Test(supply, backorder_holds_what_stock_cannot_from_the_earliest_open_supply_first,
     .init = backorder_supplies, .fini = teardown)
{
    const allot_reservation_t *r;
    cr_assert_eq(hold_a("R1", 12, true, false, &r), 0, "%s", fx_err.message);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 12);
    cr_assert_eq(fx_held_at(st, r, 0, "W1"), 5, "stock first");
    cr_assert_eq(held_on(r, "PO-EARLY"), 4, "then the earliest supply, in full");
    cr_assert_eq(held_on(r, "PO-LATE"), 3, "then the next");
    cr_assert_eq(held_on(r, "PO-GONE"), 0, "never a cancelled supply");
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 5, "supply holds reserve no stock");
    cr_assert_eq(get("PO-EARLY").held, 4);
    cr_assert_eq(get("PO-LATE").held, 3);
    cr_assert_eq(get("PO-B").held, 0);
    allot_supply_incoming_t in[4];
    cr_assert_eq(allot_supply_incoming(st, allot_sku_index_find(st, S("A")), in, 4), 1);
    cr_assert_eq(in[0].qty, 7, "a page promises only what is not held");
    assert_invariants();
}

Test(supply, backorder_holds_never_exceed_open_supply, .init = backorder_supplies, .fini = teardown)
{
    size_t written = fx_log.count;
    cr_assert_eq(hold_a("R1", 20, true, false, NULL), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfall_count, 1);
    cr_assert_eq(fx_err.shortfalls[0].available, 19, "5 on hand + 4 + 10 open");
    cr_assert_eq(fx_log.count, written, "nothing written");
    cr_assert_eq(get("PO-LATE").held, 0);
    const allot_reservation_t *r;
    cr_assert_eq(hold_a("R1", 8, true, false, &r), 0, "%s", fx_err.message);
    /* the next hold gets only what is left: 0 on hand, 1 + 10 of supply */
    cr_assert_eq(hold_a("R2", 12, true, false, NULL), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfalls[0].available, 11);
    cr_assert_eq(hold_a("R2", 12, true, true, &r), 0, "%s", fx_err.message);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 11);
    cr_assert_eq(held_on(r, "PO-EARLY"), 1);
    cr_assert_eq(held_on(r, "PO-LATE"), 10);
    cr_assert_eq(get("PO-LATE").held, 10);
    cr_assert_eq(get("PO-EARLY").held, 4);
    cr_assert_eq(hold_a("R3", 1, true, false, NULL), ALLOT_EINSUFFICIENT_STOCK);
    assert_invariants();
}

Test(supply, a_line_without_backorder_never_holds_supply, .init = backorder_supplies,
     .fini = teardown)
{
    cr_assert_eq(hold_a("R1", 6, false, false, NULL), ALLOT_EINSUFFICIENT_STOCK);
    cr_assert_eq(fx_err.shortfalls[0].available, 5);
    const allot_reservation_t *r;
    cr_assert_eq(hold_a("R1", 6, false, true, &r), 0);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 5);
    cr_assert_eq(get("PO-EARLY").held + get("PO-LATE").held, 0);
    assert_invariants();
}

Test(supply, release_and_expiry_give_backorder_units_back, .init = backorder_supplies,
     .fini = teardown)
{
    const allot_reservation_t *r;
    cr_assert_eq(hold_a("R1", 9, true, false, &r), 0, "%s", fx_err.message);
    cr_assert_eq(hold_a("R2", 8, true, false, &r), 0, "%s", fx_err.message);
    cr_assert_eq(get("PO-LATE").held, 8);
    cr_assert_eq(allot_reservation_release(st, S("R1"), FX_T0 + 10, &r, &fx_err), 0);
    cr_assert_eq(get("PO-EARLY").held, 0);
    cr_assert_eq(get("PO-LATE").held, 8);
    assert_invariants();
    int64_t expiry = FX_T0 + ALLOT_RESERVATION_TTL_S_DEFAULT * 1000LL;
    cr_assert_eq(allot_reservations_expire(st, expiry, 10), 1);
    cr_assert_eq(get("PO-LATE").held, 0);
    cr_assert_eq(fx_position(st, "A", "W1")->reserved, 0);
    assert_invariants();
    fx_assert_replay_equal(st);
}

Test(supply, a_retry_returns_the_hold_and_a_replace_counts_its_own_backorders_as_free,
     .init = backorder_supplies, .fini = teardown)
{
    const allot_reservation_t *r;
    cr_assert_eq(hold_a("R1", 19, true, false, &r), 0, "%s", fx_err.message);
    size_t written = fx_log.count;
    cr_assert_eq(hold_a("R1", 19, true, false, &r), 0, "the same request is a retry");
    cr_assert_eq(fx_log.count, written, "a retry writes nothing");
    cr_assert_eq(hold_a("R1", 19, false, false, NULL), ALLOT_ECONFLICT,
                 "backorder is part of the request");
    /* replace with every open unit again: only possible when its own holds count as free */
    bo_lines[0] = (allot_line_input_t){S("A"), 18};
    bo_flags[0] = true;
    allot_reserve_request_t req = fx_req("R1", bo_lines, 1);
    req.backorder = bo_flags;
    req.replace = true;
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 5, &r), 0, "%s", fx_err.message);
    cr_assert_eq(allot_reservation_lines(r)[0].qty_held, 18);
    cr_assert_eq(get("PO-EARLY").held, 4);
    cr_assert_eq(get("PO-LATE").held, 9);
    assert_invariants();
    fx_assert_replay_equal(st);
}

Test(supply, qty_cannot_be_lowered_below_held_units_and_a_receipt_serves_them_first,
     .init = backorder_supplies, .fini = teardown)
{
    cr_assert_eq(hold_a("R1", 12, true, false, NULL), 0, "%s", fx_err.message);
    size_t written = fx_log.count;
    cr_assert_eq(put_at("PO-LATE", "A", "W2", 2, FX_T0 + 3 * DAY_MS, NULL), ALLOT_EINVALID_ARGUMENT,
                 "qty below received + held");
    cr_assert_eq(fx_log.count, written);
    cr_assert_eq(receive("PO-LATE", true, 7, NULL), 0, "%s", fx_err.message);
    cr_assert_eq(get("PO-LATE").held, 0, "the hold's 3 units were served first");
    cr_assert_eq(fx_position(st, "A", "W2")->on_hand, 7);
    cr_assert_eq(fx_position(st, "A", "W2")->reserved, 3);
    assert_invariants();
}

Test(supply, backorder_holds_survive_replay_and_a_checkpoint, .init = backorder_supplies,
     .fini = teardown)
{
    put("PO-1", "A", "W1", 10, FX_T0 + 5 * DAY_MS);
    cr_assert_eq(receive("PO-1", true, 4, NULL), 0);
    const allot_reservation_t *r;
    cr_assert_eq(hold_a("R1", 12, true, false, &r), 0, "%s", fx_err.message);
    cr_assert_eq(hold_a("R2", 10, true, true, &r), 0, "%s", fx_err.message);
    cr_assert_eq(allot_reservation_release(st, S("R1"), FX_T0 + 10, &r, &fx_err), 0);
    cr_assert_eq(hold_a("R3", 2, true, false, &r), 0, "%s", fx_err.message);
    assert_invariants();
    char *text = fx_dump(st);
    cr_assert_not_null(strstr(text, "backorder PO-"), "%s", text);
    free(text);
    fx_assert_replay_equal(st);
    allot_state_t *loaded = fx_checkpoint_loaded(st);
    /* the loaded state goes on like the live one: R2's units go back to their supplies */
    cr_assert_eq(allot_reservation_release(loaded, S("R2"), FX_T0 + 20, &r, &fx_err), 0);
    cr_assert_eq(allot_reservation_release(st, S("R2"), FX_T0 + 20, &r, &fx_err), 0);
    char *a = fx_dump(st);
    char *b = fx_dump(loaded);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    char msg[256];
    cr_assert_eq(allot_state_check_invariants(loaded, msg, sizeof(msg)), 0, "%s", msg);
    allot_state_destroy(loaded);
}

Test(supply, a_backorder_record_past_the_supply_room_is_refused_on_replay,
     .init = backorder_supplies, .fini = teardown)
{
    cr_assert_eq(hold_a("R1", 19, true, false, NULL), 0, "%s", fx_err.message);
    fx_event_t *e = &fx_log.events[fx_log.count - 1];
    cr_assert_eq(e->type, ALLOT_EVENT_RESERVATION_CREATE);
    allot_state_t *replica = allot_state_create(&fx_config);
    for (size_t i = 0; i + 1 < fx_log.count; i++)
        cr_assert_eq(allot_event_apply_encoded(replica, fx_log.events[i].type,
                                               fx_log.events[i].payload, fx_log.events[i].len),
                     0);
    allot_supply_view_t v;
    allot_supply_put_input_t in = {S("PO-LATE"), S("A"), S("W2"), 9, FX_T0 + 3 * DAY_MS};
    cr_assert_eq(allot_supply_put(replica, &in, FX_T0, &v, &fx_err), 0, "%s", fx_err.message);
    cr_assert_eq(allot_event_apply_encoded(replica, e->type, e->payload, e->len), ALLOT_ECORRUPT,
                 "10 held on a supply of 9");
    allot_state_destroy(replica);
}

Test(supply, a_replace_that_grows_the_reservation_slab_counts_its_old_backorders,
     .init = two_warehouses, .fini = teardown)
{
    put("PO-C", "C", "W1", 1000, FX_T0 + DAY_MS);
    char id[16];
    bo_flags[0] = true;
    for (int i = 0; i < 64; i++) { /* the slab's first 64 slots, all in use */
        snprintf(id, sizeof id, "R%d", i);
        bo_lines[0] = (allot_line_input_t){S("C"), 1};
        allot_reserve_request_t req = fx_req(id, bo_lines, 1);
        req.backorder = bo_flags;
        cr_assert_eq(fx_reserve(st, &req, FX_T0, NULL), 0, "%s", fx_err.message);
    }
    /* a replace needs room for one more record: the slab moves while the old hold is read */
    bo_lines[0] = (allot_line_input_t){S("C"), 937};
    allot_reserve_request_t req = fx_req("R63", bo_lines, 1);
    req.backorder = bo_flags;
    req.replace = true;
    const allot_reservation_t *r;
    cr_assert_eq(fx_reserve(st, &req, FX_T0 + 1, &r), 0, "%s", fx_err.message);
    cr_assert_eq(get("PO-C").held, 1000);
    assert_invariants();
    fx_assert_replay_equal(st);
}
