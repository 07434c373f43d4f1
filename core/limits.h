/* limits.h - every bound in Allot, in one place, named with its unit.
 *
 * Contract: no queue, buffer, batch or map in Allot grows past a limit defined here, and every
 * default lives here too. Defaults marked "(operator)" can be overridden at start-up (command
 * line or config file) within the range given by their _FLOOR and _CEILING (net/options.c);
 * the others are compile-time. Grouped by the room that enforces them; the _Static_asserts at
 * the end state how the limits relate to each other. Not here: format constants (header sizes,
 * format versions: with the format they describe), the size of a buffer that only carries an
 * error message (*_MESSAGE_BYTES_MAX, *_ERROR_BYTES: with the function that fills it), and facts
 * (a page size, glibc's defaults). Include from any room; no code, no state.
 */
#ifndef ALLOT_CORE_LIMITS_H
#define ALLOT_CORE_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* ---- wire / requests (net/, client/) ------------------------------------------------------ */
/* Largest single MessagePack-RPC request accepted (operator). Over it: TOO_LARGE, then close. */
#define ALLOT_REQUEST_BYTES_MAX_DEFAULT (1u << 20)
/* Upper bound an operator may raise request_bytes_max to. */
#define ALLOT_REQUEST_BYTES_MAX_CEILING (64u << 20)
/* Deepest nesting of arrays/maps inside one request. */
#define ALLOT_REQUEST_DEPTH_MAX 16
/* Deepest nesting of arrays/maps in any MessagePack object the code scans: a reply the client
 * library reads (what msgpack-c can decode), an object the bench sizes. client/frame.h's scanner,
 * the one header scanner of the code base, holds this many open containers. */
#define ALLOT_MSGPACK_DEPTH_MAX 32
/* Requests decoded but not yet answered on one connection (operator); reading pauses above. */
#define ALLOT_INFLIGHT_REQUESTS_MAX_DEFAULT 1024
/* Reply bytes queued to one connection before it is considered a non-reader and closed
 * (operator). */
#define ALLOT_OUTPUT_BYTES_MAX_DEFAULT (8u << 20)
/* Concurrent client connections (operator); over it a new connection is accepted then closed. */
#define ALLOT_CONNECTIONS_MAX_DEFAULT 10000
/* All connections' buffered requests and replies together (operator); over it new requests
 * are answered OVERLOADED. */
#define ALLOT_BUFFER_BYTES_MAX_DEFAULT (1ull << 30)
/* Bytes read from a socket per read callback, into one buffer shared by every connection; a
 * connection keeps only the unconsumed tail (a partial request), sized to what arrived. */
#define ALLOT_READ_CHUNK_BYTES (64u * 1024)
/* Requests answered at once within one batch (one read, one durable report) whose latency is
 * recorded when the batch ends, from one clock read for all of them; a batch with more is ended
 * and a new one begun (two more clock reads). */
#define ALLOT_BATCH_REPLIES_MAX 256
/* The look-ahead over a read batch (net/peek.h): requests peeked and loaded ahead together,
 * bytes of a request the peek reads at most (a larger one is not peeked), SKUs of an avail.get
 * peeked at most (a larger listing is not: its handler loads its SKUs ahead itself). */
#define ALLOT_PEEK_GROUP_REQUESTS    8
#define ALLOT_PEEK_REQUEST_BYTES_MAX 1024
#define ALLOT_PEEK_SKUS_MAX          4
/* Below this the tables lookups go through (SKU index, records, positions, hold index, holds)
 * stay in the caches and nothing is loaded ahead (allot_prefetch_pays): twice the 1 MiB L2 of a
 * core of the machine measured (docs/benchmarks.md, "Issue 20, look-ahead over a read batch"). */
#define ALLOT_PREFETCH_TABLE_BYTES_MIN (2u << 20)
/* Smallest allocation for a connection's unconsumed input. */
#define ALLOT_INPUT_TAIL_BYTES_MIN 256
/* Emptied reply buffers of the first size a reply buffer gets (msgpack-c's 8 KiB) that the server
 * keeps for the next connection with something to send instead of freeing them (512 KiB at
 * most): a connection still holds no buffer while it has nothing to send. */
#define ALLOT_REPLY_BUFFERS_SPARE_MAX 64
/* Unfinished requests of all connections together may hold at most buffer_bytes_max divided by
 * this; over it the connections holding the largest ones are closed (the rest of the budget is
 * left for replies). */
#define ALLOT_BUFFER_INPUT_SHARE_DIVISOR 2
/* With authentication on: how long a connection may stay unauthenticated (operator), and how
 * many may be unauthenticated at once (operator; by default connections_max / the divisor).
 * Over the cap, or at connections_max, the oldest unauthenticated connection is closed to make
 * room, so idle sockets cannot lock authenticating clients out. */
#define ALLOT_AUTH_TIMEOUT_MS_DEFAULT             10000
#define ALLOT_UNAUTHENTICATED_CONNECTIONS_DIVISOR 10
/* Longest method name. */
#define ALLOT_METHOD_BYTES_MAX 64
/* Named arguments in one request's params map. */
#define ALLOT_PARAMS_KEYS_MAX 32
/* Client-provided text shown in an error message (an unknown method or key, an id): at most this
 * many bytes of its escaped rendering (allot_str_echo in core/common.h), then "...". */
#define ALLOT_ECHO_BYTES_MAX 64

/* ---- identifiers (core/) ------------------------------------------------------------------- */
/* Every id (SKU, location, reservation, order, shipment, return, customer, key) is 1..128 bytes
 * of UTF-8. */
#define ALLOT_ID_BYTES_MAX 128
/* A reservation id of at most this many bytes is kept in its record (core/reservation.h); a
 * longer one in the hold's block. */
#define ALLOT_RESERVATION_ID_INLINE_BYTES 31

/* ---- inventory (core/) --------------------------------------------------------------------- */
#define ALLOT_LOCATIONS_MAX 65535
#define ALLOT_SKUS_MAX      (64u * 1024 * 1024)
/* SKUs in one avail.get. */
#define ALLOT_AVAIL_SKUS_MAX 1000
/* Lines in one reservation or order. */
#define ALLOT_LINES_MAX 100
/* Largest quantity or on_hand: keeps every sum of quantities far from int64 overflow. */
#define ALLOT_QUANTITY_MAX ((int64_t)1 << 40)
/* Reservation time-to-live bounds and default, in seconds. */
#define ALLOT_RESERVATION_TTL_S_MIN     1
#define ALLOT_RESERVATION_TTL_S_MAX     86400
#define ALLOT_RESERVATION_TTL_S_DEFAULT 900
/* Default pickup search radius. */
#define ALLOT_PICKUP_RADIUS_KM_DEFAULT 50.0
/* Free-text fields (reason, instructions). */
#define ALLOT_TEXT_BYTES_MAX 1024
/* Live reservations held at once (operator). */
#define ALLOT_RESERVATIONS_MAX_DEFAULT (4u * 1024 * 1024)
/* Idempotency memory: ended reservation ids and stock.adjust keys are remembered for at least
 * this long and at most this many entries (operator). */
