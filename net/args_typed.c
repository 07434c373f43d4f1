/* args_typed.c - the hot methods' arguments: the getters' path and the one-pass scan (see
 * args_typed.h). */
#include "args_typed.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "args.h"
#include "core/errors.h"
#include "core/sourcing.h"

/* ---- the generic path: the args.h getters in the handlers' order ----------------------------- */

static msgpack_sbuffer address_buffer;

/* The packed bytes of map o, if at most ALLOT_ORDER_ADDRESS_BYTES_MAX. */
static bool address_pack(const msgpack_object *o, allot_str_t *out)
{
    if (address_buffer.data == NULL)
        msgpack_sbuffer_init(&address_buffer);
    address_buffer.size = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &address_buffer, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *o);
    *out = (allot_str_t){address_buffer.data, (uint32_t)address_buffer.size};
    return address_buffer.size <= ALLOT_ORDER_ADDRESS_BYTES_MAX;
}

int args_address(const msgpack_object *params, allot_str_t *out, bool *present,
                 allot_error_detail_t *error)
{
    const msgpack_object *o = args_find(params, "address");
    *present = o != NULL && o->type != MSGPACK_OBJECT_NIL;
    *out = (allot_str_t){"", 0};
    if (!*present)
        return 0;
    if (o->type != MSGPACK_OBJECT_MAP)
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, "address", "address must be a map");
    allot_str_t packed;
    if (!address_pack(o, &packed))
        return allot_error_set(error, ALLOT_EINVALID_ARGUMENT, "address",
                               "address must encode in at most %u bytes",
                               (unsigned)ALLOT_ORDER_ADDRESS_BYTES_MAX);
    *out = packed;
    return 0;
}

/* An optional id or string (absent: empty). */
static int optional_id(const msgpack_object *p, const char *key, allot_str_t *out,
                       allot_error_detail_t *e)
{
    bool present = false;
    int rc = args_id(p, key, out, &present, e);
    if (rc == 0 && !present)
        *out = (allot_str_t){"", 0};
    return rc;
}

static int optional_str(const msgpack_object *p, const char *key, uint32_t bytes_max,
                        allot_str_t *out, allot_error_detail_t *e)
{
    bool present = false;
    int rc = args_str(p, key, bytes_max, out, &present, e);
    if (rc == 0 && !present)
        *out = (allot_str_t){"", 0};
    return rc;
}

int args_reserve_get(const msgpack_object *p, args_reserve_t *out, allot_error_detail_t *e)
{
    allot_reserve_request_t *req = &out->request;
    *req = (allot_reserve_request_t){
        .ttl_s = ALLOT_RESERVATION_TTL_S_DEFAULT, .lines = out->lines, .backorder = out->backorder};
    int method = ALLOT_METHOD_SHIP, policy = ALLOT_POLICY_FEWEST_SPLITS;
    int rc = args_id(p, "id", &req->id, NULL, e);
    if (rc == 0)
        rc = args_reserve_lines(p, out->lines, out->backorder, &req->line_count, e);
    if (rc == 0)
        rc = args_int64(p, "ttl_s", ALLOT_RESERVATION_TTL_S_MIN, ALLOT_RESERVATION_TTL_S_MAX,
                        &req->ttl_s, &(bool){false}, e);
    if (rc == 0)
        rc = args_enum(p, "method", allot_method_names, &method, &(bool){false}, e);
    if (rc == 0)
        rc = args_ship_to(p, &req->has_ship_to, &req->lat, &req->lon, e);
    if (rc == 0)
        rc = optional_id(p, "location", &req->location, e);
    if (rc == 0)
        rc = args_enum(p, "policy", allot_policy_names, &policy, &(bool){false}, e);
    if (rc == 0)
        rc = args_bool(p, "partial", &req->partial, &(bool){false}, e);
    if (rc == 0)
        rc = args_bool(p, "replace", &req->replace, &(bool){false}, e);
    if (rc == 0)
        rc = optional_id(p, "customer", &req->customer, e);
    if (rc == 0)
        rc = optional_str(p, "token", ALLOT_ID_BYTES_MAX, &req->token, e);
    req->method = (allot_method_t)method;
    req->policy = (allot_policy_t)policy;
    return rc;
}

