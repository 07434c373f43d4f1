/* test_core_checkpoint.c - checkpoints serialized in slices while writes go on: the records are
 * exactly the state as of the moment the checkpoint began (copy-on-write by pre-image). */
#include "core/state_private.h"
#include "test_core_fixture.h"

#include "core/order.h"
#include "core/supply.h"

static uint32_t rng_state = 99991;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static const char *const loc_ids[] = {"W1", "W2", "S1", "S2", "DC"};
static const char *const sku_ids[] = {"A", "B", "C", "D", "E", "F", "G", "H"};
#define CARTS  10
#define ORDERS 12

/* ---- a key-value store standing in for LMDB, and the batch of one checkpoint ----------------- */

#define KV_MAX 1024

typedef struct kv_entry {
    uint8_t key[1 + ALLOT_ID_BYTES_MAX];
    size_t key_len;
    uint8_t type;
    bool deleted;
    uint8_t *value;
    size_t len;
} kv_entry_t;

typedef struct kv_list {
    kv_entry_t entries[KV_MAX];
    size_t count;
} kv_list_t;

static kv_list_t store; /* the committed checkpoints */
static kv_list_t batch; /* the records of the checkpoint being serialized, in order */
static size_t batch_keys_repeated;

static void kv_clear(kv_list_t *kv)
{
    for (size_t i = 0; i < kv->count; i++)
        free(kv->entries[i].value);
    kv->count = 0;
}

static size_t kv_find(const kv_list_t *kv, const uint8_t *key, size_t key_len)
{
    size_t i = 0;
    while (i < kv->count &&
           !(kv->entries[i].key_len == key_len && memcmp(kv->entries[i].key, key, key_len) == 0))
        i++;
    return i;
}

/* An ORDER_SNAPSHOT of an evicted order (payload byte 1, bit 0: archived). Without an archive
 * hook an evicted order's id may be used again, so its archived record and the new order can
 * both be in one checkpoint (archived records come first). */
static bool kv_archived_order(const kv_entry_t *e)
{
    return e->key[0] == 5 && e->len >= 2 && (e->value[1] & 1u) != 0;
}

/* The allot_snapshot_cb: append to the batch; an object must be handed at most once. */
static void batch_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                     const uint8_t *payload, size_t len, bool deleted)
{
    kv_list_t *kv = ctx;
    size_t seen = kv_find(kv, key, key_len);
    if (!deleted && seen < kv->count && !kv->entries[seen].deleted &&
        !kv_archived_order(&kv->entries[seen]))
        batch_keys_repeated++;
    cr_assert_lt(kv->count, KV_MAX);
    kv_entry_t *e = &kv->entries[kv->count++];
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->type = type;
    e->deleted = deleted;
    e->value = len > 0 ? malloc(len) : NULL;
    if (len > 0)
        memcpy(e->value, payload, len);
    e->len = len;
}

/* Commit the batch like the checkpoint writer: a full one first drops every stored object except
 * orders (kind 5), then the entries in order. */
static void batch_commit(bool full)
{
    if (full) {
        size_t kept = 0;
        for (size_t i = 0; i < store.count; i++) {
            if (store.entries[i].key[0] == 5)
                store.entries[kept++] = store.entries[i];
            else
                free(store.entries[i].value);
        }
        store.count = kept;
    }
    for (size_t b = 0; b < batch.count; b++) {
        kv_entry_t *e = &batch.entries[b];
        size_t i = kv_find(&store, e->key, e->key_len);
        if (i < store.count) {
            free(store.entries[i].value);
            store.entries[i] = store.entries[--store.count];
        }
        if (e->deleted) {
            free(e->value);
            continue;
        }
        cr_assert_lt(store.count, KV_MAX);
        store.entries[store.count++] = *e;
    }
    batch.count = 0; /* values moved to the store */
}

