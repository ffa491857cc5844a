/* Fault specs (x-mock-fault header, POST /_mock/faults) and the per-instance
 * rule list. The key set is documented in README.md ("Faults"). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "json.h"
#include "mock.h"

static const char *const ep_names[SY_MOCK_EP_COUNT] = {
    [SY_MOCK_EP_CHAT] = "chat_completions",
    [SY_MOCK_EP_EMBEDDINGS] = "embeddings",
    [SY_MOCK_EP_MODELS] = "models",
    [SY_MOCK_EP_MESSAGES] = "messages",
    [SY_MOCK_EP_GENERATE] = "generate_content",
    [SY_MOCK_EP_STREAM_GENERATE] = "stream_generate_content",
    [SY_MOCK_EP_OTHER] = "other",
};

const char *sy_mock_endpoint_name(sy_mock_endpoint_t ep)
{
    return (unsigned)ep < SY_MOCK_EP_COUNT ? ep_names[ep] : "other";
}

int sy_mock_endpoint_parse(const char *s, size_t n, sy_mock_endpoint_t *out)
{
    for (int i = 0; i < SY_MOCK_EP_COUNT; i++) {
        if (strlen(ep_names[i]) == n && memcmp(ep_names[i], s, n) == 0) {
            *out = (sy_mock_endpoint_t)i;
            return 0;
        }
    }
    return SY_EINVAL;
}

void sy_mock_fault_init(sy_mock_fault_t *f)
{
    memset(f, 0, sizeof(*f));
    f->retry_after = -1;
    f->rl_requests = 59;
    f->rl_tokens = 149984;
    f->rl_reset_s = 1;
    f->silent_close_ms = -1;
}

static bool key_is(sy_str_t k, const char *a, const char *b)
{
    return sy_str_eq_cstr(k, a) || (b != NULL && sy_str_eq_cstr(k, b));
}

static int parse_bool(sy_str_t v, bool *out)
{
    if (v.len == 0 || sy_str_eq_cstr(v, "1") || sy_str_case_eq_cstr(v, "true") ||
        sy_str_case_eq_cstr(v, "yes") || sy_str_case_eq_cstr(v, "on")) {
        *out = true;
        return 0;
    }
    if (sy_str_eq_cstr(v, "0") || sy_str_case_eq_cstr(v, "false") || sy_str_case_eq_cstr(v, "no") ||
        sy_str_case_eq_cstr(v, "off")) {
        *out = false;
        return 0;
    }
    return SY_EINVAL;
}

static int parse_num(sy_str_t v, int64_t max, int64_t *out)
{
    uint64_t u;
    if (sy_str_to_u64(v, &u) != 0 || u > (uint64_t)max)
        return SY_EINVAL;
    *out = (int64_t)u;
    return 0;
}

/* A key that only sets one boolean field. */
typedef struct flag_key {
    const char *name;  /* the key */
    const char *alias; /* another spelling, or NULL */
    size_t off;        /* offsetof the bool in sy_mock_fault_t */
} flag_key_t;

/* Where a table's field lives in sy_mock_fault_t. */
#define FIELD(name) offsetof(sy_mock_fault_t, name)

static const flag_key_t flag_keys[] = {
    {"stall", NULL, FIELD(stall)},         {"malformed", NULL, FIELD(malformed)},
    {"ratelimit", NULL, FIELD(ratelimit)}, {"conn_close", "connection_close", FIELD(conn_close)},
    {"no_length", NULL, FIELD(no_length)}, {"chunked", NULL, FIELD(chunked)},
    {"trickle", NULL, FIELD(trickle)},     {"interim", NULL, FIELD(interim)},
    {"garbage", NULL, FIELD(garbage)},     {"short_body", NULL, FIELD(short_body)},
};

/* A key that sets one int64_t field to a number in 0..max. */
typedef struct num_key {
    const char *name;  /* the key */
    const char *alias; /* another spelling, or NULL */
    int64_t max;       /* largest value accepted */
    size_t off;        /* offsetof the int64_t in sy_mock_fault_t */
    bool ratelimit;    /* the key also turns the rate-limit headers on */
} num_key_t;

