/* peek.c - a bounded glance at the requests ahead in a read batch, and their lookups loaded ahead.
 */
#include "peek.h"

#include <assert.h>
#include <string.h>

#include "core/inventory.h"
#include "core/reservation.h"

typedef struct peek_reader {
    const uint8_t *at;
    const uint8_t *end;
} peek_reader_t;

typedef enum peek_kind {
    PEEK_SCALAR, /* nil, bool, number, bin, ext: its payload skipped */
    PEEK_STR,
    PEEK_ARRAY,
    PEEK_MAP,
} peek_kind_t;

typedef struct peek_item {
    peek_kind_t kind;
    uint32_t count;  /* elements of an array, pairs of a map */
    allot_str_t str; /* a str's bytes */
} peek_item_t;

typedef enum peek_method {
    PEEK_METHOD_OTHER,
    PEEK_METHOD_AVAIL_GET,
    PEEK_METHOD_RESERVE,
    PEEK_METHOD_ORDER_CREATE,
} peek_method_t;

/* A big-endian unsigned of `width` (1, 2 or 4) bytes; false when they are not there. */
static bool reader_uint(peek_reader_t *r, uint32_t width, uint32_t *value)
{
    if ((size_t)(r->end - r->at) < width)
        return false;
    uint32_t v = 0;
    for (uint32_t i = 0; i < width; i++)
        v = (v << 8) | r->at[i];
    r->at += width;
    *value = v;
    return true;
}

/* For the formats 0xc4-0xdb: the bytes of the length that follows (0: none) and the payload's
 * bytes besides it (a number's, ext's type byte, a fixext's). False for any other byte. */
static bool header_format(uint8_t b, uint32_t *length_width, uint32_t *payload_bytes)
{
    static const uint8_t width[] = {1, 2, 4, 1, 2, 4, 0, 0, 0, 0, 0, 0,
                                    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4};
    static const uint8_t fixed[] = {0, 0, 0, 1, 1, 1, 4, 8, 1,  2, 4, 8,
                                    1, 2, 4, 8, 2, 3, 5, 9, 17, 0, 0, 0};
    _Static_assert(sizeof(width) == 0xdb - 0xc4 + 1 && sizeof(fixed) == sizeof(width),
                   "one entry per format from bin8 to str32");
    if (b < 0xc4 || b > 0xdb)
        return false;
    *length_width = width[b - 0xc4];
    *payload_bytes = fixed[b - 0xc4];
    return true;
}

/* Read one item's header (a str's, bin's or ext's bytes too); false when it is cut short or is
 * not MessagePack (0xc1). */
static inline bool item_read(peek_reader_t *r, peek_item_t *item)
{
    if (r->at == r->end)
        return false;
    uint8_t b = *r->at++;
    item->kind = PEEK_SCALAR;
    item->count = 0;
    item->str = (allot_str_t){NULL, 0};
    uint32_t length = 0, length_width = 0, payload_bytes = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return true;
    if (b <= 0x8f) {
        item->kind = PEEK_MAP;
        item->count = b & 0x0fu;
        return true;
    }
    if (b <= 0x9f) {
        item->kind = PEEK_ARRAY;
        item->count = b & 0x0fu;
        return true;
    }
    if (b <= 0xbf) {
        item->kind = PEEK_STR;
        length = b & 0x1fu;
    } else if (b >= 0xdc) { /* array16, array32, map16, map32 */
        item->kind = b <= 0xdd ? PEEK_ARRAY : PEEK_MAP;
        return reader_uint(r, (b & 1u) ? 4 : 2, &item->count);
    } else if (!header_format(b, &length_width, &payload_bytes)) {
        return false; /* 0xc1 */
    } else if (length_width > 0 && !reader_uint(r, length_width, &length)) {
        return false;
    }
    if (b >= 0xd9)
        item->kind = PEEK_STR;
    if ((size_t)(r->end - r->at) < (uint64_t)length + payload_bytes)
        return false;
    item->str = (allot_str_t){(const char *)r->at, length};
    r->at += (size_t)length + payload_bytes;
    return true;
}

