/* test_lookahead.c - the look-ahead over a read batch (net/peek.h) changes no reply: over a
 * catalogue large enough for the server to load ahead (past ALLOT_PREFETCH_TABLE_BYTES_MIN), a
 * pipelined burst of reads, refused writes and bad requests gets, byte for byte, the replies the
 * same requests get one at a time. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/frame.h"
#include "core/limits.h"
#include "harness.h"
#include "tests/msgpack_request.h"

/* 30,000 SKUs at one location: at least 30,000 x (a 32-byte record and a 48-byte position). */
#define LOOKAHEAD_SKUS   30000
#define LOOKAHEAD_ROUNDS 24

/* Send out[0, out_len) while reading replies, until `replies` whole replies arrived; their bytes
 * are appended to *in. */
static void exchange(int fd, const char *out, size_t out_len, size_t replies, msgpack_sbuffer *in)
{
    static char chunk[64 * 1024];
    size_t sent = 0, scanned = in->size, got = 0;
    frame_scanner_t scanner;
    frame_scanner_reset(&scanner);
    while (got < replies) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < out_len ? POLLOUT : 0)};
        cr_assert_gt(poll(&p, 1, 20000), 0, "stuck after %zu of %zu replies", got, replies);
        if ((p.revents & POLLOUT) && sent < out_len) {
            ssize_t n = send(fd, out + sent, out_len - sent, MSG_DONTWAIT);
            cr_assert(n > 0 || errno == EAGAIN, "send: %s", strerror(errno));
            sent += n > 0 ? (size_t)n : 0;
        }
        if (!(p.revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        cr_assert_gt(n, 0, "the server closed after %zu of %zu replies", got, replies);
        msgpack_sbuffer_write(in, chunk, (size_t)n);
        size_t frame = 0;
        while (got < replies &&
               frame_scan(&scanner, (const uint8_t *)in->data + scanned, in->size - scanned,
                          64u << 20, &frame) == FRAME_COMPLETE) {
            scanned += frame;
            got++;
            frame_scanner_reset(&scanner);
        }
    }
    cr_assert_eq(scanned, in->size, "more bytes than the replies asked for");
}

static void pack_skus(msgpack_packer *pk, const char *const *skus, uint32_t n)
{
    test_pack_str(pk, "skus");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        test_pack_str(pk, skus[i]);
}

static void load_catalogue(uint16_t port)
{
    msgpack_sbuffer out, in;
    msgpack_sbuffer_init(&out);
    msgpack_sbuffer_init(&in);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    test_pack_head(&pk, 1, "location.put", 4);
    test_pack_str(&pk, "id");
    test_pack_str(&pk, "W1");
    test_pack_str(&pk, "type");
    test_pack_str(&pk, "warehouse");
    test_pack_str(&pk, "lat");
    msgpack_pack_double(&pk, 52.0);
    test_pack_str(&pk, "lon");
    msgpack_pack_double(&pk, 4.0);
    for (uint32_t i = 0; i < LOOKAHEAD_SKUS; i++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "S-%05u", i);
        test_pack_head(&pk, 2 + i, "stock.set", 3);
        test_pack_str(&pk, "sku");
        test_pack_str(&pk, sku);
        test_pack_str(&pk, "location");
        test_pack_str(&pk, "W1");
        test_pack_str(&pk, "on_hand");
        msgpack_pack_uint32(&pk, 1 + i % 50);
    }
    int fd = harness_socket_connect(port);
    exchange(fd, out.data, out.size, 1 + LOOKAHEAD_SKUS, &in);
    close(fd);
    cr_assert_null(memmem(in.data, in.size,
                          "\xa4"
                          "code",
                          5),
                   "an error loading the catalogue");
    msgpack_sbuffer_destroy(&out);
    msgpack_sbuffer_destroy(&in);
}

/* One round of requests, each appended to `burst` and its end to ends[]: reads (a listing the
 * peek leaves to its handler among them), writes refused before they change anything, and bad
 * requests the dispatcher answers with an error. */
