/* The admin resource model: every resource's fields, its ownership and
 * access policy, and the validation of request bodies against them. */
#include "admin_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ARRAY 1000 /* elements of a string array field */

static const char *const provider_kinds[] = {"openai", "anthropic", "gemini", "openai-compatible",
                                             NULL};
static const char *const strategies[] = {"priority",    "weighted",   "lowest-latency",
                                         "lowest-cost", "least-busy", NULL};
static const char *const scopes[] = {"tenant", "team", "key", NULL};
static const char *const periods[] = {"daily", "monthly", NULL};

static const field_t tenant_fields[] = {
    {"name", T_STR, F_REQ | F_UPD, NULL, 200, "unique display name"},
    {"tier", T_STR, F_UPD, NULL, 64, "free, standard, enterprise... (matched by route rules)"},
    {"time_zone", T_STR, F_UPD | F_TZ, NULL, 64, "IANA time zone for budget windows"},
    {"blocked", T_BOOL, F_UPD, NULL, 0, "operator block"},
    {"rpm", T_INT, F_UPD, NULL, 0, "requests per minute, 0 = unlimited"},
    {"tpm", T_INT, F_UPD, NULL, 0, "tokens per minute, 0 = unlimited"},
};
static const field_t team_fields[] = {
    {"name", T_STR, F_REQ | F_UPD, NULL, 200, "unique within the tenant"},
    {"blocked", T_BOOL, F_UPD, NULL, 0, NULL},
    {"rpm", T_INT, F_UPD, NULL, 0, NULL},
    {"tpm", T_INT, F_UPD, NULL, 0, NULL},
};
static const field_t key_fields[] = {
    {"name", T_STR, F_REQ | F_UPD, NULL, 200, NULL},
    {"team_id", T_STR, F_UPD | F_NULL, NULL, SY_ADMIN_MAX_ID, "a team of the same tenant"},
    {"expires_at", T_INT, F_UPD, NULL, 0, "unix seconds, 0 = never"},
    {"allowed_models", T_STRARR, F_UPD, NULL, 0, "model ids or route aliases; empty = all"},
    {"rpm", T_INT, F_UPD, NULL, 0, NULL},
    {"tpm", T_INT, F_UPD, NULL, 0, NULL},
    {"budget_usd", T_NUM, F_UPD, NULL, 0, "0 = none"},
};
static const field_t provider_fields[] = {
    {"name", T_STR, F_REQ | F_UPD, NULL, 200, NULL},
    {"kind", T_ENUM, F_REQ | F_UPD, provider_kinds, 0, NULL},
    {"base_url", T_STR, F_REQ | F_UPD, NULL, 2048, "http:// or https:// URL"},
    {"api_key", T_STR, F_UPD | F_VIRT | F_WO | F_NULL, NULL, 8192,
     "upstream credential; write-only, sealed at rest"},
    {"headers", T_STRMAP, F_UPD, NULL, 0, "extra upstream headers"},
    {"connect_timeout_ms", T_INT, F_UPD, NULL, 600000, NULL},
    {"first_byte_timeout_ms", T_INT, F_UPD, NULL, 3600000, NULL},
    {"total_timeout_ms", T_INT, F_UPD, NULL, 3600000, NULL},
};
static const field_t model_fields[] = {
    {"id", T_STR, F_REQ | F_VIRT | F_IDC, NULL, SY_ADMIN_MAX_ID,
     "the name clients use, e.g. gpt-4o"},
    {"provider_id", T_STR, F_REQ | F_UPD, NULL, SY_ADMIN_MAX_ID, NULL},
    {"upstream_name", T_STR, F_REQ | F_UPD, NULL, 200, NULL},
    {"context_window", T_INT, F_UPD, NULL, 0, NULL},
    {"default_max_tokens", T_INT, F_UPD, NULL, 0, NULL},
    {"capabilities", T_STRARR, F_UPD, NULL, 0, "chat, embeddings, tools, vision, json_schema"},
    {"rpm", T_INT, F_UPD, NULL, 0,
     "requests per minute to this model, whole cluster, 0 = unlimited"},
    {"tpm", T_INT, F_UPD, NULL, 0, "tokens per minute to this model, whole cluster, 0 = unlimited"},
    {"prices", T_ARRAY, F_VIRT | F_UPD, NULL, 0,
     "dated prices (Price); on PATCH the list replaces the old one"},
};
static const field_t price_fields[] = {
    {"valid_from", T_INT, 0, NULL, 0, "unix seconds from which the price holds"},
    {"input_per_mtok", T_NUM, F_REQ, NULL, 0, "USD per million input tokens"},
    {"output_per_mtok", T_NUM, F_REQ, NULL, 0, NULL},
    {"cached_input_per_mtok", T_NUM, 0, NULL, 0, NULL},
    {"cache_write_per_mtok", T_NUM, 0, NULL, 0, NULL},
};
static const field_t route_fields[] = {
    {"alias", T_STR, F_REQ | F_UPD | F_IDC, NULL, SY_ADMIN_MAX_ID, "auto, reasoning, fast, ..."},
    {"tenant_id", T_STR, F_NULL, NULL, SY_ADMIN_MAX_ID,
     "null = every tenant (platform admins only)"},
    {"max_attempts", T_INT, F_UPD, NULL, 10, NULL},
    {"deadline_ms", T_INT, F_UPD, NULL, 3600000, NULL},
    {"rules", T_ARRAY, F_REQ | F_UPD | F_VIRT, NULL, 0, "RouteRule list, first match wins"},
};
static const field_t rule_fields[] = {
    {"name", T_STR, 0, NULL, 200, NULL},
    {"task", T_STR, 0, NULL, 200, NULL},
    {"min_prompt_tokens", T_INT, 0, NULL, 0, NULL},
    {"tenant_tier", T_STR, 0, NULL, 64, NULL},
    {"latency_class", T_STR, 0, NULL, 64, NULL},
    {"max_budget_remaining_fraction", T_NUM, 0, NULL, 1, NULL},
    {"strategy", T_ENUM, 0, strategies, 0, NULL},
    {"targets", T_ARRAY, F_REQ, NULL, 0, "RouteTarget list"},
};
static const field_t target_fields[] = {
    {"model_id", T_STR, F_REQ, NULL, SY_ADMIN_MAX_ID, NULL},
    {"provider_id", T_STR, 0, NULL, SY_ADMIN_MAX_ID, "defaults to the model's provider"},
    {"weight", T_INT, 0, NULL, 1000000, NULL},
};
static const field_t budget_fields[] = {
    {"scope", T_ENUM, F_REQ, scopes, 0, NULL},
    {"scope_id", T_STR, F_REQ, NULL, SY_ADMIN_MAX_ID, "the tenant, team or key id"},
    {"period", T_ENUM, F_REQ | F_UPD, periods, 0, NULL},
    {"amount_usd", T_NUM, F_REQ | F_UPD, NULL, 0, NULL},
    {"soft_threshold", T_NUM, F_UPD, NULL, 1, "fraction that raises a warning"},
    {"hard", T_BOOL, F_UPD, NULL, 0, "block when exhausted"},
};
static const field_t user_fields[] = {
    {"name", T_STR, F_REQ | F_UPD, NULL, 200, NULL},
    {"role", T_ENUM, F_REQ, sy_admin__role_names, 0, NULL},
    {"tenant_id", T_STR, F_NULL, NULL, SY_ADMIN_MAX_ID,
     "required for tenant roles, absent for platform"},
    {"disabled", T_BOOL, F_UPD, NULL, 0, "a disabled user's tokens stop working"},
};
static const field_t token_fields[] = {
    {"revoke_existing", T_BOOL, 0, NULL, 0, "revoke the user's other tokens (rotation)"},
};

