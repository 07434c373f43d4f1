/* options.c - allotd's option table, command-line and config-file parsing (see options.h). */
#include "options.h"

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"

typedef int (*option_set_fn)(options_t *o, const char *value, char *error, size_t error_bytes);

typedef struct option_spec {
    const char *name;
    bool takes_value;
    option_set_fn set;
    const char *help;
} option_spec_t;

static int fail(char *error, size_t bytes, const char *what, const char *value)
{
    snprintf(error, bytes, "%s: '%s'", what, value);
    return -1;
}

/* "expects MIN..MAX<note>: 'VALUE'": the range is the one of core/limits.h, printed from it. */
static int fail_range(char *error, size_t bytes, uint64_t min, uint64_t max, const char *note,
                      const char *value)
{
    snprintf(error, bytes, "expects %llu..%llu%s: '%s'", (unsigned long long)min,
             (unsigned long long)max, note, value);
    return -1;
}

static int parse_u64(const char *value, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int set_listen(options_t *o, const char *value, char *error, size_t bytes)
{
    const char *colon = strrchr(value, ':');
    if (colon == NULL)
        return fail(error, bytes, "expects HOST:PORT", value);
    const char *host = value;
    size_t host_len = (size_t)(colon - value);
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    uint64_t port;
    if (host_len == 0 || host_len >= sizeof(o->server.listen_host) ||
        parse_u64(colon + 1, 0, 65535, &port) != 0)
        return fail(error, bytes, "expects HOST:PORT", value);
    memcpy(o->server.listen_host, host, host_len);
    o->server.listen_host[host_len] = '\0';
    o->server.listen_port = (uint16_t)port;
    return 0;
}

/* "expects a path of 1..N bytes: 'VALUE'" (N: SERVER_PATH_BYTES_MAX - 1). */
static int fail_path(char *error, size_t bytes, const char *value)
{
    snprintf(error, bytes, "expects a path of 1..%u bytes: '%s'", SERVER_PATH_BYTES_MAX - 1, value);
    return -1;
}

static int set_data_dir(options_t *o, const char *value, char *error, size_t bytes)
{
    if (value[0] == '\0' || strlen(value) >= sizeof(o->server.data_dir))
        return fail_path(error, bytes, value);
    snprintf(o->server.data_dir, sizeof(o->server.data_dir), "%s", value);
    return 0;
}

static int set_fsync(options_t *o, const char *value, char *error, size_t bytes)
{
    uint64_t ms;
    if (strcmp(value, "always") == 0)
        o->server.fsync_mode = WAL_FSYNC_ALWAYS;
    else if (strcmp(value, "none") == 0)
        o->server.fsync_mode = WAL_FSYNC_NONE;
    else if (strncmp(value, "interval:", 9) == 0 &&
             parse_u64(value + 9, 1, WAL_FSYNC_INTERVAL_MS_MAX, &ms) == 0) {
        o->server.fsync_mode = WAL_FSYNC_INTERVAL;
        o->server.fsync_interval_ms = (uint32_t)ms;
    } else {
        snprintf(error, bytes, "expects always, interval:MS (1..%u) or none: '%s'",
                 WAL_FSYNC_INTERVAL_MS_MAX, value);
        return -1;
    }
    return 0;
}

static int set_log_level(options_t *o, const char *value, char *error, size_t bytes)
{
    int level = log_level_parse(value);
    if (level < 0)
        return fail(error, bytes, "expects debug, info, warn or error", value);
    o->log_level = (log_level_t)level;
    return 0;
}

static int set_log_format(options_t *o, const char *value, char *error, size_t bytes)
{
    if (strcmp(value, "logfmt") == 0)
        o->log_format = LOG_FORMAT_LOGFMT;
    else if (strcmp(value, "json") == 0)
        o->log_format = LOG_FORMAT_JSON;
    else
        return fail(error, bytes, "expects logfmt or json", value);
    return 0;
}

/* A setter of an unsigned setting held to [min, max] (core/limits.h); note follows the range in
 * the message, e.g. " (0 = never)". */
#define UINT_SETTER(fn, field, min, max, note)                                                     \
    static int fn(options_t *o, const char *value, char *error, size_t bytes)                      \
    {                                                                                              \
        uint64_t v;                                                                                \
        if (parse_u64(value, (min), (max), &v) != 0)                                               \
            return fail_range(error, bytes, (min), (max), note, value);                            \
        o->server.field = (__typeof__(o->server.field))v;                                          \
        return 0;                                                                                  \
    }

UINT_SETTER(set_request_bytes_max, request_bytes_max, ALLOT_REQUEST_BYTES_MAX_FLOOR,
            ALLOT_REQUEST_BYTES_MAX_CEILING, "")
UINT_SETTER(set_inflight_max, inflight_requests_max, 1, ALLOT_INFLIGHT_REQUESTS_MAX_CEILING, "")
UINT_SETTER(set_output_bytes_max, output_bytes_max, ALLOT_OUTPUT_BYTES_MAX_FLOOR,
            ALLOT_OUTPUT_BYTES_MAX_CEILING, "")
UINT_SETTER(set_buffer_bytes_max, buffer_bytes_max, ALLOT_BUFFER_BYTES_MAX_FLOOR,
            ALLOT_BUFFER_BYTES_MAX_CEILING, "")
UINT_SETTER(set_idle_timeout_s, idle_timeout_s, 0, ALLOT_IDLE_TIMEOUT_S_CEILING, " (0 = never)")
UINT_SETTER(set_connections_max, connections_max, 1, ALLOT_CONNECTIONS_MAX_CEILING, "")
UINT_SETTER(set_request_timeout_ms, request_timeout_ms, 0, ALLOT_REQUEST_TIMEOUT_MS_CEILING,
            " (0 = never)")
UINT_SETTER(set_auth_timeout_ms, auth_timeout_ms, 0, ALLOT_AUTH_TIMEOUT_MS_CEILING, " (0 = never)")
UINT_SETTER(set_unauthenticated_connections_max, unauthenticated_connections_max, 0,
            ALLOT_UNAUTHENTICATED_CONNECTIONS_MAX_CEILING, " (0 = a tenth of --connections-max)")
UINT_SETTER(set_wal_segment_bytes, wal_segment_bytes, ALLOT_WAL_SEGMENT_BYTES_FLOOR,
            ALLOT_WAL_SEGMENT_BYTES_CEILING, "")
UINT_SETTER(set_wal_linger_us, wal_linger_us, 0, ALLOT_WAL_LINGER_US_MAX, " (0 = off)")
UINT_SETTER(set_checkpoint_interval_s, checkpoint_interval_s, 0,
            ALLOT_CHECKPOINT_INTERVAL_S_CEILING, " (0 = never on a timer)")
UINT_SETTER(set_reservations_max, reservations_max, 1, ALLOT_RESERVATIONS_MAX_CEILING, "")
UINT_SETTER(set_idempotency_entries_max, idempotency_entries_max, 1,
            ALLOT_IDEMPOTENCY_ENTRIES_MAX_CEILING, "")
UINT_SETTER(set_idempotency_age_s, idempotency_age_s, 1, ALLOT_IDEMPOTENCY_AGE_S_CEILING, "")
UINT_SETTER(set_checkpoint_dirty_max, checkpoint_dirty_max, 0, ALLOT_CHECKPOINT_DIRTY_MAX_CEILING,
            " (0 = never by count)")
UINT_SETTER(set_http_connections_max, http_connections_max, 1, HTTP_CONNECTIONS_MAX_CEILING, "")
UINT_SETTER(set_http_timeout_s, http_timeout_s, 1, HTTP_TIMEOUT_S_CEILING, "")
UINT_SETTER(set_checkpoint_wal_bytes, checkpoint_wal_bytes, 0, ALLOT_CHECKPOINT_WAL_BYTES_CEILING,
            " (0 = never by size)")
UINT_SETTER(set_events_retention_s, events_retention_s, 1, ALLOT_EVENTS_RETENTION_S_CEILING, "")
UINT_SETTER(set_events_bytes_max, events_bytes_max, ALLOT_EVENTS_BYTES_MAX_FLOOR,
            ALLOT_EVENTS_BYTES_MAX_CEILING, "")
UINT_SETTER(set_ledger_retention_days, ledger_retention_days, 1,
            ALLOT_LEDGER_RETENTION_DAYS_CEILING, "")

static int set_orders_archive_age_s(options_t *o, const char *value, char *error, size_t bytes)
{
    uint64_t s;
    if (parse_u64(value, 1, ALLOT_ORDERS_ARCHIVE_AGE_S_CEILING, &s) != 0)
        return fail_range(error, bytes, 1, ALLOT_ORDERS_ARCHIVE_AGE_S_CEILING, "", value);
    o->server.orders_archive_age_ms = s * 1000;
    return 0;
}

static int set_auth_token_file(options_t *o, const char *value, char *error, size_t bytes)
{
    if (value[0] == '\0' || strlen(value) >= sizeof(o->server.auth_token_file))
        return fail_path(error, bytes, value);
    snprintf(o->server.auth_token_file, sizeof(o->server.auth_token_file), "%s", value);
    return 0;
}

static int set_metrics(options_t *o, const char *value, char *error, size_t bytes)
{
    options_t parsed = *o;
    if (set_listen(&parsed, value, error, bytes) != 0)
        return fail(error, bytes, "expects HOST:PORT", value);
    memcpy(o->server.metrics_host, parsed.server.listen_host, sizeof(o->server.metrics_host));
    o->server.metrics_port = parsed.server.listen_port;
    return 0;
}

static int set_node_id(options_t *o, const char *value, char *error, size_t bytes)
{
    uint64_t id;
    if (parse_u64(value, 1, ALLOT_NODE_ID_MAX, &id) != 0)
        return fail_range(error, bytes, 1, ALLOT_NODE_ID_MAX, "", value);
    o->server.node_id = (uint32_t)id;
    return 0;
}

/* "host:port" of a member: copied when it has a host and a port of 1..65535. */
static bool member_address_copy(char *out, const char *start, size_t len)
{
    const char *colon = memrchr(start, ':', len);
    if (colon == NULL || colon == start || len >= ALLOT_ADDRESS_BYTES_MAX)
        return false;
    char port_text[8];
    size_t port_len = len - (size_t)(colon + 1 - start);
    uint64_t port;
    if (port_len == 0 || port_len >= sizeof(port_text))
        return false;
    memcpy(port_text, colon + 1, port_len);
    port_text[port_len] = '\0';
    if (parse_u64(port_text, 1, 65535, &port) != 0)
        return false;
    memcpy(out, start, len);
    out[len] = '\0';
    return true;
}

/* --peer ID=RAFT_HOST:PORT/CLIENT_HOST:PORT, once per member of the group (itself included). */
static int set_peer(options_t *o, const char *value, char *error, size_t bytes)
{
    static const char *const form = "expects ID=RAFT_HOST:PORT/CLIENT_HOST:PORT";
    const char *equals = strchr(value, '=');
    const char *slash = equals != NULL ? strchr(equals, '/') : NULL;
    if (equals == NULL || slash == NULL)
        return fail(error, bytes, form, value);
    char id_text[8];
    size_t id_len = (size_t)(equals - value);
    uint64_t id;
    if (id_len == 0 || id_len >= sizeof(id_text))
        return fail(error, bytes, form, value);
    memcpy(id_text, value, id_len);
    id_text[id_len] = '\0';
    if (parse_u64(id_text, 1, ALLOT_NODE_ID_MAX, &id) != 0)
        return fail_range(error, bytes, 1, ALLOT_NODE_ID_MAX, " as the node id", value);
    server_config_t *config = &o->server;
    for (size_t i = 0; i < config->member_count; i++)
        if (config->members[i].id == id)
            return fail(error, bytes, "names a node id twice", value);
    if (config->member_count == ALLOT_GROUP_MEMBERS_MAX)
        return fail(error, bytes, "too many members (at most 7)", value);
    consensus_member_t *member = &config->members[config->member_count];
    member->id = (uint32_t)id;
    if (!member_address_copy(member->raft_address, equals + 1, (size_t)(slash - equals - 1)) ||
        !member_address_copy(member->client_address, slash + 1, strlen(slash + 1)))
        return fail(error, bytes, form, value);
    config->member_count++;
    return 0;
}

static int set_raft_election_timeout_ms(options_t *o, const char *value, char *error, size_t bytes)
{
    uint64_t ms;
    if (parse_u64(value, ALLOT_RAFT_ELECTION_TIMEOUT_MS_FLOOR,
                  ALLOT_RAFT_ELECTION_TIMEOUT_MS_CEILING, &ms) != 0)
        return fail_range(error, bytes, ALLOT_RAFT_ELECTION_TIMEOUT_MS_FLOOR,
                          ALLOT_RAFT_ELECTION_TIMEOUT_MS_CEILING, "", value);
    o->server.raft_election_timeout_ms = (uint32_t)ms;
    return 0;
}

static int set_raft_snapshot_entries(options_t *o, const char *value, char *error, size_t bytes)
{
    uint64_t n;
    if (parse_u64(value, ALLOT_RAFT_SNAPSHOT_ENTRIES_FLOOR, ALLOT_RAFT_SNAPSHOT_ENTRIES_CEILING,
                  &n) != 0)
        return fail_range(error, bytes, ALLOT_RAFT_SNAPSHOT_ENTRIES_FLOOR,
                          ALLOT_RAFT_SNAPSHOT_ENTRIES_CEILING, "", value);
    o->server.raft_snapshot_entries = (uint32_t)n;
    return 0;
}

static int set_http(options_t *o, const char *value, char *error, size_t bytes)
{
    options_t parsed = *o;
    if (set_listen(&parsed, value, error, bytes) != 0)
        return fail(error, bytes, "expects HOST:PORT", value);
    memcpy(o->server.http_host, parsed.server.listen_host, sizeof(o->server.http_host));
    o->server.http_port = parsed.server.listen_port;
    return 0;
}

static int set_config(options_t *o, const char *value, char *error, size_t bytes)
{
    (void)o, (void)value, (void)error, (void)bytes;
    return 0; /* handled before the other options (see options_parse) */
}

static const option_spec_t option_table[] = {
    {"listen", true, set_listen, "HOST:PORT to listen on (default 127.0.0.1:7411)"},
    {"data-dir", true, set_data_dir, "directory for the WAL and checkpoints (default ./data)"},
    {"fsync", true, set_fsync, "always (default) | interval:MS | none (benchmarks only)"},
    {"log-level", true, set_log_level, "debug | info (default) | warn | error"},
    {"log-format", true, set_log_format, "logfmt (default) | json"},
    {"config", true, set_config, "read settings from FILE (flags override it)"},
    {"request-bytes-max", true, set_request_bytes_max, "largest request (default 1048576)"},
    {"inflight-max", true, set_inflight_max, "unanswered requests per connection (1024)"},
    {"output-bytes-max", true, set_output_bytes_max, "unsent reply bytes per connection (8 MiB)"},
    {"connections-max", true, set_connections_max, "concurrent connections (10000)"},
    {"buffer-bytes-max", true, set_buffer_bytes_max, "all connection buffers together (1 GiB)"},
    {"idle-timeout-s", true, set_idle_timeout_s, "close connections idle this long (0 = never)"},
    {"request-timeout-ms", true, set_request_timeout_ms, "close a half-sent request after (30000)"},
    {"wal-segment-bytes", true, set_wal_segment_bytes, "WAL segment file size (64 MiB)"},
    {"wal-linger-us", true, set_wal_linger_us,
     "with --fsync always, a small batch right after a commit that many records arrived during "
     "waits up to this long for more (500; 0 = off)"},
    {"checkpoint-interval-s", true, set_checkpoint_interval_s, "checkpoint period (60)"},
    {"checkpoint-wal-bytes", true, set_checkpoint_wal_bytes, "checkpoint after WAL bytes (64 MiB)"},
    {"checkpoint-dirty-max", true, set_checkpoint_dirty_max,
     "checkpoint once this many objects changed (1048576)"},
    {"reservations-max", true, set_reservations_max, "live reservations at once (4194304)"},
    {"idempotency-entries-max", true, set_idempotency_entries_max,
     "ended reservation ids and adjust keys remembered (4194304)"},
    {"idempotency-age-s", true, set_idempotency_age_s,
     "how long ids and keys are remembered at least (86400)"},
    {"orders-archive-age-s", true, set_orders_archive_age_s,
     "delivered/cancelled orders leave memory after (604800 = 7 days); read from state.lmdb"},
    {"events-retention-s", true, set_events_retention_s,
     "keep the change stream's events this long (86400)"},
    {"events-bytes-max", true, set_events_bytes_max,
     "and at most this many bytes of them (1 GiB), whichever comes first"},
    {"ledger-retention-days", true, set_ledger_retention_days,
     "keep the ledger's on_hand movements this long (90)"},
    {"auth-token-file", true, set_auth_token_file, "require `auth {token}` (file mode 0600)"},
    {"auth-timeout-ms", true, set_auth_timeout_ms,
     "with a token: close a connection not authenticated after (10000; 0 = never)"},
    {"unauthenticated-connections-max", true, set_unauthenticated_connections_max,
     "with a token: unauthenticated at once (0 = connections-max / 10); the oldest makes room"},
    {"metrics", true, set_metrics, "serve Prometheus text on HOST:PORT at GET /metrics"},
    {"node-id", true, set_node_id, "this node's id in its group (1..255; with --peer)"},
    {"peer", true, set_peer,
     "ID=RAFT_HOST:PORT/CLIENT_HOST:PORT, once per member of the group, itself included"},
    {"raft-election-timeout-ms", true, set_raft_election_timeout_ms,
     "in a group: a leader silent this long is replaced (500)"},
    {"raft-snapshot-entries", true, set_raft_snapshot_entries,
     "in a group: raft entries between snapshots (checkpoints) (4096)"},
    {"http", true, set_http,
     "serve the API as JSON (POST /v1/METHOD), its OpenAPI, events and the console on HOST:PORT"},
    {"http-connections-max", true, set_http_connections_max, "concurrent HTTP connections (1024)"},
    {"http-timeout-s", true, set_http_timeout_s, "close an HTTP connection stalled this long (30)"},
    {"accept-data-loss", false, NULL,
     "start although the WAL is damaged or incomplete: cut it there, losing what followed "
     "(command line only; see docs/durability.md)"},
    {"check-config", false, NULL, "validate the settings and exit"},
    {"help", false, NULL, "show this help"},
    {"version", false, NULL, "show the version"},
};

#define OPTION_COUNT (sizeof(option_table) / sizeof(option_table[0]))

static const option_spec_t *option_find(const char *name, size_t len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strlen(option_table[i].name) == len && strncmp(option_table[i].name, name, len) == 0)
            return &option_table[i];
    return NULL;
}

