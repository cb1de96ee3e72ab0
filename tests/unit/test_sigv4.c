/* SigV4: the published AWS test-suite vectors in fixtures/sigv4/, plus
 * hand-computed cases for the websocket upgrade ('+' -> %20 in the canonical
 * query, double-encoded path) and a JSON-1.1 POST. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>

#include "aws_sigv4.h"

#define SUITE_AKID "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME ((time_t)1440938160) /* 2015-08-30T12:36:00Z */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = '\0';
    fclose(f);
    return b;
}

/* Returns the text of section "--- name" (malloc'd, trailing newline cut). */
static char *section(const char *file, const char *name)
{
    char mark[64];
    snprintf(mark, sizeof mark, "--- %s\n", name);
    const char *s = strstr(file, mark);
    if (!s)
        return NULL;
    s += strlen(mark);
    const char *e = strstr(s, "\n--- ");
    size_t n = e ? (size_t)(e - s) : strlen(s);
    while (n && s[n - 1] == '\n')
        n--;
    return strndup(s, n);
}

static void run_vector(const char *dir, const char *fname)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    char *file = slurp(path);
    assert_non_null(file);
    char token[512] = "";
    const char *t = strstr(file, "\ntoken:");
    assert_non_null(t);
    sscanf(t + 7, "%511[^\n]", token);

    char *req = section(file, "request"), *exp_creq = section(file, "canonical-request"),
         *exp_sts = section(file, "string-to-sign"), *exp_sig = section(file, "signature");
    assert_non_null(req);
    assert_non_null(exp_creq);
    assert_non_null(exp_sts);
    assert_non_null(exp_sig);

    /* Request line "METHOD target HTTP/1.1"; the target may contain spaces. */
    char *line_end = strchr(req, '\n');
    assert_non_null(line_end);
    *line_end = '\0';
    char *sp1 = strchr(req, ' '), *sp2 = strrchr(req, ' ');
    assert_true(sp1 && sp2 && sp2 > sp1);
    *sp1 = *sp2 = '\0';
    char *target = sp1 + 1, *query = strchr(target, '?');
    if (query)
        *query++ = '\0';

    /* Headers, with folded continuation lines joined by a space. */
    aws_sigv4_header hdr[16];
    char *vals[16];
    size_t nh = 0;
    const char *host = NULL;
    for (char *l = line_end + 1; l && *l;) {
        char *next = strchr(l, '\n');
        if (next)
            *next++ = '\0';
        if ((*l == ' ' || *l == '\t') && nh) {
            size_t a = strlen(vals[nh - 1]), b = strlen(l);
            vals[nh - 1] = realloc(vals[nh - 1], a + b + 2);
            vals[nh - 1][a] = ' ';
            memcpy(vals[nh - 1] + a + 1, l, b + 1);
            hdr[nh - 1].value = vals[nh - 1];
        } else {
            char *colon = strchr(l, ':');
            assert_non_null(colon);
            *colon = '\0';
            if (!strcasecmp(l, "host")) {
                host = colon + 1;
            } else {
                assert_true(nh < 16);
                hdr[nh].name = l;
                vals[nh] = strdup(colon + 1);
                hdr[nh].value = vals[nh];
                nh++;
            }
        }
        l = next;
    }
    assert_non_null(host);

    aws_sigv4_input in = {
        .method = req, .host = host, .path = target, .query = query,
        .headers = hdr, .n_headers = nh,
        .region = "us-east-1", .service = "service",
        .access_key_id = SUITE_AKID, .secret_access_key = SUITE_SECRET,
        .session_token = token, .now = SUITE_TIME,
    };
    aws_sigv4_output out;
    char creq[4096], sts[1024];
    assert_int_equal(aws_sigv4_sign(&in, &out, creq, sizeof creq, sts, sizeof sts), 0);
    if (strcmp(creq, exp_creq) != 0)
        print_error("%s: canonical request\n--- got\n%s\n--- want\n%s\n", fname, creq, exp_creq);
    assert_string_equal(creq, exp_creq);
    assert_string_equal(sts, exp_sts);
    assert_string_equal(out.signature, exp_sig);
    assert_string_equal(out.amz_date, "20150830T123600Z");
    assert_non_null(strstr(out.authorization,
                           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders="));
    assert_non_null(strstr(out.authorization, exp_sig));

    for (size_t i = 0; i < nh; i++)
        free(vals[i]);
    free(req);
    free(exp_creq);
    free(exp_sts);
    free(exp_sig);
    free(file);
}

static void test_aws_suite_vectors(void **st)
{
    (void)st;
    const char *dir = SSM_FIXTURES_DIR "/sigv4";
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".txt")) {
            run_vector(dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    assert_true(n >= 25); /* the vectors are really there */
}

/* Hand-computed (canonical request written out per PROTOCOL-NEWEST §1.3;
 * hashes computed separately with Python's hashlib/hmac). */
static void test_websocket_upgrade_quirks(void **st)
{
    (void)st;
    const char *url = "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/"
                      "a%40b+c=d,e-0a1b2c3d4e5f6a7b8?role=publish_subscribe&cell-number=AAEC+/w==&x=%2B1";
    aws_url u;
    assert_int_equal(aws_url_parse(url, &u), 0);
    assert_string_equal(u.authority, "ssmmessages.us-east-1.amazonaws.com");
    char *curi = aws_sigv4_canonical_uri(u.path), *cq = aws_sigv4_canonical_query(u.query);
    assert_string_equal(curi, "/v1/data-channel/a%2540b%2Bc%3Dd%2Ce-0a1b2c3d4e5f6a7b8");
    assert_string_equal(cq, "cell-number=AAEC%20%2Fw%3D%3D&role=publish_subscribe&x=%2B1");
    free(curi);
    free(cq);

    aws_sigv4_input in = {
        .method = "GET", .host = u.authority, .path = u.path, .query = u.query,
        .region = "us-east-1", .service = "ssmmessages",
        .access_key_id = "AKIDEXAMPLE", .secret_access_key = SUITE_SECRET,
        .session_token = "FQoGZXIvYXdzE+tok/en==", .now = (time_t)1704164645,
    };
    aws_sigv4_output out;
    char creq[2048];
    assert_int_equal(aws_sigv4_sign(&in, &out, creq, sizeof creq, NULL, 0), 0);
    assert_string_equal(creq,
        "GET\n/v1/data-channel/a%2540b%2Bc%3Dd%2Ce-0a1b2c3d4e5f6a7b8\n"
        "cell-number=AAEC%20%2Fw%3D%3D&role=publish_subscribe&x=%2B1\n"
        "host:ssmmessages.us-east-1.amazonaws.com\nx-amz-date:20240102T030405Z\n"
        "x-amz-security-token:FQoGZXIvYXdzE+tok/en==\n\n"
        "host;x-amz-date;x-amz-security-token\n" AWS_SIGV4_EMPTY_SHA256);
    const char *sig = "09c546b0cb62ce03d5e0ee2f06f485708f883d002a756c6f9cfef8a0e6bae2ae";
    assert_string_equal(out.signature, sig);
    assert_string_equal(out.amz_date, "20240102T030405Z");
    assert_string_equal(out.authorization,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/ssmmessages/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-amz-security-token, "
        "Signature=09c546b0cb62ce03d5e0ee2f06f485708f883d002a756c6f9cfef8a0e6bae2ae");

    /* The one-call helper gives the same result. */
    aws_sigv4_output o2;
    assert_int_equal(aws_sigv4_sign_get_url(url, "us-east-1", "ssmmessages", "AKIDEXAMPLE",
                                            SUITE_SECRET, "FQoGZXIvYXdzE+tok/en==",
                                            (time_t)1704164645, &o2), 0);
    assert_string_equal(o2.authorization, out.authorization);
    aws_url_free(&u);
}

static void test_json_post(void **st)
{
    (void)st;
    const char *body = "{\"SessionId\":\"user-0a1b2c3d4e5f6a7b8\"}";
    aws_sigv4_header h[] = {{"X-Amz-Target", "AmazonSSM.ResumeSession"},
                            {"Content-Type", "application/x-amz-json-1.1"}};
    aws_sigv4_input in = {
        .method = "POST", .host = "ssm.eu-west-1.amazonaws.com", .path = "/",
        .headers = h, .n_headers = 2, .body = body, .body_len = strlen(body),
        .region = "eu-west-1", .service = "ssm",
        .access_key_id = "AKIDEXAMPLE", .secret_access_key = SUITE_SECRET,
        .now = (time_t)1704164645,
    };
    aws_sigv4_output out;
    char creq[2048];
    assert_int_equal(aws_sigv4_sign(&in, &out, creq, sizeof creq, NULL, 0), 0);
    assert_non_null(strstr(creq, "\n\ncontent-type;host;x-amz-date;x-amz-target\n"
                                 "a181784a86480913377b3216a5352e067479b681e58493383190e5bdcef23716"));
    assert_string_equal(out.signature,
                        "3c9a0e22a02bbcf4d0140a9de437a23b580dfe8f52efb4c733904d0394ec9849");
    /* No token -> not in the signed headers. */
    assert_null(strstr(out.authorization, "security-token"));
}

static void test_canonical_query_edges(void **st)
{
    (void)st;
    struct { const char *in, *want; } c[] = {
        {"", ""},
        {"a", "a="},
        {"b=2&a=1&a=0", "a=0&a=1&b=2"},   /* by key, then value (Go sorts values) */
        {"%E1%88%B4=1&Z=2", "%E1%88%B4=1&Z=2"}, /* by encoded key, as the AWS suite */
        {"a=%zz&b=1", "b=1"},            /* bad escape: pair dropped */
        {"a=%4", ""},                    /* truncated escape */
        {"&&k=v&", "k=v"},
        {"x=1;y=2&z=3", "z=3"},          /* ';' makes the pair invalid */
        {"sp=a+b%20c", "sp=a%20b%20c"},
        {"k=%2b%2B~", "k=%2B%2B~"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char *q = aws_sigv4_canonical_query(c[i].in);
        assert_non_null(q);
        assert_string_equal(q, c[i].want);
        free(q);
    }
    char *p = aws_sigv4_canonical_uri("");
    assert_string_equal(p, "/");
    free(p);
}

static void test_url_parse(void **st)
{
    (void)st;
    aws_url u;
    assert_int_equal(aws_url_parse("https://user@[::1]:8443/x?y#z", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.authority, "[::1]:8443");
    assert_int_equal(u.port, 8443);
    assert_true(u.tls);
    assert_string_equal(u.path, "/x");
    assert_string_equal(u.query, "y");
    aws_url_free(&u);
    assert_int_equal(aws_url_parse("wss://h.example:443", &u), 0);
    assert_string_equal(u.authority, "h.example:443"); /* as written: what goes out */
    assert_int_equal(u.port, 443);
    assert_string_equal(u.path, "/");
    aws_url_free(&u);
    assert_int_equal(aws_url_parse("http://127.0.0.1:8080/a", &u), 0);
    assert_false(u.tls);
    assert_string_equal(u.authority, "127.0.0.1:8080");
    aws_url_free(&u);
    assert_int_equal(aws_url_parse("ftp://x/", &u), -1);
    assert_int_equal(aws_url_parse("https://", &u), -1);
    assert_int_equal(aws_url_parse("https://h:0/", &u), -1);
    assert_int_equal(aws_url_parse("https://h:99999/", &u), -1);
    assert_int_equal(aws_url_parse("https://h:12a/", &u), -1);
    assert_int_equal(aws_url_parse("https://[::1/", &u), -1);
    assert_int_equal(aws_url_parse("nothing", &u), -1);
}

static void test_rejects_bad_input(void **st)
{
    (void)st;
    aws_sigv4_output out;
    aws_sigv4_header bad[] = {{"X-Bad:Name", "v"}};
    aws_sigv4_input in = {
        .method = "GET", .host = "h", .path = "/", .headers = bad, .n_headers = 1,
        .region = "r", .service = "s", .access_key_id = "A", .secret_access_key = "S", .now = 0,
    };
    assert_int_equal(aws_sigv4_sign(&in, &out, NULL, 0, NULL, 0), -1);
    aws_sigv4_header dup_host[] = {{"Host", "evil"}};
    in.headers = dup_host;
    assert_int_equal(aws_sigv4_sign(&in, &out, NULL, 0, NULL, 0), -1);
    in.n_headers = 0;
    in.access_key_id = "";
    assert_int_equal(aws_sigv4_sign(&in, &out, NULL, 0, NULL, 0), -1);
    in.access_key_id = "A";
    assert_int_equal(aws_sigv4_sign(&in, &out, NULL, 0, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_suite_vectors),
        cmocka_unit_test(test_websocket_upgrade_quirks),
        cmocka_unit_test(test_json_post),
        cmocka_unit_test(test_canonical_query_edges),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
