/* Snapshot builder (see snapshot_build.h). Every string and sub-message of
 * the snapshot lives in one arena owned by the build, so a 100,000-key
 * snapshot costs a handful of large allocations and one free. */
#include "controlplane/snapshot_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controlplane/secrets.h"
#include "json.h"
#include "log.h"

/* --- arena ------------------------------------------------------------------ */

typedef struct chunk {
    struct chunk *next; /* owned; the previously filled chunk */
    size_t used;        /* bytes handed out */
    size_t cap;         /* bytes in data */
    max_align_t data[]; /* the memory */
} chunk_t;

struct sy_snapshot_build {
    Switchyard__Snapshot msg; /* the snapshot; every pointer in it points into chunks */
    chunk_t *chunks;          /* owned; newest first */
};

#define CHUNK_MIN (256 * 1024)

static void *alloc(sy_snapshot_build_t *b, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    chunk_t *c = b->chunks;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->next = b->chunks;
        c->used = 0;
        c->cap = cap;
        b->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static char *dup_n(sy_snapshot_build_t *b, const char *s, size_t n)
{
    char *p = alloc(b, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* A copy of a text column; NULL only on ENOMEM (SQL NULL becomes ""). */
static char *col_text(sy_snapshot_build_t *b, sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return dup_n(b, s != NULL ? (const char *)s : "", (size_t)sqlite3_column_bytes(st, i));
}

/* A growable array of pointers inside the arena (doubling; the old block is
 * simply abandoned to the arena). */
typedef struct vec {
    void **items; /* arena memory */
    size_t n;     /* items in use */
    size_t cap;   /* items allocated */
} vec_t;

static int vec_push(sy_snapshot_build_t *b, vec_t *v, void *item)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void **items = alloc(b, cap * sizeof(void *));
        if (items == NULL)
            return SY_ENOMEM;
        if (v->n)
            memcpy(items, v->items, v->n * sizeof(void *));
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = item;
    return 0;
}

#define NEW_MSG(b, type, init_fn)                                                                  \
    ({                                                                                             \
        type *m_ = alloc((b), sizeof(type));                                                       \
        if (m_ != NULL)                                                                            \
            init_fn(m_);                                                                           \
        m_;                                                                                        \
    })

/* --- helpers ---------------------------------------------------------------- */

typedef struct ctx {
    sqlite3 *db;                         /* borrowed */
    sy_snapshot_build_t *b;              /* borrowed; the build being filled */
    const sy_envelope_key_t *master_key; /* borrowed; NULL = no credentials */
    int64_t now;                         /* unix seconds */
    sy_err_t *err;                       /* borrowed; where messages go */
    vec_t blocked[4];                    /* per BudgetScope: ids with an exhausted hard budget */
    sqlite3_stmt *spend[3][4];           /* owned; per rollup table and BudgetScope, lazily */
    struct {
        char tz[64];        /* time zone name */
        bool monthly;       /* period */
        int64_t start, end; /* the window */
    } windows[16];          /* computed windows, so TZ is switched once per zone */
    size_t n_windows;
} ctx_t;

static int sql_fail(ctx_t *c, const char *what)
{
    return sy_err_set(c->err, SY_EIO, "snapshot: %s: %s", what, sqlite3_errmsg(c->db));
}

static int oom(ctx_t *c)
{
    return sy_err_set(c->err, SY_ENOMEM, "snapshot: out of memory");
}

static int prepare(ctx_t *c, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
        return sql_fail(c, "prepare");
    return 0;
}

static Switchyard__RateLimit *limits(ctx_t *c, sqlite3_stmt *st, int rpm_col)
{
    Switchyard__RateLimit *l = NEW_MSG(c->b, Switchyard__RateLimit, switchyard__rate_limit__init);
    if (l != NULL) {
        l->rpm = (uint64_t)sqlite3_column_int64(st, rpm_col);
        l->tpm = (uint64_t)sqlite3_column_int64(st, rpm_col + 1);
    }
    return l;
}

static bool is_blocked(ctx_t *c, int scope, const char *id)
{
    vec_t *v = &c->blocked[scope];
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->items[i], id) == 0)
            return true;
    return false;
}

