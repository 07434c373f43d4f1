/* test_net_auth.c - token file checks, constant-time comparison, rate limits per connection and
 * per client address. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/auth.h"

static const char *token_file_write(const char *content, mode_t mode)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/allot-auth-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    chmod(path, mode);
    return path;
}

Test(auth, loads_a_private_token_file_and_trims_the_line)
{
    const char *path = token_file_write("  s3cret-token-0123456789 \nsecond line\n", 0600);
    auth_token_t token;
    char error[256];
    cr_assert_eq(auth_token_load(&token, path, error, sizeof(error)), 0, "%s", error);
    cr_assert(token.required);
    cr_assert_eq(token.len, strlen("s3cret-token-0123456789"));
    cr_assert(memcmp(token.bytes, "s3cret-token-0123456789", token.len) == 0);
    unlink(path);
}

Test(auth, refuses_a_token_file_readable_by_others)
{
    const char *path = token_file_write("s3cret-token-0123456789\n", 0644);
    auth_token_t token;
    char error[256];
    cr_assert_neq(auth_token_load(&token, path, error, sizeof(error)), 0);
    cr_assert(strstr(error, "chmod 600") != NULL, "%s", error);
    unlink(path);
}

Test(auth, refuses_a_short_token_and_a_missing_file)
{
    const char *path = token_file_write("short\n", 0600);
    auth_token_t token;
    char error[256];
    cr_assert_neq(auth_token_load(&token, path, error, sizeof(error)), 0);
    unlink(path);
    cr_assert_neq(auth_token_load(&token, "/nonexistent/token", error, sizeof(error)), 0);
}

Test(auth, constant_time_comparison_is_exact)
{
    cr_assert(auth_equal_constant_time("abcdef", 6, "abcdef", 6));
    cr_assert_not(auth_equal_constant_time("abcdeg", 6, "abcdef", 6));
    cr_assert_not(auth_equal_constant_time("abcde", 5, "abcdef", 6));
    cr_assert_not(auth_equal_constant_time("abcdefg", 7, "abcdef", 6));
    cr_assert_not(auth_equal_constant_time("", 0, "abcdef", 6));
}

Test(auth, failures_are_rate_limited_then_the_connection_is_closed)
{
    auth_token_t token = {.required = true, .len = 16};
    memcpy(token.bytes, "0123456789abcdef", 16);
    auth_session_t session = {0};
    int64_t now_ms = 1000;
    for (int i = 0; i < AUTH_FAILURES_FREE; i++)
        cr_assert_eq(auth_attempt(&token, NULL, &session, "wrong", 5, now_ms, NULL),
                     AUTH_WRONG_TOKEN);
    /* backing off: even the right token is refused unchecked until the wait is over */
    cr_assert_eq(auth_attempt(&token, NULL, &session, "0123456789abcdef", 16, now_ms, NULL),
                 AUTH_RATE_LIMITED);
    cr_assert_not(session.authenticated);
    now_ms = session.retry_after_ms;
    cr_assert_eq(auth_attempt(&token, NULL, &session, "0123456789abcdef", 16, now_ms, NULL),
                 AUTH_OK);
    cr_assert(session.authenticated);

    auth_session_t attacker = {0};
    auth_result_t result = AUTH_WRONG_TOKEN;
    for (int i = 0; i < 100 && result != AUTH_CLOSE; i++) {
        result = auth_attempt(&token, NULL, &attacker, "guess", 5, now_ms, NULL);
        now_ms = attacker.retry_after_ms > now_ms ? attacker.retry_after_ms : now_ms;
    }
    cr_assert_eq(result, AUTH_CLOSE);
    cr_assert_eq(attacker.failures, AUTH_FAILURES_MAX);
}

Test(auth, without_a_token_everything_is_allowed)
{
    auth_token_t token = {.required = false};
    auth_session_t session = {0};
    cr_assert_eq(auth_attempt(&token, NULL, &session, "", 0, 0, NULL), AUTH_OK);
}

/* ---- per client address ---------------------------------------------------------------------- */

#define RIGHT_TOKEN "0123456789abcdef"

static auth_token_t token_make(void)
{
    auth_token_t token = {.required = true, .len = 16};
    memcpy(token.bytes, RIGHT_TOKEN, 16);
    return token;
}

/* A fresh connection's session from IPv4 address `ip`. */
static auth_session_t session_from(const char *ip)
{
    auth_session_t session = {0};
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(40000)};
    cr_assert_eq(inet_pton(AF_INET, ip, &address.sin_addr), 1);
    auth_peer_key_from_address((const struct sockaddr *)&address, &session.peer);
    return session;
}

static auth_peer_key_t key_of_ipv6(const char *ip)
{
    struct sockaddr_in6 address = {.sin6_family = AF_INET6};
    cr_assert_eq(inet_pton(AF_INET6, ip, &address.sin6_addr), 1);
    auth_peer_key_t key;
    auth_peer_key_from_address((const struct sockaddr *)&address, &key);
    return key;
}

