/* Snapshot publisher (NN_PUB) and report receiver (NN_REP); see cluster.h. */
#include "controlplane/cluster.h"

#include <fcntl.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controlplane/leases.h"
#include "controlplane/reports.h"
#include "controlplane/snapshot_build.h"
#include "err.h"
#include "log.h"

#define SENDER "control"
#define MAX_WORKERS 4096     /* distinct workers remembered for live_workers */
#define WORKER_LIVE_MS 10000 /* a worker counts as live this long after it spoke */
#define MAX_REQUEST_BYTES (64 << 20)

typedef struct worker_seen {
    char id[SY_ENVELOPE_MAX_SENDER + 1]; /* worker_id as reported */
    uint64_t last_ms;                    /* loop time it last spoke */
} worker_seen_t;

struct sy_cluster {
    uv_loop_t *loop;                     /* borrowed */
    sqlite3 *db;                         /* borrowed; the store's connection */
    const sy_envelope_key_t *master_key; /* borrowed */
    sy_envelope_key_t key;               /* the cluster key */
    int pub;                             /* nanomsg NN_PUB socket, -1 when closed */
    int rep;                             /* nanomsg NN_REP socket, -1 when closed */
    uv_poll_t rep_poll;                  /* readable when rep has a request */
    uv_timer_t debounce;                 /* fires debounce_ms after a change */
    uv_timer_t heartbeat;                /* republish / usage-driven rebuilds */
    int open_handles;                    /* handles not yet closed; free at 0 */
    bool stopping;                       /* sy_cluster_stop was called */
    sy_reports_t *reports;               /* owned */
    sy_leases_t *leases;                 /* owned; budget leases granted to workers */
    int64_t heartbeat_ms, debounce_ms, usage_refresh_ms;

    uint64_t version;       /* of the current snapshot */
    sy_buf_t snapshot_pb;   /* owned; the current Snapshot, serialized */
    sy_buf_t sealed;        /* owned; the current Snapshot, sealed for PUB */
    sy_buf_t scratch;       /* owned; reply building */
    uint64_t send_seq;      /* envelope seq of this sender */
    uint64_t beats;         /* heartbeats so far */
    bool usage_dirty;       /* usage applied since the last build */
    bool changed;           /* a change is not in a snapshot yet (retried on failure) */
    bool has_budgets;       /* the current snapshot carries budgets (their spend moves) */
    uint64_t last_build_ms; /* loop time of the last build */
    uint32_t live_workers;  /* in the current snapshot */

    worker_seen_t *workers; /* owned; MAX_WORKERS entries */
    size_t n_workers;

    /* Counters (GET /admin/v1/stats). */
    uint64_t snapshots_built, snapshots_published, build_failures, hellos, reports_applied,
        reports_duplicate, reports_invalid, reports_failed, report_rows, rejected_messages,
        unexpected_messages, send_failures, leases_granted;
    uint64_t snapshot_bytes, snapshot_build_us, snapshot_keys;
};

/* --- small helpers ------------------------------------------------------------ */

static uint64_t now_ms_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int load_cluster_key(const sy_cluster_options_t *o, sy_envelope_key_t *out, sy_err_t *err)
{
    if (o->cluster_key_file != NULL && o->cluster_key_file[0] != '\0')
        return sy_envelope_key_load(o->cluster_key_file, NULL, out, err);
    const char *env = getenv("SWITCHYARD_CLUSTER_KEY");
    if (env != NULL && env[0] != '\0')
        return sy_envelope_key_load(NULL, "SWITCHYARD_CLUSTER_KEY", out, err);
    char path[4096];
    snprintf(path, sizeof(path), "%s/cluster.key", o->data_dir != NULL ? o->data_dir : ".");
    if (access(path, F_OK) != 0) {
        char hex[SY_ENVELOPE_KEY_LEN * 2 + 2];
        int rc = sy_envelope_key_generate_hex(hex, sizeof(hex));
        if (rc != 0)
            return sy_err_set(err, rc, "cluster key: cannot generate: %s", sy_err_name(rc));
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0)
            return sy_err_set(err, SY_EIO, "cluster key: cannot create %s: %s", path,
                              strerror(errno));
        size_t n = strlen(hex);
        hex[n] = '\n';
        ssize_t w = write(fd, hex, n + 1);
        close(fd);
        explicit_bzero(hex, sizeof(hex));
        if (w != (ssize_t)(n + 1))
            return sy_err_set(err, SY_EIO, "cluster key: cannot write %s", path);
        sy_log(SY_LOG_INFO, "cluster_key_generated",
               "generated a cluster key in %s; give the same key to every data-plane worker", path);
    }
    return sy_envelope_key_load(path, NULL, out, err);
}

