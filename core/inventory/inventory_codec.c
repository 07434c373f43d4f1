/* inventory_codec.c - payloads of the inventory's event records (rows in core/events.def).
 *
 * Byte format, after the version byte and in the conventions of core/event/codec.c:
 *
 * 1  LOCATION_PUT        str id; u8 type (0 warehouse, 1 store, 2 dc, 3 partner);
 *                        u8 flags (bit0 ship, bit1 pickup, bit2 active; others 0);
 *                        f64 lat (-90..90); f64 lon (-180..180); i64 priority (int32 range);
 *                        f64 same_day_radius_km (0..20038); i64 daily_capacity (0..2^31-1);
 *                        then the calendar (location payload version 2)
 * 16 LOCATION_SNAPSHOT   as LOCATION_PUT up to daily_capacity, then i64 capacity_day (the UTC
 *                        day of a time); i64 capacity_count (0..2^40); then the calendar
 *    calendar            u8 location_version = 2; str timezone (an IANA name, 1..64 bytes of
 *                        [A-Za-z0-9/_+-], no leading '/', no "..");
 *                        u16 cutoff_minute (0..1439, local); u8 processing_days (0..30);
 *                        u8 work_days (bit0 Monday .. bit6 Sunday, not 0, bit7 0);
 *                        u8 holiday_count (0..64); holiday_count x i64 date (days since
 *                        1970-01-01, local, strictly ascending, 0..2932896 = 9999-12-31)
 *                        Location payload version 1 (written before calendars existed) ends
 *                        before the calendar: it decodes with the default calendar (UTC,
 *                        cutoff 23:59, no processing days, Monday..Friday, no holidays).
 * 2  STOCK_SET           str sku; str location; i64 on_hand; i64 safety_stock (both
 *                        0..2^40); i64 as_of_ms (position's as_of after the set; INT64_MIN none)
 * 3  STOCK_ADJUST        str sku; str location; i64 delta (non-zero, |delta| <= 2^40);
 *                        i64 on_hand_after (0..2^40); i64 at_ms; str key (len 0 = no key)
 * 17 SKU_SNAPSHOT        str sku; u16 position_count; position_count x { str location;
 *                        i64 on_hand; i64 reserved; i64 allocated; i64 safety_stock;
 *                        i64 as_of_ms } (locations distinct; quantities 0..2^40)
 * 19 ADJUST_KEY_SNAPSHOT str key; str sku; str location; i64 delta; i64 at_ms; i64 on_hand;
 *                        i64 reserved; i64 allocated; i64 safety_stock; i64 available
 *
 * Apply (inventory_apply.c) additionally requires the locations a record names to exist.
 */
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/inventory/inventory_private.h"

/* Fixed fields plus at most four ids, or one location with its calendar. */
#define INVENTORY_EVENT_BYTES_MAX 1024
/* The byte after a location's version 1 fields in version 2 payloads. */
#define LOCATION_PAYLOAD_VERSION 2
_Static_assert(64 + ALLOT_ID_BYTES_MAX + 8 + ALLOT_TIMEZONE_BYTES_MAX + 8 * ALLOT_HOLIDAYS_MAX <=
                   INVENTORY_EVENT_BYTES_MAX,
               "a location record with a full calendar fits");
/* One position of a SKU snapshot, at most: a location id and five i64. */
#define SKU_SNAPSHOT_POSITION_BYTES_MAX (2 + ALLOT_ID_BYTES_MAX + 40)

/* A location named by a position: apply resolves it against the locations that exist (whose ids
 * were checked when they were created) and refuses the record when none matches, so only the
 * length is checked here (checkpoint loads decode ~10M of these). */
static bool location_ref_ok(allot_str_t id)
{
    return id.len >= 1 && id.len <= ALLOT_ID_BYTES_MAX;
}

/* A location's capacity day: the UTC day of a time a record may hold. */
static bool day_ok(int64_t day)
{
    return day >= allot_day_from_ms(ALLOT_TIME_MS_MIN) &&
           day <= allot_day_from_ms(ALLOT_TIME_MS_MAX);
}

static bool delta_ok(int64_t delta)
{
    return delta != 0 && delta >= -ALLOT_QUANTITY_MAX && delta <= ALLOT_QUANTITY_MAX;
}

/* ---- locations ------------------------------------------------------------------------------ */

static int location_encode(const allot_event_location_t *e, bool snapshot, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, INVENTORY_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
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
    const allot_calendar_t *c = &e->calendar;
    allot_bytes_put_u8(out, LOCATION_PAYLOAD_VERSION);
    allot_bytes_put_str(out, allot_calendar_timezone(c));
    allot_bytes_put_u16(out, c->cutoff_minute);
    allot_bytes_put_u8(out, c->processing_days);
    allot_bytes_put_u8(out, c->work_days);
    allot_bytes_put_u8(out, c->holiday_count);
    for (uint32_t i = 0; i < c->holiday_count; i++)
        allot_bytes_put_i64(out, c->holidays[i]);
    return 0;
}

