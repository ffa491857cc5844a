/* OpenAPI 3.1, generated from the route table and the field tables. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *jstr(const char *s)
{
    return json_object_new_string(s);
}

static json_object *ref(const char *name)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "#/components/schemas/%s", name);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "$ref", jstr(buf));
    return o;
}

static const char *sub_schema(const char *field)
{
    if (strcmp(field, "prices") == 0)
        return "Price";
    if (strcmp(field, "rules") == 0)
        return "RouteRule";
    return "RouteTarget";
}

static json_object *field_schema(const field_t *f)
{
    json_object *s = json_object_new_object();
    const char *type = "string";
    switch (f->type) {
    case T_STR:
        json_object_object_add(
            s, "maxLength", json_object_new_int64(f->max > 0 ? (int64_t)f->max : SY_ADMIN_MAX_STR));
        break;
    case T_INT:
        type = "integer";
        json_object_object_add(s, "minimum", json_object_new_int(0));
        if (f->max > 0)
            json_object_object_add(s, "maximum", json_object_new_int64((int64_t)f->max));
        break;
    case T_NUM:
        type = "number";
        json_object_object_add(s, "minimum", json_object_new_int(0));
        if (f->max > 0)
            json_object_object_add(s, "maximum", json_object_new_double(f->max));
        break;
    case T_BOOL:
        type = "boolean";
        break;
    case T_ENUM: {
        json_object *e = json_object_new_array();
        for (const char *const *v = f->enums; *v; v++)
            json_object_array_add(e, jstr(*v));
        json_object_object_add(s, "enum", e);
        break;
    }
    case T_STRARR: {
        type = "array";
        json_object *it = json_object_new_object();
        json_object_object_add(it, "type", jstr("string"));
        json_object_object_add(s, "items", it);
        break;
    }
    case T_STRMAP: {
        type = "object";
        json_object *it = json_object_new_object();
        json_object_object_add(it, "type", jstr("string"));
        json_object_object_add(s, "additionalProperties", it);
        break;
    }
    case T_ARRAY:
        type = "array";
        json_object_object_add(s, "items", ref(sub_schema(f->name)));
        break;
    }
    if (f->flags & F_NULL) {
        json_object *t = json_object_new_array();
        json_object_array_add(t, jstr(type));
        json_object_array_add(t, jstr("null"));
        json_object_object_add(s, "type", t);
    } else {
        json_object_object_add(s, "type", jstr(type));
    }
    if (f->doc)
        json_object_object_add(s, "description", jstr(f->doc));
    if (f->flags & F_WO)
        json_object_object_add(s, "writeOnly", json_object_new_boolean(true));
    return s;
}

/* mode 0: create body, 1: update body, 2: the object as returned. */
static json_object *resource_schema(const resource_t *res, int mode)
{
    json_object *s = json_object_new_object(), *props = json_object_new_object();
    json_object *req = json_object_new_array();
    json_object_object_add(s, "type", jstr("object"));
    if (mode == 2) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "const", jstr(res->type));
        json_object_object_add(props, "object", o);
        json_object *id = json_object_new_object();
        json_object_object_add(id, "type", jstr("string"));
        json_object_object_add(props, "id", id);
        json_object_array_add(req, jstr("id"));
        const char *ints[] = {"created_at", "updated_at", "revoked_at"};
        for (int i = 0; i < 3; i++) {
            json_object *t = json_object_new_object();
            json_object_object_add(t, "type", jstr("integer"));
            json_object_object_add(t, "description", jstr("unix seconds"));
            json_object_object_add(props, ints[i], t);
        }
        if (res->owner_col && strcmp(res->owner_col, "id") != 0 &&
            sy_admin__find_field(res, res->owner_col) == NULL) {
            json_object *t = json_object_new_object();
            json_object_object_add(t, "type", jstr("string"));
            json_object_object_add(props, res->owner_col, t);
        }
    } else {
        json_object_object_add(s, "additionalProperties", json_object_new_boolean(false));
    }
    for (size_t i = 0; i < res->nfields; i++) {
        const field_t *f = &res->fields[i];
        if ((mode == 1 && !(f->flags & F_UPD)) || (mode == 2 && (f->flags & F_WO)))
            continue;
        json_object_object_add(props, f->name, field_schema(f));
        if (mode == 0 && (f->flags & F_REQ))
            json_object_array_add(req, jstr(f->name));
    }
    if (res == &sy_admin__res_provider && mode == 2) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "type", jstr("boolean"));
        json_object_object_add(props, "has_api_key", t);
    }
    if (res == &sy_admin__res_key && mode == 2) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "type", jstr("string"));
        json_object_object_add(t, "description", jstr("display prefix of the secret"));
        json_object_object_add(props, "prefix", t);
        t = json_object_new_object();
        json_object_object_add(t, "type", jstr("string"));
        json_object_object_add(t, "description", jstr("the key itself, only in the create answer"));
        json_object_object_add(props, "secret", t);
    }
    if (res == &sy_admin__res_user && mode == 2) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "type", jstr("string"));
        json_object_object_add(t, "description", jstr("admin token, only in the create answer"));
        json_object_object_add(props, "token", t);
    }
    json_object_object_add(s, "properties", props);
    if (json_object_array_length(req) > 0)
        json_object_object_add(s, "required", req);
    else
        json_object_put(req);
    return s;
}

