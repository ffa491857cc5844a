/*
 * streamclient: the load generator and process probe of the benchmark harness.
 *
 * Stream mode opens N concurrent HTTP/1.1 streaming requests (SSE) against a
 * gateway, counts the events relayed on each, and measures the gateway's
 * process tree: RSS at the moment the most streams were in flight at once, CPU
 * over the whole run and over the steady window in which every stream was
 * answering and none had ended (only relaying then). One process cannot hold more descriptors than
 * RLIMIT_NOFILE allows and an unprivileged container cannot raise the hard limit, so the streams
 * are spread over forked children, each with its own libuv loop; the children publish their
 * counters in a shared anonymous mapping that the parent samples.
 *
 *   streamclient --port P [--host 127.0.0.1] [--path /v1/chat/completions]
 *                [--header "K: V"]... [--body-file F] --streams N
 *                [--ramp 256] [--timeout 120] [--tree PID] [--per-proc 8000]
 *                [--src-ips N]
 *   streamclient --probe PID
 *
 * Both modes print one JSON object on stdout; progress goes to stderr.
 * This is a benchmark tool, not a daemon: it is single-purpose and exits.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>
#include <uv.h>

#define MAX_HEADERS 16
#define MAX_PROCS 64
#define MAX_BODIES 16
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Counters of one child, written only by that child, read by the parent. */
typedef struct {
    uint64_t connected; /* TCP connections established */
    uint64_t sent;      /* requests written in full: the stream is in flight from here */
    uint64_t ended;     /* streams that ended after their request was sent, in any way */
    uint64_t opened;    /* responses whose 200 status and headers arrived */
    uint64_t completed; /* responses that ended cleanly */
    uint64_t refused;   /* failed before the headers: connect error, non-200 */
    uint64_t broken;    /* failed after the headers: reset, EOF mid-stream, timeout */
    uint64_t events;    /* SSE events (blank-line terminated) received */
    uint64_t bytes;     /* response body bytes received */
    uint64_t finished;  /* set to 1 when the child's loop has ended */
} slot_t;

/* A stream counts against the ramp (pending) until its request is written. */
enum { ST_CONNECTING, ST_WRITING, ST_WAITING, ST_OPEN, ST_DONE };

struct client;

/* One stream: a TCP connection carrying one request. Freed in its close callback. */
typedef struct stream {
    uv_tcp_t tcp;          /* embedded handle; data unused */
    uv_connect_t connect;  /* embedded connect request */
    uv_write_t write;      /* embedded write request for the request bytes */
    llhttp_t parser;       /* response parser */
    struct client *client; /* borrowed: the loop's client */
    struct stream *prev;   /* borrowed: live list */
    struct stream *next;   /* borrowed: live list */
    uint32_t linelen;      /* length of the SSE line being read, across reads */
    char lastc;            /* last byte of the partial line, to spot a lone CR */
    uint8_t state;         /* ST_* */
    uint8_t closing;       /* uv_close was called */
    uint32_t index;        /* the stream's number in its process, picks the request */
} stream_t;

/* The per-process side of stream mode: one loop, its share of the streams. */
typedef struct client {
    uv_loop_t *loop;               /* borrowed: the default loop */
    struct sockaddr_in addr;       /* gateway address */
    uv_buf_t requests[MAX_BODIES]; /* borrowed: the shared request bytes, one per body */
    int nrequests;                 /* requests in use; stream i sends i % nrequests */
    llhttp_settings_t settings;    /* response parser callbacks, shared by the streams */
    slot_t *slot;                  /* borrowed: this child's shared counters */
    stream_t *live;                /* borrowed: head of the live list (streams own themselves) */
    uv_timer_t deadline;           /* embedded: ends the run after --timeout */
    int total;                     /* streams this process opens */
    int started;                   /* streams started so far */
    int pending;                   /* streams connecting or writing their request */
    int ramp;                      /* cap on pending */
    int nsrc;         /* source addresses 127.0.0.2.. to spread over; 0 = kernel's choice */
    char rbuf[65536]; /* one read buffer for all streams: parsed at once */
} client_t;

static void start_more(client_t *c);

static void count(uint64_t *field, uint64_t n)
{
    __atomic_add_fetch(field, n, __ATOMIC_RELAXED);
}

