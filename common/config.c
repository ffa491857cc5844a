/* Configuration from command-line flags and environment variables.
 *
 * The text of each option is chosen first (last flag occurrence, else the
 * environment, else the default), then parsed into its target, so a message
 * can name where a bad value came from. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Where an option's text came from, for error messages. */
typedef struct choice {
    const char *text; /* borrowed from argv, environ or the option; NULL when none */
    int source;       /* SRC_* */
} choice_t;

enum { SRC_NONE, SRC_FLAG, SRC_ENV, SRC_DEFAULT };

static const char *type_name(sy_config_type_t t)
{
    switch (t) {
    case SY_CONFIG_STRING:
        return "string";
    case SY_CONFIG_INT:
        return "int";
    case SY_CONFIG_BOOL:
        return "bool";
    case SY_CONFIG_DURATION:
        return "duration";
    case SY_CONFIG_SIZE:
        return "size";
    }
    return "value";
}

/* Parses a non-negative decimal prefix of s; *end points past it. */
static int parse_digits(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return SY_EINVAL;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return SY_EINVAL;
        v = v * 10 + d;
        p++;
    }
    *end = p;
    *out = v;
    return SY_OK;
}

static int scaled(uint64_t v, uint64_t mult, int64_t *out)
{
    if (v > (uint64_t)INT64_MAX / mult)
        return SY_EINVAL;
    *out = (int64_t)(v * mult);
    return SY_OK;
}

int sy_config_parse_duration(const char *s, int64_t *out_ms)
{
    const char *unit;
    uint64_t v;
    if (s == NULL || parse_digits(s, &unit, &v) < 0)
        return SY_EINVAL;
    uint64_t mult;
    if (*unit == '\0' || strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(unit, "h") == 0)
        mult = 60 * 60 * 1000;
    else
        return SY_EINVAL;
    return scaled(v, mult, out_ms);
}

int sy_config_parse_size(const char *s, int64_t *out_bytes)
{
    const char *unit;
    uint64_t v;
    if (s == NULL || parse_digits(s, &unit, &v) < 0)
        return SY_EINVAL;
    uint64_t mult;
    if (*unit == '\0' || strcasecmp(unit, "b") == 0)
        mult = 1;
    else if (strcasecmp(unit, "k") == 0 || strcasecmp(unit, "kb") == 0)
        mult = 1024;
    else if (strcasecmp(unit, "m") == 0 || strcasecmp(unit, "mb") == 0)
        mult = 1024 * 1024;
    else if (strcasecmp(unit, "g") == 0 || strcasecmp(unit, "gb") == 0)
        mult = 1024ull * 1024 * 1024;
    else
        return SY_EINVAL;
    return scaled(v, mult, out_bytes);
}

static int parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    const char *end;
    uint64_t v;
    if (parse_digits(p, &end, &v) < 0 || *end != '\0')
        return SY_EINVAL;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return SY_EINVAL;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return SY_EINVAL;
        *out = (int64_t)v;
    }
    return SY_OK;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < SY_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return SY_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return SY_OK;
        }
    }
    return SY_EINVAL;
}

static int apply(const sy_config_option_t *o, const char *text)
{
    switch (o->type) {
    case SY_CONFIG_STRING:
        *(const char **)o->target = text;
        return SY_OK;
    case SY_CONFIG_INT:
        return parse_int(text, (int64_t *)o->target);
    case SY_CONFIG_BOOL:
        return parse_bool(text, (bool *)o->target);
    case SY_CONFIG_DURATION:
        return sy_config_parse_duration(text, (int64_t *)o->target);
    case SY_CONFIG_SIZE:
        return sy_config_parse_size(text, (int64_t *)o->target);
    }
    return SY_EINVAL;
}

static const sy_config_option_t *find(const sy_config_option_t *opts, size_t n, const char *name,
                                      size_t len, size_t *idx)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0) {
            *idx = i;
            return &opts[i];
        }
    }
    return NULL;
}

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

