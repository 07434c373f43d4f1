/* test_logs.c - the real allotd's log lines stay parseable whatever they carry: a data directory
 * with a blank, a tab and a quote, in JSON (jansson, as jq) and logfmt (JSON-style escapes). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define AWKWARD_DIR "/tmp/allot logs\tdir \"q\" XXXXXX"

static void dir_remove(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(logs, json_lines_parse_and_carry_an_awkward_data_dir_intact)
{
    char dir[] = AWKWARD_DIR;
    cr_assert_not_null(mkdtemp(dir));
    const char *argv[] = {"--data-dir", dir, "--log-format", "json", NULL};
    harness_server_t *s = harness_server_start_argv(argv);
    harness_server_stop(s);
    char *log = harness_server_log_read(s);
    int lines = 0, listening = 0;
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        json_error_t error;
        json_t *o = json_loads(line, 0, &error);
        cr_assert_not_null(o, "not JSON (%s): %s", error.text, line);
        const char *event = json_string_value(json_object_get(o, "event"));
        if (event != NULL && strcmp(event, "listening") == 0) {
            cr_expect_str_eq(json_string_value(json_object_get(o, "data_dir")), dir);
            listening++;
        }
        if (event != NULL && strcmp(event, "checkpoint_loaded") == 0)
            cr_expect(json_is_integer(json_object_get(o, "lsn")), "a number: %s", line);
        json_decref(o);
        lines++;
    }
    cr_expect_geq(lines, 4);
    cr_expect_eq(listening, 1);
    free(log);
    harness_server_destroy(s);
    dir_remove(dir);
}

Test(logs, logfmt_quotes_an_awkward_data_dir_with_json_style_escapes)
{
    char dir[] = AWKWARD_DIR;
    cr_assert_not_null(mkdtemp(dir));
    const char *argv[] = {"--data-dir", dir, NULL};
    harness_server_t *s = harness_server_start_argv(argv);
    harness_server_stop(s);
    char *log = harness_server_log_read(s);
    const char *listening = strstr(log, "event=listening ");
    cr_assert_not_null(listening, "%s", log);
    const char *value = strstr(listening, " data_dir=\"");
    cr_assert_not_null(value, "the data dir is quoted: %s", listening);
    value += strlen(" data_dir=");
    const char *end = value + 1;
    while (*end != '"' && *end != '\0')
        end += *end == '\\' ? 2 : 1;
    char *literal = strndup(value, (size_t)(end - value + 1));
    json_t *decoded = json_loads(literal, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(decoded, "a JSON-style quoted string: %s", literal);
    cr_expect_str_eq(json_string_value(decoded), dir);
    json_decref(decoded);
    free(literal);
    free(log);
    harness_server_destroy(s);
    dir_remove(dir);
}
