/* Credential providers and chain order, against temp files, env and scripts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "aws_creds.h"

#define NOW ((time_t)1704164645) /* 2024-01-02T03:04:05Z */

static char tmpdir[64];

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

static const char *envs[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_KMS", "AWS_USE_FIPS_ENDPOINT", "AWS_CREDENTIAL_EXPIRATION", "AWS_REGION",
};

static int setup(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++)
        unsetenv(envs[i]);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_creds_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    setenv("HOME", tmpdir, 1);
    char p[128];
    snprintf(p, sizeof p, "%s/.aws", tmpdir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/.aws/sso", tmpdir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/.aws/sso/cache", tmpdir);
    mkdir(p, 0700);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static aws_creds_opts opts(const char *profile)
{
    return (aws_creds_opts){.profile = profile, .region = "us-east-1", .process_timeout_s = 5};
}

static void test_env_provider(void **st)
{
    (void)st;
    aws_credentials c = {0};
    assert_int_equal(aws_creds_from_env(&c), -1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    assert_int_equal(aws_creds_from_env(&c), -1); /* secret missing */
    setenv("AWS_SECRET_KEY", "secretalt", 1);     /* the SDKs' alternate name */
    setenv("AWS_SESSION_TOKEN", "tok", 1);
    setenv("AWS_CREDENTIAL_EXPIRATION", "2024-01-02T04:04:05Z", 1);
    assert_int_equal(aws_creds_from_env(&c), 0);
    assert_string_equal(c.access_key_id, "AKIDENV");
    assert_string_equal(c.secret_access_key, "secretalt");
    assert_string_equal(c.session_token, "tok");
    assert_int_equal(c.expiration, NOW + 3600);
    assert_true(aws_credentials_usable(&c, NOW));
    assert_false(aws_credentials_usable(&c, NOW + 3600 - 100)); /* inside refresh window */
    aws_credentials_clear(&c);
    assert_null(c.access_key_id);
    assert_false(aws_credentials_usable(&c, NOW));
}

static void test_static_profiles_and_order(void **st)
{
    (void)st;
    write_file(".aws/credentials", "[default]\naws_access_key_id=AKIDDEF\naws_secret_access_key=s1\n"
                                   "[dev]\naws_access_key_id=AKIDDEV\naws_secret_access_key=s2\n"
                                   "aws_session_token=t2\n", 0600);
    write_file(".aws/config", "[profile cfgonly]\naws_access_key_id=AKIDCFG\naws_secret_access_key=s3\n"
                              "[profile dev]\naws_access_key_id=IGNORED\naws_secret_access_key=x\n", 0600);
    aws_creds_plan p;
    aws_creds_opts o = opts(NULL);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_READY);
    assert_string_equal(p.creds.access_key_id, "AKIDDEF");
    assert_string_equal(p.creds.source, "shared-credentials-file");
    aws_creds_plan_free(&p);

    /* Env keys beat AWS_PROFILE ... */
    setenv("AWS_PROFILE", "dev", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "senv", 1);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_READY);
    assert_string_equal(p.creds.access_key_id, "AKIDENV");
    aws_creds_plan_free(&p);
    /* ... but an explicit profile (argv[4]) beats env keys. The credentials
     * file wins over the config file for the same profile. */
    o = opts("dev");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_READY);
    assert_string_equal(p.creds.access_key_id, "AKIDDEV");
    assert_string_equal(p.creds.session_token, "t2");
    aws_creds_plan_free(&p);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    /* AWS_PROFILE without env keys. */
    o = opts("");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_READY);
    assert_string_equal(p.creds.access_key_id, "AKIDDEV");
    aws_creds_plan_free(&p);
    /* Config-file-only profile; file locations from the environment. */
    char alt[128];
    snprintf(alt, sizeof alt, "%s/altconfig", tmpdir);
    write_file("altconfig", "[profile other]\naws_access_key_id=AKIDALT\naws_secret_access_key=s4\n", 0600);
    o = opts("cfgonly");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_READY);
    assert_string_equal(p.creds.access_key_id, "AKIDCFG");
    assert_string_equal(p.creds.source, "shared-config-file");
    aws_creds_plan_free(&p);
    setenv("AWS_CONFIG_FILE", alt, 1);
    o = opts("other");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_READY);
    assert_string_equal(p.creds.access_key_id, "AKIDALT");
    aws_creds_plan_free(&p);
    /* Unknown explicit profile: NONE with a reason that names it. */
    o = opts("nosuch");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    assert_non_null(strstr(p.error, "nosuch"));
    aws_creds_plan_free(&p);
}

