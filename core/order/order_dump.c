/* order_dump.c - the orders in memory as canonical text, sorted by id (allot_state_dump). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/order/order_private.h"

static const allot_state_t *dump_state; /* qsort has no context; core is single-threaded */

static int order_slot_compare(const void *a, const void *b)
{
    const allot_state_t *state = dump_state;
    const allot_event_order_t *x = &state->orders[*(const uint32_t *)a]->v;
    const allot_event_order_t *y = &state->orders[*(const uint32_t *)b]->v;
    return state_id_compare(x->id.ptr, x->id.len, y->id.ptr, y->id.len);
}

static void dump_items(FILE *out, const char *what, const allot_event_item_t *items, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, "    %s %.*s qty=%" PRId64 "\n", what, (int)items[i].sku.len, items[i].sku.ptr,
                items[i].qty);
}

static void dump_one(FILE *out, const allot_event_order_t *v)
{
    fprintf(out,
            "order %.*s customer=%.*s state=%s payment=%s entered_by=%s created_ms=%" PRId64
            " ended_ms=%" PRId64 " hash=%016" PRIx64
            " method=%u policy=%u ship_to=%d:%.17g:%.17g location=%.*s instructions=%.*s"
            " address_bytes=%u\n",
            (int)v->id.len, v->id.ptr, (int)v->customer.len, v->customer.ptr,
            allot_order_state_names[v->state], allot_payment_names[v->payment],
            allot_order_event_names[v->entered_by], v->created_ms, v->ended_ms, v->request_hash,
            v->method, v->policy, v->has_ship_to, v->lat, v->lon, (int)v->location.len,
            v->location.ptr, (int)v->instructions.len, v->instructions.ptr, v->address.len);
    dump_items(out, "line", v->lines, v->line_count);
    for (uint32_t i = 0; i < v->shipment_count; i++) {
        const allot_event_shipment_t *s = &v->shipments[i];
        fprintf(out, "  shipment S%u location=%.*s state=%s tracking=%.*s reason=%.*s\n", i + 1,
                (int)s->location.len, s->location.ptr, allot_shipment_state_names[s->state],
                (int)s->tracking.len, s->tracking.ptr, (int)s->reason.len, s->reason.ptr);
        dump_items(out, "item", v->items + s->item_first, s->item_count);
    }
    for (uint32_t i = 0; i < v->return_count; i++) {
        const allot_event_return_t *r = &v->returns[i];
        fprintf(out,
                "  return %.*s state=%s disposition=%s location=%.*s created_ms=%" PRId64
                " received_ms=%" PRId64 " label=%.*s reason=%.*s\n",
                (int)r->id.len, r->id.ptr, allot_return_state_names[r->state],
                allot_disposition_names[r->disposition], (int)r->location.len, r->location.ptr,
                r->created_ms, r->received_ms, (int)r->label.len, r->label.ptr, (int)r->reason.len,
                r->reason.ptr);
        dump_items(out, "item", v->items + r->item_first, r->item_count);
    }
    for (uint32_t i = 0; i < v->backorder_count; i++) {
        const allot_event_backorder_t *b = &v->backorders[i];
        fprintf(out, "  backorder line=%u supply=%.*s qty=%" PRId64 "\n", b->line,
                (int)b->supply.len, b->supply.ptr, b->qty);
    }
    for (uint32_t i = 0; i < v->history_count; i++) {
        const allot_event_history_t *h = &v->history[i];
        fprintf(out, "  history at_ms=%" PRId64 " %s arg=%u shipment=%u text=%.*s\n", h->at_ms,
                allot_order_event_names[h->event], h->arg, h->shipment, (int)h->text.len,
                h->text.ptr);
    }
}

void order_dump(const allot_state_t *state, FILE *out)
{
    uint32_t *slots = malloc((state->order_live + 1) * sizeof(uint32_t));
    if (slots == NULL) {
        fprintf(out, "orders: out of memory\n");
        return;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < state->order_slots; i++)
        if (state->orders[i] != NULL)
            slots[n++] = i;
    dump_state = state;
    qsort(slots, n, sizeof(*slots), order_slot_compare);
    fprintf(out, "orders=%u\n", n);
    for (uint32_t i = 0; i < n; i++)
        dump_one(out, &state->orders[slots[i]]->v);
    free(slots);
}