static const num_key_t num_keys[] = {
    {"latency", "latency_ms", 600000, FIELD(latency_ms), false},
    {"chunk_delay", "chunk_delay_ms", 600000, FIELD(chunk_delay_ms), false},
    {"delay", NULL, 600000, FIELD(chunk_delay_ms), false},
    {"retry_after", "retry-after", 86400, FIELD(retry_after), false},
    {"rl_requests", "ratelimit_remaining_requests", INT64_MAX, FIELD(rl_requests), true},
    {"rl_tokens", "ratelimit_remaining_tokens", INT64_MAX, FIELD(rl_tokens), true},
    {"rl_reset", "ratelimit_reset", 86400, FIELD(rl_reset_s), true},
};

#undef FIELD

/* Applies one key/value pair. */
static int apply(sy_mock_fault_t *f, sy_str_t k, sy_str_t v, const char **why)
{
    int64_t n = 0;
    bool b = false;
    for (size_t i = 0; i < SY_ARRAY_LEN(flag_keys); i++) {
        if (key_is(k, flag_keys[i].name, flag_keys[i].alias)) {
            if (parse_bool(v, (bool *)((char *)f + flag_keys[i].off)))
                goto bad_bool;
            goto done;
        }
    }
    for (size_t i = 0; i < SY_ARRAY_LEN(num_keys); i++) {
        if (key_is(k, num_keys[i].name, num_keys[i].alias)) {
            if (parse_num(v, num_keys[i].max, (int64_t *)((char *)f + num_keys[i].off)))
                goto bad_num;
            if (num_keys[i].ratelimit)
                f->ratelimit = true;
            goto done;
        }
    }
    /* The keys with a syntax or a side effect of their own. */
    if (key_is(k, "status", NULL)) {
        if (parse_num(v, 599, &n) || n < 400) {
            *why = "fault status must be 400..599";
            return SY_EINVAL;
        }
        f->status = (int)n;
    } else if (key_is(k, "reset", NULL)) {
        if (sy_str_eq_cstr(v, "before")) {
            f->reset = SY_MOCK_RESET_BEFORE;
        } else if (sy_str_eq_cstr(v, "mid") || v.len == 0) {
            f->reset = SY_MOCK_RESET_AFTER;
            if (f->reset_after == 0)
                f->reset_after = 2;
        } else if (parse_num(v, INT32_MAX, &f->reset_after) == 0) {
            f->reset = SY_MOCK_RESET_AFTER;
        } else {
            *why = "fault reset must be before, mid or a number of events";
            return SY_EINVAL;
        }
    } else if (key_is(k, "reset_after", NULL)) {
        if (parse_num(v, INT32_MAX, &f->reset_after))
            goto bad_num;
        f->reset = SY_MOCK_RESET_AFTER;
    } else if (key_is(k, "stream_error", NULL)) {
        if (v.len == 0)
            f->stream_error_after = 2;
        else if (parse_num(v, INT32_MAX, &f->stream_error_after))
            goto bad_num;
        f->stream_error = true;
    } else if (key_is(k, "huge_headers", NULL)) {
        /* A size in KiB, or a flag (alone: the default size). */
        if (v.len > 0 && parse_num(v, 16384, &n) == 0)
            f->huge_headers_kib = n;
        else if (parse_bool(v, &b) == 0)
            f->huge_headers_kib = b ? SY_MOCK_HUGE_HEADERS_KIB : 0;
        else
            goto bad_num;
    } else if (key_is(k, "silent_close", NULL)) {
        /* A delay in ms, or a flag (alone: the delay varies per request). */
        if (v.len > 0 && parse_num(v, 600000, &n) == 0) {
            f->silent_close = true;
            f->silent_close_ms = n;
        } else if (parse_bool(v, &b) == 0) {
            f->silent_close = b;
            f->silent_close_ms = -1;
        } else {
            goto bad_num;
        }
    } else {
        *why = "unknown fault key";
        return SY_EINVAL;
    }
done:
    f->any = true;
    return 0;
bad_num:
    *why = "fault value must be a non-negative integer in range";
    return SY_EINVAL;
bad_bool:
    *why = "fault flag must be true or false";
    return SY_EINVAL;
}

