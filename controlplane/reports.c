/* Exactly-once application of usage reports (see reports.h). */
#include "controlplane/reports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *const rollup_tables[3] = {"usage_minute", "usage_hour", "usage_day"};
static const int64_t rollup_widths[3] = {60, 3600, 86400};

struct sy_reports {
    sqlite3 *db;             /* borrowed; the store's writing connection */
    sqlite3_stmt *begin;     /* owned; BEGIN IMMEDIATE */
    sqlite3_stmt *commit;    /* owned; COMMIT */
    sqlite3_stmt *rollback;  /* owned; ROLLBACK */
    sqlite3_stmt *record;    /* owned; INSERT OR IGNORE INTO applied_reports */
    sqlite3_stmt *price;     /* owned; the price valid at a minute */
    sqlite3_stmt *upsert[3]; /* owned; one per rollup table */
};

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, sy_err_t *err)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
        return sy_err_set(err, SY_EIO, "reports: preparing \"%.60s\": %s", sql, sqlite3_errmsg(db));
    return 0;
}

int sy_reports_open(sqlite3 *db, sy_reports_t **out, sy_err_t *err)
{
    sy_reports_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return sy_err_set(err, SY_ENOMEM, "reports: out of memory");
    r->db = db;
    int rc;
    if ((rc = prepare(db, "BEGIN IMMEDIATE", &r->begin, err)) != 0 ||
        (rc = prepare(db, "COMMIT", &r->commit, err)) != 0 ||
        (rc = prepare(db, "ROLLBACK", &r->rollback, err)) != 0 ||
        (rc = prepare(
             db,
             "INSERT OR IGNORE INTO applied_reports"
             " (boot_id, seq, worker_id, applied_at, row_count) VALUES (?1, ?2, ?3, ?4, ?5)",
             &r->record, err)) != 0 ||
        (rc = prepare(db,
                      "SELECT input_per_mtok, output_per_mtok, cached_input_per_mtok,"
                      " cache_write_per_mtok FROM model_prices WHERE model_id = ?1 AND"
                      " valid_from <= ?2 ORDER BY valid_from DESC LIMIT 1",
                      &r->price, err)) != 0)
        goto fail;
    for (int i = 0; i < 3; i++) {
        char sql[1024];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO %s (bucket, tenant_id, team_id, key_id, route, provider_id,"
                 " model_id, requests, errors, prompt_tokens, completion_tokens, cached_tokens,"
                 " cache_write_tokens, estimated_requests, cost_usd)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                 " ON CONFLICT (bucket, tenant_id, team_id, key_id, route, provider_id, model_id)"
                 " DO UPDATE SET requests = requests + excluded.requests,"
                 " errors = errors + excluded.errors,"
                 " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
                 " completion_tokens = completion_tokens + excluded.completion_tokens,"
                 " cached_tokens = cached_tokens + excluded.cached_tokens,"
                 " cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,"
                 " estimated_requests = estimated_requests + excluded.estimated_requests,"
                 " cost_usd = cost_usd + excluded.cost_usd",
                 rollup_tables[i]);
        if ((rc = prepare(db, sql, &r->upsert[i], err)) != 0)
            goto fail;
    }
    *out = r;
    return 0;
fail:
    sy_reports_free(r);
    return rc;
}

void sy_reports_free(sy_reports_t *r)
{
    if (r == NULL)
        return;
    sqlite3_finalize(r->begin);
    sqlite3_finalize(r->commit);
    sqlite3_finalize(r->rollback);
    sqlite3_finalize(r->record);
    sqlite3_finalize(r->price);
    for (int i = 0; i < 3; i++)
        sqlite3_finalize(r->upsert[i]);
    free(r);
}

static int64_t floor_to(int64_t t, int64_t width)
{
    int64_t q = t / width;
    if (t % width != 0 && t < 0)
        q--;
    return q * width;
}

/* protobuf-c leaves absent strings as the empty string, never NULL; guard anyway. */
static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* Runs a statement without result rows and resets it. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : SY_EIO;
}

int sy_reports_row_cost(sy_reports_t *r, const Switchyard__UsageRow *row, double *out)
{
    sqlite3_stmt *st = r->price;
    sqlite3_bind_text(st, 1, str_or_empty(row->model_id), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, floor_to(row->minute, 60));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? SY_ENOENT : SY_EIO;
    }
    double in = sqlite3_column_double(st, 0), outp = sqlite3_column_double(st, 1),
           cached = sqlite3_column_double(st, 2), cwrite = sqlite3_column_double(st, 3);
    sqlite3_reset(st);
    /* The data plane's formula (dataplane/snapshot.c, sy_snapshot_cost), so
     * the worker's estimate and the bill agree: cached tokens are a subset
     * of prompt_tokens, billed at the input price when no cached price is
     * set; cache-write tokens come on top of prompt_tokens. */
    uint64_t c = row->cached_tokens < row->prompt_tokens ? row->cached_tokens : row->prompt_tokens;
    double cached_price = cached > 0 ? cached : in;
    *out = ((double)(row->prompt_tokens - c) * in + (double)c * cached_price +
            (double)row->completion_tokens * outp + (double)row->cache_write_tokens * cwrite) /
           1e6;
    return 0;
}

