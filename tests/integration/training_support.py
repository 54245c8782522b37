"""Shared pieces of the training tests: a demand data set, a broker stand-in, the registry as
training left it, and a real Mage server (webserver and scheduler) on a free port.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from converge.checkout import REPO
from converge.settings import Settings

PROJECT = REPO / "pipelines"
# The client id Mage's own frontend signs in with (mage_ai.settings.server).
MAGE_FRONTEND_CLIENT = "zkWlN0PkIKSN0C11CfUHUj84OT5XOJ6tDZ6bDRO2"


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as CONVERGE_* variables, for the training process."""
    env = {}
    for name, value in settings.model_dump().items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if value is None:
            continue
        env[f"CONVERGE_{name.upper()}"] = str(value)
    return env


class EventSink:
    """A real HTTP endpoint standing in for the broker: it records every request it receives."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"headers": dict(self.headers), "body": body})
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def demand_frame(*, entities: int = 12, days: int = 150, seed: int = 3) -> pd.DataFrame:
    """Daily rows with a weekly signal, a feature effect and a slow trend."""
    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for d in range(days):
        when = start + timedelta(days=d, hours=12)
        for e in range(entities):
            price = float(rng.uniform(1, 10))
            rows.append(
                {
                    "entity_id": f"store-{e:03d}",
                    "event_time": when,
                    "price": round(price, 2),
                    "weekday": when.weekday(),
                    "region": ["north", "south", "east"][e % 3],
                    "demand": 20
                    + 6 * (when.weekday() >= 5)
                    - 1.5 * price
                    + 0.05 * d
                    + rng.normal(0, 1),
                }
            )
    return pd.DataFrame(rows)


async def _versions(settings: Settings, name: str) -> list[Any]:
    from converge.db import create_pool
    from converge.registry import Registry

    pool = await create_pool(settings)
    try:
        try:
            return await Registry(pool).list_versions(name)
        except Exception as exc:
            if type(exc).__name__ == "ModelNotFound":
                return []
            raise
    finally:
        await pool.close()


def versions(settings: Settings, name: str) -> list[Any]:
    return asyncio.run(_versions(settings, name))


class MageServer:
    """``converge mage`` (Mage's webserver and scheduler on the project and on ``converge train``'s
    own Mage database), with user authentication on as in the chart, the owner account from the
    environment and a scheduler tick of five seconds (Mage's default is ten).

    Not shorter: Mage 0.9.80's process queue lets its worker pool exit while a block run is being
    enqueued (the pool saw an empty queue; ``enqueue`` still sees it alive and starts none), and
    that run then waits forever. A tick as long as the pool's one-second poll makes the race likely.
    """

    def __init__(self, state_dir: Path, env: dict[str, str], log_path: Path) -> None:
        import sys

        from converge.stack.procs import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.owner_email = "owner@converge.test"
        self.owner_password = secrets.token_urlsafe(12)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "converge.cli", "mage", "--port", str(self.port)],
            cwd=str(REPO),
            env={
                **os.environ,
                **env,
                "CONVERGE_STATE_DIR": str(state_dir),
                "SCHEDULER_TRIGGER_INTERVAL": "5",
                "REQUIRE_USER_AUTHENTICATION": "1",
                "DEFAULT_OWNER_EMAIL": self.owner_email,
                "DEFAULT_OWNER_USERNAME": "owner",
                "DEFAULT_OWNER_PASSWORD": self.owner_password,
                "JWT_SECRET": secrets.token_urlsafe(24),
                "PYTHONUNBUFFERED": "1",
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its scheduler and block-run processes stop with it
        )
        self.token: str | None = None

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mage start exited {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"mage start did not answer within {timeout_s} s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _request(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "X-API-KEY": MAGE_FRONTEND_CLIENT}
        if self.token:  # the signed session token, as the UI's cookie carries it
            headers["Cookie"] = f"oauth_token={self.token}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.load(resp)
        if answer.get("error"):
            raise RuntimeError(f"{method} {path}: {answer['error']}")
        return answer

    def sign_in(self) -> None:
        """Sign in as the owner account, as the UI's login form does."""
        answer = self._request(
            "POST",
            "/api/sessions",
            {"session": {"email": self.owner_email, "password": self.owner_password}},
        )
        self.token = answer["session"]["token"]

    def get(self, path: str) -> dict[str, Any]:
        return self._request("GET", path)

    def post(self, path: str, body: dict) -> dict[str, Any]:
        return self._request("POST", path, body)

    def stop(self) -> None:
        """Stop the server, its scheduler and their block-run processes (one process group)."""
        for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # the scheduler child may outlive the server's own process for a moment
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()