static void test_credential_process(void **st)
{
    (void)st;
    write_file("good.sh", "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"AKIDPROC\","
                          "\"SecretAccessKey\":\"sp\",\"SessionToken\":\"tp\","
                          "\"Expiration\":\"2024-01-02T05:04:05.123Z\"}'\n", 0700);
    write_file("expired.sh", "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"A\","
                             "\"SecretAccessKey\":\"s\",\"Expiration\":\"2024-01-01T00:00:00Z\"}'\n", 0700);
    write_file("v2.sh", "#!/bin/sh\necho '{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}'\n", 0700);
    write_file("fail.sh", "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}'\nexit 3\n", 0700);
    /* The orphaned sleep must not hold the test's stdout/stderr open. */
    write_file("slow.sh", "#!/bin/sh\nexec sleep 30 >/dev/null 2>&1\n", 0700);
    write_file("huge.sh", "#!/bin/sh\nhead -c 200000 /dev/zero\n", 0700);
    write_file("junk.sh", "#!/bin/sh\necho 'not json'\n", 0700);
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "[profile proc]\ncredential_process = %s/good.sh\n"
             "[profile proc-expired]\ncredential_process = %s/expired.sh\n", tmpdir, tmpdir);
    write_file(".aws/config", cfg, 0600);
    aws_creds_plan p;
    aws_creds_opts o = opts("proc");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_READY);
    assert_string_equal(p.creds.access_key_id, "AKIDPROC");
    assert_string_equal(p.creds.session_token, "tp");
    assert_int_equal(p.creds.expiration, NOW + 7200); /* fraction ignored */
    assert_string_equal(p.creds.source, "credential_process");
    aws_creds_plan_free(&p);
    o = opts("proc-expired");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    assert_non_null(strstr(p.error, "expired"));
    aws_creds_plan_free(&p);

    struct { const char *script, *want; unsigned timeout; } bad[] = {
        {"v2.sh", "Version", 5}, {"fail.sh", "exit 3", 5}, {"slow.sh", "timed out", 1},
        {"huge.sh", "larger", 5}, {"junk.sh", "JSON", 5}, {"missing.sh", "exit 127", 5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[256], err[128] = "";
        snprintf(cmd, sizeof cmd, "%s/%s", tmpdir, bad[i].script);
        aws_credentials c = {0};
        assert_int_equal(aws_creds_process_run(cmd, bad[i].timeout, NOW, &c, err, sizeof err), -1);
        if (!strstr(err, bad[i].want))
            print_error("%s: %s\n", bad[i].script, err);
        assert_non_null(strstr(err, bad[i].want));
        assert_null(c.access_key_id);
    }
}

static void test_cli_export_last_resort(void **st)
{
    (void)st;
    char bin[128], path[512];
    snprintf(bin, sizeof bin, "%s/bin", tmpdir);
    mkdir(bin, 0700);
    /* A fake `aws` that only answers the exact export command. */
    write_file("bin/aws", "#!/bin/sh\n"
                          "[ \"$*\" = \"configure export-credentials --profile ghost --format process\" ] || exit 9\n"
                          "echo '{\"Version\":1,\"AccessKeyId\":\"AKIDCLI\",\"SecretAccessKey\":\"sc\"}'\n", 0700);
    const char *old = getenv("PATH");
    char *saved = strdup(old ? old : "/usr/bin:/bin");
    snprintf(path, sizeof path, "%s:%s", bin, saved);
    setenv("PATH", path, 1);
    aws_creds_plan p;
    aws_creds_opts o = opts("ghost");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE); /* not allowed */
    aws_creds_plan_free(&p);
    o.allow_cli_export = true;
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_READY);
    assert_string_equal(p.creds.access_key_id, "AKIDCLI");
    assert_string_equal(p.creds.source, "aws configure export-credentials");
    aws_creds_plan_free(&p);
    o.profile = "x'; touch pwned; '";
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    aws_creds_plan_free(&p);
    setenv("PATH", saved, 1);
    free(saved);
}

