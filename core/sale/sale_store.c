/* sale_store.c - the records of core/sale/: settings by SKU, tickets and their indexes, the
 * customers' holdings, and their life cycle. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/inventory.h"
#include "core/sale/sale_private.h"

#define DELETED_TICKET_BYTES (2u + ALLOT_TICKET_CHARS)

static uint32_t u32_hash(uint32_t value)
{
    return allot_hash_bytes(&value, sizeof(value));
}

static uint32_t owner_customer_hash(uint32_t owner, allot_str_t customer)
{
    return allot_hash_bytes(customer.ptr, customer.len) ^ (owner * 0x9E3779B1u);
}

int sale_init(allot_state_t *state)
{
    state->sale = calloc(1, sizeof(*state->sale));
    if (state->sale == NULL)
        return ALLOT_ENOMEM;
    sale_store_t *s = state->sale;
    allot_hash_init(&s->sku_index);
    allot_hash_init(&s->ticket_index);
    allot_hash_init(&s->ticket_customer_index);
    allot_hash_init(&s->holding_index);
    s->ticket_next = 1;
    return 0;
}

void sale_free_all(allot_state_t *state)
{
    sale_store_t *s = state->sale;
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->sku_count; i++)
        allot_u32_vec_free(&s->skus[i].queue);
    free(s->skus);
    free(s->tickets);
    free(s->holdings);
    allot_u32_vec_free(&s->ticket_free);
    allot_u32_vec_free(&s->holding_free);
    allot_hash_free(&s->sku_index);
    allot_hash_free(&s->ticket_index);
    allot_hash_free(&s->ticket_customer_index);
    allot_hash_free(&s->holding_index);
    free(s);
    state->sale = NULL;
}

/* ---- settings records -------------------------------------------------------------------- */

uint32_t sale_sku_find(const allot_state_t *state, uint32_t sku)
{
    const sale_store_t *s = state->sale;
    if (s->sku_count == 0)
        return ALLOT_SLOT_NONE;
    allot_hash_probe_t probe;
    allot_hash_probe_start(&s->sku_index, u32_hash(sku), &probe);
    for (uint32_t i; (i = allot_hash_probe_next(&s->sku_index, &probe)) != ALLOT_HASH_NONE;)
        if (s->skus[i].sku == sku)
            return i;
    return ALLOT_SLOT_NONE;
}

int64_t sale_sku_low_stock(const allot_state_t *state, uint32_t sku)
{
    uint32_t slot = sale_sku_find(state, sku);
    return slot != ALLOT_SLOT_NONE ? state->sale->skus[slot].settings.low_stock : 0;
}

int sale_sku_reserve(allot_state_t *state)
{
    sale_store_t *s = state->sale;
    int rc = allot_array_grow((void **)&s->skus, &s->sku_capacity, s->sku_count + 1,
                              sizeof(*s->skus), 16);
    if (rc == 0)
        rc = allot_hash_reserve(&s->sku_index, 1);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_SKU_SETTINGS], 1);
    return rc;
}

uint32_t sale_sku_add(allot_state_t *state, uint32_t sku)
{
    sale_store_t *s = state->sale;
    uint32_t slot = s->sku_count++;
    sale_sku_t *k = &s->skus[slot];
    memset(k, 0, sizeof(*k));
    k->sku = sku;
    k->hash = u32_hash(sku);
    state_checkpoint_born(state, STATE_KEY_SKU_SETTINGS, slot);
    int rc = allot_hash_insert(&s->sku_index, k->hash, slot);
    assert(rc == 0);
    (void)rc;
    return slot;
}

/* ---- tickets ----------------------------------------------------------------------------- */

uint32_t sale_ticket_find(const allot_state_t *state, uint64_t number)
{
    const sale_store_t *s = state->sale;
    if (s->ticket_count == 0)
        return ALLOT_SLOT_NONE;
    allot_hash_probe_t probe;
    allot_hash_probe_start(&s->ticket_index, allot_hash_bytes(&number, 8), &probe);
    for (uint32_t i; (i = allot_hash_probe_next(&s->ticket_index, &probe)) != ALLOT_HASH_NONE;)
        if (s->tickets[i].number == number)
            return i;
    return ALLOT_SLOT_NONE;
}

