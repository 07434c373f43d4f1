/* harness.c - integration-test harness: runs allotd in a temp data dir and cleans up after. */
#include "tests/integration/harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/json_msgpack.h"

#ifndef ALLOTD_PATH
#error "ALLOTD_PATH must be defined by the build"
#endif

#define HARNESS_SERVERS_MAX    64
#define HARNESS_START_ATTEMPTS 5

static harness_server_t *harness_registry[HARNESS_SERVERS_MAX];
static bool harness_initialized;

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void harness_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int harness_status_decode(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

static bool harness_keep_data(void)
{
    const char *keep = getenv("ALLOT_TEST_KEEP_DATA");
    return keep != NULL && keep[0] != '\0' && strcmp(keep, "0") != 0;
}

static int harness_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void harness_data_dir_remove(harness_server_t *s)
{
    if (s->data_dir[0] != '\0' && !harness_keep_data())
        nftw(s->data_dir, harness_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Kill and reap without asserting (cleanup paths). */
static void harness_server_reap(harness_server_t *s)
{
    if (s->pid <= 0)
        return;
    int status = 0;
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        ;
    s->exit_status = harness_status_decode(status);
    s->pid = 0;
}

static void harness_atexit_cleanup(void)
{
    for (int i = 0; i < HARNESS_SERVERS_MAX; i++) {
        harness_server_t *s = harness_registry[i];
        if (s == NULL)
            continue;
        harness_server_reap(s);
        harness_data_dir_remove(s);
        harness_registry[i] = NULL;
    }
}

static void harness_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!harness_initialized) {
        atexit(harness_atexit_cleanup);
        harness_initialized = true;
    }
}

static void harness_registry_set(harness_server_t *s, harness_server_t *value)
{
    for (int i = 0; i < HARNESS_SERVERS_MAX; i++) {
        if (harness_registry[i] == s) {
            harness_registry[i] = value;
            return;
        }
    }
}

char *harness_server_log_read(const harness_server_t *s)
{
    FILE *f = fopen(s->log_path, "rb");
    char *text = NULL;
    size_t len = 0;
    if (f != NULL) {
        FILE *mem = open_memstream(&text, &len);
        char chunk[4096];
        size_t n;
        while (mem != NULL && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
            fwrite(chunk, 1, n, mem);
        if (mem != NULL)
            fclose(mem);
        fclose(f);
    }
    return text != NULL ? text : strdup("");
}

static void harness_log_dump(const harness_server_t *s)
{
    char *log = harness_server_log_read(s);
    fprintf(stderr, "---- allotd log %s ----\n%s\n---- end of log ----\n", s->log_path, log);
    free(log);
}

/* ---- starting and stopping ---------------------------------------------------------------- */

#define HARNESS_PORT_FLOOR    20000 /* servers' ports: from here up to the ephemeral range */
#define HARNESS_PORT_LOCK_DIR "/tmp/allot-test-ports"

unsigned harness_port_ephemeral_floor(void)
{
    unsigned low = 32768, high = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%u %u", &low, &high) != 2)
            low = 32768;
        fclose(f);
    }
    return low;
}

/* Whether a server could listen on 127.0.0.1:port now (as libuv binds: SO_REUSEADDR). */
static bool port_bindable(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
              bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(fd, 1) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Lock HARNESS_PORT_LOCK_DIR/<port> for this process (the lock goes with it); false when another
 * test process holds it. */
static bool port_lock(uint16_t port)
{
    char path[64];
    mkdir(HARNESS_PORT_LOCK_DIR, 0777);
    snprintf(path, sizeof path, "%s/%u", HARNESS_PORT_LOCK_DIR, (unsigned)port);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return false;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return false;
    }
    return true; /* fd stays open: the lock lasts as long as the test process */
}

uint16_t harness_port_reserve(void)
{
    static unsigned next;
    unsigned ceiling = harness_port_ephemeral_floor();
    cr_assert(ceiling > HARNESS_PORT_FLOOR + 1, "no ports below the ephemeral range (%u)", ceiling);
    unsigned span = ceiling - HARNESS_PORT_FLOOR;
    if (next == 0)
        next = (unsigned)getpid() * 7919u + (unsigned)time(NULL);
    for (unsigned tries = 0; tries < span; tries++) {
        uint16_t port = (uint16_t)(HARNESS_PORT_FLOOR + next++ % span);
        if (port_bindable(port) && port_lock(port) && port_bindable(port))
            return port;
    }
    cr_assert_fail("no free port in %u..%u", HARNESS_PORT_FLOOR, ceiling - 1);
    return 0;
}

static void harness_argv_set(harness_server_t *s, size_t index, const char *value)
{
    free(s->argv[index]);
    s->argv[index] = value != NULL ? strdup(value) : NULL;
}

/* argv = ALLOTD_PATH --listen 127.0.0.1:PORT --data-dir DIR extra... (extras kept at 5..). */
static void harness_argv_build(harness_server_t *s)
{
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)s->port);
    harness_argv_set(s, 0, ALLOTD_PATH);
    harness_argv_set(s, 1, "--listen");
    harness_argv_set(s, 2, listen);
    harness_argv_set(s, 3, "--data-dir");
    harness_argv_set(s, 4, s->data_dir);
}

