/* writeback.h - write a file's dirty pages out a window at a time, so that another file's
 * fdatasync never queues behind all of them.
 *
 * Why: a checkpoint dirties tens of megabytes of state.lmdb in its write transaction, and the
 * change stream's store (committed without a sync) holds everything written since its last
 * flush. One msync or fdatasync of all of it puts the lot in the disk's queue at once, and the
 * WAL writer's fdatasync of a few kilobytes, issued meanwhile, waits behind it: every reply of
 * that moment waited 100-250 ms (docs/benchmarks.md, "Issue 20, the checkpoint's writes and the
 * WAL's fdatasync").
 *
 * How: persist_writeback_paced walks the first `bytes` of the file in windows of
 * PERSIST_WRITEBACK_WINDOW_BYTES and, for each, starts the write of its dirty pages and waits
 * for it to complete (sync_file_range with WAIT_BEFORE | WRITE | WAIT_AFTER): this file never
 * has more than one window in the disk's queue, so a concurrent fdatasync of another file waits
 * for at most that. A clean window costs a walk of the page cache's tags, no I/O.
 *
 * Contract: not a durability point. It writes data pages only: no metadata, no flush of the
 * disk's cache; the caller's own sync (LMDB's commit, fdatasync) follows and finds little left
 * to write. Pages dirtied behind the walk are left to that sync. Any thread; the file may be
 * written meanwhile. 0, or -errno of the first failure (EINVAL or ENOSYS where the file system
 * or kernel has no sync_file_range: then the caller's sync writes everything, as without this
 * call; EIO: the caller's sync reports it too). A write error is never swallowed by this call
 * alone: the sync that follows sees it (the page cache keeps the error for fdatasync).
 */
#ifndef ALLOT_PERSIST_WRITEBACK_H
#define ALLOT_PERSIST_WRITEBACK_H

#include <stdint.h>
#include <time.h>

int persist_writeback_paced(int fd, uint64_t bytes);
/* The same over [offset, offset + bytes) only (the WAL's zero fill writes out each window of
 * zeros it wrote, persist/wal_reap.c). */
int persist_writeback_range(int fd, uint64_t offset, uint64_t bytes);
/* How many walks (calls of the two above) the process made so far (tests). */
uint64_t persist_writeback_walks(void);

/* THE FLUSH GATE. Writing one window at a time still lets a walk queue window after window
 * while one WAL fdatasync is slow (6-21 MB between two flushes, docs/benchmarks.md, "Issue 20,
 * background writes paced"). So while the WAL is committing (a flush within the last
 * PERSIST_WRITEBACK_GATE_ACTIVE_MS), every window of a walk, and every other background step
 * that calls persist_writeback_gate (a deleted segment's shrink), first waits until the WAL
 * has finished a flush since this thread's previous window, for at most
 * PERSIST_WRITEBACK_GATE_WAIT_US_MAX: about one window per group commit, and full speed when
 * nothing commits. persist_writeback_flush_done: the WAL writer, after each fdatasync.
 * persist_writeback_gate_waits: windows that found no new flush and waited (tests). */
void persist_writeback_flush_done(void);
void persist_writeback_gate(void);
uint64_t persist_writeback_gate_waits(void);
/* The CLOCK_REALTIME time `ns` (< 1 s) from now: the deadline of a pthread_cond_timedwait on a
 * condition variable of the default clock (the gate's; the WAL reaper's pacing). */
struct timespec persist_deadline_after_ns(long ns);

/* THE PACED MAP. LMDB (MDB_WRITEMAP) commits a write transaction by clearing a flag in the header
 * of every page the transaction dirtied, then msync(MS_SYNC) of the whole map, then writing and
 * msyncing the meta page. The flag write dirties every page again, so pages written out before
 * the commit are all dirty again when the msync starts, and the msync puts all of them in the
 * disk's queue at once (a single 60-80 MB burst of 4 MB writes per checkpoint in front of the
 * WAL's fdatasync, docs/benchmarks.md, "Issue 20, background writes paced"). LMDB offers no hook
 * between the two, so this module defines msync itself: the process's msync (LMDB's calls
 * included: the executable's definition takes precedence over libc's for every shared library)
 * first writes out, window by window as above, the part of [addr, addr + length) that lies in
 * the map registered here, then calls the msync it hides (libc's, or a preloaded wrapper's),
 * which finds little left. Durability is that msync's, unchanged; LMDB's order (data synced,
 * then meta) is kept. Any other range, and MS_ASYNC, goes straight to that msync.
 *
 * persist_writeback_map_set(fd, bytes): the one paced map is the writable shared map of fd's
 * file from offset 0 of `bytes` bytes (looked up in /proc/self/maps: LMDB does not say where
 * its map is; MDB_envinfo's me_mapaddr is the fixed address asked for, NULL; a reader's
 * read-only map of the same file is not it); a later call replaces it (the
 * checkpoint store registers its map at open and after every resize). Returns 0, or -ENOENT
 * when no such map is found (then nothing is paced; msync works as always).
 * persist_writeback_map_clear(fd): unregister, if fd's map is the one registered.
 * persist_writeback_map_syncs: how many msyncs were paced so far (tests). Any thread; a mutex
 * guards the registration and is held across the paced write-out. */
int persist_writeback_map_set(int fd, uint64_t bytes);
void persist_writeback_map_clear(int fd);
uint64_t persist_writeback_map_syncs(void);

#endif
