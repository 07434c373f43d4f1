/* events.c - the change stream in the server: changes of applied records held until durable,
 * then stored, pushed and answered; reads, long polls, retention (contract in events.h).
 *
 * An event's bytes in the store (after the store's at_ms, persist/event_store.c): u8 format
 * version; u8 type (allot_change_type_t); u8 sku_len, sku; u8 order_len, order; u8
 * customer_len, customer (the filter keys; len 0: none); then the event as one MessagePack map,
 * {...its fields (docs/events.md), "seq", "at_ms", "type"} in this order, where
 *   - version 1 (written before issue 20): the whole map;
 *   - version 2 (written now): the map without its last three pairs, which are derived when it
 *     is read: seq from the store's key, at_ms from the store's at_ms, type's name from the type
 *     byte (the map's header still counts them). Readers give both versions the same bytes: the
 *     whole map, integers in their shortest MessagePack form. Any other version is skipped.
 * A version stays below 0x80: the store marks its runs of events with that byte in this place.
 */
#include "events.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/state.h"
#include "core/stream.h"
#include "events_private.h"
#include "log.h"
#include "pack.h"
#include "persist/event_store.h"
#include "server_internal.h"

#define EVENT_FORMAT_VERSION           2
#define EVENT_FORMAT_VERSION_WHOLE_MAP 1
_Static_assert(EVENT_FORMAT_VERSION < 0x80, "0x80 in a version's place marks the store's runs");
/* During replay, derived events are stored whenever this many bytes wait. */
#define EVENTS_REPLAY_FLUSH_BYTES (16u << 20)
/* Live, the events of durable records nobody waits for are stored once this many bytes wait
 * (and at the next housekeeping tick, read or checkpoint): one LMDB transaction for many group
 * commits instead of one per commit. */
#define EVENTS_STORE_DEFER_BYTES_MAX (1u << 20)
/* Retention runs this often (more often while a step did not finish). */
#define EVENTS_TRIM_PERIOD_MS 1000

/* ---- packing a change ----------------------------------------------------------------------- */

/* A change's bytes go straight into the pending buffer, the keys pre-encoded, each field checking
 * room once: the bytes msgpack-c's packer wrote piece by piece (20-40 calls through its write
 * callback per event, and a strlen per key), tests/unit/test_net_events_pack.c holds them
 * equal. */
typedef struct event_writer {
    msgpack_sbuffer *out;
    bool failed; /* out of memory: the change is left out */
} event_writer_t;

/* A key as its MessagePack string (every key is a fixstr): a byte put_key turns into the header,
 * the key's bytes, and the count of both. */
#define EVENT_KEY(key)             ("\0" key), (sizeof(key))
#define EVENT_STR_HEADER_BYTES_MAX 5
#define EVENT_INT_BYTES_MAX        9
#define EVENT_BUFFER_BYTES_MIN     8192

static char *writer_room_grow(event_writer_t *w, size_t n)
{
    msgpack_sbuffer *out = w->out;
    if (w->failed || n > SIZE_MAX / 2 - out->size) {
        w->failed = true;
        return NULL;
    }
    size_t alloc = out->alloc > EVENT_BUFFER_BYTES_MIN ? out->alloc : EVENT_BUFFER_BYTES_MIN;
    while (alloc - out->size < n)
        alloc *= 2;
    char *data = realloc(out->data, alloc);
    if (data == NULL) {
        w->failed = true;
        return NULL;
    }
    out->data = data;
    out->alloc = alloc;
    return data + out->size;
}

/* Room for n more bytes at the buffer's end; NULL when memory ran out. */
static inline char *writer_room(event_writer_t *w, size_t n)
{
    if (w->out->alloc - w->out->size >= n && !w->failed)
        return w->out->data + w->out->size;
    return writer_room_grow(w, n);
}

/* The key (its bytes from EVENT_KEY, a leading placeholder for the fixstr header) at p. */
static inline size_t put_key(char *p, const char *key, size_t key_bytes)
{
    memcpy(p, key, key_bytes);
    p[0] = (char)(0xa0u | (key_bytes - 1));
    return key_bytes;
}

static void field_int(event_writer_t *w, const char *key, size_t key_bytes, int64_t v)
{
    char *p = writer_room(w, key_bytes + EVENT_INT_BYTES_MAX);
    if (p == NULL)
        return;
    size_t n = put_key(p, key, key_bytes);
    w->out->size += n + pack_put_int(p + n, v);
}

