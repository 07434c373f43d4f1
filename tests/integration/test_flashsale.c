/* test_flashsale.c - many connections racing for a few units through the real allotd: every
 * unit is held exactly once, refusals are INSUFFICIENT_STOCK, and a reader polling from another
 * connection never sees an impossible count. No timing assumptions: the race runs until every
 * connection has been refused. */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_reply.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static harness_server_t *srv;
static allot_client_t *cli;

static void up(void)
{
    harness_fixture_up(&srv, &cli);
}

static void down(void)
{
    harness_fixture_down(&srv, &cli);
}

TestSuite(flashsale, .init = up, .fini = down, .timeout = 60);

/* Thread-safe (no Criterion asserts): an integer under a map key, false when absent. */
static bool map_int(const msgpack_object *map, const char *key, int64_t *out)
{
    const msgpack_object *o = allot_object_map_get(map, key);
    if (o == NULL)
        return false;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else
        return false;
    return true;
}

static int64_t result_int(const allot_reply_t *r, const char *key)
{
    int64_t v = 0;
    cr_assert(map_int(&r->result, key, &v), "no integer %s in reply", key);
    return v;
}

static void put_location(const char *id, int priority)
{
    harness_put_location(
        cli, id, harness_json("'type':'warehouse','lat':0,'lon':0,'priority':%d", priority));
}

/* ---- the poller: another connection reading stock.get during the race ------------------------ */

typedef struct poller {
    allot_client_t *client;
    const char *sku;
    int64_t on_hand; /* constant during the race */
    atomic_bool stop;
    pthread_t thread;
    /* results, read after join */
    long polls;
    long violations;
    int64_t last_reserved;
    char first_violation[512];
} poller_t;

static void poller_violation(poller_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void poller_violation(poller_t *p, const char *fmt, ...)
{
    if (p->violations++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->first_violation, sizeof p->first_violation, fmt, ap);
        va_end(ap);
    }
}

static void *poller_main(void *arg)
{
    poller_t *p = arg;
    allot_reply_t r = {0};
    char params[256];
    snprintf(params, sizeof params, "{\"sku\":\"%s\"}", p->sku);
    p->last_reserved = 0;
    while (!atomic_load(&p->stop)) {
        if (allot_client_call_json(p->client, "stock.get", params, &r) != 0) {
            poller_violation(p, "stock.get failed: %s", allot_client_last_error(p->client));
            break;
        }
        p->polls++;
        int64_t on_hand = -1, reserved = -1, allocated = -1, available = -1;
        if (r.is_error || !map_int(&r.result, "on_hand", &on_hand) ||
            !map_int(&r.result, "reserved", &reserved) ||
            !map_int(&r.result, "allocated", &allocated) ||
            !map_int(&r.result, "available", &available)) {
            poller_violation(p, "bad stock.get reply: %s %s", r.code, r.message);
            continue;
        }
        if (available < 0 || reserved < 0 || on_hand != p->on_hand || allocated != 0 ||
            reserved > on_hand || available != on_hand - reserved)
            poller_violation(p, "impossible counts: on_hand %lld reserved %lld available %lld",
                             (long long)on_hand, (long long)reserved, (long long)available);
        if (reserved < p->last_reserved) /* nothing is released during the race */
            poller_violation(p, "reserved went down from %lld to %lld", (long long)p->last_reserved,
                             (long long)reserved);
        p->last_reserved = reserved;
    }
    allot_reply_free(&r);
    return NULL;
}

static void poller_start(poller_t *p, const char *sku, int64_t on_hand)
{
    memset(p, 0, sizeof *p);
    p->client = harness_connect(srv);
    p->sku = sku;
    p->on_hand = on_hand;
    atomic_init(&p->stop, false);
    cr_assert_eq(pthread_create(&p->thread, NULL, poller_main, p), 0);
}

static void poller_finish(poller_t *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    allot_client_close(p->client);
    cr_expect_gt(p->polls, 0, "the poller never got an answer");
    cr_expect_eq(p->violations, 0, "%ld bad stock.get readings, first: %s", p->violations,
                 p->first_violation);
}

