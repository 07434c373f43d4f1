/* rpc.h - the MessagePack-RPC envelope: decoding requests, packing responses.
 *
 * Contract: rpc_envelope_parse checks a decoded top-level object against docs/protocol.md:
 *   request      [0, msgid (uint32), method (str), params]
 *   notification [2, method (str), params]
 * and reports, separately, whether the msgid could be read (so the caller can answer before
 * closing) and whether the params have the required shape (an array holding exactly one map,
 * an error that is answered but does not close the connection). Generic clients send `[]` for
 * a call without arguments: it is taken as [{}]. A request whose msgid is an integer outside
 * uint32 is invalid, but answered (with that msgid as sent) before the close. Responses are
 * [1, msgid, error, result] with error nil or {"code", "message", ...details}.
 * No state; no allocation beyond the packer's buffer. The checks are inline (the end of this
 * header; rpc__ names are this module's own): the dispatcher runs them for every request, the
 * envelope's only when the decoder has not checked it already (net/decode.h,
 * decode_request_envelope, which must say what they say), and a call into net/rpc.c with its saved
 * registers was a third of their cost.
 */
#ifndef ALLOT_NET_RPC_H
#define ALLOT_NET_RPC_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "pack.h"

enum rpc_type { RPC_REQUEST = 0, RPC_RESPONSE = 1, RPC_NOTIFICATION = 2 };

typedef struct rpc_envelope {
    int type;                     /* RPC_REQUEST or RPC_NOTIFICATION when valid */
    bool has_msgid;               /* msgid could be read (an error reply is possible) */
    uint32_t msgid;               /* requests only */
    allot_str_t method;           /* valid when the envelope is valid */
    const msgpack_object *params; /* the single params map when params_valid */
    /* a request's msgid that is an integer but not a uint32 (NULL otherwise): the error reply
     * echoes it as sent (rpc_pack_error_msgid_object) */
    const msgpack_object *msgid_out_of_range;
} rpc_envelope_t;

/* 0: the envelope is valid (method and type usable; params may still be wrong, see below).
 * ALLOT_EINVALID_ARGUMENT: not a MessagePack-RPC request/notification; error explains; the
 * connection is to be closed after an error reply when has_msgid. */
static inline int rpc_envelope_parse(const msgpack_object *object, rpc_envelope_t *envelope,
                                     allot_error_detail_t *error);

/* 0 when params is [map] (or [], taken as [{}]) with at most ALLOT_PARAMS_KEYS_MAX string keys;
 * else INVALID_ARGUMENT (or TOO_LARGE) with error filled. Sets envelope->params. */
static inline int rpc_params_check(const msgpack_object *object, rpc_envelope_t *envelope,
                                   allot_error_detail_t *error);

/* rpc_envelope_parse and, when the envelope is valid, rpc_params_check, in one call (the
 * dispatcher's, for every request the decoder has not checked; inline, below): returns
 * rpc_envelope_parse's result; *params_error is rpc_params_check's (0 when it was not asked). */
static inline int rpc_request_read(const msgpack_object *object, rpc_envelope_t *envelope,
                                   int *params_error, allot_error_detail_t *error);

/* The params map of a call without arguments, for a decoder that has read its params array as
 * [] or [{}] (net/decode.c): what rpc_params_check sets envelope->params to (inline, below). */
static inline const msgpack_object *rpc_params_without_arguments(const msgpack_object *array);

/* Pack [1, msgid, nil, <result follows>]: the caller packs the result next (inline, below). */
static inline void rpc_pack_result_header(msgpack_packer *pk, uint32_t msgid);

/* Pack [1, msgid, {"code", "message", details...}, nil]. */
void rpc_pack_error(msgpack_packer *pk, uint32_t msgid, int error,
                    const allot_error_detail_t *detail);
/* The same with the msgid object as the client sent it (an integer outside uint32). */
void rpc_pack_error_msgid_object(msgpack_packer *pk, const msgpack_object *msgid, int error,
                                 const allot_error_detail_t *detail);

/* ---- the checks, inline: every request passes them (net/rpc.c has their failures) ---------- */

__attribute__((cold)) int rpc__envelope_fail(allot_error_detail_t *error, const char *what);
/* map NULL: params are not [map]; else too many keys, or a key that is not a string */
__attribute__((cold)) int rpc__params_fail(allot_error_detail_t *error, const msgpack_object *map);
extern const msgpack_object rpc__no_params; /* an empty map: what [] stands for */

static inline bool rpc__u32(const msgpack_object *o, uint32_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
        return false;
    *out = (uint32_t)o->via.u64;
    return true;
}

