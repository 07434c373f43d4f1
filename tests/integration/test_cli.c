/* test_cli.c - the real `allot` binary against a real allotd started by the harness. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

Test(cli, a_token_is_harmless_for_a_server_without_auth)
{
    cr_assert_eq(setenv("ALLOT_TOKEN", "any-token-0123456789abcdef", 1), 0);
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port_text, "--raw", "server.info", NULL};
    char *out, *err;
    int status = harness_run(argv, NULL, CLI_TIMEOUT_MS, &out, &err);
    cr_assert_eq(status, 0, "stderr: %s", err);
    cr_assert(strstr(out, "\"uptime_s\":") != NULL, "stdout: %s", out);
    cr_assert_str_eq(err, "");
    free(out);
    free(err);
    unsetenv("ALLOT_TOKEN");
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

/* ---- authentication ------------------------------------------------------------------------ */

#define CLI_TOKEN "cli-test-token-0123456789abcdef"

static harness_server_t *auth_server;
static char auth_port[8];
static char token_path[] = "/tmp/allot-cli-token-XXXXXX";

/* A new temporary file (path is a mkstemp template) holding content with this mode. */
static void temp_file_write(char *path, const char *content, mode_t mode)
{
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
    size_t len = strlen(content);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
}

static void auth_server_setup(void)
{
    temp_file_write(token_path, CLI_TOKEN "\n", 0600);
    char args[128];
    snprintf(args, sizeof args, "--auth-token-file %s", token_path);
    auth_server = harness_server_start(args);
    snprintf(auth_port, sizeof auth_port, "%u", (unsigned)auth_server->port);
}

static void auth_server_teardown(void)
{
    harness_server_destroy(auth_server);
    auth_server = NULL;
    unlink(token_path);
}

TestSuite(cli_auth, .init = auth_server_setup, .fini = auth_server_teardown, .timeout = 60);

/* Run the CLI, expecting this exit status; returns stdout, and stderr in *err (both freed by the
 * caller). */
static char *cli_run_expect(const char *const *argv, const char *input, int status, char **err)
{
    char *out;
    int got = harness_run(argv, input, CLI_TIMEOUT_MS, &out, err);
    cr_assert_eq(got, status, "exit %d, expected %d; stdout: %s; stderr: %s", got, status, out,
                 *err);
    return out;
}

Test(cli_auth, token_file_authenticates_commands_that_fail_without_it)
{
    char *err;
    const char *bare[] = {ALLOT_CLI_PATH, "-p", auth_port, "server.info", NULL};
    char *out = cli_run_expect(bare, NULL, 1, &err);
    cr_expect(strncmp(err, "UNAUTHENTICATED: ", 17) == 0, "stderr: %s", err);
    cr_expect(strstr(err, "--token-file") != NULL, "a hint names the option: %s", err);
    free(out);
    free(err);

    const char *info[] = {ALLOT_CLI_PATH, "-p",          auth_port, "--token-file",
                          token_path,     "server.info", NULL};
    out = cli_run_expect(info, NULL, 0, &err);
    cr_expect(strstr(out, "\"uptime_s\"") != NULL, "stdout: %s", out);
    cr_expect_str_eq(err, "");
    free(out);
    free(err);

    /* the backup step of docs/operations.md */
    const char *checkpoint[] = {ALLOT_CLI_PATH, "--token-file",      token_path, "-p",
                                auth_port,      "server.checkpoint", "{}",       NULL};
    out = cli_run_expect(checkpoint, NULL, 0, &err);
    cr_expect(strstr(out, "\"checkpoint_lsn\"") != NULL, "stdout: %s", out);
    free(out);
    free(err);

    /* a piped session authenticates once, before its first line */
    const char *session[] = {ALLOT_CLI_PATH, "-p",    auth_port, "--token-file",
                             token_path,     "--raw", NULL};
    out = cli_run_expect(session, "server.info\nping\n", 0, &err);
    cr_expect(strstr(out, "\"uptime_s\":") != NULL && strstr(out, "pong\n") != NULL, "%s", out);
    free(out);
    free(err);
}

