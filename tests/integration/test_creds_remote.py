"""Credential providers that call an endpoint, served by agent-sim on its own
port; the temporary keys each issues must then sign the plugin's upgrade,
verified under --require-sigv4: STS AssumeRole (role_arn + source_profile,
itself signed and verified), AssumeRoleWithWebIdentity (env and profile), the
SSO cache + portal (and an expired token refreshed through SSO-OIDC), container
credentials with an Authorization token, IMDSv2."""
import hashlib
import json
import time

import ssmtest
from ssmtest import check

AK, SK = "AKIDSOURCEPROFILE001", "sourceSecret/abcdefghijklmnopqrstuvwxyz012"
SSO_TOKEN = "sim-sso-access-token-value"
ECS_AUTH = "Bearer sim-ecs-auth"


def sim():
    return ssmtest.Sim("--require-sigv4", "--access-key", AK, "--secret-key", SK, "--ecs-auth-token", ECS_AUTH,
                       "--sso-access-token", SSO_TOKEN, sign=(AK, SK))


def issued(s, provider):
    return [r["access_key"] for r in s.records(event="creds_issued") if r["provider"] == provider]


def expect_signed_with_issued(s, h, provider):
    ok, status, out = h.run(s)
    keys = issued(s, provider)
    recs = ssmtest.ws_sigv4(s)
    check(ok and status == 0, f"session failed: {status} {out[-300:]!r} sigv4 {recs[-1:]}")
    check(keys and recs and recs[-1]["ok"] and recs[-1]["access_key"] in keys, (keys, recs[-1:]))


def test_assume_role_with_source_profile():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        h.write(".aws/credentials", f"[src]\naws_access_key_id = {AK}\naws_secret_access_key = {SK}\n")
        h.write(".aws/config", "[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/Ops\nsource_profile = src\n"
                               "role_session_name = sim-test\n")
        h.env["AWS_PROFILE"] = "ops"
        expect_signed_with_issued(s, h, "sts-assume-role")
        req = [r for r in s.records(event="creds_request") if r["endpoint"] == "sts"][-1]
        check(req["action"] == "AssumeRole" and req["role_arn"] == "arn:aws:iam::123456789012:role/Ops"
              and req["role_session_name"] == "sim-test", req)
        sts_sig = [r for r in s.records(event="sigv4") if r["kind"] == "api" and r["service"] == "sts"]
        check(sts_sig and sts_sig[-1]["ok"] and sts_sig[-1]["access_key"] == AK, f"AssumeRole signature: {sts_sig}")
        h.cleanup()


def test_web_identity_from_environment():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzaW0ifQ."
        tok = h.write("token.jwt", jwt)
        h.env.update({"AWS_WEB_IDENTITY_TOKEN_FILE": tok, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/Web",
                      "AWS_ROLE_SESSION_NAME": "web-sess"})
        expect_signed_with_issued(s, h, "sts-web-identity")
        req = [r for r in s.records(event="creds_request") if r["endpoint"] == "sts"][-1]
        check(req["action"] == "AssumeRoleWithWebIdentity" and req["web_identity_token_len"] == len(jwt), req)
        h.cleanup()


def test_web_identity_from_profile():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        tok = h.write("token.jwt", "header.payload.sig")
        h.write(".aws/config", f"[default]\nrole_arn = arn:aws:iam::123456789012:role/W2\nweb_identity_token_file = {tok}\n")
        expect_signed_with_issued(s, h, "sts-web-identity")
        h.cleanup()


def sso_profile(h, expires_in, refresh=False):
    start = "https://sim.awsapps.com/start"
    h.write(".aws/config", "[profile sso]\nsso_session = simsso\nsso_account_id = 123456789012\n"
                           "sso_role_name = SimRole\n\n[sso-session simsso]\n"
                           f"sso_start_url = {start}\nsso_region = {ssmtest.REGION}\n")
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
    cache = {"startUrl": start, "region": ssmtest.REGION, "accessToken": SSO_TOKEN if not refresh else "stale-token",
             "expiresAt": exp}
    if refresh:
        cache.update({"refreshToken": "sim-refresh-1", "clientId": "sim-client", "clientSecret": "sim-client-secret",
                      "registrationExpiresAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))})
    name = hashlib.sha1(b"simsso").hexdigest()
    path = h.write(f".aws/sso/cache/{name}.json", json.dumps(cache))
    h.env["AWS_PROFILE"] = "sso"
    return path


def test_sso_cache_and_portal():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        sso_profile(h, 3600)
        expect_signed_with_issued(s, h, "sso")
        req = [r for r in s.records(event="creds_request") if r["endpoint"] == "sso_role_credentials"][-1]
        check(req["account_id"] == "123456789012" and req["role_name"] == "SimRole" and req["bearer_ok"], req)
        h.cleanup()


def test_sso_expired_token_refreshed_via_oidc():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        path = sso_profile(h, -60, refresh=True)
        expect_signed_with_issued(s, h, "sso")
        req = [r for r in s.records(event="creds_request") if r["endpoint"] == "sso_oidc_create_token"]
        check(req and req[-1]["grant_type"] == "refresh_token" and req[-1]["has_refresh_token"], req)
        with open(path) as f:
            check(json.load(f)["accessToken"] == SSO_TOKEN, "refreshed token written back to the cache")
        h.cleanup()


def test_container_credentials():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        h.env.update({"AWS_CONTAINER_CREDENTIALS_FULL_URI": s.endpoint.rstrip("/") + "/ecs/credentials",
                      "AWS_CONTAINER_AUTHORIZATION_TOKEN": ECS_AUTH})
        expect_signed_with_issued(s, h, "ecs")
        req = [r for r in s.records(event="creds_request") if r["endpoint"] == "ecs"][-1]
        check(req["authorization_ok"], req)
        h.cleanup()


def test_imds_v2():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        h.env.pop("AWS_EC2_METADATA_DISABLED")
        h.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = s.endpoint.rstrip("/")
        expect_signed_with_issued(s, h, "imds")
        reqs = [r["endpoint"] for r in s.records(event="creds_request")]
        check(reqs[:3] == ["imds_token", "imds_credentials", "imds_credentials"], reqs)
        check(all(r["token_ok"] for r in s.records(event="creds_request") if r["endpoint"] == "imds_credentials"),
              "IMDSv2 token sent")
        h.cleanup()


if __name__ == "__main__":
    ssmtest.main([test_assume_role_with_source_profile, test_web_identity_from_environment,
                  test_web_identity_from_profile, test_sso_cache_and_portal, test_sso_expired_token_refreshed_via_oidc,
                  test_container_credentials, test_imds_v2])
