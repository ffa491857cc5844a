/* Data-plane side of the cluster channels; see control_link.h. */
#include "dataplane/control_link.h"

#include <fcntl.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dataplane/usage_journal.h"
#include "dataplane/worker.h"
#include "err.h"
#include "log.h"

#define TICK_MS 250
#define RESEND_MS 1000                 /* nanomsg REQ resends an unanswered request this often */
#define ASYNC_DECODE_BYTES (256 << 10) /* larger snapshots are decoded off the loop */
#define BEHIND_GRACE_MS 1500           /* then a missed snapshot is fetched with a Hello */
#define STUCK_MS 10000                 /* give up on a request and issue it anew */
#define MAX_MESSAGE_BYTES (512 << 20)  /* a snapshot of millions of keys still fits */
#define BOOT_ID_LEN 32

/* Spool records: a report, an ack of one, and the newest usage-journal
 * generation the reports carry (seq field; see dataplane/usage_journal.h). */
enum { SPOOL_REPORT = 1, SPOOL_ACK = 2, SPOOL_GEN = 3 };
enum { REQ_IDLE, REQ_HELLO, REQ_REPORT, REQ_LEASE };

/* One unacked report, serialized (sealed afresh at each send). */
typedef struct pending {
    struct pending *next;          /* owned; the next older-to-newer report */
    char boot_id[BOOT_ID_LEN + 1]; /* the boot that produced it */
    uint64_t seq;                  /* its seq in that boot */
    size_t len;                    /* bytes in data */
    uint8_t data[];                /* packed Switchyard__UsageReport */
} pending_t;

struct sy_control_link {
    uv_loop_t *loop;       /* borrowed */
    sy_envelope_key_t key; /* the cluster key */
    char worker_id[SY_ENVELOPE_MAX_SENDER + 1];
    char host[128];
    char boot_id[BOOT_ID_LEN + 1]; /* random, new at every start */
    char *snap_path;               /* owned; NULL = no snapshot cache */
    char *spool_path;              /* owned; NULL = no spool */
    int spool_fd;                  /* append-only, -1 = none */
    int sub, req;                  /* nanomsg sockets, -1 = none */
    uv_poll_t sub_poll;            /* sub's NN_RCVFD */
    uv_poll_t req_rpoll;           /* req's NN_RCVFD: a reply arrived */
    uv_poll_t req_wpoll;           /* req's NN_SNDFD: a request can go */
    uv_timer_t tick;               /* drains usage, unsticks requests */
    int open_handles;              /* freed when it reaches 0 after stop */
    bool stopping;
    sy_usage_t *usage; /* borrowed */
    sy_control_link_install_fn install;
    void *install_arg;
    int64_t report_interval_ms;
    size_t max_pending;
    uint64_t last_drain;     /* loop ms */
    uint64_t next_seq;       /* last report seq used in this boot */
    uint64_t env_seq;        /* envelope seq */
    pending_t *head, *tail;  /* owned; in-memory unacked reports, oldest first */
    size_t n_mem;            /* reports in the list */
    size_t n_spilled;        /* unacked reports only in the spool file */
    int inflight;            /* REQ_* */
    uint64_t inflight_since; /* loop ms */
    bool hello_needed;       /* ask for the current snapshot */
    uint64_t want_version;   /* newest version an Ack announced */
    uint64_t behind_since;   /* loop ms since an Ack announced a version SUB has not delivered */
    uint64_t bad_version;    /* last version refused as malformed (not retried) */
    struct decode_job *job;  /* owned; the large snapshot being decoded off the loop */
    void *next_sub;          /* owned nn message: the newest large SUB message waiting */
    size_t next_sub_len;
    void *next_req; /* owned nn message: a large Hello answer waiting */
    size_t next_req_len;
    sy_buf_t scratch;                           /* owned; sealing */
    uint64_t stop_deadline;                     /* loop ms; non-zero once a graceful stop began */
    sy_control_link_lease_build_fn lease_build; /* budget leases (routing.c), NULL = off */
    sy_control_link_lease_grant_fn lease_grant;
    void *lease_arg;             /* passed to both */
    bool lease_wanted;           /* a lease request waits for the channel */
    sy_usage_journal_t *journal; /* owned; write-ahead usage journal, NULL without a state dir */
    uint64_t covered_gen;        /* newest journal generation a spooled report carries */
    bool journal_failed;         /* an append failed (logged once) */
    sy_control_link_stats_t st;
};

/* --- helpers ------------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int read_file(const char *path, size_t max, sy_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SY_ENOENT : SY_EIO;
    struct stat stt;
    if (fstat(fd, &stt) != 0 || (size_t)stt.st_size > max) {
        close(fd);
        return SY_E2BIG;
    }
    int rc = sy_buf_reserve(out, (size_t)stt.st_size);
    while (rc == 0) {
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = SY_EIO;
        if (n <= 0)
            break;
        out->len += (size_t)n;
        if (out->cap - out->len <= 1)
            rc = sy_buf_reserve(out, 4096);
    }
    close(fd);
    return rc;
}

/* Writes data to path atomically (temporary file + rename). */
static int write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return SY_EIO;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            unlink(tmp);
            return SY_EIO;
        }
        p += n;
        left -= (size_t)n;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return SY_EIO;
    }
    return 0;
}

/* --- snapshots ------------------------------------------------------------------ */

static void log_rejected(sy_control_link_t *l, const char *where, size_t len, int rc)
{
    l->st.rejected_messages++;
    if (l->st.rejected_messages % 100 == 1)
        sy_log(SY_LOG_WARN, "control_message_rejected",
               "%s: dropped a %zu-byte message that failed to open (%s); %llu so far", where, len,
               sy_err_name(rc), (unsigned long long)l->st.rejected_messages);
}

/* Hands a new table (one reference) to the worker. */
static void install_table(sy_control_link_t *l, sy_snapshot_t *snap, uint64_t version)
{
    l->st.version = version;
    l->st.snapshots_installed++;
    if (l->st.version >= l->want_version)
        l->behind_since = 0;
    if (l->install != NULL)
        l->install(l->install_arg, snap);
    else
        sy_snapshot_unref(snap);
}

/* An Ack announced current_version. A newer snapshot is normally on its
 * way over SUB already; only when it has not arrived within a grace period
 * is it fetched with a Hello (see on_tick). */
static void note_current_version(sy_control_link_t *l, uint64_t current_version)
{
    if (current_version > l->st.version && current_version != l->bad_version) {
        if (current_version > l->want_version)
            l->want_version = current_version;
        if (l->behind_since == 0)
            l->behind_since = uv_now(l->loop);
    }
}

/* Applies a snapshot that opened under the cluster key. sealed/len is the
 * message it came in, cached as is when the snapshot is installed. */
