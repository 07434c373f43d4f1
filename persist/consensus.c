/* consensus.c - the group's log on libraft: entries of event records, the state machine's apply,
 * snapshots as LMDB checkpoints, leadership.
 *
 * ENTRY (the data of one raft command entry: the records of one loop iteration), little-endian:
 *    0  u32  magic 0x45524C41 ("ALRE")
 *    4  u16  format version (1)
 *    6  u16  0
 *    8  u64  LSN of the first record
 *   16  u32  record count (>= 1)
 *   20  u32  bytes of records that follow
 *   24  the records, one after the other, each in the WAL's record format (persist/wal_format.c:
 *       header with LSN, type, time and length, the payload, CRC32C), LSNs +1 from the first
 *   ..  zeros up to a multiple of 8 bytes (libraft's entries must be 8-byte aligned in size:
 *       canonical/raft#180, #189)
 *
 * SNAPSHOT DESCRIPTOR (the data of a raft snapshot; the state itself is state.lmdb):
 *    0  u32  magic 0x4E534C41 ("ALSN")
 *    4  u16  format version (1)
 *    6  u16  flags: 0 as stored; DESCRIPTOR_IMAGE when sent to a member that lags
 *    8  u64  LSN of the newest record of the entries the snapshot covers: state.lmdb covers at
 *            least this LSN when the descriptor is stored
 *   with DESCRIPTOR_IMAGE (only on the wire, leader to a member behind the log's trailing
 *   entries; the member stores the plain descriptor):
 *   16  u64  bytes of the image
 *   24  the image: a compact copy of the leader's state.lmdb (checkpoint_store_copy), which
 *       covers at least the LSN above. The member writes it to <data-dir>/state.lmdb.installed
 *       (fsynced, then renamed there) before it stores the descriptor; its next start moves it
 *       over state.lmdb (persist/recovery.c) and loads it.
 *
 * libraft's own files (its segments, metadata and snapshots) live in <data-dir>/raft.
 */
#include "consensus.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/byte_order.h"
#include "core/errors.h"
#include "fault.h"
#include "wal_read.h"

#define ENTRY_MAGIC           0x45524C41u
#define ENTRY_VERSION         1u
#define ENTRY_HEADER_BYTES    24u
#define DESCRIPTOR_MAGIC      0x4E534C41u
#define DESCRIPTOR_VERSION    1u
#define DESCRIPTOR_BYTES      16u
#define DESCRIPTOR_IMAGE      1u /* flags: the state image follows */
#define IMAGE_HEADER_BYTES    24u
#define CONSENSUS_FSM_VERSION 3

/* One proposed entry, from raft_apply to its callback. */
typedef struct proposal {
    struct raft_apply req;
    consensus_t *c;
    uint64_t first_lsn, last_lsn;
} proposal_t;

struct consensus {
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm fsm;
    consensus_callbacks_t cb;
    uint32_t node_id;
    consensus_member_t members[ALLOT_GROUP_MEMBERS_MAX];
    size_t member_count;
    /* the records of this iteration, already framed, after room for the entry header */
    uint8_t *batch;
    size_t batch_bytes, batch_capacity;
    uint32_t batch_count;
    uint64_t batch_first_lsn;
    uint64_t state_lsn;     /* newest record the state holds */
    uint64_t committed_lsn; /* newest record committed and applied */
    /* leadership, polled once per loop iteration (libraft has no state callback) */
    uv_check_t poll;
    int raft_state;
    bool writable, barrier_pending, lost_reported;
    struct raft_barrier barrier;  /* at most one in flight: libraft fails it on step-down */
    uint64_t leader_term;         /* the term this node leads in (when raft_state is leader) */
    uint64_t barrier_term;        /* the term the barrier in flight was issued in */
    uint64_t barrier_failed_term; /* a failed barrier was reported in this term (once each) */
    raft_id leader_id;
    uint64_t leader_changes;
    /* snapshots: the loop publishes durable checkpoints, a pool thread waits for them */
    pthread_mutex_t lock;
    pthread_cond_t checkpoint_changed;
    uint64_t checkpoint_durable_lsn; /* newest committed checkpoint (under lock) */
    uint64_t checkpoint_failures;    /* (under lock) */
    uint64_t snapshot_lsn;           /* what the snapshot being taken needs */
    uint64_t snapshot_failures;      /* checkpoint_failures when it began */
    bool closing;                    /* (under lock) */
    bool stopped;
    void (*close_cb)(void *ctx);
    void *close_ctx;
    int close_pending;
    /* the partition seam (tests): raft's own start, send and receive, wrapped */
    const char *partition_file; /* $ALLOT_RAFT_PARTITION_FILE, or NULL */
    char partition_path[512];
    int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
    int (*io_send)(struct raft_io *, struct raft_io_send *, const struct raft_message *,
                   raft_io_send_cb);
    raft_io_recv_cb raft_recv;
    /* snapshots sent and received with the state's image */
    int (*io_snapshot_put)(struct raft_io *, unsigned, struct raft_io_snapshot_put *,
                           const struct raft_snapshot *, raft_io_snapshot_put_cb);
    int (*io_snapshot_get)(struct raft_io *, struct raft_io_snapshot_get *,
                           raft_io_snapshot_get_cb);
    raft_io_snapshot_get_cb raft_snapshot_got; /* raft's callback (always the same function) */
    char installed_path[ALLOT_ADDRESS_BYTES_MAX + 512]; /* <data-dir>/state.lmdb.installed */
    uint64_t installed_lsn; /* an image installed for the next start covers this LSN */
    bool rebuilding;        /* restored a snapshot this state does not hold: apply nothing */
};

