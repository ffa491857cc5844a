/* What the admin*.c files share: the request, the resource model, the route
 * table entries and the helpers every handler uses. Private to
 * controlplane/admin*.c (like SQLite's sqliteInt.h): the short type, enum and
 * flag names below never leave the module, and every function here is
 * sy_admin__*, the module-internal spelling.
 *
 * The helpers that answer (reply_*, validation, access checks, anything
 * taking rq_t and returning -1) have written the whole response when they
 * fail; the caller just returns. */
#ifndef SY_ADMIN_INTERNAL_H
#define SY_ADMIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include <json-c/json.h>

#include "admin.h"
#include "json.h"

#define SY_ADMIN_PREFIX "/admin/v1"
#define SY_ADMIN_MAX_ID 128
#define SY_ADMIN_DEFAULT_LIMIT 100
#define SY_ADMIN_MAX_LIMIT 1000
#define SY_ADMIN_MAX_STR 256

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

extern const char *const sy_admin__role_names[]; /* by role_t, NULL-terminated */

typedef struct actor {
    char user_id[SY_ADMIN_MAX_ID + 1];   /* the admin user */
    role_t role;                         /* its role */
    char tenant_id[SY_ADMIN_MAX_ID + 1]; /* its tenant, empty for a platform admin */
} actor_t;

struct route;

typedef struct rq {
    sy_admin_t *a;                  /* borrowed */
    const struct route *route;      /* borrowed; the route being served */
    sqlite3 *db;                    /* borrowed; the store's connection */
    const sy_httpd_request_t *req;  /* borrowed; valid during the request */
    sy_httpd_response_t *res;       /* borrowed; what we fill */
    actor_t actor;                  /* who is asking */
    char p[2][SY_ADMIN_MAX_ID + 1]; /* path parameters, in template order */
    json_object *body;              /* owned; parsed body of POST/PATCH, NULL otherwise */
} rq_t;

#define SY_ADMIN_BAD_FIELD(r, field, code, ...)                                                    \
    sy_admin__reply_error(r, 400, "invalid_request_error", field, code, __VA_ARGS__)

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

/* A body field of a resource. The field, resource and route tables are
 * static constants: every pointer in them is borrowed and lives forever. */
typedef struct field {
    const char *name;         /* JSON member and column name */
    ftype_t type;             /* accepted JSON type */
    unsigned flags;           /* F_* */
    const char *const *enums; /* T_ENUM: NULL-terminated accepted values */
    double max;      /* T_STR: max length (0 = SY_ADMIN_MAX_STR); numbers: max value (0 = none) */
    const char *doc; /* one line for the OpenAPI document */
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

/* A column value beside the body's fields (hashes, sealed credentials);
 * its pointers are borrowed for the call that writes it. */
typedef struct extra {
    const char *col;  /* column */
    const void *blob; /* BLOB value when non-NULL */
    int blen;         /* its length */
    const char *text; /* TEXT value (used when blob is NULL); NULL binds NULL */
} extra_t;

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
    const char *path;      /* template under SY_ADMIN_PREFIX, "{x}" a parameter */
    void (*fn)(rq_t *);    /* handler */
    kind_t kind;           /* documentation shape */
    const resource_t *res; /* resource documented (NULL for K_OTHER) */
    const char *out;       /* K_OTHER: response schema name */
    unsigned flags;        /* A_* */
    const char *summary;   /* one line */
    const char *op;        /* operationId */
} route_t;

/* The resources (admin_resources.c). */
extern const resource_t sy_admin__res_tenant, sy_admin__res_team, sy_admin__res_key,
    sy_admin__res_provider, sy_admin__res_model, sy_admin__res_route, sy_admin__res_budget,
    sy_admin__res_user;
/* Sub-objects: only for validation, audit and the OpenAPI document. */
extern const resource_t sy_admin__res_token, sy_admin__res_price, sy_admin__res_rule,
    sy_admin__res_target;