/* key: the string, or nil when s is NULL. */
static void field_bytes(event_writer_t *w, const char *key, size_t key_bytes, const char *s,
                        size_t len)
{
    char *p = writer_room(w, key_bytes + EVENT_STR_HEADER_BYTES_MAX + len);
    if (p == NULL)
        return;
    size_t n = put_key(p, key, key_bytes);
    if (s == NULL) {
        p[n] = (char)0xc0;
        w->out->size += n + 1;
        return;
    }
    n += pack_put_str_header(p + n, len);
    if (len > 0)
        memcpy(p + n, s, len);
    w->out->size += n + len;
}

static inline void field_str(event_writer_t *w, const char *key, size_t key_bytes, allot_str_t s)
{
    field_bytes(w, key, key_bytes, s.len > 0 ? s.ptr : "", s.len);
}

/* An empty string is nil. */
static inline void field_opt_str(event_writer_t *w, const char *key, size_t key_bytes,
                                 allot_str_t s)
{
    field_bytes(w, key, key_bytes, s.len > 0 ? s.ptr : NULL, s.len);
}

/* NULL is nil. */
static inline void field_cstr(event_writer_t *w, const char *key, size_t key_bytes, const char *s)
{
    field_bytes(w, key, key_bytes, s, s != NULL ? strlen(s) : 0);
}

static void put_map_header(event_writer_t *w, uint32_t n)
{
    char *p = writer_room(w, 5);
    if (p != NULL)
        w->out->size += pack_put_container_header(p, true, n);
}

static void fields_lines(event_writer_t *w, const allot_change_t *c)
{
    char *p = writer_room(w, 6 + 5);
    if (p == NULL)
        return;
    size_t n = put_key(p, EVENT_KEY("lines"));
    w->out->size += n + pack_put_container_header(p + n, false, c->line_count);
    for (uint32_t i = 0; i < c->line_count; i++) {
        put_map_header(w, 2);
        field_str(w, EVENT_KEY("sku"), c->lines[i].sku);
        field_int(w, EVENT_KEY("qty"), c->lines[i].qty);
    }
}

static void fields_stock(event_writer_t *w, const allot_change_t *c)
{
    put_map_header(w, 3 + 10);
    field_str(w, EVENT_KEY("sku"), c->sku);
    field_str(w, EVENT_KEY("location"), c->location);
    field_int(w, EVENT_KEY("on_hand"), c->on_hand);
    field_int(w, EVENT_KEY("reserved"), c->reserved);
    field_int(w, EVENT_KEY("allocated"), c->allocated);
    field_int(w, EVENT_KEY("safety_stock"), c->safety_stock);
    field_int(w, EVENT_KEY("available"), c->available);
    field_int(w, EVENT_KEY("delta"), c->on_hand_delta);
    field_cstr(w, EVENT_KEY("reason"), c->reason);
    field_opt_str(w, EVENT_KEY("ref"), c->ref);
}

static void fields_shipment(event_writer_t *w, const allot_change_t *c)
{
    put_map_header(w, 3 + 7);
    field_str(w, EVENT_KEY("order"), c->order);
    char id[16];
    uint32_t len = allot_shipment_id_format(c->shipment, id);
    field_str(w, EVENT_KEY("shipment"), (allot_str_t){id, len});
    field_str(w, EVENT_KEY("location"), c->location);
    field_cstr(w, EVENT_KEY("from"), c->from);
    field_cstr(w, EVENT_KEY("to"), c->to);
    field_opt_str(w, EVENT_KEY("tracking"), c->tracking);
    field_opt_str(w, EVENT_KEY("customer"), c->customer);
}

static void fields_supply(event_writer_t *w, const allot_change_t *c)
{
    put_map_header(w, 3 + 9);
    field_str(w, EVENT_KEY("id"), c->id);
    field_str(w, EVENT_KEY("sku"), c->sku);
    field_str(w, EVENT_KEY("location"), c->location);
    field_int(w, EVENT_KEY("qty"), c->qty);
    field_int(w, EVENT_KEY("received"), c->received);
    field_int(w, EVENT_KEY("held"), c->held);
    field_int(w, EVENT_KEY("eta_ms"), c->eta_ms);
    field_cstr(w, EVENT_KEY("state"), c->state);
    field_cstr(w, EVENT_KEY("cause"), c->cause);
}

