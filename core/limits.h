/* limits.h - every bound in Allot, in one place, named with its unit.
 *
 * Contract: no queue, buffer, batch or map in Allot grows past a limit defined here. Defaults
 * marked "(operator)" can be overridden at start-up (command line or config file); the others
 * are compile-time. The _Static_asserts at the end state how the limits relate to each other.
 * Include from any room; no code, no state.
 */
#ifndef ALLOT_CORE_LIMITS_H
#define ALLOT_CORE_LIMITS_H

#include <stdint.h>

/* ---- wire / requests ---------------------------------------------------------------------- */
/* Largest single MessagePack-RPC request accepted (operator). Over it: TOO_LARGE, then close. */
#define ALLOT_REQUEST_BYTES_MAX_DEFAULT (1u << 20)
/* Upper bound an operator may raise request_bytes_max to. */
#define ALLOT_REQUEST_BYTES_MAX_CEILING (64u << 20)
/* Deepest nesting of arrays/maps inside one request. */
#define ALLOT_REQUEST_DEPTH_MAX 16
/* Deepest nesting of arrays/maps in any MessagePack object the code scans: a reply the client
 * library reads (what msgpack-c can decode), an object the bench sizes. client/frame.h's scanner,
 * the one header scanner of the code base, holds this many open containers. */
#define ALLOT_MSGPACK_DEPTH_MAX 32
/* Requests decoded but not yet answered on one connection (operator); reading pauses above. */
#define ALLOT_INFLIGHT_REQUESTS_MAX_DEFAULT 1024
/* Reply bytes queued to one connection before it is considered a non-reader and closed
 * (operator). */
#define ALLOT_OUTPUT_BYTES_MAX_DEFAULT (8u << 20)
/* Concurrent client connections (operator); over it a new connection is accepted then closed. */
#define ALLOT_CONNECTIONS_MAX_DEFAULT 10000
/* All connections' buffered requests and replies together (operator); over it new requests
 * are answered OVERLOADED. */
#define ALLOT_BUFFER_BYTES_MAX_DEFAULT (1ull << 30)
/* Bytes read from a socket per read callback, into one buffer shared by every connection; a
 * connection keeps only the unconsumed tail (a partial request), sized to what arrived. */
#define ALLOT_READ_CHUNK_BYTES (64u * 1024)
/* Smallest allocation for a connection's unconsumed input. */
#define ALLOT_INPUT_TAIL_BYTES_MIN 256
/* Unfinished requests of all connections together may hold at most buffer_bytes_max divided by
 * this; over it the connections holding the largest ones are closed (the rest of the budget is
 * left for replies). */
#define ALLOT_BUFFER_INPUT_SHARE_DIVISOR 2
/* With authentication on: how long a connection may stay unauthenticated (operator), and how
 * many may be unauthenticated at once (operator; by default connections_max / the divisor).
 * Over the cap, or at connections_max, the oldest unauthenticated connection is closed to make
 * room, so idle sockets cannot lock authenticating clients out. */
#define ALLOT_AUTH_TIMEOUT_MS_DEFAULT             10000
#define ALLOT_UNAUTHENTICATED_CONNECTIONS_DIVISOR 10
/* Longest method name. */
#define ALLOT_METHOD_BYTES_MAX 64
/* Named arguments in one request's params map. */
#define ALLOT_PARAMS_KEYS_MAX 32
/* Client-provided text shown in an error message (an unknown method or key, an id): at most this
 * many bytes of its escaped rendering (allot_str_echo in core/common.h), then "...". */
#define ALLOT_ECHO_BYTES_MAX 64

/* ---- identifiers ---------------------------------------------------------------------------- */
/* Every id (SKU, location, reservation, order, shipment, return, customer, key) is 1..128 bytes
 * of UTF-8. */
#define ALLOT_ID_BYTES_MAX 128

