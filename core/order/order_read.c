/* order_read.c - order.get / order.list over live and archived orders, and the archive hook. */
#include <stdlib.h>
#include <string.h>

#include "core/order.h"
#include "core/order/order_private.h"

#define PAGE_REF_ARCHIVED 0x80000000u

void allot_state_set_archive(allot_state_t *state, const allot_order_archive_t *archive)
{
    if (archive == NULL)
        memset(&state->archive, 0, sizeof(state->archive));
    else
        state->archive = *archive;
}

/* Copy one archived payload into archive_bytes and remember (created_ms, id). 0 or an error
 * (CORRUPT for a record that does not decode; the caller decides). */
static int archived_keep(allot_state_t *state, const uint8_t *payload, size_t len)
{
    if (state->archive_ref_count == sizeof(state->archive_refs) / sizeof(state->archive_refs[0]))
        return ALLOT_ETOO_LARGE;
    allot_event_t event;
    int rc = allot_event_decode(ALLOT_EVENT_ORDER_SNAPSHOT, payload, len, &state->archive_scratch,
                                &event);
    if (rc != 0)
        return rc;
    rc = allot_bytes_reserve(&state->archive_bytes, len);
    if (rc != 0)
        return rc;
    order_archived_ref_t *ref = &state->archive_refs[state->archive_ref_count++];
    ref->created_ms = event.u.order.created_ms;
    ref->offset = state->archive_bytes.len;
    ref->len = len;
    ref->id_offset = (uint32_t)((const uint8_t *)event.u.order.id.ptr - payload);
    ref->id_len = event.u.order.id.len;
    allot_bytes_put(&state->archive_bytes, payload, len);
    return 0;
}

/* Decode archived entry i into archive_view (valid until the next read). */
static const allot_order_view_t *archived_view(allot_state_t *state, uint32_t i)
{
    const order_archived_ref_t *ref = &state->archive_refs[i];
    allot_event_t event;
    if (allot_event_decode(ALLOT_EVENT_ORDER_SNAPSHOT, state->archive_bytes.data + ref->offset,
                           ref->len, &state->archive_scratch, &event) != 0)
        return NULL;
    state->archive_view = event.u.order;
    return &state->archive_view;
}

int allot_order_get(allot_state_t *state, allot_str_t id, const allot_order_view_t **out,
                    allot_error_detail_t *detail)
{
    if (!allot_id_valid(id))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "id",
                               "id must be 1..128 bytes of UTF-8");
    uint32_t slot = order_slot_find(state, id);
    if (slot != ALLOT_SLOT_NONE) {
        *out = &state->orders[slot]->v;
        return 0;
    }
    const uint8_t *payload = NULL;
    size_t len = 0;
    int rc = state->archive.get_cb ? state->archive.get_cb(state->archive.ctx, id, &payload, &len)
                                   : ALLOT_ENOT_FOUND;
    if (rc == ALLOT_ENOT_FOUND)
        return allot_error_set(detail, ALLOT_ENOT_FOUND, "id", "order %s not found",
                               allot_str_echo(id, &(allot_echo_t){0}));
    state->archive_ref_count = 0;
    state->archive_bytes.len = 0;
    if (rc == 0)
        rc = archived_keep(state, payload, len);
    if (rc == 0 && (*out = archived_view(state, 0)) == NULL)
        rc = ALLOT_ECORRUPT;
    if (rc != 0)
        return allot_error_set(detail, rc, NULL, "reading archived order %s failed",
                               allot_str_echo(id, &(allot_echo_t){0}));
    return 0;
}

/* Newest first: created_ms desc, then id desc. <0 when (a_ms, a) comes before (b_ms, b). */
static int page_order(int64_t a_ms, allot_str_t a, int64_t b_ms, allot_str_t b)
{
    if (a_ms != b_ms)
        return a_ms > b_ms ? -1 : 1;
    return -state_id_compare(a.ptr, a.len, b.ptr, b.len);
}

typedef struct list_ctx {
    allot_state_t *state;
    int rc;
} list_ctx_t;