static void fields_stock_level(event_writer_t *w, const allot_change_t *c)
{
    put_map_header(w, 3 + 5);
    field_str(w, EVENT_KEY("sku"), c->sku);
    field_int(w, EVENT_KEY("available"), c->available);
    field_int(w, EVENT_KEY("low_stock"), c->low_stock);
    field_int(w, EVENT_KEY("threshold"), c->low_stock); /* the protocol's name for low_stock */
    field_cstr(w, EVENT_KEY("reason"), c->reason);
}

/* The map's header (counting seq, at_ms and type) and its fields before those three. */
static void fields_put(event_writer_t *w, const allot_change_t *c)
{
    switch (c->type) {
    case ALLOT_CHANGE_STOCK_CHANGED:
        fields_stock(w, c);
        return;
    case ALLOT_CHANGE_AVAIL_CHANGED:
        put_map_header(w, 3 + 2);
        field_str(w, EVENT_KEY("sku"), c->sku);
        field_int(w, EVENT_KEY("available"), c->available);
        return;
    case ALLOT_CHANGE_STOCK_LOW:
    case ALLOT_CHANGE_STOCK_RESTORED:
        fields_stock_level(w, c);
        return;
    case ALLOT_CHANGE_RESERVATION_CREATED:
    case ALLOT_CHANGE_RESERVATION_RELEASED:
    case ALLOT_CHANGE_RESERVATION_EXPIRED:
        put_map_header(w, 3 + 3);
        field_str(w, EVENT_KEY("id"), c->id);
        fields_lines(w, c);
        field_opt_str(w, EVENT_KEY("order"), c->order);
        return;
    case ALLOT_CHANGE_ORDER_CREATED:
        put_map_header(w, 3 + 2);
        field_str(w, EVENT_KEY("id"), c->id);
        field_opt_str(w, EVENT_KEY("customer"), c->customer);
        return;
    case ALLOT_CHANGE_ORDER_CHANGED:
        put_map_header(w, 3 + 5);
        field_str(w, EVENT_KEY("id"), c->id);
        field_opt_str(w, EVENT_KEY("customer"), c->customer);
        field_cstr(w, EVENT_KEY("from"), c->from);
        field_cstr(w, EVENT_KEY("to"), c->to);
        field_cstr(w, EVENT_KEY("cause"), c->cause);
        return;
    case ALLOT_CHANGE_SHIPMENT_CHANGED:
        fields_shipment(w, c);
        return;
    case ALLOT_CHANGE_SUPPLY_CHANGED:
        fields_supply(w, c);
        return;
    case ALLOT_CHANGE_RETURN_CHANGED:
        put_map_header(w, 3 + 4);
        field_str(w, EVENT_KEY("id"), c->id);
        field_str(w, EVENT_KEY("order"), c->order);
        field_cstr(w, EVENT_KEY("state"), c->state);
        field_opt_str(w, EVENT_KEY("customer"), c->customer);
        return;
    default:
        put_map_header(w, 3);
        return;
    }
}

/* The header in front of the map: the filter keys. */
static void header_put(event_writer_t *w, const allot_change_t *c)
{
    allot_str_t order = c->order;
    if (order.len == 0 &&
        (c->type == ALLOT_CHANGE_ORDER_CREATED || c->type == ALLOT_CHANGE_ORDER_CHANGED))
        order = c->id;
    const allot_str_t keys[3] = {c->sku, order, c->customer};
    char *p = writer_room(w, 2 + 3 + keys[0].len + keys[1].len + keys[2].len);
    if (p == NULL)
        return;
    size_t n = 0;
    p[n++] = EVENT_FORMAT_VERSION;
    p[n++] = (char)c->type;
    for (int i = 0; i < 3; i++) {
        p[n++] = (char)(uint8_t)keys[i].len;
        if (keys[i].len > 0)
            memcpy(p + n, keys[i].ptr, keys[i].len);
        n += keys[i].len;
    }
    w->out->size += n;
}

bool events_change_pack(msgpack_sbuffer *out, const allot_change_t *change)
{
    size_t size = out->size;
    event_writer_t w = {out, false};
    header_put(&w, change);
    fields_put(&w, change);
    if (w.failed)
        out->size = size;
    return !w.failed;
}

