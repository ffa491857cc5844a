/* Immutable routing table over a Switchyard__Snapshot; see snapshot.h. */
#include "dataplane/snapshot.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

/* An open-addressing index from a name (or key hash) to a position in one of
 * the message's repeated fields. Slots hold position + 1; 0 is empty. */
typedef struct sy_index {
    uint32_t *slots; /* owned; cap entries */
    size_t cap;      /* power of two, at least twice the entry count */
} sy_index_t;

struct sy_snapshot {
    int refs;                    /* references; the table is freed at 0 (one thread only) */
    Switchyard__Snapshot *pb;    /* owned deep copy */
    sy_snapshot_key_t *keys;     /* owned; one per pb->keys */
    sy_snapshot_model_t *models; /* owned; one per pb->models */
    sy_index_t key_index;        /* sha256 -> keys[] */
    sy_index_t model_index;      /* id -> models[] */
    sy_index_t provider_index;   /* id -> pb->providers[] */
    sy_index_t tenant_index;     /* id -> pb->tenants[] */
    sy_index_t team_index;       /* id -> pb->teams[] */
};

static uint64_t hash_bytes(const void *p, size_t n)
{
    /* FNV-1a: short keys, no adversarial control over snapshot contents. */
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int index_init(sy_index_t *ix, size_t n)
{
    size_t cap = 8;
    while (cap < n * 2)
        cap <<= 1;
    ix->slots = calloc(cap, sizeof(*ix->slots));
    if (ix->slots == NULL)
        return SY_ENOMEM;
    ix->cap = cap;
    return 0;
}

typedef sy_str_t (*key_of_fn)(const void *ctx, uint32_t pos);

/* Inserts pos under key; SY_EEXIST when the key is already present. */
static int index_put(sy_index_t *ix, sy_str_t key, uint32_t pos, key_of_fn key_of, const void *ctx)
{
    size_t mask = ix->cap - 1;
    size_t i = hash_bytes(key.ptr, key.len) & mask;
    while (ix->slots[i] != 0) {
        if (sy_str_eq(key_of(ctx, ix->slots[i] - 1), key))
            return SY_EEXIST;
        i = (i + 1) & mask;
    }
    ix->slots[i] = pos + 1;
    return 0;
}

static int index_get(const sy_index_t *ix, sy_str_t key, key_of_fn key_of, const void *ctx,
                     uint32_t *pos)
{
    if (ix->cap == 0)
        return SY_ENOENT;
    size_t mask = ix->cap - 1;
    size_t i = hash_bytes(key.ptr, key.len) & mask;
    while (ix->slots[i] != 0) {
        if (sy_str_eq(key_of(ctx, ix->slots[i] - 1), key)) {
            *pos = ix->slots[i] - 1;
            return 0;
        }
        i = (i + 1) & mask;
    }
    return SY_ENOENT;
}

static sy_str_t key_sha(const void *ctx, uint32_t pos)
{
    const Switchyard__Snapshot *pb = ctx;
    return (sy_str_t){(const char *)pb->keys[pos]->sha256.data, pb->keys[pos]->sha256.len};
}
static sy_str_t model_id(const void *ctx, uint32_t pos)
{
    const Switchyard__Snapshot *pb = ctx;
    return sy_str_from_cstr(pb->models[pos]->id);
}
static sy_str_t provider_id(const void *ctx, uint32_t pos)
{
    const Switchyard__Snapshot *pb = ctx;
    return sy_str_from_cstr(pb->providers[pos]->id);
}
static sy_str_t tenant_id(const void *ctx, uint32_t pos)
{
    const Switchyard__Snapshot *pb = ctx;
    return sy_str_from_cstr(pb->tenants[pos]->id);
}
static sy_str_t team_id(const void *ctx, uint32_t pos)
{
    const Switchyard__Snapshot *pb = ctx;
    return sy_str_from_cstr(pb->teams[pos]->id);
}

static void snapshot_free(sy_snapshot_t *s)
{
    if (s == NULL)
        return;
    free(s->key_index.slots);
    free(s->model_index.slots);
    free(s->provider_index.slots);
    free(s->tenant_index.slots);
    free(s->team_index.slots);
    free(s->keys);
    free(s->models);
    if (s->pb != NULL)
        switchyard__snapshot__free_unpacked(s->pb, NULL);
    free(s);
}

/* Deep-copies a message by packing and unpacking it: protobuf-c has no copy
 * function, and this keeps the copy's memory owned by protobuf-c's allocator
 * so free_unpacked releases it. */
static int copy_proto(const Switchyard__Snapshot *msg, Switchyard__Snapshot **out)
{
    size_t n = switchyard__snapshot__get_packed_size(msg);
    uint8_t *tmp = malloc(n ? n : 1);
    if (tmp == NULL)
        return SY_ENOMEM;
    switchyard__snapshot__pack(msg, tmp);
    Switchyard__Snapshot *copy = switchyard__snapshot__unpack(NULL, n, tmp);
    free(tmp);
    if (copy == NULL)
        return SY_ENOMEM;
    *out = copy;
    return 0;
}

static int build_index(sy_index_t *ix, size_t n, key_of_fn key_of, const void *ctx,
                       const char *what, sy_err_t *err)
{
    if (index_init(ix, n) != 0)
        return sy_err_set(err, SY_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        sy_str_t k = key_of(ctx, (uint32_t)i);
        if (k.len == 0)
            return sy_err_set(err, SY_EINVAL, "%s #%zu has an empty id", what, i);
        if (index_put(ix, k, (uint32_t)i, key_of, ctx) != 0)
            return sy_err_set(err, SY_EINVAL, "duplicate %s \"%.*s\"", what, (int)k.len, k.ptr);
    }
    return 0;
}

int sy_snapshot_from_proto(const Switchyard__Snapshot *msg, sy_snapshot_t **out, sy_err_t *err)
{
    if (msg == NULL)
        return sy_err_set(err, SY_EINVAL, "no snapshot message");
    sy_snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return sy_err_set(err, SY_ENOMEM, "out of memory");
    s->refs = 1;
    int rc = copy_proto(msg, &s->pb);
    if (rc != 0) {
        sy_err_set(err, rc, "cannot copy snapshot");
        goto fail;
    }
    const Switchyard__Snapshot *pb = s->pb;
    for (size_t i = 0; i < pb->n_keys; i++) {
        if (pb->keys[i]->sha256.len != SY_SNAPSHOT_SHA256_LEN) {
            rc = sy_err_set(err, SY_EINVAL, "key \"%s\": sha256 must be 32 bytes, not %zu",
                            pb->keys[i]->id, pb->keys[i]->sha256.len);
            goto fail;
        }
    }
    if ((rc = build_index(&s->key_index, pb->n_keys, key_sha, pb, "key sha256", err)) != 0 ||
        (rc = build_index(&s->model_index, pb->n_models, model_id, pb, "model", err)) != 0 ||
        (rc = build_index(&s->provider_index, pb->n_providers, provider_id, pb, "provider", err)) !=
            0 ||
        (rc = build_index(&s->tenant_index, pb->n_tenants, tenant_id, pb, "tenant", err)) != 0 ||
        (rc = build_index(&s->team_index, pb->n_teams, team_id, pb, "team", err)) != 0)
        goto fail;

    s->keys = calloc(pb->n_keys ? pb->n_keys : 1, sizeof(*s->keys));
    s->models = calloc(pb->n_models ? pb->n_models : 1, sizeof(*s->models));
    if (s->keys == NULL || s->models == NULL) {
        rc = sy_err_set(err, SY_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < pb->n_keys; i++) {
        const Switchyard__ApiKey *k = pb->keys[i];
        uint32_t pos;
        s->keys[i].pb = k;
        if (index_get(&s->tenant_index, sy_str_from_cstr(k->tenant_id), tenant_id, pb, &pos) == 0)
            s->keys[i].tenant = pb->tenants[pos];
        if (index_get(&s->team_index, sy_str_from_cstr(k->team_id), team_id, pb, &pos) == 0)
            s->keys[i].team = pb->teams[pos];
    }
    for (size_t i = 0; i < pb->n_models; i++) {
        const Switchyard__Model *m = pb->models[i];
        uint32_t pos;
        s->models[i].pb = m;
        if (index_get(&s->provider_index, sy_str_from_cstr(m->provider_id), provider_id, pb,
                      &pos) == 0)
            s->models[i].provider = pb->providers[pos];
        s->models[i].rename = m->upstream_name[0] != '\0' && strcmp(m->upstream_name, m->id) != 0;
    }
    *out = s;
    return 0;
fail:
    snapshot_free(s);
    return rc;
}

sy_snapshot_t *sy_snapshot_ref(sy_snapshot_t *s)
{
    if (s != NULL)
        s->refs++;
    return s;
}

void sy_snapshot_unref(sy_snapshot_t *s)
{
    if (s != NULL && --s->refs == 0)
        snapshot_free(s);
}

const Switchyard__Snapshot *sy_snapshot_proto(const sy_snapshot_t *s)
{
    return s->pb;
}

uint64_t sy_snapshot_version(const sy_snapshot_t *s)
{
    return s->pb->version;
}

const sy_snapshot_key_t *sy_snapshot_find_key(const sy_snapshot_t *s,
                                              const unsigned char sha256[SY_SNAPSHOT_SHA256_LEN])
{
    uint32_t pos;
    sy_str_t k = {(const char *)sha256, SY_SNAPSHOT_SHA256_LEN};
    if (index_get(&s->key_index, k, key_sha, s->pb, &pos) != 0)
        return NULL;
    return &s->keys[pos];
}

const sy_snapshot_model_t *sy_snapshot_find_model(const sy_snapshot_t *s, sy_str_t id)
{
    uint32_t pos;
    if (id.len == 0 || index_get(&s->model_index, id, model_id, s->pb, &pos) != 0)
        return NULL;
    return &s->models[pos];
}

const Switchyard__Provider *sy_snapshot_find_provider(const sy_snapshot_t *s, sy_str_t id)
{
    uint32_t pos;
    if (id.len == 0 || index_get(&s->provider_index, id, provider_id, s->pb, &pos) != 0)
        return NULL;
    return s->pb->providers[pos];
}

const Switchyard__Tenant *sy_snapshot_find_tenant(const sy_snapshot_t *s, sy_str_t id)
{
    uint32_t pos;
    if (id.len == 0 || index_get(&s->tenant_index, id, tenant_id, s->pb, &pos) != 0)
        return NULL;
    return s->pb->tenants[pos];
}

const Switchyard__Route *sy_snapshot_find_route(const sy_snapshot_t *s, sy_str_t alias,
                                                const char *tenant)
{
    const Switchyard__Route *any = NULL;
    for (size_t i = 0; i < s->pb->n_routes; i++) {
        const Switchyard__Route *r = s->pb->routes[i];
        if (!sy_str_eq_cstr(alias, r->alias))
            continue;
        if (r->tenant_id[0] == '\0') {
            if (any == NULL)
                any = r;
        } else if (tenant != NULL && strcmp(r->tenant_id, tenant) == 0) {
            return r;
        }
    }
    return any;
}

size_t sy_snapshot_model_count(const sy_snapshot_t *s)
{
    return s->pb->n_models;
}

const sy_snapshot_model_t *sy_snapshot_model_at(const sy_snapshot_t *s, size_t i)
{
    return i < s->pb->n_models ? &s->models[i] : NULL;
}

bool sy_snapshot_key_allows(const sy_snapshot_key_t *k, sy_str_t model)
{
    if (k->pb->n_allowed_models == 0)
        return true;
    for (size_t i = 0; i < k->pb->n_allowed_models; i++)
        if (sy_str_eq_cstr(model, k->pb->allowed_models[i]))
            return true;
    return false;
}

const Switchyard__Price *sy_snapshot_price_at(const Switchyard__Model *m, int64_t t)
{
    const Switchyard__Price *best = NULL;
    for (size_t i = 0; i < m->n_prices; i++) {
        const Switchyard__Price *p = m->prices[i];
        if (p->valid_from <= t && (best == NULL || p->valid_from >= best->valid_from))
            best = p;
    }
    return best;
}

double sy_snapshot_cost(const Switchyard__Price *p, uint64_t prompt, uint64_t completion,
                        uint64_t cached, uint64_t cache_write)
{
    if (p == NULL)
        return 0.0;
    if (cached > prompt)
        cached = prompt;
    double cached_price =
        p->cached_input_per_mtok > 0 ? p->cached_input_per_mtok : p->input_per_mtok;
    double write_price = p->cache_write_per_mtok > 0 ? p->cache_write_per_mtok : 0.0;
    return ((double)(prompt - cached) * p->input_per_mtok + (double)cached * cached_price +
            (double)completion * p->output_per_mtok + (double)cache_write * write_price) /
           1e6;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int hex_decode(const char *hex, size_t len, uint8_t *out)
{
    if (len % 2 != 0)
        return SY_EINVAL;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return SY_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int sy_snapshot_hex_to_sha256(const char *hex, size_t len,
                              unsigned char out[SY_SNAPSHOT_SHA256_LEN])
{
    unsigned char tmp[SY_SNAPSHOT_SHA256_LEN];
    if (len != 2 * SY_SNAPSHOT_SHA256_LEN || hex_decode(hex, len, tmp) != 0)
        return SY_EINVAL;
    memcpy(out, tmp, sizeof(tmp));
    return 0;
}

/* --- JSON -> protobuf, driven by the message descriptors ------------------- */

static int json_to_message(json_object *o, const ProtobufCMessageDescriptor *d,
                           ProtobufCMessage **out, const char *path, sy_err_t *err);

/* Builds "path.key" or "path[i]" for error messages (truncated when long). */
static void subpath(char *dst, size_t cap, const char *path, const char *key, size_t idx)
{
    int n = key != NULL ? snprintf(dst, cap, "%.120s.%.100s", path, key)
                        : snprintf(dst, cap, "%.200s[%zu]", path, idx);
    if (n < 0)
        dst[0] = '\0';
}

static int is_map_entry(const ProtobufCMessageDescriptor *d)
{
    return d->n_fields == 2 && strcmp(d->fields[0].name, "key") == 0 &&
           strcmp(d->fields[1].name, "value") == 0 && strstr(d->name, "Entry") != NULL;
}

/* Converts one scalar JSON value into the field's C representation at dst. */
static int json_to_scalar(json_object *v, const ProtobufCFieldDescriptor *f, void *dst,
                          const char *path, sy_err_t *err)
{
    json_type t = json_object_get_type(v);
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        if (t != json_type_string)
            return sy_err_set(err, SY_EINVAL, "%s: expected a string", path);
        char *s = strdup(json_object_get_string(v));
        if (s == NULL)
            return sy_err_set(err, SY_ENOMEM, "out of memory");
        *(char **)dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (t != json_type_string)
            return sy_err_set(err, SY_EINVAL, "%s: expected a hex string", path);
        size_t len = (size_t)json_object_get_string_len(v);
        uint8_t *b = malloc(len / 2 + 1);
        if (b == NULL)
            return sy_err_set(err, SY_ENOMEM, "out of memory");
        if (hex_decode(json_object_get_string(v), len, b) != 0) {
            free(b);
            return sy_err_set(err, SY_EINVAL, "%s: expected a hex string", path);
        }
        ((ProtobufCBinaryData *)dst)->data = b;
        ((ProtobufCBinaryData *)dst)->len = len / 2;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (t != json_type_boolean)
            return sy_err_set(err, SY_EINVAL, "%s: expected true or false", path);
        *(protobuf_c_boolean *)dst = json_object_get_boolean(v);
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_FLOAT:
        if (t != json_type_double && t != json_type_int)
            return sy_err_set(err, SY_EINVAL, "%s: expected a number", path);
        if (f->type == PROTOBUF_C_TYPE_DOUBLE)
            *(double *)dst = json_object_get_double(v);
        else
            *(float *)dst = (float)json_object_get_double(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (t == json_type_int) {
            *(int *)dst = (int)json_object_get_int64(v);
            return 0;
        }
        if (t != json_type_string)
            return sy_err_set(err, SY_EINVAL, "%s: expected an enum name", path);
        const char *name = json_object_get_string(v);
        for (unsigned i = 0; i < ed->n_values; i++) {
            /* Accept the proto name ("PROVIDER_KIND_OPENAI") and the short
             * lower-case form ("openai") after the enum's common prefix. */
            const char *full = ed->values[i].name;
            if (strcasecmp(full, name) == 0) {
                *(int *)dst = ed->values[i].value;
                return 0;
            }
            size_t fl = strlen(full), nl = strlen(name);
            if (nl < fl && full[fl - nl - 1] == '_' && strcasecmp(full + fl - nl, name) == 0) {
                *(int *)dst = ed->values[i].value;
                return 0;
            }
        }
        return sy_err_set(err, SY_EINVAL, "%s: unknown value \"%s\"", path, name);
    }
    default: {
        if (t != json_type_int && !(t == json_type_string && f->type != PROTOBUF_C_TYPE_BOOL))
            return sy_err_set(err, SY_EINVAL, "%s: expected an integer", path);
        errno = 0;
        bool is_unsigned = f->type == PROTOBUF_C_TYPE_UINT32 || f->type == PROTOBUF_C_TYPE_UINT64 ||
                           f->type == PROTOBUF_C_TYPE_FIXED32 || f->type == PROTOBUF_C_TYPE_FIXED64;
        int64_t iv = 0;
        uint64_t uv = 0;
        if (t == json_type_string) {
            /* 64-bit values may travel as strings (JSON numbers lose precision in JS). */
            char *end;
            const char *s = json_object_get_string(v);
            if (is_unsigned)
                uv = strtoull(s, &end, 10);
            else
                iv = strtoll(s, &end, 10);
            if (*s == '\0' || *end != '\0' || errno != 0)
                return sy_err_set(err, SY_EINVAL, "%s: expected an integer", path);
        } else if (is_unsigned) {
            iv = json_object_get_int64(v);
            if (iv < 0)
                return sy_err_set(err, SY_EINVAL, "%s: must not be negative", path);
            uv = json_object_get_uint64(v);
        } else {
            iv = json_object_get_int64(v);
        }
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
            if (iv < INT32_MIN || iv > INT32_MAX)
                return sy_err_set(err, SY_EINVAL, "%s: out of range", path);
            *(int32_t *)dst = (int32_t)iv;
            return 0;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            if (uv > UINT32_MAX)
                return sy_err_set(err, SY_EINVAL, "%s: out of range", path);
            *(uint32_t *)dst = (uint32_t)uv;
            return 0;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            *(uint64_t *)dst = uv;
            return 0;
        default:
            *(int64_t *)dst = iv;
            return 0;
        }
    }
    }
}

static size_t field_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 8;
    }
}