static void on_close(uv_handle_t *h)
{
    stream_t *s = container_of((uv_tcp_t *)h, stream_t, tcp);
    free(s);
}

/* Ends a stream, counting it by the state it reached. */
static void stream_end(stream_t *s, int ok)
{
    client_t *c = s->client;
    if (s->closing)
        return;
    s->closing = 1;
    if (s->state == ST_CONNECTING || s->state == ST_WRITING) {
        c->pending--;
        count(&c->slot->refused, 1);
    } else if (s->state == ST_WAITING) {
        count(&c->slot->refused, 1);
        count(&c->slot->ended, 1);
    } else if (s->state == ST_OPEN) {
        count(ok ? &c->slot->completed : &c->slot->broken, 1);
        count(&c->slot->ended, 1);
    }
    s->state = ST_DONE;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->live = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    uv_close((uv_handle_t *)&s->tcp, on_close);
    start_more(c);
}

static int on_headers_complete(llhttp_t *p)
{
    stream_t *s = container_of(p, stream_t, parser);
    if (llhttp_get_status_code(p) != 200)
        return -1;
    s->state = ST_OPEN;
    count(&s->client->slot->opened, 1);
    return 0;
}

/* Counts SSE events: an event ends at an empty line ("\n\n" or "\r\n\r\n"). */
static int on_body(llhttp_t *p, const char *at, size_t len)
{
    stream_t *s = container_of(p, stream_t, parser);
    const char *end = at + len;
    uint64_t events = 0;
    while (at < end) {
        const char *nl = memchr(at, '\n', (size_t)(end - at));
        if (nl == NULL) {
            s->linelen += (uint32_t)(end - at);
            s->lastc = end[-1];
            break;
        }
        size_t line = s->linelen + (size_t)(nl - at);
        char only = nl > at ? nl[-1] : s->lastc;
        if (line == 0 || (line == 1 && only == '\r'))
            events++;
        s->linelen = 0;
        at = nl + 1;
    }
    count(&s->client->slot->events, events);
    count(&s->client->slot->bytes, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    stream_t *s = container_of(p, stream_t, parser);
    /* Pausing stops llhttp_execute; the read callback then closes the stream. */
    (void)s;
    return HPE_PAUSED;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    stream_t *s = container_of((uv_tcp_t *)h, stream_t, tcp);
    (void)hint;
    *buf = uv_buf_init(s->client->rbuf, sizeof(s->client->rbuf));
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    stream_t *s = container_of((uv_tcp_t *)h, stream_t, tcp);
    if (nread == 0 || s->closing)
        return;
    if (nread < 0) {
        int ok = nread == UV_EOF && llhttp_finish(&s->parser) == HPE_OK &&
                 llhttp_message_needs_eof(&s->parser);
        stream_end(s, ok);
        return;
    }
    llhttp_errno_t err = llhttp_execute(&s->parser, buf->base, (size_t)nread);
    if (err == HPE_PAUSED)
        stream_end(s, 1);
    else if (err != HPE_OK)
        stream_end(s, 0);
}

static void on_write(uv_write_t *w, int status)
{
    stream_t *s = container_of(w, stream_t, write);
    if (status < 0) {
        if (status != UV_ECANCELED)
            stream_end(s, 0);
        return;
    }
    if (s->state == ST_WRITING) {
        s->state = ST_WAITING;
        s->client->pending--;
        count(&s->client->slot->sent, 1);
        start_more(s->client);
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    stream_t *s = container_of(req, stream_t, connect);
    if (status < 0) {
        if (status != UV_ECANCELED)
            stream_end(s, 0);
        return;
    }
    count(&s->client->slot->connected, 1);
    s->state = ST_WRITING;
    client_t *c = s->client;
    int rc = uv_write(&s->write, (uv_stream_t *)&s->tcp, &c->requests[s->index % c->nrequests], 1,
                      on_write);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (rc < 0)
        stream_end(s, 0);
}

/* Binds the stream's socket to its source address, 127.0.0.(2 + index % nsrc),
 * leaving the port to connect(). A single source address makes the kernel
 * search the whole ephemeral range for a free port on every connect once
 * tens of thousands of connections go to one gateway port (perf shows the
 * client then spends its time in __inet_check_established); spreading the
 * sources keeps the search short. Returns 0 or a libuv error. */
static int bind_source(stream_t *s, client_t *c)
{
    uv_os_fd_t fd;
    int one = 1, rc = uv_fileno((uv_handle_t *)&s->tcp, &fd);
    if (rc < 0)
        return rc;
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0)
        return uv_translate_sys_error(errno);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(s->index % (uint32_t)c->nsrc));
    return uv_tcp_bind(&s->tcp, (const struct sockaddr *)&src, 0);
}

