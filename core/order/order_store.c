/* order_store.c - order records (slab, id/customer/return indexes, ended heap), storage, snapshots.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/order/order_private.h"

struct order_text_chunk {
    order_text_chunk_t *next;
    size_t used;
    size_t capacity;
    char data[];
};

#define ORDER_TEXT_CHUNK_BYTES 512u

/* ---- heap of ended orders by (ended_ms, id) ------------------------------------------------- */

/* The heap entries hold (ended_ms, first 20 id bytes); the id decides the rest. */
static void order_ended_key(const void *ctx, uint32_t item, allot_heap_entry_t *entry)
{
    const allot_state_t *state = ctx;
    const allot_event_order_t *v = &state->orders[item]->v;
    entry->key_ms = v->ended_ms;
    allot_heap_tie_set(entry, v->id.ptr, v->id.len);
}

static bool order_id_less(const void *ctx, uint32_t a, uint32_t b)
{
    const allot_state_t *state = ctx;
    const allot_event_order_t *x = &state->orders[a]->v, *y = &state->orders[b]->v;
    return state_id_compare(x->id.ptr, x->id.len, y->id.ptr, y->id.len) < 0;
}

static void order_heap_position_set(void *ctx, uint32_t item, uint32_t position)
{
    allot_state_t *state = ctx;
    state->orders[item]->heap_position = position;
}

int order_init(allot_state_t *state)
{
    allot_hash_init(&state->order_index);
    allot_hash_init(&state->order_return_index);
    allot_hash_init(&state->customer_index);
    allot_heap_init(&state->order_heap, order_ended_key, order_id_less, order_heap_position_set,
                    state);
    return 0;
}

/* ---- one order's storage -------------------------------------------------------------------- */

allot_order_t *order_alloc(void)
{
    return calloc(1, sizeof(allot_order_t));
}

void order_release(allot_order_t *order)
{
    if (order == NULL)
        return;
    order_text_chunk_t *chunk = order->text;
    while (chunk != NULL) {
        order_text_chunk_t *next = chunk->next;
        free(chunk);
        chunk = next;
    }
    free(order->v.lines);
    free(order->v.shipments);
    free(order->v.items);
    free(order->v.returns);
    free(order->v.history);
    free(order->v.backorders);
    free(order);
}

/* A stable copy of s in the order's text storage; {NULL, 0} when out of memory. */
allot_str_t order_text_copy(allot_order_t *order, allot_str_t s)
{
    if (s.len == 0)
        return (allot_str_t){"", 0};
    order_text_chunk_t *chunk = order->text;
    if (chunk == NULL || chunk->used + s.len > chunk->capacity) {
        size_t capacity = s.len > ORDER_TEXT_CHUNK_BYTES ? s.len : ORDER_TEXT_CHUNK_BYTES;
        chunk = malloc(sizeof(*chunk) + capacity);
        if (chunk == NULL)
            return (allot_str_t){NULL, 0};
        chunk->next = order->text;
        chunk->used = 0;
        chunk->capacity = capacity;
        order->text = chunk;
    }
    char *p = chunk->data + chunk->used;
    memcpy(p, s.ptr, s.len);
    chunk->used += s.len;
    return (allot_str_t){p, s.len};
}

int order_room(allot_order_t *o, uint32_t shipments, uint32_t items, uint32_t returns,
               uint32_t history)
{
    allot_event_order_t *v = &o->v;
    int rc = allot_array_grow((void **)&v->shipments, &o->shipment_capacity,
                              v->shipment_count + shipments, sizeof(*v->shipments), 4);
    if (rc == 0)
        rc = allot_array_grow((void **)&v->items, &o->item_capacity, v->item_count + items,
                              sizeof(*v->items), 4);
    if (rc == 0)
        rc = allot_array_grow((void **)&v->returns, &o->return_capacity, v->return_count + returns,
                              sizeof(*v->returns), 4);
    if (rc == 0)
        rc = allot_array_grow((void **)&v->history, &o->history_capacity,
                              v->history_count + history, sizeof(*v->history), 4);
    return rc;
}

