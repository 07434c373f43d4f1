/* http_events.c - GET /v1/events: Server-Sent Events read through the events.read method.
 *
 * A stream is a cursor over the command table's events.read (no second reader of the event
 * stream): the first read runs when the request arrives (its error, e.g. EXPIRED or
 * UNAUTHENTICATED, is the HTTP reply), then MHD asks for more whenever the socket can take it.
 * Each event is written as
 *     id: SEQ\nevent: TYPE\ndata: {the event as JSON}\n\n
 * so EventSource listeners subscribe by type and a browser's Last-Event-ID resumes after SEQ.
 * Query: after=SEQ (Last-Event-ID wins), types=a,b (passed to events.read), skus=A,B (one SKU is
 * passed as events.read's sku; several are matched here against each event's "sku"). With
 * nothing to send a stream is suspended and polls again every HTTP_EVENTS_POLL_MS; after
 * HTTP_EVENTS_KEEPALIVE_MS without an event it sends a comment line, so a vanished client is
 * noticed. A read error mid-stream is sent as `event: error` and ends the stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/json_msgpack.h"
#include "http_private.h"

struct http_stream {
    uint64_t after;
    bool has_after;
    bool ended;
    char *types; /* "a,b" or NULL */
    char *skus;  /* ",A,B," or NULL */
    char *buf;   /* bytes ready for the socket: [sent, len) */
    size_t len, sent, capacity;
    uint64_t quiet_since_ms; /* uv_now() of the last bytes sent */
};

static bool buf_append(http_stream_t *s, const char *bytes, size_t len)
{
    if (s->sent == s->len)
        s->sent = s->len = 0;
    if (s->len + len > s->capacity) {
        size_t capacity = (s->len + len) * 2;
        char *grown = realloc(s->buf, capacity);
        if (grown == NULL)
            return false;
        s->buf = grown;
        s->capacity = capacity;
    }
    memcpy(s->buf + s->len, bytes, len);
    s->len += len;
    return true;
}

/* Does the event pass the skus filter (several SKUs: matched here)? */
static bool event_wanted(const http_stream_t *s, const msgpack_object *event)
{
    if (s->skus == NULL || strchr(s->skus + 1, ',') == s->skus + strlen(s->skus) - 1)
        return true; /* none, or one (events.read filtered it) */
    const msgpack_object *sku = http_map_get(event, "sku");
    if (sku == NULL || sku->type != MSGPACK_OBJECT_STR || sku->via.str.size > 128)
        return false;
    char needle[132];
    snprintf(needle, sizeof(needle), ",%.*s,", (int)sku->via.str.size, sku->via.str.ptr);
    return strstr(s->skus, needle) != NULL;
}

static bool event_write(http_stream_t *s, const msgpack_object *event)
{
    const msgpack_object *seq = http_map_get(event, "seq");
    const msgpack_object *type = http_map_get(event, "type");
    char *json = NULL;
    size_t json_len = 0;
    if (seq == NULL || seq->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        json_msgpack_to_text(event, JSON_MSGPACK_COMPACT, &json, &json_len, NULL, 0) != 0)
        return false;
    char head[200];
    int n = snprintf(
        head, sizeof(head), "id: %llu\nevent: %.*s\ndata: ", (unsigned long long)seq->via.u64,
        type != NULL && type->type == MSGPACK_OBJECT_STR ? (int)type->via.str.size : 7,
        type != NULL && type->type == MSGPACK_OBJECT_STR ? type->via.str.ptr : "message");
    bool ok = n > 0 && (size_t)n < sizeof(head) && buf_append(s, head, (size_t)n) &&
              buf_append(s, json, json_len) && buf_append(s, "\n\n", 2);
    free(json);
    return ok;
}

