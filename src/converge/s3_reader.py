"""GetObject from S3-compatible storage with nothing but the standard library: a SigV4-signed GET.

The predict function's first request waits for exactly one download, and boto3 made it the
dearest part of a cold start: importing boto3/botocore and building the first client (which reads
the S3 service model) cost more CPU than everything else the function loads
(``benchmarks/bench_start.py``). This reader signs one path-style ``GET`` (AWS Signature Version 4,
unsigned payload) and sends it with ``http.client``: it imports in about a millisecond. Everything
else (put, head, delete, buckets) stays on boto3, loaded by whoever needs it.

Faults map as boto3's did in :mod:`converge.artifacts`: a missing object or bucket is
:class:`ArtifactNotFound`; a refused connection, a timeout, a cut body or any other error answer is
:class:`StorageUnavailable` (retryable: credentials and servers get fixed). Connection faults and
5xx answers are retried twice, after 0.1 s and 0.2 s.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import time
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from converge.errors import ArtifactNotFound, StorageUnavailable

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
ATTEMPTS = 3
BACKOFF_S = 0.1
_ERROR_CODE = re.compile(rb"<Code>([^<]{1,64})</Code>")
_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NotFound"}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


class S3Reader:
    """Signed GETs against one endpoint with one key pair (path-style addressing)."""

    def __init__(
        self,
        endpoint_url: str,
        access_key: str,
        secret_key: str,
        region: str,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"s3 endpoint {endpoint_url!r}: expected http(s)://host[:port]")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        default_port = parts.port is None or parts.port == (443 if self.scheme == "https" else 80)
        self.host_header = parts.netloc.rpartition("@")[2] if not default_port else parts.hostname
        self.base_path = parts.path.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s

    def get(self, bucket: str, key: str) -> tuple[bytes, dict[str, str]]:
        """The object's bytes and its user metadata (``x-amz-meta-*``, prefix removed)."""
        what = f"get {key}"
        for attempt in range(ATTEMPTS):
            try:
                status, headers, body = self._send(bucket, key)
            except (OSError, http.client.HTTPException) as exc:
                if attempt + 1 < ATTEMPTS:
                    time.sleep(BACKOFF_S * 2**attempt)
                    continue
                raise StorageUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
            if status == 200:
                prefix = "x-amz-meta-"
                meta = {k[len(prefix) :]: v for k, v in headers.items() if k.startswith(prefix)}
                return body, meta
            code = _error_code(body)
            if status == 404 or code in _NOT_FOUND:
                raise ArtifactNotFound(f"{what}: not found ({code or status})")
            if status >= 500 and attempt + 1 < ATTEMPTS:
                time.sleep(BACKOFF_S * 2**attempt)
                continue
            raise StorageUnavailable(f"{what}: storage answered {status} {code}".rstrip())
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, bucket: str, key: str) -> tuple[int, dict[str, str], bytes]:
        path = f"{self.base_path}/{quote(bucket, safe='')}/{quote(key, safe='/~')}"
        headers = self.signed_headers("GET", path)
        if self.scheme == "https":
            import ssl  # only where the endpoint needs it

            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout_s,
                context=ssl.create_default_context(),
            )  # fmt: skip
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout_s)
        try:
            conn.connect()
            conn.sock.settimeout(self.read_timeout_s)
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            conn.close()

    def signed_headers(self, method: str, path: str, now: datetime | None = None) -> dict[str, str]:
        """``Host``, ``x-amz-date``, ``x-amz-content-sha256`` and the SigV4 ``Authorization`` for a
        request without a query string or body (``path`` already URI-encoded)."""
        now = now or datetime.now(UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        headers = {
            "host": self.host_header,
            "x-amz-content-sha256": UNSIGNED_PAYLOAD,
            "x-amz-date": amz_date,
        }
        names = ";".join(headers)
        canonical = "\n".join(
            [method, path, "", *(f"{k}:{v}" for k, v in headers.items()), "", names, UNSIGNED_PAYLOAD]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = _hmac(("AWS4" + self.secret_key).encode("utf-8"), day)
        for part in (self.region, "s3", "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}"
        )
        return headers


def _error_code(body: bytes) -> str:
    match = _ERROR_CODE.search(body[:4096])
    return match.group(1).decode("ascii", "replace") if match else ""
