/* test_cli_session.c - the `allot` habits users bring from redis-cli: -h HOST, one answer per
 * line on stdout in a piped session, a session's exit status, help METHOD from the command table,
 * Tab completion at a real terminal (a pseudo-terminal). Against the real binaries. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

TestSuite(cli_session, .init = server_setup, .fini = server_teardown, .timeout = 60);

/* Run allot -p PORT on a pseudo-terminal (so it runs its interactive prompt), type `input`, and
 * return what the terminal showed (malloc'ed); *status is the exit status. */
static char *cli_run_on_terminal(const char *input, int *status)
{
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    cr_assert_geq(pid, 0, "forkpty: %s", strerror(errno));
    if (pid == 0) {
        setenv("HOME", "/nonexistent", 1); /* no history file */
        setenv("TERM", "dumb", 1);
        execl(ALLOT_CLI_PATH, ALLOT_CLI_PATH, "-p", port_text, (char *)NULL);
        _exit(127);
    }
    cr_assert_eq(write(master, input, strlen(input)), (ssize_t)strlen(input));
    size_t cap = 1 << 16, used = 0;
    char *shown = calloc(1, cap);
    for (int waited_ms = 0; waited_ms < CLI_TIMEOUT_MS;) {
        struct pollfd p = {.fd = master, .events = POLLIN};
        if (poll(&p, 1, 100) == 0) {
            waited_ms += 100;
            continue;
        }
        ssize_t n = read(master, shown + used, cap - used - 1);
        if (n <= 0)
            break; /* EIO: the child closed the terminal */
        used += (size_t)n;
    }
    close(master);
    int raw;
    pid_t done = 0;
    for (int waited_ms = 0; done == 0 && waited_ms < CLI_TIMEOUT_MS; waited_ms += 10) {
        done = waitpid(pid, &raw, WNOHANG);
        if (done == 0)
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &raw, 0);
        cr_assert_fail("allot did not leave; the terminal showed: %s", shown);
    }
    *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    return shown;
}

Test(cli_session, dash_h_is_the_host_as_for_redis_cli_and_help_is_long_only)
{
    const char *argv[] = {ALLOT_CLI_PATH, "-h", "localhost", "-p", port_text, "ping", NULL};
    char *out, *err;
    cr_assert_eq(harness_run(argv, NULL, CLI_TIMEOUT_MS, &out, &err), 0, "stderr: %s", err);
    cr_expect_str_eq(out, "pong\n");
    free(out);
    free(err);
    const char *upper[] = {ALLOT_CLI_PATH, "-H", "127.0.0.1", "-p", port_text, "ping", NULL};
    cr_assert_eq(harness_run(upper, NULL, CLI_TIMEOUT_MS, &out, &err), 0, "-H still works");
    free(out);
    free(err);
    const char *help[] = {ALLOT_CLI_PATH, "--help", NULL};
    cr_assert_eq(harness_run(help, NULL, CLI_TIMEOUT_MS, &out, &err), 0);
    cr_expect(strstr(out, "-h, --host HOST") != NULL, "%s", out);
    free(out);
    free(err);
    const char *no_host[] = {ALLOT_CLI_PATH, "-h", NULL};
    cr_expect_eq(harness_run(no_host, NULL, CLI_TIMEOUT_MS, &out, &err), 2, "-h needs a host");
    free(out);
    free(err);
}

Test(cli_session, a_piped_session_answers_every_line_on_stdout_even_when_it_fails)
{
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port_text, "--raw", NULL};
    const char *input = "ping\n"
                        "no.such.method\n"
                        "stock.get {\"sku\": \n"
                        "stock.get {\"sku\": \"nope\"}\n"
                        "ping\n";
    char *out, *err;
    int status = harness_run(argv, input, CLI_TIMEOUT_MS, &out, &err);
    cr_expect_eq(status, 2, "the worst line was bad input; stderr: %s", err);
    const char *expected_prefixes[] = {"pong", "(error) UNKNOWN_METHOD: unknown method",
                                       "(error) invalid params: invalid JSON",
                                       "(error) NOT_FOUND: sku nope not found", "pong"};
    char *line = out;
    for (size_t i = 0; i < 5; i++) {
        cr_assert_not_null(line, "line %zu of stdout is missing: %s", i + 1, out);
        cr_expect(strncmp(line, expected_prefixes[i], strlen(expected_prefixes[i])) == 0,
                  "stdout line %zu: %s", i + 1, out);
        char *newline = strchr(line, '\n');
        line = newline != NULL ? newline + 1 : NULL;
    }
    cr_expect(line != NULL && *line == '\0', "one line per input line: %s", out);
    cr_expect(strstr(err, "UNKNOWN_METHOD: unknown method") != NULL, "stderr too: %s", err);
    cr_expect(strstr(err, "{\"code\":\"NOT_FOUND\"") != NULL, "details on stderr: %s", err);
    free(out);
    free(err);
}

Test(cli_session, quit_after_an_error_exits_1_at_a_terminal_and_in_a_pipe)
{
    int status;
    char *shown = cli_run_on_terminal("no.such.method\nping\nquit\n", &status);
    cr_expect_eq(status, 1, "the terminal showed: %s", shown);
    cr_expect(strstr(shown, "(error) UNKNOWN_METHOD") != NULL, "%s", shown);
    free(shown);
    shown = cli_run_on_terminal("ping\nquit\n", &status);
    cr_expect_eq(status, 0, "the terminal showed: %s", shown);
    free(shown);
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port_text, NULL};
    char *out, *err;
    cr_expect_eq(harness_run(argv, "no.such.method\nping\nquit\n", CLI_TIMEOUT_MS, &out, &err), 1);
    free(out);
    free(err);
}

