#!/usr/bin/env python3
"""Peak memory of the plugin in an interactive shell session (not a test).

    bench/shell_rss.py PLUGIN AGENT_SIM [OFFICIAL_PLUGIN]

Runs the default shell document through each plugin on a pty against
agent-sim, and prints VmHWM / VmRSS (/proc/PID/status) and Private_Dirty
(/proc/PID/smaps_rollup): once the shell is idle at its prompt, and after a
100 KiB paste has been echoed back in full."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import ssmtest  # noqa: E402


def mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                out["Private_Dirty"] = int(line.split()[1])
    return out


def measure(plugin, sim_bin):
    os.environ["SSM_PLUGIN"] = plugin
    os.environ["SSM_AGENT_SIM"] = sim_bin
    os.environ["SIM_SHELL"] = "/bin/sh"
    with ssmtest.Sim() as sim:
        resp = sim.start_session()
        argv, env = ssmtest.plugin_invocation(resp, sim)
        argv[0] = plugin
        p = ssmtest.run_pty(argv, env)
        try:
            p.read_until(b"SessionId", timeout=15)
            time.sleep(1.0)
            time.sleep(2.0)
            idle = mem(p.pid)
            # A paste: 100 KiB of printable lines, counted back by the remote shell.
            p.write(b"stty -echo; cat > /tmp/shell_rss_paste; stty echo\n")
            time.sleep(0.5)
            line = b"x" * 99 + b"\n"
            blob = line * 1024
            for i in range(0, len(blob), 4096):
                os.write(p.fd, blob[i:i + 4096])
                p._read_some(0)
            os.write(p.fd, b"\x04")
            p.write(b"wc -c < /tmp/shell_rss_paste\n")
            p.read_until(b"102400", timeout=60)
            paste = mem(p.pid)
            p.write(b"exit\n")
            p.wait(15)
        finally:
            p.kill()
    return idle, paste


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    plugins = [("ours", sys.argv[1])]
    if len(sys.argv) > 3:
        plugins.append(("official", sys.argv[3]))
    print("| plugin | idle VmHWM KiB | idle Private_Dirty KiB | after 100 KiB paste VmHWM KiB | Private_Dirty KiB |")
    print("|---|---|---|---|---|")
    for name, path in plugins:
        idle, paste = measure(path, sys.argv[2])
        print(f"| {name} | {idle['VmHWM']} | {idle['Private_Dirty']} | {paste['VmHWM']} | {paste['Private_Dirty']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