/* The pairs a version 2 value leaves out, appended. */
static void derived_put(event_writer_t *w, uint64_t seq, int64_t at_ms, uint8_t type)
{
    field_int(w, EVENT_KEY("seq"), (int64_t)seq);
    field_int(w, EVENT_KEY("at_ms"), at_ms);
    field_cstr(w, EVENT_KEY("type"), allot_change_type_name(type));
}

/* ---- pending until durable ------------------------------------------------------------------ */

static void move_add(events_t *events, uint64_t seq, uint64_t lsn, const allot_change_t *c)
{
    if (events->move_count == events->move_capacity) {
        uint32_t capacity = events->move_capacity ? events->move_capacity * 2 : 256;
        pending_move_t *moves = realloc(events->moves, capacity * sizeof(*moves));
        if (moves == NULL) {
            events->lost++;
            return;
        }
        events->moves = moves;
        events->move_capacity = capacity;
    }
    pending_move_t *m = &events->moves[events->move_count++];
    *m = (pending_move_t){.seq = seq,
                          .lsn = lsn,
                          .at_ms = c->at_ms,
                          .delta = c->on_hand_delta,
                          .on_hand = c->on_hand,
                          .reason = c->reason};
    m->sku = events->strings.size;
    m->sku_len = (uint8_t)c->sku.len;
    msgpack_sbuffer_write(&events->strings, c->sku.ptr, c->sku.len);
    m->location = events->strings.size;
    m->location_len = (uint8_t)c->location.len;
    msgpack_sbuffer_write(&events->strings, c->location.ptr, c->location.len);
    m->ref = events->strings.size;
    m->ref_len = (uint8_t)c->ref.len;
    msgpack_sbuffer_write(&events->strings, c->ref.ptr, c->ref.len);
}

static bool pending_grow(events_t *events)
{
    if (events->pending_count < events->pending_capacity)
        return true;
    uint32_t capacity = events->pending_capacity ? events->pending_capacity * 2 : 1024;
    pending_event_t *p = realloc(events->pending, capacity * sizeof(*p));
    if (p == NULL)
        return false;
    events->pending = p;
    events->pending_capacity = capacity;
    return true;
}

/* core's change observer: one change of the record at lsn. */
static void on_change(void *ctx, uint64_t lsn, uint32_t index, const allot_change_t *change)
{
    events_t *events = ctx;
    if (lsn <= events->skip_lsn)
        return; /* replay of a record whose events are stored */
    if (events->replaying && events->values.size > EVENTS_REPLAY_FLUSH_BYTES && index == 0)
        events_store_pending(events, lsn - 1);
    if (!pending_grow(events)) {
        events->lost++;
        return;
    }
    uint64_t seq = allot_change_seq(lsn, index);
    size_t offset = events->values.size;
    if (!events_change_pack(&events->values, change)) {
        events->lost++;
        return;
    }
    events->pending[events->pending_count++] = (pending_event_t){
        seq, lsn, change->at_ms, offset, (uint32_t)(events->values.size - offset), change->type};
    if (change->type == ALLOT_CHANGE_STOCK_CHANGED && change->on_hand_delta != 0)
        move_add(events, seq, lsn, change);
}

static allot_str_t strings_at(const events_t *events, size_t offset, uint8_t len)
{
    return (allot_str_t){events->strings.data + offset, len};
}

/* Put the pending events and movements up to upto_lsn into the store, one transaction;
 * *events_stored: how many events. */
static int store_batch(events_t *events, uint64_t upto_lsn, uint32_t *events_stored,
                       uint32_t *moves_stored)
{
    uint32_t n = 0, m = 0;
    while (n < events->pending_count && events->pending[n].lsn <= upto_lsn)
        n++;
    while (m < events->move_count && events->moves[m].lsn <= upto_lsn)
        m++;
    *events_stored = n;
    *moves_stored = m;
    int rc = event_store_begin(events->store);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        const pending_event_t *p = &events->pending[i];
        rc = event_store_put(events->store, p->seq, p->at_ms, events->values.data + p->offset,
                             p->len);
    }
    for (uint32_t i = 0; rc == 0 && i < m; i++) {
        const pending_move_t *mv = &events->moves[i];
        event_ledger_entry_t e = {mv->seq,
                                  mv->at_ms,
                                  strings_at(events, mv->sku, mv->sku_len),
                                  strings_at(events, mv->location, mv->location_len),
                                  mv->delta,
                                  mv->on_hand,
                                  allot_str_from_cstr(mv->reason),
                                  strings_at(events, mv->ref, mv->ref_len)};
        rc = event_store_ledger_put(events->store, &e);
    }
    if (rc == 0) {
        events->store_commits++;
        return event_store_commit(events->store, upto_lsn);
    }
    event_store_abort(events->store);
    return rc;
}

