/* Migrations runner: see migrate.h. */
#include "migrate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/sha.h>

#define MAX_MIGRATIONS 1000
#define MAX_MIGRATION_BYTES (4 * 1024 * 1024)

typedef struct migration {
    int number;     /* NNNN */
    char name[256]; /* file name, NUL-terminated */
} migration_t;

static int by_number(const void *a, const void *b)
{
    const migration_t *x = a, *y = b;
    return (x->number > y->number) - (x->number < y->number);
}

/* True for "NNNN_[a-z0-9_]+.sql"; *number gets NNNN. */
static bool parse_name(const char *name, int *number)
{
    size_t n = strlen(name);
    if (n < 10 || n >= 256 || strcmp(name + n - 4, ".sql") != 0 || name[4] != '_')
        return false;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (name[i] - '0');
    }
    for (size_t i = 5; i < n - 4; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    *number = v;
    return true;
}

static int read_file(const char *path, sy_buf_t *out, sy_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return sy_err_set(err, SY_EIO, "cannot open migration %s: %s", path, strerror(errno));
    char chunk[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (out->len + n > MAX_MIGRATION_BYTES) {
            rc = sy_err_set(err, SY_E2BIG, "migration %s is larger than 4 MiB", path);
            break;
        }
        if (sy_buf_append(out, chunk, n) != 0) {
            rc = sy_err_set(err, SY_ENOMEM, "out of memory reading %s", path);
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = sy_err_set(err, SY_EIO, "cannot read migration %s", path);
    fclose(f);
    return rc;
}

static void hex_sha256(const void *p, size_t n, char hex[65])
{
    unsigned char d[32];
    SHA256(p, n, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int exec(sqlite3 *db, const char *sql, sy_err_t *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sy_err_set(err, SY_EIO, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return SY_EIO;
    }
    return 0;
}

/* Looks up a recorded migration: 1 and its checksum in sum when recorded, 0 when not. */
static int recorded(sqlite3 *db, int number, char sum[65], sy_err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT checksum FROM schema_migrations WHERE version = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return sy_err_set(err, SY_EIO, "schema_migrations: %s", sqlite3_errmsg(db));
    sqlite3_bind_int(st, 1, number);
    int rc = sqlite3_step(st);
    int res = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(sum, 65, "%s", t ? (const char *)t : "");
        res = 1;
    } else if (rc != SQLITE_DONE) {
        res = sy_err_set(err, SY_EIO, "schema_migrations: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return res;
}

static int apply_one(sqlite3 *db, const char *dir, const migration_t *m, bool *did, sy_err_t *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, m->name);
    sy_buf_t sql;
    sy_buf_init(&sql);
    int rc = read_file(path, &sql, err);
    if (rc != 0)
        goto out;
    char sum[65], have[65];
    hex_sha256(sql.data ? sql.data : "", sql.len, sum);
    rc = recorded(db, m->number, have, err);
    if (rc < 0)
        goto out;
    if (rc == 1) {
        rc = 0;
        if (strcmp(have, sum) != 0)
            rc = sy_err_set(err, SY_EINVAL,
                            "migration %s was changed after it was applied (checksum %.12s, "
                            "recorded %.12s); add a new migration instead",
                            m->name, sum, have);
        goto out;
    }
    if (sql.len == 0) {
        rc = sy_err_set(err, SY_EINVAL, "migration %s is empty", m->name);
        goto out;
    }
    sy_err_t e;
    sy_err_clear(&e);
    if (exec(db, "BEGIN IMMEDIATE", &e) != 0) {
        rc = sy_err_set(err, SY_EIO, "migration %s: cannot begin: %s", m->name, e.msg);
        goto out;
    }
    if (exec(db, sql.data, &e) != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        rc = sy_err_set(err, SY_EIO, "migration %s failed: %s", m->name, e.msg);
        goto out;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                           "VALUES (?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sy_err_set(err, SY_EIO, "migration %s: %s", m->name, sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    sqlite3_bind_int(st, 1, m->number);
    sqlite3_bind_text(st, 2, m->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, sum, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        rc =
            sy_err_set(err, SY_EIO, "migration %s: cannot record: %s", m->name, sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    if (exec(db, "COMMIT", &e) != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        rc = sy_err_set(err, SY_EIO, "migration %s: cannot commit: %s", m->name, e.msg);
        goto out;
    }
    *did = true;
out:
    sy_buf_free(&sql);
    return rc;
}

int sy_migrate_apply(sqlite3 *db, const char *dir, int *applied, sy_err_t *err)
{
    sy_err_t e;
    sy_err_clear(&e);
    if (exec(db,
             "CREATE TABLE IF NOT EXISTS schema_migrations ("
             "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
             "applied_at INTEGER NOT NULL)",
             &e) != 0)
        return sy_err_set(err, SY_EIO, "cannot create schema_migrations: %s", e.msg);

    DIR *d = opendir(dir);
    if (d == NULL)
        return sy_err_set(err, SY_EIO, "cannot open migrations directory %s: %s", dir,
                          strerror(errno));
    migration_t *list = calloc(MAX_MIGRATIONS, sizeof(*list));
    if (list == NULL) {
        closedir(d);
        return sy_err_set(err, SY_ENOMEM, "out of memory");
    }
    size_t n = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int num;
        if (!parse_name(de->d_name, &num))
            continue;
        if (n == MAX_MIGRATIONS) {
            rc = sy_err_set(err, SY_E2BIG, "more than %d migrations in %s", MAX_MIGRATIONS, dir);
            break;
        }
        list[n].number = num;
        snprintf(list[n].name, sizeof(list[n].name), "%s", de->d_name);
        n++;
    }
    closedir(d);
    if (rc == 0 && n == 0)
        rc = sy_err_set(err, SY_ENOENT, "no migrations (NNNN_name.sql) in %s", dir);
    if (rc == 0) {
        qsort(list, n, sizeof(*list), by_number);
        for (size_t i = 1; i < n; i++) {
            if (list[i].number == list[i - 1].number) {
                rc = sy_err_set(err, SY_EINVAL, "migrations %s and %s share number %04d",
                                list[i - 1].name, list[i].name, list[i].number);
                break;
            }
        }
    }
    int count = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool did = false;
        rc = apply_one(db, dir, &list[i], &did, err);
        if (did)
            count++;
    }
    free(list);
    if (rc == 0 && applied != NULL)
        *applied = count;
    return rc;
}

int sy_migrate_dump_schema(sqlite3 *db, sy_buf_t *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT type, name, sql FROM sqlite_master "
                           "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                           "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 "
                           "WHEN 'view' THEN 2 ELSE 3 END, name",
                           -1, &st, NULL) != SQLITE_OK)
        return SY_EIO;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        rc = sy_buf_appendf(out, "-- %s %s\n%s;\n\n", (const char *)sqlite3_column_text(st, 0),
                            (const char *)sqlite3_column_text(st, 1),
                            (const char *)sqlite3_column_text(st, 2));
        if (rc != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = SY_EIO;
    sqlite3_finalize(st);
    return rc;
}
