/* main.c - allotd: parse settings, configure logging, run the server. */
#include <signal.h>
#include <stdio.h>

#include "log.h"
#include "options.h"
#include "server.h"

int main(int argc, char **argv)
{
    options_t options;
    char error[512];
    if (options_parse(argc, argv, &options, error, sizeof(error)) != 0) {
        fprintf(stderr, "allotd: %s\n(run allotd --help for the options)\n", error);
        return 2;
    }
    if (options.help) {
        options_usage(stdout);
        return 0;
    }
    if (options.version) {
        printf("allotd %s\n", ALLOT_VERSION);
        return 0;
    }
    if (options.check_config) {
        printf("configuration ok: listen %s:%u, data dir %s\n", options.server.listen_host,
               options.server.listen_port, options.server.data_dir);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    log_configure(options.log_level, options.log_format);
    return server_run(&options.server);
}