static consensus_t *consensus_of_io(struct raft_io *io)
{
    return (consensus_t *)(void *)((char *)io - offsetof(consensus_t, io));
}

static consensus_t *consensus_of_fsm(struct raft_fsm *fsm)
{
    return fsm->data;
}

static void consensus_fatal(consensus_t *c, const char *fmt, const char *detail)
{
    char message[512];
    snprintf(message, sizeof(message), fmt, detail);
    c->stopped = true;
    c->cb.fatal_cb(c->cb.ctx, message);
}

/* ---- apply ----------------------------------------------------------------------------------- */

/* Apply the records of one entry the state does not hold yet. */
static int entry_apply(consensus_t *c, const uint8_t *data, size_t bytes, uint64_t *last_lsn)
{
    if (bytes < ENTRY_HEADER_BYTES || allot_u32_load_le(data) != ENTRY_MAGIC ||
        allot_u16_load_le(data + 4) != ENTRY_VERSION)
        return ALLOT_ECORRUPT;
    uint64_t lsn = allot_u64_load_le(data + 8);
    uint32_t count = allot_u32_load_le(data + 16);
    uint32_t records_bytes = allot_u32_load_le(data + 20);
    if (records_bytes > bytes - ENTRY_HEADER_BYTES || count == 0)
        return ALLOT_ECORRUPT;
    size_t offset = ENTRY_HEADER_BYTES, end = ENTRY_HEADER_BYTES + records_bytes;
    for (uint32_t i = 0; i < count; i++, lsn++) {
        wal_record_t record;
        const char *reason = NULL;
        if (wal_record_decode(data + offset, end - offset, &record, &reason) != 1 ||
            record.lsn != lsn)
            return ALLOT_ECORRUPT;
        offset += record.record_bytes;
        if (lsn <= c->state_lsn)
            continue; /* applied when it was decided, or loaded from the checkpoint */
        if (lsn != c->state_lsn + 1)
            return ALLOT_ECORRUPT;
        int rc = c->cb.apply_cb(c->cb.ctx, lsn, record.time_ms, record.type, record.payload,
                                record.payload_bytes);
        if (rc != 0)
            return rc;
        c->state_lsn = lsn;
    }
    *last_lsn = lsn - 1;
    return offset == end ? 0 : ALLOT_ECORRUPT;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    consensus_t *c = consensus_of_fsm(fsm);
    *result = NULL;
    if (c->stopped)
        return RAFT_SHUTDOWN;
    if (c->rebuilding)
        return 0; /* the next start loads the installed image and applies the log after it */
    uint64_t last_lsn = 0;
    int rc = entry_apply(c, buf->base, buf->len, &last_lsn);
    if (rc != 0) {
        consensus_fatal(c, "a committed entry cannot be applied: %s", allot_error_message(rc));
        return RAFT_MALFORMED;
    }
    if (last_lsn > c->committed_lsn) {
        c->committed_lsn = last_lsn;
        c->cb.committed_cb(c->cb.ctx, last_lsn);
    }
    return 0;
}

/* ---- snapshots: the checkpoint in state.lmdb ------------------------------------------------- */

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    consensus_t *c = consensus_of_fsm(fsm);
    uint64_t needed = c->committed_lsn; /* the records of the entries up to last_applied */
    pthread_mutex_lock(&c->lock);
    bool covered = c->checkpoint_durable_lsn >= needed;
    c->snapshot_failures = c->checkpoint_failures;
    pthread_mutex_unlock(&c->lock);
    uint64_t checkpoint_lsn = 0;
    if (!covered && c->cb.checkpoint_begin_cb(c->cb.ctx, &checkpoint_lsn) != 0)
        return RAFT_BUSY; /* a checkpoint is running: libraft asks again after later entries */
    assert(covered || checkpoint_lsn >= needed);
    struct raft_buffer *buffers = raft_malloc(sizeof(*buffers));
    uint8_t *descriptor = raft_malloc(DESCRIPTOR_BYTES);
    if (buffers == NULL || descriptor == NULL) {
        raft_free(buffers);
        raft_free(descriptor);
        return RAFT_NOMEM;
    }
    allot_u32_store_le(descriptor, DESCRIPTOR_MAGIC);
    allot_u16_store_le(descriptor + 4, DESCRIPTOR_VERSION);
    allot_u16_store_le(descriptor + 6, 0);
    allot_u64_store_le(descriptor + 8, needed);
    buffers[0].base = descriptor;
    buffers[0].len = DESCRIPTOR_BYTES;
    c->snapshot_lsn = needed;
    *bufs = buffers;
    *n_bufs = 1;
    return 0;
}

