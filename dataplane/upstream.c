/* The upstream client: the libcurl engine (a multi handle driven by libuv)
 * and the dispatch to the built-in HTTP/1.1 engine; see upstream.h. */
#include "dataplane/upstream.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataplane/upstream_h1.h"
#include "log.h"

#define FREE_EASY_MAX 256    /* recycled easy handles kept per worker */
#define MAX_HEADERS 40       /* request header lines per transfer */
#define URL_CACHE_MAX 64     /* distinct upstream URLs kept parsed per worker */
#define HEAD_MAX (64 * 1024) /* response head cap, as the built-in engine's (502 beyond) */

/* An upstream URL parsed once (providers x endpoints: a handful). libcurl
 * otherwise parses the URL of every transfer and prints it back
 * (curl_url_set + curl_url_get with its byte-at-a-time printf), about a
 * tenth of its work per request; with CURLOPT_CURLU it only duplicates the
 * parsed form. Entries live until the pool is freed (transfers borrow them
 * without counting); past URL_CACHE_MAX distinct URLs, libcurl parses. */
typedef struct url_entry {
    char *text; /* owned */
    CURLU *url; /* owned */
} url_entry_t;

struct sy_upstream {
    uv_loop_t *loop;                 /* borrowed */
    CURLM *multi;                    /* owned */
    uv_timer_t timer;                /* libcurl's single timeout */
    uv_check_t kick;                 /* a 0 ms timeout: runs right after this pass's I/O */
    uv_idle_t kick_next;             /* a 0 ms timeout armed from the kick itself: next pass */
    sy_upstream_xfer_t *active;      /* borrowed; list of active transfers */
    size_t n_active;                 /* length of active */
    CURL *free_easy[FREE_EASY_MAX];  /* owned; reset handles ready for reuse */
    size_t n_free;                   /* entries in free_easy */
    int open_handles;                /* handles not yet closed (timer, kick, polls) */
    struct sock_ctx *socks;          /* borrowed; list of watched sockets */
    struct sock_ctx **by_fd;         /* owned array; sockets we opened, by descriptor */
    size_t n_by_fd;                  /* entries in by_fd */
    bool closing;                    /* sy_upstream_close was called */
    url_entry_t urls[URL_CACHE_MAX]; /* owned; parsed upstream URLs */
    size_t n_urls;                   /* entries in urls */
    bool no_env_proxy;               /* no proxy variable in the environment (read once) */
    bool in_check;                   /* inside the kick's check callback */
    size_t n_idle;                   /* owned sockets libcurl is not polling: cached connections */
    sy_h1_t *h1; /* owned; built-in engine for plain http, NULL = libcurl only */
};

/* One socket's poll handle; freed in its close callback. A socket opened
 * through on_open_socket keeps its handle from open to close, across the
 * idle periods of a kept-alive connection, which spares a malloc, an ioctl
 * and epoll_ctl churn per request: uv_poll_start always deletes the
 * descriptor from epoll and adds it again, so it is called only when the
 * events change, and CURL_POLL_REMOVE leaves a cached connection watched
 * for reading (its next request asks for reading again: no system call).
 * Should an idle connection become readable (the upstream closed it), the
 * watch stops until libcurl asks again; libcurl finds it dead on reuse.
 * Sockets libcurl opens by itself (resolver wake-ups) are owned = false and
 * live from their first poll request to CURL_POLL_REMOVE.
 *
 * An owned socket is polled through a private duplicate descriptor, never
 * through libcurl's: libcurl 7.88 closes some sockets without calling
 * on_close_socket (a connection attempt it gives up, e.g.), and libuv
 * aborts the process when it must add a closed descriptor to epoll (seen
 * under connection churn), or mixes up handles when the number is reused
 * by another socket meanwhile. The duplicate stays open until we close it,
 * so the poll handle always refers to a live descriptor of its own; a
 * socket libcurl dropped silently is found by comparing inodes (when its
 * number comes back from socket(), at CURL_POLL_REMOVE, or when its idle
 * watch fires) and closed then. */
