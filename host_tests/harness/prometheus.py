"""A real Prometheus (Debian's `prometheus` package) scraping boards, for the polling tests.

It gets its own config and data folder in a temporary directory and runs inside the network
namespace the boards are reached from (`ip netns exec`); its web API listens on that
namespace's loopback. Stopped by PID; the folder goes with it.

    with Prometheus(ns_name, ["10.77.3.2:80"], interval_s=1) as prom:
        time.sleep(60)
        up = prom.samples('up{job="boards"}', 60)     # {target: [values]}
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

import requests

from harness.emu import netns

JOB = "boards"


def binary():
    """The prometheus binary, or None."""
    return shutil.which("prometheus")


class Prometheus:
    def __init__(self, ns_name, targets, interval_s=1, port=9090, metrics_path="/metrics", timeout_s=None):
        self.ns_name = ns_name
        self.targets = list(targets)
        self.interval_s = interval_s
        self.timeout_s = timeout_s or interval_s  # Prometheus refuses one above the interval
        self.port = port
        self.metrics_path = metrics_path
        self.proc = None
        self.dir = None
        self.url = "http://127.0.0.1:%d" % port

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def _config(self):
        # JSON is YAML: no YAML library needed
        return json.dumps({
            "global": {"scrape_interval": "%ds" % self.interval_s, "scrape_timeout": "%ds" % self.timeout_s},
            "scrape_configs": [{"job_name": JOB, "metrics_path": self.metrics_path,
                                "static_configs": [{"targets": self.targets}]}],
        }, indent=1)

    def start(self, timeout_s=30):
        exe = binary()
        if exe is None:
            raise RuntimeError("prometheus not found: apt-get install prometheus")
        self.dir = tempfile.mkdtemp(prefix="prometheus-")
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(self._config())
        log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns_name, exe, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("prometheus exited: %s" % self.log_tail())
            try:
                if self._get("/-/ready").status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus not ready after %d s: %s" % (timeout_s, self.log_tail()))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def log_tail(self, n=2000):
        try:
            with open(os.path.join(self.dir, "prometheus.log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except (OSError, TypeError):
            return ""

    def _get(self, path, **params):
        with netns.in_netns(str(netns.NETNS_DIR / self.ns_name)):
            return requests.get(self.url + path, params=params, timeout=10)

    def query(self, expr):
        """An instant query: its result list (Prometheus' JSON)."""
        r = self._get("/api/v1/query", query=expr)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def samples(self, selector, window_s):
        """Every raw sample of selector over the last window_s seconds: {instance: [values]}."""
        out = {}
        for series in self.query("%s[%ds]" % (selector, window_s)):
            out[series["metric"].get("instance", "")] = [float(v) for _, v in series["values"]]
        return out
