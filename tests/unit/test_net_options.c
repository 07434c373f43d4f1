/* test_net_options.c - allotd's config file (libinih) and flags: comments, errors naming the
 * setting and FILE:LINE, the example of docs/operations.md taken verbatim. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/limits.h"
#include "net/options.h"

/* A temp config file holding content; returns its path (static buffer, caller unlinks). */
static const char *config_write(const char *content)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/allot-conf-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

/* options_parse of `allotd --config PATH [extra]`; returns its result, error in error. */
static int parse_with_config(const char *path, const char *extra_flag, const char *extra_value,
                             options_t *o, char *error, size_t error_bytes)
{
    char *argv[] = {"allotd",           "--config",          (char *)path,
                    (char *)extra_flag, (char *)extra_value, NULL};
    int argc = extra_flag != NULL ? 5 : 3;
    return options_parse(argc, argv, o, error, error_bytes);
}

/* The first ```ini block of docs/operations.md, as written there (malloc'ed). */
static char *operations_md_config_example(void)
{
    FILE *f = fopen(ALLOT_SOURCE_DIR "/docs/operations.md", "r");
    cr_assert_not_null(f);
    char line[512];
    size_t cap = 1 << 16, used = 0;
    char *text = calloc(1, cap);
    bool inside = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (!inside && strncmp(line, "```ini", 6) == 0) {
            inside = true;
            continue;
        }
        if (inside && strncmp(line, "```", 3) == 0)
            break;
        if (inside && used + strlen(line) < cap) {
            memcpy(text + used, line, strlen(line));
            used += strlen(line);
        }
    }
    fclose(f);
    cr_assert(used > 0, "docs/operations.md has an ```ini block");
    return text;
}

Test(options, the_operations_md_example_is_accepted_verbatim_with_its_comments)
{
    char *example = operations_md_config_example();
    const char *path = config_write(example);
    options_t o;
    char error[512];
    cr_assert_eq(parse_with_config(path, NULL, NULL, &o, error, sizeof(error)), 0, "%s", error);
    cr_expect_eq(o.server.reservations_max, 4194304u);
    cr_expect_eq(o.server.idempotency_age_s, 86400u);
    cr_expect_str_eq(o.server.auth_token_file, "/etc/allot/token");
    cr_expect_str_eq(o.server.listen_host, "127.0.0.1");
    cr_expect_eq(o.server.listen_port, 7411);
    cr_expect_eq(o.server.orders_archive_age_ms, 604800ull * 1000);
    unlink(path);
    free(example);
}

Test(options, a_comment_after_a_blank_ends_the_value_and_a_hash_inside_it_stays)
{
    const char *path = config_write("; a comment\n"
                                    "  # an indented comment\n"
                                    "data-dir = /srv/allot#1   # the data\n"
                                    "auth-token-file=/etc/allot/token\t; tab then comment\n"
                                    "fsync: interval:5\n"
                                    "\n"
                                    "connections-max = 7 ;\n");
    options_t o;
    char error[512];
    cr_assert_eq(parse_with_config(path, NULL, NULL, &o, error, sizeof(error)), 0, "%s", error);
    cr_expect_str_eq(o.server.data_dir, "/srv/allot#1");
    cr_expect_str_eq(o.server.auth_token_file, "/etc/allot/token");
    cr_expect_eq(o.server.fsync_mode, WAL_FSYNC_INTERVAL);
    cr_expect_eq(o.server.fsync_interval_ms, 5u);
    cr_expect_eq(o.server.connections_max, 7u);
    unlink(path);
}

Test(options, an_unknown_setting_is_named_with_its_file_and_line)
{
    const char *path = config_write("listen = 127.0.0.1:7411\n\n# x\ncolour = blue\n");
    options_t o;
    char error[512], expected[600];
    cr_assert_neq(parse_with_config(path, NULL, NULL, &o, error, sizeof(error)), 0);
    snprintf(expected, sizeof(expected), "%s:4: unknown setting 'colour'", path);
    cr_expect(strncmp(error, expected, strlen(expected)) == 0, "%s", error);
    unlink(path);
}

Test(options, a_bad_value_names_the_setting_the_line_and_the_value)
{
    const char *path = config_write("listen = 127.0.0.1:7411\nreservations-max = 4x   # oops\n");
    options_t o;
    char error[512], expected[600];
    cr_assert_neq(parse_with_config(path, NULL, NULL, &o, error, sizeof(error)), 0);
    snprintf(expected, sizeof(expected), "%s:2: reservations-max expects 1..1073741824: '4x'",
             path);
    cr_expect_str_eq(error, expected);
    unlink(path);
}

Test(options, a_bad_flag_value_names_the_flag)
{
    char *argv[] = {"allotd", "--reservations-max", "0", NULL};
    options_t o;
    char error[512];
    cr_assert_neq(options_parse(3, argv, &o, error, sizeof(error)), 0);
    cr_expect_str_eq(error, "--reservations-max expects 1..1073741824: '0'");
}

