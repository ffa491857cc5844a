/* Admin HTTP API: see admin.h.
 *
 * Everything runs on the loop thread against the store's one connection.
 * Reads are bounded (pages of at most 1000 rows, indexed lookups), so no
 * request holds the loop for long. A mutation is one transaction that also
 * writes its audit record; the cluster is told after the commit. */
#include "admin.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <json-c/json.h>

#include "cluster.h"
#include "json.h"
#include "log.h"
#include "secrets.h"
#include "webfiles.h"

#define PREFIX "/admin/v1"
#define MAX_ID 128
#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000
#define MAX_STR 256
#define MAX_ARRAY 1000
#define MAX_RULES 64
#define MAX_TARGETS 64

struct sy_admin {
    sy_store_t *store;                   /* borrowed */
    const sy_envelope_key_t *master_key; /* borrowed */
    sy_cluster_t *cluster;               /* borrowed, may be NULL */
    const char *web_dir;                 /* borrowed, may be NULL; admin-web files */
    sy_json_parser_t *parser;            /* owned; request bodies */
};

typedef enum role {
    ROLE_PLATFORM = 0,
    ROLE_TENANT_ADMIN = 1,
    ROLE_TENANT_VIEWER = 2,
} role_t;

static const char *const role_names[] = {"platform_admin", "tenant_admin", "tenant_viewer", NULL};

typedef struct actor {
    char user_id[MAX_ID + 1];   /* the admin user */
    role_t role;                /* its role */
    char tenant_id[MAX_ID + 1]; /* its tenant, empty for a platform admin */
} actor_t;

typedef struct rq {
    sy_admin_t *a;                 /* borrowed */
    sqlite3 *db;                   /* borrowed; the store's connection */
    const sy_httpd_request_t *req; /* borrowed; valid during the request */
    sy_httpd_response_t *res;      /* borrowed; what we fill */
    actor_t actor;                 /* who is asking */
    char p[2][MAX_ID + 1];         /* path parameters, in template order */
    json_object *body;             /* owned; parsed body of POST/PATCH, NULL otherwise */
} rq_t;

/* ------------------------------------------------------------------------ */
/* Replies */

static void reply_error(rq_t *r, int status, const char *type, const char *param, const char *code,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void reply_error(rq_t *r, int status, const char *type, const char *param, const char *code,
                        const char *fmt, ...)
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

#define BAD_FIELD(r, field, code, ...)                                                             \
    reply_error(r, 400, "invalid_request_error", field, code, __VA_ARGS__)

static void not_found(rq_t *r, const char *what, const char *id)
{
    reply_error(r, 404, "not_found_error", NULL, "not_found", "no such %s: %s", what, id);
}

/* A body field names an object the actor cannot use: 400 for a platform
 * admin (it does not exist), 404 for tenant roles, for whom an object of
 * another tenant and a missing one must look the same. */
static void bad_reference(rq_t *r, const char *field, const char *what, const char *id)
{
    if (r->actor.role == ROLE_PLATFORM)
        reply_error(r, 400, "invalid_request_error", field, "invalid_value", "no %s %s", what, id);
    else
        reply_error(r, 404, "not_found_error", field, "not_found", "no such %s: %s", what, id);
}

static void forbidden(rq_t *r)
{
    reply_error(r, 403, "permission_error", NULL, "forbidden",
                "your role does not allow this operation");
}

static void db_error(rq_t *r)
{
    sy_log(SY_LOG_ERROR, "admin_db", "%s", sqlite3_errmsg(r->db));
    reply_error(r, 500, "api_error", NULL, "internal_error", "database error");
}

/* Serializes o (consumed) as the response with status. */
static void reply_json(rq_t *r, int status, json_object *o)
{
    size_t len;
    const char *s = sy_json_to_string(o, &len);
    sy_buf_reset(&r->res->body);
    sy_buf_append(&r->res->body, s, len);
    r->res->status = status;
    json_object_put(o);
}

/* True when o has member k, even one whose value is null (json-c hands a
 * JSON null out as a NULL pointer, like a missing member). */
static bool has_member(json_object *o, const char *k)
{
    return o != NULL && json_object_object_get_ex(o, k, NULL);
}

/* ------------------------------------------------------------------------ */
/* Resources */

typedef enum ftype {
    T_STR,    /* string, 1..max characters */
    T_INT,    /* integer >= 0 (<= max when max > 0) */
    T_NUM,    /* number >= 0 (<= max when max > 0) */
    T_BOOL,   /* boolean */
    T_ENUM,   /* one of enums */
    T_STRARR, /* array of strings */
    T_STRMAP, /* object of string values */
    T_ARRAY,  /* array of objects, validated by the resource's code */
} ftype_t;

#define F_REQ 1u  /* required on create */
#define F_UPD 2u  /* may change with PATCH */
#define F_VIRT 4u /* not a column: the resource's code handles it */
#define F_NULL 8u /* null accepted (stored as NULL) */
#define F_WO 16u  /* write-only: never returned (secrets) */
#define F_IDC 32u /* letters, digits and - _ . : only (names clients send) */
#define F_TZ 64u  /* an IANA time zone known to the system */

typedef struct field {
    const char *name;         /* JSON member and column name */
    ftype_t type;             /* accepted JSON type */
    unsigned flags;           /* F_* */
    const char *const *enums; /* T_ENUM: NULL-terminated accepted values */
    double max;               /* T_STR: max length (0 = MAX_STR); numbers: max value (0 = none) */
    const char *doc;          /* one line for the OpenAPI document */
} field_t;

#define P_TENANT_READ 1u   /* tenant roles may read objects of their own tenant */
#define P_GLOBAL_READ 2u   /* tenant roles may read objects without a tenant */
#define P_TENANT_WRITE 4u  /* tenant admins may write objects of their own tenant */
#define P_PLATFORM_ONLY 8u /* tenant roles get 403 on every operation */

typedef struct resource {
    const char *type;      /* object type, e.g. "tenant" */
    const char *schema;    /* OpenAPI schema name, e.g. "Tenant" */
    const char *table;     /* SQLite table */
    const char *id_prefix; /* generated ids "<prefix>_..."; NULL: client-chosen "id" field */
    const char *owner_col; /* column naming the owning tenant, NULL when none */
    const char *unique;    /* the field a uniqueness conflict is reported against */
    unsigned policy;       /* P_* */
    const field_t *fields; /* accepted body fields */
    size_t nfields;        /* entries in fields */
} resource_t;

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
    {"team_id", T_STR, F_UPD | F_NULL, NULL, MAX_ID, "a team of the same tenant"},
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
    {"id", T_STR, F_REQ | F_VIRT | F_IDC, NULL, MAX_ID, "the name clients use, e.g. gpt-4o"},
    {"provider_id", T_STR, F_REQ | F_UPD, NULL, MAX_ID, NULL},
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
    {"alias", T_STR, F_REQ | F_UPD | F_IDC, NULL, MAX_ID, "auto, reasoning, fast, ..."},
    {"tenant_id", T_STR, F_NULL, NULL, MAX_ID, "null = every tenant (platform admins only)"},
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
    {"model_id", T_STR, F_REQ, NULL, MAX_ID, NULL},
    {"provider_id", T_STR, 0, NULL, MAX_ID, "defaults to the model's provider"},
    {"weight", T_INT, 0, NULL, 1000000, NULL},
};
static const field_t budget_fields[] = {
    {"scope", T_ENUM, F_REQ, scopes, 0, NULL},
    {"scope_id", T_STR, F_REQ, NULL, MAX_ID, "the tenant, team or key id"},
    {"period", T_ENUM, F_REQ | F_UPD, periods, 0, NULL},
    {"amount_usd", T_NUM, F_REQ | F_UPD, NULL, 0, NULL},
    {"soft_threshold", T_NUM, F_UPD, NULL, 1, "fraction that raises a warning"},
    {"hard", T_BOOL, F_UPD, NULL, 0, "block when exhausted"},
};
static const field_t user_fields[] = {
    {"name", T_STR, F_REQ | F_UPD, NULL, 200, NULL},
    {"role", T_ENUM, F_REQ, role_names, 0, NULL},
    {"tenant_id", T_STR, F_NULL, NULL, MAX_ID, "required for tenant roles, absent for platform"},
    {"disabled", T_BOOL, F_UPD, NULL, 0, "a disabled user's tokens stop working"},
};
static const field_t token_fields[] = {
    {"revoke_existing", T_BOOL, 0, NULL, 0, "revoke the user's other tokens (rotation)"},
};

#define RES(t, s, tab, pre, own, uniq, pol, f)                                                     \
    {                                                                                              \
        t, s, tab, pre, own, uniq, pol, f, SY_ARRAY_LEN(f)                                         \
    }
static const resource_t R_TENANT =
    RES("tenant", "Tenant", "tenants", "ten", "id", "name", P_TENANT_READ, tenant_fields);
static const resource_t R_TEAM = RES("team", "Team", "teams", "team", "tenant_id", "name",
                                     P_TENANT_READ | P_TENANT_WRITE, team_fields);
static const resource_t R_KEY = RES("key", "ApiKey", "api_keys", "key", "tenant_id", "name",
                                    P_TENANT_READ | P_TENANT_WRITE, key_fields);
static const resource_t R_PROVIDER = RES("provider", "Provider", "providers", "prov", NULL, "name",
                                         P_PLATFORM_ONLY, provider_fields);
static const resource_t R_MODEL =
    RES("model", "Model", "models", NULL, NULL, "id", P_GLOBAL_READ, model_fields);
static const resource_t R_ROUTE = RES("route", "Route", "routes", "route", "tenant_id", "alias",
                                      P_TENANT_READ | P_GLOBAL_READ | P_TENANT_WRITE, route_fields);
static const resource_t R_BUDGET = RES("budget", "Budget", "budgets", "bud", "tenant_id",
                                       "scope_id", P_TENANT_READ | P_TENANT_WRITE, budget_fields);
static const resource_t R_USER = RES("user", "User", "admin_users", "user", "tenant_id", "name",
                                     P_TENANT_READ | P_TENANT_WRITE, user_fields);
/* Sub-objects: only for validation, audit and the OpenAPI document. */
static const resource_t R_TOKEN =
    RES("admin_token", "AdminTokenCreate", NULL, NULL, NULL, NULL, 0, token_fields);
static const resource_t R_PRICE = RES("price", "Price", NULL, NULL, NULL, NULL, 0, price_fields);
static const resource_t R_RULE = RES("rule", "RouteRule", NULL, NULL, NULL, NULL, 0, rule_fields);
static const resource_t R_TARGET =
    RES("target", "RouteTarget", NULL, NULL, NULL, NULL, 0, target_fields);

static const resource_t *const all_resources[] = {&R_TENANT, &R_TEAM,  &R_KEY,    &R_PROVIDER,
                                                  &R_MODEL,  &R_ROUTE, &R_BUDGET, &R_USER,
                                                  &R_PRICE,  &R_RULE,  &R_TARGET, &R_TOKEN};

/* ------------------------------------------------------------------------ */
/* Access control */

static bool is_platform(const rq_t *r)
{
    return r->actor.role == ROLE_PLATFORM;
}

/* Decides whether the actor may read (write=false) or change an object of res
 * owned by tenant owner (NULL: no tenant). Returns 0 when allowed; otherwise
 * answers 404 (the object is not visible to the actor, so its existence is
 * not disclosed) or 403 (visible but not writable) and returns -1. */
static int check_access(rq_t *r, const resource_t *res, const char *owner, bool write,
                        const char *id)
{
    if (is_platform(r))
        return 0;
    if (res->policy & P_PLATFORM_ONLY) {
        forbidden(r);
        return -1;
    }
    bool mine = owner != NULL && strcmp(owner, r->actor.tenant_id) == 0;
    bool readable =
        (mine && (res->policy & P_TENANT_READ)) || (owner == NULL && (res->policy & P_GLOBAL_READ));
    if (!readable) {
        not_found(r, res->type, id);
        return -1;
    }
    if (!write)
        return 0;
    if (r->actor.role != ROLE_TENANT_ADMIN || !mine || !(res->policy & P_TENANT_WRITE)) {
        forbidden(r);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Rows as JSON */

static bool is_bool_col(const char *n)
{
    return strcmp(n, "blocked") == 0 || strcmp(n, "disabled") == 0 || strcmp(n, "hard") == 0;
}

static bool is_json_col(const char *n)
{
    return strcmp(n, "allowed_models") == 0 || strcmp(n, "headers") == 0 ||
           strcmp(n, "capabilities") == 0;
}

/* A double that prints in the shortest form that reads back exactly
 * (json-c's default prints 0.8 as 0.80000000000000004). */
static json_object *new_double(double d)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, sizeof(buf), "%.17g", d);
    if (strspn(buf, "-0123456789") == strlen(buf))
        strcat(buf, ".0");
    return json_object_new_double_s(d, buf);
}