/* Copy the strings of n items into the order; false when out of memory. */
static bool items_copy(allot_order_t *o, allot_event_item_t *dst, const allot_event_item_t *src,
                       uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        dst[i] = (allot_event_item_t){order_text_copy(o, src[i].sku), src[i].qty};
        if (dst[i].sku.ptr == NULL)
            return false;
    }
    return true;
}

bool order_shipment_copy(allot_order_t *o, allot_event_shipment_t *dst,
                         const allot_event_shipment_t *src)
{
    *dst = *src;
    dst->location = order_text_copy(o, src->location);
    dst->tracking = order_text_copy(o, src->tracking);
    dst->reason = order_text_copy(o, src->reason);
    return dst->location.ptr && dst->tracking.ptr && dst->reason.ptr;
}

bool order_return_copy(allot_order_t *o, allot_event_return_t *dst, const allot_event_return_t *src)
{
    *dst = *src;
    dst->id = order_text_copy(o, src->id);
    dst->location = order_text_copy(o, src->location);
    dst->reason = order_text_copy(o, src->reason);
    dst->label = order_text_copy(o, src->label);
    return dst->id.ptr && dst->location.ptr && dst->reason.ptr && dst->label.ptr;
}

static bool order_head_copy(allot_order_t *o, const allot_event_order_t *src)
{
    allot_event_order_t *v = &o->v;
    v->id = order_text_copy(o, src->id);
    v->customer = order_text_copy(o, src->customer);
    v->reservation = order_text_copy(o, src->reservation); /* create: for its history entry */
    v->location = order_text_copy(o, src->location);
    v->instructions = order_text_copy(o, src->instructions);
    v->address = order_text_copy(o, src->address);
    v->request_hash = src->request_hash;
    v->created_ms = src->created_ms;
    v->ended_ms = src->ended_ms;
    v->state = src->state;
    v->payment = src->payment;
    v->entered_by = src->entered_by;
    v->method = src->method;
    v->policy = src->policy;
    v->has_ship_to = src->has_ship_to;
    v->archived = false;
    v->lat = src->lat;
    v->lon = src->lon;
    return v->id.ptr && v->customer.ptr && v->reservation.ptr && v->location.ptr &&
           v->instructions.ptr && v->address.ptr;
}

/* A new order holding a copy of src with room for `history_extra` more history entries. */
int order_build(const allot_event_order_t *src, uint32_t history_extra, allot_order_t **out)
{
    allot_order_t *o = order_alloc();
    if (o == NULL)
        return ALLOT_ENOMEM;
    int rc = allot_array_grow((void **)&o->v.lines, &o->line_capacity, src->line_count,
                              sizeof(*o->v.lines), 4);
    if (rc == 0)
        rc = order_room(o, src->shipment_count, src->item_count, src->return_count,
                        src->history_count + history_extra);
    bool ok = rc == 0 && order_head_copy(o, src) &&
              items_copy(o, o->v.lines, src->lines, src->line_count);
    ok = ok && items_copy(o, o->v.items, src->items, src->item_count);
    for (uint32_t i = 0; ok && i < src->shipment_count; i++)
        ok = order_shipment_copy(o, &o->v.shipments[i], &src->shipments[i]);
    for (uint32_t i = 0; ok && i < src->return_count; i++)
        ok = order_return_copy(o, &o->v.returns[i], &src->returns[i]);
    for (uint32_t i = 0; ok && i < src->history_count; i++) {
        o->v.history[i] = src->history[i];
        o->v.history[i].text = order_text_copy(o, src->history[i].text);
        ok = o->v.history[i].text.ptr != NULL;
    }
    if (ok && src->backorder_count > 0)
        ok = allot_array_grow((void **)&o->v.backorders, &o->backorder_capacity,
                              src->backorder_count, sizeof(*o->v.backorders), 4) == 0;
    for (uint32_t i = 0; ok && i < src->backorder_count; i++) {
        o->v.backorders[i] = src->backorders[i];
        o->v.backorders[i].supply = order_text_copy(o, src->backorders[i].supply);
        ok = o->v.backorders[i].supply.ptr != NULL;
    }
    if (!ok) {
        order_release(o);
        return ALLOT_ENOMEM;
    }
    o->v.line_count = src->line_count;
    o->v.shipment_count = src->shipment_count;
    o->v.item_count = src->item_count;
    o->v.return_count = src->return_count;
    o->v.history_count = src->history_count;
    o->v.backorder_count = src->backorder_count;
    *out = o;
    return 0;
}