static int json_to_field(json_object *v, const ProtobufCFieldDescriptor *f, ProtobufCMessage *m,
                         const char *path, sy_err_t *err)
{
    char *base = (char *)m;
    if (json_object_get_type(v) == json_type_null)
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t *n = (size_t *)(base + f->quantifier_offset);
        void **arr = (void **)(base + f->offset);
        const ProtobufCMessageDescriptor *md = f->descriptor;
        bool map = f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(md);
        size_t count;
        if (map) {
            if (json_object_get_type(v) != json_type_object)
                return sy_err_set(err, SY_EINVAL, "%s: expected an object", path);
            count = (size_t)json_object_object_length(v);
        } else {
            if (json_object_get_type(v) != json_type_array)
                return sy_err_set(err, SY_EINVAL, "%s: expected an array", path);
            count = json_object_array_length(v);
        }
        if (count == 0)
            return 0;
        size_t esz = field_size(f);
        *arr = calloc(count, esz);
        if (*arr == NULL)
            return sy_err_set(err, SY_ENOMEM, "out of memory");
        char sub[256];
        if (map) {
            json_object_object_foreach(v, key, val)
            {
                subpath(sub, sizeof(sub), path, key, 0);
                if (json_object_get_type(val) != json_type_string)
                    return sy_err_set(err, SY_EINVAL, "%s: expected a string", sub);
                ProtobufCMessage *e = calloc(1, md->sizeof_message);
                if (e == NULL)
                    return sy_err_set(err, SY_ENOMEM, "out of memory");
                md->message_init(e);
                ((void **)*arr)[(*n)++] = e;
                char *k = strdup(key), *s = strdup(json_object_get_string(val));
                if (k == NULL || s == NULL) {
                    free(k);
                    free(s);
                    return sy_err_set(err, SY_ENOMEM, "out of memory");
                }
                *(char **)((char *)e + md->fields[0].offset) = k;
                *(char **)((char *)e + md->fields[1].offset) = s;
            }
            return 0;
        }
        for (size_t i = 0; i < count; i++) {
            json_object *item = json_object_array_get_idx(v, i);
            subpath(sub, sizeof(sub), path, NULL, i);
            int rc;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                ProtobufCMessage *e = NULL;
                rc = json_to_message(item, md, &e, sub, err);
                if (rc == 0)
                    ((ProtobufCMessage **)*arr)[*n] = e;
            } else {
                rc = json_to_scalar(item, f, (char *)*arr + i * esz, sub, err);
            }
            if (rc != 0)
                return rc;
            (*n)++;
        }
        return 0;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage *e = NULL;
        int rc = json_to_message(v, f->descriptor, &e, path, err);
        if (rc == 0)
            *(ProtobufCMessage **)(base + f->offset) = e;
        return rc;
    }
    return json_to_scalar(v, f, base + f->offset, path, err);
}

