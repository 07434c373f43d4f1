/* args_typed.h - the typed arguments of the hot methods (reserve, avail.get, order.create), read
 * from a request's params map in one pass, or with the getters of net/args.h.
 *
 * Contract: for each method, two readers fill the same typed arguments:
 *   - args_<method>_get: the generic path. It runs the args.h getters in the handler's order on
 *     a params map whose keys the dispatcher already checked (args_check_keys_also) and returns
 *     0, or the first fault's ALLOT_E* code with error->field and error->message set. Every
 *     error reply of these methods comes from here.
 *   - args_<method>_scan: the fast path. It walks the params map once, checking unknown and
 *     duplicate keys, types, ranges and limits as it goes, and returns true with *out filled
 *     exactly as the key check plus args_<method>_get would fill it, or false on any fault at
 *     all (then *out is unspecified): it never makes an error itself, the caller hands the
 *     request to the key check and the generic path, which name the fault. It accepts exactly
 *     the requests the generic path accepts, except that args_avail_scan declines any that
 *     names min_index or wait_ms (the dispatcher's read-wait keys: the generic path reads them).
 * Strings in *out point into the params' bytes, which must outlive *out; `address` points into
 * a loop-owned buffer valid until the next args_address / args_order_create_* call; `lines`,
 * `backorder` and `skus` point into *out itself (do not copy it). No allocation but the address
 * buffer; loop thread only. net/dispatch.c runs the scans, the handlers the getters;
 * tests/unit/test_net_args_typed.c and the request fuzzer hold each scan to its getters.
 */
#ifndef ALLOT_NET_ARGS_TYPED_H
#define ALLOT_NET_ARGS_TYPED_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/inventory.h"
#include "core/limits.h"
#include "core/order.h"
#include "core/reservation.h"

typedef struct args_reserve {
    allot_reserve_request_t request; /* .lines and .backorder point at the arrays below */
    allot_line_input_t lines[ALLOT_LINES_MAX];
    bool backorder[ALLOT_LINES_MAX];
} args_reserve_t;

typedef struct args_avail {
    allot_avail_request_t request;
    allot_str_t skus[ALLOT_AVAIL_SKUS_MAX];
    uint32_t sku_count; /* 1..ALLOT_AVAIL_SKUS_MAX */
    bool detail;
    bool promise;
} args_avail_t;

typedef struct args_order_create {
    allot_order_create_request_t request; /* .lines points at the array below */
    allot_line_input_t lines[ALLOT_LINES_MAX];
} args_order_create_t;

/* Room for whichever method a request names (the dispatcher keeps one). */
typedef union args_typed {
    args_reserve_t reserve;
    args_avail_t avail;
    args_order_create_t order_create;
} args_typed_t;

int args_reserve_get(const msgpack_object *params, args_reserve_t *out,
                     allot_error_detail_t *error);
bool args_reserve_scan(const msgpack_object *params, args_reserve_t *out);

int args_avail_get(const msgpack_object *params, args_avail_t *out, allot_error_detail_t *error);
bool args_avail_scan(const msgpack_object *params, args_avail_t *out);

int args_order_create_get(const msgpack_object *params, args_order_create_t *out,
                          allot_error_detail_t *error);
bool args_order_create_scan(const msgpack_object *params, args_order_create_t *out);

/* `address`: an optional map (nil = absent), kept as its packed bytes, at most
 * ALLOT_ORDER_ADDRESS_BYTES_MAX of them (absent: *out empty). Errors name "address". */
int args_address(const msgpack_object *params, allot_str_t *out, bool *present,
                 allot_error_detail_t *error);

#endif