Test(auth, reconnecting_does_not_reset_the_back_off_of_the_address)
{
    auth_token_t token = token_make();
    auth_peers_t *peers = auth_peers_create(42);
    int64_t now_ms = 5000, retry_in_ms = -1;
    auth_session_t first = session_from("192.0.2.7");
    for (int i = 0; i < AUTH_FAILURES_FREE; i++)
        cr_assert_eq(auth_attempt(&token, peers, &first, "wrong", 5, now_ms, NULL),
                     AUTH_WRONG_TOKEN);
    /* a new connection from the same address must wait as the first one does */
    auth_session_t second = session_from("192.0.2.7");
    cr_assert_eq(auth_attempt(&token, peers, &second, RIGHT_TOKEN, 16, now_ms, &retry_in_ms),
                 AUTH_RATE_LIMITED);
    cr_assert_eq(retry_in_ms, AUTH_BACKOFF_MS);
    cr_assert_eq(second.failures, 0, "a refused attempt is not a checked one");
    /* another address is not affected */
    auth_session_t other = session_from("198.51.100.9");
    cr_assert_eq(auth_attempt(&token, peers, &other, RIGHT_TOKEN, 16, now_ms, &retry_in_ms),
                 AUTH_OK);
    cr_assert_eq(retry_in_ms, 0);
    /* once the wait is over the next attempt is checked; a wrong one doubles the wait */
    now_ms += AUTH_BACKOFF_MS;
    cr_assert_eq(auth_attempt(&token, peers, &second, "wrong", 5, now_ms, &retry_in_ms),
                 AUTH_WRONG_TOKEN);
    cr_assert_eq(retry_in_ms, 2 * AUTH_BACKOFF_MS);
    cr_assert_eq(auth_peer_failures(peers, &second.peer, now_ms), AUTH_FAILURES_FREE + 1);
    now_ms += 2 * AUTH_BACKOFF_MS;
    cr_assert_eq(auth_attempt(&token, peers, &second, RIGHT_TOKEN, 16, now_ms, NULL), AUTH_OK);
    auth_peers_destroy(peers);
}

Test(auth, a_guesser_reconnecting_every_third_guess_gets_a_few_guesses_per_minute)
{
    auth_token_t token = token_make();
    auth_peers_t *peers = auth_peers_create(7);
    int checked = 0, refused = 0;
    auth_session_t session = session_from("203.0.113.5");
    /* one attempt every millisecond for a minute, on a fresh connection every third attempt */
    for (int64_t now_ms = 1000; now_ms < 61000; now_ms++) {
        if (session.failures == 2)
            session = session_from("203.0.113.5");
        auth_result_t result = auth_attempt(&token, peers, &session, "guess", 5, now_ms, NULL);
        checked += result == AUTH_WRONG_TOKEN || result == AUTH_CLOSE;
        refused += result == AUTH_RATE_LIMITED;
    }
    /* 3 free, then waits of 1, 2, 4, 8, 16 and 30 s: 8 in the first minute */
    cr_assert_leq(checked, 9, "%d guesses were checked", checked);
    cr_assert_gt(refused, 50000);
    auth_peers_destroy(peers);
}

Test(auth, an_address_is_forgotten_after_a_quiet_while)
{
    auth_token_t token = token_make();
    auth_peers_t *peers = auth_peers_create(1);
    int64_t now_ms = 1000;
    auth_session_t session = session_from("192.0.2.1");
    for (int i = 0; i < AUTH_FAILURES_FREE; i++)
        auth_attempt(&token, peers, &session, "wrong", 5, now_ms, NULL);
    cr_assert_eq(auth_peer_failures(peers, &session.peer, now_ms), AUTH_FAILURES_FREE);
    now_ms += AUTH_PEER_FORGET_MS;
    cr_assert_eq(auth_peer_failures(peers, &session.peer, now_ms), 0);
    auth_session_t fresh = session_from("192.0.2.1");
    for (int i = 0; i < AUTH_FAILURES_FREE; i++)
        cr_assert_eq(auth_attempt(&token, peers, &fresh, "wrong", 5, now_ms, NULL),
                     AUTH_WRONG_TOKEN, "attempt %d was not checked", i);
    auth_peers_destroy(peers);
}

Test(auth, the_address_table_is_bounded_and_evicts_the_stalest)
{
    auth_token_t token = token_make();
    auth_peers_t *peers = auth_peers_create(99);
    int64_t now_ms = 1000;
    char ip[32];
    for (uint32_t i = 0; i < 4 * AUTH_PEERS_MAX; i++, now_ms++) {
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        auth_session_t session = session_from(ip);
        for (int k = 0; k < AUTH_FAILURES_FREE; k++)
            auth_attempt(&token, peers, &session, "wrong", 5, now_ms, NULL);
    }
    cr_assert_gt(auth_peers_evicted(peers), 2 * AUTH_PEERS_MAX, "the table cannot hold them all");
    /* the newest addresses are still held back */
    int held = 0;
    for (uint32_t i = 4 * AUTH_PEERS_MAX - 64; i < 4 * AUTH_PEERS_MAX; i++) {
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        auth_session_t session = session_from(ip);
        held += auth_attempt(&token, peers, &session, RIGHT_TOKEN, 16, now_ms, NULL) ==
                AUTH_RATE_LIMITED;
    }
    cr_assert_geq(held, 60, "only %d of the 64 newest addresses are remembered", held);
    auth_peers_destroy(peers);
}

Test(auth, ipv6_addresses_are_limited_by_their_64_and_mapped_ipv4_as_ipv4)
{
    auth_peer_key_t a = key_of_ipv6("2001:db8:1:2::1");
    auth_peer_key_t b = key_of_ipv6("2001:db8:1:2:ffff:ffff:ffff:ffff");
    auth_peer_key_t c = key_of_ipv6("2001:db8:1:3::1");
    cr_assert(memcmp(&a, &b, sizeof(a)) == 0, "one /64 is one client");
    cr_assert(memcmp(&a, &c, sizeof(a)) != 0);
    auth_peer_key_t mapped = key_of_ipv6("::ffff:192.0.2.7");
    auth_session_t v4 = session_from("192.0.2.7");
    cr_assert(memcmp(&mapped, &v4.peer, sizeof(mapped)) == 0);
}
