/* GET /audit: the audit log, newest first. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void h_audit(rq_t *r)
{
    char cursor[32], type[64], oid[SY_ADMIN_MAX_ID + 1], tenant[SY_ADMIN_MAX_ID + 1], lim[16];
    if (sy_admin__query_param(r, "cursor", cursor, sizeof(cursor)) != 0 ||
        sy_admin__query_param(r, "object_type", type, sizeof(type)) != 0 ||
        sy_admin__query_param(r, "object_id", oid, sizeof(oid)) != 0 ||
        sy_admin__query_param(r, "tenant_id", tenant, sizeof(tenant)) != 0 ||
        sy_admin__query_param(r, "limit", lim, sizeof(lim)) != 0)
        return;
    uint64_t limit = SY_ADMIN_DEFAULT_LIMIT, cur = (uint64_t)INT64_MAX;
    if (lim[0] && (sy_str_to_u64(sy_str_from_cstr(lim), &limit) != 0 || limit < 1 ||
                   limit > SY_ADMIN_MAX_LIMIT)) {
        SY_ADMIN_BAD_FIELD(r, "limit", "invalid_value", "limit must be an integer from 1 to %d",
                           SY_ADMIN_MAX_LIMIT);
        return;
    }
    if (cursor[0] && sy_str_to_u64(sy_str_from_cstr(cursor), &cur) != 0) {
        SY_ADMIN_BAD_FIELD(r, "cursor", "invalid_value", "cursor is not one this API returned");
        return;
    }
    if (sy_admin__tenant_filter(r, tenant) != 0)
        return;
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(r,
                          "SELECT id, ts_ms, actor_id, actor_role, tenant_id, action, object_type, "
                          "object_id, before, after FROM audit_log WHERE id < ?1 "
                          "AND (?2 = '' OR tenant_id = ?2) AND (?3 = '' OR object_type = ?3) "
                          "AND (?4 = '' OR object_id = ?4) ORDER BY id DESC LIMIT ?5",
                          &st) != 0)
        return;
    sqlite3_bind_int64(st, 1, (int64_t)cur);
    sqlite3_bind_text(st, 2, tenant, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, oid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, (int64_t)limit + 1);
    json_object *data = json_object_new_array();
    uint64_t n = 0;
    int64_t last = 0;
    bool more = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == limit) {
            more = true;
            break;
        }
        json_object *o = json_object_new_object();
        last = sqlite3_column_int64(st, 0);
        json_object_object_add(o, "object", json_object_new_string("audit_event"));
        json_object_object_add(o, "id", json_object_new_int64(last));
        json_object_object_add(o, "ts_ms", json_object_new_int64(sqlite3_column_int64(st, 1)));
        const char *names[] = {"actor_id", "actor_role",  "tenant_id",
                               "action",   "object_type", "object_id"};
        for (int i = 0; i < 6; i++) {
            const char *v = (const char *)sqlite3_column_text(st, 2 + i);
            json_object_object_add(o, names[i], v ? json_object_new_string(v) : NULL);
        }
        for (int i = 0; i < 2; i++) {
            const char *v = (const char *)sqlite3_column_text(st, 8 + i);
            json_object_object_add(o, i ? "after" : "before", v ? json_tokener_parse(v) : NULL);
        }
        json_object_array_add(data, o);
        n++;
    }
    sqlite3_finalize(st);
    char nc[32];
    snprintf(nc, sizeof(nc), "%lld", (long long)last);
    sy_admin__reply_list(r, data, more, nc);
}

const route_t sy_admin__audit_routes[] = {
    {"GET", "/audit", h_audit, K_OTHER, NULL, "AuditList", 0, "The audit log, newest first",
     "listAudit"},
    {.method = NULL},
};
