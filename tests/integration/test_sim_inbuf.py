"""agent-sim keeps early client messages like the agent (many, not a
256-message window) but bounded by bytes: 3000 messages sent ahead of a
missing seq 0 are all acked and delivered in order once it arrives; past
SIM_IN_MAX_BYTES (16 MiB) early messages are refused (in_buffer_full, no ack)."""
import json

import ssmtest
from ssmtest import check


def open_echo(sim):
    r = sim.start_session(doc="Sim-Echo", params={"banner": [""]})
    c = ssmtest.Client(r)
    c.open()
    return c


def test_many_early_messages_are_kept():
    with ssmtest.Sim() as sim:
        c = open_echo(sim)
        n = 3000
        for i in range(1, n):
            c.send_input(ssmtest.PT_OUTPUT, b"%04d" % i, seq=i)
        acks = set()
        while len(acks) < n - 1:
            m = c.recv(timeout=10)
            if m["type"] == "acknowledge":
                acks.add(json.loads(m["payload"])["AcknowledgedMessageSequenceNumber"])
        c.send_input(ssmtest.PT_OUTPUT, b"0000", seq=0)
        s = ssmtest.Stream(c)
        want = b"".join(b"%04d" % i for i in range(n))
        s.pump(lambda s: len(s.data[1]) >= len(want), timeout=30)
        check(bytes(s.data[1]) == want, "in order after the gap filled")
        check(not sim.records(event="in_buffer_full"), "nothing refused")


def test_early_bytes_are_bounded():
    with ssmtest.Sim() as sim:
        c = open_echo(sim)
        big = b"x" * 3900
        n = (16 << 20) // len(big) + 50
        for i in range(1, n + 1):
            c.send_input(ssmtest.PT_OUTPUT, big, seq=i)
        full = sim.wait_record(event="in_buffer_full", timeout=20)
        check(full["seq"] > (16 << 20) // len(big) - 5, full)
        c.close()


if __name__ == "__main__":
    ssmtest.main([test_many_early_messages_are_kept, test_early_bytes_are_bounded])
