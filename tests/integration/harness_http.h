/* harness_http.h - HTTP requests to allotd's --http front door for integration tests.
 *
 * Contract (Criterion tests only; "asserts" fail the current test): plain sockets, HTTP/1.1 with
 * `Connection: close`, so a response ends at EOF; no chunked decoding (the API never chunks a
 * reply; event streams are read raw). Every call has a 10 s limit.
 */
#ifndef ALLOT_TESTS_HARNESS_HTTP_H
#define ALLOT_TESTS_HARNESS_HTTP_H

#include <stdint.h>

#include "harness.h"

/* Start allotd with --http 127.0.0.1:*http_port plus extra_args (may be NULL); the HTTP port is
 * reserved as the server's own (harness_port_reserve: below the ephemeral range, locked). */
harness_server_t *harness_http_server_start(const char *extra_args, uint16_t *http_port);
/* A connected socket to 127.0.0.1:port (asserts), with a 10 s receive timeout. */
int harness_http_connect(uint16_t port);
/* Send `method path` with extra header lines (each ending in \r\n; may be NULL) and a body (may
 * be NULL: none); returns the status and stores the body (malloc'ed) in *body_out (may be NULL)
 * and the headers in *headers_out (may be NULL). Asserts a response came. */
int harness_http(uint16_t port, const char *method, const char *path, const char *headers,
                 const char *body, char **body_out, char **headers_out);
/* POST /v1/METHOD with a JSON body: the status; the body in *body_out (may be NULL). */
int harness_http_call(uint16_t port, const char *method, const char *json, char **body_out);
/* Read everything from fd until EOF or timeout_ms (malloc'ed, NUL-terminated). */
char *harness_http_read_all(int fd, int timeout_ms);

#endif