/* Parses a JSON array of strings (a text column) into a pointer array. */
static int string_array(ctx_t *c, sqlite3_stmt *st, int col, char ***out, size_t *n_out)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    int len = sqlite3_column_bytes(st, col);
    *out = NULL;
    *n_out = 0;
    if (text == NULL || len == 0 || (len == 2 && memcmp(text, "[]", 2) == 0))
        return 0;
    json_object *arr = NULL;
    if (sy_json_parse_once(text, (size_t)len, &arr, NULL) != 0 ||
        !json_object_is_type(arr, json_type_array)) {
        json_object_put(arr);
        return 0; /* the admin API validates on the way in; a bad value means "none" */
    }
    size_t n = json_object_array_length(arr);
    char **items = alloc(c->b, (n ? n : 1) * sizeof(char *));
    if (items == NULL) {
        json_object_put(arr);
        return oom(c);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(e, json_type_string))
            continue;
        items[k] = dup_n(c->b, json_object_get_string(e), (size_t)json_object_get_string_len(e));
        if (items[k] == NULL) {
            json_object_put(arr);
            return oom(c);
        }
        k++;
    }
    json_object_put(arr);
    *out = items;
    *n_out = k;
    return 0;
}

/* Makes the message of st's current row, written to *out; returns 0 or
 * SY_E* (with c->err set). arg is the list's own context. */
typedef int (*row_fn)(ctx_t *c, sqlite3_stmt *st, void *arg, void **out);

/* Steps st (bound by the caller) to its end, appending one message per row
 * from fn to v, and resets st for its next binding. what names the rows in
 * an error. Returns 0 or SY_E*. */
static int collect(ctx_t *c, sqlite3_stmt *st, row_fn fn, void *arg, const char *what, vec_t *v)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        void *m = NULL;
        if ((rc = fn(c, st, arg, &m)) != 0)
            break;
        if (vec_push(c->b, v, m) != 0) {
            rc = oom(c);
            break;
        }
    }
    if (rc != SQLITE_DONE && rc >= 0)
        rc = sql_fail(c, what);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

/* collect() over a top-level query; a ?1 in sql is the build's time. */
static int build_list(ctx_t *c, const char *sql, row_fn fn, void *arg, const char *what, vec_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, sql, &st);
    if (rc != 0)
        return rc;
    if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, c->now);
    rc = collect(c, st, fn, arg, what, v);
    sqlite3_finalize(st);
    return rc;
}

/* --- budgets ------------------------------------------------------------------ */

/* The current window of a daily or monthly budget in the tenant's time zone
 * (IANA name; empty or "UTC" = UTC). Local midnight comes from the C
 * library's zone database through TZ, which the single-threaded control
 * plane may switch for the call; DST days are 23 or 25 hours long. */
static void budget_window(const char *tz, const char *period, int64_t now, int64_t *start,
                          int64_t *end)
{
    bool monthly = strcmp(period, "monthly") == 0;
    bool utc = tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0;
    char saved[256];
    bool had = false;
    if (!utc) {
        const char *old = getenv("TZ");
        had = old != NULL && strlen(old) < sizeof(saved);
        if (had)
            snprintf(saved, sizeof(saved), "%s", old);
        setenv("TZ", tz, 1);
        tzset();
    }
    time_t t = (time_t)now;
    struct tm tm;
    if (utc)
        gmtime_r(&t, &tm);
    else
        localtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (monthly)
        tm.tm_mday = 1;
    tm.tm_isdst = -1;
    struct tm e = tm;
    if (monthly)
        e.tm_mon += 1;
    else
        e.tm_mday += 1;
    *start = utc ? (int64_t)timegm(&tm) : (int64_t)mktime(&tm);
    *end = utc ? (int64_t)timegm(&e) : (int64_t)mktime(&e);
    if (!utc) {
        if (had)
            setenv("TZ", saved, 1);
        else
            unsetenv("TZ");
        tzset();
    }
}

