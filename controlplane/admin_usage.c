/* GET /usage: token and cost totals from the usage rollups, grouped and
 * bucketed as asked. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const usage_dims[] = {"tenant_id",   "team_id",  "key_id", "route",
                                         "provider_id", "model_id", NULL};
static const char *const usage_metrics[] = {"requests",           "errors",
                                            "prompt_tokens",      "completion_tokens",
                                            "cached_tokens",      "cache_write_tokens",
                                            "estimated_requests", NULL};

/* Parses unix seconds or an RFC 3339 UTC time ("2026-01-02T03:04:05Z" or a
 * date "2026-01-02"). */
static int parse_time(const char *s, int64_t *out)
{
    uint64_t n;
    if (sy_str_to_u64(sy_str_from_cstr(s), &n) == 0) {
        if (n > (uint64_t)INT64_MAX / 2)
            return -1;
        *out = (int64_t)n;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0') {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
        if (end == NULL || *end != '\0')
            return -1;
    }
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Maps a group_by name to its column ("tenant" and "tenant_id" both work). */
static const char *usage_dim(const char *name, size_t len)
{
    static const char *const short_names[] = {"tenant", "team",     "key",
                                              "route",  "provider", "model"};
    for (size_t i = 0; usage_dims[i]; i++) {
        if ((strlen(usage_dims[i]) == len && memcmp(usage_dims[i], name, len) == 0) ||
            (strlen(short_names[i]) == len && memcmp(short_names[i], name, len) == 0))
            return usage_dims[i];
    }
    return NULL;
}

/* What GET /usage asks for, read and checked from the query string. */
typedef struct usage_query {
    char tenant[SY_ADMIN_MAX_ID + 1]; /* filters, "" = any */
    char team[SY_ADMIN_MAX_ID + 1];
    char key[SY_ADMIN_MAX_ID + 1];
    char model[SY_ADMIN_MAX_ID + 1];
    int64_t from, to;    /* the period [from, to), unix seconds */
    const char *dims[8]; /* group_by columns (static strings), in order */
    size_t nd;           /* entries in dims */
    bool by_bucket;      /* group_by includes bucket */
    char gran[16];       /* granularity asked for, "" = none */
} usage_query_t;

/* The rollups, finest first. */
static const struct {
    const char *name;  /* granularity */
    const char *table; /* rollup table */
    int64_t step;      /* bucket width, seconds */
} rollups[] = {
    {"minute", "usage_minute", 60}, {"hour", "usage_hour", 3600}, {"day", "usage_day", 86400}};

/* A part of the period read from one rollup. */
typedef struct segment {
    int g;          /* index in rollups */
    int64_t lo, hi; /* [lo, hi) */
} segment_t;

#define MAX_SEGMENTS 5

/* Reads the query string into q, with a tenant role's scope applied.
 * Returns 0, or -1 after answering 400/404. */
static int read_query(rq_t *r, usage_query_t *q)
{
    char from_s[64], to_s[64], group[256];
    if (sy_admin__query_param(r, "tenant", q->tenant, sizeof(q->tenant)) != 0 ||
        sy_admin__query_param(r, "team", q->team, sizeof(q->team)) != 0 ||
        sy_admin__query_param(r, "key", q->key, sizeof(q->key)) != 0 ||
        sy_admin__query_param(r, "model", q->model, sizeof(q->model)) != 0 ||
        sy_admin__query_param(r, "from", from_s, sizeof(from_s)) != 0 ||
        sy_admin__query_param(r, "to", to_s, sizeof(to_s)) != 0 ||
        sy_admin__query_param(r, "group_by", group, sizeof(group)) != 0 ||
        sy_admin__query_param(r, "granularity", q->gran, sizeof(q->gran)) != 0)
        return -1;
    if (sy_admin__tenant_filter(r, q->tenant) != 0)
        return -1;
    if (!sy_admin__is_platform(r)) {
        /* A team or key of another tenant is as unknown as a missing one. */
        if (q->team[0] && !sy_admin__exists(r, "teams", q->team, q->tenant)) {
            sy_admin__not_found(r, "team", q->team);
            return -1;
        }
        if (q->key[0] && !sy_admin__exists(r, "api_keys", q->key, q->tenant)) {
            sy_admin__not_found(r, "key", q->key);
            return -1;
        }
    }
    q->from = 0;
    q->to = 4102444800; /* 2100-01-01 */
    if (from_s[0] && parse_time(from_s, &q->from) != 0) {
        SY_ADMIN_BAD_FIELD(r, "from", "invalid_value",
                           "from must be unix seconds or an RFC 3339 UTC time");
        return -1;
    }
    if (to_s[0] && parse_time(to_s, &q->to) != 0) {
        SY_ADMIN_BAD_FIELD(r, "to", "invalid_value",
                           "to must be unix seconds or an RFC 3339 UTC time");
        return -1;
    }
    if (q->to <= q->from) {
        SY_ADMIN_BAD_FIELD(r, "to", "invalid_value", "to must be after from");
        return -1;
    }
    q->nd = 0;
    q->by_bucket = false;
    for (const char *p = group; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 6 && memcmp(p, "bucket", 6) == 0) {
            q->by_bucket = true;
        } else {
            const char *d = usage_dim(p, len);
            if (d == NULL || q->nd == 6) {
                SY_ADMIN_BAD_FIELD(
                    r, "group_by", "invalid_value",
                    "group_by takes tenant, team, key, route, provider, model, bucket");
                return -1;
            }
            q->dims[q->nd++] = d;
        }
        p += len + (e ? 1 : 0);
    }
    return 0;
}

