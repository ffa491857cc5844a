/* Budgets of a tenant, team or key. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tenant a budget's scope object belongs to; answers 400 when unknown
 * (or invisible to the actor, so nothing about other tenants leaks). */
static int budget_tenant(rq_t *r, json_object *body, char out[SY_ADMIN_MAX_ID + 1])
{
    const char *scope = sy_admin__str_member(body, "scope"),
               *sid = sy_admin__str_member(body, "scope_id");
    const char *sql = strcmp(scope, "tenant") == 0 ? "SELECT id FROM tenants WHERE id = ?"
                      : strcmp(scope, "team") == 0 ? "SELECT tenant_id FROM teams WHERE id = ?"
                                                   : "SELECT tenant_id FROM api_keys WHERE id = ?";
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(r, sql, &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_TRANSIENT);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found)
        snprintf(out, SY_ADMIN_MAX_ID + 1, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!found || (!sy_admin__is_platform(r) && strcmp(out, r->actor.tenant_id) != 0)) {
        sy_admin__bad_reference(r, "scope_id", scope, sid);
        return -1;
    }
    return 0;
}

static void h_budgets_create(rq_t *r)
{
    char tenant[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__validate_obj(r, &sy_admin__res_budget, r->body, true, NULL) != 0 ||
        budget_tenant(r, r->body, tenant) != 0 ||
        sy_admin__check_access(r, &sy_admin__res_budget, tenant, true, tenant) != 0)
        return;
    char id[64];
    sy_store_new_id("bud", id, sizeof(id));
    if (sy_admin__insert_tx(r, &sy_admin__res_budget, id, tenant, NULL, 0) != 0)
        return;
    sy_admin__finish_create(r, &sy_admin__res_budget, id, tenant, NULL, NULL);
}

const route_t sy_admin__budgets_routes[] = {
    {"GET", "/budgets", sy_admin__h_list, K_LIST, &sy_admin__res_budget, NULL, 0, "List budgets",
     "listBudgets"},
    {"POST", "/budgets", h_budgets_create, K_CREATE, &sy_admin__res_budget, NULL, A_BODY,
     "Create a budget", "createBudget"},
    {"GET", "/budgets/{id}", sy_admin__h_get, K_GET, &sy_admin__res_budget, NULL, 0, "Get a budget",
     "getBudget"},
    {"PATCH", "/budgets/{id}", sy_admin__h_patch, K_UPDATE, &sy_admin__res_budget, NULL, A_BODY,
     "Update a budget", "updateBudget"},
    {"DELETE", "/budgets/{id}", sy_admin__h_delete, K_DELETE, &sy_admin__res_budget, NULL, 0,
     "Delete a budget", "deleteBudget"},
    {.method = NULL},
};
