/* allot-relay.c - publishes Allot's change stream into NATS JetStream with a durable cursor.
 *
 * Loop: events.read with its consumer's cursor (a page, waiting when there is nothing), publish
 * every event of the page asynchronously to JetStream (subject allot.<type>[.<key>], the event as
 * JSON, header Nats-Msg-Id = its seq), wait until JetStream acknowledged all of them, then
 * events.ack the page's last seq. Killed at any moment it loses nothing (the cursor moves only
 * after JetStream has the events) and duplicates nothing within the stream's duplicate window
 * (a page published again carries the same Nats-Msg-Id, which JetStream drops). A page that
 * JetStream did not fully acknowledge is published again from the cursor. docs/operations.md.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "client/client.h"
#include "client/json_msgpack.h"
#include "core/limits.h"

#define RELAY_EXIT_OK       0
#define RELAY_EXIT_FAILED   1 /* could not go on (NATS or Allot unusable) */
#define RELAY_EXIT_USAGE    2
#define RELAY_EXIT_EXPIRED  3 /* the cursor fell behind Allot's retention: events were lost */
#define RELAY_PAGE_MAX      1000
#define RELAY_WAIT_MS       1000
#define RELAY_ACK_WAIT_MS   10000
#define RELAY_RETRY_MS      500
#define RELAY_SUBJECT_BYTES 320

typedef struct relay_config {
    const char *allot_host;
    uint16_t allot_port;
    const char *nats_url;
    const char *consumer;
    const char *stream;
    int replicas;
    int64_t duplicate_window_s;
    int page;
    bool exit_when_idle;
} relay_config_t;

typedef struct relay {
    relay_config_t config;
    allot_client_t *allot;
    natsConnection *nc;
    jsCtx *js;
    volatile bool publish_failed; /* set by the JetStream error handler */
    uint64_t published;
} relay_t;

static volatile sig_atomic_t relay_stopping;

static void on_signal(int signum)
{
    (void)signum;
    relay_stopping = 1;
}

static void on_publish_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    relay_t *relay = closure;
    relay->publish_failed = true;
    fprintf(stderr, "allot-relay: publish failed: %s\n",
            pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err));
}

/* ---- NATS ----------------------------------------------------------------------------------- */

/* The stream for allot.> (created when missing; an existing one is used as it is). */
static int stream_ensure(relay_t *relay)
{
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char *subjects[] = {"allot.>"};
    config.Name = relay->config.stream;
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.Replicas = relay->config.replicas;
    config.Duplicates = relay->config.duplicate_window_s * 1000000000LL;
    jsStreamInfo *info = NULL;
    jsErrCode code = 0;
    natsStatus s = js_AddStream(&info, relay->js, &config, NULL, &code);
    if (s != NATS_OK && code == JSStreamNameExistErr)
        s = js_GetStreamInfo(&info, relay->js, relay->config.stream, NULL, &code);
    if (s != NATS_OK) {
        fprintf(stderr, "allot-relay: stream %s: %s (%d)\n", relay->config.stream,
                nats_GetLastError(NULL), (int)code);
        return -1;
    }
    jsStreamInfo_Destroy(info);
    return 0;
}

static int nats_open(relay_t *relay)
{
    natsOptions *options = NULL;
    natsStatus s = natsOptions_Create(&options);
    if (s == NATS_OK)
        s = natsOptions_SetURL(options, relay->config.nats_url);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(options, -1);
    if (s == NATS_OK)
        s = natsConnection_Connect(&relay->nc, options);
    natsOptions_Destroy(options);
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.PublishAsync.MaxPending = RELAY_PAGE_MAX;
    js_options.PublishAsync.ErrHandler = on_publish_error;
    js_options.PublishAsync.ErrHandlerClosure = relay;
    if (s == NATS_OK)
        s = natsConnection_JetStream(&relay->js, relay->nc, &js_options);
    if (s != NATS_OK) {
        fprintf(stderr, "allot-relay: NATS %s: %s\n", relay->config.nats_url,
                nats_GetLastError(NULL));
        return -1;
    }
    return stream_ensure(relay);
}

/* A subject token: bytes NATS gives a meaning to (blank, '.', '*', '>') become '_'. */
static size_t subject_token(char *out, size_t room, const msgpack_object *value)
{
    if (value == NULL || value->type != MSGPACK_OBJECT_STR || value->via.str.size == 0)
        return 0;
    size_t n = 0;
    out[n++] = '.';
    for (uint32_t i = 0; i < value->via.str.size && n + 1 < room; i++) {
        char c = value->via.str.ptr[i];
        out[n++] = (c == '.' || c == '*' || c == '>' || (unsigned char)c <= ' ') ? '_' : c;
    }
    return n;
}

