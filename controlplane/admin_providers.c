/* Upstream providers; their credentials are sealed at rest (secrets.h). */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets.h"

static int check_base_url(rq_t *r, json_object *body)
{
    const char *u = sy_admin__str_member(body, "base_url");
    if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
        SY_ADMIN_BAD_FIELD(r, "base_url", "invalid_value",
                           "base_url must start with http:// or https://");
        return -1;
    }
    return 0;
}

/* Seals body.api_key for provider id into sealed; *has tells whether the body
 * sets it (null clears it). */
static int seal_api_key(rq_t *r, json_object *body, const char *id, sy_buf_t *sealed, bool *has)
{
    json_object *k = json_object_object_get(body, "api_key");
    *has = sy_admin__has_member(body, "api_key");
    if (k == NULL || json_object_is_type(k, json_type_null))
        return 0;
    if (sy_secrets_seal(r->a->master_key, id, json_object_get_string(k),
                        (size_t)json_object_get_string_len(k), sealed) != 0) {
        sy_admin__reply_error(r, 500, "api_error", "api_key", "internal_error",
                              "cannot seal the api_key");
        return -1;
    }
    return 0;
}

static void h_providers_create(rq_t *r)
{
    if (sy_admin__check_access(r, &sy_admin__res_provider, NULL, true, "") != 0 ||
        sy_admin__validate_obj(r, &sy_admin__res_provider, r->body, true, NULL) != 0 ||
        check_base_url(r, r->body) != 0)
        return;
    char id[64];
    sy_store_new_id("prov", id, sizeof(id));
    sy_buf_t sealed;
    sy_buf_init(&sealed);
    bool has;
    if (seal_api_key(r, r->body, id, &sealed, &has) != 0)
        return;
    extra_t ex = {"credential", sealed.data, (int)sealed.len, NULL};
    if (sy_admin__insert_tx(r, &sy_admin__res_provider, id, NULL, &ex, sealed.len ? 1 : 0) == 0)
        sy_admin__finish_create(r, &sy_admin__res_provider, id, NULL, NULL, NULL);
    sy_buf_free(&sealed);
}

static void h_provider_patch(rq_t *r)
{
    if (sy_admin__check_access(r, &sy_admin__res_provider, NULL, true, r->p[0]) != 0 ||
        sy_admin__validate_obj(r, &sy_admin__res_provider, r->body, false, NULL) != 0 ||
        check_base_url(r, r->body) != 0)
        return;
    sy_buf_t sealed;
    sy_buf_init(&sealed);
    bool has = false;
    if (seal_api_key(r, r->body, r->p[0], &sealed, &has) != 0)
        return;
    extra_t ex = {"credential", sealed.len ? sealed.data : NULL, (int)sealed.len, NULL};
    sy_admin__patch_obj(r, &sy_admin__res_provider, &ex, has ? 1 : 0, NULL);
    sy_buf_free(&sealed);
}

const route_t sy_admin__providers_routes[] = {
    {"GET", "/providers", sy_admin__h_list, K_LIST, &sy_admin__res_provider, NULL, 0,
     "List providers", "listProviders"},
    {"POST", "/providers", h_providers_create, K_CREATE, &sy_admin__res_provider, NULL, A_BODY,
     "Create a provider", "createProvider"},
    {"GET", "/providers/{id}", sy_admin__h_get, K_GET, &sy_admin__res_provider, NULL, 0,
     "Get a provider", "getProvider"},
    {"PATCH", "/providers/{id}", h_provider_patch, K_UPDATE, &sy_admin__res_provider, NULL, A_BODY,
     "Update a provider", "updateProvider"},
    {"DELETE", "/providers/{id}", sy_admin__h_delete, K_DELETE, &sy_admin__res_provider, NULL, 0,
     "Delete a provider", "deleteProvider"},
    {.method = NULL},
};