int args_avail_get(const msgpack_object *p, args_avail_t *out, allot_error_detail_t *e)
{
    allot_avail_request_t *req = &out->request;
    *req = (allot_avail_request_t){.method = ALLOT_METHOD_SHIP, .location = {"", 0}};
    const msgpack_object_array *skus;
    int method = ALLOT_METHOD_SHIP;
    out->detail = false;
    out->promise = false;
    int rc = args_array(p, "skus", 1, ALLOT_AVAIL_SKUS_MAX, &skus, NULL, e);
    if (rc == 0)
        rc = args_enum(p, "method", allot_method_names, &method, &(bool){false}, e);
    if (rc == 0)
        rc = args_ship_to(p, &req->has_ship_to, &req->lat, &req->lon, e);
    if (rc == 0)
        rc = args_double(p, "radius_km", 0.001, ALLOT_RADIUS_KM_MAX, &req->radius_km,
                         &(bool){false}, e);
    if (rc == 0)
        rc = optional_id(p, "location", &req->location, e);
    if (rc == 0)
        rc = args_bool(p, "detail", &out->detail, &(bool){false}, e);
    if (rc == 0)
        rc = args_bool(p, "promise", &out->promise, &(bool){false}, e);
    if (rc != 0)
        return rc;
    req->method = (allot_method_t)method;
    for (uint32_t i = 0; i < skus->size; i++) {
        const msgpack_object *o = &skus->ptr[i];
        out->skus[i] = o->type == MSGPACK_OBJECT_STR
                           ? (allot_str_t){o->via.str.ptr, o->via.str.size}
                           : (allot_str_t){"", 0};
        if (!allot_id_valid(out->skus[i]))
            return allot_error_set(e, ALLOT_EINVALID_ARGUMENT, "skus",
                                   "skus[%u] must be an id (1..128 bytes of UTF-8)", i);
    }
    out->sku_count = skus->size;
    return 0;
}

int args_order_create_get(const msgpack_object *p, args_order_create_t *out,
                          allot_error_detail_t *e)
{
    allot_order_create_request_t *req = &out->request;
    *req = (allot_order_create_request_t){.lines = out->lines};
    int method = ALLOT_METHOD_SHIP, policy = ALLOT_POLICY_FEWEST_SPLITS;
    bool has_lines = false, has_address = false;
    int rc = args_id(p, "id", &req->id, NULL, e);
    if (rc == 0)
        rc = optional_id(p, "customer", &req->customer, e);
    if (rc == 0)
        rc = optional_id(p, "reservation", &req->reservation, e);
    if (rc == 0)
        rc = args_lines(p, out->lines, &req->line_count, &has_lines, e);
    if (rc == 0)
        rc = args_enum(p, "method", allot_method_names, &method, &(bool){false}, e);
    if (rc == 0)
        rc = args_ship_to(p, &req->has_ship_to, &req->lat, &req->lon, e);
    if (rc == 0)
        rc = optional_id(p, "location", &req->location, e);
    if (rc == 0)
        rc = args_enum(p, "policy", allot_policy_names, &policy, &(bool){false}, e);
    if (rc == 0)
        rc = args_address(p, &req->address, &has_address, e);
    if (rc == 0)
        rc = optional_str(p, "instructions", ALLOT_TEXT_BYTES_MAX, &req->instructions, e);
    req->method = (allot_method_t)method;
    req->policy = (allot_policy_t)policy;
    return rc;
}

/* ---- the scan: one walk over the map, any fault declines ------------------------------------- */

/* A key the scan knows: its name and length (names hold no NUL byte). */
typedef struct scan_key {
    const char *name;
    uint32_t len;
} scan_key_t;

#define SCAN_KEY(s)                                                                                \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }

/* The index of key k (a string) in keys[0, count), or -1. Lengths first: most keys differ. */
static int scan_key_index(const msgpack_object *k, const scan_key_t *keys, int count)
{
    if (k->type != MSGPACK_OBJECT_STR)
        return -1;
    uint32_t len = k->via.str.size;
    for (int i = 0; i < count; i++)
        if (keys[i].len == len && memcmp(keys[i].name, k->via.str.ptr, len) == 0)
            return i;
    return -1;
}

/* The value of map entry i, NULL for nil (absent), after the key's index in keys (each key at
 * most once: *seen has one bit per key). Returns the index, or -1 for an unknown or repeated
 * key. */
static int scan_entry(const msgpack_object_kv *kv, const scan_key_t *keys, int count,
                      uint32_t *seen, const msgpack_object **value)
{
    int index = scan_key_index(&kv->key, keys, count);
    if (index < 0 || (*seen & (UINT32_C(1) << index)))
        return -1;
    *seen |= UINT32_C(1) << index;
    *value = kv->val.type == MSGPACK_OBJECT_NIL ? NULL : &kv->val;
    return index;
}

