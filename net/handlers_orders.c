/* handlers_orders.c - RPC handlers for orders, shipments and returns (core/order.h). */
#include "args.h"
#include "args_typed.h"
#include "command.h"
#include "core/order.h"
#include "core/state.h"
#include "core/supply.h"
#include "pack.h"

/* ---- packers ----------------------------------------------------------------------------------
 */

static void pack_items(msgpack_packer *pk, const allot_event_item_t *items, uint32_t n)
{
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 2);
        pack_key_str(pk, "sku", items[i].sku);
        pack_key_int(pk, "qty", items[i].qty);
    }
}

static void pack_shipment_id(msgpack_packer *pk, const char *key, uint32_t index)
{
    char buf[8];
    uint32_t len = allot_shipment_id_format(index, buf);
    pack_key_str(pk, key, (allot_str_t){buf, len});
}

static void pack_shipments(msgpack_packer *pk, const allot_order_view_t *v)
{
    msgpack_pack_array(pk, v->shipment_count);
    for (uint32_t i = 0; i < v->shipment_count; i++) {
        const allot_event_shipment_t *s = &v->shipments[i];
        msgpack_pack_map(pk, 4 + (s->tracking.len > 0) + (s->reason.len > 0));
        pack_shipment_id(pk, "id", i);
        pack_key_str(pk, "location", s->location);
        pack_key_cstr(pk, "state", allot_shipment_state_names[s->state]);
        pack_cstr(pk, "lines");
        pack_items(pk, v->items + s->item_first, s->item_count);
        if (s->tracking.len > 0)
            pack_key_str(pk, "tracking", s->tracking);
        if (s->reason.len > 0)
            pack_key_str(pk, "reason", s->reason);
    }
}

/* Which history entries name what (the text's key, the arg's meaning). */
static const char *history_text_key(uint8_t event)
{
    switch (event) {
    case ALLOT_ORDER_EVENT_CREATE:
        return "reservation";
    case ALLOT_ORDER_EVENT_SHIP:
        return "tracking";
    case ALLOT_ORDER_EVENT_RETURN_CREATE:
    case ALLOT_ORDER_EVENT_RETURN_RECEIVE:
        return "return";
    case ALLOT_ORDER_EVENT_RECEIVE:
        return "supply";
    default:
        return "reason";
    }
}

static void pack_history_entry(msgpack_packer *pk, const allot_event_history_t *h)
{
    bool pay = h->event == ALLOT_ORDER_EVENT_PAY;
    bool modify = h->event == ALLOT_ORDER_EVENT_MODIFY;
    bool receive = h->event == ALLOT_ORDER_EVENT_RETURN_RECEIVE;
    bool shipment = h->shipment != ALLOT_EVENT_SHIPMENT_NONE;
    msgpack_pack_map(pk, 2 + (h->text.len > 0) + shipment + pay + modify + receive);
    pack_key_int(pk, "at_ms", h->at_ms);
    pack_key_cstr(pk, "event", allot_order_event_names[h->event]);
    if (h->text.len > 0)
        pack_key_str(pk, history_text_key(h->event), h->text);
    if (shipment)
        pack_shipment_id(pk, "shipment", h->shipment);
    if (pay && h->arg < ALLOT_PAYMENT_COUNT)
        pack_key_cstr(pk, "payment", allot_payment_names[h->arg]);
    else if (pay)
        pack_key_cstr(pk, "payment", "none");
    if (receive)
        pack_key_cstr(pk, "disposition",
                      allot_disposition_names[h->arg < ALLOT_DISPOSITION_COUNT ? h->arg : 0]);
    if (modify) {
        static const char *const fields[] = {"address", "instructions", "method"};
        pack_cstr(pk, "fields");
        msgpack_pack_array(pk, (uint32_t)__builtin_popcount(h->arg & 7u));
        for (uint32_t b = 0; b < 3; b++)
            if (h->arg & (1u << b))
                pack_cstr(pk, fields[b]);
    }
}

static void pack_return(msgpack_packer *pk, const allot_order_view_t *v,
                        const allot_event_return_t *r)
{
    bool received = r->state == ALLOT_RETURN_RECEIVED;
    msgpack_pack_map(pk, 6 + (r->reason.len > 0) + (received ? 3 : 0));
    pack_key_str(pk, "id", r->id);
    pack_key_str(pk, "order", v->id);
    pack_key_cstr(pk, "state", allot_return_state_names[r->state]);
    pack_cstr(pk, "lines");
    pack_items(pk, v->items + r->item_first, r->item_count);
    pack_key_str(pk, "label", r->label);
    pack_key_int(pk, "created_ms", r->created_ms);
    if (r->reason.len > 0)
        pack_key_str(pk, "reason", r->reason);
    if (received) {
        pack_key_str(pk, "location", r->location);
        pack_key_cstr(pk, "disposition", allot_disposition_names[r->disposition]);
        pack_key_int(pk, "received_ms", r->received_ms);
    }
}

