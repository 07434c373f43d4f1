/* order_codec.c - payloads of the orders' and returns' event records (rows in core/events.def;
 * what they mean: core/order.h and docs/orders.md).
 *
 * Byte format, after the version byte and in the conventions of core/event/codec.c:
 *
 * 64 ORDER_CREATE        str reservation (len 0 = sourced from lines; else consumed); order
 *                        (state created, payment none, no returns, no history: apply adds the
 *                        order.create entry, allocates every shipment's items at its location)
 * 80 ORDER_SNAPSHOT      u8 flags (bit0 archived: evicted, keep nothing in memory; others 0);
 *                        order
 * 65 ORDER_PAY           change (arg = payment: 0 none, 1 authorized, 2 captured, 3 failed)
 * 66 ORDER_HOLD          change (text = reason)
 * 67 ORDER_UNHOLD        change
 * 68 ORDER_MODIFY        change (arg = mask: bit0 address, bit1 instructions, bit2 method);
 *                        u8 method; str address (<= 4096 bytes, one MessagePack map, opaque);
 *                        str instructions
 * 69 ORDER_RELEASE       change
 * 70 ORDER_CANCEL        change (text = reason)
 * 71 SHIPMENT_REJECT     change (shipment = the rejected one, text = reason); u16 count (1..64) x
 *                        { str location; items (1..) } = the new shipments, in the state of the
 *                        rejected one
 * 72 SHIPMENT_SHIP       change (shipment; text = tracking)
 * 73 SHIPMENT_DELIVER    change (shipment)
 * 74 RETURN_CREATE       change (text = return id); return (item_first 0); items (1..100)
 * 75 RETURN_RECEIVE      change (text = return id; arg = disposition 1 restock, 2 damaged);
 *                        str location
 * 76 ORDER_EVICT         change (the order leaves memory; it must be ended)
 *
 * change = str order id; i64 at_ms; u16 shipment (index, 0xFFFF = none); u8 arg;
 *          str text (0..1024 bytes of UTF-8)
 * items  = u16 count; count x { str sku; i64 qty (1..2^40) }
 * order  = str id; str customer (len 0 = none); u64 request_hash; i64 created_ms; i64 ended_ms
 *          (0 = not ended); u8 state (0 created, 1 on_hold, 2 released, 3 partially_shipped,
 *          4 shipped, 5 delivered, 6 cancelled); u8 payment; u8 entered_by (order event:
 *          0 create, 1 pay, 2 hold, 3 unhold, 4 modify, 5 release, 6 cancel, 7 reject, 8 ship,
 *          9 deliver, 10 return.create, 11 return.receive, 12 supply.receive: a receipt served
 *          backordered units, text = the supply id, shipment = the new one); u8 method; u8 policy;
 *          u8 flags (bit0 has ship_to); f64 lat; f64 lon; str location (len 0 = none);
 *          str instructions; str address;
 *          items = lines (1..100);
 *          u16 shipment_count (0..64) x { str location; u8 state (0 allocated, 1 released,
 *            2 shipped, 3 delivered, 4 rejected, 5 cancelled); str tracking; str reason;
 *            u16 item_first; u16 item_count (1..) };
 *          items (0..1024) = the shipments' and returns' items, by range;
 *          u16 return_count (0..32) x return;
 *          u16 history_count (0..256) x { i64 at_ms; u8 event; u8 arg; u16 shipment; str text };
 *          u8 order_version = 2; u16 backorder_count (0..1024) x { u16 line (index into the
 *            lines); str supply (an id); i64 qty (1..2^40) } = the lines' units still waiting for
 *            that supply (a line's backordered units sum to at most its qty)
 *          An order of version 1 (written before backorders existed) ends after the history:
 *          it decodes with no backorders.
 * return = str id; u64 request_hash; i64 created_ms; i64 received_ms (0 = not yet);
 *          u8 state (0 requested, 1 received); u8 disposition (0 none, 1 restock, 2 damaged);
 *          str location (len 0 = not received); str reason; str label (an id);
 *          u16 item_first; u16 item_count (1..)
 *
 * Apply (order_apply.c) additionally requires the order a change names to exist, the locations
 * to exist, and the positions an order adds to to have allocated counts in range (0..2^40).
 */