Test(cli_auth, token_from_the_environment_authenticates_and_the_option_wins_over_it)
{
    char *err;
    cr_assert_eq(setenv("ALLOT_TOKEN", CLI_TOKEN, 1), 0);
    const char *info[] = {ALLOT_CLI_PATH, "-p", auth_port, "server.info", NULL};
    char *out = cli_run_expect(info, NULL, 0, &err);
    cr_expect(strstr(out, "\"uptime_s\"") != NULL, "stdout: %s", out);
    cr_expect_str_eq(err, "");
    free(out);
    free(err);

    cr_assert_eq(setenv("ALLOT_TOKEN", "not-the-token-at-all-000", 1), 0);
    const char *with_file[] = {ALLOT_CLI_PATH, "-p",          auth_port, "--token-file",
                               token_path,     "server.info", NULL};
    out = cli_run_expect(with_file, NULL, 0, &err);
    cr_expect(strstr(out, "\"uptime_s\"") != NULL, "stdout: %s", out);
    free(out);
    free(err);
    unsetenv("ALLOT_TOKEN");
}

Test(cli_auth, a_wrong_token_exits_3_naming_where_it_came_from)
{
    char wrong_path[] = "/tmp/allot-cli-wrong-XXXXXX";
    temp_file_write(wrong_path, "  wrong-token-0123456789abcdef  \n", 0600);
    char *err;
    const char *argv[] = {ALLOT_CLI_PATH, "-p",          auth_port, "--token-file",
                          wrong_path,     "server.info", NULL};
    char *out = cli_run_expect(argv, NULL, 3, &err);
    char expected[160];
    snprintf(expected, sizeof expected,
             "allot: the server refused the token from %s: "
             "UNAUTHENTICATED: ",
             wrong_path);
    cr_expect(strncmp(err, expected, strlen(expected)) == 0, "stderr: %s", err);
    cr_expect(strstr(err, "wrong-token") == NULL, "the token is never printed: %s", err);
    cr_expect_str_eq(out, "");
    free(out);
    free(err);
    unlink(wrong_path);

    /* a piped session runs none of its lines */
    cr_assert_eq(setenv("ALLOT_TOKEN", "wrong-token-from-the-environment", 1), 0);
    const char *session[] = {ALLOT_CLI_PATH, "-p", auth_port, NULL};
    out = cli_run_expect(session, "ping\nserver.info\n", 3, &err);
    cr_expect(strstr(err, "allot: the server refused the token from $ALLOT_TOKEN: ") == err,
              "stderr: %s", err);
    cr_expect_str_eq(out, "");
    free(out);
    free(err);
    unsetenv("ALLOT_TOKEN");
}

