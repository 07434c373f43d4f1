/* auth.h - optional token authentication for client connections.
 *
 * Contract: with `--auth-token-file FILE`, the server loads one token (the file's first line,
 * 16..512 bytes, surrounding whitespace trimmed) at start-up and refuses to start when the file
 * is readable or writable by group or others (it must be mode 0600 or 0400). A connection then
 * starts unauthenticated: every method except `ping` and `auth` answers UNAUTHENTICATED until
 * `auth {token}` succeeds. Tokens are compared in constant time. Failed attempts are logged and
 * rate-limited per connection: after AUTH_FAILURES_FREE failures each further attempt must wait
 * AUTH_BACKOFF_MS (doubling, capped) or is refused unchecked, and after AUTH_FAILURES_MAX the
 * connection is closed. The same back-off applies per client address across connections
 * (auth_peers_t: IPv4 addresses whole, IPv6 by their /64, as one host usually holds a /64), so
 * reconnecting does not reset it: a table of AUTH_PEERS_MAX addresses with recent failures, in
 * fixed memory; an address is forgotten AUTH_PEER_FORGET_MS after its last failure, and when
 * its probe window is full the stalest entry there is evicted. A success does not clear its
 * address (a client sharing the address with a guesser would hand it fresh attempts). Loop
 * thread only; no allocation after auth_token_load and auth_peers_create.
 */
#ifndef ALLOT_NET_AUTH_H
#define ALLOT_NET_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h" /* AUTH_*: token size, failures, back-off, remembered addresses */

typedef struct auth_token {
    bool required;
    size_t len;
    char bytes[AUTH_TOKEN_BYTES_MAX];
} auth_token_t;

/* A client address as the per-address limit sees it (IPv4 as ::ffff:a.b.c.d; IPv6 cut to its
 * /64). */
typedef struct auth_peer_key {
    uint8_t bytes[16];
} auth_peer_key_t;

/* Per-connection authentication state. */
typedef struct auth_session {
    bool authenticated;
    uint32_t failures;
    int64_t retry_after_ms; /* monotonic ms before which attempts are refused unchecked */
    auth_peer_key_t peer;   /* the client's address */
    /* an HTTP client's "ip:port" (net/http.h): no RPC connection holds this session; NULL on
     * the RPC port */
    const char *http_peer;
} auth_session_t;

/* Failures per client address (opaque; see the contract above). */
typedef struct auth_peers auth_peers_t;

typedef enum auth_result {
    AUTH_OK = 0,
    AUTH_WRONG_TOKEN,  /* counted, logged */
    AUTH_RATE_LIMITED, /* refused without comparing */
    AUTH_CLOSE,        /* too many failures: close the connection */
} auth_result_t;

/* 0, or -1 with a message (missing file, bad mode, token too short/long). */
int auth_token_load(auth_token_t *token, const char *path, char *error, size_t error_bytes);

/* The table of addresses, hashed with `seed` (random per process, so that nobody can choose
 * addresses that collide); NULL when out of memory. */
auth_peers_t *auth_peers_create(uint64_t seed);
void auth_peers_destroy(auth_peers_t *peers);

/* Failures counted against the session's address (0 when none are remembered), and the
 * addresses evicted from the table so far. */
uint32_t auth_peer_failures(const auth_peers_t *peers, const auth_peer_key_t *key, int64_t now_ms);
uint64_t auth_peers_evicted(const auth_peers_t *peers);

/* The key of an AF_INET or AF_INET6 address (anything else: all zero). */
struct sockaddr;
void auth_peer_key_from_address(const struct sockaddr *address, auth_peer_key_t *key);

/* Check a presented token against the configured one (constant time in the token length).
 * peers may be NULL (no per-address limit). *retry_in_ms (may be NULL) is how long the caller
 * must wait before its next attempt is checked (0: at once). */
auth_result_t auth_attempt(const auth_token_t *token, auth_peers_t *peers, auth_session_t *session,
                           const char *presented, size_t presented_len, int64_t now_ms,
                           int64_t *retry_in_ms);

/* Constant-time comparison of a and b (time depends only on the lengths). */
bool auth_equal_constant_time(const char *a, size_t a_len, const char *b, size_t b_len);

#endif