/* A pool thread: the snapshot may be stored (and the log trimmed) once state.lmdb covers it. */
static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    (void)bufs;
    (void)n_bufs;
    consensus_t *c = consensus_of_fsm(fsm);
    pthread_mutex_lock(&c->lock);
    while (!c->closing && c->checkpoint_durable_lsn < c->snapshot_lsn &&
           c->checkpoint_failures == c->snapshot_failures)
        pthread_cond_wait(&c->checkpoint_changed, &c->lock);
    bool covered = c->checkpoint_durable_lsn >= c->snapshot_lsn;
    pthread_mutex_unlock(&c->lock);
    return covered ? 0 : RAFT_CANCELED;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    (void)fsm;
    if (*bufs != NULL) {
        for (unsigned i = 0; i < *n_bufs; i++)
            raft_free((*bufs)[i].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* At start-up: this node's newest snapshot; later: one a leader sent (the node lagged behind
 * the leader's log). The state must already hold what it covers. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    consensus_t *c = consensus_of_fsm(fsm);
    const uint8_t *d = buf->base;
    if (buf->len != DESCRIPTOR_BYTES || allot_u32_load_le(d) != DESCRIPTOR_MAGIC ||
        allot_u16_load_le(d + 4) != DESCRIPTOR_VERSION) {
        consensus_fatal(c, "%s", "a raft snapshot is not an Allot snapshot descriptor");
        return RAFT_MALFORMED;
    }
    uint64_t lsn = allot_u64_load_le(d + 8);
    if (lsn > c->state_lsn && c->installed_lsn >= lsn) {
        /* the image that covers it is in place for the next start: rebuild from it */
        c->rebuilding = true;
        raft_free(buf->base);
        c->cb.installed_cb(c->cb.ctx, lsn);
        return 0;
    }
    if (lsn > c->state_lsn) {
        char detail[160];
        snprintf(detail, sizeof(detail), "LSN %llu, state.lmdb holds %llu", (unsigned long long)lsn,
                 (unsigned long long)c->state_lsn);
        consensus_fatal(c,
                        "the snapshot (%s) is newer than this node's state: the node fell "
                        "behind the leader's log; replace its data directory with a copy of a "
                        "member's (docs/operations.md, Replacing a node)",
                        detail);
        return RAFT_CANCELED;
    }
    if (lsn > c->committed_lsn)
        c->committed_lsn = lsn;
    raft_free(buf->base);
    return 0;
}

void consensus_checkpoint_committed(consensus_t *c, uint64_t lsn)
{
    pthread_mutex_lock(&c->lock);
    if (lsn > c->checkpoint_durable_lsn)
        c->checkpoint_durable_lsn = lsn;
    pthread_cond_broadcast(&c->checkpoint_changed);
    pthread_mutex_unlock(&c->lock);
}

void consensus_checkpoint_failed(consensus_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->checkpoint_failures++;
    pthread_cond_broadcast(&c->checkpoint_changed);
    pthread_mutex_unlock(&c->lock);
}

/* ---- proposing ------------------------------------------------------------------------------- */

static bool batch_reserve(consensus_t *c, size_t extra)
{
    if (c->batch_bytes + extra <= c->batch_capacity)
        return true;
    size_t capacity = c->batch_capacity ? c->batch_capacity : 64 * 1024;
    while (capacity < c->batch_bytes + extra)
        capacity *= 2;
    uint8_t *grown = realloc(c->batch, capacity);
    if (grown == NULL)
        return false;
    c->batch = grown;
    c->batch_capacity = capacity;
    return true;
}

uint64_t consensus_append(consensus_t *c, uint8_t type, int64_t time_ms, const uint8_t *payload,
                          size_t len)
{
    assert(c->writable);
    if (c->batch_bytes > 0 &&
        c->batch_bytes + len + WAL_RECORD_OVERHEAD_BYTES > ALLOT_RAFT_ENTRY_BYTES_MAX)
        consensus_flush(c); /* one entry stays bounded */
    if (c->batch_bytes == 0 && !batch_reserve(c, ENTRY_HEADER_BYTES))
        return 0;
    if (!batch_reserve(c, len + WAL_RECORD_OVERHEAD_BYTES))
        return 0;
    if (c->batch_bytes == 0) {
        c->batch_bytes = ENTRY_HEADER_BYTES;
        c->batch_first_lsn = c->state_lsn + 1;
    }
    uint64_t lsn = c->state_lsn + 1;
    c->batch_bytes +=
        wal_record_encode(c->batch + c->batch_bytes, c->batch_capacity - c->batch_bytes, lsn,
                          time_ms, type, payload, len);
    c->batch_count++;
    c->state_lsn = lsn;
    return lsn;
}

static void on_proposal_done(struct raft_apply *req, int status, void *result)
{
    (void)result;
    proposal_t *p = req->data;
    consensus_t *c = p->c;
    if (status != 0 && !c->stopped && c->committed_lsn < p->last_lsn && !c->lost_reported) {
        /* Leadership lost (or the engine stopped) with this entry uncommitted: it may commit
         * under the next leader or vanish. The state holds it either way. */
        c->lost_reported = true;
        c->writable = false;
        c->cb.lost_cb(c->cb.ctx,
                      p->first_lsn > c->committed_lsn ? p->first_lsn : c->committed_lsn + 1);
    }
    free(p);
}

void consensus_flush(consensus_t *c)
{
    if (c->batch_count == 0)
        return;
    size_t records_bytes = c->batch_bytes - ENTRY_HEADER_BYTES;
    size_t padded = (c->batch_bytes + 7u) & ~(size_t)7u;
    struct raft_buffer buf = {.base = raft_malloc(padded), .len = padded};
    proposal_t *p = calloc(1, sizeof(*p));
    uint64_t first_lsn = c->batch_first_lsn, last_lsn = c->state_lsn;
    uint8_t *header = c->batch;
    allot_u32_store_le(header, ENTRY_MAGIC);
    allot_u16_store_le(header + 4, ENTRY_VERSION);
    allot_u16_store_le(header + 6, 0);
    allot_u64_store_le(header + 8, first_lsn);
    allot_u32_store_le(header + 16, c->batch_count);
    allot_u32_store_le(header + 20, (uint32_t)records_bytes);
    c->batch_bytes = 0;
    c->batch_count = 0;
    int rv = RAFT_NOMEM;
    if (buf.base != NULL && p != NULL) {
        memcpy(buf.base, header, records_bytes + ENTRY_HEADER_BYTES);
        memset((uint8_t *)buf.base + records_bytes + ENTRY_HEADER_BYTES, 0,
               padded - records_bytes - ENTRY_HEADER_BYTES);
        p->c = c;
        p->first_lsn = first_lsn;
        p->last_lsn = last_lsn;
        p->req.data = p;
        rv = raft_apply(&c->raft, &p->req, &buf, 1, on_proposal_done);
    }
    if (rv != 0) {
        raft_free(buf.base);
        free(p);
        if (!c->lost_reported) { /* the state holds records no entry carries */
            c->lost_reported = true;
            c->writable = false;
            c->cb.lost_cb(c->cb.ctx, first_lsn);
        }
    }
}

/* ---- leadership ------------------------------------------------------------------------------ */

/* Say once per term that this leader's barrier failed (it is issued again at the next poll).
 * libraft's message joins its error's name when it said one (a failed write of the entry
 * leaves the io's message there; raft_barrier itself leaves none). */
static void barrier_failure_report(consensus_t *c, const char *what, int rv, bool said)
{
    if (c->barrier_failed_term == c->leader_term || c->cb.barrier_failed_cb == NULL)
        return;
    c->barrier_failed_term = c->leader_term;
    const char *detail = said ? raft_errmsg(&c->raft) : NULL;
    char message[384];
    snprintf(message, sizeof(message), "%s: %s%s%s", what, raft_strerror(rv),
             detail != NULL && detail[0] != '\0' ? ": " : "", detail != NULL ? detail : "");
    c->cb.barrier_failed_cb(c->cb.ctx, c->leader_term, message);
}

static void on_barrier(struct raft_barrier *req, int status)
{
    consensus_t *c = req->data;
    c->barrier_pending = false;
    if (c->stopped || status == RAFT_LEADERSHIPLOST)
        return; /* stepping down (libraft fails its requests first): the poll sees it next */
    if (status == 0 && persist_fault_hit(PERSIST_FAULT_BARRIER_CB) != 0)
        status = RAFT_IOERR;
    bool leader = raft_state(&c->raft) == RAFT_LEADER;
    /* Every entry before the barrier is applied: the state is the group's, and LSNs go on from
     * it. Only for the term it was issued in: a newer term needs its own barrier. */
    if (status == 0 && leader && c->barrier_term == c->raft.current_term)
        c->writable = true;
    else if (status != 0 && leader)
        barrier_failure_report(c, "barrier entry", status, true);
}

/* A leader that is not writable and has no barrier in flight issues one. */
static void barrier_issue(consensus_t *c)
{
    c->barrier.data = c;
    c->barrier_term = c->raft.current_term;
    int rv = persist_fault_hit(PERSIST_FAULT_BARRIER) != 0
                 ? RAFT_IOERR
                 : raft_barrier(&c->raft, &c->barrier, on_barrier);
    c->barrier_pending = rv == 0;
    if (rv != 0)
        barrier_failure_report(c, "raft_barrier", rv, false);
}

static void leadership_poll(consensus_t *c)
{
    int state = raft_state(&c->raft);
    raft_id leader_id = 0;
    const char *leader_address = NULL;
    raft_leader(&c->raft, &leader_id, &leader_address);
    if (leader_id != c->leader_id && leader_id != 0)
        c->leader_changes++;
    c->leader_id = leader_id;
    uint64_t term = c->raft.current_term;
    /* a new term of leadership (also one whose follower phase fell between two polls) */
    if (state != c->raft_state || (state == RAFT_LEADER && term != c->leader_term)) {
        c->raft_state = state;
        c->writable = false;
        if (state != RAFT_LEADER) {
            if (c->state_lsn > c->committed_lsn && !c->lost_reported && !c->stopped) {
                c->lost_reported = true;
                c->cb.lost_cb(c->cb.ctx, c->committed_lsn + 1);
            }
            return;
        }
        c->leader_term = term;
    }
    if (state == RAFT_LEADER && !c->writable && !c->barrier_pending && !c->lost_reported &&
        !c->stopped)
        barrier_issue(c);
}

static void on_poll(uv_check_t *check)
{
    consensus_t *c = check->data;
    if (!c->stopped)
        leadership_poll(c);
}

/* ---- snapshots for members that lag: the state's image on the wire --------------------------- */

/* The engine whose snapshot reads are wrapped: one per process (a rebuild closes the old one
 * before it opens the next). */
static consensus_t *snapshot_get_owner;

typedef struct image_work {
    uv_work_t work;
    consensus_t *c;
    struct raft_io_snapshot_get *req;
    struct raft_snapshot *snapshot;
    uint8_t *image; /* raft_malloc'd: header + state image */
    size_t image_bytes;
    int status;
} image_work_t;

/* A pool thread: a compact copy of state.lmdb into memory, behind the image header. */
static void image_build(uv_work_t *work)
{
    image_work_t *w = work->data;
    char path[] = "/tmp/allot-snapshot-XXXXXX";
    int fd = mkstemp(path);
    w->status = RAFT_IOERR;
    if (fd < 0)
        return;
    unlink(path);
    struct stat st;
    if (w->c->cb.image_cb(w->c->cb.ctx, fd) == 0 && fstat(fd, &st) == 0) {
        w->image_bytes = IMAGE_HEADER_BYTES + (size_t)st.st_size;
        w->image = raft_malloc(w->image_bytes);
        if (w->image != NULL &&
            pread(fd, w->image + IMAGE_HEADER_BYTES, (size_t)st.st_size, 0) == st.st_size)
            w->status = 0;
    }
    close(fd);
}

static void image_built(uv_work_t *work, int status)
{
    image_work_t *w = work->data;
    struct raft_snapshot *snapshot = w->snapshot;
    if (status == 0 && w->status == 0) {
        const uint8_t *d = snapshot->bufs[0].base;
        allot_u32_store_le(w->image, DESCRIPTOR_MAGIC);
        allot_u16_store_le(w->image + 4, DESCRIPTOR_VERSION);
        allot_u16_store_le(w->image + 6, DESCRIPTOR_IMAGE);
        allot_u64_store_le(w->image + 8, allot_u64_load_le(d + 8));
        allot_u64_store_le(w->image + 16, w->image_bytes - IMAGE_HEADER_BYTES);
        raft_free(snapshot->bufs[0].base);
        snapshot->bufs[0].base = w->image;
        snapshot->bufs[0].len = w->image_bytes;
        w->image = NULL;
    }
    raft_free(w->image);
    /* without an image the member gets the plain descriptor and stops with its message */
    w->c->raft_snapshot_got(w->req, snapshot, 0);
    free(w);
}

/* The leader read its snapshot to send it: add the state's image (built on a pool thread). */
static void on_snapshot_got(struct raft_io_snapshot_get *req, struct raft_snapshot *snapshot,
                            int status)
{
    consensus_t *c = snapshot_get_owner; /* raft's req leads to its own request only */
    image_work_t *w =
        status == 0 && snapshot->n_bufs == 1 && snapshot->bufs[0].len == DESCRIPTOR_BYTES
            ? calloc(1, sizeof(*w))
            : NULL;
    if (w == NULL) {
        c->raft_snapshot_got(req, snapshot, status);
        return;
    }
    w->c = c;
    w->req = req;
    w->snapshot = snapshot;
    w->work.data = w;
    if (uv_queue_work(c->loop, &w->work, image_build, image_built) != 0) {
        free(w);
        c->raft_snapshot_got(req, snapshot, status);
    }
}

static int image_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                              raft_io_snapshot_get_cb cb)
{
    consensus_t *c = consensus_of_io(io);
    c->raft_snapshot_got = cb;
    return c->io_snapshot_get(io, req, on_snapshot_got);
}

