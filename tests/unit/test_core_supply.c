/* test_core_supply.c - future supply: put (upsert rules, bounds), receive as a stock movement
 * (partial, the rest by default), cancel, the incoming supply a page can promise, the change
 * stream's supply.changed, and replay and checkpoints equal to the live state. */
#include <criterion/criterion.h>

#include "core/base/buffer.h"
#include "core/errors.h"
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
        (allot_event_supply_t){S("PO-1"), S("A"), S("W1"), 10, 0, FX_T0, 0, FX_T0, 0};
    events[1].u.supply = (allot_event_supply_t){S("PO-1"), S("A"), S("W1"), 4, 0, 0, 9, FX_T0, 0};
    events[2].u.supply = (allot_event_supply_t){.id = S("PO-1"), .at_ms = FX_T0};
    events[3].u.supply =
        (allot_event_supply_t){S("PO-1"), S("A"), S("W1"), 10, 4, FX_T0, 0, FX_T0, 2};
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

/* ---- replay and checkpoints ----------------------------------------------------------------- */

typedef struct record {
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
    size_t key_len;
    uint8_t type;
    uint8_t *payload;
    size_t len;
} record_t;

static record_t records[1024];
static size_t record_count;

static void record_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                      const uint8_t *payload, size_t len, bool deleted)
{
    (void)ctx;
    cr_assert(!deleted);
    cr_assert_lt(record_count, sizeof(records) / sizeof(records[0]));
    record_t *r = &records[record_count++];
    memcpy(r->key, key, key_len);
    r->key_len = key_len;
    r->type = type;
    r->payload = malloc(len);
    memcpy(r->payload, payload, len);
    r->len = len;
}

static int record_compare(const void *a, const void *b)
{
    const record_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static void assert_checkpoint_round_trip(void)
{
    record_count = 0;
    cr_assert_eq(allot_state_snapshot_each(st, record_cb, NULL), 0);
    qsort(records, record_count, sizeof(records[0]), record_compare);
    allot_state_t *loaded = allot_state_create(NULL);
    for (size_t i = 0; i < record_count; i++) {
        int rc =
            allot_event_apply_encoded(loaded, records[i].type, records[i].payload, records[i].len);
        cr_assert_eq(rc, 0, "record %zu (type %u) refused: %d", i, records[i].type, rc);
        free(records[i].payload);
    }
    char msg[256];
    cr_assert_eq(allot_state_check_invariants(loaded, msg, sizeof(msg)), 0, "%s", msg);
    char *a = fx_dump(st);
    char *b = fx_dump(loaded);
    cr_assert_str_eq(a, b, "checkpoint and live state differ");
    cr_assert_not_null(strstr(a, "supply PO-1 sku=A location=W1 qty=10 received=4"), "%s", a);
    free(a);
    free(b);
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