static void pack_order_optional(msgpack_packer *pk, const allot_order_view_t *v)
{
    if (v->address.len > 0) {
        pack_cstr(pk, "address");
        pk->callback(pk->data, v->address.ptr, v->address.len); /* stored as packed msgpack */
    }
    if (v->instructions.len > 0)
        pack_key_str(pk, "instructions", v->instructions);
    if (v->location.len > 0)
        pack_key_str(pk, "location", v->location);
    if (v->has_ship_to) {
        pack_cstr(pk, "ship_to");
        msgpack_pack_map(pk, 2);
        pack_key_double(pk, "lat", v->lat);
        pack_key_double(pk, "lon", v->lon);
    }
    if (v->return_count > 0) {
        pack_cstr(pk, "returns");
        msgpack_pack_array(pk, v->return_count);
        for (uint32_t i = 0; i < v->return_count; i++)
            pack_return(pk, v, &v->returns[i]);
    }
}

/* The order's lines: {sku, qty}, and on a line with units still waiting for future supply also
 * "backordered" (those units) and "backorders": [{supply, qty, eta_ms}] (the supply's eta now). */
static void pack_lines(msgpack_packer *pk, const allot_state_t *state, const allot_order_view_t *v)
{
    msgpack_pack_array(pk, v->line_count);
    for (uint32_t i = 0; i < v->line_count; i++) {
        int64_t backordered = 0;
        uint32_t parts = 0;
        for (uint32_t k = 0; k < v->backorder_count; k++)
            if (v->backorders[k].line == i) {
                backordered += v->backorders[k].qty;
                parts++;
            }
        msgpack_pack_map(pk, parts > 0 ? 4 : 2);
        pack_key_str(pk, "sku", v->lines[i].sku);
        pack_key_int(pk, "qty", v->lines[i].qty);
        if (parts == 0)
            continue;
        pack_key_int(pk, "backordered", backordered);
        pack_cstr(pk, "backorders");
        msgpack_pack_array(pk, parts);
        for (uint32_t k = 0; k < v->backorder_count; k++) {
            const allot_event_backorder_t *b = &v->backorders[k];
            if (b->line != i)
                continue;
            msgpack_pack_map(pk, 3);
            pack_key_str(pk, "supply", b->supply);
            pack_key_int(pk, "qty", b->qty);
            pack_key_int(pk, "eta_ms", allot_supply_eta_ms(state, b->supply));
        }
    }
}

static void pack_order(msgpack_packer *pk, const allot_state_t *state, const allot_order_view_t *v)
{
    uint32_t fields = 10 + (v->address.len > 0) + (v->instructions.len > 0) +
                      (v->location.len > 0) + v->has_ship_to + (v->return_count > 0);
    msgpack_pack_map(pk, fields);
    pack_key_str(pk, "id", v->id);
    pack_cstr(pk, "customer");
    if (v->customer.len > 0)
        pack_str(pk, v->customer);
    else
        msgpack_pack_nil(pk);
    pack_key_cstr(pk, "state", allot_order_state_names[v->state]);
    pack_key_cstr(pk, "payment", allot_payment_names[v->payment]);
    pack_key_int(pk, "created_ms", v->created_ms);
    pack_key_cstr(pk, "method", allot_method_names[v->method]);
    pack_key_cstr(pk, "policy", allot_policy_names[v->policy]);
    pack_cstr(pk, "lines");
    pack_lines(pk, state, v);
    pack_cstr(pk, "shipments");
    pack_shipments(pk, v);
    pack_cstr(pk, "history");
    msgpack_pack_array(pk, v->history_count);
    for (uint32_t i = 0; i < v->history_count; i++)
        pack_history_entry(pk, &v->history[i]);
    pack_order_optional(pk, v);
}

/* ---- argument helpers -------------------------------------------------------------------------
 */

/* An optional string argument (absent = empty). */
static int args_text(const msgpack_object *p, const char *key, allot_str_t *out,
                     allot_error_detail_t *e)
{
    bool present = false;
    int rc = args_str(p, key, ALLOT_TEXT_BYTES_MAX, out, &present, e);
    if (rc == 0 && !present)
        *out = (allot_str_t){"", 0};
    return rc;
}

static int args_optional_id(const msgpack_object *p, const char *key, allot_str_t *out,
                            allot_error_detail_t *e)
{
    bool present = false;
    int rc = args_id(p, key, out, &present, e);
    if (rc == 0 && !present)
        *out = (allot_str_t){"", 0};
    return rc;
}

static int reply_order(command_call_t *call, int rc, const allot_order_view_t *v)
{
    if (rc != 0)
        return rc;
    pack_order(call->result, call->state, v);
    return 0;
}