/* Forget the first n pending events and m movements (stored). */
static void pending_drop(events_t *events, uint32_t n, uint32_t m)
{
    if (n == events->pending_count) {
        events->pending_count = 0;
        events->values.size = 0;
    } else if (n > 0) {
        size_t cut = events->pending[n].offset;
        memmove(events->values.data, events->values.data + cut, events->values.size - cut);
        events->values.size -= cut;
        memmove(events->pending, events->pending + n,
                (events->pending_count - n) * sizeof(*events->pending));
        events->pending_count -= n;
        for (uint32_t i = 0; i < events->pending_count; i++)
            events->pending[i].offset -= cut;
    }
    if (m == events->move_count) {
        events->move_count = 0;
        events->strings.size = 0;
    } else if (m > 0) {
        memmove(events->moves, events->moves + m,
                (events->move_count - m) * sizeof(*events->moves));
        events->move_count -= m; /* their strings stay until the list empties */
    }
}

/* Store what waits up to upto_lsn; with push, hand the stored events to subscribers, long polls
 * and listeners before forgetting them. */
static int store_flush(events_t *events, uint64_t upto_lsn, bool push)
{
    if (events->pending_count == 0 && events->move_count == 0)
        return 0;
    uint32_t n, m;
    int rc = store_batch(events, upto_lsn, &n, &m);
    if (rc != 0) {
        uint64_t suppressed;
        if (log_limit_allow(&events->store_log, (int64_t)uv_now(events->server->loop),
                            LOG_LIMIT_LINES_PER_S, &suppressed))
            log_event(LOG_ERROR, "events_store_failed", LOG_STR("code", allot_error_code(rc)),
                      LOG_STR("message", event_store_message(events->store)),
                      LOG_UINT("suppressed", suppressed));
        return rc;
    }
    if (push && n > 0) {
        events->pushing_stored = true; /* the reads it answers store nothing again */
        events_push(events, events->pending, n);
        events_waiters_wake(events);
        for (uint32_t i = 0; i < events->listener_count; i++)
            events->listeners[i].cb(events->listeners[i].ctx, events_last_seq(events));
        events->pushing_stored = false;
    }
    pending_drop(events, n, m);
    return 0;
}

int events_store_pending(events_t *events, uint64_t upto_lsn)
{
    return store_flush(events, upto_lsn, false);
}

/* May the durable events wait in memory? Only while no subscriber, long poll or listener waits
 * for them and less than EVENTS_STORE_DEFER_BYTES_MAX wait. */
static bool store_deferrable(const events_t *events)
{
    return events->subscription_count == 0 && events->waiter_count == 0 &&
           events->listener_count == 0 &&
           events->values.size + events->strings.size < EVENTS_STORE_DEFER_BYTES_MAX;
}

void events_durable(events_t *events, uint64_t durable_lsn)
{
    if (events == NULL)
        return;
    assert(durable_lsn >= events->durable_lsn);
    events->durable_lsn = durable_lsn;
    if (!store_deferrable(events))
        store_flush(events, durable_lsn, true);
}

void events_store_durable(events_t *events)
{
    if (events != NULL && !events->pushing_stored)
        store_flush(events, events->durable_lsn, true);
}

/* ---- reading -------------------------------------------------------------------------------- */

static bool key_take(const uint8_t **p, const uint8_t *end, allot_str_t *out)
{
    if (*p >= end || (size_t)(end - *p) < 1u + (*p)[0])
        return false;
    *out = (allot_str_t){(const char *)*p + 1, (*p)[0]};
    *p += 1 + (*p)[0];
    return true;
}

static bool key_matches(allot_str_t want, allot_str_t have)
{
    return want.len == 0 || (want.len == have.len && memcmp(want.ptr, have.ptr, have.len) == 0);
}

