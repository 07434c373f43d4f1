/* event.c - event record payloads (encode/decode, byte format below) and the one apply.
 *
 * Payload format, version 1. All integers little-endian, fixed width; f64 is the IEEE-754
 * binary64 bit pattern as a u64; `str` is a u16 byte length followed by that many bytes (ids:
 * 1..128 bytes of valid UTF-8). Every payload begins with:
 *     u8  version            = 1 (ALLOT_EVENT_FORMAT_VERSION)
 * and continues by type (the type byte travels beside the payload, e.g. in the WAL header):
 *
 * 1  LOCATION_PUT        str id; u8 type (0 warehouse, 1 store, 2 dc, 3 partner);
 *                        u8 flags (bit0 ship, bit1 pickup, bit2 active; others 0);
 *                        f64 lat (-90..90); f64 lon (-180..180); i64 priority (int32 range);
 *                        f64 same_day_radius_km (0..20038); i64 daily_capacity (0..2^31-1)
 * 16 LOCATION_SNAPSHOT   as LOCATION_PUT, then i64 capacity_day (the UTC day of a time);
 *                        i64 capacity_count (0..2^40)
 * 2  STOCK_SET           str sku; str location; i64 on_hand; i64 safety_stock (both
 *                        0..2^40); i64 as_of_ms (position's as_of after the set; INT64_MIN none)
 * 3  STOCK_ADJUST        str sku; str location; i64 delta (non-zero, |delta| <= 2^40);
 *                        i64 on_hand_after (0..2^40); i64 at_ms; str key (len 0 = no key)
 * 4  RESERVATION_CREATE  body (below)
 * 5  RESERVATION_EXTEND  str id; i64 expires_at_ms; i64 at_ms
 * 6  RESERVATION_RELEASE str id; u8 reason (1 released, 2 expired); i64 at_ms
 * 7  RESERVATION_REPLACE i64 at_ms (the old hold of the same id is released, reason replaced);
 *                        body (the new hold; created_ms = at_ms)
 * 17 SKU_SNAPSHOT        str sku; u16 position_count; position_count x { str location;
 *                        i64 on_hand; i64 reserved; i64 allocated; i64 safety_stock;
 *                        i64 as_of_ms } (locations distinct; quantities 0..2^40)
 * 18 RESERVATION_SNAPSHOT u8 status (0 active, 1 released, 2 expired); i64 ended_ms; body
 *                        (line_count 0 allowed only for ended ones)
 * 19 ADJUST_KEY_SNAPSHOT str key; str sku; str location; i64 delta; i64 at_ms; i64 on_hand;
 *                        i64 reserved; i64 allocated; i64 safety_stock; i64 available
 *
 * body = str id; u64 request_hash; i64 created_ms; i64 expires_at_ms; u16 line_count (1..100);
 *        line_count x { str sku; i64 qty_requested (1..2^40); u16 allocation_count;
 *                       allocation_count x { str location; i64 qty (1..2^40) } }
 *        where a line's allocation quantities sum to at most its qty_requested.
 *
 * Orders and returns (types 64..127; coded in core/order/order_codec.c; meaning in core/order.h):
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
 *          9 deliver, 10 return.create, 11 return.receive); u8 method; u8 policy;
 *          u8 flags (bit0 has ship_to); f64 lat; f64 lon; str location (len 0 = none);
 *          str instructions; str address;
 *          items = lines (1..100);
 *          u16 shipment_count (0..64) x { str location; u8 state (0 allocated, 1 released,
 *            2 shipped, 3 delivered, 4 rejected, 5 cancelled); str tracking; str reason;
 *            u16 item_first; u16 item_count (1..) };
 *          items (0..1024) = the shipments' and returns' items, by range;
 *          u16 return_count (0..32) x return;
 *          u16 history_count (0..256) x { i64 at_ms; u8 event; u8 arg; u16 shipment; str text }
 * return = str id; u64 request_hash; i64 created_ms; i64 received_ms (0 = not yet);
 *          u8 state (0 requested, 1 received); u8 disposition (0 none, 1 restock, 2 damaged);
 *          str location (len 0 = not received); str reason; str label (an id);
 *          u16 item_first; u16 item_count (1..)
 *
 * Every time (created_ms, expires_at_ms, ended_ms, at_ms, received_ms, a history entry's
 * at_ms) is ms since the Unix epoch in 0..ALLOT_TIME_MS_MAX (the end of year 9999; 0 also means
 * "not yet" where noted); as_of_ms is the client's version stamp (any value).
 *
 * A record is valid when its version is 1, every field is in range, and decoding consumes the
 * payload exactly. Apply additionally requires the objects it refers to (locations, a live
 * reservation for extend/release/replace) to exist, and the positions a hold or an order adds
 * to to have reserved / allocated counts in range (0..2^40); otherwise it is ALLOT_ECORRUPT.
 */
