/* dirlock.h - the exclusive lock on a data directory: one allotd per <data-dir>.
 *
 * Contract
 *  - dirlock_acquire(data_dir) opens (creating it, mode 0640) "<data-dir>/allotd.lock" and takes
 *    an exclusive, non-blocking lock on it: an open-file-description lock (fcntl F_OFD_SETLK,
 *    Linux 3.15+), or flock(LOCK_EX) where the kernel lacks OFD locks. Both belong to the open
 *    file, not to a thread, and are released by the kernel when the process exits however it
 *    exits (kill -9 included). The descriptor is O_CLOEXEC: a program the process executes does
 *    not inherit the lock. Once locked, the file's content is replaced by the holder's pid
 *    ("<pid>\n"), so that a process refused the lock can name the holder.
 *  - The caller takes it before it touches anything else in the directory (LMDB, the WAL) and
 *    holds it for its whole life; dirlock_release (or exit) drops it. The lock file is never
 *    deleted: deleting it while another process waits on it would let two processes hold
 *    "the" lock on two different files.
 *  - Readers that never write (allot-wal) take no lock.
 *  - Errors: 0; ALLOT_EUNAVAILABLE when another process holds the lock (message names it:
 *    "... is in use by pid N ..." when the pid could be read); ALLOT_EIO when the file cannot
 *    be opened or locked (message says which call failed); ALLOT_ENOMEM;
 *    ALLOT_EINVALID_ARGUMENT (path too long). Nothing is left open on error.
 */
#ifndef ALLOT_PERSIST_DIRLOCK_H
#define ALLOT_PERSIST_DIRLOCK_H

#include <stddef.h>

#define DIRLOCK_FILE_NAME "allotd.lock"

typedef struct dirlock dirlock_t;

int dirlock_acquire(const char *data_dir, dirlock_t **out, char *message, size_t message_bytes);
/* Unlock and close (NULL is fine). */
void dirlock_release(dirlock_t *lock);

#endif
