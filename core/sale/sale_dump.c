/* sale_dump.c - the SKU settings, queues and holdings as canonical text (live vs replay). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory.h"
#include "core/sale/sale_private.h"

typedef struct sale_dump_entry {
    allot_str_t sku;
    allot_str_t customer;
    uint32_t index;
} sale_dump_entry_t;

static int sale_dump_compare(const void *a, const void *b)
{
    const sale_dump_entry_t *x = a, *y = b;
    int c = state_id_compare(x->sku.ptr, x->sku.len, y->sku.ptr, y->sku.len);
    return c != 0 ? c
                  : state_id_compare(x->customer.ptr, x->customer.len, y->customer.ptr,
                                     y->customer.len);
}

static void dump_settings(const allot_state_t *state, FILE *out, const sale_sku_t *k)
{
    const allot_sku_settings_t *s = &k->settings;
    fprintf(out,
            "sku_settings %s low_stock=%" PRId64 " max_per_customer=%" PRId64 " queue=%d"
            " rate_per_s=%" PRId64 " token_ttl_s=%" PRId64 " admitted_upto_ms=%" PRId64
            " admitted_total=%" PRIu64 "\n",
            allot_sku_id(&state->skus[k->sku]).ptr, s->low_stock, s->max_per_customer, s->has_queue,
            s->queue_rate_per_s, s->queue_token_ttl_s, k->admitted_upto_ms, k->admitted_total);
    for (uint32_t i = 0; i < k->queue.count; i++) {
        const sale_ticket_t *t = &state->sale->tickets[k->queue.items[i]];
        fprintf(out,
                "  ticket %s customer=%s state=%s joined_ms=%" PRId64 " expires_at_ms=%" PRId64
                " secret=%016" PRIx64 "\n",
                t->key, t->customer, allot_ticket_state_names[t->state], t->joined_ms,
                t->expires_at_ms, t->secret);
    }
}

int sale_dump(const allot_state_t *state, FILE *out)
{
    const sale_store_t *s = state->sale;
    uint32_t n = s->sku_count > s->holding_slots ? s->sku_count : s->holding_slots;
    sale_dump_entry_t *entries = malloc(((size_t)n + 1) * sizeof(*entries));
    if (entries == NULL)
        return ALLOT_ENOMEM;
    for (uint32_t i = 0; i < s->sku_count; i++)
        entries[i] = (sale_dump_entry_t){allot_sku_id(&state->skus[s->skus[i].sku]), {"", 0}, i};
    qsort(entries, s->sku_count, sizeof(*entries), sale_dump_compare);
    for (uint32_t i = 0; i < s->sku_count; i++)
        dump_settings(state, out, &s->skus[entries[i].index]);
    uint32_t count = 0;
    for (uint32_t i = 0; i < s->holding_slots; i++) {
        const sale_holding_t *h = &s->holdings[i];
        if (h->used)
            entries[count++] = (sale_dump_entry_t){
                allot_sku_id(&state->skus[h->sku]), {h->customer, h->customer_len}, i};
    }
    qsort(entries, count, sizeof(*entries), sale_dump_compare);
    for (uint32_t i = 0; i < count; i++)
        fprintf(out, "holding %s customer=%s qty=%" PRId64 "\n", entries[i].sku.ptr,
                entries[i].customer.ptr, s->holdings[entries[i].index].qty);
    free(entries);
    return 0;
}