/* Child side of fork: never returns. */
static void harness_child_exec(char *const *argv, const char *log_path, int stdin_fd)
{
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    if (log_path != NULL) {
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (log_fd < 0 || null_fd < 0)
            _exit(126);
        dup2(null_fd, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
    } else if (stdin_fd >= 0) {
        dup2(stdin_fd, 0);
    }
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], argv);
    dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void harness_server_spawn(harness_server_t *s)
{
    harness_argv_build(s);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        harness_child_exec(s->argv, s->log_path, -1);
    s->pid = pid;
    s->exit_status = -1;
}

/* Poll until ping answers "pong" (true), the server exits, or the timeout passes (false). */
static bool harness_server_wait_ready(harness_server_t *s, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    allot_client_t *c = allot_client_create();
    allot_reply_t reply = {0};
    bool ready = false;
    cr_assert(c != NULL);
    while (!ready && harness_now_ms() < deadline_ms) {
        int status = 0;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->exit_status = harness_status_decode(status);
            s->pid = 0;
            break;
        }
        if (allot_client_connect(c, "127.0.0.1", s->port, 500) == 0) {
            allot_client_set_timeout(c, 2000);
            ready = allot_client_call_json(c, "ping", NULL, &reply) == 0 && !reply.is_error &&
                    allot_object_str_equal(&reply.result, "pong");
        }
        if (!ready)
            harness_sleep_ms(20);
    }
    allot_reply_free(&reply);
    allot_client_close(c);
    return ready;
}

static bool harness_log_says_port_in_use(const harness_server_t *s)
{
    char *log = harness_server_log_read(s);
    bool in_use = strcasestr(log, "address already in use") != NULL;
    free(log);
    return in_use;
}

