/* Unit tests for common/log.c: line format, escaping, level filter, reopen
 * after rotation, key prefixes, and no interleaving across processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "buf.h"
#include "log.h"

typedef struct fixture {
    char dir[64];   /* temporary directory */
    char path[128]; /* log file inside it */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sy-test-log-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/switchyard.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sy_log_close();
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Reads the whole file into a NUL-terminated heap string. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    sy_buf_t b;
    sy_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        sy_buf_append(&b, chunk, n);
    fclose(fp);
    sy_buf_append(&b, "", 0);
    if (b.data == NULL)
        sy_buf_reserve(&b, 1), b.data[0] = '\0';
    *len = b.len;
    return sy_buf_steal(&b, NULL);
}

/* Splits text into lines and parses each as a JSON object. Returns the count
 * and stores up to max parsed lines (caller puts them). */
static size_t parse_lines(char *text, json_object **out, size_t max)
{
    size_t count = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(line);
        assert_non_null(o);
        assert_true(json_object_is_type(o, json_type_object));
        if (count < max)
            out[count] = o;
        else
            json_object_put(o);
        count++;
    }
    return count;
}

static const char *member(json_object *o, const char *k)
{
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(o, k, &v));
    return json_object_get_string(v);
}

static void check_ts(const char *ts)
{
    /* 2026-11-21T22:10:00.123Z */
    assert_int_equal(strlen(ts), 24);
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < 24; i++) {
        if (shape[i] == 'd')
            assert_true(ts[i] >= '0' && ts[i] <= '9');
        else
            assert_int_equal(ts[i], shape[i]);
    }
}

static void test_line_format_and_filter(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(sy_log_open(f->path, SY_LOG_INFO, "dataplane"), 0);
    assert_false(sy_log_enabled(SY_LOG_DEBUG));
    assert_true(sy_log_enabled(SY_LOG_INFO));
    sy_log(SY_LOG_DEBUG, "hidden", "not written");
    SY_LOG_DEBUG_("hidden", "not written either %d", 1);
    sy_log(SY_LOG_INFO, "listen", "listening on %s:%d", "127.0.0.1", 8080);
    sy_log(SY_LOG_ERROR, "weird", "quote \" backslash \\ newline \n tab \t ctl \x01 utf8 \xc3\xa9");
    const char *fields = "\"worker\":3,\"status\":502";
    sy_log_fields(SY_LOG_WARN, "upstream", fields, strlen(fields));
    sy_log_line("{\"access\":true}", 15);

    size_t len;
    char *text = slurp(f->path, &len);
    assert_non_null(text);
    /* Exactly four lines, each ending in a newline. */
    size_t nl = 0;
    for (size_t i = 0; i < len; i++)
        nl += text[i] == '\n';
    assert_int_equal(nl, 4);
    assert_int_equal(text[len - 1], '\n');
    json_object *lines[4];
    assert_int_equal(parse_lines(text, lines, 4), 4);

    check_ts(member(lines[0], "ts"));
    assert_string_equal(member(lines[0], "level"), "info");
    assert_string_equal(member(lines[0], "component"), "dataplane");
    assert_string_equal(member(lines[0], "event"), "listen");
    assert_string_equal(member(lines[0], "msg"), "listening on 127.0.0.1:8080");
    json_object *pid = NULL;
    assert_true(json_object_object_get_ex(lines[0], "pid", &pid));
    assert_int_equal(json_object_get_int64(pid), getpid());

    assert_string_equal(member(lines[1], "level"), "error");
    assert_string_equal(member(lines[1], "msg"),
                        "quote \" backslash \\ newline \n tab \t ctl \x01 utf8 \xc3\xa9");

    assert_string_equal(member(lines[2], "level"), "warn");
    assert_string_equal(member(lines[2], "event"), "upstream");
    assert_string_equal(member(lines[2], "worker"), "3");
    assert_string_equal(member(lines[2], "status"), "502");

    json_object *access = NULL;
    assert_true(json_object_object_get_ex(lines[3], "access", &access));
    assert_int_equal(json_object_object_length(lines[3]), 1);
    for (int i = 0; i < 4; i++)
        json_object_put(lines[i]);
    free(text);
}

static void test_long_message(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(sy_log_open(f->path, SY_LOG_DEBUG, "control"), 0);
    size_t n = 100000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (i % 100 == 99) ? '"' : (char)('a' + i % 26);
    big[n] = '\0';
    sy_log(SY_LOG_DEBUG, "big", "%s", big);
    size_t len;
    char *text = slurp(f->path, &len);
    json_object *line[1];
    assert_int_equal(parse_lines(text, line, 1), 1);
    assert_string_equal(member(line[0], "msg"), big);
    assert_string_equal(member(line[0], "level"), "debug");
    json_object_put(line[0]);
    free(text);
    free(big);
}