#define ALLOT_IDEMPOTENCY_AGE_MS_DEFAULT      (24LL * 3600 * 1000)
#define ALLOT_IDEMPOTENCY_ENTRIES_MAX_DEFAULT (4u * 1024 * 1024)
/* Expired reservations released per expiry tick (the rest follow on the next tick). */
#define ALLOT_EXPIRY_BATCH_MAX 4096
/* Times in records and state (ms since the Unix epoch): 0 .. the last ms of year 9999 UTC.
 * Decoders refuse other values as corrupt, so that a difference of two times, or a time plus a
 * TTL or a window, never overflows int64. (stock.set's as_of_ms is the client's version stamp,
 * only ever compared: any int64.) */
#define ALLOT_TIME_MS_MIN 0LL
#define ALLOT_TIME_MS_MAX 253402300799999LL
/* A location's count of shipments on one day (daily_capacity bookkeeping). */
#define ALLOT_CAPACITY_COUNT_MAX ALLOT_QUANTITY_MAX
/* A location's priority (lower is preferred) and its default; its daily shipment capacity. */
#define ALLOT_PRIORITY_DEFAULT   100
#define ALLOT_PRIORITY_MIN       ((int64_t)INT32_MIN)
#define ALLOT_PRIORITY_MAX       ((int64_t)INT32_MAX)
#define ALLOT_DAILY_CAPACITY_MAX ((int64_t)INT32_MAX)
/* Longest same-day radius accepted: half the Earth's circumference. */
#define ALLOT_RADIUS_KM_MAX 20038.0

/* ---- delivery promise: location calendars and transit bands (core/promise/) --------------- */
/* Longest IANA time-zone name a location may name ("America/Argentina/ComodRivadavia" is 32). */
#define ALLOT_TIMEZONE_BYTES_MAX 64
/* Holidays one location keeps (local dates; duplicates folded). Over it: TOO_LARGE. */
#define ALLOT_HOLIDAYS_MAX 64
/* Work days between the first work day and dispatch (location.put processing_days). */
#define ALLOT_PROCESSING_DAYS_MAX 30
/* Transit bands of one method (transit.set), and the business days one band may take. */
#define ALLOT_TRANSIT_BANDS_MAX 16
#define ALLOT_TRANSIT_DAYS_MAX  60
/* Offset transitions of one zone description core evaluates (the years a promise may span), and
 * of one zone in one year as the edge reads them from the tz database (real zones: at most 4). */
#define ALLOT_ZONE_TRANSITIONS_MAX      64
#define ALLOT_ZONE_YEAR_TRANSITIONS_MAX 8
/* Years a zone description covers: the ready instant's year, one before and this many after
 * (the longest promise spans ALLOT_PROMISE_SEARCH_DAYS_MAX days, under three years). */
#define ALLOT_ZONE_YEARS_AHEAD 3
/* Days a promise looks ahead of its ready instant at most: a work day comes at least once a
 * week (each holiday may cost a week more), a business day of transit within three days. */
#define ALLOT_PROMISE_SEARCH_DAYS_MAX                                                              \
    (7 * (2 + ALLOT_PROCESSING_DAYS_MAX + ALLOT_HOLIDAYS_MAX) + 2 * ALLOT_TRANSIT_DAYS_MAX)
/* (zone, year) tables the edge keeps resolved (net/zone.c); a full cache is emptied. */
#define ALLOT_ZONE_CACHE_ENTRIES 256
/* Incoming supply entries one avail.get item shows (earliest first). */
#define ALLOT_PROMISE_INCOMING_MAX 16

/* ---- orders (core/) ------------------------------------------------------------------------- */
/* Bounds of one order (over them: TOO_LARGE). */
#define ALLOT_ORDER_SHIPMENTS_MAX     64
#define ALLOT_ORDER_ITEMS_MAX         1024 /* shipment items plus return items */
#define ALLOT_ORDER_RETURNS_MAX       32
#define ALLOT_ORDER_HISTORY_MAX       256
#define ALLOT_ORDER_ADDRESS_BYTES_MAX 4096
#define ALLOT_ORDER_BACKORDERS_MAX    1024 /* backordered parts of lines: {line, supply, qty} */
/* Orders in one order.list page: by default, and at most. */
#define ALLOT_ORDER_LIST_LIMIT_DEFAULT 20
#define ALLOT_ORDER_LIST_LIMIT_MAX     100
/* Orders evicted per allot_orders_evict_aged call by the server. */
#define ALLOT_ORDERS_EVICT_BATCH_MAX 4096
/* Default age after which ended orders leave memory (operator: orders_archive_age_ms). */
#define ALLOT_ORDERS_ARCHIVE_AGE_MS_DEFAULT (7LL * 24 * 3600 * 1000)

/* ---- SKU settings and flash sales (core/sale/) ---------------------------------------------- */
/* SKUs with settings (sku.put), and of them those with a waiting room at once (over: TOO_LARGE). */
#define ALLOT_SKU_SETTINGS_MAX (1u << 20)
#define ALLOT_QUEUED_SKUS_MAX  64
/* Tickets one queued SKU holds (waiting, admitted, used or expired; over: OVERLOADED), and all
 * queued SKUs together. Tickets stay until the SKU's queue is removed (sku.put queue: nil). */
#define ALLOT_QUEUE_TICKETS_PER_SKU_MAX (1u << 20)
#define ALLOT_QUEUE_TICKETS_MAX         (4u << 20)
/* Admission rate of a queue (tickets per second) and the life of its tokens. */
#define ALLOT_QUEUE_RATE_PER_S_MAX  100000
#define ALLOT_QUEUE_TOKEN_TTL_S_MIN 1
#define ALLOT_QUEUE_TOKEN_TTL_S_MAX 86400
/* Tickets admitted by one queue.admit record (more wait for the next record of the same tick). */
#define ALLOT_QUEUE_ADMIT_BATCH_MAX 4096
/* The least retry_after_ms a QUEUED reply advises (admission runs on the server's housekeeping). */
#define ALLOT_QUEUE_RETRY_AFTER_MS_MIN 250
/* Tokens expired per housekeeping step (one small record each), and queue.admit records per
 * housekeeping tick (each admits up to ALLOT_QUEUE_ADMIT_BATCH_MAX tickets). */
#define SERVER_QUEUE_EXPIRY_STEP_MAX   512
#define SERVER_QUEUE_ADMIT_RECORDS_MAX 256
_Static_assert((long long)ALLOT_QUEUE_RATE_PER_S_MAX <=
                   (long long)SERVER_QUEUE_ADMIT_RECORDS_MAX * ALLOT_QUEUE_ADMIT_BATCH_MAX,
               "one housekeeping tick admits a second's worth of the fastest queue");
_Static_assert(ALLOT_QUEUE_TICKETS_PER_SKU_MAX <= ALLOT_QUEUE_TICKETS_MAX,
               "one queue fits in the tickets of all");
_Static_assert(ALLOT_QUEUE_ADMIT_BATCH_MAX <= UINT16_MAX, "queue.admit counts in a u16");

/* ---- future supply (core/supply/) ---------------------------------------------------------- */
/* Supplies the state holds (open, received or cancelled), and of them one SKU's (supply.list
 * answers them in one reply): a new one past either evicts the SKU's supply that ended first;
 * TOO_LARGE when all of the SKU's are open. */
#define ALLOT_SUPPLIES_MAX         (1u << 20)
#define ALLOT_SUPPLIES_PER_SKU_MAX 256
_Static_assert(ALLOT_SUPPLIES_PER_SKU_MAX <= ALLOT_SUPPLIES_MAX, "one SKU's fit in all");

