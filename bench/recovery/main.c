/* main.c - allot-recovery-bench: the durability benchmark (docs/benchmarks-recovery.md).
 *
 *   allot-recovery-bench generate   --dir D [--skus 1000000] [--locations 10]
 *                                   [--wal-records 5000000] [--live-holds 100000]
 *   allot-recovery-bench inproc     --dir D [--no-split]
 *                                   (both run allot-datagen with these arguments)
 *   allot-recovery-bench recover    --dir D [--runs 3] [--cold] [--port P] [--allotd PATH]
 *   allot-recovery-bench checkpoint --dir D [--dirty 10000,100000,1000000] [--rate 4000]
 *   allot-recovery-bench throughput [--modes always,interval:10,none] [--seconds 10]
 *                                   [--conns 16] [--pipeline 16] [--skus 1000] [--rounds 1]
 *                                   [--tmp /tmp]
 *   allot-recovery-bench fsync-probe --dir D [--count 500]
 *   allot-recovery-bench memlat     [--count MiB]   (dependent random reads; 1024 MiB is apt)
 *
 * Lines starting with "RESULT" are the numbers docs/benchmarks-recovery.md quotes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rb.h"

#ifndef RB_ALLOTD_PATH
#define RB_ALLOTD_PATH "allotd"
#endif
#ifndef RB_DATAGEN_PATH
#define RB_DATAGEN_PATH "allot-datagen"
#endif

typedef struct args {
    const char *dir;
    const char *allotd;
    const char *modes;
    const char *dirty;
    const char *tmp;
    uint32_t skus, locations, runs, conns, pipeline, rounds, count, rate;
    uint16_t port;
    double seconds;
    bool cold, skus_given;
} args_t;

static void usage(void)
{
    fprintf(stderr,
            "usage: allot-recovery-bench generate|inproc|recover|checkpoint|throughput|"
            "fsync-probe [options]\n(see the top of bench/recovery/main.c)\n");
    exit(2);
}

static int parse(int argc, char **argv, args_t *a)
{
    *a = (args_t){
        .allotd = RB_ALLOTD_PATH,
        .modes = "always,interval:10,none",
        .dirty = "10000,100000,1000000",
        .tmp = "/tmp",
        .skus = 1000000,
        .locations = 10,
        .runs = 3,
        .conns = 16,
        .pipeline = 16,
        .rounds = 1,
        .count = 500,
        .rate = 4000,
        .port = 17931,
        .seconds = 10,
    };
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(o, name) == 0 && v != NULL && ++i)
        if (OPT("--dir"))
            a->dir = v;
        else if (OPT("--allotd"))
            a->allotd = v;
        else if (OPT("--modes"))
            a->modes = v;
        else if (OPT("--dirty"))
            a->dirty = v;
        else if (OPT("--tmp"))
            a->tmp = v;
        else if (OPT("--skus"))
            a->skus = (uint32_t)strtoul(v, NULL, 10), a->skus_given = true;
        else if (OPT("--locations"))
            a->locations = (uint32_t)strtoul(v, NULL, 10);
        else if (OPT("--runs"))
            a->runs = (uint32_t)strtoul(v, NULL, 10);
        else if (OPT("--conns"))
            a->conns = (uint32_t)strtoul(v, NULL, 10);
        else if (OPT("--pipeline"))
            a->pipeline = (uint32_t)strtoul(v, NULL, 10);
        else if (OPT("--rounds"))
            a->rounds = (uint32_t)strtoul(v, NULL, 10);
        else if (OPT("--count"))
            a->count = (uint32_t)strtoul(v, NULL, 10);
        else if (OPT("--rate"))
            a->rate = (uint32_t)strtoul(v, NULL, 10);
        else if (OPT("--port"))
            a->port = (uint16_t)strtoul(v, NULL, 10);
        else if (OPT("--seconds"))
            a->seconds = strtod(v, NULL);
        else if (strcmp(o, "--cold") == 0)
            a->cold = true;
        else {
            fprintf(stderr, "unknown or incomplete option: %s\n", o);
            return -1;
        }
#undef OPT
    }
    if (a->locations == 0 || a->locations > 100 || a->skus == 0 || a->pipeline == 0 ||
        a->pipeline > 1024 || a->conns == 0 || a->conns > 1000) {
        fprintf(stderr, "bad option values\n");
        return -1;
    }
    return 0;
}

/* No trigger at all: the replay dirties millions of objects, and a checkpoint by dirty count
 * that commits before the kill would cover and delete the WAL (the data set would change). */
