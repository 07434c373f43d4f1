/* http_routes.c - the GET routes of the HTTP front door: /healthz, /readyz, the OpenAPI
 * document and the console's static files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_private.h"

static enum MHD_Result respond_json(struct MHD_Connection *connection, unsigned status,
                                    const char *text)
{
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return MHD_NO;
    memcpy(copy, text, len + 1);
    struct MHD_Response *response = http_response_text(copy, len, "application/json");
    if (response == NULL)
        return MHD_NO;
    enum MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
}

/* The node's role from server.info (run through the command table, so replication's `role`
 * shows here once it exists): "standalone" when the map has none. */
static void ready_role(http_exchange_t *ex, char *role, size_t role_bytes)
{
    snprintf(role, role_bytes, "standalone");
    auth_session_t *session = &ex->client->auth;
    bool was = session->authenticated;
    session->authenticated = true; /* an internal read, not the client's call */
    dispatch_outcome_t outcome;
    http_dispatch(ex, "server.info", NULL, 0, &outcome);
    session->authenticated = was;
    server_t *server = ex->http->server;
    msgpack_object reply;
    size_t offset = 0;
    msgpack_zone_clear(&ex->http->zone);
    if (outcome.error != 0 ||
        msgpack_unpack(server->scratch.data, server->scratch.size, &offset, &ex->http->zone,
                       &reply) != MSGPACK_UNPACK_SUCCESS ||
        reply.type != MSGPACK_OBJECT_ARRAY || reply.via.array.size != 4)
        return;
    const msgpack_object *value = http_map_get(&reply.via.array.ptr[3], "role");
    if (value != NULL && value->type == MSGPACK_OBJECT_STR && value->via.str.size < role_bytes) {
        memcpy(role, value->via.str.ptr, value->via.str.size);
        role[value->via.str.size] = '\0';
    }
}

/* 200 when this node serves its clients: standalone or leader accepting writes, or a follower
 * (reads); else 503 with the reason. */
static enum MHD_Result respond_ready(http_exchange_t *ex)
{
    server_t *server = ex->http->server;
    char role[32];
    ready_role(ex, role, sizeof(role));
    int refused = 0;
    bool writes = server_writes_allowed(server, &refused);
    const char *reason = NULL;
    if (server->shutting_down)
        reason = "shutting down";
    else if (strcmp(role, "follower") == 0)
        reason = NULL; /* reads are served */
    else if (strcmp(role, "standalone") != 0 && strcmp(role, "leader") != 0)
        reason = "no leader known to this node yet";
    else if (!writes)
        reason = refused == ALLOT_EOVERLOADED ? "writes refused: the write-ahead log is saturated"
                                              : "writes refused: the write-ahead log cannot "
                                                "allocate disk space";
    char body[256];
    snprintf(body, sizeof(body), "{\"ready\":%s,\"role\":\"%s\",\"writes\":%s%s%s%s}",
             reason == NULL ? "true" : "false", role, writes ? "true" : "false",
             reason != NULL ? ",\"reason\":\"" : "", reason != NULL ? reason : "",
             reason != NULL ? "\"" : "");
    return respond_json(ex->connection, reason == NULL ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                        body);
}

static enum MHD_Result respond_openapi(http_exchange_t *ex)
{
    http_t *http = ex->http;
    struct MHD_Response *response =
        MHD_create_response_from_buffer(http->openapi_len, http->openapi, MHD_RESPMEM_PERSISTENT);
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, "Content-Type", "application/json");
    MHD_add_response_header(response, "Cache-Control", "no-cache");
    enum MHD_Result result = MHD_queue_response(ex->connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return result;
}

static enum MHD_Result respond_console(http_exchange_t *ex, const char *url)
{
    const unsigned char *bytes = NULL;
    size_t len = 0;
    const char *type = NULL;
    if (http_console_find(url, &bytes, &len, &type) != 0) {
        unsigned status = 0;
        struct MHD_Response *response =
            http_response_error(ex->http, ALLOT_ENOT_FOUND, NULL,
                                "nothing here: the API is POST /v1/METHOD, its description "
                                "GET /v1/openapi.json, the console GET /",
                                &status);
        if (response == NULL)
            return MHD_NO;
        enum MHD_Result result = MHD_queue_response(ex->connection, status, response);
        MHD_destroy_response(response);
        return result;
    }
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, (void *)bytes, MHD_RESPMEM_PERSISTENT);
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, "Content-Type", type);
    MHD_add_response_header(response, "Cache-Control", "no-cache");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "X-Frame-Options", "DENY");
    MHD_add_response_header(response, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    enum MHD_Result result = MHD_queue_response(ex->connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return result;
}

enum MHD_Result http_routes_get(http_exchange_t *ex, const char *url)
{
    switch (ex->route) {
    case HTTP_ROUTE_HEALTH:
        return respond_json(ex->connection, MHD_HTTP_OK, "{\"status\":\"ok\"}");
    case HTTP_ROUTE_READY:
        return respond_ready(ex);
    case HTTP_ROUTE_OPENAPI:
        return respond_openapi(ex);
    default:
        return respond_console(ex, url);
    }
}