/* Reads one key's value into a method's typed arguments; false: the generic path must read it. */
typedef bool (*scan_value_fn)(int index, const msgpack_object *v, void *out);

/* One walk over a params map: every key must be in keys[0, count) and appear once, nil values
 * count as absent, every other value goes to read_value. *given gets one bit per key read.
 * False as soon as anything is not what the scan fully validates. */
static bool scan_params(const msgpack_object *params, const scan_key_t *keys, int count,
                        scan_value_fn read_value, void *out, uint32_t *given)
{
    if (params->type != MSGPACK_OBJECT_MAP)
        return false;
    uint32_t seen = 0;
    *given = 0;
    for (uint32_t i = 0; i < params->via.map.size; i++) {
        const msgpack_object *value;
        int index = scan_entry(&params->via.map.ptr[i], keys, count, &seen, &value);
        if (index < 0)
            return false;
        if (value == NULL)
            continue;
        if (!read_value(index, value, out))
            return false;
        *given |= UINT32_C(1) << index;
    }
    return true;
}

static bool scan_str(const msgpack_object *v, uint32_t bytes_max, allot_str_t *out)
{
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size > bytes_max ||
        !allot_utf8_valid(v->via.str.ptr, v->via.str.size))
        return false;
    *out = (allot_str_t){v->via.str.ptr, v->via.str.size};
    return true;
}

static bool scan_id(const msgpack_object *v, allot_str_t *out)
{
    return v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0 &&
           scan_str(v, ALLOT_ID_BYTES_MAX, out);
}

static bool scan_int64(const msgpack_object *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t value;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= (uint64_t)INT64_MAX)
        value = (int64_t)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        value = v->via.i64;
    else
        return false;
    if (value < min || value > max)
        return false;
    *out = value;
    return true;
}

static bool scan_double(const msgpack_object *v, double min, double max, double *out)
{
    double value;
    if (!args_number_value(v, &value))
        return false;
    if (isnan(value) || value < min || value > max)
        return false;
    *out = value;
    return true;
}

static bool scan_bool(const msgpack_object *v, bool *out)
{
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *out = v->via.boolean;
    return true;
}

/* One of names (NULL-terminated), matched exactly. */
static bool scan_enum(const msgpack_object *v, const char *const *names, int *out)
{
    if (v->type != MSGPACK_OBJECT_STR)
        return false;
    for (int i = 0; names[i] != NULL; i++) {
        if (strlen(names[i]) == v->via.str.size &&
            memcmp(names[i], v->via.str.ptr, v->via.str.size) == 0) {
            *out = i;
            return true;
        }
    }
    return false;
}

/* ship_to: a map of exactly lat -90..90 and lon -180..180 (nil: missing). */
static bool scan_ship_to(const msgpack_object *v, double *lat, double *lon)
{
    static const scan_key_t keys[] = {SCAN_KEY("lat"), SCAN_KEY("lon")};
    if (v->type != MSGPACK_OBJECT_MAP)
        return false;
    uint32_t seen = 0, given = 0;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *value;
        int index = scan_entry(&v->via.map.ptr[i], keys, 2, &seen, &value);
        if (index < 0)
            return false;
        if (value == NULL)
            continue;
        bool ok = index == 0 ? scan_double(value, -90.0, 90.0, lat)
                             : scan_double(value, -180.0, 180.0, lon);
        if (!ok)
            return false;
        given |= UINT32_C(1) << index;
    }
    return given == 3;
}

/* One line: a map of sku (an id), qty (1..ALLOT_QUANTITY_MAX) and, when backorder is not NULL,
 * an optional boolean backorder; nothing else, nothing twice. */
static bool scan_line(const msgpack_object *v, allot_line_input_t *line, bool *backorder)
{
    static const scan_key_t keys[] = {SCAN_KEY("sku"), SCAN_KEY("qty"), SCAN_KEY("backorder")};
    if (v->type != MSGPACK_OBJECT_MAP)
        return false;
    uint32_t seen = 0, given = 0;
    if (backorder != NULL)
        *backorder = false;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *value;
        int index = scan_entry(&v->via.map.ptr[i], keys, backorder != NULL ? 3 : 2, &seen, &value);
        if (index < 0)
            return false;
        if (value == NULL)
            continue;
        bool ok = index == 0   ? scan_id(value, &line->sku)
                  : index == 1 ? scan_int64(value, 1, ALLOT_QUANTITY_MAX, &line->qty)
                               : scan_bool(value, backorder);
        if (!ok)
            return false;
        given |= UINT32_C(1) << index;
    }
    return (given & 3) == 3;
}

