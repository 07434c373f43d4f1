/* allot.c - the `allot` command-line client: one request, or an interactive/piped session. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "core/errors.h"
#include "core/limits.h" /* CLI_HISTORY_LINES_MAX, CLI_TOKEN_BYTES_MAX */
#include "client/client.h"
#include "net/command.h"
#include "client/json_msgpack.h"

#define CLI_EXIT_OK      0
#define CLI_EXIT_ERROR   1 /* the server answered with an error */
#define CLI_EXIT_USAGE   2 /* bad usage, bad input, or no connection */
#define CLI_EXIT_AUTH    3 /* the server refused the token */
#define CLI_HISTORY_FILE ".allot_history"
#define CLI_TOKEN_ENV    "ALLOT_TOKEN"

/* One request from the command line, or a session of lines from a terminal or a pipe. In a
 * session every command line prints one answer on stdout: the result, or `(error) ...`, so that
 * the output of a piped session lines up with its input. */
typedef enum cli_mode { CLI_MODE_COMMAND, CLI_MODE_PIPED, CLI_MODE_INTERACTIVE } cli_mode_t;

/* The methods, their named arguments and flags, from the server's command table. */
typedef struct cli_method {
    const char *name;
    unsigned flags;
    const char *const *keys; /* NULL-terminated */
} cli_method_t;

static const cli_method_t cli_methods[] = {
#define COMMAND(wire_name, handler, flags, ...)                                                    \
    {wire_name, flags, (const char *const[]){__VA_ARGS__ __VA_OPT__(, ) NULL}},
#include "net/commands.def"
#undef COMMAND
};

#define CLI_METHOD_COUNT (sizeof(cli_methods) / sizeof(cli_methods[0]))

typedef struct cli {
    const char *host;
    uint16_t port;
    int timeout_ms;
    bool raw;
    const char *token_file;   /* --token-file, or NULL */
    const char *token_source; /* where the token came from, for messages */
    size_t token_len;         /* 0: no token, no `auth` after connecting */
    char token[CLI_TOKEN_BYTES_MAX];
    bool ready; /* connected, and authenticated when there is a token */
    cli_mode_t mode;
    allot_client_t *client;
} cli_t;

static void cli_usage_print(FILE *f)
{
    fprintf(f,
            "usage: allot [-h host] [-p port] [--timeout MS] [--token-file PATH] [--raw]\n"
            "             [METHOD [JSON]]\n"
            "       allot [options] events tail [--types TYPE,...] [--sku SKU] [--order ID]\n"
            "             [--customer ID] [--after SEQ] [--count N]\n"
            "\n"
            "Sends METHOD with JSON params (an object, default {}) to an Allot server and prints\n"
            "the result as JSON. Without METHOD, reads commands (`METHOD [JSON]`, one a line)\n"
            "from an interactive prompt, or from stdin when it is not a terminal. `events tail`\n"
            "follows the change stream from now (or after SEQ), one JSON line per event (N).\n"
            "\n"
            "  -h, --host HOST     server host or IP address (default 127.0.0.1; -H too)\n"
            "  -p, --port PORT     server port (default %d)\n"
            "  -t, --timeout MS    connect and per-request timeout, 0 = none (default %d)\n"
            "      --token-file PATH\n"
            "                      authenticate with the token on the first line of PATH\n"
            "                      (without it, with the token in $" CLI_TOKEN_ENV ", if set)\n"
            "  -r, --raw           print results as one-line JSON\n"
            "      --help          show this help\n"
            "  -V, --version       show the version\n"
            "\n"
            "Exit status: 0 ok, 1 the server returned an error (printed as `CODE: message` on\n"
            "stderr), 2 usage, input or connection error, 3 the server refused the token.\n",
            ALLOT_CLIENT_PORT_DEFAULT, ALLOT_CLIENT_TIMEOUT_MS_DEFAULT);
}

static const cli_method_t *cli_method_find(const char *name)
{
    for (size_t i = 0; i < CLI_METHOD_COUNT; i++)
        if (strcmp(cli_methods[i].name, name) == 0)
            return &cli_methods[i];
    return NULL;
}