#include "core/event.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/inventory/inventory_private.h"
#include "core/order/order_private.h"
#include "core/reservation/reservation_private.h"
#include "core/state_private.h"

const char *allot_event_type_name(uint8_t type)
{
    switch (type) {
    case ALLOT_EVENT_LOCATION_PUT:
        return "location.put";
    case ALLOT_EVENT_STOCK_SET:
        return "stock.set";
    case ALLOT_EVENT_STOCK_ADJUST:
        return "stock.adjust";
    case ALLOT_EVENT_RESERVATION_CREATE:
        return "reservation.create";
    case ALLOT_EVENT_RESERVATION_EXTEND:
        return "reservation.extend";
    case ALLOT_EVENT_RESERVATION_RELEASE:
        return "reservation.release";
    case ALLOT_EVENT_RESERVATION_REPLACE:
        return "reservation.replace";
    case ALLOT_EVENT_LOCATION_SNAPSHOT:
        return "location.snapshot";
    case ALLOT_EVENT_SKU_SNAPSHOT:
        return "sku.snapshot";
    case ALLOT_EVENT_RESERVATION_SNAPSHOT:
        return "reservation.snapshot";
    case ALLOT_EVENT_ADJUST_KEY_SNAPSHOT:
        return "adjust_key.snapshot";
    case ALLOT_EVENT_ORDER_CREATE:
        return "order.create";
    case ALLOT_EVENT_ORDER_PAY:
        return "order.pay";
    case ALLOT_EVENT_ORDER_HOLD:
        return "order.hold";
    case ALLOT_EVENT_ORDER_UNHOLD:
        return "order.unhold";
    case ALLOT_EVENT_ORDER_MODIFY:
        return "order.modify";
    case ALLOT_EVENT_ORDER_RELEASE:
        return "order.release";
    case ALLOT_EVENT_ORDER_CANCEL:
        return "order.cancel";
    case ALLOT_EVENT_SHIPMENT_REJECT:
        return "shipment.reject";
    case ALLOT_EVENT_SHIPMENT_SHIP:
        return "shipment.ship";
    case ALLOT_EVENT_SHIPMENT_DELIVER:
        return "shipment.deliver";
    case ALLOT_EVENT_RETURN_CREATE:
        return "return.create";
    case ALLOT_EVENT_RETURN_RECEIVE:
        return "return.receive";
    case ALLOT_EVENT_ORDER_EVICT:
        return "order.evict";
    case ALLOT_EVENT_ORDER_SNAPSHOT:
        return "order.snapshot";
    default:
        return "unknown";
    }
}

void allot_event_scratch_free(allot_event_scratch_t *scratch)
{
    free(scratch->allocations);
    free(scratch->positions);
    order_scratch_free(scratch);
    memset(scratch, 0, sizeof(*scratch));
}

/* ---- encode -------------------------------------------------------------------------------- */