static int scope_of(const char *s)
{
    if (strcmp(s, "tenant") == 0)
        return SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_TENANT;
    if (strcmp(s, "team") == 0)
        return SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_TEAM;
    if (strcmp(s, "key") == 0)
        return SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_KEY;
    return SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_UNSPECIFIED;
}

/* Spend of a scope over [start, end) from the coarsest rollup whose
 * buckets tile the window (days for UTC windows, hours for most zones). */
static int spent(ctx_t *c, int scope, const char *tenant, const char *id, int64_t start,
                 int64_t end, double *out)
{
    static const char *const tables[3] = {"usage_minute", "usage_hour", "usage_day"};
    static const char *const columns[4] = {NULL, "tenant_id", "team_id", "key_id"};
    if (scope <= 0 || scope > 3) {
        *out = 0;
        return 0;
    }
    int t = start % 86400 == 0 && end % 86400 == 0 ? 2
            : start % 3600 == 0 && end % 3600 == 0 ? 1
                                                   : 0;
    sqlite3_stmt *st = c->spend[t][scope];
    if (st == NULL) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT total(cost_usd) FROM %s WHERE tenant_id = ?1 AND %s = ?2"
                 " AND bucket >= ?3 AND bucket < ?4",
                 tables[t], columns[scope]);
        int rc = prepare(c, sql, &st);
        if (rc != 0)
            return rc;
        c->spend[t][scope] = st;
    }
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, start);
    sqlite3_bind_int64(st, 4, end);
    int rc = sqlite3_step(st);
    double v = rc == SQLITE_ROW ? sqlite3_column_double(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return sql_fail(c, "budget spend");
    *out = v;
    return 0;
}

/* A budget message with its current window and spend, into *out; a hard
 * budget already spent blocks its scope id. */
static int new_budget(ctx_t *c, void **out, const char *id, int scope, const char *scope_id,
                      const char *tenant, const char *tz, const char *period, double amount,
                      double soft, bool hard)
{
    Switchyard__Budget *bg = NEW_MSG(c->b, Switchyard__Budget, switchyard__budget__init);
    if (bg == NULL)
        return oom(c);
    bg->id = (char *)id;
    bg->scope = (Switchyard__BudgetScope)scope;
    bg->scope_id = (char *)scope_id;
    bg->period = (char *)period;
    bg->amount_usd = amount;
    bg->soft_threshold = soft;
    bg->hard = hard;
    bool monthly = strcmp(period, "monthly") == 0;
    size_t w = 0;
    if (tz == NULL)
        tz = "UTC";
    while (w < c->n_windows &&
           !(c->windows[w].monthly == monthly && strcmp(c->windows[w].tz, tz) == 0))
        w++;
    if (w < c->n_windows) {
        bg->window_start = c->windows[w].start;
        bg->window_end = c->windows[w].end;
    } else {
        budget_window(tz, period, c->now, &bg->window_start, &bg->window_end);
        if (c->n_windows < SY_ARRAY_LEN(c->windows) && strlen(tz) < sizeof(c->windows[0].tz)) {
            snprintf(c->windows[c->n_windows].tz, sizeof(c->windows[0].tz), "%s", tz);
            c->windows[c->n_windows].monthly = monthly;
            c->windows[c->n_windows].start = bg->window_start;
            c->windows[c->n_windows].end = bg->window_end;
            c->n_windows++;
        }
    }
    int rc = spent(c, scope, tenant, scope_id, bg->window_start, bg->window_end, &bg->spent_usd);
    if (rc != 0)
        return rc;
    if (hard && amount > 0 && bg->spent_usd >= amount &&
        vec_push(c->b, &c->blocked[scope], (void *)scope_id) != 0)
        return oom(c);
    *out = bg;
    return 0;
}

static int budget_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    SY_UNUSED(arg);
    char *id = col_text(c->b, st, 0), *scope_id = col_text(c->b, st, 2),
         *tenant = col_text(c->b, st, 3), *period = col_text(c->b, st, 4);
    if (id == NULL || scope_id == NULL || tenant == NULL || period == NULL)
        return oom(c);
    int scope = scope_of((const char *)sqlite3_column_text(st, 1));
    return new_budget(c, out, id, scope, scope_id, tenant, (const char *)sqlite3_column_text(st, 8),
                      period, sqlite3_column_double(st, 5), sqlite3_column_double(st, 6),
                      sqlite3_column_int(st, 7) != 0);
}

