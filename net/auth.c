/* auth.c - token loading, constant-time comparison, rate limiting per connection and address. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int load_fail(char *error, size_t bytes, const char *path, const char *why)
{
    snprintf(error, bytes, "auth token file '%s': %s", path, why);
    return -1;
}

int auth_token_load(auth_token_t *token, const char *path, char *error, size_t error_bytes)
{
    memset(token, 0, sizeof(*token));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return load_fail(error, error_bytes, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return load_fail(error, error_bytes, path, "not a regular file");
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        return load_fail(error, error_bytes, path,
                         "readable or writable by group/others (chmod 600 it)");
    }
    char buf[AUTH_TOKEN_BYTES_MAX + 64];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return load_fail(error, error_bytes, path, strerror(errno));
    buf[n] = '\0';
    char *start = buf;
    while (*start == ' ' || *start == '\t')
        start++;
    size_t len = strcspn(start, "\r\n");
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
        len--;
    if (len < AUTH_TOKEN_BYTES_MIN || len > AUTH_TOKEN_BYTES_MAX)
        return load_fail(error, error_bytes, path, "token must be 16..512 bytes on the first line");
    memcpy(token->bytes, start, len);
    token->len = len;
    token->required = true;
    memset(buf, 0, sizeof(buf));
    return 0;
}

bool auth_equal_constant_time(const char *a, size_t a_len, const char *b, size_t b_len)
{
    /* Compare over b's length whatever a is, so timing reveals nothing about the content. */
    volatile unsigned char diff = (unsigned char)(a_len != b_len);
    for (size_t i = 0; i < b_len; i++) {
        unsigned char x = i < a_len ? (unsigned char)a[i] : 0;
        diff |= (unsigned char)(x ^ (unsigned char)b[i]);
    }
    return diff == 0;
}

/* ---- per-address failures ------------------------------------------------------------------ */

typedef struct auth_peer {
    auth_peer_key_t key;
    uint32_t failures; /* 0: the slot is free */
    int64_t retry_after_ms;
    int64_t last_failure_ms;
} auth_peer_t;

struct auth_peers {
    uint64_t seed;
    uint64_t evicted;
    auth_peer_t slots[AUTH_PEERS_MAX];
};

auth_peers_t *auth_peers_create(uint64_t seed)
{
    auth_peers_t *peers = calloc(1, sizeof(*peers));
    if (peers != NULL)
        peers->seed = seed;
    return peers;
}

void auth_peers_destroy(auth_peers_t *peers)
{
    free(peers);
}

uint64_t auth_peers_evicted(const auth_peers_t *peers)
{
    return peers != NULL ? peers->evicted : 0;
}

