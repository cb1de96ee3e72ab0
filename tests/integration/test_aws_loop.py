"""The AWS API client on a bare lws loop (`while (!done) lws_service(ctx, 0)`,
no tick) against agent-sim's fake SSM API with SigV4 verification on:
runs the cmocka binary tests/unit/test_aws_loop with SSM_TEST_SSM_ENDPOINT
pointing at the simulator. That binary asserts each call reports within 5 s
(lws 4.1 used to sleep 30 s after a result delivered from an lws_sul), in a
handful of loop turns and little CPU time; here the simulator confirms the
StartSession it answered was the one made, and signed with the right key."""
import os
import subprocess

import ssmtest as T

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # as in test_aws_loop.c


def loop_binary():
    # SSM_AGENT_SIM is <build>/tests/agent-sim/agent-sim; the unit tests sit beside it.
    build_tests = os.path.dirname(os.path.dirname(T.env_path("SSM_AGENT_SIM")))
    path = os.path.join(build_tests, "unit", "test_aws_loop")
    T.check(os.access(path, os.X_OK), f"{path} is not built")
    return path


def test_start_session_on_a_bare_loop():
    with T.Sim("--access-key", AK, "--secret-key", SK, "--require-sigv4") as sim:
        env = dict(os.environ, SSM_TEST_SSM_ENDPOINT=sim.endpoint)
        p = subprocess.run([loop_binary()], env=env, capture_output=True, timeout=90)
        out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
        T.check(p.returncode == 0, f"test_aws_loop exited {p.returncode}:\n{out[-4000:]}")
        T.check("[  PASSED  ] 6 test(s)" in out, f"not every case ran:\n{out[-4000:]}")
        calls = [r for r in sim.records("api_call") if r["target"] == "AmazonSSM.StartSession"]
        T.check(len(calls) == 1, f"{len(calls)} StartSession calls reached the simulator")
        T.check(calls[0]["body"] == {"Target": "i-0123456789abcdef0",
                                     "DocumentName": "AWS-StartNonInteractiveCommand",
                                     "Parameters": {"command": ["true"]}}, f"body {calls[0]['body']}")
        sigs = [r for r in sim.records("sigv4") if r.get("kind") == "api"]
        T.check(sigs and sigs[-1]["ok"] and sigs[-1]["access_key"] == AK, f"signature {sigs}")


if __name__ == "__main__":
    T.main([test_start_session_on_a_bare_loop])
