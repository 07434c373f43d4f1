/* test_crash.c - kill -9 at random moments under a pipelined write load; after every restart each
 * acknowledged write is present, nothing unacknowledged is half-applied and the stock
 * invariants hold. After one kill in six the stopped server's files are damaged first (the
 * newest WAL segment deleted, a block of a segment zeroed, a segment truncated, a bit of a
 * state.lmdb record flipped): allotd then either starts with every acknowledged write or
 * refuses to start naming what is damaged (and the undamaged copy is put back); it never
 * starts with less. Future supply takes part: supplies of SUP at L1 are put, delayed, received
 * in parts and cancelled; after each restart every acknowledged supply write is there and
 * SUP's on_hand is exactly what the supplies received. Backorders take part: a third of the
 * reserves also hold units of BO (no stock) with backorder: true against three large open
 * supplies of BO, and some holds of BO alone become orders (bo-<n>, some then cancelled) that
 * keep those units backordered; after each restart every acknowledged order step is there and
 * the supplies' held is exactly what the live holds hold of them plus what those orders have
 * backordered (and server.verify agrees). Small supplies of BO (BX-<n>) that come first are put
 * and, once holds and orders wait on them, cancelled: their units move to the large ones in the
 * cancel's record; after each restart a cancelled one holds nothing and the sum above holds.
 * ALLOT_CRASH_KILLS=N sets the number of kills (default 100), ALLOT_CRASH_SEED the random seed
 * (printed, so a failure can be replayed). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SKUS               6
#define LOCS               3
#define ON_HAND_START      1000000
#define OPS_PER_ROUND_MAX  400
#define RESERVATIONS_MAX   200000
#define ADJUSTS_MAX        400000
#define LOCATIONS_MAX      20000
#define KILLS_DEFAULT      100
#define ORDERS_MAX         20000
#define ORDER_SKUS         3       /* OS0..OS2: stock for orders, apart from the S* model */
#define SUPPLIES_MAX       20000   /* P-<n>: supplies of SUP at L1 */
#define BACKORDER_SUPPLIES 3       /* B-<n>: supplies of BO at L1, never received or cancelled */
#define BACKORDER_QTY      2000000 /* each: more than the reserves can take */
#define BO_ORDERS_MAX      20000   /* bo-<n>: orders from holds of BO alone */
#define BX_MAX             20000   /* BX-<n>: small early supplies of BO, cancelled while held */
#define BX_OPEN_MAX        8       /* of them open at once */
#define BX_QTY             30

/* ---- the model: what the test knows was acknowledged --------------------------------------- */

typedef enum {
    R_UNUSED,
    R_SENT,         /* reserve sent, no reply: may or may not exist */
    R_ACTIVE,       /* acknowledged */
    R_RELEASE_SENT, /* active, release sent without reply */
    R_RELEASED,     /* release acknowledged */
    R_GONE,         /* never applied (error reply, or lost unacknowledged) */
} rstate_t;

typedef struct reservation {
    rstate_t state;
    uint8_t round_released; /* checked again after the restart following the release */
    bool bo_only;           /* of backordered BO alone: an order may take it (bo-<n>) */
} reservation_t;

typedef enum {
    OP_ADJUST,
    OP_RESERVE,
    OP_RELEASE,
    OP_SET,
    OP_LOCATION,
    OP_CHECKPOINT,
    OP_ORDER,
    OP_SUPPLY,
    OP_BO_ORDER,
    OP_BX
} op_kind_t;

/* An order's progress: each step is one transition, in this order. */
enum {
    STEP_NONE,
    STEP_CREATED,
    STEP_PAID,
    STEP_RELEASED,
    STEP_SHIPPED,
    STEP_DELIVERED,
    STEP_GONE = -1 /* creation never acknowledged and not applied: the id is not reused */
};

typedef struct order {
    int acked; /* last step acknowledged */
    int sent;  /* last step sent (== acked when nothing is in flight) */
} order_t;

/* An order from a backorder hold: created (its units stay backordered), then maybe cancelled. */
enum { BO_NONE, BO_CREATED, BO_CANCELLED, BO_GONE = -1 };

typedef struct bo_order {
    int acked, sent; /* BO_*, as order_t */
    int reservation; /* the hold it took */
} bo_order_t;

/* A supply's state as acknowledged, and the one write of it in flight (at most one). */
enum { SUP_NONE, SUP_OPEN, SUP_RECEIVED, SUP_CANCELLED, SUP_GONE, SUP_EVICTED };
enum { SUP_SENT_NONE, SUP_SENT_PUT, SUP_SENT_DELAY, SUP_SENT_RECEIVE, SUP_SENT_CANCEL };

typedef struct supply {
    int state;        /* SUP_*: acknowledged */
    int sent;         /* SUP_SENT_*: the write without a reply yet */
    int qty;          /* total expected */
    int64_t received; /* acknowledged */
    int sent_qty;     /* the receipt in flight */
    int64_t eta_ms, sent_eta_ms;
} supply_t;

typedef struct op {
    op_kind_t kind;
    int index; /* adjust / reservation / set value / location number */
    bool answered;
} op_t;

typedef struct adjust {
    int sku, loc;
    int delta;
    bool acked; /* false: sent without reply (resolved after the restart) */
} adjust_t;

static struct {
    int64_t on_hand[SKUS][LOCS];
    reservation_t *reservations;
    int reservation_count;
    adjust_t *adjusts;
    int adjust_count;
    int adjust_resolved;         /* adjusts before this index are settled in on_hand */
    int64_t set_acked, set_sent; /* stock.set of SET@L0: values 1, 2, ... */
    uint8_t *locations;          /* per X<n>: 1 sent, 2 acknowledged, 3 refused */
    int locations_sent;
    int checkpoints_acked;
    int64_t acked_writes;
    order_t *orders;
    int order_count;
    supply_t *supplies;
    int supply_count;
    bo_order_t *bo_orders;
    int bo_order_count;
    bo_order_t *bx; /* BX-<n>: BO_NONE, BO_CREATED (open), BO_CANCELLED, BO_GONE as orders */
    int bx_count;
} m;

static unsigned rng_state;

static unsigned rnd(unsigned n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return ((rng_state >> 8) & 0xffffffu) % n;
}

/* ---- reply helpers ------------------------------------------------------------------------- */

static int64_t map_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = allot_object_map_get(map, key);
    cr_assert(v != NULL && (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                            v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER),
              "no integer %s", key);
    return v->via.i64;
}

static int str_index(const msgpack_object *o, const char *prefix, int count)
{
    cr_assert(o != NULL && o->type == MSGPACK_OBJECT_STR);
    size_t n = strlen(prefix);
    cr_assert(o->via.str.size > n && memcmp(o->via.str.ptr, prefix, n) == 0);
    int value = atoi(o->via.str.ptr + n); /* the digits run to the end of the str */
    cr_assert(value >= 0 && value < count);
    return value;
}

/* ---- the workload ------------------------------------------------------------------------- */

static uint32_t last_msgid;

static void send_json(allot_client_t *c, const char *method, const char *params)
{
    cr_assert_eq(allot_client_send_json(c, method, params, &last_msgid), 0, "send: %s",
                 allot_client_last_error(c));
}

static int active_pick(void)
{
    for (int tries = 0; tries < 8 && m.reservation_count > 0; tries++) {
        int i = (int)rnd((unsigned)m.reservation_count);
        if (m.reservations[i].state == R_ACTIVE)
            return i;
    }
    return -1;
}

/* An order with nothing in flight that can take its next step, or -1. */
static int order_pick(void)
{
    for (int tries = 0; tries < 8 && m.order_count > 0; tries++) {
        int i = (int)rnd((unsigned)m.order_count);
        order_t *o = &m.orders[i];
        if (o->acked == o->sent && o->acked >= STEP_CREATED && o->acked < STEP_DELIVERED)
            return i;
    }
    return -1;
}