/* Write the image to <data-dir>/state.lmdb.installed: a temporary file synced, renamed, and
 * the directory synced. */
static int image_install(consensus_t *c, const uint8_t *image, size_t bytes)
{
    char tmp[sizeof(c->installed_path) + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", c->installed_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return ALLOT_EIO;
    int rc =
        persist_pwrite_all(fd, image, bytes, 0) == 0 && persist_fdatasync(fd) == 0 ? 0 : ALLOT_EIO;
    close(fd);
    if (rc == 0 &&
        (rename(tmp, c->installed_path) != 0 || persist_fsync_parent_dir(c->installed_path) != 0))
        rc = ALLOT_EIO;
    return rc;
}

/* A member stores a snapshot the leader sent: the image goes to disk first (synchronously, on
 * the loop: the member is behind anyway), then raft stores the plain descriptor. */
static int image_snapshot_put(struct raft_io *io, unsigned trailing,
                              struct raft_io_snapshot_put *req,
                              const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    consensus_t *c = consensus_of_io(io);
    struct raft_buffer *buf = snapshot->n_bufs == 1 ? &snapshot->bufs[0] : NULL;
    const uint8_t *d = buf != NULL ? buf->base : NULL;
    if (d == NULL || buf->len < IMAGE_HEADER_BYTES || allot_u32_load_le(d) != DESCRIPTOR_MAGIC ||
        !(allot_u16_load_le(d + 6) & DESCRIPTOR_IMAGE))
        return c->io_snapshot_put(io, trailing, req, snapshot, cb);
    uint64_t image_bytes = allot_u64_load_le(d + 16);
    if (image_bytes != buf->len - IMAGE_HEADER_BYTES)
        return RAFT_MALFORMED;
    if (image_install(c, d + IMAGE_HEADER_BYTES, image_bytes) != 0)
        return RAFT_IOERR;
    uint64_t lsn = allot_u64_load_le(d + 8);
    uint8_t *plain = raft_malloc(DESCRIPTOR_BYTES);
    if (plain == NULL)
        return RAFT_NOMEM;
    memcpy(plain, d, DESCRIPTOR_BYTES);
    allot_u16_store_le(plain + 6, 0);
    raft_free(buf->base);
    buf->base = plain;
    buf->len = DESCRIPTOR_BYTES;
    c->installed_lsn = lsn;
    return c->io_snapshot_put(io, trailing, req, snapshot, cb);
}

static void image_seam_install(consensus_t *c, const char *raft_dir)
{
    snprintf(c->installed_path, sizeof(c->installed_path), "%s/../%s", raft_dir,
             CONSENSUS_INSTALLED_NAME);
    snapshot_get_owner = c;
    c->io_snapshot_get = c->io.snapshot_get;
    c->io_snapshot_put = c->io.snapshot_put;
    c->io.snapshot_get = image_snapshot_get;
    c->io.snapshot_put = image_snapshot_put;
}

/* ---- the partition seam ---------------------------------------------------------------------- *
 * With ALLOT_RAFT_PARTITION_FILE=/path in the environment, this node neither sends nor receives a
 * raft message while /path exists (checked per message): a network partition around it, for the
 * tests; the client port keeps working. "%u" in the path is replaced by the node id (one setting
 * for a whole group: /tmp/x/partition-%u). Without the variable nothing is wrapped. */

static bool partitioned(const consensus_t *c)
{
    struct stat st;
    return c->partition_file != NULL && stat(c->partition_file, &st) == 0;
}

static int partition_send(struct raft_io *io, struct raft_io_send *req,
                          const struct raft_message *message, raft_io_send_cb cb)
{
    consensus_t *c = consensus_of_io(io);
    if (partitioned(c))
        return RAFT_NOCONNECTION; /* as when the peer cannot be reached */
    return c->io_send(io, req, message, cb);
}

/* A message dropped on arrival: free what raft would have taken over. */
static void partition_recv(struct raft_io *io, struct raft_message *message)
{
    consensus_t *c = consensus_of_io(io);
    if (!partitioned(c)) {
        c->raft_recv(io, message);
        return;
    }
    if (message->type == RAFT_IO_APPEND_ENTRIES && message->append_entries.n_entries > 0) {
        void *batch = NULL;
        for (unsigned i = 0; i < message->append_entries.n_entries; i++)
            if (message->append_entries.entries[i].batch != batch)
                raft_free(batch = message->append_entries.entries[i].batch);
        raft_free(message->append_entries.entries);
    } else if (message->type == RAFT_IO_INSTALL_SNAPSHOT) {
        raft_configuration_close(&message->install_snapshot.conf);
        raft_free(message->install_snapshot.data.base);
    }
}

static int partition_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                           raft_io_recv_cb recv)
{
    consensus_t *c = consensus_of_io(io);
    c->raft_recv = recv;
    return c->io_start(io, msecs, tick, partition_recv);
}

