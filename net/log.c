/* log.c - logfmt/JSON event lines on stderr, built from typed fields (see log.h). */
#include "log.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

static log_level_t configured_level = LOG_INFO;
static log_format_t configured_format = LOG_FORMAT_LOGFMT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_configure(log_level_t level, log_format_t format)
{
    configured_level = level;
    configured_format = format;
}

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static void timestamp_format(char *buf, size_t bytes)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, bytes, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, bytes - n, ".%03ldZ", now.tv_nsec / 1000000);
}

/* Bytes of the valid UTF-8 character at p (1..4), or 0 when p starts no valid character. */
static size_t utf8_char_bytes(const unsigned char *p, size_t left)
{
    size_t n = p[0] < 0x80             ? 1
               : (p[0] & 0xe0) == 0xc0 ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0 || n > left || !allot_utf8_valid((const char *)p, n))
        return 0;
    return n;
}

/* A bounded text being built: appends that do not fit are refused whole. */
typedef struct line {
    char *buf;
    size_t used, cap; /* cap excludes the room kept for "truncated" and the newline */
} line_t;

static bool line_add(line_t *l, const char *bytes, size_t n)
{
    if (l->used + n > l->cap)
        return false;
    memcpy(l->buf + l->used, bytes, n);
    l->used += n;
    return true;
}

static bool logfmt_needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p >= 0x7f)
            return true;
    return false;
}

/* A logfmt value: bare, or quoted with JSON-style escapes (what go-logfmt reads back). */
static bool logfmt_value_add(line_t *l, const char *s)
{
    if (!logfmt_needs_quotes(s))
        return line_add(l, s, strlen(s));
    bool ok = line_add(l, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t left = strlen(s); ok && left > 0;) {
        size_t n = utf8_char_bytes(p, left);
        char escaped[8];
        if (*p == '"' || *p == '\\')
            ok = line_add(l, (const char[]){'\\', (char)*p}, 2);
        else if (*p == '\n' || *p == '\r' || *p == '\t')
            ok = line_add(l, *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : "\\t", 2);
        else if (*p < ' ' || *p == 0x7f)
            ok = line_add(l, escaped, (size_t)snprintf(escaped, sizeof(escaped), "\\u%04x", *p));
        else if (n == 0)
            ok = line_add(l, "\\ufffd", 6);
        else
            ok = line_add(l, (const char *)p, n);
        n = n == 0 ? 1 : n;
        p += n;
        left -= n;
    }
    return ok && line_add(l, "\"", 1);
}

static bool logfmt_field_add(line_t *l, const log_field_t *f)
{
    size_t mark = l->used;
    char number[32];
    bool ok = line_add(l, " ", 1) && line_add(l, f->key, strlen(f->key)) && line_add(l, "=", 1);
    if (ok && f->kind == LOG_FIELD_STR)
        ok = logfmt_value_add(l, f->str != NULL ? f->str : "");
    else if (ok && f->kind == LOG_FIELD_INT)
        ok = line_add(l, number, (size_t)snprintf(number, sizeof(number), "%lld", (long long)f->i));
    else if (ok && f->kind == LOG_FIELD_UINT)
        ok = line_add(l, number,
                      (size_t)snprintf(number, sizeof(number), "%llu", (unsigned long long)f->u));
    else if (ok)
        ok = line_add(l, f->i ? "true" : "false", f->i ? 4 : 5);
    if (!ok)
        l->used = mark;
    return ok;
}

static size_t logfmt_line(line_t *l, const char *ts, log_level_t level, const char *event,
                          const log_field_t *fields, size_t count)
{
    l->used =
        (size_t)snprintf(l->buf, l->cap, "ts=%s level=%s event=%s", ts, level_names[level], event);
    bool truncated = false;
    for (size_t i = 0; i < count && !truncated; i++)
        truncated = !logfmt_field_add(l, &fields[i]);
    l->cap += sizeof(" truncated=true\n");
    if (truncated)
        line_add(l, " truncated=true", 15);
    line_add(l, "\n", 1);
    l->buf[l->used] = '\0';
    return l->used;
}

/* s as a JSON string value: invalid UTF-8 bytes become U+FFFD. */
static json_t *json_text(const char *s)
{
    s = s != NULL ? s : "";
    size_t len = strlen(s);
    if (allot_utf8_valid(s, len))
        return json_stringn(s, len);
    char *clean = malloc(3 * len + 1);
    if (clean == NULL)
        return NULL;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
        size_t bytes = utf8_char_bytes(p, strlen((const char *)p));
        if (bytes == 0) {
            memcpy(clean + n, "\xef\xbf\xbd", 3), n += 3, p++;
            continue;
        }
        memcpy(clean + n, p, bytes), n += bytes, p += bytes;
    }
    json_t *value = json_stringn(clean, n);
    free(clean);
    return value;
}

static json_t *json_value(const log_field_t *f)
{
    if (f->kind == LOG_FIELD_STR)
        return json_text(f->str);
    if (f->kind == LOG_FIELD_INT)
        return json_integer((json_int_t)f->i);
    if (f->kind == LOG_FIELD_BOOL)
        return json_boolean(f->i);
    if (f->u <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)f->u);
    return json_real((double)f->u); /* beyond int64: still a number */
}

/* One JSON object (jansson); fields that would make it longer than the line are left out. */
static size_t json_line(line_t *l, const char *ts, log_level_t level, const char *event,
                        const log_field_t *fields, size_t count)
{
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "event", json_text(event));
    size_t kept = 0;
    for (; kept < count; kept++)
        json_object_set_new(o, fields[kept].key, json_value(&fields[kept]));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    while (text != NULL && strlen(text) + 1 > l->cap && kept > 0) {
        free(text);
        json_object_del(o, fields[--kept].key);
        json_object_set_new(o, "truncated", json_true());
        text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    l->used = 0;
    if (text != NULL && strlen(text) + 1 <= l->cap)
        l->used = (size_t)snprintf(l->buf, l->cap + 1, "%s\n", text);
    free(text);
    json_decref(o);
    return l->used;
}

size_t log_line_format(char *buf, size_t buf_bytes, log_format_t format, const char *ts,
                       log_level_t level, const char *event, const log_field_t *fields,
                       size_t count)
{
    /* room kept for " truncated=true" and the newline, and the NUL */
    line_t l = {buf, 0, buf_bytes - sizeof(" truncated=true\n") - 1};
    if (format == LOG_FORMAT_JSON)
        return json_line(&l, ts, level, event, fields, count);
    return logfmt_line(&l, ts, level, event, fields, count);
}

void log_fields(log_level_t level, const char *event, const log_field_t *fields, size_t count)
{
    if (level < configured_level)
        return;
    char ts[40];
    timestamp_format(ts, sizeof(ts));
    char line[LOG_LINE_BYTES_MAX];
    size_t n =
        log_line_format(line, sizeof(line), configured_format, ts, level, event, fields, count);
    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
}

bool log_limit_allow(log_limit_t *limit, int64_t now_ms, uint32_t lines_per_s, uint64_t *suppressed)
{
    if (now_ms - limit->window_ms >= 1000 || now_ms < limit->window_ms) {
        limit->window_ms = now_ms;
        limit->lines = 0;
    }
    if (limit->lines >= lines_per_s) {
        limit->suppressed++;
        limit->suppressed_total++;
        return false;
    }
    limit->lines++;
    *suppressed = limit->suppressed;
    limit->suppressed = 0;
    return true;
}