static void cli_session_help_print(void)
{
    printf("commands:  METHOD [JSON params]   e.g.  stock.get {\"sku\": \"A\"}\n"
           "           auth {\"token\": \"...\"}     authenticate (never kept in the history)\n"
           "           help [METHOD]          this text, or the arguments of METHOD\n"
           "           quit | exit            leave (or Ctrl-D)\n"
           "           Tab completes method and argument names\n"
           "methods:");
    size_t column = 9;
    for (size_t i = 0; i < CLI_METHOD_COUNT; i++) {
        size_t len = strlen(cli_methods[i].name) + 1;
        if (column + len > 79) {
            printf("\n        ");
            column = 9;
        }
        printf(" %s", cli_methods[i].name);
        column += len;
    }
    printf("\n");
}

/* `help METHOD`: its named arguments and what kind of call it is. */
static int cli_method_help_print(const char *name)
{
    const cli_method_t *m = cli_method_find(name);
    if (m == NULL) {
        printf("(error) unknown method '%s' (help lists the methods)\n", name);
        return CLI_EXIT_USAGE;
    }
    printf("%s {", m->name);
    for (size_t i = 0; m->keys[i] != NULL; i++)
        printf("%s\"%s\"", i > 0 ? ", " : "", m->keys[i]);
    printf("}\n  %s%s%s; arguments and results: docs/protocol.md\n",
           (m->flags & COMMAND_WRITE) ? "write: answered once it is durable"
                                      : "read: answered at once",
           (m->flags & COMMAND_ADMIN) ? ", admin" : "",
           (m->flags & COMMAND_NOAUTH) ? ", allowed before auth" : "");
    return CLI_EXIT_OK;
}

