"""The simulated DRS in its own process, reached over HTTP like AWS.

In the product's tests and `make run` the sandbox answers a boto3 call in the calling thread
(drsorch.sandbox.transport's `before-send` handler). For a benchmark of the engine at DRS's
latency that shape is unfair to the engine: the simulator's CPU-bound answers run in the
engine's process, under its GIL, so ten targets' answers are computed one after another
inside the tick, where against AWS they are DRS's work on DRS's machines.

`--simulator process` in bench/engine.py starts this module as a separate process
(`python bench/simulator.py FOLDER PORT`): a threaded HTTP server, on the same SQLite
databases, that answers each forwarded request with the very same SandboxTransport. In the
engine's process `forward_to(port)` replaces the transport's answer with an HTTP round trip
to it, so the engine waits on a socket (GIL released) as it would on AWS, and botocore still
parses DRS's bytes exactly as before.
"""

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent


def start(folder, port):
    """Start the simulator process on `port` (databases in `folder`) and wait until it answers."""
    process = subprocess.Popen([sys.executable, str(HERE / "simulator.py"), str(folder), str(port)],
                               stdout=subprocess.DEVNULL)
    import urllib3

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib3.request("GET", f"http://127.0.0.1:{port}/ready", timeout=1, retries=False)
            return process
        except urllib3.exceptions.HTTPError:
            if process.poll() is not None:
                raise RuntimeError(f"The simulator process exited with {process.returncode}")
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("The simulator process did not answer within 30 s")


def forward_to(port):
    """In the engine's process: answer every sandbox call through the simulator process."""
    import urllib3
    from botocore.awsrequest import AWSResponse, HeadersDict

    from drsorch.sandbox import transport

    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=64, block=False, retries=False)

    def over_http(self, request, event_name="", **kwargs):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        answer = pool.urlopen("POST", "/call", body=body, headers={
            "X-Service": self.service_name, "X-Account": self.scope.account_id, "X-Region": self.scope.region,
            "X-Event": event_name, "X-Url": request.url, "Content-Type": "application/octet-stream",
        }, preload_content=True)
        headers = json.loads(answer.headers["X-Headers"])
        return AWSResponse(request.url, answer.status, HeadersDict(headers), transport._RawBody(answer.data))

    transport.SandboxTransport.__call__ = over_http


# One answer at a time, each call taking `--latency-ms` in all. The answers are CPU (one GIL)
# on SQLite (one writer): run together, writers meet SQLite's busy handler, which sleeps in
# steps of up to 100 ms instead of queueing, and a burst of StartRecovery calls then takes
# several times DRS's latency. So the answers queue for one lock, and a call that took less
# than the latency (answer and queueing included) waits out the rest, unlocked: like DRS, a
# call takes its latency, or longer when this simulator is the bottleneck.
_ANSWERING = threading.Lock()
_call = threading.local()


def _answer_alone(state):
    """The simulator process's `transport.wait_latency`: note the call's latency and take the
    answer lock for the rest of the answer (do_POST releases it, then waits what is left)."""
    _call.latency_ms = state.latency_ms
    if not getattr(_call, "locked", False):
        _ANSWERING.acquire()
        _call.locked = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per engine thread, as to AWS

    def do_GET(self):
        self._reply(200, {}, b"ready")

    def do_POST(self):
        from drsorch.sandbox.transport import SandboxTransport

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = SimpleNamespace(url=self.headers["X-Url"], body=body, method="POST", headers={})
        handler = SandboxTransport(service_name=self.headers["X-Service"], account_id=self.headers["X-Account"],
                                   region=self.headers["X-Region"])
        arrived, _call.latency_ms = time.monotonic(), 0
        try:
            response = handler(request, event_name=self.headers["X-Event"])
        finally:
            if getattr(_call, "locked", False):
                _call.locked = False
                _ANSWERING.release()
        time.sleep(max(0.0, _call.latency_ms / 1000 - (time.monotonic() - arrived)))
        self._reply(response.status_code, dict(response.headers.items()), response.content)

    def _reply(self, status, headers, body):
        self.send_response(status)
        self.send_header("X-Headers", json.dumps(headers))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(folder, port):
    """The simulator process: Django on the benchmark's databases, one thread per connection."""
    sys.path.insert(0, str(HERE.parent))
    os.environ.update({"DEBUG": "true", "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
                       "DJANGO_SETTINGS_MODULE": "drsorch.settings", "LOG_LEVEL": "WARNING"})
    os.environ.pop("DRSORCH_SANDBOX_DATABASE_URL", None)
    import django

    django.setup()
    from drsorch.sandbox import transport

    transport.wait_latency = _answer_alone
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
