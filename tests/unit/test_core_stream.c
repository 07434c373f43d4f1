/* test_core_stream.c - the change stream's domain side: the changes a log gives are the same
 * (seq, time, fields) when it is replayed as when it was written live; avail.changed coalesced by
 * record time and owed until its window ends; stock.low / stock.restored on every crossing of a
 * SKU's low_stock (by any stock change or by sku.put), alike on replay and after a checkpoint;
 * consumer cursors (never back, checkpointed, bounded).
 */
#include <criterion/criterion.h>

#include "test_core_fixture.h"

#include "core/errors.h"
#include "core/order.h"
#include "core/replay.h"
#include "core/sale.h"
#include "core/stream.h"

/* stock.low / stock.restored only, one line each; `seen`: how much a check already compared. */
typedef struct lows {
    char *text;
    size_t len;
    FILE *out;
    size_t seen;
} lows_t;

/* Every change as one line of text (and the stock.low / stock.restored also into lows). */
typedef struct changes {
    char *text;
    size_t len;
    FILE *out;
    uint32_t avail;
    int64_t last_available;
    lows_t *lows;
} changes_t;

static void lows_open(lows_t *l)
{
    memset(l, 0, sizeof(*l));
    l->out = open_memstream(&l->text, &l->len);
}

static void lows_close(lows_t *l)
{
    fclose(l->out);
    free(l->text);
}

static void low_put(lows_t *l, const allot_change_t *ch)
{
    if (ch->type != ALLOT_CHANGE_STOCK_LOW && ch->type != ALLOT_CHANGE_STOCK_RESTORED)
        return;
    fprintf(l->out, "%s %.*s available=%lld low_stock=%lld reason=%s\n",
            allot_change_type_name(ch->type), (int)ch->sku.len, ch->sku.ptr,
            (long long)ch->available, (long long)ch->low_stock, ch->reason);
}

static void on_low(void *ctx, uint64_t lsn, uint32_t index, const allot_change_t *ch)
{
    (void)lsn;
    (void)index;
    low_put(ctx, ch);
}

/* The stock.low / stock.restored given since the last check are exactly `expected`. */
static void lows_expect(lows_t *l, const char *expected)
{
    fflush(l->out);
    cr_assert_str_eq(l->text + l->seen, expected);
    l->seen = l->len;
}

static void changes_open(changes_t *c)
{
    memset(c, 0, sizeof(*c));
    c->out = open_memstream(&c->text, &c->len);
}

static void on_change(void *ctx, uint64_t lsn, uint32_t index, const allot_change_t *ch)
{
    changes_t *c = ctx;
    fprintf(c->out,
            "%llu %lld %s sku=%.*s loc=%.*s id=%.*s order=%.*s oh=%lld res=%lld "
            "alloc=%lld avail=%lld delta=%lld low=%lld reason=%s ref=%.*s from=%s to=%s\n",
            (unsigned long long)allot_change_seq(lsn, index), (long long)ch->at_ms,
            allot_change_type_name(ch->type), (int)ch->sku.len, ch->sku.ptr, (int)ch->location.len,
            ch->location.ptr, (int)ch->id.len, ch->id.ptr, (int)ch->order.len, ch->order.ptr,
            (long long)ch->on_hand, (long long)ch->reserved, (long long)ch->allocated,
            (long long)ch->available, (long long)ch->on_hand_delta, (long long)ch->low_stock,
            ch->reason ? ch->reason : "-", (int)ch->ref.len, ch->ref.ptr, ch->from ? ch->from : "-",
            ch->to ? ch->to : "-");
    if (ch->type == ALLOT_CHANGE_AVAIL_CHANGED) {
        c->avail++;
        c->last_available = ch->available;
    }
    if (c->lows != NULL)
        low_put(c->lows, ch);
}

/* The live sink: the fixture's log, and the record's LSN (its number in the log) and time (kept
 * in live_times by LSN for a replay). */
static int64_t live_now_ms;
static int64_t live_times[FX_EVENTS_MAX + 1];
static allot_state_t *live;