static void test_reopen_after_rotation(void **state)
{
    fixture_t *f = *state;
    char rotated[160];
    snprintf(rotated, sizeof(rotated), "%s.1", f->path);
    assert_int_equal(sy_log_open(f->path, SY_LOG_INFO, "dataplane"), 0);
    sy_log(SY_LOG_INFO, "before", "one");
    assert_int_equal(rename(f->path, rotated), 0);
    sy_log(SY_LOG_INFO, "still-old", "two"); /* the open fd follows the rename */
    assert_int_equal(sy_log_reopen(), 0);
    sy_log(SY_LOG_INFO, "after", "three");

    /* The async-signal-safe request reopens on the next call. */
    char rotated2[160];
    snprintf(rotated2, sizeof(rotated2), "%s.2", f->path);
    assert_int_equal(rename(f->path, rotated2), 0);
    sy_log_request_reopen();
    sy_log(SY_LOG_INFO, "after-request", "four");

    size_t len;
    char *text = slurp(rotated, &len);
    json_object *l[3];
    assert_int_equal(parse_lines(text, l, 3), 2);
    assert_string_equal(member(l[0], "event"), "before");
    assert_string_equal(member(l[1], "event"), "still-old");
    json_object_put(l[0]);
    json_object_put(l[1]);
    free(text);

    text = slurp(rotated2, &len);
    assert_int_equal(parse_lines(text, l, 3), 1);
    assert_string_equal(member(l[0], "event"), "after");
    json_object_put(l[0]);
    free(text);

    text = slurp(f->path, &len);
    assert_int_equal(parse_lines(text, l, 3), 1);
    assert_string_equal(member(l[0], "event"), "after-request");
    json_object_put(l[0]);
    free(text);
}

static void test_open_errors_and_stderr(void **state)
{
    fixture_t *f = *state;
    char bad[200];
    snprintf(bad, sizeof(bad), "%s/missing-dir/x.log", f->dir);
    assert_int_equal(sy_log_open(bad, SY_LOG_INFO, "x"), -ENOENT);
    assert_int_equal(sy_log_open(f->path, (sy_log_level_t)9, "x"), SY_EINVAL);

    /* "-" and close() both mean stderr: capture it in a file. */
    char errpath[160];
    snprintf(errpath, sizeof(errpath), "%s/stderr.txt", f->dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *cap = fopen(errpath, "w");
    dup2(fileno(cap), STDERR_FILENO);
    assert_int_equal(sy_log_open("-", SY_LOG_WARN, "mock"), 0);
    sy_log(SY_LOG_INFO, "filtered", "x");
    sy_log(SY_LOG_WARN, "to-stderr", "y");
    sy_log_close();
    sy_log(SY_LOG_ERROR, "after-close", "z");
    dup2(saved, STDERR_FILENO);
    close(saved);
    fclose(cap);
    size_t len;
    char *text = slurp(errpath, &len);
    json_object *l[3];
    assert_int_equal(parse_lines(text, l, 3), 2);
    assert_string_equal(member(l[0], "event"), "to-stderr");
    assert_string_equal(member(l[0], "component"), "mock");
    assert_string_equal(member(l[1], "event"), "after-close");
    json_object_put(l[0]);
    json_object_put(l[1]);
    free(text);
}

static void test_no_interleaving_across_processes(void **state)
{
    fixture_t *f = *state;
    enum { PROCS = 4, LINES = 200, MSG = 6000 };
    assert_int_equal(sy_log_open(f->path, SY_LOG_INFO, "dataplane"), 0);
    /* Messages larger than PIPE_BUF and the stack buffer, from several
     * processes at once: every line must still come out whole. */
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char *msg = malloc(MSG + 1);
            memset(msg, 'A' + p, MSG);
            msg[MSG] = '\0';
            for (int i = 0; i < LINES; i++)
                sy_log(SY_LOG_INFO, "burst", "%s", msg);
            free(msg);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        assert_true(wait(&status) > 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    size_t len;
    char *text = slurp(f->path, &len);
    size_t count = 0;
    int per[PROCS] = {0};
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(line);
        assert_non_null(o);
        const char *msg = member(o, "msg");
        assert_int_equal(strlen(msg), MSG);
        int who = msg[0] - 'A';
        assert_true(who >= 0 && who < PROCS);
        for (size_t i = 0; i < MSG; i++)
            assert_int_equal(msg[i], 'A' + who);
        per[who]++;
        json_object_put(o);
        count++;
    }
    assert_int_equal(count, PROCS * LINES);
    for (int p = 0; p < PROCS; p++)
        assert_int_equal(per[p], LINES);
    free(text);
}

static void *thread_logger(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 300; i++)
        sy_log(SY_LOG_INFO, "thread", "t%d line %d %0500d", id, i, 0);
    return NULL;
}