/* Skip `items` whole items, containers with everything in them (no recursion: a count of the
 * items still to skip, bounded by the bytes left since each takes at least one). */
static bool items_skip(peek_reader_t *r, uint64_t items)
{
    while (items > 0) {
        if (items > (uint64_t)(r->end - r->at))
            return false;
        peek_item_t item;
        if (!item_read(r, &item))
            return false;
        items--;
        if (item.kind == PEEK_ARRAY)
            items += item.count;
        else if (item.kind == PEEK_MAP)
            items += 2ull * item.count;
    }
    return true;
}

/* The next item when it is of `kind`, consumed; else nothing is consumed and false returned. */
static inline bool item_take(peek_reader_t *r, peek_kind_t kind, peek_item_t *item)
{
    peek_reader_t ahead = *r;
    if (!item_read(&ahead, item) || item->kind != kind)
        return false;
    *r = ahead;
    return true;
}

static bool str_is(allot_str_t str, const char *literal, size_t len)
{
    return str.len == len && memcmp(str.ptr, literal, len) == 0;
}

#define STR_IS(str, literal) str_is((str), (literal), sizeof(literal) - 1)

/* A str value into *out, or the value skipped. */
static bool str_value_read(peek_reader_t *r, allot_str_t *out)
{
    peek_item_t item;
    if (item_take(r, PEEK_STR, &item)) {
        *out = item.str;
        return true;
    }
    return items_skip(r, 1);
}

/* avail.get's skus, ALLOT_PEEK_SKUS_MAX at most: kept. A listing of more is not peeked (false):
 * its handler looks its SKUs up in a batch that loads them ahead itself, and walking its ids here
 * would cost more than loading its first ones ahead saves. */
static bool skus_read(peek_reader_t *r, peek_request_t *request)
{
    peek_item_t array;
    if (!item_take(r, PEEK_ARRAY, &array))
        return items_skip(r, 1);
    if (array.count > ALLOT_PEEK_SKUS_MAX)
        return false;
    for (uint32_t i = 0; i < array.count; i++) {
        peek_item_t item;
        if (request->sku_count < ALLOT_PEEK_SKUS_MAX && item_take(r, PEEK_STR, &item))
            request->skus[request->sku_count++] = item.str;
        else if (!items_skip(r, 1))
            return false;
    }
    return true;
}

/* reserve's and order.create's lines: the first line's sku kept, everything skipped. */
static bool lines_read(peek_reader_t *r, peek_request_t *request)
{
    peek_item_t array, line;
    if (!item_take(r, PEEK_ARRAY, &array))
        return items_skip(r, 1);
    if (array.count == 0)
        return true;
    if (!item_take(r, PEEK_MAP, &line))
        return items_skip(r, array.count);
    for (uint32_t i = 0; i < line.count; i++) {
        peek_item_t key;
        bool key_str = item_take(r, PEEK_STR, &key);
        if (!key_str || !STR_IS(key.str, "sku") || request->sku_count == ALLOT_PEEK_SKUS_MAX) {
            if (!items_skip(r, key_str ? 1 : 2))
                return false;
            continue;
        }
        allot_str_t sku = {NULL, 0};
        if (!str_value_read(r, &sku))
            return false;
        if (sku.len > 0)
            request->skus[request->sku_count++] = sku;
    }
    return items_skip(r, (uint64_t)array.count - 1);
}