static int lsn_sink(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    int rc = fx_sink(ctx, type, payload, len);
    allot_state_record_set(live, fx_log.count, live_now_ms);
    live_times[fx_log.count] = live_now_ms;
    return rc;
}

static allot_state_t *live_state_observed(allot_change_cb cb, void *ctx)
{
    live = fx_state();
    allot_state_set_event_sink(live, lsn_sink, &fx_log);
    allot_state_set_change_observer(live, cb, ctx);
    return live;
}

static allot_state_t *live_state(changes_t *c)
{
    return live_state_observed(on_change, c);
}

/* Replay the log's records first..count (LSNs, at their live times) onto st. */
static void log_replay(allot_state_t *st, size_t first)
{
    allot_replay_t *replay = allot_replay_create(st);
    for (size_t lsn = first; lsn <= fx_log.count; lsn++) {
        const fx_event_t *e = &fx_log.events[lsn - 1];
        cr_assert_eq(
            allot_replay_push_at(replay, lsn, live_times[lsn], e->type, e->payload, e->len), 0);
    }
    cr_assert_eq(allot_replay_finish(replay), 0);
    allot_replay_destroy(replay);
}

static void adjust(allot_state_t *st, const char *sku, int64_t delta, int64_t now_ms)
{
    live_now_ms = now_ms;
    allot_stock_adjust_input_t in = {S(sku), S("W1"), delta, S("")};
    allot_stock_result_t out;
    cr_assert_eq(allot_stock_adjust(st, &in, now_ms, &out, &fx_err), 0, "%s", fx_err.message);
}

Test(stream, a_replayed_log_gives_the_changes_it_gave_live_with_the_same_seqs)
{
    changes_t a, b;
    changes_open(&a);
    allot_state_t *st = live_state(&a);
    live_now_ms = FX_T0;
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 13.0, .priority = 1});
    fx_stock(st, "A", "W1", 10, 0);
    allot_line_input_t lines[] = {{S("A"), 3}};
    allot_reserve_request_t r = fx_req("c1", lines, 1);
    live_now_ms = FX_T0 + 1000;
    cr_assert_eq(fx_reserve(st, &r, FX_T0 + 1000, NULL), 0);
    allot_order_create_request_t o = {.id = S("o1"), .customer = S("cu"), .reservation = S("c1")};
    const allot_order_view_t *view;
    live_now_ms = FX_T0 + 2000;
    cr_assert_eq(allot_order_create(st, &o, FX_T0 + 2000, &view, &fx_err), 0, "%s", fx_err.message);
    cr_assert_eq(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_CAPTURED, FX_T0 + 3000, &view, &fx_err),
                 0);
    cr_assert_eq(allot_order_release(st, S("o1"), FX_T0 + 4000, &view, &fx_err), 0);
    adjust(st, "A", -2, FX_T0 + 5000);
    adjust(st, "A", 1, FX_T0 + 5010); /* inside A's avail window: owed */
    live_now_ms = FX_T0 + 6000;
    cr_assert_lt(allot_stream_tick_due_ms(st), INT64_MAX);
    cr_assert_eq(allot_stream_tick(st, FX_T0 + 6000), 0);
    cr_assert_eq(allot_stream_tick_due_ms(st), INT64_MAX);
    fflush(a.out);
    cr_assert_not_null(strstr(a.text, "reservation.created"));
    cr_assert_not_null(strstr(a.text, "order.changed"));
    cr_assert_not_null(strstr(a.text, "shipment.changed"));
    cr_assert_eq(a.last_available, 10 - 3 - 2 + 1, "the owed avail.changed came with the tick");

    changes_open(&b);
    allot_state_t *replica = allot_state_create(NULL);
    allot_state_set_change_observer(replica, on_change, &b);
    allot_replay_t *replay = allot_replay_create(replica);
    int64_t times[] = {FX_T0,        FX_T0,        FX_T0 + 1000, FX_T0 + 2000, FX_T0 + 2000,
                       FX_T0 + 2000, FX_T0 + 5000, FX_T0 + 5010, FX_T0 + 6000};
    cr_assert_eq(fx_log.count, sizeof(times) / sizeof(times[0]));
    for (size_t i = 0; i < fx_log.count; i++)
        cr_assert_eq(allot_replay_push_at(replay, i + 1, times[i], fx_log.events[i].type,
                                          fx_log.events[i].payload, fx_log.events[i].len),
                     0);
    cr_assert_eq(allot_replay_finish(replay), 0);
    fflush(b.out);
    cr_assert_str_eq(b.text, a.text);
    allot_replay_destroy(replay);
    allot_state_destroy(replica);
    allot_state_destroy(st);
    fclose(a.out);
    fclose(b.out);
    free(a.text);
    free(b.text);
}

