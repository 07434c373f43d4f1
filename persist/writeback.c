/* writeback.c - paced write-out of a file's dirty pages (contract in writeback.h). */
#include "writeback.h"

#include <errno.h>
#include <fcntl.h>

#include "core/limits.h"

int persist_writeback_range(int fd, uint64_t offset, uint64_t bytes)
{
    const unsigned int flags =
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    for (uint64_t done = 0; done < bytes; done += PERSIST_WRITEBACK_WINDOW_BYTES) {
        uint64_t window = bytes - done < PERSIST_WRITEBACK_WINDOW_BYTES
                              ? bytes - done
                              : PERSIST_WRITEBACK_WINDOW_BYTES;
        while (sync_file_range(fd, (off64_t)(offset + done), (off64_t)window, flags) != 0)
            if (errno != EINTR)
                return -errno;
    }
    return 0;
}

int persist_writeback_paced(int fd, uint64_t bytes)
{
    return persist_writeback_range(fd, 0, bytes);
}