/* ---- the race ------------------------------------------------------------------------------- */

enum { CLIENTS = 50, PIPELINE = 4, SEQ_MAX = 4096 };

typedef struct racer {
    allot_client_t *c;
    int inflight;
    int sent;
    bool refused;
} racer_t;

typedef struct race {
    const char *sku;
    int64_t qty;
    /* outcome */
    long held;          /* successful reserves */
    int64_t units_held; /* sum of their allocations */
    long refused;       /* INSUFFICIENT_STOCK */
    int64_t last_refusal_available;
    bool *seen; /* [CLIENTS * SEQ_MAX]: reservation ids answered with success */
} race_t;

static void race_send(racer_t *rc, int index, const race_t *race)
{
    uint32_t msgid;
    cr_assert_lt(rc->sent, SEQ_MAX, "racer %d sent too many requests", index);
    const char *params = harness_json("{'id':'fs-%d-%d','lines':[{'sku':'%s','qty':%lld}]}", index,
                                      rc->sent, race->sku, (long long)race->qty);
    cr_assert_eq(allot_client_send_json(rc->c, "reserve", params, &msgid), 0, "%s",
                 allot_client_last_error(rc->c));
    rc->sent++;
    rc->inflight++;
}

static void race_reply(racer_t *rc, const allot_reply_t *r, race_t *race)
{
    rc->inflight--;
    if (r->is_error) {
        cr_assert_str_eq(r->code, "INSUFFICIENT_STOCK", "refusal %s: %s", r->code, r->message);
        const msgpack_object *shortfalls = allot_object_map_get(&r->error, "shortfalls");
        cr_assert(shortfalls != NULL && shortfalls->type == MSGPACK_OBJECT_ARRAY &&
                      shortfalls->via.array.size == 1,
                  "refusal without one shortfall");
        const msgpack_object *s = &shortfalls->via.array.ptr[0];
        int64_t requested = 0, available = -1;
        cr_assert(allot_object_str_equal(allot_object_map_get(s, "sku"), race->sku));
        cr_assert(map_int(s, "requested", &requested) && requested == race->qty);
        cr_assert(map_int(s, "available", &available) && available >= 0 && available < race->qty,
                  "refused with %lld available", (long long)available);
        race->refused++;
        race->last_refusal_available = available;
        rc->refused = true;
        return;
    }
    const msgpack_object *id = allot_object_map_get(&r->result, "id");
    cr_assert(id != NULL && id->type == MSGPACK_OBJECT_STR && id->via.str.size < 64);
    char text[64];
    memcpy(text, id->via.str.ptr, id->via.str.size);
    text[id->via.str.size] = '\0';
    int client = -1, seq = -1;
    cr_assert_eq(sscanf(text, "fs-%d-%d", &client, &seq), 2, "reply id %s", text);
    cr_assert(client >= 0 && client < CLIENTS && seq >= 0 && seq < SEQ_MAX);
    cr_assert_not(race->seen[client * SEQ_MAX + seq], "%s answered twice", text);
    race->seen[client * SEQ_MAX + seq] = true;
    const msgpack_object *lines = allot_object_map_get(&r->result, "lines");
    cr_assert(lines != NULL && lines->type == MSGPACK_OBJECT_ARRAY && lines->via.array.size == 1);
    const msgpack_object *line = &lines->via.array.ptr[0];
    int64_t qty = 0;
    cr_assert(map_int(line, "qty", &qty) && qty == race->qty, "held %lld", (long long)qty);
    const msgpack_object *allocations = allot_object_map_get(line, "allocations");
    cr_assert(allocations != NULL && allocations->type == MSGPACK_OBJECT_ARRAY);
    int64_t sum = 0;
    for (uint32_t i = 0; i < allocations->via.array.size; i++) {
        int64_t q = 0;
        cr_assert(map_int(&allocations->via.array.ptr[i], "qty", &q) && q > 0);
        sum += q;
    }
    cr_assert_eq(sum, race->qty, "allocations sum to %lld", (long long)sum);
    race->held++;
    race->units_held += sum;
    cr_assert_null(allot_object_map_get(&r->result, "shortfalls"));
}