void options_usage(FILE *out)
{
    fprintf(out, "usage: allotd [options]\n\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s%s", option_table[i].name,
                 option_table[i].takes_value ? " VALUE" : "");
        fprintf(out, "  %-30s %s\n", flag, option_table[i].help);
    }
    fprintf(out, "\nA config file holds lines `name = value` with the option names above.\n");
}

static int option_apply(options_t *o, const option_spec_t *spec, const char *value, char *error,
                        size_t bytes)
{
    if (spec->set != NULL)
        return spec->set(o, value, error, bytes);
    if (strcmp(spec->name, "help") == 0)
        o->help = true;
    else if (strcmp(spec->name, "version") == 0)
        o->version = true;
    else if (strcmp(spec->name, "check-config") == 0)
        o->check_config = true;
    else if (strcmp(spec->name, "accept-data-loss") == 0)
        o->server.accept_data_loss = true;
    return 0;
}

/* ---- the config file (libinih) ------------------------------------------------------------ */

/* One config file being read: inih calls config_line_read for each line and config_setting_apply
 * for each `name = value`; the line number is counted by the reader, since Debian's libinih
 * does not pass it to the handler. */
typedef struct config_file {
    options_t *options;
    const char *path;
    FILE *file;
    unsigned line;
    bool line_too_long;
    char *error;
    size_t error_bytes;
    bool failed; /* error holds the message */
} config_file_t;