bool events_value_match(const uint8_t *value, size_t len, const events_filter_t *filter,
                        uint8_t *type, allot_str_t *sku, const uint8_t **map, size_t *map_len)
{
    const uint8_t *p = value + 2, *end = value + len;
    allot_str_t order, customer;
    if (len < 2 ||
        (value[0] != EVENT_FORMAT_VERSION && value[0] != EVENT_FORMAT_VERSION_WHOLE_MAP) ||
        !key_take(&p, end, sku) || !key_take(&p, end, &order) || !key_take(&p, end, &customer))
        return false;
    *type = value[1];
    *map = p;
    *map_len = (size_t)(end - p);
    if (filter->types != 0 && (*type >= 32 || (filter->types & (1u << *type)) == 0))
        return false;
    return key_matches(filter->sku, *sku) && key_matches(filter->order, order) &&
           key_matches(filter->customer, customer);
}

bool events_map_append(const uint8_t *value, const uint8_t *map, size_t map_len, uint64_t seq,
                       int64_t at_ms, msgpack_sbuffer *out)
{
    size_t size = out->size;
    event_writer_t w = {out, false};
    char *p = writer_room(&w, map_len);
    if (p != NULL) {
        memcpy(p, map, map_len);
        out->size += map_len;
        if (value[0] != EVENT_FORMAT_VERSION_WHOLE_MAP)
            derived_put(&w, seq, at_ms, value[1]);
    }
    if (w.failed)
        out->size = size;
    return !w.failed;
}

typedef struct read_walk {
    events_t *events;
    const events_filter_t *filter;
    uint32_t limit, found;
    bool out_of_memory;
    events_each_cb each_cb;
    void *ctx;
} read_walk_t;

static int read_each(void *ctx, uint64_t seq, int64_t at_ms, const uint8_t *value, size_t len)
{
    read_walk_t *walk = ctx;
    uint8_t type;
    allot_str_t sku;
    const uint8_t *map;
    size_t map_len;
    if (!events_value_match(value, len, walk->filter, &type, &sku, &map, &map_len))
        return 0;
    msgpack_sbuffer *whole = &walk->events->read_map;
    if (value[0] != EVENT_FORMAT_VERSION_WHOLE_MAP) {
        whole->size = 0;
        if (!events_map_append(value, map, map_len, seq, at_ms, whole)) {
            walk->out_of_memory = true;
            return 1;
        }
        map = (const uint8_t *)whole->data;
        map_len = whole->size;
    }
    walk->found++;
    int stop = walk->each_cb(walk->ctx, seq, map, map_len);
    return stop != 0 || walk->found == walk->limit;
}

int events_read(events_t *events, uint64_t after, const events_filter_t *filter, uint32_t limit,
                events_each_cb each_cb, void *ctx, uint64_t *next, uint64_t *oldest)
{
    events_store_durable(events); /* what the clients were told is durable is readable */
    *oldest = event_store_first_seq(events->store);
    *next = after;
    if (after < event_store_trimmed_seq(events->store))
        return ALLOT_EEXPIRED;
    read_walk_t walk = {events, filter, limit, 0, false, each_cb, ctx};
    int rc =
        event_store_scan(events->store, after, ALLOT_EVENTS_READ_SCAN_MAX, read_each, &walk, next);
    return rc == 0 && walk.out_of_memory ? ALLOT_ENOMEM : rc;
}

uint64_t events_last_seq(const events_t *events)
{
    return event_store_last_seq(events->store);
}

uint64_t events_first_seq(const events_t *events)
{
    return event_store_first_seq(events->store);
}

int events_listen(events_t *events, events_listener_cb cb, void *ctx)
{
    if (events->listener_count == EVENTS_LISTENERS_MAX)
        return ALLOT_ETOO_LARGE;
    events->listeners[events->listener_count++] = (events_listener_t){cb, ctx};
    return 0;
}

void events_stats_get(const events_t *events, events_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (events == NULL)
        return;
    out->stored = event_store_count(events->store);
    out->bytes = event_store_bytes(events->store);
    out->ledger = event_store_ledger_count(events->store);
    out->last_seq = event_store_last_seq(events->store);
    out->first_seq = event_store_first_seq(events->store);
    out->subscriptions = events->subscription_count;
    out->subscribers_cut = events->subscribers_cut;
    out->waiters = events->waiter_count;
    out->store_commits = events->store_commits;
}