static void encode_location(const allot_event_location_t *e, bool snapshot, allot_bytes_t *out)
{
    allot_bytes_put_str(out, e->id);
    allot_bytes_put_u8(out, e->type);
    allot_bytes_put_u8(out,
                       (uint8_t)((e->ship ? 1 : 0) | (e->pickup ? 2 : 0) | (e->active ? 4 : 0)));
    allot_bytes_put_f64(out, e->lat);
    allot_bytes_put_f64(out, e->lon);
    allot_bytes_put_i64(out, e->priority);
    allot_bytes_put_f64(out, e->same_day_radius_km);
    allot_bytes_put_i64(out, e->daily_capacity);
    if (snapshot) {
        allot_bytes_put_i64(out, e->capacity_day);
        allot_bytes_put_i64(out, e->capacity_count);
    }
}

static size_t reservation_body_bytes(const allot_event_reservation_t *e)
{
    size_t bytes = 64 + e->id.len;
    for (uint32_t i = 0; i < e->line_count; i++)
        bytes += 16 + e->lines[i].sku.len;
    for (uint32_t i = 0; i < e->allocation_count; i++)
        bytes += 10 + e->allocations[i].location.len;
    return bytes;
}

static void encode_reservation_body(const allot_event_reservation_t *e, allot_bytes_t *out)
{
    allot_bytes_put_str(out, e->id);
    allot_bytes_put_u64(out, e->request_hash);
    allot_bytes_put_i64(out, e->created_ms);
    allot_bytes_put_i64(out, e->expires_at_ms);
    allot_bytes_put_u16(out, (uint16_t)e->line_count);
    for (uint32_t i = 0; i < e->line_count; i++) {
        const allot_event_line_t *line = &e->lines[i];
        allot_bytes_put_str(out, line->sku);
        allot_bytes_put_i64(out, line->qty_requested);
        allot_bytes_put_u16(out, (uint16_t)line->allocation_count);
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            const allot_event_allocation_t *a = &e->allocations[line->allocation_first + k];
            allot_bytes_put_str(out, a->location);
            allot_bytes_put_i64(out, a->qty);
        }
    }
}

static void encode_sku_snapshot(const allot_event_sku_snapshot_t *e, allot_bytes_t *out)
{
    allot_bytes_put_str(out, e->sku);
    allot_bytes_put_u16(out, (uint16_t)e->position_count);
    for (uint32_t i = 0; i < e->position_count; i++) {
        const allot_event_position_t *p = &e->positions[i];
        allot_bytes_put_str(out, p->location);
        allot_bytes_put_i64(out, p->on_hand);
        allot_bytes_put_i64(out, p->reserved);
        allot_bytes_put_i64(out, p->allocated);
        allot_bytes_put_i64(out, p->safety_stock);
        allot_bytes_put_i64(out, p->as_of_ms);
    }
}

static void encode_adjust_key(const allot_event_adjust_key_t *e, allot_bytes_t *out)
{
    allot_bytes_put_str(out, e->key);
    allot_bytes_put_str(out, e->sku);
    allot_bytes_put_str(out, e->location);
    allot_bytes_put_i64(out, e->delta);
    allot_bytes_put_i64(out, e->at_ms);
    allot_bytes_put_i64(out, e->on_hand);
    allot_bytes_put_i64(out, e->reserved);
    allot_bytes_put_i64(out, e->allocated);
    allot_bytes_put_i64(out, e->safety_stock);
    allot_bytes_put_i64(out, e->available);
}

static bool event_is_order(uint8_t type)
{
    return type >= ALLOT_EVENT_ORDER_FIRST && type <= ALLOT_EVENT_ORDER_LAST;
}

static size_t event_bytes_max(const allot_event_t *event)
{
    if (event_is_order(event->type))
        return order_event_bytes_max(event);
    switch (event->type) {
    case ALLOT_EVENT_RESERVATION_CREATE:
    case ALLOT_EVENT_RESERVATION_REPLACE:
    case ALLOT_EVENT_RESERVATION_SNAPSHOT:
        return 32 + reservation_body_bytes(&event->u.reservation);
    case ALLOT_EVENT_SKU_SNAPSHOT:
        return 64 + (size_t)event->u.sku_snapshot.position_count * (2 + 128 + 40);
    default:
        return 1024; /* fixed fields plus at most four ids */
    }
}

