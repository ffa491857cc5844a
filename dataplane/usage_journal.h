/* A write-ahead journal of finished requests' usage, so a worker killed
 * with -9 loses none of it: every sample folded into the usage aggregator is
 * also appended (one write) to the current generation's file. When the
 * control link drains the aggregator into a spooled UsageReport, it rotates
 * the journal first and records the closed generation in the report's spool
 * record, then deletes that generation's file: from then on the spooled
 * report carries those samples. On start, the generations newer than the
 * newest one a spooled report covers are replayed into the aggregator (and
 * re-journaled), the rest deleted. */
#ifndef SY_USAGE_JOURNAL_H
#define SY_USAGE_JOURNAL_H

#include "dataplane/usage.h"
#include "err.h"

typedef struct sy_usage_journal sy_usage_journal_t;

/* Opens the journal named prefix in dir (files <prefix>.<generation>.journal).
 * Samples of generations newer than covered are replayed into u and appended
 * to a new generation; every older file is deleted. *replayed (may be NULL)
 * receives the number of samples replayed. Writes *out only on success. */
int sy_usage_journal_open(const char *dir, const char *prefix, uint64_t covered, sy_usage_t *u,
                          sy_usage_journal_t **out, size_t *replayed, sy_err_t *err);

/* Appends one sample with a single write(2). Returns 0 or SY_EIO (a short
 * write is cut off again). Strings longer than 65535 bytes are refused. */
int sy_usage_journal_append(sy_usage_journal_t *j, const sy_usage_sample_t *s);

/* Samples appended to the current generation. */
size_t sy_usage_journal_pending(const sy_usage_journal_t *j);

/* Closes the current generation and starts the next one; writes the closed
 * generation's number to *closed. Returns 0 or SY_EIO. */
int sy_usage_journal_rotate(sy_usage_journal_t *j, uint64_t *closed);

/* Deletes the file of generation gen (after its samples were spooled). */
void sy_usage_journal_forget(sy_usage_journal_t *j, uint64_t gen);

/* Closes the journal, keeping its files. NULL is a no-op. */
void sy_usage_journal_close(sy_usage_journal_t *j);

#endif