/* Every resource, in OpenAPI schema order; NULL-terminated. */
extern const resource_t *const sy_admin__resources[];

/* Each concern's routes, terminated by an entry with a NULL method; admin.c
 * chains them in this order, which is also the OpenAPI document's order. */
extern const route_t sy_admin__tenants_routes[], sy_admin__keys_routes[],
    sy_admin__providers_routes[], sy_admin__models_routes[], sy_admin__routes_routes[],
    sy_admin__budgets_routes[], sy_admin__users_routes[], sy_admin__usage_routes[],
    sy_admin__audit_routes[], sy_admin__meta_routes[];

/* The i-th route of the whole table, NULL past the end. */
const route_t *sy_admin__route(size_t i);

/* ------------------------------------------------------------------------ */
/* Replies (admin.c). Each answers the request; callers then return. */

void sy_admin__reply_error(rq_t *r, int status, const char *type, const char *param,
                           const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

void sy_admin__not_found(rq_t *r, const char *what, const char *id);

/* A body field names an object the actor cannot use: 400 for a platform
 * admin (it does not exist), 404 for tenant roles, for whom an object of
 * another tenant and a missing one must look the same. */
void sy_admin__bad_reference(rq_t *r, const char *field, const char *what, const char *id);

void sy_admin__forbidden(rq_t *r);

void sy_admin__db_error(rq_t *r);

/* Serializes o (consumed) as the response with status. */
void sy_admin__reply_json(rq_t *r, int status, json_object *o);

/* ------------------------------------------------------------------------ */
/* Roles and access (admin.c) */

bool sy_admin__is_platform(const rq_t *r);

/* Decides whether the actor may read (write=false) or change an object of res
 * owned by tenant owner (NULL: no tenant). Returns 0 when allowed; otherwise
 * answers 404 (the object is not visible to the actor, so its existence is
 * not disclosed) or 403 (visible but not writable) and returns -1. */
/* Applies the actor's scope to a tenant filter ("" = all): a tenant role
 * gets its own tenant, and naming another answers 404 (as unknown as a
 * missing one). 0, or -1 after answering. */
int sy_admin__tenant_filter(rq_t *r, char tenant[SY_ADMIN_MAX_ID + 1]);

int sy_admin__check_access(rq_t *r, const resource_t *res, const char *owner, bool write,
                           const char *id);

/* ------------------------------------------------------------------------ */
/* The resource model and body validation (admin_resources.c) */

const field_t *sy_admin__find_field(const resource_t *res, const char *name);

bool sy_admin__valid_id_chars(const char *s, size_t len);

/* Validates obj against res: an object, no unknown members, types and
 * ranges, required members on create, only updatable members otherwise.
 * prefix names the object's place for nested objects ("rules[2]"). */
int sy_admin__validate_obj(rq_t *r, const resource_t *res, json_object *obj, bool create,
                           const char *prefix);

/* True when o has member k, even one whose value is null (json-c hands a
 * JSON null out as a NULL pointer, like a missing member). */
bool sy_admin__has_member(json_object *o, const char *k);

const char *sy_admin__str_member(json_object *o, const char *k);

/* ------------------------------------------------------------------------ */
/* Rows, transactions and the generic handlers (admin_crud.c) */

/* A double that prints in the shortest form that reads back exactly
 * (json-c's default prints 0.8 as 0.80000000000000004). */
json_object *sy_admin__new_double(double d);

/* The current row of st as an object; BLOB columns (hashes, sealed
 * credentials) are never included: a credential only shows as has_<col>. */
json_object *sy_admin__row_json(sqlite3_stmt *st, const char *type);

int sy_admin__prepare(rq_t *r, const char *sql, sqlite3_stmt **st);

void sy_admin__bind_text(sqlite3_stmt *st, int i, const char *s);

int sy_admin__exec_id(rq_t *r, const char *sql, const char *id);

/* True when a row with this id exists in table (and, when tenant is
 * non-NULL, belongs to that tenant). */
bool sy_admin__exists(rq_t *r, const char *table, const char *id, const char *tenant);

/* Loads object id of res. Returns 1 and *out (+ owner, when owner_size > 0)
 * when found, 0 when not, -1 after answering a database error. */
int sy_admin__load(rq_t *r, const resource_t *res, const char *id, json_object **out, char *owner,
                   size_t owner_size);

/* Loads and access-checks in one go: 0 with *out, or -1 after answering. */
int sy_admin__load_checked(rq_t *r, const resource_t *res, const char *id, bool write,
                           json_object **out, char owner[SY_ADMIN_MAX_ID + 1]);

int sy_admin__tx_begin(rq_t *r);

void sy_admin__tx_abort(rq_t *r);

/* Writes the audit record and commits; tells the cluster. before/after are
 * borrowed (NULL for create/delete). Returns 0 or -1 after answering. */
int sy_admin__tx_commit(rq_t *r, const char *action, const resource_t *res, const char *id,
                        const char *tenant, json_object *before, json_object *after);

/* Begins a transaction and inserts object id of res from r->body: its
 * column fields, the owner (when owner_col is a separate column), the
 * timestamps and the extras. 0 with the transaction open, or -1 after
 * answering (rolled back). */
int sy_admin__insert_tx(rq_t *r, const resource_t *res, const char *id, const char *owner,
                        const extra_t *ex, size_t nex);

/* The create tail, inside insert_tx's transaction: load the new object,
 * audit, answer 201 (with secret_name: secret added to this answer only, a
 * secret shown once). */
void sy_admin__finish_create(rq_t *r, const resource_t *res, const char *id, const char *owner,
                             const char *secret_name, const char *secret);

/* The update tail of object r->p[0], inside an open transaction: reload it,
 * audit action against before (borrowed), answer status with it. */
void sy_admin__finish_update(rq_t *r, const resource_t *res, const char *action, const char *owner,
                             json_object *before, int status);

/* A new random secret "<prefix>..." into out; -1 after answering 500. */
int sy_admin__new_secret(rq_t *r, const char *prefix, char *out, size_t size);

/* Lists res rows matching where (with up to two text binds), a page at a time. */
void sy_admin__list_rows(rq_t *r, const resource_t *res, const char *where, const char *b1,
                         const char *b2);

/* Answers a page: {"object":"list", data (consumed), has_more,
 * next_cursor (next_cursor when more, else null)}. */
void sy_admin__reply_list(rq_t *r, json_object *data, bool more, const char *next_cursor);

/* Deletes object r->p[0] of res; `pre` (may be NULL) runs first inside the
 * transaction and may refuse (answering) by returning -1. */
void sy_admin__delete_obj_with(rq_t *r, const resource_t *res, int (*pre)(rq_t *, const char *id));

/* Generic PATCH of r->p[0]: validate, update columns (and extras), run
 * `more` (may be NULL; nested rows, cross checks) in the same transaction,
 * audit. */
void sy_admin__patch_obj(rq_t *r, const resource_t *res, const extra_t *ex, size_t nex,
                         int (*more)(rq_t *, json_object *body, const char *id));

/* Route handlers that are the generic operation on the route's resource:
 * list (scoped to the actor's tenant), get, patch, delete. */
void sy_admin__h_list(rq_t *r);
void sy_admin__h_get(rq_t *r);
void sy_admin__h_patch(rq_t *r);
void sy_admin__h_delete(rq_t *r);

/* ------------------------------------------------------------------------ */
/* Query strings (admin_query.c) */

/* Reads an optional query parameter into out ("" when absent); answers 400
 * naming it when malformed. */
int sy_admin__query_param(rq_t *r, const char *name, char *out, size_t size);

/* ------------------------------------------------------------------------ */
/* Tenants (admin_tenants.c) */

/* Checks that tenant r->p[0] is visible (and writable when write). */
int sy_admin__parent_tenant(rq_t *r, bool write, const resource_t *child);

#endif