/* Parse options; returns -1 to continue, else an exit status. */
static int cli_options_parse(cli_t *cli, int argc, char **argv)
{
    /* -h is the host, as for redis-cli (-H too); help is --help only */
    static const struct option options[] = {
        {"host", required_argument, NULL, 'h'},    {"port", required_argument, NULL, 'p'},
        {"timeout", required_argument, NULL, 't'}, {"token-file", required_argument, NULL, 'T'},
        {"raw", no_argument, NULL, 'r'},           {"help", no_argument, NULL, 'U'},
        {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "+h:H:p:t:rV", options, NULL)) != -1) {
        char *end = NULL;
        long value;
        switch (opt) {
        case 'h':
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
        case 'T':
            cli->token_file = optarg;
            break;
        case 'r':
            cli->raw = true;
            break;
        case 'U':
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

/* Read up to bytes_max bytes of fd (a file, or a pipe such as <(pass allot)) until a newline or
 * the end; returns the bytes read, or -1 with errno. */
static ssize_t cli_first_line_read(int fd, char *buf, size_t bytes_max)
{
    size_t used = 0;
    while (used < bytes_max && memchr(buf, '\n', used) == NULL) {
        ssize_t n = read(fd, buf + used, bytes_max - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        used += (size_t)n;
    }
    return (ssize_t)used;
}

/* The token is the first line of the file, without surrounding blanks (as allotd reads its
 * --auth-token-file). A file others may read works, with a warning. */
static int cli_token_file_read(cli_t *cli, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "allot: token file '%s': %s\n", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        fprintf(stderr, "allot: warning: token file '%s' is open to group or others (chmod 600)\n",
                path);
    char buf[CLI_TOKEN_BYTES_MAX + 1];
    ssize_t n = cli_first_line_read(fd, buf, sizeof buf);
    int read_errno = errno;
    close(fd);
    const char *why = n < 0 ? strerror(read_errno) : NULL;
    const char *newline = n < 0 ? NULL : memchr(buf, '\n', (size_t)n);
    size_t line = n < 0 ? 0 : newline != NULL ? (size_t)(newline - buf) : (size_t)n;
    char *start = buf;
    if (why == NULL && line > CLI_TOKEN_BYTES_MAX)
        why = "the first line is too long";
    while (why == NULL && line > 0 && (*start == ' ' || *start == '\t'))
        start++, line--;
    while (why == NULL && line > 0 &&
           (start[line - 1] == ' ' || start[line - 1] == '\t' || start[line - 1] == '\r'))
        line--;
    if (why == NULL && line == 0)
        why = "the first line is empty";
    if (why == NULL) {
        memcpy(cli->token, start, line);
        cli->token_len = line;
        cli->token_source = path;
    }
    explicit_bzero(buf, sizeof buf);
    if (why != NULL)
        fprintf(stderr, "allot: token file '%s': %s\n", path, why);
    return why == NULL ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* The token from --token-file, else from $ALLOT_TOKEN (unset or empty: none). */
static int cli_token_load(cli_t *cli)
{
    if (cli->token_file != NULL)
        return cli_token_file_read(cli, cli->token_file);
    const char *token = getenv(CLI_TOKEN_ENV);
    if (token == NULL || token[0] == '\0')
        return CLI_EXIT_OK;
    size_t len = strlen(token);
    if (len > sizeof(cli->token)) {
        fprintf(stderr, "allot: $%s is longer than %d bytes\n", CLI_TOKEN_ENV, CLI_TOKEN_BYTES_MAX);
        return CLI_EXIT_USAGE;
    }
    memcpy(cli->token, token, len);
    cli->token_len = len;
    cli->token_source = "$" CLI_TOKEN_ENV;
    return CLI_EXIT_OK;
}

/* A problem on this side (bad params, lost connection): `allot: what` on stderr, and in a
 * session `(error) what` on stdout as the line's answer (only there on a terminal). */
static void cli_problem(const cli_t *cli, const char *what, const char *detail)
{
    if (cli->mode != CLI_MODE_INTERACTIVE)
        fprintf(stderr, "allot: %s%s\n", what, detail);
    if (cli->mode != CLI_MODE_COMMAND) {
        printf("(error) %s%s\n", what, detail);
        fflush(stdout);
    }
}

/* `auth {"token": ...}` on the fresh connection. */
static int cli_authenticate(cli_t *cli)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init(&params);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "token", 5);
    msgpack_pack_str_with_body(&pk, cli->token, cli->token_len);
    allot_reply_t reply = {0};
    int rc = allot_client_call(cli->client, "auth", params.data, params.size, &reply);
    explicit_bzero(params.data, params.size);
    msgpack_sbuffer_destroy(&params);
    int status = CLI_EXIT_OK;
    if (rc != 0) {
        fprintf(stderr, "allot: auth: %s\n", allot_client_last_error(cli->client));
        status = CLI_EXIT_USAGE;
    } else if (reply.is_error) {
        fprintf(stderr, "allot: the server refused the token from %s: %s: %s\n", cli->token_source,
                reply.code, reply.message);
        status = CLI_EXIT_AUTH;
    }
    allot_reply_free(&reply);
    return status;
}

/* Connect, then authenticate when there is a token; cli->ready tells whether both worked. */
static int cli_connect(cli_t *cli)
{
    cli->ready = false;
    if (cli->client == NULL)
        cli->client = allot_client_create();
    if (cli->client == NULL) {
        fprintf(stderr, "allot: out of memory\n");
        return CLI_EXIT_USAGE;
    }
    if (allot_client_connect(cli->client, cli->host, cli->port, cli->timeout_ms) != 0) {
        cli_problem(cli, allot_client_last_error(cli->client), "");
        return CLI_EXIT_USAGE;
    }
    int rc = cli->token_len > 0 ? cli_authenticate(cli) : CLI_EXIT_OK;
    if (rc == CLI_EXIT_OK &&
        allot_client_set_auth_token(cli->client, cli->token, cli->token_len) != 0) {
        fprintf(stderr, "allot: out of memory\n");
        rc = CLI_EXIT_USAGE;
    }
    cli->ready = rc == CLI_EXIT_OK;
    return rc;
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

/* An error reply: `CODE: message`, then the details when the error carries more than those, on
 * stderr; in a session also `(error) CODE: message` on stdout (on a terminal, everything there). */
static void cli_error_print(const cli_t *cli, const allot_reply_t *reply)
{
    const msgpack_object *e = &reply->error;
    bool has_details = e->type == MSGPACK_OBJECT_MAP && e->via.map.size > 2;
    if (cli->mode != CLI_MODE_COMMAND) {
        printf("(error) %s: %s\n", reply->code, reply->message);
        fflush(stdout); /* before stderr: in order where both go to one file */
    }
    FILE *f = cli->mode == CLI_MODE_INTERACTIVE ? stdout : stderr;
    if (cli->mode != CLI_MODE_INTERACTIVE)
        fprintf(stderr, "%s: %s\n", reply->code, reply->message);
    if (has_details)
        cli_object_print(f, e, true);
}

/* Send one request and print the outcome; returns a CLI_EXIT_* status. */
static int cli_request_run(cli_t *cli, const char *method, const char *params_json)
{
    allot_reply_t reply = {0};
    int rc = allot_client_call_json(cli->client, method, params_json, &reply);
    if (rc != 0) {
        cli_problem(cli, rc == ALLOT_EINVALID_ARGUMENT ? "invalid params: " : "",
                    allot_client_last_error(cli->client));
        return CLI_EXIT_USAGE;
    }
    int status = CLI_EXIT_OK;
    if (reply.is_error) {
        cli_error_print(cli, &reply);
        if (strcmp(reply.code, "UNAUTHENTICATED") == 0 && cli->token_len == 0 &&
            strcmp(method, "auth") != 0)
            fprintf(cli->mode == CLI_MODE_INTERACTIVE ? stdout : stderr,
                    "allot: the server wants a token: use --token-file PATH or set $%s\n",
                    CLI_TOKEN_ENV);
        status = CLI_EXIT_ERROR;
    } else {
        cli_object_print(stdout, &reply.result, cli->raw);
    }
    fflush(stdout);
    allot_reply_free(&reply);
    return status;
}

/* ---- allot events tail ------------------------------------------------------------------------
 */

#define CLI_TAIL_WAIT_MS      30000
#define CLI_TAIL_PARAMS_BYTES 2048

/* The filter options of `events tail` as events.read params (after the "after" key). */
static int cli_tail_filter(int argc, char **argv, char *filter, size_t bytes, long long *after,
                           long long *count)
{
    static const struct option options[] = {{"types", required_argument, NULL, 'y'},
                                            {"sku", required_argument, NULL, 's'},
                                            {"order", required_argument, NULL, 'o'},
                                            {"customer", required_argument, NULL, 'c'},
                                            {"after", required_argument, NULL, 'a'},
                                            {"count", required_argument, NULL, 'n'},
                                            {NULL, 0, NULL, 0}};
    size_t n = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
        if (opt == '?' || strpbrk(optarg, "\"\\") != NULL)
            return -1;
        if (opt == 'a' || opt == 'n') {
            char *end;
            long long *v = opt == 'a' ? after : count;
            *v = strtoll(optarg, &end, 10);
            if (*end != '\0' || *v < 0 || (opt == 'n' && *v == 0))
                return -1;
            continue;
        }
        const char *key = opt == 'y'   ? "types"
                          : opt == 's' ? "sku"
                          : opt == 'o' ? "order"
                                       : "customer";
        n += (size_t)snprintf(filter + n, bytes - n, ",\"%s\":%s", key, opt == 'y' ? "[" : "");
        for (const char *p = optarg; *p != '\0' && n + 4 < bytes; p++) {
            if (opt == 'y' && (p == optarg || p[-1] == ','))
                filter[n++] = '"';
            if (opt == 'y' && *p == ',') {
                filter[n++] = '"';
                filter[n++] = ',';
                continue;
            }
            if (opt != 'y' && p == optarg)
                filter[n++] = '"';
            filter[n++] = *p;
        }
        n += (size_t)snprintf(filter + n, bytes - n, "\"%s", opt == 'y' ? "]" : "");
        if (n >= bytes)
            return -1;
    }
    return optind == argc ? 0 : -1;
}

/* The newest seq now: what a subscription would start after (it is dropped at once). */
static int cli_tail_newest(cli_t *cli, long long *after)
{
    allot_reply_t r = {0};
    int rc = allot_client_call_json(cli->client, "events.subscribe", "{\"types\":[]}", &r);
    if (rc == 0 && !r.is_error) {
        *after = allot_object_map_get(&r.result, "next")->via.i64;
        char params[64];
        snprintf(params, sizeof(params), "{\"subscription\":%lld}",
                 (long long)allot_object_map_get(&r.result, "subscription")->via.i64);
        rc = allot_client_call_json(cli->client, "events.unsubscribe", params, &r);
    }
    int status = rc != 0 ? CLI_EXIT_USAGE : r.is_error ? CLI_EXIT_ERROR : CLI_EXIT_OK;
    if (rc != 0)
        cli_problem(cli, "", allot_client_last_error(cli->client));
    else if (r.is_error)
        cli_error_print(cli, &r);
    allot_reply_free(&r);
    return status;
}

/* `allot events tail [--types T,...] [--sku S] [--order O] [--customer C] [--after SEQ]
 * [--count N]`: print every new event as one JSON line, following the stream (long polls) until
 * interrupted, or until N were printed. */
static int cli_events_tail(cli_t *cli, int argc, char **argv)
{
    char filter[CLI_TAIL_PARAMS_BYTES] = "";
    long long after = -1, count = -1;
    if (cli_tail_filter(argc, argv, filter, sizeof(filter), &after, &count) != 0) {
        fprintf(stderr, "usage: allot events tail [--types TYPE,...] [--sku SKU] [--order ID] "
                        "[--customer ID] [--after SEQ] [--count N]\n");
        return CLI_EXIT_USAGE;
    }
    int status = after < 0 ? cli_tail_newest(cli, &after) : CLI_EXIT_OK;
    if (cli->timeout_ms != 0)
        allot_client_set_timeout(cli->client, CLI_TAIL_WAIT_MS + cli->timeout_ms);
    while (status == CLI_EXIT_OK && count != 0) {
        char params[CLI_TAIL_PARAMS_BYTES + 96];
        snprintf(params, sizeof(params), "{\"after\":%lld,\"wait_ms\":%d%s}", after,
                 CLI_TAIL_WAIT_MS, filter);
        allot_reply_t r = {0};
        if (allot_client_call_json(cli->client, "events.read", params, &r) != 0) {
            cli_problem(cli, "", allot_client_last_error(cli->client));
            status = CLI_EXIT_USAGE;
        } else if (r.is_error) {
            cli_error_print(cli, &r);
            status = CLI_EXIT_ERROR;
        } else {
            const msgpack_object *events = allot_object_map_get(&r.result, "events");
            uint32_t n = events->via.array.size;
            if (count > 0 && n > count)
                n = (uint32_t)count;
            for (uint32_t i = 0; i < n; i++)
                cli_object_print(stdout, &events->via.array.ptr[i], true);
            fflush(stdout);
            after = allot_object_map_get(&r.result, "next")->via.i64;
            if (count > 0)
                count -= n;
        }
        allot_reply_free(&r);
    }
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
        if (params[0] != '\0')
            return cli_method_help_print(params);
        cli_session_help_print();
        return CLI_EXIT_OK;
    }
    if (!cli->ready || !allot_client_connected(cli->client)) {
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
        if (rc >= CLI_EXIT_USAGE && (!cli->ready || !allot_client_connected(cli->client)))
            break; /* lost the connection, or the server refused the token */
    }
    free(line);
    return worst;
}

/* True for a session line that carries a secret (an `auth` call, however spelled), which is
 * never kept in the history. */
static bool cli_line_is_secret(const char *line)
{
    return strncasecmp(line, "auth", 4) == 0 &&
           (line[4] == '\0' || line[4] == ' ' || line[4] == '\t' || line[4] == '{');
}

/* ---- Tab completion (libedit's readline interface) ---------------------------------------- */

/* What is being completed: the first word (a method, or help/quit/exit), the word after `help`
 * (a method), or an argument name of the line's method. */
static const cli_method_t *cli_complete_method; /* NULL: complete method names */
static bool cli_complete_commands;              /* also help, quit, exit */
static bool cli_complete_after_quote;           /* the key's opening quote is typed already */

static char *cli_complete_next(const char *text, int state)
{
    static size_t index;
    static const char *const session_words[] = {"help", "quit", "exit"};
    if (state == 0)
        index = 0;
    size_t len = strlen(text);
    while (cli_complete_method != NULL && cli_complete_method->keys[index] != NULL) {
        const char *key = cli_complete_method->keys[index++];
        if (strncmp(key, text, len) != 0)
            continue;
        char *match = malloc(strlen(key) + 6);
        if (match != NULL)
            sprintf(match, "%s%s\": ", cli_complete_after_quote ? "" : "\"", key);
        return match;
    }
    while (cli_complete_method == NULL && index < CLI_METHOD_COUNT + 3) {
        size_t i = index++;
        if (i >= CLI_METHOD_COUNT && !cli_complete_commands)
            continue;
        const char *name =
            i < CLI_METHOD_COUNT ? cli_methods[i].name : session_words[i - CLI_METHOD_COUNT];
        if (strncmp(name, text, len) == 0)
            return strdup(name);
    }
    return NULL;
}

static char **cli_complete(const char *text, int start, int end)
{
    (void)end;
    char first[ALLOT_METHOD_BYTES_MAX + 1] = "";
    const char *line = rl_line_buffer;
    size_t skip = strspn(line, " \t");
    size_t first_len = strcspn(line + skip, " \t{");
    bool in_first_word = (size_t)start <= skip + first_len;
    if (first_len < sizeof(first))
        snprintf(first, sizeof(first), "%.*s", (int)first_len, line + skip);
    rl_attempted_completion_over = 1; /* never fall back to file names */
    cli_complete_method = NULL;
    cli_complete_commands = in_first_word;
    rl_completion_append_character = ' ';
    if (!in_first_word && strcmp(first, "help") != 0) {
        cli_complete_method = cli_method_find(first);
        if (cli_complete_method == NULL)
            return NULL;
        cli_complete_after_quote = start > 0 && line[start - 1] == '"';
        rl_completion_append_character = '\0';
    }
    return rl_completion_matches(text, cli_complete_next);
}

/* Interactive prompt with libedit history in ~/.allot_history (auth lines left out) and Tab
 * completion. The exit status is the worst of the lines, as for a piped session. */
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
    static char word_breaks[] = " \t{},:\"[";
    rl_completer_word_break_characters = word_breaks;
    rl_attempted_completion_function = cli_complete;
    char prompt[300];
    snprintf(prompt, sizeof prompt, "allot %s:%u> ", cli->host, (unsigned)cli->port);
    printf("connected to %s:%u; type help for commands, quit to leave\n", cli->host,
           (unsigned)cli->port);
    int worst = CLI_EXIT_OK;
    char *line;
    while ((line = readline(prompt)) != NULL) {
        char *trimmed = cli_trim(line);
        if (trimmed[0] != '\0' && !cli_line_is_secret(trimmed)) {
            add_history(trimmed);
            if (history_path[0] != '\0')
                write_history(history_path);
        }
        int rc = cli_line_run(cli, trimmed);
        free(line);
        if (rc < 0)
            break;
        if (rc > worst)
            worst = rc;
    }
    return worst;
}

