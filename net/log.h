/* log.h - one line per event on stderr, logfmt (key=value) or JSON, built from typed fields.
 *
 * Contract: log_event(level, event, LOG_STR("path", p), LOG_UINT("lsn", n), ...) prints
 *     ts=2026-11-26T18:52:35.123Z level=info event=listening path="/srv/x y" lsn=12
 * or, with --log-format json, the same fields as one JSON object (built with jansson, in order):
 *     {"ts":"2026-11-26T18:52:35.123Z","level":"info","event":"listening","path":"/srv/x
 * y","lsn":12} Every value is escaped for its format, whatever it holds: in logfmt a value is
 * quoted when it is empty or holds a blank, '=', '"', '\\', a control character or a non-ASCII
 * byte, and inside quotes '"', '\\', \n, \r, \t and other control characters are escaped as in JSON
 * (\uXXXX), so go-logfmt and jq read every line back; bytes that are not valid UTF-8 become U+FFFD
 * in both formats. Numbers are JSON numbers, booleans JSON booleans. A line is at most
 * LOG_LINE_BYTES_MAX: fields that do not fit are left out and `truncated=true` is added. Lines
 * below the configured level are dropped. Never called per request at info level. Thread-safe (one
 * write(2) per line). Event names and keys are literals of [a-z0-9_].
 */
#ifndef ALLOT_NET_LOG_H
#define ALLOT_NET_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;
typedef enum log_format { LOG_FORMAT_LOGFMT = 0, LOG_FORMAT_JSON } log_format_t;

void log_configure(log_level_t level, log_format_t format);

/* Parse "debug|info|warn|error"; -1 when unknown. */
int log_level_parse(const char *name);

typedef enum log_field_kind {
    LOG_FIELD_STR = 0,
    LOG_FIELD_INT,
    LOG_FIELD_UINT,
    LOG_FIELD_BOOL,
} log_field_kind_t;

/* One key and its typed value; build with the LOG_* macros below. */
typedef struct log_field {
    const char *key;
    log_field_kind_t kind;
    const char *str; /* LOG_FIELD_STR (NULL prints as "") */
    int64_t i;       /* LOG_FIELD_INT, LOG_FIELD_BOOL (0/1) */
    uint64_t u;      /* LOG_FIELD_UINT */
} log_field_t;

#define LOG_STR(k, v)  ((log_field_t){.key = (k), .kind = LOG_FIELD_STR, .str = (v)})
#define LOG_INT(k, v)  ((log_field_t){.key = (k), .kind = LOG_FIELD_INT, .i = (int64_t)(v)})
#define LOG_UINT(k, v) ((log_field_t){.key = (k), .kind = LOG_FIELD_UINT, .u = (uint64_t)(v)})
#define LOG_BOOL(k, v) ((log_field_t){.key = (k), .kind = LOG_FIELD_BOOL, .i = (v) ? 1 : 0})

/* Write one event line with these fields (count may be 0). */
void log_fields(log_level_t level, const char *event, const log_field_t *fields, size_t count);

/* log_event(level, event, LOG_STR(...), ...): at least one field. */
#define log_event(level, event, ...)                                                               \
    log_fields((level), (event), (const log_field_t[]){__VA_ARGS__},                               \
               sizeof((const log_field_t[]){__VA_ARGS__}) / sizeof(log_field_t))

/* The line log_fields would write, into buf (NUL-terminated; for tests). Returns its length. */
size_t log_line_format(char *buf, size_t buf_bytes, log_format_t format, const char *ts,
                       log_level_t level, const char *event, const log_field_t *fields,
                       size_t count);

/* A budget of lines per second (LOG_LIMIT_LINES_PER_S, core/limits.h) for an event an outsider
 * can trigger at will (failed logins, connections cut): lines over it are counted instead of
 * written, and the next line written reports how many were left out. Zero-initialize; one per
 * event; not thread-safe. */
typedef struct log_limit {
    int64_t window_ms;         /* start of the current one-second window (monotonic ms) */
    uint32_t lines;            /* lines written in it */
    uint64_t suppressed;       /* lines left out since the last one written */
    uint64_t suppressed_total; /* lines left out ever (metrics) */
} log_limit_t;

/* True when a line may be written now (then *suppressed is the count left out before it, to be
 * written with it); false when it is over lines_per_s and was counted instead. */
bool log_limit_allow(log_limit_t *limit, int64_t now_ms, uint32_t lines_per_s,
                     uint64_t *suppressed);

#endif
