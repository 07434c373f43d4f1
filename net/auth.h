/* auth.h - optional token authentication for client connections.
 *
 * Contract: with `--auth-token-file FILE`, the server loads one token (the file's first line,
 * 16..512 bytes, surrounding whitespace trimmed) at start-up and refuses to start when the file
 * is readable or writable by group or others (it must be mode 0600 or 0400). A connection then
 * starts unauthenticated: every method except `ping` and `auth` answers UNAUTHENTICATED until
 * `auth {token}` succeeds. Tokens are compared in constant time. Failed attempts are logged and
 * rate-limited per connection: after AUTH_FAILURES_FREE failures each further attempt must wait
 * AUTH_BACKOFF_MS (doubling, capped) or is refused unchecked, and after AUTH_FAILURES_MAX the
 * connection is closed. Loop thread only; no allocation after auth_token_load.
 */
#ifndef ALLOT_NET_AUTH_H
#define ALLOT_NET_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_TOKEN_BYTES_MIN 16
#define AUTH_TOKEN_BYTES_MAX 512
#define AUTH_FAILURES_FREE 3
#define AUTH_FAILURES_MAX 10
#define AUTH_BACKOFF_MS 1000
#define AUTH_BACKOFF_MS_MAX 30000

typedef struct auth_token {
    bool required;
    size_t len;
    char bytes[AUTH_TOKEN_BYTES_MAX];
} auth_token_t;

/* Per-connection authentication state. */
typedef struct auth_session {
    bool authenticated;
    uint32_t failures;
    int64_t retry_after_ms; /* monotonic ms before which attempts are refused unchecked */
} auth_session_t;

typedef enum auth_result {
    AUTH_OK = 0,
    AUTH_WRONG_TOKEN,  /* counted, logged */
    AUTH_RATE_LIMITED, /* refused without comparing */
    AUTH_CLOSE,        /* too many failures: close the connection */
} auth_result_t;

/* 0, or -1 with a message (missing file, bad mode, token too short/long). */
int auth_token_load(auth_token_t *token, const char *path, char *error, size_t error_bytes);

/* Check a presented token against the configured one (constant time in the token length). */
auth_result_t auth_attempt(const auth_token_t *token, auth_session_t *session,
                           const char *presented, size_t presented_len, int64_t now_ms);

/* Constant-time comparison of a and b (time depends only on the lengths). */
bool auth_equal_constant_time(const char *a, size_t a_len, const char *b, size_t b_len);

#endif
