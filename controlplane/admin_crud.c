/* Rows of the admin resources: reading them as JSON, generic INSERT /
 * UPDATE / DELETE driven by the field tables, transactions with their audit
 * record, paginated lists, and the generic get / patch / delete handlers. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "log.h"

static bool is_bool_col(const char *n)
{
    return strcmp(n, "blocked") == 0 || strcmp(n, "disabled") == 0 || strcmp(n, "hard") == 0;
}

static bool is_json_col(const char *n)
{
    return strcmp(n, "allowed_models") == 0 || strcmp(n, "headers") == 0 ||
           strcmp(n, "capabilities") == 0;
}

json_object *sy_admin__new_double(double d)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, sizeof(buf), "%.17g", d);
    if (strspn(buf, "-0123456789") == strlen(buf))
        strcat(buf, ".0");
    return json_object_new_double_s(d, buf);
}

json_object *sy_admin__row_json(sqlite3_stmt *st, const char *type)
{
    json_object *o = json_object_new_object();
    if (type)
        json_object_object_add(o, "object", json_object_new_string(type));
    int n = sqlite3_column_count(st);
    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(st, i);
        int t = sqlite3_column_type(st, i);
        json_object *v = NULL;
        if (strcmp(name, "credential") == 0) {
            json_object_object_add(o, "has_api_key", json_object_new_boolean(t == SQLITE_BLOB));
            continue;
        }
        if (t == SQLITE_BLOB)
            continue;
        if (t == SQLITE_NULL) {
            v = NULL;
        } else if (is_bool_col(name)) {
            v = json_object_new_boolean(sqlite3_column_int(st, i) != 0);
        } else if (is_json_col(name)) {
            const char *s = (const char *)sqlite3_column_text(st, i);
            v = json_tokener_parse(s);
            if (v == NULL)
                v = json_object_new_string(s);
        } else if (t == SQLITE_INTEGER) {
            v = json_object_new_int64(sqlite3_column_int64(st, i));
        } else if (t == SQLITE_FLOAT) {
            v = sy_admin__new_double(sqlite3_column_double(st, i));
        } else {
            v = json_object_new_string_len((const char *)sqlite3_column_text(st, i),
                                           sqlite3_column_bytes(st, i));
        }
        json_object_object_add(o, name, v);
    }
    return o;
}

int sy_admin__prepare(rq_t *r, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK) {
        sy_admin__db_error(r);
        return -1;
    }
    return 0;
}

void sy_admin__bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Adds member: the rows of sql (one text bind, id) as objects of type. */
static int add_rows(rq_t *r, json_object *o, const char *member, const char *sql, const char *id,
                    const char *type)
{
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(r, sql, &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    json_object *arr = json_object_new_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_object_array_add(arr, sy_admin__row_json(st, type));
    sqlite3_finalize(st);
    json_object_object_add(o, member, arr);
    return 0;
}

/* Adds the nested parts of models (prices), users (tokens, by prefix only)
 * and routes (rules, targets). */
static int decorate(rq_t *r, const resource_t *res, json_object *o, const char *id)
{
    if (res == &sy_admin__res_model)
        return add_rows(
            r, o, "prices",
            "SELECT valid_from, input_per_mtok, output_per_mtok, cached_input_per_mtok, "
            "cache_write_per_mtok FROM model_prices WHERE model_id = ? ORDER BY valid_from",
            id, NULL);
    if (res == &sy_admin__res_user)
        return add_rows(r, o, "tokens",
                        "SELECT id, prefix, created_at, expires_at, revoked_at, last_used_at "
                        "FROM admin_tokens WHERE user_id = ? ORDER BY id",
                        id, "admin_token");
    if (res != &sy_admin__res_route)
        return 0;
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(
            r,
            "SELECT position, name, task, min_prompt_tokens, tenant_tier, latency_class, "
            "max_budget_remaining_fraction, strategy FROM route_rules WHERE route_id = ? "
            "ORDER BY position",
            &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    json_object *rules = json_object_new_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_object *rule = sy_admin__row_json(st, NULL);
        int pos = sqlite3_column_int(st, 0);
        json_object_object_del(rule, "position");
        sqlite3_stmt *ts = NULL;
        if (sy_admin__prepare(r,
                              "SELECT provider_id, model_id, weight FROM route_targets "
                              "WHERE route_id = ? AND rule_position = ? ORDER BY position",
                              &ts) != 0) {
            json_object_put(rule);
            json_object_put(rules);
            sqlite3_finalize(st);
            return -1;
        }
        sqlite3_bind_text(ts, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(ts, 2, pos);
        json_object *targets = json_object_new_array();
        while (sqlite3_step(ts) == SQLITE_ROW)
            json_object_array_add(targets, sy_admin__row_json(ts, NULL));
        sqlite3_finalize(ts);
        json_object_object_add(rule, "targets", targets);
        json_object_array_add(rules, rule);
    }
    sqlite3_finalize(st);
    json_object_object_add(o, "rules", rules);
    return 0;
}

int sy_admin__load(rq_t *r, const resource_t *res, const char *id, json_object **out, char *owner,
                   size_t owner_size)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT * FROM %s WHERE id = ?", res->table);
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(r, sql, &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return 0;
        sy_admin__db_error(r);
        return -1;
    }
    json_object *o = sy_admin__row_json(st, res->type);
    if (owner_size > 0) {
        owner[0] = '\0';
        if (res->owner_col) {
            json_object *ov = json_object_object_get(o, res->owner_col);
            if (ov && json_object_is_type(ov, json_type_string))
                snprintf(owner, owner_size, "%s", json_object_get_string(ov));
        }
    }
    sqlite3_finalize(st);
    if (decorate(r, res, o, id) != 0) {
        json_object_put(o);
        return -1;
    }
    *out = o;
    return 1;
}

int sy_admin__load_checked(rq_t *r, const resource_t *res, const char *id, bool write,
                           json_object **out, char owner[SY_ADMIN_MAX_ID + 1])
{
    json_object *o = NULL;
    int rc = sy_admin__load(r, res, id, &o, owner, SY_ADMIN_MAX_ID + 1);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        sy_admin__not_found(r, res->type, id);
        return -1;
    }
    if (sy_admin__check_access(r, res, owner[0] ? owner : NULL, write, id) != 0) {
        json_object_put(o);
        return -1;
    }
    *out = o;
    return 0;
}

