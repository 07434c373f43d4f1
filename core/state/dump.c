/* dump.c - canonical text dump of the whole state, sorted by ids (live vs replay comparisons). */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/order/order_private.h"
#include "core/reservation.h"
#include "core/promise/promise_private.h"
#include "core/sale/sale_private.h"
#include "core/supply/supply_private.h"
#include "core/state.h"
#include "core/state_private.h"
#include "core/stream/stream_private.h"

typedef struct dump_entry {
    const char *id;
    uint32_t len;
    uint32_t index;
} dump_entry_t;

static int dump_entry_compare(const void *a, const void *b)
{
    const dump_entry_t *x = a, *y = b;
    return state_id_compare(x->id, x->len, y->id, y->len);
}

/* "  calendar timezone=Europe/Berlin cutoff=14:00 processing_days=0 work_days=31 holidays=..." */
static void dump_calendar(FILE *out, const allot_calendar_t *c)
{
    char cutoff[6];
    allot_cutoff_format(c->cutoff_minute, cutoff);
    fprintf(out, "  calendar timezone=%s cutoff=%s processing_days=%u work_days=%u holidays=",
            c->timezone, cutoff, (unsigned)c->processing_days, (unsigned)c->work_days);
    for (uint32_t i = 0; i < c->holiday_count; i++) {
        char date[11];
        allot_date_format(c->holidays[i], date);
        fprintf(out, "%s%s", i > 0 ? "," : "", date);
    }
    fputc('\n', out);
}

static void dump_locations(const allot_state_t *state, FILE *out, dump_entry_t *entries)
{
    for (uint32_t i = 0; i < state->location_count; i++)
        entries[i] = (dump_entry_t){state->locations[i].id, state->locations[i].id_len, i};
    qsort(entries, state->location_count, sizeof(*entries), dump_entry_compare);
    for (uint32_t i = 0; i < state->location_count; i++) {
        const allot_location_t *l = &state->locations[entries[i].index];
        fprintf(out,
                "location %s type=%s lat=%.17g lon=%.17g priority=%" PRId64
                " ship=%d pickup=%d active=%d same_day_radius_km=%.17g daily_capacity=%" PRId64
                " capacity_day=%" PRId64 " capacity_count=%" PRId64 "\n",
                l->id, allot_location_type_names[l->type], l->lat, l->lon, l->priority, l->ship,
                l->pickup, l->active, l->same_day_radius_km, l->daily_capacity, l->capacity_day,
                l->capacity_count);
        dump_calendar(out, &l->calendar);
    }
}

static void dump_sku(const allot_state_t *state, FILE *out, const allot_sku_t *sku,
                     dump_entry_t *entries)
{
    fprintf(out, "sku %s\n", allot_sku_id(sku).ptr);
    for (uint32_t i = 0; i < sku->position_count; i++) {
        const allot_location_t *l = &state->locations[sku->positions[i].location];
        entries[i] = (dump_entry_t){l->id, l->id_len, i};
    }
    qsort(entries, sku->position_count, sizeof(*entries), dump_entry_compare);
    for (uint32_t i = 0; i < sku->position_count; i++) {
        const allot_position_t *p = &sku->positions[entries[i].index];
        fprintf(out,
                "  position %s on_hand=%" PRId64 " reserved=%" PRId64 " allocated=%" PRId64
                " safety_stock=%" PRId64 " as_of_ms=%" PRId64 "\n",
                entries[i].id, p->on_hand, p->reserved, p->allocated, p->safety_stock, p->as_of_ms);
    }
}

