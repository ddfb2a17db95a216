#!/usr/bin/env python3
"""Uplink benchmarks: put() latency (server down / up), sustained delivery to HTTP and MQTT, recovery.

Receivers run in their own processes (a stdlib HTTP server; Mosquitto), so they do not compete
with the uplink for the GIL. Targets: put() p99 <= 50 us; >= 5,000 records/s to each transport.

Also: put() latency under full_policy="reject_new" (put() serialises to reserve spool room), and
what a SIGKILL loses from the memory ring at 1,000 records/s with default settings (counted on the
next start as lost_in_ring).

Usage: .venv/bin/python scripts/bench_uplink.py [--records 50000] [--backlog 100000] [--json out.json]
       .venv/bin/python scripts/bench_uplink.py --quick   # put() latency and the SIGKILL loss only
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine import machine_info  # scripts/ is sys.path[0]

from edgeinfer.uplink import Uplink  # noqa: E402

RECORD = {"source": "cam0", "frame": 0, "ts": 0.0,
          "detections": [{"cls": 1, "conf": 0.87, "xyxy": [12.5, 40.0, 118.25, 200.5]},
                         {"cls": 2, "conf": 0.55, "xyxy": [300.0, 10.0, 340.0, 90.0]}]}

HTTP_SERVER = r"""
import gzip, json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        json.loads(body)  # a real ingest parses what it gets
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_http(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HTTP_SERVER, str(port)])
    wait_port(port)
    return proc


def start_mosquitto(port: int, workdir: Path) -> subprocess.Popen:
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)


