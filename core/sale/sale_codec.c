/* sale_codec.c - payloads of the SKU settings' and queues' event records (rows in
 * core/events.def).
 *
 * Byte format, after the version byte and in the conventions of core/event/codec.c:
 *
 * 40 SKU_PUT               settings; i64 at_ms
 * 48 SKU_SETTINGS_SNAPSHOT settings; i64 admitted_upto_ms; u64 admitted_total
 *    settings = str sku; i64 low_stock (0..2^40); i64 max_per_customer (0..2^40);
 *               u8 has_queue (0 or 1); i64 rate_per_s; i64 token_ttl_s (with a queue:
 *               1..100000 and 1..86400; without: both 0)
 * 41 QUEUE_JOIN            str sku; str customer; u64 ticket (>= 1); i64 at_ms
 * 42 QUEUE_ADMIT           str sku; u16 count (1..4096); u64 seed; i64 at_ms; i64 expires_at_ms;
 *                          i64 admitted_upto_ms (the next `count` waiting tickets of the SKU's
 *                          queue are admitted; ticket n's secret derives from seed and n)
 * 43 QUEUE_EXPIRE          u64 ticket; i64 at_ms (an admitted ticket's token expires)
 * 49 QUEUE_TICKET_SNAPSHOT u64 ticket (>= 1); str sku; str customer; u8 state (0 waiting,
 *                          1 admitted, 2 used, 3 expired); i64 joined_ms; i64 expires_at_ms
 *                          (0 while waiting); u64 secret (0 while waiting)
 *
 * Apply (sale_apply.c) additionally requires the SKU of a join, admit or ticket to have a queue,
 * the tickets a record names to exist (expire: admitted), an admit to find `count` waiting
 * tickets, and a join's ticket number to be new.
 */
#include "core/errors.h"
#include "core/sale/sale_private.h"

#define SALE_EVENT_BYTES_MAX 512

static bool settings_ok(const allot_event_sku_settings_t *e)
{
    if (!allot_id_valid(e->sku) || !allot_event_quantity_ok(e->low_stock) ||
        !allot_event_quantity_ok(e->max_per_customer))
        return false;
    if (!e->has_queue)
        return e->rate_per_s == 0 && e->token_ttl_s == 0;
    return e->rate_per_s >= 1 && e->rate_per_s <= ALLOT_QUEUE_RATE_PER_S_MAX &&
           e->token_ttl_s >= ALLOT_QUEUE_TOKEN_TTL_S_MIN &&
           e->token_ttl_s <= ALLOT_QUEUE_TOKEN_TTL_S_MAX;
}

static int settings_put(const allot_event_sku_settings_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, SALE_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, e->sku);
    allot_bytes_put_i64(out, e->low_stock);
    allot_bytes_put_i64(out, e->max_per_customer);
    allot_bytes_put_u8(out, e->has_queue);
    allot_bytes_put_i64(out, e->rate_per_s);
    allot_bytes_put_i64(out, e->token_ttl_s);
    return 0;
}

static void settings_get(allot_reader_t *r, allot_event_sku_settings_t *e)
{
    *e = (allot_event_sku_settings_t){0};
    e->sku = allot_reader_str(r);
    e->low_stock = allot_reader_i64(r);
    e->max_per_customer = allot_reader_i64(r);
    uint8_t has_queue = allot_reader_u8(r);
    e->has_queue = has_queue == 1;
    e->rate_per_s = allot_reader_i64(r);
    e->token_ttl_s = allot_reader_i64(r);
    if (has_queue > 1)
        r->failed = true;
}

int sku_put_encode(const allot_event_sku_settings_t *e, allot_bytes_t *out)
{
    int rc = settings_put(e, out);
    if (rc == 0)
        allot_bytes_put_i64(out, e->at_ms);
    return rc;
}