/* Create an order from lines, or move one a step on (pay, release, ship, deliver). */
static void order_send(allot_client_t *c, op_t *op)
{
    char params[256];
    int i = rnd(3) == 0 ? order_pick() : -1;
    if (i < 0) {
        i = m.order_count++;
        snprintf(params, sizeof(params),
                 "{\"id\":\"o-%d\",\"customer\":\"crash\",\"lines\":[{\"sku\":\"OS%u\","
                 "\"qty\":%u}]}",
                 i, rnd(ORDER_SKUS), 1 + rnd(3));
        m.orders[i].sent = STEP_CREATED;
        send_json(c, "order.create", params);
    } else {
        order_t *o = &m.orders[i];
        o->sent = o->acked + 1;
        static const char *const methods[] = {
            NULL, NULL, "order.pay", "order.release", "shipment.ship", "shipment.deliver"};
        if (o->sent == STEP_PAID)
            snprintf(params, sizeof(params), "{\"id\":\"o-%d\",\"status\":\"authorized\"}", i);
        else if (o->sent == STEP_RELEASED)
            snprintf(params, sizeof(params), "{\"id\":\"o-%d\"}", i);
        else
            snprintf(params, sizeof(params), "{\"order\":\"o-%d\",\"shipment\":\"S1\"}", i);
        send_json(c, methods[o->sent], params);
    }
    op->kind = OP_ORDER;
    op->index = i;
}

/* Create an order from an acknowledged hold of BO alone, or cancel such an order; false when
 * there is nothing to do (nothing sent). */
static bool bo_order_send(allot_client_t *c, op_t *op)
{
    char params[128];
    op->kind = OP_BO_ORDER;
    for (int tries = 0; tries < 8 && m.bo_order_count > 0 && rnd(3) == 0; tries++) {
        int i = (int)rnd((unsigned)m.bo_order_count);
        bo_order_t *o = &m.bo_orders[i];
        if (o->acked != BO_CREATED || o->sent != BO_CREATED)
            continue;
        o->sent = BO_CANCELLED;
        snprintf(params, sizeof(params), "{\"id\":\"bo-%d\"}", i);
        send_json(c, "order.cancel", params);
        op->index = i;
        return true;
    }
    for (int tries = 0; tries < 8 && m.reservation_count > 0; tries++) {
        int r = (int)rnd((unsigned)m.reservation_count);
        if (m.reservations[r].state != R_ACTIVE || !m.reservations[r].bo_only)
            continue;
        int i = m.bo_order_count++;
        m.bo_orders[i] = (bo_order_t){BO_NONE, BO_CREATED, r};
        m.reservations[r].state = R_RELEASE_SENT; /* consumed once the order exists */
        snprintf(params, sizeof(params), "{\"id\":\"bo-%d\",\"reservation\":\"r-%d\"}", i, r);
        send_json(c, "order.create", params);
        op->index = i;
        return true;
    }
    return false;
}

static void bo_order_answered(int i, bool ok)
{
    bo_order_t *o = &m.bo_orders[i];
    reservation_t *r = &m.reservations[o->reservation];
    if (o->sent == BO_CREATED) {
        r->state = ok ? R_RELEASED : R_ACTIVE;
        r->round_released = ok;
    }
    if (ok)
        o->acked = o->sent;
    else
        o->sent = o->acked;
    if (!ok && o->acked == BO_NONE)
        o->acked = o->sent = BO_GONE;
}

#define SUPPLY_ETA_MS 1893456000000LL /* 2030-01-01 */

/* Put a small supply of BO that comes before B-0 (backorder holds fill it first), or cancel an
 * open one while it is held: its units move to B-0.. (nothing is released: they have room). */
static void bx_send(allot_client_t *c, op_t *op)
{
    char params[256];
    op->kind = OP_BX;
    int open = 0;
    for (int i = 0; i < m.bx_count; i++) {
        bo_order_t *x = &m.bx[i];
        open += x->sent == BO_CREATED || x->acked == BO_CREATED;
        if (x->acked == BO_CREATED && x->sent == BO_CREATED && rnd(2) == 0) {
            x->sent = BO_CANCELLED;
            snprintf(params, sizeof(params), "{\"id\":\"BX-%d\"}", i);
            send_json(c, "supply.cancel", params);
            op->index = i;
            return;
        }
    }
    if (open >= BX_OPEN_MAX || m.bx_count == BX_MAX) { /* a plain read: nothing to track */
        op->kind = OP_CHECKPOINT;
        op->index = 0;
        send_json(c, "server.checkpoint", "{}");
        return;
    }
    int i = m.bx_count++;
    m.bx[i] = (bo_order_t){BO_NONE, BO_CREATED, -1};
    snprintf(params, sizeof(params),
             "{\"id\":\"BX-%d\",\"sku\":\"BO\",\"location\":\"L1\",\"qty\":%d,\"eta_ms\":%lld}", i,
             BX_QTY, SUPPLY_ETA_MS - 86400000LL + i);
    send_json(c, "supply.put", params);
    op->index = i;
}

static void bx_answered(int i, bool ok)
{
    bo_order_t *x = &m.bx[i];
    if (ok)
        x->acked = x->sent;
    else
        x->sent = x->acked;
    if (!ok && x->acked == BO_NONE)
        x->acked = x->sent = BO_GONE;
}

/* An acknowledged open supply with nothing in flight, or -1. */
static int supply_pick(void)
{
    for (int tries = 0; tries < 8 && m.supply_count > 0; tries++) {
        int i = (int)rnd((unsigned)m.supply_count);
        if (m.supplies[i].state == SUP_OPEN && m.supplies[i].sent == SUP_SENT_NONE)
            return i;
    }
    return -1;
}

static void supply_put_send(allot_client_t *c, int i, int64_t eta_ms)
{
    char params[256];
    snprintf(params, sizeof(params),
             "{\"id\":\"P-%d\",\"sku\":\"SUP\",\"location\":\"L1\",\"qty\":%d,"
             "\"eta_ms\":%lld}",
             i, m.supplies[i].qty, (long long)eta_ms);
    m.supplies[i].sent_eta_ms = eta_ms;
    send_json(c, "supply.put", params);
}

/* A new supply, or on an open one: a delay, a receipt of part of the rest, a cancel. */
static void supply_send(allot_client_t *c, op_t *op)
{
    char params[128];
    int i = rnd(3) != 0 ? supply_pick() : -1;
    op->kind = OP_SUPPLY;
    if (i < 0) {
        i = m.supply_count++;
        m.supplies[i] =
            (supply_t){.state = SUP_NONE, .sent = SUP_SENT_PUT, .qty = 5 + (int)rnd(20)};
        supply_put_send(c, i, SUPPLY_ETA_MS + rnd(1000) * 60000LL);
        op->index = i;
        return;
    }
    supply_t *x = &m.supplies[i];
    unsigned dice = rnd(10);
    if (dice < 2) {
        x->sent = SUP_SENT_DELAY;
        supply_put_send(c, i, x->eta_ms + 3600000);
    } else if (dice < 9) {
        x->sent = SUP_SENT_RECEIVE;
        int rest = x->qty - (int)x->received;
        x->sent_qty = rnd(2) ? rest : 1 + (int)rnd((unsigned)rest);
        snprintf(params, sizeof(params), "{\"id\":\"P-%d\",\"qty\":%d}", i, x->sent_qty);
        send_json(c, "supply.receive", params);
    } else {
        x->sent = SUP_SENT_CANCEL;
        snprintf(params, sizeof(params), "{\"id\":\"P-%d\"}", i);
        send_json(c, "supply.cancel", params);
    }
    op->index = i;
}

