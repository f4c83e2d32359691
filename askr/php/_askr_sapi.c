/*
 * Askr's embedded-PHP SAPI.
 *
 * Theory of operation
 * -------------------
 * One worker process runs one PHP interpreter (NTS build) started once by
 * askr_startup().  A request arrives from Python as a job handle plus the
 * CGI variables packed into one buffer; everything PHP asks of the server
 * while it runs (body bytes, cookies, $_SERVER, getenv, output, headers)
 * is answered here in C from that buffer or into C buffers.  Python is
 * crossed once on the way in (askr_run_script) and, in the usual case,
 * once on the way out: askr_py_send(status, headers, whole body, last=1).
 * Output is sent early only when the buffer passes ASKR_CHUNK bytes, on
 * flush(), or on fastcgi_finish_request().
 *
 * Worker mode (askr_run_worker) runs one long-lived script inside a single
 * PHP request; each askr_handle_request($handler) call swaps in the next
 * job and resets the request-scoped state by hand (see askr_worker_end and
 * askr_worker_begin), the way FrankenPHP's worker mode does.
 *
 * PHP writes to STDOUT/STDERR and php://stdout / php://stderr go to the
 * log callback, never into a response and never onto the process's fds.
 */
#define _GNU_SOURCE 1 /* dladdr, memrchr */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <sys/time.h>
#include <unistd.h>

#include "php.h"
#include "php_main.h"
#include "php_ini.h"
#include "php_variables.h"
#include "php_output.h"
#include "php_memory_streams.h"
#include "SAPI.h"
#include "rfc1867.h"
#include "zend_exceptions.h"
#include "zend_ini.h"
#include "zend_observer.h"
#include "zend_signal.h"
#include "ext/standard/head.h"
#include "ext/standard/basic_functions.h"

#include "_askr_sapi.h"

/* ---- version and build conditionals, all in one place ---------------- */

#if PHP_VERSION_ID < 80200
# error "Askr's SAPI needs PHP 8.2 or newer (zend_atomic_bool, observer API)"
#endif
#ifdef ZTS
# error "Askr embeds an NTS (non thread-safe) PHP; install the NTS libphp-embed"
#endif

/* opcache refuses to start unless sapi_module.name is one of the names
 * in its accel_find_sapi() list (ext/opcache/ZendAccelerator.c: apache,
 * fastcgi, cli-server, cgi-fcgi, fpm-fcgi, fpmi-fcgi, apache2handler,
 * litespeed, uwsgi; "cli" only with opcache.enable_cli).  It checks once,
 * from its startup hook inside php_module_startup().  So the module
 * starts under "uwsgi" -- another embedding server nothing else in
 * php-src compares against -- and is renamed to "askr" right after
 * startup, in the global sapi_module (sapi_startup() and
 * php_module_startup() copy the struct; the copy is what PHP reads),
 * with the PHP_SAPI constant patched to match. */
#define ASKR_STARTUP_NAME "uwsgi"
#define ASKR_SAPI_NAME "askr"

/* Output is sent to Python in pieces of about this size. */
#define ASKR_CHUNK (64 * 1024)

/* PHP's built-in defaults would print errors into responses.  Without a
 * php.ini these come first; the [worker] ini text comes after them, so an
 * operator may still override them.  When a php.ini is read, it rules. */
static const char askr_ini_defaults[] =
    "display_errors=0\n"
    "log_errors=1\n";

#define ASKR_FATAL_ERRORS \
    (E_ERROR | E_CORE_ERROR | E_COMPILE_ERROR | E_PARSE)

/* Errors after which php_error_cb() aborts the script (an uncaught
 * exception is reported as E_ERROR too). */
#define ASKR_ABORTING_ERRORS \
    (ASKR_FATAL_ERRORS | E_USER_ERROR | E_RECOVERABLE_ERROR)

/* ---- per-request context (reached through SG(server_context)) -------- */

typedef struct {
    void *job;
    const char *env;
    size_t env_len;
    /* env split into pairs; pointers into env (already NUL-terminated) */
    const char **keys;
    const char **vals;
    size_t *vlens;
    size_t *klens;
    int nvars;
    int cap;
    /* the variables the SAPI itself needs, found while splitting */
    const char *v_method, *v_query, *v_uri, *v_ctype, *v_clen, *v_proto;
    const char *v_cookie, *v_auth, *v_script_name, *v_path_info;
    int has_self;

    const char *body;
    size_t body_len;
    size_t body_pos;
    int body_fd;
    off_t fd_pos;

    char *out;
    size_t out_len;
    size_t out_cap;
    char *hdrs;
    size_t hdrs_len;
    size_t hdrs_cap;

    int status;
    int headers_ready; /* send_headers seen: hdrs/status are final */
    int headers_given; /* headers already passed to Python */
    int finished;      /* send(last=1) done; later output discarded */
    int early;         /* finished by fastcgi_finish_request(): PHP runs on */
    int aborted;       /* client gone */
    int fatal;         /* a fatal error was raised in this request */
    int failed;        /* answer 500 if nothing was sent yet */
    int discard;       /* no job: drop output (worker between requests) */
    const char *script;
} askr_request;

static askr_request req_main; /* classic requests, worker requests */
static askr_request req_boot; /* worker: the job that started the script */
static askr_request req_idle; /* worker: between requests */
static askr_request *cur = &req_idle;

static int started = 0;
static char *ini_buf = NULL;
static double request_timeout = 0.0;
static volatile sig_atomic_t wall_timed_out = 0;

/* worker mode state */
static int in_worker;
static int worker_handled = 0;    /* askr_handle_request served >=1 job */
static int worker_stopped = 0;    /* next_job said None */
static int worker_fatal = 0;      /* a fatal ended the worker script */
static HashTable *boot_ini = NULL; /* ini values the worker set at boot */

