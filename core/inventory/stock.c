/* stock.c - stock.set and stock.adjust: checks, the adjust-key repeat, then one event. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory.h"
#include "core/inventory/inventory_private.h"

/* ---- stock.set --------------------------------------------------------------------------------
 */

static int stock_ids_check(allot_state_t *state, allot_str_t sku, allot_str_t location,
                           uint32_t *location_index, allot_error_detail_t *detail)
{
    if (!allot_id_valid(sku))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "sku",
                               "sku must be 1..128 bytes of UTF-8");
    if (!allot_id_valid(location))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "location",
                               "location must be 1..128 bytes of UTF-8");
    *location_index = allot_location_index_find(state, location);
    if (*location_index == ALLOT_LOCATION_NONE)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "location", "location %s not found",
                               allot_str_echo(location, &(allot_echo_t){0}));
    return 0;
}

static void stock_result_fill(allot_state_t *state, allot_str_t sku, uint32_t location,
                              allot_stock_result_t *out)
{
    if (out == NULL)
        return;
    uint32_t sku_index = allot_sku_index_find(state, sku);
    const allot_position_t *p =
        sku_index == ALLOT_SKU_NONE ? NULL : inventory_position_mut(state, sku_index, location);
    assert(p != NULL);
    inventory_position_view(state, sku_index, p, &out->position);
    out->stale = out->repeated = false;
}

int allot_stock_set(allot_state_t *state, const allot_stock_set_input_t *in,
                    allot_stock_result_t *out, allot_error_detail_t *detail)
{
    uint32_t location;
    int rc = stock_ids_check(state, in->sku, in->location, &location, detail);
    if (rc != 0)
        return rc;
    if (in->on_hand < 0 || in->on_hand > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "on_hand",
                               "on_hand must be 0..%lld", (long long)ALLOT_QUANTITY_MAX);
    if (in->has_safety_stock && (in->safety_stock < 0 || in->safety_stock > ALLOT_QUANTITY_MAX))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "safety_stock",
                               "safety_stock must be 0..%lld", (long long)ALLOT_QUANTITY_MAX);
    if (in->has_as_of_ms && in->as_of_ms == ALLOT_AS_OF_NONE)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "as_of_ms", "as_of_ms too small");
    uint32_t sku = allot_sku_index_find(state, in->sku);
    const allot_position_t *p =
        sku == ALLOT_SKU_NONE ? NULL : inventory_position_mut(state, sku, location);
    if (p != NULL && in->has_as_of_ms && in->as_of_ms < p->as_of_ms) {
        stock_result_fill(state, in->sku, location, out);
        if (out != NULL)
            out->stale = true;
        return 0;
    }
    allot_event_t event = {.type = ALLOT_EVENT_STOCK_SET};
    allot_event_stock_set_t *e = &event.u.stock_set;
    e->sku = in->sku;
    e->location = in->location;
    e->on_hand = in->on_hand;
    e->safety_stock = in->has_safety_stock ? in->safety_stock : (p ? p->safety_stock : 0);
    e->as_of_ms = in->has_as_of_ms ? in->as_of_ms : (p ? p->as_of_ms : ALLOT_AS_OF_NONE);
    rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    stock_result_fill(state, in->sku, location, out);
    return 0;
}

/* ---- stock.adjust -----------------------------------------------------------------------------
 */

static int stock_adjust_repeat(allot_state_t *state, const allot_stock_adjust_input_t *in,
                               uint32_t location, uint32_t slot, allot_stock_result_t *out,
                               allot_error_detail_t *detail)
{
    const allot_adjust_key_t *k = &state->adjust_keys[slot];
    allot_str_t sku = allot_sku_id(&state->skus[k->sku]);
    if (!allot_str_equal(sku, in->sku) || k->location != location || k->delta != in->delta)
        return allot_error_set(detail, ALLOT_ECONFLICT, "key",
                               "key %s was used for a different adjustment",
                               allot_str_echo(in->key, &(allot_echo_t){0}));
    if (out != NULL) {
        out->position = (allot_position_view_t){
            .sku = sku,
            .location = allot_location_id(&state->locations[location]),
            .on_hand = k->on_hand,
            .reserved = k->reserved,
            .allocated = k->allocated,
            .safety_stock = k->safety_stock,
            .available = k->available,
        };
        out->stale = false;
        out->repeated = true;
    }
    return 0;
}

static int stock_adjust_check(const allot_stock_adjust_input_t *in, allot_error_detail_t *detail)
{
    if (in->delta == 0 || in->delta < -ALLOT_QUANTITY_MAX || in->delta > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "delta",
                               "delta must be non-zero and at most %lld in size",
                               (long long)ALLOT_QUANTITY_MAX);
    if (in->key.len > 0 && !allot_id_valid(in->key))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "key",
                               "key must be 1..128 bytes of UTF-8");
    return 0;
}

int allot_stock_adjust(allot_state_t *state, const allot_stock_adjust_input_t *in, int64_t now_ms,
                       allot_stock_result_t *out, allot_error_detail_t *detail)
{
    uint32_t location;
    int rc = stock_ids_check(state, in->sku, in->location, &location, detail);
    if (rc == 0)
        rc = stock_adjust_check(in, detail);
    if (rc != 0)
        return rc;
    uint32_t slot = in->key.len > 0 ? adjust_key_find(state, in->key) : ALLOT_SLOT_NONE;
    if (slot != ALLOT_SLOT_NONE)
        return stock_adjust_repeat(state, in, location, slot, out, detail);
    uint32_t sku = allot_sku_index_find(state, in->sku);
    const allot_position_t *p =
        sku == ALLOT_SKU_NONE ? NULL : inventory_position_mut(state, sku, location);
    int64_t on_hand = p ? p->on_hand : 0;
    if (on_hand + in->delta < 0) {
        detail->shortfall_count = 1;
        detail->shortfalls[0] = (allot_shortfall_t){in->sku, -in->delta, on_hand};
        return allot_error_set(detail, ALLOT_EINSUFFICIENT_STOCK, "delta",
                               "on_hand %lld cannot drop by %lld", (long long)on_hand,
                               (long long)-in->delta);
    }
    if (on_hand + in->delta > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "delta",
                               "on_hand would exceed %lld", (long long)ALLOT_QUANTITY_MAX);
    allot_event_t event = {.type = ALLOT_EVENT_STOCK_ADJUST};
    event.u.stock_adjust = (allot_event_stock_adjust_t){
        in->sku, in->location, in->delta, on_hand + in->delta, now_ms, in->key};
    rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    stock_result_fill(state, in->sku, location, out);
    return 0;
}
