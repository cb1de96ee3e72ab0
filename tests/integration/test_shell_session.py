"""Shell handler end to end through agent-sim on a pty: legacy and handshake
paths, typing, resize, Ctrl-C, a 100 KiB paste, termios restore, the
channel_closed texts, the ~ escapes and stdin EOF (PROTOCOL.md §10.1)."""
import hashlib
import os
import re
import signal
import time

import ssmtest
from ssmtest import check

SH_ENV = {"SIM_SHELL": "/bin/sh"}


def start(sim, doc=None, params=None, rows=30, cols=100, wrap=None):
    r = sim.start_session(doc=doc, params=params)
    argv, env = ssmtest.plugin_invocation(r, sim)
    env.update(SH_ENV)
    if wrap:
        argv = wrap(argv)
    p = ssmtest.run_pty(argv, env=env, rows=rows, cols=cols)
    p.read_until(f"Starting session with SessionId: {r['SessionId']}".encode())
    return r, p


def run_cmd(p, cmd, marker, timeout=10.0):
    """Types cmd and waits for marker in the output after the typing point."""
    start = len(p.out)
    p.write(cmd.encode() + b"\r")
    deadline = time.time() + timeout
    while marker.encode() not in bytes(p.out[start:]):
        if time.time() > deadline:
            raise ssmtest.TestFailure(f"no {marker!r}: {bytes(p.out[start:])[-400:]!r}")
        p._read_some(0.1)
    return bytes(p.out[start:])


def finish(p, sid):
    p.write(b"exit\r")
    p.read_until(f"\r\n\r\nExiting session with sessionId: {sid}.\r\n\r\n".encode(), timeout=10)
    check(p.wait(10) == 0, "exit status 0")


def test_legacy_shell_types_and_exits():
    os.environ.update(SH_ENV)
    with ssmtest.Sim() as sim:
        r, p = start(sim)
        out = run_cmd(p, "echo sum-$((40+2))", "sum-42")
        check(b"sum-42" in out, out)
        finish(p, r["SessionId"])


def test_handshake_shell_types_and_exits():
    os.environ.update(SH_ENV)
    with ssmtest.Sim("--handshake-shell") as sim:
        r, p = start(sim)
        run_cmd(p, "echo hs-$((6*7))", "hs-42")
        # The plugin answered the handshake with our version, SessionType ok.
        hs = sim.wait_record(event="recv", pred=lambda m: m.get("payload_type") == 6)
        text = hs.get("text", "")
        check('"ClientVersion":"' in text and '"ActionStatus":1' in text, hs)
        finish(p, r["SessionId"])


def test_resize_propagates():
    os.environ.update(SH_ENV)
    with ssmtest.Sim() as sim:
        r, p = start(sim, rows=30, cols=100)
        out = run_cmd(p, "stty size; echo m$((0+1))", "m1")
        check(b"30 100" in out, f"initial size sent: {out!r}")
        p.resize(41, 133)  # SIGWINCH to the plugin
        deadline = time.time() + 10
        while True:
            out = run_cmd(p, "stty size; echo m$((1+1))", "m2")
            if b"41 133" in out:
                break
            check(time.time() < deadline, f"remote size did not follow: {out!r}")
            time.sleep(0.2)
        finish(p, r["SessionId"])


def test_ctrl_c_interrupts_remote_sleep():
    os.environ.update(SH_ENV)
    with ssmtest.Sim() as sim:
        r, p = start(sim)
        run_cmd(p, "echo rea$((0))dy", "rea0dy")
        t0 = time.time()
        p.write(b"sleep 30; echo slept-$((1+1))\r")
        time.sleep(0.5)
        p.write(b"\x03")  # local ISIG -> SIGINT -> plugin sends 0x03
        p.read_until(b"^C")  # the remote pty saw it (and flushed its input)
        run_cmd(p, "echo after-$((2+2))", "after-4")
        check(time.time() - t0 < 10, "sleep was interrupted")
        check(b"slept-2" not in bytes(p.out), "sleep did not complete")
        check(p.status is None, "plugin still running after Ctrl-C")
        finish(p, r["SessionId"])