/* The period as segments of rollup buckets. Asked for a granularity (or
 * grouped by bucket), one rollup whose buckets tile [from, to). Otherwise
 * whole days from the day rollup, whole hours around them from the hour
 * rollup and the minutes at the edges from the minute rollup: exact for any
 * whole-minute period, and a month costs ~30 day buckets, not 43,200 minute
 * buckets, per group. Returns the count, or -1 after answering 400. */
static int plan_segments(rq_t *r, const usage_query_t *q, segment_t segs[MAX_SEGMENTS])
{
    int64_t from = q->from, to = q->to;
    if (q->gran[0] != '\0' || q->by_bucket) {
        int g = -1;
        for (int i = 0; i < 3 && q->gran[0]; i++)
            if (strcmp(q->gran, rollups[i].name) == 0)
                g = i;
        if (q->gran[0] && g < 0) {
            SY_ADMIN_BAD_FIELD(r, "granularity", "invalid_value",
                               "granularity must be minute, hour or day");
            return -1;
        }
        if (g < 0) /* grouped by bucket: the coarsest rollup that tiles the period */
            g = from % 86400 == 0 && to % 86400 == 0 ? 2
                : from % 3600 == 0 && to % 3600 == 0 ? 1
                                                     : 0;
        if (from % rollups[g].step != 0 || to % rollups[g].step != 0) {
            SY_ADMIN_BAD_FIELD(r, "from", "invalid_value",
                               "from and to must be multiples of the %s", rollups[g].name);
            return -1;
        }
        segs[0] = (segment_t){g, from, to};
        return 1;
    }
    if (from % 60 != 0 || to % 60 != 0) {
        SY_ADMIN_BAD_FIELD(r, "from", "invalid_value", "from and to must be whole minutes");
        return -1;
    }
    int64_t h1 = (from + 3599) / 3600 * 3600, h2 = to / 3600 * 3600;
    int64_t d1 = (h1 + 86399) / 86400 * 86400, d2 = h2 / 86400 * 86400;
    if (h1 >= h2) {
        segs[0] = (segment_t){0, from, to};
        return 1;
    }
    if (d1 >= d2) {
        segs[0] = (segment_t){0, from, h1};
        segs[1] = (segment_t){1, h1, h2};
        segs[2] = (segment_t){0, h2, to};
        return 3;
    }
    segs[0] = (segment_t){0, from, h1};
    segs[1] = (segment_t){1, h1, d1};
    segs[2] = (segment_t){2, d1, d2};
    segs[3] = (segment_t){1, d2, h2};
    segs[4] = (segment_t){0, h2, to};
    return 5;
}

/* The query over the segments (filters bound as ?3..?6) into sql; *used is
 * the one rollup read, or -2 for several. */
static void build_sql(const usage_query_t *q, const segment_t *segs, int ns, sy_buf_t *sql,
                      int *used)
{
    *used = -1;
    sy_buf_append_str(sql, "SELECT ");
    if (q->by_bucket)
        sy_buf_append_str(sql, "bucket, ");
    for (size_t i = 0; i < q->nd; i++)
        sy_buf_appendf(sql, "%s, ", q->dims[i]);
    for (size_t i = 0; usage_metrics[i]; i++)
        sy_buf_appendf(sql, "total(%s), ", usage_metrics[i]);
    sy_buf_append_str(sql, "total(cost_usd) FROM (");
    bool first = true;
    for (int i = 0; i < ns; i++) {
        if (segs[i].lo >= segs[i].hi)
            continue;
        *used = *used == -1 || *used == segs[i].g ? segs[i].g : -2;
        sy_buf_appendf(sql, "%sSELECT * FROM %s WHERE bucket >= %lld AND bucket < %lld",
                       first ? "" : " UNION ALL ", rollups[segs[i].g].table, (long long)segs[i].lo,
                       (long long)segs[i].hi);
        if (q->tenant[0])
            sy_buf_append_str(sql, " AND tenant_id = ?3");
        if (q->team[0])
            sy_buf_append_str(sql, " AND team_id = ?4");
        if (q->key[0])
            sy_buf_append_str(sql, " AND key_id = ?5");
        if (q->model[0])
            sy_buf_append_str(sql, " AND model_id = ?6");
        first = false;
    }
    sy_buf_append_str(sql, ")");
    if (q->by_bucket || q->nd > 0) {
        sy_buf_append_str(sql, " GROUP BY ");
        if (q->by_bucket)
            sy_buf_append_str(sql, q->nd ? "bucket, " : "bucket");
        for (size_t i = 0; i < q->nd; i++)
            sy_buf_appendf(sql, "%s%s", q->dims[i], i + 1 < q->nd ? ", " : "");
        sy_buf_append_str(sql, " ORDER BY 1");
    }
    sy_buf_append_str(sql, " LIMIT 10001");
}