#define RES(t, s, tab, pre, own, uniq, pol, f)                                                     \
    {                                                                                              \
        t, s, tab, pre, own, uniq, pol, f, SY_ARRAY_LEN(f)                                         \
    }
const resource_t sy_admin__res_tenant =
    RES("tenant", "Tenant", "tenants", "ten", "id", "name", P_TENANT_READ, tenant_fields);
const resource_t sy_admin__res_team = RES("team", "Team", "teams", "team", "tenant_id", "name",
                                          P_TENANT_READ | P_TENANT_WRITE, team_fields);
const resource_t sy_admin__res_key = RES("key", "ApiKey", "api_keys", "key", "tenant_id", "name",
                                         P_TENANT_READ | P_TENANT_WRITE, key_fields);
const resource_t sy_admin__res_provider = RES("provider", "Provider", "providers", "prov", NULL,
                                              "name", P_PLATFORM_ONLY, provider_fields);
const resource_t sy_admin__res_model =
    RES("model", "Model", "models", NULL, NULL, "id", P_GLOBAL_READ, model_fields);
const resource_t sy_admin__res_route =
    RES("route", "Route", "routes", "route", "tenant_id", "alias",
        P_TENANT_READ | P_GLOBAL_READ | P_TENANT_WRITE, route_fields);
const resource_t sy_admin__res_budget =
    RES("budget", "Budget", "budgets", "bud", "tenant_id", "scope_id",
        P_TENANT_READ | P_TENANT_WRITE, budget_fields);
