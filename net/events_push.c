/* events_push.c - events.subscribe: stored events pushed to the connections that subscribed, as
 * MessagePack-RPC notifications [2, "event", [{...event}]], per type lists, bounded output. */
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "events_private.h"
#include "server_internal.h"

/* [2, "event", [ ... ]: fixarray(3), 2, fixstr "event", fixarray(1) */
static const char NOTIFICATION_PREFIX[] = {(char)0x93, 0x02, (char)0xa5, 'e',       'v',
                                           'e',        'n',  't',        (char)0x91};

static int sku_compare(const void *a, const void *b)
{
    const allot_str_t *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->ptr, y->ptr, n);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static bool sku_wanted(const events_subscription_t *s, allot_str_t sku)
{
    if (s->sku_count == 0)
        return true;
    if (sku.len == 0)
        return false;
    return bsearch(&sku, s->skus, s->sku_count, sizeof(*s->skus), sku_compare) != NULL;
}

static void subscription_free(events_subscription_t *s)
{
    free(s->skus);
    free(s->sku_bytes);
    free(s);
}

/* Remove s from the per-type lists and the list of all (it is freed by the caller). */
static void subscription_unlink(events_t *events, events_subscription_t *s)
{
    for (uint32_t t = 0; t < ALLOT_CHANGE_TYPE_LIMIT; t++) {
        uint32_t kept = 0;
        for (uint32_t i = 0; i < events->by_type_count[t]; i++)
            if (events->by_type[t][i] != s)
                events->by_type[t][kept++] = events->by_type[t][i];
        events->by_type_count[t] = kept;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < events->subscription_count; i++)
        if (events->subscriptions[i] != s)
            events->subscriptions[kept++] = events->subscriptions[i];
    events->subscription_count = kept;
}

static bool list_push(events_subscription_t ***list, uint32_t *count, events_subscription_t *s)
{
    events_subscription_t **grown = realloc(*list, (*count + 1) * sizeof(**list));
    if (grown == NULL)
        return false;
    *list = grown;
    grown[(*count)++] = s;
    return true;
}

static int subscription_copy_skus(events_subscription_t *s, const allot_str_t *skus, uint32_t count)
{
    if (count == 0)
        return 0;
    size_t bytes = 0;
    for (uint32_t i = 0; i < count; i++)
        bytes += skus[i].len;
    s->skus = malloc(count * sizeof(*s->skus));
    s->sku_bytes = malloc(bytes > 0 ? bytes : 1);
    if (s->skus == NULL || s->sku_bytes == NULL)
        return ALLOT_ENOMEM;
    size_t at = 0;
    for (uint32_t i = 0; i < count; i++) {
        memcpy(s->sku_bytes + at, skus[i].ptr, skus[i].len);
        s->skus[i] = (allot_str_t){s->sku_bytes + at, skus[i].len};
        at += skus[i].len;
    }
    qsort(s->skus, count, sizeof(*s->skus), sku_compare);
    s->sku_count = count;
    return 0;
}

int events_subscribe(events_t *events, struct connection *conn, uint32_t types,
                     const allot_str_t *skus, uint32_t sku_count, uint64_t *id)
{
    uint32_t mine = 0;
    for (uint32_t i = 0; i < events->subscription_count; i++)
        mine += events->subscriptions[i]->conn == conn;
    if (mine >= ALLOT_SUBSCRIPTIONS_PER_CONNECTION_MAX)
        return ALLOT_ETOO_LARGE;
    events_subscription_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ALLOT_ENOMEM;
    s->conn = conn;
    s->types = types != 0 ? types : UINT32_MAX;
    int rc = subscription_copy_skus(s, skus, sku_count);
    bool ok = rc == 0 && list_push(&events->subscriptions, &events->subscription_count, s);
    for (uint32_t t = 1; ok && t < ALLOT_CHANGE_TYPE_LIMIT; t++)
        if (s->types & (1u << t))
            ok = list_push(&events->by_type[t], &events->by_type_count[t], s);
    if (!ok) {
        subscription_unlink(events, s);
        subscription_free(s);
        return ALLOT_ENOMEM;
    }
    s->id = events->next_subscription_id++;
    *id = s->id;
    return 0;
}

