/* Server-Sent Events framer (WHATWG event-stream algorithm, byte level).
 *
 * A feed is scanned for the blank line that ends the current event. An event
 * that lies wholly inside the feed is parsed in place and handed to the
 * callback as views into the caller's bytes; only the unfinished tail of a
 * feed is copied (into `pending`), and the next feed copies only up to the
 * end of that event before returning to zero-copy mode. The only other copy
 * is the joining of several data lines of one event. */
#include "sse.h"

#include <string.h>

enum { SCAN_MORE = 0, SCAN_FOUND = 1, SCAN_TOO_BIG = -1 };

void sy_sse_framer_init(sy_sse_framer_t *f, size_t max_event, sy_sse_event_cb cb, void *ctx)
{
    f->cb = cb;
    f->ctx = ctx;
    f->max_event = max_event;
    sy_buf_init(&f->pending);
    sy_buf_init(&f->data);
    f->skip_lf = false;
    f->failed = false;
}

/* Looks for the blank line ending an event in p[0..n). line_start / prev_cr
 * carry the line state of the bytes of the event before p. On SCAN_FOUND,
 * *end is the offset just past the blank line's terminator (a '\r' '\n' pair
 * counts as one), and *cr_last says that terminator was a '\r' that is the
 * last byte of p, so a '\n' in the next feed may still belong to it. The event
 * may use at most limit bytes of p. */
static int scan(const char *p, size_t n, size_t limit, bool line_start, bool prev_cr, size_t *end,
                bool *cr_last)
{
    for (size_t k = 0; k < n; k++) {
        if (k >= limit)
            return SCAN_TOO_BIG;
        char c = p[k];
        if (prev_cr && c == '\n') {
            prev_cr = false;
            continue;
        }
        prev_cr = false;
        if (c == '\n' || c == '\r') {
            if (line_start) {
                if (c == '\n') {
                    *end = k + 1;
                    *cr_last = false;
                } else if (k + 1 < n) {
                    *end = k + 1 + (p[k + 1] == '\n');
                    *cr_last = false;
                } else {
                    *end = n;
                    *cr_last = true;
                }
                return SCAN_FOUND;
            }
            line_start = true;
            prev_cr = c == '\r';
        } else {
            line_start = false;
        }
    }
    return n > limit ? SCAN_TOO_BIG : SCAN_MORE;
}

/* Parses the complete event raw[0..n) (ending in its blank line) and hands it
 * to the callback when it has at least one data line. */
static int dispatch(sy_sse_framer_t *f, const char *raw, size_t n)
{
    sy_sse_event_t ev = {SY_STR_NULL, SY_STR_NULL, SY_STR_NULL, {raw, n}};
    size_t ndata = 0;
    size_t i = 0;
    while (i < n) {
        size_t s = i;
        while (i < n && raw[i] != '\n' && raw[i] != '\r')
            i++;
        size_t e = i;
        if (i < n) {
            if (raw[i] == '\r' && i + 1 < n && raw[i + 1] == '\n')
                i++;
            i++;
        }
        if (e == s)
            break; /* the blank line */
        if (raw[s] == ':')
            continue; /* comment */
        const char *colon = memchr(raw + s, ':', e - s);
        sy_str_t name;
        sy_str_t value;
        if (colon != NULL) {
            name = (sy_str_t){raw + s, (size_t)(colon - (raw + s))};
            const char *v = colon + 1;
            if (v < raw + e && *v == ' ')
                v++;
            value = (sy_str_t){v, (size_t)(raw + e - v)};
        } else {
            name = (sy_str_t){raw + s, e - s};
            value = (sy_str_t){raw + e, 0};
        }
        if (sy_str_eq_cstr(name, "data")) {
            if (ndata == 0) {
                ev.data = value;
            } else {
                if (ndata == 1) {
                    sy_buf_reset(&f->data);
                    if (sy_buf_append_view(&f->data, ev.data) < 0)
                        return SY_ENOMEM;
                }
                if (sy_buf_append(&f->data, "\n", 1) < 0 || sy_buf_append_view(&f->data, value) < 0)
                    return SY_ENOMEM;
            }
            ndata++;
        } else if (sy_str_eq_cstr(name, "event")) {
            ev.event = value;
        } else if (sy_str_eq_cstr(name, "id")) {
            if (value.len == 0 || memchr(value.ptr, '\0', value.len) == NULL)
                ev.id = value;
        }
        /* "retry" and unknown fields are ignored. */
    }
    if (ndata == 0)
        return 0;
    if (ndata > 1)
        ev.data = (sy_str_t){f->data.data, f->data.len};
    if (ev.data.len == 0)
        ev.data.ptr = "";
    return f->cb(f->ctx, &ev);
}

