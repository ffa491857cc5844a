/* Unit tests for controlplane/migrate.c and store.c: every migration applied
 * to an empty database gives exactly the committed golden schema; migrations
 * apply once, in order, each in its own transaction; a failing migration
 * leaves the database untouched; an edited migration is refused.
 *
 * Regenerate the golden file after adding a migration:
 *   SY_UPDATE_GOLDEN=1 build/release/tests/test_cp_migrate */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "controlplane/migrate.h"
#include "controlplane/store.h"
#include "cp_test_util.h"

#define GOLDEN "tests/unit/schema.golden.sql"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    sy_buf_t b;
    sy_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        sy_buf_append(&b, chunk, n);
    fclose(f);
    return sy_buf_steal(&b, len);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_golden_schema(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sy_err_t err;
    sy_err_clear(&err);
    int applied = -1;
    int rc = sy_migrate_apply(db, "migrations", &applied, &err);
    if (rc != 0)
        fail_msg("migrations: %s", err.msg);
    assert_true(applied >= 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM schema_migrations"), applied);

    sy_buf_t dump;
    sy_buf_init(&dump);
    assert_int_equal(sy_migrate_dump_schema(db, &dump), 0);
    assert_non_null(strstr(dump.data, "CREATE TABLE tenants"));
    if (getenv("SY_UPDATE_GOLDEN")) {
        write_file(GOLDEN, dump.data);
    } else {
        size_t glen = 0;
        char *golden = slurp(GOLDEN, &glen);
        if (golden == NULL)
            fail_msg("missing %s; generate it with SY_UPDATE_GOLDEN=1", GOLDEN);
        if (glen != dump.len || memcmp(golden, dump.data, glen) != 0) {
            /* Point at the first difference to make the failure readable. */
            size_t i = 0;
            while (i < glen && i < dump.len && golden[i] == dump.data[i])
                i++;
            size_t from = i > 80 ? i - 80 : 0;
            fail_msg("schema differs from %s at byte %zu:\n--- golden: ...%.160s\n--- actual: "
                     "...%.160s\n(regenerate with SY_UPDATE_GOLDEN=1 if intended)",
                     GOLDEN, i, golden + from, dump.data + from);
        }
        free(golden);
    }
    /* A second run applies nothing and changes nothing. */
    sy_buf_t again;
    sy_buf_init(&again);
    assert_int_equal(sy_migrate_apply(db, "migrations", &applied, &err), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(sy_migrate_dump_schema(db, &again), 0);
    assert_int_equal(again.len, dump.len);
    assert_memory_equal(again.data, dump.data, dump.len);
    sy_buf_free(&again);
    sy_buf_free(&dump);
    sqlite3_close(db);
}

typedef struct tmp {
    char dir[64];    /* migrations directory */
    char dbpath[96]; /* database file */
} tmp_t;

static int setup_tmp(void **state)
{
    tmp_t *t = calloc(1, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/sy-mig-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->dbpath, sizeof(t->dbpath), "%s/db.sqlite", t->dir);
    *state = t;
    return 0;
}

static int teardown_tmp(void **state)
{
    tmp_t *t = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

static void add(tmp_t *t, const char *name, const char *sql)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", t->dir, name);
    write_file(path, sql);
}

/* The test's database file, opened (created on first use). */
static sqlite3 *open_db(const tmp_t *t)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(t->dbpath, &db), SQLITE_OK);
    return db;
}

static void test_order_and_once(void **state)
{
    tmp_t *t = *state;
    /* 0002 depends on 0001: applying by number order is required. */
    add(t, "0002_b.sql", "ALTER TABLE a ADD COLUMN y INTEGER;");
    add(t, "0001_a.sql", "CREATE TABLE a (x INTEGER);");
    add(t, "README.md", "not a migration");
    add(t, "01_bad_name.sql", "this is not applied");
    sqlite3 *db = open_db(t);
    sy_err_t err;
    sy_err_clear(&err);
    int applied = -1;
    assert_int_equal(sy_migrate_apply(db, t->dir, &applied, &err), 0);
    assert_int_equal(applied, 2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM pragma_table_info('a')"), 2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM schema_migrations"), 2);
    /* Applied in number order: 0001 has the smaller rowid. */
    assert_int_equal(q_int(db, "SELECT version FROM schema_migrations ORDER BY rowid LIMIT 1"), 1);
    assert_int_equal(sy_migrate_apply(db, t->dir, &applied, &err), 0);
    assert_int_equal(applied, 0);
    sqlite3_close(db);
}