/* A key's own budget_usd is a hard monthly budget on that key. */
static int key_budget_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    SY_UNUSED(arg);
    char *key = col_text(c->b, st, 0), *tenant = col_text(c->b, st, 1);
    size_t idlen = key != NULL ? strlen(key) + 5 : 0;
    char *id = key != NULL ? alloc(c->b, idlen) : NULL;
    if (key == NULL || tenant == NULL || id == NULL)
        return oom(c);
    snprintf(id, idlen, "key:%s", key);
    return new_budget(c, out, id, SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_KEY, key, tenant,
                      (const char *)sqlite3_column_text(st, 3), "monthly",
                      sqlite3_column_double(st, 2), 1.0, true);
}

static int build_budgets(ctx_t *c)
{
    vec_t v = {0};
    int rc = build_list(c,
                        "SELECT b.id, b.scope, b.scope_id, b.tenant_id, b.period, b.amount_usd,"
                        " b.soft_threshold, b.hard, ifnull(t.time_zone, 'UTC') FROM budgets b"
                        " LEFT JOIN tenants t ON t.id = b.tenant_id ORDER BY b.id",
                        budget_row, NULL, "budgets", &v);
    if (rc == 0)
        rc = build_list(c,
                        "SELECT k.id, k.tenant_id, k.budget_usd, ifnull(t.time_zone, 'UTC')"
                        " FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id"
                        " WHERE k.budget_usd > 0 AND (k.revoked_at = 0 OR k.revoked_at > ?1)"
                        " ORDER BY k.id",
                        key_budget_row, NULL, "key budgets", &v);
    if (rc == 0) {
        c->b->msg.budgets = (Switchyard__Budget **)v.items;
        c->b->msg.n_budgets = v.n;
    }
    /* The spend queries were prepared lazily for this build. */
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < 4; i++) {
            sqlite3_finalize(c->spend[t][i]);
            c->spend[t][i] = NULL;
        }
    return rc;
}

/* --- tenants, teams, keys -------------------------------------------------------- */

static int tenant_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    SY_UNUSED(arg);
    Switchyard__Tenant *t = NEW_MSG(c->b, Switchyard__Tenant, switchyard__tenant__init);
    if (t == NULL || (t->id = col_text(c->b, st, 0)) == NULL ||
        (t->name = col_text(c->b, st, 1)) == NULL || (t->tier = col_text(c->b, st, 2)) == NULL ||
        (t->time_zone = col_text(c->b, st, 3)) == NULL || (t->limits = limits(c, st, 5)) == NULL)
        return oom(c);
    t->blocked = sqlite3_column_int(st, 4) != 0 ||
                 is_blocked(c, SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_TENANT, t->id);
    *out = t;
    return 0;
}

static int build_tenants(ctx_t *c)
{
    vec_t v = {0};
    int rc = build_list(c,
                        "SELECT id, name, tier, time_zone, blocked, rpm, tpm FROM tenants"
                        " ORDER BY id",
                        tenant_row, NULL, "tenants", &v);
    if (rc == 0) {
        c->b->msg.tenants = (Switchyard__Tenant **)v.items;
        c->b->msg.n_tenants = v.n;
    }
    return rc;
}

static int team_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    SY_UNUSED(arg);
    Switchyard__Team *t = NEW_MSG(c->b, Switchyard__Team, switchyard__team__init);
    if (t == NULL || (t->id = col_text(c->b, st, 0)) == NULL ||
        (t->tenant_id = col_text(c->b, st, 1)) == NULL ||
        (t->name = col_text(c->b, st, 2)) == NULL || (t->limits = limits(c, st, 4)) == NULL)
        return oom(c);
    t->blocked = sqlite3_column_int(st, 3) != 0 ||
                 is_blocked(c, SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_TEAM, t->id);
    *out = t;
    return 0;
}