static void take_snapshot(sy_control_link_t *l, const Switchyard__Snapshot *msg, const void *sealed,
                          size_t len, bool persist)
{
    l->st.snapshots_received++;
    if (msg->version <= l->st.version || msg->version == l->bad_version)
        return;
    sy_snapshot_t *snap = NULL;
    sy_err_t err;
    sy_err_clear(&err);
    if (sy_snapshot_from_proto(msg, &snap, &err) != 0) {
        /* Logged once per version; heartbeat repeats of it are skipped. */
        l->bad_version = msg->version;
        l->st.invalid_messages++;
        sy_log(SY_LOG_ERROR, "snapshot_invalid", "version %llu refused: %s",
               (unsigned long long)msg->version, err.msg);
        return;
    }
    install_table(l, snap, msg->version);
    if (persist && l->snap_path != NULL && write_file_atomic(l->snap_path, sealed, len) != 0)
        sy_log(SY_LOG_WARN, "snapshot_cache", "cannot write %s: %s", l->snap_path, strerror(errno));
}

/* Reads kind (field 2) and seq (field 4) of a packed Envelope without
 * opening it. Returns false when the message does not parse that far. */
static bool peek_envelope(const uint8_t *p, size_t n, uint64_t *kind, uint64_t *seq)
{
    const uint8_t *end = p + n;
    bool have_kind = false, have_seq = false;
    while (p < end && !(have_kind && have_seq)) {
        uint64_t v = 0, tag = 0;
        for (int shift = 0; p < end && shift < 64; shift += 7) {
            tag |= (uint64_t)(*p & 0x7f) << shift;
            if (!(*p++ & 0x80))
                break;
        }
        int type = (int)(tag & 7);
        if (type == 0) {
            for (int shift = 0;; shift += 7) {
                if (p >= end || shift >= 64)
                    return false;
                v |= (uint64_t)(*p & 0x7f) << shift;
                if (!(*p++ & 0x80))
                    break;
            }
            if (tag >> 3 == 2) {
                *kind = v;
                have_kind = true;
            } else if (tag >> 3 == 4) {
                *seq = v;
                have_seq = true;
            }
        } else if (type == 2) {
            for (int shift = 0;; shift += 7) {
                if (p >= end || shift >= 64)
                    return false;
                v |= (uint64_t)(*p & 0x7f) << shift;
                if (!(*p++ & 0x80))
                    break;
            }
            if (v > (uint64_t)(end - p))
                return false;
            p += v;
        } else {
            return false;
        }
    }
    return have_kind && have_seq;
}

/* Opens a sealed SNAPSHOT, or an ACK carrying one, and applies it. */
static int take_sealed_snapshot(sy_control_link_t *l, const void *data, size_t len,
                                const char *where, bool persist)
{
    sy_envelope_t env;
    int rc = sy_envelope_open(&l->key, data, len, &env);
    if (rc != 0) {
        log_rejected(l, where, len, rc);
        return SY_EACCES;
    }
    rc = 0;
    const uint8_t *p = (const uint8_t *)env.payload.data;
    if (env.kind == SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_SNAPSHOT) {
        Switchyard__Snapshot *s = switchyard__snapshot__unpack(NULL, env.payload.len, p);
        if (s != NULL) {
            take_snapshot(l, s, data, len, persist);
            switchyard__snapshot__free_unpacked(s, NULL);
        } else {
            rc = SY_EINVAL;
        }
    } else if (env.kind == SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_ACK) {
        Switchyard__Ack *a = switchyard__ack__unpack(NULL, env.payload.len, p);
        if (a != NULL && a->snapshot != NULL)
            take_snapshot(l, a->snapshot, data, len, persist);
        else
            rc = SY_EINVAL;
        if (a != NULL)
            switchyard__ack__free_unpacked(a, NULL);
    } else {
        rc = SY_EINVAL;
    }
    if (rc != 0)
        l->st.invalid_messages++;
    sy_envelope_free(&env);
    return rc;
}

static void load_cached_snapshot(sy_control_link_t *l)
{
    sy_buf_t b;
    sy_buf_init(&b);
    int rc = read_file(l->snap_path, MAX_MESSAGE_BYTES, &b);
    if (rc == 0) {
        uint64_t before = l->st.version;
        rc = take_sealed_snapshot(l, b.data, b.len, "snapshot cache", false);
        if (rc == 0 && l->st.version > before)
            sy_log(SY_LOG_INFO, "snapshot_cache_loaded", "serving snapshot version %llu from %s",
                   (unsigned long long)l->st.version, l->snap_path);
        else if (rc != 0)
            sy_log(SY_LOG_WARN, "snapshot_cache_rejected", "%s refused (%s)", l->snap_path,
                   sy_err_name(rc));
    } else if (rc != SY_ENOENT) {
        sy_log(SY_LOG_WARN, "snapshot_cache", "cannot read %s: %s", l->snap_path, sy_err_name(rc));
    }
    if (b.data != NULL)
        explicit_bzero(b.data, b.len);
    sy_buf_free(&b);
}

/* --- large snapshots, decoded off the loop ------------------------------------ */

/* Opening, unpacking and indexing a snapshot of 100,000 keys takes a
 * quarter of a second: done on the loop it would stall every request of the
 * worker. Messages past ASYNC_DECODE_BYTES go to the libuv thread pool, one
 * at a time; the table is installed back on the loop. Smaller ones are
 * handled in place. */
typedef struct decode_job {
    uv_work_t req;        /* the thread-pool request */
    sy_control_link_t *l; /* borrowed; outlives the job (see on_close) */
    void *msg;            /* owned nn message */
    size_t len;           /* bytes in msg */
    bool from_req;        /* the answer to a Hello (else a SUB message) */
    uint64_t have;        /* the worker's version when queued */
    uint64_t bad;         /* l->bad_version when queued */
    /* Results, written by the thread, read after it. */
    int open_rc;       /* sy_envelope_open's result */
    bool malformed;    /* opened, but not a snapshot or an ack */
    bool is_ack;       /* an Ack (from_req) */
    bool has_snapshot; /* it carried a snapshot */
    uint64_t version;  /* of that snapshot */
    uint64_t current;  /* Ack.current_version */
    bool refused;      /* sy_snapshot_from_proto failed (message in err) */
    sy_err_t err;
    sy_snapshot_t *snap; /* owned; the new table when newer and valid */
    bool cache_failed;   /* writing snapshot.sealed failed */
} decode_job_t;

static void start_next_decode(sy_control_link_t *l);

