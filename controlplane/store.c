/* SQLite store: see store.h. */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "migrate.h"

static int exec_simple(sqlite3 *db, const char *sql, sy_err_t *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sy_err_set(err, SY_EIO, "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return SY_EIO;
    }
    return 0;
}

int sy_store_open(const char *path, const char *migrations_dir, sy_store_t **out, sy_err_t *err)
{
    sy_store_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return sy_err_set(err, SY_ENOMEM, "out of memory");
    int rc;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = sy_err_set(err, SY_EIO, "cannot open database %s: %s", path,
                        s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    /* A short busy timeout covers an external sqlite3 shell holding a lock;
     * the daemon itself is the only writer. */
    sqlite3_busy_timeout(s->db, 2000);
    if ((rc = exec_simple(s->db, "PRAGMA journal_mode=WAL", err)) != 0 ||
        (rc = exec_simple(s->db, "PRAGMA synchronous=NORMAL", err)) != 0 ||
        (rc = exec_simple(s->db, "PRAGMA foreign_keys=ON", err)) != 0)
        goto fail;
    if (migrations_dir != NULL) {
        rc = sy_migrate_apply(s->db, migrations_dir, NULL, err);
        if (rc != 0)
            goto fail;
    }
    *out = s;
    return 0;
fail:
    sqlite3_close(s->db);
    free(s);
    return rc;
}

void sy_store_close(sy_store_t *s)
{
    if (s == NULL)
        return;
    /* sqlite3_close_v2 defers the close until the last statement is finalized. */
    sqlite3_close_v2(s->db);
    s->db = NULL;
    free(s);
}

int sy_store_begin(sy_store_t *s, sy_err_t *err)
{
    return exec_simple(s->db, "BEGIN IMMEDIATE", err);
}

int sy_store_commit(sy_store_t *s, sy_err_t *err)
{
    int rc = exec_simple(s->db, "COMMIT", err);
    if (rc != 0)
        sy_store_rollback(s);
    return rc;
}

void sy_store_rollback(sy_store_t *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int64_t sy_store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sy_store_now(void)
{
    return (int64_t)time(NULL);
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int sy_store_new_id(const char *prefix, char *out, size_t out_size)
{
    /* Ids created in the same millisecond keep creation order through a
     * counter in the random part's place when the clock has not moved. */
    static int64_t last_ms;
    static uint64_t counter;
    int64_t ms = sy_store_now_ms();
    unsigned char rnd[5];
    if (ms <= last_ms) {
        ms = last_ms;
        counter++;
    } else {
        last_ms = ms;
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return SY_EIO;
        counter = ((uint64_t)rnd[0] << 32 | (uint64_t)rnd[1] << 24 | (uint64_t)rnd[2] << 16 |
                   (uint64_t)rnd[3] << 8 | rnd[4]) &
                  0x7fffffffffULL; /* leaves room to count up */
    }
    int n = snprintf(out, out_size, "%s_%012llx%010llx", prefix,
                     (unsigned long long)(ms & 0xffffffffffffLL),
                     (unsigned long long)(counter & 0xffffffffffULL));
    if (n < 0 || (size_t)n >= out_size)
        return SY_EINVAL;
    return 0;
}

int sy_store_new_secret(const char *prefix, char *out, size_t out_size)
{
    unsigned char rnd[24];
    size_t pl = strlen(prefix);
    if (out_size < pl + 2 * sizeof(rnd) + 1)
        return SY_EINVAL;
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return SY_EIO;
    memcpy(out, prefix, pl);
    to_hex(rnd, sizeof(rnd), out + pl);
    return 0;
}

void sy_store_hash_secret(const char *secret, size_t len, unsigned char digest[32])
{
    SHA256((const unsigned char *)secret, len, digest);
}
