/* test_net_http.c - the HTTP front door's pure parts: the status of every error code (the
 * contract's table, codes other branches add, anything else) and the generated OpenAPI
 * document (every method of the command table, its keys, enums from core's tables). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "core/errors.h"
#include "net/command.h"
#include "net/http.h"

static unsigned status_of(const char *code)
{
    return http_status_for_code(code, strlen(code));
}

Test(http_status, every_code_of_the_contract_has_its_status)
{
    static const struct {
        const char *code;
        unsigned status;
    } contract[] = {
        {"INVALID_ARGUMENT", 400},   {"UNAUTHENTICATED", 401},
        {"NOT_FOUND", 404},          {"UNKNOWN_METHOD", 404},
        {"CONFLICT", 409},           {"INVALID_TRANSITION", 409},
        {"INSUFFICIENT_STOCK", 409}, {"LIMIT_EXCEEDED", 409},
        {"TOO_LARGE", 413},          {"EXPIRED", 410},
        {"OVERLOADED", 429},         {"QUEUED", 429},
        {"UNAVAILABLE", 503},        {"NOT_LEADER", 503},
        {"INTERNAL", 500},
    };
    for (size_t i = 0; i < sizeof(contract) / sizeof(contract[0]); i++)
        cr_expect_eq(status_of(contract[i].code), contract[i].status, "%s -> %u", contract[i].code,
                     contract[i].status);
}

Test(http_status, unknown_codes_and_prefixes_are_500)
{
    cr_expect_eq(status_of("SOMETHING_NEW"), 500);
    cr_expect_eq(status_of(""), 500);
    cr_expect_eq(http_status_for_code("NOT_FOUND_X", 9), 404, "by length: NOT_FOUND");
    cr_expect_eq(http_status_for_code("NOT_FOUN", 8), 500, "a prefix is not the code");
}

Test(http_status, every_code_the_server_can_send_maps_to_a_4xx_or_5xx)
{
#define CHECK(name, number, wire, message)                                                         \
    cr_expect(status_of(wire) >= 400 && status_of(wire) <= 503, wire);                             \
    if (strcmp(wire, "INTERNAL") != 0)                                                             \
        cr_expect_neq(status_of(wire), 500, "%s has its own status", wire);
    ALLOT_ERROR_TABLE(CHECK)
#undef CHECK
}

/* The request body schema of POST path. */
static json_t *request_schema(json_t *paths, const char *path)
{
    json_t *node = json_object_get(paths, path);
    static const char *const walk[] = {"post", "requestBody", "content", "application/json",
                                       "schema"};
    for (size_t i = 0; node != NULL && i < sizeof(walk) / sizeof(walk[0]); i++)
        node = json_object_get(node, walk[i]);
    return node;
}

Test(http_openapi, describes_every_method_with_its_keys)
{
    size_t len = 0;
    char *text = http_openapi_render(0, &len);
    cr_assert_not_null(text);
    json_error_t error;
    json_t *doc = json_loads(text, 0, &error);
    cr_assert_not_null(doc, "the document is JSON: %s", error.text);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < command_count(); i++) {
        const command_t *command = command_at(i);
        char path[128];
        snprintf(path, sizeof(path), "/v1/%s", command->name);
        json_t *schema = request_schema(paths, path);
        cr_assert_not_null(schema, "%s is described", command->name);
        json_t *properties = json_object_get(schema, "properties");
        size_t keys = 0;
        for (; command->allowed_keys[keys] != NULL; keys++)
            cr_expect_not_null(json_object_get(properties, command->allowed_keys[keys]),
                               "%s describes %s", command->name, command->allowed_keys[keys]);
        cr_expect_eq(json_object_size(properties), keys, "%s: only its keys", command->name);
        cr_expect(json_is_false(json_object_get(schema, "additionalProperties")));
    }
    json_t *policy = json_object_get(
        json_object_get(request_schema(paths, "/v1/reserve"), "properties"), "policy");
    cr_expect_eq(json_array_size(json_object_get(policy, "enum")), 4,
                 "the policies come from core's table");
    json_decref(doc);
    free(text);
}
