/* test_net_auth.c - token file checks, constant-time comparison, per-connection rate limit. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        cr_assert_eq(auth_attempt(&token, &session, "wrong", 5, now_ms), AUTH_WRONG_TOKEN);
    /* backing off: even the right token is refused unchecked until the wait is over */
    cr_assert_eq(auth_attempt(&token, &session, "0123456789abcdef", 16, now_ms),
                 AUTH_RATE_LIMITED);
    cr_assert_not(session.authenticated);
    now_ms = session.retry_after_ms;
    cr_assert_eq(auth_attempt(&token, &session, "0123456789abcdef", 16, now_ms), AUTH_OK);
    cr_assert(session.authenticated);

    auth_session_t attacker = {0};
    auth_result_t result = AUTH_WRONG_TOKEN;
    for (int i = 0; i < 100 && result != AUTH_CLOSE; i++) {
        result = auth_attempt(&token, &attacker, "guess", 5, now_ms);
        now_ms = attacker.retry_after_ms > now_ms ? attacker.retry_after_ms : now_ms;
    }
    cr_assert_eq(result, AUTH_CLOSE);
    cr_assert_eq(attacker.failures, AUTH_FAILURES_MAX);
}

Test(auth, without_a_token_everything_is_allowed)
{
    auth_token_t token = {.required = false};
    auth_session_t session = {0};
    cr_assert_eq(auth_attempt(&token, &session, "", 0, 0), AUTH_OK);
}
