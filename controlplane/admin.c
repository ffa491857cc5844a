/* Admin HTTP API: see admin.h. This file is the front door: replies,
 * roles and access, authentication, the route table and the dispatcher;
 * each concern's handlers live in admin_<concern>.c (admin_internal.h).
 *
 * Everything runs on the loop thread against the store's one connection.
 * Reads are bounded (pages of at most 1000 rows, indexed lookups), so no
 * request holds the loop for long. A mutation is one transaction that also
 * writes its audit record; the cluster is told after the commit. */
#include "admin_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "webfiles.h"

const char *const sy_admin__role_names[] = {"platform_admin", "tenant_admin", "tenant_viewer",
                                            NULL};

void sy_admin__reply_error(rq_t *r, int status, const char *type, const char *param,
                           const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sy_buf_t *b = &r->res->body;
    sy_buf_reset(b);
    r->res->status = status;
    sy_buf_append_str(b, "{\"error\":{\"message\":");
    sy_buf_append_json_string(b, msg, strlen(msg));
    sy_buf_appendf(b, ",\"type\":\"%s\",\"param\":", type);
    if (param)
        sy_buf_append_json_string(b, param, strlen(param));
    else
        sy_buf_append_str(b, "null");
    sy_buf_appendf(b, ",\"code\":\"%s\"}}", code);
}

void sy_admin__not_found(rq_t *r, const char *what, const char *id)
{
    sy_admin__reply_error(r, 404, "not_found_error", NULL, "not_found", "no such %s: %s", what, id);
}

void sy_admin__bad_reference(rq_t *r, const char *field, const char *what, const char *id)
{
    if (r->actor.role == ROLE_PLATFORM)
        sy_admin__reply_error(r, 400, "invalid_request_error", field, "invalid_value", "no %s %s",
                              what, id);
    else
        sy_admin__reply_error(r, 404, "not_found_error", field, "not_found", "no such %s: %s", what,
                              id);
}

void sy_admin__forbidden(rq_t *r)
{
    sy_admin__reply_error(r, 403, "permission_error", NULL, "forbidden",
                          "your role does not allow this operation");
}

void sy_admin__db_error(rq_t *r)
{
    sy_log(SY_LOG_ERROR, "admin_db", "%s", sqlite3_errmsg(r->db));
    sy_admin__reply_error(r, 500, "api_error", NULL, "internal_error", "database error");
}

void sy_admin__reply_json(rq_t *r, int status, json_object *o)
{
    size_t len;
    const char *s = sy_json_to_string(o, &len);
    sy_buf_reset(&r->res->body);
    sy_buf_append(&r->res->body, s, len);
    r->res->status = status;
    json_object_put(o);
}

bool sy_admin__has_member(json_object *o, const char *k)
{
    return o != NULL && json_object_object_get_ex(o, k, NULL);
}

bool sy_admin__is_platform(const rq_t *r)
{
    return r->actor.role == ROLE_PLATFORM;
}

int sy_admin__tenant_filter(rq_t *r, char tenant[SY_ADMIN_MAX_ID + 1])
{
    if (sy_admin__is_platform(r))
        return 0;
    if (tenant[0] && strcmp(tenant, r->actor.tenant_id) != 0) {
        sy_admin__not_found(r, "tenant", tenant);
        return -1;
    }
    snprintf(tenant, SY_ADMIN_MAX_ID + 1, "%s", r->actor.tenant_id);
    return 0;
}

int sy_admin__check_access(rq_t *r, const resource_t *res, const char *owner, bool write,
                           const char *id)
{
    if (sy_admin__is_platform(r))
        return 0;
    if (res->policy & P_PLATFORM_ONLY) {
        sy_admin__forbidden(r);
        return -1;
    }
    bool mine = owner != NULL && strcmp(owner, r->actor.tenant_id) == 0;
    bool readable =
        (mine && (res->policy & P_TENANT_READ)) || (owner == NULL && (res->policy & P_GLOBAL_READ));
    if (!readable) {
        sy_admin__not_found(r, res->type, id);
        return -1;
    }
    if (!write)
        return 0;
    if (r->actor.role != ROLE_TENANT_ADMIN || !mine || !(res->policy & P_TENANT_WRITE)) {
        sy_admin__forbidden(r);
        return -1;
    }
    return 0;
}

