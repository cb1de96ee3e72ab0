/* Diagnostics. Silent by default (stdout carries the session, §15.1); set
 * SSM_PLUGIN_LOG=<file> (and optionally SSM_PLUGIN_LOG_LEVEL=error|warn|info|
 * debug, default info) to append to a file. Never log tokens or key material. */
#ifndef SSM_LOG_H
#define SSM_LOG_H

enum ssm_log_level { SSM_LOG_ERROR = 0, SSM_LOG_WARN = 1, SSM_LOG_INFO = 2, SSM_LOG_DEBUG = 3 };

/* Reads the environment once; also routes libwebsockets' own log there. */
void ssm_log_init(void);
void ssm_log_close(void);
void ssm_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ssm_log_enabled(int level);

#define LOGE(...) ssm_log(SSM_LOG_ERROR, __VA_ARGS__)
#define LOGW(...) ssm_log(SSM_LOG_WARN, __VA_ARGS__)
#define LOGI(...) ssm_log(SSM_LOG_INFO, __VA_ARGS__)
#define LOGD(...) ssm_log(SSM_LOG_DEBUG, __VA_ARGS__)

#endif
