/* log.c - logfmt/JSON event lines on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* logfmt "k=v k2=\"v 2\"" -> JSON members ,"k":"v","k2":"v 2" (values always strings). */
static size_t logfmt_to_json(char *out, size_t bytes, const char *fields)
{
    size_t n = 0;
    const char *p = fields;
    while (*p != '\0' && n + 8 < bytes) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        out[n++] = ',';
        out[n++] = '"';
        while (*p != '\0' && *p != '=' && n + 4 < bytes)
            out[n++] = *p++;
        n += (size_t)snprintf(out + n, bytes - n, "\":\"");
        if (*p == '=')
            p++;
        int quoted = *p == '"';
        p += quoted;
        while (*p != '\0' && (quoted ? *p != '"' : *p != ' ') && n + 4 < bytes) {
            if (*p == '\\' && p[1] != '\0')
                out[n++] = *p++;
            out[n++] = *p++;
        }
        p += quoted && *p == '"';
        out[n++] = '"';
    }
    out[n < bytes ? n : bytes - 1] = '\0';
    return n;
}

void log_write(log_level_t level, const char *event, const char *fields_fmt, ...)
{
    if (level < configured_level)
        return;
    char fields[1024];
    va_list ap;
    va_start(ap, fields_fmt);
    vsnprintf(fields, sizeof(fields), fields_fmt, ap);
    va_end(ap);
    char ts[40];
    timestamp_format(ts, sizeof(ts));
    char line[2300];
    int n;
    if (configured_format == LOG_FORMAT_JSON) {
        char members[1200];
        logfmt_to_json(members, sizeof(members), fields);
        n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"%s\"%s}\n",
                     ts, level_names[level], event, members);
    } else {
        n = snprintf(line, sizeof(line), "ts=%s level=%s event=%s%s%s\n", ts, level_names[level],
                     event, fields[0] ? " " : "", fields);
    }
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1, line[n - 1] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, (size_t)n);
    (void)ignored;
}

const char *log_quote(char *buf, unsigned buf_bytes, const char *text)
{
    unsigned n = 0;
    buf[n++] = '"';
    for (const char *p = text; *p != '\0' && n + 3 < buf_bytes; p++) {
        if (*p == '"' || *p == '\\')
            buf[n++] = '\\';
        buf[n++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
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
