/* Tenants and their teams. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void h_tenants_list(rq_t *r)
{
    if (sy_admin__is_platform(r))
        sy_admin__list_rows(r, &sy_admin__res_tenant, NULL, NULL, NULL);
    else
        sy_admin__list_rows(r, &sy_admin__res_tenant, "id = ?", r->actor.tenant_id, NULL);
}

static void h_tenants_create(rq_t *r)
{
    if (!sy_admin__is_platform(r)) {
        sy_admin__forbidden(r);
        return;
    }
    if (sy_admin__validate_obj(r, &sy_admin__res_tenant, r->body, true, NULL) != 0)
        return;
    char id[64];
    sy_store_new_id("ten", id, sizeof(id));
    if (sy_admin__insert_tx(r, &sy_admin__res_tenant, id, NULL, NULL, 0) != 0)
        return;
    sy_admin__finish_create(r, &sy_admin__res_tenant, id, id, NULL, NULL);
}

int sy_admin__parent_tenant(rq_t *r, bool write, const resource_t *child)
{
    json_object *t;
    char owner[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__load_checked(r, &sy_admin__res_tenant, r->p[0], false, &t, owner) != 0)
        return -1;
    json_object_put(t);
    if (write && !sy_admin__is_platform(r) &&
        (r->actor.role != ROLE_TENANT_ADMIN || !(child->policy & P_TENANT_WRITE))) {
        sy_admin__forbidden(r);
        return -1;
    }
    return 0;
}

static void h_teams_list(rq_t *r)
{
    if (sy_admin__parent_tenant(r, false, &sy_admin__res_team) == 0)
        sy_admin__list_rows(r, &sy_admin__res_team, "tenant_id = ?", r->p[0], NULL);
}

static void h_teams_create(rq_t *r)
{
    if (sy_admin__parent_tenant(r, true, &sy_admin__res_team) != 0 ||
        sy_admin__validate_obj(r, &sy_admin__res_team, r->body, true, NULL) != 0)
        return;
    char id[64];
    sy_store_new_id("team", id, sizeof(id));
    if (sy_admin__insert_tx(r, &sy_admin__res_team, id, r->p[0], NULL, 0) != 0)
        return;
    sy_admin__finish_create(r, &sy_admin__res_team, id, r->p[0], NULL, NULL);
}

/* A team with live keys is not deleted (the keys would vanish with it);
 * revoked keys and the team's budgets go with the team. */
static int team_delete_pre(rq_t *r, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(r, "SELECT count(*) FROM api_keys WHERE team_id = ? AND revoked_at = 0",
                          &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int64_t live = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (live != 0) {
        sy_admin__reply_error(
            r, 409, "invalid_request_error", NULL, "team_has_keys",
            "the team still has %lld live API keys; revoke them or move them to another "
            "team first",
            (long long)live);
        return -1;
    }
    return sy_admin__exec_id(r, "DELETE FROM budgets WHERE scope = 'team' AND scope_id = ?", id);
}

static void h_team_delete(rq_t *r)
{
    sy_admin__delete_obj_with(r, &sy_admin__res_team, team_delete_pre);
}

const route_t sy_admin__tenants_routes[] = {
    {"GET", "/tenants", h_tenants_list, K_LIST, &sy_admin__res_tenant, NULL, 0, "List tenants",
     "listTenants"},
    {"POST", "/tenants", h_tenants_create, K_CREATE, &sy_admin__res_tenant, NULL, A_BODY,
     "Create a tenant", "createTenant"},
    {"GET", "/tenants/{id}", sy_admin__h_get, K_GET, &sy_admin__res_tenant, NULL, 0, "Get a tenant",
     "getTenant"},
    {"PATCH", "/tenants/{id}", sy_admin__h_patch, K_UPDATE, &sy_admin__res_tenant, NULL, A_BODY,
     "Update a tenant", "updateTenant"},
    {"DELETE", "/tenants/{id}", sy_admin__h_delete, K_DELETE, &sy_admin__res_tenant, NULL, 0,
     "Delete a tenant with everything it owns", "deleteTenant"},
    {"GET", "/tenants/{id}/teams", h_teams_list, K_LIST, &sy_admin__res_team, NULL, 0,
     "List a tenant's teams", "listTeams"},
    {"POST", "/tenants/{id}/teams", h_teams_create, K_CREATE, &sy_admin__res_team, NULL, A_BODY,
     "Create a team", "createTeam"},
    {"GET", "/teams/{id}", sy_admin__h_get, K_GET, &sy_admin__res_team, NULL, 0, "Get a team",
     "getTeam"},
    {"PATCH", "/teams/{id}", sy_admin__h_patch, K_UPDATE, &sy_admin__res_team, NULL, A_BODY,
     "Update a team", "updateTeam"},
    {"DELETE", "/teams/{id}", h_team_delete, K_DELETE, &sy_admin__res_team, NULL, 0,
     "Delete a team", "deleteTeam"},
    {.method = NULL},
};
