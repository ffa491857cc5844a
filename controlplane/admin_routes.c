/* Routes: an alias with ordered rules, each with weighted targets. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 64   /* rules per route */
#define MAX_TARGETS 64 /* targets per rule */

/* Checks rules (an array, as validate_obj left it): counts, each rule and
 * target against its fields, and that every model and provider named
 * exists. 0, or -1 after answering 400 naming the offending path. */
static int check_rules(rq_t *r, json_object *rules)
{
    size_t n = json_object_array_length(rules);
    if (n == 0 || n > MAX_RULES) {
        SY_ADMIN_BAD_FIELD(r, "rules", "invalid_value", "rules must hold 1 to %d rules", MAX_RULES);
        return -1;
    }
    char path[96];
    for (size_t i = 0; i < n; i++) {
        json_object *rule = json_object_array_get_idx(rules, i);
        snprintf(path, sizeof(path), "rules[%zu]", i);
        if (sy_admin__validate_obj(r, &sy_admin__res_rule, rule, true, path) != 0)
            return -1;
        json_object *targets = json_object_object_get(rule, "targets");
        size_t nt = json_object_array_length(targets);
        if (nt == 0 || nt > MAX_TARGETS) {
            snprintf(path, sizeof(path), "rules[%zu].targets", i);
            SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "%s must hold 1 to %d targets", path,
                               MAX_TARGETS);
            return -1;
        }
        for (size_t j = 0; j < nt; j++) {
            json_object *t = json_object_array_get_idx(targets, j);
            snprintf(path, sizeof(path), "rules[%zu].targets[%zu]", i, j);
            if (sy_admin__validate_obj(r, &sy_admin__res_target, t, true, path) != 0)
                return -1;
            const char *model = sy_admin__str_member(t, "model_id");
            if (!sy_admin__exists(r, "models", model, NULL)) {
                snprintf(path, sizeof(path), "rules[%zu].targets[%zu].model_id", i, j);
                SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "no model %s", model);
                return -1;
            }
            const char *prov = sy_admin__str_member(t, "provider_id");
            if (prov && !sy_admin__exists(r, "providers", prov, NULL)) {
                snprintf(path, sizeof(path), "rules[%zu].targets[%zu].provider_id", i, j);
                SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "no provider %s", prov);
                return -1;
            }
        }
    }
    return 0;
}