/* lines: an array of 1..ALLOT_LINES_MAX lines (scan_line). */
static bool scan_lines(const msgpack_object *v, allot_line_input_t *lines, bool *backorder,
                       uint32_t *count)
{
    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size < 1 ||
        v->via.array.size > ALLOT_LINES_MAX)
        return false;
    for (uint32_t i = 0; i < v->via.array.size; i++)
        if (!scan_line(&v->via.array.ptr[i], &lines[i], backorder != NULL ? &backorder[i] : NULL))
            return false;
    *count = v->via.array.size;
    return true;
}

/* reserve's keys, in commands.def's order. */
enum {
    R_ID,
    R_LINES,
    R_TTL_S,
    R_METHOD,
    R_SHIP_TO,
    R_LOCATION,
    R_POLICY,
    R_PARTIAL,
    R_REPLACE,
    R_CUSTOMER,
    R_TOKEN,
    R_COUNT
};

static bool scan_reserve_value(int index, const msgpack_object *v, void *target)
{
    args_reserve_t *out = target;
    allot_reserve_request_t *req = &out->request;
    int value = 0;
    switch (index) {
    case R_ID:
        return scan_id(v, &req->id);
    case R_LINES:
        return scan_lines(v, out->lines, out->backorder, &req->line_count);
    case R_TTL_S:
        return scan_int64(v, ALLOT_RESERVATION_TTL_S_MIN, ALLOT_RESERVATION_TTL_S_MAX, &req->ttl_s);
    case R_METHOD:
        if (!scan_enum(v, allot_method_names, &value))
            return false;
        req->method = (allot_method_t)value;
        return true;
    case R_SHIP_TO:
        return req->has_ship_to = scan_ship_to(v, &req->lat, &req->lon);
    case R_LOCATION:
        return scan_id(v, &req->location);
    case R_POLICY:
        if (!scan_enum(v, allot_policy_names, &value))
            return false;
        req->policy = (allot_policy_t)value;
        return true;
    case R_PARTIAL:
        return scan_bool(v, &req->partial);
    case R_REPLACE:
        return scan_bool(v, &req->replace);
    case R_CUSTOMER:
        return scan_id(v, &req->customer);
    default:
        assert(index == R_TOKEN);
        return scan_str(v, ALLOT_ID_BYTES_MAX, &req->token);
    }
}

bool args_reserve_scan(const msgpack_object *params, args_reserve_t *out)
{
    static const scan_key_t keys[R_COUNT] = {
        SCAN_KEY("id"),      SCAN_KEY("lines"),    SCAN_KEY("ttl_s"),  SCAN_KEY("method"),
        SCAN_KEY("ship_to"), SCAN_KEY("location"), SCAN_KEY("policy"), SCAN_KEY("partial"),
        SCAN_KEY("replace"), SCAN_KEY("customer"), SCAN_KEY("token")};
    allot_reserve_request_t *req = &out->request;
    *req = (allot_reserve_request_t){.ttl_s = ALLOT_RESERVATION_TTL_S_DEFAULT,
                                     .lines = out->lines,
                                     .backorder = out->backorder,
                                     .method = ALLOT_METHOD_SHIP,
                                     .location = {"", 0},
                                     .policy = ALLOT_POLICY_FEWEST_SPLITS,
                                     .customer = {"", 0},
                                     .token = {"", 0}};
    uint32_t given;
    if (!scan_params(params, keys, R_COUNT, scan_reserve_value, out, &given))
        return false;
    return (given & (UINT32_C(1) << R_ID)) && (given & (UINT32_C(1) << R_LINES));
}

/* avail.get's keys (commands.def's order), then the read-wait keys the scan declines. */
enum { A_SKUS, A_METHOD, A_SHIP_TO, A_RADIUS_KM, A_LOCATION, A_DETAIL, A_PROMISE, A_COUNT };

/* skus: an array of 1..ALLOT_AVAIL_SKUS_MAX ids. */
static bool scan_skus(const msgpack_object *v, args_avail_t *out)
{
    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size < 1 ||
        v->via.array.size > ALLOT_AVAIL_SKUS_MAX)
        return false;
    for (uint32_t i = 0; i < v->via.array.size; i++)
        if (!scan_id(&v->via.array.ptr[i], &out->skus[i]))
            return false;
    out->sku_count = v->via.array.size;
    return true;
}

