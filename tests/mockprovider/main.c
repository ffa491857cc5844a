/* switchyard-mockprovider: flags, the loop, graceful exit on SIGTERM/SIGINT.
 * Prints "mockprovider listening on http://HOST:PORT" on stdout once bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "config.h"
#include "err.h"
#include "log.h"
#include "mock.h"

typedef struct app {
    uv_loop_t loop;           /* embedded */
    uv_signal_t sigterm;      /* embedded */
    uv_signal_t sigint;       /* embedded */
    sy_mock_server_t *server; /* owned; freed by its own close */
} app_t;

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *app = s->data;
    sy_log(SY_LOG_INFO, "shutdown", "signal %d: closing", signum);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    if (app->server != NULL) {
        sy_mock_server_close(app->server);
        app->server = NULL;
    }
}

/* Splits "host:port" (IPv6 as "[::1]:port") into host (NUL-terminated) and port. */
static int split_listen(const char *s, char *host, size_t hsize, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return SY_EINVAL;
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= hsize)
        return SY_EINVAL;
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (*(colon + 1) == '\0' || *end != '\0' || p < 0 || p > 65535)
        return SY_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static bool valid_name(const char *s)
{
    if (*s == '\0' || strlen(s) > 48)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    const char *listen = NULL, *name = NULL, *api_key = NULL, *level_s = NULL;
    int64_t max_body = 0;
    sy_config_option_t opts[] = {
        {"listen", "SY_MOCK_LISTEN", SY_CONFIG_STRING, &listen, "127.0.0.1:0",
         "address:port to listen on (port 0 picks one and prints it)"},
        {"name", "SY_MOCK_NAME", SY_CONFIG_STRING, &name, "mock",
         "instance name, shown in stats, ids and the x-mock-name header"},
        {"api-key", "SY_MOCK_API_KEY", SY_CONFIG_STRING, &api_key, "mock-key",
         "accepted credential (empty accepts any)"},
        {"log-level", "SY_MOCK_LOG_LEVEL", SY_CONFIG_STRING, &level_s, "info",
         "debug, info, warn or error"},
        {"max-body", "SY_MOCK_MAX_BODY", SY_CONFIG_SIZE, &max_body, "16m",
         "largest request body accepted"},
    };
    sy_err_t err;
    sy_err_clear(&err);
    int rc = sy_config_parse(opts, SY_ARRAY_LEN(opts), argc, argv, &err);
    if (rc == SY_ECANCELED)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "switchyard-mockprovider: %s\n", err.msg);
        sy_config_usage(stderr, "switchyard-mockprovider", opts, SY_ARRAY_LEN(opts));
        return 2;
    }
    sy_log_level_t level;
    if (sy_log_level_parse(level_s, &level) != 0) {
        fprintf(stderr, "switchyard-mockprovider: bad --log-level %s\n", level_s);
        return 2;
    }
    if (!valid_name(name)) {
        fprintf(stderr, "switchyard-mockprovider: --name must be 1-48 of [A-Za-z0-9._-]\n");
        return 2;
    }
    char host[256];
    int port;
    if (split_listen(listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "switchyard-mockprovider: bad --listen %s (want HOST:PORT)\n", listen);
        return 2;
    }
    sy_log_open(NULL, level, "mockprovider");

    app_t app;
    memset(&app, 0, sizeof(app));
    uv_loop_init(&app.loop);
    sy_mock_server_opts_t so = {
        .host = host, .port = port, .name = name, .api_key = api_key, .max_body = max_body};
    rc = sy_mock_server_start(&app.loop, &so, &app.server);
    if (rc != 0) {
        fprintf(stderr, "switchyard-mockprovider: cannot listen on %s: %s\n", listen,
                uv_strerror(rc));
        uv_run(&app.loop, UV_RUN_DEFAULT); /* lets the half-open listener close */
        uv_loop_close(&app.loop);
        sy_log_close();
        return 1;
    }
    uv_signal_init(&app.loop, &app.sigterm);
    uv_signal_init(&app.loop, &app.sigint);
    app.sigterm.data = &app;
    app.sigint.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);

    int bound = sy_mock_server_port(app.server);
    printf("mockprovider listening on http://%s%s%s:%d\n", strchr(host, ':') ? "[" : "", host,
           strchr(host, ':') ? "]" : "", bound);
    fflush(stdout);
    sy_log(SY_LOG_INFO, "listening", "name=%s port=%d", name, bound);

    uv_run(&app.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&app.loop);
    sy_log(SY_LOG_INFO, "exit", "loop closed%s", rc == 0 ? "" : " with handles open");
    sy_log_close();
    return rc == 0 ? 0 : 1;
}
