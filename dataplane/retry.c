/* Retry policy; see retry.h. */
#include "dataplane/retry.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

bool sy_retry_status_retryable(int status)
{
    switch (status) {
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
    case 529:
        return true;
    default:
        return false;
    }
}

bool sy_retry_result_retryable(int result)
{
    switch (result) {
    case -ECONNREFUSED:
    case -ECONNRESET:
    case -ECONNABORTED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -ETIMEDOUT:
    case -EIO:
    case -EPIPE:
    case -EPROTO:
    case -EAGAIN:
        return true;
    default:
        return false;
    }
}

int sy_retry_parse_after(const char *v, int64_t now_unix, int64_t *ms)
{
    if (v == NULL)
        return SY_EINVAL;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '\0')
        return SY_EINVAL;
    if (*v >= '0' && *v <= '9') {
        char *end = NULL;
        double s = strtod(v, &end);
        while (end != NULL && (*end == ' ' || *end == '\t'))
            end++;
        if (end == NULL || *end != '\0' || !(s >= 0) || s > 86400.0 * 365)
            return SY_EINVAL;
        *ms = (int64_t)(s * 1000.0 + 0.5);
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return SY_EINVAL;
    int64_t t = (int64_t)timegm(&tm);
    *ms = t > now_unix ? (t - now_unix) * 1000 : 0;
    return 0;
}

uint32_t sy_retry_backoff_ms(const sy_retry_policy_t *p, uint32_t attempt, int64_t retry_after_ms,
                             uint64_t rnd)
{
    uint64_t base = p->base_ms ? p->base_ms : 50;
    uint64_t cap = p->max_backoff_ms ? p->max_backoff_ms : 2000;
    uint64_t ceil = base;
    for (uint32_t i = 1; i < attempt && ceil < cap; i++)
        ceil *= 2;
    if (ceil > cap)
        ceil = cap;
    uint64_t wait = rnd % (ceil + 1);
    if (retry_after_ms >= 0) {
        uint64_t ra = retry_after_ms > 60000 ? 60000 : (uint64_t)retry_after_ms;
        if (ra > wait)
            wait = ra;
    }
    return (uint32_t)wait;
}

bool sy_retry_may_retry(const sy_retry_policy_t *p, uint32_t attempts_done, uint64_t elapsed_ms,
                        uint32_t wait_ms)
{
    uint32_t max = p->max_attempts ? p->max_attempts : 3;
    if (attempts_done >= max)
        return false;
    if (p->deadline_ms > 0 && elapsed_ms + wait_ms >= p->deadline_ms)
        return false;
    return true;
}
