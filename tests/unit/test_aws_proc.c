/* Credential commands on the lws loop (aws_proc in aws_creds_process.c), the
 * deferred plans that use them (credential_process, the CLI export), and the
 * aws_ctx negative cache. The loop must keep turning while a command runs:
 * a 20 ms timer ticks throughout, and the loop thread stays nearly idle. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RUSAGE_THREAD */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "aws_api.h"
#include "aws_creds.h"
#include "aws_http.h"

static struct lws_context *lws;
static aws_http *http;
static char tmpdir[64];

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long thread_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000LL +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static void write_file(const char *rel, const char *text, int mode)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static int setup(void **st)
{
    (void)st;
    static const char *clear[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                  "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_PROFILE",
                                  "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                                  "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                  "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONFIG_FILE",
                                  "AWS_SHARED_CREDENTIALS_FILE"};
    for (size_t i = 0; i < sizeof clear / sizeof clear[0]; i++)
        unsetenv(clear[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_aws_proc_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    setenv("HOME", tmpdir, 1);
    char p[128];
    snprintf(p, sizeof p, "%s/.aws", tmpdir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/bin", tmpdir);
    mkdir(p, 0700);
    char path[256];
    snprintf(path, sizeof path, "%s/bin:/usr/bin:/bin", tmpdir); /* our fake `aws` only */
    setenv("PATH", path, 1);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    lws = lws_create_context(&info);
    assert_non_null(lws);
    http = aws_http_new(lws, NULL);
    assert_non_null(http);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    aws_http_free(http);
    lws_context_destroy(lws);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- a ticking timer proves the loop turns while a command runs ---- */

static int ticks;
static ssm_ptimer *ticker;

static void on_tick(void *u)
{
    (void)u;
    ticks++;
    ssm_ptimer_arm(ticker, 20);
}

static struct {
    int calls;
    char akid[64], source[64], err[256];
} got;

static void on_proc(void *u, const aws_credentials *c, const char *err)
{
    (void)u;
    got.calls++;
    snprintf(got.akid, sizeof got.akid, "%s", c ? c->access_key_id : "");
    snprintf(got.source, sizeof got.source, "%s", c && c->source ? c->source : "");
    snprintf(got.err, sizeof got.err, "%s", err ? err : "");
}

static void run_until(int calls, int max_ms)
{
    long long end = now_ms() + max_ms;
    while (got.calls < calls && now_ms() < end)
        lws_service(lws, 0);
}

static void wake(void *u)
{
    (void)u;
}

/* Turns the loop for ms; a timer ends the last poll (lws alone may sleep
 * up to 30 s when nothing is due). */
static void run_for(int ms)
{
    ssm_ptimer *t = aws_http_timer_new(http, wake, NULL);
    assert_non_null(t);
    long long end = now_ms() + ms;
    for (long long left = ms; left > 0; left = end - now_ms()) {
        ssm_ptimer_arm(t, (uint64_t)left);
        lws_service(lws, 0);
    }
    ssm_ptimer_free(t);
}

/* `exec`: the shell becomes the script, so killing the shell (all the
 * runner does, as the Go SDK) ends the script and nothing lingers on the
 * test's stderr. */
static void run_script(const char *script, unsigned timeout_s)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "exec %s/%s", tmpdir, script);
    memset(&got, 0, sizeof got);
    aws_proc *p = aws_proc_start(http, cmd, timeout_s, "credential_process", on_proc, NULL);
    assert_non_null(p);
    assert_int_equal(got.calls, 0); /* never from inside the start */
    run_until(1, (int)timeout_s * 1000 + 3000);
    assert_int_equal(got.calls, 1);
}

static void test_results(void **st)
{
    (void)st;
    write_file("good.sh", "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"AKIDPROC\","
                          "\"SecretAccessKey\":\"sp\",\"SessionToken\":\"tp\"}'\n", 0700);
    write_file("fail.sh", "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}'\n"
                          "exit 3\n", 0700);
    write_file("junk.sh", "#!/bin/sh\necho 'not json'\n", 0700);
    write_file("huge.sh", "#!/bin/sh\nhead -c 200000 /dev/zero\n", 0700);
    write_file("v2.sh", "#!/bin/sh\necho '{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}'\n", 0700);
    run_script("good.sh", 5);
    assert_string_equal(got.akid, "AKIDPROC");
    assert_string_equal(got.source, "credential_process");
    assert_string_equal(got.err, "");
    struct { const char *script, *want; } bad[] = {
        {"fail.sh", "exit 3"}, {"junk.sh", "JSON"}, {"huge.sh", "larger"},
        {"v2.sh", "Version"}, {"missing.sh", "exit 127"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_script(bad[i].script, 5);
        if (!strstr(got.err, bad[i].want))
            print_error("%s: %s\n", bad[i].script, got.err);
        assert_non_null(strstr(got.err, bad[i].want));
        assert_string_equal(got.akid, "");
    }
    /* An empty command fails from the loop too. */
    memset(&got, 0, sizeof got);
    assert_non_null(aws_proc_start(http, "", 5, NULL, on_proc, NULL));
    assert_int_equal(got.calls, 0);
    run_until(1, 2000);
    assert_non_null(strstr(got.err, "empty"));
}

/* A command that never answers: stdout held open by the shell's own child
 * (the pipe never reaches EOF), or closed at once while the command lives on
 * (reaping polls). Both end at the deadline; the loop turns meanwhile. */
static void test_deadline_loop_keeps_turning(void **st)
{
    (void)st;
    write_file("hold.sh", "#!/bin/sh\nsleep 30 2>/dev/null\n", 0700);
    write_file("quiet.sh", "#!/bin/sh\nexec sleep 30 >/dev/null 2>&1\n", 0700);
    const char *scripts[] = {"hold.sh", "quiet.sh"};
    for (size_t i = 0; i < 2; i++) {
        ticker = aws_http_timer_new(http, on_tick, NULL);
        assert_non_null(ticker);
        ticks = 0;
        ssm_ptimer_arm(ticker, 20);
        long long t0 = now_ms(), cpu0 = thread_cpu_ms();
        run_script(scripts[i], 1);
        long long took = now_ms() - t0, cpu = thread_cpu_ms() - cpu0;
        assert_non_null(strstr(got.err, "timed out after 1s"));
        assert_true(took >= 950 && took < 2500);
        /* ~50 ticks in a second; a loop stuck in the command would give 0. */
        if (ticks < 30 || cpu > 200)
            print_error("%s: %d ticks, %lld ms CPU in %lld ms\n", scripts[i], ticks, cpu, took);
        assert_true(ticks >= 30);
        assert_true(cpu <= 200);
        ssm_ptimer_free(ticker);
        ticker = NULL;
    }
}

static void test_cancel_kills_the_child(void **st)
{
    (void)st;
    char script[512];
    snprintf(script, sizeof script, "#!/bin/sh\necho $$ > %s/pid\nexec sleep 30 >/dev/null 2>&1\n",
             tmpdir);
    write_file("pid.sh", script, 0700);
    char cmd[256], pidfile[256];
    snprintf(cmd, sizeof cmd, "exec %s/pid.sh", tmpdir);
    snprintf(pidfile, sizeof pidfile, "%s/pid", tmpdir);
    memset(&got, 0, sizeof got);
    aws_proc *p = aws_proc_start(http, cmd, 30, NULL, on_proc, NULL);
    assert_non_null(p);
    long pid = 0;
    for (long long end = now_ms() + 5000; !pid && now_ms() < end;) {
        run_for(20);
        FILE *f = fopen(pidfile, "r");
        if (f) {
            if (fscanf(f, "%ld", &pid) != 1)
                pid = 0;
            fclose(f);
        }
    }
    assert_true(pid > 0);
    assert_int_equal(kill((pid_t)pid, 0), 0); /* alive */
    aws_proc_free(p);
    errno = 0;
    assert_int_equal(kill((pid_t)pid, 0), -1); /* killed and reaped */
    assert_int_equal(errno, ESRCH);
    run_for(100);
    assert_int_equal(got.calls, 0); /* cancelled: no callback */
}

/* ---- deferred plans through aws_creds_fetch ---- */

static void on_fetch(void *u, const aws_credentials *c, const char *err)
{
    on_proc(u, c, err);
}

static void fetch_plan(aws_creds_plan *p)
{
    memset(&got, 0, sizeof got);
    aws_creds_fetch *f = aws_creds_fetch_start(http, p, "us-east-1", on_fetch, NULL);
    assert_non_null(f); /* a command is never run inside the start */
    assert_int_equal(got.calls, 0);
    run_until(1, 8000);
    assert_int_equal(got.calls, 1);
}

static void test_deferred_plans(void **st)
{
    (void)st;
    write_file("good.sh", "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"AKIDPROC\","
                          "\"SecretAccessKey\":\"sp\"}'\n", 0700);
    write_file("bad.sh", "#!/bin/sh\nexit 4\n", 0700);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "[profile proc]\ncredential_process = %s/good.sh\n"
             "[profile badproc]\ncredential_process = %s/bad.sh\n"
             "[profile chained]\nrole_arn = arn:aws:iam::1:role/R\nsource_profile = proc\n",
             tmpdir, tmpdir);
    write_file(".aws/config", cfg, 0600);
    aws_creds_opts o = {.profile = "proc", .region = "us-east-1", .process_timeout_s = 5,
                        .defer_process = true};
    aws_creds_plan p;
    assert_int_equal(aws_creds_plan_resolve(&o, time(NULL), &p), AWS_STEP_PROCESS);
    assert_false(p.process_is_cli);
    fetch_plan(&p);
    assert_string_equal(got.akid, "AKIDPROC");
    assert_string_equal(got.source, "credential_process");
    aws_creds_plan_free(&p);

    o.profile = "badproc";
    assert_int_equal(aws_creds_plan_resolve(&o, time(NULL), &p), AWS_STEP_PROCESS);
    fetch_plan(&p);
    assert_string_equal(got.err, "credential_process: command failed (exit 4)");
    aws_creds_plan_free(&p);

    /* A role's source profile is deferred the same way. */
    o.profile = "chained";
    assert_int_equal(aws_creds_plan_resolve(&o, time(NULL), &p), AWS_STEP_ASSUME_ROLE);
    assert_int_equal(p.source->step, AWS_STEP_PROCESS);
    aws_creds_plan_free(&p);

    /* The CLI export as last resort: a plan, run by the fetch. */
    write_file("bin/aws", "#!/bin/sh\n"
                          "[ \"$*\" = \"configure export-credentials --profile ghost --format process\" ] || exit 9\n"
                          "echo '{\"Version\":1,\"AccessKeyId\":\"AKIDCLI\",\"SecretAccessKey\":\"sc\"}'\n", 0700);
    o.profile = "ghost";
    o.allow_cli_export = true;
    assert_int_equal(aws_creds_plan_resolve(&o, time(NULL), &p), AWS_STEP_PROCESS);
    assert_true(p.process_is_cli);
    fetch_plan(&p);
    assert_string_equal(got.akid, "AKIDCLI");
    assert_string_equal(got.source, "aws configure export-credentials");
    aws_creds_plan_free(&p);
    /* When the CLI has nothing either, the chain's own reason is reported. */
    write_file("bin/aws", "#!/bin/sh\nexit 255\n", 0700);
    assert_int_equal(aws_creds_plan_resolve(&o, time(NULL), &p), AWS_STEP_PROCESS);
    fetch_plan(&p);
    assert_non_null(strstr(got.err, "no credentials found for profile 'ghost'"));
    aws_creds_plan_free(&p);
    /* A profile name the shell quoting cannot carry: no CLI plan at all. */
    o.profile = "x'; touch pwned; '";
    assert_int_equal(aws_creds_plan_resolve(&o, time(NULL), &p), AWS_STEP_NONE);
    aws_creds_plan_free(&p);
}

/* ---- aws_ctx: a failed chain is not re-run within the retry window ---- */

static int ws_calls;
static bool ws_signed;

static void on_ws(void *u, const aws_ws_auth *a)
{
    (void)u;
    ws_calls++;
    ws_signed = a != NULL;
}

static int cli_runs(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/runs", tmpdir);
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void prepare_once(aws_ctx *ctx, int want_calls)
{
    assert_int_equal(aws_ws_prepare(ctx, "wss://h.example/v1/data-channel/s-1?role=x", on_ws, NULL), 0);
    for (long long end = now_ms() + 5000; ws_calls < want_calls && now_ms() < end;)
        lws_service(lws, 0);
    assert_int_equal(ws_calls, want_calls);
}

static void test_negative_cache(void **st)
{
    (void)st;
    char script[512];
    snprintf(script, sizeof script, "#!/bin/sh\necho run >> %s/runs\nsleep 0.3\nexit 1\n", tmpdir);
    write_file("bin/aws", script, 0700);
    aws_ctx_config cfg = {.region = "us-east-1", .creds_retry_ms = 1500};
    aws_ctx *ctx = aws_ctx_new(lws, &cfg);
    assert_non_null(ctx);
    ws_calls = 0;
    prepare_once(ctx, 1); /* runs the chain: the CLI, asynchronously */
    assert_false(ws_signed);
    assert_int_equal(cli_runs(), 1);
    assert_non_null(aws_ctx_credentials_error(ctx));
    long long t0 = now_ms();
    for (int i = 0; i < 5; i++) /* connect retries: unsigned at once, nothing re-run */
        prepare_once(ctx, 2 + i);
    assert_true(now_ms() - t0 < 200);
    assert_int_equal(cli_runs(), 1);
    aws_creds_invalidate(ctx); /* a resume: the failure is still recent */
    prepare_once(ctx, 7);
    assert_int_equal(cli_runs(), 1);
    run_for(1600); /* past the window: one more try */
    prepare_once(ctx, 8);
    assert_int_equal(cli_runs(), 2);
    /* Credentials appear later: found on the first try after the window. */
    setenv("AWS_ACCESS_KEY_ID", "AKIDLATE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    prepare_once(ctx, 9);
    assert_false(ws_signed); /* still inside the new window */
    run_for(1600);
    prepare_once(ctx, 10);
    assert_true(ws_signed);
    assert_int_equal(cli_runs(), 2);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    aws_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_loop_keeps_turning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_kills_the_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