static void encode_simple(const allot_event_t *event, allot_bytes_t *out)
{
    const allot_event_stock_set_t *set = &event->u.stock_set;
    const allot_event_stock_adjust_t *adj = &event->u.stock_adjust;
    switch (event->type) {
    case ALLOT_EVENT_STOCK_SET:
        allot_bytes_put_str(out, set->sku);
        allot_bytes_put_str(out, set->location);
        allot_bytes_put_i64(out, set->on_hand);
        allot_bytes_put_i64(out, set->safety_stock);
        allot_bytes_put_i64(out, set->as_of_ms);
        break;
    case ALLOT_EVENT_STOCK_ADJUST:
        allot_bytes_put_str(out, adj->sku);
        allot_bytes_put_str(out, adj->location);
        allot_bytes_put_i64(out, adj->delta);
        allot_bytes_put_i64(out, adj->on_hand_after);
        allot_bytes_put_i64(out, adj->at_ms);
        allot_bytes_put_str(out, adj->key);
        break;
    case ALLOT_EVENT_RESERVATION_EXTEND:
        allot_bytes_put_str(out, event->u.extend.id);
        allot_bytes_put_i64(out, event->u.extend.expires_at_ms);
        allot_bytes_put_i64(out, event->u.extend.at_ms);
        break;
    case ALLOT_EVENT_RESERVATION_RELEASE:
        allot_bytes_put_str(out, event->u.release.id);
        allot_bytes_put_u8(out, event->u.release.reason);
        allot_bytes_put_i64(out, event->u.release.at_ms);
        break;
    default:
        assert(!"unknown event type");
    }
}

int allot_event_encode(const allot_event_t *event, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, event_bytes_max(event));
    if (rc != 0)
        return rc;
    allot_bytes_put_u8(out, ALLOT_EVENT_FORMAT_VERSION);
    const allot_event_reservation_t *r = &event->u.reservation;
    switch (event->type) {
    case ALLOT_EVENT_LOCATION_PUT:
    case ALLOT_EVENT_LOCATION_SNAPSHOT:
        encode_location(&event->u.location, event->type == ALLOT_EVENT_LOCATION_SNAPSHOT, out);
        break;
    case ALLOT_EVENT_RESERVATION_CREATE:
        encode_reservation_body(r, out);
        break;
    case ALLOT_EVENT_RESERVATION_REPLACE:
        allot_bytes_put_i64(out, r->at_ms);
        encode_reservation_body(r, out);
        break;
    case ALLOT_EVENT_RESERVATION_SNAPSHOT:
        allot_bytes_put_u8(out, r->status);
        allot_bytes_put_i64(out, r->ended_ms);
        encode_reservation_body(r, out);
        break;
    case ALLOT_EVENT_SKU_SNAPSHOT:
        encode_sku_snapshot(&event->u.sku_snapshot, out);
        break;
    case ALLOT_EVENT_ADJUST_KEY_SNAPSHOT:
        encode_adjust_key(&event->u.adjust_key, out);
        break;
    default:
        if (event_is_order(event->type))
            order_event_encode(event, out);
        else
            encode_simple(event, out);
    }
    return 0;
}

/* ---- decode -------------------------------------------------------------------------------- */

/* A location named by a position or an allocation: apply resolves it against the locations that
 * exist (whose ids were checked when they were created) and refuses the record when none
 * matches, so only the length is checked here (checkpoint loads decode ~10M of these). */
static bool location_ref_ok(allot_str_t id)
{
    return id.len >= 1 && id.len <= ALLOT_ID_BYTES_MAX;
}

static bool quantity_ok(int64_t v)
{
    return v >= 0 && v <= ALLOT_QUANTITY_MAX;
}

static bool amount_ok(int64_t v)
{
    return v >= 1 && v <= ALLOT_QUANTITY_MAX;
}