static json_object *simple_object(const char *desc)
{
    json_object *s = json_object_new_object();
    json_object_object_add(s, "type", jstr("object"));
    json_object_object_add(s, "description", jstr(desc));
    return s;
}

static json_object *list_schema(const char *item)
{
    json_object *s = json_object_new_object(), *p = json_object_new_object();
    json_object_object_add(s, "type", jstr("object"));
    json_object *data = json_object_new_object();
    json_object_object_add(data, "type", jstr("array"));
    json_object_object_add(data, "items", ref(item));
    json_object_object_add(p, "data", data);
    json_object *more = json_object_new_object();
    json_object_object_add(more, "type", jstr("boolean"));
    json_object_object_add(p, "has_more", more);
    json_object *nc = json_object_new_object(), *t = json_object_new_array();
    json_object_array_add(t, jstr("string"));
    json_object_array_add(t, jstr("null"));
    json_object_object_add(nc, "type", t);
    json_object_object_add(nc, "description", jstr("pass as ?cursor= for the next page"));
    json_object_object_add(p, "next_cursor", nc);
    json_object_object_add(s, "properties", p);
    return s;
}

static json_object *param(const char *name, const char *in, bool required, const char *type,
                          const char *desc)
{
    json_object *p = json_object_new_object(), *s = json_object_new_object();
    json_object_object_add(p, "name", jstr(name));
    json_object_object_add(p, "in", jstr(in));
    json_object_object_add(p, "required", json_object_new_boolean(required));
    json_object_object_add(s, "type", jstr(type));
    json_object_object_add(p, "schema", s);
    if (desc)
        json_object_object_add(p, "description", jstr(desc));
    return p;
}

static json_object *response(const char *desc, const char *schema)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "description", jstr(desc));
    json_object *c = json_object_new_object(), *mt = json_object_new_object();
    json_object_object_add(mt, "schema", ref(schema));
    json_object_object_add(c, "application/json", mt);
    json_object_object_add(r, "content", c);
    return r;
}

/* The operation's path and query parameters. */
static json_object *parameters(const route_t *rt)
{
    json_object *params = json_object_new_array();
    for (const char *p = strchr(rt->path, '{'); p; p = strchr(p + 1, '{')) {
        char name[32];
        const char *e = strchr(p, '}');
        snprintf(name, sizeof(name), "%.*s", (int)(e - p - 1), p + 1);
        json_object_array_add(params, param(name, "path", true, "string", NULL));
    }
    if (rt->kind == K_LIST) {
        json_object_array_add(params,
                              param("limit", "query", false, "integer", "1 to 1000, default 100"));
        json_object_array_add(
            params, param("cursor", "query", false, "string", "next_cursor of the previous page"));
        if (strcmp(rt->op, "listKeys") == 0)
            json_object_array_add(params, param("prefix", "query", false, "string",
                                                "the key's display prefix, as logged"));
        if (strchr(rt->path + 1, '/') == NULL && rt->res->owner_col &&
            strcmp(rt->res->owner_col, "tenant_id") == 0)
            json_object_array_add(params, param("tenant_id", "query", false, "string", NULL));
    }
    if (strcmp(rt->op, "getUsage") == 0) {
        const char *q[] = {"tenant", "team", "key",      "model",
                           "from",   "to",   "group_by", "granularity"};
        const char *d[] = {
            NULL,
            NULL,
            NULL,
            NULL,
            "unix seconds or RFC 3339 UTC, inclusive",
            "unix seconds or RFC 3339 UTC, exclusive",
            "comma list of tenant, team, key, route, provider, model, bucket",
            "minute, hour or day: read one rollup (default: days, hours and edge minutes)"};
        for (int i = 0; i < 8; i++)
            json_object_array_add(params, param(q[i], "query", false, "string", d[i]));
    }
    if (strcmp(rt->op, "listAudit") == 0) {
        const char *q[] = {"limit", "cursor", "tenant_id", "object_type", "object_id"};
        for (int i = 0; i < 5; i++)
            json_object_array_add(params,
                                  param(q[i], "query", false, i ? "string" : "integer", NULL));
    }
    return params;
}