/* A data dir, the extra arguments, a place in the registry; not started. */
static harness_server_t *harness_server_new(const char *const *extra_argv)
{
    harness_init();
    harness_server_t *s = calloc(1, sizeof *s);
    cr_assert(s != NULL);
    s->exit_status = -1;
    size_t extra = 0;
    for (; extra_argv != NULL && extra_argv[extra] != NULL; extra++) {
        cr_assert(extra < HARNESS_ARGS_MAX, "too many extra server arguments");
        s->argv[5 + extra] = strdup(extra_argv[extra]);
    }
    snprintf(s->data_dir, sizeof s->data_dir, "/tmp/allot-test-XXXXXX");
    cr_assert(mkdtemp(s->data_dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(s->log_path, sizeof s->log_path, "%s/allotd.log", s->data_dir);
    harness_registry_set(NULL, s);
    return s;
}

harness_server_t *harness_server_prepare_argv(uint16_t port, const char *const *extra_argv)
{
    harness_server_t *s = harness_server_new(extra_argv);
    s->port = port;
    harness_argv_build(s);
    return s;
}

harness_server_t *harness_server_start_argv(const char *const *extra_argv)
{
    harness_server_t *s = harness_server_new(extra_argv);
    for (int attempt = 0; attempt < HARNESS_START_ATTEMPTS; attempt++) {
        s->port = harness_port_reserve();
        harness_server_spawn(s);
        if (harness_server_wait_ready(s, HARNESS_START_TIMEOUT_MS))
            return s;
        if (s->pid == 0 && harness_log_says_port_in_use(s))
            continue;
        break;
    }
    bool exited = s->pid == 0;
    harness_server_reap(s);
    harness_log_dump(s);
    if (exited)
        cr_assert_fail("allotd exited during start-up with status %d (log above)", s->exit_status);
    cr_assert_fail("allotd did not answer ping within %d ms (log above)", HARNESS_START_TIMEOUT_MS);
    return NULL;
}

harness_server_t *harness_server_start(const char *extra_args)
{
    char copy[1024];
    const char *argv[HARNESS_ARGS_MAX + 1];
    size_t argc = 0;
    snprintf(copy, sizeof copy, "%s", extra_args != NULL ? extra_args : "");
    cr_assert(extra_args == NULL || strlen(extra_args) < sizeof copy, "extra args too long");
    char *save = NULL;
    for (char *word = strtok_r(copy, " \t\n", &save); word != NULL;
         word = strtok_r(NULL, " \t\n", &save)) {
        cr_assert(argc < HARNESS_ARGS_MAX, "too many extra server arguments");
        argv[argc++] = word;
    }
    argv[argc] = NULL;
    return harness_server_start_argv(argv);
}

/* Wait for the server to exit: true with s->exit_status set, false on timeout. */
static bool harness_server_wait_exit(harness_server_t *s, int timeout_ms)
{
    int64_t deadline_ms = harness_now_ms() + timeout_ms;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid || (r < 0 && errno == ECHILD)) {
            s->exit_status = r == s->pid ? harness_status_decode(status) : -1;
            s->pid = 0;
            return true;
        }
        if (harness_now_ms() >= deadline_ms)
            return false;
        harness_sleep_ms(5);
    }
}

bool harness_server_exit_wait(harness_server_t *s, int timeout_ms)
{
    cr_assert(s != NULL);
    return s->pid == 0 || harness_server_wait_exit(s, timeout_ms);
}

int harness_server_stop_unchecked(harness_server_t *s)
{
    cr_assert(s != NULL);
    if (s->pid == 0)
        return s->exit_status;
    kill(s->pid, SIGTERM);
    if (!harness_server_wait_exit(s, HARNESS_STOP_TIMEOUT_MS)) {
        harness_server_reap(s);
        harness_log_dump(s);
        cr_assert_fail("allotd did not exit within %d ms of SIGTERM (killed; log above)",
                       HARNESS_STOP_TIMEOUT_MS);
    }
    return s->exit_status;
}

int harness_server_stop(harness_server_t *s)
{
    int status = harness_server_stop_unchecked(s);
    if (status != 0)
        harness_log_dump(s);
    cr_assert_eq(status, 0, "allotd exited with status %d after SIGTERM (log above)", status);
    return status;
}

int harness_server_kill9(harness_server_t *s)
{
    cr_assert(s != NULL);
    harness_server_reap(s);
    return s->exit_status;
}

bool harness_server_restart_try(harness_server_t *s, int timeout_ms)
{
    cr_assert(s != NULL && s->pid == 0, "restart_try: the server is still running");
    harness_server_spawn(s);
    if (harness_server_wait_ready(s, timeout_ms))
        return true;
    harness_server_reap(s);
    return false;
}

