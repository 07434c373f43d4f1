/* supply_store.c - the supply records, their index by id and each SKU's list in eta order; life
 * cycle, dump and the invariants of core/supply/. */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/inventory.h"
#include "core/supply/supply_private.h"

const char *const allot_supply_state_names[] = {"open", "received", "cancelled"};
_Static_assert(sizeof(allot_supply_state_names) / sizeof(allot_supply_state_names[0]) ==
                   ALLOT_SUPPLY_STATE_COUNT,
               "a name per supply state");

static uint32_t u32_hash(uint32_t value)
{
    return allot_hash_bytes(&value, sizeof(value));
}

int supply_init(allot_state_t *state)
{
    state->supply = calloc(1, sizeof(*state->supply));
    if (state->supply == NULL)
        return ALLOT_ENOMEM;
    allot_hash_init(&state->supply->index);
    allot_hash_init(&state->supply->sku_index);
    return 0;
}

void supply_free_all(allot_state_t *state)
{
    supply_store_t *s = state->supply;
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->sku_count; i++)
        allot_u32_vec_free(&s->skus[i].slots);
    allot_u32_vec_free(&s->free);
    free(s->skus);
    free(s->supplies);
    allot_hash_free(&s->index);
    allot_hash_free(&s->sku_index);
    free(s);
    state->supply = NULL;
}

void supply_held_add(allot_state_t *state, allot_str_t id, int64_t delta)
{
    uint32_t slot = supply_find(state, id);
    if (slot == ALLOT_SLOT_NONE)
        return;
    supply_dirty(state, slot); /* before the change (checkpoint pre-image) */
    supply_t *x = &state->supply->supplies[slot];
    x->held += delta;
    if (x->held < 0)
        x->held = 0;
}

uint32_t supply_find(const allot_state_t *state, allot_str_t id)
{
    const supply_store_t *s = state->supply;
    if (s->count == 0)
        return ALLOT_SLOT_NONE;
    allot_hash_probe_t probe;
    allot_hash_probe_start(&s->index, allot_hash_bytes(id.ptr, id.len), &probe);
    for (uint32_t i; (i = allot_hash_probe_next(&s->index, &probe)) != ALLOT_HASH_NONE;) {
        const supply_t *x = &s->supplies[i];
        if (x->used && x->id_len == id.len && memcmp(x->id, id.ptr, id.len) == 0)
            return i;
    }
    return ALLOT_SLOT_NONE;
}

uint32_t supply_sku_find(const allot_state_t *state, uint32_t sku)
{
    const supply_store_t *s = state->supply;
    if (s->sku_count == 0)
        return ALLOT_SLOT_NONE;
    allot_hash_probe_t probe;
    allot_hash_probe_start(&s->sku_index, u32_hash(sku), &probe);
    for (uint32_t i; (i = allot_hash_probe_next(&s->sku_index, &probe)) != ALLOT_HASH_NONE;)
        if (s->skus[i].sku == sku)
            return i;
    return ALLOT_SLOT_NONE;
}

uint32_t supply_evictee(const allot_state_t *state, uint32_t sku, bool *full)
{
    const supply_store_t *s = state->supply;
    *full = false;
    uint32_t owner = supply_sku_find(state, sku);
    uint32_t of_sku = owner == ALLOT_SLOT_NONE ? 0 : s->skus[owner].slots.count;
    if (of_sku < ALLOT_SUPPLIES_PER_SKU_MAX && s->count < ALLOT_SUPPLIES_MAX)
        return ALLOT_SLOT_NONE;
    uint32_t best = ALLOT_SLOT_NONE;
    for (uint32_t i = 0; i < of_sku; i++) {
        uint32_t slot = s->skus[owner].slots.items[i];
        const supply_t *x = &s->supplies[slot];
        if (x->state == ALLOT_SUPPLY_OPEN)
            continue;
        const supply_t *b = best == ALLOT_SLOT_NONE ? NULL : &s->supplies[best];
        if (b == NULL || x->updated_ms < b->updated_ms ||
            (x->updated_ms == b->updated_ms &&
             state_id_compare(x->id, x->id_len, b->id, b->id_len) < 0))
            best = slot;
    }
    *full = best == ALLOT_SLOT_NONE;
    return best;
}

int supply_add_reserve(allot_state_t *state, uint32_t sku)
{
    supply_store_t *s = state->supply;
    int rc = allot_array_grow((void **)&s->supplies, &s->capacity, s->slots + 1,
                              sizeof(*s->supplies), 16);
    if (rc == 0)
        rc = allot_hash_reserve(&s->index, 1);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&s->free, 1);
    if (rc == 0)
        rc = allot_bytes_reserve(&state->deleted, 2u + ALLOT_ID_BYTES_MAX);
    uint32_t owner = supply_sku_find(state, sku);
    if (rc == 0 && owner == ALLOT_SLOT_NONE) {
        rc = allot_array_grow((void **)&s->skus, &s->sku_capacity, s->sku_count + 1,
                              sizeof(*s->skus), 16);
        if (rc == 0)
            rc = allot_hash_reserve(&s->sku_index, 1);
    }
    if (rc == 0 && owner != ALLOT_SLOT_NONE)
        rc = allot_u32_vec_reserve(&s->skus[owner].slots, 1);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_SUPPLY], 1);
    return rc;
}