static int build_teams(ctx_t *c)
{
    vec_t v = {0};
    int rc = build_list(c, "SELECT id, tenant_id, name, blocked, rpm, tpm FROM teams ORDER BY id",
                        team_row, NULL, "teams", &v);
    if (rc == 0) {
        c->b->msg.teams = (Switchyard__Team **)v.items;
        c->b->msg.n_teams = v.n;
    }
    return rc;
}

static int key_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    SY_UNUSED(arg);
    Switchyard__ApiKey *k = NEW_MSG(c->b, Switchyard__ApiKey, switchyard__api_key__init);
    int hlen = sqlite3_column_bytes(st, 0);
    const void *hash = sqlite3_column_blob(st, 0);
    if (k == NULL || (k->sha256.data = alloc(c->b, (size_t)hlen + 1)) == NULL ||
        (k->id = col_text(c->b, st, 1)) == NULL || (k->prefix = col_text(c->b, st, 2)) == NULL ||
        (k->tenant_id = col_text(c->b, st, 3)) == NULL ||
        (k->team_id = col_text(c->b, st, 4)) == NULL || (k->name = col_text(c->b, st, 5)) == NULL ||
        (k->limits = limits(c, st, 8)) == NULL)
        return oom(c);
    if (hlen > 0)
        memcpy(k->sha256.data, hash, (size_t)hlen);
    k->sha256.len = (size_t)hlen;
    k->expires_at = sqlite3_column_int64(st, 6);
    int rc = string_array(c, st, 7, &k->allowed_models, &k->n_allowed_models);
    if (rc != 0)
        return rc;
    k->blocked = is_blocked(c, SWITCHYARD__BUDGET_SCOPE__BUDGET_SCOPE_KEY, k->id);
    *out = k;
    return 0;
}

static int build_keys(ctx_t *c)
{
    vec_t v = {0};
    /* Revoked and expired keys are left out: a worker answers 401 for them. */
    int rc = build_list(c,
                        "SELECT sha256, id, prefix, tenant_id, ifnull(team_id, ''), name,"
                        " expires_at, allowed_models, rpm, tpm FROM api_keys"
                        " WHERE (revoked_at = 0 OR revoked_at > ?1)"
                        " AND (expires_at = 0 OR expires_at > ?1) ORDER BY id",
                        key_row, NULL, "keys", &v);
    if (rc == 0) {
        c->b->msg.keys = (Switchyard__ApiKey **)v.items;
        c->b->msg.n_keys = v.n;
    }
    return rc;
}

/* --- providers, models -------------------------------------------------------------- */

static Switchyard__ProviderKind provider_kind(const char *s)
{
    if (s == NULL)
        return SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_UNSPECIFIED;
    if (strcmp(s, "openai") == 0)
        return SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_OPENAI;
    if (strcmp(s, "anthropic") == 0)
        return SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_ANTHROPIC;
    if (strcmp(s, "gemini") == 0)
        return SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_GEMINI;
    if (strcmp(s, "openai-compatible") == 0)
        return SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_OPENAI_COMPATIBLE;
    return SWITCHYARD__PROVIDER_KIND__PROVIDER_KIND_UNSPECIFIED;
}

static int provider_headers(ctx_t *c, sqlite3_stmt *st, int col, Switchyard__Provider *p)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    int len = sqlite3_column_bytes(st, col);
    if (text == NULL || len <= 2)
        return 0;
    json_object *obj = NULL;
    if (sy_json_parse_once(text, (size_t)len, &obj, NULL) != 0 ||
        !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return 0;
    }
    vec_t out = {0};
    json_object_object_foreach(obj, key, val)
    {
        if (!json_object_is_type(val, json_type_string))
            continue;
        Switchyard__Provider__HeadersEntry *e = NEW_MSG(c->b, Switchyard__Provider__HeadersEntry,
                                                        switchyard__provider__headers_entry__init);
        if (e == NULL || (e->key = dup_n(c->b, key, strlen(key))) == NULL ||
            (e->value = dup_n(c->b, json_object_get_string(val),
                              (size_t)json_object_get_string_len(val))) == NULL ||
            vec_push(c->b, &out, e) != 0) {
            json_object_put(obj);
            return oom(c);
        }
    }
    json_object_put(obj);
    p->headers = (Switchyard__Provider__HeadersEntry **)out.items;
    p->n_headers = out.n;
    return 0;
}