static void test_assume_role_plan_and_sts(void **st)
{
    (void)st;
    write_file(".aws/credentials", "[base]\naws_access_key_id=AKIDBASE\naws_secret_access_key=sb\n", 0600);
    write_file(".aws/config", "[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/Admin\n"
                              "source_profile = base\nrole_session_name = me@corp\nexternal_id = x y\n"
                              "duration_seconds = 900\nregion = eu-west-2\n"
                              "[profile chained]\nrole_arn = arn:aws:iam::1:role/B\nsource_profile = admin\n"
                              "[profile loop]\nrole_arn = arn:aws:iam::1:role/L\nsource_profile = loop2\n"
                              "[profile loop2]\nrole_arn = arn:aws:iam::1:role/L\nsource_profile = loop\n"
                              "[profile dangling]\nrole_arn = arn:aws:iam::1:role/D\n", 0600);
    aws_creds_plan p;
    aws_creds_opts o = opts("admin");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_ASSUME_ROLE);
    assert_non_null(p.source);
    assert_int_equal(p.source->step, AWS_STEP_READY);
    assert_string_equal(p.source->creds.access_key_id, "AKIDBASE");
    assert_string_equal(p.region, "eu-west-2");
    char *body = aws_sts_assume_role_body(&p);
    assert_string_equal(body, "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
                              "123456789012%3Arole%2FAdmin&RoleSessionName=me%40corp"
                              "&DurationSeconds=900&ExternalId=x%20y");
    free(body);
    aws_creds_plan_free(&p);

    o = opts("chained");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_ASSUME_ROLE);
    assert_int_equal(p.source->step, AWS_STEP_ASSUME_ROLE);
    assert_int_equal(p.source->source->step, AWS_STEP_READY);
    assert_string_equal(p.region, "us-east-1"); /* falls back to argv[2] */
    aws_creds_plan_free(&p);

    o = opts("loop");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    assert_non_null(strstr(p.error, "too long"));
    aws_creds_plan_free(&p);
    o = opts("dangling");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    assert_non_null(strstr(p.error, "source_profile"));
    aws_creds_plan_free(&p);

    const char *ok =
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
        "<AssumedRoleUser><Arn>a</Arn></AssumedRoleUser><Credentials>"
        "<AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>sr&amp;x</SecretAccessKey>"
        "<SessionToken>FwoG+tok/en==</SessionToken><Expiration>2024-01-02T04:04:05Z</Expiration>"
        "</Credentials></AssumeRoleResult></AssumeRoleResponse>";
    aws_credentials c = {0};
    char err[256];
    assert_int_equal(aws_sts_parse_response(ok, strlen(ok), &c, err, sizeof err), 0);
    assert_string_equal(c.access_key_id, "ASIAROLE");
    assert_string_equal(c.secret_access_key, "sr&x");
    assert_string_equal(c.session_token, "FwoG+tok/en==");
    assert_int_equal(c.expiration, NOW + 3600);
    aws_credentials_clear(&c);
    const char *fail = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                       "<Message>not allowed</Message></Error></ErrorResponse>";
    assert_int_equal(aws_sts_parse_response(fail, strlen(fail), &c, err, sizeof err), -1);
    assert_string_equal(err, "AccessDenied: not allowed");
    const char *cut = "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s";
    assert_int_equal(aws_sts_parse_response(cut, strlen(cut), &c, err, sizeof err), -1);
    assert_int_equal(aws_sts_parse_response("<a>\0<b>", 7, &c, err, sizeof err), -1);
}