static json_object *operation(const route_t *rt)
{
    json_object *op = json_object_new_object();
    json_object_object_add(op, "operationId", jstr(rt->op));
    json_object_object_add(op, "summary", jstr(rt->summary));
    json_object *tags = json_object_new_array();
    json_object_array_add(tags, jstr(rt->res && rt->kind != K_OTHER ? rt->res->schema : "Meta"));
    json_object_object_add(op, "tags", tags);
    if (rt->flags & A_NONE)
        json_object_object_add(op, "security", json_object_new_array());
    json_object *params = parameters(rt);
    if (json_object_array_length(params) > 0)
        json_object_object_add(op, "parameters", params);
    else
        json_object_put(params);
    if (rt->flags & A_BODY) {
        char name[64];
        if (rt->kind == K_CREATE)
            snprintf(name, sizeof(name), "%sCreate", rt->res->schema);
        else if (rt->kind == K_UPDATE)
            snprintf(name, sizeof(name), "%sUpdate", rt->res->schema);
        else
            snprintf(name, sizeof(name), "%s", rt->res->schema);
        json_object *rb = json_object_new_object(), *c = json_object_new_object(),
                    *mt = json_object_new_object();
        json_object_object_add(mt, "schema", ref(name));
        json_object_object_add(c, "application/json", mt);
        json_object_object_add(rb, "required", json_object_new_boolean(true));
        json_object_object_add(rb, "content", c);
        json_object_object_add(op, "requestBody", rb);
    }
    json_object *resp = json_object_new_object();
    char name[64];
    switch (rt->kind) {
    case K_LIST:
        snprintf(name, sizeof(name), "%sList", rt->res->schema);
        json_object_object_add(resp, "200", response("a page", name));
        break;
    case K_CREATE:
        json_object_object_add(resp, "201", response("created", rt->res->schema));
        break;
    case K_GET:
    case K_UPDATE:
        json_object_object_add(resp, "200", response("the object", rt->res->schema));
        break;
    case K_DELETE:
        json_object_object_add(
            resp, "200",
            response(rt->res == &sy_admin__res_key ? "the revoked key" : "deleted",
                     rt->res == &sy_admin__res_key ? "ApiKey" : "Deleted"));
        break;
    case K_OTHER:
        json_object_object_add(resp, rt->flags & A_BODY ? "201" : "200", response("ok", rt->out));
        break;
    }
    if (rt->flags & A_BODY)
        json_object_object_add(resp, "400",
                               response("invalid request; param names the field", "Error"));
    if (!(rt->flags & A_NONE)) {
        json_object_object_add(resp, "401", response("missing or invalid admin token", "Error"));
        json_object_object_add(resp, "403", response("the role does not allow this", "Error"));
        json_object_object_add(resp, "404", response("no such object (or not visible)", "Error"));
    }
    if (rt->kind == K_CREATE || rt->kind == K_UPDATE)
        json_object_object_add(resp, "409", response("conflicts with an existing object", "Error"));
    json_object_object_add(op, "responses", resp);
    return op;
}

static void lower(const char *s, char *out, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    out[i] = '\0';
}

/* One path item per route template, one operation per method. */
static json_object *build_paths(void)
{
    json_object *paths = json_object_new_object();
    const route_t *rt;
    for (size_t i = 0; (rt = sy_admin__route(i)) != NULL; i++) {
        char full[160], m[16];
        snprintf(full, sizeof(full), SY_ADMIN_PREFIX "%s", rt->path);
        json_object *item = json_object_object_get(paths, full);
        if (item == NULL) {
            item = json_object_new_object();
            json_object_object_add(paths, full, item);
        }
        lower(rt->method, m, sizeof(m));
        json_object_object_add(item, m, operation(rt));
    }
    return paths;
}

/* Every resource's schemas (as returned, Create, Update, List), the error
 * shape and the documented-only schemas of K_OTHER routes. */