static void bind_field(sqlite3_stmt *st, int i, const field_t *f, json_object *v)
{
    if (v == NULL || json_object_is_type(v, json_type_null)) {
        sqlite3_bind_null(st, i);
        return;
    }
    switch (f->type) {
    case T_STR:
    case T_ENUM:
        sqlite3_bind_text(st, i, json_object_get_string(v), json_object_get_string_len(v),
                          SQLITE_TRANSIENT);
        break;
    case T_INT:
        sqlite3_bind_int64(st, i, json_object_get_int64(v));
        break;
    case T_NUM:
        sqlite3_bind_double(st, i, json_object_get_double(v));
        break;
    case T_BOOL:
        sqlite3_bind_int(st, i, json_object_get_boolean(v) ? 1 : 0);
        break;
    default: {
        const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    }
    }
}

/* Answers a failed write: conflicts 409 naming the unique field, other
 * constraint failures 400. */
static void write_error(rq_t *r, const resource_t *res)
{
    int ext = sqlite3_extended_errcode(r->db);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        sy_admin__reply_error(r, 409, "invalid_request_error", res->unique, "conflict",
                              "a %s with this %s already exists", res->type, res->unique);
    else if ((ext & 0xff) == SQLITE_CONSTRAINT)
        sy_admin__reply_error(r, 400, "invalid_request_error", NULL, "constraint_failed",
                              "%s rejected: %s", res->type, sqlite3_errmsg(r->db));
    else
        sy_admin__db_error(r);
}

