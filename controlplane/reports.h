/* Usage reports, applied exactly once: a UsageReport's rows are folded into
 * the minute, hour and day rollups and its (boot_id, seq) is recorded in the
 * same SQLite transaction; a report whose id is already recorded is reported
 * as a duplicate and not applied again.
 *
 * Cost is computed here, not trusted from the worker: tokens x the model's
 * price valid at the row's minute (model_prices), with the data plane's
 * formula (sy_snapshot_cost): cached_tokens are a subset of prompt_tokens
 * (billed at the input price when no cached price is set), cache_write_tokens
 * come on top. A model without any price valid at
 * that minute keeps the cost the worker computed. */
#ifndef SY_REPORTS_H
#define SY_REPORTS_H

#include <sqlite3.h>

#include "err.h"
#include "switchyard.pb-c.h"

typedef struct sy_reports sy_reports_t;

/* Most rows one report may carry; a bigger report is refused (SY_E2BIG). */
#define SY_REPORTS_MAX_ROWS 100000

/* Prepares the statements on db (borrowed, must outlive the result; the
 * migrations must have been applied). Writes *out only on success. */
int sy_reports_open(sqlite3 *db, sy_reports_t **out, sy_err_t *err);
void sy_reports_free(sy_reports_t *r);

/* Applies report in one transaction. *duplicate is set to true when the
 * report was applied before (nothing changes), false when it has just been
 * applied. Returns SY_EINVAL for a malformed report (no boot_id, seq 0, a
 * row without tenant), SY_E2BIG past SY_REPORTS_MAX_ROWS, SY_EIO when SQLite
 * fails (the transaction is rolled back). now is unix seconds, recorded. */
int sy_reports_apply(sy_reports_t *r, const Switchyard__UsageReport *report, int64_t now,
                     bool *duplicate, sy_err_t *err);

/* The cost of one row at the price valid at its minute, as applied. Writes
 * *out only on success; SY_ENOENT when the model has no price then. */
int sy_reports_row_cost(sy_reports_t *r, const Switchyard__UsageRow *row, double *out);

#endif