int sku_put_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_sku_settings_t *e)
{
    (void)s;
    settings_get(r, e);
    e->at_ms = allot_reader_i64(r);
    bool ok = !r->failed && settings_ok(e) && allot_event_time_ok(e->at_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

int sku_settings_snapshot_encode(const allot_event_sku_settings_t *e, allot_bytes_t *out)
{
    int rc = settings_put(e, out);
    if (rc == 0) {
        allot_bytes_put_i64(out, e->admitted_upto_ms);
        allot_bytes_put_u64(out, e->admitted_total);
    }
    return rc;
}

int sku_settings_snapshot_decode(allot_reader_t *r, allot_event_scratch_t *s,
                                 allot_event_sku_settings_t *e)
{
    (void)s;
    settings_get(r, e);
    e->admitted_upto_ms = allot_reader_i64(r);
    e->admitted_total = allot_reader_u64(r);
    bool ok = !r->failed && settings_ok(e) && allot_event_time_ok(e->admitted_upto_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

int queue_join_encode(const allot_event_queue_join_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, SALE_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, e->sku);
    allot_bytes_put_str(out, e->customer);
    allot_bytes_put_u64(out, e->ticket);
    allot_bytes_put_i64(out, e->at_ms);
    return 0;
}

int queue_join_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_queue_join_t *e)
{
    (void)s;
    e->sku = allot_reader_str(r);
    e->customer = allot_reader_str(r);
    e->ticket = allot_reader_u64(r);
    e->at_ms = allot_reader_i64(r);
    bool ok = !r->failed && allot_id_valid(e->sku) && allot_id_valid(e->customer) &&
              e->ticket >= 1 && allot_event_time_ok(e->at_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

int queue_admit_encode(const allot_event_queue_admit_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, SALE_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_str(out, e->sku);
    allot_bytes_put_u16(out, (uint16_t)e->count);
    allot_bytes_put_u64(out, e->seed);
    allot_bytes_put_i64(out, e->at_ms);
    allot_bytes_put_i64(out, e->expires_at_ms);
    allot_bytes_put_i64(out, e->admitted_upto_ms);
    return 0;
}

int queue_admit_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_queue_admit_t *e)
{
    (void)s;
    e->sku = allot_reader_str(r);
    uint16_t count = allot_reader_u16(r);
    e->seed = allot_reader_u64(r);
    e->at_ms = allot_reader_i64(r);
    e->expires_at_ms = allot_reader_i64(r);
    e->admitted_upto_ms = allot_reader_i64(r);
    bool ok = !r->failed && allot_id_valid(e->sku) && count >= 1 &&
              count <= ALLOT_QUEUE_ADMIT_BATCH_MAX && allot_event_time_ok(e->at_ms) &&
              allot_event_time_ok(e->expires_at_ms) && allot_event_time_ok(e->admitted_upto_ms);
    e->count = count;
    return ok ? 0 : ALLOT_ECORRUPT;
}

int queue_expire_encode(const allot_event_queue_expire_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, 16);
    if (rc != 0)
        return rc;
    allot_bytes_put_u64(out, e->ticket);
    allot_bytes_put_i64(out, e->at_ms);
    return 0;
}

int queue_expire_decode(allot_reader_t *r, allot_event_scratch_t *s, allot_event_queue_expire_t *e)
{
    (void)s;
    e->ticket = allot_reader_u64(r);
    e->at_ms = allot_reader_i64(r);
    bool ok = !r->failed && e->ticket >= 1 && allot_event_time_ok(e->at_ms);
    return ok ? 0 : ALLOT_ECORRUPT;
}

int queue_ticket_snapshot_encode(const allot_event_queue_ticket_t *e, allot_bytes_t *out)
{
    int rc = allot_bytes_reserve(out, SALE_EVENT_BYTES_MAX);
    if (rc != 0)
        return rc;
    allot_bytes_put_u64(out, e->ticket);
    allot_bytes_put_str(out, e->sku);
    allot_bytes_put_str(out, e->customer);
    allot_bytes_put_u8(out, e->state);
    allot_bytes_put_i64(out, e->joined_ms);
    allot_bytes_put_i64(out, e->expires_at_ms);
    allot_bytes_put_u64(out, e->secret);
    return 0;
}

int queue_ticket_snapshot_decode(allot_reader_t *r, allot_event_scratch_t *s,
                                 allot_event_queue_ticket_t *e)
{
    (void)s;
    e->ticket = allot_reader_u64(r);
    e->sku = allot_reader_str(r);
    e->customer = allot_reader_str(r);
    e->state = allot_reader_u8(r);
    e->joined_ms = allot_reader_i64(r);
    e->expires_at_ms = allot_reader_i64(r);
    e->secret = allot_reader_u64(r);
    bool ok = !r->failed && e->ticket >= 1 && allot_id_valid(e->sku) &&
              allot_id_valid(e->customer) && e->state < ALLOT_TICKET_STATE_COUNT &&
              allot_event_time_ok(e->joined_ms) && allot_event_time_ok(e->expires_at_ms);
    bool waiting = e->state == ALLOT_TICKET_WAITING;
    ok = ok && (waiting ? e->secret == 0 : e->secret != 0);
    return ok ? 0 : ALLOT_ECORRUPT;
}
