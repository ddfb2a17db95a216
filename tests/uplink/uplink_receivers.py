"""Real receivers for the uplink tests (fixtures in conftest.py): a stdlib HTTP server with failure modes, and Mosquitto.

Both de-duplicate by idempotency key, the way a real ingest service would.
"""
from __future__ import annotations

import getpass
import gzip
import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class Receiver:
    """HTTP ingest endpoint. mode: "ok", "error" (500), "hang" (never answers), "slow" (delay then ok).

    ``by_key`` holds the first envelope seen per idempotency key; ``arrivals`` the keys in arrival order
    (duplicates included); ``requests`` counts POSTs; ``headers`` the last request's headers.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"
        self.slow_s = 0.05
        self.lock = threading.Lock()
        self.by_key: Dict[str, dict] = {}
        self.arrivals: List[str] = []
        self.requests = 0
        self.hanging = 0
        self.headers: Dict[str, str] = {}
        self.fail_every = 0  # >0: answer 500 to every n-th request (flaky server)
        self.reject_if = None  # callable(envelope) -> True to answer 400 for a batch holding it
        self.answer_first: List[tuple] = []  # (status, {header: value}) answered to the next requests, in order
        self.times: List[float] = []  # monotonic arrival time of every POST
        self.release = threading.Event()
        self.conns: List[socket.socket] = []  # open keep-alive connections, cut on stop()
        self.server = None
        self.url = f"http://127.0.0.1:{self.port}/ingest"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def setup(self):
                super().setup()
                with receiver.lock:
                    receiver.conns.append(self.connection)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests += 1
                    receiver.times.append(time.monotonic())
                    receiver.headers = dict(self.headers)
                    flaky = receiver.fail_every and receiver.requests % receiver.fail_every == 0
                    canned = receiver.answer_first.pop(0) if receiver.answer_first else None
                if canned is not None:
                    return self._answer(canned[0], b"busy", canned[1])
                mode = "error" if flaky else receiver.mode
                if mode == "hang":
                    with receiver.lock:
                        receiver.hanging += 1
                    receiver.release.wait(60)
                    self.close_connection = True  # hang up without an answer
                    return
                if mode == "slow":
                    time.sleep(receiver.slow_s)
                if mode == "error":
                    return self._answer(500, b"boom")
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                records = json.loads(raw)["records"]
                if receiver.reject_if and any(receiver.reject_if(r) for r in records):
                    return self._answer(400, b"bad record")
                with receiver.lock:
                    for env in records:
                        receiver.arrivals.append(env["key"])
                        receiver.by_key.setdefault(env["key"], env)
                self._answer(200, b'{"ok":true}')

            def _answer(self, code, body, headers=None):
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def start(self, *, tls_cert=None) -> "Receiver":
        self.release.clear()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        if tls_cert is not None:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls_cert[0]), str(tls_cert[1]))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://127.0.0.1:{self.port}/ingest"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until start() again (same port)."""
        if self.server is not None:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None
            with self.lock:
                conns, self.conns = self.conns, []
            for conn in conns:  # a stopped server must not keep serving kept-alive connections
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def values(self, field: str = "n") -> List[int]:
        with self.lock:
            return [env["record"][field] for env in self.by_key.values()]



def fill_disk(directory: Path) -> Path:
    """Write zeros into ``directory/filler`` until the file system says ENOSPC; returns the filler."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(chunk)
            except OSError:
                break
        for size in (4096, 512, 1):  # the last pages too
            try:
                while True:
                    fh.write(chunk[:size])
            except OSError:
                pass
    return filler


class Broker:
    """Mosquitto on 127.0.0.1 with persistence, so a graceful restart keeps subscriber sessions."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir}/\nautosave_interval 1\nmax_queued_messages 0\nmax_inflight_messages 0\n"
            # As root, mosquitto drops to user 'mosquitto', who cannot write into pytest's tmp dir.
            f"user {getpass.getuser()}\n"
            f"log_dest file {workdir}/mosquitto.log\nlog_type error\nlog_type warning\n"
        )
        self.log = workdir / "mosquitto.log"
        self.proc = None

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_until(self._listening, 10):
            raise RuntimeError("mosquitto did not start")
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


class Subscriber:
    """QoS 1 subscriber with a persistent session (clean_session=False) that de-duplicates by key."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.lock = threading.Lock()
        self.by_key: Dict[str, dict] = {}
        self.arrivals: List[str] = []
        self.subscribed = threading.Event()
        self.messages = 0
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}", clean_session=False)
        c.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        c.on_connect = lambda client, u, f, rc, p: (client.subscribe(topic, qos=1), self.subscribed.set())
        c.on_message = self._on_message
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        self.client = c
        if not self.subscribed.wait(10):
            raise RuntimeError("subscriber did not connect")
        time.sleep(0.2)  # let SUBACK land before anything is published

    def _on_message(self, client, userdata, msg):
        data = json.loads(msg.payload)
        envelopes = data["records"] if "records" in data else [data]  # packed or one per message
        with self.lock:
            self.messages += 1
            for env in envelopes:
                self.arrivals.append(env["key"])
                self.by_key.setdefault(env["key"], env)

    def values(self, field: str = "n") -> List[int]:
        with self.lock:
            return [env["record"][field] for env in self.by_key.values()]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Producer:
    """A producer thread putting ``{"source": "cam0", "n": n}`` every ``period`` seconds; ``produced``
    lists the n the uplink accepted (put returned True), in order."""

    def __init__(self, uplink, *, period: float) -> None:
        self.produced: list = []
        self._up, self._period = uplink, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            if self._up.put({"source": "cam0", "n": n}):
                self.produced.append(n)
            n += 1
            time.sleep(self._period)

    def start(self) -> "Producer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