static void partition_seam_install(consensus_t *c)
{
    const char *path = getenv("ALLOT_RAFT_PARTITION_FILE");
    if (path == NULL || path[0] == '\0')
        return;
    /* "%u" in the path stands for this node's id: one variable for a whole group */
    const char *id = strstr(path, "%u");
    if (id != NULL)
        snprintf(c->partition_path, sizeof(c->partition_path), "%.*s%u%s", (int)(id - path), path,
                 c->node_id, id + 2);
    else
        snprintf(c->partition_path, sizeof(c->partition_path), "%s", path);
    c->partition_file = c->partition_path;
    c->io_start = c->io.start;
    c->io_send = c->io.send;
    c->io.start = partition_start;
    c->io.send = partition_send;
}

/* ---- open and close -------------------------------------------------------------------------- */

static int configuration_bootstrap(consensus_t *c, char *message, size_t message_bytes)
{
    struct raft_configuration configuration;
    raft_configuration_init(&configuration);
    int rv = 0;
    for (size_t i = 0; i < c->member_count && rv == 0; i++)
        rv = raft_configuration_add(&configuration, c->members[i].id, c->members[i].raft_address,
                                    RAFT_VOTER);
    if (rv == 0)
        rv = raft_bootstrap(&c->raft, &configuration);
    raft_configuration_close(&configuration);
    if (rv == RAFT_CANTBOOTSTRAP)
        return 0; /* the group exists: its configuration is in the log */
    if (rv != 0) {
        snprintf(message, message_bytes, "raft bootstrap: %s", raft_errmsg(&c->raft));
        return ALLOT_EIO;
    }
    return 0;
}