/* Does supply a come before supply b (eta, then id)? */
static bool supply_before(const supply_t *a, const supply_t *b)
{
    if (a->eta_ms != b->eta_ms)
        return a->eta_ms < b->eta_ms;
    return state_id_compare(a->id, a->id_len, b->id, b->id_len) < 0;
}

/* Move the list's entry at `at` to its place (the rest of the list is in order). */
static void sku_list_settle(const supply_store_t *s, allot_u32_vec_t *list, uint32_t at)
{
    uint32_t slot = list->items[at];
    const supply_t *x = &s->supplies[slot];
    while (at > 0 && supply_before(x, &s->supplies[list->items[at - 1]])) {
        list->items[at] = list->items[at - 1];
        at--;
    }
    while (at + 1 < list->count && supply_before(&s->supplies[list->items[at + 1]], x)) {
        list->items[at] = list->items[at + 1];
        at++;
    }
    list->items[at] = slot;
}

/* The owner slot of the SKU's list, created if missing (room reserved by supply_add_reserve). */
static uint32_t sku_list_get(allot_state_t *state, uint32_t sku)
{
    supply_store_t *s = state->supply;
    uint32_t owner = supply_sku_find(state, sku);
    if (owner != ALLOT_SLOT_NONE)
        return owner;
    owner = s->sku_count++;
    s->skus[owner] = (supply_sku_t){.sku = sku, .hash = u32_hash(sku)};
    int rc = allot_hash_insert(&s->sku_index, s->skus[owner].hash, owner);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&s->skus[owner].slots, 1);
    assert(rc == 0); /* a vector's first reserve allocates: see supply_add_reserve */
    (void)rc;
    return owner;
}

void supply_evict(allot_state_t *state, uint32_t slot)
{
    supply_store_t *s = state->supply;
    supply_t *x = &s->supplies[slot];
    assert(x->used && x->state != ALLOT_SUPPLY_OPEN);
    state_touch(state, STATE_KEY_SUPPLY, slot); /* a checkpoint may still need it */
    state_deleted_record(state, STATE_KEY_SUPPLY, x->id, x->id_len);
    allot_hash_remove(&s->index, x->hash, slot);
    allot_u32_vec_t *list = &s->skus[x->owner].slots;
    uint32_t at = 0;
    while (list->items[at] != slot)
        at++;
    memmove(&list->items[at], &list->items[at + 1], (list->count - at - 1) * sizeof(uint32_t));
    list->count--;
    memset(x, 0, sizeof(*x));
    allot_u32_vec_push(&s->free, slot);
    s->count--;
}

uint32_t supply_add(allot_state_t *state, allot_str_t id, uint32_t sku, uint32_t location,
                    int64_t qty, int64_t eta_ms)
{
    supply_store_t *s = state->supply;
    uint32_t slot = s->free.count > 0 ? s->free.items[--s->free.count] : s->slots++;
    s->count++;
    supply_t *x = &s->supplies[slot];
    memset(x, 0, sizeof(*x));
    x->used = true;
    memcpy(x->id, id.ptr, id.len);
    x->id_len = (uint8_t)id.len;
    x->hash = allot_hash_bytes(id.ptr, id.len);
    x->sku = sku;
    x->location = location;
    x->qty = qty;
    x->eta_ms = eta_ms;
    x->state = ALLOT_SUPPLY_OPEN;
    state_checkpoint_born(state, STATE_KEY_SUPPLY, slot);
    int rc = allot_hash_insert(&s->index, x->hash, slot);
    assert(rc == 0);
    (void)rc;
    x->owner = sku_list_get(state, sku);
    allot_u32_vec_t *list = &s->skus[x->owner].slots;
    allot_u32_vec_push(list, slot);
    sku_list_settle(s, list, list->count - 1);
    supply_dirty(state, slot);
    return slot;
}

void supply_eta_set(allot_state_t *state, uint32_t slot, int64_t eta_ms)
{
    supply_store_t *s = state->supply;
    supply_t *x = &s->supplies[slot];
    if (x->eta_ms == eta_ms)
        return;
    x->eta_ms = eta_ms;
    allot_u32_vec_t *list = &s->skus[x->owner].slots;
    for (uint32_t i = 0; i < list->count; i++)
        if (list->items[i] == slot) {
            sku_list_settle(s, list, i);
            return;
        }
    assert(!"a supply is in its SKU's list");
}