uint32_t sale_ticket_find_customer(const allot_state_t *state, uint32_t owner, allot_str_t customer)
{
    const sale_store_t *s = state->sale;
    if (s->ticket_count == 0)
        return ALLOT_SLOT_NONE;
    allot_hash_probe_t probe;
    allot_hash_probe_start(&s->ticket_customer_index, owner_customer_hash(owner, customer), &probe);
    for (uint32_t i;
         (i = allot_hash_probe_next(&s->ticket_customer_index, &probe)) != ALLOT_HASH_NONE;) {
        const sale_ticket_t *t = &s->tickets[i];
        if (t->owner == owner && t->customer_len == customer.len &&
            memcmp(t->customer, customer.ptr, customer.len) == 0)
            return i;
    }
    return ALLOT_SLOT_NONE;
}

int sale_ticket_reserve(allot_state_t *state, uint32_t owner)
{
    sale_store_t *s = state->sale;
    int rc = 0;
    if (s->ticket_free.count == 0)
        rc = allot_array_grow((void **)&s->tickets, &s->ticket_capacity, s->ticket_slots + 1,
                              sizeof(*s->tickets), 64);
    if (rc == 0)
        rc = allot_hash_reserve(&s->ticket_index, 1);
    if (rc == 0)
        rc = allot_hash_reserve(&s->ticket_customer_index, 1);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&s->skus[owner].queue, 1);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_QUEUE_TICKET], 1);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&state->dirty[STATE_KEY_SKU_SETTINGS], 1);
    return rc;
}

uint32_t sale_ticket_add(allot_state_t *state, uint32_t owner, uint64_t number,
                         allot_str_t customer, int64_t joined_ms)
{
    sale_store_t *s = state->sale;
    uint32_t slot =
        s->ticket_free.count > 0 ? s->ticket_free.items[--s->ticket_free.count] : s->ticket_slots++;
    sale_ticket_t *t = &s->tickets[slot];
    memset(t, 0, sizeof(*t));
    t->number = number;
    t->joined_ms = joined_ms;
    t->owner = owner;
    t->index = s->skus[owner].queue.count;
    t->number_hash = allot_hash_bytes(&number, 8);
    t->customer_hash = owner_customer_hash(owner, customer);
    t->customer_len = (uint8_t)customer.len;
    memcpy(t->customer, customer.ptr, customer.len);
    t->state = ALLOT_TICKET_WAITING;
    t->used = true;
    t->indexed = true;
    allot_ticket_format(number, t->key);
    state_checkpoint_born(state, STATE_KEY_QUEUE_TICKET, slot);
    int rc = allot_hash_insert(&s->ticket_index, t->number_hash, slot);
    if (rc == 0)
        rc = allot_hash_insert(&s->ticket_customer_index, t->customer_hash, slot);
    assert(rc == 0);
    (void)rc;
    allot_u32_vec_push(&s->skus[owner].queue, slot);
    s->ticket_count++;
    if (number >= s->ticket_next)
        s->ticket_next = number + 1;
    sale_ticket_dirty(state, slot);
    return slot;
}

void sale_ticket_unindex(allot_state_t *state, uint32_t slot)
{
    sale_ticket_t *t = &state->sale->tickets[slot];
    if (!t->indexed)
        return;
    allot_hash_remove(&state->sale->ticket_customer_index, t->customer_hash, slot);
    t->indexed = false;
}

int sale_queue_clear_reserve(allot_state_t *state, uint32_t owner)
{
    sale_store_t *s = state->sale;
    uint32_t n = s->skus[owner].queue.count;
    int rc = allot_u32_vec_reserve(&s->ticket_free, n);
    if (rc == 0)
        rc = allot_bytes_reserve(&state->deleted, (size_t)n * DELETED_TICKET_BYTES);
    return rc;
}

