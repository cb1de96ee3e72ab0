"""The opt-in log (SSM_PLUGIN_LOG, docs/security.md): created 0600 (an
existing file of ours narrowed to 0600), filled at debug level, and free of
the session token and of what the session carried; stdout and stderr stay as
without it."""
import os
import stat
import tempfile

import ssmtest
from ssmtest import check


def test_log_is_private_and_holds_no_secrets():
    d = tempfile.mkdtemp(prefix="ssm-log-")
    path = os.path.join(d, "plugin.log")
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        env = dict(env, SSM_PLUGIN_LOG=path, SSM_PLUGIN_LOG_LEVEL="debug")
        p = ssmtest.run_pipes(argv, env)
        secret_input = b"payload-that-must-not-be-logged-7f3a\n"
        out, err = p.communicate(secret_input, timeout=30)
        check(p.returncode == 0, f"exit {p.returncode}")
        check(err == b"", f"stderr {err!r}")
        check(secret_input.strip() in out, "the echo came back")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        check(mode == 0o600, f"log mode {oct(mode)}")
        with open(path, "rb") as f:
            log = f.read()
        check(b"DEBUG" in log or b"INFO" in log, "debug lines written")
        check(r["TokenValue"].encode() not in log, "the session token is in the log")
        check(secret_input.strip() not in log, "session data is in the log")


def test_existing_log_is_narrowed_to_0600():
    d = tempfile.mkdtemp(prefix="ssm-log-")
    path = os.path.join(d, "plugin.log")
    with open(path, "w") as f:
        f.write("earlier lines\n")
    os.chmod(path, 0o644)
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        env = dict(env, SSM_PLUGIN_LOG=path, SSM_PLUGIN_LOG_LEVEL="info")
        p = ssmtest.run_pipes(argv, env)
        p.communicate(b"x\n", timeout=30)
        check(p.returncode == 0, f"exit {p.returncode}")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    check(mode == 0o600, f"log mode {oct(mode)}")
    with open(path, "rb") as f:
        check(f.read().startswith(b"earlier lines\n"), "appended, not truncated")


if __name__ == "__main__":
    ssmtest.main([test_log_is_private_and_holds_no_secrets, test_existing_log_is_narrowed_to_0600])