/* ---- persistence (persist/) ---------------------------------------------------------------- */
/* Size of one preallocated WAL segment (operator). */
#define ALLOT_WAL_SEGMENT_BYTES_DEFAULT (64u << 20)
/* Largest single WAL record payload. */
#define ALLOT_WAL_RECORD_BYTES_MAX (4u << 20)
/* Free WAL space (batch buffer and allocated segment) required before a write command runs;
 * below it writes answer OVERLOADED. A larger event is still checked exactly when appended. */
#define ALLOT_WAL_HEADROOM_BYTES (64u * 1024)
/* Bytes appended in one loop iteration before the batch is cut and handed over. */
#define ALLOT_WAL_BATCH_BYTES_MAX (16u << 20)
/* Adaptive group commit (--fsync always --wal-linger-us N, persist/wal.h; N is
 * ALLOT_WAL_LINGER_US_DEFAULT unless set, 0 = off): right after a batch became durable, when at
 * least ALLOT_WAL_LINGER_ARRIVALS_MIN records arrived while it was committed, the next one waits
 * for more records at most as long as that commit took and at most N us; N is at most
 * ALLOT_WAL_LINGER_US_MAX; a batch of ALLOT_WAL_LINGER_BYTES or more (or half the batch buffer)
 * goes at once. Fewer arrivals never wait: a lone client with one request in flight does not. */
#define ALLOT_WAL_LINGER_US_MAX       500u
#define ALLOT_WAL_LINGER_US_DEFAULT   500u
#define ALLOT_WAL_LINGER_ARRIVALS_MIN 4u
#define ALLOT_WAL_LINGER_BYTES        (16u * 1024)

/* What --wal-segment-bytes may be set to (the WAL itself accepts WAL_SEGMENT_BYTES_MIN..MAX). */
#define ALLOT_WAL_SEGMENT_BYTES_FLOOR   1048576
#define ALLOT_WAL_SEGMENT_BYTES_CEILING 1073741824
/* Smallest and largest segment file accepted (config and replay). */
#define WAL_SEGMENT_BYTES_MIN 4096u
#define WAL_SEGMENT_BYTES_MAX (1ull << 30)
/* Segment files one directory may hold (replay refuses more). */
#define WAL_SEGMENTS_MAX 65536u
/* Segments a wal_preload_t holds at once (read ahead + the one being replayed): the default
 * allotd uses (3 x 64 MiB) and the largest accepted. */
#define WAL_PRELOAD_SEGMENTS_DEFAULT 3u
#define WAL_PRELOAD_SEGMENTS_MAX     4u
/* Segments the read-ahead asks the kernel to read ahead of the one it loads (posix_fadvise). */
#define WAL_PRELOAD_ADVISE_AHEAD 8u
/* Period of the WAL writer's retry when a segment could not be allocated (disk full). */
#define WAL_ALLOCATE_RETRY_MS_DEFAULT 1000u
/* --fsync interval:MS: the longest MS the WAL accepts, and the default MS. */
#define WAL_FSYNC_INTERVAL_MS_MAX       60000u
#define ALLOT_FSYNC_INTERVAL_MS_DEFAULT 10
/* Zeros written per call where a file system lacks fallocate, and to zero a torn tail. */
#define WAL_ZERO_CHUNK_BYTES (64u * 1024)
/* The spare's fill stays at most this far ahead of the writer's end in the active segment
 * (persist/wal.h, "Written before use": it is needed when the active segment is full), and the
 * reaper looks again this often while it waits for the writer. Filled as fast as the flush gate
 * lets it, a 64 MiB spare took 0.5 s of 256 KiB windows, one in every WAL flush, right after
 * each rollover: the slowest flushes of an open-loop run (docs/benchmarks.md, "Issue 20, the
 * host's floor and the checkpoint's share"). */
#define WAL_ZERO_LEAD_BYTES_DEFAULT (8u << 20)
#define WAL_ZERO_PACE_POLL_MS       10u
/* A deleted segment is shrunk this much at a time (ftruncate + fsync) before its unlink, so that
 * the discard of its blocks (a file system mounted with discard) reaches the disk this much at a
 * time: the disk's cache flush that ends each WAL fdatasync pays for a discard queued before it
 * like for a write, and one 64 MiB discard made the fdatasyncs of its moment wait 40-80 ms. About
 * what a flush may find queued from background work (docs/benchmarks.md, "Issue 20, background
 * writes paced"); 64 steps for a 64 MiB segment. */
#define WAL_SHRINK_STEP_BYTES (1u << 20)
/* Paths persist builds in the data directory (WAL, LMDB, lock file, fault seam file). */
#define WAL_PATH_BYTES_MAX        4096u
#define CHECKPOINT_PATH_BYTES_MAX 4096u
#define DIRLOCK_PATH_BYTES_MAX    4096u
#define FAULT_PATH_BYTES_MAX      4096
/* Initial LMDB map. state.lmdb is opened with MDB_WRITEMAP: the file is as large as the map and
 * allocated on disk (persist/checkpoint.c, MEMORY). */
#define CHECKPOINT_MAP_BYTES_DEFAULT (256ull << 20)
/* The map is doubled on MDB_MAP_FULL up to this. */
#define CHECKPOINT_MAP_BYTES_MAX (1ull << 40)
/* Largest key: 1 kind byte + an id (LMDB's default key limit is 511 bytes). */
#define CHECKPOINT_KEY_BYTES_MAX 256u
/* Batches of failed checkpoints kept beyond this are replaced by one full checkpoint. */
#define CHECKPOINT_KEPT_BYTES_MAX (64ull << 20)
/* A checkpoint batch grows by chunks (never by copying what it holds): the first of the
 * minimum size, each next one twice the previous, up to the maximum (an entry larger than that
 * gets a chunk of its own). */
#define CHECKPOINT_BATCH_CHUNK_BYTES_MIN (64u * 1024)
#define CHECKPOINT_BATCH_CHUNK_BYTES_MAX (4u << 20)
/* The chunks of committed batches a checkpoint writer keeps for the next ones, at most (no more
 * than the last commit's batches took, either; persist/checkpoint.h). */
#define CHECKPOINT_BATCH_SPARE_BYTES_MAX (64ull << 20)
/* The batch bytes an entry is taken to fill before a commit has measured them (a one-line hold
 * fills about 145), for the chunks reserved ahead of a process's first checkpoint. */
#define CHECKPOINT_BATCH_ENTRY_BYTES_GUESS 128u
/* Chunks of the largest size the loop reserves for the next checkpoint per housekeeping tick, at
 * most (checkpoint_writer_spares_reserve: a mapping each, faulted in off the loop). */
#define CHECKPOINT_SPARES_RESERVE_STEP_CHUNKS 4u
/* The window of a paced write-out (persist/writeback.h): at most this much of a checkpoint's
 * or the change stream's dirty pages is in the disk's queue at a time, so the WAL's fdatasync
 * waits behind no more than one window of them. A checkpoint's pages are scattered over the
 * file: 1 MiB of them took the benchmark VM's disk 9-70 ms, 256 KiB (64 pages) brought the
 * open loop's p99 from 154-216 ms to 31-55 ms, 64 KiB no further (docs/benchmarks.md). */
