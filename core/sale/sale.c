/* sale.c - sku.put / sku.get, queue.join / queue.status, admission and token expiry decided on
 * the caller's clock, and the checks reserve and order.create make (limits, tokens). */
#include "core/sale.h"

#include <assert.h>
#include <string.h>

#include "core/inventory/inventory_private.h"
#include "core/sale/sale_private.h"

const char *const allot_ticket_state_names[] = {"waiting", "admitted", "used", "expired", NULL};

/* Elapsed time admission looks at, at most (keeps elapsed * rate far from overflow). */
#define SALE_ELAPSED_MS_MAX (1000LL * 1000 * 1000)

static const sale_sku_t *settings_of(const allot_state_t *state, uint32_t sku)
{
    if (sku == ALLOT_SKU_NONE)
        return NULL;
    uint32_t slot = sale_sku_find(state, sku);
    return slot == ALLOT_SLOT_NONE ? NULL : &state->sale->skus[slot];
}

/* ---- ticket and token strings ------------------------------------------------------------ */

static void hex_put(uint64_t value, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, value >>= 4)
        out[i] = digits[value & 15];
}

static bool hex_get(const char *p, uint64_t *value)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = (v << 4) | (uint64_t)d;
    }
    *value = v;
    return true;
}

void allot_ticket_format(uint64_t ticket, char *out)
{
    hex_put(ticket, out);
    out[ALLOT_TICKET_CHARS] = '\0';
}

void allot_token_format(uint64_t ticket, uint64_t secret, char *out)
{
    hex_put(ticket, out);
    hex_put(secret, out + 16);
    out[ALLOT_TOKEN_CHARS] = '\0';
}

bool allot_ticket_parse(allot_str_t s, uint64_t *ticket)
{
    return s.len == ALLOT_TICKET_CHARS && hex_get(s.ptr, ticket) && *ticket != 0;
}

bool allot_token_parse(allot_str_t s, uint64_t *ticket, uint64_t *secret)
{
    return s.len == ALLOT_TOKEN_CHARS && hex_get(s.ptr, ticket) && hex_get(s.ptr + 16, secret) &&
           *ticket != 0;
}

/* ---- settings ---------------------------------------------------------------------------- */

static int settings_check(allot_str_t sku, const allot_sku_settings_t *in,
                          allot_error_detail_t *detail)
{
    if (!allot_id_valid(sku))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "sku",
                               "sku must be 1..128 bytes of UTF-8");
    if (in->low_stock < 0 || in->low_stock > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "low_stock",
                               "low_stock must be 0..%lld", (long long)ALLOT_QUANTITY_MAX);
    if (in->max_per_customer < 0 || in->max_per_customer > ALLOT_QUANTITY_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "max_per_customer",
                               "max_per_customer must be 0..%lld", (long long)ALLOT_QUANTITY_MAX);
    if (!in->has_queue)
        return 0;
    if (in->queue_rate_per_s < 1 || in->queue_rate_per_s > ALLOT_QUEUE_RATE_PER_S_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "rate_per_s",
                               "queue.rate_per_s must be 1..%d", ALLOT_QUEUE_RATE_PER_S_MAX);
    if (in->queue_token_ttl_s < ALLOT_QUEUE_TOKEN_TTL_S_MIN ||
        in->queue_token_ttl_s > ALLOT_QUEUE_TOKEN_TTL_S_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "token_ttl_s",
                               "queue.token_ttl_s must be %d..%d", ALLOT_QUEUE_TOKEN_TTL_S_MIN,
                               ALLOT_QUEUE_TOKEN_TTL_S_MAX);
    return 0;
}

