/* Schema migrations: files "NNNN_name.sql" in a directory, applied in order
 * of NNNN, each at most once, each in its own transaction, recorded with its
 * SHA-256 in the table schema_migrations. */
#ifndef SY_MIGRATE_H
#define SY_MIGRATE_H

#include <sqlite3.h>
#include "buf.h"
#include "err.h"

/* Applies every migration in dir that db has not recorded yet. A migration
 * that fails is rolled back (the database stays exactly as the previous
 * migration left it) and its file name and SQLite's message go to err.
 * Refuses (SY_EINVAL) a recorded migration whose file changed since it was
 * applied, and a directory with two files of the same number. On success
 * writes the number of migrations applied by this call to *applied (may be
 * NULL). Returns 0, SY_EIO, SY_EINVAL or SY_ENOMEM. */
int sy_migrate_apply(sqlite3 *db, const char *dir, int *applied, sy_err_t *err);

/* Appends a canonical text dump of db's schema (every table, index, view and
 * trigger in sqlite_master, ordered by type and name, internal objects
 * excluded) to out; the golden-schema test compares it with a committed file.
 * Returns 0 or SY_E*. */
int sy_migrate_dump_schema(sqlite3 *db, sy_buf_t *out);

#endif
