/* decode.h - a request's bytes to its msgpack_object tree in one pass: framing and decoding
 * together, for the common case of a whole request already in the read buffer.
 *
 * Contract: decode_request(data, len, bytes_max, zone, &object, &frame_bytes) walks the bytes at
 * data[0, len) once, item by item, writing each item's msgpack_object as it reads its header.
 *   - DECODE_COMPLETE: data starts with one whole request that frame_scan (client/frame.h), from
 *     a fresh scanner with the same bytes_max, finds complete with the same *frame_bytes, and
 *     *object is what msgpack_unpack of those bytes gives: the same types and values; strings,
 *     bins and exts point at the same bytes of data, which must outlive the object (an empty
 *     one's pointer is valid but unspecified, as an empty container's). Containers live in zone,
 *     which the caller clears when done with the object.
 *   - DECODE_UNDECIDED: anything else: the request is not complete in len bytes, is over
 *     bytes_max or within ALLOT_REQUEST_DEPTH_MAX bytes of it (the framer, the one judge of the
 *     limit, decides those, so that the two cannot disagree at its edge), is nested deeper than
 *     ALLOT_REQUEST_DEPTH_MAX, is not an envelope (an array of 3 or 4), or is not MessagePack.
 *     Nothing is said about why: the caller runs frame_scan, which keeps its position for a
 *     partial request and names the error of a bad one, then msgpack_unpack, so every limit and
 *     every error reply stays the framer's. The zone may hold allocations of the attempt: clear
 *     it.
 * A container is allocated only when each of its declared elements (at least one byte each) fits
 * in the bytes left, so a declared count cannot make it allocate more than
 * sizeof(msgpack_object_kv) per byte of data. Iterative (an explicit stack of
 * ALLOT_REQUEST_DEPTH_MAX levels), no state between calls, no allocation outside zone. Used by
 * net/connection.c; tests/unit/test_net_decode.c holds it to frame_scan and msgpack_unpack on
 * every input it tries, and so does the request fuzzer (tests/fuzz/fuzz_request.c).
 */
#ifndef ALLOT_NET_DECODE_H
#define ALLOT_NET_DECODE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

typedef enum decode_status {
    DECODE_COMPLETE = 0,
    DECODE_UNDECIDED = 1,
} decode_status_t;

decode_status_t decode_request(const uint8_t *data, size_t len, size_t bytes_max,
                               msgpack_zone *zone, msgpack_object *object, size_t *frame_bytes);

/* What decode_request_envelope found: the request's length, and what it checked of the
 * envelope on the way (one result, so the hot call passes its arguments in registers). */
typedef struct decode_result {
    size_t frame_bytes;      /* DECODE_COMPLETE: decode_request's *frame_bytes */
    bool checked;            /* envelope is valid (DECODE_COMPLETE only) */
    rpc_envelope_t envelope; /* when checked: see decode_request_envelope */
} decode_result_t;

/* decode_request, and what it checked of the envelope on the way (the dispatcher's, so that a
 * request's head is not checked twice): with DECODE_COMPLETE and result->checked,
 * result->envelope is what rpc_request_read (net/rpc.h) gives for *object with both results 0
 * (a request: type, has_msgid, msgid and method), except that its params are NULL when they are
 * still to be checked (rpc_params_check). checked false: nothing is said, rpc_request_read
 * decides. The head is checked in the formats request_head_read reads (decode.c); params only
 * when they are [] or [{}]. */
decode_status_t decode_request_envelope(const uint8_t *data, size_t len, size_t bytes_max,
                                        msgpack_zone *zone, msgpack_object *object,
                                        decode_result_t *result);

#endif