typedef struct sock_ctx {
    uv_poll_t poll;        /* embedded handle */
    struct sock_ctx *prev; /* borrowed; pool's socket list */
    struct sock_ctx *next; /* borrowed */
    curl_socket_t fd;      /* the socket, as libcurl knows it */
    int pfd;               /* the descriptor polled: a private duplicate when owned */
    ino_t ino;             /* the socket's inode (owned): tells a reused number apart */
    sy_upstream_t *pool;   /* borrowed */
    int events;            /* UV_READABLE/UV_WRITABLE being polled, 0 = stopped */
    bool owned;            /* opened by on_open_socket, closed by on_close_socket */
    bool wanted;           /* libcurl asked for events since its last CURL_POLL_REMOVE */
} sock_ctx_t;

static void check_done(sy_upstream_t *pool);
static void on_sock_closed(uv_handle_t *h);

static void maybe_free_pool(sy_upstream_t *pool)
{
    if (pool->closing && pool->open_handles == 0) {
        for (size_t i = 0; i < pool->n_free; i++)
            curl_easy_cleanup(pool->free_easy[i]);
        if (pool->multi != NULL)
            curl_multi_cleanup(pool->multi);
        for (size_t i = 0; i < pool->n_urls; i++) {
            curl_url_cleanup(pool->urls[i].url);
            free(pool->urls[i].text);
        }
        free(pool->by_fd);
        free(pool);
    }
}

/* Keeps pool->n_idle: owned sockets libcurl does not poll are connections
 * resting in its cache (or, rarely, a paused transfer's). */
static void set_wanted(sock_ctx_t *sc, bool wanted)
{
    if (sc->owned && sc->wanted != wanted) {
        if (wanted)
            sc->pool->n_idle--;
        else
            sc->pool->n_idle++;
    }
    sc->wanted = wanted;
}

static void sock_close(sy_upstream_t *pool, sock_ctx_t *sc)
{
    set_wanted(sc, true); /* no longer counted idle */
    uv_poll_stop(&sc->poll);
    sc->events = 0;
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        pool->socks = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    sc->prev = sc->next = NULL;
    if (sc->owned && (size_t)sc->fd < pool->n_by_fd && pool->by_fd[sc->fd] == sc)
        pool->by_fd[sc->fd] = NULL;
    uv_close((uv_handle_t *)&sc->poll, on_sock_closed);
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_ctx_t *sc = sy_container_of((uv_poll_t *)h, sock_ctx_t, poll);
    sy_upstream_t *pool = sc->pool;
    if (sc->pfd != sc->fd)
        close(sc->pfd); /* after the handle: it was polled */
    free(sc);
    pool->open_handles--;
    maybe_free_pool(pool);
}

static sock_ctx_t *sock_new(sy_upstream_t *pool, curl_socket_t fd, bool owned)
{
    sock_ctx_t *sc = malloc(sizeof(*sc));
    if (sc == NULL)
        return NULL;
    sc->pfd = fd;
    sc->ino = 0;
    if (owned) {
        struct stat st;
        sc->pfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (sc->pfd < 0 || fstat(fd, &st) != 0) {
            if (sc->pfd >= 0)
                close(sc->pfd);
            free(sc);
            return NULL;
        }
        sc->ino = st.st_ino;
    }
    if (uv_poll_init_socket(pool->loop, &sc->poll, sc->pfd) != 0) {
        if (sc->pfd != fd)
            close(sc->pfd);
        free(sc);
        return NULL;
    }
    sc->fd = fd;
    sc->pool = pool;
    sc->events = 0;
    sc->owned = owned;
    sc->wanted = true; /* a new socket is about to connect */
    sc->prev = NULL;
    sc->next = pool->socks;
    if (pool->socks != NULL)
        pool->socks->prev = sc;
    pool->socks = sc;
    pool->open_handles++;
    return sc;
}