int sy_mock_fault_parse(const char *s, size_t n, sy_mock_fault_t *f, const char **why)
{
    sy_mock_fault_t tmp = *f;
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && s[i] != ';' && s[i] != ',')
            i++;
        sy_str_t item = sy_str_trim((sy_str_t){s + start, i - start});
        i++; /* skip the separator */
        if (item.len == 0)
            continue;
        const char *eq = memchr(item.ptr, '=', item.len);
        sy_str_t k = item, v = SY_STR_NULL;
        if (eq != NULL) {
            k = sy_str_trim((sy_str_t){item.ptr, (size_t)(eq - item.ptr)});
            v = sy_str_trim((sy_str_t){eq + 1, item.len - (size_t)(eq - item.ptr) - 1});
        }
        int rc = apply(&tmp, k, v, why);
        if (rc)
            return rc;
    }
    *f = tmp;
    return 0;
}

int sy_mock_fault_parse_json(json_object *o, sy_mock_fault_t *f, const char **why)
{
    if (!json_object_is_type(o, json_type_object)) {
        *why = "fault must be a JSON object or a \"key=value;...\" string";
        return SY_EINVAL;
    }
    sy_mock_fault_t tmp = *f;
    char num[32];
    json_object_object_foreach(o, k, v)
    {
        sy_str_t val;
        switch (json_object_get_type(v)) {
        case json_type_boolean:
            val = json_object_get_boolean(v) ? SY_STR("true") : SY_STR("false");
            break;
        case json_type_int: {
            int len = snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(v));
            val = (sy_str_t){num, (size_t)len};
            break;
        }
        case json_type_string:
            val = (sy_str_t){json_object_get_string(v), (size_t)json_object_get_string_len(v)};
            break;
        default:
            *why = "fault values must be numbers, booleans or strings";
            return SY_EINVAL;
        }
        int rc = apply(&tmp, sy_str_from_cstr(k), val, why);
        if (rc)
            return rc;
    }
    *f = tmp;
    return 0;
}

static const char *tf(bool b)
{
    return b ? "true" : "false";
}

int sy_mock_fault_to_json(const sy_mock_fault_t *f, sy_buf_t *out)
{
    static const char *const resets[] = {"none", "before", "after"};
    return sy_buf_appendf(out,
                          "{\"latency_ms\":%lld,\"chunk_delay_ms\":%lld,\"status\":%d,"
                          "\"retry_after\":%lld,\"reset\":\"%s\",\"reset_after\":%lld,"
                          "\"stall\":%s,\"malformed\":%s,\"stream_error\":%lld,\"ratelimit\":%s,"
                          "\"rl_requests\":%lld,"
                          "\"rl_tokens\":%lld,\"rl_reset\":%lld,\"conn_close\":%s,"
                          "\"no_length\":%s,\"chunked\":%s,\"trickle\":%s,\"interim\":%s,"
                          "\"garbage\":%s,\"huge_headers\":%lld,\"short_body\":%s,"
                          "\"silent_close\":%lld}",
                          (long long)f->latency_ms, (long long)f->chunk_delay_ms, f->status,
                          (long long)f->retry_after, resets[f->reset], (long long)f->reset_after,
                          f->stall ? "true" : "false", f->malformed ? "true" : "false",
                          (long long)(f->stream_error ? f->stream_error_after : -1),
                          f->ratelimit ? "true" : "false", (long long)f->rl_requests,
                          (long long)f->rl_tokens, (long long)f->rl_reset_s, tf(f->conn_close),
                          tf(f->no_length), tf(f->chunked), tf(f->trickle), tf(f->interim),
                          tf(f->garbage), (long long)f->huge_headers_kib, tf(f->short_body),
                          /* -2 = off, -1 = varying, else the delay in ms */
                          (long long)(f->silent_close ? f->silent_close_ms : -2));
}

void sy_mock_faults_init(sy_mock_faults_t *fs)
{
    fs->n = 0;
}

void sy_mock_faults_clear(sy_mock_faults_t *fs)
{
    fs->n = 0;
}