static int load_version(sy_cluster_t *c, uint64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT value FROM cluster_state WHERE name = 'snapshot_version'",
                           -1, &st, NULL) != SQLITE_OK)
        return SY_EIO;
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : SY_EIO;
}

static void save_version(sy_cluster_t *c, uint64_t v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "INSERT INTO cluster_state (name, value) VALUES ('snapshot_version', ?1)"
                           " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                           -1, &st, NULL) != SQLITE_OK) {
        sy_log(SY_LOG_WARN, "snapshot_version", "cannot save: %s", sqlite3_errmsg(c->db));
        return;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)v);
    if (sqlite3_step(st) != SQLITE_DONE)
        sy_log(SY_LOG_WARN, "snapshot_version", "cannot save: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
}

static uint32_t count_live(sy_cluster_t *c)
{
    uint64_t now = uv_now(c->loop);
    uint32_t n = 0;
    for (size_t i = 0; i < c->n_workers; i++)
        if (now - c->workers[i].last_ms <= WORKER_LIVE_MS)
            n++;
    return n;
}

/* Notes that worker id spoke; returns true when it is new (or came back). */
static bool saw_worker(sy_cluster_t *c, const char *id)
{
    uint64_t now = uv_now(c->loop);
    size_t oldest = 0;
    for (size_t i = 0; i < c->n_workers; i++) {
        if (strcmp(c->workers[i].id, id) == 0) {
            bool back = now - c->workers[i].last_ms > WORKER_LIVE_MS;
            c->workers[i].last_ms = now;
            return back;
        }
        if (c->workers[i].last_ms < c->workers[oldest].last_ms)
            oldest = i;
    }
    size_t slot = c->n_workers < MAX_WORKERS ? c->n_workers++ : oldest;
    snprintf(c->workers[slot].id, sizeof(c->workers[slot].id), "%s", id);
    c->workers[slot].last_ms = now;
    return true;
}

/* --- snapshots ------------------------------------------------------------------ */

static void publish(sy_cluster_t *c)
{
    if (c->sealed.len == 0 || c->pub < 0)
        return;
    /* PUB never blocks: a subscriber whose queue is full just misses this one. */
    if (nn_send(c->pub, c->sealed.data, c->sealed.len, NN_DONTWAIT) < 0) {
        c->send_failures++;
        return;
    }
    c->snapshots_published++;
}