/* Starts streams until the ramp cap of pending ones or the total is reached. */
static void start_more(client_t *c)
{
    while (c->started < c->total && c->pending < c->ramp) {
        stream_t *s = calloc(1, sizeof(*s));
        if (s == NULL) {
            fprintf(stderr, "streamclient: out of memory\n");
            exit(1);
        }
        s->client = c;
        s->index = (uint32_t)c->started;
        llhttp_init(&s->parser, HTTP_RESPONSE, &c->settings);
        c->started++;
        c->pending++;
        s->state = ST_CONNECTING;
        s->next = c->live;
        if (c->live)
            c->live->prev = s;
        c->live = s;
        int rc = uv_tcp_init_ex(c->loop, &s->tcp, AF_INET);
        if (rc < 0) {
            /* Not initialised: count and free without uv_close. */
            c->live = s->next;
            if (s->next)
                s->next->prev = NULL;
            c->pending--;
            count(&c->slot->refused, 1);
            free(s);
            continue;
        }
        if (c->nsrc > 0)
            rc = bind_source(s, c);
        if (rc == 0)
            rc =
                uv_tcp_connect(&s->connect, &s->tcp, (const struct sockaddr *)&c->addr, on_connect);
        if (rc < 0)
            stream_end(s, 0);
    }
}

static void on_deadline(uv_timer_t *t)
{
    client_t *c = container_of(t, client_t, deadline);
    fprintf(stderr, "streamclient[%d]: deadline reached, closing %s streams\n", (int)getpid(),
            c->live ? "remaining" : "no");
    c->total = c->started; /* start nothing new */
    while (c->live)
        stream_end(c->live, 0);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int run_child(client_t *c, double timeout_s)
{
    c->loop = uv_default_loop();
    llhttp_settings_init(&c->settings);
    c->settings.on_headers_complete = on_headers_complete;
    c->settings.on_body = on_body;
    c->settings.on_message_complete = on_message_complete;
    uv_timer_init(c->loop, &c->deadline);
    uv_timer_start(&c->deadline, on_deadline, (uint64_t)(timeout_s * 1000), 0);
    start_more(c);
    /* The deadline timer keeps the loop alive; stop it once every stream ended. */
    while (uv_run(c->loop, UV_RUN_ONCE)) {
        if (c->live == NULL && c->started >= c->total &&
            !uv_is_closing((uv_handle_t *)&c->deadline))
            uv_close((uv_handle_t *)&c->deadline, NULL);
    }
    uv_walk(c->loop, on_walk_close, NULL);
    uv_run(c->loop, UV_RUN_DEFAULT);
    uv_loop_close(c->loop);
    __atomic_store_n(&c->slot->finished, 1, __ATOMIC_RELEASE);
    return 0;
}

/* --- process probe -------------------------------------------------------- */

typedef struct {
    int pid;
    int ppid;
    uint64_t ticks; /* utime+stime+cutime+cstime */
    uint64_t rss_pages;
} procinfo_t;

typedef struct {
    uint64_t cpu_us;      /* whole tree, including reaped children */
    uint64_t rss_kib;     /* whole tree */
    uint64_t workers_kib; /* descendants only (the root itself if it has none) */
    int procs;            /* processes in the tree */
} probe_t;

static int read_proc(int pid, procinfo_t *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -EINVAL;
    p += 2;
    unsigned long long f[25] = {0}; /* indexed by proc(5) field number */
    int i = 3;                      /* field number of the state letter */
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok && i <= 24; tok = strtok_r(NULL, " ", &save))
        f[i++] = strtoull(tok, NULL, 10);
    procinfo_t pi = {
        .pid = pid,
        .ppid = (int)f[4],
        .ticks = f[14] + f[15] + f[16] + f[17],
        .rss_pages = f[24],
    };
    *out = pi;
    return 0;
}

