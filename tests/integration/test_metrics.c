/* test_metrics.c - the Prometheus endpoint as a monitoring system reads it: promtool's lint
 * passes, requests refused before any method ran are counted, the standard process_* metrics
 * and GET /health are there, and every metric the docs' alert rules and dashboard use exists. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* GET path from 127.0.0.1:port: the whole response (malloc'ed). */
static char *http_get(uint16_t port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char request[256];
    int n = snprintf(request, sizeof(request), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    cr_assert_eq(send(fd, request, (size_t)n, 0), n);
    size_t cap = 1 << 20, used = 0;
    char *body = malloc(cap);
    ssize_t got;
    while ((got = recv(fd, body + used, cap - used - 1, 0)) > 0)
        used += (size_t)got;
    body[used] = '\0';
    close(fd);
    return body;
}

/* /metrics once it holds `needle` (the loop renders once a second; 10 s at most). */
static char *metrics_wait_for(uint16_t port, const char *needle)
{
    for (int i = 0; i < 100; i++) {
        char *page = http_get(port, "/metrics");
        if (strstr(page, needle) != NULL)
            return page;
        free(page);
        usleep(100 * 1000);
    }
    cr_assert_fail("/metrics never showed %s", needle);
    return NULL;
}

static char *file_read(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *text = calloc(1, 1 << 20);
    fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    return text;
}

/* Every allot_* / process_* name in text is a metric of page (summaries by their base name). */
static void metrics_named_in_exist(const char *doc, const char *page)
{
    char *text = file_read(doc);
    size_t checked = 0;
    for (char *p = text; *p != '\0'; p++) {
        bool starts = (strncmp(p, "allot_", 6) == 0 || strncmp(p, "process_", 8) == 0) &&
                      (p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'));
        if (!starts)
            continue;
        char name[128], line_start[140];
        size_t n = 0;
        while ((isalnum((unsigned char)p[n]) || p[n] == '_') && n < sizeof(name) - 1)
            name[n] = p[n], n++;
        name[n] = '\0';
        snprintf(line_start, sizeof(line_start), "\n%s", name);
        cr_expect(strstr(page, line_start) != NULL, "%s uses %s, which /metrics does not have", doc,
                  name);
        checked++;
        p += n - 1;
    }
    cr_expect_gt(checked, 5, "%s names metrics", doc);
    free(text);
}

Test(metrics, the_endpoint_passes_promtool_counts_rejected_requests_and_serves_health)
{
    uint16_t port = harness_port_reserve();
    char args[64];
    snprintf(args, sizeof(args), "--metrics 127.0.0.1:%u", port);
    harness_server_t *s = harness_server_start(args);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "ping", "{}", &reply);
    harness_call_error(c, "no.such.method", "{}", "UNKNOWN_METHOD", &reply);
    harness_call_error(c, "no.such.method", "{}", "UNKNOWN_METHOD", &reply);
    const uint8_t bad_params[] = {0x94, 0x00, 0x09, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0x01};
    cr_assert_eq(allot_client_send_raw(c, bad_params, sizeof(bad_params)), 0);
    cr_assert_eq(allot_client_recv(c, &reply), 0);
    cr_expect_str_eq(reply.code, "INVALID_ARGUMENT");

    char *page =
        metrics_wait_for(port, "allot_requests_rejected_total{reason=\"unknown_method\"} 2");
    cr_expect(strstr(page, "allot_requests_rejected_total{reason=\"invalid_params\"} 1") != NULL,
              "%s", page);
    const char *process[] = {"\nprocess_cpu_seconds_total ",
                             "\nprocess_resident_memory_bytes ",
                             "\nprocess_virtual_memory_bytes ",
                             "\nprocess_open_fds ",
                             "\nprocess_max_fds ",
                             "\nprocess_start_time_seconds ",
                             "\nallot_healthy 1",
                             "# TYPE allot_uptime_seconds gauge",
                             "# TYPE allot_wal_fdatasync_seconds summary",
                             "\nallot_wal_fdatasync_seconds{quantile=\"0.99\"} ",
                             "# TYPE allot_wal_batch_records summary",
                             "\nallot_wal_batch_records_count{} "};
    for (size_t i = 0; i < sizeof(process) / sizeof(process[0]); i++)
        cr_expect(strstr(page, process[i]) != NULL, "/metrics has %s", process[i] + 1);

    /* promtool's lint, on the body */
    const char *body = strstr(page, "\r\n\r\n");
    cr_assert_not_null(body);
    char path[] = "/tmp/allot-metrics-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_eq(write(fd, body + 4, strlen(body + 4)), (ssize_t)strlen(body + 4));
    close(fd);
    char command[128];
    snprintf(command, sizeof(command),
             "command -v promtool >/dev/null || exit 77; "
             "promtool check metrics < %s",
             path);
    const char *argv[] = {"/bin/sh", "-c", command, NULL};
    char *out = NULL, *err = NULL;
    int status = harness_run(argv, NULL, 20000, &out, &err);
    unlink(path);
    if (status == 77)
        cr_log_warn("promtool is not installed (tools/install-deps.sh installs prometheus): "
                    "the lint was not run");
    else
        cr_expect_eq(status, 0, "promtool check metrics: %s%s", out, err);
    free(out);
    free(err);

    metrics_named_in_exist(ALLOT_SOURCE_DIR "/docs/prometheus-alerts.yml", body);
    metrics_named_in_exist(ALLOT_SOURCE_DIR "/docs/grafana-dashboard.json", body);
    free(page);

    char *health = http_get(port, "/health");
    cr_expect(strstr(health, "200 OK") != NULL && strstr(health, "\r\n\r\nok\n") != NULL, "%s",
              health);
    free(health);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