static void test_web_identity(void **st)
{
    (void)st;
    write_file("token.jwt", "eyJhbGciOi.payload.sig\n", 0600);
    char tf[128];
    snprintf(tf, sizeof tf, "%s/token.jwt", tmpdir);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tf, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/W", 1);
    aws_creds_plan p;
    aws_creds_opts o = opts(NULL);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_WEB_IDENTITY);
    assert_string_equal(p.web_identity_token, "eyJhbGciOi.payload.sig");
    char *body = aws_sts_web_identity_body(&p);
    assert_string_equal(body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn="
                              "arn%3Aaws%3Aiam%3A%3A1%3Arole%2FW&RoleSessionName=session-manager-plugin"
                              "&WebIdentityToken=eyJhbGciOi.payload.sig");
    free(body);
    aws_creds_plan_free(&p);
    /* Profile form. */
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    char cfg[512];
    snprintf(cfg, sizeof cfg, "[profile wi]\nrole_arn=arn:aws:iam::1:role/W2\nweb_identity_token_file=%s\n", tf);
    write_file(".aws/config", cfg, 0600);
    o = opts("wi");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_WEB_IDENTITY);
    assert_string_equal(p.role_arn, "arn:aws:iam::1:role/W2");
    aws_creds_plan_free(&p);
}

static void sso_cache_file(const char *key, const char *json)
{
    uint8_t md[20];
    unsigned n = 0;
    EVP_Digest(key, strlen(key), md, &n, EVP_sha1(), NULL);
    char rel[128] = ".aws/sso/cache/";
    for (int i = 0; i < 20; i++)
        snprintf(rel + strlen(rel), 3, "%02x", md[i]);
    strcat(rel, ".json");
    write_file(rel, json, 0600);
}

