/* frame.c - resumable, allocation-free MessagePack object boundary scanner (see frame.h). */
#include "client/frame.h"

#include <assert.h>

void frame_scanner_reset(frame_scanner_t *scanner)
{
    scanner->offset = 0;
    scanner->depth = 0;
    scanner->items_owed = 0;
    scanner->depth_max = ALLOT_REQUEST_DEPTH_MAX;
    scanner->envelope = 1;
}

void frame_scanner_reset_object(frame_scanner_t *scanner)
{
    frame_scanner_reset(scanner);
    scanner->depth_max = ALLOT_MSGPACK_DEPTH_MAX;
    scanner->envelope = 0;
}

static uint64_t read_be(const uint8_t *p, unsigned bytes)
{
    uint64_t value = 0;
    for (unsigned i = 0; i < bytes; i++)
        value = (value << 8) | p[i];
    return value;
}

/* What one item header says: how many header bytes, how many body bytes follow, and how many
 * child items it opens (containers). */
typedef struct item_shape {
    unsigned header_bytes;  /* including the type byte */
    unsigned length_bytes;  /* big-endian length/count field after the type byte (0: none) */
    uint64_t body_bytes;    /* fixed body size when length_bytes == 0 */
    uint64_t children_mult; /* count -> children (1 array, 2 map); 0 = no children */
    unsigned extra_bytes;   /* ext type byte */
    int body_is_length;     /* the length field gives body bytes (str/bin/ext) */
} item_shape_t;

static int shape_fixed(uint8_t t, item_shape_t *s)
{
    *s = (item_shape_t){.header_bytes = 1};
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return 1;
    if ((t & 0xf0) == 0x80) { /* fixmap */
        s->body_bytes = (uint64_t)(t & 0x0f);
        s->children_mult = 2;
        return 1;
    }
    if ((t & 0xf0) == 0x90) { /* fixarray */
        s->body_bytes = (uint64_t)(t & 0x0f);
        s->children_mult = 1;
        return 1;
    }
    if ((t & 0xe0) == 0xa0) { /* fixstr */
        s->body_bytes = (uint64_t)(t & 0x1f);
        return 1;
    }
    return 0;
}

static int shape_of(uint8_t t, item_shape_t *s)
{
    if (shape_fixed(t, s))
        return 0;
    static const struct {
        uint8_t type;
        uint8_t length_bytes, extra_bytes, body_bytes, children_mult, body_is_length;
    } table[] = {
        {0xc4, 1, 0, 0, 0, 1}, {0xc5, 2, 0, 0, 0, 1},  {0xc6, 4, 0, 0, 0, 1}, /* bin */
        {0xc7, 1, 1, 0, 0, 1}, {0xc8, 2, 1, 0, 0, 1},  {0xc9, 4, 1, 0, 0, 1}, /* ext */
        {0xca, 0, 0, 4, 0, 0}, {0xcb, 0, 0, 8, 0, 0},                         /* float */
        {0xcc, 0, 0, 1, 0, 0}, {0xcd, 0, 0, 2, 0, 0},  {0xce, 0, 0, 4, 0, 0},
        {0xcf, 0, 0, 8, 0, 0}, {0xd0, 0, 0, 1, 0, 0},  {0xd1, 0, 0, 2, 0, 0},
        {0xd2, 0, 0, 4, 0, 0}, {0xd3, 0, 0, 8, 0, 0}, /* ints */
        {0xd4, 0, 1, 1, 0, 0}, {0xd5, 0, 1, 2, 0, 0},  {0xd6, 0, 1, 4, 0, 0},
        {0xd7, 0, 1, 8, 0, 0}, {0xd8, 0, 1, 16, 0, 0},                        /* fixext */
        {0xd9, 1, 0, 0, 0, 1}, {0xda, 2, 0, 0, 0, 1},  {0xdb, 4, 0, 0, 0, 1}, /* str */
        {0xdc, 2, 0, 0, 1, 0}, {0xdd, 4, 0, 0, 1, 0},                         /* array */
        {0xde, 2, 0, 0, 2, 0}, {0xdf, 4, 0, 0, 2, 0},                         /* map */
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].type != t)
            continue;
        s->length_bytes = table[i].length_bytes;
        s->extra_bytes = table[i].extra_bytes;
        s->header_bytes = 1 + table[i].length_bytes + table[i].extra_bytes;
        s->body_bytes = table[i].body_bytes;
        s->children_mult = table[i].children_mult;
        s->body_is_length = table[i].body_is_length;
        return 0;
    }
    return -1; /* 0xc1: never used */
}