static int add_rule(sy_mock_faults_t *fs, json_object *o, const char **why)
{
    if (!json_object_is_type(o, json_type_object)) {
        *why = "each fault rule must be a JSON object";
        return SY_EINVAL;
    }
    if (fs->n >= SY_MOCK_MAX_RULES) {
        *why = "too many fault rules";
        return SY_E2BIG;
    }
    sy_mock_rule_t r;
    sy_mock_fault_init(&r.fault);
    r.remaining = -1;
    r.endpoint = -1;

    json_object *fault = sy_json_get(o, "fault");
    int rc;
    if (fault == NULL) {
        *why = "a fault rule needs \"fault\"";
        return SY_EINVAL;
    }
    if (json_object_is_type(fault, json_type_string))
        rc = sy_mock_fault_parse(json_object_get_string(fault),
                                 (size_t)json_object_get_string_len(fault), &r.fault, why);
    else
        rc = sy_mock_fault_parse_json(fault, &r.fault, why);
    if (rc)
        return rc;

    json_object *count = sy_json_get(o, "count");
    if (count != NULL && !json_object_is_type(count, json_type_null)) {
        if (!json_object_is_type(count, json_type_int) || json_object_get_int64(count) < 1) {
            *why = "\"count\" must be a positive integer (omit it for every request)";
            return SY_EINVAL;
        }
        r.remaining = json_object_get_int64(count);
    }
    json_object *ep = sy_json_get(o, "endpoint");
    if (ep != NULL && !json_object_is_type(ep, json_type_null)) {
        sy_mock_endpoint_t e;
        if (!json_object_is_type(ep, json_type_string) ||
            sy_mock_endpoint_parse(json_object_get_string(ep),
                                   (size_t)json_object_get_string_len(ep), &e) != 0) {
            *why = "unknown \"endpoint\"";
            return SY_EINVAL;
        }
        r.endpoint = (int)e;
    }
    fs->rules[fs->n++] = r;
    return 0;
}

int sy_mock_faults_add_json(sy_mock_faults_t *fs, json_object *body, const char **why)
{
    if (json_object_is_type(body, json_type_array)) {
        size_t len = json_object_array_length(body);
        if (fs->n + len > SY_MOCK_MAX_RULES) {
            *why = "too many fault rules";
            return SY_E2BIG;
        }
        size_t before = fs->n;
        for (size_t i = 0; i < len; i++) {
            int rc = add_rule(fs, json_object_array_get_idx(body, i), why);
            if (rc) {
                fs->n = before; /* all or nothing */
                return rc;
            }
        }
        return 0;
    }
    return add_rule(fs, body, why);
}

bool sy_mock_faults_take(sy_mock_faults_t *fs, sy_mock_endpoint_t ep, sy_mock_fault_t *out)
{
    for (size_t i = 0; i < fs->n; i++) {
        sy_mock_rule_t *r = &fs->rules[i];
        if (r->remaining == 0 || (r->endpoint >= 0 && r->endpoint != (int)ep))
            continue;
        *out = r->fault;
        if (r->remaining > 0 && --r->remaining == 0) {
            /* Spent: drop it so the list does not fill with dead rules. */
            memmove(r, r + 1, (fs->n - i - 1) * sizeof(*r));
            fs->n--;
        }
        return true;
    }
    return false;
}

int sy_mock_faults_to_json(const sy_mock_faults_t *fs, sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "[");
    for (size_t i = 0; i < fs->n && rc == 0; i++) {
        const sy_mock_rule_t *r = &fs->rules[i];
        rc = sy_buf_appendf(out, "%s{\"count\":%lld,\"endpoint\":", i ? "," : "",
                            (long long)r->remaining);
        if (rc == 0 && r->endpoint >= 0)
            rc = sy_buf_appendf(out, "\"%s\"", sy_mock_endpoint_name(r->endpoint));
        else if (rc == 0)
            rc = SY_MOCK_LIT(out, "null");
        rc = rc ? rc : SY_MOCK_LIT(out, ",\"fault\":");
        rc = rc ? rc : sy_mock_fault_to_json(&r->fault, out);
        rc = rc ? rc : SY_MOCK_LIT(out, "}");
    }
    return rc ? rc : SY_MOCK_LIT(out, "]");
}
