"""channel_closed with a long Output (the agent's reason for ending a
session can be long; the simulator's frames stop at 4 KiB): the plugin prints all of it in the §1.4 form
"\\n\\nSessionId: <sid> : <Output>\\n\\n" and exits 0, whatever its length."""
import ssmtest
from ssmtest import check


def test_long_output_printed_whole():
    reason = "".join(f"reason-{i:05d};" for i in range(250))  # 3.5 KB, near the frame limit
    with ssmtest.Sim("--close-after-ms", "400", "--close-output", reason) as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        proc = ssmtest.run_pipes(argv, env)
        out, err = proc.communicate(timeout=30)  # stdin stays open until the end
        check(proc.returncode == 0, f"exit {proc.returncode}: {err[-300:]!r}")
        want = f"\n\nSessionId: {r['SessionId']} : {reason}\n\n".encode()
        check(out.endswith(want), f"tail: {out[-200:]!r} ({len(out)} bytes)")


if __name__ == "__main__":
    ssmtest.main([test_long_output_printed_whole])