#define PERSIST_WRITEBACK_WINDOW_BYTES (256ull << 10)
/* The flush gate (persist/writeback.h): while the WAL flushed within the last ACTIVE_MS, a
 * background window waits for the WAL's next flush, at most WAIT_US_MAX
 * (a group commit of the open loop at 118k/s takes 0.5-3 ms; a checkpoint's ~1,200 windows then
 * take at most 1,200 x 2 ms = 2.4 s more, well inside its interval). Idle (no flush for ACTIVE_MS)
 * a walk runs at the disk's pace. */
#define PERSIST_WRITEBACK_GATE_ACTIVE_MS   100u
#define PERSIST_WRITEBACK_GATE_WAIT_US_MAX 2000u
/* How far below the process's scheduling priority (nice increments) the checkpoint writer thread
 * runs: on a machine short of CPU the loop is scheduled first (persist/checkpoint.h). */
#define CHECKPOINT_WRITER_NICE 10
/* ...and how often it steps aside within a checkpoint (persist_thread_step_aside): every this
 * many stored entries (about 0.2 ms of LMDB puts) and every this many references merged while
 * it sorts a batch (about 0.3 ms). A nice level alone does not keep it off the loop's CPU: the
 * scheduler lets a running thread finish its slice (several ms) before a woken loop runs, and a
 * loop that sleeps between requests lost ~20% of its share of the CPU to the writer in each
 * checkpoint (docs/benchmarks.md, "Issue 20, the host's floor and the checkpoint's share"). */
#define CHECKPOINT_WRITER_YIELD_ENTRIES 256u
#define CHECKPOINT_WRITER_YIELD_REFS    4096u
/* Recovery: heap growth asked of malloc while the heap is prefaulted (the warming thread keeps
 * this far ahead of the loader), and how often that thread looks for a new heap end. */
#define HEAP_WARM_TOP_PAD_BYTES (256u << 20)
#define HEAP_WARM_POLL_NS       200000L
/* Serving: fresh table pages waiting to be faulted in by persist/pages_warm.c (a range reported
 * beyond this many is left to the loop's own faults, and counted), and how much of a range that
 * thread faults in at one time (one huge page: the loop preempts it between steps at the latest,
 * and a retiring range waits for at most one step). */
#define PAGES_WARM_RANGES_MAX 64u
#define PAGES_WARM_STEP_BYTES (2u << 20)

/* ---- the change stream (core/stream/, persist/event_store.c, net/events.c) ------------------ */
/* An event's seq is its record's LSN shifted by this many bits, plus its index among the events
 * of that record: at most ALLOT_CHANGES_PER_RECORD_MAX events per record (more are counted and
 * left out), and seqs stay below 2^53 (exact in JSON) up to LSN 2^41. */
#define ALLOT_EVENT_SEQ_INDEX_BITS   12
#define ALLOT_CHANGES_PER_RECORD_MAX (1u << ALLOT_EVENT_SEQ_INDEX_BITS)
/* avail.changed: at most one per SKU per this long (record time). */
#define ALLOT_AVAIL_COALESCE_MS 100
/* Consumers with a durable cursor (events.ack of a new name beyond it: TOO_LARGE). */
#define ALLOT_EVENT_CONSUMERS_MAX 1024
/* events.read: default and largest page, longest long poll, and the events one read examines
 * at most when filters skip them (it then answers what it found, with `next` past them). */
#define ALLOT_EVENTS_READ_LIMIT_DEFAULT 100
#define ALLOT_EVENTS_READ_LIMIT_MAX     1000
#define ALLOT_EVENTS_WAIT_MS_MAX        30000
#define ALLOT_EVENTS_READ_SCAN_MAX      20000
/* Long polls waiting at once (more: OVERLOADED). */
#define ALLOT_EVENTS_WAITERS_MAX 4096
/* events.subscribe: subscriptions per connection, SKUs and types per subscription. */
#define ALLOT_SUBSCRIPTIONS_PER_CONNECTION_MAX 16
#define ALLOT_SUBSCRIPTION_SKUS_MAX            1000
#define ALLOT_EVENT_TYPES_FILTER_MAX           16
/* Retention (operator): the stream by age and size, whichever comes first; the ledger by age. */
#define ALLOT_EVENTS_RETENTION_S_DEFAULT    86400
#define ALLOT_EVENTS_RETENTION_S_CEILING    (366 * 86400)
#define ALLOT_EVENTS_BYTES_MAX_DEFAULT      (1ull << 30)
#define ALLOT_EVENTS_BYTES_MAX_FLOOR        (1ull << 20)
#define ALLOT_EVENTS_BYTES_MAX_CEILING      (1ull << 39)
#define ALLOT_LEDGER_RETENTION_DAYS_DEFAULT 90
#define ALLOT_LEDGER_RETENTION_DAYS_CEILING 3660
/* ledger.get: default and largest page. */
#define ALLOT_LEDGER_LIMIT_DEFAULT 100
#define ALLOT_LEDGER_LIMIT_MAX     1000
/* <data-dir>/events.lmdb: the map (address space, not disk) and what one trim step deletes. */
#define EVENT_STORE_MAP_BYTES     (1ull << 40)
#define EVENT_STORE_TRIM_STEP_MAX 10000
/* event_store_flush writes events.lmdb out a window at a time this many times before its
 * fdatasync: the loop goes on committing events (at 118k reserves/s about 19 MB/s of pages)
 * while a walk runs, and what it dirtied behind the walk went out all at once with the
 * fdatasync (a 34 MB burst after a 1.8 s walk). Each further walk takes what the one before
 * left, in a fraction of its time (written out at 100-250 MB/s), so the third leaves about a
 * megabyte to the fdatasync (docs/benchmarks.md, "Issue 20, background writes paced"). */
#define EVENT_STORE_FLUSH_WALKS 3
/* The most bytes of events one stored run holds (less where a page is smaller: a page's payload;
 * persist/event_store.c). */
#define EVENT_STORE_RUN_BYTES_MAX (64u << 10)

/* ---- the server (net/) ---------------------------------------------------------------------- */
/* Where allotd listens by default (operator), and the backlog of its listening socket. */
#define ALLOT_LISTEN_PORT_DEFAULT 7411
#define SERVER_LISTEN_BACKLOG     511
/* Longest listen/metrics host and longest path an operator may give (data dir, token file). */
#define SERVER_HOST_BYTES_MAX 256
#define SERVER_PATH_BYTES_MAX 1024
/* Housekeeping (expiry, timeouts, checkpoint triggers, once-a-second publishing) period. */
#define SERVER_HOUSEKEEPING_PERIOD_MS 250
/* The checkpoint writer's spare batch chunks are kept while the dirty count changes; once it has
 * not changed for this long (and no checkpoint runs), they are fitted to it (persist/checkpoint.h,
 * checkpoint_writer_spares_fit). */
#define SERVER_CHECKPOINT_SPARES_IDLE_MS 1000
/* At shutdown, connections get this long to take their replies before they are closed. */
#define SERVER_SHUTDOWN_GRACE_MS 5000
/* Reservations expired per housekeeping step; each is one small WAL record. */
#define SERVER_EXPIRY_STEP_MAX 512
/* Chunk of the zone decoded requests live in (cleared after each request). */
#define SERVER_ZONE_CHUNK_BYTES (64u * 1024)
/* Connection handles closed per loop iteration (the rest wait in the close queue). */
#define CONNECTION_CLOSES_PER_ITERATION 128
/* A connection idle this long is closed (operator; 0: never), and one whose request stays
 * unfinished this long (operator; 0: never). */