/* True when body sets f and f is a column of its own: not virtual and,
 * with owner_sep, not the owner column the INSERT writes separately. */
static bool body_column(const resource_t *res, const field_t *f, json_object *body, bool owner_sep)
{
    return !(f->flags & F_VIRT) && !(owner_sep && strcmp(f->name, res->owner_col) == 0) &&
           sy_admin__has_member(body, f->name);
}

/* Binds the body's column fields, then the extras, from parameter k on;
 * returns the next parameter index. */
static int bind_values(sqlite3_stmt *st, int k, const resource_t *res, json_object *body,
                       bool owner_sep, const extra_t *ex, size_t nex)
{
    for (size_t i = 0; i < res->nfields; i++) {
        const field_t *f = &res->fields[i];
        if (body_column(res, f, body, owner_sep))
            bind_field(st, k++, f, json_object_object_get(body, f->name));
    }
    for (size_t i = 0; i < nex; i++) {
        if (ex[i].blob)
            sqlite3_bind_blob(st, k++, ex[i].blob, ex[i].blen, SQLITE_TRANSIENT);
        else
            sy_admin__bind_text(st, k++, ex[i].text);
    }
    return k;
}

/* Runs a prepared INSERT/UPDATE of res and finalizes it; 0, or -1 after
 * answering the failure (write_error). */
static int step_write(rq_t *r, const resource_t *res, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        write_error(r, res);
        return -1;
    }
    return 0;
}

/* INSERT of id, the owner (when owner_col is a separate column), the
 * timestamps, the body's column fields and extras. */
static int insert_row(rq_t *r, const resource_t *res, const char *id, const char *owner,
                      json_object *body, const extra_t *ex, size_t nex)
{
    sy_buf_t cols, vals;
    sy_buf_init(&cols);
    sy_buf_init(&vals);
    sy_buf_appendf(&cols, "INSERT INTO %s (id, created_at, updated_at", res->table);
    sy_buf_append_str(&vals, ") VALUES (?, ?, ?");
    bool owner_sep = res->owner_col && strcmp(res->owner_col, "id") != 0;
    if (owner_sep) {
        sy_buf_appendf(&cols, ", %s", res->owner_col);
        sy_buf_append_str(&vals, ", ?");
    }
    for (size_t i = 0; i < res->nfields; i++) {
        if (!body_column(res, &res->fields[i], body, owner_sep))
            continue;
        sy_buf_appendf(&cols, ", %s", res->fields[i].name);
        sy_buf_append_str(&vals, ", ?");
    }
    for (size_t i = 0; i < nex; i++) {
        sy_buf_appendf(&cols, ", %s", ex[i].col);
        sy_buf_append_str(&vals, ", ?");
    }
    sy_buf_append_view(&cols, (sy_str_t){vals.data, vals.len});
    sy_buf_append_str(&cols, ")");
    sy_buf_free(&vals);
    sqlite3_stmt *st = NULL;
    int rc = sy_admin__prepare(r, cols.data, &st);
    sy_buf_free(&cols);
    if (rc != 0)
        return -1;
    int k = 1;
    int64_t now = sy_store_now();
    sqlite3_bind_text(st, k++, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, k++, now);
    sqlite3_bind_int64(st, k++, now);
    if (owner_sep)
        sy_admin__bind_text(st, k++, owner);
    bind_values(st, k, res, body, owner_sep, ex, nex);
    return step_write(r, res, st);
}