/* Parses the request body into r->body; answers 400 on failure. */
static int parse_body(rq_t *r)
{
    const char *why = NULL;
    sy_str_t b = r->req->body;
    if (b.len == 0) {
        SY_ADMIN_BAD_FIELD(r, NULL, "invalid_body", "a JSON request body is required");
        return -1;
    }
    if (sy_json_parse(r->a->parser, b.ptr, b.len, &r->body, &why) != 0) {
        SY_ADMIN_BAD_FIELD(r, NULL, "invalid_json", "request body: %s", why ? why : "invalid JSON");
        return -1;
    }
    if (!json_object_is_type(r->body, json_type_object)) {
        /* json-c gives NULL for a literal null: every body here is an object. */
        json_object_put(r->body);
        r->body = NULL;
        SY_ADMIN_BAD_FIELD(r, NULL, "invalid_body", "the request body must be a JSON object");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The route table: the dispatcher and the OpenAPI document both read it. */

static const route_t *const route_tables[] = {
    sy_admin__tenants_routes, sy_admin__keys_routes,   sy_admin__providers_routes,
    sy_admin__models_routes,  sy_admin__routes_routes, sy_admin__budgets_routes,
    sy_admin__users_routes,   sy_admin__usage_routes,  sy_admin__audit_routes,
    sy_admin__meta_routes,
};

#define MAX_ROUTES 64 /* bound of sy_admin_route_at's path cache */

const route_t *sy_admin__route(size_t i)
{
    for (size_t t = 0; t < SY_ARRAY_LEN(route_tables); t++)
        for (const route_t *rt = route_tables[t]; rt->method; rt++)
            if (i-- == 0)
                return rt;
    return NULL;
}

bool sy_admin_route_at(size_t i, const char **method, const char **path)
{
    static char full[MAX_ROUTES][128];
    const route_t *rt = sy_admin__route(i);
    if (rt == NULL || i >= MAX_ROUTES)
        return false;
    if (full[i][0] == '\0')
        snprintf(full[i], sizeof(full[i]), SY_ADMIN_PREFIX "%s", rt->path);
    *method = rt->method;
    *path = full[i];
    return true;
}

/* Matches path (under PREFIX) against a template, capturing parameters. */
static bool match(const char *tpl, sy_str_t path, char params[2][SY_ADMIN_MAX_ID + 1],
                  bool *bad_param)
{
    const char *t = tpl;
    size_t i = 0;
    int np = 0;
    while (*t) {
        if (*t == '{') {
            const char *close = strchr(t, '}');
            size_t start = i;
            while (i < path.len && path.ptr[i] != '/')
                i++;
            size_t len = i - start;
            if (len == 0)
                return false;
            if (np < 2) {
                if (!sy_admin__valid_id_chars(path.ptr + start, len)) {
                    *bad_param = true;
                    params[np][0] = '\0';
                } else {
                    memcpy(params[np], path.ptr + start, len);
                    params[np][len] = '\0';
                }
                np++;
            }
            t = close + 1;
            continue;
        }
        if (i >= path.len || path.ptr[i] != *t)
            return false;
        i++;
        t++;
    }
    return i == path.len;
}

static int authenticate(rq_t *r)
{
    sy_str_t a = r->req->authorization;
    if (a.len < 8 || !sy_str_case_eq_cstr((sy_str_t){a.ptr, 7}, "bearer ")) {
        sy_admin__reply_error(r, 401, "authentication_error", NULL, "missing_token",
                              "send an admin token as Authorization: Bearer <token>");
        return -1;
    }
    sy_str_t tok = sy_str_trim((sy_str_t){a.ptr + 7, a.len - 7});
    unsigned char hash[32];
    sy_store_hash_secret(tok.ptr, tok.len, hash);
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(r,
                          "SELECT u.id, u.role, u.tenant_id FROM admin_tokens t JOIN admin_users u "
                          "ON u.id = t.user_id WHERE t.sha256 = ? AND t.revoked_at = 0 AND "
                          "(t.expires_at = 0 OR t.expires_at > ?) AND u.disabled = 0",
                          &st) != 0)
        return -1;
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, sy_store_now());
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        sy_admin__reply_error(r, 401, "authentication_error", NULL, "invalid_token",
                              "the admin token is not valid");
        return -1;
    }
    snprintf(r->actor.user_id, sizeof(r->actor.user_id), "%s",
             (const char *)sqlite3_column_text(st, 0));
    const char *role = (const char *)sqlite3_column_text(st, 1);
    r->actor.role = strcmp(role, "platform_admin") == 0 ? ROLE_PLATFORM
                    : strcmp(role, "tenant_admin") == 0 ? ROLE_TENANT_ADMIN
                                                        : ROLE_TENANT_VIEWER;
    const char *t = (const char *)sqlite3_column_text(st, 2);
    snprintf(r->actor.tenant_id, sizeof(r->actor.tenant_id), "%s", t ? t : "");
    sqlite3_finalize(st);
    /* Record use at most once a minute per token, so reads stay reads. */
    if (sqlite3_prepare_v2(r->db,
                           "UPDATE admin_tokens SET last_used_at = ?1 WHERE sha256 = ?2 AND "
                           "last_used_at < ?1 - 60",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, sy_store_now());
        sqlite3_bind_blob(st, 2, hash, 32, SQLITE_TRANSIENT);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    return 0;
}

