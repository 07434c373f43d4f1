/* test_core_growth.c - a seeded random storm that makes every array of the state grow while
 * other parts of the state point into it: orders' shipments, items, returns and history
 * (rejects, transitions), holds and their line blocks (reserve, replace, release, expiry),
 * positions inserted before the ones holds and orders use, the SKU and location arrays, the hash
 * tables, heaps, idempotency slabs, the deletion and archive buffers (evicted orders are read
 * back through an archive hook), and checkpoints serialized in slices meanwhile. Every few steps
 * the invariants are checked; at the end the event log replays, and a full checkpoint loads, to
 * the same state. Run under ASan (make test-asan) it catches any pointer kept across a
 * reallocation. ALLOT_GROWTH_SEED=n replays another seed. */
#include "test_core_fixture.h"

#include "core/base/buffer.h"
#include "core/order.h"

#define GROWTH_STEPS          60000
#define GROWTH_CHECK_EVERY    200
#define GROWTH_LOCATIONS_MAX  40   /* the location array grows at 16 and 32 */
#define GROWTH_SKUS_MAX       1500 /* the SKU array grows at 1024 */
#define GROWTH_HOT_SKUS       6
#define GROWTH_CARTS          300
#define GROWTH_ORDERS         60
#define GROWTH_PATIENT_ORDERS 3 /* order-0..2: held and unheld, never released or cancelled */
#define GROWTH_KEYS           400
#define GROWTH_SEED_DEFAULT   0x5eed2021u

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static uint32_t pick(uint32_t n)
{
    return rng() % n;
}

/* ---- the event log (every emitted record, for the replay at the end) ------------------------ */

static allot_bytes_t growth_log;
static size_t growth_log_events;

static int growth_sink(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    (void)ctx;
    cr_assert_eq(allot_bytes_reserve(&growth_log, 5 + len), 0);
    allot_bytes_put_u8(&growth_log, type);
    uint32_t n = (uint32_t)len;
    allot_bytes_put(&growth_log, &n, 4);
    allot_bytes_put(&growth_log, payload, len);
    growth_log_events++;
    return 0;
}

static allot_state_t *growth_replay(const allot_state_config_t *config)
{
    allot_state_t *replica = allot_state_create(config);
    size_t off = 0, applied = 0;
    while (off < growth_log.len) {
        uint8_t type = growth_log.data[off];
        uint32_t len;
        memcpy(&len, growth_log.data + off + 1, 4);
        int rc = allot_event_apply_encoded(replica, type, growth_log.data + off + 5, len);
        cr_assert_eq(rc, 0, "replay of event %zu (%s) failed: %d", applied,
                     allot_event_type_name(type), rc);
        off += 5u + len;
        applied++;
    }
    cr_assert_eq(applied, growth_log_events);
    return replica;
}

/* ---- the world ------------------------------------------------------------------------------ */

typedef struct growth {
    allot_state_t *state;
    int64_t now_ms;
    uint32_t locations;
    uint32_t skus;
    bool checkpointing;
    /* what the storm reached (asserted at the end: the test must keep doing what it says) */
    uint32_t rejects, shipments_max, history_max, returns_max, hot_positions_inserted;
    uint32_t checkpoints, evictions, replaced, listed;
} growth_t;

static char id_buf[8][ALLOT_ID_BYTES_MAX + 1];
static uint32_t id_next;

/* A short-lived id string (eight in rotation). */
static allot_str_t idf(const char *fmt, uint32_t n)
{
    char *buf = id_buf[id_next++ % 8];
    snprintf(buf, sizeof(id_buf[0]), fmt, n);
    return S(buf);
}

static allot_str_t location_id(uint32_t i)
{
    return idf("L%02u", i);
}

/* Hot SKUs are held and ordered; the rest are stocked once (they grow the SKU array). Every
 * seventh id is longer than an inline SKU id (kept in the arena). */
static allot_str_t sku_id(uint32_t i)
{
    return i % 7 == 3 ? idf("sku-with-a-long-identifier-%06u", i) : idf("S%u", i);
}

static void growth_location_put(growth_t *g, uint32_t i)
{
    allot_location_input_t in;
    allot_location_input_defaults(&in);
    in.id = location_id(i);
    in.lat = 40.0 + i % 10;
    in.lon = 5.0 + i / 10;
    in.priority = (int64_t)pick(5);
    in.pickup = i % 3 == 0;
    in.daily_capacity = i % 5 == 4 ? 50 : 0;
    cr_assert_eq(allot_location_put(g->state, &in, NULL, &fx_err), 0, "%s", fx_err.message);
}

