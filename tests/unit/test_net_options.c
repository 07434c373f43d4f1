/* test_net_options.c - allotd's config file (libinih) and flags: comments, errors naming the
 * setting and FILE:LINE, the example of docs/operations.md taken verbatim. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