/* CURLOPT_OPENSOCKETFUNCTION: creates the socket and its poll handle. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    sy_upstream_t *pool = clientp;
    SY_UNUSED(purpose);
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    if ((size_t)fd >= pool->n_by_fd) {
        size_t n = pool->n_by_fd ? pool->n_by_fd : 64;
        while (n <= (size_t)fd)
            n *= 2;
        sock_ctx_t **a = realloc(pool->by_fd, n * sizeof(*a));
        if (a == NULL) {
            close(fd);
            return CURL_SOCKET_BAD;
        }
        memset(a + pool->n_by_fd, 0, (n - pool->n_by_fd) * sizeof(*a));
        pool->by_fd = a;
        pool->n_by_fd = n;
    }
    if (pool->by_fd[fd] != NULL)
        sock_close(pool, pool->by_fd[fd]); /* libcurl closed the last one by itself */
    sock_ctx_t *sc = sock_new(pool, fd, true);
    if (sc == NULL) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    pool->by_fd[fd] = sc;
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the handle goes first, then the descriptor. */
static int on_close_socket(void *clientp, curl_socket_t fd)
{
    sy_upstream_t *pool = clientp;
    if ((size_t)fd < pool->n_by_fd && pool->by_fd[fd] != NULL)
        sock_close(pool, pool->by_fd[fd]);
    return close(fd);
}

/* False when libcurl no longer has sc's socket under its number (it
 * closed it without on_close_socket; the number may be another socket's). */
static bool still_libcurls(const sock_ctx_t *sc)
{
    struct stat st;
    return !sc->owned || (fstat(sc->fd, &st) == 0 && st.st_ino == sc->ino);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx_t *sc = sy_container_of(h, sock_ctx_t, poll);
    sy_upstream_t *pool = sc->pool;
    if (!still_libcurls(sc)) {
        /* Dropped by libcurl without a word: a live duplicate would
         * otherwise report it ready forever. */
        sock_close(pool, sc);
        return;
    }
    if (!sc->wanted) {
        /* An idle cached connection turned readable: the upstream closed it
         * (or broke protocol). Stop watching; libcurl sees it dead on reuse
         * or closes it when pruning its cache. */
        uv_poll_stop(&sc->poll);
        sc->events = 0;
        return;
    }
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running;
    curl_multi_socket_action(pool->multi, sc->fd, flags, &running);
    check_done(pool);
}