#define ALLOT_IDLE_TIMEOUT_S_DEFAULT     0
#define ALLOT_IDLE_TIMEOUT_S_CEILING     86400
#define ALLOT_REQUEST_TIMEOUT_MS_DEFAULT 30000
#define ALLOT_REQUEST_TIMEOUT_MS_CEILING 3600000
/* idempotency_evicted_early is logged at most once per this (when its count grew). */
#define SERVER_IDEMPOTENCY_LOG_INTERVAL_MS 60000
/* Most keys one allowed list of the command table may name (args_check_keys tracks them in a
 * 64-bit mask). */
#define ARGS_ALLOWED_KEYS_MAX 64

/* Checkpoints (net/checkpoint_driver.c), triggers (operator; 0: never by that trigger): every
 * interval, after that many WAL bytes, once that many objects changed. */
#define ALLOT_CHECKPOINT_INTERVAL_S_DEFAULT 60
#define ALLOT_CHECKPOINT_INTERVAL_S_CEILING 86400
#define ALLOT_CHECKPOINT_WAL_BYTES_DEFAULT  (64ull << 20)
#define ALLOT_CHECKPOINT_WAL_BYTES_CEILING  1099511627776ull
#define ALLOT_CHECKPOINT_DIRTY_MAX_DEFAULT  (1u << 20)
#define ALLOT_CHECKPOINT_DIRTY_MAX_CEILING  1073741824
/* When a checkpoint ends, its list of the objects it wrote is kept (as the next dirty set's room)
 * only up to this many entries (4 bytes each): a burst's list is freed, not kept for good. */
#define ALLOT_CHECKPOINT_PENDING_KEPT_MAX 65536u
/* A checkpoint is serialized in slices, one per loop iteration, so that requests keep being
 * answered while it is built: a slice ends after this many objects or this long, whichever
 * comes first (the clock is read every SERVER_CHECKPOINT_STEP_OBJECTS objects). */
#define SERVER_CHECKPOINT_SLICE_OBJECTS 2000
#define SERVER_CHECKPOINT_SLICE_NS      (1000 * 1000)
#define SERVER_CHECKPOINT_STEP_OBJECTS  128
/* server.checkpoint requests waiting for a commit at once (more: OVERLOADED). */
#define SERVER_CHECKPOINT_WAITERS_MAX 64

/* Authentication (net/auth.c): token size, free attempts per connection before back-off, the
 * attempts after which it is closed, back-off (doubling) and its ceiling, client addresses
 * with recent failures remembered (a power of two; open addressing, probed this far), and how
 * long they are remembered. */
#define AUTH_TOKEN_BYTES_MIN 16
#define AUTH_TOKEN_BYTES_MAX 512
#define AUTH_FAILURES_FREE   3
#define AUTH_FAILURES_MAX    10
#define AUTH_BACKOFF_MS      1000
#define AUTH_BACKOFF_MS_MAX  30000
#define AUTH_PEERS_MAX       4096
#define AUTH_PEER_PROBE_MAX  8
#define AUTH_PEER_FORGET_MS  (10 * 60 * 1000)

/* Operations: concurrent connections of the metrics endpoint, the largest page it serves,
 * /health unhealthy when the loop has not published for this long (it does every second); the
 * longest log line; lines per second of each event a client can cause at will. */
#define METRICS_HTTP_CONNECTIONS_MAX 16
/* The HTTP front door (net/http.h): connections at once and the seconds without progress
 * after which one is closed (defaults of --http-connections-max and --http-timeout-s); a
 * method name's bytes; the first body buffer; the decoding zone's chunk; event streams poll
 * events.read this often while idle, send a comment line after this long without an event, and
 * take at most this many events per read. */
#define HTTP_CONNECTIONS_MAX_DEFAULT 1024
#define HTTP_CONNECTIONS_MAX_CEILING 65536
#define HTTP_TIMEOUT_S_DEFAULT       30
#define HTTP_TIMEOUT_S_CEILING       3600
#define HTTP_COMMAND_BYTES_MAX       64
#define HTTP_BODY_BYTES_MIN          1024
#define HTTP_ZONE_CHUNK_BYTES        8192
#define HTTP_EVENTS_POLL_MS          200
#define HTTP_EVENTS_KEEPALIVE_MS     15000
#define HTTP_EVENTS_BATCH_MAX        100
#define METRICS_HTTP_TEXT_BYTES_MAX  (256u * 1024)
#define METRICS_HTTP_HEALTH_STALE_MS 5000
#define LOG_LINE_BYTES_MAX           4096
#define LOG_LIMIT_LINES_PER_S        10

/* The ranges of the operator's other settings (net/options.c; their defaults are above):
 * _FLOOR.._CEILING, from 0 (where 0 turns it off) or 1 where no floor is given. */
#define ALLOT_REQUEST_BYTES_MAX_FLOOR                 1024
#define ALLOT_INFLIGHT_REQUESTS_MAX_CEILING           1048576
#define ALLOT_OUTPUT_BYTES_MAX_FLOOR                  4096
#define ALLOT_OUTPUT_BYTES_MAX_CEILING                1073741824
#define ALLOT_BUFFER_BYTES_MAX_FLOOR                  1048576
#define ALLOT_BUFFER_BYTES_MAX_CEILING                1099511627776ull
#define ALLOT_CONNECTIONS_MAX_CEILING                 1048576
#define ALLOT_AUTH_TIMEOUT_MS_CEILING                 3600000
#define ALLOT_UNAUTHENTICATED_CONNECTIONS_MAX_CEILING 1048576
#define ALLOT_RESERVATIONS_MAX_CEILING                1073741824
#define ALLOT_IDEMPOTENCY_ENTRIES_MAX_CEILING         1073741824
#define ALLOT_IDEMPOTENCY_AGE_S_CEILING               31536000  /* 365 days */
#define ALLOT_ORDERS_ARCHIVE_AGE_S_CEILING            316224000 /* 3660 days */

/* ---- a group of nodes (persist/consensus.c, net/) ----------------------------------------- */
/* Node ids of a group: 1..255 (--node-id, --peer ID=...). */
#define ALLOT_NODE_ID_MAX 255
/* Voters of a group: three or five (seven at most). */
#define ALLOT_GROUP_MEMBERS_MAX 7
/* "host:port" of a member's raft or client address, with its NUL. */
#define ALLOT_ADDRESS_BYTES_MAX 128
/* Raft timing: a leader that misses heartbeats this long is replaced (pre-vote on); the failover
 * target is 2 s, so the election timeout stays well under it. */
#define ALLOT_RAFT_ELECTION_TIMEOUT_MS_DEFAULT 500
#define ALLOT_RAFT_ELECTION_TIMEOUT_MS_FLOOR   100
#define ALLOT_RAFT_ELECTION_TIMEOUT_MS_CEILING 60000
/* Heartbeats: a tenth of the election timeout. */
#define ALLOT_RAFT_HEARTBEAT_DIVISOR 10
/* Entries between raft snapshots (each a checkpoint) and entries kept behind one for followers
 * that lag (libraft keeps both in memory: at most about their sum times the largest entry). */