/* ---- orders -----------------------------------------------------------------------------------
 */

int handle_order_create(command_call_t *call)
{
    static args_order_create_t generic;
    const allot_order_create_request_t *req = &generic.request;
    const allot_order_view_t *v = NULL;
    int rc = 0;
    if (call->args != NULL)
        req = &call->args->order_create.request;
    else
        rc = args_order_create_get(call->params, &generic, call->error);
    if (rc == 0)
        rc = allot_order_create(call->state, req, call->now_ms, &v, call->error);
    return reply_order(call, rc, v);
}

int handle_order_get(command_call_t *call)
{
    allot_str_t id;
    const allot_order_view_t *v = NULL;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = allot_order_get(call->state, id, &v, call->error);
    return reply_order(call, rc, v);
}

/* order.list: a customer's orders, or without customer every order in memory, filtered by
 * state and payment (filters apply to the all-orders listing only). */
int handle_order_list(command_call_t *call)
{
    const msgpack_object *p = call->params;
    allot_str_t customer, after;
    int64_t limit = ALLOT_ORDER_LIST_LIMIT_DEFAULT;
    int order_state = -1, payment = -1;
    bool state_given = false, payment_given = false;
    static allot_order_page_t page;
    int rc = args_optional_id(p, "customer", &customer, call->error);
    if (rc == 0)
        rc = args_int64(p, "limit", 1, ALLOT_ORDER_LIST_LIMIT_MAX, &limit, &(bool){false},
                        call->error);
    if (rc == 0)
        rc = args_optional_id(p, "after", &after, call->error);
    if (rc == 0)
        rc =
            args_enum(p, "state", allot_order_state_names, &order_state, &state_given, call->error);
    if (rc == 0)
        rc = args_enum(p, "payment", allot_payment_names, &payment, &payment_given, call->error);
    if (rc == 0 && customer.len > 0 && (state_given || payment_given))
        rc =
            allot_error_set(call->error, ALLOT_EINVALID_ARGUMENT, state_given ? "state" : "payment",
                            "state and payment filter the listing of all orders (without "
                            "customer); a customer's list is complete, filter it there");
    if (rc == 0 && customer.len > 0)
        rc = allot_order_list(call->state, customer, (uint32_t)limit, after, &page, call->error);
    else if (rc == 0)
        rc = allot_order_list_all(call->state, state_given ? order_state : -1,
                                  payment_given ? payment : -1, (uint32_t)limit, after, &page,
                                  call->error);
    if (rc != 0)
        return rc;
    msgpack_packer *pk = call->result;
    msgpack_pack_map(pk, 2);
    pack_cstr(pk, "orders");
    msgpack_pack_array(pk, page.count);
    allot_str_t last = {"", 0};
    for (uint32_t i = 0; i < page.count; i++) {
        const allot_order_view_t *v = allot_order_page_at(call->state, &page, i);
        if (v == NULL) { /* an archived record that no longer decodes: say so in place */
            msgpack_pack_nil(pk);
            continue;
        }
        pack_order(pk, call->state, v);
        last = v->id; /* archived views stay readable until the next call into the state */
    }
    pack_cstr(pk, "next_after");
    if (page.more && last.len > 0)
        pack_str(pk, last);
    else
        msgpack_pack_nil(pk);
    return 0;
}

int handle_order_pay(command_call_t *call)
{
    allot_str_t id;
    int status = 0;
    const allot_order_view_t *v = NULL;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = args_enum(call->params, "status", allot_payment_names, &status, NULL, call->error);
    if (rc == 0)
        rc = allot_order_pay(call->state, id, (allot_payment_t)status, call->now_ms, &v,
                             call->error);
    return reply_order(call, rc, v);
}

int handle_order_hold(command_call_t *call)
{
    allot_str_t id, reason;
    const allot_order_view_t *v = NULL;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = args_str(call->params, "reason", ALLOT_TEXT_BYTES_MAX, &reason, NULL, call->error);
    if (rc == 0)
        rc = allot_order_hold(call->state, id, reason, call->now_ms, &v, call->error);
    return reply_order(call, rc, v);
}

int handle_order_unhold(command_call_t *call)
{
    allot_str_t id;
    const allot_order_view_t *v = NULL;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = allot_order_unhold(call->state, id, call->now_ms, &v, call->error);
    return reply_order(call, rc, v);
}

