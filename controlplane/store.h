/* The control plane's SQLite store: one connection, WAL mode, migrations
 * applied at open. Every write in the control plane goes through the one
 * sqlite3 handle held here, on the loop thread. */
#ifndef SY_STORE_H
#define SY_STORE_H

#include <sqlite3.h>
#include "buf.h"
#include "err.h"

typedef struct sy_store {
    sqlite3 *db; /* owned; the single connection (reads and writes) */
} sy_store_t;

/* Opens (creating if needed) the database at path, switches it to WAL,
 * enables foreign keys and applies the migrations found in migrations_dir
 * (see sy_migrate_apply). On failure nothing is left open, err says why, and
 * *out is untouched. */
int sy_store_open(const char *path, const char *migrations_dir, sy_store_t **out, sy_err_t *err);

/* Closes the connection and frees s. NULL is a no-op. */
void sy_store_close(sy_store_t *s);

/* Transactions on the single connection. begin takes the write lock at once
 * (BEGIN IMMEDIATE). Each returns 0 or SY_EIO (message in err when non-NULL). */
int sy_store_begin(sy_store_t *s, sy_err_t *err);
int sy_store_commit(sy_store_t *s, sy_err_t *err);
void sy_store_rollback(sy_store_t *s);

/* Writes a new time-ordered id "<prefix>_<12 hex ms><10 hex random>" into
 * out (out_size >= strlen(prefix) + 24). Ids of one prefix sort by creation,
 * which the admin API's pagination cursors rely on. Returns 0 or SY_EINVAL. */
int sy_store_new_id(const char *prefix, char *out, size_t out_size);

/* Writes a new random secret "<prefix><48 hex>" (192 bits) into out
 * (out_size >= strlen(prefix) + 49). Returns 0 or SY_EIO. */
int sy_store_new_secret(const char *prefix, char *out, size_t out_size);

/* SHA-256 of a secret (32 bytes into digest). */
void sy_store_hash_secret(const char *secret, size_t len, unsigned char digest[32]);

/* Milliseconds / seconds since the epoch (wall clock). */
int64_t sy_store_now_ms(void);
int64_t sy_store_now(void);

#endif
