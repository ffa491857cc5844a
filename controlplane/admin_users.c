/* Admin users, their tokens, and the bootstrap of the first platform
 * admin. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Creates a token for user_id; the clear token goes to out. */
static int add_token(sqlite3 *db, const char *user_id, const char *token)
{
    char id[64], prefix[16];
    unsigned char hash[32];
    sy_store_new_id("tok", id, sizeof(id));
    sy_store_hash_secret(token, strlen(token), hash);
    snprintf(prefix, sizeof(prefix), "%.10s", token);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO admin_tokens (id, user_id, sha256, prefix, created_at) "
                           "VALUES (?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return SY_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, hash, 32, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, prefix, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, sy_store_now());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : (rc == SQLITE_CONSTRAINT ? SY_EEXIST : SY_EIO);
}

static void h_users_create(rq_t *r)
{
    if (sy_admin__validate_obj(r, &sy_admin__res_user, r->body, true, NULL) != 0)
        return;
    const char *role = sy_admin__str_member(r->body, "role");
    const char *tenant = sy_admin__str_member(r->body, "tenant_id");
    bool platform_role = strcmp(role, "platform_admin") == 0;
    if (!sy_admin__is_platform(r) && tenant == NULL && !platform_role)
        tenant = r->actor.tenant_id;
    if (platform_role && tenant != NULL) {
        SY_ADMIN_BAD_FIELD(r, "tenant_id", "invalid_value",
                           "a platform_admin belongs to no tenant");
        return;
    }
    if (!platform_role && tenant == NULL) {
        SY_ADMIN_BAD_FIELD(r, "tenant_id", "missing_field", "tenant_id is required for role %s",
                           role);
        return;
    }
    if (platform_role && !sy_admin__is_platform(r)) {
        sy_admin__forbidden(r);
        return;
    }
    if (tenant != NULL) {
        if (sy_admin__check_access(r, &sy_admin__res_user, tenant, true, tenant) != 0)
            return;
        if (!sy_admin__exists(r, "tenants", tenant, NULL)) {
            SY_ADMIN_BAD_FIELD(r, "tenant_id", "invalid_value", "no tenant %s", tenant);
            return;
        }
    }
    char id[64], token[80], owner[SY_ADMIN_MAX_ID + 1] = "";
    if (tenant)
        snprintf(owner, sizeof(owner), "%s", tenant);
    sy_store_new_id("user", id, sizeof(id));
    if (sy_admin__new_secret(r, "sya-", token, sizeof(token)) != 0)
        return;
    if (sy_admin__insert_tx(r, &sy_admin__res_user, id, owner[0] ? owner : NULL, NULL, 0) == 0) {
        if (add_token(r->db, id, token) != 0) {
            sy_admin__db_error(r);
            sy_admin__tx_abort(r);
        } else {
            sy_admin__finish_create(r, &sy_admin__res_user, id, owner, "token", token);
        }
    }
    explicit_bzero(token, sizeof(token));
}

/* True when user id is a platform admin and no other enabled one exists:
 * disabling or deleting it would lock every operator out. (PATCH checks
 * after its update, so the user's own disabled flag is not looked at.) */
static bool last_platform_admin(rq_t *r, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT coalesce((SELECT role = 'platform_admin' FROM admin_users "
                           "WHERE id = ?1), 0) AND NOT EXISTS (SELECT 1 FROM "
                           "admin_users WHERE role = 'platform_admin' AND disabled = 0 AND "
                           "id != ?1)",
                           -1, &st, NULL) != SQLITE_OK)
        return true; /* when in doubt, keep the last admin */
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    bool last = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
    sqlite3_finalize(st);
    return last;
}

static void refuse_last_admin(rq_t *r)
{
    sy_admin__reply_error(r, 409, "invalid_request_error", NULL, "last_platform_admin",
                          "this is the last enabled platform admin; create another one first");
}

static int user_delete_pre(rq_t *r, const char *id)
{
    if (last_platform_admin(r, id)) {
        refuse_last_admin(r);
        return -1;
    }
    return 0;
}

static void h_user_delete(rq_t *r)
{
    sy_admin__delete_obj_with(r, &sy_admin__res_user, user_delete_pre);
}

