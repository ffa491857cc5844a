/* Structured logging: one JSON line per event, one write(2) per line.
 *
 * The line is assembled in a stack buffer (heap only for unusually long
 * lines) and written with a single write(2) to a file opened O_APPEND, so
 * lines from several threads and processes sharing the file never interleave.
 * A read-write lock protects the descriptor: writers share it, reopen swaps
 * it exclusively, so a SIGHUP reopen never races a write onto a closed fd. */
#include "log.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

#define LINE_STACK 2048
#define MSG_STACK 1024

static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_INITIALIZER;
static int g_fd = -1; /* owned when >= 0; -1 means stderr */
static char *g_path;  /* owned; NULL when logging to stderr */
/* Read on every call without the lock, hence atomic. */
static _Atomic int g_level = SY_LOG_INFO;
/* Set by sy_log_open, which processes call at startup before logging from
 * other threads; read without the lock. */
static char g_component[64] = "switchyard";
static volatile sig_atomic_t g_reopen; /* set by sy_log_request_reopen */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* A line under construction: starts in caller-provided stack storage and
 * moves to the heap only when it outgrows it. */
typedef struct line {
    char *p;     /* stack storage or owned heap copy */
    size_t len;  /* bytes in use */
    size_t cap;  /* bytes available at p */
    bool heap;   /* p is owned */
    bool failed; /* an allocation failed; the line is dropped */
} line_t;

static bool line_room(line_t *l, size_t n)
{
    if (l->failed)
        return false;
    if (l->cap - l->len >= n)
        return true;
    size_t cap = l->cap * 2;
    while (cap - l->len < n)
        cap *= 2;
    char *p = l->heap ? realloc(l->p, cap) : malloc(cap);
    if (p == NULL) {
        l->failed = true;
        return false;
    }
    if (!l->heap)
        memcpy(p, l->p, l->len);
    l->p = p;
    l->cap = cap;
    l->heap = true;
    return true;
}

static void line_add(line_t *l, const char *s, size_t n)
{
    if (!line_room(l, n))
        return;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void line_adds(line_t *l, const char *s)
{
    line_add(l, s, strlen(s));
}

/* Appends s as JSON string contents (without quotes). */
static void line_escape(line_t *l, const char *s, size_t n)
{
    size_t run = 0; /* start of the pending run of bytes copied as is */
    for (size_t i = 0; i < n; i++) {
        if (sy_buf_json_plain((unsigned char)s[i]))
            continue;
        char esc[6];
        size_t elen = sy_buf_json_escape((unsigned char)s[i], esc);
        line_add(l, s + run, i - run);
        line_add(l, esc, elen);
        run = i + 1;
    }
    line_add(l, s + run, n - run);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* Nowhere left to report a logging failure. */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void do_reopen_if_requested(void)
{
    if (g_reopen) {
        g_reopen = 0;
        (void)sy_log_reopen();
    }
}

static void emit(line_t *l)
{
    if (l->failed)
        return;
    do_reopen_if_requested();
    pthread_rwlock_rdlock(&g_lock);
    write_all(g_fd >= 0 ? g_fd : STDERR_FILENO, l->p, l->len);
    pthread_rwlock_unlock(&g_lock);
}

static void line_free(line_t *l)
{
    if (l->heap)
        free(l->p);
    l->p = NULL;
}

/* Writes the common head: {"ts":..,"level":..,"component":..,"pid":..,"event":.. */
static void line_head(line_t *l, sy_log_level_t level, const char *event)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\","
                     "\"component\":\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(ts.tv_nsec / 1000000),
                     level_names[(unsigned)level < 4 ? (unsigned)level : 3]);
    line_add(l, head, (size_t)n);
    line_escape(l, g_component, strlen(g_component));
    n = snprintf(head, sizeof(head), "\",\"pid\":%ld,\"event\":\"", (long)getpid());
    line_add(l, head, (size_t)n);
    if (event)
        line_escape(l, event, strlen(event));
    line_add(l, "\"", 1);
}

