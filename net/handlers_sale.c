/* handlers_sale.c - RPC handlers for SKU settings (sku.put / sku.get) and flash-sale queues
 * (queue.join / queue.status). */
#include "args.h"
#include "command.h"
#include "core/sale.h"
#include "core/state.h"
#include "pack.h"

static const char *const queue_keys[] = {"rate_per_s", "token_ttl_s", NULL};

static void pack_settings(msgpack_packer *pk, allot_str_t sku, const allot_sku_settings_t *s)
{
    msgpack_pack_map(pk, 4);
    pack_key_str(pk, "sku", sku);
    pack_key_int(pk, "low_stock", s->low_stock);
    pack_key_int(pk, "max_per_customer", s->max_per_customer);
    pack_cstr(pk, "queue");
    if (!s->has_queue) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 2);
    pack_key_int(pk, "rate_per_s", s->queue_rate_per_s);
    pack_key_int(pk, "token_ttl_s", s->queue_token_ttl_s);
}

/* `queue`: absent or nil (no queue), or {rate_per_s, token_ttl_s}, both required. */
static int args_queue(const msgpack_object *p, allot_sku_settings_t *s, allot_error_detail_t *e)
{
    const msgpack_object *v = args_find(p, "queue");
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL)
        return 0;
    const msgpack_object *q;
    int rc = args_map(p, "queue", queue_keys, &q, NULL, e);
    if (rc == 0)
        rc = args_int64(q, "rate_per_s", 1, ALLOT_QUEUE_RATE_PER_S_MAX, &s->queue_rate_per_s, NULL,
                        e);
    if (rc == 0)
        rc = args_int64(q, "token_ttl_s", ALLOT_QUEUE_TOKEN_TTL_S_MIN, ALLOT_QUEUE_TOKEN_TTL_S_MAX,
                        &s->queue_token_ttl_s, NULL, e);
    s->has_queue = rc == 0;
    return rc;
}

int handle_sku_put(command_call_t *call)
{
    const msgpack_object *p = call->params;
    allot_error_detail_t *e = call->error;
    allot_str_t sku;
    allot_sku_settings_t s = {0};
    int rc = args_id(p, "sku", &sku, NULL, e);
    if (rc == 0)
        rc = args_int64(p, "low_stock", 0, ALLOT_QUANTITY_MAX, &s.low_stock, &(bool){false}, e);
    if (rc == 0)
        rc = args_int64(p, "max_per_customer", 0, ALLOT_QUANTITY_MAX, &s.max_per_customer,
                        &(bool){false}, e);
    if (rc == 0)
        rc = args_queue(p, &s, e);
    if (rc == 0)
        rc = allot_sku_put(call->state, sku, &s, call->now_ms, e);
    if (rc != 0)
        return rc;
    pack_settings(call->result, sku, &s);
    return 0;
}

int handle_sku_get(command_call_t *call)
{
    allot_str_t sku;
    allot_sku_settings_t s;
    int rc = args_id(call->params, "sku", &sku, NULL, call->error);
    if (rc == 0)
        rc = allot_sku_get(call->state, sku, &s, call->error);
    if (rc != 0)
        return rc;
    pack_settings(call->result, sku, &s);
    return 0;
}

/* {ticket, sku, customer, state, position, admitted, estimated_wait_ms, token?, expires_at_ms?} */
static void pack_ticket(msgpack_packer *pk, const allot_ticket_view_t *t)
{
    bool token = t->state == ALLOT_TICKET_ADMITTED;
    char text[ALLOT_TOKEN_CHARS + 1];
    msgpack_pack_map(pk, 7 + 2 * token);
    allot_ticket_format(t->ticket, text);
    pack_key_cstr(pk, "ticket", text);
    pack_key_str(pk, "sku", t->sku);
    pack_key_str(pk, "customer", t->customer);
    pack_key_cstr(pk, "state", allot_ticket_state_names[t->state]);
    pack_key_int(pk, "position", t->position);
    pack_key_bool(pk, "admitted", t->state != ALLOT_TICKET_WAITING);
    pack_key_int(pk, "estimated_wait_ms", t->estimated_wait_ms);
    if (!token)
        return;
    allot_token_format(t->ticket, t->secret, text);
    pack_key_cstr(pk, "token", text);
    pack_key_int(pk, "expires_at_ms", t->expires_at_ms);
}

int handle_queue_join(command_call_t *call)
{
    allot_str_t sku, customer;
    allot_ticket_view_t t;
    int rc = args_id(call->params, "sku", &sku, NULL, call->error);
    if (rc == 0)
        rc = args_id(call->params, "customer", &customer, NULL, call->error);
    if (rc == 0)
        rc = allot_queue_join(call->state, sku, customer, call->now_ms, &t, call->error);
    if (rc != 0)
        return rc;
    pack_ticket(call->result, &t);
    return 0;
}

int handle_queue_status(command_call_t *call)
{
    allot_str_t ticket;
    allot_ticket_view_t t;
    int rc = args_str(call->params, "ticket", ALLOT_ID_BYTES_MAX, &ticket, NULL, call->error);
    if (rc == 0)
        rc = allot_queue_status(call->state, ticket, call->now_ms, &t, call->error);
    if (rc != 0)
        return rc;
    pack_ticket(call->result, &t);
    return 0;
}