static void on_timeout(uv_timer_t *t)
{
    sy_upstream_t *pool = sy_container_of(t, sy_upstream_t, timer);
    int running;
    curl_multi_socket_action(pool->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(pool);
}

static void kick(sy_upstream_t *pool)
{
    int running;
    curl_multi_socket_action(pool->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(pool);
}

static void on_kick(uv_check_t *h)
{
    sy_upstream_t *pool = sy_container_of(h, sy_upstream_t, kick);
    uv_check_stop(h);
    pool->in_check = true;
    kick(pool);
    pool->in_check = false;
}

static void on_kick_next(uv_idle_t *h)
{
    sy_upstream_t *pool = sy_container_of(h, sy_upstream_t, kick_next);
    uv_idle_stop(h);
    kick(pool);
}

/* CURLMOPT_TIMERFUNCTION: only arms the timer (never calls libcurl). */
static int start_timeout(CURLM *multi, long ms, void *userp)
{
    SY_UNUSED(multi);
    sy_upstream_t *pool = userp;
    if (pool->closing)
        return 0;
    if (ms < 0) {
        uv_timer_stop(&pool->timer);
        uv_check_stop(&pool->kick);
        uv_idle_stop(&pool->kick_next);
    } else if (ms == 0) {
        /* "Now": a check handle runs right after the I/O callbacks of this
         * loop pass (where transfers are added), before the loop sleeps
         * again: a new request goes upstream in the pass its client's bytes
         * arrived, with no extra epoll_wait. A 1 ms timer would add a
         * millisecond to every request, and a 0 ms timer armed in a timer
         * callback re-runs in the same pass in libuv 1.44. Armed from the
         * check callback itself, a check handle would wait for the next
         * I/O, so an idle handle (next pass, no sleep) takes that case. */
        uv_timer_stop(&pool->timer);
        if (pool->in_check)
            uv_idle_start(&pool->kick_next, on_kick_next);
        else
            uv_check_start(&pool->kick, on_kick);
    } else {
        uv_check_stop(&pool->kick);
        uv_idle_stop(&pool->kick_next);
        uv_timer_start(&pool->timer, on_timeout, (uint64_t)ms, 0);
    }
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION. */
static int handle_socket(CURL *easy, curl_socket_t s, int action, void *userp, void *socketp)
{
    SY_UNUSED(easy);
    SY_UNUSED(socketp); /* looked up by descriptor: curl forgets it on REMOVE */
    sy_upstream_t *pool = userp;
    sock_ctx_t *sc = (size_t)s < pool->n_by_fd ? pool->by_fd[s] : NULL;
    if (sc == NULL) {
        for (sock_ctx_t *it = pool->socks; it != NULL; it = it->next)
            if (!it->owned && it->fd == s) {
                sc = it;
                break;
            }
    }
    if (action == CURL_POLL_REMOVE) {
        if (sc != NULL) {
            set_wanted(sc, false);
            if (!sc->owned || !still_libcurls(sc)) {
                sock_close(pool, sc);
            } else if (sc->events != UV_READABLE) {
                /* Idle in the cache: watched for reading only (see sock_ctx_t). */
                uv_poll_start(&sc->poll, UV_READABLE, on_poll);
                sc->events = UV_READABLE;
            }
        }
        return 0;
    }
    if (sc == NULL && (sc = sock_new(pool, s, false)) == NULL)
        return -1;
    int events = 0;
    if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    set_wanted(sc, true);
    if (events != sc->events) {
        if (events == 0)
            uv_poll_stop(&sc->poll);
        else if (uv_poll_start(&sc->poll, events, on_poll) != 0)
            return -1;
        sc->events = events;
    }
    return 0;
}

static void on_h1_closed(void *arg)
{
    sy_upstream_t *pool = arg;
    pool->open_handles--;
    maybe_free_pool(pool);
}

int sy_upstream_new(uv_loop_t *loop, bool builtin_http, sy_upstream_t **out)
{
    sy_upstream_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return SY_ENOMEM;
    pool->loop = loop;
    pool->multi = curl_multi_init();
    if (pool->multi == NULL) {
        free(pool);
        return SY_ENOMEM;
    }
    int rc = uv_timer_init(loop, &pool->timer);
    if (rc != 0) {
        curl_multi_cleanup(pool->multi);
        free(pool);
        return rc;
    }
    uv_check_init(loop, &pool->kick);     /* cannot fail */
    uv_idle_init(loop, &pool->kick_next); /* cannot fail */
    pool->open_handles = 3;
    /* libcurl reads the proxy variables (and no_proxy) from the environment
     * on every transfer (five getenv calls); when none is set, an empty
     * CURLOPT_PROXY/NOPROXY on each handle says "no proxy" once. When one is
     * set, libcurl keeps reading them itself, so its rules stay exact. */
    static const char *const proxy_vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                             "HTTPS_PROXY", "all_proxy",  "ALL_PROXY",
                                             "no_proxy",    "NO_PROXY"};
    pool->no_env_proxy = true;
    for (size_t i = 0; i < SY_ARRAY_LEN(proxy_vars); i++)
        if (getenv(proxy_vars[i]) != NULL)
            pool->no_env_proxy = false;
    curl_multi_setopt(pool->multi, CURLMOPT_SOCKETFUNCTION, handle_socket);
    curl_multi_setopt(pool->multi, CURLMOPT_SOCKETDATA, pool);
    curl_multi_setopt(pool->multi, CURLMOPT_TIMERFUNCTION, start_timeout);
    curl_multi_setopt(pool->multi, CURLMOPT_TIMERDATA, pool);
    curl_multi_setopt(pool->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(pool->multi, CURLMOPT_MAXCONNECTS, 1024L);
    /* With a proxy variable set, plain http goes through libcurl too, which
     * applies the proxy rules. */
    if (builtin_http && pool->no_env_proxy) {
        if (sy_h1_new(loop, on_h1_closed, pool, &pool->h1) != 0) {
            sy_upstream_close(pool);
            return SY_ENOMEM;
        }
        pool->open_handles++;
    }
    *out = pool;
    return 0;
}

static void list_add(sy_upstream_t *pool, sy_upstream_xfer_t *x)
{
    x->active = true;
    x->next = pool->active;
    if (pool->active != NULL)
        pool->active->prev = x;
    pool->active = x;
    pool->n_active++;
}

static void list_remove(sy_upstream_t *pool, sy_upstream_xfer_t *x)
{
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        pool->active = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    pool->n_active--;
}

/* Removes x's handle from the multi and recycles it: its options stay
 * set (sy_upstream_start overwrites every per-transfer one), which spares a
 * curl_easy_reset and a dozen option copies per request. */
static void detach(sy_upstream_xfer_t *x)
{
    sy_upstream_t *pool = x->pool;
    if (x->h1) {
        sy_h1_stop(x);
    } else {
        curl_multi_remove_handle(pool->multi, x->easy);
        if (pool->n_free < FREE_EASY_MAX && !pool->closing) {
            /* Nothing may point at x's memory while the handle waits. */
            curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
            curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
            pool->free_easy[pool->n_free++] = x->easy;
        } else {
            curl_easy_cleanup(x->easy);
        }
    }
    x->easy = NULL;
    x->headers = NULL;
    x->active = false;
    x->paused = false;
    list_remove(pool, x);
}

void sy_upstream_finished(sy_upstream_xfer_t *x, int result, const char *why)
{
    if (!x->active)
        return;
    detach(x);
    if (x->cbs->on_done != NULL)
        x->cbs->on_done(x->ctx, x, result, why);
}

static void on_timer_closed(uv_handle_t *h)
{
    sy_upstream_t *pool = h->data;
    pool->open_handles--;
    maybe_free_pool(pool);
}

void sy_upstream_close(sy_upstream_t *pool)
{
    if (pool == NULL || pool->closing)
        return;
    while (pool->active != NULL)
        sy_upstream_cancel(pool->active);
    pool->closing = true;
    sy_h1_close(pool->h1);
    for (size_t i = 0; i < pool->n_free; i++)
        curl_easy_cleanup(pool->free_easy[i]);
    pool->n_free = 0;
    /* Closing the multi's cached connections reports CURL_POLL_REMOVE for
     * their sockets, which closes our poll handles. */
    curl_multi_cleanup(pool->multi);
    pool->multi = NULL;
    while (pool->socks != NULL)
        sock_close(pool, pool->socks);
    pool->timer.data = pool;
    pool->kick.data = pool;
    pool->kick_next.data = pool;
    uv_close((uv_handle_t *)&pool->timer, on_timer_closed);
    uv_close((uv_handle_t *)&pool->kick, on_timer_closed);
    uv_close((uv_handle_t *)&pool->kick_next, on_timer_closed);
}

/* A transfer that failed on a reused connection before any answer byte
 * most likely met a connection the upstream had closed while idle (its
 * keep-alive timeout racing our request). libcurl 7.88 does not always send
 * such a request again; this does, once, on a fresh connection, as the
 * built-in engine does. Returns true when x was started again. */
static bool retry_stale(sy_upstream_xfer_t *x, CURLcode res)
{
    if (x->retried || x->status != 0 || x->first_byte_ms != 0 || x->head_bytes != 0 ||
        (res != CURLE_SEND_ERROR && res != CURLE_RECV_ERROR && res != CURLE_GOT_NOTHING))
        return false;
    long fresh = 0;
    if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &fresh) != CURLE_OK || fresh != 0)
        return false; /* it was a new connection: a real failure */
    sy_upstream_t *pool = x->pool;
    x->retried = true;
    curl_multi_remove_handle(pool->multi, x->easy);
    curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
    return curl_multi_add_handle(pool->multi, x->easy) == CURLM_OK;
}

static void check_done(sy_upstream_t *pool)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(pool->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result; /* copy before the handle goes */
        sy_upstream_xfer_t *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (x == NULL || !x->active)
            continue;
        if (x->status == 0)
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x->status);
        if (retry_stale(x, res))
            continue;
        detach(x);
        int rc = 0;
        const char *why = NULL;
        switch (res) {
        case CURLE_OK:
            break;
        case CURLE_WRITE_ERROR:
            if (x->head_bytes > HEAD_MAX) {
                rc = SY_EIO;
                why = "upstream response head too large";
            } else {
                rc = SY_ECANCELED;
                why = "transfer stopped by the gateway";
            }
            break;
        case CURLE_OPERATION_TIMEDOUT:
            rc = -ETIMEDOUT;
            why = "upstream timed out";
            break;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
            rc = -ECONNREFUSED;
            why = "cannot connect to the upstream";
            break;
        default:
            rc = SY_EIO;
            why = "upstream connection failed";
            break;
        }
        if (x->cbs->on_done != NULL)
            x->cbs->on_done(x->ctx, x, rc, why);
    }
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *userp)
{
    sy_upstream_xfer_t *x = userp;
    size_t n = size * nmemb;
    if (x->first_byte_ms == 0) {
        x->first_byte_ms = uv_now(x->pool->loop);
        if (x->first_byte_ms == 0)
            x->first_byte_ms = 1;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    }
    x->last_data_ms = uv_now(x->pool->loop);
    size_t r = x->cbs->on_data(x->ctx, x, p, n);
    if (r == CURL_WRITEFUNC_PAUSE)
        x->paused = true;
    return r;
}