/* ---- slab and indexes ----------------------------------------------------------------------- */

uint32_t order_slot_find(const allot_state_t *state, allot_str_t id)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(&state->order_index, allot_hash_bytes(id.ptr, id.len), &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(&state->order_index, &probe)) != ALLOT_HASH_NONE)
        if (allot_str_equal(state->orders[i]->v.id, id))
            return i;
    return ALLOT_SLOT_NONE;
}

/* The order slot and return index holding return `id`. */
uint32_t order_return_find(const allot_state_t *state, allot_str_t id, uint32_t *index)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(&state->order_return_index, allot_hash_bytes(id.ptr, id.len), &probe);
    uint32_t slot;
    while ((slot = allot_hash_probe_next(&state->order_return_index, &probe)) != ALLOT_HASH_NONE) {
        const allot_event_order_t *v = &state->orders[slot]->v;
        for (uint32_t k = 0; k < v->return_count; k++) {
            if (allot_str_equal(v->returns[k].id, id)) {
                *index = k;
                return slot;
            }
        }
    }
    return ALLOT_SLOT_NONE;
}

uint32_t order_customer_find(const allot_state_t *state, allot_str_t customer)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(&state->customer_index, allot_hash_bytes(customer.ptr, customer.len),
                           &probe);
    uint32_t i;
    while ((i = allot_hash_probe_next(&state->customer_index, &probe)) != ALLOT_HASH_NONE) {
        const order_customer_t *c = &state->customers[i];
        if (c->id_len == customer.len && memcmp(c->id, customer.ptr, customer.len) == 0)
            return i;
    }
    return ALLOT_SLOT_NONE;
}

/* Make room to insert one order (slot, id hash, customer entry, returns, dirty mark). */
int order_insert_reserve(allot_state_t *state, allot_str_t customer, uint32_t returns)
{
    int rc = 0;
    if (state->order_free.count == 0)
        rc = allot_array_grow((void **)&state->orders, &state->order_capacity,
                              state->order_slots + 1, sizeof(*state->orders), 4);
    if (rc == 0)
        rc = allot_hash_reserve(&state->order_index, 1);
    if (rc == 0)
        rc = allot_hash_reserve(&state->order_return_index, returns);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_ORDER], 1);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->order_free, 1);
    if (rc != 0 || customer.len == 0)
        return rc;
    uint32_t c = order_customer_find(state, customer);
    if (c != ALLOT_SLOT_NONE)
        rc = allot_u32_vec_reserve(&state->customers[c].orders, 1);
    /* also room for a new entry: a snapshot may drop the old one before inserting */
    if (rc == 0)
        rc = allot_hash_reserve(&state->customer_index, 1);
    if (rc == 0 && state->customer_free.count == 0)
        rc = allot_array_grow((void **)&state->customers, &state->customer_capacity,
                              state->customer_slots + 1, sizeof(*state->customers), 4);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->pending_customer_orders, 1);
    if (rc == 0 && state->pending_customer_id == NULL)
        state->pending_customer_id = malloc(ALLOT_ID_BYTES_MAX);
    return rc == 0 && state->pending_customer_id == NULL ? ALLOT_ENOMEM : rc;
}