static int kv_compare(const void *a, const void *b)
{
    const kv_entry_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Load the store (key order, as LMDB) into a fresh state: it must print as the state did when
 * the checkpoint began (`at_begin`); then replay the events recorded from `first_event` on: the
 * live state must print the same. */
static void assert_store_plus_tail_is_live(const allot_state_t *live, const char *at_begin,
                                           size_t first_event)
{
    qsort(store.entries, store.count, sizeof(kv_entry_t), kv_compare);
    allot_state_t *loaded = allot_state_create(&fx_config);
    for (size_t i = 0; i < store.count; i++) {
        kv_entry_t *e = &store.entries[i];
        cr_assert_eq(allot_event_apply_encoded(loaded, e->type, e->value, e->len), 0,
                     "checkpoint record %zu (kind %u)", i, e->key[0]);
    }
    allot_state_dirty_clear(loaded);
    char *stored = fx_dump(loaded);
    cr_assert_str_eq(stored, at_begin, "the checkpoint differs from the state when it began");
    free(stored);
    for (size_t i = first_event; i < fx_log.count; i++)
        cr_assert_eq(allot_event_apply_encoded(loaded, fx_log.events[i].type,
                                               fx_log.events[i].payload, fx_log.events[i].len),
                     0, "replay of event %zu (type %u)", i, fx_log.events[i].type);
    char *a = fx_dump(live), *b = fx_dump(loaded);
    cr_assert_str_eq(a, b, "checkpoint + events after it differ from the live state");
    free(a);
    free(b);
    allot_state_destroy(loaded);
}

/* ---- random writes ------------------------------------------------------------------------- */

static void random_reserve(allot_state_t *state, int64_t now_ms)
{
    allot_line_input_t lines[3];
    uint32_t n = 1 + rng() % 3;
    for (uint32_t k = 0; k < n; k++)
        lines[k] = (allot_line_input_t){S(sku_ids[(rng() % 4) + k]), 1 + rng() % 3};
    char id[16];
    snprintf(id, sizeof(id), "cart-%u", rng() % CARTS);
    allot_reserve_request_t req = fx_req(id, lines, n);
    req.ttl_s = 30 + rng() % 300;
    req.partial = rng() % 3 == 0;
    req.replace = rng() % 2 == 0;
    (void)fx_reserve(state, &req, now_ms, NULL);
}

static void random_order(allot_state_t *state, int64_t now_ms)
{
    const allot_order_view_t *ov;
    char id[16], cart[16];
    snprintf(id, sizeof(id), "o-%u", rng() % ORDERS);
    snprintf(cart, sizeof(cart), "cart-%u", rng() % CARTS);
    allot_str_t none = {"", 0};
    switch (rng() % 7) {
    case 0:
    case 1: {
        allot_line_input_t lines[] = {{S(sku_ids[rng() % 4]), 1}};
        allot_order_create_request_t req = {.id = S(id),
                                            .customer = S("c1"),
                                            .reservation = none,
                                            .lines = lines,
                                            .line_count = 1,
                                            .location = none,
                                            .address = none,
                                            .instructions = none};
        if (rng() % 2 == 0) {
            req.reservation = S(cart);
            req.lines = NULL;
            req.line_count = 0;
        }
        (void)allot_order_create(state, &req, now_ms, &ov, &fx_err);
        break;
    }
    case 2:
        (void)allot_order_release(state, S(id), now_ms, &ov, &fx_err);
        break;
    case 3:
        (void)allot_shipment_ship(state, S(id), S("S1"), S("trk"), now_ms, &ov, &fx_err);
        break;
    case 4:
        (void)allot_shipment_deliver(state, S(id), S("S1"), now_ms, &ov, &fx_err);
        break;
    case 5:
        (void)allot_order_cancel(state, S(id), S("changed mind"), now_ms, &ov, &fx_err);
        break;
    default:
        (void)allot_orders_evict_aged(state, now_ms, 2); /* ended orders older than 60 s */
    }
}

/* A future supply of 12: put (new, changed, delayed), received in part or in whole, cancelled. */
static void random_supply(allot_state_t *state, int64_t now_ms)
{
    char id[16];
    snprintf(id, sizeof(id), "PO-%u", rng() % 12);
    allot_supply_view_t v;
    uint32_t op = rng() % 4;
    if (op <= 1) {
        allot_supply_put_input_t in = {S(id), S(sku_ids[rng() % 8]), S(loc_ids[rng() % 5]),
                                       1 + rng() % 20, now_ms + (int64_t)(rng() % 10) * 3600000};
        (void)allot_supply_put(state, &in, now_ms, &v, &fx_err);
    } else if (op == 2) {
        (void)allot_supply_receive(state, S(id), rng() % 2, 1 + rng() % 8, now_ms, &v, &fx_err);
    } else {
        (void)allot_supply_cancel(state, S(id), now_ms, &v, &fx_err);
    }
}

static void random_step(allot_state_t *state, int64_t now_ms)
{
    const allot_reservation_t *r;
    allot_stock_result_t out;
    char id[16];
    uint32_t op = rng() % 14;
    const char *sku = sku_ids[rng() % 8], *loc = loc_ids[rng() % 5];
    allot_error_detail_clear(&fx_err);
    if (op == 0) {
        allot_stock_set_input_t in = {S(sku), S(loc), rng() % 20, rng() % 2, rng() % 3, false, 0};
        (void)allot_stock_set(state, &in, &out, &fx_err);
    } else if (op == 1) {
        char key[16];
        snprintf(key, sizeof(key), "k%u", rng() % 16);
        int64_t delta = (int64_t)(rng() % 9) - 4;
        allot_stock_adjust_input_t in = {S(sku), S(loc), delta != 0 ? delta : 1,
                                         rng() % 3 ? S(key) : (allot_str_t){"", 0}};
        (void)allot_stock_adjust(state, &in, now_ms, &out, &fx_err);
    } else if (op <= 4) {
        random_reserve(state, now_ms);
    } else if (op == 5) {
        snprintf(id, sizeof(id), "cart-%u", rng() % CARTS);
        (void)allot_reservation_release(state, S(id), now_ms, &r, &fx_err);
    } else if (op == 6) {
        snprintf(id, sizeof(id), "cart-%u", rng() % CARTS);
        (void)allot_reservation_extend(state, S(id), 10 + rng() % 60, now_ms, &r, &fx_err);
    } else if (op == 7) {
        (void)allot_reservations_expire(state, now_ms, 1 + rng() % 3);
    } else if (op == 8) {
        fx_location(state, (fx_loc_t){.id = loc,
                                      .lat = 50,
                                      .lon = 10,
                                      .priority = rng() % 3,
                                      .pickup = true,
                                      .inactive = rng() % 4 == 0,
                                      .daily_capacity = rng() % 2 ? 0 : 20});
    } else if (op >= 12) {
        random_supply(state, now_ms);
    } else {
        random_order(state, now_ms);
    }
}

static allot_state_t *random_world(void)
{
    /* Idempotency entries leave by the count bound (6) only: an age eviction is relative to the
     * key inserted, so loading keys in key order may drop an aged one earlier than the live
     * state did (allowed: they are kept "at least" the age), and the dumps would differ. */
    allot_state_config_t config = {.idempotency_entries_max = 6,
                                   .idempotency_age_ms = 30 * ALLOT_MS_PER_DAY,
                                   .orders_archive_age_ms = 60000};
    allot_state_t *state = fx_state_with(&config);
    for (int i = 0; i < 5; i++)
        fx_location(state, (fx_loc_t){.id = loc_ids[i],
                                      .lat = 48 + i,
                                      .lon = 11 + i * 0.5,
                                      .priority = i,
                                      .pickup = true,
                                      .daily_capacity = i == 4 ? 30 : 0});
    for (int i = 0; i < 16; i++)
        fx_stock(state, sku_ids[i % 8], loc_ids[i % 5], 40, 0);
    return state;
}

/* One checkpoint begun now, sliced into steps of 0..objects_per_step objects with random writes
 * between them; committed to the store. Returns the index of the first event after it began. */
static size_t sliced_checkpoint(allot_state_t *state, bool full, int64_t *now_ms,
                                uint32_t objects_per_step, char **at_begin)
{
    size_t first_event = fx_log.count;
    *at_begin = fx_dump(state);
    allot_state_checkpoint_begin(state, full, batch_cb, &batch);
    cr_assert(allot_state_checkpoint_active(state));
    uint32_t steps = 0;
    while (!allot_state_checkpoint_step(state, rng() % (objects_per_step + 1))) {
        for (uint32_t writes = rng() % 4; writes > 0; writes--) {
            *now_ms += rng() % 5000;
            random_step(state, *now_ms);
        }
        cr_assert_lt(++steps, 100000, "the walk ends");
    }
    cr_assert_eq(allot_state_checkpoint_end(state), 0);
    cr_assert_not(allot_state_checkpoint_active(state));
    cr_assert_eq(batch_keys_repeated, 0, "an object was handed twice");
    batch_commit(full);
    return first_event;
}

static void run_rounds(bool full_every_other, uint32_t seed)
{
    rng_state = seed;
    allot_state_t *state = random_world();
    int64_t now_ms = FX_T0;
    kv_clear(&store);
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < 120; i++) {
            now_ms += rng() % 8000;
            if (i == 60 && round == 3)
                now_ms += ALLOT_MS_PER_DAY; /* daily capacity counters roll over */
            random_step(state, now_ms);
        }
        bool full = round == 0 || (full_every_other && round % 2 == 1);
        char *at_begin;
        size_t first_event = sliced_checkpoint(state, full, &now_ms, 1 + rng() % 6, &at_begin);
        /* the store is the state when it began; with the events since, the live state */
        assert_store_plus_tail_is_live(state, at_begin, first_event);
        free(at_begin);
    }
    char msg[256];
    cr_assert_eq(allot_state_check_invariants(state, msg, sizeof(msg)), 0, "%s", msg);
    allot_state_counters_t counters;
    allot_state_counters_get(state, &counters);
    cr_assert_gt(fx_log.count, 400, "the writes did things (%zu events)", fx_log.count);
    kv_clear(&store);
    allot_state_destroy(state);
    fx_log_reset();
}