static void op_location(growth_t *g)
{
    if (g->locations < GROWTH_LOCATIONS_MAX && pick(3) == 0)
        growth_location_put(g, g->locations++);
    else
        growth_location_put(g, pick(g->locations)); /* an update */
}

/* A position of a hot SKU at a location it may not have yet: inserted into its positions
 * (shifting the others) while holds and orders use them. */
static void op_stock_set(growth_t *g)
{
    uint32_t sku = pick(5) == 0 && g->skus < GROWTH_SKUS_MAX ? g->skus++ : pick(GROWTH_HOT_SKUS);
    uint32_t location = pick(g->locations);
    allot_str_t sku_str = sku_id(sku);
    const allot_position_t *before = fx_position(g->state, sku_str.ptr, location_id(location).ptr);
    allot_stock_set_input_t in = {
        sku_str, location_id(location), 5 + pick(30), true, pick(2), false, 0};
    allot_stock_result_t out;
    cr_assert_eq(allot_stock_set(g->state, &in, &out, &fx_err), 0, "%s", fx_err.message);
    uint32_t index = allot_sku_index_find(g->state, sku_str);
    if (before == NULL && allot_sku_at(g->state, index)->position_count > 1 &&
        sku < GROWTH_HOT_SKUS)
        g->hot_positions_inserted++;
}

static void op_stock_adjust(growth_t *g)
{
    allot_stock_adjust_input_t in = {sku_id(pick(GROWTH_HOT_SKUS)), location_id(pick(g->locations)),
                                     (int64_t)pick(7) - 2, idf("key-%u", pick(GROWTH_KEYS))};
    if (in.delta == 0)
        in.delta = 1;
    allot_stock_result_t out;
    (void)allot_stock_adjust(g->state, &in, g->now_ms, &out, &fx_err); /* may conflict */
}

static uint32_t random_lines(allot_line_input_t *lines, uint32_t max)
{
    uint32_t n = 1 + pick(max);
    for (uint32_t i = 0; i < n; i++)
        lines[i] = (allot_line_input_t){sku_id(pick(GROWTH_HOT_SKUS)), 1 + pick(4)};
    return n;
}

static void op_reserve(growth_t *g)
{
    allot_line_input_t lines[5];
    uint32_t n = random_lines(lines, 5);
    allot_reserve_request_t req = fx_req("", lines, n);
    req.id = idf("cart-%u", pick(GROWTH_CARTS));
    req.ttl_s = 1 + pick(600);
    req.policy = (allot_policy_t)pick(ALLOT_POLICY_COUNT);
    req.partial = pick(3) == 0;
    req.replace = pick(2) == 0;
    const allot_reservation_t *r;
    bool existed = allot_reservation_find(g->state, req.id) != NULL;
    if (allot_reserve(g->state, &req, g->now_ms, &r, &fx_err) == 0 && existed && req.replace)
        g->replaced++;
}

static void op_hold_change(growth_t *g)
{
    const allot_reservation_t *r;
    allot_str_t id = idf("cart-%u", pick(GROWTH_CARTS));
    if (pick(2) == 0)
        (void)allot_reservation_release(g->state, id, g->now_ms, &r, &fx_err);
    else
        (void)allot_reservation_extend(g->state, id, 1 + pick(900), g->now_ms, &r, &fx_err);
}

static void op_order_create(growth_t *g)
{
    allot_line_input_t lines[4];
    allot_order_create_request_t req;
    memset(&req, 0, sizeof(req));
    req.id = idf("order-%u", pick(GROWTH_ORDERS));
    req.customer = idf("customer-%u", pick(5));
    req.location = req.address = req.instructions = (allot_str_t){"", 0};
    req.reservation = (allot_str_t){"", 0};
    req.policy = pick(2) == 0 ? ALLOT_POLICY_PRIORITY : ALLOT_POLICY_NEAREST;
    req.has_ship_to = true;
    req.lat = 44.0;
    req.lon = 6.0;
    if (pick(3) == 0) {
        req.reservation = idf("cart-%u", pick(GROWTH_CARTS));
    } else {
        req.lines = lines;
        req.line_count = random_lines(lines, 4);
    }
    const allot_order_view_t *v;
    (void)allot_order_create(g->state, &req, g->now_ms, &v, &fx_err);
}

static void track(growth_t *g, const allot_order_view_t *v)
{
    if (v->shipment_count > g->shipments_max)
        g->shipments_max = v->shipment_count;
    if (v->history_count > g->history_max)
        g->history_max = v->history_count;
    if (v->return_count > g->returns_max)
        g->returns_max = v->return_count;
}

