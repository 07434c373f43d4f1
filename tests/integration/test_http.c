/* test_http.c - the HTTP/JSON front door against the real allotd: every method of the command
 * table is served, errors carry the contract's statuses, the bearer token is enforced with the
 * same back-off as `auth`, bad input is bounded, answers equal the RPC port's, and an answered
 * write survives kill -9. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness_http.h"
#include "net/command.h"

#define HTTP_TOKEN "http-test-token-0123456789"

static void expect_call(uint16_t port, const char *method, const char *json, int status,
                        const char *needle)
{
    char *body = NULL;
    int got = harness_http_call(port, method, json, &body);
    cr_expect_eq(got, status, "%s %s: status %d, want %d: %s", method, json, got, status, body);
    if (needle != NULL)
        cr_expect(strstr(body, needle) != NULL, "%s %s: '%s' lacks '%s'", method, json, body,
                  needle);
    free(body);
}

static void stock_setup(uint16_t port)
{
    expect_call(port, "location.put",
                "{\"id\":\"W1\",\"type\":\"warehouse\",\"lat\":52.5,\"lon\":13.4}", 200,
                "\"id\":\"W1\"");
    expect_call(port, "stock.set", "{\"sku\":\"A\",\"location\":\"W1\",\"on_hand\":3}", 200,
                "\"available\":3");
}

Test(http, every_method_of_the_command_table_is_served_and_described, .timeout = 60)
{
    uint16_t port;
    harness_server_t *s = harness_http_server_start(NULL, &port);
    char *doc = NULL;
    cr_assert_eq(harness_http(port, "GET", "/v1/openapi.json", NULL, NULL, &doc, NULL), 200);
    cr_expect(strstr(doc, "\"openapi\":\"3.1.0\"") != NULL);
    for (size_t i = 0; i < command_count(); i++) {
        const char *name = command_at(i)->name;
        char path[128];
        snprintf(path, sizeof(path), "\"/v1/%s\"", name);
        cr_expect(strstr(doc, path) != NULL, "openapi.json describes %s", name);
        char *body = NULL;
        int status = harness_http_call(port, name, "{}", &body);
        cr_expect(strstr(body, "UNKNOWN_METHOD") == NULL && status != 405,
                  "POST /v1/%s reaches its handler: %d %s", name, status, body);
        free(body);
    }
    free(doc);
    expect_call(port, "no.such.method", "{}", 404, "\"code\":\"UNKNOWN_METHOD\"");
    harness_server_destroy(s);
}

Test(http, error_codes_carry_the_contract_statuses, .timeout = 60)
{
    uint16_t port;
    harness_server_t *s = harness_http_server_start("--request-bytes-max 2048", &port);
    stock_setup(port);
    expect_call(port, "avail.get", "{\"skus\":\"A\"}", 400, "\"code\":\"INVALID_ARGUMENT\"");
    expect_call(port, "avail.get", "{\"skus\":[\"A\"],\"sku\":1}", 400, "unknown key 'sku'");
    expect_call(port, "order.get", "{\"id\":\"nope\"}", 404, "\"code\":\"NOT_FOUND\"");
    expect_call(port, "reserve", "{\"id\":\"r1\",\"lines\":[{\"sku\":\"A\",\"qty\":5}]}", 409,
                "\"shortfalls\":[{\"sku\":\"A\",\"requested\":5,\"available\":3}]");
    expect_call(port, "reserve", "{\"id\":\"r2\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}", 200,
                NULL);
    expect_call(port, "reserve", "{\"id\":\"r2\",\"lines\":[{\"sku\":\"A\",\"qty\":2}]}", 409,
                "\"code\":\"CONFLICT\"");
    expect_call(port, "order.create", "{\"id\":\"o1\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}", 200,
                "\"state\":\"created\"");
    expect_call(port, "order.cancel", "{\"id\":\"o1\",\"reason\":\"test\"}", 200, "cancelled");
    expect_call(port, "order.release", "{\"id\":\"o1\"}", 409, "\"code\":\"INVALID_TRANSITION\"");
    char big[4096];
    snprintf(big, sizeof(big), "{\"skus\":[\"%03000d\"]}", 0);
    expect_call(port, "avail.get", big, 413, "\"code\":\"TOO_LARGE\"");
    expect_call(port, "reserve",
                "{\"id\":\"r3\",\"lines\":[{\"sku\":\"A\",\"qty\":1}],\"ttl_s\":1}", 200, NULL);
    int status = 0;
    for (int i = 0; i < 50 && status != 410; i++) {
        struct timespec pause = {.tv_nsec = 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
        char *body = NULL;
        status = harness_http_call(port, "reservation.get", "{\"id\":\"r3\"}", &body);
        free(body);
    }
    cr_expect_eq(status, 410, "an expired reservation reads as 410 EXPIRED");
    harness_server_destroy(s);
}

/* The same request on both ports gives the same JSON (a result, or {"error": the error}). */
Test(http, answers_equal_the_rpc_ports_for_the_same_requests, .timeout = 60)
{
    uint16_t port;
    harness_server_t *s = harness_http_server_start(NULL, &port);
    stock_setup(port);
    expect_call(port, "order.create",
                "{\"id\":\"o1\",\"customer\":\"c1\",\"lines\":[{\"sku\":\"A\",\"qty\":1}],"
                "\"address\":{\"city\":\"Berlin\"}}",
                200, NULL);
    static const char *const requests[][2] = {
        {"stock.get", "{\"sku\":\"A\"}"},
        {"avail.get", "{\"skus\":[\"A\",\"B\"],\"detail\":true}"},
        {"location.list", "{}"},
        {"order.get", "{\"id\":\"o1\"}"},
        {"order.list", "{\"customer\":\"c1\"}"},
        {"order.get", "{\"id\":\"missing\"}"},
        {"reserve", "{\"id\":\"r9\",\"lines\":[{\"sku\":\"A\",\"qty\":50}]}"},
        {"ping", "{}"},
    };
    allot_client_t *c = harness_connect(s);
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        allot_reply_t reply = {0};
        harness_call_json(c, requests[i][0], requests[i][1], &reply);
        char *rpc = harness_reply_json(&reply);
        char want[8192];
        snprintf(want, sizeof(want), reply.is_error ? "{\"error\":%s}" : "%s", rpc);
        char *body = NULL;
        harness_http_call(port, requests[i][0], requests[i][1], &body);
        cr_expect_str_eq(body, want, "%s %s", requests[i][0], requests[i][1]);
        free(body);
        free(rpc);
        allot_reply_free(&reply);
    }
    allot_client_close(c);
    harness_server_destroy(s);
}