/* allot.<type>, then the SKU (stock, avail), the order (order.*, shipment, return) or the id. */
static void subject_of(const msgpack_object *event, char *subject, size_t bytes)
{
    const msgpack_object *type = allot_object_map_get(event, "type");
    int n = snprintf(subject, bytes, "allot.%.*s", (int)type->via.str.size, type->via.str.ptr);
    const msgpack_object *key = allot_object_map_get(event, "sku");
    if (key == NULL || key->type != MSGPACK_OBJECT_STR)
        key = allot_object_map_get(event, "order");
    if ((key == NULL || key->type != MSGPACK_OBJECT_STR) ||
        allot_object_str_equal(type, "order.created") ||
        allot_object_str_equal(type, "order.changed") ||
        strncmp(type->via.str.ptr, "reservation.", 12) == 0)
        key = allot_object_map_get(event, "id");
    subject_token(subject + n, bytes - (size_t)n, key);
    subject[bytes - 1] = '\0';
}

static int publish_one(relay_t *relay, const msgpack_object *event, uint64_t seq)
{
    char subject[RELAY_SUBJECT_BYTES] = "";
    memset(subject, 0, sizeof(subject));
    subject_of(event, subject, sizeof(subject));
    char *json = NULL, err[128];
    size_t json_len = 0;
    if (json_msgpack_to_text(event, 0, &json, &json_len, err, sizeof(err)) != 0) {
        fprintf(stderr, "allot-relay: event %" PRIu64 ": %s\n", seq, err);
        return -1;
    }
    natsMsg *msg = NULL;
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, seq);
    natsStatus s = natsMsg_Create(&msg, subject, NULL, json, (int)json_len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
    if (s == NATS_OK)
        s = js_PublishMsgAsync(relay->js, &msg, NULL);
    natsMsg_Destroy(msg); /* NULL once the library took it */
    free(json);
    if (s != NATS_OK) {
        fprintf(stderr, "allot-relay: publish %s: %s\n", subject, nats_GetLastError(NULL));
        return -1;
    }
    return 0;
}

/* Publish a page and wait for JetStream to acknowledge every message of it. */
static int publish_page(relay_t *relay, const msgpack_object_array *events)
{
    relay->publish_failed = false;
    for (uint32_t i = 0; i < events->size; i++) {
        const msgpack_object *seq = allot_object_map_get(&events->ptr[i], "seq");
        if (seq == NULL || seq->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            publish_one(relay, &events->ptr[i], seq->via.u64) != 0) {
            relay->publish_failed = true;
            break;
        }
    }
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = RELAY_ACK_WAIT_MS;
    natsStatus s = js_PublishAsyncComplete(relay->js, &options);
    if (s != NATS_OK || relay->publish_failed) {
        natsMsgList pending;
        if (js_PublishAsyncGetPendingList(&pending, relay->js) == NATS_OK)
            natsMsgList_Destroy(&pending);
        return -1;
    }
    relay->published += events->size;
    return 0;
}

/* ---- Allot ---------------------------------------------------------------------------------- */

static int allot_open(relay_t *relay)
{
    if (relay->allot == NULL)
        relay->allot = allot_client_create();
    if (relay->allot == NULL)
        return -1;
    if (allot_client_connected(relay->allot))
        return 0;
    if (allot_client_connect(relay->allot, relay->config.allot_host, relay->config.allot_port,
                             RELAY_WAIT_MS + 5000) != 0) {
        fprintf(stderr, "allot-relay: %s\n", allot_client_last_error(relay->allot));
        return -1;
    }
    const char *token = getenv("ALLOT_TOKEN");
    if (token != NULL && token[0] != '\0') {
        char params[CLI_TOKEN_BYTES_MAX + 32];
        snprintf(params, sizeof(params), "{\"token\":\"%s\"}", token);
        allot_reply_t r = {0};
        int rc = allot_client_call_json(relay->allot, "auth", params, &r);
        bool ok = rc == 0 && !r.is_error;
        allot_reply_free(&r);
        if (!ok)
            return -1;
    }
    return 0;
}

/* One page: read, publish, acknowledge. 1: nothing to do; 0: done; -1: retry; -2: expired. */
static int relay_step(relay_t *relay)
{
    char params[256];
    snprintf(params, sizeof(params), "{\"consumer\":\"%s\",\"limit\":%d,\"wait_ms\":%d}",
             relay->config.consumer, relay->config.page, RELAY_WAIT_MS);
    allot_reply_t r = {0};
    if (allot_open(relay) != 0 || allot_client_call_json(relay->allot, "events.read", params, &r)) {
        allot_reply_free(&r);
        return -1;
    }
    if (r.is_error) {
        fprintf(stderr, "allot-relay: events.read: %s: %s\n", r.code, r.message);
        int rc = strcmp(r.code, "EXPIRED") == 0 ? -2 : -1;
        allot_reply_free(&r);
        return rc;
    }
    const msgpack_object *events = allot_object_map_get(&r.result, "events");
    if (events == NULL || events->type != MSGPACK_OBJECT_ARRAY || events->via.array.size == 0) {
        allot_reply_free(&r);
        return 1;
    }
    const msgpack_object_array *page = &events->via.array;
    uint64_t last = allot_object_map_get(&page->ptr[page->size - 1], "seq")->via.u64;
    int rc = publish_page(relay, page);
    allot_reply_free(&r);
    if (rc != 0)
        return -1;
    snprintf(params, sizeof(params), "{\"consumer\":\"%s\",\"seq\":%" PRIu64 "}",
             relay->config.consumer, last);
    rc = allot_client_call_json(relay->allot, "events.ack", params, &r);
    rc = rc == 0 && !r.is_error ? 0 : -1;
    allot_reply_free(&r);
    return rc;
}

