/* order_codec.c - encode/decode of order event payloads (types 64..80; format in event.c). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/state_private.h"

#define ORDER_SNAPSHOT_ARCHIVED 1u
#define ORDER_BODY_SHIP_TO      1u

static bool amount_ok(int64_t v)
{
    return v >= 1 && v <= ALLOT_QUANTITY_MAX;
}

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
    return n;
}

size_t order_event_bytes_max(const allot_event_t *event)
{
    if (event->type == ALLOT_EVENT_ORDER_CREATE || event->type == ALLOT_EVENT_ORDER_SNAPSHOT)
        return 8 + order_body_bytes(&event->u.order);
    const allot_event_order_change_t *c = &event->u.change;
    size_t n = 64 + str_bytes(c->id) + str_bytes(c->text) + str_bytes(c->address) +
               str_bytes(c->instructions) + str_bytes(c->location) + return_bytes(&c->ret);
    n += items_bytes(c->items, c->item_count);
    for (uint32_t i = 0; i < c->shipment_count; i++)
        n += 4 + str_bytes(c->shipments[i].location) +
             items_bytes(c->items + c->shipments[i].item_first, c->shipments[i].item_count);
    return n;
}

/* ---- encode --------------------------------------------------------------------------------- */

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
}

static void put_change(allot_bytes_t *out, const allot_event_order_change_t *c)
{
    allot_bytes_put_str(out, c->id);
    allot_bytes_put_i64(out, c->at_ms);
    allot_bytes_put_u16(out, c->shipment);
    allot_bytes_put_u8(out, c->arg);
    allot_bytes_put_str(out, c->text);
}

void order_event_encode(const allot_event_t *event, allot_bytes_t *out)
{
    const allot_event_order_change_t *c = &event->u.change;
    switch (event->type) {
    case ALLOT_EVENT_ORDER_CREATE:
        allot_bytes_put_str(out, event->u.order.reservation);
        put_order_body(out, &event->u.order);
        return;
    case ALLOT_EVENT_ORDER_SNAPSHOT:
        allot_bytes_put_u8(out, event->u.order.archived ? ORDER_SNAPSHOT_ARCHIVED : 0);
        put_order_body(out, &event->u.order);
        return;
    default:
        break;
    }
    put_change(out, c);
    if (event->type == ALLOT_EVENT_ORDER_MODIFY) {
        allot_bytes_put_u8(out, c->method);
        allot_bytes_put_str(out, c->address);
        allot_bytes_put_str(out, c->instructions);
    } else if (event->type == ALLOT_EVENT_SHIPMENT_REJECT) {
        allot_bytes_put_u16(out, (uint16_t)c->shipment_count);
        for (uint32_t i = 0; i < c->shipment_count; i++) {
            allot_bytes_put_str(out, c->shipments[i].location);
            put_items(out, c->items + c->shipments[i].item_first, c->shipments[i].item_count);
        }
    } else if (event->type == ALLOT_EVENT_RETURN_CREATE) {
        put_return(out, &c->ret);
        put_items(out, c->items, c->item_count);
    } else if (event->type == ALLOT_EVENT_RETURN_RECEIVE) {
        allot_bytes_put_str(out, c->location);
    }
}

/* ---- decode --------------------------------------------------------------------------------- */

void order_scratch_free(allot_event_scratch_t *s)
{
    free(s->items);
    free(s->shipments);
    free(s->returns);
    free(s->history);
}

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
        if (r->failed || !allot_id_valid(item->sku) || !amount_ok(item->qty))
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
    return order_ranges_ok(o) ? 0 : ALLOT_ECORRUPT;
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

static int get_change(allot_reader_t *r, allot_event_scratch_t *s, allot_event_t *event)
{
    allot_event_order_change_t *c = &event->u.change;
    memset(c, 0, sizeof(*c));
    c->id = allot_reader_str(r);
    c->at_ms = allot_reader_i64(r);
    c->shipment = allot_reader_u16(r);
    c->arg = allot_reader_u8(r);
    c->text = allot_reader_str(r);
    if (r->failed || !allot_id_valid(c->id) || !allot_event_time_ok(c->at_ms) ||
        !text_ok(c->text, ALLOT_TEXT_BYTES_MAX))
        return ALLOT_ECORRUPT;
    uint32_t used = 0;
    switch (event->type) {
    case ALLOT_EVENT_ORDER_MODIFY:
        c->method = allot_reader_u8(r);
        c->address = allot_reader_str(r);
        c->instructions = allot_reader_str(r);
        return c->method < ALLOT_METHOD_COUNT && (c->arg & ~7u) == 0 &&
                       c->address.len <= ALLOT_ORDER_ADDRESS_BYTES_MAX &&
                       text_ok(c->instructions, ALLOT_TEXT_BYTES_MAX)
                   ? 0
                   : ALLOT_ECORRUPT;
    case ALLOT_EVENT_SHIPMENT_REJECT:
        return get_reject(r, s, c);
    case ALLOT_EVENT_RETURN_CREATE: {
        int rc = get_return(r, &c->ret);
        if (rc == 0)
            rc = get_items(r, s, &used, ALLOT_LINES_MAX, &c->item_count);
        c->items = s->items;
        return rc == 0 && c->item_count > 0 && allot_id_valid(c->text) ? rc : ALLOT_ECORRUPT;
    }
    case ALLOT_EVENT_RETURN_RECEIVE:
        c->location = allot_reader_str(r);
        return allot_id_valid(c->location) && allot_id_valid(c->text) &&
                       c->arg >= ALLOT_DISPOSITION_RESTOCK && c->arg < ALLOT_DISPOSITION_COUNT
                   ? 0
                   : ALLOT_ECORRUPT;
    case ALLOT_EVENT_ORDER_PAY:
        return c->arg < ALLOT_PAYMENT_COUNT ? 0 : ALLOT_ECORRUPT;
    default:
        return 0;
    }
}

int order_event_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_t *event)
{
    allot_event_order_t *o = &event->u.order;
    switch (event->type) {
    case ALLOT_EVENT_ORDER_CREATE:
        memset(o, 0, sizeof(*o));
        o->reservation = allot_reader_str(r);
        if (r->failed || !id_or_empty(o->reservation))
            return ALLOT_ECORRUPT;
        return get_order_body(r, s, o);
    case ALLOT_EVENT_ORDER_SNAPSHOT: {
        memset(o, 0, sizeof(*o));
        uint8_t flags = allot_reader_u8(r);
        o->archived = (flags & ORDER_SNAPSHOT_ARCHIVED) != 0;
        if (r->failed || (flags & ~ORDER_SNAPSHOT_ARCHIVED) != 0)
            return ALLOT_ECORRUPT;
        return get_order_body(r, s, o);
    }
    case ALLOT_EVENT_ORDER_PAY:
    case ALLOT_EVENT_ORDER_HOLD:
    case ALLOT_EVENT_ORDER_UNHOLD:
    case ALLOT_EVENT_ORDER_MODIFY:
    case ALLOT_EVENT_ORDER_RELEASE:
    case ALLOT_EVENT_ORDER_CANCEL:
    case ALLOT_EVENT_SHIPMENT_REJECT:
    case ALLOT_EVENT_SHIPMENT_SHIP:
    case ALLOT_EVENT_SHIPMENT_DELIVER:
    case ALLOT_EVENT_RETURN_CREATE:
    case ALLOT_EVENT_RETURN_RECEIVE:
    case ALLOT_EVENT_ORDER_EVICT:
        return get_change(r, s, event);
    default:
        return ALLOT_ECORRUPT;
    }
}
