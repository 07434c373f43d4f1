/* handlers_events.c - events.read (long polls), events.ack, events.subscribe / unsubscribe and
 * ledger.get: arguments checked here, the stream's work in net/events.c and events_push.c. */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "command.h"
#include "core/stream.h"
#include "events_private.h"
#include "pack.h"
#include "persist/event_store.h"
#include "rpc.h"
#include "server.h"
#include "server_internal.h"

/* `types`: up to ALLOT_EVENT_TYPES_FILTER_MAX names of event types, as a bit mask. */
static int args_types(const msgpack_object *params, uint32_t *types, allot_error_detail_t *error)
{
    const msgpack_object_array *array;
    bool present;
    *types = 0;
    int rc = args_array(params, "types", 0, ALLOT_EVENT_TYPES_FILTER_MAX, &array, &present, error);
    if (rc != 0 || !present)
        return rc;
    for (uint32_t i = 0; i < array->size; i++) {
        const msgpack_object *o = &array->ptr[i];
        uint8_t type = o->type == MSGPACK_OBJECT_STR
                           ? allot_change_type_find((allot_str_t){o->via.str.ptr, o->via.str.size})
                           : 0;
        if (type == 0)
            return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, "types",
                                   "types[%u] is not an event type (docs/events.md)", i);
        *types |= 1u << type;
    }
    return 0;
}

typedef struct read_args {
    uint64_t after;
    events_filter_t filter;
    uint32_t limit;
    int64_t wait_ms;
} read_args_t;

static int args_seq(const msgpack_object *params, const char *key, uint64_t *out, bool *present,
                    allot_error_detail_t *error)
{
    int64_t v = -1;
    int rc = args_int64(params, key, 0, INT64_MAX, &v, present, error);
    if (rc == 0 && v >= 0)
        *out = (uint64_t)v;
    return rc;
}

/* Where a read starts: after, else the consumer's cursor, else the oldest retained. */
static int read_args_parse(events_t *events, command_call_t *call, read_args_t *a)
{
    const msgpack_object *p = call->params;
    allot_error_detail_t *error = call->error;
    bool has_after, has_consumer, present;
    allot_str_t consumer;
    int64_t limit = ALLOT_EVENTS_READ_LIMIT_DEFAULT;
    memset(a, 0, sizeof(*a));
    int rc = args_seq(p, "after", &a->after, &has_after, error);
    if (rc == 0)
        rc = args_id(p, "consumer", &consumer, &has_consumer, error);
    if (rc == 0)
        rc = args_types(p, &a->filter.types, error);
    if (rc == 0)
        rc = args_id(p, "sku", &a->filter.sku, &present, error);
    if (rc == 0)
        rc = args_id(p, "order", &a->filter.order, &present, error);
    if (rc == 0)
        rc = args_id(p, "customer", &a->filter.customer, &present, error);
    if (rc == 0)
        rc = args_int64(p, "limit", 1, ALLOT_EVENTS_READ_LIMIT_MAX, &limit, &present, error);
    if (rc == 0)
        rc = args_int64(p, "wait_ms", 0, ALLOT_EVENTS_WAIT_MS_MAX, &a->wait_ms, &present, error);
    if (rc != 0)
        return rc;
    a->limit = (uint32_t)limit;
    if (!has_after && !(has_consumer && allot_consumer_get(call->state, consumer, &a->after)))
        a->after = event_store_trimmed_seq(events->store);
    return 0;
}

/* The matched events, as their maps' bytes, in a growing buffer. */
typedef struct read_result {
    msgpack_sbuffer maps;
    uint32_t count;
} read_result_t;

static int result_each(void *ctx, uint64_t seq, const uint8_t *map, size_t len)
{
    (void)seq;
    read_result_t *r = ctx;
    msgpack_sbuffer_write(&r->maps, (const char *)map, len);
    r->count++;
    return 0;
}

static void result_pack(msgpack_packer *pk, const read_result_t *r, uint64_t next)
{
    msgpack_pack_map(pk, 2);
    pack_cstr(pk, "events");
    msgpack_pack_array(pk, r->count);
    pk->callback(pk->data, r->maps.data, r->maps.size);
    pack_key_int(pk, "next", (int64_t)next);
}

static int read_fail(events_t *events, int rc, uint64_t oldest, allot_error_detail_t *error)
{
    if (rc == ALLOT_EEXPIRED) {
        allot_error_set(error, rc, "after",
                        "events after that seq are no longer retained; the oldest is %llu",
                        (unsigned long long)oldest);
        error->has_oldest = true;
        error->oldest = oldest;
        return rc;
    }
    if (rc == ALLOT_ENOMEM)
        return allot_error_set(error, rc, NULL, "out of memory while reading events");
    return allot_error_set(error, ALLOT_EINTERNAL, NULL, "%s", event_store_message(events->store));
}