static char *config_line_read(char *buf, int bytes, void *ctx)
{
    config_file_t *cf = ctx;
    if (fgets(buf, bytes, cf->file) == NULL)
        return NULL;
    cf->line++;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] != '\n' && !feof(cf->file)) {
        cf->line_too_long = true; /* inih would read the rest as a line of its own */
        return NULL;
    }
    return buf;
}

static int config_fail(config_file_t *cf, const char *format, const char *name, const char *why)
{
    int n = snprintf(cf->error, cf->error_bytes, "%s:%u: ", cf->path, cf->line);
    if (n >= 0 && (size_t)n < cf->error_bytes)
        snprintf(cf->error + n, cf->error_bytes - (size_t)n, format, name, why);
    cf->failed = true;
    return 0; /* inih: stop here */
}

static int config_setting_apply(void *ctx, const char *section, const char *name, const char *value)
{
    config_file_t *cf = ctx;
    if (section[0] != '\0')
        return config_fail(cf, "setting '%s' is inside [%s]: the file has no sections", name,
                           section);
    const option_spec_t *spec = option_find(name, strlen(name));
    if (spec == NULL)
        return config_fail(cf, "unknown setting '%s'%s", name,
                           " (the names are allotd's long options without --; allotd --help)");
    if (!spec->takes_value || strcmp(name, "config") == 0)
        return config_fail(cf, "'%s' is a command-line flag, not a setting%s", name, "");
    char why[256];
    if (option_apply(cf->options, spec, value, why, sizeof(why)) != 0)
        return config_fail(cf, "%s %s", name, why);
    return 1;
}

