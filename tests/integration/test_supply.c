/* test_supply.c - future supply through the real allotd: the wire shapes of supply.put / get /
 * list / receive / cancel, errors for bad input with nothing changed, a receipt as a ledger
 * movement with stock.changed and supply.changed events, kill -9 (from the checkpoint and
 * from the WAL) keeping every acknowledged supply write, and reserve with backorder: true
 * holding open supply (wire shapes, errors, kill -9 keeping the holds). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness_reply.h"

#define ETA_MS 1893456000000LL /* 2030-01-01 */
#define DAY_MS 86400000LL

static harness_server_t *srv;
static allot_client_t *cli;

static void up(void)
{
    harness_fixture_up(&srv, &cli);
    harness_put_location(cli, "W1", "'type':'warehouse','lat':52.5,'lon':13.4");
    harness_put_location(cli, "W2", "'type':'warehouse','lat':48.1,'lon':11.6");
}

static void down(void)
{
    harness_fixture_down(&srv, &cli);
}

TestSuite(supply, .init = up, .fini = down, .timeout = 60);

static void put(const char *id, const char *sku, const char *location, int64_t qty, int64_t eta_ms)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "supply.put",
                    harness_json("{'id':'%s','sku':'%s','location':'%s','qty':%lld,'eta_ms':%lld}",
                                 id, sku, location, (long long)qty, (long long)eta_ms),
                    &r);
    allot_reply_free(&r);
}

static void verify_ok(void)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "server.verify", "{}", &r);
    harness_expect_json_at(&r, "ok", "true");
    allot_reply_free(&r);
}

Test(supply, put_get_list_receive_and_cancel_answer_the_documented_shapes)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "supply.put",
                    harness_json("{'id':'PO-1','sku':'A','location':'W1','qty':10,'eta_ms':%lld}",
                                 ETA_MS + DAY_MS),
                    &r);
    harness_expect_json_at(&r, "",
                           harness_json("{'id':'PO-1','sku':'A','location':'W1','qty':10,"
                                        "'received':0,'held':0,'eta_ms':%lld,'state':'open'}",
                                        ETA_MS + DAY_MS));
    put("PO-2", "A", "W2", 5, ETA_MS);
    put("PO-9", "B", "W2", 5, ETA_MS);
    harness_call_ok(cli, "supply.list", "{\"sku\":\"A\"}", &r);
    cr_assert_eq(harness_reply_len(&r, "supplies"), 2);
    harness_expect_str_at(&r, "supplies.0.id", "PO-2");
    harness_expect_str_at(&r, "supplies.1.id", "PO-1");
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-1\",\"qty\":4}", &r);
    cr_assert_eq(harness_reply_int(&r, "received"), 4);
    harness_expect_str_at(&r, "state", "open");
    cr_assert_eq(harness_stock_field(cli, "A", "W1", "on_hand"), 4);
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-1\"}", &r);
    cr_assert_eq(harness_reply_int(&r, "received"), 10);
    harness_expect_str_at(&r, "state", "received");
    cr_assert_eq(harness_stock_field(cli, "A", "W1", "on_hand"), 10);
    harness_call_ok(cli, "supply.cancel", "{\"id\":\"PO-2\"}", &r);
    harness_expect_str_at(&r, "state", "cancelled");
    harness_call_ok(cli, "supply.get", "{\"id\":\"PO-2\"}", &r);
    harness_expect_str_at(&r, "state", "cancelled");
    harness_call_ok(cli, "supply.list", "{\"sku\":\"NONE\"}", &r);
    harness_expect_json_at(&r, "", "{'supplies':[]}");
    allot_reply_free(&r);
    verify_ok();
}