Test(options, a_line_without_equals_a_section_and_a_flag_in_the_file_are_refused)
{
    options_t o;
    char error[512], expected[600];
    const char *path = config_write("listen = 127.0.0.1:7411\njust words\n");
    cr_assert_neq(parse_with_config(path, NULL, NULL, &o, error, sizeof(error)), 0);
    snprintf(expected, sizeof(expected), "%s:2: expected `name = value`", path);
    cr_expect(strncmp(error, expected, strlen(expected)) == 0, "%s", error);
    unlink(path);

    path = config_write("[server]\nlisten = 127.0.0.1:7411\n");
    cr_assert_neq(parse_with_config(path, NULL, NULL, &o, error, sizeof(error)), 0);
    cr_expect(strstr(error, ":2: setting 'listen' is inside [server]") != NULL, "%s", error);
    unlink(path);

    path = config_write("check-config = 1\n");
    cr_assert_neq(parse_with_config(path, NULL, NULL, &o, error, sizeof(error)), 0);
    cr_expect(strstr(error, ":1: 'check-config' is a command-line flag") != NULL, "%s", error);
    unlink(path);
}

Test(options, a_line_too_long_for_the_parser_is_refused_not_split)
{
    char content[600];
    char value[400];
    memset(value, 'a', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    snprintf(content, sizeof(content), "listen = 127.0.0.1:7411\ndata-dir = /%s\n", value);
    const char *path = config_write(content);
    options_t o;
    char error[512], expected[600];
    cr_assert_neq(parse_with_config(path, NULL, NULL, &o, error, sizeof(error)), 0);
    snprintf(expected, sizeof(expected), "%s:2: line longer than 197 bytes", path);
    cr_expect_str_eq(error, expected);
    unlink(path);
}

Test(options, flags_override_the_file)
{
    const char *path = config_write("listen = 127.0.0.1:7999\nconnections-max = 7\n");
    options_t o;
    char error[512];
    cr_assert_eq(parse_with_config(path, "--listen", "127.0.0.1:8123", &o, error, sizeof(error)), 0,
                 "%s", error);
    cr_expect_eq(o.server.listen_port, 8123);
    cr_expect_eq(o.server.connections_max, 7u);
    unlink(path);
}

/* A numeric setting and the range core/limits.h holds it to. */
typedef struct setting_range {
    const char *flag;
    uint64_t floor, ceiling;
    const char *note; /* what the message says after the range */
} setting_range_t;

static const setting_range_t setting_ranges[] = {
    {"--request-bytes-max", ALLOT_REQUEST_BYTES_MAX_FLOOR, ALLOT_REQUEST_BYTES_MAX_CEILING, ""},
    {"--inflight-max", 1, ALLOT_INFLIGHT_REQUESTS_MAX_CEILING, ""},
    {"--output-bytes-max", ALLOT_OUTPUT_BYTES_MAX_FLOOR, ALLOT_OUTPUT_BYTES_MAX_CEILING, ""},
    {"--buffer-bytes-max", ALLOT_BUFFER_BYTES_MAX_FLOOR, ALLOT_BUFFER_BYTES_MAX_CEILING, ""},
    {"--connections-max", 1, ALLOT_CONNECTIONS_MAX_CEILING, ""},
    {"--idle-timeout-s", 0, ALLOT_IDLE_TIMEOUT_S_CEILING, " (0 = never)"},
    {"--request-timeout-ms", 0, ALLOT_REQUEST_TIMEOUT_MS_CEILING, " (0 = never)"},
    {"--auth-timeout-ms", 0, ALLOT_AUTH_TIMEOUT_MS_CEILING, " (0 = never)"},
    {"--unauthenticated-connections-max", 0, ALLOT_UNAUTHENTICATED_CONNECTIONS_MAX_CEILING,
     " (0 = a tenth of --connections-max)"},
    {"--wal-segment-bytes", ALLOT_WAL_SEGMENT_BYTES_FLOOR, ALLOT_WAL_SEGMENT_BYTES_CEILING, ""},
    {"--wal-linger-us", 0, ALLOT_WAL_LINGER_US_MAX, " (0 = off)"},
    {"--checkpoint-interval-s", 0, ALLOT_CHECKPOINT_INTERVAL_S_CEILING, " (0 = never on a timer)"},
    {"--checkpoint-wal-bytes", 0, ALLOT_CHECKPOINT_WAL_BYTES_CEILING, " (0 = never by size)"},
    {"--checkpoint-dirty-max", 0, ALLOT_CHECKPOINT_DIRTY_MAX_CEILING, " (0 = never by count)"},
    {"--reservations-max", 1, ALLOT_RESERVATIONS_MAX_CEILING, ""},
    {"--idempotency-entries-max", 1, ALLOT_IDEMPOTENCY_ENTRIES_MAX_CEILING, ""},
    {"--idempotency-age-s", 1, ALLOT_IDEMPOTENCY_AGE_S_CEILING, ""},
    {"--orders-archive-age-s", 1, ALLOT_ORDERS_ARCHIVE_AGE_S_CEILING, ""},
};

/* options_parse of `allotd FLAG VALUE`. */
static int parse_flag(const char *flag, unsigned long long value, char *error, size_t bytes)
{
    char text[32];
    snprintf(text, sizeof(text), "%llu", value);
    char *argv[] = {"allotd", (char *)flag, text, NULL};
    options_t o;
    return options_parse(3, argv, &o, error, bytes);
}

Test(options, every_numeric_setting_is_held_to_its_range_in_core_limits)
{
    char error[512], expected[512];
    for (size_t i = 0; i < sizeof(setting_ranges) / sizeof(setting_ranges[0]); i++) {
        const setting_range_t *r = &setting_ranges[i];
        cr_expect_eq(parse_flag(r->flag, r->ceiling, error, sizeof(error)), 0, "%s %llu: %s",
                     r->flag, (unsigned long long)r->ceiling, error);
        cr_expect_eq(parse_flag(r->flag, r->floor, error, sizeof(error)), 0, "%s %llu: %s", r->flag,
                     (unsigned long long)r->floor, error);
        cr_expect_neq(parse_flag(r->flag, r->ceiling + 1, error, sizeof(error)), 0);
        snprintf(expected, sizeof(expected), "%s expects %llu..%llu%s: '%llu'", r->flag,
                 (unsigned long long)r->floor, (unsigned long long)r->ceiling, r->note,
                 (unsigned long long)r->ceiling + 1);
        cr_expect_str_eq(error, expected);
        if (r->floor > 0) {
            cr_expect_neq(parse_flag(r->flag, r->floor - 1, error, sizeof(error)), 0);
            cr_expect(strstr(error, " expects ") != NULL, "%s", error);
        }
    }
}

Test(options, the_defaults_are_those_of_core_limits)
{
    char *argv[] = {"allotd", NULL};
    options_t o;
    char error[512];
    cr_assert_eq(options_parse(1, argv, &o, error, sizeof(error)), 0, "%s", error);
    const server_config_t *c = &o.server;
    cr_expect_eq(c->listen_port, ALLOT_LISTEN_PORT_DEFAULT);
    cr_expect_eq(c->fsync_interval_ms, ALLOT_FSYNC_INTERVAL_MS_DEFAULT);
    cr_expect_eq(c->wal_segment_bytes, ALLOT_WAL_SEGMENT_BYTES_DEFAULT);
    cr_expect_eq(c->wal_linger_us, ALLOT_WAL_LINGER_US_DEFAULT); /* adaptive group commit */
    cr_expect_eq(c->request_bytes_max, ALLOT_REQUEST_BYTES_MAX_DEFAULT);
    cr_expect_eq(c->inflight_requests_max, ALLOT_INFLIGHT_REQUESTS_MAX_DEFAULT);
    cr_expect_eq(c->output_bytes_max, ALLOT_OUTPUT_BYTES_MAX_DEFAULT);
    cr_expect_eq(c->connections_max, ALLOT_CONNECTIONS_MAX_DEFAULT);
    cr_expect_eq(c->buffer_bytes_max, ALLOT_BUFFER_BYTES_MAX_DEFAULT);
    cr_expect_eq(c->idle_timeout_s, ALLOT_IDLE_TIMEOUT_S_DEFAULT);
    cr_expect_eq(c->request_timeout_ms, ALLOT_REQUEST_TIMEOUT_MS_DEFAULT);
    cr_expect_eq(c->auth_timeout_ms, ALLOT_AUTH_TIMEOUT_MS_DEFAULT);
    cr_expect_eq(c->checkpoint_interval_s, ALLOT_CHECKPOINT_INTERVAL_S_DEFAULT);
    cr_expect_eq(c->checkpoint_wal_bytes, ALLOT_CHECKPOINT_WAL_BYTES_DEFAULT);
    cr_expect_eq(c->checkpoint_dirty_max, ALLOT_CHECKPOINT_DIRTY_MAX_DEFAULT);
}

Test(options, path_and_fsync_interval_bounds_are_named_from_core_limits)
{
    char error[512], expected[512];
    char *argv[] = {"allotd", "--fsync", "interval:60001", NULL};
    options_t o;
    cr_assert_neq(options_parse(3, argv, &o, error, sizeof(error)), 0);
    snprintf(expected, sizeof(expected),
             "--fsync expects always, interval:MS (1..%u) or none: 'interval:60001'",
             WAL_FSYNC_INTERVAL_MS_MAX);
    cr_expect_str_eq(error, expected);
    char long_path[SERVER_PATH_BYTES_MAX + 1];
    memset(long_path, 'p', SERVER_PATH_BYTES_MAX);
    long_path[SERVER_PATH_BYTES_MAX] = '\0';
    char *argv_dir[] = {"allotd", "--data-dir", long_path, NULL};
    cr_assert_neq(options_parse(3, argv_dir, &o, error, sizeof(error)), 0);
    snprintf(expected, sizeof(expected), "--data-dir expects a path of 1..%u bytes: '",
             SERVER_PATH_BYTES_MAX - 1);
    cr_expect(strncmp(error, expected, strlen(expected)) == 0, "%s", error);
}
