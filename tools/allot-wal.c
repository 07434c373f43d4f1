/* allot-wal.c - inspect a WAL: `allot-wal verify|dump <data-dir>` (read-only; takes no lock on the
 * data directory, so it also runs beside the server that writes it). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/errors.h"
#include "core/event.h"
#include "persist/checkpoint.h"
#include "persist/wal_read.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: allot-wal verify <data-dir>   check every record of <data-dir>/wal\n"
                 "       allot-wal dump <data-dir>     each record: lsn time type name length\n"
                 "exit status: 0 log is valid (a torn tail is reported, not an error), 1 a bad\n"
                 "record, an LSN gap or missing segments (file, offset and LSN are printed),\n"
                 "2 usage or I/O error\n");
}

static int dump_record_cb(void *ctx, uint64_t lsn, int64_t time_ms, uint8_t type,
                          const uint8_t *payload, size_t len)
{
    (void)ctx, (void)payload;
    time_t seconds = (time_t)(time_ms / 1000);
    int64_t ms = time_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        seconds -= 1;
    }
    struct tm tm;
    char when[32] = "?";
    if (gmtime_r(&seconds, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    if (printf("%" PRIu64 " %s.%03" PRId64 "Z type=%u name=%s length=%zu\n", lsn, when, ms,
               (unsigned)type, allot_event_type_name(type), len) < 0)
        return ALLOT_EIO;
    return 0;
}

/* The LSN covered by <data-dir>/state.lmdb (0 when there is no checkpoint yet). */
static int checkpoint_lsn_read(const char *data_dir, uint64_t *lsn)
{
    char path[WAL_PATH_BYTES_MAX];
    snprintf(path, sizeof path, "%s/state.lmdb", data_dir);
    bool exists = false;
    char message[512];
    if (checkpoint_store_read_lsn(path, lsn, &exists, message, sizeof message) != 0) {
        fprintf(stderr, "allot-wal: %s\n", message);
        return -1;
    }
    if (!exists)
        *lsn = 0;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "dump") != 0)) {
        usage(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return 2;
    }
    bool dump = strcmp(argv[1], "dump") == 0;
    char dir[WAL_PATH_BYTES_MAX];
    if ((size_t)snprintf(dir, sizeof dir, "%s/wal", argv[2]) >= sizeof dir - 32) {
        fprintf(stderr, "allot-wal: path too long\n");
        return 2;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "allot-wal: %s is not a WAL directory\n", dir);
        return 2;
    }
    static wal_replay_result_t result;
    char message[WAL_MESSAGE_BYTES_MAX];
    uint64_t checkpoint_lsn = 0;
    if (checkpoint_lsn_read(argv[2], &checkpoint_lsn) != 0)
        return 2;
    /* verify: the log must continue the checkpoint; dump: then print every record present */
    int rc = wal_replay(dir, checkpoint_lsn, NULL, NULL, &result, message, sizeof message);
    if (rc == 0 && dump) {
        uint64_t from = result.first_lsn > 0 ? result.first_lsn - 1 : checkpoint_lsn;
        rc = wal_replay(dir, from, dump_record_cb, NULL, &result, message, sizeof message);
    }
    fflush(stdout);
    if (rc == ALLOT_ECORRUPT) {
        fprintf(stderr, "allot-wal: %s\n", message);
        fprintf(stderr, "allot-wal: file %s offset %" PRIu64 " LSN %" PRIu64 "\n", result.bad_file,
                result.bad_offset, result.bad_lsn);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "allot-wal: %s\n", message[0] ? message : allot_error_message(rc));
        return 2;
    }
    if (result.tail_truncated)
        fprintf(stderr,
                "allot-wal: torn tail in %s at offset %" PRIu64 " (%" PRIu64
                " bytes): the server cuts it off at next start\n",
                result.tail_file, result.tail_offset, result.tail_bytes);
    if (!dump)
        printf("ok: checkpoint LSN %" PRIu64 ", %u segments, %" PRIu64
               " records, first LSN %" PRIu64 ", last LSN %" PRIu64 "\n",
               checkpoint_lsn, result.segments, result.records_checked, result.first_lsn,
               result.records_checked > 0 ? result.last_lsn : 0);
    return 0;
}