void sy_admin_handle(void *ctx, const sy_httpd_request_t *req, sy_httpd_response_t *res)
{
    rq_t r;
    memset(&r, 0, sizeof(r));
    r.a = ctx;
    r.db = r.a->store->db;
    r.req = req;
    r.res = res;
    sy_str_t path = req->path;
    /* The admin single-page app: everything under /admin/ but the API. */
    if (strcmp(req->method, "GET") == 0 && sy_str_has_prefix(path, "/admin") &&
        !sy_str_has_prefix(path, SY_ADMIN_PREFIX) && (path.len == 6 || path.ptr[6] == '/')) {
        if (sy_webfiles_serve(r.a->web_dir, path, res) != 0)
            sy_admin__reply_error(&r, 404, "invalid_request_error", NULL, "not_found",
                                  "no such admin-web file");
        return;
    }
    if (path.len > 1 && path.ptr[path.len - 1] == '/')
        path.len--;
    if (!sy_str_has_prefix(path, SY_ADMIN_PREFIX "/")) {
        sy_admin__reply_error(&r, 404, "invalid_request_error", NULL, "unknown_route",
                              "no such endpoint; the admin API lives under " SY_ADMIN_PREFIX "/");
        return;
    }
    sy_str_t sub = {path.ptr + strlen(SY_ADMIN_PREFIX), path.len - strlen(SY_ADMIN_PREFIX)};
    const route_t *found = NULL;
    bool path_known = false, bad_param = false;
    const route_t *rt;
    for (size_t i = 0; (rt = sy_admin__route(i)) != NULL; i++) {
        char params[2][SY_ADMIN_MAX_ID + 1];
        bool bad = false;
        if (!match(rt->path, sub, params, &bad))
            continue;
        path_known = true;
        if (strcmp(rt->method, req->method) != 0)
            continue;
        found = rt;
        r.route = rt;
        bad_param = bad;
        memcpy(r.p, params, sizeof(params));
        break;
    }
    if (found == NULL) {
        if (path_known)
            sy_admin__reply_error(&r, 405, "invalid_request_error", NULL, "method_not_allowed",
                                  "method %s is not allowed here", req->method);
        else
            sy_admin__reply_error(&r, 404, "invalid_request_error", NULL, "unknown_route",
                                  "no such endpoint: %.*s", (int)(path.len > 200 ? 200 : path.len),
                                  path.ptr);
        return;
    }
    if (!(found->flags & A_NONE) && authenticate(&r) != 0)
        return;
    if (bad_param) {
        sy_admin__reply_error(&r, 404, "not_found_error", NULL, "not_found", "no such object");
        return;
    }
    if ((found->flags & A_BODY) && parse_body(&r) != 0)
        return;
    found->fn(&r);
    if (r.body)
        json_object_put(r.body);
    if (res->body.len == 0) {
        /* Every handler answers; an empty answer is a bug, not a success. */
        sy_log(SY_LOG_ERROR, "admin_no_answer", "%s %s produced no answer", found->method,
               found->path);
        sy_admin__reply_error(&r, 500, "api_error", NULL, "internal_error", "internal error");
    }
    /* A handler that failed half-way never leaves a transaction open. */
    sy_store_rollback(r.a->store);
}

int sy_admin_new(const sy_admin_options_t *opts, sy_admin_t **out, sy_err_t *err)
{
    sy_admin_t *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->parser = sy_json_parser_new()) == NULL) {
        free(a);
        return sy_err_set(err, SY_ENOMEM, "out of memory");
    }
    a->store = opts->store;
    a->master_key = opts->master_key;
    a->cluster = opts->cluster;
    a->web_dir = opts->web_dir;
    *out = a;
    return 0;
}

void sy_admin_free(sy_admin_t *a)
{
    if (a == NULL)
        return;
    sy_json_parser_free(a->parser);
    free(a);
}