/* The supply's write in flight was acknowledged (ok) or refused. */
static void supply_answered(int i, bool ok)
{
    supply_t *x = &m.supplies[i];
    int sent = x->sent;
    x->sent = SUP_SENT_NONE;
    if (!ok) {
        if (sent == SUP_SENT_PUT)
            x->state = SUP_GONE;
        return;
    }
    if (sent == SUP_SENT_PUT || sent == SUP_SENT_DELAY) {
        x->state = SUP_OPEN;
        x->eta_ms = x->sent_eta_ms;
    } else if (sent == SUP_SENT_RECEIVE) {
        x->received += x->sent_qty;
        x->state = x->received == x->qty ? SUP_RECEIVED : SUP_OPEN;
    } else if (sent == SUP_SENT_CANCEL) {
        x->state = SUP_CANCELLED;
    }
}

/* Build and send one random operation; returns its kind in op. Reservations live a day: a long
 * run (ALLOT_CRASH_KILLS=400 under ASan takes about 20 minutes) must not see its early holds
 * expire, which the model does not follow. */
static void op_send(allot_client_t *c, op_t *op)
{
    char params[512];
    op->answered = false;
    if (rnd(100) < 15 && m.order_count < ORDERS_MAX) {
        order_send(c, op);
        return;
    }
    if (rnd(100) < 8 && m.supply_count < SUPPLIES_MAX) {
        supply_send(c, op);
        return;
    }
    if (rnd(100) < 5 && m.bo_order_count < BO_ORDERS_MAX && bo_order_send(c, op))
        return;
    if (rnd(100) < 2) {
        bx_send(c, op);
        return;
    }
    unsigned dice = rnd(100);
    int release = dice < 55 ? -1 : active_pick();
    if (dice < 40 && m.adjust_count < ADJUSTS_MAX) {
        adjust_t *a = &m.adjusts[m.adjust_count];
        *a = (adjust_t){(int)rnd(SKUS), (int)rnd(LOCS), (int)rnd(11) - 4, false};
        if (a->delta == 0)
            a->delta = 7;
        op->kind = OP_ADJUST;
        op->index = m.adjust_count++;
        snprintf(params, sizeof(params),
                 "{\"sku\":\"S%d\",\"location\":\"L%d\",\"delta\":%d,\"key\":\"adj-%d\"}", a->sku,
                 a->loc, a->delta, op->index);
        send_json(c, "stock.adjust", params);
    } else if (dice < 55 + 25 * (release < 0) && m.reservation_count < RESERVATIONS_MAX) {
        op->kind = OP_RESERVE;
        op->index = m.reservation_count++;
        m.reservations[op->index].state = R_SENT;
        int s1 = (int)rnd(SKUS), s2 = (s1 + 1 + (int)rnd(SKUS - 1)) % SKUS;
        unsigned shape = rnd(4);
        m.reservations[op->index].bo_only = shape == 3;
        if (shape == 3) /* a preorder of BO alone, which an order may take */
            snprintf(params, sizeof(params),
                     "{\"id\":\"r-%d\",\"lines\":[{\"sku\":\"BO\",\"qty\":%u,\"backorder\":true}],"
                     "\"ttl_s\":86400}",
                     op->index, 1 + rnd(5));
        else if (shape == 0)
            snprintf(params, sizeof(params),
                     "{\"id\":\"r-%d\",\"lines\":[{\"sku\":\"S%d\",\"qty\":%u}],"
                     "\"ttl_s\":86400}",
                     op->index, s1, 1 + rnd(3));
        else if (shape == 1) /* a preorder: units of BO held against its supplies */
            snprintf(params, sizeof(params),
                     "{\"id\":\"r-%d\",\"lines\":[{\"sku\":\"S%d\",\"qty\":%u},"
                     "{\"sku\":\"BO\",\"qty\":%u,\"backorder\":true}],\"ttl_s\":86400}",
                     op->index, s1, 1 + rnd(3), 1 + rnd(5));
        else
            snprintf(params, sizeof(params),
                     "{\"id\":\"r-%d\",\"lines\":[{\"sku\":\"S%d\",\"qty\":%u},"
                     "{\"sku\":\"S%d\",\"qty\":%u}],\"policy\":\"priority\",\"ttl_s\":86400}",
                     op->index, s1, 1 + rnd(3), s2, 1 + rnd(3));
        send_json(c, "reserve", params);
    } else if (release >= 0) {
        op->kind = OP_RELEASE;
        op->index = release;
        m.reservations[release].state = R_RELEASE_SENT;
        snprintf(params, sizeof(params), "{\"id\":\"r-%d\"}", release);
        send_json(c, "reservation.release", params);
    } else if (dice < 92) {
        op->kind = OP_SET;
        op->index = (int)++m.set_sent;
        snprintf(params, sizeof(params), "{\"sku\":\"SET\",\"location\":\"L0\",\"on_hand\":%d}",
                 op->index);
        send_json(c, "stock.set", params);
    } else if (dice < 97 && m.locations_sent < LOCATIONS_MAX) {
        op->kind = OP_LOCATION;
        op->index = m.locations_sent++;
        m.locations[op->index] = 1;
        snprintf(params, sizeof(params),
                 "{\"id\":\"X%d\",\"type\":\"store\",\"lat\":48.1,\"lon\":11.5,\"active\":false}",
                 op->index);
        send_json(c, "location.put", params);
    } else {
        op->kind = OP_CHECKPOINT;
        op->index = 0;
        send_json(c, "server.checkpoint", "{}");
    }
}

static void op_answered(op_t *op, const allot_reply_t *reply)
{
    op->answered = true;
    bool ok = !reply->is_error;
    if (!ok) {
        /* A refused write changed nothing; anything else is a test failure. */
        bool refused = strcmp(reply->code, "UNAVAILABLE") == 0 ||
                       strcmp(reply->code, "OVERLOADED") == 0 ||
                       (op->kind == OP_RESERVE && strcmp(reply->code, "INSUFFICIENT_STOCK") == 0) ||
                       (op->kind == OP_SUPPLY && strcmp(reply->code, "TOO_LARGE") == 0 &&
                        m.supplies[op->index].sent == SUP_SENT_PUT); /* 256 open supplies */
        cr_assert(refused, "op %d failed: %s %s", op->kind, reply->code, reply->message);
    }
    switch (op->kind) {
    case OP_ADJUST:
        m.adjusts[op->index].acked = true;
        if (!ok)
            m.adjusts[op->index].delta = 0; /* refused: not applied */
        break;
    case OP_RESERVE:
        m.reservations[op->index].state = ok ? R_ACTIVE : R_GONE;
        break;
    case OP_RELEASE:
        m.reservations[op->index].state = ok ? R_RELEASED : R_ACTIVE;
        m.reservations[op->index].round_released = ok;
        break;
    case OP_SET:
        if (ok && op->index > m.set_acked)
            m.set_acked = op->index;
        break;
    case OP_LOCATION:
        m.locations[op->index] = ok ? 2 : 3;
        break;
    case OP_CHECKPOINT:
        if (ok)
            m.checkpoints_acked++;
        break;
    case OP_ORDER:
        if (ok)
            m.orders[op->index].acked = m.orders[op->index].sent;
        else
            m.orders[op->index].sent = m.orders[op->index].acked;
        break;
    case OP_SUPPLY:
        supply_answered(op->index, ok);
        break;
    case OP_BO_ORDER:
        bo_order_answered(op->index, ok);
        break;
    case OP_BX:
        bx_answered(op->index, ok);
        break;
    }
    if (ok && op->kind != OP_CHECKPOINT)
        m.acked_writes++;
}

