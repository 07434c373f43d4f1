/* log.h - one line per event on stderr, logfmt (key=value) or JSON.
 *
 * Contract: log_write(level, event, fmt, ...) prints
 *     ts=2026-11-26T18:52:35.123Z level=info event=listen <fmt-formatted key=value pairs>
 * (or the same fields as one JSON object with --log-format json). Lines below the configured
 * level are dropped. Never called per request at info level. Thread-safe (one write(2) per
 * line).
 */
#ifndef ALLOT_NET_LOG_H
#define ALLOT_NET_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;
typedef enum log_format { LOG_FORMAT_LOGFMT = 0, LOG_FORMAT_JSON } log_format_t;

void log_configure(log_level_t level, log_format_t format);

/* Parse "debug|info|warn|error"; -1 when unknown. */
int log_level_parse(const char *name);

/* fields: printf-style "key=value key2=value2" (logfmt); values with spaces should be quoted
 * with %q-like care by the caller: use log_quote for free text. */
void log_write(log_level_t level, const char *event, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quote free text for a logfmt value into buf (returns buf). */
const char *log_quote(char *buf, unsigned buf_bytes, const char *text);

/* A budget of lines per second for an event an outsider can trigger at will (failed logins,
 * connections cut): lines over it are counted instead of written, and the next line written
 * reports how many were left out. Zero-initialize; one per event; not thread-safe. */
#define LOG_LIMIT_LINES_PER_S 10 /* the budget for each such event */

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