int allot_sku_put(allot_state_t *state, allot_str_t sku, const allot_sku_settings_t *in,
                  int64_t now_ms, allot_error_detail_t *detail)
{
    assert(state != NULL && in != NULL && detail != NULL);
    int rc = settings_check(sku, in, detail);
    if (rc != 0)
        return rc;
    const sale_store_t *s = state->sale;
    const sale_sku_t *k = settings_of(state, allot_sku_index_find(state, sku));
    if (k == NULL && s->sku_count >= ALLOT_SKU_SETTINGS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "sku", "at most %u SKUs have settings",
                               (unsigned)ALLOT_SKU_SETTINGS_MAX);
    bool had_queue = k != NULL && k->settings.has_queue;
    if (in->has_queue && !had_queue && s->queued_count >= ALLOT_QUEUED_SKUS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "queue", "at most %u SKUs have a queue",
                               (unsigned)ALLOT_QUEUED_SKUS_MAX);
    allot_event_t event = {.type = ALLOT_EVENT_SKU_PUT};
    event.u.sku_settings =
        (allot_event_sku_settings_t){.sku = sku,
                                     .low_stock = in->low_stock,
                                     .max_per_customer = in->max_per_customer,
                                     .has_queue = in->has_queue,
                                     .rate_per_s = in->has_queue ? in->queue_rate_per_s : 0,
                                     .token_ttl_s = in->has_queue ? in->queue_token_ttl_s : 0,
                                     .at_ms = now_ms};
    rc = state_event_emit(state, &event);
    return rc != 0 ? allot_error_set(detail, rc, NULL, "out of memory") : 0;
}

int allot_sku_get(const allot_state_t *state, allot_str_t sku, allot_sku_settings_t *out,
                  allot_error_detail_t *detail)
{
    if (!allot_id_valid(sku))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "sku",
                               "sku must be 1..128 bytes of UTF-8");
    const sale_sku_t *k = settings_of(state, allot_sku_index_find(state, sku));
    *out = k != NULL ? k->settings : (allot_sku_settings_t){0};
    return 0;
}

uint32_t allot_sku_settings_count(const allot_state_t *state)
{
    return state->sale->sku_count;
}

bool allot_sku_queued(const allot_state_t *state, uint32_t sku)
{
    const sale_sku_t *k = settings_of(state, sku);
    return k != NULL && k->settings.has_queue;
}

/* ---- tickets ----------------------------------------------------------------------------- */

/* How long until position `position` of k's queue is admitted, from now_ms. */
static int64_t wait_estimate_ms(const sale_sku_t *k, uint32_t position, int64_t now_ms)
{
    int64_t rate = k->settings.queue_rate_per_s;
    int64_t at_ms = k->admitted_upto_ms + ((int64_t)position * 1000 + rate - 1) / rate;
    return at_ms > now_ms ? at_ms - now_ms : 0;
}

static void ticket_view(const allot_state_t *state, uint32_t slot, int64_t now_ms,
                        allot_ticket_view_t *out)
{
    const sale_ticket_t *t = &state->sale->tickets[slot];
    const sale_sku_t *k = &state->sale->skus[t->owner];
    *out = (allot_ticket_view_t){.ticket = t->number,
                                 .sku = allot_sku_id(&state->skus[k->sku]),
                                 .customer = {t->customer, t->customer_len},
                                 .state = t->state};
    if (t->state == ALLOT_TICKET_WAITING) {
        out->position = t->index - k->admit_cursor + 1;
        out->estimated_wait_ms = wait_estimate_ms(k, out->position, now_ms);
    } else if (t->state == ALLOT_TICKET_ADMITTED && t->expires_at_ms <= now_ms) {
        out->state = ALLOT_TICKET_EXPIRED; /* before the server's queue.expire record */
    } else if (t->state == ALLOT_TICKET_ADMITTED) {
        out->expires_at_ms = t->expires_at_ms;
        out->secret = t->secret;
    }
}

static int queue_expire_emit(allot_state_t *state, uint64_t ticket, int64_t now_ms)
{
    allot_event_t event = {.type = ALLOT_EVENT_QUEUE_EXPIRE};
    event.u.queue_expire = (allot_event_queue_expire_t){ticket, now_ms};
    return state_event_emit(state, &event);
}

/* The customer's ticket in k's queue that still counts (waiting, or admitted and unexpired), or
 * ALLOT_SLOT_NONE. */
