/* dispatch.c - the command table and the one dispatcher every request goes through. */
#include "dispatch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "args.h"
#include "args_typed.h"
#include "auth.h"
#include "pack.h"
#include "rpc.h"

/* Keys every read accepts beside its own (PROTOCOL.md, Cluster): answer once this node has
 * applied min_index, waiting at most wait_ms. */
static const char *const dispatch_read_keys[] = {"min_index", "wait_ms", NULL};

#define COMMAND(wire_name, handler, flags, ...)                                                    \
    static const char *const handler##_allowed_keys[] = {__VA_ARGS__ __VA_OPT__(, ) NULL};         \
    _Static_assert(sizeof(handler##_allowed_keys) / sizeof(char *) - 1 <= ARGS_ALLOWED_KEYS_MAX,   \
                   wire_name " names more keys than args_check_keys tracks");
#include "commands.def"
#undef COMMAND

static const command_t command_table[] = {
#define COMMAND(wire_name, handler, flags, ...)                                                    \
    {wire_name, sizeof(wire_name) - 1, handler, flags, handler##_allowed_keys},
#include "commands.def"
#undef COMMAND
};

#define COMMAND_COUNT (sizeof(command_table) / sizeof(command_table[0]))

/* The command table by method name: open addressing over COMMAND_SLOTS (a power of two, at
 * least twice the rows), each slot a row + 1 (0: empty), built once. A lookup hashes the name's
 * length and three of its bytes and compares one row, or a few, where a scan of the table
 * compared every row before the method's (avail.get is the 16th). */
#define COMMAND_SLOTS 128u
_Static_assert(2 * COMMAND_COUNT <= COMMAND_SLOTS && COMMAND_COUNT < UINT8_MAX,
               "the command slots hold every row, half empty at least");
static uint8_t command_slots[COMMAND_SLOTS];
static atomic_bool command_slots_built;
static pthread_once_t command_slots_once = PTHREAD_ONCE_INIT;

/* name_len >= 1 */
static inline uint32_t command_name_hash(const char *name, size_t name_len)
{
    const uint8_t *b = (const uint8_t *)name;
    return (uint32_t)(name_len * 13u + b[0] + b[name_len - 1] * 5u + b[name_len / 2] * 3u);
}

static void command_slots_build(void)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        uint32_t slot = command_name_hash(command_table[i].name, command_table[i].name_len);
        while (command_slots[slot % COMMAND_SLOTS] != 0)
            slot++;
        command_slots[slot % COMMAND_SLOTS] = (uint8_t)(i + 1);
    }
    atomic_store_explicit(&command_slots_built, true, memory_order_release);
}

/* a[0, len) == b[0, len): names of 4 to 16 bytes (all but four methods) by two overlapping loads
 * a side, where a memcmp call cost some 25 instructions a request */
static inline bool command_name_equal(const char *a, const char *b, size_t len)
{
    if (len >= 8 && len <= 16) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8);
        memcpy(&b0, b, 8);
        memcpy(&a1, a + len - 8, 8);
        memcpy(&b1, b + len - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (len >= 4 && len < 8) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4);
        memcpy(&b0, b, 4);
        memcpy(&a1, a + len - 4, 4);
        memcpy(&b1, b + len - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    return memcmp(a, b, len) == 0;
}

/* command_lookup, inlined into the dispatcher: the method's row, or SIZE_MAX when unknown */
static inline size_t command_find(const char *name, size_t name_len)
{
    if (name_len == 0)
        return SIZE_MAX;
    if (!atomic_load_explicit(&command_slots_built, memory_order_acquire))
        pthread_once(&command_slots_once, command_slots_build);
    for (uint32_t slot = command_name_hash(name, name_len);; slot++) {
        uint8_t row = command_slots[slot % COMMAND_SLOTS];
        if (row == 0)
            return SIZE_MAX;
        const command_t *c = &command_table[row - 1];
        /* lengths first: a method may contain NUL bytes, which strncmp would stop at */
        if (c->name_len == name_len && command_name_equal(c->name, name, name_len))
            return row - 1u;
    }
}

