/* reservation_codec.c - payloads of the reservations' event records (rows in core/events.def).
 *
 * Byte format, after the version byte and in the conventions of core/event/codec.c:
 *
 * 4  RESERVATION_CREATE   body (below)
 * 5  RESERVATION_EXTEND   str id; i64 expires_at_ms; i64 at_ms
 * 6  RESERVATION_RELEASE  str id; u8 reason (1 released, 2 expired); i64 at_ms
 * 7  RESERVATION_REPLACE  i64 at_ms (the old hold of the same id is released, reason replaced);
 *                         body (the new hold; created_ms = at_ms)
 * 18 RESERVATION_SNAPSHOT u8 status (0 active, 1 released, 2 expired); i64 ended_ms; body
 *                         (line_count 0 allowed only for ended ones)
 *
 * body = str id; u64 request_hash; i64 created_ms; i64 expires_at_ms; u16 line_count (1..100);
 *        line_count x { str sku; i64 qty_requested (1..2^40); u16 allocation_count;
 *                       allocation_count x { str location; i64 qty (1..2^40) } }
 *        where a line's allocation quantities sum to at most its qty_requested;
 *        then, only when the hold has a customer, uses a queue ticket or holds backorders
 *        (records written before these existed end with the lines, and so do those without any):
 *        str customer (len 0 = none, else an id); u64 ticket (0 = none; a snapshot: 0)
 *        then, only when the hold holds backorders (records written before them end here):
 *        u16 backorder_count (1..allocation_count); backorder_count x u16 allocation (the
 *        allocation's number in the body, strictly ascending): those allocations hold units of
 *        open supply and their `location` is the supply's id
 *
 * Apply (reservation_apply.c) additionally requires the locations to exist (for create and
 * replace also the supplies: open, of the line's SKU, with room for the units), a live hold of the
 * id for extend, release and replace, and the positions a hold adds to to have reserved counts
 * in range (0..2^40).
 */
#include <stdlib.h>

#include "core/errors.h"
#include "core/reservation/reservation_private.h"

/* Fixed fields plus at most four ids. */
#define RESERVATION_EVENT_BYTES_MAX 1024

/* A location named by an allocation: apply resolves it against the locations that exist (whose
 * ids were checked when they were created) and refuses the record when none matches. */
static bool location_ref_ok(allot_str_t id)
{
    return id.len >= 1 && id.len <= ALLOT_ID_BYTES_MAX;
}

/* ---- body: one hold ------------------------------------------------------------------------- */

static size_t body_bytes(const allot_event_reservation_t *e)
{
    size_t bytes = 64 + e->id.len + 10 + e->customer.len;
    for (uint32_t i = 0; i < e->line_count; i++)
        bytes += 16 + e->lines[i].sku.len;
    for (uint32_t i = 0; i < e->allocation_count; i++)
        bytes += 12 + e->allocations[i].location.len;
    return bytes;
}

static void body_put(const allot_event_reservation_t *e, allot_bytes_t *out)
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
    uint32_t backorders = 0;
    for (uint32_t k = 0; k < e->allocation_count; k++)
        backorders += e->allocations[k].supply;
    if (e->customer.len == 0 && e->ticket == 0 && backorders == 0)
        return;
    allot_bytes_put_str(out, e->customer);
    allot_bytes_put_u64(out, e->ticket);
    if (backorders == 0)
        return;
    allot_bytes_put_u16(out, (uint16_t)backorders);
    for (uint32_t k = 0; k < e->allocation_count; k++)
        if (e->allocations[k].supply)
            allot_bytes_put_u16(out, (uint16_t)k);
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

static int line_get(allot_reader_t *r, allot_event_scratch_t *s, allot_event_reservation_t *e,
                    allot_event_line_t *line)
{
    line->sku = allot_reader_str(r);
    line->qty_requested = allot_reader_i64(r);
    line->allocation_count = allot_reader_u16(r);
    line->allocation_first = e->allocation_count;
    if (r->failed || !allot_id_valid(line->sku) || !allot_event_amount_ok(line->qty_requested))
        return ALLOT_ECORRUPT;
    int64_t held = 0;
    for (uint32_t k = 0; k < line->allocation_count; k++) {
        if (e->allocation_count == s->allocation_capacity && scratch_allocation_grow(s) != 0)
            return ALLOT_ENOMEM;
        allot_event_allocation_t *a = &s->allocations[e->allocation_count++];
        a->location = allot_reader_str(r);
        a->qty = allot_reader_i64(r);
        a->supply = false;
        if (r->failed || !location_ref_ok(a->location) || !allot_event_amount_ok(a->qty))
            return ALLOT_ECORRUPT;
        held += a->qty;
        if (held > line->qty_requested)
            return ALLOT_ECORRUPT;
    }
    return 0;
}