static int engine_start(consensus_t *c, const consensus_config_t *config, char *message,
                        size_t message_bytes)
{
    const consensus_member_t *self = NULL;
    for (size_t i = 0; i < c->member_count; i++)
        if (c->members[i].id == c->node_id)
            self = &c->members[i];
    if (self == NULL) {
        snprintf(message, message_bytes, "node %u is not among the members", c->node_id);
        return ALLOT_EINVALID_ARGUMENT;
    }
    int rv = raft_uv_tcp_init(&c->transport, c->loop);
    if (rv != 0) {
        snprintf(message, message_bytes, "raft transport: %s", raft_strerror(rv));
        return ALLOT_EIO;
    }
    rv = raft_uv_init(&c->io, c->loop, config->dir, &c->transport);
    if (rv != 0) {
        snprintf(message, message_bytes, "raft storage in %s: %s", config->dir, c->io.errmsg);
        raft_uv_tcp_close(&c->transport);
        return ALLOT_EIO;
    }
    /* raft_uv implements async_work (the pool thread a snapshot waits on) but 0.15 still labels
     * its io version 1, which raft_init refuses for an fsm with snapshot_async; later releases
     * label the same io version 2. */
    if (c->io.async_work != NULL && c->io.version < 2)
        c->io.version = 2;
    partition_seam_install(c);
    image_seam_install(c, config->dir);
    rv = raft_init(&c->raft, &c->io, &c->fsm, c->node_id, self->raft_address);
    if (rv != 0) {
        snprintf(message, message_bytes, "raft: %s", raft_errmsg(&c->raft));
        raft_uv_close(&c->io);
        raft_uv_tcp_close(&c->transport);
        return ALLOT_EIO;
    }
    c->raft.data = c;
    return 0;
}

static void engine_configure(consensus_t *c, const consensus_config_t *config)
{
    raft_set_election_timeout(&c->raft, config->election_timeout_ms);
    raft_set_heartbeat_timeout(&c->raft, config->heartbeat_ms);
    raft_set_pre_vote(&c->raft, true);
    raft_set_snapshot_threshold(&c->raft, config->snapshot_entries);
    raft_set_snapshot_trailing(&c->raft, config->trailing_entries);
}

/* Why binding this node's raft address fails (errno), or 0 when it binds (as libuv binds it:
 * SO_REUSEADDR). */
static int raft_address_bind_errno(const char *address)
{
    char host[ALLOT_ADDRESS_BYTES_MAX];
    snprintf(host, sizeof(host), "%s", address);
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        return EINVAL;
    *colon = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *info = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &info) != 0 || info == NULL)
        return EINVAL;
    int err = 0, on = 1;
    int fd = socket(info->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, info->ai_addr, info->ai_addrlen) != 0)
        err = errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(info);
    return err;
}

/* raft_start's failure, said: libraft's message, or (it leaves none when its transport cannot
 * listen) why this node's raft address cannot be bound. */
