/* bin/switchyard-dataplane: the master process. It validates the
 * configuration, forks N workers (dataplane/worker.c), restarts a worker
 * that dies (with backoff), forwards SIGHUP, and turns SIGTERM/SIGINT into a
 * graceful drain: every worker stops accepting, finishes its in-flight
 * requests up to --drain-timeout and exits; the master exits 0 after them. */
#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "dataplane/control_link.h"
#include "dataplane/worker.h"

#define EXIT_CONFIG 78 /* a worker that cannot start because of the configuration */
#define MAX_WORKERS 256

typedef struct slot {
    pid_t pid;             /* 0 when not running */
    int64_t started_ms;    /* monotonic start time */
    int64_t restart_at_ms; /* when to restart, 0 none */
    int64_t backoff_ms;    /* next restart delay */
} slot_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t spawn(const sy_worker_config_t *base, int id, const sigset_t *oldmask)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Child: default signal handling, die with the master. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    sy_worker_config_t cfg = *base;
    cfg.worker_id = id;
    _exit(sy_worker_run(&cfg));
}

static int parse_listen(const char *s, char *host, size_t hsz, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return SY_EINVAL;
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[' && hl > 2 && s[hl - 1] == ']') {
        s++;
        hl -= 2;
    }
    if (hl >= hsz)
        return SY_EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 0 || p > 65535)
        return SY_EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

