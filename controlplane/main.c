/* bin/switchyard-control: the control plane daemon. One libuv loop runs the
 * admin HTTP API and the cluster channels (snapshot PUB, report REP) over the
 * single SQLite connection of the store. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "controlplane/admin.h"
#include "controlplane/cluster.h"
#include "controlplane/httpd.h"
#include "controlplane/secrets.h"
#include "controlplane/store.h"
#include "err.h"
#include "log.h"

typedef struct daemon {
    uv_loop_t *loop;       /* borrowed; the default loop */
    uv_signal_t sigterm;   /* graceful stop */
    uv_signal_t sigint;    /* graceful stop */
    uv_signal_t sighup;    /* log reopen */
    sy_store_t *store;     /* owned */
    sy_cluster_t *cluster; /* owned; freed in its close callbacks */
    sy_admin_t *admin;     /* owned */
    sy_httpd_t *httpd;     /* owned; freed in its close callbacks */
    bool stopping;         /* a stop signal arrived */
} daemon_t;

/* Finds a directory of the source tree (migrations, admin-web): the flag,
 * else next to the binary (<bin>/../<name> for bin/, <bin>/../../../<name>
 * for build/asan/bin/), else ./<name>. */
static const char *find_dir(const char *flag, const char *name, char *buf, size_t size)
{
    if (flag != NULL && flag[0] != '\0')
        return flag;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        const char *rel[] = {"/../", "/../../../"};
        for (size_t i = 0; i < SY_ARRAY_LEN(rel); i++) {
            struct stat st;
            snprintf(buf, size, "%s%s%s", exe, rel[i], name);
            if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
                return buf;
        }
    }
    return name;
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    daemon_t *d = s->data;
    if (d->stopping)
        return;
    d->stopping = true;
    sy_log(SY_LOG_INFO, "stopping", "signal %d: stopping", signum);
    sy_httpd_stop(d->httpd);
    d->httpd = NULL;
    sy_cluster_stop(d->cluster);
    d->cluster = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void on_hup(uv_signal_t *s, int signum)
{
    SY_UNUSED(s);
    SY_UNUSED(signum);
    sy_log_reopen();
}