void auth_peer_key_from_address(const struct sockaddr *address, auth_peer_key_t *key)
{
    memset(key, 0, sizeof(*key));
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
        key->bytes[10] = key->bytes[11] = 0xff;
        memcpy(key->bytes + 12, &v4->sin_addr, 4);
    } else if (address->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
        static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        bool mapped = memcmp(v6->sin6_addr.s6_addr, v4_mapped, sizeof(v4_mapped)) == 0;
        memcpy(key->bytes, v6->sin6_addr.s6_addr, mapped ? 16 : 8); /* else the /64 */
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint32_t peer_slot_first(const auth_peers_t *peers, const auth_peer_key_t *key)
{
    uint64_t high, low;
    memcpy(&high, key->bytes, 8);
    memcpy(&low, key->bytes + 8, 8);
    return (uint32_t)(mix64(mix64(peers->seed ^ high) ^ low) & (AUTH_PEERS_MAX - 1));
}

static bool peer_live(const auth_peer_t *peer, int64_t now_ms)
{
    return peer->failures > 0 && now_ms - peer->last_failure_ms < AUTH_PEER_FORGET_MS;
}

/* The live entry of key, or NULL. */
static auth_peer_t *peer_find(auth_peers_t *peers, const auth_peer_key_t *key, int64_t now_ms)
{
    uint32_t first = peer_slot_first(peers, key);
    for (uint32_t i = 0; i < AUTH_PEER_PROBE_MAX; i++) {
        auth_peer_t *peer = &peers->slots[(first + i) & (AUTH_PEERS_MAX - 1)];
        if (peer_live(peer, now_ms) && memcmp(&peer->key, key, sizeof(*key)) == 0)
            return peer;
    }
    return NULL;
}

/* The entry of key, made when missing: in a free (or forgotten) slot of its probe window, else
 * in place of the entry there with the oldest last failure. */
static auth_peer_t *peer_claim(auth_peers_t *peers, const auth_peer_key_t *key, int64_t now_ms)
{
    auth_peer_t *found = peer_find(peers, key, now_ms);
    if (found != NULL)
        return found;
    uint32_t first = peer_slot_first(peers, key);
    auth_peer_t *victim = NULL;
    for (uint32_t i = 0; i < AUTH_PEER_PROBE_MAX; i++) {
        auth_peer_t *peer = &peers->slots[(first + i) & (AUTH_PEERS_MAX - 1)];
        if (!peer_live(peer, now_ms)) {
            victim = peer;
            break;
        }
        if (victim == NULL || peer->last_failure_ms < victim->last_failure_ms)
            victim = peer;
    }
    if (peer_live(victim, now_ms))
        peers->evicted++;
    *victim = (auth_peer_t){.key = *key};
    return victim;
}

uint32_t auth_peer_failures(const auth_peers_t *peers, const auth_peer_key_t *key, int64_t now_ms)
{
    if (peers == NULL)
        return 0;
    const auth_peer_t *peer = peer_find((auth_peers_t *)peers, key, now_ms);
    return peer != NULL ? peer->failures : 0;
}

/* ---- attempts ----------------------------------------------------------------------------------
 */

/* After AUTH_FAILURES_FREE failures: AUTH_BACKOFF_MS, doubling with each failure, capped. */
static int64_t backoff_ms(uint32_t failures)
{
    if (failures < AUTH_FAILURES_FREE)
        return 0;
    uint32_t doublings = failures - AUTH_FAILURES_FREE;
    int64_t wait_ms = (int64_t)AUTH_BACKOFF_MS << (doublings > 5 ? 5 : doublings);
    return wait_ms < AUTH_BACKOFF_MS_MAX ? wait_ms : AUTH_BACKOFF_MS_MAX;
}

/* How long before the next attempt is checked (0: now), by the connection's and the address's
 * failures, whichever waits longer. */
static int64_t attempt_wait_ms(const auth_session_t *session, const auth_peer_t *peer,
                               int64_t now_ms)
{
    int64_t wait_ms = 0;
    if (session->failures >= AUTH_FAILURES_FREE && now_ms < session->retry_after_ms)
        wait_ms = session->retry_after_ms - now_ms;
    if (peer != NULL && peer->failures >= AUTH_FAILURES_FREE && now_ms < peer->retry_after_ms &&
        peer->retry_after_ms - now_ms > wait_ms)
        wait_ms = peer->retry_after_ms - now_ms;
    return wait_ms;
}

static void failure_count(auth_peers_t *peers, auth_session_t *session, int64_t now_ms)
{
    session->failures++;
    if (session->failures >= AUTH_FAILURES_FREE)
        session->retry_after_ms = now_ms + backoff_ms(session->failures);
    if (peers == NULL)
        return;
    auth_peer_t *peer = peer_claim(peers, &session->peer, now_ms);
    peer->failures++;
    peer->last_failure_ms = now_ms;
    if (peer->failures >= AUTH_FAILURES_FREE)
        peer->retry_after_ms = now_ms + backoff_ms(peer->failures);
}

auth_result_t auth_attempt(const auth_token_t *token, auth_peers_t *peers, auth_session_t *session,
                           const char *presented, size_t presented_len, int64_t now_ms,
                           int64_t *retry_in_ms)
{
    int64_t ignored;
    retry_in_ms = retry_in_ms != NULL ? retry_in_ms : &ignored;
    *retry_in_ms = 0;
    if (!token->required || session->authenticated) {
        session->authenticated = true;
        return AUTH_OK;
    }
    const auth_peer_t *peer = peers != NULL ? peer_find(peers, &session->peer, now_ms) : NULL;
    *retry_in_ms = attempt_wait_ms(session, peer, now_ms);
    if (*retry_in_ms > 0)
        return AUTH_RATE_LIMITED;
    if (auth_equal_constant_time(presented, presented_len, token->bytes, token->len)) {
        session->authenticated = true;
        session->failures = 0;
        return AUTH_OK;
    }
    failure_count(peers, session, now_ms);
    if (session->failures >= AUTH_FAILURES_MAX)
        return AUTH_CLOSE;
    peer = peers != NULL ? peer_find(peers, &session->peer, now_ms) : NULL;
    *retry_in_ms = attempt_wait_ms(session, peer, now_ms);
    return AUTH_WRONG_TOKEN;
}
