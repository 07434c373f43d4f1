/* options.h - allotd's settings from the command line and a config file.
 *
 * Contract: one table of options (name, value kind, help) serves both sources. A config file
 * holds lines `name = value` (the long option names without "--"), `#` comments and blank
 * lines; command-line flags override it. options_parse fills a server_config_t (starting from
 * server_config_defaults) and reports the first bad setting with its source and line.
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