Test(supply, bad_input_is_refused_with_a_clear_error_and_nothing_changes)
{
    allot_reply_t r = {0};
    put("PO-1", "A", "W1", 10, ETA_MS);
    harness_call_error(cli, "supply.put",
                       "{\"id\":\"PO-2\",\"sku\":\"A\",\"location\":\"NOWHERE\",\"qty\":1,"
                       "\"eta_ms\":0}",
                       "NOT_FOUND", &r);
    harness_expect_str_at(&r, "field", "location");
    harness_call_error(cli, "supply.put",
                       "{\"id\":\"PO-2\",\"sku\":\"A\",\"location\":\"W1\",\"qty\":0,\"eta_ms\":0}",
                       "INVALID_ARGUMENT", &r);
    harness_call_error(cli, "supply.put",
                       "{\"id\":\"PO-2\",\"sku\":\"A\",\"location\":\"W1\",\"qty\":1,"
                       "\"eta_ms\":-5}",
                       "INVALID_ARGUMENT", &r);
    harness_call_error(cli, "supply.put", "{\"id\":\"PO-2\",\"sku\":\"A\",\"location\":\"W1\"}",
                       "INVALID_ARGUMENT", &r);
    harness_call_error(cli, "supply.put",
                       harness_json("{'id':'PO-1','sku':'B','location':'W1','qty':10,"
                                    "'eta_ms':%lld}",
                                    ETA_MS),
                       "CONFLICT", &r);
    harness_call_error(cli, "supply.receive", "{\"id\":\"PO-1\",\"qty\":11}", "INVALID_ARGUMENT",
                       &r);
    harness_expect_str_at(&r, "field", "qty");
    harness_call_error(cli, "supply.receive", "{\"id\":\"PO-none\"}", "NOT_FOUND", &r);
    harness_call_error(cli, "supply.receive", "{\"id\":\"PO-1\",\"extra\":1}", "INVALID_ARGUMENT",
                       &r);
    harness_call_error(cli, "supply.get", "{\"id\":\"\"}", "INVALID_ARGUMENT", &r);
    harness_call_error(cli, "supply.list", "{}", "INVALID_ARGUMENT", &r);
    harness_call_ok(cli, "supply.list", "{\"sku\":\"A\"}", &r);
    cr_assert_eq(harness_reply_len(&r, "supplies"), 1);
    harness_expect_json_at(&r, "supplies.0",
                           harness_json("{'id':'PO-1','sku':'A','location':'W1','qty':10,"
                                        "'received':0,'held':0,'eta_ms':%lld,'state':'open'}",
                                        ETA_MS));
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-1\"}", &r);
    harness_call_error(cli, "supply.receive", "{\"id\":\"PO-1\"}", "INVALID_TRANSITION", &r);
    harness_call_error(cli, "supply.cancel", "{\"id\":\"PO-1\"}", "INVALID_TRANSITION", &r);
    harness_call_error(cli, "supply.put",
                       harness_json("{'id':'PO-1','sku':'A','location':'W1','qty':12,"
                                    "'eta_ms':%lld}",
                                    ETA_MS),
                       "INVALID_TRANSITION", &r);
    cr_assert_eq(harness_stock_field(cli, "A", "W1", "on_hand"), 10);
    allot_reply_free(&r);
    verify_ok();
}

Test(supply, a_receipt_is_a_ledger_movement_and_every_change_an_event)
{
    allot_reply_t r = {0};
    put("PO-1", "A", "W1", 10, ETA_MS);
    put("PO-1", "A", "W1", 10, ETA_MS + DAY_MS); /* a delay */
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-1\",\"qty\":3}", &r);
    harness_call_ok(cli, "ledger.get", "{\"sku\":\"A\"}", &r);
    cr_assert_eq(harness_reply_len(&r, "movements"), 1);
    harness_expect_str_at(&r, "movements.0.reason", "supply.receive");
    harness_expect_str_at(&r, "movements.0.ref", "PO-1");
    cr_assert_eq(harness_reply_int(&r, "movements.0.delta"), 3);
    harness_call_ok(cli, "events.read",
                    "{\"types\":[\"supply.changed\",\"stock.changed\"],\"sku\":\"A\"}", &r);
    cr_assert_eq(harness_reply_len(&r, "events"), 4);
    harness_expect_str_at(&r, "events.0.type", "supply.changed");
    harness_expect_str_at(&r, "events.0.cause", "supply.put");
    harness_expect_str_at(&r, "events.1.cause", "supply.delayed");
    cr_assert_eq(harness_reply_int(&r, "events.1.eta_ms"), ETA_MS + DAY_MS);
    harness_expect_str_at(&r, "events.2.cause", "supply.receive");
    cr_assert_eq(harness_reply_int(&r, "events.2.received"), 3);
    harness_expect_str_at(&r, "events.2.state", "open");
    harness_expect_str_at(&r, "events.2.location", "W1");
    cr_assert_eq(harness_reply_int(&r, "events.2.held"), 0);
    cr_assert_eq(harness_reply_int(&r, "events.2.qty"), 10);
    harness_expect_str_at(&r, "events.2.id", "PO-1");
    harness_expect_str_at(&r, "events.3.type", "stock.changed");
    harness_expect_str_at(&r, "events.3.reason", "supply.receive");
    cr_assert_eq(harness_reply_int(&r, "events.3.delta"), 3);
    allot_reply_free(&r);
}

