/* test_config.c - what allotd checks before it serves: --check-config refuses exactly what
 * start-up refuses, the systemd unit checks the data directory it runs on, the process keeps
 * its name after the huge-page re-exec. Against the real binary. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define TOKEN "correct-horse-battery-staple-42"

static void file_write(const char *path, const char *content, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(content, f);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
}

static void dir_remove(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Runs allotd with args (NULL-terminated, after the binary) and then the same with
 * --check-config; both must fail naming `expected`. */
static void check_config_refuses_what_start_up_refuses(const char *const *args,
                                                       const char *expected)
{
    const char *argv[24] = {ALLOTD_PATH};
    size_t n = 1;
    for (; args[n - 1] != NULL; n++)
        argv[n] = args[n - 1];
    argv[n] = "--check-config";
    argv[n + 1] = NULL;
    char *out = NULL, *err = NULL;
    int status = harness_run(argv, NULL, 10000, &out, &err);
    cr_expect_eq(status, 1, "--check-config must fail (stdout: %s)", out);
    cr_expect(strstr(err, expected) != NULL, "--check-config names '%s': %s", expected, err);
    cr_expect(strstr(out, "configuration ok") == NULL, "%s", out);
    free(out);
    free(err);

    argv[n] = NULL; /* the same without --check-config: start-up */
    err = NULL;
    status = harness_run(argv, NULL, 10000, NULL, &err);
    cr_expect_eq(status, 1, "start-up must fail");
    cr_expect(strstr(err, expected) != NULL, "start-up names '%s': %s", expected, err);
    free(err);
}

Test(config, check_config_refuses_a_missing_token_file_as_start_up_does)
{
    char dir[] = "/tmp/allot-config-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char data[300], token[300];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(token, sizeof(token), "%s/no-such-token", dir);
    const char *args[] = {"--listen",          "127.0.0.1:0", "--data-dir", data,
                          "--auth-token-file", token,         NULL};
    check_config_refuses_what_start_up_refuses(args, "No such file or directory");
    dir_remove(dir);
}

Test(config, check_config_refuses_a_token_file_others_can_read_as_start_up_does)
{
    char dir[] = "/tmp/allot-config-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char data[300], token[300];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(token, sizeof(token), "%s/token", dir);
    file_write(token, TOKEN "\n", 0644);
    const char *args[] = {"--listen",          "127.0.0.1:0", "--data-dir", data,
                          "--auth-token-file", token,         NULL};
    check_config_refuses_what_start_up_refuses(args, "chmod 600");
    dir_remove(dir);
}

Test(config, check_config_refuses_a_data_dir_that_cannot_be_used)
{
    char dir[] = "/tmp/allot-config-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char data[300];
    snprintf(data, sizeof(data), "%s/a-file", dir);
    file_write(data, "not a directory\n", 0600);
    const char *args[] = {"--listen", "127.0.0.1:0", "--data-dir", data, NULL};
    check_config_refuses_what_start_up_refuses(args, "not a directory");

    snprintf(data, sizeof(data), "%s/missing/parent/data", dir);
    const char *args2[] = {"--listen", "127.0.0.1:0", "--data-dir", data, NULL};
    check_config_refuses_what_start_up_refuses(args2, "cannot create it");

    char wal[320];
    snprintf(data, sizeof(data), "%s/data", dir);
    cr_assert_eq(mkdir(data, 0750), 0);
    snprintf(wal, sizeof(wal), "%s/wal", data);
    file_write(wal, "", 0600);
    const char *args3[] = {"--listen", "127.0.0.1:0", "--data-dir", data, NULL};
    check_config_refuses_what_start_up_refuses(args3, "/wal: not a directory");
    dir_remove(dir);
}

Test(config, check_config_refuses_addresses_start_up_cannot_use)
{
    char dir[] = "/tmp/allot-config-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *args[] = {"--listen", "allot.example:7411", "--data-dir", dir, NULL};
    check_config_refuses_what_start_up_refuses(args, "listen host 'allot.example'");
    const char *args2[] = {"--listen",   "127.0.0.1:0", "--metrics", "[::1]:9411",
                           "--data-dir", dir,           NULL};
    check_config_refuses_what_start_up_refuses(args2, "--metrics needs an IPv4");
    dir_remove(dir);
}

Test(config, check_config_accepts_what_starts_and_touches_nothing)
{
    char dir[] = "/tmp/allot-config-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char data[300], token[300];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(token, sizeof(token), "%s/token", dir);
    file_write(token, TOKEN "\n", 0600);
    const char *argv[] = {ALLOTD_PATH,         "--listen", "127.0.0.1:0",    "--data-dir", data,
                          "--auth-token-file", token,      "--check-config", NULL};
    char *out = NULL;
    cr_assert_eq(harness_run(argv, NULL, 10000, &out, NULL), 0);
    cr_expect(strstr(out, "configuration ok") != NULL, "%s", out);
    free(out);
    struct stat st;
    cr_expect_neq(stat(data, &st), 0, "--check-config creates nothing");

    char args[700];
    snprintf(args, sizeof(args), "--auth-token-file %s", token);
    harness_server_t *s = harness_server_start(args);
    harness_server_stop(s);
    harness_server_destroy(s);
    dir_remove(dir);
}

/* The value of `Key=` in the unit template (malloc'ed), or NULL. */
static char *unit_value(const char *text, const char *key)
{
    size_t key_len = strlen(key);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        if (len > key_len && strncmp(line, key, key_len) == 0 && line[key_len] == '=')
            return strndup(line + key_len + 1, len - key_len - 1);
        line = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

Test(config, the_unit_checks_the_settings_and_data_dir_the_service_runs_with)
{
    FILE *f = fopen(ALLOT_SOURCE_DIR "/tools/allotd.service.in", "r");
    cr_assert_not_null(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    char *pre = unit_value(text, "ExecStartPre");
    char *start = unit_value(text, "ExecStart");
    cr_assert_not_null(pre);
    cr_assert_not_null(start);
    cr_expect(strstr(start, "--data-dir /var/lib/allot") != NULL, "%s", start);
    char expected[1024];
    snprintf(expected, sizeof(expected), "%s --check-config", start);
    cr_expect_str_eq(pre, expected, "ExecStartPre is ExecStart plus --check-config");
    free(pre);
    free(start);
}

/* /proc/PID/<what> of the running server, NUL bytes turned into newlines (malloc'ed). */
static char *proc_file_read(pid_t pid, const char *what)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    char *text = calloc(1, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (text[i] == '\0')
            text[i] = '\n';
    return text;
}

Test(config, the_process_is_named_allotd_after_the_huge_page_re_exec)
{
    harness_server_t *s = harness_server_start(NULL);
    char *environ_text = proc_file_read(s->pid, "environ");
    cr_expect(strstr(environ_text, "glibc.malloc.hugetlb=1") != NULL,
              "the server re-executed itself with the tunable");
    char *comm = proc_file_read(s->pid, "comm");
    cr_expect_str_eq(comm, "allotd\n", "/proc/PID/comm (what pgrep -x and top show)");
    char exe[4096];
    char link[64];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)s->pid);
    ssize_t len = readlink(link, exe, sizeof(exe) - 1);
    cr_assert_gt(len, 0);
    exe[len] = '\0';
    char expected[4096];
    cr_assert_not_null(realpath(ALLOTD_PATH, expected));
    cr_expect_str_eq(exe, expected);
    free(environ_text);
    free(comm);
    harness_server_stop(s);
    harness_server_destroy(s);
}