#include <assert.h>
#include <string.h>

#include "core/errors.h"
#include "core/inventory.h"
#include "core/order/order_private.h"
#include "core/sourcing.h"

#define ORDER_SNAPSHOT_ARCHIVED 1u
#define ORDER_BODY_SHIP_TO      1u
/* The byte after an order's version 1 fields in version 2 payloads. */
#define ORDER_PAYLOAD_VERSION 2u

static bool text_ok(allot_str_t s, uint32_t bytes_max)
{
    return s.len <= bytes_max && allot_utf8_valid(s.ptr, s.len);
}

static bool id_or_empty(allot_str_t s)
{
    return s.len == 0 || allot_id_valid(s);
}

/* ---- sizes ---------------------------------------------------------------------------------- */

static size_t str_bytes(allot_str_t s)
{
    return 2u + s.len;
}

static size_t items_bytes(const allot_event_item_t *items, uint32_t count)
{
    size_t n = 2;
    for (uint32_t i = 0; i < count; i++)
        n += str_bytes(items[i].sku) + 8;
    return n;
}

static size_t return_bytes(const allot_event_return_t *r)
{
    return 40 + str_bytes(r->id) + str_bytes(r->location) + str_bytes(r->reason) +
           str_bytes(r->label);
}

static size_t order_body_bytes(const allot_event_order_t *o)
{
    size_t n = 96 + str_bytes(o->id) + str_bytes(o->customer) + str_bytes(o->location) +
               str_bytes(o->instructions) + str_bytes(o->address) + str_bytes(o->reservation);
    n += items_bytes(o->lines, o->line_count) + items_bytes(o->items, o->item_count);
    for (uint32_t i = 0; i < o->shipment_count; i++)
        n += 8 + str_bytes(o->shipments[i].location) + str_bytes(o->shipments[i].tracking) +
             str_bytes(o->shipments[i].reason);
    for (uint32_t i = 0; i < o->return_count; i++)
        n += return_bytes(&o->returns[i]);
    for (uint32_t i = 0; i < o->history_count; i++)
        n += 14 + str_bytes(o->history[i].text);
    for (uint32_t i = 0; i < o->backorder_count; i++)
        n += 10 + str_bytes(o->backorders[i].supply);
    return n;
}

/* An upper bound of any change record's bytes. */
static size_t change_bytes(const allot_event_order_change_t *c)
{
    size_t n = 64 + str_bytes(c->id) + str_bytes(c->text) + str_bytes(c->address) +
               str_bytes(c->instructions) + str_bytes(c->location) + return_bytes(&c->ret);
    n += items_bytes(c->items, c->item_count);
    for (uint32_t i = 0; i < c->shipment_count; i++)
        n += 4 + str_bytes(c->shipments[i].location) +
             items_bytes(c->items + c->shipments[i].item_first, c->shipments[i].item_count);
    return n;
}

/* ---- encode helpers ------------------------------------------------------------------------- */

static void put_items(allot_bytes_t *out, const allot_event_item_t *items, uint32_t count)
{
    allot_bytes_put_u16(out, (uint16_t)count);
    for (uint32_t i = 0; i < count; i++) {
        allot_bytes_put_str(out, items[i].sku);
        allot_bytes_put_i64(out, items[i].qty);
    }
}

static void put_return(allot_bytes_t *out, const allot_event_return_t *r)
{
    allot_bytes_put_str(out, r->id);
    allot_bytes_put_u64(out, r->request_hash);
    allot_bytes_put_i64(out, r->created_ms);
    allot_bytes_put_i64(out, r->received_ms);
    allot_bytes_put_u8(out, r->state);
    allot_bytes_put_u8(out, r->disposition);
    allot_bytes_put_str(out, r->location);
    allot_bytes_put_str(out, r->reason);
    allot_bytes_put_str(out, r->label);
    allot_bytes_put_u16(out, (uint16_t)r->item_first);
    allot_bytes_put_u16(out, (uint16_t)r->item_count);
}

