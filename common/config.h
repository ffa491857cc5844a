/* Configuration from command-line flags and environment variables.
 * Precedence: flag, then environment, then the option's default. */
#ifndef SY_CONFIG_H
#define SY_CONFIG_H

#include <stdio.h>
#include "defs.h"

typedef enum sy_config_type {
    SY_CONFIG_STRING, /* target: const char ** (borrowed from argv/environ/default) */
    SY_CONFIG_INT,    /* target: int64_t * */
    SY_CONFIG_BOOL,   /* target: bool *; "--flag" alone means true; 1/0/true/false/yes/no */
    /* target: int64_t * milliseconds; accepts "250ms", "5s", "2m", "1h", bare = ms */
    SY_CONFIG_DURATION,
    /* target: int64_t * bytes; accepts "512", "64k", "16m", "1g" (powers of 1024) */
    SY_CONFIG_SIZE,
} sy_config_type_t;

struct sy_config_option {
    const char *name;          /* flag name without "--", e.g. "listen" */
    const char *env;           /* environment variable, e.g. "SWITCHYARD_LISTEN", or NULL */
    sy_config_type_t type;     /* how to parse */
    void *target;              /* where the value goes (see sy_config_type_t) */
    const char *default_value; /* textual default, or NULL for none (target untouched) */
    const char *help;          /* one line for --help */
};

/* Parses argv ("--name value" or "--name=value") and the environment into the
 * options' targets. Unknown flags, missing values and malformed numbers fail
 * with SY_EINVAL naming the flag in err. "--help" returns SY_ECANCELED after
 * printing the usage to stdout. */
int sy_config_parse(const sy_config_option_t *opts, size_t n, int argc, char **argv, sy_err_t *err);
void sy_config_usage(FILE *out, const char *prog, const sy_config_option_t *opts, size_t n);

/* Parses a duration or size the way the options do; writes *out only on success. */
int sy_config_parse_duration(const char *s, int64_t *out_ms);
int sy_config_parse_size(const char *s, int64_t *out_bytes);

#endif
