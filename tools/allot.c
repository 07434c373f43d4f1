/* allot.c - the `allot` command-line client: one request, or an interactive/piped session. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "core/errors.h"
#include "net/client.h"
#include "net/json_msgpack.h"

#define CLI_EXIT_OK           0
#define CLI_EXIT_ERROR        1 /* the server answered with an error */
#define CLI_EXIT_USAGE        2 /* bad usage, bad input, or no connection */
#define CLI_HISTORY_FILE      ".allot_history"
#define CLI_HISTORY_LINES_MAX 1000

typedef struct cli {
    const char *host;
    uint16_t port;
    int timeout_ms;
    bool raw;
    allot_client_t *client;
} cli_t;

static void cli_usage_print(FILE *f)
{
    fprintf(f,
            "usage: allot [-H host] [-p port] [--timeout MS] [--raw] [METHOD [JSON]]\n"
            "\n"
            "Sends METHOD with JSON params (an object, default {}) to an Allot server and prints\n"
            "the result as JSON. Without METHOD, reads commands (`METHOD [JSON]`, one a line)\n"
            "from an interactive prompt, or from stdin when it is not a terminal.\n"
            "\n"
            "  -H, --host HOST     server host or IP address (default 127.0.0.1)\n"
            "  -p, --port PORT     server port (default %d)\n"
            "  -t, --timeout MS    connect and per-request timeout, 0 = none (default %d)\n"
            "  -r, --raw           print results as one-line JSON\n"
            "  -h, --help          show this help\n"
            "  -V, --version       show the version\n"
            "\n"
            "Exit status: 0 ok, 1 the server returned an error (printed as `CODE: message` on\n"
            "stderr), 2 usage, input or connection error.\n",
            ALLOT_CLIENT_PORT_DEFAULT, ALLOT_CLIENT_TIMEOUT_MS_DEFAULT);
}

static void cli_session_help_print(void)
{
    printf("commands:  METHOD [JSON params]   e.g.  stock.get {\"sku\": \"A\"}\n"
           "           help                   this text\n"
           "           quit | exit            leave (or Ctrl-D)\n"
           "methods:   ping server.info server.checkpoint location.put location.get\n"
           "           location.list stock.set stock.adjust stock.get avail.get reserve\n"
           "           reservation.get reservation.extend reservation.release order.create\n"
           "           order.get order.list order.pay order.hold order.unhold order.modify\n"
           "           order.release order.cancel shipment.reject shipment.ship\n"
           "           shipment.deliver return.create return.receive\n");
}