/* The current row as a group: its bucket and dimensions, the metrics, and
 * their sums added to tot / *tot_cost. */
static json_object *group_json(const usage_query_t *q, sqlite3_stmt *st, int64_t tot[8],
                               double *tot_cost)
{
    json_object *o = json_object_new_object();
    int c = 0;
    if (q->by_bucket)
        json_object_object_add(o, "bucket", json_object_new_int64(sqlite3_column_int64(st, c++)));
    for (size_t i = 0; i < q->nd; i++, c++)
        json_object_object_add(o, q->dims[i],
                               json_object_new_string((const char *)sqlite3_column_text(st, c)));
    int64_t total_tokens = 0;
    for (size_t i = 0; usage_metrics[i]; i++, c++) {
        int64_t v = (int64_t)sqlite3_column_double(st, c);
        tot[i] += v;
        if (strcmp(usage_metrics[i], "prompt_tokens") == 0 ||
            strcmp(usage_metrics[i], "completion_tokens") == 0)
            total_tokens += v;
        json_object_object_add(o, usage_metrics[i], json_object_new_int64(v));
    }
    json_object_object_add(o, "total_tokens", json_object_new_int64(total_tokens));
    double cost = sqlite3_column_double(st, c);
    *tot_cost += cost;
    json_object_object_add(o, "cost_usd", sy_admin__new_double(cost));
    return o;
}

static void h_usage(rq_t *r)
{
    usage_query_t q;
    segment_t segs[MAX_SEGMENTS];
    int ns, used;
    if (read_query(r, &q) != 0 || (ns = plan_segments(r, &q, segs)) < 0)
        return;
    sy_buf_t sql;
    sy_buf_init(&sql);
    build_sql(&q, segs, ns, &sql, &used);
    sqlite3_stmt *st = NULL;
    int prc = sy_admin__prepare(r, sql.data, &st);
    sy_buf_free(&sql);
    if (prc != 0)
        return;
    if (q.tenant[0])
        sqlite3_bind_text(st, 3, q.tenant, -1, SQLITE_TRANSIENT);
    if (q.team[0])
        sqlite3_bind_text(st, 4, q.team, -1, SQLITE_TRANSIENT);
    if (q.key[0])
        sqlite3_bind_text(st, 5, q.key, -1, SQLITE_TRANSIENT);
    if (q.model[0])
        sqlite3_bind_text(st, 6, q.model, -1, SQLITE_TRANSIENT);
    json_object *data = json_object_new_array();
    int64_t tot[8] = {0};
    double tot_cost = 0;
    int rc;
    size_t rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && ++rows <= 10000)
        json_object_array_add(data, group_json(&q, st, tot, &tot_cost));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_object_put(data);
        sy_admin__db_error(r);
        return;
    }
    if (rows > 10000) {
        json_object_put(data);
        SY_ADMIN_BAD_FIELD(r, "group_by", "too_many_groups",
                           "more than 10000 groups; narrow the period or the grouping");
        return;
    }
    /* Totals are the sum over the groups, which with no grouping is the one row. */
    json_object *totals = json_object_new_object();
    for (size_t i = 0; usage_metrics[i]; i++)
        json_object_object_add(totals, usage_metrics[i], json_object_new_int64(tot[i]));
    json_object_object_add(totals, "total_tokens", json_object_new_int64(tot[2] + tot[3]));
    json_object_object_add(totals, "cost_usd", sy_admin__new_double(tot_cost));
    json_object *out = json_object_new_object();
    json_object_object_add(out, "object", json_object_new_string("usage"));
    json_object_object_add(out, "from", json_object_new_int64(q.from));
    json_object_object_add(out, "to", json_object_new_int64(q.to));
    json_object_object_add(out, "granularity",
                           json_object_new_string(used >= 0 ? rollups[used].name : "mixed"));
    json_object_object_add(out, "totals", totals);
    json_object_object_add(out, "data", data);
    sy_admin__reply_json(r, 200, out);
}

const route_t sy_admin__usage_routes[] = {
    {"GET", "/usage", h_usage, K_OTHER, NULL, "Usage", 0,
     "Usage (tokens and cost) by tenant, team, key, model and period", "getUsage"},
    {.method = NULL},
};