Test(cli_session, help_lists_every_method_and_help_method_shows_its_arguments)
{
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port_text, NULL};
    char *out, *err;
    cr_assert_eq(harness_run(argv, "help\nhelp reserve\nhelp ping\n", CLI_TIMEOUT_MS, &out, &err),
                 0, "stderr: %s", err);
    const char *methods[] = {"server.stats", "server.verify", " auth", "return.receive",
                             "order.list"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        cr_expect(strstr(out, methods[i]) != NULL, "help lists %s: %s", methods[i], out);
    cr_expect(strstr(out, "reserve {\"id\", \"lines\", \"ttl_s\", \"method\", \"ship_to\", "
                          "\"location\", \"policy\", \"partial\", \"replace\", \"customer\", "
                          "\"token\"}\n  write") != NULL,
              "%s", out);
    cr_expect(strstr(out, "ping {}\n  read: answered at once, allowed before auth") != NULL, "%s",
              out);
    free(out);
    free(err);
    cr_expect_eq(harness_run(argv, "help no.such.method\n", CLI_TIMEOUT_MS, &out, &err), 2);
    cr_expect(strstr(out, "(error) unknown method 'no.such.method'") != NULL, "%s", out);
    free(out);
    free(err);
}

/* The command table as the CLI is built from it (a method added there, e.g. supply.* or
 * transit.*, must appear in help and completion with no edit of the CLI). */
typedef struct table_row {
    const char *name;
    const char *const *keys; /* NULL-terminated */
} table_row_t;

static const table_row_t command_table[] = {
#define COMMAND(wire_name, handler, flags, ...)                                                    \
    {wire_name, (const char *const[]){__VA_ARGS__ __VA_OPT__(, ) NULL}},
#include "net/commands.def"
#undef COMMAND
};

#define COMMAND_TABLE_ROWS (sizeof(command_table) / sizeof(command_table[0]))

/* Is `name` one of the words of the method list (` name` then a blank or the line's end)? */
static bool help_lists(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *at = strstr(list, name); at != NULL; at = strstr(at + 1, name))
        if (at > list && at[-1] == ' ' && (at[len] == ' ' || at[len] == '\n'))
            return true;
    return false;
}

Test(cli_session, help_and_help_method_follow_every_row_of_the_command_table)
{
    const char *argv[] = {ALLOT_CLI_PATH, "-p", port_text, NULL};
    char *list, *err;
    cr_assert_eq(harness_run(argv, "help\n", CLI_TIMEOUT_MS, &list, &err), 0, "stderr: %s", err);
    free(err);
    const char *methods = strstr(list, "methods:");
    cr_assert_not_null(methods, "%s", list);
    size_t input_len = 0, input_bytes = 1;
    for (size_t i = 0; i < COMMAND_TABLE_ROWS; i++)
        input_bytes += strlen("help \n") + strlen(command_table[i].name);
    char *input = calloc(1, input_bytes);
    for (size_t i = 0; i < COMMAND_TABLE_ROWS; i++) {
        cr_expect(help_lists(methods, command_table[i].name), "help lists %s: %s",
                  command_table[i].name, methods);
        input_len += (size_t)sprintf(input + input_len, "help %s\n", command_table[i].name);
    }
    char *out;
    cr_assert_eq(harness_run(argv, input, CLI_TIMEOUT_MS, &out, &err), 0, "stderr: %s", err);
    for (size_t i = 0; i < COMMAND_TABLE_ROWS; i++) {
        char expected[1024];
        int n = snprintf(expected, sizeof(expected), "%s {", command_table[i].name);
        for (size_t k = 0; command_table[i].keys[k] != NULL; k++)
            n += snprintf(expected + n, sizeof(expected) - (size_t)n, "%s\"%s\"", k ? ", " : "",
                          command_table[i].keys[k]);
        snprintf(expected + n, sizeof(expected) - (size_t)n, "}\n");
        cr_expect(strstr(out, expected) != NULL, "help %s shows %s", command_table[i].name,
                  expected);
    }
    free(input);
    free(list);
    free(out);
    free(err);
}

Test(cli_session, tab_completes_the_method_and_the_argument_name_at_a_terminal)
{
    /* "stock.g<Tab>" -> "stock.get ", "{\"s<Tab>" -> "{\"sku\": ": the server then looks up
     * SKU A (an unknown method or key would be answered differently) */
    int status;
    char *shown = cli_run_on_terminal("stock.g\t{\"s\t\"A\"}\nquit\n", &status);
    cr_expect(strstr(shown, "(error) NOT_FOUND: sku A not found") != NULL,
              "both names were completed; the terminal showed: %s", shown);
    cr_expect_eq(status, 1);
    free(shown);
    shown = cli_run_on_terminal("help shipment.del\t\nquit\n", &status);
    cr_expect(strstr(shown, "shipment.deliver {\"order\", \"shipment\"}") != NULL,
              "help completes method names: %s", shown);
    free(shown);
}
