/* test_net_log.c - log lines built from typed fields: every value escaped for its format, so
 * that logfmt readers (go-logfmt's JSON-style escapes) and JSON readers (jq) get it back. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "net/log.h"

#define TS "2026-11-26T18:52:35.123Z"

/* The logfmt value of key in line, decoded (a quoted value is a JSON string literal); malloc'ed,
 * NULL when absent. */
static char *logfmt_value(const char *line, const char *key)
{
    char needle[64];
    snprintf(needle, sizeof(needle), " %s=", key);
    const char *p = strstr(line, needle);
    if (p == NULL)
        return NULL;
    p += strlen(needle);
    if (*p != '"')
        return strndup(p, strcspn(p, " \n"));
    const char *end = p + 1;
    while (*end != '"')
        end += *end == '\\' ? 2 : 1;
    char *literal = strndup(p, (size_t)(end - p + 1));
    json_error_t error;
    json_t *s = json_loads(literal, JSON_DECODE_ANY, &error);
    cr_assert_not_null(s, "not a JSON string literal: %s (%s)", literal, error.text);
    char *value = strndup(json_string_value(s), json_string_length(s));
    json_decref(s);
    free(literal);
    return value;
}

static const char *const awkward_values[] = {
    "/srv/x y", "tab\there", "quote\"d", "back\\slash", "new\nline",
    "bell\x07", "",          "k=v",      "ünïcödé",     "plain",
};

Test(log, logfmt_quotes_and_escapes_every_value_so_it_reads_back)
{
    for (size_t i = 0; i < sizeof(awkward_values) / sizeof(awkward_values[0]); i++) {
        const log_field_t fields[] = {LOG_STR("path", awkward_values[i]), LOG_UINT("lsn", 7)};
        char line[LOG_LINE_BYTES_MAX];
        size_t n = log_line_format(line, sizeof(line), LOG_FORMAT_LOGFMT, TS, LOG_INFO,
                                   "checkpoint_loaded", fields, 2);
        cr_assert_eq(n, strlen(line));
        cr_assert_eq(line[n - 1], '\n');
        cr_assert_null(memchr(line, '\n', n - 1), "one line: %s", line);
        cr_assert_null(strchr(line, '\t'), "no raw tab: %s", line);
        char *path = logfmt_value(line, "path");
        cr_assert_not_null(path, "%s", line);
        cr_expect_str_eq(path, awkward_values[i], "%s", line);
        free(path);
        cr_expect(strstr(line, " lsn=7\n") != NULL, "a number is bare: %s", line);
        cr_expect(strncmp(line, "ts=" TS " level=info event=checkpoint_loaded ", 57) == 0, "%s",
                  line);
    }
}

Test(log, json_lines_parse_with_numbers_as_numbers_and_strings_intact)
{
    for (size_t i = 0; i < sizeof(awkward_values) / sizeof(awkward_values[0]); i++) {
        const log_field_t fields[] = {LOG_STR("path", awkward_values[i]), LOG_UINT("lsn", 0),
                                      LOG_INT("status", -3), LOG_BOOL("closing", true),
                                      LOG_UINT("big", UINT64_MAX)};
        char line[LOG_LINE_BYTES_MAX];
        log_line_format(line, sizeof(line), LOG_FORMAT_JSON, TS, LOG_WARN, "checkpoint_loaded",
                        fields, 5);
        json_error_t error;
        json_t *o = json_loads(line, 0, &error);
        cr_assert_not_null(o, "%s: %s", line, error.text);
        cr_expect_str_eq(json_string_value(json_object_get(o, "path")), awkward_values[i]);
        cr_expect(json_is_integer(json_object_get(o, "lsn")), "%s", line);
        cr_expect_eq(json_integer_value(json_object_get(o, "status")), -3);
        cr_expect(json_is_true(json_object_get(o, "closing")), "%s", line);
        cr_expect(json_is_number(json_object_get(o, "big")), "%s", line);
        cr_expect_str_eq(json_string_value(json_object_get(o, "event")), "checkpoint_loaded");
        cr_expect_str_eq(json_string_value(json_object_get(o, "level")), "warn");
        cr_expect(strncmp(line, "{\"ts\":\"" TS "\",\"level\":", 35) == 0, "order: %s", line);
        json_decref(o);
    }
}

Test(log, bytes_that_are_not_utf8_become_the_replacement_character_in_both_formats)
{
    const log_field_t fields[] = {LOG_STR("peer", "a\xff\xfe"
                                                  "b")};
    char line[LOG_LINE_BYTES_MAX];
    log_line_format(line, sizeof(line), LOG_FORMAT_JSON, TS, LOG_INFO, "x", fields, 1);
    json_t *o = json_loads(line, 0, NULL);
    cr_assert_not_null(o, "%s", line);
    cr_expect_str_eq(json_string_value(json_object_get(o, "peer")), "a\xef\xbf\xbd\xef\xbf\xbd"
                                                                    "b");
    json_decref(o);
    log_line_format(line, sizeof(line), LOG_FORMAT_LOGFMT, TS, LOG_INFO, "x", fields, 1);
    char *peer = logfmt_value(line, "peer");
    cr_expect_str_eq(peer,
                     "a\xef\xbf\xbd\xef\xbf\xbd"
                     "b",
                     "%s", line);
    free(peer);
}

Test(log, a_value_too_long_for_the_line_is_left_out_and_the_line_says_truncated)
{
    static char huge[3 * LOG_LINE_BYTES_MAX];
    memset(huge, 'x', sizeof(huge) - 1);
    const log_field_t fields[] = {LOG_UINT("lsn", 5), LOG_STR("message", huge)};
    char line[LOG_LINE_BYTES_MAX];
    size_t n =
        log_line_format(line, sizeof(line), LOG_FORMAT_LOGFMT, TS, LOG_ERROR, "x", fields, 2);
    cr_expect_lt(n, sizeof(line));
    cr_expect(strstr(line, " lsn=5 truncated=true\n") != NULL, "%s", line);
    n = log_line_format(line, sizeof(line), LOG_FORMAT_JSON, TS, LOG_ERROR, "x", fields, 2);
    cr_expect_lt(n, sizeof(line));
    json_t *o = json_loads(line, 0, NULL);
    cr_assert_not_null(o, "%s", line);
    cr_expect(json_is_true(json_object_get(o, "truncated")));
    cr_expect_eq(json_integer_value(json_object_get(o, "lsn")), 5);
    json_decref(o);
}