void supply_view_fill(const allot_state_t *state, uint32_t slot, allot_supply_view_t *out)
{
    const supply_t *x = &state->supply->supplies[slot];
    *out = (allot_supply_view_t){
        .id = {x->id, x->id_len},
        .sku = allot_sku_id(allot_sku_at(state, x->sku)),
        .location = allot_location_id(allot_location_at(state, x->location)),
        .qty = x->qty,
        .received = x->received,
        .held = x->held,
        .eta_ms = x->eta_ms,
        .state = x->state,
    };
}

/* ---- dump and invariants -------------------------------------------------------------------- */

typedef struct dump_entry {
    const char *id;
    uint32_t len;
    uint32_t slot;
} dump_entry_t;

static int dump_compare(const void *a, const void *b)
{
    const dump_entry_t *x = a, *y = b;
    return state_id_compare(x->id, x->len, y->id, y->len);
}

int supply_dump(const allot_state_t *state, FILE *out)
{
    const supply_store_t *s = state->supply;
    dump_entry_t *order = malloc(((size_t)s->count + 1) * sizeof(*order));
    if (order == NULL)
        return ALLOT_ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->slots; i++)
        if (s->supplies[i].used)
            order[n++] = (dump_entry_t){s->supplies[i].id, s->supplies[i].id_len, i};
    qsort(order, n, sizeof(*order), dump_compare);
    for (uint32_t i = 0; i < n; i++) {
        allot_supply_view_t v;
        supply_view_fill(state, order[i].slot, &v);
        allot_echo_t id, sku, location;
        fprintf(out,
                "supply %s sku=%s location=%s qty=%" PRId64 " received=%" PRId64 " held=%" PRId64
                " eta_ms=%" PRId64 " state=%s updated_ms=%" PRId64 "\n",
                allot_str_echo(v.id, &id), allot_str_echo(v.sku, &sku),
                allot_str_echo(v.location, &location), v.qty, v.received, v.held, v.eta_ms,
                allot_supply_state_names[v.state], s->supplies[order[i].slot].updated_ms);
    }
    free(order);
    return 0;
}

static int check_fail(char *msg, size_t msg_bytes, const supply_t *x, const char *what)
{
    if (msg_bytes > 0) {
        allot_echo_t id;
        snprintf(msg, msg_bytes, "supply %s: %s",
                 allot_str_echo((allot_str_t){x->id, x->id_len}, &id), what);
        msg[allot_utf8_prefix_bytes(msg, strlen(msg))] = '\0';
    }
    return ALLOT_ECORRUPT;
}

/* Counters within their bounds and consistent with the state; every supply in its SKU's list,
 * each list in (eta, id) order (what holds it, core/state/invariants.c). */
int supply_check_invariants(const allot_state_t *state, char *msg, size_t msg_bytes)
{
    const supply_store_t *s = state->supply;
    uint32_t listed = 0;
    for (uint32_t o = 0; o < s->sku_count; o++) {
        const allot_u32_vec_t *list = &s->skus[o].slots;
        listed += list->count;
        for (uint32_t i = 0; i < list->count; i++) {
            const supply_t *x = &s->supplies[list->items[i]];
            if (!x->used || x->owner != o || x->sku != s->skus[o].sku)
                return check_fail(msg, msg_bytes, x, "not in its SKU's list");
            if (i > 0 && !supply_before(&s->supplies[list->items[i - 1]], x))
                return check_fail(msg, msg_bytes, x, "out of eta order in its SKU's list");
        }
    }
    uint32_t used = 0;
    for (uint32_t i = 0; i < s->slots; i++)
        used += s->supplies[i].used;
    if (listed != s->count || used != s->count)
        return check_fail(msg, msg_bytes, &(supply_t){.id = "*", .id_len = 1},
                          "SKU lists do not hold every supply");
    for (uint32_t i = 0; i < s->slots; i++) {
        const supply_t *x = &s->supplies[i];
        if (!x->used)
            continue;
        if (x->qty < 1 || x->received < 0 || x->held < 0 || x->received > x->qty)
            return check_fail(msg, msg_bytes, x, "qty, received or held out of range");
        if (x->held > x->qty - x->received)
            return check_fail(msg, msg_bytes, x, "held > qty - received");
        if ((x->state == ALLOT_SUPPLY_RECEIVED) != (x->received == x->qty) &&
            x->state != ALLOT_SUPPLY_CANCELLED)
            return check_fail(msg, msg_bytes, x, "received state and counters disagree");
        if (x->state != ALLOT_SUPPLY_OPEN && x->held != 0)
            return check_fail(msg, msg_bytes, x, "an ended supply holds units");
    }
    return 0;
}