/* The backorder section: which allocations hold supply. */
static int backorders_get(allot_reader_t *r, allot_event_reservation_t *e)
{
    uint32_t count = allot_reader_u16(r);
    if (r->failed || count == 0 || count > e->allocation_count)
        return ALLOT_ECORRUPT;
    uint32_t next = 0; /* the lowest allocation number the next entry may name */
    for (uint32_t i = 0; i < count; i++) {
        uint32_t k = allot_reader_u16(r);
        if (r->failed || k < next || k >= e->allocation_count)
            return ALLOT_ECORRUPT;
        e->allocations[k].supply = true;
        next = k + 1;
    }
    return 0;
}

static int body_get(allot_reader_t *r, allot_event_scratch_t *s, uint32_t line_count_min,
                    allot_event_reservation_t *e)
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
        int rc = line_get(r, s, e, &e->lines[i]);
        if (rc != 0)
            return rc;
    }
    e->allocations = s->allocations;
    e->customer = (allot_str_t){0};
    e->ticket = 0;
    if (r->offset == r->len)
        return 0; /* no customer, no ticket */
    e->customer = allot_reader_str(r);
    e->ticket = allot_reader_u64(r);
    bool ok = !r->failed && (e->customer.len == 0 || allot_id_valid(e->customer));
    if (!ok)
        return ALLOT_ECORRUPT;
    if (r->offset == r->len) /* no backorders */
        return e->customer.len > 0 || e->ticket != 0 ? 0 : ALLOT_ECORRUPT;
    return backorders_get(r, e);
}

/* ---- create, replace, snapshot -------------------------------------------------------------- */

int reservation_create_encode(const allot_event_reservation_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, 32 + body_bytes(e));
    if (rc == 0)
        body_put(e, out);
    return rc;
}

int reservation_create_decode(allot_reader_t *r, allot_event_scratch_t *s,
                              allot_event_reservation_t *e)
{
    e->status = ALLOT_RESERVATION_ACTIVE;
    e->ended_ms = e->at_ms = 0;
    return body_get(r, s, 1, e);
}

int reservation_replace_encode(const allot_event_reservation_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, 32 + body_bytes(e));
    if (rc != 0)
        return rc;
    allot_bytes_put_i64(out, e->at_ms);
    body_put(e, out);
    return 0;
}

int reservation_replace_decode(allot_reader_t *r, allot_event_scratch_t *s,
                               allot_event_reservation_t *e)
{
    e->status = ALLOT_RESERVATION_ACTIVE;
    e->ended_ms = 0;
    e->at_ms = allot_reader_i64(r);
    if (!allot_event_time_ok(e->at_ms))
        return ALLOT_ECORRUPT;
    return body_get(r, s, 1, e);
}

int reservation_snapshot_encode(const allot_event_reservation_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, 32 + body_bytes(e));
    if (rc != 0)
        return rc;
    allot_bytes_put_u8(out, e->status);
    allot_bytes_put_i64(out, e->ended_ms);
    body_put(e, out);
    return 0;
}

int reservation_snapshot_decode(allot_reader_t *r, allot_event_scratch_t *s,
                                allot_event_reservation_t *e)
{
    e->status = allot_reader_u8(r);
    e->ended_ms = allot_reader_i64(r);
    e->at_ms = 0;
    if (e->status >= ALLOT_RESERVATION_STATUS_COUNT || !allot_event_time_ok(e->ended_ms))
        return ALLOT_ECORRUPT;
    int rc = body_get(r, s, e->status == ALLOT_RESERVATION_ACTIVE ? 1 : 0, e);
    return rc == 0 && e->ticket != 0 ? ALLOT_ECORRUPT : rc;
}

/* ---- extend, release ------------------------------------------------------------------------ */

int reservation_extend_encode(const allot_event_extend_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, RESERVATION_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, e->id);
    allot_bytes_put_i64(out, e->expires_at_ms);
    allot_bytes_put_i64(out, e->at_ms);
    return 0;
}

int reservation_extend_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_extend_t *e)
{
    (void)s;
    e->id = allot_reader_str(r);
    e->expires_at_ms = allot_reader_i64(r);
    e->at_ms = allot_reader_i64(r);
    bool ok = allot_id_valid(e->id);
    ok = ok && allot_event_time_ok(e->expires_at_ms) && allot_event_time_ok(e->at_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

int reservation_release_encode(const allot_event_release_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, RESERVATION_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, e->id);
    allot_bytes_put_u8(out, e->reason);
    allot_bytes_put_i64(out, e->at_ms);
    return 0;
}

int reservation_release_decode(allot_reader_t *r, allot_event_scratch_t *s,
                               allot_event_release_t *e)
{
    (void)s;
    e->id = allot_reader_str(r);
    e->reason = allot_reader_u8(r);
    e->at_ms = allot_reader_i64(r);
    bool reason_ok = e->reason == ALLOT_RELEASE_RELEASED || e->reason == ALLOT_RELEASE_EXPIRED;
    return allot_id_valid(e->id) && reason_ok && allot_event_time_ok(e->at_ms) ? 0 : ALLOT_ECORRUPT;
}
