/* http.c - the HTTP/JSON front door: libmicrohttpd in the loop, routes, the JSON bridge to the
 * dispatcher, durability holds, authentication and limits (see http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client/json_msgpack.h"
#include "dispatch.h"
#include "http_private.h"
#include "log.h"
#include "pack.h"
#include "rpc.h"

unsigned http_status_for_code(const char *code, size_t code_len)
{
    static const struct {
        const char *code;
        unsigned status;
    } table[] = {
        {"INVALID_ARGUMENT", 400},   {"UNAUTHENTICATED", 401}, {"NOT_FOUND", 404},
        {"UNKNOWN_METHOD", 404},     {"CONFLICT", 409},        {"INVALID_TRANSITION", 409},
        {"INSUFFICIENT_STOCK", 409}, {"LIMIT_EXCEEDED", 409},  {"EXPIRED", 410},
        {"TOO_LARGE", 413},          {"OVERLOADED", 429},      {"QUEUED", 429},
        {"UNAVAILABLE", 503},        {"NOT_LEADER", 503},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strlen(table[i].code) == code_len && memcmp(table[i].code, code, code_len) == 0)
            return table[i].status;
    return 500;
}

/* ---- responses ----------------------------------------------------------------------------- */

struct MHD_Response *http_response_text(char *text, size_t len, const char *content_type)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(response, "Content-Type", content_type);
    MHD_add_response_header(response, "Cache-Control", "no-store");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    return response;
}

/* The value of key `name` in a msgpack map (NULL when absent or not a map). */
const msgpack_object *http_map_get(const msgpack_object *map, const char *name)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen(name);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *key = &map->via.map.ptr[i].key;
        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == len &&
            memcmp(key->via.str.ptr, name, len) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

/* Headers an error reply earns: the scheme for 401, Retry-After from retry_after_ms. */
static void error_headers(struct MHD_Response *response, unsigned status,
                          const msgpack_object *error)
{
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(response, "WWW-Authenticate", "Bearer realm=\"allot\"");
    const msgpack_object *retry = http_map_get(error, "retry_after_ms");
    if (retry != NULL && retry->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        char seconds[24];
        snprintf(seconds, sizeof(seconds), "%llu",
                 (unsigned long long)(retry->via.u64 + 999) / 1000);
        MHD_add_response_header(response, "Retry-After", seconds);
    }
}

/* One MessagePack-RPC response ([1, msgid, error, result]) as an HTTP response: the result as
 * JSON with 200, or {"error": ...} with the code's status. NULL when out of memory. */
