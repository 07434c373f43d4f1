/* order_return.c - return.create (bounded by what shipped) and return.receive (restock/damaged). */
#include <stdio.h>
#include <string.h>

#include "core/order.h"
#include "core/order/order_private.h"

static uint64_t return_request_hash(const allot_return_request_t *req)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const allot_str_t parts[] = {req->order, req->reason};
    for (uint32_t p = 0; p < 2; p++) {
        for (uint32_t i = 0; i < parts[p].len; i++)
            h = (h ^ (unsigned char)parts[p].ptr[i]) * 0x100000001b3ull;
        h = (h ^ 0xffu) * 0x100000001b3ull;
    }
    for (uint32_t i = 0; i < req->line_count; i++) {
        for (uint32_t k = 0; k < req->lines[i].sku.len; k++)
            h = (h ^ (unsigned char)req->lines[i].sku.ptr[k]) * 0x100000001b3ull;
        h = (h ^ (uint64_t)req->lines[i].qty) * 0x100000001b3ull;
    }
    return h;
}

/* Units of sku in the order's shipped/delivered shipments, minus those in its returns. */
static int64_t returnable_qty(const allot_event_order_t *v, allot_str_t sku)
{
    int64_t qty = 0;
    for (uint32_t i = 0; i < v->shipment_count; i++) {
        const allot_event_shipment_t *s = &v->shipments[i];
        if (s->state != ALLOT_SHIPMENT_SHIPPED && s->state != ALLOT_SHIPMENT_DELIVERED)
            continue;
        for (uint32_t k = 0; k < s->item_count; k++)
            if (allot_str_equal(v->items[s->item_first + k].sku, sku))
                qty += v->items[s->item_first + k].qty;
    }
    for (uint32_t i = 0; i < v->return_count; i++) {
        const allot_event_return_t *r = &v->returns[i];
        for (uint32_t k = 0; k < r->item_count; k++)
            if (allot_str_equal(v->items[r->item_first + k].sku, sku))
                qty -= v->items[r->item_first + k].qty;
    }
    return qty;
}

static int return_lines_check(const allot_event_order_t *v, const allot_return_request_t *req,
                              allot_error_detail_t *detail)
{
    if (req->line_count == 0 || req->line_count > ALLOT_LINES_MAX)
        return allot_error_set(detail, req->line_count ? ALLOT_ETOO_LARGE : ALLOT_EINVALID_ARGUMENT,
                               "lines", "lines must hold 1..%u items", (unsigned)ALLOT_LINES_MAX);
    for (uint32_t i = 0; i < req->line_count; i++) {
        allot_str_t sku = req->lines[i].sku;
        if (!allot_id_valid(sku) || req->lines[i].qty < 1 || req->lines[i].qty > ALLOT_QUANTITY_MAX)
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "lines",
                                   "lines[%u] needs an sku id and qty 1..2^40", i);
        int64_t asked = 0;
        for (uint32_t k = 0; k < req->line_count; k++)
            if (allot_str_equal(req->lines[k].sku, sku))
                asked += req->lines[k].qty;
        int64_t returnable = returnable_qty(v, sku);
        if (asked > returnable)
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "qty",
                                   "at most %lld units of %s can be returned (shipped minus "
                                   "already being returned); asked %lld",
                                   (long long)(returnable > 0 ? returnable : 0),
                                   allot_str_echo(sku, &(allot_echo_t){0}), (long long)asked);
    }
    if (v->return_count >= ALLOT_ORDER_RETURNS_MAX ||
        v->item_count + req->line_count > ALLOT_ORDER_ITEMS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, NULL, "order %s takes no more returns",
                               allot_str_echo(v->id, &(allot_echo_t){0}));
    return 0;
}

/* An existing return id: the same request -> 1 (its order's slot in *slot), else CONFLICT. */
static int return_existing(allot_state_t *state, const allot_return_request_t *req, uint64_t hash,
                           uint32_t *slot, uint32_t *index, allot_error_detail_t *detail)
{
    uint32_t found = order_return_find(state, req->id, index);
    if (found == ALLOT_SLOT_NONE)
        return 0;
    if (state->orders[found]->v.returns[*index].request_hash != hash)
        return allot_error_set(detail, ALLOT_ECONFLICT, "id",
                               "return %s exists with a different request",
                               allot_str_echo(req->id, &(allot_echo_t){0}));
    *slot = found;
    return 1;
}