int handle_order_modify(command_call_t *call)
{
    const msgpack_object *p = call->params;
    allot_order_modify_request_t req = {0};
    int method = 0;
    const allot_order_view_t *v = NULL;
    int rc = args_id(p, "id", &req.id, NULL, call->error);
    if (rc == 0)
        rc = args_address(p, &req.address, &req.has_address, call->error);
    if (rc == 0)
        rc = args_str(p, "instructions", ALLOT_TEXT_BYTES_MAX, &req.instructions,
                      &req.has_instructions, call->error);
    if (rc == 0)
        rc = args_enum(p, "method", allot_method_names, &method, &req.has_method, call->error);
    req.method = (allot_method_t)method;
    if (rc == 0 && !req.has_address && !req.has_instructions && !req.has_method)
        rc = allot_error_set(call->error, ALLOT_EINVALID_ARGUMENT, "address",
                             "give at least one of address, instructions, method");
    if (rc == 0)
        rc = allot_order_modify(call->state, &req, call->now_ms, &v, call->error);
    return reply_order(call, rc, v);
}

int handle_order_release(command_call_t *call)
{
    allot_str_t id;
    const allot_order_view_t *v = NULL;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = allot_order_release(call->state, id, call->now_ms, &v, call->error);
    return reply_order(call, rc, v);
}

int handle_order_cancel(command_call_t *call)
{
    allot_str_t id, reason;
    const allot_order_view_t *v = NULL;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = args_text(call->params, "reason", &reason, call->error);
    if (rc == 0)
        rc = allot_order_cancel(call->state, id, reason, call->now_ms, &v, call->error);
    return reply_order(call, rc, v);
}

/* ---- shipments --------------------------------------------------------------------------------
 */

static int shipment_args(command_call_t *call, allot_str_t *order, allot_str_t *shipment,
                         const char *text_key, allot_str_t *text)
{
    int rc = args_id(call->params, "order", order, NULL, call->error);
    if (rc == 0)
        rc = args_id(call->params, "shipment", shipment, NULL, call->error);
    if (rc == 0 && text_key != NULL)
        rc = args_text(call->params, text_key, text, call->error);
    return rc;
}

int handle_shipment_reject(command_call_t *call)
{
    allot_str_t order, shipment, reason;
    const allot_order_view_t *v = NULL;
    int rc = shipment_args(call, &order, &shipment, "reason", &reason);
    if (rc == 0)
        rc = allot_shipment_reject(call->state, order, shipment, reason, call->now_ms, &v,
                                   call->error);
    return reply_order(call, rc, v);
}

int handle_shipment_ship(command_call_t *call)
{
    allot_str_t order, shipment, tracking;
    const allot_order_view_t *v = NULL;
    int rc = shipment_args(call, &order, &shipment, "tracking", &tracking);
    if (rc == 0)
        rc = allot_shipment_ship(call->state, order, shipment, tracking, call->now_ms, &v,
                                 call->error);
    return reply_order(call, rc, v);
}

int handle_shipment_deliver(command_call_t *call)
{
    allot_str_t order, shipment;
    const allot_order_view_t *v = NULL;
    int rc = shipment_args(call, &order, &shipment, NULL, NULL);
    if (rc == 0)
        rc = allot_shipment_deliver(call->state, order, shipment, call->now_ms, &v, call->error);
    return reply_order(call, rc, v);
}

/* ---- returns ----------------------------------------------------------------------------------
 */

int handle_return_create(command_call_t *call)
{
    static allot_line_input_t lines[ALLOT_LINES_MAX];
    const msgpack_object *p = call->params;
    allot_return_request_t req = {.lines = lines};
    const allot_order_view_t *v = NULL;
    uint32_t index = 0;
    int rc = args_id(p, "id", &req.id, NULL, call->error);
    if (rc == 0)
        rc = args_id(p, "order", &req.order, NULL, call->error);
    if (rc == 0)
        rc = args_lines(p, lines, &req.line_count, NULL, call->error);
    if (rc == 0)
        rc = args_text(p, "reason", &req.reason, call->error);
    if (rc == 0)
        rc = allot_return_create(call->state, &req, call->now_ms, &v, &index, call->error);
    if (rc != 0)
        return rc;
    pack_return(call->result, v, &v->returns[index]);
    return 0;
}

int handle_return_receive(command_call_t *call)
{
    const msgpack_object *p = call->params;
    allot_str_t id, location;
    int disposition = 0;
    const allot_order_view_t *v = NULL;
    uint32_t index = 0;
    int rc = args_id(p, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = args_id(p, "location", &location, NULL, call->error);
    if (rc == 0)
        rc = args_enum(p, "disposition", allot_disposition_names, &disposition, NULL, call->error);
    if (rc == 0 && disposition == ALLOT_DISPOSITION_NONE)
        rc = allot_error_set(call->error, ALLOT_EINVALID_ARGUMENT, "disposition",
                             "disposition must be restock or damaged");
    if (rc == 0)
        rc = allot_return_receive(call->state, id, location, (allot_disposition_t)disposition,
                                  call->now_ms, &v, &index, call->error);
    if (rc != 0)
        return rc;
    pack_return(call->result, v, &v->returns[index]);
    return 0;
}