static int list_each(void *ctx, const uint8_t *payload, size_t len)
{
    list_ctx_t *list = ctx;
    list->rc = archived_keep(list->state, payload, len);
    if (list->rc != 0)
        return 1;
    /* live orders come from memory (the newer truth): drop their stored copies */
    const order_archived_ref_t *ref =
        &list->state->archive_refs[list->state->archive_ref_count - 1];
    allot_str_t id = {(const char *)list->state->archive_bytes.data + ref->offset + ref->id_offset,
                      ref->id_len};
    if (order_slot_find(list->state, id) != ALLOT_SLOT_NONE) {
        list->state->archive_ref_count--;
        list->state->archive_bytes.len = ref->offset;
    }
    return 0;
}

static allot_str_t ref_id(const allot_state_t *state, uint32_t ref)
{
    if (ref & PAGE_REF_ARCHIVED) {
        const order_archived_ref_t *a = &state->archive_refs[ref & ~PAGE_REF_ARCHIVED];
        return (allot_str_t){(const char *)state->archive_bytes.data + a->offset + a->id_offset,
                             a->id_len};
    }
    return state->orders[ref]->v.id;
}

static int64_t ref_created_ms(const allot_state_t *state, uint32_t ref)
{
    if (ref & PAGE_REF_ARCHIVED)
        return state->archive_refs[ref & ~PAGE_REF_ARCHIVED].created_ms;
    return state->orders[ref]->v.created_ms;
}

static const allot_state_t *sort_state; /* qsort has no context; core is single-threaded */

static int ref_compare(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return page_order(ref_created_ms(sort_state, x), ref_id(sort_state, x),
                      ref_created_ms(sort_state, y), ref_id(sort_state, y));
}

/* The cursor's position: (created_ms, id) of order `after` of this customer. */
static int list_cursor(allot_state_t *state, allot_str_t customer, allot_str_t after,
                       int64_t *after_ms, allot_error_detail_t *detail)
{
    const allot_order_view_t *v;
    allot_error_detail_t ignored;
    if (allot_order_get(state, after, &v, &ignored) != 0 || !allot_str_equal(v->customer, customer))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "after",
                               "after must be the id of an order of this customer (the last "
                               "order of the previous page)");
    *after_ms = v->created_ms;
    return 0;
}

static int list_collect(allot_state_t *state, allot_str_t customer, uint32_t limit,
                        allot_str_t after, int64_t after_ms, uint32_t *refs, uint32_t *count,
                        allot_error_detail_t *detail)
{
    uint32_t c = order_customer_find(state, customer);
    const allot_u32_vec_t *live = c == ALLOT_SLOT_NONE ? NULL : &state->customers[c].orders;
    state->archive_ref_count = 0;
    state->archive_bytes.len = 0;
    if (state->archive.list_cb != NULL) {
        list_ctx_t ctx = {state, 0};
        uint32_t max = limit + 1 + (live ? live->count : 0);
        int rc = state->archive.list_cb(state->archive.ctx, customer, after_ms, after, max,
                                        list_each, &ctx);
        if (rc == 0)
            rc = ctx.rc;
        if (rc != 0 && rc != ALLOT_ETOO_LARGE)
            return allot_error_set(detail, rc, NULL, "reading archived orders failed");
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < state->archive_ref_count; i++) {
        const order_archived_ref_t *a = &state->archive_refs[i];
        allot_str_t id = {(const char *)state->archive_bytes.data + a->offset + a->id_offset,
                          a->id_len};
        if (after.len == 0 || page_order(a->created_ms, id, after_ms, after) > 0)
            refs[n++] = PAGE_REF_ARCHIVED | i; /* the cursor is checked here too */
    }
    for (uint32_t i = 0; live != NULL && i < live->count; i++) {
        const allot_event_order_t *v = &state->orders[live->items[i]]->v;
        if (after.len == 0 || page_order(v->created_ms, v->id, after_ms, after) > 0)
            refs[n++] = live->items[i];
    }
    *count = n;
    return 0;
}

