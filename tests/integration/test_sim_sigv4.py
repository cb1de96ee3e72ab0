"""agent-sim's own SigV4 verifier: API calls (service ssm, kms) and the
plugin's signed websocket upgrade (service ssmmessages) verify with a known
key; --require-sigv4 refuses unsigned, unknown-key, wrong-secret, stale and
wrong-service requests. Each verification is recorded with the access key."""
import time

import ssmtest
from ssmtest import check

AK, SK = "AKIDSIMTEST0000000001", "simSecretKey/0123456789abcdefghijklmnopqr"
AK2, SK2, TOK2 = "ASIASIMTEST000000002", "otherSecret+abcdefghijklmnopqrstuvwxyz012", "IQoJsimSessionToken/abc+def=="


def sim_with_keys(*extra):
    return ssmtest.Sim("--access-key", AK, "--secret-key", SK, "--access-key", AK2, "--secret-key", SK2,
                       "--session-token", TOK2, *extra, sign=(AK, SK))


def last_sigv4(sim, kind):
    recs = [r for r in sim.records(event="sigv4") if r["kind"] == kind]
    check(recs, f"no {kind} sigv4 record")
    return recs[-1]


def test_api_signatures_verify():
    with sim_with_keys("--require-sigv4") as sim:
        st, res = ssmtest.signed_api(sim, "StartSession", {"Target": "i-0123456789abcdef0"}, AK, SK)
        check(st == 200 and res["SessionId"], (st, res))
        rec = last_sigv4(sim, "api")
        check(rec["ok"] and rec["access_key"] == AK and rec["service"] == "ssm" and rec["region"] == ssmtest.REGION, rec)
        st, res = ssmtest.signed_api(sim, "StartSession", {"Target": "i-0123456789abcdef0"}, AK2, SK2, TOK2)
        check(st == 200, (st, res))
        check("x-amz-security-token" in last_sigv4(sim, "api")["signed_headers"].split(";"), "token signed")


def test_api_bad_signatures_refused():
    with sim_with_keys("--require-sigv4") as sim:
        body = {"Target": "i-0123456789abcdef0"}
        cases = [
            ("unsigned", lambda: sim.api("StartSession", body, headers={"Authorization": None})),
            ("wrong secret", lambda: ssmtest.signed_api(sim, "StartSession", body, AK, SK + "x")),
            ("unknown key", lambda: ssmtest.signed_api(sim, "StartSession", body, "AKIDUNKNOWN", SK)),
            ("missing token", lambda: ssmtest.signed_api(sim, "StartSession", body, AK2, SK2)),
            ("wrong service", lambda: ssmtest.signed_api(sim, "StartSession", body, AK, SK, service="kms")),
            ("stale date", lambda: ssmtest.signed_api(
                sim, "StartSession", body, AK, SK,
                amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 3600)))),
        ]
        for name, call in cases:
            st, res = call()
            check(st == 403 and res.get("__type") == "InvalidSignatureException", (name, st, res))
        errors = [r.get("error") for r in sim.records(event="sigv4")]
        for e in ("no Authorization header", "signature mismatch", "unknown access key",
                  "x-amz-security-token not signed", "X-Amz-Date more than 15 minutes off"):
            check(e in errors, (e, errors))
        check(sim.records(event="sigv4_wrong_service"), "wrong service recorded")


def test_without_require_only_recorded():
    with sim_with_keys() as sim:
        st, _ = ssmtest.signed_api(sim, "StartSession", {"Target": "i-0123456789abcdef0"}, AK, SK + "x")
        check(st == 200, st)
        check(last_sigv4(sim, "api")["ok"] is False, "recorded as failed")


def test_plugin_upgrade_verifies():
    with sim_with_keys("--require-sigv4") as sim:
        ok, status, out = ssmtest.plugin_echo_session(
            sim, {"AWS_ACCESS_KEY_ID": AK2, "AWS_SECRET_ACCESS_KEY": SK2, "AWS_SESSION_TOKEN": TOK2})
        check(ok and status == 0, (status, out[-300:]))
        rec = last_sigv4(sim, "ws")
        check(rec["ok"] and rec["access_key"] == AK2 and rec["service"] == "ssmmessages"
              and rec["region"] == ssmtest.REGION, rec)
        check(rec["signed_headers"] == "host;x-amz-date;x-amz-security-token", rec)
        check(rec["cell_plus"] == "raw", f"the raw '+' of cell-number: {rec}")


def test_plugin_wrong_secret_refused():
    with sim_with_keys("--require-sigv4") as sim:
        ok, status, out = ssmtest.plugin_echo_session(
            sim, {"AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": SK + "wrong"}, drop_env=("AWS_SESSION_TOKEN",))
        # Like the official plugin: "Cannot perform start session: ..." (exit status 0).
        check(not ok and b"Cannot perform start session" in out, (status, out[-300:]))
        check(sim.records(event="ws_refused"), "upgrade refused")
        check(not sim.records(event="attach"), "never attached")
        rec = last_sigv4(sim, "ws")
        check(rec["ok"] is False and rec["error"] == "signature mismatch", rec)


if __name__ == "__main__":
    ssmtest.main([test_api_signatures_verify, test_api_bad_signatures_refused, test_without_require_only_recorded,
                  test_plugin_upgrade_verifies, test_plugin_wrong_secret_refused])
