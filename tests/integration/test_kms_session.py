"""A KMS-encrypted shell session between the plugin and agent-sim's own
agent-side KMS code (PROTOCOL.md §9): GenerateDataKey on the sim's fake KMS
with the right KeyId, 64 bytes and context, the EncChallenge round trip,
AES-256-GCM both ways (the sim only understands sealed input, and the plugin
only shows what it could open); with and without the RandomChallenge; and a
key KMS does not know failing with a clear error."""
import json

import ssmtest
from ssmtest import check

KEY = "arn:aws:kms:us-east-1:111122223333:key/agent-sim-test"


def run_shell(sim):
    r = sim.start_session()
    argv, env = ssmtest.plugin_invocation(r, sim, extra_env={"AWS_ENDPOINT_URL_KMS": sim.endpoint.rstrip("/")})
    p = ssmtest.run_pty(argv, env)
    return r, p


def check_encrypted_session(sim, challenge):
    r, p = run_shell(sim)
    p.read_until(b"This session is encrypted using AWS KMS.", timeout=15)
    p.write(b"echo kms-$((6*7))\n")
    p.read_until(b"kms-42", timeout=10)
    p.write(b"exit\n")
    p.read_until(f"Exiting session with sessionId: {r['SessionId']}".encode(), timeout=10)
    check(p.wait(10) == 0, "exit status")
    gdk = sim.records(event="kms_generate_data_key")
    check(len(gdk) == 1 and gdk[0]["KeyId"] == KEY and gdk[0]["NumberOfBytes"] == 64
          and not gdk[0]["has_KeySpec"], gdk)
    ctx = gdk[0]["EncryptionContext"]
    want = {"aws:ssm:SessionId": r["SessionId"], "aws:ssm:TargetId": ssmtest.DEFAULT_TARGET}
    dk = sim.records(event="kms_data_key")[0]
    check("error" not in dk and dk["challenge_acknowledged"] == challenge, dk)
    if challenge:
        hs = json.loads(sim.records(event="handshake_request")[0]["text"])
        kact = [a for a in hs["RequestedClientActions"] if a["ActionType"] == "KMSEncryption"][0]
        want["aws:ssm:RandomChallenge"] = kact["ActionParameters"]["Challenge"]
    check(ctx == want, (ctx, want))
    check(sim.records(event="kms_challenge_response")[0]["ok"], "challenge verified")
    check(not sim.records(event="kms_decrypt_failed"), "every client Output opened")
    # Client Output arrived sealed (nonce + tag = 28 bytes more than the keystrokes).
    ins = [x for x in sim.records(event="recv") if x["type"] == "input_stream_data"
           and x["payload_type"] == ssmtest.PT_OUTPUT]
    check(ins and all(x["len"] >= 29 for x in ins), [x["len"] for x in ins][:10])


def test_kms_session_with_random_challenge():
    with ssmtest.Sim("--kms-key-id", KEY, "--kms-challenge", "--agent-version", "3.3.1142.0") as sim:
        check_encrypted_session(sim, True)


def test_kms_session_without_challenge():
    with ssmtest.Sim("--kms-key-id", KEY) as sim:
        check_encrypted_session(sim, False)


def test_unknown_key_fails_clearly():
    with ssmtest.Sim("--kms-key-id", "alias/not-there", "--kms-valid-key", KEY) as sim:
        r, p = run_shell(sim)
        p.read_until(b"NotFoundException", timeout=15)
        check(p.wait(10) == 0, "exit status (the session ended normally from the agent side)")
        out = bytes(p.out)
        check(b"Key 'alias/not-there' does not exist" in out, out[-400:])
        check(b"KMSEncryption failed on client with status 2" in out, out[-400:])
        check(sim.records(event="api_error")[-1]["__type"] == "NotFoundException", "KMS error recorded")
        check(not sim.records(event="behaviour_start"), "the shell never started")


if __name__ == "__main__":
    ssmtest.main([test_kms_session_with_random_challenge, test_kms_session_without_challenge,
                  test_unknown_key_fails_clearly])
