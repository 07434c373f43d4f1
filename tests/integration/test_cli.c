/* test_cli.c - the real `allot` binary against a real allotd started by the harness. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "tests/integration/harness.h"

#define CLI_TIMEOUT_MS 10000

static harness_server_t *server;
static char port_text[8];

static void server_setup(void)
{
    server = harness_server_start(NULL);
    snprintf(port_text, sizeof port_text, "%u", (unsigned)server->port);
}

static void server_teardown(void)
{
    harness_server_destroy(server);
    server = NULL;
}

TestSuite(cli, .init = server_setup, .fini = server_teardown, .timeout = 60);

static size_t occurrences(const char *haystack, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(cli, ping_prints_pong_and_exits_0)
{
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port_text, "ping", NULL};
    char *out, *err;
    int status = harness_run(argv, NULL, CLI_TIMEOUT_MS, &out, &err);
    cr_assert_eq(status, 0, "stderr: %s", err);
    cr_assert_str_eq(out, "pong\n");
    cr_assert_str_eq(err, "");
    free(out);
    free(err);
}

Test(cli, unknown_method_prints_the_code_on_stderr_and_exits_1)
{
    const char *argv[] = {ALLOT_CLI_PATH, "--port", port_text, "no.such.method", "{}", NULL};
    char *out, *err;
    int status = harness_run(argv, NULL, CLI_TIMEOUT_MS, &out, &err);
    cr_assert_eq(status, 1, "stderr: %s", err);
    cr_assert(strncmp(err, "UNKNOWN_METHOD: ", 16) == 0, "stderr: %s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
}

Test(cli, server_info_prints_pretty_json_and_raw_prints_one_line)
{
    const char *pretty[] = {ALLOT_CLI_PATH, "-p", port_text, "server.info", NULL};
    const char *raw[] = {ALLOT_CLI_PATH, "-p", port_text, "--raw", "server.info", NULL};
    char *out, *err;
    cr_assert_eq(harness_run(pretty, NULL, CLI_TIMEOUT_MS, &out, &err), 0, "stderr: %s", err);
    cr_assert(strncmp(out, "{\n  \"", 5) == 0, "stdout: %s", out);
    cr_assert(strstr(out, "\"version\": ") != NULL, "stdout: %s", out);
    free(out);
    free(err);
    cr_assert_eq(harness_run(raw, NULL, CLI_TIMEOUT_MS, &out, &err), 0, "stderr: %s", err);
    cr_assert(out[0] == '{' && strchr(out, '\n') == out + strlen(out) - 1, "stdout: %s", out);
    cr_assert(strstr(out, "\"version\":") != NULL, "stdout: %s", out);
    free(out);
    free(err);
}

Test(cli, piped_session_runs_each_line_and_stops_at_quit)
{
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port_text, NULL};
    const char *session = "ping\n"
                          "# a comment, then a blank line\n"
                          "\n"
                          "  server.info {}  \n"
                          "no.such.method\n"
                          "ping {}\n"
                          "quit\n"
                          "ping\n";
    char *out, *err;
    int status = harness_run(argv, session, CLI_TIMEOUT_MS, &out, &err);
    cr_assert_eq(status, 1, "one line failed, so the session exits 1; stderr: %s", err);
    cr_assert_eq(occurrences(out, "pong\n"), 2, "stdout: %s", out);
    cr_assert(strstr(out, "\"uptime_s\"") != NULL, "stdout: %s", out);
    cr_assert_eq(occurrences(err, "UNKNOWN_METHOD: "), 1, "stderr: %s", err);
    free(out);
    free(err);
}

Test(cli, piped_session_without_errors_exits_0)
{
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port_text, "--raw", NULL};
    char *out, *err;
    int status = harness_run(argv, "ping\nping\nserver.info\n", CLI_TIMEOUT_MS, &out, &err);
    cr_assert_eq(status, 0, "stderr: %s", err);
    cr_assert_eq(occurrences(out, "pong\n"), 2, "stdout: %s", out);
    cr_assert_eq(occurrences(out, "\n"), 3, "stdout: %s", out);
    free(out);
    free(err);
}

Test(cli, invalid_json_params_exit_2_with_the_position)
{
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port_text, "stock.get", "{\"sku\": ", NULL};
    char *out, *err;
    int status = harness_run(argv, NULL, CLI_TIMEOUT_MS, &out, &err);
    cr_assert_eq(status, 2, "stderr: %s", err);
    cr_assert(strstr(err, "allot: invalid params: invalid JSON at line 1, column") != NULL,
              "stderr: %s", err);
    free(out);
    free(err);
}

Test(cli, connection_refused_exits_2_with_a_clear_message)
{
    char port[8];
    /* the suite's server is stopped: its port now refuses connections */
    harness_server_stop_unchecked(server);
    snprintf(port, sizeof port, "%u", (unsigned)server->port);
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port, "ping", NULL};
    char *out, *err;
    int status = harness_run(argv, NULL, CLI_TIMEOUT_MS, &out, &err);
    cr_assert_eq(status, 2, "stderr: %s", err);
    char expected[96];
    snprintf(expected, sizeof expected, "allot: connect 127.0.0.1:%s: Connection refused\n", port);
    cr_assert_str_eq(err, expected);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
}