Test(supply, kill_9_keeps_every_acknowledged_supply_write, .timeout = 120)
{
    allot_reply_t r = {0};
    char id[32];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "PO-%02d", i);
        put(id, i % 2 ? "A" : "B", i % 3 ? "W1" : "W2", 10 + i, ETA_MS + i * DAY_MS);
    }
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-01\",\"qty\":2}", &r);
    harness_call_ok(cli, "supply.cancel", "{\"id\":\"PO-02\"}", &r);
    harness_call_ok(cli, "server.checkpoint", "{}", &r); /* some from the checkpoint, */
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-01\"}", &r); /* the rest from the WAL */
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-05\",\"qty\":5}", &r);
    harness_call_ok(cli, "supply.cancel", "{\"id\":\"PO-04\"}", &r);
    put("PO-07", "A", "W2", 7, ETA_MS - DAY_MS); /* redirected, sooner, fewer */
    put("PO-99", "A", "W1", 1, ETA_MS);
    char before_a[8192], before_b[8192];
    harness_call_ok(cli, "supply.list", "{\"sku\":\"A\"}", &r);
    harness_reply_text(&r, before_a, sizeof before_a);
    harness_call_ok(cli, "supply.list", "{\"sku\":\"B\"}", &r);
    harness_reply_text(&r, before_b, sizeof before_b);
    int64_t on_hand = harness_stock_field(cli, "A", "W1", "on_hand");
    cr_assert_eq(on_hand, 11 + 5, "PO-01 (11) and PO-05 (5 of 15) arrived at W1");
    allot_client_close(cli);
    harness_server_kill9(srv);
    harness_server_restart(srv);
    cli = harness_connect(srv);
    char after[8192];
    harness_call_ok(cli, "supply.list", "{\"sku\":\"A\"}", &r);
    cr_assert_str_eq(harness_reply_text(&r, after, sizeof after), before_a);
    harness_call_ok(cli, "supply.list", "{\"sku\":\"B\"}", &r);
    cr_assert_str_eq(harness_reply_text(&r, after, sizeof after), before_b);
    cr_assert_eq(harness_stock_field(cli, "A", "W1", "on_hand"), on_hand);
    harness_call_ok(cli, "supply.get", "{\"id\":\"PO-99\"}", &r);
    harness_expect_str_at(&r, "state", "open");
    /* and it goes on from there */
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-05\"}", &r);
    harness_expect_str_at(&r, "state", "received");
    cr_assert_eq(harness_reply_int(&r, "received"), 15);
    allot_reply_free(&r);
    verify_ok();
}

/* ---- backorders ----------------------------------------------------------------------------- */

/* W1 has 5 of A; PO-2 (4, at ETA_MS) comes before PO-1 (10, a day later). */
static void backorder_supplies(void)
{
    harness_set_stock(cli, "A", "W1", 5);
    put("PO-1", "A", "W2", 10, ETA_MS + DAY_MS);
    put("PO-2", "A", "W1", 4, ETA_MS);
}

static int64_t held(const char *supply)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "supply.get", harness_json("{'id':'%s'}", supply), &r);
    int64_t value = harness_reply_int(&r, "held");
    allot_reply_free(&r);
    return value;
}