/* Damage done to the stopped server's files between a kill and the restart. */
typedef enum {
    DAMAGE_DELETE_NEWEST_SEGMENT,
    DAMAGE_ZERO_SEGMENT_BLOCK,
    DAMAGE_TRUNCATE_SEGMENT,
    DAMAGE_FLIP_STORE_BIT,
    DAMAGE_KINDS
} damage_t;

static const char *const damage_names[DAMAGE_KINDS] = {"delete-newest-segment", "zero-block",
                                                       "truncate-segment", "flip-lmdb-bit"};

static struct {
    int rounds;
    int mid_batch; /* kills with some replies of the last batch received and some not */
    int64_t ops_sent;
    int damaged[DAMAGE_KINDS]; /* restarts after this damage */
    int refused[DAMAGE_KINDS]; /* of them, refused (the others started with everything) */
} stats;

/* Pipeline a batch and read every reply. */
static void batch_run(allot_client_t *c)
{
    static op_t ops[OPS_PER_ROUND_MAX];
    int count = 50 + (int)rnd(OPS_PER_ROUND_MAX - 50);
    uint32_t first_msgid = 0;
    for (int i = 0; i < count; i++) {
        op_send(c, &ops[i]);
        if (i == 0)
            first_msgid = last_msgid;
    }
    stats.ops_sent += count;
    allot_reply_t reply = {0};
    for (int received = 0; received < count; received++) {
        cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
        uint32_t index = reply.msgid - first_msgid;
        cr_assert_lt(index, (uint32_t)count, "msgid %u", reply.msgid);
        cr_assert_not(ops[index].answered, "two replies for msgid %u", reply.msgid);
        op_answered(&ops[index], &reply);
    }
    allot_reply_free(&reply);
}

/* A few complete batches, then one more during which the server is killed (kill -9) after a
 * random number of replies; collect whatever arrived. */
static void round_run(harness_server_t *s, allot_client_t *c)
{
    static op_t ops[OPS_PER_ROUND_MAX];
    for (unsigned b = rnd(8); b > 0; b--)
        batch_run(c);
    int count = 50 + (int)rnd(OPS_PER_ROUND_MAX - 50);
    stats.ops_sent += count;
    stats.rounds++;
    uint32_t first_msgid = 0;
    for (int i = 0; i < count; i++) {
        op_send(c, &ops[i]);
        if (i == 0)
            first_msgid = last_msgid;
    }
    cr_assert_eq(allot_client_flush(c), 0, "%s", allot_client_last_error(c));
    int kill_after = (int)rnd((unsigned)count + 1);
    bool killed = false;
    allot_reply_t reply = {0};
    for (int received = 0; received < count; received++) {
        if (!killed && received >= kill_after) {
            if (rnd(3) == 0)
                usleep(rnd(3000));
            harness_server_kill9(s);
            killed = true;
        }
        if (allot_client_recv(c, &reply) != 0)
            break; /* the connection died with the server */
        uint32_t index = reply.msgid - first_msgid;
        cr_assert_lt(index, (uint32_t)count, "msgid %u", reply.msgid);
        op_t *op = &ops[index];
        cr_assert_not(op->answered, "two replies for msgid %u", reply.msgid);
        op_answered(op, &reply);
    }
    allot_reply_free(&reply);
    if (!killed)
        harness_server_kill9(s);
    int answered = 0;
    for (int i = 0; i < count; i++)
        answered += ops[i].answered;
    stats.mid_batch += answered > 0 && answered < count;
}

/* ---- verification after a restart -------------------------------------------------------- */

/* Call one pipelined batch of (method, params) and hand each reply to cb in order. */
typedef void (*verify_cb)(int index, const allot_reply_t *reply, void *ctx);

static void call_many(allot_client_t *c, const char *method, char (*params)[128], int count,
                      verify_cb cb, void *ctx)
{
    allot_reply_t reply = {0};
    for (int first = 0; first < count; first += 1000) {
        int n = count - first < 1000 ? count - first : 1000;
        for (int i = 0; i < n; i++)
            send_json(c, method, params[first + i]);
        for (int i = 0; i < n; i++) {
            cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
            cb(first + i, &reply, ctx);
        }
    }
    allot_reply_free(&reply);
}

typedef struct holds {
    int64_t reserved[SKUS][LOCS];
    int64_t backordered; /* units of BO held against its supplies */
    int *ids;
} holds_t;

static void holds_add(holds_t *h, const msgpack_object *result)
{
    const msgpack_object *lines = allot_object_map_get(result, "lines");
    cr_assert(lines != NULL && lines->type == MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < lines->via.array.size; i++) {
        const msgpack_object *line = &lines->via.array.ptr[i];
        const msgpack_object *allocs = allot_object_map_get(line, "allocations");
        cr_assert(allocs != NULL && allocs->type == MSGPACK_OBJECT_ARRAY);
        if (allot_object_str_equal(allot_object_map_get(line, "sku"), "BO")) {
            for (uint32_t k = 0; k < allocs->via.array.size; k++) {
                const msgpack_object *a = &allocs->via.array.ptr[k];
                cr_assert_not_null(allot_object_map_get(a, "supply"), "BO is held on supply");
                h->backordered += map_int(a, "qty");
            }
            continue;
        }
        int sku = str_index(allot_object_map_get(line, "sku"), "S", SKUS);
        for (uint32_t k = 0; k < allocs->via.array.size; k++) {
            const msgpack_object *a = &allocs->via.array.ptr[k];
            int loc = str_index(allot_object_map_get(a, "location"), "L", LOCS);
            h->reserved[sku][loc] += map_int(a, "qty");
        }
    }
}

static void on_reservation(int index, const allot_reply_t *reply, void *ctx)
{
    holds_t *h = ctx;
    int id = h->ids[index];
    reservation_t *r = &m.reservations[id];
    if (!reply->is_error) {
        const msgpack_object *state = allot_object_map_get(&reply->result, "state");
        cr_assert(state != NULL && allot_object_str_equal(state, "active"));
        cr_assert(r->state != R_RELEASED, "r-%d: acknowledged release lost", id);
        r->state = R_ACTIVE;
        holds_add(h, &reply->result);
        return;
    }
    cr_assert_str_eq(reply->code, "NOT_FOUND", "r-%d: %s %s", id, reply->code, reply->message);
    bool released = strstr(reply->message, "released") != NULL;
    switch (r->state) {
    case R_ACTIVE:
        cr_assert_fail("r-%d: acknowledged reservation lost (%s)", id, reply->message);
        break;
    case R_SENT:
        cr_assert_not(released, "r-%d: unacknowledged reserve shows as released", id);
        r->state = R_GONE;
        break;
    case R_RELEASE_SENT:
    case R_RELEASED:
        cr_assert(released, "r-%d: %s", id, reply->message);
        r->state = R_RELEASED;
        r->round_released = 0;
        break;
    default:
        cr_assert_fail("r-%d: unexpected state %d", id, r->state);
    }
}

/* Pipelined writes that must all succeed; UNAVAILABLE/OVERLOADED ones are sent again (right
 * after a start, and after each switch to a new small WAL segment, writes wait until the next
 * segment is preallocated). Replies are matched by msgid: a refusal is answered at once and
 * overtakes the acknowledgements still waiting for the WAL. params is reordered. */
