"""agent-sim: legacy shell path (SYN on seq 0, pty, Size), interactive
commands, and the session end (drain, channel_closed with Output "")."""
import json
import os

import ssmtest
from ssmtest import check


def test_legacy_shell_output_syn_seq0_and_size():
    with ssmtest.Sim() as sim:
        r = sim.start_session()  # no DocumentName = the default shell
        c = ssmtest.Client(r)
        c.open()
        first = c.recv(timeout=10)
        check(first["type"] == "output_stream_data", first)
        check(first["seq"] == 0 and first["flags"] == 1 and first["payload_type"] == 1, first)
        check(first["schema"] == 1 and first["payload"], first)
        c.ack(first)
        c.send_input(ssmtest.PT_SIZE, b'{"cols":132,"rows":43}')
        c.send_input(ssmtest.PT_OUTPUT, b"stty size; echo mark$((6*7))\r")
        s = ssmtest.Stream(c)
        s.expected = 1
        s.pump(lambda s: b"mark42" in s.data[1])
        check(b"43 132" in s.data[1], f"pty resized: {bytes(s.data[1])!r}")
        later = [m for m in c.received if m["type"] == "output_stream_data" and m["seq"] > 0]
        check(all(m["flags"] == 0 for m in later), "SYN only on seq 0")
        check(all(len(m["payload"]) <= 1024 for m in later), "chunks <= 1024")
        size = sim.wait_record(event="size")
        check(size["cols"] == 132 and size["rows"] == 43 and size["applied"], size)
        c.send_input(ssmtest.PT_OUTPUT, b"exit\r")
        s.pump(lambda s: s.closed is not None)
        check(s.closed["Output"] == "" and s.closed["SessionId"] == r["SessionId"], s.closed)
        end = sim.wait_record(event="session_end")
        check(end["unacked"] == 0, f"drained before channel_closed: {end}")


def test_sim_shell_env_and_binary_output():
    os.environ["SIM_SHELL"] = "/bin/sh"
    try:
        with ssmtest.Sim() as sim:
            r = sim.start_session(doc="SSM-SessionManagerRunShell")
            c = ssmtest.Client(r)
            c.open()
            s = ssmtest.Stream(c)
            # /bin/sh without -i prints no prompt: type a command straight away.
            c.send_input(ssmtest.PT_SIZE, b'{"cols":80,"rows":24}')
            c.send_input(ssmtest.PT_OUTPUT, b"head -c 5000 /dev/zero | tr '\\0' x; echo END\r")
            s.pump(lambda s: b"END\r\n" in s.data[1].replace(b"echo END", b""), timeout=15)
            check(s.data[1].count(b"x") >= 5000, "5000 bytes arrived")
            check(max(len(m["payload"]) for m in s.messages) <= 1024, "chunked")
            check(sim.wait_record(event="process_start")["command"] == "(shell)", "shell started")
    finally:
        del os.environ["SIM_SHELL"]


def test_interactive_command_runs_and_ends():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="AWS-StartInteractiveCommand",
                              params={"command": ["echo interactive-$((2+3)); exit 3"]})
        c = ssmtest.Client(r)
        c.open()
        s = ssmtest.Stream(c)
        s.pump(lambda s: s.closed is not None)
        check(b"interactive-5" in s.data[1], bytes(s.data[1]))
        check(s.messages[0]["seq"] == 0 and s.messages[0]["flags"] == 1, "legacy path, SYN on 0")
        check(s.closed["Output"] == "", s.closed)
        ex = sim.wait_record(event="process_exit")
        check(ex["exit_code"] == 3, ex)
        st = sim.wait_record(event="behaviour_start")
        check(st["session_type"] == "InteractiveCommands", st)


def test_pty_output_never_splits_utf8():
    with ssmtest.Sim() as sim:
        # One 1026-byte write: 1023 x 'a' then the 3-byte euro sign, twice.
        cmd = "for i in 1 2; do printf '%s\\342\\202\\254' \"$(head -c 1023 /dev/zero | tr '\\0' a)\"; done"
        r = sim.start_session(doc="AWS-StartInteractiveCommand", params={"command": [cmd]})
        c = ssmtest.Client(r)
        c.open()
        s = ssmtest.Stream(c)
        s.pump(lambda s: s.closed is not None)
        out = bytes(s.data[1])
        check(out.count("\u20ac".encode()) == 2 and out.count(b"a") == 2046, out[-50:])
        for m in s.messages:
            m["payload"].decode("utf-8")  # raises if a chunk ends inside a sequence
        check(max(len(m["payload"]) for m in s.messages) <= 1024, "chunks <= 1024")


if __name__ == "__main__":
    ssmtest.main([test_legacy_shell_output_syn_seq0_and_size, test_sim_shell_env_and_binary_output,
                  test_interactive_command_runs_and_ends, test_pty_output_never_splits_utf8])