struct MHD_Response *http_response_from_reply(http_t *http, const char *bytes, size_t len,
                                              unsigned *status)
{
    msgpack_object reply;
    size_t offset = 0;
    msgpack_zone_clear(&http->zone);
    if (msgpack_unpack(bytes, len, &offset, &http->zone, &reply) != MSGPACK_UNPACK_SUCCESS ||
        reply.type != MSGPACK_OBJECT_ARRAY || reply.via.array.size != 4)
        return NULL; /* packed by rpc.c: cannot happen */
    const msgpack_object *error = &reply.via.array.ptr[2];
    const msgpack_object *shown =
        error->type == MSGPACK_OBJECT_NIL ? &reply.via.array.ptr[3] : error;
    *status = MHD_HTTP_OK;
    if (shown == error) {
        const msgpack_object *code = http_map_get(error, "code");
        *status = code != NULL && code->type == MSGPACK_OBJECT_STR
                      ? http_status_for_code(code->via.str.ptr, code->via.str.size)
                      : MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    char *json = NULL;
    size_t json_len = 0;
    if (json_msgpack_to_text(shown, JSON_MSGPACK_COMPACT, &json, &json_len, NULL, 0) != 0)
        return NULL;
    if (shown == error) {
        char *wrapped = malloc(json_len + 12);
        if (wrapped == NULL) {
            free(json);
            return NULL;
        }
        json_len = (size_t)sprintf(wrapped, "{\"error\":%s}", json);
        free(json);
        json = wrapped;
    }
    struct MHD_Response *response = http_response_text(json, json_len, "application/json");
    if (response != NULL && shown == error)
        error_headers(response, *status, error);
    return response;
}

/* An error reply made here (not by a handler), as dispatch would pack it. */
struct MHD_Response *http_response_error(http_t *http, int error, const char *field,
                                         const char *message, unsigned *status)
{
    msgpack_sbuffer *out = &http->server->scratch;
    out->size = 0;
    dispatch_pack_error(out, 0, error, field, message);
    return http_response_from_reply(http, out->data, out->size, status);
}

/* Queue a response now (the connection is not suspended) and let go of it. */
static enum MHD_Result respond(struct MHD_Connection *connection, unsigned status,
                               struct MHD_Response *response)
{
    if (response == NULL)
        return MHD_NO;
    enum MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
}

static enum MHD_Result respond_error(http_exchange_t *ex, int error, const char *field,
                                     const char *message)
{
    unsigned status = 0;
    struct MHD_Response *response = http_response_error(ex->http, error, field, message, &status);
    if (response != NULL && ex->close)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    return respond(ex->connection, status, response);
}

/* ---- held replies (WRITE until durable, deferred) -------------------------------------------- */

static void held_link(http_t *http, http_exchange_t *ex)
{
    ex->prev = http->held_last;
    ex->next = NULL;
    if (http->held_last != NULL)
        http->held_last->next = ex;
    else
        http->held_first = ex;
    http->held_last = ex;
}

static void held_unlink(http_t *http, http_exchange_t *ex)
{
    if (ex->prev != NULL)
        ex->prev->next = ex->next;
    else
        http->held_first = ex->next;
    if (ex->next != NULL)
        ex->next->prev = ex->prev;
    else
        http->held_last = ex->prev;
    ex->prev = ex->next = NULL;
}

static void on_timer(uv_timer_t *timer);

/* Run MHD in this loop iteration's timer phase: a resumed connection is only picked up by
 * MHD_run (external polling). */
void http_kick(http_t *http)
{
    if (!http->stopping)
        uv_timer_start(&http->timer, on_timer, 0, 0);
}

/* Count an answered call in the per-method metrics, as the RPC port does. */
static void call_record(http_exchange_t *ex)
{
    if (ex->command_index == SIZE_MAX)
        return;
    int64_t latency_us = (int64_t)((uv_hrtime() - ex->started_ns) / 1000);
    metrics_request_record(&ex->http->server->metrics, ex->command_index, latency_us, ex->error);
    ex->command_index = SIZE_MAX;
}

/* Send a held exchange's response: queued while suspended, then resumed. */
static void held_release(http_exchange_t *ex)
{
    call_record(ex);
    if (ex->response != NULL) {
        if (ex->close)
            MHD_add_response_header(ex->response, MHD_HTTP_HEADER_CONNECTION, "close");
        MHD_queue_response(ex->connection, ex->status, ex->response);
        MHD_destroy_response(ex->response);
        ex->response = NULL;
    }
    ex->phase = HTTP_PHASE_DONE;
    MHD_resume_connection(ex->connection);
    http_kick(ex->http);
}

void http_durable(http_t *http, uint64_t durable_lsn)
{
    if (http == NULL)
        return;
    http_exchange_t *next;
    for (http_exchange_t *ex = http->held_first; ex != NULL; ex = next) {
        next = ex->next;
        if (ex->phase != HTTP_PHASE_HELD || ex->lsn > durable_lsn)
            continue; /* deferred ones wait for their answer; held ones are in LSN order */
        held_unlink(http, ex);
        held_release(ex);
    }
}

void http_reply_deferred(http_exchange_t *ex, const char *bytes, size_t len)
{
    assert(ex->phase == HTTP_PHASE_DEFERRED);
    ex->response = http_response_from_reply(ex->http, bytes, len, &ex->status);
    if (ex->response == NULL) {
        ex->close = true;
        ex->response =
            http_response_error(ex->http, ALLOT_EINTERNAL, NULL, "out of memory", &ex->status);
    }
    held_unlink(ex->http, ex);
    held_release(ex);
}

/* ---- calls: POST /v1/METHOD ------------------------------------------------------------------ */

void http_dispatch(http_exchange_t *ex, const char *method, const char *params_bytes,
                   size_t params_len, dispatch_outcome_t *outcome)
{
    http_t *http = ex->http;
    server_t *server = http->server;
    msgpack_sbuffer *request = &http->request;
    request->size = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, request, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, RPC_REQUEST);
    msgpack_pack_uint32(&pk, ++http->next_msgid);
    size_t method_len = strlen(method);
    msgpack_pack_str(&pk, method_len);
    msgpack_pack_str_body(&pk, method, method_len);
    msgpack_pack_array(&pk, 1);
    if (params_bytes != NULL)
        msgpack_sbuffer_write(request, params_bytes, params_len);
    else
        msgpack_pack_map(&pk, 0);
    msgpack_object object;
    size_t offset = 0;
    msgpack_zone_clear(&http->zone);
    msgpack_unpack_return ret =
        msgpack_unpack(request->data, request->size, &offset, &http->zone, &object);
    assert(ret == MSGPACK_UNPACK_SUCCESS);
    (void)ret;
    dispatch_env_t env = {.state = server->state,
                          .server = server,
                          .http = ex,
                          .now_ms = server_now_ms(server),
                          .auth_required = server->auth.required,
                          .session = &ex->client->auth};
    env.writes_allowed = server_writes_allowed(server, &env.writes_refused_error);
    server->scratch.size = 0;
    dispatch_object(&env, &object, &server->scratch, outcome);
    msgpack_zone_clear(&http->zone);
}