int sy_log_open(const char *path, sy_log_level_t level, const char *component)
{
    if ((unsigned)level > SY_LOG_ERROR)
        return SY_EINVAL;
    char *path_copy = NULL;
    int fd = -1;
    if (path != NULL && strcmp(path, "-") != 0) {
        path_copy = strdup(path);
        if (path_copy == NULL)
            return SY_ENOMEM;
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            int e = -errno;
            free(path_copy);
            return e;
        }
    }
    pthread_rwlock_wrlock(&g_lock);
    int old_fd = g_fd;
    char *old_path = g_path;
    g_fd = fd;
    g_path = path_copy;
    g_level = (int)level;
    if (component)
        snprintf(g_component, sizeof(g_component), "%s", component);
    pthread_rwlock_unlock(&g_lock);
    if (old_fd >= 0)
        close(old_fd);
    free(old_path);
    return SY_OK;
}

int sy_log_reopen(void)
{
    pthread_rwlock_wrlock(&g_lock);
    if (g_path == NULL) {
        pthread_rwlock_unlock(&g_lock);
        return SY_OK;
    }
    int fd = open(g_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        /* Keep writing to the old file rather than losing lines. */
        int e = -errno;
        pthread_rwlock_unlock(&g_lock);
        return e;
    }
    int old_fd = g_fd;
    g_fd = fd;
    pthread_rwlock_unlock(&g_lock);
    if (old_fd >= 0)
        close(old_fd);
    return SY_OK;
}

void sy_log_request_reopen(void)
{
    g_reopen = 1;
}

void sy_log_close(void)
{
    pthread_rwlock_wrlock(&g_lock);
    int old_fd = g_fd;
    char *old_path = g_path;
    g_fd = -1;
    g_path = NULL;
    pthread_rwlock_unlock(&g_lock);
    if (old_fd >= 0)
        close(old_fd);
    free(old_path);
}

int sy_log_level_parse(const char *s, sy_log_level_t *out)
{
    if (s == NULL)
        return SY_EINVAL;
    for (unsigned i = 0; i < SY_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (sy_log_level_t)i;
            return SY_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = SY_LOG_WARN;
        return SY_OK;
    }
    return SY_EINVAL;
}

bool sy_log_enabled(sy_log_level_t level)
{
    return (int)level >= g_level;
}

void sy_log(sy_log_level_t level, const char *event, const char *fmt, ...)
{
    if (!sy_log_enabled(level))
        return;
    char stack[LINE_STACK];
    line_t l = {stack, 0, sizeof(stack), false, false};
    line_head(&l, level, event);
    line_adds(&l, ",\"msg\":\"");

    char msg_stack[MSG_STACK];
    char *msg = msg_stack;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg_stack, sizeof(msg_stack), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(msg_stack)) {
        msg = malloc((size_t)n + 1);
        if (msg != NULL) {
            va_start(ap, fmt);
            vsnprintf(msg, (size_t)n + 1, fmt, ap);
            va_end(ap);
        } else {
            msg = msg_stack;
            n = (int)sizeof(msg_stack) - 1;
        }
    }
    line_escape(&l, msg, (size_t)n);
    if (msg != msg_stack)
        free(msg);
    line_add(&l, "\"}\n", 3);
    emit(&l);
    line_free(&l);
}

void sy_log_fields(sy_log_level_t level, const char *event, const char *fields, size_t len)
{
    if (!sy_log_enabled(level))
        return;
    char stack[LINE_STACK];
    line_t l = {stack, 0, sizeof(stack), false, false};
    line_head(&l, level, event);
    if (fields != NULL && len > 0) {
        line_add(&l, ",", 1);
        line_add(&l, fields, len);
    }
    line_add(&l, "}\n", 2);
    emit(&l);
    line_free(&l);
}

void sy_log_line(const char *line, size_t len)
{
    char stack[LINE_STACK];
    line_t l = {stack, 0, sizeof(stack), false, false};
    line_add(&l, line, len);
    line_add(&l, "\n", 1);
    emit(&l);
    line_free(&l);
}

void sy_log_key_prefix(const char *key, size_t key_len, char *out, size_t out_size)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */
    if (out == NULL || out_size == 0)
        return;
    /* Never reveal more than 8 characters, and never more than half of a
     * short key, so that a prefix can never reproduce a whole secret. */
    size_t n = key_len >= 16 ? 8 : key_len / 2;
    if (key == NULL)
        n = 0;
    if (out_size < sizeof(ellipsis)) {
        out[0] = '\0';
        return;
    }
    if (n > out_size - sizeof(ellipsis))
        n = out_size - sizeof(ellipsis);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        out[i] = (c >= 0x21 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    memcpy(out + n, ellipsis, sizeof(ellipsis));
}