Test(checkpoint_sliced, incremental_records_are_the_state_when_it_began)
{
    for (uint32_t seed = 1; seed <= 4; seed++)
        run_rounds(false, seed * 7919);
}

Test(checkpoint_sliced, full_records_are_the_state_when_it_began)
{
    for (uint32_t seed = 1; seed <= 4; seed++)
        run_rounds(true, seed * 104729);
}

Test(checkpoint_sliced, begin_turns_the_dirty_set_into_the_pending_set)
{
    allot_state_t *state = fx_state();
    fx_location(state, (fx_loc_t){.id = "W1"});
    fx_stock(state, "A", "W1", 5, 0);
    fx_stock(state, "B", "W1", 5, 0);
    cr_assert_eq(allot_state_dirty_count(state), 3);
    allot_state_checkpoint_begin(state, false, batch_cb, &batch);
    cr_assert_eq(allot_state_dirty_count(state), 0, "a new, empty dirty set");
    cr_assert_eq(batch.count, 0, "nothing serialized yet");
    /* a change to a pending SKU hands its pre-image first, and dirties it for the next one */
    fx_stock(state, "A", "W1", 9, 0);
    cr_assert_eq(batch.count, 1);
    cr_assert_eq(allot_state_dirty_count(state), 1);
    fx_stock(state, "A", "W1", 10, 0);
    cr_assert_eq(batch.count, 1, "the pre-image is written once");
    cr_assert_not(allot_state_checkpoint_step(state, 1), "W1 only");
    cr_assert_eq(batch.count, 2);
    cr_assert(allot_state_checkpoint_step(state, 10), "A (done already) and B");
    cr_assert_eq(batch.count, 3);
    cr_assert_eq(allot_state_checkpoint_end(state), 0);
    /* the pre-image of A holds on_hand 5 */
    allot_state_t *loaded = allot_state_create(NULL);
    qsort(batch.entries, batch.count, sizeof(kv_entry_t), kv_compare);
    for (size_t i = 0; i < batch.count; i++)
        cr_assert_eq(allot_event_apply_encoded(loaded, batch.entries[i].type,
                                               batch.entries[i].value, batch.entries[i].len),
                     0);
    cr_assert_eq(fx_position(loaded, "A", "W1")->on_hand, 5);
    cr_assert_eq(fx_position(state, "A", "W1")->on_hand, 10);
    kv_clear(&batch);
    /* the next checkpoint holds A only */
    allot_state_checkpoint_begin(state, false, batch_cb, &batch);
    cr_assert(allot_state_checkpoint_step(state, 100));
    cr_assert_eq(allot_state_checkpoint_end(state), 0);
    cr_assert_eq(batch.count, 1);
    cr_assert_eq(batch.entries[0].key[0], 2);
    kv_clear(&batch);
    allot_state_destroy(loaded);
    allot_state_destroy(state);
    fx_log_reset();
}