/* With a token configured: check `Authorization: Bearer TOKEN` as `auth` would (same back-off,
 * same log lines). A request without the header stays unauthenticated (dispatch then refuses
 * every method but ping and auth). */
int http_authenticate(http_exchange_t *ex, allot_error_detail_t *error)
{
    server_t *server = ex->http->server;
    auth_session_t *session = &ex->client->auth;
    session->authenticated = false; /* each request carries its own credentials */
    if (!server->auth.required)
        return 0;
    const char *header =
        MHD_lookup_connection_value(ex->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (header == NULL) {
        const command_t *command = command_lookup(ex->command, strlen(ex->command));
        if (command == NULL || (command->flags & COMMAND_NOAUTH))
            return 0;
        return allot_error_set(error, ALLOT_EUNAUTHENTICATED, NULL,
                               "send the token as 'Authorization: Bearer TOKEN'");
    }
    if (strncasecmp(header, "Bearer ", 7) != 0)
        return allot_error_set(error, ALLOT_EUNAUTHENTICATED, NULL,
                               "the Authorization header must be 'Bearer TOKEN'");
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    return server_auth_attempt(server, session, token, strlen(token), &ex->close, error);
}

/* The body as the params map (MessagePack) in http->request's tail; 0 or INVALID_ARGUMENT. */
static int call_params(http_exchange_t *ex, msgpack_sbuffer *params, allot_error_detail_t *error)
{
    size_t start = 0;
    while (start < ex->body_len && strchr(" \t\r\n", ex->body[start]) != NULL)
        start++;
    if (start == ex->body_len)
        return 0; /* no body: {} */
    const char *type =
        MHD_lookup_connection_value(ex->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type == NULL || strncasecmp(type, "application/json", 16) != 0 ||
        (type[16] != '\0' && type[16] != ';' && type[16] != ' '))
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, NULL,
                               "a request body must be sent as Content-Type: application/json");
    char message[JSON_MSGPACK_ERROR_BYTES];
    if (json_msgpack_from_text(ex->body + start, ex->body_len - start, params, message,
                               sizeof(message)) != 0)
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, NULL, "the body is not JSON: %s",
                               message);
    uint8_t first = params->size > 0 ? (uint8_t)params->data[0] : 0;
    if (!((first >= 0x80 && first <= 0x8f) || first == 0xde || first == 0xdf))
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, NULL,
                               "the body must be a JSON object of named arguments");
    return 0;
}

