/* json_msgpack.h - JSON text <-> MessagePack conversion for the CLI, tests and tools.
 *
 * Contract:
 *   - json_msgpack_from_text parses JSON text (jansson) and packs it as MessagePack:
 *     integers stay integers (int64 range; jansson rejects larger ones with a clear error),
 *     reals become float64, objects become maps (keys in text order), arrays, strings (may hold
 *     \u0000), true/false/null. Duplicate keys are rejected.
 *   - json_msgpack_to_text renders a msgpack_object as JSON text (exact for the whole int64 and
 *     uint64 range): float32/float64 keep a '.' or exponent so they read back as reals, NaN and
 *     infinities become null, str bytes that are not valid UTF-8 become U+FFFD, bin becomes a
 *     base64 string, ext becomes {"ext_type": T, "base64": "..."}, and a map key that is not a
 *     str is stringified (numbers, true/false/null as their JSON text; containers, bin and ext
 *     as "<array>", "<map>", "<bin>", "<ext>").
 *   - Both directions are iterative (no recursion) and refuse nesting deeper than
 *     JSON_MSGPACK_DEPTH_MAX arrays/maps. Neither ever crashes on hostile input: every failure is
 *     a negative ALLOT_E* code plus a message written to err (when err is not NULL).
 * Errors: ALLOT_EINVALID_ARGUMENT (bad JSON, too deep, NULL input), ALLOT_ENOMEM.
 * Stateless; safe from any thread. Part of liballot (links jansson and msgpack-c).
 */
#ifndef ALLOT_CLIENT_JSON_MSGPACK_H
#define ALLOT_CLIENT_JSON_MSGPACK_H

#include <msgpack.h>
#include <stddef.h>

#include "core/limits.h" /* JSON_MSGPACK_DEPTH_MAX: the deepest nesting converted */

/* Bytes of an error message buffer that always holds a full message. */
#define JSON_MSGPACK_ERROR_BYTES 256

enum json_msgpack_flags {
    JSON_MSGPACK_COMPACT = 0,     /* one line, no spaces: {"a":1,"b":[1,2]} */
    JSON_MSGPACK_PRETTY = 1 << 0, /* two-space indentation, "key": value */
};

/* Parse `len` bytes of JSON text (any JSON value) and append its MessagePack encoding to `out`
 * (an initialized msgpack_sbuffer). On failure `out` may hold a partial encoding (the caller
 * clears it); err receives e.g. "invalid JSON at line 1, column 7: ...". */
int json_msgpack_from_text(const char *json, size_t len, msgpack_sbuffer *out, char *err,
                           size_t err_bytes);

/* Render `object` as NUL-terminated JSON text in a malloc'ed string (caller frees) stored in
 * *text_out; *text_bytes_out (may be NULL) receives its length. Flags: JSON_MSGPACK_*. */
int json_msgpack_to_text(const msgpack_object *object, unsigned flags, char **text_out,
                         size_t *text_bytes_out, char *err, size_t err_bytes);

#endif