static int relay_run(relay_t *relay)
{
    while (!relay_stopping) {
        int rc = relay_step(relay);
        if (rc == -2) {
            fprintf(stderr,
                    "allot-relay: the cursor of %s is older than what Allot retains: "
                    "events were lost; reset it (events.ack) to go on\n",
                    relay->config.consumer);
            return RELAY_EXIT_EXPIRED;
        }
        if (rc == 1 && relay->config.exit_when_idle)
            return RELAY_EXIT_OK;
        if (rc == -1)
            usleep(RELAY_RETRY_MS * 1000);
    }
    return RELAY_EXIT_OK;
}

/* ---- command line --------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: allot-relay [-h HOST] [-p PORT] [--nats URL] [--consumer NAME] [--stream NAME]\n"
        "                   [--replicas N] [--duplicate-window-s S] [--page N] "
        "[--exit-when-idle]\n\n"
        "Publishes Allot's change stream into NATS JetStream (docs/operations.md).\n\n"
        "  -h, --host HOST          Allot server (default 127.0.0.1; token in $ALLOT_TOKEN)\n"
        "  -p, --port PORT          Allot port (default 7411)\n"
        "      --nats URL           NATS server (default nats://127.0.0.1:4222)\n"
        "      --consumer NAME      Allot consumer whose cursor the relay keeps "
        "(default allot-relay)\n"
        "      --stream NAME        JetStream stream, created for allot.> when missing "
        "(default ALLOT)\n"
        "      --replicas N         replicas of a stream it creates (default 1; use 3)\n"
        "      --duplicate-window-s S  duplicate window of a stream it creates (default 120)\n"
        "      --page N             events per page, 1..1000 (default 1000)\n"
        "      --exit-when-idle     exit 0 once the stream is relayed (tests, catch-up)\n\n"
        "Exit status: 0 stopped (SIGINT/SIGTERM) or idle, 1 NATS or Allot unusable, 2 usage,\n"
        "3 the cursor fell behind Allot's retention.\n");
}

static int config_parse(int argc, char **argv, relay_config_t *c)
{
    static const struct option options[] = {{"host", required_argument, NULL, 'h'},
                                            {"port", required_argument, NULL, 'p'},
                                            {"nats", required_argument, NULL, 'n'},
                                            {"consumer", required_argument, NULL, 'c'},
                                            {"stream", required_argument, NULL, 's'},
                                            {"replicas", required_argument, NULL, 'r'},
                                            {"duplicate-window-s", required_argument, NULL, 'd'},
                                            {"page", required_argument, NULL, 'P'},
                                            {"exit-when-idle", no_argument, NULL, 'x'},
                                            {"help", no_argument, NULL, 'H'},
                                            {NULL, 0, NULL, 0}};
    *c = (relay_config_t){"127.0.0.1", 7411, "nats://127.0.0.1:4222", "allot-relay", "ALLOT",
                          1,           120,  RELAY_PAGE_MAX,          false};
    int opt;
    while ((opt = getopt_long(argc, argv, "h:p:", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            c->allot_host = optarg;
            break;
        case 'p':
            c->allot_port = (uint16_t)atoi(optarg);
            break;
        case 'n':
            c->nats_url = optarg;
            break;
        case 'c':
            c->consumer = optarg;
            break;
        case 's':
            c->stream = optarg;
            break;
        case 'r':
            c->replicas = atoi(optarg);
            break;
        case 'd':
            c->duplicate_window_s = atoll(optarg);
            break;
        case 'P':
            c->page = atoi(optarg);
            break;
        case 'x':
            c->exit_when_idle = true;
            break;
        case 'H':
            usage(stdout);
            exit(RELAY_EXIT_OK);
        default:
            return -1;
        }
    }
    bool ok = optind == argc && c->allot_port > 0 && c->replicas >= 1 && c->replicas <= 5 &&
              c->duplicate_window_s >= 1 && c->page >= 1 && c->page <= RELAY_PAGE_MAX &&
              strlen(c->consumer) >= 1 && strlen(c->consumer) <= ALLOT_ID_BYTES_MAX &&
              strchr(c->consumer, '"') == NULL && strchr(c->consumer, '\\') == NULL;
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    relay_t relay = {0};
    if (config_parse(argc, argv, &relay.config) != 0) {
        usage(stderr);
        return RELAY_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int status = nats_open(&relay) == 0 ? relay_run(&relay) : RELAY_EXIT_FAILED;
    fprintf(stderr, "allot-relay: published %" PRIu64 " events\n", relay.published);
    allot_client_close(relay.allot);
    jsCtx_Destroy(relay.js);
    natsConnection_Destroy(relay.nc);
    nats_Close();
    return status;
}