static uint32_t ticket_current(const allot_state_t *state, uint32_t owner, allot_str_t customer,
                               int64_t now_ms)
{
    uint32_t slot = sale_ticket_find_customer(state, owner, customer);
    if (slot == ALLOT_SLOT_NONE)
        return slot;
    const sale_ticket_t *t = &state->sale->tickets[slot];
    bool live = t->state == ALLOT_TICKET_WAITING ||
                (t->state == ALLOT_TICKET_ADMITTED && t->expires_at_ms > now_ms);
    return live ? slot : ALLOT_SLOT_NONE;
}

static int join_check(const allot_state_t *state, allot_str_t sku, allot_str_t customer,
                      uint32_t *owner, allot_error_detail_t *detail)
{
    if (!allot_id_valid(sku))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "sku",
                               "sku must be 1..128 bytes of UTF-8");
    if (!allot_id_valid(customer))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "customer",
                               "customer must be 1..128 bytes of UTF-8");
    uint32_t index = allot_sku_index_find(state, sku);
    *owner = index == ALLOT_SKU_NONE ? ALLOT_SLOT_NONE : sale_sku_find(state, index);
    if (*owner == ALLOT_SLOT_NONE || !state->sale->skus[*owner].settings.has_queue)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "sku", "SKU %s has no queue",
                               allot_str_echo(sku, &(allot_echo_t){0}));
    return 0;
}

int allot_queue_join(allot_state_t *state, allot_str_t sku, allot_str_t customer, int64_t now_ms,
                     allot_ticket_view_t *out, allot_error_detail_t *detail)
{
    uint32_t owner = ALLOT_SLOT_NONE;
    int rc = join_check(state, sku, customer, &owner, detail);
    if (rc != 0)
        return rc;
    uint32_t slot = ticket_current(state, owner, customer, now_ms);
    if (slot != ALLOT_SLOT_NONE) {
        ticket_view(state, slot, now_ms, out);
        return 0;
    }
    sale_store_t *s = state->sale;
    if (s->skus[owner].queue.count >= ALLOT_QUEUE_TICKETS_PER_SKU_MAX ||
        s->ticket_count >= ALLOT_QUEUE_TICKETS_MAX)
        return allot_error_set(detail, ALLOT_EOVERLOADED, "sku", "the queue of SKU %s is full",
                               allot_str_echo(sku, &(allot_echo_t){0}));
    uint32_t old = sale_ticket_find_customer(state, owner, customer);
    if (old != ALLOT_SLOT_NONE && s->tickets[old].state == ALLOT_TICKET_ADMITTED) {
        rc = queue_expire_emit(state, s->tickets[old].number, now_ms); /* past its expiry */
        if (rc != 0)
            return allot_error_set(detail, rc, NULL, "out of memory");
    }
    allot_event_t event = {.type = ALLOT_EVENT_QUEUE_JOIN};
    event.u.queue_join = (allot_event_queue_join_t){sku, customer, s->ticket_next, now_ms};
    rc = state_event_emit(state, &event);
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "out of memory");
    ticket_view(state, sale_ticket_find(state, event.u.queue_join.ticket), now_ms, out);
    return 0;
}

int allot_queue_status(const allot_state_t *state, allot_str_t ticket, int64_t now_ms,
                       allot_ticket_view_t *out, allot_error_detail_t *detail)
{
    uint64_t number;
    if (!allot_ticket_parse(ticket, &number))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "ticket",
                               "ticket must be %d hex digits", ALLOT_TICKET_CHARS);
    uint32_t slot = sale_ticket_find(state, number);
    if (slot == ALLOT_SLOT_NONE)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "ticket", "ticket %.*s not found",
                               (int)ticket.len, ticket.ptr);
    ticket_view(state, slot, now_ms, out);
    return 0;
}

