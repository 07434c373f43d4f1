/* test_fairness.c - flash-sale fairness through the real allotd: a per-customer limit holds
 * across concurrent connections and comes back on release and cancel; a queue admits in join
 * order, keeps its tickets across kill -9, and with limit 1 sells exactly N units to the first N
 * customers. No timing assumptions: the tests poll until the queue has admitted everyone. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness_reply.h"

static harness_server_t *srv;
static allot_client_t *cli;

static void up(void)
{
    harness_fixture_up(&srv, &cli);
    harness_put_location(cli, "W", "'type':'warehouse','lat':0,'lon':0");
}

static void down(void)
{
    harness_fixture_down(&srv, &cli);
}

TestSuite(fairness, .init = up, .fini = down, .timeout = 120);

static void verify_ok(void)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "server.verify", "{}", &r);
    harness_expect_json_at(&r, "ok", "true");
    allot_reply_free(&r);
}

/* ---- the limit across connections ---------------------------------------------------------- */

enum { RACERS = 8, TRIES = 6 };

typedef struct racer {
    allot_client_t *c;
    int index;
    int ok, limited, other;
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *r = arg;
    allot_reply_t reply = {0};
    char params[256];
    for (int i = 0; i < TRIES; i++) {
        snprintf(params, sizeof params,
                 "{\"id\":\"alice-%d-%d\",\"customer\":\"alice\",\"lines\":[{\"sku\":\"HOT\","
                 "\"qty\":1}]}",
                 r->index, i);
        if (allot_client_call_json(r->c, "reserve", params, &reply) != 0)
            r->other++;
        else if (!reply.is_error)
            r->ok++;
        else if (strcmp(reply.code, "LIMIT_EXCEEDED") == 0)
            r->limited++;
        else
            r->other++;
    }
    allot_reply_free(&reply);
    return NULL;
}

Test(fairness, a_customer_limit_holds_across_concurrent_connections_and_comes_back)
{
    harness_set_stock(cli, "HOT", "W", 1000);
    allot_reply_t r = {0};
    harness_call_ok(cli, "sku.put", "{\"sku\":\"HOT\",\"max_per_customer\":3}", &r);
    racer_t racers[RACERS];
    pthread_t threads[RACERS];
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (racer_t){.c = harness_connect(srv), .index = i};
        cr_assert_eq(pthread_create(&threads[i], NULL, racer_main, &racers[i]), 0);
    }
    int ok = 0, limited = 0, other = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(threads[i], NULL);
        allot_client_close(racers[i].c);
        ok += racers[i].ok;
        limited += racers[i].limited;
        other += racers[i].other;
    }
    cr_assert_eq(ok, 3, "exactly the limit is held");
    cr_assert_eq(limited, RACERS * TRIES - 3);
    cr_assert_eq(other, 0);
    cr_assert_eq(harness_stock_field(cli, "HOT", NULL, "reserved"), 3);
    harness_call_error(
        cli, "reserve",
        "{\"id\":\"x\",\"customer\":\"alice\",\"lines\":[{\"sku\":\"HOT\",\"qty\":1}]}",
        "LIMIT_EXCEEDED", &r);
    harness_expect_str_at(&r, "sku", "HOT");
    cr_assert_eq(harness_reply_int(&r, "limit"), 3);
    cr_assert_eq(harness_reply_int(&r, "held"), 3);
    harness_call_ok(cli, "reserve",
                    "{\"id\":\"b1\",\"customer\":\"bob\",\"lines\":[{\"sku\":\"HOT\",\"qty\":3}]}",
                    &r);
    /* find one of alice's holds, release it, and the allowance comes back */
    char id[64];
    bool released = false;
    for (int i = 0; i < RACERS && !released; i++)
        for (int k = 0; k < TRIES && !released; k++) {
            snprintf(id, sizeof id, "{\"id\":\"alice-%d-%d\"}", i, k);
            harness_call_json(cli, "reservation.get", id, &r);
            if (!r.is_error) {
                harness_call_ok(cli, "reservation.release", id, &r);
                released = true;
            }
        }
    cr_assert(released);
    harness_call_ok(
        cli, "reserve",
        "{\"id\":\"a2\",\"customer\":\"alice\",\"lines\":[{\"sku\":\"HOT\",\"qty\":1}]}", &r);
    harness_call_ok(cli, "order.create", "{\"id\":\"o1\",\"reservation\":\"a2\"}", &r);
    harness_expect_str_at(&r, "customer", "alice");
    harness_call_error(
        cli, "reserve",
        "{\"id\":\"a3\",\"customer\":\"alice\",\"lines\":[{\"sku\":\"HOT\",\"qty\":1}]}",
        "LIMIT_EXCEEDED", &r);
    harness_call_ok(cli, "order.cancel", "{\"id\":\"o1\"}", &r);
    harness_call_ok(
        cli, "reserve",
        "{\"id\":\"a3\",\"customer\":\"alice\",\"lines\":[{\"sku\":\"HOT\",\"qty\":1}]}", &r);
    verify_ok();
    allot_reply_free(&r);
}