/* Builds, serializes and seals a new snapshot, then publishes it. */
static int rebuild(sy_cluster_t *c, sy_err_t *err)
{
    uint64_t t0 = uv_hrtime();
    uint64_t now = now_ms_wall();
    uint64_t version = now > c->version ? now : c->version + 1;
    uint32_t live = count_live(c);
    sy_snapshot_build_t *b = NULL;
    int rc = sy_snapshot_build(c->db, c->master_key, version, (int64_t)now, live, &b, err);
    if (rc != 0) {
        c->build_failures++;
        return rc;
    }
    const Switchyard__Snapshot *msg = sy_snapshot_build_message(b);
    size_t n = switchyard__snapshot__get_packed_size(msg);
    sy_buf_t pb, sealed;
    sy_buf_init(&pb);
    sy_buf_init(&sealed);
    if ((rc = sy_buf_reserve(&pb, n)) != 0) {
        sy_snapshot_build_free(b);
        return sy_err_set(err, rc, "snapshot: out of memory");
    }
    pb.len = switchyard__snapshot__pack(msg, (uint8_t *)pb.data);
    size_t keys = msg->n_keys;
    bool budgets = msg->n_budgets > 0;
    if (sy_leases_set_budgets(c->leases, msg->budgets, msg->n_budgets, live) != 0)
        sy_log(SY_LOG_WARN, "leases", "out of memory: budget leases keep the previous budgets");
    sy_snapshot_build_free(b);
    /* A snapshot's envelope seq is its version: readable before opening, so
     * a worker skips a heartbeat repeat of what it has without decrypting. */
    rc = sy_envelope_seal(&c->key, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_SNAPSHOT, SENDER, version,
                          pb.data, pb.len, &sealed);
    if (rc != 0) {
        explicit_bzero(pb.data, pb.len);
        sy_buf_free(&pb);
        sy_buf_free(&sealed);
        c->build_failures++;
        return sy_err_set(err, rc, "snapshot: sealing failed: %s", sy_err_name(rc));
    }
    /* The serialized snapshot carries provider credentials in clear. */
    if (c->snapshot_pb.data != NULL)
        explicit_bzero(c->snapshot_pb.data, c->snapshot_pb.len);
    sy_buf_free(&c->snapshot_pb);
    sy_buf_free(&c->sealed);
    c->snapshot_pb = pb;
    c->sealed = sealed;
    c->version = version;
    c->live_workers = live;
    c->usage_dirty = false;
    c->changed = false;
    c->has_budgets = budgets;
    c->last_build_ms = uv_now(c->loop);
    c->snapshots_built++;
    c->snapshot_bytes = pb.len;
    c->snapshot_keys = keys;
    c->snapshot_build_us = (uv_hrtime() - t0) / 1000;
    save_version(c, version);
    publish(c);
    SY_LOG_DEBUG_("snapshot_built", "version %llu, %zu keys, %zu bytes, %llu us",
                  (unsigned long long)version, keys, pb.len,
                  (unsigned long long)c->snapshot_build_us);
    return 0;
}

static void rebuild_logged(sy_cluster_t *c)
{
    sy_err_t err;
    sy_err_clear(&err);
    if (rebuild(c, &err) != 0)
        sy_log(SY_LOG_ERROR, "snapshot_build_failed", "%s", err.msg);
}

static void on_debounce(uv_timer_t *t)
{
    rebuild_logged(sy_container_of(t, sy_cluster_t, debounce));
}

static void on_heartbeat(uv_timer_t *t)
{
    sy_cluster_t *c = sy_container_of(t, sy_cluster_t, heartbeat);
    bool stale =
        c->usage_dirty && uv_now(c->loop) - c->last_build_ms >= (uint64_t)c->usage_refresh_ms;
    /* c->changed still set here means the debounced rebuild failed (e.g. the
     * database was busy): retry it rather than leave workers stale. */
    bool retry = c->changed && !uv_is_active((uv_handle_t *)&c->debounce);
    if (stale || retry || count_live(c) != c->live_workers || c->sealed.len == 0) {
        rebuild_logged(c);
        return;
    }
    /* A large snapshot is repeated less often (every MiB adds a heartbeat,
     * up to 30): workers skip repeats unopened, but the bytes still cross
     * the network to every one of them. A worker that missed a version
     * learns of it from its next Ack and fetches it with a Hello. */
    uint64_t every = 1 + c->sealed.len / (1 << 20);
    if (every > 30)
        every = 30;
    if (++c->beats % every == 0)
        publish(c);
}

void sy_cluster_notify_change(sy_cluster_t *c)
{
    if (c == NULL || c->stopping)
        return;
    c->changed = true;
    if (uv_is_active((uv_handle_t *)&c->debounce))
        return;
    uv_timer_start(&c->debounce, on_debounce, (uint64_t)c->debounce_ms, 0);
}

/* --- requests --------------------------------------------------------------------- */

/* Seals an Ack into c->scratch and sends it on rep. The Ack is packed
 * without its snapshot; when with_snapshot is set, the current serialized
 * snapshot is appended as field 4 (protobuf fields may come in any order),
 * which saves re-packing a large snapshot for every Hello. */
