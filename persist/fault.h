/* fault.h - the fault injection seam of persist/: every write, fdatasync and fallocate the WAL
 * does (and the page-in of a mapped segment at replay) goes through the wrappers below, which
 * can be told to fail; so can a group leader's raft barrier (persist/consensus.c).
 *
 * Contract:
 *  - persist_pwrite_all / persist_fdatasync / persist_fallocate behave like pwrite (looping over
 *    short writes and EINTR), fdatasync and fallocate(fd, 0, 0, len) and return 0 or -errno;
 *    persist_map_populate like madvise(addr, len, MADV_POPULATE_READ).
 *    They count their calls (persist_fault_calls), which tests use as a statistics seam
 *    (e.g. "how many fdatasyncs did 1000 records cost").
 *  - persist_fault_hit(op) is the same check for a seam that wraps no system call: the barrier
 *    a new group leader issues (barrier: raft_barrier is refused; barrier_cb: the barrier's
 *    callback reports a failure, as when its entry cannot be written), and each window of the
 *    zeros the WAL writes into its spare segment (zero_fill: that window's write fails; its own
 *    seam, so that the fill, which runs beside the writer, never shifts the counts of write).
 *  - persist_fault_set(op, errno_value, after_calls): the first `after_calls` calls of `op`
 *    made from now on succeed, every later call fails with -errno_value (sticky: a broken disk
 *    stays broken) until persist_fault_clear(op) / persist_fault_clear_all().
 *    persist_fault_set_times: the same, but only `times` calls fail; later ones succeed again.
 *  - From the environment (read by persist_fault_env_load, which wal_open calls once), so that
 *    integration tests can make the real allotd fail:
 *      ALLOT_FAULT="op:ERRNO[:after=N][:times=M][,op:ERRNO...]"
 *          op is write | fdatasync | fallocate | map | barrier | barrier_cb | zero_fill; ERRNO is a
 * name (EIO, ENOSPC, EDQUOT, EROFS, EBADF, EINVAL) or a number; times=M: only M calls fail
 *          (default: every call after the first N).  e.g. ALLOT_FAULT=fdatasync:EIO:after=5,
 *          ALLOT_FAULT=barrier:EIO:times=1 (a new leader's first barrier is refused)
 *      ALLOT_FAULT_FILE=/path
 *          the faults above apply only while /path exists (checked at every call), so a test
 *          can make the disk "full" and "free" again by creating and removing the file. If
 *          ALLOT_FAULT is unset, ALLOT_FAULT_FILE alone means fallocate:ENOSPC.
 *          e.g. ALLOT_FAULT_FILE=/tmp/allot-full  (touch it: no new segments; rm it: writes
 *          resume by themselves)
 *    A malformed ALLOT_FAULT makes persist_fault_env_load return ALLOT_EINVALID_ARGUMENT.
 *    wal_open loads it; so does consensus_open (a group member opens no WAL).
 *  - Thread-safe (one mutex); the counters and settings are process-wide.
 */
#ifndef ALLOT_PERSIST_FAULT_H
#define ALLOT_PERSIST_FAULT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum persist_fault_op {
    PERSIST_FAULT_WRITE,
    PERSIST_FAULT_FDATASYNC,
    PERSIST_FAULT_FALLOCATE,
    PERSIST_FAULT_MAP,        /* persist_map_populate: replay falls back to pread */
    PERSIST_FAULT_BARRIER,    /* a group leader's raft_barrier is refused */
    PERSIST_FAULT_BARRIER_CB, /* its callback reports a failure */
    PERSIST_FAULT_ZERO_FILL,  /* one window of the WAL's zero fill of its spare (wal_reap.c) */
    PERSIST_FAULT_OP_COUNT
} persist_fault_op_t;

void persist_fault_set(persist_fault_op_t op, int errno_value, uint64_t after_calls);
/* As persist_fault_set, but only `times` (>= 1) calls fail; the ones after them succeed. */
void persist_fault_set_times(persist_fault_op_t op, int errno_value, uint64_t after_calls,
                             uint64_t times);
void persist_fault_clear(persist_fault_op_t op);
void persist_fault_clear_all(void);
/* Calls of `op` made so far (failed ones included). */
uint64_t persist_fault_calls(persist_fault_op_t op);
/* Parse ALLOT_FAULT / ALLOT_FAULT_FILE once; later calls do nothing. 0 or ALLOT_E*. */
int persist_fault_env_load(void);
/* Count a call of `op` at a seam that wraps no system call: the errno value to fail it with, or
 * 0 to go ahead. */
int persist_fault_hit(persist_fault_op_t op);

int persist_pwrite_all(int fd, const void *data, size_t bytes, uint64_t offset);
int persist_fdatasync(int fd);
int persist_fallocate(int fd, uint64_t bytes);
int persist_map_populate(void *addr, size_t bytes);
/* Make the directory entry of a file created or renamed at `path` durable: fsync of its parent
 * directory ("." for a bare name). 0 or -errno. Not a fault-injection point. */
int persist_fsync_parent_dir(const char *path);
/* Unmap from the process the pages of every mapping of the file open as fd (madvise
 * MADV_DONTNEED over each one /proc/self/maps names by the file's device and inode): for a
 * shared file mapping they stay in the page cache and are mapped again by the next access, so
 * nothing is lost, but they leave the process's RSS. For LMDB maps after a synced commit (what
 * a commit touched stays mapped otherwise). 0 or -errno. Not a fault-injection point. */
int persist_file_map_release(int fd);

#endif