bool allot_event_time_ok(int64_t ms)
{
    return ms >= ALLOT_TIME_MS_MIN && ms <= ALLOT_TIME_MS_MAX;
}

/* A location's capacity day: the UTC day of a time a record may hold. */
static bool day_ok(int64_t day)
{
    return day >= allot_day_from_ms(ALLOT_TIME_MS_MIN) &&
           day <= allot_day_from_ms(ALLOT_TIME_MS_MAX);
}

static int decode_location(allot_reader_t *r, bool snapshot, allot_event_location_t *e)
{
    e->id = allot_reader_str(r);
    e->type = allot_reader_u8(r);
    uint8_t flags = allot_reader_u8(r);
    e->ship = flags & 1;
    e->pickup = (flags & 2) != 0;
    e->active = (flags & 4) != 0;
    e->lat = allot_reader_f64(r);
    e->lon = allot_reader_f64(r);
    e->priority = allot_reader_i64(r);
    e->same_day_radius_km = allot_reader_f64(r);
    e->daily_capacity = allot_reader_i64(r);
    e->capacity_day = snapshot ? allot_reader_i64(r) : 0;
    e->capacity_count = snapshot ? allot_reader_i64(r) : 0;
    bool ok = allot_id_valid(e->id) && e->type < ALLOT_LOCATION_TYPE_COUNT && (flags & ~7u) == 0;
    ok = ok && e->lat >= -90.0 && e->lat <= 90.0 && e->lon >= -180.0 && e->lon <= 180.0;
    ok = ok && e->priority >= ALLOT_PRIORITY_MIN && e->priority <= ALLOT_PRIORITY_MAX;
    ok = ok && e->same_day_radius_km >= 0.0 && e->same_day_radius_km <= ALLOT_RADIUS_KM_MAX;
    ok = ok && e->daily_capacity >= 0 && e->daily_capacity <= ALLOT_DAILY_CAPACITY_MAX;
    ok = ok && day_ok(e->capacity_day) && e->capacity_count >= 0 &&
         e->capacity_count <= ALLOT_CAPACITY_COUNT_MAX;
    return ok ? 0 : ALLOT_ECORRUPT;
}

static int scratch_allocation_grow(allot_event_scratch_t *s)
{
    uint32_t capacity = s->allocation_capacity ? s->allocation_capacity * 2 : 64;
    void *p = realloc(s->allocations, (size_t)capacity * sizeof(*s->allocations));
    if (p == NULL)
        return ALLOT_ENOMEM;
    s->allocations = p;
    s->allocation_capacity = capacity;
    return 0;
}

static int decode_line(allot_reader_t *r, allot_event_scratch_t *s, allot_event_reservation_t *e,
                       allot_event_line_t *line)
{
    line->sku = allot_reader_str(r);
    line->qty_requested = allot_reader_i64(r);
    line->allocation_count = allot_reader_u16(r);
    line->allocation_first = e->allocation_count;
    if (r->failed || !allot_id_valid(line->sku) || !amount_ok(line->qty_requested))
        return ALLOT_ECORRUPT;
    int64_t held = 0;
    for (uint32_t k = 0; k < line->allocation_count; k++) {
        if (e->allocation_count == s->allocation_capacity && scratch_allocation_grow(s) != 0)
            return ALLOT_ENOMEM;
        allot_event_allocation_t *a = &s->allocations[e->allocation_count++];
        a->location = allot_reader_str(r);
        a->qty = allot_reader_i64(r);
        if (r->failed || !location_ref_ok(a->location) || !amount_ok(a->qty))
            return ALLOT_ECORRUPT;
        held += a->qty;
        if (held > line->qty_requested)
            return ALLOT_ECORRUPT;
    }
    return 0;
}