static const char *const no_checkpoints[] = {"--checkpoint-interval-s", "0",
                                             "--checkpoint-wal-bytes", "0",
                                             "--checkpoint-dirty-max", "0", NULL};

static int cmd_recover(const args_t *a)
{
    char log_path[RB_PATH_BYTES + 32];
    snprintf(log_path, sizeof(log_path), "%s/allotd-recover.log", a->tmp);
    for (uint32_t run = 1; run <= a->runs; run++) {
        if (a->cold)
            rb_evict_cache(a->dir);
        rb_daemon_t d;
        if (rb_daemon_start(&d, a->allotd, a->dir, a->port, log_path, no_checkpoints, 600) != 0)
            return 1;
        uint64_t rss = rb_proc_status_kib(d.pid, "VmRSS"), hwm = rb_proc_status_kib(d.pid, "VmHWM");
        uint64_t anon = rb_proc_status_kib(d.pid, "RssAnon");
        double cpu = rb_proc_cpu_s(d.pid);
        rb_daemon_kill9(&d);
        char loaded[2400] = "", recovered[2400] = "";
        int64_t t_start = rb_log_event_ms(log_path, "start", NULL, 0, false);
        int64_t t_loaded = rb_log_event_ms(log_path, "checkpoint_loaded", loaded, sizeof(loaded),
                                           false);
        int64_t t_recovered =
            rb_log_event_ms(log_path, "recovered", recovered, sizeof(recovered), false);
        int64_t t_listening = rb_log_event_ms(log_path, "listening", NULL, 0, false);
        if (t_start < 0 || t_loaded < 0 || t_recovered < 0 || t_listening < 0) {
            fprintf(stderr, "recover: allotd's log %s lacks the start-up events (does --tmp %s "
                            "exist?)\n", log_path, a->tmp);
            return 1;
        }
        double total = d.ready_s - d.started_s;
        printf("RESULT recover run=%u cache=%s ready_s=%.3f exec_to_start_ms=%" PRId64
               " lmdb_load_ms=%" PRId64 " wal_replay_ms=%" PRId64 " wal_open_listen_ms=%" PRId64
               " listen_to_pong_ms=%.0f records_loaded=%lld replayed=%lld cpu_s=%.2f rss_mib=%" PRIu64
               " rss_anon_mib=%" PRIu64 " hwm_mib=%" PRIu64 "\n",
               run, a->cold ? "cold" : "warm", total, t_start - d.fork_wall_ms,
               t_loaded - t_start, t_recovered - t_loaded, t_listening - t_recovered,
               (double)d.fork_wall_ms + total * 1000 - (double)t_listening,
               rb_log_field(loaded, "records"), rb_log_field(recovered, "replayed"), cpu, rss / 1024,
               anon / 1024, hwm / 1024);
        fflush(stdout);
    }
    return 0;
}

