/* handlers_supply.c - RPC handlers for future supply (supply.put / receive / cancel / get /
 * list). */
#include "args.h"
#include "command.h"
#include "core/limits.h"
#include "core/supply.h"
#include "pack.h"

/* A SKU's supplies for one supply.list reply (the loop thread is the only caller). */
static allot_supply_view_t supply_views[ALLOT_SUPPLIES_PER_SKU_MAX];

/* {id, sku, location, qty, received, held, eta_ms, state} */
static void pack_supply(msgpack_packer *pk, const allot_supply_view_t *v)
{
    msgpack_pack_map(pk, 8);
    pack_key_str(pk, "id", v->id);
    pack_key_str(pk, "sku", v->sku);
    pack_key_str(pk, "location", v->location);
    pack_key_int(pk, "qty", v->qty);
    pack_key_int(pk, "received", v->received);
    pack_key_int(pk, "held", v->held);
    pack_key_int(pk, "eta_ms", v->eta_ms);
    pack_key_cstr(pk, "state", allot_supply_state_names[v->state]);
}

int handle_supply_put(command_call_t *call)
{
    const msgpack_object *p = call->params;
    allot_error_detail_t *e = call->error;
    allot_supply_put_input_t in;
    int rc = args_id(p, "id", &in.id, NULL, e);
    if (rc == 0)
        rc = args_id(p, "sku", &in.sku, NULL, e);
    if (rc == 0)
        rc = args_id(p, "location", &in.location, NULL, e);
    if (rc == 0)
        rc = args_int64(p, "qty", 1, ALLOT_QUANTITY_MAX, &in.qty, NULL, e);
    if (rc == 0)
        rc = args_int64(p, "eta_ms", ALLOT_TIME_MS_MIN, ALLOT_TIME_MS_MAX, &in.eta_ms, NULL, e);
    allot_supply_view_t v;
    if (rc == 0)
        rc = allot_supply_put(call->state, &in, call->now_ms, &v, e);
    if (rc != 0)
        return rc;
    pack_supply(call->result, &v);
    return 0;
}

int handle_supply_receive(command_call_t *call)
{
    allot_str_t id;
    int64_t qty = 0;
    bool has_qty = false;
    allot_supply_view_t v;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = args_int64(call->params, "qty", 1, ALLOT_QUANTITY_MAX, &qty, &has_qty, call->error);
    if (rc == 0)
        rc = allot_supply_receive(call->state, id, has_qty, qty, call->now_ms, &v, call->error);
    if (rc != 0)
        return rc;
    pack_supply(call->result, &v);
    return 0;
}

int handle_supply_cancel(command_call_t *call)
{
    allot_str_t id;
    allot_supply_view_t v;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = allot_supply_cancel(call->state, id, call->now_ms, &v, call->error);
    if (rc != 0)
        return rc;
    pack_supply(call->result, &v);
    return 0;
}

int handle_supply_get(command_call_t *call)
{
    allot_str_t id;
    allot_supply_view_t v;
    int rc = args_id(call->params, "id", &id, NULL, call->error);
    if (rc == 0)
        rc = allot_supply_get(call->state, id, &v, call->error);
    if (rc != 0)
        return rc;
    pack_supply(call->result, &v);
    return 0;
}

int handle_supply_list(command_call_t *call)
{
    allot_str_t sku;
    int rc = args_id(call->params, "sku", &sku, NULL, call->error);
    if (rc != 0)
        return rc;
    uint32_t n = allot_supply_list(call->state, sku, supply_views, ALLOT_SUPPLIES_PER_SKU_MAX);
    if (n > ALLOT_SUPPLIES_PER_SKU_MAX)
        n = ALLOT_SUPPLIES_PER_SKU_MAX;
    msgpack_pack_map(call->result, 1);
    pack_cstr(call->result, "supplies");
    msgpack_pack_array(call->result, n);
    for (uint32_t i = 0; i < n; i++)
        pack_supply(call->result, &supply_views[i]);
    return 0;
}