Test(cli_auth, an_unusable_token_file_exits_2_and_a_loose_one_warns)
{
    char *err;
    const char *missing[] = {
        ALLOT_CLI_PATH, "-p", auth_port, "--token-file", "/nonexistent/allot-token", "ping", NULL};
    char *out = cli_run_expect(missing, NULL, 2, &err);
    cr_expect_str_eq(err, "allot: token file '/nonexistent/allot-token': No such file or "
                          "directory\n");
    free(out);
    free(err);

    char empty_path[] = "/tmp/allot-cli-empty-XXXXXX";
    temp_file_write(empty_path, " \t\r\n" CLI_TOKEN "\n", 0600);
    const char *empty[] = {ALLOT_CLI_PATH, "-p",   auth_port, "--token-file",
                           empty_path,     "ping", NULL};
    out = cli_run_expect(empty, NULL, 2, &err);
    cr_expect(strstr(err, "the first line is empty") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    unlink(empty_path);

    char loose_path[] = "/tmp/allot-cli-loose-XXXXXX";
    temp_file_write(loose_path, CLI_TOKEN, 0644); /* no newline at the end either */
    const char *loose[] = {ALLOT_CLI_PATH, "-p",          auth_port, "--token-file",
                           loose_path,     "server.info", NULL};
    out = cli_run_expect(loose, NULL, 0, &err);
    cr_expect(strstr(err, "warning: token file") != NULL && strstr(err, "chmod 600") != NULL,
              "stderr: %s", err);
    free(out);
    free(err);
    unlink(loose_path);
}

/* ---- an interactive session on a pseudo-terminal ------------------------------------------ */

typedef struct terminal_step {
    const char *line;  /* typed, then Enter */
    const char *shown; /* wait until the output after the line shows this (NULL: the end) */
} terminal_step_t;

static void terminal_child(int master, const char *const *argv, char *const *envp)
{
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    setsid();
    int slave = open(ptsname(master), O_RDWR);
    if (slave < 0)
        _exit(125);
    close(master);
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    execve(argv[0], (char *const *)argv, envp);
    _exit(127);
}

/* This process's environment with HOME=home and TERM=dumb, in envp (room for count_max). */
static void terminal_environment(const char *home, char *home_setting, size_t home_bytes,
                                 char **envp, size_t count_max)
{
    extern char **environ;
    size_t n = 0;
    snprintf(home_setting, home_bytes, "HOME=%s", home);
    envp[n++] = home_setting;
    envp[n++] = "TERM=dumb";
    for (char **e = environ; *e != NULL && n + 1 < count_max; e++)
        if (strncmp(*e, "HOME=", 5) != 0 && strncmp(*e, "TERM=", 5) != 0)
            envp[n++] = *e;
    envp[n] = NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the terminal into out until `wanted` appears after offset `from` (NULL: until the child
 * closes it). False on the deadline. */
static bool terminal_wait(int master, FILE *out, char **text, size_t *len, size_t from,
                          const char *wanted, int64_t deadline_ms)
{
    for (;;) {
        fflush(out);
        if (wanted != NULL && *len > from && strstr(*text + from, wanted) != NULL)
            return true;
        struct pollfd pfd = {master, POLLIN, 0};
        int wait_ms = (int)(deadline_ms - now_ms());
        if (wait_ms <= 0 || poll(&pfd, 1, wait_ms) == 0)
            return false;
        char chunk[4096];
        ssize_t n = read(master, chunk, sizeof chunk);
        if (n > 0)
            fwrite(chunk, 1, (size_t)n, out);
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return wanted == NULL; /* EIO: the child closed the terminal */
    }
}

/* Run argv on a pseudo-terminal (so that allot shows its prompt and keeps a history) with HOME
 * set to home: wait for `first`, then type each step's line and wait for what it shows. Returns
 * the exit status; *output is everything the terminal showed (caller frees). */
static int cli_run_on_terminal(const char *const *argv, const char *home, const char *first,
                               const terminal_step_t *steps, size_t step_count, char **output)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    cr_assert(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0, "pty: %s",
              strerror(errno));
    char home_setting[256];
    char *envp[256];
    terminal_environment(home, home_setting, sizeof home_setting, envp, 256);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0)
        terminal_child(master, argv, envp);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int64_t deadline_ms = now_ms() + CLI_TIMEOUT_MS;
    bool ok = terminal_wait(master, out, &text, &len, 0, first, deadline_ms);
    for (size_t i = 0; ok && i < step_count; i++) {
        size_t from = len;
        size_t line_len = strlen(steps[i].line);
        ok = write(master, steps[i].line, line_len) == (ssize_t)line_len &&
             write(master, "\r", 1) == 1 &&
             terminal_wait(master, out, &text, &len, from, steps[i].shown, deadline_ms);
    }
    if (!ok)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(master);
    fclose(out);
    *output = text;
    cr_assert(ok, "the session did not go as planned; the terminal showed:\n%s", text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Test(cli_auth, an_interactive_auth_line_works_but_is_never_written_to_the_history)
{
    char home[] = "/tmp/allot-cli-home-XXXXXX";
    cr_assert_not_null(mkdtemp(home));
    const char *argv[] = {ALLOT_CLI_PATH, "-p", auth_port, "--raw", NULL};
    const terminal_step_t steps[] = {
        {"auth {\"token\": \"" CLI_TOKEN "\"}", "{\"authenticated\":true}"},
        {"server.info", "\"uptime_s\":"},
        {"  AUTH {\"token\": \"" CLI_TOKEN "\"}", "UNKNOWN_METHOD"}, /* mistyped: kept out too */
        {"ping", "pong"},
        {"quit", NULL},
    };
    char *shown;
    int status =
        cli_run_on_terminal(argv, home, "> ", steps, sizeof steps / sizeof steps[0], &shown);
    cr_expect_eq(status, 1, "the worst line (mistyped) sets the status: %s", shown);
    free(shown);

    char history_path[128];
    snprintf(history_path, sizeof history_path, "%s/.allot_history", home);
    FILE *f = fopen(history_path, "r");
    cr_assert_not_null(f, "no history written: %s", strerror(errno));
    char history[4096];
    size_t n = fread(history, 1, sizeof history - 1, f);
    history[n] = '\0';
    fclose(f);
    cr_expect(strstr(history, "server.info") != NULL && strstr(history, "ping") != NULL,
              "the other lines are kept: %s", history);
    cr_expect(strstr(history, CLI_TOKEN) == NULL, "the token is in the history: %s", history);
    cr_expect(strcasestr(history, "auth") == NULL, "an auth line is in the history: %s", history);
    unlink(history_path);
    rmdir(home);
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