static void decode_work(uv_work_t *req)
{
    decode_job_t *j = sy_container_of(req, decode_job_t, req);
    sy_control_link_t *l = j->l; /* only its immutable key and paths are read here */
    sy_envelope_t env;
    j->open_rc = sy_envelope_open(&l->key, j->msg, j->len, &env);
    if (j->open_rc != 0)
        return;
    const uint8_t *p = (const uint8_t *)env.payload.data;
    Switchyard__Snapshot *s = NULL;
    Switchyard__Ack *a = NULL;
    const Switchyard__Snapshot *snap_msg = NULL;
    if (env.kind == SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_SNAPSHOT && !j->from_req) {
        s = switchyard__snapshot__unpack(NULL, env.payload.len, p);
        snap_msg = s;
        j->malformed = s == NULL;
    } else if (env.kind == SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_ACK && j->from_req) {
        a = switchyard__ack__unpack(NULL, env.payload.len, p);
        j->malformed = a == NULL;
        j->is_ack = a != NULL;
        if (a != NULL) {
            j->current = a->current_version;
            snap_msg = a->snapshot;
        }
    } else {
        j->malformed = true;
    }
    if (snap_msg != NULL) {
        j->has_snapshot = true;
        j->version = snap_msg->version;
        if (snap_msg->version > j->have && snap_msg->version != j->bad) {
            sy_err_clear(&j->err);
            if (sy_snapshot_from_proto(snap_msg, &j->snap, &j->err) != 0) {
                j->refused = true;
                j->snap = NULL;
            } else if (l->snap_path != NULL &&
                       write_file_atomic(l->snap_path, j->msg, j->len) != 0) {
                j->cache_failed = true;
            }
        }
    }
    if (s != NULL)
        switchyard__snapshot__free_unpacked(s, NULL);
    if (a != NULL)
        switchyard__ack__free_unpacked(a, NULL);
    /* The payload held provider credentials in clear. */
    if (env.payload.data != NULL)
        explicit_bzero(env.payload.data, env.payload.len);
    sy_envelope_free(&env);
}

static void free_waiting(sy_control_link_t *l)
{
    if (l->next_sub != NULL)
        nn_freemsg(l->next_sub);
    if (l->next_req != NULL)
        nn_freemsg(l->next_req);
    l->next_sub = l->next_req = NULL;
}

static void free_link(sy_control_link_t *l);
static void pump(sy_control_link_t *l);

static void decode_done(uv_work_t *req, int status)
{
    decode_job_t *j = sy_container_of(req, decode_job_t, req);
    sy_control_link_t *l = j->l;
    l->job = NULL;
    if (status != 0) {
        /* Cancelled (stopping): nothing was decoded. */
        sy_snapshot_unref(j->snap);
    } else if (j->open_rc != 0) {
        log_rejected(l, j->from_req ? "reports" : "snapshots", j->len, j->open_rc);
    } else if (j->malformed) {
        l->st.invalid_messages++;
    } else {
        if (j->has_snapshot)
            l->st.snapshots_received++;
        if (j->refused) {
            l->bad_version = j->version;
            l->st.invalid_messages++;
            sy_log(SY_LOG_ERROR, "snapshot_invalid", "version %llu refused: %s",
                   (unsigned long long)j->version, j->err.msg);
        }
        if (j->cache_failed)
            sy_log(SY_LOG_WARN, "snapshot_cache", "cannot write %s", l->snap_path);
        if (j->snap != NULL && !l->stopping && j->version > l->st.version)
            install_table(l, j->snap, j->version);
        else
            sy_snapshot_unref(j->snap);
        if (j->is_ack && l->inflight == REQ_HELLO) {
            l->inflight = REQ_IDLE;
            l->hello_needed = false;
            note_current_version(l, j->current);
        }
    }
    nn_freemsg(j->msg);
    free(j);
    if (l->stopping) {
        free_waiting(l);
        if (l->open_handles == 0)
            free_link(l);
        return;
    }
    start_next_decode(l);
    pump(l);
}

/* Takes msg (an nn message) over: decodes it now if no job runs, else keeps
 * it as the next one (a newer SUB message replaces an older waiting one). */
static void queue_decode(sy_control_link_t *l, void *msg, size_t len, bool from_req)
{
    if (from_req) {
        if (l->next_req != NULL)
            nn_freemsg(l->next_req);
        l->next_req = msg;
        l->next_req_len = len;
    } else {
        if (l->next_sub != NULL) {
            nn_freemsg(l->next_sub);
            l->st.snapshots_received++; /* superseded before it was looked at */
        }
        l->next_sub = msg;
        l->next_sub_len = len;
    }
    start_next_decode(l);
}

static void start_next_decode(sy_control_link_t *l)
{
    if (l->job != NULL || l->stopping || (l->next_req == NULL && l->next_sub == NULL))
        return;
    decode_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return; /* retried with the next message */
    j->l = l;
    j->have = l->st.version;
    j->bad = l->bad_version;
    if (l->next_req != NULL) {
        j->msg = l->next_req;
        j->len = l->next_req_len;
        j->from_req = true;
        l->next_req = NULL;
    } else {
        j->msg = l->next_sub;
        j->len = l->next_sub_len;
        l->next_sub = NULL;
    }
    if (uv_queue_work(l->loop, &j->req, decode_work, decode_done) != 0) {
        nn_freemsg(j->msg);
        free(j);
        return;
    }
    l->job = j;
}

static void on_sub_readable(uv_poll_t *h, int status, int events)
{
    sy_control_link_t *l = sy_container_of(h, sy_control_link_t, sub_poll);
    SY_UNUSED(events);
    if (status < 0 || l->sub < 0)
        return;
    for (int i = 0; i < 64; i++) {
        void *msg = NULL;
        int n = nn_recv(l->sub, &msg, NN_MSG, NN_DONTWAIT);
        if (n < 0)
            break;
        /* A snapshot's seq is its version (authenticated once opened): a
         * heartbeat repeat of the current one is skipped unopened. */
        uint64_t kind = 0, seq = 0;
        if (peek_envelope(msg, (size_t)n, &kind, &seq) &&
            kind == SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_SNAPSHOT && seq != 0 &&
            (seq <= l->st.version || seq == l->bad_version)) {
            l->st.snapshots_received++;
        } else if ((size_t)n > ASYNC_DECODE_BYTES) {
            queue_decode(l, msg, (size_t)n, false);
            continue; /* the job owns msg now */
        } else {
            take_sealed_snapshot(l, msg, (size_t)n, "snapshots", true);
        }
        nn_freemsg(msg);
    }
}

/* --- spool ------------------------------------------------------------------------- */

static int spool_append(sy_control_link_t *l, int type, const char *boot_id, uint64_t seq,
                        const void *data, size_t len)
{
    if (l->spool_fd < 0)
        return SY_EIO;
    size_t blen = strlen(boot_id);
    size_t body = 1 + blen + 8 + len;
    uint8_t head[5 + 1 + BOOT_ID_LEN + 8];
    if (blen > BOOT_ID_LEN || body > UINT32_MAX)
        return SY_EINVAL;
    put_u32(head, (uint32_t)body);
    head[4] = (uint8_t)type;
    head[5] = (uint8_t)blen;
    memcpy(head + 6, boot_id, blen);
    put_u64(head + 6 + blen, seq);
    struct iovec iov[2] = {{head, 14 + blen}, {(void *)data, len}};
    /* One write per record: a kill -9 can leave only a torn last record,
     * which the next start discards (the report was not acked either). A
     * short write (disk full) is cut off again, so that records appended
     * later are not hidden behind a torn one. */
    off_t at = lseek(l->spool_fd, 0, SEEK_END);
    ssize_t w = writev(l->spool_fd, iov, len > 0 ? 2 : 1);
    if (w == (ssize_t)(5 + body))
        return 0;
    if (at >= 0 && ftruncate(l->spool_fd, at) != 0)
        sy_log(SY_LOG_ERROR, "usage_spool", "cannot cut a torn record off %s", l->spool_path);
    return SY_EIO;
}