static void test_failure_leaves_db_untouched(void **state)
{
    tmp_t *t = *state;
    add(t, "0001_a.sql", "CREATE TABLE a (x INTEGER);");
    sqlite3 *db = open_db(t);
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(sy_migrate_apply(db, t->dir, NULL, &err), 0);
    /* 0002 creates a table, inserts, then fails half-way: nothing of it may stay. */
    add(t, "0002_broken.sql",
        "CREATE TABLE b (y INTEGER);\nINSERT INTO a VALUES (1);\nINSERT INTO nosuch VALUES (1);");
    add(t, "0003_later.sql", "CREATE TABLE c (z INTEGER);");
    int rc = sy_migrate_apply(db, t->dir, NULL, &err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err.msg, "0002_broken.sql"));
    assert_non_null(strstr(err.msg, "nosuch"));
    assert_int_equal(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('b','c')"), 0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM a"), 0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM schema_migrations"), 1);
    assert_int_equal(sqlite3_get_autocommit(db), 1);
    sqlite3_close(db);

    /* The daemon's store refuses to open with the same message. */
    sy_store_t *s = NULL;
    sy_err_clear(&err);
    assert_int_not_equal(sy_store_open(t->dbpath, t->dir, &s, &err), 0);
    assert_null(s);
    assert_non_null(strstr(err.msg, "0002_broken.sql"));

    /* Fixed, it applies, and the later one after it. */
    add(t, "0002_broken.sql", "CREATE TABLE b (y INTEGER);");
    assert_int_equal(sy_store_open(t->dbpath, t->dir, &s, &err), 0);
    assert_int_equal(q_int(s->db, "SELECT count(*) FROM schema_migrations"), 3);
    assert_int_equal(q_int(s->db, "SELECT max(version) FROM schema_migrations"), 3);
    sy_store_close(s);
}

static void test_edited_migration_refused(void **state)
{
    tmp_t *t = *state;
    add(t, "0001_a.sql", "CREATE TABLE a (x INTEGER);");
    sqlite3 *db = open_db(t);
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(sy_migrate_apply(db, t->dir, NULL, &err), 0);
    add(t, "0001_a.sql", "CREATE TABLE a (x INTEGER, y TEXT);");
    assert_int_equal(sy_migrate_apply(db, t->dir, NULL, &err), SY_EINVAL);
    assert_non_null(strstr(err.msg, "changed after it was applied"));
    sqlite3_close(db);
}

static void test_duplicate_number_refused(void **state)
{
    tmp_t *t = *state;
    add(t, "0001_a.sql", "CREATE TABLE a (x INTEGER);");
    add(t, "0001_b.sql", "CREATE TABLE b (x INTEGER);");
    sqlite3 *db = open_db(t);
    sy_err_t err;
    sy_err_clear(&err);
    assert_int_equal(sy_migrate_apply(db, t->dir, NULL, &err), SY_EINVAL);
    assert_non_null(strstr(err.msg, "share number 0001"));
    assert_int_equal(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('a','b')"), 0);
    sqlite3_close(db);
}

static void test_store_wal_and_ids(void **state)
{
    tmp_t *t = *state;
    sy_store_t *s = NULL;
    sy_err_t err;
    sy_err_clear(&err);
    if (sy_store_open(t->dbpath, "migrations", &s, &err) != 0)
        fail_msg("%s", err.msg);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(q_int(s->db, "PRAGMA foreign_keys"), 1);

    /* Ids sort by creation, even within one millisecond. */
    char prev[64] = "", id[64];
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(sy_store_new_id("ten", id, sizeof(id)), 0);
        assert_int_equal(strncmp(id, "ten_", 4), 0);
        assert_int_equal(strlen(id), 4 + 22);
        assert_true(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof(id));
    }
    char small[8];
    assert_int_equal(sy_store_new_id("ten", small, sizeof(small)), SY_EINVAL);

    char a[80], b[80];
    assert_int_equal(sy_store_new_secret("sk-sy-", a, sizeof(a)), 0);
    assert_int_equal(sy_store_new_secret("sk-sy-", b, sizeof(b)), 0);
    assert_int_equal(strlen(a), 6 + 48);
    assert_string_not_equal(a, b);

    /* A transaction rolled back leaves nothing. */
    assert_int_equal(sy_store_begin(s, &err), 0);
    assert_int_equal(sqlite3_exec(s->db,
                                  "INSERT INTO tenants (id, name, created_at, updated_at) "
                                  "VALUES ('t1', 'x', 1, 1)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sy_store_rollback(s);
    assert_int_equal(q_int(s->db, "SELECT count(*) FROM tenants"), 0);
    sy_store_close(s);
    sy_store_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_schema),
        cmocka_unit_test_setup_teardown(test_order_and_once, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_failure_leaves_db_untouched, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_edited_migration_refused, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_duplicate_number_refused, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_store_wal_and_ids, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