Test(supply, reserve_with_backorder_holds_open_supply_earliest_first)
{
    backorder_supplies();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    "{\"id\":\"R1\",\"lines\":[{\"sku\":\"A\",\"qty\":12,\"backorder\":true}]}",
                    &r);
    harness_expect_json_at(
        &r, "lines",
        harness_json("[{'sku':'A','qty':12,'allocations':[{'location':'W1','qty':5},"
                     "{'supply':'PO-2','qty':4,'eta_ms':%lld},{'supply':'PO-1','qty':3,"
                     "'eta_ms':%lld}]}]",
                     ETA_MS, ETA_MS + DAY_MS));
    cr_assert_eq(held("PO-2"), 4);
    cr_assert_eq(held("PO-1"), 3);
    cr_assert_eq(harness_stock_field(cli, "A", "W1", "reserved"), 5);
    /* the retry answers the same; reservation.get too */
    char first[4096], again[4096];
    harness_reply_text(&r, first, sizeof first);
    harness_call_ok(cli, "reserve",
                    "{\"id\":\"R1\",\"lines\":[{\"sku\":\"A\",\"qty\":12,\"backorder\":true}]}",
                    &r);
    cr_assert_str_eq(harness_reply_text(&r, again, sizeof again), first);
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R1\"}", &r);
    harness_expect_str_at(&r, "lines.0.allocations.1.supply", "PO-2");
    /* more than stock and open supply: refused, with what could be held */
    harness_call_error(cli, "reserve",
                       "{\"id\":\"R2\",\"lines\":[{\"sku\":\"A\",\"qty\":8,\"backorder\":true}]}",
                       "INSUFFICIENT_STOCK", &r);
    cr_assert_eq(held("PO-1"), 3);
    /* without backorder a line never holds supply */
    harness_call_error(cli, "reserve", "{\"id\":\"R2\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}",
                       "INSUFFICIENT_STOCK", &r);
    harness_call_ok(cli, "reservation.release", "{\"id\":\"R1\"}", &r);
    cr_assert_eq(held("PO-2") + held("PO-1"), 0);
    allot_reply_free(&r);
    verify_ok();
}

Test(supply, reserve_refuses_a_bad_backorder)
{
    backorder_supplies();
    allot_reply_t r = {0};
    harness_call_error(
        cli, "reserve",
        "{\"id\":\"R1\",\"lines\":[{\"sku\":\"A\",\"qty\":6,\"backorder\":\"yes\"}]}",
        "INVALID_ARGUMENT", &r);
    cr_assert_eq(held("PO-2"), 0);
    allot_reply_free(&r);
    verify_ok();
}

Test(supply, kill_9_keeps_backorder_holds, .timeout = 120)
{
    backorder_supplies();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    "{\"id\":\"R1\",\"lines\":[{\"sku\":\"A\",\"qty\":7,\"backorder\":true}]}", &r);
    harness_call_ok(cli, "server.checkpoint", "{}", &r); /* R1 from the checkpoint, */
    harness_call_ok(cli, "reserve",                      /* R2 from the WAL */
                    "{\"id\":\"R2\",\"lines\":[{\"sku\":\"A\",\"qty\":5,\"backorder\":true}]}", &r);
    char before_1[4096], before_2[4096], after[4096];
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R1\"}", &r);
    harness_reply_text(&r, before_1, sizeof before_1);
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R2\"}", &r);
    harness_reply_text(&r, before_2, sizeof before_2);
    allot_client_close(cli);
    harness_server_kill9(srv);
    harness_server_restart(srv);
    cli = harness_connect(srv);
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R1\"}", &r);
    cr_assert_str_eq(harness_reply_text(&r, after, sizeof after), before_1);
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R2\"}", &r);
    cr_assert_str_eq(harness_reply_text(&r, after, sizeof after), before_2);
    cr_assert_eq(held("PO-2"), 4);
    cr_assert_eq(held("PO-1"), 3);
    verify_ok();
    /* and it goes on from there: R1's units go back to their supply */
    harness_call_ok(cli, "reservation.release", "{\"id\":\"R1\"}", &r);
    cr_assert_eq(held("PO-2"), 2);
    cr_assert_eq(held("PO-1"), 3);
    allot_reply_free(&r);
    verify_ok();
}

/* ---- orders with backordered lines ----------------------------------------------------------- */

static void order_text(const char *id, char *buf, size_t bytes)
{
    allot_reply_t r = {0};
    harness_call_ok(cli, "order.get", harness_json("{'id':'%s'}", id), &r);
    harness_reply_text(&r, buf, bytes);
    allot_reply_free(&r);
}

