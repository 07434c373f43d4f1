/* test_persist_event_store.c - events.lmdb: events by seq across reopen, scans that stop where
 * asked, retention by age and by size (and the trimmed seq readers are held to), the ledger by
 * SKU and by location newest first with paging and time windows, and ledger retention. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "persist/event_store.h"

static char dir[64];
static event_store_t *store;
static char message[512];

static void store_reopen(void)
{
    event_store_close(store);
    store = NULL;
    cr_assert_eq(event_store_open(dir, &store, message, sizeof(message)), 0, "%s", message);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/allot-events-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    store = NULL;
    store_reopen();
}

static void teardown(void)
{
    event_store_close(store);
    char command[128];
    snprintf(command, sizeof(command), "rm -rf %s", dir);
    cr_assert_eq(system(command), 0);
}

TestSuite(event_store, .init = setup, .fini = teardown);

static void put_events(uint64_t first_seq, uint32_t count, int64_t at_ms, uint64_t lsn)
{
    cr_assert_eq(event_store_begin(store), 0);
    for (uint32_t i = 0; i < count; i++) {
        char value[32];
        int n = snprintf(value, sizeof(value), "event-%llu", (unsigned long long)(first_seq + i));
        cr_assert_eq(event_store_put(store, first_seq + i, at_ms, value, (size_t)n), 0);
    }
    cr_assert_eq(event_store_commit(store, lsn), 0);
}

typedef struct seen {
    uint64_t seqs[64];
    uint32_t count;
    uint32_t stop_after;
} seen_t;

static int seen_each(void *ctx, uint64_t seq, int64_t at_ms, const uint8_t *value, size_t len)
{
    (void)at_ms;
    seen_t *s = ctx;
    char expected[32];
    int n = snprintf(expected, sizeof(expected), "event-%llu", (unsigned long long)seq);
    cr_assert_eq(len, (size_t)n);
    cr_assert_eq(memcmp(value, expected, len), 0);
    s->seqs[s->count++] = seq;
    return s->stop_after != 0 && s->count == s->stop_after;
}

Test(event_store, events_read_back_in_seq_order_after_reopen_from_any_cursor)
{
    put_events(100, 5, 1000, 7);
    put_events(200, 3, 2000, 9);
    store_reopen();
    cr_assert_eq(event_store_last_lsn(store), 9);
    cr_assert_eq(event_store_first_seq(store), 100);
    cr_assert_eq(event_store_last_seq(store), 202);
    cr_assert_eq(event_store_count(store), 8);
    seen_t s = {.count = 0};
    uint64_t last;
    cr_assert_eq(event_store_scan(store, 103, 100, seen_each, &s, &last), 0);
    cr_assert_eq(s.count, 4);
    cr_assert_eq(s.seqs[0], 104);
    cr_assert_eq(s.seqs[1], 200);
    cr_assert_eq(last, 202);
    seen_t stop = {.stop_after = 2};
    cr_assert_eq(event_store_scan(store, 0, 100, seen_each, &stop, &last), 0);
    cr_assert_eq(stop.count, 2);
    cr_assert_eq(last, 101, "the scan stops where the callback said");
    seen_t bounded = {.count = 0};
    cr_assert_eq(event_store_scan(store, 0, 3, seen_each, &bounded, &last), 0);
    cr_assert_eq(bounded.count, 3, "scan_max bounds what one scan examines");
}

Test(event_store, retention_trims_only_what_is_older_than_the_age_or_over_the_size)
{
    put_events(1, 10, 1000, 1);
    put_events(11, 10, 5000, 2);
    uint64_t removed;
    cr_assert_eq(event_store_trim(store, 6000, 3000, UINT64_MAX, INT64_MAX, &removed), 0);
    cr_assert_eq(removed, 10, "events older than now - retention go, the rest stay");
    cr_assert_eq(event_store_trimmed_seq(store), 10);
    cr_assert_eq(event_store_first_seq(store), 11);
    uint64_t bytes = event_store_bytes(store);
    cr_assert_eq(event_store_trim(store, 6000, 3000, bytes - 1, INT64_MAX, &removed), 0);
    cr_assert_eq(removed, 1, "over the byte bound the oldest go until it fits");
    cr_assert_eq(event_store_first_seq(store), 12);
    store_reopen();
    cr_assert_eq(event_store_trimmed_seq(store), 11, "the trimmed seq survives a reopen");
    cr_assert_eq(event_store_count(store), 9);
}

static void put_move(uint64_t seq, int64_t at_ms, const char *sku, const char *location,
                     int64_t delta, int64_t on_hand)
{
    event_ledger_entry_t e = {seq,
                              at_ms,
                              allot_str_from_cstr(sku),
                              allot_str_from_cstr(location),
                              delta,
                              on_hand,
                              allot_str_from_cstr("stock.adjust"),
                              allot_str_from_cstr("ref")};
    cr_assert_eq(event_store_ledger_put(store, &e), 0);
}

typedef struct moves {
    uint64_t seqs[64];
    int64_t deltas[64];
    uint32_t count;
} moves_t;

static void moves_each(void *ctx, const event_ledger_entry_t *e)
{
    moves_t *m = ctx;
    cr_assert_eq(e->reason.len, 12);
    m->seqs[m->count] = e->seq;
    m->deltas[m->count++] = e->delta;
}

static moves_t ledger(const char *sku, const char *location, uint64_t before, int64_t from_ms,
                      int64_t to_ms, uint32_t limit, bool *more)
{
    moves_t m = {.count = 0};
    cr_assert_eq(event_store_ledger_read(store, allot_str_from_cstr(sku),
                                         allot_str_from_cstr(location), before, from_ms, to_ms,
                                         limit, moves_each, &m, more),
                 0);
    return m;
}

Test(event_store, ledger_reads_one_sku_newest_first_by_location_and_window_in_pages)
{
    cr_assert_eq(event_store_begin(store), 0);
    put_move(10, 1000, "A", "W1", 5, 5);
    put_move(11, 1100, "AB", "W1", 7, 7); /* a longer SKU sharing A's first byte */
    put_move(20, 2000, "A", "W2", 3, 3);
    put_move(30, 3000, "A", "W1", -2, 3);
    put_move(40, 4000, "B", "W1", 9, 9);
    cr_assert_eq(event_store_commit(store, 4), 0);
    store_reopen();
    bool more;
    moves_t all = ledger("A", "", UINT64_MAX, INT64_MIN, INT64_MAX, 100, &more);
    cr_assert_eq(all.count, 3);
    cr_assert_eq(all.seqs[0], 30);
    cr_assert_eq(all.seqs[1], 20);
    cr_assert_eq(all.seqs[2], 10);
    cr_assert_not(more);
    moves_t w1 = ledger("A", "W1", UINT64_MAX, INT64_MIN, INT64_MAX, 100, &more);
    cr_assert_eq(w1.count, 2);
    cr_assert_eq(w1.deltas[0] + w1.deltas[1], 3);
    moves_t page = ledger("A", "", UINT64_MAX, INT64_MIN, INT64_MAX, 1, &more);
    cr_assert_eq(page.count, 1);
    cr_assert(more);
    moves_t next = ledger("A", "", page.seqs[0], INT64_MIN, INT64_MAX, 5, &more);
    cr_assert_eq(next.count, 2);
    cr_assert_eq(next.seqs[0], 20);
    moves_t window = ledger("A", "", UINT64_MAX, 1500, 2500, 100, &more);
    cr_assert_eq(window.count, 1);
    cr_assert_eq(window.seqs[0], 20);
    moves_t none = ledger("C", "", UINT64_MAX, INT64_MIN, INT64_MAX, 100, &more);
    cr_assert_eq(none.count, 0);
    uint64_t removed;
    cr_assert_eq(event_store_trim(store, 3500, INT64_MAX / 2, UINT64_MAX, 1000, &removed), 0);
    cr_assert_eq(removed, 3, "movements older than the ledger's retention go");
    moves_t kept = ledger("A", "", UINT64_MAX, INT64_MIN, INT64_MAX, 100, &more);
    cr_assert_eq(kept.count, 1);
    cr_assert_eq(kept.seqs[0], 30);
    cr_assert_eq(event_store_ledger_count(store), 2);
}

