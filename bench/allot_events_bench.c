/* allot_events_bench.c - load for the change stream's benchmark (docs/benchmarks.md "Events"):
 *   allot-events-bench subscribe HOST PORT N TYPES [SKU]  N connections subscribed (TYPES comma
 *       separated, e.g. avail.changed,stock.changed), each read as fast as it comes (discarded)
 *       until SIGINT/SIGTERM; prints the notification bytes received.
 *   allot-events-bench read HOST PORT                    one consumer reads the whole stream
 *       with events.read pages of 1000; prints events and events/s.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"

static volatile sig_atomic_t stopping;

static void on_signal(int signum)
{
    (void)signum;
    stopping = 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static allot_client_t *connect_or_die(const char *host, uint16_t port)
{
    allot_client_t *c = allot_client_create();
    if (c == NULL || allot_client_connect(c, host, port, 60000) != 0) {
        fprintf(stderr, "connect %s:%u: %s\n", host, port,
                c ? allot_client_last_error(c) : "out of memory");
        exit(1);
    }
    return c;
}

/* The params of events.subscribe: {"types": [...], "skus": [sku]}. */
static void subscribe_params(const char *types, const char *sku, char *out, size_t bytes)
{
    size_t n = (size_t)snprintf(out, bytes, "{\"types\":[\"");
    for (const char *p = types; *p != '\0' && n + 8 < bytes; p++) {
        if (*p == ',') {
            n += (size_t)snprintf(out + n, bytes - n, "\",\"");
            continue;
        }
        out[n++] = *p;
    }
    if (sku != NULL)
        snprintf(out + n, bytes - n, "\"],\"skus\":[\"%s\"]}", sku);
    else
        snprintf(out + n, bytes - n, "\"]}");
}

static int run_subscribe(const char *host, uint16_t port, int count, const char *types,
                         const char *sku)
{
    allot_client_t **clients = calloc((size_t)count, sizeof(*clients));
    struct pollfd *fds = calloc((size_t)count, sizeof(*fds));
    char params[512];
    subscribe_params(types, sku, params, sizeof(params));
    for (int i = 0; i < count; i++) {
        clients[i] = connect_or_die(host, port);
        allot_reply_t r = {0};
        if (allot_client_call_json(clients[i], "events.subscribe", params, &r) != 0 || r.is_error) {
            fprintf(stderr, "events.subscribe: %s\n", r.is_error ? r.message : "failed");
            return 1;
        }
        allot_reply_free(&r);
        fds[i] = (struct pollfd){.fd = allot_client_fd(clients[i]), .events = POLLIN};
    }
    fprintf(stderr, "%d subscribers ready\n", count);
    uint64_t bytes = 0;
    static char buf[1 << 16];
    while (!stopping) {
        if (poll(fds, (nfds_t)count, 200) <= 0)
            continue;
        for (int i = 0; i < count; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[i].fd, buf, sizeof(buf)); /* notifications, discarded */
            if (n <= 0) {
                fprintf(stderr, "subscriber %d was disconnected\n", i);
                fds[i].fd = -1;
                continue;
            }
            bytes += (uint64_t)n;
        }
    }
    printf("notification bytes received: %" PRIu64 "\n", bytes);
    for (int i = 0; i < count; i++)
        allot_client_close(clients[i]);
    free(clients);
    free(fds);
    return 0;
}

static int run_read(const char *host, uint16_t port)
{
    allot_client_t *c = connect_or_die(host, port);
    allot_client_set_reply_bytes_max(c, 64u << 20);
    uint64_t after = 0, events = 0;
    double started = now_s();
    allot_reply_t r = {0};
    for (;;) {
        char params[96];
        snprintf(params, sizeof(params), "{\"after\":%" PRIu64 ",\"limit\":1000}", after);
        if (allot_client_call_json(c, "events.read", params, &r) != 0 || r.is_error) {
            fprintf(stderr, "events.read: %s\n",
                    r.is_error ? r.message : allot_client_last_error(c));
            return 1;
        }
        const msgpack_object *page = allot_object_map_get(&r.result, "events");
        events += page->via.array.size;
        after = allot_object_map_get(&r.result, "next")->via.u64;
        if (page->via.array.size == 0)
            break;
    }
    double elapsed = now_s() - started;
    printf("read %" PRIu64 " events in %.2f s: %.0f events/s (one consumer, pages of 1000)\n",
           events, elapsed, (double)events / elapsed);
    allot_reply_free(&r);
    allot_client_close(c);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 6 && strcmp(argv[1], "subscribe") == 0)
        return run_subscribe(argv[2], (uint16_t)atoi(argv[3]), atoi(argv[4]), argv[5],
                             argc >= 7 ? argv[6] : NULL);
    if (argc == 4 && strcmp(argv[1], "read") == 0)
        return run_read(argv[2], (uint16_t)atoi(argv[3]));
    fprintf(stderr, "usage: allot-events-bench subscribe HOST PORT N TYPES [SKU]\n"
                    "       allot-events-bench read HOST PORT\n");
    return 64;
}
