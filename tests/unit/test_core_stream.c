/* test_core_stream.c - the change stream's domain side: the changes a log gives are the same
 * (seq, time, fields) when it is replayed as when it was written live; avail.changed coalesced by
 * record time and owed until its window ends; consumer cursors (never back, checkpointed, bounded).
 */
#include <criterion/criterion.h>

#include "test_core_fixture.h"

#include "core/errors.h"
#include "core/order.h"
#include "core/replay.h"
#include "core/stream.h"

/* Every change as one line of text. */
typedef struct changes {
    char *text;
    size_t len;
    FILE *out;
    uint32_t avail;
    int64_t last_available;
} changes_t;

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
            "alloc=%lld avail=%lld delta=%lld reason=%s ref=%.*s from=%s to=%s\n",
            (unsigned long long)allot_change_seq(lsn, index), (long long)ch->at_ms,
            allot_change_type_name(ch->type), (int)ch->sku.len, ch->sku.ptr, (int)ch->location.len,
            ch->location.ptr, (int)ch->id.len, ch->id.ptr, (int)ch->order.len, ch->order.ptr,
            (long long)ch->on_hand, (long long)ch->reserved, (long long)ch->allocated,
            (long long)ch->available, (long long)ch->on_hand_delta, ch->reason ? ch->reason : "-",
            (int)ch->ref.len, ch->ref.ptr, ch->from ? ch->from : "-", ch->to ? ch->to : "-");
    if (ch->type == ALLOT_CHANGE_AVAIL_CHANGED) {
        c->avail++;
        c->last_available = ch->available;
    }
}

/* The live sink: the fixture's log, and the record's LSN (its number in the log) and time. */
static int64_t live_now_ms;
static allot_state_t *live;

static int lsn_sink(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    int rc = fx_sink(ctx, type, payload, len);
    allot_state_record_set(live, fx_log.count, live_now_ms);
    return rc;
}

static allot_state_t *live_state(changes_t *c)
{
    live = fx_state();
    allot_state_set_event_sink(live, lsn_sink, &fx_log);
    allot_state_set_change_observer(live, on_change, c);
    return live;
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