static int probe_tree(int root, probe_t *out)
{
    static procinfo_t all[32768];
    int n = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < (int)(sizeof(all) / sizeof(all[0]))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        if (read_proc(atoi(e->d_name), &all[n]) == 0)
            n++;
    }
    closedir(d);
    /* Breadth-first from the root over the parent links. */
    static int queue[32768];
    int head = 0, tail = 0, found = 0;
    probe_t pr = {0};
    uint64_t root_kib = 0;
    long page_kib = sysconf(_SC_PAGESIZE) / 1024;
    long hz = sysconf(_SC_CLK_TCK);
    queue[tail++] = root;
    while (head < tail) {
        int pid = queue[head++];
        for (int i = 0; i < n; i++) {
            if (all[i].pid == pid) {
                found = 1;
                pr.cpu_us += all[i].ticks * 1000000ULL / (uint64_t)hz;
                pr.rss_kib += all[i].rss_pages * (uint64_t)page_kib;
                if (pid == root)
                    root_kib = all[i].rss_pages * (uint64_t)page_kib;
                pr.procs++;
            } else if (all[i].ppid == pid && tail < (int)(sizeof(queue) / sizeof(queue[0]))) {
                queue[tail++] = all[i].pid;
            }
        }
    }
    if (!found)
        return -ESRCH;
    pr.workers_kib = pr.procs > 1 ? pr.rss_kib - root_kib : pr.rss_kib;
    *out = pr;
    return 0;
}

static void print_probe(const char *name, const probe_t *p)
{
    printf("\"%s\":{\"cpu_us\":%llu,\"rss_kib\":%llu,\"workers_rss_kib\":%llu,\"procs\":%d}", name,
           (unsigned long long)p->cpu_us, (unsigned long long)p->rss_kib,
           (unsigned long long)p->workers_kib, p->procs);
}

/* Adds up the children's counters; returns how many children still run. */
static int sum_slots(slot_t *slots, int n, slot_t *sum)
{
    int running = 0;
    memset(sum, 0, sizeof(*sum));
    for (int k = 0; k < n; k++) {
        slot_t *s = &slots[k];
        sum->connected += __atomic_load_n(&s->connected, __ATOMIC_RELAXED);
        sum->sent += __atomic_load_n(&s->sent, __ATOMIC_RELAXED);
        sum->ended += __atomic_load_n(&s->ended, __ATOMIC_RELAXED);
        sum->opened += __atomic_load_n(&s->opened, __ATOMIC_RELAXED);
        sum->completed += __atomic_load_n(&s->completed, __ATOMIC_RELAXED);
        sum->refused += __atomic_load_n(&s->refused, __ATOMIC_RELAXED);
        sum->broken += __atomic_load_n(&s->broken, __ATOMIC_RELAXED);
        sum->events += __atomic_load_n(&s->events, __ATOMIC_RELAXED);
        sum->bytes += __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
        if (!__atomic_load_n(&s->finished, __ATOMIC_ACQUIRE))
            running++;
    }
    return running;
}