/* The events.read request of this stream, packed. */
static void read_params(const http_stream_t *s, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    bool one_sku = s->skus != NULL && strchr(s->skus + 1, ',') == s->skus + strlen(s->skus) - 1;
    msgpack_pack_map(&pk, 1 + s->has_after + (s->types != NULL) + one_sku);
    msgpack_pack_str_with_body(&pk, "limit", 5);
    msgpack_pack_uint32(&pk, HTTP_EVENTS_BATCH_MAX);
    if (s->has_after) {
        msgpack_pack_str_with_body(&pk, "after", 5);
        msgpack_pack_uint64(&pk, s->after);
    }
    if (one_sku) {
        msgpack_pack_str_with_body(&pk, "sku", 3);
        msgpack_pack_str_with_body(&pk, s->skus + 1, strlen(s->skus) - 2);
    }
    if (s->types != NULL) {
        size_t count = 1;
        for (const char *c = s->types; *c != '\0'; c++)
            count += *c == ',';
        msgpack_pack_str_with_body(&pk, "types", 5);
        msgpack_pack_array(&pk, (uint32_t)count);
        for (const char *start = s->types;;) {
            const char *end = strchr(start, ',');
            size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
            msgpack_pack_str_with_body(&pk, start, len);
            if (end == NULL)
                break;
            start = end + 1;
        }
    }
}

/* A reply this stream cannot use: an error reply in server->scratch instead. */
static int stream_unusable(server_t *server, int error, const char *message)
{
    server->scratch.size = 0;
    dispatch_pack_error(&server->scratch, 0, error, NULL, message);
    return error;
}

/* One events.read: events appended to the buffer and the cursor moved; 0, or the error code
 * with an error reply in server->scratch. */
static int stream_read(http_exchange_t *ex)
{
    http_stream_t *s = ex->stream;
    msgpack_sbuffer params;
    msgpack_sbuffer_init(&params);
    read_params(s, &params);
    dispatch_outcome_t outcome;
    http_dispatch(ex, "events.read", params.data, params.size, &outcome);
    msgpack_sbuffer_destroy(&params);
    server_t *server = ex->http->server;
    if (outcome.error != 0)
        return outcome.error;
    if (outcome.deferred)
        return stream_unusable(server, ALLOT_EINTERNAL, "events.read deferred its reply");
    msgpack_object reply;
    size_t offset = 0;
    msgpack_zone_clear(&ex->http->zone);
    if (msgpack_unpack(server->scratch.data, server->scratch.size, &offset, &ex->http->zone,
                       &reply) != MSGPACK_UNPACK_SUCCESS ||
        reply.type != MSGPACK_OBJECT_ARRAY || reply.via.array.size != 4)
        return stream_unusable(server, ALLOT_EINTERNAL, "events.read's reply does not decode");
    const msgpack_object *events = http_map_get(&reply.via.array.ptr[3], "events");
    const msgpack_object *next = http_map_get(&reply.via.array.ptr[3], "next");
    if (events == NULL || events->type != MSGPACK_OBJECT_ARRAY || next == NULL ||
        next->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return stream_unusable(server, ALLOT_EINTERNAL,
                               "events.read's reply lacks its events or next");
    for (uint32_t i = 0; i < events->via.array.size; i++)
        if (event_wanted(s, &events->via.array.ptr[i]) &&
            !event_write(s, &events->via.array.ptr[i]))
            return stream_unusable(server, ALLOT_EINTERNAL,
                                   "an event without a seq, or out of memory");
    if (events->via.array.size > 0 || !s->has_after) {
        s->after = next->via.u64;
        s->has_after = true;
    }
    return 0;
}

static void on_pace(uv_timer_t *timer)
{
    http_events_wake(timer->data);
}

void http_events_wake(http_t *http)
{
    while (http->waiting != NULL) {
        http_exchange_t *ex = http->waiting;
        http->waiting = ex->next;
        ex->next = NULL;
        MHD_resume_connection(ex->connection);
        http_kick(http);
    }
}

/* Nothing to send: suspend until the next poll. */
static ssize_t stream_wait(http_exchange_t *ex)
{
    http_t *http = ex->http;
    ex->next = http->waiting;
    http->waiting = ex;
    MHD_suspend_connection(ex->connection);
    if (!uv_is_active((uv_handle_t *)&http->pace))
        uv_timer_start(&http->pace, on_pace, HTTP_EVENTS_POLL_MS, 0);
    return 0;
}

/* A read error mid-stream: say it as an `error` event, then end. */
static void stream_error(http_exchange_t *ex)
{
    http_stream_t *s = ex->stream;
    s->ended = true;
    server_t *server = ex->http->server;
    msgpack_object reply;
    size_t offset = 0;
    msgpack_zone_clear(&ex->http->zone);
    char *json = NULL;
    size_t len = 0;
    if (msgpack_unpack(server->scratch.data, server->scratch.size, &offset, &ex->http->zone,
                       &reply) == MSGPACK_UNPACK_SUCCESS &&
        reply.type == MSGPACK_OBJECT_ARRAY && reply.via.array.size == 4 &&
        json_msgpack_to_text(&reply.via.array.ptr[2], JSON_MSGPACK_COMPACT, &json, &len, NULL, 0) ==
            0) {
        buf_append(s, "event: error\ndata: ", 19);
        buf_append(s, json, len);
        buf_append(s, "\n\n", 2);
    }
    free(json);
}

static ssize_t on_read(void *cls, uint64_t position, char *buf, size_t max)
{
    http_exchange_t *ex = cls;
    http_stream_t *s = ex->stream;
    (void)position;
    uint64_t now_ms = uv_now(ex->http->server->loop);
    if (s->sent == s->len && !s->ended && !ex->http->stopping) {
        if (stream_read(ex) != 0)
            stream_error(ex);
        else if (s->sent == s->len && now_ms - s->quiet_since_ms >= HTTP_EVENTS_KEEPALIVE_MS)
            buf_append(s, ": keep-alive\n\n", 14);
    }
    if (s->sent == s->len) {
        if (s->ended || ex->http->stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        return stream_wait(ex);
    }
    size_t n = s->len - s->sent < max ? s->len - s->sent : max;
    memcpy(buf, s->buf + s->sent, n);
    s->sent += n;
    s->quiet_since_ms = now_ms;
    return (ssize_t)n;
}

/* A query value copied, or NULL when absent or empty; skus framed as ",A,B,". */
static char *query_copy(struct MHD_Connection *connection, const char *key, bool framed)
{
    const char *value = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, key);
    if (value == NULL || value[0] == '\0')
        return NULL;
    size_t len = strlen(value);
    char *copy = malloc(len + 3);
    if (copy != NULL)
        snprintf(copy, len + 3, framed ? ",%s," : "%s", value);
    return copy;
}

static int stream_open(http_exchange_t *ex, allot_error_detail_t *error)
{
    http_stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return allot_error_set(error, ALLOT_ENOMEM, NULL, "out of memory");
    ex->stream = s;
    s->quiet_since_ms = uv_now(ex->http->server->loop);
    s->types = query_copy(ex->connection, "types", false);
    s->skus = query_copy(ex->connection, "skus", true);
    const char *after =
        MHD_lookup_connection_value(ex->connection, MHD_HEADER_KIND, "Last-Event-ID");
    if (after == NULL || after[0] == '\0')
        after = MHD_lookup_connection_value(ex->connection, MHD_GET_ARGUMENT_KIND, "after");
    if (after != NULL && after[0] != '\0') {
        char *end = NULL;
        s->after = strtoull(after, &end, 10);
        if (*end != '\0' || after[0] == '-')
            return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, "after",
                                   "after (or Last-Event-ID) must be an event's seq");
        s->has_after = true;
    }
    snprintf(ex->command, sizeof(ex->command), "events.read");
    return http_authenticate(ex, error);
}