int allot_return_create(allot_state_t *state, const allot_return_request_t *req, int64_t now_ms,
                        const allot_order_view_t **out, uint32_t *return_index,
                        allot_error_detail_t *detail)
{
    uint32_t slot;
    if (!allot_id_valid(req->id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "id",
                               "id must be 1..128 bytes of UTF-8");
    uint64_t hash = return_request_hash(req);
    int rc = order_text_check(req->reason, "reason", detail);
    if (rc == 0)
        rc = return_existing(state, req, hash, &slot, return_index, detail);
    if (rc != 0) {
        if (rc == 1)
            *out = &state->orders[slot]->v;
        return rc < 0 ? rc : 0;
    }
    rc = order_live_find(state, req->order, "order", &slot, detail);
    if (rc != 0)
        return rc;
    const allot_event_order_t *v = &state->orders[slot]->v;
    rc = order_transition_check(v, ALLOT_ORDER_EVENT_RETURN_CREATE, detail);
    if (rc == 0)
        rc = return_lines_check(v, req, detail);
    if (rc == 0 && v->history_count >= ALLOT_ORDER_HISTORY_MAX)
        rc = allot_error_set(detail, ALLOT_ETOO_LARGE, NULL, "order history is full");
    if (rc != 0)
        return rc;
    char label[16];
    snprintf(label, sizeof(label), "RMA-%08X",
             (unsigned)allot_hash_bytes(req->id.ptr, req->id.len));
    allot_event_t event = {.type = ALLOT_EVENT_RETURN_CREATE};
    allot_event_order_change_t *c = &event.u.change;
    *c = (allot_event_order_change_t){
        .id = v->id, .at_ms = now_ms, .shipment = ALLOT_EVENT_SHIPMENT_NONE, .text = req->id};
    c->address = c->instructions = c->location = (allot_str_t){"", 0};
    c->ret = (allot_event_return_t){req->id,
                                    {"", 0},
                                    req->reason,
                                    allot_str_from_cstr(label),
                                    hash,
                                    now_ms,
                                    0,
                                    ALLOT_RETURN_REQUESTED,
                                    ALLOT_DISPOSITION_NONE,
                                    0,
                                    req->line_count};
    if (order_build_reserve(state, 0, req->line_count) != 0)
        return allot_error_set(detail, ALLOT_ENOMEM, NULL, "out of memory");
    for (uint32_t i = 0; i < req->line_count; i++)
        state->build_items[i] = (allot_event_item_t){req->lines[i].sku, req->lines[i].qty};
    c->item_count = req->line_count;
    c->items = state->build_items;
    rc = order_change_emit(state, ALLOT_EVENT_RETURN_CREATE, c, detail);
    if (rc != 0)
        return rc;
    *out = &state->orders[slot]->v;
    *return_index = (*out)->return_count - 1;
    return 0;
}

static int receive_check(allot_state_t *state, const allot_event_order_t *v,
                         const allot_event_return_t *r, uint32_t location,
                         allot_disposition_t disposition, allot_error_detail_t *detail)
{
    int rc = order_transition_check(v, ALLOT_ORDER_EVENT_RETURN_RECEIVE, detail);
    if (rc != 0)
        return rc;
    if (v->history_count >= ALLOT_ORDER_HISTORY_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, NULL, "order history is full");
    if (disposition != ALLOT_DISPOSITION_RESTOCK)
        return 0;
    for (uint32_t i = 0; i < r->item_count; i++) {
        const allot_event_item_t *item = &v->items[r->item_first + i];
        uint32_t sku = allot_sku_index_find(state, item->sku);
        const allot_position_t *p =
            sku == ALLOT_SKU_NONE ? NULL : allot_sku_position_find(&state->skus[sku], location);
        if (p != NULL && p->on_hand + item->qty > ALLOT_QUANTITY_MAX)
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "location",
                                   "on_hand would exceed %lld", (long long)ALLOT_QUANTITY_MAX);
    }
    return 0;
}

int allot_return_receive(allot_state_t *state, allot_str_t id, allot_str_t location,
                         allot_disposition_t disposition, int64_t now_ms,
                         const allot_order_view_t **out, uint32_t *return_index,
                         allot_error_detail_t *detail)
{
    if (!allot_id_valid(id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "id",
                               "id must be 1..128 bytes of UTF-8");
    if (disposition != ALLOT_DISPOSITION_RESTOCK && disposition != ALLOT_DISPOSITION_DAMAGED)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "disposition",
                               "disposition must be restock or damaged");
    uint32_t l = allot_location_index_find(state, location);
    if (l == ALLOT_LOCATION_NONE)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "location", "location %s not found",
                               allot_str_echo(location, &(allot_echo_t){0}));
    uint32_t slot = order_return_find(state, id, return_index);
    if (slot == ALLOT_SLOT_NONE)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "id", "return %s not found",
                               allot_str_echo(id, &(allot_echo_t){0}));
    const allot_event_order_t *v = &state->orders[slot]->v;
    const allot_event_return_t *r = &v->returns[*return_index];
    if (r->state == ALLOT_RETURN_RECEIVED) {
        if (r->disposition == disposition && allot_str_equal(r->location, location)) {
            *out = v;
            return 0;
        }
        detail->state = allot_return_state_names[r->state];
        return allot_error_set(
            detail, ALLOT_EINVALID_TRANSITION, "id", "return %s was already received (as %s at %s)",
            allot_str_echo(id, &(allot_echo_t){0}), allot_disposition_names[r->disposition],
            allot_str_echo(r->location, &(allot_echo_t){0}));
    }
    int rc = receive_check(state, v, r, l, disposition, detail);
    if (rc != 0)
        return rc;
    allot_event_order_change_t c = {.id = v->id,
                                    .at_ms = now_ms,
                                    .shipment = ALLOT_EVENT_SHIPMENT_NONE,
                                    .arg = (uint8_t)disposition,
                                    .text = id,
                                    .location = location};
    c.address = c.instructions = (allot_str_t){"", 0};
    rc = order_change_emit(state, ALLOT_EVENT_RETURN_RECEIVE, &c, detail);
    if (rc != 0)
        return rc;
    *out = &state->orders[slot]->v;
    return 0;
}
