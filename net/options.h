/* options.h - allotd's settings from the command line and a config file.
 *
 * Contract: one table of options (name, value kind, help) serves both sources. A config file
 * (read with libinih) holds lines `name = value` (or `name: value`; the long option names
 * without "--"), comments and blank lines: `#` or `;` starts a comment at the start of a line or
 * after a blank, so `fsync = always   # comment` sets `always`, while a `#` right after other
 * characters is part of the value. Blanks around names and values are trimmed; values are taken
 * as written (no quotes); lines are at most INI_MAX_LINE - 3 (197) bytes; no [sections], no
 * continuation lines. Command-line flags override the file. options_parse fills a
 * server_config_t (starting from server_config_defaults) and reports the first bad setting:
 * `FILE:LINE: NAME expects ...: 'VALUE'` / `FILE:LINE: unknown setting 'NAME'` for the file,
 * `--NAME expects ...: 'VALUE'` for a flag.
 */
#ifndef ALLOT_NET_OPTIONS_H
#define ALLOT_NET_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "log.h"
#include "server.h"

typedef struct options {
    server_config_t server;
    log_level_t log_level;
    log_format_t log_format;
    bool help, version, check_config;
} options_t;

/* 0 on success; otherwise a message in `error` and a non-zero return. */
int options_parse(int argc, char **argv, options_t *options, char *error, size_t error_bytes);

void options_usage(FILE *out);

#endif