/* ---- the queue ----------------------------------------------------------------------------- */

static void join(int i, char *ticket, size_t bytes)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "queue.join", harness_json("{'sku':'HOT','customer':'c%04d'}", i), &r);
    const msgpack_object *t = harness_reply_at(&r, "ticket");
    cr_assert(t != NULL && t->type == MSGPACK_OBJECT_STR);
    cr_assert_lt(t->via.str.size, bytes);
    memcpy(ticket, t->via.str.ptr, t->via.str.size);
    ticket[t->via.str.size] = '\0';
    allot_reply_free(&r);
}

/* queue.status: the position (0 once admitted); the token copied into token when admitted. */
static int64_t status(const char *ticket, char *token, size_t bytes)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "queue.status", harness_json("{'ticket':'%s'}", ticket), &r);
    int64_t position = harness_reply_int(&r, "position");
    const msgpack_object *t = harness_reply_at(&r, "token");
    if (token != NULL) {
        token[0] = '\0';
        if (t != NULL && t->type == MSGPACK_OBJECT_STR && t->via.str.size < bytes) {
            memcpy(token, t->via.str.ptr, t->via.str.size);
            token[t->via.str.size] = '\0';
        }
    }
    allot_reply_free(&r);
    return position;
}

enum { QUEUED_CUSTOMERS = 300 };
static char tickets[QUEUED_CUSTOMERS][32];

Test(fairness, queue_tickets_and_positions_survive_kill_9)
{
    harness_set_stock(cli, "HOT", "W", 10);
    allot_reply_t r = {0};
    harness_call_ok(cli, "sku.put",
                    "{\"sku\":\"HOT\",\"queue\":{\"rate_per_s\":1,\"token_ttl_s\":3600}}", &r);
    for (int i = 0; i < QUEUED_CUSTOMERS / 2; i++)
        join(i, tickets[i], sizeof tickets[i]);
    harness_call_ok(cli, "server.checkpoint", "{}", &r); /* half from the checkpoint, */
    for (int i = QUEUED_CUSTOMERS / 2; i < QUEUED_CUSTOMERS; i++)
        join(i, tickets[i], sizeof tickets[i]); /* half from the WAL */
    harness_call_error(
        cli, "reserve",
        "{\"id\":\"x\",\"customer\":\"c0000\",\"lines\":[{\"sku\":\"HOT\",\"qty\":1}]}", "QUEUED",
        &r);
    cr_assert_geq(harness_reply_int(&r, "retry_after_ms"), 1);
    allot_client_close(cli);
    harness_server_kill9(srv);
    harness_server_restart(srv);
    cli = harness_connect(srv);
    /* admitted ones form a prefix of the join order; the rest wait in it, positions 1, 2, ...
     * (the queue keeps admitting one a second while this reads: a position may repeat the one
     * before it once per admission, never skip or go back) */
    int first_waiting = -1;
    int64_t previous = 0, repeats = 0;
    for (int i = 0; i < QUEUED_CUSTOMERS; i++) {
        int64_t position = status(tickets[i], NULL, 0);
        if (position == 0) {
            cr_assert_eq(first_waiting, -1, "ticket %d admitted after a waiting one", i);
            continue;
        }
        if (first_waiting < 0) {
            first_waiting = i;
            cr_assert_leq(position, 2, "the first waiting ticket is next (or one admission on)");
        } else {
            cr_assert(position == previous + 1 || position == previous,
                      "ticket %d: %lld after %lld", i, (long long)position, (long long)previous);
            repeats += position == previous;
        }
        previous = position;
    }
    cr_assert_geq(first_waiting, 0, "at one per second, most still wait");
    cr_assert_lt(repeats, QUEUED_CUSTOMERS / 10, "positions held their order");
    char again[32];
    join(QUEUED_CUSTOMERS - 1, again, sizeof again);
    cr_assert_str_eq(again, tickets[QUEUED_CUSTOMERS - 1], "joining again: the same ticket");
    verify_ok();
    allot_reply_free(&r);
}