static void reply_ack(sy_cluster_t *c, Switchyard__Ack *ack, bool with_snapshot)
{
    sy_buf_t plain;
    sy_buf_init(&plain);
    size_t n = switchyard__ack__get_packed_size(ack);
    size_t extra = with_snapshot ? c->snapshot_pb.len + 11 : 0;
    if (sy_buf_reserve(&plain, n + extra) != 0) {
        c->send_failures++;
        return;
    }
    plain.len = switchyard__ack__pack(ack, (uint8_t *)plain.data);
    if (with_snapshot) {
        uint8_t *p = (uint8_t *)plain.data + plain.len;
        *p++ = (4 << 3) | 2; /* field 4, length-delimited */
        uint64_t len = c->snapshot_pb.len;
        while (len >= 0x80) {
            *p++ = (uint8_t)(len | 0x80);
            len >>= 7;
        }
        *p++ = (uint8_t)len;
        memcpy(p, c->snapshot_pb.data, c->snapshot_pb.len);
        p += c->snapshot_pb.len;
        plain.len = (size_t)((char *)p - plain.data);
    }
    sy_buf_reset(&c->scratch);
    int rc = sy_envelope_seal(&c->key, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_ACK, SENDER,
                              ++c->send_seq, plain.data, plain.len, &c->scratch);
    if (with_snapshot)
        explicit_bzero(plain.data, plain.len);
    sy_buf_free(&plain);
    if (rc != 0 || nn_send(c->rep, c->scratch.data, c->scratch.len, NN_DONTWAIT) < 0)
        c->send_failures++;
    if (c->scratch.cap > (1 << 20))
        sy_buf_free(&c->scratch); /* do not keep a snapshot-sized buffer around */
}

static void handle_hello(sy_cluster_t *c, const sy_envelope_t *env)
{
    Switchyard__Hello *h =
        switchyard__hello__unpack(NULL, env->payload.len, (const uint8_t *)env->payload.data);
    if (h == NULL) {
        c->unexpected_messages++;
        return;
    }
    c->hellos++;
    if (saw_worker(c, h->worker_id != NULL && h->worker_id[0] ? h->worker_id : env->sender))
        sy_log(SY_LOG_INFO, "worker_hello", "worker %s (boot %s) has version %llu", h->worker_id,
               h->boot_id, (unsigned long long)h->have_version);
    Switchyard__Ack ack = SWITCHYARD__ACK__INIT;
    ack.current_version = c->version;
    bool with = h->have_version < c->version && c->snapshot_pb.len > 0;
    switchyard__hello__free_unpacked(h, NULL);
    reply_ack(c, &ack, with);
}

static void handle_report(sy_cluster_t *c, const sy_envelope_t *env)
{
    Switchyard__UsageReport *r = switchyard__usage_report__unpack(
        NULL, env->payload.len, (const uint8_t *)env->payload.data);
    if (r == NULL) {
        c->unexpected_messages++;
        return;
    }
    saw_worker(c, r->worker_id != NULL && r->worker_id[0] ? r->worker_id : env->sender);
    sy_err_t err;
    sy_err_clear(&err);
    bool dup = false;
    int rc = sy_reports_apply(c->reports, r, (int64_t)(now_ms_wall() / 1000), &dup, &err);
    if (rc == SY_EIO) {
        /* Not applied and not acked: the worker sends it again. */
        c->reports_failed++;
        sy_log(SY_LOG_ERROR, "report_failed", "%s", err.msg);
        switchyard__usage_report__free_unpacked(r, NULL);
        return;
    }
    if (rc != 0) {
        /* A report that can never apply would block its worker's queue for
         * ever: it is acked, counted and logged instead. */
        c->reports_invalid++;
        sy_log(SY_LOG_ERROR, "report_invalid", "from %s: %s", env->sender, err.msg);
    } else if (dup) {
        c->reports_duplicate++;
    } else {
        c->reports_applied++;
        c->report_rows += r->n_rows;
        /* Spend only shows in the snapshot through budgets: without any,
         * usage never changes it (and a large snapshot is not rebuilt). */
        if (r->n_rows > 0 && c->has_budgets)
            c->usage_dirty = true;
    }
    Switchyard__Ack ack = SWITCHYARD__ACK__INIT;
    ack.boot_id = r->boot_id;
    ack.seq = r->seq;
    ack.duplicate = dup;
    ack.current_version = c->version;
    reply_ack(c, &ack, false);
    switchyard__usage_report__free_unpacked(r, NULL);
}

