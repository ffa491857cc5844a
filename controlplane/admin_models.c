/* Models and their dated prices. */
#include "admin_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_prices(rq_t *r, json_object *body, const char *id, bool replace)
{
    json_object *prices = json_object_object_get(body, "prices");
    if (prices == NULL)
        return 0;
    size_t n = json_object_array_length(prices);
    char path[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "prices[%zu]", i);
        if (sy_admin__validate_obj(r, &sy_admin__res_price, json_object_array_get_idx(prices, i),
                                   true, path) != 0)
            return -1;
    }
    if (replace && sy_admin__exec_id(r, "DELETE FROM model_prices WHERE model_id = ?", id) != 0)
        return -1;
    sqlite3_stmt *st = NULL;
    if (sy_admin__prepare(
            r,
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
            sy_admin__db_error(r);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

static int check_model_provider(rq_t *r, json_object *body)
{
    const char *p = sy_admin__str_member(body, "provider_id");
    if (p && !sy_admin__exists(r, "providers", p, NULL)) {
        SY_ADMIN_BAD_FIELD(r, "provider_id", "invalid_value", "no provider %s", p);
        return -1;
    }
    return 0;
}

static void h_models_create(rq_t *r)
{
    if (!sy_admin__is_platform(r)) {
        sy_admin__forbidden(r);
        return;
    }
    if (sy_admin__validate_obj(r, &sy_admin__res_model, r->body, true, NULL) != 0 ||
        check_model_provider(r, r->body) != 0)
        return;
    const char *id = sy_admin__str_member(r->body, "id");
    char idc[SY_ADMIN_MAX_ID + 1];
    snprintf(idc, sizeof(idc), "%s", id);
    if (sy_admin__insert_tx(r, &sy_admin__res_model, idc, NULL, NULL, 0) != 0)
        return;
    if (write_prices(r, r->body, idc, false) != 0)
        sy_admin__tx_abort(r);
    else
        sy_admin__finish_create(r, &sy_admin__res_model, idc, NULL, NULL, NULL);
}

static int model_patch_more(rq_t *r, json_object *body, const char *id)
{
    if (check_model_provider(r, body) != 0)
        return -1;
    return write_prices(r, body, id, true);
}

static void h_model_patch(rq_t *r)
{
    sy_admin__patch_obj(r, &sy_admin__res_model, NULL, 0, model_patch_more);
}

/* POST /models/{id}/prices: adds (or corrects) one dated price. */
static void h_model_price_add(rq_t *r)
{
    json_object *before;
    char owner[SY_ADMIN_MAX_ID + 1];
    if (sy_admin__load_checked(r, &sy_admin__res_model, r->p[0], true, &before, owner) != 0)
        return;
    if (sy_admin__validate_obj(r, &sy_admin__res_price, r->body, true, NULL) != 0) {
        json_object_put(before);
        return;
    }
    json_object *wrap = json_object_new_object();
    json_object *arr = json_object_new_array();
    json_object_array_add(arr, json_object_get(r->body));
    json_object_object_add(wrap, "prices", arr);
    if (sy_admin__tx_begin(r) == 0) {
        if (write_prices(r, wrap, r->p[0], false) != 0 ||
            sy_admin__exec_id(r, "UPDATE models SET updated_at = strftime('%s','now') WHERE id = ?",
                              r->p[0]) != 0)
            sy_admin__tx_abort(r);
        else
            sy_admin__finish_update(r, &sy_admin__res_model, "update", owner, before, 201);
    }
    json_object_put(wrap);
    json_object_put(before);
}

const route_t sy_admin__models_routes[] = {
    {"GET", "/models", sy_admin__h_list, K_LIST, &sy_admin__res_model, NULL, 0, "List models",
     "listModels"},
    {"POST", "/models", h_models_create, K_CREATE, &sy_admin__res_model, NULL, A_BODY,
     "Create a model", "createModel"},
    {"GET", "/models/{id}", sy_admin__h_get, K_GET, &sy_admin__res_model, NULL, 0, "Get a model",
     "getModel"},
    {"PATCH", "/models/{id}", h_model_patch, K_UPDATE, &sy_admin__res_model, NULL, A_BODY,
     "Update a model", "updateModel"},
    {"DELETE", "/models/{id}", sy_admin__h_delete, K_DELETE, &sy_admin__res_model, NULL, 0,
     "Delete a model", "deleteModel"},
    {"POST", "/models/{id}/prices", h_model_price_add, K_OTHER, &sy_admin__res_price, "Model",
     A_BODY, "Add a dated price to a model", "addModelPrice"},
    {.method = NULL},
};