Test(supply, an_order_from_a_backorder_hold_shows_its_backordered_lines)
{
    backorder_supplies();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    "{\"id\":\"R1\",\"lines\":[{\"sku\":\"A\",\"qty\":12,\"backorder\":true}]}",
                    &r);
    harness_call_ok(cli, "order.create", "{\"id\":\"O1\",\"reservation\":\"R1\"}", &r);
    harness_expect_json_at(
        &r, "lines",
        harness_json("[{'sku':'A','qty':12,'backordered':7,'backorders':[{'supply':'PO-2','qty':4,"
                     "'eta_ms':%lld},{'supply':'PO-1','qty':3,'eta_ms':%lld}]}]",
                     ETA_MS, ETA_MS + DAY_MS));
    harness_expect_json_at(&r, "shipments.0.lines", "[{'sku':'A','qty':5}]");
    cr_assert_eq(harness_reply_len(&r, "shipments"), 1, "no shipment for backordered units");
    harness_call_ok(cli, "order.get", "{\"id\":\"O1\"}", &r);
    cr_assert_eq(harness_reply_int(&r, "lines.0.backordered"), 7);
    cr_assert_eq(held("PO-2"), 4, "the order holds them now");
    cr_assert_eq(held("PO-1"), 3);
    cr_assert_eq(harness_stock_field(cli, "A", "W1", "allocated"), 5);
    verify_ok();
    /* a delay shows in the order's eta */
    put("PO-1", "A", "W2", 10, ETA_MS + 3 * DAY_MS);
    harness_call_ok(cli, "order.get", "{\"id\":\"O1\"}", &r);
    cr_assert_eq(harness_reply_int(&r, "lines.0.backorders.1.eta_ms"), ETA_MS + 3 * DAY_MS);
    /* cancel gives them back to their supplies */
    harness_call_ok(cli, "order.cancel", "{\"id\":\"O1\"}", &r);
    harness_expect_json_at(&r, "lines", "[{'sku':'A','qty':12}]");
    cr_assert_eq(held("PO-2") + held("PO-1"), 0);
    allot_reply_free(&r);
    verify_ok();
}

Test(supply, kill_9_keeps_orders_with_backordered_lines, .timeout = 120)
{
    backorder_supplies();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve",
                    "{\"id\":\"R1\",\"lines\":[{\"sku\":\"A\",\"qty\":7,\"backorder\":true}]}", &r);
    harness_call_ok(cli, "order.create", "{\"id\":\"O1\",\"reservation\":\"R1\"}", &r);
    harness_call_ok(cli, "server.checkpoint", "{}", &r); /* O1 from the checkpoint, */
    harness_call_ok(cli, "reserve",                      /* O2 from the WAL */
                    "{\"id\":\"R2\",\"lines\":[{\"sku\":\"A\",\"qty\":5,\"backorder\":true}]}", &r);
    harness_call_ok(cli, "order.create", "{\"id\":\"O2\",\"reservation\":\"R2\"}", &r);
    char before_1[4096], before_2[4096], after[4096];
    order_text("O1", before_1, sizeof before_1);
    order_text("O2", before_2, sizeof before_2);
    cr_assert_not_null(strstr(before_2, "backordered"), "%s", before_2);
    allot_client_close(cli);
    harness_server_kill9(srv);
    harness_server_restart(srv);
    cli = harness_connect(srv);
    order_text("O1", after, sizeof after);
    cr_assert_str_eq(after, before_1);
    order_text("O2", after, sizeof after);
    cr_assert_str_eq(after, before_2);
    cr_assert_eq(held("PO-2"), 4);
    cr_assert_eq(held("PO-1"), 3);
    verify_ok();
    harness_call_ok(cli, "order.cancel", "{\"id\":\"O2\"}", &r);
    cr_assert_eq(held("PO-1"), 0);
    allot_reply_free(&r);
    verify_ok();
}

