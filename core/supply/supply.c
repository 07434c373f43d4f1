/* supply.c - supply.put / cancel (checks, then one event) and the reads: get, list, and the
 * incoming supply a product page can still promise (supply.receive: core/order/order_receipt.c).
 */
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/supply/supply_private.h"

int supply_id_check(allot_str_t id, const char *field, allot_error_detail_t *detail)
{
    if (allot_id_valid(id))
        return 0;
    return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, field,
                           "%s must be 1..128 bytes of UTF-8", field);
}

int supply_lookup(const allot_state_t *state, allot_str_t id, uint32_t *slot,
                  allot_error_detail_t *detail)
{
    int rc = supply_id_check(id, "id", detail);
    if (rc != 0)
        return rc;
    *slot = supply_find(state, id);
    if (*slot == ALLOT_SLOT_NONE)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "id", "supply %s not found",
                               allot_str_echo(id, &(allot_echo_t){0}));
    return 0;
}

int supply_not_open(const supply_t *x, allot_error_detail_t *detail)
{
    return allot_error_set(detail, ALLOT_EINVALID_TRANSITION, "id", "supply %s is %s",
                           allot_str_echo((allot_str_t){x->id, x->id_len}, &(allot_echo_t){0}),
                           allot_supply_state_names[x->state]);
}

static int put_input_check(const allot_state_t *state, const allot_supply_put_input_t *in,
                           uint32_t *location, allot_error_detail_t *detail)
{
    int rc = supply_id_check(in->id, "id", detail);
    if (rc == 0)
        rc = supply_id_check(in->sku, "sku", detail);
    if (rc == 0)
        rc = supply_id_check(in->location, "location", detail);
    if (rc != 0)
        return rc;
    if (in->qty < 1 || in->qty > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "qty", "qty must be 1..%lld",
                               (long long)ALLOT_QUANTITY_MAX);
    if (in->eta_ms < ALLOT_TIME_MS_MIN || in->eta_ms > ALLOT_TIME_MS_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "eta_ms",
                               "eta_ms must be %lld..%lld", (long long)ALLOT_TIME_MS_MIN,
                               (long long)ALLOT_TIME_MS_MAX);
    *location = allot_location_index_find(state, in->location);
    if (*location == ALLOT_LOCATION_NONE)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "location", "location %s not found",
                               allot_str_echo(in->location, &(allot_echo_t){0}));
    return 0;
}

/* A change of an existing supply: what may change (see the contract in core/supply.h). */
static int put_existing_check(const allot_state_t *state, const supply_t *x,
                              const allot_supply_put_input_t *in, uint32_t location,
                              allot_error_detail_t *detail)
{
    if (!allot_str_equal(allot_sku_id(allot_sku_at(state, x->sku)), in->sku))
        return allot_error_set(detail, ALLOT_ECONFLICT, "sku",
                               "supply %s is of another sku (a supply keeps its sku)",
                               allot_str_echo(in->id, &(allot_echo_t){0}));
    if (x->state != ALLOT_SUPPLY_OPEN)
        return supply_not_open(x, detail);
    if (x->received > 0 && x->location != location)
        return allot_error_set(detail, ALLOT_ECONFLICT, "location",
                               "supply %s already received units at its location",
                               allot_str_echo(in->id, &(allot_echo_t){0}));
    if (in->qty < x->received + x->held)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "qty",
                               "qty %lld is below the %lld units received and held",
                               (long long)in->qty, (long long)(x->received + x->held));
    return 0;
}

int allot_supply_put(allot_state_t *state, const allot_supply_put_input_t *in, int64_t now_ms,
                     allot_supply_view_t *out, allot_error_detail_t *detail)
{
    uint32_t location;
    int rc = put_input_check(state, in, &location, detail);
    if (rc != 0)
        return rc;
    uint32_t slot = supply_find(state, in->id);
    if (slot != ALLOT_SLOT_NONE) {
        const supply_t *x = &state->supply->supplies[slot];
        rc = put_existing_check(state, x, in, location, detail);
        if (rc != 0)
            return rc;
        if (x->qty == in->qty && x->location == location && x->eta_ms == in->eta_ms) {
            supply_view_fill(state, slot, out); /* the same supply again: nothing changes */
            return 0;
        }
    } else {
        uint32_t sku = allot_sku_index_find(state, in->sku);
        bool full = false;
        if (sku != ALLOT_SKU_NONE)
            (void)supply_evictee(state, sku, &full);
        else
            full = state->supply->count >= ALLOT_SUPPLIES_MAX; /* a new SKU has none to evict */
        if (full)
            return allot_error_set(detail, ALLOT_ETOO_LARGE, "sku",
                                   "at most %u supplies per sku and %u in all, and every one of "
                                   "this sku is open",
                                   ALLOT_SUPPLIES_PER_SKU_MAX, ALLOT_SUPPLIES_MAX);
    }
    allot_event_t event = {.type = ALLOT_EVENT_SUPPLY_PUT};
    event.u.supply = (allot_event_supply_t){.id = in->id,
                                            .sku = in->sku,
                                            .location = in->location,
                                            .qty = in->qty,
                                            .eta_ms = in->eta_ms,
                                            .at_ms = now_ms};
    if (slot != ALLOT_SLOT_NONE) { /* a delay moves the backorders on it to earlier supply */
        const supply_t *x = &state->supply->supplies[slot];
        event.u.supply.serves = x->held > 0 && in->eta_ms > x->eta_ms;
    }
    rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    supply_view_fill(state, supply_find(state, in->id), out);
    return 0;
}