enum { UNITS = 20, BUYERS = 60 };

Test(fairness, a_queued_sale_with_limit_one_sells_n_units_to_the_first_n_in_join_order)
{
    harness_set_stock(cli, "HOT", "W", UNITS);
    allot_reply_t r = {0};
    harness_call_ok(cli, "sku.put",
                    "{\"sku\":\"HOT\",\"max_per_customer\":1,"
                    "\"queue\":{\"rate_per_s\":40,\"token_ttl_s\":600}}",
                    &r);
    for (int i = 0; i < BUYERS; i++)
        join(i, tickets[i], sizeof tickets[i]);
    int served = 0, sold = 0;
    bool bought[BUYERS] = {false};
    char token[64];
    while (served < BUYERS) {
        int64_t position = status(tickets[served], token, sizeof token);
        if (position > 0) {
            struct timespec pause = {0, 20 * 1000 * 1000};
            nanosleep(&pause, NULL); /* poll with a pause; admission runs on the server's clock */
            continue;
        }
        cr_assert_neq(token[0], '\0', "admitted with a token");
        const char *params = harness_json("{'id':'cart-%d','customer':'c%04d','token':'%s',"
                                          "'lines':[{'sku':'HOT','qty':1}]}",
                                          served, served, token);
        harness_call_json(cli, "reserve", params, &r);
        if (!r.is_error) {
            bought[served] = true;
            sold++;
            harness_call_ok(
                cli, "order.create",
                harness_json("{'id':'order-%d','reservation':'cart-%d'}", served, served), &r);
        } else {
            cr_assert_str_eq(r.code, "INSUFFICIENT_STOCK", "customer %d: %s", served, r.message);
        }
        served++;
    }
    cr_assert_eq(sold, UNITS, "exactly N sold");
    for (int i = 0; i < BUYERS; i++)
        cr_assert_eq(bought[i], i < UNITS, "customer %d (join order)", i);
    /* a buyer who queues again and is admitted still cannot take a second unit */
    harness_set_stock(cli, "HOT", "W", UNITS + 5);
    char second[32];
    join(0, second, sizeof second);
    cr_assert_str_neq(second, tickets[0], "a used ticket: back of the queue");
    while (status(second, token, sizeof token) > 0) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    harness_call_error(cli, "reserve",
                       harness_json("{'id':'again','customer':'c0000','token':'%s',"
                                    "'lines':[{'sku':'HOT','qty':1}]}",
                                    token),
                       "LIMIT_EXCEEDED", &r);
    cr_assert_eq(harness_stock_field(cli, "HOT", NULL, "allocated"), UNITS);
    verify_ok();
    allot_reply_free(&r);
}
