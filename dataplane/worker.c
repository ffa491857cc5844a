/* One worker process; see worker.h. */
#include "dataplane/worker.h"

#include "dataplane/control_link.h"
#include "dataplane/proxy.h"
#include "dataplane/routing.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

#define SWEEP_MS 250

void sy_worker_install_snapshot(sy_worker_t *w, sy_snapshot_t *snap)
{
    if (snap == NULL)
        return;
    sy_snapshot_t *old = w->snap;
    w->snap = snap;
    char fields[160];
    int n = snprintf(fields, sizeof(fields),
                     "\"worker\":%d,\"version\":%llu,\"keys\":%zu,\"models\":%zu", w->cfg.worker_id,
                     (unsigned long long)sy_snapshot_version(snap), sy_snapshot_proto(snap)->n_keys,
                     sy_snapshot_model_count(snap));
    sy_log_fields(SY_LOG_INFO, "snapshot_installed", fields, (size_t)n);
    sy_snapshot_unref(old);
}

void sy_worker_next_id(sy_worker_t *w, char *out)
{
    /* "req_" prefix seq-in-hex, assembled by hand: once per request. */
    static const char hex[] = "0123456789abcdef";
    char digits[16];
    size_t nd = 0;
    for (uint64_t v = ++w->id_seq; v > 0; v >>= 4)
        digits[nd++] = hex[v & 15];
    size_t pl = strnlen(w->id_prefix, sizeof(w->id_prefix));
    if (4 + pl + nd >= SY_REQ_ID_LEN) {
        snprintf(out, SY_REQ_ID_LEN, "req_%s%llx", w->id_prefix, (unsigned long long)w->id_seq);
        return;
    }
    memcpy(out, "req_", 4);
    memcpy(out + 4, w->id_prefix, pl);
    size_t n = 4 + pl;
    while (nd > 0)
        out[n++] = digits[--nd];
    out[n] = '\0';
}

static void on_handle_closed(uv_handle_t *h)
{
    SY_UNUSED(h);
}

/* Closes every handle so that uv_run returns. Not called from inside a
 * libcurl callback or a connection's callback chain (only from the sweep
 * timer and signal handlers). */
void sy_worker_flush_access_log(sy_worker_t *w)
{
    if (w->access_log.len > 1)
        sy_log_line(w->access_log.data, w->access_log.len - 1); /* it adds the last newline */
    sy_buf_reset(&w->access_log);
}

static void stop(sy_worker_t *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    sy_server_close_idle(w, true);
    sy_upstream_close(w->upstream);
    w->upstream = NULL;
    sy_routing_close(w->routing);
    w->routing = NULL;
    sy_control_link_detach(w); /* control link: last usage out, then closes */
    if (!uv_is_closing((uv_handle_t *)&w->listener))
        uv_close((uv_handle_t *)&w->listener, on_handle_closed);
    uv_close((uv_handle_t *)&w->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&w->sig_int, on_handle_closed);
    uv_close((uv_handle_t *)&w->sig_hup, on_handle_closed);
    uv_close((uv_handle_t *)&w->sweep, on_handle_closed);
}

void sy_worker_check_drained(sy_worker_t *w)
{
    SY_UNUSED(w);
    /* Drain progress is checked by the sweep timer, never from inside a
     * connection's callback chain. */
}

static void on_sweep(uv_timer_t *t)
{
    sy_worker_t *w = sy_container_of(t, sy_worker_t, sweep);
    uint64_t now = uv_now(&w->loop);
    if (w->upstream != NULL)
        sy_upstream_sweep(w->upstream, now);
    sy_worker_flush_access_log(w);
    sy_server_sweep(w, now);
    if (w->draining) {
        sy_server_close_idle(w, false);
        if (w->n_conns == 0 || now >= w->drain_deadline_ms) {
            char fields[96];
            int n = snprintf(fields, sizeof(fields), "\"worker\":%d,\"open_connections\":%zu",
                             w->cfg.worker_id, w->n_conns);
            sy_log_fields(now >= w->drain_deadline_ms && w->n_conns ? SY_LOG_WARN : SY_LOG_INFO,
                          "worker_drained", fields, (size_t)n);
            stop(w);
        }
    }
}

static void begin_drain(sy_worker_t *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->drain_deadline_ms = uv_now(&w->loop) + (uint64_t)w->cfg.drain_timeout_ms;
    uv_close((uv_handle_t *)&w->listener, on_handle_closed);
    sy_server_close_idle(w, false);
    char fields[64];
    int n = snprintf(fields, sizeof(fields), "\"worker\":%d,\"in_flight\":%zu", w->cfg.worker_id,
                     w->n_conns);
    sy_log_fields(SY_LOG_INFO, "worker_draining", fields, (size_t)n);
    sy_control_link_worker_flush(w); /* control link: ship usage so far */
}

static void on_signal(uv_signal_t *s, int signum)
{
    sy_worker_t *w = s->data;
    if (signum == SIGHUP) {
        sy_log_reopen();
        if (w->cfg.snapshot_file != NULL) {
            sy_snapshot_t *snap = NULL;
            sy_err_t err;
            sy_err_clear(&err);
            if (sy_snapshot_load_file(w->cfg.snapshot_file, &snap, &err) == 0)
                sy_worker_install_snapshot(w, snap);
            else
                sy_log(SY_LOG_ERROR, "snapshot_reload_failed", "%s", err.msg);
        }
        return;
    }
    begin_drain(w);
}