static harness_server_t *token_server_start(uint16_t *port, char *token_path)
{
    int fd = mkstemp(token_path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, HTTP_TOKEN "\n", strlen(HTTP_TOKEN) + 1),
                 (ssize_t)strlen(HTTP_TOKEN) + 1);
    fchmod(fd, 0600);
    close(fd);
    char args[256];
    snprintf(args, sizeof(args), "--auth-token-file %s", token_path);
    return harness_http_server_start(args, port);
}

Test(http, the_bearer_token_is_required_and_failures_back_off_as_for_auth, .timeout = 60)
{
    char token_path[] = "/tmp/allot-http-token-XXXXXX";
    uint16_t port;
    harness_server_t *s = token_server_start(&port, token_path);
    char *headers = NULL, *body = NULL;
    int status = harness_http(port, "POST", "/v1/stock.get", "Content-Type: application/json\r\n",
                              "{\"sku\":\"A\"}", &body, &headers);
    cr_expect_eq(status, 401, "no token: %s", body);
    cr_expect(strstr(headers, "WWW-Authenticate: Bearer") != NULL, "%s", headers);
    free(headers), free(body);
    expect_call(port, "ping", "{}", 200, "pong");
    status =
        harness_http(port, "POST", "/v1/stock.get",
                     "Content-Type: application/json\r\nAuthorization: Bearer " HTTP_TOKEN "\r\n",
                     "{\"sku\":\"A\"}", &body, NULL);
    cr_expect_eq(status, 404, "the right token reaches the handler: %s", body);
    free(body);
    bool throttled = false;
    for (int i = 0; i < 6 && !throttled; i++) {
        status = harness_http(port, "POST", "/v1/stock.get",
                              "Content-Type: application/json\r\nAuthorization: Bearer wrong\r\n",
                              "{\"sku\":\"A\"}", &body, NULL);
        cr_expect_eq(status, 401, "%s", body);
        throttled = strstr(body, "retry in") != NULL;
        free(body);
    }
    cr_expect(throttled, "repeated failures from one address are refused unchecked");
    /* the same table of addresses as the RPC port: reconnecting over RPC does not reset it */
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_error(c, "auth", "{\"token\":\"" HTTP_TOKEN "\"}", "UNAUTHENTICATED", &reply);
    allot_reply_free(&reply);
    allot_client_close(c);
    char *log = harness_server_log_read(s);
    cr_expect(strstr(log, "event=auth_failed") != NULL && strstr(log, "http=true") != NULL,
              "failures are logged as auth_failed");
    free(log);
    harness_server_destroy(s);
    unlink(token_path);
}