Test(stream, avail_changed_is_coalesced_by_record_time_and_owed_until_its_window_ends)
{
    changes_t c;
    changes_open(&c);
    allot_state_t *st = live_state(&c);
    live_now_ms = FX_T0;
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 13.0});
    fx_stock(st, "A", "W1", 100, 0);
    cr_assert_eq(c.avail, 1);
    for (int i = 1; i <= 50; i++)
        adjust(st, "A", -1, FX_T0 + i); /* 50 changes in 50 ms */
    cr_assert_eq(c.avail, 1, "inside the window: owed, not given");
    cr_assert_eq(allot_stream_tick_due_ms(st), FX_T0 + ALLOT_AVAIL_COALESCE_MS);
    adjust(st, "A", -1, FX_T0 + ALLOT_AVAIL_COALESCE_MS);
    cr_assert_eq(c.avail, 2, "the first record at the window's end gives it");
    cr_assert_eq(c.last_available, 49);
    adjust(st, "A", 1, FX_T0 + ALLOT_AVAIL_COALESCE_MS + 1);
    adjust(st, "A", -1, FX_T0 + ALLOT_AVAIL_COALESCE_MS + 2);
    /* back where it was: owed, and the window's end finds nothing new to say */
    live_now_ms = FX_T0 + 2 * ALLOT_AVAIL_COALESCE_MS;
    cr_assert_eq(allot_stream_tick(st, FX_T0 + 2 * ALLOT_AVAIL_COALESCE_MS), 0);
    cr_assert_eq(c.avail, 2);
    cr_assert_eq(allot_stream_tick_due_ms(st), INT64_MAX);
    allot_state_destroy(st);
    fclose(c.out);
    free(c.text);
}

static int snapshot_apply(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                          const uint8_t *payload, size_t len, bool deleted)
{
    (void)key;
    (void)key_len;
    cr_assert_not(deleted);
    return allot_event_apply_encoded(ctx, type, payload, len);
}

static void snapshot_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                        const uint8_t *payload, size_t len, bool deleted)
{
    cr_assert_eq(snapshot_apply(ctx, key, key_len, type, payload, len, deleted), 0);
}

/* ---- stock.low / stock.restored ------------------------------------------------------------ */

static void low_stock_put(allot_state_t *st, const char *sku, int64_t low_stock,
                          int64_t max_per_customer, int64_t now_ms)
{
    live_now_ms = now_ms;
    allot_sku_settings_t in = {.low_stock = low_stock, .max_per_customer = max_per_customer};
    cr_assert_eq(allot_sku_put(st, S(sku), &in, now_ms, &fx_err), 0, "%s", fx_err.message);
}

static void hold(allot_state_t *st, const char *id, const char *sku, int64_t qty, int64_t ttl_s,
                 int64_t now_ms)
{
    live_now_ms = now_ms;
    allot_line_input_t lines[] = {{S(sku), qty}};
    allot_reserve_request_t r = fx_req(id, lines, 1);
    r.ttl_s = ttl_s;
    cr_assert_eq(fx_reserve(st, &r, now_ms, NULL), 0, "%s", fx_err.message);
}

static void unhold(allot_state_t *st, const char *id, int64_t now_ms)
{
    live_now_ms = now_ms;
    const allot_reservation_t *r;
    cr_assert_eq(allot_reservation_release(st, S(id), now_ms, &r, &fx_err), 0, "%s",
                 fx_err.message);
}

static void stock_set(allot_state_t *st, const char *sku, int64_t on_hand, int64_t safety,
                      int64_t now_ms)
{
    live_now_ms = now_ms;
    fx_stock(st, sku, "W1", on_hand, safety);
}

