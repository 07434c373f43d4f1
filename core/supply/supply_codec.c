/* supply_codec.c - payloads of the future-supply event records (rows in core/events.def).
 *
 * Byte format, after the version byte and in the conventions of core/event/codec.c:
 *
 *  8 SUPPLY_PUT      str id; str sku; str location; i64 qty (1..2^40); i64 eta_ms; i64 at_ms
 *                    (a new id creates an open supply; an existing one takes qty, location and
 *                    eta_ms, and ends as received when qty equals what it received); u8
 *                    put_version = 2 when it delays (a later eta_ms) an open supply backorders
 *                    wait on: they move to the SKU's other open supply due before the new eta
 *                    (core/order/order_displace.c: orders oldest first, then live holds oldest
 *                    first, earliest eta first within each one's free qty); what cannot move
 *                    stays. A version 1 put (no byte) moves nothing
 *  9 SUPPLY_RECEIVE  str id; str sku; str location; i64 qty (1..2^40, the units received now);
 *                    i64 on_hand_after (0..2^40: the position's on_hand after the receipt);
 *                    i64 at_ms (sku and location repeat the supply's, for replay's look-ups and
 *                    the change stream); u8 receive_version = 2: the units serve the supply's
 *                    backorders first (core/order/order_receipt.c: orders oldest first, then
 *                    live holds oldest first; what is left is plain stock). A version 1 receipt
 *                    (written before receipts served backorders) ends after at_ms: its units are
 *                    plain stock and may not touch held units (qty <= qty - received - held)
 * 10 SUPPLY_CANCEL   str id; i64 at_ms (an open supply is cancelled); u8 cancel_version = 2
 *                    when backorders wait on it: they move to the other open supply of its SKU
 *                    or are released (core/order/order_displace.c: orders oldest first, then
 *                    live holds oldest first, to the earliest eta first within each one's free
 *                    qty). A version 1 cancel (no byte) is plain: nothing may hold the supply
 * 20 SUPPLY_SNAPSHOT str id; str sku; str location; i64 qty (1..2^40); i64 received (0..qty;
 *                    open: < qty, received: == qty); i64 held (0..qty - received: the
 *                    units backorder holds hold on it; 0 unless open); i64 eta_ms; u8 state (0
 * open, 1 received, 2 cancelled); i64 updated_ms
 *
 * ids are 1..128 bytes of UTF-8 (supply, sku, location); times in the time range of
 * core/limits.h. Apply (supply_apply.c) additionally requires: the location to exist (put,
 * snapshot); for put of an existing supply the same sku, an open supply, qty >= received + held
 * and the same location once units were received, and for a new one room under the bounds; for
 * receive an open supply of that sku and location with qty <= its qty - received (version 1:
 * - held) and, when it is the last unit, the held units all served; for
 * cancel an open supply (version 1: nothing holds it, held 0); for a snapshot a new id.
 */
#include "core/errors.h"
#include "core/supply/supply_private.h"

#define SUPPLY_EVENT_BYTES_MAX (3 * (2 + ALLOT_ID_BYTES_MAX) + 8 * 8 + 2)
/* The byte after a receipt's version 1 fields: its units serve backorders first. */
#define SUPPLY_RECEIVE_VERSION 2u
/* The byte after a cancel's version 1 fields: its backorders move or are released. */
#define SUPPLY_CANCEL_VERSION 2u
/* The byte after a put's version 1 fields: a delay, its backorders move to earlier supply. */
#define SUPPLY_PUT_VERSION 2u

static bool ids_ok(const allot_event_supply_t *e)
{
    return allot_id_valid(e->id) && allot_id_valid(e->sku) && allot_id_valid(e->location);
}

static bool qty_ok(int64_t qty)
{
    return qty >= 1 && qty <= ALLOT_QUANTITY_MAX;
}

static void ids_put(const allot_event_supply_t *e, allot_bytes_t *out)
{
    allot_bytes_put_str(out, e->id);
    allot_bytes_put_str(out, e->sku);
    allot_bytes_put_str(out, e->location);
}

static void ids_get(allot_reader_t *r, allot_event_supply_t *e)
{
    *e = (allot_event_supply_t){0};
    e->id = allot_reader_str(r);
    e->sku = allot_reader_str(r);
    e->location = allot_reader_str(r);
}