static void writes_until_ok(allot_client_t *c, const char *method, char (*params)[128], int count)
{
    allot_reply_t reply = {0};
    bool *refused = calloc((size_t)count + 1, sizeof(*refused));
    cr_assert_not_null(refused);
    for (int attempt = 0; count > 0; attempt++) {
        cr_assert_lt(attempt, 500, "%s refused for 10 s", method);
        if (attempt > 0)
            usleep(20000);
        uint32_t first_msgid = 0;
        for (int i = 0; i < count; i++) {
            send_json(c, method, params[i]);
            if (i == 0)
                first_msgid = last_msgid;
            refused[i] = false;
        }
        for (int i = 0; i < count; i++) {
            cr_assert_eq(allot_client_recv(c, &reply), 0, "%s", allot_client_last_error(c));
            uint32_t index = reply.msgid - first_msgid;
            cr_assert_lt(index, (uint32_t)count, "msgid %u", reply.msgid);
            if (!reply.is_error)
                continue;
            cr_assert(strcmp(reply.code, "UNAVAILABLE") == 0 ||
                          strcmp(reply.code, "OVERLOADED") == 0,
                      "%s %s: %s %s", method, params[index], reply.code, reply.message);
            refused[index] = true;
        }
        int kept = 0;
        for (int i = 0; i < count; i++)
            if (refused[i])
                memmove(params[kept++], params[i], 128);
        count = kept;
    }
    free(refused);
    allot_reply_free(&reply);
}

static void on_stock(int index, const allot_reply_t *reply, void *ctx)
{
    holds_t *h = ctx;
    int sku = index;
    cr_assert_not(reply->is_error, "stock.get S%d: %s", sku, reply->message);
    const msgpack_object *positions = allot_object_map_get(&reply->result, "positions");
    cr_assert(positions != NULL && positions->type == MSGPACK_OBJECT_ARRAY);
    cr_assert_eq(positions->via.array.size, LOCS);
    for (uint32_t i = 0; i < LOCS; i++) {
        const msgpack_object *p = &positions->via.array.ptr[i];
        int loc = str_index(allot_object_map_get(p, "location"), "L", LOCS);
        int64_t on_hand = map_int(p, "on_hand"), reserved = map_int(p, "reserved");
        cr_assert_eq(on_hand, m.on_hand[sku][loc], "S%d@L%d on_hand %lld, acknowledged %lld", sku,
                     loc, (long long)on_hand, (long long)m.on_hand[sku][loc]);
        cr_assert_geq(on_hand, 0);
        cr_assert_eq(reserved, h->reserved[sku][loc],
                     "S%d@L%d reserved %lld but live holds sum to %lld", sku, loc,
                     (long long)reserved, (long long)h->reserved[sku][loc]);
        cr_assert_eq(map_int(p, "allocated"), 0, "no orders exist: allocated must be 0");
    }
}

/* The step an order map shows (payment tells created from paid). */
static int order_step_of(const msgpack_object *order)
{
    const msgpack_object *state = allot_object_map_get(order, "state");
    if (allot_object_str_equal(state, "delivered"))
        return STEP_DELIVERED;
    if (allot_object_str_equal(state, "shipped"))
        return STEP_SHIPPED;
    if (allot_object_str_equal(state, "released"))
        return STEP_RELEASED;
    cr_assert(allot_object_str_equal(state, "created"), "unexpected order state");
    return allot_object_str_equal(allot_object_map_get(order, "payment"), "authorized")
               ? STEP_PAID
               : STEP_CREATED;
}

static void on_order(int index, const allot_reply_t *reply, void *ctx)
{
    int id = ((int *)ctx)[index];
    order_t *o = &m.orders[id];
    if (reply->is_error) {
        cr_assert_str_eq(reply->code, "NOT_FOUND", "o-%d: %s %s", id, reply->code, reply->message);
        cr_assert_eq(o->acked, STEP_NONE, "o-%d: acknowledged order lost", id);
        o->acked = o->sent = STEP_GONE;
        return;
    }
    int step = order_step_of(&reply->result);
    cr_assert(step >= o->acked && step <= o->sent, "o-%d: state step %d, acknowledged %d, sent %d",
              id, step, o->acked, o->sent);
    const msgpack_object *history = allot_object_map_get(&reply->result, "history");
    cr_assert(history != NULL && history->type == MSGPACK_OBJECT_ARRAY);
    cr_assert_geq(history->via.array.size, (uint32_t)step, "o-%d: history lost entries", id);
    o->acked = o->sent = step;
}

static void orders_verify(allot_client_t *c, char (*params)[128], int *ids)
{
    int n = 0;
    for (int i = 0; i < m.order_count; i++) {
        if (m.orders[i].sent == STEP_GONE)
            continue;
        ids[n] = i;
        snprintf(params[n++], 128, "{\"id\":\"o-%d\"}", i);
    }
    call_many(c, "order.get", params, n, on_order, ids);
    allot_reply_t reply = {0};
    harness_call_ok(c, "server.verify", "{}", &reply);
    const msgpack_object *ok = allot_object_map_get(&reply.result, "ok");
    const msgpack_object *violation = allot_object_map_get(&reply.result, "violation");
    cr_assert(ok != NULL && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean,
              "server-side invariants: %.*s", violation ? (int)violation->via.str.size : 0,
              violation ? violation->via.str.ptr : "");
    allot_reply_free(&reply);
}

/* A supply after a restart: the acknowledged writes are there, the one in flight is there or
 * not (whole); the model takes what the server shows. */
static void on_supply(int index, const allot_reply_t *reply, void *ctx)
{
    int i = ((int *)ctx)[index];
    supply_t *x = &m.supplies[i];
    if (reply->is_error) {
        /* never applied (a new supply), or evicted by a newer one once it had ended: then the
         * write that ended it applied, and what it received is known */
        cr_assert_str_eq(reply->code, "NOT_FOUND", "P-%d: %s %s", i, reply->code, reply->message);
        bool ended = x->state == SUP_RECEIVED || x->state == SUP_CANCELLED ||
                     x->sent == SUP_SENT_CANCEL ||
                     (x->sent == SUP_SENT_RECEIVE && x->received + x->sent_qty == x->qty);
        cr_assert((x->state == SUP_NONE && x->sent == SUP_SENT_PUT) || ended,
                  "P-%d: acknowledged supply lost", i);
        if (x->sent == SUP_SENT_RECEIVE)
            x->received = x->qty;
        x->state = x->state == SUP_NONE ? SUP_GONE : SUP_EVICTED;
        x->sent = SUP_SENT_NONE;
        return;
    }
    const msgpack_object *r = &reply->result;
    int64_t received = map_int(r, "received"), eta_ms = map_int(r, "eta_ms");
    const msgpack_object *state = allot_object_map_get(r, "state");
    cr_assert_eq(map_int(r, "qty"), x->qty, "P-%d qty", i);
    cr_assert_eq(map_int(r, "held"), 0, "P-%d held", i);
    bool receipt = x->sent == SUP_SENT_RECEIVE;
    cr_assert(received == x->received || (receipt && received == x->received + x->sent_qty),
              "P-%d received %lld, acknowledged %lld", i, (long long)received,
              (long long)x->received);
    cr_assert(eta_ms == x->eta_ms || eta_ms == x->sent_eta_ms, "P-%d eta", i);
    cr_assert(x->state != SUP_NONE || x->sent == SUP_SENT_PUT);
    int shown = allot_object_str_equal(state, "cancelled")  ? SUP_CANCELLED
                : allot_object_str_equal(state, "received") ? SUP_RECEIVED
                                                            : SUP_OPEN;
    cr_assert_eq(shown == SUP_RECEIVED, received == x->qty, "P-%d: %s with %lld of %d", i,
                 shown == SUP_RECEIVED ? "received" : "not received", (long long)received, x->qty);
    bool allowed = shown == x->state || (x->sent == SUP_SENT_PUT && shown == SUP_OPEN) ||
                   (x->sent == SUP_SENT_CANCEL && shown == SUP_CANCELLED) ||
                   (receipt && shown == SUP_RECEIVED);
    cr_assert(allowed, "P-%d: state %d, acknowledged %d, in flight %d", i, shown, x->state,
              x->sent);
    x->state = shown;
    x->received = received;
    x->eta_ms = eta_ms;
    x->sent = SUP_SENT_NONE;
}