/* Keeps the status, Content-Type and Retry-After of the final response. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *userp)
{
    sy_upstream_xfer_t *x = userp;
    size_t n = size * nmemb;
    x->head_bytes += (uint32_t)(n < HEAD_MAX ? n : HEAD_MAX);
    if (x->head_bytes > HEAD_MAX)
        return 0; /* libcurl alone would take ~300 KiB; check_done reports it */
    if (n > 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->content_type[0] = '\0';
        x->retry_after[0] = '\0';
        return n;
    }
    char *dst = NULL;
    size_t cap = 0, skip = 0;
    if (n > 13 && strncasecmp(p, "content-type:", 13) == 0) {
        dst = x->content_type;
        cap = sizeof(x->content_type);
        skip = 13;
    } else if (n > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        dst = x->retry_after;
        cap = sizeof(x->retry_after);
        skip = 12;
    }
    if (dst == NULL && x->cbs != NULL && x->cbs->on_header != NULL)
        x->cbs->on_header(x->ctx, x, p, n);
    if (dst != NULL) {
        const char *v = p + skip, *end = p + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t l = (size_t)(end - v);
        if (l >= cap)
            l = cap - 1;
        memcpy(dst, v, l);
        dst[l] = '\0';
    }
    return n;
}

/* The parsed form of url (see url_entry_t), NULL when libcurl must parse it. */
static CURLU *parsed_url(sy_upstream_t *pool, const char *url)
{
    for (size_t i = 0; i < pool->n_urls; i++)
        if (strcmp(pool->urls[i].text, url) == 0)
            return pool->urls[i].url;
    if (pool->n_urls == URL_CACHE_MAX)
        return NULL;
    CURLU *u = curl_url();
    char *text = strdup(url);
    /* The flags libcurl itself parses a CURLOPT_URL with. */
    if (u == NULL || text == NULL ||
        curl_url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) !=
            CURLUE_OK) {
        curl_url_cleanup(u);
        free(text);
        return NULL; /* libcurl reports a bad URL in its own words */
    }
    pool->urls[pool->n_urls++] = (url_entry_t){text, u};
    return u;
}

