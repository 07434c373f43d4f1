/* http.h - the HTTP/JSON front door (--http HOST:PORT): the command table over JSON, the OpenAPI
 * description, Server-Sent Events, health and readiness, and the service console.
 *
 * Contract: libmicrohttpd runs inside the server's libuv loop (external polling: its epoll
 * descriptor is watched by a uv_poll_t, its timeouts by a uv_timer_t), so every request is
 * handled on the loop thread and reaches the domain state without a lock, exactly like a
 * MessagePack-RPC request. Routes:
 *   POST /v1/METHOD       the params map as a JSON object body (empty body: {}) -> the result as
 *                         JSON (200), or {"error": {"code", "message", ...details}} with the
 *                         status of http_status_for_code. The request is packed as a
 *                         MessagePack-RPC request and goes through dispatch_object, so every
 *                         method of net/commands.def is served with no code of its own, through
 *                         the same checks and handlers. A WRITE reply is held until its WAL
 *                         records are durable; a deferred reply (server.checkpoint) is answered
 *                         when the server sends it (http_reply_deferred).
 *   GET /v1/openapi.json  OpenAPI 3.1, generated at start from the command table and the
 *                         argument descriptions (net/http_args.def; http_openapi.c).
 *   GET /v1/events        Server-Sent Events read through the events.read method (http_events.c).
 *   GET /healthz          200 while the process serves; GET /readyz: 200 when ready for clients
 *                         (standalone or leader: accepting writes; follower: serving reads), else
 *                         503 with the reason.
 *   GET /                 the service console (static files built into allotd, http_console.c).
 * Authentication: with a token configured, `Authorization: Bearer TOKEN` on each request; the
 * check is server_auth_attempt's (same token, same per-connection and per-address back-off and
 * log lines). Limits: bodies over --request-bytes-max are refused with 413 (by Content-Length
 * before the body is read; a chunked body is cut off), replies over --output-bytes-max answer
 * TOO_LARGE, at most --http-connections-max connections, each closed after --http-timeout-s
 * without progress (slow clients), and the global --buffer-bytes-max budget applies as on the
 * RPC port (OVERLOADED).
 * Errors: http_start returns NULL with a message (address, bind). Loop thread only.
 */
#ifndef ALLOT_NET_HTTP_H
#define ALLOT_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h" /* HTTP_*: connections, timeouts, SSE pacing */

struct server;
typedef struct http http_t;
typedef struct http_exchange http_exchange_t;

/* The HTTP status of an error code name (its wire string): 400 INVALID_ARGUMENT,
 * 401 UNAUTHENTICATED, 404 NOT_FOUND / UNKNOWN_METHOD, 409 CONFLICT / INVALID_TRANSITION /
 * INSUFFICIENT_STOCK / LIMIT_EXCEEDED, 410 EXPIRED, 413 TOO_LARGE, 429 OVERLOADED / QUEUED,
 * 503 UNAVAILABLE / NOT_LEADER, 500 for anything else. By name, so a code added to
 * core/errors.h later maps without a change here. */
unsigned http_status_for_code(const char *code, size_t code_len);

/* Start serving on host:port (an IPv4 address or localhost) in the server's loop; NULL with a
 * message on failure. */
http_t *http_start(struct server *server, const char *host, uint16_t port, char *error,
                   size_t error_bytes);
/* The WAL is durable up to durable_lsn: send the held WRITE replies it covers. */
void http_durable(http_t *http, uint64_t durable_lsn);
/* Answer an exchange whose handler deferred its reply: bytes are one whole MessagePack-RPC
 * response. */
void http_reply_deferred(http_exchange_t *exchange, const char *bytes, size_t len);
/* Shutting down: stop accepting connections (those open are still answered). */
void http_quiesce(http_t *http);
/* Answer what is still waiting (503), close the loop handles; the daemon and memory are freed
 * once the handles closed (the loop must run). NULL is fine. */
void http_stop(http_t *http);

/* http_openapi.c: the OpenAPI document (malloc'ed JSON text, caller frees; NULL when out of
 * memory). token_required: describe the bearer scheme as required. */
char *http_openapi_render(int token_required, size_t *len_out);

/* A file of the console (net/console/, built into allotd by tools/embed-console.cmake). */
typedef struct http_console_file {
    const char *path; /* "/index.html" */
    const char *content_type;
    const unsigned char *bytes;
    size_t len;
} http_console_file_t;

/* http_console.c: the console file for a URL path ("/" is "/index.html"); 0 when found. */
int http_console_find(const char *path, const unsigned char **bytes, size_t *len,
                      const char **content_type);

#endif
