/* args.h - typed, validated access to a request's named arguments.
 *
 * Contract: each getter reads one key of a msgpack map. `present == NULL` means the key is
 * required. On success it returns 0 (and sets *present when given). On a missing required key,
 * a wrong type or an out-of-range value it returns ALLOT_EINVALID_ARGUMENT (or ALLOT_ETOO_LARGE
 * for counts over a limit) with `error->field = key` and a message naming the field, and leaves
 * *out untouched. A nil value counts as absent. `key` must be a string literal (the error keeps
 * the pointer). Integers accept every msgpack int width; doubles accept float32, float64 and int.
 * Used by handlers in net/; no state.
 */
#ifndef ALLOT_NET_ARGS_H
#define ALLOT_NET_ARGS_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/limits.h"
#include "core/sourcing.h"

/* The value stored under key in map (NULL when absent). map must be MSGPACK_OBJECT_MAP. */
const msgpack_object *args_find(const msgpack_object *map, const char *key);

/* An id: a string of 1..ALLOT_ID_BYTES_MAX bytes of valid UTF-8. */
int args_id(const msgpack_object *map, const char *key, allot_str_t *out, bool *present,
            allot_error_detail_t *error);

/* Any UTF-8 string of at most bytes_max bytes. */
int args_str(const msgpack_object *map, const char *key, uint32_t bytes_max, allot_str_t *out,
             bool *present, allot_error_detail_t *error);

/* An integer in [min, max]. */
int args_int64(const msgpack_object *map, const char *key, int64_t min, int64_t max, int64_t *out,
               bool *present, allot_error_detail_t *error);

/* A number (float32, float64 or int) in [min, max]; NaN is refused. */
int args_double(const msgpack_object *map, const char *key, double min, double max, double *out,
                bool *present, allot_error_detail_t *error);
/* The value of v as a double when it is a number (float32, float64 or int); false for any other
 * type (NaN is returned as it is: range checks refuse it). args_double's and the typed scans'
 * one conversion. */
bool args_number_value(const msgpack_object *v, double *out);

int args_bool(const msgpack_object *map, const char *key, bool *out, bool *present,
              allot_error_detail_t *error);

/* An array of count_min..count_max elements (over count_max -> ALLOT_ETOO_LARGE). */
int args_array(const msgpack_object *map, const char *key, uint32_t count_min, uint32_t count_max,
               const msgpack_object_array **out, bool *present, allot_error_detail_t *error);

/* A map whose keys are all in allowed (NULL-terminated), each once (args_check_keys). */
int args_map(const msgpack_object *map, const char *key, const char *const *allowed,
             const msgpack_object **out, bool *present, allot_error_detail_t *error);

/* One of names (NULL-terminated); *out is the index. */
int args_enum(const msgpack_object *map, const char *key, const char *const *names, int *out,
              bool *present, allot_error_detail_t *error);

/* `lines`: 1..ALLOT_LINES_MAX maps {sku, qty} (no other keys, none twice; qty
 * 1..ALLOT_QUANTITY_MAX) into lines[] (room for ALLOT_LINES_MAX); *count is how many.
 * present == NULL: required. */
int args_lines(const msgpack_object *map, allot_line_input_t *lines, uint32_t *count, bool *present,
               allot_error_detail_t *error);
/* args_lines for reserve: each line may also have `backorder` (a boolean, default false) into
 * backorder[] (room for ALLOT_LINES_MAX). */
int args_reserve_lines(const msgpack_object *map, allot_line_input_t *lines, bool *backorder,
                       uint32_t *count, allot_error_detail_t *error);

/* `ship_to`: an optional map {lat: -90..90, lon: -180..180} (no other keys, none twice). */
int args_ship_to(const msgpack_object *map, bool *present, double *lat, double *lon,
                 allot_error_detail_t *error);

/* Check that every key of `map` (a map, or not -> INVALID_ARGUMENT) is in allowed (at most
 * ARGS_ALLOWED_KEYS_MAX names) and appears once: an unknown key -> INVALID_ARGUMENT with field
 * `field` (the map, e.g. "lines") and the key shown in the message (allot_str_echo); a key given
 * twice -> INVALID_ARGUMENT with field = that key ("duplicate key 'id' in 'params'"), so no
 * handler ever has to pick one of two values. One pass: O(keys x allowed), no allocation. */
int args_check_keys(const msgpack_object *map, const char *const *allowed, const char *field,
                    allot_error_detail_t *error);
/* The same with a second list `also` (NULL: none) of keys allowed too (the keys every read
 * takes, net/dispatch.c); a name in both counts once. */
int args_check_keys_also(const msgpack_object *map, const char *const *allowed,
                         const char *const *also, const char *field, allot_error_detail_t *error);

#endif