/* UPDATE of the body's column fields and extras (plus updated_at). */
static int update_row(rq_t *r, const resource_t *res, const char *id, json_object *body,
                      const extra_t *ex, size_t nex)
{
    sy_buf_t sql;
    sy_buf_init(&sql);
    sy_buf_appendf(&sql, "UPDATE %s SET updated_at = ?", res->table);
    for (size_t i = 0; i < res->nfields; i++)
        if (body_column(res, &res->fields[i], body, false))
            sy_buf_appendf(&sql, ", %s = ?", res->fields[i].name);
    for (size_t i = 0; i < nex; i++)
        sy_buf_appendf(&sql, ", %s = ?", ex[i].col);
    sy_buf_append_str(&sql, " WHERE id = ?");
    sqlite3_stmt *st = NULL;
    int rc = sy_admin__prepare(r, sql.data, &st);
    sy_buf_free(&sql);
    if (rc != 0)
        return -1;
    sqlite3_bind_int64(st, 1, sy_store_now());
    int k = bind_values(st, 2, res, body, false, ex, nex);
    sqlite3_bind_text(st, k, id, -1, SQLITE_TRANSIENT);
    return step_write(r, res, st);
}

int sy_admin__exec_id(rq_t *r, const char *sql, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(r, sql, &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sy_admin__db_error(r);
        return -1;
    }
    return 0;
}

bool sy_admin__exists(rq_t *r, const char *table, const char *id, const char *tenant)
{
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = ?%s", table,
             tenant ? " AND tenant_id = ?" : "");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (tenant)
        sqlite3_bind_text(st, 2, tenant, -1, SQLITE_TRANSIENT);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

int sy_admin__tx_begin(rq_t *r)
{
    if (sy_store_begin(r->a->store, NULL) != 0) {
        sy_admin__db_error(r);
        return -1;
    }
    return 0;
}

void sy_admin__tx_abort(rq_t *r)
{
    sy_store_rollback(r->a->store);
}

static char *dup_json(json_object *o)
{
    if (o == NULL)
        return NULL;
    return strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

int sy_admin__tx_commit(rq_t *r, const char *action, const resource_t *res, const char *id,
                        const char *tenant, json_object *before, json_object *after)
{
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(
            r,
            "INSERT INTO audit_log (ts_ms, actor_id, actor_role, tenant_id, action, "
            "object_type, object_id, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &st) != 0) {
        sy_admin__tx_abort(r);
        return -1;
    }
    char *b = dup_json(before), *a = dup_json(after);
    sqlite3_bind_int64(st, 1, sy_store_now_ms());
    sqlite3_bind_text(st, 2, r->actor.user_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, sy_admin__role_names[r->actor.role], -1, SQLITE_STATIC);
    sy_admin__bind_text(st, 4, tenant && tenant[0] ? tenant : NULL);
    sqlite3_bind_text(st, 5, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, res->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, id, -1, SQLITE_TRANSIENT);
    sy_admin__bind_text(st, 8, b);
    sy_admin__bind_text(st, 9, a);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    free(b);
    free(a);
    if (rc != SQLITE_DONE) {
        sy_admin__db_error(r);
        sy_admin__tx_abort(r);
        return -1;
    }
    if (sy_store_commit(r->a->store, NULL) != 0) {
        sy_admin__db_error(r);
        return -1;
    }
    sy_cluster_notify_change(r->a->cluster);
    return 0;
}

typedef struct page {
    int64_t limit;                    /* rows per page */
    char cursor[SY_ADMIN_MAX_ID + 1]; /* last id of the previous page, "" for the first */
} page_t;

static int read_page(rq_t *r, page_t *pg)
{
    char v[64];
    if (sy_admin__query_param(r, "limit", v, sizeof(v)) != 0)
        return -1;
    pg->limit = SY_ADMIN_DEFAULT_LIMIT;
    if (v[0]) {
        uint64_t n;
        if (sy_str_to_u64(sy_str_from_cstr(v), &n) != 0 || n < 1 || n > SY_ADMIN_MAX_LIMIT) {
            SY_ADMIN_BAD_FIELD(r, "limit", "invalid_value", "limit must be an integer from 1 to %d",
                               SY_ADMIN_MAX_LIMIT);
            return -1;
        }
        pg->limit = (int64_t)n;
    }
    if (sy_admin__query_param(r, "cursor", pg->cursor, sizeof(pg->cursor)) != 0)
        return -1;
    if (pg->cursor[0] && !sy_admin__valid_id_chars(pg->cursor, strlen(pg->cursor))) {
        SY_ADMIN_BAD_FIELD(r, "cursor", "invalid_value", "cursor is not one this API returned");
        return -1;
    }
    return 0;
}

void sy_admin__list_rows(rq_t *r, const resource_t *res, const char *where, const char *b1,
                         const char *b2)
{
    page_t pg;
    if (read_page(r, &pg) != 0)
        return;
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT * FROM %s WHERE (%s) AND id > ? ORDER BY id LIMIT ?",
             res->table, where ? where : "1");
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(r, sql, &st) != 0)
        return;
    int k = 1;
    if (b1)
        sqlite3_bind_text(st, k++, b1, -1, SQLITE_TRANSIENT);
    if (b2)
        sqlite3_bind_text(st, k++, b2, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, k++, pg.cursor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, k++, pg.limit + 1);
    json_object *data = json_object_new_array();
    int64_t n = 0;
    bool more = false;
    int rc;
    char last[SY_ADMIN_MAX_ID + 1] = "";
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == pg.limit) {
            more = true;
            break;
        }
        json_object *o = sy_admin__row_json(st, res->type);
        snprintf(last, sizeof(last), "%s", (const char *)sqlite3_column_text(st, 0));
        json_object_array_add(data, o);
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_object_put(data);
        sy_admin__db_error(r);
        return;
    }
    for (size_t i = 0; i < json_object_array_length(data); i++) {
        json_object *o = json_object_array_get_idx(data, i);
        if (decorate(r, res, o, sy_admin__str_member(o, "id")) != 0) {
            json_object_put(data);
            return;
        }
    }
    sy_admin__reply_list(r, data, more, last);
}