/* ---- long polls ----------------------------------------------------------------------------- */

/* A filter string copied into the waiter's buffer (of ALLOT_ID_BYTES_MAX). */
static allot_str_t filter_str_copy(char *buffer, allot_str_t s)
{
    if (s.len == 0)
        return (allot_str_t){buffer, 0};
    memcpy(buffer, s.ptr, s.len);
    return (allot_str_t){buffer, s.len};
}

int events_wait(events_t *events, struct connection *conn, uint32_t msgid, uint64_t after,
                const events_filter_t *filter, uint32_t limit, uint64_t wait_ms)
{
    if (events->waiter_count == ALLOT_EVENTS_WAITERS_MAX)
        return ALLOT_EOVERLOADED;
    if (events->waiters == NULL) {
        events->waiters = calloc(ALLOT_EVENTS_WAITERS_MAX, sizeof(*events->waiters));
        if (events->waiters == NULL)
            return ALLOT_ENOMEM;
    }
    events_waiter_t *w = &events->waiters[events->waiter_count++];
    w->conn = conn;
    w->msgid = msgid;
    w->limit = limit;
    w->after = after;
    w->deadline_ms = uv_now(events->server->loop) + wait_ms;
    events_filter_copy_t *f = &w->filter;
    f->filter.types = filter->types;
    f->filter.sku = filter_str_copy(f->sku, filter->sku);
    f->filter.order = filter_str_copy(f->order, filter->order);
    f->filter.customer = filter_str_copy(f->customer, filter->customer);
    conn->deferred_count++;
    return 0;
}

/* Answer the waiters that now have events, or (expired_only) whose wait ended. The due ones
 * leave the array first: answering may close a connection, which drops its waiters. */
static void waiters_answer(events_t *events, bool expired_only, uint64_t now_ms)
{
    uint32_t due_count = 0, kept = 0;
    for (uint32_t i = 0; i < events->waiter_count; i++) {
        events_waiter_t *w = &events->waiters[i];
        if (expired_only ? w->deadline_ms <= now_ms : w->after < events_last_seq(events))
            due_count++;
    }
    if (due_count == 0)
        return;
    events_waiter_t *due = malloc(due_count * sizeof(*due));
    if (due == NULL)
        return; /* answered at a later tick */
    due_count = 0;
    for (uint32_t i = 0; i < events->waiter_count; i++) {
        events_waiter_t *w = &events->waiters[i];
        if (expired_only ? w->deadline_ms <= now_ms : w->after < events_last_seq(events))
            due[due_count++] = *w;
        else
            events->waiters[kept++] = *w;
    }
    events->waiter_count = kept;
    for (uint32_t i = 0; i < due_count; i++) {
        events_waiter_t *w = &due[i];
        events_waiter_answer(events, w, expired_only);
        if (w->conn == NULL)
            continue;
        if (w->conn->closing || events->waiter_count == ALLOT_EVENTS_WAITERS_MAX)
            w->conn->deferred_count--;
        else
            events->waiters[events->waiter_count++] = *w;
    }
    free(due);
}

void events_waiters_wake(events_t *events)
{
    waiters_answer(events, false, 0);
}

static void waiters_drop(events_t *events, struct connection *conn)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < events->waiter_count; i++) {
        if (events->waiters[i].conn == conn)
            conn->deferred_count--;
        else
            events->waiters[kept++] = events->waiters[i];
    }
    events->waiter_count = kept;
}

void events_connection_closed(events_t *events, struct connection *conn)
{
    if (events == NULL)
        return;
    waiters_drop(events, conn);
    events_subscriptions_drop(events, conn);
}

/* ---- housekeeping --------------------------------------------------------------------------- */

static void retention_step(events_t *events, int64_t now_ms, uint64_t now_monotonic_ms)
{
    if (now_monotonic_ms < events->trim_next_ms)
        return;
    uint64_t removed = 0;
    int rc =
        event_store_trim(events->store, now_ms, events->config.retention_ms,
                         events->config.bytes_max, events->config.ledger_retention_ms, &removed);
    if (rc != 0)
        log_event(LOG_ERROR, "events_trim_failed", LOG_STR("code", allot_error_code(rc)),
                  LOG_STR("message", event_store_message(events->store)));
    /* a step that did not finish goes on at the next tick */
    events->trim_next_ms =
        now_monotonic_ms + (removed >= EVENT_STORE_TRIM_STEP_MAX ? 0 : EVENTS_TRIM_PERIOD_MS);
}

