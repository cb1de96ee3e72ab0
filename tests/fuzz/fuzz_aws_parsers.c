/* libFuzzer: every parser that reads AWS responses or URLs (STS XML,
 * credential_process / ECS / IMDS / SSO JSON, ISO-8601, URLs, SigV4
 * canonical query and path). The first byte picks the parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws_creds.h"
#include "aws_sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    char *z = malloc(n + 1); /* NUL-terminated copy for the string APIs */
    if (!z)
        return 0;
    memcpy(z, p, n);
    z[n] = '\0';
    aws_credentials c = {0};
    char err[256];
    switch (data[0] % 8) {
    case 0:
        aws_sts_parse_response(p, n, &c, err, sizeof err);
        break;
    case 1:
        aws_creds_process_parse(p, n, 1700000000, &c, err, sizeof err);
        break;
    case 2:
        aws_creds_parse_container_json(p, n, "fuzz", &c, err, sizeof err);
        break;
    case 3:
        aws_sso_parse_role_credentials(p, n, &c, err, sizeof err);
        break;
    case 4: {
        aws_sso_token t = {.access_token = strdup("a")}; /* no path: nothing is written */
        aws_sso_oidc_apply(p, n, 1700000000, &t, err, sizeof err);
        aws_sso_token_clear(&t);
        break;
    }
    case 5:
        (void)aws_parse_iso8601(z);
        break;
    case 6: {
        aws_url u;
        if (aws_url_parse(z, &u) == 0)
            aws_url_free(&u);
        break;
    }
    default:
        free(aws_sigv4_canonical_query(z));
        free(aws_sigv4_canonical_uri(z));
        break;
    }
    aws_credentials_clear(&c);
    free(z);
    return 0;
}
