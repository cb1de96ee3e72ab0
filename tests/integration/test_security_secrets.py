"""Security review (docs/security.md): with the log on at debug level, no
secret reaches stdout, stderr or the log: the session token, the AWS secret
key and session token, the KMS data key (raw, base64, hex) and SigV4
signatures (no 64-hex-digit run at all)."""
import base64
import os
import re
import sys
import tempfile

import ssmtest
from ssmtest import check

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_shell_kms as K  # noqa: E402  (its scripted agent and fake KMS)

HEX64 = re.compile(rb"[0-9a-fA-F]{64}")


def forms(secret):
    """A secret as bytes, and as the base64 and hex it could be printed in."""
    b = secret.encode() if isinstance(secret, str) else secret
    out = [b, base64.b64encode(b), b.hex().encode()]
    return [x for x in out if len(x) >= 6]


def check_clean(where, data, secrets):
    for name, s in secrets:
        for f in forms(s):
            check(f not in data, f"{name} found in {where}")
    m = HEX64.search(data)
    check(m is None, f"a 64-hex-digit run (a signature or key?) in {where}: {m and m.group()!r}")


def with_log(env):
    d = tempfile.mkdtemp(prefix="sec-secrets-")
    path = os.path.join(d, "plugin.log")
    env.update(SSM_PLUGIN_LOG=path, SSM_PLUGIN_LOG_LEVEL="debug")
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_kms_session_leaks_nothing():
    """The KMS shell session of test_shell_kms, signed with a session token."""
    kmss, auths, ptys = [], [], []
    real_init, real_pty = K.FakeKms.__init__, ssmtest.run_pty

    def init(self):
        real_init(self)
        kmss.append(self)
        handler = self.srv.RequestHandlerClass
        post = handler.do_POST

        def do_post(h):
            auths.append(h.headers.get("Authorization", ""))
            post(h)
        handler.do_POST = do_post

    def run_pty(argv, env=None, **kw):
        p = real_pty(argv, env, **kw)
        ptys.append(p)
        return p

    session_token = "IQoJsecretsTestSessionToken/0123456789+abc=="
    saved = dict(os.environ)
    log = with_log(os.environ)  # plugin_invocation copies os.environ
    os.environ["AWS_SESSION_TOKEN"] = session_token
    K.FakeKms.__init__, ssmtest.run_pty = init, run_pty
    try:
        K.test_kms_handshake_challenge_and_sealed_output()
    finally:
        K.FakeKms.__init__, ssmtest.run_pty = real_init, real_pty
        os.environ.clear()
        os.environ.update(saved)
    check(kmss and ptys and auths, "the KMS session ran")
    sigs = [m.group(1) for a in auths for m in [re.search(r"Signature=([0-9a-f]{64})", a)] if m]
    check(sigs, f"KMS request signed: {auths}")
    key = kmss[0].key
    secrets = [("the session token", "tok-kms"), ("the AWS secret key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
               ("the AWS session token", session_token), ("the KMS data key", key),
               ("the agent's data key", key[:32]), ("the client's data key", key[32:])]
    secrets += [("a SigV4 signature", s) for s in sigs]
    logged = read(log)
    check(b"KMS session encryption on" in logged, f"debug log written: {logged[-500:]!r}")
    check_clean("the terminal (stdout and stderr)", bytes(ptys[0].out), secrets)
    check_clean("the log", logged, secrets)


def test_signed_session_with_process_credentials_leaks_nothing():
    """credential_process credentials signing StartSession's data channel
    upgrade (agent-sim --require-sigv4); stdout, stderr and log checked."""
    ak, sk, tok = "ASIASECRETSTEST00001", "secretsTestSecret/abcdefghijklmnopqrstu0", "IQoJsecretsProcToken/xyz=="
    with ssmtest.Sim("--require-sigv4", "--access-key", ak, "--secret-key", sk, "--session-token", tok,
                     sign=(ak, sk, tok)) as s:
        h = ssmtest.CredsHome(s)
        script = h.write("bin/creds.sh", "#!/bin/sh\nprintf '%s' '{\"Version\":1,\"AccessKeyId\":\"" + ak +
                         "\",\"SecretAccessKey\":\"" + sk + "\",\"SessionToken\":\"" + tok + "\"}'\n", 0o700)
        h.write(".aws/config", f"[default]\ncredential_process = {script}\n")
        log = with_log(h.env)
        r = s.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, s, extra_env=h.env)
        for k in ssmtest.CRED_ENV:
            if k not in h.env:
                env.pop(k, None)
        p = ssmtest.run_pipes(argv, env)
        out, err = p.communicate(b"secrets-echo\n", timeout=30)
        check(p.returncode == 0 and b"secrets-echo\n" in out, f"exit {p.returncode}: {out[-300:]!r} {err[-300:]!r}")
        recs = ssmtest.ws_sigv4(s)
        check(recs and recs[-1]["ok"] and recs[-1]["access_key"] == ak, f"upgrade signed: {recs[-1:]}")
        secrets = [("the session token", r["TokenValue"]), ("the AWS secret key", sk),
                   ("the AWS session token", tok)]
        check_clean("stdout", out, secrets)
        check_clean("stderr", err, secrets)
        logged = read(log)
        check(b"websocket open" in logged, f"debug log written: {logged[-500:]!r}")
        check_clean("the log", logged, secrets)
        h.cleanup()


if __name__ == "__main__":
    ssmtest.main([test_kms_session_leaks_nothing, test_signed_session_with_process_credentials_leaks_nothing])
