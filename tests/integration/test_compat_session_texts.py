"""Shell, command, stdio and argv transcripts pinned to the OFFICIAL plugin's bytes.

Every expected stdout below was observed byte for byte from a locally built
official plugin (1.2.677.0 stamp) run against agent-sim in the same scenario,
side by side with ours (audit, November 2026); only the session id is
substituted. The official binary is not needed to run this test (set
SSM_PLUGIN to an official build to re-check the pins themselves).
Evidence in the official source: session/session.go, sessionhandler.go,
datachannel/streaming.go, shellsession/shellsession*.go,
portsession/standardstreamforwarding.go."""
import json
import os
import signal
import subprocess
import threading
import time

import ssmtest
from ssmtest import check

NIC_DOC = "AWS-StartNonInteractiveCommand"


def start(sid):
    return f"\nStarting session with SessionId: {sid}\n"


def exiting(sid):
    return f"\n\nExiting session with sessionId: {sid}.\n\n"


Piped = ssmtest.Piped


def expect(out, rc, text, want_rc=0):
    check(rc == want_rc, f"exit status {rc}, want {want_rc}")
    check(bytes(out) == text.encode(), "stdout differs from the official bytes:\n"
          f"  got  {bytes(out)!r}\n  want {text.encode()!r}")


def test_noninteractive_command_transcripts():
    """Merged and separate streams print the same; EXIT_CODE has no newline of
    its own; the remote exit code does not become ours."""
    for separate in (False, True):
        with ssmtest.Sim() as sim:
            params = {"command": ["echo out-1; echo err-2 >&2; exit 3"]}
            if separate:
                params["separateOutputStream"] = ["true"]
            resp = sim.start_session(doc=NIC_DOC, params=params)
            sid = resp["SessionId"]
            argv, env = ssmtest.plugin_invocation(resp, sim, doc=NIC_DOC)
            pp = Piped(argv, env)  # stdin stays open: the session ends by channel_closed
            rc = pp.finish()
            expect(pp.out, rc, start(sid) + "out-1\nerr-2\nEXIT_CODE: 3" + exiting(sid))


def test_ecs_lowercase_inline_response_transcript():
    """aws ecs execute-command's inline JSON with lowercase keys."""
    with ssmtest.Sim() as sim:
        resp = sim.start_session(doc=NIC_DOC, params={"command": ["echo ecs-ok"]})
        sid = resp["SessionId"]
        argv, env = ssmtest.plugin_invocation(resp, sim, doc=NIC_DOC, mode="argv")
        argv[1] = json.dumps({"sessionId": sid, "streamUrl": resp["StreamUrl"],
                              "tokenValue": resp["TokenValue"]})
        argv[5] = json.dumps({"Target": "ecs:cluster_task_runtime"})
        pp = Piped(argv, env)
        rc = pp.finish()
        expect(pp.out, rc, start(sid) + "ecs-ok\nEXIT_CODE: 0" + exiting(sid))


def test_stdin_eof_transcript():
    with ssmtest.Sim() as sim:
        resp = sim.start_session(doc="Sim-Echo")
        sid = resp["SessionId"]
        argv, env = ssmtest.plugin_invocation(resp, sim, doc="Sim-Echo")
        pp = Piped(argv, env)
        pp.wait_for(b"Sim-Echo ready\r\n")
        pp.write(b"hello\n")
        pp.wait_for(b"hello\n")
        time.sleep(0.5)
        pp.p.stdin.close()
        rc = pp.finish()
        expect(pp.out, rc, start(sid) + "Sim-Echo ready\r\nhello\nCannot perform start session: EOF\n")


def test_resume_without_token_transcript():
    """ResumeSession without a token: 'Session: <sid> timed out.' and exit 0,
    whether the cut is a reset or a close frame."""
    for mode in ("reset", "close"):
        with ssmtest.Sim("--cut-after-msgs", "3", "--resume-empty-token", "--cut-mode", mode) as sim:
            resp = sim.start_session(doc="Sim-Echo")
            sid = resp["SessionId"]
            argv, env = ssmtest.plugin_invocation(resp, sim, doc="Sim-Echo")
            pp = Piped(argv, env)
            pp.wait_for(b"Sim-Echo ready\r\n")
            for i in range(10):
                if pp.p.poll() is not None:
                    break
                try:
                    pp.write(b"line%d\n" % i)
                except (BrokenPipeError, OSError):
                    break
                time.sleep(0.1)
            rc = pp.finish()
            out = bytes(pp.out)
            head = (start(sid) + "Sim-Echo ready\r\n").encode()
            tail = f"Session: {sid} timed out.\n".encode()
            check(rc == 0, f"exit status {rc}")
            check(out.startswith(head) and out.endswith(tail), f"stdout {out!r}")
            middle = out[len(head):-len(tail)]
            # The cut may come before or after some echoes arrive.
            check(middle == b"" or (middle.endswith(b"\n") and all(
                line.startswith(b"line") for line in middle.split(b"\n")[:-1])),
                f"only echoed lines before the text: {middle!r}")


def test_legacy_cli_kms_refusal_transcript():
    """argc 4 (old CLI): KMSEncryption refused; the agent's reason comes back
    in channel_closed and is printed in the 'SessionId: ... : ...' form."""
    with ssmtest.Sim("--kms-key-id", "alias/compat") as sim:
        resp = sim.start_session()
        sid = resp["SessionId"]
        argv, env = ssmtest.plugin_invocation(resp, sim, mode="argv")
        pp = Piped(argv[:4], env)
        rc = pp.finish()
        expect(pp.out, rc, start(sid) + f"\n\nSessionId: {sid} : KMSEncryption failed on client with "
               "status 2 error: Failed to process action KMSEncryption: Installed version of CLI "
               "does not support Session Manager encryption feature. Please upgrade to the latest "
               "version of your CLI (e.g., AWS CLI).\n\n")