int supply_put_encode(const allot_event_supply_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, SUPPLY_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    ids_put(e, out);
    allot_bytes_put_i64(out, e->qty);
    allot_bytes_put_i64(out, e->eta_ms);
    allot_bytes_put_i64(out, e->at_ms);
    if (e->serves)
        allot_bytes_put_u8(out, SUPPLY_PUT_VERSION);
    return 0;
}

int supply_put_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_supply_t *e)
{
    (void)s;
    ids_get(r, e);
    e->qty = allot_reader_i64(r);
    e->eta_ms = allot_reader_i64(r);
    e->at_ms = allot_reader_i64(r);
    e->serves = r->offset < r->len;
    if (e->serves && allot_reader_u8(r) != SUPPLY_PUT_VERSION)
        return ALLOT_ECORRUPT;
    bool ok = !r->failed && ids_ok(e) && qty_ok(e->qty) && allot_event_time_ok(e->eta_ms) &&
              allot_event_time_ok(e->at_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

int supply_receive_encode(const allot_event_supply_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, SUPPLY_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    ids_put(e, out);
    allot_bytes_put_i64(out, e->qty);
    allot_bytes_put_i64(out, e->on_hand_after);
    allot_bytes_put_i64(out, e->at_ms);
    if (e->serves)
        allot_bytes_put_u8(out, SUPPLY_RECEIVE_VERSION);
    return 0;
}

int supply_receive_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_supply_t *e)
{
    (void)s;
    ids_get(r, e);
    e->qty = allot_reader_i64(r);
    e->on_hand_after = allot_reader_i64(r);
    e->at_ms = allot_reader_i64(r);
    e->serves = r->offset < r->len;
    if (e->serves && allot_reader_u8(r) != SUPPLY_RECEIVE_VERSION)
        return ALLOT_ECORRUPT;
    bool ok = !r->failed && ids_ok(e) && qty_ok(e->qty) &&
              allot_event_quantity_ok(e->on_hand_after) && e->on_hand_after >= e->qty &&
              allot_event_time_ok(e->at_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

int supply_cancel_encode(const allot_event_supply_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, SUPPLY_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, e->id);
    allot_bytes_put_i64(out, e->at_ms);
    if (e->serves)
        allot_bytes_put_u8(out, SUPPLY_CANCEL_VERSION);
    return 0;
}

int supply_cancel_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_supply_t *e)
{
    (void)s;
    *e = (allot_event_supply_t){0};
    e->id = allot_reader_str(r);
    e->at_ms = allot_reader_i64(r);
    e->serves = r->offset < r->len;
    if (e->serves && allot_reader_u8(r) != SUPPLY_CANCEL_VERSION)
        return ALLOT_ECORRUPT;
    bool ok = !r->failed && allot_id_valid(e->id) && allot_event_time_ok(e->at_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

int supply_snapshot_encode(const allot_event_supply_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, SUPPLY_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    ids_put(e, out);
    allot_bytes_put_i64(out, e->qty);
    allot_bytes_put_i64(out, e->received);
    allot_bytes_put_i64(out, e->held);
    allot_bytes_put_i64(out, e->eta_ms);
    allot_bytes_put_u8(out, e->state);
    allot_bytes_put_i64(out, e->at_ms);
    return 0;
}

int supply_snapshot_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_supply_t *e)
{
    (void)s;
    ids_get(r, e);
    e->qty = allot_reader_i64(r);
    e->received = allot_reader_i64(r);
    e->held = allot_reader_i64(r);
    e->eta_ms = allot_reader_i64(r);
    e->state = allot_reader_u8(r);
    e->at_ms = allot_reader_i64(r);
    bool ok = !r->failed && ids_ok(e) && qty_ok(e->qty) && e->received >= 0 &&
              e->received <= e->qty && e->held >= 0 && e->held <= e->qty - e->received &&
              allot_event_time_ok(e->eta_ms) && e->state < ALLOT_SUPPLY_STATE_COUNT &&
              allot_event_time_ok(e->at_ms);
    if (ok && e->state == ALLOT_SUPPLY_OPEN)
        ok = e->received < e->qty;
    if (ok && e->state == ALLOT_SUPPLY_RECEIVED)
        ok = e->received == e->qty;
    if (ok && e->state != ALLOT_SUPPLY_OPEN)
        ok = e->held == 0;
    return ok ? 0 : ALLOT_ECORRUPT;
}