static void count_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                     const uint8_t *payload, size_t len, bool deleted)
{
    (void)key, (void)key_len, (void)type, (void)payload, (void)len, (void)deleted;
    ++*(size_t *)ctx;
}

static int count_sink(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    (void)type, (void)payload, (void)len;
    ++*(size_t *)ctx;
    return 0;
}

Test(checkpoint_sliced, a_burst_of_dirty_holds_leaves_no_list_behind_its_checkpoints)
{
    /* the list of a burst's dirty objects (4 bytes each) was kept after its checkpoint, as the
     * room of the dirty set after the next: memory for good after a burst of new holds */
    allot_state_t *state = fx_state();
    size_t events = 0, records = 0;
    allot_state_set_event_sink(state, count_sink, &events);
    fx_location(state, (fx_loc_t){.id = "W1"});
    uint32_t holds = ALLOT_CHECKPOINT_PENDING_KEPT_MAX + 1000;
    fx_stock(state, "A", "W1", holds, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    char id[32];
    for (uint32_t i = 0; i < holds; i++) {
        snprintf(id, sizeof(id), "burst-%u", i);
        allot_reserve_request_t req = fx_req(id, lines, 1);
        cr_assert_eq(fx_reserve(state, &req, FX_T0, NULL), 0, "%s", fx_err.message);
    }
    cr_assert_geq(state->dirty[STATE_KEY_RESERVATION].capacity, holds);
    cr_assert_eq(allot_state_snapshot_each_dirty(state, count_cb, &records), 0);
    cr_assert_gt(records, holds, "the holds, the SKU, the location");
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(allot_state_snapshot_each_dirty(state, count_cb, &records), 0);
        for (uint8_t kind = 1; kind < STATE_KEY_LIMIT; kind++) {
            cr_assert_leq(state->dirty[kind].capacity, ALLOT_CHECKPOINT_PENDING_KEPT_MAX,
                          "round %d, kind %u: the dirty set's room", round, kind);
            cr_assert_leq(state->checkpoint.pending[kind].capacity,
                          ALLOT_CHECKPOINT_PENDING_KEPT_MAX, "round %d, kind %u: the list", round,
                          kind);
        }
    }
    /* the next burst grows the dirty set again, and its checkpoint holds every hold */
    const allot_reservation_t *r;
    for (uint32_t i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "burst-%u", i);
        cr_assert_eq(allot_reservation_release(state, S(id), FX_T0 + 1, &r, &fx_err), 0);
    }
    records = 0;
    cr_assert_eq(allot_state_snapshot_each_dirty(state, count_cb, &records), 0);
    cr_assert_geq(records, 100);
    allot_state_destroy(state);
    fx_log_reset();
}