/* Configures a new easy handle with what never changes between transfers. */
static void easy_setup(sy_upstream_t *pool, CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, pool);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, pool);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (pool->no_env_proxy) {
        curl_easy_setopt(easy, CURLOPT_PROXY, "");
        curl_easy_setopt(easy, CURLOPT_NOPROXY, "");
    }
}

int sy_upstream_reserve_block(sy_upstream_xfer_t *x, size_t need)
{
    if (need <= x->hcap)
        return 0;
    size_t cap = (need + 63) & ~(size_t)63; /* an open stream keeps it: no slack */
    char *blk = malloc(cap);
    if (blk == NULL)
        return SY_ENOMEM;
    if (x->hblock != NULL) {
        explicit_bzero(x->hblock, x->hcap); /* it held the upstream credential */
        free(x->hblock);
    }
    x->hblock = blk;
    x->hcap = cap;
    return 0;
}

/* Lays the request header lines and their curl_slist nodes out in x's
 * header block (grown only when too small, so a connection's requests
 * reuse one allocation) instead of one malloc per line and node. libcurl
 * only reads the list, for as long as the transfer runs. Returns 0 or
 * SY_ENOMEM. */
static int build_headers(sy_upstream_xfer_t *x, const sy_upstream_req_t *req)
{
    static const char bearer_prefix[] = "Authorization: Bearer ";
    const char *lines[MAX_HEADERS];
    size_t lens[MAX_HEADERS];
    size_t n = 0, bytes = 0;
    bool bearer = req->bearer != NULL && req->bearer[0] != '\0';
    if (bearer) {
        lines[n] = NULL; /* prefix + bearer, assembled below */
        lens[n] = sizeof(bearer_prefix) - 1 + strlen(req->bearer);
        n++;
    }
#define LINE(s)                                                                                    \
    do {                                                                                           \
        lines[n] = (s);                                                                            \
        lens[n] = strlen(lines[n]);                                                                \
        n++;                                                                                       \
    } while (0)
    if (req->body != NULL)
        LINE("Content-Type: application/json");
    /* A stream asks for SSE; otherwise libcurl's own default Accept line (any type; part
     * of its request line block) is enough and costs less than a custom one. */
    if (req->stream)
        LINE("Accept: text/event-stream");
    /* No 100-continue round trip for large bodies. libcurl 7.88 adds
     * "Expect: 100-continue" only above 1 MiB, and each custom line costs it
     * a few thousand instructions per request, so the removal line goes
     * only where it matters. */
    if (req->body_len > 1024 * 1024)
        LINE("Expect:");
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        if (n == MAX_HEADERS)
            return SY_E2BIG;
        LINE(req->headers[i]);
    }
