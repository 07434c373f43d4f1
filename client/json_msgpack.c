/* json_msgpack.c - JSON text <-> MessagePack conversion (jansson in, hand-written writer out). */
#include "client/json_msgpack.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

static int error_format(char *err, size_t err_bytes, int error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int error_format(char *err, size_t err_bytes, int error, const char *fmt, ...)
{
    if (err != NULL && err_bytes > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_bytes, fmt, ap);
        va_end(ap);
    }
    return error;
}

/* ---- JSON -> MessagePack ------------------------------------------------------------------ */

typedef struct json_frame {
    json_t *container;
    size_t index; /* arrays: next element */
    void *iter;   /* objects: next member, NULL when done */
} json_frame_t;

/* Pack a scalar, or a container header (pushing a frame when it has members). */
static int json_value_pack(json_t *value, msgpack_packer *pk, json_frame_t *stack, size_t *depth)
{
    int rc = 0;
    switch (json_typeof(value)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        bool is_object = json_is_object(value);
        size_t n = is_object ? json_object_size(value) : json_array_size(value);
        if (n > UINT32_MAX)
            return ALLOT_ETOO_LARGE;
        rc = is_object ? msgpack_pack_map(pk, n) : msgpack_pack_array(pk, n);
        if (n > 0) {
            if (*depth >= JSON_MSGPACK_DEPTH_MAX)
                return ALLOT_EINVALID_ARGUMENT;
            stack[*depth] = (json_frame_t){value, 0, is_object ? json_object_iter(value) : NULL};
            (*depth)++;
        }
        break;
    }
    case JSON_STRING: {
        size_t n = json_string_length(value);
        rc = msgpack_pack_str(pk, n);
        rc |= msgpack_pack_str_body(pk, json_string_value(value), n);
        break;
    }
    case JSON_INTEGER:
        rc = msgpack_pack_int64(pk, (int64_t)json_integer_value(value));
        break;
    case JSON_REAL:
        rc = msgpack_pack_double(pk, json_real_value(value));
        break;
    case JSON_TRUE:
        rc = msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        rc = msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        rc = msgpack_pack_nil(pk);
        break;
    }
    return rc == 0 ? 0 : ALLOT_ENOMEM;
}

/* Walk a parsed JSON tree depth-first with an explicit stack. */
static int json_tree_pack(json_t *root, msgpack_packer *pk, char *err, size_t err_bytes)
{
    json_frame_t stack[JSON_MSGPACK_DEPTH_MAX];
    size_t depth = 0;
    int rc = json_value_pack(root, pk, stack, &depth);
    while (rc == 0 && depth > 0) {
        json_frame_t *frame = &stack[depth - 1];
        json_t *value;
        if (json_is_array(frame->container)) {
            if (frame->index == json_array_size(frame->container)) {
                depth--;
                continue;
            }
            value = json_array_get(frame->container, frame->index++);
        } else {
            if (frame->iter == NULL) {
                depth--;
                continue;
            }
            const char *key = json_object_iter_key(frame->iter);
            size_t key_len = json_object_iter_key_len(frame->iter);
            value = json_object_iter_value(frame->iter);
            frame->iter = json_object_iter_next(frame->container, frame->iter);
            if (msgpack_pack_str(pk, key_len) != 0 || msgpack_pack_str_body(pk, key, key_len) != 0)
                rc = ALLOT_ENOMEM;
        }
        if (rc == 0)
            rc = json_value_pack(value, pk, stack, &depth);
    }
    if (rc == ALLOT_EINVALID_ARGUMENT)
        return error_format(err, err_bytes, rc, "JSON nested deeper than %d arrays/objects",
                            JSON_MSGPACK_DEPTH_MAX);
    if (rc != 0)
        return error_format(err, err_bytes, rc, "%s", allot_error_message(rc));
    return 0;
}