const command_t *command_lookup(const char *name, size_t name_len)
{
    size_t row = command_find(name, name_len);
    return row != SIZE_MAX ? &command_table[row] : NULL;
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

/* The hot methods' typed arguments, read in one pass by dispatch_args_scan (one request at a
 * time: the loop thread's). */
static args_typed_t dispatch_args;

/* For a hot method (net/args_typed.h), read params into dispatch_args in one pass, checking its
 * keys too: the typed arguments, or NULL when the method has none or the scan declined (then
 * the key check and the handler's getters name the fault). */
static const args_typed_t *dispatch_args_scan(const command_t *command,
                                              const msgpack_object *params)
{
    bool scanned = false;
    if (command->handler == handle_reserve)
        scanned = args_reserve_scan(params, &dispatch_args.reserve);
    else if (command->handler == handle_avail_get)
        scanned = args_avail_scan(params, &dispatch_args.avail);
    else if (command->handler == handle_order_create)
        scanned = args_order_create_scan(params, &dispatch_args.order_create);
    return scanned ? &dispatch_args : NULL;
}

/* Runs the handler; packs the result, or rolls the buffer back and packs the error. */
static int run_handler(const dispatch_env_t *env, const command_t *command,
                       const rpc_envelope_t *envelope, const args_typed_t *args,
                       msgpack_sbuffer *out, allot_error_detail_t *error, bool *close_connection)
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
        .args = args,
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

/* Why a WRITE is refused: a follower names the leader (nil during an election). */
static int writes_refused(const dispatch_writes_t *writes, allot_error_detail_t *error)
{
    if (writes->refused_error == ALLOT_ENOT_LEADER) {
        error->leader = writes->leader_address;
        return allot_error_set(error, ALLOT_ENOT_LEADER, NULL,
                               "this node is a follower: send writes to the leader (%s); reads "
                               "are served here",
                               writes->leader_address != NULL ? writes->leader_address
                                                              : "being elected, retry shortly");
    }
    const char *why = writes->refused_error == ALLOT_EOVERLOADED
                          ? "the write-ahead log is saturated"
                      : writes->leader_elected ? "a new leader is catching up with the group's log"
                                               : "the write-ahead log cannot allocate disk space";
    return allot_error_set(error, writes->refused_error, NULL,
                           "writes are refused for now: %s; reads are still served", why);
}

/* The WRITE gate, asked for WRITE commands only. */
static int writes_check(const dispatch_env_t *env, allot_error_detail_t *error)
{
    dispatch_writes_t writes = {.allowed = env->writes_allowed,
                                .refused_error = env->writes_refused_error,
                                .leader_address = env->leader_address,
                                .leader_elected = env->leader_elected};
    if (env->writes_check_cb != NULL)
        env->writes_check_cb(env, &writes);
    return writes.allowed ? 0 : writes_refused(&writes, error);
}

/* *args: the typed arguments when the one-pass scan read them (the keys are checked then). */
static int check_command(const dispatch_env_t *env, const command_t *command,
                         const rpc_envelope_t *envelope, const args_typed_t **args,
                         allot_error_detail_t *error)
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
    *args = dispatch_args_scan(command, envelope->params);
    /* no key at all (ping, `[]`): nothing to check */
    int rc = *args != NULL || envelope->params->via.map.size == 0
                 ? 0
                 : args_check_keys_also(envelope->params, command->allowed_keys,
                                        command->flags & COMMAND_WRITE ? NULL : dispatch_read_keys,
                                        "params", error);
    if (rc != 0)
        return rc;
    return command->flags & COMMAND_WRITE ? writes_check(env, error) : 0;
}

/* A read with min_index: 0 to run it now; DISPATCH_WAIT with outcome->wait_* set when this
 * node has not applied min_index yet (the caller keeps the request and dispatches it again);
 * UNAVAILABLE once the wait is over. */