static void put_order_body(allot_bytes_t *out, const allot_event_order_t *o)
{
    allot_bytes_put_str(out, o->id);
    allot_bytes_put_str(out, o->customer);
    allot_bytes_put_u64(out, o->request_hash);
    allot_bytes_put_i64(out, o->created_ms);
    allot_bytes_put_i64(out, o->ended_ms);
    uint8_t bytes[6] = {o->state,  o->payment, o->entered_by,
                        o->method, o->policy,  o->has_ship_to ? ORDER_BODY_SHIP_TO : 0};
    allot_bytes_put(out, bytes, sizeof(bytes));
    allot_bytes_put_f64(out, o->lat);
    allot_bytes_put_f64(out, o->lon);
    allot_bytes_put_str(out, o->location);
    allot_bytes_put_str(out, o->instructions);
    allot_bytes_put_str(out, o->address);
    put_items(out, o->lines, o->line_count);
    allot_bytes_put_u16(out, (uint16_t)o->shipment_count);
    for (uint32_t i = 0; i < o->shipment_count; i++) {
        const allot_event_shipment_t *s = &o->shipments[i];
        allot_bytes_put_str(out, s->location);
        allot_bytes_put_u8(out, s->state);
        allot_bytes_put_str(out, s->tracking);
        allot_bytes_put_str(out, s->reason);
        allot_bytes_put_u16(out, (uint16_t)s->item_first);
        allot_bytes_put_u16(out, (uint16_t)s->item_count);
    }
    put_items(out, o->items, o->item_count);
    allot_bytes_put_u16(out, (uint16_t)o->return_count);
    for (uint32_t i = 0; i < o->return_count; i++)
        put_return(out, &o->returns[i]);
    allot_bytes_put_u16(out, (uint16_t)o->history_count);
    for (uint32_t i = 0; i < o->history_count; i++) {
        const allot_event_history_t *h = &o->history[i];
        allot_bytes_put_i64(out, h->at_ms);
        allot_bytes_put_u8(out, h->event);
        allot_bytes_put_u8(out, h->arg);
        allot_bytes_put_u16(out, h->shipment);
        allot_bytes_put_str(out, h->text);
    }
    allot_bytes_put_u8(out, ORDER_PAYLOAD_VERSION);
    allot_bytes_put_u16(out, (uint16_t)o->backorder_count);
    for (uint32_t i = 0; i < o->backorder_count; i++) {
        allot_bytes_put_u16(out, (uint16_t)o->backorders[i].line);
        allot_bytes_put_str(out, o->backorders[i].supply);
        allot_bytes_put_i64(out, o->backorders[i].qty);
    }
}

static void put_change(allot_bytes_t *out, const allot_event_order_change_t *c)
{
    allot_bytes_put_str(out, c->id);
    allot_bytes_put_i64(out, c->at_ms);
    allot_bytes_put_u16(out, c->shipment);
    allot_bytes_put_u8(out, c->arg);
    allot_bytes_put_str(out, c->text);
}

/* ---- decode helpers ------------------------------------------------------------------------- */

/* count items appended to s->items at *used. */
static int get_items(allot_reader_t *r, allot_event_scratch_t *s, uint32_t *used,
                     uint32_t count_max, uint32_t *count)
{
    *count = allot_reader_u16(r);
    if (r->failed || *count > count_max || (size_t)*count * 11 > r->len - r->offset)
        return ALLOT_ECORRUPT;
    int rc = allot_array_grow((void **)&s->items, &s->item_capacity, *used + *count,
                              sizeof(allot_event_item_t), 16);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < *count; i++) {
        allot_event_item_t *item = &s->items[(*used)++];
        item->sku = allot_reader_str(r);
        item->qty = allot_reader_i64(r);
        if (r->failed || !allot_id_valid(item->sku) || !allot_event_amount_ok(item->qty))
            return ALLOT_ECORRUPT;
    }
    return 0;
}

