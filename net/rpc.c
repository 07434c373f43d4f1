/* rpc.c - MessagePack-RPC envelope checks and response packing (see rpc.h). */
#include "rpc.h"

#include <string.h>

#include "core/errors.h"
#include "pack.h"

/* The checks' failures, out of line (rpc.h): the checks every request passes need no registers
 * saved for them. */
int rpc__envelope_fail(allot_error_detail_t *error, const char *what)
{
    return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, "envelope",
                           "not a MessagePack-RPC request: %s", what);
}

int rpc__params_fail(allot_error_detail_t *error, const msgpack_object *map)
{
    if (map == NULL)
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, "params",
                               "params must be an array holding exactly one map (or empty)");
    if (map->via.map.size > ALLOT_PARAMS_KEYS_MAX)
        return allot_error_set(error, ALLOT_ETOO_LARGE, "params",
                               "params map has %u keys, at most %d allowed", map->via.map.size,
                               ALLOT_PARAMS_KEYS_MAX);
    return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, "params", "params keys must be strings");
}

const msgpack_object rpc__no_params = {.type = MSGPACK_OBJECT_MAP};

static void pack_shortfalls(msgpack_packer *pk, const allot_error_detail_t *detail)
{
    pack_cstr(pk, "shortfalls");
    msgpack_pack_array(pk, detail->shortfall_count);
    for (uint32_t i = 0; i < detail->shortfall_count; i++) {
        const allot_shortfall_t *s = &detail->shortfalls[i];
        msgpack_pack_map(pk, 3);
        pack_key_str(pk, "sku", s->sku);
        pack_key_int(pk, "requested", s->requested);
        pack_key_int(pk, "available", s->available);
    }
}

static void pack_error_body(msgpack_packer *pk, int error, const allot_error_detail_t *detail);

void rpc_pack_error(msgpack_packer *pk, uint32_t msgid, int error,
                    const allot_error_detail_t *detail)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint32(pk, RPC_RESPONSE);
    msgpack_pack_uint32(pk, msgid);
    pack_error_body(pk, error, detail);
}

void rpc_pack_error_msgid_object(msgpack_packer *pk, const msgpack_object *msgid, int error,
                                 const allot_error_detail_t *detail)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint32(pk, RPC_RESPONSE);
    msgpack_pack_object(pk, *msgid);
    pack_error_body(pk, error, detail);
}

/* {"code", "message", details...}, nil: the error and result of a response. */
static void pack_error_body(msgpack_packer *pk, int error, const allot_error_detail_t *detail)
{
    const char *message = allot_error_message(error);
    if (detail != NULL && detail->message[0] != '\0')
        message = detail->message;
    bool has_field = detail != NULL && detail->field != NULL;
    bool has_state = detail != NULL && detail->state != NULL;
    bool has_shortfalls = error == ALLOT_EINSUFFICIENT_STOCK && detail != NULL;
    bool has_leader = error == ALLOT_ENOT_LEADER; /* always: nil during an election */
    bool has_oldest = error == ALLOT_EEXPIRED && detail != NULL && detail->has_oldest;
    bool has_limit = error == ALLOT_ELIMIT_EXCEEDED && detail != NULL;
    bool has_retry = error == ALLOT_EQUEUED && detail != NULL;
    msgpack_pack_map(pk, 2 + has_field + has_state + has_shortfalls + has_leader + has_oldest +
                             3 * has_limit + has_retry);
    pack_key_cstr(pk, "code", allot_error_code(error));
    pack_key_cstr(pk, "message", message);
    if (has_field)
        pack_key_cstr(pk, "field", detail->field);
    if (has_state)
        pack_key_cstr(pk, "state", detail->state);
    if (has_shortfalls)
        pack_shortfalls(pk, detail);
    if (has_leader) {
        pack_cstr(pk, "leader");
        if (detail != NULL && detail->leader != NULL)
            pack_cstr(pk, detail->leader);
        else
            msgpack_pack_nil(pk);
    }
    if (has_oldest)
        pack_key_int(pk, "oldest", (int64_t)detail->oldest);
    if (has_limit) {
        pack_key_str(pk, "sku", detail->limit_sku);
        pack_key_int(pk, "limit", detail->limit);
        pack_key_int(pk, "held", detail->held);
    }
    if (has_retry)
        pack_key_int(pk, "retry_after_ms", detail->retry_after_ms);
    msgpack_pack_nil(pk);
}