static int read_wait_check(const dispatch_env_t *env, const rpc_envelope_t *envelope,
                           dispatch_outcome_t *outcome, allot_error_detail_t *error)
{
    int64_t min_index = 0, wait_ms = ALLOT_MIN_INDEX_WAIT_MS_DEFAULT;
    if (args_find(envelope->params, "min_index") == NULL)
        return 0; /* the common case: one key search */
    bool present = false, wait_present = false;
    int rc = args_int64(envelope->params, "min_index", 0, INT64_MAX, &min_index, &present, error);
    if (rc == 0)
        rc = args_int64(envelope->params, "wait_ms", 0, ALLOT_MIN_INDEX_WAIT_MS_MAX, &wait_ms,
                        &wait_present, error);
    if (rc != 0 || !present || (uint64_t)min_index <= env->applied_index)
        return rc;
    if (env->read_wait_over || wait_ms == 0)
        return allot_error_set(error, ALLOT_EUNAVAILABLE, "min_index",
                               "index %lld is not applied on this node yet (applied: %llu); "
                               "retry, or read on the leader",
                               (long long)min_index, (unsigned long long)env->applied_index);
    outcome->wait_index = (uint64_t)min_index;
    outcome->wait_ms = (uint32_t)wait_ms;
    return DISPATCH_WAIT;
}

void dispatch_object(const dispatch_env_t *env, const msgpack_object *object, msgpack_sbuffer *out,
                     dispatch_outcome_t *outcome)
{
    dispatch_request(env, object, NULL, out, outcome);
}

void dispatch_request(const dispatch_env_t *env, const msgpack_object *object,
                      rpc_envelope_t *checked, msgpack_sbuffer *out, dispatch_outcome_t *outcome)
{
    memset(outcome, 0, sizeof(*outcome));
    outcome->command_index = SIZE_MAX;
    allot_error_detail_t error;
    allot_error_detail_clear(&error);
    rpc_envelope_t read;
    rpc_envelope_t *envelope = checked != NULL ? checked : &read;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, pack_sbuffer_write);
    size_t mark = out->size;

    int rc = 0, params_rc = 0;
    if (checked == NULL)
        rc = rpc_request_read(object, &read, &params_rc, &error);
    else if (checked->params == NULL)
        params_rc = rpc_params_check(object, checked, &error);
    if (rc != 0) {
        outcome->close = true;
    } else if ((rc = params_rc) == 0) {
        /* the row is the metrics' index: found here, not worked out from the row's address */
        outcome->command_index = command_find(envelope->method.ptr, envelope->method.len);
        const command_t *command =
            outcome->command_index != SIZE_MAX ? &command_table[outcome->command_index] : NULL;
        const args_typed_t *args = NULL;
        rc = check_command(env, command, envelope, &args, &error);
        /* a scanned read named neither min_index nor wait_ms (args_typed.h); nor did no key */
        if (rc == 0 && !(command->flags & COMMAND_WRITE) && args == NULL &&
            envelope->params->via.map.size > 0)
            rc = read_wait_check(env, envelope, outcome, &error);
        if (rc == DISPATCH_WAIT) {
            outcome->wait = true; /* nothing is packed: the caller dispatches it again */
            return;
        }
        if (rc == 0) {
            outcome->write = (command->flags & COMMAND_WRITE) != 0;
            rc = run_handler(env, command, envelope, args, out, &error, &outcome->close);
            outcome->deferred = rc == COMMAND_DEFERRED;
            if (outcome->deferred)
                rc = 0;
        }
    }
    outcome->error = rc;
    if (rc != 0 && envelope->has_msgid && out->size == mark)
        rpc_pack_error(&pk, envelope->msgid, rc, &error);
    if (rc != 0 && envelope->msgid_out_of_range != NULL) {
        rpc_pack_error_msgid_object(&pk, envelope->msgid_out_of_range, rc, &error);
        outcome->error = rc;
        outcome->replied = true;
        return; /* answered, then closed (outcome->close) */
    }
    if (envelope->type == RPC_NOTIFICATION || !envelope->has_msgid)
        out->size = mark; /* notifications are never answered */
    outcome->replied = out->size > mark;
}