static size_t count_valid_lines(const char *path)
{
    size_t len;
    char *text = slurp(path, &len);
    if (text == NULL)
        return 0;
    size_t n = parse_lines(text, NULL, 0); /* asserts each line is whole JSON */
    free(text);
    return n;
}

static void test_threads_with_concurrent_reopen(void **state)
{
    fixture_t *f = *state;
    enum { THREADS = 4 };
    assert_int_equal(sy_log_open(f->path, SY_LOG_INFO, "dataplane"), 0);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_logger, (void *)(intptr_t)i), 0);
    /* Rotate repeatedly while the threads write: no line may be lost or torn. */
    char rotated[THREADS * 4][160];
    int rotations = 0;
    for (; rotations < THREADS * 4; rotations++) {
        snprintf(rotated[rotations], sizeof(rotated[rotations]), "%s.%d", f->path, rotations);
        /* A requested reopen may still be in progress on a logging thread
         * (it took the request first): wait, boundedly, for the new file. */
        int rc = -1;
        for (int tries = 0; tries < 2000 && rc != 0; tries++) {
            rc = rename(f->path, rotated[rotations]);
            if (rc != 0) {
                assert_int_equal(errno, ENOENT);
                usleep(500);
            }
        }
        assert_int_equal(rc, 0);
        if (rotations % 2)
            assert_int_equal(sy_log_reopen(), 0);
        else
            sy_log_request_reopen();
        /* This line performs a requested reopen if no thread took it first. */
        sy_log(SY_LOG_INFO, "main", "rotation %d", rotations);
        usleep(1000);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    sy_log_close();
    size_t total = count_valid_lines(f->path);
    for (int r = 0; r < rotations; r++)
        total += count_valid_lines(rotated[r]);
    assert_int_equal(total, THREADS * 300 + rotations);
}

static void test_level_parse(void **state)
{
    (void)state;
    sy_log_level_t l = SY_LOG_ERROR;
    assert_int_equal(sy_log_level_parse("debug", &l), 0);
    assert_int_equal(l, SY_LOG_DEBUG);
    assert_int_equal(sy_log_level_parse("INFO", &l), 0);
    assert_int_equal(l, SY_LOG_INFO);
    assert_int_equal(sy_log_level_parse("warn", &l), 0);
    assert_int_equal(l, SY_LOG_WARN);
    assert_int_equal(sy_log_level_parse("error", &l), 0);
    assert_int_equal(l, SY_LOG_ERROR);
    assert_int_equal(sy_log_level_parse("verbose", &l), SY_EINVAL);
    assert_int_equal(sy_log_level_parse("", &l), SY_EINVAL);
    assert_int_equal(sy_log_level_parse(NULL, &l), SY_EINVAL);
    assert_int_equal(l, SY_LOG_ERROR); /* untouched on failure */
}

static void test_key_prefix(void **state)
{
    (void)state;
    char out[32];
    const char *key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
    sy_log_key_prefix(key, strlen(key), out, sizeof(out));
    assert_string_equal(out, "sk-proj-\xe2\x80\xa6");

    /* Never more than 8 characters, and never the whole of a short key. */
    for (size_t n = 0; n <= 40; n++) {
        char k[41];
        for (size_t i = 0; i < n; i++)
            k[i] = (char)('a' + i % 26);
        memset(out, 'X', sizeof(out));
        sy_log_key_prefix(k, n, out, 16);
        size_t shown = strlen(out) - 3;
        assert_memory_equal(out + shown, "\xe2\x80\xa6", 4);
        assert_true(shown <= 8);
        if (n > 0)
            assert_true(shown < n);
        assert_memory_equal(out, k, shown);
    }
    /* Unprintable bytes are masked. */
    sy_log_key_prefix("ab\n\"cdefghijklmnopqrstuvwxyz", 28, out, 16);
    assert_string_equal(out, "ab??cdef\xe2\x80\xa6");
    /* A too-small buffer is still terminated and never overrun. */
    char tiny[5];
    memset(tiny, 'X', sizeof(tiny));
    sy_log_key_prefix(key, strlen(key), tiny, sizeof(tiny));
    assert_true(strlen(tiny) < sizeof(tiny));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_format_and_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors_and_stderr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_interleaving_across_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_with_concurrent_reopen, setup, teardown),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_key_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