static int count_each(void *ctx, uint64_t seq, int64_t at_ms, const uint8_t *value, size_t len)
{
    (void)at_ms;
    uint64_t *expected = ctx;
    char text[32];
    int n = snprintf(text, sizeof(text), "event-%llu", (unsigned long long)seq);
    cr_assert_eq(seq, *expected, "seq %llu where %llu was due", (unsigned long long)seq,
                 (unsigned long long)*expected);
    cr_assert(len == (size_t)n && memcmp(value, text, len) == 0);
    (*expected)++;
    return 0;
}

/* Batches of many appends (pages split under them), an aborted batch between two, a trim and
 * commits after it: every event back in order after reopen, and the meta values with them
 * (a commit puts only the meta values that changed). */
Test(event_store, appends_across_page_splits_and_an_aborted_batch_keep_every_event_and_meta)
{
    put_events(1, 5000, 1000, 1);
    cr_assert_eq(event_store_begin(store), 0);
    cr_assert_eq(event_store_put(store, 5001, 1000, "lost", 4), 0);
    event_store_abort(store);
    cr_assert_eq(event_store_last_seq(store), 5000, "the aborted batch is gone");
    put_events(5001, 5000, 1000, 2);
    uint64_t removed;
    cr_assert_eq(event_store_trim(store, 1000 + 10, 5, UINT64_MAX, INT64_MAX, &removed), 0);
    cr_assert_eq(removed, 10000 < EVENT_STORE_TRIM_STEP_MAX ? 10000 : EVENT_STORE_TRIM_STEP_MAX);
    uint64_t trimmed = event_store_trimmed_seq(store);
    put_events(20001, 3000, 9000, 3);
    put_events(23001, 1, 9000, 4);
    uint64_t count = event_store_count(store), bytes = event_store_bytes(store);
    store_reopen();
    cr_assert_eq(event_store_last_lsn(store), 4);
    cr_assert_eq(event_store_trimmed_seq(store), trimmed);
    cr_assert_eq(event_store_count(store), count);
    cr_assert_eq(event_store_bytes(store), bytes);
    cr_assert_eq(event_store_last_seq(store), 23001);
    uint64_t expected = trimmed + 1, last;
    if (expected > 10000)
        expected = 20001;
    cr_assert_eq(event_store_scan(store, trimmed, 100000, count_each, &expected, &last), 0);
    cr_assert_eq(expected, 23002);
    cr_assert_eq(last, 23001);
}