static void order_lines(allot_state_t *st, const char *id, const char *sku, int64_t qty,
                        int64_t now_ms)
{
    live_now_ms = now_ms;
    allot_line_input_t lines[] = {{S(sku), qty}};
    allot_order_create_request_t o = {.id = S(id), .lines = lines, .line_count = 1};
    const allot_order_view_t *view;
    cr_assert_eq(allot_order_create(st, &o, now_ms, &view, &fx_err), 0, "%s", fx_err.message);
}

static void order_cancel(allot_state_t *st, const char *id, int64_t now_ms)
{
    live_now_ms = now_ms;
    const allot_order_view_t *view;
    cr_assert_eq(allot_order_cancel(st, S(id), S("changed mind"), now_ms, &view, &fx_err), 0, "%s",
                 fx_err.message);
}

/* W1 ships; S1 does not (its units never count); A has 10 at W1, 50 at S1. */
static void low_seed(allot_state_t *st)
{
    live_now_ms = FX_T0;
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 13.0, .priority = 1});
    fx_location(st, (fx_loc_t){.id = "S1", .lat = 52.1, .lon = 13.1, .no_ship = true});
    fx_stock(st, "A", "W1", 10, 0);
    fx_stock(st, "A", "S1", 50, 0);
}

Test(stream, stock_low_and_restored_cross_by_reserve_release_and_expiry)
{
    lows_t l;
    lows_open(&l);
    allot_state_t *st = live_state_observed(on_low, &l);
    low_seed(st);
    low_stock_put(st, "A", 3, 0, FX_T0);
    lows_expect(&l, "");
    hold(st, "c1", "A", 6, 3600, FX_T0 + 1);
    lows_expect(&l, "");
    hold(st, "c2", "A", 1, 3600, FX_T0 + 2);
    lows_expect(&l, "stock.low A available=3 low_stock=3 reason=reservation\n");
    hold(st, "c3", "A", 2, 3600, FX_T0 + 3);
    unhold(st, "c3", FX_T0 + 4);
    lows_expect(&l, ""); /* lower and back while low: no crossing */
    unhold(st, "c2", FX_T0 + 5);
    lows_expect(&l, "stock.restored A available=4 low_stock=3 reason=reservation.released\n");
    hold(st, "c4", "A", 1, 60, FX_T0 + 6);
    lows_expect(&l, "stock.low A available=3 low_stock=3 reason=reservation\n");
    live_now_ms = FX_T0 + 70000;
    cr_assert_eq(allot_reservations_expire(st, FX_T0 + 70000, 10), 1);
    lows_expect(&l, "stock.restored A available=4 low_stock=3 reason=reservation.expired\n");
    allot_state_destroy(st);
    lows_close(&l);
}