static int get_return(allot_reader_t *r, allot_event_return_t *ret)
{
    ret->id = allot_reader_str(r);
    ret->request_hash = allot_reader_u64(r);
    ret->created_ms = allot_reader_i64(r);
    ret->received_ms = allot_reader_i64(r);
    ret->state = allot_reader_u8(r);
    ret->disposition = allot_reader_u8(r);
    ret->location = allot_reader_str(r);
    ret->reason = allot_reader_str(r);
    ret->label = allot_reader_str(r);
    ret->item_first = allot_reader_u16(r);
    ret->item_count = allot_reader_u16(r);
    bool ok = !r->failed && allot_id_valid(ret->id) && ret->state < ALLOT_RETURN_STATE_COUNT;
    ok = ok && allot_event_time_ok(ret->created_ms) && allot_event_time_ok(ret->received_ms);
    ok = ok && ret->disposition < ALLOT_DISPOSITION_COUNT && id_or_empty(ret->location);
    ok = ok && text_ok(ret->reason, ALLOT_TEXT_BYTES_MAX) && allot_id_valid(ret->label);
    return ok ? 0 : ALLOT_ECORRUPT;
}

static int get_order_head(allot_reader_t *r, allot_event_order_t *o)
{
    o->id = allot_reader_str(r);
    o->customer = allot_reader_str(r);
    o->request_hash = allot_reader_u64(r);
    o->created_ms = allot_reader_i64(r);
    o->ended_ms = allot_reader_i64(r);
    o->state = allot_reader_u8(r);
    o->payment = allot_reader_u8(r);
    o->entered_by = allot_reader_u8(r);
    o->method = allot_reader_u8(r);
    o->policy = allot_reader_u8(r);
    uint8_t flags = allot_reader_u8(r);
    o->has_ship_to = (flags & ORDER_BODY_SHIP_TO) != 0;
    o->lat = allot_reader_f64(r);
    o->lon = allot_reader_f64(r);
    o->location = allot_reader_str(r);
    o->instructions = allot_reader_str(r);
    o->address = allot_reader_str(r);
    bool ok = !r->failed && allot_id_valid(o->id) && id_or_empty(o->customer);
    ok = ok && allot_event_time_ok(o->created_ms) && allot_event_time_ok(o->ended_ms);
    ok = ok && o->state < ALLOT_ORDER_STATE_COUNT && o->payment < ALLOT_PAYMENT_COUNT;
    ok = ok && o->entered_by < ALLOT_ORDER_EVENT_COUNT && o->method < ALLOT_METHOD_COUNT;
    ok = ok && o->policy < ALLOT_POLICY_COUNT && (flags & ~ORDER_BODY_SHIP_TO) == 0;
    ok = ok && o->lat >= -90.0 && o->lat <= 90.0 && o->lon >= -180.0 && o->lon <= 180.0;
    ok = ok && id_or_empty(o->location) && text_ok(o->instructions, ALLOT_TEXT_BYTES_MAX);
    ok = ok && o->address.len <= ALLOT_ORDER_ADDRESS_BYTES_MAX;
    return ok ? 0 : ALLOT_ECORRUPT;
}