/* CLIENTS connections each keep PIPELINE reserves in flight until their first refusal. */
static void run_race(race_t *race)
{
    static racer_t racers[CLIENTS];
    race->seen = calloc((size_t)CLIENTS * SEQ_MAX, sizeof(bool));
    cr_assert_not_null(race->seen);
    for (int i = 0; i < CLIENTS; i++)
        racers[i] = (racer_t){.c = harness_connect(srv)};
    for (int i = 0; i < CLIENTS; i++) {
        for (int k = 0; k < PIPELINE; k++)
            race_send(&racers[i], i, race);
        cr_assert_eq(allot_client_flush(racers[i].c), 0);
    }
    allot_reply_t r = {0};
    for (;;) {
        struct pollfd fds[CLIENTS];
        int who[CLIENTS], n = 0;
        for (int i = 0; i < CLIENTS; i++) {
            if (racers[i].inflight > 0) {
                fds[n] = (struct pollfd){.fd = allot_client_fd(racers[i].c), .events = POLLIN};
                who[n++] = i;
            }
        }
        if (n == 0)
            break;
        int ready = poll(fds, (nfds_t)n, 10000);
        cr_assert_gt(ready, 0, "no reply for 10 s with requests in flight");
        for (int k = 0; k < n; k++) {
            if (fds[k].revents == 0)
                continue;
            racer_t *rc = &racers[who[k]];
            do {
                cr_assert_eq(allot_client_recv(rc->c, &r), 0, "%s", allot_client_last_error(rc->c));
                race_reply(rc, &r, race);
            } while (rc->inflight > 0 && allot_client_buffered_bytes(rc->c) > 0);
            if (!rc->refused) {
                while (rc->inflight < PIPELINE)
                    race_send(rc, who[k], race);
                cr_assert_eq(allot_client_flush(rc->c), 0);
            }
        }
    }
    allot_reply_free(&r);
    for (int i = 0; i < CLIENTS; i++) {
        cr_expect(racers[i].refused, "racer %d was never refused", i);
        allot_client_close(racers[i].c);
    }
    free(race->seen);
    race->seen = NULL;
}

static void expect_final_stock(const char *sku, int64_t on_hand, int64_t reserved)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "stock.get", harness_json("{'sku':'%s'}", sku), &r);
    cr_expect_eq(result_int(&r, "on_hand"), on_hand);
    cr_expect_eq(result_int(&r, "reserved"), reserved);
    cr_expect_eq(result_int(&r, "available"), on_hand - reserved);
    harness_call_ok(cli, "avail.get", harness_json("{'skus':['%s']}", sku), &r);
    const msgpack_object *items = allot_object_map_get(&r.result, "items");
    cr_assert(items != NULL && items->type == MSGPACK_OBJECT_ARRAY && items->via.array.size == 1);
    int64_t available = -1;
    cr_expect(map_int(&items->via.array.ptr[0], "available", &available) &&
              available == on_hand - reserved);
    allot_reply_free(&r);
}

/* ---- tests ----------------------------------------------------------------------------------- */

Test(flashsale, fifty_connections_racing_for_1000_units_hold_exactly_1000)
{
    put_location("W1", 0);
    harness_set_stock(cli, "FLASH", "W1", 1000);
    poller_t poller;
    poller_start(&poller, "FLASH", 1000);
    race_t race = {.sku = "FLASH", .qty = 1};
    run_race(&race);
    poller_finish(&poller);
    cr_expect_eq(race.held, 1000);
    cr_expect_eq(race.units_held, 1000);
    cr_expect_geq(race.refused, CLIENTS, "every connection ends with a refusal");
    cr_expect_eq(race.last_refusal_available, 0);
    expect_final_stock("FLASH", 1000, 1000);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 1000);
    /* One more, from a fresh connection, is refused too. */
    allot_reply_t r = {0};
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'late','lines':[{'sku':'FLASH','qty':1}]}"),
                       "INSUFFICIENT_STOCK", &r);
    allot_reply_free(&r);
}