/* Answer now, or hold the reply (WRITE until durable; deferred until the server answers). */
static enum MHD_Result call_reply(http_exchange_t *ex, const dispatch_outcome_t *outcome)
{
    http_t *http = ex->http;
    server_t *server = http->server;
    if (outcome->deferred) {
        ex->command_index = outcome->command_index;
        ex->phase = HTTP_PHASE_DEFERRED;
        held_link(http, ex);
        MHD_suspend_connection(ex->connection);
        return MHD_YES;
    }
    if (outcome->close)
        ex->close = true;
    ex->command_index = outcome->command_index;
    ex->error = outcome->error != 0;
    if (outcome->command_index == SIZE_MAX && outcome->error != 0)
        metrics_request_rejected(&server->metrics, outcome->error, false);
    if (!outcome->write && server->scratch.size > server->config.output_bytes_max) {
        server->metrics.replies_too_large++;
        ex->error = true;
        call_record(ex);
        char message[ALLOT_ERROR_MESSAGE_BYTES_MAX];
        snprintf(message, sizeof(message),
                 "the reply is %zu bytes, over the limit of %u (--output-bytes-max); ask for less",
                 server->scratch.size, server->config.output_bytes_max);
        return respond_error(ex, ALLOT_ETOO_LARGE, NULL, message);
    }
    unsigned status = 0;
    struct MHD_Response *response =
        http_response_from_reply(http, server->scratch.data, server->scratch.size, &status);
    if (response == NULL)
        return MHD_NO;
    uint64_t lsn = server_wal_lsn(server);
    if (!outcome->write || lsn <= server->durable_lsn) {
        if (ex->close)
            MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
        ex->phase = HTTP_PHASE_DONE;
        call_record(ex);
        return respond(ex->connection, status, response);
    }
    ex->phase = HTTP_PHASE_HELD;
    ex->response = response;
    ex->status = status;
    ex->lsn = lsn;
    held_link(http, ex);
    MHD_suspend_connection(ex->connection);
    return MHD_YES;
}