static int config_file_load(options_t *o, const char *path, char *error, size_t bytes)
{
    config_file_t cf = {.options = o, .path = path, .error = error, .error_bytes = bytes};
    cf.file = fopen(path, "r");
    if (cf.file == NULL) {
        snprintf(error, bytes, "cannot open config file '%s': %s", path, strerror(errno));
        return -1;
    }
    /* `#` or `;` start a comment at the start of a line or after a blank (a value may hold a
     * `#` that follows no blank); a line is `name = value` (or `name: value`), blanks around
     * both trimmed; every line stands alone (no continuation lines); a UTF-8 BOM is skipped. */
    ini_start_comment_prefixes = "#;";
    ini_inline_comment_prefixes = "#;";
    ini_allow_inline_comments = true;
    ini_allow_multiline = false;
    ini_allow_no_value = false;
    ini_stop_on_first_error = true;
    int rc = ini_parse_stream(config_line_read, &cf, config_setting_apply, &cf);
    bool read_failed = ferror(cf.file) != 0;
    fclose(cf.file);
    if (cf.failed)
        return -1;
    if (cf.line_too_long)
        snprintf(error, bytes, "%s:%u: line longer than %d bytes", path, cf.line, INI_MAX_LINE - 3);
    else if (read_failed)
        snprintf(error, bytes, "cannot read config file '%s'", path);
    else if (rc > 0)
        snprintf(error, bytes, "%s:%d: expected `name = value`, a comment or a blank line", path,
                 rc);
    else if (rc != 0)
        snprintf(error, bytes, "cannot read config file '%s'", path);
    return cf.line_too_long || read_failed || rc != 0 ? -1 : 0;
}

