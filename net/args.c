/* args.c - typed, validated getters for named request arguments (see args.h). */
#include "args.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/errors.h"

/* The string k equals the NUL-terminated key: one pass, no strlen (keys are looked up for every
 * argument of every request; most comparisons end at the first byte). A k holding a NUL byte
 * never equals a key. */
static bool key_equals(const msgpack_object *k, const char *key)
{
    if (k->type != MSGPACK_OBJECT_STR)
        return false;
    const char *bytes = k->via.str.ptr;
    uint32_t size = k->via.str.size;
    for (uint32_t i = 0; i < size; i++)
        if (key[i] == '\0' || key[i] != bytes[i])
            return false;
    return key[size] == '\0';
}

const msgpack_object *args_find(const msgpack_object *map, const char *key)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (key_equals(&kv->key, key))
            return kv->val.type == MSGPACK_OBJECT_NIL ? NULL : &kv->val;
    }
    return NULL;
}

/* Shared head of every getter: find the key, handle absence. Returns 1 when a value is there
 * to convert, 0 when absent and optional, or a negative error. */
static int lookup(const msgpack_object *map, const char *key, const msgpack_object **value,
                  bool *present, allot_error_detail_t *error)
{
    *value = args_find(map, key);
    if (present != NULL)
        *present = *value != NULL;
    if (*value != NULL)
        return 1;
    if (present != NULL)
        return 0;
    return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, key, "missing required field '%s'", key);
}

static int wrong_type(const char *key, const char *expected, allot_error_detail_t *error)
{
    return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, key, "field '%s' must be %s", key,
                           expected);
}

int args_str(const msgpack_object *map, const char *key, uint32_t bytes_max, allot_str_t *out,
             bool *present, allot_error_detail_t *error)
{
    const msgpack_object *v;
    int found = lookup(map, key, &v, present, error);
    if (found <= 0)
        return found;
    if (v->type != MSGPACK_OBJECT_STR)
        return wrong_type(key, "a string", error);
    if (v->via.str.size > bytes_max)
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, key,
                               "field '%s' is %u bytes, at most %u allowed", key, v->via.str.size,
                               bytes_max);
    if (!allot_utf8_valid(v->via.str.ptr, v->via.str.size))
        return wrong_type(key, "valid UTF-8", error);
    *out = (allot_str_t){v->via.str.ptr, v->via.str.size};
    return 0;
}

int args_id(const msgpack_object *map, const char *key, allot_str_t *out, bool *present,
            allot_error_detail_t *error)
{
    allot_str_t s = {0};
    bool here = false;
    int rc = args_str(map, key, ALLOT_ID_BYTES_MAX, &s, present != NULL ? &here : NULL, error);
    if (rc != 0)
        return rc;
    if (present != NULL) {
        *present = here;
        if (!here)
            return 0;
    }
    if (s.len == 0)
        return wrong_type(key, "a non-empty id (1..128 bytes of UTF-8)", error);
    *out = s;
    return 0;
}

int args_int64(const msgpack_object *map, const char *key, int64_t min, int64_t max, int64_t *out,
               bool *present, allot_error_detail_t *error)
{
    const msgpack_object *v;
    int found = lookup(map, key, &v, present, error);
    if (found <= 0)
        return found;
    int64_t value;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (v->via.u64 > (uint64_t)INT64_MAX)
            return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, key,
                                   "field '%s' is out of range %lld..%lld", key, (long long)min,
                                   (long long)max);
        value = (int64_t)v->via.u64;
    } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        value = v->via.i64;
    } else {
        return wrong_type(key, "an integer", error);
    }
    if (value < min || value > max)
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, key,
                               "field '%s' is out of range %lld..%lld", key, (long long)min,
                               (long long)max);
    *out = value;
    return 0;
}

bool args_number_value(const msgpack_object *v, double *out)
{
    if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
        *out = v->via.f64;
    else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = (double)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = (double)v->via.i64;
    else
        return false;
    return true;
}

int args_double(const msgpack_object *map, const char *key, double min, double max, double *out,
                bool *present, allot_error_detail_t *error)
{
    const msgpack_object *v;
    int found = lookup(map, key, &v, present, error);
    if (found <= 0)
        return found;
    double value;
    if (!args_number_value(v, &value))
        return wrong_type(key, "a number", error);
    if (isnan(value) || value < min || value > max)
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, key,
                               "field '%s' is out of range %g..%g", key, min, max);
    *out = value;
    return 0;
}

int args_bool(const msgpack_object *map, const char *key, bool *out, bool *present,
              allot_error_detail_t *error)
{
    const msgpack_object *v;
    int found = lookup(map, key, &v, present, error);
    if (found <= 0)
        return found;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return wrong_type(key, "a boolean", error);
    *out = v->via.boolean;
    return 0;
}

int args_array(const msgpack_object *map, const char *key, uint32_t count_min, uint32_t count_max,
               const msgpack_object_array **out, bool *present, allot_error_detail_t *error)
{
    const msgpack_object *v;
    int found = lookup(map, key, &v, present, error);
    if (found <= 0)
        return found;
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return wrong_type(key, "an array", error);
    if (v->via.array.size > count_max)
        return allot_error_set(error, ALLOT_ETOO_LARGE, key,
                               "field '%s' has %u elements, at most %u allowed", key,
                               v->via.array.size, count_max);
    if (v->via.array.size < count_min)
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, key,
                               "field '%s' needs at least %u elements", key, count_min);
    *out = &v->via.array;
    return 0;
}