/* Every supply not known to be gone or evicted, then SUP's on_hand: exactly what they all
 * received. */
static void supplies_verify(allot_client_t *c, char (*params)[128], int *ids)
{
    int n = 0;
    for (int i = 0; i < m.supply_count; i++) {
        if (m.supplies[i].state == SUP_GONE || m.supplies[i].state == SUP_EVICTED)
            continue;
        ids[n] = i;
        snprintf(params[n++], 128, "{\"id\":\"P-%d\"}", i);
    }
    call_many(c, "supply.get", params, n, on_supply, ids);
    int64_t received = 0;
    for (int i = 0; i < m.supply_count; i++)
        received += m.supplies[i].state == SUP_GONE ? 0 : m.supplies[i].received;
    allot_reply_t reply = {0};
    harness_call_ok(c, "stock.get", "{\"sku\":\"SUP\"}", &reply);
    const msgpack_object *positions = allot_object_map_get(&reply.result, "positions");
    cr_assert(positions != NULL && positions->type == MSGPACK_OBJECT_ARRAY);
    int64_t on_hand =
        positions->via.array.size > 0 ? map_int(&positions->via.array.ptr[0], "on_hand") : 0;
    cr_assert_eq(on_hand, received, "SUP on_hand %lld, the supplies received %lld",
                 (long long)on_hand, (long long)received);
    allot_reply_free(&reply);
}

static void on_location(int index, const allot_reply_t *reply, void *ctx)
{
    (void)index;
    (void)ctx;
    cr_assert_not(reply->is_error, "acknowledged location lost: %s", reply->message);
}

/* An order from a backorder hold after a restart: at a step between the acknowledged and the
 * sent one; what its lines show backordered adds to *backordered. */
static void on_bo_order(int index, const allot_reply_t *reply, void *ctx)
{
    holds_t *h = ctx;
    int id = h->ids[index];
    bo_order_t *o = &m.bo_orders[id];
    if (reply->is_error) {
        cr_assert_str_eq(reply->code, "NOT_FOUND", "bo-%d: %s %s", id, reply->code, reply->message);
        cr_assert_eq(o->acked, BO_NONE, "bo-%d: acknowledged order lost", id);
        o->acked = o->sent = BO_GONE;
        return;
    }
    const msgpack_object *state = allot_object_map_get(&reply->result, "state");
    int step = allot_object_str_equal(state, "cancelled") ? BO_CANCELLED : BO_CREATED;
    cr_assert(allot_object_str_equal(state, "cancelled") ||
                  allot_object_str_equal(state, "created"),
              "bo-%d: unexpected state", id);
    cr_assert(step >= o->acked && step <= o->sent, "bo-%d: step %d, acknowledged %d, sent %d", id,
              step, o->acked, o->sent);
    o->acked = o->sent = step;
    const msgpack_object *lines = allot_object_map_get(&reply->result, "lines");
    cr_assert(lines != NULL && lines->type == MSGPACK_OBJECT_ARRAY && lines->via.array.size == 1);
    const msgpack_object *line = &lines->via.array.ptr[0];
    const msgpack_object *backordered = allot_object_map_get(line, "backordered");
    cr_assert_eq(backordered != NULL, step == BO_CREATED, "bo-%d: backordered units", id);
    if (backordered != NULL) {
        cr_assert_eq(map_int(line, "backordered"), map_int(line, "qty"), "bo-%d: all wait", id);
        h->backordered += map_int(line, "backordered");
    }
}

/* A listed supply of BO: for BX-<n>, its state is between the acknowledged and the sent one (the
 * model takes it; an open one is marked seen) and a cancelled one holds nothing; false for B-*. */
static bool bx_verify(const msgpack_object *x)
{
    const msgpack_object *id = allot_object_map_get(x, "id");
    cr_assert(id != NULL && id->type == MSGPACK_OBJECT_STR);
    if (id->via.str.size < 3 || memcmp(id->via.str.ptr, "BX-", 3) != 0)
        return false;
    char digits[16];
    snprintf(digits, sizeof digits, "%.*s", (int)(id->via.str.size - 3), id->via.str.ptr + 3);
    int i = atoi(digits);
    cr_assert(i >= 0 && i < m.bx_count);
    bo_order_t *o = &m.bx[i];
    o->reservation = 1; /* listed */
    const msgpack_object *state = allot_object_map_get(x, "state");
    int step = allot_object_str_equal(state, "cancelled") ? BO_CANCELLED : BO_CREATED;
    cr_assert(allot_object_str_equal(state, "cancelled") || allot_object_str_equal(state, "open"),
              "BX-%d: unexpected state", i);
    cr_assert(step >= o->acked && step <= o->sent, "BX-%d: step %d, acknowledged %d, sent %d", i,
              step, o->acked, o->sent);
    o->acked = o->sent = step;
    if (step == BO_CANCELLED)
        cr_assert_eq(map_int(x, "held"), 0, "BX-%d: a cancelled supply holds nothing", i);
    return true;
}

/* BO's supplies hold exactly what the live holds and the orders from them hold, none received
 * (the orders are read first: their units add to what the holds hold). */
static void backorders_verify(allot_client_t *c, char (*params)[128], holds_t *holds)
{
    int n = 0;
    int *ids = holds->ids;
    for (int i = 0; i < m.bo_order_count; i++) {
        if (m.bo_orders[i].acked == BO_GONE)
            continue;
        ids[n] = i;
        snprintf(params[n++], 128, "{\"id\":\"bo-%d\"}", i);
    }
    call_many(c, "order.get", params, n, on_bo_order, holds);
    for (int i = 0; i < m.bx_count; i++)
        m.bx[i].reservation = 0; /* listed: set by bx_verify */
    allot_reply_t reply = {0};
    harness_call_ok(c, "supply.list", "{\"sku\":\"BO\"}", &reply);
    const msgpack_object *list = allot_object_map_get(&reply.result, "supplies");
    cr_assert(list != NULL && list->type == MSGPACK_OBJECT_ARRAY);
    int64_t held = 0;
    uint32_t large = 0;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *x = &list->via.array.ptr[i];
        cr_assert_eq(map_int(x, "received"), 0);
        cr_assert_leq(map_int(x, "held"), map_int(x, "qty"));
        held += map_int(x, "held");
        large += bx_verify(x) ? 0 : 1;
    }
    cr_assert_eq(large, BACKORDER_SUPPLIES);
    for (int i = 0; i < m.bx_count; i++) { /* not listed: never applied, or evicted once ended */
        bo_order_t *o = &m.bx[i];
        if (o->reservation == 1)
            continue;
        cr_assert(o->acked != BO_CREATED || o->sent == BO_CANCELLED,
                  "BX-%d: acknowledged open supply lost", i);
        o->acked = o->sent = o->acked == BO_NONE ? BO_GONE : BO_CANCELLED;
    }
    cr_assert_eq(held, holds->backordered,
                 "BO's supplies hold %lld, the live holds and the orders %lld", (long long)held,
                 (long long)holds->backordered);
    allot_reply_free(&reply);
}

