/* harness_http.c - HTTP requests to allotd's --http front door for integration tests. */
#include "harness_http.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

harness_server_t *harness_http_server_start(const char *extra_args, uint16_t *http_port)
{
    *http_port = harness_port_reserve();
    char args[1024];
    snprintf(args, sizeof(args), "--http 127.0.0.1:%u %s", *http_port,
             extra_args != NULL ? extra_args : "");
    return harness_server_start(args);
}

int harness_http_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
              "connect to HTTP port %u: %s", port, strerror(errno));
    struct timeval timeout = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    return fd;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

char *harness_http_read_all(int fd, int timeout_ms)
{
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap);
    cr_assert(buf != NULL);
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        if (used + 4096 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert(buf != NULL);
        }
        ssize_t got = recv(fd, buf + used, cap - used - 1, 0);
        if (got <= 0)
            break;
        used += (size_t)got;
    }
    buf[used] = '\0';
    return buf;
}

int harness_http(uint16_t port, const char *method, const char *path, const char *headers,
                 const char *body, char **body_out, char **headers_out)
{
    int fd = harness_http_connect(port);
    size_t body_len = body != NULL ? strlen(body) : 0;
    size_t cap = 1024 + body_len + (headers != NULL ? strlen(headers) : 0);
    char *request = malloc(cap);
    int n =
        snprintf(request, cap,
                 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s"
                 "Content-Length: %zu\r\n\r\n%s",
                 method, path, headers != NULL ? headers : "", body_len, body != NULL ? body : "");
    cr_assert(send(fd, request, (size_t)n, MSG_NOSIGNAL) == n, "send: %s", strerror(errno));
    free(request);
    char *response = harness_http_read_all(fd, 10000);
    close(fd);
    int status = 0;
    cr_assert(sscanf(response, "HTTP/1.1 %d", &status) == 1, "no HTTP response: '%s'", response);
    char *end = strstr(response, "\r\n\r\n");
    cr_assert(end != NULL, "no end of headers: '%s'", response);
    if (headers_out != NULL)
        *headers_out = strndup(response, (size_t)(end - response) + 2);
    if (body_out != NULL)
        *body_out = strdup(end + 4);
    free(response);
    return status;
}

int harness_http_call(uint16_t port, const char *method, const char *json, char **body_out)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/%s", method);
    return harness_http(port, "POST", path, "Content-Type: application/json\r\n", json, body_out,
                        NULL);
}