uint32_t allot_queue_list(const allot_state_t *state, allot_queue_view_t *views, uint32_t views_max)
{
    const sale_store_t *s = state->sale;
    for (uint32_t i = 0; i < s->queued_count && i < views_max; i++) {
        const sale_sku_t *k = &s->skus[s->queued[i]];
        views[i] = (allot_queue_view_t){allot_sku_id(&state->skus[k->sku]),
                                        k->settings.queue_rate_per_s,
                                        k->settings.queue_token_ttl_s,
                                        k->queue.count - k->admit_cursor,
                                        k->live_tokens,
                                        k->queue.count,
                                        k->admitted_total,
                                        k->admitted_upto_ms};
    }
    return s->queued_count;
}

/* ---- admission and expiry (the deciding node's clock) ------------------------------------- */

/* Admit what is due of k's queue in one record: the number admitted, 0 when none is due. */
static uint32_t admit_one(allot_state_t *state, const sale_sku_t *k, int64_t now_ms, uint64_t seed)
{
    uint32_t waiting = k->queue.count - k->admit_cursor;
    int64_t elapsed_ms = now_ms - k->admitted_upto_ms;
    if (waiting == 0 || elapsed_ms <= 0)
        return 0;
    if (elapsed_ms > SALE_ELAPSED_MS_MAX)
        elapsed_ms = SALE_ELAPSED_MS_MAX;
    int64_t rate = k->settings.queue_rate_per_s;
    int64_t due = elapsed_ms * rate / 1000;
    if (due == 0)
        return 0;
    uint32_t count = due < waiting ? (uint32_t)due : waiting;
    if (count > ALLOT_QUEUE_ADMIT_BATCH_MAX)
        count = ALLOT_QUEUE_ADMIT_BATCH_MAX;
    /* never faster than the rate: the accounting moves by count / rate, rounded up */
    int64_t upto_ms = k->admitted_upto_ms + ((int64_t)count * 1000 + rate - 1) / rate;
    allot_event_t event = {.type = ALLOT_EVENT_QUEUE_ADMIT};
    event.u.queue_admit = (allot_event_queue_admit_t){allot_sku_id(&state->skus[k->sku]),
                                                      count,
                                                      seed,
                                                      now_ms,
                                                      now_ms + k->settings.queue_token_ttl_s * 1000,
                                                      upto_ms};
    return state_event_emit(state, &event) == 0 ? count : 0;
}

uint32_t allot_queue_admit_due(allot_state_t *state, int64_t now_ms, uint64_t seed,
                               uint32_t records_max)
{
    uint32_t admitted = 0;
    uint32_t records = 0;
    sale_store_t *s = state->sale;
    for (uint32_t i = 0; i < s->queued_count && records < records_max; i++) {
        uint32_t n;
        do {
            n = admit_one(state, &s->skus[s->queued[i]], now_ms, sale_token_secret(seed, records));
            admitted += n;
        } while (n > 0 && ++records < records_max);
    }
    return admitted;
}

uint32_t allot_queue_expire_due(allot_state_t *state, int64_t now_ms, uint32_t max)
{
    uint32_t expired = 0;
    sale_store_t *s = state->sale;
    for (uint32_t i = 0; i < s->queued_count && expired < max; i++) {
        const sale_sku_t *k = &s->skus[s->queued[i]];
        for (uint32_t at = k->expire_cursor; at < k->admit_cursor && expired < max; at++) {
            const sale_ticket_t *t = &s->tickets[k->queue.items[at]];
            if (t->state != ALLOT_TICKET_ADMITTED)
                continue;
            if (t->expires_at_ms > now_ms)
                break; /* admitted in order, each with the TTL of its time: the rest are later */
            if (queue_expire_emit(state, t->number, now_ms) != 0)
                return expired; /* out of memory: the next tick retries */
            expired++;
        }
    }
    return expired;
}

/* ---- checks of reserve and order.create ---------------------------------------------------- */