static inline int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap ? *cap : 8192;
    while (n < need) {
        n *= 2;
    }
    char *p = realloc(*buf, n);
    if (!p) {
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

static const char *env_get(askr_request *r, const char *key)
{
    for (int i = 0; i < r->nvars; i++) {
        if (strcmp(r->keys[i], key) == 0) {
            return r->vals[i];
        }
    }
    return NULL;
}

#define KEY_IS(lit) (klen == sizeof(lit) - 1 && !memcmp(k, lit, klen))

/* Remember where the variables PHP's request_info needs are. */
static inline void note_known(askr_request *r, const char *k, size_t klen,
                              const char *v)
{
    switch (k[0]) {
    case 'C':
        if (KEY_IS("CONTENT_TYPE")) r->v_ctype = v;
        else if (KEY_IS("CONTENT_LENGTH")) r->v_clen = v;
        break;
    case 'H':
        if (KEY_IS("HTTP_COOKIE")) r->v_cookie = v;
        else if (KEY_IS("HTTP_AUTHORIZATION")) r->v_auth = v;
        break;
    case 'P':
        if (KEY_IS("PATH_INFO")) r->v_path_info = v;
        else if (KEY_IS("PHP_SELF")) r->has_self = 1;
        break;
    case 'Q':
        if (KEY_IS("QUERY_STRING")) r->v_query = v;
        break;
    case 'R':
        if (KEY_IS("REQUEST_METHOD")) r->v_method = v;
        else if (KEY_IS("REQUEST_URI")) r->v_uri = v;
        break;
    case 'S':
        if (KEY_IS("SCRIPT_FILENAME")) r->script = v;
        else if (KEY_IS("SCRIPT_NAME")) r->v_script_name = v;
        else if (KEY_IS("SERVER_PROTOCOL")) r->v_proto = v;
        break;
    }
}

/* Take a job from Python: split its env, reset the per-request buffers. */
static int req_load(askr_request *r, void *job, const char *env, size_t env_len,
                    const char *body, size_t body_len, int body_fd)
{
    r->job = job;
    r->env = env;
    r->env_len = env_len;
    r->nvars = 0;
    r->v_method = r->v_query = r->v_uri = r->v_ctype = r->v_clen = NULL;
    r->v_proto = r->v_cookie = r->v_auth = r->v_script_name = NULL;
    r->v_path_info = r->script = NULL;
    r->has_self = 0;

    const char *p = env;
    const char *end = env + env_len;
    while (p < end) {
        const char *k = p;
        const char *kz = memchr(k, 0, end - k);
        if (!kz || kz + 1 > end) {
            break;
        }
        const char *v = kz + 1;
        const char *vz = memchr(v, 0, end - v);
        if (!vz) {
            break;
        }
        if (r->nvars == r->cap) {
            int n = r->cap ? r->cap * 2 : 64;
            const char **nk = realloc(r->keys, n * sizeof(*nk));
            if (nk) r->keys = nk;
            const char **nv = realloc(r->vals, n * sizeof(*nv));
            if (nv) r->vals = nv;
            size_t *nl = realloc(r->vlens, n * sizeof(*nl));
            if (nl) r->vlens = nl;
            size_t *kl = realloc(r->klens, n * sizeof(*kl));
            if (kl) r->klens = kl;
            if (!nk || !nv || !nl || !kl) {
                return -1;
            }
            r->cap = n;
        }
        r->keys[r->nvars] = k;
        r->vals[r->nvars] = v;
        r->vlens[r->nvars] = vz - v;
        r->klens[r->nvars] = kz - k;
        r->nvars++;
        note_known(r, k, kz - k, v);
        p = vz + 1;
    }

    r->body = body;
    r->body_len = body_len;
    r->body_pos = 0;
    r->body_fd = body_fd;
    r->fd_pos = 0;
    r->out_len = 0;
    r->hdrs_len = 0;
    r->status = 200;
    r->headers_ready = 0;
    r->headers_given = 0;
    r->finished = 0;
    r->early = 0;
    r->aborted = 0;
    r->fatal = 0;
    r->failed = 0;
    r->discard = (job == NULL);
    return 0;
}

/* SG(request_info) points into the env buffer, which Python keeps alive
 * until the request is over. */
static void fill_request_info(askr_request *r)
{
    const char *cl = r->v_clen;
    const char *proto = r->v_proto;

    SG(server_context) = r;
    SG(request_info).request_method = r->v_method;
    SG(request_info).query_string = (char *)r->v_query;
    SG(request_info).request_uri = (char *)r->v_uri;
    SG(request_info).content_type = r->v_ctype;
    SG(request_info).content_length = cl ? atoll(cl) : 0;
    SG(request_info).path_translated = (char *)r->script;
    SG(request_info).proto_num = 1000;
    if (proto && strlen(proto) >= 8 && proto[5] >= '0' && proto[7] >= '0') {
        SG(request_info).proto_num = (proto[5] - '0') * 1000 + (proto[7] - '0');
    }
    if (SG(request_info).content_type && !*SG(request_info).content_type) {
        SG(request_info).content_type = NULL;
    }
    /* PHP_AUTH_USER / PHP_AUTH_PW / PHP_AUTH_DIGEST, as php-cgi sets them;
     * the previous request's copies were freed by sapi_deactivate() */
    SG(request_info).auth_user = NULL;
    SG(request_info).auth_password = NULL;
    SG(request_info).auth_digest = NULL;
    php_handle_auth_data(r->v_auth);
    /* PHP does not reset the response code between requests itself. */
    SG(sapi_headers).http_response_code = 200;
}

/* Python frees the env buffer when the call returns. */
static void forget_request_info(void)
{
    SG(request_info).request_method = NULL;
    SG(request_info).query_string = NULL;
    SG(request_info).request_uri = NULL;
    SG(request_info).content_type = NULL;
    SG(request_info).path_translated = NULL;
    SG(request_info).cookie_data = NULL;
}

/* ---- the way out: one send per request in the usual case ------------- */

static void req_send(askr_request *r, int last)
{
    if (r->discard || r->finished || !r->job) {
        return;
    }
    if (!r->headers_given) {
        if (wall_timed_out) {
            r->status = 504;
        } else if (r->failed) {
            r->status = 500;
        }
    }
    const char *h = NULL;
    size_t hl = 0;
    if (!r->headers_given) {
        h = r->hdrs ? r->hdrs : "";
        hl = r->hdrs_len;
        r->headers_given = 1;
    }
    int ok = askr_py_send(r->job, r->status ? r->status : 200, h, hl,
                          r->aborted ? "" : (r->out ? r->out : ""),
                          r->aborted ? 0 : r->out_len,
                          last ? (r->early ? 2 : 1) : 0);
    r->out_len = 0;
    if (last) {
        r->finished = 1;
    }
    if (!ok && !r->aborted) {
        r->aborted = 1;
        PG(connection_status) |= PHP_CONNECTION_ABORTED;
    }
}

/* PHP only switches to 500 on a fatal error while its headers are not
 * "sent"; with output_buffering=0 that is after the first echo.  Nothing
 * has reached the client until the first send, so the 500 applies then. */
static void status_after_script(askr_request *r)
{
    if (EG(exit_status) == 255 && (PG(last_error_type) & ASKR_ABORTING_ERRORS)) {
        r->fatal = 1;
        r->failed = 1;
    }
}

/* The final send.  Headers not captured yet (nothing was ever output)
 * get status 200 and no header lines rather than a missed response. */
static void req_finish(askr_request *r)
{
    if (r->discard || r->finished) {
        return;
    }
    req_send(r, 1);

    /* one huge echo must not pin its buffer for the process's life */
    if (r->out_cap > 4 * ASKR_CHUNK) {
        free(r->out);
        r->out = NULL;
        r->out_cap = 0;
    }
}

static int in_worker;

/* The client went away.  A classic request stops here unless
 * ignore_user_abort is set (php_handle_aborted_connection bails out).  In
 * a worker a bailout would throw the whole script away, so the handler
 * runs on with its output dropped; connection_aborted() tells it. */
static void client_gone(void)
{
    if (!in_worker) {
        php_handle_aborted_connection();
    }
}

static size_t askr_ub_write(const char *str, size_t len)
{
    askr_request *r = cur;
    if (r->discard || r->finished || r->aborted) {
        return len;
    }
    if (grow(&r->out, &r->out_cap, r->out_len + len) < 0) {
        return 0;
    }
    memcpy(r->out + r->out_len, str, len);
    r->out_len += len;
    if (r->out_len >= ASKR_CHUNK && r->headers_ready) {
        req_send(r, 0);
        if (r->aborted) {
            client_gone();
        }
    }
    return len;
}

static void askr_flush(void *ctx)
{
    askr_request *r = ctx ? (askr_request *)ctx : cur;
    /* like php-cgi: output still held in a PHP buffer (output_buffering)
     * has not reached the SAPI, so there is nothing to send, not even
     * the headers */
    if (r->discard || r->finished || r->aborted || !r->headers_ready) {
        return;
    }
    if (r->out_len || !r->headers_given) {
        req_send(r, 0);
        if (r->aborted) {
            client_gone();
        }
    }
}

/* Header lines go to Python as "Name: value\0" each, in PHP's order. */
static void pack_header(sapi_header_struct *h, askr_request *r)
{
    const char *line = h->header;
    size_t len = h->header_len;
    const char *colon = memchr(line, ':', len);
    if (!colon) {
        return;
    }
    size_t nlen = colon - line;
    const char *v = colon + 1;
    while (v < line + len && (*v == ' ' || *v == '\t')) {
        v++;
    }
    size_t vlen = line + len - v;
    if (grow(&r->hdrs, &r->hdrs_cap, r->hdrs_len + nlen + vlen + 3) < 0) {
        return;
    }
    char *p = r->hdrs + r->hdrs_len;
    memcpy(p, line, nlen);
    p += nlen;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, v, vlen);
    p += vlen;
    *p++ = 0;
    r->hdrs_len = p - r->hdrs;
}