static void start_failure_describe(consensus_t *c, int rv, char *message, size_t message_bytes)
{
    const char *detail = raft_errmsg(&c->raft);
    if (detail != NULL && detail[0] != '\0') {
        snprintf(message, message_bytes, "raft start: %s", detail);
        return;
    }
    const char *address = NULL;
    for (size_t i = 0; i < c->member_count; i++)
        if (c->members[i].id == c->node_id)
            address = c->members[i].raft_address;
    int err = address != NULL ? raft_address_bind_errno(address) : 0;
    if (err != 0)
        snprintf(message, message_bytes, "raft start: listen on %s: %s", address, strerror(err));
    else
        snprintf(message, message_bytes, "raft start: %s", raft_strerror(rv));
}

/* The engine and the poll handle close apart; the last one frees consensus. */
static void close_step(consensus_t *c)
{
    if (--c->close_pending > 0)
        return;
    void (*close_cb)(void *) = c->close_cb;
    void *close_ctx = c->close_ctx;
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->checkpoint_changed);
    free(c->batch);
    free(c);
    if (close_cb != NULL)
        close_cb(close_ctx);
}

static void on_raft_closed(struct raft *raft)
{
    consensus_t *c = raft->data;
    raft_uv_close(&c->io);
    raft_uv_tcp_close(&c->transport);
    close_step(c);
}

static void on_poll_closed(uv_handle_t *handle)
{
    close_step(handle->data);
}

int consensus_open(uv_loop_t *loop, const consensus_config_t *config,
                   const consensus_callbacks_t *callbacks, consensus_t **out, char *message,
                   size_t message_bytes)
{
    *out = NULL;
    if (config->member_count == 0 || config->member_count > ALLOT_GROUP_MEMBERS_MAX) {
        snprintf(message, message_bytes, "a group has 1 to %d members", ALLOT_GROUP_MEMBERS_MAX);
        return ALLOT_EINVALID_ARGUMENT;
    }
    if (mkdir(config->dir, 0750) != 0 && errno != EEXIST) {
        snprintf(message, message_bytes, "%s: %s", config->dir, strerror(errno));
        return ALLOT_EIO;
    }
    if (persist_fault_env_load() != 0) { /* the test seam: a group member opens no WAL */
        snprintf(message, message_bytes, "malformed ALLOT_FAULT");
        return ALLOT_EINVALID_ARGUMENT;
    }
    consensus_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ALLOT_ENOMEM;
    c->loop = loop;
    c->cb = *callbacks;
    c->node_id = config->node_id;
    memcpy(c->members, config->members, config->member_count * sizeof(consensus_member_t));
    c->member_count = config->member_count;
    c->state_lsn = c->committed_lsn = c->checkpoint_durable_lsn = config->applied_lsn;
    c->raft_state = RAFT_UNAVAILABLE;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->checkpoint_changed, NULL);
    c->fsm = (struct raft_fsm){.version = CONSENSUS_FSM_VERSION,
                               .data = c,
                               .apply = fsm_apply,
                               .snapshot = fsm_snapshot,
                               .restore = fsm_restore,
                               .snapshot_finalize = fsm_snapshot_finalize,
                               .snapshot_async = fsm_snapshot_async};
    int rc = engine_start(c, config, message, message_bytes);
    if (rc != 0) {
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->checkpoint_changed);
        free(c);
        return rc;
    }
    engine_configure(c, config);
    *out = c; /* callbacks may run inside raft_start (a lone voter applies its log there) */
    rc = configuration_bootstrap(c, message, message_bytes);
    int rv = rc == 0 ? raft_start(&c->raft) : 0;
    if (rc == 0 && rv != 0) {
        start_failure_describe(c, rv, message, message_bytes);
        rc = ALLOT_EIO;
    }
    uv_check_init(loop, &c->poll);
    c->poll.data = c;
    if (rc != 0 || c->stopped) {
        if (rc == 0) {
            snprintf(message, message_bytes, "the raft log could not be loaded");
            rc = ALLOT_ECORRUPT;
        }
        *out = NULL;
        consensus_close(c, NULL, NULL);
        return rc;
    }
    uv_check_start(&c->poll, on_poll);
    return 0;
}

void consensus_close(consensus_t *c, void (*close_cb)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&c->lock);
    c->closing = true;
    pthread_cond_broadcast(&c->checkpoint_changed);
    pthread_mutex_unlock(&c->lock);
    c->stopped = true;
    c->writable = false;
    c->close_cb = close_cb;
    c->close_ctx = ctx;
    c->close_pending = 2;
    uv_close((uv_handle_t *)&c->poll, on_poll_closed);
    raft_close(&c->raft, on_raft_closed);
}

/* ---- what the server reads ------------------------------------------------------------------- */

uint64_t consensus_last_lsn(const consensus_t *c)
{
    return c->state_lsn;
}

consensus_role_t consensus_role(const consensus_t *c)
{
    if (c->stopped)
        return CONSENSUS_STOPPED;
    switch (c->raft_state) {
    case RAFT_LEADER:
        return CONSENSUS_LEADER;
    case RAFT_CANDIDATE:
        return CONSENSUS_CANDIDATE;
    case RAFT_FOLLOWER:
        return CONSENSUS_FOLLOWER;
    default:
        return CONSENSUS_STOPPED;
    }
}

bool consensus_writable(const consensus_t *c)
{
    return c->writable && !c->stopped;
}

static const consensus_member_t *member_find(const consensus_t *c, uint64_t id)
{
    for (size_t i = 0; i < c->member_count; i++)
        if (c->members[i].id == id)
            return &c->members[i];
    return NULL;
}