void harness_server_restart(harness_server_t *s)
{
    cr_assert(s != NULL);
    if (s->pid != 0)
        harness_server_stop(s);
    int64_t deadline_ms = harness_now_ms() + HARNESS_START_TIMEOUT_MS;
    for (;;) {
        int left_ms = (int)(deadline_ms - harness_now_ms());
        if (left_ms > 0 && harness_server_restart_try(s, left_ms))
            return;
        /* the old socket may linger briefly; anything else is a real failure */
        if (left_ms > 0 && harness_log_says_port_in_use(s)) {
            harness_sleep_ms(100);
            continue;
        }
        harness_log_dump(s);
        cr_assert_fail("allotd restart failed (status %d, log above)", s->exit_status);
    }
}

void harness_server_destroy(harness_server_t *s)
{
    if (s == NULL)
        return;
    harness_server_reap(s);
    harness_data_dir_remove(s);
    harness_registry_set(s, NULL);
    for (size_t i = 0; i < sizeof s->argv / sizeof s->argv[0]; i++)
        free(s->argv[i]);
    free(s);
}

/* ---- inspection --------------------------------------------------------------------------- */

long harness_server_rss_kb(const harness_server_t *s)
{
    char path[64], line[256];
    long rss_kb = -1;
    cr_assert(s != NULL && s->pid > 0, "rss: the server is not running");
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL, "open %s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &rss_kb) == 1)
            break;
    fclose(f);
    cr_assert(rss_kb >= 0, "no VmRSS in %s", path);
    return rss_kb;
}

const char *harness_server_log(const harness_server_t *s)
{
    return s->log_path;
}

const char *harness_server_path(const harness_server_t *s, const char *relative, char *buf,
                                size_t buf_bytes)
{
    snprintf(buf, buf_bytes, "%s/%s", s->data_dir, relative);
    return buf;
}

/* ---- clients ------------------------------------------------------------------------------ */

allot_client_t *harness_connect(const harness_server_t *s)
{
    allot_client_t *c = allot_client_create();
    cr_assert(c != NULL, "out of memory");
    int rc = allot_client_connect(c, "127.0.0.1", s->port, ALLOT_CLIENT_TIMEOUT_MS_DEFAULT);
    cr_assert_eq(rc, 0, "harness_connect: %s", allot_client_last_error(c));
    return c;
}

int harness_socket_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0, "connect to %u: %s",
                 (unsigned)port, strerror(errno));
    struct timeval timeout = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    return fd;
}

int harness_call_json(allot_client_t *c, const char *method, const char *params_json,
                      allot_reply_t *reply)
{
    int rc = allot_client_call_json(c, method, params_json, reply);
    cr_assert_eq(rc, 0, "%s %s: %s", method, params_json != NULL ? params_json : "{}",
                 allot_client_last_error(c));
    return 0;
}

void harness_call_ok(allot_client_t *c, const char *method, const char *params_json,
                     allot_reply_t *reply)
{
    harness_call_json(c, method, params_json, reply);
    cr_assert(!reply->is_error, "%s %s -> %s: %s", method, params_json != NULL ? params_json : "{}",
              reply->code, reply->message);
}

void harness_call_error(allot_client_t *c, const char *method, const char *params_json,
                        const char *code, allot_reply_t *reply)
{
    harness_call_json(c, method, params_json, reply);
    char *text = harness_reply_json(reply);
    bool matched = reply->is_error && strcmp(reply->code, code) == 0;
    if (!matched)
        fprintf(stderr, "%s %s -> %s\n", method, params_json != NULL ? params_json : "{}", text);
    free(text);
    cr_assert(matched, "%s: expected error %s, got %s %s", method, code,
              reply->is_error ? reply->code : "success", reply->message);
}