static int askr_send_headers(sapi_headers_struct *sh)
{
    askr_request *r = cur;
    if (r->discard || r->headers_given) {
        return SAPI_HEADER_SENT_SUCCESSFULLY;
    }
    r->status = sh->http_response_code ? sh->http_response_code : 200;
    r->hdrs_len = 0;
    zend_llist_position pos;
    sapi_header_struct *h = zend_llist_get_first_ex(&sh->headers, &pos);
    while (h) {
        /* a CGI "Status: 503 ..." header sets the status, as under
         * php-cgi and php-fpm, and is not passed on */
        if (h->header_len > 7 && !strncasecmp(h->header, "Status:", 7)) {
            int code = atoi(h->header + 7);
            if (code >= 100 && code <= 999) {
                r->status = code;
            }
        } else {
            pack_header(h, r);
        }
        h = zend_llist_get_next_ex(&sh->headers, &pos);
    }
    r->headers_ready = 1;
    return SAPI_HEADER_SENT_SUCCESSFULLY;
}

/* ---- the way in ------------------------------------------------------- */

static size_t askr_read_post(char *buf, size_t count)
{
    askr_request *r = cur;
    size_t n = 0;
    if (r->body_pos < r->body_len) {
        n = r->body_len - r->body_pos;
        if (n > count) {
            n = count;
        }
        memcpy(buf, r->body + r->body_pos, n);
        r->body_pos += n;
    }
    while (n < count && r->body_fd >= 0) {
        ssize_t k = pread(r->body_fd, buf + n, count - n, r->fd_pos);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            r->body_fd = -1;
            break;
        }
        r->fd_pos += k;
        n += k;
    }
    return n;
}

static char *askr_read_cookies(void)
{
    return (char *)cur->v_cookie;
}

/* A CGI variable name php_register_variable_ex() would store unchanged:
 * letters, digits and '_', not starting with a digit (numeric keys), and
 * not one of the two names it refuses. */
static inline int plain_name(const char *k, size_t klen)
{
    if (!klen || (k[0] >= '0' && k[0] <= '9')) {
        return 0;
    }
    for (size_t i = 0; i < klen; i++) {
        char c = k[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_')) {
            return 0;
        }
    }
    return !(klen == 7 && !memcmp(k, "GLOBALS", 7))
           && !(klen == 4 && !memcmp(k, "this", 4));
}

static void askr_register_variables(zval *arr)
{
    askr_request *r = cur;
    for (int i = 0; i < r->nvars; i++) {
        /* the common case skips php_register_variable_ex()'s name
         * mangling and array-syntax parsing: a third of a worker
         * request's C time with ~30 variables */
        if (Z_TYPE_P(arr) == IS_ARRAY && plain_name(r->keys[i], r->klens[i])) {
            zval v;
            ZVAL_STRINGL_FAST(&v, r->vals[i], r->vlens[i]);
            zend_hash_str_update(Z_ARRVAL_P(arr), r->keys[i], r->klens[i], &v);
        } else {
            php_register_variable_safe(r->keys[i], r->vals[i], r->vlens[i], arr);
        }
    }
    /* php-cgi and php-fpm add PHP_SELF themselves */
    if (!r->has_self) {
        const char *sn = r->v_script_name;
        const char *pi = r->v_path_info;
        if (sn) {
            if (pi && *pi) {
                size_t a = strlen(sn), b = strlen(pi);
                char *self = emalloc(a + b + 1);
                memcpy(self, sn, a);
                memcpy(self + a, pi, b + 1);
                php_register_variable_safe("PHP_SELF", self, a + b, arr);
                efree(self);
            } else {
                php_register_variable_safe("PHP_SELF", sn, strlen(sn), arr);
            }
        }
    }
}