/* ---- inventory ------------------------------------------------------------------------------ */
#define ALLOT_LOCATIONS_MAX 65535
#define ALLOT_SKUS_MAX (64u * 1024 * 1024)
/* SKUs in one avail.get. */
#define ALLOT_AVAIL_SKUS_MAX 1000
/* Lines in one reservation or order. */
#define ALLOT_LINES_MAX 100
/* Largest quantity or on_hand: keeps every sum of quantities far from int64 overflow. */
#define ALLOT_QUANTITY_MAX ((int64_t)1 << 40)
/* Reservation time-to-live bounds and default, in seconds. */
#define ALLOT_RESERVATION_TTL_S_MIN 1
#define ALLOT_RESERVATION_TTL_S_MAX 86400
#define ALLOT_RESERVATION_TTL_S_DEFAULT 900
/* Default pickup search radius. */
#define ALLOT_PICKUP_RADIUS_KM_DEFAULT 50.0
/* Free-text fields (reason, instructions). */
#define ALLOT_TEXT_BYTES_MAX 1024
/* Live reservations held at once (operator). */
#define ALLOT_RESERVATIONS_MAX_DEFAULT (4u * 1024 * 1024)
/* Idempotency memory: ended reservation ids and stock.adjust keys are remembered for at least
 * this long and at most this many entries (operator). */
#define ALLOT_IDEMPOTENCY_AGE_MS_DEFAULT (24LL * 3600 * 1000)
#define ALLOT_IDEMPOTENCY_ENTRIES_MAX_DEFAULT (4u * 1024 * 1024)
/* Expired reservations released per expiry tick (the rest follow on the next tick). */
#define ALLOT_EXPIRY_BATCH_MAX 4096
/* Times in records and state (ms since the Unix epoch): 0 .. the last ms of year 9999 UTC.
 * Decoders refuse other values as corrupt, so that a difference of two times, or a time plus a
 * TTL or a window, never overflows int64. (stock.set's as_of_ms is the client's version stamp,
 * only ever compared: any int64.) */
#define ALLOT_TIME_MS_MIN 0LL
#define ALLOT_TIME_MS_MAX 253402300799999LL
/* A location's count of shipments on one day (daily_capacity bookkeeping). */
#define ALLOT_CAPACITY_COUNT_MAX ALLOT_QUANTITY_MAX

/* ---- persistence -------------------------------------------------------------------------- */
/* Size of one preallocated WAL segment (operator). */
#define ALLOT_WAL_SEGMENT_BYTES_DEFAULT (64u << 20)
/* Largest single WAL record payload. */
#define ALLOT_WAL_RECORD_BYTES_MAX (4u << 20)
/* Free WAL space (batch buffer and allocated segment) required before a write command runs;
 * below it writes answer OVERLOADED. A larger event is still checked exactly when appended. */
#define ALLOT_WAL_HEADROOM_BYTES (64u * 1024)
/* Bytes appended in one loop iteration before the batch is cut and handed over. */
#define ALLOT_WAL_BATCH_BYTES_MAX (16u << 20)

/* ---- how they relate ------------------------------------------------------------------------ */
_Static_assert(ALLOT_REQUEST_BYTES_MAX_DEFAULT <= ALLOT_REQUEST_BYTES_MAX_CEILING,
               "default request size must not exceed its ceiling");
_Static_assert(ALLOT_OUTPUT_BYTES_MAX_DEFAULT >= 2 * ALLOT_REQUEST_BYTES_MAX_DEFAULT,
               "a connection must be able to queue at least a couple of large replies");
_Static_assert(ALLOT_WAL_RECORD_BYTES_MAX >= ALLOT_REQUEST_BYTES_MAX_DEFAULT,
               "every accepted request must fit in one WAL record");
_Static_assert(ALLOT_WAL_BATCH_BYTES_MAX >= 2 * ALLOT_WAL_RECORD_BYTES_MAX,
               "a batch holds at least two records of maximal size");
_Static_assert(ALLOT_WAL_SEGMENT_BYTES_DEFAULT >= 2 * ALLOT_WAL_BATCH_BYTES_MAX,
               "a segment holds at least two full batches");
_Static_assert(ALLOT_QUANTITY_MAX * ALLOT_LINES_MAX * 1024 < INT64_MAX,
               "sums of quantities over lines and locations cannot overflow int64");
_Static_assert(ALLOT_LINES_MAX <= ALLOT_AVAIL_SKUS_MAX, "lines are a subset of a SKU batch");
_Static_assert(ALLOT_TIME_MS_MAX < INT64_MAX / 4,
               "times, their differences and a time plus a TTL or window fit in int64");

_Static_assert(ALLOT_REQUEST_DEPTH_MAX <= ALLOT_MSGPACK_DEPTH_MAX,
               "the one MessagePack scanner holds a request's nesting");

#endif