Test(checkpoint_sliced, a_full_checkpoint_skips_objects_born_after_it_began)
{
    allot_state_config_t config = {.idempotency_entries_max = 1};
    allot_state_t *state = fx_state_with(&config);
    fx_location(state, (fx_loc_t){.id = "W1"});
    fx_stock(state, "A", "W1", 5, 0);
    allot_line_input_t lines[] = {{S("A"), 1}};
    allot_reserve_request_t req = fx_req("cart-0", lines, 1);
    cr_assert_eq(fx_reserve(state, &req, FX_T0, NULL), 0);
    req = fx_req("cart-1", lines, 1);
    cr_assert_eq(fx_reserve(state, &req, FX_T0, NULL), 0);
    allot_state_checkpoint_begin(state, true, batch_cb, &batch);
    /* both end; the tombstone bound (1) drops cart-0, whose slot cart-2 then takes */
    const allot_reservation_t *r;
    cr_assert_eq(allot_reservation_release(state, S("cart-0"), FX_T0 + 1, &r, &fx_err), 0);
    cr_assert_eq(allot_reservation_release(state, S("cart-1"), FX_T0 + 2, &r, &fx_err), 0);
    cr_assert_null(allot_reservation_find(state, S("cart-0")));
    req = fx_req("cart-2", lines, 1);
    cr_assert_eq(fx_reserve(state, &req, FX_T0 + 3, NULL), 0);
    cr_assert(allot_state_checkpoint_step(state, 1000));
    cr_assert_eq(allot_state_checkpoint_end(state), 0);
    qsort(batch.entries, batch.count, sizeof(kv_entry_t), kv_compare);
    allot_state_t *loaded = allot_state_create(&config);
    for (size_t i = 0; i < batch.count; i++) {
        cr_assert_not(batch.entries[i].deleted, "a full checkpoint hands no deletions");
        cr_assert_eq(allot_event_apply_encoded(loaded, batch.entries[i].type,
                                               batch.entries[i].value, batch.entries[i].len),
                     0);
    }
    /* exactly the state when it began: both holds live, no cart-2 */
    allot_state_counters_t counters;
    allot_state_counters_get(loaded, &counters);
    cr_assert_eq(counters.reservations, 2);
    cr_assert_eq(counters.tombstones, 0);
    cr_assert_null(allot_reservation_find(loaded, S("cart-2")));
    cr_assert_eq(fx_position(loaded, "A", "W1")->reserved, 2);
    cr_assert_eq(fx_position(state, "A", "W1")->reserved, 1);
    kv_clear(&batch);
    allot_state_destroy(loaded);
    allot_state_destroy(state);
    fx_log_reset();
}
