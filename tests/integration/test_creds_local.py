"""Credential providers that need no endpoint, each proven by the agent-sim
verifying the plugin's signed upgrade under --require-sigv4: environment,
shared credentials file, config-file profile named in argv[4], credential_process,
the `aws configure export-credentials` fallback; and a wrong secret refused."""
import os

import ssmtest
from ssmtest import check

AK, SK, TOK = "AKIDLOCALTEST0000001", "localSecret/abcdefghijklmnopqrstuvwxyz0123", None
AK2, SK2, TOK2 = "ASIALOCALTEST0000002", "procSecret+abcdefghijklmnopqrstuvwxyz01234", "IQoJprocToken/xyz=="


def sim():
    return ssmtest.Sim("--require-sigv4", "--access-key", AK, "--secret-key", SK, "--access-key", AK2,
                       "--secret-key", SK2, "--session-token", TOK2, sign=(AK, SK))


def expect_signed_by(s, home, ak, **kw):
    ok, status, out = home.run(s, **kw)
    recs = ssmtest.ws_sigv4(s)
    check(ok and status == 0, f"session failed: {status} {out[-300:]!r} sigv4 {recs[-1:]}")
    check(recs and recs[-1]["ok"] and recs[-1]["access_key"] == ak, recs[-1:])


def test_environment():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        h.env.update({"AWS_ACCESS_KEY_ID": AK2, "AWS_SECRET_ACCESS_KEY": SK2, "AWS_SESSION_TOKEN": TOK2})
        expect_signed_by(s, h, AK2)
        h.cleanup()


def test_shared_credentials_file_default_profile():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        h.write(".aws/credentials", f"[default]\naws_access_key_id = {AK}\naws_secret_access_key = {SK}\n")
        expect_signed_by(s, h, AK)
        h.cleanup()


def test_config_profile_from_aws_profile():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        h.write(".aws/config", f"[profile dev]\naws_access_key_id = {AK2}\naws_secret_access_key = {SK2}\n"
                               f"aws_session_token = {TOK2}\n")
        h.env["AWS_PROFILE"] = "dev"
        expect_signed_by(s, h, AK2)
        h.cleanup()


def test_credential_process():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        script = h.write("bin/creds.sh", "#!/bin/sh\nprintf '%s' '{\"Version\":1,\"AccessKeyId\":\"" + AK2 +
                         "\",\"SecretAccessKey\":\"" + SK2 + "\",\"SessionToken\":\"" + TOK2 + "\"}'\n", 0o700)
        h.write(".aws/config", f"[default]\ncredential_process = {script}\n")
        expect_signed_by(s, h, AK2)
        h.cleanup()


def test_aws_cli_export_credentials_fallback():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        # A stand-in `aws` on PATH answering `configure export-credentials --format process`.
        h.write("bin/aws", "#!/bin/sh\n"
                "[ \"$1 $2\" = 'configure export-credentials' ] || exit 3\n"
                "printf '%s' '{\"Version\":1,\"AccessKeyId\":\"" + AK + "\",\"SecretAccessKey\":\"" + SK + "\"}'\n",
                0o700)
        h.env["PATH"] = os.path.join(h.home, "bin")
        expect_signed_by(s, h, AK)
        h.cleanup()


def test_wrong_secret_is_refused():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        h.env.update({"AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": SK + "-wrong"})
        ok, status, out = h.run(s)
        check(not ok and b"Cannot perform start session" in out, (status, out[-300:]))
        recs = ssmtest.ws_sigv4(s)
        check(recs and not recs[-1]["ok"] and recs[-1]["error"] == "signature mismatch", recs[-1:])
        check(s.records(event="ws_refused") and not s.records(event="attach"), "refused, never attached")
        h.cleanup()


def test_no_credentials_is_refused_unsigned():
    with sim() as s:
        h = ssmtest.CredsHome(s)
        ok, status, out = h.run(s)
        check(not ok, out[-300:])
        recs = ssmtest.ws_sigv4(s)
        check(recs and recs[-1]["present"] is False, recs[-1:])
        h.cleanup()


if __name__ == "__main__":
    ssmtest.main([test_environment, test_shared_credentials_file_default_profile, test_config_profile_from_aws_profile,
                  test_credential_process, test_aws_cli_export_credentials_fallback, test_wrong_secret_is_refused,
                  test_no_credentials_is_refused_unsigned])