/* getenv() sees the request's variables, as under php-fpm. */
static char *askr_getenv(const char *name, size_t len)
{
    (void)len;
    const char *v = env_get(cur, name);
    return v ? estrdup(v) : NULL;
}

/* ---- logging ----------------------------------------------------------- */

static int syslog_to_level(int t)
{
    switch (t) {
    case 0: case 1: case 2: return 50;  /* emerg, alert, crit */
    case 3: return 40;                  /* err */
    case 4: return 30;                  /* warning */
    case 5: case 6: return 20;          /* notice, info */
    default: return 10;
    }
}

static void askr_log_message(const char *msg, int syslog_type)
{
    if (wall_timed_out && strstr(msg, "Maximum execution time")) {
        /* our own SIGALRM tripped PHP's timeout path: say what happened */
        char line[1024];
        const char *s = cur->script ? cur->script : "?";
        int n = snprintf(line, sizeof line,
                         "PHP request timeout: wall-clock limit of %gs exceeded "
                         "running %s", request_timeout, s);
        size_t len = n < 0 ? 0 : (size_t)n;
        if (len >= sizeof line) {
            len = sizeof line - 1;
        }
        askr_py_log(40, line, len);
        return;
    }
    askr_py_log(syslog_to_level(syslog_type), msg, strlen(msg));
}

static void askr_on_error(int type, zend_string *file, uint32_t line,
                          zend_string *message)
{
    (void)file; (void)line; (void)message;
    if (type & ASKR_FATAL_ERRORS) {
        cur->fatal = 1;
    }
}

/* STDOUT/STDERR streams that write into the log. */
static ssize_t logstream_write(php_stream *s, const char *buf, size_t count)
{
    int which = (int)(intptr_t)s->abstract;
    size_t n = count;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    if (n) {
        askr_py_log(which == 2 ? 30 : 20, buf, n);
    }
    return count;
}

static ssize_t logstream_read(php_stream *s, char *buf, size_t count)
{
    (void)buf; (void)count;
    s->eof = 1;
    return 0;
}

static int logstream_close(php_stream *s, int close_handle)
{
    (void)s; (void)close_handle;
    return 0;
}

static int logstream_flush(php_stream *s)
{
    (void)s;
    return 0;
}

static const php_stream_ops logstream_ops = {
    logstream_write, logstream_read, logstream_close, logstream_flush,
    "askr log", NULL, NULL, NULL, NULL,
};

static php_stream *logstream_open(int which)
{
    return php_stream_alloc(&logstream_ops, (void *)(intptr_t)which, NULL,
                            "wb");
}

static php_stream_wrapper *orig_php_wrapper;
static php_stream_wrapper_ops askr_php_wops;
static php_stream_wrapper askr_php_wrapper;

static php_stream *askr_php_opener(php_stream_wrapper *w, const char *path,
                                   const char *mode, int options,
                                   zend_string **opened, php_stream_context *ctx
                                   STREAMS_DC)
{
    (void)w;
    if (!strncasecmp(path, "php://", 6)) {
        if (!strcasecmp(path + 6, "stdout")) {
            return logstream_open(1);
        }
        if (!strcasecmp(path + 6, "stderr")) {
            return logstream_open(2);
        }
    }
    return orig_php_wrapper->wops->stream_opener(orig_php_wrapper, path, mode,
                                                 options, opened, ctx
                                                 STREAMS_REL_CC);
}

static void register_stream_constant(const char *name, int which)
{
    php_stream *s = logstream_open(which);
    if (!s) {
        return;
    }
    zend_constant c;
    php_stream_to_zval(s, &c.value);
    ZEND_CONSTANT_SET_FLAGS(&c, 0, PHP_USER_CONSTANT);
    c.name = zend_string_init_interned(name, strlen(name), 0);
    zend_register_constant(&c);
}

static void register_std_constants(void)
{
    register_stream_constant("STDOUT", 1);
    register_stream_constant("STDERR", 2);
}

/* ---- wall-clock request timeout ---------------------------------------- */

/* Mirrors what PHP's own SIGPROF timeout handler does: raise the VM
 * interrupt so the engine calls zend_timeout() at the next opcode
 * boundary (sleep() returns early because the signal interrupts it). */
static void askr_alarm(int sig)
{
    (void)sig;
    wall_timed_out = 1;
    zend_atomic_bool_store_ex(&EG(timed_out), true);
    zend_atomic_bool_store_ex(&EG(vm_interrupt), true);
}

static void timer_arm(void)
{
    wall_timed_out = 0;
    if (request_timeout <= 0) {
        return;
    }
    struct itimerval t = {{0, 0}, {0, 0}};
    t.it_value.tv_sec = (time_t)request_timeout;
    t.it_value.tv_usec = (suseconds_t)((request_timeout - t.it_value.tv_sec) * 1e6);
    if (!t.it_value.tv_sec && !t.it_value.tv_usec) {
        t.it_value.tv_usec = 1;
    }
    setitimer(ITIMER_REAL, &t, NULL);
}

static void timer_disarm(void)
{
    if (request_timeout <= 0) {
        return;
    }
    struct itimerval t = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &t, NULL);
}

void askr_set_request_timeout(double seconds)
{
    request_timeout = seconds > 0 ? seconds : 0;
    if (request_timeout > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = askr_alarm;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
    }
}

/* ---- stop requests for long-running scripts ----------------------------- */

/* While a long script runs (queue worker, scheduler), Python code runs
 * only inside callbacks, so a Python-level SIGTERM handler would fire too
 * late.  This C handler only sets a flag that the script polls through
 * askr_should_stop(). */
static volatile sig_atomic_t stop_flag = 0;

