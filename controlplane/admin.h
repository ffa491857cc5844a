/* The admin HTTP API under /admin/v1/: tenants, teams, API keys, providers,
 * models and prices, routes, budgets, admin users, usage and audit, with
 * token authentication, roles (platform admin, tenant admin, tenant viewer),
 * cursor pagination and an audit record for every mutation. The route table
 * (each admin_<concern>.c holds its slice, admin.c chains them) is the
 * single source of both the dispatcher and the OpenAPI 3.1
 * document served at /admin/v1/openapi.json. */
#ifndef SY_ADMIN_H
#define SY_ADMIN_H

#include "envelope.h"
#include "err.h"
#include "httpd.h"
#include "store.h"

typedef struct sy_admin sy_admin_t;
typedef struct sy_cluster sy_cluster_t;

typedef struct sy_admin_options {
    sy_store_t *store;                   /* borrowed; outlives the admin API */
    const sy_envelope_key_t *master_key; /* borrowed; seals provider credentials */
    sy_cluster_t *cluster;               /* borrowed, may be NULL; told about every change */
    const char *web_dir;                 /* borrowed, may be NULL; admin-web files for /admin/ */
} sy_admin_options_t;

/* Writes *out only on success. */
int sy_admin_new(const sy_admin_options_t *opts, sy_admin_t **out, sy_err_t *err);
void sy_admin_free(sy_admin_t *a);

/* The httpd handler; ctx is the sy_admin_t. */
void sy_admin_handle(void *ctx, const sy_httpd_request_t *req, sy_httpd_response_t *res);

/* Makes sure a platform admin can log in. With env_token (e.g. from
 * SWITCHYARD_ADMIN_TOKEN) non-NULL, that token is registered (once) for the
 * user "admin". Otherwise, when no platform admin exists yet, one is created
 * with a new random token written to token_out (NUL-terminated, size >= 64)
 * and *created set: the caller prints it once; it is stored only hashed.
 * Returns 0 or SY_E*. */
int sy_admin_bootstrap(sy_store_t *store, const char *env_token, char *token_out, size_t token_size,
                       bool *created, sy_err_t *err);

/* The routes the server dispatches (for tests): i-th method and path
 * template such as "/admin/v1/tenants/{id}/keys"; false past the end. */
bool sy_admin_route_at(size_t i, const char **method, const char **path);

/* Appends the OpenAPI 3.1 document to out. Returns 0 or SY_ENOMEM. */
int sy_admin_openapi(sy_buf_t *out);

#endif