static int provider_credential(ctx_t *c, sqlite3_stmt *st, int col, Switchyard__Provider *p)
{
    int len = sqlite3_column_bytes(st, col);
    const void *blob = sqlite3_column_blob(st, col);
    if (blob == NULL || len == 0 || c->master_key == NULL)
        return 0;
    sy_buf_t plain;
    sy_buf_init(&plain);
    int rc = sy_secrets_open(c->master_key, p->id, blob, (size_t)len, &plain);
    if (rc != 0) {
        /* A credential sealed under another master key: the provider stays in
         * the snapshot without it (its calls fail upstream with 401), and the
         * operator sees why in the log of every build. */
        sy_buf_free(&plain);
        return sy_err_set(c->err, SY_EACCES, "snapshot: provider %s: credential: %s", p->id,
                          sy_err_name(rc));
    }
    p->api_key = dup_n(c->b, plain.data != NULL ? plain.data : "", plain.len);
    /* The clear credential must not linger in freed heap memory. */
    if (plain.data != NULL)
        explicit_bzero(plain.data, plain.cap);
    sy_buf_free(&plain);
    return p->api_key != NULL ? 0 : oom(c);
}

static int provider_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    SY_UNUSED(arg);
    Switchyard__Provider *p = NEW_MSG(c->b, Switchyard__Provider, switchyard__provider__init);
    if (p == NULL || (p->id = col_text(c->b, st, 0)) == NULL ||
        (p->name = col_text(c->b, st, 1)) == NULL || (p->base_url = col_text(c->b, st, 3)) == NULL)
        return oom(c);
    p->kind = provider_kind((const char *)sqlite3_column_text(st, 2));
    p->connect_timeout_ms = (uint32_t)sqlite3_column_int64(st, 6);
    p->first_byte_timeout_ms = (uint32_t)sqlite3_column_int64(st, 7);
    p->total_timeout_ms = (uint32_t)sqlite3_column_int64(st, 8);
    int rc = provider_headers(c, st, 5, p);
    if (rc != 0)
        return rc;
    if ((rc = provider_credential(c, st, 4, p)) != 0) {
        if (rc != SY_EACCES)
            return rc;
        sy_log(SY_LOG_ERROR, "snapshot_credential", "%s", c->err->msg);
        sy_err_clear(c->err);
    }
    *out = p;
    return 0;
}

static int build_providers(ctx_t *c)
{
    vec_t v = {0};
    int rc = build_list(c,
                        "SELECT id, name, kind, base_url, credential, headers, connect_timeout_ms,"
                        " first_byte_timeout_ms, total_timeout_ms FROM providers ORDER BY id",
                        provider_row, NULL, "providers", &v);
    if (rc == 0) {
        c->b->msg.providers = (Switchyard__Provider **)v.items;
        c->b->msg.n_providers = v.n;
    }
    return rc;
}

static int price_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    SY_UNUSED(arg);
    Switchyard__Price *p = NEW_MSG(c->b, Switchyard__Price, switchyard__price__init);
    if (p == NULL)
        return oom(c);
    p->valid_from = sqlite3_column_int64(st, 0);
    p->input_per_mtok = sqlite3_column_double(st, 1);
    p->output_per_mtok = sqlite3_column_double(st, 2);
    p->cached_input_per_mtok = sqlite3_column_double(st, 3);
    p->cache_write_per_mtok = sqlite3_column_double(st, 4);
    *out = p;
    return 0;
}