int allot_customer_limit_check(const allot_state_t *state, uint32_t sku, allot_str_t customer,
                               int64_t extra, int64_t given_back, allot_error_detail_t *detail)
{
    const sale_sku_t *k = settings_of(state, sku);
    if (k == NULL || k->settings.max_per_customer == 0 || extra <= given_back)
        return 0; /* no limit, or the step holds no more than it gives back */
    allot_str_t id = allot_sku_id(&state->skus[sku]);
    if (customer.len == 0)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "customer",
                               "SKU %s has max_per_customer: customer is required",
                               allot_str_echo(id, &(allot_echo_t){0}));
    int64_t held = allot_customer_held(state, sku, customer);
    int64_t after = held - given_back + extra;
    if (after <= k->settings.max_per_customer)
        return 0;
    detail->limit_sku = id;
    detail->limit = k->settings.max_per_customer;
    detail->held = held;
    return allot_error_set(
        detail, ALLOT_ELIMIT_EXCEEDED, NULL, "SKU %s: at most %lld per customer; %s holds %lld",
        allot_str_echo(id, &(allot_echo_t){0}), (long long)k->settings.max_per_customer,
        allot_str_echo(customer, &(allot_echo_t){0}), (long long)held);
}

/* QUEUED, with when to ask again: the customer's waiting ticket's estimate, or a newcomer's. */
static int queued_error(const allot_state_t *state, uint32_t owner, allot_str_t customer,
                        int64_t now_ms, const char *why, allot_error_detail_t *detail)
{
    const sale_sku_t *k = &state->sale->skus[owner];
    uint32_t slot =
        customer.len > 0 ? ticket_current(state, owner, customer, now_ms) : ALLOT_SLOT_NONE;
    uint32_t position = k->queue.count - k->admit_cursor + 1;
    if (slot != ALLOT_SLOT_NONE && state->sale->tickets[slot].state == ALLOT_TICKET_WAITING)
        position = state->sale->tickets[slot].index - k->admit_cursor + 1;
    int64_t wait_ms = wait_estimate_ms(k, position, now_ms);
    detail->retry_after_ms =
        wait_ms > ALLOT_QUEUE_RETRY_AFTER_MS_MIN ? wait_ms : ALLOT_QUEUE_RETRY_AFTER_MS_MIN;
    allot_str_t id = allot_sku_id(&state->skus[k->sku]);
    return allot_error_set(detail, ALLOT_EQUEUED, "token", "SKU %s is queued: %s",
                           allot_str_echo(id, &(allot_echo_t){0}), why);
}

int allot_queue_token_check(const allot_state_t *state, uint32_t sku, allot_str_t customer,
                            allot_str_t token, int64_t now_ms, uint64_t *ticket,
                            allot_error_detail_t *detail)
{
    uint32_t owner = sku == ALLOT_SKU_NONE ? ALLOT_SLOT_NONE : sale_sku_find(state, sku);
    assert(owner != ALLOT_SLOT_NONE && state->sale->skus[owner].settings.has_queue);
    if (customer.len == 0)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "customer",
                               "SKU %s is queued: customer is required",
                               allot_str_echo(allot_sku_id(&state->skus[sku]), &(allot_echo_t){0}));
    uint64_t secret = 0;
    if (token.len == 0)
        return queued_error(state, owner, customer, now_ms, "join the queue for a token", detail);
    if (!allot_token_parse(token, ticket, &secret))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "token",
                               "token must be %d hex digits", ALLOT_TOKEN_CHARS);
    uint32_t slot = sale_ticket_find(state, *ticket);
    const sale_ticket_t *t = slot == ALLOT_SLOT_NONE ? NULL : &state->sale->tickets[slot];
    if (t == NULL || t->owner != owner || t->secret != secret || t->customer_len != customer.len ||
        memcmp(t->customer, customer.ptr, customer.len) != 0)
        return queued_error(state, owner, customer, now_ms,
                            "the token is not valid for this customer and SKU", detail);
    if (t->state == ALLOT_TICKET_USED)
        return queued_error(state, owner, customer, now_ms, "the token was used", detail);
    if (t->state == ALLOT_TICKET_WAITING)
        return queued_error(state, owner, customer, now_ms, "the ticket is not admitted yet",
                            detail);
    if (t->state != ALLOT_TICKET_ADMITTED || t->expires_at_ms <= now_ms)
        return queued_error(state, owner, customer, now_ms, "the token expired", detail);
    return 0;
}