static void op_reject(growth_t *g, allot_str_t order)
{
    const allot_order_view_t *v;
    if (allot_order_get(g->state, order, &v, &fx_err) != 0 || v->shipment_count == 0)
        return;
    char shipment[8];
    allot_shipment_id_format(pick(v->shipment_count), shipment);
    if (allot_shipment_reject(g->state, order, S(shipment), S("shelf empty"), g->now_ms, &v,
                              &fx_err) == 0) {
        g->rejects++;
        track(g, v);
    }
}

static void op_ship_or_deliver(growth_t *g, allot_str_t order)
{
    const allot_order_view_t *v;
    if (allot_order_get(g->state, order, &v, &fx_err) != 0 || v->shipment_count == 0)
        return;
    char shipment[8];
    allot_shipment_id_format(pick(v->shipment_count), shipment);
    if (pick(2) == 0)
        (void)allot_shipment_ship(g->state, order, S(shipment), S("TRK"), g->now_ms, &v, &fx_err);
    else
        (void)allot_shipment_deliver(g->state, order, S(shipment), g->now_ms, &v, &fx_err);
}

static void op_return(growth_t *g, allot_str_t order)
{
    const allot_order_view_t *v;
    uint32_t index;
    allot_str_t id = idf("return-%u", pick(400));
    if (pick(2) == 0) {
        allot_line_input_t lines[1] = {{sku_id(pick(GROWTH_HOT_SKUS)), 1}};
        allot_return_request_t req = {id, order, lines, 1, S("too small")};
        if (allot_return_create(g->state, &req, g->now_ms, &v, &index, &fx_err) == 0)
            track(g, v);
    } else {
        allot_disposition_t disposition =
            pick(2) == 0 ? ALLOT_DISPOSITION_RESTOCK : ALLOT_DISPOSITION_DAMAGED;
        (void)allot_return_receive(g->state, id, location_id(pick(g->locations)), disposition,
                                   g->now_ms, &v, &index, &fx_err);
    }
}

/* Transitions that add history: hold/unhold pairs on the patient orders take them to the 256
 * entries an order may hold. */
static void op_order_change(growth_t *g)
{
    uint32_t op = pick(9);
    uint32_t patient = GROWTH_PATIENT_ORDERS;
    allot_str_t order = op == 2 ? idf("order-%u", pick(patient))
                                : idf("order-%u", op < 2 ? pick(GROWTH_ORDERS)
                                                         : patient + pick(GROWTH_ORDERS - patient));
    const allot_order_view_t *v = NULL;
    switch (op) {
    case 0:
    case 1:
        op_reject(g, order);
        return;
    case 2:
        (void)allot_order_hold(g->state, order, S("review"), g->now_ms, &v, &fx_err);
        (void)allot_order_unhold(g->state, order, g->now_ms, &v, &fx_err);
        break;
    case 3:
        (void)allot_order_pay(g->state, order,
                              pick(2) ? ALLOT_PAYMENT_AUTHORIZED : ALLOT_PAYMENT_CAPTURED,
                              g->now_ms, &v, &fx_err);
        (void)allot_order_release(g->state, order, g->now_ms, &v, &fx_err);
        break;
    case 4: {
        allot_order_modify_request_t mod = {.id = order, .has_instructions = true};
        mod.instructions = idf("ring %u times", pick(1000));
        (void)allot_order_modify(g->state, &mod, g->now_ms, &v, &fx_err);
        break;
    }
    case 5:
    case 6:
        op_ship_or_deliver(g, order);
        return;
    case 7:
        op_return(g, order);
        return;
    default:
        if (pick(4) == 0)
            (void)allot_order_cancel(g->state, order, S("changed mind"), g->now_ms, &v, &fx_err);
        return;
    }
    if (allot_order_get(g->state, order, &v, &fx_err) == 0)
        track(g, v);
}

/* ---- checkpoints in slices, interleaved with the storm ------------------------------------- */

/* A full checkpoint's records, applied to another state as they come (kind by kind, as a load). */
static void load_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                    const uint8_t *payload, size_t len, bool deleted)
{
    (void)key;
    (void)key_len;
    cr_assert_not(deleted);
    int rc = allot_event_apply_encoded(ctx, type, payload, len);
    cr_assert_eq(rc, 0, "checkpoint record %s does not load: %d", allot_event_type_name(type), rc);
}

/* The archive: evicted orders' records as the checkpoints hand them (key kind 5, payload flag
 * bit 0 archived), served back to core's order.get / order.list. */
#define GROWTH_ARCHIVE_MAX 4096