/* arg: the prepared price query of a model (?1 = model id). */
static int model_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    sqlite3_stmt *pr = arg;
    Switchyard__Model *m = NEW_MSG(c->b, Switchyard__Model, switchyard__model__init);
    if (m == NULL || (m->id = col_text(c->b, st, 0)) == NULL ||
        (m->provider_id = col_text(c->b, st, 1)) == NULL ||
        (m->upstream_name = col_text(c->b, st, 2)) == NULL)
        return oom(c);
    m->context_window = (uint32_t)sqlite3_column_int64(st, 3);
    m->default_max_tokens = (uint32_t)sqlite3_column_int64(st, 4);
    int rc = string_array(c, st, 5, &m->capabilities, &m->n_capabilities);
    if (rc != 0)
        return rc;
    if ((sqlite3_column_int64(st, 6) > 0 || sqlite3_column_int64(st, 7) > 0) &&
        (m->limits = limits(c, st, 6)) == NULL)
        return oom(c);
    vec_t prices = {0};
    sqlite3_bind_text(pr, 1, m->id, -1, SQLITE_STATIC);
    if ((rc = collect(c, pr, price_row, NULL, "model prices", &prices)) != 0)
        return rc;
    m->prices = (Switchyard__Price **)prices.items;
    m->n_prices = prices.n;
    *out = m;
    return 0;
}

static int build_models(ctx_t *c)
{
    sqlite3_stmt *pr = NULL;
    vec_t v = {0};
    int rc = prepare(c,
                     "SELECT valid_from, input_per_mtok, output_per_mtok,"
                     " cached_input_per_mtok, cache_write_per_mtok FROM model_prices"
                     " WHERE model_id = ?1 ORDER BY valid_from",
                     &pr);
    if (rc == 0 && (rc = build_list(c,
                                    "SELECT id, provider_id, upstream_name, context_window,"
                                    " default_max_tokens, capabilities, rpm, tpm FROM models"
                                    " ORDER BY id",
                                    model_row, pr, "models", &v)) == 0) {
        c->b->msg.models = (Switchyard__Model **)v.items;
        c->b->msg.n_models = v.n;
    }
    sqlite3_finalize(pr);
    return rc;
}

/* --- routes ----------------------------------------------------------------------- */

/* The nested queries of the routes: rules of a route, targets of a rule. */
typedef struct route_queries {
    sqlite3_stmt *rules;   /* owned by build_routes; ?1 = route id */
    sqlite3_stmt *targets; /* owned by build_routes; ?1 = route id, ?2 = rule position */
} route_queries_t;

static int target_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    SY_UNUSED(arg);
    Switchyard__RouteTarget *t =
        NEW_MSG(c->b, Switchyard__RouteTarget, switchyard__route_target__init);
    if (t == NULL || (t->provider_id = col_text(c->b, st, 0)) == NULL ||
        (t->model_id = col_text(c->b, st, 1)) == NULL)
        return oom(c);
    t->weight = (uint32_t)sqlite3_column_int64(st, 2);
    *out = t;
    return 0;
}

/* arg: the route queries; the targets query has its route id bound. */
static int rule_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    sqlite3_stmt *tg = ((route_queries_t *)arg)->targets;
    Switchyard__RouteRule *rule =
        NEW_MSG(c->b, Switchyard__RouteRule, switchyard__route_rule__init);
    if (rule == NULL || (rule->name = col_text(c->b, st, 1)) == NULL ||
        (rule->task = col_text(c->b, st, 2)) == NULL ||
        (rule->tenant_tier = col_text(c->b, st, 4)) == NULL ||
        (rule->latency_class = col_text(c->b, st, 5)) == NULL ||
        (rule->strategy = col_text(c->b, st, 7)) == NULL)
        return oom(c);
    rule->min_prompt_tokens = (uint64_t)sqlite3_column_int64(st, 3);
    rule->max_budget_remaining_fraction = sqlite3_column_double(st, 6);
    vec_t targets = {0};
    sqlite3_bind_int(tg, 2, sqlite3_column_int(st, 0));
    int rc = collect(c, tg, target_row, NULL, "route targets", &targets);
    if (rc != 0)
        return rc;
    rule->targets = (Switchyard__RouteTarget **)targets.items;
    rule->n_targets = targets.n;
    *out = rule;
    return 0;
}