Test(stream, stock_low_and_restored_cross_by_stock_set_and_orders_but_not_by_shipping)
{
    lows_t l;
    lows_open(&l);
    allot_state_t *st = live_state_observed(on_low, &l);
    low_seed(st);
    low_stock_put(st, "A", 3, 0, FX_T0);
    stock_set(st, "A", 2, 0, FX_T0 + 1);
    lows_expect(&l, "stock.low A available=2 low_stock=3 reason=stock.set\n");
    stock_set(st, "A", 10, 0, FX_T0 + 2);
    lows_expect(&l, "stock.restored A available=10 low_stock=3 reason=stock.set\n");
    stock_set(st, "A", 10, 7, FX_T0 + 3); /* safety stock is not available */
    lows_expect(&l, "stock.low A available=3 low_stock=3 reason=stock.set\n");
    stock_set(st, "A", 10, 0, FX_T0 + 4);
    lows_expect(&l, "stock.restored A available=10 low_stock=3 reason=stock.set\n");
    order_lines(st, "o1", "A", 7, FX_T0 + 5);
    lows_expect(&l, "stock.low A available=3 low_stock=3 reason=order\n");
    const allot_order_view_t *view;
    cr_assert_eq(allot_order_pay(st, S("o1"), ALLOT_PAYMENT_CAPTURED, FX_T0 + 6, &view, &fx_err),
                 0);
    cr_assert_eq(allot_order_release(st, S("o1"), FX_T0 + 7, &view, &fx_err), 0);
    cr_assert_eq(allot_shipment_ship(st, S("o1"), S("S1"), S("T-1"), FX_T0 + 8, &view, &fx_err), 0,
                 "%s", fx_err.message);
    cr_assert_eq(fx_position(st, "A", "W1")->on_hand, 3);
    lows_expect(&l, ""); /* shipping drops on_hand and allocated together: available stays */
    live_now_ms = FX_T0 + 9;
    allot_stock_adjust_input_t in = {S("A"), S("W1"), 1, S("k1")};
    allot_stock_result_t out;
    cr_assert_eq(allot_stock_adjust(st, &in, FX_T0 + 9, &out, &fx_err), 0, "%s", fx_err.message);
    lows_expect(&l, "stock.restored A available=4 low_stock=3 reason=stock.adjust\n");
    order_lines(st, "o2", "A", 1, FX_T0 + 10);
    lows_expect(&l, "stock.low A available=3 low_stock=3 reason=order\n");
    order_cancel(st, "o2", FX_T0 + 11);
    lows_expect(&l, "stock.restored A available=4 low_stock=3 reason=order.cancel\n");
    allot_state_destroy(st);
    lows_close(&l);
}

Test(stream, sku_put_moving_low_stock_crosses_and_zero_low_stock_gives_none)
{
    lows_t l;
    lows_open(&l);
    allot_state_t *st = live_state_observed(on_low, &l);
    low_seed(st);
    hold(st, "c1", "A", 10, 3600, FX_T0 + 1); /* to 0 without a setting */
    unhold(st, "c1", FX_T0 + 2);
    low_stock_put(st, "A", 0, 0, FX_T0 + 3);
    hold(st, "c2", "A", 10, 3600, FX_T0 + 4); /* to 0 with low_stock 0 */
    unhold(st, "c2", FX_T0 + 5);
    lows_expect(&l, "");
    low_stock_put(st, "A", 10, 0, FX_T0 + 6);
    lows_expect(&l, "stock.low A available=10 low_stock=10 reason=sku.put\n");
    low_stock_put(st, "A", 10, 2, FX_T0 + 7); /* the same threshold */
    lows_expect(&l, "");
    low_stock_put(st, "A", 9, 2, FX_T0 + 8);
    lows_expect(&l, "stock.restored A available=10 low_stock=9 reason=sku.put\n");
    low_stock_put(st, "A", 20, 2, FX_T0 + 9);
    lows_expect(&l, "stock.low A available=10 low_stock=20 reason=sku.put\n");
    low_stock_put(st, "A", 0, 2, FX_T0 + 10); /* off while low: no longer low */
    lows_expect(&l, "stock.restored A available=10 low_stock=0 reason=sku.put\n");
    low_stock_put(st, "B", 5, 0, FX_T0 + 11); /* a SKU without stock anywhere */
    lows_expect(&l, "stock.low B available=0 low_stock=5 reason=sku.put\n");
    allot_state_destroy(st);
    lows_close(&l);
}

static void lows_script(allot_state_t *st)
{
    low_seed(st);
    low_stock_put(st, "A", 3, 0, FX_T0);
    hold(st, "c1", "A", 7, 3600, FX_T0 + 10);
    hold(st, "c2", "A", 2, 60, FX_T0 + 20);
}