#define ALLOT_RAFT_SNAPSHOT_ENTRIES_DEFAULT 4096
#define ALLOT_RAFT_SNAPSHOT_ENTRIES_FLOOR   16
#define ALLOT_RAFT_SNAPSHOT_ENTRIES_CEILING 1048576
/* Trailing entries: four times the snapshot interval. */
#define ALLOT_RAFT_TRAILING_FACTOR 4
/* One raft entry holds the records of one loop iteration, at most this many bytes; a larger
 * iteration proposes several entries. */
#define ALLOT_RAFT_ENTRY_BYTES_MAX (4u << 20)
/* Reads with min_index wait this long by default (wait_ms), at most the ceiling. */
#define ALLOT_MIN_INDEX_WAIT_MS_DEFAULT 1000
#define ALLOT_MIN_INDEX_WAIT_MS_MAX     30000
/* Connections waiting for min_index at once (each holds one request). */
#define ALLOT_MIN_INDEX_WAITERS_MAX 4096

/* ---- the client library (client/) ---------------------------------------------------------- */
/* Where the client connects by default (where allotd listens), and its per-call timeout. */
#define ALLOT_CLIENT_PORT_DEFAULT       ALLOT_LISTEN_PORT_DEFAULT
#define ALLOT_CLIENT_TIMEOUT_MS_DEFAULT 5000
/* Received-but-unconsumed bytes buffered; also the largest single reply. An application may
 * set its own bound within FLOOR..CEILING. */
#define ALLOT_CLIENT_REPLY_BYTES_MAX   (64u << 20)
#define CLIENT_REPLY_BYTES_MAX_FLOOR   ((size_t)4096)
#define CLIENT_REPLY_BYTES_MAX_CEILING ((size_t)1 << 30)
/* Bytes read from the socket per read call. */
#define CLIENT_READ_CHUNK_BYTES (64u * 1024)
/* Pending request bytes after which allot_client_send flushes on its own. */
#define ALLOT_CLIENT_SEND_BYTES_MAX (256u * 1024)
/* Deepest nesting of arrays/maps in a reply (what msgpack-c can decode); replies are framed by
 * the same scanner as the server's requests (client/frame.h). */
#define ALLOT_CLIENT_DEPTH_MAX ALLOT_MSGPACK_DEPTH_MAX
/* NOT_LEADER: a call follows at most this many redirects (to the leader named in the error, or
 * after a pause while none is elected: the first pause, doubling up to the largest). */
#define ALLOT_CLIENT_REDIRECTS_MAX_DEFAULT   5
#define ALLOT_CLIENT_REDIRECT_PAUSE_MS_FIRST 100
#define ALLOT_CLIENT_REDIRECT_PAUSE_MS_MAX   1000
/* Deepest nesting JSON <-> MessagePack converts: more than the server's ALLOT_REQUEST_DEPTH_MAX,
 * so that tools can send requests the server must refuse. */
#define JSON_MSGPACK_DEPTH_MAX 64

/* ---- tools (tools/) ------------------------------------------------------------------------- */
/* allot: lines of history kept, and the longest token it reads (the first line of a file). */
#define CLI_HISTORY_LINES_MAX 1000
#define CLI_TOKEN_BYTES_MAX   4096

/* ---- the load generator (bench/) ------------------------------------------------------------ */
#define BENCH_CONNECTIONS_MAX      4096
#define BENCH_PIPELINE_MAX         4096 /* slot index lives in the low 12 bits of a msgid */
#define BENCH_THREADS_MAX          64
#define BENCH_SKUS_PER_REQUEST_MAX 1000
#define BENCH_LINES_MAX            100
#define BENCH_ERROR_CODES_MAX      8 /* distinct error codes counted per operation */
#define BENCH_HOST_BYTES           256
#define BENCH_IN_BYTES_MAX         (64u << 20) /* a reply bigger than this ends the run */
#define BENCH_DRAIN_MS             5000        /* in-flight requests waited for after the end */
#define BENCH_EVENTS_MAX           256         /* epoll events taken per wait */
#define SVG_CURVES_MAX             16          /* curves in one latency chart */
#define SVG_POINTS_MAX             256         /* points of one curve */
/* A side (server loop, bench threads) busy this share of its threads' time or more is reported
 * as what limited a closed-loop run. */
#define BENCH_SATURATED_PERCENT    85
#define BENCH_GROUP_LEADER_WAIT_MS 10000 /* --group: a member must name a leader by then */
/* Open loop: requests falling due within this of the last hand-out go out with the next one
 * (allot-bench --send-window-us; bench/pacer.h). */
#define BENCH_SEND_WINDOW_US_DEFAULT 50
#define BENCH_SEND_WINDOW_US_MAX     10000
/* allot-echo-epoll (bench/echo_epoll.c), the floor of a ping: it reads as much at once as allotd
 * (ALLOT_READ_CHUNK_BYTES), keeps at most this much of unwritten replies per connection (more:
 * closed), and accepts descriptors below BENCH_ECHO_CONNECTIONS_MAX. */
#define BENCH_ECHO_OUT_BYTES_MAX   (256u * 1024)
#define BENCH_ECHO_CONNECTIONS_MAX 4096
#define BENCH_ECHO_PING_BYTES_MAX  16 /* [0, msgid (<= 5 bytes), "ping", [{}]] */
/* allot-ping-epoll (bench/ping_epoll.c), the floor of a load client: its one request (a ping or a
 * 1-SKU avail.get of an id under 32 bytes) and the longest reply it keeps across reads. */
#define BENCH_PING_REQUEST_BYTES_MAX 64
#define BENCH_PING_REPLY_BYTES_MAX   4096

/* ---- how they relate ------------------------------------------------------------------------ */
_Static_assert(ALLOT_REQUEST_BYTES_MAX_DEFAULT <= ALLOT_REQUEST_BYTES_MAX_CEILING,
               "default request size must not exceed its ceiling");
_Static_assert(ALLOT_OUTPUT_BYTES_MAX_DEFAULT >= 2 * ALLOT_REQUEST_BYTES_MAX_DEFAULT,
               "a connection must be able to queue at least a couple of large replies");
_Static_assert(ALLOT_WAL_RECORD_BYTES_MAX >= ALLOT_REQUEST_BYTES_MAX_DEFAULT,
               "every accepted request must fit in one WAL record");
_Static_assert(ALLOT_WAL_LINGER_US_DEFAULT <= ALLOT_WAL_LINGER_US_MAX &&
                   ALLOT_WAL_LINGER_US_MAX <= 1000u * ALLOT_FSYNC_INTERVAL_MS_DEFAULT &&
                   ALLOT_WAL_LINGER_BYTES < ALLOT_WAL_BATCH_BYTES_MAX,
               "a lingering batch waits less than an interval sync and fits its buffer");
_Static_assert(ALLOT_WAL_BATCH_BYTES_MAX >= 2 * ALLOT_WAL_RECORD_BYTES_MAX,
               "a batch holds at least two records of maximal size");
_Static_assert(ALLOT_WAL_SEGMENT_BYTES_DEFAULT >= 2 * ALLOT_WAL_BATCH_BYTES_MAX,
               "a segment holds at least two full batches");