int allot_order_list(allot_state_t *state, allot_str_t customer, uint32_t limit, allot_str_t after,
                     allot_order_page_t *page, allot_error_detail_t *detail)
{
    if (!allot_id_valid(customer))
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "customer",
                               "customer must be 1..128 bytes of UTF-8");
    if (limit < 1 || limit > ALLOT_ORDER_LIST_LIMIT_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "limit", "limit must be 1..%u",
                               (unsigned)ALLOT_ORDER_LIST_LIMIT_MAX);
    int64_t after_ms = 0;
    if (after.len > 0) {
        int rc = list_cursor(state, customer, after, &after_ms, detail);
        if (rc != 0)
            return rc;
    }
    uint32_t c = order_customer_find(state, customer);
    uint32_t live = c == ALLOT_SLOT_NONE ? 0 : state->customers[c].orders.count;
    size_t refs_max = live + sizeof(state->archive_refs) / sizeof(state->archive_refs[0]);
    uint32_t *refs = malloc(refs_max * sizeof(*refs));
    if (refs == NULL)
        return allot_error_set(detail, ALLOT_ENOMEM, NULL, "out of memory");
    uint32_t n = 0;
    int rc = list_collect(state, customer, limit, after, after_ms, refs, &n, detail);
    if (rc == 0) {
        sort_state = state;
        qsort(refs, n, sizeof(*refs), ref_compare);
        page->count = n < limit ? n : limit;
        page->more = n > limit;
        memcpy(page->refs, refs, page->count * sizeof(*refs));
    }
    free(refs);
    return rc;
}

/* Insert live slot `slot` into refs[0, *count) kept newest first, at most `keep` long. */
static void list_all_insert(const allot_state_t *state, uint32_t *refs, uint32_t *count,
                            uint32_t keep, uint32_t slot)
{
    const allot_event_order_t *v = &state->orders[slot]->v;
    uint32_t at = *count;
    while (at > 0) {
        const allot_event_order_t *w = &state->orders[refs[at - 1]]->v;
        if (page_order(w->created_ms, w->id, v->created_ms, v->id) < 0)
            break;
        at--;
    }
    if (at >= keep)
        return;
    uint32_t moved = *count < keep ? *count - at : keep - 1 - at;
    memmove(&refs[at + 1], &refs[at], moved * sizeof(*refs));
    refs[at] = slot;
    if (*count < keep)
        (*count)++;
}

int allot_order_list_all(allot_state_t *state, int order_state, int payment, uint32_t limit,
                         allot_str_t after, allot_order_page_t *page, allot_error_detail_t *detail)
{
    if (limit < 1 || limit > ALLOT_ORDER_LIST_LIMIT_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "limit", "limit must be 1..%u",
                               (unsigned)ALLOT_ORDER_LIST_LIMIT_MAX);
    int64_t after_ms = 0;
    if (after.len > 0) {
        const allot_order_view_t *v;
        allot_error_detail_t ignored;
        if (allot_order_get(state, after, &v, &ignored) != 0)
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "after",
                                   "after must be the id of an order (the last order of the "
                                   "previous page)");
        after_ms = v->created_ms;
    }
    uint32_t refs[ALLOT_ORDER_LIST_LIMIT_MAX + 1];
    uint32_t count = 0;
    for (uint32_t slot = 0; slot < state->order_slots; slot++) {
        const allot_order_t *o = state->orders[slot];
        if (o == NULL || (order_state >= 0 && o->v.state != order_state) ||
            (payment >= 0 && o->v.payment != payment))
            continue;
        if (after.len > 0 && page_order(o->v.created_ms, o->v.id, after_ms, after) <= 0)
            continue;
        list_all_insert(state, refs, &count, limit + 1, slot);
    }
    page->count = count < limit ? count : limit;
    page->more = count > limit;
    memcpy(page->refs, refs, page->count * sizeof(*refs));
    return 0;
}

const allot_order_view_t *allot_order_page_at(allot_state_t *state, const allot_order_page_t *page,
                                              uint32_t i)
{
    uint32_t ref = page->refs[i];
    if (ref & PAGE_REF_ARCHIVED)
        return archived_view(state, ref & ~PAGE_REF_ARCHIVED);
    return &state->orders[ref]->v;
}
