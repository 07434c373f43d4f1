/* test_persist_event_store.c - events.lmdb: events by seq across reopen, scans that stop where
 * asked, retention by age and by size (and the trimmed seq readers are held to), the ledger by
 * SKU and by location newest first with paging and time windows, and ledger retention. */
#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/limits.h"
#include "persist/event_store.h"
#include "persist/writeback.h"

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
    put_events(11, 5, 5000, 2); /* a batch's events are one run: retention takes it whole */
    put_events(16, 5, 5000, 3);
    uint64_t removed;
    cr_assert_eq(event_store_trim(store, 6000, 3000, UINT64_MAX, INT64_MAX, &removed), 0);
    cr_assert_eq(removed, 10, "events older than now - retention go, the rest stay");
    cr_assert_eq(event_store_trimmed_seq(store), 10);
    cr_assert_eq(event_store_first_seq(store), 11);
    uint64_t bytes = event_store_bytes(store);
    cr_assert_eq(event_store_trim(store, 6000, 3000, bytes - 1, INT64_MAX, &removed), 0);
    cr_assert_eq(removed, 5, "over the byte bound the oldest go until it fits");
    cr_assert_eq(event_store_first_seq(store), 16);
    store_reopen();
    cr_assert_eq(event_store_trimmed_seq(store), 15, "the trimmed seq survives a reopen");
    cr_assert_eq(event_store_count(store), 5);
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

/* The number of entries of events.lmdb's "events" database and the file's size (the store
 * closed). */
static void events_db_stat(size_t *entries, long *file_bytes)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/events.lmdb", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat db;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 5), 0);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "events", 0, &dbi), 0);
    cr_assert_eq(mdb_stat(txn, dbi, &db), 0);
    *entries = db.ms_entries;
    mdb_txn_abort(txn);
    mdb_env_close(env);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    *file_bytes = (long)st.st_size;
}

/* An event of len bytes whose bytes follow from its seq. */
static size_t event_bytes(uint64_t seq, size_t len, uint8_t *out)
{
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(seq * 31 + i);
    return len;
}

typedef struct sized {
    uint64_t next_seq, step;
    int64_t at_ms_base;
    size_t len;
} sized_t;

static int sized_each(void *ctx, uint64_t seq, int64_t at_ms, const uint8_t *value, size_t len)
{
    sized_t *s = ctx;
    uint8_t expected[512];
    cr_assert_eq(seq, s->next_seq, "seq %llu where %llu was due", (unsigned long long)seq,
                 (unsigned long long)s->next_seq);
    cr_assert_eq(at_ms, s->at_ms_base - (int64_t)(seq % 7), "each event keeps its own time");
    cr_assert_eq(len, s->len);
    cr_assert_eq(memcmp(value, expected, event_bytes(seq, len, expected)), 0);
    s->next_seq += s->step;
    return 0;
}

Test(event_store, a_batch_of_events_takes_one_entry_per_page_not_one_per_event)
{
    uint8_t value[512];
    cr_assert_eq(event_store_begin(store), 0);
    for (uint64_t seq = 4096; seq < 4096 + 2000 * 4096; seq += 4096) /* (lsn << 12) | 0 */
        cr_assert_eq(event_store_put(store, seq, 1700000000000 - (int64_t)(seq % 7), value,
                                     event_bytes(seq, 120, value)),
                     0);
    cr_assert_eq(event_store_commit(store, 2000), 0);
    uint64_t bytes = event_store_bytes(store);
    cr_assert_lt(bytes, 2000 * (120 + 8), "no key and time of its own per event");
    store_reopen();
    cr_assert_eq(event_store_count(store), 2000);
    cr_assert_eq(event_store_bytes(store), bytes);
    cr_assert_eq(event_store_last_seq(store), 2000 * 4096);
    sized_t s = {4096 + 1000 * 4096, 4096, 1700000000000, 120};
    uint64_t last;
    cr_assert_eq(event_store_scan(store, s.next_seq - 1, 5000, sized_each, &s, &last), 0);
    cr_assert_eq(s.next_seq, 4096 + 2000 * 4096, "a scan from inside a run starts after it");
    event_store_close(store);
    store = NULL;
    size_t entries;
    long file_bytes;
    events_db_stat(&entries, &file_bytes);
    cr_assert_lt(entries, 2000 * (120 + 8) / 3500 + 2, "%zu entries for 2000 events", entries);
    cr_assert_lt(file_bytes, 2000 * 145, "%ld bytes of file for 2000 events of 120", file_bytes);
}

/* Write events as the store wrote them before runs, one value per event (i64 at_ms LE, its
 * bytes), with the meta values that count them; the store closed. */