Test(http, malformed_json_huge_bodies_slow_and_surplus_clients_are_bounded, .timeout = 60)
{
    uint16_t port;
    harness_server_t *s = harness_http_server_start(
        "--request-bytes-max 2048 --http-timeout-s 1 --http-connections-max 4", &port);
    expect_call(port, "avail.get", "{\"skus\":[", 400, "not JSON");
    expect_call(port, "avail.get", "[\"A\"]", 400, "JSON object");
    char *body = NULL;
    cr_expect_eq(
        harness_http(port, "POST", "/v1/ping", "Content-Type: text/plain\r\n", "{}", &body, NULL),
        400);
    free(body);
    /* a declared length over the limit is refused before the body is read */
    int fd = harness_http_connect(port);
    const char *huge = "POST /v1/ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 1000000000\r\n\r\n";
    send(fd, huge, strlen(huge), MSG_NOSIGNAL);
    char *response = harness_http_read_all(fd, 5000);
    cr_expect(strncmp(response, "HTTP/1.1 413", 12) == 0, "%s", response);
    free(response);
    close(fd);
    /* a chunked body growing past the limit is cut off */
    fd = harness_http_connect(port);
    const char *chunked = "POST /v1/ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Transfer-Encoding: chunked\r\n\r\nfa0\r\n";
    send(fd, chunked, strlen(chunked), MSG_NOSIGNAL);
    char filler[4000];
    memset(filler, ' ', sizeof(filler));
    send(fd, filler, sizeof(filler), MSG_NOSIGNAL);
    response = harness_http_read_all(fd, 5000);
    cr_expect(strstr(response, "200 OK") == NULL, "no answer to a body over the limit: %s",
              response);
    free(response);
    close(fd);
    /* a client that stops mid-request is closed after --http-timeout-s */
    fd = harness_http_connect(port);
    send(fd, "POST /v1/ping HTTP/1.1\r\nHost:", 29, MSG_NOSIGNAL);
    time_t started = time(NULL);
    response = harness_http_read_all(fd, 8000);
    cr_expect(time(NULL) - started < 7, "the stalled connection was closed by the server");
    free(response);
    close(fd);
    /* connections over --http-connections-max wait until one closes */
    int idle[4];
    for (int i = 0; i < 4; i++)
        idle[i] = harness_http_connect(port);
    struct timespec pause = {.tv_nsec = 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    fd = harness_http_connect(port);
    send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 34, MSG_NOSIGNAL);
    response = harness_http_read_all(fd, 500);
    cr_expect(strstr(response, "200 OK") == NULL, "a fifth connection waits: %s", response);
    free(response);
    for (int i = 0; i < 4; i++)
        close(idle[i]);
    response = harness_http_read_all(fd, 5000);
    cr_expect(strstr(response, "200 OK") != NULL, "served once a connection closed: %s", response);
    free(response);
    close(fd);
    expect_call(port, "ping", "{}", 200, "pong"); /* and the server still serves */
    harness_server_destroy(s);
}