static void on_connection(uv_stream_t *listener, int status)
{
    sy_worker_t *w = sy_container_of((uv_tcp_t *)listener, sy_worker_t, listener);
    if (status < 0 || w->draining)
        return;
    sy_server_accept(w, listener);
}

/* Binds a listening socket with SO_REUSEPORT so that every worker has its
 * own accept queue and the kernel spreads connections. */
static int open_listener(sy_worker_t *w)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", w->cfg.port);
    int rc = getaddrinfo(w->cfg.host, port, &hints, &ai);
    if (rc != 0) {
        sy_log(SY_LOG_ERROR, "listen_failed", "cannot resolve %s: %s", w->cfg.host,
               gai_strerror(rc));
        return SY_EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        rc = -errno;
        sy_log(SY_LOG_ERROR, "listen_failed", "cannot bind %s:%d: %s", w->cfg.host, w->cfg.port,
               strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return rc;
    }
    freeaddrinfo(ai);
    if ((rc = uv_tcp_init(&w->loop, &w->listener)) != 0 ||
        (rc = uv_tcp_open(&w->listener, fd)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&w->listener, 4096, on_connection)) != 0) {
        sy_log(SY_LOG_ERROR, "listen_failed", "listen: %s", uv_strerror(rc));
        return rc;
    }
    return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    SY_UNUSED(arg);
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int sy_worker_run(const sy_worker_config_t *cfg)
{
    sy_worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return 1;
    w->cfg = *cfg;
    int exit_code = 1;
    unsigned char rnd[4];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    snprintf(w->id_prefix, sizeof(w->id_prefix), "%02x%02x%02x%02x%x_", rnd[0], rnd[1], rnd[2],
             rnd[3], (unsigned)cfg->worker_id & 0xf);
    sy_buf_init(&w->scratch);
    sy_buf_init(&w->access_log);
    if (uv_loop_init(&w->loop) != 0) {
        free(w);
        return 1;
    }
    w->usage = sy_usage_new();
    w->json = sy_json_parser_new();
    if (w->usage == NULL || w->json == NULL ||
        sy_upstream_new(&w->loop, !w->cfg.upstream_curl_only, &w->upstream) != 0 ||
        sy_routing_new(&w->loop, sy_proxy_resume, &w->routing) != 0)
        goto out;
    if (cfg->snapshot_file != NULL) {
        sy_snapshot_t *snap = NULL;
        sy_err_t err;
        sy_err_clear(&err);
        if (sy_snapshot_load_file(cfg->snapshot_file, &snap, &err) != 0) {
            sy_log(SY_LOG_ERROR, "snapshot_load_failed", "%s", err.msg);
            exit_code = 78; /* EX_CONFIG: the master stops instead of restarting */
            goto out_upstream;
        }
        sy_worker_install_snapshot(w, snap);
    }
    if (open_listener(w) != 0) {
        exit_code = 78;
        goto out_upstream;
    }
    uv_signal_init(&w->loop, &w->sig_term);
    uv_signal_init(&w->loop, &w->sig_int);
    uv_signal_init(&w->loop, &w->sig_hup);
    w->sig_term.data = w->sig_int.data = w->sig_hup.data = w;
    uv_signal_start(&w->sig_term, on_signal, SIGTERM);
    uv_signal_start(&w->sig_int, on_signal, SIGINT);
    uv_signal_start(&w->sig_hup, on_signal, SIGHUP);
    uv_timer_init(&w->loop, &w->sweep);
    uv_timer_start(&w->sweep, on_sweep, SWEEP_MS, SWEEP_MS);

    /* Control link: feeds snapshots through sy_worker_install_snapshot and
     * drains w->usage into acked usage reports. */
    if (cfg->control != NULL && cfg->control[0] != '\0') {
        sy_err_t err;
        sy_err_clear(&err);
        if (sy_control_link_attach(w, &err) != 0) {
            sy_log(SY_LOG_ERROR, "control_link_failed", "%s", err.msg);
            goto out; /* closes every handle opened so far */
        }
        sy_routing_set_link(w->routing, w->control_link); /* budget leases */
    }

    char fields[128];
    int n = snprintf(fields, sizeof(fields), "\"worker\":%d,\"pid\":%d,\"listen\":\"%s:%d\"",
                     cfg->worker_id, (int)getpid(), cfg->host, cfg->port);
    sy_log_fields(SY_LOG_INFO, "worker_started", fields, (size_t)n);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    exit_code = 0;
    goto out;

out_upstream:
    sy_upstream_close(w->upstream);
    w->upstream = NULL;
out:
    if (w->upstream != NULL) {
        sy_upstream_close(w->upstream);
        w->upstream = NULL;
    }
    sy_routing_close(w->routing);
    w->routing = NULL;
    uv_walk(&w->loop, walk_close, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    sy_snapshot_unref(w->snap);
    sy_usage_free(w->usage);
    sy_json_parser_free(w->json);
    sy_worker_flush_access_log(w);
    sy_buf_free(&w->access_log);
    sy_buf_free(&w->scratch);
    free(w);
    /* Joins libuv's resolver threads now, so that what glibc keeps per
     * thread for name lookups is released before the process ends. */
    uv_library_shutdown();
    return exit_code;
}