static size_t parse_list(const char *s, uint32_t *out, size_t max)
{
    size_t n = 0;
    while (*s != '\0' && n < max) {
        char *end;
        out[n++] = (uint32_t)strtoul(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            break;
    }
    return n;
}

static int cmd_checkpoint(const args_t *a)
{
    char log_path[RB_PATH_BYTES + 32];
    snprintf(log_path, sizeof(log_path), "%s/allotd-checkpoint.log", a->tmp);
    const char *extra[] = {"--checkpoint-interval-s", "0", "--checkpoint-wal-bytes", "0",
                           "--log-level", "debug", NULL};
    rb_daemon_t d;
    if (rb_daemon_start(&d, a->allotd, a->dir, a->port, log_path, extra, 600) != 0)
        return 1;
    printf("  allotd up after %.2f s (fsync always)\n", d.ready_s - d.started_s);
    /* 0 first: the checkpoint of whatever the WAL replay dirtied */
    uint32_t dirty[17] = {0};
    size_t n = 1 + parse_list(a->dirty, dirty + 1, 16);
    int rc = rb_checkpoint_runs(a->port, log_path, a->skus, dirty, n, a->rate);
    printf("  allotd VmHWM %" PRIu64 " MiB\n", rb_proc_status_kib(d.pid, "VmHWM") / 1024);
    int stop = rb_daemon_stop(&d, 600);
    printf("  allotd stopped (status %d)\n", stop);
    return rc == 0 ? 0 : 1;
}

static int cmd_throughput(const args_t *a)
{
    char modes[256];
    snprintf(modes, sizeof(modes), "%s", a->modes);
    const char *list[8];
    size_t n = 0;
    for (char *save = NULL, *m = strtok_r(modes, ",", &save); m != NULL && n < 8;
         m = strtok_r(NULL, ",", &save))
        list[n++] = m;
    uint32_t skus = a->skus_given ? a->skus : 1000;
    for (uint32_t round = 1; round <= a->rounds; round++)
        for (size_t i = 0; i < n; i++) {
            char dir[RB_PATH_BYTES], log_path[RB_PATH_BYTES + 32], cmd[RB_PATH_BYTES + 32];
            snprintf(dir, sizeof(dir), "%s/allot-rb-throughput", a->tmp);
            snprintf(log_path, sizeof(log_path), "%s/allotd-throughput.log", a->tmp);
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
            if (system(cmd) != 0)
                return 1;
            const char *extra[] = {"--fsync", list[i], NULL};
            rb_daemon_t d;
            if (rb_daemon_start(&d, a->allotd, dir, a->port, log_path, extra, 60) != 0)
                return 1;
            int rc = rb_seed(a->port, skus, a->locations);
            if (rc == 0)
                rc = rb_throughput(a->port, d.pid, a->conns, a->pipeline, a->seconds, skus, list[i]);
            rb_daemon_stop(&d, 60);
            if (system(cmd) != 0 || rc != 0)
                return 1;
            fflush(stdout);
        }
    return 0;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* fdatasync latency of this disk: 4 KiB appends (each grows the file) and 4 KiB overwrites of
 * an already written, synced file (what a preallocated, previously written WAL segment sees). */
static int cmd_fsync_probe(const args_t *a)
{
    char path[RB_PATH_BYTES + 32];
    snprintf(path, sizeof(path), "%s/fsync-probe.tmp", a->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    char block[4096];
    memset(block, 'x', sizeof(block));
    double *lat = calloc(a->count, sizeof(double));
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < a->count; i++) {
            double t0 = rb_now_s();
            if (pwrite(fd, block, sizeof(block), (off_t)i * 4096) != (ssize_t)sizeof(block) ||
                fdatasync(fd) != 0) {
                perror("fsync-probe");
                return 1;
            }
            lat[i] = (rb_now_s() - t0) * 1e6;
        }
        qsort(lat, a->count, sizeof(double), cmp_double);
        printf("RESULT fsync_probe kind=%s count=%u p50_us=%.0f p90_us=%.0f p99_us=%.0f "
               "max_us=%.0f\n",
               pass == 0 ? "append" : "overwrite", a->count, lat[a->count / 2],
               lat[a->count * 9 / 10], lat[a->count * 99 / 100], lat[a->count - 1]);
    }
    free(lat);
    close(fd);
    unlink(path);
    return 0;
}

/* generate and inproc: the data set is built and recovered in-process by allot-datagen (it
 * writes through core + persist, which the bench does not link). */
static int run_datagen(char **argv)
{
    argv[0] = RB_DATAGEN_PATH;
    fflush(stdout);
    execvp(argv[0], argv);
    fprintf(stderr, "allot-recovery-bench: cannot run %s: %s\n", argv[0], strerror(errno));
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (strcmp(argv[1], "generate") == 0 || strcmp(argv[1], "inproc") == 0)
        return run_datagen(argv);
    args_t a;
    if (parse(argc, argv, &a) != 0)
        usage();
    const char *cmd = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool needs_dir = strcmp(cmd, "throughput") != 0 && strcmp(cmd, "memlat") != 0;
    if (needs_dir && a.dir == NULL) {
        fprintf(stderr, "%s needs --dir\n", cmd);
        return 2;
    }
    if (strcmp(cmd, "recover") == 0)
        return cmd_recover(&a);
    if (strcmp(cmd, "checkpoint") == 0)
        return cmd_checkpoint(&a);
    if (strcmp(cmd, "throughput") == 0)
        return cmd_throughput(&a);
    if (strcmp(cmd, "fsync-probe") == 0)
        return cmd_fsync_probe(&a);
    if (strcmp(cmd, "memlat") == 0)
        return rb_memlat(a.count) == 0 ? 0 : 1;
    usage();
    return 2;
}
