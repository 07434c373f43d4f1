/* msgpack_request.h - building MessagePack-RPC requests by hand, for tests.
 *
 * Contract: test_pack_str packs a NUL-terminated string as a MessagePack str. test_pack_head
 * packs a request's head, [0, msgid, method, [{ ... — the type, msgid, method and a params
 * array of one map of `pairs` pairs — whose pairs the caller packs next (PROTOCOL.md, the
 * envelope). Header only; used by tests that write requests byte by byte rather than through
 * the client library (test_net_peek.c, test_lookahead.c).
 */
#ifndef ALLOT_TESTS_MSGPACK_REQUEST_H
#define ALLOT_TESTS_MSGPACK_REQUEST_H

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

static inline void test_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* [0, msgid, method, [{<pairs follow>}]] */
static inline void test_pack_head(msgpack_packer *pk, uint32_t msgid, const char *method,
                                  uint32_t pairs)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, 0);
    msgpack_pack_uint32(pk, msgid);
    test_pack_str(pk, method);
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, pairs);
}

#endif
