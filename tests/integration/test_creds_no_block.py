"""Credential resolution never blocks or hammers the event loop
(PROTOCOL-NEWEST.md §1.7, docs/credentials.md "Caching and refresh").

The drop-in plugin dials an unreachable ws:// URL with no credentials
anywhere, so every connect attempt wants to sign the upgrade and the chain
ends in the last resort, `aws configure export-credentials`. A fake `aws` on
PATH counts its runs and sleeps 2 s:

* it runs once for the whole first-connection policy (6 attempts): after a
  failed chain, lookups fail at once for AWS_CREDS_RETRY_MS (negative cache);
* while it sleeps the loop keeps running: SIGTERM is answered at once, and the
  plugin burns no CPU waiting for it.
"""
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import ssmtest
from ssmtest import check


def closed_port():
    """A loopback port with nothing listening on it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class NoCreds:
    """A HOME without ~/.aws, no credential variables, IMDS off, and a fake
    `aws` first on PATH that records each run and sleeps."""

    def __init__(self, sleep_s=2):
        self.dir = tempfile.mkdtemp(prefix="creds-noblock-")
        self.count = os.path.join(self.dir, "runs")
        bin_dir = os.path.join(self.dir, "bin")
        os.makedirs(bin_dir)
        os.makedirs(os.path.join(self.dir, "home"))
        fake = os.path.join(bin_dir, "aws")
        with open(fake, "w") as f:
            f.write(f"#!/bin/sh\necho \"$$ $*\" >> '{self.count}'\nsleep {sleep_s}\nexit 1\n")
        os.chmod(fake, 0o755)
        self.env = {k: v for k, v in os.environ.items() if k not in ssmtest.CRED_ENV}
        self.env.update({"HOME": os.path.join(self.dir, "home"), "AWS_EC2_METADATA_DISABLED": "true",
                         "PATH": bin_dir + ":/usr/bin:/bin"})
        sid = "s-noblock"
        self.argv = [ssmtest.plugin_path(),
                     f'{{"SessionId":"{sid}","TokenValue":"t",'
                     f'"StreamUrl":"ws://127.0.0.1:{closed_port()}/v1/data-channel/{sid}"}}',
                     "us-east-1", "StartSession"]

    def runs(self):
        try:
            with open(self.count) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def test_cli_export_runs_once_for_all_attempts():
    nc = NoCreds()
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        p = subprocess.run(nc.argv, env=nc.env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=60)
        took = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = p.stdout + p.stderr
        check(b"Cannot perform start session" in out, out[-400:])
        runs = nc.runs()
        check(len(runs) == 1, f"`aws` ran {len(runs)} times for one first connection: {runs}")
        check(runs[0].split(" ", 1)[1] == "configure export-credentials --profile default --format process",
              runs)
        # The plugin and its children (one sh + one sleep): well under the
        # ~0.4 s one run of the real python CLI costs, let alone six.
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        check(cpu < 0.5, f"{cpu:.2f} s CPU in {took:.1f} s")
    finally:
        nc.cleanup()


def test_sigterm_answered_while_the_cli_sleeps():
    """The loop keeps running while the CLI sleeps: SIGTERM is taken at once
    (logged, terminal restored). The exit itself waits for the session's
    TerminateSession, which waits for the credentials being resolved, at most
    session.c's TERMINATE_WAIT_MS (2 s); the CLI is killed then. Before the
    CLI ran asynchronously, the loop was stuck in it for its whole 5 s."""
    nc = NoCreds(sleep_s=5)
    log = os.path.join(nc.dir, "plugin.log")
    nc.env["SSM_PLUGIN_LOG"] = log
    try:
        p = ssmtest.run_pipes(nc.argv, nc.env)
        deadline = time.monotonic() + 10
        while not nc.runs() and time.monotonic() < deadline:
            time.sleep(0.02)
        check(nc.runs(), "the fake aws never ran")
        time.sleep(0.3)  # well inside its 5 s sleep
        check(p.poll() is None, "the plugin is still trying")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        seen = None
        while time.monotonic() - t0 < 5:
            with open(log, "rb") as f:
                if b"signal 15: ending the session" in f.read():
                    seen = time.monotonic() - t0
                    break
            time.sleep(0.005)
        check(seen is not None and seen < 0.2, f"SIGTERM taken after {seen} s while the CLI ran")
        p.wait(10)
        took = time.monotonic() - t0
        check(took < 3.0, f"exit {took:.2f} s after SIGTERM")
        runs = nc.runs()
        check(len(runs) == 1, runs)
        cli_pid = int(runs[0].split()[0])
        check(not os.path.exists(f"/proc/{cli_pid}"), "the CLI child was killed when the session ended")
    finally:
        nc.cleanup()


if __name__ == "__main__":
    ssmtest.main([test_cli_export_runs_once_for_all_attempts, test_sigterm_answered_while_the_cli_sleeps])
