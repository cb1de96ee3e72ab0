"""What a failed kms:GenerateDataKey puts in the HandshakeResponse and in
front of the user: the whole service message (a real AccessDenied names two
ARNs and runs to ~300 bytes; it used to be cut at 255, mid-word), shaped as
the newest official plugin (aws-sdk-go-v2) prints it:

  Failed to process action KMSEncryption:
  Error calling KMS GenerateDataKey API: operation error KMS: GenerateDataKey,
  https response error StatusCode: 400, RequestID: <x-amzn-RequestId>,
  <Code>: <Message>                 (codes GenerateDataKey's model declares)
  api error <Code>: <Message>       (any other code, e.g. AccessDeniedException)

Sessions run against agent-sim (KMS handshake); the failing KMS is either the
sim's own (unknown key: NotFoundException) or a fake one below that answers
AccessDeniedException with a long message."""
import http.server
import json
import re
import threading

import ssmtest
from ssmtest import check

KEY = "arn:aws:kms:us-east-1:111122223333:key/agent-sim-test"
REQUEST_ID = "7d1c0a62-5f0e-4d6b-9b57-3c2f6d1e8a90"
LONG_MESSAGE = (
    "User: arn:aws:sts::111122223333:assumed-role/SessionManagerOperatorsWithALongRoleName/"
    "operator.with.a.long.name@example.com is not authorized to perform: kms:GenerateDataKey on "
    "resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab "
    "because no identity-based policy allows the kms:GenerateDataKey action; the key policy of "
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab does not grant "
    "it either (final words: the-end-marker)")


class DenyingKms:
    """kms:GenerateDataKey that always answers 400 AccessDeniedException."""

    def __init__(self):
        self.calls = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.calls += 1
                body = json.dumps({"__type": "AccessDeniedException", "Message": LONG_MESSAGE}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", REQUEST_ID)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def refused_kms_error(sim):
    """The KMSEncryption error of the plugin's HandshakeResponse."""
    hs = sim.wait_record(event="handshake_response", timeout=15)
    resp = json.loads(hs["text"])
    kms = [a for a in resp["ProcessedClientActions"] if a["ActionType"] == "KMSEncryption"]
    check(len(kms) == 1 and kms[0]["ActionStatus"] == 2, resp)
    return kms[0]["Error"]


def run_refused(sim, kms_endpoint):
    r = sim.start_session()
    argv, env = ssmtest.plugin_invocation(r, sim, extra_env={"AWS_ENDPOINT_URL_KMS": kms_endpoint})
    p = ssmtest.run_pty(argv, env)
    p.read_until(b"KMSEncryption failed on client with status 2", timeout=15)
    check(p.wait(10) == 0, "exit status (the agent ended the session)")
    return refused_kms_error(sim), bytes(p.out)


def test_unmodelled_code_long_message_kept_whole():
    kms = DenyingKms()
    try:
        with ssmtest.Sim("--kms-key-id", KEY) as sim:
            err, out = run_refused(sim, f"http://127.0.0.1:{kms.port}")
            want = ("Failed to process action KMSEncryption: "
                    "Error calling KMS GenerateDataKey API: operation error KMS: GenerateDataKey, "
                    f"https response error StatusCode: 400, RequestID: {REQUEST_ID}, "
                    f"api error AccessDeniedException: {LONG_MESSAGE}")
            check(err == want, f"HandshakeResponse error:\n{err}\nwant:\n{want}")
            check(len(err) > 500, len(err))
            # What the user reads is the agent's text around ours. agent-sim
            # builds it in a 512-byte buffer (tests/agent-sim/handshake.c), so
            # only that much can come back; the real agent has no such cut.
            shown = ("KMSEncryption failed on client with status 2 error: " + want).encode()[:511]
            check(shown in out.replace(b"\r\n", b""), out[-900:])
            check(kms.calls == 1, kms.calls)
    finally:
        kms.close()


def test_modelled_code_with_the_sims_request_id():
    with ssmtest.Sim("--kms-key-id", "alias/not-there", "--kms-valid-key", KEY) as sim:
        err, _ = run_refused(sim, sim.endpoint.rstrip("/"))
        m = re.fullmatch(r"Failed to process action KMSEncryption: "
                         r"Error calling KMS GenerateDataKey API: operation error KMS: GenerateDataKey, "
                         r"https response error StatusCode: 400, RequestID: ([0-9a-f-]{36}), "
                         r"NotFoundException: Key 'alias/not-there' does not exist", err)
        check(m, err)
        check(sim.records(event="api_error")[-1]["__type"] == "NotFoundException", "KMS error recorded")


if __name__ == "__main__":
    ssmtest.main([test_unmodelled_code_long_message_kept_whole, test_modelled_code_with_the_sims_request_id])
