/* auth.c - token loading, constant-time comparison and per-connection rate limiting. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

auth_result_t auth_attempt(const auth_token_t *token, auth_session_t *session,
                           const char *presented, size_t presented_len, int64_t now_ms)
{
    if (!token->required || session->authenticated) {
        session->authenticated = true;
        return AUTH_OK;
    }
    if (session->failures >= AUTH_FAILURES_FREE && now_ms < session->retry_after_ms)
        return AUTH_RATE_LIMITED;
    if (auth_equal_constant_time(presented, presented_len, token->bytes, token->len)) {
        session->authenticated = true;
        session->failures = 0;
        return AUTH_OK;
    }
    session->failures++;
    if (session->failures >= AUTH_FAILURES_MAX)
        return AUTH_CLOSE;
    if (session->failures >= AUTH_FAILURES_FREE) {
        uint32_t doublings = session->failures - AUTH_FAILURES_FREE;
        int64_t backoff_ms = (int64_t)AUTH_BACKOFF_MS << (doublings > 5 ? 5 : doublings);
        if (backoff_ms > AUTH_BACKOFF_MS_MAX)
            backoff_ms = AUTH_BACKOFF_MS_MAX;
        session->retry_after_ms = now_ms + backoff_ms;
    }
    return AUTH_WRONG_TOKEN;
}