static int decode_reservation_body(allot_reader_t *r, allot_event_scratch_t *s,
                                   uint32_t line_count_min, allot_event_reservation_t *e)
{
    e->id = allot_reader_str(r);
    e->request_hash = allot_reader_u64(r);
    e->created_ms = allot_reader_i64(r);
    e->expires_at_ms = allot_reader_i64(r);
    e->line_count = allot_reader_u16(r);
    e->allocation_count = 0;
    if (r->failed || !allot_id_valid(e->id) || e->line_count < line_count_min ||
        e->line_count > ALLOT_LINES_MAX || !allot_event_time_ok(e->created_ms) ||
        !allot_event_time_ok(e->expires_at_ms))
        return ALLOT_ECORRUPT;
    for (uint32_t i = 0; i < e->line_count; i++) {
        int rc = decode_line(r, s, e, &e->lines[i]);
        if (rc != 0)
            return rc;
    }
    e->allocations = s->allocations;
    return 0;
}

static int decode_sku_snapshot(allot_reader_t *r, allot_event_scratch_t *s,
                               allot_event_sku_snapshot_t *e)
{
    e->sku = allot_reader_str(r);
    e->position_count = allot_reader_u16(r);
    if (r->failed || !allot_id_valid(e->sku))
        return ALLOT_ECORRUPT;
    if (e->position_count > s->position_capacity) {
        /* bound the allocation by what the payload can actually hold */
        if ((size_t)e->position_count * 43 > r->len - r->offset)
            return ALLOT_ECORRUPT;
        void *p = realloc(s->positions, (size_t)e->position_count * sizeof(*s->positions));
        if (p == NULL)
            return ALLOT_ENOMEM;
        s->positions = p;
        s->position_capacity = e->position_count;
    }
    e->positions = s->positions;
    for (uint32_t i = 0; i < e->position_count; i++) {
        allot_event_position_t *p = &s->positions[i];
        p->location = allot_reader_str(r);
        p->on_hand = allot_reader_i64(r);
        p->reserved = allot_reader_i64(r);
        p->allocated = allot_reader_i64(r);
        p->safety_stock = allot_reader_i64(r);
        p->as_of_ms = allot_reader_i64(r);
        if (r->failed || !location_ref_ok(p->location) || !quantity_ok(p->on_hand) ||
            !quantity_ok(p->reserved) || !quantity_ok(p->allocated) ||
            !quantity_ok(p->safety_stock))
            return ALLOT_ECORRUPT;
    }
    return 0;
}

static int decode_adjust_key(allot_reader_t *r, allot_event_adjust_key_t *e)
{
    e->key = allot_reader_str(r);
    e->sku = allot_reader_str(r);
    e->location = allot_reader_str(r);
    e->delta = allot_reader_i64(r);
    e->at_ms = allot_reader_i64(r);
    e->on_hand = allot_reader_i64(r);
    e->reserved = allot_reader_i64(r);
    e->allocated = allot_reader_i64(r);
    e->safety_stock = allot_reader_i64(r);
    e->available = allot_reader_i64(r);
    bool ok = allot_id_valid(e->key) && allot_id_valid(e->sku) && allot_id_valid(e->location);
    ok = ok && e->delta != 0 && e->delta >= -ALLOT_QUANTITY_MAX && e->delta <= ALLOT_QUANTITY_MAX;
    ok = ok && allot_event_time_ok(e->at_ms);
    ok = ok && quantity_ok(e->on_hand) && quantity_ok(e->reserved) && quantity_ok(e->allocated);
    ok = ok && quantity_ok(e->safety_stock) && quantity_ok(e->available);
    return ok ? 0 : ALLOT_ECORRUPT;
}

