/* libFuzzer target for the strict JSON wrapper: parsing must never crash or
 * leak; whatever is accepted must serialize to JSON that is accepted again and
 * serializes identically (a fixed point), and the parser must stay usable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sy_json_parser_t *p;
    if (p == NULL)
        p = sy_json_parser_new();
    if (p == NULL)
        abort();
    json_object *o = NULL;
    const char *why = NULL;
    int rc = sy_json_parse(p, (const char *)data, size, &o, &why);
    if (rc != 0) {
        if (why == NULL || rc != SY_EINVAL)
            abort();
        return 0;
    }
    size_t len = 0;
    const char *s = sy_json_to_string(o, &len);
    char *copy = malloc(len + 1);
    memcpy(copy, s, len + 1);
    json_object *o2 = NULL;
    if (sy_json_parse(p, copy, len, &o2, &why) != 0)
        abort();
    size_t len2 = 0;
    const char *s2 = sy_json_to_string(o2, &len2);
    if (len2 != len || memcmp(s2, copy, len) != 0)
        abort();
    json_object_put(o2);
    json_object_put(o);
    free(copy);
    return 0;
}
