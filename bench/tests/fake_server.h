/* fake_server.h - the bench tests' fake allotd: answers every request on its connections with
 * [1, msgid, nil, nil], and can stall once (sleep stall_ns after stall_after_ns of serving)
 * before answering. Header-only, for the test programs that run the real engine against it.
 *
 * Contract:
 *   - fake_server_start binds 127.0.0.1 on an ephemeral port (fs->port), then serves on its own
 *     thread once `connections` (0: 1) clients connected; set fs->stop and join the thread.
 *   - reads and requests count what the server read, for tests about batching.
 *   - fake_server_config fills a run's configuration for it (browse, 127.0.0.1:fs->port, one
 *     thread, 100 SKUs at one location, one SKU a request); fake_server_run runs the real engine
 *     over it, then stops the server.
 */
#ifndef ALLOT_BENCH_TESTS_FAKE_SERVER_H
#define ALLOT_BENCH_TESTS_FAKE_SERVER_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/wire.h"

#define FAKE_CONNECTIONS_MAX 4

typedef struct fake_server {
    int listen_fd;
    uint16_t port;
    uint32_t connections; /* accepted before serving (0: 1) */
    uint64_t stall_after_ns, stall_ns;
    bool stalled;
    uint64_t reads, requests; /* reads that brought requests, and the requests they brought */
    _Atomic bool stop;
} fake_server_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Answer every complete request in in[0, *len) with [1, msgid, nil, nil]; keep the rest. */
static void fake_server_answer(fake_server_t *fs, int fd, uint8_t *in, size_t *len)
{
    static uint8_t out[1 << 20];
    size_t pos = 0, out_len = 0;
    for (;;) {
        long size = wire_object_bytes(in + pos, *len - pos);
        if (size <= 0)
            break;
        /* [0, msgid, ...]: msgid in any unsigned width */
        const uint8_t *r = in + pos;
        cr_assert_eq(r[0], 0x94);
        uint32_t msgid = r[2];
        int width = r[2] == 0xcc ? 1 : r[2] == 0xcd ? 2 : r[2] == 0xce ? 4 : 0;
        if (width > 0)
            msgid = 0;
        for (int i = 0; i < width; i++)
            msgid = msgid << 8 | r[3 + i];
        uint8_t reply[] = {0x94,
                           0x01,
                           0xce,
                           (uint8_t)(msgid >> 24),
                           (uint8_t)(msgid >> 16),
                           (uint8_t)(msgid >> 8),
                           (uint8_t)msgid,
                           0xc0,
                           0xc0};
        memcpy(out + out_len, reply, sizeof(reply));
        out_len += sizeof(reply);
        pos += (size_t)size;
        fs->requests++;
    }
    memmove(in, in + pos, *len - pos);
    *len -= pos;
    for (size_t sent = 0; sent < out_len;) {
        ssize_t w = write(fd, out + sent, out_len - sent);
        if (w <= 0)
            break;
        sent += (size_t)w;
    }
}

static void *fake_server_main(void *arg)
{
    fake_server_t *fs = arg;
    uint32_t count = fs->connections ? fs->connections : 1;
    cr_assert_leq(count, FAKE_CONNECTIONS_MAX);
    struct pollfd pfd[FAKE_CONNECTIONS_MAX];
    for (uint32_t i = 0; i < count; i++) {
        pfd[i] = (struct pollfd){.fd = accept(fs->listen_fd, NULL, NULL), .events = POLLIN};
        cr_assert_geq(pfd[i].fd, 0);
    }
    static uint8_t in[FAKE_CONNECTIONS_MAX][1 << 20];
    size_t len[FAKE_CONNECTIONS_MAX] = {0};
    uint64_t first_ns = 0;
    while (!fs->stop) {
        if (poll(pfd, count, 50) <= 0)
            continue;
        for (uint32_t i = 0; i < count; i++) {
            if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(pfd[i].fd, in[i] + len[i], sizeof(in[i]) - len[i]);
            if (n <= 0) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                continue;
            }
            len[i] += (size_t)n;
            fs->reads++;
            if (first_ns == 0)
                first_ns = now_ns();
            if (!fs->stalled && now_ns() - first_ns >= fs->stall_after_ns) {
                fs->stalled = true;
                struct timespec ts = {0, (long)fs->stall_ns};
                nanosleep(&ts, NULL);
            }
            fake_server_answer(fs, pfd[i].fd, in[i], &len[i]);
        }
    }
    for (uint32_t i = 0; i < count; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    return NULL;
}

static void fake_server_start(fake_server_t *fs, pthread_t *thread)
{
    fs->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fs->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(listen(fs->listen_fd, 16), 0);
    socklen_t alen = sizeof(addr);
    getsockname(fs->listen_fd, (struct sockaddr *)&addr, &alen);
    fs->port = ntohs(addr.sin_port);
    pthread_create(thread, NULL, fake_server_main, fs);
}

/* config for a run against fs over connections x pipeline; the caller sets the rest (scenario
 * other than browse, rate, duration, ...). */
static void fake_server_config(const fake_server_t *fs, bench_config_t *config,
                               uint32_t connections, uint32_t pipeline)
{
    memset(config, 0, sizeof(*config));
    snprintf(config->host, sizeof(config->host), "127.0.0.1");
    config->port = fs->port;
    config->scenario = SCENARIO_BROWSE;
    config->connections = connections;
    config->pipeline = pipeline;
    config->threads = 1;
    config->skus = 100;
    config->locations = 1;
    config->sku_locations = 1;
    config->skus_per_request = 1;
}

/* Run the real engine over config against fs (started, its thread `thread`), asserting that the
 * run worked; then stop fs. */
static void fake_server_run(fake_server_t *fs, pthread_t thread, const bench_config_t *config,
                            bench_run_t *run)
{
    memset(run, 0, sizeof(*run));
    run->config = config;
    run->target = &bench_target_allot;
    cr_assert_eq(engine_run(run), 0, "%s", run->error);
    fs->stop = true;
    pthread_join(thread, NULL);
    close(fs->listen_fd);
}

#endif