int main(int argc, char **argv)
{
    cli_t cli = {.host = "127.0.0.1",
                 .port = ALLOT_CLIENT_PORT_DEFAULT,
                 .timeout_ms = ALLOT_CLIENT_TIMEOUT_MS_DEFAULT};
    int rc = cli_options_parse(&cli, argc, argv);
    if (rc >= 0)
        return rc;
    rc = cli_token_load(&cli);
    if (rc != CLI_EXIT_OK)
        return rc;
    int positional = argc - optind;
    bool tail = positional >= 2 && strcmp(argv[optind], "events") == 0 &&
                strcmp(argv[optind + 1], "tail") == 0;
    if (positional > 2 && !tail) {
        fprintf(stderr, "allot: too many arguments (quote the JSON params as one argument)\n");
        return CLI_EXIT_USAGE;
    }
    rc = cli_connect(&cli);
    if (rc == CLI_EXIT_OK) {
        cli.mode = positional > 0         ? CLI_MODE_COMMAND
                   : isatty(STDIN_FILENO) ? CLI_MODE_INTERACTIVE
                                          : CLI_MODE_PIPED;
        if (tail)
            rc = cli_events_tail(&cli, argc - optind - 1, argv + optind + 1);
        else if (cli.mode == CLI_MODE_COMMAND)
            rc = cli_request_run(&cli, argv[optind], positional == 2 ? argv[optind + 1] : NULL);
        else if (cli.mode == CLI_MODE_INTERACTIVE)
            rc = cli_session_interactive(&cli);
        else
            rc = cli_session_stream(&cli);
    }
    allot_client_close(cli.client);
    explicit_bzero(cli.token, sizeof cli.token);
    return rc;
}
