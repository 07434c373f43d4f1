/* http_openapi.c - the OpenAPI 3.1 document of the HTTP API, generated from the command table
 * (net/commands.def) and the argument descriptions (net/http_args.def). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "core/inventory.h"
#include "core/order.h"
#include "core/sourcing.h"
#include "http.h"

typedef struct http_arg {
    const char *method; /* NULL: every method */
    const char *key;
    const char *schema;
    const char *const *names; /* enum values, NULL-terminated; NULL: none */
    const char *description;
} http_arg_t;

typedef struct http_required {
    const char *method;
    const char *const *keys; /* NULL-terminated */
} http_required_t;

#define HTTP_ARG(key, schema, names, description) {NULL, key, schema, names, description},
#define HTTP_ARG_OF(method, key, schema, names, description)                                       \
    {method, key, schema, names, description},
#define HTTP_REQUIRED(method, ...)
static const http_arg_t http_args[] = {
#include "http_args.def"
};
#undef HTTP_ARG
#undef HTTP_ARG_OF
#undef HTTP_REQUIRED

#define HTTP_ARG(key, schema, names, description)
#define HTTP_ARG_OF(method, key, schema, names, description)
#define HTTP_REQUIRED(method, ...) {method, (const char *const[]){__VA_ARGS__, NULL}},
static const http_required_t http_required[] = {
#include "http_args.def"
};
#undef HTTP_ARG
#undef HTTP_ARG_OF
#undef HTTP_REQUIRED

/* The row describing `key` of `method`: the method's own first, then the general one. */
static const http_arg_t *arg_find(const char *method, const char *key)
{
    const http_arg_t *general = NULL;
    for (size_t i = 0; i < sizeof(http_args) / sizeof(http_args[0]); i++) {
        const http_arg_t *a = &http_args[i];
        if (strcmp(a->key, key) != 0)
            continue;
        if (a->method != NULL && strcmp(a->method, method) == 0)
            return a;
        if (a->method == NULL && general == NULL)
            general = a;
    }
    return general;
}

static json_t *arg_schema(const char *method, const char *key)
{
    const http_arg_t *a = arg_find(method, key);
    if (a == NULL)
        return json_pack("{s:s}", "description", "any JSON value (see docs/protocol.md)");
    json_t *schema = json_loads(a->schema, 0, NULL);
    if (schema == NULL)
        return NULL;
    json_object_set_new(schema, "description", json_string(a->description));
    if (a->names != NULL) {
        json_t *values = json_array();
        for (size_t i = 0; a->names[i] != NULL; i++)
            json_array_append_new(values, json_string(a->names[i]));
        json_object_set_new(schema, "enum", values);
    }
    return schema;
}

/* The request body of one method: an object of its allowed keys, nothing else. */
static json_t *params_schema(const command_t *command)
{
    json_t *properties = json_object();
    for (size_t k = 0; command->allowed_keys[k] != NULL; k++) {
        json_t *schema = arg_schema(command->name, command->allowed_keys[k]);
        if (schema == NULL) {
            json_decref(properties);
            return NULL;
        }
        json_object_set_new(properties, command->allowed_keys[k], schema);
    }
    json_t *body = json_pack("{s:s, s:o, s:b}", "type", "object", "properties", properties,
                             "additionalProperties", 0);
    for (size_t i = 0; body != NULL && i < sizeof(http_required) / sizeof(http_required[0]); i++) {
        if (strcmp(http_required[i].method, command->name) != 0)
            continue;
        json_t *required = json_array();
        for (size_t k = 0; http_required[i].keys[k] != NULL; k++)
            json_array_append_new(required, json_string(http_required[i].keys[k]));
        json_object_set_new(body, "required", required);
    }
    return body;
}

static json_t *error_responses(void)
{
    static const struct {
        const char *status, *codes;
    } statuses[] = {
        {"400", "INVALID_ARGUMENT"},
        {"401", "UNAUTHENTICATED"},
        {"404", "NOT_FOUND, UNKNOWN_METHOD"},
        {"409", "CONFLICT, INVALID_TRANSITION, INSUFFICIENT_STOCK, LIMIT_EXCEEDED"},
        {"410", "EXPIRED"},
        {"413", "TOO_LARGE"},
        {"429", "OVERLOADED, QUEUED"},
        {"503", "UNAVAILABLE, NOT_LEADER"},
        {"500", "INTERNAL"},
    };
    json_t *responses = json_object();
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        json_object_set_new(responses, statuses[i].status,
                            json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", statuses[i].codes,
                                      "content", "application/json", "schema", "$ref",
                                      "#/components/schemas/Error"));
    return responses;
}