int allot_supply_cancel(allot_state_t *state, allot_str_t id, int64_t now_ms,
                        allot_supply_view_t *out, allot_error_detail_t *detail)
{
    uint32_t slot;
    int rc = supply_lookup(state, id, &slot, detail);
    if (rc != 0)
        return rc;
    const supply_t *x = &state->supply->supplies[slot];
    if (x->state == ALLOT_SUPPLY_RECEIVED)
        return supply_not_open(x, detail);
    if (x->state == ALLOT_SUPPLY_OPEN) { /* its backorders move or are released in the record */
        allot_event_t event = {.type = ALLOT_EVENT_SUPPLY_CANCEL};
        event.u.supply = (allot_event_supply_t){.id = id, .at_ms = now_ms, .serves = x->held > 0};
        rc = state_event_emit(state, &event);
        if (rc != 0)
            return allot_error_set(detail, rc, NULL, "out of memory");
    }
    supply_view_fill(state, slot, out);
    return 0;
}

int allot_supply_get(const allot_state_t *state, allot_str_t id, allot_supply_view_t *out,
                     allot_error_detail_t *detail)
{
    uint32_t slot;
    int rc = supply_lookup(state, id, &slot, detail);
    if (rc == 0)
        supply_view_fill(state, slot, out);
    return rc;
}

uint32_t allot_supply_list(const allot_state_t *state, allot_str_t sku, allot_supply_view_t *views,
                           uint32_t views_max)
{
    uint32_t index = allot_sku_index_find(state, sku);
    uint32_t owner = index == ALLOT_SKU_NONE ? ALLOT_SLOT_NONE : supply_sku_find(state, index);
    if (owner == ALLOT_SLOT_NONE)
        return 0;
    const allot_u32_vec_t *list = &state->supply->skus[owner].slots;
    for (uint32_t i = 0; i < list->count && i < views_max; i++)
        supply_view_fill(state, list->items[i], &views[i]);
    return list->count;
}

uint32_t allot_supply_count(const allot_state_t *state)
{
    return state->supply->count;
}

uint32_t allot_supply_incoming(const allot_state_t *state, uint32_t sku,
                               allot_supply_incoming_t *out, uint32_t max)
{
    uint32_t owner = supply_sku_find(state, sku);
    if (owner == ALLOT_SLOT_NONE)
        return 0;
    const supply_store_t *s = state->supply;
    const allot_u32_vec_t *list = &s->skus[owner].slots;
    uint32_t n = 0;
    for (uint32_t i = 0; i < list->count && n < max; i++) {
        const supply_t *x = &s->supplies[list->items[i]];
        int64_t free_qty = x->qty - x->received - x->held;
        if (x->state == ALLOT_SUPPLY_OPEN && free_qty > 0)
            out[n++] = (allot_supply_incoming_t){x->eta_ms, free_qty, x->location, list->items[i]};
    }
    return n;
}

uint32_t allot_supply_open(const allot_state_t *state, uint32_t sku, allot_supply_incoming_t *out,
                           uint32_t max)
{
    uint32_t owner = supply_sku_find(state, sku);
    if (owner == ALLOT_SLOT_NONE)
        return 0;
    const supply_store_t *s = state->supply;
    const allot_u32_vec_t *list = &s->skus[owner].slots;
    uint32_t n = 0;
    for (uint32_t i = 0; i < list->count && n < max; i++) {
        const supply_t *x = &s->supplies[list->items[i]];
        if (x->state == ALLOT_SUPPLY_OPEN)
            out[n++] = (allot_supply_incoming_t){x->eta_ms, x->qty - x->received - x->held,
                                                 x->location, list->items[i]};
    }
    return n;
}

allot_str_t allot_supply_id_at(const allot_state_t *state, uint32_t supply)
{
    const supply_t *x = &state->supply->supplies[supply];
    return (allot_str_t){x->id, x->id_len};
}

int64_t allot_supply_eta_ms(const allot_state_t *state, allot_str_t id)
{
    uint32_t slot = supply_find(state, id);
    return slot == ALLOT_SLOT_NONE ? INT64_MIN : state->supply->supplies[slot].eta_ms;
}