static enum MHD_Result call_run(http_exchange_t *ex)
{
    http_t *http = ex->http;
    server_t *server = http->server;
    http->requests++;
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    int rc = http_authenticate(ex, &error);
    msgpack_sbuffer params;
    msgpack_sbuffer_init(&params);
    if (rc == 0)
        rc = call_params(ex, &params, &error);
    if (rc == 0 && server_buffered_over_budget(server))
        rc = allot_error_set(&error, ALLOT_EOVERLOADED, NULL,
                             "server buffers are full; retry later");
    if (rc != 0) {
        msgpack_sbuffer_destroy(&params);
        http->refused++;
        unsigned status = 0;
        server->scratch.size = 0;
        msgpack_packer pk;
        msgpack_packer_init(&pk, &server->scratch, msgpack_sbuffer_write);
        rpc_pack_error(&pk, 0, rc, &error);
        struct MHD_Response *response =
            http_response_from_reply(http, server->scratch.data, server->scratch.size, &status);
        if (response != NULL && ex->close)
            MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
        return respond(ex->connection, status, response);
    }
    uint64_t started_ns = uv_hrtime();
    ex->started_ns = started_ns;
    dispatch_outcome_t outcome;
    http_dispatch(ex, ex->command, params.size > 0 ? params.data : NULL, params.size, &outcome);
    msgpack_sbuffer_destroy(&params);
    enum MHD_Result result = call_reply(ex, &outcome);
    return result;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* Append a piece of the body; false (the connection is cut) past --request-bytes-max, which only
 * a chunked body can reach (a declared length over it was refused before reading). */
static bool body_append(http_exchange_t *ex, const char *data, size_t len)
{
    server_t *server = ex->http->server;
    if (ex->route != HTTP_ROUTE_CALL || ex->phase != HTTP_PHASE_READING ||
        ex->body_len + len > server->config.request_bytes_max)
        return false;
    if (ex->body_len + len > ex->body_capacity) {
        size_t capacity = ex->body_capacity * 2;
        if (capacity < ex->body_len + len)
            capacity = ex->body_len + len;
        if (capacity < HTTP_BODY_BYTES_MIN)
            capacity = HTTP_BODY_BYTES_MIN;
        if (capacity > server->config.request_bytes_max)
            capacity = server->config.request_bytes_max;
        char *grown = realloc(ex->body, capacity);
        if (grown == NULL)
            return false;
        server_buffered_add(server, capacity - ex->body_capacity);
        ex->body = grown;
        ex->body_capacity = capacity;
    }
    memcpy(ex->body + ex->body_len, data, len);
    ex->body_len += len;
    return true;
}

/* POST /v1/METHOD, before the body: the method's name, and a declared length within limits. */
static enum MHD_Result call_begin(http_exchange_t *ex, const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof(ex->command)) {
        ex->phase = HTTP_PHASE_DONE;
        return respond_error(ex, ALLOT_EUNKNOWN_METHOD, NULL, "unknown method");
    }
    memcpy(ex->command, name, len + 1);
    const char *length = MHD_lookup_connection_value(ex->connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint32_t max = ex->http->server->config.request_bytes_max;
    if (length != NULL && strtoull(length, NULL, 10) > max) {
        char message[ALLOT_ERROR_MESSAGE_BYTES_MAX];
        snprintf(message, sizeof(message),
                 "the body is %s bytes, over the limit of %u (--request-bytes-max)", length, max);
        ex->phase = HTTP_PHASE_DONE;
        ex->close = true; /* the body is not read */
        return respond_error(ex, ALLOT_ETOO_LARGE, NULL, message);
    }
    return MHD_YES; /* the body follows */
}

/* The route of a request line; -1 for a path served nowhere, -2 for a method not allowed. */
static int route_find(const char *url, const char *method)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strncmp(url, "/v1/", 4) == 0 && strcmp(url, "/v1/openapi.json") != 0 &&
        strcmp(url, "/v1/events") != 0)
        return strcmp(method, "POST") == 0 ? HTTP_ROUTE_CALL : -2;
    int route = strcmp(url, "/v1/openapi.json") == 0 ? HTTP_ROUTE_OPENAPI
                : strcmp(url, "/v1/events") == 0     ? HTTP_ROUTE_EVENTS
                : strcmp(url, "/healthz") == 0       ? HTTP_ROUTE_HEALTH
                : strcmp(url, "/readyz") == 0        ? HTTP_ROUTE_READY
                                                     : HTTP_ROUTE_CONSOLE;
    return get ? route : -2;
}

static enum MHD_Result exchange_begin(http_t *http, struct MHD_Connection *connection,
                                      const char *url, const char *method, void **request_state)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    http_exchange_t *ex = calloc(1, sizeof(*ex));
    if (ex == NULL || info == NULL || info->socket_context == NULL) {
        free(ex);
        return MHD_NO;
    }
    ex->http = http;
    ex->connection = connection;
    ex->client = info->socket_context;
    ex->command_index = SIZE_MAX;
    *request_state = ex;
    int route = route_find(url, method);
    if (route == -2) {
        ex->phase = HTTP_PHASE_DONE;
        unsigned status = 0;
        struct MHD_Response *response =
            http_response_error(http, ALLOT_EINVALID_ARGUMENT, NULL,
                                strncmp(url, "/v1/", 4) == 0 && strcmp(url, "/v1/events") != 0 &&
                                        strcmp(url, "/v1/openapi.json") != 0
                                    ? "methods are called with POST /v1/METHOD"
                                    : "only GET is served here",
                                &status);
        if (response != NULL)
            MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW,
                                    route_find(url, "POST") == HTTP_ROUTE_CALL ? "POST" : "GET");
        return respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED, response);
    }
    ex->route = (uint8_t)route;
    if (route == HTTP_ROUTE_CALL)
        return call_begin(ex, url + 4);
    return MHD_YES; /* answered once the whole request is in (the connection is kept) */
}

