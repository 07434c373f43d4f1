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
 * No state; no allocation beyond the packer's buffer.
 */
#ifndef ALLOT_NET_RPC_H
#define ALLOT_NET_RPC_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"

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
int rpc_envelope_parse(const msgpack_object *object, rpc_envelope_t *envelope,
                       allot_error_detail_t *error);

/* 0 when params is [map] (or [], taken as [{}]) with at most ALLOT_PARAMS_KEYS_MAX string keys;
 * else INVALID_ARGUMENT (or TOO_LARGE) with error filled. Sets envelope->params. */
int rpc_params_check(const msgpack_object *object, rpc_envelope_t *envelope,
                     allot_error_detail_t *error);

/* rpc_envelope_parse and, when the envelope is valid, rpc_params_check, in one call (the
 * dispatcher's, for every request): returns rpc_envelope_parse's result; *params_error is
 * rpc_params_check's (0 when it was not asked). */
int rpc_request_read(const msgpack_object *object, rpc_envelope_t *envelope, int *params_error,
                     allot_error_detail_t *error);

/* Pack [1, msgid, nil, <result follows>]: the caller packs the result next. */
void rpc_pack_result_header(msgpack_packer *pk, uint32_t msgid);

/* Pack [1, msgid, {"code", "message", details...}, nil]. */
void rpc_pack_error(msgpack_packer *pk, uint32_t msgid, int error,
                    const allot_error_detail_t *detail);
/* The same with the msgid object as the client sent it (an integer outside uint32). */
void rpc_pack_error_msgid_object(msgpack_packer *pk, const msgpack_object *msgid, int error,
                                 const allot_error_detail_t *detail);

#endif