int events_unsubscribe(events_t *events, struct connection *conn, uint64_t id)
{
    for (uint32_t i = 0; i < events->subscription_count; i++) {
        events_subscription_t *s = events->subscriptions[i];
        if (s->id != id || s->conn != conn)
            continue;
        subscription_unlink(events, s);
        subscription_free(s);
        return 0;
    }
    return ALLOT_ENOT_FOUND;
}

/* Free the subscriptions marked dropped during a push. */
static void dropped_collect(events_t *events)
{
    for (uint32_t i = 0; i < events->subscription_count;) {
        events_subscription_t *s = events->subscriptions[i];
        if (s->conn != NULL) {
            i++;
            continue;
        }
        subscription_unlink(events, s);
        subscription_free(s);
    }
    events->dropped_during_push = false;
}

void events_subscriptions_drop(events_t *events, struct connection *conn)
{
    for (uint32_t i = 0; i < events->subscription_count; i++)
        if (events->subscriptions[i]->conn == conn) {
            events->subscriptions[i]->conn = NULL;
            events->dropped_during_push = true;
        }
    if (!events->pushing && events->dropped_during_push)
        dropped_collect(events);
}

void events_subscriptions_free(events_t *events)
{
    for (uint32_t i = 0; i < events->subscription_count; i++)
        subscription_free(events->subscriptions[i]);
    free(events->subscriptions);
    for (uint32_t t = 0; t < ALLOT_CHANGE_TYPE_LIMIT; t++)
        free(events->by_type[t]);
}

/* Cut off a subscriber that does not read: its unsent output passed --output-bytes-max. */
static void subscriber_cut(events_t *events, events_subscription_t *s, size_t pending)
{
    server_t *server = events->server;
    connection_t *conn = s->conn;
    events->subscribers_cut++;
    uint64_t suppressed;
    if (server_log_allow(server, &server->output_limit_log, &suppressed))
        log_event(LOG_WARN, "subscriber_cut", LOG_UINT("connection", conn->id),
                  LOG_STR("peer", conn->peer), LOG_UINT("subscription", s->id),
                  LOG_UINT("pending_bytes", pending),
                  LOG_UINT("limit_bytes", server->config.output_bytes_max),
                  LOG_STR("message", "a subscriber that does not read is disconnected; it can "
                                     "resume with events.read after the last seq it saw"),
                  LOG_UINT("suppressed", suppressed));
    connection_close(conn);
}

void events_push(events_t *events, const pending_event_t *pending, uint32_t count)
{
    events->pushing = true;
    uint32_t output_max = events->server->config.output_bytes_max;
    static const events_filter_t everything = {0};
    for (uint32_t e = 0; e < count; e++) {
        const pending_event_t *p = &pending[e];
        if (p->type >= ALLOT_CHANGE_TYPE_LIMIT || events->by_type_count[p->type] == 0)
            continue;
        uint8_t type;
        allot_str_t sku;
        const uint8_t *map;
        size_t map_len;
        if (!events_value_match((const uint8_t *)events->values.data + p->offset, p->len,
                                &everything, &type, &sku, &map, &map_len))
            continue;
        msgpack_sbuffer *n = &events->notification;
        n->size = 0;
        msgpack_sbuffer_write(n, NOTIFICATION_PREFIX, sizeof(NOTIFICATION_PREFIX));
        if (n->size != sizeof(NOTIFICATION_PREFIX) ||
            !events_map_append((const uint8_t *)events->values.data + p->offset, map, map_len,
                               p->seq, p->at_ms, n))
            continue; /* out of memory: this event is not pushed (events.read has it) */
        for (uint32_t i = 0; i < events->by_type_count[p->type]; i++) {
            events_subscription_t *s = events->by_type[p->type][i];
            if (s->conn == NULL || s->conn->closing || !sku_wanted(s, sku))
                continue;
            size_t queued = s->conn->out.size + s->conn->writing.size + n->size;
            if (queued > output_max)
                subscriber_cut(events, s, queued);
            else
                connection_notify(s->conn, n->data, n->size);
        }
    }
    events->pushing = false;
    if (events->dropped_during_push)
        dropped_collect(events);
}