/* Fails fast (before forking) when the address cannot be bound. */
static int check_bind(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    if (getaddrinfo(host, ps, &hints, &ai) != 0)
        return SY_EINVAL;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, rc = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

int main(int argc, char **argv)
{
    const char *listen = NULL, *snapshot_file = NULL, *log_file = NULL, *log_level = NULL;
    const char *upstream_engine = NULL;
    int64_t workers = 0;
    bool access_log = true;
    sy_worker_config_t cfg = {0};
    sy_config_option_t opts[] = {
        {"listen", "SWITCHYARD_LISTEN", SY_CONFIG_STRING, &listen, "0.0.0.0:8080",
         "address:port to serve on"},
        {"workers", "SWITCHYARD_WORKERS", SY_CONFIG_INT, &workers, "0",
         "worker processes (0 = one per core)"},
        {"snapshot-file", "SWITCHYARD_SNAPSHOT_FILE", SY_CONFIG_STRING, &snapshot_file, NULL,
         "routing table file (JSON or protobuf Snapshot); reloaded on SIGHUP"},
        {"log-file", "SWITCHYARD_LOG_FILE", SY_CONFIG_STRING, &log_file, "-",
         "log file ('-' = stderr); reopened on SIGHUP"},
        {"log-level", "SWITCHYARD_LOG_LEVEL", SY_CONFIG_STRING, &log_level, "info",
         "debug, info, warn or error"},
        {"access-log", "SWITCHYARD_ACCESS_LOG", SY_CONFIG_BOOL, &access_log, "true",
         "one JSON line per request"},
        {"drain-timeout", "SWITCHYARD_DRAIN_TIMEOUT", SY_CONFIG_DURATION, &cfg.drain_timeout_ms,
         "30s", "graceful drain deadline on SIGTERM"},
        {"max-header-size", "SWITCHYARD_MAX_HEADER_SIZE", SY_CONFIG_SIZE, &cfg.max_header_bytes,
         "32k", "request line + headers cap (431 beyond)"},
        {"max-body-size", "SWITCHYARD_MAX_BODY_SIZE", SY_CONFIG_SIZE, &cfg.max_body_bytes, "16m",
         "request body cap (413 beyond)"},
        {"max-response-size", "SWITCHYARD_MAX_RESPONSE_SIZE", SY_CONFIG_SIZE,
         &cfg.max_response_bytes, "64m", "buffered upstream body cap (502 beyond)"},
        {"header-timeout", "SWITCHYARD_HEADER_TIMEOUT", SY_CONFIG_DURATION, &cfg.header_timeout_ms,
         "10s", "time to receive a request head (408)"},
        {"body-timeout", "SWITCHYARD_BODY_TIMEOUT", SY_CONFIG_DURATION, &cfg.body_timeout_ms, "60s",
         "time to receive a request body (408)"},
        {"idle-timeout", "SWITCHYARD_IDLE_TIMEOUT", SY_CONFIG_DURATION, &cfg.idle_timeout_ms, "75s",
         "keep-alive idle time before closing"},
        {"send-timeout", "SWITCHYARD_SEND_TIMEOUT", SY_CONFIG_DURATION, &cfg.send_timeout_ms, "60s",
         "drop a client that reads nothing for this long"},
        {"upstream-connect-timeout", "SWITCHYARD_UPSTREAM_CONNECT_TIMEOUT", SY_CONFIG_DURATION,
         &cfg.upstream_connect_timeout_ms, "10s", "default upstream connect timeout"},
        {"upstream-first-byte-timeout", "SWITCHYARD_UPSTREAM_FIRST_BYTE_TIMEOUT",
         SY_CONFIG_DURATION, &cfg.upstream_first_byte_timeout_ms, "120s",
         "default time to the first response byte"},
        {"upstream-idle-timeout", "SWITCHYARD_UPSTREAM_IDLE_TIMEOUT", SY_CONFIG_DURATION,
         &cfg.upstream_idle_timeout_ms, "120s", "longest silence inside a response"},
        {"upstream-total-timeout", "SWITCHYARD_UPSTREAM_TOTAL_TIMEOUT", SY_CONFIG_DURATION,
         &cfg.upstream_total_timeout_ms, "600s", "default whole-transfer timeout"},
        {"upstream-engine", "SWITCHYARD_UPSTREAM_ENGINE", SY_CONFIG_STRING, &upstream_engine,
         "auto",
         "auto (plain http upstreams on the built-in HTTP/1.1 client, https on libcurl) or curl"},
        {"write-high-water", "SWITCHYARD_WRITE_HIGH_WATER", SY_CONFIG_SIZE, &cfg.write_high_water,
         "64k", "queued client bytes above which the upstream is paused"},
        {"control", "SWITCHYARD_CONTROL", SY_CONFIG_STRING, &cfg.control, NULL,
         "control plane: ipc:///<its data dir>, tcp://host:port (reports on port+1) or "
         "SNAPSHOTS_URL,REPORTS_URL"},
        {"cluster-key-file", "SWITCHYARD_CLUSTER_KEY_FILE", SY_CONFIG_STRING, &cfg.cluster_key_file,
         NULL, "file with the 64-hex cluster key (else SWITCHYARD_CLUSTER_KEY)"},
        {"state-dir", "SWITCHYARD_STATE_DIR", SY_CONFIG_STRING, &cfg.state_dir, "data/dataplane",
         "last snapshot and unacked usage reports (with --control)"},
    };
    sy_err_t err;
    sy_err_clear(&err);
    int rc = sy_config_parse(opts, SY_ARRAY_LEN(opts), argc, argv, &err);
    if (rc == SY_ECANCELED)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "switchyard-dataplane: %s\n", err.msg);
        return 2;
    }
    sy_log_level_t level;
    if (sy_log_level_parse(log_level, &level) != 0) {
        fprintf(stderr, "switchyard-dataplane: bad --log-level %s\n", log_level);
        return 2;
    }
    if (sy_log_open(log_file, level, "dataplane") != 0) {
        fprintf(stderr, "switchyard-dataplane: cannot open log %s\n", log_file);
        return 2;
    }
    char host[256];
    if (parse_listen(listen, host, sizeof(host), &cfg.port) != 0) {
        fprintf(stderr, "switchyard-dataplane: bad --listen %s (want host:port)\n", listen);
        return 2;
    }
    if (strcmp(upstream_engine, "auto") != 0 && strcmp(upstream_engine, "curl") != 0) {
        fprintf(stderr, "switchyard-dataplane: bad --upstream-engine %s (want auto or curl)\n",
                upstream_engine);
        return 2;
    }
    cfg.upstream_curl_only = strcmp(upstream_engine, "curl") == 0;
    cfg.host = host;
    cfg.snapshot_file = snapshot_file;
    cfg.access_log = access_log;
    if (workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        workers = n > 0 ? n : 1;
    }
    if (workers > MAX_WORKERS)
        workers = MAX_WORKERS;
    if (cfg.write_high_water < 4096)
        cfg.write_high_water = 4096;

    /* Fail fast on a bad snapshot file or address, before forking. */
    if (snapshot_file != NULL) {
        sy_snapshot_t *snap = NULL;
        if (sy_snapshot_load_file(snapshot_file, &snap, &err) != 0) {
            fprintf(stderr, "switchyard-dataplane: %s\n", err.msg);
            return 1;
        }
        sy_snapshot_unref(snap);
    }
    if (cfg.control != NULL && sy_control_link_check(&cfg, &err) != 0) {
        fprintf(stderr, "switchyard-dataplane: %s\n", err.msg);
        return 2;
    }
    if ((rc = check_bind(host, cfg.port)) != 0) {
        fprintf(stderr, "switchyard-dataplane: cannot bind %s: %s\n", listen, strerror(-rc));
        return 1;
    }
    /* Every open stream costs two descriptors (client and upstream): allow
     * as many as the hard limit does. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "switchyard-dataplane: curl_global_init failed\n");
        return 1;
    }

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);

    slot_t slots[MAX_WORKERS];
    memset(slots, 0, sizeof(slots));
    int n = (int)workers;
    for (int i = 0; i < n; i++) {
        slots[i].pid = spawn(&cfg, i, &old);
        slots[i].started_ms = now_ms();
        slots[i].backoff_ms = 100;
    }
    char fields[160];
    int fl = snprintf(fields, sizeof(fields), "\"workers\":%d,\"listen\":\"%s\",\"pid\":%d", n,
                      listen, (int)getpid());
    sy_log_fields(SY_LOG_INFO, "master_started", fields, (size_t)fl);

    bool draining = false;
    /* A configuration failure while starting up stops the master; later
     * (say a snapshot file broken before a restart) the worker is retried
     * with backoff instead, so the surviving workers keep serving. */
    int64_t boot_until = now_ms() + 5000;
    int exit_code = 0;
    int64_t kill_at = 0;
    for (;;) {
        int live = 0;
        for (int i = 0; i < n; i++)
            live += slots[i].pid > 0;
        if (draining && live == 0)
            break;
        int64_t now = now_ms(), wait_ms = 1000;
        for (int i = 0; i < n; i++)
            if (slots[i].restart_at_ms > 0 && slots[i].restart_at_ms - now < wait_ms)
                wait_ms = slots[i].restart_at_ms - now;
        if (kill_at > 0 && kill_at - now < wait_ms)
            wait_ms = kill_at - now;
        if (wait_ms < 1)
            wait_ms = 1;
        struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        now = now_ms();
        if (sig == SIGTERM || sig == SIGINT) {
            if (!draining) {
                draining = true;
                kill_at = now + cfg.drain_timeout_ms + 2000;
                sy_log(SY_LOG_INFO, "master_draining", "signal %d: draining %d workers", sig, live);
                for (int i = 0; i < n; i++) {
                    slots[i].restart_at_ms = 0;
                    if (slots[i].pid > 0)
                        kill(slots[i].pid, SIGTERM);
                }
            }
        } else if (sig == SIGHUP) {
            sy_log_reopen();
            for (int i = 0; i < n; i++)
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGHUP);
        }
        /* Reap every exited worker (SIGCHLD coalesces). */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (slots[i].pid != pid)
                    continue;
                slots[i].pid = 0;
                int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                int signo = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
                if (draining) {
                    sy_log(SY_LOG_INFO, "worker_exited", "worker %d (pid %d) exited %d", i,
                           (int)pid, code);
                    break;
                }
                if (code == EXIT_CONFIG && now < boot_until) {
                    sy_log(SY_LOG_ERROR, "worker_failed",
                           "worker %d cannot start (configuration); stopping", i);
                    exit_code = 1;
                    draining = true;
                    kill_at = now + 2000;
                    for (int j = 0; j < n; j++)
                        if (slots[j].pid > 0)
                            kill(slots[j].pid, SIGTERM);
                    break;
                }
                if (now - slots[i].started_ms > 10000)
                    slots[i].backoff_ms = 100; /* it ran fine for a while */
                slots[i].restart_at_ms = now + slots[i].backoff_ms;
                sy_log(SY_LOG_WARN, "worker_died",
                       "worker %d (pid %d) died (exit %d, signal %d); restarting in %lld ms", i,
                       (int)pid, code, signo, (long long)slots[i].backoff_ms);
                slots[i].backoff_ms =
                    slots[i].backoff_ms * 2 > 10000 ? 10000 : slots[i].backoff_ms * 2;
                break;
            }
        }
        if (!draining) {
            for (int i = 0; i < n; i++) {
                if (slots[i].pid == 0 && slots[i].restart_at_ms > 0 &&
                    now >= slots[i].restart_at_ms) {
                    slots[i].restart_at_ms = 0;
                    slots[i].pid = spawn(&cfg, i, &old);
                    slots[i].started_ms = now;
                    sy_log(SY_LOG_INFO, "worker_restarted", "worker %d restarted as pid %d", i,
                           (int)slots[i].pid);
                }
            }
        } else if (kill_at > 0 && now >= kill_at) {
            for (int i = 0; i < n; i++)
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGKILL);
            kill_at = 0;
        }
    }
    sy_log(SY_LOG_INFO, "master_exit", "all workers stopped");
    curl_global_cleanup();
    sy_log_close();
    return exit_code;
}
