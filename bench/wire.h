/* wire.h - the bench's MessagePack-RPC fast path: measure and scan replies without decoding.
 *
 * Contract:
 *   - wire_object_bytes: the size of the one MessagePack object at the start of `bytes`
 *     (> 0), 0 when more bytes are needed, -1 when the bytes are not MessagePack (0xc1) or nest
 *     deeper than ALLOT_MSGPACK_DEPTH_MAX: for every input the answer of the server's scanner,
 *     frame_object_bytes (client/frame.h), from one flat walk that keeps no resumable state
 *     (and no stack of open containers while the object has at most that many).
 *   - wire_reply_scan: one complete response [1, msgid, error, result] at the start of bytes.
 *     Returns its size (> 0), 0 when incomplete, -1 when it is not a response (the message says
 *     why). A success is read in one pass, its result sized from its first byte when that says
 *     (nil, bool, numbers, fixstr), by the walk otherwise. On an error reply, `code` holds the
 *     error map's "code" (truncated), or "ERROR".
 */
#ifndef ALLOT_BENCH_WIRE_H
#define ALLOT_BENCH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_CODE_BYTES 32

typedef struct wire_reply {
    uint32_t msgid;
    bool is_error;
    char code[WIRE_CODE_BYTES];
    const uint8_t *result; /* the result object's bytes (nil on error) */
    size_t result_bytes;
} wire_reply_t;

long wire_object_bytes(const uint8_t *bytes, size_t len);
long wire_reply_scan(const uint8_t *bytes, size_t len, wire_reply_t *reply, const char **why);

#endif