Test(supply, a_receipt_serves_the_oldest_order_then_holds_and_order_get_shows_the_shipment,
     .timeout = 120)
{
    backorder_supplies();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", /* takes the stock */
                    "{\"id\":\"R0\",\"lines\":[{\"sku\":\"A\",\"qty\":5}]}", &r);
    harness_call_ok(cli, "reserve",
                    "{\"id\":\"R1\",\"lines\":[{\"sku\":\"A\",\"qty\":3,\"backorder\":true}]}", &r);
    harness_call_ok(cli, "reserve",
                    "{\"id\":\"R2\",\"lines\":[{\"sku\":\"A\",\"qty\":1,\"backorder\":true}]}", &r);
    harness_call_ok(cli, "order.create", "{\"id\":\"O1\",\"reservation\":\"R1\"}", &r);
    cr_assert_eq(harness_reply_len(&r, "shipments"), 0, "everything backordered");
    harness_call_ok(cli, "server.checkpoint", "{}", &r); /* the order from the checkpoint */
    /* the first delivery: 2 of PO-2's 4 units; O1 is older than the live hold R2 */
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-2\",\"qty\":2}", &r);
    cr_assert_eq(harness_reply_int(&r, "held"), 2);
    harness_call_ok(cli, "order.get", "{\"id\":\"O1\"}", &r);
    harness_expect_json_at(&r, "shipments",
                           "[{'id':'S1','location':'W1','state':'allocated',"
                           "'lines':[{'sku':'A','qty':2}]}]");
    harness_expect_json_at(
        &r, "lines",
        harness_json("[{'sku':'A','qty':3,'backordered':1,'backorders':[{'supply':'PO-2','qty':1,"
                     "'eta_ms':%lld}]}]",
                     ETA_MS));
    harness_expect_str_at(&r, "history.1.event", "supply.receive");
    harness_expect_str_at(&r, "history.1.supply", "PO-2");
    harness_expect_str_at(&r, "history.1.shipment", "S1");
    /* the second delivery: O1's last unit, then R2's, then one unit of plain stock */
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-2\"}", &r);
    harness_expect_str_at(&r, "state", "received");
    cr_assert_eq(harness_reply_int(&r, "held"), 0);
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R2\"}", &r);
    harness_expect_json_at(&r, "lines.0.allocations", "[{'location':'W1','qty':1}]");
    cr_assert_eq(harness_stock_field(cli, "A", "W1", "available"), 0, "4 arrived: 3 + 1 served");
    char before_order[4096], before_hold[4096], after[4096];
    order_text("O1", before_order, sizeof before_order);
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R2\"}", &r);
    harness_reply_text(&r, before_hold, sizeof before_hold);
    cr_assert_not_null(strstr(before_order, "\"S2\""), "%s", before_order);
    verify_ok();
    allot_client_close(cli); /* the receipts from the WAL */
    harness_server_kill9(srv);
    harness_server_restart(srv);
    cli = harness_connect(srv);
    order_text("O1", after, sizeof after);
    cr_assert_str_eq(after, before_order);
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R2\"}", &r);
    cr_assert_str_eq(harness_reply_text(&r, after, sizeof after), before_hold);
    cr_assert_eq(harness_stock_field(cli, "A", "W1", "reserved"), 6);
    cr_assert_eq(harness_stock_field(cli, "A", "W1", "allocated"), 3);
    allot_reply_free(&r);
    verify_ok();
}

/* ---- supply.cancel moves or releases the backorders on it ---------------------------------- */