const resource_t sy_admin__res_user = RES("user", "User", "admin_users", "user", "tenant_id",
                                          "name", P_TENANT_READ | P_TENANT_WRITE, user_fields);
const resource_t sy_admin__res_token =
    RES("admin_token", "AdminTokenCreate", NULL, NULL, NULL, NULL, 0, token_fields);
const resource_t sy_admin__res_price =
    RES("price", "Price", NULL, NULL, NULL, NULL, 0, price_fields);
const resource_t sy_admin__res_rule =
    RES("rule", "RouteRule", NULL, NULL, NULL, NULL, 0, rule_fields);
const resource_t sy_admin__res_target =
    RES("target", "RouteTarget", NULL, NULL, NULL, NULL, 0, target_fields);

const resource_t *const sy_admin__resources[] = {&sy_admin__res_tenant,
                                                 &sy_admin__res_team,
                                                 &sy_admin__res_key,
                                                 &sy_admin__res_provider,
                                                 &sy_admin__res_model,
                                                 &sy_admin__res_route,
                                                 &sy_admin__res_budget,
                                                 &sy_admin__res_user,
                                                 &sy_admin__res_price,
                                                 &sy_admin__res_rule,
                                                 &sy_admin__res_target,
                                                 &sy_admin__res_token,
                                                 NULL};

const field_t *sy_admin__find_field(const resource_t *res, const char *name)
{
    for (size_t i = 0; i < res->nfields; i++)
        if (strcmp(res->fields[i].name, name) == 0)
            return &res->fields[i];
    return NULL;
}

bool sy_admin__valid_id_chars(const char *s, size_t len)
{
    if (len == 0 || len > SY_ADMIN_MAX_ID)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

/* "UTC" or a zone file under /usr/share/zoneinfo ("Europe/Paris"). */
static bool valid_time_zone(const char *tz)
{
    if (strcmp(tz, "UTC") == 0)
        return true;
    if (tz[0] == '\0' || tz[0] == '/' || strstr(tz, "..") != NULL)
        return false;
    for (const char *p = tz; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '_' || *p == '-' || *p == '+'))
            return false;
    char path[160];
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Checks one value against f; the error names path (the field's full name). */
/* T_STR: 1..max characters, no NUL, and the F_IDC / F_TZ character rules. */
static int check_str(rq_t *r, const field_t *f, json_object *v, const char *path)
{
    if (!json_object_is_type(v, json_type_string)) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_type", "%s must be a string", path);
        return -1;
    }
    size_t len = (size_t)json_object_get_string_len(v);
    size_t max = f->max > 0 ? (size_t)f->max : SY_ADMIN_MAX_STR;
    bool may_be_empty = !(f->flags & F_REQ);
    if ((len == 0 && !may_be_empty) || len > max) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "%s must be 1 to %zu characters", path, max);
        return -1;
    }
    const char *str = json_object_get_string(v);
    if (strlen(str) != len) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "%s must not contain NUL characters", path);
        return -1;
    }
    if ((f->flags & F_IDC) && !sy_admin__valid_id_chars(str, len)) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "%s may hold letters, digits and - _ . : only",
                           path);
        return -1;
    }
    if ((f->flags & F_TZ) && !valid_time_zone(str)) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "%s is not a known IANA time zone", path);
        return -1;
    }
    return 0;
}

/* T_INT: an integer in [0, max] (max 0: INT64_MAX). */
static int check_int(rq_t *r, const field_t *f, json_object *v, const char *path)
{
    if (!json_object_is_type(v, json_type_int)) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_type", "%s must be an integer", path);
        return -1;
    }
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (errno != 0 || x < 0 || (f->max > 0 && (double)x > f->max) ||
        (json_object_get_uint64(v) > (uint64_t)INT64_MAX)) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "%s must be between 0 and %.0f", path,
                           f->max > 0 ? f->max : (double)INT64_MAX);
        return -1;
    }
    return 0;
}

/* T_NUM: a finite number in [0, max] (max 0: up to 1e15). */
static int check_num(rq_t *r, const field_t *f, json_object *v, const char *path)
{
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_type", "%s must be a number", path);
        return -1;
    }
    double x = json_object_get_double(v);
    if (!isfinite(x) || x < 0 || (f->max > 0 && x > f->max) || x > 1e15) {
        if (f->max > 0)
            SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "%s must be between 0 and %g", path,
                               f->max);
        else
            SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "%s must be a non-negative number", path);
        return -1;
    }
    return 0;
}