#undef LINE
    for (size_t i = 0; i < n; i++)
        bytes += lens[i] + 1;
    size_t nodes = n * sizeof(struct curl_slist);
    size_t need = nodes + bytes; /* nodes first: malloc's alignment suits them */
    if (sy_upstream_reserve_block(x, need) != 0)
        return SY_ENOMEM;
    struct curl_slist *list = (struct curl_slist *)(void *)x->hblock;
    char *text = x->hblock + nodes;
    for (size_t i = 0; i < n; i++) {
        list[i].data = text;
        list[i].next = i + 1 < n ? &list[i + 1] : NULL;
        if (lines[i] == NULL) {
            size_t pl = sizeof(bearer_prefix) - 1;
            memcpy(text, bearer_prefix, pl);
            memcpy(text + pl, req->bearer, lens[i] - pl);
        } else {
            memcpy(text, lines[i], lens[i]);
        }
        text[lens[i]] = '\0';
        text += lens[i] + 1;
    }
    x->headers = n > 0 ? list : NULL;
    return 0;
}

int sy_upstream_start(sy_upstream_t *pool, sy_upstream_xfer_t *x, const sy_upstream_req_t *req,
                      const sy_upstream_cbs_t *cbs, void *ctx)
{
    if (pool->closing)
        return SY_ECANCELED;
    char *hblock = x->hblock;
    size_t hcap = x->hcap;
    memset(x, 0, sizeof(*x));
    x->hblock = hblock;
    x->hcap = hcap;
    x->pool = pool;
    x->cbs = cbs;
    x->ctx = ctx;
    x->first_byte_timeout_ms = req->first_byte_timeout_ms ? req->first_byte_timeout_ms : 60000;
    x->idle_timeout_ms = req->idle_timeout_ms ? req->idle_timeout_ms : 60000;
    x->connect_timeout_ms = req->connect_timeout_ms ? req->connect_timeout_ms : 10000;
    x->total_timeout_ms = req->total_timeout_ms ? req->total_timeout_ms : 600000;
    x->start_ms = uv_now(pool->loop);
    x->last_data_ms = x->start_ms;
    int rc = pool->h1 != NULL ? sy_h1_start(pool->h1, x, req) : SY_H1_NOT_MINE;
    if (rc == 0) {
        list_add(pool, x);
        return 0;
    }
    if (rc != SY_H1_NOT_MINE)
        return rc;
    if ((rc = build_headers(x, req)) != 0)
        return rc;
    CURL *easy;
    if (pool->n_free > 0) {
        easy = pool->free_easy[--pool->n_free];
    } else {
        if ((easy = curl_easy_init()) == NULL)
            return SY_ENOMEM;
        easy_setup(pool, easy);
    }
    x->easy = easy;

    /* Every option a transfer sets is set again here (handles are recycled
     * without curl_easy_reset). */
    curl_easy_setopt(easy, CURLOPT_URL, req->url); /* for libcurl's messages */
    curl_easy_setopt(easy, CURLOPT_CURLU, parsed_url(pool, req->url));
    /* libcurl looks for a reusable connection by walking every connection
     * to the host, busy ones included: with thousands of open streams that
     * walk dominated each new transfer. When no connection rests in the
     * cache, there is nothing to find: skip the search. */
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, pool->n_idle == 0 ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, x);
    /* A small receive buffer keeps memory per open stream low; non-stream
     * bodies use libcurl's default. */
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, req->stream ? 1024L : (long)CURL_MAX_WRITE_SIZE);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)x->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)x->total_timeout_ms);
    if (req->method != NULL && strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    }
    CURLMcode mc = curl_multi_add_handle(pool->multi, easy);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(easy);
        x->easy = NULL;
        x->headers = NULL;
        return mc == CURLM_OUT_OF_MEMORY ? SY_ENOMEM : SY_EIO;
    }
    list_add(pool, x);
    return 0;
}