Test(flashsale, racing_for_3_units_at_a_time_across_three_locations_never_oversells)
{
    put_location("W1", 0);
    put_location("W2", 1);
    put_location("W3", 2);
    harness_set_stock(cli, "FLASH", "W1", 500);
    harness_set_stock(cli, "FLASH", "W2", 300);
    harness_set_stock(cli, "FLASH", "W3", 200);
    poller_t poller;
    poller_start(&poller, "FLASH", 1000);
    race_t race = {.sku = "FLASH", .qty = 3};
    run_race(&race);
    poller_finish(&poller);
    /* 333 carts of 3; the last unit cannot make a cart. */
    cr_expect_eq(race.held, 333);
    cr_expect_eq(race.units_held, 999);
    cr_expect_eq(race.last_refusal_available, 1);
    expect_final_stock("FLASH", 1000, 999);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 333);
}

Test(flashsale, the_same_cart_sent_from_every_connection_at_once_is_held_once)
{
    put_location("W1", 0);
    harness_set_stock(cli, "FLASH", "W1", 10);
    allot_client_t *clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = harness_connect(srv);
    char request[128];
    snprintf(request, sizeof request, "%s",
             harness_json("{'id':'shared','lines':[{'sku':'FLASH','qty':3}]}"));
    for (int i = 0; i < CLIENTS; i++) {
        uint32_t msgid;
        cr_assert_eq(allot_client_send_json(clients[i], "reserve", request, &msgid), 0);
        cr_assert_eq(allot_client_send_json(clients[i], "reserve", request, &msgid), 0);
    }
    for (int i = 0; i < CLIENTS; i++)
        cr_assert_eq(allot_client_flush(clients[i]), 0);
    char *first = NULL;
    allot_reply_t r = {0};
    for (int i = 0; i < CLIENTS; i++) {
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(allot_client_recv(clients[i], &r), 0);
            cr_assert_not(r.is_error, "%s %s", r.code, r.message);
            char *text = harness_reply_json(&r);
            if (first == NULL)
                first = text;
            else {
                cr_expect_str_eq(text, first);
                free(text);
            }
        }
        allot_client_close(clients[i]);
    }
    free(first);
    allot_reply_free(&r);
    expect_final_stock("FLASH", 10, 3);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 1);
}

Test(flashsale, different_carts_racing_for_one_id_leave_exactly_one_winner)
{
    put_location("W1", 0);
    harness_set_stock(cli, "FLASH", "W1", 5000);
    allot_client_t *clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = harness_connect(srv);
    for (int i = 0; i < CLIENTS; i++) {
        uint32_t msgid;
        cr_assert_eq(
            allot_client_send_json(
                clients[i], "reserve",
                harness_json("{'id':'contested','lines':[{'sku':'FLASH','qty':%d}]}", i + 1),
                &msgid),
            0);
    }
    for (int i = 0; i < CLIENTS; i++)
        cr_assert_eq(allot_client_flush(clients[i]), 0);
    allot_reply_t r = {0};
    int winners = 0;
    int64_t winning_qty = -1;
    for (int i = 0; i < CLIENTS; i++) {
        cr_assert_eq(allot_client_recv(clients[i], &r), 0);
        if (r.is_error) {
            cr_expect_str_eq(r.code, "CONFLICT", "%s", r.message);
        } else {
            winners++;
            winning_qty = i + 1;
        }
        allot_client_close(clients[i]);
    }
    allot_reply_free(&r);
    cr_expect_eq(winners, 1);
    expect_final_stock("FLASH", 5000, winning_qty);
    cr_expect_eq(harness_server_info_int(cli, "reservations"), 1);
}
