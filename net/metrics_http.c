/* metrics_http.c - GET /metrics over libmicrohttpd, serving the loop's last rendering. */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct metrics_http {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    char *text;
    size_t len;
    char problem[128];         /* "" when healthy */
    int64_t published_ms;      /* CLOCK_MONOTONIC ms of the last publication; 0 before */
};

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned status, char *body,
                               size_t len, const char *type)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(response, "Content-Type", type);
    enum MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
}

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* GET /health: 200 "ok\n", or 503 with the problem. */
static enum MHD_Result respond_health(metrics_http_t *http, struct MHD_Connection *connection)
{
    char body[192];
    pthread_mutex_lock(&http->lock);
    int64_t age_ms = monotonic_ms() - http->published_ms;
    if (http->published_ms == 0)
        snprintf(body, sizeof(body), "starting\n");
    else if (age_ms > METRICS_HTTP_HEALTH_STALE_MS)
        snprintf(body, sizeof(body), "stalled: no update for %lld ms\n", (long long)age_ms);
    else if (http->problem[0] != '\0')
        snprintf(body, sizeof(body), "%s\n", http->problem);
    else
        snprintf(body, sizeof(body), "ok\n");
    pthread_mutex_unlock(&http->lock);
    unsigned status = strcmp(body, "ok\n") == 0 ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    return respond(connection, status, strdup(body), strlen(body), "text/plain; charset=utf-8");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **request_state)
{
    metrics_http_t *http = cls;
    (void)version, (void)upload_data, (void)request_state;
    if (*upload_data_size != 0)
        return MHD_NO; /* no request bodies */
    if (strcmp(method, "GET") == 0 && strcmp(url, "/health") == 0)
        return respond_health(http, connection);
    if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0)
        return respond(connection, MHD_HTTP_NOT_FOUND, strdup("not found\n"), 10,
                       "text/plain; charset=utf-8");
    pthread_mutex_lock(&http->lock);
    char *copy = malloc(http->len + 1);
    size_t len = http->len;
    if (copy != NULL)
        memcpy(copy, http->text != NULL ? http->text : "", len);
    pthread_mutex_unlock(&http->lock);
    if (copy == NULL)
        return MHD_NO;
    return respond(connection, MHD_HTTP_OK, copy, len, "text/plain; version=0.0.4");
}

int metrics_http_address_check(const char *host, char *error, size_t error_bytes)
{
    struct in_addr address;
    if (inet_pton(AF_INET, host, &address) == 1)
        return 0;
    snprintf(error, error_bytes, "--metrics needs an IPv4 HOST:PORT, got host '%s'", host);
    return -1;
}

metrics_http_t *metrics_http_start(const char *host, uint16_t port, char *error,
                                   size_t error_bytes)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (metrics_http_address_check(host, error, error_bytes) != 0 ||
        inet_pton(AF_INET, host, &address.sin_addr) != 1)
        return NULL;
    metrics_http_t *http = calloc(1, sizeof(*http));
    if (http == NULL)
        return NULL;
    pthread_mutex_init(&http->lock, NULL);
    http->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port, NULL, NULL, on_request, http,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)METRICS_HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT, 5u,
        MHD_OPTION_END);
    if (http->daemon == NULL) {
        snprintf(error, error_bytes, "cannot listen for metrics on %s:%u", host, port);
        pthread_mutex_destroy(&http->lock);
        free(http);
        return NULL;
    }
    return http;
}

void metrics_http_publish(metrics_http_t *http, const char *text, size_t len,
                          const char *problem)
{
    if (len > METRICS_HTTP_TEXT_BYTES_MAX)
        len = METRICS_HTTP_TEXT_BYTES_MAX;
    char *copy = malloc(len);
    if (copy != NULL)
        memcpy(copy, text, len);
    pthread_mutex_lock(&http->lock);
    char *old = copy != NULL ? http->text : NULL;
    if (copy != NULL) {
        http->text = copy;
        http->len = len;
    }
    snprintf(http->problem, sizeof(http->problem), "%s", problem != NULL ? problem : "");
    http->published_ms = monotonic_ms();
    pthread_mutex_unlock(&http->lock);
    free(old);
}

void metrics_http_stop(metrics_http_t *http)
{
    if (http == NULL)
        return;
    MHD_stop_daemon(http->daemon);
    pthread_mutex_destroy(&http->lock);
    free(http->text);
    free(http);
}