/* A worker asks for (or renews, or gives back) budget leases. */
static void handle_lease(sy_cluster_t *c, const sy_envelope_t *env)
{
    Switchyard__LeaseRequest *r = switchyard__lease_request__unpack(
        NULL, env->payload.len, (const uint8_t *)env->payload.data);
    if (r == NULL) {
        c->unexpected_messages++;
        return;
    }
    saw_worker(c, r->worker_id != NULL && r->worker_id[0] ? r->worker_id : env->sender);
    Switchyard__LeaseGrant *g = NULL;
    Switchyard__LeaseGrant none = SWITCHYARD__LEASE_GRANT__INIT;
    int rc = sy_leases_handle(c->leases, r, (int64_t)now_ms_wall(), &g);
    if (rc != 0)
        sy_log(SY_LOG_WARN, "lease_failed", "from %s: %s", env->sender, sy_err_name(rc));
    /* Always answer (REQ/REP): an empty grant leaves the worker as it was. */
    const Switchyard__LeaseGrant *ans = g != NULL ? g : &none;
    sy_buf_t plain;
    sy_buf_init(&plain);
    size_t n = switchyard__lease_grant__get_packed_size(ans);
    if (sy_buf_reserve(&plain, n) == 0) {
        plain.len = switchyard__lease_grant__pack(ans, (uint8_t *)plain.data);
        sy_buf_reset(&c->scratch);
        if (sy_envelope_seal(&c->key, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_LEASE_GRANT, SENDER,
                             ++c->send_seq, plain.data, plain.len, &c->scratch) != 0 ||
            nn_send(c->rep, c->scratch.data, c->scratch.len, NN_DONTWAIT) < 0)
            c->send_failures++;
        else
            c->leases_granted++;
    } else {
        c->send_failures++;
    }
    sy_buf_free(&plain);
    sy_leases_grant_free(g);
    switchyard__lease_request__free_unpacked(r, NULL);
}

static void handle_request(sy_cluster_t *c, const void *msg, size_t len)
{
    sy_envelope_t env;
    int rc = sy_envelope_open(&c->key, msg, len, &env);
    if (rc != 0) {
        c->rejected_messages++;
        /* Log the first and then every 100th, so a flood cannot fill the disk. */
        if (c->rejected_messages % 100 == 1)
            sy_log(SY_LOG_WARN, "message_rejected",
                   "dropped a %zu-byte request that failed to open (%s); %llu so far", len,
                   sy_err_name(rc), (unsigned long long)c->rejected_messages);
        return;
    }
    switch (env.kind) {
    case SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_HELLO:
        handle_hello(c, &env);
        break;
    case SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_USAGE_REPORT:
        handle_report(c, &env);
        break;
    case SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_LEASE_REQUEST:
        handle_lease(c, &env);
        break;
    default:
        c->unexpected_messages++;
        break;
    }
    sy_envelope_free(&env);
}

static void on_rep_readable(uv_poll_t *h, int status, int events)
{
    sy_cluster_t *c = sy_container_of(h, sy_cluster_t, rep_poll);
    SY_UNUSED(events);
    if (status < 0 || c->rep < 0)
        return;
    /* Drain what is queued; a bounded batch keeps the loop responsive. */
    for (int i = 0; i < 256; i++) {
        void *msg = NULL;
        int n = nn_recv(c->rep, &msg, NN_MSG, NN_DONTWAIT);
        if (n < 0)
            break; /* EAGAIN: empty; anything else: retried on the next wakeup */
        handle_request(c, msg, (size_t)n);
        nn_freemsg(msg);
    }
}

/* --- life cycle ------------------------------------------------------------------ */