Test(stream, stock_low_events_are_the_same_on_replay_and_from_a_checkpoint)
{
    changes_t a, b;
    lows_t live_lows, loaded_lows;
    changes_open(&a);
    lows_open(&live_lows);
    a.lows = &live_lows;
    allot_state_t *st = live_state(&a);
    lows_script(st);
    /* a checkpoint here: a node that starts from it has no memory of what came before */
    allot_state_t *loaded = allot_state_create(NULL);
    cr_assert_eq(allot_state_snapshot_each(st, snapshot_cb, loaded), 0);
    size_t checkpoint_lsn = fx_log.count;
    fflush(live_lows.out);
    size_t lows_before = live_lows.len;
    unhold(st, "c1", FX_T0 + 30); /* restored: known from the record, not from memory */
    live_now_ms = FX_T0 + 70000;
    cr_assert_eq(allot_reservations_expire(st, FX_T0 + 70000, 10), 1);
    hold(st, "c3", "A", 8, 3600, FX_T0 + 70010);
    low_stock_put(st, "A", 1, 0, FX_T0 + 70020);
    low_stock_put(st, "A", 2, 0, FX_T0 + 70030);
    fflush(live_lows.out);
    cr_assert_str_eq(live_lows.text,
                     "stock.low A available=3 low_stock=3 reason=reservation\n"
                     "stock.restored A available=8 low_stock=3 reason=reservation.released\n"
                     "stock.low A available=2 low_stock=3 reason=reservation\n"
                     "stock.restored A available=2 low_stock=1 reason=sku.put\n"
                     "stock.low A available=2 low_stock=2 reason=sku.put\n");

    changes_open(&b);
    allot_state_t *replica = allot_state_create(NULL);
    allot_state_set_change_observer(replica, on_change, &b);
    log_replay(replica, 1);
    fflush(a.out);
    fflush(b.out);
    cr_assert_str_eq(b.text, a.text, "a replay gives the same events, byte for byte");

    lows_open(&loaded_lows);
    allot_state_set_change_observer(loaded, on_low, &loaded_lows);
    log_replay(loaded, checkpoint_lsn + 1);
    fflush(loaded_lows.out);
    cr_assert_str_eq(loaded_lows.text, live_lows.text + lows_before);
    allot_state_destroy(loaded);
    allot_state_destroy(replica);
    allot_state_destroy(st);
    lows_close(&live_lows);
    lows_close(&loaded_lows);
    fclose(a.out);
    fclose(b.out);
    free(a.text);
    free(b.text);
}

Test(stream, consumer_cursors_never_move_back_are_checkpointed_and_bounded)
{
    allot_state_t *st = fx_state();
    uint64_t cursor, seq;
    cr_assert_not(allot_consumer_get(st, S("sms"), &seq));
    cr_assert_eq(allot_consumer_ack(st, S("sms"), 500, FX_T0, &cursor, &fx_err), 0);
    cr_assert_eq(cursor, 500);
    size_t records = fx_log.count;
    cr_assert_eq(allot_consumer_ack(st, S("sms"), 400, FX_T0, &cursor, &fx_err), 0);
    cr_assert_eq(cursor, 500, "a cursor never moves back");
    cr_assert_eq(fx_log.count, records, "and an ack that changes nothing writes nothing");
    cr_assert_eq(allot_consumer_ack(st, S("erp"), 7, FX_T0, &cursor, &fx_err), 0);
    cr_assert_eq(allot_consumer_ack(st, S(""), 7, FX_T0, &cursor, &fx_err),
                 ALLOT_EINVALID_ARGUMENT);
    fx_assert_replay_equal(st);
    allot_state_t *loaded = allot_state_create(NULL);
    cr_assert_eq(allot_state_snapshot_each(st, snapshot_cb, loaded), 0);
    cr_assert(allot_consumer_get(loaded, S("sms"), &seq));
    cr_assert_eq(seq, 500);
    cr_assert(allot_consumer_get(loaded, S("erp"), &seq));
    cr_assert_eq(seq, 7);
    allot_state_destroy(loaded);
    char name[32];
    for (uint32_t i = allot_consumer_count(st); i < ALLOT_EVENT_CONSUMERS_MAX; i++) {
        snprintf(name, sizeof(name), "c%u", i);
        cr_assert_eq(allot_consumer_ack(st, S(name), 1, FX_T0, &cursor, &fx_err), 0);
    }
    cr_assert_eq(allot_consumer_ack(st, S("one-too-many"), 1, FX_T0, &cursor, &fx_err),
                 ALLOT_ETOO_LARGE);
    cr_assert_eq(allot_consumer_ack(st, S("sms"), 501, FX_T0, &cursor, &fx_err), 0,
                 "a known consumer still acknowledges");
    allot_state_destroy(st);
}