/* The params array: for the methods peeked, its one map's keys looked at; else skipped. */
static bool params_read(peek_reader_t *r, peek_method_t method, peek_request_t *request)
{
    peek_item_t params, map;
    if (method == PEEK_METHOD_OTHER || !item_take(r, PEEK_ARRAY, &params))
        return items_skip(r, 1);
    if (params.count != 1 || !item_take(r, PEEK_MAP, &map))
        return items_skip(r, params.count);
    for (uint32_t i = 0; i < map.count; i++) {
        peek_item_t key;
        bool ok;
        if (!item_take(r, PEEK_STR, &key))
            ok = items_skip(r, 2);
        else if (method == PEEK_METHOD_AVAIL_GET && STR_IS(key.str, "skus"))
            ok = skus_read(r, request);
        else if ((method == PEEK_METHOD_RESERVE && STR_IS(key.str, "id")) ||
                 (method == PEEK_METHOD_ORDER_CREATE && STR_IS(key.str, "reservation")))
            ok = str_value_read(r, &request->id);
        else if (method != PEEK_METHOD_AVAIL_GET && STR_IS(key.str, "lines"))
            ok = lines_read(r, request);
        else
            ok = items_skip(r, 1);
        if (!ok)
            return false;
    }
    return true;
}

static peek_method_t method_of(allot_str_t name)
{
    if (STR_IS(name, "avail.get"))
        return PEEK_METHOD_AVAIL_GET;
    if (STR_IS(name, "reserve"))
        return PEEK_METHOD_RESERVE;
    if (STR_IS(name, "order.create"))
        return PEEK_METHOD_ORDER_CREATE;
    return PEEK_METHOD_OTHER;
}

bool peek_request(const uint8_t *data, size_t len, peek_request_t *request)
{
    assert(data != NULL || len == 0);
    request->bytes = 0;
    request->id = (allot_str_t){NULL, 0};
    request->sku_count = 0;
    size_t bytes = len < ALLOT_PEEK_REQUEST_BYTES_MAX ? len : ALLOT_PEEK_REQUEST_BYTES_MAX;
    peek_reader_t r = {data, data + bytes};
    if (bytes < 2 || data[0] != 0x94 || data[1] != 0x00) /* [0, ...] */
        return false;
    r.at += 2;
    peek_item_t method;
    if (!items_skip(&r, 1) || !item_take(&r, PEEK_STR, &method) ||
        !params_read(&r, method_of(method.str), request)) {
        request->id.len = 0;
        request->sku_count = 0;
        return false;
    }
    request->bytes = (size_t)(r.at - data);
    return true;
}

/* Ids peeked in one group: a reservation id and the SKUs of each request. */
#define PEEK_GROUP_SKUS_MAX (ALLOT_PEEK_GROUP_REQUESTS * ALLOT_PEEK_SKUS_MAX)

size_t peek_requests_prefetch(const struct allot_state *state, const uint8_t *data, size_t len)
{
    uint32_t sku_hashes[PEEK_GROUP_SKUS_MAX], id_hashes[ALLOT_PEEK_GROUP_REQUESTS];
    uint32_t sku_count = 0, id_count = 0, requests = 0;
    size_t offset = 0;
    peek_request_t request;
    while (requests < ALLOT_PEEK_GROUP_REQUESTS &&
           peek_request(data + offset, len - offset, &request)) {
        offset += request.bytes; /* 1: hash the ids, load their index slots */
        requests++;
        for (uint32_t i = 0; i < request.sku_count; i++)
            sku_hashes[sku_count++] = allot_sku_prefetch_slot(state, request.skus[i]);
        if (request.id.len > 0)
            id_hashes[id_count++] = allot_reservation_prefetch_slot(state, request.id);
    }
    if (requests < 2) /* nothing to overlap with: the slot's load overlaps the decoding */
        return offset;
    uint32_t sku_indices[PEEK_GROUP_SKUS_MAX];
    for (uint32_t i = 0; i < sku_count; i++) /* 2: the records of the slots' first candidates */
        sku_indices[i] = allot_sku_prefetch_record(state, sku_hashes[i]);
    for (uint32_t i = 0; i < id_count; i++)
        allot_reservation_prefetch_record(state, id_hashes[i]);
    for (uint32_t i = 0; i < sku_count; i++) /* 3: the SKUs' positions */
        allot_sku_prefetch_positions(state, sku_indices[i]);
    return offset;
}
