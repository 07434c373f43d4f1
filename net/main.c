/* main.c - allotd: parse settings, configure logging, run the server. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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
    /* The kernel names a process (/proc/PID/comm, what pgrep/top/ps show) after the file it
     * executes: exec the binary by its own path, not as /proc/self/exe (which names it "exe"). */
    char path[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (len > 0) {
        path[len] = '\0';
        if (strstr(path, " (deleted)") == NULL) /* replaced on disk: run this image */
            execv(path, argv);
    }
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): run as we are, with 4 KiB pages */
}

/* After an exec of /proc/self/exe (the binary was replaced on disk meanwhile) the process is
 * named "exe": name it after argv[0] as it was started. */
static void process_name_keep(const char *argv0)
{
    char name[16] = "";
    if (argv0 == NULL || prctl(PR_GET_NAME, name) != 0 || strcmp(name, "exe") != 0)
        return;
    const char *slash = strrchr(argv0, '/');
    const char *base = slash != NULL ? slash + 1 : argv0;
    if (base[0] != '\0')
        prctl(PR_SET_NAME, base);
}

int main(int argc, char **argv)
{
    exec_with_huge_pages(argv);
    process_name_keep(argv[0]);
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
        /* every check start-up makes before it binds and opens the data directory */
        server_check_t check;
        if (server_config_check(&options.server, &check) != 0) {
            fprintf(stderr, "allotd: %s: %s\n", check.event, check.message);
            return 1;
        }
        printf("configuration ok: listen %s:%u, data dir %s\n", options.server.listen_host,
               options.server.listen_port, options.server.data_dir);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    log_configure(options.log_level, options.log_format);
    int status;
    while ((status = server_run(&options.server)) == SERVER_STATUS_REBUILD)
        log_event(LOG_INFO, "rebuild",
                  LOG_STR("message", "starting again from state.lmdb and "
                                     "the group's log"));
    return status;
}