_Static_assert(ALLOT_QUANTITY_MAX *ALLOT_LINES_MAX * 1024 < INT64_MAX,
               "sums of quantities over lines and locations cannot overflow int64");
_Static_assert(ALLOT_PROMISE_SEARCH_DAYS_MAX < 365 * ALLOT_ZONE_YEARS_AHEAD,
               "a zone description covers every day a promise may look at");
_Static_assert((ALLOT_ZONE_YEARS_AHEAD + 2) * ALLOT_ZONE_YEAR_TRANSITIONS_MAX <=
                   ALLOT_ZONE_TRANSITIONS_MAX,
               "a zone description holds the transitions of every year it covers");
_Static_assert(ALLOT_HOLIDAYS_MAX <= UINT8_MAX && ALLOT_TRANSIT_BANDS_MAX <= UINT8_MAX &&
                   ALLOT_TIMEZONE_BYTES_MAX <= UINT8_MAX,
               "calendar and band counts travel in a u8");
_Static_assert(ALLOT_LINES_MAX <= ALLOT_AVAIL_SKUS_MAX, "lines are a subset of a SKU batch");
_Static_assert(ALLOT_TIME_MS_MAX < INT64_MAX / 4,
               "times, their differences and a time plus a TTL or window fit in int64");

_Static_assert(ALLOT_REQUEST_DEPTH_MAX <= ALLOT_MSGPACK_DEPTH_MAX,
               "the one MessagePack scanner holds a request's nesting");

/* core/: records hold counts and strings in u16 fields (core/event.h, order_codec.c). */
_Static_assert(ALLOT_ID_BYTES_MAX <= UINT16_MAX && ALLOT_TEXT_BYTES_MAX <= UINT16_MAX &&
                   ALLOT_ORDER_ADDRESS_BYTES_MAX <= UINT16_MAX,
               "every string a record holds fits its u16 length");
_Static_assert(ALLOT_ID_BYTES_MAX <= UINT8_MAX &&
                   ALLOT_RESERVATION_ID_INLINE_BYTES < ALLOT_ID_BYTES_MAX,
               "a reservation record holds its id's length in a u8; short ids inline");
_Static_assert(ALLOT_ORDER_SHIPMENTS_MAX < UINT16_MAX && ALLOT_ORDER_ITEMS_MAX <= UINT16_MAX &&
                   ALLOT_ORDER_RETURNS_MAX <= UINT16_MAX && ALLOT_ORDER_HISTORY_MAX <= UINT16_MAX &&
                   ALLOT_LINES_MAX <= UINT16_MAX && ALLOT_ORDER_BACKORDERS_MAX <= UINT16_MAX,
               "an order's counts fit their u16 fields (shipment 0xFFFF is 'none')");
_Static_assert(ALLOT_ORDER_BACKORDERS_MAX >= ALLOT_ORDER_ITEMS_MAX,
               "an order takes every allocation of a hold it may take as backorders");
_Static_assert(ALLOT_PRIORITY_MIN <= ALLOT_PRIORITY_DEFAULT &&
                   ALLOT_PRIORITY_DEFAULT <= ALLOT_PRIORITY_MAX,
               "the default priority is a valid one");
_Static_assert(ALLOT_ORDER_LIST_LIMIT_DEFAULT <= ALLOT_ORDER_LIST_LIMIT_MAX,
               "a default order.list page is a valid one");
_Static_assert(ALLOT_RESERVATION_TTL_S_MIN <= ALLOT_RESERVATION_TTL_S_DEFAULT &&
                   ALLOT_RESERVATION_TTL_S_DEFAULT <= ALLOT_RESERVATION_TTL_S_MAX,
               "the default reservation TTL is a valid one");

/* persist/: what the operator may ask of the WAL stays within what the WAL accepts. */
_Static_assert(WAL_SEGMENT_BYTES_MIN <= ALLOT_WAL_SEGMENT_BYTES_FLOOR &&
                   ALLOT_WAL_SEGMENT_BYTES_FLOOR <= ALLOT_WAL_SEGMENT_BYTES_DEFAULT &&
                   ALLOT_WAL_SEGMENT_BYTES_DEFAULT <= ALLOT_WAL_SEGMENT_BYTES_CEILING &&
                   ALLOT_WAL_SEGMENT_BYTES_CEILING <= WAL_SEGMENT_BYTES_MAX,
               "segment sizes: the WAL's minimum <= floor <= default <= ceiling <= its maximum");
_Static_assert(ALLOT_FSYNC_INTERVAL_MS_DEFAULT >= 1 &&
                   ALLOT_FSYNC_INTERVAL_MS_DEFAULT <= WAL_FSYNC_INTERVAL_MS_MAX,
               "the default fsync interval is one the WAL accepts");
_Static_assert(WAL_PRELOAD_SEGMENTS_DEFAULT >= 1 &&
                   WAL_PRELOAD_SEGMENTS_DEFAULT <= WAL_PRELOAD_SEGMENTS_MAX,
               "the read-ahead window allotd uses is one the WAL accepts");
_Static_assert(CHECKPOINT_MAP_BYTES_DEFAULT <= CHECKPOINT_MAP_BYTES_MAX,
               "the LMDB map starts within its ceiling");
_Static_assert(CHECKPOINT_KEY_BYTES_MAX >= 1 + ALLOT_ID_BYTES_MAX &&
                   CHECKPOINT_KEY_BYTES_MAX <= 511,
               "a kind byte and the longest id fit in a key, and a key within LMDB's limit");
_Static_assert(CHECKPOINT_BATCH_CHUNK_BYTES_MIN <= CHECKPOINT_BATCH_CHUNK_BYTES_MAX,
               "checkpoint batch chunks grow from the minimum to the maximum");
_Static_assert(CHECKPOINT_BATCH_SPARE_BYTES_MAX >= CHECKPOINT_BATCH_CHUNK_BYTES_MAX,
               "a checkpoint writer can keep at least one chunk of the largest size");
/* net/ and persist/: paths built in the operator's data directory fit persist's buffers
 * ("<data-dir>/wal/wal-<16 hex>.log.discarded", "<data-dir>/state.lmdb-lock", ...). */
_Static_assert(SERVER_PATH_BYTES_MAX + 64 <= WAL_PATH_BYTES_MAX &&
                   SERVER_PATH_BYTES_MAX + 64 <= CHECKPOINT_PATH_BYTES_MAX &&
                   SERVER_PATH_BYTES_MAX + 64 <= DIRLOCK_PATH_BYTES_MAX,
               "every path in a data directory the operator may name fits");

/* net/: every default lies within the range the operator is held to. */
_Static_assert(ALLOT_REQUEST_BYTES_MAX_FLOOR <= ALLOT_REQUEST_BYTES_MAX_DEFAULT,
               "request size default within range");
_Static_assert(ALLOT_INFLIGHT_REQUESTS_MAX_DEFAULT <= ALLOT_INFLIGHT_REQUESTS_MAX_CEILING,
               "in-flight requests default within range");
_Static_assert(ALLOT_OUTPUT_BYTES_MAX_FLOOR <= ALLOT_OUTPUT_BYTES_MAX_DEFAULT &&
                   ALLOT_OUTPUT_BYTES_MAX_DEFAULT <= ALLOT_OUTPUT_BYTES_MAX_CEILING,
               "output bytes default within range");
