/* metrics_http.h - the Prometheus endpoint: GET /metrics on --metrics HOST:PORT.
 *
 * Contract: served by libmicrohttpd on its own thread. The loop renders the metrics text once
 * a second (metrics_http_publish) into a buffer guarded by a mutex; requests copy that buffer
 * and never touch loop state. GET /health answers 200 "ok" while the last publication said
 * healthy and is at most METRICS_HTTP_HEALTH_STALE_MS old, else 503 with the problem (writes
 * refused, shutting down, or the loop has not published for that long: stalled). Anything else
 * answers 404; at most METRICS_HTTP_CONNECTIONS_MAX connections at once, each with a 5 s
 * timeout.
 */
#ifndef ALLOT_NET_METRICS_HTTP_H
#define ALLOT_NET_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h" /* METRICS_HTTP_*: connections, page size, /health staleness */

typedef struct metrics_http metrics_http_t;

/* 0 when host can be served on (an IPv4 address); else -1 with a message. */
int metrics_http_address_check(const char *host, char *error, size_t error_bytes);

/* Start listening; NULL with a message on failure. */
metrics_http_t *metrics_http_start(const char *host, uint16_t port, char *error,
                                   size_t error_bytes);
/* Replace the text served (copied) and the health: problem NULL = healthy, else why not. */
void metrics_http_publish(metrics_http_t *http, const char *text, size_t len,
                          const char *problem);
void metrics_http_stop(metrics_http_t *http);

#endif
