/* sale_snapshot.c - SKU settings records and queue tickets as checkpoint records (the kinds
 * SKU_SETTINGS and QUEUE_TICKET of core/events.def). */
#include <assert.h>

#include "core/inventory.h"
#include "core/sale/sale_private.h"

uint32_t sku_settings_snapshot_slots(const allot_state_t *state)
{
    return state->sale->sku_count;
}

uint8_t *sku_settings_snapshot_marks(allot_state_t *state, uint32_t index)
{
    return index < state->sale->sku_count ? &state->sale->skus[index].dirty : NULL;
}

/* The key is the SKU id (kind 7 sorts before the tickets, kind 8, which need their SKU). */
int sku_settings_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                               allot_str_t *id)
{
    (void)full;
    const sale_sku_t *k = &state->sale->skus[index];
    *id = allot_sku_id(&state->skus[k->sku]);
    allot_event_t event = {.type = ALLOT_EVENT_SKU_SETTINGS_SNAPSHOT};
    event.u.sku_settings = (allot_event_sku_settings_t){
        .sku = *id,
        .low_stock = k->settings.low_stock,
        .max_per_customer = k->settings.max_per_customer,
        .has_queue = k->settings.has_queue,
        .rate_per_s = k->settings.has_queue ? k->settings.queue_rate_per_s : 0,
        .token_ttl_s = k->settings.has_queue ? k->settings.queue_token_ttl_s : 0,
        .admitted_upto_ms = k->admitted_upto_ms,
        .admitted_total = k->admitted_total};
    return allot_event_encode(&event, out);
}

uint32_t queue_ticket_snapshot_slots(const allot_state_t *state)
{
    return state->sale->ticket_slots;
}

uint8_t *queue_ticket_snapshot_marks(allot_state_t *state, uint32_t index)
{
    sale_store_t *s = state->sale;
    return index < s->ticket_slots && s->tickets[index].used ? &s->tickets[index].dirty : NULL;
}

/* The key is the ticket's string (its number in 16 hex digits), so that loading in key order
 * meets each queue's tickets in join order. */
int queue_ticket_snapshot_take(allot_state_t *state, uint32_t index, bool full, allot_bytes_t *out,
                               allot_str_t *id)
{
    (void)full;
    const sale_ticket_t *t = &state->sale->tickets[index];
    assert(t->used);
    *id = (allot_str_t){t->key, ALLOT_TICKET_CHARS};
    const sale_sku_t *k = &state->sale->skus[t->owner];
    allot_event_t event = {.type = ALLOT_EVENT_QUEUE_TICKET_SNAPSHOT};
    event.u.queue_ticket = (allot_event_queue_ticket_t){.ticket = t->number,
                                                        .sku = allot_sku_id(&state->skus[k->sku]),
                                                        .customer = {t->customer, t->customer_len},
                                                        .state = t->state,
                                                        .joined_ms = t->joined_ms,
                                                        .expires_at_ms = t->expires_at_ms,
                                                        .secret = t->secret};
    return allot_event_encode(&event, out);
}