int sy_config_parse(const sy_config_option_t *opts, size_t n, int argc, char **argv, sy_err_t *err)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : "switchyard";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (is_help(argv[i])) {
            sy_config_usage(stdout, prog, opts, n);
            return sy_err_set(err, SY_ECANCELED, "usage printed");
        }
    }
    choice_t *ch = calloc(n ? n : 1, sizeof(*ch));
    if (ch == NULL)
        return sy_err_set(err, SY_ENOMEM, "out of memory");
    int rc = SY_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            rc = sy_err_set(err, SY_EINVAL,
                            "unexpected argument '%s' (flags look like --name value)", a);
            goto out;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        size_t idx = 0;
        const sy_config_option_t *o = find(opts, n, name, name_len, &idx);
        const char *value = eq ? eq + 1 : NULL;
        if (o == NULL && eq == NULL && strncmp(name, "no-", 3) == 0) {
            /* "--no-<bool>" sets a bool option to false. */
            o = find(opts, n, name + 3, name_len - 3, &idx);
            if (o != NULL && o->type == SY_CONFIG_BOOL) {
                ch[idx] = (choice_t){"false", SRC_FLAG};
                continue;
            }
            o = NULL;
        }
        if (o == NULL) {
            rc = sy_err_set(err, SY_EINVAL, "unknown flag --%.*s", (int)name_len, name);
            goto out;
        }
        if (value == NULL) {
            if (o->type == SY_CONFIG_BOOL) {
                value = "true";
            } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                value = argv[++i];
            } else {
                rc = sy_err_set(err, SY_EINVAL, "flag --%s needs a value (%s)", o->name,
                                type_name(o->type));
                goto out;
            }
        }
        ch[idx] = (choice_t){value, SRC_FLAG};
    }
    for (size_t i = 0; i < n; i++) {
        const sy_config_option_t *o = &opts[i];
        if (ch[i].source == SRC_NONE && o->env != NULL) {
            const char *v = getenv(o->env);
            if (v != NULL && v[0] != '\0')
                ch[i] = (choice_t){v, SRC_ENV};
        }
        if (ch[i].source == SRC_NONE && o->default_value != NULL)
            ch[i] = (choice_t){o->default_value, SRC_DEFAULT};
        if (ch[i].source == SRC_NONE)
            continue;
        if (apply(o, ch[i].text) < 0) {
            if (ch[i].source == SRC_FLAG)
                rc = sy_err_set(err, SY_EINVAL, "flag --%s: invalid %s '%s'", o->name,
                                type_name(o->type), ch[i].text);
            else if (ch[i].source == SRC_ENV)
                rc = sy_err_set(err, SY_EINVAL, "environment variable %s (--%s): invalid %s '%s'",
                                o->env, o->name, type_name(o->type), ch[i].text);
            else
                rc = sy_err_set(err, SY_EINVAL, "default of --%s: invalid %s '%s'", o->name,
                                type_name(o->type), ch[i].text);
            goto out;
        }
    }
out:
    free(ch);
    return rc;
}

void sy_config_usage(FILE *out, const char *prog, const sy_config_option_t *opts, size_t n)
{
    fprintf(out, "Usage: %s [--name value | --name=value]...\n\nOptions:\n",
            prog ? prog : "switchyard");
    for (size_t i = 0; i < n; i++) {
        const sy_config_option_t *o = &opts[i];
        char left[96];
        if (o->type == SY_CONFIG_BOOL)
            snprintf(left, sizeof(left), "--%s", o->name);
        else
            snprintf(left, sizeof(left), "--%s <%s>", o->name, type_name(o->type));
        fprintf(out, "  %-32s %s", left, o->help ? o->help : "");
        if (o->env != NULL || o->default_value != NULL) {
            fputs(" (", out);
            if (o->env != NULL)
                fprintf(out, "env %s", o->env);
            if (o->default_value != NULL)
                fprintf(out, "%sdefault %s", o->env ? ", " : "", o->default_value);
            fputs(")", out);
        }
        fputs("\n", out);
    }
    fprintf(out, "  %-32s %s\n", "--help", "print this help and exit");
}