enum MHD_Result http_events_begin(http_exchange_t *ex)
{
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    int rc = stream_open(ex, &error);
    server_t *server = ex->http->server;
    unsigned status = 0;
    struct MHD_Response *response = NULL;
    if (rc != 0) {
        response = http_response_error(ex->http, rc, error.field, error.message, &status);
    } else if (stream_read(ex) != 0) { /* the first read's error is the reply */
        response =
            http_response_from_reply(ex->http, server->scratch.data, server->scratch.size, &status);
    } else {
        status = MHD_HTTP_OK;
        ex->phase = HTTP_PHASE_STREAM;
        response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, on_read, ex, NULL);
        if (response != NULL) {
            MHD_add_response_header(response, "Content-Type", "text/event-stream");
            MHD_add_response_header(response, "Cache-Control", "no-store");
            MHD_add_response_header(response, "X-Accel-Buffering", "no");
        }
    }
    if (response == NULL)
        return MHD_NO;
    enum MHD_Result result = MHD_queue_response(ex->connection, status, response);
    MHD_destroy_response(response);
    return result;
}

void http_events_free(http_exchange_t *ex)
{
    http_stream_t *s = ex->stream;
    http_t *http = ex->http;
    for (http_exchange_t **p = &http->waiting; *p != NULL; p = &(*p)->next)
        if (*p == ex) {
            *p = ex->next;
            break;
        }
    free(s->types);
    free(s->skus);
    free(s->buf);
    free(s);
    ex->stream = NULL;
}