def test_ssh_stdio_transcripts():
    """Standard-stream mode: only the start line, then the raw bytes; stdin EOF
    exits 0; no signal handlers, so SIGINT kills it as it kills the official."""
    import socket
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            with c:
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
    threading.Thread(target=serve, daemon=True).start()
    for how in ("eof", "sigint"):
        with ssmtest.Sim() as sim:
            doc = "AWS-StartSSHSession"
            resp = sim.start_session(doc=doc, params={"portNumber": [str(ls.getsockname()[1])]})
            sid = resp["SessionId"]
            argv, env = ssmtest.plugin_invocation(resp, sim, doc=doc)
            pp = Piped(argv, env)
            pp.write(b"SSH-2.0-compat\r\n")
            pp.wait_for(b"SSH-2.0-compat\r\n")
            if how == "eof":
                pp.p.stdin.close()
                want_rc = 0
            else:
                time.sleep(0.3)
                pp.p.send_signal(signal.SIGINT)
                want_rc = -signal.SIGINT
            rc = pp.finish()
            expect(pp.out, rc, start(sid) + "SSH-2.0-compat\r\n", want_rc)
    ls.close()


def test_ssh_stdio_destination_close_transcript():
    """The destination hangs up: its bytes, then channel_closed's exit text
    (after the SSH stream, on the same stdout), exit 0."""
    import socket
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)

    def serve():
        try:
            c, _ = ls.accept()
        except OSError:
            return
        with c:
            c.sendall(b"SSH-2.0-server\r\n")
            time.sleep(0.3)
    threading.Thread(target=serve, daemon=True).start()
    with ssmtest.Sim() as sim:
        doc = "AWS-StartSSHSession"
        resp = sim.start_session(doc=doc, params={"portNumber": [str(ls.getsockname()[1])]})
        sid = resp["SessionId"]
        argv, env = ssmtest.plugin_invocation(resp, sim, doc=doc)
        pp = Piped(argv, env)
        rc = pp.finish()
        expect(pp.out, rc, start(sid) + "SSH-2.0-server\r\n" + exiting(sid))
    ls.close()


def test_shell_pty_framing_and_channel_closed_texts():
    """On a terminal (ONLCR adds the CRs): the start line, 'exit' ending with the
    exit text, and channel_closed with and without Output."""
    with ssmtest.Sim() as sim:
        resp = sim.start_session()
        sid = resp["SessionId"]
        argv, env = ssmtest.plugin_invocation(resp, sim)
        p = ssmtest.run_pty(argv, env)
        p.read_until(f"Starting session with SessionId: {sid}\r\n".encode())
        time.sleep(0.5)
        p.write(b"exit\r")
        out = p.read_until(f"Exiting session with sessionId: {sid}.\r\n\r\n".encode())
        check(p.wait(10) == 0, "exit status")
        out = bytes(p.out)
        check(out.startswith(f"\r\nStarting session with SessionId: {sid}\r\n".encode()), repr(out))
        check(out.endswith(f"exit\r\r\n\r\n\r\nExiting session with sessionId: {sid}.\r\n\r\n".encode()),
              repr(out[-120:]))
    for reason, tail in (("Session terminated by admin", "\r\n\r\nSessionId: {sid} : Session terminated by admin\r\n\r\n"),
                         ("", "\r\n\r\nExiting session with sessionId: {sid}.\r\n\r\n")):
        flags = ["--close-after-ms", "1500"] + (["--close-output", reason] if reason else [])
        with ssmtest.Sim(*flags) as sim:
            resp = sim.start_session()
            sid = resp["SessionId"]
            argv, env = ssmtest.plugin_invocation(resp, sim)
            p = ssmtest.run_pty(argv, env)
            check(p.wait(15) == 0, "exit status")
            out = bytes(p.out)
            check(out.startswith(f"\r\nStarting session with SessionId: {sid}\r\n".encode()), repr(out))
            check(out.endswith(tail.format(sid=sid).encode()), repr(out[-160:]))


def run_argv(*args):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    p = subprocess.run([ssmtest.plugin_path(), *args], stdin=subprocess.DEVNULL,
                       capture_output=True, env=env, timeout=20)
    check(p.stderr == b"", f"stderr {p.stderr!r}")
    return p.returncode, p.stdout


def test_argv_texts():
    unknown = "\nUnknown operation {}. \nUse session-manager-plugin --version to check the version.\n\n"
    rc, out = run_argv()
    expect(out, rc, "\nThe Session Manager plugin was installed successfully. Use the AWS CLI to start a session.\n\n")
    for args in (["--help"], ["-v"], ["a", "b"], ["--version", "x"], [""], ["start-session"]):
        rc, out = run_argv(*args)
        expect(out, rc, unknown.format(args[0]))
    # The operation is checked before the response JSON, which may be garbage.
    rc, out = run_argv("x", "us-east-1", "Foo")
    expect(out, rc, "Invalid Operation")
    good = json.dumps({"SessionId": "s", "StreamUrl": "ws://127.0.0.1:1/x", "TokenValue": "t"})
    rc, out = run_argv(good, "us-east-1", "Bogus", "", '{"Target":"i-1"}', "https://x")
    expect(out, rc, "Invalid Operation")


if __name__ == "__main__":
    ssmtest.main([test_noninteractive_command_transcripts, test_ecs_lowercase_inline_response_transcript,
                  test_stdin_eof_transcript, test_resume_without_token_transcript,
                  test_legacy_cli_kms_refusal_transcript, test_ssh_stdio_transcripts,
                  test_ssh_stdio_destination_close_transcript,
                  test_shell_pty_framing_and_channel_closed_texts, test_argv_texts])