/* --- parent ------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: streamclient --port P [--host H] [--path P] [--header 'K: V']... "
            "[--body-file F] --streams N [--ramp N] [--timeout S] [--tree PID] [--per-proc N]\n"
            "                    [--src-ips N]\n"
            "       streamclient --probe PID\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *path = "/v1/chat/completions", *body_files[MAX_BODIES];
    const char *headers[MAX_HEADERS];
    int nbodies = 0, nheaders = 0, port = 0, streams = 0, ramp = 256, tree = 0, per_proc = 8000,
        nsrc = -1;
    double timeout_s = 120;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--probe") == 0 && v) {
            probe_t p;
            int rc = probe_tree(atoi(v), &p);
            if (rc < 0) {
                fprintf(stderr, "streamclient: no process %s\n", v);
                return 1;
            }
            printf("{");
            print_probe("probe", &p);
            printf("}\n");
            return 0;
        }
        if (v == NULL)
            usage();
        if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--path") == 0)
            path = v;
        else if (strcmp(a, "--header") == 0 && nheaders < MAX_HEADERS)
            headers[nheaders++] = v;
        else if (strcmp(a, "--body-file") == 0 && nbodies < MAX_BODIES)
            body_files[nbodies++] = v;
        else if (strcmp(a, "--streams") == 0)
            streams = atoi(v);
        else if (strcmp(a, "--ramp") == 0)
            ramp = atoi(v);
        else if (strcmp(a, "--timeout") == 0)
            timeout_s = atof(v);
        else if (strcmp(a, "--tree") == 0)
            tree = atoi(v);
        else if (strcmp(a, "--src-ips") == 0)
            nsrc = atoi(v);
        else if (strcmp(a, "--per-proc") == 0)
            per_proc = atoi(v);
        else
            usage();
        i++;
    }
    if (port <= 0 || streams <= 0 || ramp <= 0 || per_proc <= 0)
        usage();
    if (nsrc < 0) /* default: one source address per 2,000 streams past the first 4,000 */
        nsrc = streams > 4000 ? (streams + 1999) / 2000 : 0;
    if (nsrc > 250)
        nsrc = 250;

    /* The requests are built once and shared, read-only, by every stream;
     * with several bodies the streams take them in turn. */
    static const char default_body[] = "{\"model\":\"gpt-4o-mini\",\"stream\":true,"
                                       "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
    uv_buf_t requests[MAX_BODIES];
    for (int b = 0; b < (nbodies ? nbodies : 1); b++) {
        size_t body_len = 0;
        char *body = nbodies ? read_file(body_files[b], &body_len) : strdup(default_body);
        if (body == NULL) {
            fprintf(stderr, "streamclient: cannot read %s\n", nbodies ? body_files[b] : "body");
            return 1;
        }
        if (!nbodies)
            body_len = strlen(body);
        size_t cap = body_len + 4096;
        char *req = malloc(cap);
        if (req == NULL)
            return 1;
        int off = snprintf(req, cap,
                           "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                           "Accept: text/event-stream\r\nContent-Length: %zu\r\n",
                           path, host, port, body_len);
        for (int i = 0; i < nheaders; i++)
            off += snprintf(req + off, cap - (size_t)off, "%s\r\n", headers[i]);
        off += snprintf(req + off, cap - (size_t)off, "\r\n");
        memcpy(req + off, body, body_len);
        free(body);
        requests[b] = uv_buf_init(req, (unsigned int)((size_t)off + body_len));
    }
    int nrequests = nbodies ? nbodies : 1;

    struct sockaddr_in addr;
    if (uv_ip4_addr(host, port, &addr) != 0) {
        fprintf(stderr, "streamclient: bad host %s\n", host);
        return 1;
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)per_proc + 64 > rl.rlim_cur)
        per_proc = (int)rl.rlim_cur - 64;
    int nprocs = (streams + per_proc - 1) / per_proc;
    if (nprocs > MAX_PROCS) {
        fprintf(stderr, "streamclient: %d streams need more than %d processes\n", streams,
                MAX_PROCS);
        return 1;
    }

    slot_t *slots = mmap(NULL, sizeof(slot_t) * MAX_PROCS, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (slots == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(slots, 0, sizeof(slot_t) * MAX_PROCS);
    signal(SIGPIPE, SIG_IGN);

    probe_t before = {0}, peak = {0}, after = {0};
    if (tree && probe_tree(tree, &before) < 0) {
        fprintf(stderr, "streamclient: no process %d\n", tree);
        return 1;
    }
    double t0 = now_s();
    pid_t kids[MAX_PROCS];
    for (int k = 0; k < nprocs; k++) {
        int share = streams / nprocs + (k < streams % nprocs ? 1 : 0);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            static client_t c;
            c.addr = addr;
            memcpy(c.requests, requests, sizeof(requests));
            c.nrequests = nrequests;
            c.nsrc = nsrc;
            c.slot = &slots[k];
            c.total = share;
            c.ramp = ramp / nprocs > 0 ? ramp / nprocs : 1;
            run_child(&c, timeout_s);
            _exit(0);
        }
        kids[k] = pid;
    }

    /* Sample the counters and the gateway's tree until every child ended. A
     * stream is in flight from the moment its request is written until it
     * ends: that is when the gateway holds state for it. */
    uint64_t peak_active = 0, peak_open = 0, all_open_at_ms = 0;
    double peak_t = 0, last_print = t0;
    /* The steady window runs from the first sample with every stream
     * answering to the last sample before any stream ended: the gateway only
     * relays events then, with no connection set-up or tear-down. */
    probe_t steady_from = {0}, steady_to = {0};
    uint64_t steady_ev_from = 0, steady_ev_to = 0;
    double steady_t_from = 0, steady_t_to = 0;
    int steady = 0; /* 0 not started, 1 open, 2 closed */
    int running = nprocs;
    slot_t sum;
    while (running > 0) {
        usleep(100000);
        running = sum_slots(slots, nprocs, &sum);
        uint64_t active = sum.sent - sum.ended;
        double t = now_s();
        uint64_t answering = sum.opened - sum.completed - sum.broken;
        /* The gateway's memory grows until every stream has its upstream
         * answer flowing, so the peak also follows the answering count. */
        if (active > peak_active || (active == peak_active && answering > peak_open)) {
            peak_active = active;
            peak_open = answering;
            peak_t = t - t0;
            if (tree)
                probe_tree(tree, &peak);
            if (active == (uint64_t)streams && all_open_at_ms == 0)
                all_open_at_ms = (uint64_t)((t - t0) * 1000);
        }
        if (tree && steady < 2) {
            if (sum.ended > 0 || sum.refused > 0) {
                steady = steady ? 2 : 3; /* 3: there never was one */
            } else if (answering == (uint64_t)streams) {
                probe_t *p = steady ? &steady_to : &steady_from;
                if (probe_tree(tree, p) == 0) {
                    *(steady ? &steady_ev_to : &steady_ev_from) = sum.events;
                    *(steady ? &steady_t_to : &steady_t_from) = t;
                    steady = 1;
                }
            }
        }
        if (t - last_print >= 1.0) {
            last_print = t;
            fprintf(stderr,
                    "streamclient: %5.1fs in flight %llu/%d (answering %llu), completed %llu, "
                    "refused %llu, broken %llu, events %llu\n",
                    t - t0, (unsigned long long)active, streams, (unsigned long long)answering,
                    (unsigned long long)sum.completed, (unsigned long long)sum.refused,
                    (unsigned long long)sum.broken, (unsigned long long)sum.events);
        }
    }
    for (int k = 0; k < nprocs; k++)
        waitpid(kids[k], NULL, 0);
    double elapsed = now_s() - t0;
    if (tree)
        probe_tree(tree, &after);
    sum_slots(slots, nprocs, &sum);
    printf("{\"streams\":%d,\"procs\":%d,\"connected\":%llu,\"opened\":%llu,\"completed\":%llu,"
           "\"refused\":%llu,\"broken\":%llu,\"events\":%llu,\"bytes\":%llu,"
           "\"peak_active\":%llu,\"peak_answering\":%llu,\"peak_at_s\":%.2f,\"all_open_at_ms\":%"
           "llu,\"elapsed_s\":%.3f",
           streams, nprocs, (unsigned long long)sum.connected, (unsigned long long)sum.opened,
           (unsigned long long)sum.completed, (unsigned long long)sum.refused,
           (unsigned long long)sum.broken, (unsigned long long)sum.events,
           (unsigned long long)sum.bytes, (unsigned long long)peak_active,
           (unsigned long long)peak_open, peak_t, (unsigned long long)all_open_at_ms, elapsed);
    if (tree) {
        printf(",");
        print_probe("before", &before);
        printf(",");
        print_probe("peak", &peak);
        printf(",");
        print_probe("after", &after);
        if (steady == 2 && steady_ev_to > steady_ev_from) {
            printf(",\"steady\":{\"events\":%llu,\"cpu_us\":%llu,\"seconds\":%.1f}",
                   (unsigned long long)(steady_ev_to - steady_ev_from),
                   (unsigned long long)(steady_to.cpu_us - steady_from.cpu_us),
                   steady_t_to - steady_t_from);
        }
    }
    printf("}\n");
    for (int b = 0; b < nrequests; b++)
        free(requests[b].base);
    return sum.refused + sum.broken == 0 ? 0 : 3;
}