/* Parse options; returns -1 to continue, else an exit status. */
static int cli_options_parse(cli_t *cli, int argc, char **argv)
{
    static const struct option options[] = {{"host", required_argument, NULL, 'H'},
                                            {"port", required_argument, NULL, 'p'},
                                            {"timeout", required_argument, NULL, 't'},
                                            {"raw", no_argument, NULL, 'r'},
                                            {"help", no_argument, NULL, 'h'},
                                            {"version", no_argument, NULL, 'V'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "+H:p:t:rhV", options, NULL)) != -1) {
        char *end = NULL;
        long value;
        switch (opt) {
        case 'H':
            cli->host = optarg;
            break;
        case 'p':
            value = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || value < 1 || value > 65535) {
                fprintf(stderr, "allot: invalid port '%s' (1..65535)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            cli->port = (uint16_t)value;
            break;
        case 't':
            value = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || value < 0 || value > 86400000) {
                fprintf(stderr, "allot: invalid timeout '%s' (milliseconds, 0 = none)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            cli->timeout_ms = (int)value;
            break;
        case 'r':
            cli->raw = true;
            break;
        case 'h':
            cli_usage_print(stdout);
            return CLI_EXIT_OK;
        case 'V':
            printf("allot %s\n", ALLOT_VERSION);
            return CLI_EXIT_OK;
        default:
            cli_usage_print(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    return -1;
}

static int cli_connect(cli_t *cli)
{
    if (cli->client == NULL)
        cli->client = allot_client_create();
    if (cli->client == NULL) {
        fprintf(stderr, "allot: out of memory\n");
        return CLI_EXIT_USAGE;
    }
    if (allot_client_connect(cli->client, cli->host, cli->port, cli->timeout_ms) != 0) {
        fprintf(stderr, "allot: %s\n", allot_client_last_error(cli->client));
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Print an object as JSON (a top-level string bare) followed by a newline. */
static void cli_object_print(FILE *f, const msgpack_object *o, bool raw)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        fwrite(o->via.str.ptr, 1, o->via.str.size, f);
        fputc('\n', f);
        return;
    }
    char *text = NULL;
    char err[JSON_MSGPACK_ERROR_BYTES];
    if (json_msgpack_to_text(o, raw ? JSON_MSGPACK_COMPACT : JSON_MSGPACK_PRETTY, &text, NULL, err,
                             sizeof err) != 0) {
        fprintf(stderr, "allot: cannot show the reply: %s\n", err);
        return;
    }
    fprintf(f, "%s\n", text);
    free(text);
}

/* An error reply: `CODE: message`, then the details when the error carries more than those. */
static void cli_error_print(const allot_reply_t *reply)
{
    fprintf(stderr, "%s: %s\n", reply->code, reply->message);
    const msgpack_object *e = &reply->error;
    bool has_details = e->type == MSGPACK_OBJECT_MAP && e->via.map.size > 2;
    if (has_details)
        cli_object_print(stderr, e, true);
}

/* Send one request and print the outcome; returns a CLI_EXIT_* status. */
static int cli_request_run(cli_t *cli, const char *method, const char *params_json)
{
    allot_reply_t reply = {0};
    int rc = allot_client_call_json(cli->client, method, params_json, &reply);
    if (rc == ALLOT_EINVALID_ARGUMENT) {
        fprintf(stderr, "allot: invalid params: %s\n", allot_client_last_error(cli->client));
        return CLI_EXIT_USAGE;
    }
    if (rc != 0) {
        fprintf(stderr, "allot: %s\n", allot_client_last_error(cli->client));
        return CLI_EXIT_USAGE;
    }
    int status = CLI_EXIT_OK;
    if (reply.is_error) {
        cli_error_print(&reply);
        status = CLI_EXIT_ERROR;
    } else {
        cli_object_print(stdout, &reply.result, cli->raw);
    }
    fflush(stdout);
    allot_reply_free(&reply);
    return status;
}

static char *cli_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* One session line. Returns a CLI_EXIT_* status, or -1 for quit. */
static int cli_line_run(cli_t *cli, char *line)
{
    line = cli_trim(line);
    if (line[0] == '\0' || line[0] == '#')
        return CLI_EXIT_OK;
    char *params = line + strcspn(line, " \t");
    if (*params != '\0')
        *params++ = '\0';
    params = cli_trim(params);
    if (strcmp(line, "quit") == 0 || strcmp(line, "exit") == 0)
        return -1;
    if (strcmp(line, "help") == 0 || strcmp(line, "?") == 0) {
        cli_session_help_print();
        return CLI_EXIT_OK;
    }
    if (!allot_client_connected(cli->client)) {
        int rc = cli_connect(cli);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    return cli_request_run(cli, line, params);
}

/* Commands from a pipe or file: stops at the first connection failure. */
static int cli_session_stream(cli_t *cli)
{
    char *line = NULL;
    size_t cap = 0;
    int worst = CLI_EXIT_OK;
    while (getline(&line, &cap, stdin) >= 0) {
        int rc = cli_line_run(cli, line);
        if (rc < 0)
            break;
        if (rc > worst)
            worst = rc;
        if (rc == CLI_EXIT_USAGE && !allot_client_connected(cli->client))
            break;
    }
    free(line);
    return worst;
}

/* Interactive prompt with libedit history in ~/.allot_history. */
static int cli_session_interactive(cli_t *cli)
{
    char history_path[4096] = "";
    const char *home = getenv("HOME");
    if (home != NULL && home[0] != '\0')
        snprintf(history_path, sizeof history_path, "%s/%s", home, CLI_HISTORY_FILE);
    using_history();
    stifle_history(CLI_HISTORY_LINES_MAX);
    if (history_path[0] != '\0')
        read_history(history_path);
    char prompt[300];
    snprintf(prompt, sizeof prompt, "allot %s:%u> ", cli->host, (unsigned)cli->port);
    printf("connected to %s:%u; type help for commands, quit to leave\n", cli->host,
           (unsigned)cli->port);
    int last = CLI_EXIT_OK;
    char *line;
    while ((line = readline(prompt)) != NULL) {
        char *trimmed = cli_trim(line);
        if (trimmed[0] != '\0') {
            add_history(trimmed);
            if (history_path[0] != '\0')
                write_history(history_path);
        }
        last = cli_line_run(cli, trimmed);
        free(line);
        if (last < 0) {
            last = CLI_EXIT_OK;
            break;
        }
    }
    return last;
}

int main(int argc, char **argv)
{
    cli_t cli = {.host = "127.0.0.1",
                 .port = ALLOT_CLIENT_PORT_DEFAULT,
                 .timeout_ms = ALLOT_CLIENT_TIMEOUT_MS_DEFAULT};
    int rc = cli_options_parse(&cli, argc, argv);
    if (rc >= 0)
        return rc;
    int positional = argc - optind;
    if (positional > 2) {
        fprintf(stderr, "allot: too many arguments (quote the JSON params as one argument)\n");
        return CLI_EXIT_USAGE;
    }
    rc = cli_connect(&cli);
    if (rc == CLI_EXIT_OK) {
        if (positional > 0)
            rc = cli_request_run(&cli, argv[optind], positional == 2 ? argv[optind + 1] : NULL);
        else if (isatty(STDIN_FILENO))
            rc = cli_session_interactive(&cli);
        else
            rc = cli_session_stream(&cli);
    }
    allot_client_close(cli.client);
    return rc;
}