static void dump_reservation(const allot_state_t *state, FILE *out, const allot_reservation_t *r)
{
    fprintf(out,
            "reservation %s status=%s hash=%016" PRIx64 " created_ms=%" PRId64
            " expires_at_ms=%" PRId64 " ended_ms=%" PRId64 "\n",
            allot_reservation_id(r).ptr, allot_reservation_status_names[r->status], r->request_hash,
            r->created_ms, r->expires_at_ms, allot_reservation_ended_ms(r));
    for (uint32_t i = 0; i < r->line_count; i++) {
        const allot_reservation_line_t *line = &allot_reservation_lines(r)[i];
        fprintf(out, "  line %s requested=%" PRId64 " held=%" PRId64 "\n",
                allot_sku_id(&state->skus[line->sku]).ptr, line->qty_requested, line->qty_held);
        for (uint32_t k = 0; k < line->allocation_count; k++) {
            const allot_reservation_allocation_t *a =
                &allot_reservation_allocations(r)[line->allocation_first + k];
            if (a->location == ALLOT_LOCATION_SUPPLY) {
                allot_str_t supply = allot_reservation_allocation_supply(r, a);
                fprintf(out, "    backorder %.*s qty=%" PRId64 "\n", (int)supply.len, supply.ptr,
                        a->qty);
                continue;
            }
            fprintf(out, "    allocation %s qty=%" PRId64 "\n", state->locations[a->location].id,
                    a->qty);
        }
    }
}

static void dump_adjust_key(const allot_state_t *state, FILE *out, const allot_adjust_key_t *k)
{
    fprintf(out,
            "adjust_key %s sku=%s location=%s delta=%" PRId64 " at_ms=%" PRId64 " on_hand=%" PRId64
            " reserved=%" PRId64 " allocated=%" PRId64 " safety_stock=%" PRId64
            " available=%" PRId64 "\n",
            k->key, allot_sku_id(&state->skus[k->sku]).ptr, state->locations[k->location].id,
            k->delta, k->at_ms, k->on_hand, k->reserved, k->allocated, k->safety_stock,
            k->available);
}

static size_t dump_entries_needed(const allot_state_t *state)
{
    size_t n = state->location_count;
    if (state->sku_count > n)
        n = state->sku_count;
    if (state->reservation_slots > n)
        n = state->reservation_slots;
    if (state->adjust_key_slots > n)
        n = state->adjust_key_slots;
    return n + ALLOT_LOCATIONS_MAX;
}

int allot_state_dump(const allot_state_t *state, FILE *out)
{
    size_t n = dump_entries_needed(state);
    dump_entry_t *entries = malloc(n * sizeof(*entries));
    if (entries == NULL)
        return ALLOT_ENOMEM;
    dump_entry_t *inner = entries + (n - ALLOT_LOCATIONS_MAX);
    fprintf(out,
            "allot state: locations=%u skus=%" PRIu64 " positions=%" PRIu64
            " reservations=%u tombstones=%u adjust_keys=%u\n",
            state->location_count, state->skus_stocked, state->position_count,
            state->reservation_live, state->reservation_tombstones, state->adjust_key_count);
    dump_locations(state, out, entries);
    uint32_t count = 0;
    for (uint32_t i = 0; i < state->sku_count; i++)
        if (state->skus[i].position_count > 0)
            entries[count++] =
                (dump_entry_t){allot_sku_id(&state->skus[i]).ptr, state->skus[i].id_len, i};
    qsort(entries, count, sizeof(*entries), dump_entry_compare);
    for (uint32_t i = 0; i < count; i++)
        dump_sku(state, out, &state->skus[entries[i].index], inner);
    count = 0;
    for (uint32_t i = 0; i < state->reservation_slots; i++)
        if (state->reservations[i].used) {
            allot_str_t id = allot_reservation_id(&state->reservations[i]);
            entries[count++] = (dump_entry_t){id.ptr, id.len, i};
        }
    qsort(entries, count, sizeof(*entries), dump_entry_compare);
    for (uint32_t i = 0; i < count; i++)
        dump_reservation(state, out, &state->reservations[entries[i].index]);
    count = 0;
    for (uint32_t i = 0; i < state->adjust_key_slots; i++)
        if (state->adjust_keys[i].used)
            entries[count++] =
                (dump_entry_t){state->adjust_keys[i].key, state->adjust_keys[i].key_len, i};
    qsort(entries, count, sizeof(*entries), dump_entry_compare);
    for (uint32_t i = 0; i < count; i++)
        dump_adjust_key(state, out, &state->adjust_keys[entries[i].index]);
    free(entries);
    order_dump(state, out);
    consumer_dump(state, out);
    int rc = sale_dump(state, out);
    if (rc == 0)
        rc = transit_dump(state, out);
    if (rc == 0)
        rc = supply_dump(state, out);
    return rc != 0 ? rc : ferror(out) ? ALLOT_EIO : 0;
}