/* Appends a report preceded by the journal generation it carries, in one
 * writev: a process killed with -9 leaves both or neither. */
static int spool_append_report(sy_control_link_t *l, const char *boot_id, uint64_t seq,
                               uint64_t gen, const void *data, size_t len)
{
    if (gen == 0)
        return spool_append(l, SPOOL_REPORT, boot_id, seq, data, len);
    if (l->spool_fd < 0)
        return SY_EIO;
    size_t blen = strlen(boot_id);
    size_t body = 1 + blen + 8 + len;
    uint8_t mark[5 + 1 + 8], head[5 + 1 + BOOT_ID_LEN + 8];
    if (blen > BOOT_ID_LEN || body > UINT32_MAX)
        return SY_EINVAL;
    put_u32(mark, 9);
    mark[4] = SPOOL_GEN;
    mark[5] = 0;
    put_u64(mark + 6, gen);
    put_u32(head, (uint32_t)body);
    head[4] = SPOOL_REPORT;
    head[5] = (uint8_t)blen;
    memcpy(head + 6, boot_id, blen);
    put_u64(head + 6 + blen, seq);
    struct iovec iov[3] = {{mark, sizeof(mark)}, {head, 14 + blen}, {(void *)data, len}};
    off_t at = lseek(l->spool_fd, 0, SEEK_END);
    ssize_t w = writev(l->spool_fd, iov, 3);
    if (w == (ssize_t)(sizeof(mark) + 5 + body))
        return 0;
    if (at >= 0 && ftruncate(l->spool_fd, at) != 0)
        sy_log(SY_LOG_ERROR, "usage_spool", "cannot cut a torn record off %s", l->spool_path);
    return SY_EIO;
}

static pending_t *pending_new(const char *boot_id, uint64_t seq, const void *data, size_t len)
{
    pending_t *p = malloc(sizeof(*p) + len);
    if (p == NULL)
        return NULL;
    p->next = NULL;
    snprintf(p->boot_id, sizeof(p->boot_id), "%s", boot_id);
    p->seq = seq;
    p->len = len;
    memcpy(p->data, data, len);
    return p;
}

static void pending_push(sy_control_link_t *l, pending_t *p)
{
    if (l->tail != NULL)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    l->n_mem++;
}

typedef struct spool_entry {
    const uint8_t *data; /* borrowed from the file buffer */
    size_t len;
    char boot_id[BOOT_ID_LEN + 1];
    uint64_t seq;
    bool acked;
} spool_entry_t;

/* Reads the spool, keeps the unacked reports (rewriting the file with only
 * them), loads up to max_pending into memory and counts the rest as spilled.
 * Called at start and whenever the in-memory queue runs dry while reports
 * are spilled; the in-memory queue is empty then. */