static void put_single_values(uint64_t first_seq, uint32_t count, uint64_t step, int64_t at_ms)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/events.lmdb", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi events, meta;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 5), 0);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "events", MDB_CREATE, &events), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t seq = first_seq + i * step;
        uint8_t key[8], value[8 + 512];
        for (int b = 0; b < 8; b++) {
            key[b] = (uint8_t)(seq >> (56 - 8 * b));
            value[b] = (uint8_t)((uint64_t)(at_ms - (int64_t)(seq % 7)) >> (8 * b));
        }
        size_t len = 8 + event_bytes(seq, 120, value + 8);
        MDB_val k = {8, key}, v = {len, value};
        cr_assert_eq(mdb_put(txn, events, &k, &v, MDB_APPEND), 0);
        bytes += 8 + len;
    }
    uint64_t numbers[3] = {count, bytes, 1}; /* count, bytes, last_lsn (little-endian host) */
    const char *names[3] = {"count", "bytes", "last_lsn"};
    for (int i = 0; i < 3; i++) {
        MDB_val k = {strlen(names[i]), (void *)names[i]}, v = {8, &numbers[i]};
        cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

Test(event_store, events_stored_one_per_value_read_and_trim_beside_runs)
{
    event_store_close(store);
    store = NULL;
    put_single_values(4096, 300, 4096, 1000);
    store_reopen();
    cr_assert_eq(event_store_count(store), 300);
    cr_assert_eq(event_store_last_seq(store), 300 * 4096, "the last single value's key");
    uint8_t value[512];
    cr_assert_eq(event_store_begin(store), 0);
    for (uint64_t seq = 301 * 4096; seq <= 600 * 4096; seq += 4096)
        cr_assert_eq(event_store_put(store, seq, 5000 - (int64_t)(seq % 7), value,
                                     event_bytes(seq, 120, value)),
                     0);
    cr_assert_eq(event_store_commit(store, 2), 0);
    store_reopen();
    cr_assert_eq(event_store_count(store), 600);
    cr_assert_eq(event_store_last_seq(store), 600 * 4096, "the last run's last seq");
    sized_t old = {4096, 4096, 1000, 120};
    uint64_t last;
    cr_assert_eq(event_store_scan(store, 0, 300, sized_each, &old, &last), 0);
    cr_assert_eq(last, 300 * 4096);
    sized_t runs = {301 * 4096, 4096, 5000, 120};
    cr_assert_eq(event_store_scan(store, last, 1000, sized_each, &runs, &last), 0);
    cr_assert_eq(runs.next_seq, 601 * 4096, "the runs follow the single values");
    uint64_t removed;
    cr_assert_eq(event_store_trim(store, 4000, 2000, UINT64_MAX, INT64_MAX, &removed), 0);
    cr_assert_eq(removed, 300, "the old values go by their own time, the runs stay");
    cr_assert_eq(event_store_trimmed_seq(store), 300 * 4096);
    cr_assert_eq(event_store_first_seq(store), 301 * 4096);
    cr_assert_eq(event_store_trim(store, 9000, 2000, UINT64_MAX, INT64_MAX, &removed), 0);
    cr_assert_eq(removed, 300);
    cr_assert_eq(event_store_count(store), 0);
    cr_assert_eq(event_store_bytes(store), 0, "every entry's bytes went with it");
    cr_assert_eq(event_store_trimmed_seq(store), 600 * 4096);
}

/* Change byte at of the first run's value (the store closed). */
static void first_run_damage(size_t at, uint8_t byte)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/events.lmdb", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi events;
    MDB_cursor *cursor;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 5), 0);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "events", 0, &events), 0);
    cr_assert_eq(mdb_cursor_open(txn, events, &cursor), 0);
    MDB_val key, data;
    cr_assert_eq(mdb_cursor_get(cursor, &key, &data, MDB_FIRST), 0);
    uint8_t copy[8192], key_bytes[8];
    cr_assert_leq(data.mv_size, sizeof(copy));
    cr_assert_gt(data.mv_size, at);
    memcpy(copy, data.mv_data, data.mv_size);
    memcpy(key_bytes, key.mv_data, 8);
    copy[at] = byte;
    MDB_val k = {8, key_bytes}, v = {data.mv_size, copy};
    cr_assert_eq(mdb_cursor_put(cursor, &k, &v, MDB_CURRENT), 0);
    mdb_cursor_close(cursor);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static int any_each(void *ctx, uint64_t seq, int64_t at_ms, const uint8_t *value, size_t len)
{
    (void)seq, (void)at_ms, (void)value, (void)len;
    (*(uint32_t *)ctx)++;
    return 0;
}

Test(event_store, a_damaged_run_is_reported_and_nothing_past_its_end_is_read)
{
    put_events(1, 20, 1000, 1);
    event_store_close(store);
    store = NULL;
    first_run_damage(9, 21); /* the count: one more event than the run holds */
    store_reopen();
    uint32_t seen = 0;
    uint64_t last;
    cr_assert_eq(event_store_scan(store, 0, 100, any_each, &seen, &last), ALLOT_ECORRUPT);
    cr_assert_eq(seen, 20, "the events before the damage are given, then the error");
    event_store_close(store);
    store = NULL;
    first_run_damage(9, 20);
    /* the first event's length (after its seq step, 1 byte, and its time, 2): 13,000 or so */
    first_run_damage(19 + 1 + 2, 0xff);
    store_reopen();
    seen = 0;
    cr_assert_eq(event_store_scan(store, 0, 100, any_each, &seen, &last), ALLOT_ECORRUPT);
    cr_assert_eq(seen, 0);
    uint64_t removed;
    cr_assert_eq(event_store_trim(store, 5000, 10, UINT64_MAX, INT64_MAX, &removed), 0,
                 "a run goes whole by its header");
    cr_assert_eq(removed, 20);
}

/* The loop commits events while event_store_flush writes the file out: what it dirtied behind
 * the walk would go out all at once with the fdatasync, so the flush walks the file
 * EVENT_STORE_FLUSH_WALKS times (each taking what the one before left) before it syncs. */
Test(event_store, a_flush_walks_the_file_again_for_what_was_written_behind_the_walk)
{
    put_events(1, 5000, 1000, 1);
    uint64_t walks = persist_writeback_walks();
    cr_assert_eq(event_store_flush(store), 0);
    cr_assert_eq(persist_writeback_walks() - walks, EVENT_STORE_FLUSH_WALKS);
    cr_assert_geq(EVENT_STORE_FLUSH_WALKS, 2);
}