/* The whole request is in: run it. */
static enum MHD_Result exchange_run(http_exchange_t *ex, const char *url)
{
    if (ex->route == HTTP_ROUTE_CALL)
        return call_run(ex);
    ex->phase = HTTP_PHASE_DONE;
    if (ex->route == HTTP_ROUTE_EVENTS)
        return http_events_begin(ex);
    return http_routes_get(ex, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **request_state)
{
    http_t *http = cls;
    (void)version;
    http_exchange_t *ex = *request_state;
    if (ex == NULL)
        return exchange_begin(http, connection, url, method, request_state);
    if (*upload_data_size > 0) {
        size_t len = *upload_data_size;
        *upload_data_size = 0;
        return body_append(ex, upload_data, len) ? MHD_YES : MHD_NO;
    }
    if (ex->phase == HTTP_PHASE_READING)
        return exchange_run(ex, url);
    if (ex->response != NULL) { /* released while the handler was not looking (resumed) */
        struct MHD_Response *response = ex->response;
        ex->response = NULL;
        return respond(connection, ex->status, response);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **request_state,
                         enum MHD_RequestTerminationCode code)
{
    http_t *http = cls;
    (void)connection, (void)code;
    http_exchange_t *ex = *request_state;
    if (ex == NULL)
        return;
    *request_state = NULL;
    assert(ex->phase != HTTP_PHASE_HELD && ex->phase != HTTP_PHASE_DEFERRED);
    if (ex->stream != NULL)
        http_events_free(ex);
    if (ex->response != NULL)
        MHD_destroy_response(ex->response);
    server_buffered_sub(http->server, ex->body_capacity);
    free(ex->body);
    free(ex);
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_context);
        *socket_context = NULL;
        return;
    }
    http_client_t *client = calloc(1, sizeof(*client));
    *socket_context = client;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (client == NULL || info == NULL)
        return; /* exchange_begin refuses a connection without its client */
    const union MHD_ConnectionInfo *fd_info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (fd_info != NULL) /* replies leave at once: no Nagle wait for the client's ACK */
        setsockopt(fd_info->connect_fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    const struct sockaddr *address = info->client_addr;
    auth_peer_key_from_address(address, &client->auth.peer);
    char host[48] = "?";
    unsigned port = 0;
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)address;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    }
    snprintf(client->peer, sizeof(client->peer), "%s:%u", host, port);
    client->auth.http_peer = client->peer;
}

/* ---- the daemon in the loop ------------------------------------------------------------------ */

static unsigned connections_count(http_t *http)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info != NULL ? info->num_connections : 0;
}

/* Let MHD do what is ready, then wake up for its next timeout. */
static void http_run(http_t *http)
{
    /* Once a connection closes at --http-connections-max, the listening socket only goes back
     * into MHD's epoll set on the next run, which nothing else would trigger: run again while
     * connections closed. */
    for (unsigned before = connections_count(http), runs = 0; runs < 3; runs++) {
        MHD_run(http->daemon);
        unsigned after = connections_count(http);
        if (after >= before)
            break;
        before = after;
    }
    MHD_UNSIGNED_LONG_LONG timeout_ms = 0;
    if (!http->stopping && MHD_get_timeout(http->daemon, &timeout_ms) == MHD_YES)
        uv_timer_start(&http->timer, on_timer, timeout_ms, 0);
    else
        uv_timer_stop(&http->timer);
}

static void on_timer(uv_timer_t *timer)
{
    http_run(timer->data);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    (void)status, (void)events;
    http_run(poll->data);
}