static void on_close(uv_handle_t *h)
{
    sy_cluster_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (c->snapshot_pb.data != NULL)
        explicit_bzero(c->snapshot_pb.data, c->snapshot_pb.len);
    sy_buf_free(&c->snapshot_pb);
    sy_buf_free(&c->sealed);
    sy_buf_free(&c->scratch);
    sy_reports_free(c->reports);
    sy_leases_free(c->leases);
    free(c->workers);
    explicit_bzero(&c->key, sizeof(c->key));
    free(c);
}

static int bind_socket(int proto, const char *addr, int *out, sy_err_t *err)
{
    int s = nn_socket(AF_SP, proto);
    if (s < 0)
        return sy_err_set(err, SY_EIO, "nn_socket: %s", nn_strerror(nn_errno()));
    int max = MAX_REQUEST_BYTES, linger = 0;
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max));
    nn_setsockopt(s, NN_SOL_SOCKET, NN_LINGER, &linger, sizeof(linger));
    if (proto == NN_PUB) {
        /* Room for a few large snapshots per subscriber. */
        int sndbuf = 64 << 20;
        nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    if (nn_bind(s, addr) < 0) {
        int e = nn_errno();
        nn_close(s);
        return sy_err_set(err, SY_EIO, "cannot bind %s: %s", addr, nn_strerror(e));
    }
    *out = s;
    return 0;
}

int sy_cluster_start(uv_loop_t *loop, sqlite3 *db, const sy_cluster_options_t *opts,
                     sy_cluster_t **out, sy_err_t *err)
{
    sy_cluster_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->workers = calloc(MAX_WORKERS, sizeof(*c->workers))) == NULL) {
        free(c);
        return sy_err_set(err, SY_ENOMEM, "cluster: out of memory");
    }
    c->loop = loop;
    c->db = db;
    c->master_key = opts->master_key;
    c->pub = c->rep = -1;
    c->heartbeat_ms = opts->heartbeat_ms > 0 ? opts->heartbeat_ms : 1000;
    c->debounce_ms = opts->debounce_ms > 0 ? opts->debounce_ms : 50;
    c->usage_refresh_ms = opts->usage_refresh_ms > 0 ? opts->usage_refresh_ms : 5000;
    sy_buf_init(&c->snapshot_pb);
    sy_buf_init(&c->sealed);
    sy_buf_init(&c->scratch);

    const char *dir = opts->data_dir != NULL ? opts->data_dir : ".";
    char pub_addr[4200], rep_addr[4200];
    if (opts->snapshot_bind != NULL && opts->snapshot_bind[0] != '\0')
        snprintf(pub_addr, sizeof(pub_addr), "%s", opts->snapshot_bind);
    else
        snprintf(pub_addr, sizeof(pub_addr), "ipc://%s/snapshots.ipc", dir);
    if (opts->report_bind != NULL && opts->report_bind[0] != '\0')
        snprintf(rep_addr, sizeof(rep_addr), "%s", opts->report_bind);
    else
        snprintf(rep_addr, sizeof(rep_addr), "ipc://%s/reports.ipc", dir);

    int rc, fd = -1;
    size_t fdsz = sizeof(fd);
    if ((rc = load_cluster_key(opts, &c->key, err)) != 0)
        goto fail;
    if ((rc = sy_reports_open(db, &c->reports, err)) != 0)
        goto fail;
    if ((c->leases = sy_leases_new(0)) == NULL) {
        rc = sy_err_set(err, SY_ENOMEM, "cluster: out of memory");
        goto fail;
    }
    if ((rc = load_version(c, &c->version)) != 0) {
        rc = sy_err_set(err, rc, "cluster: reading cluster_state: %s", sqlite3_errmsg(db));
        goto fail;
    }
    if ((rc = bind_socket(NN_PUB, pub_addr, &c->pub, err)) != 0 ||
        (rc = bind_socket(NN_REP, rep_addr, &c->rep, err)) != 0)
        goto fail;
    if (nn_getsockopt(c->rep, NN_SOL_SOCKET, NN_RCVFD, &fd, &fdsz) < 0) {
        rc = sy_err_set(err, SY_EIO, "NN_RCVFD: %s", nn_strerror(nn_errno()));
        goto fail;
    }
    if ((rc = rebuild(c, err)) != 0)
        goto fail;
    if ((rc = uv_poll_init(loop, &c->rep_poll, fd)) != 0) {
        rc = sy_err_set(err, rc, "uv_poll_init: %s", uv_strerror(rc));
        goto fail;
    }
    c->rep_poll.data = c;
    uv_timer_init(loop, &c->debounce);
    c->debounce.data = c;
    uv_timer_init(loop, &c->heartbeat);
    c->heartbeat.data = c;
    c->open_handles = 3;
    uv_poll_start(&c->rep_poll, UV_READABLE, on_rep_readable);
    uv_timer_start(&c->heartbeat, on_heartbeat, (uint64_t)c->heartbeat_ms,
                   (uint64_t)c->heartbeat_ms);
    sy_log(SY_LOG_INFO, "cluster_started",
           "snapshots on %s, reports on %s, version %llu (%llu keys, %llu bytes, %llu us)",
           pub_addr, rep_addr, (unsigned long long)c->version, (unsigned long long)c->snapshot_keys,
           (unsigned long long)c->snapshot_bytes, (unsigned long long)c->snapshot_build_us);
    *out = c;
    return 0;