typedef struct archived {
    char id[ALLOT_ID_BYTES_MAX + 1];
    uint8_t *payload;
    size_t len;
} archived_t;

static archived_t archive[GROWTH_ARCHIVE_MAX];
static size_t archive_count;

static void checkpoint_cb(void *ctx, const uint8_t *key, size_t key_len, uint8_t type,
                          const uint8_t *payload, size_t len, bool deleted)
{
    (void)ctx;
    cr_assert(key_len >= 2 && (deleted || (payload != NULL && len > 0)));
    if (deleted || type != ALLOT_EVENT_ORDER_SNAPSHOT || (payload[1] & 1u) == 0)
        return;
    size_t i = 0;
    while (i < archive_count && !(strlen(archive[i].id) == key_len - 1 &&
                                  memcmp(archive[i].id, key + 1, key_len - 1) == 0))
        i++;
    cr_assert_lt(i, GROWTH_ARCHIVE_MAX);
    if (i == archive_count)
        archive_count++;
    else
        free(archive[i].payload);
    memcpy(archive[i].id, key + 1, key_len - 1);
    archive[i].id[key_len - 1] = '\0';
    archive[i].payload = malloc(len);
    memcpy(archive[i].payload, payload, len);
    archive[i].len = len;
}

static int archive_get(void *ctx, allot_str_t id, const uint8_t **payload, size_t *len)
{
    (void)ctx;
    for (size_t i = 0; i < archive_count; i++) {
        if (allot_str_equal(S(archive[i].id), id)) {
            *payload = archive[i].payload;
            *len = archive[i].len;
            return 0;
        }
    }
    return ALLOT_ENOT_FOUND;
}

/* Every archived order of the customer (core filters by the cursor and sorts). */
static int archive_list(void *ctx, allot_str_t customer, int64_t before_ms, allot_str_t before_id,
                        uint32_t max, allot_order_archive_each_cb each_cb, void *each_ctx)
{
    (void)ctx;
    (void)before_ms;
    (void)before_id;
    allot_event_scratch_t scratch = {0};
    uint32_t n = 0;
    for (size_t i = 0; i < archive_count && n < max; i++) {
        allot_event_t e;
        if (allot_event_decode(ALLOT_EVENT_ORDER_SNAPSHOT, archive[i].payload, archive[i].len,
                               &scratch, &e) != 0 ||
            !allot_str_equal(e.u.order.customer, customer))
            continue;
        n++;
        if (each_cb(each_ctx, archive[i].payload, archive[i].len) != 0)
            break;
    }
    allot_event_scratch_free(&scratch);
    return 0;
}

static void archive_free(void)
{
    for (size_t i = 0; i < archive_count; i++)
        free(archive[i].payload);
    archive_count = 0;
}

/* order.get and order.list over live and archived orders (the archive copy buffers grow). */
static void op_order_read(growth_t *g)
{
    const allot_order_view_t *v;
    if (pick(2) == 0) {
        (void)allot_order_get(g->state, idf("order-%u", pick(GROWTH_ORDERS)), &v, &fx_err);
        return;
    }
    static allot_order_page_t page;
    allot_str_t customer = idf("customer-%u", pick(5));
    if (allot_order_list(g->state, customer, 1 + pick(ALLOT_ORDER_LIST_LIMIT_MAX),
                         (allot_str_t){"", 0}, &page, &fx_err) != 0)
        return;
    for (uint32_t i = 0; i < page.count; i++) {
        v = allot_order_page_at(g->state, &page, i);
        cr_assert(v != NULL && allot_str_equal(v->customer, customer));
    }
    g->listed += page.count;
}

static void op_checkpoint(growth_t *g)
{
    if (!g->checkpointing) {
        allot_state_checkpoint_begin(g->state, pick(4) == 0, checkpoint_cb, NULL);
        g->checkpointing = true;
        return;
    }
    if (allot_state_checkpoint_step(g->state, 1 + pick(50))) {
        cr_assert_eq(allot_state_checkpoint_end(g->state), 0);
        g->checkpointing = false;
        g->checkpoints++;
        /* orders ended long enough ago leave memory once checkpointed */
        g->evictions += allot_orders_evict_aged(g->state, g->now_ms, 8);
    }
}

