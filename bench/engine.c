/* engine.c - allot-bench's load engine: worker threads, epoll, sessions, pacing, recording. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

const char *const bench_op_names[OP_COUNT] = {
    [OP_AVAIL] = "avail.get",
    [OP_RESERVE] = "reserve",
    [OP_ORDER_CREATE] = "order.create",
    [OP_ORDER_PAY] = "order.pay",
    [OP_ORDER_RELEASE] = "order.release",
    [OP_RELEASE] = "reservation.release",
    [OP_STOCK_SET] = "stock.set",
    [OP_PING] = "ping",
};
const char *const bench_scenario_names[SCENARIO_COUNT] = {
    [SCENARIO_BROWSE] = "browse",       [SCENARIO_CHECKOUT] = "checkout",
    [SCENARIO_FLASHSALE] = "flashsale", [SCENARIO_RESERVE] = "reserve",
    [SCENARIO_MIXED] = "mixed",         [SCENARIO_PING] = "ping",
    [SCENARIO_LOAD] = "load",
};

/* ---- small helpers ---------------------------------------------------------------------- */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_rng_next(uint64_t *state)
{
    /* splitmix64 */
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Fixed-width decimal: prefix + `digits` digits of v. */
static void name_format(char prefix, uint64_t v, int digits, char *buf, size_t bytes)
{
    if (bytes < (size_t)digits + 2) {
        buf[0] = '\0';
        return;
    }
    buf[0] = prefix;
    for (int i = digits; i >= 1; i--) {
        buf[i] = (char)('0' + v % 10);
        v /= 10;
    }
    buf[digits + 1] = '\0';
}

void bench_sku_name(uint32_t index, char *buf, size_t bytes)
{
    name_format('S', index, 8, buf, bytes);
}

void bench_location_name(uint32_t index, char *buf, size_t bytes)
{
    name_format('L', index, 5, buf, bytes);
}

/* v in `base` (10 or 16, lower case) at p; returns the digits' count. */
static size_t digits_put(char *p, uint64_t v, unsigned base)
{
    char reversed[20];
    size_t n = 0;
    do {
        reversed[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        p[i] = reversed[n - 1 - i];
    return n;
}

/* snprintf's "c%" PRIx64 "-%u-%" PRIu64 (truncated the same way), without the format's cost: it
 * is written for every reserve and order request. */
void bench_cart_name(const bench_run_t *run, uint32_t worker, uint64_t cart, char *buf,
                     size_t bytes)
{
    char name[BENCH_CART_NAME_BYTES];
    size_t n = 0;
    name[n++] = 'c';
    n += digits_put(name + n, run->config->run_nonce, 16);
    name[n++] = '-';
    n += digits_put(name + n, worker, 10);
    name[n++] = '-';
    n += digits_put(name + n, cart, 10);
    if (bytes == 0)
        return;
    if (n >= bytes)
        n = bytes - 1;
    memcpy(buf, name, n);
    buf[n] = '\0';
}

void bench_position(const bench_config_t *config, uint64_t i, uint32_t *sku, uint32_t *location)
{
    uint32_t k = config->sku_locations;
    uint32_t step = config->locations / k;
    *sku = (uint32_t)(i / k);
    *location = (uint32_t)((*sku + (i % k) * step) % config->locations);
}

void bench_random_skus(worker_t *w, uint32_t *out, uint32_t n)
{
    uint32_t skus = w->run->config->skus;
    if (n == 1) { /* nothing to be distinct from */
        out[0] = (uint32_t)(((bench_rng_next(&w->rng) >> 32) * skus) >> 32);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        for (;;) {
            /* the top 32 random bits scaled to [0, skus): no division */
            uint32_t candidate = (uint32_t)(((bench_rng_next(&w->rng) >> 32) * skus) >> 32);
            bool seen = false;
            for (uint32_t j = 0; j < i && !seen; j++)
                seen = out[j] == candidate;
            if (!seen || n > skus) {
                out[i] = candidate;
                break;
            }
        }
    }
}

int byte_buffer_grow(byte_buffer_t *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + more)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

int byte_buffer_append(byte_buffer_t *b, const void *data, size_t len)
{
    if (byte_buffer_reserve(b, len) != 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void byte_buffer_compact(byte_buffer_t *b)
{
    if (b->pos == 0)
        return;
    if (b->pos < b->len)
        memmove(b->data, b->data + b->pos, b->len - b->pos);
    b->len -= b->pos;
    b->pos = 0;
}

void byte_buffer_free(byte_buffer_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- connections ---------------------------------------------------------------------------- */

/* Where connection `id` goes: the target (a group's leader), or for reads in a group, one member
 * after the other. */
static void conn_address(const bench_config_t *config, uint32_t id, const char **host,
                         uint16_t *port)
{
    *host = config->host;
    *port = config->port;
    if (config->group_count > 0 && config->scenario == SCENARIO_BROWSE) {
        *host = config->group_hosts[id % config->group_count];
        *port = config->group_ports[id % config->group_count];
    }
}

static int conn_open(const bench_config_t *config, conn_t *c, char *error, size_t bytes)
{
    const char *host;
    uint16_t port_number;
    conn_address(config, c->id, &host, &port_number);
    char port[8];
    snprintf(port, sizeof(port), "%u", port_number);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(error, bytes, "resolve %.200s: %s", host, gai_strerror(rc));
        return -1;
    }
    c->fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, res->ai_addr, res->ai_addrlen) != 0) {
        snprintf(error, bytes, "connect %.200s:%u: %s", host, port_number, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int flags = fcntl(c->fd, F_GETFL, 0);
    if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        snprintf(error, bytes, "non-blocking socket: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int conn_setup(worker_t *w, conn_t *c, uint32_t id, char *error, size_t bytes)
{
    const bench_config_t *config = w->run->config;
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->id = id;
    c->slots = calloc(config->pipeline, sizeof(*c->slots));
    c->free_slots = calloc(config->pipeline, sizeof(*c->free_slots));
    c->fifo = calloc(config->pipeline, sizeof(*c->fifo));
    if (c->slots == NULL || c->free_slots == NULL || c->fifo == NULL) {
        snprintf(error, bytes, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < config->pipeline; i++)
        c->free_slots[i] = config->pipeline - 1 - i;
    c->free_count = config->pipeline;
    if (conn_open(config, c, error, bytes) != 0)
        return -1;
    if (w->run->target->conn_init != NULL && w->run->target->conn_init(c) != 0) {
        snprintf(error, bytes, "out of memory");
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        snprintf(error, bytes, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void conn_release(const bench_run_t *run, conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (run->target->conn_free != NULL)
        run->target->conn_free(c);
    byte_buffer_free(&c->in);
    byte_buffer_free(&c->out);
    free(c->slots);
    free(c->free_slots);
    free(c->fifo);
}

static void conn_kill(worker_t *w, conn_t *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = true;
    if (w->error[0] == '\0')
        snprintf(w->error, sizeof(w->error), "connection %u: %s", c->id, why);
    epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    /* Its sessions will never complete: forget them. */
    for (uint32_t i = 0; i < w->run->config->pipeline; i++)
        if (c->slots[i].busy) {
            c->slots[i].busy = false;
            w->inflight--;
        }
    c->free_count = 0;
}

/* ---- sessions ------------------------------------------------------------------------------- */

/* Pack s->op's request into c->out and put c on the list worker_flush_queued sends. */
static int session_pack(worker_t *w, conn_t *c, uint32_t slot, session_t *s)
{
    if (w->run->target->pack(w, c, slot, s) != 0)
        return -1;
    if (!c->queued) {
        c->queued = true;
        w->queued[w->queued_count++] = c;
    }
    return 0;
}

static bool worker_may_start(worker_t *w, uint64_t now)
{
    const bench_run_t *run = w->run;
    if (w->exhausted || atomic_load_explicit(&run->phase, memory_order_relaxed) >= PHASE_DRAIN)
        return false;
    if (run->measure_end_ns != 0 && now >= run->measure_end_ns)
        return false;
    return true;
}

/* Start a new session on a free slot of c. false when no more sessions may start. */
static bool session_begin(worker_t *w, conn_t *c, uint64_t intended_ns)
{
    bench_run_t *run = w->run;
    const bench_config_t *config = run->config;
    if (config->requests > 0 &&
        atomic_fetch_add_explicit(&run->sessions_started, 1, memory_order_relaxed) >=
            config->requests) {
        w->exhausted = true;
        return false;
    }
    uint32_t slot = c->free_slots[c->free_count - 1];
    session_t *s = &c->slots[slot];
    uint32_t msgid = s->msgid;
    memset(s, 0, sizeof(*s));
    s->msgid = msgid;
    scenario_session_start(w, s);
    if (s->kind == SCENARIO_LOAD) {
        s->index = atomic_fetch_add_explicit(&run->load_next, 1, memory_order_relaxed);
        if (s->index >= run->load_total) {
            w->exhausted = true;
            return false;
        }
    }
    c->free_count--;
    s->intended_ns = intended_ns;
    s->session_start_ns = intended_ns;
    s->recorded = intended_ns >= run->measure_start_ns &&
                  (run->measure_end_ns == 0 || intended_ns < run->measure_end_ns);
    s->first_op = true;
    if (w->first_start_ns == 0)
        w->first_start_ns = intended_ns;
    if (session_pack(w, c, slot, s) != 0) {
        conn_kill(w, c, "request does not fit in memory");
        return false;
    }
    s->busy = true;
    w->inflight++;
    return true;
}

static void timeline_record(worker_t *w, uint64_t intended_ns, uint64_t latency_ns)
{
    const bench_run_t *run = w->run;
    uint64_t window_ns = (uint64_t)run->config->timeline_ms * 1000000u;
    uint64_t index = (intended_ns - run->measure_start_ns) / window_ns;
    if (index >= run->timeline_count)
        return;
    bench_timeline_window_t *t = &w->timeline[index];
    t->count++;
    t->over_5ms += latency_ns > 5000000u;
    t->over_20ms += latency_ns > 20000000u;
    if (latency_ns > t->max_ns)
        t->max_ns = latency_ns;
}

static void stats_record(op_stats_t *st, uint64_t latency_ns, bool is_error, const char *code)
{
    histogram_record(&st->latency_ns, latency_ns);
    if (!is_error) {
        st->ok++;
        return;
    }
    st->errors++;
    for (uint32_t i = 0; i < st->code_count; i++)
        if (strcmp(st->codes[i], code) == 0) {
            st->code_counts[i]++;
            return;
        }
    if (st->code_count < BENCH_ERROR_CODES_MAX) {
        snprintf(st->codes[st->code_count], BENCH_CODE_BYTES, "%s", code);
        st->code_counts[st->code_count++] = 1;
    }
}

void engine_reply(worker_t *w, conn_t *c, uint32_t slot, bool is_error, const char *code)
{
    bench_run_t *run = w->run;
    uint64_t now = w->read_ns;
    session_t *s = &c->slots[slot];
    s->busy = false;
    w->inflight--;
    uint64_t latency_ns = now > s->intended_ns ? now - s->intended_ns : 0;
    if (s->recorded)
        stats_record(&w->stats[s->op], latency_ns, is_error, code);
    if (s->recorded && w->timeline != NULL)
        timeline_record(w, s->intended_ns, latency_ns);
    atomic_store_explicit(&w->completed, w->completed + 1, memory_order_relaxed);
    if (is_error)
        atomic_store_explicit(&w->failures, w->failures + 1, memory_order_relaxed);
    if (s->kind == SCENARIO_FLASHSALE) {
        if (!is_error)
            w->flash_ok++;
        else if (strcmp(code, "INSUFFICIENT_STOCK") == 0) {
            w->flash_refused++;
            c->refused = true;
        }
    }
    if (scenario_session_next(w, s, is_error, code)) {
        s->intended_ns = now;
        s->first_op = false;
        if (session_pack(w, c, slot, s) != 0) {
            conn_kill(w, c, "request does not fit in memory");
            return;
        }
        s->busy = true;
        w->inflight++;
        return;
    }
    if (s->recorded && !run->sessions_single)
        histogram_record(&w->session_ns, now - s->session_start_ns);
    w->last_done_ns = now;
    c->free_slots[c->free_count++] = slot;
    if (run->config->rate_per_s == 0.0 && !c->refused && worker_may_start(w, now))
        session_begin(w, c, now);
}

/* Open loop: hand out every due request, filling one connection's free slots before going to
 * the next, so that what falls due between two wake-ups leaves in one write; the next batch
 * starts at the next connection. Each session's lateness counts from its intended start. */
static void worker_start_open(worker_t *w, uint64_t now)
{
    uint32_t full = 0; /* connections found without a free slot */
    bool started = false;
    while (pacer_next_ns(&w->pacer) <= now) {
        conn_t *c = &w->conns[w->rr % w->conn_count];
        if (c->free_count == 0 || c->dead || c->refused) {
            if (++full >= w->conn_count) {
                w->slot_waits += now >= w->run->measure_start_ns;
                break; /* backlog: the intended starts keep their time */
            }
            w->rr++;
            continue;
        }
        uint64_t intended = pacer_due(&w->pacer, now);
        if (!session_begin(w, c, intended))
            break;
        started = true;
        if (c->slots[c->free_slots[c->free_count]].recorded) /* the slot session_begin took */
            histogram_record(&w->send_late_ns, now - intended);
    }
    if (started) {
        w->rr++;
        w->last_send_ns = now;
    }
}

static void worker_start_closed(worker_t *w, uint64_t now)
{
    for (uint32_t i = 0; i < w->conn_count; i++) {
        conn_t *c = &w->conns[i];
        while (c->free_count > 0 && !c->dead && !c->refused)
            if (!session_begin(w, c, now))
                return;
    }
}

/* ---- I/O ---------------------------------------------------------------------------------- */

static void conn_want_write(worker_t *w, conn_t *c, bool want)
{
    if (c->write_blocked == want)
        return;
    c->write_blocked = want;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(w->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_flush(worker_t *w, conn_t *c)
{
    while (c->out.pos < c->out.len && !c->dead) {
        ssize_t n = send(c->fd, c->out.data + c->out.pos, c->out.len - c->out.pos, MSG_NOSIGNAL);
        if (n > 0) {
            c->out.pos += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_want_write(w, c, true);
            return;
        }
        conn_kill(w, c, n == 0 ? "send returned 0" : strerror(errno));
        return;
    }
    c->out.pos = c->out.len = 0;
    conn_want_write(w, c, false);
}

static void conn_read(worker_t *w, conn_t *c)
{
    for (;;) {
        if (c->in.len - c->in.pos > BENCH_IN_BYTES_MAX) {
            conn_kill(w, c, "reply larger than the bench's input limit");
            return;
        }
        if (byte_buffer_reserve(&c->in, 65536) != 0) {
            conn_kill(w, c, "out of memory");
            return;
        }
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            w->read_ns = bench_now_ns(); /* the replies of one read arrived together */
            if (w->run->target->parse(w, c) != 0) {
                conn_kill(w, c, w->error[0] ? w->error : "protocol error");
                return;
            }
            byte_buffer_compact(&c->in);
            if ((size_t)n < 65536)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_kill(w, c, n == 0 ? "server closed the connection" : strerror(errno));
        return;
    }
}

/* One send per connection that was given requests since the last flush (a blocked one is sent
 * when it becomes writable). */
static void worker_flush_queued(worker_t *w)
{
    for (uint32_t i = 0; i < w->queued_count; i++) {
        conn_t *c = w->queued[i];
        c->queued = false;
        if (c->out.len > c->out.pos && !c->write_blocked && !c->dead)
            conn_flush(w, c);
    }
    w->queued_count = 0;
}

static bool worker_all_refused(const worker_t *w)
{
    for (uint32_t i = 0; i < w->conn_count; i++)
        if (!w->conns[i].refused && !w->conns[i].dead)
            return false;
    return true;
}

/* epoll_pwait2 (a timeout in ns, for an open loop's intended starts), or where the kernel has no
 * epoll_pwait2 (before 5.11; valgrind) epoll_wait, its timeout rounded up to whole ms. */
static int worker_wait(worker_t *w, struct epoll_event *events, int64_t timeout_ns)
{
    static _Atomic bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = timeout_ns / 1000000000,
                              .tv_nsec = timeout_ns % 1000000000};
        int n = epoll_pwait2(w->epoll_fd, events, BENCH_EVENTS_MAX, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
    return epoll_wait(w->epoll_fd, events, BENCH_EVENTS_MAX,
                      (int)((timeout_ns + 999999) / 1000000));
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    bench_run_t *run = w->run;
    bool open_loop = run->config->rate_per_s > 0.0;
    uint64_t window_ns = (uint64_t)run->config->send_window_us * 1000;
    struct epoll_event events[BENCH_EVENTS_MAX];
    prctl(PR_SET_TIMERSLACK, 1UL); /* open loop: wake when pacer_send_ns says, not 50 us later */
    while (atomic_load_explicit(&run->phase, memory_order_relaxed) != PHASE_EXIT) {
        uint64_t now = bench_now_ns();
        if (run->config->scenario == SCENARIO_FLASHSALE && worker_all_refused(w))
            w->exhausted = true;
        bool may_start = worker_may_start(w, now);
        uint64_t send_ns = open_loop ? pacer_send_ns(&w->pacer, w->last_send_ns, window_ns) : 0;
        if (may_start && now >= run->start_ns) {
            if (open_loop && now >= send_ns)
                worker_start_open(w, now);
            else if (!open_loop && !w->filled) {
                worker_start_closed(w, now);
                w->filled = true;
            }
        }
        worker_flush_queued(w);
        if (!worker_may_start(w, now) && w->inflight == 0)
            break;
        int64_t timeout_ns =
            10 * 1000000; /* re-check the clock and the phase at least this often */
        if (now < run->start_ns)
            timeout_ns = (int64_t)(run->start_ns - now);
        else if (open_loop && may_start) {
            send_ns = pacer_send_ns(&w->pacer, w->last_send_ns, window_ns);
            timeout_ns = send_ns > now ? (int64_t)(send_ns - now) : 0;
            if (timeout_ns > 10 * 1000000)
                timeout_ns = 10 * 1000000;
            if (timeout_ns == 0 && w->inflight > 0) {
                /* backlog with no free slot: wait for a reply rather than spin */
                timeout_ns = 1000000;
            }
        }
        int n = worker_wait(w, events, timeout_ns);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->dead)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_read(w, c);
            if (!c->dead && (events[i].events & EPOLLOUT)) {
                c->write_blocked = false;
                conn_flush(w, c);
            }
        }
    }
    w->done = true;
    return NULL;
}

/* ---- the run ---------------------------------------------------------------------------- */

/* utime + stime of a process in seconds, -1 when unreadable. */
static double process_cpu_s(int pid)
{
    if (pid <= 0)
        return -1.0;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1.0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (p == NULL)
        return -1.0;
    unsigned long utime = 0, stime = 0;
    /* after ")": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1.0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void run_merge(bench_run_t *run)
{
    for (uint32_t op = 0; op < OP_COUNT; op++)
        histogram_reset(&run->stats[op].latency_ns);
    histogram_reset(&run->session_ns);
    histogram_reset(&run->send_late_ns);
    run->slot_waits = 0;
    for (uint32_t i = 0; i < run->worker_count; i++) {
        worker_t *w = &run->workers[i];
        for (uint32_t op = 0; op < OP_COUNT; op++) {
            op_stats_t *into = &run->stats[op], *from = &w->stats[op];
            histogram_merge(&into->latency_ns, &from->latency_ns);
            into->ok += from->ok;
            into->errors += from->errors;
            for (uint32_t k = 0; k < from->code_count; k++) {
                uint32_t j = 0;
                while (j < into->code_count && strcmp(into->codes[j], from->codes[k]) != 0)
                    j++;
                if (j == into->code_count) {
                    if (j == BENCH_ERROR_CODES_MAX)
                        continue;
                    memcpy(into->codes[j], from->codes[k], BENCH_CODE_BYTES);
                    into->code_count++;
                }
                into->code_counts[j] += from->code_counts[k];
            }
        }
        histogram_merge(&run->session_ns, &w->session_ns);
        for (uint32_t k = 0;
             w->timeline != NULL && run->timeline != NULL && k < run->timeline_count; k++) {
            bench_timeline_window_t *into = &run->timeline[k], *from = &w->timeline[k];
            into->count += from->count;
            into->over_5ms += from->over_5ms;
            into->over_20ms += from->over_20ms;
            into->max_ns = from->max_ns > into->max_ns ? from->max_ns : into->max_ns;
        }
        if (run->sessions_single) /* each session was its one request */
            for (uint32_t op = 0; op < OP_COUNT; op++)
                histogram_merge(&run->session_ns, &w->stats[op].latency_ns);
        histogram_merge(&run->send_late_ns, &w->send_late_ns);
        run->slot_waits += w->slot_waits;
        run->flash_ok += w->flash_ok;
        run->flash_refused += w->flash_refused;
        if (w->last_done_ns > run->last_done_ns)
            run->last_done_ns = w->last_done_ns;
        if (w->inflight > 0 || w->error[0] != '\0')
            run->incomplete = true;
        if (w->error[0] != '\0' && run->error[0] == '\0')
            memcpy(run->error, w->error, sizeof(run->error));
    }
}

static uint64_t run_completed(const bench_run_t *run, uint64_t *failures)
{
    uint64_t total = 0;
    *failures = 0;
    for (uint32_t i = 0; i < run->worker_count; i++) {
        total += atomic_load_explicit(&run->workers[i].completed, memory_order_relaxed);
        *failures += atomic_load_explicit(&run->workers[i].failures, memory_order_relaxed);
    }
    return total;
}

static bool run_all_done(const bench_run_t *run)
{
    for (uint32_t i = 0; i < run->worker_count; i++)
        if (!atomic_load(&run->workers[i].done))
            return false;
    return true;
}

/* Bounded runs (request budget, load, flash sale) end when every worker is done. */
static bool run_is_bounded(const bench_config_t *config)
{
    return config->requests > 0 || config->scenario == SCENARIO_LOAD ||
           config->scenario == SCENARIO_FLASHSALE;
}

/* CPU seconds of the server (--server-pid) and of this process at the start of the window. */
typedef struct cpu_mark {
    double server_s, client_s;
} cpu_mark_t;

static cpu_mark_t cpu_mark_take(const bench_config_t *config)
{
    return (cpu_mark_t){process_cpu_s(config->server_pid), process_cpu_s((int)getpid())};
}

/* Close the measured window: both sides' CPU time since `start` (-1 where unknown). */
static void cpu_window_close(bench_run_t *run, cpu_mark_t start)
{
    cpu_mark_t end = cpu_mark_take(run->config);
    run->server_cpu_s =
        end.server_s >= 0 && start.server_s >= 0 ? end.server_s - start.server_s : -1.0;
    run->client_cpu_s =
        end.client_s >= 0 && start.client_s >= 0 ? end.client_s - start.client_s : -1.0;
}

static void run_watch(bench_run_t *run, cpu_mark_t cpu_start)
{
    const bench_config_t *config = run->config;
    bool bounded = run_is_bounded(config);
    uint64_t deadline_ns =
        bounded ? run->start_ns + (uint64_t)(config->duration_s * 1e9) : run->measure_end_ns;
    uint64_t last_print_ns = run->start_ns, last_count = 0;
    bool printed = false, window_closed = false;
    cpu_mark_t cpu_measure_start = cpu_start;
    bool measuring = run->measure_start_ns <= run->start_ns;
    for (;;) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        uint64_t now = bench_now_ns();
        if (!measuring && now >= run->measure_start_ns) {
            measuring = true;
            cpu_measure_start = cpu_mark_take(config);
        }
        if (run_all_done(run))
            break;
        if (now >= deadline_ns && atomic_load(&run->phase) < PHASE_DRAIN) {
            atomic_store(&run->phase, PHASE_DRAIN);
            cpu_window_close(run, cpu_measure_start);
            window_closed = true;
        }
        if (now >= deadline_ns + (uint64_t)BENCH_DRAIN_MS * 1000000) {
            atomic_store(&run->phase, PHASE_EXIT);
            break;
        }
        if (config->progress && now - last_print_ns >= 1000000000u) {
            uint64_t failures, count = run_completed(run, &failures);
            double dt = (double)(now - last_print_ns) / 1e9;
            fprintf(stderr,
                    "\r[%5.1fs] %s %10.0f ops/s  %12" PRIu64 " done  %" PRIu64 " errors%s   ",
                    (double)(now - run->start_ns) / 1e9,
                    now < run->measure_start_ns ? "warm-up" : "running",
                    (double)(count - last_count) / dt, count, failures,
                    atomic_load(&run->phase) >= PHASE_DRAIN ? " (draining)" : "");
            last_count = count;
            last_print_ns = now;
            printed = true;
        }
    }
    if (printed)
        fprintf(stderr, "\n");
    if (!window_closed)
        cpu_window_close(run, cpu_measure_start);
}

/* --timeline-ms over a timed run: a window array per worker and the merged one. */
static int timeline_setup(bench_run_t *run, bool bounded, uint64_t now_ns)
{
    const bench_config_t *config = run->config;
    if (config->timeline_ms == 0 || bounded)
        return 0;
    double windows = config->duration_s * 1000.0 / config->timeline_ms + 1;
    run->timeline_count =
        windows < BENCH_TIMELINE_WINDOWS_MAX ? (uint32_t)windows : BENCH_TIMELINE_WINDOWS_MAX;
    run->timeline = calloc(run->timeline_count, sizeof(*run->timeline));
    for (uint32_t i = 0; i < run->worker_count; i++)
        run->workers[i].timeline = calloc(run->timeline_count, sizeof(*run->timeline));
    for (uint32_t i = 0; i < run->worker_count; i++)
        if (run->workers[i].timeline == NULL || run->timeline == NULL) {
            snprintf(run->error, sizeof(run->error), "out of memory");
            return -1;
        }
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    run->measure_start_unix_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 +
                                 (int64_t)(run->measure_start_ns - now_ns) / 1000000;
    return 0;
}

void bench_run_free(bench_run_t *run)
{
    free(run->timeline);
    run->timeline = NULL;
    run->timeline_count = 0;
}

int engine_run(bench_run_t *run)
{
    const bench_config_t *config = run->config;
    signal(SIGPIPE, SIG_IGN);
    run->worker_count =
        config->threads < config->connections ? config->threads : config->connections;
    run->workers = calloc(run->worker_count, sizeof(*run->workers));
    if (run->workers == NULL) {
        snprintf(run->error, sizeof(run->error), "out of memory");
        return -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < run->worker_count; i++)
        run->workers[i].epoll_fd = -1;
    for (uint32_t i = 0; i < run->worker_count && rc == 0; i++) {
        worker_t *w = &run->workers[i];
        w->index = i;
        w->run = run;
        w->rng = config->seed * 1000003u + i + 1;
        for (uint32_t op = 0; op < OP_COUNT; op++)
            histogram_reset(&w->stats[op].latency_ns);
        histogram_reset(&w->session_ns);
        histogram_reset(&w->send_late_ns);
        w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        w->conn_count =
            config->connections / run->worker_count + (i < config->connections % run->worker_count);
        w->conns = calloc(w->conn_count, sizeof(*w->conns));
        w->queued = calloc(w->conn_count, sizeof(*w->queued));
        if (w->epoll_fd < 0 || w->conns == NULL || w->queued == NULL) {
            snprintf(run->error, sizeof(run->error), "out of memory or epoll");
            rc = -1;
            break;
        }
        for (uint32_t k = 0; k < w->conn_count; k++)
            w->conns[k].fd = -1;
        for (uint32_t k = 0; k < w->conn_count && rc == 0; k++) {
            rc = conn_setup(w, &w->conns[k], k * run->worker_count + i, run->error,
                            sizeof(run->error));
        }
    }
    uint64_t now = bench_now_ns();
    run->start_ns = now + 20 * 1000000; /* every worker starts at the same instant */
    bool bounded = run_is_bounded(config);
    run->measure_start_ns = run->start_ns + (bounded ? 0 : (uint64_t)(config->warmup_s * 1e9));
    run->measure_end_ns =
        bounded ? 0 : run->measure_start_ns + (uint64_t)(config->duration_s * 1e9);
    if (rc == 0)
        rc = timeline_setup(run, bounded, now);
    run->server_cpu_s = run->client_cpu_s = 0.0;
    run->sessions_single = scenario_sessions_single(config->scenario);
    double interval_ns =
        config->rate_per_s > 0 ? 1e9 * run->worker_count / config->rate_per_s : 0.0;
    pthread_t threads[BENCH_THREADS_MAX];
    uint32_t started = 0;
    cpu_mark_t cpu_start = cpu_mark_take(config);
    for (uint32_t i = 0; i < run->worker_count && rc == 0; i++) {
        /* workers' schedules interleave: worker i is offset by i / workers of an interval */
        pacer_init(&run->workers[i].pacer,
                   run->start_ns + (uint64_t)(interval_ns * i / run->worker_count), interval_ns);
        if (pthread_create(&threads[i], NULL, worker_main, &run->workers[i]) != 0) {
            snprintf(run->error, sizeof(run->error), "pthread_create failed");
            rc = -1;
            atomic_store(&run->phase, PHASE_EXIT);
            break;
        }
        started++;
    }
    if (rc == 0)
        run_watch(run, cpu_start);
    atomic_store(&run->phase, PHASE_EXIT);
    for (uint32_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    uint64_t end_ns = bench_now_ns();
    run_merge(run);
    if (bounded) {
        uint64_t last = run->last_done_ns ? run->last_done_ns : end_ns;
        run->elapsed_s = last > run->start_ns ? (double)(last - run->start_ns) / 1e9 : 0.0;
    } else
        run->elapsed_s = (double)(run->measure_end_ns - run->measure_start_ns) / 1e9;
    for (uint32_t i = 0; i < run->worker_count; i++) {
        for (uint32_t k = 0; k < run->workers[i].conn_count; k++)
            conn_release(run, &run->workers[i].conns[k]);
        free(run->workers[i].conns);
        free(run->workers[i].queued);
        free(run->workers[i].timeline);
        if (run->workers[i].epoll_fd >= 0)
            close(run->workers[i].epoll_fd);
    }
    free(run->workers);
    run->workers = NULL;
    return rc;
}