/* The current row of st as an object; BLOB columns (hashes, sealed
 * credentials) are never included: a credential only shows as has_<col>. */
static json_object *row_json(sqlite3_stmt *st, const char *type)
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
            v = new_double(sqlite3_column_double(st, i));
        } else {
            v = json_object_new_string_len((const char *)sqlite3_column_text(st, i),
                                           sqlite3_column_bytes(st, i));
        }
        json_object_object_add(o, name, v);
    }
    return o;
}

static int prepare(rq_t *r, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK) {
        db_error(r);
        return -1;
    }
    return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Adds the nested parts of models (prices) and routes (rules, targets). */
static int decorate(rq_t *r, const resource_t *res, json_object *o, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (res == &R_MODEL) {
        if (prepare(r,
                    "SELECT valid_from, input_per_mtok, output_per_mtok, cached_input_per_mtok, "
                    "cache_write_per_mtok FROM model_prices WHERE model_id = ? ORDER BY valid_from",
                    &st) != 0)
            return -1;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        json_object *arr = json_object_new_array();
        while (sqlite3_step(st) == SQLITE_ROW)
            json_object_array_add(arr, row_json(st, NULL));
        sqlite3_finalize(st);
        json_object_object_add(o, "prices", arr);
    } else if (res == &R_USER) {
        /* The user's tokens, by prefix only. */
        if (prepare(r,
                    "SELECT id, prefix, created_at, expires_at, revoked_at, last_used_at "
                    "FROM admin_tokens WHERE user_id = ? ORDER BY id",
                    &st) != 0)
            return -1;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        json_object *arr = json_object_new_array();
        while (sqlite3_step(st) == SQLITE_ROW)
            json_object_array_add(arr, row_json(st, "admin_token"));
        sqlite3_finalize(st);
        json_object_object_add(o, "tokens", arr);
    } else if (res == &R_ROUTE) {
        if (prepare(r,
                    "SELECT position, name, task, min_prompt_tokens, tenant_tier, latency_class, "
                    "max_budget_remaining_fraction, strategy FROM route_rules WHERE route_id = ? "
                    "ORDER BY position",
                    &st) != 0)
            return -1;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        json_object *rules = json_object_new_array();
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_object *rule = row_json(st, NULL);
            int pos = sqlite3_column_int(st, 0);
            json_object_object_del(rule, "position");
            sqlite3_stmt *ts = NULL;
            if (prepare(r,
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
                json_object_array_add(targets, row_json(ts, NULL));
            sqlite3_finalize(ts);
            json_object_object_add(rule, "targets", targets);
            json_object_array_add(rules, rule);
        }
        sqlite3_finalize(st);
        json_object_object_add(o, "rules", rules);
    }
    return 0;
}

/* Loads object id of res. Returns 1 and *out (+ owner, when owner_size > 0)
 * when found, 0 when not, -1 after answering a database error. */
static int load(rq_t *r, const resource_t *res, const char *id, json_object **out, char *owner,
                size_t owner_size)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT * FROM %s WHERE id = ?", res->table);
    sqlite3_stmt *st = NULL;
    if (prepare(r, sql, &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return 0;
        db_error(r);
        return -1;
    }
    json_object *o = row_json(st, res->type);
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

/* Loads and access-checks in one go: 0 with *out, or -1 after answering. */
static int load_checked(rq_t *r, const resource_t *res, const char *id, bool write,
                        json_object **out, char owner[MAX_ID + 1])
{
    json_object *o = NULL;
    int rc = load(r, res, id, &o, owner, MAX_ID + 1);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        not_found(r, res->type, id);
        return -1;
    }
    if (check_access(r, res, owner[0] ? owner : NULL, write, id) != 0) {
        json_object_put(o);
        return -1;
    }
    *out = o;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Validation */

static const field_t *find_field(const resource_t *res, const char *name)
{
    for (size_t i = 0; i < res->nfields; i++)
        if (strcmp(res->fields[i].name, name) == 0)
            return &res->fields[i];
    return NULL;
}

static bool valid_id_chars(const char *s, size_t len)
{
    if (len == 0 || len > MAX_ID)
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
static int check_value(rq_t *r, const field_t *f, json_object *v, const char *path)
{
    if (v == NULL || json_object_is_type(v, json_type_null)) {
        if (f->flags & F_NULL)
            return 0;
        BAD_FIELD(r, path, "invalid_type", "%s must not be null", path);
        return -1;
    }
    switch (f->type) {
    case T_STR: {
        if (!json_object_is_type(v, json_type_string)) {
            BAD_FIELD(r, path, "invalid_type", "%s must be a string", path);
            return -1;
        }
        size_t len = (size_t)json_object_get_string_len(v);
        size_t max = f->max > 0 ? (size_t)f->max : MAX_STR;
        bool may_be_empty = !(f->flags & F_REQ);
        if ((len == 0 && !may_be_empty) || len > max) {
            BAD_FIELD(r, path, "invalid_value", "%s must be 1 to %zu characters", path, max);
            return -1;
        }
        const char *str = json_object_get_string(v);
        if (strlen(str) != len) {
            BAD_FIELD(r, path, "invalid_value", "%s must not contain NUL characters", path);
            return -1;
        }
        if ((f->flags & F_IDC) && !valid_id_chars(str, len)) {
            BAD_FIELD(r, path, "invalid_value", "%s may hold letters, digits and - _ . : only",
                      path);
            return -1;
        }
        if ((f->flags & F_TZ) && !valid_time_zone(str)) {
            BAD_FIELD(r, path, "invalid_value", "%s is not a known IANA time zone", path);
            return -1;
        }
        return 0;
    }
    case T_INT: {
        if (!json_object_is_type(v, json_type_int)) {
            BAD_FIELD(r, path, "invalid_type", "%s must be an integer", path);
            return -1;
        }
        errno = 0;
        int64_t x = json_object_get_int64(v);
        if (errno != 0 || x < 0 || (f->max > 0 && (double)x > f->max) ||
            (json_object_get_uint64(v) > (uint64_t)INT64_MAX)) {
            BAD_FIELD(r, path, "invalid_value", "%s must be between 0 and %.0f", path,
                      f->max > 0 ? f->max : (double)INT64_MAX);
            return -1;
        }
        return 0;
    }
    case T_NUM: {
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
            BAD_FIELD(r, path, "invalid_type", "%s must be a number", path);
            return -1;
        }
        double x = json_object_get_double(v);
        if (!isfinite(x) || x < 0 || (f->max > 0 && x > f->max) || x > 1e15) {
            if (f->max > 0)
                BAD_FIELD(r, path, "invalid_value", "%s must be between 0 and %g", path, f->max);
            else
                BAD_FIELD(r, path, "invalid_value", "%s must be a non-negative number", path);
            return -1;
        }
        return 0;
    }
    case T_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) {
            BAD_FIELD(r, path, "invalid_type", "%s must be a boolean", path);
            return -1;
        }
        return 0;
    case T_ENUM: {
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
        BAD_FIELD(r, path, "invalid_value", "%s must be one of: %s", path, list);
        return -1;
    }
    case T_STRARR: {
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > MAX_ARRAY) {
            BAD_FIELD(r, path, "invalid_type", "%s must be an array of at most %d strings", path,
                      MAX_ARRAY);
            return -1;
        }
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *e = json_object_array_get_idx(v, i);
            if (!json_object_is_type(e, json_type_string) || json_object_get_string_len(e) == 0 ||
                json_object_get_string_len(e) > MAX_STR) {
                char p[240];
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                BAD_FIELD(r, p, "invalid_value", "%s must be a non-empty string", p);
                return -1;
            }
        }
        return 0;
    }
    case T_STRMAP: {
        if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) > 100) {
            BAD_FIELD(r, path, "invalid_type", "%s must be an object of at most 100 strings", path);
            return -1;
        }
        json_object_object_foreach(v, k, e)
        {
            if (!json_object_is_type(e, json_type_string) || strlen(k) == 0 || strlen(k) > 200 ||
                json_object_get_string_len(e) > 8192) {
                char p[300];
                snprintf(p, sizeof(p), "%s.%s", path, k);
                BAD_FIELD(r, p, "invalid_value", "%s must be a string", p);
                return -1;
            }
        }
        return 0;
    }
    case T_ARRAY:
        if (!json_object_is_type(v, json_type_array)) {
            BAD_FIELD(r, path, "invalid_type", "%s must be an array", path);
            return -1;
        }
        return 0;
    }
    return 0;
}

/* Validates obj against res: an object, no unknown members, types and
 * ranges, required members on create, only updatable members otherwise.
 * prefix names the object's place for nested objects ("rules[2]"). */
static int validate_obj(rq_t *r, const resource_t *res, json_object *obj, bool create,
                        const char *prefix)
{
    char path[200];
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        if (prefix)
            BAD_FIELD(r, prefix, "invalid_type", "%s must be a JSON object", prefix);
        else
            BAD_FIELD(r, NULL, "invalid_body", "the request body must be a JSON object");
        return -1;
    }
    json_object_object_foreach(obj, key, val)
    {
        snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "", prefix ? "." : "", key);
        const field_t *f = find_field(res, key);
        if (f == NULL) {
            BAD_FIELD(r, path, "unknown_field", "unknown field %s", path);
            return -1;
        }
        if (!create && !(f->flags & F_UPD)) {
            BAD_FIELD(r, path, "immutable_field", "%s cannot be changed", path);
            return -1;
        }
        if (check_value(r, f, val, path) != 0)
            return -1;
    }
    if (create) {
        for (size_t i = 0; i < res->nfields; i++) {
            const field_t *f = &res->fields[i];
            if ((f->flags & F_REQ) && !has_member(obj, f->name)) {
                snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
                         f->name);
                BAD_FIELD(r, path, "missing_field", "missing required field %s", path);
                return -1;
            }
        }
    }
    return 0;
}

