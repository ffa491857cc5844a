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

static void h_usage(rq_t *r)
{
    char tenant[SY_ADMIN_MAX_ID + 1], team[SY_ADMIN_MAX_ID + 1], key[SY_ADMIN_MAX_ID + 1],
        model[SY_ADMIN_MAX_ID + 1];
    char from_s[64], to_s[64], group[256], gran[16];
    if (sy_admin__query_param(r, "tenant", tenant, sizeof(tenant)) != 0 ||
        sy_admin__query_param(r, "team", team, sizeof(team)) != 0 ||
        sy_admin__query_param(r, "key", key, sizeof(key)) != 0 ||
        sy_admin__query_param(r, "model", model, sizeof(model)) != 0 ||
        sy_admin__query_param(r, "from", from_s, sizeof(from_s)) != 0 ||
        sy_admin__query_param(r, "to", to_s, sizeof(to_s)) != 0 ||
        sy_admin__query_param(r, "group_by", group, sizeof(group)) != 0 ||
        sy_admin__query_param(r, "granularity", gran, sizeof(gran)) != 0)
        return;
    if (sy_admin__tenant_filter(r, tenant) != 0)
        return;
    if (!sy_admin__is_platform(r)) {
        /* A team or key of another tenant is as unknown as a missing one. */
        if (team[0] && !sy_admin__exists(r, "teams", team, tenant)) {
            sy_admin__not_found(r, "team", team);
            return;
        }
        if (key[0] && !sy_admin__exists(r, "api_keys", key, tenant)) {
            sy_admin__not_found(r, "key", key);
            return;
        }
    }
    int64_t from = 0, to = 4102444800; /* 2100-01-01 */
    if (from_s[0] && parse_time(from_s, &from) != 0) {
        SY_ADMIN_BAD_FIELD(r, "from", "invalid_value",
                           "from must be unix seconds or an RFC 3339 UTC time");
        return;
    }
    if (to_s[0] && parse_time(to_s, &to) != 0) {
        SY_ADMIN_BAD_FIELD(r, "to", "invalid_value",
                           "to must be unix seconds or an RFC 3339 UTC time");
        return;
    }
    if (to <= from) {
        SY_ADMIN_BAD_FIELD(r, "to", "invalid_value", "to must be after from");
        return;
    }
    const char *dims[8];
    size_t nd = 0;
    bool by_bucket = false;
    for (const char *p = group; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 6 && memcmp(p, "bucket", 6) == 0) {
            by_bucket = true;
        } else {
            const char *d = usage_dim(p, len);
            if (d == NULL || nd == 6) {
                SY_ADMIN_BAD_FIELD(
                    r, "group_by", "invalid_value",
                    "group_by takes tenant, team, key, route, provider, model, bucket");
                return;
            }
            dims[nd++] = d;
        }
        p += len + (e ? 1 : 0);
    }
    /* The period as segments of rollup buckets. Asked for a granularity (or
     * grouped by bucket), one rollup whose buckets tile [from, to). Otherwise
     * whole days from the day rollup, whole hours around them from the hour
     * rollup and the minutes at the edges from the minute rollup: exact for
     * any whole-minute period, and a month costs ~30 day buckets, not 43,200
     * minute buckets, per group. */
    static const struct {
        const char *name;  /* granularity */
        const char *table; /* rollup table */
        int64_t step;      /* bucket width, seconds */
    } rollups[] = {
        {"minute", "usage_minute", 60}, {"hour", "usage_hour", 3600}, {"day", "usage_day", 86400}};
    struct {
        int g;          /* index in rollups */
        int64_t lo, hi; /* [lo, hi) */
    } segs[5];
    size_t ns = 0;
    if (gran[0] != '\0' || by_bucket) {
        int g = -1;
        for (int i = 0; i < 3 && gran[0]; i++)
            if (strcmp(gran, rollups[i].name) == 0)
                g = i;
        if (gran[0] && g < 0) {
            SY_ADMIN_BAD_FIELD(r, "granularity", "invalid_value",
                               "granularity must be minute, hour or day");
            return;
        }
        if (g < 0) /* grouped by bucket: the coarsest rollup that tiles the period */
            g = from % 86400 == 0 && to % 86400 == 0 ? 2
                : from % 3600 == 0 && to % 3600 == 0 ? 1
                                                     : 0;
        if (from % rollups[g].step != 0 || to % rollups[g].step != 0) {
            SY_ADMIN_BAD_FIELD(r, "from", "invalid_value",
                               "from and to must be multiples of the %s", rollups[g].name);
            return;
        }
        segs[ns].g = g, segs[ns].lo = from, segs[ns].hi = to, ns++;
    } else {
        if (from % 60 != 0 || to % 60 != 0) {
            SY_ADMIN_BAD_FIELD(r, "from", "invalid_value", "from and to must be whole minutes");
            return;
        }
        int64_t h1 = (from + 3599) / 3600 * 3600, h2 = to / 3600 * 3600;
        int64_t d1 = (h1 + 86399) / 86400 * 86400, d2 = h2 / 86400 * 86400;
        if (h1 >= h2) {
            segs[ns].g = 0, segs[ns].lo = from, segs[ns].hi = to, ns++;
        } else if (d1 >= d2) {
            segs[ns].g = 0, segs[ns].lo = from, segs[ns].hi = h1, ns++;
            segs[ns].g = 1, segs[ns].lo = h1, segs[ns].hi = h2, ns++;
            segs[ns].g = 0, segs[ns].lo = h2, segs[ns].hi = to, ns++;
        } else {
            segs[ns].g = 0, segs[ns].lo = from, segs[ns].hi = h1, ns++;
            segs[ns].g = 1, segs[ns].lo = h1, segs[ns].hi = d1, ns++;
            segs[ns].g = 2, segs[ns].lo = d1, segs[ns].hi = d2, ns++;
            segs[ns].g = 1, segs[ns].lo = d2, segs[ns].hi = h2, ns++;
            segs[ns].g = 0, segs[ns].lo = h2, segs[ns].hi = to, ns++;
        }
    }
    int used = -1; /* the one rollup read, or -2 for several */
    sy_buf_t sql;
    sy_buf_init(&sql);
    sy_buf_append_str(&sql, "SELECT ");
    if (by_bucket)
        sy_buf_append_str(&sql, "bucket, ");
    for (size_t i = 0; i < nd; i++)
        sy_buf_appendf(&sql, "%s, ", dims[i]);
    for (size_t i = 0; usage_metrics[i]; i++)
        sy_buf_appendf(&sql, "total(%s), ", usage_metrics[i]);
    sy_buf_append_str(&sql, "total(cost_usd) FROM (");
    bool first = true;
    for (size_t i = 0; i < ns; i++) {
        if (segs[i].lo >= segs[i].hi)
            continue;
        used = used == -1 || used == segs[i].g ? segs[i].g : -2;
        sy_buf_appendf(&sql, "%sSELECT * FROM %s WHERE bucket >= %lld AND bucket < %lld",
                       first ? "" : " UNION ALL ", rollups[segs[i].g].table, (long long)segs[i].lo,
                       (long long)segs[i].hi);
        if (tenant[0])
            sy_buf_append_str(&sql, " AND tenant_id = ?3");
        if (team[0])
            sy_buf_append_str(&sql, " AND team_id = ?4");
        if (key[0])
            sy_buf_append_str(&sql, " AND key_id = ?5");
        if (model[0])
            sy_buf_append_str(&sql, " AND model_id = ?6");
        first = false;
    }
    sy_buf_append_str(&sql, ")");
    snprintf(gran, sizeof(gran), "%s", used >= 0 ? rollups[used].name : "mixed");
    if (by_bucket || nd > 0) {
        sy_buf_append_str(&sql, " GROUP BY ");
        if (by_bucket)
            sy_buf_append_str(&sql, nd ? "bucket, " : "bucket");
        for (size_t i = 0; i < nd; i++)
            sy_buf_appendf(&sql, "%s%s", dims[i], i + 1 < nd ? ", " : "");
        sy_buf_append_str(&sql, " ORDER BY 1");
    }
    sy_buf_append_str(&sql, " LIMIT 10001");
    sqlite3_stmt *st = NULL;
    int prc = sy_admin__prepare(r, sql.data, &st);
    sy_buf_free(&sql);
    if (prc != 0)
        return;
    if (tenant[0])
        sqlite3_bind_text(st, 3, tenant, -1, SQLITE_TRANSIENT);
    if (team[0])
        sqlite3_bind_text(st, 4, team, -1, SQLITE_TRANSIENT);
    if (key[0])
        sqlite3_bind_text(st, 5, key, -1, SQLITE_TRANSIENT);
    if (model[0])
        sqlite3_bind_text(st, 6, model, -1, SQLITE_TRANSIENT);
    json_object *data = json_object_new_array();
    int64_t tot[8] = {0};
    double tot_cost = 0;
    int rc;
    size_t rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (++rows > 10000)
            break;
        json_object *o = json_object_new_object();
        int c = 0;
        if (by_bucket)
            json_object_object_add(o, "bucket",
                                   json_object_new_int64(sqlite3_column_int64(st, c++)));
        for (size_t i = 0; i < nd; i++, c++)
            json_object_object_add(
                o, dims[i], json_object_new_string((const char *)sqlite3_column_text(st, c)));
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
        tot_cost += cost;
        json_object_object_add(o, "cost_usd", sy_admin__new_double(cost));
        json_object_array_add(data, o);
    }
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
    json_object *totals = json_object_new_object();
    for (size_t i = 0; usage_metrics[i]; i++)
        json_object_object_add(totals, usage_metrics[i], json_object_new_int64(tot[i]));
    json_object_object_add(totals, "total_tokens", json_object_new_int64(tot[2] + tot[3]));
    json_object_object_add(totals, "cost_usd", sy_admin__new_double(tot_cost));
    /* Totals are the sum over the groups, which with no grouping is the one row. */
    json_object *out = json_object_new_object();
    json_object_object_add(out, "object", json_object_new_string("usage"));
    json_object_object_add(out, "from", json_object_new_int64(from));
    json_object_object_add(out, "to", json_object_new_int64(to));
    json_object_object_add(out, "granularity", json_object_new_string(gran));
    json_object_object_add(out, "totals", totals);
    json_object_object_add(out, "data", data);
    sy_admin__reply_json(r, 200, out);
}

const route_t sy_admin__usage_routes[] = {
    {"GET", "/usage", h_usage, K_OTHER, NULL, "Usage", 0,
     "Usage (tokens and cost) by tenant, team, key, model and period", "getUsage"},
    {.method = NULL},
};