static void growth_step(growth_t *g)
{
    g->now_ms += pick(3000);
    if (pick(500) == 0)
        g->now_ms += ALLOT_MS_PER_DAY; /* expiries, a new capacity day, aged orders */
    uint32_t op = pick(100);
    if (op < 3)
        op_location(g);
    else if (op < 25)
        op_stock_set(g);
    else if (op < 33)
        op_stock_adjust(g);
    else if (op < 50)
        op_reserve(g);
    else if (op < 58)
        op_hold_change(g);
    else if (op < 66)
        op_order_create(g);
    else if (op < 88)
        op_order_change(g);
    else if (op < 92)
        op_order_read(g);
    else if (op < 96)
        (void)allot_reservations_expire(g->state, g->now_ms, 1 + pick(20));
    else
        op_checkpoint(g);
}

static void growth_check(const growth_t *g, uint32_t step)
{
    char msg[256];
    cr_assert_eq(allot_state_check_invariants(g->state, msg, sizeof(msg)), 0,
                 "step %u: %s (seed %llu)", step, msg, (unsigned long long)rng_state);
}

Test(growth, every_array_grows_while_the_state_points_into_it, .timeout = 300)
{
    const char *seed_env = getenv("ALLOT_GROWTH_SEED");
    uint64_t seed = seed_env != NULL ? strtoull(seed_env, NULL, 0) : GROWTH_SEED_DEFAULT;
    rng_state = seed != 0 ? seed : 1;
    allot_state_config_t config = {.idempotency_entries_max = 64,
                                   .idempotency_age_ms = 3600 * 1000,
                                   .orders_archive_age_ms = 2 * 3600 * 1000};
    growth_t g = {.state = allot_state_create(&config), .now_ms = FX_T0};
    allot_state_set_event_sink(g.state, growth_sink, NULL);
    allot_order_archive_t hook = {archive_get, archive_list, NULL};
    allot_state_set_archive(g.state, &hook);
    for (uint32_t i = 0; i < 3; i++)
        growth_location_put(&g, g.locations++);
    for (uint32_t s = 0; s < GROWTH_HOT_SKUS; s++)
        fx_stock(g.state, sku_id(s).ptr, location_id(s % 3).ptr, 40, 0);
    g.skus = GROWTH_HOT_SKUS;
    for (uint32_t step = 1; step <= GROWTH_STEPS; step++) {
        growth_step(&g);
        if (step % GROWTH_CHECK_EVERY == 0)
            growth_check(&g, step);
    }
    while (g.checkpointing)
        op_checkpoint(&g);
    growth_check(&g, GROWTH_STEPS);
    cr_log_info("seed %llu: %u rejects (up to %u shipments), history up to %u, returns up to %u, "
                "%u positions of held SKUs inserted, %u skus, %u locations, %u checkpoints, "
                "%u evictions, %u replaced holds, %u orders listed, %zu events",
                (unsigned long long)seed, g.rejects, g.shipments_max, g.history_max, g.returns_max,
                g.hot_positions_inserted, g.skus, g.locations, g.checkpoints, g.evictions,
                g.replaced, g.listed, growth_log_events);
    /* the storm did grow what it is for */
    cr_expect_gt(g.shipments_max, 8, "shipment arrays grew twice");
    cr_expect_gt(g.history_max, 64, "history grew");
    cr_expect_gt(g.returns_max, 4, "returns grew");
    cr_expect_gt(g.skus, 1024, "the SKU array grew");
    cr_expect_gt(g.locations, 32, "the location array grew");
    cr_expect_gt(g.hot_positions_inserted, 50);
    cr_expect_gt(g.checkpoints, 5);
    cr_expect_gt(g.evictions, 0);
    cr_expect_gt(g.listed, 1000, "orders listed, archived ones among them");
    cr_expect_gt(g.replaced, 50);
    allot_state_counters_t counts;
    allot_state_counters_get(g.state, &counts);
    cr_expect_gt(counts.idempotency_evicted_early, 0, "the idempotency slabs were at their cap");
    /* the log replays to the same state, and a full checkpoint loads to it */
    allot_state_t *replica = growth_replay(&config);
    char *live = fx_dump(g.state), *replayed = fx_dump(replica);
    cr_assert_str_eq(live, replayed, "live and replayed states differ (seed %llu)",
                     (unsigned long long)seed);
    free(replayed);
    allot_state_t *loaded = allot_state_create(&config);
    cr_assert_eq(allot_state_snapshot_each(g.state, load_cb, loaded), 0);
    char *checkpointed = fx_dump(loaded);
    cr_assert_str_eq(live, checkpointed, "live and checkpoint-loaded states differ (seed %llu)",
                     (unsigned long long)seed);
    free(checkpointed);
    free(live);
    allot_state_destroy(loaded);
    allot_state_destroy(replica);
    allot_bytes_free(&growth_log);
    archive_free();
    allot_state_destroy(g.state);
}