const consensus_member_t *consensus_leader(const consensus_t *c)
{
    return c->leader_id != 0 ? member_find(c, c->leader_id) : NULL;
}

size_t consensus_member_count(const consensus_t *c)
{
    return c->raft.configuration.n;
}

bool consensus_member_at(const consensus_t *c, size_t i, consensus_member_t *out)
{
    if (i >= c->raft.configuration.n)
        return false;
    const struct raft_server *server = &c->raft.configuration.servers[i];
    const consensus_member_t *known = member_find(c, server->id);
    memset(out, 0, sizeof(*out));
    out->id = (uint32_t)server->id;
    snprintf(out->raft_address, sizeof(out->raft_address), "%s", server->address);
    if (known != NULL)
        memcpy(out->client_address, known->client_address, sizeof(out->client_address));
    out->voter = server->role == RAFT_VOTER;
    return true;
}

uint64_t consensus_commit_index(const consensus_t *c)
{
    return c->raft.commit_index;
}

uint64_t consensus_applied_index(const consensus_t *c)
{
    return raft_last_applied((struct raft *)&c->raft);
}

uint64_t consensus_snapshot_index(const consensus_t *c)
{
    return c->raft.log.snapshot.last_index;
}

uint64_t consensus_term(const consensus_t *c)
{
    return c->raft.current_term;
}

uint64_t consensus_leader_changes(const consensus_t *c)
{
    return c->leader_changes;
}

void consensus_follower_lag(const consensus_t *c, uint64_t *lag, uint32_t *ids, size_t count,
                            size_t *filled)
{
    *filled = 0;
    if (c->raft_state != RAFT_LEADER || c->raft.leader_state.progress == NULL)
        return;
    raft_index last = raft_last_index((struct raft *)&c->raft);
    for (unsigned i = 0; i < c->raft.configuration.n && *filled < count; i++) {
        const struct raft_server *server = &c->raft.configuration.servers[i];
        if (server->id == c->node_id)
            continue;
        raft_index match = c->raft.leader_state.progress[i].match_index;
        ids[*filled] = (uint32_t)server->id;
        lag[*filled] = last > match ? last - match : 0;
        (*filled)++;
    }
}

/* ---- membership ------------------------------------------------------------------------------ */

typedef struct membership_change {
    struct raft_change req;
    consensus_t *c;
    uint32_t id;
} membership_change_t;

/* The new member caught up as a spare: make it a voter. */
static void on_member_added(struct raft_change *req, int status)
{
    membership_change_t *change = req->data;
    if (status == 0 && !change->c->stopped &&
        raft_assign(&change->c->raft, &change->req, change->id, RAFT_VOTER, on_member_added) == 0)
        return; /* called again when the assignment is committed (status 0, then RAFT_BADROLE) */
    free(change);
}

static void on_member_removed(struct raft_change *req, int status)
{
    (void)status;
    free(req->data);
}

/* Remember a member's client address (for NOT_LEADER and server.info). */
static void member_remember(consensus_t *c, const consensus_member_t *member)
{
    consensus_member_t *known = (consensus_member_t *)member_find(c, member->id);
    if (known == NULL && c->member_count < ALLOT_GROUP_MEMBERS_MAX)
        known = &c->members[c->member_count++];
    if (known != NULL)
        *known = *member;
}

int consensus_member_add(consensus_t *c, const consensus_member_t *member)
{
    if (c->raft_state != RAFT_LEADER)
        return ALLOT_ENOT_LEADER;
    if (c->raft.configuration.n >= ALLOT_GROUP_MEMBERS_MAX)
        return ALLOT_ETOO_LARGE;
    membership_change_t *change = calloc(1, sizeof(*change));
    if (change == NULL)
        return ALLOT_ENOMEM;
    change->c = c;
    change->id = member->id;
    change->req.data = change;
    int rv = raft_add(&c->raft, &change->req, member->id, member->raft_address, on_member_added);
    if (rv != 0) {
        free(change);
        return rv == RAFT_DUPLICATEID || rv == RAFT_DUPLICATEADDRESS ? ALLOT_ECONFLICT
                                                                     : ALLOT_EUNAVAILABLE;
    }
    member_remember(c, member);
    return 0;
}

int consensus_member_remove(consensus_t *c, uint32_t id)
{
    if (c->raft_state != RAFT_LEADER)
        return ALLOT_ENOT_LEADER;
    membership_change_t *change = calloc(1, sizeof(*change));
    if (change == NULL)
        return ALLOT_ENOMEM;
    change->c = c;
    change->id = id;
    change->req.data = change;
    int rv = raft_remove(&c->raft, &change->req, id, on_member_removed);
    if (rv != 0) {
        free(change);
        return rv == RAFT_BADID ? ALLOT_ENOT_FOUND : ALLOT_EUNAVAILABLE;
    }
    return 0;
}

static void on_transfer(struct raft_transfer *req)
{
    free(req);
}

int consensus_transfer(consensus_t *c, uint32_t to_id)
{
    if (c->raft_state != RAFT_LEADER)
        return ALLOT_ENOT_LEADER;
    if (to_id == c->node_id)
        return 0; /* this node leads already */
    if (to_id != 0 && member_find(c, to_id) == NULL)
        return ALLOT_ENOT_FOUND;
    struct raft_transfer *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return ALLOT_ENOMEM;
    int rv = raft_transfer(&c->raft, req, to_id, on_transfer);
    if (rv != 0) {
        free(req);
        return rv == RAFT_NOTLEADER ? ALLOT_ENOT_LEADER : ALLOT_EUNAVAILABLE;
    }
    return 0;
}