static bool scan_avail_value(int index, const msgpack_object *v, void *target)
{
    args_avail_t *out = target;
    allot_avail_request_t *req = &out->request;
    int value = 0;
    switch (index) {
    case A_SKUS:
        return scan_skus(v, out);
    case A_METHOD:
        if (!scan_enum(v, allot_method_names, &value))
            return false;
        req->method = (allot_method_t)value;
        return true;
    case A_SHIP_TO:
        return req->has_ship_to = scan_ship_to(v, &req->lat, &req->lon);
    case A_RADIUS_KM:
        return scan_double(v, 0.001, ALLOT_RADIUS_KM_MAX, &req->radius_km);
    case A_LOCATION:
        return scan_id(v, &req->location);
    case A_DETAIL:
        return scan_bool(v, &out->detail);
    default:
        assert(index == A_PROMISE);
        return scan_bool(v, &out->promise);
    }
}

bool args_avail_scan(const msgpack_object *params, args_avail_t *out)
{
    static const scan_key_t keys[A_COUNT] = {
        SCAN_KEY("skus"),     SCAN_KEY("method"), SCAN_KEY("ship_to"), SCAN_KEY("radius_km"),
        SCAN_KEY("location"), SCAN_KEY("detail"), SCAN_KEY("promise")};
    out->request = (allot_avail_request_t){.method = ALLOT_METHOD_SHIP, .location = {"", 0}};
    out->detail = false;
    out->promise = false;
    uint32_t given;
    if (!scan_params(params, keys, A_COUNT, scan_avail_value, out, &given))
        return false; /* min_index and wait_ms too: the generic path reads them */
    return (given & (UINT32_C(1) << A_SKUS)) != 0;
}

/* order.create's keys, in commands.def's order. */
enum {
    O_ID,
    O_CUSTOMER,
    O_RESERVATION,
    O_LINES,
    O_METHOD,
    O_SHIP_TO,
    O_LOCATION,
    O_POLICY,
    O_ADDRESS,
    O_INSTRUCTIONS,
    O_COUNT
};

static bool scan_order_create_value(int index, const msgpack_object *v, void *target)
{
    args_order_create_t *out = target;
    allot_order_create_request_t *req = &out->request;
    int value = 0;
    switch (index) {
    case O_ID:
        return scan_id(v, &req->id);
    case O_CUSTOMER:
        return scan_id(v, &req->customer);
    case O_RESERVATION:
        return scan_id(v, &req->reservation);
    case O_LINES:
        return scan_lines(v, out->lines, NULL, &req->line_count);
    case O_METHOD:
        if (!scan_enum(v, allot_method_names, &value))
            return false;
        req->method = (allot_method_t)value;
        return true;
    case O_SHIP_TO:
        return req->has_ship_to = scan_ship_to(v, &req->lat, &req->lon);
    case O_LOCATION:
        return scan_id(v, &req->location);
    case O_POLICY:
        if (!scan_enum(v, allot_policy_names, &value))
            return false;
        req->policy = (allot_policy_t)value;
        return true;
    case O_ADDRESS:
        return v->type == MSGPACK_OBJECT_MAP && address_pack(v, &req->address);
    default:
        assert(index == O_INSTRUCTIONS);
        return scan_str(v, ALLOT_TEXT_BYTES_MAX, &req->instructions);
    }
}

bool args_order_create_scan(const msgpack_object *params, args_order_create_t *out)
{
    static const scan_key_t keys[O_COUNT] = {
        SCAN_KEY("id"),      SCAN_KEY("customer"),    SCAN_KEY("reservation"), SCAN_KEY("lines"),
        SCAN_KEY("method"),  SCAN_KEY("ship_to"),     SCAN_KEY("location"),    SCAN_KEY("policy"),
        SCAN_KEY("address"), SCAN_KEY("instructions")};
    out->request = (allot_order_create_request_t){.lines = out->lines,
                                                  .customer = {"", 0},
                                                  .reservation = {"", 0},
                                                  .method = ALLOT_METHOD_SHIP,
                                                  .location = {"", 0},
                                                  .policy = ALLOT_POLICY_FEWEST_SPLITS,
                                                  .address = {"", 0},
                                                  .instructions = {"", 0}};
    uint32_t given;
    if (!scan_params(params, keys, O_COUNT, scan_order_create_value, out, &given))
        return false;
    return (given & (UINT32_C(1) << O_ID)) != 0;
}
