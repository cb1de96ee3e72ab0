/* Seam between the session and the AWS API module (plugin/aws_api.h):
 * upgrade signing, ResumeSession, TerminateSession. Until that module is
 * linked in, these are no-ops that log: unsigned upgrades, reconnects reuse
 * the current token, and TerminateSession is skipped. */
#include "log.h"
#include "session_priv.h"

int sess_aws_init(ssm_session *s)
{
    s->aws = NULL;
    return 0;
}

void sess_aws_free(ssm_session *s)
{
    (void)s;
}

void sess_aws_upgrade_headers(ssm_session *s, const char *url,
                              void (*done)(ssm_session *s, const char *headers))
{
    (void)url;
    done(s, NULL);
}

void sess_aws_resume(ssm_session *s, void (*done)(ssm_session *s, int status, const char *token,
                                                  const char *url, const char *why))
{
    LOGI("ResumeSession not available in this build; reconnecting with the current token");
    done(s, 0, s->token, NULL, NULL);
}

void sess_aws_terminate(ssm_session *s, void (*done)(ssm_session *s))
{
    LOGI("TerminateSession not available in this build; skipped");
    if (done)
        done(s);
}