_Static_assert(ALLOT_BUFFER_BYTES_MAX_FLOOR <= ALLOT_BUFFER_BYTES_MAX_DEFAULT &&
                   ALLOT_BUFFER_BYTES_MAX_DEFAULT <= ALLOT_BUFFER_BYTES_MAX_CEILING,
               "buffer bytes default within range");
_Static_assert(ALLOT_CONNECTIONS_MAX_DEFAULT <= ALLOT_CONNECTIONS_MAX_CEILING,
               "connections default within range");
_Static_assert(ALLOT_IDLE_TIMEOUT_S_DEFAULT <= ALLOT_IDLE_TIMEOUT_S_CEILING &&
                   ALLOT_REQUEST_TIMEOUT_MS_DEFAULT <= ALLOT_REQUEST_TIMEOUT_MS_CEILING &&
                   ALLOT_AUTH_TIMEOUT_MS_DEFAULT <= ALLOT_AUTH_TIMEOUT_MS_CEILING,
               "timeout defaults within range");
_Static_assert(ALLOT_RESERVATIONS_MAX_DEFAULT <= ALLOT_RESERVATIONS_MAX_CEILING &&
                   ALLOT_IDEMPOTENCY_ENTRIES_MAX_DEFAULT <= ALLOT_IDEMPOTENCY_ENTRIES_MAX_CEILING &&
                   ALLOT_IDEMPOTENCY_AGE_MS_DEFAULT / 1000 <= ALLOT_IDEMPOTENCY_AGE_S_CEILING,
               "reservation and idempotency defaults within range");
_Static_assert(ALLOT_ORDERS_ARCHIVE_AGE_MS_DEFAULT / 1000 <= ALLOT_ORDERS_ARCHIVE_AGE_S_CEILING,
               "the archive age default within range");
_Static_assert(ALLOT_CHECKPOINT_INTERVAL_S_DEFAULT <= ALLOT_CHECKPOINT_INTERVAL_S_CEILING &&
                   ALLOT_CHECKPOINT_WAL_BYTES_DEFAULT <= ALLOT_CHECKPOINT_WAL_BYTES_CEILING &&
                   ALLOT_CHECKPOINT_DIRTY_MAX_DEFAULT <= ALLOT_CHECKPOINT_DIRTY_MAX_CEILING,
               "checkpoint trigger defaults within range");
_Static_assert(SERVER_CHECKPOINT_SPARES_IDLE_MS % SERVER_HOUSEKEEPING_PERIOD_MS == 0 &&
                   SERVER_CHECKPOINT_SPARES_IDLE_MS >= SERVER_HOUSEKEEPING_PERIOD_MS,
               "the spares' idle time is a whole number of housekeeping ticks");
_Static_assert(1000 % SERVER_HOUSEKEEPING_PERIOD_MS == 0,
               "housekeeping ticks a whole number of times per second");
_Static_assert(SERVER_CHECKPOINT_STEP_OBJECTS <= SERVER_CHECKPOINT_SLICE_OBJECTS,
               "a slice holds at least one step");
_Static_assert(METRICS_HTTP_HEALTH_STALE_MS > 1000,
               "/health tolerates the one-second publishing period");
_Static_assert(ARGS_ALLOWED_KEYS_MAX <= 64, "one bit per allowed key in a 64-bit mask");
_Static_assert(AUTH_TOKEN_BYTES_MIN <= AUTH_TOKEN_BYTES_MAX, "token sizes");
_Static_assert(AUTH_FAILURES_FREE < AUTH_FAILURES_MAX, "back-off starts before the close");
_Static_assert(AUTH_BACKOFF_MS <= AUTH_BACKOFF_MS_MAX, "the back-off grows to its ceiling");
_Static_assert((AUTH_PEERS_MAX & (AUTH_PEERS_MAX - 1)) == 0, "a power of two");
_Static_assert(AUTH_PEER_PROBE_MAX <= AUTH_PEERS_MAX, "a probe stays within the table");
_Static_assert(AUTH_PEER_FORGET_MS > AUTH_BACKOFF_MS_MAX, "a back-off ends before it is forgotten");

/* client/ and tools/: the client takes what the server sends and sends what it may refuse. */
_Static_assert(CLIENT_REPLY_BYTES_MAX_FLOOR <= ALLOT_CLIENT_REPLY_BYTES_MAX &&
                   ALLOT_CLIENT_REPLY_BYTES_MAX <= CLIENT_REPLY_BYTES_MAX_CEILING,
               "the client's reply bound within its range");
_Static_assert(ALLOT_CLIENT_REPLY_BYTES_MAX >= ALLOT_OUTPUT_BYTES_MAX_DEFAULT,
               "the client reads the largest reply the server sends by default");
_Static_assert(JSON_MSGPACK_DEPTH_MAX > ALLOT_REQUEST_DEPTH_MAX,
               "tools can send requests nested deeper than the server accepts");
_Static_assert(CLI_TOKEN_BYTES_MAX >= AUTH_TOKEN_BYTES_MAX,
               "the CLI reads every token allotd takes");

/* bench/: the load generator asks no more than the server answers. */
_Static_assert(BENCH_SKUS_PER_REQUEST_MAX <= ALLOT_AVAIL_SKUS_MAX,
               "avail.get batches the server takes");
_Static_assert(BENCH_LINES_MAX <= ALLOT_LINES_MAX, "reservations the server takes");
_Static_assert(BENCH_PIPELINE_MAX <= 4096, "a slot index fits in the low 12 bits of a msgid");
_Static_assert(BENCH_IN_BYTES_MAX >= ALLOT_OUTPUT_BYTES_MAX_DEFAULT,
               "the bench reads the largest reply the server sends by default");

_Static_assert(ALLOT_EVENTS_BYTES_MAX_FLOOR <= ALLOT_EVENTS_BYTES_MAX_DEFAULT &&
                   ALLOT_EVENTS_BYTES_MAX_DEFAULT <= ALLOT_EVENTS_BYTES_MAX_CEILING &&
                   2 * ALLOT_EVENTS_BYTES_MAX_CEILING <= EVENT_STORE_MAP_BYTES,
               "the events' size bound fits the store's map twice (stream and ledger)");
_Static_assert(ALLOT_EVENTS_READ_LIMIT_DEFAULT <= ALLOT_EVENTS_READ_LIMIT_MAX &&
                   ALLOT_EVENTS_READ_LIMIT_MAX <= ALLOT_EVENTS_READ_SCAN_MAX,
               "a read page fits what one read may examine");
_Static_assert(ALLOT_CHANGES_PER_RECORD_MAX >=
                   2 * ALLOT_ORDER_ITEMS_MAX + ALLOT_ORDER_SHIPMENTS_MAX,
               "an order's record gives all its events");
_Static_assert(HTTP_CONNECTIONS_MAX_DEFAULT <= HTTP_CONNECTIONS_MAX_CEILING &&
                   HTTP_TIMEOUT_S_DEFAULT <= HTTP_TIMEOUT_S_CEILING,
               "the HTTP defaults are within their ranges");
_Static_assert(HTTP_BODY_BYTES_MIN <= ALLOT_REQUEST_BYTES_MAX_FLOOR,
               "the first body buffer never exceeds the smallest request limit");

#endif