static void on_log(void *cls, const char *format, va_list ap)
{
    (void)cls;
    char message[256];
    vsnprintf(message, sizeof(message), format, ap);
    size_t len = strlen(message);
    while (len > 0 && message[len - 1] == '\n')
        message[--len] = '\0';
    log_event(LOG_WARN, "http_problem", LOG_STR("message", message));
}

static struct MHD_Daemon *daemon_start(http_t *http, const struct sockaddr_in *address)
{
    const server_config_t *config = &http->server->config;
    return MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, ntohs(address->sin_port),
        NULL, NULL, on_request, http, MHD_OPTION_EXTERNAL_LOGGER, on_log, http,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)address, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)config->http_connections_max, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)config->http_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, http, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)SERVER_LISTEN_BACKLOG, MHD_OPTION_END);
}

http_t *http_start(server_t *server, const char *host, uint16_t port, char *error,
                   size_t error_bytes)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                  &address.sin_addr) != 1) {
        snprintf(error, error_bytes, "--http needs an IPv4 HOST:PORT, got host '%s'", host);
        return NULL;
    }
    http_t *http = calloc(1, sizeof(*http));
    if (http == NULL)
        return NULL;
    http->server = server;
    msgpack_zone_init(&http->zone, HTTP_ZONE_CHUNK_BYTES);
    msgpack_sbuffer_init(&http->request);
    http->openapi = http_openapi_render(server->auth.required, &http->openapi_len);
    http->daemon = http->openapi != NULL ? daemon_start(http, &address) : NULL;
    const union MHD_DaemonInfo *info =
        http->daemon != NULL ? MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (info == NULL || uv_poll_init(server->loop, &http->poll, info->epoll_fd) != 0) {
        snprintf(error, error_bytes, "cannot serve HTTP on %s:%u", host, port);
        if (http->daemon != NULL)
            MHD_stop_daemon(http->daemon);
        msgpack_zone_destroy(&http->zone);
        msgpack_sbuffer_destroy(&http->request);
        free(http->openapi);
        free(http);
        return NULL;
    }
    http->poll.data = http;
    uv_poll_start(&http->poll, UV_READABLE, on_poll);
    uv_timer_init(server->loop, &http->timer);
    http->timer.data = http;
    uv_timer_init(server->loop, &http->pace);
    http->pace.data = http;
    http->handles_open = 3;
    return http;
}

void http_quiesce(http_t *http)
{
    if (http == NULL || http->stopping)
        return;
    MHD_socket listener = MHD_quiesce_daemon(http->daemon);
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
}

static void on_handle_closed(uv_handle_t *handle)
{
    http_t *http = handle->data;
    if (--http->handles_open > 0)
        return;
    MHD_stop_daemon(http->daemon);
    log_event(LOG_INFO, "http_stopped", LOG_UINT("requests", http->requests),
              LOG_UINT("refused", http->refused));
    msgpack_zone_destroy(&http->zone);
    msgpack_sbuffer_destroy(&http->request);
    free(http->openapi);
    free(http);
}

void http_stop(http_t *http)
{
    if (http == NULL || http->stopping)
        return;
    http->stopping = true;
    while (http->held_first != NULL) {
        http_exchange_t *ex = http->held_first;
        if (ex->phase == HTTP_PHASE_DEFERRED)
            server_deferred_drop_http(http->server, ex);
        if (ex->response != NULL)
            MHD_destroy_response(ex->response);
        ex->close = true;
        ex->response = http_response_error(http, ALLOT_EUNAVAILABLE, NULL,
                                           "shutting down before this request was confirmed; "
                                           "read its result back after the restart",
                                           &ex->status);
        held_unlink(http, ex);
        held_release(ex);
    }
    http_events_wake(http); /* streams see `stopping` and end */
    MHD_run(http->daemon);  /* send what can be sent without waiting */
    uv_close((uv_handle_t *)&http->poll, on_handle_closed);
    uv_close((uv_handle_t *)&http->timer, on_handle_closed);
    uv_close((uv_handle_t *)&http->pace, on_handle_closed);
}