/* The list filter for tenant roles: their tenant's objects (and platform
 * objects when the resource shares those). */
static void list_scoped(rq_t *r, const resource_t *res)
{
    char tenant[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__query_param(r, "tenant_id", tenant, sizeof(tenant)) != 0)
        return;
    if (tenant[0] && res->owner_col == NULL) {
        SY_ADMIN_BAD_FIELD(r, "tenant_id", "invalid_value",
                           "%ss belong to no tenant: no tenant_id filter", res->type);
        return;
    }
    if (sy_admin__is_platform(r)) {
        if (tenant[0])
            sy_admin__list_rows(r, res, "tenant_id = ?", tenant, NULL);
        else
            sy_admin__list_rows(r, res, NULL, NULL, NULL);
        return;
    }
    if (res->policy & P_PLATFORM_ONLY) {
        sy_admin__forbidden(r);
        return;
    }
    if (tenant[0] && strcmp(tenant, r->actor.tenant_id) != 0) {
        sy_admin__not_found(r, "tenant", tenant);
        return;
    }
    if (res->owner_col == NULL)
        sy_admin__list_rows(r, res, NULL, NULL, NULL);
    else if (res->policy & P_GLOBAL_READ)
        sy_admin__list_rows(r, res, "tenant_id = ? OR tenant_id IS NULL", r->actor.tenant_id, NULL);
    else
        sy_admin__list_rows(r, res, "tenant_id = ?", r->actor.tenant_id, NULL);
}

void sy_admin__delete_obj_with(rq_t *r, const resource_t *res, int (*pre)(rq_t *, const char *id))
{
    json_object *before;
    char owner[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__load_checked(r, res, r->p[0], true, &before, owner) != 0)
        return;
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", res->table);
    if (sy_admin__tx_begin(r) != 0 || (pre && pre(r, r->p[0]) != 0) ||
        sy_admin__exec_id(r, sql, r->p[0]) != 0) {
        sy_admin__tx_abort(r);
        json_object_put(before);
        return;
    }
    if (sy_admin__tx_commit(r, "delete", res, r->p[0], owner, before, NULL) == 0) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "object", json_object_new_string(res->type));
        json_object_object_add(o, "id", json_object_new_string(r->p[0]));
        json_object_object_add(o, "deleted", json_object_new_boolean(true));
        sy_admin__reply_json(r, 200, o);
    }
    json_object_put(before);
}