void sale_queue_clear(allot_state_t *state, uint32_t owner)
{
    sale_store_t *s = state->sale;
    sale_sku_t *k = &s->skus[owner];
    for (uint32_t i = 0; i < k->queue.count; i++) {
        uint32_t slot = k->queue.items[i];
        sale_ticket_t *t = &s->tickets[slot];
        state_touch(state, STATE_KEY_QUEUE_TICKET, slot); /* a checkpoint may still need it */
        state_deleted_record(state, STATE_KEY_QUEUE_TICKET, t->key, ALLOT_TICKET_CHARS);
        sale_ticket_unindex(state, slot);
        allot_hash_remove(&s->ticket_index, t->number_hash, slot);
        memset(t, 0, sizeof(*t));
        allot_u32_vec_push(&s->ticket_free, slot);
        s->ticket_count--;
    }
    k->queue.count = 0;
    k->admit_cursor = 0;
    k->expire_cursor = 0;
    k->live_tokens = 0;
}

uint64_t sale_token_secret(uint64_t seed, uint64_t number)
{
    uint64_t z = seed + number * 0x9E3779B97F4A7C15ull; /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z != 0 ? z : 1;
}

/* ---- holdings ---------------------------------------------------------------------------- */

static uint32_t holding_find(const sale_store_t *s, uint32_t sku, allot_str_t customer,
                             uint32_t hash)
{
    allot_hash_probe_t probe;
    allot_hash_probe_start(&s->holding_index, hash, &probe);
    for (uint32_t i; (i = allot_hash_probe_next(&s->holding_index, &probe)) != ALLOT_HASH_NONE;) {
        const sale_holding_t *h = &s->holdings[i];
        if (h->sku == sku && h->customer_len == customer.len &&
            memcmp(h->customer, customer.ptr, customer.len) == 0)
            return i;
    }
    return ALLOT_SLOT_NONE;
}

uint32_t sale_holding_find(const allot_state_t *state, uint32_t sku, allot_str_t customer)
{
    const sale_store_t *s = state->sale;
    if (customer.len == 0 || s->holding_count == 0)
        return ALLOT_SLOT_NONE;
    return holding_find(s, sku, customer, owner_customer_hash(sku, customer));
}

int64_t allot_customer_held(const allot_state_t *state, uint32_t sku, allot_str_t customer)
{
    const sale_store_t *s = state->sale;
    if (customer.len == 0 || s->holding_count == 0)
        return 0;
    uint32_t slot = holding_find(s, sku, customer, owner_customer_hash(sku, customer));
    return slot == ALLOT_SLOT_NONE ? 0 : s->holdings[slot].qty;
}

int sale_holding_reserve(allot_state_t *state, uint32_t lines)
{
    sale_store_t *s = state->sale;
    uint32_t fresh = s->holding_free.count >= lines ? 0 : lines - s->holding_free.count;
    int rc = allot_array_grow((void **)&s->holdings, &s->holding_capacity, s->holding_slots + fresh,
                              sizeof(*s->holdings), 64);
    if (rc == 0)
        rc = allot_hash_reserve(&s->holding_index, lines);
    if (rc == 0)
        rc = allot_u32_vec_reserve(&s->holding_free, lines);
    return rc;
}

void sale_holding_add(allot_state_t *state, uint32_t sku, allot_str_t customer, int64_t qty)
{
    sale_store_t *s = state->sale;
    if (customer.len == 0 || qty == 0)
        return;
    uint32_t hash = owner_customer_hash(sku, customer);
    uint32_t slot = holding_find(s, sku, customer, hash);
    if (slot == ALLOT_SLOT_NONE) {
        if (qty < 0)
            return; /* nothing counted (held before the count began): nothing to give back */
        slot = s->holding_free.count > 0 ? s->holding_free.items[--s->holding_free.count]
                                         : s->holding_slots++;
        sale_holding_t *h = &s->holdings[slot];
        memset(h, 0, sizeof(*h));
        h->sku = sku;
        h->hash = hash;
        h->customer_len = (uint8_t)customer.len;
        memcpy(h->customer, customer.ptr, customer.len);
        h->used = true;
        int rc = allot_hash_insert(&s->holding_index, hash, slot);
        assert(rc == 0);
        (void)rc;
        s->holding_count++;
    }
    sale_holding_t *h = &s->holdings[slot];
    h->qty += qty;
    if (h->qty > 0)
        return;
    allot_hash_remove(&s->holding_index, h->hash, slot);
    h->used = false;
    allot_u32_vec_push(&s->holding_free, slot);
    s->holding_count--;
}
