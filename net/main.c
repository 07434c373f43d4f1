/* main.c - allotd: parse settings, configure logging, run the server. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "options.h"
#include "server.h"

/* The state is hundreds of MB of small records (positions, reservations) read at random: with
 * 4 KiB pages nearly every access also misses the TLB. glibc's malloc puts its heap on
 * transparent huge pages when the tunable glibc.malloc.hugetlb=1 is set (glibc >= 2.35; older
 * ones ignore it), which made crash recovery about 1.5x faster here (docs/benchmarks-recovery.md).
 * Tunables are read only when a process starts, so allotd sets it and executes itself once.
 * An operator's own glibc.malloc.hugetlb setting (e.g. =0 to turn this off) is left alone.
 * Nothing is open yet when it does: the data directory's lock is taken later, in server_run. */
#define HUGETLB_TUNABLE "glibc.malloc.hugetlb"

static void exec_with_huge_pages(char **argv)
{
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (tunables != NULL && strstr(tunables, HUGETLB_TUNABLE) != NULL)
        return;
    char value[1024];
    int n = snprintf(value, sizeof(value), "%s%s" HUGETLB_TUNABLE "=1", tunables ? tunables : "",
                     tunables && *tunables ? ":" : "");
    if (n < 0 || (size_t)n >= sizeof(value) || setenv("GLIBC_TUNABLES", value, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): run as we are, with 4 KiB pages */
}

int main(int argc, char **argv)
{
    exec_with_huge_pages(argv);
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