static int get_shipments(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_t *o)
{
    o->shipment_count = allot_reader_u16(r);
    if (r->failed || o->shipment_count > ALLOT_ORDER_SHIPMENTS_MAX)
        return ALLOT_ECORRUPT;
    int rc = allot_array_grow((void **)&s->shipments, &s->shipment_capacity, o->shipment_count,
                              sizeof(allot_event_shipment_t), 16);
    if (rc != 0)
        return rc;
    o->shipments = s->shipments;
    for (uint32_t i = 0; i < o->shipment_count; i++) {
        allot_event_shipment_t *sh = &s->shipments[i];
        sh->location = allot_reader_str(r);
        sh->state = allot_reader_u8(r);
        sh->tracking = allot_reader_str(r);
        sh->reason = allot_reader_str(r);
        sh->item_first = allot_reader_u16(r);
        sh->item_count = allot_reader_u16(r);
        if (r->failed || !allot_id_valid(sh->location) || sh->state >= ALLOT_SHIPMENT_STATE_COUNT ||
            !text_ok(sh->tracking, ALLOT_TEXT_BYTES_MAX) ||
            !text_ok(sh->reason, ALLOT_TEXT_BYTES_MAX) || sh->item_count == 0)
            return ALLOT_ECORRUPT;
    }
    return 0;
}

static int get_returns_history(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_t *o)
{
    o->return_count = allot_reader_u16(r);
    if (r->failed || o->return_count > ALLOT_ORDER_RETURNS_MAX)
        return ALLOT_ECORRUPT;
    int rc = allot_array_grow((void **)&s->returns, &s->return_capacity, o->return_count,
                              sizeof(allot_event_return_t), 16);
    for (uint32_t i = 0; rc == 0 && i < o->return_count; i++)
        rc = get_return(r, &s->returns[i]);
    o->returns = s->returns;
    o->history_count = rc == 0 ? allot_reader_u16(r) : 0;
    if (rc == 0 && (r->failed || o->history_count > ALLOT_ORDER_HISTORY_MAX))
        rc = ALLOT_ECORRUPT;
    if (rc == 0)
        rc = allot_array_grow((void **)&s->history, &s->history_capacity, o->history_count,
                              sizeof(allot_event_history_t), 16);
    for (uint32_t i = 0; rc == 0 && i < o->history_count; i++) {
        allot_event_history_t *h = &s->history[i];
        h->at_ms = allot_reader_i64(r);
        h->event = allot_reader_u8(r);
        h->arg = allot_reader_u8(r);
        h->shipment = allot_reader_u16(r);
        h->text = allot_reader_str(r);
        if (r->failed || h->event >= ALLOT_ORDER_EVENT_COUNT || !allot_event_time_ok(h->at_ms) ||
            !text_ok(h->text, ALLOT_TEXT_BYTES_MAX))
            rc = ALLOT_ECORRUPT;
    }
    o->history = s->history;
    return rc;
}

/* Item ranges of shipments and returns must lie inside the order's items. */
static bool order_ranges_ok(const allot_event_order_t *o)
{
    for (uint32_t i = 0; i < o->shipment_count; i++)
        if (o->shipments[i].item_first + o->shipments[i].item_count > o->item_count)
            return false;
    for (uint32_t i = 0; i < o->return_count; i++)
        if (o->returns[i].item_count == 0 ||
            o->returns[i].item_first + o->returns[i].item_count > o->item_count)
            return false;
    return true;
}

/* The backorders of a version 2 order; a version 1 order ends before them (none). Each names a
 * line, and a line's backordered units sum to at most its qty. */
static int get_backorders(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_t *o)
{
    o->backorder_count = 0;
    o->backorders = s->backorders;
    if (r->offset == r->len)
        return 0;
    uint8_t version = allot_reader_u8(r);
    uint32_t count = allot_reader_u16(r);
    if (r->failed || version != ORDER_PAYLOAD_VERSION || count > ALLOT_ORDER_BACKORDERS_MAX)
        return ALLOT_ECORRUPT;
    int rc = allot_array_grow((void **)&s->backorders, &s->backorder_capacity, count,
                              sizeof(allot_event_backorder_t), 16);
    if (rc != 0)
        return rc;
    o->backorders = s->backorders;
    int64_t waiting[ALLOT_LINES_MAX] = {0};
    for (uint32_t i = 0; i < count; i++) {
        allot_event_backorder_t *b = &s->backorders[i];
        b->line = allot_reader_u16(r);
        b->supply = allot_reader_str(r);
        b->qty = allot_reader_i64(r);
        if (r->failed || b->line >= o->line_count || !allot_id_valid(b->supply) ||
            !allot_event_amount_ok(b->qty))
            return ALLOT_ECORRUPT;
        waiting[b->line] += b->qty;
        if (waiting[b->line] > o->lines[b->line].qty)
            return ALLOT_ECORRUPT;
    }
    o->backorder_count = count;
    return 0;
}

