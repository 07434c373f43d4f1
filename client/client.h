/* client.h - liballot: a blocking MessagePack-RPC client for Allot (CLI, tests, bench, and any C
 * program: the client library is the room client/, with json_msgpack.h and frame.h).
 *
 * Contract:
 *   - One allot_client_t is one TCP connection (IPv4 or IPv6, TCP_NODELAY), used by one thread.
 *     Create it with allot_client_create, connect with allot_client_connect (again to reconnect),
 *     free it with allot_client_close.
 *   - Every function that can fail returns 0 or a negative ALLOT_E* (core/errors.h) and leaves a
 *     human message in allot_client_last_error(c) ("connect 127.0.0.1:7411: Connection refused",
 *     "timed out after 5000 ms", "server closed the connection") and the system cause in
 *     allot_client_last_errno(c) (ETIMEDOUT, ECONNREFUSED, ECONNRESET for a closed connection,
 *     EPROTO for a malformed reply, EMSGSIZE for an oversized one, 0 for argument errors).
 *       ALLOT_EINVALID_ARGUMENT  bad arguments (params not one msgpack map, invalid JSON, ...)
 *       ALLOT_EIO                connect/send/receive failure, timeout, connection closed
 *       ALLOT_ETOO_LARGE         a reply larger than the reply limit (connection then unusable)
 *       ALLOT_ECORRUPT           the server sent bytes that are not a MessagePack-RPC response
 *       ALLOT_ENOMEM             out of memory
 *     A server-side error is NOT a failure of the call: the call returns 0 and the reply has
 *     is_error set, with the wire code and message copied out.
 *   - Timeouts (milliseconds, <= 0 means wait forever) bound each public call as a whole,
 *     polling the non-blocking socket. A timeout leaves the connection usable: a reply that
 *     arrives later is skipped by allot_client_call (msgid mismatch) or returned by the next
 *     allot_client_recv. Any other I/O or protocol failure closes the connection; replies that
 *     were already received completely can still be read with allot_client_recv.
 *   - Requests are [0, msgid, method, [params]] with msgids 1, 2, ... (wrapping, never 0).
 *     Server notifications ([2, ...]) are skipped, or handed to allot_client_set_notification_cb.
 *   - Bounded: at most reply_bytes_max (default ALLOT_CLIENT_REPLY_BYTES_MAX) bytes of received,
 *     unconsumed data are buffered; a single reply that cannot fit fails with ALLOT_ETOO_LARGE
 *     before it is allocated, as does nesting deeper than ALLOT_CLIENT_DEPTH_MAX. Requests
 *     buffered by allot_client_send are flushed automatically past ALLOT_CLIENT_SEND_BYTES_MAX.
 *   - Writes use MSG_NOSIGNAL: a closed connection never raises SIGPIPE.
 *   - Groups (PROTOCOL.md "Cluster"): allot_client_call and allot_client_call_json follow
 *     NOT_LEADER, so a client given any member's address just works. A NOT_LEADER reply naming
 *     the leader's client address ("host:port", "[v6]:port") makes the call reconnect there and
 *     send the request again; one naming none (an election), naming the node itself, or naming a
 *     leader that cannot be reached (the client then reconnects to the node it was sent to) makes
 *     it pause (ALLOT_CLIENT_REDIRECT_PAUSE_MS_FIRST, doubling up to
 *     ALLOT_CLIENT_REDIRECT_PAUSE_MS_MAX) and send again. At most redirects_max times per call
 *     (default ALLOT_CLIENT_REDIRECTS_MAX_DEFAULT, 0 = never), all within the call's timeout;
 *     then the last NOT_LEADER reply is the call's reply. Resending is safe: a node that
 *     answers NOT_LEADER changed nothing. The connection stays with the leader afterwards. Only
 *     NOT_LEADER is followed: UNAVAILABLE (a new leader catching up, a leader without its
 *     majority) and I/O failures are the caller's to retry, with the same idempotent id. The
 *     pipelining calls (send/recv) never redirect.
 */
#ifndef ALLOT_CLIENT_CLIENT_H
#define ALLOT_CLIENT_CLIENT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ALLOT_CLIENT_PORT_DEFAULT, ALLOT_CLIENT_TIMEOUT_MS_DEFAULT, ALLOT_CLIENT_REPLY_BYTES_MAX,
 * ALLOT_CLIENT_SEND_BYTES_MAX, ALLOT_CLIENT_DEPTH_MAX and the client's other bounds. */
#include "core/limits.h"

#define ALLOT_CLIENT_ERROR_BYTES 256

typedef struct allot_client allot_client_t;

/* One response. Zero-initialize before first use (allot_reply_t r = {0}, or allot_reply_init);
 * every call that fills a reply frees its previous contents first, so one reply can be reused
 * in a loop; allot_reply_free when done. The msgpack_objects stay valid until then. */