/* Splits "--name=value" / "--name value"; returns the spec, or NULL with error set. */
static const option_spec_t *flag_read(int argc, char **argv, int *i, const char **value,
                                      char *error, size_t bytes)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) {
        fail(error, bytes, "unexpected argument", arg);
        return NULL;
    }
    const char *name = arg + 2;
    const char *equals = strchr(name, '=');
    size_t len = equals ? (size_t)(equals - name) : strlen(name);
    const option_spec_t *spec = option_find(name, len);
    if (spec == NULL) {
        fail(error, bytes, "unknown option", arg);
        return NULL;
    }
    *value = NULL;
    if (spec->takes_value) {
        if (equals != NULL)
            *value = equals + 1;
        else if (*i + 1 < argc)
            *value = argv[++*i];
        else {
            fail(error, bytes, "option needs a value", arg);
            return NULL;
        }
    }
    return spec;
}

/* A flag's value error, prefixed with the flag: "--listen expects HOST:PORT: 'x'". */
static int flag_apply(options_t *o, const option_spec_t *spec, const char *value, char *error,
                      size_t bytes)
{
    char why[256];
    if (option_apply(o, spec, value, why, sizeof(why)) == 0)
        return 0;
    snprintf(error, bytes, "--%s %s", spec->name, why);
    return -1;
}

int options_parse(int argc, char **argv, options_t *o, char *error, size_t bytes)
{
    memset(o, 0, sizeof(*o));
    server_config_defaults(&o->server);
    o->log_level = LOG_INFO;
    o->log_format = LOG_FORMAT_LOGFMT;
    for (int pass = 0; pass < 2; pass++) { /* pass 0: --config only; pass 1: the rest */
        for (int i = 1; i < argc; i++) {
            const char *value;
            const option_spec_t *spec = flag_read(argc, argv, &i, &value, error, bytes);
            if (spec == NULL)
                return -1;
            bool is_config = strcmp(spec->name, "config") == 0;
            if (pass == 0 && is_config && config_file_load(o, value, error, bytes) != 0)
                return -1;
            if (pass == 1 && !is_config && flag_apply(o, spec, value, error, bytes) != 0)
                return -1;
        }
    }
    return 0;
}