static json_object *build_schemas(void)
{
    json_object *schemas = json_object_new_object();
    for (size_t i = 0; sy_admin__resources[i]; i++) {
        const resource_t *res = sy_admin__resources[i];
        char name[64];
        if (res->table == NULL) {
            json_object_object_add(schemas, res->schema, resource_schema(res, 0));
            continue;
        }
        json_object_object_add(schemas, res->schema, resource_schema(res, 2));
        snprintf(name, sizeof(name), "%sCreate", res->schema);
        json_object_object_add(schemas, name, resource_schema(res, 0));
        snprintf(name, sizeof(name), "%sUpdate", res->schema);
        json_object_object_add(schemas, name, resource_schema(res, 1));
        snprintf(name, sizeof(name), "%sList", res->schema);
        json_object_object_add(schemas, name, list_schema(res->schema));
    }
    json_object *err = json_object_new_object(), *ep = json_object_new_object(),
                *inner = json_object_new_object(), *ip = json_object_new_object();
    const char *members[] = {"message", "type", "param", "code"};
    for (int i = 0; i < 4; i++) {
        json_object *t = json_object_new_object();
        if (i == 2) {
            json_object *ty = json_object_new_array();
            json_object_array_add(ty, jstr("string"));
            json_object_array_add(ty, jstr("null"));
            json_object_object_add(t, "type", ty);
            json_object_object_add(t, "description", jstr("the offending field, if any"));
        } else {
            json_object_object_add(t, "type", jstr("string"));
        }
        json_object_object_add(ip, members[i], t);
    }
    json_object_object_add(inner, "type", jstr("object"));
    json_object_object_add(inner, "properties", ip);
    json_object_object_add(ep, "error", inner);
    json_object_object_add(err, "type", jstr("object"));
    json_object_object_add(err, "properties", ep);
    json_object_object_add(schemas, "Error", err);
    json_object_object_add(schemas, "Deleted", simple_object("{object, id, deleted: true}"));
    json_object_object_add(
        schemas, "Usage",
        simple_object("{object:\"usage\", from, to, granularity, totals, data[]}: "
                      "requests, errors, prompt_tokens, completion_tokens, "
                      "cached_tokens, cache_write_tokens, estimated_requests, "
                      "total_tokens, cost_usd per group"));
    json_object_object_add(
        schemas, "AuditList",
        simple_object("a page of audit events: id, ts_ms, actor_id, actor_role, "
                      "tenant_id, action, object_type, object_id, before, after"));
    json_object_object_add(schemas, "Stats", simple_object("cluster counters and object counts"));
    json_object_object_add(schemas, "Me", simple_object("{user_id, role, tenant_id}"));
    json_object_object_add(schemas, "AdminToken",
                           simple_object("{object:\"admin_token\", id, user_id, prefix, "
                                         "created_at, revoked_others, token}: the token is shown "
                                         "only here"));
    json_object_object_add(schemas, "OpenAPI", simple_object("this document"));
    json_object_object_add(schemas, "Health", simple_object("{status: \"ok\"}"));
    return schemas;
}

int sy_admin_openapi(sy_buf_t *out)
{
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "openapi", jstr("3.1.0"));
    json_object *info = json_object_new_object();
    json_object_object_add(info, "title", jstr("Switchyard admin API"));
    json_object_object_add(info, "version", jstr("1"));
    json_object_object_add(info, "description",
                           jstr("Tenants, keys, providers, models, routes, budgets, usage and "
                                "audit of a Switchyard gateway. Errors are "
                                "{\"error\":{\"message\",\"type\",\"param\",\"code\"}}."));
    json_object_object_add(doc, "info", info);
    json_object *sec = json_object_new_array(), *req = json_object_new_object();
    json_object_object_add(req, "adminToken", json_object_new_array());
    json_object_array_add(sec, req);
    json_object_object_add(doc, "security", sec);
    json_object_object_add(doc, "paths", build_paths());
    json_object *comp = json_object_new_object();
    json_object_object_add(comp, "schemas", build_schemas());
    json_object *ss = json_object_new_object(), *bearer = json_object_new_object();
    json_object_object_add(bearer, "type", jstr("http"));
    json_object_object_add(bearer, "scheme", jstr("bearer"));
    json_object_object_add(ss, "adminToken", bearer);
    json_object_object_add(comp, "securitySchemes", ss);
    json_object_object_add(doc, "components", comp);
    size_t len;
    const char *s = sy_json_to_string(doc, &len);
    int rc = sy_buf_append(out, s, len);
    json_object_put(doc);
    return rc;
}