fail:
    if (c->pub >= 0)
        nn_close(c->pub);
    if (c->rep >= 0)
        nn_close(c->rep);
    sy_buf_free(&c->snapshot_pb);
    sy_buf_free(&c->sealed);
    sy_reports_free(c->reports);
    sy_leases_free(c->leases);
    free(c->workers);
    explicit_bzero(&c->key, sizeof(c->key));
    free(c);
    return rc;
}

void sy_cluster_stop(sy_cluster_t *c)
{
    if (c == NULL || c->stopping)
        return;
    c->stopping = true;
    /* Stop watching the descriptor before nanomsg closes it. */
    uv_poll_stop(&c->rep_poll);
    uv_close((uv_handle_t *)&c->rep_poll, on_close);
    uv_close((uv_handle_t *)&c->debounce, on_close);
    uv_close((uv_handle_t *)&c->heartbeat, on_close);
    nn_close(c->rep);
    nn_close(c->pub);
    c->rep = c->pub = -1;
}

uint64_t sy_cluster_snapshot_version(const sy_cluster_t *c)
{
    return c != NULL ? c->version : 0;
}

int sy_cluster_stats_json(const sy_cluster_t *c, sy_buf_t *out)
{
    if (c == NULL)
        return sy_buf_append_str(out, "{}");
    return sy_buf_appendf(
        out,
        "{\"snapshot_version\":%llu,\"snapshot_bytes\":%llu,\"snapshot_keys\":%llu,"
        "\"snapshot_build_us\":%llu,\"snapshots_built\":%llu,\"snapshots_published\":%llu,"
        "\"snapshot_build_failures\":%llu,\"live_workers\":%u,\"hellos\":%llu,"
        "\"reports_applied\":%llu,\"reports_duplicate\":%llu,\"reports_invalid\":%llu,"
        "\"reports_failed\":%llu,\"report_rows\":%llu,\"rejected_messages\":%llu,"
        "\"unexpected_messages\":%llu,\"send_failures\":%llu,\"leases_granted\":%llu}",
        (unsigned long long)c->version, (unsigned long long)c->snapshot_bytes,
        (unsigned long long)c->snapshot_keys, (unsigned long long)c->snapshot_build_us,
        (unsigned long long)c->snapshots_built, (unsigned long long)c->snapshots_published,
        (unsigned long long)c->build_failures, c->live_workers, (unsigned long long)c->hellos,
        (unsigned long long)c->reports_applied, (unsigned long long)c->reports_duplicate,
        (unsigned long long)c->reports_invalid, (unsigned long long)c->reports_failed,
        (unsigned long long)c->report_rows, (unsigned long long)c->rejected_messages,
        (unsigned long long)c->unexpected_messages, (unsigned long long)c->send_failures,
        (unsigned long long)c->leases_granted);
}
