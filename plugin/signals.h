/* Signals delivered on the event loop through a self-pipe: the handler only
 * write()s the signal number; the pipe's read end is adopted into lws. */
#ifndef SSM_SIGNALS_H
#define SSM_SIGNALS_H

struct lws_vhost;

typedef void (*ssm_signal_cb)(void *user, int signo);

/* First thing in main(): creates the pipe and catches SIGTERM/SIGHUP, so a
 * signal that arrives before the loop runs waits in the pipe (and is acted
 * on once ssm_signals_init adopted it) instead of killing the process. */
int ssm_signals_early(void);
/* Creates the pipe (unless ssm_signals_early did) and adopts it into vhost (whose protocol list must include
 * ssm_signals_protocol()). Returns 0 or -1. */
int ssm_signals_init(struct lws_vhost *vh, ssm_signal_cb cb, void *user);
/* Starts catching signo (SA_RESTART). Until called, the inherited
 * disposition stays (e.g. SIGINT ignored when run by the AWS CLI). */
int ssm_signals_watch(int signo);
/* Restores the inherited disposition of everything watched and closes the pipe. */
void ssm_signals_shutdown(void);

struct lws_protocols;
/* The lws protocol that reads the pipe (name "ssm-signals"). */
const struct lws_protocols *ssm_signals_protocol(void);

#endif