static int get_order_body(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_t *o)
{
    int rc = get_order_head(r, o);
    uint32_t used = 0;
    if (rc == 0)
        rc = get_items(r, s, &used, ALLOT_LINES_MAX, &o->line_count);
    if (rc == 0 && o->line_count == 0)
        rc = ALLOT_ECORRUPT;
    if (rc == 0)
        rc = get_shipments(r, s, o);
    if (rc == 0)
        rc = get_items(r, s, &used, ALLOT_ORDER_ITEMS_MAX, &o->item_count);
    if (rc == 0)
        rc = get_returns_history(r, s, o);
    if (rc != 0)
        return rc;
    o->lines = s->items;
    o->items = s->items + o->line_count;
    if (!order_ranges_ok(o))
        return ALLOT_ECORRUPT;
    return get_backorders(r, s, o);
}

static int get_reject(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_change_t *c)
{
    c->shipment_count = allot_reader_u16(r);
    if (r->failed || c->shipment_count == 0 || c->shipment_count > ALLOT_ORDER_SHIPMENTS_MAX)
        return ALLOT_ECORRUPT;
    int rc = allot_array_grow((void **)&s->shipments, &s->shipment_capacity, c->shipment_count,
                              sizeof(allot_event_shipment_t), 16);
    uint32_t used = 0;
    for (uint32_t i = 0; rc == 0 && i < c->shipment_count; i++) {
        allot_event_shipment_t *sh = &s->shipments[i];
        memset(sh, 0, sizeof(*sh));
        sh->location = allot_reader_str(r);
        sh->item_first = used;
        if (r->failed || !allot_id_valid(sh->location))
            return ALLOT_ECORRUPT;
        rc = get_items(r, s, &used, ALLOT_ORDER_ITEMS_MAX, &sh->item_count);
        if (rc == 0 && sh->item_count == 0)
            rc = ALLOT_ECORRUPT;
    }
    c->shipments = s->shipments;
    c->items = s->items;
    c->item_count = used;
    return rc;
}

/* change = the part every change record starts with. */
static int change_get(allot_reader_t *r, allot_event_order_change_t *c)
{
    memset(c, 0, sizeof(*c));
    c->id = allot_reader_str(r);
    c->at_ms = allot_reader_i64(r);
    c->shipment = allot_reader_u16(r);
    c->arg = allot_reader_u8(r);
    c->text = allot_reader_str(r);
    if (r->failed || !allot_id_valid(c->id) || !allot_event_time_ok(c->at_ms) ||
        !text_ok(c->text, ALLOT_TEXT_BYTES_MAX))
        return ALLOT_ECORRUPT;
    return 0;
}

/* ---- whole orders: create, snapshot --------------------------------------------------------- */

int order_create_encode(const allot_event_order_t *o, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, 8 + order_body_bytes(o));
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, o->reservation);
    put_order_body(out, o);
    return 0;
}

int order_create_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_t *o)
{
    memset(o, 0, sizeof(*o));
    o->reservation = allot_reader_str(r);
    if (r->failed || !id_or_empty(o->reservation))
        return ALLOT_ECORRUPT;
    return get_order_body(r, s, o);
}

int order_snapshot_encode(const allot_event_order_t *o, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, 8 + order_body_bytes(o));
    if (rc != 0)
        return rc;
    allot_bytes_put_u8(out, o->archived ? ORDER_SNAPSHOT_ARCHIVED : 0);
    put_order_body(out, o);
    return 0;
}