static void verify(allot_client_t *c)
{
    static char(*params)[128];
    static int *ids;
    int capacity = m.reservation_count + m.adjust_count + SKUS + m.locations_sent + m.order_count +
                   m.supply_count + m.bo_order_count + 16;
    params = realloc(params, (size_t)capacity * sizeof(*params));
    ids = realloc(ids, (size_t)capacity * sizeof(*ids));
    cr_assert(params != NULL && ids != NULL);

    /* 1. adjusts sent without a reply: send them again with the same key, which applies them
     * exactly once whether or not they were applied before the crash. */
    int n = 0;
    for (int i = m.adjust_resolved; i < m.adjust_count; i++) {
        adjust_t *a = &m.adjusts[i];
        if (a->acked)
            continue;
        snprintf(params[n++], 128,
                 "{\"sku\":\"S%d\",\"location\":\"L%d\",\"delta\":%d,\"key\":\"adj-%d\"}", a->sku,
                 a->loc, a->delta, i);
    }
    writes_until_ok(c, "stock.adjust", params, n);
    for (int i = m.adjust_resolved; i < m.adjust_count; i++)
        m.on_hand[m.adjusts[i].sku][m.adjusts[i].loc] += m.adjusts[i].delta;
    m.adjust_resolved = m.adjust_count;

    /* 2. reservations: every one not known to be gone, and releases of the last round. */
    holds_t holds = {.ids = ids};
    n = 0;
    for (int i = 0; i < m.reservation_count; i++) {
        reservation_t *r = &m.reservations[i];
        if (r->state == R_SENT || r->state == R_ACTIVE || r->state == R_RELEASE_SENT ||
            (r->state == R_RELEASED && r->round_released)) {
            ids[n] = i;
            snprintf(params[n++], 128, "{\"id\":\"r-%d\"}", i);
        }
    }
    call_many(c, "reservation.get", params, n, on_reservation, &holds);
    backorders_verify(c, params, &holds);

    /* 3. stock.set: a value between the last acknowledged and the last sent. */
    allot_reply_t reply = {0};
    harness_call_ok(c, "stock.get", "{\"sku\":\"SET\"}", &reply);
    int64_t set = map_int(&reply.result, "on_hand");
    cr_assert(set >= m.set_acked && set <= m.set_sent, "SET %lld, acked %lld, sent %lld",
              (long long)set, (long long)m.set_acked, (long long)m.set_sent);
    m.set_acked = m.set_sent = set;

    /* 4. locations: all acknowledged ones exist; unacknowledged ones are put again. */
    n = 0;
    for (int i = 0; i < m.locations_sent; i++)
        if (m.locations[i] == 2)
            snprintf(params[n++], 128, "{\"id\":\"X%d\"}", i);
    call_many(c, "location.get", params, n, on_location, NULL);
    n = 0;
    for (int i = 0; i < m.locations_sent; i++)
        if (m.locations[i] != 2) {
            snprintf(params[n++], 128,
                     "{\"id\":\"X%d\",\"type\":\"store\",\"lat\":48.1,\"lon\":11.5,"
                     "\"active\":false}",
                     i);
            m.locations[i] = 2;
        }
    writes_until_ok(c, "location.put", params, n);

    /* 5. every position: on_hand as acknowledged, reserved == live holds, allocated == 0. */
    for (int i = 0; i < SKUS; i++)
        snprintf(params[i], 128, "{\"sku\":\"S%d\"}", i);
    call_many(c, "stock.get", params, SKUS, on_stock, &holds);

    /* 6. supplies: acknowledged writes present, the one in flight whole or absent; SUP's
     * on_hand == what they received (each receipt exactly once). */
    supplies_verify(c, params, ids);

    /* 7. orders: each at a step between the acknowledged and the sent one, history intact;
     * allocated == unshipped order items everywhere, supplies' counters consistent (checked by
     * the server itself). */
    orders_verify(c, params, ids);

    harness_call_ok(c, "server.info", "{}", &reply);
    cr_assert_leq(map_int(&reply.result, "checkpoint_lsn"), map_int(&reply.result, "wal_lsn"));
    allot_reply_free(&reply);
}

/* ---- damage between kills
 * -------------------------------------------------------------------- */

static void shell(const char *command)
{
    cr_assert_eq(system(command), 0, "%s", command);
}

/* Segment paths of the WAL, oldest first. */
static int segments_list(const harness_server_t *s, char (*paths)[400], int max)
{
    char dir[300];
    harness_server_path(s, "wal", dir, sizeof(dir));
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    cr_assert_geq(n, 0);
    int count = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (count < max && strlen(name) == 24 && strncmp(name, "wal-", 4) == 0 &&
            strcmp(name + 20, ".log") == 0)
            snprintf(paths[count++], 400, "%s/%.24s", dir, name);
        free(names[i]);
    }
    free(names);
    return count;
}

static long file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return (long)st.st_size;
}

/* A segment: the newest half the time (where the tail is), else any. */
static const char *segment_pick(char (*paths)[400], int n)
{
    return paths[rnd(2) == 0 ? n - 1 : (int)rnd((unsigned)n)];
}

/* Zero one 4 KiB block of the first 256 KiB of a segment (header and records). */
static void zero_block(const char *path)
{
    long size = file_size(path), blocks = (size < 256 * 1024 ? size : 256 * 1024) / 4096;
    static const uint8_t zeros[4096];
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, (long)rnd((unsigned)blocks) * 4096, SEEK_SET), 0);
    cr_assert_eq(fwrite(zeros, 1, sizeof(zeros), f), sizeof(zeros));
    fclose(f);
}

/* Flip one bit of a random record of state.lmdb (its key or its value), through LMDB: the
 * store stays a valid LMDB file, only the record changes. */
