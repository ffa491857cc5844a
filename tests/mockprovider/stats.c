/* Counters per endpoint and the last request of each, served as JSON by
 * GET /_mock/stats so tests can prove what a gateway sent. */
#include <string.h>
#include "json.h"
#include "mock.h"

void sy_mock_stats_init(sy_mock_stats_t *s, const char *name)
{
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->last_ep = -1;
    for (int i = 0; i < SY_MOCK_EP_COUNT; i++) {
        sy_buf_init(&s->ep[i].last_method);
        sy_buf_init(&s->ep[i].last_path);
        sy_buf_init(&s->ep[i].last_headers);
        sy_buf_init(&s->ep[i].last_body);
    }
}

void sy_mock_stats_free(sy_mock_stats_t *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < SY_MOCK_EP_COUNT; i++) {
        sy_buf_free(&s->ep[i].last_method);
        sy_buf_free(&s->ep[i].last_path);
        sy_buf_free(&s->ep[i].last_headers);
        sy_buf_free(&s->ep[i].last_body);
    }
}

void sy_mock_stats_reset(sy_mock_stats_t *s)
{
    for (int i = 0; i < SY_MOCK_EP_COUNT; i++) {
        sy_mock_ep_stats_t *e = &s->ep[i];
        e->received = e->completed = e->aborted = e->faults = e->errors = 0;
        e->has_last = false;
        e->last_body_len = 0;
        sy_buf_reset(&e->last_method);
        sy_buf_reset(&e->last_path);
        sy_buf_reset(&e->last_headers);
        sy_buf_reset(&e->last_body);
    }
    s->last_ep = -1;
    s->connections = 0;
}

/* The last request of an endpoint: the body is embedded as JSON when it
 * parses (so tests can read e.g. body.stream_options), else as a string. */
static int last_to_json(const sy_mock_ep_stats_t *e, sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "{\"method\":");
    rc = rc ? rc
            : sy_buf_append_json_string(out, e->last_method.data ? e->last_method.data : "",
                                        e->last_method.len);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"path\":");
    rc = rc ? rc
            : sy_buf_append_json_string(out, e->last_path.data ? e->last_path.data : "",
                                        e->last_path.len);
    rc = rc ? rc : SY_MOCK_LIT(out, ",\"headers\":{");
    /* last_headers holds "name:value\n" lines. */
    const char *p = e->last_headers.len ? e->last_headers.data : NULL;
    const char *end = p ? p + e->last_headers.len : NULL;
    for (bool first = true; rc == 0 && p != NULL && p < end; first = false) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *nl = colon ? memchr(colon, '\n', (size_t)(end - colon)) : NULL;
        if (nl == NULL)
            break;
        rc = first ? 0 : sy_buf_append(out, ",", 1);
        rc = rc ? rc : sy_buf_append_json_string(out, p, (size_t)(colon - p));
        rc = rc ? rc : sy_buf_append(out, ":", 1);
        rc = rc ? rc : sy_buf_append_json_string(out, colon + 1, (size_t)(nl - colon - 1));
        p = nl + 1;
    }
    rc = rc ? rc : sy_buf_append(out, "}", 1);
    rc =
        rc ? rc : sy_buf_appendf(out, ",\"body_bytes\":%llu", (unsigned long long)e->last_body_len);
    if (rc)
        return rc;

    json_object *body = NULL;
    if (e->last_body.len > 0 && e->last_body_len == e->last_body.len &&
        sy_json_parse_once(e->last_body.data, e->last_body.len, &body, NULL) == 0) {
        size_t len = 0;
        const char *s = sy_json_to_string(body, &len);
        rc = SY_MOCK_LIT(out, ",\"body\":");
        rc = rc ? rc : sy_buf_append(out, s, len);
        /* A summary of the fields gateway tests ask about most. */
        const char *model = sy_json_get_string(body, "model", NULL);
        rc = rc ? rc : SY_MOCK_LIT(out, ",\"model\":");
        if (rc == 0 && model != NULL)
            rc = sy_buf_append_json_string(out, model, strlen(model));
        else if (rc == 0)
            rc = SY_MOCK_LIT(out, "null");
        bool stream = false, include_usage = false;
        sy_json_get_bool(body, "stream", &stream);
        sy_json_get_bool(sy_json_get_object(body, "stream_options"), "include_usage",
                         &include_usage);
        rc = rc ? rc
                : sy_buf_appendf(out, ",\"stream\":%s,\"include_usage\":%s",
                                 stream ? "true" : "false", include_usage ? "true" : "false");
        json_object_put(body);
    } else {
        rc = SY_MOCK_LIT(out, ",\"body\":");
        rc = rc ? rc
                : sy_buf_append_json_string(out, e->last_body.len ? e->last_body.data : "",
                                            e->last_body.len);
    }
    return rc ? rc : SY_MOCK_LIT(out, "}");
}

int sy_mock_stats_to_json(const sy_mock_stats_t *s, sy_buf_t *out)
{
    int rc = SY_MOCK_LIT(out, "{\"name\":");
    rc = rc ? rc : sy_buf_append_json_string(out, s->name, strlen(s->name));
    uint64_t total = 0;
    for (int i = 0; i < SY_MOCK_EP_COUNT; i++)
        total += s->ep[i].received;
    rc = rc ? rc
            : sy_buf_appendf(out, ",\"requests\":%llu,\"connections\":%llu,\"endpoints\":{",
                             (unsigned long long)total, (unsigned long long)s->connections);
    for (int i = 0; i < SY_MOCK_EP_COUNT && rc == 0; i++) {
        const sy_mock_ep_stats_t *e = &s->ep[i];
        rc = sy_buf_appendf(out,
                            "%s\"%s\":{\"received\":%llu,\"completed\":%llu,\"aborted\":%llu,"
                            "\"faults\":%llu,\"errors\":%llu,\"last\":",
                            i ? "," : "", sy_mock_endpoint_name(i), (unsigned long long)e->received,
                            (unsigned long long)e->completed, (unsigned long long)e->aborted,
                            (unsigned long long)e->faults, (unsigned long long)e->errors);
        if (rc == 0 && e->has_last)
            rc = last_to_json(e, out);
        else if (rc == 0)
            rc = SY_MOCK_LIT(out, "null");
        rc = rc ? rc : SY_MOCK_LIT(out, "}");
    }
    rc = rc ? rc : SY_MOCK_LIT(out, "},\"last\":");
    if (rc == 0 && s->last_ep >= 0 && s->ep[s->last_ep].has_last) {
        rc = sy_buf_appendf(out,
                            "{\"endpoint\":\"%s\",\"request\":", sy_mock_endpoint_name(s->last_ep));
        rc = rc ? rc : last_to_json(&s->ep[s->last_ep], out);
        rc = rc ? rc : SY_MOCK_LIT(out, "}");
    } else if (rc == 0) {
        rc = SY_MOCK_LIT(out, "null");
    }
    return rc ? rc : SY_MOCK_LIT(out, "}");
}