static inline int rpc__method_read(const msgpack_object *o, rpc_envelope_t *envelope,
                                   allot_error_detail_t *error)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return rpc__envelope_fail(error, "method must be a string");
    if (o->via.str.size == 0 || o->via.str.size > ALLOT_METHOD_BYTES_MAX)
        return rpc__envelope_fail(error, "method must be 1..64 bytes");
    envelope->method = (allot_str_t){o->via.str.ptr, o->via.str.size};
    return 0;
}

static inline int rpc_envelope_parse(const msgpack_object *object, rpc_envelope_t *envelope,
                                     allot_error_detail_t *error)
{
    *envelope = (rpc_envelope_t){0};
    if (object->type != MSGPACK_OBJECT_ARRAY)
        return rpc__envelope_fail(error, "expected an array");
    const msgpack_object_array *a = &object->via.array;
    if (a->size < 1 || a->ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return rpc__envelope_fail(error, "first element must be the message type 0 or 2");
    uint64_t type = a->ptr[0].via.u64;
    if (type == RPC_REQUEST && a->size == 4) {
        if (!rpc__u32(&a->ptr[1], &envelope->msgid)) {
            /* an integer out of range can still be echoed, so the client learns why */
            if (a->ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                a->ptr[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                envelope->msgid_out_of_range = &a->ptr[1];
            return rpc__envelope_fail(error, "msgid must be an unsigned 32-bit integer");
        }
        envelope->has_msgid = true;
        envelope->type = RPC_REQUEST;
        return rpc__method_read(&a->ptr[2], envelope, error);
    }
    if (type == RPC_NOTIFICATION && a->size == 3) {
        envelope->type = RPC_NOTIFICATION;
        return rpc__method_read(&a->ptr[1], envelope, error);
    }
    if (type == RPC_REQUEST || type == RPC_NOTIFICATION)
        return rpc__envelope_fail(error, "wrong number of elements");
    return rpc__envelope_fail(error, "message type must be 0 (request) or 2 (notification)");
}

static inline int rpc_params_check(const msgpack_object *object, rpc_envelope_t *envelope,
                                   allot_error_detail_t *error)
{
    const msgpack_object_array *a = &object->via.array;
    const msgpack_object *params = &a->ptr[a->size - 1];
    if (params->type == MSGPACK_OBJECT_ARRAY && params->via.array.size == 0) {
        /* generic clients (msgpack-rpc-lite, pynvim) send [] for a call without arguments */
        envelope->params = &rpc__no_params;
        return 0;
    }
    if (params->type != MSGPACK_OBJECT_ARRAY || params->via.array.size != 1 ||
        params->via.array.ptr[0].type != MSGPACK_OBJECT_MAP)
        return rpc__params_fail(error, NULL);
    const msgpack_object *map = &params->via.array.ptr[0];
    if (map->via.map.size > ALLOT_PARAMS_KEYS_MAX)
        return rpc__params_fail(error, map);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        if (map->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
            return rpc__params_fail(error, map); /* names the first fault: the count, else a key */
    }
    envelope->params = map;
    return 0;
}

static inline const msgpack_object *rpc_params_without_arguments(const msgpack_object *array)
{
    return array->via.array.size == 0 ? &rpc__no_params : array->via.array.ptr;
}

static inline int rpc_request_read(const msgpack_object *object, rpc_envelope_t *envelope,
                                   int *params_error, allot_error_detail_t *error)
{
    *params_error = 0;
    int rc = rpc_envelope_parse(object, envelope, error);
    if (rc == 0)
        *params_error = rpc_params_check(object, envelope, error);
    return rc;
}

/* One write of the header's 4-8 bytes (the bytes msgpack_pack_array(4), _uint32(1),
 * _uint32(msgid) and _nil give), not four: every reply starts with it. */
static inline void rpc_pack_result_header(msgpack_packer *pk, uint32_t msgid)
{
    char header[8] = {(char)0x94, (char)RPC_RESPONSE};
    size_t len = 2;
    if (msgid < 0x80) {
        header[len++] = (char)msgid;
    } else if (msgid <= UINT8_MAX) {
        header[len++] = (char)0xcc;
        header[len++] = (char)msgid;
    } else if (msgid <= UINT16_MAX) {
        header[len++] = (char)0xcd;
        header[len++] = (char)(msgid >> 8);
        header[len++] = (char)msgid;
    } else {
        header[len++] = (char)0xce;
        for (int shift = 24; shift >= 0; shift -= 8)
            header[len++] = (char)(msgid >> shift);
    }
    header[len++] = (char)0xc0;
    pack_bytes_within_8(pk, header, len);
}

#endif