static int spool_reload(sy_control_link_t *l)
{
    sy_buf_t b;
    sy_buf_init(&b);
    int rc = read_file(l->spool_path, SIZE_MAX / 2, &b);
    if (rc == SY_ENOENT)
        rc = 0;
    if (rc != 0) {
        sy_buf_free(&b);
        return rc;
    }
    size_t cap = 64, n = 0, cursor = 0;
    spool_entry_t *e = malloc(cap * sizeof(*e));
    if (e == NULL) {
        sy_buf_free(&b);
        return SY_ENOMEM;
    }
    const uint8_t *p = (const uint8_t *)b.data, *end = p + b.len;
    while (end - p >= 5) {
        uint32_t body = get_u32(p);
        int type = p[4];
        if ((size_t)(end - p - 5) < body || body < 9)
            break; /* a torn last record */
        const uint8_t *q = p + 5;
        size_t blen = q[0];
        if (blen > BOOT_ID_LEN || 1 + blen + 8 > body)
            break;
        char boot[BOOT_ID_LEN + 1];
        memcpy(boot, q + 1, blen);
        boot[blen] = '\0';
        uint64_t seq = get_u64(q + 1 + blen);
        if (type == SPOOL_REPORT) {
            if (n == cap) {
                spool_entry_t *ne = realloc(e, cap * 2 * sizeof(*e));
                if (ne == NULL) {
                    rc = SY_ENOMEM;
                    break;
                }
                e = ne;
                cap *= 2;
            }
            e[n].data = q + 1 + blen + 8;
            e[n].len = body - (1 + blen + 8);
            memcpy(e[n].boot_id, boot, blen + 1);
            e[n].seq = seq;
            e[n].acked = false;
            n++;
        } else if (type == SPOOL_GEN) {
            if (seq > l->covered_gen)
                l->covered_gen = seq;
        } else if (type == SPOOL_ACK && n > 0) {
            /* Acks come in report order, so the search starts where the last one hit. */
            for (size_t k = 0; k < n; k++) {
                size_t i = (cursor + k) % n;
                if (!e[i].acked && e[i].seq == seq && strcmp(e[i].boot_id, boot) == 0) {
                    e[i].acked = true;
                    cursor = i + 1;
                    break;
                }
            }
        }
        p += 5 + body;
    }
    if (rc == 0 && p < end)
        sy_log(SY_LOG_WARN, "usage_spool_torn",
               "%s: dropped %zu bytes of a torn or corrupt record at offset %zu", l->spool_path,
               (size_t)(end - p), (size_t)(p - (const uint8_t *)b.data));
    if (rc == 0) {
        /* Rewrite the spool with the unacked reports only. */
        if (l->spool_fd >= 0)
            close(l->spool_fd);
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.tmp", l->spool_path);
        l->spool_fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        size_t unacked = 0;
        /* The generation marker outlives the reports it came with. */
        if (l->spool_fd >= 0 && l->covered_gen > 0 &&
            spool_append(l, SPOOL_GEN, "", l->covered_gen, NULL, 0) != 0)
            rc = SY_EIO;
        for (size_t i = 0; i < n && l->spool_fd >= 0 && rc == 0; i++) {
            if (e[i].acked)
                continue;
            if (spool_append(l, SPOOL_REPORT, e[i].boot_id, e[i].seq, e[i].data, e[i].len) != 0) {
                rc = SY_EIO;
                break;
            }
            if (l->n_mem < l->max_pending) {
                pending_t *pe = pending_new(e[i].boot_id, e[i].seq, e[i].data, e[i].len);
                if (pe == NULL) {
                    rc = SY_ENOMEM;
                    break;
                }
                pending_push(l, pe);
            } else {
                l->n_spilled++;
            }
            unacked++;
        }
        if (l->spool_fd < 0 || rc != 0 || rename(tmp, l->spool_path) != 0) {
            /* The old spool is intact: keep appending to it. */
            rc = rc != 0 ? rc : SY_EIO;
            unlink(tmp);
            if (l->spool_fd >= 0)
                close(l->spool_fd);
            l->spool_fd = open(l->spool_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        }
        if (unacked > 0)
            sy_log(SY_LOG_INFO, "usage_spool_reloaded",
                   "%zu unacked usage reports from %s (%zu in memory)", unacked, l->spool_path,
                   l->n_mem);
    }
    free(e);
    sy_buf_free(&b);
    return rc;
}

/* --- requests ---------------------------------------------------------------------- */

static void on_req_writable(uv_poll_t *h, int status, int events);

/* Seals and sends one request; on EAGAIN (no control plane connected yet)
 * waits for NN_SNDFD. */
static bool send_request(sy_control_link_t *l, uint32_t kind, const void *data, size_t len)
{
    sy_buf_reset(&l->scratch);
    if (sy_envelope_seal(&l->key, kind, l->worker_id, ++l->env_seq, data, len, &l->scratch) != 0)
        return false;
    if (nn_send(l->req, l->scratch.data, l->scratch.len, NN_DONTWAIT) < 0) {
        if (nn_errno() == EAGAIN && !uv_is_active((uv_handle_t *)&l->req_wpoll))
            uv_poll_start(&l->req_wpoll, UV_READABLE, on_req_writable);
        return false;
    }
    return true;
}

/* Sends the next request if none is outstanding: a Hello first when one is
 * needed, else the oldest unacked report. */
static void pump(sy_control_link_t *l)
{
    if (l->req < 0 || l->stopping || l->inflight != REQ_IDLE)
        return;
    if (l->hello_needed) {
        Switchyard__Hello h = SWITCHYARD__HELLO__INIT;
        h.worker_id = l->worker_id;
        h.boot_id = l->boot_id;
        h.host = l->host;
        h.have_version = l->st.version;
        uint8_t buf[1024];
        size_t n = switchyard__hello__get_packed_size(&h);
        if (n > sizeof(buf))
            return;
        switchyard__hello__pack(&h, buf);
        if (send_request(l, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_HELLO, buf, n)) {
            l->inflight = REQ_HELLO;
            l->inflight_since = uv_now(l->loop);
            l->st.hellos_sent++;
        }
        return;
    }
    if (l->lease_wanted && l->lease_build != NULL) {
        sy_buf_t b;
        sy_buf_init(&b);
        if (l->lease_build(l->lease_arg, l->worker_id, l->boot_id, &b) == 0) {
            if (send_request(l, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_LEASE_REQUEST, b.data,
                             b.len)) {
                l->lease_wanted = false;
                l->inflight = REQ_LEASE;
                l->inflight_since = uv_now(l->loop);
            }
            sy_buf_free(&b);
            return;
        }
        sy_buf_free(&b);
        l->lease_wanted = false;
    }
    if (l->head != NULL && send_request(l, SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_USAGE_REPORT,
                                        l->head->data, l->head->len)) {
        l->inflight = REQ_REPORT;
        l->inflight_since = uv_now(l->loop);
        l->st.reports_sent++;
    }
}

static void on_req_writable(uv_poll_t *h, int status, int events)
{
    sy_control_link_t *l = sy_container_of(h, sy_control_link_t, req_wpoll);
    SY_UNUSED(status);
    SY_UNUSED(events);
    uv_poll_stop(h);
    pump(l);
}

static void report_acked(sy_control_link_t *l)
{
    pending_t *p = l->head;
    l->head = p->next;
    if (l->head == NULL)
        l->tail = NULL;
    l->n_mem--;
    l->st.reports_acked++;
    if (spool_append(l, SPOOL_ACK, p->boot_id, p->seq, NULL, 0) != 0 && l->spool_path != NULL)
        sy_log(SY_LOG_WARN, "usage_spool", "cannot record an ack in %s", l->spool_path);
    free(p);
    if (l->n_mem > 0 || l->spool_path == NULL)
        return;
    if (l->n_spilled > 0) {
        l->n_spilled = 0;
        if (spool_reload(l) != 0)
            sy_log(SY_LOG_ERROR, "usage_spool", "cannot reload %s", l->spool_path);
    } else if (l->spool_fd >= 0 && ftruncate(l->spool_fd, 0) != 0) {
        sy_log(SY_LOG_WARN, "usage_spool", "cannot truncate %s", l->spool_path);
    }
}

static void handle_ack(sy_control_link_t *l, const Switchyard__Ack *a, const void *sealed,
                       size_t len)
{
    int was = l->inflight;
    l->inflight = REQ_IDLE;
    if (was == REQ_HELLO) {
        l->hello_needed = false;
        if (a->snapshot != NULL)
            take_snapshot(l, a->snapshot, sealed, len, true);
    } else if (was == REQ_REPORT && l->head != NULL && a->seq == l->head->seq &&
               a->boot_id != NULL && strcmp(a->boot_id, l->head->boot_id) == 0) {
        report_acked(l);
    }
    note_current_version(l, a->current_version);
}

static void on_req_readable(uv_poll_t *h, int status, int events)
{
    sy_control_link_t *l = sy_container_of(h, sy_control_link_t, req_rpoll);
    SY_UNUSED(events);
    if (status < 0 || l->req < 0)
        return;
    for (int i = 0; i < 64; i++) {
        void *msg = NULL;
        int n = nn_recv(l->req, &msg, NN_MSG, NN_DONTWAIT);
        if (n < 0)
            break;
        if (l->inflight == REQ_HELLO && (size_t)n > ASYNC_DECODE_BYTES) {
            /* A Hello answer with a large snapshot: the Hello stays in
             * flight (no other request goes out) until it is decoded. */
            queue_decode(l, msg, (size_t)n, true);
            continue;
        }
        sy_envelope_t env;
        int rc = sy_envelope_open(&l->key, msg, (size_t)n, &env);
        if (rc != 0) {
            log_rejected(l, "reports", (size_t)n, rc);
        } else {
            Switchyard__Ack *a = NULL;
            if (env.kind == SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_LEASE_GRANT &&
                l->inflight == REQ_LEASE) {
                Switchyard__LeaseGrant *g = switchyard__lease_grant__unpack(
                    NULL, env.payload.len, (const uint8_t *)env.payload.data);
                l->inflight = REQ_IDLE;
                if (g != NULL && l->lease_grant != NULL)
                    l->lease_grant(l->lease_arg, g);
                else if (g == NULL)
                    l->st.invalid_messages++;
                switchyard__lease_grant__free_unpacked(g, NULL);
                sy_envelope_free(&env);
                nn_freemsg(msg);
                continue;
            }
            if (env.kind == SWITCHYARD__MESSAGE_KIND__MESSAGE_KIND_ACK)
                a = switchyard__ack__unpack(NULL, env.payload.len,
                                            (const uint8_t *)env.payload.data);
            if (a != NULL) {
                handle_ack(l, a, msg, (size_t)n);
                switchyard__ack__free_unpacked(a, NULL);
            } else {
                l->st.invalid_messages++;
            }
            sy_envelope_free(&env);
        }
        nn_freemsg(msg);
    }
    pump(l);
}

void sy_control_link_set_lease(sy_control_link_t *l, sy_control_link_lease_build_fn build,
                               sy_control_link_lease_grant_fn grant, void *arg)
{
    if (l == NULL)
        return;
    l->lease_build = build;
    l->lease_grant = grant;
    l->lease_arg = arg;
    if (build == NULL)
        l->lease_wanted = false;
}

void sy_control_link_want_lease(sy_control_link_t *l)
{
    if (l == NULL || l->lease_build == NULL)
        return;
    l->lease_wanted = true;
    pump(l);
}

/* --- usage ------------------------------------------------------------------------- */

int sy_control_link_flush(sy_control_link_t *l)
{
    if (l->usage == NULL || sy_usage_row_count(l->usage) == 0)
        return 0;
    /* The journal's current generation holds exactly what the aggregator
     * holds: close it, so the report can name it. */
    uint64_t gen = 0;
    if (l->journal != NULL && sy_usage_journal_pending(l->journal) > 0 &&
        sy_usage_journal_rotate(l->journal, &gen) != 0) {
        sy_log(SY_LOG_WARN, "usage_journal", "cannot rotate the usage journal");
        gen = 0;
    }
    Switchyard__UsageRow **rows = NULL;
    size_t n = 0;
    int rc = sy_usage_drain(l->usage, &rows, &n);
    if (rc != 0 || n == 0)
        return rc;
    Switchyard__UsageReport r = SWITCHYARD__USAGE_REPORT__INIT;
    r.worker_id = l->worker_id;
    r.boot_id = l->boot_id;
    r.seq = ++l->next_seq;
    r.rows = rows;
    r.n_rows = n;
    size_t len = switchyard__usage_report__get_packed_size(&r);
    pending_t *p = malloc(sizeof(*p) + len);
    if (p == NULL) {
        sy_usage_rows_free(rows, n);
        sy_log(SY_LOG_ERROR, "usage_lost", "out of memory: a report of %zu rows is lost", n);
        return SY_ENOMEM;
    }
    p->next = NULL;
    memcpy(p->boot_id, l->boot_id, sizeof(p->boot_id));
    p->seq = r.seq;
    p->len = switchyard__usage_report__pack(&r, p->data);
    sy_usage_rows_free(rows, n);

    bool spooled = spool_append_report(l, p->boot_id, p->seq, gen, p->data, p->len) == 0;
    if (spooled && gen != 0) {
        /* The spooled report carries these samples now. */
        l->covered_gen = gen;
        sy_usage_journal_forget(l->journal, gen);
    }
    if (!spooled && l->spool_path != NULL)
        sy_log(SY_LOG_WARN, "usage_spool", "cannot append to %s; report %llu kept in memory",
               l->spool_path, (unsigned long long)p->seq);
    if (spooled && (l->n_spilled > 0 || l->n_mem >= l->max_pending)) {
        /* Past the memory bound: the spool file holds it until its turn. */
        l->n_spilled++;
        free(p);
    } else {
        pending_push(l, p);
    }
    pump(l);
    return 0;
}

void sy_control_link_journal(sy_control_link_t *l, const sy_usage_sample_t *s)
{
    if (l == NULL || l->journal == NULL)
        return;
    if (sy_usage_journal_append(l->journal, s) != 0 && !l->journal_failed) {
        l->journal_failed = true;
        sy_log(SY_LOG_ERROR, "usage_journal",
               "cannot append to the usage journal: a kill -9 would lose this usage");
    }
}

static void on_tick(uv_timer_t *t)
{
    sy_control_link_t *l = sy_container_of(t, sy_control_link_t, tick);
    uint64_t now = uv_now(l->loop);
    if (now - l->last_drain >= (uint64_t)l->report_interval_ms) {
        l->last_drain = now;
        sy_control_link_flush(l);
    }
    if (l->inflight != REQ_IDLE && now - l->inflight_since >= STUCK_MS && l->next_req == NULL &&
        (l->job == NULL || !l->job->from_req)) {
        /* nanomsg resends by itself; this only covers a request it lost
         * track of. A new request cancels the old one. */
        l->inflight = REQ_IDLE;
    }
    if (l->behind_since != 0 && now - l->behind_since >= BEHIND_GRACE_MS) {
        l->behind_since = 0;
        if (l->want_version > l->st.version)
            l->hello_needed = true;
    }
    pump(l);
    if (l->stop_deadline != 0 && (l->n_mem + l->n_spilled == 0 || now >= l->stop_deadline))
        sy_control_link_stop(l);
}

/* --- life cycle ---------------------------------------------------------------------- */

size_t sy_control_link_pending(const sy_control_link_t *l)
{
    return l->n_mem + l->n_spilled;
}

void sy_control_link_get_stats(const sy_control_link_t *l, sy_control_link_stats_t *out)
{
    *out = l->st;
    out->reports_pending = l->n_mem + l->n_spilled;
    out->reports_spilled = l->n_spilled;
}

int sy_control_link_stats_json(const sy_control_link_t *l, sy_buf_t *out)
{
    sy_control_link_stats_t s;
    sy_control_link_get_stats(l, &s);
    return sy_buf_appendf(
        out,
        "{\"snapshot_version\":%llu,\"snapshots_received\":%llu,\"snapshots_installed\":%llu,"
        "\"rejected_messages\":%llu,\"invalid_messages\":%llu,\"reports_sent\":%llu,"
        "\"reports_acked\":%llu,\"reports_pending\":%llu,\"reports_spilled\":%llu,"
        "\"hellos_sent\":%llu}",
        (unsigned long long)s.version, (unsigned long long)s.snapshots_received,
        (unsigned long long)s.snapshots_installed, (unsigned long long)s.rejected_messages,
        (unsigned long long)s.invalid_messages, (unsigned long long)s.reports_sent,
        (unsigned long long)s.reports_acked, (unsigned long long)s.reports_pending,
        (unsigned long long)s.reports_spilled, (unsigned long long)s.hellos_sent);
}

static void free_link(sy_control_link_t *l)
{
    free_waiting(l);
    pending_t *p = l->head;
    while (p != NULL) {
        pending_t *next = p->next;
        free(p);
        p = next;
    }
    if (l->spool_fd >= 0)
        close(l->spool_fd);
    sy_usage_journal_close(l->journal);
    free(l->snap_path);
    free(l->spool_path);
    sy_buf_free(&l->scratch);
    explicit_bzero(&l->key, sizeof(l->key));
    free(l);
}

static void on_close(uv_handle_t *h)
{
    sy_control_link_t *l = h->data;
    /* A decode job still running frees the link when it is done. */
    if (--l->open_handles == 0 && l->job == NULL)
        free_link(l);
}

static int connect_socket(int proto, const char *url, int *out, sy_err_t *err)
{
    int s = nn_socket(AF_SP, proto);
    if (s < 0)
        return sy_err_set(err, SY_EIO, "nn_socket: %s", nn_strerror(nn_errno()));
    int max = MAX_MESSAGE_BYTES, linger = 0, ivl = RESEND_MS, reconnect = 100, reconnect_max = 1000;
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max));
    nn_setsockopt(s, NN_SOL_SOCKET, NN_LINGER, &linger, sizeof(linger));
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RECONNECT_IVL, &reconnect, sizeof(reconnect));
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RECONNECT_IVL_MAX, &reconnect_max, sizeof(reconnect_max));
    if (proto == NN_SUB)
        nn_setsockopt(s, NN_SUB, NN_SUB_SUBSCRIBE, "", 0);
    if (proto == NN_REQ)
        nn_setsockopt(s, NN_REQ, NN_REQ_RESEND_IVL, &ivl, sizeof(ivl));
    if (nn_connect(s, url) < 0) {
        int e = nn_errno();
        nn_close(s);
        return sy_err_set(err, SY_EINVAL, "cannot connect to %s: %s", url, nn_strerror(e));
    }
    *out = s;
    return 0;
}