def percentile(sorted_ns, q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000.0


def put_latency(up: Uplink, n: int, rate_hz: float) -> dict:
    """put() latency in microseconds for n records paced at rate_hz (a camera-like producer)."""
    lat = []
    period = 1.0 / rate_hz
    next_t = time.perf_counter()
    clock = time.perf_counter_ns
    for i in range(n):
        rec = dict(RECORD, frame=i)
        t0 = clock()
        up.put(rec)
        lat.append(clock() - t0)
        next_t += period
        delay = next_t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    lat.sort()
    return {"n": n, "rate_hz": rate_hz, "p50_us": percentile(lat, 0.50), "p99_us": percentile(lat, 0.99),
            "p999_us": percentile(lat, 0.999), "max_us": lat[-1] / 1000.0}


KILL_CHILD = r"""
import logging, sys, time
from edgeinfer.uplink import Uplink
logging.disable(logging.WARNING)  # the server is down on purpose
up = Uplink(sys.argv[1], spool_dir=sys.argv[2], backoff_initial=30.0)
rec = {"source": "cam0", "frame": 0, "detections": [{"cls": 1, "conf": 0.87, "xyxy": [12.5, 40.0, 118.25, 200.5]}]}
period, next_t, n = 1.0 / float(sys.argv[3]), time.perf_counter(), 0
print("ready", flush=True)
while True:
    up.put(dict(rec, frame=n)); n += 1
    next_t += period
    d = next_t - time.perf_counter()
    if d > 0:
        time.sleep(d)
"""


def kill9_loss(work: Path, rate_hz: float, runs: int) -> dict:
    """Records a SIGKILL leaves in the memory ring at rate_hz (default knobs), as counted on the next start."""
    import signal

    lost = []
    url = f"http://127.0.0.1:{free_port()}/ingest"  # nobody listens: only the ring and the spool matter
    for i in range(runs):
        spool = work / f"kill{i}"
        child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, url, str(spool), str(rate_hz)],
                                 stdout=subprocess.PIPE, text=True,
                                 env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
        child.stdout.readline()
        time.sleep(1.0 + 0.137 * i)  # kill at different points of the flush cycle
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        with Uplink(url, spool_dir=spool, backoff_initial=30.0) as up:
            lost.append(up.stats()["drops"].get("lost_in_ring", 0))
    lost_ms = [n / rate_hz * 1000.0 for n in lost]
    return {"rate_hz": rate_hz, "runs": runs, "lost_records": lost, "max_lost": max(lost),
            "max_lost_ms": max(lost_ms), "median_lost_ms": sorted(lost_ms)[len(lost_ms) // 2]}


def wait_drained(up: Uplink, target_sent: int, timeout: float) -> float:
    t0 = time.perf_counter()
    while up.stats()["sent"] < target_sent:
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"not drained in {timeout} s: {up.stats()}")
        time.sleep(0.02)
    return time.perf_counter()


def sustained(url: str, spool: Path, n: int, batch: int) -> dict:
    """Records/s from first put() to the last acknowledgement, with a producer faster than the link."""
    with Uplink(url, spool_dir=spool, batch_size=batch, ring_size=n + 1) as up:
        t0 = time.perf_counter()
        for i in range(n):
            up.put(dict(RECORD, frame=i))
        t1 = wait_drained(up, n, timeout=180)
        stats = up.stats()
    return {"records": n, "batch_size": batch, "seconds": t1 - t0, "records_per_s": n / (t1 - t0),
            "retries": stats["retries"]}


def paho_raw(port: int, n: int, batch: int) -> dict:
    """Ceiling: paho-mqtt alone publishing QoS 1 in bursts of `batch`, waiting for every PUBACK (no spool)."""
    import threading

    import paho.mqtt.client as mqtt

    acked, cond = set(), threading.Condition()

    def on_publish(client, userdata, mid, reason_code, properties):
        with cond:
            acked.add(mid)
            cond.notify_all()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw", clean_session=True)
    c.max_inflight_messages_set(100)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    body = json.dumps(RECORD).encode() + b" " * 120  # about the size of an uplink envelope
    t0 = time.perf_counter()
    for _ in range(0, n, batch):
        with cond:
            acked.clear()
        mids = [c.publish("edgeinfer/raw", body, qos=1).mid for _ in range(batch)]
        with cond:
            cond.wait_for(lambda m=mids: acked.issuperset(m), 60)
    seconds = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return {"records": n, "batch_size": batch, "seconds": seconds, "records_per_s": n / seconds}


def recovery(port: int, spool: Path, backlog: int, batch: int) -> dict:
    """Queue `backlog` records with the server down, start it, time until the spool is empty."""
    url = f"http://127.0.0.1:{port}/ingest"
    up = Uplink(url, spool_dir=spool, batch_size=batch, ring_size=backlog + 1, backoff_initial=0.2, backoff_max=1.0)
    t0 = time.perf_counter()
    for i in range(backlog):
        up.put(dict(RECORD, frame=i))
    up.flush(600)
    spooled_s = time.perf_counter() - t0
    queued = up.stats()["queued"]
    server = start_http(port)
    t_up = time.perf_counter()
    wait_drained(up, backlog, timeout=300)
    drain_s = time.perf_counter() - t_up
    up.close()
    stop(server)
    return {"backlog": queued, "batch_size": batch, "spool_write_s": spooled_s, "drain_s": drain_s,
            "records_per_s": backlog / drain_s, "backoff_max_s": 1.0}


def machine() -> dict:
    return machine_info()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000, help="records per sustained-delivery run")
    ap.add_argument("--latency-records", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=2_000.0, help="paced put() rate for the latency runs")
    ap.add_argument("--backlog", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500, help="batch_size (the Uplink default)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="only put() latency and the SIGKILL loss")
    ap.add_argument("--kill-runs", type=int, default=7)
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)  # the outage phases log expected warnings
    results = {"machine": machine()}
    work = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}/ingest"
        with Uplink(url, spool_dir=work / "lat-down", backoff_initial=0.2, backoff_max=1.0) as up:
            results["put_server_down"] = put_latency(up, args.latency_records, args.rate)
        with Uplink(url, spool_dir=work / "lat-reject", backoff_initial=0.2, backoff_max=1.0,
                    full_policy="reject_new") as up:
            results["put_server_down_reject_new"] = put_latency(up, args.latency_records, args.rate)
        results["kill9_loss"] = kill9_loss(work, 1000.0, args.kill_runs)
        if args.quick:
            results["machine"]["loadavg_at_end"] = os.getloadavg()
            report(results)
            return
        server = start_http(port)
        with Uplink(url, spool_dir=work / "lat-up") as up:
            results["put_server_up"] = put_latency(up, args.latency_records, args.rate)
            results["put_server_up_burst"] = put_latency(up, args.latency_records, 1e9)
        results["http_sustained"] = sustained(url, work / "http", args.records, args.batch)
        results["http_sustained_gzip"] = sustained(url + "?gzip=1", work / "http-gz", args.records, args.batch)
        stop(server)
        mport = free_port()
        broker = start_mosquitto(mport, work)
        murl = f"mqtt://127.0.0.1:{mport}/edgeinfer/bench"
        results["mqtt_paho_raw"] = paho_raw(mport, args.records, args.batch)
        results["mqtt_sustained"] = sustained(murl, work / "mqtt", args.records, args.batch)
        results["mqtt_sustained_packed20"] = sustained(murl + "?records_per_message=20", work / "mqtt-packed",
                                                       args.records, args.batch)
        stop(broker)
        results["recovery_http"] = recovery(free_port(), work / "recovery", args.backlog, args.batch)
        results["machine"]["loadavg_at_end"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def report(r: dict) -> None:
    m = r["machine"]
    print(f"machine: {m['cpu']} x{m['cores']}, Python {m['python']}, load {m['loadavg_at_start']} -> "
          f"{m.get('loadavg_at_end')}")
    for key, label in (("put_server_down", "put() server down"),
                       ("put_server_down_reject_new", "put() server down, reject_new"),
                       ("put_server_up", "put() server up"), ("put_server_up_burst", "put() server up, burst")):
        x = r.get(key)
        if x is None:
            continue
        ok = "OK" if x["p99_us"] <= 50 else "MISS"
        print(f"{label:<26} p50 {x['p50_us']:7.2f} us  p99 {x['p99_us']:7.2f} us  p99.9 {x['p999_us']:8.2f} us  "
              f"max {x['max_us']:9.1f} us  (target p99 <= 50 us: {ok}, {x['rate_hz']:.0f}/s)")
    k = r["kill9_loss"]
    print(f"{'SIGKILL at 1000/s':<26} lost_in_ring {k['lost_records']} -> max {k['max_lost_ms']:.0f} ms of records, "
          f"median {k['median_lost_ms']:.0f} ms (all counted on restart)")
    if "http_sustained" not in r:
        return
    for key, label in (("http_sustained", "HTTP batched"), ("http_sustained_gzip", "HTTP batched gzip"),
                       ("mqtt_paho_raw", "paho alone (ceiling)"), ("mqtt_sustained", "MQTT QoS 1, 1 rec/msg"),
                       ("mqtt_sustained_packed20", "MQTT QoS 1, 20 rec/msg")):
        x = r[key]
        ok = "OK" if x["records_per_s"] >= 5000 else "MISS"
        print(f"{label:<26} {x['records_per_s']:9.0f} records/s ({x['records']} in {x['seconds']:.2f} s, "
              f"batch {x['batch_size']}; target >= 5000/s: {ok})")
    x = r["recovery_http"]
    print(f"{'recovery (HTTP)':<26} {x['backlog']} queued -> drained in {x['drain_s']:.2f} s after the server "
          f"came back ({x['records_per_s']:.0f} records/s; spooling them took {x['spool_write_s']:.2f} s)")


if __name__ == "__main__":
    main()