static json_t *operation(const command_t *command)
{
    json_t *body = params_schema(command);
    if (body == NULL)
        return NULL;
    json_t *responses = error_responses();
    json_object_set_new(responses, "200",
                        json_pack("{s:s, s:{s:{s:{}}}}", "description", "the result", "content",
                                  "application/json", "schema"));
    const char *tag = (command->flags & COMMAND_ADMIN)   ? "admin"
                      : (command->flags & COMMAND_WRITE) ? "write"
                                                         : "read";
    json_t *op =
        json_pack("{s:s, s:[s], s:s, s:{s:b, s:{s:{s:o}}}, s:o}", "operationId", command->name,
                  "tags", tag, "summary", command->name, "requestBody", "required", 0, "content",
                  "application/json", "schema", body, "responses", responses);
    if (op != NULL && (command->flags & COMMAND_NOAUTH))
        json_object_set_new(op, "security", json_pack("[{}]"));
    return json_pack("{s:o}", "post", op);
}

/* GET routes beside the methods. */
static void paths_fixed(json_t *paths)
{
    json_object_set_new(
        paths, "/v1/events",
        json_pack("{s:{s:s, s:s, s:[{s:s, s:s, s:{s:s}}, {s:s, s:s, s:{s:s}}, {s:s, s:s, "
                  "s:{s:s}}], s:{s:{s:s, s:{s:{s:{s:s}}}}}}}",
                  "get", "operationId", "events.stream", "summary",
                  "Server-Sent Events (id: is the seq; Last-Event-ID resumes)", "parameters",
                  "name", "after", "in", "query", "schema", "type", "integer", "name", "types",
                  "in", "query", "schema", "type", "string", "name", "skus", "in", "query",
                  "schema", "type", "string", "responses", "200", "description", "an event stream",
                  "content", "text/event-stream", "schema", "type", "string"));
    static const char *const plain[][2] = {
        {"/healthz", "the process serves"},
        {"/readyz", "ready for clients (503 with the reason when not)"},
        {"/v1/openapi.json", "this document"},
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        json_object_set_new(paths, plain[i][0],
                            json_pack("{s:{s:s, s:[{}], s:{s:{s:s, s:{s:{s:{s:s}}}}}}}", "get",
                                      "summary", plain[i][1], "security", "responses", "200",
                                      "description", plain[i][1], "content", "application/json",
                                      "schema", "type", "object"));
}

static json_t *components(void)
{
    return json_pack("{s:{s:{s:s, s:[s], s:{s:{s:s, s:[s,s], s:{s:{s:s}, s:{s:s}}}}}}, "
                     "s:{s:{s:s, s:s}}}",
                     "schemas", "Error", "type", "object", "required", "error", "properties",
                     "error", "type", "object", "required", "code", "message", "properties", "code",
                     "type", "string", "message", "type", "string", "securitySchemes", "bearer",
                     "type", "http", "scheme", "bearer");
}

char *http_openapi_render(int token_required, size_t *len_out)
{
    json_t *paths = json_object();
    for (size_t i = 0; paths != NULL && i < command_count(); i++) {
        const command_t *command = command_at(i);
        char path[HTTP_COMMAND_BYTES_MAX + 8];
        snprintf(path, sizeof(path), "/v1/%s", command->name);
        json_t *item = operation(command);
        if (item == NULL) {
            json_decref(paths);
            return NULL;
        }
        json_object_set_new(paths, path, item);
    }
    paths_fixed(paths);
    json_t *doc = json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:o, s:o, s:o}", "openapi", "3.1.0", "info", "title", "Allot",
        "version", ALLOT_VERSION, "description",
        "Allot's methods as JSON over HTTP: POST /v1/METHOD with the named arguments as a JSON "
        "object; the same methods, rules and errors as the MessagePack-RPC port "
        "(docs/protocol.md).",
        "paths", paths, "components", components(), "security",
        token_required ? json_pack("[{s:[]}]", "bearer") : json_pack("[{s:[]}, {}]", "bearer"));
    if (doc == NULL)
        return NULL;
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text != NULL && len_out != NULL)
        *len_out = strlen(text);
    return text;
}
