/* API keys of a tenant: created with a secret shown once, revoked (never
 * deleted, so usage and audit keep their key). */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_team(rq_t *r, json_object *body, const char *tenant)
{
    const char *team = sy_admin__str_member(body, "team_id");
    if (team != NULL && !sy_admin__exists(r, "teams", team, tenant)) {
        sy_admin__bad_reference(r, "team_id", "team in this tenant", team);
        return -1;
    }
    return 0;
}

/* ?prefix= finds a key from the display prefix that logs show. */
static void h_keys_list(rq_t *r)
{
    char prefix[32];
    if (sy_admin__parent_tenant(r, false, &sy_admin__res_key) != 0 ||
        sy_admin__query_param(r, "prefix", prefix, sizeof(prefix)) != 0)
        return;
    if (prefix[0])
        sy_admin__list_rows(r, &sy_admin__res_key, "tenant_id = ? AND prefix = ?", r->p[0], prefix);
    else
        sy_admin__list_rows(r, &sy_admin__res_key, "tenant_id = ?", r->p[0], NULL);
}

static void h_keys_create(rq_t *r)
{
    if (sy_admin__parent_tenant(r, true, &sy_admin__res_key) != 0 ||
        sy_admin__validate_obj(r, &sy_admin__res_key, r->body, true, NULL) != 0 ||
        check_team(r, r->body, r->p[0]) != 0)
        return;
    char id[64], secret[80], prefix[16];
    unsigned char hash[32];
    sy_store_new_id("key", id, sizeof(id));
    if (sy_admin__new_secret(r, "sk-sy-", secret, sizeof(secret)) != 0)
        return;
    sy_store_hash_secret(secret, strlen(secret), hash);
    snprintf(prefix, sizeof(prefix), "%.12s", secret);
    extra_t ex[] = {{"sha256", hash, 32, NULL}, {"prefix", NULL, 0, prefix}};
    if (sy_admin__insert_tx(r, &sy_admin__res_key, id, r->p[0], ex, 2) != 0)
        return;
    sy_admin__finish_create(r, &sy_admin__res_key, id, r->p[0], "secret", secret);
    /* The secret lived on the stack only; wipe it. */
    explicit_bzero(secret, sizeof(secret));
}

static int key_patch_more(rq_t *r, json_object *body, const char *id)
{
    SY_UNUSED(id);
    json_object *k;
    char owner[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__load(r, &sy_admin__res_key, r->p[0], &k, owner, sizeof(owner)) != 1)
        return -1;
    json_object_put(k);
    return check_team(r, body, owner);
}

static void h_key_patch(rq_t *r)
{
    sy_admin__patch_obj(r, &sy_admin__res_key, NULL, 0, key_patch_more);
}

/* DELETE revokes: the row stays (for usage and audit), revoked_at is set. */
/* Sets revoked_at on key id (once: a revoked key keeps its first time). */
static int set_revoked(rq_t *r, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(r,
                          "UPDATE api_keys SET revoked_at = ?, updated_at = ? WHERE id = ? AND "
                          "revoked_at = 0",
                          &st) != 0)
        return -1;
    int64_t now = sy_store_now();
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sy_admin__db_error(r);
        return -1;
    }
    return 0;
}

static void h_key_revoke(rq_t *r)
{
    json_object *before;
    char owner[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__load_checked(r, &sy_admin__res_key, r->p[0], true, &before, owner) != 0)
        return;
    if (sy_admin__tx_begin(r) == 0) {
        if (set_revoked(r, r->p[0]) != 0)
            sy_admin__tx_abort(r);
        else
            sy_admin__finish_update(r, &sy_admin__res_key, "revoke", owner, before, 200);
    }
    json_object_put(before);
}

const route_t sy_admin__keys_routes[] = {
    {"GET", "/tenants/{id}/keys", h_keys_list, K_LIST, &sy_admin__res_key, NULL, 0,
     "List a tenant's API keys", "listKeys"},
    {"POST", "/tenants/{id}/keys", h_keys_create, K_CREATE, &sy_admin__res_key, NULL, A_BODY,
     "Create an API key; the secret is returned once", "createKey"},
    {"GET", "/keys/{id}", sy_admin__h_get, K_GET, &sy_admin__res_key, NULL, 0, "Get an API key",
     "getKey"},
    {"PATCH", "/keys/{id}", h_key_patch, K_UPDATE, &sy_admin__res_key, NULL, A_BODY,
     "Update an API key", "updateKey"},
    {"DELETE", "/keys/{id}", h_key_revoke, K_DELETE, &sy_admin__res_key, NULL, 0,
     "Revoke an API key", "revokeKey"},
    {.method = NULL},
};
