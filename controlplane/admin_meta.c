/* Endpoints about the API itself: stats, the caller's identity, the
 * OpenAPI document and liveness. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static void h_stats(rq_t *r)
{
    if (!sy_admin__is_platform(r)) {
        sy_admin__forbidden(r);
        return;
    }
    sy_buf_t *b = &r->res->body;
    sy_buf_reset(b);
    sy_buf_append_str(b, "{\"object\":\"stats\",\"cluster\":");
    if (r->a->cluster == NULL || sy_cluster_stats_json(r->a->cluster, b) != 0)
        sy_buf_append_str(b, "null");
    sqlite3_stmt *st = NULL;
    static const char *const counts[] = {"tenants", "teams",   "api_keys",    "providers", "models",
                                         "routes",  "budgets", "admin_users", "audit_log"};
    sy_buf_append_str(b, ",\"objects\":{");
    for (size_t i = 0; i < SY_ARRAY_LEN(counts); i++) {
        char sql[96];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", counts[i]);
        int64_t n = -1;
        if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sy_buf_appendf(b, "%s\"%s\":%lld", i ? "," : "", counts[i], (long long)n);
    }
    sy_buf_append_str(b, "}}");
    r->res->status = 200;
}

static void h_me(rq_t *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "object", json_object_new_string("me"));
    json_object_object_add(o, "user_id", json_object_new_string(r->actor.user_id));
    json_object_object_add(o, "role", json_object_new_string(sy_admin__role_names[r->actor.role]));
    json_object_object_add(
        o, "tenant_id", r->actor.tenant_id[0] ? json_object_new_string(r->actor.tenant_id) : NULL);
    sy_admin__reply_json(r, 200, o);
}

static void h_openapi(rq_t *r)
{
    sy_buf_reset(&r->res->body);
    if (sy_admin_openapi(&r->res->body) != 0)
        sy_admin__reply_error(r, 500, "api_error", NULL, "internal_error", "out of memory");
}

static void h_health(rq_t *r)
{
    sy_buf_reset(&r->res->body);
    sy_buf_append_str(&r->res->body, "{\"status\":\"ok\"}");
}

const route_t sy_admin__meta_routes[] = {
    {"GET", "/stats", h_stats, K_OTHER, NULL, "Stats", 0,
     "Cluster counters (snapshots, reports, rejected messages)", "getStats"},
    {"GET", "/me", h_me, K_OTHER, NULL, "Me", 0, "The caller's identity and role", "getMe"},
    {"GET", "/openapi.json", h_openapi, K_OTHER, NULL, "OpenAPI", A_NONE, "This document",
     "getOpenAPI"},
    {"GET", "/healthz", h_health, K_OTHER, NULL, "Health", A_NONE, "Liveness", "getHealth"},
    {.method = NULL},
};