static int route_row(ctx_t *c, sqlite3_stmt *st, void *arg, void **out)
{
    route_queries_t *q = arg;
    Switchyard__Route *r = NEW_MSG(c->b, Switchyard__Route, switchyard__route__init);
    if (r == NULL || (r->id = col_text(c->b, st, 0)) == NULL ||
        (r->alias = col_text(c->b, st, 1)) == NULL ||
        (r->tenant_id = col_text(c->b, st, 2)) == NULL)
        return oom(c);
    r->max_attempts = (uint32_t)sqlite3_column_int64(st, 3);
    r->deadline_ms = (uint32_t)sqlite3_column_int64(st, 4);
    vec_t rules = {0};
    sqlite3_bind_text(q->rules, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->targets, 1, r->id, -1, SQLITE_STATIC);
    int rc = collect(c, q->rules, rule_row, q, "route rules", &rules);
    if (rc != 0)
        return rc;
    r->rules = (Switchyard__RouteRule **)rules.items;
    r->n_rules = rules.n;
    *out = r;
    return 0;
}

static int build_routes(ctx_t *c)
{
    route_queries_t q = {NULL, NULL};
    vec_t v = {0};
    int rc;
    if ((rc = prepare(c,
                      "SELECT position, name, task, min_prompt_tokens, tenant_tier, latency_class,"
                      " max_budget_remaining_fraction, strategy FROM route_rules"
                      " WHERE route_id = ?1 ORDER BY position",
                      &q.rules)) == 0 &&
        (rc = prepare(c,
                      "SELECT provider_id, model_id, weight FROM route_targets"
                      " WHERE route_id = ?1 AND rule_position = ?2 ORDER BY position",
                      &q.targets)) == 0 &&
        (rc = build_list(c,
                         "SELECT id, alias, ifnull(tenant_id, ''), max_attempts, deadline_ms"
                         " FROM routes ORDER BY id",
                         route_row, &q, "routes", &v)) == 0) {
        c->b->msg.routes = (Switchyard__Route **)v.items;
        c->b->msg.n_routes = v.n;
    }
    sqlite3_finalize(q.rules);
    sqlite3_finalize(q.targets);
    return rc;
}

/* --- entry points ----------------------------------------------------------------- */

int sy_snapshot_build(sqlite3 *db, const sy_envelope_key_t *master_key, uint64_t version,
                      int64_t now_ms, uint32_t live_workers, sy_snapshot_build_t **out,
                      sy_err_t *err)
{
    sy_snapshot_build_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return sy_err_set(err, SY_ENOMEM, "snapshot: out of memory");
    switchyard__snapshot__init(&b->msg);
    b->msg.version = version;
    b->msg.created_at = now_ms;
    b->msg.live_workers = live_workers;
    ctx_t c = {.db = db, .b = b, .master_key = master_key, .now = now_ms / 1000, .err = err};

    /* One read transaction, so the snapshot is consistent across tables. */
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : sql_fail(&c, "begin");
    if (rc != 0)
        goto fail;
    if ((rc = build_budgets(&c)) == 0 && (rc = build_tenants(&c)) == 0 &&
        (rc = build_teams(&c)) == 0 && (rc = build_keys(&c)) == 0 &&
        (rc = build_providers(&c)) == 0 && (rc = build_models(&c)) == 0)
        rc = build_routes(&c);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != 0)
        goto fail;
    *out = b;
    return 0;
fail:
    sy_snapshot_build_free(b);
    return rc;
}

const Switchyard__Snapshot *sy_snapshot_build_message(const sy_snapshot_build_t *b)
{
    return &b->msg;
}

void sy_snapshot_build_free(sy_snapshot_build_t *b)
{
    if (b == NULL)
        return;
    /* Provider credentials live in the chunks: wipe before freeing. */
    for (size_t i = 0; i < b->msg.n_providers; i++) {
        char *k = b->msg.providers[i]->api_key;
        if (k != NULL)
            explicit_bzero(k, strlen(k));
    }
    chunk_t *c = b->chunks;
    while (c != NULL) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
    free(b);
}