char *harness_reply_json(const allot_reply_t *reply)
{
    char *text = NULL;
    char err[JSON_MSGPACK_ERROR_BYTES];
    const msgpack_object *o = reply->is_error ? &reply->error : &reply->result;
    int rc = json_msgpack_to_text(o, JSON_MSGPACK_COMPACT, &text, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "reply to JSON: %s", err);
    return text;
}

/* ---- running programs --------------------------------------------------------------------- */

typedef struct harness_pipes {
    int in[2];
    int out[2];
    int err[2];
} harness_pipes_t;

static void harness_run_child(const char *const *argv, harness_pipes_t *p)
{
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    dup2(p->in[0], 0);
    dup2(p->out[1], 1);
    dup2(p->err[1], 2);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], (char *const *)argv);
    dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void harness_fd_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Feed stdin and drain stdout/stderr until both close or the deadline passes (false). Closes
 * the parent's pipe ends it is done with (setting them to -1). */
static bool harness_run_pump(harness_pipes_t *p, const char *stdin_text, int64_t deadline_ms,
                             FILE *out, FILE *err)
{
    size_t in_len = stdin_text != NULL ? strlen(stdin_text) : 0, in_off = 0;
    int *in_fd = &p->in[1];
    int *read_fds[3] = {NULL, &p->out[0], &p->err[0]};
    if (in_off == in_len)
        harness_fd_close(in_fd);
    while (p->out[0] >= 0 || p->err[0] >= 0) {
        struct pollfd pfd[3] = {
            {*in_fd, POLLOUT, 0}, {p->out[0], POLLIN, 0}, {p->err[0], POLLIN, 0}};
        int wait_ms = (int)(deadline_ms - harness_now_ms());
        if (wait_ms <= 0 || poll(pfd, 3, wait_ms) == 0)
            return false;
        if (*in_fd >= 0 && pfd[0].revents != 0) {
            ssize_t n = write(*in_fd, stdin_text + in_off, in_len - in_off);
            in_off += n > 0 ? (size_t)n : 0;
            if (n < 0 || in_off == in_len)
                harness_fd_close(in_fd);
        }
        for (int i = 1; i < 3; i++) {
            char chunk[4096];
            if (*read_fds[i] < 0 || pfd[i].revents == 0)
                continue;
            ssize_t n = read(*read_fds[i], chunk, sizeof chunk);
            if (n > 0)
                fwrite(chunk, 1, (size_t)n, i == 1 ? out : err);
            else if (n == 0 || errno != EINTR)
                harness_fd_close(read_fds[i]);
        }
    }
    harness_fd_close(in_fd);
    return true;
}

int harness_run(const char *const *argv, const char *stdin_text, int timeout_ms, char **out,
                char **err)
{
    harness_init();
    harness_pipes_t p;
    cr_assert(pipe2(p.in, O_CLOEXEC) == 0 && pipe2(p.out, O_CLOEXEC) == 0 &&
                  pipe2(p.err, O_CLOEXEC) == 0,
              "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        harness_run_child(argv, &p);
    close(p.in[0]);
    close(p.out[1]);
    close(p.err[1]);
    char *out_text = NULL, *err_text = NULL;
    size_t out_len = 0, err_len = 0;
    FILE *out_file = open_memstream(&out_text, &out_len);
    FILE *err_file = open_memstream(&err_text, &err_len);
    cr_assert(out_file != NULL && err_file != NULL);
    bool finished =
        harness_run_pump(&p, stdin_text, harness_now_ms() + timeout_ms, out_file, err_file);
    if (!finished)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    fclose(out_file);
    fclose(err_file);
    harness_fd_close(&p.in[1]);
    harness_fd_close(&p.out[0]);
    harness_fd_close(&p.err[0]);
    if (out != NULL)
        *out = out_text;
    else
        free(out_text);
    if (err != NULL)
        *err = err_text;
    else
        free(err_text);
    cr_assert(finished, "%s did not finish within %d ms", argv[0], timeout_ms);
    return harness_status_decode(status);
}