static void test_sso(void **st)
{
    (void)st;
    write_file(".aws/config", "[profile new]\nsso_session = corp\nsso_account_id = 111122223333\n"
                              "sso_role_name = ReadOnly\n"
                              "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
                              "sso_region = eu-central-1\n"
                              "[profile legacy]\nsso_start_url = https://old.awsapps.com/start\n"
                              "sso_region = us-west-2\nsso_account_id = 1\nsso_role_name = R\n"
                              "[profile broken]\nsso_session = missing\nsso_account_id = 1\nsso_role_name = R\n", 0600);
    sso_cache_file("corp", "{\"accessToken\":\"at-new\",\"expiresAt\":\"2024-01-02T09:00:00Z\"}");
    sso_cache_file("https://old.awsapps.com/start", "{\"accessToken\":\"at-old\",\"expiresAt\":\"2024-01-02T03:00:00Z\"}");
    aws_creds_plan p;
    aws_creds_opts o = opts("new");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_SSO);
    assert_string_equal(p.sso_access_token, "at-new");
    assert_string_equal(p.sso_account_id, "111122223333");
    assert_string_equal(p.sso_role_name, "ReadOnly");
    assert_string_equal(p.region, "eu-central-1");
    aws_creds_plan_free(&p);
    o = opts("legacy"); /* cached token expired */
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    assert_non_null(strstr(p.error, "expired"));
    aws_creds_plan_free(&p);
    o = opts("broken");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    assert_non_null(strstr(p.error, "sso-session"));
    aws_creds_plan_free(&p);

    /* Expired access token, live refresh token and registration: refreshable. */
    write_file(".aws/config", "[profile r]\nsso_session = s2\nsso_account_id = 1\nsso_role_name = R\n"
                              "[sso-session s2]\nsso_start_url = https://s2.awsapps.com/start\n"
                              "sso_region = ap-northeast-1\n", 0600);
    sso_cache_file("s2", "{\"startUrl\":\"https://s2.awsapps.com/start\",\"region\":\"ap-northeast-1\","
                         "\"accessToken\":\"old\",\"expiresAt\":\"2024-01-02T03:00:00Z\","
                         "\"clientId\":\"cid\",\"clientSecret\":\"csec\",\"refreshToken\":\"rt1\","
                         "\"registrationExpiresAt\":\"2024-03-01T00:00:00Z\"}");
    o = opts("r");
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_SSO);
    assert_null(p.sso_access_token);
    assert_non_null(p.sso_refresh);
    assert_string_equal(p.region, "ap-northeast-1");
    char *rb = aws_sso_oidc_refresh_body(p.sso_refresh);
    assert_string_equal(rb, "{\"clientId\":\"cid\",\"clientSecret\":\"csec\","
                            "\"grantType\":\"refresh_token\",\"refreshToken\":\"rt1\"}");
    free(rb);
    char oerr[128];
    const char *oresp = "{\"accessToken\":\"new\",\"expiresIn\":3600,\"refreshToken\":\"rt2\","
                        "\"tokenType\":\"Bearer\"}";
    assert_int_equal(aws_sso_oidc_apply("{\"error\":\"invalid_grant\"}", 25, NOW, p.sso_refresh,
                                        oerr, sizeof oerr), -1);
    assert_non_null(strstr(oerr, "invalid_grant"));
    assert_int_equal(aws_sso_oidc_apply(oresp, strlen(oresp), NOW, p.sso_refresh, oerr, sizeof oerr), 0);
    assert_string_equal(p.sso_refresh->access_token, "new");
    aws_creds_plan_free(&p);
    /* Written back: now valid from the cache, other fields kept. */
    char terr[128];
    aws_sso_token t;
    assert_int_equal(aws_sso_token_load("s2", NOW, &t, terr, sizeof terr), 0);
    assert_string_equal(t.access_token, "new");
    assert_string_equal(t.refresh_token, "rt2");
    assert_int_equal(t.expires_at, NOW + 3600);
    FILE *cf = fopen(t.path, "r");
    char cbuf[1024] = "";
    assert_int_equal(fread(cbuf, 1, sizeof cbuf - 1, cf) > 0, 1);
    fclose(cf);
    assert_non_null(strstr(cbuf, "\"startUrl\":\"https://s2.awsapps.com/start\""));
    aws_sso_token_clear(&t);

    const char *resp = "{\"roleCredentials\":{\"accessKeyId\":\"ASIASSO\",\"secretAccessKey\":\"ss\","
                       "\"sessionToken\":\"st\",\"expiration\":1704168245000}}";
    aws_credentials c = {0};
    char err[128];
    assert_int_equal(aws_sso_parse_role_credentials(resp, strlen(resp), &c, err, sizeof err), 0);
    assert_string_equal(c.access_key_id, "ASIASSO");
    assert_int_equal(c.expiration, NOW + 3600);
    aws_credentials_clear(&c);
    const char *bad = "{\"message\":\"Session token not found or invalid\"}";
    assert_int_equal(aws_sso_parse_role_credentials(bad, strlen(bad), &c, err, sizeof err), -1);
    assert_string_equal(err, "Session token not found or invalid");
}