static void store_bit_flip(const harness_server_t *s)
{
    char path[400];
    harness_server_path(s, "state.lmdb", path, sizeof(path));
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi state;
    MDB_stat st;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    cr_assert_eq(mdb_env_open(env, path, MDB_NOSUBDIR, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "state", 0, &state), 0);
    cr_assert_eq(mdb_stat(txn, state, &st), 0);
    MDB_cursor *cursor;
    MDB_val key, value;
    cr_assert_eq(mdb_cursor_open(txn, state, &cursor), 0);
    int mrc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    for (size_t skip = st.ms_entries > 0 ? rnd((unsigned)st.ms_entries) : 0; mrc == 0 && skip > 0;
         skip--)
        mrc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    if (mrc == 0) {
        uint8_t stored_key[512], k[512], v[4096];
        size_t key_len = key.mv_size, value_len = value.mv_size;
        cr_assert_leq(value_len, sizeof(v), "records here are small");
        memcpy(stored_key, key.mv_data, key_len);
        memcpy(k, key.mv_data, key_len);
        memcpy(v, value.mv_data, value_len);
        bool in_key = rnd(4) == 0;
        size_t bit = rnd((unsigned)(8 * (in_key ? key_len : value_len)));
        (in_key ? k : v)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        mdb_cursor_close(cursor);
        MDB_val gone = {key_len, stored_key}, new_key = {key_len, k}, new_value = {value_len, v};
        if (in_key) /* the record moves under the damaged key */
            cr_assert_eq(mdb_del(txn, state, &gone, NULL), 0);
        cr_assert_eq(mdb_put(txn, state, &new_key, &new_value, 0), 0);
    } else {
        mdb_cursor_close(cursor);
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void damage_do(harness_server_t *s, damage_t kind)
{
    char paths[256][400];
    int n = segments_list(s, paths, 256);
    cr_assert_gt(n, 0, "a WAL segment always exists");
    switch (kind) {
    case DAMAGE_DELETE_NEWEST_SEGMENT:
        cr_assert_eq(unlink(paths[n - 1]), 0);
        break;
    case DAMAGE_ZERO_SEGMENT_BLOCK:
        zero_block(segment_pick(paths, n));
        break;
    case DAMAGE_TRUNCATE_SEGMENT: {
        const char *path = segment_pick(paths, n);
        cr_assert_eq(truncate(path, (off_t)rnd((unsigned)file_size(path))), 0);
        break;
    }
    default:
        store_bit_flip(s);
        break;
    }
}

/* After a kill: damage a copy's original, try to start. Started: it must hold every
 * acknowledged write (the caller verifies). Refused: the log says why, naming the damaged file;
 * the undamaged copy is put back and started. */
static void damage_round(harness_server_t *s)
{
    damage_t kind = (damage_t)rnd(DAMAGE_KINDS);
    char pristine[300], command[1024];
    snprintf(pristine, sizeof(pristine), "%s.pristine", s->data_dir);
    snprintf(command, sizeof(command), "rm -rf '%s' && cp -a '%s' '%s'", pristine, s->data_dir,
             pristine);
    shell(command);
    damage_do(s, kind);
    stats.damaged[kind]++;
    cr_assert_eq(truncate(s->log_path, 0), 0);
    if (harness_server_restart_try(s, 10000)) {
        snprintf(command, sizeof(command), "rm -rf '%s'", pristine);
        shell(command);
        return; /* verify() checks that nothing acknowledged is missing */
    }
    stats.refused[kind]++;
    char *log = harness_server_log_read(s);
    cr_assert_eq(s->exit_status, 1, "%s: exit %d\n%s", damage_names[kind], s->exit_status, log);
    bool reason =
        strstr(log, "event=recovery_failed") != NULL || strstr(log, "event=store_damaged") != NULL;
    bool names_file = strstr(log, "/wal/wal-") != NULL || strstr(log, "state.lmdb") != NULL;
    cr_assert(reason && names_file, "%s: refused without naming the damage:\n%s",
              damage_names[kind], log);
    cr_assert(strstr(log, "event=listening") == NULL, "%s", log);
    free(log);
    snprintf(command, sizeof(command), "rm -rf '%s' && mv '%s' '%s'", s->data_dir, pristine,
             s->data_dir);
    shell(command);
    harness_server_restart(s);
}

/* ---- the test -------------------------------------------------------------------------------
 */

static void setup_stock(allot_client_t *c)
{
    char params[128];
    for (int l = 0; l < LOCS; l++) {
        snprintf(params, sizeof(params),
                 "{\"id\":\"L%d\",\"type\":\"warehouse\",\"lat\":%d.5,\"lon\":10.0,"
                 "\"priority\":%d}",
                 l, 48 + l, l);
        writes_until_ok(c, "location.put", &params, 1);
    }
    for (int k = 0; k < SKUS; k++)
        for (int l = 0; l < LOCS; l++) {
            snprintf(params, sizeof(params),
                     "{\"sku\":\"S%d\",\"location\":\"L%d\",\"on_hand\":%d}", k, l, ON_HAND_START);
            writes_until_ok(c, "stock.set", &params, 1);
            m.on_hand[k][l] = ON_HAND_START;
        }
    snprintf(params, sizeof(params), "{\"sku\":\"SET\",\"location\":\"L0\",\"on_hand\":0}");
    writes_until_ok(c, "stock.set", &params, 1);
    snprintf(params, sizeof(params), "{\"sku\":\"SUP\",\"location\":\"L1\",\"on_hand\":0}");
    writes_until_ok(c, "stock.set", &params, 1);
    for (int k = 0; k < ORDER_SKUS; k++) {
        snprintf(params, sizeof(params), "{\"sku\":\"OS%d\",\"location\":\"L%d\",\"on_hand\":%d}",
                 k, k % LOCS, ON_HAND_START);
        writes_until_ok(c, "stock.set", &params, 1);
    }
    for (int k = 0; k < BACKORDER_SUPPLIES; k++) {
        snprintf(params, sizeof(params),
                 "{\"id\":\"B-%d\",\"sku\":\"BO\",\"location\":\"L1\",\"qty\":%d,"
                 "\"eta_ms\":%lld}",
                 k, BACKORDER_QTY, SUPPLY_ETA_MS + k * 86400000LL);
        writes_until_ok(c, "supply.put", &params, 1);
    }
}

Test(crash, kill9_at_random_moments_never_loses_an_acknowledged_write, .timeout = 3600)
{
    const char *kills_env = getenv("ALLOT_CRASH_KILLS");
    const char *seed_env = getenv("ALLOT_CRASH_SEED");
    int kills = kills_env != NULL ? atoi(kills_env) : KILLS_DEFAULT;
    rng_state = seed_env != NULL ? (unsigned)strtoul(seed_env, NULL, 10)
                                 : (unsigned)time(NULL) ^ (unsigned)getpid();
    fprintf(stderr, "crash test: %d kills, ALLOT_CRASH_SEED=%u\n", kills, rng_state);
    memset(&m, 0, sizeof(m));
    memset(&stats, 0, sizeof(stats));
    m.reservations = calloc(RESERVATIONS_MAX, sizeof(*m.reservations));
    m.adjusts = calloc(ADJUSTS_MAX, sizeof(*m.adjusts));
    m.locations = calloc(LOCATIONS_MAX, 1);
    m.orders = calloc(ORDERS_MAX, sizeof(*m.orders));
    m.supplies = calloc(SUPPLIES_MAX, sizeof(*m.supplies));
    m.bo_orders = calloc(BO_ORDERS_MAX, sizeof(*m.bo_orders));
    m.bx = calloc(BX_MAX, sizeof(*m.bx));
    cr_assert(m.reservations != NULL && m.adjusts != NULL && m.locations != NULL &&
              m.orders != NULL && m.supplies != NULL && m.bo_orders != NULL);

    /* Small segments and frequent checkpoints: recovery meets LMDB + several WAL segments,
     * and truncation runs all the time. */
    harness_server_t *s = harness_server_start(
        "--wal-segment-bytes 1048576 --checkpoint-interval-s 1 --checkpoint-wal-bytes 65536");
    allot_client_t *c = harness_connect(s);
    allot_client_set_timeout(c, 30000);
    setup_stock(c);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < kills; k++) {
        round_run(s, c);
        if (rnd(6) == 0)
            damage_round(s);
        else
            harness_server_restart(s);
        cr_assert_eq(allot_client_connect(c, "127.0.0.1", s->port, 10000), 0, "%s",
                     allot_client_last_error(c));
        allot_client_set_timeout(c, 30000);
        verify(c);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* A clean stop after all that: the final checkpoint, then one more full check. */
    allot_client_close(c);
    harness_server_restart(s);
    c = harness_connect(s);
    allot_client_set_timeout(c, 30000);
    verify(c);
    int active = 0, evicted = 0;
    for (int i = 0; i < m.reservation_count; i++)
        active += m.reservations[i].state == R_ACTIVE;
    for (int i = 0; i < m.supply_count; i++)
        evicted += m.supplies[i].state == SUP_EVICTED;
    fprintf(stderr,
            "crash test: %d kills in %.1f s (%d mid-batch), %lld requests, %lld acknowledged "
            "writes, %d adjusts, %d reservations (%d active), %d orders, %d orders of backordered "
            "units, %d supplies (%d evicted), %d checkpoints acknowledged\n",
            kills, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
            stats.mid_batch, (long long)stats.ops_sent, (long long)m.acked_writes, m.adjust_count,
            m.reservation_count, active, m.order_count, m.bo_order_count, m.supply_count, evicted,
            m.checkpoints_acked);
    for (int d = 0; d < DAMAGE_KINDS; d++)
        fprintf(stderr, "crash test: %s: %d restarts, %d refused, %d started with everything\n",
                damage_names[d], stats.damaged[d], stats.refused[d],
                stats.damaged[d] - stats.refused[d]);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
    free(m.reservations);
    free(m.adjusts);
    free(m.locations);
    free(m.orders);
    free(m.supplies);
    free(m.bo_orders);
}
