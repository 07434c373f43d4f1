/* harness_reply.h - shared helpers for integration tests that drive one allotd through one
 * client: a per-test server fixture, JSON params written without escapes, and lookups and
 * expectations on a reply by dotted path.
 *
 * Contract (Criterion tests only, main test thread only: the helpers use Criterion asserts and
 * harness_json keeps static buffers):
 *   - harness_fixture_up / harness_fixture_down are the bodies of a suite's .init / .fini: start
 *     a default server and connect one client; close it, stop the server (asserting a clean exit:
 *     no crash, no sanitizer report) unless the test already stopped it, and destroy it.
 *   - harness_json is printf into one of HARNESS_JSON_BUFFERS rotating buffers of
 *     HARNESS_JSON_BYTES (asserting the text fits), with every ' turned into ", so that JSON needs
 *     no escapes in C strings. A result stays valid until HARNESS_JSON_BUFFERS more calls.
 *   - A path is dotted: "lines.0.allocations.1.qty"; a segment starting with a digit indexes an
 *     array, any other is a map key; "" is the whole value. Paths are looked up in the result, or
 *     in the error map for an error reply.
 *   - harness_reply_at returns NULL for a missing path; harness_reply_int/_num/_len and
 *     harness_expect_*_at assert that the value exists (and has the right type). The comparison
 *     in harness_expect_* is a cr_expect: a mismatch fails the test but the test goes on.
 *   - The inventory shortcuts (harness_put_location, harness_set_stock, harness_stock_field,
 *     harness_avail_of, harness_server_info_int, harness_server_stats_int) assert a successful
 *     reply.
 */
#ifndef ALLOT_TESTS_HARNESS_REPLY_H
#define ALLOT_TESTS_HARNESS_REPLY_H

#include <stdint.h>

#include "harness.h"

#define HARNESS_JSON_BUFFERS 4
#define HARNESS_JSON_BYTES   65536

/* .init: start a server with default arguments into *srv and connect a client into *cli. */
void harness_fixture_up(harness_server_t **srv, allot_client_t **cli);
/* .fini: close *cli, stop *srv if still running (asserting exit status 0), destroy it; both are
 * set to NULL. */
void harness_fixture_down(harness_server_t **srv, allot_client_t **cli);

/* printf into a rotating buffer, then ' -> " (see the contract). */
const char *harness_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The object at a dotted path of the result (or of the error map for an error reply); NULL when
 * absent. "" is the whole result. Does not assert. */
const msgpack_object *harness_reply_at(const allot_reply_t *r, const char *path);
/* The integer at path (asserts present and an integer). */
int64_t harness_reply_int(const allot_reply_t *r, const char *path);
/* The number at path, float or integer (asserts present and a number). */
double harness_reply_num(const allot_reply_t *r, const char *path);
/* The length of the array at path (asserts present and an array). */
uint32_t harness_reply_len(const allot_reply_t *r, const char *path);
/* Any object as compact JSON (malloc'ed; caller frees). */
char *harness_object_json(const msgpack_object *o);
/* The whole reply (result or error) as JSON copied into buf (truncated to bytes); returns buf. */
const char *harness_reply_text(const allot_reply_t *r, char *buf, size_t bytes);

/* Expect the JSON rendering of the value at path (asserted present) to equal expected, which is
 * written with ' for " as for harness_json. */
void harness_expect_json_at(const allot_reply_t *r, const char *path, const char *expected);
/* Expect the value at path (asserted present) to be the string expected. */
void harness_expect_str_at(const allot_reply_t *r, const char *path, const char *expected);
/* Expect an error reply whose "field" is `name` or whose message mentions it. */
void harness_expect_error_names(const allot_reply_t *r, const char *name);

/* location.put {"id": id, <fields>}; fields is the rest of the object written with ' for ",
 * e.g. "'type':'warehouse','lat':0,'lon':0". */
void harness_put_location(allot_client_t *c, const char *id, const char *fields);
/* stock.set of on_hand for sku at location. */
void harness_set_stock(allot_client_t *c, const char *sku, const char *location, int64_t on_hand);
/* An integer field of the SKU's stock.get: of the whole SKU when location is NULL, else of its
 * position at location (-1 when there is no such position). */
int64_t harness_stock_field(allot_client_t *c, const char *sku, const char *location,
                            const char *field);
/* "items.0.available" of avail.get with these params (JSON). */
int64_t harness_avail_of(allot_client_t *c, const char *params_json);
/* An integer field of server.info, e.g. "reservations". */
int64_t harness_server_info_int(allot_client_t *c, const char *field);
/* The integer at a dotted path of server.stats, e.g. "wal.segments_deleted". */
int64_t harness_server_stats_int(allot_client_t *c, const char *path);

#endif
