/* frame.h - finds where one MessagePack object ends in a byte stream, without allocating: the one
 * MessagePack header scanner of the client and the server. It lives in the client library
 * (liballot) and is used by the client (replies) and the server (requests cut by a read,
 * net/connection.c), which links liballot for it alone; the bench sizes replies with its own flat
 * walk (bench/wire.c), which bench_test_wire holds to this scanner. libc and core/limits.h only.
 *
 * Contract: the server reads requests as a plain stream of MessagePack objects. Before any
 * object is handed to msgpack-c (which allocates memory in proportion to the counts it reads),
 * frame_scan walks the bytes and decides, item by item, whether a complete object is present:
 *   - FRAME_COMPLETE: bytes [0, *frame_bytes) hold one whole object;
 *   - FRAME_NEED_MORE: the object is not complete yet (resumable: call again with more bytes);
 *   - FRAME_TOO_LARGE: the object cannot fit in bytes_max (a declared string length or element
 *     count, each element taking at least one byte, already exceeds what is left);
 *   - FRAME_TOO_DEEP: arrays/maps nested deeper than the scanner's depth limit
 *     (ALLOT_REQUEST_DEPTH_MAX for requests, ALLOT_MSGPACK_DEPTH_MAX for any object);
 *   - FRAME_INVALID: a byte that is not MessagePack (0xc1), or, for an envelope, a top-level
 *     object that cannot be a MessagePack-RPC message (only an array of 3 or 4 elements can).
 * The scanner keeps its position in frame_scanner_t between calls, so a request arriving one
 * byte at a time costs O(bytes), not O(bytes^2). No state outside the scanner; no allocation.
 */
#ifndef ALLOT_CLIENT_FRAME_H
#define ALLOT_CLIENT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

typedef enum frame_status {
    FRAME_COMPLETE = 0,
    FRAME_NEED_MORE = 1,
    FRAME_TOO_LARGE = -1,
    FRAME_TOO_DEEP = -2,
    FRAME_INVALID = -3,
} frame_status_t;

typedef struct frame_scanner {
    size_t offset;                                   /* bytes of this object accepted so far */
    uint32_t depth;                                  /* open containers */
    uint32_t depth_max;                              /* deepest nesting accepted */
    int envelope;                                    /* the object must be an RPC envelope */
    uint64_t remaining[ALLOT_MSGPACK_DEPTH_MAX + 1]; /* items left in each open container */
    uint64_t items_owed;                             /* sum of remaining[]: bytes still needed */
} frame_scanner_t;

/* Reset before scanning a new request: an envelope, nested at most ALLOT_REQUEST_DEPTH_MAX. */
void frame_scanner_reset(frame_scanner_t *scanner);
/* Reset before scanning a new object of any kind (a reply, a value inside one), nested at most
 * ALLOT_MSGPACK_DEPTH_MAX. */
void frame_scanner_reset_object(frame_scanner_t *scanner);

/* Scan data[0, len) (the bytes of the current object received so far, always from its first
 * byte); bytes_max bounds the whole object. On FRAME_COMPLETE, *frame_bytes is its length. */
frame_status_t frame_scan(frame_scanner_t *scanner, const uint8_t *data, size_t len,
                          size_t bytes_max, size_t *frame_bytes);

/* One-shot: the size of the whole object (any kind) at data[0, len): > 0, 0 when more bytes
 * are needed, or a negative frame_status_t (FRAME_INVALID, FRAME_TOO_DEEP). */
long frame_object_bytes(const uint8_t *data, size_t len);

#endif