/* The index of k in allowed, or -1. */
static int key_allowed_index(const msgpack_object *k, const char *const *allowed)
{
    for (int i = 0; allowed[i] != NULL; i++)
        if (key_equals(k, allowed[i]))
            return i;
    return -1;
}

/* The index of k in allowed, else in also (numbered after allowed), else -1; *name its name. */
static int key_index_either(const msgpack_object *k, const char *const *allowed,
                            const char *const *also, const char **name)
{
    int index = key_allowed_index(k, allowed);
    if (index >= 0 || also == NULL) {
        *name = index >= 0 ? allowed[index] : NULL;
        return index;
    }
    int allowed_count = 0;
    while (allowed[allowed_count] != NULL)
        allowed_count++;
    int extra = key_allowed_index(k, also);
    *name = extra >= 0 ? also[extra] : NULL;
    return extra >= 0 ? allowed_count + extra : -1;
}

int args_check_keys_also(const msgpack_object *map, const char *const *allowed,
                         const char *const *also, const char *field, allot_error_detail_t *error)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return wrong_type(field, "a map", error);
    uint64_t seen = 0; /* bit i: key i (allowed, then also) was a key already */
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, field,
                                   "keys of '%s' must be strings", field);
        const char *name;
        int index = key_index_either(k, allowed, also, &name);
        if (index < 0) {
            allot_echo_t key;
            allot_str_t text = {k->via.str.ptr, k->via.str.size};
            return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, field,
                                   "unknown key '%s' in '%s'", allot_str_echo(text, &key), field);
        }
        assert(index < ARGS_ALLOWED_KEYS_MAX);
        if (seen & (UINT64_C(1) << index))
            return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, name,
                                   "duplicate key '%s' in '%s'", name, field);
        seen |= UINT64_C(1) << index;
    }
    return 0;
}

int args_check_keys(const msgpack_object *map, const char *const *allowed, const char *field,
                    allot_error_detail_t *error)
{
    return args_check_keys_also(map, allowed, NULL, field, error);
}

int args_map(const msgpack_object *map, const char *key, const char *const *allowed,
             const msgpack_object **out, bool *present, allot_error_detail_t *error)
{
    const msgpack_object *v;
    int found = lookup(map, key, &v, present, error);
    if (found <= 0)
        return found;
    int rc = args_check_keys(v, allowed, key, error);
    if (rc != 0)
        return rc;
    *out = v;
    return 0;
}

int args_enum(const msgpack_object *map, const char *key, const char *const *names, int *out,
              bool *present, allot_error_detail_t *error)
{
    const msgpack_object *v;
    int found = lookup(map, key, &v, present, error);
    if (found <= 0)
        return found;
    if (v->type == MSGPACK_OBJECT_STR) {
        for (int i = 0; names[i] != NULL; i++) {
            if (key_equals(v, names[i])) {
                *out = i;
                return 0;
            }
        }
    }
    char expected[256] = "one of";
    size_t used = strlen(expected);
    for (int i = 0; names[i] != NULL && used < sizeof(expected) - 1; i++) {
        int n =
            snprintf(expected + used, sizeof(expected) - used, "%s '%s'", i ? "," : "", names[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, key, "field '%s' must be %s", key,
                           expected);
}

static int lines_get(const msgpack_object *map, allot_line_input_t *lines, bool *backorder,
                     uint32_t *count, bool *present, allot_error_detail_t *error)
{
    static const char *const line_keys[] = {"sku", "qty", NULL};
    static const char *const backorder_keys[] = {"sku", "qty", "backorder", NULL};
    const msgpack_object_array *array;
    int rc = args_array(map, "lines", 1, ALLOT_LINES_MAX, &array, present, error);
    if (rc != 0 || (present != NULL && !*present))
        return rc;
    for (uint32_t i = 0; i < array->size; i++) {
        const msgpack_object *line = &array->ptr[i];
        rc = args_check_keys(line, backorder != NULL ? backorder_keys : line_keys, "lines", error);
        if (rc == 0)
            rc = args_id(line, "sku", &lines[i].sku, NULL, error);
        if (rc == 0)
            rc = args_int64(line, "qty", 1, ALLOT_QUANTITY_MAX, &lines[i].qty, NULL, error);
        if (rc == 0 && backorder != NULL) {
            backorder[i] = false;
            rc = args_bool(line, "backorder", &backorder[i], &(bool){false}, error);
        }
        if (rc != 0)
            return rc;
    }
    *count = array->size;
    return 0;
}

int args_lines(const msgpack_object *map, allot_line_input_t *lines, uint32_t *count, bool *present,
               allot_error_detail_t *error)
{
    return lines_get(map, lines, NULL, count, present, error);
}

int args_reserve_lines(const msgpack_object *map, allot_line_input_t *lines, bool *backorder,
                       uint32_t *count, allot_error_detail_t *error)
{
    return lines_get(map, lines, backorder, count, NULL, error);
}

int args_ship_to(const msgpack_object *map, bool *present, double *lat, double *lon,
                 allot_error_detail_t *error)
{
    static const char *const keys[] = {"lat", "lon", NULL};
    const msgpack_object *ship_to = NULL;
    int rc = args_map(map, "ship_to", keys, &ship_to, present, error);
    if (rc != 0 || !*present)
        return rc;
    rc = args_double(ship_to, "lat", -90.0, 90.0, lat, NULL, error);
    if (rc == 0)
        rc = args_double(ship_to, "lon", -180.0, 180.0, lon, NULL, error);
    return rc;
}