def test_paste_100k_intact():
    with ssmtest.Sim() as sim:
        r, p = start(sim, doc="Sim-Echo")
        p.read_until(b"Sim-Echo ready")
        data = hashlib.sha256(b"seed").hexdigest().encode() * (100 * 1024 // 64)
        base = len(p.out)
        off = 0
        while off < len(data):  # a pty master may take less than asked
            off += os.write(p.fd, data[off:off + 4096])
            p._read_some(0)
        deadline = time.time() + 20
        while len(p.out) - base < len(data):
            check(time.time() < deadline, f"only {len(p.out) - base} of {len(data)} echoed")
            p._read_some(0.2)
        got = bytes(p.out[base:base + len(data)])
        check(got == data, "100 KiB paste echoed byte for byte")
        os.kill(p.pid, signal.SIGTERM)
        check(p.wait(10) == 0, "exit 0 on SIGTERM")


def test_termios_restored_on_exit_and_sigterm():
    os.environ.update(SH_ENV)
    with ssmtest.Sim() as sim:
        wrap = lambda argv: ["/bin/sh", "-c", 'stty -g; echo BEFORE; "$@"; echo rc=$?; stty -g; echo AFTER', "sh", *argv]
        for how in ("exit", "sigterm", "escape"):
            r, p = start(sim, wrap=wrap)
            if how == "exit":
                run_cmd(p, "echo in-$((3+4))", "in-7")
                p.write(b"exit\r")
            elif how == "sigterm":
                run_cmd(p, "echo in-$((3+4))", "in-7")
                pids = os.popen(f"pgrep -P {p.pid}").read().split()
                check(pids, "plugin pid")
                os.kill(int(pids[0]), signal.SIGTERM)
            else:
                run_cmd(p, "echo in-$((3+4))", "in-7")
                p.write(b"\r~.")
            p.read_until(b"AFTER", timeout=15)
            out = bytes(p.out).replace(b"\r\n", b"\n")
            before = re.search(rb"\n?([0-9a-f:]+)\nBEFORE", out)
            after = re.search(rb"rc=(\d+)\n([0-9a-f:]+)\nAFTER", out)
            check(before and after, f"{how}: stty lines: {out[-300:]!r}")
            check(after.group(1) == b"0", f"{how}: exit status {after.group(1)!r}: {out[-600:]!r}")
            check(before.group(1) == after.group(2), f"{how}: termios restored")
            p.wait(10)


def test_channel_closed_texts():
    with ssmtest.Sim("--close-after-ms", "700", "--close-output", "Session ended by admin") as sim:
        r, p = start(sim, doc="Sim-Echo")
        want = f"\r\n\r\nSessionId: {r['SessionId']} : Session ended by admin\r\n\r\n".encode()
        p.read_until(want, timeout=10)
        check(p.wait(10) == 0, "exit 0 after channel_closed")
    with ssmtest.Sim("--close-after-ms", "700") as sim:
        r, p = start(sim, doc="Sim-Echo")
        want = f"\r\n\r\nExiting session with sessionId: {r['SessionId']}.\r\n\r\n".encode()
        p.read_until(want, timeout=10)
        check(p.wait(10) == 0, "exit 0 after channel_closed")


def test_escapes_help_literal_and_disable():
    with ssmtest.Sim() as sim:
        r, p = start(sim, doc="Sim-Echo")
        p.read_until(b"Sim-Echo ready")
        base = len(p.out)
        p.write(b"a\r~?")
        # The official plugin's help, byte for byte (PROTOCOL-NEWEST §4.1), as
        # the pty shows it (its output processing turns each \n into \r\n).
        help_text = (b"\r\nSupported escape sequence commands:\r\n"
                     b"  ~? - this help message\r\n"
                     b"  ~~ - send the ~ character to the remote target\r\n"
                     b"  ~- - disable escape sequences for the rest of this session\r\n"
                     b"  ~. - disconnect and terminate session\r\n"
                     b"(Note that escapes are only recognized immediately after newline.)\r\n")
        p.read_until(help_text.replace(b"\r\n", b"\r\r\n"))
        p.write(b"b\r~~c\r~-")
        p.read_until(b"disabled")
        p.write(b"\r~.end\r")
        deadline = time.time() + 10
        while b"~.end" not in bytes(p.out[base:]):
            check(time.time() < deadline, f"echo: {bytes(p.out[base:])!r}")
            p._read_some(0.1)
        echoed = bytes(p.out[base:]).replace(b"\r\n", b"\n")
        # Echo of what was sent: "a\r", "b\r~c\r", then after ~- everything literally.
        check(b"~c" in echoed and b"~~c" not in echoed, f"~~ sends one ~: {echoed!r}")
        check(b"~.end" in echoed, f"~. literal once disabled: {echoed!r}")
        check(p.status is None, "still running")
        os.kill(p.pid, signal.SIGTERM)
        p.wait(10)


def test_piped_stdin_eof_waits_for_output():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        proc = ssmtest.run_pipes(argv, env)
        t0 = time.time()
        out, _ = proc.communicate(b"piped-line-1\npiped-line-2\n", timeout=20)
        check(proc.returncode == 0, f"exit {proc.returncode}")
        check(time.time() - t0 < 8, "ends within seconds of EOF")
        check(b"piped-line-1\npiped-line-2\n" in out, f"output before exit: {out!r}")
        check(out.endswith(b"Cannot perform start session: EOF\n"), f"EOF text: {out[-80:]!r}")


def test_control_signals_are_forwarded():
    with ssmtest.Sim() as sim:
        r, p = start(sim, doc="Sim-Echo")
        p.read_until(b"Sim-Echo ready")
        for sig, byte in ((signal.SIGQUIT, b"\x1c"), (signal.SIGTSTP, b"\x1a"), (signal.SIGINT, b"\x03")):
            base = len(p.out)
            os.kill(p.pid, sig)
            deadline = time.time() + 10
            while byte not in bytes(p.out[base:]):
                check(time.time() < deadline, f"{sig!r} not forwarded as {byte!r}")
                p._read_some(0.1)
        check(p.status is None, "the plugin itself was not stopped or interrupted")
        os.kill(p.pid, signal.SIGTERM)
        check(p.wait(10) == 0, "exit 0")


def test_size_defaults_to_300x100_without_a_tty():
    os.environ.update(SH_ENV)
    with ssmtest.Sim() as sim:
        r = sim.start_session()
        argv, env = ssmtest.plugin_invocation(r, sim)
        env.update(SH_ENV)
        proc = ssmtest.run_pipes(argv, env)
        out, _ = proc.communicate(b"stty size; echo sz$((1+1))\nexit\n", timeout=20)
        check(proc.returncode == 0, f"exit {proc.returncode}")
        check(b"100 300" in out, f"remote pty got 300x100: {out[-300:]!r}")


if __name__ == "__main__":
    ssmtest.main([
        test_legacy_shell_types_and_exits,
        test_handshake_shell_types_and_exits,
        test_resize_propagates,
        test_ctrl_c_interrupts_remote_sleep,
        test_paste_100k_intact,
        test_termios_restored_on_exit_and_sigterm,
        test_channel_closed_texts,
        test_escapes_help_literal_and_disable,
        test_piped_stdin_eof_waits_for_output,
        test_control_signals_are_forwarded,
        test_size_defaults_to_300x100_without_a_tty,
    ])