int handle_events_read(command_call_t *call)
{
    events_t *events = server_events(call->server);
    read_args_t a;
    int rc = read_args_parse(events, call, &a);
    if (rc != 0)
        return rc;
    read_result_t r = {.count = 0};
    msgpack_sbuffer_init(&r.maps);
    uint64_t next, oldest;
    rc = events_read(events, a.after, &a.filter, a.limit, result_each, &r, &next, &oldest);
    if (rc == 0 && r.count == 0 && a.wait_ms > 0 && call->reply_to.conn != NULL) {
        rc = events_wait(events, call->reply_to.conn, call->reply_to.msgid, next, &a.filter,
                         a.limit, (uint64_t)a.wait_ms);
        msgpack_sbuffer_destroy(&r.maps);
        if (rc != 0)
            return allot_error_set(call->error, rc, NULL, "%u long polls are already waiting",
                                   ALLOT_EVENTS_WAITERS_MAX);
        return COMMAND_DEFERRED;
    }
    if (rc == 0)
        result_pack(call->result, &r, next);
    msgpack_sbuffer_destroy(&r.maps);
    return rc == 0 ? 0 : read_fail(events, rc, oldest, call->error);
}

void events_waiter_answer(events_t *events, events_waiter_t *w, bool final)
{
    read_result_t r = {.count = 0};
    msgpack_sbuffer_init(&r.maps);
    uint64_t next, oldest;
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    int rc =
        events_read(events, w->after, &w->filter.filter, w->limit, result_each, &r, &next, &oldest);
    if (rc == 0 && r.count == 0 && !final) {
        w->after = next;
        msgpack_sbuffer_destroy(&r.maps);
        return;
    }
    msgpack_sbuffer reply;
    msgpack_sbuffer_init(&reply);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &reply, msgpack_sbuffer_write);
    if (rc == 0) {
        rpc_pack_result_header(&pk, w->msgid);
        result_pack(&pk, &r, next);
    } else {
        rc = read_fail(events, rc, oldest, &error);
        rpc_pack_error(&pk, w->msgid, rc, &error);
    }
    connection_reply_deferred(w->conn, reply.data, reply.size);
    w->conn = NULL;
    msgpack_sbuffer_destroy(&reply);
    msgpack_sbuffer_destroy(&r.maps);
}

int handle_events_ack(command_call_t *call)
{
    events_t *events = server_events(call->server);
    allot_str_t consumer;
    uint64_t seq = 0, cursor;
    int rc = args_id(call->params, "consumer", &consumer, NULL, call->error);
    if (rc == 0)
        rc = args_seq(call->params, "seq", &seq, NULL, call->error);
    if (rc != 0)
        return rc;
    events_store_durable(events); /* the newest event a client may know of */
    if (seq > events_last_seq(events))
        return allot_error_set(call->error, ALLOT_EINVALID_ARGUMENT, "seq",
                               "seq %llu is past the newest event (%llu)", (unsigned long long)seq,
                               (unsigned long long)events_last_seq(events));
    rc = allot_consumer_ack(call->state, consumer, seq, call->now_ms, &cursor, call->error);
    if (rc != 0)
        return rc;
    msgpack_pack_map(call->result, 2);
    pack_key_str(call->result, "consumer", consumer);
    pack_key_int(call->result, "seq", (int64_t)cursor);
    return 0;
}

int handle_events_subscribe(command_call_t *call)
{
    events_t *events = server_events(call->server);
    uint32_t types;
    const msgpack_object_array *array;
    bool present;
    int rc = args_types(call->params, &types, call->error);
    if (rc == 0)
        rc = args_array(call->params, "skus", 0, ALLOT_SUBSCRIPTION_SKUS_MAX, &array, &present,
                        call->error);
    if (rc != 0)
        return rc;
    if (call->reply_to.conn == NULL)
        return allot_error_set(call->error, ALLOT_EINVALID_ARGUMENT, NULL,
                               "events.subscribe needs a request (a notification has no reply)");
    uint32_t count = present ? array->size : 0;
    allot_str_t *skus = count > 0 ? malloc(count * sizeof(*skus)) : NULL;
    if (count > 0 && skus == NULL)
        return allot_error_set(call->error, ALLOT_EINTERNAL, NULL, "out of memory");
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *o = &array->ptr[i];
        skus[i] = o->type == MSGPACK_OBJECT_STR ? (allot_str_t){o->via.str.ptr, o->via.str.size}
                                                : (allot_str_t){NULL, 0};
        if (!allot_id_valid(skus[i])) {
            free(skus);
            return allot_error_set(call->error, ALLOT_EINVALID_ARGUMENT, "skus",
                                   "skus[%u] must be a SKU id (1..%d bytes of UTF-8)", i,
                                   ALLOT_ID_BYTES_MAX);
        }
    }
    uint64_t id;
    events_store_durable(events); /* stored before: "next" is past them */
    rc = events_subscribe(events, call->reply_to.conn, types, skus, count, &id);
    free(skus);
    if (rc == ALLOT_ETOO_LARGE)
        return allot_error_set(call->error, rc, NULL, "at most %d subscriptions per connection",
                               ALLOT_SUBSCRIPTIONS_PER_CONNECTION_MAX);
    if (rc != 0)
        return allot_error_set(call->error, ALLOT_EINTERNAL, NULL, "out of memory");
    msgpack_pack_map(call->result, 2);
    pack_key_int(call->result, "subscription", (int64_t)id);
    pack_key_int(call->result, "next", (int64_t)events_last_seq(events));
    return 0;
}