int main(int argc, char **argv)
{
    const char *data_dir = NULL, *admin_listen = NULL, *migrations = NULL, *master_key_file = NULL;
    const char *cluster_key_file = NULL, *snapshot_bind = NULL, *report_bind = NULL;
    const char *web_dir = NULL;
    const char *log_file = NULL, *log_level = NULL;
    int64_t heartbeat_ms = 0, debounce_ms = 0, usage_refresh_ms = 0;
    sy_config_option_t opts[] = {
        {"data-dir", "SWITCHYARD_DATA_DIR", SY_CONFIG_STRING, &data_dir, "./data",
         "directory for the database, keys and ipc sockets"},
        {"admin-listen", "SWITCHYARD_ADMIN_LISTEN", SY_CONFIG_STRING, &admin_listen,
         "127.0.0.1:8081", "host:port of the admin HTTP API"},
        {"migrations-dir", "SWITCHYARD_MIGRATIONS_DIR", SY_CONFIG_STRING, &migrations, NULL,
         "directory of NNNN_name.sql migrations (default: next to the binary)"},
        {"master-key-file", "SWITCHYARD_MASTER_KEY_FILE", SY_CONFIG_STRING, &master_key_file, NULL,
         "file with the 64-hex master key (else SWITCHYARD_MASTER_KEY, else "
         "<data-dir>/master.key, generated)"},
        {"cluster-key-file", "SWITCHYARD_CLUSTER_KEY_FILE", SY_CONFIG_STRING, &cluster_key_file,
         NULL,
         "file with the 64-hex cluster key (else SWITCHYARD_CLUSTER_KEY, else "
         "<data-dir>/cluster.key, generated)"},
        {"snapshot-bind", "SWITCHYARD_SNAPSHOT_BIND", SY_CONFIG_STRING, &snapshot_bind, NULL,
         "nanomsg PUB address (default ipc://<data-dir>/snapshots.ipc)"},
        {"report-bind", "SWITCHYARD_REPORT_BIND", SY_CONFIG_STRING, &report_bind, NULL,
         "nanomsg REP address (default ipc://<data-dir>/reports.ipc)"},
        {"heartbeat", "SWITCHYARD_HEARTBEAT", SY_CONFIG_DURATION, &heartbeat_ms, "1s",
         "snapshot republish interval"},
        {"debounce", "SWITCHYARD_DEBOUNCE", SY_CONFIG_DURATION, &debounce_ms, "50ms",
         "delay between a change and its snapshot"},
        {"usage-refresh", "SWITCHYARD_USAGE_REFRESH", SY_CONFIG_DURATION, &usage_refresh_ms, "5s",
         "rebuild after applied usage (budget spend)"},
        {"admin-web-dir", "SWITCHYARD_ADMIN_WEB_DIR", SY_CONFIG_STRING, &web_dir, NULL,
         "admin-web files served under /admin/ (default: next to the binary)"},
        {"log-file", "SWITCHYARD_LOG_FILE", SY_CONFIG_STRING, &log_file, "-",
         "log file, - for stderr"},
        {"log-level", "SWITCHYARD_LOG_LEVEL", SY_CONFIG_STRING, &log_level, "info",
         "debug, info, warn or error"},
    };
    sy_err_t err;
    sy_err_clear(&err);
    int rc = sy_config_parse(opts, SY_ARRAY_LEN(opts), argc, argv, &err);
    if (rc == SY_ECANCELED)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "switchyard-control: %s\n", err.msg);
        sy_config_usage(stderr, "switchyard-control", opts, SY_ARRAY_LEN(opts));
        return 2;
    }
    sy_log_level_t level;
    if (sy_log_level_parse(log_level, &level) != 0) {
        fprintf(stderr, "switchyard-control: --log-level: expected debug, info, warn or error\n");
        return 2;
    }
    if (sy_log_open(log_file, level, "control") != 0) {
        fprintf(stderr, "switchyard-control: cannot open log %s\n", log_file);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* The database (hashes, sealed credentials), the keys and the ipc sockets
     * are for this user only; data-plane workers run as the same user. */
    umask(0077);

    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "switchyard-control: cannot create data dir %s: %s\n", data_dir,
                strerror(errno));
        return 1;
    }
    sy_envelope_key_t master;
    bool generated = false;
    if (sy_secrets_load_master_key(master_key_file, data_dir, &master, &generated, &err) != 0) {
        fprintf(stderr, "switchyard-control: master key: %s\n", err.msg);
        return 1;
    }
    if (generated)
        sy_log(SY_LOG_WARN, "master_key_generated",
               "generated a new master key in %s/master.key; back it up: provider credentials "
               "cannot be read without it",
               data_dir);

    daemon_t d;
    memset(&d, 0, sizeof(d));
    d.loop = uv_default_loop();
    char db_path[PATH_MAX], mig_buf[PATH_MAX], web_buf[PATH_MAX];
    snprintf(db_path, sizeof(db_path), "%s/switchyard.db", data_dir);
    const char *mig = find_dir(migrations, "migrations", mig_buf, sizeof(mig_buf));
    if (sy_store_open(db_path, mig, &d.store, &err) != 0) {
        fprintf(stderr, "switchyard-control: refusing to start: %s\n", err.msg);
        sy_log(SY_LOG_ERROR, "store_open", "%s", err.msg);
        return 1;
    }

    const char *env_token = getenv("SWITCHYARD_ADMIN_TOKEN");
    if (env_token != NULL && env_token[0] == '\0')
        env_token = NULL;
    char token[96];
    bool created = false;
    if (sy_admin_bootstrap(d.store, env_token, token, sizeof(token), &created, &err) != 0) {
        fprintf(stderr, "switchyard-control: %s\n", err.msg);
        sy_store_close(d.store);
        return 1;
    }
    if (created) {
        /* Shown once, on stdout only: the database keeps just its hash. */
        printf("switchyard-control: platform admin token (shown once, store it now): %s\n", token);
        fflush(stdout);
        explicit_bzero(token, sizeof(token));
        sy_log(SY_LOG_INFO, "admin_bootstrap", "created the platform admin user \"admin\"");
    }

    sy_cluster_options_t copts = {
        .data_dir = data_dir,
        .snapshot_bind = snapshot_bind,
        .report_bind = report_bind,
        .cluster_key_file = cluster_key_file,
        .master_key = &master,
        .heartbeat_ms = heartbeat_ms,
        .debounce_ms = debounce_ms,
        .usage_refresh_ms = usage_refresh_ms,
    };
    if (sy_cluster_start(d.loop, d.store->db, &copts, &d.cluster, &err) != 0) {
        fprintf(stderr, "switchyard-control: cluster: %s\n", err.msg);
        sy_store_close(d.store);
        return 1;
    }
    sy_admin_options_t aopts = {
        .store = d.store,
        .master_key = &master,
        .cluster = d.cluster,
        .web_dir = find_dir(web_dir, "admin-web", web_buf, sizeof(web_buf)),
    };
    char host[256];
    int port;
    if (sy_admin_new(&aopts, &d.admin, &err) != 0 ||
        (sy_httpd_parse_addr(admin_listen, host, sizeof(host), &port) != 0 &&
         sy_err_set(&err, SY_EINVAL, "--admin-listen: expected host:port, got %s", admin_listen)) ||
        sy_httpd_start(d.loop, host, port, sy_admin_handle, d.admin, &d.httpd, &err) != 0) {
        fprintf(stderr, "switchyard-control: admin API: %s\n", err.msg);
        sy_cluster_stop(d.cluster);
        uv_run(d.loop, UV_RUN_DEFAULT);
        sy_admin_free(d.admin);
        sy_store_close(d.store);
        return 1;
    }
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    uv_signal_init(d.loop, &d.sighup);
    d.sigterm.data = d.sigint.data = d.sighup.data = &d;
    uv_signal_start(&d.sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&d.sighup, on_hup, SIGHUP);
    sy_log(SY_LOG_INFO, "started", "admin API on http://%s:%d/admin/v1/, data in %s", host,
           sy_httpd_port(d.httpd), data_dir);

    uv_run(d.loop, UV_RUN_DEFAULT);

    sy_admin_free(d.admin);
    sy_store_close(d.store);
    explicit_bzero(&master, sizeof(master));
    uv_loop_close(d.loop);
    sy_log(SY_LOG_INFO, "stopped", "control plane stopped");
    sy_log_close();
    return 0;
}