void sy_upstream_cancel(sy_upstream_xfer_t *x)
{
    if (x == NULL || !x->active)
        return;
    detach(x);
}

void sy_upstream_xfer_free(sy_upstream_xfer_t *x)
{
    if (x == NULL)
        return;
    sy_upstream_cancel(x);
    if (x->hblock != NULL) {
        explicit_bzero(x->hblock, x->hcap); /* it held the upstream credential */
        free(x->hblock);
    }
    x->hblock = NULL;
    x->hcap = 0;
    x->headers = NULL;
}

void sy_upstream_resume(sy_upstream_xfer_t *x)
{
    if (!x->active || !x->paused)
        return;
    x->paused = false;
    x->last_data_ms = uv_now(x->pool->loop);
    if (x->h1)
        sy_h1_resume(x);
    else
        curl_easy_pause(x->easy, CURLPAUSE_CONT);
}

void sy_upstream_sweep(sy_upstream_t *pool, uint64_t now)
{
    if (pool->h1 != NULL)
        sy_h1_sweep(pool->h1, now);
    sy_upstream_xfer_t *x = pool->active;
    while (x != NULL) {
        sy_upstream_xfer_t *next = x->next;
        bool expired = false;
        if (x->first_byte_ms == 0)
            expired = x->first_byte_timeout_ms && now - x->start_ms > x->first_byte_timeout_ms;
        else if (!x->paused)
            expired = x->idle_timeout_ms && now - x->last_data_ms > x->idle_timeout_ms;
        if (x->h1) /* libcurl keeps these two itself */
            expired = expired || now - x->start_ms > x->total_timeout_ms ||
                      (sy_h1_connecting(x) && now - x->start_ms > x->connect_timeout_ms);
        if (expired) {
            if (x->status == 0 && !x->h1)
                curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
            detach(x);
            x->timed_out = true;
            /* on_done may free x and start new transfers (added at the head,
             * so next stays valid). */
            if (x->cbs->on_done != NULL)
                x->cbs->on_done(x->ctx, x, -ETIMEDOUT, "upstream timed out");
        }
        x = next;
    }
}

size_t sy_upstream_active(const sy_upstream_t *pool)
{
    return pool->n_active;
}