static int socket_fd(int s, int opt, int *out, sy_err_t *err)
{
    size_t sz = sizeof(*out);
    if (nn_getsockopt(s, NN_SOL_SOCKET, opt, out, &sz) < 0)
        return sy_err_set(err, SY_EIO, "nn_getsockopt: %s", nn_strerror(nn_errno()));
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int sy_control_link_start(uv_loop_t *loop, const sy_control_link_options_t *o,
                          sy_control_link_t **out, sy_err_t *err)
{
    if (o->key == NULL || o->worker_id == NULL || o->worker_id[0] == '\0' ||
        strlen(o->worker_id) > SY_ENVELOPE_MAX_SENDER)
        return sy_err_set(err, SY_EINVAL, "control link: a cluster key and a worker id are needed");
    sy_control_link_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return sy_err_set(err, SY_ENOMEM, "control link: out of memory");
    l->loop = loop;
    l->key = *o->key;
    l->sub = l->req = l->spool_fd = -1;
    l->usage = o->usage;
    l->install = o->install;
    l->install_arg = o->install_arg;
    l->st.version = o->have_version;
    l->report_interval_ms = o->report_interval_ms > 0 ? o->report_interval_ms : 1000;
    l->max_pending = o->max_pending > 0 ? o->max_pending : 64;
    l->hello_needed = true;
    sy_buf_init(&l->scratch);
    snprintf(l->worker_id, sizeof(l->worker_id), "%s", o->worker_id);
    if (o->host != NULL)
        snprintf(l->host, sizeof(l->host), "%s", o->host);
    else if (gethostname(l->host, sizeof(l->host) - 1) != 0)
        snprintf(l->host, sizeof(l->host), "unknown");

    unsigned char rnd[BOOT_ID_LEN / 2];
    int rc;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        rc = sy_err_set(err, SY_EIO, "control link: getrandom failed");
        goto fail;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(l->boot_id + 2 * i, 3, "%02x", rnd[i]);

    if (o->state_dir != NULL && o->state_dir[0] != '\0') {
        char name[SY_ENVELOPE_MAX_SENDER + 32];
        int k = snprintf(name, sizeof(name), "reports-");
        /* The worker id may hold '/' (host/index): keep file names flat. */
        for (const char *s = l->worker_id; *s && k < (int)sizeof(name) - 8; s++)
            name[k++] = (char)((*s == '/' || *s == '.' || *s == ' ') ? '_' : *s);
        snprintf(name + k, sizeof(name) - (size_t)k, ".spool");
        mkdir(o->state_dir, 0700);
        l->snap_path = path_join(o->state_dir, "snapshot.sealed");
        l->spool_path = path_join(o->state_dir, name);
        if (l->snap_path == NULL || l->spool_path == NULL) {
            rc = sy_err_set(err, SY_ENOMEM, "control link: out of memory");
            goto fail;
        }
        load_cached_snapshot(l);
        if ((rc = spool_reload(l)) != 0) {
            rc = sy_err_set(err, rc, "control link: usage spool %s: %s", l->spool_path,
                            sy_err_name(rc));
            goto fail;
        }
        if (o->usage != NULL) {
            char jname[SY_ENVELOPE_MAX_SENDER + 32];
            snprintf(jname, sizeof(jname), "usage-%s", name + strlen("reports-"));
            char *dot = strrchr(jname, '.');
            if (dot != NULL)
                *dot = '\0'; /* drop ".spool" */
            if ((rc = sy_usage_journal_open(o->state_dir, jname, l->covered_gen, o->usage,
                                            &l->journal, NULL, err)) != 0)
                goto fail;
        }
    }

    int sub_fd = -1, req_rfd = -1, req_wfd = -1;
    if (o->snapshots_url != NULL && o->snapshots_url[0] != '\0' &&
        ((rc = connect_socket(NN_SUB, o->snapshots_url, &l->sub, err)) != 0 ||
         (rc = socket_fd(l->sub, NN_RCVFD, &sub_fd, err)) != 0))
        goto fail;
    if (o->reports_url != NULL && o->reports_url[0] != '\0' &&
        ((rc = connect_socket(NN_REQ, o->reports_url, &l->req, err)) != 0 ||
         (rc = socket_fd(l->req, NN_RCVFD, &req_rfd, err)) != 0 ||
         (rc = socket_fd(l->req, NN_SNDFD, &req_wfd, err)) != 0))
        goto fail;

    /* From here on nothing fails: every handle is initialized, and all are
     * closed by sy_control_link_stop. A missing socket gets a poll on a
     * placeholder descriptor that is never started. */
    uv_timer_init(loop, &l->tick);
    l->tick.data = l;
    l->open_handles = 1;
    if (l->sub >= 0) {
        uv_poll_init(loop, &l->sub_poll, sub_fd);
        l->sub_poll.data = l;
        l->open_handles++;
        uv_poll_start(&l->sub_poll, UV_READABLE, on_sub_readable);
    }
    if (l->req >= 0) {
        uv_poll_init(loop, &l->req_rpoll, req_rfd);
        uv_poll_init(loop, &l->req_wpoll, req_wfd);
        l->req_rpoll.data = l->req_wpoll.data = l;
        l->open_handles += 2;
        uv_poll_start(&l->req_rpoll, UV_READABLE, on_req_readable);
    }
    l->last_drain = uv_now(loop);
    uv_timer_start(&l->tick, on_tick, TICK_MS, TICK_MS);
    pump(l);
    sy_log(SY_LOG_INFO, "control_link_started",
           "worker %s boot %s: snapshots %s, reports %s, %zu unacked reports", l->worker_id,
           l->boot_id, l->sub >= 0 ? o->snapshots_url : "-", l->req >= 0 ? o->reports_url : "-",
           l->n_mem + l->n_spilled);
    *out = l;
    return 0;
fail:
    if (l->sub >= 0)
        nn_close(l->sub);
    if (l->req >= 0)
        nn_close(l->req);
    free_link(l);
    return rc;
}

void sy_control_link_stop(sy_control_link_t *l)
{
    if (l == NULL || l->stopping)
        return;
    l->stopping = true;
    uv_close((uv_handle_t *)&l->tick, on_close);
    if (l->sub >= 0) {
        uv_poll_stop(&l->sub_poll);
        uv_close((uv_handle_t *)&l->sub_poll, on_close);
        nn_close(l->sub);
        l->sub = -1;
    }
    if (l->req >= 0) {
        uv_poll_stop(&l->req_rpoll);
        uv_poll_stop(&l->req_wpoll);
        uv_close((uv_handle_t *)&l->req_rpoll, on_close);
        uv_close((uv_handle_t *)&l->req_wpoll, on_close);
        nn_close(l->req);
        l->req = -1;
    }
}

void sy_control_link_stop_graceful(sy_control_link_t *l, int64_t timeout_ms)
{
    if (l == NULL || l->stopping || l->stop_deadline != 0)
        return;
    sy_control_link_flush(l);
    if (l->req < 0 || l->n_mem + l->n_spilled == 0) {
        sy_control_link_stop(l);
        return;
    }
    /* The tick stops the link once the queue is empty or the time is up. */
    l->stop_deadline = uv_now(l->loop) + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
}

int sy_control_link_parse_endpoint(const char *control, char *snapshots, size_t snapshots_size,
                                   char *reports, size_t reports_size)
{
    if (control == NULL || control[0] == '\0')
        return SY_EINVAL;
    const char *comma = strchr(control, ',');
    int a, b;
    if (comma != NULL) {
        a = snprintf(snapshots, snapshots_size, "%.*s", (int)(comma - control), control);
        b = snprintf(reports, reports_size, "%s", comma + 1);
        if (comma == control || comma[1] == '\0')
            return SY_EINVAL;
    } else if (strncmp(control, "ipc://", 6) == 0) {
        const char *dir = control + 6;
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
            n--;
        a = snprintf(snapshots, snapshots_size, "ipc://%.*s/snapshots.ipc", (int)n, dir);
        b = snprintf(reports, reports_size, "ipc://%.*s/reports.ipc", (int)n, dir);
    } else if (strncmp(control, "tcp://", 6) == 0) {
        const char *colon = strrchr(control + 6, ':');
        char *end = NULL;
        long port = colon != NULL ? strtol(colon + 1, &end, 10) : 0;
        if (colon == NULL || end == colon + 1 || *end != '\0' || port <= 0 || port >= 65535)
            return SY_EINVAL;
        a = snprintf(snapshots, snapshots_size, "%s", control);
        b = snprintf(reports, reports_size, "%.*s:%ld", (int)(colon - control), control, port + 1);
    } else {
        return SY_EINVAL;
    }
    if (a < 0 || b < 0 || (size_t)a >= snapshots_size || (size_t)b >= reports_size)
        return SY_EINVAL;
    return 0;
}

static void worker_install(void *arg, sy_snapshot_t *snap)
{
    sy_worker_install_snapshot(arg, snap);
}

static int load_key(const sy_worker_config_t *cfg, sy_envelope_key_t *key, sy_err_t *err)
{
    if (cfg->cluster_key_file != NULL && cfg->cluster_key_file[0] != '\0')
        return sy_envelope_key_load(cfg->cluster_key_file, NULL, key, err);
    if (getenv("SWITCHYARD_CLUSTER_KEY") == NULL)
        return sy_err_set(err, SY_EINVAL,
                          "--control needs the cluster key: --cluster-key-file or "
                          "SWITCHYARD_CLUSTER_KEY");
    return sy_envelope_key_load(NULL, "SWITCHYARD_CLUSTER_KEY", key, err);
}

int sy_control_link_check(const sy_worker_config_t *cfg, sy_err_t *err)
{
    char snaps[1024], reports[1024];
    if (sy_control_link_parse_endpoint(cfg->control, snaps, sizeof(snaps), reports,
                                       sizeof(reports)) != 0)
        return sy_err_set(err, SY_EINVAL,
                          "--control %s: expected ipc:///dir, tcp://host:port or "
                          "SNAPSHOTS_URL,REPORTS_URL",
                          cfg->control);
    sy_envelope_key_t key;
    int rc = load_key(cfg, &key, err);
    explicit_bzero(&key, sizeof(key));
    return rc;
}

int sy_control_link_attach(sy_worker_t *w, sy_err_t *err)
{
    char snaps[1024], reports[1024], host[128], id[SY_ENVELOPE_MAX_SENDER + 1];
    int rc = sy_control_link_check(&w->cfg, err);
    if (rc != 0)
        return rc;
    sy_control_link_parse_endpoint(w->cfg.control, snaps, sizeof(snaps), reports, sizeof(reports));
    sy_envelope_key_t key;
    if ((rc = load_key(&w->cfg, &key, err)) != 0)
        return rc;
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(id, sizeof(id), "%.100s/%d", host, w->cfg.worker_id);
    const char *state = w->cfg.state_dir;
    sy_control_link_options_t o = {
        .snapshots_url = snaps,
        .reports_url = reports,
        .key = &key,
        .worker_id = id,
        .host = host,
        .state_dir = state != NULL && state[0] != '\0' ? state : "data/dataplane",
        .usage = w->usage,
        .install = worker_install,
        .install_arg = w,
        .have_version = w->snap != NULL ? sy_snapshot_version(w->snap) : 0,
    };
    sy_control_link_t *l = NULL;
    rc = sy_control_link_start(&w->loop, &o, &l, err);
    explicit_bzero(&key, sizeof(key));
    if (rc != 0)
        return rc;
    w->control_link = l;
    return 0;
}

void sy_control_link_worker_flush(sy_worker_t *w)
{
    if (w->control_link != NULL)
        sy_control_link_flush(w->control_link);
}

void sy_control_link_detach(sy_worker_t *w)
{
    /* The link frees itself once its last handle is closed. */
    sy_control_link_stop_graceful(w->control_link, 1000);
    w->control_link = NULL;
}
