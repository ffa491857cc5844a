/* Shared helpers of the control-plane unit tests: SQL one-liners that fail
 * the test on any error, and a migrated in-memory database. Include after
 * <cmocka.h>. */
#ifndef SY_TEST_CP_TEST_UTIL_H
#define SY_TEST_CP_TEST_UTIL_H

#include <stdint.h>
#include <sqlite3.h>

#include "controlplane/migrate.h"
#include "err.h"

/* Runs sql (one or more statements); fails the test with SQLite's message. */
static inline void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

/* The first column of the one row sql returns. */
static inline int64_t q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static inline double q_double(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    double v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* A new in-memory database with foreign keys on and the real migrations
 * (./migrations) applied, as the daemon's store has it. */
static inline sqlite3 *migrated_db(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_ok(db, "PRAGMA foreign_keys = ON");
    sy_err_t err;
    sy_err_clear(&err);
    if (sy_migrate_apply(db, "migrations", NULL, &err) != 0)
        fail_msg("migrations: %s", err.msg);
    return db;
}

#endif
