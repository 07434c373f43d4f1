/* rb.h - allot-recovery-bench: shared declarations (see docs/benchmarks-recovery.md).
 *
 * main.c      subcommands and the fdatasync probe; `generate` and `inproc` run allot-datagen
 *             (tools/allot-datagen.c: the data set built through core + persist, and recovered
 *             in-process with recovery_run), so that the bench itself calls only liballot.
 * daemon.c    starts the real allotd, waits for ping, reads VmRSS/VmHWM and its log phases.
 * drive.c     a pipelined MessagePack-RPC load driver over liballot (one thread, poll()):
 *             reserve+release throughput, dirtying N SKUs, checkpoint stall measurement.
 * memlat.c    dependent random reads (memory latency).
 */
#ifndef ALLOT_BENCH_RECOVERY_RB_H
#define ALLOT_BENCH_RECOVERY_RB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RB_PATH_BYTES 1024

/* Names the drivers share with allot-datagen's data set. */
#define RB_SKU_FMT      "SKU-%07u"
#define RB_LOCATION_FMT "LOC-%02u"

double rb_now_s(void);    /* CLOCK_MONOTONIC seconds */
uint64_t rb_now_ns(void); /* CLOCK_MONOTONIC nanoseconds */
int64_t rb_wall_ms(void); /* CLOCK_REALTIME milliseconds */

/* Latency samples in microseconds. */
typedef struct rb_samples {
    uint32_t *v;
    size_t n, cap;
} rb_samples_t;
void rb_samples_add(rb_samples_t *s, uint64_t us);
void rb_samples_free(rb_samples_t *s);
/* Sorts in place; returns the p-th percentile (0..100), 0 when empty. */
uint32_t rb_samples_pct(rb_samples_t *s, double p);

/* ---- daemon.c ------------------------------------------------------------------------- */
typedef struct rb_daemon {
    pid_t pid;
    uint16_t port;
    char log_path[RB_PATH_BYTES];
    double started_s; /* monotonic, just before fork */
    double ready_s;   /* first pong */
    int64_t fork_wall_ms;
} rb_daemon_t;

/* Start allotd --data-dir dir --listen 127.0.0.1:port plus extra args (NULL-terminated);
 * stderr goes to log_path. Waits for the first pong (timeout_s). 0 or -1. */
int rb_daemon_start(rb_daemon_t *d, const char *allotd, const char *dir, uint16_t port,
                    const char *log_path, const char *const *extra, double timeout_s);
/* kill -9 (no shutdown checkpoint: the data directory stays as it was) and reap. */
void rb_daemon_kill9(rb_daemon_t *d);
/* SIGTERM and reap (the server takes a shutdown checkpoint). */
int rb_daemon_stop(rb_daemon_t *d, double timeout_s);
/* utime + stime of a process in seconds (0 when unreadable). */
double rb_proc_cpu_s(pid_t pid);
/* VmRSS / VmHWM / RssAnon in KiB (0 when unreadable). */
uint64_t rb_proc_status_kib(pid_t pid, const char *field);
/* Wall-clock ms of the first (or last) log line with "event=<event>" (-1 if none); the line
 * is copied to line (may be NULL). */
int64_t rb_log_event_ms(const char *log_path, const char *event, char *line, size_t line_bytes,
                        bool last);
/* The value of " key=" in a logfmt line as an integer (-1 if absent). */
long long rb_log_field(const char *line, const char *key);
/* Evict dir's files (recursively one level: dir and dir/wal) from the page cache. */
void rb_evict_cache(const char *dir);

/* ---- memlat.c ------------------------------------------------------------------------- */
/* Dependent random reads over `mib` MiB (pointer chase): ns per read, with and without
 * MADV_HUGEPAGE. Bounds every hash/array lookup of a large state. */
int rb_memlat(uint32_t mib);

/* ---- drive.c -------------------------------------------------------------------------- */
int rb_throughput(uint16_t port, pid_t server_pid, uint32_t conns, uint32_t pipeline,
                  double seconds, uint32_t skus, const char *label);
/* Seed skus x locations positions with stock.set (small data set for throughput runs). */
int rb_seed(uint16_t port, uint32_t skus, uint32_t locations);
/* Checkpoint stall runs against a server holding the generated data set. */
int rb_checkpoint_runs(uint16_t port, const char *log_path, uint32_t skus, const uint32_t *dirty,
                       size_t dirty_count, uint32_t load_rate);

#endif
