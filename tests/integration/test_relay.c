/* test_relay.c - allot-relay against a real `nats-server -js` started here: killed mid-stream
 * ten times (SIGKILL) while events keep coming, JetStream ends with exactly the stream's events,
 * in order, no gaps, no duplicates. Skipped (with a message) where nats-server is not installed.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>

#include "harness.h"
#include "harness_reply.h"

#define RELAY_KILLS      10
#define EVENTS_PER_ROUND 300
#define SEQS_MAX         (RELAY_KILLS + 2) * EVENTS_PER_ROUND * 4

static pid_t spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *log = fopen(log_path, "a");
        if (log != NULL) {
            dup2(fileno(log), 1);
            dup2(fileno(log), 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int reap(pid_t pid)
{
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Connect to the NATS server (it may still be starting). */
static natsConnection *nats_wait(const char *url)
{
    natsConnection *nc = NULL;
    for (int i = 0; i < 100; i++) {
        if (natsConnection_ConnectTo(&nc, url) == NATS_OK)
            return nc;
        usleep(50 * 1000);
    }
    cr_assert_fail("nats-server at %s did not come up", url);
    return NULL;
}

/* Every seq of the Allot stream, in order. */
static uint32_t allot_seqs(allot_client_t *c, uint64_t *seqs)
{
    uint32_t count = 0;
    uint64_t after = 0;
    allot_reply_t r = {0};
    for (;;) {
        harness_call_ok(c, "events.read",
                        harness_json("{'after':%llu,'limit':1000}", (unsigned long long)after), &r);
        uint32_t n = harness_reply_len(&r, "events");
        for (uint32_t i = 0; i < n; i++) {
            cr_assert_lt(count, SEQS_MAX);
            seqs[count++] = (uint64_t)harness_reply_int(&r, harness_json("events.%u.seq", i));
        }
        after = (uint64_t)harness_reply_int(&r, "next");
        if (n == 0)
            break;
    }
    allot_reply_free(&r);
    return count;
}

static void write_round(allot_client_t *c, int round)
{
    allot_reply_t r = {0};
    for (int i = 0; i < EVENTS_PER_ROUND / 3; i++) {
        uint32_t msgid;
        cr_assert_eq(allot_client_send_json(
                         c, "reserve",
                         harness_json("{'id':'r%d-%d','lines':[{'sku':'A','qty':1}]}", round, i),
                         &msgid),
                     0);
    }
    for (int i = 0; i < EVENTS_PER_ROUND / 3; i++) {
        cr_assert_eq(allot_client_recv(c, &r), 0);
        cr_assert_not(r.is_error, "%s", r.message);
    }
    allot_reply_free(&r);
}

Test(relay, killed_ten_times_mid_stream_jetstream_holds_every_event_once_in_order, .timeout = 180)
{
    if (system("command -v nats-server >/dev/null 2>&1") != 0)
        cr_skip_test("nats-server is not installed (Debian package nats-server): relay not tested");
    harness_server_t *s = harness_server_start(NULL);
    allot_client_t *c = harness_connect(s);
    harness_put_location(c, "W1", "'type':'warehouse','lat':52.5,'lon':13.4");
    harness_set_stock(c, "A", "W1", 1000000);
    char store[300], log[320], url[64], allot_port[16];
    harness_server_path(s, "jetstream", store, sizeof(store));
    harness_server_path(s, "relay.log", log, sizeof(log));
    uint16_t port = harness_port_reserve();
    snprintf(url, sizeof(url), "nats://127.0.0.1:%u", port);
    snprintf(allot_port, sizeof(allot_port), "%u", s->port);
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%u", port);
    char *nats_argv[] = {"nats-server", "-js", "-a",  "127.0.0.1", "-p",
                         port_text,     "-sd", store, NULL};
    pid_t nats = spawn(nats_argv, log);
    natsConnection *nc = nats_wait(url);
    char *relay_argv[] = {ALLOT_RELAY_PATH, "-p", allot_port, "--nats", url,
                          "--page",         "20", NULL,       NULL};
    srand(16);
    for (int round = 0; round < RELAY_KILLS; round++) {
        write_round(c, round);
        pid_t relay = spawn(relay_argv, log);
        usleep((useconds_t)(30 + rand() % 150) * 1000);
        kill(relay, SIGKILL);
        cr_assert_eq(reap(relay), 128 + SIGKILL, "the relay was running when it was killed");
    }
    write_round(c, RELAY_KILLS);
    relay_argv[7] = "--exit-when-idle";
    cr_assert_eq(reap(spawn(relay_argv, log)), 0, "the relay catches up and exits");

    static uint64_t seqs[SEQS_MAX];
    uint32_t count = allot_seqs(c, seqs);
    cr_assert_gt(count, RELAY_KILLS * EVENTS_PER_ROUND / 2);
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsStreamInfo *info = NULL;
    cr_assert_eq(js_GetStreamInfo(&info, js, "ALLOT", NULL, NULL), NATS_OK);
    cr_assert_eq(info->State.Msgs, count, "JetStream holds as many events as the stream (%llu)",
                 (unsigned long long)info->State.Msgs);
    uint64_t first = info->State.FirstSeq;
    jsStreamInfo_Destroy(info);
    for (uint32_t i = 0; i < count; i++) {
        natsMsg *msg = NULL;
        cr_assert_eq(js_GetMsg(&msg, js, "ALLOT", first + i, NULL, NULL), NATS_OK);
        const char *id = NULL;
        cr_assert_eq(natsMsgHeader_Get(msg, "Nats-Msg-Id", &id), NATS_OK);
        cr_assert_eq(strtoull(id, NULL, 10), seqs[i], "message %u is event %llu, in order", i,
                     (unsigned long long)seqs[i]);
        cr_assert_eq(strncmp(natsMsg_GetSubject(msg), "allot.", 6), 0);
        natsMsg_Destroy(msg);
    }
    /* the subjects carry what consumers filter on */
    natsMsg *last = NULL;
    cr_assert_eq(js_GetLastMsg(&last, js, "ALLOT", "allot.stock.changed.A", NULL, NULL), NATS_OK);
    natsMsg_Destroy(last);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    kill(nats, SIGTERM);
    reap(nats);
    nats_Close();
    allot_client_close(c);
    harness_server_stop(s);
    harness_server_destroy(s);
}