/* Mark one item of the innermost open container as consumed, closing finished containers. */
static void consume_item(frame_scanner_t *scanner)
{
    while (scanner->depth > 0) {
        assert(scanner->remaining[scanner->depth - 1] > 0);
        scanner->remaining[scanner->depth - 1]--;
        scanner->items_owed--;
        if (scanner->remaining[scanner->depth - 1] > 0)
            return;
        scanner->depth--;
        /* the finished container counts as one item of its parent: loop */
    }
}

/* Open a container of `children` items; the container itself is consumed when it closes. */
static frame_status_t open_container(frame_scanner_t *scanner, uint64_t children)
{
    if (children == 0) {
        consume_item(scanner);
        return FRAME_NEED_MORE;
    }
    if (scanner->depth >= scanner->depth_max)
        return FRAME_TOO_DEEP;
    scanner->remaining[scanner->depth++] = children;
    scanner->items_owed += children;
    return FRAME_NEED_MORE;
}

/* The top-level object must be an array of 3 (notification) or 4 (request/response). */
static int envelope_header_valid(const frame_scanner_t *scanner, const item_shape_t *shape,
                                 uint64_t count)
{
    if (scanner->offset != 0 || !scanner->envelope)
        return 1;
    return shape->children_mult == 1 && (count == 3 || count == 4);
}

static frame_status_t scan_one_item(frame_scanner_t *scanner, const uint8_t *data, size_t len,
                                    size_t bytes_max)
{
    const uint8_t *p = data + scanner->offset;
    size_t available = len - scanner->offset;
    item_shape_t shape;
    if (shape_of(p[0], &shape) != 0)
        return FRAME_INVALID;
    if (available < shape.header_bytes)
        return FRAME_NEED_MORE;
    uint64_t count = shape.length_bytes ? read_be(p + 1, shape.length_bytes) : shape.body_bytes;
    uint64_t body = shape.children_mult ? 0 : (shape.body_is_length ? count : shape.body_bytes);
    uint64_t children = shape.children_mult * count;
    if (!envelope_header_valid(scanner, &shape, count))
        return FRAME_INVALID;
    /* every item still owed, and every child, takes at least one byte. items_owed counts each
     * open container's remaining items, and every open container but the outermost is itself
     * one of its parent's remaining items, in progress like this item: depth of them are not
     * owed beyond the bytes counted here */
    uint64_t later_items =
        scanner->items_owed > scanner->depth ? scanner->items_owed - scanner->depth : 0;
    uint64_t least_total = scanner->offset + shape.header_bytes + body + children + later_items;
    if (least_total > bytes_max)
        return FRAME_TOO_LARGE;
    if (available < shape.header_bytes + body)
        return FRAME_NEED_MORE;
    scanner->offset += shape.header_bytes + body;
    if (shape.children_mult)
        return open_container(scanner, children);
    consume_item(scanner);
    return FRAME_NEED_MORE;
}

frame_status_t frame_scan(frame_scanner_t *scanner, const uint8_t *data, size_t len,
                          size_t bytes_max, size_t *frame_bytes)
{
    assert(scanner->offset <= len);
    while (scanner->offset < len) {
        size_t before = scanner->offset;
        frame_status_t status = scan_one_item(scanner, data, len, bytes_max);
        if (status != FRAME_NEED_MORE)
            return status;
        if (scanner->offset == before)
            return FRAME_NEED_MORE; /* item incomplete: wait for more bytes */
        if (scanner->depth == 0) {
            *frame_bytes = scanner->offset;
            return FRAME_COMPLETE;
        }
    }
    return FRAME_NEED_MORE;
}

long frame_object_bytes(const uint8_t *data, size_t len)
{
    frame_scanner_t scanner;
    frame_scanner_reset_object(&scanner);
    size_t bytes = 0;
    frame_status_t status = frame_scan(&scanner, data, len, SIZE_MAX, &bytes);
    if (status == FRAME_COMPLETE)
        return (long)bytes;
    return status == FRAME_NEED_MORE ? 0 : (long)status;
}
