"""Standalone mode (docs/standalone.md): `session-manager-plugin
start-session ...` calls StartSession at --endpoint-url (agent-sim) with
dummy credentials, then runs the session: command output and exit code
propagation, a port session with --listen-address and the ready file,
usage errors, API errors, region resolution."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import ssmtest as T
from test_port_mux import PF_DOC, EchoServer, PortPlugin, roundtrip

CMD_DOC = "AWS-StartNonInteractiveCommand"


def sa_env(extra=None, region="us-east-1"):
    env = dict(os.environ)
    for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
              "SSM_PLUGIN_READY_FILE", "SSM_PLUGIN_READY_FD", "SSM_PLUGIN_LISTEN_ADDRESS"):
        env.pop(k, None)
    env.update({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": "/nonexistent/config",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials"})
    if region:
        env["AWS_REGION"] = region
    env.update(extra or {})
    return env


def run_sa(args, env=None, timeout=20):
    p = subprocess.run([T.plugin_path(), "start-session"] + args, env=env or sa_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def test_command_output_and_exit_code():
    with T.Sim() as sim:
        for code in (0, 7):
            rc, out, err = run_sa(["--target", "i-0123456789abcdef0", "--endpoint-url", sim.endpoint,
                                   "--document-name", CMD_DOC,
                                   "--parameters", f'command=["echo a,b; exit {code}"]'])
            T.check(rc == code, f"exit {rc}, want {code}; out {out!r} err {err!r}")
            T.check(b"\nStarting session with SessionId: sim-" in out, f"stdout {out!r}")
            T.check(b"a,b\n" in out, f"command output missing: {out!r}")
            T.check(f"EXIT_CODE: {code}".encode() in out, f"stdout {out!r}")
        calls = [r for r in sim.records("api_call") if r["target"] == "AmazonSSM.StartSession"]
        T.check(len(calls) == 2, f"{len(calls)} StartSession calls")
        body = calls[1]["body"]
        T.check(body == {"Target": "i-0123456789abcdef0", "DocumentName": CMD_DOC,
                         "Parameters": {"command": ["echo a,b; exit 7"]}}, f"request {body}")
        T.check(calls[1]["has_authorization"], "StartSession was not signed")


def test_json_parameters_reason_and_region_from_profile():
    d = tempfile.mkdtemp(prefix="sa-cfg-")
    cfg, creds = os.path.join(d, "config"), os.path.join(d, "credentials")
    with open(cfg, "w") as f:
        f.write("[default]\nregion = eu-west-3\n[profile dev]\nregion = ap-south-1\n"
                "[profile noregion]\n")
    with open(creds, "w") as f:
        f.write("[dev]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secretsecret\n"
                "[noregion]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secretsecret\n")
    env = sa_env({"AWS_CONFIG_FILE": cfg, "AWS_SHARED_CREDENTIALS_FILE": creds}, region=None)
    with T.Sim() as sim:
        # no --region and no AWS_REGION: only [profile dev] supplies one
        rc, out, err = run_sa(["--target=i-1", "--endpoint-url", sim.endpoint, "--profile", "dev",
                               "--document-name", CMD_DOC, "--reason", "ticket 42",
                               "--parameters", '{"command": "exit 3"}'], env=env)
        T.check(rc == 3, f"exit {rc}; err {err!r}")
        call = [r for r in sim.records("api_call") if r["target"] == "AmazonSSM.StartSession"][0]
        T.check(call["body"] == {"Target": "i-1", "DocumentName": CMD_DOC, "Reason": "ticket 42",
                                 "Parameters": {"command": ["exit 3"]}}, f"request {call['body']}")
    rc, out, err = run_sa(["--target=i-1", "--endpoint-url", "http://127.0.0.1:9/",
                           "--profile", "noregion"], env=env)
    T.check(rc == 253 and b"You must specify a region" in err, f"{rc} {err!r}")


def test_port_session_listen_address_and_ready_file():
    echo = EchoServer()
    d = tempfile.mkdtemp(prefix="sa-ready-")
    ready = os.path.join(d, "ready.json")
    with T.Sim() as sim:
        env = sa_env({"SSM_PLUGIN_READY_FILE": ready})
        p = subprocess.Popen([T.plugin_path(), "start-session", "--target", "i-2", "--endpoint-url",
                              sim.endpoint, "--document-name", PF_DOC, "--listen-address", "127.0.0.2",
                              "--parameters", f"portNumber={echo.port},localPortNumber=0"],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 10
            while not os.path.exists(ready):
                T.check(time.time() < deadline and p.poll() is None, "no ready file")
                time.sleep(0.02)
            info = json.load(open(ready))
            T.check(info["address"] == "127.0.0.2" and info["session_id"].startswith("sim-"),
                    f"ready {info}")
            with socket.create_connection(("127.0.0.2", info["port"])) as c:
                roundtrip(c, b"standalone\n" * 500)
            refused = False
            try:
                socket.create_connection(("127.0.0.1", info["port"]), timeout=2).close()
            except OSError:
                refused = True
            T.check(refused, "listener also reachable on 127.0.0.1")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
            T.check(p.returncode == 0, f"exit {p.returncode}; err {err!r}")
            sid = info["session_id"]
            T.check(f"Port {info['port']} opened for sessionId {sid}.".encode() in out, f"stdout {out!r}")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    echo.close()


def test_interactive_shell_on_a_pty():
    os.environ["SIM_SHELL"] = "/bin/sh"  # inherited by agent-sim
    with T.Sim() as sim:
        p = T.run_pty([T.plugin_path(), "start-session", "--target", "i-3",
                       "--endpoint-url", sim.endpoint], env=sa_env())
        p.read_until(b"Starting session with SessionId: sim-")
        p.write(b"echo sum-$((40+2))\r")
        p.read_until(b"sum-42")
        p.write(b"exit 3\r")  # a Standard_Stream shell sends no ExitCode: exit 0
        p.read_until(b"Exiting session with sessionId: sim-", timeout=10)
        T.check(p.wait(10) == 0, "exit status")
        call = [r for r in sim.records("api_call") if r["target"] == "AmazonSSM.StartSession"][0]
        T.check(call["body"] == {"Target": "i-3"}, f"request {call['body']}")


def test_usage_errors():
    cases = [(["--document-name", "X"], b"required: --target"),
             (["--target", "i-1", "--bogus", "1"], b"unknown option: --bogus"),
             (["--target"], b"needs a value"),
             (["--target", "i-1", "--target", "i-2"], b"given twice"),
             (["--target", "i-1", "stray"], b"unexpected argument: stray"),
             (["--target", "i-1", "--parameters", "novalue"], b"key=value"),
             (["--target", "i-1", "--parameters", '{"a": 1}'], b"not a string or a list"),
             (["--target", "i-1", "--parameters", "{broken"], b"not a JSON object"),
             (["--target", "i-1", "--listen-address", "999.1.1.1"], b"--listen-address")]
    for args, want in cases:
        rc, out, err = run_sa(args)
        T.check(rc == 252, f"{args}: exit {rc}")
        T.check(want in err and b"usage: session-manager-plugin start-session" in err,
                f"{args}: stderr {err!r}")
        T.check(out == b"", f"{args}: stdout {out!r}")
    rc, out, err = run_sa(["--help"])
    T.check(rc == 0 and out.startswith(b"usage: session-manager-plugin start-session"), f"{rc} {out!r}")


def test_api_and_config_errors():
    with T.Sim() as sim:
        rc, out, err = run_sa(["--target", "i-1", "--endpoint-url", sim.endpoint,
                               "--document-name", "No-Such-Document"])
        T.check(rc == 254, f"exit {rc}")
        T.check(b"An error occurred (InvalidDocument) when calling the StartSession operation" in err,
                f"stderr {err!r}")
    rc, out, err = run_sa(["--target", "i-1", "--endpoint-url", "http://127.0.0.1:9/"],
                          env=sa_env(region=None))
    T.check(rc == 253 and b"You must specify a region" in err, f"{rc} {err!r}")
    env = sa_env()
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    rc, out, err = run_sa(["--target", "i-1", "--endpoint-url", "http://127.0.0.1:9/"], env=env)
    T.check(rc == 253 and b"Unable to locate credentials" in err, f"{rc} {err!r}")


def test_start_session_alone_keeps_official_text():
    p = subprocess.run([T.plugin_path(), "start-session"], capture_output=True)
    T.check(p.stdout == b"\nUnknown operation start-session. \nUse session-manager-plugin --version "
            b"to check the version.\n\n" and p.returncode == 0, f"{p.returncode} {p.stdout!r}")


def test_drop_in_path_still_exits_zero():
    with T.Sim() as sim:
        resp = sim.start_session(doc=CMD_DOC, params={"command": ["exit 5"]})
        argv, env = T.plugin_invocation(resp, sim, doc=CMD_DOC)
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        T.check(b"EXIT_CODE: 5" in p.stdout, f"stdout {p.stdout!r}")
        T.check(p.returncode == 0, f"drop-in exit {p.returncode}")


if __name__ == "__main__":
    T.main([test_command_output_and_exit_code, test_json_parameters_reason_and_region_from_profile,
            test_port_session_listen_address_and_ready_file, test_interactive_shell_on_a_pty,
            test_usage_errors,
            test_api_and_config_errors, test_start_session_alone_keeps_official_text,
            test_drop_in_path_still_exits_zero])