int order_snapshot_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_t *o)
{
    memset(o, 0, sizeof(*o));
    uint8_t flags = allot_reader_u8(r);
    o->archived = (flags & ORDER_SNAPSHOT_ARCHIVED) != 0;
    if (r->failed || (flags & ~ORDER_SNAPSHOT_ARCHIVED) != 0)
        return ALLOT_ECORRUPT;
    return get_order_body(r, s, o);
}

/* ---- changes -------------------------------------------------------------------------------- */

int order_change_encode(const allot_event_order_change_t *c, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, change_bytes(c));
    if (rc == 0)
        put_change(out, c);
    return rc;
}

int order_change_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_change_t *c)
{
    (void)s;
    return change_get(r, c);
}

int order_pay_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_change_t *c)
{
    (void)s;
    int rc = change_get(r, c);
    return rc == 0 && c->arg >= ALLOT_PAYMENT_COUNT ? ALLOT_ECORRUPT : rc;
}

int order_modify_encode(const allot_event_order_change_t *c, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, change_bytes(c));
    if (rc != 0)
        return rc;
    put_change(out, c);
    allot_bytes_put_u8(out, c->method);
    allot_bytes_put_str(out, c->address);
    allot_bytes_put_str(out, c->instructions);
    return 0;
}

int order_modify_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_change_t *c)
{
    (void)s;
    int rc = change_get(r, c);
    if (rc != 0)
        return rc;
    c->method = allot_reader_u8(r);
    c->address = allot_reader_str(r);
    c->instructions = allot_reader_str(r);
    return c->method < ALLOT_METHOD_COUNT && (c->arg & ~7u) == 0 &&
                   c->address.len <= ALLOT_ORDER_ADDRESS_BYTES_MAX &&
                   text_ok(c->instructions, ALLOT_TEXT_BYTES_MAX)
               ? 0
               : ALLOT_ECORRUPT;
}

int shipment_reject_encode(const allot_event_order_change_t *c, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, change_bytes(c));
    if (rc != 0)
        return rc;
    put_change(out, c);
    allot_bytes_put_u16(out, (uint16_t)c->shipment_count);
    for (uint32_t i = 0; i < c->shipment_count; i++) {
        allot_bytes_put_str(out, c->shipments[i].location);
        put_items(out, c->items + c->shipments[i].item_first, c->shipments[i].item_count);
    }
    return 0;
}

int shipment_reject_decode(allot_reader_t *r, allot_event_scratch_t *s,
                           allot_event_order_change_t *c)
{
    int rc = change_get(r, c);
    return rc != 0 ? rc : get_reject(r, s, c);
}

int return_create_encode(const allot_event_order_change_t *c, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, change_bytes(c));
    if (rc != 0)
        return rc;
    put_change(out, c);
    put_return(out, &c->ret);
    put_items(out, c->items, c->item_count);
    return 0;
}

int return_create_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_order_change_t *c)
{
    int rc = change_get(r, c);
    if (rc != 0)
        return rc;
    uint32_t used = 0;
    rc = get_return(r, &c->ret);
    if (rc == 0)
        rc = get_items(r, s, &used, ALLOT_LINES_MAX, &c->item_count);
    c->items = s->items;
    return rc == 0 && c->item_count > 0 && allot_id_valid(c->text) ? rc : ALLOT_ECORRUPT;
}

int return_receive_encode(const allot_event_order_change_t *c, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, change_bytes(c));
    if (rc != 0)
        return rc;
    put_change(out, c);
    allot_bytes_put_str(out, c->location);
    return 0;
}

int return_receive_decode(allot_reader_t *r, allot_event_scratch_t *s,
                          allot_event_order_change_t *c)
{
    (void)s;
    int rc = change_get(r, c);
    if (rc != 0)
        return rc;
    c->location = allot_reader_str(r);
    return allot_id_valid(c->location) && allot_id_valid(c->text) &&
                   c->arg >= ALLOT_DISPOSITION_RESTOCK && c->arg < ALLOT_DISPOSITION_COUNT
               ? 0
               : ALLOT_ECORRUPT;
}