int handle_events_unsubscribe(command_call_t *call)
{
    uint64_t id = 0;
    int rc = args_seq(call->params, "subscription", &id, NULL, call->error);
    if (rc != 0)
        return rc;
    rc = events_unsubscribe(server_events(call->server), call->reply_to.conn, id);
    if (rc != 0)
        return allot_error_set(call->error, rc, "subscription",
                               "no subscription %llu on this connection", (unsigned long long)id);
    msgpack_pack_map(call->result, 1);
    pack_key_bool(call->result, "unsubscribed", true);
    return 0;
}

/* ---- ledger.get ----------------------------------------------------------------------------- */

typedef struct ledger_page {
    msgpack_sbuffer body;
    msgpack_packer pk;
    uint32_t count;
    uint64_t last_seq;
} ledger_page_t;

static void ledger_each(void *ctx, const event_ledger_entry_t *e)
{
    ledger_page_t *page = ctx;
    msgpack_packer *pk = &page->pk;
    msgpack_pack_map(pk, 8);
    pack_key_int(pk, "seq", (int64_t)e->seq);
    pack_key_int(pk, "at_ms", e->at_ms);
    pack_key_str(pk, "location", e->location);
    pack_key_int(pk, "delta", e->delta);
    pack_key_int(pk, "on_hand", e->on_hand);
    pack_key_str(pk, "reason", e->reason);
    pack_cstr(pk, "ref");
    if (e->ref.len > 0)
        pack_str(pk, e->ref);
    else
        msgpack_pack_nil(pk);
    pack_key_str(pk, "sku", e->sku);
    page->count++;
    page->last_seq = e->seq;
}

int handle_ledger_get(command_call_t *call)
{
    events_t *events = server_events(call->server);
    const msgpack_object *p = call->params;
    allot_str_t sku, location = {"", 0};
    bool present;
    int64_t from_ms = INT64_MIN, to_ms = INT64_MAX, limit = ALLOT_LEDGER_LIMIT_DEFAULT;
    uint64_t after = UINT64_MAX;
    int rc = args_id(p, "sku", &sku, NULL, call->error);
    if (rc == 0)
        rc = args_id(p, "location", &location, &present, call->error);
    if (rc == 0)
        rc = args_int64(p, "from_ms", INT64_MIN, INT64_MAX, &from_ms, &present, call->error);
    if (rc == 0)
        rc = args_int64(p, "to_ms", INT64_MIN, INT64_MAX, &to_ms, &present, call->error);
    if (rc == 0)
        rc = args_int64(p, "limit", 1, ALLOT_LEDGER_LIMIT_MAX, &limit, &present, call->error);
    if (rc == 0)
        rc = args_seq(p, "after", &after, &present, call->error);
    if (rc != 0)
        return rc;
    ledger_page_t page = {.count = 0};
    msgpack_sbuffer_init(&page.body);
    msgpack_packer_init(&page.pk, &page.body, msgpack_sbuffer_write);
    bool more;
    events_store_durable(events); /* every durable movement is readable */
    rc = event_store_ledger_read(events->store, sku, location, after, from_ms, to_ms,
                                 (uint32_t)limit, ledger_each, &page, &more);
    if (rc == 0) {
        msgpack_packer *pk = call->result;
        msgpack_pack_map(pk, 3);
        pack_key_str(pk, "sku", sku);
        pack_cstr(pk, "movements");
        msgpack_pack_array(pk, page.count);
        pk->callback(pk->data, page.body.data, page.body.size);
        pack_cstr(pk, "next");
        if (more)
            msgpack_pack_uint64(pk, page.last_seq);
        else
            msgpack_pack_nil(pk);
    }
    msgpack_sbuffer_destroy(&page.body);
    if (rc != 0)
        return allot_error_set(call->error, ALLOT_EINTERNAL, NULL, "%s",
                               event_store_message(events->store));
    return 0;
}