static int user_patch_more(rq_t *r, json_object *body, const char *id)
{
    bool disabled = false;
    if (sy_json_get_bool(body, "disabled", &disabled) == 0 && disabled &&
        last_platform_admin(r, id)) {
        refuse_last_admin(r);
        return -1;
    }
    return 0;
}

static void h_user_patch(rq_t *r)
{
    sy_admin__patch_obj(r, &sy_admin__res_user, NULL, 0, user_patch_more);
}

/* POST /users/{id}/tokens: a new token for the user, shown once; with
 * revoke_existing the user's other tokens stop working (rotation). */
static void h_user_token_create(rq_t *r)
{
    json_object *user;
    char owner[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__load_checked(r, &sy_admin__res_user, r->p[0], true, &user, owner) != 0)
        return;
    json_object_put(user);
    if (sy_admin__validate_obj(r, &sy_admin__res_token, r->body, true, NULL) != 0)
        return;
    bool revoke = false;
    sy_json_get_bool(r->body, "revoke_existing", &revoke);
    char token[80];
    if (sy_admin__new_secret(r, "sya-", token, sizeof(token)) != 0)
        return;
    if (sy_admin__tx_begin(r) != 0)
        return;
    sqlite3_stmt *st = NULL;
    int64_t revoked = 0;
    if (revoke) {
        if (sy_admin__prepare(
                r, "UPDATE admin_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0",
                &st) != 0) {
            sy_admin__tx_abort(r);
            return;
        }
        sqlite3_bind_int64(st, 1, sy_store_now());
        sqlite3_bind_text(st, 2, r->p[0], -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            sy_admin__db_error(r);
            sy_admin__tx_abort(r);
            return;
        }
        revoked = sqlite3_changes(r->db);
        sqlite3_finalize(st);
    }
    if (add_token(r->db, r->p[0], token) != 0 ||
        sy_admin__prepare(
            r,
            "SELECT id, user_id, prefix, created_at, expires_at, revoked_at, last_used_at "
            "FROM admin_tokens WHERE user_id = ? ORDER BY id DESC LIMIT 1",
            &st) != 0) {
        if (st == NULL)
            sy_admin__db_error(r);
        sy_admin__tx_abort(r);
        explicit_bzero(token, sizeof(token));
        return;
    }
    sqlite3_bind_text(st, 1, r->p[0], -1, SQLITE_TRANSIENT);
    json_object *after =
        sqlite3_step(st) == SQLITE_ROW ? sy_admin__row_json(st, "admin_token") : NULL;
    sqlite3_finalize(st);
    if (after == NULL) {
        sy_admin__db_error(r);
        sy_admin__tx_abort(r);
        explicit_bzero(token, sizeof(token));
        return;
    }
    json_object_object_add(after, "revoked_others", json_object_new_int64(revoked));
    char tid[SY_ADMIN_MAX_ID + 1];
    snprintf(tid, sizeof(tid), "%s", sy_admin__str_member(after, "id"));
    if (sy_admin__tx_commit(r, "create", &sy_admin__res_token, tid, owner, NULL, after) == 0) {
        json_object_object_add(after, "token", json_object_new_string(token));
        sy_admin__reply_json(r, 201, json_object_get(after));
    }
    json_object_put(after);
    explicit_bzero(token, sizeof(token));
}

/* The platform admin a bootstrap token is for: the user "admin" when it
 * exists (a new env token for it), else a new one (named "admin", or
 * "admin-<id>" when a tenant user holds that name). Inside the caller's
 * transaction. Returns 0 or SY_EIO. */