/* Make room to remove one order (free lists). */
int order_remove_reserve(allot_state_t *state)
{
    int rc = allot_u32_vec_reserve(&state->order_free, 1);
    return rc == 0 ? allot_u32_vec_reserve(&state->customer_free, 1) : rc;
}

static void customer_add(allot_state_t *state, allot_str_t customer, uint32_t slot)
{
    uint32_t c = order_customer_find(state, customer);
    if (c == ALLOT_SLOT_NONE) {
        char *id = state->pending_customer_id; /* both prepared by order_insert_reserve */
        assert(id != NULL && state->pending_customer_orders.capacity > 0);
        state->pending_customer_id = NULL;
        memcpy(id, customer.ptr, customer.len);
        c = state->customer_free.count > 0
                ? state->customer_free.items[--state->customer_free.count]
                : state->customer_slots++;
        order_customer_t *rec = &state->customers[c];
        *rec = (order_customer_t){id, customer.len, allot_hash_bytes(id, customer.len),
                                  state->pending_customer_orders};
        state->pending_customer_orders = (allot_u32_vec_t){0};
        int rc = allot_hash_insert(&state->customer_index, rec->hash, c);
        assert(rc == 0);
        (void)rc;
    }
    allot_u32_vec_push(&state->customers[c].orders, slot);
}

static void customer_remove(allot_state_t *state, allot_str_t customer, uint32_t slot)
{
    uint32_t c = order_customer_find(state, customer);
    if (c == ALLOT_SLOT_NONE)
        return;
    order_customer_t *rec = &state->customers[c];
    for (uint32_t i = 0; i < rec->orders.count; i++) {
        if (rec->orders.items[i] == slot) {
            rec->orders.items[i] = rec->orders.items[--rec->orders.count];
            break;
        }
    }
    if (rec->orders.count > 0)
        return;
    allot_hash_remove(&state->customer_index, rec->hash, c);
    free(rec->id);
    allot_u32_vec_free(&rec->orders);
    memset(rec, 0, sizeof(*rec));
    allot_u32_vec_push(&state->customer_free, c);
}

/* Link a built order in (room reserved by order_insert_reserve); returns its slot. */
uint32_t order_insert(allot_state_t *state, allot_order_t *order)
{
    uint32_t slot = state->order_free.count > 0 ? state->order_free.items[--state->order_free.count]
                                                : state->order_slots++;
    state->orders[slot] = order;
    state_checkpoint_born(state, STATE_KEY_ORDER, slot);
    order->slot = slot;
    order->hash = allot_hash_bytes(order->v.id.ptr, order->v.id.len);
    int rc = allot_hash_insert(&state->order_index, order->hash, slot);
    for (uint32_t k = 0; rc == 0 && k < order->v.return_count; k++)
        rc = allot_hash_insert(
            &state->order_return_index,
            allot_hash_bytes(order->v.returns[k].id.ptr, order->v.returns[k].id.len), slot);
    assert(rc == 0);
    (void)rc;
    if (order->v.customer.len > 0)
        customer_add(state, order->v.customer, slot);
    state->order_live++;
    order_ended_update(state, slot);
    order_dirty_mark(state, slot);
    return slot;
}

/* Unlink and free an order. */
void order_remove(allot_state_t *state, uint32_t slot)
{
    state_touch(state, STATE_KEY_ORDER, slot); /* a checkpoint may still need it */
    allot_order_t *order = state->orders[slot];
    if (order->in_heap)
        allot_heap_remove_at(&state->order_heap, order->heap_position);
    allot_hash_remove(&state->order_index, order->hash, slot);
    for (uint32_t k = 0; k < order->v.return_count; k++)
        allot_hash_remove(&state->order_return_index,
                          allot_hash_bytes(order->v.returns[k].id.ptr, order->v.returns[k].id.len),
                          slot);
    if (order->v.customer.len > 0)
        customer_remove(state, order->v.customer, slot);
    state->orders[slot] = NULL;
    allot_u32_vec_push(&state->order_free, slot);
    state->order_live--;
    order_release(order);
}