typedef struct allot_reply {
    uint32_t msgid;
    bool is_error;         /* error was not nil */
    char code[32];         /* error "code" (e.g. "NOT_FOUND"); "ERROR" if it had none; "" if ok */
    char message[256];     /* error "message" (or the error itself when it is a str); truncated */
    msgpack_object error;  /* the whole error object (nil on success): details live here */
    msgpack_object result; /* the result (nil on error) */
    /* private */
    msgpack_unpacked unpacked_private;
    char *bytes_private;
} allot_reply_t;

void allot_reply_init(allot_reply_t *reply);
void allot_reply_free(allot_reply_t *reply);

/* A client that is not connected yet; NULL only when out of memory. Timeout starts at
 * ALLOT_CLIENT_TIMEOUT_MS_DEFAULT. */
allot_client_t *allot_client_create(void);
/* Connect (closing any previous connection and dropping its buffers). host is a name or a
 * numeric IPv4/IPv6 address; timeout_ms bounds the connect and becomes the call timeout. */
int allot_client_connect(allot_client_t *c, const char *host, uint16_t port, int timeout_ms);
/* Close the connection and free the client (NULL is fine). */
void allot_client_close(allot_client_t *c);
void allot_client_set_timeout(allot_client_t *c, int timeout_ms);
/* Lower (or raise, up to 1 GiB) the receive bound; for tests and memory-tight tools. */
void allot_client_set_reply_bytes_max(allot_client_t *c, size_t reply_bytes_max);
bool allot_client_connected(const allot_client_t *c);

/* Send one request and wait for the reply with its msgid (replies to other msgids are
 * dropped). params: msgpack bytes of exactly one map (NULL/0 means {}). */
int allot_client_call(allot_client_t *c, const char *method, const void *params_map_msgpack,
                      size_t len, allot_reply_t *reply);
/* Same with params as JSON text of one object (NULL or "" means {}). */
int allot_client_call_json(allot_client_t *c, const char *method, const char *params_json,
                           allot_reply_t *reply);

/* Pipelining: buffer a request (returns its msgid); buffered bytes go out on flush, on recv,
 * or when more than ALLOT_CLIENT_SEND_BYTES_MAX are pending. */
int allot_client_send(allot_client_t *c, const char *method, const void *params_map_msgpack,
                      size_t len, uint32_t *msgid_out);
int allot_client_send_json(allot_client_t *c, const char *method, const char *params_json,
                           uint32_t *msgid_out);
/* Buffer arbitrary bytes (hostile-input tests); nothing is checked. */
int allot_client_send_raw(allot_client_t *c, const void *bytes, size_t len);
/* Write every buffered byte (reading replies meanwhile so neither side can stall). */
int allot_client_flush(allot_client_t *c);
/* Flush, then return the next response in arrival order. */
int allot_client_recv(allot_client_t *c, allot_reply_t *reply);

/* The token (len bytes) a redirect sends with `auth` on the connection it opens, before the
 * request: set it when the server requires one (NULL/0 forgets it; it is wiped on close). When
 * the leader refuses it, the call's reply is that UNAUTHENTICATED error. ALLOT_ENOMEM. The first
 * connection is the caller's to authenticate. */
int allot_client_set_auth_token(allot_client_t *c, const char *token, size_t len);
/* NOT_LEADER redirects one call may follow (0 = none; negative counts as 0). */
void allot_client_set_redirects_max(allot_client_t *c, int redirects_max);
/* Redirects followed since create (reconnects to a leader and pauses in an election). */
uint64_t allot_client_redirects(const allot_client_t *c);
/* "host:port" of the current (or last) connection; "(not connected)" before the first. */
const char *allot_client_peer(const allot_client_t *c);
/* Server notifications ([2, method, params], e.g. events.subscribe's "event") met while
 * waiting for replies go to cb (params valid during the call only) instead of being skipped. */
typedef void (*allot_notification_cb)(void *ctx, const char *method, size_t method_len,
                                      const msgpack_object *params);
void allot_client_set_notification_cb(allot_client_t *c, allot_notification_cb cb, void *ctx);

const char *allot_client_last_error(const allot_client_t *c);
int allot_client_last_errno(const allot_client_t *c);
/* The socket (-1 when not connected); for poll() by callers that multiplex clients. */
int allot_client_fd(const allot_client_t *c);
/* Complete or partial reply bytes already received and not yet returned by recv. */
size_t allot_client_buffered_bytes(const allot_client_t *c);

/* Helpers for reading replies: the value under a str key of a map (NULL when absent or when
 * map is not a map), and whether an object is the str `s`. */
const msgpack_object *allot_object_map_get(const msgpack_object *map, const char *key);
bool allot_object_str_equal(const msgpack_object *object, const char *s);

#endif