void events_housekeeping(events_t *events, int64_t now_ms, uint64_t now_monotonic_ms)
{
    if (events == NULL)
        return;
    events_store_durable(events); /* what waited since the last tick */
    retention_step(events, now_ms, now_monotonic_ms);
    waiters_answer(events, true, now_monotonic_ms);
    int refused;
    if (allot_stream_tick_due_ms(events->state) <= now_ms &&
        server_writes_allowed(events->server, &refused))
        allot_stream_tick(events->state, now_ms);
}

int events_flush(events_t *events)
{
    return events != NULL ? event_store_flush(events->store) : 0;
}

void events_checkpointed(events_t *events, int flush_status)
{
    if (events == NULL || flush_status == 0)
        return;
    char message[160];
    snprintf(message, sizeof(message), "events.lmdb: sync: %s", strerror(flush_status));
    log_event(LOG_ERROR, "events_sync_failed", LOG_STR("code", allot_error_code(ALLOT_EIO)),
              LOG_STR("message", message));
}

/* ---- life cycle ----------------------------------------------------------------------------- */

int events_open(struct server *server, struct allot_state *state, const char *data_dir,
                const events_config_t *config, events_t **out)
{
    *out = NULL;
    events_t *events = calloc(1, sizeof(*events));
    if (events == NULL)
        return ALLOT_ENOMEM;
    char message[512] = "";
    int rc = event_store_open(data_dir, &events->store, message, sizeof(message));
    if (rc != 0) {
        log_event(LOG_ERROR, "events_open_failed", LOG_STR("code", allot_error_code(rc)),
                  LOG_STR("message", message));
        free(events);
        return rc;
    }
    events->server = server;
    events->state = state;
    events->config = *config;
    events->skip_lsn = event_store_last_lsn(events->store);
    events->replaying = true;
    events->next_subscription_id = 1;
    msgpack_sbuffer_init(&events->values);
    msgpack_sbuffer_init(&events->strings);
    msgpack_sbuffer_init(&events->notification);
    msgpack_sbuffer_init(&events->read_map);
    allot_state_set_change_observer(state, on_change, events);
    *out = events;
    return 0;
}

int events_recovered(events_t *events, uint64_t recovered_lsn, bool log_follows)
{
    events->replaying = false;
    uint64_t events_lsn = event_store_last_lsn(events->store);
    if (events_lsn > recovered_lsn && log_follows)
        log_event(LOG_INFO, "events_ahead_of_checkpoint", LOG_UINT("events_lsn", events_lsn),
                  LOG_UINT("checkpoint_lsn", recovered_lsn),
                  LOG_STR("message", "the group's log holds the records after the checkpoint: "
                                     "they are applied again after the start, and their events, "
                                     "stored already, are not stored twice"));
    else if (events_lsn > recovered_lsn)
        log_event(LOG_WARN, "events_ahead_of_log", LOG_UINT("events_lsn", events_lsn),
                  LOG_UINT("wal_lsn", recovered_lsn),
                  LOG_STR("message", "the log was cut (--accept-data-loss): the stream holds "
                                     "events of records that are gone"));
    int rc = store_flush(events, recovered_lsn, false);
    log_event(LOG_INFO, "events_recovered", LOG_UINT("events", event_store_count(events->store)),
              LOG_UINT("last_seq", event_store_last_seq(events->store)),
              LOG_UINT("ledger", event_store_ledger_count(events->store)));
    return rc;
}

void events_close(events_t *events)
{
    if (events == NULL)
        return;
    /* stored without a push (the connections are closing), else derived again at the next start */
    store_flush(events, events->durable_lsn, false);
    allot_state_set_change_observer(events->state, NULL, NULL);
    events_subscriptions_free(events);
    free(events->waiters);
    free(events->pending);
    free(events->moves);
    msgpack_sbuffer_destroy(&events->values);
    msgpack_sbuffer_destroy(&events->strings);
    msgpack_sbuffer_destroy(&events->notification);
    msgpack_sbuffer_destroy(&events->read_map);
    event_store_close(events->store);
    free(events);
}