static void test_container_and_imds(void **st)
{
    (void)st;
    aws_creds_plan p;
    aws_creds_opts o = opts(NULL);
    o.allow_imds = true;
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tokvar", 1);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_ECS);
    assert_string_equal(p.url, "http://169.254.170.2/v2/credentials/abc");
    assert_string_equal(p.authorization, "tokvar");
    aws_creds_plan_free(&p);
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds", 1);
    write_file("ecs-token", "tokfile\n", 0600);
    char tf[128];
    snprintf(tf, sizeof tf, "%s/ecs-token", tmpdir);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tf, 1);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_ECS);
    assert_string_equal(p.url, "http://127.0.0.1:9/creds");
    assert_string_equal(p.authorization, "tokfile"); /* the file wins */
    aws_creds_plan_free(&p);
    /* Plain HTTP to anything but loopback / the ECS and EKS agents is refused. */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://203.0.113.9/creds", 1);
    o.allow_imds = false;
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    aws_creds_plan_free(&p);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://203.0.113.9/creds", 1);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_ECS);
    aws_creds_plan_free(&p);
    /* Loopback is an address, not a name that starts like one. */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.attacker.example/creds", 1);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    aws_creds_plan_free(&p);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.8.9.10:80/creds", 1);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_ECS);
    aws_creds_plan_free(&p);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials", 1);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_ECS);
    aws_creds_plan_free(&p);
    o.allow_imds = true;
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");

    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338/", 1);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_IMDS);
    assert_string_equal(p.imds_endpoint, "http://127.0.0.1:1338");
    aws_creds_plan_free(&p);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    assert_int_equal(aws_creds_plan_resolve(&o, NOW, &p), AWS_STEP_NONE);
    assert_non_null(strstr(p.error, "default"));
    aws_creds_plan_free(&p);

    const char *j = "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAEC2\",\"SecretAccessKey\":\"se\","
                    "\"Token\":\"te\",\"Expiration\":\"2024-01-02T09:04:05Z\"}";
    aws_credentials c = {0};
    char err[128];
    assert_int_equal(aws_creds_parse_container_json(j, strlen(j), "imds", &c, err, sizeof err), 0);
    assert_string_equal(c.session_token, "te");
    assert_int_equal(c.expiration, NOW + 6 * 3600);
    aws_credentials_clear(&c);
    const char *f = "{\"Code\":\"Failure\"}";
    assert_int_equal(aws_creds_parse_container_json(f, strlen(f), "imds", &c, err, sizeof err), -1);
    assert_int_equal(aws_creds_parse_container_json("[", 1, "ecs", &c, err, sizeof err), -1);
}

static void test_iso8601_and_endpoints(void **st)
{
    (void)st;
    assert_int_equal(aws_parse_iso8601("2024-01-02T03:04:05Z"), NOW);
    assert_int_equal(aws_parse_iso8601("2024-01-02T03:04:05.999999Z"), NOW);
    assert_int_equal(aws_parse_iso8601("2024-01-02T05:04:05+02:00"), NOW);
    assert_int_equal(aws_parse_iso8601("2024-01-01T22:04:05-0500"), NOW);
    assert_int_equal(aws_parse_iso8601("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(aws_parse_iso8601("2000-02-29T00:00:00Z"), 951782400);
    assert_int_equal(aws_parse_iso8601("2024-13-02T03:04:05Z"), -1);
    assert_int_equal(aws_parse_iso8601("2024-01-02T03:04:05"), -1);
    assert_int_equal(aws_parse_iso8601("2024-01-02T03:04:05Zjunk"), -1);
    assert_int_equal(aws_parse_iso8601(""), -1);

    char *e = aws_endpoint_for("KMS", "kms", "eu-west-1");
    assert_string_equal(e, "https://kms.eu-west-1.amazonaws.com");
    free(e);
    e = aws_endpoint_for("KMS", "kms", "cn-north-1");
    assert_string_equal(e, "https://kms.cn-north-1.amazonaws.com.cn");
    free(e);
    setenv("AWS_USE_FIPS_ENDPOINT", "true", 1);
    e = aws_endpoint_for("KMS", "kms", "us-east-1");
    assert_string_equal(e, "https://kms-fips.us-east-1.amazonaws.com");
    free(e);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/", 1);
    e = aws_endpoint_for("STS", "sts", "us-east-1");
    assert_string_equal(e, "http://127.0.0.1:4566");
    free(e);
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:5000", 1);
    e = aws_endpoint_for("STS", "sts", "us-east-1");
    assert_string_equal(e, "http://127.0.0.1:5000");
    free(e);
    assert_null(getenv("AWS_ENDPOINT_URL_KMS"));
    e = aws_endpoint_for("KMS", "kms", "us-east-1"); /* the generic override applies */
    assert_string_equal(e, "http://127.0.0.1:4566");
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_env_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_profiles_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_export_last_resort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_plan_and_sts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sso, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_and_imds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iso8601_and_endpoints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