static int decode_stock(allot_reader_t *r, allot_event_t *event)
{
    if (event->type == ALLOT_EVENT_STOCK_SET) {
        allot_event_stock_set_t *e = &event->u.stock_set;
        e->sku = allot_reader_str(r);
        e->location = allot_reader_str(r);
        e->on_hand = allot_reader_i64(r);
        e->safety_stock = allot_reader_i64(r);
        e->as_of_ms = allot_reader_i64(r);
        bool ok = allot_id_valid(e->sku) && allot_id_valid(e->location);
        return ok && quantity_ok(e->on_hand) && quantity_ok(e->safety_stock) ? 0 : ALLOT_ECORRUPT;
    }
    allot_event_stock_adjust_t *e = &event->u.stock_adjust;
    e->sku = allot_reader_str(r);
    e->location = allot_reader_str(r);
    e->delta = allot_reader_i64(r);
    e->on_hand_after = allot_reader_i64(r);
    e->at_ms = allot_reader_i64(r);
    e->key = allot_reader_str(r);
    bool ok = allot_id_valid(e->sku) && allot_id_valid(e->location);
    ok = ok && e->delta != 0 && e->delta >= -ALLOT_QUANTITY_MAX && e->delta <= ALLOT_QUANTITY_MAX;
    ok = ok && quantity_ok(e->on_hand_after) && (e->key.len == 0 || allot_id_valid(e->key));
    ok = ok && allot_event_time_ok(e->at_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

static int decode_reservation_change(allot_reader_t *r, allot_event_t *event)
{
    if (event->type == ALLOT_EVENT_RESERVATION_EXTEND) {
        event->u.extend.id = allot_reader_str(r);
        event->u.extend.expires_at_ms = allot_reader_i64(r);
        event->u.extend.at_ms = allot_reader_i64(r);
        bool ok = allot_id_valid(event->u.extend.id);
        ok = ok && allot_event_time_ok(event->u.extend.expires_at_ms) &&
             allot_event_time_ok(event->u.extend.at_ms);
        return ok ? 0 : ALLOT_ECORRUPT;
    }
    event->u.release.id = allot_reader_str(r);
    event->u.release.reason = allot_reader_u8(r);
    event->u.release.at_ms = allot_reader_i64(r);
    bool reason_ok = event->u.release.reason == ALLOT_RELEASE_RELEASED ||
                     event->u.release.reason == ALLOT_RELEASE_EXPIRED;
    return allot_id_valid(event->u.release.id) && reason_ok &&
                   allot_event_time_ok(event->u.release.at_ms)
               ? 0
               : ALLOT_ECORRUPT;
}

static int decode_by_type(allot_reader_t *r, allot_event_scratch_t *s, allot_event_t *event)
{
    allot_event_reservation_t *res = &event->u.reservation;
    switch (event->type) {
    case ALLOT_EVENT_LOCATION_PUT:
    case ALLOT_EVENT_LOCATION_SNAPSHOT:
        return decode_location(r, event->type == ALLOT_EVENT_LOCATION_SNAPSHOT, &event->u.location);
    case ALLOT_EVENT_STOCK_SET:
    case ALLOT_EVENT_STOCK_ADJUST:
        return decode_stock(r, event);
    case ALLOT_EVENT_RESERVATION_CREATE:
        res->status = ALLOT_RESERVATION_ACTIVE;
        res->ended_ms = res->at_ms = 0;
        return decode_reservation_body(r, s, 1, res);
    case ALLOT_EVENT_RESERVATION_REPLACE:
        res->status = ALLOT_RESERVATION_ACTIVE;
        res->ended_ms = 0;
        res->at_ms = allot_reader_i64(r);
        if (!allot_event_time_ok(res->at_ms))
            return ALLOT_ECORRUPT;
        return decode_reservation_body(r, s, 1, res);
    case ALLOT_EVENT_RESERVATION_SNAPSHOT:
        res->status = allot_reader_u8(r);
        res->ended_ms = allot_reader_i64(r);
        res->at_ms = 0;
        if (res->status >= ALLOT_RESERVATION_STATUS_COUNT || !allot_event_time_ok(res->ended_ms))
            return ALLOT_ECORRUPT;
        return decode_reservation_body(r, s, res->status == ALLOT_RESERVATION_ACTIVE ? 1 : 0, res);
    case ALLOT_EVENT_RESERVATION_EXTEND:
    case ALLOT_EVENT_RESERVATION_RELEASE:
        return decode_reservation_change(r, event);
    case ALLOT_EVENT_SKU_SNAPSHOT:
        return decode_sku_snapshot(r, s, &event->u.sku_snapshot);
    case ALLOT_EVENT_ADJUST_KEY_SNAPSHOT:
        return decode_adjust_key(r, &event->u.adjust_key);
    default:
        if (event_is_order(event->type))
            return order_event_decode(r, s, event);
        return ALLOT_ECORRUPT;
    }
}

int allot_event_decode(uint8_t type, const uint8_t *payload, size_t len,
                       allot_event_scratch_t *scratch, allot_event_t *event)
{
    assert(scratch != NULL && event != NULL);
    allot_reader_t reader;
    allot_reader_init(&reader, payload, len);
    event->type = type;
    if (allot_reader_u8(&reader) != ALLOT_EVENT_FORMAT_VERSION)
        return ALLOT_ECORRUPT;
    int rc = decode_by_type(&reader, scratch, event);
    if (rc != 0)
        return rc;
    return allot_reader_done(&reader) ? 0 : ALLOT_ECORRUPT;
}

/* ---- apply --------------------------------------------------------------------------------- */

static int event_prepare(allot_state_t *state, const allot_event_t *event)
{
    switch (event->type) {
    case ALLOT_EVENT_LOCATION_PUT:
    case ALLOT_EVENT_LOCATION_SNAPSHOT:
        return inventory_apply_prepare(state, event);
    case ALLOT_EVENT_STOCK_SET:
    case ALLOT_EVENT_STOCK_ADJUST:
    case ALLOT_EVENT_SKU_SNAPSHOT:
    case ALLOT_EVENT_ADJUST_KEY_SNAPSHOT:
        return stock_apply_prepare(state, event);
    default:
        if (event_is_order(event->type))
            return order_apply_prepare(state, event);
        return reservation_apply_prepare(state, event);
    }
}

static void event_commit(allot_state_t *state, const allot_event_t *event)
{
    switch (event->type) {
    case ALLOT_EVENT_LOCATION_PUT:
    case ALLOT_EVENT_LOCATION_SNAPSHOT:
        inventory_apply_commit(state, event);
        break;
    case ALLOT_EVENT_STOCK_SET:
    case ALLOT_EVENT_STOCK_ADJUST:
    case ALLOT_EVENT_SKU_SNAPSHOT:
    case ALLOT_EVENT_ADJUST_KEY_SNAPSHOT:
        stock_apply_commit(state, event);
        break;
    default:
        if (event_is_order(event->type))
            order_apply_commit(state, event);
        else
            reservation_apply_commit(state, event);
    }
}

int allot_event_apply(allot_state_t *state, const allot_event_t *event)
{
    assert(state != NULL && event != NULL);
    int rc = event_prepare(state, event);
    if (rc != 0)
        return rc;
    event_commit(state, event);
    return 0;
}

int allot_event_apply_encoded(allot_state_t *state, uint8_t type, const uint8_t *payload,
                              size_t len)
{
    assert(state != NULL);
    allot_event_t event;
    int rc = allot_event_decode(type, payload, len, &state->event_scratch, &event);
    return rc != 0 ? rc : allot_event_apply(state, &event);
}

int allot_event_emit(allot_state_t *state, const allot_event_t *event)
{
    assert(state != NULL && event != NULL);
    state->event_bytes.len = 0;
    int rc = allot_event_encode(event, &state->event_bytes);
    if (rc != 0)
        return rc;
    allot_event_t decoded;
    rc = allot_event_decode(event->type, state->event_bytes.data, state->event_bytes.len,
                            &state->event_scratch, &decoded);
    assert(rc != ALLOT_ECORRUPT && "live events always decode");
    if (rc != 0)
        return rc;
    rc = event_prepare(state, &decoded);
    if (rc != 0)
        return rc;
    if (state->sink != NULL) {
        rc = state->sink(state->sink_ctx, event->type, state->event_bytes.data,
                         state->event_bytes.len);
        if (rc != 0)
            return rc; /* prepare changed nothing observable: the event simply did not happen */
    }
    event_commit(state, &decoded);
    return 0;
}