Test(supply, cancel_moves_backorders_to_the_next_supply_releases_the_rest_and_kill_9_keeps_it,
     .timeout = 120)
{
    backorder_supplies();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", /* takes the stock */
                    "{\"id\":\"R0\",\"lines\":[{\"sku\":\"A\",\"qty\":5}]}", &r);
    harness_call_ok(cli, "reserve", /* 3 on PO-2 */
                    "{\"id\":\"R1\",\"lines\":[{\"sku\":\"A\",\"qty\":3,\"backorder\":true}]}", &r);
    harness_call_ok(cli, "order.create", "{\"id\":\"O1\",\"reservation\":\"R1\"}", &r);
    harness_call_ok(cli, "reserve", /* PO-2's last unit */
                    "{\"id\":\"R2\",\"lines\":[{\"sku\":\"A\",\"qty\":1,\"backorder\":true}]}", &r);
    harness_call_ok(cli, "reserve", /* 8 of PO-1's 10 */
                    "{\"id\":\"R3\",\"lines\":[{\"sku\":\"A\",\"qty\":8,\"backorder\":true}]}", &r);
    harness_call_ok(cli, "server.checkpoint", "{}", &r); /* all that from the checkpoint */
    harness_call_ok(cli, "supply.cancel", "{\"id\":\"PO-2\"}", &r);
    harness_expect_str_at(&r, "state", "cancelled");
    cr_assert_eq(harness_reply_int(&r, "held"), 0);
    cr_assert_eq(held("PO-1"), 10, "the order's units moved to what PO-1 had free");
    harness_call_ok(cli, "order.get", "{\"id\":\"O1\"}", &r);
    harness_expect_str_at(&r, "state", "created");
    harness_expect_json_at(
        &r, "lines",
        harness_json("[{'sku':'A','qty':2,'backordered':2,'backorders':[{'supply':'PO-1','qty':2,"
                     "'eta_ms':%lld}]}]",
                     ETA_MS + DAY_MS));
    harness_call_error(cli, "reservation.get", "{\"id\":\"R2\"}", "NOT_FOUND", &r); /* released */
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R3\"}", &r);
    harness_expect_str_at(&r, "lines.0.allocations.0.supply", "PO-1");
    char before_order[4096], before_hold[4096], after[4096];
    order_text("O1", before_order, sizeof before_order);
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R3\"}", &r);
    harness_reply_text(&r, before_hold, sizeof before_hold);
    verify_ok();
    allot_client_close(cli); /* the cancel from the WAL */
    harness_server_kill9(srv);
    harness_server_restart(srv);
    cli = harness_connect(srv);
    order_text("O1", after, sizeof after);
    cr_assert_str_eq(after, before_order);
    harness_call_ok(cli, "reservation.get", "{\"id\":\"R3\"}", &r);
    cr_assert_str_eq(harness_reply_text(&r, after, sizeof after), before_hold);
    harness_call_error(cli, "reservation.get", "{\"id\":\"R2\"}", "NOT_FOUND", &r);
    cr_assert_eq(held("PO-2"), 0);
    cr_assert_eq(held("PO-1"), 10);
    verify_ok();
    /* and it goes on from there: PO-1 serves the moved units */
    harness_call_ok(cli, "supply.receive", "{\"id\":\"PO-1\"}", &r);
    harness_call_ok(cli, "order.get", "{\"id\":\"O1\"}", &r);
    harness_expect_json_at(&r, "shipments.0.lines", "[{'sku':'A','qty':2}]");
    allot_reply_free(&r);
    verify_ok();
}

Test(supply, delay_moves_backorders_to_supply_due_earlier_and_kill_9_keeps_it, .timeout = 120)
{
    backorder_supplies();
    allot_reply_t r = {0};
    harness_call_ok(cli, "reserve", /* takes the stock */
                    "{\"id\":\"R0\",\"lines\":[{\"sku\":\"A\",\"qty\":5}]}", &r);
    harness_call_ok(cli, "reserve", /* 3 on PO-2 */
                    "{\"id\":\"R1\",\"lines\":[{\"sku\":\"A\",\"qty\":3,\"backorder\":true}]}", &r);
    harness_call_ok(cli, "order.create", "{\"id\":\"O1\",\"reservation\":\"R1\"}", &r);
    put("PO-2", "A", "W1", 4, ETA_MS + 2 * DAY_MS); /* now after PO-1 */
    cr_assert_eq(held("PO-2"), 0);
    cr_assert_eq(held("PO-1"), 3, "the order's units moved to the supply due earlier");
    char before[4096], after[4096];
    order_text("O1", before, sizeof before);
    allot_client_close(cli); /* the delay from the WAL */
    harness_server_kill9(srv);
    harness_server_restart(srv);
    cli = harness_connect(srv);
    order_text("O1", after, sizeof after);
    cr_assert_str_eq(after, before);
    cr_assert_eq(held("PO-1"), 3);
    harness_call_ok(cli, "order.get", "{\"id\":\"O1\"}", &r);
    harness_expect_str_at(&r, "lines.0.backorders.0.supply", "PO-1");
    allot_reply_free(&r);
    verify_ok();
}