static int dispatch_pending(sy_sse_framer_t *f)
{
    int rc = dispatch(f, f->pending.data, f->pending.len);
    sy_buf_reset(&f->pending);
    return rc;
}

static int too_big(sy_sse_framer_t *f)
{
    f->failed = true;
    sy_buf_reset(&f->pending);
    return SY_E2BIG;
}

int sy_sse_framer_feed(sy_sse_framer_t *f, const char *p, size_t n)
{
    if (f->failed)
        return SY_E2BIG;
    if (n == 0)
        return 0;
    size_t i = 0;
    int rc;
    if (f->skip_lf) {
        f->skip_lf = false;
        if (p[0] == '\n') {
            if ((rc = sy_buf_append(&f->pending, "\n", 1)) < 0)
                return rc;
            i = 1;
        }
        if ((rc = dispatch_pending(f)) != 0)
            return rc;
    }
    size_t end = 0;
    bool cr_last = false;
    if (f->pending.len > 0) {
        /* Continue the event begun in an earlier feed; its line state is
         * given by the last byte buffered. */
        char last = f->pending.data[f->pending.len - 1];
        size_t limit = f->max_event > f->pending.len ? f->max_event - f->pending.len : 0;
        int s =
            scan(p + i, n - i, limit, last == '\n' || last == '\r', last == '\r', &end, &cr_last);
        if (s == SCAN_TOO_BIG)
            return too_big(f);
        size_t take = s == SCAN_FOUND ? end : n - i;
        if ((rc = sy_buf_append(&f->pending, p + i, take)) < 0)
            return rc;
        i += take;
        if (s == SCAN_MORE)
            return 0;
        if (cr_last) {
            f->skip_lf = true;
            return 0;
        }
        if ((rc = dispatch_pending(f)) != 0)
            return rc;
    }
    while (i < n) {
        int s = scan(p + i, n - i, f->max_event, true, false, &end, &cr_last);
        if (s == SCAN_TOO_BIG)
            return too_big(f);
        if (s == SCAN_MORE || cr_last) {
            /* Keep only the unfinished (or held back) event. */
            if ((rc = sy_buf_append(&f->pending, p + i, n - i)) < 0)
                return rc;
            f->skip_lf = cr_last;
            return 0;
        }
        if ((rc = dispatch(f, p + i, end)) != 0)
            return rc;
        i += end;
    }
    return 0;
}

int sy_sse_framer_end(sy_sse_framer_t *f)
{
    if (!f->skip_lf)
        return 0;
    f->skip_lf = false;
    return dispatch_pending(f);
}

bool sy_sse_framer_has_partial(const sy_sse_framer_t *f)
{
    return f->pending.len > 0;
}

void sy_sse_framer_reset(sy_sse_framer_t *f)
{
    sy_buf_reset(&f->pending);
    sy_buf_reset(&f->data);
    f->skip_lf = false;
    f->failed = false;
}

void sy_sse_framer_free(sy_sse_framer_t *f)
{
    if (f == NULL)
        return;
    sy_buf_free(&f->pending);
    sy_buf_free(&f->data);
    f->skip_lf = false;
    f->failed = false;
}