/* GET /v1/events is events.read as a stream: while the server has no events.read it answers that
 * method's error; with one, an event stream. */
Test(http, the_event_stream_is_events_read_through_the_command_table, .timeout = 60)
{
    uint16_t port;
    harness_server_t *s = harness_http_server_start(NULL, &port);
    char *read_error = NULL;
    int read_status = harness_http_call(port, "events.read", "{\"limit\":100}", &read_error);
    int fd = harness_http_connect(port);
    const char *request = "GET /v1/events?types=avail.changed HTTP/1.1\r\nHost: x\r\n\r\n";
    send(fd, request, strlen(request), MSG_NOSIGNAL);
    char *response = harness_http_read_all(fd, 1500);
    close(fd);
    if (read_status == 404) {
        cr_expect(strncmp(response, "HTTP/1.1 404", 12) == 0, "%s", response);
        char *body = strstr(response, "\r\n\r\n");
        cr_assert_not_null(body, "%s", response);
        cr_expect_str_eq(body + 4, read_error, "the stream answers events.read's own error");
    } else {
        cr_expect_eq(read_status, 200, "%s", read_error);
        cr_expect(strncmp(response, "HTTP/1.1 200", 12) == 0, "%s", response);
        cr_expect(strstr(response, "Content-Type: text/event-stream") != NULL, "%s", response);
    }
    free(response);
    free(read_error);
    char *body = NULL;
    cr_expect_eq(harness_http(port, "GET", "/v1/events?after=x", NULL, NULL, &body, NULL), 400,
                 "a cursor that is not a seq: %s", body);
    free(body);
    harness_server_destroy(s);
}

Test(http, an_answered_write_survives_kill9, .timeout = 60)
{
    uint16_t port;
    harness_server_t *s = harness_http_server_start(NULL, &port);
    stock_setup(port);
    expect_call(port, "stock.adjust", "{\"sku\":\"A\",\"location\":\"W1\",\"delta\":4}", 200,
                "\"on_hand\":7");
    harness_server_kill9(s);
    cr_assert(harness_server_restart_try(s, HARNESS_START_TIMEOUT_MS), "restart failed");
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "stock.get", "{\"sku\":\"A\"}", &reply);
    char *json = harness_reply_json(&reply);
    cr_expect(strstr(json, "\"on_hand\":7") != NULL, "%s", json);
    free(json);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_destroy(s);
}

Test(http, health_readiness_the_console_and_a_clean_shutdown, .timeout = 60)
{
    uint16_t port;
    harness_server_t *s = harness_http_server_start(NULL, &port);
    char *body = NULL, *headers = NULL;
    cr_expect_eq(harness_http(port, "GET", "/healthz", NULL, NULL, &body, NULL), 200);
    cr_expect_str_eq(body, "{\"status\":\"ok\"}");
    free(body);
    cr_expect_eq(harness_http(port, "GET", "/readyz", NULL, NULL, &body, NULL), 200);
    cr_expect(strstr(body, "\"ready\":true") && strstr(body, "\"role\":\"standalone\""), "%s",
              body);
    free(body);
    cr_expect_eq(harness_http(port, "GET", "/", NULL, NULL, &body, &headers), 200);
    cr_expect(strstr(headers, "Content-Type: text/html") != NULL, "%s", headers);
    cr_expect(strstr(body, "Allot") != NULL);
    free(body), free(headers);
    cr_expect_eq(harness_http(port, "GET", "/no-such-file", NULL, NULL, &body, NULL), 404);
    free(body);
    cr_expect_eq(harness_http(port, "GET", "/v1/ping", NULL, NULL, &body, &headers), 405);
    cr_expect(strstr(headers, "Allow: POST") != NULL, "%s", headers);
    free(body), free(headers);
    int idle = harness_http_connect(port); /* a keep-alive client still connected at shutdown */
    harness_server_stop(s);                /* asserts a clean exit with every handle closed */
    close(idle);
    harness_server_destroy(s);
}