static const char *str_member(json_object *o, const char *k)
{
    json_object *v = o ? json_object_object_get(o, k) : NULL;
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Parses the request body into r->body; answers 400 on failure. */
static int parse_body(rq_t *r)
{
    const char *why = NULL;
    sy_str_t b = r->req->body;
    if (b.len == 0) {
        BAD_FIELD(r, NULL, "invalid_body", "a JSON request body is required");
        return -1;
    }
    if (sy_json_parse(r->a->parser, b.ptr, b.len, &r->body, &why) != 0) {
        BAD_FIELD(r, NULL, "invalid_json", "request body: %s", why ? why : "invalid JSON");
        return -1;
    }
    if (!json_object_is_type(r->body, json_type_object)) {
        /* json-c gives NULL for a literal null: every body here is an object. */
        json_object_put(r->body);
        r->body = NULL;
        BAD_FIELD(r, NULL, "invalid_body", "the request body must be a JSON object");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Generic SQL */

typedef struct extra {
    const char *col;  /* column */
    const void *blob; /* BLOB value when non-NULL */
    int blen;         /* its length */
    const char *text; /* TEXT value (used when blob is NULL); NULL binds NULL */
} extra_t;

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
        reply_error(r, 409, "invalid_request_error", res->unique, "conflict",
                    "a %s with this %s already exists", res->type, res->unique);
    else if ((ext & 0xff) == SQLITE_CONSTRAINT)
        reply_error(r, 400, "invalid_request_error", NULL, "constraint_failed", "%s rejected: %s",
                    res->type, sqlite3_errmsg(r->db));
    else
        db_error(r);
}

/* INSERT of id, the owner (when owner_col is a separate column), the
 * timestamps, the body's column fields and extras. */
static int insert_row(rq_t *r, const resource_t *res, const char *id, const char *owner,
                      json_object *body, const extra_t *ex, size_t nex, bool timestamps2)
{
    sy_buf_t cols, vals;
    sy_buf_init(&cols);
    sy_buf_init(&vals);
    sy_buf_appendf(&cols, "INSERT INTO %s (id, created_at", res->table);
    sy_buf_append_str(&vals, ") VALUES (?, ?");
    if (timestamps2) {
        sy_buf_append_str(&cols, ", updated_at");
        sy_buf_append_str(&vals, ", ?");
    }
    bool owner_sep = res->owner_col && strcmp(res->owner_col, "id") != 0;
    if (owner_sep) {
        sy_buf_appendf(&cols, ", %s", res->owner_col);
        sy_buf_append_str(&vals, ", ?");
    }
    for (size_t i = 0; i < res->nfields; i++) {
        const field_t *f = &res->fields[i];
        if ((f->flags & F_VIRT) || (owner_sep && strcmp(f->name, res->owner_col) == 0) ||
            !has_member(body, f->name))
            continue;
        sy_buf_appendf(&cols, ", %s", f->name);
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
    int rc = prepare(r, cols.data, &st);
    sy_buf_free(&cols);
    if (rc != 0)
        return -1;
    int k = 1;
    int64_t now = sy_store_now();
    sqlite3_bind_text(st, k++, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, k++, now);
    if (timestamps2)
        sqlite3_bind_int64(st, k++, now);
    if (owner_sep)
        bind_text(st, k++, owner);
    for (size_t i = 0; i < res->nfields; i++) {
        const field_t *f = &res->fields[i];
        json_object *v = json_object_object_get(body, f->name);
        if ((f->flags & F_VIRT) || (owner_sep && strcmp(f->name, res->owner_col) == 0) ||
            !has_member(body, f->name))
            continue;
        bind_field(st, k++, f, v);
    }
    for (size_t i = 0; i < nex; i++) {
        if (ex[i].blob)
            sqlite3_bind_blob(st, k++, ex[i].blob, ex[i].blen, SQLITE_TRANSIENT);
        else
            bind_text(st, k++, ex[i].text);
    }
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        write_error(r, res);
        return -1;
    }
    return 0;
}

/* UPDATE of the body's column fields and extras (plus updated_at). */
static int update_row(rq_t *r, const resource_t *res, const char *id, json_object *body,
                      const extra_t *ex, size_t nex)
{
    sy_buf_t sql;
    sy_buf_init(&sql);
    sy_buf_appendf(&sql, "UPDATE %s SET updated_at = ?", res->table);
    for (size_t i = 0; i < res->nfields; i++) {
        const field_t *f = &res->fields[i];
        if (!(f->flags & F_VIRT) && has_member(body, f->name))
            sy_buf_appendf(&sql, ", %s = ?", f->name);
    }
    for (size_t i = 0; i < nex; i++)
        sy_buf_appendf(&sql, ", %s = ?", ex[i].col);
    sy_buf_append_str(&sql, " WHERE id = ?");
    sqlite3_stmt *st = NULL;
    int rc = prepare(r, sql.data, &st);
    sy_buf_free(&sql);
    if (rc != 0)
        return -1;
    int k = 1;
    sqlite3_bind_int64(st, k++, sy_store_now());
    for (size_t i = 0; i < res->nfields; i++) {
        const field_t *f = &res->fields[i];
        json_object *v = json_object_object_get(body, f->name);
        if (!(f->flags & F_VIRT) && has_member(body, f->name))
            bind_field(st, k++, f, v);
    }
    for (size_t i = 0; i < nex; i++) {
        if (ex[i].blob)
            sqlite3_bind_blob(st, k++, ex[i].blob, ex[i].blen, SQLITE_TRANSIENT);
        else
            bind_text(st, k++, ex[i].text);
    }
    sqlite3_bind_text(st, k++, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        write_error(r, res);
        return -1;
    }
    return 0;
}

static int exec_id(rq_t *r, const char *sql, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (prepare(r, sql, &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_error(r);
        return -1;
    }
    return 0;
}

/* True when a row with this id exists in table (and, when tenant is
 * non-NULL, belongs to that tenant). */
static bool exists(rq_t *r, const char *table, const char *id, const char *tenant)
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

/* ------------------------------------------------------------------------ */
/* Transactions and audit */

static int tx_begin(rq_t *r)
{
    if (sy_store_begin(r->a->store, NULL) != 0) {
        db_error(r);
        return -1;
    }
    return 0;
}

static void tx_abort(rq_t *r)
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

/* Writes the audit record and commits; tells the cluster. before/after are
 * borrowed (NULL for create/delete). Returns 0 or -1 after answering. */
static int tx_commit(rq_t *r, const char *action, const resource_t *res, const char *id,
                     const char *tenant, json_object *before, json_object *after)
{
    sqlite3_stmt *st = NULL;
    if (prepare(r,
                "INSERT INTO audit_log (ts_ms, actor_id, actor_role, tenant_id, action, "
                "object_type, object_id, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &st) != 0) {
        tx_abort(r);
        return -1;
    }
    char *b = dup_json(before), *a = dup_json(after);
    sqlite3_bind_int64(st, 1, sy_store_now_ms());
    sqlite3_bind_text(st, 2, r->actor.user_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, role_names[r->actor.role], -1, SQLITE_STATIC);
    bind_text(st, 4, tenant && tenant[0] ? tenant : NULL);
    sqlite3_bind_text(st, 5, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, res->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, id, -1, SQLITE_TRANSIENT);
    bind_text(st, 8, b);
    bind_text(st, 9, a);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    free(b);
    free(a);
    if (rc != SQLITE_DONE) {
        db_error(r);
        tx_abort(r);
        return -1;
    }
    if (sy_store_commit(r->a->store, NULL) != 0) {
        db_error(r);
        return -1;
    }
    sy_cluster_notify_change(r->a->cluster);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Query strings and pagination */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies the percent-decoded value of query parameter name into out.
 * Returns 1 when present, 0 when absent, -1 when malformed or too long. */
static int query_get(const rq_t *r, const char *name, char *out, size_t size)
{
    sy_str_t q = r->req->query;
    size_t nl = strlen(name), i = 0;
    while (i < q.len) {
        size_t end = i;
        while (end < q.len && q.ptr[end] != '&')
            end++;
        const char *eq = memchr(q.ptr + i, '=', end - i);
        size_t kl = eq ? (size_t)(eq - (q.ptr + i)) : end - i;
        if (kl == nl && memcmp(q.ptr + i, name, nl) == 0) {
            size_t o = 0;
            for (const char *p = eq ? eq + 1 : q.ptr + end; p < q.ptr + end; p++) {
                char c = *p;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    if (p + 2 >= q.ptr + end)
                        return -1;
                    int h = hexval(p[1]), l = hexval(p[2]);
                    if (h < 0 || l < 0)
                        return -1;
                    c = (char)(h * 16 + l);
                    p += 2;
                }
                if (c == '\0' || o + 1 >= size)
                    return -1;
                out[o++] = c;
            }
            out[o] = '\0';
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

/* Reads an optional query parameter into out ("" when absent); answers 400
 * naming it when malformed. */
static int query_param(rq_t *r, const char *name, char *out, size_t size)
{
    int rc = query_get(r, name, out, size);
    if (rc < 0) {
        BAD_FIELD(r, name, "invalid_value", "query parameter %s is malformed or too long", name);
        return -1;
    }
    if (rc == 0)
        out[0] = '\0';
    return 0;
}

typedef struct page {
    int64_t limit;           /* rows per page */
    char cursor[MAX_ID + 1]; /* last id of the previous page, "" for the first */
} page_t;

static int read_page(rq_t *r, page_t *pg)
{
    char v[64];
    if (query_param(r, "limit", v, sizeof(v)) != 0)
        return -1;
    pg->limit = DEFAULT_LIMIT;
    if (v[0]) {
        uint64_t n;
        if (sy_str_to_u64(sy_str_from_cstr(v), &n) != 0 || n < 1 || n > MAX_LIMIT) {
            BAD_FIELD(r, "limit", "invalid_value", "limit must be an integer from 1 to %d",
                      MAX_LIMIT);
            return -1;
        }
        pg->limit = (int64_t)n;
    }
    if (query_param(r, "cursor", pg->cursor, sizeof(pg->cursor)) != 0)
        return -1;
    if (pg->cursor[0] && !valid_id_chars(pg->cursor, strlen(pg->cursor))) {
        BAD_FIELD(r, "cursor", "invalid_value", "cursor is not one this API returned");
        return -1;
    }
    return 0;
}

/* Lists res rows matching where (with up to two text binds), a page at a time. */
static void list_rows(rq_t *r, const resource_t *res, const char *where, const char *b1,
                      const char *b2)
{
    page_t pg;
    if (read_page(r, &pg) != 0)
        return;
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT * FROM %s WHERE (%s) AND id > ? ORDER BY id LIMIT ?",
             res->table, where ? where : "1");
    sqlite3_stmt *st = NULL;
    if (prepare(r, sql, &st) != 0)
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
    char last[MAX_ID + 1] = "";
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == pg.limit) {
            more = true;
            break;
        }
        json_object *o = row_json(st, res->type);
        snprintf(last, sizeof(last), "%s", (const char *)sqlite3_column_text(st, 0));
        json_object_array_add(data, o);
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_object_put(data);
        db_error(r);
        return;
    }
    for (size_t i = 0; i < json_object_array_length(data); i++) {
        json_object *o = json_object_array_get_idx(data, i);
        if (decorate(r, res, o, str_member(o, "id")) != 0) {
            json_object_put(data);
            return;
        }
    }
    json_object *out = json_object_new_object();
    json_object_object_add(out, "object", json_object_new_string("list"));
    json_object_object_add(out, "data", data);
    json_object_object_add(out, "has_more", json_object_new_boolean(more));
    json_object_object_add(out, "next_cursor", more ? json_object_new_string(last) : NULL);
    reply_json(r, 200, out);
}

/* The list filter for tenant roles: their tenant's objects (and platform
 * objects when the resource shares those). */
static void list_scoped(rq_t *r, const resource_t *res)
{
    char tenant[MAX_ID + 1];
    if (query_param(r, "tenant_id", tenant, sizeof(tenant)) != 0)
        return;
    if (tenant[0] && res->owner_col == NULL) {
        BAD_FIELD(r, "tenant_id", "invalid_value", "%ss belong to no tenant: no tenant_id filter",
                  res->type);
        return;
    }
    if (is_platform(r)) {
        if (tenant[0])
            list_rows(r, res, "tenant_id = ?", tenant, NULL);
        else
            list_rows(r, res, NULL, NULL, NULL);
        return;
    }
    if (res->policy & P_PLATFORM_ONLY) {
        forbidden(r);
        return;
    }
    if (tenant[0] && strcmp(tenant, r->actor.tenant_id) != 0) {
        not_found(r, "tenant", tenant);
        return;
    }
    if (res->owner_col == NULL)
        list_rows(r, res, NULL, NULL, NULL);
    else if (res->policy & P_GLOBAL_READ)
        list_rows(r, res, "tenant_id = ? OR tenant_id IS NULL", r->actor.tenant_id, NULL);
    else
        list_rows(r, res, "tenant_id = ?", r->actor.tenant_id, NULL);
}

/* ------------------------------------------------------------------------ */
/* Handlers: generic get / delete */

static void get_obj(rq_t *r, const resource_t *res)
{
    json_object *o;
    char owner[MAX_ID + 1];
    if (load_checked(r, res, r->p[0], false, &o, owner) == 0)
        reply_json(r, 200, o);
}

/* Deletes object r->p[0] of res; `pre` (may be NULL) runs first inside the
 * transaction and may refuse (answering) by returning -1. */
static void delete_obj_with(rq_t *r, const resource_t *res, int (*pre)(rq_t *, const char *id))
{
    json_object *before;
    char owner[MAX_ID + 1];
    if (load_checked(r, res, r->p[0], true, &before, owner) != 0)
        return;
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", res->table);
    if (tx_begin(r) != 0 || (pre && pre(r, r->p[0]) != 0) || exec_id(r, sql, r->p[0]) != 0) {
        tx_abort(r);
        json_object_put(before);
        return;
    }
    if (tx_commit(r, "delete", res, r->p[0], owner, before, NULL) == 0) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "object", json_object_new_string(res->type));
        json_object_object_add(o, "id", json_object_new_string(r->p[0]));
        json_object_object_add(o, "deleted", json_object_new_boolean(true));
        reply_json(r, 200, o);
    }
    json_object_put(before);
}

static void delete_obj(rq_t *r, const resource_t *res)
{
    delete_obj_with(r, res, NULL);
}

/* Generic PATCH: validate, update columns (and extras), audit. */
static void patch_obj(rq_t *r, const resource_t *res, const extra_t *ex, size_t nex,
                      int (*more)(rq_t *, json_object *body, const char *id))
{
    json_object *before;
    char owner[MAX_ID + 1];
    if (load_checked(r, res, r->p[0], true, &before, owner) != 0)
        return;
    if (validate_obj(r, res, r->body, false, NULL) != 0) {
        json_object_put(before);
        return;
    }
    if (tx_begin(r) != 0) {
        json_object_put(before);
        return;
    }
    if (update_row(r, res, r->p[0], r->body, ex, nex) != 0 ||
        (more && more(r, r->body, r->p[0]) != 0)) {
        tx_abort(r);
        json_object_put(before);
        return;
    }
    json_object *after = NULL;
    if (load(r, res, r->p[0], &after, NULL, 0) != 1) {
        tx_abort(r);
        json_object_put(before);
        return;
    }
    if (tx_commit(r, "update", res, r->p[0], owner, before, after) == 0)
        reply_json(r, 200, json_object_get(after));
    json_object_put(after);
    json_object_put(before);
}

/* Generic create tail: load the new object, audit, answer 201 (with extra
 * members added to the response only, e.g. a secret shown once). */
static void finish_create(rq_t *r, const resource_t *res, const char *id, const char *owner,
                          const char *secret_name, const char *secret)
{
    json_object *after = NULL;
    if (load(r, res, id, &after, NULL, 0) != 1) {
        tx_abort(r);
        return;
    }
    if (tx_commit(r, "create", res, id, owner, NULL, after) == 0) {
        if (secret_name)
            json_object_object_add(after, secret_name, json_object_new_string(secret));
        reply_json(r, 201, json_object_get(after));
    }
    json_object_put(after);
}

/* ------------------------------------------------------------------------ */
/* Tenants */

static void h_tenants_list(rq_t *r)
{
    if (is_platform(r))
        list_rows(r, &R_TENANT, NULL, NULL, NULL);
    else
        list_rows(r, &R_TENANT, "id = ?", r->actor.tenant_id, NULL);
}

static void h_tenants_create(rq_t *r)
{
    if (!is_platform(r)) {
        forbidden(r);
        return;
    }
    if (validate_obj(r, &R_TENANT, r->body, true, NULL) != 0)
        return;
    char id[64];
    sy_store_new_id("ten", id, sizeof(id));
    if (tx_begin(r) != 0)
        return;
    if (insert_row(r, &R_TENANT, id, NULL, r->body, NULL, 0, true) != 0) {
        tx_abort(r);
        return;
    }
    finish_create(r, &R_TENANT, id, id, NULL, NULL);
}

static void h_tenant_get(rq_t *r)
{
    get_obj(r, &R_TENANT);
}

static void h_tenant_patch(rq_t *r)
{
    patch_obj(r, &R_TENANT, NULL, 0, NULL);
}

static void h_tenant_delete(rq_t *r)
{
    delete_obj(r, &R_TENANT);
}

/* Checks that tenant r->p[0] is visible (and writable when write). */
static int parent_tenant(rq_t *r, bool write, const resource_t *child)
{
    json_object *t;
    char owner[MAX_ID + 1];
    if (load_checked(r, &R_TENANT, r->p[0], false, &t, owner) != 0)
        return -1;
    json_object_put(t);
    if (write && !is_platform(r) &&
        (r->actor.role != ROLE_TENANT_ADMIN || !(child->policy & P_TENANT_WRITE))) {
        forbidden(r);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Teams */

static void h_teams_list(rq_t *r)
{
    if (parent_tenant(r, false, &R_TEAM) == 0)
        list_rows(r, &R_TEAM, "tenant_id = ?", r->p[0], NULL);
}

static void h_teams_create(rq_t *r)
{
    if (parent_tenant(r, true, &R_TEAM) != 0 || validate_obj(r, &R_TEAM, r->body, true, NULL) != 0)
        return;
    char id[64];
    sy_store_new_id("team", id, sizeof(id));
    if (tx_begin(r) != 0)
        return;
    if (insert_row(r, &R_TEAM, id, r->p[0], r->body, NULL, 0, true) != 0) {
        tx_abort(r);
        return;
    }
    finish_create(r, &R_TEAM, id, r->p[0], NULL, NULL);
}

static void h_team_get(rq_t *r)
{
    get_obj(r, &R_TEAM);
}

static void h_team_patch(rq_t *r)
{
    patch_obj(r, &R_TEAM, NULL, 0, NULL);
}

/* A team with live keys is not deleted (the keys would vanish with it);
 * revoked keys and the team's budgets go with the team. */
static int team_delete_pre(rq_t *r, const char *id)
{
    sqlite3_stmt *st = NULL;
    if (prepare(r, "SELECT count(*) FROM api_keys WHERE team_id = ? AND revoked_at = 0", &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int64_t live = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (live != 0) {
        reply_error(r, 409, "invalid_request_error", NULL, "team_has_keys",
                    "the team still has %lld live API keys; revoke them or move them to another "
                    "team first",
                    (long long)live);
        return -1;
    }
    return exec_id(r, "DELETE FROM budgets WHERE scope = 'team' AND scope_id = ?", id);
}

static void h_team_delete(rq_t *r)
{
    delete_obj_with(r, &R_TEAM, team_delete_pre);
}

/* ------------------------------------------------------------------------ */
/* API keys */

static int check_team(rq_t *r, json_object *body, const char *tenant)
{
    const char *team = str_member(body, "team_id");
    if (team != NULL && !exists(r, "teams", team, tenant)) {
        bad_reference(r, "team_id", "team in this tenant", team);
        return -1;
    }
    return 0;
}

/* ?prefix= finds a key from the display prefix that logs show. */
static void h_keys_list(rq_t *r)
{
    char prefix[32];
    if (parent_tenant(r, false, &R_KEY) != 0 ||
        query_param(r, "prefix", prefix, sizeof(prefix)) != 0)
        return;
    if (prefix[0])
        list_rows(r, &R_KEY, "tenant_id = ? AND prefix = ?", r->p[0], prefix);
    else
        list_rows(r, &R_KEY, "tenant_id = ?", r->p[0], NULL);
}

static void h_keys_create(rq_t *r)
{
    if (parent_tenant(r, true, &R_KEY) != 0 || validate_obj(r, &R_KEY, r->body, true, NULL) != 0 ||
        check_team(r, r->body, r->p[0]) != 0)
        return;
    char id[64], secret[80], prefix[16];
    unsigned char hash[32];
    sy_store_new_id("key", id, sizeof(id));
    if (sy_store_new_secret("sk-sy-", secret, sizeof(secret)) != 0) {
        reply_error(r, 500, "api_error", NULL, "internal_error", "no randomness available");
        return;
    }
    sy_store_hash_secret(secret, strlen(secret), hash);
    snprintf(prefix, sizeof(prefix), "%.12s", secret);
    extra_t ex[] = {{"sha256", hash, 32, NULL}, {"prefix", NULL, 0, prefix}};
    if (tx_begin(r) != 0)
        return;
    if (insert_row(r, &R_KEY, id, r->p[0], r->body, ex, 2, true) != 0) {
        tx_abort(r);
        return;
    }
    finish_create(r, &R_KEY, id, r->p[0], "secret", secret);
    /* The secret lived on the stack only; wipe it. */
    explicit_bzero(secret, sizeof(secret));
}

static void h_key_get(rq_t *r)
{
    get_obj(r, &R_KEY);
}

static int key_patch_more(rq_t *r, json_object *body, const char *id)
{
    SY_UNUSED(id);
    json_object *k;
    char owner[MAX_ID + 1];
    if (load(r, &R_KEY, r->p[0], &k, owner, sizeof(owner)) != 1)
        return -1;
    json_object_put(k);
    return check_team(r, body, owner);
}

static void h_key_patch(rq_t *r)
{
    patch_obj(r, &R_KEY, NULL, 0, key_patch_more);
}

/* DELETE revokes: the row stays (for usage and audit), revoked_at is set. */
static void h_key_revoke(rq_t *r)
{
    json_object *before;
    char owner[MAX_ID + 1];
    if (load_checked(r, &R_KEY, r->p[0], true, &before, owner) != 0)
        return;
    if (tx_begin(r) != 0) {
        json_object_put(before);
        return;
    }
    sqlite3_stmt *st = NULL;
    if (prepare(r,
                "UPDATE api_keys SET revoked_at = ?, updated_at = ? WHERE id = ? AND "
                "revoked_at = 0",
                &st) != 0) {
        tx_abort(r);
        json_object_put(before);
        return;
    }
    int64_t now = sy_store_now();
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, r->p[0], -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    json_object *after = NULL;
    if (rc != SQLITE_DONE || load(r, &R_KEY, r->p[0], &after, NULL, 0) != 1) {
        if (rc != SQLITE_DONE)
            db_error(r);
        tx_abort(r);
        json_object_put(before);
        return;
    }
    if (tx_commit(r, "revoke", &R_KEY, r->p[0], owner, before, after) == 0)
        reply_json(r, 200, json_object_get(after));
    json_object_put(after);
    json_object_put(before);
}

/* ------------------------------------------------------------------------ */
/* Providers */

static int check_base_url(rq_t *r, json_object *body)
{
    const char *u = str_member(body, "base_url");
    if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
        BAD_FIELD(r, "base_url", "invalid_value", "base_url must start with http:// or https://");
        return -1;
    }
    return 0;
}

/* Seals body.api_key for provider id into sealed; *has tells whether the body
 * sets it (null clears it). */
static int seal_api_key(rq_t *r, json_object *body, const char *id, sy_buf_t *sealed, bool *has)
{
    json_object *k = json_object_object_get(body, "api_key");
    *has = has_member(body, "api_key");
    if (k == NULL || json_object_is_type(k, json_type_null))
        return 0;
    if (sy_secrets_seal(r->a->master_key, id, json_object_get_string(k),
                        (size_t)json_object_get_string_len(k), sealed) != 0) {
        reply_error(r, 500, "api_error", "api_key", "internal_error", "cannot seal the api_key");
        return -1;
    }
    return 0;
}

static void h_providers_list(rq_t *r)
{
    list_scoped(r, &R_PROVIDER);
}

static void h_providers_create(rq_t *r)
{
    if (check_access(r, &R_PROVIDER, NULL, true, "") != 0 ||
        validate_obj(r, &R_PROVIDER, r->body, true, NULL) != 0 || check_base_url(r, r->body) != 0)
        return;
    char id[64];
    sy_store_new_id("prov", id, sizeof(id));
    sy_buf_t sealed;
    sy_buf_init(&sealed);
    bool has;
    if (seal_api_key(r, r->body, id, &sealed, &has) != 0)
        return;
    extra_t ex = {"credential", sealed.data, (int)sealed.len, NULL};
    if (tx_begin(r) == 0) {
        if (insert_row(r, &R_PROVIDER, id, NULL, r->body, &ex, sealed.len ? 1 : 0, true) != 0)
            tx_abort(r);
        else
            finish_create(r, &R_PROVIDER, id, NULL, NULL, NULL);
    }
    sy_buf_free(&sealed);
}

static void h_provider_get(rq_t *r)
{
    get_obj(r, &R_PROVIDER);
}

static void h_provider_patch(rq_t *r)
{
    if (check_access(r, &R_PROVIDER, NULL, true, r->p[0]) != 0 ||
        validate_obj(r, &R_PROVIDER, r->body, false, NULL) != 0 || check_base_url(r, r->body) != 0)
        return;
    sy_buf_t sealed;
    sy_buf_init(&sealed);
    bool has = false;
    if (seal_api_key(r, r->body, r->p[0], &sealed, &has) != 0)
        return;
    extra_t ex = {"credential", sealed.len ? sealed.data : NULL, (int)sealed.len, NULL};
    patch_obj(r, &R_PROVIDER, &ex, has ? 1 : 0, NULL);
    sy_buf_free(&sealed);
}

static void h_provider_delete(rq_t *r)
{
    delete_obj(r, &R_PROVIDER);
}

/* ------------------------------------------------------------------------ */
/* Models and prices */

static int write_prices(rq_t *r, json_object *body, const char *id, bool replace)
{
    json_object *prices = json_object_object_get(body, "prices");
    if (prices == NULL)
        return 0;
    size_t n = json_object_array_length(prices);
    char path[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "prices[%zu]", i);
        if (validate_obj(r, &R_PRICE, json_object_array_get_idx(prices, i), true, path) != 0)
            return -1;
    }
    if (replace && exec_id(r, "DELETE FROM model_prices WHERE model_id = ?", id) != 0)
        return -1;
    sqlite3_stmt *st = NULL;
    if (prepare(r,
                "INSERT OR REPLACE INTO model_prices (model_id, valid_from, input_per_mtok, "
                "output_per_mtok, cached_input_per_mtok, cache_write_per_mtok) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                &st) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(prices, i);
        int64_t from = 0;
        double v[4] = {0, 0, 0, 0};
        const char *names[4] = {"input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
                                "cache_write_per_mtok"};
        sy_json_get_int64(p, "valid_from", &from);
        for (int k = 0; k < 4; k++)
            sy_json_get_double(p, names[k], &v[k]);
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, from);
        for (int k = 0; k < 4; k++)
            sqlite3_bind_double(st, 3 + k, v[k]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            db_error(r);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

static int check_model_provider(rq_t *r, json_object *body)
{
    const char *p = str_member(body, "provider_id");
    if (p && !exists(r, "providers", p, NULL)) {
        BAD_FIELD(r, "provider_id", "invalid_value", "no provider %s", p);
        return -1;
    }
    return 0;
}

static void h_models_list(rq_t *r)
{
    list_scoped(r, &R_MODEL);
}

static void h_models_create(rq_t *r)
{
    if (!is_platform(r)) {
        forbidden(r);
        return;
    }
    if (validate_obj(r, &R_MODEL, r->body, true, NULL) != 0 ||
        check_model_provider(r, r->body) != 0)
        return;
    const char *id = str_member(r->body, "id");
    char idc[MAX_ID + 1];
    snprintf(idc, sizeof(idc), "%s", id);
    if (tx_begin(r) != 0)
        return;
    if (insert_row(r, &R_MODEL, idc, NULL, r->body, NULL, 0, true) != 0 ||
        write_prices(r, r->body, idc, false) != 0) {
        tx_abort(r);
        return;
    }
    finish_create(r, &R_MODEL, idc, NULL, NULL, NULL);
}

static void h_model_get(rq_t *r)
{
    get_obj(r, &R_MODEL);
}

static int model_patch_more(rq_t *r, json_object *body, const char *id)
{
    if (check_model_provider(r, body) != 0)
        return -1;
    return write_prices(r, body, id, true);
}

static void h_model_patch(rq_t *r)
{
    patch_obj(r, &R_MODEL, NULL, 0, model_patch_more);
}

static void h_model_delete(rq_t *r)
{
    delete_obj(r, &R_MODEL);
}

/* POST /models/{id}/prices: adds (or corrects) one dated price. */
static void h_model_price_add(rq_t *r)
{
    json_object *before;
    char owner[MAX_ID + 1];
    if (load_checked(r, &R_MODEL, r->p[0], true, &before, owner) != 0)
        return;
    if (validate_obj(r, &R_PRICE, r->body, true, NULL) != 0) {
        json_object_put(before);
        return;
    }
    json_object *wrap = json_object_new_object();
    json_object *arr = json_object_new_array();
    json_object_array_add(arr, json_object_get(r->body));
    json_object_object_add(wrap, "prices", arr);
    json_object *after = NULL;
    if (tx_begin(r) == 0) {
        if (write_prices(r, wrap, r->p[0], false) != 0 ||
            exec_id(r, "UPDATE models SET updated_at = strftime('%s','now') WHERE id = ?",
                    r->p[0]) != 0 ||
            load(r, &R_MODEL, r->p[0], &after, NULL, 0) != 1)
            tx_abort(r);
        else if (tx_commit(r, "update", &R_MODEL, r->p[0], NULL, before, after) == 0)
            reply_json(r, 201, json_object_get(after));
    }
    json_object_put(after);
    json_object_put(wrap);
    json_object_put(before);
}

/* ------------------------------------------------------------------------ */
/* Routes */

/* Validates and writes body.rules for route id (replacing old rules). */
static int write_rules(rq_t *r, json_object *body, const char *id)
{
    json_object *rules = json_object_object_get(body, "rules");
    if (rules == NULL)
        return 0;
    size_t n = json_object_array_length(rules);
    if (n == 0 || n > MAX_RULES) {
        BAD_FIELD(r, "rules", "invalid_value", "rules must hold 1 to %d rules", MAX_RULES);
        return -1;
    }
    char path[96];
    for (size_t i = 0; i < n; i++) {
        json_object *rule = json_object_array_get_idx(rules, i);
        snprintf(path, sizeof(path), "rules[%zu]", i);
        if (validate_obj(r, &R_RULE, rule, true, path) != 0)
            return -1;
        json_object *targets = json_object_object_get(rule, "targets");
        size_t nt = json_object_array_length(targets);
        if (nt == 0 || nt > MAX_TARGETS) {
            snprintf(path, sizeof(path), "rules[%zu].targets", i);
            BAD_FIELD(r, path, "invalid_value", "%s must hold 1 to %d targets", path, MAX_TARGETS);
            return -1;
        }
        for (size_t j = 0; j < nt; j++) {
            json_object *t = json_object_array_get_idx(targets, j);
            snprintf(path, sizeof(path), "rules[%zu].targets[%zu]", i, j);
            if (validate_obj(r, &R_TARGET, t, true, path) != 0)
                return -1;
            const char *model = str_member(t, "model_id");
            if (!exists(r, "models", model, NULL)) {
                snprintf(path, sizeof(path), "rules[%zu].targets[%zu].model_id", i, j);
                BAD_FIELD(r, path, "invalid_value", "no model %s", model);
                return -1;
            }
            const char *prov = str_member(t, "provider_id");
            if (prov && !exists(r, "providers", prov, NULL)) {
                snprintf(path, sizeof(path), "rules[%zu].targets[%zu].provider_id", i, j);
                BAD_FIELD(r, path, "invalid_value", "no provider %s", prov);
                return -1;
            }
        }
    }
    if (exec_id(r, "DELETE FROM route_rules WHERE route_id = ?", id) != 0)
        return -1;
    sqlite3_stmt *rs = NULL, *ts = NULL;
    if (prepare(r,
                "INSERT INTO route_rules (route_id, position, name, task, min_prompt_tokens, "
                "tenant_tier, latency_class, max_budget_remaining_fraction, strategy) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &rs) != 0)
        return -1;
    if (prepare(r,
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
        sqlite3_bind_text(rs, 3, (s = str_member(rule, "name")) ? s : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(rs, 4, (s = str_member(rule, "task")) ? s : "", -1, SQLITE_TRANSIENT);
        sy_json_get_int64(rule, "min_prompt_tokens", &x);
        sqlite3_bind_int64(rs, 5, x);
        sqlite3_bind_text(rs, 6, (s = str_member(rule, "tenant_tier")) ? s : "", -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_text(rs, 7, (s = str_member(rule, "latency_class")) ? s : "", -1,
                          SQLITE_TRANSIENT);
        sy_json_get_double(rule, "max_budget_remaining_fraction", &d);
        sqlite3_bind_double(rs, 8, d);
        sqlite3_bind_text(rs, 9, (s = str_member(rule, "strategy")) ? s : "priority", -1,
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
            bind_text(ts, 4, str_member(t, "provider_id"));
            sqlite3_bind_text(ts, 5, str_member(t, "model_id"), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ts, 6, w);
            if (sqlite3_step(ts) != SQLITE_DONE) {
                rc = -1;
                break;
            }
        }
    }
    if (rc != 0)
        db_error(r);
    sqlite3_finalize(rs);
    sqlite3_finalize(ts);
    return rc;
}

static void h_routes_list(rq_t *r)
{
    list_scoped(r, &R_ROUTE);
}

static void h_routes_create(rq_t *r)
{
    if (validate_obj(r, &R_ROUTE, r->body, true, NULL) != 0)
        return;
    const char *tenant = str_member(r->body, "tenant_id");
    if (!is_platform(r)) {
        /* Tenant routes default to the actor's tenant; platform routes are
         * for platform admins only. */
        if (has_member(r->body, "tenant_id") && tenant == NULL) {
            forbidden(r);
            return;
        }
        if (tenant == NULL)
            tenant = r->actor.tenant_id;
        if (check_access(r, &R_ROUTE, tenant, true, tenant) != 0)
            return;
    } else if (tenant && !exists(r, "tenants", tenant, NULL)) {
        BAD_FIELD(r, "tenant_id", "invalid_value", "no tenant %s", tenant);
        return;
    }
    char id[64], owner[MAX_ID + 1] = "";
    if (tenant)
        snprintf(owner, sizeof(owner), "%s", tenant);
    sy_store_new_id("route", id, sizeof(id));
    if (tx_begin(r) != 0)
        return;
    if (insert_row(r, &R_ROUTE, id, owner[0] ? owner : NULL, r->body, NULL, 0, true) != 0 ||
        write_rules(r, r->body, id) != 0) {
        tx_abort(r);
        return;
    }
    finish_create(r, &R_ROUTE, id, owner, NULL, NULL);
}

static void h_route_get(rq_t *r)
{
    get_obj(r, &R_ROUTE);
}

static void h_route_patch(rq_t *r)
{
    patch_obj(r, &R_ROUTE, NULL, 0, write_rules);
}

static void h_route_delete(rq_t *r)
{
    delete_obj(r, &R_ROUTE);
}

/* ------------------------------------------------------------------------ */
/* Budgets */

/* The tenant a budget's scope object belongs to; answers 400 when unknown
 * (or invisible to the actor, so nothing about other tenants leaks). */
static int budget_tenant(rq_t *r, json_object *body, char out[MAX_ID + 1])
{
    const char *scope = str_member(body, "scope"), *sid = str_member(body, "scope_id");
    const char *sql = strcmp(scope, "tenant") == 0 ? "SELECT id FROM tenants WHERE id = ?"
                      : strcmp(scope, "team") == 0 ? "SELECT tenant_id FROM teams WHERE id = ?"
                                                   : "SELECT tenant_id FROM api_keys WHERE id = ?";
    sqlite3_stmt *st = NULL;
    if (prepare(r, sql, &st) != 0)
        return -1;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_TRANSIENT);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found)
        snprintf(out, MAX_ID + 1, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!found || (!is_platform(r) && strcmp(out, r->actor.tenant_id) != 0)) {
        bad_reference(r, "scope_id", scope, sid);
        return -1;
    }
    return 0;
}

static void h_budgets_list(rq_t *r)
{
    list_scoped(r, &R_BUDGET);
}

static void h_budgets_create(rq_t *r)
{
    char tenant[MAX_ID + 1];
    if (validate_obj(r, &R_BUDGET, r->body, true, NULL) != 0 ||
        budget_tenant(r, r->body, tenant) != 0 ||
        check_access(r, &R_BUDGET, tenant, true, tenant) != 0)
        return;
    char id[64];
    sy_store_new_id("bud", id, sizeof(id));
    if (tx_begin(r) != 0)
        return;
    if (insert_row(r, &R_BUDGET, id, tenant, r->body, NULL, 0, true) != 0) {
        tx_abort(r);
        return;
    }
    finish_create(r, &R_BUDGET, id, tenant, NULL, NULL);
}

static void h_budget_get(rq_t *r)
{
    get_obj(r, &R_BUDGET);
}

static void h_budget_patch(rq_t *r)
{
    patch_obj(r, &R_BUDGET, NULL, 0, NULL);
}

static void h_budget_delete(rq_t *r)
{
    delete_obj(r, &R_BUDGET);
}

/* ------------------------------------------------------------------------ */
/* Admin users */

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

static void h_users_list(rq_t *r)
{
    list_scoped(r, &R_USER);
}

static void h_users_create(rq_t *r)
{
    if (validate_obj(r, &R_USER, r->body, true, NULL) != 0)
        return;
    const char *role = str_member(r->body, "role");
    const char *tenant = str_member(r->body, "tenant_id");
    bool platform_role = strcmp(role, "platform_admin") == 0;
    if (!is_platform(r) && tenant == NULL && !platform_role)
        tenant = r->actor.tenant_id;
    if (platform_role && tenant != NULL) {
        BAD_FIELD(r, "tenant_id", "invalid_value", "a platform_admin belongs to no tenant");
        return;
    }
    if (!platform_role && tenant == NULL) {
        BAD_FIELD(r, "tenant_id", "missing_field", "tenant_id is required for role %s", role);
        return;
    }
    if (platform_role && !is_platform(r)) {
        forbidden(r);
        return;
    }
    if (tenant != NULL) {
        if (check_access(r, &R_USER, tenant, true, tenant) != 0)
            return;
        if (!exists(r, "tenants", tenant, NULL)) {
            BAD_FIELD(r, "tenant_id", "invalid_value", "no tenant %s", tenant);
            return;
        }
    }
    char id[64], token[80], owner[MAX_ID + 1] = "";
    if (tenant)
        snprintf(owner, sizeof(owner), "%s", tenant);
    sy_store_new_id("user", id, sizeof(id));
    if (sy_store_new_secret("sya-", token, sizeof(token)) != 0) {
        reply_error(r, 500, "api_error", NULL, "internal_error", "no randomness available");
        return;
    }
    if (tx_begin(r) != 0)
        return;
    if (insert_row(r, &R_USER, id, owner[0] ? owner : NULL, r->body, NULL, 0, true) != 0) {
        tx_abort(r);
        return;
    }
    if (add_token(r->db, id, token) != 0) {
        db_error(r);
        tx_abort(r);
        return;
    }
    finish_create(r, &R_USER, id, owner, "token", token);
    explicit_bzero(token, sizeof(token));
}

static void h_user_get(rq_t *r)
{
    get_obj(r, &R_USER);
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
    reply_error(r, 409, "invalid_request_error", NULL, "last_platform_admin",
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
    delete_obj_with(r, &R_USER, user_delete_pre);
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
    patch_obj(r, &R_USER, NULL, 0, user_patch_more);
}

/* POST /users/{id}/tokens: a new token for the user, shown once; with
 * revoke_existing the user's other tokens stop working (rotation). */
static void h_user_token_create(rq_t *r)
{
    json_object *user;
    char owner[MAX_ID + 1];
    if (load_checked(r, &R_USER, r->p[0], true, &user, owner) != 0)
        return;
    json_object_put(user);
    if (validate_obj(r, &R_TOKEN, r->body, true, NULL) != 0)
        return;
    bool revoke = false;
    sy_json_get_bool(r->body, "revoke_existing", &revoke);
    char token[80];
    if (sy_store_new_secret("sya-", token, sizeof(token)) != 0) {
        reply_error(r, 500, "api_error", NULL, "internal_error", "no randomness available");
        return;
    }
    if (tx_begin(r) != 0)
        return;
    sqlite3_stmt *st = NULL;
    int64_t revoked = 0;
    if (revoke) {
        if (prepare(r,
                    "UPDATE admin_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0",
                    &st) != 0) {
            tx_abort(r);
            return;
        }
        sqlite3_bind_int64(st, 1, sy_store_now());
        sqlite3_bind_text(st, 2, r->p[0], -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            db_error(r);
            tx_abort(r);
            return;
        }
        revoked = sqlite3_changes(r->db);
        sqlite3_finalize(st);
    }
    if (add_token(r->db, r->p[0], token) != 0 ||
        prepare(r,
                "SELECT id, user_id, prefix, created_at, expires_at, revoked_at, last_used_at "
                "FROM admin_tokens WHERE user_id = ? ORDER BY id DESC LIMIT 1",
                &st) != 0) {
        if (st == NULL)
            db_error(r);
        tx_abort(r);
        explicit_bzero(token, sizeof(token));
        return;
    }
    sqlite3_bind_text(st, 1, r->p[0], -1, SQLITE_TRANSIENT);
    json_object *after = sqlite3_step(st) == SQLITE_ROW ? row_json(st, "admin_token") : NULL;
    sqlite3_finalize(st);
    if (after == NULL) {
        db_error(r);
        tx_abort(r);
        explicit_bzero(token, sizeof(token));
        return;
    }
    json_object_object_add(after, "revoked_others", json_object_new_int64(revoked));
    char tid[MAX_ID + 1];
    snprintf(tid, sizeof(tid), "%s", str_member(after, "id"));
    if (tx_commit(r, "create", &R_TOKEN, tid, owner, NULL, after) == 0) {
        json_object_object_add(after, "token", json_object_new_string(token));
        reply_json(r, 201, json_object_get(after));
    }
    json_object_put(after);
    explicit_bzero(token, sizeof(token));
}

/* ------------------------------------------------------------------------ */
/* Usage */

static const char *const usage_dims[] = {"tenant_id",   "team_id",  "key_id", "route",
                                         "provider_id", "model_id", NULL};
static const char *const usage_metrics[] = {"requests",           "errors",
                                            "prompt_tokens",      "completion_tokens",
                                            "cached_tokens",      "cache_write_tokens",
                                            "estimated_requests", NULL};

/* Parses unix seconds or an RFC 3339 UTC time ("2026-01-02T03:04:05Z" or a
 * date "2026-01-02"). */
static int parse_time(const char *s, int64_t *out)
{
    uint64_t n;
    if (sy_str_to_u64(sy_str_from_cstr(s), &n) == 0) {
        if (n > (uint64_t)INT64_MAX / 2)
            return -1;
        *out = (int64_t)n;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0') {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
        if (end == NULL || *end != '\0')
            return -1;
    }
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Maps a group_by name to its column ("tenant" and "tenant_id" both work). */
static const char *usage_dim(const char *name, size_t len)
{
    static const char *const short_names[] = {"tenant", "team",     "key",
                                              "route",  "provider", "model"};
    for (size_t i = 0; usage_dims[i]; i++) {
        if ((strlen(usage_dims[i]) == len && memcmp(usage_dims[i], name, len) == 0) ||
            (strlen(short_names[i]) == len && memcmp(short_names[i], name, len) == 0))
            return usage_dims[i];
    }
    return NULL;
}

static void h_usage(rq_t *r)
{
    char tenant[MAX_ID + 1], team[MAX_ID + 1], key[MAX_ID + 1], model[MAX_ID + 1];
    char from_s[64], to_s[64], group[256], gran[16];
    if (query_param(r, "tenant", tenant, sizeof(tenant)) != 0 ||
        query_param(r, "team", team, sizeof(team)) != 0 ||
        query_param(r, "key", key, sizeof(key)) != 0 ||
        query_param(r, "model", model, sizeof(model)) != 0 ||
        query_param(r, "from", from_s, sizeof(from_s)) != 0 ||
        query_param(r, "to", to_s, sizeof(to_s)) != 0 ||
        query_param(r, "group_by", group, sizeof(group)) != 0 ||
        query_param(r, "granularity", gran, sizeof(gran)) != 0)
        return;
    if (!is_platform(r)) {
        if (tenant[0] && strcmp(tenant, r->actor.tenant_id) != 0) {
            not_found(r, "tenant", tenant);
            return;
        }
        snprintf(tenant, sizeof(tenant), "%s", r->actor.tenant_id);
        /* A team or key of another tenant is as unknown as a missing one. */
        if (team[0] && !exists(r, "teams", team, tenant)) {
            not_found(r, "team", team);
            return;
        }
        if (key[0] && !exists(r, "api_keys", key, tenant)) {
            not_found(r, "key", key);
            return;
        }
    }
    int64_t from = 0, to = 4102444800; /* 2100-01-01 */
    if (from_s[0] && parse_time(from_s, &from) != 0) {
        BAD_FIELD(r, "from", "invalid_value", "from must be unix seconds or an RFC 3339 UTC time");
        return;
    }
    if (to_s[0] && parse_time(to_s, &to) != 0) {
        BAD_FIELD(r, "to", "invalid_value", "to must be unix seconds or an RFC 3339 UTC time");
        return;
    }
    if (to <= from) {
        BAD_FIELD(r, "to", "invalid_value", "to must be after from");
        return;
    }
    const char *dims[8];
    size_t nd = 0;
    bool by_bucket = false;
    for (const char *p = group; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 6 && memcmp(p, "bucket", 6) == 0) {
            by_bucket = true;
        } else {
            const char *d = usage_dim(p, len);
            if (d == NULL || nd == 6) {
                BAD_FIELD(r, "group_by", "invalid_value",
                          "group_by takes tenant, team, key, route, provider, model, bucket");
                return;
            }
            dims[nd++] = d;
        }
        p += len + (e ? 1 : 0);
    }
    /* The period as segments of rollup buckets. Asked for a granularity (or
     * grouped by bucket), one rollup whose buckets tile [from, to). Otherwise
     * whole days from the day rollup, whole hours around them from the hour
     * rollup and the minutes at the edges from the minute rollup: exact for
     * any whole-minute period, and a month costs ~30 day buckets, not 43,200
     * minute buckets, per group. */
    static const struct {
        const char *name;  /* granularity */
        const char *table; /* rollup table */
        int64_t step;      /* bucket width, seconds */
    } rollups[] = {
        {"minute", "usage_minute", 60}, {"hour", "usage_hour", 3600}, {"day", "usage_day", 86400}};
    struct {
        int g;          /* index in rollups */
        int64_t lo, hi; /* [lo, hi) */
    } segs[5];
    size_t ns = 0;
    if (gran[0] != '\0' || by_bucket) {
        int g = -1;
        for (int i = 0; i < 3 && gran[0]; i++)
            if (strcmp(gran, rollups[i].name) == 0)
                g = i;
        if (gran[0] && g < 0) {
            BAD_FIELD(r, "granularity", "invalid_value", "granularity must be minute, hour or day");
            return;
        }
        if (g < 0) /* grouped by bucket: the coarsest rollup that tiles the period */
            g = from % 86400 == 0 && to % 86400 == 0 ? 2
                : from % 3600 == 0 && to % 3600 == 0 ? 1
                                                     : 0;
        if (from % rollups[g].step != 0 || to % rollups[g].step != 0) {
            BAD_FIELD(r, "from", "invalid_value", "from and to must be multiples of the %s",
                      rollups[g].name);
            return;
        }
        segs[ns].g = g, segs[ns].lo = from, segs[ns].hi = to, ns++;
    } else {
        if (from % 60 != 0 || to % 60 != 0) {
            BAD_FIELD(r, "from", "invalid_value", "from and to must be whole minutes");
            return;
        }
        int64_t h1 = (from + 3599) / 3600 * 3600, h2 = to / 3600 * 3600;
        int64_t d1 = (h1 + 86399) / 86400 * 86400, d2 = h2 / 86400 * 86400;
        if (h1 >= h2) {
            segs[ns].g = 0, segs[ns].lo = from, segs[ns].hi = to, ns++;
        } else if (d1 >= d2) {
            segs[ns].g = 0, segs[ns].lo = from, segs[ns].hi = h1, ns++;
            segs[ns].g = 1, segs[ns].lo = h1, segs[ns].hi = h2, ns++;
            segs[ns].g = 0, segs[ns].lo = h2, segs[ns].hi = to, ns++;
        } else {
            segs[ns].g = 0, segs[ns].lo = from, segs[ns].hi = h1, ns++;
            segs[ns].g = 1, segs[ns].lo = h1, segs[ns].hi = d1, ns++;
            segs[ns].g = 2, segs[ns].lo = d1, segs[ns].hi = d2, ns++;
            segs[ns].g = 1, segs[ns].lo = d2, segs[ns].hi = h2, ns++;
            segs[ns].g = 0, segs[ns].lo = h2, segs[ns].hi = to, ns++;
        }
    }
    int used = -1; /* the one rollup read, or -2 for several */
    sy_buf_t sql;
    sy_buf_init(&sql);
    sy_buf_append_str(&sql, "SELECT ");
    if (by_bucket)
        sy_buf_append_str(&sql, "bucket, ");
    for (size_t i = 0; i < nd; i++)
        sy_buf_appendf(&sql, "%s, ", dims[i]);
    for (size_t i = 0; usage_metrics[i]; i++)
        sy_buf_appendf(&sql, "total(%s), ", usage_metrics[i]);
    sy_buf_append_str(&sql, "total(cost_usd) FROM (");
    bool first = true;
    for (size_t i = 0; i < ns; i++) {
        if (segs[i].lo >= segs[i].hi)
            continue;
        used = used == -1 || used == segs[i].g ? segs[i].g : -2;
        sy_buf_appendf(&sql, "%sSELECT * FROM %s WHERE bucket >= %lld AND bucket < %lld",
                       first ? "" : " UNION ALL ", rollups[segs[i].g].table, (long long)segs[i].lo,
                       (long long)segs[i].hi);
        if (tenant[0])
            sy_buf_append_str(&sql, " AND tenant_id = ?3");
        if (team[0])
            sy_buf_append_str(&sql, " AND team_id = ?4");
        if (key[0])
            sy_buf_append_str(&sql, " AND key_id = ?5");
        if (model[0])
            sy_buf_append_str(&sql, " AND model_id = ?6");
        first = false;
    }
    sy_buf_append_str(&sql, ")");
    snprintf(gran, sizeof(gran), "%s", used >= 0 ? rollups[used].name : "mixed");
    if (by_bucket || nd > 0) {
        sy_buf_append_str(&sql, " GROUP BY ");
        if (by_bucket)
            sy_buf_append_str(&sql, nd ? "bucket, " : "bucket");
        for (size_t i = 0; i < nd; i++)
            sy_buf_appendf(&sql, "%s%s", dims[i], i + 1 < nd ? ", " : "");
        sy_buf_append_str(&sql, " ORDER BY 1");
    }
    sy_buf_append_str(&sql, " LIMIT 10001");
    sqlite3_stmt *st = NULL;
    int prc = prepare(r, sql.data, &st);
    sy_buf_free(&sql);
    if (prc != 0)
        return;
    if (tenant[0])
        sqlite3_bind_text(st, 3, tenant, -1, SQLITE_TRANSIENT);
    if (team[0])
        sqlite3_bind_text(st, 4, team, -1, SQLITE_TRANSIENT);
    if (key[0])
        sqlite3_bind_text(st, 5, key, -1, SQLITE_TRANSIENT);
    if (model[0])
        sqlite3_bind_text(st, 6, model, -1, SQLITE_TRANSIENT);
    json_object *data = json_object_new_array();
    int64_t tot[8] = {0};
    double tot_cost = 0;
    int rc;
    size_t rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (++rows > 10000)
            break;
        json_object *o = json_object_new_object();
        int c = 0;
        if (by_bucket)
            json_object_object_add(o, "bucket",
                                   json_object_new_int64(sqlite3_column_int64(st, c++)));
        for (size_t i = 0; i < nd; i++, c++)
            json_object_object_add(
                o, dims[i], json_object_new_string((const char *)sqlite3_column_text(st, c)));
        int64_t total_tokens = 0;
        for (size_t i = 0; usage_metrics[i]; i++, c++) {
            int64_t v = (int64_t)sqlite3_column_double(st, c);
            tot[i] += v;
            if (strcmp(usage_metrics[i], "prompt_tokens") == 0 ||
                strcmp(usage_metrics[i], "completion_tokens") == 0)
                total_tokens += v;
            json_object_object_add(o, usage_metrics[i], json_object_new_int64(v));
        }
        json_object_object_add(o, "total_tokens", json_object_new_int64(total_tokens));
        double cost = sqlite3_column_double(st, c);
        tot_cost += cost;
        json_object_object_add(o, "cost_usd", new_double(cost));
        json_object_array_add(data, o);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_object_put(data);
        db_error(r);
        return;
    }
    if (rows > 10000) {
        json_object_put(data);
        BAD_FIELD(r, "group_by", "too_many_groups",
                  "more than 10000 groups; narrow the period or the grouping");
        return;
    }
    json_object *totals = json_object_new_object();
    for (size_t i = 0; usage_metrics[i]; i++)
        json_object_object_add(totals, usage_metrics[i], json_object_new_int64(tot[i]));
    json_object_object_add(totals, "total_tokens", json_object_new_int64(tot[2] + tot[3]));
    json_object_object_add(totals, "cost_usd", new_double(tot_cost));
    /* Totals are the sum over the groups, which with no grouping is the one row. */
    json_object *out = json_object_new_object();
    json_object_object_add(out, "object", json_object_new_string("usage"));
    json_object_object_add(out, "from", json_object_new_int64(from));
    json_object_object_add(out, "to", json_object_new_int64(to));
    json_object_object_add(out, "granularity", json_object_new_string(gran));
    json_object_object_add(out, "totals", totals);
    json_object_object_add(out, "data", data);
    reply_json(r, 200, out);
}

/* ------------------------------------------------------------------------ */
/* Audit, stats, meta */

static void h_audit(rq_t *r)
{
    char cursor[32], type[64], oid[MAX_ID + 1], tenant[MAX_ID + 1], lim[16];
    if (query_param(r, "cursor", cursor, sizeof(cursor)) != 0 ||
        query_param(r, "object_type", type, sizeof(type)) != 0 ||
        query_param(r, "object_id", oid, sizeof(oid)) != 0 ||
        query_param(r, "tenant_id", tenant, sizeof(tenant)) != 0 ||
        query_param(r, "limit", lim, sizeof(lim)) != 0)
        return;
    uint64_t limit = DEFAULT_LIMIT, cur = (uint64_t)INT64_MAX;
    if (lim[0] &&
        (sy_str_to_u64(sy_str_from_cstr(lim), &limit) != 0 || limit < 1 || limit > MAX_LIMIT)) {
        BAD_FIELD(r, "limit", "invalid_value", "limit must be an integer from 1 to %d", MAX_LIMIT);
        return;
    }
    if (cursor[0] && sy_str_to_u64(sy_str_from_cstr(cursor), &cur) != 0) {
        BAD_FIELD(r, "cursor", "invalid_value", "cursor is not one this API returned");
        return;
    }
    if (!is_platform(r)) {
        if (tenant[0] && strcmp(tenant, r->actor.tenant_id) != 0) {
            not_found(r, "tenant", tenant);
            return;
        }
        snprintf(tenant, sizeof(tenant), "%s", r->actor.tenant_id);
    }
    sqlite3_stmt *st = NULL;
    if (prepare(r,
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
    json_object *out = json_object_new_object();
    json_object_object_add(out, "object", json_object_new_string("list"));
    json_object_object_add(out, "data", data);
    json_object_object_add(out, "has_more", json_object_new_boolean(more));
    char nc[32];
    snprintf(nc, sizeof(nc), "%lld", (long long)last);
    json_object_object_add(out, "next_cursor", more ? json_object_new_string(nc) : NULL);
    reply_json(r, 200, out);
}

static void h_stats(rq_t *r)
{
    if (!is_platform(r)) {
        forbidden(r);
        return;
    }
    sy_buf_t *b = &r->res->body;
    sy_buf_reset(b);
    sy_buf_append_str(b, "{\"object\":\"stats\",\"cluster\":");
    if (r->a->cluster == NULL || sy_cluster_stats_json(r->a->cluster, b) != 0)
        sy_buf_append_str(b, "null");
    sqlite3_stmt *st = NULL;
    static const char *const counts[] = {"tenants", "teams",   "api_keys",    "providers", "models",
                                         "routes",  "budgets", "admin_users", "audit_log"};
    sy_buf_append_str(b, ",\"objects\":{");
    for (size_t i = 0; i < SY_ARRAY_LEN(counts); i++) {
        char sql[96];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", counts[i]);
        int64_t n = -1;
        if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sy_buf_appendf(b, "%s\"%s\":%lld", i ? "," : "", counts[i], (long long)n);
    }
    sy_buf_append_str(b, "}}");
    r->res->status = 200;
}

static void h_me(rq_t *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "object", json_object_new_string("me"));
    json_object_object_add(o, "user_id", json_object_new_string(r->actor.user_id));
    json_object_object_add(o, "role", json_object_new_string(role_names[r->actor.role]));
    json_object_object_add(
        o, "tenant_id", r->actor.tenant_id[0] ? json_object_new_string(r->actor.tenant_id) : NULL);
    reply_json(r, 200, o);
}

static void h_openapi(rq_t *r)
{
    sy_buf_reset(&r->res->body);
    if (sy_admin_openapi(&r->res->body) != 0)
        reply_error(r, 500, "api_error", NULL, "internal_error", "out of memory");
}

static void h_health(rq_t *r)
{
    sy_buf_reset(&r->res->body);
    sy_buf_append_str(&r->res->body, "{\"status\":\"ok\"}");
}

/* ------------------------------------------------------------------------ */
/* The route table: the dispatcher and the OpenAPI document both read it. */

typedef enum kind {
    K_LIST,   /* paginated list of res */
    K_CREATE, /* body <Schema>Create, answers 201 res */
    K_GET,    /* one res */
    K_UPDATE, /* body <Schema>Update, answers res */
    K_DELETE, /* answers Deleted (or res for key revocation) */
    K_OTHER,  /* documented by schema name in `out` */
} kind_t;

#define A_NONE 1u /* no authentication */
#define A_BODY 2u /* takes a JSON body */

typedef struct route {
    const char *method;    /* HTTP method */
    const char *path;      /* template under PREFIX, "{x}" a parameter */
    void (*fn)(rq_t *);    /* handler */
    kind_t kind;           /* documentation shape */
    const resource_t *res; /* resource documented (NULL for K_OTHER) */
    const char *out;       /* K_OTHER: response schema name */
    unsigned flags;        /* A_* */
    const char *summary;   /* one line */
    const char *op;        /* operationId */
} route_t;

static const route_t routes[] = {
    {"GET", "/tenants", h_tenants_list, K_LIST, &R_TENANT, NULL, 0, "List tenants", "listTenants"},
    {"POST", "/tenants", h_tenants_create, K_CREATE, &R_TENANT, NULL, A_BODY, "Create a tenant",
     "createTenant"},
    {"GET", "/tenants/{id}", h_tenant_get, K_GET, &R_TENANT, NULL, 0, "Get a tenant", "getTenant"},
    {"PATCH", "/tenants/{id}", h_tenant_patch, K_UPDATE, &R_TENANT, NULL, A_BODY, "Update a tenant",
     "updateTenant"},
    {"DELETE", "/tenants/{id}", h_tenant_delete, K_DELETE, &R_TENANT, NULL, 0,
     "Delete a tenant with everything it owns", "deleteTenant"},
    {"GET", "/tenants/{id}/teams", h_teams_list, K_LIST, &R_TEAM, NULL, 0, "List a tenant's teams",
     "listTeams"},
    {"POST", "/tenants/{id}/teams", h_teams_create, K_CREATE, &R_TEAM, NULL, A_BODY,
     "Create a team", "createTeam"},
    {"GET", "/teams/{id}", h_team_get, K_GET, &R_TEAM, NULL, 0, "Get a team", "getTeam"},
    {"PATCH", "/teams/{id}", h_team_patch, K_UPDATE, &R_TEAM, NULL, A_BODY, "Update a team",
     "updateTeam"},
    {"DELETE", "/teams/{id}", h_team_delete, K_DELETE, &R_TEAM, NULL, 0, "Delete a team",
     "deleteTeam"},
    {"GET", "/tenants/{id}/keys", h_keys_list, K_LIST, &R_KEY, NULL, 0, "List a tenant's API keys",
     "listKeys"},
    {"POST", "/tenants/{id}/keys", h_keys_create, K_CREATE, &R_KEY, NULL, A_BODY,
     "Create an API key; the secret is returned once", "createKey"},
    {"GET", "/keys/{id}", h_key_get, K_GET, &R_KEY, NULL, 0, "Get an API key", "getKey"},
    {"PATCH", "/keys/{id}", h_key_patch, K_UPDATE, &R_KEY, NULL, A_BODY, "Update an API key",
     "updateKey"},
    {"DELETE", "/keys/{id}", h_key_revoke, K_DELETE, &R_KEY, NULL, 0, "Revoke an API key",
     "revokeKey"},
    {"GET", "/providers", h_providers_list, K_LIST, &R_PROVIDER, NULL, 0, "List providers",
     "listProviders"},
    {"POST", "/providers", h_providers_create, K_CREATE, &R_PROVIDER, NULL, A_BODY,
     "Create a provider", "createProvider"},
    {"GET", "/providers/{id}", h_provider_get, K_GET, &R_PROVIDER, NULL, 0, "Get a provider",
     "getProvider"},
    {"PATCH", "/providers/{id}", h_provider_patch, K_UPDATE, &R_PROVIDER, NULL, A_BODY,
     "Update a provider", "updateProvider"},
    {"DELETE", "/providers/{id}", h_provider_delete, K_DELETE, &R_PROVIDER, NULL, 0,
     "Delete a provider", "deleteProvider"},
    {"GET", "/models", h_models_list, K_LIST, &R_MODEL, NULL, 0, "List models", "listModels"},
    {"POST", "/models", h_models_create, K_CREATE, &R_MODEL, NULL, A_BODY, "Create a model",
     "createModel"},
    {"GET", "/models/{id}", h_model_get, K_GET, &R_MODEL, NULL, 0, "Get a model", "getModel"},
    {"PATCH", "/models/{id}", h_model_patch, K_UPDATE, &R_MODEL, NULL, A_BODY, "Update a model",
     "updateModel"},
    {"DELETE", "/models/{id}", h_model_delete, K_DELETE, &R_MODEL, NULL, 0, "Delete a model",
     "deleteModel"},
    {"POST", "/models/{id}/prices", h_model_price_add, K_OTHER, &R_PRICE, "Model", A_BODY,
     "Add a dated price to a model", "addModelPrice"},
    {"GET", "/routes", h_routes_list, K_LIST, &R_ROUTE, NULL, 0, "List routes", "listRoutes"},
    {"POST", "/routes", h_routes_create, K_CREATE, &R_ROUTE, NULL, A_BODY, "Create a route",
     "createRoute"},
    {"GET", "/routes/{id}", h_route_get, K_GET, &R_ROUTE, NULL, 0, "Get a route", "getRoute"},
    {"PATCH", "/routes/{id}", h_route_patch, K_UPDATE, &R_ROUTE, NULL, A_BODY, "Update a route",
     "updateRoute"},
    {"DELETE", "/routes/{id}", h_route_delete, K_DELETE, &R_ROUTE, NULL, 0, "Delete a route",
     "deleteRoute"},
    {"GET", "/budgets", h_budgets_list, K_LIST, &R_BUDGET, NULL, 0, "List budgets", "listBudgets"},
    {"POST", "/budgets", h_budgets_create, K_CREATE, &R_BUDGET, NULL, A_BODY, "Create a budget",
     "createBudget"},
    {"GET", "/budgets/{id}", h_budget_get, K_GET, &R_BUDGET, NULL, 0, "Get a budget", "getBudget"},
    {"PATCH", "/budgets/{id}", h_budget_patch, K_UPDATE, &R_BUDGET, NULL, A_BODY, "Update a budget",
     "updateBudget"},
    {"DELETE", "/budgets/{id}", h_budget_delete, K_DELETE, &R_BUDGET, NULL, 0, "Delete a budget",
     "deleteBudget"},
    {"GET", "/users", h_users_list, K_LIST, &R_USER, NULL, 0, "List admin users", "listUsers"},
    {"POST", "/users", h_users_create, K_CREATE, &R_USER, NULL, A_BODY,
     "Create an admin user; its token is returned once", "createUser"},
    {"GET", "/users/{id}", h_user_get, K_GET, &R_USER, NULL, 0, "Get an admin user", "getUser"},
    {"PATCH", "/users/{id}", h_user_patch, K_UPDATE, &R_USER, NULL, A_BODY,
     "Update an admin user (rename, disable)", "updateUser"},
    {"POST", "/users/{id}/tokens", h_user_token_create, K_OTHER, &R_TOKEN, "AdminToken", A_BODY,
     "Issue a new admin token for a user (shown once), optionally revoking the others",
     "createUserToken"},
    {"DELETE", "/users/{id}", h_user_delete, K_DELETE, &R_USER, NULL, 0,
     "Delete an admin user and its tokens", "deleteUser"},
    {"GET", "/usage", h_usage, K_OTHER, NULL, "Usage", 0,
     "Usage (tokens and cost) by tenant, team, key, model and period", "getUsage"},
    {"GET", "/audit", h_audit, K_OTHER, NULL, "AuditList", 0, "The audit log, newest first",
     "listAudit"},
    {"GET", "/stats", h_stats, K_OTHER, NULL, "Stats", 0,
     "Cluster counters (snapshots, reports, rejected messages)", "getStats"},
    {"GET", "/me", h_me, K_OTHER, NULL, "Me", 0, "The caller's identity and role", "getMe"},
    {"GET", "/openapi.json", h_openapi, K_OTHER, NULL, "OpenAPI", A_NONE, "This document",
     "getOpenAPI"},
    {"GET", "/healthz", h_health, K_OTHER, NULL, "Health", A_NONE, "Liveness", "getHealth"},
};

bool sy_admin_route_at(size_t i, const char **method, const char **path)
{
    static char full[SY_ARRAY_LEN(routes)][128];
    if (i >= SY_ARRAY_LEN(routes))
        return false;
    if (full[i][0] == '\0')
        snprintf(full[i], sizeof(full[i]), PREFIX "%s", routes[i].path);
    *method = routes[i].method;
    *path = full[i];
    return true;
}

/* Matches path (under PREFIX) against a template, capturing parameters. */
static bool match(const char *tpl, sy_str_t path, char params[2][MAX_ID + 1], bool *bad_param)
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
                if (!valid_id_chars(path.ptr + start, len)) {
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

/* ------------------------------------------------------------------------ */
/* Authentication */

static int authenticate(rq_t *r)
{
    sy_str_t a = r->req->authorization;
    if (a.len < 8 || !sy_str_case_eq_cstr((sy_str_t){a.ptr, 7}, "bearer ")) {
        reply_error(r, 401, "authentication_error", NULL, "missing_token",
                    "send an admin token as Authorization: Bearer <token>");
        return -1;
    }
    sy_str_t tok = sy_str_trim((sy_str_t){a.ptr + 7, a.len - 7});
    unsigned char hash[32];
    sy_store_hash_secret(tok.ptr, tok.len, hash);
    sqlite3_stmt *st = NULL;
    if (prepare(r,
                "SELECT u.id, u.role, u.tenant_id FROM admin_tokens t JOIN admin_users u "
                "ON u.id = t.user_id WHERE t.sha256 = ? AND t.revoked_at = 0 AND "
                "(t.expires_at = 0 OR t.expires_at > ?) AND u.disabled = 0",
                &st) != 0)
        return -1;
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, sy_store_now());
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        reply_error(r, 401, "authentication_error", NULL, "invalid_token",
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
        !sy_str_has_prefix(path, PREFIX) && (path.len == 6 || path.ptr[6] == '/')) {
        if (sy_webfiles_serve(r.a->web_dir, path, res) != 0)
            reply_error(&r, 404, "invalid_request_error", NULL, "not_found",
                        "no such admin-web file");
        return;
    }
    if (path.len > 1 && path.ptr[path.len - 1] == '/')
        path.len--;
    if (!sy_str_has_prefix(path, PREFIX "/")) {
        reply_error(&r, 404, "invalid_request_error", NULL, "unknown_route",
                    "no such endpoint; the admin API lives under " PREFIX "/");
        return;
    }
    sy_str_t sub = {path.ptr + strlen(PREFIX), path.len - strlen(PREFIX)};
    const route_t *found = NULL;
    bool path_known = false, bad_param = false;
    for (size_t i = 0; i < SY_ARRAY_LEN(routes); i++) {
        char params[2][MAX_ID + 1];
        bool bad = false;
        if (!match(routes[i].path, sub, params, &bad))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, req->method) != 0)
            continue;
        found = &routes[i];
        bad_param = bad;
        memcpy(r.p, params, sizeof(params));
        break;
    }
    if (found == NULL) {
        if (path_known)
            reply_error(&r, 405, "invalid_request_error", NULL, "method_not_allowed",
                        "method %s is not allowed here", req->method);
        else
            reply_error(&r, 404, "invalid_request_error", NULL, "unknown_route",
                        "no such endpoint: %.*s", (int)(path.len > 200 ? 200 : path.len), path.ptr);
        return;
    }
    if (!(found->flags & A_NONE) && authenticate(&r) != 0)
        return;
    if (bad_param) {
        reply_error(&r, 404, "not_found_error", NULL, "not_found", "no such object");
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
        reply_error(&r, 500, "api_error", NULL, "internal_error", "internal error");
    }
    /* A handler that failed half-way never leaves a transaction open. */
    sy_store_rollback(r.a->store);
}

/* ------------------------------------------------------------------------ */
/* Bootstrap */

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
    char uid[64] = "";
    /* Reuse the user "admin" when it exists (a new env token for it). */
    if (sqlite3_prepare_v2(db,
                           "SELECT id FROM admin_users WHERE name = 'admin' AND "
                           "role = 'platform_admin'",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(uid, sizeof(uid), "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    int rc = 0;
    if (uid[0] == '\0') {
        sy_store_new_id("user", uid, sizeof(uid));
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO admin_users (id, name, role, created_at) VALUES "
                               "(?, CASE WHEN EXISTS (SELECT 1 FROM admin_users WHERE name = "
                               "'admin') THEN 'admin-' || ?1 ELSE 'admin' END, "
                               "'platform_admin', ?)",
                               -1, &st, NULL) != SQLITE_OK)
            rc = SY_EIO;
        else {
            sqlite3_bind_text(st, 1, uid, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, sy_store_now());
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = SY_EIO;
            sqlite3_finalize(st);
        }
    }
    if (rc == 0)
        rc = add_token(db, uid, token);
    if (rc == 0) {
        sqlite3_stmt *au = NULL;
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO audit_log (ts_ms, actor_id, actor_role, action, "
                               "object_type, object_id, after) VALUES (?, 'system', 'system', "
                               "'create', 'admin_token', ?, '{\"bootstrap\":true}')",
                               -1, &au, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(au, 1, sy_store_now_ms());
            sqlite3_bind_text(au, 2, uid, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(au) != SQLITE_DONE)
                rc = SY_EIO;
        } else {
            rc = SY_EIO;
        }
        sqlite3_finalize(au);
    }
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

/* ------------------------------------------------------------------------ */
/* Lifecycle */

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

/* ------------------------------------------------------------------------ */
/* OpenAPI 3.1, generated from the route table and the field tables. */

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
        json_object_object_add(s, "maxLength",
                               json_object_new_int64(f->max > 0 ? (int64_t)f->max : MAX_STR));
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
            find_field(res, res->owner_col) == NULL) {
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
    if (res == &R_PROVIDER && mode == 2) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "type", jstr("boolean"));
        json_object_object_add(props, "has_api_key", t);
    }
    if (res == &R_KEY && mode == 2) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "type", jstr("string"));
        json_object_object_add(t, "description", jstr("display prefix of the secret"));
        json_object_object_add(props, "prefix", t);
        t = json_object_new_object();
        json_object_object_add(t, "type", jstr("string"));
        json_object_object_add(t, "description", jstr("the key itself, only in the create answer"));
        json_object_object_add(props, "secret", t);
    }
    if (res == &R_USER && mode == 2) {
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
        if (rt->fn == h_keys_list)
            json_object_array_add(params, param("prefix", "query", false, "string",
                                                "the key's display prefix, as logged"));
        if (strchr(rt->path + 1, '/') == NULL && rt->res->owner_col &&
            strcmp(rt->res->owner_col, "tenant_id") == 0)
            json_object_array_add(params, param("tenant_id", "query", false, "string", NULL));
    }
    if (rt->fn == h_usage) {
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
    if (rt->fn == h_audit) {
        const char *q[] = {"limit", "cursor", "tenant_id", "object_type", "object_id"};
        for (int i = 0; i < 5; i++)
            json_object_array_add(params,
                                  param(q[i], "query", false, i ? "string" : "integer", NULL));
    }
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
        json_object_object_add(resp, "200",
                               response(rt->res == &R_KEY ? "the revoked key" : "deleted",
                                        rt->res == &R_KEY ? "ApiKey" : "Deleted"));
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
    json_object *paths = json_object_new_object();
    for (size_t i = 0; i < SY_ARRAY_LEN(routes); i++) {
        char full[160], m[16];
        snprintf(full, sizeof(full), PREFIX "%s", routes[i].path);
        json_object *item = json_object_object_get(paths, full);
        if (item == NULL) {
            item = json_object_new_object();
            json_object_object_add(paths, full, item);
        }
        lower(routes[i].method, m, sizeof(m));
        json_object_object_add(item, m, operation(&routes[i]));
    }
    json_object_object_add(doc, "paths", paths);
    json_object *comp = json_object_new_object(), *schemas = json_object_new_object();
    for (size_t i = 0; i < SY_ARRAY_LEN(all_resources); i++) {
        const resource_t *res = all_resources[i];
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
    json_object_object_add(comp, "schemas", schemas);
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