/* The calendar of a version 2 payload; a version 1 payload ends before it (the defaults). */
static bool location_calendar_decode(allot_reader_t *r, allot_calendar_t *c)
{
    allot_calendar_defaults(c);
    if (r->offset == r->len)
        return true;
    if (allot_reader_u8(r) != LOCATION_PAYLOAD_VERSION)
        return false;
    allot_str_t timezone = allot_reader_str(r);
    c->cutoff_minute = allot_reader_u16(r);
    c->processing_days = allot_reader_u8(r);
    c->work_days = allot_reader_u8(r);
    c->holiday_count = allot_reader_u8(r);
    if (r->failed || !allot_timezone_name_valid(timezone) || c->holiday_count > ALLOT_HOLIDAYS_MAX)
        return false;
    memcpy(c->timezone, timezone.ptr, timezone.len);
    c->timezone[timezone.len] = '\0';
    c->timezone_len = (uint8_t)timezone.len;
    for (uint32_t i = 0; i < c->holiday_count; i++) {
        int64_t date = allot_reader_i64(r);
        if (date < ALLOT_DATE_MIN || date > ALLOT_DATE_MAX)
            return false;
        c->holidays[i] = (int32_t)date;
    }
    allot_error_detail_t detail;
    return !r->failed && allot_calendar_check(c, &detail) == 0;
}

int location_put_encode(const allot_event_location_t *e, allot_bytes_t *out)
{
    return location_encode(e, false, out);
}

int location_snapshot_encode(const allot_event_location_t *e, allot_bytes_t *out)
{
    return location_encode(e, true, out);
}

static int location_decode(allot_reader_t *r, bool snapshot, allot_event_location_t *e)
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
    ok = ok && !r->failed && location_calendar_decode(r, &e->calendar);
    return ok ? 0 : ALLOT_ECORRUPT;
}

int location_put_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_location_t *e)
{
    (void)s;
    return location_decode(r, false, e);
}

int location_snapshot_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_location_t *e)
{
    (void)s;
    return location_decode(r, true, e);
}

/* ---- stock ---------------------------------------------------------------------------------- */

int stock_set_encode(const allot_event_stock_set_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, INVENTORY_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, e->sku);
    allot_bytes_put_str(out, e->location);
    allot_bytes_put_i64(out, e->on_hand);
    allot_bytes_put_i64(out, e->safety_stock);
    allot_bytes_put_i64(out, e->as_of_ms);
    return 0;
}

int stock_set_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_stock_set_t *e)
{
    (void)s;
    e->sku = allot_reader_str(r);
    e->location = allot_reader_str(r);
    e->on_hand = allot_reader_i64(r);
    e->safety_stock = allot_reader_i64(r);
    e->as_of_ms = allot_reader_i64(r);
    bool ok = allot_id_valid(e->sku) && allot_id_valid(e->location);
    return ok && allot_event_quantity_ok(e->on_hand) && allot_event_quantity_ok(e->safety_stock)
               ? 0
               : ALLOT_ECORRUPT;
}

int stock_adjust_encode(const allot_event_stock_adjust_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, INVENTORY_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, e->sku);
    allot_bytes_put_str(out, e->location);
    allot_bytes_put_i64(out, e->delta);
    allot_bytes_put_i64(out, e->on_hand_after);
    allot_bytes_put_i64(out, e->at_ms);
    allot_bytes_put_str(out, e->key);
    return 0;
}

int stock_adjust_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_stock_adjust_t *e)
{
    (void)s;
    e->sku = allot_reader_str(r);
    e->location = allot_reader_str(r);
    e->delta = allot_reader_i64(r);
    e->on_hand_after = allot_reader_i64(r);
    e->at_ms = allot_reader_i64(r);
    e->key = allot_reader_str(r);
    bool ok = allot_id_valid(e->sku) && allot_id_valid(e->location) && delta_ok(e->delta);
    ok = ok && allot_event_quantity_ok(e->on_hand_after);
    ok = ok && (e->key.len == 0 || allot_id_valid(e->key)) && allot_event_time_ok(e->at_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

/* ---- SKU snapshots -------------------------------------------------------------------------- */

int sku_snapshot_encode(const allot_event_sku_snapshot_t *e, allot_bytes_t *out)
{
    int rc =
        allot_bytes_reserve(out, 64 + (size_t)e->position_count * SKU_SNAPSHOT_POSITION_BYTES_MAX);
    if (rc != 0)
        return rc;
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
    return 0;
}

int sku_snapshot_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_sku_snapshot_t *e)
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
        if (r->failed || !location_ref_ok(p->location) || !allot_event_quantity_ok(p->on_hand) ||
            !allot_event_quantity_ok(p->reserved) || !allot_event_quantity_ok(p->allocated) ||
            !allot_event_quantity_ok(p->safety_stock))
            return ALLOT_ECORRUPT;
    }
    return 0;
}

/* ---- adjust-key snapshots ------------------------------------------------------------------- */

int adjust_key_snapshot_encode(const allot_event_adjust_key_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, INVENTORY_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
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
    return 0;
}

int adjust_key_snapshot_decode(allot_reader_t *r, allot_event_scratch_t *s,
                               allot_event_adjust_key_t *e)
{
    (void)s;
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
    ok = ok && delta_ok(e->delta) && allot_event_time_ok(e->at_ms);
    ok = ok && allot_event_quantity_ok(e->on_hand) && allot_event_quantity_ok(e->reserved);
    ok = ok && allot_event_quantity_ok(e->allocated) && allot_event_quantity_ok(e->safety_stock);
    return ok && allot_event_quantity_ok(e->available) ? 0 : ALLOT_ECORRUPT;
}
