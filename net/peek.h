/* peek.h - a glance at the whole requests ahead in a read batch, to start loading what they will
 * look up before they are dispatched.
 *
 * Contract: peek_request(data, len, &request) reads the request at the start of data[0, len)
 * without decoding it. True when it is a whole MessagePack-RPC request of the usual shape
 * ([0, msgid, method, params], the envelope a fixarray of 4) within its first
 * ALLOT_PEEK_REQUEST_BYTES_MAX bytes: request->bytes is its length, and request holds the
 * arguments its lookups start from: avail.get's skus; reserve's id and its first line's sku;
 * order.create's reservation and its first line's sku (other methods: none). False for anything
 * else: cut short, larger, another shape, not MessagePack, and an avail.get of more than
 * ALLOT_PEEK_SKUS_MAX skus (its handler loads a listing's SKUs ahead itself). It is a hint
 * and never more: the decoder and the framer (net/decode.h, client/frame.h) remain the only
 * judges of a request, and nothing peeked changes what is decoded, dispatched, replied or
 * refused, so the peek may disagree with them on hostile input (it does not check depth, key
 * types or UTF-8). It never reads outside data[0, len), allocates nothing, keeps no state; the
 * strings it returns point into data.
 *
 * peek_requests_prefetch(state, data, len) peeks up to ALLOT_PEEK_GROUP_REQUESTS whole requests
 * one after another from data[0, len) and starts loading what their lookups will touch (the hooks
 * of core/inventory.h and core/reservation.h), one stage over all of them before the next (index
 * slots, then records, then a SKU's positions), so that the cache misses of the group overlap
 * instead of each request waiting for its own in turn. Returns the bytes of the requests peeked
 * (0: the first one could not be). Loads only: the state is not changed. Called by
 * net/connection.c (input_dispatch) at the start of each group; tests/unit/test_net_peek.c, and
 * the request fuzzer (tests/fuzz/fuzz_request.c) runs it on every input.
 */
#ifndef ALLOT_NET_PEEK_H
#define ALLOT_NET_PEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/limits.h"

struct allot_state;

typedef struct peek_request {
    size_t bytes;                          /* the whole request's length */
    allot_str_t id;                        /* a reservation's id (len 0: none) */
    allot_str_t skus[ALLOT_PEEK_SKUS_MAX]; /* SKU ids, in the request's order */
    uint32_t sku_count;
} peek_request_t;

bool peek_request(const uint8_t *data, size_t len, peek_request_t *request);

size_t peek_requests_prefetch(const struct allot_state *state, const uint8_t *data, size_t len);

#endif
