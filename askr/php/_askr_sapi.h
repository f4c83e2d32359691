/*
 * The C side of Askr's PHP bridge: what Python (through cffi) may call,
 * and the three Python callbacks the shim calls back.
 *
 * Everything here runs in one thread of one worker process, after fork().
 */
#ifndef ASKR_SAPI_H
#define ASKR_SAPI_H

#include <stddef.h>

/* One request as handed over by Python: CGI variables packed as
 * "KEY\0VALUE\0KEY\0VALUE\0", the body held in memory, and optionally a
 * file descriptor with the spooled rest of the body. */
typedef struct {
    void *job;
    const char *env;
    size_t env_len;
    const char *body;
    size_t body_len;
    int body_fd;
} askr_job_in;

typedef struct {
    const char *version;
    long version_id;
    int zts;
    int zend_signals;
    int debug;
    const char *extension_dir;
    const char *startup_name;
} askr_build_info;

void askr_get_build_info(askr_build_info *out);
int askr_startup(const char *ini, size_t ini_len, const char *php_ini);
int askr_run_script(void *job, const char *env, size_t env_len,
                    const char *body, size_t body_len, int body_fd);
int askr_run_worker(askr_job_in *boot);
void askr_set_request_timeout(double seconds);
void askr_shutdown(void);
void askr_install_stop_signal(void);
int askr_stop_requested(void);

/* Implemented in Python (cffi extern "Python+C"). */
int askr_py_send(void *job, int status, const char *headers, size_t headers_len,
                 const char *data, size_t data_len, int last);
void askr_py_log(int level, const char *message, size_t message_len);
int askr_py_next_job(void *job, askr_job_in *out);

#endif
