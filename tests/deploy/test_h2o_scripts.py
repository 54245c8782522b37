"""The two scripts the H2O pods run: heap sizing from the memory limit, and cloud-consensus readiness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy_support import CHART

import h2o_heap
import h2o_ready

FILES = CHART / "files"

GIB = 1024


@pytest.mark.parametrize(
    ("limit", "cgroup", "percent", "heap"),
    [
        (4 * GIB, None, 70, 2867),
        (4 * GIB, 4 * GIB, 70, 2867),
        (8 * GIB, 2 * GIB, 70, 1433),  # the tighter cgroup wins
        (None, 10 * GIB, 60, 6144),
        (1000, None, 50, 500),
    ],
)
def test_heap_is_a_fraction_of_the_smallest_known_limit(limit, cgroup, percent, heap):
    assert h2o_heap.heap_mib(limit, cgroup, percent) == heap
    assert heap <= 0.70 * min(m for m in (limit, cgroup) if m)


@pytest.mark.parametrize("percent", [0, 71, 100])
def test_heap_percent_outside_1_to_70_is_refused(percent):
    with pytest.raises(h2o_heap.HeapError):
        h2o_heap.heap_mib(4 * GIB, None, percent)


def test_container_without_memory_limit_is_refused():
    with pytest.raises(h2o_heap.HeapError, match="no memory limit"):
        h2o_heap.heap_mib(None, None, 70)


def test_cgroup_v2_and_v1_limits_are_read(tmp_path):
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("4294967296\n")
    assert h2o_heap.cgroup_limit_mib((str(v2),)) == 4096
    v2.write_text("max\n")
    assert h2o_heap.cgroup_limit_mib((str(v2), str(v1))) is None
    v1.write_text(str(1 << 62))  # cgroup v1 reports "unlimited" as a huge number
    assert h2o_heap.cgroup_limit_mib((str(tmp_path / "absent"), str(v1))) is None
    v1.write_text(str(3 * 1024**3))
    assert h2o_heap.cgroup_limit_mib((str(tmp_path / "absent"), str(v1))) == 3072


def test_entrypoint_builds_the_java_command_from_the_downward_api_limit():
    env = {
        "PATH": os.environ["PATH"],
        "CONTAINER_MEMORY_LIMIT_MIB": "4096",
        "H2O_HEAP_PERCENT": "70",
        "H2O_HEAP_DRY_RUN": "1",
        "H2O_JAR": "/opt/h2o/h2o.jar",
    }
    out = subprocess.run(
        [sys.executable, str(FILES / "h2o_heap.py"), "-flatfile", "/tmp/x"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    # The cgroup of this machine may be tighter than 4 GiB; never larger.
    xmx = int(next(a for a in out if a.startswith("-Xmx"))[4:-1])
    assert 0 < xmx <= 2867
    assert out[-2:] == ["-flatfile", "/tmp/x"]
    assert ["-jar", "/opt/h2o/h2o.jar"] == out[out.index("-jar"):out.index("-jar") + 2]


def test_entrypoint_fails_instead_of_guessing_when_percent_is_too_high():
    env = {"PATH": os.environ["PATH"], "CONTAINER_MEMORY_LIMIT_MIB": "4096", "H2O_HEAP_PERCENT": "90", "H2O_HEAP_DRY_RUN": "1"}
    proc = subprocess.run([sys.executable, str(FILES / "h2o_heap.py")], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "HeapError" in proc.stderr


# --- readiness ---------------------------------------------------------------------------------

FORMED = {"cloud_size": 3, "locked": True, "consensus": True, "cloud_healthy": True}


@pytest.mark.parametrize(
    ("cloud", "ready"),
    [
        (FORMED, True),
        ({**FORMED, "cloud_size": 2}, False),
        ({**FORMED, "locked": False}, False),
        ({**FORMED, "consensus": False}, False),
        ({**FORMED, "cloud_healthy": False}, False),
        ({"cloud_size": 3}, False),  # lock state unknown: not ready
    ],
)
def test_check_needs_full_size_and_a_locked_cloud(cloud, ready):
    assert (h2o_ready.check(cloud, 3) is None) is ready


class _Cloud(BaseHTTPRequestHandler):
    payload: bytes = b"{}"
    status = 200
    leader_status = 404

    def do_GET(self):  # noqa: N802 (http.server API)
        body = self.payload if self.path == "/3/Cloud" else b"{}"
        status = {"/3/Cloud": self.status, "/kubernetes/isLeaderNode": self.leader_status}
        self.send_response(status.get(self.path, 404))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def cloud_server():
    """A loopback HTTP endpoint answering /3/Cloud with whatever the test sets."""
    handler = type("Handler", (_Cloud,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _probe(url: str, expected: int, leader_url: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "H2O_READY_URL": url, "H2O_NODE_EXPECTED_COUNT": str(expected), "H2O_READY_TIMEOUT_S": "2"}
    if leader_url:
        env["H2O_LEADER_URL"] = leader_url
    return subprocess.run([sys.executable, str(FILES / "h2o_ready.py")], env=env, capture_output=True, text=True, timeout=30)


def test_probe_exit_code_follows_the_cloud_state(cloud_server):
    handler, url = cloud_server
    handler.payload = json.dumps(FORMED).encode()
    assert _probe(url, 3).returncode == 0
    handler.payload = json.dumps({**FORMED, "cloud_size": 1, "locked": False}).encode()
    proc = _probe(url, 3)
    assert proc.returncode == 1 and "cloud_size 1 != expected 3" in proc.stderr


def test_probe_is_not_ready_when_h2o_errors_or_is_down(cloud_server):
    handler, url = cloud_server
    handler.status, handler.payload = 500, b"oops"
    assert _probe(url, 1).returncode == 1
    handler.status, handler.payload = 200, b"not json"
    assert _probe(url, 1).returncode == 1
    assert _probe("http://127.0.0.1:9", 1).returncode == 1  # nothing listens on the discard port


def test_with_a_leader_url_only_the_leader_of_a_formed_cloud_is_ready(cloud_server):
    handler, url = cloud_server
    handler.payload = json.dumps(FORMED).encode()
    handler.leader_status = 404  # a formed cloud, but another node leads
    proc = _probe(url, 3, leader_url=url)
    assert proc.returncode == 1 and "not the leader" in proc.stderr
    handler.leader_status = 200
    assert _probe(url, 3, leader_url=url).returncode == 0
    handler.payload = json.dumps({**FORMED, "locked": False}).encode()  # leader, cloud not formed
    assert _probe(url, 3, leader_url=url).returncode == 1