/* Validates and writes body.rules for route id (replacing old rules). */
static int write_rules(rq_t *r, json_object *body, const char *id)
{
    json_object *rules = json_object_object_get(body, "rules");
    if (rules == NULL)
        return 0;
    if (check_rules(r, rules) != 0 ||
        sy_admin__exec_id(r, "DELETE FROM route_rules WHERE route_id = ?", id) != 0)
        return -1;
    size_t n = json_object_array_length(rules);
    sqlite3_stmt *rs = NULL, *ts = NULL;
    if (sy_admin__prepare(
            r,
            "INSERT INTO route_rules (route_id, position, name, task, min_prompt_tokens, "
            "tenant_tier, latency_class, max_budget_remaining_fraction, strategy) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &rs) != 0)
        return -1;
    if (sy_admin__prepare(
            r,
            "INSERT INTO route_targets (route_id, rule_position, position, provider_id, "
            "model_id, weight) VALUES (?, ?, ?, "
            "coalesce(?, (SELECT provider_id FROM models WHERE id = ?5)), ?5, ?)",
            &ts) != 0) {
        sqlite3_finalize(rs);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_object *rule = json_object_array_get_idx(rules, i);
        const char *s;
        int64_t x = 0;
        double d = 0;
        sqlite3_reset(rs);
        sqlite3_bind_text(rs, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(rs, 2, (int)i);
        sqlite3_bind_text(rs, 3, (s = sy_admin__str_member(rule, "name")) ? s : "", -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_text(rs, 4, (s = sy_admin__str_member(rule, "task")) ? s : "", -1,
                          SQLITE_TRANSIENT);
        sy_json_get_int64(rule, "min_prompt_tokens", &x);
        sqlite3_bind_int64(rs, 5, x);
        sqlite3_bind_text(rs, 6, (s = sy_admin__str_member(rule, "tenant_tier")) ? s : "", -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_text(rs, 7, (s = sy_admin__str_member(rule, "latency_class")) ? s : "", -1,
                          SQLITE_TRANSIENT);
        sy_json_get_double(rule, "max_budget_remaining_fraction", &d);
        sqlite3_bind_double(rs, 8, d);
        sqlite3_bind_text(rs, 9, (s = sy_admin__str_member(rule, "strategy")) ? s : "priority", -1,
                          SQLITE_TRANSIENT);
        if (sqlite3_step(rs) != SQLITE_DONE) {
            rc = -1;
            break;
        }
        json_object *targets = json_object_object_get(rule, "targets");
        for (size_t j = 0; j < json_object_array_length(targets); j++) {
            json_object *t = json_object_array_get_idx(targets, j);
            int64_t w = 1;
            sy_json_get_int64(t, "weight", &w);
            sqlite3_reset(ts);
            sqlite3_bind_text(ts, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(ts, 2, (int)i);
            sqlite3_bind_int(ts, 3, (int)j);
            sy_admin__bind_text(ts, 4, sy_admin__str_member(t, "provider_id"));
            sqlite3_bind_text(ts, 5, sy_admin__str_member(t, "model_id"), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ts, 6, w);
            if (sqlite3_step(ts) != SQLITE_DONE) {
                rc = -1;
                break;
            }
        }
    }
    if (rc != 0)
        sy_admin__db_error(r);
    sqlite3_finalize(rs);
    sqlite3_finalize(ts);
    return rc;
}

static void h_routes_create(rq_t *r)
{
    if (sy_admin__validate_obj(r, &sy_admin__res_route, r->body, true, NULL) != 0)
        return;
    const char *tenant = sy_admin__str_member(r->body, "tenant_id");
    if (!sy_admin__is_platform(r)) {
        /* Tenant routes default to the actor's tenant; platform routes are
         * for platform admins only. */
        if (sy_admin__has_member(r->body, "tenant_id") && tenant == NULL) {
            sy_admin__forbidden(r);
            return;
        }
        if (tenant == NULL)
            tenant = r->actor.tenant_id;
        if (sy_admin__check_access(r, &sy_admin__res_route, tenant, true, tenant) != 0)
            return;
    } else if (tenant && !sy_admin__exists(r, "tenants", tenant, NULL)) {
        SY_ADMIN_BAD_FIELD(r, "tenant_id", "invalid_value", "no tenant %s", tenant);
        return;
    }
    char id[64], owner[SY_ADMIN_MAX_ID + 1] = "";
    if (tenant)
        snprintf(owner, sizeof(owner), "%s", tenant);
    sy_store_new_id("route", id, sizeof(id));
    if (sy_admin__insert_tx(r, &sy_admin__res_route, id, owner[0] ? owner : NULL, NULL, 0) != 0)
        return;
    if (write_rules(r, r->body, id) != 0)
        sy_admin__tx_abort(r);
    else
        sy_admin__finish_create(r, &sy_admin__res_route, id, owner, NULL, NULL);
}

static void h_route_patch(rq_t *r)
{
    sy_admin__patch_obj(r, &sy_admin__res_route, NULL, 0, write_rules);
}

const route_t sy_admin__routes_routes[] = {
    {"GET", "/routes", sy_admin__h_list, K_LIST, &sy_admin__res_route, NULL, 0, "List routes",
     "listRoutes"},
    {"POST", "/routes", h_routes_create, K_CREATE, &sy_admin__res_route, NULL, A_BODY,
     "Create a route", "createRoute"},
    {"GET", "/routes/{id}", sy_admin__h_get, K_GET, &sy_admin__res_route, NULL, 0, "Get a route",
     "getRoute"},
    {"PATCH", "/routes/{id}", h_route_patch, K_UPDATE, &sy_admin__res_route, NULL, A_BODY,
     "Update a route", "updateRoute"},
    {"DELETE", "/routes/{id}", sy_admin__h_delete, K_DELETE, &sy_admin__res_route, NULL, 0,
     "Delete a route", "deleteRoute"},
    {.method = NULL},
};