void sy_admin__patch_obj(rq_t *r, const resource_t *res, const extra_t *ex, size_t nex,
                         int (*more)(rq_t *, json_object *body, const char *id))
{
    json_object *before;
    char owner[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__load_checked(r, res, r->p[0], true, &before, owner) != 0)
        return;
    if (sy_admin__validate_obj(r, res, r->body, false, NULL) == 0 && sy_admin__tx_begin(r) == 0) {
        if (update_row(r, res, r->p[0], r->body, ex, nex) != 0 ||
            (more && more(r, r->body, r->p[0]) != 0))
            sy_admin__tx_abort(r);
        else
            sy_admin__finish_update(r, res, "update", owner, before, 200);
    }
    json_object_put(before);
}

/* Reloads object id, audits the change and commits, then answers status
 * with the object (plus extra_name: extra, shown in this answer only). */
static void finish(rq_t *r, const resource_t *res, const char *id, const char *action,
                   const char *owner, json_object *before, int status, const char *extra_name,
                   const char *extra)
{
    json_object *after = NULL;
    if (sy_admin__load(r, res, id, &after, NULL, 0) != 1) {
        sy_admin__tx_abort(r);
        return;
    }
    if (sy_admin__tx_commit(r, action, res, id, owner, before, after) == 0) {
        if (extra_name)
            json_object_object_add(after, extra_name, json_object_new_string(extra));
        sy_admin__reply_json(r, status, json_object_get(after));
    }
    json_object_put(after);
}

void sy_admin__finish_create(rq_t *r, const resource_t *res, const char *id, const char *owner,
                             const char *secret_name, const char *secret)
{
    finish(r, res, id, "create", owner, NULL, 201, secret_name, secret);
}

void sy_admin__finish_update(rq_t *r, const resource_t *res, const char *action, const char *owner,
                             json_object *before, int status)
{
    finish(r, res, r->p[0], action, owner, before, status, NULL, NULL);
}

int sy_admin__insert_tx(rq_t *r, const resource_t *res, const char *id, const char *owner,
                        const extra_t *ex, size_t nex)
{
    if (sy_admin__tx_begin(r) != 0)
        return -1;
    if (insert_row(r, res, id, owner, r->body, ex, nex) != 0) {
        sy_admin__tx_abort(r);
        return -1;
    }
    return 0;
}

int sy_admin__new_secret(rq_t *r, const char *prefix, char *out, size_t size)
{
    if (sy_store_new_secret(prefix, out, size) != 0) {
        sy_admin__reply_error(r, 500, "api_error", NULL, "internal_error",
                              "no randomness available");
        return -1;
    }
    return 0;
}

void sy_admin__reply_list(rq_t *r, json_object *data, bool more, const char *next_cursor)
{
    json_object *out = json_object_new_object();
    json_object_object_add(out, "object", json_object_new_string("list"));
    json_object_object_add(out, "data", data);
    json_object_object_add(out, "has_more", json_object_new_boolean(more));
    json_object_object_add(out, "next_cursor", more ? json_object_new_string(next_cursor) : NULL);
    sy_admin__reply_json(r, 200, out);
}

/* The handlers of routes that need nothing beyond the generic operation on
 * their resource. */

void sy_admin__h_list(rq_t *r)
{
    list_scoped(r, r->route->res);
}

void sy_admin__h_get(rq_t *r)
{
    json_object *o;
    char owner[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__load_checked(r, r->route->res, r->p[0], false, &o, owner) == 0)
        sy_admin__reply_json(r, 200, o);
}

void sy_admin__h_patch(rq_t *r)
{
    sy_admin__patch_obj(r, r->route->res, NULL, 0, NULL);
}

void sy_admin__h_delete(rq_t *r)
{
    sy_admin__delete_obj_with(r, r->route->res, NULL);
}