static int apply_row(sy_reports_t *r, const Switchyard__UsageRow *row, sy_err_t *err)
{
    double cost;
    int rc = sy_reports_row_cost(r, row, &cost);
    if (rc == SY_ENOENT)
        cost = row->cost_usd;
    else if (rc != 0)
        return sy_err_set(err, SY_EIO, "reports: price lookup: %s", sqlite3_errmsg(r->db));
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st = r->upsert[i];
        sqlite3_bind_int64(st, 1, floor_to(row->minute, rollup_widths[i]));
        sqlite3_bind_text(st, 2, str_or_empty(row->tenant_id), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, str_or_empty(row->team_id), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, str_or_empty(row->key_id), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, str_or_empty(row->route), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, str_or_empty(row->provider_id), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, str_or_empty(row->model_id), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, (sqlite3_int64)row->requests);
        sqlite3_bind_int64(st, 9, (sqlite3_int64)row->errors);
        sqlite3_bind_int64(st, 10, (sqlite3_int64)row->prompt_tokens);
        sqlite3_bind_int64(st, 11, (sqlite3_int64)row->completion_tokens);
        sqlite3_bind_int64(st, 12, (sqlite3_int64)row->cached_tokens);
        sqlite3_bind_int64(st, 13, (sqlite3_int64)row->cache_write_tokens);
        sqlite3_bind_int64(st, 14, (sqlite3_int64)row->estimated_requests);
        sqlite3_bind_double(st, 15, cost);
        if (step_done(st) != 0)
            return sy_err_set(err, SY_EIO, "reports: %s: %s", rollup_tables[i],
                              sqlite3_errmsg(r->db));
    }
    return 0;
}

static int validate(const Switchyard__UsageReport *report, sy_err_t *err)
{
    if (report->boot_id == NULL || report->boot_id[0] == '\0')
        return sy_err_set(err, SY_EINVAL, "report without boot_id");
    if (report->seq == 0)
        return sy_err_set(err, SY_EINVAL, "report without seq");
    if (report->seq > INT64_MAX)
        return sy_err_set(err, SY_EINVAL, "report seq out of range");
    if (report->n_rows > SY_REPORTS_MAX_ROWS)
        return sy_err_set(err, SY_E2BIG, "report with %zu rows (max %d)", report->n_rows,
                          SY_REPORTS_MAX_ROWS);
    for (size_t i = 0; i < report->n_rows; i++) {
        const Switchyard__UsageRow *row = report->rows[i];
        if (row->tenant_id == NULL || row->tenant_id[0] == '\0')
            return sy_err_set(err, SY_EINVAL, "report row %zu without tenant_id", i);
        /* SQLite integers are signed 64-bit; a counter past that is garbage. */
        if (row->requests > INT64_MAX || row->errors > INT64_MAX ||
            row->prompt_tokens > INT64_MAX || row->completion_tokens > INT64_MAX ||
            row->cached_tokens > INT64_MAX || row->cache_write_tokens > INT64_MAX ||
            row->estimated_requests > INT64_MAX)
            return sy_err_set(err, SY_EINVAL, "report row %zu: counter out of range", i);
    }
    return 0;
}

int sy_reports_apply(sy_reports_t *r, const Switchyard__UsageReport *report, int64_t now,
                     bool *duplicate, sy_err_t *err)
{
    int rc = validate(report, err);
    if (rc != 0)
        return rc;
    if (step_done(r->begin) != 0)
        return sy_err_set(err, SY_EIO, "reports: begin: %s", sqlite3_errmsg(r->db));

    sqlite3_stmt *st = r->record;
    sqlite3_bind_text(st, 1, report->boot_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)report->seq);
    sqlite3_bind_text(st, 3, str_or_empty(report->worker_id), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)report->n_rows);
    if (step_done(st) != 0) {
        rc = sy_err_set(err, SY_EIO, "reports: recording id: %s", sqlite3_errmsg(r->db));
        goto rollback;
    }
    if (sqlite3_changes(r->db) == 0) {
        /* Already applied: the id is the whole proof, nothing else to do. */
        step_done(r->rollback);
        *duplicate = true;
        return 0;
    }
    for (size_t i = 0; i < report->n_rows; i++)
        if ((rc = apply_row(r, report->rows[i], err)) != 0)
            goto rollback;
    if (step_done(r->commit) != 0) {
        rc = sy_err_set(err, SY_EIO, "reports: commit: %s", sqlite3_errmsg(r->db));
        goto rollback;
    }
    *duplicate = false;
    return 0;
rollback:
    if (!sqlite3_get_autocommit(r->db))
        step_done(r->rollback);
    return rc;
}
