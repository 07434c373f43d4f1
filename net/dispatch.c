/* dispatch.c - the command table and the one dispatcher every request goes through. */
#include "dispatch.h"

#include <stdint.h>
#include <string.h>

#include "args.h"
#include "auth.h"
#include "pack.h"
#include "rpc.h"

#define COMMAND(wire_name, handler, flags, ...)                                                   \
    static const char *const handler##_allowed_keys[] = {__VA_ARGS__ __VA_OPT__(, ) NULL};        \
    _Static_assert(sizeof(handler##_allowed_keys) / sizeof(char *) - 1 <= ARGS_ALLOWED_KEYS_MAX,  \
                   wire_name " names more keys than args_check_keys tracks");
#include "commands.def"
#undef COMMAND

static const command_t command_table[] = {
#define COMMAND(wire_name, handler, flags, ...) {wire_name, handler, flags, handler##_allowed_keys},
#include "commands.def"
#undef COMMAND
};

#define COMMAND_COUNT (sizeof(command_table) / sizeof(command_table[0]))

const command_t *command_lookup(const char *name, size_t name_len)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        const command_t *c = &command_table[i];
        /* lengths first: a method may contain NUL bytes, which strncmp would stop at */
        if (strlen(c->name) == name_len && memcmp(c->name, name, name_len) == 0)
            return c;
    }
    return NULL;
}

size_t command_count(void)
{
    return COMMAND_COUNT;
}

const command_t *command_at(size_t index)
{
    return index < COMMAND_COUNT ? &command_table[index] : NULL;
}

size_t command_index(const command_t *command)
{
    return (size_t)(command - command_table);
}

void dispatch_pack_error(msgpack_sbuffer *out, uint32_t msgid, int error, const char *field,
                         const char *message)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, pack_sbuffer_write);
    allot_error_detail_t detail;
    allot_error_detail_clear(&detail);
    allot_error_set(&detail, error, field, "%s", message);
    rpc_pack_error(&pk, msgid, error, &detail);
}

/* Runs the handler; packs the result, or rolls the buffer back and packs the error. */
static int run_handler(const dispatch_env_t *env, const command_t *command,
                       const rpc_envelope_t *envelope, msgpack_sbuffer *out,
                       allot_error_detail_t *error, bool *close_connection)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, pack_sbuffer_write);
    size_t mark = out->size;
    rpc_pack_result_header(&pk, envelope->msgid);
    command_call_t call = {
        .state = env->state,
        .server = env->server,
        .now_ms = env->now_ms,
        .params = envelope->params,
        .result = &pk,
        .error = error,
        .reply_to = {envelope->type == RPC_REQUEST ? env->conn : NULL, envelope->msgid,
                     envelope->type == RPC_REQUEST ? env->http : NULL},
        .session = env->session,
    };
    int rc = command->handler(&call);
    *close_connection = call.close_connection;
    if (rc == 0)
        return 0;
    out->size = mark;
    if (rc == COMMAND_DEFERRED)
        return rc; /* the server answers later */
    rpc_pack_error(&pk, envelope->msgid, rc, error);
    return rc;
}

static int check_command(const dispatch_env_t *env, const command_t *command,
                         const rpc_envelope_t *envelope, allot_error_detail_t *error)
{
    if (command == NULL) {
        allot_echo_t method;
        return allot_error_set(error, ALLOT_EUNKNOWN_METHOD, NULL, "unknown method '%s'",
                               allot_str_echo(envelope->method, &method));
    }
    if (env->auth_required && !(command->flags & COMMAND_NOAUTH) &&
        (env->session == NULL || !env->session->authenticated))
        return allot_error_set(error, ALLOT_EUNAUTHENTICATED, NULL,
                               "call auth {token} first; only ping and auth are allowed before");
    int rc = args_check_keys(envelope->params, command->allowed_keys, "params", error);
    if (rc != 0)
        return rc;
    if ((command->flags & COMMAND_WRITE) && !env->writes_allowed)
        return allot_error_set(error, env->writes_refused_error, NULL,
                               "writes are refused for now: %s; reads are still served",
                               env->writes_refused_error == ALLOT_EOVERLOADED
                                   ? "the write-ahead log is saturated"
                                   : "the write-ahead log cannot allocate disk space");
    return 0;
}

void dispatch_object(const dispatch_env_t *env, const msgpack_object *object,
                     msgpack_sbuffer *out, dispatch_outcome_t *outcome)
{
    memset(outcome, 0, sizeof(*outcome));
    outcome->command_index = SIZE_MAX;
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    rpc_envelope_t envelope;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, pack_sbuffer_write);
    size_t mark = out->size;

    int rc = rpc_envelope_parse(object, &envelope, &error);
    if (rc != 0) {
        outcome->close = true;
    } else if ((rc = rpc_params_check(object, &envelope, &error)) == 0) {
        const command_t *command = command_lookup(envelope.method.ptr, envelope.method.len);
        if (command != NULL)
            outcome->command_index = command_index(command);
        rc = check_command(env, command, &envelope, &error);
        if (rc == 0) {
            outcome->write = (command->flags & COMMAND_WRITE) != 0;
            rc = run_handler(env, command, &envelope, out, &error, &outcome->close);
            outcome->deferred = rc == COMMAND_DEFERRED;
            if (outcome->deferred)
                rc = 0;
        }
    }
    outcome->error = rc;
    if (rc != 0 && envelope.has_msgid && out->size == mark)
        rpc_pack_error(&pk, envelope.msgid, rc, &error);
    if (rc != 0 && envelope.msgid_out_of_range != NULL) {
        rpc_pack_error_msgid_object(&pk, envelope.msgid_out_of_range, rc, &error);
        outcome->error = rc;
        outcome->replied = true;
        return; /* answered, then closed (outcome->close) */
    }
    if (envelope.type == RPC_NOTIFICATION || !envelope.has_msgid)
        out->size = mark; /* notifications are never answered */
    outcome->replied = out->size > mark;
}