Test(cli, usage_errors_exit_2_and_help_and_version_exit_0)
{
    const char *bad_port[] = {ALLOT_CLI_PATH, "-p", "99999", "ping", NULL};
    const char *bad_option[] = {ALLOT_CLI_PATH, "--no-such-option", NULL};
    const char *too_many[] = {ALLOT_CLI_PATH, "-p", port_text, "ping", "{}", "extra", NULL};
    const char *help[] = {ALLOT_CLI_PATH, "--help", NULL};
    const char *version[] = {ALLOT_CLI_PATH, "--version", NULL};
    char *out, *err;
    cr_assert_eq(harness_run(bad_port, NULL, CLI_TIMEOUT_MS, NULL, NULL), 2);
    cr_assert_eq(harness_run(bad_option, NULL, CLI_TIMEOUT_MS, NULL, NULL), 2);
    cr_assert_eq(harness_run(too_many, NULL, CLI_TIMEOUT_MS, NULL, NULL), 2);
    cr_assert_eq(harness_run(help, NULL, CLI_TIMEOUT_MS, &out, &err), 0);
    cr_assert(strncmp(out, "usage: allot ", 13) == 0, "stdout: %s", out);
    free(out);
    free(err);
    cr_assert_eq(harness_run(version, NULL, CLI_TIMEOUT_MS, &out, &err), 0);
    cr_assert_str_eq(out, "allot " ALLOT_VERSION "\n");
    free(out);
    free(err);
}

/* ---- the harness itself ------------------------------------------------------------------- */

Test(harness, restart_kill9_and_rss_work_on_the_same_port_and_data_dir, .timeout = 60)
{
    harness_server_t *s = harness_server_start(NULL);
    uint16_t port = s->port;
    char data_dir[sizeof s->data_dir];
    snprintf(data_dir, sizeof data_dir, "%s", s->data_dir);
    cr_assert_gt(harness_server_rss_kb(s), 0);
    allot_client_t *c = harness_connect(s);
    allot_reply_t reply = {0};
    harness_call_ok(c, "ping", NULL, &reply);
    cr_assert(allot_object_str_equal(&reply.result, "pong"));
    harness_call_error(c, "no.such.method", "{}", "UNKNOWN_METHOD", &reply);

    cr_assert_eq(harness_server_kill9(s), 128 + 9);
    cr_assert_eq(allot_client_call_json(c, "ping", NULL, &reply), ALLOT_EIO);
    harness_server_restart(s);
    cr_assert_eq(s->port, port);
    cr_assert_str_eq(s->data_dir, data_dir);
    cr_assert_eq(allot_client_connect(c, "127.0.0.1", s->port, 2000), 0);
    harness_call_ok(c, "ping", NULL, &reply);

    harness_server_restart(s); /* clean stop (asserted) then start */
    cr_assert_eq(harness_server_stop(s), 0);
    cr_assert(access(harness_server_log(s), R_OK) == 0);
    allot_reply_free(&reply);
    allot_client_close(c);
    harness_server_destroy(s);
    cr_assert_neq(access(data_dir, F_OK), 0, "data dir removed");
}