/* T_ENUM: one of f->enums; the error lists them. */
static int check_enum(rq_t *r, const field_t *f, json_object *v, const char *path)
{
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        for (const char *const *e = f->enums; *e; e++)
            if (strcmp(*e, s) == 0)
                return 0;
    }
    char list[256] = "";
    for (const char *const *e = f->enums; *e; e++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                 e == f->enums ? "" : ", ", *e);
    SY_ADMIN_BAD_FIELD(r, path, "invalid_value", "%s must be one of: %s", path, list);
    return -1;
}

/* T_STRARR: up to MAX_ARRAY non-empty strings. */
static int check_str_array(rq_t *r, json_object *v, const char *path)
{
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > MAX_ARRAY) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_type", "%s must be an array of at most %d strings",
                           path, MAX_ARRAY);
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (!json_object_is_type(e, json_type_string) || json_object_get_string_len(e) == 0 ||
            json_object_get_string_len(e) > SY_ADMIN_MAX_STR) {
            char p[240];
            snprintf(p, sizeof(p), "%s[%zu]", path, i);
            SY_ADMIN_BAD_FIELD(r, p, "invalid_value", "%s must be a non-empty string", p);
            return -1;
        }
    }
    return 0;
}

/* T_STRMAP: up to 100 string members (header maps). */
static int check_str_map(rq_t *r, json_object *v, const char *path)
{
    if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) > 100) {
        SY_ADMIN_BAD_FIELD(r, path, "invalid_type", "%s must be an object of at most 100 strings",
                           path);
        return -1;
    }
    json_object_object_foreach(v, k, e)
    {
        if (!json_object_is_type(e, json_type_string) || strlen(k) == 0 || strlen(k) > 200 ||
            json_object_get_string_len(e) > 8192) {
            char p[300];
            snprintf(p, sizeof(p), "%s.%s", path, k);
            SY_ADMIN_BAD_FIELD(r, p, "invalid_value", "%s must be a string", p);
            return -1;
        }
    }
    return 0;
}

static int check_value(rq_t *r, const field_t *f, json_object *v, const char *path)
{
    if (v == NULL || json_object_is_type(v, json_type_null)) {
        if (f->flags & F_NULL)
            return 0;
        SY_ADMIN_BAD_FIELD(r, path, "invalid_type", "%s must not be null", path);
        return -1;
    }
    switch (f->type) {
    case T_STR:
        return check_str(r, f, v, path);
    case T_INT:
        return check_int(r, f, v, path);
    case T_NUM:
        return check_num(r, f, v, path);
    case T_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) {
            SY_ADMIN_BAD_FIELD(r, path, "invalid_type", "%s must be a boolean", path);
            return -1;
        }
        return 0;
    case T_ENUM:
        return check_enum(r, f, v, path);
    case T_STRARR:
        return check_str_array(r, v, path);
    case T_STRMAP:
        return check_str_map(r, v, path);
    case T_ARRAY:
        if (!json_object_is_type(v, json_type_array)) {
            SY_ADMIN_BAD_FIELD(r, path, "invalid_type", "%s must be an array", path);
            return -1;
        }
        return 0;
    }
    return 0;
}

int sy_admin__validate_obj(rq_t *r, const resource_t *res, json_object *obj, bool create,
                           const char *prefix)
{
    char path[200];
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        if (prefix)
            SY_ADMIN_BAD_FIELD(r, prefix, "invalid_type", "%s must be a JSON object", prefix);
        else
            SY_ADMIN_BAD_FIELD(r, NULL, "invalid_body", "the request body must be a JSON object");
        return -1;
    }
    json_object_object_foreach(obj, key, val)
    {
        snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "", prefix ? "." : "", key);
        const field_t *f = sy_admin__find_field(res, key);
        if (f == NULL) {
            SY_ADMIN_BAD_FIELD(r, path, "unknown_field", "unknown field %s", path);
            return -1;
        }
        if (!create && !(f->flags & F_UPD)) {
            SY_ADMIN_BAD_FIELD(r, path, "immutable_field", "%s cannot be changed", path);
            return -1;
        }
        if (check_value(r, f, val, path) != 0)
            return -1;
    }
    if (create) {
        for (size_t i = 0; i < res->nfields; i++) {
            const field_t *f = &res->fields[i];
            if ((f->flags & F_REQ) && !sy_admin__has_member(obj, f->name)) {
                snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
                         f->name);
                SY_ADMIN_BAD_FIELD(r, path, "missing_field", "missing required field %s", path);
                return -1;
            }
        }
    }
    return 0;
}

const char *sy_admin__str_member(json_object *o, const char *k)
{
    json_object *v = o ? json_object_object_get(o, k) : NULL;
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}