static int bootstrap_user(sqlite3 *db, char *uid, size_t size)
{
    sqlite3_stmt *st = NULL;
    uid[0] = '\0';
    if (sqlite3_prepare_v2(db,
                           "SELECT id FROM admin_users WHERE name = 'admin' AND "
                           "role = 'platform_admin'",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(uid, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (uid[0] != '\0')
        return 0;
    sy_store_new_id("user", uid, size);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO admin_users (id, name, role, created_at) VALUES "
                           "(?, CASE WHEN EXISTS (SELECT 1 FROM admin_users WHERE name = "
                           "'admin') THEN 'admin-' || ?1 ELSE 'admin' END, "
                           "'platform_admin', ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return SY_EIO;
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, sy_store_now());
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SY_EIO;
    sqlite3_finalize(st);
    return rc;
}

/* The audit record of a bootstrap token (the actor is the system). */
static int audit_bootstrap(sqlite3 *db, const char *uid)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO audit_log (ts_ms, actor_id, actor_role, action, "
                           "object_type, object_id, after) VALUES (?, 'system', 'system', "
                           "'create', 'admin_token', ?, '{\"bootstrap\":true}')",
                           -1, &st, NULL) != SQLITE_OK)
        return SY_EIO;
    sqlite3_bind_int64(st, 1, sy_store_now_ms());
    sqlite3_bind_text(st, 2, uid, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SY_EIO;
    sqlite3_finalize(st);
    return rc;
}

int sy_admin_bootstrap(sy_store_t *store, const char *env_token, char *token_out, size_t token_size,
                       bool *created, sy_err_t *err)
{
    sqlite3 *db = store->db;
    sqlite3_stmt *st = NULL;
    bool have_admin = false;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM admin_users WHERE role = 'platform_admin' LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return sy_err_set(err, SY_EIO, "bootstrap: %s", sqlite3_errmsg(db));
    have_admin = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (env_token != NULL && strlen(env_token) < 16)
        return sy_err_set(err, SY_EINVAL, "SWITCHYARD_ADMIN_TOKEN must be at least 16 characters");
    if (env_token == NULL && have_admin) {
        *created = false;
        return 0;
    }
    char token[80];
    if (env_token != NULL) {
        unsigned char hash[32];
        sy_store_hash_secret(env_token, strlen(env_token), hash);
        if (sqlite3_prepare_v2(db, "SELECT 1 FROM admin_tokens WHERE sha256 = ?", -1, &st, NULL) !=
            SQLITE_OK)
            return sy_err_set(err, SY_EIO, "bootstrap: %s", sqlite3_errmsg(db));
        sqlite3_bind_blob(st, 1, hash, 32, SQLITE_TRANSIENT);
        bool known = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        *created = false;
        if (known)
            return 0;
        snprintf(token, sizeof(token), "%s", env_token);
    } else if (sy_store_new_secret("sya-", token, sizeof(token)) != 0) {
        return sy_err_set(err, SY_EIO, "bootstrap: no randomness");
    }
    if (sy_store_begin(store, err) != 0)
        return SY_EIO;
    char uid[64];
    int rc = bootstrap_user(db, uid, sizeof(uid));
    if (rc == 0)
        rc = add_token(db, uid, token);
    if (rc == 0)
        rc = audit_bootstrap(db, uid);
    if (rc != 0) {
        sy_err_set(err, rc, "bootstrap: %s", sqlite3_errmsg(db));
        sy_store_rollback(store);
        explicit_bzero(token, sizeof(token));
        return rc;
    }
    if (sy_store_commit(store, err) != 0) {
        explicit_bzero(token, sizeof(token));
        return SY_EIO;
    }
    *created = env_token == NULL;
    if (env_token == NULL)
        snprintf(token_out, token_size, "%s", token);
    explicit_bzero(token, sizeof(token));
    return 0;
}

const route_t sy_admin__users_routes[] = {
    {"GET", "/users", sy_admin__h_list, K_LIST, &sy_admin__res_user, NULL, 0, "List admin users",
     "listUsers"},
    {"POST", "/users", h_users_create, K_CREATE, &sy_admin__res_user, NULL, A_BODY,
     "Create an admin user; its token is returned once", "createUser"},
    {"GET", "/users/{id}", sy_admin__h_get, K_GET, &sy_admin__res_user, NULL, 0,
     "Get an admin user", "getUser"},
    {"PATCH", "/users/{id}", h_user_patch, K_UPDATE, &sy_admin__res_user, NULL, A_BODY,
     "Update an admin user (rename, disable)", "updateUser"},
    {"POST", "/users/{id}/tokens", h_user_token_create, K_OTHER, &sy_admin__res_token, "AdminToken",
     A_BODY, "Issue a new admin token for a user (shown once), optionally revoking the others",
     "createUserToken"},
    {"DELETE", "/users/{id}", h_user_delete, K_DELETE, &sy_admin__res_user, NULL, 0,
     "Delete an admin user and its tokens", "deleteUser"},
    {.method = NULL},
};