static bool order_has_open_return(const allot_event_order_t *v)
{
    for (uint32_t k = 0; k < v->return_count; k++)
        if (v->returns[k].state == ALLOT_RETURN_REQUESTED)
            return true;
    return false;
}

bool order_is_ended(const allot_event_order_t *v)
{
    return (v->state == ALLOT_ORDER_DELIVERED || v->state == ALLOT_ORDER_CANCELLED) &&
           !order_has_open_return(v);
}

/* Keep the ended heap in step with the order (heap room reserved by the caller's prepare). */
void order_ended_update(allot_state_t *state, uint32_t slot)
{
    allot_order_t *order = state->orders[slot];
    bool ended = order_is_ended(&order->v) && order->v.ended_ms != 0;
    if (ended && !order->in_heap) {
        int rc = allot_heap_push(&state->order_heap, slot);
        assert(rc == 0);
        (void)rc;
        order->in_heap = true;
    } else if (!ended && order->in_heap) {
        allot_heap_remove_at(&state->order_heap, order->heap_position);
        order->in_heap = false;
    }
}

void order_free_all(allot_state_t *state)
{
    for (uint32_t i = 0; i < state->order_slots; i++)
        order_release(state->orders[i]);
    free(state->orders);
    for (uint32_t i = 0; i < state->customer_slots; i++) {
        free(state->customers[i].id);
        allot_u32_vec_free(&state->customers[i].orders);
    }
    free(state->customers);
    allot_u32_vec_free(&state->order_free);
    allot_u32_vec_free(&state->customer_free);
    allot_hash_free(&state->order_index);
    allot_hash_free(&state->order_return_index);
    allot_hash_free(&state->customer_index);
    allot_heap_free(&state->order_heap);
    allot_bytes_free(&state->archived);
    allot_bytes_free(&state->archive_bytes);
    allot_event_scratch_free(&state->archive_scratch);
    order_release(state->order_prepared.order);
    free(state->pending_customer_id);
    allot_u32_vec_free(&state->pending_customer_orders);
    free(state->build_items);
    free(state->build_shipments);
    order_receipt_free(state);
}

/* ---- dirty set and snapshots ---------------------------------------------------------------- */

uint32_t order_snapshot_slots(const allot_state_t *state)
{
    return state->order_slots;
}

uint8_t *order_snapshot_marks(allot_state_t *state, uint32_t index)
{
    return index < state->order_slots && state->orders[index] != NULL ? &state->orders[index]->dirty
                                                                      : NULL;
}

int order_snapshot_take(allot_state_t *state, uint32_t slot, bool full, allot_bytes_t *out,
                        allot_str_t *id)
{
    (void)full;
    *id = state->orders[slot]->v.id;
    allot_event_t event = {.type = ALLOT_EVENT_ORDER_SNAPSHOT};
    event.u.order = state->orders[slot]->v;
    event.u.order.archived = false;
    return allot_event_encode(&event, out);
}

/* Remember the archived snapshot of an order about to be evicted (for the next checkpoint). */
int order_archived_append(allot_state_t *state, uint32_t slot)
{
    const allot_event_order_t *v = &state->orders[slot]->v;
    size_t mark = state->archived.len;
    int rc = allot_bytes_reserve(&state->archived, 5u + v->id.len);
    if (rc != 0)
        return rc;
    allot_bytes_put_u8(&state->archived, (uint8_t)v->id.len);
    allot_bytes_put(&state->archived, v->id.ptr, v->id.len);
    state->archived.len += 4;
    size_t payload_at = state->archived.len;
    allot_event_t event = {.type = ALLOT_EVENT_ORDER_SNAPSHOT};
    event.u.order = *v;
    event.u.order.archived = true;
    rc = allot_event_encode(&event, &state->archived);
    if (rc != 0) {
        state->archived.len = mark;
        return rc;
    }
    uint32_t len = (uint32_t)(state->archived.len - payload_at);
    memcpy(state->archived.data + payload_at - 4, &len, 4);
    return 0;
}