static size_t pack_round(msgpack_sbuffer *burst, uint32_t round, size_t *ends)
{
    static const char *const one[] = {"S-00001"};
    static const char *const five[] = {"S-00002", "NOPE", "S-29999", "S-00003", "S-12345"};
    msgpack_packer pk;
    msgpack_packer_init(&pk, burst, msgpack_sbuffer_write);
    uint32_t msgid = 1000 + round * 16;
    size_t n = 0;
    test_pack_head(&pk, msgid++, "avail.get", 1);
    pack_skus(&pk, one, 1);
    ends[n++] = burst->size;
    test_pack_head(&pk, msgid++, "avail.get", 2);
    pack_skus(&pk, five, 5);
    test_pack_str(&pk, "detail");
    msgpack_pack_true(&pk);
    ends[n++] = burst->size;
    test_pack_head(&pk, msgid++, "avail.get", 1); /* few enough SKUs to be peeked */
    pack_skus(&pk, five + 1, 3);
    ends[n++] = burst->size;
    test_pack_head(&pk, msgid++, "ping", 0);
    ends[n++] = burst->size;
    test_pack_head(&pk, msgid++, "avail.get", 1); /* skus not an array */
    test_pack_str(&pk, "skus");
    test_pack_str(&pk, "S-00001");
    ends[n++] = burst->size;
    test_pack_head(&pk, msgid++, "reserve", 2); /* more units than there are: refused */
    test_pack_str(&pk, "id");
    test_pack_str(&pk, "cart-1");
    test_pack_str(&pk, "lines");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    test_pack_str(&pk, "sku");
    test_pack_str(&pk, "S-00007");
    test_pack_str(&pk, "qty");
    msgpack_pack_uint32(&pk, 1000);
    ends[n++] = burst->size;
    test_pack_head(&pk, msgid++, "reserve", 1); /* an unknown key */
    test_pack_str(&pk, "idd");
    test_pack_str(&pk, "cart-2");
    ends[n++] = burst->size;
    test_pack_head(&pk, msgid++, "order.create", 2); /* an unknown reservation */
    test_pack_str(&pk, "id");
    test_pack_str(&pk, "order-1");
    test_pack_str(&pk, "reservation");
    test_pack_str(&pk, "cart-404");
    ends[n++] = burst->size;
    test_pack_head(&pk, msgid++, "avail.gett", 0);
    ends[n++] = burst->size;
    test_pack_head(&pk, msgid++, "stock.get", 1);
    test_pack_str(&pk, "sku");
    test_pack_str(&pk, "S-00010");
    ends[n++] = burst->size;
    return n;
}

Test(lookahead, pipelined_replies_over_a_large_catalogue_match_those_one_at_a_time, .timeout = 120)
{
    cr_assert_gt((size_t)LOOKAHEAD_SKUS * (32 + 48), ALLOT_PREFETCH_TABLE_BYTES_MIN);
    harness_server_t *s = harness_server_start("--fsync none");
    load_catalogue(s->port);
    msgpack_sbuffer burst;
    msgpack_sbuffer_init(&burst);
    size_t ends[LOOKAHEAD_ROUNDS * 16];
    size_t count = 0;
    for (uint32_t round = 0; round < LOOKAHEAD_ROUNDS; round++)
        count += pack_round(&burst, round, ends + count);

    msgpack_sbuffer pipelined, alone;
    msgpack_sbuffer_init(&pipelined);
    msgpack_sbuffer_init(&alone);
    int fd = harness_socket_connect(s->port);
    exchange(fd, burst.data, burst.size, count, &pipelined); /* all at once */
    close(fd);
    fd = harness_socket_connect(s->port);
    for (size_t i = 0, start = 0; i < count; start = ends[i++]) /* one at a time */
        exchange(fd, burst.data + start, ends[i] - start, 1, &alone);
    close(fd);
    cr_assert_eq(pipelined.size, alone.size);
    cr_assert(memcmp(pipelined.data, alone.data, alone.size) == 0,
              "a pipelined reply differs from the one the request gets alone");
    cr_assert_not_null(memmem(alone.data, alone.size, "INSUFFICIENT_STOCK", 18));
    cr_assert_not_null(memmem(alone.data, alone.size, "UNKNOWN_METHOD", 14));

    msgpack_sbuffer_destroy(&burst);
    msgpack_sbuffer_destroy(&pipelined);
    msgpack_sbuffer_destroy(&alone);
    harness_server_stop(s);
    harness_server_destroy(s);
}
