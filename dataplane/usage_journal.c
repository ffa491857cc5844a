/* Write-ahead usage journal; see usage_journal.h. */
#include "dataplane/usage_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

#define FIXED_BYTES 65        /* the numeric fields of a record */
#define MAX_RECORD_BYTES 4096 /* a sample whose ids do not fit is refused */
#define MAX_GENERATIONS 4096  /* journal files considered at open */

struct sy_usage_journal {
    char *dir;      /* owned */
    char *prefix;   /* owned */
    uint64_t gen;   /* the current generation */
    int fd;         /* its file, append-only */
    size_t pending; /* samples appended to it */
};

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void path_of(const sy_usage_journal_t *j, uint64_t gen, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.%llu.journal", j->dir, j->prefix, (unsigned long long)gen);
}

static int open_generation(sy_usage_journal_t *j, uint64_t gen)
{
    char path[4200];
    path_of(j, gen, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return SY_EIO;
    if (j->fd >= 0)
        close(j->fd);
    j->fd = fd;
    j->gen = gen;
    j->pending = 0;
    return 0;
}

int sy_usage_journal_append(sy_usage_journal_t *j, const sy_usage_sample_t *s)
{
    const char *strs[6] = {s->tenant_id, s->team_id,     s->key_id,
                           s->route,     s->provider_id, s->model_id};
    uint8_t rec[MAX_RECORD_BYTES];
    size_t n = 4 + FIXED_BYTES;
    uint64_t cost_bits;
    memcpy(&cost_bits, &s->cost_usd, sizeof(cost_bits));
    put_u64(rec + 4, (uint64_t)s->unix_ms);
    put_u64(rec + 12, s->prompt_tokens);
    put_u64(rec + 20, s->completion_tokens);
    put_u64(rec + 28, s->cached_tokens);
    put_u64(rec + 36, s->cache_write_tokens);
    put_u64(rec + 44, cost_bits);
    put_u64(rec + 52, (uint64_t)s->latency_ms);
    put_u64(rec + 60, (uint64_t)s->ttft_ms);
    rec[68] = (uint8_t)((s->error ? 1 : 0) | (s->estimated ? 2 : 0));
    for (int i = 0; i < 6; i++) {
        size_t len = strs[i] != NULL ? strlen(strs[i]) : 0;
        if (len > 0xffff || n + 2 + len > sizeof(rec))
            return SY_E2BIG;
        rec[n] = (uint8_t)len;
        rec[n + 1] = (uint8_t)(len >> 8);
        if (len > 0)
            memcpy(rec + n + 2, strs[i], len);
        n += 2 + len;
    }
    uint32_t body = (uint32_t)(n - 4);
    rec[0] = (uint8_t)body;
    rec[1] = (uint8_t)(body >> 8);
    rec[2] = (uint8_t)(body >> 16);
    rec[3] = (uint8_t)(body >> 24);
    off_t at = lseek(j->fd, 0, SEEK_END);
    ssize_t w = write(j->fd, rec, n);
    if (w != (ssize_t)n) {
        /* Cut a torn record off, so later ones stay readable. */
        if (at >= 0 && ftruncate(j->fd, at) != 0)
            sy_log(SY_LOG_ERROR, "usage_journal", "cannot cut a torn record off generation %llu",
                   (unsigned long long)j->gen);
        return SY_EIO;
    }
    j->pending++;
    return 0;
}

/* Replays one generation's file into u and the current generation. A torn
 * last record (the process died while writing it) is ignored. */
static size_t replay_file(sy_usage_journal_t *j, const char *path, sy_usage_t *u)
{
    sy_buf_t b;
    sy_buf_init(&b);
    size_t count = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || sy_buf_append(&b, chunk, (size_t)r) != 0)
            break;
    }
    close(fd);
    const uint8_t *p = (const uint8_t *)b.data, *end = p + b.len;
    while (p != NULL && end - p >= 4) {
        uint32_t body =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        if (body < FIXED_BYTES || (size_t)(end - p - 4) < body)
            break;
        const uint8_t *q = p + 4, *qend = q + body;
        sy_usage_sample_t s;
        memset(&s, 0, sizeof(s));
        s.unix_ms = (int64_t)get_u64(q);
        s.prompt_tokens = get_u64(q + 8);
        s.completion_tokens = get_u64(q + 16);
        s.cached_tokens = get_u64(q + 24);
        s.cache_write_tokens = get_u64(q + 32);
        uint64_t cost_bits = get_u64(q + 40);
        memcpy(&s.cost_usd, &cost_bits, sizeof(s.cost_usd));
        s.latency_ms = (int64_t)get_u64(q + 48);
        s.ttft_ms = (int64_t)get_u64(q + 56);
        s.error = (q[64] & 1) != 0;
        s.estimated = (q[64] & 2) != 0;
        char strs[6][MAX_RECORD_BYTES];
        const uint8_t *r = q + FIXED_BYTES;
        bool ok = true;
        for (int i = 0; i < 6 && ok; i++) {
            if (qend - r < 2) {
                ok = false;
                break;
            }
            size_t len = (size_t)r[0] | (size_t)r[1] << 8;
            if ((size_t)(qend - r - 2) < len || len >= sizeof(strs[i])) {
                ok = false;
                break;
            }
            memcpy(strs[i], r + 2, len);
            strs[i][len] = '\0';
            r += 2 + len;
        }
        if (!ok)
            break;
        s.tenant_id = strs[0];
        s.team_id = strs[1];
        s.key_id = strs[2];
        s.route = strs[3];
        s.provider_id = strs[4];
        s.model_id = strs[5];
        /* Journaled again first, so a crash before the next report loses
         * nothing either. */
        if (sy_usage_journal_append(j, &s) == 0 && (u == NULL || sy_usage_record(u, &s) == 0))
            count++;
        p = qend;
    }
    sy_buf_free(&b);
    return count;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int sy_usage_journal_open(const char *dir, const char *prefix, uint64_t covered, sy_usage_t *u,
                          sy_usage_journal_t **out, size_t *replayed, sy_err_t *err)
{
    sy_usage_journal_t *j = calloc(1, sizeof(*j));
    uint64_t *gens = calloc(MAX_GENERATIONS, sizeof(*gens));
    if (j == NULL || gens == NULL || (j->dir = strdup(dir)) == NULL ||
        (j->prefix = strdup(prefix)) == NULL) {
        free(gens);
        sy_usage_journal_close(j);
        return sy_err_set(err, SY_ENOMEM, "usage journal: out of memory");
    }
    j->fd = -1;
    mkdir(dir, 0700);
    size_t ng = 0, plen = strlen(prefix);
    uint64_t max = covered;
    DIR *d = opendir(dir);
    if (d == NULL) {
        free(gens);
        sy_usage_journal_close(j);
        return sy_err_set(err, SY_EIO, "usage journal: cannot open %s: %s", dir, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && ng < MAX_GENERATIONS) {
        const char *name = e->d_name;
        if (strncmp(name, prefix, plen) != 0 || name[plen] != '.')
            continue;
        char *end = NULL;
        unsigned long long g = strtoull(name + plen + 1, &end, 10);
        if (end == name + plen + 1 || strcmp(end, ".journal") != 0)
            continue;
        gens[ng++] = g;
        if (g > max)
            max = g;
    }
    closedir(d);
    if (open_generation(j, max + 1) != 0) {
        free(gens);
        sy_usage_journal_close(j);
        return sy_err_set(err, SY_EIO, "usage journal: cannot create a file in %s: %s", dir,
                          strerror(errno));
    }
    qsort(gens, ng, sizeof(*gens), cmp_u64);
    size_t total = 0;
    for (size_t i = 0; i < ng; i++) {
        char path[4200];
        path_of(j, gens[i], path, sizeof(path));
        if (gens[i] > covered)
            total += replay_file(j, path, u);
        unlink(path);
    }
    free(gens);
    if (total > 0)
        sy_log(SY_LOG_INFO, "usage_journal_replayed",
               "%zu usage samples no report carried yet were replayed from %s", total, dir);
    if (replayed != NULL)
        *replayed = total;
    *out = j;
    return 0;
}

size_t sy_usage_journal_pending(const sy_usage_journal_t *j)
{
    return j->pending;
}

int sy_usage_journal_rotate(sy_usage_journal_t *j, uint64_t *closed)
{
    uint64_t gen = j->gen;
    if (open_generation(j, gen + 1) != 0)
        return SY_EIO;
    *closed = gen;
    return 0;
}

void sy_usage_journal_forget(sy_usage_journal_t *j, uint64_t gen)
{
    char path[4200];
    path_of(j, gen, path, sizeof(path));
    unlink(path);
}

void sy_usage_journal_close(sy_usage_journal_t *j)
{
    if (j == NULL)
        return;
    if (j->fd >= 0)
        close(j->fd);
    free(j->dir);
    free(j->prefix);
    free(j);
}