int json_msgpack_from_text(const char *json, size_t len, msgpack_sbuffer *out, char *err,
                           size_t err_bytes)
{
    if (json == NULL || out == NULL)
        return error_format(err, err_bytes, ALLOT_EINVALID_ARGUMENT, "no JSON text given");
    json_error_t jerr;
    json_t *root =
        json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return error_format(err, err_bytes, ALLOT_EINVALID_ARGUMENT,
                            "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                            jerr.text);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = json_tree_pack(root, &pk, err, err_bytes);
    json_decref(root);
    return rc;
}

/* ---- MessagePack -> JSON text ------------------------------------------------------------- */

typedef struct text_buffer {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed: everything after is dropped */
} text_buffer_t;

static void text_append(text_buffer_t *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap == 0 ? 256 : t->cap;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = realloc(t->data, cap);
        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void text_append_cstr(text_buffer_t *t, const char *s)
{
    text_append(t, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes there are not one. */
static size_t utf8_sequence_bytes(const unsigned char *p, size_t n)
{
    unsigned char b = p[0];
    size_t len;
    uint32_t cp;
    if (b < 0x80)
        return 1;
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        cp = b & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Append s as a quoted JSON string; invalid UTF-8 bytes become U+FFFD. */
static void text_append_string(text_buffer_t *t, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    text_append(t, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        char escape[8];
        if (c == '"' || c == '\\') {
            escape[0] = '\\';
            escape[1] = (char)c;
            text_append(t, escape, 2);
            i++;
        } else if (c < 0x20) {
            const char *named = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
            if (named == NULL) {
                snprintf(escape, sizeof escape, "\\u%04x", c);
                named = escape;
            }
            text_append_cstr(t, named);
            i++;
        } else {
            size_t len = utf8_sequence_bytes(p + i, n - i);
            if (len == 0) {
                text_append_cstr(t, "\xef\xbf\xbd");
                i++;
            } else {
                text_append(t, s + i, len);
                i += len;
            }
        }
    }
    text_append(t, "\"", 1);
}

static void text_append_base64(text_buffer_t *t, const char *data, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)data;
    text_append(t, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char quad[4] = {alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63],
                        i + 1 < n ? alphabet[(v >> 6) & 63] : '=',
                        i + 2 < n ? alphabet[v & 63] : '='};
        text_append(t, quad, 4);
    }
    text_append(t, "\"", 1);
}

/* Shortest %g text that reads back as the same value; always looks like a real. */
static void text_append_real(text_buffer_t *t, double value, bool is_float32)
{
    char number[40];
    if (!isfinite(value)) {
        text_append_cstr(t, "null");
        return;
    }
    int digits_min = is_float32 ? 6 : 15;
    int digits_max = is_float32 ? 9 : 17;
    for (int digits = digits_min; digits <= digits_max; digits++) {
        snprintf(number, sizeof number, "%.*g", digits, value);
        bool exact =
            is_float32 ? strtof(number, NULL) == (float)value : strtod(number, NULL) == value;
        if (exact)
            break;
    }
    if (strpbrk(number, ".eE") == NULL)
        strncat(number, ".0", sizeof number - strlen(number) - 1);
    text_append_cstr(t, number);
}

/* Scalars as JSON text (bool, nil, numbers); false when the type is not one of those. */
static bool text_append_scalar(text_buffer_t *t, const msgpack_object *o)
{
    char number[32];
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        text_append_cstr(t, "null");
        return true;
    case MSGPACK_OBJECT_BOOLEAN:
        text_append_cstr(t, o->via.boolean ? "true" : "false");
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(number, sizeof number, "%" PRIu64, o->via.u64);
        text_append_cstr(t, number);
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(number, sizeof number, "%" PRId64, o->via.i64);
        text_append_cstr(t, number);
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        text_append_real(t, o->via.f64, o->type == MSGPACK_OBJECT_FLOAT32);
        return true;
    default:
        return false;
    }
}

static void text_append_key(text_buffer_t *t, const msgpack_object *key)
{
    if (key->type == MSGPACK_OBJECT_STR) {
        text_append_string(t, key->via.str.ptr, key->via.str.size);
        return;
    }
    text_buffer_t scalar = {0};
    const char *placeholder = key->type == MSGPACK_OBJECT_ARRAY ? "<array>"
                              : key->type == MSGPACK_OBJECT_MAP ? "<map>"
                              : key->type == MSGPACK_OBJECT_BIN ? "<bin>"
                                                                : "<ext>";
    if (text_append_scalar(&scalar, key) && !scalar.failed)
        placeholder = scalar.data;
    text_append_string(t, placeholder, strlen(placeholder));
    t->failed |= scalar.failed;
    free(scalar.data);
}

typedef struct object_frame {
    const msgpack_object *container;
    uint32_t index;
} object_frame_t;

static uint32_t object_size(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : o->via.map.size;
}

/* Write a scalar, an empty container, or a container's opening (pushing a frame). */
static int text_append_value(text_buffer_t *t, const msgpack_object *o, object_frame_t *stack,
                             size_t *depth)
{
    if (text_append_scalar(t, o))
        return 0;
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        text_append_string(t, o->via.str.ptr, o->via.str.size);
        return 0;
    case MSGPACK_OBJECT_BIN:
        text_append_base64(t, o->via.bin.ptr, o->via.bin.size);
        return 0;
    case MSGPACK_OBJECT_EXT: {
        char head[48];
        snprintf(head, sizeof head, "{\"ext_type\":%d,\"base64\":", (int)o->via.ext.type);
        text_append_cstr(t, head);
        text_append_base64(t, o->via.ext.ptr, o->via.ext.size);
        text_append_cstr(t, "}");
        return 0;
    }
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP: {
        bool is_map = o->type == MSGPACK_OBJECT_MAP;
        if (object_size(o) == 0) {
            text_append_cstr(t, is_map ? "{}" : "[]");
            return 0;
        }
        if (*depth >= JSON_MSGPACK_DEPTH_MAX)
            return ALLOT_EINVALID_ARGUMENT;
        text_append_cstr(t, is_map ? "{" : "[");
        stack[(*depth)++] = (object_frame_t){o, 0};
        return 0;
    }
    default:
        text_append_cstr(t, "null"); /* unknown type from a hand-built object */
        return 0;
    }
}

static void text_append_newline(text_buffer_t *t, unsigned flags, size_t depth)
{
    static const char spaces[] = "                                ";
    if ((flags & JSON_MSGPACK_PRETTY) == 0)
        return;
    text_append(t, "\n", 1);
    for (size_t i = 0; i < depth; i++)
        text_append(t, spaces, 2);
}

static int object_tree_write(text_buffer_t *t, const msgpack_object *root, unsigned flags)
{
    object_frame_t stack[JSON_MSGPACK_DEPTH_MAX];
    size_t depth = 0;
    int rc = text_append_value(t, root, stack, &depth);
    while (rc == 0 && depth > 0 && !t->failed) {
        object_frame_t *frame = &stack[depth - 1];
        const msgpack_object *container = frame->container;
        bool is_map = container->type == MSGPACK_OBJECT_MAP;
        if (frame->index == object_size(container)) {
            depth--;
            text_append_newline(t, flags, depth);
            text_append_cstr(t, is_map ? "}" : "]");
            continue;
        }
        if (frame->index > 0)
            text_append(t, ",", 1);
        text_append_newline(t, flags, depth);
        const msgpack_object *value;
        if (is_map) {
            const msgpack_object_kv *kv = &container->via.map.ptr[frame->index];
            text_append_key(t, &kv->key);
            text_append_cstr(t, (flags & JSON_MSGPACK_PRETTY) ? ": " : ":");
            value = &kv->val;
        } else {
            value = &container->via.array.ptr[frame->index];
        }
        frame->index++;
        rc = text_append_value(t, value, stack, &depth);
    }
    return rc;
}

int json_msgpack_to_text(const msgpack_object *object, unsigned flags, char **text_out,
                         size_t *text_bytes_out, char *err, size_t err_bytes)
{
    if (object == NULL || text_out == NULL)
        return error_format(err, err_bytes, ALLOT_EINVALID_ARGUMENT, "no object given");
    *text_out = NULL;
    text_buffer_t t = {0};
    int rc = object_tree_write(&t, object, flags);
    if (rc == 0 && t.failed)
        rc = ALLOT_ENOMEM;
    if (rc == 0 && t.data == NULL)
        rc = ALLOT_ENOMEM;
    if (rc != 0) {
        free(t.data);
        if (rc == ALLOT_EINVALID_ARGUMENT)
            return error_format(err, err_bytes, rc, "object nested deeper than %d arrays/maps",
                                JSON_MSGPACK_DEPTH_MAX);
        return error_format(err, err_bytes, rc, "%s", allot_error_message(rc));
    }
    *text_out = t.data;
    if (text_bytes_out != NULL)
        *text_bytes_out = t.len;
    return 0;
}