static void askr_on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void askr_install_stop_signal(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = askr_on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int askr_stop_requested(void)
{
    return stop_flag;
}

/* ---- PHP functions the SAPI adds -------------------------------------- */

PHP_FUNCTION(askr_should_stop)
{
    ZEND_PARSE_PARAMETERS_NONE();
    RETURN_BOOL(stop_flag);
}


/* Complete the response now; the script may keep running afterwards. */
PHP_FUNCTION(fastcgi_finish_request)
{
    ZEND_PARSE_PARAMETERS_NONE();
    askr_request *r = cur;
    if (r->discard || r->finished) {
        RETURN_FALSE;
    }
    php_output_end_all();
    php_header();
    r->early = 1;      /* tells Python to write it now, not after PHP */
    req_finish(r);
    RETURN_TRUE;
}

static void worker_end(askr_request *r);
static void clear_last_error(void);
static int worker_begin(askr_request *r);

static zend_module_entry *find_module(const char *name)
{
    return zend_hash_str_find_ptr(&module_registry, name, strlen(name));
}

/* Modules whose request state lives in module globals and is built in
 * RINIT / torn down in RSHUTDOWN: session (id, status, save handler,
 * the write of $_SESSION) and filter (its copies of the input arrays
 * used by filter_input()).  Same list as FrankenPHP's worker mode. */
static const char *const reload_modules[] = {"filter", "session", NULL};

static void modules_rshutdown(void)
{
    for (const char *const *n = reload_modules; *n; n++) {
        zend_module_entry *m = find_module(*n);
        if (m && m->request_shutdown_func) {
            zend_try {
                m->request_shutdown_func(m->type, m->module_number);
            } zend_end_try();
        }
    }
}

static void modules_rinit(void)
{
    for (const char *const *n = reload_modules; *n; n++) {
        zend_module_entry *m = find_module(*n);
        if (m && m->request_startup_func) {
            m->request_startup_func(m->type, m->module_number);
        }
    }
}

typedef struct {
    zval err;
    int err_reporting;
    int err_depth;
    zval exc;
    int exc_depth;
} handler_snapshot;

/* Error and exception handlers set during a request are undone; the ones
 * the worker script installed before its loop (Laravel does) stay. */
static void handlers_save(handler_snapshot *s)
{
    ZVAL_COPY(&s->err, &EG(user_error_handler));
    s->err_reporting = EG(user_error_handler_error_reporting);
    s->err_depth = zend_stack_count(&EG(user_error_handlers));
    ZVAL_COPY(&s->exc, &EG(user_exception_handler));
    s->exc_depth = zend_stack_count(&EG(user_exception_handlers));
}

static void handlers_restore(handler_snapshot *s)
{
    while (zend_stack_count(&EG(user_error_handlers)) > s->err_depth) {
        zval_ptr_dtor((zval *)zend_stack_top(&EG(user_error_handlers)));
        zend_stack_del_top(&EG(user_error_handlers));
        zend_stack_del_top(&EG(user_error_handlers_error_reporting));
    }
    while (zend_stack_count(&EG(user_exception_handlers)) > s->exc_depth) {
        zval_ptr_dtor((zval *)zend_stack_top(&EG(user_exception_handlers)));
        zend_stack_del_top(&EG(user_exception_handlers));
    }
    zval_ptr_dtor(&EG(user_error_handler));
    ZVAL_COPY_VALUE(&EG(user_error_handler), &s->err);
    EG(user_error_handler_error_reporting) = s->err_reporting;
    zval_ptr_dtor(&EG(user_exception_handler));
    ZVAL_COPY_VALUE(&EG(user_exception_handler), &s->exc);
}

/* ini values changed by the worker script before its first
 * askr_handle_request() are part of the app; later ones are undone. */
static void boot_ini_snapshot(void)
{
    if (boot_ini || !EG(modified_ini_directives)) {
        return;
    }
    ALLOC_HASHTABLE(boot_ini);
    zend_hash_init(boot_ini, 8, NULL, ZVAL_PTR_DTOR, 0);
    zend_ini_entry *e;
    ZEND_HASH_MAP_FOREACH_PTR(EG(modified_ini_directives), e) {
        zval v;
        if (e->value) {
            ZVAL_STR_COPY(&v, e->value);
        } else {
            ZVAL_NULL(&v);
        }
        zend_hash_update(boot_ini, e->name, &v);
    } ZEND_HASH_FOREACH_END();
}

static void ini_restore(void)
{
    if (!EG(modified_ini_directives)) {
        return;
    }
    zend_ini_deactivate();
    if (boot_ini) {
        zend_string *name;
        zval *v;
        ZEND_HASH_MAP_FOREACH_STR_KEY_VAL(boot_ini, name, v) {
            if (Z_TYPE_P(v) == IS_STRING) {
                zend_alter_ini_entry_ex(name, Z_STR_P(v), ZEND_INI_USER,
                                        ZEND_INI_STAGE_RUNTIME, 1);
            }
        } ZEND_HASH_FOREACH_END();
    }
}

static void boot_ini_free(void)
{
    if (boot_ini) {
        zend_hash_destroy(boot_ini);
        FREE_HASHTABLE(boot_ini);
        boot_ini = NULL;
    }
}

/* Re-create $_GET, $_POST, $_COOKIE, $_FILES, $_SERVER and $_REQUEST from
 * the current SG(request_info).  $_SERVER and $_REQUEST are "JIT" globals
 * that PHP builds only while compiling code that names them; the worker's
 * handler was compiled long ago, so they are armed by hand.  $_FILES is
 * filled by the multipart parser only when it is not an array already,
 * so the old one is dropped first.  $_ENV is left as the script saw it. */
static void superglobals_rearm(void)
{
    zval *files = &PG(http_globals)[TRACK_VARS_FILES];
    zval_ptr_dtor_nogc(files);
    ZVAL_UNDEF(files);

    zend_auto_global *ag;
    ZEND_HASH_MAP_FOREACH_PTR(CG(auto_globals), ag) {
        if (zend_string_equals_literal(ag->name, "_ENV")
            || zend_string_equals_literal(ag->name, "GLOBALS")) {
            continue;
        }
        if (ag->auto_global_callback) {
            ag->armed = ag->auto_global_callback(ag->name);
        } else {
            ag->armed = 0;
        }
    } ZEND_HASH_FOREACH_END();
}

static void clear_last_error(void)
{
    if (PG(last_error_message)) {
        zend_string_release(PG(last_error_message));
        PG(last_error_message) = NULL;
    }
    if (PG(last_error_file)) {
        zend_string_release(PG(last_error_file));
        PG(last_error_file) = NULL;
    }
    PG(last_error_type) = 0;
    PG(last_error_lineno) = 0;
}

/* The request body is kept in a temp stream (SG(request_info).
 * request_body) that PHP never closes itself: a classic request frees it
 * with the whole resource list at shutdown, a worker would keep one per
 * request (~700 bytes each) forever.  Streams of that kind that nobody
 * else holds or has seen are closed after each request. */
static void release_request_streams(void)
{
    int le_stream = php_file_le_stream();
    zend_resource *res;
    ZEND_HASH_FOREACH_PTR(&EG(regular_list), res) {
        if (res->type != le_stream || !res->ptr) {
            continue;
        }
        php_stream *st = (php_stream *)res->ptr;
        if (st->ops == &php_stream_temp_ops && !st->__exposed
            && GC_REFCOUNT(res) == 1) {
            zend_list_delete(res);
        }
    } ZEND_HASH_FOREACH_END();
}

/* Adapted from what php_request_startup() does, minus the parts that
 * would throw away the worker's compiled code and objects. */
static int worker_begin(askr_request *r)
{
    int ok = 1;
    cur = r;
    fill_request_info(r);
    zend_try {
        PG(header_is_being_sent) = 0;
        PG(connection_status) = PHP_CONNECTION_NORMAL;
        sapi_activate();
        SG(sapi_headers).http_response_code = 200;
        if (PG(expose_php)) {
            sapi_add_header(SAPI_PHP_VERSION_HEADER,
                            sizeof(SAPI_PHP_VERSION_HEADER) - 1, 1);
        }
        if (PG(output_handler) && PG(output_handler)[0]) {
            zval oh;
            ZVAL_STRING(&oh, PG(output_handler));
            php_output_start_user(&oh, 0, PHP_OUTPUT_HANDLER_STDFLAGS);
            zval_ptr_dtor(&oh);
        } else if (PG(output_buffering)) {
            php_output_start_user(NULL,
                                  PG(output_buffering) > 1 ? PG(output_buffering) : 0,
                                  PHP_OUTPUT_HANDLER_STDFLAGS);
        } else if (PG(implicit_flush)) {
            php_output_set_implicit_flush(1);
        }
        modules_rinit();
        superglobals_rearm();
    } zend_catch {
        ok = 0;
    } zend_end_try();
    SG(sapi_started) = 1;
    zend_set_timeout(EG(timeout_seconds), 0);
    timer_arm();
    return ok;
}

/* Adapted from php_request_shutdown(): complete the response, then undo
 * everything the request changed (see each step). */
static void worker_end(askr_request *r)
{
    timer_disarm();
    zend_unset_timeout();

    /* nested ob_start() levels are flushed into the response; an output
     * callback that throws must not leave the exception to the next
     * request */
    zend_try {
        php_output_end_all();
    } zend_end_try();
    if (EG(exception)) {
        zend_exception_error(EG(exception), E_ERROR);
        zend_clear_exception();
    }
    zend_try {
        if (!SG(headers_sent)) {
            php_header();
        }
    } zend_end_try();

    /* session: write and close it, forget id/status/handler */
    modules_rshutdown();
    zend_hash_str_del(&EG(symbol_table), "_SESSION", sizeof("_SESSION") - 1);

    req_finish(r);

    /* output handler stack and "headers sent" state; a fresh, active
     * output layer takes what the script prints between requests (the
     * idle context drops it: an inactive layer would write to fd 1) */
    zend_try {
        php_output_deactivate();
    } zend_end_try();
    php_output_activate();

    /* ini_set() changes, putenv() changes, error_get_last() */
    zend_try {
        ini_restore();
    } zend_end_try();
    zend_hash_clean(&BG(putenv_ht));
    clear_last_error();
    EG(exit_status) = 0;

    /* header list, status line, POST data, uploaded files (the temp
     * files are unlinked here, as at the end of a classic request) */
    zend_try {
        sapi_deactivate();
    } zend_end_try();
    release_request_streams();

    SG(server_context) = &req_idle;
    cur = &req_idle;
    wall_timed_out = 0;
}

/* Where the shutdown-function list ends before a request. */
static zend_long shutdown_mark(void)
{
    HashTable *ht = BG(user_shutdown_function_names);
    if (!ht || ht->nNextFreeElement < 0) {
        return 0;
    }
    return ht->nNextFreeElement;
}

/* register_shutdown_function() inside a request: run those functions at
 * the end of that request, as a classic request would, instead of piling
 * them up until the worker script ends.  Ones registered at boot stay.
 * A bailout (fatal) propagates to the caller's zend_try. */
static void run_request_shutdown_functions(zend_long mark, askr_request *r)
{
    HashTable *ht = BG(user_shutdown_function_names);
    for (zend_long i = mark; ht && i < ht->nNextFreeElement; i++) {
        php_shutdown_function_entry *e = zend_hash_index_find_ptr(ht, i);
        if (!e) {
            continue;
        }
        zval retval;
        ZVAL_UNDEF(&retval);
        e->fci.retval = &retval;
        zend_call_function(&e->fci, &e->fci_cache);
        zval_ptr_dtor(&retval);
        zend_hash_index_del(ht, i);
        if (EG(exception)) {
            if (zend_is_unwind_exit(EG(exception))) {
                zend_clear_exception();
                if (r->fatal) {
                    zend_bailout();
                }
            } else {
                zend_exception_error(EG(exception), E_ERROR);
                zend_clear_exception();
                r->failed = 1;
                r->fatal = 0;
            }
        }
    }
}

/* askr_handle_request(callable $handler): bool */
PHP_FUNCTION(askr_handle_request)
{
    zend_fcall_info fci;
    zend_fcall_info_cache fcc;

    ZEND_PARSE_PARAMETERS_START(1, 1)
        Z_PARAM_FUNC(fci, fcc)
    ZEND_PARSE_PARAMETERS_END();

    if (!in_worker) {
        zend_throw_exception(zend_ce_error,
                             "askr_handle_request() called outside worker mode", 0);
        RETURN_THROWS();
    }

    /* the boot job (output of the script before its loop) ends here */
    if (!worker_handled) {
        boot_ini_snapshot();
        worker_handled = 1;
        worker_end(&req_boot);
    }

    askr_job_in in;
    memset(&in, 0, sizeof in);
    in.body_fd = -1;
    void *prev = req_main.job ? req_main.job : req_boot.job;
    if (worker_stopped || !askr_py_next_job(prev, &in) || !in.job) {
        worker_stopped = 1;
        RETURN_FALSE;
    }
    if (req_load(&req_main, in.job, in.env, in.env_len, in.body, in.body_len,
                 in.body_fd) < 0) {
        zend_throw_exception(zend_ce_error, "askr: out of memory", 0);
        RETURN_THROWS();
    }

    handler_snapshot snap;
    handlers_save(&snap);
    zend_long mark = shutdown_mark();

    int bailed = 0;
    zval retval;
    ZVAL_UNDEF(&retval);
    fci.retval = &retval;
    fci.param_count = 0;
    fci.params = NULL;

    if (worker_begin(&req_main)) {
        zend_try {
            zend_call_function(&fci, &fcc);
        } zend_catch {
            bailed = 1;
        } zend_end_try();
    } else {
        req_main.fatal = 1;
        bailed = 1;
    }
    zval_ptr_dtor(&retval);

    if (!bailed && EG(exception)) {
        if (zend_is_unwind_exit(EG(exception))) {
            /* exit()/die(): the request ends normally with its output.
             * PHP 8.2 turns a memory_limit error raised in an internal
             * call into this same unwind; the fatal flag tells them apart */
            zend_clear_exception();
            if (req_main.fatal) {
                bailed = 1;
            }
        } else {
            /* uncaught exception: a 500 for this request only; the
             * handler's frames are unwound, the worker is intact */
            if (Z_TYPE(EG(user_exception_handler)) != IS_UNDEF) {
                zend_user_exception_handler();
            }
            if (EG(exception)) {
                zend_exception_error(EG(exception), E_ERROR);
                req_main.failed = 1;
            }
            zend_clear_exception();
            req_main.fatal = 0;
        }
    }

    if (!bailed) {
        zend_try {
            run_request_shutdown_functions(mark, &req_main);
        } zend_catch {
            bailed = 1;
        } zend_end_try();
    }

    if (bailed) {
        /* A fatal error (or a timeout) long-jumped out of the handler:
         * the engine stack is gone, so finish this response, then let the
         * bailout continue to php_execute_script(); run_worker reports
         * "fatal" and the caller restarts the script. */
        req_main.failed = 1;
        worker_fatal = 1;
        timer_disarm();
        zend_try {
            php_output_end_all();
        } zend_end_try();
        zend_try {
            if (!SG(headers_sent)) {
                php_header();
            }
        } zend_end_try();
        req_finish(&req_main);
        handlers_restore(&snap);
        cur = &req_idle;
        SG(server_context) = &req_idle;
        timer_disarm();
        zend_bailout();
    }

    worker_end(&req_main);
    handlers_restore(&snap);
    RETURN_TRUE;
}

/* getallheaders(): the request headers, named the way php-cgi names
 * them (HTTP_X_CUSTOM -> X-Custom), in the order they were received. */
PHP_FUNCTION(getallheaders)
{
    ZEND_PARSE_PARAMETERS_NONE();
    askr_request *r = cur;
    array_init(return_value);
    char name[256];
    for (int i = 0; i < r->nvars; i++) {
        const char *k = r->keys[i];
        const char *src;
        if (!strncmp(k, "HTTP_", 5)) {
            src = k + 5;
        } else if (!strcmp(k, "CONTENT_TYPE") || !strcmp(k, "CONTENT_LENGTH")) {
            src = k;
        } else {
            continue;
        }
        size_t n = 0;
        int upper = 1;
        for (; src[n] && n < sizeof(name) - 1; n++) {
            char c = src[n];
            if (c == '_') {
                name[n] = '-';
                upper = 1;
            } else {
                name[n] = upper ? toupper((unsigned char)c) : tolower((unsigned char)c);
                upper = 0;
            }
        }
        name[n] = 0;
        add_assoc_stringl_ex(return_value, name, n, (char *)r->vals[i], r->vlens[i]);
    }
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_getallheaders, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_askr_handle_request, 0, 1,
                                        _IS_BOOL, 0)
    ZEND_ARG_TYPE_INFO(0, handler, IS_CALLABLE, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fastcgi_finish_request, 0, 0,
                                        _IS_BOOL, 0)
ZEND_END_ARG_INFO()

static const zend_function_entry askr_functions[] = {
    PHP_FE(askr_handle_request, arginfo_askr_handle_request)
    PHP_FE(fastcgi_finish_request, arginfo_fastcgi_finish_request)
    PHP_FE(getallheaders, arginfo_getallheaders)
    PHP_FE(askr_should_stop, arginfo_fastcgi_finish_request)
    PHP_FALIAS(apache_request_headers, getallheaders, arginfo_getallheaders)
    PHP_FE_END
};

static PHP_MINIT_FUNCTION(askr)
{
    (void)type; (void)module_number;
    zend_observer_error_register(askr_on_error);
    return SUCCESS;
}

static zend_module_entry askr_module_entry = {
    STANDARD_MODULE_HEADER,
    "askr",
    askr_functions,
    PHP_MINIT(askr),
    NULL, NULL, NULL, NULL,
    "0.1.0",
    STANDARD_MODULE_PROPERTIES
};

/* ---- the SAPI module ---------------------------------------------------- */

static int askr_sapi_startup(sapi_module_struct *m)
{
    return php_module_startup(m, &askr_module_entry);
}

static sapi_module_struct askr_sapi = {
    .name = ASKR_STARTUP_NAME,
    .pretty_name = "Askr embedded PHP",
    .startup = askr_sapi_startup,
    .shutdown = php_module_shutdown_wrapper,
    .ub_write = askr_ub_write,
    .flush = askr_flush,
    .getenv = askr_getenv,
    .sapi_error = php_error,
    .send_headers = askr_send_headers,
    .read_post = askr_read_post,
    .read_cookies = askr_read_cookies,
    .register_server_variables = askr_register_variables,
    .log_message = askr_log_message,
    .php_ini_ignore = 1,
    .php_ini_ignore_cwd = 1,
};

void askr_get_build_info(askr_build_info *out)
{
    out->version = PHP_VERSION;
    out->version_id = PHP_VERSION_ID;
    out->zts = 0;
#ifdef ZEND_SIGNALS
    out->zend_signals = 1;
#else
    out->zend_signals = 0;
#endif
    out->debug = ZEND_DEBUG;
    out->extension_dir = PHP_EXTENSION_DIR;
    out->startup_name = ASKR_STARTUP_NAME;
}

/* Shared extensions loaded by the ini (opcache.so, mbstring.so, ...) are
 * not linked against libphp: they expect its symbols in the global
 * scope.  Python loaded us, and libphp with us, RTLD_LOCAL; re-opening
 * the same library with RTLD_NOLOAD|RTLD_GLOBAL promotes it. */
static void promote_libphp(void)
{
    Dl_info info;
    if (dladdr((void *)php_module_startup, &info) && info.dli_fname) {
        dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    }
}

/* php_ini: NULL or "" = read no php.ini and no conf.d (like php -n);
 * "system" = the php.ini and conf.d this libphp was built to read
 * (Debian: /etc/php/8.2/embed, where apt enables extensions; PHPRC and
 * PHP_INI_SCAN_DIR are honoured); anything else = that php.ini file.
 * The ini text is applied on top in every case. */
int askr_startup(const char *ini, size_t ini_len, const char *php_ini)
{
    if (started) {
        return 0;
    }
    promote_libphp();

    size_t dl = (php_ini && *php_ini) ? 0 : sizeof(askr_ini_defaults) - 1;
    ini_buf = malloc(dl + ini_len + 2);
    if (!ini_buf) {
        return -1;
    }
    memcpy(ini_buf, askr_ini_defaults, dl);
    memcpy(ini_buf + dl, ini, ini_len);
    ini_buf[dl + ini_len] = '\n';
    ini_buf[dl + ini_len + 1] = 0;

#ifdef ZEND_SIGNALS
    zend_signal_startup();
#endif
    sapi_startup(&askr_sapi);
    sapi_module.ini_entries = ini_buf;
    if (php_ini && *php_ini) {
        sapi_module.php_ini_ignore = 0;
        if (strcmp(php_ini, "system") != 0) {
            sapi_module.php_ini_path_override = (char *)php_ini;
        }
    }
    if (sapi_module.startup(&sapi_module) == FAILURE) {
        sapi_shutdown();
        return -1;
    }

    /* the rename explained at ASKR_STARTUP_NAME */
    sapi_module.name = ASKR_SAPI_NAME;
    zval *c = zend_get_constant_str("PHP_SAPI", sizeof("PHP_SAPI") - 1);
    if (c && Z_TYPE_P(c) == IS_STRING) {
        Z_STR_P(c) = zend_string_init(ASKR_SAPI_NAME, sizeof(ASKR_SAPI_NAME) - 1, 1);
        GC_MAKE_PERSISTENT_LOCAL(Z_STR_P(c));
    }

    /* php://stdout and php://stderr go to the log */
    HashTable *wrappers = php_stream_get_url_stream_wrappers_hash_global();
    orig_php_wrapper = zend_hash_str_find_ptr(wrappers, "php", 3);
    if (orig_php_wrapper) {
        askr_php_wops = *orig_php_wrapper->wops;
        askr_php_wops.stream_opener = askr_php_opener;
        askr_php_wrapper = *orig_php_wrapper;
        askr_php_wrapper.wops = &askr_php_wops;
        zend_hash_str_update_ptr(wrappers, "php", 3, &askr_php_wrapper);
    }

#ifdef ZEND_SIGNALS
    /* PHP would re-install its deferring handlers for SIGTERM, SIGINT,
     * SIGHUP, SIGQUIT, SIGUSR1/2 around every request: 14+ sigaction()
     * calls per request.  In Askr those signals belong to Python, whose
     * C-level handlers only set a flag and are safe to run at any time,
     * so the per-request reset is switched off.  PHP's own SIGPROF
     * timeout still goes through zend_signal(). */
    SIGG(reset) = 0;
#endif

    req_idle.discard = 1;
    req_boot.discard = 1;
    req_main.discard = 1;
    req_boot.body_fd = req_main.body_fd = req_idle.body_fd = -1;
    SG(server_context) = &req_idle;
    started = 1;
    return 0;
}

/* Classic mode: one request, start to finish. */
int askr_run_script(void *job, const char *env, size_t env_len,
                    const char *body, size_t body_len, int body_fd)
{
    askr_request *r = &req_main;
    if (!started || req_load(r, job, env, env_len, body, body_len, body_fd) < 0) {
        return -1;
    }
    cur = r;
    fill_request_info(r);
    timer_arm();

    if (php_request_startup() == FAILURE) {
        timer_disarm();
        r->status = 500;
        r->headers_ready = 1;
        req_finish(r);
        cur = &req_idle;
        SG(server_context) = &req_idle;
        return -2;
    }
    register_std_constants();
    /* neither is reset by PHP between requests; status_after_script()
     * reads both */
    clear_last_error();
    EG(exit_status) = 0;

    zend_file_handle fh;
    zend_stream_init_filename(&fh, r->script ? r->script : "");
    if (!r->script || access(r->script, R_OK) != 0
        || zend_stream_open(&fh) == FAILURE) {
        /* what php-cgi and php-fpm answer for a missing script */
        SG(sapi_headers).http_response_code = 404;
        PHPWRITE("No input file specified.\n",
                 sizeof("No input file specified.\n") - 1);
    } else {
        php_execute_script(&fh);
        status_after_script(r);
    }
    zend_destroy_file_handle(&fh);

    php_request_shutdown(NULL);
    timer_disarm();
    if (r->fatal) {
        r->failed = 1;
    }
    req_finish(r);
    wall_timed_out = 0;
    cur = &req_idle;
    SG(server_context) = &req_idle;
    r->job = NULL;
    forget_request_info();
    return 0;
}

/* Worker mode: run the long-lived script; 0 done, 1 fatal, 2 exit. */
int askr_run_worker(askr_job_in *boot)
{
    if (!started || req_load(&req_boot, boot->job, boot->env, boot->env_len,
                             boot->body, boot->body_len, boot->body_fd) < 0) {
        return -1;
    }
    in_worker = 1;
    worker_handled = 0;
    worker_stopped = 0;
    worker_fatal = 0;
    req_main.job = NULL;
    cur = &req_boot;
    fill_request_info(&req_boot);

    if (php_request_startup() == FAILURE) {
        req_boot.status = 500;
        req_boot.headers_ready = 1;
        req_finish(&req_boot);
        in_worker = 0;
        cur = &req_idle;
        return -2;
    }
    register_std_constants();
    clear_last_error();
    EG(exit_status) = 0;

    zend_file_handle fh;
    zend_stream_init_filename(&fh, req_boot.script ? req_boot.script : "");
    if (!req_boot.script || zend_stream_open(&fh) == FAILURE) {
        askr_py_log(40, "PHP worker script not found", 27);
        worker_fatal = 1;
    } else {
        php_execute_script(&fh);
    }
    zend_destroy_file_handle(&fh);
    if (cur == &req_boot) {
        /* the script died before (or without) serving: a boot failure */
        status_after_script(&req_boot);
        if (req_boot.fatal) {
            req_boot.failed = 1;
            worker_fatal = 1;
        }
    }

    /* output after the loop belongs to the boot job if it is still open */
    if (cur != &req_boot) {
        cur = &req_idle;
        SG(server_context) = &req_idle;
    }
    boot_ini_free();
    php_request_shutdown(NULL);
    req_finish(&req_boot);
    timer_disarm();
    in_worker = 0;
    cur = &req_idle;
    SG(server_context) = &req_idle;
    req_main.job = NULL;
    req_boot.job = NULL;
    forget_request_info();

    if (worker_fatal) {
        return 1;
    }
    return worker_stopped ? 0 : 2;
}

void askr_shutdown(void)
{
    if (!started) {
        return;
    }
    php_module_shutdown();
    sapi_shutdown();
    free(ini_buf);
    ini_buf = NULL;
    started = 0;
}