/* Builds a message of type d from the JSON object o. On failure the partly
 * built message is freed. */
static int json_to_message(json_object *o, const ProtobufCMessageDescriptor *d,
                           ProtobufCMessage **out, const char *path, sy_err_t *err)
{
    if (json_object_get_type(o) != json_type_object)
        return sy_err_set(err, SY_EINVAL, "%s: expected an object", path);
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (m == NULL)
        return sy_err_set(err, SY_ENOMEM, "out of memory");
    d->message_init(m);
    char sub[256];
    json_object_object_foreach(o, key, val)
    {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        subpath(sub, sizeof(sub), path, key, 0);
        if (f == NULL) {
            protobuf_c_message_free_unpacked(m, NULL);
            return sy_err_set(err, SY_EINVAL, "%s: unknown field", sub);
        }
        int rc = json_to_field(val, f, m, sub, err);
        if (rc != 0) {
            protobuf_c_message_free_unpacked(m, NULL);
            return rc;
        }
    }
    *out = m;
    return 0;
}

int sy_snapshot_json_to_proto(const char *json, size_t len, Switchyard__Snapshot **out,
                              sy_err_t *err)
{
    json_object *root = NULL;
    int rc = sy_json_parse_once(json, len, &root, err);
    if (rc != 0)
        return rc;
    ProtobufCMessage *m = NULL;
    rc = json_to_message(root, &switchyard__snapshot__descriptor, &m, "snapshot", err);
    json_object_put(root);
    if (rc != 0)
        return rc;
    *out = (Switchyard__Snapshot *)m;
    return 0;
}

int sy_snapshot_load_file(const char *path, sy_snapshot_t **out, sy_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return sy_err_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
    sy_buf_t b;
    sy_buf_init(&b);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (sy_buf_append(&b, chunk, n) != 0) {
            rc = sy_err_set(err, SY_ENOMEM, "out of memory");
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = sy_err_set(err, SY_EIO, "cannot read %s", path);
    fclose(f);
    if (rc != 0) {
        sy_buf_free(&b);
        return rc;
    }
    size_t i = 0;
    while (i < b.len && isspace((unsigned char)b.data[i]))
        i++;
    Switchyard__Snapshot *msg = NULL;
    if (i < b.len && b.data[i] == '{') {
        rc = sy_snapshot_json_to_proto(b.data, b.len, &msg, err);
    } else {
        msg = switchyard__snapshot__unpack(NULL, b.len, (const uint8_t *)b.data);
        if (msg == NULL)
            rc = sy_err_set(err, SY_EINVAL, "%s is neither JSON nor a protobuf Snapshot", path);
    }
    sy_buf_free(&b);
    if (rc != 0)
        return rc;
    rc = sy_snapshot_from_proto(msg, out, err);
    switchyard__snapshot__free_unpacked(msg, NULL);
    return rc;
}
